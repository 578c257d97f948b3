//! The one root every path goes through (`--root DIR`), so nothing outside it is touched.

use std::path::{Path, PathBuf};

/// A system root: `/` on an appliance, a directory tree in tests and offline analysis.
#[derive(Debug, Clone)]
pub struct Root {
    dir: PathBuf,
}

impl Root {
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self { dir: dir.into() }
    }

    /// The root directory itself.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Whether this is the running system's own root.
    pub fn is_host(&self) -> bool {
        self.dir == Path::new("/")
    }

    /// `abs` (an absolute path on the appliance) resolved under the root.
    pub fn path(&self, abs: &str) -> PathBuf {
        self.dir.join(abs.trim_start_matches('/'))
    }

    /// The first of `candidates` (absolute appliance paths) that exists under the root.
    pub fn find<'a>(&self, candidates: &[&'a str]) -> Option<&'a str> {
        candidates.iter().copied().find(|c| self.path(c).exists())
    }

    /// The first of `candidates` that exists, resolved under the root.
    pub fn program(&self, candidates: &[&str]) -> Option<PathBuf> {
        self.find(candidates).map(|c| self.path(c))
    }

    /// `PATH` for programs the tool runs: the root's own bin directories only.
    pub fn search_path(&self) -> String {
        ["/usr/sbin", "/usr/bin", "/sbin", "/bin"]
            .iter()
            .map(|d| {
                let p = self.path(d);
                std::path::absolute(&p).unwrap_or(p).display().to_string()
            })
            .collect::<Vec<_>>()
            .join(":")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_resolve_under_the_root() {
        let r = Root::new("/tmp/x");
        assert_eq!(r.path("/etc/sysctl.conf"), Path::new("/tmp/x/etc/sysctl.conf"));
        assert_eq!(Root::new("/").path("/etc/sysctl.conf"), Path::new("/etc/sysctl.conf"));
        assert!(Root::new("/").is_host() && !r.is_host());
        assert!(r.search_path().starts_with("/tmp/x/usr/sbin:"));
    }
}
