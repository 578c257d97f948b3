//! One run at a time per root: an exclusive lock on `ROOT/var/lib/iwss-keeper/lock`, whatever
//! state directory the run uses, and on the state directory's own lock when that is elsewhere.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::io::AsRawFd;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use std::path::Path;

use crate::root::Root;
use crate::store::StateDir;
use crate::system::fsutil;

/// Held while a run changes anything; released when dropped (or when the process dies).
#[derive(Debug)]
pub struct Lock {
    _files: Vec<File>,
}

fn try_flock(file: &File) -> bool {
    // SAFETY: flock on a descriptor this process owns.
    unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) == 0 }
}

/// The default state directory under a root.
pub const DEFAULT_STATE_DIR: &str = "/var/lib/iwss-keeper";

/// Opens the lock file `path` (its directory created 0700).
fn open(path: &Path) -> Result<File> {
    if let Some(dir) = path.parent() {
        fsutil::create_private_dir(dir)?;
    }
    fsutil::refuse_symlink(path)?;
    OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("cannot open {}", path.display()))
}

/// The same file, by device and inode (two spellings of one path must not lock each other).
fn same_file(a: &File, b: &File) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (a.metadata(), b.metadata()) {
        (Ok(x), Ok(y)) => x.dev() == y.dev() && x.ino() == y.ino(),
        _ => false,
    }
}

/// Who holds a lock, from the pid its holder noted: named only while that process lives (the
/// note outlives a holder whose lock passed on; it is never proof).
fn holder_of(noted: &str) -> String {
    let Ok(pid) = noted.parse::<i32>() else {
        return "another process (it noted no pid)".into();
    };
    // SAFETY: signal 0 only asks whether the process exists.
    let alive = pid > 0
        && (unsafe { libc::kill(pid, 0) } == 0 || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM));
    if alive {
        format!("another iwss-keeper run (pid {pid})")
    } else {
        format!("another process (the pid noted, {pid}, has exited: a process it started may hold the lock)")
    }
}

/// Locks an open lock file, waiting up to `deadline`.
fn lock(mut file: File, path: &Path, deadline: Instant, timeout: Duration) -> Result<File> {
    let mut announced = false;
    while !try_flock(&file) {
        if Instant::now() >= deadline {
            let mut holder = String::new();
            let _ = file.read_to_string(&mut holder);
            bail!(
                "{} holds {}; gave up after {}s",
                holder_of(holder.trim()),
                path.display(),
                timeout.as_secs()
            );
        }
        crate::system::signals::check("taking the lock")?;
        if !announced {
            log::warn!("waiting for another iwss-keeper run to release {}", path.display());
            announced = true;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    // The holder's pid helps whoever waits; the lock holds without it (a full disk). Not
    // synced: the lock is the flock, which no crash outlives, and readers see the page cache.
    let noted = file
        .set_len(0)
        .and_then(|()| file.rewind())
        .and_then(|()| writeln!(file, "{}", std::process::id()));
    if let Err(e) = noted {
        log::warn!("cannot note this run's pid in {}: {e}", path.display());
    }
    Ok(file)
}

impl Lock {
    /// Takes the root's lock and the state directory's, waiting up to `timeout` for another run
    /// to finish; then fails naming the holder's pid. An unprivileged run that cannot create the
    /// root's lock directory (a user's run on the real root with its own `--state-dir`) holds the
    /// state directory's lock only, and says so.
    pub fn acquire(root: &Root, state: &StateDir, timeout: Duration) -> Result<Self> {
        let deadline = Instant::now()
            .checked_add(timeout)
            .unwrap_or_else(|| Instant::now() + Duration::from_secs(86_400));
        // A root's lock lives in its default state directory, so two runs on one root exclude
        // each other even with different `--state-dir`s.
        let root_lock = root.path(DEFAULT_STATE_DIR).join("lock");
        let state_lock = state.lock_path();
        let mut files = Vec::new();
        match open(&root_lock).and_then(|file| lock(file, &root_lock, deadline, timeout)) {
            Ok(f) => files.push(f),
            Err(e) if fsutil::current_ids().0 != 0 && root_lock != state_lock && !root_lock.exists() => {
                log::warn!(
                    "cannot take the root's lock ({e:#}); holding {} only",
                    state_lock.display()
                );
            }
            Err(e) => return Err(e),
        }
        if root_lock != state_lock {
            let file = open(&state_lock)?;
            if !files.iter().any(|f| same_file(f, &file)) {
                files.push(lock(file, &state_lock, deadline, timeout)?);
            }
        }
        Ok(Self { _files: files })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn second_holder_waits_then_fails_naming_the_pid() {
        let dir = tempfile::tempdir().unwrap();
        let root = Root::new(dir.path());
        let first = Lock::acquire(&root, &StateDir::new(dir.path().join("a")), Duration::from_secs(1)).unwrap();
        // Another state directory on the same root waits all the same.
        let err = Lock::acquire(&root, &StateDir::new(dir.path().join("b")), Duration::from_millis(200)).unwrap_err();
        assert!(
            format!("{err}").contains(&format!("pid {}", std::process::id())),
            "{err}"
        );
        drop(first);
        Lock::acquire(&root, &StateDir::new(dir.path().join("b")), Duration::from_millis(200)).unwrap();
    }

    #[test]
    fn another_spelling_of_the_root_lock_is_not_waited_for() {
        let dir = tempfile::tempdir().unwrap();
        let root = Root::new(dir.path());
        let state = StateDir::new(dir.path().join("var/lib/../lib/iwss-keeper"));
        Lock::acquire(&root, &state, Duration::from_millis(200)).unwrap();
    }
}
