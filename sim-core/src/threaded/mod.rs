//! Threaded campaigns: the operations the op-level simulation applies one at a time, run
//! concurrently on 2 to 4 shuttle threads, judged by lockdep and sim-core's detectors, the
//! invariants at quiescence, deadlock detection and linearizability against the reference model.
//!
//! A case ([`ThreadedCase`]) is a seed, a set-up prefix run alone, one operation list per thread
//! and a scheduler ([`SchedulerChoice`]: shuttle's random or PCT scheduler seeded from the case
//! seed, or a recorded schedule). A subsystem joins by implementing [`ThreadedSubject`]: how its
//! model is shared between threads and how one operation runs against the shared model, which
//! operations may overlap and which need a quiescent world, and optionally a key per operation
//! (to split the linearizability search) and which outcomes the kernel leaves non-linearizable.
//!
//! Everything a case runs is made inside a shuttle execution, so [`crate::sync`]'s `threaded`
//! backend makes shuttle objects for it from an ordinary build. The checker's own records (the
//! history, its clock, results) are std-locked and never held across a model call.

mod linearize;
mod schedule;
mod shrink;

use std::collections::BTreeSet;
use std::fmt::Debug;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex as StdMutex, PoisonError};
use std::time::Instant;

use proptest::collection::vec;
use proptest::strategy::{Strategy, ValueTree};
use proptest::test_runner::{Config as ProptestConfig, RngAlgorithm, TestRng, TestRunner};
use serde::{Deserialize, Serialize};

use crate::check::{Artifact, CampaignOptions, CampaignReport, Failure, Progress, Reference, Subject};
use crate::cx::{Cx, LockWaits};
use crate::lockdep::{LockdepReport, ReportMode};
use crate::sim::Sim;
use crate::trace::{CallName, Event, TaskId, TraceMode};
use crate::violation::{Violation, ViolationKind};

pub use linearize::{Entry, Verdict, NODES_MAX};
pub use schedule::{
    env_seed_unset, refuse_seed_override, run_threads, Executions, Recorded, Replay, SchedulerChoice, Step,
};
pub use shrink::shrink;

/// A subsystem as threaded campaigns drive it. Small on purpose: the model shared between
/// threads, one operation against it, and what may overlap.
pub trait ThreadedSubject: Subject<Reference: Clone + Debug, Outcome: Send + 'static> {
    /// The model and the callers' side of the world (checker state behind std locks), shared by
    /// the threads.
    type Shared: Send + Sync + 'static;

    /// The configuration a case with `threads` threads runs (say, one task per thread).
    fn threaded_config(config: &Self::Config, threads: usize) -> Self::Config {
        let _ = threads;
        config.clone()
    }

    /// The operations threaded cases are generated from: the op-level strategy unless the
    /// subsystem weights it towards the operations its races need (a bias, not a scenario: every
    /// operation stays reachable, and which ones overlap is still up to the generator).
    fn threaded_ops(config: &Self::Config) -> proptest::strategy::BoxedStrategy<Self::Op> {
        Self::op_strategy(config)
    }

    /// Builds the model in `sim` (inside the execution, so its locks are shuttle's).
    fn share(sim: &Sim, config: &Self::Config) -> Self::Shared;

    /// `op` as thread `thread` runs it: where operations name a task, the thread's own, so that
    /// what a task holds (handles, registrations) stays with one thread.
    fn on_thread(op: Self::Op, thread: usize) -> Self::Op {
        let _ = thread;
        op
    }

    /// Applies `op` against the shared model in the context `cx` (the thread's; the set-up
    /// prefix's for prefix operations). Checker state is locked briefly, never across a model
    /// call, since a shuttle switch there would find the std lock held.
    fn apply_shared(shared: &Self::Shared, cx: &Cx, op: &Self::Op) -> Self::Outcome;

    /// What thread context `cx` does after its last operation, as a task returning to user space
    /// would (release what it holds, so a thread still running is not left waiting forever on a
    /// thread that finished).
    fn finish_thread(shared: &Self::Shared, cx: &Cx) {
        let _ = (shared, cx);
    }

    /// Whether `op` may overlap others (false: it needs a quiescent world and only ever runs in
    /// the set-up prefix).
    fn concurrent(op: &Self::Op) -> bool {
        let _ = op;
        true
    }

    /// The key that splits the linearizability search (per CPU list, per entry, per page): `None`
    /// for an operation that touches more than one, which keeps the history in one part.
    fn key(op: &Self::Op) -> Option<u64> {
        let _ = op;
        None
    }

    /// Whether the kernel permits `op` an outcome no linearization explains (documented in the
    /// subsystem's chapter); such an outcome is accepted and still advances the reference.
    fn relaxed(op: &Self::Op) -> bool {
        let _ = op;
        false
    }

    /// Whether a finding of `kind` (reported by the model's own checks) is behaviour the kernel
    /// permits when operations overlap (taskstats' per-CPU sequence numbers delivered out of
    /// order); such findings do not fail a threaded case.
    fn permitted(kind: &ViolationKind) -> bool {
        let _ = kind;
        false
    }

    /// The invariants, checked at quiescence (after the prefix, after every thread joined).
    fn check_shared(shared: &Self::Shared, sim: &Sim) -> Result<(), Violation>;

    /// Tears the model down; a leak is a violation.
    fn teardown_shared(shared: Self::Shared, sim: &Sim) -> Result<(), Violation>;
}

