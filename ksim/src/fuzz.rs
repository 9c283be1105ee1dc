//! `ksim fuzz`: a campaign over one or more subsystems, split over `--jobs` threads and, across
//! machines, `--shard I/N`.
//!
//! Seeds: case `k` of shard `I/N` uses seed `seed + k·N + I` (sim-core's campaign). With `J` jobs,
//! job `j` runs shard `I + j·N` of `N·J`, so job `j`'s case `k` is the single-job case `k·J + j`:
//! a case budget covers exactly the seeds one job would, whatever `J` is.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};
use sim_core::check::{Budget, CampaignOptions, CampaignReport, Failure, Progress, RunOptions};
use sim_core::threaded::{ThreadedOps, ThreadedOptions};

use crate::error::CliError;
use crate::registry::{self, SubsystemEntry};
use crate::report::{FailureSummary, FuzzReport, SubsystemRun, REPORT_VERSION};

/// The whole default campaign's wall time, split evenly over the subsystems.
pub(crate) const DEFAULT_SECONDS_TOTAL: u64 = 60;
/// Worker threads when `--jobs` is not given (CI machines have 2 cores).
pub(crate) const DEFAULT_JOBS: u64 = 2;
/// Shrink steps per failure.
const SHRINK_STEPS: usize = 400;
/// The longest operation list `--ops` may ask for: a case is generated whole before it runs
/// (2^32 operations failed their allocation and aborted the process) and a failing one is shrunk
/// a step at a time, so longer lists buy nothing a campaign of more cases does not.
pub(crate) const OPS_MAX: usize = 100_000;
/// Longest operation list per thread in a threaded case (`--ops` lowers it).
const THREAD_OPS_MAX: usize = 8;

/// `ksim fuzz`'s arguments, validated.
#[derive(Debug)]
pub(crate) struct FuzzArgs {
    pub(crate) subsystems: Vec<String>,
    pub(crate) kernel: Option<String>,
    pub(crate) fixes_off: Vec<String>,
    pub(crate) seconds: Option<u64>,
    pub(crate) cases: Option<u64>,
    pub(crate) seed: u64,
    pub(crate) shard: (u64, u64),
    pub(crate) jobs: Option<u64>,
    pub(crate) out: PathBuf,
    pub(crate) ops_max: usize,
    /// Threads per case: a threaded campaign (`None`: op-level).
    pub(crate) threads: Option<usize>,
}

struct Selected {
    entry: SubsystemEntry,
    config: serde_json::Value,
}

/// The subsystems a campaign runs: those named (each once, in the order first named), else
/// every one, or those that model `--kernel`'s version. `--fix-off` needs one subsystem.
fn select(args: &FuzzArgs) -> Result<Vec<Selected>, String> {
    let entries = match (&args.kernel, args.subsystems.is_empty()) {
        (_, false) => {
            let firsts = args
                .subsystems
                .iter()
                .enumerate()
                .filter(|&(at, name)| !args.subsystems[..at].contains(name));
            firsts.map(|(_, name)| registry::find(name)).collect::<Result<Vec<_>, _>>()?
        }
        (Some(kernel), true) => registry::modelling(kernel)?,
        (None, true) => registry::registry(),
    };
    if args.subsystems.is_empty() && entries.len() > 1 && !args.fixes_off.is_empty() {
        return Err("--fix-off belongs to one subsystem: name it (ksim fuzz SUBSYSTEM ...)".into());
    }
    entries
        .into_iter()
        .map(|entry| {
            if args.threads.is_some() && entry.threaded.is_none() {
                return Err(format!("{} has no threaded adapter yet (run it without --threads)", entry.name));
            }
            let config = (entry.config)(args.kernel.as_deref(), &args.fixes_off)?;
            Ok(Selected { entry, config })
        })
        .collect()
}

/// Cases job `job` of `jobs` runs so that together they run exactly `cases`.
fn job_cases(cases: u64, job: u64, jobs: u64) -> u64 {
    if job >= cases {
        0
    } else {
        (cases - job).div_ceil(jobs)
    }
}

fn human(count: f64) -> String {
    if count >= 1e6 {
        format!("{:.2}M", count / 1e6)
    } else if count >= 1e3 {
        format!("{:.1}k", count / 1e3)
    } else {
        format!("{count:.0}")
    }
}

