//! A campaign's world kept between its cases (`Sim::renew`): cases run in the last case's world
//! made new report what they report in new worlds, for a subject that touches every part of
//! the world a case can change: the RNG and the fault plan, the clock, lockdep (a graph, and a
//! report in some cases), RCU callbacks and grace periods, reclaim (a plan, shrinkers and
//! runs), marks (more than the mark bits hold), named tasks past the name slots, observers,
//! pids' names, violations, and panics in an operation and in the model's construction.

use std::collections::BTreeSet;
use std::sync::Arc;

use proptest::prelude::*;
use serde::{Deserialize, Serialize};
use sim_core::check::{self, Reference, RunOptions, Subject};
use sim_core::fault::{FaultAttr, FaultKind, FaultPlan, FaultSite};
use sim_core::mm::reclaim::{direct_reclaim, ShrinkControl};
use sim_core::mm::Gfp;
use sim_core::trace::TraceMode;
use sim_core::{Cx, Mutex, Sim, SimConfig, SpinLock, Violation};

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct AllConfig {
    cpus: u32,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
enum AllOp {
    /// `a` then `b` (`true`: `b` then `a`, a reported inversion once both orders are seen).
    Locks(bool),
    /// A callback queued with `call_rcu()`, and the grace-period machinery run.
    Rcu(u8),
    /// A fault decision at a slab site and a call site.
    Fault,
    /// A mark, one of many (past the world's mark bits for some).
    Mark(u16),
    /// A context made by name (more names than the world's name slots), and one for a pid.
    Named(u8),
    /// An observer context, and a look at the lock under it.
    Observe(u8),
    /// Draws and the clock.
    Draw(u64),
    /// Direct reclaim, through the shrinker the model registered.
    Reclaim,
    /// A violation reported.
    Report,
    /// A panic in the operation.
    Panic,
}

struct All {
    a: SpinLock<u64>,
    b: Mutex<u64>,
    cx: Cx,
    rcu_done: Arc<std::sync::atomic::AtomicU64>,
}

/// Marks: static texts, and leaked ones past the world's mark bits (the same texts each run).
fn mark_text(at: u16) -> &'static str {
    static TEXTS: std::sync::OnceLock<Vec<&'static str>> = std::sync::OnceLock::new();
    TEXTS.get_or_init(|| (0..1200).map(|i| &*Box::leak(format!("reuse mark {i}").into_boxed_str())).collect())
        [usize::from(at) % 1200]
}

const NAMES: [&str; 12] = ["n0", "n1", "n2", "n3", "n4", "n5", "n6", "n7", "n8", "n9", "n10", "n11"];

impl Subject for All {
    const NAME: &'static str = "world-reuse";
    type Config = AllConfig;
    type Op = AllOp;
    type Outcome = u64;
    type Reference = Anything;

    fn sim_config(config: &AllConfig, seed: u64) -> SimConfig {
        SimConfig::new(seed).cpus(config.cpus)
    }

    fn new(sim: &Sim, _config: &AllConfig) -> All {
        if sim.below(40) == 0 {
            panic!("the model failed to build");
        }
        let plan = FaultPlan::with(FaultAttr::probability(20).kind(FaultKind::Slab))
            .and(FaultAttr::nth(3).kind(FaultKind::Call));
        if sim.chance(1, 2) {
            sim.set_faults(plan.clone());
        }
        if sim.chance(1, 3) {
            sim.set_reclaim_plan(plan);
        }
        let scanned = sim.below(5);
        sim.register_shrinker(
            "reuse shrinker",
            Arc::new(move |_: &Cx, control: &ShrinkControl| scanned + control.nr_to_scan),
        );
        All {
            a: SpinLock::new("reuse->a", 0),
            b: Mutex::new("reuse->b", 0),
            cx: sim.cx("worker", 0),
            rcu_done: Default::default(),
        }
    }

    fn op_strategy(_config: &AllConfig) -> BoxedStrategy<AllOp> {
        prop_oneof![
            8 => Just(AllOp::Locks(false)),
            1 => Just(AllOp::Locks(true)),
            4 => any::<u8>().prop_map(AllOp::Rcu),
            4 => Just(AllOp::Fault),
            6 => any::<u16>().prop_map(AllOp::Mark),
            4 => any::<u8>().prop_map(AllOp::Named),
            3 => any::<u8>().prop_map(AllOp::Observe),
            4 => any::<u64>().prop_map(AllOp::Draw),
            2 => Just(AllOp::Reclaim),
            1 => Just(AllOp::Report),
            1 => Just(AllOp::Panic),
        ]
        .boxed()
    }

