//! Capturing a root tree: the files a snapshot records (sysctl files, the firewall script, the
//! version file, links between them) read now, and what the running system has loaded.

use std::collections::{BTreeMap, HashSet, VecDeque};
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::time::SystemTime;

use anyhow::{bail, Context, Result};
use walkdir::WalkDir;

use crate::domain::config::Config;
use crate::domain::snapshot::{normalize, FileKind, FileRecord, Manifest, Origin, Runtime, Snapshot, FORMAT};
use crate::domain::sysctl;
use crate::domain::version::{self, Version};
use crate::root::Root;
use crate::system::{fsutil, iptables, procsys};

/// An appliance path with its links followed inside the root (at most 8), as the host path to
/// read: a link never leads out of the root.
fn follow_inside(root: &Root, abs: &str) -> Result<std::path::PathBuf> {
    let mut path = abs.to_string();
    for _ in 0..8 {
        let host = root
            .inside(&path)
            .with_context(|| format!("cannot resolve {path} under {}", root.dir().display()))?;
        match fs::symlink_metadata(&host) {
            Ok(m) if m.file_type().is_symlink() => {
                let t = fs::read_link(&host)?.to_string_lossy().into_owned();
                path = link_target(&path, &t)
                    .with_context(|| format!("{}: link target {t:?} leaves the root", host.display()))?;
            }
            _ => return Ok(host),
        }
    }
    bail!(
        "{abs}: too many levels of symbolic links under {}",
        root.dir().display()
    )
}

/// The appliance path a link at `path` with target `t` leads to (`None`: out of the root).
fn link_target(path: &str, t: &str) -> Option<String> {
    let dir = path.rsplit_once('/').map_or("", |(d, _)| d);
    if t.starts_with('/') {
        normalize(t)
    } else {
        normalize(&format!("{dir}/{t}"))
    }
}

fn kind_name(meta: &fs::Metadata) -> &'static str {
    use std::os::unix::fs::FileTypeExt;
    let t = meta.file_type();
    if t.is_dir() {
        "directory"
    } else if t.is_fifo() {
        "FIFO"
    } else if t.is_socket() {
        "socket"
    } else if t.is_block_device() || t.is_char_device() {
        "device"
    } else {
        "special file"
    }
}

/// Captures `root` now. Fails when the version cannot be read, when a file it records is not a
/// regular text file or a link, and when an IWSVA root has no firewall script.
pub fn capture(root: &Root, config: &Config, label: Option<String>) -> Result<Snapshot> {
    let (version, version_text) = read_version(root, config)?;
    let Files { files, contents } = read_files(root, paths_to_capture(root, config)?)?;
    // Without its script (as a file, or a link to one) an IWSVA root would look like one with no
    // custom rules: not guessed.
    if version.product == version::Product::Iwsva && !files.iter().any(|f| f.path == config.firewall_script) {
        bail!(
            "{}: no firewall script ({}) on this IWSVA system; refusing to take that as \"no rules\"",
            root.path(&config.firewall_script).display(),
            config.firewall_script
        );
    }
    let created = humantime::format_rfc3339_micros(SystemTime::now()).to_string();
    Ok(Snapshot {
        manifest: Manifest {
            format: FORMAT,
            id: String::new(),
            created,
            host: host_name(root),
            label,
            version,
            version_text,
            files,
            runtime: None,
            hmac: None,
        },
        origin: Origin::Tree(root.dir().to_path_buf()),
        contents,
    })
}

/// The product version, and the line of the version file it was read from.
fn read_version(root: &Root, config: &Config) -> Result<(Version, String)> {
    let version_path = follow_inside(root, &config.version_file)?;
    let version_bytes = fsutil::read_bounded(&version_path).with_context(|| {
        format!(
            "cannot read the product version: set version_file in /etc/iwss-keeper/config.toml (or the --config file) to the file that holds it (now version_file = {:?})",
            config.version_file
        )
    })?;
    let version_text = String::from_utf8_lossy(&version_bytes);
    let (line, version) = version::parse_version_file(&version_text, config.product)
        .map_err(|e| anyhow::anyhow!("{}: {e}", version_path.display()))?;
    let text = version_text.lines().nth(line - 1).unwrap_or("").trim().to_string();
    Ok((version, text))
}

/// The appliance paths a snapshot records: `sysctl.conf`, every file in the sysctl drop-in
/// directories, the firewall script and the version file.
fn paths_to_capture(root: &Root, config: &Config) -> Result<Vec<String>> {
    let mut paths = vec![sysctl::SYSCTL_CONF.to_string()];
    for dir in sysctl::DROP_IN_DIRS {
        let abs = root.path(dir);
        if !abs.is_dir() {
            continue;
        }
        for entry in WalkDir::new(&abs).min_depth(1).sort_by_file_name() {
            let entry = entry.with_context(|| format!("cannot list {}", abs.display()))?;
            // A directory named `*.conf` hides the same-named file of a later directory for
            // procps and systemd 239 and later: recorded (as unreadable) so it is not forgotten.
            let conf_dir = entry.depth() == 1 && entry.file_name().to_string_lossy().ends_with(".conf");
            if entry.file_type().is_dir() && !conf_dir {
                continue;
            }
            let rel = entry.path().strip_prefix(root.dir()).unwrap_or(entry.path());
            paths.push(format!("/{}", rel.display()));
        }
    }
    paths.push(config.firewall_script.clone());
    paths.push(config.version_file.clone());
    // Which RHEL the appliance runs decides how its sysctl files are read (when present).
    paths.extend(sysctl::platform::RELEASE_FILES.map(String::from));
    paths.dedup();
    Ok(paths)
}

/// The files a capture read: a record of each, and the contents of the regular files.
struct Files {
    files: Vec<FileRecord>,
    contents: BTreeMap<String, Vec<u8>>,
}