/// One threaded case: a set-up prefix run alone, then one list per thread run concurrently.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ThreadedCase<Op> {
    /// Operations run alone before the threads start.
    pub prefix: Vec<Op>,
    /// One operation list per thread.
    pub threads: Vec<Vec<Op>>,
    /// The scheduler.
    pub scheduler: SchedulerChoice,
}

impl<Op> ThreadedCase<Op> {
    /// Operations in the case.
    pub fn ops_count(&self) -> usize {
        self.prefix.len() + self.threads.iter().map(Vec::len).sum::<usize>()
    }
}

/// How threaded cases are generated and run.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ThreadedOptions {
    /// Threads per case (2 to 4).
    pub threads: usize,
    /// Longest operation list per thread.
    pub ops_per_thread: usize,
    /// Longest set-up prefix.
    pub prefix_max: usize,
    /// Schedules tried per case (executions of the same operations).
    pub executions: usize,
    /// Scheduling steps after which an execution is a livelock.
    pub steps_max: usize,
    /// Trace events kept.
    pub trace: TraceMode,
}

impl ThreadedOptions {
    /// `threads` threads of up to 8 operations after up to 6 set-up operations, 4 schedules each.
    pub fn new(threads: usize) -> ThreadedOptions {
        ThreadedOptions {
            threads: threads.clamp(THREADS_MIN, THREADS_MAX),
            ops_per_thread: 8,
            prefix_max: 6,
            executions: 4,
            steps_max: 20_000,
            trace: TraceMode::Tail(400),
        }
    }
}

/// Fewest threads a generated case runs: with one there is nothing to interleave.
pub const THREADS_MIN: usize = 2;

/// Most threads a case runs (shuttle's task ids and the schedule's text form allow more; the
/// linearizability search does not).
pub const THREADS_MAX: usize = 4;

/// Most runs one threaded shrink makes: a run is up to [`ThreadedOptions::executions`] executions,
/// and a candidate that livelocks runs to the step bound.
pub const SHRINK_RUNS_MAX: usize = 150;

/// The coverage mark counting cases whose linearizability search hit its bound.
pub const UNDECIDED_MARK: &str = "threaded:linearizability-bound-hit";

/// The coverage mark counting cases an execution of which hit the step bound
/// ([`ThreadedOptions::steps_max`]).
pub const STEP_BOUND_MARK: &str = "threaded:step-bound-hit";

fn runner_for(seed: u64) -> TestRunner {
    let mut bytes = [0u8; 32];
    bytes[..8].copy_from_slice(&seed.to_le_bytes());
    bytes[8..16].copy_from_slice(b"ksim-thr");
    TestRunner::new_with_rng(ProptestConfig::default(), TestRng::from_seed(RngAlgorithm::ChaCha, &bytes))
}

/// The case seed `seed` stands for: the same on every platform and run. Operations that need a
/// quiescent world stay in the prefix; each thread's operations act as the thread's own task.
pub fn generate<S: ThreadedSubject>(
    config: &S::Config,
    seed: u64,
    options: &ThreadedOptions,
) -> ThreadedCase<S::Op> {
    let mut runner = runner_for(seed);
    let ops = S::threaded_ops(config);
    let prefix = vec(ops.clone(), 0..=options.prefix_max);
    let threads = vec(vec(ops, 1..=options.ops_per_thread.max(1)), options.threads..=options.threads);
    let (prefix, threads) =
        (prefix, threads).new_tree(&mut runner).expect("operation strategies do not reject").current();
    let threads = threads
        .into_iter()
        .enumerate()
        .map(|(thread, ops)| {
            ops.into_iter().filter(|op| S::concurrent(op)).map(|op| S::on_thread(op, thread)).collect()
        })
        .collect();
    ThreadedCase { prefix, threads, scheduler: SchedulerChoice::for_seed(seed) }
}

