//! `unregister`: remove what `register` installed, leaving alone what was changed since.

use anyhow::{Context as _, Result};

use crate::context::Context;
use crate::domain::snapshot::sha256_hex;
use crate::setup::files::{state_of, State};
use crate::setup::guard::{is_guard, MARK};
use crate::setup::{hooks, ours, would_install, Action, FileAction};
use crate::store::registration::{Installed, Registration};
use crate::system::fsutil;

/// Removes what `register` installed, as its record says (else as the current version would
/// have installed it): files still as written, links pointing at the guard. A file someone
/// changed is left in place and reported.
pub fn unregister(ctx: &Context, hook_dir: Option<&str>) -> Result<Vec<FileAction>> {
    let (installed, dir) = match Registration::load(&ctx.state)? {
        Some(r) => {
            if let Some(d) = hook_dir.filter(|d| d.trim_end_matches('/') != r.hook_dir.trim_end_matches('/')) {
                anyhow::bail!(
                    "registered with hook directory {}, not {d}; run `iwss-keeper unregister` without --hook-dir (nothing was changed)",
                    r.hook_dir
                );
            }
            (r.files, r.hook_dir)
        }
        None => {
            let dir = hook_dir.unwrap_or(&ctx.config.hook_dir);
            (unrecorded(ctx, dir)?, dir.to_string())
        }
    };
    let mut actions: Vec<FileAction> = Vec::new();
    for i in &installed {
        match remove(ctx, &dir, i, &installed)? {
            // A file listed twice (as installed now and as shipped) is reported once.
            Some(a) if a.action == Action::Kept && actions.iter().any(|x| x.path == a.path) => {}
            Some(a) => actions.push(a),
            None => {}
        }
    }
    Registration::remove(&ctx.state)?;
    Ok(actions)
}

/// Without a record: what `register` would install now, and the scripts as shipped (from
/// registrations that wrote them unchanged).
fn unrecorded(ctx: &Context, dir: &str) -> Result<Vec<Installed>> {
    let mut list = would_install(ctx, dir)?;
    for (rel, text) in hooks::HOOKS {
        list.push(Installed {
            path: format!("{}/{rel}", dir.trim_end_matches('/')),
            sha256: Some(sha256_hex(text.as_bytes())),
            target: None,
        });
    }
    Ok(list)
}

/// Removes one file `register` installed when it is still ours: as written, a link to a guard,
/// or a guard file with its mark. A changed file is kept (its action says so); a file that is
/// gone, or one the record should not name, gets no action.
fn remove(ctx: &Context, dir: &str, i: &Installed, installed: &[Installed]) -> Result<Option<FileAction>> {
    if !ours(dir, &i.path) {
        log::warn!(
            "the registration record names {}, which register never installs; left alone",
            i.path
        );
        return Ok(None);
    }
    let path = ctx.root.inside(&i.path)?;
    if std::fs::symlink_metadata(&path).is_err() {
        return Ok(None);
    }
    let still_ours = state_of(&path, i) == State::Intact
        || (i.target.is_some() && std::fs::read_link(&path).is_ok_and(is_guard))
        || (i.sha256.is_some()
            && fsutil::read_bounded(&path).is_ok_and(|t| String::from_utf8_lossy(&t).contains(MARK)));
    if still_ours {
        std::fs::remove_file(&path).with_context(|| format!("cannot remove {}", path.display()))?;
        log::info!("unregistered {}", path.display());
        return Ok(Some(FileAction::new(Action::Removed, &path)));
    }
    // Intact as another entry describes it: that entry removes it.
    if installed
        .iter()
        .any(|o| o.path == i.path && state_of(&path, o) == State::Intact)
    {
        return Ok(None);
    }
    log::warn!("{} was changed since register; left in place", path.display());
    let mut a = FileAction::new(Action::Kept, &path);
    a.note = Some("changed since register".into());
    Ok(Some(a))
}
