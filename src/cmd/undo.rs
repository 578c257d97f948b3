//! `undo`: put back the files of the last restore.

use std::fmt::Write as _;

use anyhow::Result;

use crate::context::Context;
use crate::domain::steps;
use crate::exit_codes::{ExitCode, Failure};
use crate::restore::undo::{undo, UndoOutcome, UndoReport};

fn render(r: &UndoReport) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "undo restore {} (restored from {})", r.restore, r.restored_from);
    for f in &r.files {
        let _ = match (f.action, &f.from) {
            ("put-back", Some(from)) => write!(out, "  {}: put back from {from}", f.path),
            _ => write!(out, "  {}: removed (the restore created it)", f.path),
        };
        if let Some(b) = &f.backup {
            let _ = write!(out, "; the restored file saved as {b}");
        }
        out.push('\n');
    }
    for f in &r.files {
        out.push_str(f.diff.as_deref().unwrap_or_default());
    }
    for line in steps::render_limited(&r.live, super::group_limit()) {
        let _ = writeln!(out, "{line}");
    }
    let _ = writeln!(
        out,
        "{}",
        match r.outcome {
            UndoOutcome::Planned => "dry run: nothing was changed",
            UndoOutcome::Undone => "undone",
            UndoOutcome::RolledBack => "FAILED: the restore's files were put back and the firewall restarted",
            UndoOutcome::RollbackIncomplete =>
                "FAILED: putting the restore's files back did not complete (see above); check the files and the firewall by hand",
        }
    );
    out
}

pub fn run(ctx: &Context, json: bool, dry_run: bool, no_restart: bool) -> Result<ExitCode> {
    let r = undo(ctx, dry_run, no_restart)?;
    let error = r.failed.as_ref().map(|step| match r.outcome {
        UndoOutcome::RollbackIncomplete => (
            format!("undo failed at {step}, and putting the restore's files back did not complete"),
            ExitCode::ChangesLeft,
        ),
        _ => (
            format!("undo failed at {step}; the restore's files were put back and the firewall restarted"),
            ExitCode::Error,
        ),
    });
    super::print_ending(json, &r, error.as_ref().map(|(m, _)| m.clone()), || render(&r))?;
    if let Some((message, code)) = error {
        return Err(Failure::new(code, anyhow::Error::msg(message)).reported().into());
    }
    if r.outcome == UndoOutcome::Undone {
        // The newest snapshot must show the undone state, or the boot guard would restore again.
        if let Err(e) = ctx.record(Some(format!("after undo of restore {}", r.restore))) {
            log::error!("no snapshot of the undone state ({e:#}): the boot guard may restore it again; run `iwss-keeper snapshot`");
        }
    }
    Ok(if dry_run && !r.files.is_empty() {
        ExitCode::Differs
    } else {
        ExitCode::Success
    })
}
