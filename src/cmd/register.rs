//! `register` / `unregister`: install or remove the hook scripts and the boot guard
//! ([`crate::setup`]), and print what was done.

use anyhow::Result;

use crate::context::Context;
use crate::exit_codes::{ExitCode, Failure};
use crate::setup::{self, Action, Baseline, FileAction};

fn render_files(files: &[FileAction]) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    for f in files {
        let action = match f.action {
            Action::Installed => "installed",
            Action::Unchanged => "unchanged",
            Action::Removed => "removed",
            Action::Kept => "kept",
        };
        let _ = write!(out, "{action:<10} {}", f.path);
        if let Some(note) = &f.note {
            let _ = write!(out, " ({note})");
        }
        if let Some(b) = &f.backup {
            let _ = write!(out, " (the replaced file saved as {b})");
        }
        out.push('\n');
    }
    out
}

/// `register`: install, record, then a baseline snapshot when one is due.
pub fn run_register(ctx: &Context, json: bool, hook_dir: Option<&str>) -> Result<ExitCode> {
    let report = setup::register(ctx, hook_dir)?;
    super::print(json, &report, || {
        let mut out = render_files(&report.files);
        let line = match &report.snapshot {
            Baseline::Taken { id, version } => format!("snapshot   {id} (baseline, {version})"),
            Baseline::Unchanged { id, version } => {
                format!("snapshot   unchanged: {id} ({version}) holds the live files")
            }
            Baseline::Owed { id, version } => {
                format!("snapshot   none taken: a restore from {id} ({version}) is owed; run `iwss-keeper restore`")
            }
            Baseline::Unknown { id, version, reason } => format!(
                "snapshot   none taken: whether a restore from {id} ({version}) is owed cannot be told: {reason}"
            ),
            Baseline::Failed { reason } => format!("snapshot   FAILED: {reason}"),
        };
        out.push_str(&line);
        out.push('\n');
        out
    })?;
    if let Baseline::Failed { reason } = &report.snapshot {
        let error = anyhow::anyhow!("the hooks are installed, but no baseline snapshot was taken: {reason}");
        return Err(Failure::new(ExitCode::ChangesLeft, error).reported().into());
    }
    Ok(ExitCode::Success)
}

/// `unregister`: remove what `register` installed.
pub fn run_unregister(ctx: &Context, json: bool, hook_dir: Option<&str>) -> Result<ExitCode> {
    let files = setup::unregister(ctx, hook_dir)?;
    super::print(json, &serde_json::json!({ "files": files }), || {
        if files.is_empty() {
            "nothing registered\n".to_string()
        } else {
            render_files(&files)
        }
    })?;
    Ok(ExitCode::Success)
}
