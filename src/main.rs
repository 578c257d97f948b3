//! iwss-keeper: keeps IWSVA / IWSS security fixes alive across vendor upgrades.

use std::io::Write as _;

use clap::Parser;

use iwss_keeper::cli::Cli;
use iwss_keeper::exit_codes::{ExitCode, Failure};
use iwss_keeper::{cmd, logging};

fn main() -> std::process::ExitCode {
    // A bug must not show a user a backtrace: one line, and the error exit code.
    std::panic::set_hook(Box::new(|info| {
        let _ = writeln!(std::io::stderr(), "iwss-keeper: internal error: {info}");
    }));
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => return cmd::usage_error(e).into(),
    };
    let json = cli.json;
    logging::init(logging::level(cli.quiet, cli.verbose));
    let code = match std::panic::catch_unwind(|| iwss_keeper::run(cli)) {
        Ok(Ok(code)) => code,
        Ok(Err(err)) => fail(Failure::of(err), json),
        Err(_) => ExitCode::Error,
    };
    code.into()
}

/// Says once why the run failed: on stderr and in the log, and under `--json` as the document
/// unless the report printed already holds the error.
fn fail(failure: Failure, json: bool) -> ExitCode {
    let message = failure.message();
    let _ = writeln!(std::io::stderr(), "iwss-keeper: {}", logging::printable(&message));
    logging::record_error(&message);
    if json && !failure.reported {
        let _ = cmd::write_stdout(cmd::error_doc(&message, failure.code).as_bytes());
    }
    failure.code
}
