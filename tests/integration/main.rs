//! The integration tests: one binary (one link step), a module per concern, one test
//! environment ([`testenv`]).

mod admin;
mod bash_diff;
mod cases;
mod commands;
mod crash;
mod disk;
mod failures;
mod fleet;
mod hooks;
mod hostile;
mod layers;
mod live;
mod live_only;
mod opened;
mod package;
mod properties;
mod readme;
mod refused;
mod register;
mod rule_diff;
mod schema;
mod shell;
mod sysctl_diff;
mod terminal;
mod testenv;
mod trust;
mod trusted_source;
mod truth;
