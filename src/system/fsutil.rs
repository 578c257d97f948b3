//! Safe file operations: atomic replace, never-overwriting backups, private directories.

use std::borrow::Cow;
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

use crate::domain::snapshot::sha256_hex;
use crate::fault;
use crate::system::{trust, xattr};

/// Largest file the tool reads; sysctl files and firewall scripts are far smaller.
pub const MAX_FILE_SIZE: u64 = 64 * 1024 * 1024;

/// Bytes read so far by this run, and its budget.
static READ_TOTAL: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
static READ_BUDGET: std::sync::atomic::AtomicU64 =
    std::sync::atomic::AtomicU64::new(crate::domain::config::DEFAULT_READ_BUDGET_MIB << 20);
/// The largest files read so far (size, path), for the message that names them.
static LARGEST: std::sync::Mutex<Vec<(u64, PathBuf)>> = std::sync::Mutex::new(Vec::new());

/// Sets the run's read budget (from the configuration).
pub fn set_read_budget(bytes: u64) {
    READ_BUDGET.store(bytes, std::sync::atomic::Ordering::Relaxed);
}

/// Counts `len` bytes of `path` against the run's budget, before they are read: over it, the
/// run stops, naming the budget and the largest files read (memory stays a small multiple of
/// the budget, however many large files there are).
fn charge(path: &Path, len: u64) -> Result<()> {
    use std::sync::atomic::Ordering::Relaxed;
    let budget = READ_BUDGET.load(Relaxed);
    let total = READ_TOTAL.fetch_add(len, Relaxed) + len;
    let mut largest = LARGEST.lock().unwrap_or_else(|e| e.into_inner());
    largest.push((len, path.to_path_buf()));
    largest.sort_by_key(|l| std::cmp::Reverse(l.0));
    largest.truncate(3);
    if total > budget {
        let named: Vec<String> = largest
            .iter()
            .map(|(n, p)| format!("{} ({n} bytes)", p.display()))
            .collect();
        bail!(
            "reading {} would take this run past its read budget of {budget} bytes (read_budget_mib in the configuration); the largest files: {}",
            path.display(),
            named.join(", ")
        );
    }
    Ok(())
}

/// Refuses a file of `len` bytes over [`MAX_FILE_SIZE`], by name.
pub fn check_size(path: &Path, len: u64) -> Result<()> {
    if len > MAX_FILE_SIZE {
        bail!("{}: {len} bytes is over the {MAX_FILE_SIZE} byte limit", path.display());
    }
    Ok(())
}

/// Reads a regular file with a hard bound. The file is opened without following a final
/// symbolic link (callers that accept links resolve them first, inside the root) and without
/// blocking (a FIFO or a device in its place never hangs the run), and checked to be a regular
/// file on the open descriptor, so nothing else is read.
pub fn read_bounded(path: &Path) -> Result<Vec<u8>> {
    let file = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOFOLLOW)
        .open(path)
        .map_err(|e| {
            if e.raw_os_error() == Some(libc::ELOOP) {
                anyhow::anyhow!("{} is a symbolic link; refusing to read through it", path.display())
            } else {
                anyhow::Error::new(e).context(format!("cannot read {}", path.display()))
            }
        })?;
    read_opened(file, path)
}

/// Reads a regular file already opened (and checked) as [`read_bounded`] does: the bytes of the
/// descriptor, never of whatever `path` names by then.
pub fn read_opened(file: File, path: &Path) -> Result<Vec<u8>> {
    use std::io::Read;
    let meta = file
        .metadata()
        .with_context(|| format!("cannot read {}", path.display()))?;
    if !meta.is_file() {
        bail!("{} is not a regular file; refusing to read it", path.display());
    }
    check_size(path, meta.len())?;
    charge(path, meta.len())?;
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    file.take(MAX_FILE_SIZE + 1)
        .read_to_end(&mut bytes)
        .with_context(|| format!("cannot read {}", path.display()))?;
    if bytes.len() as u64 > MAX_FILE_SIZE {
        bail!("{} grew past the {MAX_FILE_SIZE} byte limit while read", path.display());
    }
    Ok(bytes)
}

