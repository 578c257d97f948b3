//! The arguments of one iptables call, read the way iptables 1.8 reads them and printed the way
//! `iptables -S` prints the rule. Only a known set of options, matches and targets is read; any
//! other makes the call "not understood" (an error), never a guess.

use std::fmt::Write;
use std::net::{Ipv4Addr, Ipv6Addr};

use super::names::{self, strtoui};
use super::{Family, Iptables, Rule, RuleKey, Source, V4, V6};

/// Long options iptables itself knows (for `getopt_long` abbreviations) and what each names,
/// sorted. `goto` and the
/// options the model does not read are `Other`: no match's options either.
const BASE_LONG: [(&str, Opt<'static>); 37] = [
    ("append", Opt::Append),
    ("check", Opt::Command),
    ("delete", Opt::Command),
    ("delete-chain", Opt::Command),
    ("destination", Opt::Destination),
    ("dst", Opt::Destination),
    ("exact", Opt::Other("exact")),
    ("flush", Opt::Command),
    ("fragment", Opt::Fragment),
    ("goto", Opt::Other("goto")),
    ("help", Opt::Other("help")),
    ("in-interface", Opt::InInterface),
    ("insert", Opt::Insert),
    ("ipv4", Opt::Ipv4),
    ("ipv6", Opt::Ipv6),
    ("jump", Opt::Jump),
    ("line-numbers", Opt::Other("line-numbers")),
    ("list", Opt::Command),
    ("list-rules", Opt::Command),
    ("match", Opt::Match),
    ("modprobe", Opt::Modprobe),
    ("new-chain", Opt::Command),
    ("numeric", Opt::Other("numeric")),
    ("out-interface", Opt::OutInterface),
    ("policy", Opt::Command),
    ("protocol", Opt::Protocol),
    ("rename-chain", Opt::Command),
    ("replace", Opt::Command),
    ("set-counters", Opt::Counters),
    ("source", Opt::Source),
    ("src", Opt::Source),
    ("table", Opt::Table),
    ("verbose", Opt::Verbose),
    ("version", Opt::Other("version")),
    ("wait", Opt::Wait),
    ("wait-interval", Opt::WaitInterval),
    ("zero", Opt::Command),
];

/// The matches the model reads, in the order of [`MATCHES`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
enum MatchKind {
    #[default]
    Tcp,
    Udp,
    Icmp,
    State,
    Conntrack,
    Multiport,
    Comment,
}

/// Matches the model reads, with every long option each defines (read or not).
const MATCHES: [(&str, MatchKind, &[&str]); 7] = [
    (
        "tcp",
        MatchKind::Tcp,
        &[
            "source-port",
            "sport",
            "destination-port",
            "dport",
            "syn",
            "tcp-flags",
            "tcp-option",
        ],
    ),
    (
        "udp",
        MatchKind::Udp,
        &["source-port", "sport", "destination-port", "dport"],
    ),
    ("icmp", MatchKind::Icmp, &["icmp-type"]),
    ("state", MatchKind::State, &["state"]),
    (
        "conntrack",
        MatchKind::Conntrack,
        &[
            "ctstate",
            "ctproto",
            "ctorigsrc",
            "ctorigdst",
            "ctreplsrc",
            "ctrepldst",
            "ctorigsrcport",
            "ctorigdstport",
            "ctreplsrcport",
            "ctrepldstport",
            "ctstatus",
            "ctexpire",
            "ctdir",
        ],
    ),
    (
        "multiport",
        MatchKind::Multiport,
        &["source-ports", "sports", "destination-ports", "dports", "ports"],
    ),
    ("comment", MatchKind::Comment, &["comment"]),
];

/// Conntrack states in the order the matches print them.
const STATES: [&str; 7] = ["INVALID", "NEW", "RELATED", "ESTABLISHED", "UNTRACKED", "SNAT", "DNAT"];

/// One loaded match and the words it prints.
#[derive(Default)]
struct Match {
    kind: MatchKind,
    /// The words it prints, each after a blank.
    text: String,
    /// Options given, as bits by their place in [`Match::opts`], for "only once" and
    /// "required" checks.
    given: u32,
    /// A state word of exactly RELATED,ESTABLISHED (negated or not).
    related_established: bool,
}

impl Match {
    fn name(&self) -> &'static str {
        MATCHES[self.kind as usize].0
    }

    /// Every long option the match defines ([`MATCHES`]).
    fn opts(&self) -> &'static [&'static str] {
        MATCHES[self.kind as usize].2
    }
}

/// The matches a call loads, in order: each of [`MATCHES`] at most once.
#[derive(Default)]
struct Matches(Vec<Match>);

impl Matches {
    fn has(&self, kind: MatchKind) -> bool {
        self.0.iter().any(|m| m.kind == kind)
    }

    /// Loads a match not loaded yet.
    fn load(&mut self, kind: MatchKind) -> Result<(), String> {
        if self.has(kind) {
            return err(format!("match `{}' loaded twice is not read", MATCHES[kind as usize].0));
        }
        self.0.push(Match {
            kind,
            ..Match::default()
        });
        Ok(())
    }
}

/// What an option word names: one of iptables' own options, or `Other` (an option of a loaded
/// match, by its long name, or one the model does not read).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Opt<'a> {
    Append,
    Insert,
    /// A command that adds no rule (`-D`, `-L`, `-P` ...).
    Command,
    Table,
    Source,
    Destination,
    Protocol,
    InInterface,
    OutInterface,
    Fragment,
    Match,
    Jump,
    RejectWith,
    Wait,
    WaitInterval,
    Modprobe,
    Counters,
    Verbose,
    Ipv4,
    Ipv6,
    Other(&'a str),
}

impl<'a> Opt<'a> {
    /// A name among the loaded matches' and the target's options.
    fn of_more(name: &'a str) -> Self {
        if name == "reject-with" {
            Opt::RejectWith
        } else {
            Opt::Other(name)
        }
    }