/// One execution of a case: what it found and everything needed to report and replay it.
#[derive(Debug)]
pub struct ExecutionReport {
    /// Which execution of the case (0-based).
    pub execution: usize,
    /// The first violation.
    pub violation: Option<Violation>,
    /// Operations that completed.
    pub ops_run: usize,
    /// Hash of the whole trace.
    pub trace_hash: u64,
    /// The trace tail.
    pub trace_tail: Vec<Event>,
    /// The tasks' names (one lane per thread).
    pub task_names: std::collections::BTreeMap<TaskId, String>,
    /// Lockdep's reports.
    pub lockdep: Vec<LockdepReport>,
    /// The decisions the scheduler made.
    pub schedule: Recorded,
    /// Parts of the linearizability search given up at the bound.
    pub undecided: usize,
}

/// What one case found: the failing execution, or the last one.
#[derive(Debug)]
pub struct ThreadedReport {
    /// The seed.
    pub seed: u64,
    /// Executions run.
    pub executions: usize,
    /// Operations completed over all executions.
    pub ops_run: usize,
    /// The failing execution, or the last one run.
    pub last: Option<ExecutionReport>,
    /// Coverage marks reached in any execution.
    pub coverage: BTreeSet<&'static str>,
    /// Executions whose linearizability search hit its bound.
    pub undecided: usize,
    /// Whether the last execution ran into the step bound.
    pub step_bound: bool,
}

impl ThreadedReport {
    /// The violation, if an execution found one.
    pub fn violation(&self) -> Option<&Violation> {
        self.last.as_ref().and_then(|last| last.violation.as_ref())
    }
}

/// What one execution's body leaves for the runner (std-locked: the body may never finish).
struct Slot {
    sim: Sim,
    /// The subject's [`ThreadedSubject::permitted`].
    permitted: fn(&ViolationKind) -> bool,
    ops_run: usize,
    undecided: usize,
    /// What each thread was doing, for a deadlock's report.
    in_flight: Vec<Option<String>>,
    /// Each thread's held-and-awaited locks, for a deadlock's report.
    tasks: Vec<Arc<LockWaits>>,
}

pub(crate) fn panic_text(payload: Box<dyn std::any::Any + Send>) -> String {
    if let Some(text) = payload.downcast_ref::<&str>() {
        text.to_string()
    } else if let Some(text) = payload.downcast_ref::<String>() {
        text.clone()
    } else {
        "panic with a non-text payload".to_string()
    }
}

fn locked<T>(mutex: &StdMutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Runs `case` (seed `seed`) under its scheduler, up to `options.executions` executions, stopping
/// at the first that finds a violation.
pub fn run_case<S: ThreadedSubject>(
    config: &S::Config,
    seed: u64,
    case: &ThreadedCase<S::Op>,
    options: &ThreadedOptions,
) -> ThreadedReport {
    let config = S::threaded_config(config, case.threads.len());
    let executions = match case.scheduler {
        SchedulerChoice::Replay { .. } => 1,
        _ => options.executions.max(1),
    };
    let scheduler = match scheduler_for(case).scheduler(seed, executions) {
        Ok(scheduler) => scheduler,
        Err(why) => return unrunnable(seed, Violation::new(ViolationKind::finding("bad-schedule"), why)),
    };
    let slots: Arc<StdMutex<Vec<Slot>>> = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));
    let body = {
        let (slots, stop, case, trace) = (slots.clone(), stop.clone(), Arc::new(case.clone()), options.trace);
        move || execute::<S>(&config, seed, &case, trace, &slots, &stop)
    };
    let ran = run_threads(scheduler, options.steps_max, stop, body);
    let slots = std::mem::take(&mut *locked(&slots));
    let mut report = ThreadedReport {
        seed,
        executions: slots.len(),
        ops_run: slots.iter().map(|s| s.ops_run).sum(),
        last: None,
        coverage: BTreeSet::new(),
        undecided: slots.iter().filter(|s| s.undecided > 0).count(),
        step_bound: ran.escaped.as_deref().is_some_and(hit_step_bound),
    };
    let count = slots.len();
    for (execution, slot) in slots.into_iter().enumerate() {
        report.coverage.extend(slot.sim.marks());
        if execution + 1 < count {
            continue;
        }
        if let Some(escaped) = &ran.escaped {
            slot.sim.report(None, escaped_violation(escaped, &slot));
        }
        let schedule = ran.recorded.get(execution).cloned().unwrap_or_default();
        report.last = Some(execution_report(execution, &slot, schedule));
    }
    report
}

