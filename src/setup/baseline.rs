//! The baseline snapshot `register` takes, unless a restore is owed or the newest snapshot holds
//! the live files already.

use anyhow::Result;
use serde::Serialize;

use crate::context::Context;
use crate::restore::Owed;

/// What `register` did about the baseline snapshot.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "action", rename_all = "lowercase")]
pub enum Baseline {
    /// A new snapshot was taken.
    Taken { id: String, version: String },
    /// The newest snapshot already holds the live files.
    Unchanged { id: String, version: String },
    /// A restore is owed from this snapshot: no baseline was taken that would hide it.
    Owed { id: String, version: String },
    /// Whether a restore is owed cannot be told: no baseline was taken.
    Unknown {
        id: String,
        version: String,
        reason: String,
    },
    /// The baseline could not be taken (the hooks are installed all the same).
    Failed { reason: String },
}

/// Decides about the baseline: none when a restore is owed (it would hide it) or the newest
/// snapshot already holds the live files; else a new one.
pub fn baseline(ctx: &Context) -> Result<Baseline> {
    match crate::restore::owed(ctx)? {
        Owed::From(m) => {
            return Ok(Baseline::Owed {
                id: m.id,
                version: m.version.to_string(),
            })
        }
        Owed::Unknown(m, reason) => {
            return Ok(Baseline::Unknown {
                id: m.id,
                version: m.version.to_string(),
                reason,
            })
        }
        Owed::No => {}
    }
    let mut live = ctx.live(None)?;
    live.fill_checksums();
    if let Some(newest) = ctx.state.snapshots().manifests()?.pop() {
        if newest.same_files(&live.manifest) {
            return Ok(Baseline::Unchanged {
                id: newest.id,
                version: newest.version.to_string(),
            });
        }
    }
    let snap = ctx.record(Some("baseline (register)".into()))?;
    Ok(Baseline::Taken {
        id: snap.manifest.id,
        version: snap.manifest.version.to_string(),
    })
}
