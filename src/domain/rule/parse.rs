//! The arguments of one iptables call, read the way iptables 1.8 reads them and printed the way
//! `iptables -S` prints the rule. Only a known set of options, matches and targets is read; any
//! other makes the call "not understood" (an error), never a guess.

use std::borrow::Cow;
use std::net::Ipv6Addr;

use super::names::{self, strtoui};
use super::{Family, RuleKey, V4, V6};

/// Long options iptables itself knows (for `getopt_long` abbreviations), sorted: the names
/// sharing a first byte are one run ([`BASE_BY_FIRST`]).
const BASE_LONG: [&str; 37] = [
    "append",
    "check",
    "delete",
    "delete-chain",
    "destination",
    "dst",
    "exact",
    "flush",
    "fragment",
    "goto",
    "help",
    "in-interface",
    "insert",
    "ipv4",
    "ipv6",
    "jump",
    "line-numbers",
    "list",
    "list-rules",
    "match",
    "modprobe",
    "new-chain",
    "numeric",
    "out-interface",
    "policy",
    "protocol",
    "rename-chain",
    "replace",
    "set-counters",
    "source",
    "src",
    "table",
    "verbose",
    "version",
    "wait",
    "wait-interval",
    "zero",
];

/// Matches the model reads, with every long option each defines (read or not).
const MATCHES: [(&str, &[&str]); 7] = [
    (
        "tcp",
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
    ("udp", &["source-port", "sport", "destination-port", "dport"]),
    ("icmp", &["icmp-type"]),
    ("state", &["state"]),
    (
        "conntrack",
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
        &["source-ports", "sports", "destination-ports", "dports", "ports"],
    ),
    ("comment", &["comment"]),
];

/// Conntrack states in the order the matches print them.
const STATES: [&str; 7] = ["INVALID", "NEW", "RELATED", "ESTABLISHED", "UNTRACKED", "SNAT", "DNAT"];

/// One loaded match and the words it prints.
struct Match {
    name: &'static str,
    /// Every long option the match defines ([`MATCHES`]).
    opts: &'static [&'static str],
    /// The words it prints, each after a blank.
    text: String,
    /// Options given, as bits by their place in `opts`, for "only once" and "required" checks.
    given: u32,
    /// A state word of exactly RELATED,ESTABLISHED (negated or not).
    related_established: bool,
}

impl Match {
    fn new(name: &'static str, opts: &'static [&'static str]) -> Self {
        Self {
            name,
            opts,
            text: String::new(),
            given: 0,
            related_established: false,
        }
    }
}

/// A base option with its negation and value (as written, then as printed).
type Base<'a> = Option<(bool, Cow<'a, str>)>;

fn err<T>(why: impl Into<String>) -> Result<T, String> {
    Err(why.into())
}

/// For each first byte, the run of [`BASE_LONG`] names that start with it (the names are
/// sorted): a word is compared with a few names, not searched for among all.
const BASE_BY_FIRST: [(u8, u8); 256] = {
    let mut runs = [(0u8, 0u8); 256];
    let mut k = 0;
    while k < BASE_LONG.len() {
        let first = BASE_LONG[k].as_bytes()[0] as usize;
        if runs[first].1 == 0 {
            runs[first].0 = k as u8;
        }
        runs[first].1 = k as u8 + 1;
        k += 1;
    }
    runs
};

/// `getopt_long` over the base options and `more`: an exact name, else the one name the word
/// abbreviates.
fn resolve<'a>(word: &str, more: impl Iterator<Item = &'a str> + Clone) -> Result<Option<&'a str>, String> {
    let (from, to) = word.as_bytes().first().map_or((0, 0), |b| BASE_BY_FIRST[*b as usize]);
    let base = &BASE_LONG[from as usize..to as usize];
    if let Some(exact) = base.iter().find(|n| **n == word) {
        return Ok(Some(exact));
    }
    if let Some(exact) = more.clone().find(|n| *n == word) {
        return Ok(Some(exact));
    }
    let base = base.iter().copied().filter(|n| n.starts_with(word));
    let mut hits: Vec<&str> = base.chain(more.filter(|n| n.starts_with(word))).collect();
    hits.sort();
    hits.dedup();
    match hits.as_slice() {
        [] => Ok(None),
        [one] => Ok(Some(one)),
        _ => err(format!("option --{word} is ambiguous")),
    }
}

