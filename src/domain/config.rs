//! The optional configuration file (`ROOT/etc/iwss-keeper/config.toml`).

use std::collections::BTreeMap;

use anyhow::{bail, Result};
use serde::Deserialize;

use crate::domain::version::Product;

/// Default location of the version file. No public source names the file that holds the
/// appliance's version, so this is an assumption; set `version_file` to the real one.
pub const DEFAULT_VERSION_FILE: &str = "/usr/iwss/version";

/// Settings, every one with a default.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Absolute path, inside the root, of a file whose text holds the product version.
    pub version_file: String,
    /// Product to assume when the version text names none (`IWSVA` or `IWSS`).
    pub product: Option<Product>,
    /// The appliance firewall script.
    pub firewall_script: String,
    /// sysctl keys whose pre-upgrade value is kept.
    pub managed_sysctl: Vec<String>,
    /// The custom value of a managed key; it is restored only when the system had it before the
    /// upgrade. Keys not listed here keep whatever value they had before.
    pub sysctl_values: BTreeMap<String, String>,
    /// Extra rules (any spelling) to restore when an upgrade discards them, besides ACCEPT rules
    /// with a source address.
    pub keep_rules: Vec<String>,
    /// Seconds the firewall restart may take before it is stopped and rolled back.
    pub restart_timeout_secs: u64,
    /// Where the upgrade runs `pre-install.d/` and `post-install.d/` scripts. No public source
    /// says where IWSVA/IWSS upgrades look for hooks: this default is an assumption.
    pub hook_dir: String,
    /// In hook mode, exit non-zero on failure (and so fail the upgrade) instead of exiting 0.
    pub strict: bool,
    /// Snapshots kept; older ones are pruned, except the newest pre-upgrade one and one a pending
    /// restore needs.
    pub keep_snapshots: usize,
    /// Seconds a run waits for another run's lock before giving up.
    pub lock_timeout_secs: u64,
    /// Seconds a whole hook run may take; then it stops, leaves a pending marker and exits.
    pub hook_timeout_secs: u64,
    /// Seconds a firewall restart running when a hook is sent SIGTERM, SIGINT or SIGHUP may take
    /// to finish (killing it can leave a half-loaded ruleset under policy DROP); then it is
    /// stopped and the previous files and restart are put back.
    pub signal_grace_secs: u64,
    /// MiB one run may read in all (the files of the root and of the snapshots it compares).
    pub read_budget_mib: u64,
    /// Discarded lines the admin decided not to restore (refused or not understood ones, in the
    /// spelling of `keep_rules` or as the line's text): `status` lists them as ignored.
    pub ignore_rules: Vec<String>,
    /// The widest source a custom ACCEPT rule may name and still be restored as one proxy or
    /// pool, as a prefix length per family; a wider one is restored only through `keep_rules`.
    pub max_source_prefix: SourcePrefix,
}

/// Prefix lengths per family ([`Config::max_source_prefix`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SourcePrefix {
    pub ipv4: u8,
    pub ipv6: u8,
}

impl Default for SourcePrefix {
    fn default() -> Self {
        Self { ipv4: 8, ipv6: 32 }
    }
}

impl Default for Config {
    fn default() -> Self {
        Self {
            version_file: DEFAULT_VERSION_FILE.into(),
            product: None,
            firewall_script: "/usr/iwss/iwsvafw.sh".into(),
            managed_sysctl: vec!["net.ipv4.tcp_rfc1337".into()],
            sysctl_values: BTreeMap::from([("net.ipv4.tcp_rfc1337".into(), "0".into())]),
            keep_rules: Vec::new(),
            restart_timeout_secs: 60,
            hook_dir: "/usr/iwss/hooks".into(),
            strict: false,
            keep_snapshots: 10,
            lock_timeout_secs: 30,
            hook_timeout_secs: 300,
            signal_grace_secs: DEFAULT_SIGNAL_GRACE_SECS,
            ignore_rules: Vec::new(),
            read_budget_mib: DEFAULT_READ_BUDGET_MIB,
            max_source_prefix: SourcePrefix::default(),
        }
    }
}

/// A TOML error as an admin reads it: the types Rust names (`usize`, `a sequence`) in words.
fn in_words(message: &str) -> String {
    let mut out = message.to_string();
    for (rust, words) in [
        ("expected usize", "expected a whole number (0 or more)"),
        ("expected u64", "expected a whole number (0 or more)"),
        ("expected u8", "expected a whole number from 0 to 255"),
        ("expected a boolean", "expected true or false"),
        ("expected a sequence", "expected a list, like [\"a\", \"b\"]"),
        ("expected a map", "expected a table, like { key = \"value\" }"),
        (
            "expected struct SourcePrefix",
            "expected a table, like { ipv4 = 8, ipv6 = 32 }",
        ),
    ] {
        out = out.replace(rust, words);
    }
    out
}

