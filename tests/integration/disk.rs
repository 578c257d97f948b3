//! Full disks and read-only places, for real: a tiny `tmpfs` and a read-only bind mount inside a
//! private mount namespace (`unshare -m`, as root). Restore and snapshot fail with a clear
//! message and change nothing.

use std::collections::BTreeMap;
use std::process::Command;

use crate::testenv::{require, require_netns, sections, testdata, TestEnv};

/// Runs `script` in a fresh mount namespace with a 512 KiB tmpfs at `$DISK` holding a copy of
/// the upgraded root at `$DISK/root`, its file hashes in `$SCRATCH/before` and a roomy state
/// directory at `$SCRATCH/state` (`sums` hashes the root's files, the tool's own log and lock left
/// out).
/// Returns the `@@name` sections of its output.
fn on_small_disk(env: &TestEnv, case: &str, script: &str) -> BTreeMap<String, String> {
    let setup = r#"
set -u
mount --make-rprivate / 2>/dev/null || true
mount -t tmpfs -o size=512k tmpfs "$DISK"
mkdir -p "$DISK/root/bin" "$DISK/state"
cp -a "$AFTER"/. "$DISK/root/"
ln -s /bin/bash "$DISK/root/bin/bash"
# The root's lock exists on an appliance where the tool ran before.
mkdir -p -m 0700 "$DISK/root/var/lib/iwss-keeper" && echo 1 > "$DISK/root/var/lib/iwss-keeper/lock"
sums() { (cd "$DISK/root" && find . -type f -not -path './var/log/*' -not -path './var/lib/iwss-keeper/*' -print0 | sort -z | xargs -0 sha256sum); }
mkdir -p "$SCRATCH/state"
sums > "$SCRATCH/before"
"#;
    let disk = env.dir.path().join("disk");
    std::fs::create_dir_all(&disk).unwrap();
    // Scratch space outside the small disk: the hashes from before, a state dir that has room.
    let scratch = env.dir.path().join("scratch");
    let out = Command::new("unshare")
        .args(["-m", "bash", "-c", &format!("{setup}\n{script}")])
        .env("DISK", &disk)
        .env("SCRATCH", &scratch)
        .env("AFTER", testdata().join(case).join("after"))
        .env("FROM", testdata().join(case).join("before"))
        .env("BIN", assert_cmd::cargo::cargo_bin("iwss-keeper"))
        .output()
        .unwrap();
    sections(&out)
}

#[test]
fn a_full_disk_fails_cleanly_and_changes_nothing() {
    if !require_netns("a_full_disk_fails_cleanly_and_changes_nothing") {
        return;
    }
    let env = TestEnv::new();
    let out = on_small_disk(
        &env,
        "iwsva-sp1-to-sp2",
        r#"
dd if=/dev/zero of="$DISK/fill" bs=4k 2>/dev/null
echo "@@restore"; "$BIN" --root "$DISK/root" --state-dir "$SCRATCH/state" restore --no-restart --from "$FROM" 2>&1; echo "rc=$?"
echo "@@same"; sums | cmp - "$SCRATCH/before" && echo same
echo "@@temps"; find "$DISK/root" -name '*.iwss-keeper-*' -o -name '*.org.*'
echo "@@snapshot"; "$BIN" --root "$DISK/root" --state-dir "$DISK/state" snapshot 2>&1; echo "rc=$?"
echo "@@snapshots"; ls -A "$DISK/state/snapshots" 2>/dev/null
"#,
    );
    let restore = &out["restore"];
    assert!(restore.ends_with("rc=2\n"), "{restore}");
    assert!(restore.contains("No space left on device"), "{restore}");
    assert!(
        restore.contains("/usr/iwss/iwsvafw.sh"),
        "the message names the file: {restore}"
    );
    assert_eq!(out["same"], "same\n", "files changed on a full disk");
    assert_eq!(
        out.get("temps").map(String::as_str).unwrap_or(""),
        "",
        "leftovers on a full disk"
    );
    let snapshot = &out["snapshot"];
    assert!(
        snapshot.ends_with("rc=2\n") && snapshot.contains("No space left on device"),
        "{snapshot}"
    );
    assert_eq!(
        out.get("snapshots").map(String::as_str).unwrap_or(""),
        "",
        "a half snapshot is visible"
    );
}

