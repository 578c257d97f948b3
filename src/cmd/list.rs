//! `list`: the stored snapshots, oldest first.

use std::fmt::Write as _;

use anyhow::Result;

use crate::context::Context;
use crate::exit_codes::ExitCode;

pub fn run(ctx: &Context, json: bool) -> Result<ExitCode> {
    let manifests = ctx.state.snapshots().manifests()?;
    super::print(json, &serde_json::json!({ "snapshots": manifests }), || {
        let mut out = String::new();
        let w = manifests.iter().map(|m| m.id.len()).max().unwrap_or(2).max(2);
        let v = manifests
            .iter()
            .map(|m| m.version.to_string().len())
            .max()
            .unwrap_or(7)
            .max(7);
        let _ = writeln!(out, "{:w$}  {:20}  {:v$}  LABEL", "ID", "CREATED", "VERSION");
        for m in &manifests {
            let _ = writeln!(
                out,
                "{:w$}  {:20}  {:v$}  {}",
                m.id,
                m.created,
                m.version.to_string(),
                m.label.as_deref().unwrap_or("")
            );
        }
        out
    })?;
    Ok(ExitCode::Success)
}
