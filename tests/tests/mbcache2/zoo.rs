//! The mbcache2 zoo: each bug found with its fix off, as a kind its row lists, and quiet with the
//! fix on (`sim_core::zoo`, the routine `ksim zoo` uses).

use mbcache_sim::{Mbcache2Op, Mbcache2Subject};
use mbcache_sim::{ZOO_CHAIN_WALK, ZOO_LOST_FLAG, ZOO_REFERENCED, ZOO_REUSE_RELEASE, ZOO_SHRINK_WORK};
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
fn the_unbounded_chain_walk_is_found_and_fixed() {
    assert_found_and_fixed::<Mbcache2Subject>(ZOO_CHAIN_WALK);
}
