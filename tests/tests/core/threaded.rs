//! Threaded campaigns over every subsystem with a `ThreadedSubject`: each default preset stays
//! quiet on three threads (and reaches the states its op-level property test reaches), the
//! runtime dual backend made shuttle objects inside executions and parking_lot ones outside, and
//! a seed gives the same case, schedule and trace every time (1000 seeds per subsystem, run
//! twice, most of them overlapping operations).

use std::sync::atomic::AtomicBool;

use sim_core::check::{CampaignOptions, Catalog};
use sim_core::threaded::{self, ThreadedOptions, ThreadedSubject};

/// Runs `cases` threaded cases of `S`'s default preset on three threads; panics with the
/// replay command on a failure; returns the coverage marks reached.
fn quiet<S: Catalog + ThreadedSubject>(cases: u64) -> Vec<String> {
    let config = S::config(None, &[]).expect("default preset");
    let options = CampaignOptions { shrink_steps: 100, ..CampaignOptions::cases(cases) };
    let report = threaded::campaign::<S>(
        &config,
        &options,
        &ThreadedOptions::new(3),
        &AtomicBool::new(false),
        &mut |_| {},
    )
    .expect("campaign runs");
    if let Some(failure) = report.failures.first() {
        panic!(
            "{} threaded seed {}: {}\nops: {}\nreplay: ksim fuzz {} --threads 3 --seed {} --cases 1",
            S::NAME,
            failure.artifact.seed,
            failure.artifact.violation,
            failure.artifact.ops,
            S::NAME,
            failure.artifact.seed
        );
    }
    assert_eq!(report.progress.cases, cases);
    assert!(report.progress.ops > cases * 3, "{} ran {} operations", S::NAME, report.progress.ops);
    report.coverage.keys().cloned().collect()
}

#[test]
fn fixed_taskstats_stays_quiet_on_three_threads() {
    let marks = quiet::<taskstats_sim::TaskstatsSubject>(150);
    assert!(!marks.is_empty(), "no coverage mark reached");
}

#[test]
fn fixed_mbcache_stays_quiet_on_three_threads() {
    let marks = quiet::<mbcache_sim::MbcacheSubject>(150);
    assert!(!marks.is_empty(), "no coverage mark reached");
}

#[test]
fn fixed_demo_stays_quiet_on_three_threads() {
    let marks = quiet::<demo_sim::DemoSubject>(150);
    for mark in ["put", "shrink-freed", "shrink-skipped-used"] {
        assert!(marks.iter().any(|m| m == mark), "{mark} not reached: {marks:?}");
    }
}

#[test]
fn the_dual_backend_makes_shuttle_objects_only_inside_an_execution() {
    assert!(!sim_core::sync::schedule::in_execution());
    let outside = sim_core::sync::Mutex::new(0u32);
    assert!(matches!(outside, sim_core::sync::Mutex::Native(_)));
    let stop = std::sync::Arc::new(AtomicBool::new(false));
    let scheduler = threaded::SchedulerChoice::Random.scheduler(7, 1).expect("scheduler");
    let kinds = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let seen = kinds.clone();
    let ran = threaded::run_threads(scheduler, 1000, stop, move || {
        let inside = sim_core::sync::Mutex::new(0u32);
        let shuttle = matches!(inside, sim_core::sync::Mutex::Shuttle(_));
        seen.lock().expect("std lock").push(shuttle);
    });
    assert!(ran.escaped.is_none(), "{:?}", ran.escaped);
    assert_eq!(*kinds.lock().expect("std lock"), vec![true]);
    assert_eq!(ran.recorded.len(), 1);
}

