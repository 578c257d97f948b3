//! The workflow `restore` and `hook post-install` share, in phases: plan, check the rules, check
//! the syntax, back up and write the files ([`files`], [`apply`]), then bring the running system
//! in line: restart, verify or roll back ([`activate`]). `undo` ([`undo`]) reuses the same
//! phases to put a restore's files back.

pub mod activate;
pub mod apply;
mod files;
pub mod undo;

use anyhow::Result;

use crate::context::Context;
use crate::domain::report::{Outcome, Report};
use crate::domain::snapshot::{Manifest, Snapshot};
use crate::domain::steps::{RollbackCheck, Step};
use crate::domain::sysctl;
use crate::exit_codes::{ExitCode, Failure};
use crate::store::restores::{RestoreRecord, RestoredFile, RestoredRule};

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
        let (code, error) = if self.rollback_incomplete() {
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
    let mut r = files::restore_files(ctx, opts)?;
    if !opts.dry_run {
        let (steps, failed) =
            activate::activate(ctx, &r.old, &r.new, &r.report.comparison, &r.written, opts.no_restart)?;
        r.report.live.extend(steps);
        r.failed = failed;
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
    if !opts.dry_run && r.failed.is_none() {
        // A restore that went through settles the upgrade in progress: its pre-install record
        // would otherwise choose (or block) the snapshot of a later automatic restore.
        if let Err(e) = crate::store::pending::PreInstall::clear(&ctx.state) {
            log::warn!("cannot clear the pre-install record: {e:#}");
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

/// Takes a step: says it in the log as it happens (its first line; a per-rule check and a
/// program's output at debug), then keeps it for the report. Each step is logged here once.
pub(crate) fn record_step(steps: &mut Vec<Step>, step: Step) {
    // Info: the report prints the step; the log keeps it (a failure's words say it failed).
    let level = match &step {
        Step::Verified(_) | Step::Removed(_) => log::Level::Debug,
        _ => log::Level::Info,
    };
    for (n, line) in step.lines().iter().enumerate() {
        log::log!(if n == 0 { level } else { log::Level::Debug }, "{}", line.trim_start());
    }
    steps.push(step);
}

/// The id of the record of the restore whose backups carry `stamp`.
pub fn record_id(stamp: &str) -> String {
    format!("{stamp}-{}", std::process::id())
}

/// The most restored rules the log names one by one; the record holds all.
const LOGGED_RULES: usize = 20;

/// Names in the log the rules a restore wrote back (at most [`LOGGED_RULES`], then how many
/// more and where the record of them all is).
pub(crate) fn log_restored_rules(ctx: &Context, cmp: &crate::domain::compare::Comparison, stamp: &str) {
    let restored: Vec<_> = cmp.discarded.iter().filter(|d| d.restore).collect();
    for d in restored.iter().take(LOGGED_RULES) {
        log::info!("restored rule (old line {}): {}", d.line, d.text);
    }
    if restored.len() > LOGGED_RULES {
        log::info!(
            "... and {} more restored rule(s): every one is in {}",
            restored.len() - LOGGED_RULES,
            ctx.state.restores().path(&record_id(stamp)).display()
        );
    }
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
    let sysctl = r
        .report
        .changes
        .iter()
        .filter(|c| sysctl::is_sysctl_file(&c.path) && kept.contains(&c.path.as_str()))
        .flat_map(|c| c.edits.iter().map(move |e| format!("{}: {e}", c.path)))
        .collect();
    let record = RestoreRecord {
        id: record_id(&r.stamp),
        when: humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string(),
        from: r.report.old.name.clone(),
        version: r.report.new.version.clone(),
        files,
        rules,
        sysctl,
        undone: None,
        undo_backups: Vec::new(),
    };
    ctx.state.restores().save(&record)
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
