//! One file per subcommand. Only this layer prints and knows `--json`; everything below returns
//! typed results.

mod colour;
mod diff;
mod docs;
mod hook;
mod list;
mod prune;
mod register;
mod restore;
mod show;
mod snapshot;
mod status;
mod undo;

use anyhow::Result;
use serde::Serialize;

use crate::cli::{Cli, Command};
use crate::context::Context;
use crate::exit_codes::ExitCode;
use crate::logging;
use crate::root::Root;
use crate::store::lock::Lock;

/// The version of the JSON documents' layout (`schema/iwss-keeper.schema.json`); raised when a
/// field changes meaning or goes away.
pub const SCHEMA_VERSION: u32 = 2;

/// One JSON document: the schema version, the report's fields, and the error a run ended with.
#[derive(Serialize)]
struct Doc<'a, T: Serialize> {
    schema_version: u32,
    #[serde(flatten)]
    body: &'a T,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
}

/// The JSON document of a run, with its error if it failed.
pub fn json_doc<T: Serialize>(value: &T, error: Option<String>) -> Result<String> {
    let doc = Doc {
        schema_version: SCHEMA_VERSION,
        body: value,
        error,
    };
    Ok(serde_json::to_string_pretty(&doc)? + "\n")
}

/// The JSON document of a run that ended with an error and no report of its own.
pub fn error_doc(message: &str, code: ExitCode) -> String {
    let failed = serde_json::json!({ "error": message, "exit_code": code.code() });
    json_doc(&failed, None).unwrap_or_else(|_| "{}\n".into())
}

static VERBOSE: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
/// Whether text reports are coloured ([`crate::cli::ColorWhen`], decided once).
static COLOR: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// How many lines per group a text report shows: all under `-v`.
pub fn group_limit() -> Option<usize> {
    (!VERBOSE.load(std::sync::atomic::Ordering::Relaxed)).then_some(crate::domain::report::GROUP_LINES)
}

/// Prints a text report (control bytes escaped), coloured when [`COLOR`] says so.
fn print_text(text: &str) -> Result<()> {
    let text = logging::printable(text);
    if COLOR.load(std::sync::atomic::Ordering::Relaxed) {
        return write_stdout(colour::paint(&text).as_bytes());
    }
    write_stdout(text.as_bytes())
}

/// Whether text reports are coloured: `always`; `auto` on a terminal whose TERM is not `dumb`,
/// unless NO_COLOR is set; never under `--json`.
fn use_colour(when: crate::cli::ColorWhen, json: bool) -> bool {
    use std::io::IsTerminal as _;
    let tty = || {
        std::io::stdout().is_terminal()
            && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
            && std::env::var("TERM").map_or(true, |t| t != "dumb")
    };
    !json
        && match when {
            crate::cli::ColorWhen::Always => true,
            crate::cli::ColorWhen::Never => false,
            crate::cli::ColorWhen::Auto => tty(),
        }
}

/// Prints a report as JSON or text, in one write. A reader that went away (`| head`) ends the
/// output quietly, as with other Unix tools; any other write error is an error.
fn print<T: Serialize>(json: bool, value: &T, text: impl FnOnce() -> String) -> Result<()> {
    print_ending(json, value, None, text)
}

/// [`print`] for a run that may have failed: its JSON document carries the `error` it ends with
/// (one document, the report with its error); the text report says it itself.
fn print_ending<T: Serialize>(
    json: bool,
    value: &T,
    error: Option<String>,
    text: impl FnOnce() -> String,
) -> Result<()> {
    if json {
        return write_stdout(json_doc(value, error)?.as_bytes());
    }
    // Control bytes from a rule or a file never reach the terminal raw.
    print_text(&text())
}

/// Writes to stdout; a closed pipe is not an error.
pub fn write_stdout(bytes: &[u8]) -> Result<()> {
    use std::io::Write as _;
    let mut stdout = std::io::stdout().lock();
    match stdout.write_all(bytes).and_then(|()| stdout.flush()) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        Err(e) => Err(anyhow::Error::new(e).context("cannot write the report to stdout")),
    }
}