/// Every task of a shuttle execution runs on the OS thread that runs it, so a world made inside
/// one records into its trace without the spin lock; a world made outside keeps it.
#[test]
fn a_world_made_inside_an_execution_confines_its_trace_and_every_task_records() {
    use sim_core::{Sim, SimConfig, SpinLock};
    let outside = Sim::new(SimConfig::new(1));
    assert!(!outside.trace().is_confined(), "a world made outside an execution may be shared by threads");
    let stop = std::sync::Arc::new(AtomicBool::new(false));
    let scheduler = threaded::SchedulerChoice::Random.scheduler(7, 1).expect("scheduler");
    let seen = std::sync::Arc::new(std::sync::Mutex::new(None));
    let result = seen.clone();
    let ran = threaded::run_threads(scheduler, 1000, stop, move || {
        let sim = Sim::new(SimConfig::new(1));
        let lock = std::sync::Arc::new(SpinLock::new("shared_lock", 0u32));
        let handles: Vec<_> = (0..2)
            .map(|thread| {
                let (sim, lock) = (sim.clone(), lock.clone());
                sim_core::sync::thread::spawn(move || *lock.lock(&sim.cx(&format!("t{thread}"), 0)) += 1)
            })
            .collect();
        for handle in handles {
            handle.join().expect("thread");
        }
        *result.lock().expect("std lock") = Some((sim.trace().is_confined(), sim.trace().len()));
    });
    assert!(ran.escaped.is_none(), "{:?}", ran.escaped);
    let (confined, events) = seen.lock().expect("std lock").expect("the execution ran");
    assert!(confined, "a world made inside an execution confines its trace");
    assert_eq!(events, 4, "both tasks' acquisitions and releases are recorded");
}

/// Seeds the threaded determinism tests run per subsystem (issue 11: "a test checks 1000 seeds
/// run twice").
const DETERMINISM_SEEDS: u64 = 1000;

/// What a subsystem's determinism runs reached, so that the schedules compared are ones that
/// interleaved something.
#[derive(Debug)]
struct Reached {
    /// Cases in which one thread began an operation while another thread's was in flight.
    overlapped: u64,
    /// Cases whose schedule switched away from a thread that could have gone on.
    preempted: u64,
    /// Cases that found a violation (the quiet tests above judge those; here only the
    /// determinism of the schedule and trace that found it is).
    failed: u64,
}

/// Seeds `0..DETERMINISM_SEEDS` of `S`'s default preset as `ksim fuzz S --threads 3` generates
/// them, each case run for one execution (the CLI runs four; its first, or PCT's first after the
/// measuring one, is this one; one keeps the five subsystems' tests to seconds each in the debug
/// build): each seed generates the same case twice, and running it twice gives the same schedule and the same trace hash, a failing case's
/// included (its failing execution is the one compared). Returns how many cases overlapped
/// operations, preempted a thread and failed.
fn assert_schedules_repeat<S: Catalog + ThreadedSubject>() -> Reached {
    let config = S::config(None, &[]).expect("default preset");
    let options =
        ThreadedOptions { executions: 1, trace: sim_core::trace::TraceMode::Full, ..ThreadedOptions::new(3) };
    let mut reached = Reached { overlapped: 0, preempted: 0, failed: 0 };
    for seed in 0..DETERMINISM_SEEDS {
        let replay = format!("replay: ksim fuzz {} --threads 3 --seed {seed} --cases 1", S::NAME);
        let case = threaded::generate::<S>(&config, seed, &options);
        let json = |case: &threaded::ThreadedCase<S::Op>| serde_json::to_string(case).expect("serialises");
        let again = threaded::generate::<S>(&config, seed, &options);
        assert_eq!(json(&case), json(&again), "{} seed {seed}: cases differ; {replay}", S::NAME);
        let [first, second] = [0, 1].map(|_| threaded::run_case::<S>(&config, seed, &case, &options));
        reached.failed += u64::from(first.violation().is_some());
        let (first, second) = (first.last.expect("ran"), second.last.expect("ran"));
        assert_eq!(first.schedule, second.schedule, "{} seed {seed}: schedules differ; {replay}", S::NAME);
        assert_eq!(first.trace_hash, second.trace_hash, "{} seed {seed}: traces differ; {replay}", S::NAME);
        reached.overlapped += u64::from(overlapped(&first));
        reached.preempted += u64::from(first.schedule.preemptions > 0);
    }
    reached
}

