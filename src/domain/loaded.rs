//! What the running firewall has loaded, read from an `iptables -S` dump with the same rule model
//! as the scripts: the one answer to "is this rule loaded?", for `status`, verification after a
//! restart, and the recorded runtime `diff` shows beside the files.

use serde::{Serialize, Serializer};
use std::collections::HashSet;

use crate::domain::rule::{self, Family, Rule};

/// The rules one family and table has loaded, by key.
#[derive(Debug, Clone, Default)]
pub struct LoadedSet {
    keys: HashSet<u128>,
    /// Whether the vendor's stateful rule is loaded: the firewall is up.
    pub up: bool,
}

impl LoadedSet {
    /// Reads `iptables [-t TABLE] -S` output: every `-A` line, as `family` and `table`.
    pub fn parse(dump: &str, family: Family, table: &str) -> Self {
        let mut up = false;
        let keys = dump
            .lines()
            .filter(|l| l.starts_with("-A "))
            .filter_map(|l| {
                let call = if table == "filter" {
                    rule::parse_dump_line(l, Some(family))
                } else {
                    rule::parse_dump_line(&format!("-t {table} {l}"), Some(family))
                };
                call.ok().flatten()
            })
            .map(|r| {
                up |= r.is_stateful_accept();
                r.key().hash()
            })
            .collect();
        Self { keys, up }
    }

    pub fn contains(&self, rule: &rule::RuleKey) -> bool {
        self.keys.contains(&rule.hash())
    }
}

/// Whether a rule is loaded in one family.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RuleState {
    Loaded,
    Missing,
    /// The loaded rules could not be read.
    Unknown,
}

impl RuleState {
    /// One word for the state, as every report says it: `loaded`, `missing` or `unknown`.
    pub fn name(self) -> &'static str {
        match self {
            RuleState::Loaded => "loaded",
            RuleState::Missing => "missing",
            RuleState::Unknown => "unknown",
        }
    }

    /// The state a recorded answer gives: loaded, not loaded, or not known (`None`).
    pub fn recorded(loaded: Option<bool>) -> Self {
        match loaded {
            Some(true) => RuleState::Loaded,
            Some(false) => RuleState::Missing,
            None => RuleState::Unknown,
        }
    }

    /// The word the text reports use: `loaded`, and the states that need a look in capitals,
    /// `MISSING` and `UNKNOWN`.
    pub fn word(self) -> &'static str {
        match self {
            RuleState::Loaded => "loaded",
            RuleState::Missing => "MISSING",
            RuleState::Unknown => "UNKNOWN",
        }
    }

    /// The JSON spelling: `true`, `false`, or `null` when unknown.
    fn serialize_as_bool<S: Serializer>(state: &RuleState, s: S) -> Result<S::Ok, S::Error> {
        match state {
            RuleState::Loaded => s.serialize_some(&true),
            RuleState::Missing => s.serialize_some(&false),
            RuleState::Unknown => s.serialize_none(),
        }
    }
}

/// Whether a rule is loaded, in one family it reaches.
#[derive(Debug, Clone, Serialize)]
pub struct Loaded {
    /// Canonical spelling.
    pub rule: String,
    pub family: Family,
    #[serde(rename = "loaded", serialize_with = "RuleState::serialize_as_bool")]
    pub state: RuleState,
    pub detail: String,
}

impl Loaded {
    /// Looks `rule` up in what `family` has loaded (`Err`: why that could not be read).
    pub fn of(rule: &Rule, family: Family, set: Result<&LoadedSet, &str>) -> Self {
        let (state, detail) = match set {
            Ok(set) if set.contains(rule.key()) => (RuleState::Loaded, "loaded".to_string()),
            Ok(_) => (RuleState::Missing, "not loaded".to_string()),
            Err(why) => (RuleState::Unknown, why.to_string()),
        };
        Self {
            rule: rule.canonical().to_string(),
            family,
            state,
            detail,
        }
    }
}