    /// A short option's letter.
    fn short(letter: u8) -> Self {
        match letter {
            b'A' => Opt::Append,
            b'I' => Opt::Insert,
            b'D' | b'R' | b'L' | b'S' | b'F' | b'Z' | b'N' | b'X' | b'E' | b'P' | b'C' => Opt::Command,
            b't' => Opt::Table,
            b's' => Opt::Source,
            b'd' => Opt::Destination,
            b'p' => Opt::Protocol,
            b'i' => Opt::InInterface,
            b'o' => Opt::OutInterface,
            b'f' => Opt::Fragment,
            b'm' => Opt::Match,
            b'j' => Opt::Jump,
            b'c' => Opt::Counters,
            b'w' => Opt::Wait,
            b'W' => Opt::WaitInterval,
            b'v' => Opt::Verbose,
            b'4' => Opt::Ipv4,
            b'6' => Opt::Ipv6,
            // `-g`, `-n`, `-x` ... : not read.
            _ => Opt::Other(""),
        }
    }
}

/// A byte a chain name the tool reads may hold.
fn chain_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-')
}

/// A base option with its negation and value as written.
type Base<'a> = Option<(bool, &'a str)>;

fn err<T>(why: impl Into<String>) -> Result<T, String> {
    Err(why.into())
}

/// `getopt_long` over the base options and `more` (the loaded matches' and target's): an exact
/// name, else the one name the word abbreviates.
fn resolve<'a>(word: &str, more: impl Iterator<Item = &'a str> + Clone) -> Result<Option<Opt<'a>>, String> {
    if let Some((_, opt)) = BASE_LONG.iter().find(|(n, _)| *n == word) {
        return Ok(Some(*opt));
    }
    if let Some(exact) = more.clone().find(|n| *n == word) {
        return Ok(Some(Opt::of_more(exact)));
    }
    let base = BASE_LONG.iter().copied().filter(|(n, _)| n.starts_with(word));
    let more = more.filter(|n| n.starts_with(word)).map(|n| (n, Opt::of_more(n)));
    let mut hits: Vec<(&str, Opt)> = base.chain(more).collect();
    hits.sort_by_key(|(n, _)| *n);
    hits.dedup_by_key(|(n, _)| *n);
    match hits.as_slice() {
        [] => Ok(None),
        [(_, opt)] => Ok(Some(*opt)),
        _ => err(format!("option --{word} is ambiguous")),
    }
}

/// `xtables_numeric_to_ipaddr`: up to four parts (missing ones are 0), each a C number up to 255.
fn numeric_ipv4(s: &str, is_mask: bool) -> Option<u32> {
    // The first 19 characters only.
    let s = s.char_indices().nth(19).map_or(s, |(at, _)| &s[..at]);
    let mut bytes = [0u8; 4];
    let mut parts = 0;
    for part in s.splitn(4, '.') {
        bytes[parts] = strtoui(part, 255)? as u8;
        parts += 1;
    }
    if is_mask && parts != 4 {
        return None;
    }
    Some(u32::from_be_bytes(bytes))
}

/// `inet_aton`, which the resolver applies to a numeric name: 1 to 4 parts, the last filling the
/// remaining bytes.
fn inet_aton(s: &str) -> Option<u32> {
    let parts: Vec<&str> = s.split('.').collect();
    if parts.is_empty() || parts.len() > 4 {
        return None;
    }
    let nums: Vec<u64> = parts
        .iter()
        .map(|p| strtoui(p, u32::MAX as u64))
        .collect::<Option<_>>()?;
    let (last, head) = nums.split_last()?;
    if head.iter().any(|n| *n > 255) {
        return None;
    }
    let rest_bits = 8 * (4 - head.len() as u32);
    if rest_bits < 32 && *last >= 1u64 << rest_bits {
        return None;
    }
    let mut v: u32 = 0;
    for (i, n) in head.iter().enumerate() {
        v |= (*n as u32) << (24 - 8 * i as u32);
    }
    Some(v | *last as u32)
}

/// One IPv4 address or network as `-s`/`-d` read it, as (network, mask); `None` for the
/// any-address (mask 0).
fn ipv4_network(text: &str) -> Result<Option<(u32, u32)>, String> {
    let (host, mask) = text.rsplit_once('/').map_or((text, None), |(h, m)| (h, Some(m)));
    let mask: u32 = match mask {
        None => u32::MAX,
        Some(m) if m.contains('.') => numeric_ipv4(m, true).ok_or_else(|| format!("invalid mask `{m}'"))?,
        Some(m) => {
            let bits = strtoui(m, 32).ok_or_else(|| format!("invalid mask `{m}'"))? as u32;
            u32::MAX.checked_shl(32 - bits).unwrap_or(0)
        }
    };
    // With mask 0 the address is never read: any text matches everything.
    if mask == 0 {
        return Ok(None);
    }
    let addr = numeric_ipv4(host, false)
        .or_else(|| inet_aton(host))
        .ok_or_else(|| format!("`{host}' is no numeric address (a host name is resolved when loaded)"))?;
    Ok(Some((addr & mask, mask)))
}

/// An IPv4 network as `iptables -S` prints it: a prefix length when the mask is one.
fn push_ipv4_network(out: &mut String, (net, mask): (u32, u32)) {
    let _ = if mask.leading_ones() + mask.trailing_zeros() == 32 {
        write!(out, "{}/{}", Ipv4Addr::from(net), mask.leading_ones())
    } else {
        write!(out, "{}/{}", Ipv4Addr::from(net), Ipv4Addr::from(mask))
    };
}

/// One IPv6 address or network; `None` for the any-address.
fn ipv6_network(text: &str) -> Result<Option<String>, String> {
    let (host, mask) = text.rsplit_once('/').map_or((text, None), |(h, m)| (h, Some(m)));
    let mask: u128 = match mask {
        None => u128::MAX,
        Some(m) if m.contains(':') => u128::from(m.parse::<Ipv6Addr>().map_err(|_| format!("invalid mask `{m}'"))?),
        Some(m) => {
            let bits = strtoui(m, 128).ok_or_else(|| format!("invalid mask `{m}'"))? as u32;
            u128::MAX.checked_shl(128 - bits).unwrap_or(0)
        }
    };
    // With mask 0 the address is never read.
    if mask == 0 {
        return Ok(None);
    }
    let addr: Ipv6Addr = host
        .parse()
        .map_err(|_| format!("`{host}' is no numeric IPv6 address"))?;
    let net = show_ipv6(Ipv6Addr::from(u128::from(addr) & mask));
    Ok(Some(if mask.leading_ones() + mask.trailing_zeros() == 128 {
        format!("{net}/{}", mask.leading_ones())
    } else {
        format!("{net}/{}", show_ipv6(Ipv6Addr::from(mask)))
    }))
}

