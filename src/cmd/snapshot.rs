//! `snapshot`: record the configuration now and print the snapshot's id.

use anyhow::Result;

use crate::context::Context;
use crate::exit_codes::ExitCode;

pub fn run(ctx: &Context, json: bool, label: Option<String>) -> Result<ExitCode> {
    let snap = ctx.record(label)?;
    super::print(json, &snap.manifest, || format!("{}\n", snap.manifest.id))?;
    Ok(ExitCode::Success)
}
