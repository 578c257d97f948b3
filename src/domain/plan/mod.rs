//! What `restore` will write: the new bytes of each file, computed without touching the disk.

use anyhow::{anyhow, bail, Result};
use serde::Serialize;

use crate::domain::compare::{Comparison, Pair};
use crate::domain::config::Config;
use std::collections::{HashMap, HashSet};
use std::ops::Range;

use crate::domain::compare::DiscardedRule;
use crate::domain::firewall::{self, Script};
use crate::domain::rule::Iptables;
use crate::domain::snapshot::Snapshot;
use crate::domain::sysctl;

mod diff;
use diff::*;
pub use diff::{splice_diff, unified_diff, Splice};

/// New content for one file.
#[derive(Debug, Clone, Serialize)]
pub struct FileChange<'a> {
    /// Absolute appliance path.
    pub path: String,
    /// Current content (`None`: the file does not exist yet).
    #[serde(skip)]
    pub old: Option<&'a [u8]>,
    #[serde(skip)]
    pub new: Vec<u8>,
    /// One line per edit.
    pub edits: Vec<String>,
    /// Where the lines change, in file order: what the unified diff is built from.
    #[serde(skip)]
    pub splices: Vec<Splice>,
}

impl FileChange<'_> {
    /// A unified diff of the change, for `--dry-run` and reports: built from the splices the
    /// plan made, in one pass over the two files.
    pub fn unified_diff(&self) -> String {
        let old = self.old.unwrap_or_default();
        splice_diff(&self.path, old, &self.new, &self.splices)
            .unwrap_or_else(|| unified_diff(&self.path, old, &self.new))
    }
}

/// Everything `restore` writes.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Plan<'a> {
    pub changes: Vec<FileChange<'a>>,
}

/// Where lines of the old script are in the new one, by what they mean: rules by canonical
/// form and families, other non-blank lines by their text.
struct Anchors {
    /// (first line index, number of lines) per meaning: an anchor must be unique.
    rules: HashMap<(u128, u8), (usize, usize)>,
    texts: HashMap<String, (usize, usize)>,
}

impl Anchors {
    /// The new script's lines that hold what the `wanted` old lines hold (only those are
    /// looked for: a large script is walked once, against a small table).
    fn of(old: &Script, new: &Script, wanted: &[usize]) -> Self {
        let mut rules: HashMap<(u128, u8), (usize, usize)> = HashMap::default();
        let mut texts: HashMap<String, (usize, usize)> = HashMap::default();
        for &j in wanted {
            match &old.lines[j].rule {
                Some(r) => rules.insert((r.hash(), r.reach()), (0, 0)),
                None => texts.insert(old.text(j), (0, 0)),
            };
        }
        for (k, line) in new.lines.iter().enumerate().filter(|(_, l)| !l.data) {
            let slot = match &line.rule {
                Some(r) => rules.get_mut(&(r.hash(), r.reach())),
                None if texts.is_empty() => None,
                None => texts.get_mut(&new.text(k)),
            };
            if let Some(slot) = slot {
                if slot.1 == 0 {
                    slot.0 = k;
                }
                slot.1 += 1;
            }
        }
        Self { rules, texts }
    }

    /// The one line of the new script that holds the same as old line `j`, if exactly one does.
    fn unique(&self, old: &Script, j: usize) -> Option<usize> {
        let hits = match &old.lines[j].rule {
            Some(r) => self.rules.get(&(r.hash(), r.reach())),
            None => self.texts.get(&old.text(j)),
        };
        match hits {
            Some(&(k, 1)) => Some(k),
            _ => None,
        }
    }
}

/// The nearest line before `index` that is not being restored (blank lines are not kept).
/// `memo` holds the previous restored rule and its answer (rules come in script order), so a
/// block of restored rules is walked once, not once per rule.
fn preceding_line(
    index: usize,
    restoring: &HashSet<usize>,
    memo: &mut Option<(usize, Option<usize>)>,
) -> Option<usize> {
    let floor = memo.map_or(0, |(previous, _)| previous);
    let found = (floor..index).rev().find(|j| !restoring.contains(j));
    let result = found.or(memo.and_then(|(_, answer)| answer));
    *memo = Some((index, result));
    result
}

