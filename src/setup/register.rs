//! `register`: install the hook scripts and the boot guard, record them, then take a baseline
//! snapshot when one is due.

use std::path::Path;

use anyhow::{Context as _, Result};
use serde::Serialize;

use crate::context::Context;
use crate::setup::baseline::{self, Baseline};
use crate::setup::files::{state_of, Content, Managed, State};
use crate::setup::guard::{is_guard, MARK, PACKAGED_UNIT, UNIT};
use crate::setup::{hooks, managed, ours, Action, FileAction};
use crate::store::registration::Registration;
use crate::system::fsutil::{self, Owner};

/// The report of `register`.
#[derive(Debug, Clone, Serialize)]
pub struct Registered {
    pub hook_dir: String,
    pub binary: String,
    pub files: Vec<FileAction>,
    pub snapshot: Baseline,
}

/// `register`: install and record, then a baseline snapshot when one is due (a baseline that
/// cannot be taken is said in the report; the hooks stay installed).
pub fn register(ctx: &Context, hook_dir: Option<&str>) -> Result<Registered> {
    // Hooks that could never snapshot are no protection: the version must read first.
    crate::system::capture::capture(&ctx.root, &ctx.config, None)
        .context("refusing to register, nothing was installed")?;
    let (hook_dir, binary, files) = install(ctx, hook_dir)?;
    Ok(Registered {
        hook_dir,
        binary,
        files,
        snapshot: baseline::baseline(ctx).unwrap_or_else(|e| Baseline::Failed {
            reason: format!("{e:#}"),
        }),
    })
}

/// Installs the hook scripts and the boot guard and records them: the hook directory and the
/// binary, the scripts of an earlier hook directory removed, each file installed, a unit the
/// package's supersedes removed, the record saved.
fn install(ctx: &Context, hook_dir: Option<&str>) -> Result<(String, String, Vec<FileAction>)> {
    let record = Registration::load(&ctx.state)?;
    let dir = hook_dir
        .map(str::to_string)
        .or_else(|| record.as_ref().map(|r| r.hook_dir.clone()))
        .unwrap_or_else(|| ctx.config.hook_dir.clone());
    if !dir.starts_with('/') || dir.split('/').any(|c| c == "..") {
        anyhow::bail!("--hook-dir must be an absolute path without `..`, not {dir:?}");
    }
    let binary = hooks::binary(ctx)?;
    let files = managed(ctx, &dir, &binary)?;
    hooks::prepare_hook_dirs(ctx, &dir)?;
    let mut actions = Vec::new();
    if let Some(old) = record.as_ref().filter(|r| r.hook_dir != dir) {
        actions.extend(remove_old_scripts(ctx, old)?);
    }
    for m in &files {
        actions.push(install_file(ctx, m)?);
    }
    actions.extend(remove_superseded_unit(ctx)?);
    Registration {
        since: humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string(),
        hook_dir: dir.clone(),
        binary: binary.clone(),
        files: files.iter().map(|m| m.installed(&ctx.root)).collect(),
    }
    .save(&ctx.state)?;
    Ok((dir, binary, actions))
}

/// Registered elsewhere before: the scripts there go (unless changed since).
fn remove_old_scripts(ctx: &Context, old: &Registration) -> Result<Vec<FileAction>> {
    let mut actions = Vec::new();
    for i in old
        .files
        .iter()
        .filter(|i| i.path.starts_with(&format!("{}/", old.hook_dir)) && ours(&old.hook_dir, &i.path))
    {
        let path = ctx.root.inside(&i.path)?;
        if state_of(&path, i) == State::Intact {
            std::fs::remove_file(&path).with_context(|| format!("cannot remove {}", path.display()))?;
            actions.push(FileAction::new(Action::Removed, &path));
        }
    }
    Ok(actions)
}

/// Installs one file unless it is intact already.
fn install_file(ctx: &Context, m: &Managed) -> Result<FileAction> {
    let state = state_of(&m.path, &m.installed(&ctx.root));
    if state == State::Intact {
        return Ok(FileAction::new(Action::Unchanged, &m.path));
    }
    let parent = m.path.parent().expect("absolute path");
    fsutil::create_dirs(parent, 0o755)?;
    let mut action = FileAction::new(Action::Installed, &m.path);
    match &m.content {
        Content::File { text, mode } => action.backup = write_file(ctx, &m.path, text, *mode, state)?,
        Content::Link { target } => link(&m.path, target, state)?,
    }
    log::info!("registered {}", m.path.display());
    Ok(action)
}

/// Writes a hook script or guard file; a file someone changed is saved first (where it went).
fn write_file(ctx: &Context, path: &Path, text: &str, mode: u32, state: State) -> Result<Option<String>> {
    let mut saved = None;
    if state == State::Modified && std::fs::symlink_metadata(path).is_ok_and(|t| t.is_file()) {
        let backup = hooks::save_replaced(ctx, path)?;
        log::info!("saved the replaced {} as {}", path.display(), backup.display());
        saved = Some(backup.display().to_string());
    }
    fsutil::atomic_write(path, text.as_bytes(), Owner::mine(mode))?;
    Ok(saved)
}

/// Makes the link to the guard; a link there to another of our guards is replaced.
fn link(path: &Path, target: &str, state: State) -> Result<()> {
    if state == State::Modified {
        // A link to another of our guards (the package superseding a hand-made registration)
        // is ours to replace; anything else is not.
        if !std::fs::read_link(path).is_ok_and(is_guard) {
            anyhow::bail!(
                "{} exists and is not iwss-keeper's link; remove it first",
                path.display()
            );
        }
        std::fs::remove_file(path).with_context(|| format!("cannot replace {}", path.display()))?;
    }
    std::os::unix::fs::symlink(target, path).with_context(|| format!("cannot link {}", path.display()))
}

/// A unit an earlier `register` wrote in /etc would shadow the package's: it goes.
fn remove_superseded_unit(ctx: &Context) -> Result<Option<FileAction>> {
    if !ctx.root.path(PACKAGED_UNIT).is_file() {
        return Ok(None);
    }
    let own = ctx.root.path(UNIT);
    if !fsutil::read_bounded(&own).is_ok_and(|t| String::from_utf8_lossy(&t).contains(MARK)) {
        return Ok(None);
    }
    std::fs::remove_file(&own).with_context(|| format!("cannot remove {}", own.display()))?;
    log::info!("removed {} (superseded by {PACKAGED_UNIT})", own.display());
    let mut a = FileAction::new(Action::Removed, &own);
    a.note = Some(format!("superseded by {PACKAGED_UNIT}"));
    Ok(Some(a))
}
