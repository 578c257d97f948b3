//! After `restore` rewrote files: restart the firewall with the version's command, verify the
//! restored rules are loaded, roll everything back when anything fails, apply sysctl values live.
//! Every step is returned typed; the report renders them.

use std::collections::HashSet;
use std::time::Duration;

use anyhow::Result;

use crate::context::Context;
use crate::domain::compare::{script_of, Comparison};
use crate::domain::firewall::restart_command;
use crate::domain::loaded::RuleState;
use crate::domain::rule::{Family, Rule};
use crate::domain::snapshot::Snapshot;
use crate::domain::steps::{RollbackCheck, Step};
use crate::domain::sysctl;
use crate::domain::version::Version;
use crate::fault;
use crate::restore::apply::Written;
use crate::system::{iptables, process, procsys};

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

/// Restarts the firewall with `version`'s command under `restart_timeout_secs`; the step goes to
/// `steps`, `Err(step)` names what failed. `restore`, its rollback and `undo` all restart here.
pub fn restart(ctx: &Context, version: &Version, steps: &mut Vec<Step>) -> Result<(), String> {
    let (program, args) = restart_command(version, &ctx.config.firewall_script);
    let timeout = Duration::from_secs(ctx.config.restart_timeout_secs);
    fault::point("restart-before");
    let ran = process::run(&ctx.root, &program, &args, timeout).map_err(|e| format!("restart: {e:#}"))?;
    fault::point("restart-after");
    log::info!("firewall restart: {}", ran.summary());
    steps.push(Step::Restarted {
        summary: ran.summary(),
        output: ran.output.lines().map(str::to_string).collect(),
    });
    if !ran.ok() {
        return Err(format!("restart ({})", ran.summary()));
    }
    Ok(())
}

/// Restarts the firewall and checks `rules` are loaded; `Err(step)` names what failed.
fn restart_and_verify(ctx: &Context, new: &Snapshot, rules: &[Rule], steps: &mut Vec<Step>) -> Result<(), String> {
    restart(ctx, &new.manifest.version, steps)?;
    let mut missing = 0;
    for l in iptables::check_loaded(&ctx.root, rules) {
        log::debug!("verify {} {}: {}", l.family, l.rule, l.detail);
        if l.state != RuleState::Loaded {
            missing += 1;
        }
        steps.push(Step::Verified(l));
    }
    log::info!("verify: {} rule(s) checked, {missing} not loaded", rules.len());
    if missing > 0 {
        return Err(format!("verify ({missing} restored rule(s) not loaded)"));
    }
    Ok(())
}

/// `iptables -S` and `ip6tables -S` as loaded now (`None`: cannot be read).
fn dumps(ctx: &Context) -> [Option<String>; 2] {
    [
        iptables::dump(&ctx.root, Family::V4),
        iptables::dump(&ctx.root, Family::V6),
    ]
}

/// Puts the written firewall files back from their backups, restarts again and checks that what
/// is loaded matches what was loaded before the restore. sysctl files are not the firewall's and
/// stay as written.
fn roll_back(ctx: &Context, new: &Snapshot, written: &[Written], before: &[Option<String>; 2], steps: &mut Vec<Step>) {
    for w in written.iter().filter(|w| !sysctl::is_sysctl_file(&w.path)) {
        match w.put_back(&ctx.root) {
            Ok(()) => {
                log::warn!("rolled back {}", ctx.root.path(&w.path).display());
                steps.push(Step::RolledBackFile { path: w.path.clone() });
            }
            Err(e) => {
                log::error!("rollback of {} failed: {e:#}", ctx.root.path(&w.path).display());
                steps.push(Step::RollbackFileFailed {
                    path: w.path.clone(),
                    error: format!("{e:#}"),
                });
            }
        }
    }
    let mut restart = Vec::new();
    let restarted = restart_and_verify(ctx, new, &[], &mut restart);
    steps.extend(restart.into_iter().map(|s| Step::Rollback(Box::new(s))));
    if let Err(step) = restarted {
        steps.push(Step::SecondRestartFailed { step });
        return;
    }
    // Both families: IPv4 must read the same as before; IPv6 too, unless it could be read
    // neither before nor now (no ip6tables under the root).
    let after = dumps(ctx);
    let check = match (&before[0], &after[0], &before[1], &after[1]) {
        (Some(b4), Some(a4), None, None) if b4 == a4 => RollbackCheck::Same,
        (Some(b4), Some(a4), Some(b6), Some(a6)) if b4 == a4 && b6 == a6 => RollbackCheck::Same,
        (Some(_), Some(_), Some(_), Some(_)) | (Some(_), Some(_), None, None) => RollbackCheck::Differs,
        _ => RollbackCheck::Unavailable,
    };
    steps.push(Step::RollbackChecked(check));
}

