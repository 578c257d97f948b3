//! Extended attributes (the SELinux label, ACLs, `user.*`), kept when a file is replaced.

use std::path::Path;

use anyhow::{Context, Result};

/// The names of a file's extended attributes (without following a link).
fn xattr_names(path: &Path) -> Result<Vec<std::ffi::CString>> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(path.as_os_str().as_bytes())?;
    // SAFETY: llistxattr with a NUL-terminated path and a buffer of the given size (0: ask size).
    let size = unsafe { libc::llistxattr(c.as_ptr(), std::ptr::null_mut(), 0) };
    if size < 0 {
        let e = std::io::Error::last_os_error();
        // A file system without extended attributes has none to keep.
        if e.raw_os_error() == Some(libc::ENOTSUP) {
            return Ok(Vec::new());
        }
        return Err(e).with_context(|| format!("cannot list the extended attributes of {}", path.display()));
    }
    let mut buf = vec![0u8; size as usize];
    // SAFETY: as above, with a buffer of `size` bytes.
    let got = unsafe { libc::llistxattr(c.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
    if got < 0 {
        return Err(std::io::Error::last_os_error())
            .with_context(|| format!("cannot list the extended attributes of {}", path.display()));
    }
    buf.truncate(got as usize);
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
        // SAFETY: lgetxattr/lsetxattr with NUL-terminated strings and buffers of known size.
        let size = unsafe { libc::lgetxattr(src.as_ptr(), name.as_ptr(), std::ptr::null_mut(), 0) };
        if size < 0 {
            return Err(std::io::Error::last_os_error())
                .with_context(|| format!("cannot read attribute {shown} of {}", from.display()));
        }
        let mut value = vec![0u8; size as usize];
        let got = unsafe { libc::lgetxattr(src.as_ptr(), name.as_ptr(), value.as_mut_ptr().cast(), value.len()) };
        if got < 0 {
            return Err(std::io::Error::last_os_error())
                .with_context(|| format!("cannot read attribute {shown} of {}", from.display()));
        }
        let set = unsafe { libc::lsetxattr(dst.as_ptr(), name.as_ptr(), value.as_ptr().cast(), got as usize, 0) };
        if set < 0 {
            return Err(std::io::Error::last_os_error())
                .with_context(|| format!("cannot keep attribute {shown} of {} on its replacement", from.display()));
        }
    }
    Ok(())
}
