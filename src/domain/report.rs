//! Reports of what a command found and did, as aligned text or stable JSON.

use std::fmt::Write as _;

use std::path::Path;

use serde::Serialize;

use crate::domain::compare::{Comparison, DiscardedRule};
use crate::domain::plan::FileChange;
use crate::domain::snapshot::{Origin, Snapshot};
use crate::domain::steps::{self, Step};

/// Whether a side is a stored snapshot or a root tree read now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SideKind {
    Snapshot,
    Tree,
}

impl std::fmt::Display for SideKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Snapshot => "snapshot",
            Self::Tree => "tree",
        })
    }
}

/// Which state a report side refers to.
#[derive(Debug, Clone, Serialize)]
pub struct Side {
    /// Snapshot id or tree path.
    pub name: String,
    pub kind: SideKind,
    pub version: String,
}

impl Side {
    pub fn of(snap: &Snapshot) -> Self {
        let (name, kind) = match &snap.origin {
            Origin::Stored(_) => (snap.manifest.id.clone(), SideKind::Snapshot),
            Origin::Tree(dir) => (dir.display().to_string(), SideKind::Tree),
        };
        let version = snap.manifest.version.to_string();
        Self { name, kind, version }
    }
}

/// One changed (or, in a dry run, to-be-changed) file.
#[derive(Debug, Clone, Serialize)]
pub struct ChangeReport {
    pub path: String,
    pub edits: Vec<String>,
    /// Unified diff of the change (left out of plain `diff` output, where nothing prints it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub diff: Option<String>,
    /// Backup taken before writing.
    pub backup: Option<String>,
}

impl ChangeReport {
    /// `with_diff`: compute the unified diff (for dry runs and JSON).
    pub fn new(change: &FileChange, backup: Option<&Path>, with_diff: bool) -> Self {
        Self {
            path: change.path.clone(),
            edits: change.edits.clone(),
            diff: with_diff.then(|| change.unified_diff()),
            backup: backup.map(|b| b.display().to_string()),
        }
    }
}

/// How a `diff` or `restore` ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Outcome {
    NothingToRestore,
    /// `diff`: something to restore.
    Restorable,
    /// A dry run planned changes.
    Planned,
    Restored,
    RolledBack,
    /// One fix failed and was put back; the other stays applied (the files in `kept`).
    PartlyRestored,
    /// The restore failed and so did part of its rollback.
    RollbackIncomplete,
}

impl Outcome {
    /// The JSON spelling, for log lines.
    pub fn name(self) -> &'static str {
        match self {
            Self::NothingToRestore => "nothing-to-restore",
            Self::Restorable => "restorable",
            Self::Planned => "planned",
            Self::Restored => "restored",
            Self::RolledBack => "rolled-back",
            Self::PartlyRestored => "partly-restored",
            Self::RollbackIncomplete => "rollback-incomplete",
        }
    }
}

/// The report of `diff` and `restore`.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub command: &'static str,
    pub old: Side,
    pub new: Side,
    pub comparison: Comparison,
    pub changes: Vec<ChangeReport>,
    pub dry_run: bool,
    /// What happened to the running firewall and kernel (JSON: one object each).
    #[serde(serialize_with = "steps::serialize_steps")]
    pub live: Vec<Step>,
    pub outcome: Outcome,
    /// After a failure: files that keep this run's changes.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub kept: Vec<String>,
}

fn side_line(label: &str, side: &Side) -> String {
    format!("{label} {} {} ({})\n", side.kind, side.name, side.version)
}

/// How many lines of one group the text report shows before "... and N more"; `None`: all.
pub const GROUP_LINES: usize = 20;

/// Writes `lines`, at most `limit` of them, then how many were left out.
fn limited(out: &mut String, indent: &str, lines: impl ExactSizeIterator<Item = String>, limit: Option<usize>) {
    for line in steps::limited(indent, lines, limit) {
        let _ = writeln!(out, "{line}");
    }
}

