//! Semantic comparison of two snapshots: which rules the upgrade discarded and which managed
//! sysctl values it changed, with what to do about each.

use std::borrow::Cow;
use std::collections::HashSet;

use anyhow::{anyhow, Result};
use serde::Serialize;

use crate::domain::config::Config;
use crate::domain::firewall::{self, RuleIndex, Script};
use crate::domain::loaded::LoadedSet;
use crate::domain::rule::{self, Family, Iptables, Rule, RuleKey, Source};
use crate::domain::snapshot::Snapshot;
use crate::domain::steps::Step;
use crate::domain::sysctl::{self, SysctlFinding};

/// A rule the old script had and the new one lacks in every spelling.
#[derive(Debug, Clone, Default, Serialize)]
pub struct DiscardedRule {
    /// Line in the old script (first physical line).
    pub line: usize,
    /// The line as written.
    pub text: String,
    /// Canonical spelling.
    pub canonical: String,
    pub family: Option<Family>,
    /// Whether `restore` puts it back.
    pub restore: bool,
    /// Not restored, but the admin should look: a line the tool cannot read, or a custom rule
    /// the restorable grammar refuses.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub attention: bool,
    /// Why, in words (the group's reason, then this rule's detail when it has one). Most are
    /// one of a few fixed texts, shared rather than copied per rule.
    pub reason: Cow<'static, str>,
    /// The reason shared by every rule of its group, without this rule's detail: what the
    /// text report groups by.
    #[serde(skip)]
    pub group: Cow<'static, str>,
    /// This rule's own part of the reason (what iptables or the grammar said of it).
    #[serde(skip)]
    pub detail: Option<String>,
    /// Index of the logical line in the old script.
    #[serde(skip)]
    pub index: usize,
    /// The kernel did not have it loaded when the old snapshot was taken: owed by nobody.
    #[serde(skip)]
    pub never_loaded: bool,
    /// The exact bytes the restorable grammar accepted, when it did (only [`compare`] sets
    /// them): the plan writes a line only when its bytes are the ones checked.
    #[serde(skip)]
    checked: Option<Box<[u8]>>,
}

impl DiscardedRule {
    /// Whether `raw` are the bytes the restorable grammar accepted for this rule.
    pub fn checked_as(&self, raw: &[u8]) -> bool {
        self.checked.as_deref() == Some(raw)
    }

    /// Takes a rule that was to be restored out of the restore: it does not run as the
    /// anchor does (`why`). The admin looks at it: whether it ran before cannot be told.
    fn not_live(&mut self, why: &str) {
        self.withdraw(&format!("{why}; not restored"));
    }

    /// Takes a rule that was to be restored out of the restore: the kernel did not have it
    /// loaded when the old snapshot was taken.
    fn not_loaded(&mut self) {
        self.withdraw("not loaded when the snapshot was taken; not restored unless keep_rules names it");
        self.never_loaded = true;
    }

    /// Takes a rule out of the restore for the admin to look at: its reason, `but` `why`.
    fn withdraw(&mut self, why: &str) {
        let base = std::mem::take(&mut self.reason);
        (self.restore, self.attention, self.checked) = (false, true, None);
        self.group = format!("{base}, but {why}").into();
        self.reason = self.group.clone();
    }

    /// Refuses a rule that was to be restored: not restored, for the admin to look at, `why`
    /// shown with it (what the restorable grammar or iptables said).
    fn refuse(&mut self, why: String) {
        let base = std::mem::take(&mut self.reason);
        (self.restore, self.attention, self.checked) = (false, true, None);
        self.group = format!("{base}, but refused; not restored").into();
        self.reason = format!("{base}, but refused: {why}; not restored").into();
        self.detail = Some(why);
    }
}

/// The result of comparing an old snapshot with a new one.
#[derive(Debug, Clone, Serialize)]
pub struct Comparison {
    /// The firewall script path both sides were read from, when either has one.
    pub firewall_script: Option<String>,
    pub discarded: Vec<DiscardedRule>,
    pub sysctl: Vec<SysctlFinding>,
    /// What the rules loaded when the old snapshot was taken told, when it recorded them.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kernel_evidence: Option<String>,
}

