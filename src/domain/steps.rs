//! What a run did to (or found in) the running system, step by step: typed while the run works,
//! turned into text lines by one renderer for the report and the log, and into objects for the
//! JSON `live` array.

use std::collections::HashMap;
use std::hash::Hash;

use serde::Serializer;

use crate::domain::loaded::{Loaded, RuleState};

/// How the check of the loaded rules after a rollback came out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RollbackCheck {
    /// `iptables -S` matches the state before the restore.
    Same,
    Differs,
    /// `iptables -S` could not be read.
    Unavailable,
}

/// One step.
#[derive(Debug, Clone)]
pub enum Step {
    /// The rules to restore were loaded into empty tables by the root's `iptables-restore
    /// --test`, without touching the live firewall.
    RulesChecked {
        count: usize,
    },
    /// They could not be checked that way here.
    RulesNotChecked {
        why: String,
    },
    /// A dry run checked the new script with `bash -n`.
    SyntaxChecked,
    /// A dry run could not check the new script: no bash under the root.
    SyntaxNotChecked {
        root: String,
    },
    /// An earlier run stopped between writing files and verifying; this run finishes it.
    Resumed,
    /// `--no-restart`: the command that would load the restored rules.
    RestartSkipped {
        command: String,
    },
    /// The firewall restart ran: how it ended, and what it printed.
    Restarted {
        summary: String,
        output: Vec<String>,
    },
    /// One restored rule checked after the restart, in one family.
    Verified(Loaded),
    /// One rule `undo` took out, checked after the restart, in one family: gone as intended, or
    /// still loaded.
    Removed(Loaded),
    /// A step failed; the rollback follows.
    Failed {
        step: String,
    },
    RolledBackFile {
        path: String,
    },
    RollbackFileFailed {
        path: String,
        error: String,
    },
    /// A step the rollback took (its restart).
    Rollback(Box<Step>),
    SecondRestartFailed {
        step: String,
    },
    RollbackChecked(RollbackCheck),
    /// A running sysctl value was written.
    SysctlSet {
        key: String,
        was: String,
        now: String,
    },
    SysctlNotApplied {
        key: String,
        error: String,
    },
    /// The running value differs from what the files give.
    RunningDiffers {
        key: String,
        running: String,
        files: String,
    },
    /// A dry run: the running value a restore would set to the value the files hold.
    SysctlWouldSet {
        key: String,
        was: String,
        to: String,
    },
    /// From a snapshot's recorded runtime: a custom rule in the script and loaded, or not.
    CustomRule {
        rule: String,
        in_script: bool,
        loaded: Option<bool>,
    },
    /// From a snapshot's recorded runtime: a running sysctl value against the files.
    RecordedSysctl {
        key: String,
        files: String,
        running: String,
        differs: bool,
    },
}

impl Step {
    /// The step as report lines.
    pub fn lines(&self) -> Vec<String> {
        match self {
            Self::RulesChecked { count } => vec![format!(
                "iptables-restore --test: the {count} rule(s) to restore load (the live firewall was not touched)"
            )],
            Self::RulesNotChecked { why } => vec![format!("iptables-restore --test: not run ({why})")],
            Self::SyntaxChecked => vec!["bash -n: the new firewall script is valid".into()],
            Self::SyntaxNotChecked { root } => vec![format!("bash -n: not run (no bash under {root})")],
            Self::Resumed => vec!["resuming: an earlier run stopped before restarting and verifying".into()],
            Self::RestartSkipped { command } => vec![format!(
                "firewall restart: skipped (--no-restart); run `{command}` to load the restored rules"
            )],
            Self::Restarted { summary, output } => std::iter::once(format!("firewall restart: {summary}"))
                .chain(output.iter().map(|l| format!("  | {l}")))
                .collect(),
            Self::Removed(l) => vec![format!(
                "  {} {} {}",
                if l.state == RuleState::Missing { "removed" } else { l.state.word() },
                l.family,
                l.rule
            )],
            Self::Verified(l) => {
                let mut out = vec![format!("  {:7} {} {}", l.state.word(), l.family, l.rule)];
                if l.state == RuleState::Unknown {
                    out.push(format!("          {}", l.detail));
                }
                out
            }
            Self::Failed { step } => vec![format!("FAILED at {step}: rolling back")],
            Self::RolledBackFile { path } => vec![format!("rollback: {path} put back from its backup")],
            Self::RollbackFileFailed { path, error } => vec![format!("rollback: FAILED for {path}: {error}")],
            Self::Rollback(step) => step.lines().into_iter().map(|l| format!("rollback: {l}")).collect(),
            Self::SecondRestartFailed { step } => vec![format!(
                "rollback: the second restart failed too ({step}); check the firewall by hand"
            )],
            Self::RollbackChecked(check) => vec![match check {
                RollbackCheck::Same => {
                    "rollback: the previous rules are loaded again (iptables -S matches the state before)"
                }
                RollbackCheck::Differs => "rollback: WARNING: iptables -S differs from the state before the restore",
                RollbackCheck::Unavailable => "rollback: loaded rules not compared (iptables -S unavailable)",
            }
            .to_string()],
            Self::SysctlSet { key, was, now } => vec![format!("running {key}: {was} -> {now}")],
            Self::SysctlNotApplied { key, error } => {
                vec![format!("running {key}: not applied ({error}); run `sysctl -p`")]
            }
            Self::RunningDiffers { key, running, files } => vec![format!(
                "running {key}: {running}, the files say {files}; left alone: {files} is not the value kept from before the upgrade"
            )],
            Self::SysctlWouldSet { key, was, to } => {
                vec![format!("running {key}: {was}, would be set to {to} (the value the files hold)")]
            }
            Self::CustomRule {
                rule,
                in_script,
                loaded,
            } => vec![format!(
                "custom rule {rule}: {}, {}",
                in_script_word(*in_script),
                RuleState::recorded(*loaded).word()
            )],
            Self::RecordedSysctl {
                key,
                files,
                running,
                differs,
            } => vec![format!(
                "sysctl {key}: files {files}, running {running}{}",
                if *differs { " (differs from the files)" } else { "" }
            )],
        }
    }
}

