//! The appliance: safe file I/O, capture of a tree, the programs the tool runs, what iptables has
//! loaded, and running sysctl values. Every path resolves under one [`crate::root::Root`].

pub mod capture;
pub mod fsutil;
pub mod iptables;
pub mod process;
pub mod procsys;
pub mod signals;
pub mod trust;
mod xattr;