impl Comparison {
    /// Discarded rules by decision: (to restore, skipped, refused).
    pub fn counts(&self) -> (usize, usize, usize) {
        let restore = self.discarded.iter().filter(|d| d.restore).count();
        let refused = self.discarded.iter().filter(|d| d.attention).count();
        (restore, self.discarded.len() - restore - refused, refused)
    }

    /// The counts as the text reports say them: `2 to restore, 1 skipped[, 3 REFUSED]`.
    pub fn counts_text(&self) -> String {
        let (restore, skipped, refused) = self.counts();
        let mut cells = vec![format!("{restore} to restore"), format!("{skipped} skipped")];
        if refused > 0 {
            cells.push(format!("{refused} REFUSED"));
        }
        cells.join(", ")
    }
    /// Whether some discarded line needs the admin: not restored, and not a vendor rule.
    pub fn needs_attention(&self) -> bool {
        self.discarded.iter().any(|d| d.attention)
    }

    /// Whether `restore` would change anything.
    pub fn needs_restore(&self) -> bool {
        self.discarded.iter().any(|d| d.restore) || self.sysctl.iter().any(|s| s.set_to.is_some())
    }

    /// Takes the rule to restore of old line `index` out of the restore, refused as a line the
    /// restorable grammar refuses is: `why` says what refused it (iptables' own message). The
    /// entry refused, or `None` when no rule to restore has that index.
    pub fn refuse(&mut self, index: usize, why: String) -> Option<&DiscardedRule> {
        let entry = self.discarded.iter_mut().find(|d| d.index == index && d.restore)?;
        entry.refuse(why);
        Some(entry)
    }
}

/// Parses a snapshot's firewall script as the appliance's iptables reads it.
pub fn script_of<'a>(snap: &'a Snapshot, path: &str) -> Option<Script<'a>> {
    script_anchored(snap, path, None)
}

/// [`script_of`], its anchor taken in the function `anchor` names (`old`'s anchor function).
pub fn script_anchored<'a>(snap: &'a Snapshot, path: &str, old: Option<&Script>) -> Option<Script<'a>> {
    let function = old.and_then(|o| o.anchor_function.as_ref()).map(|f| f.as_deref());
    snap.content(path)
        .map(|bytes| Script::parse_anchored(bytes, Iptables::of(&snap.manifest.version), function))
}

/// The two sides of a comparison with their firewall scripts parsed once.
pub struct Pair<'a> {
    pub before: &'a Snapshot,
    pub after: &'a Snapshot,
    pub old: Option<Script<'a>>,
    pub new: Option<Script<'a>>,
}

impl<'a> Pair<'a> {
    /// Reads both scripts; the new one's anchor is looked for in the old anchor's function.
    pub fn read(before: &'a Snapshot, after: &'a Snapshot, path: &str) -> Result<Self> {
        let old = script_of(before, path);
        let new = script_anchored(after, path, old.as_ref());
        Ok(Self {
            before,
            after,
            old,
            new,
        })
    }
}

/// The longest line a report shows whole; a longer one (a line the tool cannot read can be
/// megabytes of continuations) is cut, saying how much is left out.
const SHOWN_BYTES: usize = 4096;

fn shortened(text: String) -> String {
    if text.len() <= SHOWN_BYTES {
        return text;
    }
    let cut = (0..=SHOWN_BYTES).rev().find(|&i| text.is_char_boundary(i)).unwrap_or(0);
    format!("{}... ({} more bytes)", &text[..cut], text.len() - cut)
}

/// Rules from the configuration's `keep_rules`, parsed once.
fn keep_rules(config: &Config) -> Result<Vec<Rule>> {
    config
        .keep_rules
        .iter()
        .map(|text| {
            rule::parse_call(text, None)
                .map_err(|e| anyhow!("keep_rules: {text:?}: {e}"))?
                .ok_or_else(|| anyhow!("keep_rules: {text:?} adds no rule (use -A CHAIN ...)"))
        })
        .collect()
}

/// Compares `before` (pre-upgrade) with `after` (the system now): the firewall script and the
/// sysctl files.
pub fn compare(pair: &Pair, config: &Config) -> Result<Comparison> {
    let evidence = Evidence::of(pair.before);
    let mut discarded = discarded_rules(pair, config)?;
    evidence.judge(&mut discarded, pair.old.as_ref(), config)?;
    Ok(Comparison {
        firewall_script: (pair.old.is_some() || pair.new.is_some()).then(|| config.firewall_script.clone()),
        discarded,
        sysctl: sysctl_findings(pair.before, pair.after, config),
        kernel_evidence: evidence.note,
    })
}

