//! The harness every subsystem plugs into, and the op-level checker built on it.
//!
//! A subsystem implements [`Subject`]: an operations enum, `apply`, `check_invariants`, a
//! [`Reference`] model (plain collections, no sim-core locks) that judges every outcome, and a
//! proptest strategy for operations. From that, this module gives:
//!
//! - [`run_case`]: one seed and one operation list, run deterministically, with lockdep collecting,
//!   invariants checked every few operations and at the end, panics caught as violations;
//! - [`generate`] and [`shrink`]: operation lists from a seed through proptest's value trees, and
//!   proptest's shrinking of a failing list to a short one that fails the same way;
//! - [`campaign`]: many seeds under a case or time budget, sharded `i/n`, with a progress callback;
//!   every failure is shrunk and written as an [`Artifact`] (whole or not at all) before it is
//!   reported;
//! - [`replay`]: runs an artifact again and says whether it reproduced exactly (same violation,
//!   same trace hash).

use std::collections::BTreeSet;
use std::fmt::Debug;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use proptest::collection::vec;
use proptest::strategy::{BoxedStrategy, Strategy, ValueTree};
use proptest::test_runner::{Config as ProptestConfig, RngAlgorithm, TestRng, TestRunner};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::fixes::{Commit, FixTable, KernelVersion};
use crate::gen::{OpGen, OpRng};
use crate::lockdep::{LockdepReport, ReportMode};
use crate::sim::{Sim, SimConfig};
use crate::trace::{Event, TraceMode};
use crate::violation::{Violation, ViolationKind};

/// A subsystem model as the checkers drive it.
pub trait Subject: Sized {
    /// The subsystem's name (`"taskstats"`), as the CLI and artifacts spell it.
    const NAME: &'static str;
    /// Preset, fixes, sizes, fault plan: everything a case needs besides seed and operations.
    type Config: Clone + Debug + Serialize + DeserializeOwned + Send + Sync + 'static;
    /// One whole kernel operation. Operations pick their targets by index modulo what exists, so
    /// any operation applies in any state and shrinking never produces an invalid list.
    type Op: Clone + Debug + Serialize + DeserializeOwned + Send + Sync + 'static;
    /// What an operation returned, for the reference model to judge.
    type Outcome: Debug;
    /// The reference model.
    type Reference: Reference<Config = Self::Config, Op = Self::Op, Outcome = Self::Outcome>;

    /// How the `Sim` for a case is configured (CPU count, say) beyond seed, lockdep and trace.
    fn sim_config(config: &Self::Config, seed: u64) -> SimConfig {
        let _ = config;
        SimConfig::new(seed)
    }

    /// Builds the model in `sim` (and installs the config's fault plan there).
    fn new(sim: &Sim, config: &Self::Config) -> Self;

    /// A strategy for one operation.
    fn op_strategy(config: &Self::Config) -> BoxedStrategy<Self::Op>;

    /// A cheap generator for one operation, drawn with the same distribution as
    /// [`Subject::op_strategy`] ([`crate::gen`]): when given, campaigns draw every case's list
    /// from it and shrink a failing list by removing operations; the strategy is then used only
    /// by checkers that ask for it (threaded, loom). The default, none, keeps the strategy for
    /// everything, so every seed names the list it named before.
    fn op_gen(config: &Self::Config) -> Option<OpGen<Self::Op>> {
        let _ = config;
        None
    }

    /// Applies one operation.
    fn apply(&mut self, sim: &Sim, op: &Self::Op) -> Self::Outcome;

    /// The subsystem's invariants; the first broken one as a violation.
    fn check_invariants(&self, sim: &Sim) -> Result<(), Violation>;

    /// The invariants `op` (just applied) could have broken, checked where the whole check is
    /// not due ([`RunOptions::check_every`]): a subject whose state is large checks only what
    /// the operation touched. It must find a broken invariant whenever [`Subject::check_invariants`]
    /// would ([`incremental_agrees`] tests that). The default is the whole check, so a subject
    /// without one runs exactly as before.
    fn check_invariants_incremental(&self, sim: &Sim, op: &Self::Op) -> Result<(), Violation> {
        let _ = op;
        self.check_invariants(sim)
    }

    /// Tears the model down; a leak is a violation.
    fn teardown(self, sim: &Sim) -> Result<(), Violation>;

    /// Whether a config read from a file (an artifact someone may have edited) is one the model
    /// can be built from: sizes it allocates up front within bounds, and values within the ranges
    /// the subject's constructors make (a percentage at most 100). [`replay`] and the threaded
    /// replay refuse one that is not with this line, before anything runs. Configs the subject's
    /// own constructors make always pass.
    fn check_config(config: &Self::Config) -> Result<(), String> {
        let _ = config;
        Ok(())
    }

    /// Interesting states this run reached that the subject keeps itself, beyond the marks the
    /// model recorded with [`Sim::mark`] (which [`run_case`] adds). Most subjects keep none.
    fn coverage(&self) -> BTreeSet<&'static str> {
        BTreeSet::new()
    }
}

/// The reference model: plain collections that say what each operation may return.
pub trait Reference {
    /// The subject's configuration.
    type Config;
    /// The subject's operation.
    type Op;
    /// The subject's outcome.
    type Outcome: Debug;

    /// The reference state for a new model.
    fn new(config: &Self::Config) -> Self;

    /// Judges the model's `actual` outcome of `op` and advances the reference state. Where
    /// injected faults make several outcomes legal, the actual one decides the new state.
    fn check(&mut self, op: &Self::Op, actual: &Self::Outcome) -> Result<(), String>;

    /// Judges the state the case ended in, after its last operation: what a reference allowed
    /// on credit (an outcome the kernel explains only by a call ordered later) must have been
    /// paid. [`run_case`] calls it after the last operation; a threaded campaign's
    /// linearizability search calls it on each complete order, so a window left open rejects
    /// that order. Most references owe nothing.
    fn finish(&self) -> Result<(), String> {
        Ok(())
    }
}

/// How a case runs.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunOptions {
    /// Check all invariants after every this many operations (and always at the end); after the
    /// others, [`Subject::check_invariants_incremental`] (the whole check unless the subject
    /// has a cheaper one).
    pub check_every: usize,
    /// Trace events kept for the failure report.
    pub trace: TraceMode,
}

