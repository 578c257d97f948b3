//! The snapshot store: one directory per snapshot under `STATE/snapshots/`, each written to a
//! temporary name and renamed into place, read back only when every checksum matches.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use anyhow::{bail, ensure, Context, Result};
use hmac::Mac as _;
use sha2::{Digest, Sha256};

use crate::domain::snapshot::{sha256_hex, FileKind, Manifest, Origin, Snapshot};
use crate::domain::version::Version;
use crate::fault;
use crate::system::fsutil;

/// The key snapshots are signed with: `STATE/snapshot.key`, 32 random bytes, 0600, made on first
/// use. Whoever can read it (root) can sign; whoever can only write the state directory cannot.
fn key(state_dir: &Path, create: bool) -> Result<Option<Vec<u8>>> {
    let path = state_dir.join("snapshot.key");
    if let Ok(meta) = fs::symlink_metadata(&path) {
        if std::os::unix::fs::PermissionsExt::mode(&meta.permissions()) & 0o077 != 0 {
            bail!(
                "{} is readable or writable by others; refusing it (chmod 600)",
                path.display()
            );
        }
        let bytes = fsutil::read_bounded(&path)?;
        if bytes.len() != 32 {
            bail!("{} is not a snapshot key (32 bytes)", path.display());
        }
        return Ok(Some(bytes));
    }
    if !create {
        return Ok(None);
    }
    let mut bytes = vec![0u8; 32];
    // getrandom(2) where the kernel has it (a chroot has no /dev), else /dev/urandom (3.10).
    // The raw system call: glibc 2.17 (the oldest appliance userland) has no wrapper.
    // SAFETY: getrandom writes at most `bytes.len()` bytes into the buffer.
    let got = unsafe { libc::syscall(libc::SYS_getrandom, bytes.as_mut_ptr(), bytes.len(), 0) };
    if got != bytes.len() as libc::c_long {
        use std::io::Read as _;
        fs::File::open("/dev/urandom")
            .and_then(|mut f| f.read_exact(&mut bytes))
            .context("cannot get random bytes for a snapshot key (no getrandom, no /dev/urandom)")?;
    }
    fsutil::create_private_dir(state_dir)?;
    fsutil::write_private(&path, &bytes)?;
    log::info!("made the snapshot key {}", path.display());
    Ok(Some(bytes))
}

/// The HMAC of a manifest, its own `hmac` field left out.
fn mac(key: &[u8], manifest: &Manifest) -> Result<hmac::Hmac<Sha256>> {
    let mut unsigned = manifest.clone();
    unsigned.hmac = None;
    let mut mac = hmac::Hmac::<Sha256>::new_from_slice(key).map_err(|e| anyhow::anyhow!("snapshot key: {e}"))?;
    mac.update(&serde_json::to_vec(&unsigned)?);
    Ok(mac)
}

/// Checks a manifest's HMAC with the key of `state_dir`.
fn verify(manifest: &Manifest, state_dir: &Path) -> Result<()> {
    let id = &manifest.id;
    let Some(tag) = &manifest.hmac else {
        bail!(
            "snapshot {id} carries no HMAC (taken by an older version, or altered); refusing it: take a new snapshot"
        );
    };
    let Some(key) = key(state_dir, false)? else {
        bail!(
            "snapshot {id}: no snapshot key in {} to check it with; refusing it",
            state_dir.display()
        );
    };
    let tag: Vec<u8> = (0..tag.len() / 2)
        .filter_map(|i| u8::from_str_radix(tag.get(2 * i..2 * i + 2)?, 16).ok())
        .collect();
    mac(&key, manifest)?.verify_slice(&tag).map_err(|_| {
        anyhow::anyhow!(
            "snapshot {id}: its HMAC does not match: it was changed by someone without the snapshot key of {}; refusing it",
            state_dir.display()
        )
    })
}

