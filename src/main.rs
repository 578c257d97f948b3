//! iwss-keeper: keeps IWSVA / IWSS security fixes alive across vendor upgrades.

use clap::Parser;

use iwss_keeper::cli::Cli;
use iwss_keeper::exit_codes::ExitCode;

fn main() -> std::process::ExitCode {
    // A bug must not show a user a backtrace: one line, and the error exit code.
    std::panic::set_hook(Box::new(|info| {
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr(), "iwss-keeper: internal error: {info}");
    }));
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        // A usage error under --json is one JSON document too; help and --version print as usual.
        Err(e) if e.use_stderr() && std::env::args().skip(1).any(|a| a == "--json") => {
            let detail = e.render().to_string();
            let first = detail.lines().next().unwrap_or_default().trim_start_matches("error: ");
            let doc = iwss_keeper::cmd::error_doc(&format!("usage: {first}"), ExitCode::Error);
            let _ = iwss_keeper::cmd::write_stdout(doc.as_bytes());
            let _ = e.print();
            return ExitCode::Error.into();
        }
        Err(e) => e.exit(),
    };
    let json = cli.json;
    iwss_keeper::logging::init(iwss_keeper::logging::level(cli.quiet, cli.verbose));
    match std::panic::catch_unwind(|| iwss_keeper::run(cli)) {
        Ok(Ok(code)) => {
            // -q: a run that found something (exit 1, 4) still says what.
            if code != ExitCode::Success {
                iwss_keeper::cmd::flush_deferred();
            }
            code.into()
        }
        Ok(Err(err)) => {
            iwss_keeper::cmd::flush_deferred();
            use std::io::Write as _;
            let message = format!("{err:#}");
            let _ = writeln!(
                std::io::stderr(),
                "iwss-keeper: {}",
                iwss_keeper::logging::printable(&message)
            );
            iwss_keeper::logging::record_error(&format!("{err:#}"));
            let code = iwss_keeper::cmd::exit_code_of(&err);
            // A report already printed carries its error; otherwise the error is the report.
            if json && !iwss_keeper::cmd::already_reported(&err) {
                let doc = iwss_keeper::cmd::error_doc(&format!("{err:#}"), code);
                let _ = iwss_keeper::cmd::write_stdout(doc.as_bytes());
            }
            code.into()
        }
        Err(_) => ExitCode::Error.into(),
    }
}
