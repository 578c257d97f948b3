//! Refused rules: the appliance's own `iptables-restore --test` runs on the rules to restore
//! before the plan is made; a rule it refuses is REFUSED with iptables' message, as a line the
//! restorable grammar refuses is. Neither is written or looked for after the restart; the rest
//! is restored, and the run exits 1. The real iptables, inside a throw-away network namespace
//! (`unshare -n`, as root).

use std::fs;
use std::path::Path;

use crate::testenv::{require_netns, testdata, Live, Run, TestEnv, Upgrade};

/// The custom rule both fixtures' upgrades drop and iptables loads.
const GOOD: &str = "    IPTABLE ipv4 -A INPUT -p tcp -s 192.0.2.1 -j ACCEPT\n";
/// A custom rule the model reads (the root's `/etc/services` names the port) and the namespace's
/// iptables refuses (the host's services file does not).
const BAD: &str = "IPTABLE ipv4 -A INPUT -p tcp -s 198.51.100.7 --dport keeper-proxy -j ACCEPT";
/// What iptables says of [`BAD`], as the report names it (after `iptables-restore vX.Y.Z (...): `).
const REFUSAL: &str = "iptables-restore --test (ipv4): iptables-restore v";
const MESSAGE: &str = "invalid port/service `keeper-proxy' specified";

/// The live `case` (its `after/` tree, its firewall loaded in a namespace) and its `before/` tree
/// with `edit` made to the old firewall script; the live root's `/etc/services` names the port
/// [`BAD`] uses.
fn upgrade(live: Live, case: &str, edit: (&str, &str)) -> (Live, TestEnv) {
    let before = TestEnv::from_tree(&testdata().join(case).join("before"));
    let script = before.root.join("usr/iwss/iwsvafw.sh");
    let text = fs::read_to_string(&script).unwrap();
    assert!(text.contains(edit.0), "{case}: {text}");
    fs::write(&script, text.replace(edit.0, edit.1)).unwrap();
    fs::write(live.env.root.join("etc/services"), "keeper-proxy 3129/tcp\n").unwrap();
    (live, before)
}

/// SP2 -> SP3, where the upgrade dropped two custom rules: [`GOOD`] (old line 23) and, on old
/// line 24, [`BAD`].
fn good_and_bad() -> (Live, TestEnv) {
    let bad = format!("    {BAD}\n");
    let lb = "    IPTABLE ipv4 -A INPUT -p tcp -s 198.51.100.0/24 -j ACCEPT # load balancer pool\n";
    upgrade(
        Upgrade::of("iwsva-sp2-to-sp3").in_netns(),
        "iwsva-sp2-to-sp3",
        (lb, &bad),
    )
}

/// `restore FLAGS --from BEFORE` in the namespace.
fn restore_from(live: &Live, before: &TestEnv, flags: &[&str]) -> Run {
    let mut args = vec!["restore"];
    args.extend(flags);
    args.extend(["--from", before.root.to_str().unwrap()]);
    live.keeper(&args)
}

/// The comparison's entry for old line `line`.
fn discarded(report: &serde_json::Value, line: usize) -> serde_json::Value {
    let all = report["comparison"]["discarded"].as_array().unwrap();
    all.iter()
        .find(|d| d["line"] == line)
        .unwrap_or_else(|| panic!("no old line {line}: {all:#?}"))
        .clone()
}

/// The text report's REFUSED group, naming [`BAD`] with iptables' message.
fn assert_refused_in_text(run: &Run) {
    let out = &run.stdout;
    assert!(
        out.contains("  REFUSED (1): custom ACCEPT rule for a source address, but refused; not restored\n"),
        "{}",
        run.text()
    );
    let line = out
        .lines()
        .find(|l| l.starts_with("    old line 24  "))
        .unwrap_or_else(|| panic!("{}", run.text()));
    assert!(
        line.starts_with(&format!("    old line 24  {BAD}  ({REFUSAL}")) && line.ends_with(&format!("{MESSAGE})")),
        "{line}"
    );
    assert!(
        out.contains("1 line(s) need attention: marked REFUSED above, not restored"),
        "{}",
        run.text()
    );
}