/// An IPv6 address as glibc's `inet_ntop` writes it: like Rust's form, except that an address
/// whose first 96 bits are zero and whose seventh group is not is written `::a.b.c.d`.
fn show_ipv6(a: Ipv6Addr) -> String {
    let s = a.segments();
    if s[..6].iter().all(|w| *w == 0) && s[6] != 0 {
        let o = a.octets();
        return format!("::{}.{}.{}.{}", o[12], o[13], o[14], o[15]);
    }
    a.to_string()
}

/// An address or network as read, printed when the rule is written out.
enum Net {
    /// One IPv4 network (the common case: no text of its own).
    V4((u32, u32)),
    /// As printed: an IPv6 network, or a list.
    Text(String),
}

impl Net {
    fn push_to(&self, out: &mut String) {
        match self {
            Net::V4(net) => push_ipv4_network(out, *net),
            Net::Text(text) => out.push_str(text),
        }
    }
}

/// An address list (comma-separated) in the family the rule reaches; `None` when it holds the
/// any-address.
fn network(text: &str, v6: bool) -> Result<Option<Net>, String> {
    let one = |text: &str| -> Result<Option<Net>, String> {
        Ok(if v6 {
            ipv6_network(text)?.map(Net::Text)
        } else {
            ipv4_network(text)?.map(Net::V4)
        })
    };
    if !text.contains(',') {
        return one(text);
    }
    let mut parts = Vec::new();
    for part in text.split(',') {
        let Some(net) = one(part)? else {
            return Ok(None);
        };
        let mut printed = String::new();
        net.push_to(&mut printed);
        parts.push(printed);
    }
    parts.sort();
    parts.dedup();
    Ok(Some(Net::Text(parts.join(","))))
}

/// One port: a number up to 65535 or a service. The tcp match reads a C number (`0x50` is 80;
/// a leading zero would be octal, which the model does not read), the udp match a decimal one
/// (`080` is 80, `0x50` is no port).
fn port(text: &str, proto: &str) -> Result<u16, String> {
    if proto == "udp" {
        // The udp match keeps the low 16 bits of a decimal number (65536 is port 0) and finds
        // a service name under any protocol.
        if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) {
            return text
                .parse::<u64>()
                .ok()
                .filter(|n| *n <= u64::from(u32::MAX))
                .map(|n| (n & 0xffff) as u16)
                .ok_or_else(|| format!("invalid port `{text}'"));
        }
        return names::get()
            .service_any(text)
            .ok_or_else(|| format!("invalid port/service `{text}'"));
    }
    c_port(text, proto)
}

/// A port as `xtables_parse_port` reads it (the tcp and multiport matches): a C number, else a
/// service of that protocol.
fn c_port(text: &str, proto: &str) -> Result<u16, String> {
    if text.len() > 1 && text.starts_with('0') && !text.starts_with("0x") {
        return err(format!("port `{text}' with a leading zero is not understood"));
    }
    if let Some(n) = strtoui(text, 65535) {
        return Ok(n as u16);
    }
    names::get()
        .service(text, proto)
        .ok_or_else(|| format!("invalid port/service `{text}'"))
}

/// A port or range as `--dport` reads it, as (low, high); `None` when it is every port.
fn port_range(text: &str, proto: &str) -> Result<Option<(u16, u16)>, String> {
    let (lo, hi) = match text.split_once(':') {
        None => port(text, proto).map(|p| (p, p))?,
        Some((lo, hi)) => (
            if lo.is_empty() { 0 } else { port(lo, proto)? },
            if hi.is_empty() { 65535 } else { port(hi, proto)? },
        ),
    };
    if proto == "tcp" && lo > hi {
        return err(format!("invalid port range `{text}'"));
    }
    if lo == 0 && hi == 65535 {
        return Ok(None);
    }
    Ok(Some((lo, hi)))
}

/// A state list in print order; names are case-insensitive.
fn states(text: &str, allowed: usize) -> Result<String, String> {
    let mut seen = [false; 7];
    for s in text.split(',') {
        let upper = s.to_ascii_uppercase();
        let at = STATES[..allowed]
            .iter()
            .position(|n| *n == upper)
            .ok_or_else(|| format!("bad state `{s}'"))?;
        seen[at] = true;
    }
    Ok(STATES
        .iter()
        .zip(seen)
        .filter(|(_, on)| *on)
        .map(|(n, _)| *n)
        .collect::<Vec<_>>()
        .join(","))
}

/// An ICMP type as `--icmp-type` prints it.
fn icmp(text: &str) -> Result<String, String> {
    let number = |n: &str, what: &str| match strtoui(n, 255) {
        Some(n) => Ok(n as u8),
        None => err(format!("invalid ICMP {what} `{text}'")),
    };
    let (t, lo, hi) = match names::icmp_type(text) {
        Some(v) => v,
        None => match text.split_once('/') {
            Some((t, c)) => {
                let (t, c) = (number(t, "type")?, number(c, "code")?);
                (t, c, c)
            }
            None => (number(text, "type")?, 0, 255),
        },
    };
    Ok(if t == 255 {
        "any".into()
    } else if lo == 0 && hi == 255 {
        t.to_string()
    } else {
        format!("{t}/{lo}")
    })
}

/// `xtables_save_string`: bare when only `[_-0-9a-zA-Z]`, else double-quoted with `"`, `\` and
/// `'` escaped.
pub fn save_string(out: &mut String, value: &str) {
    out.push(' ');
    let plain = !value.is_empty()
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if plain {
        out.push_str(value);
        return;
    }
    out.push('"');
    for c in value.chars() {
        if matches!(c, '"' | '\\' | '\'') {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
}

/// Splits `--name=value` into two words, as `getopt_long` reads it; also returns the index of
/// each option word that was written with `=` (iptables 1.8 reads some of those whole).
fn split_assignments<'a>(args: &[&'a str]) -> (Vec<&'a str>, Vec<usize>) {
    let mut out = Vec::with_capacity(args.len() + 1);
    let mut assigned = Vec::new();
    for a in args {
        match a.strip_prefix("--").and_then(|r| r.split_once('=')) {
            Some((name, value)) => {
                assigned.push(out.len());
                out.push(&a[..2 + name.len()]);
                out.push(value);
            }
            None => out.push(a),
        }
    }
    (out, assigned)
}