/// The scheduler `case` runs under: its own, but a case of one thread (a shrinker's candidate,
/// or an artifact edited down to one) runs PCT's turn under the random scheduler. PCT orders
/// runnable threads by priority, and with one thread no execution ever has two runnable, which
/// shuttle's PCT refuses with a panic ("did not exercise any concurrency") the campaign took for
/// the model's: a false violation, which a failure's pinned replay then failed to reproduce.
fn scheduler_for<Op>(case: &ThreadedCase<Op>) -> &SchedulerChoice {
    match &case.scheduler {
        SchedulerChoice::Pct { .. } if case.threads.len() < THREADS_MIN => &SchedulerChoice::Random,
        choice => choice,
    }
}

fn unrunnable(seed: u64, violation: Violation) -> ThreadedReport {
    let sim = Sim::new(crate::sim::SimConfig::new(seed));
    let slot = Slot {
        sim,
        permitted: |_| false,
        ops_run: 0,
        undecided: 0,
        in_flight: Vec::new(),
        tasks: Vec::new(),
    };
    slot.sim.report(None, violation);
    ThreadedReport {
        seed,
        executions: 0,
        ops_run: 0,
        last: Some(execution_report(0, &slot, Recorded::default())),
        coverage: BTreeSet::new(),
        undecided: 0,
        step_bound: false,
    }
}

fn execution_report(execution: usize, slot: &Slot, schedule: Recorded) -> ExecutionReport {
    let sim = &slot.sim;
    ExecutionReport {
        execution,
        violation: sim.violations().into_iter().find(|found| !(slot.permitted)(&found.kind)),
        ops_run: slot.ops_run,
        trace_hash: sim.trace_hash(),
        trace_tail: sim.trace().events(),
        task_names: sim.trace().task_names(),
        lockdep: sim.lockdep().reports(),
        schedule,
        undecided: slot.undecided,
    }
}

/// A failure shuttle raised (a deadlock, a step bound) as a violation, with what each thread was
/// doing, the locks each task held and the lock each waited for (from the tasks' [`LockWaits`]
/// records, which the lock path keeps whatever the trace mode).
fn escaped_violation(escaped: &str, slot: &Slot) -> Violation {
    let kind = if escaped.contains("deadlock") {
        ViolationKind::Hang
    } else if hit_step_bound(escaped) {
        ViolationKind::Liveness
    } else {
        ViolationKind::Panic
    };
    let mut message = format!("{escaped}\n");
    for (thread, doing) in slot.in_flight.iter().enumerate() {
        if let Some(doing) = doing {
            message.push_str(&format!("  thread-{thread} was running {doing}\n"));
        }
    }
    message.push_str(&lock_waits_report(&slot.tasks));
    Violation::new(kind, message.trim_end().to_string())
}

/// Whether shuttle's failure text `escaped` is the step bound's.
fn hit_step_bound(escaped: &str) -> bool {
    !escaped.contains("deadlock") && (escaped.contains("max_steps") || escaped.contains("exceeded"))
}

