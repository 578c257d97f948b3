//! The commands: each reads through one root, does its work, and reports.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

use crate::activate;
use crate::apply;
use crate::cli::{Cli, Command};
use crate::compare::{compare, Comparison, Pair};
use crate::config::Config;
use crate::exit_codes::ExitCode;
use crate::fsutil;
use crate::hooks;
use crate::live;
use crate::lock::Lock;
use crate::logging;
use crate::plan;
use crate::register;
use crate::report::{self, ChangeReport, Report, Side};
use crate::root::Root;
use crate::runtime;
use crate::show;
use crate::snapshot::{Snapshot, Store};
use crate::status;
use crate::sysctl;

/// Everything a command needs: the root, the state directory and the configuration.
pub struct Env {
    pub root: Root,
    pub state_dir: PathBuf,
    pub config: Config,
    pub json: bool,
}

impl Env {
    pub fn from_cli(cli: &Cli) -> Result<Self> {
        let root = Root::new(&cli.root);
        if !root.dir().is_dir() {
            bail!("root {} is not a directory", root.dir().display());
        }
        // Settings and state others could change are not trusted by a tool that runs as root.
        let config_path = cli
            .config
            .clone()
            .unwrap_or_else(|| root.path("/etc/iwss-keeper/config.toml"));
        fsutil::check_trusted(&config_path, "configuration")?;
        let config = Config::load(&config_path, cli.config.is_some())?;
        let state_dir = cli
            .state_dir
            .clone()
            .unwrap_or_else(|| root.path("/var/lib/iwss-keeper"));
        fsutil::check_trusted(&state_dir, "state directory")?;
        Ok(Self {
            root,
            state_dir,
            config,
            json: cli.json,
        })
    }

    pub fn store(&self) -> Store {
        Store::new(&self.state_dir)
    }

    /// The live system, captured now, with what is loaded when it can be read.
    pub fn live(&self, label: Option<String>) -> Result<Snapshot> {
        let mut snap = Snapshot::capture(&self.root, &self.config, label)?;
        snap.manifest.runtime = Some(live::capture_runtime(&self.root, &self.config.managed_sysctl));
        Ok(snap)
    }

    /// Records the live system as a new stored snapshot, then prunes beyond `keep_snapshots`,
    /// never the newest pre-upgrade snapshot nor the one a pending restore needs.
    pub fn record(&self, label: Option<String>) -> Result<Snapshot> {
        let mut snap = self.live(label)?;
        let store = self.store();
        let id = snap.store(&store.dir)?;
        log::info!(
            "snapshot {id} taken ({}): {} files, {}",
            snap.manifest.label.as_deref().unwrap_or("no label"),
            snap.manifest.files.len(),
            snap.manifest.version
        );
        let mut protect: Vec<String> = store
            .pre_upgrade(&snap.manifest.version)?
            .into_iter()
            .map(|m| m.id)
            .collect();
        protect.push(id);
        if let Some(p) = hooks::Pending::load(self)? {
            protect.extend(p.snapshot);
        }
        store.prune(self.config.keep_snapshots, &protect)?;
        Ok(snap)
    }

    /// Reads a SNAPSHOT argument: an id or unique id prefix, a snapshot directory, or a root tree.
    pub fn resolve(&self, arg: &str) -> Result<Snapshot> {
        let path = Path::new(arg);
        let looks_like_path = arg.contains('/') || arg == "." || arg == "..";
        if !looks_like_path {
            if let Some(dir) = self.store().find(arg)? {
                return Snapshot::load(&dir);
            }
        }
        if path.join("manifest.json").is_file() {
            Snapshot::load(path)
        } else if path.is_dir() {
            Snapshot::capture(&Root::new(path), &self.config, None)
                .with_context(|| format!("cannot read root tree {}", path.display()))
        } else if looks_like_path {
            bail!("{arg}: no such snapshot directory or root tree")
        } else {
            bail!("no snapshot {arg:?} in {}", self.store().dir.display())
        }
    }

    /// The default old side: the newest snapshot recorded on an older version than `live`.
    pub fn pre_upgrade(&self, live: &Snapshot) -> Result<Snapshot> {
        let store = self.store();
        match store.pre_upgrade(&live.manifest.version)? {
            Some(m) => Snapshot::load(&store.dir.join(&m.id)),
            None => bail!(
                "no snapshot in {}: take one with `iwss-keeper snapshot` before upgrading, or name one",
                store.dir.display()
            ),
        }
    }
}

