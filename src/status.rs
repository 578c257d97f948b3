//! `status`: whether the live system still has every custom setting of the newest pre-upgrade
//! snapshot, in its files and in the running kernel.

use std::fmt::Write as _;

use anyhow::Result;
use serde::Serialize;

use crate::commands::Env;
use crate::compare;
use crate::exit_codes::ExitCode;
use crate::firewall::Script;
use crate::hooks::Pending;
use crate::live;
use crate::register::{self, FileState};
use crate::report::{self, Side};
use crate::snapshot::Snapshot;
use crate::sysctl;

/// The report of `status`.
#[derive(Serialize)]
struct Status {
    snapshot: Option<Side>,
    live: Side,
    rules: Vec<RuleStatus>,
    sysctl: Vec<SysctlStatus>,
    /// A hook run that failed and was not yet retried successfully.
    pending: Option<Pending>,
    /// The hook scripts and boot guard `register` manages.
    registration: Vec<FileState>,
    ok: bool,
}

#[derive(Serialize)]
struct RuleStatus {
    rule: String,
    in_script: bool,
    loaded: Vec<live::Loaded>,
}

#[derive(Serialize)]
struct SysctlStatus {
    key: String,
    wanted: Option<String>,
    effective: String,
    running: Option<String>,
    ok: bool,
}

/// Not registering is a choice; a registration with a file changed, or some files gone, is broken:
/// the next upgrade would run half the hooks or none.
fn registration_ok(files: &[FileState]) -> bool {
    files.iter().all(|f| f.state == "intact") || files.iter().all(|f| f.state == "missing")
}

/// Runs `status`: exit 0 when everything is kept, 1 when something is missing.
pub fn run(env: &Env) -> Result<ExitCode> {
    let now = Snapshot::capture(&env.root, &env.config, None)?;
    let store = env.store();
    let snap = match store.pre_upgrade(&now.manifest.version)? {
        Some(m) => Some(Snapshot::load(&store.dir.join(&m.id))?),
        None => None,
    };
    let script = compare::script_of(&now, &env.config.firewall_script)?;
    let index = script.as_ref().map(Script::index);
    let mut rules = Vec::new();
    if let Some(old) = &snap {
        if let Some(old_script) = compare::script_of(old, &env.config.firewall_script)? {
            for (i, key) in old_script.rules().filter(|(_, r)| r.is_custom_accept()) {
                let Some(r) = old_script.rule(i) else { continue };
                rules.push(RuleStatus {
                    rule: r.canonical().to_string(),
                    in_script: index.as_ref().is_some_and(|s| s.covers(key)),
                    loaded: live::check_loaded(&env.root, &r),
                });
            }
        }
    }
    let sources = now.sysctl_sources();
    let sysctl: Vec<SysctlStatus> = env
        .config
        .managed_sysctl
        .iter()
        .map(|k| {
            let eff = sysctl::effective(sources.iter().copied(), k);
            let running = live::read_sysctl(&env.root, k);
            let custom = env.config.sysctl_values.get(k).map(String::as_str);
            // Without a snapshot only a configured custom value is owed.
            let wanted = match &snap {
                Some(old) => {
                    let before = sysctl::effective(old.sysctl_sources().iter().copied(), k);
                    compare::owed_value(&before.value, custom)
                }
                None => custom.map(str::to_string),
            };
            let ok = wanted.as_ref().is_none_or(|w| {
                sysctl::same_value(w, &eff.value) && running.as_ref().is_none_or(|r| sysctl::same_value(w, r))
            });
            SysctlStatus {
                key: sysctl::display_key(&sysctl::canonical_key(k)),
                wanted,
                effective: eff.value,
                running,
                ok,
            }
        })
        .collect();
    let pending = Pending::load(env)?;
    let registration = register::states(env, None);
    let ok = rules
        .iter()
        .all(|r| r.in_script && r.loaded.iter().all(|l| l.loaded == Some(true)))
        && sysctl.iter().all(|s| s.ok)
        && pending.is_none()
        && registration_ok(&registration);
    let status = Status {
        snapshot: snap.as_ref().map(Side::of),
        live: Side::of(&now),
        rules,
        sysctl,
        pending,
        registration,
        ok,
    };
    report::print(env.json, &status, || {
        let mut out = String::new();
        match &status.snapshot {
            Some(s) => {
                let _ = writeln!(out, "snapshot {} ({})", s.name, s.version);
            }
            None => {
                let _ = writeln!(out, "snapshot none: take one with `iwss-keeper snapshot`");
            }
        }
        let _ = writeln!(out, "live     {} ({})", status.live.name, status.live.version);
        for r in &status.rules {
            let loaded: Vec<String> = r
                .loaded
                .iter()
                .map(|l| {
                    format!(
                        "{} {}",
                        l.family,
                        match l.loaded {
                            Some(true) => "loaded",
                            Some(false) => "NOT LOADED",
                            None => "unknown",
                        }
                    )
                })
                .collect();
            let _ = writeln!(
                out,
                "rule     {}: {}, {}",
                r.rule,
                if r.in_script { "in script" } else { "NOT IN SCRIPT" },
                loaded.join(", ")
            );
        }
        for s in &status.sysctl {
            let _ = writeln!(
                out,
                "sysctl   {} = {} (files), {} (running){}",
                s.key,
                s.effective,
                s.running.as_deref().unwrap_or("unknown"),
                match (&s.wanted, s.ok) {
                    (Some(w), false) => format!(": MISSING, want {w}"),
                    _ => String::new(),
                }
            );
        }
        let intact = status.registration.iter().filter(|f| f.state == "intact").count();
        if intact == status.registration.len() {
            let _ = writeln!(out, "hooks    registered ({intact} files intact)");
        } else if intact == 0 && status.registration.iter().all(|f| f.state == "missing") {
            let _ = writeln!(out, "hooks    not registered: run `iwss-keeper register`");
        } else {
            for f in status.registration.iter().filter(|f| f.state != "intact") {
                let _ = writeln!(out, "hooks    {}: {}", f.state.to_uppercase(), f.path);
            }
        }
        if let Some(p) = &status.pending {
            let _ = writeln!(out, "pending  {} failed at {}: {}", p.event, p.since, p.error);
        }
        let _ = writeln!(out, "{}", if status.ok { "all kept" } else { "something is missing" });
        out
    })?;
    Ok(if ok { ExitCode::Success } else { ExitCode::Differs })
}
