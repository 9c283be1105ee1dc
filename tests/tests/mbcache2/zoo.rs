//! The mbcache2 zoo: each bug found with its fix off, as a kind its row lists, and quiet with the
//! fix on (`sim_core::zoo`, the routine `ksim zoo` uses).

use mbcache_sim::{Mbcache2Op, Mbcache2Subject};
use mbcache_sim::{
    ZOO_CHAIN_WALK, ZOO_LIST_LOCK_NESTING, ZOO_LOST_FLAG, ZOO_REFERENCED, ZOO_REUSE_RELEASE, ZOO_SHRINK_WORK,
};
use sim_core::zoo::{assert_found_and_fixed, ZooOutcome};

/// Each failure's shrunk operations.
fn shrunk_cases(outcome: &ZooOutcome) -> Vec<Vec<Mbcache2Op>> {
    outcome
        .found()
        .map(|failure| {
            let artifact = &failure.artifact;
            let ops: Vec<Mbcache2Op> =
                serde_json::from_value(artifact.ops.clone()).expect("mbcache2 operations");
            assert!(ops.len() <= artifact.ops_unshrunk, "shrinking lengthened the case");
            ops
        })
        .collect()
}

#[test]
fn the_e_referenced_bug_is_found_and_fixed() {
    let outcome = assert_found_and_fixed::<Mbcache2Subject>(ZOO_REFERENCED);
    for ops in shrunk_cases(&outcome) {
        assert!(ops.iter().any(|op| matches!(op, Mbcache2Op::Shrink { .. })), "{ops:?}");
    }
}

#[test]
fn the_lost_flag_update_is_found_and_fixed() {
    assert_found_and_fixed::<Mbcache2Subject>(ZOO_LOST_FLAG);
}

#[test]
fn the_reuse_vs_release_race_is_found_with_two_tasks_and_fixed() {
    let outcome = assert_found_and_fixed::<Mbcache2Subject>(ZOO_REUSE_RELEASE);
    for ops in shrunk_cases(&outcome) {
        // One task finds the block's entry; another drops the block's last reference while it
        // is held. The finder's reuse then touches a freed block (the finding), or the releaser,
        // which the fixed kernel makes wait, carries on (a mismatch).
        let finder = ops.iter().find_map(|op| match op {
            Mbcache2Op::XattrFind { task, .. } => Some(*task),
            _ => None,
        });
        let releaser = ops.iter().find_map(|op| match op {
            Mbcache2Op::XattrRelease { task, .. } => Some(*task),
            _ => None,
        });
        assert!(finder.is_some() && releaser.is_some() && finder != releaser, "{ops:?}");
    }
}

#[test]
fn the_shrink_work_on_a_destroyed_cache_is_found_and_fixed() {
    assert_found_and_fixed::<Mbcache2Subject>(ZOO_SHRINK_WORK);
}

#[test]
fn the_list_lock_nested_under_a_bit_lock_is_found_and_fixed() {
    assert_found_and_fixed::<Mbcache2Subject>(ZOO_LIST_LOCK_NESTING);
}

#[test]
fn scripted_six_point_zero_takes_c_list_lock_under_the_bit_lock_and_six_point_one_does_not() {
    // One new block is one mb_cache_entry_create(): 6.0 (one cache reference, create not holding
    // its own) nests the LRU add under the bucket's bit lock; 6.1's reference makes it needless.
    let ops = [Mbcache2Op::XattrNew { task: 0, fs: 0, key: 1 }];
    let found = scripted(mbcache_sim::CREATE_HOLDS_REF, true, &ops);
    assert_eq!(found, Some(sim_core::ViolationKind::lockdep("sleep-in-atomic")));
    assert_eq!(scripted(mbcache_sim::CREATE_HOLDS_REF, false, &ops), None);
}

#[test]
fn the_unbounded_chain_walk_is_found_and_fixed() {
    assert_found_and_fixed::<Mbcache2Subject>(ZOO_CHAIN_WALK);
}

/// Runs `ops` on the newest kernel with `fix` off (or on), returning the first violation's kind.
fn scripted(fix: sim_core::fixes::FixId, off: bool, ops: &[Mbcache2Op]) -> Option<sim_core::ViolationKind> {
    let fixes = mbcache_sim::Mbcache2FixSet::all();
    let fixes = if off { fixes.without(fix) } else { fixes };
    let config = mbcache_sim::Mbcache2Config::new(mbcache_sim::PRESET_7_1, fixes);
    let report = sim_core::check::run_case::<Mbcache2Subject>(&config, 0, ops, &Default::default());
    report.violation.map(|(_, violation)| violation.kind)
}

#[test]
fn scripted_the_reuser_takes_journal_access_to_the_block_the_releaser_freed() {
    // task-A creates a block; task-B finds it; task-A drops its last reference; task-B reuses.
    let ops = [
        Mbcache2Op::XattrNew { task: 0, fs: 0, key: 1 },
        Mbcache2Op::XattrFind { task: 1, fs: 0, key: 1 },
        Mbcache2Op::XattrRelease { task: 0, fs: 0, block: 0 },
        Mbcache2Op::XattrReuse { task: 1, index: 0 },
    ];
    let found = scripted(mbcache_sim::DELETE_OR_GET, true, &ops);
    assert_eq!(found, Some(sim_core::ViolationKind::finding("ext4-xattr-reuse-of-freed-block")));
    assert_eq!(scripted(mbcache_sim::DELETE_OR_GET, false, &ops), None, "the release waits for the reuse");
}

#[test]
fn scripted_an_unlimited_cache_walks_ever_longer_chains_under_one_bit_lock() {
    // Keys 0, 1 and 3 share a chain (two buckets); 80 blocks, never shrunk. The fixed kernel keeps
    // the cache near twice c_max_entries (64) and never walks past the bound; without the limit,
    // the 76th insert's duplicate check walks 75 nodes.
    let ops: Vec<Mbcache2Op> = (0..80u8)
        .map(|i| Mbcache2Op::XattrNew { task: i % 3, fs: 0, key: [0, 1, 3][usize::from(i % 3)] })
        .collect();
    let found = scripted(mbcache_sim::LIMIT_CACHE_SIZE, true, &ops);
    assert_eq!(found, Some(sim_core::ViolationKind::finding("mbcache2-chain-walk-unbounded")));
    assert_eq!(scripted(mbcache_sim::LIMIT_CACHE_SIZE, false, &ops), None);
}
