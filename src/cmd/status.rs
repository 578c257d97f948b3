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
use crate::domain::rule::RuleKey;
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
    /// Lines of the snapshot's script that ran, are gone and the tool did not restore (refused
    /// or not understood): missing until restored by hand or named in `ignore_rules`.
    lines: Vec<LineStatus>,
    sysctl: Vec<SysctlStatus>,
    /// A hook run that failed and was not yet retried successfully.
    pending: Option<Pending>,
    /// A restore wrote files and stopped before restarting and verifying.
    activation_pending: bool,
    /// The hook scripts and boot guard `register` manages.
    registration: Vec<FileState>,
    /// Settings that stop the tool checking a fix.
    warnings: Vec<String>,
    /// What to run about each problem found, in words.
    todo: Vec<String>,
    ok: bool,
}

#[derive(Serialize)]
struct RuleStatus {
    rule: String,
    in_script: bool,
    loaded: Vec<Loaded>,
    /// When `undo` took the rule out on purpose: not missing.
    undone: Option<String>,
}

#[derive(Serialize)]
struct LineStatus {
    line: usize,
    text: String,
    reason: String,
    /// Named in `ignore_rules`: the admin decided.
    ignored: bool,
}

#[derive(Serialize)]
struct SysctlStatus {
    key: String,
    wanted: Option<String>,
    effective: Option<String>,
    running: Option<String>,
    ok: bool,
}

/// How the setup stands: a snapshot to restore from and the hooks or guard registered.
fn setup_todo(snap: Option<&Snapshot>, files: &[FileState], todo: &mut Vec<String>) -> bool {
    let mut ok = true;
    if snap.is_none() {
        todo.push(
            "no snapshot to restore from: run `iwss-keeper register` (it takes one) or `iwss-keeper snapshot`".into(),
        );
        ok = false;
    }
    let intact = files.iter().filter(|f| f.state == State::Intact).count();
    if files.is_empty() || intact < files.len() {
        let what = if intact == 0 && files.iter().all(|f| f.state == State::Missing) {
            "hooks and boot guard not registered: run `iwss-keeper register`"
        } else {
            "hooks or boot guard changed or missing: run `iwss-keeper register` to put them back"
        };
        todo.push(what.into());
        ok = false;
    }
    ok
}

