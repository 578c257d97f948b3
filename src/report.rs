//! Reports of what a command found and did, as aligned text or stable JSON.

use std::fmt::Write as _;

use serde::Serialize;

use crate::apply::Written;
use crate::compare::Comparison;
use crate::plan::FileChange;
use crate::snapshot::{Origin, Snapshot};

/// Which state a report side refers to.
#[derive(Debug, Clone, Serialize)]
pub struct Side {
    /// Snapshot id or tree path.
    pub name: String,
    /// `snapshot` or `tree`.
    pub kind: &'static str,
    pub version: String,
}

impl Side {
    pub fn of(snap: &Snapshot) -> Self {
        Self {
            name: match &snap.origin {
                Origin::Stored(_) => snap.manifest.id.clone(),
                Origin::Tree(dir) => dir.display().to_string(),
            },
            kind: match snap.origin {
                Origin::Stored(_) => "snapshot",
                Origin::Tree(_) => "tree",
            },
            version: snap.manifest.version.to_string(),
        }
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
    pub fn new(change: &FileChange, written: Option<&Written>, with_diff: bool) -> Self {
        Self {
            path: change.path.clone(),
            edits: change.edits.clone(),
            diff: with_diff.then(|| change.unified_diff()),
            backup: written.and_then(|w| w.backup.as_ref()).map(|b| b.display().to_string()),
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
    /// What happened to the running firewall and kernel, one line each.
    pub live: Vec<String>,
    /// `nothing-to-restore`, `restorable`, `planned`, `restored`, `rolled-back`.
    pub outcome: &'static str,
}

fn side_line(label: &str, side: &Side) -> String {
    format!("{label} {} {} ({})\n", side.kind, side.name, side.version)
}

/// Human text for a comparison, shared by `diff`, `restore` and `status`.
pub fn render_comparison(out: &mut String, cmp: &Comparison) {
    if let Some(path) = &cmp.firewall_script {
        if cmp.discarded.is_empty() {
            let _ = writeln!(out, "firewall {path}: no rule discarded");
        } else {
            let _ = writeln!(
                out,
                "firewall {path}: {} rule(s) discarded by the upgrade",
                cmp.discarded.len()
            );
            let width = cmp
                .discarded
                .iter()
                .map(|d| d.line.to_string().len())
                .max()
                .unwrap_or(1);
            for d in &cmp.discarded {
                let verdict = if d.restore { "restore" } else { "skip   " };
                let _ = writeln!(out, "  {verdict}  line {:>width$}  {}", d.line, d.text);
                let _ = writeln!(out, "  {:7}  {:width$}       {}", "", "", d.reason);
            }
        }
    } else {
        let _ = writeln!(out, "firewall: no firewall script on either side");
    }
    for s in &cmp.sysctl {
        let place = |e: &crate::sysctl::Effective| match &e.source {
            Some((file, line)) => format!("{} ({file}:{line})", e.value),
            None => format!("{} (kernel default)", e.value),
        };
        let _ = writeln!(
            out,
            "sysctl {}: before {}, after {}",
            s.key,
            place(&s.before),
            place(&s.after)
        );
        let _ = writeln!(out, "  {}", s.reason);
    }
}

impl Report {
    /// Aligned plain text.
    pub fn render(&self) -> String {
        let mut out = String::new();
        out.push_str(&side_line("old:", &self.old));
        out.push_str(&side_line("new:", &self.new));
        render_comparison(&mut out, &self.comparison);
        if !self.changes.is_empty() {
            let verb = if self.dry_run || self.command == "diff" {
                "would change"
            } else {
                "changed"
            };
            let _ = writeln!(out, "{verb} {} file(s):", self.changes.len());
            for c in &self.changes {
                let _ = writeln!(out, "  {}", c.path);
                for e in &c.edits {
                    let _ = writeln!(out, "    {e}");
                }
                if let Some(b) = &c.backup {
                    let _ = writeln!(out, "    backup: {b}");
                }
            }
            if self.dry_run {
                for c in &self.changes {
                    out.push_str(c.diff.as_deref().unwrap_or_default());
                }
            }
        }
        for line in &self.live {
            let _ = writeln!(out, "{line}");
        }
        let summary = match self.outcome {
            "nothing-to-restore" => "nothing to restore: every custom setting survived the upgrade",
            "restorable" => "something to restore: run `iwss-keeper restore`",
            "planned" => "dry run: nothing was changed",
            "rolled-back" => "FAILED: rolled back; nothing was changed",
            _ => "restored",
        };
        let _ = writeln!(out, "{summary}");
        out
    }
}

/// Prints a report as JSON or text.
pub fn print<T: Serialize>(json: bool, value: &T, text: impl FnOnce() -> String) -> anyhow::Result<()> {
    if json {
        println!("{}", serde_json::to_string_pretty(value)?);
    } else {
        print!("{}", text());
    }
    Ok(())
}
