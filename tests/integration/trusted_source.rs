//! What a restored line may be: a call of `IPTABLE`, `iptables` or `ip6tables` by name (never a
//! path root would then run), from one proxy-sized source (never a non-contiguous or /1 mask, never
//! a list verified as one rule), and, when the old snapshot recorded the firewall up, one that
//! was loaded then. The real iptables, inside throw-away network namespaces, as root.

use std::collections::BTreeSet;
use std::fs;
use std::os::unix::fs::PermissionsExt;

use crate::testenv::{require_netns, testdata, Live, Run, TestEnv, Upgrade};

const LB: &str = "    IPTABLE ipv4 -A INPUT -p tcp -s 198.51.100.0/24 -j ACCEPT # load balancer pool\n";

/// The old appliance's tree with `extra` after the load-balancer rule.
fn old_with(extra: &str) -> TestEnv {
    let before = TestEnv::from_tree(&testdata().join("iwsva-sp2-to-sp3/before"));
    let script = before.root.join("usr/iwss/iwsvafw.sh");
    let text = fs::read_to_string(&script).unwrap();
    assert!(text.contains(LB));
    fs::write(&script, text.replace(LB, &format!("{LB}{extra}"))).unwrap();
    before
}

/// The INPUT rules from a literal source that `iptables -S` / `ip6tables -S` print.
fn sourced(live: &Live) -> BTreeSet<String> {
    let v6 = Run::of(live.ns.command("ip6tables").arg("-S")).stdout;
    [live.ns.iptables_s(), v6]
        .concat()
        .lines()
        .filter(|l| l.starts_with("-A INPUT -s "))
        .map(str::to_string)
        .collect()
}

/// The comparison's entry whose text holds `needle`.
fn entry(report: &serde_json::Value, needle: &str) -> serde_json::Value {
    let all = report["comparison"]["discarded"].as_array().unwrap();
    all.iter()
        .find(|d| d["text"].as_str().unwrap().contains(needle))
        .unwrap_or_else(|| panic!("{needle} not reported: {all:#?}"))
        .clone()
}

#[test]
fn paths_wide_sources_and_lists_are_never_restored_and_roll_nothing_back() {
    if !require_netns("paths_wide_sources_and_lists_are_never_restored_and_roll_nothing_back") {
        return;
    }
    let live = Upgrade::of("iwsva-sp2-to-sp3").with_rfc1337(0).in_netns();
    // A program anyone could have written, in a directory `nobody` owns.
    let dir = tempfile::tempdir().unwrap();
    fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o777)).unwrap();
    let marker = dir.path().join("ran");
    let program = dir.path().join("iptables");
    fs::write(&program, format!("#!/bin/sh\ntouch {}\n", marker.display())).unwrap();
    fs::set_permissions(&program, fs::Permissions::from_mode(0o777)).unwrap();
    let extra = format!(
        "    {} -A INPUT -p tcp -s 192.0.2.77 -j ACCEPT
    IPTABLE ipv4 -A INPUT -p tcp -s 0.0.0.0/0.0.0.1 --dport 22 -j ACCEPT
    IPTABLE ipv4 -A INPUT -p tcp -s 0.0.0.1/0.0.0.1 --dport 22 -j ACCEPT
    IPTABLE ipv4 -A INPUT -p tcp -s 0.0.0.0/1 -j ACCEPT
    IPTABLE ipv6 -A INPUT -p tcp -s ::/1,8000::/1 -j ACCEPT
    IPTABLE ipv4 -A INPUT -p tcp -s 198.51.100.1,198.51.100.2 -j ACCEPT
",
        program.display()
    );
    let before = old_with(&extra);
    let snap = live.keeper_on(&before.root, None, &["snapshot"]);
    assert_eq!(snap.code, 0, "{}", snap.text());

    let run = live.keeper(&["--json", "restore", "--from", before.root.to_str().unwrap()]);
    assert_eq!(run.code, 1, "{}", run.text());
    let report = run.json();
    assert_eq!(report["outcome"], "restored", "{report:#}");
    for (needle, reason) in [
        ("192.0.2.77", "the command is a path"),
        (
            "0.0.0.0/0.0.0.1",
            "too wide to be one proxy or pool (a mask that is not contiguous)",
        ),
        (
            "0.0.0.1/0.0.0.1",
            "too wide to be one proxy or pool (a mask that is not contiguous)",
        ),
        (
            "0.0.0.0/1 ",
            "too wide to be one proxy or pool (/1, wider than max_source_prefix ipv4 /8)",
        ),
        ("::/1,8000::/1", "a source list"),
        (
            "198.51.100.1,198.51.100.2",
            "a source list (iptables loads it as 2 rules",
        ),
    ] {
        let e = entry(&report, needle);
        assert_eq!((&e["restore"], &e["attention"]), (&false.into(), &true.into()), "{e:#}");
        assert!(e["reason"].as_str().unwrap().contains(reason), "{needle}: {e:#}");
    }
    // The good rules restored and loaded, nothing rolled back; nothing else loaded or written;
    // the program never ran.
    assert!(!report["live"].to_string().contains("rollback"), "{report:#}");
    let loaded = sourced(&live);
    let want: BTreeSet<String> = [
        "-A INPUT -s 192.0.2.1/32 -p tcp -j ACCEPT",
        "-A INPUT -s 198.51.100.0/24 -p tcp -j ACCEPT",
    ]
    .map(String::from)
    .into();
    assert_eq!(loaded, want);
    let written = fs::read_to_string(live.env.root.join("usr/iwss/iwsvafw.sh")).unwrap();
    for needle in ["192.0.2.77", "0.0.0.1", "0.0.0.0/1", "::/1", "198.51.100.1,"] {
        assert!(!written.contains(needle), "{needle}: {written}");
    }
    assert!(!marker.exists(), "the path's program ran");

    // `status` checks the list as the two rules iptables loads, and agrees with the kernel.
    let halves = |live: &Live| -> Vec<(String, String)> {
        let status = live.keeper(&["--json", "status"]).json();
        status["rules"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|r| {
                r["rule"].as_str().unwrap().contains("198.51.100.") && !r["rule"].as_str().unwrap().contains("/24")
            })
            .map(|r| {
                (
                    r["rule"].as_str().unwrap().to_string(),
                    r["loaded"][0]["loaded"].to_string(),
                )
            })
            .collect()
    };
    let before_adding = halves(&live);
    assert_eq!(before_adding.len(), 2, "{before_adding:?}");
    assert!(before_adding.iter().all(|(_, s)| s == "false"), "{before_adding:?}");
    for half in ["198.51.100.1", "198.51.100.2"] {
        let add = Run::of(
            live.ns
                .command("iptables")
                .args(["-A", "INPUT", "-s", half, "-p", "tcp", "-j", "ACCEPT"]),
        );
        assert_eq!(add.code, 0, "{add:?}");
    }
    let after_adding = halves(&live);
    assert!(after_adding.iter().all(|(_, s)| s == "true"), "{after_adding:?}");
}

