//! The command context: the root, the state directory and the configuration, built once from the
//! flags, and the few operations every command shares (capture the live system, record it, read
//! a SNAPSHOT argument).

use std::path::Path;

use anyhow::{bail, Context as _, Result};

use crate::domain::config::Config;
use crate::domain::rule::names::{self, Names};
use crate::domain::snapshot::Snapshot;
use crate::root::Root;
use crate::store::pending::Pending;
use crate::store::StateDir;
use crate::system::{capture, fsutil};

/// Everything a command needs.
pub struct Context {
    pub root: Root,
    pub state: StateDir,
    pub config: Config,
}

/// Loads the configuration file if it exists; a missing default file means defaults, a missing
/// file given explicitly is an error.
fn load_config(path: &Path, explicit: bool) -> Result<Config> {
    if !explicit && std::fs::symlink_metadata(path).is_err_and(|e| e.kind() == std::io::ErrorKind::NotFound) {
        return Ok(Config::default());
    }
    let bytes = fsutil::read_bounded(path).with_context(|| format!("cannot read configuration {}", path.display()))?;
    let text = String::from_utf8(bytes).map_err(|_| anyhow::anyhow!("{}: not UTF-8 text", path.display()))?;
    Config::parse(&text, &path.display().to_string())
}

impl Context {
    /// Opens `root` with the configuration (default `ROOT/etc/iwss-keeper/config.toml`) and state
    /// directory (default `ROOT/var/lib/iwss-keeper`), refusing either if others could change it.
    pub fn open(root: &Path, config: Option<&Path>, state_dir: Option<&Path>) -> Result<Self> {
        let root = Root::new(root);
        if !root.dir().is_dir() {
            bail!("root {} is not a directory", root.dir().display());
        }
        // Settings and state others could change are not trusted by a tool that runs as root.
        let config_path = config.map_or_else(|| root.path("/etc/iwss-keeper/config.toml"), Path::to_path_buf);
        fsutil::check_trusted(&config_path, "configuration")?;
        let config = load_config(&config_path, config.is_some())?;
        // Protocol and service names as the appliance's iptables resolves them.
        let text = |p: &str| fsutil::read_bounded(&root.path(p)).map(|b| String::from_utf8_lossy(&b).into_owned());
        names::set(Names::parse(
            &text("/etc/protocols").unwrap_or_default(),
            &text("/etc/services").unwrap_or_default(),
        ));
        let state_dir = state_dir.map_or_else(|| root.path(crate::store::lock::DEFAULT_STATE_DIR), Path::to_path_buf);
        fsutil::check_trusted(&state_dir, "state directory")?;
        Ok(Self {
            root,
            state: StateDir::new(state_dir),
            config,
        })
    }

    /// The live system, captured now, with what is loaded when it can be read.
    pub fn live(&self, label: Option<String>) -> Result<Snapshot> {
        let mut snap = capture::capture(&self.root, &self.config, label)?;
        snap.manifest.runtime = Some(capture::runtime(&self.root, &self.config.managed_sysctl));
        Ok(snap)
    }

    /// Records the live system as a new stored snapshot, then prunes beyond `keep_snapshots`,
    /// never the newest pre-upgrade snapshot nor the one a pending restore needs.
    pub fn record(&self, label: Option<String>) -> Result<Snapshot> {
        let mut snap = self.live(label)?;
        let store = self.state.snapshots();
        let id = crate::store::snapshots::save(&mut snap, &store.dir)?;
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
        if let Some(p) = Pending::load(&self.state)? {
            protect.extend(p.snapshot);
        }
        store.prune(self.config.keep_snapshots, &protect)?;
        Ok(snap)
    }

    /// Reads a SNAPSHOT argument: an id or unique id prefix, a snapshot directory, or a root tree.
    pub fn resolve(&self, arg: &str) -> Result<Snapshot> {
        let path = Path::new(arg);
        let looks_like_path = arg.contains('/') || arg == "." || arg == "..";
        let store = self.state.snapshots();
        if !looks_like_path {
            if let Some(dir) = store.find(arg)? {
                return crate::store::snapshots::load(&dir);
            }
        }
        if path.join("manifest.json").is_file() {
            crate::store::snapshots::load(path)
        } else if path.is_dir() {
            capture::capture(&Root::new(path), &self.config, None)
                .with_context(|| format!("cannot read root tree {}", path.display()))
        } else if looks_like_path {
            bail!("{arg}: no such snapshot directory or root tree")
        } else {
            bail!("no snapshot {arg:?} in {}", store.dir.display())
        }
    }

    /// The default old side: the newest snapshot recorded on an older version than `live`.
    pub fn pre_upgrade(&self, live: &Snapshot) -> Result<Snapshot> {
        let store = self.state.snapshots();
        match store.pre_upgrade(&live.manifest.version)? {
            Some(m) => crate::store::snapshots::load(&store.dir.join(&m.id)),
            None => bail!(
                "no snapshot in {}: take one with `iwss-keeper snapshot` before upgrading, or name one",
                store.dir.display()
            ),
        }
    }

    /// The two sides of a comparison: `old` (default: the pre-upgrade snapshot) and `new`
    /// (default: the live system).
    pub fn sides(&self, old: Option<&str>, new: Option<&str>) -> Result<(Snapshot, Snapshot)> {
        let new = match new {
            Some(arg) => self.resolve(arg)?,
            None => self.live(None)?,
        };
        let old = match old {
            Some(arg) => self.resolve(arg)?,
            None => self.pre_upgrade(&new)?,
        };
        Ok((old, new))
    }
}
