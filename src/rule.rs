//! One iptables rule and its canonical form, spelled the way `iptables -S` prints it.

use std::fmt;
use std::net::IpAddr;

use serde::Serialize;

/// Address family an `IPTABLE` call names (`ipv4` / `ipv6`); without one the call goes to both.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub enum Family {
    #[serde(rename = "ipv4")]
    V4,
    #[serde(rename = "ipv6")]
    V6,
}

impl fmt::Display for Family {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::V4 => "ipv4",
            Self::V6 => "ipv6",
        })
    }
}

/// A rule added by `-A` or `-I`, kept compact: large scripts hold many of them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    /// The family argument as written (`None`: both families).
    pub family: Option<Family>,
    /// `[-t TABLE] -A CHAIN spec...` in canonical order and spelling.
    canonical: String,
    /// Families the rule reaches, as a bit set (1 = IPv4, 2 = IPv6).
    reach: u8,
    /// An ACCEPT naming a non-negated source address (the article's custom rule).
    custom: bool,
    /// The INPUT rule accepting RELATED,ESTABLISHED.
    stateful: bool,
}

const V4: u8 = 1;
const V6: u8 = 2;

impl Rule {
    /// `-A CHAIN spec...` in canonical spelling; with `-t TABLE` first when not the filter table.
    pub fn canonical(&self) -> &str {
        &self.canonical
    }

    /// The families the rule really reaches: the written one, else the one its addresses imply,
    /// else both.
    pub fn families(&self) -> &'static [Family] {
        match self.reach {
            V4 => &[Family::V4],
            V6 => &[Family::V6],
            _ => &[Family::V4, Family::V6],
        }
    }

    /// The families reached, as a bit set for indexes.
    pub fn reach(&self) -> u8 {
        self.reach
    }

    /// Whether `self` already does what `other` does: same table, chain and specification, in
    /// every family `other` reaches.
    pub fn covers(&self, other: &Rule) -> bool {
        self.canonical == other.canonical && self.reach & other.reach == other.reach
    }

    /// The article's custom rule: an ACCEPT that names a source address or network.
    pub fn is_custom_accept(&self) -> bool {
        self.custom
    }

    /// The vendor's stateful rule: INPUT accepts RELATED,ESTABLISHED.
    pub fn is_stateful_accept(&self) -> bool {
        self.stateful
    }

    /// Arguments for `iptables -w -C ...`: the canonical spelling with `-A` turned into `-C`.
    pub fn check_args(&self) -> Vec<String> {
        let mut out = vec!["-w".to_string()];
        for word in shlex::split(&self.canonical).unwrap_or_default() {
            out.push(if word == "-A" { "-C".to_string() } else { word });
        }
        out
    }
}

/// Quotes a word for display only when it holds characters beyond the plain iptables set.
fn quote(word: &str) -> String {
    let plain = !word.is_empty()
        && word
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_.:/,!=@%+-".contains(&b));
    if plain {
        word.to_string()
    } else {
        format!("'{}'", word.replace('\'', r"'\''"))
    }
}

/// An option word (`-x`, `--xyz`), not a negative number.
fn is_option(word: &str) -> bool {
    word.len() > 1 && word.starts_with('-') && !is_number(&word[1..])
}

fn is_number(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())
}

fn address_family(addr: &str) -> Option<Family> {
    let host = addr.split('/').next()?;
    match host.parse::<IpAddr>().ok()? {
        IpAddr::V4(_) => Some(Family::V4),
        IpAddr::V6(_) => Some(Family::V6),
    }
}

/// `192.0.2.1` -> `192.0.2.1/32`, `192.0.2.5/24` -> `192.0.2.0/24`, `10.0.0.0/255.0.0.0` ->
/// `10.0.0.0/8`; IPv6 alike. Host names are lower-cased and kept.
pub fn canonical_address(addr: &str) -> String {
    let mut parts: Vec<String> = addr.split(',').map(canonical_one_address).collect();
    parts.sort();
    parts.dedup();
    parts.join(",")
}

