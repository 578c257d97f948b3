//! Live tests with real parts: the real iptables inside a throw-away network namespace
//! (`unshare -n`, as root), the fixture firewall loaded for real with a default INPUT policy of
//! DROP, and `tcp_rfc1337` read back from the namespace's `/proc/sys`.

use std::fs;

use crate::testenv::{require_netns, testdata, Live, Run, TestEnv, Upgrade};
use regex::Regex;

/// Restores the upgraded `case` from its `before/` tree, inside the scenario's namespace.
fn restore(live: &Live, case: &str, json: bool) -> Run {
    let from = testdata().join(case).join("before");
    let mut args = vec!["restore", "--from", from.to_str().unwrap()];
    if json {
        args.insert(0, "--json");
    }
    live.keeper(&args)
}

/// The JSON report's `live` steps, as the text report shows them.
fn live_lines(report: &serde_json::Value) -> Vec<String> {
    report["live"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|l| {
            l["message"]
                .as_str()
                .unwrap()
                .lines()
                .map(str::to_string)
                .collect::<Vec<_>>()
        })
        .collect()
}

fn nvl(live: &Live) -> String {
    Run::of(live.ns.command("iptables").args(["-nvL", "INPUT"])).stdout
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
    let live = Upgrade::of("iwsva-sp2-to-sp3").in_netns();
    let pre = live.ns.iptables_s();
    let run = restore(&live, "iwsva-sp2-to-sp3", true);
    assert_eq!(run.code, 0, "{}", run.text());
    let report = run.json();
    assert_eq!(report["outcome"], "restored");
    let lines = live_lines(&report);
    // SP3 build 1916 is before SP3 Patch 1: the script restarts itself.
    assert!(
        lines.contains(&"firewall restart: `/usr/iwss/iwsvafw.sh restart` exited 0".to_string()),
        "{lines:#?}"
    );
    assert!(
        !live.env.root.join("var/log/restarts").exists(),
        "init.d ran on SP3 before build 3312"
    );
    for rule in [
        "-A INPUT -s 192.0.2.1/32 -p tcp -j ACCEPT",
        "-A INPUT -s 198.51.100.0/24 -p tcp -j ACCEPT",
    ] {
        assert!(lines.contains(&format!("  loaded  ipv4 {rule}")), "{lines:#?}");
    }
    let nvl = nvl(&live);
    assert!(nvl.starts_with("Chain INPUT (policy DROP"), "{nvl}");
    assert!(
        accepts_from(&nvl, "192.0.2.1") && accepts_from(&nvl, "198.51.100.0/24"),
        "{nvl}"
    );
    assert!(!pre.contains("192.0.2.1"));
    let s = live.ns.iptables_s();
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
    let live = Upgrade::of("iwsva-sp3-to-sp3p1").in_netns();
    let run = restore(&live, "iwsva-sp3-to-sp3p1", true);
    assert_eq!(run.code, 0, "{}", run.text());
    let lines = live_lines(&run.json());
    assert!(
        lines.contains(&"firewall restart: `/etc/init.d/iptables restart` exited 0".to_string()),
        "{lines:#?}"
    );
    assert_eq!(
        fs::read_to_string(live.env.root.join("var/log/restarts")).unwrap(),
        "init.d restart\n"
    );
    assert!(accepts_from(&nvl(&live), "192.0.2.1"));
}

/// A failed restart: reported, the files put back, the kernel holding exactly what it held.
fn assert_rolled_back(live: &Live, pre: &str, run: &Run, step: &str) {
    let report = run.text();
    assert_eq!(run.code, 2, "{report}");
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
    assert_eq!(live.ns.iptables_s(), pre);
    let original = fs::read(testdata().join("iwsva-sp3-to-sp3p1/after/usr/iwss/iwsvafw.sh")).unwrap();
    assert_eq!(fs::read(live.env.root.join("usr/iwss/iwsvafw.sh")).unwrap(), original);
    let nvl = nvl(live);
    assert!(!accepts_from(&nvl, "192.0.2.1"));
    assert!(nvl.starts_with("Chain INPUT (policy DROP"));
}