/// Runs the command line; the exit code says how it ended.
pub fn run(cli: Cli) -> Result<ExitCode> {
    let env = Env::from_cli(&cli)?;
    // Runs that change anything log to a file (and syslog on the real root) and hold the lock.
    let changes = match &cli.command {
        Command::Snapshot { .. } | Command::Hook { .. } | Command::Register { .. } | Command::Unregister { .. } => true,
        Command::Restore { dry_run, .. } => !dry_run,
        Command::List | Command::Show { .. } | Command::Diff { .. } | Command::Status => false,
    };
    let _lock = if changes {
        let log_path = env.root.path("/var/log/iwss-keeper.log");
        if let Err(e) = logging::attach_file(&log_path) {
            log::warn!("cannot log to {}: {e}", log_path.display());
        }
        if env.root.is_host() {
            logging::attach_syslog();
        }
        let timeout = std::time::Duration::from_secs(env.config.lock_timeout_secs);
        Some(Lock::acquire(&env.state_dir, timeout)?)
    } else {
        None
    };
    match cli.command {
        Command::Hook { event } => hooks::run(&env, event),
        Command::Register { hook_dir } => cmd_register(&env, hook_dir.as_deref()),
        Command::Unregister { hook_dir } => cmd_unregister(&env, hook_dir.as_deref()),
        Command::Snapshot { label } => cmd_snapshot(&env, label),
        Command::List => cmd_list(&env),
        Command::Show { snapshot } => show::run(&env, &snapshot),
        Command::Diff { old, new } => cmd_diff(&env, old.as_deref(), new.as_deref()),
        Command::Status => status::run(&env),
        Command::Restore {
            from,
            dry_run,
            no_restart,
        } => cmd_restore(&env, from.as_deref(), dry_run, no_restart),
    }
}

fn cmd_snapshot(env: &Env, label: Option<String>) -> Result<ExitCode> {
    let snap = env.record(label)?;
    report::print(env.json, &snap.manifest, || format!("{}\n", snap.manifest.id))?;
    Ok(ExitCode::Success)
}

fn cmd_register(env: &Env, hook_dir: Option<&str>) -> Result<ExitCode> {
    let mut lines = register::register(env, hook_dir)?;
    let snap = env.record(Some("baseline (register)".into()))?;
    lines.push(format!(
        "snapshot   {} (baseline, {})",
        snap.manifest.id, snap.manifest.version
    ));
    report::print(env.json, &lines, || lines.iter().map(|l| format!("{l}\n")).collect())?;
    Ok(ExitCode::Success)
}

fn cmd_unregister(env: &Env, hook_dir: Option<&str>) -> Result<ExitCode> {
    let lines = register::unregister(env, hook_dir)?;
    report::print(env.json, &lines, || {
        if lines.is_empty() {
            "nothing registered\n".to_string()
        } else {
            lines.iter().map(|l| format!("{l}\n")).collect()
        }
    })?;
    Ok(ExitCode::Success)
}

fn cmd_list(env: &Env) -> Result<ExitCode> {
    let manifests = env.store().manifests()?;
    report::print(env.json, &manifests, || {
        let mut out = String::new();
        let w = manifests.iter().map(|m| m.id.len()).max().unwrap_or(2).max(2);
        let v = manifests
            .iter()
            .map(|m| m.version.to_string().len())
            .max()
            .unwrap_or(7)
            .max(7);
        let _ = writeln!(out, "{:w$}  {:20}  {:v$}  LABEL", "ID", "CREATED", "VERSION");
        for m in &manifests {
            let _ = writeln!(
                out,
                "{:w$}  {:20}  {:v$}  {}",
                m.id,
                m.created,
                m.version.to_string(),
                m.label.as_deref().unwrap_or("")
            );
        }
        out
    })?;
    Ok(ExitCode::Success)
}

/// Loads the two sides of a comparison.
fn sides(env: &Env, old: Option<&str>, new: Option<&str>) -> Result<(Snapshot, Snapshot)> {
    let new = match new {
        Some(arg) => env.resolve(arg)?,
        None => env.live(None)?,
    };
    let old = match old {
        Some(arg) => env.resolve(arg)?,
        None => env.pre_upgrade(&new)?,
    };
    Ok((old, new))
}

fn cmd_diff(env: &Env, old: Option<&str>, new: Option<&str>) -> Result<ExitCode> {
    let (old, new) = sides(env, old, new)?;
    let pair = Pair::read(&old, &new, &env.config.firewall_script)?;
    let cmp = compare(&pair, &env.config)?;
    let plan = plan::plan(&pair, &cmp, &env.config)?;
    let needs = cmp.needs_restore();
    let live = runtime::side_by_side(env, &old, &new)?;
    let report = Report {
        command: "diff",
        old: Side::of(&old),
        new: Side::of(&new),
        changes: plan
            .changes
            .iter()
            .map(|c| ChangeReport::new(c, None, env.json))
            .collect(),
        comparison: cmp,
        dry_run: false,
        live,
        outcome: if needs { "restorable" } else { "nothing-to-restore" },
    };
    report::print(env.json, &report, || report.render())?;
    Ok(if needs { ExitCode::Differs } else { ExitCode::Success })
}