/// One line per task that holds or awaits a lock: `NAME holds A#1, B#2 and waits for C#3 (held
/// by OTHER)`. Instances are numbered in order of first mention, so the text is the same in
/// every run of the same schedule (addresses are not); a page lock is named by its pfn
/// (`PG_locked(pfn 3)`), which `lock_page` and `trylock_page` record.
fn lock_waits_report(tasks: &[Arc<LockWaits>]) -> String {
    let states: Vec<_> = tasks.iter().map(|task| (task.task.clone(), task.snapshot())).collect();
    let mut numbers: Vec<(&'static str, usize)> = Vec::new();
    let mut name = |lock: &crate::cx::LockInstance| -> String {
        if lock.instance == 0 {
            return lock.class.to_string();
        }
        // A page lock is named by its page: the pfn is what a reader can find in the trace.
        if lock.class == crate::mm::page::PAGE_LOCK_CLASS {
            if let Some(pfn) = crate::mm::page::page_lock_pfn(lock.instance) {
                return format!("{}(pfn {pfn})", lock.class);
            }
        }
        let key = (lock.class, lock.instance);
        let number = match numbers.iter().position(|known| *known == key) {
            Some(at) => at + 1,
            None => {
                numbers.push(key);
                numbers.len()
            }
        };
        format!("{}#{number}", lock.class)
    };
    let mut text = String::new();
    for (task, state) in &states {
        if state.held.is_empty() && state.waiting.is_none() {
            continue;
        }
        let held: Vec<String> = state.held.iter().map(&mut name).collect();
        let held = if held.is_empty() { "no lock".to_string() } else { held.join(", ") };
        let waits = match &state.waiting {
            None => "waits for no lock".to_string(),
            Some(awaited) => {
                let holders: Vec<&str> = states
                    .iter()
                    .filter(|(_, other)| {
                        awaited.instance != 0
                            && other
                                .held
                                .iter()
                                .any(|h| (h.class, h.instance) == (awaited.class, awaited.instance))
                    })
                    .map(|(holder, _)| &**holder)
                    .collect();
                let by = if holders.is_empty() {
                    String::new()
                } else {
                    format!(" (held by {})", holders.join(", "))
                };
                format!("waits for {}{by}", name(awaited))
            }
        };
        text.push_str(&format!("  {task} holds {held} and {waits}\n"));
    }
    text
}

/// An operation's bounds in a thread's trace, recorded as words (the thread and the operation's
/// index): the text is built only when the trace keeps events.
const OP: CallName = CallName::new("op");

/// One execution's body, inside shuttle: build, prefix, threads, then the quiescent checks.
fn execute<S: ThreadedSubject>(
    config: &S::Config,
    seed: u64,
    case: &Arc<ThreadedCase<S::Op>>,
    trace: TraceMode,
    slots: &Arc<StdMutex<Vec<Slot>>>,
    stop: &AtomicBool,
) {
    let sim = Sim::new(S::sim_config(config, seed).lockdep(ReportMode::Collect).trace(trace));
    let index = {
        let mut slots = locked(slots);
        let in_flight = vec![None; case.threads.len()];
        slots.push(Slot {
            sim: sim.clone(),
            permitted: S::permitted,
            ops_run: 0,
            undecided: 0,
            in_flight,
            tasks: Vec::new(),
        });
        slots.len() - 1
    };
    let found = run_execution::<S>(config, &sim, case, slots, index);
    if let Some(found) = found {
        if !failed::<S>(&sim) {
            sim.report(None, found);
        }
    }
    if failed::<S>(&sim) {
        stop.store(true, Ordering::Relaxed);
    }
}

fn run_execution<S: ThreadedSubject>(
    config: &S::Config,
    sim: &Sim,
    case: &Arc<ThreadedCase<S::Op>>,
    slots: &Arc<StdMutex<Vec<Slot>>>,
    index: usize,
) -> Option<Violation> {
    let shared = match catch_unwind(AssertUnwindSafe(|| S::share(sim, config))) {
        Ok(shared) => Arc::new(shared),
        Err(payload) => return Some(Violation::new(ViolationKind::Panic, panic_text(payload))),
    };
    let mut reference = S::Reference::new(config);
    // The set-up task lives until the execution ends (a section it leaked is reported at its drop).
    let setup = sim.cx("setup", 0);
    if let Err(end) = run_prefix::<S>(sim, &setup, case, &shared, &mut reference, slots, index) {
        return end;
    }
    if let Some(found) = invariants::<S>(&shared, sim, "after the set-up prefix") {
        return Some(found);
    }
    let history = run_concurrently::<S>(sim, case, &shared, slots, index);
    if failed::<S>(sim) {
        return None;
    }
    if let Some(found) = invariants::<S>(&shared, sim, "at quiescence") {
        return Some(found);
    }
    match linearize::check(&reference, &history, |op| S::key(op), |op| S::relaxed(op)) {
        Verdict::Linearizable => {}
        Verdict::Undecided(parts) => locked(slots)[index].undecided += parts,
        Verdict::Violation(why) => {
            return Some(Violation::new(
                ViolationKind::Mismatch,
                format!(
                    "no order of the {} operations consistent with real time fits the reference: {why}",
                    history.len()
                ),
            ))
        }
    }
    let shared = Arc::try_unwrap(shared).ok()?;
    match catch_unwind(AssertUnwindSafe(|| S::teardown_shared(shared, sim))) {
        Ok(Ok(())) => None,
        Ok(Err(found)) => Some(found),
        Err(payload) => {
            Some(Violation::new(ViolationKind::Panic, format!("teardown: {}", panic_text(payload))))
        }
    }
}

/// The set-up prefix, run by one task before any thread starts, each outcome checked against the
/// reference (which it advances). Err(None): the model reported a violation (the caller reads it
/// from the `Sim`); Err(Some(..)): a panic or a mismatch found here.
fn run_prefix<S: ThreadedSubject>(
    sim: &Sim,
    setup: &Cx,
    case: &ThreadedCase<S::Op>,
    shared: &Arc<S::Shared>,
    reference: &mut S::Reference,
    slots: &Arc<StdMutex<Vec<Slot>>>,
    index: usize,
) -> Result<(), Option<Violation>> {
    if let Some(waits) = setup.lock_waits() {
        locked(slots)[index].tasks.push(waits);
    }
    for op in &case.prefix {
        let outcome = match catch_unwind(AssertUnwindSafe(|| S::apply_shared(shared, setup, op))) {
            Ok(outcome) => outcome,
            Err(payload) => {
                return Err(Some(Violation::new(
                    ViolationKind::Panic,
                    format!("{op:?}: {}", panic_text(payload)),
                )))
            }
        };
        locked(slots)[index].ops_run += 1;
        if failed::<S>(sim) {
            return Err(None);
        }
        if let Err(why) =
            reference.check(op, &outcome).or_else(|why| if S::relaxed(op) { Ok(()) } else { Err(why) })
        {
            return Err(Some(Violation::new(
                ViolationKind::Mismatch,
                format!("set-up {op:?} returned {outcome:?}: {why}"),
            )));
        }
    }
    if catch_unwind(AssertUnwindSafe(|| S::finish_thread(shared, setup))).is_err() {
        return Err(Some(Violation::new(ViolationKind::Panic, "the set-up task finishing: a panic")));
    }
    if failed::<S>(sim) {
        return Err(None);
    }
    Ok(())
}

/// Whether `sim` has a violation the subject does not permit under overlap.
fn failed<S: ThreadedSubject>(sim: &Sim) -> bool {
    sim.has_violations() && sim.violations().iter().any(|found| !S::permitted(&found.kind))
}

fn invariants<S: ThreadedSubject>(shared: &S::Shared, sim: &Sim, when: &str) -> Option<Violation> {
    match catch_unwind(AssertUnwindSafe(|| S::check_shared(shared, sim))) {
        Ok(Ok(())) => None,
        Ok(Err(found)) => Some(found),
        Err(payload) => {
            Some(Violation::new(ViolationKind::Invariant(None), format!("{when}: {}", panic_text(payload))))
        }
    }
}

/// The completed operations of a case's threads.
type History<S> = Vec<Entry<<S as Subject>::Op, <S as Subject>::Outcome>>;

/// Spawns one shuttle thread per list, each applying its operations in its own context and
/// recording invocation and response on the checker clock; joins them; returns the history.
fn run_concurrently<S: ThreadedSubject>(
    sim: &Sim,
    case: &Arc<ThreadedCase<S::Op>>,
    shared: &Arc<S::Shared>,
    slots: &Arc<StdMutex<Vec<Slot>>>,
    index: usize,
) -> Vec<Entry<S::Op, S::Outcome>> {
    let history: Arc<StdMutex<History<S>>> = Arc::default();
    let clock = Arc::new(AtomicU64::new(0));
    let handles: Vec<_> = (0..case.threads.len())
        .map(|thread| {
            let cx = sim.cx(&format!("thread-{thread}"), thread as u32 % sim.cpus());
            if let Some(waits) = cx.lock_waits() {
                locked(slots)[index].tasks.push(waits);
            }
            let (case, shared, slots, history, clock) =
                (case.clone(), shared.clone(), slots.clone(), history.clone(), clock.clone());
            crate::sync::thread::spawn(move || {
                for (op_index, op) in case.threads[thread].iter().enumerate() {
                    if failed::<S>(cx.sim()) {
                        return;
                    }
                    locked(&slots)[index].in_flight[thread] = Some(format!("op {op_index} {op:?}"));
                    let invoked = clock.fetch_add(1, Ordering::Relaxed);
                    let words = [thread as u64, op_index as u64];
                    cx.call_begin(&OP, words, || format!("{thread}.{op_index} {op:?}"));
                    let outcome = match catch_unwind(AssertUnwindSafe(|| S::apply_shared(&shared, &cx, op))) {
                        Ok(outcome) => outcome,
                        Err(payload) => {
                            let text = format!("thread {thread} {op:?}: {}", panic_text(payload));
                            cx.sim().report(None, Violation::new(ViolationKind::Panic, text));
                            return;
                        }
                    };
                    cx.call_end(&OP, words, || format!("{outcome:?}"));
                    let returned = clock.fetch_add(1, Ordering::Relaxed);
                    {
                        let mut slots = locked(&slots);
                        slots[index].in_flight[thread] = None;
                        slots[index].ops_run += 1;
                    }
                    let entry = Entry { thread, index: op_index, op: op.clone(), outcome, invoked, returned };
                    locked(&history).push(entry);
                }
                if catch_unwind(AssertUnwindSafe(|| S::finish_thread(&shared, &cx))).is_err() {
                    let text = format!("thread {thread} finishing: a panic");
                    cx.sim().report(None, Violation::new(ViolationKind::Panic, text));
                }
            })
        })
        .collect();
    for handle in handles {
        let _ = handle.join();
    }
    let history = std::mem::take(&mut *locked(&history));
    history
}

/// The artifact's `ops` for a threaded failure: the case with its schedule recorded, so
/// `ksim replay` runs the same execution.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ThreadedOps<Op> {
    /// The case; its scheduler is the recorded schedule.
    pub threaded: ThreadedCase<Op>,
    /// Preemptions in the recorded schedule.
    pub preemptions: usize,
    /// Threads and operations per thread before shrinking.
    pub unshrunk: Vec<usize>,
    /// The step bound the case ran under ([`ThreadedOptions::steps_max`]), so that a replay of
    /// an execution that hit it stops at the same step (absent in older artifacts: the default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub steps_max: Option<usize>,
}

