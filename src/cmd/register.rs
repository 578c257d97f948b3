//! `register` / `unregister`: the hook scripts where the upgrade runs them, and a boot guard for
//! upgrades that reboot or never call hooks. Both are idempotent and touch only their own files;
//! what `register` installed is recorded in the state directory (`registration.json`), which
//! `status`, `unregister` and the package's scriptlets use.

use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result};
use serde::Serialize;

use crate::context::Context;
use crate::domain::snapshot::sha256_hex;
use crate::exit_codes::{ExitCode, Failure};
use crate::restore::Owed;
use crate::store::registration::{Installed, Registration};
use crate::system::fsutil::{self, Owner};

/// The hook scripts, as shipped in `hooks/`.
pub const HOOKS: [(&str, &str); 2] = [
    (
        "pre-install.d/50iwss-keeper",
        include_str!("../../hooks/pre-install.d/50iwss-keeper"),
    ),
    (
        "post-install.d/50iwss-keeper",
        include_str!("../../hooks/post-install.d/50iwss-keeper"),
    ),
];

/// The line of a shipped hook script that names the binary; `register` writes the binary it
/// installed there.
const BIN_LINE: &str = "bin=${IWSS_KEEPER:-/usr/sbin/iwss-keeper}";
/// Where the package installs the binary.
const PACKAGED_BINARY: &str = "/usr/sbin/iwss-keeper";

const UNIT: &str = "/etc/systemd/system/iwss-keeper-guard.service";
/// Where the RPM puts the boot guard unit; when it is there, `register` only enables it.
const PACKAGED_UNIT: &str = "/usr/lib/systemd/system/iwss-keeper-guard.service";
const UNIT_LINK: &str = "/etc/systemd/system/multi-user.target.wants/iwss-keeper-guard.service";
const SYSV: &str = "/etc/init.d/iwss-keeper-guard";
const SYSV_LINKS: [&str; 2] = ["/etc/rc3.d/S99iwss-keeper-guard", "/etc/rc5.d/S99iwss-keeper-guard"];

/// One file `register` manages, with the content it must have.
#[derive(Debug, Clone)]
struct Managed {
    path: PathBuf,
    content: Content,
}

/// What a managed file must hold.
#[derive(Debug, Clone)]
enum Content {
    File { text: String, mode: u32 },
    Link { target: String },
}

/// Whether a managed file is as `register` wrote it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum State {
    Intact,
    Missing,
    Modified,
}

impl State {
    /// Upper case, for the lines that need attention.
    pub fn upper(self) -> &'static str {
        match self {
            Self::Intact => "INTACT",
            Self::Missing => "MISSING",
            Self::Modified => "MODIFIED",
        }
    }
}

/// State of one managed file.
#[derive(Debug, Clone, Serialize)]
pub struct FileState {
    pub path: String,
    pub state: State,
}

/// Whether a path can be written into a hook, a unit or a boot script as it is: only characters
/// no shell or systemd quoting treats specially.
fn bakeable(path: &str) -> bool {
    path.starts_with('/') && path.bytes().all(|b| b.is_ascii_alphanumeric() || b"/._+-".contains(&b))
}

/// The binary the hooks and the boot guard run: this one, when only root (or the running user)
/// can replace it; else the packaged one under the root, when that is trusted; else a refusal.
fn binary(ctx: &Context) -> Result<String> {
    let why = match std::env::current_exe().and_then(|p| p.canonicalize()) {
        Ok(exe) => {
            let shown = exe.display().to_string();
            match fsutil::check_trusted_path(&exe) {
                Ok(()) if bakeable(&shown) => return Ok(shown),
                Ok(()) => format!("{shown} holds characters that would need quoting"),
                Err(e) => format!("{e:#}"),
            }
        }
        Err(e) => format!("cannot tell where this binary is: {e}"),
    };
    let packaged = ctx.root.path(PACKAGED_BINARY);
    if packaged.is_file() && fsutil::check_trusted_path(&packaged).is_ok() {
        log::warn!("{why}; the hooks run {PACKAGED_BINARY} instead");
        return Ok(PACKAGED_BINARY.into());
    }
    anyhow::bail!(
        "refusing to register: {why}. Root would run it at every upgrade and boot; install the binary where only root can write (the package puts it at {PACKAGED_BINARY}) and register from there"
    )
}

