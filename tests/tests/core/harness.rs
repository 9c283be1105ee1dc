//! The op-level checker's harness: determinism, campaigns, shrinking, artifacts and replay.

use std::collections::BTreeSet;
use std::sync::atomic::AtomicBool;

use proptest::prelude::*;
use serde::{Deserialize, Serialize};
use sim_core::check::{self, Artifact, Budget, CampaignOptions, Reference, RunOptions, Subject};
use sim_core::trace::TraceMode;
use sim_core::{Sim, SpinLock, Violation};

use super::listeners::{Listeners, ListenersConfig, Prune};

fn listeners_config() -> ListenersConfig {
    ListenersConfig { cpus: 2, ports: 4, prune: Prune::Revalidate }
}

/// Seeds the op-level determinism tests run, per subject (issue 15: "the determinism test covers
/// 1000 seeds").
pub(crate) const DETERMINISM_SEEDS: u64 = 1000;

/// Seeds `0..DETERMINISM_SEEDS` of `S` under `config`, lists of up to `ops_max` operations: each
/// seed names the same list twice (compared as JSON, so every field counts), the list passes and
/// runs to the same trace hash twice, and the seeds lead to different runs (more than four in five
/// distinct hashes: the shortest lists of a busy subsystem's cheap kinds run alike). `replay` is the command that reruns seed `{seed}`. Returns the coverage marks
/// reached, so a caller can assert the runs got somewhere.
pub(crate) fn assert_seeds_repeat<S: Subject>(
    config: &S::Config,
    ops_max: usize,
    replay: &str,
) -> BTreeSet<&'static str> {
    let options = RunOptions { check_every: 1, trace: TraceMode::HashOnly };
    let (mut distinct, mut marks) = (BTreeSet::new(), BTreeSet::new());
    for seed in 0..DETERMINISM_SEEDS {
        let replay = replay.replace("{seed}", &seed.to_string());
        let ops = check::generate::<S>(config, seed, ops_max);
        let json = |ops: &[S::Op]| serde_json::to_string(ops).expect("operations serialise");
        let again = check::generate::<S>(config, seed, ops_max);
        assert_eq!(json(&ops), json(&again), "{} seed {seed}: operations differ; {replay}", S::NAME);
        let first = check::run_case::<S>(config, seed, &ops, &options);
        let second = check::run_case::<S>(config, seed, &ops, &options);
        assert!(first.passed(), "{} seed {seed}: {:?}; {replay}", S::NAME, first.violation);
        assert_eq!(first.trace_hash, second.trace_hash, "{} seed {seed}: traces differ; {replay}", S::NAME);
        distinct.insert(first.trace_hash);
        marks.extend(first.coverage);
    }
    assert!(
        distinct.len() as u64 > DETERMINISM_SEEDS * 4 / 5,
        "{}: seeds must lead to different runs; only {} distinct hashes of {DETERMINISM_SEEDS}",
        S::NAME,
        distinct.len()
    );
    marks
}

/// [`assert_seeds_repeat`] for `S`'s default preset (what `ksim fuzz S` runs) with lists of up to
/// 60 operations, whose runs must reach more than five coverage marks between them.
pub(crate) fn assert_default_seeds_repeat<S: check::Catalog>() {
    let config = S::config(None, &[]).expect("default preset");
    let replay = format!("replay: ksim fuzz {} --seed {{seed}} --cases 1 --ops 60", S::NAME);
    let marks = assert_seeds_repeat::<S>(&config, 60, &replay);
    assert!(marks.len() > 5, "{}: the runs reached few states: {marks:?}", S::NAME);
}

#[test]
fn same_seed_gives_the_same_trace_hash_for_1000_seeds() {
    let replay = "replay: check::generate::<Listeners>(&listeners_config(), {seed}, 60)";
    let marks = assert_seeds_repeat::<Listeners>(&listeners_config(), 60, replay);
    assert!(marks.contains("listener pruned"), "{marks:?}");
}

#[test]
fn listener_model_passes_against_its_reference_and_prunes() {
    let marks = check::assert_cases_pass::<Listeners>(&listeners_config(), 0, 64, 80);
    assert!(marks.contains("listener pruned"), "no case pruned a listener: {marks:?}");
    assert!(marks.contains("delivered to several listeners"), "{marks:?}");
}

