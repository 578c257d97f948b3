//! `undo`: put back the files of the last restore from its backups, with the safety of a
//! restore: each file must still hold what the restore wrote, the script passes `bash -n`, the
//! current file is backed up, the write is atomic, the firewall is restarted with the version's
//! command and the undone rules are checked gone; on failure everything is put back again.

use anyhow::{bail, Context as _, Result};
use serde::Serialize;

use std::path::PathBuf;

use crate::context::Context;
use crate::domain::firewall::Script;
use crate::domain::plan::unified_diff;
use crate::domain::rule;
use crate::domain::snapshot::sha256_hex;
use crate::domain::steps::{serialize_steps, Step};
use crate::domain::version::Version;
use crate::restore::activate::{self, Expect};
use crate::restore::apply;
use crate::store::restores::{RestoreRecord, Restores};
use crate::system::fsutil::{self, Owner};
use crate::system::{capture, process};

/// One file `undo` puts back.
#[derive(Debug, Clone, Serialize)]
pub struct UndoneFile {
    pub path: String,
    /// `put-back` from the restore's backup, or `removed` (the restore created it).
    pub action: &'static str,
    /// The backup the restore took, which `undo` writes back.
    pub from: Option<String>,
    /// The backup `undo` took of the file as the restore left it.
    pub backup: Option<String>,
    /// A dry run's unified diff.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub diff: Option<String>,
}

/// How an `undo` ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum UndoOutcome {
    Planned,
    Undone,
    /// The undo failed and everything was put back as the restore left it.
    RolledBack,
    /// The undo failed and so did part of putting things back.
    RollbackIncomplete,
}

/// The report of `undo`.
#[derive(Debug, Clone, Serialize)]
pub struct UndoReport {
    /// The restore undone.
    pub restore: String,
    pub restored_from: String,
    pub files: Vec<UndoneFile>,
    pub dry_run: bool,
    #[serde(serialize_with = "serialize_steps")]
    pub live: Vec<Step>,
    pub outcome: UndoOutcome,
    #[serde(skip)]
    pub failed: Option<String>,
}

/// One file's undo, planned.
struct Planned {
    path: String,
    /// What the restore wrote (the file now).
    now: Vec<u8>,
    owner: Owner,
    /// What goes back (`None`: remove).
    back: Option<Vec<u8>>,
    from: Option<PathBuf>,
}

/// Plans the undo of `record`: each file must still hold what the restore wrote, its backup must
/// be where the tool puts backups and still there, and the script to put back must pass
/// `bash -n`; nothing is written.
fn plan(ctx: &Context, record: &RestoreRecord) -> Result<Vec<Planned>> {
    let mut out = Vec::new();
    for f in &record.files {
        let path = ctx.root.inside(&f.path)?;
        fsutil::refuse_symlink(&path)?;
        let now = fsutil::read_bounded(&path).with_context(|| format!("cannot undo restore {}", record.id))?;
        if sha256_hex(&now) != f.written_sha256 {
            bail!(
                "{} changed since restore {} wrote it; refusing to undo (nothing was changed)",
                path.display(),
                record.id
            );
        }
        if let Some(b) = f
            .backup
            .as_deref()
            .filter(|b| !RestoreRecord::is_backup_of(&ctx.root, &f.path, b))
        {
            bail!(
                "restore record {} names {} as the backup of {}, which is not where the tool puts backups; refusing to undo (nothing was changed)",
                record.id,
                b.display(),
                f.path
            );
        }
        let back = match &f.backup {
            Some(b) => Some(fsutil::read_bounded(b).with_context(|| {
                format!(
                    "the backup of {} is gone; refusing to undo (nothing was changed)",
                    f.path
                )
            })?),
            None => None,
        };
        if let (true, Some(bytes)) = (f.path == ctx.config.firewall_script, &back) {
            process::check_syntax(&ctx.root, &std::env::temp_dir(), bytes)
                .with_context(|| format!("{}: the backup to put back", path.display()))?;
        }
        let owner = Owner::of(&std::fs::metadata(&path)?);
        out.push(Planned {
            path: f.path.clone(),
            now,
            owner,
            back,
            from: f.backup.clone(),
        });
    }
    Ok(out)
}

/// Undoes the last restore not undone yet, in the phases of a restore: plan (each file still as
/// the restore wrote it, the backup's script passes `bash -n`), back up and write, restart and
/// verify the undone rules are gone, or roll back.
pub fn undo(ctx: &Context, dry_run: bool, no_restart: bool) -> Result<UndoReport> {
    let restores = ctx.state.restores();
    let mut record = last_restore(ctx, &restores)?;
    let planned = plan(ctx, &record)?;
    // The live version picks the restart command, read once before anything is written.
    let version = capture::capture(&ctx.root, &ctx.config, None)?.manifest.version;
    let mut report = planned_report(&record, &planned, dry_run);
    if dry_run {
        return Ok(report);
    }
    let (done, error) = write_back_all(ctx, &planned, &mut report.files);
    let script = planned.iter().find(|p| p.path == ctx.config.firewall_script);
    let failed = match error {
        Some(e) => Some(format!("writing the files ({e})")),
        None if script.is_some() && !no_restart => {
            let back = script.and_then(|p| p.back.as_deref());
            restart_and_verify(ctx, &version, &record, back, &mut report.live).err()
        }
        None if script.is_some() => {
            super::record_step(&mut report.live, activate::restart_skipped(ctx, &version));
            None
        }
        None => None,
    };
    if let Some(step) = failed {
        let restart = script.is_some() && !no_restart;
        roll_back(ctx, &version, &done, restart, step, &mut report);
        return Ok(report);
    }
    record.undone = Some(humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string());
    record.undo_backups = report
        .files
        .iter()
        .filter_map(|f| f.backup.as_ref().map(PathBuf::from))
        .collect();
    restores.save(&record)?;
    report.outcome = UndoOutcome::Undone;
    Ok(report)
}

