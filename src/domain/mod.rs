//! The pure core: bytes and snapshots in, decisions out. Nothing here touches the disk, runs a
//! program or knows a layer above it (`tests/integration/layers.rs` tests that).

pub mod compare;
pub mod config;
pub mod firewall;
pub mod loaded;
pub mod plan;
pub mod report;
pub mod rule;
pub mod shell;
pub mod snapshot;
pub mod steps;
pub mod sysctl;
pub mod version;