#[test]
fn failing_restart_is_rolled_back() {
    if !require_netns("failing_restart_is_rolled_back") {
        return;
    }
    let live = Upgrade::of("iwsva-sp3-to-sp3p1").in_netns();
    fs::write(live.env.root.join("etc/init.d/fail-once"), "").unwrap();
    let pre = live.ns.iptables_s();
    let run = restore(&live, "iwsva-sp3-to-sp3p1", false);
    assert_rolled_back(&live, &pre, &run, "restart");
    assert!(run.stdout.contains("iptables: simulated failure"), "{}", run.text());
}

#[test]
fn hanging_restart_times_out_and_is_rolled_back() {
    if !require_netns("hanging_restart_times_out_and_is_rolled_back") {
        return;
    }
    let live = Upgrade::of("iwsva-sp3-to-sp3p1").in_netns();
    fs::write(live.env.root.join("etc/init.d/hang-once"), "").unwrap();
    live.env.write_config("restart_timeout_secs = 2\n");
    let pre = live.ns.iptables_s();
    let run = restore(&live, "iwsva-sp3-to-sp3p1", false);
    assert_rolled_back(&live, &pre, &run, "restart");
    assert!(run.stdout.contains("timed out and was stopped"), "{}", run.text());
}

#[test]
fn pre_sp3_target_gets_rfc1337_back_to_zero_in_the_kernel() {
    if !require_netns("pre_sp3_target_gets_rfc1337_back_to_zero_in_the_kernel") {
        return;
    }
    // The SP2 package wrote tcp_rfc1337=1 and `sysctl -p` loaded it.
    let live = Upgrade::of("iwsva-sp1-to-sp2").with_rfc1337(1).in_netns();
    let run = restore(&live, "iwsva-sp1-to-sp2", true);
    assert_eq!(run.code, 0, "{}", run.text());
    let lines = live_lines(&run.json());
    assert!(
        lines.contains(&"running net.ipv4.tcp_rfc1337: 1 -> 0".to_string()),
        "{lines:#?}"
    );
    assert_eq!(live.ns.rfc1337().trim(), "0");
    assert!(
        lines.contains(&"firewall restart: `/etc/init.d/iptables restart` exited 0".to_string()),
        "{lines:#?}"
    );
    assert!(accepts_from(&nvl(&live), "192.0.2.1"));
}

#[test]
fn status_and_diff_see_what_is_loaded() {
    if !require_netns("status_and_diff_see_what_is_loaded") {
        return;
    }
    let live = Upgrade::of("iwsva-sp2-to-sp3").in_netns();
    let before = TestEnv::from_tree(&testdata().join("iwsva-sp2-to-sp3/before"));
    let snap = live.keeper_on(&before.root, None, &["snapshot", "--label", "before SP3"]);
    assert_eq!(snap.code, 0, "{}", snap.text());
    // Protection set up: `status` says "all kept" only then.
    let register = live.keeper(&["register"]);
    assert_eq!(register.code, 0, "{}", register.text());
    let with_rc = |r: Run| format!("{}rc={}\n", r.stdout, r.code);
    let mut out = std::collections::BTreeMap::new();
    out.insert("diff", with_rc(live.keeper(&["diff"])));
    assert_eq!(live.keeper(&["restore"]).code, 0);
    out.insert("status", with_rc(live.keeper(&["status"])));
    let deleted =
        Run::of(
            live.ns
                .command("iptables")
                .args(["-D", "INPUT", "-s", "192.0.2.1/32", "-p", "tcp", "-j", "ACCEPT"]),
        );
    assert_eq!(deleted.code, 0, "{deleted:?}");
    out.insert("status2", with_rc(live.keeper(&["status"])));
    out.insert("diff2", with_rc(live.keeper(&["diff"])));
    let diff = &out["diff"];
    assert!(diff.ends_with("rc=1\n"), "{diff}");
    assert!(
        diff.contains("  NOT IN SCRIPT, MISSING (2):\n    -A INPUT -s 192.0.2.1/32 -p tcp -j ACCEPT\n"),
        "{diff}"
    );
    assert!(
        diff.contains("sysctl net.ipv4.tcp_rfc1337: files 0, running 0"),
        "{diff}"
    );
    let status = &out["status"];
    assert!(status.ends_with("all kept\nrc=0\n"), "{status}");
    assert!(
        status.contains("rules    2 custom rule(s) in the script and loaded"),
        "{status}"
    );
    let status2 = &out["status2"];
    assert!(
        status2.ends_with("something is missing or not set up (see todo above)\nrc=1\n"),
        "{status2}"
    );
    assert!(
        status2.contains("rule     -A INPUT -s 192.0.2.1/32 -p tcp -j ACCEPT: in script, ipv4 MISSING"),
        "{status2}"
    );
    // Runtime and file state side by side: in the script, but not loaded.
    let diff2 = &out["diff2"];
    assert!(
        diff2.contains("  in script, MISSING (1):\n    -A INPUT -s 192.0.2.1/32 -p tcp -j ACCEPT\n"),
        "{diff2}"
    );
}