/// Whether an artifact's `ops` hold a threaded case.
pub fn is_threaded(artifact: &Artifact) -> bool {
    artifact.ops.get("threaded").is_some()
}

/// The failing execution's case with its schedule pinned, run once more to check it fails.
fn pinned<S: ThreadedSubject>(case: &ThreadedCase<S::Op>, schedule: &Recorded) -> ThreadedCase<S::Op> {
    ThreadedCase { scheduler: SchedulerChoice::Replay { schedule: schedule.encode() }, ..case.clone() }
}

/// Builds and writes a threaded failure's artifact from a replayable (pinned) case.
fn failure_from<S: ThreadedSubject>(
    config: &S::Config,
    seed: u64,
    case: &ThreadedCase<S::Op>,
    unshrunk: &ThreadedCase<S::Op>,
    options: &ThreadedOptions,
    out_dir: Option<&std::path::Path>,
    shrink_seconds: f64,
) -> Result<Failure, String> {
    let report = run_case::<S>(config, seed, case, options);
    let Some(last) = report.last.filter(|last| last.violation.is_some()) else {
        return Err(format!(
            "{} seed {seed}: the pinned threaded case no longer fails (nondeterminism?)",
            S::NAME
        ));
    };
    let violation = last.violation.clone().expect("filtered above");
    let ops = ThreadedOps {
        threaded: pinned::<S>(case, &last.schedule),
        preemptions: last.schedule.preemptions,
        unshrunk: unshrunk.threads.iter().map(Vec::len).collect(),
        steps_max: Some(options.steps_max),
    };
    let mut artifact = Artifact {
        ksim_artifact: crate::check::ARTIFACT_VERSION,
        subsystem: S::NAME.to_string(),
        config: serde_json::to_value(config).map_err(|e| e.to_string())?,
        seed,
        ops: serde_json::to_value(&ops).map_err(|e| e.to_string())?,
        ops_unshrunk: unshrunk.ops_count(),
        shrink_seconds,
        violation,
        violation_at: case.ops_count().saturating_sub(1),
        trace_hash: last.trace_hash,
        trace_tail: last.trace_tail,
        lockdep: last.lockdep,
        replay: format!("ksim fuzz {} --threads {} --seed {seed} --cases 1", S::NAME, unshrunk.threads.len()),
    };
    let path = match out_dir {
        Some(dir) => Some(artifact.write_found(dir, &format!("{}-threaded-seed{seed}", S::NAME))?),
        None => None,
    };
    Ok(Failure { artifact, path, cases_to_find: 0, seconds_to_find: 0.0, shrink_seconds })
}