/// How often a campaign checks all invariants ([`Subject::check_invariants`]): after every
/// `CHECK_ALL_EVERY`-th operation and after the last. After each other operation the subject's
/// incremental check runs ([`Subject::check_invariants_incremental`]); a subject without one
/// gets the whole check there too (the default), so it still checks everything every operation.
///
/// The trade-off: a broken invariant the incremental check does not cover is found at the next
/// whole check only (operation 64, 128, ..., or the end of the case), not after the operation
/// that broke it; the violation is the same, its report names a later operation (a shrunk
/// case still ends with a whole check, so shrinking finds it). The interval never changes the model's trace:
/// the observer contexts a whole check makes count their serials apart from the model's (see
/// `Sim::next_cx_serial`), so a seed's trace hash is the same at any interval.
///
/// 64 since session 12 (16 before): in `ksim zoo` (3 runs a row) every row of every subsystem
/// still passed both ways with the same median cases to find, and the whole check had been 13 %
/// of an mbcache campaign (callgrind, seed 0, 300 cases: 7,830 instructions per operation at
/// 16, 7,233 at 64); the guide's performance chapter has the figures.
pub const CHECK_ALL_EVERY: usize = 64;

impl Default for RunOptions {
    fn default() -> Self {
        RunOptions { check_every: CHECK_ALL_EVERY, trace: TraceMode::Tail(400) }
    }
}

/// What one case found.
#[derive(Debug)]
pub struct CaseReport {
    /// The seed.
    pub seed: u64,
    /// Operations applied before the case ended.
    pub ops_run: usize,
    /// The first violation and the index of the operation after which it was seen
    /// (`ops.len()` for one found at teardown).
    pub violation: Option<(usize, Violation)>,
    /// Hash of the whole trace.
    pub trace_hash: u64,
    /// The trace tail.
    pub trace_tail: Vec<Event>,
    /// The tasks' names, for drawing the trace's lanes (empty for a hash-only trace, which keeps
    /// no events to draw).
    pub task_names: std::collections::BTreeMap<crate::trace::TaskId, String>,
    /// Lockdep's reports.
    pub lockdep: Vec<LockdepReport>,
    /// The coverage marks reached.
    pub coverage: BTreeSet<&'static str>,
}

impl CaseReport {
    /// Whether the case passed.
    pub fn passed(&self) -> bool {
        self.violation.is_none()
    }
}

fn panic_message(payload: Box<dyn std::any::Any + Send>) -> String {
    if let Some(text) = payload.downcast_ref::<&str>() {
        text.to_string()
    } else if let Some(text) = payload.downcast_ref::<String>() {
        text.clone()
    } else {
        "panic with a non-text payload".to_string()
    }
}

/// The trace lane that marks where each operation of a case begins and ends.
pub const OP_LANE: &str = "ksim-op";

/// How much of an outcome's text an operation's end marker keeps.
const OP_RESULT_CHARS_MAX: usize = 160;

/// Runs one case: `ops` against a model built from `config` in a `Sim` seeded with `seed`.
///
/// After each operation: the violations the model or lockdep reported, the reference model's
/// judgement of the outcome, and the invariants every `check_every` operations and after the
/// last. Teardown runs when no operation failed. Grace periods end where the model calls
/// [`Sim::rcu_advance`] (an operation of its own), so a read-side section may span operations.
pub fn run_case<S: Subject>(
    config: &S::Config,
    seed: u64,
    ops: &[S::Op],
    options: &RunOptions,
) -> CaseReport {
    run_case_with::<S>(config, seed, ops, options, None)
}

/// What a campaign keeps from one case to the next: the last case's coverage ([`CaseMarks`])
/// and its world, made new again for the next case ([`Sim::renew`]: a campaign's cases made
/// and dropped a world each, its tables and lockdep's graph allocated and freed every time).
#[derive(Default)]
struct CaseKept {
    marks: CaseMarks,
    world: Option<Sim>,
}

/// [`run_case`], for a campaign's cases when `kept` is given: the world is the last case's made
/// new ([`CaseKept`]), and the coverage is given as its marks (the campaign only counts them:
/// the report's set is then left empty) instead of as a set of texts.
fn run_case_with<S: Subject>(
    config: &S::Config,
    seed: u64,
    ops: &[S::Op],
    options: &RunOptions,
    mut kept: Option<&mut CaseKept>,
) -> CaseReport {
    let sim_config = S::sim_config(config, seed).lockdep(ReportMode::Collect).trace(options.trace);
    let sim = match kept.as_mut() {
        Some(kept) => Sim::renew(kept.world.take(), sim_config),
        None => Sim::new(sim_config),
    };
    sim.trace().confine_to_this_thread();
    let report =
        run_case_in::<S>(&sim, config, seed, ops, options, kept.as_mut().map(|kept| &mut kept.marks));
    if let Some(kept) = kept {
        kept.world = Some(sim);
    }
    report
}

/// [`run_case_with`] in the world `sim`, made for the case.
fn run_case_in<S: Subject>(
    sim: &Sim,
    config: &S::Config,
    seed: u64,
    ops: &[S::Op],
    options: &RunOptions,
    marks: Option<&mut CaseMarks>,
) -> CaseReport {
    let mut reference = S::Reference::new(config);
    let mut model = match catch_unwind(AssertUnwindSafe(|| S::new(sim, config))) {
        Ok(model) => model,
        Err(payload) => {
            let violation = Some((0, Violation::new(ViolationKind::Panic, panic_message(payload))));
            if let Some(marks) = marks {
                *marks = CaseMarks::default();
            }
            return case_report(sim, seed, 0, violation, BTreeSet::new());
        }
    };
    let (ops_run, mut violation) = run_ops::<S>(sim, &mut model, &mut reference, ops, options);
    if let (None, Err(message)) = (&violation, reference.finish()) {
        let found = Violation::new(ViolationKind::Mismatch, format!("at the end of the case: {message}"));
        sim.report(None, found.clone());
        violation = Some((ops.len().saturating_sub(1), found));
    }
    // The coverage as the operations left it (teardown's marks are not counted).
    let coverage = match marks {
        Some(marks) => {
            marks.read(sim, model.coverage());
            BTreeSet::new()
        }
        // The world's marks first: they come sorted, so the set is built without moving them;
        // the subject's own (most keep none) are added to it.
        None => {
            let mut coverage = sim.marks();
            coverage.extend(model.coverage());
            coverage
        }
    };
    if violation.is_none() {
        let found = match catch_unwind(AssertUnwindSafe(|| model.teardown(sim))) {
            Ok(Ok(())) => sim.violations().into_iter().next(),
            Ok(Err(found)) => Some(found),
            Err(payload) => {
                Some(Violation::new(ViolationKind::Panic, format!("teardown: {}", panic_message(payload))))
            }
        };
        violation = found.map(|found| (ops.len(), found));
    }
    case_report(sim, seed, ops_run, violation, coverage)
}

