//! Refused rules: a custom rule the restore leaves out is REFUSED, never written, and never looked
//! for after the restart; the rest is restored, and the run exits 1. The real iptables, inside a
//! throw-away network namespace (`unshare -n`, as root).

use std::fs;

use crate::testenv::{require_netns, testdata, Live, Run, TestEnv, Upgrade};

/// The live `case` (its `after/` tree, its firewall loaded in a namespace) and its `before/` tree
/// with `edit` made to the old firewall script.
fn upgrade(live: Live, case: &str, edit: (&str, &str)) -> (Live, TestEnv) {
    let before = TestEnv::from_tree(&testdata().join(case).join("before"));
    let script = before.root.join("usr/iwss/iwsvafw.sh");
    let text = fs::read_to_string(&script).unwrap();
    assert!(text.contains(edit.0), "{case}: {text}");
    fs::write(&script, text.replace(edit.0, edit.1)).unwrap();
    (live, before)
}

/// `restore FLAGS --from BEFORE` in the namespace.
fn restore_from(live: &Live, before: &TestEnv, flags: &[&str]) -> Run {
    let mut args = vec!["restore"];
    args.extend(flags);
    args.extend(["--from", before.root.to_str().unwrap()]);
    live.keeper(&args)
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
