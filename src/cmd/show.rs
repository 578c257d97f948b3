//! `show`: what one snapshot holds — its files, its custom rules and its managed sysctl values.

use std::fmt::Write as _;

use anyhow::Result;
use serde::Serialize;

use crate::context::Context;
use crate::domain::compare;
use crate::domain::report::{Side, SideKind};
use crate::domain::snapshot::{Manifest, Origin, Snapshot};
use crate::domain::sysctl;
use crate::exit_codes::ExitCode;

/// A rule as `show` lists it.
#[derive(Serialize)]
struct ShownRule {
    line: usize,
    text: String,
    canonical: String,
    custom: bool,
}

#[derive(Serialize)]
struct ShownSysctl {
    key: String,
    value: Option<String>,
    source: Option<(String, usize)>,
}

#[derive(Serialize)]
struct Shown<'a> {
    kind: SideKind,
    manifest: &'a Manifest,
    rules: Vec<ShownRule>,
    sysctl: Vec<ShownSysctl>,
}

/// `show --file PATH`: the file as the snapshot holds it, byte for byte (as `git show REV:PATH`).
fn file(json: bool, snap: &Snapshot, arg: &str, path: &str) -> Result<ExitCode> {
    let Some(bytes) = snap.content(path) else {
        let held: Vec<&str> = snap.manifest.files.iter().map(|f| f.path.as_str()).collect();
        anyhow::bail!("{arg} holds no file {path} (it holds {})", held.join(", "));
    };
    if json {
        #[derive(Serialize)]
        struct ShownFile<'a> {
            path: &'a str,
            sha256: String,
            /// The content as text (bytes that are not UTF-8 shown as U+FFFD).
            content: String,
        }
        let shown = ShownFile {
            path,
            sha256: crate::domain::snapshot::sha256_hex(bytes),
            content: String::from_utf8_lossy(bytes).into_owned(),
        };
        super::write_stdout(super::json_doc(&shown, None)?.as_bytes())?;
    } else {
        super::write_stdout(bytes)?;
    }
    Ok(ExitCode::Success)
}

/// Runs `show`: what one snapshot (or a root tree read now) holds, or one of its files.
pub fn run(ctx: &Context, json: bool, arg: &str, path: Option<&str>) -> Result<ExitCode> {
    let mut snap = ctx.resolve(arg)?;
    if let Some(path) = path {
        return file(json, &snap, arg, path);
    }
    snap.fill_checksums();
    let shown = Shown {
        kind: Side::of(&snap).kind,
        manifest: &snap.manifest,
        rules: rules(ctx, &snap)?,
        sysctl: sysctl_values(ctx, &snap),
    };
    super::print(json, &shown, || render(ctx, &snap, &shown))?;
    Ok(ExitCode::Success)
}

/// Every rule of the snapshot's firewall script.
fn rules(ctx: &Context, snap: &Snapshot) -> Result<Vec<ShownRule>> {
    let Some(script) = compare::script_of(snap, &ctx.config.firewall_script) else {
        return Ok(Vec::new());
    };
    let rules = script.rules().map(|(i, r)| ShownRule {
        line: script.lines[i].first(),
        text: script.text(i),
        canonical: script.rule(i).map(|r| r.canonical().to_string()).unwrap_or_default(),
        custom: r.is_custom_accept(),
    });
    Ok(rules.collect())
}

/// Each managed sysctl key's value in the snapshot's files, and where it is set.
fn sysctl_values(ctx: &Context, snap: &Snapshot) -> Vec<ShownSysctl> {
    ctx.config
        .managed_sysctl
        .iter()
        .map(|k| {
            let e = snap.sysctl_effective(k);
            ShownSysctl {
                key: sysctl::display_key(&sysctl::canonical_key(k)),
                value: e.value,
                source: e.source,
            }
        })
        .collect()
}

fn render(ctx: &Context, snap: &Snapshot, shown: &Shown) -> String {
    let mut out = String::new();
    let m = &snap.manifest;
    let _ = match &snap.origin {
        Origin::Stored(dir) => writeln!(
            out,
            "snapshot  {}\ndirectory {}\ncreated   {}",
            m.id,
            dir.display(),
            m.created
        ),
        Origin::Tree(dir) => writeln!(out, "tree      {} (read now)", dir.display()),
    };
    let _ = writeln!(out, "host      {}", m.host);
    let _ = writeln!(out, "label     {}", m.label.as_deref().unwrap_or("-"));
    let _ = writeln!(out, "version   {} (from {:?})", m.version, m.version_text);
    render_files(&mut out, m);
    let custom = shown.rules.iter().filter(|r| r.custom).count();
    if !shown.rules.is_empty() || snap.content(&ctx.config.firewall_script).is_some() {
        let _ = writeln!(
            out,
            "firewall  {}: {} rules, {custom} custom",
            ctx.config.firewall_script,
            shown.rules.len()
        );
        for r in shown.rules.iter().filter(|r| r.custom) {
            let _ = writeln!(out, "  line {}  {}", r.line, r.text);
        }
    }
    for s in &shown.sysctl {
        let from = match (&s.source, &s.value) {
            (Some((f, l)), _) => format!("{f}:{l}"),
            (None, None) => "set by no file; kernel default unknown".to_string(),
            (None, Some(_)) => "kernel default".to_string(),
        };
        let value = s.value.as_deref().unwrap_or("unknown");
        let _ = writeln!(out, "sysctl    {} = {value} ({from})", s.key);
    }
    out
}

/// The files a snapshot holds, one line each: mode, owner, size, checksum, path.
fn render_files(out: &mut String, m: &Manifest) {
    let _ = writeln!(out, "files:");
    let size_w = m.files.iter().map(|f| f.size.to_string().len()).max().unwrap_or(1);
    for f in &m.files {
        let kind = f.target.as_ref().map(|t| format!(" -> {t}")).unwrap_or_default();
        let _ = writeln!(
            out,
            "  {:04o} {:>5}:{:<5} {:>size_w$}  {}  {}{kind}",
            f.mode,
            f.uid,
            f.gid,
            f.size,
            &f.sha256[..12],
            f.path
        );
    }
}