/// `signal_grace_secs` unless set: a restart's time to finish after a signal.
pub const DEFAULT_SIGNAL_GRACE_SECS: u64 = 30;

/// `read_budget_mib` unless set.
pub const DEFAULT_READ_BUDGET_MIB: u64 = 256;

/// The article's sysctl key, which the default configuration checks.
pub const RFC1337: &str = "net.ipv4.tcp_rfc1337";

/// The longest timeout a setting may give: a day.
pub const MAX_TIMEOUT_SECS: u64 = 86_400;

impl Config {
    /// Settings that stop the tool checking a fix of the article, in words.
    pub fn warnings(&self) -> Vec<String> {
        let checked = self.managed_sysctl.iter().any(|k| k.replace('/', ".") == RFC1337);
        if checked {
            return Vec::new();
        }
        vec![format!(
            "managed_sysctl does not list {RFC1337}: the article's sysctl fix is not checked (`status` cannot tell)"
        )]
    }

    /// Whether `ignore_rules` names a discarded line: its rule in any spelling, or its text.
    pub fn ignores(&self, text: &str, canonical: &str) -> bool {
        self.ignore_rules.iter().any(|entry| {
            entry.trim() == text.trim()
                || crate::domain::rule::parse_call(entry, None)
                    .ok()
                    .flatten()
                    .is_some_and(|r| r.canonical() == canonical)
        })
    }

