//! `status`: whether the live system still has every custom setting of the newest pre-upgrade
//! snapshot, in its files and in the running kernel.

use std::fmt::Write as _;

use anyhow::Result;
use serde::Serialize;

use crate::context::Context;
use crate::domain::compare;
use crate::domain::firewall::Script;
use crate::domain::loaded::{Loaded, RuleState};
use crate::domain::report::Side;
use crate::domain::snapshot::Snapshot;
use crate::domain::steps;
use crate::domain::sysctl;
use crate::exit_codes::ExitCode;
use crate::setup::{self, FileState, State};
use crate::store::pending::Pending;
use crate::system::{capture, iptables, procsys};

/// The report of `status`.
#[derive(Serialize)]
struct Status {
    snapshot: Option<Side>,
    live: Side,
    rules: Vec<RuleStatus>,
    sysctl: Vec<SysctlStatus>,
    /// A hook run that failed and was not yet retried successfully.
    pending: Option<Pending>,
    /// The hook scripts and boot guard `register` manages.
    registration: Vec<FileState>,
    ok: bool,
}

#[derive(Serialize)]
struct RuleStatus {
    rule: String,
    in_script: bool,
    loaded: Vec<Loaded>,
}

#[derive(Serialize)]
struct SysctlStatus {
    key: String,
    wanted: Option<String>,
    effective: Option<String>,
    running: Option<String>,
    ok: bool,
}

/// Not registering is a choice; a registration with a file changed, or some files gone, is broken:
/// the next upgrade would run half the hooks or none.
fn registration_ok(files: &[FileState]) -> bool {
    files.iter().all(|f| f.state == State::Intact) || files.iter().all(|f| f.state == State::Missing)
}

/// Runs `status`: exit 0 when everything is kept, 1 when something is missing.
pub fn run(ctx: &Context, json: bool) -> Result<ExitCode> {
    let now = capture::capture(&ctx.root, &ctx.config, None)?;
    let snap = ctx.stored_pre_upgrade(&now)?;
    let rules = rules(ctx, &now, snap.as_ref())?;
    let sysctl = sysctl_values(ctx, &now, snap.as_ref());
    let pending = Pending::load(&ctx.state)?;
    let registration = setup::states(ctx);
    // Missing: something known to be absent. Unknown: nothing missing, but not all could be read.
    let missing = rules
        .iter()
        .any(|r| !r.in_script || r.loaded.iter().any(|l| l.state == RuleState::Missing))
        || sysctl.iter().any(|s| !s.ok)
        || pending.is_some()
        || !registration_ok(&registration);
    let unknown = rules
        .iter()
        .any(|r| r.loaded.iter().any(|l| l.state == RuleState::Unknown))
        || sysctl.iter().any(|s| s.wanted.is_some() && s.running.is_none());
    let status = Status {
        snapshot: snap.as_ref().map(Side::of),
        live: Side::of(&now),
        rules,
        sysctl,
        pending,
        registration,
        ok: !missing && !unknown,
    };
    super::print(json, &status, || render(&status, missing))?;
    Ok(if missing {
        ExitCode::Differs
    } else if unknown {
        ExitCode::Unknown
    } else {
        ExitCode::Success
    })
}

/// Each custom rule of the snapshot's script: whether the live script holds it, and whether it
/// is loaded in each of its families.
fn rules(ctx: &Context, now: &Snapshot, snap: Option<&Snapshot>) -> Result<Vec<RuleStatus>> {
    let script = compare::script_of(now, &ctx.config.firewall_script);
    let index = script.as_ref().map(Script::index);
    let mut custom = Vec::new();
    if let Some(old) = snap {
        if let Some(old_script) = compare::script_of(old, &ctx.config.firewall_script) {
            // A rule that did not run as the anchor does was never loaded: not expected now
            // (when that cannot be told, every custom rule is).
            let live = |i: usize| old_script.liveness_unknowable() || old_script.lines[i].not_live.is_none();
            for (i, key) in old_script.rules().filter(|(i, r)| r.is_custom_accept() && live(*i)) {
                // A source list is checked as the rules iptables loads for it.
                let in_script = index.as_ref().is_some_and(|s| s.covers(key));
                for r in old_script.rule(i).map(|r| r.loaded_as()).unwrap_or_default() {
                    custom.push((r, in_script));
                }
            }
        }
    }
    let all: Vec<_> = custom.iter().map(|(r, _)| r.clone()).collect();
    let mut loaded = iptables::check_loaded(&ctx.root, &all).into_iter();
    Ok(custom
        .iter()
        .map(|(r, in_script)| RuleStatus {
            rule: r.canonical().to_string(),
            in_script: *in_script,
            loaded: loaded.by_ref().take(r.families().len()).collect(),
        })
        .collect())
}