#[derive(Default)]
struct Totals {
    cases: AtomicU64,
    ops: AtomicU64,
    failures: AtomicU64,
    /// Threaded cases whose linearizability search gave up at its bound.
    linearizability_bound_hits: AtomicU64,
    /// Threaded cases that ran into the step bound.
    step_bound_hits: AtomicU64,
}

/// Runs one subsystem's campaign over `jobs` threads and merges the jobs' reports. Its arguments
/// were checked before: an error here is a failure while running (an artifact that could not be
/// written, a job that died).
fn run_subsystem(
    selected: &Selected,
    args: &FuzzArgs,
    budget: Budget,
    jobs: u64,
    interrupt: &AtomicBool,
) -> Result<SubsystemRun, CliError> {
    let bar = progress_bar(selected.entry.name);
    let shared = JobShared {
        totals: Totals::default(),
        found: AtomicBool::new(false),
        interrupt,
        started: std::time::Instant::now(),
        bar: &bar,
    };
    let threaded = threaded_options(args);
    let reports: Vec<Result<CampaignReport, String>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..jobs)
            .map(|job| {
                let options = job_options(args, budget, job, jobs);
                let (shared, threaded) = (&shared, threaded.as_ref());
                scope.spawn(move || run_job(selected, &options, threaded, shared))
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|_| Err("a fuzz job panicked".to_string())))
            .collect()
    });
    // Leave one finished line per subsystem on a terminal (the bar itself has no newline), from
    // the final totals (the jobs redraw their line at most every PROGRESS_REDRAW).
    let shown = !bar.is_hidden();
    if shown {
        let finished = format!(
            "{} {:.1}s {}",
            selected.entry.name,
            shared.started.elapsed().as_secs_f64(),
            progress_message(&shared, threaded.as_ref())
        );
        bar.finish_and_clear();
        eprintln!("  {finished}");
    } else {
        bar.finish_and_clear();
    }
    merge_reports(selected, args, reports, interrupt.load(Ordering::Relaxed))
}

/// What every job of one subsystem's campaign shares: running totals for the progress line, the
/// flag that one job found a failure (so the others stop), and Ctrl-C.
struct JobShared<'a> {
    totals: Totals,
    found: AtomicBool,
    interrupt: &'a AtomicBool,
    started: std::time::Instant,
    bar: &'a ProgressBar,
}

fn progress_bar(name: &'static str) -> ProgressBar {
    let bar = ProgressBar::new_spinner();
    bar.set_style(
        ProgressStyle::with_template("{spinner} {prefix:.bold} {elapsed} {wide_msg}")
            .unwrap_or_else(|_| ProgressStyle::default_spinner()),
    );
    bar.set_prefix(name);
    bar.enable_steady_tick(Duration::from_millis(120));
    bar
}

/// Job `job` of `jobs`: its share of a case budget and its shard of the seeds.
fn job_options(args: &FuzzArgs, budget: Budget, job: u64, jobs: u64) -> CampaignOptions {
    let (shard_index, shard_count) = args.shard;
    CampaignOptions {
        seed: args.seed,
        budget: match budget {
            Budget::Cases(cases) => Budget::Cases(job_cases(cases, job, jobs)),
            time => time,
        },
        shard: (shard_index + job * shard_count, shard_count * jobs),
        ops_max: args.ops_max,
        out_dir: Some(args.out.clone()),
        stop_on_failure: true,
        shrink_steps: SHRINK_STEPS,
        run: RunOptions::default(),
    }
}

