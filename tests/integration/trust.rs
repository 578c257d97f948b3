//! Refusing instead of guessing, and trusting nothing an unprivileged user can touch: snapshot
//! references, versions, missing or odd files, untrusted directories and programs, the
//! environment children get, the log file.

use std::fs;
use std::os::unix::fs::PermissionsExt;

use crate::testenv::{copy_tree, is_root, require, require_netns, testdata, Run, TestEnv, Upgrade};

fn upgraded(case: &str) -> TestEnv {
    let env = TestEnv::from_tree(&testdata().join(case).join("before"));
    assert_eq!(env.keeper(&["snapshot"]).code, 0);
    copy_tree(&testdata().join(case).join("after"), &env.root);
    env
}

#[test]
fn an_id_is_never_a_directory_in_the_working_directory() {
    let env = upgraded("iwsva-sp2-to-sp3");
    // A root tree planted under the name an admin might type as an id.
    let cwd = env.dir.path().join("cwd");
    copy_tree(&testdata().join("iwsva-sp2-to-sp3/before"), &cwd.join("planted"));
    let run = Run::of(
        env.cmd_std()
            .current_dir(&cwd)
            .args(["restore", "--no-restart", "--from", "planted"]),
    );
    assert_eq!(run.code, 2, "{}", run.text());
    assert!(run.stderr.contains("no snapshot \"planted\""), "{}", run.text());
    let bad = Run::of(env.cmd_std().args(["diff", "../x"]));
    assert_eq!(bad.code, 2, "{}", bad.text());
    let bad = env.keeper(&["diff", "a b"]);
    assert!(bad.stderr.contains("is not a snapshot id"), "{}", bad.text());
}

#[test]
fn unknown_versions_product_switches_and_downgrades_are_refused() {
    let env = upgraded("iwsva-sp2-to-sp3");
    let version = env.root.join("usr/iwss/version");
    let untouched = env.files();
    fs::write(&version, "IWSVA 7.0 Build 1000\n").unwrap();
    let run = env.keeper(&["restore", "--no-restart"]);
    assert_eq!(run.code, 2, "{}", run.text());
    assert!(
        run.stderr
            .contains("IWSVA 7.0 Build 1000 is not a version this tool knows"),
        "{}",
        run.text()
    );
    fs::write(&version, "IWSS 6.5 Patch 3 Build 1406\n").unwrap();
    let run = env.keeper(&["restore", "--no-restart"]);
    assert_eq!(run.code, 2, "{}", run.text());
    assert!(run.stderr.contains("a product switch"), "{}", run.text());
    fs::write(&version, "IWSVA 6.5 SP1 Build 1422\n").unwrap();
    let run = env.keeper(&["restore", "--no-restart"]);
    assert_eq!(run.code, 2, "{}", run.text());
    assert!(
        run.stderr.contains("a downgrade, not an upgrade; nothing was changed"),
        "{}",
        run.text()
    );
    fs::write(
        &version,
        fs::read(testdata().join("iwsva-sp2-to-sp3/after/usr/iwss/version")).unwrap(),
    )
    .unwrap();
    assert_eq!(env.files(), untouched);
}