/// Reads the arguments of one call as `iptables` reads them: the rule it adds, in canonical
/// form. `Ok(None)`: a call that adds no rule. An error: a call iptables refuses, one the model
/// does not read, or (for [`Iptables::Any`]) one that 1.4.21 and 1.8 read differently.
pub(super) fn parse(
    family: Option<Family>,
    args: &[&str],
    iptables: Iptables,
    restorable: bool,
) -> Result<Option<Rule>, String> {
    if iptables != Iptables::Any {
        return parse_as(family, args, iptables, restorable);
    }
    let old = parse_as(family, args, Iptables::V1_4, restorable);
    let new = parse_as(family, args, Iptables::V1_8, restorable);
    match (old, new) {
        (Err(why), Err(_)) => Err(why),
        (old, new) if old == new => old,
        (Err(why), Ok(_)) => Err(format!("iptables 1.4.21 refuses it ({why}), 1.8 reads it")),
        (Ok(_), Err(why)) => Err(format!("iptables 1.8 refuses it ({why}), 1.4.21 reads it")),
        (Ok(_), Ok(_)) => Err("iptables 1.4.21 and 1.8 read it as different rules".into()),
    }
}

/// [`parse`] as one version of iptables reads it; `restorable`: only as the tool writes rules
/// back ([`Reader::check_restorable`]).
fn parse_as(
    family: Option<Family>,
    args: &[&str],
    iptables: Iptables,
    restorable: bool,
) -> Result<Option<Rule>, String> {
    let (args, assigned) = split_assignments(args);
    let mut reader = Reader {
        family,
        iptables,
        restorable,
        assigned,
        call: Call::default(),
        matches: Matches::default(),
    };
    if !reader.read(&args)? {
        return Ok(None);
    }
    if restorable && (reader.call.command.is_none() || reader.call.target.is_none()) {
        return err("not an -A/-I rule with a target");
    }
    finish(family, reader.call, &reader.matches)
}

/// What a call's options say, as read: the input of the final checks and the printing.
#[derive(Default)]
struct Call<'a> {
    table: Option<&'a str>,
    command: Option<&'a str>,
    src: Base<'a>,
    dst: Base<'a>,
    iif: Base<'a>,
    oif: Base<'a>,
    proto: Option<(bool, u8)>,
    frag: Option<bool>,
    /// The target and its `--reject-with` value.
    target: Option<(&'a str, Option<&'static str>)>,
    /// Whether `-c` was given (its values are not part of the rule).
    counters: bool,
}

/// A chain name the tool reads (`-A`, `-I`, or a target).
fn chain_name(chain: &str) -> bool {
    !chain.is_empty() && chain.len() <= 28 && !chain.starts_with('-') && chain.bytes().all(chain_byte)
}

/// A target the tool reads: a built-in one, or a user chain (not upper case only: an extension
/// the model does not know).
fn target_name(t: &str) -> bool {
    ["ACCEPT", "DROP", "RETURN", "REJECT", "LOG"].contains(&t)
        || (chain_name(t) && !t.bytes().all(|b| b.is_ascii_uppercase()))
}

/// An interface name the tool reads.
fn interface(v: &str) -> Result<(), String> {
    if v.is_empty() || v.len() > 15 {
        return err(format!("interface name `{v}' must be 1 to 15 characters"));
    }
    if !v.bytes().all(|b| b.is_ascii_alphanumeric() || b"_.-+@".contains(&b)) {
        return err(format!("interface name `{v}' is not one the tool reads"));
    }
    Ok(())
}

/// A protocol's number, its name read in any case.
fn protocol(v: &str) -> Result<u8, String> {
    let v = v.to_ascii_lowercase();
    names::get()
        .protocol(&v)
        .ok_or_else(|| format!("unknown protocol \"{v}\" specified"))
}

/// The `--reject-with` values the tool reads.
const REJECT_WITH: [&str; 8] = [
    "icmp-net-unreachable",
    "icmp-host-unreachable",
    "icmp-port-unreachable",
    "icmp-proto-unreachable",
    "icmp-net-prohibited",
    "icmp-host-prohibited",
    "icmp-admin-prohibited",
    "tcp-reset",
];

/// The value after option `args[i]`.
fn value<'a>(args: &[&'a str], i: usize) -> Result<&'a str, String> {
    args.get(i + 1)
        .copied()
        .ok_or_else(|| format!("option {} requires an argument", args[i]))
}

/// Reads a call's options as iptables reads them, one option group per method; each method
/// takes the option at `args[i]` and returns where the next one starts.
struct Reader<'a> {
    family: Option<Family>,
    /// The version whose reading this is (never [`Iptables::Any`]).
    iptables: Iptables,
    /// Whether only the restorable grammar is read ([`Reader::check_restorable`]).
    restorable: bool,
    /// Option words written `--name=value` (indexes into the split arguments).
    assigned: Vec<usize>,
    call: Call<'a>,
    matches: Matches,
}