/// Every step's lines, in order, every rule listed (for the log).
pub fn render(steps: &[Step]) -> Vec<String> {
    steps.iter().flat_map(Step::lines).collect()
}

/// `lines` with `indent`, at most `limit` of them (`None`: all), then how many were left out.
pub fn limited(indent: &str, lines: impl ExactSizeIterator<Item = String>, limit: Option<usize>) -> Vec<String> {
    let total = lines.len();
    let shown = limit.unwrap_or(total).min(total);
    let mut out: Vec<String> = lines.take(shown).map(|l| format!("{indent}{l}")).collect();
    if shown < total {
        out.push(format!(
            "{indent}... and {} more (-v lists all, --json has everything)",
            total - shown
        ));
    }
    out
}

/// Groups `items` by `key` in order of first appearance (one pass: each key is looked up in an
/// index, never searched for).
pub fn grouped<T, K: Hash + Eq + Copy>(items: impl IntoIterator<Item = T>, key: impl Fn(&T) -> K) -> Vec<(K, Vec<T>)> {
    let mut index: HashMap<K, usize> = HashMap::new();
    let mut groups: Vec<(K, Vec<T>)> = Vec::new();
    for item in items {
        let k = key(&item);
        let at = *index.entry(k).or_insert_with(|| {
            groups.push((k, Vec::new()));
            groups.len() - 1
        });
        groups[at].1.push(item);
    }
    groups
}

/// The word for whether a rule is in the script, as every report says it.
pub fn in_script_word(in_script: bool) -> &'static str {
    if in_script {
        "in script"
    } else {
        "NOT IN SCRIPT"
    }
}

/// A run of per-rule checks after a restart: counts by state, then the rules of each state.
fn render_verified(run: &[&Step], limit: Option<usize>, out: &mut Vec<String>) {
    let state = |s: &Step| match s {
        Step::Verified(l) => l.state,
        _ => RuleState::Unknown,
    };
    let count = |st| run.iter().filter(|s| state(s) == st).count();
    let mut head = format!("verify: {} check(s): {} loaded", run.len(), count(RuleState::Loaded));
    for st in [RuleState::Missing, RuleState::Unknown] {
        if count(st) > 0 {
            head.push_str(&format!(", {} {}", count(st), st.word()));
        }
    }
    out.push(head);
    for st in [RuleState::Missing, RuleState::Unknown, RuleState::Loaded] {
        let these: Vec<&Loaded> = run
            .iter()
            .filter_map(|s| match s {
                Step::Verified(l) if l.state == st => Some(l),
                _ => None,
            })
            .collect();
        if these.is_empty() {
            continue;
        }
        out.push(format!("  {} ({}):", st.word(), these.len()));
        let lines = these.iter().map(|l| match l.state {
            RuleState::Unknown => format!("{} {}: {}", l.family, l.rule, l.detail),
            _ => format!("{} {}", l.family, l.rule),
        });
        out.extend(limited("    ", lines, limit));
    }
}

/// A run of `undo`'s checks: how many rules are gone as intended, then any still loaded.
fn render_removed(run: &[&Step], limit: Option<usize>, out: &mut Vec<String>) {
    let loaded: Vec<&Loaded> = run
        .iter()
        .filter_map(|s| match s {
            Step::Removed(l) if l.state != RuleState::Missing => Some(l),
            _ => None,
        })
        .collect();
    let mut head = format!(
        "verify: {} check(s): {} removed as intended",
        run.len(),
        run.len() - loaded.len()
    );
    if !loaded.is_empty() {
        head.push_str(&format!(", {} STILL LOADED or unknown", loaded.len()));
    }
    out.push(head);
    let lines = loaded
        .iter()
        .map(|l| format!("{} {} {}: {}", l.state.word(), l.family, l.rule, l.detail));
    out.extend(limited("    ", lines, limit));
}

