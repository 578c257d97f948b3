//! iwss-keeper: keeps IWSVA / IWSS security fixes alive across vendor upgrades.

use clap::Parser;

use iwss_keeper::cli::Cli;
use iwss_keeper::exit_codes::ExitCode;

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let json = cli.json;
    iwss_keeper::logging::init(iwss_keeper::logging::level(cli.quiet, cli.verbose));
    match iwss_keeper::run(cli) {
        Ok(code) => code.into(),
        Err(err) => {
            eprintln!("iwss-keeper: {err:#}");
            iwss_keeper::logging::record_error(&format!("{err:#}"));
            if json {
                println!("{}", serde_json::json!({ "error": format!("{err:#}") }));
            }
            ExitCode::Error.into()
        }
    }
}