/// Mode and owner a replaced or new file gets.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Owner {
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
}

impl Owner {
    /// Mode `mode`, owned by the running user and group.
    pub fn mine(mode: u32) -> Self {
        let (uid, gid) = current_ids();
        Self { mode, uid, gid }
    }

    pub fn of(meta: &fs::Metadata) -> Self {
        Self {
            mode: meta.mode() & 0o7777,
            uid: meta.uid(),
            gid: meta.gid(),
        }
    }
}

/// Writes `bytes` to a new file at `path` that must not exist yet, with `owner`'s mode and
/// owner, synced to disk.
fn write_new(path: &Path, bytes: &[u8], owner: Owner) -> Result<()> {
    let f = write_new_unsynced(path, bytes, owner)?;
    let synced = f.sync_all().with_context(|| format!("cannot sync {}", path.display()));
    if synced.is_err() {
        let _ = fs::remove_file(path);
    }
    synced
}

/// [`write_new`] without the sync: the open file, for syncing later.
fn write_new_unsynced(path: &Path, bytes: &[u8], owner: Owner) -> Result<File> {
    let mut f = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(owner.mode)
        .open(path)
        .with_context(|| format!("cannot create {}", path.display()))?;
    let filled = (|| -> Result<()> {
        f.write_all(bytes)
            .with_context(|| format!("cannot write {}", path.display()))?;
        f.set_permissions(fs::Permissions::from_mode(owner.mode))
            .with_context(|| format!("cannot set the mode of {}", path.display()))?;
        // Chown only when it changes something, so an unprivileged run on own files works.
        let meta = f.metadata()?;
        if meta.uid() != owner.uid || meta.gid() != owner.gid {
            std::os::unix::fs::chown(path, Some(owner.uid), Some(owner.gid))
                .with_context(|| format!("cannot set the owner of {}", path.display()))?;
            f.set_permissions(fs::Permissions::from_mode(owner.mode))?;
        }
        Ok(())
    })();
    if filled.is_err() {
        // A half-written new file is never left behind (a full disk, a read-only remount).
        let _ = fs::remove_file(path);
    }
    filled.map(|()| f)
}

/// Whether every other name of the file is one of its own `.org.` backups beside it (an undo on
/// a full disk links the backup into place): replacing the file leaves them the old content,
/// which is what a backup holds.
fn only_backups_share(path: &Path, meta: &fs::Metadata) -> bool {
    let (Some(dir), Some(name)) = (path.parent(), path.file_name()) else {
        return false;
    };
    let prefix = format!("{}.org.", name.to_string_lossy());
    let Ok(entries) = fs::read_dir(dir) else {
        return false;
    };
    let backups = entries
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with(&prefix))
        .filter(|e| {
            e.metadata()
                .is_ok_and(|m| m.ino() == meta.ino() && m.dev() == meta.dev())
        })
        .count() as u64;
    backups == meta.nlink() - 1
}

/// fsync a directory so a rename in it survives a crash.
pub fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .with_context(|| format!("cannot sync directory {}", dir.display()))
}

/// Refuses a path whose last component is a symlink: the tool never writes through one.
pub fn refuse_symlink(path: &Path) -> Result<()> {
    match fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_symlink() => {
            bail!("{} is a symbolic link; refusing to write through it", path.display())
        }
        _ => Ok(()),
    }
}

/// Replaces `path` atomically: temp file in the same directory with the given mode and owner,
/// fsync, rename, fsync the directory. On error the temp file is removed and `path` is untouched.
pub fn atomic_write(path: &Path, bytes: &[u8], owner: Owner) -> Result<()> {
    stage_write(path, bytes, owner)?.commit()
}

