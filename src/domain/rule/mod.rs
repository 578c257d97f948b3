//! One iptables rule and its canonical form, spelled the way `iptables -S` prints it.

pub mod names;
mod parse;

use std::fmt;

use serde::Serialize;

/// Address family an `IPTABLE` call names (`ipv4` / `ipv6`); without one the call goes to both.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, serde::Deserialize)]
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
/// on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RuleKey {
    hash: u128,
    /// Families the rule reaches, as a bit set (1 = IPv4, 2 = IPv6).
    reach: u8,
    /// An ACCEPT naming a non-negated source address (the article's custom rule).
    custom: bool,
    /// The INPUT rule accepting RELATED,ESTABLISHED.
    stateful: bool,
    source: Source,
}

/// What a rule's source (`-s`) names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// No source, or the any-address.
    Any,
    /// One address or network with a contiguous mask of this many bits.
    Prefix(u8),
    /// One network whose mask is not contiguous (`0.0.0.0/0.0.0.1`).
    NonContiguous,
    /// A list: iptables loads one rule per entry (this many).
    List(u32),
}

impl RuleKey {
    fn new(canonical: &str, reach: u8, custom: bool, stateful: bool, source: Source) -> Self {
        Self {
            hash: xxhash_rust::xxh3::xxh3_128(canonical.as_bytes()),
            reach,
            custom,
            stateful,
            source,
        }
    }

    /// What the rule's source names.
    pub fn source(&self) -> Source {
        self.source
    }