/// The kernel's evidence: the rules loaded when the old snapshot was taken, per family, when
/// that dump shows the firewall up (it holds the vendor's stateful rule); a dump without it (the
/// firewall stopped) proves nothing.
pub struct Evidence {
    v4: Option<LoadedSet>,
    v6: Option<LoadedSet>,
    note: Option<String>,
}

impl Evidence {
    /// What `before` recorded of the loaded rules, when it proves anything.
    pub fn of(before: &Snapshot) -> Self {
        let Some(runtime) = &before.manifest.runtime else {
            return Self {
                v4: None,
                v6: None,
                note: None,
            };
        };
        let up = |text: &Option<String>, family| {
            text.as_deref()
                .map(|t| LoadedSet::parse(t, family, "filter"))
                .filter(|set| set.up)
        };
        let (v4, v6) = (up(&runtime.iptables, Family::V4), up(&runtime.ip6tables, Family::V6));
        let note = match (&v4, &v6) {
            (None, None) if runtime.iptables.is_none() && runtime.ip6tables.is_none() => None,
            (None, None) => Some(
                "the rules loaded when the old snapshot was taken show the firewall stopped (no stateful rule): they prove nothing and were not used".to_string(),
            ),
            _ => Some("the rules loaded when the old snapshot was taken were checked: a custom rule not loaded then is not restored".to_string()),
        };
        Self { v4, v6, note }
    }

    /// Takes each custom rule to restore that was not loaded (in a family whose dump shows the
    /// firewall up) out of the restore; `keep_rules` still restores it.
    fn judge(&self, discarded: &mut [DiscardedRule], old: Option<&Script>, config: &Config) -> Result<()> {
        if self.v4.is_none() && self.v6.is_none() {
            return Ok(());
        }
        let (Some(old), keep) = (old, keep_rules(config)?) else {
            return Ok(());
        };
        for entry in discarded.iter_mut().filter(|d| d.restore) {
            let Some(rule) = old.rule(entry.index) else {
                continue;
            };
            let kept = keep.iter().any(|k| k.covers(&rule) || rule.covers(k));
            if self.not_loaded(&rule) && !kept {
                entry.not_loaded();
            }
        }
        Ok(())
    }

    /// Whether the recorded loaded rules show `rule` was not loaded (in a family whose dump
    /// shows the firewall up); a source list, as the rules iptables loads for it.
    pub fn not_loaded(&self, rule: &Rule) -> bool {
        rule.loaded_as().iter().any(|one| {
            one.families().iter().any(|f| {
                let set = if *f == Family::V4 { &self.v4 } else { &self.v6 };
                set.as_ref().is_some_and(|s| !s.contains(one.key()))
            })
        })
    }
}

/// The rules and lines of the old firewall script the new one lacks, in line order.
fn discarded_rules(pair: &Pair, config: &Config) -> Result<Vec<DiscardedRule>> {
    let Some(old) = &pair.old else {
        return Ok(Vec::new());
    };
    let keep = keep_rules(config)?;
    let new = pair.new.as_ref();
    // The new script's rules by meaning, for "does the new side still have it?".
    let new_index: Option<RuleIndex> = new.map(Script::index);
    let unmatched = unmatched_texts(old, new);
    let mut discarded = Vec::new();
    for (index, line) in old.lines.iter().enumerate() {
        if let Some(why) = old.why_unknown(index) {
            if unmatched.contains(&text_key(old, index)) {
                discarded.push(unknown_line(old, index, why));
            }
            continue;
        }
        let Some(rule) = &line.rule else { continue };
        if new_index.as_ref().is_some_and(|n| n.covers(rule)) {
            continue;
        }
        let (restore, reason) = decide_rule(rule, &keep, new.is_some(), config);
        let mut entry = discarded_rule(pair, old, index, restore, reason, &config.firewall_script)?;
        if rule.is_custom_accept() && !restore && new.is_some() {
            entry.attention = true;
        }
        if let (true, Some(why)) = (restore, &line.not_live) {
            entry.not_live(why);
        }
        discarded.push(entry);
    }
    if let Some(why) = new.filter(|n| n.stopped.is_none()).and_then(|n| n.unknowable_reason()) {
        let why = format!("in the new script, {why}; nothing is restored into it");
        for entry in discarded.iter_mut().filter(|d| d.restore) {
            entry.refuse(why.clone());
        }
    }
    if let Some(stop) = new.and_then(|n| n.stopped.as_ref()) {
        let why = format!(
            "the new script could not be read to the end (line {}: {}), so nothing is restored into it",
            stop.line, stop.why
        );
        for entry in discarded.iter_mut().filter(|d| d.restore) {
            entry.refuse(why.clone());
        }
    }
    Ok(discarded)
}

