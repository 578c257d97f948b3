//! Hook mode: what runs around an upgrade package and at boot. Never prompts, keeps stdout
//! quiet, and by default never fails the upgrade: errors are logged and leave a pending marker
//! that `status` reports and the next run retries.

use anyhow::Result;

use crate::cli::{Cli, Event};
use crate::context::Context;
use crate::exit_codes::ExitCode;
use crate::restore::{restore, Owed, RestoreOptions};
use crate::root::Root;
use crate::store::lock::Lock;
use crate::store::pending::{Pending, PreInstall};
use crate::store::StateDir;
use crate::system::signals;

/// The snapshot post-install restores from by itself: the one this upgrade's pre-install took.
/// A pre-install that started and did not finish (failure, signal, full disk) leaves nothing to
/// restore from automatically: the admin checks and names it. Without any pre-install record (a
/// hookless upgrade) the newest snapshot of an older version, as a plain `restore` uses.
fn this_upgrades_snapshot(ctx: &Context) -> Result<Option<String>> {
    match PreInstall::load(&ctx.state)? {
        Some(p) if p.finished.is_some() => Ok(p.snapshot),
        Some(p) => {
            let command = match ctx.restore_default() {
                Some(id) => format!("`iwss-keeper restore --from {id}`"),
                None => "`iwss-keeper restore --from SNAPSHOT`".to_string(),
            };
            anyhow::bail!(
                "the pre-install hook of this upgrade started at {} and did not finish, so no snapshot of the state before it is known good: nothing was restored automatically; check `iwss-keeper diff`, then run {command}",
                p.started
            )
        }
        None => Ok(None),
    }
}

/// Restore with restart and verification; on success a post-install snapshot records the new
/// version, so the boot guard knows the upgrade is handled, and a pending restore is cleared.
fn post_install(ctx: &Context) -> Result<()> {
    let from = this_upgrades_snapshot(ctx)?;
    let r = restore(
        ctx,
        &RestoreOptions {
            from,
            ..RestoreOptions::default()
        },
    )?;
    // Ends the hook as any error does (exit 2 under `strict`).
    if let Some(failure) = r.error() {
        return Err(failure.error);
    }
    for d in r.report.comparison.discarded.iter().filter(|d| d.attention) {
        log::error!(
            "line {} not restored, restore it by hand if wanted: {}: {}",
            d.line,
            d.text,
            d.reason
        );
    }
    log::info!(
        "post-install: {} from {} ({} file(s) changed)",
        r.report.outcome.name(),
        r.report.old.name,
        r.written.len()
    );
    signals::check("the post-install snapshot")?;
    ctx.record(Some(format!("post-install ({})", r.new.manifest.version)))?;
    PreInstall::clear(&ctx.state)?;
    Pending::clear(&ctx.state)
}

/// The pre-install snapshot, recorded as this upgrade's once it is saved.
fn pre_install(ctx: &Context) -> Result<()> {
    signals::check("the pre-install snapshot")?;
    let snap = ctx.record(Some("pre-install".into()))?;
    PreInstall::finish(&ctx.state, &snap.manifest.id)
}

/// The boot guard: restores when a restore is pending or owed (the newest snapshot is of an older
/// version and restoring from it would change something). Otherwise it keeps the newest snapshot
/// current: files changed on the same version (an admin's edit, a revoked rule) or a new version
/// that kept everything are recorded, so a later hookless upgrade is compared with them.
fn boot(ctx: &Context) -> Result<()> {
    // Only a failed restore is retried as one; a failed pre-install (or boot) run owes nothing by
    // itself, and whether a restore is owed is decided from the newest snapshot below.
    match Pending::load(&ctx.state)? {
        Some(p) if p.event == Event::PostInstall.name() => {
            log::info!("boot guard: a restore is pending");
            return post_install(ctx);
        }
        Some(p) => log::info!("boot guard: an earlier {} run failed: {}", p.event, p.error),
        None => {}
    }
    match crate::restore::owed(ctx)? {
        Owed::From(m) => {
            log::info!("boot guard: a restore from {} ({}) is owed", m.id, m.version);
            return post_install(ctx);
        }
        Owed::Unknown(m, why) => anyhow::bail!(
            "boot guard: cannot plan the restore from {} ({}): {why}",
            m.id,
            m.version
        ),
        Owed::No => {}
    }
    let mut live = ctx.live(None)?;
    live.fill_checksums();
    let newest = ctx.state.snapshots().manifests()?.pop();
    match newest {
        Some(n) if n.same_files(&live.manifest) => log::info!("boot guard: nothing to do"),
        Some(n)
            if n.version.product == live.manifest.version.product
                && n.version.release > live.manifest.version.release =>
        {
            log::warn!(
                "boot guard: the live version {} is older than the newest snapshot's ({}); nothing done",
                live.manifest.version,
                n.version
            );
        }
        Some(n) => {
            let why = if n.version == live.manifest.version {
                "files changed on the same version"
            } else {
                "new version, nothing owed"
            };
            ctx.record(Some(format!("boot ({why})")))?;
        }
        None => {
            ctx.record(Some("boot (first snapshot)".into()))?;
        }
    }
    Pending::clear(&ctx.state)
}

