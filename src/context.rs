//! The command context: the root, the state directory and the configuration, built once from the
//! flags, and the few operations every command shares (capture the live system, record it, read
//! a SNAPSHOT argument).

use std::path::{Path, PathBuf};

use anyhow::{bail, Context as _, Result};

use crate::domain::config::Config;
use crate::domain::rule::names::{self, Names};
use crate::domain::snapshot::{FileKind, Origin, Snapshot};
use crate::root::Root;
use crate::store::pending::Pending;
use crate::store::StateDir;
use crate::system::{capture, fsutil, procsys, trust};

/// Everything a command needs.
pub struct Context {
    pub root: Root,
    pub state: StateDir,
    pub config: Config,
    /// Where the configuration is (or would be: the file is optional).
    pub config_path: PathBuf,
    /// Settings that stop the tool checking the article's fixes, said when opened.
    pub warnings: Vec<String>,
}

/// Refuses to compare what the tool cannot vouch for: a release other than 6.5, a product switch,
/// and (unless the old side was named) a downgrade.
fn check_versions(old: &Snapshot, new: &Snapshot, explicit_old: bool) -> Result<()> {
    let (o, n) = (&old.manifest.version, &new.manifest.version);
    for (side, v) in [(old.name(), o), (new.name(), n)] {
        if !v.is_known() {
            bail!("{side}: {v} is not a version this tool knows (IWSVA and IWSS 6.5 only); nothing was changed");
        }
    }
    if o.product != n.product {
        bail!(
            "{} is {o} and {} is {n}: a product switch, not an upgrade; nothing was changed",
            old.name(),
            new.name()
        );
    }
    if o.release > n.release {
        if !explicit_old {
            bail!(
                "{} ({n}) is older than the snapshot {} ({o}): a downgrade, not an upgrade; nothing was changed (name a snapshot with --from to use it anyway)",
                new.name(),
                old.name()
            );
        }
        log::warn!("{} ({n}) is older than {} ({o}): a downgrade", new.name(), old.name());
    }
    Ok(())
}

