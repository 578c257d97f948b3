//! The workflow `restore` and `hook post-install` share: compare, plan, apply the files (backup,
//! check, atomic write, undo), then bring the running system in line (restart, verify, roll back).

pub mod activate;
pub mod apply;
pub mod undo;

use anyhow::{bail, Result};

use crate::context::Context;
use crate::domain::compare::{compare, Pair};
use crate::domain::plan;
use crate::domain::report::{ChangeReport, Outcome, Report, Side};
use crate::domain::snapshot::{Manifest, Snapshot};
use crate::domain::steps::{RollbackCheck, Step};
use crate::domain::sysctl;
use crate::exit_codes::{ExitCode, Failure};
use crate::store::restores::{RestoreRecord, RestoredFile, RestoredRule};
use crate::system::iptables::{self, RulesCheck};
use crate::system::{fsutil, process};

/// What a restore does.
#[derive(Debug, Clone, Default)]
pub struct RestoreOptions {
    /// The state to restore from (default: the newest snapshot from an older version).
    pub from: Option<String>,
    /// Change nothing; plan and report only.
    pub dry_run: bool,
    /// Do not restart the firewall after rewriting its script.
    pub no_restart: bool,
    /// Put each change's unified diff in the report (a dry run always does).
    pub diffs: bool,
}

/// The outcome of planning and (unless dry) applying a restore.
pub struct Restored {
    pub report: Report,
    pub old: Snapshot,
    pub new: Snapshot,
    pub written: Vec<apply::Written>,
    /// The step that failed and was rolled back, if any.
    pub failed: Option<String>,
    /// Why the firewall part was not written: iptables refuses rules to restore.
    pub refused: Option<String>,
    /// The stamp of this run's backups (`PATH.org.STAMP`) and of its record.
    pub stamp: String,
}

impl Restored {
    /// Whether a rollback ran and did not get everything back: a file not put back, the second
    /// restart failed, or the loaded rules differ from (or cannot be compared with) before.
    pub fn rollback_incomplete(&self) -> bool {
        self.report.live.iter().any(|s| {
            matches!(
                s,
                Step::RollbackFileFailed { .. }
                    | Step::SecondRestartFailed { .. }
                    | Step::RollbackChecked(RollbackCheck::Differs | RollbackCheck::Unavailable)
            )
        })
    }

    /// Files the restore wrote that stay written after a failure: the sysctl files, whose fix
    /// does not depend on the firewall.
    pub fn kept(&self) -> Vec<&str> {
        if self.failed.is_none() {
            return Vec::new();
        }
        let put_back: Vec<&str> = self
            .report
            .live
            .iter()
            .filter_map(|s| match s {
                Step::RolledBackFile { path } => Some(path.as_str()),
                _ => None,
            })
            .collect();
        self.written
            .iter()
            .map(|w| w.path.as_str())
            .filter(|p| !put_back.contains(p))
            .collect()
    }

    /// How a failed restore ends: exit 3 when anything is left changed (each file named), 2 when
    /// everything is as it was.
    pub fn error(&self) -> Option<Failure> {
        let step = self.failed.as_ref()?;
        let kept = self.kept();
        let (code, error) = if let Some(refused) = &self.refused {
            (
                ExitCode::ChangesLeft,
                anyhow::anyhow!("{refused}\nthese files keep their changes: {}", kept.join(", ")),
            )
        } else if self.rollback_incomplete() {
            (
                ExitCode::ChangesLeft,
                anyhow::anyhow!(
                    "restore failed at {step}, and the rollback did not complete; the firewall state is unknown: check it by hand"
                ),
            )
        } else if !kept.is_empty() {
            (
                ExitCode::ChangesLeft,
                anyhow::anyhow!(
                    "restore failed at {step}; these files keep their changes: {}",
                    kept.join(", ")
                ),
            )
        } else {
            (
                ExitCode::Error,
                anyhow::anyhow!("restore failed at {step}; the previous files and firewall rules were put back"),
            )
        };
        Some(Failure::new(code, error))
    }
}

