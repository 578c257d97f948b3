//! The install workflow, beside `restore`: `register` puts the hook scripts where the upgrade runs
//! them and a boot guard for upgrades that reboot or never call hooks, then takes a baseline
//! snapshot when one is due; `unregister` removes them. Both are idempotent and touch only their
//! own files; what `register` installed is recorded in the state directory
//! (`registration.json`), which `status`, `unregister` and the package's scriptlets use.

mod baseline;
mod files;
mod guard;
mod hooks;
mod register;
mod unregister;

use std::path::Path;

use anyhow::Result;
use serde::Serialize;

use crate::context::Context;
use crate::store::registration::{Installed, Registration};

pub use baseline::Baseline;
pub use files::{FileState, State};
pub use hooks::{hook_text, HOOKS};
pub use register::{register, Registered};
pub use unregister::unregister;

/// Every file `register` manages for `hook_dir`, running `binary`: the hook scripts, then the
/// boot guard's files.
pub(crate) fn managed(ctx: &Context, hook_dir: &str, binary: &str) -> Result<Vec<files::Managed>> {
    let mut out = hooks::hook_files(ctx, hook_dir, binary)?;
    out.extend(guard::guard_files(ctx, binary)?);
    Ok(out)
}

/// What `register` would install now for `hook_dir`, as records (the packaged binary when this
/// one cannot be registered).
pub(crate) fn would_install(ctx: &Context, hook_dir: &str) -> Result<Vec<Installed>> {
    let binary = hooks::binary(ctx).unwrap_or_else(|_| hooks::PACKAGED_BINARY.into());
    Ok(managed(ctx, hook_dir, &binary)?
        .iter()
        .map(|m| m.installed(&ctx.root))
        .collect())
}

/// Whether `path` is one `register` could have installed for `hook_dir`: a record naming any
/// other file (a record someone edited) never makes `unregister` remove it.
pub(crate) fn ours(hook_dir: &str, path: &str) -> bool {
    let dir = hook_dir.trim_end_matches('/');
    let safe_dir = dir.starts_with('/') && !dir.split('/').any(|c| c == "..");
    (safe_dir && HOOKS.iter().any(|(rel, _)| path == format!("{dir}/{rel}")))
        || [guard::UNIT, guard::UNIT_LINK, guard::SYSV].contains(&path)
        || guard::SYSV_LINKS.contains(&path)
}

/// What `register` or `unregister` did to one file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    Installed,
    Unchanged,
    Removed,
    /// Left in place: changed since `register` wrote it.
    Kept,
}

/// One file `register` or `unregister` acted on.
#[derive(Debug, Clone, Serialize)]
pub struct FileAction {
    pub action: Action,
    pub path: String,
    /// Where a replaced file was saved.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub backup: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

impl FileAction {
    fn new(action: Action, path: &Path) -> Self {
        Self {
            action,
            path: path.display().to_string(),
            backup: None,
            note: None,
        }
    }
}

/// What `register` manages (from its record, else as it would install now in the configured
/// hook directory) and in what state each file is.
pub fn states(ctx: &Context) -> Vec<FileState> {
    let installed: Vec<Installed> = match Registration::load(&ctx.state) {
        Ok(Some(record)) => record.files,
        _ => would_install(ctx, &ctx.config.hook_dir).unwrap_or_default(),
    };
    installed
        .iter()
        .map(|i| {
            let path = ctx.root.inside(&i.path).unwrap_or_else(|_| ctx.root.path(&i.path));
            FileState {
                state: files::state_of(&path, i),
                path: path.display().to_string(),
            }
        })
        .collect()
}
