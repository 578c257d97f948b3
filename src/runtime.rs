//! What is live on the running system: loaded iptables rules and running sysctl values.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Live state recorded with a snapshot.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Runtime {
    /// `iptables -S` output, when iptables could be run.
    pub iptables: Option<String>,
    /// `ip6tables -S` output, when ip6tables could be run.
    pub ip6tables: Option<String>,
    /// Running value of each managed sysctl key (dotted), from `/proc/sys`.
    pub sysctl: BTreeMap<String, String>,
}
