//! Crash safety: the process is aborted (no unwinding, no cleanup) at every fault point of
//! `restore` and `snapshot`. Every file must then be byte for byte its old or its new version,
//! backups must exist, no half snapshot may be listed, and a second run must finish the job.
//! Fault points exist in debug builds only, which is what `cargo test` builds.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use crate::testenv::{require_netns, testdata, TestEnv, Upgrade};

const FILE_POINTS: [&str; 4] = [
    "apply-after-backup",
    "write-after-temp",
    "write-before-rename",
    "write-after-rename",
];
const SNAPSHOT_POINTS: [&str; 3] = [
    "snapshot-after-files",
    "snapshot-before-rename",
    "snapshot-after-rename",
];

/// Files under the root, temp leftovers (`.NAME.iwss-keeper-*`) reported separately.
fn visible_files(root: &Path) -> (BTreeMap<PathBuf, Vec<u8>>, Vec<PathBuf>) {
    let mut files = BTreeMap::new();
    let mut temps = Vec::new();
    for e in walkdir::WalkDir::new(root).into_iter().map(Result::unwrap) {
        if !e.file_type().is_file() || e.path().starts_with(root.join("var")) {
            continue;
        }
        let rel = e.path().strip_prefix(root).unwrap().to_path_buf();
        if e.file_name().to_string_lossy().contains(".iwss-keeper-") {
            temps.push(rel);
        } else {
            files.insert(rel, fs::read(e.path()).unwrap());
        }
    }
    (files, temps)
}

fn run_with_fault(env: &TestEnv, fault: &str, args: &[&str]) -> std::process::Output {
    env.cmd().env("IWSS_KEEPER_FAULT", fault).args(args).output().unwrap()
}

/// Aborting at each file-writing point of a restore leaves each file old or new, never torn.
#[test]
fn restore_survives_an_abort_at_every_file_point() {
    let case = testdata().join("iwsva-sp1-to-sp2");
    let from = case.join("before").display().to_string();
    let golden = case.join("expected/root");
    for fault in FILE_POINTS {
        let env = TestEnv::from_tree(&case.join("after"));
        let (old, _) = visible_files(&env.root);
        let out = run_with_fault(&env, fault, &["restore", "--from", &from, "--no-restart"]);
        assert_eq!(
            out.status.code(),
            None,
            "{fault}: expected an abort, got {:?}",
            out.status
        );
        assert!(String::from_utf8_lossy(&out.stderr).contains(&format!("fault point {fault}")));
        let (now, _) = visible_files(&env.root);
        for (path, bytes) in &now {
            let name = path.to_string_lossy();
            if let Some(pos) = name.find(".org.") {
                assert_eq!(Some(bytes), old.get(Path::new(&name[..pos])), "{fault}: backup {name}");
                continue;
            }
            let new = fs::read(golden.join(path)).ok();
            assert!(
                Some(bytes) == old.get(path) || Some(bytes) == new.as_ref(),
                "{fault}: {name} is neither the old nor the new version"
            );
        }
        assert!(
            now.keys().any(|p| p.to_string_lossy().contains(".org.")),
            "{fault}: no backup before the first change"
        );
        // The second run finishes the job and clears what the crash left.
        let (text, code) = env.run(&["restore", "--from", &from, "--no-restart"]);
        assert_eq!(code, 0, "{fault}: {text}");
        let (done, temps) = visible_files(&env.root);
        assert!(temps.is_empty(), "{fault}: temp files left: {temps:?}");
        for entry in walkdir::WalkDir::new(&golden).into_iter().map(Result::unwrap) {
            if entry.file_type().is_file() {
                let rel = entry.path().strip_prefix(&golden).unwrap();
                assert_eq!(
                    done.get(rel),
                    Some(&fs::read(entry.path()).unwrap()),
                    "{fault}: {}",
                    rel.display()
                );
            }
        }
    }
}

/// Aborting while a snapshot is written never leaves a half snapshot that `list` shows or a
/// restore could use; the next snapshot clears the leftovers.
#[test]
fn snapshot_survives_an_abort_at_every_point() {
    for fault in SNAPSHOT_POINTS {
        let env = TestEnv::from_tree(&testdata().join("iwsva-sp2-to-sp3/before"));
        let out = run_with_fault(&env, fault, &["snapshot"]);
        assert_eq!(out.status.code(), None, "{fault}: expected an abort");
        let list = env.cmd().args(["--json", "list"]).output().unwrap();
        assert!(list.status.success(), "{list:?}");
        let listed: serde_json::Value = serde_json::from_slice(&list.stdout).unwrap();
        let ids: Vec<String> = listed["snapshots"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["id"].as_str().unwrap().to_string())
            .collect();
        let complete = fault == "snapshot-after-rename";
        assert_eq!(ids.len(), usize::from(complete), "{fault}: {ids:?}");
        for id in &ids {
            // A listed snapshot is whole: it loads with every checksum right.
            assert_eq!(env.run(&["show", id]).1, 0, "{fault}: {id}");
        }
        assert_eq!(env.run(&["snapshot"]).1, 0);
        let leftovers: Vec<_> = fs::read_dir(env.state.join("snapshots"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with('.'))
            .collect();
        assert!(leftovers.is_empty(), "{fault}: {leftovers:?}");
    }
}

/// Aborting just before or after the firewall restart: files are written but the kernel may not
/// hold the rules. The next run finishes: restarts, verifies, and the rules are loaded.
#[test]
fn restart_points_are_finished_by_the_next_run() {
    if !require_netns("restart_points_are_finished_by_the_next_run") {
        return;
    }
    for fault in ["restart-before", "restart-after"] {
        let live = Upgrade::of("iwsva-sp3-to-sp3p1").in_netns();
        let from = testdata().join("iwsva-sp3-to-sp3p1/before");
        let args = ["restore", "--from", from.to_str().unwrap()];
        let crash = live.keeper_on(&live.env.root, Some(fault), &args);
        let loaded_after_crash = live.ns.iptables_s().matches("192.0.2.1").count();
        let second = live.keeper(&args);
        let mut out = std::collections::BTreeMap::new();
        out.insert("crash", crash.code.to_string());
        out.insert("loaded-after-crash", loaded_after_crash.to_string());
        out.insert(
            "second",
            format!("{}{}rc={}\n", second.stdout, second.stderr, second.code),
        );
        out.insert("S", live.ns.iptables_s());
        let env = &live.env;
        assert_ne!(out["crash"].trim(), "0", "{fault}: the first run should have aborted");
        let second = &out["second"];
        assert!(second.ends_with("rc=0\n"), "{fault}: {second}");
        assert!(second.contains("resuming: an earlier run stopped"), "{fault}: {second}");
        assert!(
            second.contains("  loaded (2):\n    ipv4 -A INPUT -s 192.0.2.1/32 -p tcp -j ACCEPT\n"),
            "{fault}: {second}"
        );
        assert!(
            out["S"].contains("-A INPUT -s 192.0.2.1/32 -p tcp -j ACCEPT\n"),
            "{fault}: {}",
            out["S"]
        );
        assert!(!env.state.join("activation-pending").exists(), "{fault}: journal left");
    }
}

/// Every fault point the tool defines is exercised above.
#[test]
fn every_fault_point_is_tested() {
    let mut tested: Vec<&str> = FILE_POINTS.iter().chain(&SNAPSHOT_POINTS).copied().collect();
    tested.extend(["restart-before", "restart-after"]);
    tested.sort();
    let mut defined = iwss_keeper::fault::POINTS.to_vec();
    defined.sort();
    assert_eq!(tested, defined);
}
