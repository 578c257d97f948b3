//! The appliance firewall script (`/usr/iwss/iwsvafw.sh`): its `IPTABLE` lines as rules with the
//! canonical form iptables itself prints.

use std::borrow::Cow;
use std::collections::HashMap;
use std::fmt::Write as _;
use std::ops::Range;

use crate::domain::rule::{self, Family, Iptables, Rule, RuleKey};
use crate::domain::shell;
use crate::domain::version::Version;

mod liveness;
mod restorable;
use liveness::*;
pub use restorable::{check_restorable, restore_test_input, RuleToTest};

/// One logical line of the script, as bash reads it ([`shell::read`]); blank lines are left
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
    /// Heredoc text: bash does not run it as commands.
    pub data: bool,
    /// The article's anchor: a `# stateful` comment, or the INPUT rule accepting
    /// ESTABLISHED,RELATED traffic.
    pub stateful: bool,
    /// What the rule this line adds means, when the line is one `IPTABLE` / `iptables` /
    /// `ip6tables` `-A` or `-I` call (the full rule, with its text, comes from [`Script::rule`]).
    pub rule: Option<RuleKey>,
    /// Why the tool cannot read the call on this line, when it cannot: compared by its text,
    /// never restored.
    pub unknown: Option<Box<str>>,
    /// Why the call on this line does not run as the anchor does, when it does not: it is
    /// never restored, and a report says why.
    pub not_live: Option<Box<str>>,
    /// Where the line's call (or, without one, its first command or comment) runs.
    context: Option<Context>,
}

/// Where a command runs: the list holding it, and why it runs only sometimes there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Context {
    block: u32,
    guard: Option<&'static str>,
    /// Why it never runs: an `exit`, `return` or `exec` before it in its list.
    dead: Option<&'static str>,
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

    /// Whether the line holds a call (read or not).
    pub fn is_call(&self) -> bool {
        self.rule.is_some() || self.unknown.is_some()
    }
}

/// Where reading the script stopped, and why: nothing from there on is understood.
#[derive(Debug, Clone)]
pub struct Stopped {
    /// Physical line, 1-based.
    pub line: usize,
    pub why: String,
}

/// A parsed firewall script, borrowing the script's bytes.
#[derive(Debug, Clone)]
pub struct Script<'a> {
    pub bytes: &'a [u8],
    pub lines: Vec<Line>,
    /// The iptables whose reading decides what each call adds.
    pub iptables: Iptables,
    /// Where the reader stopped, when it did.
    pub stopped: Option<Stopped>,
    /// The anchor: the first stateful line (in the function `parse_anchored` names, when it does).
    anchor: Option<usize>,
    /// Why whether a call runs cannot be told at all, when it cannot (besides a stop).
    unknowable: Option<String>,
    /// The function holding the anchor (`Some(None)`: the top level; `None`: no anchor).
    pub anchor_function: Option<Option<Box<str>>>,
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

/// Whether a comment marks the anchor: after a command, its text starts with `stateful` (in any
/// case, after blanks); alone on its line, it is `stateful` and nothing else (a header comment
/// "Stateful packet filter ..." is no anchor).
fn is_stateful_comment(c: &[u8], alone: bool) -> bool {
    let text = String::from_utf8_lossy(c);
    let text = text.trim();
    if alone {
        return text.eq_ignore_ascii_case("stateful");
    }
    text.get(..8).is_some_and(|head| head.eq_ignore_ascii_case("stateful"))
}

/// What a call adds, given its words (command word first): its key, or why it cannot be read.
/// `Ok(None)`: a call that adds no rule.
fn read_call(words: &[&str], iptables: Iptables) -> Result<Option<RuleKey>, String> {
    let Some((family, args)) = words
        .split_first()
        .and_then(|(command, args)| Some((command_family(command)?, args)))
    else {
        return Ok(None);
    };
    if family.is_some() && matches!(args.first(), Some(&"ipv4") | Some(&"ipv6")) {
        return Err(format!("unexpected argument {:?}", args[0]));
    }
    Ok(rule::parse_args_as(family, args, iptables)?.map(|r| *r.key()))
}