/// Loads the configuration file if it exists; a missing default file means defaults, a missing
/// file given explicitly is an error.
/// The file is opened through the trusted resolver ([`trust::open`]: it and every directory
/// above it checked on the descriptor) and read from that descriptor.
fn load_config(path: &Path, explicit: bool) -> Result<Config> {
    let file = match trust::open(path, trust::Want::File, "configuration")? {
        Some(file) => file,
        None if !explicit => return Ok(Config::default()),
        None => bail!("cannot read configuration {}: no such file", path.display()),
    };
    crate::fault::pause("config-opened");
    let bytes =
        fsutil::read_opened(file, path).with_context(|| format!("cannot read configuration {}", path.display()))?;
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
        let config = load_config(&config_path, config.is_some())?;
        fsutil::set_read_budget(config.read_budget_mib * 1024 * 1024);
        // Protocol and service names as the appliance's iptables resolves them.
        let text = |p: &str| fsutil::read_bounded(&root.path(p)).map(|b| String::from_utf8_lossy(&b).into_owned());
        names::set(Names::parse(
            &text("/etc/protocols").unwrap_or_default(),
            &text("/etc/services").unwrap_or_default(),
        ));
        // A setting that stops checking the article's fix: said by every command.
        let mut warnings: Vec<String> = config
            .warnings()
            .into_iter()
            .map(|w| format!("{}: {w}", config_path.display()))
            .collect();
        // On the running system a managed key the kernel does not have is most likely a typo.
        if root.is_host() {
            for key in &config.managed_sysctl {
                if !procsys::path(&root, key).exists() {
                    warnings.push(format!(
                        "{}: managed_sysctl key {key} is not in /proc/sys here: it is not checked",
                        config_path.display()
                    ));
                }
            }
        }
        for w in &warnings {
            log::warn!("{w}");
        }
        let state_dir = state_dir.map_or_else(|| root.path(crate::store::lock::DEFAULT_STATE_DIR), Path::to_path_buf);
        // Nobody else may be able to replace the state directory or its snapshots: each checked
        // with every directory above it.
        for dir in [state_dir.clone(), state_dir.join("snapshots")] {
            trust::open(&dir, trust::Want::Dir, "state directory")?;
        }
        Ok(Self {
            root,
            state: StateDir::new(state_dir),
            config,
            config_path,
            warnings,
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
        let mut protect = vec![id];
        protect.extend(store.pre_upgrade(&snap.manifest.version)?.map(|m| m.id));
        if let Some(p) = Pending::load(&self.state)? {
            protect.extend(p.snapshot);
        }
        store.prune(self.config.keep_snapshots, &protect)?;
        Ok(snap)
    }

    /// Reads a SNAPSHOT argument. Without a `/` it is only ever a snapshot id or unique id
    /// prefix (never a directory of that name in the working directory); with one, a snapshot
    /// directory or a root tree, which must not be writable by others when the tool runs as
    /// root.
    pub fn resolve(&self, arg: &str) -> Result<Snapshot> {
        let store = self.state.snapshots();
        if !arg.contains('/') {
            if arg.is_empty() || !arg.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
                bail!("{arg:?} is not a snapshot id (letters, digits and `-`); name a directory with a `/` in it");
            }
            return match store.find(arg)? {
                Some(dir) => crate::store::snapshots::load(&dir, self.state.dir()),
                None => bail!(
                    "no snapshot {arg:?} in {} (a directory is named with a `/`, e.g. ./{arg})",
                    store.dir.display()
                ),
            };
        }
        let path = Path::new(arg);
        fsutil::check_trusted_if_root(path, &format!("refusing {arg}"))?;
        let snap = if path.join("manifest.json").is_file() {
            crate::store::snapshots::load(path, self.state.dir())?
        } else if path.is_dir() {
            capture::capture(&Root::new(path), &self.config, None)
                .with_context(|| format!("cannot read root tree {}", path.display()))?
        } else {
            bail!("{arg}: no such snapshot directory or root tree")
        };
        // Every file read from it, and every directory above each, as the top directory.
        if fsutil::current_ids().0 == 0 {
            let tree = Root::new(path);
            for f in &snap.manifest.files {
                let file = match &snap.origin {
                    Origin::Stored(dir) => dir.join("files").join(f.path.trim_start_matches('/')),
                    Origin::Tree(_) => tree.inside(&f.path)?,
                };
                if f.kind == FileKind::File {
                    fsutil::check_trusted_path(&file).map_err(|e| anyhow::anyhow!("refusing {arg}: {e:#}"))?;
                }
            }
        }
        Ok(snap)
    }

    /// The snapshot a plain `restore` starts from: the newest recorded on an older version than
    /// `live` (else the newest), loaded; `None` when there is none.
    pub fn stored_pre_upgrade(&self, live: &Snapshot) -> Result<Option<Snapshot>> {
        let store = self.state.snapshots();
        let newest = store.pre_upgrade(&live.manifest.version)?;
        newest
            .map(|m| crate::store::snapshots::load(&store.dir.join(&m.id), self.state.dir()))
            .transpose()
    }

    /// The id of the snapshot a plain `restore` (and the boot guard) uses now; `None` when there
    /// is none or the live version cannot be read.
    pub fn restore_default(&self) -> Option<String> {
        let live = capture::capture(&self.root, &self.config, None).ok()?;
        Some(self.state.snapshots().pre_upgrade(&live.manifest.version).ok()??.id)
    }

    /// The default old side: [`Context::stored_pre_upgrade`], which must exist.
    pub fn pre_upgrade(&self, live: &Snapshot) -> Result<Snapshot> {
        self.stored_pre_upgrade(live)?.with_context(|| {
            format!(
                "no snapshot in {}: take one with `iwss-keeper snapshot` before upgrading, or name one",
                self.state.snapshots().dir.display()
            )
        })
    }

    /// The two sides of a comparison: `old` (default: the pre-upgrade snapshot) and `new`
    /// (default: the live system, with what is loaded now when `loaded`: `diff` shows it beside
    /// the files; a restore reads the loaded rules itself, after it has written).
    pub fn sides(&self, old: Option<&str>, new: Option<&str>, loaded: bool) -> Result<(Snapshot, Snapshot)> {
        let read_new = || match new {
            Some(arg) => self.resolve(arg),
            None if loaded => self.live(None),
            None => capture::capture(&self.root, &self.config, None),
        };
        let explicit = old.is_some();
        let (old, new) = match old {
            Some(arg) => {
                let (old, new) = (self.resolve(arg), read_new());
                // The new side's error first.
                let new = new?;
                (old?, new)
            }
            None => {
                let new = read_new()?;
                (self.pre_upgrade(&new)?, new)
            }
        };
        check_versions(&old, &new, explicit)?;
        Ok((old, new))
    }
}
