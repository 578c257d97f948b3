//! The appliance firewall script (`/usr/iwss/iwsvafw.sh`): its `IPTABLE` lines as rules with the
//! canonical form iptables itself prints.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::ops::Range;

use crate::domain::rule::{self, Family, Iptables, Rule, RuleKey};
use crate::domain::shell;
use crate::domain::version::Version;

/// One logical line of the script, as bash reads it ([`shell::segments`]); blank lines are left
/// out.
#[derive(Debug, Clone)]
pub struct Line {
    /// First and last physical line numbers, 1-based (u32 keeps large scripts small in memory;
    /// files are bounded far below 4 GiB).
    first: u32,
    last: u32,
    /// Byte range of the physical lines, newline of the last one included.
    start: u32,
    end: u32,
    /// Text bash does not run as a command of its own (a heredoc body, a multi-line quote).
    pub data: bool,
    /// The article's anchor: a `# stateful` comment, or the INPUT rule accepting
    /// ESTABLISHED,RELATED traffic.
    pub stateful: bool,
    /// What the rule this line adds means, when it is an `IPTABLE` / `iptables` / `ip6tables`
    /// `-A` or `-I` call (the full rule, with its text, comes from [`Script::rule`]).
    pub rule: Option<RuleKey>,
    /// Why the tool cannot read this call, when it cannot: compared by its text, never
    /// restored.
    pub unknown: Option<Box<str>>,
}

impl Line {
    /// First physical line number, 1-based.
    pub fn first(&self) -> usize {
        self.first as usize
    }

    /// Last physical line number, 1-based.
    pub fn last(&self) -> usize {
        self.last as usize
    }

    /// Byte range of the physical lines, newline of the last one included.
    pub fn bytes(&self) -> Range<usize> {
        self.start as usize..self.end as usize
    }
}

/// A parsed firewall script, borrowing the script's bytes.
#[derive(Debug, Clone)]
pub struct Script<'a> {
    pub bytes: &'a [u8],
    pub lines: Vec<Line>,
    /// The iptables whose reading decides what each call adds.
    pub iptables: Iptables,
}

/// The family a command word adds rules to: `IPTABLE` (family from its first argument, else
/// both), `iptables` (IPv4) or `ip6tables` (IPv6), by name or path. `None`: not a call.
fn command_family(word: &str) -> Option<Option<Family>> {
    // The vendor script's own word, by that name only (not a path): every call of its script.
    if word == "IPTABLE" {
        return Some(None);
    }
    let name = word.rsplit('/').next().unwrap_or(word);
    match name {
        "iptables" => Some(Some(Family::V4)),
        "ip6tables" => Some(Some(Family::V6)),
        _ => None,
    }
}

/// Whether a line starts like a call (before any shell rules are applied): worth reading.
fn looks_like_call(body: &[u8]) -> bool {
    let rest = &body[body.iter().take_while(|&&b| b == b' ' || b == b'\t').count()..];
    let word_end = rest
        .iter()
        .position(|&b| b == b' ' || b == b'\t' || b == b'\n' || b == b';')
        .unwrap_or(rest.len());
    std::str::from_utf8(&rest[..word_end]).is_ok_and(|w| command_family(w).is_some())
}

/// Whether a comment's text starts with `stateful`, in any case, after blanks.
fn is_stateful_comment(c: &[u8]) -> bool {
    let text = String::from_utf8_lossy(c);
    text.trim_start()
        .get(..8)
        .is_some_and(|head| head.eq_ignore_ascii_case("stateful"))
}

/// What a call line adds: its key and whether it is the stateful anchor, or why it cannot be
/// read. `Ok(None)`: not a call, or a call that adds no rule.
fn read_call(body: &[u8], iptables: Iptables) -> Result<(Option<RuleKey>, bool), String> {
    let words = shell::words(body)?;
    let (all, comment) = (words.strs(), words.comment);
    let stateful_comment = comment.is_some_and(|at| is_stateful_comment(&body[at + 1..]));
    let Some((family, args)) = all
        .split_first()
        .and_then(|(command, args)| Some((command_family(command)?, args)))
    else {
        return Ok((None, stateful_comment));
    };
    if family.is_some() && matches!(args.first(), Some(&"ipv4") | Some(&"ipv6")) {
        return Err(format!("unexpected argument {:?}", args[0]));
    }
    let key = rule::parse_args_as(family, args, iptables)?.map(|r| *r.key());
    let stateful = stateful_comment || key.as_ref().is_some_and(RuleKey::is_stateful_accept);
    Ok((key, stateful))
}

