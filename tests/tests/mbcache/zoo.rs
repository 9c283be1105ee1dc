//! The mbcache bug zoo: each historical bug is found with its fix off and stays quiet with it on,
//! for the same budget.

use std::collections::BTreeSet;
use std::sync::atomic::AtomicBool;

use mbcache_sim::{MbcacheConfig, MbcacheSubject, Op, FIX_EXCLUSIVE_GET, PRESET_LATER};
use sim_core::check::{campaign, CampaignOptions, Catalog};
use sim_core::zoo::assert_found_and_fixed;

fn found_with_fix_off_and_quiet_with_fix_on(name: &str) -> sim_core::zoo::ZooOutcome {
    assert_found_and_fixed::<MbcacheSubject>(name)
}

#[test]
fn entry_count_leak_on_failed_alloc_is_found_without_the_fix_and_quiet_with_it() {
    found_with_fix_off_and_quiet_with_fix_on("entry-count-leak-on-failed-alloc");
}

/// The shrunk witness is the race itself: one task holds an entry from a find (an API walk, or
/// ext2's setxattr about to share the block), another disposes of the block in between, so the
/// shrunk operations name two tasks.
#[test]
fn find_next_after_free_is_found_without_exclusive_get_and_quiet_with_it() {
    let outcome = found_with_fix_off_and_quiet_with_fix_on("find-next-after-free");
    for failure in outcome.found() {
        let artifact = &failure.artifact;
        let ops: Vec<Op> = serde_json::from_value(artifact.ops.clone()).expect("mbcache ops");
        let config: MbcacheConfig = serde_json::from_value(artifact.config.clone()).expect("config");
        let tasks: BTreeSet<u32> =
            ops.iter().filter_map(Op::task).map(|t| u32::from(t) % config.tasks).collect();
        assert_eq!(tasks.len(), 2, "the shrunk race names two tasks: {ops:?} (replay: {})", artifact.replay);
    }
}

/// With one task the seed kernel never oopses in find_next: the only way one task reaches the
/// poisoned link is by unhashing an entry it walks itself, which the subject refuses as misuse.
/// Reported instead, that misuse is found, under its own name.
#[test]
fn one_task_cannot_race_itself_and_its_misuse_is_reported_apart() {
    // 2.6.35 without the exclusive get: the race is possible, the other bugs are not.
    let racy = MbcacheSubject::config(Some(PRESET_LATER), &[FIX_EXCLUSIVE_GET.to_string()]).expect("config");
    let single = MbcacheConfig { tasks: 1, ..racy };
    let options = CampaignOptions { ops_max: 80, ..CampaignOptions::cases(600) };
    let report = campaign::<MbcacheSubject>(&single, &options, &AtomicBool::new(false), &mut |_| {})
        .expect("campaign");
    for failure in &report.failures {
        let kind = failure.artifact.violation.kind.to_string();
        assert!(kind != "list-poison" && kind != "wild-pointer", "one task raced itself: {kind}");
    }
    assert!(
        report.coverage.contains_key("api misuse: a task unhashes an entry it walks"),
        "{:?}",
        report.coverage
    );
    let reported = MbcacheConfig { misuse_reported: true, ..single };
    let report = campaign::<MbcacheSubject>(&reported, &options, &AtomicBool::new(false), &mut |_| {})
        .expect("campaign");
    let failure = report.failures.first().expect("misuse reported within 600 cases");
    assert_eq!(failure.artifact.violation.kind.to_string(), "api-misuse", "{}", failure.artifact.replay);
}

#[test]
fn gfp_kernel_alloc_under_xattr_sem_is_found_by_lockdep_without_the_fix_and_quiet_with_it() {
    let outcome = found_with_fix_off_and_quiet_with_fix_on("gfp-kernel-alloc-under-xattr-sem");
    for failure in outcome.found() {
        let text = failure.artifact.violation.to_string();
        assert!(text.contains("xattr_sem") && text.contains("fs_reclaim"), "{text}");
    }
}

#[test]
fn catalog_rejects_unknown_names_with_the_valid_ones() {
    let error = MbcacheSubject::config(Some("linux-9.9"), &[]).expect_err("unknown preset");
    assert!(error.contains("linux-2.6.10") && error.contains("linux-2.6.11"), "{error}");
    let error = MbcacheSubject::config(None, &["no-such-fix".into()]).expect_err("unknown fix");
    assert!(error.contains("entry-count-after-alloc") && error.contains("exclusive-get"), "{error}");
    let error = MbcacheSubject::config(Some("2.6.36"), &[]).expect_err("beyond the modelled range");
    assert!(error.contains("outside the modelled range 2.6.0 to 2.6.35"), "{error}");
    // 2.6.18 lies inside the range: the race fixed, takeout gone, the shrinker scaled, and still
    // the GFP_KERNEL entry allocation under xattr_sem.
    let v2618 = MbcacheSubject::config(Some("2.6.18"), &[]).expect("2.6.18");
    assert!(
        v2618.fixes.on(mbcache_sim::EXCLUSIVE_GET)
            && v2618.fixes.on(mbcache_sim::SHRINKER_VFS_CACHE_PRESSURE)
    );
    assert!(!v2618.fixes.on(mbcache_sim::ALLOC_GFP_NOFS));
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
