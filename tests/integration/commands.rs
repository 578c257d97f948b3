//! The commands end to end on a scratch root: snapshot, list, show, diff and restore by id, the
//! default pre-upgrade snapshot, and configuration errors.

use std::fs;

use crate::testenv::{copy_tree, testdata, TestEnv};

/// Plays an upgrade by hand: snapshot the old tree, then lay the new version's files over it.
fn upgraded(case: &str) -> (TestEnv, String) {
    let env = TestEnv::from_tree(&testdata().join(case).join("before"));
    let out = env
        .cmd()
        .args(["snapshot", "--label", "before upgrade"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let id = String::from_utf8(out.stdout).unwrap().trim().to_string();
    copy_over(&env, case);
    (env, id)
}

fn copy_over(env: &TestEnv, case: &str) {
    for dir in ["etc", "usr"] {
        let _ = fs::remove_dir_all(env.root.join(dir));
    }
    copy_tree(&testdata().join(case).join("after"), &env.root);
}

#[test]
fn snapshot_list_show_and_restore_by_default() {
    let (env, id) = upgraded("iwsva-sp1-to-sp2");
    assert!(id.len() > 10 && !id.contains('/'), "{id}");
    let meta = fs::metadata(env.state.join("snapshots").join(&id)).unwrap();
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(meta.permissions().mode() & 0o777, 0o700);
    let manifest = env.state.join("snapshots").join(&id).join("manifest.json");
    assert_eq!(fs::metadata(&manifest).unwrap().permissions().mode() & 0o777, 0o600);

    let (list, code) = env.run(&["list"]);
    assert_eq!(code, 0);
    assert!(
        list.contains("IWSVA 6.5 SP1 Build 1422") && list.contains("before upgrade"),
        "{list}"
    );

    let (show, code) = env.run(&["show", &id[..10]]);
    assert_eq!(code, 0, "{show}");
    assert!(
        show.contains("firewall  /usr/iwss/iwsvafw.sh: 12 rules, 1 custom"),
        "{show}"
    );
    assert!(
        show.contains("sysctl    net.ipv4.tcp_rfc1337 = 0 (/etc/sysctl.conf:21)"),
        "{show}"
    );

    // diff with no arguments: the pre-upgrade snapshot against the live root.
    let (diff, code) = env.run(&["diff"]);
    assert_eq!(code, 1, "{diff}");
    assert!(
        diff.starts_with("old: snapshot [ID] (IWSVA 6.5 SP1 Build 1422)\nnew: tree [ROOT] (IWSVA 6.5 SP2 Build 1548)"),
        "{diff}"
    );

    let (restore, code) = env.run(&["restore", "--no-restart"]);
    assert_eq!(code, 0, "{restore}");
    assert!(restore.contains("changed 2 file(s)"), "{restore}");
    assert_eq!(env.run(&["diff"]).1, 0);
    let sysctl = fs::read_to_string(env.root.join("etc/sysctl.conf")).unwrap();
    assert!(sysctl.contains("net.ipv4.tcp_rfc1337=0\n") && !sysctl.contains("tcp_rfc1337=1"));
}

#[test]
fn default_old_side_is_the_newest_snapshot_from_an_older_version() {
    let (env, _) = upgraded("iwsva-sp2-to-sp3");
    // A snapshot taken after the upgrade is newer, but not pre-upgrade.
    let out = env.cmd().args(["snapshot"]).output().unwrap();
    assert!(out.status.success());
    let (json, code) = env.run(&["--json", "diff"]);
    assert_eq!(code, 1, "{json}");
    let v: serde_json::Value = serde_json::from_str(json.split("--- exit").next().unwrap()).unwrap();
    assert_eq!(v["old"]["version"], "IWSVA 6.5 SP2 Build 1784");
    assert_eq!(v["old"]["kind"], "snapshot");
}

#[test]
fn no_snapshot_is_a_clear_error() {
    let env = TestEnv::from_tree(&testdata().join("iwsva-sp2-to-sp3/after"));
    let (out, code) = env.run(&["restore"]);
    assert_eq!(code, 2);
    assert!(
        out.contains("no snapshot in [STATE]/snapshots: take one with `iwss-keeper snapshot`"),
        "{out}"
    );
}

#[test]
fn unknown_config_keys_are_named_with_their_line() {
    let env = TestEnv::from_tree(&testdata().join("iwsva-sp2-to-sp3/after"));
    fs::create_dir_all(env.root.join("etc/iwss-keeper")).unwrap();
    fs::write(
        env.root.join("etc/iwss-keeper/config.toml"),
        "# site\nfirewal_script = \"/x\"\n",
    )
    .unwrap();
    let (out, code) = env.run(&["list"]);
    assert_eq!(code, 2);
    assert!(
        out.contains("[ROOT]/etc/iwss-keeper/config.toml:2: unknown field `firewal_script`"),
        "{out}"
    );
}

#[test]
fn json_errors_are_json_too() {
    let env = TestEnv::new();
    let out = env.cmd().args(["--json", "show", "nope"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(v["error"].as_str().unwrap().contains("no snapshot \"nope\""));
}

#[test]
fn keep_rules_restore_a_listed_vendor_style_rule() {
    let env = TestEnv::from_tree(&testdata().join("iwsva-sp2-to-sp3/after"));
    fs::create_dir_all(env.root.join("etc/iwss-keeper")).unwrap();
    fs::write(
        env.root.join("etc/iwss-keeper/config.toml"),
        "keep_rules = [\"-A LOCAL_SERV_IN -p tcp -m tcp --destination-port 1812 -j ACCEPT\"]\n",
    )
    .unwrap();
    let before = testdata().join("iwsva-sp2-to-sp3/before");
    let (out, code) = env.run(&["restore", "--from", &before.display().to_string(), "--no-restart"]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("listed in keep_rules"), "{out}");
    let script = fs::read_to_string(env.root.join("usr/iwss/iwsvafw.sh")).unwrap();
    assert!(script.contains("IPTABLE -A LOCAL_SERV_IN -p tcp --dport 1812 -j ACCEPT"));
}