/// A replayed threaded artifact.
#[derive(Debug)]
pub struct ThreadedReplay {
    /// The execution.
    pub execution: ExecutionReport,
    /// Same violation kind and same trace hash as recorded.
    pub exact: bool,
    /// The case that ran.
    pub case_threads: usize,
}

/// Runs a threaded artifact's recorded execution again, keeping the whole trace.
pub fn replay<S: ThreadedSubject>(artifact: &Artifact) -> Result<ThreadedReplay, String> {
    let (config, ops): (S::Config, ThreadedOps<S::Op>) = artifact.decode(S::NAME, "threaded operations")?;
    S::check_config(&config).map_err(|e| format!("artifact config: {e}"))?;
    // A schedule that does not decode is a corrupt file, not a finding of the replay's.
    if let SchedulerChoice::Replay { schedule } = &ops.threaded.scheduler {
        Recorded::decode(schedule).map_err(|e| format!("artifact schedule: {e}"))?;
    }
    let defaults = ThreadedOptions::new(ops.threaded.threads.len());
    let steps_max = ops.steps_max.unwrap_or(defaults.steps_max);
    let options = ThreadedOptions { trace: TraceMode::Full, steps_max, ..defaults };
    let report = run_case::<S>(&config, artifact.seed, &ops.threaded, &options);
    let execution = report.last.ok_or("the replay ran no execution")?;
    let exact = execution.trace_hash == artifact.trace_hash
        && execution.violation.as_ref().is_some_and(|found| found.kind == artifact.violation.kind);
    Ok(ThreadedReplay { execution, exact, case_threads: ops.threaded.threads.len() })
}

