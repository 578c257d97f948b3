//! What `restore` will write: the new bytes of each file, computed without touching the disk.

use anyhow::{anyhow, bail, Result};
use serde::Serialize;

use crate::domain::compare::{Comparison, Pair};
use crate::domain::config::Config;
use rustc_hash::{FxHashMap as HashMap, FxHashSet as HashSet};

use crate::domain::firewall::{self, Script};
use crate::domain::sysctl;

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
}

impl FileChange<'_> {
    /// A unified diff of the change, for `--dry-run` and reports.
    pub fn unified_diff(&self) -> String {
        unified_diff(&self.path, self.old.unwrap_or_default(), &self.new)
    }
}

/// A unified diff of one file's change (`a/PATH`, `b/PATH`). Patience diff: linear in practice on
/// scripts whose lines are nearly all unique.
pub fn unified_diff(path: &str, old: &[u8], new: &[u8]) -> String {
    let old = String::from_utf8_lossy(old);
    let new = String::from_utf8_lossy(new);
    similar::TextDiff::configure()
        .algorithm(similar::Algorithm::Patience)
        .diff_lines(old.as_ref(), new.as_ref())
        .unified_diff()
        .context_radius(3)
        .header(&format!("a{path}"), &format!("b{path}"))
        .to_string()
}

/// Everything `restore` writes.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Plan<'a> {
    pub changes: Vec<FileChange<'a>>,
}

/// Lines of the new script by what they mean: rules by canonical form and families, other
/// non-blank lines by their text. Each maps to the line indexes that hold it.
struct Anchors {
    /// (first line index, number of lines) per meaning: an anchor must be unique.
    rules: HashMap<(u128, u8), (usize, usize)>,
    texts: HashMap<String, (usize, usize)>,
}