/// Runs one hook event. Errors are logged and recorded as pending; the exit code is 0 unless
/// `strict` is set.
pub fn run(ctx: &Context, event: Event) -> Result<ExitCode> {
    log::info!("hook {} started", event.name());
    let result = match event {
        Event::PreInstall => pre_install(ctx),
        Event::PostInstall => post_install(ctx),
        Event::Boot => boot(ctx),
    };
    match result {
        Ok(()) => {
            log::info!("hook {} done", event.name());
            Ok(ExitCode::Success)
        }
        Err(err) => {
            let error = match signals::received() {
                Some(signal) if !format!("{err:#}").contains(signal) => format!("{signal} received: {err:#}"),
                _ => format!("{err:#}"),
            };
            log::error!("hook {} FAILED: {error}", event.name());
            leave_pending(&ctx.state, event, &error, ctx.restore_default());
            if ctx.config.strict {
                Err(err)
            } else {
                Ok(ExitCode::Success)
            }
        }
    }
}

/// Writes the pending marker the next run and `status` see, only into a state directory no one
/// else can change. Does not log (the deadline's watchdog calls it).
fn save_pending(state: &StateDir, event: Event, error: &str, snapshot: Option<String>) -> Result<()> {
    let pending = Pending {
        since: humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string(),
        event: event.name().into(),
        error: error.to_string(),
        snapshot,
    };
    crate::system::fsutil::check_trusted(state.dir(), "state directory").and_then(|()| pending.save(state))
}

/// Leaves the pending marker and says in the log whether it could.
fn leave_pending(state: &StateDir, event: Event, error: &str, snapshot: Option<String>) {
    match save_pending(state, event, error, snapshot) {
        Ok(()) => log::error!("a restore is pending: `iwss-keeper status` shows it; the next run retries"),
        Err(e) => log::error!("cannot record the pending restore: {e:#}"),
    }
}

/// Stops the whole hook run at `hook_timeout_secs` from now, whatever it is doing: every program
/// it started is killed with its session, the pending marker is left and the process exits 0 (2
/// when `strict`), so an upgrade is never held longer. Files are always whole (atomic writes); a
/// restore stopped between writing and verifying leaves the activation journal the next run
/// finishes.
fn arm_deadline(ctx: &Context, event: Event) {
    let (secs, state, strict) = (ctx.config.hook_timeout_secs, ctx.state.clone(), ctx.config.strict);
    let at =
        std::time::Instant::now() + std::time::Duration::from_secs(secs.min(crate::domain::config::MAX_TIMEOUT_SECS));
    crate::system::process::set_deadline(at);
    std::thread::spawn(move || {
        std::thread::sleep(at.saturating_duration_since(std::time::Instant::now()));
        // Children first and the marker next, without the logger: a stuck main thread may hold
        // it (a stderr nobody reads, a stalled syslog). Logging gets a second, then the exit.
        crate::system::process::kill_running();
        let error = format!("stopped after hook_timeout_secs ({secs}s)");
        let _ = save_pending(&state, event, &error, None);
        let (done, logged) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            log::error!("hook {} {error}; a restore is pending", event.name());
            log::logger().flush();
            let _ = done.send(());
        });
        let _ = logged.recv_timeout(std::time::Duration::from_secs(1));
        // SAFETY: _exit ends the process at once, without running anything that could block.
        unsafe { libc::_exit(if strict { ExitCode::Error.code() } else { 0 }) };
    });
}

/// Hook mode from its first instruction: the log is attached before anything can fail, and a
/// failure to open the configuration, trust the state directory or take the lock is contained
/// like any other: logged, recorded as pending where the state directory allows, exit 0 (the
/// `strict` setting cannot apply when the configuration itself cannot be read).
pub fn run_contained(cli: &Cli, event: Event) -> Result<ExitCode> {
    let root = Root::new(&cli.root);
    super::attach_logs(&root);
    signals::catch(crate::domain::config::DEFAULT_SIGNAL_GRACE_SECS);
    let default_state = || root.path(crate::store::lock::DEFAULT_STATE_DIR);
    let state = StateDir::new(cli.state_dir.clone().unwrap_or_else(default_state));
    if event == Event::PreInstall {
        // First of all: a pre-install that then fails leaves this behind, so post-install knows.
        if let Err(e) = crate::system::fsutil::check_trusted_if_root(state.dir(), "state directory")
            .and_then(|()| PreInstall::start(&state))
        {
            log::error!("cannot record that pre-install started: {e:#}");
        }
    }
    let setup = Context::open(&cli.root, cli.config.as_deref(), cli.state_dir.as_deref()).and_then(|ctx| {
        signals::catch(ctx.config.signal_grace_secs);
        arm_deadline(&ctx, event);
        let timeout = std::time::Duration::from_secs(ctx.config.lock_timeout_secs);
        let lock = Lock::acquire(&ctx.root, &ctx.state, timeout)?;
        Ok((ctx, lock))
    });
    match setup {
        Ok((ctx, _lock)) => {
            // A bug must not fail the upgrade either: a panic is contained like any failure.
            match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| run(&ctx, event))) {
                Ok(result) => result,
                Err(_) => {
                    log::error!("hook {} FAILED: internal error (see above)", event.name());
                    leave_pending(&ctx.state, event, "internal error", None);
                    Ok(if ctx.config.strict {
                        ExitCode::Error
                    } else {
                        ExitCode::Success
                    })
                }
            }
        }
        Err(err) => {
            log::error!("hook {} FAILED before it could start: {err:#}", event.name());
            leave_pending(&state, event, &format!("{err:#}"), None);
            Ok(ExitCode::Success)
        }
    }
}
