//! The rule model against the real authority: a corpus of spellings (curated families and
//! generated combinations, valid ones and near-misses) is loaded one by one into iptables inside
//! a network namespace, with the nf_tables and the legacy backend. Two spellings are one rule iff
//! `iptables -S` prints them identically; the tool's canonical form must be exactly that line,
//! and a spelling iptables refuses must never be a rule to the tool. Root only.
//!
//! Three authorities: RHEL/CentOS 7's iptables 1.4.21 (IWSVA 6.5; built by
//! `../shared/authorities/build.sh`) and this machine's 1.8.9 with both backends. The tool reads
//! each spelling as the version it is compared with; its version-blind reading (for an appliance
//! whose version is not known) must never read a rule that any of them reads otherwise.
//!
//! `IWSS_KEEPER_RULE_DIFF_REPORT=FILE` writes every spelling with each verdict to FILE.

use iwss_keeper::domain::rule::{parse_call_as, Family, Iptables};

use crate::testenv::{require, Netns, Run};

/// What iptables (or the tool) makes of one spelling.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Verdict {
    /// The `-A` line it prints (or the tool's canonical form).
    Rule(String),
    Invalid,
}

const SOURCES: [&str; 14] = [
    "192.0.2.1",
    "192.0.2.5",
    "10.0.1",
    "10",
    "0x0a.0.0.1",
    "012.0.0.1",
    "10.0.0.010",
    "167772161",
    "256.1.1.1",
    "1.2.3.4.5",
    "0.0.0.0",
    "1.2.3",
    "192.000.002.001",
    "09.1.1.1",
];
const MASKS: [&str; 15] = [
    "",
    "/32",
    "/0032",
    "/024",
    "/0x18",
    "/24",
    "/08",
    "/33",
    "/0",
    "/255.255.255.0",
    "/255.0.255.0",
    "/255.255.255.256",
    "/-1",
    "/",
    "/8",
];
const PROTOCOLS: [&str; 21] = [
    "tcp", "TCP", "6", "06", "0x6", "udp", "17", "icmp", "1", "sctp", "132", "all", "0", "gre", "47", "esp", "foo",
    "256", "-1", "Udp", "0x84",
];
const PORTS: [&str; 17] = [
    "80", "0x50", "080", "http", "http-alt", "80:80", "0:65535", ":80", "80:", "8080:80", "65536", "-1", "www",
    "80,443", "1:2:3", "0", "ssh",
];
const STATES: [&str; 10] = [
    "NEW",
    "new",
    "ESTABLISHED,RELATED",
    "RELATED,ESTABLISHED",
    "NEW,ESTABLISHED,RELATED,INVALID",
    "INVALID,NEW",
    "UNTRACKED",
    "BOGUS",
    "NEW,NEW",
    "Established",
];
const ICMP: [&str; 13] = [
    "8",
    "echo-request",
    "echo-reply",
    "0",
    "8/0",
    "3/4",
    "destination-unreachable",
    "port-unreachable",
    "any",
    "255",
    "256",
    "bogus",
    "ping",
];

/// A shell-free way to write a spelling: its words.
fn words(s: &str) -> Vec<String> {
    iwss_keeper::domain::shell::arguments(s).unwrap_or_default()
}

