//! `register` and `unregister` on sandbox roots: the record they keep, the binary they bake into
//! the hooks, the trust they require of hook directories and of the binary, the baseline they
//! take only when due, and the boot guard keeping the newest snapshot current.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;

use crate::testenv::{copy_tree, testdata, Run, TestEnv};

fn mode(path: &std::path::Path) -> u32 {
    fs::metadata(path).unwrap().permissions().mode() & 0o7777
}

#[test]
fn register_twice_takes_one_baseline_and_remembers_its_hook_dir() {
    let env = TestEnv::from_tree(&testdata().join("iwss-p2-to-p3/before"));
    // A caller's umask of 000 must not leave world-writable hook directories.
    let first = Run::of(unsafe {
        env.cmd_std()
            .args(["--json", "register", "--hook-dir", "/opt/hooks"])
            .pre_exec(|| {
                libc::umask(0);
                Ok(())
            })
    });
    assert_eq!(first.code, 0, "{}", first.text());
    let first = first.json();
    assert_eq!(first["snapshot"]["action"], "taken", "{first:#}");
    assert_eq!(first["hook_dir"], "/opt/hooks");
    for dir in ["opt/hooks", "opt/hooks/pre-install.d", "opt/hooks/post-install.d"] {
        assert_eq!(mode(&env.root.join(dir)), 0o755, "{dir}");
    }
    // The hooks run the binary that registered them, quoted.
    let exe = assert_cmd::cargo::cargo_bin("iwss-keeper").canonicalize().unwrap();
    let hook = fs::read_to_string(env.root.join("opt/hooks/post-install.d/50iwss-keeper")).unwrap();
    assert!(
        hook.contains(&format!("bin=${{IWSS_KEEPER:-'{}'}}", exe.display())),
        "{hook}"
    );
    // Again, without --hook-dir: the same directory, nothing new, no second baseline.
    let second = env.keeper(&["--json", "register"]);
    assert_eq!(second.code, 0, "{}", second.text());
    let second = second.json();
    assert_eq!(second["hook_dir"], "/opt/hooks");
    assert_eq!(second["snapshot"]["action"], "unchanged", "{second:#}");
    assert!(
        second["files"]
            .as_array()
            .unwrap()
            .iter()
            .all(|f| f["action"] == "unchanged"),
        "{second:#}"
    );
    let list = env.keeper(&["--json", "list"]).json();
    assert_eq!(list["snapshots"].as_array().map(Vec::len), Some(1), "{list:#}");
    // status reads the record: the hooks in /opt/hooks are intact.
    let status = env.keeper(&["--json", "status"]).json();
    let files = status["registration"].as_array().unwrap();
    assert!(
        files.iter().any(|f| f["path"]
            .as_str()
            .unwrap()
            .ends_with("opt/hooks/post-install.d/50iwss-keeper")),
        "{status:#}"
    );
    assert!(files.iter().all(|f| f["state"] == "intact"), "{status:#}");
    // unregister without --hook-dir removes them too, and the record.
    let gone = env.keeper(&["--json", "unregister"]);
    assert_eq!(gone.code, 0, "{}", gone.text());
    assert!(!env.root.join("opt/hooks/post-install.d/50iwss-keeper").exists());
    assert!(!env.root.join("opt/hooks/pre-install.d/50iwss-keeper").exists());
    assert!(!env.state.join("registration.json").exists());
}

#[test]
fn a_replaced_hook_is_saved_in_the_state_directory_not_beside_it() {
    let env = TestEnv::from_tree(&testdata().join("iwss-p2-to-p3/before"));
    let hook = env.root.join("usr/iwss/hooks/post-install.d/50iwss-keeper");
    fs::create_dir_all(hook.parent().unwrap()).unwrap();
    fs::write(&hook, "#!/bin/sh\necho an older hook\n").unwrap();
    let run = env.keeper(&["--json", "register"]);
    assert_eq!(run.code, 0, "{}", run.text());
    let report = run.json();
    let saved = report["files"]
        .as_array()
        .unwrap()
        .iter()
        .find_map(|f| f["backup"].as_str())
        .unwrap_or_else(|| panic!("no backup: {report:#}"))
        .to_string();
    assert!(
        saved.starts_with(env.state.join("backups").to_str().unwrap()),
        "{saved}"
    );
    assert_eq!(mode(std::path::Path::new(&saved)), 0o600);
    assert_eq!(fs::read_to_string(&saved).unwrap(), "#!/bin/sh\necho an older hook\n");
    let beside: Vec<_> = fs::read_dir(hook.parent().unwrap())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        beside,
        ["50iwss-keeper"],
        "a run-parts loop would run what else is here"
    );
}

