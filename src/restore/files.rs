//! The file part of a restore, in phases: compare, check the rules (`iptables-restore --test`),
//! plan without the rules iptables refuses, check the syntax (`bash -n` of the file to be renamed
//! into place), then back up and write ([`apply`](super::apply)).

use std::collections::BTreeMap;

use anyhow::Result;

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

/// Plans and applies the file changes of a restore onto the live root. Rules iptables refuses
/// are left out of the plan and reported REFUSED; the rest is restored.
pub fn restore_files(ctx: &Context, opts: &RestoreOptions) -> Result<Restored> {
    let (old, new) = ctx.sides(opts.from.as_deref(), None, false)?;
    let pair = Pair::read(&old, &new, &ctx.config.firewall_script)?;
    let mut cmp = compare(&pair, &ctx.config)?;
    log_comparison(&old, &new, &cmp);
    let mut live = Vec::new();
    check_rules(ctx, &old, pair.old.as_ref(), &mut cmp, &mut live);
    let plan = plan::plan(&pair, &cmp, &ctx.config)?;
    // The scripts' lines have served the plan: freed before bash reads.
    drop(pair);
    let syntax = start_syntax_check(ctx, &plan, opts.dry_run);
    let stamp = fsutil::stamp();
    let written = if opts.dry_run {
        check_syntax(ctx, &plan, syntax, &mut live)?;
        Vec::new()
    } else if plan.changes.is_empty() {
        Vec::new()
    } else {
        crate::system::signals::check("writing the files")?;
        ctx.state.begin_activation()?;
        let written = apply::apply(&ctx.root, &plan, &ctx.config.firewall_script, &stamp, syntax)?;
        if written.iter().any(|w| w.path == ctx.config.firewall_script) {
            super::log_restored_rules(ctx, &cmp, &stamp);
        }
        written
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
        failed: None,
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

/// Every rule to restore goes through the appliance's own iptables before the plan is made. A
/// rule iptables refuses leaves the restore, REFUSED with iptables' message as a line the
/// restorable grammar refuses is; the others are restored. When the check cannot run here, the
/// report says so and the rules go on.
fn check_rules(ctx: &Context, old: &Snapshot, old_script: Option<&Script>, cmp: &mut Comparison, live: &mut Vec<Step>) {
    let to_test: Vec<_> = match old_script {
        Some(script) => cmp
            .discarded
            .iter()
            .filter(|d| d.restore)
            .filter_map(|d| script.rule_to_test(d.index))
            .collect(),
        None => Vec::new(),
    };
    if to_test.is_empty() {
        return;
    }
    let refusals = match iptables::check_rules(&ctx.root, &to_test) {
        RulesCheck::Accepted => Vec::new(),
        RulesCheck::NotRun(why) => {
            super::record_step(live, Step::RulesNotChecked { why });
            return;
        }
        RulesCheck::Rejected(refusals) => refusals,
    };
    // A rule that reaches both families may be refused by both: one entry, both messages.
    let mut whys: BTreeMap<usize, Vec<String>> = BTreeMap::new();
    for refusal in &refusals {
        whys.entry(refusal.index).or_default().push(refusal.why());
    }
    for (&index, why) in &whys {
        if let Some(d) = cmp.refuse(index, why.join("; ")) {
            log::error!(
                "{}:{}: iptables refuses this rule; not restored: {}: {}",
                old.location(&ctx.config.firewall_script),
                d.line,
                d.text,
                d.detail.as_deref().unwrap_or_default()
            );
        }
    }
    let load = to_test.len() - whys.len();
    if load > 0 {
        super::record_step(live, Step::RulesChecked { count: load });
    }
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
            super::record_step(live, Step::SyntaxChecked);
        }
        None => super::record_step(
            live,
            Step::SyntaxNotChecked {
                root: ctx.root.dir().display().to_string(),
            },
        ),
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
