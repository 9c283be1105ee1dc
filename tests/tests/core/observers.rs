//! Checkers stay out of the model's trace: a case's trace hash is the model's alone, however
//! often its invariants are checked in whole (each whole check makes observer contexts) and
//! however many observer contexts a checker makes between operations. Observers count their
//! context serials apart from the model's, so a model context's lock tokens (which the trace
//! hashes) never depend on them.

use balloon_sim::{BalloonConfig, BalloonSubject};
use demo_sim::{DemoConfig, DemoSubject, Fixes, PRESET_NEW};
use mbcache_sim::{Mbcache2Config, Mbcache2Subject, MbcacheConfig, MbcacheSubject};
use sim_core::check::{self, RunOptions, Subject};
use sim_core::lockdep::ReportMode;
use sim_core::trace::TraceMode;
use sim_core::{Sim, SimConfig, SpinLock};
use taskstats_sim::{TaskstatsConfig, TaskstatsSubject};

/// Check intervals compared: every operation, the interval before session 12, the default.
const INTERVALS: [usize; 3] = [1, 16, check::CHECK_ALL_EVERY];

/// Runs `seeds` cases of `S` (200 operations at most) once per interval in [`INTERVALS`] and
/// asserts the trace hashes agree; returns how many cases had more operations than the longest
/// interval (so a whole check was skipped somewhere), for the caller to assert the test reached
/// the state it claims.
fn same_hash_at_every_interval<S: Subject>(name: &str, config: &S::Config, seeds: u64) -> usize {
    let mut long = 0;
    for seed in 0..seeds {
        let ops = check::generate::<S>(config, seed, 200);
        let hashes: Vec<u64> = INTERVALS
            .iter()
            .map(|&check_every| {
                let options = RunOptions { check_every, trace: TraceMode::HashOnly };
                let report = check::run_case::<S>(config, seed, &ops, &options);
                assert!(report.passed(), "{name} seed {seed}: {:?}", report.violation);
                report.trace_hash
            })
            .collect();
        assert!(
            hashes.iter().all(|&hash| hash == hashes[0]),
            "{name} seed {seed}: trace hashes {hashes:x?} at check intervals {INTERVALS:?} \
             (replay: ksim fuzz {name} --seed {seed} --cases 1)"
        );
        long += usize::from(ops.len() > check::CHECK_ALL_EVERY);
    }
    long
}

#[test]
fn the_check_interval_does_not_move_the_trace_hash() {
    let long = [
        same_hash_at_every_interval::<TaskstatsSubject>(
            "taskstats",
            &TaskstatsConfig::contract("linux-3.8").fix_on("tgid-alloc-data-race"),
            6,
        ),
        same_hash_at_every_interval::<MbcacheSubject>(
            "mbcache",
            &MbcacheConfig::new(mbcache_sim::PRESET_FIXED, mbcache_sim::Fixes::all()),
            6,
        ),
        same_hash_at_every_interval::<Mbcache2Subject>("mbcache2", &Mbcache2Config::fixed(), 6),
        same_hash_at_every_interval::<DemoSubject>("demo", &DemoConfig::new(PRESET_NEW, Fixes::all()), 6),
        same_hash_at_every_interval::<BalloonSubject>(
            "balloon",
            &BalloonConfig::preset("fixed").expect("preset"),
            6,
        ),
    ];
    assert!(long.iter().all(|&n| n > 0), "some subject made no case past one check interval: {long:?}");
}

/// One model operation: a kworker and a named task take two locks in turn; with `observers`,
/// a checker makes that many observer contexts (each reading under the first lock) before it.
fn operation(sim: &Sim, locks: &[SpinLock<u32>; 2], round: u32, observers: u32) {
    for _ in 0..observers {
        let observer = sim.observer_cx("check", 0);
        drop(locks[0].lock(&observer));
    }
    let task = sim.cx("task", round % 2);
    let outer = locks[0].lock(&task);
    *locks[1].lock(&task) += round;
    drop(outer);
    let kworker = sim.cx("kworker", 1);
    drop(locks[1].lock(&kworker));
}

#[test]
fn observer_contexts_made_between_operations_do_not_move_the_trace_hash() {
    let run = |observers: fn(u32) -> u32| {
        let sim = Sim::new(SimConfig::new(3).lockdep(ReportMode::Collect).trace(TraceMode::Full));
        let locks = [SpinLock::new("outer_lock", 0), SpinLock::new("inner_lock", 0)];
        for round in 0..8 {
            operation(&sim, &locks, round, observers(round));
        }
        assert!(sim.violations().is_empty(), "{:?}", sim.violations());
        (sim.trace_hash(), sim.trace().events().len())
    };
    let none = run(|_| 0);
    assert_eq!(none, run(|round| round % 3), "an observer made between operations moved the trace");
    assert_eq!(none, run(|_| 2), "two observers per operation moved the trace");
    assert!(none.1 >= 8 * 6, "the model's lock events are traced: {} events", none.1);
}