/// The keys ([`text_key`]) of the old lines the tool cannot read that no line of the new script
/// answers to ([`text_keys`]).
fn unmatched_texts(old: &Script, new: Option<&Script>) -> HashSet<String> {
    let unknown = (0..old.lines.len()).filter(|&k| old.why_unknown(k).is_some());
    let mut keys: HashSet<String> = unknown.map(|k| text_key(old, k)).collect();
    let Some(new) = new.filter(|_| !keys.is_empty()) else {
        return keys;
    };
    // A key is a class byte and the text: only a new line with one of these texts answers.
    let texts: HashSet<&str> = keys.iter().map(|key| &key[1..]).collect();
    let found: Vec<String> = (0..new.lines.len())
        .filter(|&k| texts.contains(new.text(k).as_str()))
        .flat_map(|k| text_keys(new, k))
        .collect();
    for key in found {
        keys.remove(&key);
    }
    keys
}

/// What an old line the tool cannot read is matched by: its text, as data, as code, or (when it
/// ran as the anchor does) as code that runs so in the new script too: a copy in a function
/// nobody calls keeps nothing.
fn text_key(script: &Script, k: usize) -> String {
    let class = match (script.lines[k].data, script.lines[k].not_live.is_none()) {
        (true, _) => 'd',
        (false, true) => 'l',
        (false, false) => 'c',
    };
    format!("{class}{}", script.text(k))
}

/// The keys line `k` of the new script answers to ([`text_key`]): as code, and as live code.
fn text_keys(script: &Script, k: usize) -> Vec<String> {
    let text = script.text(k);
    match (script.lines[k].data, script.counts(k)) {
        (true, _) => vec![format!("d{text}")],
        (false, true) => vec![format!("c{text}"), format!("l{text}")],
        (false, false) => vec![format!("c{text}")],
    }
}

/// A line the tool cannot read that the new script lacks: compared by its text, never restored.
/// One that does not run as the anchor does is listed for that reason.
fn unknown_line(old: &Script, index: usize, why: &str) -> DiscardedRule {
    let text = shortened(old.text(index));
    let line = &old.lines[index];
    if let Some(dead) = line
        .not_live
        .as_deref()
        .filter(|_| line.data || !old.liveness_unknowable())
    {
        return DiscardedRule {
            line: line.first(),
            canonical: text.clone(),
            text,
            // Text bash never ran needs no one; a command that may have run does.
            attention: !line.data,
            reason: format!("{dead}; not restored").into(),
            group: format!("{dead}; not restored").into(),
            index,
            ..DiscardedRule::default()
        };
    }
    DiscardedRule {
        line: old.lines[index].first(),
        canonical: text.clone(),
        text,
        attention: true,
        reason: format!("not understood ({why}): compared by its text, not restored").into(),
        group: "not understood: compared by its text, not restored".into(),
        detail: Some(why.to_string()),
        index,
        ..DiscardedRule::default()
    }
}

/// Why a custom rule's source is too wide to be one proxy or pool, when it is.
fn too_wide(rule: &RuleKey, config: &Config) -> Option<String> {
    let (limit, family) = match rule.families() {
        [Family::V6] => (config.max_source_prefix.ipv6, "ipv6"),
        _ => (config.max_source_prefix.ipv4, "ipv4"),
    };
    match rule.source() {
        Source::Prefix(bits) if bits >= limit => None,
        Source::Prefix(bits) => Some(format!("/{bits}, wider than max_source_prefix {family} /{limit}")),
        Source::NonContiguous => Some("a mask that is not contiguous".to_string()),
        Source::Any | Source::List(_) => None,
    }
}

