//! The JSON report `ksim fuzz` writes, the table it prints, and `ksim merge`, which combines the
//! reports of a campaign's shards into one.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// The current report format.
pub(crate) const REPORT_VERSION: u32 = 1;

/// What one `ksim fuzz` run (or a merge of shards) found.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct FuzzReport {
    /// File format version.
    pub(crate) ksim_report: u32,
    /// The first seed.
    pub(crate) seed: u64,
    /// The shard count N of `--shard I/N`.
    pub(crate) shard_count: u64,
    /// The shard indices this report covers (one for a fuzz run; several after a merge).
    pub(crate) shards: Vec<u64>,
    /// The budget, as the command line gave it (`"cases 1000"`, `"seconds 60"`).
    pub(crate) budget: String,
    /// Longest operation list per case.
    pub(crate) ops_max: usize,
    /// One entry per subsystem, in the order run.
    pub(crate) subsystems: Vec<SubsystemRun>,
}

/// One subsystem's campaign.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct SubsystemRun {
    pub(crate) subsystem: String,
    pub(crate) preset: Option<String>,
    pub(crate) fixes_off: Vec<String>,
    /// The configuration run, as JSON.
    pub(crate) config: serde_json::Value,
    pub(crate) cases: u64,
    pub(crate) ops: u64,
    /// Wall seconds (the longest of the jobs or shards: they run side by side).
    pub(crate) seconds: f64,
    /// Operations per second summed over jobs and shards.
    pub(crate) ops_per_second: f64,
    pub(crate) failures: Vec<FailureSummary>,
    /// Coverage marks and how many cases reached each.
    pub(crate) coverage: BTreeMap<String, u64>,
    /// Whether Ctrl-C ended it early.
    pub(crate) interrupted: bool,
    /// Threads per case when the campaign was threaded (absent: op-level).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) threads: Option<usize>,
}

/// One failure, with where its artifact is.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct FailureSummary {
    pub(crate) seed: u64,
    pub(crate) kind: String,
    pub(crate) message: String,
    pub(crate) artifact: Option<PathBuf>,
    pub(crate) ops_shrunk: usize,
    pub(crate) ops_unshrunk: usize,
    pub(crate) cases_to_find: u64,
    pub(crate) seconds_to_find: f64,
    /// Wall seconds spent shrinking (absent in older reports).
    #[serde(default)]
    pub(crate) shrink_seconds: f64,
}

impl FuzzReport {
    /// Failures over every subsystem.
    pub(crate) fn failures_count(&self) -> usize {
        self.subsystems.iter().map(|s| s.failures.len()).sum()
    }

    /// Writes the report whole or not at all.
    pub(crate) fn write(&self, path: &Path) -> Result<(), String> {
        let text = serde_json::to_string_pretty(self).map_err(|e| e.to_string())?;
        let temporary = path.with_extension("json.tmp");
        std::fs::write(&temporary, text)
            .and_then(|()| std::fs::rename(&temporary, path))
            .map_err(|e| format!("cannot write {}: {e}", path.display()))
    }

    /// Reads a report, with one clear line for a missing or corrupt file.
    pub(crate) fn read(path: &Path) -> Result<FuzzReport, String> {
        let text =
            std::fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        let report: FuzzReport = serde_json::from_str(&text)
            .map_err(|e| format!("{} is not a ksim fuzz report: {e}", path.display()))?;
        if report.ksim_report != REPORT_VERSION {
            return Err(format!(
                "{} is a version {} report; this ksim reads version {REPORT_VERSION}",
                path.display(),
                report.ksim_report
            ));
        }
        Ok(report)
    }

    /// The per-subsystem table, then one paragraph per failure.
    pub(crate) fn render(&self) -> String {
        let mut out = draw_table(&self.table_rows());
        for run in self.subsystems.iter().filter(|run| run.threads.is_some()) {
            let _ = writeln!(out, "{}", bound_hits_line(run));
        }
        for run in &self.subsystems {
            for failure in &run.failures {
                draw_failure(&mut out, &run.subsystem, failure);
            }
        }
        out
    }