/// The curated families, then generated combinations.
fn corpus() -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for s in SOURCES {
        for m in MASKS {
            for opt in ["-s", "-d", "! -s"] {
                out.push(format!("{opt} {s}{m} -j ACCEPT"));
            }
        }
    }
    for p in PROTOCOLS {
        for opt in ["-p", "--protocol", "! -p"] {
            out.push(format!("{opt} {p} -j ACCEPT"));
        }
    }
    for proto in ["tcp", "udp"] {
        for opt in ["--dport", "--sport", "--destination-port", "--source-port", "! --dport"] {
            for port in PORTS {
                out.push(format!("-p {proto} {opt} {port} -j ACCEPT"));
                out.push(format!("-p {proto} -m {proto} {opt} {port} -j ACCEPT"));
            }
            out.push(format!("-p {proto} {opt}=8080 -j ACCEPT"));
        }
    }
    for m in [
        "-m state --state",
        "-m conntrack --ctstate",
        "-m conntrack --state",
        "-m STATE --state",
        "-m state --ctstate",
        "-m state ! --state",
        "-m conntrack ! --ctstate",
    ] {
        for s in STATES {
            out.push(format!("{m} {s} -j ACCEPT"));
        }
    }
    for t in ICMP {
        out.push(format!("-p icmp --icmp-type {t} -j ACCEPT"));
        out.push(format!("-p icmp -m icmp --icmp-type {t} -j ACCEPT"));
        out.push(format!("-p icmp -m icmp ! --icmp-type {t} -j ACCEPT"));
    }
    for m in [
        "-p tcp -m multiport --dports",
        "-p udp -m multiport --sports",
        "-m multiport -p tcp --dports",
        "-p tcp -m multiport --ports",
        "-m multiport --dports",
        "-p tcp -m multiport ! --dports",
    ] {
        for l in [
            "80",
            "80,443",
            "443,80",
            "80:90",
            "80,443:445,8080",
            "http,https",
            "1,2,3,4,5,6,7,8,9,10,11,12,13,14,15",
            "1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16",
            "80,80",
        ] {
            out.push(format!("{m} {l} -j ACCEPT"));
        }
    }
    for c in [
        "a",
        "'a b'",
        "\"quoted 'x'\"",
        "x\\\"y",
        "''",
        &"c".repeat(256),
        &"c".repeat(257),
    ] {
        out.push(format!("-m comment --comment {c} -j ACCEPT"));
    }
    for t in [
        "-j ACCEPT",
        "-j DROP",
        "-j RETURN",
        "-j REJECT",
        "--jump ACCEPT",
        "! -j ACCEPT",
        "-j ACCEPT -j DROP",
        "-s 192.0.2.1 -j ACCEPT -p tcp",
        "-j ACCEPT -m comment --comment x",
        "",
        "-j",
        // Not here: a jump to a chain (`-j accept`, `-j SOMECHAIN`) is valid iff the script
        // created that chain, which no single line tells; the tool reads it as a chain.
    ] {
        out.push(t.to_string());
    }
    for noise in ["-w", "-w 5", "-4", "-6", "--wait", "-v", "-n"] {
        out.push(format!("{noise} -s 192.0.2.1 -j ACCEPT"));
        out.push(format!("-s 192.0.2.1 {noise} -j ACCEPT"));
    }
    for i in [
        "-i eth0",
        "-i eth+",
        "! -i lo",
        "-i ''",
        "-i abcdefghijklmnop",
        "-i abcdefghijklmno",
        "-o eth0",
        "--in-interface eth0",
    ] {
        out.push(format!("{i} -j ACCEPT"));
    }
    for r in [
        "-s 1.1.1.1 -s 2.2.2.2 -j ACCEPT",
        "-p tcp -p udp -j ACCEPT",
        "-m tcp --dport 80 -p tcp -j ACCEPT",
        "-m tcp -p tcp --dport 80 -j ACCEPT",
        "-p tcp -m tcp -m tcp --dport 80 -j ACCEPT",
        "-p tcp --dport 80 --dport 81 -j ACCEPT",
        "-f -j ACCEPT",
        "! -f -j ACCEPT",
        "-f -p tcp --dport 80 -j ACCEPT",
        "-m state -j ACCEPT",
        "-m nosuchmatch -j ACCEPT",
        "-s -j ACCEPT",
        "--sou 192.0.2.1 -j ACCEPT",
        "--src 192.0.2.1 -j ACCEPT",
        "--dst 192.0.2.1 -j ACCEPT",
        "-p tcp --dpo 80 -j ACCEPT",
        "-m state --sta NEW -j ACCEPT",
        "--jum ACCEPT",
        "-p tcp --syn -j ACCEPT",
        "-p tcp --tcp-flags FIN,SYN,RST,ACK SYN -j ACCEPT",
        "-m limit --limit 5/minute -j ACCEPT",
        "-j LOG",
        "--modprobe=/bin/true -s 192.0.2.1 -j ACCEPT",
        "-m multiport --dports 80,443 -p tcp -j ACCEPT",
        "-p icmp -m multiport --dports 80 -j ACCEPT",
        "! -p tcp -m multiport --dports 80 -j ACCEPT",
        "-W 5 -s 192.0.2.1 -j ACCEPT",
        "--wait=5 -s 192.0.2.1 -j ACCEPT",
        "--wait-interval=5 -j ACCEPT",
    ] {
        out.push(r.to_string());
    }
    // Counters, as iptables reads them (and leaves out of the rule).
    for c in [
        "-c 0 0",
        "-c 1 2",
        "--set-counters 5 6",
        "--set-c 1,2",
        "-c 1,2,3",
        "-c +1 2",
        "-c -1 2",
        "-c ' 1' 2",
        "-c 1x 2y",
        "-c 01 0x2",
        "-c 1",
        "-c x y",
        "-c 1 -2",
        "-c 1 !2",
        "-c 1,",
        "-c ,1 2",
        "-c '' 2",
        "! -c 1 2",
        "-c 1 2 -c 3 4",
        "--set-counters=1 2",
        "--set-counters=1,2",
    ] {
        out.push(format!("{c} -p tcp -s 192.0.2.1 -j ACCEPT"));
        out.push(format!("-s 192.0.2.1 -j ACCEPT {c}"));
    }
    // Options written `--name=value`: 1.4.21 reads them all, 1.8 reads some as one word.
    for e in [
        "--source=192.0.2.1",
        "--src=192.0.2.1",
        "--sou=192.0.2.0/24",
        "--destination=192.0.2.1",
        "--dst=10.0.0.0/8",
        "--protocol=tcp",
        "--in-interface=eth0",
        "--out-interface=eth0",
        "--match=state --state=NEW",
        "--table=filter",
        "-p tcp --dport=80",
        "-p tcp --destination-port=80:90",
        "-m comment --comment=x",
    ] {
        out.push(format!("{e} -j ACCEPT"));
        out.push(format!("{e} --jump=ACCEPT"));
    }
    // Combinations: each part drawn from the families above, in a shuffled order.
    let mut seed = 0x853c_49e6_748f_ea9bu64;
    let mut next = |n: usize| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        (seed % n as u64) as usize
    };
    let mut seen: std::collections::HashSet<String> = out.iter().cloned().collect();
    while seen.len() < 5200 {
        let mut parts: Vec<String> = Vec::new();
        if next(2) == 0 {
            parts.push(format!(
                "-s {}{}",
                SOURCES[next(SOURCES.len())],
                MASKS[next(MASKS.len())]
            ));
        }
        if next(3) == 0 {
            parts.push(format!("! -d {}", SOURCES[next(4)]));
        }
        let proto = ["tcp", "udp", "icmp", "6", "17"][next(5)];
        let with_proto = next(3) != 0;
        if with_proto {
            parts.push(format!("-p {proto}"));
        }
        if with_proto && matches!(proto, "tcp" | "udp" | "6" | "17") && next(2) == 0 {
            parts.push(format!("--dport {}", PORTS[next(PORTS.len())]));
        }
        if next(3) == 0 {
            parts.push(format!("-m state --state {}", STATES[next(STATES.len())]));
        }
        if next(4) == 0 {
            parts.push("-m comment --comment 'proxy farm'".into());
        }
        if next(5) == 0 {
            parts.push("-i eth0".into());
        }
        // Base options may come in any order; a match's options stay after it.
        if parts.len() > 1 && next(2) == 0 {
            let a = next(parts.len());
            let b = next(parts.len());
            if !parts[a].starts_with("--") && !parts[b].starts_with("--") {
                parts.swap(a, b);
            }
        }
        parts.push(["-j ACCEPT", "-j DROP", "-j RETURN"][next(3)].into());
        let s = parts.join(" ");
        if seen.insert(s.clone()) {
            out.push(s);
        }
    }
    out.sort();
    out.dedup();
    out
}

