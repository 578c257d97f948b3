//! What `restore` will write: the new bytes of each file, computed without touching the disk.

use anyhow::{anyhow, bail, Result};
use serde::Serialize;

use crate::compare::{script_of, Comparison};
use crate::config::Config;
use crate::firewall::{self, Script};
use crate::snapshot::Snapshot;
use crate::sysctl;

/// New content for one file.
#[derive(Debug, Clone, Serialize)]
pub struct FileChange {
    /// Absolute appliance path.
    pub path: String,
    /// Current content (`None`: the file does not exist yet).
    #[serde(skip)]
    pub old: Option<Vec<u8>>,
    #[serde(skip)]
    pub new: Vec<u8>,
    /// One line per edit.
    pub edits: Vec<String>,
}

impl FileChange {
    /// A unified diff of the change, for `--dry-run` and reports.
    pub fn unified_diff(&self) -> String {
        let old = String::from_utf8_lossy(self.old.as_deref().unwrap_or_default());
        let new = String::from_utf8_lossy(&self.new);
        similar::TextDiff::from_lines(old.as_ref(), new.as_ref())
            .unified_diff()
            .context_radius(3)
            .header(&format!("a{}", self.path), &format!("b{}", self.path))
            .to_string()
    }
}

/// Everything `restore` writes.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Plan {
    pub changes: Vec<FileChange>,
}

/// Where a restored rule goes in the new script: the index of the line it follows.
fn find_anchor(old: &Script, new: &Script, index: usize, restoring: &[usize]) -> Option<(usize, String)> {
    let preceding = (0..index)
        .rev()
        .find(|&j| !old.lines[j].is_blank() && !restoring.contains(&j));
    if let Some(j) = preceding {
        let prev = &old.lines[j];
        let hits: Vec<usize> = new
            .lines
            .iter()
            .enumerate()
            .filter(|(_, l)| match (&prev.rule, &l.rule) {
                (Some(a), Some(b)) => a.covers(b) && b.covers(a),
                (None, None) => l.text.trim() == prev.text.trim(),
                _ => false,
            })
            .map(|(k, _)| k)
            .collect();
        if let [k] = hits.as_slice() {
            return Some((
                *k,
                format!("after line {} (the line that preceded it)", new.lines[*k].first),
            ));
        }
    }
    new.stateful_line()
        .map(|k| (k, format!("after line {} (the stateful line)", new.lines[k].first)))
}

/// Inserts the rules to restore into the new script, in their old order and original text.
fn restore_rules(before: &Snapshot, after: &Snapshot, cmp: &Comparison, path: &str) -> Result<Option<FileChange>> {
    let restoring: Vec<usize> = cmp.discarded.iter().filter(|d| d.restore).map(|d| d.index).collect();
    if restoring.is_empty() {
        return Ok(None);
    }
    let old = script_of(before, path)?.ok_or_else(|| anyhow!("{} has no {path}", before.name()))?;
    let new = script_of(after, path)?.ok_or_else(|| anyhow!("{} has no {path}", after.name()))?;
    let old_bytes = before.content(path).expect("parsed above");
    let new_bytes = after.content(path).expect("parsed above");
    let mut inserts = Vec::new();
    let mut edits = Vec::new();
    for d in cmp.discarded.iter().filter(|d| d.restore) {
        let raw = &old_bytes[old.lines[d.index].bytes.clone()];
        if let Err(why) = firewall::check_restorable(raw) {
            bail!(
                "{}:{}: refusing to restore {:?}: {why}; nothing was changed",
                before.location(path),
                d.line,
                d.text
            );
        }
        let (anchor, place) = find_anchor(&old, &new, d.index, &restoring).ok_or_else(|| {
            anyhow!(
                "{}: no place to restore {:?} ({}:{}): neither the line that preceded it nor a stateful line is in the new script; nothing was changed",
                after.location(path),
                d.text,
                before.location(path),
                d.line
            )
        })?;
        let mut text = raw.to_vec();
        if !text.ends_with(b"\n") {
            text.push(b'\n');
        }
        inserts.push((anchor, d.index, text));
        edits.push(format!("restore line {} {place}: {}", d.line, d.text));
    }
    inserts.sort_by_key(|(anchor, index, _)| (*anchor, *index));
    let mut out = Vec::with_capacity(new_bytes.len() + inserts.iter().map(|i| i.2.len()).sum::<usize>());
    let mut next = inserts.iter().peekable();
    for (k, line) in new.lines.iter().enumerate() {
        out.extend_from_slice(&new_bytes[line.bytes.clone()]);
        while let Some((_, _, text)) = next.next_if(|(a, _, _)| *a == k) {
            if !out.ends_with(b"\n") {
                out.push(b'\n');
            }
            out.extend_from_slice(text);
        }
    }
    Ok(Some(FileChange {
        path: path.to_string(),
        old: Some(new_bytes.to_vec()),
        new: out,
        edits,
    }))
}

/// Computes every file change `restore` makes to bring `after` back to `before`'s custom state.
pub fn plan(before: &Snapshot, after: &Snapshot, cmp: &Comparison, config: &Config) -> Result<Plan> {
    let mut plan = Plan::default();
    if let Some(change) = restore_rules(before, after, cmp, &config.firewall_script)? {
        plan.changes.push(change);
    }
    let mut sysctl_change: Option<FileChange> = None;
    for finding in cmp.sysctl.iter().filter(|f| f.set_to.is_some()) {
        let value = finding.set_to.as_deref().expect("filtered");
        if after.record(sysctl::SYSCTL_CONF).is_some_and(|r| r.target.is_some()) {
            bail!(
                "{} is a symbolic link; refusing to edit it (set {} = {value} by hand)",
                after.location(sysctl::SYSCTL_CONF),
                finding.key
            );
        }
        let change = sysctl_change.get_or_insert_with(|| {
            let old = after.content(sysctl::SYSCTL_CONF).map(<[u8]>::to_vec);
            FileChange {
                path: sysctl::SYSCTL_CONF.into(),
                new: old.clone().unwrap_or_default(),
                old,
                edits: Vec::new(),
            }
        });
        change.new = sysctl::set_value(&change.new, &finding.key, value);
        let was = match &finding.after.source {
            Some((file, line)) if file == sysctl::SYSCTL_CONF => format!("line {line} said {}", finding.after.value),
            Some((file, line)) => format!("appended; {file}:{line} says {}", finding.after.value),
            None => "appended".to_string(),
        };
        change.edits.push(format!("set {} = {value} ({was})", finding.key));
    }
    plan.changes.extend(sysctl_change);
    Ok(plan)
}
