//! `register` / `unregister`: the hook scripts where the upgrade runs them, and a boot guard for
//! upgrades that reboot or never call hooks. Both are idempotent and touch only their own files.

use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result};
use serde::Serialize;

use crate::context::Context;
use crate::exit_codes::ExitCode;
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

fn guard_command(ctx: &Context) -> String {
    let exe = std::env::current_exe()
        .ok()
        .and_then(|p| p.canonicalize().ok())
        .map_or("/usr/sbin/iwss-keeper".to_string(), |p| p.display().to_string());
    let mut cmd = exe;
    if !ctx.root.is_host() {
        cmd.push_str(&format!(" --root {}", ctx.root.dir().display()));
    }
    cmd.push_str(" hook boot");
    cmd
}

/// Whether the root runs systemd (its unit directories exist).
fn has_systemd(ctx: &Context) -> bool {
    ["/usr/lib/systemd/system", "/lib/systemd/system", "/run/systemd/system"]
        .iter()
        .any(|d| ctx.root.path(d).is_dir())
}

fn managed(ctx: &Context, hook_dir: &str) -> Vec<Managed> {
    let mut out: Vec<Managed> = HOOKS
        .iter()
        .map(|(rel, text)| Managed {
            path: ctx.root.path(&format!("{}/{rel}", hook_dir.trim_end_matches('/'))),
            content: Content::File {
                text: text.to_string(),
                mode: 0o755,
            },
        })
        .collect();
    let command = guard_command(ctx);
    if ctx.root.path(PACKAGED_UNIT).is_file() {
        // The package owns the unit; enabling it is the link `systemctl enable` would make.
        out.push(Managed {
            path: ctx.root.path(UNIT_LINK),
            content: Content::Link {
                target: PACKAGED_UNIT.into(),
            },
        });
    } else if has_systemd(ctx) {
        out.push(Managed {
            path: ctx.root.path(UNIT),
            content: Content::File {
                text: format!(
                    "# {MARK}; removed by `iwss-keeper unregister`.\n\
                     [Unit]\n\
                     Description=iwss-keeper: restore custom settings after an IWSVA/IWSS upgrade\n\
                     After=local-fs.target iptables.service\n\n\
                     [Service]\n\
                     Type=oneshot\n\
                     StandardInput=null\n\
                     ExecStart={command}\n\n\
                     [Install]\n\
                     WantedBy=multi-user.target\n"
                ),
                mode: 0o644,
            },
        });
        out.push(Managed {
            path: ctx.root.path(UNIT_LINK),
            content: Content::Link { target: UNIT.into() },
        });
    } else {
        out.push(Managed {
            path: ctx.root.path(SYSV),
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
                path: ctx.root.path(link),
                content: Content::Link { target: SYSV.into() },
            });
        }
    }
    out
}

fn state_of(m: &Managed) -> State {
    match &m.content {
        Content::File { text, .. } => match std::fs::read(&m.path) {
            Ok(bytes) if bytes == text.as_bytes() => State::Intact,
            Ok(_) => State::Modified,
            Err(_) => State::Missing,
        },
        Content::Link { target } => match std::fs::read_link(&m.path) {
            Ok(t) if t == Path::new(target) => State::Intact,
            Ok(_) => State::Modified,
            Err(_) if m.path.exists() => State::Modified,
            Err(_) => State::Missing,
        },
    }
}

/// What `register` manages and in what state each file is.
pub fn states(ctx: &Context, hook_dir: Option<&str>) -> Vec<FileState> {
    let dir = hook_dir.unwrap_or(&ctx.config.hook_dir).to_string();
    managed(ctx, &dir)
        .iter()
        .map(|m| FileState {
            path: m.path.display().to_string(),
            state: state_of(m),
        })
        .collect()
}