/// Whether cases run as a campaign runs them, each in the last case's world made new
/// ([`Sim::renew`]), report what the same cases report in new worlds: each seed of `seeds` has
/// its operation list drawn as a campaign draws it (up to `ops_max`) and runs in the kept world
/// and in a new one, under `options`; the two reports (the violation and where, the trace hash,
/// kept events, task names, lockdep's reports) and coverage must be equal. Returns how many
/// cases ran in a reused world and how many failed ([`ReuseAgreed`]), or the first difference.
pub fn reuse_agrees<S: Subject>(
    config: &S::Config,
    seeds: std::ops::Range<u64>,
    ops_max: usize,
    options: &RunOptions,
) -> Result<ReuseAgreed, String> {
    let cases = CaseGen::<S>::new(config, ops_max);
    let (mut kept, mut agreed, mut ops) = (CaseKept::default(), ReuseAgreed::default(), Vec::new());
    let world = |kept: &CaseKept| kept.world.as_ref().map(|sim| std::sync::Arc::as_ptr(&sim.world));
    for seed in seeds {
        cases.ops_into(seed, &mut ops);
        let last = world(&kept);
        let in_kept = run_case_with::<S>(config, seed, &ops, options, Some(&mut kept));
        agreed.reused += u64::from(last.is_some() && last == world(&kept));
        agreed.failed += u64::from(in_kept.violation.is_some());
        let mut new = CaseKept::default();
        let in_new = run_case_with::<S>(config, seed, &ops, options, Some(&mut new));
        let (kept_seen, new_seen) =
            (format!("{in_kept:?} {:?}", kept.marks), format!("{in_new:?} {:?}", new.marks));
        if kept_seen != new_seen {
            return Err(format!(
                "{} seed {seed}: a reused world reported\n{kept_seen}\na new one\n{new_seen}",
                S::NAME
            ));
        }
    }
    Ok(agreed)
}

/// What [`reuse_agrees`] ran: how many cases ran in a reused world (every one but the first,
/// unless a handle to the last case's world was kept somewhere) and how many of them failed
/// (so a test can show the failing paths, not only passing cases, were compared).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ReuseAgreed {
    /// Cases run in the last case's world made new.
    pub reused: u64,
    /// Cases that ended with a violation (the same in both worlds).
    pub failed: u64,
}

/// Runs `ops` on the model until one fails: the operations run and the first violation with
/// the index of the operation after which it was seen.
fn run_ops<S: Subject>(
    sim: &Sim,
    model: &mut S,
    reference: &mut S::Reference,
    ops: &[S::Op],
    options: &RunOptions,
) -> (usize, Option<(usize, Violation)>) {
    // Operation markers on a lane of their own, so a drawn trace shows which operation each
    // lock event belongs to. Drawn only when events are kept: the text costs more than an op.
    // The lane is named either way, so the model's own tasks get the same ids in every mode.
    let marker_cx = sim.cx(OP_LANE, 0);
    let marker = sim.trace().keeps_events().then_some(&marker_cx);
    let mut ops_run = 0;
    for (index, op) in ops.iter().enumerate() {
        ops_run = index + 1;
        let due = (index + 1).is_multiple_of(options.check_every.max(1)) || index + 1 == ops.len();
        if let Some(found) = run_op::<S>(sim, model, reference, op, index, marker, due) {
            return (ops_run, Some((index, found)));
        }
    }
    (ops_run, None)
}

/// A case's coverage as a campaign counts it ([`Reached`]): the world's mark bits by the
/// process's mark index, and apart, by text, the marks past the bits and the subject's own
/// ([`Subject::coverage`]) not among the bits. Reading it builds no set of texts (a case's
/// `Sim::marks` and its count by address cost taskstats about 3,000 instructions a case).
#[derive(Debug, Default)]
struct CaseMarks {
    bits: crate::sim::MarkBits,
    extra: BTreeSet<&'static str>,
}

impl CaseMarks {
    /// `sim`'s marks and the subject's `own` coverage, as the text set [`run_case`] reports
    /// would hold them: a text in both counted once.
    fn read(&mut self, sim: &Sim, own: BTreeSet<&'static str>) {
        self.bits = sim.mark_bits();
        self.extra = sim.marks_spilled();
        self.extra.extend(own);
        if !self.extra.is_empty() {
            let bits = &self.bits;
            self.extra.retain(|text| crate::sim::mark_index_of_text(text).is_none_or(|at| !bits.has(at)));
        }
    }
}

/// Applies operation `index` (`op`) and judges it: the first violation it caused, if any.
fn run_op<S: Subject>(
    sim: &Sim,
    model: &mut S,
    reference: &mut S::Reference,
    op: &S::Op,
    index: usize,
    marker: Option<&crate::Cx>,
    check_all: bool,
) -> Option<Violation> {
    if let Some(marker) = marker {
        marker.op_begin("op", format!("#{} {op:?}", index + 1));
    }
    let outcome = catch_unwind(AssertUnwindSafe(|| model.apply(sim, op)));
    if let (Some(marker), Ok(outcome)) = (marker, &outcome) {
        let mut result = format!("{outcome:?}");
        if result.len() > OP_RESULT_CHARS_MAX {
            let cut = (0..=OP_RESULT_CHARS_MAX).rev().find(|&i| result.is_char_boundary(i)).unwrap_or(0);
            result.truncate(cut);
            result.push('~');
        }
        marker.op_end("op", result);
    }
    // Judged where it lies: moving it out of the `Result` copied it (17 instructions an
    // operation for taskstats' outcome, callgrind).
    let outcome = match outcome {
        Ok(ref outcome) => outcome,
        Err(payload) => {
            return Some(Violation::new(ViolationKind::Panic, format!("{op:?}: {}", panic_message(payload))))
        }
    };
    if let Some(found) = sim.has_violations().then(|| sim.violations().into_iter().next()).flatten() {
        return Some(found);
    }
    if let Err(message) = reference.check(op, outcome) {
        let found =
            Violation::new(ViolationKind::Mismatch, format!("{op:?} returned {outcome:?}: {message}"));
        sim.report(None, found.clone());
        return Some(found);
    }
    let check = || match check_all {
        true => model.check_invariants(sim),
        false => model.check_invariants_incremental(sim, op),
    };
    match catch_unwind(AssertUnwindSafe(check)) {
        Ok(Ok(())) => None,
        Ok(Err(found)) => {
            sim.report(None, found.clone());
            Some(found)
        }
        Err(payload) => Some(Violation::new(ViolationKind::Invariant(None), panic_message(payload))),
    }
}