/// A command line clap refuses. Under `--json` it is one JSON document too, then clap's message
/// (exit 2); help, `--version` and any other refusal are clap's own, with clap's exit.
pub fn usage_error(e: clap::Error) -> ExitCode {
    if !e.use_stderr() || !std::env::args().skip(1).any(|a| a == "--json") {
        e.exit()
    }
    let detail = e.render().to_string();
    let first = detail.lines().next().unwrap_or_default().trim_start_matches("error: ");
    let doc = error_doc(&format!("usage: {first}"), ExitCode::Error);
    let _ = write_stdout(doc.as_bytes());
    let _ = e.print();
    ExitCode::Error
}

/// Runs the command line; the exit code says how it ended.
pub fn run(cli: Cli) -> Result<ExitCode> {
    dispatch(cli)
}

/// Whether the command changes anything (then it logs to a file and holds the lock).
fn changes(command: &Command) -> bool {
    match command {
        Command::Snapshot { .. } | Command::Hook { .. } | Command::Register { .. } | Command::Unregister { .. } => true,
        Command::Restore { dry_run, .. } | Command::Undo { dry_run, .. } => !dry_run,
        Command::Forget { .. } | Command::Prune { .. } | Command::PruneBackups { .. } => true,
        Command::List | Command::Show { .. } | Command::Diff { .. } | Command::Status => false,
        Command::Completions { .. } | Command::Man { .. } => false,
    }
}

/// Logs to `ROOT/var/log/iwss-keeper.log`, and to syslog on the real root.
fn attach_logs(root: &Root) {
    let log_path = root.path("/var/log/iwss-keeper.log");
    if let Err(e) = logging::attach_file(&log_path) {
        log::warn!("cannot log to {}: {e}", log_path.display());
    }
    if root.is_host() {
        logging::attach_syslog();
    }
}

/// Before a run that changes anything: the logs, then the lock.
fn prepare_change(ctx: &Context) -> Result<Lock> {
    attach_logs(&ctx.root);
    let timeout = std::time::Duration::from_secs(ctx.config.lock_timeout_secs);
    Lock::acquire(&ctx.root, &ctx.state, timeout)
}

/// Runs one subcommand.
fn dispatch(cli: Cli) -> Result<ExitCode> {
    if let Command::Hook { event } = cli.command {
        return hook::run_contained(&cli, event);
    }
    VERBOSE.store(cli.verbose > 0, std::sync::atomic::Ordering::Relaxed);
    COLOR.store(use_colour(cli.color, cli.json), std::sync::atomic::Ordering::Relaxed);
    match &cli.command {
        Command::Completions { shell } => return docs::completions(*shell),
        Command::Man { command } => return docs::man(command.as_deref()),
        _ => {}
    }
    let ctx = Context::open(&cli.root, cli.config.as_deref(), cli.state_dir.as_deref())?;
    let json = cli.json;
    let _lock = changes(&cli.command).then(|| prepare_change(&ctx)).transpose()?;
    match cli.command {
        Command::Hook { .. } | Command::Completions { .. } | Command::Man { .. } => {
            unreachable!("handled above, without a root")
        }
        Command::Register { hook_dir } => register::run_register(&ctx, json, hook_dir.as_deref()),
        Command::Unregister { hook_dir } => register::run_unregister(&ctx, json, hook_dir.as_deref()),
        Command::Snapshot { label } => snapshot::run(&ctx, json, label),
        Command::List => list::run(&ctx, json),
        Command::Show { snapshot, file } => show::run(&ctx, json, &snapshot, file.as_deref()),
        Command::Diff { old, new, stat, quiet } => diff::run(&ctx, json, old.as_deref(), new.as_deref(), stat, quiet),
        Command::Undo { dry_run, no_restart } => undo::run(&ctx, json, dry_run, no_restart),
        Command::Forget { snapshot } => prune::forget(&ctx, json, &snapshot),
        Command::Prune { keep } => prune::prune(&ctx, json, keep.unwrap_or(ctx.config.keep_snapshots)),
        Command::PruneBackups { older_than } => prune::prune_backups(&ctx, json, older_than),
        Command::Status => status::run(&ctx, json),
        Command::Restore {
            from,
            dry_run,
            stat,
            no_restart,
        } => restore::run(
            &ctx,
            json,
            stat,
            &crate::restore::RestoreOptions {
                from,
                dry_run,
                no_restart,
                diffs: json,
            },
        ),
    }
}