#[test]
fn files_holding_the_owed_value_bring_the_kernel_in_line() {
    if !require_netns("files_holding_the_owed_value_bring_the_kernel_in_line") {
        return;
    }
    // The files kept tcp_rfc1337=0; something set the kernel to 1.
    let live = Upgrade::of("iwsva-kept-everything").with_rfc1337(1).in_netns();
    let from = testdata().join("iwsva-kept-everything/before");
    let dry = live.keeper(&["restore", "--dry-run", "--from", from.to_str().unwrap()]);
    assert!(
        dry.stdout
            .contains("running net.ipv4.tcp_rfc1337: 1, would be set to 0 (the value the files hold)"),
        "{}",
        dry.text()
    );
    assert_eq!(live.ns.rfc1337().trim(), "1", "a dry run changed the kernel");
    let run = restore(&live, "iwsva-kept-everything", true);
    assert_eq!(run.code, 0, "{}", run.text());
    let report = run.json();
    assert_eq!(report["outcome"], "restored");
    assert!(
        live_lines(&report).contains(&"running net.ipv4.tcp_rfc1337: 1 -> 0".to_string()),
        "{report:#}"
    );
    assert_eq!(live.ns.rfc1337().trim(), "0");
}

#[test]
fn files_holding_a_wrong_value_are_never_advised_to_be_loaded() {
    if !require_netns("files_holding_a_wrong_value_are_never_advised_to_be_loaded") {
        return;
    }
    // The SP2 package wrote tcp_rfc1337=1 but it was never loaded: the kernel still holds 0.
    let live = Upgrade::of("iwsva-sp1-to-sp2").with_rfc1337(0).in_netns();
    let from = testdata().join("iwsva-sp1-to-sp2/before");
    let dry = live.keeper(&["restore", "--dry-run", "--from", from.to_str().unwrap()]);
    assert!(!dry.text().contains("sysctl -p"), "{}", dry.text());
    assert!(!dry.stdout.contains("running net.ipv4.tcp_rfc1337"), "{}", dry.text());
    assert_eq!(live.ns.rfc1337().trim(), "0");
}

#[test]
fn a_failed_firewall_restart_leaves_the_sysctl_fix_applied() {
    if !require_netns("a_failed_firewall_restart_leaves_the_sysctl_fix_applied") {
        return;
    }
    let live = Upgrade::of("iwsva-sp1-to-sp2").with_rfc1337(1).in_netns();
    fs::write(live.env.root.join("etc/init.d/fail-once"), "").unwrap();
    let pre = live.ns.iptables_s();
    let script = fs::read(live.env.root.join("usr/iwss/iwsvafw.sh")).unwrap();
    let run = restore(&live, "iwsva-sp1-to-sp2", true);
    assert_eq!(run.code, 3, "{}", run.text());
    let report = run.json();
    assert_eq!(report["outcome"], "partly-restored", "{report:#}");
    assert_eq!(report["kept"], serde_json::json!(["/etc/sysctl.conf"]));
    // The firewall as it was; the sysctl fix in the file and the kernel.
    assert_eq!(live.ns.iptables_s(), pre);
    assert_eq!(fs::read(live.env.root.join("usr/iwss/iwsvafw.sh")).unwrap(), script);
    let conf = fs::read_to_string(live.env.root.join("etc/sysctl.conf")).unwrap();
    assert!(
        conf.contains("net.ipv4.tcp_rfc1337 = 0") || conf.contains("net.ipv4.tcp_rfc1337=0"),
        "{conf}"
    );
    assert_eq!(live.ns.rfc1337().trim(), "0");
}

