//! After `restore` rewrote files: restart the firewall with the version's command, verify the
//! restored rules are loaded, roll everything back when anything fails, apply sysctl values live.
//! `undo` restarts, verifies and rolls back with the same phases. Every step is returned typed;
//! the report renders them.

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
use crate::restore::record_step;
use crate::system::{iptables, process, procsys, signals};

/// The rules to verify after a restart: every custom rule of the old snapshot the new script
/// holds, and every rule restored from it. A discarded rule not restored (a vendor rule, or one
/// refused by the restorable grammar or by iptables) is in neither script: never verified.
pub fn rules_to_verify(old: &Snapshot, cmp: &Comparison, path: &str) -> Result<Vec<Rule>> {
    let Some(script) = script_of(old, path) else {
        return Ok(Vec::new());
    };
    let restored: HashSet<usize> = cmp.discarded.iter().filter(|d| d.restore).map(|d| d.index).collect();
    let left_out: HashSet<usize> = cmp.discarded.iter().filter(|d| !d.restore).map(|d| d.index).collect();
    Ok(script
        .rules()
        .filter(|(i, r)| (r.is_custom_accept() && !left_out.contains(i)) || restored.contains(i))
        .filter_map(|(i, _)| script.rule(i))
        // A source list is verified as the rules iptables loads for it.
        .flat_map(|r| r.loaded_as())
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
    record_step(
        steps,
        Step::Restarted {
            summary: ran.summary(),
            output: ran.output.lines().map(str::to_string).collect(),
        },
    );
    if !ran.ok() {
        return Err(format!("restart ({})", ran.summary()));
    }
    Ok(())
}

/// `--no-restart`: the step naming the command that would load the new script.
pub fn restart_skipped(ctx: &Context, version: &Version) -> Step {
    let (program, args) = restart_command(version, &ctx.config.firewall_script);
    Step::RestartSkipped {
        command: format!("{program} {}", args.join(" ")),
    }
}

/// What a verification expects of each rule after the restart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expect {
    /// Loaded: the rules a restore put back.
    Loaded,
    /// Not loaded: the rules an undo took out.
    Gone,
}

/// Checks each rule in what is loaded now, a step each; how many are not as expected.
/// `restore` and `undo` verify here.
pub fn verify(ctx: &Context, rules: &[Rule], expect: Expect, steps: &mut Vec<Step>) -> usize {
    let mut wrong = 0;
    for l in iptables::check_loaded(&ctx.root, rules) {
        if (l.state == RuleState::Loaded) != (expect == Expect::Loaded) {
            wrong += 1;
        }
        record_step(
            steps,
            if expect == Expect::Loaded {
                Step::Verified(l)
            } else {
                Step::Removed(l)
            },
        );
    }
    wrong
}