fn case_report(
    sim: &Sim,
    seed: u64,
    ops_run: usize,
    violation: Option<(usize, Violation)>,
    coverage: BTreeSet<&'static str>,
) -> CaseReport {
    CaseReport {
        seed,
        ops_run,
        violation,
        trace_hash: sim.trace_hash(),
        trace_tail: sim.trace().events(),
        // A hash-only trace (a campaign's cases) keeps no events to draw, so no names either.
        task_names: match sim.trace().keeps_events() {
            true => sim.trace().task_names(),
            false => Default::default(),
        },
        lockdep: sim.lockdep().reports(),
        coverage,
    }
}

/// proptest's default configuration without failure persistence: a value tree copies the
/// runner's configuration for every alternative of a `prop_oneof!` it did not pick, and the
/// persistence box made that copy an allocation per alternative per operation. Nothing here
/// decides a generated value (the RNG is set apart), so the operations are the same.
static RUNNER_CONFIG: std::sync::LazyLock<ProptestConfig> =
    std::sync::LazyLock::new(|| ProptestConfig { failure_persistence: None, ..ProptestConfig::default() });

/// The runner a case's operations are drawn with, for generation and shrinking alike, so the
/// list a campaign runs for `seed` is the one its shrinking starts from.
///
/// Its RNG stays proptest's ChaCha: XorShift (tried, SplitMix64-seeded) cut a campaign's CPU by
/// about a tenth but moved every seed's list, and in a 9-run `ksim zoo` it found taskstats'
/// `namespace-checks` after 68 median cases instead of 21. Cheaper generation needs the
/// subsystems' own generators (see the performance chapter).
fn runner_for(seed: u64) -> TestRunner {
    let mut bytes = [0u8; 32];
    bytes[..8].copy_from_slice(&seed.to_le_bytes());
    bytes[8..16].copy_from_slice(b"ksim-ops");
    TestRunner::new_with_rng(RUNNER_CONFIG.clone(), TestRng::from_seed(RngAlgorithm::ChaCha, &bytes))
}

/// How a campaign draws each case's operation list: the subject's cheap generator when it has
/// one, else its proptest strategy. Built once per campaign.
enum CaseGen<S: Subject> {
    /// [`Subject::op_gen`]: a length in `1..=ops_max`, then that many operations, all from one
    /// [`OpRng`] seeded by the case's seed.
    Cheap(OpGen<S::Op>, usize),
    /// A proptest value tree per case ([`runner_for`]).
    Tree(BoxedStrategy<Vec<S::Op>>),
}

impl<S: Subject> CaseGen<S> {
    fn new(config: &S::Config, ops_max: usize) -> CaseGen<S> {
        match S::op_gen(config) {
            Some(gen) => CaseGen::Cheap(gen, ops_max.max(1)),
            None => CaseGen::Tree(vec(S::op_strategy(config), 1..=ops_max.max(1)).boxed()),
        }
    }

    /// The list seed `seed` stands for.
    fn ops(&self, seed: u64) -> Vec<S::Op> {
        let mut ops = Vec::new();
        self.ops_into(seed, &mut ops);
        ops
    }

    /// [`CaseGen::ops`] into `ops` (emptied first), whose room a campaign keeps from case to
    /// case: taskstats' campaign 2.6 instructions an operation fewer than a list made anew
    /// each case (callgrind, binaries world26-2 and world26-4, the one difference).
    fn ops_into(&self, seed: u64, ops: &mut Vec<S::Op>) {
        ops.clear();
        match self {
            CaseGen::Cheap(gen, ops_max) => {
                let mut rng = OpRng::for_case(seed);
                let len = 1 + rng.below(*ops_max as u64) as usize;
                ops.extend((0..len).map(|_| gen(&mut rng)));
            }
            CaseGen::Tree(strategy) => *ops = generate_from(strategy, seed),
        }
    }
}

/// The operation list seed `seed` stands for: the same on every platform and run.
pub fn generate<S: Subject>(config: &S::Config, seed: u64, ops_max: usize) -> Vec<S::Op> {
    CaseGen::<S>::new(config, ops_max).ops(seed)
}

/// The list seed `seed` stands for through the subject's proptest strategy, whether or not it has
/// a cheap generator: what [`generate`] gives a subject without one (benches compare the two).
pub fn generate_tree<S: Subject>(config: &S::Config, seed: u64, ops_max: usize) -> Vec<S::Op> {
    generate_from(&vec(S::op_strategy(config), 1..=ops_max.max(1)), seed)
}

/// A case's list drawn from a proptest strategy (a subject without [`Subject::op_gen`]).
fn generate_from<Op: Debug>(strategy: &impl Strategy<Value = Vec<Op>>, seed: u64) -> Vec<Op> {
    strategy.new_tree(&mut runner_for(seed)).expect("operation strategies do not reject").current()
}

/// The options a hunting or shrinking run uses: `run`'s, with the trace only hashed. Such a run
/// only says whether and how a case fails; the one run whose trace a person reads (the shrunk
/// case's, in [`failure_from`]) keeps events as `run` says, so no event text is built before then.
fn hunting(run: &RunOptions) -> RunOptions {
    RunOptions { trace: TraceMode::HashOnly, ..run.clone() }
}

/// Shrinks seed `seed`'s failing operation list to a 1-minimal one that still fails with a
/// violation of kind `kind`. A list from proptest's value tree goes through the tree first (at
/// most `steps_max` runs), which cuts long lists fast and simplifies each operation; a list from
/// the subject's cheap generator ([`Subject::op_gen`]) has no tree, so it is cut after the
/// failing operation and then by halves, quarters and so on ([`remove_chunks`]). Either way,
/// [`remove_single_ops`] ends it, so that removing any one remaining operation makes it pass.
pub fn shrink<S: Subject>(
    config: &S::Config,
    seed: u64,
    ops_max: usize,
    kind: &ViolationKind,
    options: &RunOptions,
    steps_max: usize,
) -> Vec<S::Op> {
    let options = hunting(options);
    let run = |ops: &[S::Op]| run_case::<S>(config, seed, ops, &options).violation;
    let fails = |ops: &[S::Op]| run(ops).is_some_and(|(_, found)| found.kind == *kind);
    let best = match CaseGen::<S>::new(config, ops_max) {
        CaseGen::Cheap(gen, ops_max) => {
            let mut ops = CaseGen::<S>::Cheap(gen, ops_max).ops(seed);
            // Operations after the failing one never ran: drop them first.
            if let Some((at, found)) = run(&ops) {
                if found.kind == *kind && at + 1 < ops.len() {
                    ops.truncate(at + 1);
                }
            }
            remove_chunks(ops, fails, steps_max)
        }
        CaseGen::Tree(strategy) => shrink_tree(&strategy, seed, fails, steps_max),
    };
    remove_single_ops(best, fails, steps_max)
}

