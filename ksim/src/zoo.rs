//! `ksim zoo`: every historical bug the subsystems publish, hunted from several fresh seed ranges
//! with its fix switched off, and the fixed configuration run for the same budget.

use std::fmt::Write as _;
use std::sync::atomic::AtomicBool;

use serde::Serialize;
use sim_core::check::{CampaignOptions, CampaignReport};

use crate::registry;

/// Fresh seed ranges start this far apart (run `r` starts at seed `r * ZOO_SEED_STRIDE`).
const ZOO_SEED_STRIDE: u64 = 1 << 32;

/// How the zoo is printed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum ZooFormat {
    /// A Markdown table.
    Markdown,
    /// A JSON array, one object per bug.
    Json,
}

/// One row of the zoo.
#[derive(Debug, Serialize)]
pub(crate) struct ZooRow {
    subsystem: String,
    bug: String,
    fix: String,
    title: String,
    cve: Option<String>,
    preset: String,
    checker: String,
    expected_kind: String,
    /// The kinds each run found (`None`: not found within the budget).
    found_kinds: Vec<Option<String>>,
    runs: usize,
    runs_found: usize,
    budget_cases: u64,
    median_cases_to_find: Option<u64>,
    median_seconds_to_find: Option<f64>,
    median_shrunk_ops: Option<usize>,
    /// The fixed configuration found nothing in the same budget.
    fixed_quiet: bool,
    /// Found in every run with the expected kind, and quiet when fixed.
    ok: bool,
}

fn median<T: Copy + PartialOrd>(mut values: Vec<T>) -> Option<T> {
    values.sort_by(|a, b| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal));
    values.get(values.len() / 2).copied()
}

fn hunt(
    campaign: registry::CampaignFn,
    config: &serde_json::Value,
    seed: u64,
    cases: u64,
    ops_max: usize,
) -> Result<CampaignReport, String> {
    let options = CampaignOptions { seed, ops_max, ..CampaignOptions::cases(cases) };
    campaign(config, &options, &AtomicBool::new(false), &mut |_| {})
}

/// Runs the zoo over `subsystems` (empty: all). `cases` overrides each entry's budget; `runs` fresh seed ranges per bug.
pub(crate) fn zoo(subsystems: &[String], cases: Option<u64>, runs: u64) -> Result<Vec<ZooRow>, String> {
    if runs == 0 {
        return Err("--runs must be at least 1".into());
    }
    let entries = if subsystems.is_empty() {
        registry::registry()
    } else {
        subsystems.iter().map(|name| registry::find(name)).collect::<Result<Vec<_>, _>>()?
    };
    let mut rows = Vec::new();
    for entry in entries {
        let fixes = (entry.fixes)();
        for bug in (entry.zoo)() {
            let context = |e: String| format!("{} zoo entry {:?}: {e}", entry.name, bug.name);
            let broken = (entry.config)(Some(bug.preset), &[bug.fix.to_string()]).map_err(context)?;
            let fixed = (entry.config)(Some(bug.preset), &[]).map_err(context)?;
            let budget = cases.unwrap_or(bug.cases_max);
            let mut found_kinds = Vec::new();
            let mut found = Vec::new();
            for run in 0..runs {
                let report = hunt(entry.campaign, &broken, run * ZOO_SEED_STRIDE, budget, bug.ops_max)
                    .map_err(context)?;
                let first = report.failures.first();
                found_kinds.push(first.map(|f| f.artifact.violation.kind.clone()));
                if let Some(failure) = first {
                    found.push((
                        failure.cases_to_find,
                        failure.seconds_to_find,
                        failure.artifact.ops.as_array().map_or(0, Vec::len),
                    ));
                }
            }
            let quiet =
                hunt(entry.campaign, &fixed, 0, budget, bug.ops_max).map_err(context)?.failures.is_empty();
            let info = fixes.iter().find(|f| f.name == bug.fix);
            let ok =
                quiet && found_kinds.iter().all(|kind| kind.as_deref().is_some_and(|kind| bug.accepts(kind)));
            rows.push(ZooRow {
                subsystem: entry.name.to_string(),
                bug: bug.name.to_string(),
                fix: bug.fix.to_string(),
                title: info.map_or_else(|| "(fix not listed)".to_string(), |f| f.title.to_string()),
                cve: info.and_then(|f| f.cve).map(str::to_string),
                preset: bug.preset.to_string(),
                checker: bug.checker.to_string(),
                expected_kind: bug.expected_kind.to_string(),
                runs: runs as usize,
                runs_found: found.len(),
                budget_cases: budget,
                median_cases_to_find: median(found.iter().map(|f| f.0).collect()),
                median_seconds_to_find: median(found.iter().map(|f| f.1).collect()),
                median_shrunk_ops: median(found.iter().map(|f| f.2).collect()),
                found_kinds,
                fixed_quiet: quiet,
                ok,
            });
        }
    }
    Ok(rows)
}

/// The rows as a Markdown table.
pub(crate) fn markdown(rows: &[ZooRow]) -> String {
    let mut out = String::from(
        "| subsystem | bug | upstream fix | CVE | fix switch | checker | found as | found in | median cases | median time | shrunk ops | fixed quiet |\n|---|---|---|---|---|---|---|---|---|---|---|---|\n",
    );
    for row in rows {
        let mut kinds: Vec<&str> =
            row.found_kinds.iter().map(|k| k.as_deref().unwrap_or("nothing")).collect();
        kinds.sort_unstable();
        kinds.dedup();
        let found_as = kinds.join(", ");
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | `{}` | {} | {}{} | {}/{} runs | {} | {} | {} | {} |",
            row.subsystem,
            row.bug,
            row.title,
            row.cve.as_deref().unwrap_or("-"),
            row.fix,
            row.checker,
            found_as,
            if row.ok { String::new() } else { format!(" **(expected {})**", row.expected_kind) },
            row.runs_found,
            row.runs,
            row.median_cases_to_find.map_or("-".to_string(), |c| c.to_string()),
            row.median_seconds_to_find.map_or("-".to_string(), |s| format!("{:.3}s", s)),
            row.median_shrunk_ops.map_or("-".to_string(), |s| s.to_string()),
            if row.fixed_quiet { format!("yes ({} cases)", row.budget_cases) } else { "**NO**".to_string() },
        );
    }
    out
}

/// Whether every row is as the subsystem claims.
pub(crate) fn all_ok(rows: &[ZooRow]) -> bool {
    rows.iter().all(|r| r.ok)
}
