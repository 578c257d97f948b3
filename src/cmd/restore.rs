//! `restore`: put back what an upgrade discarded, then restart, verify, or roll back.

use anyhow::Result;

use crate::context::Context;
use crate::exit_codes::ExitCode;
use crate::restore::{restore, RestoreOptions};

/// Runs `restore`; under `stat` (a dry run) one line per file instead of the plan's diff.
pub fn run(ctx: &Context, json: bool, stat: bool, opts: &RestoreOptions) -> Result<ExitCode> {
    let r = restore(ctx, opts)?;
    let failure = r.error();
    let error = failure.as_ref().map(ToString::to_string);
    super::print_ending(json, &r.report, error, || {
        if stat {
            super::diff::render_stat(&r.report)
        } else {
            r.report.render(super::group_limit())
        }
    })?;
    match failure {
        Some(failure) => Err(failure.reported().into()),
        None if r.report.comparison.needs_attention() => Ok(ExitCode::Differs),
        // A dry run says whether the restore would change something, as `diff` does.
        None if opts.dry_run && r.report.outcome == crate::domain::report::Outcome::Planned => Ok(ExitCode::Differs),
        None => Ok(ExitCode::Success),
    }
}
