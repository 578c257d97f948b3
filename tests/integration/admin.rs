//! The commands an admin reaches for after a restore: `undo`, `forget`, `prune`,
//! `prune-backups`, `diff --stat` / `--quiet`, `list` and `show --file`, on sandbox roots.

use std::fs;

use crate::testenv::{copy_tree, testdata, TestEnv};

/// A root upgraded from the SP2 tree to SP3 with a snapshot taken before.
fn upgraded() -> TestEnv {
    let env = TestEnv::from_tree(&testdata().join("iwsva-sp2-to-sp3/before"));
    assert_eq!(env.keeper(&["snapshot", "--label", "before SP3"]).code, 0);
    copy_tree(&testdata().join("iwsva-sp2-to-sp3/after"), &env.root);
    env
}

fn script(env: &TestEnv) -> Vec<u8> {
    fs::read(env.root.join("usr/iwss/iwsvafw.sh")).unwrap()
}

#[test]
fn undo_puts_back_the_files_of_the_last_restore() {
    let env = upgraded();
    let upgraded_script = script(&env);
    let dry = env.keeper(&["restore", "--dry-run"]);
    assert_eq!(
        dry.code,
        1,
        "a dry run that would change something exits 1: {}",
        dry.text()
    );
    let restore = env.keeper(&["restore", "--no-restart"]);
    assert_eq!(restore.code, 0, "{}", restore.text());
    assert_eq!(env.keeper(&["restore", "--dry-run"]).code, 0, "nothing left to restore");
    let restored = script(&env);
    assert_ne!(restored, upgraded_script);
    let dry = env.keeper(&["undo", "--dry-run"]);
    assert_eq!(dry.code, 1, "{}", dry.text());
    assert!(
        dry.stdout
            .contains("-    IPTABLE ipv4 -A INPUT -p tcp -s 192.0.2.1 -j ACCEPT\n"),
        "{}",
        dry.text()
    );
    assert_eq!(script(&env), restored, "a dry run changed the script");
    let undo = env.keeper(&["--json", "undo", "--no-restart"]);
    assert_eq!(undo.code, 0, "{}", undo.text());
    let report = undo.json();
    assert_eq!(report["outcome"], "undone");
    assert_eq!(script(&env), upgraded_script);
    // The restored file was backed up before it was replaced.
    let saved = report["files"][0]["backup"].as_str().unwrap();
    assert_eq!(fs::read(saved).unwrap(), restored);
    let again = env.keeper(&["undo"]);
    assert_eq!(again.code, 2, "{}", again.text());
    assert!(again.stderr.contains("was undone already"), "{}", again.text());
}

#[test]
fn undo_refuses_a_file_changed_since_the_restore() {
    let env = upgraded();
    assert_eq!(env.keeper(&["restore", "--no-restart"]).code, 0);
    let path = env.root.join("usr/iwss/iwsvafw.sh");
    let mut edited = script(&env);
    edited.extend_from_slice(b"# an admin's edit\n");
    fs::write(&path, &edited).unwrap();
    let undo = env.keeper(&["undo", "--no-restart"]);
    assert_eq!(undo.code, 2, "{}", undo.text());
    assert!(
        undo.stderr.contains("changed since restore") && undo.stderr.contains("nothing was changed"),
        "{}",
        undo.text()
    );
    assert_eq!(fs::read(&path).unwrap(), edited);
}

#[test]
fn forget_and_prune_never_remove_what_a_restore_needs() {
    let env = TestEnv::from_tree(&testdata().join("iwsva-sp2-to-sp3/before"));
    for label in ["one", "two", "three"] {
        assert_eq!(env.keeper(&["snapshot", "--label", label]).code, 0);
    }
    copy_tree(&testdata().join("iwsva-sp2-to-sp3/after"), &env.root);
    let ids = |env: &TestEnv| -> Vec<String> {
        env.keeper(&["--json", "list"]).json()["snapshots"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["id"].as_str().unwrap().to_string())
            .collect()
    };
    let all = ids(&env);
    assert_eq!(all.len(), 3);
    let needed = &all[2];
    let forget = env.keeper(&["forget", needed]);
    assert_eq!(forget.code, 2, "{}", forget.text());
    assert!(forget.stderr.contains("; not removed"), "{}", forget.text());
    let forget = env.keeper(&["forget", &all[0]]);
    assert_eq!(forget.code, 0, "{}", forget.text());
    assert_eq!(ids(&env), all[1..]);
    let prune = env.keeper(&["prune", "--keep", "0"]);
    assert_eq!(prune.code, 0, "{}", prune.text());
    assert_eq!(ids(&env), std::slice::from_ref(needed));
    assert!(prune.stdout.contains(&format!("kept     {needed}")), "{}", prune.text());
    assert_eq!(
        env.keeper(&["diff", "--quiet"]).code,
        1,
        "the restore still has its snapshot"
    );
}

