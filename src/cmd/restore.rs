//! `restore`: put back what an upgrade discarded, then restart, verify, or roll back.

use anyhow::Result;

use crate::context::Context;
use crate::exit_codes::ExitCode;
use crate::restore::{restore, RestoreOptions};

pub fn run(ctx: &Context, json: bool, opts: &RestoreOptions) -> Result<ExitCode> {
    let r = restore(ctx, opts)?;
    super::print(json, &r.report, || r.report.render())?;
    match r.error() {
        Some(err) => Err(err),
        None if r.report.comparison.needs_attention() => Ok(ExitCode::Differs),
        None => Ok(ExitCode::Success),
    }
}
