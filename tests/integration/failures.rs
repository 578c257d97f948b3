//! Failures tell the truth and never reach a user as a panic: a closed stdout, a full one, a
//! FIFO where a file should be, a hook that cannot even start, a missing binary behind a hook
//! script, one JSON document per run, and exit 3 when a rollback cannot complete.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::process::{Command, Stdio};

use crate::testenv::{require_netns, testdata, Run, TestEnv, Upgrade};

fn case_args(case: &str) -> (String, String) {
    let dir = testdata().join(case);
    (
        dir.join("before").display().to_string(),
        dir.join("after").display().to_string(),
    )
}

#[test]
fn a_closed_stdout_ends_the_run_quietly_and_a_full_one_is_an_error() {
    let env = TestEnv::new();
    let (old, new) = case_args("iwsva-sp2-to-sp3");
    let mut child = env
        .cmd_std()
        .args(["--json", "diff", &old, &new])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The reader goes away before the report is written, as `| head -c0` would.
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!err.contains("panicked") && !err.contains("RUST_BACKTRACE"), "{err}");
    assert_eq!(out.status.code(), Some(1), "diff's own code: {err}");
    let full = fs::OpenOptions::new().write(true).open("/dev/full").unwrap();
    let out = env.cmd_std().args(["diff", &old, &new]).stdout(full).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("cannot write the report to stdout"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
}

#[test]
fn a_fifo_in_place_of_a_file_is_refused_at_once() {
    let env = TestEnv::from_tree(&testdata().join("iwsva-sp2-to-sp3/after"));
    let version = env.root.join("usr/iwss/version");
    fs::remove_file(&version).unwrap();
    let status = Command::new("mkfifo").arg(&version).status().unwrap();
    assert!(status.success());
    // With nothing on the FIFO's other end a blocking open would wait forever; the run ends.
    let run = env.keeper(&[
        "diff",
        &testdata().join("iwsva-sp2-to-sp3/before").display().to_string(),
    ]);
    assert_eq!(run.code, 2, "{}", run.text());
    assert!(run.stderr.contains("is not a regular file"), "{}", run.text());
    let hook = env.keeper(&["hook", "post-install"]);
    assert_eq!(hook.code, 0, "{}", hook.text());
}

#[test]
fn a_hook_that_cannot_start_exits_0_and_leaves_a_trace() {
    let env = TestEnv::from_tree(&testdata().join("iwsva-sp2-to-sp3/after"));
    env.write_config("firewal_script = \"/x\"\n");
    let run = env.keeper(&["hook", "post-install"]);
    assert_eq!(run.code, 0, "{}", run.text());
    assert!(
        env.log().contains("hook post-install FAILED before it could start"),
        "{}",
        env.log()
    );
    let pending: serde_json::Value =
        serde_json::from_slice(&fs::read(env.state.join("pending.json")).unwrap()).unwrap();
    assert_eq!(pending["event"], "post-install");
    assert!(
        pending["error"].as_str().unwrap().contains("firewal_script"),
        "{pending}"
    );
    // The same typo outside hook mode is an error.
    assert_eq!(env.keeper(&["status"]).code, 2);
    // A group-writable configuration is refused, and contained the same way.
    env.write_config("");
    let config = env.root.join("etc/iwss-keeper/config.toml");
    fs::set_permissions(&config, fs::Permissions::from_mode(0o664)).unwrap();
    let run = env.keeper(&["hook", "pre-install"]);
    assert_eq!(run.code, 0, "{}", run.text());
    assert!(env.log().contains("group- or world-writable"), "{}", env.log());
}

#[test]
fn hook_scripts_without_the_binary_do_not_fail_the_upgrade() {
    for hook in ["pre-install.d/50iwss-keeper", "post-install.d/50iwss-keeper"] {
        let script = testdata().join("../hooks").join(hook);
        let run = Run::of(
            Command::new("sh")
                .arg(&script)
                .env("IWSS_KEEPER", "/nonexistent/iwss-keeper"),
        );
        assert_eq!(run.code, 0, "{hook}: {}", run.text());
    }
}

#[test]
fn a_failed_restore_prints_one_json_document() {
    if !require_netns("a_failed_restore_prints_one_json_document") {
        return;
    }
    let live = Upgrade::of("iwsva-sp3-to-sp3p1").in_netns();
    fs::write(live.env.root.join("etc/init.d/fail-once"), "").unwrap();
    let from = testdata().join("iwsva-sp3-to-sp3p1/before");
    let run = live.keeper(&["--json", "restore", "--from", from.to_str().unwrap()]);
    assert_eq!(run.code, 2, "{}", run.text());
    let doc = run.json();
    assert_eq!(doc["outcome"], "rolled-back");
    assert!(
        doc["error"].as_str().unwrap().contains("restore failed at restart"),
        "{doc}"
    );
}

#[test]
fn a_rollback_that_cannot_restart_exits_3_and_never_says_nothing_changed() {
    if !require_netns("a_rollback_that_cannot_restart_exits_3_and_never_says_nothing_changed") {
        return;
    }
    let live = Upgrade::of("iwsva-sp3-to-sp3p1").in_netns();
    fs::write(live.env.root.join("etc/init.d/fail-always"), "").unwrap();
    let from = testdata().join("iwsva-sp3-to-sp3p1/before");
    let run = live.keeper(&["restore", "--from", from.to_str().unwrap()]);
    assert_eq!(run.code, 3, "{}", run.text());
    assert!(!run.text().contains("nothing was changed"), "{}", run.text());
    assert!(
        run.stdout.contains("rollback: the second restart failed too"),
        "{}",
        run.text()
    );
    assert!(
        run.stdout.contains("FAILED: the rollback did not complete"),
        "{}",
        run.text()
    );
    assert!(run.stderr.contains("the firewall state is unknown"), "{}", run.text());
}

/// A new script bash would not run to the end (an `if` never closed) gets nothing restored
/// into it: the rules are refused with the reason, no backup or temp file is left, and every
/// file is as it was. (`bash -n` of the result stays as a second check behind the reader.)
#[test]
fn a_script_bash_rejects_leaves_no_backup_no_temp_and_every_file_as_it_was() {
    let env = TestEnv::from_tree(&testdata().join("iwsva-sp2-to-sp3/after"));
    let script = env.root.join("usr/iwss/iwsvafw.sh");
    let mut text = fs::read(&script).unwrap();
    text.extend_from_slice(b"if true; then\n");
    fs::write(&script, text).unwrap();
    let before = env.files();
    let (old, _) = case_args("iwsva-sp2-to-sp3");
    let run = env.keeper(&["restore", "--from", &old, "--no-restart"]);
    assert_eq!(run.code, 1, "{}", run.text());
    assert!(
        run.stdout
            .contains("the new script could not be read to the end (line 47: unexpected end of file"),
        "{}",
        run.text()
    );
    let after = env.files();
    assert_eq!(
        before.keys().collect::<Vec<_>>(),
        after.keys().collect::<Vec<_>>(),
        "no backup (.org.), no temp file (.iwss-keeper-) left"
    );
    assert!(before == after, "every file as it was");
}