#[test]
fn register_refuses_a_hook_directory_or_binary_others_can_write() {
    let env = TestEnv::from_tree(&testdata().join("iwss-p2-to-p3/before"));
    let dir = env.root.join("usr/iwss/hooks");
    fs::create_dir_all(&dir).unwrap();
    fs::set_permissions(&dir, fs::Permissions::from_mode(0o777)).unwrap();
    let run = env.keeper(&["register"]);
    assert_eq!(run.code, 2, "{}", run.text());
    assert!(
        run.stderr.contains("refusing to register") && run.stderr.contains("group- or world-writable"),
        "{}",
        run.text()
    );
    fs::set_permissions(&dir, fs::Permissions::from_mode(0o755)).unwrap();
    // The binary run from a directory anyone can write (a download directory).
    let open = env.dir.path().join("downloads");
    fs::create_dir_all(&open).unwrap();
    fs::set_permissions(&open, fs::Permissions::from_mode(0o777)).unwrap();
    let copy = open.join("iwss-keeper");
    fs::copy(assert_cmd::cargo::cargo_bin("iwss-keeper"), &copy).unwrap();
    let from_downloads = |env: &TestEnv| {
        Run::of(
            std::process::Command::new(&copy)
                .arg("--root")
                .arg(&env.root)
                .arg("--state-dir")
                .arg(&env.state)
                .arg("register"),
        )
    };
    let run = from_downloads(&env);
    assert_eq!(run.code, 2, "{}", run.text());
    assert!(run.stderr.contains("refusing to register"), "{}", run.text());
    assert!(run.stderr.contains("which others can change"), "{}", run.text());
    assert!(!env.root.join("usr/iwss/hooks/post-install.d/50iwss-keeper").exists());
    // With the packaged binary in place, the hooks run that one.
    let sbin = env.root.join("usr/sbin");
    fs::create_dir_all(&sbin).unwrap();
    fs::copy(assert_cmd::cargo::cargo_bin("iwss-keeper"), sbin.join("iwss-keeper")).unwrap();
    let run = from_downloads(&env);
    assert_eq!(run.code, 0, "{}", run.text());
    assert!(
        run.stderr.contains("the hooks run /usr/sbin/iwss-keeper instead"),
        "{}",
        run.text()
    );
    let hook = fs::read_to_string(env.root.join("usr/iwss/hooks/post-install.d/50iwss-keeper")).unwrap();
    assert!(hook.contains("bin=${IWSS_KEEPER:-'/usr/sbin/iwss-keeper'}"), "{hook}");
    let guard = fs::read_to_string(env.root.join("etc/init.d/iwss-keeper-guard")).unwrap();
    assert!(guard.contains("exec /usr/sbin/iwss-keeper --root "), "{guard}");
}

#[test]
fn register_after_a_hookless_upgrade_says_a_restore_is_owed() {
    let env = TestEnv::from_tree(&testdata().join("iwsva-sp2-to-sp3/before"));
    assert_eq!(env.keeper(&["snapshot"]).code, 0);
    // The upgrade ran without hooks.
    copy_tree(&testdata().join("iwsva-sp2-to-sp3/after"), &env.root);
    let run = env.keeper(&["--json", "register"]);
    assert_eq!(run.code, 0, "{}", run.text());
    let report = run.json();
    assert_eq!(report["snapshot"]["action"], "owed", "{report:#}");
    let text = env.keeper(&["register"]);
    assert!(
        text.stdout.contains("is owed; run `iwss-keeper restore`"),
        "{}",
        text.text()
    );
    // No baseline hides it: the restore still finds the pre-upgrade snapshot.
    let list = env.keeper(&["--json", "list"]).json();
    assert_eq!(list["snapshots"].as_array().map(Vec::len), Some(1), "{list:#}");
    let diff = env.keeper(&["diff"]);
    assert_eq!(diff.code, 1, "{}", diff.text());
}