/// The body of a line: its bytes without the final newline.
fn body_of<'b>(bytes: &'b [u8], line: &Line) -> &'b [u8] {
    let raw = &bytes[line.bytes()];
    raw.strip_suffix(b"\n").unwrap_or(raw)
}

impl<'a> Script<'a> {
    /// Splits a script into logical lines as bash does and reads each call, a spelling only
    /// where iptables 1.4.21 and 1.8 read it alike. Never fails: a call the tool cannot read is
    /// kept as `unknown`, with the reason.
    pub fn parse(bytes: &'a [u8]) -> Self {
        Self::parse_as(bytes, Iptables::Any)
    }

    /// [`Script::parse`], each call read as `iptables` reads it.
    pub fn parse_as(bytes: &'a [u8], iptables: Iptables) -> Self {
        let mut script = Self::split(bytes, iptables);
        script.read_calls();
        script
    }

    /// Splits a script into logical lines as bash does, without reading their calls.
    fn split(bytes: &'a [u8], iptables: Iptables) -> Self {
        let mut lines = Vec::new();
        for seg in shell::segments(bytes) {
            // Blank lines are not kept: nothing refers to them (memory stays bounded by what
            // the script says, not by how many empty lines it has).
            if bytes[seg.bytes.clone()].iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            lines.push(Line {
                first: seg.first as u32,
                last: seg.last as u32,
                start: seg.bytes.start as u32,
                end: seg.bytes.end as u32,
                data: seg.kind == shell::Kind::Data,
                stateful: false,
                rule: None,
                unknown: None,
            });
        }
        Self { bytes, lines, iptables }
    }

    /// Reads the call of each code line; a call the tool cannot read keeps its reason.
    fn read_calls(&mut self) {
        for line in &mut self.lines {
            if line.data {
                continue;
            }
            let body = body_of(self.bytes, line);
            match read_call(body, self.iptables) {
                Ok((rule, stateful)) => (line.rule, line.stateful) = (rule, stateful),
                Err(why) if looks_like_call(body) => {
                    line.unknown = Some(why.into_boxed_str());
                }
                Err(_) => {}
            }
        }
    }

    /// Why the tool cannot read line `index`, when it cannot.
    pub fn why_unknown(&self, index: usize) -> Option<&str> {
        self.lines[index].unknown.as_deref()
    }

    /// A line's text with continuations joined and surrounding blanks trimmed, for reports and
    /// for comparing lines the tool cannot read.
    pub fn text(&self, index: usize) -> String {
        let body = String::from_utf8_lossy(body_of(self.bytes, &self.lines[index]));
        body.replace("\\\n", " ").trim().to_string()
    }

    /// The rule line `index` adds, with its canonical text (read again: only the few rules a
    /// report shows need their text).
    pub fn rule(&self, index: usize) -> Option<Rule> {
        self.lines[index].rule?;
        let words = shell::words(body_of(self.bytes, &self.lines[index])).ok()?;
        let all = words.strs();
        let (first, args) = all.split_first()?;
        rule::parse_args_as(command_family(first)?, args, self.iptables)
            .ok()
            .flatten()
    }

    /// Rules in script order, with the index of their line.
    pub fn rules(&self) -> impl Iterator<Item = (usize, &RuleKey)> {
        self.lines
            .iter()
            .enumerate()
            .filter_map(|(i, l)| l.rule.as_ref().map(|r| (i, r)))
    }

    /// An index of the rules by canonical form, for matching in constant time.
    pub fn index(&self) -> RuleIndex {
        let mut reach: HashMap<u128, u8> = HashMap::new();
        for (_, r) in self.rules() {
            *reach.entry(r.hash()).or_default() |= r.reach();
        }
        RuleIndex { reach }
    }

