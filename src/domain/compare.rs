//! Semantic comparison of two snapshots: which rules the upgrade discarded and which managed
//! sysctl values it changed, with what to do about each.

use std::borrow::Cow;
use std::collections::HashSet;
use std::ops::Range;

use anyhow::{anyhow, Result};
use serde::Serialize;

use crate::domain::config::Config;
use crate::domain::firewall::{self, RuleIndex, Script};
use crate::domain::loaded::LoadedSet;
use crate::domain::rule::{self, Family, Rule};
use crate::domain::snapshot::Snapshot;
use crate::domain::steps::Step;
use crate::domain::sysctl::{self, SysctlFinding};
use crate::domain::threads;

/// A rule the old script had and the new one lacks in every spelling.
#[derive(Debug, Clone, Serialize)]
pub struct DiscardedRule {
    /// Line in the old script (first physical line).
    pub line: usize,
    /// The line as written.
    pub text: String,
    /// Canonical spelling.
    pub canonical: String,
    pub family: Option<Family>,
    /// Whether `restore` puts it back.
    pub restore: bool,
    /// Not restored, but the admin should look: a line the tool cannot read, or a custom rule
    /// the restorable grammar refuses.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub attention: bool,
    /// Why, in words (the group's reason, then this rule's detail when it has one). Most are
    /// one of a few fixed texts, shared rather than copied per rule.
    pub reason: Cow<'static, str>,
    /// The reason shared by every rule of its group, without this rule's detail: what the
    /// text report groups by.
    #[serde(skip)]
    pub group: Cow<'static, str>,
    /// This rule's own part of the reason (what iptables or the grammar said of it).
    #[serde(skip)]
    pub detail: Option<String>,
    /// Index of the logical line in the old script.
    #[serde(skip)]
    pub index: usize,
    /// The hash of the exact bytes the restorable grammar accepted, when it did (only
    /// [`compare`] sets it): the plan writes a line only when its bytes are the ones checked.
    #[serde(skip)]
    checked: Option<u128>,
}

impl DiscardedRule {
    /// Whether `raw` are the bytes the restorable grammar accepted for this rule.
    pub fn checked_as(&self, raw: &[u8]) -> bool {
        self.checked == Some(xxhash_rust::xxh3::xxh3_128(raw))
    }
}

/// The result of comparing an old snapshot with a new one.
#[derive(Debug, Clone, Serialize)]
pub struct Comparison {
    /// The firewall script path both sides were read from, when either has one.
    pub firewall_script: Option<String>,
    pub discarded: Vec<DiscardedRule>,
    pub sysctl: Vec<SysctlFinding>,
}

impl Comparison {
    /// Discarded rules by decision: (to restore, skipped, refused).
    pub fn counts(&self) -> (usize, usize, usize) {
        let restore = self.discarded.iter().filter(|d| d.restore).count();
        let refused = self.discarded.iter().filter(|d| d.attention).count();
        (restore, self.discarded.len() - restore - refused, refused)
    }

    /// The counts as the text reports say them: `2 to restore, 1 skipped[, 3 REFUSED]`.
    pub fn counts_text(&self) -> String {
        let (restore, skipped, refused) = self.counts();
        let mut cells = vec![format!("{restore} to restore"), format!("{skipped} skipped")];
        if refused > 0 {
            cells.push(format!("{refused} REFUSED"));
        }
        cells.join(", ")
    }
    /// Whether some discarded line needs the admin: not restored, and not a vendor rule.
    pub fn needs_attention(&self) -> bool {
        self.discarded.iter().any(|d| d.attention)
    }

    /// Whether `restore` would change anything.
    pub fn needs_restore(&self) -> bool {
        self.discarded.iter().any(|d| d.restore) || self.sysctl.iter().any(|s| s.set_to.is_some())
    }
}

/// Parses a snapshot's firewall script, naming its file and line on error.
pub fn script_of<'a>(snap: &'a Snapshot, path: &str) -> Result<Option<Script<'a>>> {
    snap.content(path).map(|bytes| Ok(Script::parse(bytes))).transpose()
}

/// The two sides of a comparison with their firewall scripts parsed once, together
/// ([`Script::parse_pair`]: large scripts are the bulk of the work).
pub struct Pair<'a> {
    pub before: &'a Snapshot,
    pub after: &'a Snapshot,
    pub old: Option<Script<'a>>,
    pub new: Option<Script<'a>>,
}

impl<'a> Pair<'a> {
    pub fn read(before: &'a Snapshot, after: &'a Snapshot, path: &str) -> Result<Self> {
        let (old, new) = match (before.content(path), after.content(path)) {
            (Some(old), Some(new)) => {
                let (old, new) = Script::parse_pair(old, new);
                (Some(old), Some(new))
            }
            (old, new) => (old.map(Script::parse), new.map(Script::parse)),
        };
        Ok(Self {
            before,
            after,
            old,
            new,
        })
    }
}