/// Each managed sysctl key: the value owed (from the snapshot, else a configured custom value),
/// in the files and running.
fn sysctl_values(ctx: &Context, now: &Snapshot, snap: Option<&Snapshot>) -> Vec<SysctlStatus> {
    ctx.config
        .managed_sysctl
        .iter()
        .map(|k| {
            let files = now.sysctl_effective(k);
            let running = procsys::read(&ctx.root, k);
            let custom = ctx.config.sysctl_values.get(k).map(String::as_str);
            // Without a snapshot only a configured custom value is owed.
            let wanted = match snap {
                Some(old) => {
                    let before = old.sysctl_effective(k);
                    sysctl::owed_value(&before, custom)
                }
                None => custom.map(str::to_string),
            };
            let ok = wanted
                .as_ref()
                .is_none_or(|w| files.is(w) && running.as_ref().is_none_or(|r| sysctl::same_value(w, r)));
            SysctlStatus {
                key: sysctl::display_key(&sysctl::canonical_key(k)),
                wanted,
                effective: files.value,
                running,
                ok,
            }
        })
        .collect()
}

fn render(status: &Status, missing: bool) -> String {
    let mut out = String::new();
    let _ = match &status.snapshot {
        Some(s) => writeln!(out, "snapshot {} ({})", s.name, s.version),
        None => writeln!(out, "snapshot none: take one with `iwss-keeper snapshot`"),
    };
    let _ = writeln!(out, "live     {} ({})", status.live.name, status.live.version);
    render_rules(&mut out, &status.rules);
    for s in &status.sysctl {
        let _ = writeln!(
            out,
            "sysctl   {} = {} (files), {} (running){}",
            s.key,
            s.effective.as_deref().unwrap_or("unknown"),
            s.running.as_deref().unwrap_or("unknown"),
            match (&s.wanted, s.ok) {
                (Some(w), false) => format!(": MISSING, want {w}"),
                _ => String::new(),
            }
        );
    }
    render_hooks(&mut out, &status.registration);
    if let Some(p) = &status.pending {
        let _ = writeln!(out, "pending  {} failed at {}: {}", p.event, p.since, p.error);
    }
    let verdict = if status.ok {
        "all kept"
    } else if missing {
        "something is missing"
    } else {
        "cannot tell: part of the running state cannot be read (see `unknown` above)"
    };
    let _ = writeln!(out, "{verdict}");
    out
}

/// Rules that are fine are counted; the others listed, one line each (all under -v).
fn render_rules(out: &mut String, rules: &[RuleStatus]) {
    let fine = |r: &RuleStatus| r.in_script && r.loaded.iter().all(|l| l.state == RuleState::Loaded);
    let line = |r: &RuleStatus| {
        let loaded: Vec<String> = r
            .loaded
            .iter()
            .map(|l| format!("{} {}", l.family, l.state.word()))
            .collect();
        format!(
            "{}: {}, {}",
            r.rule,
            steps::in_script_word(r.in_script),
            loaded.join(", ")
        )
    };
    let ok = rules.iter().filter(|r| fine(r)).count();
    let limit = super::group_limit();
    if ok > 0 && limit.is_some() {
        let _ = writeln!(out, "rules    {ok} custom rule(s) in the script and loaded");
    }
    let listed: Vec<&RuleStatus> = rules.iter().filter(|r| limit.is_none() || !fine(r)).collect();
    for l in steps::limited("rule     ", listed.iter().map(|r| line(r)), limit) {
        let _ = writeln!(out, "{l}");
    }
}

/// The files `register` installs: registered, not registered, or the ones that are not intact.
fn render_hooks(out: &mut String, files: &[FileState]) {
    let intact = files.iter().filter(|f| f.state == State::Intact).count();
    if files.is_empty() {
        let _ = writeln!(
            out,
            "hooks    unknown: the files `register` installs could not be listed"
        );
    } else if intact == files.len() {
        let _ = writeln!(out, "hooks    registered ({intact} files intact)");
    } else if intact == 0 && files.iter().all(|f| f.state == State::Missing) {
        let _ = writeln!(out, "hooks    not registered: run `iwss-keeper register`");
    } else {
        for f in files.iter().filter(|f| f.state != State::Intact) {
            let _ = writeln!(out, "hooks    {}: {}", f.state.upper(), f.path);
        }
    }
}
