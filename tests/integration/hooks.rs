//! Hooks end to end: `register` on a sandbox root, then a fake upgrade package that runs the
//! registered hooks (or not), checked through the files, the report, the log and `status`.

use std::fs;
use std::os::unix::io::AsRawFd;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use crate::testenv::{require_netns, testdata, Live, Run, TestEnv, Upgrade};

fn bin() -> std::path::PathBuf {
    assert_cmd::cargo::cargo_bin("iwss-keeper")
}

/// Runs a command: stdout, stderr and the exit code (-1 when killed).
fn outcome(cmd: &mut Command) -> (String, String, i32) {
    let run = Run::of(cmd);
    (run.stdout, run.stderr, run.code)
}

/// Runs the binary with only `--root`, as the hooks and the guard do.
fn keeper(env: &TestEnv, args: &[&str]) -> (String, String, i32) {
    outcome(Command::new(bin()).arg("--root").arg(&env.root).args(args))
}

/// Runs the fake upgrade package with the hook environment set.
fn fake_upgrade(env: &TestEnv, new: &Path, extra: &[&str]) -> (String, String, i32) {
    outcome(
        Command::new("sh")
            .arg(testdata().join("fake-upgrade.sh"))
            .arg(&env.root)
            .arg("/usr/iwss/hooks")
            .arg(new)
            .args(extra)
            .env("IWSS_KEEPER", bin())
            .env("IWSS_KEEPER_ROOT", &env.root),
    )
}

/// Registers the hooks on the scenario's root, then runs the fake upgrade package to `new`.
fn register_and_upgrade(live: &Live, new: &str, extra: &[&str]) -> (Run, Run) {
    let register = live.keeper(&["register"]);
    assert_eq!(register.code, 0, "{}", register.text());
    (register, live.fake_upgrade(new, extra))
}

#[test]
fn iwsva_sp2_to_sp3_upgrade_restores_through_the_hooks() {
    if !require_netns("iwsva_sp2_to_sp3_upgrade_restores_through_the_hooks") {
        return;
    }
    let live = Upgrade::before("iwsva-sp2-to-sp3").with_default_state().in_netns();
    let (register, upgrade) = register_and_upgrade(&live, "iwsva-sp2-to-sp3/after", &[]);
    assert!(register.stdout.contains("installed  "), "{}", register.text());
    // Hooks keep stdout quiet: the package's own line only.
    assert_eq!(
        (upgrade.stdout.as_str(), upgrade.code),
        ("upgrade done\n", 0),
        "{}",
        upgrade.stderr
    );
    let golden = fs::read(testdata().join("iwsva-sp2-to-sp3/expected/root/usr/iwss/iwsvafw.sh")).unwrap();
    assert_eq!(fs::read(live.env.root.join("usr/iwss/iwsvafw.sh")).unwrap(), golden);
    let s = live.ns.iptables_s();
    assert!(s.contains("-A INPUT -s 192.0.2.1/32 -p tcp -j ACCEPT\n"), "{s}");
    let log = live.env.log();
    for needle in [
        "hook pre-install started",
        "3 discarded rule(s): 2 to restore, 1 skipped",
        "sysctl net.ipv4.tcp_rfc1337: already 0: the new version's default covers it",
        "firewall restart: `/usr/iwss/iwsvafw.sh restart` exited 0",
        "verify: 2 rule(s) checked, 0 not loaded",
        "hook post-install done",
    ] {
        assert!(log.contains(needle), "log lacks {needle:?}:\n{log}");
    }
    // One line per decision: per-rule detail is debug, not in the log.
    for detail in ["discarded rule, restore:", "verify ipv4", "  loaded  ipv4"] {
        assert!(!log.contains(detail), "per-rule line {detail:?} in the log:\n{log}");
    }
    let status = live.keeper(&["--json", "status"]);
    assert_eq!(status.code, 0, "{}", status.text());
    let status = status.json();
    assert_eq!(status["ok"], true);
    let registration = status["registration"].as_array().unwrap();
    assert_eq!(registration.len(), 5);
    assert!(registration.iter().all(|f| f["state"] == "intact"), "{registration:#?}");
}

