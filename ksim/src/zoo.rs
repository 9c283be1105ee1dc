//! `ksim zoo`: every historical bug the subsystems publish, hunted from several fresh seed ranges
//! with its fix switched off, and the fixed configuration run for the same budget.

use serde::Serialize;
use sim_core::check::{Failure, FixInfo};
use sim_core::fixes::KernelVersion;
use sim_core::loom_runner::LoomOutcome;
use sim_core::zoo::ZooOutcome;
use std::fmt::Write as _;

use crate::registry;

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
    commit: String,
    kernel: String,
    checker: String,
    expected: Vec<String>,
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
    /// The bug under each checker that applies: `op-level` (the hunt above, lockdep and the
    /// detectors inside it), `threaded` (three threads under shuttle's schedulers, where the
    /// subsystem declares its threaded adapter) and `loom` (the row's loom model, every
    /// interleaving within its preemption bound, so one run; where the subsystem has one).
    checkers: Vec<CheckerResult>,
}

/// One checker's result on one bug.
#[derive(Debug, Serialize)]
pub(crate) struct CheckerResult {
    checker: String,
    /// Runs that found it as one of the expected kinds.
    runs_found: usize,
    runs: usize,
    median_seconds_to_find: Option<f64>,
    /// The kinds found in any run (a threaded run may find an ABBA as the deadlock itself).
    found_kinds: Vec<String>,
    /// The fixed kernel stayed quiet for the same budget.
    fixed_quiet: bool,
}

fn checker_result(checker: &str, outcome: &ZooOutcome) -> CheckerResult {
    let accepted: Vec<&Failure> =
        outcome.found().filter(|f| outcome.entry.accepts(&f.artifact.violation.kind)).collect();
    let mut found_kinds: Vec<String> =
        outcome.found().map(|f| f.artifact.violation.kind.to_string()).collect();
    found_kinds.sort_unstable();
    found_kinds.dedup();
    CheckerResult {
        checker: checker.to_string(),
        runs_found: accepted.len(),
        runs: outcome.runs.len(),
        median_seconds_to_find: median(accepted.iter().map(|f| f.seconds_to_find).collect()),
        found_kinds,
        fixed_quiet: outcome.fixed_quiet(),
    }
}

/// The loom column: one run, since loom explores every interleaving within the bound; the time is
/// loom's to the failing interleaving.
fn loom_result(outcome: &LoomOutcome) -> CheckerResult {
    let found = outcome.found();
    CheckerResult {
        checker: "loom".to_string(),
        runs_found: usize::from(found),
        runs: 1,
        median_seconds_to_find: found.then_some(outcome.buggy.seconds),
        found_kinds: outcome.buggy.finding.iter().map(|finding| finding.kind.to_string()).collect(),
        fixed_quiet: outcome.fixed_quiet(),
    }
}

fn median<T: Copy + PartialOrd>(mut values: Vec<T>) -> Option<T> {
    values.sort_by(|a, b| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal));
    values.get(values.len() / 2).copied()
}

/// Runs the zoo over `subsystems` (empty: all). `cases` overrides each entry's budget; `runs` fresh
/// seed ranges per bug. Each bug is hunted by `sim_core::zoo::hunt`, the routine the zoo tests use.
pub(crate) fn zoo(
    subsystems: &[String],
    cases: Option<u64>,
    runs: u64,
    kernel: Option<&str>,
) -> Result<Vec<ZooRow>, String> {
    if runs == 0 {
        return Err("--runs must be at least 1".into());
    }
    // No case can find a bug: every row would read "not found" for want of a budget.
    if cases == Some(0) {
        return Err("--cases must be at least 1".into());
    }
    let mut entries = if subsystems.is_empty() {
        registry::registry()
    } else {
        subsystems.iter().map(|name| registry::find(name)).collect::<Result<Vec<_>, _>>()?
    };
    // `ksim zoo demo demo` hunts demo's bugs once: a second hunt would only repeat its rows.
    let mut seen = Vec::new();
    entries.retain(|entry| {
        let first = !seen.contains(&entry.name);
        seen.push(entry.name);
        first
    });
    let version = match kernel {
        Some(kernel) => {
            // A version, not a preset (`registry::modelling` takes both).
            let version = kernel.parse::<KernelVersion>()?;
            let modelling = registry::modelling(kernel)?;
            entries.retain(|entry| modelling.iter().any(|m| m.name == entry.name));
            if entries.is_empty() {
                return Err(format!("none of {} models kernel {kernel}", subsystems.join(", ")));
            }
            Some(version)
        }
        None => None,
    };
    let mut rows = Vec::new();
    for entry in entries {
        let fixes = (entry.fixes)();
        for bug in (entry.zoo)() {
            let outcome = (entry.hunt)(&bug, runs, cases)?;
            let info = fixes.iter().find(|f| f.name == bug.fix);
            if version.is_some_and(|version| info.is_some_and(|fix| fix.landed_in <= version)) {
                continue;
            }
            let mut row = row(entry.name, &outcome, info);
            row.checkers.push(checker_result("op-level", &outcome));
            if let Some(hunt) = entry.threaded_hunt {
                row.checkers.push(checker_result("threaded", &hunt(&bug, runs, cases)?));
            }
            if let Some(outcome) = entry.loom_hunt.map(|hunt| hunt(&bug)).transpose()?.flatten() {
                row.checkers.push(loom_result(&outcome));
            }
            rows.push(row);
        }
    }
    Ok(rows)
}