    fn apply(&mut self, sim: &Sim, op: &AllOp) -> u64 {
        match op {
            AllOp::Locks(false) => {
                let mut b = self.b.lock(&self.cx);
                let mut a = self.a.lock(&self.cx);
                *a += 1;
                *b += *a;
                *b
            }
            AllOp::Locks(true) => {
                let a = self.a.lock(&self.cx);
                *self.b.lock(&self.cx) + *a
            }
            AllOp::Rcu(value) => {
                let done = self.rcu_done.clone();
                let value = u64::from(*value);
                sim_core::rcu::call_rcu(&self.cx, move |_| {
                    done.fetch_add(value, std::sync::atomic::Ordering::Relaxed);
                });
                sim.rcu_advance() as u64 + self.rcu_done.load(std::sync::atomic::Ordering::Relaxed)
            }
            AllOp::Fault => {
                let slab = sim.should_fail(&self.cx, &FaultSite::slab("reuse_slab"), 64);
                let call = sim.should_fail(&self.cx, &FaultSite::call("reuse_call"), 0);
                u64::from(slab) | u64::from(call) << 1 | sim.faults_failed() << 2
            }
            AllOp::Mark(at) => {
                sim.mark(mark_text(*at));
                sim.mark(["reuse even", "reuse odd"][usize::from(*at % 2)]);
                u64::from(*at)
            }
            AllOp::Named(at) => {
                let named = sim.cx(NAMES[usize::from(*at) % NAMES.len()], u32::from(*at) % sim.cpus());
                let task = sim.cx_for_task(u32::from(*at) + 1, NAMES[usize::from(*at) % 3], 0);
                *self.a.lock(&named) += 1;
                drop(self.a.lock(&task));
                u64::from(named.task()) + u64::from(task.task())
            }
            AllOp::Observe(at) => {
                let observer = sim.observer_cx(NAMES[usize::from(*at) % NAMES.len()], 0);
                self.a.observe(&observer, |a| *a)
            }
            AllOp::Draw(bound) => sim.below(bound.max(&1) % 1000 + 1) + sim.random_u64() % 7 + sim.now_ns(),
            AllOp::Reclaim => {
                sim.advance_ns(1000);
                direct_reclaim(&self.cx, Gfp::GFP_KERNEL) + sim.reclaim_runs()
            }
            AllOp::Report => {
                sim.report(
                    Some(&self.cx),
                    Violation::new("invariant", format!("reported at {}", sim.now_ns())),
                );
                0
            }
            AllOp::Panic => panic!("an operation panicked at {}", sim.below(1000)),
        }
    }

    fn check_invariants(&self, _sim: &Sim) -> Result<(), Violation> {
        Ok(())
    }

    fn teardown(self, _sim: &Sim) -> Result<(), Violation> {
        Ok(())
    }

    fn coverage(&self) -> BTreeSet<&'static str> {
        BTreeSet::from(["reuse own", "reuse even"])
    }
}

/// A reference that accepts every outcome: the test compares reports, not outcomes.
struct Anything;

impl Reference for Anything {
    type Config = AllConfig;
    type Op = AllOp;
    type Outcome = u64;

    fn new(_config: &AllConfig) -> Anything {
        Anything
    }

    fn check(&mut self, _op: &AllOp, _actual: &u64) -> Result<(), String> {
        Ok(())
    }
}

/// Cases in a kept world report what cases in new worlds do, over 400 seeds a run, with the
/// trace hashed only (a campaign's) and with its tail kept; a world with other CPUs each.
#[test]
fn cases_in_a_reused_world_report_what_cases_in_new_worlds_do() {
    let runs = [
        (2, RunOptions { check_every: 64, trace: TraceMode::HashOnly }),
        (3, RunOptions { check_every: 1, trace: TraceMode::Tail(50) }),
        (1, RunOptions { check_every: 5, trace: TraceMode::Full }),
    ];
    for (cpus, options) in runs {
        let config = AllConfig { cpus };
        let agreed =
            check::reuse_agrees::<All>(&config, 0..400, 40, &options).unwrap_or_else(|text| panic!("{text}"));
        assert_eq!(agreed.reused, 399, "every case after the first in the kept world ({options:?})");
        assert!(agreed.failed > 0, "some cases failed ({options:?})");
    }
    // The cases got everywhere: passed, and failed by each way a case fails.
    let options = RunOptions::default();
    let mut kinds = BTreeSet::new();
    for seed in 0..400 {
        let ops = check::generate::<All>(&AllConfig { cpus: 2 }, seed, 40);
        let report = check::run_case::<All>(&AllConfig { cpus: 2 }, seed, &ops, &options);
        kinds.insert(report.violation.map_or("passed".to_string(), |(_, found)| found.kind.to_string()));
    }
    assert!(kinds.len() >= 4, "the cases ended only as {kinds:?}");
}
