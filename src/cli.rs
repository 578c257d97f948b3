//! Command-line interface.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

/// The exit codes, as `--help` and the man page list them.
const EXIT_CODES: &str = "Exit codes:
  0  done, or nothing owed
  1  something owed, missing or refused (diff, status, restore with REFUSED lines); for
     status also: a line that ran is not restored, a restore is pending, or protection is
     not set up (no snapshot, hooks or guard not registered); status names the command
  2  an error, and nothing was changed
  3  an error with changes left in place (each file named; the firewall state said)
  4  status cannot tell (part of the state cannot be read, or a setting stops tcp_rfc1337
     being checked); 1 wins over 4";

/// Keeps an admin's IWSVA / IWSS 6.5 security fixes (tcp_rfc1337=0, custom firewall ACCEPT
/// rules) alive across service-pack and patch upgrades.
#[derive(Debug, Parser)]
#[command(name = "iwss-keeper", version, about, max_term_width = 100, after_long_help = EXIT_CODES)]
pub struct Cli {
    /// Resolve every path the tool reads, writes or runs under this directory
    #[arg(long, global = true, value_name = "DIR", default_value = "/")]
    pub root: PathBuf,

    /// Where snapshots and state live [default: ROOT/var/lib/iwss-keeper]
    #[arg(long, global = true, value_name = "DIR")]
    pub state_dir: Option<PathBuf>,

    /// Configuration file [default: ROOT/etc/iwss-keeper/config.toml, optional]
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// Print a machine-readable JSON report instead of text
    #[arg(long, global = true)]
    pub json: bool,

    /// Log more to stderr (repeat for debug detail)
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,

    /// Say less on stderr: only errors, no informational lines (reports and ids on stdout are
    /// printed as always); before the subcommand
    #[arg(short, long, conflicts_with = "verbose")]
    pub quiet: bool,

    /// Colour: diff lines, REFUSED/MISSING/FAILED, kept/restored; `auto` only on a terminal and
    /// without NO_COLOR, `always` even piped, never in --json
    #[arg(long, global = true, value_enum, value_name = "WHEN", default_value = "auto")]
    pub color: ColorWhen,

    #[command(subcommand)]
    pub command: Command,
}

/// When text output is coloured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ColorWhen {
    /// On a terminal, unless NO_COLOR is set
    Auto,
    Always,
    Never,
}

/// The subcommands, in the order an admin uses them.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Say whether protection is set up and every fix is in place (exit 0), what is missing and
    /// the command that fixes it (exit 1), or that part cannot be told (exit 4)
    Status,
    /// Compare two states by meaning; exit 0 = nothing to restore, 1 = something to restore
    Diff {
        /// Old state [default: newest snapshot from an older version than the live system]
        old: Option<String>,
        /// New state [default: the live system]
        new: Option<String>,
        /// One line per file: rules to restore, rules skipped, sysctl values to set
        #[arg(long, conflicts_with = "quiet")]
        stat: bool,
        /// Print nothing; the exit code says it all
        #[arg(short, long)]
        quiet: bool,
    },
    /// Restore what an upgrade discarded (custom ACCEPT rules, managed sysctl values)
    Restore {
        /// State to restore from [default: newest snapshot from an older version]
        #[arg(long, value_name = "SNAPSHOT")]
        from: Option<String>,
        /// Change nothing; print the plan (its diff capped, -v all); exit 1 when it would change
        /// something
        #[arg(long)]
        dry_run: bool,
        /// With --dry-run: one line per file instead of the diff
        #[arg(long, requires = "dry_run")]
        stat: bool,
        /// Do not restart the firewall after rewriting its script
        #[arg(long)]
        no_restart: bool,
    },
    /// Put back the files of the last restore from its backups, restart and verify
    Undo {
        /// Change nothing; print what would be put back as unified diffs
        #[arg(long)]
        dry_run: bool,
        /// Do not restart the firewall after putting its script back
        #[arg(long)]
        no_restart: bool,
    },
    /// Record the configuration now and print the snapshot's id
    Snapshot {
        /// A note stored with the snapshot (e.g. "before SP3")
        #[arg(long, value_name = "TEXT")]
        label: Option<String>,
    },
    /// List snapshots, newest last: id, local time, version, label; `*` marks the one a plain
    /// `restore` uses
    List,
    /// Show what one snapshot holds
    Show {
        /// Snapshot id or any unique part of one, snapshot directory, or a root tree read now
        snapshot: String,
        /// Print this file (appliance path) as the snapshot holds it
        #[arg(long, value_name = "PATH")]
        file: Option<String>,
    },
    /// Remove one snapshot (never one a pending restore or the next restore needs)
    Forget {
        /// Snapshot id or any unique part of one
        snapshot: String,
    },
    /// Remove the oldest snapshots, keeping the newest N (and any a restore needs)
    Prune {
        /// How many snapshots to keep [default: config `keep_snapshots`, 10]
        #[arg(long, value_name = "N")]
        keep: Option<usize>,
    },
    /// Remove the tool's own `.org.STAMP` backups older than DAYS days (known from its records)
    PruneBackups {
        /// Age in days
        #[arg(long, value_name = "DAYS")]
        older_than: u64,
    },
    /// Install the hook scripts and a boot guard, and take a baseline snapshot
    Register {
        /// Where the upgrade runs hook scripts [default: config `hook_dir`, /usr/iwss/hooks]
        #[arg(long, value_name = "DIR")]
        hook_dir: Option<String>,
    },
    /// Remove the hook scripts and the boot guard that `register` installed
    Unregister {
        /// Where the hook scripts were installed [default: config `hook_dir`]
        #[arg(long, value_name = "DIR")]
        hook_dir: Option<String>,
    },
    /// Print the completion script for a shell (e.g. `iwss-keeper completions bash >
    /// /etc/bash_completion.d/iwss-keeper`)
    Completions {
        /// bash, zsh, fish, elvish or powershell
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the man page of the tool or of one command (`iwss-keeper man restore | man -l -`)
    Man {
        /// A command [default: the tool's own page]
        command: Option<String>,
    },
    /// Run as an upgrade hook: quiet, never prompts, exits 0 on failure unless `strict`
    #[command(hide = true)]
    Hook {
        /// Which moment of the upgrade
        #[arg(value_enum)]
        event: Event,
    },
}

/// The moments hook mode handles.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Event {
    /// Before an upgrade package installs: take a snapshot.
    PreInstall,
    /// After it installed: restore, restart, verify.
    PostInstall,
    /// At boot: run post-install if the version changed since the newest snapshot, or a restore is
    /// pending.
    Boot,
}

impl Event {
    /// The name hook scripts pass and the log shows.
    pub fn name(self) -> &'static str {
        match self {
            Self::PreInstall => "pre-install",
            Self::PostInstall => "post-install",
            Self::Boot => "boot",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_is_well_formed() {
        Cli::command().debug_assert();
    }
}
