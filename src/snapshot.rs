//! Snapshots: what the configuration held at one moment, captured from a root or stored on disk.

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use walkdir::WalkDir;

use crate::config::Config;
use crate::fault;
use crate::fsutil;
use crate::root::Root;
use crate::runtime::Runtime;
use crate::sysctl;
use crate::version::{self, Version};

/// Manifest format written by this version.
pub const FORMAT: u32 = 1;

/// What kind of file a record is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FileKind {
    File,
    Symlink,
}

/// One captured file, as the manifest lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileRecord {
    /// Absolute path on the appliance.
    pub path: String,
    pub kind: FileKind,
    pub size: u64,
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    /// SHA-256 of the content (of the link target text for a symlink).
    pub sha256: String,
    /// Link target, for a symlink.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
}

/// A snapshot's `manifest.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    pub format: u32,
    pub id: String,
    /// RFC 3339 UTC time of capture.
    pub created: String,
    pub host: String,
    pub label: Option<String>,
    pub version: Version,
    /// The version file's line the version was read from.
    pub version_text: String,
    pub files: Vec<FileRecord>,
    /// What was live when the snapshot was taken, when it could be read.
    #[serde(default)]
    pub runtime: Option<Runtime>,
}

impl Manifest {
    /// Parses and checks a manifest: known format, every path absolute, normalised and inside
    /// the snapshot, symlinks with targets. `origin` names the file in errors.
    pub fn parse(bytes: &[u8], origin: &str) -> Result<Self> {
        let manifest: Manifest =
            serde_json::from_slice(bytes).map_err(|e| anyhow::anyhow!("{origin}:{}: {e}", e.line()))?;
        if manifest.format != FORMAT {
            bail!("{origin}: unsupported snapshot format {}", manifest.format);
        }
        for r in &manifest.files {
            if !is_safe_path(&r.path) {
                bail!("{origin}: file path {:?} escapes the snapshot; refusing it", r.path);
            }
            if (r.kind == FileKind::Symlink) != r.target.is_some() {
                bail!(
                    "{origin}: {:?}: a symlink needs a target and only a symlink has one",
                    r.path
                );
            }
        }
        Ok(manifest)
    }
}

/// Where a snapshot's content lives.
#[derive(Debug, Clone)]
pub enum Origin {
    /// Stored under the state directory (or any snapshot directory).
    Stored(PathBuf),
    /// Read now from a root tree (the live system or a copy of one).
    Tree(PathBuf),
}

/// A snapshot with its file contents in memory.
#[derive(Debug, Clone)]
pub struct Snapshot {
    pub manifest: Manifest,
    pub origin: Origin,
    /// Contents of the regular files, by absolute appliance path.
    pub contents: BTreeMap<String, Vec<u8>>,
}

fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

/// Whether an appliance path is absolute, normalised and free of `..`.
fn is_safe_path(path: &str) -> bool {
    path.starts_with('/') && path.len() > 1 && path[1..].split('/').all(|c| !c.is_empty() && c != "." && c != "..")
}

impl Snapshot {
    /// A short name for messages: the id, or the tree's path.
    pub fn name(&self) -> String {
        match &self.origin {
            Origin::Stored(_) => format!("snapshot {}", self.manifest.id),
            Origin::Tree(dir) => dir.display().to_string(),
        }
    }

    /// The on-disk location of a captured file, for messages that name a file and line.
    pub fn location(&self, path: &str) -> String {
        let rel = path.trim_start_matches('/');
        match &self.origin {
            Origin::Stored(dir) => dir.join("files").join(rel).display().to_string(),
            Origin::Tree(dir) => dir.join(rel).display().to_string(),
        }
    }

