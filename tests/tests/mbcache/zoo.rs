//! The mbcache bug zoo: each historical bug is found with its fix off and stays quiet with it on,
//! for the same budget.

use mbcache_sim::check::MbcacheSubject;
use sim_core::check::{self, Catalog, ZooEntry};

fn entry(name: &str) -> ZooEntry {
    MbcacheSubject::zoo().into_iter().find(|e| e.name == name).expect("zoo entry")
}

fn hunt(entry: &ZooEntry, fix_off: bool) -> Option<check::Failure> {
    let fixes_off = if fix_off { vec![entry.fix.to_string()] } else { vec![] };
    let config = MbcacheSubject::config(Some(entry.preset), &fixes_off).expect("catalog config");
    check::find_failure::<MbcacheSubject>(&config, 0, entry.cases_max, entry.ops_max)
}

fn found_with_fix_off_and_quiet_with_fix_on(name: &str) {
    let entry = entry(name);
    let failure = hunt(&entry, true).unwrap_or_else(|| {
        panic!(
            "{name}: with {} off, {} cases of {} ops found nothing",
            entry.fix, entry.cases_max, entry.ops_max
        )
    });
    let artifact = &failure.artifact;
    let ops = serde_json::to_string(&artifact.ops).unwrap_or_default();
    assert!(
        entry.accepts(&artifact.violation.kind),
        "{name}: seed {} found {} instead; ops {ops}; replay: {}",
        artifact.seed,
        artifact.violation,
        artifact.replay
    );
    println!(
        "{name}: found after {} cases, seed {}, {} ops (shrunk from {}): {}\nops: {ops}\nreplay: {}",
        failure.cases_to_find,
        artifact.seed,
        artifact.ops.as_array().map_or(0, Vec::len),
        artifact.ops_unshrunk,
        artifact.violation,
        artifact.replay
    );
    if let Some(quiet) = hunt(&entry, false) {
        panic!(
            "{name}: with {} on, seed {} still fails: {}",
            entry.fix, quiet.artifact.seed, quiet.artifact.violation
        );
    }
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
    assert!(error.contains("linux-2.6.10") && error.contains("linux-2.6.18"), "{error}");
    let error = MbcacheSubject::config(None, &["no-such-fix".into()]).expect_err("unknown fix");
    assert!(error.contains("entry-count-after-alloc") && error.contains("exclusive-get"), "{error}");
    let seed = MbcacheSubject::config(Some("linux-2.6.10"), &[]).expect("seed preset");
    assert!(!seed.fixes.entry_count_after_alloc && !seed.fixes.exclusive_get);
}

#[test]
fn every_scenario_runs_and_the_teaching_one_shows_the_oops() {
    for scenario in MbcacheSubject::scenarios() {
        let sim = MbcacheSubject::run_scenario(scenario.name).expect("listed scenario runs");
        assert!(!sim.trace().is_empty(), "{}: empty trace", scenario.name);
    }
    let sim = MbcacheSubject::run_scenario("find-next-after-free").expect("scenario");
    let kinds: Vec<String> = sim.violations().into_iter().map(|v| v.kind).collect();
    assert_eq!(kinds, ["list-poison"], "the scenario's only finding is the oops");
    let sim = MbcacheSubject::run_scenario("shrinker-lru").expect("scenario");
    assert!(sim.violations().is_empty(), "{:?}", sim.violations());
    assert!(MbcacheSubject::run_scenario("no-such-scenario").is_none());
}
