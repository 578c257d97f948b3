//! What `register` installed, recorded in the state directory (`registration.json`), so `status`,
//! `unregister` and the package's scriptlets know the hook directory, the files with their
//! content hashes, and the binary the hooks and the boot guard run.

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

use crate::store::StateDir;
use crate::system::fsutil;

/// One file `register` installed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Installed {
    /// Appliance path.
    pub path: String,
    /// SHA-256 of the content, for a file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
    /// Link target, for a symbolic link.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
}

/// The registration record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Registration {
    /// When it was written (RFC 3339 UTC).
    pub since: String,
    /// The hook directory the scripts went to.
    pub hook_dir: String,
    /// The binary the hook scripts and the boot guard run.
    pub binary: String,
    pub files: Vec<Installed>,
}

impl Registration {
    /// The record, if `register` wrote one.
    pub fn load(state: &StateDir) -> Result<Option<Self>> {
        let path = state.registration_path();
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
        fsutil::atomic_write(&state.registration_path(), &serde_json::to_vec_pretty(self)?, owner)
    }

    pub fn remove(state: &StateDir) -> Result<()> {
        match std::fs::remove_file(state.registration_path()) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(e).context("cannot remove the registration record"),
        }
    }
}