/// Where a restored rule goes in the new script: the index of the line it follows, after the
/// old line that `preceding` it when the new script has that line once, else after `stateful`;
/// and which of the two it is.
fn find_anchor(
    old: &Script,
    new: &Script,
    anchors: &Anchors,
    preceding: Option<usize>,
    stateful: Option<usize>,
) -> Option<(usize, &'static str)> {
    if let Some(k) = preceding
        .and_then(|j| anchors.unique(old, j))
        .filter(|&k| new.runs_as_anchor(k))
    {
        return Some((k, "the line that preceded it"));
    }
    stateful.map(|k| (k, "the stateful line"))
}

/// A restored line and where it goes: after the new script's line `anchor`, in old line order.
struct Insert<'a> {
    anchor: usize,
    old_index: usize,
    text: &'a [u8],
}

/// Inserts the rules to restore into the new script, in their old order and original text.
fn restore_rules<'a>(pair: &Pair<'a>, cmp: &Comparison, path: &str) -> Result<Option<FileChange<'a>>> {
    let restoring: Vec<&DiscardedRule> = cmp.discarded.iter().filter(|d| d.restore).collect();
    if restoring.is_empty() {
        return Ok(None);
    }
    let old = pair
        .old
        .as_ref()
        .ok_or_else(|| anyhow!("{} has no {path}", pair.before.name()))?;
    let new = pair
        .new
        .as_ref()
        .ok_or_else(|| anyhow!("{} has no {path}", pair.after.name()))?;
    let (mut inserts, edits) = place_rules(pair, old, new, &restoring, path)?;
    inserts.sort_by_key(|i| (i.anchor, i.old_index));
    let (out, placed, splices) = splice_in(new, &inserts);
    if !reads_back(&out, &placed, old, new.iptables) {
        bail!(
            "{}: the restored rules would not read back as rules that run as the anchor does where they go (an anchor line opens a heredoc, continues or is in another list); nothing was changed",
            pair.after.location(path)
        );
    }
    Ok(Some(FileChange {
        path: path.to_string(),
        old: Some(new.bytes),
        new: out,
        edits,
        splices,
    }))
}

/// Where each rule to restore goes in the new script, and the edit that says so; each line is
/// written only as the restorable grammar accepted it.
fn place_rules<'a>(
    pair: &Pair,
    old: &Script<'a>,
    new: &Script,
    restoring: &[&DiscardedRule],
    path: &str,
) -> Result<(Vec<Insert<'a>>, Vec<String>)> {
    let (before, after) = (pair.before, pair.after);
    let indexes: HashSet<usize> = restoring.iter().map(|d| d.index).collect();
    let mut memo = None;
    let preceding: Vec<Option<usize>> = restoring
        .iter()
        .map(|d| preceding_line(d.index, &indexes, &mut memo))
        .collect();
    let wanted: Vec<usize> = preceding.iter().flatten().copied().collect();
    let anchors = Anchors::of(old, new, &wanted);
    let stateful = new.stateful_line();
    let mut inserts = Vec::new();
    let mut edits = Vec::new();
    for (d, preceding) in restoring.iter().zip(preceding) {
        let raw = &old.bytes[old.lines[d.index].bytes()];
        // The comparison checked these very bytes, or they are checked now.
        let checked = if d.checked_as(raw) {
            Ok(())
        } else {
            firewall::check_restorable(raw, old.iptables).map(drop)
        };
        if let Err(why) = checked {
            bail!(
                "{}:{}: refusing to restore {:?}: {why}; nothing was changed",
                before.location(path),
                d.line,
                d.text
            );
        }
        let (anchor, which) = find_anchor(old, new, &anchors, preceding, stateful).ok_or_else(|| {
            anyhow!(
                "{}: no place to restore {:?} ({}:{}): neither the line that preceded it nor a stateful line is in the new script; nothing was changed",
                after.location(path),
                d.text,
                before.location(path),
                d.line
            )
        })?;
        inserts.push(Insert {
            anchor,
            old_index: d.index,
            text: raw,
        });
        // The rule's text is in the report once, under its old line number.
        edits.push(format!(
            "restore old line {} after new line {} ({which})",
            d.line,
            new.lines[anchor].first()
        ));
    }
    Ok((inserts, edits))
}