/// The last restore not undone yet.
fn last_restore(ctx: &Context, restores: &Restores) -> Result<RestoreRecord> {
    if let Some(record) = restores.last()? {
        return Ok(record);
    }
    if let Some(done) = restores.all()?.pop() {
        bail!("nothing to undo: the last restore ({}) was undone already", done.id);
    }
    bail!(
        "nothing to undo: no restore is recorded in {}",
        ctx.state.dir().display()
    )
}

/// The report of the planned undo (a dry run's unified diffs in it).
fn planned_report(record: &RestoreRecord, planned: &[Planned], dry_run: bool) -> UndoReport {
    UndoReport {
        restore: record.id.clone(),
        restored_from: record.from.clone(),
        files: planned
            .iter()
            .map(|p| UndoneFile {
                path: p.path.clone(),
                action: if p.back.is_some() { "put-back" } else { "removed" },
                from: p.from.as_ref().map(|b| b.display().to_string()),
                backup: None,
                diff: dry_run.then(|| unified_diff(&p.path, &p.now, p.back.as_deref().unwrap_or_default())),
            })
            .collect(),
        dry_run,
        live: Vec::new(),
        outcome: UndoOutcome::Planned,
        failed: None,
    }
}

/// Backs up and writes back each file in turn, up to the first that fails: the files done, and
/// the error.
fn write_back_all<'a>(
    ctx: &Context,
    planned: &'a [Planned],
    shown: &mut [UndoneFile],
) -> (Vec<&'a Planned>, Option<String>) {
    let stamp = fsutil::stamp();
    let mut done = Vec::new();
    for (p, shown) in planned.iter().zip(shown.iter_mut()) {
        match write_back(ctx, p, &stamp) {
            Ok(backup) => {
                log::info!("undo: {} {}", shown.action, p.path);
                shown.backup = Some(backup.display().to_string());
                done.push(p);
            }
            Err(e) => return (done, Some(format!("{e:#}"))),
        }
    }
    (done, None)
}

/// Backs up what is there, then writes back the restore's backup (or removes the file the
/// restore created); the backup taken.
fn write_back(ctx: &Context, p: &Planned, stamp: &str) -> Result<PathBuf> {
    let path = ctx.root.inside(&p.path)?;
    let backup = apply::back_up(&path, stamp, None)?;
    apply::write(&path, p.back.as_deref(), p.owner, None)?;
    Ok(backup)
}

/// Restarts the firewall and checks the undone rules are gone (those the script put back does
/// not hold); `Err(step)` names what failed.
fn restart_and_verify(
    ctx: &Context,
    version: &Version,
    record: &RestoreRecord,
    script: Option<&[u8]>,
    steps: &mut Vec<Step>,
) -> Result<(), String> {
    activate::restart(ctx, version, steps)?;
    let Some(script) = script else { return Ok(()) };
    // The rules the put-back script still writes, wherever they are in it: those stay loaded.
    let script = Script::parse_as(script, crate::domain::rule::Iptables::of(version));
    let mut kept: std::collections::HashMap<u128, u8> = std::collections::HashMap::new();
    for (_, key) in script.rules() {
        *kept.entry(key.hash()).or_default() |= key.reach();
    }
    let covered = |r: &rule::Rule| {
        kept.get(&r.key().hash())
            .is_some_and(|&reach| reach & r.reach() == r.reach())
    };
    let rules: Vec<_> = record
        .rules
        .iter()
        .filter_map(|r| rule::parse_dump_line(&r.canonical, r.family).ok().flatten())
        .filter(|r| !covered(r))
        .collect();
    let still = activate::verify(ctx, &rules, Expect::Gone, steps);
    if still > 0 {
        return Err(format!("verify ({still} undone rule(s) still loaded)"));
    }
    Ok(())
}

/// After `step` failed: puts each file done back as the restore left it and, when the firewall
/// was restarted, restarts it again.
fn roll_back(
    ctx: &Context,
    version: &Version,
    done: &[&Planned],
    restart: bool,
    step: String,
    report: &mut UndoReport,
) {
    super::record_step(&mut report.live, Step::Failed { step: step.clone() });
    let mut complete = true;
    for p in done.iter().rev() {
        complete &= activate::rolled_back(&p.path, put_back(ctx, p), &mut report.live);
    }
    if restart && !done.is_empty() {
        complete &= activate::restart_again(ctx, version, &mut report.live);
    }
    report.outcome = if complete {
        UndoOutcome::RolledBack
    } else {
        UndoOutcome::RollbackIncomplete
    };
    report.failed = Some(step);
}

/// Puts a file back as the restore left it, unless it changed since the undo wrote it (a file
/// the undo removed is written again).
fn put_back(ctx: &Context, p: &Planned) -> Result<()> {
    let path = ctx.root.inside(&p.path)?;
    match &p.back {
        Some(back) => fsutil::put_back(&path, Some(&p.now), p.owner, &sha256_hex(back), None),
        None => fsutil::atomic_write(&path, &p.now, p.owner),
    }
}