    /// Content of a file, following symlinks between captured files (`99-sysctl.conf` ->
    /// `../sysctl.conf`).
    pub fn content(&self, path: &str) -> Option<&[u8]> {
        let mut path = path.to_string();
        for _ in 0..8 {
            if let Some(bytes) = self.contents.get(&path) {
                return Some(bytes);
            }
            let record = self.manifest.files.iter().find(|r| r.path == path)?;
            let target = record.target.as_deref()?;
            path = if target.starts_with('/') {
                normalize(target)?
            } else {
                let dir = path.rsplit_once('/').map_or("", |(d, _)| d);
                normalize(&format!("{dir}/{target}"))?
            };
        }
        None
    }

    /// The record of a captured file.
    pub fn record(&self, path: &str) -> Option<&FileRecord> {
        self.manifest.files.iter().find(|r| r.path == path)
    }

    /// sysctl files in the order the kernel gets them, with their contents.
    pub fn sysctl_sources(&self) -> Vec<(&str, &[u8])> {
        sysctl::load_order(self.manifest.files.iter().map(|r| r.path.as_str()))
            .into_iter()
            .filter_map(|p| self.content(p).map(|c| (p, c)))
            .collect()
    }

    /// A snapshot of in-memory files (absolute path, content), for analysis without a disk tree.
    pub fn in_memory(version: Version, files: Vec<(String, Vec<u8>)>) -> Self {
        let records = files
            .iter()
            .map(|(path, bytes)| FileRecord {
                path: path.clone(),
                kind: FileKind::File,
                size: bytes.len() as u64,
                mode: 0o644,
                uid: 0,
                gid: 0,
                sha256: sha256_hex(bytes),
                target: None,
            })
            .collect();
        Self {
            manifest: Manifest {
                format: FORMAT,
                id: String::new(),
                created: String::new(),
                host: String::new(),
                label: None,
                version_text: version.to_string(),
                version,
                files: records,
                runtime: None,
            },
            origin: Origin::Tree(PathBuf::from("(memory)")),
            contents: files.into_iter().collect(),
        }
    }