/// The first half of [`atomic_write`]: the new content written beside `path`, with its mode,
/// owner and `path`'s extended attributes, ready to be synced ([`Staged::sync`], which a reader
/// need not wait for) and renamed into place by [`Staged::commit`]. Dropped uncommitted, the
/// temp file is removed.
pub fn stage_write(path: &Path, bytes: &[u8], owner: Owner) -> Result<Staged> {
    refuse_symlink(path)?;
    // Replacing a file with more than one name would leave the other names on the old content.
    let existing = fs::symlink_metadata(path).ok();
    if let Some(m) = existing
        .as_ref()
        .filter(|m| m.nlink() > 1 && !only_backups_share(path, m))
    {
        bail!(
            "{} has {} hard links; replacing it would leave the other names on the old content; refusing (nothing was changed)",
            path.display(),
            m.nlink()
        );
    }
    let temp = TempName::beside(path, "new");
    let file = write_new_unsynced(&temp.path, bytes, owner)?;
    // Extended attributes go with the content: the SELinux label, ACLs, user attributes.
    if existing.is_some() {
        xattr::copy_xattrs(path, &temp.path)?;
    }
    Ok(Staged {
        path: path.to_path_buf(),
        temp,
        owner,
        unsynced: Some(file),
    })
}

/// New content written beside the file it replaces ([`stage_write`]).
#[derive(Debug)]
pub struct Staged {
    path: PathBuf,
    temp: TempName,
    /// Mode and owner the new content was given.
    owner: Owner,
    /// The new file, until synced.
    unsynced: Option<File>,
}

/// A temp file's name, removed when dropped unless the file has gone elsewhere (renamed or
/// linked into place, then unlinked).
#[derive(Debug)]
struct TempName {
    path: PathBuf,
    gone: bool,
}

impl TempName {
    /// This process's temp name beside `path` (`.NAME.iwss-keeper-TAG.PID`), a leftover of that
    /// name removed.
    fn beside(path: &Path, tag: &str) -> Self {
        let name = path
            .file_name()
            .map_or_else(|| "file".into(), |n| n.to_string_lossy().into_owned());
        let path = path.with_file_name(format!(".{name}.iwss-keeper-{tag}.{}", std::process::id()));
        let _ = fs::remove_file(&path);
        Self { path, gone: false }
    }
}

impl Drop for TempName {
    fn drop(&mut self) {
        if !self.gone {
            let _ = fs::remove_file(&self.path);
        }
    }
}

impl Staged {
    /// Where the new content is, until committed.
    pub fn temp_path(&self) -> &Path {
        &self.temp.path
    }

    /// The mode and owner it was given.
    pub fn owner(&self) -> Owner {
        self.owner
    }

    /// Syncs the new content to disk (once).
    pub fn sync(&mut self) -> Result<()> {
        if let Some(f) = self.unsynced.take() {
            f.sync_all()
                .with_context(|| format!("cannot sync {}", self.temp.path.display()))?;
        }
        Ok(())
    }

    /// Syncs the new content (when not yet done), renames it into place and syncs the
    /// directory.
    pub fn commit(mut self) -> Result<()> {
        self.sync()?;
        fault::point("write-after-temp");
        fault::point("write-before-rename");
        fs::rename(&self.temp.path, &self.path).with_context(|| format!("cannot replace {}", self.path.display()))?;
        self.temp.gone = true;
        sync_dir(self.path.parent().unwrap_or(Path::new(".")))?;
        fault::point("write-after-rename");
        Ok(())
    }
}

/// The pid a temp file name ends with (`.NAME.iwss-keeper-TAG.PID`).
fn temp_owner(name: &str) -> Option<i32> {
    name.rsplit('.').next()?.parse().ok()
}

/// Whether a process with this pid is alive (signal 0 reaches it, or it exists and is not ours).
fn alive(pid: i32) -> bool {
    // SAFETY: kill with signal 0 only checks the pid; nothing is sent.
    pid > 0
        && (unsafe { libc::kill(pid, 0) } == 0 || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM))
}