/// The new script with `inserts` (sorted by anchor) written after their anchor lines: the
/// bytes, where each inserted line landed, and the splices the unified diff is built from.
fn splice_in(new: &Script, inserts: &[Insert]) -> (Vec<u8>, Vec<Range<usize>>, Vec<Splice>) {
    let extra: usize = inserts.iter().map(|i| i.text.len() + 1).sum();
    let mut out = Vec::with_capacity(new.bytes.len() + extra);
    let mut placed = Vec::with_capacity(inserts.len());
    let mut splices: Vec<Splice> = Vec::new();
    // Physical lines added so far; bytes of `new` copied so far.
    let (mut added, mut copied) = (0, 0);
    for insert in inserts {
        let line = &new.lines[insert.anchor];
        if copied < line.bytes().end {
            out.extend_from_slice(&new.bytes[copied..line.bytes().end]);
            copied = line.bytes().end;
        }
        let old_lines = line.last();
        let mut splice = Splice {
            old_at: old_lines,
            old_len: 0,
            new_at: old_lines + added,
            new_len: 0,
        };
        if !out.ends_with(b"\n") {
            // The file's last line gains its newline: it changes too.
            out.push(b'\n');
            (splice.old_at, splice.old_len, splice.new_at) = (old_lines - 1, 1, old_lines - 1 + added);
            splice.new_len = 1;
        }
        let start = out.len();
        out.extend_from_slice(insert.text);
        if !insert.text.ends_with(b"\n") {
            out.push(b'\n');
        }
        let lines = out[start..].iter().filter(|&&b| b == b'\n').count();
        splice.new_len += lines;
        added += lines;
        match splices.last_mut() {
            Some(s) if s.old_at + s.old_len == splice.old_at && splice.old_len == 0 => s.new_len += splice.new_len,
            _ => splices.push(splice),
        }
        placed.push(start..out.len());
    }
    out.extend_from_slice(&new.bytes[copied..]);
    (out, placed, splices)
}

/// Whether the written text, read as bash reads it, holds each restored line (`placed`, in
/// file order) as a rule line of its own that runs as the anchor does. Anchors are chosen in the
/// anchor's own list and restored lines pass the strict grammar, so this holds by construction;
/// it is checked because a miss would restore a rule that never runs, or nothing, silently.
fn reads_back(out: &[u8], placed: &[Range<usize>], old: &Script, iptables: Iptables) -> bool {
    let function = old.anchor_function.as_ref().map(|f| f.as_deref());
    let script = Script::parse_anchored(out, iptables, function);
    let mut lines = script.lines.iter().peekable();
    placed.iter().all(|r| {
        while lines.next_if(|l| l.bytes().start < r.start).is_some() {}
        lines
            .peek()
            .is_some_and(|l| l.bytes() == *r && l.rule.is_some() && l.not_live.is_none() && !l.data)
    })
}

/// Computes every file change `restore` makes to bring `after` back to `before`'s custom state.
pub fn plan<'a>(pair: &Pair<'a>, cmp: &Comparison, config: &Config) -> Result<Plan<'a>> {
    let mut plan = Plan::default();
    plan.changes.extend(restore_rules(pair, cmp, &config.firewall_script)?);
    plan.changes.extend(sysctl_changes(pair.after, cmp)?);
    Ok(plan)
}