#[test]
fn a_missing_or_odd_managed_file_is_an_error_naming_it() {
    let env = upgraded("iwsva-sp2-to-sp3");
    let script = env.root.join("usr/iwss/iwsvafw.sh");
    let saved = fs::read(&script).unwrap();
    fs::remove_file(&script).unwrap();
    let run = env.keeper(&["restore", "--no-restart"]);
    assert_eq!(run.code, 2, "{}", run.text());
    assert!(
        run.stderr.contains("usr/iwss/iwsvafw.sh: no firewall script") && run.stderr.contains("\"no rules\""),
        "{}",
        run.text()
    );
    fs::create_dir(&script).unwrap();
    let run = env.keeper(&["diff"]);
    assert_eq!(run.code, 2, "{}", run.text());
    assert!(
        run.stderr.contains("is not a regular file (a directory)"),
        "{}",
        run.text()
    );
    fs::remove_dir(&script).unwrap();
    fs::write(&script, saved).unwrap();
    // A sysctl file is read as procps and systemd read it, NUL bytes and all (each line a C
    // string); one the tool cannot read makes the keys it could set "cannot tell", naming it,
    // and the rest of the run goes on.
    let conf = env.root.join("etc/sysctl.conf");
    fs::write(&conf, b"net.ipv4.tcp_rfc1337 = 1\n\0\x01\x02").unwrap();
    let run = env.keeper(&["--json", "diff"]);
    assert_eq!(run.code, 1, "{}", run.text());
    assert_eq!(
        run.json()["comparison"]["sysctl"][0]["after"]["value"],
        "1",
        "{}",
        run.text()
    );
    fs::remove_file(&conf).unwrap();
    let made = std::process::Command::new("mkfifo").arg(&conf).status().unwrap();
    assert!(made.success());
    let run = env.keeper(&["--json", "diff"]);
    assert_eq!(run.code, 1, "{}", run.text());
    let why = run.json()["comparison"]["sysctl"][0]["after"]["unknown"].clone();
    assert!(
        why.as_str().is_some_and(|w| w.contains("etc/sysctl.conf is a FIFO")),
        "{}",
        run.text()
    );
}

#[test]
fn the_log_is_never_written_through_a_link() {
    let env = TestEnv::from_tree(&testdata().join("iwsva-sp2-to-sp3/before"));
    let victim = env.dir.path().join("victim");
    fs::write(&victim, "untouched\n").unwrap();
    fs::create_dir_all(env.root.join("var/log")).unwrap();
    std::os::unix::fs::symlink(&victim, env.root.join("var/log/iwss-keeper.log")).unwrap();
    let run = env.keeper(&["snapshot"]);
    assert_eq!(run.code, 0, "{}", run.text());
    assert!(run.stderr.contains("cannot log to"), "{}", run.text());
    assert_eq!(fs::read_to_string(&victim).unwrap(), "untouched\n");
}

#[test]
fn as_root_directories_and_programs_others_can_write_are_refused() {
    if !require(
        "as_root_directories_and_programs_others_can_write_are_refused",
        (!is_root()).then(|| "needs root: the checks apply when the tool runs as root".to_string()),
    ) {
        return;
    }
    let env = upgraded("iwsva-sp2-to-sp3");
    let snapshots = env.state.join("snapshots");
    fs::set_permissions(&snapshots, fs::Permissions::from_mode(0o777)).unwrap();
    let run = env.keeper(&["diff"]);
    assert_eq!(run.code, 2, "{}", run.text());
    assert!(
        run.stderr.contains("state directory") && run.stderr.contains("refusing it"),
        "{}",
        run.text()
    );
    fs::set_permissions(&snapshots, fs::Permissions::from_mode(0o700)).unwrap();
    // A tree named on the command line, in a directory anyone can write.
    let open = env.dir.path().join("open");
    copy_tree(&testdata().join("iwsva-sp2-to-sp3/before"), &open.join("tree"));
    fs::set_permissions(&open, fs::Permissions::from_mode(0o777)).unwrap();
    let run = env.keeper(&["diff", open.join("tree").to_str().unwrap()]);
    assert_eq!(run.code, 2, "{}", run.text());
    assert!(run.stderr.contains("which others can change"), "{}", run.text());
    // The root's bash in a directory anyone can write: not run, the dry run fails.
    fs::set_permissions(env.root.join("bin"), fs::Permissions::from_mode(0o777)).unwrap();
    let run = env.keeper(&["restore", "--dry-run"]);
    assert_eq!(run.code, 2, "{}", run.text());
    assert!(run.stderr.contains("refusing to run"), "{}", run.text());
}

