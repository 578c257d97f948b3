//! Live tests with real parts: the real iptables inside a throw-away network namespace
//! (`unshare -n`, as root), the fixture firewall loaded for real with a default INPUT policy of
//! DROP, and `tcp_rfc1337` read back from the namespace's `/proc/sys`.

use std::fs;

use crate::testenv::{require_netns, testdata, TestEnv};
use regex::Regex;

/// Loads the upgraded firewall as it runs after the upgrade, then restores from the old tree.
const RESTORE: &str = r#"
export PATH="$ROOT/usr/sbin:$PATH"
"$ROOT/usr/iwss/iwsvafw.sh" start >/dev/null 2>&1
[ -n "${RFC:-}" ] && echo "$RFC" > /proc/sys/net/ipv4/tcp_rfc1337
echo "@@pre"; iptables -S
echo "@@report"
"$BIN" --root "$ROOT" --state-dir "$STATE" restore --from "$FROM" 2>&1
rc=$?
echo "@@rc"; echo $rc
echo "@@nvL"; iptables -nvL INPUT
echo "@@S"; iptables -S
echo "@@rfc"; cat /proc/sys/net/ipv4/tcp_rfc1337
"#;

fn restore_in_netns(env: &TestEnv, case: &str, extra: &str) -> std::collections::BTreeMap<String, String> {
    let from = testdata().join(case).join("before");
    env.in_netns(&format!("FROM='{}'\n{extra}\n{RESTORE}", from.display()))
}

fn live_env(case: &str) -> TestEnv {
    let env = TestEnv::from_tree(&testdata().join(case).join("after"));
    env.make_live();
    env
}

/// The article's check: `iptables -nvL INPUT` shows an ACCEPT from the proxy.
fn accepts_from(nvl: &str, source: &str) -> bool {
    let re = Regex::new(&format!(
        r"(?m)^\s*\d+\s+\d+\s+ACCEPT\s+\S+\s+--\s+\*\s+\*\s+{}\s+0\.0\.0\.0/0",
        regex::escape(source)
    ))
    .unwrap();
    re.is_match(nvl)
}

#[test]
fn sp2_to_sp3_restores_and_loads_with_the_sp3_restart() {
    if !require_netns("sp2_to_sp3_restores_and_loads_with_the_sp3_restart") {
        return;
    }
    let env = live_env("iwsva-sp2-to-sp3");
    let out = restore_in_netns(&env, "iwsva-sp2-to-sp3", "");
    let report = &out["report"];
    assert_eq!(out["rc"].trim(), "0", "{report}");
    // SP3 build 1916 is before SP3 Patch 1: the script restarts itself.
    assert!(
        report.contains("firewall restart: `/usr/iwss/iwsvafw.sh restart` exited 0"),
        "{report}"
    );
    assert!(
        !env.root.join("var/log/restarts").exists(),
        "init.d ran on SP3 before build 3312"
    );
    assert!(
        report.contains("loaded  ipv4 -A INPUT -s 192.0.2.1/32 -p tcp -j ACCEPT"),
        "{report}"
    );
    assert!(
        report.contains("loaded  ipv4 -A INPUT -s 198.51.100.0/24 -p tcp -j ACCEPT"),
        "{report}"
    );
    let nvl = &out["nvL"];
    assert!(nvl.starts_with("Chain INPUT (policy DROP"), "{nvl}");
    assert!(
        accepts_from(nvl, "192.0.2.1") && accepts_from(nvl, "198.51.100.0/24"),
        "{nvl}"
    );
    assert!(!accepts_from(&out["pre"], "192.0.2.1"));
    let s = &out["S"];
    assert!(s.contains("-A INPUT -s 192.0.2.1/32 -p tcp -j ACCEPT\n"), "{s}");
    // Right after the stateful rule, as the article places it.
    let lines: Vec<&str> = s.lines().filter(|l| l.starts_with("-A INPUT")).collect();
    let stateful = lines.iter().position(|l| l.contains("RELATED,ESTABLISHED")).unwrap();
    assert_eq!(lines[stateful + 1], "-A INPUT -s 192.0.2.1/32 -p tcp -j ACCEPT", "{s}");
}

#[test]
fn sp3_patch1_restarts_through_init_d() {
    if !require_netns("sp3_patch1_restarts_through_init_d") {
        return;
    }
    let env = live_env("iwsva-sp3-to-sp3p1");
    let out = restore_in_netns(&env, "iwsva-sp3-to-sp3p1", "");
    let report = &out["report"];
    assert_eq!(out["rc"].trim(), "0", "{report}");
    assert!(
        report.contains("firewall restart: `/etc/init.d/iptables restart` exited 0"),
        "{report}"
    );
    assert_eq!(
        fs::read_to_string(env.root.join("var/log/restarts")).unwrap(),
        "init.d restart\n"
    );
    assert!(accepts_from(&out["nvL"], "192.0.2.1"), "{}", out["nvL"]);
}

fn assert_rolled_back(env: &TestEnv, out: &std::collections::BTreeMap<String, String>, step: &str) {
    let report = &out["report"];
    assert_eq!(out["rc"].trim(), "2", "{report}");
    assert!(report.contains(&format!("FAILED at {step}")), "{report}");
    assert!(
        report.contains("rollback: /usr/iwss/iwsvafw.sh put back from its backup"),
        "{report}"
    );
    assert!(
        report.contains("rollback: the previous rules are loaded again"),
        "{report}"
    );
    assert!(report.contains("restore failed at"), "{report}");
    // The kernel holds exactly the rules it held before, and the script its old bytes.
    assert_eq!(out["S"], out["pre"]);
    let original = fs::read(testdata().join("iwsva-sp3-to-sp3p1/after/usr/iwss/iwsvafw.sh")).unwrap();
    assert_eq!(fs::read(env.root.join("usr/iwss/iwsvafw.sh")).unwrap(), original);
    assert!(!accepts_from(&out["nvL"], "192.0.2.1"));
    assert!(out["nvL"].starts_with("Chain INPUT (policy DROP"));
}