impl<'a> Reader<'a> {
    /// Reads every option; `Ok(false)`: a command that adds no rule.
    fn read(&mut self, args: &[&'a str]) -> Result<bool, String> {
        let mut negate = false;
        let mut i = 0;
        while i < args.len() {
            if args[i] == "!" {
                if negate {
                    return err("multiple `!' flags not allowed");
                }
                negate = true;
                i += 1;
                continue;
            }
            let neg = std::mem::take(&mut negate);
            let opt = self.name_option(args[i])?;
            self.check_version(opt, args, i)?;
            if self.restorable {
                self.check_restorable(opt, args, i)?;
            }
            i = match opt {
                Opt::Command => return Ok(false),
                Opt::Append | Opt::Insert => self.command(opt, args, i)?,
                Opt::Table => self.table(args, i)?,
                Opt::Source | Opt::Destination | Opt::InInterface | Opt::OutInterface => {
                    self.address_or_interface(opt, neg, args, i)?
                }
                Opt::Protocol | Opt::Fragment => self.protocol_or_fragment(opt, neg, args, i)?,
                Opt::Match | Opt::Jump | Opt::RejectWith => self.extension(opt, neg, args, i)?,
                Opt::Other(name) => self.match_option(name, neg, args, i)?,
                Opt::Counters => self.counters(neg, args, i)?,
                _ => self.general(opt, args, i)?,
            };
        }
        if negate {
            return err("a trailing `!'");
        }
        Ok(true)
    }

    /// What one version of iptables refuses that the other reads: 1.8 reads the value of
    /// `--source=ADDR` (and of the other options it parses from the word itself) as the whole
    /// word; 1.4.21 has no `-W` / `--wait-interval` and no seconds after `-w`.
    fn check_version(&self, opt: Opt, args: &[&'a str], i: usize) -> Result<(), String> {
        let whole_word = matches!(
            opt,
            Opt::Source | Opt::Destination | Opt::Protocol | Opt::Jump | Opt::InInterface | Opt::OutInterface
        );
        match self.iptables {
            Iptables::V1_8 if whole_word && self.assigned.contains(&i) => {
                err(format!("`{}={}' is one word to iptables 1.8", args[i], args[i + 1]))
            }
            Iptables::V1_4 if opt == Opt::WaitInterval || (opt == Opt::Wait && self.assigned.contains(&i)) => {
                err(format!("unknown option \"{}\" (iptables 1.4.21)", args[i]))
            }
            _ => Ok(()),
        }
    }

    /// The restorable grammar: a line written back may use only `-A`/`-I`, `-s`, `-d`, `-p`,
    /// `-i`, `-o`, `-m` and `-j` (short, or long spelled in full), the options of the matches
    /// the model reads (spelled in full), and after the target only its own options; no
    /// `--opt=value`, `--modprobe`, `-w`, `-t`, counters or anything else.
    fn check_restorable(&self, opt: Opt, args: &[&'a str], i: usize) -> Result<(), String> {
        let assigned = self.assigned.contains(&i);
        let word = if assigned {
            format!("{}={}", args[i], args[i + 1])
        } else {
            args[i].to_string()
        };
        if self.call.target.is_some() && opt != Opt::RejectWith {
            return err(format!("target option {word:?} is not one the tool restores"));
        }
        let allowed = matches!(
            opt,
            Opt::Append
                | Opt::Insert
                | Opt::Source
                | Opt::Destination
                | Opt::Protocol
                | Opt::InInterface
                | Opt::OutInterface
                | Opt::Match
                | Opt::Jump
                | Opt::RejectWith
                | Opt::Other(_)
        );
        let in_full = match (args[i].strip_prefix("--"), opt) {
            (None, _) => true,
            (Some(long), Opt::Other(name)) => long == name,
            (Some(long), Opt::RejectWith) => long == "reject-with",
            (Some(long), _) => BASE_LONG.iter().any(|(n, o)| *n == long && *o == opt),
        };
        if !allowed || !in_full || assigned {
            return err(format!("option {word:?} is not one the tool restores"));
        }
        Ok(())
    }

    /// `-c PACKETS BYTES` or `-c PACKETS,BYTES` (`--set-counters`): read as iptables reads
    /// them (each a C `%llu`) and left out of the rule: counters do not change what it is.
    fn counters(&mut self, neg: bool, args: &[&'a str], i: usize) -> Result<usize, String> {
        if neg {
            return err("cannot have ! before -c");
        }
        if std::mem::replace(&mut self.call.counters, true) {
            return err("multiple -c flags not allowed");
        }
        let packets = value(args, i)?;
        let after_first = packets.char_indices().nth(1).map_or(packets.len(), |(at, _)| at);
        let (bytes, next) = match packets[after_first..].find(',') {
            Some(at) => (Some(&packets[after_first + at + 1..]), i + 2),
            None => match args.get(i + 2) {
                Some(b) if !b.starts_with('-') && !b.starts_with('!') => (Some(*b), i + 3),
                _ => (None, i + 2),
            },
        };
        let Some(bytes) = bytes else {
            return err("-c requires packet and byte counter");
        };
        // `sscanf("%llu")`: blanks, a sign, then a digit; the rest is ignored.
        let numeric = |t: &str| {
            let t = t.trim_start_matches([' ', '\t', '\n', '\x0b', '\x0c', '\r']);
            let t = t.strip_prefix(['+', '-']).unwrap_or(t);
            t.starts_with(|c: char| c.is_ascii_digit())
        };
        if packets.is_empty() || !numeric(packets) {
            return err("-c packet counter not numeric");
        }
        if !numeric(bytes) {
            return err("-c byte counter not numeric");
        }
        Ok(next)
    }

    /// Names an option word: a short letter, or a long name resolved among those known now.
    fn name_option(&mut self, word: &str) -> Result<Opt<'static>, String> {
        if let Some(long) = word.strip_prefix("--").filter(|w| !w.is_empty()) {
            let loaded = self.matches.0.iter().flat_map(|m| m.opts().iter().copied());
            let target_opts: &[&'static str] = match self.call.target.map(|t| t.0) {
                Some("REJECT") => &["reject-with"],
                _ => &[],
            };
            return match resolve(long, loaded.chain(target_opts.iter().copied()))? {
                Some(opt) => Ok(opt),
                None => self.implicit_match(long, word),
            };
        }
        match word.strip_prefix('-') {
            Some(letter) if letter.len() == 1 => Ok(Opt::short(letter.as_bytes()[0])),
            _ => err(format!("unexpected argument \"{word}\"")),
        }
    }

    /// An option of the protocol's own match (`-p tcp`, `udp`, `icmp`) loads it, as iptables
    /// does.
    fn implicit_match(&mut self, long: &str, word: &str) -> Result<Opt<'static>, String> {
        let own = match self.call.proto {
            Some((false, 6)) => Some(MatchKind::Tcp),
            Some((false, 17)) => Some(MatchKind::Udp),
            Some((false, 1)) => Some(MatchKind::Icmp),
            _ => None,
        };
        let unknown = || format!("unknown option \"{word}\"");
        let kind = own.filter(|k| !self.matches.has(*k)).ok_or_else(unknown)?;
        let opt = resolve(long, MATCHES[kind as usize].2.iter().copied())?.ok_or_else(unknown)?;
        self.matches.load(kind)?;
        Ok(opt)
    }

    /// `-A CHAIN` or `-I CHAIN [N]`.
    fn command(&mut self, opt: Opt, args: &[&'a str], i: usize) -> Result<usize, String> {
        if self.call.command.is_some() {
            return err("only one command may be given");
        }
        let chain = value(args, i)?;
        if !chain_name(chain) {
            return err(format!("chain name `{chain}' is not one the tool reads"));
        }
        self.call.command = Some(chain);
        let number = args
            .get(i + 2)
            .filter(|n| opt == Opt::Insert && !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()));
        match number {
            Some(n) if n.parse::<u32>().map_or(true, |n| n == 0) => err("invalid rule number"),
            Some(_) => Ok(i + 3),
            None => Ok(i + 2),
        }
    }

    /// `-t TABLE`.
    fn table(&mut self, args: &[&'a str], i: usize) -> Result<usize, String> {
        if self.call.table.is_some() {
            return err("multiple -t flags not allowed");
        }
        let t = value(args, i)?;
        if !["filter", "nat", "mangle", "raw", "security"].contains(&t) {
            return err(format!("table `{t}' is not one the tool reads"));
        }
        self.call.table = Some(t);
        Ok(i + 2)
    }

    /// `-s`, `-d` (read in the rule's family once it is known), `-i`, `-o`.
    fn address_or_interface(&mut self, opt: Opt, neg: bool, args: &[&'a str], i: usize) -> Result<usize, String> {
        let v = value(args, i)?;
        if matches!(opt, Opt::InInterface | Opt::OutInterface) {
            interface(v)?;
        }
        let (slot, letter) = match opt {
            Opt::Source => (&mut self.call.src, 's'),
            Opt::Destination => (&mut self.call.dst, 'd'),
            Opt::InInterface => (&mut self.call.iif, 'i'),
            _ => (&mut self.call.oif, 'o'),
        };
        if slot.is_some() {
            return err(format!("multiple -{letter} flags not allowed"));
        }
        *slot = Some((neg, v));
        Ok(i + 2)
    }

    /// `-p PROTOCOL` or `-f`.
    fn protocol_or_fragment(&mut self, opt: Opt, neg: bool, args: &[&'a str], i: usize) -> Result<usize, String> {
        if opt == Opt::Fragment {
            if self.family == Some(Family::V6) {
                return err("`-f' is not supported in IPv6");
            }
            if self.call.frag.is_some() {
                return err("multiple -f flags not allowed");
            }
            self.call.frag = Some(neg);
            return Ok(i + 1);
        }
        if self.call.proto.is_some() {
            return err("multiple -p flags not allowed");
        }
        let n = protocol(value(args, i)?)?;
        if n == 0 && neg {
            return err("rule would never match protocol");
        }
        self.call.proto = Some((neg, n));
        Ok(i + 2)
    }

    /// `-m MATCH`, `-j TARGET`, `--reject-with TYPE`.
    fn extension(&mut self, opt: Opt, neg: bool, args: &[&'a str], i: usize) -> Result<usize, String> {
        match opt {
            Opt::Match => {
                if neg {
                    return err("unexpected ! flag before --match");
                }
                let v = value(args, i)?;
                let Some((_, kind, _)) = MATCHES.iter().find(|(n, _, _)| *n == v) else {
                    return err(format!("match `{v}' is not one the tool reads"));
                };
                self.matches.load(*kind)?;
            }
            Opt::Jump => {
                if neg {
                    return err("cannot have ! before -j");
                }
                if self.call.target.is_some() {
                    return err("multiple -j flags not allowed");
                }
                let t = value(args, i)?;
                if self.restorable && t.contains('.') {
                    return err(format!("target {t:?} is not one the tool restores"));
                }
                if !target_name(t) {
                    return err(format!("target `{t}' is not one the tool reads"));
                }
                self.call.target = Some((t, None));
            }
            _ => {
                let v = value(args, i)?;
                let Some(v) = REJECT_WITH.iter().find(|k| **k == v) else {
                    return err(format!("--reject-with `{v}' is not read"));
                };
                if let Some((_, with)) = self.call.target.as_mut() {
                    *with = Some(v);
                }
            }
        }
        Ok(i + 2)
    }

    /// Options that change no rule: `-w [SECONDS]`, `-W`, `--modprobe`, `-v`, `-4`, `-6`.
    fn general(&self, opt: Opt, args: &[&'a str], i: usize) -> Result<usize, String> {
        match opt {
            Opt::Wait => {
                // 1.4.21's `-w` takes no seconds.
                let seconds = self.iptables == Iptables::V1_8
                    && args
                        .get(i + 1)
                        .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()));
                Ok(i + 1 + usize::from(seconds))
            }
            Opt::WaitInterval | Opt::Modprobe => value(args, i).map(|_| i + 2),
            Opt::Ipv4 if self.family == Some(Family::V6) => err("this is the IPv6 version of ip6tables"),
            Opt::Ipv6 if self.family != Some(Family::V6) => err("this is the IPv4 version of iptables"),
            _ => Ok(i + 1),
        }
    }

    /// An option of a loaded match (long names only from here on).
    fn match_option(&mut self, name: &str, neg: bool, args: &[&'a str], i: usize) -> Result<usize, String> {
        let proto = self.call.proto;
        let Some((m, at)) = self
            .matches
            .0
            .iter_mut()
            .rev()
            .find_map(|m| m.opts().iter().position(|o| *o == name).map(|at| (m, at)))
        else {
            return err(format!("unknown option \"{}\"", args[i]));
        };
        match_option(m, at, neg, value(args, i)?, proto)?;
        Ok(i + 2)
    }
}

/// The final checks each extension makes, then the rule as `iptables -S` prints it.
fn finish(family: Option<Family>, call: Call, matches: &Matches) -> Result<Option<Rule>, String> {
    let Some(chain) = call.command else {
        return Ok(None);
    };
    let table = call.table.unwrap_or("filter");
    check_call(&call, chain, matches)?;
    // Addresses in the family the rule reaches: the written one, else the one the addresses
    // imply (a colon is IPv6), else IPv4 and IPv6 alike only when there is no address.
    let v6 = match family {
        Some(Family::V6) => true,
        Some(Family::V4) => false,
        None => [call.src.as_ref(), call.dst.as_ref()]
            .iter()
            .flatten()
            .any(|(_, a)| a.contains(':')),
    };
    let (src, dst) = (read_address(call.src, v6)?, read_address(call.dst, v6)?);
    let reach = match family {
        None if src.is_none() && dst.is_none() => V4 | V6,
        _ if v6 => V6,
        _ => V4,
    };
    if reach & V6 != 0 && matches.has(MatchKind::Icmp) {
        return err("ip6tables has no --icmp-type (it is -p icmpv6 --icmpv6-type)");
    }
    let mut canonical = String::with_capacity(128);
    print_rule(&mut canonical, table, chain, &call, [&src, &dst], matches);
    let accept = call.target.is_some_and(|(t, _)| t == "ACCEPT");
    let input_accept = accept && table == "filter" && chain == "INPUT";
    // The article's custom rule: the filter table's INPUT chain accepts a literal address or
    // network; the any-address prints no `-s` at all.
    let custom = input_accept && src.as_ref().is_some_and(|(neg, _)| !neg);
    let stateful = input_accept && matches.0.iter().any(|m| m.related_established);
    let key = RuleKey::new(&canonical, reach, custom, stateful, source_of(&src));
    Ok(Some(Rule {
        family,
        canonical: canonical.into_boxed_str(),
        key,
    }))
}

/// The checks iptables makes once every option is read: each match's needs, and interfaces
/// the chain can see.
fn check_call(call: &Call, chain: &str, matches: &Matches) -> Result<(), String> {
    let proto = call.proto;
    for m in &matches.0 {
        match m.kind {
            MatchKind::Tcp | MatchKind::Udp | MatchKind::Icmp => {
                let want = match m.kind {
                    MatchKind::Tcp => 6,
                    MatchKind::Udp => 17,
                    _ => 1,
                };
                if proto != Some((false, want)) {
                    return err(format!("the {} match needs `-p {}'", m.name(), m.name()));
                }
            }
            MatchKind::State | MatchKind::Conntrack if m.given == 0 => {
                return err(format!("the {} match needs a state", m.name()));
            }
            MatchKind::Multiport => {
                if m.given == 0 {
                    return err("the multiport match needs a port list");
                }
                if !matches!(proto, Some((false, 6 | 17 | 132 | 33 | 136))) {
                    return err("multiport needs `-p tcp', `-p udp', `-p udplite', `-p sctp' or `-p dccp'");
                }
            }
            MatchKind::Comment if m.given == 0 => return err("the comment match needs --comment"),
            _ => {}
        }
    }
    if call.oif.is_some() && matches!(chain, "INPUT" | "PREROUTING") {
        return err(format!("can't use -o with {chain}"));
    }
    if call.iif.is_some() && matches!(chain, "OUTPUT" | "POSTROUTING") {
        return err(format!("can't use -i with {chain}"));
    }
    Ok(())
}

/// An `-s` or `-d` value in the rule's family; `None` for the any-address.
fn read_address(slot: Base, v6: bool) -> Result<Option<(bool, Net)>, String> {
    let Some((neg, text)) = slot else {
        return Ok(None);
    };
    match network(text, v6)? {
        Some(n) => Ok(Some((neg, n))),
        None if neg => err("cannot negate the any-address"),
        None => Ok(None),
    }
}

/// What a read source names.
fn source_of(src: &Option<(bool, Net)>) -> Source {
    let prefix = |mask_bits: u32, trailing: u32, width: u32| {
        if mask_bits + trailing == width {
            Source::Prefix(mask_bits as u8)
        } else {
            Source::NonContiguous
        }
    };
    match src {
        None => Source::Any,
        Some((_, Net::V4((_, mask)))) => prefix(mask.leading_ones(), mask.trailing_zeros(), 32),
        Some((_, Net::Text(text))) if text.contains(',') => Source::List(text.split(',').count() as u32),
        // An IPv6 network as printed: `ADDR/BITS`, or `ADDR/MASK` when the mask is not one.
        Some((_, Net::Text(text))) => match text.rsplit_once('/').map(|(_, m)| m.parse::<u8>()) {
            Some(Ok(bits)) => Source::Prefix(bits),
            _ => Source::NonContiguous,
        },
    }
}

/// The rule as `iptables -S` prints it, into `out`.
fn print_rule(
    out: &mut String,
    table: &str,
    chain: &str,
    call: &Call,
    [src, dst]: [&Option<(bool, Net)>; 2],
    matches: &Matches,
) {
    if table != "filter" {
        let _ = write!(out, "-t {table} ");
    }
    let _ = write!(out, "-A {chain}");
    // ` [!] -x ` before a value.
    let flag = |out: &mut String, neg: bool, f: &str| {
        out.push_str(if neg { " ! " } else { " " });
        out.push_str(f);
        out.push(' ');
    };
    for (slot, f) in [(src, "-s"), (dst, "-d")] {
        if let Some((neg, net)) = slot {
            flag(out, *neg, f);
            net.push_to(out);
        }
    }
    for (slot, f) in [(&call.iif, "-i"), (&call.oif, "-o")] {
        if let Some((neg, v)) = slot {
            flag(out, *neg, f);
            out.push_str(v);
        }
    }
    if let Some((neg, n)) = call.proto.filter(|(_, n)| *n != 0) {
        flag(out, neg, "-p");
        out.push_str(&names::get().protocol_name(n));
    }
    if let Some(neg) = call.frag {
        out.push_str(if neg { " ! -f" } else { " -f" });
    }
    for m in &matches.0 {
        let _ = write!(out, " -m {}{}", m.name(), m.text);
    }
    if let Some((t, with)) = call.target {
        let _ = write!(out, " -j {t}");
        if let Some(w) = with.or((t == "REJECT").then_some("icmp-port-unreachable")) {
            let _ = write!(out, " --reject-with {w}");
        }
    }
}

/// A multiport port list as it prints, its protocol checked as the option is read (so `-p`
/// must come first): at most 15 ports, a range counting two.
fn multiport_list(v: &str, proto: Option<(bool, u8)>) -> Result<String, String> {
    let proto_name = match proto {
        Some((false, 6 | 33 | 136)) => "tcp",
        Some((false, 17)) => "udp",
        Some((false, 132)) => "sctp",
        Some((true, _)) | Some((false, 1..)) => {
            return err("multiport only works with TCP, UDP, UDPLITE, SCTP and DCCP")
        }
        _ => return err("multiport needs `-p tcp', `-p udp', `-p udplite', `-p sctp' or `-p dccp'"),
    };
    let mut slots = 0;
    let mut list = Vec::new();
    for p in v.split(',') {
        list.push(match p.split_once(':') {
            Some((lo, hi)) => {
                slots += 2;
                format!("{}:{}", c_port(lo, proto_name)?, c_port(hi, proto_name)?)
            }
            None => {
                slots += 1;
                c_port(p, proto_name)?.to_string()
            }
        });
    }
    if slots > 15 {
        return err("too many ports specified");
    }
    Ok(list.join(","))
}

/// Reads one option of a loaded match into its printed words.
/// `at`: the option's place in the match's options.
fn match_option(m: &mut Match, at: usize, neg: bool, v: &str, proto: Option<(bool, u8)>) -> Result<(), String> {
    let (name, opt) = (m.name(), m.opts()[at]);
    // `--source-port(s)` and `--destination-port(s)` are `--sport(s)` and `--dport(s)`, the
    // names after them.
    let at = match (m.kind, at) {
        (MatchKind::Tcp | MatchKind::Udp | MatchKind::Multiport, 0 | 2) => at + 1,
        _ => at,
    };
    let canonical_opt = m.opts()[at];
    if m.given & (1 << at) != 0 || (m.kind == MatchKind::Multiport && m.given != 0) {
        return err(format!("--{opt} may be given once"));
    }
    m.given |= 1 << at;
    let text = &mut m.text;
    if neg {
        text.push_str(" !");
    }
    match (m.kind, at) {
        (MatchKind::Tcp | MatchKind::Udp, 1 | 3) => {
            if let Some((lo, hi)) = port_range(v, name)? {
                if neg && lo == 0 && hi != 0 {
                    // nf_tables prints the complement (`! 0:80` is `81:65535`), legacy does not.
                    return err("a negated range from port 0 is printed differently by the backends");
                }
                let _ = write!(text, " --{canonical_opt} {lo}");
                if lo != hi {
                    let _ = write!(text, ":{hi}");
                }
            } else if neg {
                return err("a negated all-ports range is printed differently by the backends");
            }
        }
        (MatchKind::Icmp, 0) => {
            let _ = write!(text, " --icmp-type {}", icmp(v)?);
        }
        (MatchKind::State | MatchKind::Conntrack, 0) => {
            let list = states(v, if m.kind == MatchKind::State { 5 } else { 7 })?;
            m.related_established |= list == "RELATED,ESTABLISHED";
            let _ = write!(text, " --{canonical_opt} {list}");
        }
        (MatchKind::Multiport, 1 | 3 | 4) => {
            let _ = write!(text, " --{canonical_opt} {}", multiport_list(v, proto)?);
        }
        (MatchKind::Comment, 0) => {
            if neg {
                return err("the comment match cannot be negated");
            }
            // The kernel keeps 255 bytes; iptables cuts a longer comment there.
            let Some(v) = v.get(..v.len().min(255)) else {
                return err("a comment cut by iptables inside a character is not read");
            };
            text.push_str(" --comment");
            save_string(text, v);
        }
        _ => return err(format!("option --{canonical_opt} of the {name} match is not read")),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_are_listed_in_the_order_of_their_kinds() {
        for (k, (name, kind, opts)) in MATCHES.iter().enumerate() {
            assert_eq!(*kind as usize, k, "{name}");
            assert!(opts.len() <= 32, "{name}: options are bits of a u32");
        }
        // The long spellings of the port options come right before the short ones.
        for (kind, pairs) in [
            (
                MatchKind::Tcp,
                [("source-port", "sport"), ("destination-port", "dport")],
            ),
            (
                MatchKind::Udp,
                [("source-port", "sport"), ("destination-port", "dport")],
            ),
            (
                MatchKind::Multiport,
                [("source-ports", "sports"), ("destination-ports", "dports")],
            ),
        ] {
            let opts = MATCHES[kind as usize].2;
            assert_eq!([(opts[0], opts[1]), (opts[2], opts[3])], pairs, "{kind:?}");
        }
    }

    #[test]
    fn base_options_resolve_as_getopt_long_resolves_them() {
        for (name, opt) in BASE_LONG {
            assert_eq!(resolve(name, std::iter::empty()), Ok(Some(opt)));
        }
        // Exact names, abbreviations and ambiguity as getopt_long answers them.
        assert_eq!(resolve("jump", std::iter::empty()), Ok(Some(Opt::Jump)));
        assert_eq!(resolve("jum", std::iter::empty()), Ok(Some(Opt::Jump)));
        assert_eq!(resolve("src", std::iter::empty()), Ok(Some(Opt::Source)));
        assert_eq!(resolve("list-r", std::iter::empty()), Ok(Some(Opt::Command)));
        assert_eq!(resolve("go", std::iter::empty()), Ok(Some(Opt::Other("goto"))));
        assert_eq!(
            resolve("dport", ["dport", "sport"].into_iter()),
            Ok(Some(Opt::Other("dport")))
        );
        assert_eq!(resolve("dp", ["dport"].into_iter()), Ok(Some(Opt::Other("dport"))));
        assert_eq!(
            resolve("reject", ["reject-with"].into_iter()),
            Ok(Some(Opt::RejectWith))
        );
        assert!(
            resolve("de", std::iter::empty()).is_err(),
            "delete, delete-chain, destination"
        );
        assert_eq!(resolve("nonesuch", std::iter::empty()), Ok(None));
    }
}