/// Stores the snapshot under `snapshots_dir` in a new directory named by a fresh id: written
/// to a temporary directory, synced, then renamed into place. Returns the id. The manifest is
/// signed with the state directory's key (the directory above `snapshots_dir`).
pub fn save(snap: &mut Snapshot, snapshots_dir: &Path) -> Result<String> {
    snap.fill_checksums();
    fsutil::create_private_dir(snapshots_dir)?;
    // The id keeps the time to the second; `created` orders snapshots to the microsecond.
    let seconds = snap.manifest.created.split('.').next().unwrap_or_default();
    let mut stamp: String = seconds.chars().filter(|c| c.is_ascii_alphanumeric()).collect();
    if !stamp.ends_with('Z') {
        stamp.push('Z');
    }
    let mut hasher = Sha256::new();
    hasher.update(format!("{:?}{}", SystemTime::now(), std::process::id()));
    for r in &snap.manifest.files {
        hasher.update(&r.sha256);
    }
    let id = format!("{stamp}-{}", &sha256_hex(&hasher.finalize())[..6]);
    snap.manifest.id = id.clone();
    let state_dir = snapshots_dir.parent().unwrap_or(snapshots_dir);
    let key = key(state_dir, true)?.expect("made");
    let tag = mac(&key, &snap.manifest)?.finalize().into_bytes();
    snap.manifest.hmac = Some(tag.iter().map(|b| format!("{b:02x}")).collect());
    remove_stale_dirs(snapshots_dir)?;
    let temp = snapshots_dir.join(format!(".tmp-{id}"));
    let result = write_dir(snap, &temp).and_then(|()| {
        let dest = snapshots_dir.join(&id);
        fault::point("snapshot-before-rename");
        fs::rename(&temp, &dest).with_context(|| format!("cannot rename {} into place", temp.display()))?;
        fsutil::sync_dir(snapshots_dir)?;
        fault::point("snapshot-after-rename");
        snap.origin = Origin::Stored(dest);
        Ok(())
    });
    if result.is_err() {
        let _ = fs::remove_dir_all(&temp);
    }
    result.map(|()| id)
}

fn write_dir(snap: &Snapshot, dir: &Path) -> Result<()> {
    fsutil::create_private_dir(dir)?;
    for (path, bytes) in &snap.contents {
        let dest = dir.join("files").join(path.trim_start_matches('/'));
        let parent = dest.parent().expect("a file has a parent");
        // Private directories all the way down from the snapshot.
        fsutil::create_dirs(parent, 0o700)?;
        fsutil::write_private(&dest, bytes)?;
        fsutil::sync_dir(parent)?;
    }
    fault::point("snapshot-after-files");
    let json = serde_json::to_vec_pretty(&snap.manifest)?;
    fsutil::write_private(&dir.join("manifest.json"), &json)?;
    fsutil::sync_dir(dir)
}