/// Whether a rule the new script lacks is to be restored, and why.
fn decide_rule(rule: &RuleKey, keep: &[Rule], has_new: bool, config: &Config) -> (bool, Cow<'static, str>) {
    let kept = keep.iter().any(|k| k.key().covers(rule) || rule.covers(k.key()));
    let wide = rule.is_custom_accept().then(|| too_wide(rule, config)).flatten();
    if !has_new {
        (
            false,
            format!("the new version has no {}", config.firewall_script).into(),
        )
    } else if let (Some(why), false) = (&wide, kept) {
        (
            false,
            format!("custom ACCEPT rule whose source is too wide to be one proxy or pool ({why}); not restored unless keep_rules names it").into(),
        )
    } else if rule.is_custom_accept() && wide.is_none() {
        (true, "custom ACCEPT rule for a source address".into())
    } else if kept {
        (true, "listed in keep_rules".into())
    } else {
        (false, "vendor rule changed or dropped by the upgrade (not an INPUT ACCEPT from a literal source, not in keep_rules)".into())
    }
}

/// The entry of a rule the new script lacks; one to restore is checked by the restorable
/// grammar first, and refused (for the admin to look at) when the grammar refuses it.
fn discarded_rule(
    pair: &Pair,
    old: &Script,
    index: usize,
    restore: bool,
    reason: Cow<'static, str>,
    path: &str,
) -> Result<DiscardedRule> {
    let line = &old.lines[index];
    let raw = &old.bytes[line.bytes()];
    let mut entry = DiscardedRule {
        line: line.first(),
        text: old.text(index),
        restore,
        group: reason.clone(),
        reason,
        index,
        ..DiscardedRule::default()
    };
    let mut full = None;
    match restore.then(|| firewall::check_restorable(raw, old.iptables)) {
        Some(Ok(rule)) => (full, entry.checked) = (Some(rule), Some(raw.into())),
        Some(Err(why)) => entry.refuse(why),
        None => {}
    }
    let full = full.or_else(|| old.rule(index)).ok_or_else(|| {
        anyhow!(
            "{}:{}: cannot read this rule again",
            pair.before.location(path),
            line.first()
        )
    })?;
    entry.family = full.family;
    entry.canonical = full.into_canonical();
    Ok(entry)
}

/// What each managed sysctl key is before, after and at boot, and what to do about it.
fn sysctl_findings(before: &Snapshot, after: &Snapshot, config: &Config) -> Vec<SysctlFinding> {
    config
        .managed_sysctl
        .iter()
        .map(|key| {
            let b = before.sysctl_effective(key);
            let a = after.sysctl_effective(key);
            let boot = after.sysctl_boot_effective(key);
            sysctl::decide(key, b, a, boot, config.sysctl_values.get(key).map(String::as_str))
        })
        .collect()
}