fn canonical_one_address(addr: &str) -> String {
    let (host, mask) = match addr.split_once('/') {
        Some((h, m)) => (h, Some(m)),
        None => (addr, None),
    };
    let Ok(ip) = host.parse::<IpAddr>() else {
        return addr.to_ascii_lowercase();
    };
    let bits: u32 = if ip.is_ipv4() { 32 } else { 128 };
    let prefix = match mask {
        None => Some(bits),
        Some(m) => match m.parse::<u32>() {
            Ok(p) if p <= bits => Some(p),
            Ok(_) => None,
            Err(_) => match (ip, m.parse::<IpAddr>()) {
                (IpAddr::V4(_), Ok(IpAddr::V4(mask))) => {
                    let v = u32::from(mask);
                    (v.leading_ones() + v.trailing_zeros() == 32).then(|| v.leading_ones())
                }
                _ => None,
            },
        },
    };
    let Some(prefix) = prefix else {
        return addr.to_string();
    };
    match ip {
        IpAddr::V4(v4) => {
            let mask = if prefix == 0 { 0 } else { u32::MAX << (32 - prefix) };
            format!("{}/{prefix}", std::net::Ipv4Addr::from(u32::from(v4) & mask))
        }
        IpAddr::V6(v6) => {
            let mask = if prefix == 0 { 0 } else { u128::MAX << (128 - prefix) };
            format!("{}/{prefix}", std::net::Ipv6Addr::from(u128::from(v6) & mask))
        }
    }
}

fn canonical_protocol(p: &str) -> String {
    let p = p.to_ascii_lowercase();
    match p.as_str() {
        "6" => "tcp".into(),
        "17" => "udp".into(),
        "1" => "icmp".into(),
        "58" | "icmpv6" | "ipv6-icmp" => "ipv6-icmp".into(),
        "0" => "all".into(),
        _ => p,
    }
}

/// Conntrack states in the order the kernel's match prints them.
const STATE_ORDER: [&str; 7] = ["INVALID", "NEW", "RELATED", "ESTABLISHED", "UNTRACKED", "SNAT", "DNAT"];

fn canonical_states(list: &str) -> String {
    let mut states: Vec<String> = list.split(',').map(|s| s.trim().to_ascii_uppercase()).collect();
    states.sort_by_key(|s| STATE_ORDER.iter().position(|o| o == s).unwrap_or(STATE_ORDER.len()));
    states.dedup();
    states.join(",")
}

/// Long option spellings that mean the same as a shorter one, per match module.
fn canonical_option(module: &str, opt: &str) -> &'static str {
    let table: &[(&str, &str)] = match module {
        "tcp" | "udp" | "sctp" | "dccp" => &[
            ("--destination-port", "--dport"),
            ("--dport", "--dport"),
            ("--source-port", "--sport"),
            ("--sport", "--sport"),
        ],
        "multiport" => &[
            ("--destination-ports", "--dports"),
            ("--dports", "--dports"),
            ("--source-ports", "--sports"),
            ("--sports", "--sports"),
            ("--ports", "--ports"),
        ],
        _ => &[],
    };
    table
        .iter()
        .find(|(long, _)| *long == opt)
        .map_or("", |(_, short)| short)
}

/// A match module with its options, as they will print.
struct Match {
    name: String,
    words: Vec<String>,
}

