//! Extended attributes (the SELinux label, ACLs, `user.*`), kept when a file is replaced.

use std::path::Path;

use anyhow::{Context, Result};

/// A byte count a system call returned, or its error (`errno`) when negative.
fn size(ret: isize) -> std::io::Result<usize> {
    usize::try_from(ret).map_err(|_| std::io::Error::last_os_error())
}

/// The names of a file's extended attributes (without following a link).
fn xattr_names(path: &Path) -> Result<Vec<std::ffi::CString>> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(path.as_os_str().as_bytes())?;
    let failed = || format!("cannot list the extended attributes of {}", path.display());
    // SAFETY: llistxattr with a NUL-terminated path and a buffer of the given size (0: ask size).
    let wanted = match size(unsafe { libc::llistxattr(c.as_ptr(), std::ptr::null_mut(), 0) }) {
        // A file system without extended attributes has none to keep.
        Err(e) if e.raw_os_error() == Some(libc::ENOTSUP) => return Ok(Vec::new()),
        other => other.with_context(failed)?,
    };
    let mut buf = vec![0u8; wanted];
    // SAFETY: as above, with a buffer of `wanted` bytes.
    let got = size(unsafe { libc::llistxattr(c.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) }).with_context(failed)?;
    buf.truncate(got);
    Ok(buf
        .split(|b| *b == 0)
        .filter(|n| !n.is_empty())
        .filter_map(|n| std::ffi::CString::new(n).ok())
        .collect())
}

/// Copies every extended attribute of `from` onto `to` (the SELinux label, ACLs, `user.*`).
pub fn copy_xattrs(from: &Path, to: &Path) -> Result<()> {
    use std::os::unix::ffi::OsStrExt;
    let names = xattr_names(from)?;
    if names.is_empty() {
        return Ok(());
    }
    let src = std::ffi::CString::new(from.as_os_str().as_bytes())?;
    let dst = std::ffi::CString::new(to.as_os_str().as_bytes())?;
    for name in names {
        let shown = name.to_string_lossy().into_owned();
        let unread = || format!("cannot read attribute {shown} of {}", from.display());
        // SAFETY: lgetxattr/lsetxattr with NUL-terminated strings and buffers of known size.
        let wanted = size(unsafe { libc::lgetxattr(src.as_ptr(), name.as_ptr(), std::ptr::null_mut(), 0) })
            .with_context(unread)?;
        let mut value = vec![0u8; wanted];
        let got = size(unsafe { libc::lgetxattr(src.as_ptr(), name.as_ptr(), value.as_mut_ptr().cast(), value.len()) })
            .with_context(unread)?;
        let set = unsafe { libc::lsetxattr(dst.as_ptr(), name.as_ptr(), value.as_ptr().cast(), got, 0) };
        if set < 0 {
            return Err(std::io::Error::last_os_error())
                .with_context(|| format!("cannot keep attribute {shown} of {} on its replacement", from.display()));
        }
    }
    Ok(())
}
