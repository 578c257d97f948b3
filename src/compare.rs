//! Semantic comparison of two snapshots: which rules the upgrade discarded and which managed
//! sysctl values it changed, with what to do about each.

use anyhow::{anyhow, Result};
use serde::Serialize;

use crate::config::Config;
use crate::firewall::Script;
use crate::rule::{self, Family, Rule};
use crate::snapshot::Snapshot;
use crate::sysctl::{self, Effective};

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
    /// Why, in words.
    pub reason: String,
    /// Index of the logical line in the old script.
    #[serde(skip)]
    pub index: usize,
}

/// What happens to one managed sysctl key.
#[derive(Debug, Clone, Serialize)]
pub struct SysctlFinding {
    /// Dotted key.
    pub key: String,
    pub before: Effective,
    pub after: Effective,
    /// The value `restore` writes, when it writes one.
    pub set_to: Option<String>,
    pub reason: String,
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
    /// Whether `restore` would change anything.
    pub fn needs_restore(&self) -> bool {
        self.discarded.iter().any(|d| d.restore) || self.sysctl.iter().any(|s| s.set_to.is_some())
    }
}

/// Parses a snapshot's firewall script, naming its file and line on error.
pub fn script_of<'a>(snap: &'a Snapshot, path: &str) -> Result<Option<Script<'a>>> {
    snap.content(path)
        .map(|bytes| Script::parse(bytes).map_err(|e| anyhow!("{}:{}: {}", snap.location(path), e.line, e.message)))
        .transpose()
}

/// The two sides of a comparison with their firewall scripts parsed once (in parallel: large
/// scripts are the bulk of the work).
pub struct Pair<'a> {
    pub before: &'a Snapshot,
    pub after: &'a Snapshot,
    pub old: Option<Script<'a>>,
    pub new: Option<Script<'a>>,
}