/// A line of the old script the new one lacks, as found by [`compare`]'s scan: one it compares
/// by its text, or a rule with its reason, its text and, for one to restore, what the
/// restorable grammar says of it.
enum Lacking {
    Text(usize),
    Rule(usize, Cow<'static, str>, String, Option<Result<Rule, String>>),
}

/// The longest line a report shows whole; a longer one (a line the tool cannot read can be
/// megabytes of continuations) is cut, saying how much is left out.
const SHOWN_BYTES: usize = 4096;

fn shortened(text: String) -> String {
    if text.len() <= SHOWN_BYTES {
        return text;
    }
    let cut = (0..=SHOWN_BYTES).rev().find(|&i| text.is_char_boundary(i)).unwrap_or(0);
    format!("{}... ({} more bytes)", &text[..cut], text.len() - cut)
}

/// Rules from the configuration's `keep_rules`, parsed once.
fn keep_rules(config: &Config) -> Result<Vec<Rule>> {
    config
        .keep_rules
        .iter()
        .map(|text| {
            rule::parse_call(text, None)
                .map_err(|e| anyhow!("keep_rules: {text:?}: {e}"))?
                .ok_or_else(|| anyhow!("keep_rules: {text:?} adds no rule (use -A CHAIN ...)"))
        })
        .collect()
}

/// Compares `before` (pre-upgrade) with `after` (the system now): the firewall script and the
/// sysctl files apart (side by side for a large script: they share nothing).
pub fn compare(pair: &Pair, config: &Config) -> Result<Comparison> {
    let large = pair
        .old
        .as_ref()
        .is_some_and(|o| o.lines.len() >= threads::PARALLEL_LINES);
    let (sysctl, discarded) = threads::beside(
        large,
        || sysctl_findings(pair.before, pair.after, config),
        || discarded_rules(pair, config),
    );
    Ok(Comparison {
        firewall_script: (pair.old.is_some() || pair.new.is_some()).then(|| config.firewall_script.clone()),
        discarded: discarded?,
        sysctl,
    })
}

/// The rules and lines of the old firewall script the new one lacks, in line order.
fn discarded_rules(pair: &Pair, config: &Config) -> Result<Vec<DiscardedRule>> {
    let path = &config.firewall_script;
    let (before, old, new) = (pair.before, &pair.old, &pair.new);
    let keep = keep_rules(config)?;
    let mut discarded = Vec::new();
    // The new script's rules by meaning, for "does the new side still have it?" (freed when the
    // comparison is made: what it found is in the result).
    let new_index: Option<RuleIndex> = new.as_ref().map(Script::index);
    // Lines the tool cannot read are matched by their text (indexed only when there are some).
    let any_unknown = old.as_ref().is_some_and(|o| o.lines.iter().any(|l| l.unknown));
    let text_key = |script: &Script, k: usize| xxhash_rust::xxh3::xxh3_128(script.text(k).as_bytes());
    let new_texts: HashSet<u128> = new
        .as_ref()
        .filter(|_| any_unknown)
        .map(|n| {
            (0..n.lines.len())
                .filter(|&k| !n.lines[k].data)
                .map(|k| text_key(n, k))
                .collect()
        })
        .unwrap_or_default();
    if let Some(old) = &old {
        // What the new script lacks, line by line: found in parts on several threads for a
        // large script (each line's answer depends on it alone), the rules to restore read
        // again by the restorable grammar there too (its answer gives the canonical text);
        // the report's entries are then made in line order.
        let scan = |lines: Range<usize>| {
            let mut lacking = Vec::new();
            for index in lines {
                let line = &old.lines[index];
                if old.why_unknown(index).is_some() {
                    if !new_texts.contains(&text_key(old, index)) {
                        lacking.push(Lacking::Text(index));
                    }
                    continue;
                }
                let Some(rule) = &line.rule else { continue };
                if new_index.as_ref().is_some_and(|n| n.covers(rule)) {
                    continue;
                }
                let kept = keep.iter().any(|k| k.key().covers(rule) || rule.covers(k.key()));
                let (restore, reason): (bool, Cow<str>) = if new.is_none() {
                    (false, format!("the new version has no {path}").into())
                } else if rule.is_custom_accept() {
                    (true, "custom ACCEPT rule for a source address".into())
                } else if kept {
                    (true, "listed in keep_rules".into())
                } else {
                    (false, "vendor rule changed or dropped by the upgrade (not an INPUT ACCEPT from a literal source, not in keep_rules)".into())
                };
                let check = restore.then(|| firewall::check_restorable(&old.bytes[line.bytes()]));
                lacking.push(Lacking::Rule(index, reason, old.text(index), check));
            }
            lacking
        };
        for lacking in threads::in_parts(old.lines.len(), scan).into_iter().flatten() {
            let (index, mut reason, text, check) = match lacking {
                Lacking::Rule(index, reason, text, check) => (index, reason, text, check),
                Lacking::Text(index) => {
                    let why = old.why_unknown(index).unwrap_or_default();
                    let text = shortened(old.text(index));
                    discarded.push(DiscardedRule {
                        line: old.lines[index].first(),
                        canonical: text.clone(),
                        text,
                        family: None,
                        restore: false,
                        attention: true,
                        reason: format!("not understood ({why}): compared by its text, not restored").into(),
                        group: "not understood: compared by its text, not restored".into(),
                        detail: Some(why.to_string()),
                        index,
                        checked: None,
                    });
                    continue;
                }
            };
            let line = &old.lines[index];
            let mut restore = check.is_some();
            let mut attention = false;
            let mut group = reason.clone();
            let mut detail = None;
            let (mut checked, mut checked_hash) = (None, None);
            match check {
                Some(Ok(rule)) => {
                    (checked, checked_hash) = (Some(rule), Some(xxhash_rust::xxh3::xxh3_128(&old.bytes[line.bytes()])))
                }
                Some(Err(why)) => {
                    (restore, attention) = (false, true);
                    group = format!("{reason}, but refused; not restored").into();
                    reason = format!("{reason}, but refused: {why}; not restored").into();
                    detail = Some(why);
                }
                None => {}
            }
            let full = checked.or_else(|| old.rule(index)).ok_or_else(|| {
                anyhow!(
                    "{}:{}: cannot read this rule again",
                    before.location(path),
                    line.first()
                )
            })?;
            discarded.push(DiscardedRule {
                line: line.first(),
                text,
                family: full.family,
                canonical: full.into_canonical(),
                restore,
                attention,
                reason,
                group,
                detail,
                index,
                checked: checked_hash,
            });
        }
    }
    Ok(discarded)
}

/// What each managed sysctl key is before, after and at boot, and what to do about it.
fn sysctl_findings(before: &Snapshot, after: &Snapshot, config: &Config) -> Vec<SysctlFinding> {
    let before_sources = before.sysctl_sources();
    let after_sources = after.sysctl_sources();
    let boot_sources = after.sysctl_boot_sources();
    config
        .managed_sysctl
        .iter()
        .map(|key| {
            let b = sysctl::effective(before_sources.iter().copied(), key);
            let a = sysctl::effective(after_sources.iter().copied(), key);
            let boot = sysctl::effective_at_boot(boot_sources.iter().copied(), key);
            sysctl::decide(key, b, a, boot, config.sysctl_values.get(key).map(String::as_str))
        })
        .collect()
}

/// File state and recorded runtime state side by side: for each custom rule of the old side,
/// whether the new side's script has it and whether the new side's recorded runtime had it
/// loaded; and each recorded running sysctl value against the files.
/// `cmp` is the comparison of the same pair: the rules it found discarded are the ones the new
/// script lacks, with their text.
pub fn recorded_runtime(pair: &Pair, cmp: &Comparison) -> Vec<Step> {
    let new = pair.after;
    let Some(runtime) = &new.manifest.runtime else {
        return Vec::new();
    };
    let Some(old_script) = &pair.old else {
        return Vec::new();
    };
    let set = |text: &Option<String>, family| text.as_deref().map(|t| LoadedSet::parse(t, family, "filter"));
    let v4 = set(&runtime.iptables, Family::V4);
    let v6 = set(&runtime.ip6tables, Family::V6);
    // Canonical texts the comparison has for the rules it found discarded, by old line index
    // (the others are read again; a line the tool cannot read is never a rule). A rule of the
    // old script is discarded exactly when the new script does not have it.
    let known: rustc_hash::FxHashMap<usize, &str> =
        cmp.discarded.iter().map(|d| (d.index, d.canonical.as_str())).collect();
    let mut steps = Vec::new();
    for (i, r) in old_script.rules().filter(|(_, r)| r.is_custom_accept()) {
        let in_script = !known.contains_key(&i);
        let loaded: Option<bool> = r
            .families()
            .iter()
            .map(|f| {
                let set = if *f == Family::V4 { &v4 } else { &v6 };
                set.as_ref().map(|loaded| loaded.contains(r))
            })
            .try_fold(true, |acc, x| x.map(|x| acc && x));
        let rule = match known.get(&i) {
            Some(text) => text.to_string(),
            None => old_script
                .rule(i)
                .map(|r| r.canonical().to_string())
                .unwrap_or_default(),
        };
        steps.push(Step::CustomRule {
            rule,
            in_script,
            loaded,
        });
    }
    let sources = new.sysctl_sources();
    for (key, value) in &runtime.sysctl {
        let files = sysctl::effective(sources.iter().copied(), key);
        steps.push(Step::RecordedSysctl {
            key: key.clone(),
            differs: sysctl::running_differs(value, &files),
            files: files.shown(),
            running: value.clone(),
        });
    }
    steps
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_lines_are_shown_cut_at_a_character_boundary() {
        assert_eq!(shortened("short".into()), "short");
        let long = format!("{}é{}", "a".repeat(SHOWN_BYTES - 1), "b".repeat(10));
        let shown = shortened(long.clone());
        assert_eq!(shown, format!("{}... (12 more bytes)", "a".repeat(SHOWN_BYTES - 1)));
        assert!(shortened("x".repeat(1 << 20)).len() < SHOWN_BYTES + 32);
    }
}
