//! One iptables rule and its canonical form, spelled the way `iptables -S` prints it.

use std::borrow::Cow;
use std::fmt;
use std::net::IpAddr;

use serde::Serialize;

/// Address family an `IPTABLE` call names (`ipv4` / `ipv6`); without one the call goes to both.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
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

/// What a rule means, without its text: a 128-bit hash of the canonical form (xxh3; a collision
/// between two different rules is beyond any practical chance) and the properties the tool acts
/// on. Large scripts hold one per line, so it is small and needs no allocation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RuleKey {
    hash: [u64; 2],
    /// Families the rule reaches, as a bit set (1 = IPv4, 2 = IPv6).
    reach: u8,
    /// An ACCEPT naming a non-negated source address (the article's custom rule).
    custom: bool,
    /// The INPUT rule accepting RELATED,ESTABLISHED.
    stateful: bool,
}

impl RuleKey {
    fn new(canonical: &str, reach: u8, custom: bool, stateful: bool) -> Self {
        let h = xxhash_rust::xxh3::xxh3_128(canonical.as_bytes());
        Self {
            hash: [h as u64, (h >> 64) as u64],
            reach,
            custom,
            stateful,
        }
    }

    /// The canonical form's hash, for indexes.
    pub fn hash(&self) -> u128 {
        u128::from(self.hash[0]) | (u128::from(self.hash[1]) << 64)
    }

    /// The families reached, as a bit set for indexes.
    pub fn reach(&self) -> u8 {
        self.reach
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

    /// Whether `self` already does what `other` does: same table, chain and specification, in
    /// every family `other` reaches.
    pub fn covers(&self, other: &RuleKey) -> bool {
        self.hash == other.hash && self.reach & other.reach == other.reach
    }

    /// The article's custom rule: an ACCEPT that names a source address or network.
    pub fn is_custom_accept(&self) -> bool {
        self.custom
    }

    /// The vendor's stateful rule: INPUT accepts RELATED,ESTABLISHED.
    pub fn is_stateful_accept(&self) -> bool {
        self.stateful
    }
}

/// A rule added by `-A` or `-I`, with its canonical text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    /// The family argument as written (`None`: both families).
    pub family: Option<Family>,
    /// `[-t TABLE] -A CHAIN spec...` in canonical order and spelling.
    canonical: Box<str>,
    key: RuleKey,
}

const V4: u8 = 1;
const V6: u8 = 2;

impl Rule {
    /// `-A CHAIN spec...` in canonical spelling; with `-t TABLE` first when not the filter table.
    pub fn canonical(&self) -> &str {
        &self.canonical
    }

    /// What the rule means, for matching.
    pub fn key(&self) -> &RuleKey {
        &self.key
    }

    pub fn families(&self) -> &'static [Family] {
        self.key.families()
    }

    pub fn reach(&self) -> u8 {
        self.key.reach
    }

    /// Whether `self` already does what `other` does (see [`RuleKey::covers`]).
    pub fn covers(&self, other: &Rule) -> bool {
        self.key.covers(&other.key)
    }

    pub fn is_custom_accept(&self) -> bool {
        self.key.custom
    }

    pub fn is_stateful_accept(&self) -> bool {
        self.key.stateful
    }

    /// The table the rule goes to (`filter` unless the canonical form starts with `-t TABLE`).
    pub fn table(&self) -> &str {
        match self.canonical.strip_prefix("-t ") {
            Some(rest) => rest.split(' ').next().unwrap_or("filter").trim_matches('\''),
            None => "filter",
        }
    }
}

/// Bytes a word may hold and still print unquoted.
fn is_plain_byte(b: u8) -> bool {
    matches!(b, b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'_' | b'.' | b':' | b'/' | b',' | b'!' | b'=' | b'@' | b'%' | b'+' | b'-')
}

/// Appends a word, quoted only when it holds characters beyond the plain iptables set.
fn push_quoted(out: &mut String, word: &str) {
    let plain = !word.is_empty() && word.bytes().all(is_plain_byte);
    if plain {
        out.push_str(word);
    } else {
        out.push('\'');
        out.push_str(&word.replace('\'', r"'\''"));
        out.push('\'');
    }
}