/// The old appliance, its firewall loaded in a namespace, then a custom rule written to its
/// script and never loaded; `stop` flushes the firewall before the snapshot.
fn written_never_loaded(stop: bool) -> (Live, serde_json::Value) {
    let live = Upgrade::before("iwsva-sp2-to-sp3").with_rfc1337(0).in_netns();
    let script = live.env.root.join("usr/iwss/iwsvafw.sh");
    let text = fs::read_to_string(&script).unwrap();
    let unloaded = "    IPTABLE ipv4 -A INPUT -p tcp -s 192.0.2.99 -j ACCEPT\n";
    fs::write(&script, text.replace(LB, &format!("{LB}{unloaded}"))).unwrap();
    if stop {
        for program in ["iptables", "ip6tables"] {
            for args in [&["-F"][..], &["-P", "INPUT", "ACCEPT"]] {
                assert_eq!(Run::of(live.ns.command(program).args(args)).code, 0);
            }
        }
    }
    let snap = live.keeper(&["snapshot"]);
    assert_eq!(snap.code, 0, "{}", snap.text());
    let upgrade = live.fake_upgrade("iwsva-sp2-to-sp3/after", &["--no-hooks"]);
    assert_eq!(upgrade.code, 0, "{}", upgrade.text());
    let run = live.keeper(&["--json", "restore", "--no-restart"]);
    let report = run.json();
    (live, report)
}

#[test]
fn a_rule_written_but_never_loaded_is_reported_not_restored() {
    if !require_netns("a_rule_written_but_never_loaded_is_reported_not_restored") {
        return;
    }
    let (live, report) = written_never_loaded(false);
    let e = entry(&report, "192.0.2.99");
    assert_eq!((&e["restore"], &e["attention"]), (&false.into(), &true.into()), "{e:#}");
    assert!(
        e["reason"]
            .as_str()
            .unwrap()
            .contains("not loaded when the snapshot was taken"),
        "{e:#}"
    );
    assert_eq!(entry(&report, "192.0.2.1 ")["restore"], true, "{report:#}");
    let note = report["comparison"]["kernel_evidence"].as_str().unwrap();
    assert!(note.contains("were checked"), "{note}");
    let written = fs::read_to_string(live.env.root.join("usr/iwss/iwsvafw.sh")).unwrap();
    assert!(
        written.contains("192.0.2.1 ") && !written.contains("192.0.2.99"),
        "{written}"
    );
}

#[test]
fn a_snapshot_taken_with_the_firewall_stopped_changes_nothing() {
    if !require_netns("a_snapshot_taken_with_the_firewall_stopped_changes_nothing") {
        return;
    }
    let (live, report) = written_never_loaded(true);
    assert_eq!(entry(&report, "192.0.2.99")["restore"], true, "{report:#}");
    assert_eq!(entry(&report, "192.0.2.1 ")["restore"], true, "{report:#}");
    let note = report["comparison"]["kernel_evidence"].as_str().unwrap();
    assert!(
        note.contains("show the firewall stopped") && note.contains("prove nothing"),
        "{note}"
    );
    let text = live.keeper(&["diff"]).stdout;
    assert!(
        text.contains("  kernel: the rules loaded when the old snapshot was taken show the firewall stopped"),
        "{text}"
    );
}