/// proptest's shrinking of seed `seed`'s list through its value tree, while `fails` holds: the
/// smallest failing list found in at most `steps_max` runs.
fn shrink_tree<Op: Debug + Clone>(
    strategy: &BoxedStrategy<Vec<Op>>,
    seed: u64,
    fails: impl Fn(&[Op]) -> bool,
    steps_max: usize,
) -> Vec<Op> {
    let mut runner = runner_for(seed);
    let mut tree = strategy.new_tree(&mut runner).expect("operation strategies do not reject");
    let mut best = tree.current();
    let mut steps = 0;
    if tree.simplify() {
        while steps < steps_max {
            steps += 1;
            let candidate = tree.current();
            if fails(&candidate) {
                best = candidate;
                if !tree.simplify() {
                    break;
                }
            } else if !tree.complicate() {
                break;
            }
        }
    }
    best
}

/// Removes runs of operations while `fails` holds: halves of the list, then quarters, down to
/// pairs, each sweep from the end (delta debugging's complement step, simplified), in at most
/// `runs_max` runs of `fails`. What it leaves for single removals is short.
pub fn remove_chunks<Op: Clone>(mut ops: Vec<Op>, fails: impl Fn(&[Op]) -> bool, runs_max: usize) -> Vec<Op> {
    let mut runs = 0;
    let mut chunk = ops.len() / 2;
    while chunk >= 2 {
        let mut end = ops.len();
        while end > 0 && runs < runs_max {
            let start = end.saturating_sub(chunk);
            if start == 0 && end == ops.len() {
                break;
            }
            runs += 1;
            let mut candidate = ops[..start].to_vec();
            candidate.extend_from_slice(&ops[end..]);
            if fails(&candidate) {
                ops = candidate;
            }
            end = start;
        }
        chunk /= 2;
    }
    ops
}

/// Removes one operation at a time, last first, keeping every removal after which `fails` still
/// holds, and repeats the sweep until one removes nothing: then the list is 1-minimal (every
/// remaining operation is needed). At most `runs_max` runs of `fails`; a list cut short by that
/// bound is still failing, only perhaps not minimal.
pub fn remove_single_ops<Op: Clone>(
    mut ops: Vec<Op>,
    fails: impl Fn(&[Op]) -> bool,
    runs_max: usize,
) -> Vec<Op> {
    let mut runs = 0;
    loop {
        let mut removed = false;
        for index in (0..ops.len()).rev() {
            if runs >= runs_max {
                return ops;
            }
            runs += 1;
            let mut candidate = ops.clone();
            candidate.remove(index);
            if fails(&candidate) {
                ops = candidate;
                removed = true;
            }
        }
        if !removed {
            return ops;
        }
    }
}

/// A failure written to disk: everything [`replay`] needs, and what a person needs to read it.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Artifact {
    /// File format version.
    pub ksim_artifact: u32,
    /// The subsystem.
    pub subsystem: String,
    /// The subject's configuration, as JSON.
    pub config: serde_json::Value,
    /// The seed.
    pub seed: u64,
    /// The (shrunk) operations, as JSON.
    pub ops: serde_json::Value,
    /// Operations before shrinking.
    pub ops_unshrunk: usize,
    /// Wall seconds spent shrinking (0 when not shrunk; absent in older artifacts).
    #[serde(default)]
    pub shrink_seconds: f64,
    /// The violation.
    pub violation: Violation,
    /// The operation index it was seen after.
    pub violation_at: usize,
    /// Hash of the whole trace of the shrunk run.
    pub trace_hash: u64,
    /// The trace tail of the shrunk run.
    pub trace_tail: Vec<Event>,
    /// Lockdep's reports in the shrunk run.
    pub lockdep: Vec<LockdepReport>,
    /// How to replay it.
    pub replay: String,
}

/// The current artifact format.
pub const ARTIFACT_VERSION: u32 = 1;

/// How many findings of one name ([`Artifact::write_found`]) a directory may hold.
const ARTIFACT_NAMES_MAX: usize = 10_000;

impl Artifact {
    /// The artifact's config and operations for subsystem `name` (`what` names the operations in
    /// the error), or one error line saying which part does not fit.
    pub fn decode<C: DeserializeOwned, O: DeserializeOwned>(
        &self,
        name: &str,
        what: &str,
    ) -> Result<(C, O), String> {
        if self.subsystem != name {
            return Err(format!("artifact is for {}, not {name}", self.subsystem));
        }
        let config = serde_json::from_value(self.config.clone())
            .map_err(|e| format!("artifact config does not fit {name}: {e}"))?;
        let ops = serde_json::from_value(self.ops.clone())
            .map_err(|e| format!("artifact {what} do not fit {name}: {e}"))?;
        Ok((config, ops))
    }

    /// Writes the artifact to `path` whole or not at all (a temporary file, the name with
    /// `.tmp` added, renamed into place).
    pub fn write(&self, path: &Path) -> std::io::Result<()> {
        let text = serde_json::to_string_pretty(self).map_err(std::io::Error::other)?;
        let mut temporary = path.as_os_str().to_os_string();
        temporary.push(".tmp");
        std::fs::write(&temporary, text)?;
        std::fs::rename(&temporary, path)
    }

    /// Writes a campaign's finding into `dir` as `{stem}.ksim.json`, with `replay` naming the
    /// file, and returns its path. A file of that name holding another finding (another
    /// campaign's config, operations or trace, written to the same `--out`) is kept and the next
    /// free `{stem}-2.ksim.json`, `-3`, ... is taken; one holding this finding (the same campaign
    /// run again) is written over. One clear line when it cannot be written.
    pub fn write_found(&mut self, dir: &Path, stem: &str) -> Result<PathBuf, String> {
        let path = (1..=ARTIFACT_NAMES_MAX)
            .map(|n| match n {
                1 => dir.join(format!("{stem}.ksim.json")),
                n => dir.join(format!("{stem}-{n}.ksim.json")),
            })
            .find(|path| !path.exists() || Artifact::read(path).is_ok_and(|there| there.same_finding(self)))
            .ok_or_else(|| {
                format!("{} holds {ARTIFACT_NAMES_MAX} other findings named {stem}", dir.display())
            })?;
        self.replay = format!("ksim replay {}", path.display());
        self.write(&path).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
        Ok(path)
    }

    /// Whether `other` records the same finding: the same subsystem, config, seed, operations
    /// and trace (what a rerun of one campaign gives again; the shrink's wall time may differ).
    fn same_finding(&self, other: &Artifact) -> bool {
        (&self.subsystem, &self.config, self.seed, &self.ops, self.trace_hash)
            == (&other.subsystem, &other.config, other.seed, &other.ops, other.trace_hash)
    }

