//! Property tests: canonical forms are stable under re-spelling, and restoring twice is
//! restoring once.

use iwss_keeper::domain::compare::{compare, Pair};
use iwss_keeper::domain::config::Config;
use iwss_keeper::domain::firewall::Script;
use iwss_keeper::domain::plan::plan;
use iwss_keeper::domain::snapshot::Snapshot;
use iwss_keeper::domain::version::parse_version;
use proptest::prelude::*;

/// One rule's meaning, and the ways to write it.
#[derive(Debug, Clone)]
struct RuleParts {
    addr: [u8; 4],
    prefix: Option<u8>,
    proto: Option<&'static str>,
    port: Option<u16>,
}

fn parts() -> impl Strategy<Value = RuleParts> {
    (
        any::<[u8; 4]>(),
        proptest::option::of(8u8..=32),
        proptest::option::of(prop_oneof![Just("tcp"), Just("udp")]),
        proptest::option::of(1u16..),
    )
        .prop_map(|(addr, prefix, proto, port)| RuleParts {
            addr,
            prefix,
            proto,
            port: if proto.is_some() { port } else { None },
        })
}

/// Writes the rule with the given spelling choices.
fn spell(p: &RuleParts, long: bool, shuffle: bool, explicit_mask: bool) -> String {
    let [a, b, c, d] = p.addr;
    let addr = match (p.prefix, explicit_mask) {
        (Some(n), _) => format!("{a}.{b}.{c}.{d}/{n}"),
        (None, true) => format!("{a}.{b}.{c}.{d}/32"),
        (None, false) => format!("{a}.{b}.{c}.{d}"),
    };
    let (s, pr, j, dp) = if long {
        ("--source", "--protocol", "--jump", "--destination-port")
    } else {
        ("-s", "-p", "-j", "--dport")
    };
    let mut base = vec![format!("{s} {addr}")];
    if let Some(proto) = p.proto {
        base.push(format!(
            "{pr} {}",
            if long { proto.to_uppercase() } else { proto.to_string() }
        ));
    }
    if shuffle {
        base.reverse();
    }
    let mut out = format!("ipv4 {} INPUT {}", if long { "--append" } else { "-A" }, base.join(" "));
    if let Some(port) = p.port {
        out.push_str(&format!(" {dp} {port}"));
    }
    out.push_str(&format!(" {j} ACCEPT"));
    out
}

/// The rule one `IPTABLE` line adds, read through the script parser (key) and again in full.
fn rule_of(line: &str) -> iwss_keeper::domain::rule::Rule {
    let text = format!("IPTABLE {line}\n");
    let script = Script::parse(text.as_bytes());
    let (index, key) = script.rules().next().expect("one rule");
    let rule = script.rule(index).expect("parses again");
    assert_eq!(rule.key(), key);
    rule
}

proptest! {
    #[test]
    fn canonical_form_is_stable_under_respelling(p in parts(), long in any::<bool>(), shuffle in any::<bool>(), mask in any::<bool>()) {
        let plain = rule_of(&spell(&p, false, false, false));
        let other = rule_of(&spell(&p, long, shuffle, mask));
        prop_assert_eq!(plain.canonical(), other.canonical());
        prop_assert!(plain.covers(&other) && other.covers(&plain));
        // The canonical spelling reads back as itself.
        let again = rule_of(&format!("ipv4 {}", plain.canonical()));
        prop_assert_eq!(again.canonical(), plain.canonical());
    }
}

const VENDOR_HEAD: &str =
    "#!/bin/bash\nIPTABLE() { iptables \"$@\"; }\nIPTABLE -P INPUT DROP\nIPTABLE -A INPUT -i lo -j ACCEPT\n";
const STATEFUL: &str = "IPTABLE -A INPUT -m state --state ESTABLISHED,RELATED -j ACCEPT # stateful\n";
const VENDOR_TAIL: &str = "# Create the custom chains\nIPTABLE -N ACL_IN\nIPTABLE -A INPUT -j ACL_IN\nIPTABLE -A INPUT -p tcp --dport 8080 -j ACCEPT\n";

fn snapshot(version: &str, script: String, sysctl: &str) -> Snapshot {
    Snapshot::in_memory(
        parse_version(version, None).unwrap(),
        vec![
            ("/usr/iwss/iwsvafw.sh".into(), script.into_bytes()),
            ("/etc/sysctl.conf".into(), sysctl.as_bytes().to_vec()),
        ],
    )
}

/// Applies the plan for `before` onto `after` in memory.
fn restore_once(before: &Snapshot, after: &Snapshot, config: &Config) -> Snapshot {
    let pair = Pair::read(before, after, &config.firewall_script).unwrap();
    let cmp = compare(&pair, config).unwrap();
    let plan = plan(&pair, &cmp, config).unwrap();
    let mut files: Vec<(String, Vec<u8>)> = after.contents.clone().into_iter().collect();
    for change in plan.changes {
        files.retain(|(p, _)| *p != change.path);
        files.push((change.path, change.new));
    }
    Snapshot::in_memory(after.manifest.version.clone(), files)
}

proptest! {
    #[test]
    fn restore_twice_equals_restore_once(
        customs in proptest::collection::vec(parts(), 0..6),
        kept in proptest::collection::vec(any::<bool>(), 6),
        place_after_tail in any::<bool>(),
        rfc_after in prop_oneof![Just(""), Just("net.ipv4.tcp_rfc1337=1\n"), Just("net.ipv4.tcp_rfc1337 = 0\n")],
    ) {
        let custom_lines: Vec<String> = customs.iter().map(|p| format!("IPTABLE {}\n", spell(p, false, false, false))).collect();
        let mut old = format!("{VENDOR_HEAD}{STATEFUL}");
        if place_after_tail {
            old.push_str(VENDOR_TAIL);
            old.extend(custom_lines.iter().cloned());
        } else {
            old.extend(custom_lines.iter().cloned());
            old.push_str(VENDOR_TAIL);
        }
        let mut new = format!("{VENDOR_HEAD}{STATEFUL}{VENDOR_TAIL}");
        for (line, keep) in custom_lines.iter().zip(&kept) {
            if *keep {
                new.push_str(line);
            }
        }
        let config = Config::default();
        let before = snapshot("IWSVA 6.5 SP2", old, "net.ipv4.tcp_rfc1337=0\n");
        let after = snapshot("IWSVA 6.5 SP3", new, rfc_after);
        let once = restore_once(&before, &after, &config);
        let cmp = compare(&Pair::read(&before, &once, &config.firewall_script).unwrap(), &config).unwrap();
        prop_assert!(!cmp.needs_restore(), "{:?}", cmp);
        let twice = restore_once(&before, &once, &config);
        prop_assert_eq!(&twice.contents, &once.contents);
        // Every custom rule of the old script is in the restored script.
        let restored = Script::parse(once.content("/usr/iwss/iwsvafw.sh").unwrap());
        for line in &custom_lines {
            prop_assert!(restored.index().covers(rule_of(line.trim_start_matches("IPTABLE ").trim_end()).key()));
        }
    }
}