    /// The table's header row and one row per subsystem.
    fn table_rows(&self) -> Vec<[String; TABLE_COLUMNS]> {
        let header =
            ["subsystem", "preset", "fixes off", "cases", "ops", "ops/s", "violations", "first violation"];
        let mut rows = vec![header.map(str::to_string)];
        for run in &self.subsystems {
            rows.push([
                format!("{}{}", run.subsystem, if run.interrupted { " (interrupted)" } else { "" }),
                kernel_column(run),
                if run.fixes_off.is_empty() { "-".to_string() } else { run.fixes_off.join(",") },
                run.cases.to_string(),
                run.ops.to_string(),
                format!("{:.0}", run.ops_per_second),
                run.failures.len().to_string(),
                run.failures
                    .first()
                    .map_or_else(|| "-".to_string(), |f| format!("{} (seed {})", f.kind, f.seed)),
            ]);
        }
        rows
    }
}

/// The table's kernel: `--kernel` as given, else the kernel the subsystem runs by default (its
/// preset plus any `+fix` the default adds: a bare preset name would claim a kernel the run was
/// not), else the configuration's preset name.
fn kernel_column(run: &SubsystemRun) -> String {
    if let Some(kernel) = &run.preset {
        return kernel.clone();
    }
    let default =
        crate::registry::find(&run.subsystem).ok().and_then(|e| crate::registry::default_kernel(&e));
    let config_preset = run.config.get("preset").and_then(|p| p.as_str()).map(str::to_string);
    default.or(config_preset).unwrap_or_else(|| "default".to_string())
}

/// A threaded run's bound hits: cases whose linearizability search gave up at its bound (some
/// outcomes unjudged) and cases that ran into the step bound (a liveness failure).
fn bound_hits_line(run: &SubsystemRun) -> String {
    let hits = |mark: &str| run.coverage.get(mark).copied().unwrap_or(0);
    format!(
        "{} ({} threads, {}): bound hits: {} at the linearizability search's bound, {} at the step bound",
        run.subsystem,
        run.threads.unwrap_or(0),
        count(run.cases, "case"),
        hits(sim_core::threaded::UNDECIDED_MARK),
        hits(sim_core::threaded::STEP_BOUND_MARK)
    )
}

/// `n` and `noun`, plural unless `n` is 1 ("1 case", "2 cases").
fn count(n: u64, noun: &str) -> String {
    if n == 1 {
        format!("1 {noun}")
    } else {
        format!("{n} {noun}s")
    }
}

/// Columns of the campaign table.
const TABLE_COLUMNS: usize = 8;

/// `rows` as aligned columns (counts right-aligned), the header ruled off.
fn draw_table(rows: &[[String; TABLE_COLUMNS]]) -> String {
    let mut widths = [0usize; TABLE_COLUMNS];
    for row in rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    for (index, row) in rows.iter().enumerate() {
        let line: Vec<String> = row
            .iter()
            .zip(widths)
            .enumerate()
            .map(|(column, (cell, width))| {
                if (3..=6).contains(&column) {
                    format!("{cell:>width$}")
                } else {
                    format!("{cell:<width$}")
                }
            })
            .collect();
        let _ = writeln!(out, "{}", line.join("  ").trim_end());
        if index == 0 {
            let rule: Vec<String> = widths.iter().map(|w| "-".repeat(*w)).collect();
            let _ = writeln!(out, "{}", rule.join("  "));
        }
    }
    out
}

/// One failure's paragraph: what, how fast it was found and shrunk, and how to replay it.
fn draw_failure(out: &mut String, subsystem: &str, failure: &FailureSummary) {
    let _ =
        writeln!(out, "\nVIOLATION {subsystem} seed {}: {}: {}", failure.seed, failure.kind, failure.message);
    let _ = writeln!(
        out,
        "  found after {} ({:.2}s); shrunk from {} to {} operations in {:.2}s",
        count(failure.cases_to_find, "case"),
        failure.seconds_to_find,
        failure.ops_unshrunk,
        failure.ops_shrunk,
        failure.shrink_seconds
    );
    if let Some(path) = &failure.artifact {
        let _ = writeln!(out, "  artifact: {}", path.display());
        let _ = writeln!(out, "  replay:   ksim replay {}", path.display());
    }
}

