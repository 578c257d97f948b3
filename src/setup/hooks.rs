//! The hook scripts `register` puts where the upgrade runs them, the binary they run, and the
//! hook directory they go to.

use std::path::{Path, PathBuf};

use anyhow::Result;

use crate::context::Context;
use crate::setup::files::Managed;
use crate::system::fsutil;

/// The hook scripts, as shipped in `hooks/`.
pub const HOOKS: [(&str, &str); 2] = [
    (
        "pre-install.d/50iwss-keeper",
        include_str!("../../hooks/pre-install.d/50iwss-keeper"),
    ),
    (
        "post-install.d/50iwss-keeper",
        include_str!("../../hooks/post-install.d/50iwss-keeper"),
    ),
];

/// The line of a shipped hook script that names the binary; `register` writes the binary it
/// installed there.
const BIN_LINE: &str = "bin=${IWSS_KEEPER:-/usr/sbin/iwss-keeper}";
/// Where the package installs the binary.
pub const PACKAGED_BINARY: &str = "/usr/sbin/iwss-keeper";

/// Whether a path can be written into a hook, a unit or a boot script as it is: only characters
/// no shell or systemd quoting treats specially.
pub fn bakeable(path: &str) -> bool {
    path.starts_with('/') && path.bytes().all(|b| b.is_ascii_alphanumeric() || b"/._+-".contains(&b))
}

/// The binary the hooks and the boot guard run: this one, when only root (or the running user)
/// can replace it; else the packaged one under the root, when that is trusted; else a refusal.
pub fn binary(ctx: &Context) -> Result<String> {
    let why = match std::env::current_exe().and_then(|p| p.canonicalize()) {
        Ok(exe) => {
            let shown = exe.display().to_string();
            match fsutil::check_trusted_path(&exe) {
                Ok(()) if bakeable(&shown) => return Ok(shown),
                Ok(()) => format!("{shown} holds characters that would need quoting"),
                Err(e) => format!("{e:#}"),
            }
        }
        Err(e) => format!("cannot tell where this binary is: {e}"),
    };
    let packaged = ctx.root.path(PACKAGED_BINARY);
    if packaged.is_file() && fsutil::check_trusted_path(&packaged).is_ok() {
        log::warn!("{why}; the hooks run {PACKAGED_BINARY} instead");
        return Ok(PACKAGED_BINARY.into());
    }
    anyhow::bail!(
        "refusing to register: {why}. Root would run it at every upgrade and boot; install the binary where only root can write (the package puts it at {PACKAGED_BINARY}) and register from there"
    )
}

/// A shipped hook script with the registered binary written in.
pub fn hook_text(shipped: &str, binary: &str) -> String {
    debug_assert!(shipped.contains(BIN_LINE));
    shipped.replace(BIN_LINE, &format!("bin=${{IWSS_KEEPER:-'{binary}'}}"))
}

/// The hook scripts as they go into `hook_dir`, running `binary`.
pub fn hook_files(ctx: &Context, hook_dir: &str, binary: &str) -> Result<Vec<Managed>> {
    let dir = hook_dir.trim_end_matches('/');
    HOOKS
        .iter()
        .map(|(rel, text)| Managed::file(ctx, &format!("{dir}/{rel}"), hook_text(text, binary), 0o755))
        .collect()
}

/// Makes sure the hook directory and its two subdirectories exist (created 0755) and that only
/// root (or the running user) can change them.
pub fn prepare_hook_dirs(ctx: &Context, hook_dir: &str) -> Result<()> {
    let base = hook_dir.trim_end_matches('/');
    for dir in [
        base.to_string(),
        format!("{base}/pre-install.d"),
        format!("{base}/post-install.d"),
    ] {
        let path = ctx.root.inside(&dir)?;
        fsutil::create_dirs(&path, 0o755)?;
        fsutil::check_trusted(&path, "hook directory").map_err(|e| anyhow::anyhow!("refusing to register: {e:#}"))?;
        fsutil::check_trusted_if_root(&path, "refusing to register")?;
    }
    Ok(())
}

/// Saves a hook script about to be replaced into the state directory (0600), never beside it
/// where a run-parts loop would execute it.
pub fn save_replaced(ctx: &Context, path: &Path) -> Result<PathBuf> {
    let dir = ctx.state.backups_dir();
    fsutil::create_private_dir(&dir)?;
    let bytes = fsutil::read_bounded(path)?;
    let rel = path.strip_prefix(ctx.root.dir()).unwrap_or(path);
    let name: String = rel.display().to_string().trim_start_matches('/').replace('/', "_");
    let mut target = dir.join(format!("{name}.{}", fsutil::stamp()));
    let mut n = 1;
    while std::fs::symlink_metadata(&target).is_ok() {
        target = dir.join(format!("{name}.{}.{n}", fsutil::stamp()));
        n += 1;
    }
    fsutil::write_private(&target, &bytes)?;
    Ok(target)
}