/// Runs `status`: exit 0 only when protection is set up and every fix the tool knows of is in
/// place; 1 when something is known missing, owed, pending or not set up; else 4 when part of
/// the state cannot be read (or a setting stops a fix being checked).
pub fn run(ctx: &Context, json: bool) -> Result<ExitCode> {
    let now = capture::capture(&ctx.root, &ctx.config, None)?;
    let snap = ctx.stored_pre_upgrade(&now)?;
    let rules = rules(ctx, &now, snap.as_ref())?;
    let lines = lines(ctx, &now, snap.as_ref())?;
    let sysctl = sysctl_values(ctx, &now, snap.as_ref());
    let pending = Pending::load(&ctx.state)?;
    let activation_pending = ctx.state.activation_pending();
    let registration = setup::states(ctx);
    let mut todo = Vec::new();
    let set_up = setup_todo(snap.as_ref(), &registration, &mut todo);
    let rules_missing = rules
        .iter()
        .any(|r| r.undone.is_none() && (!r.in_script || r.loaded.iter().any(|l| l.state == RuleState::Missing)));
    if rules_missing || sysctl.iter().any(|s| !s.ok) {
        todo.push("custom settings missing: run `iwss-keeper restore` (`restore --dry-run` shows the plan)".into());
    }
    if lines.iter().any(|l| !l.ignored) {
        todo.push(format!(
            "lines not restored: restore them by hand, or name them in ignore_rules in {}",
            ctx.config_path.display()
        ));
    }
    if let Some(p) = &pending {
        // The error names the command when a plain restore is not the one to run.
        let then = if p.error.contains("`iwss-keeper restore") {
            String::new()
        } else {
            "; then run `iwss-keeper restore`".into()
        };
        todo.push(format!("a {} hook run failed: {}{then}", p.event, p.error));
    }
    if activation_pending {
        todo.push("a restore wrote its files and stopped before restarting and verifying: run `iwss-keeper restore` to finish it".into());
    }
    let missing = !todo.is_empty() || !set_up;
    let unknown = !ctx.warnings.is_empty()
        || rules
            .iter()
            .any(|r| r.loaded.iter().any(|l| l.state == RuleState::Unknown))
        || sysctl.iter().any(|s| s.wanted.is_some() && s.running.is_none());
    let status = Status {
        snapshot: snap.as_ref().map(Side::of),
        live: Side::of(&now),
        rules,
        lines,
        sysctl,
        pending,
        activation_pending,
        registration,
        warnings: ctx.warnings.clone(),
        todo,
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

/// When `undo` last took each rule out, by canonical form (a later restore puts it back).
fn undone_rules(ctx: &Context) -> std::collections::HashMap<String, Option<String>> {
    let mut out = std::collections::HashMap::new();
    for record in ctx.state.restores().all().unwrap_or_default() {
        for rule in &record.rules {
            out.insert(rule.canonical.clone(), record.undone.clone());
        }
    }
    out
}

/// Each custom rule of the snapshot's script that ran: whether the live script holds it, and
/// whether it is loaded in each of its families.
fn rules(ctx: &Context, now: &Snapshot, snap: Option<&Snapshot>) -> Result<Vec<RuleStatus>> {
    let path = &ctx.config.firewall_script;
    let old_script = snap.and_then(|old| compare::script_of(old, path));
    // The live script's anchor is looked for where the snapshot's was, as `restore` does.
    let script = compare::script_anchored(now, path, old_script.as_ref());
    let index = script.as_ref().map(Script::index);
    let mut custom = Vec::new();
    if let Some(old) = snap {
        if let Some(old_script) = &old_script {
            // A rule that did not run as the anchor does was never loaded: not expected now
            // (when that cannot be told, every custom rule is).
            let live = |i: usize| old_script.liveness_unknowable() || old_script.lines[i].not_live.is_none();
            // Nor is one the kernel did not have loaded when the snapshot was taken.
            let evidence = compare::Evidence::of(old);
            let expected = |i: usize, r: &RuleKey| {
                r.is_custom_accept() && live(i) && !old_script.rule(i).is_some_and(|r| evidence.not_loaded(&r))
            };
            for (i, key) in old_script.rules().filter(|(i, r)| expected(*i, r)) {
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
    let undone = undone_rules(ctx);
    Ok(custom
        .iter()
        .map(|(r, in_script)| RuleStatus {
            rule: r.canonical().to_string(),
            in_script: *in_script,
            loaded: loaded.by_ref().take(r.families().len()).collect(),
            undone: (!in_script)
                .then(|| undone.get(r.canonical()).cloned().flatten())
                .flatten(),
        })
        .collect())
}

/// The snapshot's lines that ran and are gone without the tool restoring them: refused, not
/// understood, or any other call the admin must look at.
fn lines(ctx: &Context, now: &Snapshot, snap: Option<&Snapshot>) -> Result<Vec<LineStatus>> {
    let Some(old) = snap else { return Ok(Vec::new()) };
    let pair = compare::Pair::read(old, now, &ctx.config.firewall_script)?;
    let cmp = compare::compare(&pair, &ctx.config)?;
    let ran = |index: usize| {
        pair.old
            .as_ref()
            .is_some_and(|s| s.liveness_unknowable() || s.lines[index].not_live.is_none())
    };
    Ok(cmp
        .discarded
        .iter()
        .filter(|d| d.attention && !d.restore && ran(d.index) && !d.never_loaded)
        .map(|d| LineStatus {
            line: d.line,
            text: d.text.clone(),
            reason: d.reason.to_string(),
            ignored: ctx.config.ignores(&d.text, &d.canonical),
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
    for w in &status.warnings {
        let _ = writeln!(out, "warning  {w}");
    }
    let _ = match &status.snapshot {
        Some(s) => writeln!(out, "snapshot {} ({})", s.name, s.version),
        None => writeln!(out, "snapshot none"),
    };
    let _ = writeln!(out, "live     {} ({})", status.live.name, status.live.version);
    render_rules(&mut out, &status.rules);
    for l in &status.lines {
        let state = if l.ignored { "ignored by config" } else { "NOT RESTORED" };
        let _ = writeln!(out, "line     {} {}: {state} ({})", l.line, l.text, l.reason);
    }
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
    if status.activation_pending {
        let _ = writeln!(out, "pending  a restore stopped before restarting and verifying");
    }
    for t in &status.todo {
        let _ = writeln!(out, "todo     {t}");
    }
    let verdict = if status.ok {
        "all kept"
    } else if missing {
        "something is missing or not set up (see todo above)"
    } else {
        "cannot tell: part of the state cannot be read or is not checked (see above)"
    };
    let _ = writeln!(out, "{verdict}");
    out
}

/// Rules that are fine are counted; the others listed, one line each (all under -v).
fn render_rules(out: &mut String, rules: &[RuleStatus]) {
    let fine = |r: &RuleStatus| r.in_script && r.loaded.iter().all(|l| l.state == RuleState::Loaded);
    let line = |r: &RuleStatus| {
        if let Some(when) = &r.undone {
            return format!("{}: undone on {when} (`iwss-keeper restore` puts it back)", r.rule);
        }
        let loaded: Vec<String> = r
            .loaded
            .iter()
            .map(|l| match l.state {
                RuleState::Unknown => format!("{} {} ({})", l.family, l.state.word(), l.detail),
                _ => format!("{} {}", l.family, l.state.word()),
            })
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