/// Classifies an argument: the short letter of a base or command option (long spellings
/// folded in), `!`, `-` for any other option, 0 for a plain word.
fn option_code(word: &str) -> u8 {
    let b = word.as_bytes();
    match b {
        [b'!'] => b'!',
        [b'-', c] if c.is_ascii_alphabetic() => match c {
            b't' | b'A' | b'I' | b'N' | b'P' | b'F' | b'X' | b'D' | b'R' | b'Z' | b'E' | b'L' | b'S' | b'C' | b's'
            | b'd' | b'i' | b'o' | b'p' | b'f' | b'm' | b'j' | b'g' => *c,
            _ => b'-',
        },
        [b'-', b'-', ..] => match word {
            "--table" => b't',
            "--append" => b'A',
            "--insert" => b'I',
            "--new-chain" => b'N',
            "--policy" => b'P',
            "--flush" => b'F',
            "--delete-chain" => b'X',
            "--delete" => b'D',
            "--replace" => b'R',
            "--zero" => b'Z',
            "--rename-chain" => b'E',
            "--list" => b'L',
            "--list-rules" => b'S',
            "--check" => b'C',
            "--source" | "--src" => b's',
            "--destination" | "--dst" => b'd',
            "--in-interface" => b'i',
            "--out-interface" => b'o',
            "--protocol" => b'p',
            "--fragment" => b'f',
            "--match" => b'm',
            "--jump" => b'j',
            "--goto" => b'g',
            _ => b'-',
        },
        _ if is_option(word) => b'-',
        _ => 0,
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

fn canonical_protocol(p: &str) -> Cow<'_, str> {
    let p = lower(p);
    let named = match p.as_ref() {
        "6" => "tcp",
        "17" => "udp",
        "1" => "icmp",
        "58" | "icmpv6" | "ipv6-icmp" => "ipv6-icmp",
        "0" => "all",
        _ => return p,
    };
    Cow::Borrowed(named)
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

/// Parses the words of an `IPTABLE` call, `[ipv4|ipv6] ARGS...`; `family` applies when the words
/// name none (an `iptables -S` line is IPv4). The text is split into words as bash splits it
/// ([`crate::domain::shell::words`]); a line whose words depend on more than quoting is an error.
pub fn parse_call(text: &str, family: Option<Family>) -> Result<Option<Rule>, String> {
    let mut canonical = String::new();
    let key = parse_call_key(text, family, &mut canonical)?;
    Ok(key.map(|(family, key)| Rule {
        family,
        canonical: canonical.into_boxed_str(),
        key,
    }))
}

/// Like [`parse_call`], but writes the canonical form into `canonical` (a buffer reused across
/// lines) and returns only the written family and the key: no allocation per rule.
pub fn parse_call_key(
    text: &str,
    family: Option<Family>,
    canonical: &mut String,
) -> Result<Option<(Option<Family>, RuleKey)>, String> {
    let owned = crate::domain::shell::words(text.as_bytes())?.words;
    let words: Vec<&str> = owned.iter().map(String::as_str).collect();
    parse_words_key(&words, family, canonical)
}

/// Like [`parse_call_key`], on words already split: `[ipv4|ipv6] ARGS...`.
pub fn parse_words_key(
    words: &[&str],
    family: Option<Family>,
    canonical: &mut String,
) -> Result<Option<(Option<Family>, RuleKey)>, String> {
    let (family, args) = match words.first() {
        Some(&"ipv4") => (Some(Family::V4), &words[1..]),
        Some(&"ipv6") => (Some(Family::V6), &words[1..]),
        _ => (family, words),
    };
    Ok(parse_into(family, args, canonical)?.map(|key| (family, key)))
}

/// Lower-cases without allocating when the word already is lower case.
fn lower(word: &str) -> Cow<'_, str> {
    if word.bytes().any(|b| b.is_ascii_uppercase()) {
        Cow::Owned(word.to_ascii_lowercase())
    } else {
        Cow::Borrowed(word)
    }
}

/// A match module's canonical name: `-m state --state` and `-m conntrack --ctstate` are the same
/// match, whether loaded by `-m` or implicitly by `-p`.
fn module_name(name: Cow<'_, str>) -> Cow<'_, str> {
    if name == "state" {
        Cow::Borrowed("conntrack")
    } else {
        name
    }
}

/// A match module with its options, as they will print.
struct Match<'a> {
    name: Cow<'a, str>,
    words: Vec<Cow<'a, str>>,
}

/// A base option (`-s`, `-d`, `-i`, `-o`, `-p`) with its negation.
type Base<'a> = Option<(bool, Cow<'a, str>)>;

/// Parses iptables arguments (after the family) into a rule. Returns `None` for calls that add no
/// rule, and an error for a rule the tool cannot read.
pub fn parse_args(family: Option<Family>, args: &[&str]) -> Result<Option<Rule>, String> {
    let mut canonical = String::new();
    Ok(parse_into(family, args, &mut canonical)?.map(|key| Rule {
        family,
        canonical: canonical.into_boxed_str(),
        key,
    }))
}

