//! What `register` installed, recorded in the state directory (`registration.json`), so `status`,
//! `unregister` and the package's scriptlets know the hook directory, the files with their
//! content hashes, and the binary the hooks and the boot guard run.

use anyhow::Result;
use serde::{Deserialize, Serialize};

use crate::store::StateDir;

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
        super::load_json(&state.registration_path())
    }

    pub fn save(&self, state: &StateDir) -> Result<()> {
        super::save_json(state.dir(), &state.registration_path(), self)
    }

    pub fn remove(state: &StateDir) -> Result<()> {
        super::remove_record(&state.registration_path(), "the registration record").map(|_| ())
    }
}
