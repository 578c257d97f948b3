//! The tool's own state directory. [`StateDir`] owns every name in it: `snapshots/`, the `lock`,
//! the `pending.json` marker a failed hook run leaves, the `activation-pending` journal, the
//! `registration.json` record and the `backups/` of replaced hook scripts.

pub mod lock;
pub mod pending;
pub mod registration;
pub mod restores;
pub mod snapshots;

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use crate::system::fsutil;

/// Reads a JSON record of the state directory; `None` when there is none.
fn load_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<Option<T>> {
    if std::fs::symlink_metadata(path).is_err_and(|e| e.kind() == std::io::ErrorKind::NotFound) {
        return Ok(None);
    }
    let bytes = fsutil::read_bounded(path)?;
    Ok(Some(
        serde_json::from_slice(&bytes).with_context(|| format!("cannot read {}", path.display()))?,
    ))
}

/// Writes a JSON record into `dir` (made private), atomically and 0600.
fn save_json<T: serde::Serialize>(dir: &Path, path: &Path, value: &T) -> Result<()> {
    fsutil::create_private_dir(dir)?;
    fsutil::atomic_write(path, &serde_json::to_vec_pretty(value)?, fsutil::Owner::mine(0o600))
}

/// Removes a record (or the journal); `Ok(false)` when there was none.
fn remove_record(path: &Path, what: &str) -> Result<bool> {
    match std::fs::remove_file(path) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(e).with_context(|| format!("cannot remove {what}")),
    }
}

/// The state directory (`ROOT/var/lib/iwss-keeper` unless `--state-dir` says otherwise).
#[derive(Debug, Clone)]
pub struct StateDir {
    dir: PathBuf,
}

impl StateDir {
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self { dir: dir.into() }
    }

    /// The directory itself.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The snapshot store.
    pub fn snapshots(&self) -> snapshots::Store {
        snapshots::Store {
            dir: self.dir.join("snapshots"),
        }
    }

    /// The lock file every changing run holds.
    pub fn lock_path(&self) -> PathBuf {
        self.dir.join("lock")
    }

    /// What each restore wrote, for `undo` and `prune-backups`.
    pub fn restores(&self) -> restores::Restores {
        restores::Restores::at(self.dir.join("restores"))
    }

    /// What `register` installed.
    pub fn registration_path(&self) -> PathBuf {
        self.dir.join("registration.json")
    }

    /// Where `register` keeps hook scripts it replaced (never inside a hook directory, where a
    /// run-parts loop would execute them).
    pub fn backups_dir(&self) -> PathBuf {
        self.dir.join("backups")
    }

    /// What the pre-install hook of the upgrade in progress did ([`pending::PreInstall`]).
    pub fn pre_install_path(&self) -> PathBuf {
        self.dir.join("pre-install.json")
    }

    /// The marker a failed hook run leaves.
    pub fn pending_path(&self) -> PathBuf {
        self.dir.join("pending.json")
    }

    /// The journal that says files were written and the running system is not yet in line with
    /// them. A run interrupted between writing and verifying leaves it; the next run finishes.
    fn journal_path(&self) -> PathBuf {
        self.dir.join("activation-pending")
    }

    /// Whether an earlier run wrote files and stopped before the running system followed.
    pub fn activation_pending(&self) -> bool {
        self.journal_path().exists()
    }

    /// Records, before any file is written, that the running system will need to follow.
    pub fn begin_activation(&self) -> Result<()> {
        fsutil::create_private_dir(&self.dir)?;
        let path = self.journal_path();
        let _ = std::fs::remove_file(&path);
        let stamp = humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string();
        fsutil::write_private(&path, stamp.as_bytes())?;
        fsutil::sync_dir(&self.dir)
    }

    /// Clears the journal once the running system is in line with the files.
    pub fn finish_activation(&self) -> Result<()> {
        remove_record(&self.journal_path(), "the activation journal").map(drop)
    }
}
