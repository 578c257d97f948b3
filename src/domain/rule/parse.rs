//! The arguments of one iptables call, read the way iptables 1.8 reads them and printed the way
//! `iptables -S` prints the rule. Only a known set of options, matches and targets is read; any
//! other makes the call "not understood" (an error), never a guess.

use std::borrow::Cow;
use std::cell::{Cell, RefCell};
use std::net::Ipv6Addr;

use super::names::{self, strtoui};
use super::{Family, RuleKey, V4, V6};

/// Long options iptables itself knows (for `getopt_long` abbreviations) and what each names,
/// sorted: the names sharing a first byte are one run ([`BASE_BY_FIRST`]). `goto` and the
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
    ("set-counters", Opt::Other("set-counters")),
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
enum Kind {
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
const MATCHES: [(&str, Kind, &[&str]); 7] = [
    (
        "tcp",
        Kind::Tcp,
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
    ("udp", Kind::Udp, &["source-port", "sport", "destination-port", "dport"]),
    ("icmp", Kind::Icmp, &["icmp-type"]),
    ("state", Kind::State, &["state"]),
    (
        "conntrack",
        Kind::Conntrack,
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
        Kind::Multiport,
        &["source-ports", "sports", "destination-ports", "dports", "ports"],
    ),
    ("comment", Kind::Comment, &["comment"]),
];

/// Conntrack states in the order the matches print them.
const STATES: [&str; 7] = ["INVALID", "NEW", "RELATED", "ESTABLISHED", "UNTRACKED", "SNAT", "DNAT"];

/// One loaded match and the words it prints.
#[derive(Default)]
struct Match {
    kind: Kind,
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

/// The matches a call loads, in order, without an allocation of their own: each of
/// [`MATCHES`] at most once.
struct Loaded {
    list: [Match; MATCHES.len()],
    len: usize,
}

impl Loaded {
    fn new() -> Self {
        Self {
            list: std::array::from_fn(|_| Match::default()),
            len: 0,
        }
    }

    /// Unloads every match, keeping their text buffers.
    fn clear(&mut self) {
        for m in self.iter_mut() {
            m.text.clear();
            (m.kind, m.given, m.related_established) = (Kind::default(), 0, false);
        }
        self.len = 0;
    }

    fn iter(&self) -> std::slice::Iter<'_, Match> {
        self.list[..self.len].iter()
    }

    fn iter_mut(&mut self) -> std::slice::IterMut<'_, Match> {
        self.list[..self.len].iter_mut()
    }

    fn has(&self, kind: Kind) -> bool {
        self.iter().any(|m| m.kind == kind)
    }

    /// Loads a match not loaded yet.
    fn load(&mut self, kind: Kind) -> Result<(), String> {
        if self.has(kind) {
            return err(format!("match `{}' loaded twice is not read", MATCHES[kind as usize].0));
        }
        self.list[self.len].kind = kind;
        self.len += 1;
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

/// For each first byte, the run of [`BASE_LONG`] names that start with it (the names are
/// sorted): a word is compared with a few names, not searched for among all.
const BASE_BY_FIRST: [(u8, u8); 256] = {
    let mut runs = [(0u8, 0u8); 256];
    let mut k = 0;
    while k < BASE_LONG.len() {
        let first = BASE_LONG[k].0.as_bytes()[0] as usize;
        if runs[first].1 == 0 {
            runs[first].0 = k as u8;
        }
        runs[first].1 = k as u8 + 1;
        k += 1;
    }
    runs
};

/// `getopt_long` over the base options and `more` (the loaded matches' and target's): an exact
/// name, else the one name the word abbreviates.
fn resolve<'a>(word: &str, more: impl Iterator<Item = &'a str> + Clone) -> Result<Option<Opt<'a>>, String> {
    let (from, to) = word.as_bytes().first().map_or((0, 0), |b| BASE_BY_FIRST[*b as usize]);
    let base = &BASE_LONG[from as usize..to as usize];
    if let Some((_, opt)) = base.iter().find(|(n, _)| *n == word) {
        return Ok(Some(*opt));
    }
    if let Some(exact) = more.clone().find(|n| *n == word) {
        return Ok(Some(Opt::of_more(exact)));
    }
    let base = base.iter().copied().filter(|(n, _)| n.starts_with(word));
    let more = more.filter(|n| n.starts_with(word)).map(|n| (n, Opt::of_more(n)));
    // Most words abbreviate nothing known (an option of a match not loaded yet).
    if base.clone().next().is_none() && more.clone().next().is_none() {
        return Ok(None);
    }
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
    // The first 19 characters only (a text of at most 19 bytes has no more characters).
    let s = if s.len() <= 19 {
        s
    } else {
        s.char_indices().nth(19).map_or(s, |(at, _)| &s[..at])
    };
    // Up to four parts split at dots (`splitn(4, '.')`: a fourth part runs to the end), by bytes.
    let text = s.as_bytes();
    let mut bytes = [0u8; 4];
    let (mut parts, mut start) = (0, 0);
    loop {
        let end = match parts {
            3 => text.len(),
            // A short text: a plain search beats a vector one's setup.
            _ => text[start..]
                .iter()
                .position(|&b| b == b'.')
                .map_or(text.len(), |at| start + at),
        };
        bytes[parts] = strtoui(&s[start..end], 255)? as u8;
        parts += 1;
        if end == text.len() {
            break;
        }
        start = end + 1;
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
    let (host, mask) = match text.rsplit_once('/') {
        Some((h, m)) => (h, Some(m)),
        None => (text, None),
    };
    let mask: u32 = match mask {
        None => u32::MAX,
        Some(m) if m.contains('.') => numeric_ipv4(m, true).ok_or_else(|| format!("invalid mask `{m}'"))?,
        Some(m) => {
            let bits = strtoui(m, 32).ok_or_else(|| format!("invalid mask `{m}'"))? as u32;
            if bits == 0 {
                0
            } else {
                u32::MAX << (32 - bits)
            }
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
    push_ipv4(out, net);
    out.push('/');
    if mask.leading_ones() + mask.trailing_zeros() == 32 {
        push_decimal(out, mask.leading_ones());
    } else {
        push_ipv4(out, mask);
    }
}

/// A number in decimal, as `{n}` prints it (digit by digit, without the formatting machinery:
/// hot).
fn push_decimal(out: &mut String, n: u32) {
    if n >= 10 {
        push_decimal(out, n / 10);
    }
    out.push(char::from(b'0' + (n % 10) as u8));
}

/// An IPv4 address in dotted quad, as `Ipv4Addr` prints it.
fn push_ipv4(out: &mut String, addr: u32) {
    // Written into a buffer of its own, then added at once (hot: every IPv4 address).
    let (mut text, mut len) = ([0u8; 15], 0);
    for (k, byte) in addr.to_be_bytes().into_iter().enumerate() {
        if k > 0 {
            text[len] = b'.';
            len += 1;
        }
        for (at_least, digit) in [(100, byte / 100), (10, byte / 10 % 10), (0, byte % 10)] {
            if byte >= at_least {
                text[len] = b'0' + digit;
                len += 1;
            }
        }
    }
    // Digits and dots: ASCII, so always UTF-8.
    out.push_str(std::str::from_utf8(&text[..len]).unwrap_or_default());
}

/// One IPv6 address or network; `None` for the any-address.
fn ipv6_network(text: &str) -> Result<Option<String>, String> {
    let (host, mask) = match text.rsplit_once('/') {
        Some((h, m)) => (h, Some(m)),
        None => (text, None),
    };
    let mask: u128 = match mask {
        None => u128::MAX,
        Some(m) if m.contains(':') => u128::from(m.parse::<Ipv6Addr>().map_err(|_| format!("invalid mask `{m}'"))?),
        Some(m) => match strtoui(m, 128).ok_or_else(|| format!("invalid mask `{m}'"))? as u32 {
            0 => 0,
            bits => u128::MAX << (128 - bits),
        },
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
    let (lo, hi) = match memchr::memchr(b':', text.as_bytes()) {
        None => {
            let p = port(text, proto)?;
            return Ok(Some((p, p)));
        }
        Some(at) => {
            let (lo, hi) = (&text[..at], &text[at + 1..]);
            let lo = if lo.is_empty() { 0 } else { port(lo, proto)? };
            let hi = if hi.is_empty() { 65535 } else { port(hi, proto)? };
            (lo, hi)
        }
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
    let (t, lo, hi) = match names::icmp_type(text) {
        Some(v) => v,
        None => match text.split_once('/') {
            Some((t, c)) => {
                let t = strtoui(t, 255).ok_or_else(|| format!("invalid ICMP type `{text}'"))? as u8;
                let c = strtoui(c, 255).ok_or_else(|| format!("invalid ICMP code `{text}'"))? as u8;
                (t, c, c)
            }
            None => (
                strtoui(text, 255).ok_or_else(|| format!("invalid ICMP type `{text}'"))? as u8,
                0,
                255,
            ),
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

/// Splits `--name=value` into two words, as `getopt_long` reads it.
fn split_assignments<'a, 'b>(args: &'b [&'a str]) -> Cow<'b, [&'a str]> {
    if !args.iter().any(|a| a.starts_with("--") && a.contains('=')) {
        return Cow::Borrowed(args);
    }
    let mut out = Vec::with_capacity(args.len() + 1);
    for a in args {
        match a.strip_prefix("--").and_then(|r| r.split_once('=')) {
            Some((name, value)) => {
                out.push(&a[..2 + name.len()]);
                out.push(value);
            }
            None => out.push(a),
        }
    }
    Cow::Owned(out)
}

/// Reads the arguments of one call into `canonical` (cleared first) and the rule's key.
/// `Ok(None)`: a call that adds no rule. An error: a call iptables refuses, or one the model
/// does not read.
pub(super) fn parse_into(
    family: Option<Family>,
    args: &[&str],
    canonical: &mut String,
) -> Result<Option<RuleKey>, String> {
    thread_local! {
        /// The matches of the call being read: one set per thread, whose text buffers serve
        /// call after call.
        static LOADED: RefCell<Loaded> = RefCell::new(Loaded::new());
    }
    LOADED.with_borrow_mut(|matches| parse_loading(family, args, canonical, matches, true))
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
}

/// [`parse_into`], loading matches into `matches`; `common`: the common spellings are read in
/// one pass first ([`read_common`]; off only to test that pass against the full reading).
fn parse_loading(
    family: Option<Family>,
    args: &[&str],
    canonical: &mut String,
    matches: &mut Loaded,
    common: bool,
) -> Result<Option<RuleKey>, String> {
    let mut call = Call::default();
    matches.clear();
    if !(common && read_common(args, &mut call, matches)) {
        call = Call::default();
        matches.clear();
        if !read_any(family, args, &mut call, matches)? {
            return Ok(None);
        }
    }
    finish(family, call, matches, canonical)
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
    thread_local! {
        /// The last protocol this thread read, as written (up to 8 bytes), and its number: a
        /// script names a few protocols, line after line (the names table never changes once
        /// read).
        static LAST: Cell<([u8; 8], usize, u8)> = const { Cell::new(([0; 8], usize::MAX, 0)) };
    }
    let (text, len, n) = LAST.get();
    if len == v.len() && text.get(..len) == Some(v.as_bytes()) {
        return Ok(n);
    }
    let n = named_protocol(v)?;
    if v.len() <= 8 {
        let mut text = [0; 8];
        text[..v.len()].copy_from_slice(v.as_bytes());
        LAST.set((text, v.len(), n));
    }
    Ok(n)
}

/// [`protocol`] from the names table.
fn named_protocol(v: &str) -> Result<u8, String> {
    let v: Cow<str> = if v.bytes().any(|b| b.is_ascii_uppercase()) {
        Cow::Owned(v.to_ascii_lowercase())
    } else {
        Cow::Borrowed(v)
    };
    names::get()
        .protocol(&v)
        .ok_or_else(|| format!("unknown protocol \"{v}\" specified"))
}

/// The common spellings in one pass: options with one value each, each option at most once:
/// `-A CHAIN`, `-p`, `-s`, `-d`, `-i`, `-o` and `-j` (not `REJECT`) in their short or long
/// form, and after `-p tcp` or `-p udp` that match (`-m tcp`, as `iptables -S` prints it) and
/// its `--sport` and `--dport` (or `--source-port`, `--destination-port`). Each is read as
/// [`read_any`] reads it, with the same helpers; `false` for any other call (or a value these
/// helpers refuse), which [`read_any`] then reads from the start.
fn read_common<'a>(args: &[&'a str], call: &mut Call<'a>, matches: &mut Loaded) -> bool {
    let mut pairs = args.chunks_exact(2);
    for pair in &mut pairs {
        let (opt, v) = (pair[0], pair[1]);
        // `--name=value` is two words to getopt_long: a value of that form is left to read_any.
        if v.starts_with("--") && v.contains('=') {
            return false;
        }
        let read = match opt {
            "-A" | "--append" if call.command.is_none() && chain_name(v) => {
                call.command = Some(v);
                true
            }
            "-p" | "--protocol" if call.proto.is_none() => match protocol(v) {
                Ok(n) => {
                    call.proto = Some((false, n));
                    true
                }
                Err(_) => false,
            },
            "-s" | "--source" | "--src" if call.src.is_none() => {
                call.src = Some((false, v));
                true
            }
            "-d" | "--destination" | "--dst" if call.dst.is_none() => {
                call.dst = Some((false, v));
                true
            }
            "-i" | "--in-interface" if call.iif.is_none() && interface(v).is_ok() => {
                call.iif = Some((false, v));
                true
            }
            "-o" | "--out-interface" if call.oif.is_none() && interface(v).is_ok() => {
                call.oif = Some((false, v));
                true
            }
            "-j" | "--jump" if call.target.is_none() && v != "REJECT" && target_name(v) => {
                call.target = Some((v, None));
                true
            }
            // The protocol's own match, named after `-p` (as `iptables -S` prints it) ...
            "-m" | "--match" => {
                let kind = match (call.proto, v) {
                    (Some((false, 6)), "tcp") => Kind::Tcp,
                    (Some((false, 17)), "udp") => Kind::Udp,
                    _ => return false,
                };
                matches.load(kind).is_ok()
            }
            // ... or loaded by its first option: the only match loaded here, so each name is
            // that match's own, as `read_any` resolves it.
            "--sport" | "--source-port" | "--dport" | "--destination-port" => {
                let kind = match call.proto {
                    Some((false, 6)) => Kind::Tcp,
                    Some((false, 17)) => Kind::Udp,
                    _ => return false,
                };
                if !matches.has(kind) && matches.load(kind).is_err() {
                    return false;
                }
                let Some(m) = matches.iter_mut().find(|m| m.kind == kind) else {
                    return false;
                };
                match m.opts().iter().position(|o| *o == &opt[2..]) {
                    Some(at) => match_option(m, at, false, v, call.proto).is_ok(),
                    None => false,
                }
            }
            _ => false,
        };
        if !read {
            return false;
        }
    }
    pairs.remainder().is_empty() && call.command.is_some()
}

/// Reads any call's options as iptables 1.8 reads them; `Ok(false)`: a command that adds no
/// rule.
fn read_any<'a>(
    family: Option<Family>,
    args: &[&'a str],
    call: &mut Call<'a>,
    matches: &mut Loaded,
) -> Result<bool, String> {
    let args = split_assignments(args);
    let args: &[&str] = &args;
    let Call {
        table,
        command,
        src,
        dst,
        iif,
        oif,
        proto,
        frag,
        target,
    } = call;
    let mut negate = false;
    let mut i = 0;
    let value = |i: usize, opt: &str| -> Result<&str, String> {
        args.get(i + 1)
            .copied()
            .ok_or_else(|| format!("option {opt} requires an argument"))
    };
    while i < args.len() {
        let a = args[i];
        if a == "!" {
            if negate {
                return err("multiple `!' flags not allowed");
            }
            negate = true;
            i += 1;
            continue;
        }
        let neg = std::mem::take(&mut negate);
        // Name the option: a short letter, or a long name resolved among those known now.
        let long: Option<Opt> = match a.strip_prefix("--") {
            Some(w) if !w.is_empty() => {
                let loaded = matches.iter().flat_map(|m| m.opts().iter().copied());
                let target_opts: &[&str] = match target.map(|t| t.0) {
                    Some("REJECT") => &["reject-with"],
                    _ => &[],
                };
                let known = loaded.chain(target_opts.iter().copied());
                match resolve(w, known)? {
                    Some(n) => Some(n),
                    None => {
                        // An option of the protocol's own match loads it, as iptables does.
                        let p = proto.filter(|(n, _)| !n).map(|(_, p)| p);
                        let implicit = match p {
                            Some(6) => Some(Kind::Tcp),
                            Some(17) => Some(Kind::Udp),
                            Some(1) => Some(Kind::Icmp),
                            _ => None,
                        };
                        let Some(kind) = implicit.filter(|k| !matches.has(*k)) else {
                            return err(format!("unknown option \"{a}\""));
                        };
                        let Some(opt) = resolve(w, MATCHES[kind as usize].2.iter().copied())? else {
                            return err(format!("unknown option \"{a}\""));
                        };
                        matches.load(kind)?;
                        Some(opt)
                    }
                }
            }
            _ => None,
        };
        let opt = match (long, a.strip_prefix('-')) {
            (Some(opt), _) => opt,
            (None, Some(letter)) if letter.len() == 1 => Opt::short(letter.as_bytes()[0]),
            (None, _) => return err(format!("unexpected argument \"{a}\"")),
        };
        match opt {
            Opt::Append | Opt::Insert => {
                if command.is_some() {
                    return err("only one command may be given");
                }
                let chain = value(i, a)?;
                if !chain_name(chain) {
                    return err(format!("chain name `{chain}' is not one the tool reads"));
                }
                *command = Some(chain);
                i += 2;
                if opt == Opt::Insert
                    && args
                        .get(i)
                        .is_some_and(|n| n.bytes().all(|b| b.is_ascii_digit()) && !n.is_empty())
                {
                    if args[i].parse::<u32>().map_or(true, |n| n == 0) {
                        return err("invalid rule number");
                    }
                    i += 1;
                }
            }
            Opt::Command => return Ok(false),
            Opt::Table => {
                if table.is_some() {
                    return err("multiple -t flags not allowed");
                }
                let t = value(i, a)?;
                if !["filter", "nat", "mangle", "raw", "security"].contains(&t) {
                    return err(format!("table `{t}' is not one the tool reads"));
                }
                *table = Some(t);
                i += 2;
            }
            Opt::Source | Opt::Destination => {
                let v = value(i, a)?;
                let (slot, letter) = if opt == Opt::Source {
                    (&mut *src, 's')
                } else {
                    (&mut *dst, 'd')
                };
                if slot.is_some() {
                    return err(format!("multiple -{letter} flags not allowed"));
                }
                // Read in the family below, once it is known.
                *slot = Some((neg, v));
                i += 2;
            }
            Opt::Protocol => {
                if proto.is_some() {
                    return err("multiple -p flags not allowed");
                }
                let n = protocol(value(i, a)?)?;
                if n == 0 && neg {
                    return err("rule would never match protocol");
                }
                *proto = Some((neg, n));
                i += 2;
            }
            Opt::InInterface | Opt::OutInterface => {
                let v = value(i, a)?;
                interface(v)?;
                let (slot, letter) = if opt == Opt::InInterface {
                    (&mut *iif, 'i')
                } else {
                    (&mut *oif, 'o')
                };
                if slot.is_some() {
                    return err(format!("multiple -{letter} flags not allowed"));
                }
                *slot = Some((neg, v));
                i += 2;
            }
            Opt::Fragment => {
                if family == Some(Family::V6) {
                    return err("`-f' is not supported in IPv6");
                }
                if frag.is_some() {
                    return err("multiple -f flags not allowed");
                }
                *frag = Some(neg);
                i += 1;
            }
            Opt::Match => {
                if neg {
                    return err("unexpected ! flag before --match");
                }
                let v = value(i, a)?;
                let Some((_, kind, _)) = MATCHES.iter().find(|(n, _, _)| *n == v) else {
                    return err(format!("match `{v}' is not one the tool reads"));
                };
                matches.load(*kind)?;
                i += 2;
            }
            Opt::Jump => {
                if neg {
                    return err("cannot have ! before -j");
                }
                if target.is_some() {
                    return err("multiple -j flags not allowed");
                }
                let t = value(i, a)?;
                if !target_name(t) {
                    return err(format!("target `{t}' is not one the tool reads"));
                }
                *target = Some((t, None));
                i += 2;
            }
            Opt::RejectWith => {
                let v = value(i, a)?;
                let known = [
                    "icmp-net-unreachable",
                    "icmp-host-unreachable",
                    "icmp-port-unreachable",
                    "icmp-proto-unreachable",
                    "icmp-net-prohibited",
                    "icmp-host-prohibited",
                    "icmp-admin-prohibited",
                    "tcp-reset",
                ];
                let Some(v) = known.iter().find(|k| **k == v) else {
                    return err(format!("--reject-with `{v}' is not read"));
                };
                if let Some((_, with)) = target.as_mut() {
                    *with = Some(v);
                }
                i += 2;
            }
            Opt::Wait => {
                i += 1;
                if args
                    .get(i)
                    .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
                {
                    i += 1;
                }
            }
            Opt::WaitInterval | Opt::Modprobe => {
                value(i, a)?;
                i += 2;
            }
            Opt::Verbose => i += 1,
            Opt::Ipv4 => {
                if family == Some(Family::V6) {
                    return err("this is the IPv6 version of ip6tables");
                }
                i += 1;
            }
            Opt::Ipv6 => {
                if family != Some(Family::V6) {
                    return err("this is the IPv4 version of iptables");
                }
                i += 1;
            }
            Opt::Other(name) => {
                // An option of a loaded match (long names only from here on).
                let Some((m, at)) = matches
                    .iter_mut()
                    .rev()
                    .find_map(|m| m.opts().iter().position(|o| *o == name).map(|at| (m, at)))
                else {
                    return err(format!("unknown option \"{a}\""));
                };
                let v = value(i, a)?;
                i += 2;
                match_option(m, at, neg, v, *proto)?;
            }
        }
    }
    if negate {
        return err("a trailing `!'");
    }
    Ok(true)
}

/// The final checks each extension makes, then the rule as `iptables -S` prints it.
fn finish(
    family: Option<Family>,
    call: Call,
    matches: &Loaded,
    canonical: &mut String,
) -> Result<Option<RuleKey>, String> {
    let Call {
        table,
        command,
        src,
        dst,
        iif,
        oif,
        proto,
        frag,
        target,
    } = call;
    let Some(chain) = command else {
        return Ok(None);
    };
    let table = table.unwrap_or("filter");
    // Final checks, as each extension makes them.
    for m in matches.iter() {
        match m.kind {
            Kind::Tcp | Kind::Udp | Kind::Icmp => {
                let want = match m.kind {
                    Kind::Tcp => 6,
                    Kind::Udp => 17,
                    _ => 1,
                };
                if proto != Some((false, want)) {
                    return err(format!("the {} match needs `-p {}'", m.name(), m.name()));
                }
            }
            Kind::State | Kind::Conntrack if m.given == 0 => {
                return err(format!("the {} match needs a state", m.name()));
            }
            Kind::Multiport => {
                if m.given == 0 {
                    return err("the multiport match needs a port list");
                }
                if !matches!(proto, Some((false, 6 | 17 | 132 | 33 | 136))) {
                    return err("multiport needs `-p tcp', `-p udp', `-p udplite', `-p sctp' or `-p dccp'");
                }
            }
            Kind::Comment if m.given == 0 => return err("the comment match needs --comment"),
            _ => {}
        }
    }
    if oif.is_some() && matches!(chain, "INPUT" | "PREROUTING") {
        return err(format!("can't use -o with {chain}"));
    }
    if iif.is_some() && matches!(chain, "OUTPUT" | "POSTROUTING") {
        return err(format!("can't use -i with {chain}"));
    }
    // Addresses in the family the rule reaches: the written one, else the one the addresses
    // imply (a colon is IPv6), else IPv4 and IPv6 alike only when there is no address.
    let v6 = match family {
        Some(Family::V6) => true,
        Some(Family::V4) => false,
        None => [src.as_ref(), dst.as_ref()]
            .iter()
            .flatten()
            .any(|(_, a)| a.contains(':')),
    };
    let read_address = |slot: Base| -> Result<Option<(bool, Net)>, String> {
        let Some((neg, text)) = slot else {
            return Ok(None);
        };
        match network(text, v6)? {
            Some(n) => Ok(Some((neg, n))),
            None if neg => err("cannot negate the any-address"),
            None => Ok(None),
        }
    };
    let (src, dst) = (read_address(src)?, read_address(dst)?);

    canonical.clear();
    if table != "filter" {
        canonical.push_str("-t ");
        canonical.push_str(table);
        canonical.push(' ');
    }
    canonical.push_str("-A ");
    canonical.push_str(chain);
    // ` [!] -x ` before a value.
    let flag = |out: &mut String, neg: bool, f: &str| {
        out.push_str(if neg { " ! " } else { " " });
        out.push_str(f);
        out.push(' ');
    };
    for (slot, f) in [(&src, "-s"), (&dst, "-d")] {
        if let Some((neg, net)) = slot {
            flag(canonical, *neg, f);
            net.push_to(canonical);
        }
    }
    for (slot, f) in [(&iif, "-i"), (&oif, "-o")] {
        if let Some((neg, v)) = slot {
            flag(canonical, *neg, f);
            canonical.push_str(v);
        }
    }
    if let Some((neg, n)) = proto.filter(|(_, n)| *n != 0) {
        flag(canonical, neg, "-p");
        canonical.push_str(&names::get().protocol_name(n));
    }
    if let Some(neg) = frag {
        canonical.push_str(if neg { " ! -f" } else { " -f" });
    }
    let mut stateful = false;
    for m in matches.iter() {
        canonical.push_str(" -m ");
        canonical.push_str(m.name());
        canonical.push_str(&m.text);
        stateful |= m.related_established;
    }
    if let Some((t, with)) = target {
        canonical.push_str(" -j ");
        canonical.push_str(t);
        match with {
            Some(w) => {
                canonical.push_str(" --reject-with ");
                canonical.push_str(w);
            }
            None if t == "REJECT" => canonical.push_str(" --reject-with icmp-port-unreachable"),
            None => {}
        }
    }
    let reach = match family {
        Some(Family::V4) => V4,
        Some(Family::V6) => V6,
        None if src.is_some() || dst.is_some() => {
            if v6 {
                V6
            } else {
                V4
            }
        }
        None => V4 | V6,
    };
    let accept = target.is_some_and(|(t, _)| t == "ACCEPT");
    // The article's custom rule: the filter table's INPUT chain accepts a literal address or
    // network; the any-address prints no `-s` at all.
    let custom = accept && table == "filter" && chain == "INPUT" && src.as_ref().is_some_and(|(neg, _)| !neg);
    Ok(Some(RuleKey::new(
        canonical,
        reach,
        custom,
        stateful && accept && table == "filter" && chain == "INPUT",
    )))
}

/// Reads one option of a loaded match into its printed words.
/// `at`: the option's place in the match's options.
fn match_option(m: &mut Match, at: usize, neg: bool, v: &str, proto: Option<(bool, u8)>) -> Result<(), String> {
    let (name, opt) = (m.name(), m.opts()[at]);
    // `--source-port(s)` and `--destination-port(s)` are `--sport(s)` and `--dport(s)`, the
    // names after them.
    let at = match (m.kind, at) {
        (Kind::Tcp | Kind::Udp | Kind::Multiport, 0 | 2) => at + 1,
        _ => at,
    };
    let canonical_opt = m.opts()[at];
    if m.given & (1 << at) != 0 || (m.kind == Kind::Multiport && m.given != 0) {
        return err(format!("--{opt} may be given once"));
    }
    m.given |= 1 << at;
    let text = &mut m.text;
    if neg {
        text.push_str(" !");
    }
    let proto_name = match proto.map(|(_, p)| p) {
        Some(17) => "udp",
        Some(132) => "sctp",
        _ => "tcp",
    };
    match (m.kind, at) {
        (Kind::Tcp | Kind::Udp, 1 | 3) => {
            if let Some((lo, hi)) = port_range(v, name)? {
                text.push_str(" --");
                text.push_str(canonical_opt);
                text.push(' ');
                push_decimal(text, u32::from(lo));
                if lo != hi {
                    text.push(':');
                    push_decimal(text, u32::from(hi));
                }
            } else if neg {
                return err("a negated all-ports range is printed differently by the backends");
            }
        }
        (Kind::Icmp, 0) => {
            text.push_str(" --icmp-type ");
            text.push_str(&icmp(v)?);
        }
        (Kind::State | Kind::Conntrack, 0) => {
            let list = states(v, if m.kind == Kind::State { 5 } else { 7 })?;
            m.related_established |= list == "RELATED,ESTABLISHED";
            text.push_str(" --");
            text.push_str(canonical_opt);
            text.push(' ');
            text.push_str(&list);
        }
        (Kind::Multiport, 1 | 3 | 4) => {
            let mut slots = 0;
            let mut list = Vec::new();
            for p in v.split(',') {
                let item = match p.split_once(':') {
                    Some((lo, hi)) => {
                        slots += 2;
                        format!("{}:{}", c_port(lo, proto_name)?, c_port(hi, proto_name)?)
                    }
                    None => {
                        slots += 1;
                        c_port(p, proto_name)?.to_string()
                    }
                };
                list.push(item);
            }
            if slots > 15 {
                return err("too many ports specified");
            }
            text.push_str(" --");
            text.push_str(canonical_opt);
            text.push(' ');
            text.push_str(&list.join(","));
        }
        (Kind::Comment, 0) => {
            if neg {
                return err("the comment match cannot be negated");
            }
            // The kernel keeps 255 bytes; iptables cuts a longer comment there.
            let v = match v.get(..v.len().min(255)) {
                Some(v) => v,
                None => return err("a comment cut by iptables inside a character is not read"),
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
            (Kind::Tcp, [("source-port", "sport"), ("destination-port", "dport")]),
            (Kind::Udp, [("source-port", "sport"), ("destination-port", "dport")]),
            (
                Kind::Multiport,
                [("source-ports", "sports"), ("destination-ports", "dports")],
            ),
        ] {
            let opts = MATCHES[kind as usize].2;
            assert_eq!([(opts[0], opts[1]), (opts[2], opts[3])], pairs, "{kind:?}");
        }
    }

    #[test]
    fn base_options_are_sorted_in_runs_by_first_byte() {
        assert!(BASE_LONG.windows(2).all(|w| w[0].0 < w[1].0), "{BASE_LONG:?}");
        for (name, opt) in BASE_LONG {
            let (from, to) = BASE_BY_FIRST[name.as_bytes()[0] as usize];
            assert!(BASE_LONG[from as usize..to as usize].contains(&(name, opt)), "{name}");
            assert_eq!(resolve(name, std::iter::empty()), Ok(Some(opt)));
        }
        let in_runs: usize = BASE_BY_FIRST.iter().map(|(from, to)| usize::from(to - from)).sum();
        assert_eq!(in_runs, BASE_LONG.len());
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

    /// Calls near the common spellings: each option in short and long form with values it
    /// reads, a few words that take the full reading, and values good for another option.
    const OPTIONS: [(&str, &[&str]); 22] = [
        ("-A", &["INPUT", "OUTPUT", "ACL_IN", "-x"]),
        ("--append", &["INPUT", "FORWARD"]),
        ("-p", &["tcp", "TCP", "udp", "icmp", "6", "0", "all", "bogus"]),
        ("--protocol", &["tcp", "17"]),
        (
            "-s",
            &[
                "10.0.0.1",
                "10.0.0.0/8",
                "0/0",
                "10.0.0.1,10.0.0.2",
                "2001:db8::1",
                "::/0",
                "a.b",
            ],
        ),
        ("--source", &["10.0.0.1/32"]),
        ("--src", &["192.0.2.0/24"]),
        ("-d", &["10.0.0.1", "0.0.0.0/0", "::1", "--dport=80"]),
        ("--destination", &["10.1.0.0/16"]),
        ("--dst", &["10.0.0.3"]),
        ("-i", &["eth0", "lo+", "verylonginterface0"]),
        ("--in-interface", &["eth1"]),
        ("-o", &["eth0", "a b"]),
        ("--out-interface", &["bond0"]),
        ("-j", &["ACCEPT", "REJECT", "DROP", "my-chain", "FOO", "-x"]),
        ("--jump", &["ACCEPT", "LOG"]),
        (
            "--sport",
            &["80", "0x50", "080", "http", "1:2", "2:1", "0:65535", ":", "65536"],
        ),
        ("--source-port", &["1024:65535"]),
        ("--dport", &["80", "443", "ssh", "8080:80", "-1"]),
        ("--destination-port", &["3128"]),
        ("!", &["-s", "--dport"]),
        ("-m", &["tcp", "udp", "state"]),
    ];

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(4096))]
        /// Wherever the one-pass reading of the common spellings answers, the full reading
        /// gives the same rule (canonical form, families, custom and stateful marks) or the same
        /// error.
        #[test]
        fn the_common_spellings_read_as_the_full_reading_reads_them(
            chain in 0..4usize,
            words in proptest::collection::vec((0..OPTIONS.len(), 0..16usize, 0..8u8), 0..7),
            family in 0..3u8,
        ) {
            let mut args = Vec::new();
            if chain > 0 {
                args.extend(["-A", ["INPUT", "OUTPUT", "ACL_IN"][chain - 1]]);
            }
            for (o, v, shape) in words {
                let (opt, values) = OPTIONS[o];
                // Mostly an option and a value it reads; sometimes another option's value, or a
                // lone word.
                let other = OPTIONS[v % OPTIONS.len()].1;
                match shape {
                    0 => args.push(opt),
                    1 => args.extend([opt, other[v % other.len()]]),
                    _ => args.extend([opt, values[v % values.len()]]),
                }
            }
            let family = [None, Some(Family::V4), Some(Family::V6)][usize::from(family)];
            let (mut common, mut full) = (String::new(), String::new());
            let mut loaded = Loaded::new();
            let by_common = parse_loading(family, &args, &mut common, &mut loaded, true);
            let by_full = parse_loading(family, &args, &mut full, &mut loaded, false);
            proptest::prop_assert_eq!(&by_common, &by_full, "{:?}", args);
            if matches!(by_full, Ok(Some(_))) {
                proptest::prop_assert_eq!(common, full);
            }
        }
    }
}
