//! `completions SHELL` and `man [COMMAND]`: generated from the command line itself, so a binary
//! installed without the package has them too, and they cannot drift from `--help`.

use anyhow::{bail, Result};
use clap::CommandFactory;

use crate::cli::Cli;
use crate::exit_codes::ExitCode;

/// Prints `shell`'s completion script.
pub fn completions(shell: clap_complete::Shell) -> Result<ExitCode> {
    let mut out = Vec::new();
    clap_complete::generate(shell, &mut Cli::command(), "iwss-keeper", &mut out);
    super::write_stdout(&out)?;
    Ok(ExitCode::Success)
}

/// Prints the man page (roff) of the tool, or of one of its commands.
pub fn man(command: Option<&str>) -> Result<ExitCode> {
    let mut cli = Cli::command();
    cli.build();
    let page = match command {
        None => cli,
        Some(name) => match cli.find_subcommand(name).filter(|c| !c.is_hide_set()) {
            Some(sub) => sub.clone().name(format!("iwss-keeper-{name}")),
            None => bail!("no command {name:?}: see `iwss-keeper --help`"),
        },
    };
    let mut out = Vec::new();
    clap_mangen::Man::new(page).render(&mut out)?;
    super::write_stdout(&out)?;
    Ok(ExitCode::Success)
}