#[test]
fn the_restart_gets_a_clean_environment() {
    if !require_netns("the_restart_gets_a_clean_environment") {
        return;
    }
    let live = Upgrade::of("iwsva-sp3-to-sp3p1").in_netns();
    fs::write(live.env.root.join("etc/init.d/record-env"), "").unwrap();
    let from = testdata().join("iwsva-sp3-to-sp3p1/before");
    let mut cmd = live.ns.command(assert_cmd::cargo::cargo_bin("iwss-keeper"));
    cmd.arg("--root")
        .arg(&live.env.root)
        .arg("--state-dir")
        .arg(&live.env.state)
        .args(["restore", "--from", from.to_str().unwrap()])
        .env("IPT", "/tmp/evil-iptables")
        .env("BASH_FUNC_iptables%%", "() { touch /tmp/pwned; }")
        .current_dir(live.env.dir.path());
    let run = Run::of(&mut cmd);
    assert_eq!(run.code, 0, "{}", run.text());
    let env = fs::read_to_string(live.env.root.join("var/log/restart-env")).unwrap();
    assert!(!env.contains("IPT=") && !env.contains("BASH_FUNC"), "{env}");
    assert!(env.contains("LANG=C\n") && env.contains("cwd=/\n"), "{env}");
}

#[test]
fn a_snapshot_rewritten_with_fresh_checksums_is_refused() {
    let env = upgraded("iwsva-sp2-to-sp3");
    let key = env.state.join("snapshot.key");
    assert_eq!(fs::metadata(&key).unwrap().permissions().mode() & 0o777, 0o600);
    let dir = fs::read_dir(env.state.join("snapshots"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    // Someone who can write the state directory, but not read the key, plants a rule and
    // recomputes the file's SHA-256 and size in the manifest.
    let file = dir.join("files/usr/iwss/iwsvafw.sh");
    let text = fs::read_to_string(&file).unwrap().replace(
        "    IPTABLE ipv4 -A INPUT -p tcp -s 192.0.2.1 -j ACCEPT\n",
        "    IPTABLE ipv4 -A INPUT -p tcp -s 192.0.2.1 -j ACCEPT\n    IPTABLE ipv4 -A INPUT -p tcp -s 203.0.113.66 -j ACCEPT\n",
    );
    fs::write(&file, &text).unwrap();
    let manifest_path = dir.join("manifest.json");
    let mut manifest: serde_json::Value = serde_json::from_slice(&fs::read(&manifest_path).unwrap()).unwrap();
    for f in manifest["files"].as_array_mut().unwrap() {
        if f["path"] == "/usr/iwss/iwsvafw.sh" {
            use sha2::Digest as _;
            let sum: String = sha2::Sha256::digest(text.as_bytes())
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect();
            f["sha256"] = serde_json::json!(sum);
            f["size"] = serde_json::json!(text.len());
        }
    }
    fs::write(&manifest_path, serde_json::to_vec_pretty(&manifest).unwrap()).unwrap();
    let untouched = env.files();
    let run = env.keeper(&["restore", "--no-restart"]);
    assert_eq!(run.code, 2, "{}", run.text());
    assert!(run.stderr.contains("its HMAC does not match"), "{}", run.text());
    assert_eq!(env.files(), untouched);
    // Without its HMAC (stripped, or from an older version): refused too.
    manifest.as_object_mut().unwrap().remove("hmac");
    fs::write(&manifest_path, serde_json::to_vec_pretty(&manifest).unwrap()).unwrap();
    let run = env.keeper(&["diff"]);
    assert_eq!(run.code, 2, "{}", run.text());
    assert!(run.stderr.contains("carries no HMAC"), "{}", run.text());
}

#[test]
fn a_linked_directory_never_leads_a_restore_out_of_the_root() {
    let env = upgraded("iwsva-sp1-to-sp2");
    // ROOT/etc is a link to a directory outside the root holding a sysctl.conf.
    let outside = env.dir.path().join("outside-etc");
    fs::rename(env.root.join("etc"), &outside).unwrap();
    std::os::unix::fs::symlink(&outside, env.root.join("etc")).unwrap();
    let before = fs::read(outside.join("sysctl.conf")).unwrap();
    let run = env.keeper(&["restore", "--no-restart"]);
    // Read inside the root, the link leads nowhere: no sysctl.conf there, nothing written outside.
    assert_eq!(fs::read(outside.join("sysctl.conf")).unwrap(), before, "{}", run.text());
    let mut names: Vec<String> = fs::read_dir(&outside)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert!(
        names.iter().all(|n| !n.contains(".org.") && !n.contains("iwss-keeper")),
        "{names:?}"
    );
}