/// IPv6 spellings, for ip6tables.
fn corpus6() -> Vec<String> {
    let mut out = Vec::new();
    let sources = [
        "2001:db8::1",
        "2001:DB8::1",
        "2001:db8:0:0::1",
        "::1",
        "::",
        "::ffff:1.2.3.4",
        "::1.2.3.4",
        "fe80::1%eth0",
        "1.2.3.4",
        "2001:db8::g",
        "2001:0db8::0001",
        "2001:db8:1:2:3:4:5:6",
        "2001:db8:0:0:1:0:0:1",
    ];
    let masks = [
        "",
        "/128",
        "/64",
        "/064",
        "/0x40",
        "/0",
        "/129",
        "/ffff:ffff::",
        "/ffff:0:ffff::",
        "/ffff:ffff:ffff:ffff::",
        "/-1",
        "/",
    ];
    for s in sources {
        for m in masks {
            for opt in ["-s", "-d", "! -s"] {
                out.push(format!("{opt} {s}{m} -j ACCEPT"));
            }
        }
    }
    for p in [
        "tcp",
        "udp",
        "icmp",
        "icmpv6",
        "ipv6-icmp",
        "58",
        "58x",
        "0",
        "all",
        "esp",
        "sctp",
        "TCP",
    ] {
        out.push(format!("-p {p} -j ACCEPT"));
        out.push(format!("! -p {p} -j ACCEPT"));
    }
    for proto in ["tcp", "udp"] {
        for port in PORTS {
            out.push(format!("-p {proto} --dport {port} -s 2001:db8::/32 -j ACCEPT"));
        }
    }
    for s in STATES {
        out.push(format!("-m state --state {s} -s 2001:db8::1 -j ACCEPT"));
        out.push(format!("-m conntrack --ctstate {s} -j DROP"));
    }
    for x in [
        "-f",
        "! -f",
        "-4",
        "-6",
        "-w",
        "-m comment --comment 'v6 proxy'",
        "-p ipv6-icmp --icmpv6-type echo-request",
        "-p icmp --icmp-type 8",
        "-p icmp -m icmp --icmp-type echo-request",
        "-c 0 0",
        "--source=2001:db8::2",
        "-m multiport --dports 80 -p tcp",
    ] {
        out.push(format!("{x} -s 2001:db8::1 -j ACCEPT"));
    }
    out.sort();
    out.dedup();
    out
}

