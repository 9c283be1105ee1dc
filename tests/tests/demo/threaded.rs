//! The demo under threaded campaigns: the fixed cache stays quiet on three threads, each bug is
//! found with its fix off without a scenario written for it, a failure replays exactly from its
//! artifact, and a seed gives the same schedule and trace every time.

use std::sync::atomic::AtomicBool;

use demo_sim::{DemoConfig, DemoSubject, Fixes, LRU_LOCK_ORDER, PRESET_NEW, SHRINK_SKIPS_USED};
use sim_core::check::CampaignOptions;
use sim_core::threaded::{self, ThreadedOptions};
use sim_core::ViolationKind;

fn config(fixes: Fixes) -> DemoConfig {
    DemoConfig::new(PRESET_NEW, fixes)
}

fn campaign(fixes: Fixes, cases: u64) -> sim_core::check::CampaignReport {
    let options = CampaignOptions { shrink_steps: 200, ..CampaignOptions::cases(cases) };
    threaded::campaign::<DemoSubject>(
        &config(fixes),
        &options,
        &ThreadedOptions::new(3),
        &AtomicBool::new(false),
        &mut |_| {},
    )
    .expect("campaign runs")
}

#[test]
fn the_fixed_demo_passes_threaded_cases_and_reaches_its_states() {
    let report = campaign(Fixes::all(), 40);
    assert!(report.failures.is_empty(), "{:#?}", report.failures.first().map(|f| &f.artifact));
    assert_eq!(report.progress.cases, 40);
    for mark in ["put", "get-missing", "insert-exists"] {
        assert!(report.coverage.contains_key(mark), "{mark} not reached: {:?}", report.coverage);
    }
}

#[test]
fn the_abba_order_is_found_on_threads_and_replays_exactly() {
    let report = campaign(Fixes::all().without(LRU_LOCK_ORDER), 200);
    let failure = report.failures.first().expect("found with lru-lock-order off");
    let artifact = &failure.artifact;
    assert!(
        [ViolationKind::lockdep("circular-locking"), ViolationKind::Hang].contains(&artifact.violation.kind),
        "{}",
        artifact.violation
    );
    assert!(threaded::is_threaded(artifact));
    let replay = threaded::replay::<DemoSubject>(artifact).expect("replays");
    assert!(replay.exact, "replay found {:?}", replay.execution.violation);
}

#[test]
fn use_after_shrink_is_found_on_threads() {
    let report = campaign(Fixes::all().without(SHRINK_SKIPS_USED), 200);
    let failure = report.failures.first().expect("found with shrink-skips-used off");
    let kind = &failure.artifact.violation.kind;
    assert!(
        [
            ViolationKind::UseAfterFree,
            ViolationKind::Mismatch,
            ViolationKind::invariant("demo-used-matches-handles")
        ]
        .contains(kind),
        "{}",
        failure.artifact.violation
    );
}

#[test]
fn a_seed_gives_the_same_case_schedule_and_trace_every_time() {
    let options = ThreadedOptions::new(3);
    let config = config(Fixes::all());
    for seed in 0..50 {
        let case = threaded::generate::<DemoSubject>(&config, seed, &options);
        assert_eq!(case, threaded::generate::<DemoSubject>(&config, seed, &options));
        let first = threaded::run_case::<DemoSubject>(&config, seed, &case, &options);
        let second = threaded::run_case::<DemoSubject>(&config, seed, &case, &options);
        let (first, second) = (first.last.expect("ran"), second.last.expect("ran"));
        assert_eq!(first.schedule, second.schedule, "seed {seed}");
        assert_eq!(first.trace_hash, second.trace_hash, "seed {seed}");
    }
}
