//! The marker a failed hook run leaves in the state directory: `status` shows it, the boot guard
//! retries, pruning keeps the snapshot it names.

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

use crate::store::StateDir;
use crate::system::fsutil;

/// What failed, when, and which snapshot the retry needs.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Pending {
    pub since: String,
    pub event: String,
    pub error: String,
    /// The snapshot the restore needs (kept by pruning).
    pub snapshot: Option<String>,
}

impl Pending {
    /// The pending marker, if a hook run failed and no later run succeeded.
    pub fn load(state: &StateDir) -> Result<Option<Self>> {
        let path = state.pending_path();
        if std::fs::symlink_metadata(&path).is_err_and(|e| e.kind() == std::io::ErrorKind::NotFound) {
            return Ok(None);
        }
        let bytes = fsutil::read_bounded(&path)?;
        Ok(Some(
            serde_json::from_slice(&bytes).with_context(|| format!("cannot read {}", path.display()))?,
        ))
    }

    pub fn save(&self, state: &StateDir) -> Result<()> {
        fsutil::create_private_dir(state.dir())?;
        let (uid, gid) = fsutil::current_ids();
        let owner = fsutil::Owner { mode: 0o600, uid, gid };
        fsutil::atomic_write(&state.pending_path(), &serde_json::to_vec_pretty(self)?, owner)
    }

    pub fn clear(state: &StateDir) -> Result<()> {
        match std::fs::remove_file(state.pending_path()) {
            Ok(()) => {
                log::info!("pending restore cleared");
                Ok(())
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(e).context("cannot remove the pending marker"),
        }
    }
}
