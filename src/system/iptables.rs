//! Asking the root's own iptables what is loaded: one `iptables -S` dump per family and table,
//! read with the same rule model the scripts are read with.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::domain::firewall::{restore_test_input, RuleToTest};
use crate::domain::loaded::{Loaded, LoadedSet};
use crate::domain::rule::{Family, Rule};
use crate::root::Root;
use crate::system::process;

/// Where the tool looks for iptables and ip6tables under the root.
const IPTABLES: [&str; 2] = ["/usr/sbin/iptables", "/sbin/iptables"];
const IP6TABLES: [&str; 2] = ["/usr/sbin/ip6tables", "/sbin/ip6tables"];

fn program(root: &Root, family: Family) -> Result<String, String> {
    let (candidates, name) = match family {
        Family::V4 => (IPTABLES, "iptables"),
        Family::V6 => (IP6TABLES, "ip6tables"),
    };
    root.find(&candidates)
        .map(str::to_string)
        .ok_or_else(|| format!("no {name} under the root"))
}

/// `iptables -w [-t TABLE] -S` output, or why it could not be had.
fn dump_table(root: &Root, family: Family, table: &str) -> Result<String, String> {
    let prog = program(root, family)?;
    let mut args = vec!["-w".to_string()];
    if table != "filter" {
        args.extend(["-t".to_string(), table.to_string()]);
    }
    args.push("-S".into());
    match process::run(root, &prog, &args, Duration::from_secs(30)) {
        Ok(r) if r.ok() => Ok(r.output),
        Ok(r) => Err(format!("{}: {}", r.summary(), r.output.trim())),
        Err(e) => Err(format!("{e:#}")),
    }
}

/// The filter table's `iptables -S` (or ip6tables) output, when the program is under the root
/// and answers.
pub fn dump(root: &Root, family: Family) -> Option<String> {
    dump_table(root, family, "filter").ok()
}

/// Whether each rule is loaded, in every family it reaches: one dump per family and table,
/// compared by the rules' keys.
pub fn check_loaded(root: &Root, rules: &[Rule]) -> Vec<Loaded> {
    let mut sets: BTreeMap<(Family, String), Result<LoadedSet, String>> = BTreeMap::new();
    let mut out = Vec::new();
    for rule in rules {
        let table = rule.table();
        for &family in rule.families() {
            let set = sets
                .entry((family, table.to_string()))
                .or_insert_with(|| dump_table(root, family, table).map(|d| LoadedSet::parse(&d, family, table)));
            out.push(Loaded::of(rule, family, set.as_ref().map_err(String::as_str)));
        }
    }
    out
}

/// What the appliance's own `iptables-restore --test` says of rules to restore.
#[derive(Debug)]
pub enum RulesCheck {
    /// Every rule loads, in every family it reaches.
    Accepted,
    /// The check could not run here (no `iptables-restore` under the root, no privilege).
    NotRun(String),
    /// The rules iptables refuses, once per family that refuses them.
    Rejected(Vec<Refusal>),
}

/// A rule iptables refuses in one family, and iptables' own message.
#[derive(Debug)]
pub struct Refusal {
    /// Index of the rule's logical line in the old script.
    pub index: usize,
    pub family: Family,
    /// What `iptables-restore --test` said, without its "Error occurred at line" and "Try
    /// `iptables-restore -h'" lines (the line is the test input's, not the script's).
    pub message: String,
}

impl Refusal {
    /// The refusal as the report shows it: `iptables-restore --test (ipv4): MESSAGE`.
    pub fn why(&self) -> String {
        let program = match self.family {
            Family::V4 => "iptables-restore",
            Family::V6 => "ip6tables-restore",
        };
        format!("{program} --test ({}): {}", self.family, self.message)
    }
}

/// iptables' message on one line: the lines that say what is wrong, without the pointers to the
/// test input's line and to `--help`.
fn message_of(output: &str) -> String {
    let lines: Vec<&str> = output
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with("Error occurred at line") && !l.starts_with("Try `"))
        .collect();
    if lines.is_empty() {
        output.trim().to_string()
    } else {
        lines.join("; ")
    }
}

const RESTORE: [&str; 2] = ["/usr/sbin/iptables-restore", "/sbin/iptables-restore"];
const RESTORE6: [&str; 2] = ["/usr/sbin/ip6tables-restore", "/sbin/ip6tables-restore"];

fn restore_test(root: &Root, program: &str, input: &str) -> Result<(), String> {
    match process::run_with_input(
        root,
        program,
        &["--test".into()],
        Some(input.as_bytes()),
        Duration::from_secs(30),
    ) {
        Ok(r) if r.ok() => Ok(()),
        Ok(r) => Err(r.output.trim().to_string()),
        Err(e) => Err(format!("{e:#}")),
    }
}

/// Checks rules with the root's `iptables-restore --test` / `ip6tables-restore --test`, which
/// parse and build a ruleset without loading it: the live firewall is not touched.
pub fn check_rules(root: &Root, rules: &[RuleToTest]) -> RulesCheck {
    let mut rejected = Vec::new();
    for family in [Family::V4, Family::V6] {
        let these: Vec<&RuleToTest> = rules.iter().filter(|r| r.families.contains(&family)).collect();
        if these.is_empty() {
            continue;
        }
        let candidates = if family == Family::V4 { RESTORE } else { RESTORE6 };
        let Some(program) = root.find(&candidates) else {
            return RulesCheck::NotRun(format!(
                "no {} under {}",
                candidates[0].rsplit('/').next().unwrap_or_default(),
                root.dir().display()
            ));
        };
        // An empty table must pass, or the check cannot tell a bad rule from a bad setting.
        if let Err(why) = restore_test(root, program, "*filter\nCOMMIT\n") {
            return RulesCheck::NotRun(format!("{program} --test: {why}"));
        }
        if restore_test(root, program, &restore_test_input(&these)).is_ok() {
            continue;
        }
        for rule in these {
            if let Err(why) = restore_test(root, program, &restore_test_input(&[rule])) {
                rejected.push(Refusal {
                    index: rule.index,
                    family,
                    message: message_of(&why),
                });
            }
        }
    }
    if rejected.is_empty() {
        RulesCheck::Accepted
    } else {
        RulesCheck::Rejected(rejected)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refusal_keeps_what_iptables_says_on_one_line() {
        let output = "iptables-restore v1.8.9 (nf_tables): invalid port/service `keeper-proxy' specified\n\
                      Error occurred at line: 5\n\
                      Try `iptables-restore -h' or 'iptables-restore --help' for more information.\n";
        let refusal = Refusal {
            index: 22,
            family: Family::V4,
            message: message_of(output),
        };
        assert_eq!(
            refusal.why(),
            "iptables-restore --test (ipv4): iptables-restore v1.8.9 (nf_tables): invalid port/service `keeper-proxy' specified"
        );
        assert_eq!(
            message_of("ip6tables-restore v1.4.21: Can't use -o with INPUT\n\nError occurred at line: 2\n"),
            "ip6tables-restore v1.4.21: Can't use -o with INPUT"
        );
        assert_eq!(message_of("Killed\n"), "Killed");
    }
}
