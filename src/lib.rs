//! iwss-keeper: snapshot, compare and restore the custom settings IWSVA / IWSS upgrades discard.
//!
//! Layers, each using only the ones below it: `cmd` (one file per subcommand, the only code
//! that prints), `restore` and `setup` (the restore and the install workflows), `context`,
//! `store` (the state directory), `system` (the appliance: files, programs, iptables,
//! /proc/sys), `domain` (pure logic); the leaves `root`, `logging`, `fault` and `exit_codes`
//! anyone may use.

pub mod cli;
pub mod cmd;
pub mod context;
pub mod domain;
pub mod exit_codes;
pub mod fault;
pub mod logging;
pub mod restore;
pub mod root;
pub mod setup;
pub mod store;
pub mod system;

pub use cmd::run;