    /// Reads an artifact, with one clear error line for a missing or corrupt file.
    pub fn read(path: &Path) -> Result<Artifact, String> {
        let text =
            std::fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        let artifact: Artifact = serde_json::from_str(&text)
            .map_err(|e| format!("{} is not a ksim artifact: {e}", path.display()))?;
        if artifact.ksim_artifact != ARTIFACT_VERSION {
            return Err(format!(
                "{} is a version {} artifact; this ksim reads version {ARTIFACT_VERSION}",
                path.display(),
                artifact.ksim_artifact
            ));
        }
        Ok(artifact)
    }
}

/// How a replay went.
#[derive(Debug)]
pub struct ReplayReport {
    /// The run.
    pub case: CaseReport,
    /// Whether it found the recorded violation kind at the recorded operation with the recorded
    /// trace hash: an exact reproduction.
    pub exact: bool,
}

/// Runs an artifact's case again, keeping the whole trace.
pub fn replay<S: Subject>(artifact: &Artifact) -> Result<ReplayReport, String> {
    let (config, ops): (S::Config, Vec<S::Op>) = artifact.decode(S::NAME, "operations")?;
    S::check_config(&config).map_err(|e| format!("artifact config: {e}"))?;
    let case = run_case::<S>(
        &config,
        artifact.seed,
        &ops,
        &RunOptions { trace: TraceMode::Full, ..RunOptions::default() },
    );
    let exact = case.trace_hash == artifact.trace_hash
        && case
            .violation
            .as_ref()
            .is_some_and(|(at, found)| *at == artifact.violation_at && found.kind == artifact.violation.kind);
    Ok(ReplayReport { case, exact })
}

/// A case or time budget.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Budget {
    /// Run this many cases.
    Cases(u64),
    /// Run until this much wall time has passed (the only use of wall time: when to stop).
    Time(Duration),
}

/// How a campaign runs.
#[derive(Clone, Debug)]
pub struct CampaignOptions {
    /// First seed.
    pub seed: u64,
    /// The budget.
    pub budget: Budget,
    /// This shard's index and the shard count: case `k` uses seed `seed + k * count + index`.
    pub shard: (u64, u64),
    /// Longest operation list per case.
    pub ops_max: usize,
    /// Where failures are written (`None`: not written).
    pub out_dir: Option<PathBuf>,
    /// Stop at the first failure.
    pub stop_on_failure: bool,
    /// Shrink steps per failure (0: no shrinking).
    pub shrink_steps: usize,
    /// How each case runs.
    pub run: RunOptions,
}

impl CampaignOptions {
    /// `cases` cases from seed 0, one shard, 200 operations, no files.
    pub fn cases(cases: u64) -> CampaignOptions {
        CampaignOptions {
            seed: 0,
            budget: Budget::Cases(cases),
            shard: (0, 1),
            ops_max: 200,
            out_dir: None,
            stop_on_failure: true,
            shrink_steps: 400,
            run: RunOptions::default(),
        }
    }
}

/// One failure a campaign found.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Failure {
    /// The artifact (already on disk when `path` is set).
    pub artifact: Artifact,
    /// Where it was written.
    pub path: Option<PathBuf>,
    /// Cases run up to and including the failing one.
    pub cases_to_find: u64,
    /// Wall time to find it, for the zoo's table (shrinking not included).
    pub seconds_to_find: f64,
    /// Wall time spent shrinking it (also in the artifact).
    #[serde(default)]
    pub shrink_seconds: f64,
}

/// Progress, as the callback sees it.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Progress {
    /// Cases run.
    pub cases: u64,
    /// Operations applied.
    pub ops: u64,
    /// Failures found.
    pub failures: u64,
    /// Wall seconds so far.
    pub seconds: f64,
    /// Threaded cases whose linearizability search gave up at its bound (their outcomes were
    /// not all judged).
    #[serde(default)]
    pub linearizability_bound_hits: u64,
    /// Threaded cases an execution of which ran into the step bound (reported as a liveness
    /// failure).
    #[serde(default)]
    pub step_bound_hits: u64,
}

/// What a campaign found.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct CampaignReport {
    /// The subsystem.
    pub subsystem: String,
    /// Totals.
    pub progress: Progress,
    /// Every failure found, in seed order.
    pub failures: Vec<Failure>,
    /// Every coverage mark reached, with how many cases reached it.
    pub coverage: std::collections::BTreeMap<String, u64>,
    /// Whether a stop request ended it early.
    pub interrupted: bool,
}

impl CampaignReport {
    /// The empty report every campaign (op-level or threaded) starts from, once its options are
    /// checked: a shard `I/N` with `I < N`, and the artifact directory made.
    pub(crate) fn start(subsystem: &str, options: &CampaignOptions) -> Result<CampaignReport, String> {
        let (shard_index, shard_count) = options.shard;
        if shard_count == 0 || shard_index >= shard_count {
            return Err(format!("shard {shard_index}/{shard_count}: need 0 <= I < N"));
        }
        if let Some(dir) = &options.out_dir {
            std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        }
        Ok(CampaignReport {
            subsystem: subsystem.to_string(),
            progress: Progress::default(),
            failures: Vec::new(),
            coverage: Default::default(),
            interrupted: false,
        })
    }
}

impl CampaignReport {
    /// Books a failure found after `seconds_to_find`, at the case count reached so far.
    pub(crate) fn push_failure(&mut self, failure: Failure, seconds_to_find: f64) {
        self.failures.push(Failure { cases_to_find: self.progress.cases, seconds_to_find, ..failure });
        self.progress.failures += 1;
    }

    /// Ends a case: the time so far is reported to `progress`; true when the campaign stops
    /// at its first failure and has one.
    pub(crate) fn case_done(
        &mut self,
        started: Instant,
        stop_on_failure: bool,
        progress: &mut dyn FnMut(&Progress),
    ) -> bool {
        self.progress.seconds = started.elapsed().as_secs_f64();
        progress(&self.progress);
        stop_on_failure && !self.failures.is_empty()
    }
}

