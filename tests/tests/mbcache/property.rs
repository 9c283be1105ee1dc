//! The op-level simulation of fs/mbcache.c against its reference model, with handles held across
//! operations, several caches and devices, and entry allocations failing.

use mbcache_sim::MbcacheConfig;
use mbcache_sim::MbcacheSubject;
use mbcache_sim::{Fixes, PRESET_FIXED, PRESET_LATER, PRESET_SEED};
use sim_core::check::{self, RunOptions};

/// The states a run must reach for the property not to hold vacuously.
const MARKS_EXPECTED: &[&str] = &[
    "entry allocation failed",
    "entry freed by the shrinker",
    "entry freed by mb_cache_shrink",
    "entry freed through a handle",
    "find_next walked on",
    "find_next found another entry",
    "insert found the block hashed: EBUSY",
    "free callback failed: entry back on the lru",
    "last release of an unhashed entry frees it",
    "lookup would wait for a busy entry",
    "shrinker asked only to count",
    "get found an entry",
    "cache destroyed",
];

#[test]
fn fixed_mbcache_matches_its_reference_under_allocation_faults() {
    let config = MbcacheConfig { xattr_ops: false, ..MbcacheConfig::new(PRESET_FIXED, Fixes::all()) };
    let marks = check::assert_cases_pass::<MbcacheSubject>(&config, 0, 3000, 120);
    for mark in MARKS_EXPECTED {
        assert!(marks.contains(*mark), "never reached {mark:?}; reached {marks:?}");
    }
}

#[test]
fn fixed_mbcache_with_one_bucket_and_many_devices_matches_its_reference() {
    // One bucket per table: every entry shares a chain, the walks are long.
    let config = MbcacheConfig {
        bucket_bits_max: 0,
        devices: 4,
        blocks: 3,
        keys: 2,
        xattr_ops: false,
        ..MbcacheConfig::new(PRESET_FIXED, Fixes::all())
    };
    // 2000 seeds from 0: with the cheap generator (`op_gen`), about one range of 500 seeds in
    // four reaches a find_next that walks on to another entry in a one-bucket chain (of 0..10 000,
    // the ranges from 1500, 5000, 8000, 9000 and 9500 do); this range holds one of them.
    let marks = check::assert_cases_pass::<MbcacheSubject>(&config, 0, 2000, 150);
    assert!(marks.contains("find_next found another entry"), "{marks:?}");
}

/// The seed kernel passes its reference when neither of its bugs can be reached: no allocation
/// fails (so its early `c_entry_count` bump never leaks) and one task runs (so no other task can
/// free an entry between its find_first and find_next). Its own marks must still be reached.
#[test]
fn seed_mbcache_matches_its_reference_without_allocation_faults_and_with_one_task() {
    // The seed's third bug, GFP_KERNEL under xattr_sem, lives in the xattr ops: API ops only.
    let config = MbcacheConfig {
        alloc_fault_percent: 0,
        tasks: 1,
        xattr_ops: false,
        ..MbcacheConfig::new(PRESET_SEED, Fixes::none())
    };
    let marks = check::assert_cases_pass::<MbcacheSubject>(&config, 0, 1500, 120);
    for mark in [
        "entry taken out",
        "handle duplicated",
        "find_next found another entry",
        "entry freed through a handle",
    ] {
        assert!(marks.contains(mark), "never reached {mark:?}; reached {marks:?}");
    }
}

/// The ext2 xattr ops on the newest kernel, beside the API ops: blocks shared, freed and their
/// numbers handed out again, disposals that had to wait for a find handle, and lockdep quiet.
#[test]
fn newest_mbcache_with_ext2_xattr_sharing_passes_and_reaches_its_states() {
    let config = MbcacheConfig::new(PRESET_LATER, Fixes::all());
    let marks = check::assert_cases_pass::<MbcacheSubject>(&config, 0, 600, 120);
    for mark in [
        "xattr: cache_find handed out a block",
        "xattr: block shared",
        "xattr: last user frees the block",
        "xattr: a freed block number handed out again",
        "lookup would wait for a busy entry",
    ] {
        assert!(marks.contains(mark), "never reached {mark:?}; reached {marks:?}");
    }
}

#[test]
fn same_seed_gives_the_same_trace_twice() {
    let config = MbcacheConfig::new(PRESET_FIXED, Fixes::all());
    let ops = check::generate::<MbcacheSubject>(&config, 42, 200);
    let first = check::run_case::<MbcacheSubject>(&config, 42, &ops, &RunOptions::default());
    let second = check::run_case::<MbcacheSubject>(&config, 42, &ops, &RunOptions::default());
    assert!(first.passed(), "{:?}", first.violation);
    assert_eq!(first.trace_hash, second.trace_hash, "seed 42 ran differently twice");
    let other = check::run_case::<MbcacheSubject>(
        &config,
        43,
        &check::generate::<MbcacheSubject>(&config, 43, 200),
        &RunOptions::default(),
    );
    assert_ne!(first.trace_hash, other.trace_hash);
}

/// An edited artifact's ext2 size is refused with a line before the block table is made, and the
/// configs the catalog makes pass.
#[test]
fn a_config_asking_for_more_ext2_blocks_than_the_bound_is_refused() {
    use sim_core::check::Subject;
    let made = MbcacheConfig::new(PRESET_FIXED, Fixes::all());
    assert_eq!(MbcacheSubject::check_config(&made), Ok(()));
    let bound = MbcacheConfig { fs_blocks: mbcache_sim::FS_BLOCKS_MAX, ..made.clone() };
    assert_eq!(MbcacheSubject::check_config(&bound), Ok(()));
    let edited = MbcacheConfig { fs_blocks: u32::MAX, ..made };
    let refused = MbcacheSubject::check_config(&edited).expect_err("u32::MAX blocks refused");
    assert!(refused.contains("fs_blocks 4294967295"), "{refused}");
}