/// A threaded campaign: as [`crate::check::campaign`] (budget, shard, progress, stop, artifacts
/// written before they are reported), each case `options.threads` threads.
pub fn campaign<S: ThreadedSubject>(
    config: &S::Config,
    campaign: &CampaignOptions,
    options: &ThreadedOptions,
    stop: &AtomicBool,
    progress: &mut dyn FnMut(&Progress),
) -> Result<CampaignReport, String> {
    let (shard_index, shard_count) = campaign.shard;
    let mut report = CampaignReport::start(S::NAME, campaign)?;
    let started = Instant::now();
    for case_index in 0u64.. {
        let done = match campaign.budget {
            crate::check::Budget::Cases(cases) => case_index >= cases,
            crate::check::Budget::Time(limit) => started.elapsed() >= limit,
        };
        if done {
            break;
        }
        if stop.load(Ordering::Relaxed) {
            report.interrupted = true;
            break;
        }
        let seed = campaign.seed.wrapping_add(case_index.wrapping_mul(shard_count)).wrapping_add(shard_index);
        let case = generate::<S>(config, seed, options);
        let run = run_case::<S>(config, seed, &case, options);
        report.progress.cases += 1;
        report.progress.ops += run.ops_run as u64;
        for mark in &run.coverage {
            *report.coverage.entry(mark.to_string()).or_default() += 1;
        }
        if run.undecided > 0 {
            *report.coverage.entry(UNDECIDED_MARK.to_string()).or_default() += 1;
            report.progress.linearizability_bound_hits += 1;
        }
        if run.step_bound {
            *report.coverage.entry(STEP_BOUND_MARK.to_string()).or_default() += 1;
            report.progress.step_bound_hits += 1;
        }
        if let Some(last) = run.last.as_ref().filter(|last| last.violation.is_some()) {
            let seconds_to_find = started.elapsed().as_secs_f64();
            let shrink_started = Instant::now();
            let failing = pinned::<S>(&case, &last.schedule);
            let kind = last.violation.as_ref().map(|v| v.kind.clone()).expect("filtered above");
            let shrunk = if campaign.shrink_steps > 0 {
                let runs = campaign.shrink_steps.min(SHRINK_RUNS_MAX);
                shrink::<S>(config, seed, &failing, &case.scheduler, &kind, options, runs)
            } else {
                failing
            };
            let seconds = shrink_started.elapsed().as_secs_f64();
            let failure = failure_from::<S>(
                config,
                seed,
                &shrunk,
                &case,
                options,
                campaign.out_dir.as_deref(),
                seconds,
            )?;
            report.push_failure(failure, seconds_to_find);
        }
        if report.case_done(started, campaign.stop_on_failure, progress) {
            break;
        }
    }
    report.progress.seconds = started.elapsed().as_secs_f64();
    Ok(report)
}

/// Cases a threaded zoo hunt tries per run at most (each case up to
/// [`ThreadedOptions::executions`] schedules).
pub const ZOO_CASES_MAX: u64 = 400;

/// The zoo's hunt (`sim_core::zoo::hunt`) under threaded campaigns on three threads: `runs` fresh
/// seed ranges with the entry's fix off (each up to `cases` or [`ZOO_CASES_MAX`] cases, no
/// shrinking: the zoo wants the time to find), then the fixed kernel for the same budget.
pub fn hunt<S: crate::check::Catalog + ThreadedSubject>(
    entry: &crate::check::ZooEntry,
    runs: u64,
    cases: Option<u64>,
) -> Result<crate::zoo::ZooOutcome, String> {
    let context = |error: String| format!("{} zoo entry {:?} (threaded): {error}", S::NAME, entry.name);
    let broken = S::config(Some(entry.kernel), &[entry.fix.to_string()]).map_err(context)?;
    let fixed = S::config(Some(entry.kernel), &[]).map_err(context)?;
    let budget_cases = cases.unwrap_or(entry.cases_max).min(ZOO_CASES_MAX);
    let options = ThreadedOptions::new(3);
    let first_failure = |config: &S::Config, seed: u64| -> Result<Option<Failure>, String> {
        let campaign_options =
            CampaignOptions { seed, shrink_steps: 0, ..CampaignOptions::cases(budget_cases) };
        let report = campaign::<S>(config, &campaign_options, &options, &AtomicBool::new(false), &mut |_| {})
            .map_err(context)?;
        Ok(report.failures.into_iter().next())
    };
    let runs = (0..runs)
        .map(|run| first_failure(&broken, run * crate::zoo::ZOO_SEED_STRIDE))
        .collect::<Result<_, _>>()?;
    let fixed_failure = first_failure(&fixed, 0)?;
    Ok(crate::zoo::ZooOutcome { entry: entry.clone(), budget_cases, runs, fixed_failure })
}
