//! Threaded campaigns over every subsystem with a `ThreadedSubject`: each default preset stays
//! quiet on three threads (and reaches the states its op-level property test reaches), the
//! runtime dual backend made shuttle objects inside executions and parking_lot ones outside, and
//! a seed gives the same case, schedule and trace every time (1000 seeds, run twice).

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

#[test]
fn a_thousand_seeds_give_the_same_schedule_and_trace_twice() {
    let config = demo_sim::DemoSubject::config(None, &[]).expect("default preset");
    let options =
        ThreadedOptions { executions: 1, ops_per_thread: 4, prefix_max: 2, ..ThreadedOptions::new(3) };
    let mut preempted = 0;
    for seed in 0..1000 {
        let case = threaded::generate::<demo_sim::DemoSubject>(&config, seed, &options);
        let runs: Vec<_> = (0..2)
            .map(|_| {
                threaded::run_case::<demo_sim::DemoSubject>(&config, seed, &case, &options).last.expect("ran")
            })
            .collect();
        assert_eq!(runs[0].schedule, runs[1].schedule, "seed {seed}: schedules differ");
        assert_eq!(runs[0].trace_hash, runs[1].trace_hash, "seed {seed}: traces differ");
        preempted += usize::from(runs[0].schedule.preemptions > 0);
    }
    assert!(preempted > 500, "only {preempted} of 1000 schedules preempted a thread");
}