    /// The canonical form's hash, for indexes.
    pub fn hash(&self) -> u128 {
        self.hash
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

/// The iptables whose reading of a spelling decides what it is: the appliance's own version.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Iptables {
    /// 1.4.21, RHEL/CentOS 7's (IWSVA 6.5).
    V1_4,
    /// 1.8, RHEL 8's (1.8.4) and current ones.
    V1_8,
    /// Not known: a spelling is read only where 1.4.21 and 1.8 read it alike.
    Any,
}

impl Iptables {
    /// The version a product's appliance runs: IWSVA 6.5 is RHEL/CentOS 7 (1.4.21); anything
    /// else is not known.
    pub fn of(version: &crate::domain::version::Version) -> Self {
        if version.product == crate::domain::version::Product::Iwsva && version.is_known() {
            Iptables::V1_4
        } else {
            Iptables::Any
        }
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

    /// The canonical text, taken out of the rule (no copy).
    pub fn into_canonical(self) -> String {
        self.canonical.into_string()
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

    /// The rules iptables loads for this one: one per source of a source list, else itself.
    pub fn loaded_as(&self) -> Vec<Rule> {
        let Source::List(_) = self.key.source else {
            return vec![self.clone()];
        };
        let words = dump_words(&self.canonical);
        let Some(at) = words.iter().position(|w| w == "-s").map(|p| p + 1) else {
            return vec![self.clone()];
        };
        let family = self.families().first().copied();
        words[at]
            .split(',')
            .filter_map(|source| {
                let mut one = words.clone();
                one[at] = source.to_string();
                let one: Vec<&str> = one.iter().map(String::as_str).collect();
                parse::parse(family, &one, Iptables::Any, false).ok().flatten()
            })
            .collect()
    }

    /// The table the rule goes to (`filter` unless the canonical form starts with `-t TABLE`).
    pub fn table(&self) -> &str {
        match self.canonical.strip_prefix("-t ") {
            Some(rest) => rest.split(' ').next().unwrap_or("filter").trim_matches('\''),
            None => "filter",
        }
    }
}

/// Parses the text of an `IPTABLE` call, `[ipv4|ipv6] ARGS...`; `family` applies when the words
/// name none. The text is split into words as bash splits it ([`crate::domain::shell::words`]);
/// a line whose words depend on more than quoting is an error.
pub fn parse_call(text: &str, family: Option<Family>) -> Result<Option<Rule>, String> {
    parse_call_as(text, family, Iptables::Any)
}

/// [`parse_call`] as one version of iptables reads it.
pub fn parse_call_as(text: &str, family: Option<Family>, iptables: Iptables) -> Result<Option<Rule>, String> {
    let split = crate::domain::shell::arguments(text)?;
    let words: Vec<&str> = split.iter().map(String::as_str).collect();
    parse_args_as(family, &words, iptables)
}

/// Parses words already split, `[ipv4|ipv6] ARGS...`; `family` applies when the words name
/// none. `Ok(None)`: a call that adds no rule.
pub fn parse_args_with(family: Option<Family>, words: &[&str]) -> Result<Option<Rule>, String> {
    parse_args_as(family, words, Iptables::Any)
}

/// [`parse_args_with`] as one version of iptables reads the words.
pub fn parse_args_as(family: Option<Family>, words: &[&str], iptables: Iptables) -> Result<Option<Rule>, String> {
    read_words(family, words, iptables, false)
}

/// [`parse_args_as`] in the restorable grammar: the rule of a line the tool may write back,
/// or why not (only the options, matches and targets the tool restores, spelled in full).
pub fn parse_restorable(family: Option<Family>, words: &[&str], iptables: Iptables) -> Result<Rule, String> {
    read_words(family, words, iptables, true)?.ok_or_else(|| "adds no rule".to_string())
}

fn read_words(
    family: Option<Family>,
    words: &[&str],
    iptables: Iptables,
    restorable: bool,
) -> Result<Option<Rule>, String> {
    match words.first() {
        Some(&"ipv4") => parse::parse(Some(Family::V4), &words[1..], iptables, restorable),
        Some(&"ipv6") => parse::parse(Some(Family::V6), &words[1..], iptables, restorable),
        _ => parse::parse(family, words, iptables, restorable),
    }
}

/// Splits one line of `iptables -S` / `iptables-save` output into words: blanks separate,
/// double quotes group, a backslash inside them escapes the next character.
pub fn dump_words(line: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut word: Option<String> = None;
    let mut quoted = false;
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            '"' => {
                quoted = !quoted;
                word.get_or_insert_with(String::new);
            }
            '\\' if quoted => {
                if let Some(n) = chars.next() {
                    word.get_or_insert_with(String::new).push(n);
                }
            }
            ' ' | '\t' if !quoted => words.extend(word.take()),
            c => word.get_or_insert_with(String::new).push(c),
        }
    }
    words.extend(word);
    words
}

/// Reads one line of `iptables -S` output (or a canonical form) in `family`.
pub fn parse_dump_line(line: &str, family: Option<Family>) -> Result<Option<Rule>, String> {
    let words = dump_words(line);
    let words: Vec<&str> = words.iter().map(String::as_str).collect();
    parse::parse(family, &words, Iptables::Any, false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_source_list_is_loaded_as_one_rule_per_source() {
        let list = rule("ipv4 -A INPUT -p tcp -s 198.51.100.2,198.51.100.1 -j ACCEPT");
        assert_eq!(list.key().source(), Source::List(2));
        let parts: Vec<String> = list.loaded_as().into_iter().map(Rule::into_canonical).collect();
        assert_eq!(
            parts,
            [
                "-A INPUT -s 198.51.100.1/32 -p tcp -j ACCEPT",
                "-A INPUT -s 198.51.100.2/32 -p tcp -j ACCEPT"
            ]
        );
        let one = rule("ipv4 -A INPUT -s 10.0.0.0/255.0.0.1 -j ACCEPT");
        assert_eq!(one.key().source(), Source::NonContiguous);
        assert_eq!(
            rule("ipv6 -A INPUT -s 2001:db8::/33 -j ACCEPT").key().source(),
            Source::Prefix(33)
        );
        assert_eq!(one.loaded_as(), std::slice::from_ref(&one));
    }

    #[test]
    fn a_key_gives_back_the_whole_hash_of_its_canonical_form() {
        for text in ["", "-A INPUT -s 10.0.0.1/32 -p tcp -j ACCEPT", "x"] {
            let key = RuleKey::new(text, 1, false, false, Source::Any);
            assert_eq!(key.hash(), xxhash_rust::xxh3::xxh3_128(text.as_bytes()), "{text:?}");
        }
    }

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
        // iptables 1.8 prints the state match as itself, not as conntrack.
        assert_eq!(
            rule("-A INPUT -m state --state ESTABLISHED,RELATED -j ACCEPT").canonical(),
            "-A INPUT -m state --state RELATED,ESTABLISHED -j ACCEPT"
        );
        assert_eq!(
            rule("-A INPUT -s 192.0.2.1/0032 -j ACCEPT").canonical(),
            "-A INPUT -s 192.0.2.0/26 -j ACCEPT"
        );
        assert_eq!(
            rule("-A INPUT -s 10.0.1 -j ACCEPT").canonical(),
            "-A INPUT -s 10.0.1.0/32 -j ACCEPT"
        );
        assert_eq!(
            rule("-A INPUT -s 0.0.0.0/0 -j ACCEPT").canonical(),
            "-A INPUT -j ACCEPT"
        );
        assert_eq!(
            rule("-A INPUT -p 0x6 --dport=http -j ACCEPT").canonical(),
            "-A INPUT -p tcp -m tcp --dport 80 -j ACCEPT"
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
            "-A INPUT -s 192.0.2.1/32 -m comment --comment \"proxy farm\" -j ACCEPT"
        );
    }

    #[test]
    fn canonical_forms_read_back_as_themselves() {
        for text in [
            "-A INPUT -m comment --comment \"it's \\\"x\\\"\" -j DROP",
            "-A INPUT -p tcp -m multiport --dports http,443:445 -j ACCEPT",
            "-t nat -A PREROUTING -p udp --dport 53 -j RETURN",
        ] {
            let r = rule(text);
            let again = parse_dump_line(r.canonical(), None).unwrap().unwrap();
            assert_eq!(again.canonical(), r.canonical(), "{text}");
        }
        // What the tool does not read is an error, never a guess.
        for text in [
            "-A 'IN\"P T' -j ACCEPT",
            "-t 'a b' -A X -j ACCEPT",
            "-A INPUT -p state --state NEW -j ACCEPT",
        ] {
            assert!(parse_call(text, None).is_err(), "{text}");
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
        // iptables 1.8 refuses the old `-s ! ADDR` spelling.
        assert!(parse_call("-A INPUT -s ! 10.0.0.1 -j DROP", None).is_err());
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
        assert_eq!(parse_args_with(None, &["-N", "ACL_IN"]), Ok(None));
        assert_eq!(parse_args_with(None, &["-P", "INPUT", "DROP"]), Ok(None));
        assert!(parse_args_with(None, &["-A", "INPUT", "-s"]).is_err());
        assert!(parse_args_with(None, &["-A", "INPUT", "junk"]).is_err());
    }

    #[test]
    fn counters_are_read_and_do_not_change_the_rule() {
        let plain = rule("ipv4 -A INPUT -p tcp -s 192.0.2.1 -j ACCEPT");
        for with in [
            "ipv4 -A INPUT -c 0 0 -p tcp -s 192.0.2.1 -j ACCEPT",
            "ipv4 -A INPUT -p tcp -s 192.0.2.1 -j ACCEPT --set-counters 5 6",
            "ipv4 -A INPUT --set-c 1,2 -p tcp -s 192.0.2.1 -j ACCEPT",
            "ipv4 -A INPUT -c +1 2x -p tcp -s 192.0.2.1 -j ACCEPT",
        ] {
            assert_eq!(rule(with), plain, "{with}");
            assert!(rule(with).covers(&plain) && plain.covers(&rule(with)), "{with}");
        }
        // As iptables 1.4.21 and 1.8.9 refuse them.
        for bad in [
            "-A INPUT -c 1 -j ACCEPT",
            "-A INPUT -c x 1 -j ACCEPT",
            "-A INPUT -c 1 -2 -j ACCEPT",
            "-A INPUT -c 1, -j ACCEPT",
            "-A INPUT ! -c 1 2 -j ACCEPT",
            "-A INPUT -c 1 2 -c 3 4 -j ACCEPT",
        ] {
            assert!(parse_call(bad, None).is_err(), "{bad}");
        }
    }

    #[test]
    fn options_written_with_equals_follow_the_appliances_iptables() {
        let old = |t: &str| parse_call_as(t, None, Iptables::V1_4);
        let new = |t: &str| parse_call_as(t, None, Iptables::V1_8);
        // 1.4.21 reads `--source=ADDR` as `-s ADDR`; 1.8 reads the whole word as the address.
        let text = "-A INPUT --source=192.0.2.1 -j ACCEPT";
        assert_eq!(old(text).unwrap().unwrap(), rule("-A INPUT -s 192.0.2.1 -j ACCEPT"));
        assert!(new(text).is_err());
        let any = parse_call(text, None).unwrap_err();
        assert!(any.contains("1.4.21 reads it"), "{any}");
        // Match options take `=` in both.
        assert!(parse_call("-A INPUT -p tcp --dport=80 -j ACCEPT", None)
            .unwrap()
            .is_some());
        // `-w SECONDS` and `-W` are 1.8's only.
        assert!(old("-A INPUT -w 5 -j ACCEPT").is_err() && new("-A INPUT -w 5 -j ACCEPT").is_ok());
        assert!(old("-A INPUT -W 5 -j ACCEPT").is_err());
        assert!(parse_call("-A INPUT -w -j ACCEPT", None).unwrap().is_some());
        // The version an appliance runs.
        let v = |s| crate::domain::version::parse_version(s, None).unwrap();
        assert_eq!(Iptables::of(&v("IWSVA 6.5-SP2_Build_Linux_1548")), Iptables::V1_4);
        assert_eq!(Iptables::of(&v("IWSS 6.5 Patch 3")), Iptables::Any);
    }

    #[test]
    fn options_are_checked_as_iptables_checks_them() {
        // multiport checks the protocol as its port option is read.
        assert!(parse_call("-A INPUT -m multiport --dports 80,443 -p tcp -j ACCEPT", None).is_err());
        assert!(
            parse_call("-A INPUT -p tcp -m multiport --dports 80,443 -j ACCEPT", None)
                .unwrap()
                .is_some()
        );
        // ip6tables has no --icmp-type: a rule for IPv6, or for both families, is refused.
        assert!(parse_call("ipv6 -A INPUT -p icmp --icmp-type 8 -j ACCEPT", None).is_err());
        assert!(parse_call("-A INPUT -p icmp --icmp-type 8 -j ACCEPT", None).is_err());
        assert!(parse_call("ipv4 -A INPUT -p icmp --icmp-type 8 -j ACCEPT", None)
            .unwrap()
            .is_some());
        assert!(
            parse_call("-A INPUT -s 192.0.2.1 -p icmp --icmp-type 8 -j ACCEPT", None)
                .unwrap()
                .is_some()
        );
    }
}
