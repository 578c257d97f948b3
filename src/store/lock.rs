//! One run at a time: an exclusive lock on a file in the state directory.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::io::AsRawFd;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use crate::store::StateDir;
use crate::system::fsutil;

/// Held while a run changes anything; released when dropped (or when the process dies).
#[derive(Debug)]
pub struct Lock {
    _file: File,
}

fn try_flock(file: &File) -> bool {
    // SAFETY: flock on a descriptor this process owns.
    unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) == 0 }
}

impl Lock {
    /// Takes `STATE/lock`, waiting up to `timeout` for another run to finish; then fails naming
    /// the holder's pid.
    pub fn acquire(state: &StateDir, timeout: Duration) -> Result<Self> {
        fsutil::create_private_dir(state.dir())?;
        let path = state.lock_path();
        fsutil::refuse_symlink(&path)?;
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(&path)
            .with_context(|| format!("cannot open {}", path.display()))?;
        let deadline = Instant::now() + timeout;
        let mut announced = false;
        while !try_flock(&file) {
            if Instant::now() >= deadline {
                let mut holder = String::new();
                let _ = file.read_to_string(&mut holder);
                let holder = holder.trim();
                let holder = if holder.is_empty() { "unknown" } else { holder };
                bail!(
                    "another iwss-keeper run (pid {holder}) holds {}; gave up after {}s",
                    path.display(),
                    timeout.as_secs()
                );
            }
            if !announced {
                log::warn!("waiting for another iwss-keeper run to release {}", path.display());
                announced = true;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        file.set_len(0)
            .and_then(|()| file.rewind())
            .and_then(|()| writeln!(file, "{}", std::process::id()))
            .and_then(|()| file.sync_all())
            .with_context(|| format!("cannot write {}", path.display()))?;
        Ok(Self { _file: file })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn second_holder_waits_then_fails_naming_the_pid() {
        let dir = tempfile::tempdir().unwrap();
        let first = Lock::acquire(&StateDir::new(dir.path()), Duration::from_secs(1)).unwrap();
        let err = Lock::acquire(&StateDir::new(dir.path()), Duration::from_millis(200)).unwrap_err();
        assert!(
            format!("{err}").contains(&format!("pid {}", std::process::id())),
            "{err}"
        );
        drop(first);
        Lock::acquire(&StateDir::new(dir.path()), Duration::from_millis(200)).unwrap();
    }
}