/// A shipped hook script with the registered binary written in.
pub fn hook_text(shipped: &str, binary: &str) -> String {
    debug_assert!(shipped.contains(BIN_LINE));
    shipped.replace(BIN_LINE, &format!("bin=${{IWSS_KEEPER:-'{binary}'}}"))
}

fn guard_command(ctx: &Context, binary: &str) -> Result<String> {
    let mut cmd = binary.to_string();
    if !ctx.root.is_host() {
        let root = ctx.root.dir().display().to_string();
        if !bakeable(&root) {
            anyhow::bail!("refusing to register: the root path {root:?} holds characters that would need quoting");
        }
        if fsutil::current_ids().0 == 0 {
            fsutil::check_trusted_path(ctx.root.dir()).map_err(|e| anyhow::anyhow!("refusing to register: {e:#}"))?;
        }
        cmd.push_str(&format!(" --root {root}"));
    }
    cmd.push_str(" hook boot");
    Ok(cmd)
}

/// Whether the root runs systemd (its unit directories exist).
fn has_systemd(ctx: &Context) -> bool {
    ["/usr/lib/systemd/system", "/lib/systemd/system", "/run/systemd/system"]
        .iter()
        .any(|d| ctx.root.path(d).is_dir())
}

fn managed(ctx: &Context, hook_dir: &str, binary: &str) -> Result<Vec<Managed>> {
    // Resolved within the root: no hook or unit is written through a linked directory out of it.
    let at = |abs: &str| ctx.root.inside(abs).with_context(|| format!("cannot resolve {abs}"));
    let mut out: Vec<Managed> = HOOKS
        .iter()
        .map(|(rel, text)| {
            Ok(Managed {
                path: at(&format!("{}/{rel}", hook_dir.trim_end_matches('/')))?,
                content: Content::File {
                    text: hook_text(text, binary),
                    mode: 0o755,
                },
            })
        })
        .collect::<Result<_>>()?;
    let command = guard_command(ctx, binary)?;
    // The guard stops itself at hook_timeout_secs; systemd gives it a little more.
    let start_timeout = ctx.config.hook_timeout_secs + 30;
    if ctx.root.path(PACKAGED_UNIT).is_file() {
        // The package owns the unit; enabling it is the link `systemctl enable` would make.
        out.push(Managed {
            path: at(UNIT_LINK)?,
            content: Content::Link {
                target: PACKAGED_UNIT.into(),
            },
        });
    } else if has_systemd(ctx) {
        out.push(Managed {
            path: at(UNIT)?,
            content: Content::File {
                text: format!(
                    "# {MARK}; removed by `iwss-keeper unregister`.\n\
                     [Unit]\n\
                     Description=iwss-keeper: restore custom settings after an IWSVA/IWSS upgrade\n\
                     After=local-fs.target iptables.service\n\n\
                     [Service]\n\
                     Type=oneshot\n\
                     StandardInput=null\n\
                     TimeoutStartSec={start_timeout}\n\
                     ExecStart={command}\n\n\
                     [Install]\n\
                     WantedBy=multi-user.target\n"
                ),
                mode: 0o644,
            },
        });
        out.push(Managed {
            path: at(UNIT_LINK)?,
            content: Content::Link { target: UNIT.into() },
        });
    } else {
        out.push(Managed {
            path: at(SYSV)?,
            content: Content::File {
                text: format!(
                    "#!/bin/sh\n\
                     # {MARK}; removed by `iwss-keeper unregister`.\n\
                     # chkconfig: 345 99 01\n\
                     # description: restore custom settings after an IWSVA/IWSS upgrade\n\
                     case \"$1\" in\n    start) exec {command} </dev/null ;;\n    *) exit 0 ;;\nesac\n"
                ),
                mode: 0o755,
            },
        });
        for link in SYSV_LINKS {
            out.push(Managed {
                path: at(link)?,
                content: Content::Link { target: SYSV.into() },
            });
        }
    }
    Ok(out)
}