/// A compact UTC stamp for backup names.
pub fn stamp() -> String {
    humantime::format_rfc3339_seconds(std::time::SystemTime::now())
        .to_string()
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .collect()
}

/// The outcome of planning and (unless dry) applying a restore.
pub struct Restored {
    pub report: Report,
    pub old: Snapshot,
    pub new: Snapshot,
    pub written: Vec<apply::Written>,
    /// The step that failed and was rolled back, if any.
    pub failed: Option<String>,
}

impl Restored {
    /// The error a rolled-back restore ends with.
    pub fn error(&self) -> Option<anyhow::Error> {
        self.failed.as_ref().map(|step| {
            anyhow::anyhow!("restore failed at {step}; the previous files and firewall rules were put back")
        })
    }
}

/// Restores from `from` onto the live root and, unless a dry run, brings the running system in
/// line: restart, verification, rollback, live sysctl values.
pub fn restore(env: &Env, from: Option<&str>, dry_run: bool, no_restart: bool) -> Result<Restored> {
    let mut r = restore_files(env, from, dry_run)?;
    let mut lines = std::mem::take(&mut r.report.live);
    if !dry_run {
        r.failed = activate::activate(
            env,
            &r.old,
            &r.new,
            &r.report.comparison,
            &r.written,
            no_restart,
            &mut lines,
        )?;
    }
    if !r.written.iter().any(|w| w.path == sysctl::SYSCTL_CONF) {
        lines.extend(activate::running_mismatches(env, &r.new));
    }
    r.report.live = lines;
    if r.failed.is_some() {
        r.report.outcome = "rolled-back";
    }
    Ok(r)
}

/// Plans and applies the file changes of a restore from `from` onto the live root.
fn restore_files(env: &Env, from: Option<&str>, dry_run: bool) -> Result<Restored> {
    let (old, new) = sides(env, from, None)?;
    let pair = Pair::read(&old, &new, &env.config.firewall_script)?;
    let cmp: Comparison = compare(&pair, &env.config)?;
    log::info!(
        "restore: from {} ({}) onto {} ({})",
        old.name(),
        old.manifest.version,
        new.name(),
        new.manifest.version
    );
    for d in &cmp.discarded {
        let verdict = if d.restore { "restore" } else { "skip" };
        log::info!("discarded rule, {verdict}: line {} {}: {}", d.line, d.text, d.reason);
    }
    for f in &cmp.sysctl {
        log::info!("sysctl {}: {}", f.key, f.reason);
    }
    let plan = plan::plan(&pair, &cmp, &env.config)?;
    let mut live = Vec::new();
    let script_change = plan.changes.iter().find(|c| c.path == env.config.firewall_script);
    let written = if dry_run || plan.changes.is_empty() {
        if let (true, Some(change)) = (dry_run, script_change) {
            if apply::can_check_syntax(&env.root) {
                apply::check_syntax(&env.root, &change.new)?;
                live.push("bash -n: the new firewall script is valid".to_string());
            } else {
                live.push(format!("bash -n: not run (no bash under {})", env.root.dir().display()));
            }
        }
        Vec::new()
    } else {
        activate::begin(env)?;
        apply::apply(&env.root, &plan, &env.config.firewall_script, &stamp())?
    };
    let changes = plan
        .changes
        .iter()
        .map(|c| ChangeReport::new(c, written.iter().find(|w| w.path == c.path), dry_run || env.json))
        .collect();
    let outcome = if plan.changes.is_empty() {
        "nothing-to-restore"
    } else if dry_run {
        "planned"
    } else {
        "restored"
    };
    Ok(Restored {
        report: Report {
            command: "restore",
            old: Side::of(&old),
            new: Side::of(&new),
            comparison: cmp,
            changes,
            dry_run,
            live,
            outcome,
        },
        old,
        new,
        written,
        failed: None,
    })
}

fn cmd_restore(env: &Env, from: Option<&str>, dry_run: bool, no_restart: bool) -> Result<ExitCode> {
    let r = restore(env, from, dry_run, no_restart)?;
    report::print(env.json, &r.report, || r.report.render())?;
    match r.error() {
        Some(err) => Err(err),
        None => Ok(ExitCode::Success),
    }
}