/// The backups `restore` took of the firewall script.
fn backups(root: &Path) -> Vec<String> {
    fs::read_dir(root.join("usr/iwss"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("iwsvafw.sh.org."))
        .collect()
}

#[test]
fn a_refused_rule_is_named_and_the_good_one_restored_and_loaded() {
    if !require_netns("a_refused_rule_is_named_and_the_good_one_restored_and_loaded") {
        return;
    }
    let (live, before) = good_and_bad();
    let after = fs::read(live.env.root.join("usr/iwss/iwsvafw.sh")).unwrap();
    assert!(!live.ns.iptables_s().contains("192.0.2.1"));
    let run = restore_from(&live, &before, &["--json"]);
    assert_eq!(run.code, 1, "{}", run.text());
    let report = run.json();
    assert_eq!(report["outcome"], "restored", "{report:#}");
    assert!(report["error"].is_null(), "{report:#}");
    let bad = discarded(&report, 24);
    assert_eq!(
        (&bad["restore"], &bad["attention"]),
        (&false.into(), &true.into()),
        "{bad:#}"
    );
    let reason = bad["reason"].as_str().unwrap();
    assert!(
        reason.starts_with(&format!(
            "custom ACCEPT rule for a source address, but refused: {REFUSAL}"
        )) && reason.ends_with(&format!("{MESSAGE}; not restored")),
        "{reason}"
    );
    assert_eq!(discarded(&report, 23)["restore"], true);
    // The good rule written, after bash read the script; the bad one not.
    let path = live.env.root.join("usr/iwss/iwsvafw.sh");
    let script = fs::read_to_string(&path).unwrap();
    assert!(script.contains(GOOD), "{script}");
    assert!(!script.contains("keeper-proxy"), "{script}");
    let syntax = Run::of(std::process::Command::new("bash").arg("-n").arg(&path));
    assert_eq!(syntax.code, 0, "{syntax:?}");
    // Backed up, restarted and verified: no rollback.
    let backups = backups(&live.env.root);
    assert_eq!(backups.len(), 1, "{backups:?}");
    assert_eq!(
        fs::read(live.env.root.join("usr/iwss").join(&backups[0])).unwrap(),
        after
    );
    let steps = report["live"].to_string();
    assert!(
        steps.contains("iptables-restore --test: the 1 rule(s) to restore load"),
        "{steps}"
    );
    assert!(
        steps.contains("loaded  ipv4 -A INPUT -s 192.0.2.1/32 -p tcp -j ACCEPT"),
        "{steps}"
    );
    assert!(!steps.contains("rollback"), "{steps}");
    let loaded = live.ns.iptables_s();
    assert!(
        loaded.contains("-A INPUT -s 192.0.2.1/32 -p tcp -j ACCEPT\n"),
        "{loaded}"
    );
    assert!(!loaded.contains("198.51.100.7"), "{loaded}");
    // The log names the refused line with iptables' message.
    for text in [&run.stderr, &live.env.log()] {
        assert!(
            text.contains(&format!(
                "/usr/iwss/iwsvafw.sh:24: iptables refuses this rule; not restored: {BAD}: {REFUSAL}"
            )) && text.contains(MESSAGE),
            "{text}"
        );
    }
    // Once more: only the refused rule is left to restore. Nothing is written, exit 1.
    let files = live.env.files();
    let run = restore_from(&live, &before, &[]);
    assert_eq!(run.code, 1, "{}", run.text());
    assert_refused_in_text(&run);
    assert!(
        !run.stdout.contains("  restore (") && !run.stdout.contains("changed 1 file"),
        "{}",
        run.text()
    );
    assert_eq!(live.env.files(), files);
    assert_eq!(live.ns.iptables_s(), loaded);
}

#[test]
fn a_dry_run_names_the_refused_rule_and_writes_nothing() {
    if !require_netns("a_dry_run_names_the_refused_rule_and_writes_nothing") {
        return;
    }
    let (live, before) = good_and_bad();
    let files = live.env.files();
    let loaded = live.ns.iptables_s();
    let run = restore_from(&live, &before, &["--dry-run"]);
    assert_eq!(run.code, 1, "{}", run.text());
    assert_refused_in_text(&run);
    let out = &run.stdout;
    assert!(out.contains(&format!("+{GOOD}")), "{}", run.text());
    assert!(
        !out.contains("+    IPTABLE ipv4 -A INPUT -p tcp -s 198.51.100.7"),
        "{}",
        run.text()
    );
    assert!(
        out.contains("iptables-restore --test: the 1 rule(s) to restore load"),
        "{}",
        run.text()
    );
    assert!(
        out.contains("bash -n: the new firewall script is valid\n"),
        "{}",
        run.text()
    );
    assert!(out.contains("dry run: nothing was changed"), "{}", run.text());
    assert_eq!(live.env.files(), files);
    assert_eq!(live.ns.iptables_s(), loaded);
}

#[test]
fn a_refused_rule_blocks_neither_the_other_rules_nor_the_sysctl_fix() {
    if !require_netns("a_refused_rule_blocks_neither_the_other_rules_nor_the_sysctl_fix") {
        return;
    }
    // SP1 -> SP2: the package wrote tcp_rfc1337=1 back, and dropped GOOD and BAD (old line 24).
    let live = Upgrade::of("iwsva-sp1-to-sp2").with_rfc1337(1).in_netns();
    let both = format!("{GOOD}    {BAD}\n");
    let (live, before) = upgrade(live, "iwsva-sp1-to-sp2", (GOOD, &both));
    let run = restore_from(&live, &before, &["--json"]);
    assert_eq!(run.code, 1, "{}", run.text());
    let report = run.json();
    assert_eq!(report["outcome"], "restored", "{report:#}");
    assert!(report["kept"].as_array().is_none_or(Vec::is_empty), "{report:#}");
    assert_eq!(discarded(&report, 24)["attention"], true, "{report:#}");
    let script = fs::read_to_string(live.env.root.join("usr/iwss/iwsvafw.sh")).unwrap();
    assert!(script.contains(GOOD) && !script.contains("keeper-proxy"), "{script}");
    let loaded = live.ns.iptables_s();
    assert!(
        loaded.contains("-A INPUT -s 192.0.2.1/32 -p tcp -j ACCEPT\n"),
        "{loaded}"
    );
    let conf = fs::read_to_string(live.env.root.join("etc/sysctl.conf")).unwrap();
    assert!(
        conf.contains("net.ipv4.tcp_rfc1337 = 0") || conf.contains("net.ipv4.tcp_rfc1337=0"),
        "{conf}"
    );
    assert_eq!(live.ns.rfc1337().trim(), "0");
}

/// A custom rule the restorable grammar refuses is left out of the restore as one iptables
/// refuses is: the restart's check does not look for it, nothing is rolled back, exit 1.
#[test]
fn a_rule_the_grammar_refuses_is_not_looked_for_after_the_restart() {
    if !require_netns("a_rule_the_grammar_refuses_is_not_looked_for_after_the_restart") {
        return;
    }
    let lb = "    IPTABLE ipv4 -A INPUT -p tcp -s 198.51.100.0/24 -j ACCEPT # load balancer pool\n";
    let refused = "    IPTABLE ipv4 -A INPUT --modprobe=/tmp/x -p tcp -s 198.51.100.9 -j ACCEPT\n";
    let live = Upgrade::of("iwsva-sp2-to-sp3").in_netns();
    let (live, before) = upgrade(live, "iwsva-sp2-to-sp3", (lb, refused));
    let run = restore_from(&live, &before, &[]);
    assert_eq!(run.code, 1, "{}", run.text());
    assert!(
        run.stdout
            .contains("(option \"--modprobe=/tmp/x\" is not one the tool restores)"),
        "{}",
        run.text()
    );
    assert!(run.stdout.contains("verify: 1 check(s): 1 loaded\n"), "{}", run.text());
    assert!(run.stdout.ends_with("restored\n1 line(s) need attention: marked REFUSED above, not restored; restore them by hand if they are wanted\n"), "{}", run.text());
    let loaded = live.ns.iptables_s();
    assert!(
        loaded.contains("-A INPUT -s 192.0.2.1/32 -p tcp -j ACCEPT\n"),
        "{loaded}"
    );
    assert!(!loaded.contains("198.51.100.9"), "{loaded}");
}