/// One job's campaign, adding its progress to the shared totals and stopping when another job
/// found a failure or Ctrl-C was pressed.
fn run_job(
    selected: &Selected,
    options: &CampaignOptions,
    threaded: Option<&ThreadedOptions>,
    shared: &JobShared<'_>,
) -> Result<CampaignReport, String> {
    let stop = AtomicBool::new(false);
    let mut last = Progress::default();
    let totals = &shared.totals;
    // The line is drawn only on a terminal, and redrawn at most every PROGRESS_REDRAW: building
    // its text after every case cost a campaign 3,900 instructions a case (taskstats: 39 an
    // operation, callgrind) for a line nobody saw or the bar's tick had not drawn yet. The
    // totals are kept every case; the finished line is built from them once the jobs end.
    let shown = !shared.bar.is_hidden();
    let mut redrawn: Option<std::time::Instant> = None;
    let mut on_progress = |progress: &Progress| {
        totals.cases.fetch_add(progress.cases - last.cases, Ordering::Relaxed);
        totals.ops.fetch_add(progress.ops - last.ops, Ordering::Relaxed);
        totals.failures.fetch_add(progress.failures - last.failures, Ordering::Relaxed);
        let bound_hits = progress.linearizability_bound_hits - last.linearizability_bound_hits;
        totals.linearizability_bound_hits.fetch_add(bound_hits, Ordering::Relaxed);
        totals.step_bound_hits.fetch_add(progress.step_bound_hits - last.step_bound_hits, Ordering::Relaxed);
        last = progress.clone();
        if progress.failures > 0 {
            shared.found.store(true, Ordering::Relaxed);
        }
        if shared.interrupt.load(Ordering::Relaxed) || shared.found.load(Ordering::Relaxed) {
            stop.store(true, Ordering::Relaxed);
        }
        if shown && redrawn.is_none_or(|at| at.elapsed() >= PROGRESS_REDRAW) {
            redrawn = Some(std::time::Instant::now());
            shared.bar.set_message(progress_message(shared, threaded));
        }
    };
    match (threaded, selected.entry.threaded) {
        (Some(threaded), Some(campaign)) => {
            campaign(&selected.config, options, threaded, &stop, &mut on_progress)
        }
        _ => (selected.entry.campaign)(&selected.config, options, &stop, &mut on_progress),
    }
}

/// Least time between two redraws of a job's progress line.
const PROGRESS_REDRAW: Duration = Duration::from_millis(100);

/// The progress line's text: the jobs' totals so far and their rate.
fn progress_message(shared: &JobShared<'_>, threaded: Option<&ThreadedOptions>) -> String {
    let totals = &shared.totals;
    let seconds = shared.started.elapsed().as_secs_f64().max(1e-9);
    let ops = totals.ops.load(Ordering::Relaxed);
    let cases = totals.cases.load(Ordering::Relaxed);
    // A threaded case runs its operations under several schedules: executions per second
    // is the figure to compare with shuttle's own. Bound hits are cases not fully judged.
    let executions = threaded
        .map(|t| {
            format!(
                ", {} executions/s, bound hits: {} linearizability, {} steps",
                human((cases * t.executions as u64) as f64 / seconds),
                totals.linearizability_bound_hits.load(Ordering::Relaxed),
                totals.step_bound_hits.load(Ordering::Relaxed)
            )
        })
        .unwrap_or_default();
    format!(
        "{cases} cases, {} ops, {} ops/s{executions}, {} violations",
        human(ops as f64),
        human(ops as f64 / seconds),
        totals.failures.load(Ordering::Relaxed)
    )
}

/// The threaded options `--threads` and `--ops` ask for (`None`: an op-level campaign).
fn threaded_options(args: &FuzzArgs) -> Option<ThreadedOptions> {
    args.threads.map(|threads| ThreadedOptions {
        ops_per_thread: args.ops_max.min(THREAD_OPS_MAX),
        ..ThreadedOptions::new(threads)
    })
}

/// The jobs' reports as one subsystem run: counts added, coverage merged, failures by seed.
fn merge_reports(
    selected: &Selected,
    args: &FuzzArgs,
    reports: Vec<Result<CampaignReport, String>>,
    interrupted: bool,
) -> Result<SubsystemRun, CliError> {
    let mut run = SubsystemRun {
        subsystem: selected.entry.name.to_string(),
        preset: args.kernel.clone(),
        fixes_off: args.fixes_off.clone(),
        config: selected.config.clone(),
        cases: 0,
        ops: 0,
        seconds: 0.0,
        ops_per_second: 0.0,
        failures: Vec::new(),
        coverage: Default::default(),
        interrupted,
        threads: args.threads,
    };
    for report in reports {
        let report = report.map_err(CliError::Failed)?;
        run.cases += report.progress.cases;
        run.ops += report.progress.ops;
        run.seconds = run.seconds.max(report.progress.seconds);
        for (mark, count) in report.coverage {
            *run.coverage.entry(mark).or_default() += count;
        }
        for failure in report.failures {
            run.failures.push(failure_summary(&failure, args));
        }
    }
    run.failures.sort_by_key(|f| f.seed);
    run.ops_per_second = run.ops as f64 / run.seconds.max(1e-9);
    Ok(run)
}