    /// Parses configuration text; `origin` names the file in errors.
    pub fn parse(text: &str, origin: &str) -> Result<Self> {
        let config: Self = toml::from_str(text).map_err(|e| {
            let line = e
                .span()
                .map(|s| text[..s.start.min(text.len())].matches('\n').count() + 1);
            let at = line.map_or(String::new(), |l| format!(":{l}"));
            anyhow::anyhow!("{origin}{at}: {}", in_words(e.message()))
        })?;
        // `origin:LINE` of the line that sets `key`, or `origin` when the default applies.
        let at = |key: &str| {
            text.lines()
                .position(|l| {
                    l.trim_start()
                        .strip_prefix(key)
                        .is_some_and(|r| r.trim_start().starts_with('='))
                })
                .map_or(origin.to_string(), |n| format!("{origin}:{}", n + 1))
        };
        for (name, path) in [
            ("version_file", &config.version_file),
            ("firewall_script", &config.firewall_script),
            ("hook_dir", &config.hook_dir),
        ] {
            if !path.starts_with('/') || path.split('/').any(|c| c == "..") {
                bail!(
                    "{}: {name} must be an absolute path without `..`, not {path:?}",
                    at(name)
                );
            }
        }
        for key in &config.managed_sysctl {
            let well_formed = !key.is_empty()
                && key.bytes().all(|b| b.is_ascii_alphanumeric() || b"._-/".contains(&b))
                && (key.contains('.') || key.contains('/'))
                && !key.split(['.', '/']).any(|c| c.is_empty() || c == "..");
            if !well_formed {
                bail!(
                    "{}: managed_sysctl entry {key:?} is not a sysctl key (like net.ipv4.tcp_rfc1337)",
                    at("managed_sysctl")
                );
            }
        }
        let prefix = config.max_source_prefix;
        if prefix.ipv4 > 32 || prefix.ipv6 > 128 {
            bail!(
                "{}: max_source_prefix must be at most 32 for ipv4 and 128 for ipv6, not {} and {}",
                at("max_source_prefix"),
                prefix.ipv4,
                prefix.ipv6
            );
        }
        if !(1..=1024 * 1024).contains(&config.read_budget_mib) {
            bail!(
                "{}: read_budget_mib must be from 1 to 1048576, not {}",
                at("read_budget_mib"),
                config.read_budget_mib
            );
        }
        if config.keep_snapshots == 0 {
            bail!("{}: keep_snapshots must be at least 1", at("keep_snapshots"));
        }
        for (name, secs) in [
            ("restart_timeout_secs", config.restart_timeout_secs),
            ("lock_timeout_secs", config.lock_timeout_secs),
            ("hook_timeout_secs", config.hook_timeout_secs),
            ("signal_grace_secs", config.signal_grace_secs),
        ] {
            if !(1..=MAX_TIMEOUT_SECS).contains(&secs) {
                bail!(
                    "{}: {name} must be from 1 to {MAX_TIMEOUT_SECS} (seconds), not {secs}",
                    at(name)
                );
            }
        }
        // Entries are written into a root script when restored: the strict grammar applies now.
        for entry in &config.keep_rules {
            if let Err(why) = crate::domain::firewall::check_restorable(
                format!("IPTABLE {entry}").as_bytes(),
                crate::domain::rule::Iptables::Any,
            ) {
                let line = text
                    .lines()
                    .position(|l| l.contains(entry.as_str()))
                    .map_or(String::new(), |n| format!(":{}", n + 1));
                bail!("{origin}{line}: keep_rules entry {entry:?} is not a rule the tool can restore: {why}");
            }
        }
        Ok(config)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_cover_the_article() {
        let c = Config::parse("", "c.toml").unwrap();
        assert_eq!(c.firewall_script, "/usr/iwss/iwsvafw.sh");
        assert_eq!(c.managed_sysctl, ["net.ipv4.tcp_rfc1337"]);
        assert_eq!(c.sysctl_values["net.ipv4.tcp_rfc1337"], "0");
    }

    /// The example the package installs as `/etc/iwss-keeper/config.toml` must say the truth:
    /// as shipped it changes nothing, and each commented setting shows the real default.
    #[test]
    fn packaged_example_shows_the_defaults() {
        let example = include_str!("../../contrib/rpm/config.toml");
        assert_eq!(Config::parse(example, "example").unwrap(), Config::default());
        let setting = |l: &str| {
            l.strip_prefix("# ")
                .filter(|r| {
                    r.split_once(" = ")
                        .is_some_and(|(k, _)| k.chars().all(|c| c.is_ascii_lowercase() || c == '_'))
                })
                .map(str::to_string)
        };
        let (product, rest): (Vec<String>, Vec<String>) = example
            .lines()
            .filter_map(setting)
            .partition(|l| l.starts_with("product = "));
        assert_eq!(rest.len(), 15, "each of the 16 settings is in the example: {rest:?}");
        assert_eq!(Config::parse(&rest.join("\n"), "example").unwrap(), Config::default());
        let with_product = Config::parse(&product.join("\n"), "example").unwrap();
        assert_eq!(with_product.product, Some(Product::Iwsva));
    }

    #[test]
    fn timeouts_and_paths_are_checked_with_their_line() {
        for (text, want) in [
            (
                "strict = false\nrestart_timeout_secs = 0\n",
                "c.toml:2: restart_timeout_secs must be from 1 to 86400",
            ),
            (
                "hook_timeout_secs = 0",
                "c.toml:1: hook_timeout_secs must be from 1 to 86400",
            ),
            (
                "hook_timeout_secs = 9223372036854775807",
                "c.toml:1: hook_timeout_secs must be from 1 to 86400",
            ),
            ("\nhook_dir = \"hooks\"", "c.toml:2: hook_dir must be an absolute path"),
            (
                "managed_sysctl = [\"net..x\"]",
                "c.toml:1: managed_sysctl entry \"net..x\" is not a sysctl key",
            ),
            (
                "managed_sysctl = [\"$(reboot)\"]",
                "c.toml:1: managed_sysctl entry \"$(reboot)\" is not a sysctl key",
            ),
        ] {
            let e = format!("{:#}", Config::parse(text, "c.toml").unwrap_err());
            assert!(e.contains(want), "{e}");
        }
    }

    #[test]
    fn unknown_keys_are_named() {
        let e = Config::parse("version_file = \"/v\"\nfirewal_script = \"/x\"\n", "c.toml").unwrap_err();
        let msg = format!("{e:#}");
        assert!(msg.contains("c.toml:2") && msg.contains("firewal_script"), "{msg}");
    }

    #[test]
    fn keep_rules_pass_the_restorable_grammar_at_load() {
        assert!(Config::parse("keep_rules = [\"-A LOCAL_SERV_IN -p tcp --dport 1812 -j ACCEPT\"]", "c").is_ok());
        for bad in [
            "$(reboot)",
            "-A INPUT -j ACCEPT; reboot",
            "-A INPUT --modprobe=/x -j ACCEPT",
            "-N X",
        ] {
            let e = Config::parse(&format!("\n keep_rules = [{bad:?}]\n"), "c.toml").unwrap_err();
            assert!(
                format!("{e:#}").starts_with("c.toml:2: keep_rules entry"),
                "{bad}: {e:#}"
            );
        }
    }

    #[test]
    fn paths_must_stay_inside_the_root() {
        assert!(Config::parse("version_file = \"../etc/v\"", "c").is_err());
        assert!(Config::parse("firewall_script = \"/usr/../../x\"", "c").is_err());
        let c = Config::parse("version_file = \"/opt/v\"\nproduct = \"IWSS\"", "c").unwrap();
        assert_eq!((c.version_file.as_str(), c.product), ("/opt/v", Some(Product::Iwss)));
    }
}