// --- a subject with a switchable bug, to prove shrinking, artifacts and replay -----------------

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct RingConfig {
    capacity: usize,
    /// The fix: refuse a push into a full ring.
    full_check: bool,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
enum RingOp {
    Push(u8),
    Pop,
}

struct Ring {
    slots: SpinLock<Vec<u8>>,
    capacity: usize,
    full_check: bool,
    cx: sim_core::Cx,
}

impl Subject for Ring {
    const NAME: &'static str = "ring";
    type Config = RingConfig;
    type Op = RingOp;
    type Outcome = Option<u8>;
    type Reference = RingModel;

    fn new(sim: &Sim, config: &RingConfig) -> Ring {
        Ring {
            slots: SpinLock::new("ring->lock", Vec::new()),
            capacity: config.capacity,
            full_check: config.full_check,
            cx: sim.cx("user", 0),
        }
    }

    fn op_strategy(_config: &RingConfig) -> BoxedStrategy<RingOp> {
        prop_oneof![3 => any::<u8>().prop_map(RingOp::Push), 1 => Just(RingOp::Pop)].boxed()
    }

    fn apply(&mut self, _sim: &Sim, op: &RingOp) -> Option<u8> {
        let mut slots = self.slots.lock(&self.cx);
        match op {
            RingOp::Push(value) => {
                if self.full_check && slots.len() == self.capacity {
                    return None;
                }
                slots.push(*value);
                Some(*value)
            }
            RingOp::Pop => (!slots.is_empty()).then(|| slots.remove(0)),
        }
    }

    fn check_invariants(&self, _sim: &Sim) -> Result<(), Violation> {
        let slots = self.slots.lock(&self.cx);
        if slots.len() > self.capacity {
            return Err(Violation::new(
                "invariant",
                format!("ring holds {} values, capacity {}", slots.len(), self.capacity),
            ));
        }
        Ok(())
    }

    fn teardown(self, _sim: &Sim) -> Result<(), Violation> {
        Ok(())
    }

    fn coverage(&self) -> BTreeSet<&'static str> {
        BTreeSet::new()
    }
}

struct RingModel {
    values: std::collections::VecDeque<u8>,
    capacity: usize,
}

impl Reference for RingModel {
    type Config = RingConfig;
    type Op = RingOp;
    type Outcome = Option<u8>;

    fn new(config: &RingConfig) -> RingModel {
        RingModel { values: Default::default(), capacity: config.capacity }
    }

    fn check(&mut self, op: &RingOp, actual: &Option<u8>) -> Result<(), String> {
        let expect = match op {
            RingOp::Push(value) if self.values.len() < self.capacity => {
                self.values.push_back(*value);
                Some(*value)
            }
            RingOp::Push(_) => None,
            RingOp::Pop => self.values.pop_front(),
        };
        // The reference is lenient about the overflowing push itself so that the invariant,
        // not the comparison, is what catches the bug.
        if expect == *actual || matches!(op, RingOp::Push(_)) && expect.is_none() {
            Ok(())
        } else {
            Err(format!("expected {expect:?}"))
        }
    }
}