fn failure_summary(failure: &Failure, args: &FuzzArgs) -> FailureSummary {
    FailureSummary {
        seed: failure.artifact.seed,
        kind: failure.artifact.violation.kind.to_string(),
        message: failure.artifact.violation.message.clone(),
        artifact: failure.path.clone(),
        ops_shrunk: failure
            .artifact
            .ops
            .as_array()
            .map_or_else(|| threaded_ops_count(&failure.artifact.ops), Vec::len),
        ops_unshrunk: failure.artifact.ops_unshrunk,
        // Cases the single-job campaign would have run to reach this seed.
        cases_to_find: (failure.artifact.seed.wrapping_sub(args.seed)) / args.shard.1 + 1,
        seconds_to_find: failure.seconds_to_find,
        shrink_seconds: failure.shrink_seconds,
    }
}

/// Operations in a threaded artifact's case (prefix and every thread).
fn threaded_ops_count(ops: &serde_json::Value) -> usize {
    serde_json::from_value::<ThreadedOps<serde_json::Value>>(ops.clone())
        .map_or(0, |ops| ops.threaded.ops_count())
}

/// The report file's name inside `--out`.
pub(crate) fn report_name(shard: (u64, u64)) -> String {
    if shard.1 == 1 {
        "report.json".to_string()
    } else {
        format!("report-{}-of-{}.json", shard.0, shard.1)
    }
}

/// Runs `ksim fuzz`. Returns the report (already written) for the caller to print.
pub(crate) fn fuzz(args: &FuzzArgs, interrupt: Arc<AtomicBool>) -> Result<FuzzReport, CliError> {
    let (shard_index, shard_count) = args.shard;
    if shard_count == 0 || shard_index >= shard_count {
        return Err(format!("--shard {shard_index}/{shard_count}: need 0 <= I < N").into());
    }
    let jobs = args.jobs.unwrap_or(DEFAULT_JOBS);
    if jobs == 0 {
        return Err(CliError::Usage("--jobs must be at least 1".into()));
    }
    if args.ops_max == 0 {
        return Err(CliError::Usage("--ops must be at least 1".into()));
    }
    if args.ops_max > OPS_MAX {
        return Err(CliError::Usage(format!("--ops must be at most {OPS_MAX}")));
    }
    if args.threads.is_some() {
        sim_core::threaded::env_seed_unset().map_err(CliError::Usage)?;
    }
    let selected = select(args)?;
    let (budget, budget_text) = match (args.cases, args.seconds) {
        (Some(cases), _) => (Budget::Cases(cases), format!("cases {cases}")),
        (None, seconds) => {
            let total = seconds.unwrap_or(DEFAULT_SECONDS_TOTAL);
            let each = Duration::from_secs(total).div_f64(selected.len().max(1) as f64);
            (Budget::Time(each), format!("seconds {total}"))
        }
    };
    std::fs::create_dir_all(&args.out).map_err(|e| format!("cannot create {}: {e}", args.out.display()))?;
    let mut report = FuzzReport {
        ksim_report: REPORT_VERSION,
        seed: args.seed,
        shard_count,
        shards: vec![shard_index],
        budget: budget_text,
        ops_max: args.ops_max,
        subsystems: Vec::new(),
    };
    for one in &selected {
        if interrupt.load(Ordering::Relaxed) {
            break;
        }
        report.subsystems.push(run_subsystem(one, args, budget, jobs, &interrupt)?);
    }
    report.write(&args.out.join(report_name(args.shard))).map_err(CliError::Failed)?;
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::job_cases;

    #[test]
    fn jobs_split_a_case_budget_exactly() {
        for cases in 0..20 {
            for jobs in 1..5 {
                let total: u64 = (0..jobs).map(|job| job_cases(cases, job, jobs)).sum();
                assert_eq!(total, cases, "{cases} cases over {jobs} jobs");
                // Job j's case k is the single-job case k*J + j: all below `cases`.
                for job in 0..jobs {
                    let n = job_cases(cases, job, jobs);
                    assert!(n == 0 || (n - 1) * jobs + job < cases);
                }
            }
        }
    }
}