    /// Captures `root` now. Fails when the version cannot be read.
    pub fn capture(root: &Root, config: &Config, label: Option<String>) -> Result<Self> {
        let version_path = root.path(&config.version_file);
        let version_bytes = fsutil::read_bounded(&version_path).with_context(|| {
            format!(
                "cannot read the product version (version_file = {:?})",
                config.version_file
            )
        })?;
        let version_text = String::from_utf8_lossy(&version_bytes);
        let (line, version) = version::parse_version_file(&version_text, config.product)
            .map_err(|e| anyhow::anyhow!("{}: {e}", version_path.display()))?;
        let mut paths = vec![sysctl::SYSCTL_CONF.to_string()];
        for dir in sysctl::DROP_IN_DIRS {
            let abs = root.path(dir);
            if !abs.is_dir() {
                continue;
            }
            for entry in WalkDir::new(&abs).min_depth(1).sort_by_file_name() {
                let entry = entry.with_context(|| format!("cannot list {}", abs.display()))?;
                if entry.file_type().is_dir() {
                    continue;
                }
                let rel = entry.path().strip_prefix(root.dir()).unwrap_or(entry.path());
                paths.push(format!("/{}", rel.display()));
            }
        }
        paths.push(config.firewall_script.clone());
        paths.push(config.version_file.clone());
        paths.dedup();

        let mut files: Vec<FileRecord> = Vec::new();
        let mut contents = BTreeMap::new();
        let mut queue: std::collections::VecDeque<(String, Option<String>)> =
            paths.into_iter().map(|p| (p, None)).collect();
        while let Some((path, link)) = queue.pop_front() {
            if files.iter().any(|f| f.path == path) {
                continue;
            }
            if files.len() > 100_000 {
                bail!("{}: too many files to capture", root.dir().display());
            }
            let abs = root.path(&path);
            let meta = match fs::symlink_metadata(&abs) {
                Ok(m) => m,
                // A link whose target is missing would make every value read through it a guess.
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => match link {
                    Some(link) => bail!(
                        "{}: a symbolic link to {path}, which is not inside {}; refusing to guess its content",
                        root.path(&link).display(),
                        root.dir().display()
                    ),
                    None => continue,
                },
                Err(e) => return Err(e).with_context(|| format!("cannot read {}", abs.display())),
            };
            let (kind, bytes, target) = if meta.file_type().is_symlink() {
                let t = fs::read_link(&abs).with_context(|| format!("cannot read link {}", abs.display()))?;
                let t = t.to_string_lossy().into_owned();
                // Links are recorded as links and their targets captured too (inside the root),
                // so values read through them are the kernel's; nothing is written through them.
                let dir = path.rsplit_once('/').map_or("", |(d, _)| d);
                let resolved = if t.starts_with('/') {
                    normalize(&t)
                } else {
                    normalize(&format!("{dir}/{t}"))
                };
                match resolved {
                    Some(r) => queue.push_back((r, Some(path.clone()))),
                    None => bail!("{}: link target {t:?} leaves the root; refusing it", abs.display()),
                }
                (FileKind::Symlink, t.clone().into_bytes(), Some(t))
            } else if meta.is_file() {
                (FileKind::File, fsutil::read_bounded(&abs)?, None)
            } else {
                continue;
            };
            files.push(FileRecord {
                path: path.clone(),
                kind,
                size: bytes.len() as u64,
                mode: meta.mode() & 0o7777,
                uid: meta.uid(),
                gid: meta.gid(),
                // Filled by `fill_checksums` when the snapshot is stored or shown: comparing a
                // tree read now needs no checksum, and hashing large scripts is costly.
                sha256: String::new(),
                target,
            });
            if kind == FileKind::File {
                contents.insert(path, bytes);
            }
        }
        let now = SystemTime::now();
        let created = humantime::format_rfc3339_micros(now).to_string();
        Ok(Self {
            manifest: Manifest {
                format: FORMAT,
                id: String::new(),
                created,
                host: host_name(root),
                label,
                version,
                version_text: version_text.lines().nth(line - 1).unwrap_or("").trim().to_string(),
                files,
                runtime: None,
            },
            origin: Origin::Tree(root.dir().to_path_buf()),
            contents,
        })
    }

    /// Computes the SHA-256 of every captured file that has none yet.
    pub fn fill_checksums(&mut self) {
        for r in self.manifest.files.iter_mut().filter(|r| r.sha256.is_empty()) {
            r.sha256 = match (&r.target, self.contents.get(&r.path)) {
                (Some(t), _) => sha256_hex(t.as_bytes()),
                (None, Some(bytes)) => sha256_hex(bytes),
                (None, None) => continue,
            };
        }
    }

    /// Stores the snapshot under `snapshots_dir` in a new directory named by a fresh id: written
    /// to a temporary directory, synced, then renamed into place. Returns the id.
    pub fn store(&mut self, snapshots_dir: &Path) -> Result<String> {
        self.fill_checksums();
        fsutil::create_private_dir(snapshots_dir)?;
        // The id keeps the time to the second; `created` orders snapshots to the microsecond.
        let seconds = self.manifest.created.split('.').next().unwrap_or_default();
        let mut stamp: String = seconds.chars().filter(|c| c.is_ascii_alphanumeric()).collect();
        if !stamp.ends_with('Z') {
            stamp.push('Z');
        }
        let mut hasher = Sha256::new();
        hasher.update(format!("{:?}{}", SystemTime::now(), std::process::id()));
        for r in &self.manifest.files {
            hasher.update(&r.sha256);
        }
        let id = format!("{stamp}-{}", &sha256_hex(&hasher.finalize())[..6]);
        self.manifest.id = id.clone();
        remove_stale_dirs(snapshots_dir)?;
        let temp = snapshots_dir.join(format!(".tmp-{id}"));
        let result = self.write_dir(&temp).and_then(|()| {
            let dest = snapshots_dir.join(&id);
            fault::point("snapshot-before-rename");
            fs::rename(&temp, &dest).with_context(|| format!("cannot rename {} into place", temp.display()))?;
            fsutil::sync_dir(snapshots_dir)?;
            fault::point("snapshot-after-rename");
            self.origin = Origin::Stored(dest);
            Ok(())
        });
        if result.is_err() {
            let _ = fs::remove_dir_all(&temp);
        }
        result.map(|()| id)
    }

