//! Writes a plan to disk: validate, back up, replace atomically, undo on failure.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use serde::Serialize;

use crate::domain::plan::{FileChange, Plan};
use crate::domain::snapshot::sha256_hex;
use crate::exit_codes::{ExitCode, Failure};
use crate::fault;
use crate::root::Root;
use crate::system::fsutil::{self, Owner, Staged, StagedBackup};
use crate::system::process::{start_syntax_check_of, SyntaxCheck};

/// A file `restore` replaced.
#[derive(Debug, Clone, Serialize)]
pub struct Written {
    pub path: String,
    /// The backup taken first (`None` for a file that did not exist).
    pub backup: Option<PathBuf>,
    /// Mode and owner the file had (and has again when put back).
    #[serde(skip)]
    pub owner: Owner,
    /// SHA-256 of what was written: putting back never clobbers a later change, and the
    /// restore's record holds it for `undo`.
    #[serde(skip)]
    pub sha256: String,
}

impl Written {
    /// Puts the file back from its backup (or removes it when it was new).
    pub fn put_back(&self, root: &Root) -> Result<()> {
        let path = root.inside(&self.path)?;
        let old = match &self.backup {
            Some(b) => Some(fsutil::read_bounded(b)?),
            None => None,
        };
        fsutil::put_back(&path, old.as_deref(), self.owner, &self.sha256, self.backup.as_deref())
    }
}

/// Mode and owner for a file the restore writes: an existing file keeps its own; a new file gets
/// mode 0644 and the owner and group of the directory it is created in (root on an appliance,
/// the user in a user's tree), so no chown is needed where none would change anything.
fn owner_for(root: &Root, change: &FileChange) -> Result<Owner> {
    let path = root.inside(&change.path)?;
    match std::fs::metadata(&path) {
        Ok(m) => Ok(Owner::of(&m)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let dir = path.parent().unwrap_or(root.dir());
            let d = std::fs::metadata(dir).with_context(|| format!("cannot read {}", dir.display()))?;
            Ok(Owner {
                mode: 0o644,
                ..Owner::of(&d)
            })
        }
        Err(e) => Err(e).with_context(|| format!("cannot read {}", path.display())),
    }
}

/// Starts `bash -n` on a script's new content, staged beside the script (mode, owner and
/// extended attributes as it will have them): what bash checks is the file [`apply`] renames into
/// place.
pub fn check_ahead(root: &Root, change: &FileChange) -> Result<SyntaxCheck> {
    let path = root.inside(&change.path)?;
    let staged = fsutil::stage_write(&path, &change.new, owner_for(root, change)?)?;
    start_syntax_check_of(root, staged)
}

/// Applies `plan`: every file is checked against what was planned from, scripts pass `bash -n`,
/// each file is backed up as `PATH.org.STAMP`, then replaced atomically. If a later file fails,
/// the files already written are put back, so either every file changes or none does.
/// `syntax`: the script's `bash -n`, when already started ([`check_ahead`]). bash reads the new
/// script staged beside the old one, the very file later renamed into place; the script's
/// backup is written while bash reads (the other files are small). Nothing is named or renamed
/// before bash accepts the script.
pub fn apply(
    root: &Root,
    plan: &Plan,
    script_path: &str,
    stamp: &str,
    syntax: Option<Result<SyntaxCheck>>,
) -> Result<Vec<Written>> {
    let ahead = prepare(root, plan, script_path, syntax)?;
    // What each file will hold, hashed while bash reads (the script's hash takes a while).
    let hashes: Vec<String> = plan.changes.iter().map(|c| sha256_hex(&c.new)).collect();
    let script = StagedScript {
        new: check_syntax(root, plan, script_path, ahead.syntax)?,
        backup: ahead.backup,
    };
    write_all(root, plan, script_path, stamp, script, hashes)
}

/// The script's work started before anything is written: its `bash -n`, and its backup.
struct Ahead {
    syntax: Option<Result<SyntaxCheck>>,
    backup: Option<StagedBackup>,
}

/// The script's new content as bash accepted it and its backup, staged beside it.
struct StagedScript {
    new: Option<Staged>,
    backup: Option<StagedBackup>,
}

/// A file's content now, checked against what the plan was made from.
fn check_unchanged(change: &FileChange, path: &Path) -> Result<Option<Vec<u8>>> {
    fsutil::refuse_symlink(path)?;
    let current = match std::fs::symlink_metadata(path) {
        Ok(_) => Some(fsutil::read_bounded(path)?),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
    };
    if current.as_deref() != change.old {
        bail!(
            "{} changed while the restore was planned; nothing was changed, run again",
            path.display()
        );
    }
    Ok(current)
}

/// Checks every file is as planned from and clears what an interrupted run left beside it;
/// for the script, starts `bash -n` (unless started already) and stages its backup.
fn prepare(root: &Root, plan: &Plan, script_path: &str, mut syntax: Option<Result<SyntaxCheck>>) -> Result<Ahead> {
    let mut backup = None;
    for change in &plan.changes {
        let path = root.inside(&change.path)?;
        let current = check_unchanged(change, &path)?;
        // Left by an interrupted run (this run's own staged files are kept).
        fsutil::remove_stale_temps(&path)?;
        if change.path == script_path {
            if syntax.is_none() {
                syntax = Some(check_ahead(root, change));
            }
            backup = current
                .as_deref()
                .map(|bytes| fsutil::stage_backup(&path, Some(bytes)))
                .transpose()?;
        }
    }
    Ok(Ahead { syntax, backup })
}

