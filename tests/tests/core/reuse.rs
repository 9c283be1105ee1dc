//! A campaign's world kept between its cases (`Sim::renew`): every subsystem's cases, under
//! every named preset (the old kernels' bugs among them, so cases fail by lockdep, invariants
//! and mismatches too), report in the kept world what they report in new worlds
//! (`check::reuse_agrees`: the violation and where, the trace hash, kept events, task names,
//! lockdep's reports and the coverage).

use sim_core::check::{self, Catalog, RunOptions, CHECK_ALL_EVERY};
use sim_core::trace::TraceMode;

/// `seeds` seeds of `S` under each preset and the default, lists of up to `ops_max`
/// operations, hashed only (a campaign's cases) and with the trace's tail kept (a replay's).
fn assert_reuse_agrees<S: Catalog>(seeds: u64, ops_max: usize) {
    let mut kernels: Vec<Option<String>> = S::presets().into_iter().map(|preset| Some(preset.name)).collect();
    kernels.push(None);
    let runs =
        [RunOptions { check_every: CHECK_ALL_EVERY, trace: TraceMode::HashOnly }, RunOptions::default()];
    let mut failed = 0;
    for kernel in kernels {
        let config = S::config(kernel.as_deref(), &[]).expect("a named preset");
        for options in &runs {
            let agreed = check::reuse_agrees::<S>(&config, 0..seeds, ops_max, options)
                .unwrap_or_else(|text| panic!("{kernel:?}, {options:?}: {text}"));
            assert_eq!(
                agreed.reused,
                seeds - 1,
                "{} {kernel:?}: every case after the first reused its world",
                S::NAME
            );
            failed += agreed.failed;
        }
    }
    assert!(failed > 0, "{}: no case failed, so no failing case was compared", S::NAME);
}

#[test]
fn demo_cases_in_a_reused_world_report_what_new_worlds_do() {
    assert_reuse_agrees::<demo_sim::DemoSubject>(300, 100);
}

#[test]
fn taskstats_cases_in_a_reused_world_report_what_new_worlds_do() {
    assert_reuse_agrees::<taskstats_sim::TaskstatsSubject>(200, 100);
}

#[test]
fn mbcache_cases_in_a_reused_world_report_what_new_worlds_do() {
    assert_reuse_agrees::<mbcache_sim::MbcacheSubject>(200, 100);
}

#[test]
fn mbcache2_cases_in_a_reused_world_report_what_new_worlds_do() {
    assert_reuse_agrees::<mbcache_sim::Mbcache2Subject>(200, 100);
}

#[test]
fn balloon_cases_in_a_reused_world_report_what_new_worlds_do() {
    assert_reuse_agrees::<balloon_sim::BalloonSubject>(40, 100);
}