#[test]
fn failing_restart_is_rolled_back() {
    if !require_netns("failing_restart_is_rolled_back") {
        return;
    }
    let env = live_env("iwsva-sp3-to-sp3p1");
    fs::write(env.root.join("etc/init.d/fail-once"), "").unwrap();
    let out = restore_in_netns(&env, "iwsva-sp3-to-sp3p1", "");
    assert_rolled_back(&env, &out, "restart");
    assert!(
        out["report"].contains("iptables: simulated failure"),
        "{}",
        out["report"]
    );
}

#[test]
fn hanging_restart_times_out_and_is_rolled_back() {
    if !require_netns("hanging_restart_times_out_and_is_rolled_back") {
        return;
    }
    let env = live_env("iwsva-sp3-to-sp3p1");
    fs::write(env.root.join("etc/init.d/hang-once"), "").unwrap();
    fs::create_dir_all(env.root.join("etc/iwss-keeper")).unwrap();
    fs::write(
        env.root.join("etc/iwss-keeper/config.toml"),
        "restart_timeout_secs = 2\n",
    )
    .unwrap();
    let out = restore_in_netns(&env, "iwsva-sp3-to-sp3p1", "");
    assert_rolled_back(&env, &out, "restart");
    assert!(out["report"].contains("timed out and was stopped"), "{}", out["report"]);
}

#[test]
fn pre_sp3_target_gets_rfc1337_back_to_zero_in_the_kernel() {
    if !require_netns("pre_sp3_target_gets_rfc1337_back_to_zero_in_the_kernel") {
        return;
    }
    let env = live_env("iwsva-sp1-to-sp2");
    // The SP2 package wrote tcp_rfc1337=1 and `sysctl -p` loaded it.
    let out = restore_in_netns(&env, "iwsva-sp1-to-sp2", "RFC=1");
    let report = &out["report"];
    assert_eq!(out["rc"].trim(), "0", "{report}");
    assert!(report.contains("running net.ipv4.tcp_rfc1337: 1 -> 0"), "{report}");
    assert_eq!(out["rfc"].trim(), "0");
    assert!(
        report.contains("firewall restart: `/etc/init.d/iptables restart` exited 0"),
        "{report}"
    );
    assert!(accepts_from(&out["nvL"], "192.0.2.1"));
}

#[test]
fn status_and_diff_see_what_is_loaded() {
    if !require_netns("status_and_diff_see_what_is_loaded") {
        return;
    }
    let env = live_env("iwsva-sp2-to-sp3");
    let before = TestEnv::from_tree(&testdata().join("iwsva-sp2-to-sp3/before"));
    let script = format!(
        r#"
export PATH="$ROOT/usr/sbin:$PATH"
"$BIN" --root '{before}' --state-dir "$STATE" snapshot --label "before SP3" >/dev/null
"$ROOT/usr/iwss/iwsvafw.sh" start >/dev/null 2>&1
echo "@@diff"; "$BIN" --root "$ROOT" --state-dir "$STATE" diff; echo "rc=$?"
"$BIN" --root "$ROOT" --state-dir "$STATE" restore >/dev/null 2>&1
echo "@@status"; "$BIN" --root "$ROOT" --state-dir "$STATE" status; echo "rc=$?"
iptables -D INPUT -s 192.0.2.1/32 -p tcp -j ACCEPT
echo "@@status2"; "$BIN" --root "$ROOT" --state-dir "$STATE" status; echo "rc=$?"
echo "@@diff2"; "$BIN" --root "$ROOT" --state-dir "$STATE" diff; echo "rc=$?"
"#,
        before = before.root.display()
    );
    let out = env.in_netns(&script);
    let diff = &out["diff"];
    assert!(diff.ends_with("rc=1\n"), "{diff}");
    assert!(
        diff.contains("custom rule -A INPUT -s 192.0.2.1/32 -p tcp -j ACCEPT: in script no, loaded no"),
        "{diff}"
    );
    assert!(
        diff.contains("sysctl net.ipv4.tcp_rfc1337: files 0, running 0"),
        "{diff}"
    );
    let status = &out["status"];
    assert!(status.ends_with("all kept\nrc=0\n"), "{status}");
    assert!(
        status.contains("rule     -A INPUT -s 192.0.2.1/32 -p tcp -j ACCEPT: in script, ipv4 loaded"),
        "{status}"
    );
    let status2 = &out["status2"];
    assert!(status2.ends_with("something is missing\nrc=1\n"), "{status2}");
    assert!(
        status2.contains("-A INPUT -s 192.0.2.1/32 -p tcp -j ACCEPT: in script, ipv4 NOT LOADED"),
        "{status2}"
    );
    // Runtime and file state side by side: in the script, but not loaded.
    let diff2 = &out["diff2"];
    assert!(
        diff2.contains("custom rule -A INPUT -s 192.0.2.1/32 -p tcp -j ACCEPT: in script yes, loaded no"),
        "{diff2}"
    );
}