/// Loads each spelling into INPUT with `program`, one at a time, and reads back what it prints.
fn iptables_verdicts(ns: &Netns, program: &str, spellings: &[String]) -> Vec<Verdict> {
    let dir = tempfile::tempdir().unwrap();
    // One argument file per spelling (NUL-separated words), read by a loop in one shell.
    for (i, s) in spellings.iter().enumerate() {
        let mut bytes = Vec::new();
        for w in words(s) {
            bytes.extend_from_slice(w.as_bytes());
            bytes.push(0);
        }
        std::fs::write(dir.path().join(format!("{i:05}")), bytes).unwrap();
    }
    let script = r#"
p=$1; dir=$2
for f in "$dir"/*; do
    args=()
    while IFS= read -r -d '' w; do args+=("$w"); done < "$f"
    if "$p" -w -A INPUT "${args[@]}" >/dev/null 2>&1; then
        "$p" -w -S INPUT | grep '^-A' | sort | tr '\n' '\t'
    else
        printf 'INVALID'
    fi
    printf '\n'
    "$p" -w -F INPUT
done
"#;
    let run = Run::of(
        ns.command("bash")
            .arg("-c")
            .arg(script)
            .arg("_")
            .arg(program)
            .arg(dir.path()),
    );
    let lines: Vec<&str> = run.stdout.lines().collect();
    assert_eq!(lines.len(), spellings.len(), "{program}: {}", run.stderr);
    lines
        .iter()
        .map(|l| match *l {
            "INVALID" => Verdict::Invalid,
            l => Verdict::Rule(l.trim_end_matches('\t').to_string()),
        })
        .collect()
}

/// Where `../shared/authorities/build.sh` installed the appliances' programs
/// (`IWSS_KEEPER_AUTHORITIES`, else its default prefix).
pub fn authorities() -> std::path::PathBuf {
    std::env::var_os("IWSS_KEEPER_AUTHORITIES").map_or_else(|| "/opt/iwss-authorities".into(), Into::into)
}

fn tool_verdict(spelling: &str, family: Family, iptables: Iptables) -> Verdict {
    match parse_call_as(&format!("-A INPUT {spelling}"), Some(family), iptables) {
        Ok(Some(rule)) => Verdict::Rule(rule.canonical().to_string()),
        _ => Verdict::Invalid,
    }
}

/// One iptables the suite asks: its name in the counts, its programs, and the version whose
/// reading the tool follows for it.
struct Authority {
    name: &'static str,
    v4: String,
    v6: String,
    iptables: Iptables,
}

/// What the comparison with one authority found.
#[derive(Default)]
struct Tally {
    agree: usize,
    /// The tool reads a rule iptables refuses, or another rule than iptables prints.
    dangerous: Vec<String>,
    /// iptables reads a rule the tool does not: compared by its text, never restored.
    not_understood: Vec<String>,
    /// The tool's version-blind reading (`Iptables::Any`) reads a rule this iptables refuses or
    /// reads otherwise.
    dangerous_any: Vec<String>,
}

/// Spellings iptables reads and the tool does not, on purpose, each with the reason
/// (RELIABILITY.md lists them): a spelling holding every fragment of an entry is outside the
/// model. The tool compares such a line by its text and never restores it.
const OUTSIDE_THE_MODEL: [(&[&str], &str); 9] = [
    (&["-m limit"], "the limit match is not read"),
    (&["--syn"], "tcp flag options are not read"),
    (&["--tcp-flags"], "tcp flag options are not read"),
    (&["--icmpv6-type"], "the icmp6 match is not read"),
    (&["-m tcp -m tcp"], "a match loaded twice is not read"),
    (
        &["! -s", "/0 "],
        "a negated any-address: legacy prints it, nf_tables drops it",
    ),
    (
        &["! --dport 0:65535"],
        "a negated all-ports range: the backends print it differently",
    ),
    (
        &["! --dport :80"],
        "a negated range from port 0: nf_tables prints its complement",
    ),
    (&["-i ''"], "an empty interface name"),
];

fn compare_with(authority: &Authority, family: Family, spellings: &[String], said: &[Verdict], tally: &mut Tally) {
    for (s, iptables) in spellings.iter().zip(said) {
        let tool = tool_verdict(s, family, authority.iptables);
        let any = tool_verdict(s, family, Iptables::Any);
        if any != Verdict::Invalid && any != *iptables {
            tally.dangerous_any.push(format!(
                "{} {family} {s}: iptables {iptables:?}, tool (any version) {any:?}",
                authority.name
            ));
        }
        match (iptables, &tool) {
            (a, b) if a == b => tally.agree += 1,
            (Verdict::Rule(_), Verdict::Invalid) => tally
                .not_understood
                .push(format!("{} {family} {s}: iptables {iptables:?}", authority.name)),
            _ => tally.dangerous.push(format!(
                "{} {family} {s}: iptables {iptables:?}, tool {tool:?}",
                authority.name
            )),
        }
    }
}

#[test]
fn the_rule_model_prints_what_each_iptables_prints() {
    let old = authorities().join("iptables-1.4.21/sbin");
    let why = if !crate::testenv::is_root() {
        Some("not running as root".to_string())
    } else if !std::path::Path::new("/usr/sbin/iptables-legacy").exists() {
        Some("no iptables-legacy (apt-get install iptables)".to_string())
    } else if !old.join("iptables").exists() {
        Some(format!(
            "no {} (../shared/authorities/build.sh)",
            old.join("iptables").display()
        ))
    } else {
        None
    };
    if !require("rule differential", why) {
        return;
    }
    let spellings = corpus();
    assert!(spellings.len() >= 5000, "corpus of {}", spellings.len());
    let spellings6 = corpus6();
    let authorities = [
        Authority {
            name: "1.4.21",
            v4: old.join("iptables").display().to_string(),
            v6: old.join("ip6tables").display().to_string(),
            iptables: Iptables::V1_4,
        },
        Authority {
            name: "1.8.9-nft",
            v4: "iptables-nft".into(),
            v6: "ip6tables-nft".into(),
            iptables: Iptables::V1_8,
        },
        Authority {
            name: "1.8.9-legacy",
            v4: "iptables-legacy".into(),
            v6: "ip6tables-legacy".into(),
            iptables: Iptables::V1_8,
        },
    ];
    let mut report = String::new();
    let mut all = Vec::new();
    for authority in &authorities {
        let ns = Netns::new();
        let mut tally = Tally::default();
        let v4 = iptables_verdicts(&ns, &authority.v4, &spellings);
        let v6 = iptables_verdicts(&ns, &authority.v6, &spellings6);
        compare_with(authority, Family::V4, &spellings, &v4, &mut tally);
        compare_with(authority, Family::V6, &spellings6, &v6, &mut tally);
        for (s, v) in spellings.iter().zip(&v4).chain(spellings6.iter().zip(&v6)) {
            report.push_str(&format!("{}\t{s}\t{v:?}\n", authority.name));
        }
        let (outside, inside): (Vec<String>, Vec<String>) = tally.not_understood.iter().cloned().partition(|line| {
            OUTSIDE_THE_MODEL
                .iter()
                .any(|(fragments, _)| fragments.iter().all(|f| line.contains(f)))
        });
        use std::io::Write as _;
        // To the stderr handle, not eprintln!, which the harness hides for passing tests: the
        // counts belong in the CI log.
        let _ = writeln!(
            std::io::stderr(),
            "rule differential, iptables {}: {} spellings ({} IPv4, {} IPv6); {} agree, {} dangerous, {} dangerous under the version-blind reading, {} not understood (compared by text, never restored: {} outside the model, {} inside it)",
            authority.name,
            spellings.len() + spellings6.len(),
            spellings.len(),
            spellings6.len(),
            tally.agree,
            tally.dangerous.len(),
            tally.dangerous_any.len(),
            tally.not_understood.len(),
            outside.len(),
            inside.len(),
        );
        for (fragments, reason) in OUTSIDE_THE_MODEL {
            let n = outside
                .iter()
                .filter(|line| fragments.iter().all(|f| line.contains(f)))
                .count();
            if n > 0 {
                let _ = writeln!(std::io::stderr(), "  {}: {n} not understood: {reason}", authority.name);
            }
        }
        all.extend(tally.dangerous);
        all.extend(tally.dangerous_any);
        all.extend(
            inside
                .into_iter()
                .map(|l| format!("not understood inside the model: {l}")),
        );
    }
    if let Some(path) = std::env::var_os("IWSS_KEEPER_RULE_DIFF_REPORT") {
        std::fs::write(path, &report).unwrap();
    }
    assert!(
        all.is_empty(),
        "{} disagreements:\n{}",
        all.len(),
        all[..all.len().min(60)].join("\n")
    );
}