/// The words bash passes to `call`, a line of its own: what [`shell::words`] reads from the line
/// alone ([`Script::rule`] and the restorable check read it so), from the program's reading.
fn call_words<'b>(
    bytes: &'b [u8],
    words: &[Range<usize>],
    call: &shell::reader::Command,
    commands: &[&shell::reader::Command],
) -> Result<Vec<Cow<'b, str>>, String> {
    let words = shell::unquote_all(bytes, words)?;
    if call.extras {
        return Err("a redirection or an assignment".into());
    }
    let inside = |c: &shell::reader::Command| {
        !std::ptr::eq(c, call) && call.span.start <= c.span.start && c.span.end <= call.span.end
    };
    if commands.iter().any(|c| inside(c)) {
        return Err("more than one command".into());
    }
    Ok(words)
}

/// The body of a line: its bytes without the final newline.
fn body_of<'b>(bytes: &'b [u8], line: &Line) -> &'b [u8] {
    let raw = &bytes[line.bytes()];
    raw.strip_suffix(b"\n").unwrap_or(raw)
}

/// The physical line of byte `at`, 1-based.
fn line_number(bytes: &[u8], at: usize) -> usize {
    1 + bytes[..at.min(bytes.len())].iter().filter(|&&b| b == b'\n').count()
}

impl<'a> Script<'a> {
    /// Reads a script as bash parses it and reads each call, a spelling only where iptables
    /// 1.4.21 and 1.8 read it alike. Never fails: a call the tool cannot read is kept as
    /// `unknown`, with the reason.
    pub fn parse(bytes: &'a [u8]) -> Self {
        Self::parse_as(bytes, Iptables::Any)
    }

    /// [`Script::parse`], each call read as `iptables` reads it.
    pub fn parse_as(bytes: &'a [u8], iptables: Iptables) -> Self {
        Self::parse_anchored(bytes, iptables, None)
    }

    /// [`Script::parse_as`], the anchor taken in function `function` (the old script's anchor
    /// function, for the new script): a stateful line elsewhere (a header comment, `stop()`) is
    /// not where restored rules go.
    pub fn parse_anchored(bytes: &'a [u8], iptables: Iptables, function: Option<Option<&str>>) -> Self {
        let program = shell::read(bytes);
        let mut script = Self::split(bytes, iptables, &program);
        script.read_commands(&program);
        script.anchor = script.lines.iter().position(|l| {
            l.stateful
                && function.is_none_or(|f| {
                    let block = l.context.map(|c| c.block as usize);
                    block.and_then(|b| program.blocks[b].function.as_deref()) == f
                })
        });
        let function = script.anchor_function(&program);
        script.anchor_function = function.map(|f| f.map(Box::from));
        script.unknowable = semantics_not_modelled(bytes, &program, function);
        script.judge_liveness(&program);
        script
    }

    /// The logical lines of the program, blank ones left out, with their physical numbers.
    fn split(bytes: &'a [u8], iptables: Iptables, program: &shell::Program) -> Self {
        let mut lines = Vec::with_capacity(program.lines.len());
        let (mut number, mut counted) = (1usize, 0usize);
        for l in &program.lines {
            let text = &bytes[l.bytes.clone()];
            number += bytes[counted..l.bytes.start].iter().filter(|&&b| b == b'\n').count();
            let inner = text.iter().filter(|&&b| b == b'\n').count();
            let last = number + inner.saturating_sub(usize::from(text.ends_with(b"\n")));
            counted = l.bytes.start;
            if text.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            lines.push(Line {
                first: number as u32,
                last: last as u32,
                start: l.bytes.start as u32,
                end: l.bytes.end as u32,
                data: l.data,
                stateful: false,
                rule: None,
                unknown: None,
                not_live: None,
                context: None,
            });
        }
        let stopped = program.stop.as_ref().map(|s| Stopped {
            line: line_number(bytes, s.at),
            why: s.why.clone(),
        });
        Self {
            bytes,
            lines,
            iptables,
            stopped,
            anchor: None,
            unknowable: None,
            anchor_function: None,
        }
    }

