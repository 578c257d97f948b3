//! The arguments of one iptables call, read the way iptables 1.8 reads them and printed the way
//! `iptables -S` prints the rule. Only a known set of options, matches and targets is read; any
//! other makes the call "not understood" (an error), never a guess.

use std::fmt::Write;
use std::net::{Ipv4Addr, Ipv6Addr};

use super::names::{self, strtoui};
use super::{Family, Iptables, Rule, RuleKey, Source, V4, V6};

mod finish;
mod reader;
mod values;
use finish::*;
use reader::*;
use values::*;

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
