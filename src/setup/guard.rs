//! The boot guard: a systemd unit (or a SysV script where there is no systemd) that runs
//! `hook boot`, for upgrades that reboot or never call hooks.

use std::path::{Path, PathBuf};

use anyhow::Result;

use crate::context::Context;
use crate::setup::files::Managed;
use crate::setup::hooks::bakeable;
use crate::system::fsutil;

/// The unit `register` writes where the package has none.
pub const UNIT: &str = "/etc/systemd/system/iwss-keeper-guard.service";
/// Where the RPM puts the boot guard unit; when it is there, `register` only enables it.
pub const PACKAGED_UNIT: &str = "/usr/lib/systemd/system/iwss-keeper-guard.service";
pub const UNIT_LINK: &str = "/etc/systemd/system/multi-user.target.wants/iwss-keeper-guard.service";
pub const SYSV: &str = "/etc/init.d/iwss-keeper-guard";
pub const SYSV_LINKS: [&str; 2] = ["/etc/rc3.d/S99iwss-keeper-guard", "/etc/rc5.d/S99iwss-keeper-guard"];

/// Marks the guard files `register` writes, so `unregister` knows them whatever they run.
pub const MARK: &str = "Installed by `iwss-keeper register`";

/// Whether a link target is one of the guards `register` installs or enables.
pub fn is_guard(target: PathBuf) -> bool {
    [UNIT, PACKAGED_UNIT, SYSV].iter().any(|g| target == Path::new(g))
}

/// The command the guard runs: the binary, with the root when it is not `/`.
fn guard_command(ctx: &Context, binary: &str) -> Result<String> {
    let mut cmd = binary.to_string();
    if !ctx.root.is_host() {
        let root = ctx.root.dir().display().to_string();
        if !bakeable(&root) {
            anyhow::bail!("refusing to register: the root path {root:?} holds characters that would need quoting");
        }
        fsutil::check_trusted_if_root(ctx.root.dir(), "refusing to register")?;
        cmd.push_str(&format!(" --root {root}"));
    }
    cmd.push_str(" hook boot");
    Ok(cmd)
}

/// Whether the root runs systemd (its unit directories exist).
fn has_systemd(ctx: &Context) -> bool {
    ["/usr/lib/systemd/system", "/lib/systemd/system", "/run/systemd/system"]
        .iter()
        .any(|d| ctx.root.path(d).is_dir())
}

/// The guard's files: the link enabling the packaged unit, else a unit of its own and its link,
/// else a SysV script and its run-level links.
pub fn guard_files(ctx: &Context, binary: &str) -> Result<Vec<Managed>> {
    let command = guard_command(ctx, binary)?;
    // The guard stops itself at hook_timeout_secs; systemd gives it a little more.
    let start_timeout = ctx.config.hook_timeout_secs + 30;
    if ctx.root.path(PACKAGED_UNIT).is_file() {
        // The package owns the unit; enabling it is the link `systemctl enable` would make.
        return Ok(vec![Managed::link(ctx, UNIT_LINK, PACKAGED_UNIT)?]);
    }
    if has_systemd(ctx) {
        return Ok(vec![
            Managed::file(ctx, UNIT, unit_text(&command, start_timeout), 0o644)?,
            Managed::link(ctx, UNIT_LINK, UNIT)?,
        ]);
    }
    let mut out = vec![Managed::file(ctx, SYSV, sysv_text(&command), 0o755)?];
    for link in SYSV_LINKS {
        out.push(Managed::link(ctx, link, SYSV)?);
    }
    Ok(out)
}

/// The systemd unit `register` writes where the package has none.
fn unit_text(command: &str, start_timeout: u64) -> String {
    format!(
        "# {MARK}; removed by `iwss-keeper unregister`.\n\
         [Unit]\n\
         Description=iwss-keeper: restore custom settings after an IWSVA/IWSS upgrade\n\
         After=local-fs.target iptables.service\n\n\
         [Service]\n\
         Type=oneshot\n\
         StandardInput=null\n\
         TimeoutStartSec={start_timeout}\n\
         ExecStart={command}\n\n\
         [Install]\n\
         WantedBy=multi-user.target\n"
    )
}

/// The SysV boot script `register` writes where there is no systemd.
fn sysv_text(command: &str) -> String {
    format!(
        "#!/bin/sh\n\
         # {MARK}; removed by `iwss-keeper unregister`.\n\
         # chkconfig: 345 99 01\n\
         # description: restore custom settings after an IWSVA/IWSS upgrade\n\
         case \"$1\" in\n    start) exec {command} </dev/null ;;\n    *) exit 0 ;;\nesac\n"
    )
}
