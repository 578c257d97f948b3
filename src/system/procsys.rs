//! Running sysctl values, read from and written to `ROOT/proc/sys`.

use std::path::PathBuf;

use anyhow::{Context, Result};

use crate::domain::sysctl;
use crate::root::Root;

/// Where the running value of a sysctl key is, under the root.
pub fn path(root: &Root, key: &str) -> PathBuf {
    root.path(&format!("/proc/sys/{}", sysctl::canonical_key(key)))
}

/// The running value of a sysctl key.
pub fn read(root: &Root, key: &str) -> Option<String> {
    crate::system::fsutil::read_bounded(&path(root, key))
        .ok()
        .map(|b| String::from_utf8_lossy(&b).trim().to_string())
}

/// Writes a running sysctl value and reads it back.
pub fn write(root: &Root, key: &str, value: &str) -> Result<String> {
    let path = path(root, key);
    if !path.exists() {
        anyhow::bail!("{} does not exist", path.display());
    }
    std::fs::write(&path, format!("{value}\n")).with_context(|| format!("cannot write {}", path.display()))?;
    read(root, key).with_context(|| format!("cannot read back {}", path.display()))
}