/// Checks the restored `rules` are loaded; `Err(step)` names what failed.
fn verify_restored(ctx: &Context, rules: &[Rule], steps: &mut Vec<Step>) -> Result<(), String> {
    let missing = verify(ctx, rules, Expect::Loaded, steps);
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

/// The rollback's step for one file put back (or not); whether it went back. `restore` and
/// `undo` roll back here.
pub fn rolled_back(path: &str, put_back: Result<()>, steps: &mut Vec<Step>) -> bool {
    match put_back {
        Ok(()) => {
            record_step(steps, Step::RolledBackFile { path: path.to_string() });
            true
        }
        Err(e) => {
            record_step(
                steps,
                Step::RollbackFileFailed {
                    path: path.to_string(),
                    error: format!("{e:#}"),
                },
            );
            false
        }
    }
}

/// The rollback's restart, with the files put back: its steps go to `steps` as the rollback's, a
/// failure as `SecondRestartFailed`; whether it succeeded.
pub fn restart_again(ctx: &Context, version: &Version, steps: &mut Vec<Step>) -> bool {
    let mut again = Vec::new();
    let restarted = restart(ctx, version, &mut again);
    steps.extend(again.into_iter().map(|s| Step::Rollback(Box::new(s))));
    match restarted {
        Ok(()) => true,
        Err(step) => {
            record_step(steps, Step::SecondRestartFailed { step });
            false
        }
    }
}

/// Puts the written firewall files back from their backups, restarts again and checks that what
/// is loaded matches what was loaded before the restore. sysctl files are not the firewall's and
/// stay as written.
fn roll_back(ctx: &Context, new: &Snapshot, written: &[Written], before: &[Option<String>; 2], steps: &mut Vec<Step>) {
    for w in written.iter().filter(|w| !sysctl::is_sysctl_file(&w.path)) {
        let put_back = w.put_back(&ctx.root);
        match &put_back {
            Ok(()) => log::warn!("rolled back {}", ctx.root.path(&w.path).display()),
            Err(e) => log::error!("rollback of {} failed: {e:#}", ctx.root.path(&w.path).display()),
        }
        rolled_back(&w.path, put_back, steps);
    }
    if !restart_again(ctx, &new.manifest.version, steps) {
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
    record_step(steps, Step::RollbackChecked(check));
}

/// Brings the running system in line with the written files: restart, verify or roll back the
/// firewall; set the running sysctl values. Returns the steps taken and the failed step, if any,
/// after rolling back.
pub fn activate(
    ctx: &Context,
    old: &Snapshot,
    new: &Snapshot,
    cmp: &Comparison,
    written: &[Written],
    no_restart: bool,
) -> Result<(Vec<Step>, Option<String>)> {
    let mut steps = Vec::new();
    // An earlier run wrote files and stopped before the running system followed: finish its work.
    let pending = ctx.state.activation_pending();
    let resumed = pending && written.is_empty();
    if resumed {
        record_step(&mut steps, Step::Resumed);
    }
    let script = &ctx.config.firewall_script;
    let mut failed = None;
    if written.iter().any(|w| &w.path == script) || (pending && new.content(script).is_some()) {
        if no_restart {
            record_step(&mut steps, restart_skipped(ctx, &new.manifest.version));
        } else {
            failed = restart_verify_or_roll_back(ctx, old, new, cmp, written, &mut steps)?;
        }
    }
    if resumed {
        set_running_from_files(ctx, new, &mut steps)?;
    }
    if written.iter().any(|w| sysctl::is_sysctl_file(&w.path)) {
        // The sysctl fix does not depend on the firewall: it goes on after a rollback.
        let sysctl_failed = set_written_values(ctx, cmp, &mut steps);
        failed = failed.or(sysctl_failed);
    }
    // After a signal the next run finishes the activation.
    if (!no_restart || failed.is_some()) && signals::received().is_none() {
        ctx.state.finish_activation()?;
    }
    Ok((steps, failed))
}

/// Restarts the firewall and verifies the rules; when either fails, rolls back. The failed step.
fn restart_verify_or_roll_back(
    ctx: &Context,
    old: &Snapshot,
    new: &Snapshot,
    cmp: &Comparison,
    written: &[Written],
    steps: &mut Vec<Step>,
) -> Result<Option<String>> {
    let rules = rules_to_verify(old, cmp, &ctx.config.firewall_script)?;
    // A signal starts no new step: the files stay written, the activation journal stays for
    // the next run to finish, and the restore is recorded as stopped at this step.
    if let Some(signal) = signals::received() {
        return Ok(Some(format!("the firewall restart (not started: {signal} received)")));
    }
    let before = dumps(ctx);
    let restarted = restart(ctx, &new.manifest.version, steps);
    if let (Ok(()), Some(signal)) = (&restarted, signals::received()) {
        return Ok(Some(format!(
            "verifying the restored rules (not started: {signal} received; the restart finished)"
        )));
    }
    let Err(step) = restarted.and_then(|()| verify_restored(ctx, &rules, steps)) else {
        return Ok(None);
    };
    record_step(steps, Step::Failed { step: step.clone() });
    roll_back(ctx, new, written, &before, steps);
    Ok(Some(step))
}

/// A resumed run: brings running values of managed keys in line with the files, as `sysctl -p`
/// would.
fn set_running_from_files(ctx: &Context, new: &Snapshot, steps: &mut Vec<Step>) -> Result<()> {
    for key in &ctx.config.managed_sysctl {
        let files = new.sysctl_effective(key);
        let (Some(running), Some(value)) = (procsys::read(&ctx.root, key), files.value.as_deref()) else {
            continue;
        };
        if sysctl::running_differs(&running, &files) {
            let now = procsys::write(&ctx.root, key, value)?;
            record_step(
                steps,
                Step::SysctlSet {
                    key: sysctl::display_key(&sysctl::canonical_key(key)),
                    was: running,
                    now,
                },
            );
        }
    }
    Ok(())
}

/// Sets the running value of each key the written sysctl files set; the first key whose running
/// value then reads otherwise is the failed step.
fn set_written_values(ctx: &Context, cmp: &Comparison, steps: &mut Vec<Step>) -> Option<String> {
    let mut failed = None;
    for f in cmp.sysctl.iter() {
        let Some(value) = f.set_to.as_deref() else { continue };
        let was = procsys::read(&ctx.root, &f.key).unwrap_or_else(|| "?".into());
        match procsys::write(&ctx.root, &f.key, value) {
            Ok(now) => {
                let wrong = !sysctl::same_value(&now, value);
                record_step(
                    steps,
                    Step::SysctlSet {
                        key: f.key.clone(),
                        was,
                        now: now.clone(),
                    },
                );
                if wrong {
                    log::error!("running {} reads {now}, not {value}", f.key);
                    failed.get_or_insert(format!("sysctl (running {} reads {now}, not {value})", f.key));
                }
            }
            Err(e) => record_step(
                steps,
                Step::SysctlNotApplied {
                    key: f.key.clone(),
                    error: format!("{e:#}"),
                },
            ),
        }
    }
    failed
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
            record_step(
                &mut steps,
                Step::RunningDiffers {
                    key: f.key.clone(),
                    running,
                    files: files.to_string(),
                },
            );
        } else if dry_run {
            record_step(
                &mut steps,
                Step::SysctlWouldSet {
                    key: f.key.clone(),
                    was: running,
                    to: files.to_string(),
                },
            );
        } else {
            match procsys::write(&ctx.root, &f.key, files) {
                Ok(now) => {
                    record_step(
                        &mut steps,
                        Step::SysctlSet {
                            key: f.key.clone(),
                            was: running,
                            now,
                        },
                    );
                }
                Err(e) => record_step(
                    &mut steps,
                    Step::SysctlNotApplied {
                        key: f.key.clone(),
                        error: format!("{e:#}"),
                    },
                ),
            }
        }
    }
    steps
}