#[test]
fn boot_guard_catches_an_upgrade_that_never_calls_hooks() {
    if !require_netns("boot_guard_catches_an_upgrade_that_never_calls_hooks") {
        return;
    }
    // The SP2 package wrote tcp_rfc1337=1 and the reboot's sysctl -p loaded it.
    let live = Upgrade::before("iwsva-sp1-to-sp2")
        .with_rfc1337(1)
        .with_default_state()
        .in_netns();
    let (_, upgrade) = register_and_upgrade(&live, "iwsva-sp1-to-sp2/after", &["--no-hooks"]);
    assert_eq!((upgrade.stdout.as_str(), upgrade.code), ("upgrade done\n", 0));
    for boot in 0..2 {
        let guard = live.sh("/etc/init.d/iwss-keeper-guard", &["start"]);
        assert_eq!(guard.code, 0, "boot {boot}: {}", guard.text());
    }
    let sysctl = fs::read_to_string(live.env.root.join("etc/sysctl.conf")).unwrap();
    assert!(sysctl.contains("net.ipv4.tcp_rfc1337=0\n"), "{sysctl}");
    assert_eq!(live.ns.rfc1337(), "0\n");
    let s = live.ns.iptables_s();
    assert!(s.contains("-A INPUT -s 192.0.2.1/32 -p tcp -j ACCEPT\n"), "{s}");
    let log = live.env.log();
    assert!(
        log.contains("boot guard: a restore from ") && log.contains(" (IWSVA 6.5 SP1 Build 1422) is owed"),
        "{log}"
    );
    assert!(log.contains("running net.ipv4.tcp_rfc1337: 1 -> 0"), "{log}");
    // The second boot has nothing to do.
    assert!(log.contains("boot guard: nothing to do"), "{log}");
    let status = live.keeper(&["--json", "status"]);
    assert_eq!(
        (status.code, &status.json()["ok"]),
        (0, &serde_json::json!(true)),
        "{}",
        status.text()
    );
}

#[test]
fn failed_post_install_leaves_a_pending_marker_and_the_retry_clears_it() {
    if !require_netns("failed_post_install_leaves_a_pending_marker_and_the_retry_clears_it") {
        return;
    }
    let live = Upgrade::before("iwsva-sp2-to-sp3").with_default_state().in_netns();
    // The new script has no anchor: the restore is refused.
    let (_, upgrade) = register_and_upgrade(&live, "bad-no-anchor/after", &[]);
    assert_eq!(
        (upgrade.stdout.as_str(), upgrade.code),
        ("upgrade done\n", 0),
        "the hook must not fail the upgrade"
    );
    let pending = live.keeper(&["--json", "status"]);
    assert_eq!(pending.code, 1, "{}", pending.text());
    let marker = &pending.json()["pending"];
    assert_eq!(marker["event"], "post-install");
    assert!(
        marker["error"].as_str().unwrap().contains("no place to restore"),
        "{marker}"
    );
    assert!(
        live.env.log().contains("hook post-install FAILED"),
        "{}",
        live.env.log()
    );
    let fix = testdata().join("iwsva-sp2-to-sp3/after/usr/iwss/iwsvafw.sh");
    fs::copy(fix, live.env.root.join("usr/iwss/iwsvafw.sh")).unwrap();
    let retry = live.sh("/usr/iwss/hooks/post-install.d/50iwss-keeper", &[]);
    assert_eq!(retry.code, 0, "{}", retry.text());
    assert!(!live.env.root.join("var/lib/iwss-keeper/pending.json").exists());
    assert!(live.env.log().contains("pending restore cleared"));
    let status = live.keeper(&["--json", "status"]);
    assert_eq!(
        (status.code, &status.json()["ok"]),
        (0, &serde_json::json!(true)),
        "{}",
        status.text()
    );
}