/// Removes temp files a crashed run left beside `path` (`.NAME.iwss-keeper-*.PID`). A temp file
/// whose process is still alive belongs to a live run and is left alone.
pub fn remove_stale_temps(path: &Path) -> Result<()> {
    let (Some(dir), Some(name)) = (path.parent(), path.file_name()) else {
        return Ok(());
    };
    let prefix = format!(".{}.iwss-keeper-", name.to_string_lossy());
    for entry in list_dir(dir)? {
        let file_name = entry.file_name().to_string_lossy().into_owned();
        if !file_name.starts_with(&prefix) {
            continue;
        }
        // A live run's temp file is a regular file; anything else with the name was planted.
        let regular = entry.file_type().is_ok_and(|t| t.is_file());
        if regular && temp_owner(&file_name).is_some_and(|pid| pid == std::process::id() as i32 || alive(pid)) {
            log::debug!("{} belongs to a running process; left alone", entry.path().display());
            continue;
        }
        log::warn!("removing {} left by an interrupted run", entry.path().display());
        fs::remove_file(entry.path()).with_context(|| format!("cannot remove {}", entry.path().display()))?;
    }
    Ok(())
}

/// Puts a file this run replaced back as it was: `old` is its earlier content (`None`: it did
/// not exist), `wrote` the SHA-256 (hex) of what this run put there. A file that no longer holds
/// it was changed by someone else and is left alone (an error says so). The earlier content is written
/// atomically; when that cannot be done (a full disk), the backup itself is linked into place,
/// which needs no free blocks.
pub fn put_back(path: &Path, old: Option<&[u8]>, owner: Owner, wrote: &str, backup: Option<&Path>) -> Result<()> {
    match read_bounded(path) {
        Ok(now) if sha256_hex(&now) == wrote => {}
        Ok(_) => bail!("{} changed since this run wrote it; left as it is", path.display()),
        Err(_) if !path.exists() => bail!("{} was removed since this run wrote it", path.display()),
        Err(e) => return Err(e),
    }
    let Some(old) = old else {
        return fs::remove_file(path).with_context(|| format!("cannot remove {}", path.display()));
    };
    let copied = atomic_write(path, old, owner);
    let Err(copy_error) = copied else { return Ok(()) };
    let Some(backup) = backup else { return Err(copy_error) };
    // A temp name that fails to go into place is removed when dropped.
    let mut temp = TempName::beside(path, "undo");
    fs::hard_link(backup, &temp.path)
        .and_then(|()| fs::rename(&temp.path, path))
        .with_context(|| {
            format!(
                "cannot put {} back ({copy_error:#}), nor link its backup {} into place",
                path.display(),
                backup.display()
            )
        })?;
    temp.gone = true;
    log::warn!(
        "{}: written back by linking its backup {} into place ({copy_error:#})",
        path.display(),
        backup.display()
    );
    sync_dir(path.parent().unwrap_or(Path::new(".")))
}

/// What [`trust::open`] is to find at `path`: a directory when one is there, else a file.
fn want_of(path: &Path) -> trust::Want {
    if path.is_dir() {
        trust::Want::Dir
    } else {
        trust::Want::File
    }
}

/// Refuses a state directory, hook directory or configuration file that others could change,
/// checked on the opened descriptor with every directory above it ([`trust::open`]); a path that
/// does not exist passes.
pub fn check_trusted(path: &Path, what: &str) -> Result<()> {
    trust::open(path, want_of(path), what).map(drop)
}

/// Refuses what others could replace (it and every directory above it), root or not: for a
/// program root will run from a hook, a unit or a boot script.
pub fn check_trusted_path(path: &Path) -> Result<()> {
    match trust::open(path, want_of(path), "path")? {
        Some(_) => Ok(()),
        None => bail!("{} does not exist", path.display()),
    }
}

/// [`check_trusted_path`] when the tool runs as root, its refusal led by `refusing` (`refusing
/// to run PATH`): only root's runs execute or trust what others could replace.
pub fn check_trusted_if_root(path: &Path, refusing: &str) -> Result<()> {
    if current_ids().0 != 0 {
        return Ok(());
    }
    check_trusted_path(path).map_err(|e| e.context(refusing.to_string()))
}

/// The entries of `dir`; none when it does not exist.
pub fn list_dir(dir: &Path) -> Result<Vec<fs::DirEntry>> {
    match fs::read_dir(dir) {
        Ok(entries) => Ok(entries.collect::<std::io::Result<_>>()?),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(e).with_context(|| format!("cannot list {}", dir.display())),
    }
}

