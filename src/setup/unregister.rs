//! `unregister`: remove what `register` installed, leaving alone what was changed since.

use std::path::Path;

use anyhow::{Context as _, Result};

use crate::context::Context;
use crate::domain::snapshot::sha256_hex;
use crate::setup::files::{state_of, State};
use crate::setup::{guard, hooks, ours, would_install, Action, FileAction};
use crate::store::registration::{Installed, Registration};
use crate::system::fsutil;

/// Removes what `register` installed, as its record says (else as the current version would
/// have installed it): files still as written, links pointing at the guard. A file someone
/// changed is left in place and reported.
pub fn unregister(ctx: &Context, hook_dir: Option<&str>) -> Result<Vec<FileAction>> {
    let record = Registration::load(&ctx.state)?;
    let mut actions = Vec::new();
    let remove = |path: &Path, actions: &mut Vec<FileAction>| -> Result<()> {
        std::fs::remove_file(path).with_context(|| format!("cannot remove {}", path.display()))?;
        log::info!("unregistered {}", path.display());
        actions.push(FileAction::new(Action::Removed, path));
        Ok(())
    };
    if let (Some(r), Some(d)) = (&record, hook_dir) {
        if d.trim_end_matches('/') != r.hook_dir.trim_end_matches('/') {
            anyhow::bail!(
                "registered with hook directory {}, not {d}; run `iwss-keeper unregister` without --hook-dir (nothing was changed)",
                r.hook_dir
            );
        }
    }
    let (installed, dir): (Vec<Installed>, String) = match &record {
        Some(r) if hook_dir.is_none_or(|d| d.trim_end_matches('/') == r.hook_dir.trim_end_matches('/')) => {
            (r.files.clone(), r.hook_dir.clone())
        }
        _ => {
            let dir = hook_dir.unwrap_or(&ctx.config.hook_dir);
            let mut list = would_install(ctx, dir)?;
            // Scripts as shipped, from registrations that wrote them unchanged.
            for (rel, text) in hooks::HOOKS {
                list.push(Installed {
                    path: format!("{}/{rel}", dir.trim_end_matches('/')),
                    sha256: Some(sha256_hex(text.as_bytes())),
                    target: None,
                });
            }
            (list, dir.to_string())
        }
    };
    for i in &installed {
        if !ours(&dir, &i.path) {
            log::warn!(
                "the registration record names {}, which register never installs; left alone",
                i.path
            );
            continue;
        }
        let path = ctx.root.inside(&i.path)?;
        if std::fs::symlink_metadata(&path).is_err() {
            continue;
        }
        match state_of(&path, i) {
            State::Intact => remove(&path, &mut actions)?,
            _ if i.target.is_some() && std::fs::read_link(&path).is_ok_and(guard::is_guard) => {
                remove(&path, &mut actions)?
            }
            _ if i.sha256.is_some()
                && fsutil::read_bounded(&path).is_ok_and(|t| String::from_utf8_lossy(&t).contains(guard::MARK)) =>
            {
                remove(&path, &mut actions)?
            }
            _ if installed
                .iter()
                .any(|o| o.path == i.path && state_of(&path, o) == State::Intact) => {}
            _ => {
                log::warn!("{} was changed since register; left in place", path.display());
                let mut a = FileAction::new(Action::Kept, &path);
                a.note = Some("changed since register".into());
                if !actions.iter().any(|x: &FileAction| x.path == a.path) {
                    actions.push(a);
                }
            }
        }
    }
    Registration::remove(&ctx.state)?;
    Ok(actions)
}