#[test]
fn iwss_patch2_to_patch3_upgrade_needs_nothing() {
    let env = TestEnv::from_tree(&testdata().join("iwss-p2-to-p3/before"));
    let (_, err, code) = keeper(&env, &["register"]);
    assert_eq!(code, 0, "{err}");
    let before = fs::read(env.root.join("etc/sysctl.conf")).unwrap();
    let (out, err, code) = fake_upgrade(&env, &testdata().join("iwss-p2-to-p3/after"), &[]);
    assert_eq!((out.as_str(), code), ("upgrade done\n", 0), "{err}");
    assert_ne!(
        fs::read(env.root.join("etc/sysctl.conf")).unwrap(),
        before,
        "the upgrade replaced sysctl.conf"
    );
    assert_eq!(
        fs::read(env.root.join("etc/sysctl.conf")).unwrap(),
        fs::read(testdata().join("iwss-p2-to-p3/after/etc/sysctl.conf")).unwrap(),
        "nothing to write: Patch 3's default covers rfc1337"
    );
    let log = env.log();
    assert!(
        log.contains("sysctl net.ipv4.tcp_rfc1337: already 0: the new version's default covers it"),
        "{log}"
    );
    assert!(log.contains("post-install: nothing-to-restore"), "{log}");
    let (list, _, _) = keeper(&env, &["--json", "list"]);
    let labels = labels(&list);
    assert_eq!(
        labels,
        [
            "baseline (register)",
            "pre-install",
            "post-install (IWSS 6.5 Patch 3 Build 1406)"
        ],
        "{list}"
    );
    // A tree with no /proc: nothing missing, but the running value cannot be read.
    let (status, _, code) = keeper(&env, &["status"]);
    assert_eq!(code, 4, "{status}");
    assert!(
        status.contains("unknown (running)") && status.contains("cannot tell"),
        "{status}"
    );
    assert!(status.contains("hooks    registered (5 files intact)"), "{status}");
    // Half a registration is broken: the next upgrade would snapshot but never restore.
    let hook = env.root.join("usr/iwss/hooks/post-install.d/50iwss-keeper");
    fs::remove_file(&hook).unwrap();
    let (status, _, code) = keeper(&env, &["status"]);
    assert_eq!(code, 1, "{status}");
    assert!(
        status.contains(&format!("hooks    MISSING: {}", hook.display()))
            && status.ends_with("something is missing or not set up (see todo above)\n"),
        "{status}"
    );
}

#[test]
fn strict_mode_fails_the_upgrade() {
    let env = TestEnv::from_tree(&testdata().join("iwss-p2-to-p3/before"));
    fs::create_dir_all(env.root.join("etc/iwss-keeper")).unwrap();
    fs::write(env.root.join("etc/iwss-keeper/config.toml"), "strict = true\n").unwrap();
    assert_eq!(keeper(&env, &["register"]).2, 0);
    // The new version's file is unreadable: post-install cannot work.
    let (out, _, code) = fake_upgrade(&env, &testdata().join("bad-version/after"), &[]);
    assert_ne!(code, 0, "{out}");
    assert!(!out.contains("upgrade done"));
    assert!(env.root.join("var/lib/iwss-keeper/pending.json").exists());
}

#[test]
fn register_is_idempotent_and_unregister_removes_only_its_files() {
    let env = TestEnv::from_tree(&testdata().join("iwss-p2-to-p3/before"));
    let untouched = env.files();
    let (first, _, _) = keeper(&env, &["register"]);
    assert_eq!(first.matches("installed  ").count(), 5, "{first}");
    let (second, _, _) = keeper(&env, &["register"]);
    assert_eq!(second.matches("unchanged  ").count(), 5, "{second}");
    let guard = fs::read_to_string(env.root.join("etc/init.d/iwss-keeper-guard")).unwrap();
    assert!(
        guard.contains(&format!("--root {} hook boot", env.root.display())),
        "{guard}"
    );
    let (gone, _, _) = keeper(&env, &["unregister"]);
    assert_eq!(gone.matches("removed    ").count(), 5, "{gone}");
    let (again, _, _) = keeper(&env, &["unregister"]);
    assert_eq!(again, "nothing registered\n");
    let (status, _, _) = keeper(&env, &["status"]);
    assert!(status.contains("hooks    not registered"), "{status}");
    assert_eq!(env.files(), untouched, "unregister left or removed other files");
}

