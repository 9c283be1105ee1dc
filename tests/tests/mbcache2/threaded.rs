//! mbcache2 under threaded campaigns: the fixed kernel's whole calls stay linearizable on three
//! threads and reach the wait for a reuser; the reuse-vs-release race and the lost `e_flags`
//! update are found with their fixes off, without a scenario written for either; a failure
//! replays exactly from its artifact.

use std::sync::atomic::AtomicBool;

use mbcache_sim::{
    Mbcache2Config, Mbcache2FixSet, Mbcache2Op as Op, Mbcache2Subject, ATOMIC_ENTRY_FLAGS,
    CANCEL_SHRINK_WORK, CREATE_HOLDS_REF, DELETE_OR_GET, PRESET_7_1,
};
use sim_core::check::{CampaignOptions, CampaignReport};
use sim_core::threaded::{self, SchedulerChoice, ThreadedCase, ThreadedOptions, ThreadedReport};
use sim_core::ViolationKind;

/// `cases` threaded cases from case seed `seed` on the newest kernel with `fixes`.
fn campaign(fixes: Mbcache2FixSet, seed: u64, cases: u64, shrink_steps: usize) -> CampaignReport {
    let options = CampaignOptions { seed, shrink_steps, ..CampaignOptions::cases(cases) };
    threaded::campaign::<Mbcache2Subject>(
        &Mbcache2Config::new(PRESET_7_1, fixes),
        &options,
        &ThreadedOptions::new(3),
        &AtomicBool::new(false),
        &mut |_| {},
    )
    .expect("campaign runs")
}

#[test]
fn the_fixed_kernel_is_linearizable_on_threads_and_a_release_waits_for_a_reuser() {
    let report = campaign(Mbcache2FixSet::all(), 0, 60, 0);
    assert!(report.failures.is_empty(), "{:#?}", report.failures.first().map(|f| &f.artifact));
    let marks =
        ["xattr-reused", "xattr-block-freed", "delete-or-get-deleted", "xattr-block-full", "wait-unused"];
    for mark in marks {
        assert!(report.coverage.contains_key(mark), "{mark} not reached: {:?}", report.coverage);
    }
}

#[test]
fn a_lazy_unmount_waits_for_the_running_shrink_work_and_the_fixed_kernel_stays_quiet() {
    // 7.1's mb_cache_destroy() cancels the shrink work, and cancel_work_sync() waits for a kworker
    // running it (6 of the 150 cases from seed 0 reach that wait).
    let report = campaign(Mbcache2FixSet::all(), 0, 150, 0);
    assert!(report.failures.is_empty(), "{:#?}", report.failures.first().map(|f| &f.artifact));
    for mark in ["cancel-work-waited", "destroy-cancelled-work", "shrink-work-ran"] {
        assert!(report.coverage.contains_key(mark), "{mark} not reached: {:?}", report.coverage);
    }
}

/// The zoo's shrink-work case as session 12 found it missed (case seed 4294967299, shrunk): a
/// kworker runs the shrink work the prefill queued while another thread unmounts.
const WORK_VS_UMOUNT: &str = r#"{"prefix": [], "threads": [["RunWork"], [{"Umount": {"fs": 0}}]]}"#;

/// [`WORK_VS_UMOUNT`] once with `fixes`, under `scheduler` seeded with `seed`.
fn work_vs_umount(fixes: Mbcache2FixSet, scheduler: SchedulerChoice, seed: u64) -> ThreadedReport {
    let mut case: serde_json::Value = serde_json::from_str(WORK_VS_UMOUNT).expect("case");
    case["scheduler"] = serde_json::to_value(scheduler).expect("scheduler");
    let case: ThreadedCase<Op> = serde_json::from_value(case).expect("case");
    let options = ThreadedOptions { steps_max: 20_000, executions: 1, ..ThreadedOptions::new(3) };
    threaded::run_case::<Mbcache2Subject>(&Mbcache2Config::new(PRESET_7_1, fixes), seed, &case, &options)
}