/// Restores onto the live root and, unless a dry run, brings the running system in line:
/// restart, verification, rollback, live sysctl values.
pub fn restore(ctx: &Context, opts: &RestoreOptions) -> Result<Restored> {
    let mut r = restore_files(ctx, opts)?;
    if !opts.dry_run {
        let (steps, failed) =
            activate::activate(ctx, &r.old, &r.new, &r.report.comparison, &r.written, opts.no_restart)?;
        r.report.live.extend(steps);
        r.failed = failed.or(r.failed.take());
    }
    if !r.written.iter().any(|w| sysctl::is_sysctl_file(&w.path)) {
        let steps = activate::running_values(ctx, &r.report.comparison, opts.dry_run);
        // A running value set (or to be set) is a change, whatever the files needed.
        if r.report.outcome == Outcome::NothingToRestore {
            if steps.iter().any(|s| matches!(s, Step::SysctlSet { .. })) {
                r.report.outcome = Outcome::Restored;
            } else if steps.iter().any(|s| matches!(s, Step::SysctlWouldSet { .. })) {
                r.report.outcome = Outcome::Planned;
            }
        }
        r.report.live.extend(steps);
    }
    if !opts.dry_run {
        // The restore is done either way; without its record only `undo` cannot find it.
        if let Err(e) = record(ctx, &r) {
            log::error!("cannot record this restore for `undo` ({e:#}); its backups are named above");
        }
    }
    if r.failed.is_some() {
        r.report.kept = r.kept().into_iter().map(str::to_string).collect();
        r.report.outcome = if r.rollback_incomplete() {
            Outcome::RollbackIncomplete
        } else if !r.report.kept.is_empty() {
            Outcome::PartlyRestored
        } else {
            Outcome::RolledBack
        };
    }
    Ok(r)
}

/// Records what the restore left written, for `undo` and `prune-backups`.
fn record(ctx: &Context, r: &Restored) -> Result<()> {
    let kept: Vec<&str> = if r.failed.is_some() {
        r.kept()
    } else {
        r.written.iter().map(|w| w.path.as_str()).collect()
    };
    let files: Vec<RestoredFile> = r
        .written
        .iter()
        .filter(|w| kept.contains(&w.path.as_str()))
        .map(|w| RestoredFile {
            path: w.path.clone(),
            backup: w.backup.clone(),
            written_sha256: w.sha256.clone(),
        })
        .collect();
    if files.is_empty() {
        return Ok(());
    }
    let script = &ctx.config.firewall_script;
    let mut rules = Vec::new();
    if kept.contains(&script.as_str()) {
        for d in r.report.comparison.discarded.iter().filter(|d| d.restore) {
            rules.push(RestoredRule {
                canonical: d.canonical.clone(),
                family: d.family,
            });
        }
    }
    let record = RestoreRecord {
        id: format!("{}-{}", r.stamp, std::process::id()),
        when: humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string(),
        from: r.report.old.name.clone(),
        version: r.report.new.version.clone(),
        files,
        rules,
        undone: None,
        undo_backups: Vec::new(),
    };
    ctx.state.restores().save(&record)
}