    fn write_dir(&self, dir: &Path) -> Result<()> {
        fsutil::create_private_dir(dir)?;
        for (path, bytes) in &self.contents {
            let dest = dir.join("files").join(path.trim_start_matches('/'));
            let parent = dest.parent().expect("a file has a parent");
            // Private directories all the way down from the snapshot.
            let mut p = dir.to_path_buf();
            for comp in parent.strip_prefix(dir).expect("under dir").components() {
                p.push(comp);
                if !p.is_dir() {
                    fsutil::create_private_dir(&p)?;
                }
            }
            fsutil::write_private(&dest, bytes)?;
            fsutil::sync_dir(parent)?;
        }
        fault::point("snapshot-after-files");
        let json = serde_json::to_vec_pretty(&self.manifest)?;
        fsutil::write_private(&dir.join("manifest.json"), &json)?;
        fsutil::sync_dir(dir)
    }

    /// Loads a stored snapshot, verifying every file against the manifest.
    pub fn load(dir: &Path) -> Result<Self> {
        let manifest_path = dir.join("manifest.json");
        let bytes = fsutil::read_bounded(&manifest_path)?;
        let manifest = Manifest::parse(&bytes, &manifest_path.display().to_string())?;
        let mut contents = BTreeMap::new();
        for r in &manifest.files {
            let data = match r.kind {
                FileKind::Symlink => r.target.clone().unwrap_or_default().into_bytes(),
                FileKind::File => {
                    let p = dir.join("files").join(r.path.trim_start_matches('/'));
                    let meta = fs::symlink_metadata(&p)
                        .with_context(|| format!("snapshot {}: {} is missing", manifest.id, p.display()))?;
                    if !meta.is_file() {
                        bail!("snapshot {}: {} is not a regular file", manifest.id, p.display());
                    }
                    fsutil::read_bounded(&p)?
                }
            };
            let sum = sha256_hex(&data);
            if sum != r.sha256 || data.len() as u64 != r.size {
                bail!(
                    "snapshot {}: {} does not match its checksum (expected {}, found {}): the snapshot was changed after it was taken; refusing it",
                    manifest.id,
                    r.path,
                    r.sha256,
                    sum
                );
            }
            if r.kind == FileKind::File {
                contents.insert(r.path.clone(), data);
            }
        }
        Ok(Self {
            manifest,
            origin: Origin::Stored(dir.to_path_buf()),
            contents,
        })
    }
}

/// Removes half-written (`.tmp-*`) and half-pruned (`.del-*`) snapshot directories an interrupted
/// run left; they were never visible as snapshots. Call with the lock held.
fn remove_stale_dirs(snapshots_dir: &Path) -> Result<()> {
    for entry in fs::read_dir(snapshots_dir).with_context(|| format!("cannot list {}", snapshots_dir.display()))? {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with(".tmp-") || name.starts_with(".del-") {
            log::warn!("removing {} left by an interrupted run", entry.path().display());
            fs::remove_dir_all(entry.path()).with_context(|| format!("cannot remove {}", entry.path().display()))?;
        }
    }
    Ok(())
}

fn normalize(path: &str) -> Option<String> {
    let mut out: Vec<&str> = Vec::new();
    for c in path.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                out.pop()?;
            }
            c => out.push(c),
        }
    }
    Some(format!("/{}", out.join("/")))
}

fn host_name(root: &Root) -> String {
    ["/proc/sys/kernel/hostname", "/etc/hostname"]
        .iter()
        .find_map(|p| fs::read_to_string(root.path(p)).ok())
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "unknown".into())
}

