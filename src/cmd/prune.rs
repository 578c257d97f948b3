//! `forget`, `prune` and `prune-backups`: remove what the tool keeps, never what a restore
//! still needs.

use std::fmt::Write as _;

use anyhow::{bail, Result};
use serde::Serialize;

use crate::context::Context;
use crate::exit_codes::ExitCode;
use crate::store::pending::Pending;

/// A snapshot that must stay, and why.
#[derive(Debug, Clone, Serialize)]
struct Protected {
    id: String,
    why: &'static str,
}

/// The snapshots a restore needs: the one a plain `restore` uses now, and the one a pending
/// restore names. Refuses when the live version cannot be read (it decides which one that is).
fn protected(ctx: &Context) -> Result<Vec<Protected>> {
    // The newest records what the system was last seen as (an upgrade handled, an undo, a
    // revoked rule): without it the boot guard would compare with an older state.
    let newest = ctx.state.snapshots().manifests()?.pop().map(|m| m.id);
    let live = crate::system::capture::capture(&ctx.root, &ctx.config, None)
        .map_err(|e| anyhow::anyhow!("cannot tell which snapshot a restore needs ({e:#}); nothing removed"))?;
    let restore_default = ctx.state.snapshots().pre_upgrade(&live.manifest.version)?.map(|m| m.id);
    let pending = Pending::load(&ctx.state)?.and_then(|p| p.snapshot);
    let ids = [
        (newest, "the newest, which the boot guard compares the system with"),
        (restore_default, "the one a plain `restore` (and the boot guard) uses"),
        (pending, "the one the pending restore needs"),
    ];
    Ok(ids
        .into_iter()
        .filter_map(|(id, why)| Some(Protected { id: id?, why }))
        .collect())
}

#[derive(Serialize)]
struct Removed {
    removed: Vec<String>,
    protected: Vec<Protected>,
}

/// `forget SNAPSHOT`.
pub fn forget(ctx: &Context, json: bool, arg: &str) -> Result<ExitCode> {
    let store = ctx.state.snapshots();
    // Corrupt snapshots too: forgetting them is how they go.
    let ids: Vec<String> = store.entries()?.into_iter().map(|e| e.id).collect();
    // The id itself, else the one id holding `arg` anywhere.
    let hits: Vec<&String> = match ids.iter().find(|id| *id == arg) {
        Some(exact) => vec![exact],
        None => ids.iter().filter(|id| id.contains(arg)).collect(),
    };
    let id = match hits.as_slice() {
        [one] => (*one).clone(),
        [] => bail!("no snapshot {arg:?} in {}", store.dir.display()),
        many => bail!(
            "{arg:?} is part of more than one snapshot id: {}",
            many.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", ")
        ),
    };
    if let Some(p) = protected(ctx)?.into_iter().find(|p| p.id == id) {
        bail!("snapshot {id} is {}; not removed", p.why);
    }
    store.remove(&id)?;
    log::info!("forgot snapshot {id}");
    let report = Removed {
        removed: vec![id.clone()],
        protected: Vec::new(),
    };
    super::print(json, &report, || format!("removed snapshot {id}\n"))?;
    Ok(ExitCode::Success)
}

/// `prune --keep N`.
pub fn prune(ctx: &Context, json: bool, keep: usize) -> Result<ExitCode> {
    let protect = protected(ctx)?;
    let ids: Vec<String> = protect.iter().map(|p| p.id.clone()).collect();
    let removed = ctx.state.snapshots().prune(keep, &ids)?;
    let report = Removed {
        removed,
        protected: protect,
    };
    super::print(json, &report, || {
        let mut out = String::new();
        for id in &report.removed {
            let _ = writeln!(out, "removed  {id}");
        }
        for p in &report.protected {
            let _ = writeln!(out, "kept     {} ({})", p.id, p.why);
        }
        if report.removed.is_empty() {
            out.push_str("nothing to remove\n");
        }
        out
    })?;
    Ok(ExitCode::Success)
}

#[derive(Default, Serialize)]
struct BackupsPruned {
    removed: Vec<String>,
    /// Old enough, but the next `undo` needs them.
    kept: Vec<String>,
    /// Recorded backups already gone.
    missing: Vec<String>,
}

/// `prune-backups --older-than DAYS`: the `.org.STAMP` backups the restore records name, and the
/// hook scripts `register` saved, older than DAYS days.
pub fn prune_backups(ctx: &Context, json: bool, days: u64) -> Result<ExitCode> {
    let cutoff = std::time::SystemTime::now()
        .checked_sub(std::time::Duration::from_secs(days.saturating_mul(86_400)))
        .unwrap_or(std::time::UNIX_EPOCH);
    let mut candidates: Vec<(std::path::PathBuf, std::time::SystemTime)> = Vec::new();
    let records = ctx.state.restores().all()?;
    // The backups the next `undo` needs stay, whatever their age.
    let keep: Vec<std::path::PathBuf> = records
        .iter()
        .rev()
        .find(|r| r.undone.is_none())
        .map(|r| r.backups(&ctx.root))
        .unwrap_or_default();
    for record in &records {
        let when = humantime::parse_rfc3339(&record.when)
            .map_err(|e| anyhow::anyhow!("restore record {}: bad time {:?}: {e}", record.id, record.when))?;
        candidates.extend(record.backups(&ctx.root).into_iter().map(|b| (b, when)));
    }
    if let Ok(entries) = std::fs::read_dir(ctx.state.backups_dir()) {
        for e in entries.flatten() {
            if let Ok(modified) = e.metadata().and_then(|m| m.modified()) {
                candidates.push((e.path(), modified));
            }
        }
    }
    let mut report = BackupsPruned::default();
    for (path, when) in candidates {
        if when > cutoff {
            continue;
        }
        if keep.contains(&path) {
            report.kept.push(path.display().to_string());
            continue;
        }
        match std::fs::symlink_metadata(&path) {
            Ok(m) if m.is_file() => {
                std::fs::remove_file(&path).map_err(|e| anyhow::anyhow!("cannot remove {}: {e}", path.display()))?;
                log::info!("removed backup {}", path.display());
                report.removed.push(path.display().to_string());
            }
            Ok(_) => log::warn!("{} is not a regular file; left alone", path.display()),
            Err(_) => report.missing.push(path.display().to_string()),
        }
    }
    super::print(json, &report, || {
        let mut out = String::new();
        for p in &report.removed {
            let _ = writeln!(out, "removed  {p}");
        }
        for p in &report.kept {
            let _ = writeln!(out, "kept     {p} (the next `undo` needs it)");
        }
        if report.removed.is_empty() && report.kept.is_empty() {
            let _ = writeln!(out, "no backup older than {days} day(s)");
        }
        out
    })?;
    Ok(ExitCode::Success)
}