/// Like [`parse_args`], with `family` from the command (`iptables`, `ip6tables`) or, for `IPTABLE`
/// (`None`), from a leading `ipv4` / `ipv6` word.
pub fn parse_args_with(family: Option<Family>, words: &[&str]) -> Result<Option<Rule>, String> {
    let mut canonical = String::new();
    Ok(
        parse_words_key(words, family, &mut canonical)?.map(|(family, key)| Rule {
            family,
            canonical: canonical.into_boxed_str(),
            key,
        }),
    )
}

/// Parses arguments into `canonical` (cleared first) and the rule's key.
fn parse_into(family: Option<Family>, args: &[&str], canonical: &mut String) -> Result<Option<RuleKey>, String> {
    let mut table = "filter";
    let mut chain = None;
    let (mut src, mut dst, mut iif, mut oif, mut proto): (Base, Base, Base, Base, Base) =
        (None, None, None, None, None);
    let mut frag: Option<bool> = None;
    let mut matches: Vec<Match> = Vec::new();
    let mut target: Option<&str> = None;
    let mut target_words: Vec<&str> = Vec::new();
    let mut negate = false;
    let mut i = 0;
    let value = |i: usize, opt: &str| -> Result<&str, String> {
        args.get(i + 1).copied().ok_or_else(|| format!("{opt} needs a value"))
    };
    while i < args.len() {
        let a = args[i];
        let neg = std::mem::take(&mut negate);
        match option_code(a) {
            b'!' => {
                negate = true;
                i += 1;
                continue;
            }
            b't' => {
                table = value(i, a)?;
                i += 2;
            }
            b'A' | b'I' => {
                chain = Some(value(i, a)?);
                i += 2;
                if option_code(a) == b'I' && args.get(i).is_some_and(|n| is_number(n)) {
                    i += 1;
                }
            }
            b'N' | b'P' | b'F' | b'X' | b'D' | b'R' | b'Z' | b'E' | b'L' | b'S' | b'C' => return Ok(None),
            code @ (b's' | b'd' | b'i' | b'o' | b'p') => {
                let mut v = value(i, a)?;
                let mut neg = neg;
                i += 2;
                // Old spelling: `-s ! ADDR`.
                if v == "!" {
                    v = value(i - 1, a)?;
                    neg = true;
                    i += 1;
                }
                match code {
                    b's' => src = Some((neg, Cow::Owned(canonical_address(v)))),
                    b'd' => dst = Some((neg, Cow::Owned(canonical_address(v)))),
                    b'i' => iif = Some((neg, Cow::Borrowed(v))),
                    b'o' => oif = Some((neg, Cow::Borrowed(v))),
                    _ => proto = Some((neg, canonical_protocol(v))),
                }
            }
            b'f' => {
                frag = Some(neg);
                i += 1;
            }
            b'm' => {
                let name = module_name(lower(value(i, a)?));
                i += 2;
                matches.push(Match {
                    name,
                    words: Vec::new(),
                });
            }
            code @ (b'j' | b'g') => {
                let t = value(i, a)?;
                i += 2;
                let flag = if code == b'g' { "-g" } else { "-j" };
                target_words.clear();
                target_words.extend([flag, t]);
                target = Some(t);
            }
            b'-' => {
                let opt = a;
                let start = i + 1;
                i += 1;
                while i < args.len() && args[i] != "!" && !is_option(args[i]) {
                    i += 1;
                }
                let words = &args[start..i];
                if target.is_some() {
                    if neg {
                        target_words.push("!");
                    }
                    target_words.push(opt);
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
                        name: module_name(implicit),
                        words: Vec::new(),
                    });
                }
                let m = matches.last_mut().expect("a match exists");
                let mut opt_name = canonical_option(&m.name, opt);
                if opt_name.is_empty() {
                    opt_name = opt;
                }
                if neg {
                    m.words.push(Cow::Borrowed("!"));
                }
                if m.name == "conntrack" && (opt_name == "--state" || opt_name == "--ctstate") {
                    m.words.push(Cow::Borrowed("--ctstate"));
                    m.words.extend(words.iter().map(|w| Cow::Owned(canonical_states(w))));
                } else {
                    m.words.push(Cow::Borrowed(opt_name));
                    m.words.extend(words.iter().map(|w| Cow::Borrowed(*w)));
                }
            }
            _ => return Err(format!("unexpected argument {a:?}")),
        }
    }
    let Some(chain) = chain else {
        return Ok(None);
    };
    if proto.as_ref().is_some_and(|(neg, p)| !neg && p == "all") {
        proto = None;
    }
    canonical.clear();
    if table != "filter" {
        canonical.push_str("-t ");
        push_quoted(canonical, table);
        canonical.push(' ');
    }
    canonical.push_str("-A ");
    push_quoted(canonical, chain);
    let mut word = |w: &str| {
        canonical.push(' ');
        push_quoted(canonical, w);
    };
    for (flag, v) in [("-s", &src), ("-d", &dst), ("-i", &iif), ("-o", &oif), ("-p", &proto)] {
        if let Some((neg, v)) = v {
            if *neg {
                word("!");
            }
            word(flag);
            word(v);
        }
    }
    if let Some(neg) = frag {
        if neg {
            word("!");
        }
        word("-f");
    }
    let mut stateful = false;
    for m in &matches {
        word("-m");
        word(&m.name);
        for (k, w) in m.words.iter().enumerate() {
            word(w);
            stateful |= w == "--ctstate" && m.words.get(k + 1).is_some_and(|s| s == "RELATED,ESTABLISHED");
        }
    }
    for w in &target_words {
        word(w);
    }
    let source = src.as_ref().filter(|(neg, _)| !neg).map(|(_, v)| v.as_ref());
    // The article's custom rule: the filter table's INPUT chain accepts a literal address or
    // network (prefix above 0); a host name (resolved at load time) or `0.0.0.0/0` is not one.
    let literal_source = source.is_some_and(|s| {
        s.split(',').all(|a| {
            a.split_once('/')
                .is_some_and(|(ip, p)| ip.parse::<IpAddr>().is_ok() && p.parse::<u8>().is_ok_and(|p| p > 0))
        })
    });
    let reach = match family {
        Some(Family::V4) => V4,
        Some(Family::V6) => V6,
        None => match source
            .or(dst.as_ref().map(|(_, d)| d.as_ref()))
            .and_then(|a| a.split(',').next())
            .and_then(address_family)
        {
            Some(Family::V4) => V4,
            Some(Family::V6) => V6,
            None => V4 | V6,
        },
    };
    let accept = target == Some("ACCEPT");
    Ok(Some(RuleKey::new(
        canonical,
        reach,
        accept && literal_source && table == "filter" && chain == "INPUT",
        stateful && accept && table == "filter" && chain == "INPUT",
    )))
}