#[test]
fn prune_backups_removes_only_the_tools_own_backups() {
    let env = upgraded();
    let own = env.root.join("usr/iwss/iwsvafw.sh.org.by-hand");
    fs::write(&own, "an admin's own backup\n").unwrap();
    assert_eq!(env.keeper(&["restore", "--no-restart"]).code, 0);
    let backups = |env: &TestEnv| -> Vec<String> {
        let mut v: Vec<String> = fs::read_dir(env.root.join("usr/iwss"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.contains(".org."))
            .collect();
        v.sort();
        v
    };
    assert_eq!(backups(&env).len(), 2, "{:?}", backups(&env));
    let young = env.keeper(&["prune-backups", "--older-than", "1"]);
    assert_eq!(young.code, 0, "{}", young.text());
    assert_eq!(backups(&env).len(), 2, "a backup younger than a day went");
    // The next undo needs the restore's backup, however old.
    let needed = env.keeper(&["--json", "prune-backups", "--older-than", "0"]);
    assert_eq!(needed.code, 0, "{}", needed.text());
    assert_eq!(needed.json()["kept"].as_array().unwrap().len(), 1, "{}", needed.text());
    assert_eq!(backups(&env).len(), 2);
    // Once undone, its backup and the undo's own go.
    assert_eq!(env.keeper(&["undo", "--no-restart"]).code, 0);
    let all = env.keeper(&["--json", "prune-backups", "--older-than", "0"]);
    assert_eq!(all.code, 0, "{}", all.text());
    assert_eq!(all.json()["removed"].as_array().unwrap().len(), 2, "{}", all.text());
    assert_eq!(backups(&env), ["iwsvafw.sh.org.by-hand"]);
}

#[test]
fn a_record_naming_other_files_is_never_followed() {
    let env = upgraded();
    assert_eq!(env.keeper(&["restore", "--no-restart"]).code, 0);
    let victim = env.dir.path().join("victim");
    fs::write(&victim, "untouched\n").unwrap();
    let dir = env.state.join("restores");
    let name = fs::read_dir(&dir).unwrap().next().unwrap().unwrap().path();
    let mut record: serde_json::Value = serde_json::from_slice(&fs::read(&name).unwrap()).unwrap();
    record["files"][0]["backup"] = serde_json::json!(victim);
    fs::write(&name, serde_json::to_vec(&record).unwrap()).unwrap();
    let undo = env.keeper(&["undo", "--no-restart"]);
    assert_eq!(undo.code, 2, "{}", undo.text());
    assert!(
        undo.stderr.contains("not where the tool puts backups"),
        "{}",
        undo.text()
    );
    let prune = env.keeper(&["prune-backups", "--older-than", "0"]);
    assert_eq!(prune.code, 0, "{}", prune.text());
    assert_eq!(fs::read_to_string(&victim).unwrap(), "untouched\n");
}

#[test]
fn undo_is_not_reversed_by_the_next_boot() {
    let env = upgraded();
    assert_eq!(env.keeper(&["restore", "--no-restart"]).code, 0);
    assert_eq!(env.keeper(&["undo", "--no-restart"]).code, 0);
    let undone = script(&env);
    let boot = env.keeper(&["hook", "boot"]);
    assert_eq!(boot.code, 0, "{}", boot.text());
    assert_eq!(script(&env), undone, "{}", env.log());
    assert!(env.log().contains("boot guard: nothing to do"), "{}", env.log());
}

#[test]
fn diff_stat_and_quiet() {
    let env = upgraded();
    let stat = env.keeper(&["diff", "--stat"]);
    assert_eq!(stat.code, 1, "{}", stat.text());
    assert_eq!(
        stat.stdout,
        " /usr/iwss/iwsvafw.sh | rules: 2 to restore, 1 skipped\n 1 file(s) to change\n"
    );
    let quiet = env.keeper(&["diff", "--quiet"]);
    assert_eq!((quiet.code, quiet.stdout.as_str(), quiet.stderr.as_str()), (1, "", ""));
    assert_eq!(env.keeper(&["restore", "--no-restart"]).code, 0);
    let quiet = env.keeper(&["diff", "--quiet"]);
    assert_eq!((quiet.code, quiet.stdout.as_str()), (0, ""));
}

#[test]
fn list_marks_the_restore_default_in_local_time_and_survives_a_corrupt_snapshot() {
    let env = upgraded();
    assert_eq!(env.keeper(&["snapshot", "--label", "after"]).code, 0);
    let bad = env.state.join("snapshots/20200101T000000Z-bad000");
    fs::create_dir_all(&bad).unwrap();
    fs::write(bad.join("manifest.json"), "{ not json").unwrap();
    let list = crate::testenv::Run::of(env.cmd_std().arg("list").env("TZ", "JST-9"));
    assert_eq!(list.code, 0, "{}", list.text());
    let lines: Vec<&str> = list.stdout.lines().collect();
    assert!(
        lines[1].starts_with("*  ") && lines[1].ends_with("before SP3"),
        "{}",
        list.stdout
    );
    assert!(
        lines[2].starts_with("   ") && lines[2].ends_with("after"),
        "{}",
        list.stdout
    );
    assert!(lines[1].contains(" +0900  "), "{}", list.stdout);
    assert!(
        lines[3].starts_with("!  20200101T000000Z-bad000  CORRUPT: "),
        "{}",
        list.stdout
    );
    // The corrupt one stops nothing else.
    assert_eq!(env.keeper(&["diff", "--quiet"]).code, 1);
    let status = env.keeper(&["status"]);
    assert_ne!(status.code, 2, "{}", status.text());
    let forget = env.keeper(&["forget", "20200101T000000Z-bad000"]);
    assert_eq!(forget.code, 0, "{}", forget.text());
    assert!(!bad.exists());
}

#[test]
fn show_file_prints_a_file_as_the_snapshot_holds_it() {
    let env = upgraded();
    let id = env.keeper(&["--json", "list"]).json()["snapshots"][0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let shown = env
        .cmd_std()
        .args(["show", &id, "--file", "/usr/iwss/iwsvafw.sh"])
        .output()
        .unwrap();
    assert!(shown.status.success());
    assert_eq!(
        shown.stdout,
        fs::read(testdata().join("iwsva-sp2-to-sp3/before/usr/iwss/iwsvafw.sh")).unwrap()
    );
    // Any unique part of the id names it: its random tail as well as its date.
    let tail = &id[id.len() - 6..];
    let by_tail = env.keeper(&["show", tail]);
    assert_eq!(by_tail.code, 0, "{}", by_tail.text());
    assert!(by_tail.stdout.contains(&id), "{}", by_tail.text());
    let missing = env.keeper(&["show", &id, "--file", "/etc/passwd"]);
    assert_eq!(missing.code, 2, "{}", missing.text());
    assert!(
        missing.stderr.contains("holds no file /etc/passwd"),
        "{}",
        missing.text()
    );
}

#[test]
fn text_reports_are_summary_first_and_follow_quiet_and_verbose() {
    let env = TestEnv::from_tree(&testdata().join("iwsva-sp2-to-sp3/before"));
    // 25 more custom rules, which the upgrade discards with the others.
    let script = env.root.join("usr/iwss/iwsvafw.sh");
    let extra: String = (1..=25)
        .map(|n| format!("    IPTABLE ipv4 -A INPUT -p tcp -s 203.0.113.{n} -j ACCEPT\n"))
        .collect();
    let text = fs::read_to_string(&script).unwrap().replace(
        "    IPTABLE ipv4 -A INPUT -p tcp -s 192.0.2.1 -j ACCEPT\n",
        &format!("    IPTABLE ipv4 -A INPUT -p tcp -s 192.0.2.1 -j ACCEPT\n{extra}"),
    );
    fs::write(&script, text).unwrap();
    assert_eq!(env.keeper(&["snapshot"]).code, 0);
    copy_tree(&testdata().join("iwsva-sp2-to-sp3/after"), &env.root);
    let diff = env.keeper(&["diff"]);
    assert_eq!(diff.code, 1, "{}", diff.text());
    assert!(
        diff.stdout
            .contains("28 rule(s) discarded by the upgrade: 27 to restore, 1 skipped"),
        "{}",
        diff.stdout
    );
    assert!(
        diff.stdout
            .contains("  restore (27): custom ACCEPT rule for a source address\n"),
        "{}",
        diff.stdout
    );
    assert!(
        diff.stdout
            .contains("    ... and 7 more (-v lists all, --json has everything)\n"),
        "{}",
        diff.stdout
    );
    // Each rule's text once: the edits name old and new line numbers only.
    assert_eq!(
        diff.stdout.matches("-s 203.0.113.1 -j ACCEPT\n").count(),
        1,
        "{}",
        diff.stdout
    );
    let all = env.keeper(&["-v", "diff"]);
    assert!(!all.stdout.contains("... and"), "{}", all.stdout);
    assert!(all.stdout.contains("old line "), "{}", all.stdout);
    assert!(all.stdout.contains("-s 203.0.113.25 -j ACCEPT"), "{}", all.stdout);
    // -q before the command says less on stderr and changes no command's meaning: the report is
    // printed as always. `diff -q` is `diff --quiet`, as in git: the exit code only.
    let quiet = env.keeper(&["-q", "restore", "--dry-run"]);
    assert_eq!(quiet.code, 1);
    assert!(quiet.stdout.contains("27 to restore"), "{}", quiet.stdout);
    let loud = env.keeper(&["diff"]);
    let quiet = env.keeper(&["-q", "diff"]);
    assert_eq!((quiet.code, &quiet.stdout), (1, &loud.stdout));
    let quiet = env.keeper(&["diff", "-q"]);
    assert_eq!((quiet.code, quiet.stdout.as_str()), (1, ""));
    // The dry run's diff is capped like the groups, all under -v, one line per file with --stat.
    let dry = env.keeper(&["restore", "--dry-run"]);
    assert!(
        dry.stdout.contains("more diff line(s) of /usr/iwss/iwsvafw.sh"),
        "{}",
        dry.stdout
    );
    let stat = env.keeper(&["restore", "--dry-run", "--stat"]);
    assert!(
        !stat.stdout.contains("@@") && stat.stdout.contains("/usr/iwss/iwsvafw.sh"),
        "{}",
        stat.stdout
    );
    // The id `snapshot` prints is its primary output: printed under -q too.
    let snap = env.keeper(&["-q", "snapshot"]);
    assert_eq!(snap.code, 0, "{}", snap.text());
    assert!(!snap.stdout.trim().is_empty(), "{}", snap.text());
    let restore = env.keeper(&["-q", "restore", "--no-restart"]);
    assert_eq!(restore.code, 0, "{}", restore.text());
    assert!(restore.stderr.is_empty(), "{}", restore.text());
    let quiet = env.keeper(&["diff", "--quiet"]);
    assert_eq!((quiet.code, quiet.stdout.as_str()), (0, ""));
}

/// `prune` without `--keep` keeps `keep_snapshots`; configuration errors say what is expected in
/// words; a line with Windows line endings says so and how to fix it.
#[test]
fn admin_defaults_and_plain_words() {
    let env = upgraded();
    for _ in 0..3 {
        assert_eq!(env.keeper(&["snapshot"]).code, 0);
    }
    env.write_config("keep_snapshots = 2\n");
    let prune = env.keeper(&["prune"]);
    assert_eq!(prune.code, 0, "{}", prune.text());
    let left = env.keeper(&["--json", "list"]).json()["snapshots"]
        .as_array()
        .unwrap()
        .len();
    assert!(left <= 3, "{left} snapshots left");
    env.write_config("keep_snapshots = -1\n");
    let bad = env.keeper(&["list"]);
    assert!(bad.stderr.contains("expected a whole number"), "{}", bad.text());
    let env = TestEnv::from_tree(&testdata().join("iwsva-sp2-to-sp3/after"));
    let before = env.dir.path().join("before");
    crate::testenv::copy_tree(&testdata().join("iwsva-sp2-to-sp3/before"), &before);
    let script = before.join("usr/iwss/iwsvafw.sh");
    let text = fs::read_to_string(&script)
        .unwrap()
        .replace("-s 192.0.2.1 -j ACCEPT\n", "-s 192.0.2.1 -j ACCEPT\r\n");
    fs::write(&script, text).unwrap();
    let diff = env.keeper(&["diff", before.to_str().unwrap()]);
    assert!(
        diff.stdout
            .contains("(Windows line endings (CR LF): convert the file with dos2unix)"),
        "{}",
        diff.text()
    );
}