/// A compact UTC stamp for backup names (`20261126T095155Z`).
pub fn stamp() -> String {
    humantime::format_rfc3339_seconds(std::time::SystemTime::now())
        .to_string()
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .collect()
}

/// Copies `path` to `PATH.org.STAMP` beside it (the article's `.org` habit), never overwriting an
/// existing backup: a taken name gets `.1`, `.2` ... The copy keeps mode and owner.
pub fn backup(path: &Path, stamp: &str) -> Result<PathBuf> {
    stage_backup(path, None)?.commit(stamp)
}

/// The first half of [`backup`]: the copy written and synced beside `path` under a temp name
/// (`bytes`: the content already read, else it is read now). Dropped before [`StagedBackup::commit`]
/// names it, the copy is removed.
pub fn stage_backup(path: &Path, bytes: Option<&[u8]>) -> Result<StagedBackup> {
    let meta = fs::metadata(path).with_context(|| format!("cannot back up {}", path.display()))?;
    let bytes = match bytes {
        Some(b) => Cow::Borrowed(b),
        None => Cow::Owned(read_bounded(path)?),
    };
    let staged = StagedBackup {
        path: path.to_path_buf(),
        temp: TempName::beside(path, "backup"),
    };
    write_new(&staged.temp.path, &bytes, Owner::of(&meta))
        .with_context(|| format!("cannot back up {}", path.display()))?;
    Ok(staged)
}

/// A backup written under a temp name ([`stage_backup`]).
#[derive(Debug)]
pub struct StagedBackup {
    path: PathBuf,
    temp: TempName,
}

impl StagedBackup {
    /// Gives the copy its backup name, `PATH.org.STAMP` (or `.1`, `.2` ... when taken).
    pub fn commit(mut self, stamp: &str) -> Result<PathBuf> {
        let base = format!("{}.org.{stamp}", self.path.display());
        for n in 0..1000 {
            let target = PathBuf::from(if n == 0 { base.clone() } else { format!("{base}.{n}") });
            // link() fails when the name exists: an older backup is never replaced.
            match fs::hard_link(&self.temp.path, &target) {
                Ok(()) => {
                    fs::remove_file(&self.temp.path)?;
                    self.temp.gone = true;
                    sync_dir(self.path.parent().unwrap_or(Path::new(".")))?;
                    return Ok(target);
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(e).with_context(|| format!("cannot create backup {}", target.display())),
            }
        }
        bail!("too many backups named {base}.*")
    }
}

/// Creates a directory readable by its owner only (missing parents 0755), whatever the umask.
pub fn create_private_dir(dir: &Path) -> Result<()> {
    if let Some(parent) = dir.parent() {
        create_dirs(parent, 0o755)?;
    }
    create_dirs(dir, 0o700)?;
    fs::set_permissions(dir, fs::Permissions::from_mode(0o700))
        .with_context(|| format!("cannot set the mode of {}", dir.display()))
}

/// Creates `dir` and every missing directory above it, each with exactly `mode` whatever the
/// caller's umask.
pub fn create_dirs(dir: &Path, mode: u32) -> Result<()> {
    let missing: Vec<&Path> = dir.ancestors().take_while(|p| !p.exists()).collect();
    for d in missing.into_iter().rev() {
        // Created with the mode (the umask can only take bits away), then set exactly: never
        // writable by others for a moment.
        std::os::unix::fs::DirBuilderExt::mode(&mut fs::DirBuilder::new(), mode)
            .create(d)
            .with_context(|| format!("cannot create {}", d.display()))?;
        fs::set_permissions(d, fs::Permissions::from_mode(mode))
            .with_context(|| format!("cannot set the mode of {}", d.display()))?;
    }
    Ok(())
}

/// Writes a new private (0600) file that must not exist yet, synced to disk.
pub fn write_private(path: &Path, bytes: &[u8]) -> Result<()> {
    write_new(path, bytes, Owner::mine(0o600))
}

/// The running user and group.
pub fn current_ids() -> (u32, u32) {
    // SAFETY: getuid/getgid cannot fail and touch no memory.
    unsafe { (libc::getuid(), libc::getgid()) }
}

#[cfg(test)]
mod tests;
