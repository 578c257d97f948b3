//! The restorable grammar: what the tool writes back, checked as the appliance's
//! `iptables-restore --test` and bash read it.

use super::*;

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

pub(super) const BUILTIN_TARGETS: [&str; 8] = ["ACCEPT", "DROP", "RETURN", "REJECT", "LOG", "QUEUE", "NFQUEUE", "MARK"];

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
pub(super) fn builtin_chains(table: &str) -> &'static [&'static str] {
    match table {
        "filter" | "security" => &["INPUT", "FORWARD", "OUTPUT"],
        "nat" => &["PREROUTING", "INPUT", "OUTPUT", "POSTROUTING"],
        "mangle" => &["PREROUTING", "INPUT", "FORWARD", "OUTPUT", "POSTROUTING"],
        "raw" => &["PREROUTING", "OUTPUT"],
        _ => &[],
    }
}

/// A word as `iptables-restore` reads it: double-quoted when it holds a blank or a quote.
pub(super) fn restore_word(w: &str) -> String {
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
    if body.ends_with(b"\r") {
        return Err(CRLF.into());
    }
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
    if first.contains('/') {
        return Err(
            "the command is a path: only IPTABLE, iptables or ip6tables (found through the trusted PATH) are restored"
                .into(),
        );
    }
    if first != "IPTABLE" && matches!(args.first(), Some(&"ipv4") | Some(&"ipv6")) {
        return Err("a family word after iptables".into());
    }
    // The model reads it in the restorable grammar, so what is written is what was compared.
    let rule = rule::parse_restorable(command_family(first).flatten(), args, iptables)?;
    if let rule::Source::List(n) = rule.key().source() {
        return Err(format!(
            "a source list (iptables loads it as {n} rules, which the tool does not verify one by one): write one line per source"
        ));
    }
    Ok(rule)
}