fn scratch_dir(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("ksim-harness-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

#[test]
fn campaign_shrinks_a_failure_writes_it_and_replay_reproduces_it_exactly() {
    let config = RingConfig { capacity: 3, full_check: false };
    let dir = scratch_dir("ring");
    let options = CampaignOptions { out_dir: Some(dir.clone()), ops_max: 60, ..CampaignOptions::cases(50) };
    let report =
        check::campaign::<Ring>(&config, &options, &AtomicBool::new(false), &mut |_| {}).expect("campaign");
    let failure = report.failures.first().expect("the overflow is found");
    assert_eq!(failure.artifact.violation.kind, "invariant");
    let ops: Vec<RingOp> = serde_json::from_value(failure.artifact.ops.clone()).expect("ops");
    assert_eq!(ops.len(), 4, "shrunk to capacity + 1 pushes: {ops:?}");
    assert!(ops.iter().all(|op| matches!(op, RingOp::Push(0))), "and to the simplest values: {ops:?}");
    let path = failure.path.as_ref().expect("written");
    let read = Artifact::read(path).expect("artifact reads back");
    let replayed = check::replay::<Ring>(&read).expect("replay");
    assert!(replayed.exact, "replay must reproduce the violation and the trace hash");
    assert!(!replayed.case.trace_tail.is_empty());
    let _ = std::fs::remove_dir_all(&dir);
}

/// Asserts that `ops` fails with `kind` and that removing any one operation makes the case pass:
/// the shrunk list is 1-minimal.
pub(crate) fn assert_one_minimal<S: Subject>(
    config: &S::Config,
    seed: u64,
    ops: &[S::Op],
    kind: &sim_core::ViolationKind,
) {
    let options = RunOptions::default();
    let whole = check::run_case::<S>(config, seed, ops, &options);
    assert!(
        whole.violation.as_ref().is_some_and(|(_, found)| found.kind == *kind),
        "seed {seed}: the shrunk case must fail with {kind}: {:?}",
        whole.violation
    );
    for index in 0..ops.len() {
        let mut fewer = ops.to_vec();
        let removed = fewer.remove(index);
        let case = check::run_case::<S>(config, seed, &fewer, &options);
        assert!(
            case.passed(),
            "seed {seed}: without operation {} ({removed:?}) the case still fails ({:?}): not 1-minimal",
            index + 1,
            case.violation
        );
    }
}

#[test]
fn shrunk_failures_are_one_minimal_and_the_shrink_time_is_reported() {
    let config = RingConfig { capacity: 3, full_check: false };
    let options = CampaignOptions { ops_max: 60, stop_on_failure: false, ..CampaignOptions::cases(12) };
    let report =
        check::campaign::<Ring>(&config, &options, &AtomicBool::new(false), &mut |_| {}).expect("campaign");
    assert!(report.failures.len() >= 5, "most seeds overflow the ring: {}", report.failures.len());
    for failure in &report.failures {
        let artifact = &failure.artifact;
        let ops: Vec<RingOp> = serde_json::from_value(artifact.ops.clone()).expect("ops");
        assert_one_minimal::<Ring>(&config, artifact.seed, &ops, &artifact.violation.kind);
        assert!(failure.shrink_seconds > 0.0, "shrinking takes measurable time");
        assert_eq!(artifact.shrink_seconds, failure.shrink_seconds, "the artifact records it too");
    }
}

#[test]
fn single_removal_sweeps_to_a_fixpoint_within_its_bound() {
    // Fails while 3 comes before 7 somewhere; every other element is noise.
    let fails = |ops: &[u8]| {
        let first_three = ops.iter().position(|&v| v == 3);
        first_three.is_some_and(|at| ops[at..].contains(&7))
    };
    let ops = vec![1, 3, 2, 3, 9, 7, 7, 4];
    let minimal = check::remove_single_ops(ops, fails, 1000);
    assert_eq!(minimal, vec![3, 7]);
    let bounded = check::remove_single_ops(vec![1, 3, 2, 7], fails, 1);
    assert_eq!(bounded, vec![1, 3, 2, 7], "one run allowed: the last element (7) cannot go, nothing removed");
}

#[test]
fn fixed_subject_stays_quiet_for_the_same_budget() {
    let config = RingConfig { capacity: 3, full_check: true };
    assert!(check::find_failure::<Ring>(&config, 0, 50, 60).is_none());
}

#[test]
fn shards_partition_the_seed_space() {
    let config = RingConfig { capacity: 1000, full_check: true };
    let seeds_of = |shard: (u64, u64)| {
        let options = CampaignOptions { shard, ops_max: 1, ..CampaignOptions::cases(10) };
        let mut seen = Vec::new();
        let report =
            check::campaign::<Ring>(&config, &options, &AtomicBool::new(false), &mut |p| seen.push(p.cases))
                .expect("campaign");
        assert_eq!(report.progress.cases, 10);
        assert_eq!(seen, (1..=10).collect::<Vec<_>>(), "progress is called once per case");
        (0..10).map(|k| k * shard.1 + shard.0).collect::<BTreeSet<u64>>()
    };
    let (zero, one) = (seeds_of((0, 2)), seeds_of((1, 2)));
    assert!(zero.is_disjoint(&one));
    assert!(check::campaign::<Ring>(
        &config,
        &CampaignOptions { shard: (2, 2), ..CampaignOptions::cases(1) },
        &AtomicBool::new(false),
        &mut |_| {}
    )
    .is_err());
}

#[test]
fn time_budget_and_stop_flag_end_a_campaign() {
    let config = RingConfig { capacity: 1000, full_check: true };
    let options = CampaignOptions {
        budget: Budget::Time(std::time::Duration::from_millis(50)),
        ..CampaignOptions::cases(0)
    };
    let report =
        check::campaign::<Ring>(&config, &options, &AtomicBool::new(false), &mut |_| {}).expect("ok");
    assert!(report.progress.cases > 0 && !report.interrupted);
    let stopped =
        check::campaign::<Ring>(&config, &options, &AtomicBool::new(true), &mut |_| {}).expect("ok");
    assert!(stopped.interrupted && stopped.progress.cases == 0);
}

#[test]
fn corrupt_and_missing_artifacts_are_one_clear_error() {
    let dir = scratch_dir("corrupt");
    std::fs::create_dir_all(&dir).expect("dir");
    let path = dir.join("bad.ksim.json");
    std::fs::write(&path, "{ not json").expect("write");
    let error = Artifact::read(&path).expect_err("corrupt");
    assert!(error.contains("is not a ksim artifact") && !error.contains('\n'), "{error}");
    let error = Artifact::read(&dir.join("missing.json")).expect_err("missing");
    assert!(error.starts_with("cannot read"), "{error}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// A subject that only marks: each operation one of a few marks (one of them also made from a
/// second address with the same text), and its own coverage holds a text it also marks and one
/// it never marks, so a campaign's counts must count each text once a case.
struct Marking {
    seen: std::cell::Cell<u8>,
}

/// [`Marking`]'s marks, by operation value.
const MARKING_TEXTS: [&str; 3] = ["marking-low", "marking-mid", "marking-high"];

impl Subject for Marking {
    const NAME: &'static str = "marking";
    type Config = RingConfig;
    type Op = u8;
    type Outcome = ();
    type Reference = MarkingModel;

    fn new(_sim: &Sim, _config: &RingConfig) -> Marking {
        Marking { seen: std::cell::Cell::new(0) }
    }

    fn op_strategy(_config: &RingConfig) -> BoxedStrategy<u8> {
        any::<u8>().boxed()
    }

    fn apply(&mut self, sim: &Sim, op: &u8) {
        sim.mark(MARKING_TEXTS[usize::from(*op) % 3]);
        if *op == 7 {
            // The same text at another address: one mark.
            sim.mark(Box::leak(MARKING_TEXTS[1].to_string().into_boxed_str()));
        }
        self.seen.set(self.seen.get() | 1 << (op % 3));
    }

    fn check_invariants(&self, _sim: &Sim) -> Result<(), Violation> {
        Ok(())
    }

    fn teardown(self, sim: &Sim) -> Result<(), Violation> {
        // Made after the coverage is read: never counted.
        sim.mark("marking-teardown");
        Ok(())
    }

    fn coverage(&self) -> BTreeSet<&'static str> {
        let mut own = BTreeSet::from(["marking-own"]);
        if self.seen.get() & 1 != 0 {
            own.insert(MARKING_TEXTS[0]);
        }
        own
    }
}

struct MarkingModel;

impl Reference for MarkingModel {
    type Config = RingConfig;
    type Op = u8;
    type Outcome = ();

    fn new(_config: &RingConfig) -> MarkingModel {
        MarkingModel
    }

    fn check(&mut self, _op: &u8, _actual: &()) -> Result<(), String> {
        Ok(())
    }
}

/// The counts a campaign reports for each coverage text are the cases whose `run_case`
/// coverage set holds it (the campaign counts the world's mark bits without building the set).
fn assert_campaign_counts_what_cases_report<S: Subject>(config: &S::Config, cases: u64, ops_max: usize) {
    let options =
        CampaignOptions { ops_max, stop_on_failure: false, shrink_steps: 0, ..CampaignOptions::cases(cases) };
    let report =
        check::campaign::<S>(config, &options, &AtomicBool::new(false), &mut |_| {}).expect("campaign");
    let mut expect = std::collections::BTreeMap::<String, u64>::new();
    for seed in 0..cases {
        let ops = check::generate::<S>(config, seed, ops_max);
        let case = check::run_case::<S>(config, seed, &ops, &RunOptions::default());
        case.coverage.iter().for_each(|mark| *expect.entry(mark.to_string()).or_default() += 1);
    }
    assert!(!expect.is_empty(), "{}: no coverage to compare", S::NAME);
    assert_eq!(report.coverage, expect, "{}: campaign counts vs the cases' sets, seeds 0..{cases}", S::NAME);
}

#[test]
fn a_campaign_counts_each_cases_coverage_texts_once() {
    assert_campaign_counts_what_cases_report::<Marking>(
        &RingConfig { capacity: 3, full_check: true },
        60,
        12,
    );
    let demo = demo_sim::DemoConfig::new(demo_sim::PRESET_NEW, demo_sim::Fixes::all());
    assert_campaign_counts_what_cases_report::<demo_sim::DemoSubject>(&demo, 40, 60);
}