/// A run of recorded custom rules: how many, then the rules of each (script, loaded) state.
fn render_custom_rules(run: &[&Step], limit: Option<usize>, out: &mut Vec<String>) {
    out.push(format!(
        "custom rules of the old side, against the new side's script and recorded firewall: {}",
        run.len()
    ));
    let key = |s: &Step| match s {
        Step::CustomRule { in_script, loaded, .. } => (*in_script, *loaded),
        _ => (false, None),
    };
    for ((in_script, loaded), rules) in grouped(run.iter().copied(), |s| key(s)) {
        let loaded = RuleState::recorded(loaded);
        out.push(format!(
            "  {}, {} ({}):",
            in_script_word(in_script),
            loaded.word(),
            rules.len()
        ));
        let lines = rules.iter().map(|s| match s {
            Step::CustomRule { rule, .. } => rule.clone(),
            _ => String::new(),
        });
        out.extend(limited("    ", lines, limit));
    }
}

/// Every step's lines for a report: runs of per-rule steps (checks after a restart, recorded
/// custom rules) summarised by state, at most `limit` rules per state (`None`: all).
pub fn render_limited(steps: &[Step], limit: Option<usize>) -> Vec<String> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < steps.len() {
        let same = |s: &Step| std::mem::discriminant(s) == std::mem::discriminant(&steps[i]);
        let end = i + steps[i..].iter().take_while(|s| same(s)).count();
        let run: Vec<&Step> = steps[i..end].iter().collect();
        match steps[i] {
            Step::Verified(_) => render_verified(&run, limit, &mut out),
            Step::Removed(_) => render_removed(&run, limit, &mut out),
            Step::CustomRule { .. } => render_custom_rules(&run, limit, &mut out),
            _ => {
                out.extend(steps[i].lines());
                i += 1;
                continue;
            }
        }
        i = end;
    }
    out
}

impl Step {
    /// The step as a JSON object: `step` names it, its fields follow, `message` is the report's
    /// text for it.
    pub fn to_json(&self) -> serde_json::Value {
        use serde_json::json;
        let mut v = match self {
            Self::RulesChecked { count } => json!({ "step": "rules-checked", "count": count }),
            Self::RulesNotChecked { why } => json!({ "step": "rules-not-checked", "why": why }),
            Self::SyntaxChecked => json!({ "step": "syntax-checked" }),
            Self::SyntaxNotChecked { root } => json!({ "step": "syntax-not-checked", "root": root }),
            Self::Resumed => json!({ "step": "resumed" }),
            Self::RestartSkipped { command } => json!({ "step": "restart-skipped", "command": command }),
            Self::Restarted { summary, output } => {
                json!({ "step": "restarted", "summary": summary, "output": output })
            }
            Self::Removed(l) => json!({
                "step": "removed",
                "rule": l.rule,
                "family": l.family,
                "state": l.state.name(),
                "detail": l.detail,
            }),
            Self::Verified(l) => json!({
                "step": "verified",
                "rule": l.rule,
                "family": l.family,
                "state": l.state.name(),
                "detail": l.detail,
            }),
            Self::Failed { step } => json!({ "step": "failed", "at": step }),
            Self::RolledBackFile { path } => json!({ "step": "rolled-back-file", "path": path }),
            Self::RollbackFileFailed { path, error } => {
                json!({ "step": "rollback-file-failed", "path": path, "error": error })
            }
            Self::Rollback(step) => json!({ "step": "rollback", "of": step.to_json() }),
            Self::SecondRestartFailed { step } => json!({ "step": "second-restart-failed", "at": step }),
            Self::RollbackChecked(check) => json!({
                "step": "rollback-checked",
                "result": match check {
                    RollbackCheck::Same => "same",
                    RollbackCheck::Differs => "differs",
                    RollbackCheck::Unavailable => "unavailable",
                },
            }),
            Self::SysctlSet { key, was, now } => json!({ "step": "sysctl-set", "key": key, "was": was, "now": now }),
            Self::SysctlNotApplied { key, error } => {
                json!({ "step": "sysctl-not-applied", "key": key, "error": error })
            }
            Self::RunningDiffers { key, running, files } => {
                json!({ "step": "running-differs", "key": key, "running": running, "files": files })
            }
            Self::SysctlWouldSet { key, was, to } => {
                json!({ "step": "sysctl-would-set", "key": key, "was": was, "to": to })
            }
            Self::CustomRule {
                rule,
                in_script,
                loaded,
            } => json!({ "step": "custom-rule", "rule": rule, "in_script": in_script, "loaded": loaded }),
            Self::RecordedSysctl {
                key,
                files,
                running,
                differs,
            } => json!({
                "step": "recorded-sysctl",
                "key": key,
                "files": files,
                "running": running,
                "differs": differs,
            }),
        };
        v["message"] = json!(self.lines().join("\n"));
        v
    }
}

/// Serialises steps as the JSON `live` array of step objects.
pub fn serialize_steps<S: Serializer>(steps: &[Step], s: S) -> Result<S::Ok, S::Error> {
    s.collect_seq(steps.iter().map(Step::to_json))
}