impl Anchors {
    fn of(script: &Script) -> Self {
        let mut rules: HashMap<(u128, u8), (usize, usize)> =
            HashMap::with_capacity_and_hasher(script.lines.len(), Default::default());
        let mut texts: HashMap<String, (usize, usize)> = HashMap::default();
        for (k, line) in script.lines.iter().enumerate().filter(|(_, l)| !l.data) {
            let slot = match &line.rule {
                Some(r) => rules.entry((r.hash(), r.reach())).or_insert((k, 0)),
                None if !line.blank => texts.entry(script.text(k)).or_insert((k, 0)),
                None => continue,
            };
            slot.1 += 1;
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

/// The nearest line before `index` that is neither blank nor being restored. `memo` holds the
/// previous restored rule and its answer (rules come in script order), so a block of restored
/// rules is walked once, not once per rule.
fn preceding_line(
    old: &Script,
    index: usize,
    restoring: &HashSet<usize>,
    memo: &mut Option<(usize, Option<usize>)>,
) -> Option<usize> {
    let floor = memo.map_or(0, |(previous, _)| previous);
    let found = (floor..index)
        .rev()
        .find(|j| !old.lines[*j].blank && !restoring.contains(j));
    let result = found.or(memo.and_then(|(_, answer)| answer));
    *memo = Some((index, result));
    result
}

/// Where a restored rule goes in the new script: the index of the line it follows.
fn find_anchor(
    old: &Script,
    new: &Script,
    anchors: &Anchors,
    index: usize,
    restoring: &HashSet<usize>,
    memo: &mut Option<(usize, Option<usize>)>,
) -> Option<(usize, String)> {
    let preceding = preceding_line(old, index, restoring, memo);
    if let Some(k) = preceding.and_then(|j| anchors.unique(old, j)) {
        return Some((
            k,
            format!("after line {} (the line that preceded it)", new.lines[k].first()),
        ));
    }
    new.stateful_line()
        .map(|k| (k, format!("after line {} (the stateful line)", new.lines[k].first())))
}

/// Inserts the rules to restore into the new script, in their old order and original text.
fn restore_rules<'a>(pair: &Pair<'a>, cmp: &Comparison, path: &str) -> Result<Option<FileChange<'a>>> {
    let (before, after) = (pair.before, pair.after);
    let restoring: HashSet<usize> = cmp.discarded.iter().filter(|d| d.restore).map(|d| d.index).collect();
    if restoring.is_empty() {
        return Ok(None);
    }
    let old = pair
        .old
        .as_ref()
        .ok_or_else(|| anyhow!("{} has no {path}", before.name()))?;
    let new = pair
        .new
        .as_ref()
        .ok_or_else(|| anyhow!("{} has no {path}", after.name()))?;
    let anchors = Anchors::of(new);
    let mut memo = None;
    let mut inserts = Vec::new();
    let mut edits = Vec::new();
    for d in cmp.discarded.iter().filter(|d| d.restore) {
        let raw = &old.bytes[old.lines[d.index].bytes()];
        if let Err(why) = firewall::check_restorable(raw) {
            bail!(
                "{}:{}: refusing to restore {:?}: {why}; nothing was changed",
                before.location(path),
                d.line,
                d.text
            );
        }
        let (anchor, place) = find_anchor(old, new, &anchors, d.index, &restoring, &mut memo).ok_or_else(|| {
            anyhow!(
                "{}: no place to restore {:?} ({}:{}): neither the line that preceded it nor a stateful line is in the new script; nothing was changed",
                after.location(path),
                d.text,
                before.location(path),
                d.line
            )
        })?;
        inserts.push((anchor, d.index, raw));
        edits.push(format!("restore line {} {place}: {}", d.line, d.text));
    }
    inserts.sort_by_key(|(anchor, index, _)| (*anchor, *index));
    let extra: usize = inserts.iter().map(|i| i.2.len() + 1).sum();
    let mut out = Vec::with_capacity(new.bytes.len() + extra);
    let mut placed: Vec<std::ops::Range<usize>> = Vec::with_capacity(inserts.len());
    let mut next = inserts.iter().peekable();
    for (k, line) in new.lines.iter().enumerate() {
        out.extend_from_slice(&new.bytes[line.bytes()]);
        while let Some((_, _, text)) = next.next_if(|(a, _, _)| *a == k) {
            if !out.ends_with(b"\n") {
                out.push(b'\n');
            }
            let start = out.len();
            out.extend_from_slice(text);
            if !text.ends_with(b"\n") {
                out.push(b'\n');
            }
            placed.push(start..out.len());
        }
    }
    // The written text, split as bash reads it, must hold each restored line as a command line
    // of its own. Anchors are code lines and restored lines pass the strict grammar, so this
    // holds by construction; it is checked because a miss would restore nothing silently.
    let code: rustc_hash::FxHashSet<(usize, usize)> = crate::domain::shell::segments(&out)
        .into_iter()
        .filter(|s| s.kind == crate::domain::shell::Kind::Code)
        .map(|s| (s.bytes.start, s.bytes.end))
        .collect();
    if placed.iter().any(|r| !code.contains(&(r.start, r.end))) {
        bail!(
            "{}: the restored rules would not read back as rules of their own where they go (an anchor line opens a heredoc or continues); nothing was changed",
            after.location(path)
        );
    }
    Ok(Some(FileChange {
        path: path.to_string(),
        old: Some(new.bytes),
        new: out,
        edits,
    }))
}

/// Computes every file change `restore` makes to bring `after` back to `before`'s custom state.
pub fn plan<'a>(pair: &Pair<'a>, cmp: &Comparison, config: &Config) -> Result<Plan<'a>> {
    let after = pair.after;
    let mut plan = Plan::default();
    if let Some(change) = restore_rules(pair, cmp, &config.firewall_script)? {
        plan.changes.push(change);
    }
    // One change per sysctl file, in the order first needed.
    let mut sysctl_changes: Vec<FileChange> = Vec::new();
    let mut edit = |path: &str, key: &str, value: &str, note: String| -> Result<()> {
        if after.record(path).is_some_and(|r| r.target.is_some()) {
            bail!(
                "{} is a symbolic link; refusing to edit it (set {key} = {value} by hand)",
                after.location(path)
            );
        }
        let at = match sysctl_changes.iter().position(|c| c.path == path) {
            Some(i) => i,
            None => {
                let old = after.content(path);
                sysctl_changes.push(FileChange {
                    path: path.into(),
                    new: old.unwrap_or_default().to_vec(),
                    old,
                    edits: Vec::new(),
                });
                sysctl_changes.len() - 1
            }
        };
        let change = &mut sysctl_changes[at];
        change.new = sysctl::set_value(&change.new, key, value);
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
    plan.changes.extend(sysctl_changes);
    Ok(plan)
}