    /// Index of the first stateful anchor line.
    pub fn stateful_line(&self) -> Option<usize> {
        self.lines.iter().position(|l| l.stateful)
    }
}

/// The rules of one script by canonical form, with the families they reach together.
pub struct RuleIndex {
    reach: HashMap<u128, u8>,
}

impl RuleIndex {
    /// Whether the script already does what `rule` does, in any spelling and every family
    /// `rule` reaches.
    pub fn covers(&self, rule: &RuleKey) -> bool {
        self.reach
            .get(&rule.hash())
            .is_some_and(|r| r & rule.reach() == rule.reach())
    }
}

/// A rule to be restored, as `iptables-restore` reads it: for checking it with the appliance's
/// own iptables before anything is written.
#[derive(Debug, Clone)]
pub struct RuleToTest {
    /// Index of the logical line in the old script, as the comparison's entries hold it.
    pub index: usize,
    pub families: &'static [Family],
    pub table: String,
    /// `-A CHAIN ...` (an insert at a position becomes an append: the test table is empty).
    pub args: Vec<String>,
    /// Chains the rule names (its own and a jump target), declared before it.
    pub chains: Vec<String>,
}

const BUILTIN_TARGETS: [&str; 8] = ["ACCEPT", "DROP", "RETURN", "REJECT", "LOG", "QUEUE", "NFQUEUE", "MARK"];

impl Script<'_> {
    /// The rule line `index` adds, in the form [`restore_test_input`] takes.
    pub fn rule_to_test(&self, index: usize) -> Option<RuleToTest> {
        let rule = self.rule(index)?;
        let w = shell::words(body_of(self.bytes, &self.lines[index])).ok()?;
        let mut words: Vec<String> = w.words.into_iter().skip(1).map(String::from).collect();
        if matches!(words.first().map(String::as_str), Some("ipv4") | Some("ipv6")) {
            words.remove(0);
        }
        let (mut args, mut chains, mut table) = (Vec::new(), Vec::new(), "filter".to_string());
        let mut i = 0;
        while i < words.len() {
            let w = words[i].as_str();
            match w {
                "-t" | "--table" => {
                    table = words.get(i + 1)?.clone();
                    i += 2;
                    continue;
                }
                "-A" | "--append" | "-I" | "--insert" => {
                    let chain = words.get(i + 1)?.clone();
                    args.extend(["-A".to_string(), chain.clone()]);
                    chains.push(chain);
                    i += 2;
                    if matches!(w, "-I" | "--insert")
                        && words.get(i).is_some_and(|n| n.bytes().all(|b| b.is_ascii_digit()))
                    {
                        i += 1;
                    }
                    continue;
                }
                "-j" | "--jump" | "-g" | "--goto" => {
                    if let Some(t) = words.get(i + 1).filter(|t| !BUILTIN_TARGETS.contains(&t.as_str())) {
                        chains.push(t.clone());
                    }
                }
                _ => {}
            }
            args.push(words[i].clone());
            i += 1;
        }
        Some(RuleToTest {
            index,
            families: rule.families(),
            table,
            args,
            chains,
        })
    }
}

/// The chains each table has built in (declared with a policy, not created).
fn builtin_chains(table: &str) -> &'static [&'static str] {
    match table {
        "filter" | "security" => &["INPUT", "FORWARD", "OUTPUT"],
        "nat" => &["PREROUTING", "INPUT", "OUTPUT", "POSTROUTING"],
        "mangle" => &["PREROUTING", "INPUT", "FORWARD", "OUTPUT", "POSTROUTING"],
        "raw" => &["PREROUTING", "OUTPUT"],
        _ => &[],
    }
}

/// A word as `iptables-restore` reads it: double-quoted when it holds a blank or a quote.
fn restore_word(w: &str) -> String {
    if !w.is_empty()
        && !w
            .bytes()
            .any(|b| b.is_ascii_whitespace() || b == b'"' || b == b'\'' || b == b'\\')
    {
        return w.to_string();
    }
    format!("\"{}\"", w.replace('\\', "\\\\").replace('"', "\\\""))
}