/// `xtables_numeric_to_ipaddr`: up to four parts (missing ones are 0), each a C number up to 255.
fn numeric_ipv4(s: &str, is_mask: bool) -> Option<u32> {
    // The first 19 characters only.
    let s = s.char_indices().nth(19).map_or(s, |(at, _)| &s[..at]);
    let mut bytes = [0u8; 4];
    let mut parts = 0;
    for (i, p) in s.splitn(4, '.').enumerate() {
        bytes[i] = strtoui(p, 255)? as u8;
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

/// One IPv4 address or network as `-s`/`-d` read it; `None` for the any-address (mask 0).
fn ipv4_network(text: &str) -> Result<Option<String>, String> {
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
    let mut out = String::with_capacity(31);
    push_ipv4(&mut out, addr & mask);
    out.push('/');
    if mask.leading_ones() + mask.trailing_zeros() == 32 {
        push_decimal(&mut out, mask.leading_ones());
    } else {
        push_ipv4(&mut out, mask);
    }
    Ok(Some(out))
}

/// A number in decimal, as `{n}` prints it (without the formatting machinery: hot).
fn push_decimal(out: &mut String, mut n: u32) {
    let mut digits = [0u8; 10];
    let mut at = digits.len();
    loop {
        at -= 1;
        digits[at] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.push_str(std::str::from_utf8(&digits[at..]).expect("ASCII digits"));
}

/// An IPv4 address in dotted quad, as `Ipv4Addr` prints it.
fn push_ipv4(out: &mut String, addr: u32) {
    for (k, byte) in addr.to_be_bytes().into_iter().enumerate() {
        if k > 0 {
            out.push('.');
        }
        push_decimal(out, u32::from(byte));
    }
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

/// An address list (comma-separated) in the family the rule reaches.
fn network(text: &str, v6: bool) -> Result<Option<String>, String> {
    if !text.contains(',') {
        return if v6 { ipv6_network(text) } else { ipv4_network(text) };
    }
    let mut parts = Vec::new();
    for one in text.split(',') {
        let n = if v6 { ipv6_network(one)? } else { ipv4_network(one)? };
        match n {
            Some(n) => parts.push(n),
            None => return Ok(None),
        }
    }
    parts.sort();
    parts.dedup();
    Ok(Some(parts.join(",")))
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

/// A port or range as `--dport` prints it; `None` when it is every port.
fn port_range(text: &str, proto: &str) -> Result<Option<String>, String> {
    let (lo, hi) = match text.split_once(':') {
        None => {
            let mut out = String::with_capacity(5);
            push_decimal(&mut out, u32::from(port(text, proto)?));
            return Ok(Some(out));
        }
        Some((lo, hi)) => {
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
    Ok(Some(if lo == hi { lo.to_string() } else { format!("{lo}:{hi}") }))
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
    let args = split_assignments(args);
    let mut table: Option<&str> = None;
    let mut command: Option<&str> = None;
    let (mut src, mut dst, mut iif, mut oif): (Base, Base, Base, Base) = (None, None, None, None);
    let args: &[&str] = &args;
    let mut proto: Option<(bool, u8)> = None;
    let mut frag: Option<bool> = None;
    let mut matches: Vec<Match> = Vec::new();
    // The target and its `--reject-with` value.
    let mut target: Option<(&str, Option<&'static str>)> = None;
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
        let long: Option<&str> = match a.strip_prefix("--") {
            Some(w) if !w.is_empty() => {
                let loaded = matches.iter().flat_map(|m| m.opts.iter().copied());
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
                            Some(6) => Some("tcp"),
                            Some(17) => Some("udp"),
                            Some(1) => Some("icmp"),
                            _ => None,
                        };
                        let Some(m) = implicit.filter(|m| !matches.iter().any(|x| x.name == *m)) else {
                            return err(format!("unknown option \"{a}\""));
                        };
                        let opts = MATCHES.iter().find(|(n, _)| *n == m).expect("known").1;
                        let Some(name) = resolve(w, opts.iter().copied())? else {
                            return err(format!("unknown option \"{a}\""));
                        };
                        matches.push(Match::new(m, opts));
                        Some(name)
                    }
                }
            }
            _ => None,
        };
        let short = match (long, a) {
            (Some(l), _) => match l {
                "append" => "A",
                "insert" => "I",
                "delete" | "replace" | "list" | "list-rules" | "flush" | "zero" | "new-chain" | "delete-chain"
                | "rename-chain" | "policy" | "check" => "cmd",
                "source" | "src" => "s",
                "destination" | "dst" => "d",
                "protocol" => "p",
                "in-interface" => "i",
                "out-interface" => "o",
                "jump" => "j",
                "goto" => "g",
                "table" => "t",
                "match" => "m",
                "fragment" => "f",
                "verbose" => "v",
                "wait" => "w",
                "wait-interval" => "W",
                "ipv4" => "4",
                "ipv6" => "6",
                "modprobe" => "modprobe",
                "numeric" | "exact" | "line-numbers" | "set-counters" | "help" | "version" => "unsupported",
                other => other,
            },
            (None, a) => match a.strip_prefix('-') {
                Some(s) if s.len() == 1 => match s {
                    "D" | "R" | "L" | "S" | "F" | "Z" | "N" | "X" | "E" | "P" | "C" => "cmd",
                    "n" | "x" | "c" | "h" | "V" => "unsupported",
                    s => s,
                },
                _ => return err(format!("unexpected argument \"{a}\"")),
            },
        };
        match short {
            "A" | "I" => {
                if command.is_some() {
                    return err("only one command may be given");
                }
                let chain = value(i, a)?;
                if chain.is_empty()
                    || chain.len() > 28
                    || chain.starts_with('-')
                    || !chain.bytes().all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b))
                {
                    return err(format!("chain name `{chain}' is not one the tool reads"));
                }
                command = Some(chain);
                i += 2;
                if short == "I"
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
            "cmd" => return Ok(None),
            "t" => {
                if table.is_some() {
                    return err("multiple -t flags not allowed");
                }
                let t = value(i, a)?;
                if !["filter", "nat", "mangle", "raw", "security"].contains(&t) {
                    return err(format!("table `{t}' is not one the tool reads"));
                }
                table = Some(t);
                i += 2;
            }
            "s" | "d" => {
                let v = value(i, a)?;
                let slot = if short == "s" { &mut src } else { &mut dst };
                if slot.is_some() {
                    return err(format!("multiple -{short} flags not allowed"));
                }
                // Read in the family below, once it is known.
                *slot = Some((neg, Cow::Borrowed(v)));
                i += 2;
            }
            "p" => {
                if proto.is_some() {
                    return err("multiple -p flags not allowed");
                }
                let v = value(i, a)?;
                let v: Cow<str> = if v.bytes().any(|b| b.is_ascii_uppercase()) {
                    Cow::Owned(v.to_ascii_lowercase())
                } else {
                    Cow::Borrowed(v)
                };
                let n = names::get()
                    .protocol(&v)
                    .ok_or_else(|| format!("unknown protocol \"{v}\" specified"))?;
                if n == 0 && neg {
                    return err("rule would never match protocol");
                }
                proto = Some((neg, n));
                i += 2;
            }
            "i" | "o" => {
                let v = value(i, a)?;
                if v.is_empty() || v.len() > 15 {
                    return err(format!("interface name `{v}' must be 1 to 15 characters"));
                }
                if !v.bytes().all(|b| b.is_ascii_alphanumeric() || b"_.-+@".contains(&b)) {
                    return err(format!("interface name `{v}' is not one the tool reads"));
                }
                let slot = if short == "i" { &mut iif } else { &mut oif };
                if slot.is_some() {
                    return err(format!("multiple -{short} flags not allowed"));
                }
                *slot = Some((neg, Cow::Borrowed(v)));
                i += 2;
            }
            "f" => {
                if family == Some(Family::V6) {
                    return err("`-f' is not supported in IPv6");
                }
                if frag.is_some() {
                    return err("multiple -f flags not allowed");
                }
                frag = Some(neg);
                i += 1;
            }
            "m" => {
                if neg {
                    return err("unexpected ! flag before --match");
                }
                let v = value(i, a)?;
                let Some((name, opts)) = MATCHES.iter().find(|(n, _)| *n == v) else {
                    return err(format!("match `{v}' is not one the tool reads"));
                };
                if matches.iter().any(|m| m.name == *name) {
                    return err(format!("match `{v}' loaded twice is not read"));
                }
                matches.push(Match::new(name, opts));
                i += 2;
            }
            "j" => {
                if neg {
                    return err("cannot have ! before -j");
                }
                if target.is_some() {
                    return err("multiple -j flags not allowed");
                }
                let t = value(i, a)?;
                let known = ["ACCEPT", "DROP", "RETURN", "REJECT", "LOG"];
                let chain = !t.is_empty()
                    && !t.starts_with('-')
                    && t.len() <= 28
                    && t.bytes().all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b));
                if !known.contains(&t) && (t.bytes().all(|b| b.is_ascii_uppercase()) || !chain) {
                    return err(format!("target `{t}' is not one the tool reads"));
                }
                target = Some((t, None));
                i += 2;
            }
            "reject-with" => {
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
            "w" => {
                i += 1;
                if args
                    .get(i)
                    .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
                {
                    i += 1;
                }
            }
            "W" => {
                value(i, a)?;
                i += 2;
            }
            "modprobe" => {
                value(i, a)?;
                i += 2;
            }
            "v" => i += 1,
            "4" => {
                if family == Some(Family::V6) {
                    return err("this is the IPv6 version of ip6tables");
                }
                i += 1;
            }
            "6" => {
                if family != Some(Family::V6) {
                    return err("this is the IPv4 version of iptables");
                }
                i += 1;
            }
            opt => {
                // An option of a loaded match (long names only from here on).
                let Some((m, opt)) = matches
                    .iter_mut()
                    .rev()
                    .find_map(|m| m.opts.iter().find(|o| **o == opt).map(|o| (m, *o)))
                else {
                    return err(format!("unknown option \"{a}\""));
                };
                let v = value(i, a)?;
                i += 2;
                match_option(m, opt, neg, v, proto)?;
            }
        }
    }
    if negate {
        return err("a trailing `!'");
    }
    let Some(chain) = command else {
        return Ok(None);
    };
    let table = table.unwrap_or("filter");
    // Final checks, as each extension makes them.
    for m in &matches {
        match m.name {
            "tcp" | "udp" | "icmp" => {
                let want = match m.name {
                    "tcp" => 6,
                    "udp" => 17,
                    _ => 1,
                };
                if proto != Some((false, want)) {
                    return err(format!("the {} match needs `-p {}'", m.name, m.name));
                }
            }
            "state" | "conntrack" if m.given == 0 => {
                return err(format!("the {} match needs a state", m.name));
            }
            "multiport" => {
                if m.given == 0 {
                    return err("the multiport match needs a port list");
                }
                if !matches!(proto, Some((false, 6 | 17 | 132 | 33 | 136))) {
                    return err("multiport needs `-p tcp', `-p udp', `-p udplite', `-p sctp' or `-p dccp'");
                }
            }
            "comment" if m.given == 0 => return err("the comment match needs --comment"),
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
    let read_address = |slot: &mut Base| -> Result<(), String> {
        if let Some((neg, text)) = slot.take() {
            match network(&text, v6)? {
                Some(n) => *slot = Some((neg, Cow::Owned(n))),
                None if neg => return err("cannot negate the any-address"),
                None => {}
            }
        }
        Ok(())
    };
    read_address(&mut src)?;
    read_address(&mut dst)?;

    canonical.clear();
    if table != "filter" {
        canonical.push_str("-t ");
        canonical.push_str(table);
        canonical.push(' ');
    }
    canonical.push_str("-A ");
    canonical.push_str(chain);
    let flag = |out: &mut String, neg: bool, f: &str, v: &str| {
        if neg {
            out.push_str(" !");
        }
        out.push(' ');
        out.push_str(f);
        out.push(' ');
        out.push_str(v);
    };
    if let Some((neg, v)) = &src {
        flag(canonical, *neg, "-s", v);
    }
    if let Some((neg, v)) = &dst {
        flag(canonical, *neg, "-d", v);
    }
    if let Some((neg, v)) = &iif {
        flag(canonical, *neg, "-i", v);
    }
    if let Some((neg, v)) = &oif {
        flag(canonical, *neg, "-o", v);
    }
    if let Some((neg, n)) = proto.filter(|(_, n)| *n != 0) {
        flag(canonical, neg, "-p", &names::get().protocol_name(n));
    }
    if let Some(neg) = frag {
        canonical.push_str(if neg { " ! -f" } else { " -f" });
    }
    let mut stateful = false;
    for m in &matches {
        canonical.push_str(" -m ");
        canonical.push_str(m.name);
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
fn match_option(m: &mut Match, opt: &'static str, neg: bool, v: &str, proto: Option<(bool, u8)>) -> Result<(), String> {
    let canonical_opt = match opt {
        "source-port" | "sport" => "sport",
        "destination-port" | "dport" => "dport",
        "source-ports" | "sports" => "sports",
        "destination-ports" | "dports" => "dports",
        o => o,
    };
    let Some(at) = m.opts.iter().position(|o| *o == canonical_opt) else {
        return err(format!("option --{opt} of the {} match is not read", m.name));
    };
    if m.given & (1 << at) != 0 || (m.name == "multiport" && m.given != 0) {
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
    match (m.name, canonical_opt) {
        ("tcp" | "udp", "sport" | "dport") => {
            if let Some(range) = port_range(v, m.name)? {
                text.push_str(" --");
                text.push_str(canonical_opt);
                text.push(' ');
                text.push_str(&range);
            } else if neg {
                return err("a negated all-ports range is printed differently by the backends");
            }
        }
        ("icmp", "icmp-type") => {
            text.push_str(" --icmp-type ");
            text.push_str(&icmp(v)?);
        }
        ("state", "state") | ("conntrack", "ctstate") => {
            let list = states(v, if m.name == "state" { 5 } else { 7 })?;
            m.related_established |= list == "RELATED,ESTABLISHED";
            text.push_str(" --");
            text.push_str(canonical_opt);
            text.push(' ');
            text.push_str(&list);
        }
        ("multiport", "sports" | "dports" | "ports") => {
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
        ("comment", "comment") => {
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
        (name, o) => return err(format!("option --{o} of the {name} match is not read")),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_options_are_sorted_in_runs_by_first_byte() {
        assert!(BASE_LONG.windows(2).all(|w| w[0] < w[1]), "{BASE_LONG:?}");
        for name in BASE_LONG {
            let (from, to) = BASE_BY_FIRST[name.as_bytes()[0] as usize];
            assert!(BASE_LONG[from as usize..to as usize].contains(&name), "{name}");
            assert_eq!(resolve(name, std::iter::empty()), Ok(Some(name)));
        }
        let in_runs: usize = BASE_BY_FIRST.iter().map(|(from, to)| usize::from(to - from)).sum();
        assert_eq!(in_runs, BASE_LONG.len());
        // Exact names, abbreviations and ambiguity as getopt_long answers them.
        assert_eq!(resolve("jump", std::iter::empty()), Ok(Some("jump")));
        assert_eq!(resolve("jum", std::iter::empty()), Ok(Some("jump")));
        assert_eq!(resolve("dport", ["dport", "sport"].into_iter()), Ok(Some("dport")));
        assert_eq!(resolve("dp", ["dport"].into_iter()), Ok(Some("dport")));
        assert!(
            resolve("de", std::iter::empty()).is_err(),
            "delete, delete-chain, destination"
        );
        assert_eq!(resolve("nonesuch", std::iter::empty()), Ok(None));
    }
}