/// The snapshots recorded under a state directory.
pub struct Store {
    pub dir: PathBuf,
}

impl Store {
    pub fn new(state_dir: &Path) -> Self {
        Self {
            dir: state_dir.join("snapshots"),
        }
    }

    /// Manifests of every stored snapshot, oldest first. Unreadable entries are errors.
    pub fn manifests(&self) -> Result<Vec<Manifest>> {
        let entries = match fs::read_dir(&self.dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(e).with_context(|| format!("cannot list {}", self.dir.display())),
        };
        let mut out = Vec::new();
        for entry in entries {
            let entry = entry?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with('.') {
                continue;
            }
            let path = entry.path().join("manifest.json");
            let bytes = fsutil::read_bounded(&path)?;
            let m: Manifest =
                serde_json::from_slice(&bytes).map_err(|e| anyhow::anyhow!("{}:{}: {e}", path.display(), e.line()))?;
            out.push(m);
        }
        out.sort_by(|a, b| (&a.created, &a.id).cmp(&(&b.created, &b.id)));
        Ok(out)
    }

    /// Finds a stored snapshot by id or unique id prefix.
    pub fn find(&self, id: &str) -> Result<Option<PathBuf>> {
        let hits: Vec<Manifest> = self.manifests()?.into_iter().filter(|m| m.id.starts_with(id)).collect();
        match hits.as_slice() {
            [] => Ok(None),
            [one] => Ok(Some(self.dir.join(&one.id))),
            many => bail!(
                "snapshot id prefix {id:?} is ambiguous: {}",
                many.iter().map(|m| m.id.as_str()).collect::<Vec<_>>().join(", ")
            ),
        }
    }

    /// Removes the oldest snapshots beyond `keep`, never one named in `protect`. A snapshot is
    /// renamed out of sight before it is deleted, so none is ever seen half-removed. Returns the
    /// ids removed.
    pub fn prune(&self, keep: usize, protect: &[String]) -> Result<Vec<String>> {
        let all = self.manifests()?;
        let mut excess = all.len().saturating_sub(keep);
        let mut removed = Vec::new();
        for m in &all {
            if excess == 0 {
                break;
            }
            if protect.contains(&m.id) {
                continue;
            }
            let dir = self.dir.join(&m.id);
            let hidden = self.dir.join(format!(".del-{}", m.id));
            fs::rename(&dir, &hidden).with_context(|| format!("cannot prune {}", dir.display()))?;
            fs_extra::remove_items(&[&hidden])
                .map_err(|e| anyhow::anyhow!("cannot remove {}: {e}", hidden.display()))?;
            log::info!(
                "pruned snapshot {} ({}, {})",
                m.id,
                m.version,
                m.label.as_deref().unwrap_or("no label")
            );
            removed.push(m.id.clone());
            excess -= 1;
        }
        Ok(removed)
    }

    /// The snapshot a restore starts from: the newest recorded on an older version than `live`
    /// (the pre-upgrade state), else the newest.
    pub fn pre_upgrade(&self, live: &Version) -> Result<Option<Manifest>> {
        let all = self.manifests()?;
        let older = all
            .iter()
            .rev()
            .find(|m| m.version.product == live.product && m.version.release < live.release);
        Ok(older.or(all.last()).cloned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn safe_paths() {
        assert!(is_safe_path("/etc/sysctl.conf"));
        for bad in ["etc/x", "/", "/etc/../x", "/etc//x", "/./x", "/.."] {
            assert!(!is_safe_path(bad), "{bad}");
        }
    }

    #[test]
    fn normalize_resolves_relative_links() {
        assert_eq!(
            normalize("/etc/sysctl.d/../sysctl.conf").as_deref(),
            Some("/etc/sysctl.conf")
        );
        assert_eq!(normalize("/../x"), None);
    }
}
