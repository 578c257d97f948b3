//! Protocol and service names as iptables resolves them: from the appliance's `/etc/protocols`
//! and `/etc/services` when the system layer hands them over ([`set`]), else from a built-in
//! table of the standard names. ICMP type names come from iptables' own table.

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::OnceLock;

/// The names a run resolves with.
#[derive(Debug, Clone, Default)]
pub struct Names {
    /// Protocol name (and alias) -> number.
    protocols: HashMap<String, u8>,
    /// Number -> the protocol's first name.
    protocol_names: HashMap<u8, String>,
    /// (service name or alias, protocol) -> port.
    services: HashMap<(String, String), u16>,
    /// Service name or alias -> the port of its first line, whatever the protocol.
    services_any: HashMap<String, u16>,
}

/// The names iptables knows without any file (`xtables_chain_protos`), printed before any other.
const CHAIN_PROTOS: [(&str, u8); 10] = [
    ("tcp", 6),
    ("sctp", 132),
    ("udp", 17),
    ("udplite", 136),
    ("icmp", 1),
    ("ipv6-icmp", 58),
    ("icmpv6", 58),
    ("esp", 50),
    ("ah", 51),
    ("mh", 135),
];

/// Standard protocol names (netbase), for a root without `/etc/protocols`.
const BUILTIN_PROTOCOLS: &str = "ip 0 IP\nicmp 1 ICMP\nigmp 2 IGMP\nipencap 4 IP-ENCAP\ntcp 6 TCP\negp 8 EGP\nudp 17 UDP\nipv6 41 IPv6\nipv6-route 43 IPv6-Route\nipv6-frag 44 IPv6-Frag\nrsvp 46 RSVP\ngre 47 GRE\nesp 50 IPSEC-ESP\nah 51 IPSEC-AH\nipv6-icmp 58 IPv6-ICMP\nipv6-nonxt 59 IPv6-NoNxt\nipv6-opts 60 IPv6-Opts\nospf 89 OSPFIGP\npim 103 PIM\nvrrp 112 VRRP\nsctp 132 SCTP\nudplite 136 UDPLite\n";

/// Standard service names (netbase), for a root without `/etc/services`.
const BUILTIN_SERVICES: &str = "ftp-data 20/tcp\nftp 21/tcp\nssh 22/tcp\ntelnet 23/tcp\nsmtp 25/tcp mail\ndomain 53/tcp\ndomain 53/udp\nbootps 67/udp\nbootpc 68/udp\ntftp 69/udp\nhttp 80/tcp www\nkerberos 88/tcp kerberos5 krb5\nkerberos 88/udp kerberos5 krb5\npop3 110/tcp pop-3\nsunrpc 111/tcp portmapper\nsunrpc 111/udp portmapper\nntp 123/udp\nimap2 143/tcp imap\nsnmp 161/tcp\nsnmp 161/udp\nldap 389/tcp\nhttps 443/tcp\nhttps 443/udp\nmicrosoft-ds 445/tcp\nsyslog 514/udp\nsubmission 587/tcp\nldaps 636/tcp\nimaps 993/tcp\npop3s 995/tcp\nsocks 1080/tcp\nradius 1812/tcp\nradius 1812/udp\nradius-acct 1813/tcp radacct\nradius-acct 1813/udp radacct\nsquid 3128/tcp\nhttp-alt 8080/tcp webcache\n";

impl Names {
    /// Reads `/etc/protocols` and `/etc/services` text (either may be empty: the built-in
    /// table stands in for it).
    pub fn parse<'a>(protocols: &'a str, services: &'a str) -> Self {
        let mut names = Names::default();
        let or_builtin = |text: &'a str, builtin| if text.trim().is_empty() { builtin } else { text };
        for (name, number, aliases) in entries(or_builtin(protocols, BUILTIN_PROTOCOLS)) {
            let Ok(number) = number.parse::<u8>() else { continue };
            names.protocol_names.entry(number).or_insert_with(|| name.to_string());
            for n in std::iter::once(name).chain(aliases) {
                names.protocols.entry(n.to_string()).or_insert(number);
            }
        }
        for (name, port, aliases) in entries(or_builtin(services, BUILTIN_SERVICES)) {
            let Some((port, proto)) = port.split_once('/') else {
                continue;
            };
            let Ok(port) = port.parse::<u16>() else { continue };
            for n in std::iter::once(name).chain(aliases) {
                names.services.entry((n.to_string(), proto.to_string())).or_insert(port);
                names.services_any.entry(n.to_string()).or_insert(port);
            }
        }
        names
    }

    /// A protocol as `-p` reads it (already lower-cased): a number (base prefixes allowed) up
    /// to 255, `all`, or a name.
    pub fn protocol(&self, p: &str) -> Option<u8> {
        if let Some(n) = strtoui(p, 255) {
            return Some(n as u8);
        }
        if p == "all" {
            return Some(0);
        }
        self.protocols
            .get(p)
            .copied()
            .or_else(|| CHAIN_PROTOS.iter().find(|(n, _)| *n == p).map(|(_, v)| *v))
    }

    /// A protocol number as `iptables -S` prints it.
    pub fn protocol_name(&self, n: u8) -> Cow<'_, str> {
        CHAIN_PROTOS
            .iter()
            .find(|(_, v)| *v == n)
            .map(|(name, _)| Cow::Borrowed(*name))
            .or_else(|| self.protocol_names.get(&n).map(|s| Cow::Borrowed(s.as_str())))
            .unwrap_or_else(|| Cow::Owned(n.to_string()))
    }

    /// A service name's port under any protocol (the first line that names it).
    pub fn service_any(&self, name: &str) -> Option<u16> {
        self.services_any.get(name).copied()
    }

    /// A service name's port for a protocol.
    pub fn service(&self, name: &str, proto: &str) -> Option<u16> {
        self.services.get(&(name.to_string(), proto.to_string())).copied()
    }
}

