//! Only what bash ran is restored: rules an admin switched off (`if false`, `false &&`, a
//! function nobody calls) and text that only looks like a rule (`$'..'`, a heredoc body) are
//! never loaded, and rules after an arithmetic `$((1<<8))` are restored. Checked against the
//! kernel: the real bash loads the old script in one network namespace, the real iptables holds
//! the upgraded appliance in another, and `status` exits 0 only when that one holds the custom
//! rules the old one did.

use std::collections::BTreeSet;
use std::fs;

use crate::testenv::{require_netns, testdata, Netns, Run, TestEnv, Upgrade};

/// The old script's line after the `# stateful` anchor: an arithmetic expansion before the two
/// custom rules.
const AFTER_ANCHOR: &str = "    MASK=$((1<<8))\n";
/// After the custom rules: rules bash never runs, and text it never runs as a command.
const DEAD: &str = "    if false; then IPTABLE ipv4 -A INPUT -p tcp -s 203.0.113.10 -j ACCEPT; fi
    false && IPTABLE ipv4 -A INPUT -p tcp -s 203.0.113.11 -j ACCEPT
    echo $'it\\' IPTABLE ipv4 -A INPUT -p tcp -s 203.0.113.13 -j ACCEPT' >/dev/null
    cat >/dev/null <<END
IPTABLE ipv4 -A INPUT -p tcp -s 203.0.113.14 -j ACCEPT
END
    if false; then
        IPTABLE ipv4 -A INPUT -p tcp -s 203.0.113.15 -j ACCEPT
    fi
";
/// Before `start`: a function nobody calls.
const UNCALLED: &str = "disabled_rules() {
    IPTABLE ipv4 -A INPUT -p tcp -s 203.0.113.12 -j ACCEPT
}

";

/// The INPUT rules from a literal source that `iptables -S` prints.
fn sourced(dump: &str) -> BTreeSet<String> {
    dump.lines()
        .filter(|l| l.starts_with("-A INPUT -s "))
        .map(str::to_string)
        .collect()
}

/// The old appliance's tree, its script edited as above.
fn old_appliance() -> TestEnv {
    let before = TestEnv::from_tree(&testdata().join("iwsva-sp2-to-sp3/before"));
    let script = before.root.join("usr/iwss/iwsvafw.sh");
    let text = fs::read_to_string(&script).unwrap();
    let anchor = "-j ACCEPT # stateful\n";
    let custom = "    IPTABLE ipv4 -A INPUT -p tcp -s 198.51.100.0/24 -j ACCEPT # load balancer pool\n";
    assert!(text.contains(anchor) && text.contains(custom) && text.contains("start() {"));
    let text = text
        .replace(anchor, &format!("{anchor}{AFTER_ANCHOR}"))
        .replace(custom, &format!("{custom}{DEAD}"))
        .replace("start() {", &format!("{UNCALLED}start() {{"));
    fs::write(&script, &text).unwrap();
    before
}

#[test]
fn only_rules_bash_ran_are_restored_and_status_follows_the_kernel() {
    if !require_netns("only_rules_bash_ran_are_restored_and_status_follows_the_kernel") {
        return;
    }
    let live = Upgrade::of("iwsva-sp2-to-sp3").with_rfc1337(0).in_netns();
    let before = old_appliance();
    // What the old appliance's kernel held: its script run by bash in a namespace of its own.
    let old_ns = Netns::new();
    let script = before.root.join("usr/iwss/iwsvafw.sh");
    let started = Run::of(old_ns.command("bash").arg(&script).arg("start"));
    assert_eq!(started.code, 0, "{started:?}");
    let held = sourced(&old_ns.iptables_s());
    assert_eq!(held.len(), 2, "{held:?}");
    assert!(held.iter().all(|r| !r.contains("203.0.113.")), "{held:?}");
    // The snapshot the upgrade would have taken; `status` compares with it.
    let snap = live.keeper_on(&before.root, None, &["snapshot"]);
    assert_eq!(snap.code, 0, "{}", snap.text());
    let status = live.keeper(&["status"]);
    assert_eq!(status.code, 1, "{}", status.text());
    let register = live.keeper(&["register"]);
    assert_eq!(register.code, 0, "{}", register.text());

    let run = live.keeper(&["--json", "restore", "--from", before.root.to_str().unwrap()]);
    let report = run.json();
    let discarded = report["comparison"]["discarded"].as_array().unwrap().clone();
    let restored = discarded.iter().filter(|d| d["restore"] == true).count();
    assert_eq!(restored, 2, "{report:#}");
    // Every dead line is listed with its reason, none restored; text is never a rule.
    for (address, reason) in [
        ("203.0.113.10", "conditional"),
        ("203.0.113.11", "conditional: after `&&`"),
        ("203.0.113.12", "in function disabled_rules, not the anchor's"),
        ("203.0.113.15", "conditional: inside `if` branch"),
        ("203.0.113.14", "string data (a heredoc body), not a command"),
    ] {
        let entry = discarded
            .iter()
            .find(|d| d["text"].as_str().unwrap().contains(address))
            .unwrap_or_else(|| panic!("{address} not reported: {report:#}"));
        assert_eq!(entry["restore"], false, "{entry:#}");
        assert!(entry["reason"].as_str().unwrap().contains(reason), "{entry:#}");
    }
    let loaded = live.ns.iptables_s();
    assert_eq!(sourced(&loaded), held, "{loaded}");
    let written = fs::read_to_string(live.env.root.join("usr/iwss/iwsvafw.sh")).unwrap();
    assert!(!written.contains("203.0.113."), "{written}");
    // The kernel holds what it held before the upgrade: `status` says so.
    let status = live.keeper(&["status"]);
    assert_eq!(status.code, 0, "{}", status.text());
    // And not once a restored rule is gone from the kernel.
    let delete = ["-D", "INPUT", "-s", "192.0.2.1/32", "-p", "tcp", "-j", "ACCEPT"];
    let gone = Run::of(live.ns.command("iptables").args(delete));
    assert_eq!(gone.code, 0, "{gone:?}");
    let status = live.keeper(&["status"]);
    assert_eq!(status.code, 1, "{}", status.text());
}
