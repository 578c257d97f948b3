//! Trust checked on what is opened, not on a path; modes whatever the umask; a budget for what one
//! run reads; text that displays as what it holds.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::time::Duration;

use crate::testenv::{testdata, Run, TestEnv};

#[test]
fn a_configuration_in_a_directory_others_can_write_is_refused_by_name() {
    let env = TestEnv::from_tree(&testdata().join("iwsva-sp2-to-sp3/after"));
    env.write_config("keep_snapshots = 3\n");
    let dir = env.root.join("etc/iwss-keeper");
    fs::set_permissions(&dir, fs::Permissions::from_mode(0o777)).unwrap();
    let run = env.keeper(&["list"]);
    assert_eq!(run.code, 2, "{}", run.text());
    assert!(
        run.stderr
            .contains(&format!("is in {}, which others can change", dir.display())),
        "{}",
        run.text()
    );
    fs::set_permissions(&dir, fs::Permissions::from_mode(0o755)).unwrap();
    assert_eq!(env.keeper(&["list"]).code, 0);
}

/// The configuration is read from the descriptor that was checked: swapped for another file
/// after the open (a `rename` over it, as an attacker's loop would), the run still uses what it
/// checked.
#[test]
fn a_configuration_swapped_after_it_was_opened_is_not_used() {
    let env = TestEnv::from_tree(&testdata().join("iwsva-sp2-to-sp3/after"));
    env.write_config("managed_sysctl = [\"net.ipv4.tcp_rfc1337\"]\n");
    let swapped = env.dir.path().join("swapped.toml");
    fs::write(&swapped, "managed_sysctl = [\"net.ipv4.tcp_rfc1338\"]\n").unwrap();
    let pause = env.dir.path().join("paused");
    let run = env
        .cmd_std()
        .arg("list")
        .env("IWSS_KEEPER_PAUSE", "config-opened")
        .env("IWSS_KEEPER_PAUSE_FILE", &pause)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let until = std::time::Instant::now() + Duration::from_secs(10);
    while !pause.exists() && std::time::Instant::now() < until {
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(pause.exists(), "the run never reached the point after the open");
    let config = env.root.join("etc/iwss-keeper/config.toml");
    fs::rename(&swapped, &config).unwrap();
    fs::remove_file(&pause).unwrap();
    let out = run.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        fs::read_to_string(&config).unwrap().contains("rfc1338"),
        "the swap happened"
    );
    assert!(
        !stderr.contains("tcp_rfc1337: the article's sysctl fix is not checked"),
        "{stderr}"
    );
}

#[test]
fn register_under_umask_000_leaves_nothing_others_can_write() {
    let env = TestEnv::from_tree(&testdata().join("iwsva-sp2-to-sp3/before"));
    // The rc directories the boot guard goes into are missing: register creates them.
    for d in ["etc/rc3.d", "etc/rc5.d", "etc/init.d"] {
        let _ = fs::remove_dir_all(env.root.join(d));
    }
    let mut cmd = env.cmd_std();
    cmd.arg("register");
    // SAFETY: umask() in the child before exec; no memory is shared.
    unsafe {
        cmd.pre_exec(|| {
            libc::umask(0);
            Ok(())
        });
    }
    let run = Run::of(&mut cmd);
    assert_eq!(run.code, 0, "{}", run.text());
    let writable: Vec<String> = walkdir::WalkDir::new(&env.root)
        .into_iter()
        .chain(walkdir::WalkDir::new(&env.state))
        .filter_map(Result::ok)
        .filter(|e| !e.path_is_symlink())
        .filter(|e| e.metadata().unwrap().permissions().mode() & 0o022 != 0)
        .map(|e| e.path().display().to_string())
        .collect();
    assert!(writable.is_empty(), "group or world writable: {writable:?}");
    assert!(env.root.join("etc/rc3.d").is_dir());
}

#[test]
fn sixteen_large_files_are_refused_within_the_read_budget() {
    let env = TestEnv::from_tree(&testdata().join("iwsva-sp2-to-sp3/after"));
    let dir = env.root.join("etc/sysctl.d");
    fs::create_dir_all(&dir).unwrap();
    // 63 MiB of comments, under sixteen names (hard links: one file on disk).
    let big = dir.join("00.conf");
    let line = format!("# {}\n", "x".repeat(1021));
    fs::write(&big, line.repeat(63 * 1024)).unwrap();
    for n in 1..16 {
        fs::hard_link(&big, dir.join(format!("{n:02}.conf"))).unwrap();
    }
    // Memory at most about 3x the 256 MiB budget: the address space is capped above that.
    let bin = assert_cmd::cargo::cargo_bin("iwss-keeper");
    let script = format!(
        "ulimit -v 1150000; exec {} --root {} --state-dir {} snapshot",
        bin.display(),
        env.root.display(),
        env.state.display()
    );
    let run = Run::of(std::process::Command::new("sh").args(["-c", &script]));
    assert_eq!(run.code, 2, "{}", run.text());
    assert!(
        run.stderr
            .contains("past its read budget of 268435456 bytes (read_budget_mib")
            && run.stderr.contains("sysctl.d/")
            && run.stderr.contains("(66060288 bytes)"),
        "{}",
        run.text()
    );
}

#[test]
fn a_bidi_override_is_shown_escaped_and_kept_in_json() {
    let case = testdata().join("iwsva-sp2-to-sp3");
    let env = TestEnv::new();
    let before = env.dir.path().join("before");
    crate::testenv::copy_tree(&case.join("before"), &before);
    let script = before.join("usr/iwss/iwsvafw.sh");
    let anchor = "-j ACCEPT # stateful\n";
    let rule =
        "    IPTABLE ipv4 -A INPUT -p tcp -s 192.0.2.9 -m comment --comment \"pool\u{202e}lanretni\" -j ACCEPT\n";
    let text = fs::read_to_string(&script)
        .unwrap()
        .replace(anchor, &format!("{anchor}{rule}"));
    fs::write(&script, text).unwrap();
    let after = case.join("after");
    let args = ["diff", before.to_str().unwrap(), after.to_str().unwrap()];
    let text = env.keeper(&args);
    assert!(
        text.stdout.contains("pool\\u{202e}lanretni") && !text.stdout.contains('\u{202e}'),
        "{}",
        text.stdout
    );
    let mut json_args = vec!["--json"];
    json_args.extend(args);
    let json = env.keeper(&json_args).json();
    let all = json["comparison"]["discarded"].to_string();
    assert!(all.contains("pool\u{202e}lanretni"), "{all}");
}