/// Plans and applies the file changes of a restore onto the live root.
fn restore_files(ctx: &Context, opts: &RestoreOptions) -> Result<Restored> {
    let (old, new) = ctx.sides(opts.from.as_deref(), None, false)?;
    let pair = Pair::read(&old, &new, &ctx.config.firewall_script)?;
    let cmp = compare(&pair, &ctx.config)?;
    log::info!(
        "restore: from {} ({}) onto {} ({})",
        old.name(),
        old.manifest.version,
        new.name(),
        new.manifest.version
    );
    let to_restore = cmp.discarded.iter().filter(|d| d.restore).count();
    log::info!(
        "{} discarded rule(s): {to_restore} to restore, {} skipped",
        cmp.discarded.len(),
        cmp.discarded.len() - to_restore
    );
    for d in &cmp.discarded {
        let verdict = if d.restore { "restore" } else { "skip" };
        log::debug!("discarded rule, {verdict}: line {} {}: {}", d.line, d.text, d.reason);
    }
    for f in &cmp.sysctl {
        log::info!("sysctl {}: {}", f.key, f.reason);
    }
    let mut plan = plan::plan(&pair, &cmp, &ctx.config)?;
    // bash reads the new script while the rules go through iptables (its answer is taken
    // before anything is written).
    let mut syntax = plan
        .changes
        .iter()
        .find(|c| c.path == ctx.config.firewall_script)
        .filter(|_| !opts.dry_run || process::can_check_syntax(&ctx.root))
        .map(|change| {
            if opts.dry_run {
                process::start_syntax_check(&ctx.root, &std::env::temp_dir(), &change.new)
            } else {
                apply::check_ahead(&ctx.root, change)
            }
        });
    let stamp = fsutil::stamp();
    let mut live = Vec::new();
    let mut refused = None;
    // The new script's lines have served the plan; the old script's are read once more below.
    drop(pair.new);
    // Every rule to restore goes through the appliance's own iptables before a byte is written.
    let to_test: Vec<_> = match &pair.old {
        Some(old) => cmp
            .discarded
            .iter()
            .filter(|d| d.restore)
            .filter_map(|d| old.rule_to_test(d.index))
            .collect(),
        None => Vec::new(),
    };
    if !to_test.is_empty() {
        match iptables::check_rules(&ctx.root, &to_test) {
            RulesCheck::Accepted => live.push(Step::RulesChecked { count: to_test.len() }),
            RulesCheck::NotRun(why) => live.push(Step::RulesNotChecked { why }),
            RulesCheck::Rejected(rejected) => {
                let list: Vec<String> = rejected
                    .iter()
                    .map(|(line, text, family, why)| format!("  line {line} ({family}): {text}: {why}"))
                    .collect();
                let message = format!(
                    "{}: iptables refuses rule(s) to restore; the firewall script was not changed:\n{}",
                    old.location(&ctx.config.firewall_script),
                    list.join("\n")
                );
                plan.changes.retain(|c| c.path != ctx.config.firewall_script);
                if plan.changes.is_empty() || opts.dry_run {
                    bail!(
                        "{}; nothing was changed",
                        message.replace("; the firewall script was not changed", "")
                    );
                }
                // The sysctl fix does not depend on the firewall: it goes on.
                log::error!("{message}");
                refused = Some(message);
            }
        }
    }
    // What only the planning needed is freed while bash reads, not after.
    drop(to_test);
    drop(pair.old);
    let script_change = plan.changes.iter().find(|c| c.path == ctx.config.firewall_script);
    let written = if opts.dry_run || plan.changes.is_empty() {
        if let (true, Some(_)) = (opts.dry_run, script_change) {
            if let Some(check) = syntax.take() {
                check?.finish()?;
                live.push(Step::SyntaxChecked);
            } else {
                live.push(Step::SyntaxNotChecked {
                    root: ctx.root.dir().display().to_string(),
                });
            }
        }
        Vec::new()
    } else {
        ctx.state.begin_activation()?;
        apply::apply(&ctx.root, &plan, &ctx.config.firewall_script, &stamp, syntax.take())?
    };
    let changes = plan
        .changes
        .iter()
        .map(|c| {
            let backup = written
                .iter()
                .find(|w| w.path == c.path)
                .and_then(|w| w.backup.as_deref());
            ChangeReport::new(c, backup, opts.dry_run || opts.diffs)
        })
        .collect();
    let outcome = if plan.changes.is_empty() {
        Outcome::NothingToRestore
    } else if opts.dry_run {
        Outcome::Planned
    } else {
        Outcome::Restored
    };
    Ok(Restored {
        report: Report {
            kept: Vec::new(),
            command: "restore",
            old: Side::of(&old),
            new: Side::of(&new),
            comparison: cmp,
            changes,
            dry_run: opts.dry_run,
            live,
            outcome,
        },
        old,
        new,
        written,
        failed: refused.is_some().then(|| "the iptables check".to_string()),
        refused,
        stamp,
    })
}

/// Whether the live system owes a restore.
pub enum Owed {
    /// Nothing: no snapshot of an older version is newer than the last one at this version, or
    /// restoring from it would change nothing.
    No,
    /// Restoring from this snapshot (of an older version) would change something.
    From(Manifest),
    /// Restoring from this snapshot cannot be planned; the reason.
    Unknown(Manifest, String),
}

/// A restore is owed when the newest snapshot was taken on an older version of the live product
/// (an upgrade since, with no snapshot after it) and a restore from it would change something.
pub fn owed(ctx: &Context) -> Result<Owed> {
    let live = crate::system::capture::capture(&ctx.root, &ctx.config, None)?;
    let Some(newest) = ctx.state.snapshots().manifests()?.pop() else {
        return Ok(Owed::No);
    };
    let (old, now) = (&newest.version, &live.manifest.version);
    if old.product != now.product || old.release >= now.release {
        return Ok(Owed::No);
    }
    let opts = RestoreOptions {
        from: Some(newest.id.clone()),
        dry_run: true,
        ..RestoreOptions::default()
    };
    Ok(match restore(ctx, &opts) {
        Ok(r) if r.report.outcome == Outcome::NothingToRestore => Owed::No,
        Ok(_) => Owed::From(newest),
        Err(e) => Owed::Unknown(newest, format!("{e:#}")),
    })
}