/// The lines of an `/etc/protocols` or `/etc/services` text as (name, second word, aliases),
/// comments left out; a line of fewer than two words is none.
fn entries(text: &str) -> impl Iterator<Item = (&str, &str, std::str::SplitWhitespace<'_>)> {
    text.lines().filter_map(|line| {
        let mut words = line.split('#').next().unwrap_or("").split_whitespace();
        Some((words.next()?, words.next()?, words))
    })
}

/// C `strtoul(s, &end, 0)` that must consume the whole string, within `0..=max`: decimal, `0x`
/// hex or leading-`0` octal; no sign, no blanks.
pub fn strtoui(s: &str, max: u64) -> Option<u64> {
    let b = s.as_bytes();
    let (digits, radix) = match b {
        [b'0', b'x' | b'X', rest @ ..] => (rest, 16),
        [b'0', rest @ ..] if !rest.is_empty() => (rest, 8),
        _ => (b, 10),
    };
    if digits.is_empty() {
        return None;
    }
    // Digit by digit (hot: every address part and port), stopping at the first that is not one
    // or at the first value past `max`.
    let mut n: u64 = 0;
    for &c in digits {
        let d = (c as char).to_digit(radix)?;
        n = n.checked_mul(u64::from(radix))?.checked_add(u64::from(d))?;
        if n > max {
            return None;
        }
    }
    Some(n)
}

static NAMES: OnceLock<Names> = OnceLock::new();

/// Hands the appliance's name files to the rule model, once per run, before any rule is read.
pub fn set(names: Names) {
    let _ = NAMES.set(names);
}

/// The names in force: the appliance's, or the built-in table.
pub fn get() -> &'static Names {
    NAMES.get_or_init(|| Names::parse("", ""))
}

/// An ICMP type name as iptables' own table spells it: (type, lowest code, highest code).
pub fn icmp_type(name: &str) -> Option<(u8, u8, u8)> {
    const TABLE: [(&str, u8, u8, u8); 40] = [
        ("any", 255, 0, 255),
        ("echo-reply", 0, 0, 255),
        ("pong", 0, 0, 255),
        ("destination-unreachable", 3, 0, 255),
        ("network-unreachable", 3, 0, 0),
        ("host-unreachable", 3, 1, 1),
        ("protocol-unreachable", 3, 2, 2),
        ("port-unreachable", 3, 3, 3),
        ("fragmentation-needed", 3, 4, 4),
        ("source-route-failed", 3, 5, 5),
        ("network-unknown", 3, 6, 6),
        ("host-unknown", 3, 7, 7),
        ("network-prohibited", 3, 9, 9),
        ("host-prohibited", 3, 10, 10),
        ("tos-network-unreachable", 3, 11, 11),
        ("tos-host-unreachable", 3, 12, 12),
        ("communication-prohibited", 3, 13, 13),
        ("host-precedence-violation", 3, 14, 14),
        ("precedence-cutoff", 3, 15, 15),
        ("source-quench", 4, 0, 255),
        ("redirect", 5, 0, 255),
        ("network-redirect", 5, 0, 0),
        ("host-redirect", 5, 1, 1),
        ("tos-network-redirect", 5, 2, 2),
        ("tos-host-redirect", 5, 3, 3),
        ("echo-request", 8, 0, 255),
        ("ping", 8, 0, 255),
        ("router-advertisement", 9, 0, 255),
        ("router-solicitation", 10, 0, 255),
        ("time-exceeded", 11, 0, 255),
        ("ttl-exceeded", 11, 0, 255),
        ("ttl-zero-during-transit", 11, 0, 0),
        ("ttl-zero-during-reassembly", 11, 1, 1),
        ("parameter-problem", 12, 0, 255),
        ("ip-header-bad", 12, 0, 0),
        ("required-option-missing", 12, 1, 1),
        ("timestamp-request", 13, 0, 255),
        ("timestamp-reply", 14, 0, 255),
        ("address-mask-request", 17, 0, 255),
        ("address-mask-reply", 18, 0, 255),
    ];
    let lower = name.to_ascii_lowercase();
    TABLE
        .iter()
        .find(|(n, ..)| *n == lower)
        .map(|(_, t, lo, hi)| (*t, *lo, *hi))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strtoui_follows_c() {
        assert_eq!(strtoui("0x18", 32), Some(24));
        assert_eq!(strtoui("0032", 32), Some(26));
        assert_eq!(strtoui("08", 32), None);
        assert_eq!(strtoui("33", 32), None);
        assert_eq!(strtoui("", 32), None);
        assert_eq!(strtoui("-1", 32), None);
        assert_eq!(strtoui("0", 32), Some(0));
    }

    #[test]
    fn names_come_from_the_files_or_the_builtin_table() {
        let n = Names::parse("", "");
        assert_eq!(n.protocol("gre"), Some(47));
        assert_eq!(n.protocol_name(47), "gre");
        assert_eq!(n.protocol_name(6), "tcp");
        assert_eq!(n.service("www", "tcp"), Some(80));
        assert_eq!(n.service("www", "udp"), None);
        let n = Names::parse("foo 200 FOO\n", "bar 9/tcp baz\n");
        assert_eq!(
            (n.protocol("foo"), n.protocol_name(200).into_owned()),
            (Some(200), "foo".to_string())
        );
        assert_eq!(n.service("baz", "tcp"), Some(9));
        assert_eq!(icmp_type("Echo-Request"), Some((8, 0, 255)));
        assert_eq!(icmp_type("echo"), None);
    }
}