#[test]
fn a_daemon_holding_the_restart_output_does_not_hold_the_run() {
    if !require_netns("a_daemon_holding_the_restart_output_does_not_hold_the_run") {
        return;
    }
    let live = Upgrade::of("iwsva-sp3-to-sp3p1").in_netns();
    live.env.write_config("restart_timeout_secs = 600\n");
    let pidfile = live.env.dir.path().join("daemon.pid");
    fs::write(
        live.env.root.join("etc/init.d/daemon-once"),
        pidfile.display().to_string(),
    )
    .unwrap();
    let started = std::time::Instant::now();
    let run = restore(&live, "iwsva-sp3-to-sp3p1", false);
    let elapsed = started.elapsed();
    let daemon = fs::read_to_string(&pidfile).unwrap_or_default();
    if let Ok(pid) = daemon.trim().parse::<i32>() {
        // SAFETY: the test's own daemon; nothing else shares its pid while it lives.
        unsafe { libc::kill(pid, libc::SIGKILL) };
    }
    // A bound on a hang, not a speed claim: without it the run waits for the daemon (600 s).
    assert!(elapsed < std::time::Duration::from_secs(60), "{elapsed:?}");
    assert_eq!(run.code, 0, "{}", run.text());
    assert!(
        run.stdout.contains("still holds its output; not waited for"),
        "{}",
        run.text()
    );
    assert!(accepts_from(&nvl(&live), "192.0.2.1"));
}

#[test]
fn undo_restarts_and_checks_the_restored_rules_are_gone() {
    if !require_netns("undo_restarts_and_checks_the_restored_rules_are_gone") {
        return;
    }
    let live = Upgrade::of("iwsva-sp3-to-sp3p1").in_netns();
    let upgraded = fs::read(live.env.root.join("usr/iwss/iwsvafw.sh")).unwrap();
    assert_eq!(restore(&live, "iwsva-sp3-to-sp3p1", false).code, 0);
    let restored = fs::read(live.env.root.join("usr/iwss/iwsvafw.sh")).unwrap();
    assert!(accepts_from(&nvl(&live), "192.0.2.1"));
    // A failed restart during the undo: the restore's files and rules come back.
    fs::write(live.env.root.join("etc/init.d/fail-once"), "").unwrap();
    let failed = live.keeper(&["undo"]);
    assert_eq!(failed.code, 2, "{}", failed.text());
    assert!(failed.stdout.contains("FAILED at restart"), "{}", failed.text());
    assert_eq!(fs::read(live.env.root.join("usr/iwss/iwsvafw.sh")).unwrap(), restored);
    assert!(accepts_from(&nvl(&live), "192.0.2.1"), "{}", nvl(&live));
    // Then for real.
    let undo = live.keeper(&["--json", "undo"]);
    assert_eq!(undo.code, 0, "{}", undo.text());
    let report = undo.json();
    assert_eq!(report["outcome"], "undone");
    assert!(
        report["live"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s["step"] == "removed" && s["state"] == "missing"),
        "{report:#}"
    );
    // The text speaks of rules removed as intended, not of missing ones.
    let text = undo.json()["live"].to_string();
    assert!(!text.contains("\"verified\""), "{text}");
    assert_eq!(fs::read(live.env.root.join("usr/iwss/iwsvafw.sh")).unwrap(), upgraded);
    let nvl = nvl(&live);
    assert!(
        !accepts_from(&nvl, "192.0.2.1") && nvl.starts_with("Chain INPUT (policy DROP"),
        "{nvl}"
    );
}