/// The changes to the sysctl files: one per file, in the order first needed.
fn sysctl_changes<'a>(after: &'a Snapshot, cmp: &Comparison) -> Result<Vec<FileChange<'a>>> {
    let mut sysctl_changes: Vec<FileChange> = Vec::new();
    let mut edit = |path: &str, key: &str, value: &str, note: String| -> Result<()> {
        if after.record(path).is_some_and(|r| r.target.is_some()) {
            bail!(
                "{} is a symbolic link; refusing to edit it (set {key} = {value} by hand)",
                after.location(path)
            );
        }
        let at = sysctl_changes.iter().position(|c| c.path == path).unwrap_or_else(|| {
            let old = after.content(path);
            sysctl_changes.push(FileChange {
                path: path.into(),
                new: old.unwrap_or_default().to_vec(),
                old,
                edits: Vec::new(),
                splices: Vec::new(),
            });
            sysctl_changes.len() - 1
        });
        let change = &mut sysctl_changes[at];
        change.new = sysctl::set_value(&change.new, key, value, &after.platforms())
            .map_err(|why| anyhow!("{}: {why}; nothing was changed", after.location(path)))?;
        change.edits.push(format!("set {key} = {value} ({note})"));
        Ok(())
    };
    for finding in cmp.sysctl.iter() {
        let Some(value) = finding.set_to.as_deref() else {
            continue;
        };
        let conf_refused = finding
            .after
            .rejected
            .iter()
            .any(|r| r.last && r.file == sysctl::SYSCTL_CONF);
        // The file that decides at boot, through a link (`99-sysctl.conf -> ../sysctl.conf`).
        let boot = finding.boot.as_ref().filter(|b| !b.is(value));
        let boot_deciding = boot.and_then(|b| match (&b.source, b.rejected.last()) {
            (Some((file, line)), _) => Some((after.resolve(file), *line, b.shown())),
            (None, Some(r)) => Some((
                after.resolve(&r.file),
                r.line,
                format!("{:?}, which the kernel rejects", r.text),
            )),
            (None, None) => None,
        });
        let boot_is_conf = boot_deciding.as_ref().is_some_and(|(f, _, _)| f == sysctl::SYSCTL_CONF);
        if !finding.after.is(value) || conf_refused || boot_is_conf {
            let was = match &finding.after.source {
                _ if conf_refused => "its last line there is refused by the kernel".to_string(),
                Some((file, line)) if file == sysctl::SYSCTL_CONF => {
                    format!("line {line} said {}", finding.after.shown())
                }
                Some((file, line)) => format!("appended; {file}:{line} says {}", finding.after.shown()),
                None => "appended".to_string(),
            };
            edit(sysctl::SYSCTL_CONF, &finding.key, value, was)?;
        }
        // At boot, systemd-sysctl applies a drop-in after the link to sysctl.conf: the line
        // that decides there is set too.
        if let Some((file, line, said)) = boot_deciding.filter(|_| !boot_is_conf) {
            edit(
                &file,
                &finding.key,
                value,
                format!("line {line} said {said}; it wins at boot"),
            )?;
        }
    }
    for change in &mut sysctl_changes {
        change.splices = aligned_splices(change.old.unwrap_or_default(), &change.new);
    }
    check_sysctl_changes(after, cmp, &sysctl_changes)?;
    Ok(sysctl_changes)
}

