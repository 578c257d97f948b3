//! The one resolver of what the tool trusts (its configuration, state directory, snapshots,
//! hook directories and the programs it runs): a path is opened one component at a time with
//! `openat(..., O_NOFOLLOW)` from `/`, and each descriptor opened is checked with `fstat`: owned
//! by root (or the running user), not group- or world-writable; a world-writable directory with
//! the sticky bit (`/tmp`) only above an entry root or the running user owns. A symbolic link
//! is followed only when root or the running user owns it. What is then read is read from the
//! descriptor that was checked, so nothing swapped in between is used. (Kernel 3.10 has
//! `openat`, not `openat2`; programs are then run by path, as it has no `execveat` either.)

use std::ffi::{CString, OsStr, OsString};
use std::fs::File;
use std::os::fd::{AsRawFd, FromRawFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Component, Path, PathBuf};

use anyhow::{bail, Result};

use crate::system::fsutil::current_ids;

/// What the last component must be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Want {
    File,
    Dir,
}

/// The most symbolic links followed on one path (the kernel's own limit).
const MAX_LINKS: usize = 40;

/// Whether `uid` may own what the tool trusts.
fn trusted_owner(uid: u32) -> bool {
    uid == 0 || uid == current_ids().0
}

fn openat(dir: &File, name: &OsStr, flags: libc::c_int) -> std::io::Result<File> {
    let name = CString::new(name.as_bytes()).map_err(|_| std::io::Error::from_raw_os_error(libc::EINVAL))?;
    // SAFETY: a NUL-terminated name, a descriptor we own; the result is a new descriptor or -1.
    let fd = unsafe {
        libc::openat(
            dir.as_raw_fd(),
            name.as_ptr(),
            flags | libc::O_CLOEXEC | libc::O_NOFOLLOW,
        )
    };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: `fd` was just opened and is owned by nobody else.
    Ok(unsafe { File::from_raw_fd(fd) })
}