/// Whether two threads' operations overlapped in `run`: a thread began an operation while another
/// thread's had begun and not yet ended (the runner brackets each thread's operation with an
/// `op` begin and end in the trace; the run must keep the whole trace).
fn overlapped(run: &threaded::ExecutionReport) -> bool {
    use sim_core::trace::EventKind;
    let mut in_flight = std::collections::BTreeSet::new();
    for event in &run.trace_tail {
        match &event.kind {
            EventKind::OpBegin { name, .. } if name == "op" => {
                if in_flight.iter().any(|task| *task != event.task) {
                    return true;
                }
                in_flight.insert(event.task);
            }
            EventKind::OpEnd { name, .. } if name == "op" => {
                in_flight.remove(&event.task);
            }
            _ => {}
        }
    }
    false
}

/// Asserts that most of the determinism cases overlapped operations and preempted a thread (at
/// least `share` percent of them each), so the equal schedules compared were interleavings.
fn assert_mostly_interleaved(name: &str, reached: &Reached, share: u64) {
    let least = DETERMINISM_SEEDS * share / 100;
    println!("{name}: {reached:?} of {DETERMINISM_SEEDS} cases");
    assert!(
        reached.overlapped >= least && reached.preempted >= least,
        "{name}: of {DETERMINISM_SEEDS} cases fewer than {least} interleaved: {reached:?}"
    );
}

/// [`assert_schedules_repeat`] for `S`, and at least 70 % of its cases interleaved.
fn assert_deterministic_and_interleaved<S: Catalog + ThreadedSubject>() {
    let reached = assert_schedules_repeat::<S>();
    assert_mostly_interleaved(S::NAME, &reached, 70);
}

#[test]
fn a_thousand_demo_seeds_give_the_same_schedule_and_trace_twice() {
    assert_deterministic_and_interleaved::<demo_sim::DemoSubject>();
}

#[test]
fn a_thousand_taskstats_seeds_give_the_same_schedule_and_trace_twice() {
    assert_deterministic_and_interleaved::<taskstats_sim::TaskstatsSubject>();
}

#[test]
fn a_thousand_mbcache_seeds_give_the_same_schedule_and_trace_twice() {
    assert_deterministic_and_interleaved::<mbcache_sim::MbcacheSubject>();
}

#[test]
fn a_thousand_mbcache2_seeds_give_the_same_schedule_and_trace_twice() {
    assert_deterministic_and_interleaved::<mbcache_sim::Mbcache2Subject>();
}

#[test]
fn a_thousand_balloon_seeds_give_the_same_schedule_and_trace_twice() {
    assert_deterministic_and_interleaved::<balloon_sim::BalloonSubject>();
}

/// A threaded test's world: shared state and a one-`bool` operation on it; everything the
/// op-level checker needs of a subject is inert. [`Threads`] makes a `ThreadedSubject` of one, so
/// each world below is only what differs.
trait World: Send + Sync + Sized + 'static {
    const NAME: &'static str;
    /// The world, built inside the execution.
    fn share(sim: &sim_core::Sim) -> Self;
    /// One operation by the thread whose context is `cx`.
    fn apply(&self, cx: &sim_core::Cx, op: bool);
    /// The operations cases draw.
    fn ops() -> proptest::strategy::BoxedStrategy<bool> {
        use proptest::strategy::Strategy;
        proptest::bool::ANY.boxed()
    }
    /// Whether `op` may overlap others.
    fn concurrent(op: bool) -> bool {
        let _ = op;
        true
    }
}

/// The subject of a [`World`].
struct Threads<W>(std::marker::PhantomData<W>);

/// The reference: every operation returns `()`.
#[derive(Clone, Debug)]
struct UnitModel;

impl sim_core::check::Reference for UnitModel {
    type Config = ();
    type Op = bool;
    type Outcome = ();
    fn new(_: &()) -> Self {
        UnitModel
    }
    fn check(&mut self, _: &bool, _: &()) -> Result<(), String> {
        Ok(())
    }
}