/// Takes bash's answer on the new script (when the plan changes it): the staged file it
/// accepted, or why not. Nothing is named or renamed yet (the staged files go on an error).
fn check_syntax(
    root: &Root,
    plan: &Plan,
    script_path: &str,
    syntax: Option<Result<SyntaxCheck>>,
) -> Result<Option<Staged>> {
    let Some(change) = plan.changes.iter().find(|c| c.path == script_path) else {
        return Ok(None);
    };
    let Some(check) = syntax else { return Ok(None) };
    let path = root.inside(script_path)?;
    let staged = check.and_then(SyntaxCheck::finish).map_err(|e| {
        let said = format!("{e:#}");
        if said.contains("nothing was changed") {
            e
        } else {
            anyhow::anyhow!("{}: {said}; nothing was changed", path.display())
        }
    })?;
    // The backup holds what the rename replaces: the script is as planned still.
    check_unchanged(change, &path)?;
    Ok(staged)
}

/// Backs up and writes each file in turn; when one fails, the files already written are put
/// back.
fn write_all(
    root: &Root,
    plan: &Plan,
    script_path: &str,
    stamp: &str,
    mut script: StagedScript,
    hashes: Vec<String>,
) -> Result<Vec<Written>> {
    let mut written: Vec<Written> = Vec::new();
    for (change, sha256) in plan.changes.iter().zip(hashes) {
        let staged = if change.path == script_path {
            StagedScript {
                new: script.new.take(),
                backup: script.backup.take(),
            }
        } else {
            StagedScript {
                new: None,
                backup: None,
            }
        };
        match write_one(root, change, stamp, staged, sha256) {
            Ok(w) => written.push(w),
            Err(err) => return Err(put_back_written(root, &written, err)),
        }
    }
    Ok(written)
}

/// One file: backed up (when it exists), then replaced.
fn write_one(root: &Root, change: &FileChange, stamp: &str, staged: StagedScript, sha256: String) -> Result<Written> {
    let path = root.inside(&change.path)?;
    let owner = owner_for(root, change)?;
    // Staged with the owner and mode the file had then; written again if they moved.
    let new = staged.new.filter(|s| s.owner() == owner);
    let backup = change
        .old
        .map(|_| back_up(&path, stamp, staged.backup))
        .transpose()?
        // Absolute, so the record names it whatever the working directory later.
        .map(std::path::absolute)
        .transpose()?;
    fault::point("apply-after-backup");
    log::info!(
        "backed up {} as {}",
        path.display(),
        backup.as_ref().map_or("-".into(), |b| b.display().to_string())
    );
    write(&path, Some(&change.new), owner, new)?;
    log::info!("wrote {} ({} edit(s))", path.display(), change.edits.len());
    // The sysctl lines written are few and each one matters: in the log. The firewall's edits
    // are the restored rules, which the restore names itself.
    for e in &change.edits {
        if crate::domain::sysctl::is_sysctl_file(&change.path) {
            log::info!("{}: {e}", change.path);
        } else {
            log::debug!("{}: {e}", change.path);
        }
    }
    Ok(Written {
        path: change.path.clone(),
        backup,
        owner,
        sha256,
    })
}

/// Backs up `path` as `PATH.org.STAMP` before it is replaced: the copy staged ahead, or one made
/// now. `restore` and `undo` back up here.
pub fn back_up(path: &Path, stamp: &str, staged: Option<StagedBackup>) -> Result<PathBuf> {
    match staged {
        Some(backup) => backup.commit(stamp),
        None => fsutil::backup(path, stamp),
    }
}

/// Replaces `path` atomically with `content` (the copy staged ahead when there is one), or
/// removes it when `content` is `None`. `restore` and `undo` write here.
pub fn write(path: &Path, content: Option<&[u8]>, owner: Owner, staged: Option<Staged>) -> Result<()> {
    match (staged, content) {
        (Some(new), _) => new.commit(),
        (None, Some(bytes)) => fsutil::atomic_write(path, bytes, owner),
        (None, None) => std::fs::remove_file(path).with_context(|| format!("cannot remove {}", path.display())),
    }
}

/// After a write failed: puts back the files already written, the last first. The error the
/// restore ends with: `err`, or exit 3 naming every file that could not be put back.
fn put_back_written(root: &Root, written: &[Written], err: anyhow::Error) -> anyhow::Error {
    let mut not_back = Vec::new();
    for w in written.iter().rev() {
        match w.put_back(root) {
            Ok(()) => log::warn!("put {} back as it was", root.path(&w.path).display()),
            Err(e) => {
                log::error!("{e:#}");
                not_back.push(format!("{e:#}"));
            }
        }
    }
    if not_back.is_empty() {
        return err;
    }
    let error = anyhow::anyhow!(
        "{err:#}; and {} file(s) could not be put back, changes are left in place:\n  {}",
        not_back.len(),
        not_back.join("\n  ")
    );
    Failure::new(ExitCode::ChangesLeft, error).into()
}