    /// The index of the line holding byte `at`.
    fn line_at(&self, at: usize) -> Option<usize> {
        let k = self.lines.partition_point(|l| (l.end as usize) <= at);
        (k < self.lines.len() && self.lines[k].start as usize <= at).then_some(k)
    }

    /// Reads the commands and comments of each line: its call (or why it cannot be read), the
    /// anchor, and where the line runs.
    fn read_commands(&mut self, program: &shell::Program) {
        let stop_from = program.stop.as_ref().map_or(usize::MAX, |s| s.from);
        for (span, block) in &program.comments {
            let Some(k) = self.line_at(span.start) else { continue };
            let line = &mut self.lines[k];
            let alone = self.bytes[line.start as usize..span.start]
                .iter()
                .all(u8::is_ascii_whitespace);
            if is_stateful_comment(&self.bytes[span.start + 1..span.end], alone) {
                line.stateful = true;
            }
            line.context.get_or_insert(Context {
                block: *block as u32,
                guard: None,
                dead: None,
            });
        }
        let mut on_line: Vec<(usize, usize)> = Vec::with_capacity(program.commands.len());
        for (c, command) in program.commands.iter().enumerate() {
            if let Some(k) = self.line_at(command.span.start) {
                on_line.push((k, c));
            }
        }
        on_line.sort_unstable();
        for group in on_line.chunk_by(|a, b| a.0 == b.0) {
            let k = group[0].0;
            let commands: Vec<&shell::reader::Command> = group.iter().map(|&(_, c)| &program.commands[c]).collect();
            self.read_line(k, program, &commands);
        }
        // Heredoc text that reads like a call: listed when the upgrade drops it, never restored.
        for line in self.lines.iter_mut().filter(|l| l.data) {
            let body = body_of(self.bytes, line);
            let text = body.trim_ascii_start();
            let word = &text[..text.iter().position(|&b| b == b' ' || b == b'\t').unwrap_or(text.len())];
            if std::str::from_utf8(word).is_ok_and(|w| command_family(w).is_some()) {
                let why: Box<str> = "string data (a heredoc body), not a command".into();
                (line.unknown, line.not_live) = (Some(why.clone()), Some(why));
            }
        }
        if let Some(stop) = &self.stopped {
            let why: Box<str> = format!("reading stopped at line {}: {}", stop.line, stop.why).into();
            for line in self.lines.iter_mut().filter(|l| l.end as usize > stop_from) {
                (line.rule, line.unknown, line.data) = (None, Some(why.clone()), false);
            }
        }
    }