impl<W: World> sim_core::check::Subject for Threads<W> {
    const NAME: &'static str = W::NAME;
    type Config = ();
    type Op = bool;
    type Outcome = ();
    type Reference = UnitModel;
    fn new(_: &sim_core::Sim, _: &()) -> Self {
        Threads(std::marker::PhantomData)
    }
    fn op_strategy(_: &()) -> proptest::strategy::BoxedStrategy<bool> {
        W::ops()
    }
    fn apply(&mut self, _: &sim_core::Sim, _: &bool) {}
    fn check_invariants(&self, _: &sim_core::Sim) -> Result<(), sim_core::Violation> {
        Ok(())
    }
    fn teardown(self, _: &sim_core::Sim) -> Result<(), sim_core::Violation> {
        Ok(())
    }
}

impl<W: World> ThreadedSubject for Threads<W> {
    type Shared = W;
    fn share(sim: &sim_core::Sim, _: &()) -> W {
        W::share(sim)
    }
    fn concurrent(op: &bool) -> bool {
        W::concurrent(*op)
    }
    fn apply_shared(shared: &W, cx: &sim_core::Cx, op: &bool) {
        shared.apply(cx, *op);
    }
    fn check_shared(_: &W, _: &sim_core::Sim) -> Result<(), sim_core::Violation> {
        Ok(())
    }
    fn teardown_shared(_: W, _: &sim_core::Sim) -> Result<(), sim_core::Violation> {
        Ok(())
    }
}

/// Runs `W` with one thread doing `true` and one doing `false`, up to 40 schedules with a
/// one-event trace tail (so what a report says of held locks must come from the lock path's
/// records, not the trace), and returns the deadlock's report.
fn deadlock_report<W: World>() -> String {
    let options = ThreadedOptions {
        executions: 40,
        trace: sim_core::trace::TraceMode::Tail(1),
        ..ThreadedOptions::new(2)
    };
    let case = threaded::ThreadedCase {
        prefix: vec![],
        threads: vec![vec![true], vec![false]],
        scheduler: threaded::SchedulerChoice::Random,
    };
    let report = threaded::run_case::<Threads<W>>(&(), 5, &case, &options);
    let violation = report.violation().expect("the ABBA order deadlocks within 40 schedules");
    assert_eq!(violation.kind, sim_core::ViolationKind::Hang, "{violation}");
    violation.message.clone()
}

/// Two sim-core mutexes that each operation takes in an order of its own choosing (`true`: A
/// then B), with a schedule point between them: two threads taking them in opposite orders can
/// each hold one and wait for the other (ABBA), which shuttle reports as a deadlock.
struct Abba {
    a: sim_core::Mutex<()>,
    b: sim_core::Mutex<()>,
}

impl World for Abba {
    const NAME: &'static str = "abba";
    fn share(_: &sim_core::Sim) -> Abba {
        Abba { a: sim_core::Mutex::new("abba-a", ()), b: sim_core::Mutex::new("abba-b", ()) }
    }
    fn apply(&self, cx: &sim_core::Cx, a_first: bool) {
        let (first, second) = if a_first { (&self.a, &self.b) } else { (&self.b, &self.a) };
        let _first = first.lock(cx);
        sim_core::sync::thread::yield_now();
        let _second = second.lock(cx);
    }
}

#[test]
fn an_abba_deadlock_is_reported_with_what_each_task_holds_and_waits_for() {
    let text = deadlock_report::<Abba>();
    let a_then_b = "thread-0 holds abba-a#1 and waits for abba-b#2 (held by thread-1)";
    let b_then_a = "thread-1 holds abba-b#2 and waits for abba-a#1 (held by thread-0)";
    assert!(text.contains(a_then_b) && text.contains(b_then_a), "{text}");
}

/// Two page locks taken in both orders by `lock_page` (a sleeping wait on `PG_locked`, not a
/// `Mutex`): the deadlock's report must name each page and who holds it, as it does for mutexes.
struct PageAbba {
    mm: sim_core::mm::PageAllocator,
    pages: [sim_core::mm::Pfn; 2],
}