#[test]
fn a_read_only_root_and_state_fail_cleanly() {
    if !require_netns("a_read_only_root_and_state_fail_cleanly") {
        return;
    }
    let env = TestEnv::new();
    let out = on_small_disk(
        &env,
        "iwsva-sp1-to-sp2",
        r#"
mount --bind "$DISK" "$DISK" && mount -o remount,bind,ro "$DISK"
echo "@@restore"; "$BIN" --root "$DISK/root" --state-dir "$SCRATCH/state" restore --no-restart --from "$FROM" 2>&1; echo "rc=$?"
echo "@@same"; sums | cmp - "$SCRATCH/before" && echo same
echo "@@snapshot"; "$BIN" --root "$DISK/root" --state-dir "$DISK/state" snapshot 2>&1; echo "rc=$?"
"#,
    );
    let restore = &out["restore"];
    assert!(restore.ends_with("rc=2\n"), "{restore}");
    assert!(restore.contains("Read-only file system"), "{restore}");
    assert_eq!(out["same"], "same\n", "files changed on a read-only root");
    let snapshot = &out["snapshot"];
    assert!(
        snapshot.ends_with("rc=2\n") && snapshot.contains("Read-only file system"),
        "{snapshot}"
    );
}

#[test]
fn undo_on_a_full_disk_links_the_backup_back() {
    if !require_netns("undo_on_a_full_disk_links_the_backup_back") {
        return;
    }
    let env = TestEnv::new();
    // Two free pages: the first file's backup and new copy fit (its old copy is freed by the
    // rename), the second file's backup takes the last page and its new copy fails. Putting the
    // first file back by writing a copy would need a page; linking its backup needs none. The
    // log lives on another mount so it takes no page.
    let out = on_small_disk(
        &env,
        "iwsva-sp1-to-sp2",
        r#"
mkdir -p "$DISK/root/var/log" "$SCRATCH/log" && mount --bind "$SCRATCH/log" "$DISK/root/var/log"
i=0; while head -c 4096 /dev/zero > "$DISK/f$i" 2>/dev/null; do i=$((i+1)); done
rm -f "$DISK/f$i" "$DISK/f0" "$DISK/f1"
echo "@@restore"; "$BIN" --root "$DISK/root" --state-dir "$SCRATCH/state" restore --no-restart --from "$FROM" 2>&1; echo "rc=$?"
echo "@@script"; cmp "$DISK/root/usr/iwss/iwsvafw.sh" "$AFTER/usr/iwss/iwsvafw.sh" && echo same
echo "@@sysctl"; cmp "$DISK/root/etc/sysctl.conf" "$AFTER/etc/sysctl.conf" && echo same
"#,
    );
    let restore = &out["restore"];
    assert!(restore.ends_with("rc=2\n"), "{restore}");
    assert!(restore.contains("No space left on device"), "{restore}");
    assert!(restore.contains("written back by linking its backup"), "{restore}");
    assert!(!restore.contains("could not be put back"), "{restore}");
    assert_eq!(out["script"], "same\n", "{restore}");
    assert_eq!(out["sysctl"], "same\n", "{restore}");
}

#[test]
fn a_restore_on_tmpfs_keeps_user_extended_attributes() {
    if !require_netns("a_restore_on_tmpfs_keeps_user_extended_attributes") {
        return;
    }
    let env = TestEnv::new();
    // tmpfs has `user.*` attributes since Linux 6.6; the run says when this kernel has none.
    let out = on_small_disk(
        &env,
        "iwsva-sp1-to-sp2",
        r#"
script="$DISK/root/usr/iwss/iwsvafw.sh"
echo "@@set"; python3 -c 'import os,sys; os.setxattr(sys.argv[1], "user.keeper", b"label")' "$script" 2>&1 && echo set
echo "@@restore"; "$BIN" --root "$DISK/root" --state-dir "$SCRATCH/state" restore --no-restart --from "$FROM" 2>&1; echo "rc=$?"
echo "@@changed"; cmp -s "$script" "$AFTER/usr/iwss/iwsvafw.sh" || echo changed
echo "@@attr"; python3 -c 'import os,sys; print(os.getxattr(sys.argv[1], "user.keeper").decode())' "$script" 2>&1
"#,
    );
    let why = (out["set"] != "set\n").then(|| format!("no user attributes on tmpfs here: {}", out["set"].trim()));
    if !require("a_restore_on_tmpfs_keeps_user_extended_attributes", why) {
        return;
    }
    assert!(out["restore"].ends_with("rc=0\n"), "{}", out["restore"]);
    assert_eq!(out["changed"], "changed\n", "the restore did not rewrite the script");
    assert_eq!(out["attr"], "label\n", "{}", out["restore"]);
}