/// Whether `path` is one `register` could have installed for `hook_dir`: a record naming any
/// other file (a record someone edited) never makes `unregister` remove it.
fn ours(hook_dir: &str, path: &str) -> bool {
    let dir = hook_dir.trim_end_matches('/');
    let safe_dir = dir.starts_with('/') && !dir.split('/').any(|c| c == "..");
    (safe_dir && HOOKS.iter().any(|(rel, _)| path == format!("{dir}/{rel}")))
        || [UNIT, UNIT_LINK, SYSV].contains(&path)
        || SYSV_LINKS.contains(&path)
}

/// The state of a file as the registration record describes it.
fn state_of(root_path: &Path, installed: &Installed) -> State {
    match (&installed.sha256, &installed.target) {
        (_, Some(target)) => match std::fs::read_link(root_path) {
            Ok(t) if t == Path::new(target) => State::Intact,
            Ok(_) => State::Modified,
            Err(_) if std::fs::symlink_metadata(root_path).is_ok() => State::Modified,
            Err(_) => State::Missing,
        },
        (Some(sha), None) => match fsutil::read_bounded(root_path) {
            Ok(bytes) if sha256_hex(&bytes) == *sha => State::Intact,
            Ok(_) => State::Modified,
            Err(_) if std::fs::symlink_metadata(root_path).is_ok() => State::Modified,
            Err(_) => State::Missing,
        },
        (None, None) => State::Modified,
    }
}