/// The `iptables-restore` input that loads `rules` into otherwise empty tables: each table
/// once, its chains declared, `COMMIT` at the end of each.
pub fn restore_test_input(rules: &[&RuleToTest]) -> String {
    let mut tables: Vec<&str> = rules.iter().map(|r| r.table.as_str()).collect();
    tables.sort();
    tables.dedup();
    let mut out = String::new();
    for table in tables {
        let _ = writeln!(out, "*{table}");
        let mut chains: Vec<&str> = rules
            .iter()
            .filter(|r| r.table == table)
            .flat_map(|r| r.chains.iter().map(String::as_str))
            .collect();
        chains.sort();
        chains.dedup();
        for chain in chains {
            let policy = if builtin_chains(table).contains(&chain) {
                "ACCEPT"
            } else {
                "-"
            };
            let _ = writeln!(out, ":{} {policy} [0:0]", restore_word(chain));
        }
        for r in rules.iter().filter(|r| r.table == table) {
            let words: Vec<String> = r.args.iter().map(|w| restore_word(w)).collect();
            let _ = writeln!(out, "{}", words.join(" "));
        }
        out.push_str("COMMIT\n");
    }
    out
}

/// Checks that a line to be written back is a call the shell reads exactly as the tool does, and
/// that only known options, match modules and targets appear: no CR or other control byte, a
/// newline only as a `\`-newline continuation, words the shell splits by quoting alone
/// ([`shell::words`]), a comment only after a blank, and the allow-list of
/// [`rule::parse_restorable`]. Returns the rule the line adds, or why it is refused.
pub fn check_restorable(raw: &[u8], iptables: Iptables) -> Result<Rule, String> {
    let body = raw.strip_suffix(b"\n").unwrap_or(raw);
    if body.contains(&b'\r') {
        return Err("a carriage return (CR) byte".into());
    }
    if let Some(b) = body
        .iter()
        .find(|&&b| (b < 0x20 && b != b'\t' && b != b'\n') || b == 0x7f)
    {
        return Err(format!("the control byte {b:#04x}"));
    }
    for (i, _) in body.iter().enumerate().filter(|(_, &b)| b == b'\n') {
        if i == 0 || body[i - 1] != b'\\' {
            return Err("a line break that is not a continuation".into());
        }
    }
    let words = shell::words(body)?;
    let all = words.strs();
    let Some((&first, args)) = all.split_first() else {
        return Err("no command".into());
    };
    if command_family(first).is_none() {
        return Err("does not start with IPTABLE, iptables or ip6tables".into());
    }
    if first != "IPTABLE" && matches!(args.first(), Some(&"ipv4") | Some(&"ipv6")) {
        return Err("a family word after iptables".into());
    }
    // The model reads it in the restorable grammar, so what is written is what was compared.
    rule::parse_restorable(command_family(first).flatten(), args, iptables)
}

