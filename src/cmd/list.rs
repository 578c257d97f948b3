//! `list`: the stored snapshots, newest last, the one a plain `restore` uses marked, corrupt ones
//! listed as such.

use std::fmt::Write as _;

use anyhow::Result;
use serde::Serialize;

use crate::context::Context;
use crate::domain::snapshot::Manifest;
use crate::exit_codes::ExitCode;

/// An RFC 3339 UTC time in the local zone with its UTC offset (`2026-11-26 14:22:07 +0100`), as
/// `TZ` and `/etc/localtime` say; the UTC text when it cannot be read.
fn local_time(utc: &str) -> String {
    let Ok(t) = humantime::parse_rfc3339_weak(utc.trim_end_matches('Z').split('.').next().unwrap_or(utc)) else {
        return utc.to_string();
    };
    let Ok(secs) = t.duration_since(std::time::UNIX_EPOCH) else {
        return utc.to_string();
    };
    let secs = secs.as_secs() as libc::time_t;
    let mut tm: libc::tm = unsafe { std::mem::zeroed() };
    let mut buf = [0u8; 64];
    extern "C" {
        fn tzset();
    }
    // SAFETY: tzset/localtime_r/strftime with a valid time, a zeroed tm and a buffer of known size.
    let n = unsafe {
        tzset();
        if libc::localtime_r(&secs, &mut tm).is_null() {
            return utc.to_string();
        }
        libc::strftime(
            buf.as_mut_ptr().cast(),
            buf.len(),
            c"%Y-%m-%d %H:%M:%S %z".as_ptr(),
            &tm,
        )
    };
    String::from_utf8_lossy(&buf[..n]).into_owned()
}

/// One snapshot as `list` shows it.
#[derive(Serialize)]
struct Listed<'a> {
    id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    manifest: Option<&'a Manifest>,
    /// `created` in the local zone, with its UTC offset.
    #[serde(skip_serializing_if = "Option::is_none")]
    local_time: Option<String>,
    /// Whether a plain `restore` (and the boot guard) would use it.
    restore_default: bool,
    /// Why it cannot be used.
    #[serde(skip_serializing_if = "Option::is_none")]
    corrupt: Option<&'a str>,
}

pub fn run(ctx: &Context, json: bool) -> Result<ExitCode> {
    let entries = ctx.state.snapshots().entries()?;
    // The live version decides which snapshot a restore uses; a root without one has none.
    let default = ctx.restore_default();
    let listed: Vec<Listed> = entries
        .iter()
        .map(|e| Listed {
            id: &e.id,
            manifest: e.manifest.as_ref().ok(),
            local_time: e.manifest.as_ref().ok().map(|m| local_time(&m.created)),
            restore_default: default.as_deref() == Some(e.id.as_str()),
            corrupt: e.manifest.as_ref().err().map(String::as_str),
        })
        .collect();
    let corrupt = listed.iter().any(|l| l.corrupt.is_some());
    super::print(json, &serde_json::json!({ "snapshots": listed }), || {
        let mut out = String::new();
        let w = listed.iter().map(|l| l.id.len()).fold(2, usize::max);
        let versions = listed
            .iter()
            .filter_map(|l| l.manifest.map(|m| m.version.to_string().len()));
        let v = versions.fold(7, usize::max);
        let _ = writeln!(out, "   {:w$}  {:25}  {:v$}  LABEL", "ID", "CREATED", "VERSION");
        for l in &listed {
            let _ = match (l.manifest, l.corrupt) {
                (Some(m), _) => writeln!(
                    out,
                    "{}  {:w$}  {:25}  {:v$}  {}",
                    if l.restore_default { "*" } else { " " },
                    l.id,
                    l.local_time.as_deref().unwrap_or_default(),
                    m.version.to_string(),
                    m.label.as_deref().unwrap_or("")
                ),
                (None, why) => writeln!(out, "!  {:w$}  CORRUPT: {}", l.id, why.unwrap_or_default()),
            };
        }
        if default.is_some() {
            out.push_str("* the snapshot a plain `restore` uses\n");
        }
        if corrupt {
            out.push_str("! a corrupt snapshot: no command uses it; `iwss-keeper forget ID` removes it\n");
        }
        out
    })?;
    Ok(ExitCode::Success)
}
