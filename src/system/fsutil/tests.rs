//! Tests of the safe file operations: extended attributes, hard links, modes, FIFOs, backups,
//! links.

use super::*;

fn set_xattr(path: &Path, name: &str, value: &[u8]) -> bool {
    use std::os::unix::ffi::OsStrExt;
    let p = std::ffi::CString::new(path.as_os_str().as_bytes()).unwrap();
    let n = std::ffi::CString::new(name).unwrap();
    // SAFETY: NUL-terminated strings and a value of known size.
    unsafe { libc::lsetxattr(p.as_ptr(), n.as_ptr(), value.as_ptr().cast(), value.len(), 0) == 0 }
}

fn get_xattr(path: &Path, name: &str) -> Option<Vec<u8>> {
    use std::os::unix::ffi::OsStrExt;
    let p = std::ffi::CString::new(path.as_os_str().as_bytes()).unwrap();
    let n = std::ffi::CString::new(name).unwrap();
    let mut buf = vec![0u8; 256];
    // SAFETY: as above, into a buffer of known size.
    let got = unsafe { libc::lgetxattr(p.as_ptr(), n.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
    (got >= 0).then(|| buf[..got as usize].to_vec())
}

/// On a file system with user attributes (ext4, tmpfs on Linux 6.6+); says so when there is none.
#[test]
fn replacing_a_file_keeps_its_extended_attributes() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("iwsvafw.sh");
    fs::write(&p, b"old\n").unwrap();
    if !set_xattr(&p, "user.iwss-keeper-test", b"label") {
        use std::io::Write as _;
        let _ = writeln!(
            std::io::stderr(),
            "SKIPPED xattr check: no user attributes on {}",
            dir.path().display()
        );
        return;
    }
    let owner = Owner::of(&fs::metadata(&p).unwrap());
    atomic_write(&p, b"new\n", owner).unwrap();
    assert_eq!(fs::read(&p).unwrap(), b"new\n");
    assert_eq!(get_xattr(&p, "user.iwss-keeper-test").as_deref(), Some(&b"label"[..]));
}

#[test]
fn a_file_with_hard_links_is_not_replaced() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("sysctl.conf");
    fs::write(&p, b"old\n").unwrap();
    fs::hard_link(&p, dir.path().join("other-name")).unwrap();
    let owner = Owner::of(&fs::metadata(&p).unwrap());
    let err = atomic_write(&p, b"new\n", owner).unwrap_err();
    assert!(format!("{err}").contains("has 2 hard links"), "{err}");
    assert_eq!(fs::read(dir.path().join("other-name")).unwrap(), b"old\n");
}

#[test]
fn atomic_write_keeps_mode_and_leaves_no_temp() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("f.sh");
    fs::write(&p, b"old").unwrap();
    fs::set_permissions(&p, fs::Permissions::from_mode(0o750)).unwrap();
    let owner = Owner::of(&fs::metadata(&p).unwrap());
    atomic_write(&p, b"new", owner).unwrap();
    assert_eq!(fs::read(&p).unwrap(), b"new");
    assert_eq!(fs::metadata(&p).unwrap().mode() & 0o7777, 0o750);
    assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
}

#[test]
fn fifos_and_devices_are_refused_without_blocking() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("version");
    let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
    // SAFETY: a NUL-terminated path and a mode; no memory is shared.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
    let e = read_bounded(&fifo).unwrap_err();
    assert!(format!("{e:#}").contains("is not a regular file"), "{e:#}");
    let e = read_bounded(Path::new("/dev/zero")).unwrap_err();
    assert!(format!("{e:#}").contains("is not a regular file"), "{e:#}");
}

#[test]
fn backups_never_overwrite() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("sysctl.conf");
    fs::write(&p, b"one").unwrap();
    let a = backup(&p, "X").unwrap();
    fs::write(&p, b"two").unwrap();
    let b = backup(&p, "X").unwrap();
    assert_ne!(a, b);
    assert_eq!(fs::read(a).unwrap(), b"one");
    assert_eq!(fs::read(b).unwrap(), b"two");
}

#[test]
fn symlinks_are_not_written_through() {
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("target");
    fs::write(&target, b"keep").unwrap();
    let link = dir.path().join("link");
    std::os::unix::fs::symlink(&target, &link).unwrap();
    assert!(atomic_write(
        &link,
        b"x",
        Owner {
            mode: 0o644,
            uid: 0,
            gid: 0
        }
    )
    .is_err());
    assert_eq!(fs::read(&target).unwrap(), b"keep");
}