/// The firewall restart the article gives for a version: `/usr/iwss/iwsvafw.sh restart` on IWSVA
/// 6.5 SP3 before SP3 Patch 1 (build 3312), `/etc/init.d/iptables restart` otherwise.
pub fn restart_command(version: &Version, firewall_script: &str) -> (String, Vec<String>) {
    let program = if version.is_iwsva_sp3_before_patch1() {
        firewall_script
    } else {
        "/etc/init.d/iptables"
    };
    (program.to_string(), vec!["restart".into()])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn restart_command_follows_the_article() {
        let v = |s| crate::domain::version::parse_version(s, None).unwrap();
        let script = "/usr/iwss/iwsvafw.sh";
        assert_eq!(restart_command(&v("IWSVA 6.5-SP3_Build_Linux_1916"), script).0, script);
        assert_eq!(
            restart_command(&v("IWSVA 6.5-SP3_Build_Linux_3312"), script).0,
            "/etc/init.d/iptables"
        );
        assert_eq!(
            restart_command(&v("IWSVA 6.5-SP2_Build_Linux_1548"), script).0,
            "/etc/init.d/iptables"
        );
    }

    const EXCERPT: &str = "IPTABLE -A INPUT -m state --state ESTABLISHED,RELATED -j ACCEPT # stateful\n\
IPTABLE ipv4 -A INPUT -p tcp -s 192.0.2.1 -j ACCEPT\n\
# Create the custom chains\n\
IPTABLE -N SCAN_SERV_IN\n";

    #[test]
    fn blank_lines_are_not_kept_and_numbers_stay_physical() {
        let text = format!("echo a\n{}  \t\nIPTABLE -A INPUT -j ACCEPT\n\n", "\n".repeat(100_000));
        let s = Script::parse(text.as_bytes());
        assert_eq!(s.lines.len(), 2);
        assert_eq!(s.lines[1].first(), 100_003);
        assert!(s.lines[1].rule.is_some());
    }

    #[test]
    fn parses_the_article_excerpt() {
        let s = Script::parse(EXCERPT.as_bytes());
        assert_eq!(s.lines.len(), 4);
        assert!(s.lines[0].stateful);
        let r = s.rule(1).unwrap();
        assert_eq!(r.canonical(), "-A INPUT -s 192.0.2.1/32 -p tcp -j ACCEPT");
        assert_eq!(r.family, Some(crate::domain::rule::Family::V4));
        assert!(r.is_custom_accept());
        assert!(s.lines[3].rule.is_none());
        assert_eq!(s.stateful_line(), Some(0));
        assert_eq!(
            &EXCERPT.as_bytes()[s.lines[1].bytes()],
            b"IPTABLE ipv4 -A INPUT -p tcp -s 192.0.2.1 -j ACCEPT\n"
        );
    }

    #[test]
    fn continuation_lines_join_and_keep_their_numbers() {
        let s = Script::parse(b"x=1\nIPTABLE ipv4 -A INPUT \\\n  -p tcp \\\n  -s 10.0.0.0/8 -j ACCEPT\nend");
        assert_eq!(s.lines.len(), 3);
        assert_eq!((s.lines[1].first(), s.lines[1].last()), (2, 4));
        assert_eq!(
            s.rule(1).unwrap().canonical(),
            "-A INPUT -s 10.0.0.0/8 -p tcp -j ACCEPT"
        );
        assert_eq!(s.lines[2].first(), 5);
    }

    #[test]
    fn a_backslash_before_cr_lf_continues_nothing() {
        // bash: the backslash escapes the CR, the LF ends the command, line 3 runs on its own.
        let s = Script::parse(b"IPTABLE ipv4 -A INPUT -s 10.0.0.1 -j ACCEPT --x \\\r\ntouch /tmp/x\n");
        assert_eq!(s.lines.len(), 2);
        assert!(s.lines[0].unknown.is_some() || s.lines[0].rule.is_some());
        assert!(s.lines[1].rule.is_none() && s.lines[1].unknown.is_none());
        assert!(check_restorable(&s.bytes[s.lines[0].bytes()], Iptables::Any).is_err());
    }

    #[test]
    fn heredoc_bodies_are_never_rules() {
        let s = Script::parse(b"cat >/tmp/x <<EOF\nIPTABLE ipv4 -A INPUT -s 192.0.2.9 -j ACCEPT\nEOF\n");
        assert!(s.lines[1].data && s.lines[1].rule.is_none());
    }

    #[test]
    fn every_rule_line_parses_again_with_the_same_key() {
        // Found by fuzzing: text() trims Unicode blanks (here a vertical tab) that the parse kept.
        let s = Script::parse(b"IPTABLE -A INPUT -s 1.2.3.4 -j ACCEPT\x0b\nIPTABLE -A INPUT -j \xff\x00\n");
        for (i, key) in s.rules() {
            assert_eq!(s.rule(i).map(|r| *r.key()), Some(*key), "line {i}");
        }
    }

    #[test]
    fn function_definitions_and_other_words_are_not_rules() {
        let s = Script::parse(b"IPTABLE() {\n  iptables \"$@\"\n}\nIPTABLES_X -A INPUT -j ACCEPT\n");
        assert_eq!(s.text(1), "iptables \"$@\"");
        assert!(s.rules().next().is_none());
        // A call with an expansion is a call the tool cannot read; the definition is no call.
        assert!(s.lines[1].unknown.is_some() && s.lines[0].unknown.is_none());
    }

    #[test]
    fn unreadable_calls_are_kept_with_the_reason() {
        // A quote left open to the end: bash runs no such command (it is a syntax error).
        let s = Script::parse(b"a\nIPTABLE -A INPUT -m comment --comment 'x -j ACCEPT\n");
        assert!(s.lines[1].data && s.lines[1].rule.is_none());
        let s = Script::parse(b"IPTABLE -A INPUT -s \"$P\" -j ACCEPT\n");
        assert_eq!(
            s.why_unknown(0),
            Some("an expansion (`$` or a backquote) inside quotes")
        );
        let s = Script::parse(b"iptables ipv4 -A INPUT -j ACCEPT\n");
        assert!(s.why_unknown(0).is_some());
    }

    #[test]
    fn strict_grammar_accepts_plain_calls() {
        for ok in [
            "IPTABLE ipv4 -A INPUT -p tcp -s 192.0.2.1 -j ACCEPT\n",
            "  IPTABLE -A INPUT -s 10.1.0.0/16 -m comment --comment \"proxy farm\" -j ACCEPT # keep\n",
            "iptables -I INPUT 3 -p tcp -m multiport --dports 80,443 -s 192.0.2.0/24 -j ACCEPT",
            "IPTABLE ipv4 -A INPUT \\\n  -s 192.0.2.1 -j ACCEPT",
            "IPTABLE -A INPUT -s 192.0.2.1 -j ACCEPT # \u{3053}\u{308c}`|;",
        ] {
            assert_eq!(
                check_restorable(ok.as_bytes(), Iptables::Any).map(|_| ()),
                Ok(()),
                "{ok:?}"
            );
        }
    }

    #[test]
    fn strict_grammar_refuses_shell_tricks() {
        for bad in [
            "IPTABLE -A INPUT -s $(curl x) -j ACCEPT",
            "IPTABLE -A INPUT -s `id` -j ACCEPT",
            "IPTABLE -A INPUT -s 1.2.3.4 -j ACCEPT; rm -rf /",
            "IPTABLE -A INPUT -s 1.2.3.4 -j ACCEPT && reboot",
            "IPTABLE -A INPUT -s 1.2.3.4 -j ACCEPT | sh",
            "IPTABLE -A INPUT -s 1.2.3.4 -j ACCEPT > /etc/passwd",
            "IPTABLE -A INPUT -s 1.2.3.4 -j ACCEPT & ",
            "IPTABLE -A INPUT -s \"$X\" -j ACCEPT",
            "IPTABLE -A INPUT -s 1.2.3.4 -j ACCEPT\nreboot",
            "IPTABLE",
            "echo IPTABLE -A INPUT",
            "IPTABLE -A INPUT -s 1.2.3.4 -j ACCEPT\r# ; id > /tmp/x",
            "IPTABLE -A INPUT -s 1.2.3.4 -j ACCEPT # keep\r\n",
            "IPTABLE -A INPUT -s 1.2.3.4 -j ACCEPT --x \\\r\n",
            "IPTABLE -A INPUT --modprobe=/tmp/x -s 1.2.3.4 -j ACCEPT",
            "IPTABLE -A INPUT --modprobe /tmp/x -s 1.2.3.4 -j ACCEPT",
            "IPTABLE -w -A INPUT -s 1.2.3.4 -j ACCEPT",
            "IPTABLE -A INPUT -s 1.2.3.4 -j ACCEPT -m comment --comment x",
            "IPTABLE -A INPUT -m u32 --u32 0x0 -s 1.2.3.4 -j ACCEPT",
            "IPTABLE -A INPUT -s 1.2.3.4 -j 'ACC EPT'",
            "iptables ipv4 -A INPUT -s 1.2.3.4 -j ACCEPT",
        ] {
            assert!(check_restorable(bad.as_bytes(), Iptables::Any).is_err(), "{bad:?}");
        }
    }
}