impl World for PageAbba {
    const NAME: &'static str = "page-abba";
    /// A two-zone allocator and two pages allocated from it (the same pfns in every world).
    fn share(sim: &sim_core::Sim) -> PageAbba {
        use sim_core::mm::{Gfp, PageAllocConfig, PageAllocator, PAGE_SIZE_4K};
        let config = PageAllocConfig { page_size: PAGE_SIZE_4K, zone_pages: vec![2, 2], limit_pages: 4 };
        let mm = PageAllocator::new(&config).expect("valid");
        let cx = sim.cx("setup", 0);
        let pages = [0, 1].map(|_| mm.alloc_page(&cx, Gfp::GFP_KERNEL, "abba").expect("a free page"));
        PageAbba { mm, pages }
    }
    fn apply(&self, cx: &sim_core::Cx, first_page_first: bool) {
        let [a, b] = self.pages;
        let (first, second) = if first_page_first { (a, b) } else { (b, a) };
        self.mm.lock_page(cx, first).expect("not held by this task");
        sim_core::sync::thread::yield_now();
        self.mm.lock_page(cx, second).expect("not held by this task");
        let _ = self.mm.unlock_page(cx, second);
        let _ = self.mm.unlock_page(cx, first);
    }
}

#[test]
fn a_lock_page_deadlock_names_each_page_and_its_holder() {
    let text = deadlock_report::<PageAbba>();
    let [a, b] = PageAbba::share(&sim_core::Sim::new(sim_core::SimConfig::new(0))).pages;
    let first =
        format!("thread-0 holds PG_locked(pfn {a}) and waits for PG_locked(pfn {b}) (held by thread-1)");
    let second =
        format!("thread-1 holds PG_locked(pfn {b}) and waits for PG_locked(pfn {a}) (held by thread-0)");
    assert!(text.contains(&first) && text.contains(&second), "{text}");
}

/// An operation that spins (`true`) until a flag no operation sets, holding a lock: every
/// execution that runs one hits the step bound (a livelock).
struct Spin {
    lock: sim_core::Mutex<()>,
    flag: sim_core::sync::atomic::AtomicBool,
}

impl World for Spin {
    const NAME: &'static str = "spin";
    fn share(_: &sim_core::Sim) -> Spin {
        Spin {
            lock: sim_core::Mutex::new("spin-lock", ()),
            flag: sim_core::sync::atomic::AtomicBool::new(false),
        }
    }
    fn apply(&self, cx: &sim_core::Cx, _: bool) {
        let _held = self.lock.lock(cx);
        while !self.flag.load(std::sync::atomic::Ordering::Acquire) {
            // An event per turn, so the acquisition leaves a campaign's trace tail long before
            // the bound.
            cx.note("spinning");
            sim_core::sync::thread::yield_now();
        }
    }
    fn ops() -> proptest::strategy::BoxedStrategy<bool> {
        use proptest::strategy::Strategy;
        proptest::strategy::Just(true).boxed()
    }
    fn concurrent(op: bool) -> bool {
        op
    }
}

/// A replay runs with the whole trace and the artifact's step bound; the campaign ran with a
/// trace tail and a bound of its own. Both used to change the report (held locks were read from
/// the trace tail, the bound was the default) and so the trace hash.
/// One case of two threads spinning on one lock, run to a 3000-step bound (no shrinking): its
/// report, whose failure is the livelock.
fn spin_to_the_step_bound() -> sim_core::check::CampaignReport {
    let options =
        ThreadedOptions { executions: 1, steps_max: 3000, prefix_max: 0, ..ThreadedOptions::new(2) };
    let campaign = CampaignOptions { shrink_steps: 0, ..CampaignOptions::cases(1) };
    threaded::campaign::<Threads<Spin>>(&(), &campaign, &options, &AtomicBool::new(false), &mut |_| {})
        .expect("campaign runs")
}

