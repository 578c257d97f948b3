//! What the value of one option means as iptables reads it: addresses and networks, ports,
//! states, ICMP types, interface, chain and target names, and the options of each match.

use super::*;

/// `xtables_numeric_to_ipaddr`: up to four parts (missing ones are 0), each a C number up to 255.
pub(super) fn numeric_ipv4(s: &str, is_mask: bool) -> Option<u32> {
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
pub(super) fn inet_aton(s: &str) -> Option<u32> {
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
pub(super) fn ipv4_network(text: &str) -> Result<Option<(u32, u32)>, String> {
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
pub(super) fn push_ipv4_network(out: &mut String, (net, mask): (u32, u32)) {
    let _ = if mask.leading_ones() + mask.trailing_zeros() == 32 {
        write!(out, "{}/{}", Ipv4Addr::from(net), mask.leading_ones())
    } else {
        write!(out, "{}/{}", Ipv4Addr::from(net), Ipv4Addr::from(mask))
    };
}

/// One IPv6 address or network; `None` for the any-address.
pub(super) fn ipv6_network(text: &str) -> Result<Option<String>, String> {
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
pub(super) fn show_ipv6(a: Ipv6Addr) -> String {
    let s = a.segments();
    if s[..6].iter().all(|w| *w == 0) && s[6] != 0 {
        let o = a.octets();
        return format!("::{}.{}.{}.{}", o[12], o[13], o[14], o[15]);
    }
    a.to_string()
}

/// An address or network as read, printed when the rule is written out.
pub(super) enum Net {
    /// One IPv4 network (the common case: no text of its own).
    V4((u32, u32)),
    /// As printed: an IPv6 network, or a list.
    Text(String),
}

impl Net {
    pub(super) fn push_to(&self, out: &mut String) {
        match self {
            Net::V4(net) => push_ipv4_network(out, *net),
            Net::Text(text) => out.push_str(text),
        }
    }
}

/// An address list (comma-separated) in the family the rule reaches; `None` when it holds the
/// any-address.
pub(super) fn network(text: &str, v6: bool) -> Result<Option<Net>, String> {
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
pub(super) fn port(text: &str, proto: &str) -> Result<u16, String> {
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
pub(super) fn c_port(text: &str, proto: &str) -> Result<u16, String> {
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
pub(super) fn port_range(text: &str, proto: &str) -> Result<Option<(u16, u16)>, String> {
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
pub(super) fn states(text: &str, allowed: usize) -> Result<String, String> {
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
pub(super) fn icmp(text: &str) -> Result<String, String> {
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
pub(super) fn save_string(out: &mut String, value: &str) {
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

/// A chain name the tool reads (`-A`, `-I`, or a target).
pub(super) fn chain_name(chain: &str) -> bool {
    !chain.is_empty() && chain.len() <= 28 && !chain.starts_with('-') && chain.bytes().all(chain_byte)
}

/// A target the tool reads: a built-in one, or a user chain (not upper case only: an extension
/// the model does not know).
pub(super) fn target_name(t: &str) -> bool {
    ["ACCEPT", "DROP", "RETURN", "REJECT", "LOG"].contains(&t)
        || (chain_name(t) && !t.bytes().all(|b| b.is_ascii_uppercase()))
}

/// An interface name the tool reads.
pub(super) fn interface(v: &str) -> Result<(), String> {
    if v.is_empty() || v.len() > 15 {
        return err(format!("interface name `{v}' must be 1 to 15 characters"));
    }
    if !v.bytes().all(|b| b.is_ascii_alphanumeric() || b"_.-+@".contains(&b)) {
        return err(format!("interface name `{v}' is not one the tool reads"));
    }
    Ok(())
}

/// A protocol's number, its name read in any case.
pub(super) fn protocol(v: &str) -> Result<u8, String> {
    let v = v.to_ascii_lowercase();
    names::get()
        .protocol(&v)
        .ok_or_else(|| format!("unknown protocol \"{v}\" specified"))
}

/// The `--reject-with` values the tool reads.
pub(super) const REJECT_WITH: [&str; 8] = [
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
pub(super) fn value<'a>(args: &[&'a str], i: usize) -> Result<&'a str, String> {
    args.get(i + 1)
        .copied()
        .ok_or_else(|| format!("option {} requires an argument", args[i]))
}

/// A multiport port list as it prints, its protocol checked as the option is read (so `-p`
/// must come first): at most 15 ports, a range counting two.
pub(super) fn multiport_list(v: &str, proto: Option<(bool, u8)>) -> Result<String, String> {
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
pub(super) fn match_option(
    m: &mut Match,
    at: usize,
    neg: bool,
    v: &str,
    proto: Option<(bool, u8)>,
) -> Result<(), String> {
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