/// Runs a campaign. `stop` ends it early (Ctrl-C) with the partial report; every failure's
/// artifact is on disk before the failure reaches `progress` or the report.
pub fn campaign<S: Subject>(
    config: &S::Config,
    options: &CampaignOptions,
    stop: &AtomicBool,
    progress: &mut dyn FnMut(&Progress),
) -> Result<CampaignReport, String> {
    let (shard_index, shard_count) = options.shard;
    let mut report = CampaignReport::start(S::NAME, options)?;
    let started = Instant::now();
    let mut case_index = 0u64;
    let cases = CaseGen::<S>::new(config, options.ops_max);
    let hunt = hunting(&options.run);
    let mut reached = Reached::default();
    let mut kept = CaseKept::default();
    let mut ops = Vec::new();
    loop {
        let done = match options.budget {
            Budget::Cases(cases) => case_index >= cases,
            Budget::Time(limit) => started.elapsed() >= limit,
        };
        if done {
            break;
        }
        if stop.load(Ordering::Relaxed) {
            report.interrupted = true;
            break;
        }
        let seed = options.seed.wrapping_add(case_index.wrapping_mul(shard_count)).wrapping_add(shard_index);
        case_index += 1;
        cases.ops_into(seed, &mut ops);
        let case = run_case_with::<S>(config, seed, &ops, &hunt, Some(&mut kept));
        report.progress.cases += 1;
        report.progress.ops += case.ops_run as u64;
        reached.add(&kept.marks);
        if let Some((_, found)) = &case.violation {
            let seconds_to_find = started.elapsed().as_secs_f64();
            let shrink_started = Instant::now();
            let shrunk = if options.shrink_steps > 0 {
                shrink::<S>(config, seed, options.ops_max, &found.kind, &options.run, options.shrink_steps)
            } else {
                ops.clone()
            };
            let shrunk =
                Shrunk { ops: shrunk, unshrunk: ops.len(), seconds: shrink_started.elapsed().as_secs_f64() };
            let failure = failure_from::<S>(config, seed, &shrunk, &options.run, options.out_dir.as_deref())?;
            report.push_failure(failure, seconds_to_find);
        }
        if report.case_done(started, options.stop_on_failure, progress) {
            break;
        }
    }
    report.progress.seconds = started.elapsed().as_secs_f64();
    reached.add_to(&mut report.coverage);
    Ok(report)
}

/// The cases that reached each coverage mark, counted by the mark's index in the process
/// ([`CaseMarks`]: text-equal marks share one) and, for the marks kept apart by text, by text;
/// added to the report's counts by text once the campaign ends.
#[derive(Default)]
struct Reached {
    /// Cases by mark index.
    by_index: Vec<u64>,
    /// Cases by text, for the marks a case kept apart.
    by_text: std::collections::BTreeMap<&'static str, u64>,
}

impl Reached {
    fn add(&mut self, marks: &CaseMarks) {
        marks.bits.for_each(|index| {
            if index >= self.by_index.len() {
                self.by_index.resize(index + 1, 0);
            }
            self.by_index[index] += 1;
        });
        marks.extra.iter().for_each(|&text| *self.by_text.entry(text).or_default() += 1);
    }

    fn add_to(&self, coverage: &mut std::collections::BTreeMap<String, u64>) {
        let counted = self.by_index.iter().enumerate().filter(|&(_, &count)| count > 0);
        for (index, &count) in counted {
            *coverage.entry(crate::sim::mark_text(index).to_string()).or_default() += count;
        }
        for (&text, &count) in &self.by_text {
            *coverage.entry(text.to_string()).or_default() += count;
        }
    }
}

/// A shrunk operation list, with what it was shrunk from and how long that took.
struct Shrunk<Op> {
    ops: Vec<Op>,
    unshrunk: usize,
    seconds: f64,
}

/// Runs the shrunk case once more for its trace and writes the artifact.
fn failure_from<S: Subject>(
    config: &S::Config,
    seed: u64,
    shrunk: &Shrunk<S::Op>,
    run: &RunOptions,
    out_dir: Option<&Path>,
) -> Result<Failure, String> {
    let ops = &shrunk.ops;
    let case = run_case::<S>(config, seed, ops, run);
    let Some((violation_at, violation)) = case.violation else {
        return Err(format!("{} seed {seed}: the shrunk case no longer fails (nondeterminism?)", S::NAME));
    };
    let mut artifact = Artifact {
        ksim_artifact: ARTIFACT_VERSION,
        subsystem: S::NAME.to_string(),
        config: serde_json::to_value(config).map_err(|e| e.to_string())?,
        seed,
        ops: serde_json::to_value(ops).map_err(|e| e.to_string())?,
        ops_unshrunk: shrunk.unshrunk,
        shrink_seconds: shrunk.seconds,
        violation,
        violation_at,
        trace_hash: case.trace_hash,
        trace_tail: case.trace_tail,
        lockdep: case.lockdep,
        replay: format!("ksim fuzz {} --seed {seed} --cases 1", S::NAME),
    };
    let path = match out_dir {
        Some(dir) => Some(artifact.write_found(dir, &format!("{}-seed{seed}", S::NAME))?),
        None => None,
    };
    Ok(Failure { artifact, path, cases_to_find: 0, seconds_to_find: 0.0, shrink_seconds: shrunk.seconds })
}

/// For a subject with its own [`Subject::check_invariants_incremental`]: runs `cases` seeds
/// from `first_seed` and, after every operation, both checks; an error names the first seed and
/// operation where one found a broken invariant and the other did not (or another kind). Runs
/// on until the first violation of either, so failing cases (a fix off) are compared too.
/// Returns how many operations were compared and how many of them found a broken invariant.
pub fn incremental_agrees<S: Subject>(
    config: &S::Config,
    first_seed: u64,
    cases: u64,
    ops_max: usize,
) -> Result<(u64, u64), String> {
    let (mut compared, mut broken) = (0, 0);
    for seed in first_seed..first_seed + cases {
        let ops = generate::<S>(config, seed, ops_max);
        let sim =
            Sim::new(S::sim_config(config, seed).lockdep(ReportMode::Collect).trace(TraceMode::HashOnly));
        sim.trace().confine_to_this_thread();
        let mut model = S::new(&sim, config);
        for (index, op) in ops.iter().enumerate() {
            if catch_unwind(AssertUnwindSafe(|| model.apply(&sim, op))).is_err() {
                break;
            }
            let full = model.check_invariants(&sim).err().map(|found| found.kind);
            let incremental = model.check_invariants_incremental(&sim, op).err().map(|found| found.kind);
            compared += 1;
            if full != incremental {
                return Err(format!(
                    "{} seed {seed} operation {} ({op:?}): the whole check found {full:?}, the incremental one {incremental:?}",
                    S::NAME,
                    index + 1
                ));
            }
            if full.is_some() || sim.has_violations() {
                broken += u64::from(full.is_some());
                break;
            }
        }
    }
    Ok((compared, broken))
}

