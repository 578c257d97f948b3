//! `diff`: compare two states by meaning; exit 1 when something is to restore.

use anyhow::Result;

use crate::context::Context;
use crate::domain::compare::{compare, recorded_runtime, Pair};
use crate::domain::plan;
use crate::domain::report::{ChangeReport, Outcome, Report, Side};
use crate::exit_codes::ExitCode;

/// `--stat`: one line per file, as `git diff --stat` gives one per file.
pub(super) fn render_stat(report: &Report) -> String {
    use std::fmt::Write as _;
    let cmp = &report.comparison;
    let mut rows: Vec<(String, String)> = Vec::new();
    if let Some(script) = &cmp.firewall_script {
        rows.push((script.clone(), format!("rules: {}", cmp.counts_text())));
    }
    for change in report
        .changes
        .iter()
        .filter(|c| Some(&c.path) != cmp.firewall_script.as_ref())
    {
        rows.push((change.path.clone(), format!("sysctl: {} edit(s)", change.edits.len())));
    }
    let set: Vec<String> = cmp
        .sysctl
        .iter()
        .filter_map(|f| f.set_to.as_ref().map(|v| format!("{} -> {v}", f.key)))
        .collect();
    let width = rows.iter().map(|(p, _)| p.len()).max().unwrap_or(0);
    let mut out = String::new();
    for (path, what) in &rows {
        let _ = writeln!(out, " {path:width$} | {what}");
    }
    let _ = writeln!(
        out,
        " {} file(s) to change{}",
        report.changes.len(),
        if set.is_empty() {
            String::new()
        } else {
            format!("; sysctl {}", set.join(", "))
        }
    );
    out
}

/// Runs `diff`: the whole report, one line per file under `stat`, nothing under `quiet` (under
/// `--json`, the document all the same).
pub fn run(
    ctx: &Context,
    json: bool,
    old: Option<&str>,
    new: Option<&str>,
    stat: bool,
    quiet: bool,
) -> Result<ExitCode> {
    let (old, new) = ctx.sides(old, new, true)?;
    let pair = Pair::read(&old, &new, &ctx.config.firewall_script)?;
    let cmp = compare(&pair, &ctx.config)?;
    let live = recorded_runtime(&pair, &cmp);
    let plan = plan::plan(&pair, &cmp, &ctx.config)?;
    let needs = cmp.needs_restore();
    let attention = cmp.needs_attention();
    let report = Report {
        kept: Vec::new(),
        command: "diff",
        old: Side::of(&old),
        new: Side::of(&new),
        changes: plan.changes.iter().map(|c| ChangeReport::new(c, None, json)).collect(),
        comparison: cmp,
        dry_run: false,
        live,
        outcome: if needs {
            Outcome::Restorable
        } else {
            Outcome::NothingToRestore
        },
    };
    if json || !quiet {
        super::print(json, &report, || {
            if stat {
                render_stat(&report)
            } else {
                report.render(super::group_limit())
            }
        })?;
    }
    Ok(if needs || attention {
        ExitCode::Differs
    } else {
        ExitCode::Success
    })
}