/// Parses iptables arguments (after the family) into a rule. Returns `None` for calls that add no
/// rule, and an error for a rule the tool cannot read.
pub fn parse_args(family: Option<Family>, args: &[String]) -> Result<Option<Rule>, String> {
    let mut table = "filter".to_string();
    let mut chain = None;
    let (mut src, mut dst, mut iif, mut oif, mut proto, mut frag) = (None, None, None, None, None, None);
    let mut matches: Vec<Match> = Vec::new();
    let mut target: Option<String> = None;
    let mut target_words: Vec<String> = Vec::new();
    let mut negate = false;
    let mut i = 0;
    let value = |i: usize, opt: &str| -> Result<String, String> {
        args.get(i + 1).cloned().ok_or_else(|| format!("{opt} needs a value"))
    };
    while i < args.len() {
        let a = args[i].as_str();
        let neg = std::mem::take(&mut negate);
        let bang = if neg { "! " } else { "" };
        match a {
            "!" => {
                negate = true;
                i += 1;
                continue;
            }
            "-t" | "--table" => {
                table = value(i, a)?;
                i += 2;
            }
            "-A" | "--append" | "-I" | "--insert" => {
                chain = Some(value(i, a)?);
                i += 2;
                if (a == "-I" || a == "--insert") && args.get(i).is_some_and(|n| is_number(n)) {
                    i += 1;
                }
            }
            "-N" | "--new-chain" | "-P" | "--policy" | "-F" | "--flush" | "-X" | "--delete-chain" | "-D"
            | "--delete" | "-R" | "--replace" | "-Z" | "--zero" | "-E" | "--rename-chain" | "-L" | "--list" | "-S"
            | "--list-rules" | "-C" | "--check" => return Ok(None),
            "-s" | "--source" | "--src" | "-d" | "--destination" | "--dst" | "-i" | "--in-interface" | "-o"
            | "--out-interface" | "-p" | "--protocol" => {
                let mut v = value(i, a)?;
                let mut bang = bang;
                i += 2;
                // Old spelling: `-s ! ADDR`.
                if v == "!" {
                    v = value(i - 1, a)?;
                    bang = "! ";
                    i += 1;
                }
                let slot = match a {
                    "-s" | "--source" | "--src" => {
                        v = canonical_address(&v);
                        &mut src
                    }
                    "-d" | "--destination" | "--dst" => {
                        v = canonical_address(&v);
                        &mut dst
                    }
                    "-i" | "--in-interface" => &mut iif,
                    "-o" | "--out-interface" => &mut oif,
                    _ => {
                        v = canonical_protocol(&v);
                        &mut proto
                    }
                };
                *slot = Some((bang, v));
            }
            "-f" | "--fragment" => {
                frag = Some(bang);
                i += 1;
            }
            "-m" | "--match" => {
                let name = value(i, a)?.to_ascii_lowercase();
                i += 2;
                // `-m state --state` and `-m conntrack --ctstate` are the same match.
                let name = if name == "state" { "conntrack".to_string() } else { name };
                matches.push(Match {
                    name,
                    words: Vec::new(),
                });
            }
            "-j" | "--jump" | "-g" | "--goto" => {
                let t = value(i, a)?;
                i += 2;
                let flag = if a == "-g" || a == "--goto" { "-g" } else { "-j" };
                target_words = vec![flag.to_string(), t.clone()];
                target = Some(t);
            }
            opt if is_option(opt) => {
                let mut words = Vec::new();
                i += 1;
                while i < args.len() && args[i] != "!" && !is_option(&args[i]) {
                    words.push(args[i].clone());
                    i += 1;
                }
                if target.is_some() {
                    if neg {
                        target_words.push("!".into());
                    }
                    target_words.push(opt.to_string());
                    target_words.extend(words);
                    continue;
                }
                if matches.is_empty() {
                    // `-p tcp --dport 80` loads the protocol's match implicitly.
                    let implicit = proto
                        .as_ref()
                        .map(|(_, p)| p.clone())
                        .ok_or_else(|| format!("option {opt} outside any match"))?;
                    matches.push(Match {
                        name: implicit,
                        words: Vec::new(),
                    });
                }
                let m = matches.last_mut().expect("a match exists");
                let mut opt_name = canonical_option(&m.name, opt).to_string();
                if opt_name.is_empty() {
                    opt_name = opt.to_string();
                }
                if m.name == "conntrack" && (opt_name == "--state" || opt_name == "--ctstate") {
                    opt_name = "--ctstate".into();
                    words = words.iter().map(|w| canonical_states(w)).collect();
                }
                if neg {
                    m.words.push("!".into());
                }
                m.words.push(opt_name);
                m.words.extend(words);
            }
            other => return Err(format!("unexpected argument {other:?}")),
        }
    }
    let Some(chain) = chain else {
        return Ok(None);
    };
    let mut spec = Vec::new();
    let mut push = |flag: &str, v: &Option<(&str, String)>| {
        if let Some((bang, v)) = v {
            if !bang.is_empty() {
                spec.push("!".to_string());
            }
            spec.push(flag.to_string());
            spec.push(v.clone());
        }
    };
    push("-s", &src);
    push("-d", &dst);
    push("-i", &iif);
    push("-o", &oif);
    if proto.as_ref().is_some_and(|(b, p)| !(b.is_empty() && p == "all")) {
        push("-p", &proto);
    }
    if let Some(bang) = frag {
        if !bang.is_empty() {
            spec.push("!".into());
        }
        spec.push("-f".into());
    }
    for m in matches {
        spec.push("-m".into());
        spec.push(m.name);
        spec.extend(m.words);
    }
    spec.extend(target_words);
    let source = src.filter(|(b, _)| b.is_empty()).map(|(_, v)| v);
    let reach = match family {
        Some(Family::V4) => V4,
        Some(Family::V6) => V6,
        None => match source
            .as_deref()
            .or(dst.as_ref().map(|(_, d)| d.as_str()))
            .and_then(|a| a.split(',').next())
            .and_then(address_family)
        {
            Some(Family::V4) => V4,
            Some(Family::V6) => V6,
            None => V4 | V6,
        },
    };
    let accept = target.as_deref() == Some("ACCEPT");
    let stateful = accept
        && table == "filter"
        && chain == "INPUT"
        && spec
            .windows(2)
            .any(|w| w[0] == "--ctstate" && w[1] == "RELATED,ESTABLISHED");
    let mut canonical = String::new();
    if table != "filter" {
        canonical.push_str("-t ");
        canonical.push_str(&table);
        canonical.push(' ');
    }
    canonical.push_str("-A ");
    canonical.push_str(&chain);
    for word in &spec {
        canonical.push(' ');
        canonical.push_str(&quote(word));
    }
    Ok(Some(Rule {
        family,
        canonical,
        reach,
        custom: accept && source.is_some(),
        stateful,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(text: &str) -> Rule {
        let words = shlex::split(text).unwrap();
        let (family, args) = match words[0].as_str() {
            "ipv4" => (Some(Family::V4), &words[1..]),
            "ipv6" => (Some(Family::V6), &words[1..]),
            _ => (None, &words[..]),
        };
        parse_args(family, args).unwrap().unwrap()
    }

    #[test]
    fn canonical_matches_iptables_s_spelling() {
        assert_eq!(
            rule("-A INPUT -p tcp -s 192.0.2.1 -j ACCEPT").canonical(),
            "-A INPUT -s 192.0.2.1/32 -p tcp -j ACCEPT"
        );
        assert_eq!(
            rule("-A INPUT -m state --state ESTABLISHED,RELATED -j ACCEPT").canonical(),
            "-A INPUT -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT"
        );
        assert_eq!(
            rule("--append INPUT --protocol TCP --destination-port 8080 --in-interface eth0 --jump ACCEPT").canonical(),
            "-A INPUT -i eth0 -p tcp -m tcp --dport 8080 -j ACCEPT"
        );
        assert_eq!(
            rule("-A INPUT -s 192.0.2.5/24 -j ACCEPT").canonical(),
            "-A INPUT -s 192.0.2.0/24 -j ACCEPT"
        );
        assert_eq!(
            rule("-A INPUT -s 10.0.0.0/255.0.0.0 -j ACCEPT").canonical(),
            "-A INPUT -s 10.0.0.0/8 -j ACCEPT"
        );
        assert_eq!(
            rule("-A INPUT -s 2001:DB8::1/32 -j ACCEPT").canonical(),
            "-A INPUT -s 2001:db8::/32 -j ACCEPT"
        );
        assert_eq!(
            rule("-t nat -A PREROUTING -p all -j RETURN").canonical(),
            "-t nat -A PREROUTING -j RETURN"
        );
        assert_eq!(
            rule("-A INPUT -m comment --comment 'proxy farm' -s 192.0.2.1 -j ACCEPT").canonical(),
            "-A INPUT -s 192.0.2.1/32 -m comment --comment 'proxy farm' -j ACCEPT"
        );
    }

    #[test]
    fn spellings_of_one_rule_are_equal() {
        let a = rule("ipv4 -A INPUT -p tcp -s 192.0.2.1 -j ACCEPT");
        for b in [
            "ipv4 -A INPUT -s 192.0.2.1/32 -p tcp -j ACCEPT",
            "ipv4 --append INPUT --source 192.0.2.1 --protocol tcp --jump ACCEPT",
            "ipv4 -I INPUT 3 -p 6 -s 192.0.2.1/255.255.255.255 -j ACCEPT",
            "-A INPUT -p tcp -s 192.0.2.1 -j ACCEPT",
        ] {
            assert!(rule(b).covers(&a), "{b}");
        }
        assert!(!rule("ipv6 -A INPUT -p tcp -j ACCEPT").covers(&rule("-A INPUT -p tcp -j ACCEPT")));
        assert!(rule("-A INPUT -p tcp -j ACCEPT").covers(&rule("ipv6 -A INPUT -p tcp -j ACCEPT")));
        assert!(!rule("-A INPUT -p udp -s 192.0.2.1 -j ACCEPT").covers(&a));
    }

    #[test]
    fn negation_in_both_spellings() {
        assert_eq!(
            rule("-A INPUT ! -s 10.0.0.1 -j DROP").canonical(),
            "-A INPUT ! -s 10.0.0.1/32 -j DROP"
        );
        assert_eq!(
            rule("-A INPUT -s ! 10.0.0.1 -j DROP").canonical(),
            "-A INPUT ! -s 10.0.0.1/32 -j DROP"
        );
        assert!(!rule("-A INPUT ! -s 10.0.0.1 -j ACCEPT").is_custom_accept());
    }

    #[test]
    fn classification() {
        assert!(rule("ipv4 -A INPUT -p tcp -s 192.0.2.1 -j ACCEPT").is_custom_accept());
        assert!(!rule("-A INPUT -p tcp --dport 8080 -j ACCEPT").is_custom_accept());
        assert!(rule("-A INPUT -m state --state RELATED,ESTABLISHED -j ACCEPT").is_stateful_accept());
        assert!(rule("-A INPUT -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT").is_stateful_accept());
    }

    #[test]
    fn check_args_turn_append_into_check() {
        assert_eq!(
            rule("ipv4 -I INPUT 2 -p tcp -s 192.0.2.1 -j ACCEPT").check_args(),
            ["-w", "-C", "INPUT", "-s", "192.0.2.1/32", "-p", "tcp", "-j", "ACCEPT"]
        );
        assert_eq!(
            rule("-t nat -A PREROUTING -m comment --comment 'a b' -j RETURN").check_args(),
            [
                "-w",
                "-t",
                "nat",
                "-C",
                "PREROUTING",
                "-m",
                "comment",
                "--comment",
                "a b",
                "-j",
                "RETURN"
            ]
        );
    }

    #[test]
    fn non_rule_calls_and_errors() {
        assert_eq!(parse_args(None, &["-N".into(), "ACL_IN".into()]), Ok(None));
        assert_eq!(
            parse_args(None, &["-P".into(), "INPUT".into(), "DROP".into()]),
            Ok(None)
        );
        assert!(parse_args(None, &["-A".into(), "INPUT".into(), "-s".into()]).is_err());
        assert!(parse_args(None, &["-A".into(), "INPUT".into(), "junk".into()]).is_err());
    }
}