#[test]
fn retention_keeps_the_newest_pre_upgrade_snapshot() {
    let env = TestEnv::from_tree(&testdata().join("iwss-p2-to-p3/before"));
    fs::create_dir_all(env.root.join("etc/iwss-keeper")).unwrap();
    fs::write(env.root.join("etc/iwss-keeper/config.toml"), "keep_snapshots = 2\n").unwrap();
    let (pre, _, _) = keeper(&env, &["snapshot", "--label", "patch 2"]);
    fs::write(env.root.join("usr/iwss/version"), "IWSS 6.5 Patch 3 Build 1406\n").unwrap();
    for n in 1..=3 {
        assert_eq!(keeper(&env, &["snapshot", "--label", &format!("patch 3 #{n}")]).2, 0);
    }
    let (list, _, _) = keeper(&env, &["--json", "list"]);
    let labels = labels(&list);
    assert_eq!(labels, ["patch 2", "patch 3 #3"], "{list}");
    assert!(list.contains(pre.trim()));
}

/// The labels of `list --json`, oldest first.
fn labels(list: &str) -> Vec<String> {
    let doc: serde_json::Value = serde_json::from_str(list).unwrap();
    doc["snapshots"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["manifest"]["label"].as_str().unwrap_or_default().to_string())
        .collect()
}

/// Holds the state directory's lock from this process, as another run would.
fn hold_lock(env: &TestEnv) -> fs::File {
    let dir = env.root.join("var/lib/iwss-keeper");
    fs::create_dir_all(&dir).unwrap();
    let file = fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(dir.join("lock"))
        .unwrap();
    // SAFETY: flock on a descriptor this test owns.
    assert_eq!(unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX) }, 0);
    fs::write(dir.join("lock"), format!("{}\n", std::process::id())).unwrap();
    file
}

#[test]
fn a_second_run_waits_then_fails_naming_the_holder() {
    let env = TestEnv::from_tree(&testdata().join("iwss-p2-to-p3/before"));
    fs::create_dir_all(env.root.join("etc/iwss-keeper")).unwrap();
    fs::write(env.root.join("etc/iwss-keeper/config.toml"), "lock_timeout_secs = 1\n").unwrap();
    let held = hold_lock(&env);
    let (_, err, code) = keeper(&env, &["snapshot"]);
    assert_eq!(code, 2);
    assert!(
        err.contains(&format!("another iwss-keeper run (pid {}) holds", std::process::id())),
        "{err}"
    );
    drop(held);
    // Now released while the second run waits: it proceeds.
    fs::write(env.root.join("etc/iwss-keeper/config.toml"), "lock_timeout_secs = 30\n").unwrap();
    let held = hold_lock(&env);
    let release = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(700));
        drop(held);
    });
    let (out, err, code) = keeper(&env, &["snapshot"]);
    release.join().unwrap();
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("waiting for another iwss-keeper run"), "{err}");
    assert!(!out.trim().is_empty());
}

#[test]
fn register_installs_a_systemd_unit_where_systemd_runs() {
    let env = TestEnv::from_tree(&testdata().join("iwss-p2-to-p3/before"));
    fs::create_dir_all(env.root.join("usr/lib/systemd/system")).unwrap();
    let (out, err, code) = keeper(&env, &["register", "--hook-dir", "/opt/upgrade/hooks"]);
    assert_eq!(code, 0, "{err}");
    assert!(
        env.root.join("opt/upgrade/hooks/post-install.d/50iwss-keeper").exists(),
        "{out}"
    );
    let unit = fs::read_to_string(env.root.join("etc/systemd/system/iwss-keeper-guard.service")).unwrap();
    assert!(
        unit.contains(&format!(
            "ExecStart={} --root {} hook boot",
            bin().canonicalize().unwrap().display(),
            env.root.display()
        )),
        "{unit}"
    );
    let link = fs::read_link(
        env.root
            .join("etc/systemd/system/multi-user.target.wants/iwss-keeper-guard.service"),
    )
    .unwrap();
    assert_eq!(link, Path::new("/etc/systemd/system/iwss-keeper-guard.service"));
    assert!(!env.root.join("etc/init.d/iwss-keeper-guard").exists());
    let (gone, _, _) = keeper(&env, &["unregister", "--hook-dir", "/opt/upgrade/hooks"]);
    assert_eq!(gone.matches("removed    ").count(), 4, "{gone}");
}