/// For property tests: runs `cases` seeds from `first_seed` and panics on the first failure with
/// the shrunk operations and the command that replays it. Returns the coverage marks reached, so
/// the test can assert the interesting states were.
pub fn assert_cases_pass<S: Subject>(
    config: &S::Config,
    first_seed: u64,
    cases: u64,
    ops_max: usize,
) -> BTreeSet<String> {
    let options = CampaignOptions { seed: first_seed, ops_max, ..CampaignOptions::cases(cases) };
    let report = campaign::<S>(config, &options, &AtomicBool::new(false), &mut |_| {})
        .unwrap_or_else(|e| panic!("{}: {e}", S::NAME));
    if let Some(failure) = report.failures.first() {
        let artifact = &failure.artifact;
        let ops = serde_json::to_string_pretty(&artifact.ops).unwrap_or_default();
        let tail: Vec<String> =
            artifact.trace_tail.iter().rev().take(30).rev().map(|e| format!("{e:?}")).collect();
        panic!(
            "{} seed {} failed after {} of {} operations (shrunk from {}):\n{}\nconfig: {}\noperations: {ops}\ntrace tail:\n{}\nreplay: ksim fuzz {} --seed {} --cases 1 (config above)",
            S::NAME,
            artifact.seed,
            artifact.violation_at + 1,
            serde_json::to_value(&artifact.ops).map(|v| v.as_array().map_or(0, Vec::len)).unwrap_or(0),
            artifact.ops_unshrunk,
            artifact.violation,
            artifact.config,
            tail.join("\n"),
            S::NAME,
            artifact.seed,
        );
    }
    report.coverage.keys().cloned().collect()
}

/// For zoo tests: runs up to `cases` seeds and returns the first failure, shrunk, or `None`.
pub fn find_failure<S: Subject>(
    config: &S::Config,
    first_seed: u64,
    cases: u64,
    ops_max: usize,
) -> Option<Failure> {
    let options = CampaignOptions { seed: first_seed, ops_max, ..CampaignOptions::cases(cases) };
    campaign::<S>(config, &options, &AtomicBool::new(false), &mut |_| {})
        .unwrap_or_else(|e| panic!("{}: {e}", S::NAME))
        .failures
        .into_iter()
        .next()
}

/// A fix as `ksim list` shows it: a row of the subsystem's [`FixTable`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FixInfo {
    /// The switch's name, as `--fix-off` takes it (`"duplicate-listener-check"`).
    pub name: String,
    /// The upstream fix's commit title.
    pub title: String,
    /// The upstream commit id (12 hex digits), or `"unverified"`.
    pub commit: String,
    /// The first kernel version that has it.
    pub landed_in: KernelVersion,
    /// The CVE, if any.
    pub cve: Option<String>,
    /// What goes wrong without it, in a sentence.
    pub symptom: String,
}

/// A named preset as `ksim list` shows it: a kernel version and the fixes it has on.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PresetInfo {
    /// The preset's name, as `--kernel` takes it (`"linux-3.4"`).
    pub name: String,
    /// The kernel version it stands for.
    pub version: KernelVersion,
    /// Which seed listing it models and what is notable about it.
    pub description: String,
    /// The fixes it has on.
    pub fixes: Vec<String>,
}

/// A historical bug ksim reproduces: the fix to switch off and how the checkers find it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ZooEntry {
    /// A short name for the bug.
    pub name: &'static str,
    /// The kernel the bug is run in: a named preset or a version, as `--kernel` takes it.
    pub kernel: &'static str,
    /// The fix switched off to reproduce it (switched on, the same budget must stay quiet).
    pub fix: &'static str,
    /// Which checker finds it: "op-sim", "lockdep", "loom", "shuttle".
    pub checker: &'static str,
    /// The kinds of violation that are this bug: where one bug shows as several kinds depending on
    /// the interleaving, each is listed. Compare with [`ZooEntry::accepts`].
    pub expected: Vec<ViolationKind>,
    /// Longest operation list per case when hunting it.
    pub ops_max: usize,
    /// Cases to try before giving up.
    pub cases_max: u64,
}

impl ZooEntry {
    /// Whether a violation of `kind` is this bug.
    pub fn accepts(&self, kind: &ViolationKind) -> bool {
        self.expected.contains(kind)
    }
}

/// A named teaching scenario: a short scripted run whose trace shows one idea.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScenarioInfo {
    /// Its name, as `ksim trace` takes it.
    pub name: &'static str,
    /// What it shows.
    pub description: &'static str,
}

/// What a subsystem tells the CLI and the zoo about itself.
pub trait Catalog: Subject {
    /// The subsystem's fixes, modelled kernel range and named presets.
    fn fix_table() -> &'static FixTable;
    /// The configuration for `kernel` (a named preset or a version; None: the default preset)
    /// with `fixes_off` switched off. An unknown name or a version outside the modelled range is
    /// an error line naming the valid choices.
    fn config(kernel: Option<&str>, fixes_off: &[String]) -> Result<Self::Config, String>;
    /// The historical bugs.
    fn zoo() -> Vec<ZooEntry>;
    /// The teaching scenarios.
    fn scenarios() -> Vec<ScenarioInfo>;
    /// Runs scenario `name` in a `Sim` that keeps the whole trace, and returns it (None: no such
    /// scenario).
    fn run_scenario(name: &str) -> Option<Sim>;

    /// Every fix, from [`Catalog::fix_table`].
    fn fixes() -> Vec<FixInfo> {
        fix_infos(Self::fix_table())
    }

    /// The named presets, oldest first (the last is the default), from [`Catalog::fix_table`].
    fn presets() -> Vec<PresetInfo> {
        preset_infos(Self::fix_table())
    }
}

/// The rows of `table` as [`FixInfo`]s.
pub fn fix_infos(table: &FixTable) -> Vec<FixInfo> {
    table
        .fixes
        .iter()
        .map(|fix| FixInfo {
            name: fix.name.to_string(),
            title: fix.title.to_string(),
            commit: match fix.commit {
                Commit::Id(id) => id.to_string(),
                Commit::Unverified => "unverified".to_string(),
            },
            landed_in: fix.landed_in,
            cve: fix.cve.map(str::to_string),
            symptom: fix.symptom.to_string(),
        })
        .collect()
}

/// The named presets of `table` as [`PresetInfo`]s.
pub fn preset_infos(table: &FixTable) -> Vec<PresetInfo> {
    table
        .presets
        .iter()
        .map(|preset| PresetInfo {
            name: preset.name.to_string(),
            version: preset.version,
            description: preset.description.to_string(),
            fixes: table.names(table.bits_at(preset.version)).into_iter().map(str::to_string).collect(),
        })
        .collect()
}