/// Base options a restorable line may use (long spellings included).
const RESTORABLE_BASE: [&str; 19] = [
    "-A",
    "--append",
    "-I",
    "--insert",
    "-s",
    "--source",
    "--src",
    "-d",
    "--destination",
    "--dst",
    "-p",
    "--protocol",
    "-i",
    "--in-interface",
    "-o",
    "--out-interface",
    "-m",
    "--match",
    "-j",
];

/// Match modules a restorable line may load, with the options each takes.
const RESTORABLE_MATCHES: [(&str, &[&str]); 10] = [
    (
        "tcp",
        &[
            "--dport",
            "--sport",
            "--destination-port",
            "--source-port",
            "--syn",
            "--tcp-flags",
        ],
    ),
    ("udp", &["--dport", "--sport", "--destination-port", "--source-port"]),
    ("icmp", &["--icmp-type"]),
    ("icmp6", &["--icmpv6-type"]),
    ("state", &["--state"]),
    ("conntrack", &["--ctstate"]),
    (
        "multiport",
        &[
            "--dports",
            "--sports",
            "--ports",
            "--destination-ports",
            "--source-ports",
        ],
    ),
    ("comment", &["--comment"]),
    ("iprange", &["--src-range", "--dst-range"]),
    ("mac", &["--mac-source"]),
];

/// Targets a restorable line may jump to, with the options each takes.
const RESTORABLE_TARGETS: [(&str, &[&str]); 5] = [
    ("ACCEPT", &[]),
    ("DROP", &[]),
    ("RETURN", &[]),
    ("REJECT", &["--reject-with"]),
    ("LOG", &["--log-prefix", "--log-level"]),
];