/// Combines shard reports of one campaign: same seed, shard count, budget, operations, threads
/// and configurations; disjoint shards, each within the shard count. Missing shards are allowed
/// and listed by the caller.
pub(crate) fn merge(reports: &[(PathBuf, FuzzReport)]) -> Result<FuzzReport, String> {
    let Some((first_path, first)) = reports.first() else {
        return Err("merge needs at least one report".to_string());
    };
    check_shard_bounds(first_path, first)?;
    let mut merged = first.clone();
    let mut shards: BTreeSet<u64> = first.shards.iter().copied().collect();
    for (path, report) in &reports[1..] {
        check_same_campaign(first_path, first, path, report)?;
        check_shard_bounds(path, report)?;
        for shard in &report.shards {
            if !shards.insert(*shard) {
                return Err(format!(
                    "shard {shard}/{} appears twice (again in {})",
                    first.shard_count,
                    path.display()
                ));
            }
        }
        for (ours, theirs) in merged.subsystems.iter_mut().zip(&report.subsystems) {
            add_run(ours, theirs).map_err(|field| {
                format!(
                    "{}: {} {field} overflows when added to the other shards' (a corrupt report?)",
                    path.display(),
                    ours.subsystem
                )
            })?;
        }
    }
    merged.shards = shards.into_iter().collect();
    Ok(merged)
}

/// A report's shards must be some of `0..shard_count`: a fuzz run's `--shard I/N` keeps
/// `0 <= I < N`, so anything else is a hand-edited or corrupt file.
fn check_shard_bounds(path: &Path, report: &FuzzReport) -> Result<(), String> {
    let count = report.shard_count;
    if count == 0 {
        return Err(format!("{}: shard count 0 (a campaign has at least one shard)", path.display()));
    }
    if report.shards.is_empty() {
        return Err(format!("{}: names no shard of {count}", path.display()));
    }
    match report.shards.iter().find(|&&shard| shard >= count) {
        Some(shard) => Err(format!("{}: shard {shard} of {count} (need 0 <= I < N)", path.display())),
        None => Ok(()),
    }
}

/// `report` (from `path`) and `first` (from `first_path`) are shards of one campaign: the same
/// seed, shard count, budget, `--ops`, subsystems, and per subsystem the same threads and config.
fn check_same_campaign(
    first_path: &Path,
    first: &FuzzReport,
    path: &Path,
    report: &FuzzReport,
) -> Result<(), String> {
    let differs = |what: &str, ours: String, theirs: String| {
        Err(format!(
            "{} and {} are not shards of one campaign: {what} {ours} vs {theirs}",
            first_path.display(),
            path.display()
        ))
    };
    if report.seed != first.seed {
        return differs("seed", first.seed.to_string(), report.seed.to_string());
    }
    if report.shard_count != first.shard_count {
        return differs("shard count", first.shard_count.to_string(), report.shard_count.to_string());
    }
    if report.budget != first.budget {
        return differs("budget", first.budget.clone(), report.budget.clone());
    }
    if report.ops_max != first.ops_max {
        return differs("--ops", first.ops_max.to_string(), report.ops_max.to_string());
    }
    let names = |r: &FuzzReport| r.subsystems.iter().map(|s| s.subsystem.clone()).collect::<Vec<_>>();
    if names(report) != names(first) {
        return differs("subsystems", names(first).join(","), names(report).join(","));
    }
    for (ours, theirs) in first.subsystems.iter().zip(&report.subsystems) {
        if ours.threads != theirs.threads {
            return differs(&format!("{} threads", ours.subsystem), threads(ours), threads(theirs));
        }
        if ours.config != theirs.config {
            let what = format!("{} config", ours.subsystem);
            return differs(&what, ours.config.to_string(), theirs.config.to_string());
        }
    }
    Ok(())
}

/// A run's `--threads`, as a merge's refusal names it.
fn threads(run: &SubsystemRun) -> String {
    run.threads.map_or_else(|| "none (op-level)".to_string(), |threads| threads.to_string())
}

/// Adds another shard's run of the same subsystem to `ours`; on a count that overflows, the
/// field's name (`ours` is then partly added: the caller gives up on the merge).
fn add_run(ours: &mut SubsystemRun, theirs: &SubsystemRun) -> Result<(), String> {
    ours.cases = ours.cases.checked_add(theirs.cases).ok_or("cases")?;
    ours.ops = ours.ops.checked_add(theirs.ops).ok_or("ops")?;
    ours.seconds = ours.seconds.max(theirs.seconds);
    ours.ops_per_second += theirs.ops_per_second;
    ours.failures.extend(theirs.failures.iter().cloned());
    ours.failures.sort_by_key(|f| f.seed);
    for (mark, count) in &theirs.coverage {
        let total = ours.coverage.entry(mark.clone()).or_default();
        *total = total.checked_add(*count).ok_or_else(|| format!("coverage count {mark}"))?;
    }
    ours.interrupted |= theirs.interrupted;
    Ok(())
}
