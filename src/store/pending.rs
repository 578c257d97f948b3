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

/// What the pre-install hook of an upgrade did: recorded as its first act, completed with the
/// snapshot it took. Post-install restores by itself only from that snapshot.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PreInstall {
    pub started: String,
    /// When it finished, with the snapshot it took.
    pub finished: Option<String>,
    pub snapshot: Option<String>,
}

impl PreInstall {
    pub fn load(state: &StateDir) -> Result<Option<Self>> {
        super::load_json(&state.pre_install_path())
    }

    /// Records that a pre-install run started, before it does anything else.
    pub fn start(state: &StateDir) -> Result<()> {
        crate::system::fsutil::create_private_dir(state.dir())?;
        let record = Self {
            started: now(),
            finished: None,
            snapshot: None,
        };
        super::save_json(state.dir(), &state.pre_install_path(), &record)
    }

    /// Records that it finished, having taken `snapshot`.
    pub fn finish(state: &StateDir, snapshot: &str) -> Result<()> {
        let started = Self::load(state)?.map_or_else(now, |p| p.started);
        let record = Self {
            started,
            finished: Some(now()),
            snapshot: Some(snapshot.to_string()),
        };
        super::save_json(state.dir(), &state.pre_install_path(), &record)
    }

    /// Forgets it once its upgrade's restore is done.
    pub fn clear(state: &StateDir) -> Result<()> {
        super::remove_record(&state.pre_install_path(), "the pre-install record").map(drop)
    }
}

fn now() -> String {
    humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string()
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
