//! iwss-keeper: snapshot, compare and restore the custom settings IWSVA / IWSS upgrades discard.

pub mod activate;
pub mod apply;
pub mod cli;
pub mod commands;
pub mod compare;
pub mod config;
pub mod exit_codes;
pub mod fault;
pub mod firewall;
pub mod fsutil;
pub mod hooks;
pub mod live;
pub mod lock;
pub mod logging;
pub mod plan;
pub mod register;
pub mod report;
pub mod root;
pub mod rule;
pub mod runtime;
pub mod show;
pub mod snapshot;
pub mod status;
pub mod sysctl;
pub mod version;

pub use commands::run;