    /// Reads line `k` from the commands starting on it (in no particular order).
    fn read_line(&mut self, k: usize, program: &shell::Program, commands: &[&shell::reader::Command]) {
        let bytes = self.bytes;
        let first_word = |c: &shell::reader::Command| {
            program
                .words(c)
                .first()
                .and_then(|w| shell::unquote(&bytes[w.clone()]).ok())
        };
        let calls: Vec<&shell::reader::Command> = commands
            .iter()
            .copied()
            .filter(|c| {
                first_word(c).is_some_and(|w| command_family(&w).is_some())
                    || indirect_call(bytes, program.words(c), c).is_some()
            })
            .collect();
        let indirect = calls.iter().find_map(|c| indirect_call(bytes, program.words(c), c));
        let first = calls
            .first()
            .copied()
            .or_else(|| commands.iter().copied().min_by_key(|c| c.span.start));
        let line = &mut self.lines[k];
        if let Some(c) = first {
            line.context = Some(Context {
                block: c.block as u32,
                guard: c.guard,
                dead: c.dead,
            });
        }
        if let Some(why) = indirect {
            line.unknown = Some(why.into());
            return;
        }
        let [call] = calls.as_slice() else {
            if !calls.is_empty() {
                line.unknown = Some("more than one call on the line".into());
            }
            return;
        };
        // The call's own substitutions are part of it; any other command shares its line.
        let others = commands
            .iter()
            .filter(|c| c.span.start < call.span.start || c.span.end > call.span.end);
        let body = body_of(bytes, line);
        let start = line.start as usize;
        // A command reaching past its line (an array assignment's lines) is not a line of its own.
        let (Some(before), Some(after)) = (body.get(..call.span.start - start), body.get(call.span.end - start..))
        else {
            line.unknown = Some("shares its line with other shell code".into());
            return;
        };
        let after = &after[after.iter().take_while(|&&b| b == b' ' || b == b'\t').count()..];
        if others.count() > 0
            || !before.iter().all(|&b| b == b' ' || b == b'\t')
            || !(after.is_empty() || after[0] == b'#')
        {
            line.unknown = Some("shares its line with other shell code".into());
            return;
        }
        if body.ends_with(b"\r") {
            line.unknown = Some(CRLF.into());
            return;
        }
        let read = call_words(bytes, program.words(call), call, commands)
            .and_then(|w| read_call(&w.iter().map(|w| w.as_ref()).collect::<Vec<_>>(), self.iptables));
        match read {
            Ok(key) => {
                line.stateful |= key.as_ref().is_some_and(RuleKey::is_stateful_accept);
                line.rule = key;
            }
            Err(why) => line.unknown = Some(why.into_boxed_str()),
        }
    }

    /// Marks each call that does not run as the anchor does: a call is live only when it is a
    /// plain command in the anchor's own list (and that only when the whole script was read).
    fn judge_liveness(&mut self, program: &shell::Program) {
        let anchor = self.stateful_line().and_then(|a| self.lines[a].context);
        let unknowable = match (&self.stopped, anchor) {
            (Some(s), _) => Some(format!(
                "the script could not be read to the end (line {}: {}), so whether it runs cannot be told",
                s.line, s.why
            )),
            (None, None) => Some(
                "the script has no stateful anchor, so whether it runs as the vendor's rules do cannot be told"
                    .to_string(),
            ),
            (None, Some(_)) => self
                .unknowable
                .as_ref()
                .map(|why| format!("{why}, so whether a call runs cannot be told")),
        };
        for line in self.lines.iter_mut().filter(|l| l.is_call() && !l.data) {
            let context = line.context.unwrap_or(Context {
                block: 0,
                guard: None,
                dead: None,
            });
            line.not_live = match (&unknowable, anchor) {
                (Some(why), _) => Some(why.clone().into_boxed_str()),
                (None, Some(anchor)) => not_live_reason(program, context, anchor).map(String::into_boxed_str),
                (None, None) => None,
            };
        }
    }

    /// Whether a call's liveness could not be judged (the script was not read to the end, or
    /// has no anchor): then no call is restored and each needs the admin.
    pub fn liveness_unknowable(&self) -> bool {
        self.stopped.is_some() || self.anchor.is_none() || self.unknowable.is_some()
    }

    /// Why whether a call runs cannot be told though the script was read and has an anchor
    /// (`set -e`, aliases, a function defined twice), when it cannot.
    pub fn unknowable_reason(&self) -> Option<&str> {
        self.unknowable.as_deref()
    }

