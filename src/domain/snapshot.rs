//! The snapshot model: what the configuration held at one moment, as a manifest and file contents
//! in memory. Capturing a tree is `system::capture`'s job, storing one `store::snapshots`'.

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::{bail, Result};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::domain::sysctl;
use crate::domain::version::Version;

/// Manifest format written by this version.
pub const FORMAT: u32 = 1;

/// What kind of file a record is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FileKind {
    File,
    Symlink,
    /// A sysctl file that could not be read (a FIFO, a device, no permission): what it sets is
    /// not known.
    Unreadable,
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
    /// Why the file could not be read, for an unreadable one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// Live state recorded with a snapshot.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Runtime {
    /// `iptables -S` output, when iptables could be run.
    pub iptables: Option<String>,
    /// `ip6tables -S` output, when ip6tables could be run.
    pub ip6tables: Option<String>,
    /// Running value of each managed sysctl key (dotted), from `/proc/sys`.
    pub sysctl: BTreeMap<String, String>,
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
    /// HMAC-SHA256 of the manifest (this field left out) with the state directory's key: a
    /// stored snapshot rewritten by someone without the key, checksums and all, is refused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hmac: Option<String>,
}

impl Manifest {
    /// Whether two manifests record the same version and the same files (path, kind, content,
    /// link target). Both need their checksums filled.
    pub fn same_files(&self, other: &Manifest) -> bool {
        let key = |m: &Manifest| {
            let mut v: Vec<_> = m
                .files
                .iter()
                .map(|r| (r.path.clone(), r.kind, r.sha256.clone(), r.target.clone()))
                .collect();
            v.sort();
            v
        };
        self.version == other.version && key(self) == key(other)
    }

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

pub fn sha256_hex(bytes: &[u8]) -> String {
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
            path = self.link_target(&path)?;
        }
        None
    }

    /// The captured file a path names, following symlinks between captured files; the path
    /// itself when it is no link (or its target is not captured).
    pub fn resolve(&self, path: &str) -> String {
        let mut path = path.to_string();
        for _ in 0..8 {
            match self.link_target(&path) {
                Some(next) => path = next,
                None => break,
            }
        }
        path
    }

    /// Where the captured link `path` points, normalised; `None` when it is no link or its
    /// target climbs above `/`.
    fn link_target(&self, path: &str) -> Option<String> {
        let target = self.record(path)?.target.as_deref()?;
        if target.starts_with('/') {
            normalize(target)
        } else {
            let dir = path.rsplit_once('/').map_or("", |(d, _)| d);
            normalize(&format!("{dir}/{target}"))
        }
    }

    /// The record of a captured file.
    pub fn record(&self, path: &str) -> Option<&FileRecord> {
        self.manifest.files.iter().find(|r| r.path == path)
    }

    /// Every sysctl file (the main file and the drop-ins; a link read as the file it names),
    /// with its content. A link with nothing captured behind it (to `/dev/null`, or dangling)
    /// is read as empty: it masks the same-named file of a later directory, as systemd-sysctl
    /// and `sysctl --system` treat it.
    pub fn sysctl_files(&self) -> Vec<(&str, &[u8])> {
        self.manifest
            .files
            .iter()
            .filter(|r| sysctl::is_sysctl_file(&r.path))
            .filter_map(|r| match (self.content(&r.path), &r.target) {
                (Some(c), _) => Some((r.path.as_str(), c)),
                (None, Some(_)) => Some((r.path.as_str(), &b""[..])),
                (None, None) => None,
            })
            .collect()
    }

    /// What `sysctl --system` gives `key` on the platforms this appliance may run
    /// ([`sysctl::effective_with`], with the sysctl entries that could not be read).
    pub fn sysctl_effective(&self, key: &str) -> sysctl::Effective {
        sysctl::effective_with(&self.sysctl_files(), &self.sysctl_unreadable(), key, &self.platforms())
    }

    /// What systemd-sysctl gives `key` at boot on the platforms this appliance may run.
    pub fn sysctl_boot_effective(&self, key: &str) -> sysctl::Effective {
        sysctl::effective_at_boot_with(&self.sysctl_files(), &self.sysctl_unreadable(), key, &self.platforms())
    }

    /// The platforms that may run the appliance this snapshot was taken on
    /// ([`sysctl::Platform::targets`], from its version and release file).
    pub fn platforms(&self) -> Vec<sysctl::Platform> {
        let release = sysctl::platform::RELEASE_FILES
            .iter()
            .find_map(|p| self.content(p))
            .map(String::from_utf8_lossy);
        sysctl::Platform::targets(&self.manifest.version, release.as_deref())
    }

    /// The sysctl entries that could not be read, and why.
    pub fn sysctl_unreadable(&self) -> Vec<(&str, &str)> {
        self.manifest
            .files
            .iter()
            .filter(|r| r.kind == FileKind::Unreadable && sysctl::is_sysctl_file(&r.path))
            .map(|r| (r.path.as_str(), r.reason.as_deref().unwrap_or("no reason recorded")))
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
                reason: None,
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
                hmac: None,
            },
            origin: Origin::Tree(PathBuf::from("(memory)")),
            contents: files.into_iter().collect(),
        }
    }

    /// Computes the SHA-256 of every captured file that has none yet.
    pub fn fill_checksums(&mut self) {
        for r in self.manifest.files.iter_mut().filter(|r| r.sha256.is_empty()) {
            r.sha256 = match (&r.target, self.contents.get(&r.path)) {
                (Some(t), _) => sha256_hex(t.as_bytes()),
                (None, Some(bytes)) => sha256_hex(bytes),
                // An unreadable file is recorded with no content.
                (None, None) if r.kind == FileKind::Unreadable => sha256_hex(b""),
                (None, None) => continue,
            };
        }
    }
}

/// Resolves `.` and `..` in an absolute appliance path; `None` when it climbs above `/`.
pub fn normalize(path: &str) -> Option<String> {
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