/// Brings the running system in line with the written files. Returns the steps taken and the
/// failed step, if any, after rolling back.
pub fn activate(
    ctx: &Context,
    old: &Snapshot,
    new: &Snapshot,
    cmp: &Comparison,
    written: &[Written],
    no_restart: bool,
) -> Result<(Vec<Step>, Option<String>)> {
    let mut steps = Vec::new();
    let mut fw_failed = None;
    // An earlier run wrote files and stopped before the running system followed: finish its work.
    let resume = ctx.state.activation_pending();
    if resume && written.is_empty() {
        log::warn!("an earlier run stopped before restarting and verifying: finishing it");
        steps.push(Step::Resumed);
    }
    let script_written = written.iter().any(|w| w.path == ctx.config.firewall_script);
    let has_script = new.content(&ctx.config.firewall_script).is_some();
    if script_written || (resume && has_script) {
        if no_restart {
            let (program, args) = restart_command(&new.manifest.version, &ctx.config.firewall_script);
            steps.push(Step::RestartSkipped {
                command: format!("{program} {}", args.join(" ")),
            });
        } else {
            let rules = rules_to_verify(old, cmp, &ctx.config.firewall_script)?;
            let before = dumps(ctx);
            if let Err(step) = restart_and_verify(ctx, new, &rules, &mut steps) {
                log::error!("restore failed at {step}; rolling back");
                steps.push(Step::Failed { step: step.clone() });
                roll_back(ctx, new, written, &before, &mut steps);
                // The sysctl fix does not depend on the firewall: it goes on below.
                fw_failed = Some(step);
            }
        }
    }
    if resume && written.is_empty() {
        // Bring running values of managed keys in line with the files, as `sysctl -p` would.
        let sources = new.sysctl_sources();
        for key in &ctx.config.managed_sysctl {
            let files = sysctl::effective(sources.iter().copied(), key);
            let (Some(running), Some(value)) = (procsys::read(&ctx.root, key), files.value.as_deref()) else {
                continue;
            };
            if sysctl::running_differs(&running, &files) {
                let now = procsys::write(&ctx.root, key, value)?;
                steps.push(Step::SysctlSet {
                    key: sysctl::display_key(&sysctl::canonical_key(key)),
                    was: running,
                    now,
                });
            }
        }
    }
    if written.iter().any(|w| sysctl::is_sysctl_file(&w.path)) {
        for f in cmp.sysctl.iter() {
            let Some(value) = f.set_to.as_deref() else { continue };
            let was = procsys::read(&ctx.root, &f.key).unwrap_or_else(|| "?".into());
            match procsys::write(&ctx.root, &f.key, value) {
                Ok(now) => {
                    log::info!("running {}: {was} -> {now}", f.key);
                    let failed = !sysctl::same_value(&now, value);
                    let failed_step = &mut fw_failed;
                    steps.push(Step::SysctlSet {
                        key: f.key.clone(),
                        was,
                        now: now.clone(),
                    });
                    if failed {
                        log::error!("running {} reads {now}, not {value}", f.key);
                        failed_step.get_or_insert(format!("sysctl (running {} reads {now}, not {value})", f.key));
                    }
                }
                Err(e) => steps.push(Step::SysctlNotApplied {
                    key: f.key.clone(),
                    error: format!("{e:#}"),
                }),
            }
        }
    }
    if !no_restart || fw_failed.is_some() {
        ctx.state.finish_activation()?;
    }
    Ok((steps, fw_failed))
}

/// Running values of managed keys against the files as the restore leaves them. When the files
/// hold the owed value and the kernel does not, the running value is set (the article's
/// `sysctl -p`), or on a dry run said to be set. Any other difference is reported and left alone:
/// loading the files would not give the owed value.
pub fn running_values(ctx: &Context, cmp: &Comparison, dry_run: bool) -> Vec<Step> {
    let mut steps = Vec::new();
    for f in &cmp.sysctl {
        let (Some(running), Some(files)) = (procsys::read(&ctx.root, &f.key), f.files_after_restore()) else {
            continue;
        };
        if sysctl::same_value(&running, files) {
            continue;
        }
        let owed = f.owed.as_deref().is_some_and(|o| sysctl::same_value(o, files));
        if !owed {
            steps.push(Step::RunningDiffers {
                key: f.key.clone(),
                running,
                files: files.to_string(),
            });
        } else if dry_run {
            steps.push(Step::SysctlWouldSet {
                key: f.key.clone(),
                was: running,
                to: files.to_string(),
            });
        } else {
            match procsys::write(&ctx.root, &f.key, files) {
                Ok(now) => {
                    log::info!("running {}: {running} -> {now}", f.key);
                    steps.push(Step::SysctlSet {
                        key: f.key.clone(),
                        was: running,
                        now,
                    });
                }
                Err(e) => steps.push(Step::SysctlNotApplied {
                    key: f.key.clone(),
                    error: format!("{e:#}"),
                }),
            }
        }
    }
    steps
}