/// Loads a stored snapshot, verifying every file against the manifest and the manifest against
/// its HMAC with the key of `state_dir`.
pub fn load(dir: &Path, state_dir: &Path) -> Result<Snapshot> {
    let manifest_path = dir.join("manifest.json");
    let bytes = fsutil::read_bounded(&manifest_path)?;
    let manifest = Manifest::parse(&bytes, &manifest_path.display().to_string())?;
    let mut contents = BTreeMap::new();
    for r in &manifest.files {
        let data = match r.kind {
            FileKind::Symlink => r.target.clone().unwrap_or_default().into_bytes(),
            FileKind::Unreadable => Vec::new(),
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
    verify(&manifest, state_dir)?;
    Ok(Snapshot {
        manifest,
        origin: Origin::Stored(dir.to_path_buf()),
        contents,
    })
}

/// Removes half-written (`.tmp-*`) and half-pruned (`.del-*`) snapshot directories an interrupted
/// run left; they were never visible as snapshots. Call with the lock held.
fn remove_stale_dirs(snapshots_dir: &Path) -> Result<()> {
    for entry in fsutil::list_dir(snapshots_dir)? {
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with(".tmp-") || name.starts_with(".del-") {
            log::warn!("removing {} left by an interrupted run", entry.path().display());
            fs::remove_dir_all(entry.path()).with_context(|| format!("cannot remove {}", entry.path().display()))?;
        }
    }
    Ok(())
}

/// One stored snapshot's directory, read.
pub struct Entry {
    /// The directory name.
    pub id: String,
    pub manifest: std::result::Result<Manifest, String>,
}

/// The snapshots recorded under a state directory.
pub struct Store {
    /// `STATE/snapshots` ([`super::StateDir::snapshots`] names it).
    pub dir: PathBuf,
}

impl Store {
    /// Every stored snapshot, oldest first (corrupt ones last): its directory name and its
    /// manifest, or why the manifest cannot be used. A manifest whose id is not its directory's
    /// name is corrupt.
    pub fn entries(&self) -> Result<Vec<Entry>> {
        let mut out = Vec::new();
        for entry in fsutil::list_dir(&self.dir)? {
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with('.') {
                continue;
            }
            let path = entry.path().join("manifest.json");
            let manifest = fsutil::read_bounded(&path)
                .and_then(|bytes| Manifest::parse(&bytes, &path.display().to_string()))
                .and_then(|m| {
                    ensure!(
                        m.id == name,
                        "{}: id {:?} is not its directory's name",
                        path.display(),
                        m.id
                    );
                    Ok(m)
                })
                .map_err(|e| format!("{e:#}"));
            out.push(Entry { id: name, manifest });
        }
        // A usable manifest's id is its directory's name.
        out.sort_by_key(|e| {
            let created = e.manifest.as_ref().map(|m| m.created.clone());
            (created.is_err(), created.unwrap_or_default(), e.id.clone())
        });
        Ok(out)
    }

    /// Manifests of every usable stored snapshot, oldest first. A corrupt one is skipped with a
    /// warning (`list` shows it), so it never stops `diff`, `status` or a restore from another.
    pub fn manifests(&self) -> Result<Vec<Manifest>> {
        Ok(self
            .entries()?
            .into_iter()
            .filter_map(|e| match e.manifest {
                Ok(m) => Some(m),
                Err(why) => {
                    log::warn!("snapshot {} is corrupt and left out: {why}", e.id);
                    None
                }
            })
            .collect())
    }

    /// Finds a stored snapshot by its id, else by the one id that holds `id` anywhere (the
    /// random tail `c2e57b` as well as a date prefix).
    pub fn find(&self, id: &str) -> Result<Option<PathBuf>> {
        let all = self.manifests()?;
        if let Some(exact) = all.iter().find(|m| m.id == id) {
            return Ok(Some(self.dir.join(&exact.id)));
        }
        let hits: Vec<&Manifest> = all.iter().filter(|m| m.id.contains(id)).collect();
        match hits.as_slice() {
            [] => Ok(None),
            [one] => Ok(Some(self.dir.join(&one.id))),
            many => bail!(
                "{id:?} is part of more than one snapshot id: {}",
                many.iter().map(|m| m.id.as_str()).collect::<Vec<_>>().join(", ")
            ),
        }
    }

    /// Removes one snapshot: renamed out of sight, then deleted.
    pub fn remove(&self, id: &str) -> Result<()> {
        let dir = self.dir.join(id);
        let hidden = self.dir.join(format!(".del-{id}"));
        fs::rename(&dir, &hidden).with_context(|| format!("cannot remove {}", dir.display()))?;
        fs_extra::remove_items(&[&hidden]).map_err(|e| anyhow::anyhow!("cannot remove {}: {e}", hidden.display()))
    }

    /// Removes the oldest snapshots beyond `keep`, never one named in `protect`. A snapshot is
    /// renamed out of sight before it is deleted, so none is ever seen half-removed. Returns the
    /// ids removed.
    pub fn prune(&self, keep: usize, protect: &[String]) -> Result<Vec<String>> {
        let all = self.manifests()?;
        let excess = all.len().saturating_sub(keep);
        let mut removed = Vec::new();
        for m in all.iter().filter(|m| !protect.contains(&m.id)).take(excess) {
            self.remove(&m.id)?;
            log::info!(
                "pruned snapshot {} ({}, {})",
                m.id,
                m.version,
                m.label.as_deref().unwrap_or("no label")
            );
            removed.push(m.id.clone());
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