/// File state and recorded runtime state side by side: for each custom rule of the old side,
/// whether the new side's script has it and whether the new side's recorded runtime had it
/// loaded; and each recorded running sysctl value against the files.
/// `cmp` is the comparison of the same pair: the rules it found discarded are the ones the new
/// script lacks, with their text.
pub fn recorded_runtime(pair: &Pair, cmp: &Comparison) -> Vec<Step> {
    let new = pair.after;
    let Some(runtime) = &new.manifest.runtime else {
        return Vec::new();
    };
    let Some(old_script) = &pair.old else {
        return Vec::new();
    };
    let set = |text: &Option<String>, family| text.as_deref().map(|t| LoadedSet::parse(t, family, "filter"));
    let v4 = set(&runtime.iptables, Family::V4);
    let v6 = set(&runtime.ip6tables, Family::V6);
    // Canonical texts the comparison has for the rules it found discarded, by old line index
    // (the others are read again; a line the tool cannot read is never a rule). A rule of the
    // old script is discarded exactly when the new script does not have it.
    let known: std::collections::HashMap<usize, &str> =
        cmp.discarded.iter().map(|d| (d.index, d.canonical.as_str())).collect();
    let mut steps = Vec::new();
    for (i, r) in old_script.rules().filter(|(_, r)| r.is_custom_accept()) {
        let in_script = !known.contains_key(&i);
        let loaded: Option<bool> = r
            .families()
            .iter()
            .map(|f| {
                let set = if *f == Family::V4 { &v4 } else { &v6 };
                set.as_ref().map(|loaded| loaded.contains(r))
            })
            .try_fold(true, |acc, x| x.map(|x| acc && x));
        let rule = match known.get(&i) {
            Some(text) => text.to_string(),
            None => old_script
                .rule(i)
                .map(|r| r.canonical().to_string())
                .unwrap_or_default(),
        };
        steps.push(Step::CustomRule {
            rule,
            in_script,
            loaded,
        });
    }
    for (key, value) in &runtime.sysctl {
        let files = new.sysctl_effective(key);
        steps.push(Step::RecordedSysctl {
            key: key.clone(),
            differs: sysctl::running_differs(value, &files),
            files: files.shown(),
            running: value.clone(),
        });
    }
    steps
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_lines_are_shown_cut_at_a_character_boundary() {
        assert_eq!(shortened("short".into()), "short");
        let long = format!("{}é{}", "a".repeat(SHOWN_BYTES - 1), "b".repeat(10));
        let shown = shortened(long.clone());
        assert_eq!(shown, format!("{}... (12 more bytes)", "a".repeat(SHOWN_BYTES - 1)));
        assert!(shortened("x".repeat(1 << 20)).len() < SHOWN_BYTES + 32);
    }

    #[test]
    fn a_rule_iptables_refuses_is_refused_as_one_the_grammar_refuses() {
        let reason = "custom ACCEPT rule for a source address";
        let rule = |index: usize, restore| DiscardedRule {
            line: index + 1,
            text: format!("line {index}"),
            canonical: String::new(),
            family: None,
            restore,
            attention: false,
            reason: reason.into(),
            group: reason.into(),
            detail: None,
            index,
            never_loaded: false,
            checked: restore.then(|| b"checked".as_slice().into()),
        };
        let mut cmp = Comparison {
            firewall_script: None,
            discarded: vec![rule(3, true), rule(5, false)],
            sysctl: Vec::new(),
            kernel_evidence: None,
        };
        let why = "iptables-restore --test (ipv4): invalid port/service `x' specified";
        let d = cmp.refuse(3, why.into()).unwrap();
        assert_eq!((d.restore, d.attention), (false, true));
        assert_eq!(d.group, format!("{reason}, but refused; not restored"));
        assert_eq!(d.reason, format!("{reason}, but refused: {why}; not restored"));
        assert_eq!(d.detail.as_deref(), Some(why));
        assert!(!d.checked_as(b"checked"), "never written");
        // Only a rule to restore is refused, once.
        assert!(cmp.refuse(5, why.into()).is_none());
        assert!(cmp.refuse(3, why.into()).is_none());
        assert_eq!(cmp.counts(), (0, 1, 1));
        assert!(cmp.needs_attention() && !cmp.needs_restore());
    }

    /// The same rule written with counters (`-c 0 0`) in the new script is the rule the old
    /// script had: nothing is discarded, so nothing would be restored beside it.
    #[test]
    fn a_rule_written_with_counters_is_not_discarded() {
        let v = |s| crate::domain::version::parse_version(s, None).unwrap();
        let script = |rule: &str| {
            format!("IPTABLE -A INPUT -m state --state ESTABLISHED,RELATED -j ACCEPT # stateful\n{rule}\n").into_bytes()
        };
        let side =
            |version, rule: &str| Snapshot::in_memory(v(version), vec![("/usr/iwss/iwsvafw.sh".into(), script(rule))]);
        let before = side(
            "IWSVA 6.5-SP2_Build_Linux_1548",
            "IPTABLE ipv4 -A INPUT -p tcp -s 192.0.2.1 -j ACCEPT",
        );
        let config = Config::default();
        for new in [
            "IPTABLE ipv4 -A INPUT -c 0 0 -p tcp -s 192.0.2.1 -j ACCEPT",
            "IPTABLE ipv4 -A INPUT -p tcp -s 192.0.2.1/32 -j ACCEPT --set-counters 5 6",
        ] {
            let after = side("IWSVA 6.5-SP3_Build_Linux_1916", new);
            let pair = Pair::read(&before, &after, &config.firewall_script).unwrap();
            let cmp = compare(&pair, &config).unwrap();
            assert!(cmp.discarded.is_empty(), "{new}: {:?}", cmp.discarded);
        }
        // Without the rule, it is discarded and restored.
        let after = side("IWSVA 6.5-SP3_Build_Linux_1916", "# nothing");
        let pair = Pair::read(&before, &after, &config.firewall_script).unwrap();
        assert!(compare(&pair, &config).unwrap().discarded[0].restore);
    }
}
