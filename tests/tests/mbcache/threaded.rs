//! Threaded campaigns on the default (fixed) preset reach the sleeping paths of the 2.6.11 kernel
//! that the op-level simulation cannot (there a lookup of a busy entry returns WouldBlock): a
//! lookup asleep on `mb_cache_queue`, a find woken to an entry freed meanwhile (`-EAGAIN`), and
//! ext2's walk restarted after it; every outcome judged by linearizability, and none undecided.

use std::sync::atomic::AtomicBool;

use mbcache_sim::{MbcacheConfig, MbcacheSubject, Op};
use sim_core::check::{CampaignOptions, Catalog};
use sim_core::threaded::{self, ThreadedCase, ThreadedOptions, UNDECIDED_MARK};
use sim_core::trace::TraceMode;

#[test]
fn fixed_mbcache_threaded_reaches_the_sleeping_and_eagain_paths_and_stays_linearizable() {
    let config = MbcacheSubject::config(None, &[]).expect("default preset");
    let options = CampaignOptions { shrink_steps: 100, ..CampaignOptions::cases(100) };
    let report = threaded::campaign::<MbcacheSubject>(
        &config,
        &options,
        &ThreadedOptions::new(3),
        &AtomicBool::new(false),
        &mut |_| {},
    )
    .expect("campaign runs");
    if let Some(failure) = report.failures.first() {
        panic!(
            "mbcache threaded seed {}: {}\nreplay: ksim fuzz mbcache --threads 3 --seed {} --cases 1",
            failure.artifact.seed, failure.artifact.violation, failure.artifact.seed
        );
    }
    for mark in [
        "lookup slept on mb_cache_queue",
        "lookup waited for an entry that was freed meanwhile",
        "find returned EAGAIN for an entry freed while it waited",
        "xattr: cache_find retried after EAGAIN",
    ] {
        assert!(report.coverage.contains_key(mark), "never reached {mark:?}; reached {:?}", report.coverage);
    }
    assert!(!report.coverage.contains_key(UNDECIDED_MARK), "the linearizability search hit its bound");
}

/// The shrunk case of issue #11 (`ksim fuzz mbcache --threads 3 --seconds 240 --seed 7000000`,
/// seed 7032685), with its recorded schedule: thread 0's end releases entry 1, then thread 1's
/// get releases entry 2, then thread 2's `mb_cache_shrink_fn` takes both from the LRU head.
const ISSUE_11_CONFIG: &str = r#"{"alloc_fault_percent":10,"api_ops":true,"blocks":6,"bucket_bits_max":2,"caches_max":3,"devices":2,"fixes":["entry-count-after-alloc","exclusive-get","takeout-dup-removed","xattr-entry-before-buffer-lock","alloc-gfp-nofs","shrinker-vfs-cache-pressure"],"fs_blocks":8,"inodes":4,"keys":3,"misuse_reported":false,"preset":"linux-2.6.35","tasks":2,"threaded":false,"values":2,"xattr_ops":true}"#;
const ISSUE_11_CASE: &str = r#"{"prefix":[{"Create":{"bucket_bits":1,"free_op":false,"indexes":1,"undersized":false}}],"scheduler":{"Replay":{"schedule":"00000000000000000000000000000000000000000000000000001111112222222233033333300000000000000000000000000000000000000000000000"}},"threads":[[{"Alloc":{"cache":4,"task":1}},{"Insert":{"block":10,"device":7,"handle":7,"keys":[3,0]}}],[{"Alloc":{"cache":3,"task":0}},{"Insert":{"block":12,"device":1,"handle":7,"keys":[5,3]}},{"Get":{"block":9,"cache":3,"device":3,"task":2}}],[{"ShrinkFn":{"nofs":true,"nr_to_scan":3}}]]}"#;

#[test]
fn a_shrink_taking_a_finished_threads_entry_before_a_later_release_is_linearizable() {
    let config: MbcacheConfig = serde_json::from_str(ISSUE_11_CONFIG).expect("config");
    let case: ThreadedCase<Op> = serde_json::from_str(ISSUE_11_CASE).expect("case");
    let options = ThreadedOptions { trace: TraceMode::Full, steps_max: 20_000, ..ThreadedOptions::new(3) };
    let report = threaded::run_case::<MbcacheSubject>(&config, 7_032_685, &case, &options);
    let replay = "replay: ksim fuzz mbcache --threads 3 --seed 7032685 --cases 1 (the campaign's \
                  shrunk case is /work/notes/s8/artifacts/mbcache-threaded-seed7032685.ksim.json)";
    assert!(report.violation().is_none(), "{:?}\n{replay}", report.violation());
    let last = report.last.expect("an execution");
    assert_eq!(last.ops_run, 7, "the prefix's create and the 6 thread ops ran; {replay}");
    // The window itself: the shrink took entry 1 (released at thread 0's end, no op) ahead of
    // entry 2 (released by thread 1's get, an op that ended before the shrink began).
    let shrink =
        last.trace_tail.iter().map(|event| format!("{event:?}")).find(|e| e.contains("shrunk: [1, 2]"));
    assert!(shrink.is_some(), "the schedule no longer reaches the window; {replay}");
}
