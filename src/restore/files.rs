//! The file part of a restore, in phases: plan, check the rules (`iptables-restore --test`),
//! check the syntax (`bash -n` of the file to be renamed into place), then back up and write
//! ([`apply`](super::apply)).

use anyhow::{bail, Result};

use crate::context::Context;
use crate::domain::compare::{compare, Comparison, Pair};
use crate::domain::firewall::Script;
use crate::domain::plan::{self, Plan};
use crate::domain::report::{ChangeReport, Outcome, Report, Side};
use crate::domain::snapshot::Snapshot;
use crate::domain::steps::Step;
use crate::restore::apply::{self, Written};
use crate::restore::{RestoreOptions, Restored};
use crate::system::fsutil;
use crate::system::iptables::{self, RulesCheck};
use crate::system::process::{self, SyntaxCheck};

/// Plans and applies the file changes of a restore onto the live root.
pub fn restore_files(ctx: &Context, opts: &RestoreOptions) -> Result<Restored> {
    let (old, new) = ctx.sides(opts.from.as_deref(), None, false)?;
    let pair = Pair::read(&old, &new, &ctx.config.firewall_script)?;
    let cmp = compare(&pair, &ctx.config)?;
    log_comparison(&old, &new, &cmp);
    let mut plan = plan::plan(&pair, &cmp, &ctx.config)?;
    // bash reads the new script while the rules go through iptables (its answer is taken
    // before anything is written).
    let syntax = start_syntax_check(ctx, &plan, opts.dry_run);
    let stamp = fsutil::stamp();
    let mut live = Vec::new();
    // The new script's lines have served the plan; the old script's are read once more, to
    // check the rules, and freed while bash reads.
    drop(pair.new);
    let refused = check_rules(ctx, &old, pair.old, &cmp, &mut plan, opts.dry_run, &mut live)?;
    let written = if opts.dry_run {
        check_syntax(ctx, &plan, syntax, &mut live)?;
        Vec::new()
    } else if plan.changes.is_empty() {
        Vec::new()
    } else {
        ctx.state.begin_activation()?;
        apply::apply(&ctx.root, &plan, &ctx.config.firewall_script, &stamp, syntax)?
    };
    let report = Report {
        kept: Vec::new(),
        command: "restore",
        old: Side::of(&old),
        new: Side::of(&new),
        changes: change_reports(&plan, &written, opts),
        outcome: outcome_of(&plan, opts.dry_run),
        comparison: cmp,
        dry_run: opts.dry_run,
        live,
    };
    Ok(Restored {
        report,
        old,
        new,
        written,
        failed: refused.is_some().then(|| "the iptables check".to_string()),
        refused,
        stamp,
    })
}

/// Says in the log what is restored from where, and what each discarded rule and sysctl key
/// comes to.
fn log_comparison(old: &Snapshot, new: &Snapshot, cmp: &Comparison) {
    log::info!(
        "restore: from {} ({}) onto {} ({})",
        old.name(),
        old.manifest.version,
        new.name(),
        new.manifest.version
    );
    let to_restore = cmp.discarded.iter().filter(|d| d.restore).count();
    log::info!(
        "{} discarded rule(s): {to_restore} to restore, {} skipped",
        cmp.discarded.len(),
        cmp.discarded.len() - to_restore
    );
    for d in &cmp.discarded {
        let verdict = if d.restore { "restore" } else { "skip" };
        log::debug!("discarded rule, {verdict}: line {} {}: {}", d.line, d.text, d.reason);
    }
    for f in &cmp.sysctl {
        log::info!("sysctl {}: {}", f.key, f.reason);
    }
}

/// Starts `bash -n` on the new script when the plan changes it: on the new content staged beside
/// the script (the very file [`apply::apply`] renames into place), or on a dry run on a temp copy
/// (not at all when the root has no bash: the dry run says so).
fn start_syntax_check(ctx: &Context, plan: &Plan, dry_run: bool) -> Option<Result<SyntaxCheck>> {
    plan.changes
        .iter()
        .find(|c| c.path == ctx.config.firewall_script)
        .filter(|_| !dry_run || process::can_check_syntax(&ctx.root))
        .map(|change| {
            if dry_run {
                process::start_syntax_check(&ctx.root, &std::env::temp_dir(), &change.new)
            } else {
                apply::check_ahead(&ctx.root, change)
            }
        })
}

/// Every rule to restore goes through the appliance's own iptables before a byte is written.
/// When iptables refuses some, the script's change leaves the plan and the sysctl fix goes on
/// alone: the refusal is returned (an error when nothing else is left, or on a dry run).
fn check_rules(
    ctx: &Context,
    old: &Snapshot,
    old_script: Option<Script>,
    cmp: &Comparison,
    plan: &mut Plan,
    dry_run: bool,
    live: &mut Vec<Step>,
) -> Result<Option<String>> {
    let to_test: Vec<_> = match &old_script {
        Some(script) => cmp
            .discarded
            .iter()
            .filter(|d| d.restore)
            .filter_map(|d| script.rule_to_test(d.index))
            .collect(),
        None => Vec::new(),
    };
    if to_test.is_empty() {
        return Ok(None);
    }
    let rejected = match iptables::check_rules(&ctx.root, &to_test) {
        RulesCheck::Accepted => {
            live.push(Step::RulesChecked { count: to_test.len() });
            return Ok(None);
        }
        RulesCheck::NotRun(why) => {
            live.push(Step::RulesNotChecked { why });
            return Ok(None);
        }
        RulesCheck::Rejected(rejected) => rejected,
    };
    let list: Vec<String> = rejected
        .iter()
        .map(|(line, text, family, why)| format!("  line {line} ({family}): {text}: {why}"))
        .collect();
    let message = format!(
        "{}: iptables refuses rule(s) to restore; the firewall script was not changed:\n{}",
        old.location(&ctx.config.firewall_script),
        list.join("\n")
    );
    plan.changes.retain(|c| c.path != ctx.config.firewall_script);
    if plan.changes.is_empty() || dry_run {
        bail!(
            "{}; nothing was changed",
            message.replace("; the firewall script was not changed", "")
        );
    }
    // The sysctl fix does not depend on the firewall: it goes on.
    log::error!("{message}");
    Ok(Some(message))
}

/// A dry run's syntax check: bash's answer on the new script, or why there is none. (A real run
/// takes the answer in [`apply::apply`], before anything is named or renamed.)
fn check_syntax(ctx: &Context, plan: &Plan, syntax: Option<Result<SyntaxCheck>>, live: &mut Vec<Step>) -> Result<()> {
    if !plan.changes.iter().any(|c| c.path == ctx.config.firewall_script) {
        return Ok(());
    }
    match syntax {
        Some(check) => {
            check?.finish()?;
            live.push(Step::SyntaxChecked);
        }
        None => live.push(Step::SyntaxNotChecked {
            root: ctx.root.dir().display().to_string(),
        }),
    }
    Ok(())
}

/// Each change as the report shows it, with the backup taken of its file.
fn change_reports(plan: &Plan, written: &[Written], opts: &RestoreOptions) -> Vec<ChangeReport> {
    plan.changes
        .iter()
        .map(|c| {
            let backup = written
                .iter()
                .find(|w| w.path == c.path)
                .and_then(|w| w.backup.as_deref());
            ChangeReport::new(c, backup, opts.dry_run || opts.diffs)
        })
        .collect()
}

fn outcome_of(plan: &Plan, dry_run: bool) -> Outcome {
    if plan.changes.is_empty() {
        Outcome::NothingToRestore
    } else if dry_run {
        Outcome::Planned
    } else {
        Outcome::Restored
    }
}
