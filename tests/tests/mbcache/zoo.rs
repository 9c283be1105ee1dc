//! The mbcache bug zoo: each historical bug is found with its fix off and stays quiet with it on,
//! for the same budget.

use mbcache_sim::MbcacheSubject;
use sim_core::check::Catalog;
use sim_core::zoo::assert_found_and_fixed;

fn found_with_fix_off_and_quiet_with_fix_on(name: &str) {
    assert_found_and_fixed::<MbcacheSubject>(name);
}

#[test]
fn entry_count_leak_on_failed_alloc_is_found_without_the_fix_and_quiet_with_it() {
    found_with_fix_off_and_quiet_with_fix_on("entry-count-leak-on-failed-alloc");
}

#[test]
fn find_next_after_free_is_found_without_exclusive_get_and_quiet_with_it() {
    found_with_fix_off_and_quiet_with_fix_on("find-next-after-free");
}

#[test]
fn catalog_rejects_unknown_names_with_the_valid_ones() {
    let error = MbcacheSubject::config(Some("linux-9.9"), &[]).expect_err("unknown preset");
    assert!(error.contains("linux-2.6.10") && error.contains("linux-2.6.11"), "{error}");
    let error = MbcacheSubject::config(None, &["no-such-fix".into()]).expect_err("unknown fix");
    assert!(error.contains("entry-count-after-alloc") && error.contains("exclusive-get"), "{error}");
    let error = MbcacheSubject::config(Some("2.6.18"), &[]).expect_err("beyond the modelled range");
    assert!(error.contains("outside the modelled range 2.6.0 to 2.6.11"), "{error}");
    let between = MbcacheSubject::config(Some("2.6.5"), &[]).expect("a version inside the range");
    assert!(!between.fixes.on(mbcache_sim::EXCLUSIVE_GET), "2.6.5 predates the 2.6.11-rc2 race fix");
    let seed = MbcacheSubject::config(Some("linux-2.6.10"), &[]).expect("seed preset");
    assert!(
        !seed.fixes.on(mbcache_sim::ENTRY_COUNT_AFTER_ALLOC) && !seed.fixes.on(mbcache_sim::EXCLUSIVE_GET)
    );
}

#[test]
fn every_scenario_runs_and_the_teaching_one_shows_the_oops() {
    for scenario in MbcacheSubject::scenarios() {
        let sim = MbcacheSubject::run_scenario(scenario.name).expect("listed scenario runs");
        assert!(!sim.trace().is_empty(), "{}: empty trace", scenario.name);
    }
    let sim = MbcacheSubject::run_scenario("find-next-after-free").expect("scenario");
    let kinds: Vec<String> = sim.violations().into_iter().map(|v| v.kind.to_string()).collect();
    assert_eq!(kinds, ["list-poison"], "the scenario's only finding is the oops");
    let sim = MbcacheSubject::run_scenario("shrinker-lru").expect("scenario");
    assert!(sim.violations().is_empty(), "{:?}", sim.violations());
    assert!(MbcacheSubject::run_scenario("no-such-scenario").is_none());
}
