//! The appliance firewall script (`/usr/iwss/iwsvafw.sh`): its `IPTABLE` lines as rules with the
//! canonical form iptables itself prints.

use rustc_hash::FxHashMap as HashMap;
use std::borrow::Cow;
use std::ops::Range;

use crate::domain::rule::{self, Rule, RuleKey};
use crate::domain::version::Version;

/// One logical line of the script: physical lines joined at `\` continuations.
#[derive(Debug, Clone)]
pub struct Line {
    /// First and last physical line numbers, 1-based (u32 keeps large scripts small in memory;
    /// files are bounded far below 4 GiB).
    first: u32,
    last: u32,
    /// Byte range of the physical lines, newline of the last one included.
    start: u32,
    end: u32,
    /// Nothing but blanks.
    pub blank: bool,
    /// The article's anchor: a `# stateful` comment, or the INPUT rule accepting
    /// ESTABLISHED,RELATED traffic.
    pub stateful: bool,
    /// What the rule this line adds means, when it is an `IPTABLE -A` / `-I` line (the full rule,
    /// with its text, comes from [`Script::rule`]).
    pub rule: Option<RuleKey>,
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
}

/// An `IPTABLE` line the tool cannot read.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("line {line}: {message}")]
pub struct ScriptError {
    pub line: usize,
    pub message: String,
}

/// Ends a physical line with an unescaped backslash (a continuation)?
fn continues(line: &[u8]) -> bool {
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let slashes = line.iter().rev().take_while(|&&b| b == b'\\').count();
    slashes % 2 == 1
}

/// Joins a logical line's physical lines (continuations become a blank); borrows a plain line.
fn join_text(raw: &[u8]) -> Cow<'_, str> {
    if !raw.contains(&b'\n') {
        return String::from_utf8_lossy(raw.strip_suffix(b"\r").unwrap_or(raw));
    }
    let mut text = String::new();
    let mut parts = raw.split(|&b| b == b'\n').peekable();
    while let Some(part) = parts.next() {
        let part = part.strip_suffix(b"\r").unwrap_or(part);
        if parts.peek().is_some() && continues(part) {
            text.push_str(&String::from_utf8_lossy(&part[..part.len() - 1]));
            text.push(' ');
        } else {
            text.push_str(&String::from_utf8_lossy(part));
        }
    }
    Cow::Owned(text)
}

/// Whether a line carries the `# stateful` comment.
fn has_stateful_comment(text: &str) -> bool {
    text.find('#').is_some_and(|hash| {
        text[hash + 1..]
            .trim_start()
            .to_ascii_lowercase()
            .starts_with("stateful")
    })
}

impl<'a> Script<'a> {
    /// Splits a script into logical lines and parses each `IPTABLE` call.
    pub fn parse(bytes: &'a [u8]) -> Result<Self, ScriptError> {
        let mut lines = Vec::with_capacity(bytes.iter().filter(|&&b| b == b'\n').count() + 1);
        let mut canonical = String::new();
        let mut offset = 0;
        let mut physical = 0;
        while offset < bytes.len() {
            let start = offset;
            let first = physical + 1;
            loop {
                let end = bytes[offset..]
                    .iter()
                    .position(|&b| b == b'\n')
                    .map_or(bytes.len(), |p| offset + p);
                let raw = &bytes[offset..end];
                physical += 1;
                offset = (end + 1).min(bytes.len());
                if !(continues(raw) && offset < bytes.len()) {
                    break;
                }
            }
            let raw = &bytes[start..offset];
            let body = raw.strip_suffix(b"\n").unwrap_or(raw);
            let blank = body.iter().all(u8::is_ascii_whitespace);
            let (rule, stateful) = if blank {
                (None, false)
            } else {
                let text = join_text(body);
                let rule = parse_call(&text, &mut canonical).map_err(|message| ScriptError { line: first, message })?;
                let stateful = has_stateful_comment(&text) || rule.as_ref().is_some_and(RuleKey::is_stateful_accept);
                (rule, stateful)
            };
            lines.push(Line {
                first: first as u32,
                last: physical as u32,
                start: start as u32,
                end: offset as u32,
                blank,
                stateful,
                rule,
            });
        }
        Ok(Self { bytes, lines })
    }