#[test]
fn register_enables_the_packaged_unit_and_supersedes_its_own() {
    let env = TestEnv::from_tree(&testdata().join("iwss-p2-to-p3/before"));
    fs::create_dir_all(env.root.join("usr/lib/systemd/system")).unwrap();
    // A registration made by hand before the package: register writes its own unit in /etc.
    assert_eq!(keeper(&env, &["register"]).2, 0);
    let own = env.root.join("etc/systemd/system/iwss-keeper-guard.service");
    assert!(own.exists());
    // Then the package brings its unit; register switches to it and removes its own.
    let packaged = env.root.join("usr/lib/systemd/system/iwss-keeper-guard.service");
    let unit = fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("contrib/rpm/iwss-keeper-guard.service")).unwrap();
    fs::write(&packaged, &unit).unwrap();
    let (out, err, code) = keeper(&env, &["register"]);
    assert_eq!(code, 0, "{err}");
    let wants = env
        .root
        .join("etc/systemd/system/multi-user.target.wants/iwss-keeper-guard.service");
    assert!(out.contains(&format!("installed  {}", wants.display())), "{out}");
    assert!(
        out.contains(&format!("removed    {} (superseded by", own.display())),
        "{out}"
    );
    assert_eq!(
        fs::read_link(&wants).unwrap(),
        Path::new("/usr/lib/systemd/system/iwss-keeper-guard.service")
    );
    assert!(!own.exists());
    let (status, _, _) = keeper(&env, &["status"]);
    assert!(status.contains("hooks    registered (3 files intact)"), "{status}");
    // A link someone else made is not replaced.
    fs::remove_file(&wants).unwrap();
    std::os::unix::fs::symlink("/usr/lib/systemd/system/other.service", &wants).unwrap();
    let (_, err, code) = keeper(&env, &["register"]);
    assert_eq!(code, 2);
    assert!(err.contains("is not iwss-keeper's link"), "{err}");
    fs::remove_file(&wants).unwrap();
    assert_eq!(keeper(&env, &["register"]).2, 0);
    // unregister disables the packaged unit and leaves the file to the package.
    let (gone, _, _) = keeper(&env, &["unregister"]);
    assert_eq!(gone.matches("removed    ").count(), 3, "{gone}");
    assert!(fs::symlink_metadata(&wants).is_err());
    assert_eq!(fs::read(&packaged).unwrap(), unit);
    // The packaged unit runs the packaged binary's boot guard.
    let text = String::from_utf8(unit).unwrap();
    assert!(text.contains("\nExecStart=/usr/sbin/iwss-keeper hook boot\n"), "{text}");
}

/// Whether a pid is gone (or a zombie waiting to be reaped).
fn gone(pid: &str) -> bool {
    fs::read_to_string(format!("/proc/{}/stat", pid.trim())).map_or(true, |s| {
        s.rsplit_once(") ").is_some_and(|(_, rest)| rest.starts_with('Z'))
    })
}

#[test]
fn a_hook_past_its_deadline_stops_its_restart_and_leaves_a_pending_marker() {
    if !require_netns("a_hook_past_its_deadline_stops_its_restart_and_leaves_a_pending_marker") {
        return;
    }
    let live = Upgrade::before("iwsva-sp3-to-sp3p1").with_default_state().in_netns();
    live.env
        .write_config("hook_timeout_secs = 3\nrestart_timeout_secs = 600\n");
    let pidfile = live.env.dir.path().join("child.pid");
    fs::write(
        live.env.root.join("etc/init.d/hang-children-once"),
        pidfile.display().to_string(),
    )
    .unwrap();
    let started = std::time::Instant::now();
    let (_, upgrade) = register_and_upgrade(&live, "iwsva-sp3-to-sp3p1/after", &[]);
    // A bound on a hang, not a speed claim: without the deadline this takes 600 s.
    assert!(started.elapsed() < Duration::from_secs(60), "{:?}", started.elapsed());
    assert_eq!(
        (upgrade.stdout.as_str(), upgrade.code),
        ("upgrade done\n", 0),
        "{}",
        upgrade.text()
    );
    let child = fs::read_to_string(&pidfile).unwrap();
    assert!(gone(&child), "the restart's child {child} still runs");
    let status = live.keeper(&["--json", "status"]);
    assert_eq!(status.code, 1, "{}", status.text());
    assert_eq!(status.json()["pending"]["event"], "post-install", "{}", status.text());
}