/// Refuses sysctl changes after which some platform that may run the appliance would still not
/// give a restored key its value, with `sysctl --system` or at boot (the edits cannot reach the
/// line that decides there): named, never claimed done.
fn check_sysctl_changes(after: &Snapshot, cmp: &Comparison, changes: &[FileChange]) -> Result<()> {
    let files: Vec<(&str, &[u8])> = after
        .sysctl_files()
        .into_iter()
        .map(|(path, bytes)| {
            let real = after.resolve(path);
            match changes.iter().find(|c| c.path == real) {
                Some(c) => (path, c.new.as_slice()),
                None => (path, bytes),
            }
        })
        .chain(
            changes
                .iter()
                .filter(|c| c.old.is_none())
                .map(|c| (c.path.as_str(), c.new.as_slice())),
        )
        .collect();
    let (unreadable, platforms) = (after.sysctl_unreadable(), after.platforms());
    for f in cmp.sysctl.iter() {
        let Some(value) = f.set_to.as_deref() else {
            continue;
        };
        let system = sysctl::effective_with(&files, &unreadable, &f.key, &platforms);
        let boot = sysctl::effective_at_boot_with(&files, &unreadable, &f.key, &platforms);
        for (when, e) in [("`sysctl --system`", system), ("at boot, systemd-sysctl", boot)] {
            if !e.is(value) {
                bail!(
                    "{}: after setting {} = {value}, {when} would still give {}; set it by hand; nothing was changed",
                    after.name(),
                    f.key,
                    e.placed()
                );
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// A file of `n` distinct lines, the last without its newline when `open_end`.
    fn file(prefix: &str, n: usize, open_end: bool) -> Vec<String> {
        (0..n)
            .map(|i| {
                if open_end && i + 1 == n {
                    format!("{prefix} {i}")
                } else {
                    format!("{prefix} {i}\n")
                }
            })
            .collect()
    }

    proptest! {
        /// On files of distinct lines, the diff built from splices is the one a general diff
        /// algorithm finds.
        #[test]
        fn splice_diff_matches_a_general_diff(
            n in 0usize..60,
            open_end in any::<bool>(),
            edits in proptest::collection::vec((0usize..60, 0usize..3, 0usize..4), 0..8),
        ) {
            let old = file("old", n, open_end);
            // Edits at distinct positions, in order: (old line, lines removed, lines added).
            let mut edits: Vec<(usize, usize, usize)> = edits
                .into_iter()
                .map(|(at, rm, add)| (at.min(n), rm, add))
                .collect();
            edits.sort();
            edits.dedup_by_key(|e| e.0);
            let mut new: Vec<String> = Vec::new();
            let mut splices = Vec::new();
            let mut i = 0;
            for (at, rm, add) in edits {
                if at < i {
                    continue;
                }
                let rm = rm.min(n - at);
                if rm == 0 && add == 0 {
                    continue;
                }
                new.extend(old[i..at].iter().cloned());
                let new_at = new.len();
                for k in 0..add {
                    new.push(format!("new {at} {k}\n"));
                }
                splices.push(Splice { old_at: at, old_len: rm, new_at, new_len: add });
                i = at + rm;
            }
            new.extend(old[i..].iter().cloned());
            // Lines added after a kept last line that has no newline join it: the splices no
            // longer describe the files, and only then may they be refused.
            let joins_last = open_end
                && splices.iter().any(|s| s.old_at == n && s.new_len > 0)
                && !splices.iter().any(|s| s.old_at < n && n <= s.old_at + s.old_len);
            let (old, new) = (old.concat(), new.concat());
            match splice_diff("/f", old.as_bytes(), new.as_bytes(), &splices) {
                Some(built) => prop_assert_eq!(built, unified_diff("/f", old.as_bytes(), new.as_bytes())),
                None => prop_assert!(joins_last, "splices refused:\n{old}\n---\n{new}"),
            }
        }
    }

    #[test]
    fn wrong_splices_fall_back_to_the_general_diff() {
        let (old, new) = ("a\nb\nc\n", "a\nx\nc\n");
        let wrong = [Splice {
            old_at: 0,
            old_len: 1,
            new_at: 0,
            new_len: 1,
        }];
        assert_eq!(splice_diff("/f", old.as_bytes(), new.as_bytes(), &wrong), None);
        let right = aligned_splices(old.as_bytes(), new.as_bytes());
        assert_eq!(
            splice_diff("/f", old.as_bytes(), new.as_bytes(), &right).unwrap(),
            unified_diff("/f", old.as_bytes(), new.as_bytes())
        );
    }
}
