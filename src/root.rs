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

    /// `abs` under the root, its directories resolved the way a chroot resolves them: a symbolic
    /// link among them is followed within the root only (an absolute target starts again at the
    /// root, `..` never climbs above it), so no file outside the root is read or written through
    /// a linked directory. The last component is not followed (callers refuse or record links).
    /// The kernels the appliances run (3.10) have no `openat2(RESOLVE_IN_ROOT)`: this is an
    /// `lstat` walk, and a directory swapped for a link between the walk and the open is not
    /// caught; only a writer of the directories on the path could do that.
    pub fn inside(&self, abs: &str) -> std::io::Result<PathBuf> {
        let mut parts: std::collections::VecDeque<String> = abs
            .split('/')
            .filter(|c| !c.is_empty() && *c != ".")
            .map(str::to_string)
            .collect();
        let Some(last) = parts.pop_back() else {
            return Ok(self.dir.clone());
        };
        let mut at: Vec<String> = Vec::new();
        let mut links = 0;
        while let Some(c) = parts.pop_front() {
            if c == ".." {
                at.pop();
                continue;
            }
            let candidate = self.dir.join(at.join("/")).join(&c);
            match std::fs::symlink_metadata(&candidate) {
                Ok(m) if m.file_type().is_symlink() => {
                    links += 1;
                    if links > 40 {
                        return Err(std::io::Error::other(format!(
                            "{}: too many levels of symbolic links",
                            candidate.display()
                        )));
                    }
                    let target = std::fs::read_link(&candidate)?;
                    let target = target.to_string_lossy();
                    if target.starts_with('/') {
                        at.clear();
                    }
                    for t in target.split('/').rev().filter(|c| !c.is_empty() && *c != ".") {
                        parts.push_front(t.to_string());
                    }
                }
                _ => at.push(c),
            }
        }
        if last == ".." {
            at.pop();
            return Ok(self.dir.join(at.join("/")));
        }
        Ok(self.dir.join(at.join("/")).join(last))
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
mod inside_tests {
    use super::*;

    #[test]
    fn linked_directories_resolve_within_the_root() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("root");
        let outside = dir.path().join("outside");
        std::fs::create_dir_all(root.join("usr/lib/sysctl.d")).unwrap();
        std::fs::create_dir_all(outside.join("etc")).unwrap();
        // Absolute and climbing links stay in the root; a relative one inside it works as usual.
        std::os::unix::fs::symlink(outside.join("etc"), root.join("etc")).unwrap();
        std::os::unix::fs::symlink("../../../../../../../..", root.join("usr/up")).unwrap();
        std::os::unix::fs::symlink("usr/lib", root.join("lib")).unwrap();
        let r = Root::new(&root);
        let etc = r.inside("/etc/sysctl.conf").unwrap();
        assert!(etc.starts_with(&root), "{}", etc.display());
        assert_eq!(
            r.inside("/usr/up/etc/x").unwrap(),
            root.join(outside.strip_prefix("/").unwrap()).join("etc/x")
        );
        assert_eq!(
            r.inside("/lib/sysctl.d/a.conf").unwrap(),
            root.join("usr/lib/sysctl.d/a.conf")
        );
        std::os::unix::fs::symlink("loop", root.join("loop")).unwrap();
        assert!(r.inside("/loop/x").is_err());
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