/// Checks that the arguments of a line to be written back use only the options, match modules
/// and targets the tool knows (`--modprobe`, `-w`, `--table` and every other option are refused):
/// `[ipv4|ipv6] (-A|-I) CHAIN [N] SPEC... -j TARGET [TARGET OPTIONS]`. Returns why not.
pub fn check_restorable_args(words: &[&str]) -> Result<(), String> {
    let args = match words.first() {
        Some(&"ipv4") | Some(&"ipv6") => &words[1..],
        _ => words,
    };
    let mut module: Option<&str> = None;
    let mut proto: Option<String> = None;
    let mut target: Option<&str> = None;
    let mut i = 0;
    let mut added = false;
    while i < args.len() {
        let a = args[i];
        let value = args.get(i + 1).copied();
        if a == "!" {
            i += 1;
            continue;
        }
        if let Some(t) = target {
            let opts = RESTORABLE_TARGETS
                .iter()
                .find(|(n, _)| *n == t)
                .map_or(&[][..], |(_, o)| o);
            if !opts.contains(&a) || value.is_none() {
                return Err(format!("target option {a:?} is not one the tool restores"));
            }
            i += 2;
            continue;
        }
        match a {
            "-A" | "--append" | "-I" | "--insert" => {
                value.ok_or("a chain is missing")?;
                added = true;
                i += 2;
                if matches!(a, "-I" | "--insert") && args.get(i).is_some_and(|n| is_number(n)) {
                    i += 1;
                }
            }
            "-m" | "--match" => {
                let name = value.ok_or("a match name is missing")?;
                if !RESTORABLE_MATCHES.iter().any(|(n, _)| *n == name) {
                    return Err(format!("match module {name:?} is not one the tool restores"));
                }
                module = Some(name);
                i += 2;
            }
            "-p" | "--protocol" => {
                proto = Some(value.ok_or("a protocol is missing")?.to_ascii_lowercase());
                i += 2;
            }
            "-j" | "--jump" => {
                let t = value.ok_or("a target is missing")?;
                let known = RESTORABLE_TARGETS.iter().any(|(n, _)| *n == t);
                let chain = !t.is_empty() && t.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
                if !known && !chain {
                    return Err(format!("target {t:?} is not one the tool restores"));
                }
                target = Some(t);
                i += 2;
            }
            _ if RESTORABLE_BASE.contains(&a) => {
                value.ok_or_else(|| format!("{a} needs a value"))?;
                i += 2;
            }
            _ if a.starts_with('-') => {
                // A match option: of the loaded module, or of the protocol's implicit one.
                let owner = module.map(str::to_string).or_else(|| proto.clone());
                let allowed = owner
                    .as_deref()
                    .and_then(|m| RESTORABLE_MATCHES.iter().find(|(n, _)| *n == m));
                let Some((_, opts)) = allowed.filter(|(_, o)| o.contains(&a)) else {
                    return Err(format!("option {a:?} is not one the tool restores"));
                };
                let _ = opts;
                i += 1;
                // Its values: every word up to the next option.
                while i < args.len() && args[i] != "!" && !is_option(args[i]) {
                    i += 1;
                }
            }
            _ => return Err(format!("unexpected word {a:?}")),
        }
    }
    if !added || target.is_none() {
        return Err("not an -A/-I rule with a target".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(text: &str) -> Rule {
        parse_call(text, None).unwrap().unwrap()
    }

    #[test]
    fn plain_and_quoted_lines_parse_alike() {
        for (plain, quoted) in [
            (
                "-A INPUT -s 1.2.3.4 -j ACCEPT # c",
                "-A INPUT -s '1.2.3.4' -j \"ACCEPT\" # c",
            ),
            ("-A  INPUT\t-p tcp#x -j DROP", "-A INPUT -p 'tcp#x' -j DROP"),
        ] {
            assert_eq!(parse_call(plain, None), parse_call(quoted, None), "{plain:?}");
        }
        assert!(parse_call("-A INPUT -s 'x", None).is_err());
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
    fn canonical_forms_read_back_as_themselves() {
        // Found by fuzzing: a chain name with a quote was written unquoted.
        for text in [
            "-A 'IN\"P T' -j ACCEPT",
            "-t 'a b' -A X -j ACCEPT",
            "-A INPUT -m comment --comment \"it's\" -j DROP",
            // Also found by fuzzing: a protocol named like a match module loads it implicitly.
            "-A INPUT -p state --state ESTABLISHED,,X -j ACCEPT",
        ] {
            let r = rule(text);
            assert_eq!(rule(r.canonical()).canonical(), r.canonical(), "{text}");
        }
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
    fn table_comes_from_the_canonical_form() {
        assert_eq!(rule("ipv4 -I INPUT 2 -p tcp -s 192.0.2.1 -j ACCEPT").table(), "filter");
        assert_eq!(rule("-t nat -A PREROUTING -j RETURN").table(), "nat");
    }

    #[test]
    fn non_rule_calls_and_errors() {
        assert_eq!(parse_args(None, &["-N", "ACL_IN"]), Ok(None));
        assert_eq!(parse_args(None, &["-P", "INPUT", "DROP"]), Ok(None));
        assert!(parse_args(None, &["-A", "INPUT", "-s"]).is_err());
        assert!(parse_args(None, &["-A", "INPUT", "junk"]).is_err());
    }
}
