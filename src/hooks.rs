//! Hook mode: what runs around an upgrade package and at boot. Never prompts, keeps stdout
//! quiet, and by default never fails the upgrade: errors are logged and leave a pending marker
//! that `status` reports and the next run retries.

use std::path::PathBuf;

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

use crate::commands::{restore, Env};
use crate::exit_codes::ExitCode;
use crate::fsutil;
use crate::snapshot::Snapshot;

/// The events hook mode handles.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Event {
    /// Before an upgrade package installs: take a snapshot.
    PreInstall,
    /// After it installed: restore, restart, verify.
    PostInstall,
    /// At boot: run post-install if the version changed since the newest snapshot, or a restore is
    /// pending.
    Boot,
}

impl Event {
    fn name(self) -> &'static str {
        match self {
            Self::PreInstall => "pre-install",
            Self::PostInstall => "post-install",
            Self::Boot => "boot",
        }
    }
}

/// The marker a failed hook run leaves in the state directory.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Pending {
    pub since: String,
    pub event: String,
    pub error: String,
    /// The snapshot the restore needs (kept by pruning).
    pub snapshot: Option<String>,
}

impl Pending {
    fn path(env: &Env) -> PathBuf {
        env.state_dir.join("pending.json")
    }

    /// The pending marker, if a hook run failed and no later run succeeded.
    pub fn load(env: &Env) -> Result<Option<Self>> {
        let path = Self::path(env);
        match std::fs::read(&path) {
            Ok(bytes) => Ok(Some(
                serde_json::from_slice(&bytes).with_context(|| format!("cannot read {}", path.display()))?,
            )),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e).with_context(|| format!("cannot read {}", path.display())),
        }
    }

    fn save(&self, env: &Env) -> Result<()> {
        fsutil::create_private_dir(&env.state_dir)?;
        let owner = fsutil::Owner {
            mode: 0o600,
            uid: fsutil::current_ids().0,
            gid: fsutil::current_ids().1,
        };
        fsutil::atomic_write(&Self::path(env), &serde_json::to_vec_pretty(self)?, owner)
    }

    fn clear(env: &Env) -> Result<()> {
        match std::fs::remove_file(Self::path(env)) {
            Ok(()) => {
                log::info!("pending restore cleared");
                Ok(())
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(e).context("cannot remove the pending marker"),
        }
    }
}

/// Restore with restart and verification; on success a post-install snapshot records the new
/// version, so the boot guard knows the upgrade is handled.
fn post_install(env: &Env) -> Result<()> {
    let r = restore(env, None, false, false)?;
    for line in &r.report.live {
        log::info!("{line}");
    }
    if let Some(err) = r.error() {
        return Err(err);
    }
    log::info!(
        "post-install: {} from {} ({} file(s) changed)",
        r.report.outcome,
        r.report.old.name,
        r.written.len()
    );
    env.record(Some(format!("post-install ({})", r.new.manifest.version)))?;
    Ok(())
}

/// Whether the boot guard has work: the version changed since the newest snapshot, or a restore
/// is pending.
fn boot_needed(env: &Env) -> Result<bool> {
    if Pending::load(env)?.is_some() {
        log::info!("boot guard: a restore is pending");
        return Ok(true);
    }
    let live = Snapshot::capture(&env.root, &env.config, None)?;
    let newest = env.store().manifests()?.pop();
    Ok(match newest {
        Some(m) if m.version == live.manifest.version => false,
        Some(m) => {
            log::info!(
                "boot guard: version changed from {} to {}",
                m.version,
                live.manifest.version
            );
            true
        }
        None => false,
    })
}

/// Runs one hook event. Errors are logged and recorded as pending; the exit code is 0 unless
/// `strict` is set.
pub fn run(env: &Env, event: Event) -> Result<ExitCode> {
    log::info!("hook {} started", event.name());
    let result = match event {
        Event::PreInstall => env.record(Some("pre-install".into())).map(|_| ()),
        Event::PostInstall => post_install(env).and_then(|()| Pending::clear(env)),
        Event::Boot => match boot_needed(env) {
            Ok(true) => post_install(env).and_then(|()| Pending::clear(env)),
            Ok(false) => {
                log::info!("boot guard: nothing to do");
                Ok(())
            }
            Err(e) => Err(e),
        },
    };
    match result {
        Ok(()) => {
            log::info!("hook {} done", event.name());
            Ok(ExitCode::Success)
        }
        Err(err) => {
            log::error!("hook {} FAILED: {err:#}", event.name());
            let snapshot = Snapshot::capture(&env.root, &env.config, None)
                .ok()
                .and_then(|live| env.store().pre_upgrade(&live.manifest.version).ok().flatten())
                .map(|m| m.id);
            let pending = Pending {
                since: humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string(),
                event: event.name().into(),
                error: format!("{err:#}"),
                snapshot,
            };
            if let Err(e) = pending.save(env) {
                log::error!("cannot record the pending restore: {e:#}");
            } else {
                log::error!("a restore is pending: `iwss-keeper status` shows it; the next run retries");
            }
            if env.config.strict {
                Err(err)
            } else {
                Ok(ExitCode::Success)
            }
        }
    }
}
