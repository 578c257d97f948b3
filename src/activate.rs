//! After `restore` rewrote files: restart the firewall with the version's command, verify the
//! restored rules are loaded, roll everything back when anything fails, apply sysctl values live.

use std::time::Duration;

use std::collections::HashSet;
use std::path::PathBuf;

use anyhow::{Context, Result};

use crate::apply::Written;
use crate::commands::Env;
use crate::compare::{script_of, Comparison};
use crate::fault;
use crate::fsutil::{self, Owner};
use crate::live;
use crate::rule::{Family, Rule};
use crate::snapshot::Snapshot;
use crate::sysctl;

/// The rules to verify after a restart: every custom rule of the old snapshot and every rule
/// restored from it.
pub fn rules_to_verify(old: &Snapshot, cmp: &Comparison, path: &str) -> Result<Vec<Rule>> {
    let Some(script) = script_of(old, path)? else {
        return Ok(Vec::new());
    };
    let restored: HashSet<usize> = cmp.discarded.iter().filter(|d| d.restore).map(|d| d.index).collect();
    Ok(script
        .rules()
        .filter(|(i, r)| r.is_custom_accept() || restored.contains(i))
        .filter_map(|(i, _)| script.rule(i))
        .collect())
}

/// The journal that says files were written and the running system is not yet in line with
/// them. A run interrupted between writing and verifying leaves it; the next run finishes.
fn journal(env: &Env) -> PathBuf {
    env.state_dir.join("activation-pending")
}

/// Records, before any file is written, that the running system will need to follow.
pub fn begin(env: &Env) -> Result<()> {
    fsutil::create_private_dir(&env.state_dir)?;
    let path = journal(env);
    let _ = std::fs::remove_file(&path);
    let stamp = humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string();
    fsutil::write_private(&path, stamp.as_bytes())?;
    fsutil::sync_dir(&env.state_dir)
}

fn finish(env: &Env) -> Result<()> {
    match std::fs::remove_file(journal(env)) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e).context("cannot remove the activation journal"),
    }
}

/// Restarts the firewall; `Err(step)` names what failed. Report lines go to `log_lines`.
fn restart_and_verify(env: &Env, new: &Snapshot, rules: &[Rule], lines: &mut Vec<String>) -> Result<(), String> {
    let (program, args) = live::restart_command(&new.manifest.version, &env.config.firewall_script);
    let timeout = Duration::from_secs(env.config.restart_timeout_secs);
    fault::point("restart-before");
    let ran = live::run(&env.root, &program, &args, timeout).map_err(|e| format!("restart: {e:#}"))?;
    fault::point("restart-after");
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
    // An earlier run wrote files and stopped before the running system followed: finish its work.
    let resume = journal(env).exists();
    if resume && written.is_empty() {
        log::warn!("an earlier run stopped before restarting and verifying: finishing it");
        lines.push("resuming: an earlier run stopped before restarting and verifying".into());
    }
    let script_written = written.iter().any(|w| w.path == env.config.firewall_script);
    let has_script = new.content(&env.config.firewall_script).is_some();
    if script_written || (resume && has_script) {
        let (program, args) = live::restart_command(&new.manifest.version, &env.config.firewall_script);
        if no_restart {
            lines.push(format!(
                "firewall restart: skipped (--no-restart); run `{program} {}` to load the restored rules",
                args.join(" ")
            ));
        } else {
            let rules = rules_to_verify(old, cmp, &env.config.firewall_script)?;
            let before = live::list_rules(&env.root, Family::V4);
            if let Err(step) = restart_and_verify(env, new, &rules, lines) {
                log::error!("restore failed at {step}; rolling back");
                lines.push(format!("FAILED at {step}: rolling back"));
                roll_back(env, new, written, &before, lines);
                finish(env)?;
                return Ok(Some(step));
            }
        }
    }
    if resume && written.is_empty() {
        // Bring running values of managed keys in line with the files, as `sysctl -p` would.
        let sources = new.sysctl_sources();
        for key in &env.config.managed_sysctl {
            let eff = sysctl::effective(sources.iter().copied(), key);
            if let Some(running) = live::read_sysctl(&env.root, key) {
                if !sysctl::same_value(&running, &eff.value) {
                    let now = live::write_sysctl(&env.root, key, &eff.value)?;
                    lines.push(format!(
                        "running {}: {running} -> {now}",
                        sysctl::display_key(&sysctl::canonical_key(key))
                    ));
                }
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
    if !no_restart {
        finish(env)?;
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
