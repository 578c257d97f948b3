//! Writes the man pages and shell completions the package ships, generated from the CLI itself so
//! they cannot drift from `--help`. Usage: `cargo run --example man-and-completions -- OUT_DIR`
//! (`scripts/release.sh` runs it): OUT_DIR/man/*.1 and OUT_DIR/completions/{bash,zsh,fish}.

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::CommandFactory;
use clap_complete::Shell;
use iwss_keeper::cli::Cli;

fn main() -> Result<()> {
    let out = PathBuf::from(
        std::env::args_os()
            .nth(1)
            .context("usage: man-and-completions OUT_DIR")?,
    );
    let man = out.join("man");
    std::fs::create_dir_all(&man).with_context(|| format!("cannot create {}", man.display()))?;
    // One page for the tool and one per subcommand (`iwss-keeper-restore.1`, ...), each with the
    // global options it inherits.
    clap_mangen::generate_to(Cli::command(), &man).with_context(|| format!("cannot write {}", man.display()))?;
    let completions = out.join("completions");
    std::fs::create_dir_all(&completions).with_context(|| format!("cannot create {}", completions.display()))?;
    for shell in [Shell::Bash, Shell::Zsh, Shell::Fish] {
        let path = clap_complete::generate_to(shell, &mut Cli::command(), "iwss-keeper", &completions)
            .with_context(|| format!("cannot write {shell} completions under {}", completions.display()))?;
        println!("{}", path.display());
    }
    Ok(())
}
