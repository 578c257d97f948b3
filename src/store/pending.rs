//! The marker a failed hook run leaves in the state directory: `status` shows it, the boot guard
//! retries, pruning keeps the snapshot it names.

use anyhow::Result;
use serde::{Deserialize, Serialize};

use crate::store::StateDir;

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
        super::load_json(&state.pending_path())
    }

    pub fn save(&self, state: &StateDir) -> Result<()> {
        super::save_json(state.dir(), &state.pending_path(), self)
    }

    pub fn clear(state: &StateDir) -> Result<()> {
        if super::remove_record(&state.pending_path(), "the pending marker")? {
            log::info!("pending restore cleared");
        }
        Ok(())
    }
}