impl<'a> Pair<'a> {
    pub fn read(before: &'a Snapshot, after: &'a Snapshot, path: &str) -> Result<Self> {
        // A thread pays off only for large scripts.
        let large = [before, after]
            .iter()
            .all(|s| s.content(path).is_some_and(|c| c.len() > 256 * 1024));
        if !large {
            return Ok(Self {
                before,
                after,
                old: script_of(before, path)?,
                new: script_of(after, path)?,
            });
        }
        let (old, new) = std::thread::scope(|s| {
            let old = s.spawn(|| script_of(before, path));
            let new = script_of(after, path);
            (old.join().expect("parser thread"), new)
        });
        Ok(Self {
            before,
            after,
            old: old?,
            new: new?,
        })
    }
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

/// Compares `before` (pre-upgrade) with `after` (the system now).
pub fn compare(pair: &Pair, config: &Config) -> Result<Comparison> {
    let path = &config.firewall_script;
    let (before, after, old, new) = (pair.before, pair.after, &pair.old, &pair.new);
    let keep = keep_rules(config)?;
    let mut discarded = Vec::new();
    let new_index = new.as_ref().map(Script::index);
    if let Some(old) = &old {
        for (index, rule) in old.rules() {
            if new_index.as_ref().is_some_and(|n| n.covers(rule)) {
                continue;
            }
            let kept = keep.iter().any(|k| k.key().covers(rule) || rule.covers(k.key()));
            let (restore, reason) = if new.is_none() {
                (false, format!("the new version has no {path}"))
            } else if rule.is_custom_accept() {
                (true, "custom ACCEPT rule for a source address".to_string())
            } else if kept {
                (true, "listed in keep_rules".to_string())
            } else {
                (false, "vendor rule changed or dropped by the upgrade (not an ACCEPT with a source address, not in keep_rules)".to_string())
            };
            let full = old.rule(index).ok_or_else(|| {
                anyhow!(
                    "{}:{}: cannot read this rule again",
                    before.location(path),
                    old.lines[index].first()
                )
            })?;
            discarded.push(DiscardedRule {
                line: old.lines[index].first(),
                text: old.text(index),
                canonical: full.canonical().to_string(),
                family: full.family,
                restore,
                reason,
                index,
            });
        }
    }
    let before_sources = before.sysctl_sources();
    let after_sources = after.sysctl_sources();
    let sysctl = config
        .managed_sysctl
        .iter()
        .map(|key| {
            let b = sysctl::effective(before_sources.iter().copied(), key);
            let a = sysctl::effective(after_sources.iter().copied(), key);
            let custom = config.sysctl_values.get(key).cloned();
            sysctl_decision(key, b, a, custom)
        })
        .collect();
    Ok(Comparison {
        firewall_script: (old.is_some() || new.is_some()).then(|| path.clone()),
        discarded,
        sysctl,
    })
}

/// The value owed back for a managed key: its custom value (or, without one, its value before
/// the upgrade), but only when the system had that value before the upgrade.
pub fn owed_value(before: &str, custom: Option<&str>) -> Option<String> {
    let wanted = custom.unwrap_or(before);
    sysctl::same_value(before, wanted).then(|| wanted.to_string())
}

/// Decides about one key: restore the custom value only when the system had it before the
/// upgrade and has another value now.
fn sysctl_decision(key: &str, before: Effective, after: Effective, custom: Option<String>) -> SysctlFinding {
    let wanted = custom.clone().unwrap_or_else(|| before.value.clone());
    let where_after = match &after.source {
        Some((file, line)) => format!("{file}:{line}"),
        None => "kernel default".to_string(),
    };
    let (set_to, reason) = if owed_value(&before.value, custom.as_deref()).is_none() {
        (
            None,
            format!(
                "was {} before the upgrade, not the custom value {wanted}: left alone",
                before.value
            ),
        )
    } else if sysctl::same_value(&after.value, &wanted) {
        match after.source {
            None => (None, format!("already {wanted}: the new version's default covers it")),
            Some(_) => (None, format!("already {wanted} ({where_after}): kept by the upgrade")),
        }
    } else {
        (
            Some(wanted.clone()),
            format!(
                "the upgrade changed it to {} ({where_after}); set back to {wanted}",
                after.value
            ),
        )
    };
    SysctlFinding {
        key: sysctl::display_key(&sysctl::canonical_key(key)),
        before,
        after,
        set_to,
        reason,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn eff(v: &str, src: Option<(&str, usize)>) -> Effective {
        Effective {
            value: v.into(),
            source: src.map(|(f, l)| (f.to_string(), l)),
        }
    }

    #[test]
    fn sysctl_decisions() {
        let k = "net.ipv4.tcp_rfc1337";
        let zero = Some("0".to_string());
        let d = sysctl_decision(k, eff("0", Some(("/etc/sysctl.conf", 3))), eff("0", None), zero.clone());
        assert!(
            d.set_to.is_none() && d.reason.contains("default covers it"),
            "{}",
            d.reason
        );
        let d = sysctl_decision(
            k,
            eff("0", Some(("/etc/sysctl.conf", 3))),
            eff("1", Some(("/etc/sysctl.conf", 9))),
            zero.clone(),
        );
        assert_eq!(d.set_to.as_deref(), Some("0"));
        let d = sysctl_decision(k, eff("1", Some(("/etc/sysctl.conf", 3))), eff("0", None), zero.clone());
        assert!(d.set_to.is_none() && d.reason.contains("left alone"));
        let d = sysctl_decision(
            k,
            eff("0", Some(("/etc/sysctl.conf", 3))),
            eff("0", Some(("/etc/sysctl.conf", 3))),
            zero,
        );
        assert!(d.set_to.is_none() && d.reason.contains("kept by the upgrade"));
        let d = sysctl_decision(
            "vm.swappiness",
            eff("10", Some(("/etc/sysctl.conf", 1))),
            eff("60", Some(("/etc/sysctl.conf", 1))),
            None,
        );
        assert_eq!(d.set_to.as_deref(), Some("10"));
    }
}