/// Reads every path, and through links their targets inside the root.
fn read_files(root: &Root, paths: Vec<String>) -> Result<Files> {
    let mut files: Vec<FileRecord> = Vec::new();
    let mut seen: HashSet<String> = HashSet::new();
    let mut contents = BTreeMap::new();
    let mut queue: VecDeque<(String, Option<String>)> = paths.into_iter().map(|p| (p, None)).collect();
    while let Some((path, link)) = queue.pop_front() {
        if !seen.insert(path.clone()) {
            continue;
        }
        if files.len() > 100_000 {
            bail!("{}: too many files to capture", root.dir().display());
        }
        let Some((record, bytes)) = read_file(root, &path, link.as_deref(), &mut queue)? else {
            continue;
        };
        if record.kind == FileKind::File {
            contents.insert(path, bytes);
        }
        files.push(record);
    }
    Ok(Files { files, contents })
}

/// Reads one path (reached through `link`, when a link led to it): its record and its bytes
/// (a link's: its target, which goes on `queue`). A missing file not reached through a link is
/// `None`.
fn read_file(
    root: &Root,
    path: &str,
    link: Option<&str>,
    queue: &mut VecDeque<(String, Option<String>)>,
) -> Result<Option<(FileRecord, Vec<u8>)>> {
    let abs = root
        .inside(path)
        .with_context(|| format!("cannot resolve {path} under {}", root.dir().display()))?;
    let meta = match fs::symlink_metadata(&abs) {
        Ok(m) => m,
        // A dangling link in a sysctl drop-in directory masks the same-named file of a later
        // directory, as systemd-sysctl and `sysctl --system` treat it: recorded as a link and
        // read as empty. Elsewhere a missing target would make every value read through it a
        // guess.
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => match link {
            Some(link) if sysctl::is_drop_in(link) => return Ok(None),
            Some(link) => bail!(
                "{}: a symbolic link to {path}, which does not exist under {}; refusing to guess its content",
                root.path(link).display(),
                root.dir().display()
            ),
            None => return Ok(None),
        },
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", abs.display())),
    };
    // A sysctl file the tool cannot read is recorded as such: the keys it could set are "cannot
    // tell", and the rest of the run goes on.
    let sysctl_file = sysctl::is_sysctl_file(path);
    let mut reason = None;
    let (kind, bytes, target) = if meta.file_type().is_symlink() {
        let t = fs::read_link(&abs).with_context(|| format!("cannot read link {}", abs.display()))?;
        let t = t.to_string_lossy().into_owned();
        // Links are recorded as links and their targets captured too (inside the root),
        // so values read through them are the kernel's; nothing is written through them.
        match link_target(path, &t) {
            // systemd's way to mask a drop-in: nothing to read behind it.
            Some(r) if r == "/dev/null" && sysctl::is_drop_in(path) => {}
            Some(r) => queue.push_back((r, Some(path.to_string()))),
            None => bail!("{}: link target {t:?} leaves the root; refusing it", abs.display()),
        }
        (FileKind::Symlink, t.clone().into_bytes(), Some(t))
    } else if meta.is_file() {
        // A file over the size bound is refused by name whatever it is: memory stays bounded.
        fsutil::check_size(&abs, meta.len())?;
        match read_text(&abs, sysctl_file) {
            Ok(bytes) => (FileKind::File, bytes, None),
            Err(e) if sysctl_file => {
                reason = Some(format!("{e:#}"));
                (FileKind::Unreadable, Vec::new(), None)
            }
            Err(e) => return Err(e),
        }
    } else if sysctl_file {
        reason = Some(format!("{} is a {}", abs.display(), kind_name(&meta)));
        (FileKind::Unreadable, Vec::new(), None)
    } else {
        bail!(
            "{} is not a regular file (a {}); refusing to guess its content",
            abs.display(),
            kind_name(&meta)
        );
    };
    let record = FileRecord {
        path: path.to_string(),
        kind,
        size: bytes.len() as u64,
        mode: meta.mode() & 0o7777,
        uid: meta.uid(),
        gid: meta.gid(),
        // Filled by `fill_checksums` when the snapshot is stored or shown: comparing a
        // tree read now needs no checksum, and hashing large scripts is costly.
        sha256: String::new(),
        target,
        reason,
    };
    Ok(Some((record, bytes)))
}

/// A captured file's bytes. The script and the version file are text: NUL bytes mean something
/// else is there, and reading it as configuration would be a guess. A sysctl file may hold them
/// (`nul_ok`): procps and systemd read each line as a C string, and so does the model.
fn read_text(abs: &Path, nul_ok: bool) -> Result<Vec<u8>> {
    let bytes = fsutil::read_bounded(abs)?;
    if !nul_ok && bytes.contains(&0) {
        bail!(
            "{} holds NUL bytes: not a text file; refusing to guess its content",
            abs.display()
        );
    }
    Ok(bytes)
}

fn host_name(root: &Root) -> String {
    ["/proc/sys/kernel/hostname", "/etc/hostname"]
        .iter()
        .find_map(|p| fsutil::read_bounded(&root.path(p)).ok())
        .map(|b| String::from_utf8_lossy(&b).trim().to_string())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "unknown".into())
}

/// What is live now, as far as it can be read: loaded rules per family, running managed values.
pub fn runtime(root: &Root, managed: &[String]) -> Runtime {
    Runtime {
        iptables: iptables::dump(root, crate::domain::rule::Family::V4),
        ip6tables: iptables::dump(root, crate::domain::rule::Family::V6),
        sysctl: managed
            .iter()
            .filter_map(|k| procsys::read(root, k).map(|v| (sysctl::display_key(&sysctl::canonical_key(k)), v)))
            .collect(),
    }
}
