//! What is live on the running system: loaded iptables rules and running sysctl values.

use std::collections::{BTreeMap, HashSet};

use anyhow::Result;
use serde::{Deserialize, Serialize};

use crate::commands::Env;
use crate::compare;
use crate::firewall::Script;
use crate::rule::{self, Family};
use crate::snapshot::Snapshot;
use crate::sysctl;

/// Live state recorded with a snapshot.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Runtime {
    /// `iptables -S` output, when iptables could be run.
    pub iptables: Option<String>,
    /// `ip6tables -S` output, when ip6tables could be run.
    pub ip6tables: Option<String>,
    /// Running value of each managed sysctl key (dotted), from `/proc/sys`.
    pub sysctl: BTreeMap<String, String>,
}

/// Rules from `iptables -S` output, as the given family.
fn loaded_rules(text: &str, family: Family) -> Vec<rule::Rule> {
    text.lines()
        .filter(|l| l.starts_with("-A "))
        .filter_map(|l| rule::parse_call(l, Some(family)).ok().flatten())
        .collect()
}

/// File state and runtime state side by side: for each custom rule of the old side, whether the
/// new side's script has it and whether its recorded runtime had it loaded; and each running
/// sysctl value against the files.
pub fn side_by_side(env: &Env, old: &Snapshot, new: &Snapshot) -> Result<Vec<String>> {
    let Some(runtime) = &new.manifest.runtime else {
        return Ok(Vec::new());
    };
    let Some(old_script) = compare::script_of(old, &env.config.firewall_script)? else {
        return Ok(Vec::new());
    };
    let new_script = compare::script_of(new, &env.config.firewall_script)?;
    let new_index = new_script.as_ref().map(Script::index);
    let loaded_set = |text: &Option<String>, family| {
        text.as_deref().map(|t| {
            loaded_rules(t, family)
                .iter()
                .map(|r| r.key().hash())
                .collect::<HashSet<_>>()
        })
    };
    let v4 = loaded_set(&runtime.iptables, Family::V4);
    let v6 = loaded_set(&runtime.ip6tables, Family::V6);
    let mut lines = Vec::new();
    for (i, r) in old_script.rules().filter(|(_, r)| r.is_custom_accept()) {
        let in_script = new_index.as_ref().is_some_and(|s| s.covers(r));
        let loaded: Option<bool> = r
            .families()
            .iter()
            .map(|f| {
                let set = if *f == Family::V4 { &v4 } else { &v6 };
                set.as_ref().map(|loaded| loaded.contains(&r.hash()))
            })
            .try_fold(true, |acc, x| x.map(|x| acc && x));
        let yes = |b: bool| if b { "yes" } else { "no" };
        lines.push(format!(
            "custom rule {}: in script {}, loaded {}",
            old_script
                .rule(i)
                .map(|r| r.canonical().to_string())
                .unwrap_or_default(),
            yes(in_script),
            loaded.map_or("unknown", yes)
        ));
    }
    let sources = new.sysctl_sources();
    for (key, value) in &runtime.sysctl {
        let eff = sysctl::effective(sources.iter().copied(), key);
        let note = if sysctl::same_value(value, &eff.value) {
            ""
        } else {
            " (differs from the files)"
        };
        lines.push(format!("sysctl {key}: files {}, running {value}{note}", eff.value));
    }
    Ok(lines)
}