    /// The function holding the anchor (`Some(None)`: the top level; `None`: no anchor).
    fn anchor_function<'p>(&self, program: &'p shell::Program) -> Option<Option<&'p str>> {
        let context = self.lines[self.anchor?].context?;
        Some(program.blocks[context.block as usize].function.as_deref())
    }

    /// Whether line `index` is a command in the anchor's own list that runs whenever the anchor
    /// does: a line written after it runs as the anchor does (unless the line continues).
    pub fn runs_as_anchor(&self, index: usize) -> bool {
        let anchor = self.stateful_line().and_then(|a| self.lines[a].context);
        let line = &self.lines[index];
        !line.data && line.context.is_some() && line.context == anchor && anchor.is_some_and(|a| a.guard.is_none())
    }

    /// Why the tool cannot read line `index`, when it cannot.
    pub fn why_unknown(&self, index: usize) -> Option<&str> {
        self.lines[index].unknown.as_deref()
    }

    /// A line's text with continuations joined and surrounding blanks trimmed, for reports and
    /// for comparing lines the tool cannot read.
    pub fn text(&self, index: usize) -> String {
        let body = String::from_utf8_lossy(body_of(self.bytes, &self.lines[index]));
        match body.contains("\\\n") {
            true => body.replace("\\\n", " ").trim().to_string(),
            false => body.trim().to_string(),
        }
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

    /// Whether line `k` counts as what the script does: data, or a call that runs as the
    /// anchor does (every call, when that cannot be told). A rule only in a function nobody
    /// calls is not kept by being there.
    pub fn counts(&self, k: usize) -> bool {
        let line = &self.lines[k];
        line.data || line.not_live.is_none() || self.liveness_unknowable()
    }

    /// An index of the rules that count ([`Script::counts`]) by canonical form, for matching in
    /// constant time.
    pub fn index(&self) -> RuleIndex {
        let mut reach: HashMap<u128, u8> = HashMap::new();
        for (_, r) in self.rules().filter(|(k, _)| self.counts(*k)) {
            *reach.entry(r.hash()).or_default() |= r.reach();
        }
        RuleIndex { reach }
    }

    /// Index of the first stateful anchor line.
    pub fn stateful_line(&self) -> Option<usize> {
        self.anchor
    }
}

/// Why a line ending in CR LF is not read: bash passes the CR on as part of the last word.
const CRLF: &str = "Windows line endings (CR LF): convert the file with dos2unix";

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
    fn a_call_reads_as_its_line_alone_reads() {
        // Every combination of word spellings and line shapes: the program's reading of a call
        // line (rule or reason) is what `shell::words` of the line alone gives.
        let firsts = [
            "IPTABLE ipv4",
            "iptables",
            "/sbin/ip6tables",
            "'IPTABLE' ipv4",
            "IPT\\ABLE ipv4",
        ];
        let middles = [
            "-A INPUT -s 192.0.2.1",
            "-A INPUT -s \"192.0.2.1\"",
            "-A INPUT -s $(echo 192.0.2.1)",
            "-A INPUT -s <(echo x)",
            "-A INPUT -s `x`",
            "-A 'IN'PUT -s 192.0.2.1 \\\n  -p tcp",
            "-A INPUT >/dev/null",
            "-A INPUT -s 192.0.2.[1]",
            "-A INPUT -s ~x",
            "-A INPUT -s \"$x\"",
            "-A INPUT -m comment --comment \"a b\"",
            "-A INPUT -m comment --comment $'a'",
        ];
        let lasts = [
            "-j ACCEPT",
            "-j ACCEPT # c",
            "-j ACCEPT #c\r",
            "-j ACCEPT\r",
            "-j ACCEPT ;",
        ];
        for first in firsts {
            for middle in middles {
                for last in lasts {
                    let line = format!("{first} {middle} {last}");
                    let text = format!("# stateful\n{line}\n");
                    let s = Script::parse(text.as_bytes());
                    let alone = match line.ends_with('\r') {
                        true => Err(CRLF.to_string()),
                        false => shell::words(line.as_bytes()).and_then(|w| read_call(&w.strs(), Iptables::Any)),
                    };
                    let l = &s.lines[1];
                    if l.unknown.as_deref() == Some("shares its line with other shell code") {
                        assert!(alone.is_err(), "{line}");
                        continue;
                    }
                    let program = l.unknown.as_deref().map_or(Ok(l.rule), |u| Err(u.to_string()));
                    assert_eq!(program, alone, "{line}");
                }
            }
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
        assert!(s.lines[1].rule.is_none());
        assert!(s
            .why_unknown(1)
            .unwrap()
            .starts_with("reading stopped at line 2: an unterminated single quote"));
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