#[test]
fn a_case_that_hits_the_step_bound_replays_exactly() {
    let report = spin_to_the_step_bound();
    let failure = report.failures.first().expect("the spin livelocks");
    let artifact = &failure.artifact;
    assert_eq!(artifact.violation.kind, sim_core::ViolationKind::Liveness, "{}", artifact.violation);
    // The CLI's progress line and final report show the hit (and no linearizability bound hit).
    assert_eq!(report.progress.step_bound_hits, 1);
    assert_eq!(report.progress.linearizability_bound_hits, 0);
    assert_eq!(report.coverage.get(threaded::STEP_BOUND_MARK), Some(&1), "{:?}", report.coverage);
    assert!(artifact.violation.message.contains("holds spin-lock#1"), "{}", artifact.violation);
    for _ in 0..2 {
        let replayed = threaded::replay::<Threads<Spin>>(artifact).expect("replays");
        let found = replayed.execution.violation.as_ref().expect("the replay fails too");
        assert_eq!(found.message, artifact.violation.message);
        assert_eq!(replayed.execution.trace_hash, artifact.trace_hash, "{found}");
        assert!(replayed.exact);
    }
}

/// An artifact whose recorded schedule does not decode (an edited or damaged file) is refused
/// as bad input; it was replayed and reported as the replay's own `bad-schedule` finding.
#[test]
fn an_artifact_whose_schedule_does_not_decode_is_refused_not_replayed() {
    let report = spin_to_the_step_bound();
    let mut artifact = report.failures.first().expect("the spin livelocks").artifact.clone();
    threaded::replay::<Threads<Spin>>(&artifact).expect("the recorded schedule replays");
    for garbage in ["xyz!@#", "01rzz.1"] {
        artifact.ops["threaded"]["scheduler"]["Replay"]["schedule"] = garbage.into();
        match threaded::replay::<Threads<Spin>>(&artifact) {
            Err(refused) => assert!(refused.starts_with("artifact schedule: "), "{garbage:?}: {refused}"),
            Ok(replayed) => panic!("{garbage:?} replayed: {:?}", replayed.execution.violation),
        }
    }
}

/// shuttle's random and PCT schedulers take `SHUTTLE_RANDOM_SEED` over the seed they are given:
/// a threaded case refuses to run with it set (the environment itself is left alone here, since
/// the other tests of this binary run shuttle executions beside this one).
#[test]
fn a_shuttle_seed_in_the_environment_is_refused_not_obeyed() {
    threaded::refuse_seed_override(None).expect("unset is fine");
    let refused = threaded::refuse_seed_override(Some("42".into())).expect_err("set is refused");
    assert!(refused.contains("SHUTTLE_RANDOM_SEED=42"), "{refused}");
    if std::env::var_os("SHUTTLE_RANDOM_SEED").is_none() {
        threaded::SchedulerChoice::Pct { depth: 2 }.scheduler(1, 1).expect("no override: PCT runs");
    }
}

/// A case the shrinker cut down to one thread, under PCT (every third seed's scheduler): PCT
/// needs two runnable threads to order and shuttle's panics without them, which the campaign
/// once took for the model's panic, and the pinned replay then "no longer failed". Such a case
/// runs under the random scheduler instead: quiet, every operation run, the same trace each time.
#[test]
fn a_one_thread_case_under_pct_runs_quietly_and_the_same_each_time() {
    let config = demo_sim::DemoSubject::config(None, &[]).expect("default preset");
    let options = ThreadedOptions::new(2);
    for seed in 0..12 {
        let mut case = threaded::generate::<demo_sim::DemoSubject>(&config, seed, &options);
        case.threads.truncate(1);
        case.scheduler = threaded::SchedulerChoice::Pct { depth: 2 + (seed % 2) as usize };
        let runs: Vec<_> = (0..2)
            .map(|_| threaded::run_case::<demo_sim::DemoSubject>(&config, seed, &case, &options))
            .collect();
        for report in &runs {
            assert!(report.violation().is_none(), "seed {seed}: {:?}", report.violation());
            let per_execution = report.ops_run / report.executions.max(1);
            assert_eq!(per_execution, case.ops_count(), "seed {seed}: every operation runs");
        }
        let hashes: Vec<_> = runs.iter().map(|r| r.last.as_ref().map(|l| l.trace_hash)).collect();
        assert_eq!(hashes[0], hashes[1], "seed {seed}");
    }
}
