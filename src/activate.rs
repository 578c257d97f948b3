//! After `restore` rewrote files: restart the firewall with the version's command, verify the
//! restored rules are loaded, roll everything back when anything fails, apply sysctl values live.

use std::time::Duration;

use anyhow::Result;

use crate::apply::Written;
use crate::commands::Env;
use crate::compare::{script_of, Comparison};
use crate::fsutil::{self, Owner};
use crate::live;
use crate::rule::{Family, Rule};
use crate::snapshot::Snapshot;
use crate::sysctl;

/// The restored rules, parsed from the old snapshot.
pub fn restored_rules(old: &Snapshot, cmp: &Comparison, path: &str) -> Result<Vec<Rule>> {
    let Some(script) = script_of(old, path)? else {
        return Ok(Vec::new());
    };
    Ok(cmp
        .discarded
        .iter()
        .filter(|d| d.restore)
        .filter_map(|d| script.lines[d.index].rule.clone())
        .collect())
}

/// Restarts the firewall; `Err(step)` names what failed. Report lines go to `log_lines`.
fn restart_and_verify(env: &Env, new: &Snapshot, rules: &[Rule], lines: &mut Vec<String>) -> Result<(), String> {
    let (program, args) = live::restart_command(&new.manifest.version, &env.config.firewall_script);
    let timeout = Duration::from_secs(env.config.restart_timeout_secs);
    let ran = live::run(&env.root, &program, &args, timeout).map_err(|e| format!("restart: {e:#}"))?;
    log::info!("firewall restart: {}", ran.summary());
    lines.push(format!("firewall restart: {}", ran.summary()));
    for l in ran.output.lines() {
        lines.push(format!("  | {l}"));
    }
    if !ran.ok() {
        return Err(format!("restart ({})", ran.summary()));
    }
    let mut missing = 0;
    for rule in rules {
        for l in live::check_loaded(&env.root, rule) {
            let verdict = match l.loaded {
                Some(true) => "loaded ",
                Some(false) => "MISSING",
                None => "UNKNOWN",
            };
            log::info!("verify {} {}: {}", l.family, l.rule, l.detail);
            lines.push(format!("  {verdict} {} {}", l.family, l.rule));
            if l.loaded != Some(true) {
                missing += 1;
                if l.loaded.is_none() {
                    lines.push(format!("          {}", l.detail));
                }
            }
        }
    }
    if missing > 0 {
        return Err(format!("verify ({missing} restored rule(s) not loaded)"));
    }
    Ok(())
}

/// Puts every written file back from its backup, restarts again and checks that what is loaded
/// matches what was loaded before the restore.
fn roll_back(env: &Env, new: &Snapshot, written: &[Written], before: &Option<String>, lines: &mut Vec<String>) {
    for w in written {
        let path = env.root.path(&w.path);
        let result = match &w.backup {
            Some(backup) => fsutil::read_bounded(backup).and_then(|bytes| {
                let owner = Owner::of(&std::fs::metadata(backup)?);
                fsutil::atomic_write(&path, &bytes, owner)
            }),
            None => std::fs::remove_file(&path).map_err(Into::into),
        };
        match result {
            Ok(()) => {
                log::warn!("rolled back {}", path.display());
                lines.push(format!("rollback: {} put back from its backup", w.path));
            }
            Err(e) => {
                log::error!("rollback of {} failed: {e:#}", path.display());
                lines.push(format!("rollback: FAILED for {}: {e:#}", w.path));
            }
        }
    }
    let mut ignored = Vec::new();
    let restarted = restart_and_verify(env, new, &[], &mut ignored);
    lines.extend(ignored.into_iter().map(|l| format!("rollback: {l}")));
    if let Err(step) = restarted {
        lines.push(format!(
            "rollback: the second restart failed too ({step}); check the firewall by hand"
        ));
        return;
    }
    let after = live::list_rules(&env.root, Family::V4);
    match (before, after) {
        (Some(b), Some(a)) if *b == a => {
            lines.push("rollback: the previous rules are loaded again (iptables -S matches the state before)".into())
        }
        (Some(_), Some(_)) => {
            lines.push("rollback: WARNING: iptables -S differs from the state before the restore".into())
        }
        _ => lines.push("rollback: loaded rules not compared (iptables -S unavailable)".into()),
    }
}

/// Brings the running system in line with the written files. Returns the failed step, if any,
/// after rolling back.
pub fn activate(
    env: &Env,
    old: &Snapshot,
    new: &Snapshot,
    cmp: &Comparison,
    written: &[Written],
    no_restart: bool,
    lines: &mut Vec<String>,
) -> Result<Option<String>> {
    let script_written = written.iter().any(|w| w.path == env.config.firewall_script);
    if script_written {
        let (program, args) = live::restart_command(&new.manifest.version, &env.config.firewall_script);
        if no_restart {
            lines.push(format!(
                "firewall restart: skipped (--no-restart); run `{program} {}` to load the restored rules",
                args.join(" ")
            ));
        } else {
            let rules = restored_rules(old, cmp, &env.config.firewall_script)?;
            let before = live::list_rules(&env.root, Family::V4);
            if let Err(step) = restart_and_verify(env, new, &rules, lines) {
                log::error!("restore failed at {step}; rolling back");
                lines.push(format!("FAILED at {step}: rolling back"));
                roll_back(env, new, written, &before, lines);
                return Ok(Some(step));
            }
        }
    }
    if written.iter().any(|w| w.path == sysctl::SYSCTL_CONF) {
        for f in cmp.sysctl.iter().filter(|f| f.set_to.is_some()) {
            let value = f.set_to.as_deref().expect("filtered");
            let was = live::read_sysctl(&env.root, &f.key);
            match live::write_sysctl(&env.root, &f.key, value) {
                Ok(now) => {
                    log::info!("running {}: {} -> {now}", f.key, was.as_deref().unwrap_or("?"));
                    lines.push(format!("running {}: {} -> {now}", f.key, was.as_deref().unwrap_or("?")));
                    if !sysctl::same_value(&now, value) {
                        return Ok(Some(format!("sysctl (running {} reads {now}, not {value})", f.key)));
                    }
                }
                Err(e) => lines.push(format!("running {}: not applied ({e:#}); run `sysctl -p`", f.key)),
            }
        }
    }
    Ok(None)
}

/// Lines for managed keys whose running value differs from the files' effective value.
pub fn running_mismatches(env: &Env, snap: &Snapshot) -> Vec<String> {
    let sources = snap.sysctl_sources();
    env.config
        .managed_sysctl
        .iter()
        .filter_map(|k| {
            let running = live::read_sysctl(&env.root, k)?;
            let eff = sysctl::effective(sources.iter().copied(), k);
            (!sysctl::same_value(&running, &eff.value)).then(|| {
                format!(
                    "running {}: {running}, but the files say {}: run `sysctl -p` (or reboot) to apply them",
                    sysctl::display_key(&sysctl::canonical_key(k)),
                    eff.value
                )
            })
        })
        .collect()
}