/// Installs the hook scripts and the boot guard. Returns one line per file: installed or unchanged.
pub fn register(ctx: &Context, hook_dir: Option<&str>) -> Result<Vec<String>> {
    let dir = hook_dir.unwrap_or(&ctx.config.hook_dir).to_string();
    let mut lines = Vec::new();
    for m in managed(ctx, &dir) {
        let state = state_of(&m);
        if state == State::Intact {
            lines.push(format!("unchanged  {}", m.path.display()));
            continue;
        }
        let parent = m.path.parent().expect("absolute path");
        std::fs::create_dir_all(parent).with_context(|| format!("cannot create {}", parent.display()))?;
        match &m.content {
            Content::File { text, mode } => {
                if state == State::Modified {
                    fsutil::backup(&m.path, &fsutil::stamp())?;
                }
                let owner = Owner {
                    mode: *mode,
                    uid: fsutil::current_ids().0,
                    gid: fsutil::current_ids().1,
                };
                fsutil::atomic_write(&m.path, text.as_bytes(), owner)?;
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
        lines.push(format!("installed  {}", m.path.display()));
    }
    if ctx.root.path(PACKAGED_UNIT).is_file() {
        // A unit an earlier `register` wrote in /etc would shadow the package's.
        let own = ctx.root.path(UNIT);
        if std::fs::read_to_string(&own).is_ok_and(|t| t.contains(MARK)) {
            std::fs::remove_file(&own).with_context(|| format!("cannot remove {}", own.display()))?;
            log::info!("removed {} (superseded by {PACKAGED_UNIT})", own.display());
            lines.push(format!("removed    {} (superseded by {PACKAGED_UNIT})", own.display()));
        }
    }
    Ok(lines)
}

/// Whether a link target is one of the guards `register` installs or enables.
fn is_guard(target: PathBuf) -> bool {
    [UNIT, PACKAGED_UNIT, SYSV].iter().any(|g| target == Path::new(g))
}

/// Marks the guard files `register` writes, so `unregister` knows them whatever they run.
const MARK: &str = "Installed by `iwss-keeper register`";

/// Removes what `register` installed: hook scripts still as shipped, guard files carrying its
/// mark, links pointing at the guard. A hook script someone changed is left in place and reported.
pub fn unregister(ctx: &Context, hook_dir: Option<&str>) -> Result<Vec<String>> {
    let dir = hook_dir
        .unwrap_or(&ctx.config.hook_dir)
        .trim_end_matches('/')
        .to_string();
    let mut lines = Vec::new();
    let remove = |path: PathBuf, lines: &mut Vec<String>| -> Result<()> {
        std::fs::remove_file(&path).with_context(|| format!("cannot remove {}", path.display()))?;
        log::info!("unregistered {}", path.display());
        lines.push(format!("removed    {}", path.display()));
        Ok(())
    };
    for (rel, text) in HOOKS {
        let path = ctx.root.path(&format!("{dir}/{rel}"));
        match std::fs::read(&path) {
            Ok(bytes) if bytes == text.as_bytes() => remove(path, &mut lines)?,
            Ok(_) => {
                log::warn!("{} was changed since register; left in place", path.display());
                lines.push(format!("kept       {} (changed since register)", path.display()));
            }
            Err(_) => {}
        }
    }
    for link in std::iter::once(UNIT_LINK).chain(SYSV_LINKS) {
        let path = ctx.root.path(link);
        if std::fs::read_link(&path).is_ok_and(is_guard) {
            remove(path, &mut lines)?;
        }
    }
    for guard in [UNIT, SYSV] {
        let path = ctx.root.path(guard);
        if std::fs::read_to_string(&path).is_ok_and(|t| t.contains(MARK)) {
            remove(path, &mut lines)?;
        }
    }
    Ok(lines)
}

/// `register`: install, then take a baseline snapshot.
pub fn run_register(ctx: &Context, json: bool, hook_dir: Option<&str>) -> Result<ExitCode> {
    let mut lines = register(ctx, hook_dir)?;
    let snap = ctx.record(Some("baseline (register)".into()))?;
    lines.push(format!(
        "snapshot   {} (baseline, {})",
        snap.manifest.id, snap.manifest.version
    ));
    super::print(json, &lines, || lines.iter().map(|l| format!("{l}\n")).collect())?;
    Ok(ExitCode::Success)
}

/// `unregister`: remove what `register` installed.
pub fn run_unregister(ctx: &Context, json: bool, hook_dir: Option<&str>) -> Result<ExitCode> {
    let lines = unregister(ctx, hook_dir)?;
    super::print(json, &lines, || {
        if lines.is_empty() {
            "nothing registered\n".to_string()
        } else {
            lines.iter().map(|l| format!("{l}\n")).collect()
        }
    })?;
    Ok(ExitCode::Success)
}