/// Human text for a comparison, shared by `diff`, `restore` and `status`: counts first, then
/// the rules grouped by decision and reason, each rule once, at most `limit` per group.
pub fn render_comparison(out: &mut String, cmp: &Comparison, limit: Option<usize>) {
    if let Some(path) = &cmp.firewall_script {
        if cmp.discarded.is_empty() {
            let _ = writeln!(out, "firewall {path}: no rule discarded");
        } else {
            let _ = writeln!(
                out,
                "firewall {path}: {} rule(s) discarded by the upgrade: {}",
                cmp.discarded.len(),
                cmp.counts_text()
            );
            let width = cmp
                .discarded
                .iter()
                .map(|d| d.line.to_string().len())
                .max()
                .unwrap_or(1);
            // Groups in order of first appearance: (verdict, reason) -> rules.
            let verdict = |d: &DiscardedRule| match (d.restore, d.attention) {
                (true, _) => "restore",
                (false, true) => "REFUSED",
                (false, false) => "skip",
            };
            for ((verdict, reason), rules) in steps::grouped(&cmp.discarded, |&d| (verdict(d), d.group.as_ref())) {
                let _ = writeln!(out, "  {verdict} ({}): {reason}", rules.len());
                let lines = rules.iter().map(|d| match &d.detail {
                    Some(why) => format!("old line {:>width$}  {}  ({why})", d.line, d.text),
                    None => format!("old line {:>width$}  {}", d.line, d.text),
                });
                limited(out, "    ", lines, limit);
            }
        }
    } else {
        let _ = writeln!(out, "firewall: no firewall script on either side");
    }
    if let Some(note) = &cmp.kernel_evidence {
        let _ = writeln!(out, "  kernel: {note}");
    }
    for s in &cmp.sysctl {
        let _ = writeln!(
            out,
            "sysctl {}: before {}, after {}",
            s.key,
            s.before.placed(),
            s.after.placed()
        );
        if let Some(boot) = &s.boot {
            let _ = writeln!(out, "  at boot (systemd-sysctl): {}", boot.placed());
        }
        for r in s.before.rejected.iter().chain(&s.after.rejected) {
            let _ = writeln!(
                out,
                "  {}:{}: the kernel rejects {:?} ({}); the value before it stands",
                r.file, r.line, r.text, r.reason
            );
        }
        let _ = writeln!(out, "  {}", s.reason);
    }
}

impl Report {
    /// Plain text, summary first; at most `limit` lines per group (`None`: everything).
    pub fn render(&self, limit: Option<usize>) -> String {
        let mut out = String::new();
        out.push_str(&side_line("old:", &self.old));
        out.push_str(&side_line("new:", &self.new));
        render_comparison(&mut out, &self.comparison, limit);
        if !self.changes.is_empty() {
            let verb = if self.dry_run || self.command == "diff" {
                "would change"
            } else {
                "changed"
            };
            let _ = writeln!(out, "{verb} {} file(s):", self.changes.len());
            for c in &self.changes {
                let _ = writeln!(out, "  {} ({} edit(s))", c.path, c.edits.len());
                limited(&mut out, "    ", c.edits.iter().cloned(), limit);
                if let Some(b) = &c.backup {
                    let _ = writeln!(out, "    backup: {b}");
                }
            }
            if self.dry_run {
                // Capped like the groups: `limit` lines of diff per file.
                let cap = limit;
                for c in &self.changes {
                    let diff = c.diff.as_deref().unwrap_or_default();
                    let lines: Vec<&str> = diff.split_inclusive('\n').collect();
                    match cap {
                        Some(cap) if lines.len() > cap => {
                            lines[..cap].iter().for_each(|l| out.push_str(l));
                            let _ = writeln!(
                                out,
                                "... and {} more diff line(s) of {} (-v shows the whole diff, --stat one line per file)",
                                lines.len() - cap,
                                c.path
                            );
                        }
                        _ => out.push_str(diff),
                    }
                }
            }
        }
        for line in steps::render_limited(&self.live, limit) {
            let _ = writeln!(out, "{line}");
        }
        let kept;
        let summary = match self.outcome {
            Outcome::PartlyRestored => {
                kept = format!(
                    "FAILED: partly restored; these files keep their changes: {}",
                    self.kept.join(", ")
                );
                &kept
            }
            Outcome::NothingToRestore if self.comparison.needs_attention() => {
                "nothing to restore by the tool: the lines marked REFUSED did not survive the upgrade"
            }
            Outcome::NothingToRestore => "nothing to restore: every custom setting survived the upgrade",
            Outcome::Restorable => "something to restore: run `iwss-keeper restore`",
            Outcome::Planned => "dry run: nothing was changed",
            Outcome::RolledBack => "FAILED: rolled back; nothing was changed",
            Outcome::RollbackIncomplete => {
                "FAILED: the rollback did not complete (see above); files or firewall rules may differ from before: check them by hand"
            }
            Outcome::Restored => "restored",
        };
        let _ = writeln!(out, "{summary}");
        let refused = self.comparison.discarded.iter().filter(|d| d.attention).count();
        if refused > 0 {
            let _ = writeln!(
                out,
                "{refused} line(s) need attention: marked REFUSED above, not restored; restore them by hand if they are wanted"
            );
        }
        out
    }
}