fn row(subsystem: &str, outcome: &ZooOutcome, info: Option<&FixInfo>) -> ZooRow {
    let bug = &outcome.entry;
    let found: Vec<&Failure> = outcome.found().collect();
    ZooRow {
        subsystem: subsystem.to_string(),
        bug: bug.name.to_string(),
        fix: bug.fix.to_string(),
        title: info.map_or_else(|| "(fix not listed)".to_string(), |f| f.title.clone()),
        commit: info.map_or_else(|| "unverified".to_string(), |f| f.commit.clone()),
        cve: info.and_then(|f| f.cve.clone()),
        kernel: bug.kernel.to_string(),
        checker: bug.checker.to_string(),
        expected: bug.expected.iter().map(ToString::to_string).collect(),
        found_kinds: outcome
            .runs
            .iter()
            .map(|run| run.as_ref().map(|f| f.artifact.violation.kind.to_string()))
            .collect(),
        runs: outcome.runs.len(),
        runs_found: found.len(),
        budget_cases: outcome.budget_cases,
        median_cases_to_find: median(found.iter().map(|f| f.cases_to_find).collect()),
        median_seconds_to_find: median(found.iter().map(|f| f.seconds_to_find).collect()),
        median_shrunk_ops: median(
            found.iter().map(|f| f.artifact.ops.as_array().map_or(0, Vec::len)).collect(),
        ),
        fixed_quiet: outcome.fixed_quiet(),
        ok: outcome.ok(),
        checkers: Vec::new(),
    }
}

/// The rows as a Markdown table.
pub(crate) fn markdown(rows: &[ZooRow]) -> String {
    let mut out = String::from(
        "| subsystem | bug | upstream fix | CVE | fix switch | checker | found as | found in | median cases | median time | shrunk ops | fixed quiet | per checker (found in, median time) |\n|---|---|---|---|---|---|---|---|---|---|---|---|---|\n",
    );
    for row in rows {
        let mut kinds: Vec<&str> =
            row.found_kinds.iter().map(|k| k.as_deref().unwrap_or("nothing")).collect();
        kinds.sort_unstable();
        kinds.dedup();
        let found_as = kinds.join(", ");
        let _ = writeln!(
            out,
            "| {} | {} | {} ({}) | {} | `{}` | {} | {}{} | {}/{} runs | {} | {} | {} | {} | {} |",
            row.subsystem,
            row.bug,
            row.title,
            row.commit,
            row.cve.as_deref().unwrap_or("-"),
            row.fix,
            row.checker,
            found_as,
            if row.ok { String::new() } else { format!(" **(expected {})**", row.expected.join(" or ")) },
            row.runs_found,
            row.runs,
            row.median_cases_to_find.map_or("-".to_string(), |c| c.to_string()),
            row.median_seconds_to_find.map_or("-".to_string(), |s| format!("{:.3}s", s)),
            row.median_shrunk_ops.map_or("-".to_string(), |s| s.to_string()),
            if row.fixed_quiet { format!("yes ({} cases)", row.budget_cases) } else { "**NO**".to_string() },
            per_checker(&row.checkers),
        );
    }
    out.push_str(LOOM_NOTE);
    out
}

/// The table's note on the loom column.
const LOOM_NOTE: &str =
    "\nloom: the row's loom model with the fix off and on, every interleaving within its \
                         preemption bound, so always 1 run (found or not; the time is loom's to the failing \
                         interleaving); `loom –`: the subsystem has no loom model of that row.\n";

/// The per-checker cell: `op-level 3/3 0.01s; threaded 2/3 0.40s (hang)`.
fn per_checker(checkers: &[CheckerResult]) -> String {
    let mut cells: Vec<String> = checkers
        .iter()
        .map(|c| {
            let time = c.median_seconds_to_find.map_or("-".to_string(), |s| format!("{s:.2}s"));
            let other: Vec<&String> = c.found_kinds.iter().collect();
            let kinds = if c.runs_found < c.runs && !other.is_empty() {
                format!(" (found as {})", c.found_kinds.join(", "))
            } else {
                String::new()
            };
            let quiet = if c.fixed_quiet { "" } else { ", fixed NOT quiet" };
            format!("{} {}/{} {time}{kinds}{quiet}", c.checker, c.runs_found, c.runs)
        })
        .collect();
    if !checkers.iter().any(|c| c.checker == "loom") {
        cells.push("loom –".to_string());
    }
    cells.join("; ")
}

/// Whether every row is as the subsystem claims.
pub(crate) fn all_ok(rows: &[ZooRow]) -> bool {
    rows.iter().all(|r| r.ok)
}
