//! `diff`: compare two states by meaning; exit 1 when something is to restore.

use anyhow::Result;

use crate::context::Context;
use crate::domain::compare::{compare, recorded_runtime, Pair};
use crate::domain::plan;
use crate::domain::report::{ChangeReport, Outcome, Report, Side};
use crate::exit_codes::ExitCode;

pub fn run(ctx: &Context, json: bool, old: Option<&str>, new: Option<&str>) -> Result<ExitCode> {
    let (old, new) = ctx.sides(old, new)?;
    let pair = Pair::read(&old, &new, &ctx.config.firewall_script)?;
    let cmp = compare(&pair, &ctx.config)?;
    let plan = plan::plan(&pair, &cmp, &ctx.config)?;
    let needs = cmp.needs_restore();
    let attention = cmp.needs_attention();
    let live = recorded_runtime(&old, &new, &ctx.config)?;
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
    super::print(json, &report, || report.render())?;
    Ok(if needs || attention {
        ExitCode::Differs
    } else {
        ExitCode::Success
    })
}