impl Managed {
    /// The record of this file as installed.
    fn installed(&self, root: &crate::root::Root) -> Installed {
        let path = self
            .path
            .strip_prefix(root.dir())
            .map_or_else(|_| self.path.display().to_string(), |p| format!("/{}", p.display()));
        match &self.content {
            Content::File { text, .. } => Installed {
                path,
                sha256: Some(sha256_hex(text.as_bytes())),
                target: None,
            },
            Content::Link { target } => Installed {
                path,
                sha256: None,
                target: Some(target.clone()),
            },
        }
    }
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

/// The report of `register`.
#[derive(Debug, Clone, Serialize)]
pub struct Registered {
    pub hook_dir: String,
    pub binary: String,
    pub files: Vec<FileAction>,
    pub snapshot: Baseline,
}

/// What `register` manages (from its record, else as it would install now) and in what state
/// each file is.
pub fn states(ctx: &Context, hook_dir: Option<&str>) -> Vec<FileState> {
    let installed: Vec<Installed> = match Registration::load(&ctx.state) {
        Ok(Some(record)) if hook_dir.is_none_or(|d| d == record.hook_dir) => record.files,
        _ => {
            let dir = hook_dir.unwrap_or(&ctx.config.hook_dir);
            let binary = binary(ctx).unwrap_or_else(|_| PACKAGED_BINARY.into());
            managed(ctx, dir, &binary)
                .unwrap_or_default()
                .iter()
                .map(|m| m.installed(&ctx.root))
                .collect()
        }
    };
    installed
        .iter()
        .map(|i| {
            let path = ctx.root.inside(&i.path).unwrap_or_else(|_| ctx.root.path(&i.path));
            FileState {
                state: state_of(&path, i),
                path: path.display().to_string(),
            }
        })
        .collect()
}

/// Makes sure the hook directory and its two subdirectories exist (created 0755) and that only
/// root (or the running user) can change them.
fn prepare_hook_dirs(ctx: &Context, hook_dir: &str) -> Result<()> {
    let base = hook_dir.trim_end_matches('/');
    for dir in [
        base.to_string(),
        format!("{base}/pre-install.d"),
        format!("{base}/post-install.d"),
    ] {
        let path = ctx.root.inside(&dir)?;
        // Each missing directory on the way gets 0755 whatever the caller's umask.
        let mut missing: Vec<&Path> = path.ancestors().take_while(|p| !p.exists()).collect();
        missing.reverse();
        for d in missing {
            std::fs::create_dir(d).with_context(|| format!("cannot create {}", d.display()))?;
            std::fs::set_permissions(d, std::os::unix::fs::PermissionsExt::from_mode(0o755))
                .with_context(|| format!("cannot set the mode of {}", d.display()))?;
        }
        fsutil::check_trusted(&path, "hook directory").map_err(|e| anyhow::anyhow!("refusing to register: {e:#}"))?;
        if fsutil::current_ids().0 == 0 {
            fsutil::check_trusted_path(&path).map_err(|e| anyhow::anyhow!("refusing to register: {e:#}"))?;
        }
    }
    Ok(())
}

/// Saves a hook script about to be replaced into the state directory (0600), never beside it
/// where a run-parts loop would execute it.
fn save_replaced(ctx: &Context, path: &Path) -> Result<PathBuf> {
    let dir = ctx.state.backups_dir();
    fsutil::create_private_dir(&dir)?;
    let bytes = fsutil::read_bounded(path)?;
    let rel = path.strip_prefix(ctx.root.dir()).unwrap_or(path);
    let name: String = rel.display().to_string().trim_start_matches('/').replace('/', "_");
    let mut target = dir.join(format!("{name}.{}", fsutil::stamp()));
    let mut n = 1;
    while std::fs::symlink_metadata(&target).is_ok() {
        target = dir.join(format!("{name}.{}.{n}", fsutil::stamp()));
        n += 1;
    }
    fsutil::write_private(&target, &bytes)?;
    Ok(target)
}

/// Installs the hook scripts and the boot guard and records them.
pub fn register(ctx: &Context, hook_dir: Option<&str>) -> Result<(String, String, Vec<FileAction>)> {
    let record = Registration::load(&ctx.state)?;
    let dir = hook_dir
        .map(str::to_string)
        .or_else(|| record.as_ref().map(|r| r.hook_dir.clone()))
        .unwrap_or_else(|| ctx.config.hook_dir.clone());
    if !dir.starts_with('/') || dir.split('/').any(|c| c == "..") {
        anyhow::bail!("--hook-dir must be an absolute path without `..`, not {dir:?}");
    }
    let binary = binary(ctx)?;
    let files = managed(ctx, &dir, &binary)?;
    prepare_hook_dirs(ctx, &dir)?;
    let mut actions = Vec::new();
    // Registered elsewhere before: the scripts there go (unless changed since).
    if let Some(old) = record.as_ref().filter(|r| r.hook_dir != dir) {
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
    }
    for m in &files {
        let state = state_of(&m.path, &m.installed(&ctx.root));
        if state == State::Intact {
            actions.push(FileAction::new(Action::Unchanged, &m.path));
            continue;
        }
        let parent = m.path.parent().expect("absolute path");
        std::fs::create_dir_all(parent).with_context(|| format!("cannot create {}", parent.display()))?;
        let mut action = FileAction::new(Action::Installed, &m.path);
        match &m.content {
            Content::File { text, mode } => {
                if state == State::Modified && std::fs::symlink_metadata(&m.path).is_ok_and(|t| t.is_file()) {
                    let saved = save_replaced(ctx, &m.path)?;
                    log::info!("saved the replaced {} as {}", m.path.display(), saved.display());
                    action.backup = Some(saved.display().to_string());
                }
                let (uid, gid) = fsutil::current_ids();
                fsutil::atomic_write(&m.path, text.as_bytes(), Owner { mode: *mode, uid, gid })?;
            }
            Content::Link { target } => {
                if state == State::Modified {
                    // A link to another of our guards (the package superseding a hand-made
                    // registration) is ours to replace; anything else is not.
                    if !std::fs::read_link(&m.path).is_ok_and(is_guard) {
                        anyhow::bail!(
                            "{} exists and is not iwss-keeper's link; remove it first",
                            m.path.display()
                        );
                    }
                    std::fs::remove_file(&m.path).with_context(|| format!("cannot replace {}", m.path.display()))?;
                }
                std::os::unix::fs::symlink(target, &m.path)
                    .with_context(|| format!("cannot link {}", m.path.display()))?;
            }
        }
        log::info!("registered {}", m.path.display());
        actions.push(action);
    }
    if ctx.root.path(PACKAGED_UNIT).is_file() {
        // A unit an earlier `register` wrote in /etc would shadow the package's.
        let own = ctx.root.path(UNIT);
        if fsutil::read_bounded(&own).is_ok_and(|t| String::from_utf8_lossy(&t).contains(MARK)) {
            std::fs::remove_file(&own).with_context(|| format!("cannot remove {}", own.display()))?;
            log::info!("removed {} (superseded by {PACKAGED_UNIT})", own.display());
            let mut a = FileAction::new(Action::Removed, &own);
            a.note = Some(format!("superseded by {PACKAGED_UNIT}"));
            actions.push(a);
        }
    }
    Registration {
        since: humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string(),
        hook_dir: dir.clone(),
        binary: binary.clone(),
        files: files.iter().map(|m| m.installed(&ctx.root)).collect(),
    }
    .save(&ctx.state)?;
    Ok((dir, binary, actions))
}

/// Whether a link target is one of the guards `register` installs or enables.
fn is_guard(target: PathBuf) -> bool {
    [UNIT, PACKAGED_UNIT, SYSV].iter().any(|g| target == Path::new(g))
}

/// Marks the guard files `register` writes, so `unregister` knows them whatever they run.
const MARK: &str = "Installed by `iwss-keeper register`";

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
            let binary = binary(ctx).unwrap_or_else(|_| PACKAGED_BINARY.into());
            let mut list: Vec<Installed> = managed(ctx, dir, &binary)?
                .iter()
                .map(|m| m.installed(&ctx.root))
                .collect();
            // Scripts as shipped, from registrations that wrote them unchanged.
            for (rel, text) in HOOKS {
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
            _ if i.target.is_some() && std::fs::read_link(&path).is_ok_and(is_guard) => remove(&path, &mut actions)?,
            _ if i.sha256.is_some()
                && fsutil::read_bounded(&path).is_ok_and(|t| String::from_utf8_lossy(&t).contains(MARK)) =>
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

/// Decides about the baseline: none when a restore is owed (it would hide it) or the newest
/// snapshot already holds the live files; else a new one.
fn baseline(ctx: &Context) -> Result<Baseline> {
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

fn render_files(out: &mut String, files: &[FileAction]) {
    use std::fmt::Write as _;
    for f in files {
        let action = match f.action {
            Action::Installed => "installed",
            Action::Unchanged => "unchanged",
            Action::Removed => "removed",
            Action::Kept => "kept",
        };
        let _ = write!(out, "{action:<10} {}", f.path);
        if let Some(note) = &f.note {
            let _ = write!(out, " ({note})");
        }
        if let Some(b) = &f.backup {
            let _ = write!(out, " (the replaced file saved as {b})");
        }
        out.push('\n');
    }
}

/// `register`: install, record, then a baseline snapshot when one is due.
pub fn run_register(ctx: &Context, json: bool, hook_dir: Option<&str>) -> Result<ExitCode> {
    let (hook_dir, binary, files) = register(ctx, hook_dir)?;
    let report = Registered {
        hook_dir,
        binary,
        files,
        snapshot: baseline(ctx).unwrap_or_else(|e| Baseline::Failed {
            reason: format!("{e:#}"),
        }),
    };
    super::print(json, &report, || {
        let mut out = String::new();
        render_files(&mut out, &report.files);
        let line = match &report.snapshot {
            Baseline::Taken { id, version } => format!("snapshot   {id} (baseline, {version})"),
            Baseline::Unchanged { id, version } => {
                format!("snapshot   unchanged: {id} ({version}) holds the live files")
            }
            Baseline::Owed { id, version } => {
                format!("snapshot   none taken: a restore from {id} ({version}) is owed; run `iwss-keeper restore`")
            }
            Baseline::Unknown { id, version, reason } => format!(
                "snapshot   none taken: whether a restore from {id} ({version}) is owed cannot be told: {reason}"
            ),
            Baseline::Failed { reason } => format!("snapshot   FAILED: {reason}"),
        };
        out.push_str(&line);
        out.push('\n');
        out
    })?;
    if let Baseline::Failed { reason } = &report.snapshot {
        let error = anyhow::anyhow!("the hooks are installed, but no baseline snapshot was taken: {reason}");
        return Err(Failure::new(ExitCode::ChangesLeft, error).reported().into());
    }
    Ok(ExitCode::Success)
}

/// `unregister`: remove what `register` installed.
pub fn run_unregister(ctx: &Context, json: bool, hook_dir: Option<&str>) -> Result<ExitCode> {
    let files = unregister(ctx, hook_dir)?;
    super::print(json, &serde_json::json!({ "files": files }), || {
        if files.is_empty() {
            "nothing registered\n".to_string()
        } else {
            let mut out = String::new();
            render_files(&mut out, &files);
            out
        }
    })?;
    Ok(ExitCode::Success)
}