/// The schedules the shrink-work tests try, in order: 200 seeds of each scheduler.
fn schedules() -> impl Iterator<Item = (SchedulerChoice, u64)> {
    (0..200u64).flat_map(|seed| {
        [SchedulerChoice::Random, SchedulerChoice::Pct { depth: 3 }, SchedulerChoice::Bursts]
            .into_iter()
            .map(move |scheduler| (scheduler, seed))
    })
}

#[test]
fn a_destroy_under_the_running_shrink_work_is_a_use_after_free_on_threads() {
    // 1. The prefill puts the cache past c_max_entries: the shrink work is queued.
    // 2. A kworker takes the item, scans, evicts the LRU's head and drops c_list_lock to free it.
    // 3. The lazy unmount's mb_cache_destroy(), before d227786ab111 with no cancel_work_sync(),
    //    empties the LRU and frees the cache.
    // 4. The kworker takes c_list_lock again: in the freed cache.
    // Symptom: a use after free (the mark says it was the running scan's, not a queued item's).
    // Fix: "fs/mbcache: cancel shrink work before destroying the cache" (d227786ab111).
    let broken = Mbcache2FixSet::all().without(CANCEL_SHRINK_WORK);
    let found = schedules().find_map(|(scheduler, seed)| {
        let report = work_vs_umount(broken, scheduler.clone(), seed);
        let hit = report.coverage.contains("shrink-work-cache-freed-under-it")
            && report.violation().is_some_and(|found| found.kind == ViolationKind::UseAfterFree);
        hit.then_some((scheduler, seed))
    });
    let (scheduler, seed) = found.expect(
        "no schedule of the first 200 seeds frees the cache under a running scan as a use after free; \
         replay: cargo test -p ksim-tests --test main -- mbcache2::threaded::a_destroy_under",
    );
    // The fixed kernel's destroy waits for that run, on the same schedule and on every other.
    let fixed = work_vs_umount(Mbcache2FixSet::all(), scheduler.clone(), seed);
    assert_eq!(fixed.violation(), None, "fixed, {scheduler:?} seed {seed}");
    let mut waited = 0;
    for (scheduler, seed) in schedules().take(60) {
        let report = work_vs_umount(Mbcache2FixSet::all(), scheduler.clone(), seed);
        assert_eq!(
            report.violation(),
            None,
            "fixed, {scheduler:?} seed {seed}; replay: cargo test -p ksim-tests --test main -- mbcache2::threaded::a_destroy_under"
        );
        waited += usize::from(report.coverage.contains("cancel-work-waited"));
    }
    assert!(waited > 0, "no schedule of the fixed kernel's first 60 schedules waited for the running work");
}

#[test]
fn the_reuse_vs_release_race_is_found_on_threads_and_replays_exactly() {
    // A campaign from case seed 356 finds it in its first case (with the shrinker, the shrink
    // work and a rare lazy unmount overlapping the calls on a prefilled cache, 2 of the zoo's
    // first 3 seed ranges find it within 400 cases).
    let report = campaign(Mbcache2FixSet::all().without(DELETE_OR_GET), 356, 60, 40);
    let failure = report.failures.first().expect("found with delete-or-get off");
    let artifact = &failure.artifact;
    assert_eq!(
        artifact.violation.kind,
        ViolationKind::finding("ext4-xattr-reuse-of-freed-block"),
        "{}",
        artifact.violation
    );
    let replay = threaded::replay::<Mbcache2Subject>(artifact).expect("replays");
    assert!(replay.exact, "replay found {:?}", replay.execution.violation);
}

#[test]
fn the_lost_flag_update_is_found_on_threads() {
    let report = campaign(Mbcache2FixSet::all().without(ATOMIC_ENTRY_FLAGS), 0, 40, 0);
    let failure = report.failures.first().expect("found with atomic-entry-flags off");
    assert_eq!(
        failure.artifact.violation.kind,
        ViolationKind::lockdep("lockset-race"),
        "{}",
        failure.artifact.violation
    );
}