/// The owner of the symbolic link `name` in `dir` and where it points.
fn link_at(dir: &File, name: &OsStr) -> std::io::Result<(u32, PathBuf)> {
    let cname = CString::new(name.as_bytes()).map_err(|_| std::io::Error::from_raw_os_error(libc::EINVAL))?;
    // SAFETY: a zeroed stat filled by fstatat on a descriptor we own.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    if unsafe { libc::fstatat(dir.as_raw_fd(), cname.as_ptr(), &mut st, libc::AT_SYMLINK_NOFOLLOW) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    if st.st_mode & libc::S_IFMT != libc::S_IFLNK {
        return Err(std::io::Error::from_raw_os_error(libc::ENOTDIR));
    }
    let mut buf = vec![0u8; 4096];
    // SAFETY: readlinkat writes at most `buf.len()` bytes into `buf`.
    let n = unsafe { libc::readlinkat(dir.as_raw_fd(), cname.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
    if n < 0 {
        return Err(std::io::Error::last_os_error());
    }
    buf.truncate(n as usize);
    Ok((
        st.st_uid,
        PathBuf::from(<OsString as std::os::unix::ffi::OsStringExt>::from_vec(buf)),
    ))
}

/// One step of a path: a name, or `..` (back to the directory above, as the kernel takes it).
enum Step {
    Name(OsString),
    Up,
}

/// Opens `path` as described above and returns the checked descriptor; `None` when it (or a
/// directory above it) does not exist. `what` names it in a refusal.
pub fn open(path: &Path, want: Want, what: &str) -> Result<Option<File>> {
    let abs = std::path::absolute(path).map_err(|e| anyhow::anyhow!("cannot resolve {}: {e}", path.display()))?;
    let mut steps = steps_of(&abs);
    let root = || -> Result<(File, std::fs::Metadata, PathBuf)> {
        let dir = File::open("/").map_err(|e| anyhow::anyhow!("cannot open /: {e}"))?;
        let meta = dir.metadata()?;
        Ok((dir, meta, PathBuf::from("/")))
    };
    // The directories opened so far, `/` first: `..` goes back one.
    let mut chain = vec![root()?];
    check_dir(&chain[0].1, &chain[0].2, what, path)?;
    let mut links = 0;
    while let Some(step) = steps.pop_front() {
        let name = match step {
            Step::Up => {
                if chain.len() > 1 {
                    chain.pop();
                }
                if steps.is_empty() {
                    return Ok(Some(chain.pop().expect("`/` stays").0));
                }
                continue;
            }
            Step::Name(name) => name,
        };
        let last = steps.is_empty();
        let flags = match (last, want) {
            (true, Want::File) => libc::O_RDONLY | libc::O_NONBLOCK,
            _ => libc::O_RDONLY | libc::O_DIRECTORY,
        };
        let (dir, dir_meta, shown) = chain.last().expect("`/` stays");
        let here = shown.join(&name);
        match openat(dir, &name, flags) {
            Ok(file) => {
                let meta = file.metadata()?;
                let writable = dir_meta.mode() & 0o022 != 0;
                if writable && !trusted_owner(meta.uid()) {
                    bail!(
                        "{what} {}: {} is in {}, which others can write, and is owned by uid {}; refusing it",
                        path.display(),
                        here.display(),
                        shown.display(),
                        meta.uid()
                    );
                }
                if last {
                    check_final(&meta, &here, want, what, path)?;
                    return Ok(Some(file));
                }
                check_dir(&meta, &here, what, path)?;
                chain.push((file, meta, here));
            }
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => return Ok(None),
            Err(e) if matches!(e.raw_os_error(), Some(libc::ELOOP) | Some(libc::ENOTDIR)) => {
                let (owner, target) = link_at(dir, &name)
                    .map_err(|_| anyhow::anyhow!("{what} {}: {} is not a directory", path.display(), here.display()))?;
                links += 1;
                if links > MAX_LINKS {
                    bail!(
                        "{what} {}: more than {MAX_LINKS} symbolic links on the way",
                        path.display()
                    );
                }
                if !trusted_owner(owner) {
                    bail!(
                        "{what} {}: the symbolic link {} is owned by uid {owner}; refusing to follow it",
                        path.display(),
                        here.display()
                    );
                }
                let mut rest = steps_of(&target);
                rest.extend(steps.drain(..));
                steps = rest;
                if target.is_absolute() {
                    chain.truncate(1);
                }
            }
            Err(e) => return Err(anyhow::Error::new(e).context(format!("cannot open {}", here.display()))),
        }
    }
    // The path was `/` itself.
    Ok(Some(chain.swap_remove(0).0))
}

/// The steps of a path, in order.
fn steps_of(p: &Path) -> std::collections::VecDeque<Step> {
    p.components()
        .filter_map(|c| match c {
            Component::Normal(n) => Some(Step::Name(n.to_os_string())),
            Component::ParentDir => Some(Step::Up),
            Component::RootDir | Component::CurDir | Component::Prefix(_) => None,
        })
        .collect()
}

/// A directory above what is trusted: owned by root or the running user, and not writable by
/// others unless sticky (then the entry below is checked for its owner).
fn check_dir(meta: &std::fs::Metadata, at: &Path, what: &str, path: &Path) -> Result<()> {
    let writable = meta.mode() & 0o022 != 0;
    let sticky = meta.mode() & 0o1000 != 0;
    if !trusted_owner(meta.uid()) || (writable && !sticky) {
        bail!(
            "{what} {} is in {}, which others can change (owner uid {}, mode {:04o}); refusing it",
            path.display(),
            at.display(),
            meta.uid(),
            meta.mode() & 0o7777
        );
    }
    Ok(())
}

/// What is trusted itself: the kind wanted, owned by root or the running user, not writable by
/// others.
fn check_final(meta: &std::fs::Metadata, at: &Path, want: Want, what: &str, path: &Path) -> Result<()> {
    if want == Want::File && !meta.is_file() {
        bail!("{what} {} is not a regular file; refusing it", at.display());
    }
    if !trusted_owner(meta.uid()) {
        bail!(
            "{what} {} is owned by uid {}, not root or the running user; refusing it",
            path.display(),
            meta.uid()
        );
    }
    if meta.mode() & 0o022 != 0 {
        bail!(
            "{what} {} is group- or world-writable (mode {:04o}); refusing it (chmod go-w)",
            path.display(),
            meta.mode() & 0o7777
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn a_writable_directory_above_is_refused_by_name() {
        let dir = tempfile::tempdir().unwrap();
        let conf = dir.path().join("etc");
        std::fs::create_dir(&conf).unwrap();
        std::fs::write(conf.join("c.toml"), "").unwrap();
        std::fs::set_permissions(&conf, std::fs::Permissions::from_mode(0o777)).unwrap();
        let err = open(&conf.join("c.toml"), Want::File, "configuration").unwrap_err();
        assert!(format!("{err}").contains("which others can change"), "{err}");
        std::fs::set_permissions(&conf, std::fs::Permissions::from_mode(0o755)).unwrap();
        assert!(open(&conf.join("c.toml"), Want::File, "configuration")
            .unwrap()
            .is_some());
        assert!(open(&conf.join("none.toml"), Want::File, "configuration")
            .unwrap()
            .is_none());
    }

    #[test]
    fn dot_dot_goes_back_one_directory_as_the_kernel_takes_it() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("a/b")).unwrap();
        std::fs::write(dir.path().join("a/f"), "x").unwrap();
        std::os::unix::fs::symlink("../f", dir.path().join("a/b/link")).unwrap();
        assert!(open(&dir.path().join("a/b/../f"), Want::File, "file")
            .unwrap()
            .is_some());
        assert!(open(&dir.path().join("a/b/link"), Want::File, "file")
            .unwrap()
            .is_some());
    }

    #[test]
    fn links_are_followed_only_when_trusted_and_never_at_the_end_into_others() {
        let dir = tempfile::tempdir().unwrap();
        let real = dir.path().join("real");
        std::fs::create_dir(&real).unwrap();
        std::fs::write(real.join("f"), "x").unwrap();
        std::os::unix::fs::symlink(&real, dir.path().join("link")).unwrap();
        let file = open(&dir.path().join("link/f"), Want::File, "file").unwrap();
        assert!(file.is_some());
    }
}