    /// A line's text with continuations joined and surrounding blanks trimmed.
    pub fn text(&self, index: usize) -> String {
        let raw = &self.bytes[self.lines[index].bytes()];
        join_text(raw.strip_suffix(b"\n").unwrap_or(raw)).trim().to_string()
    }

    /// The rule line `index` adds, with its canonical text (parsed again: only the few rules a
    /// report shows need their text).
    pub fn rule(&self, index: usize) -> Option<Rule> {
        self.lines[index].rule?;
        // Exactly the text and the steps `parse` used, so the result matches the line's key.
        let raw = &self.bytes[self.lines[index].bytes()];
        let text = join_text(raw.strip_suffix(b"\n").unwrap_or(raw));
        let rest = call_arguments(&text)?;
        rule::parse_call(rest, None).ok().flatten()
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
        let mut reach: HashMap<u128, u8> = HashMap::with_capacity_and_hasher(self.lines.len(), Default::default());
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

/// Parses the logical line of an `IPTABLE` call into a rule. Lines that are not calls (the
/// function definition, other commands, comments) give `None`; so do `IPTABLE` calls that add no
/// rule (`-N`, `-P`, `-F` ...).
fn parse_call(text: &str, canonical: &mut String) -> Result<Option<RuleKey>, String> {
    let Some(rest) = call_arguments(text) else {
        return Ok(None);
    };
    rule::parse_call_key(rest, None, canonical)
        .map(|r| r.map(|(_, key)| key))
        .map_err(|e| format!("IPTABLE line: {e}"))
}

/// The arguments of an `IPTABLE` call, or `None` when the line is not one.
fn call_arguments(text: &str) -> Option<&str> {
    let rest = text.trim_start().strip_prefix("IPTABLE")?;
    (rest.is_empty() || rest.starts_with([' ', '\t'])).then_some(rest)
}

/// Checks that a line to be written back is a plain `IPTABLE` call: words of safe characters,
/// optionally quoted, and an optional trailing comment. Command substitution, backticks, `;`, `|`,
/// `&`, redirections and stray newlines are refused. Returns why a line is refused.
pub fn check_restorable(raw: &[u8]) -> Result<(), String> {
    let body = raw.strip_suffix(b"\n").unwrap_or(raw);
    let mut i = 0;
    let n = body.len();
    let skip_blanks = |i: &mut usize| {
        while *i < n {
            match body[*i] {
                b' ' | b'\t' | b'\r' => *i += 1,
                // A continuation: backslash, optional CR, newline.
                b'\\' if body[*i + 1..].starts_with(b"\n") => *i += 2,
                b'\\' if body[*i + 1..].starts_with(b"\r\n") => *i += 3,
                _ => break,
            }
        }
    };
    skip_blanks(&mut i);
    if !body[i..].starts_with(b"IPTABLE") {
        return Err("does not start with IPTABLE".into());
    }
    i += b"IPTABLE".len();
    let mut words = 0;
    loop {
        let before = i;
        skip_blanks(&mut i);
        if i >= n {
            break;
        }
        if i == before {
            return Err(format!("unexpected {:?}", char::from(body[i])));
        }
        if body[i] == b'#' {
            // A comment is inert to the shell; only a newline would end it early.
            if body[i..].contains(&b'\n') || body.ends_with(b"\\") {
                return Err("comment spans lines".into());
            }
            break;
        }
        let quote = match body[i] {
            q @ (b'"' | b'\'') => {
                i += 1;
                Some(q)
            }
            _ => None,
        };
        let start = i;
        while i < n {
            let b = body[i];
            let safe = b.is_ascii_alphanumeric() || b"_.:/,!=@%+-".contains(&b);
            match quote {
                Some(q) if b == q => break,
                Some(_) if safe || b == b' ' => i += 1,
                None if safe => i += 1,
                _ => break,
            }
        }
        if let Some(q) = quote {
            if i >= n || body[i] != q {
                let bad = body
                    .get(i)
                    .map_or("end of line".to_string(), |&b| format!("{:?}", char::from(b)));
                return Err(format!("{bad} inside quotes"));
            }
            i += 1;
        } else if i == start {
            return Err(format!("forbidden character {:?}", char::from(body[i])));
        }
        if i < n && !matches!(body[i], b' ' | b'\t' | b'\r' | b'\\') {
            return Err(format!("forbidden character {:?}", char::from(body[i])));
        }
        words += 1;
    }
    if words < 2 {
        return Err("IPTABLE call without arguments".into());
    }
    Ok(())
}

/// The firewall restart the article gives for a version: `/usr/iwss/iwsvafw.sh restart` on IWSVA
/// 6.5 SP3 before SP3 Patch 1 (build 3312), `/etc/init.d/iptables restart` otherwise.
pub fn restart_command(version: &Version, firewall_script: &str) -> (String, Vec<String>) {
    if version.is_iwsva_sp3_before_patch1() {
        (firewall_script.to_string(), vec!["restart".into()])
    } else {
        ("/etc/init.d/iptables".to_string(), vec!["restart".into()])
    }
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
    fn parses_the_article_excerpt() {
        let s = Script::parse(EXCERPT.as_bytes()).unwrap();
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
        let s = Script::parse(b"x=1\nIPTABLE ipv4 -A INPUT \\\n  -p tcp \\\r\n  -s 10.0.0.0/8 -j ACCEPT\nend").unwrap();
        assert_eq!(s.lines.len(), 3);
        assert_eq!((s.lines[1].first(), s.lines[1].last()), (2, 4));
        assert_eq!(
            s.rule(1).unwrap().canonical(),
            "-A INPUT -s 10.0.0.0/8 -p tcp -j ACCEPT"
        );
        assert_eq!(s.lines[2].first(), 5);
    }

    #[test]
    fn every_rule_line_parses_again_with_the_same_key() {
        // Found by fuzzing: text() trims Unicode blanks (here a vertical tab) that the parse kept.
        let s = Script::parse(b"IPTABLE -A INPUT -s 1.2.3.4 -j ACCEPT\x0b\nIPTABLE -A INPUT -j \xff\x00\n").unwrap();
        for (i, key) in s.rules() {
            assert_eq!(s.rule(i).map(|r| *r.key()), Some(*key), "line {i}");
        }
    }

    #[test]
    fn function_definitions_and_other_words_are_not_rules() {
        let s = Script::parse(b"IPTABLE() {\n  iptables \"$@\"\n}\nIPTABLES_X -A INPUT -j ACCEPT\n").unwrap();
        assert_eq!(s.text(1), "iptables \"$@\"");
        assert!(s.rules().next().is_none());
    }

    #[test]
    fn unbalanced_quotes_name_the_line() {
        let e = Script::parse(b"a\nIPTABLE -A INPUT -m comment --comment 'x -j ACCEPT\n").unwrap_err();
        assert_eq!(e.line, 2);
    }

    #[test]
    fn strict_grammar_accepts_plain_calls() {
        for ok in [
            "IPTABLE ipv4 -A INPUT -p tcp -s 192.0.2.1 -j ACCEPT\n",
            "  IPTABLE -A INPUT -s 10.1.0.0/16 -m comment --comment \"proxy farm\" -j ACCEPT # keep\r\n",
            "IPTABLE ipv4 -A INPUT \\\n  -s 192.0.2.1 -j ACCEPT",
            "IPTABLE -A INPUT -s 192.0.2.1 -j ACCEPT # \u{3053}\u{308c}`|;",
        ] {
            assert_eq!(check_restorable(ok.as_bytes()), Ok(()), "{ok:?}");
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
        ] {
            assert!(check_restorable(bad.as_bytes()).is_err(), "{bad:?}");
        }
    }
}