#[test]
fn the_list_lock_nested_under_a_bit_lock_is_found_on_threads() {
    // Every new block's insert nests it on 6.0, so the first case with one finds it.
    let report = campaign(Mbcache2FixSet::all().without(CREATE_HOLDS_REF), 0, 5, 0);
    let failure = report.failures.first().expect("found with create-holds-ref off");
    assert_eq!(failure.artifact.violation.kind, ViolationKind::lockdep("sleep-in-atomic"));
}

#[test]
fn the_teaching_scenarios_tell_their_stories() {
    use sim_core::check::Catalog;
    let kinds = |name: &str| -> Vec<ViolationKind> {
        let sim = Mbcache2Subject::run_scenario(name).unwrap_or_else(|| panic!("no scenario {name}"));
        sim.violations().into_iter().map(|v| v.kind).collect()
    };
    assert_eq!(kinds("reuse-vs-release"), [ViolationKind::finding("ext4-xattr-reuse-of-freed-block")]);
    assert!(kinds("release-waits-for-reuser").is_empty());
    assert_eq!(kinds("shrink-work-vs-destroy"), [ViolationKind::UseAfterFree]);
    let names: Vec<&str> = Mbcache2Subject::scenarios().iter().map(|s| s.name).collect();
    assert_eq!(names, ["reuse-vs-release", "release-waits-for-reuser", "shrink-work-vs-destroy"]);
}

/// The configuration `ksim fuzz mbcache2 --threads 3` ran the case below with.
const SEED_7004638_CONFIG: &str = r#"{"blocks": 128, "bucket_bits": 1, "filesystems": 1, "fixes": ["limit-cache-size", "reusable-flag", "e-referenced-to-tail", "dont-reclaim-used", "delete-or-get", "atomic-entry-flags", "cancel-shrink-work", "auto-delete-on-free", "create-holds-ref"], "held_max": 3, "keys": 4, "prefill": 0, "preset": "linux-7.1", "refcount_max": 3, "tasks": 3, "whole_calls": false}"#;

/// The case a `--threads 3 --seconds 240 --seed 7000000` campaign found at seed 7004638 once the
/// seed-7003753 window (`reference_windows.rs`) was declared, shrunk to 6 operations, with its recorded schedule: thread
/// 1's insert calls `schedule_work()` first (the prefill's item still pending: merged), thread
/// 0's kworker takes that item and scans, thread 0's find of key 1 sees nothing, then thread 1's
/// insert puts its key-1 entry in, and thread 1's kworker finds nothing queued. The insert is
/// ordered after the find (which missed it), where the reference once had it queue the work.
const SEED_7004638: &str = r#"{
  "prefix": [{"Shrink": {"fs": 0, "nr": 8, "task": 1}}],
  "threads": [
    [{"XattrNew": {"fs": 0, "key": 3, "task": 1}}, "RunWork", {"XattrFind": {"fs": 0, "key": 1, "task": 1}}],
    [{"XattrNew": {"fs": 0, "key": 1, "task": 2}}, "RunWork"]
  ],
  "scheduler": {"Replay": {"schedule": "0000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000112111111111111122222222212211111111111111111111111111111111111111111111111111111111111111122222222222222222222222220000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000"}}
}"#;

/// The seed-7004638 case on its recorded schedule: the last kworker's empty run passes.
#[test]
fn an_insert_that_scheduled_the_work_before_a_kworker_took_it_queues_nothing_after() {
    let replay = "replay: cargo test -p ksim-tests --test main -- mbcache2::threaded::an_insert_that; \
                  ksim fuzz mbcache2 --threads 3 --seed 7004638 --cases 1 found it";
    let config: Mbcache2Config = serde_json::from_str(SEED_7004638_CONFIG).expect("config");
    let case: ThreadedCase<Op> = serde_json::from_str(SEED_7004638).expect("case");
    let options = ThreadedOptions { steps_max: 20_000, ..ThreadedOptions::new(3) };
    let report = threaded::run_case::<Mbcache2Subject>(&config, 7_004_638, &case, &options);
    assert_eq!(report.violation(), None, "{replay}");
    assert!(report.ops_run == 6, "the case ran {} of its 6 operations; {replay}", report.ops_run);
}