#[test]
fn the_boot_guard_records_a_same_version_change_so_a_revoked_rule_stays_revoked() {
    let env = TestEnv::from_tree(&testdata().join("iwsva-sp2-to-sp3/before"));
    assert_eq!(env.keeper(&["snapshot"]).code, 0);
    // The admin revokes one proxy's rule on the same version.
    let script = env.root.join("usr/iwss/iwsvafw.sh");
    let text = fs::read_to_string(&script).unwrap();
    let revoked = "    IPTABLE ipv4 -A INPUT -p tcp -s 192.0.2.1 -j ACCEPT\n";
    assert!(text.contains(revoked));
    fs::write(&script, text.replace(revoked, "")).unwrap();
    let boot = env.keeper(&["hook", "boot"]);
    assert_eq!(boot.code, 0, "{}", boot.text());
    assert!(
        env.log().contains("boot (files changed on the same version)"),
        "{}",
        env.log()
    );
    let again = env.keeper(&["hook", "boot"]);
    assert_eq!(again.code, 0);
    assert!(env.log().contains("boot guard: nothing to do"), "{}", env.log());
    // Then an upgrade without hooks: the revoked rule is not owed back.
    copy_tree(&testdata().join("iwsva-sp2-to-sp3/after"), &env.root);
    let diff = env.keeper(&["--json", "diff"]).json();
    let discarded = diff["comparison"]["discarded"].as_array().unwrap();
    assert!(
        discarded
            .iter()
            .all(|d| !d["text"].as_str().unwrap().contains("192.0.2.1 ")),
        "{diff:#}"
    );
    assert!(
        discarded
            .iter()
            .any(|d| d["text"].as_str().unwrap().contains("198.51.100.0/24")),
        "{diff:#}"
    );
}

#[test]
fn a_failed_pre_install_does_not_make_the_boot_guard_restore_a_revoked_rule() {
    let env = TestEnv::from_tree(&testdata().join("iwsva-sp2-to-sp3/before"));
    assert_eq!(env.keeper(&["snapshot"]).code, 0);
    copy_tree(&testdata().join("iwsva-sp2-to-sp3/after"), &env.root);
    // Handled: restored, and the newest snapshot is at the new version.
    assert_eq!(env.keeper(&["restore", "--no-restart"]).code, 0);
    assert_eq!(env.keeper(&["snapshot", "--label", "handled"]).code, 0);
    // The admin revokes a rule; the boot guard records it.
    let script = env.root.join("usr/iwss/iwsvafw.sh");
    let revoked = "    IPTABLE ipv4 -A INPUT -p tcp -s 192.0.2.1 -j ACCEPT\n";
    fs::write(&script, fs::read_to_string(&script).unwrap().replace(revoked, "")).unwrap();
    assert_eq!(env.keeper(&["hook", "boot"]).code, 0);
    // A pre-install run fails (its marker is left) ...
    fs::write(
        env.state.join("pending.json"),
        r#"{"since":"2026-01-01T00:00:00Z","event":"pre-install","error":"lock","snapshot":null}"#,
    )
    .unwrap();
    // ... and the next boot does not bring the revoked rule back.
    let boot = env.keeper(&["hook", "boot"]);
    assert_eq!(boot.code, 0, "{}", boot.text());
    assert!(
        !fs::read_to_string(&script).unwrap().contains("192.0.2.1 "),
        "{}",
        env.log()
    );
    assert!(!env.state.join("pending.json").exists(), "{}", env.log());
    // Nor does pruning to one snapshot: the newest stays.
    assert_eq!(env.keeper(&["prune", "--keep", "1"]).code, 0);
    assert_eq!(env.keeper(&["hook", "boot"]).code, 0);
    assert!(
        !fs::read_to_string(&script).unwrap().contains("192.0.2.1 "),
        "{}",
        env.log()
    );
}

#[test]
fn unregister_with_another_hook_dir_than_registered_changes_nothing() {
    let env = TestEnv::from_tree(&testdata().join("iwss-p2-to-p3/before"));
    assert_eq!(env.keeper(&["register", "--hook-dir", "/opt/hooks"]).code, 0);
    let before = env.files();
    let run = env.keeper(&["unregister", "--hook-dir", "/usr/iwss/hooks"]);
    assert_eq!(run.code, 2, "{}", run.text());
    assert!(
        run.stderr.contains("registered with hook directory /opt/hooks"),
        "{}",
        run.text()
    );
    assert_eq!(env.files(), before);
    assert!(env.state.join("registration.json").exists());
}
