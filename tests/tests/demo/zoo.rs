//! The demo bug zoo: each bug is found with its fix off, as one of the kinds its row lists, and
//! the same budget stays quiet with the fix on (`sim_core::zoo`, the routine `ksim zoo` uses).

use demo_sim::{DemoSubject, Op};
use sim_core::zoo::{assert_found_and_fixed, ZooOutcome};

/// The operation each failure was reported at, decoded from its artifact.
fn failing_ops(outcome: &ZooOutcome) -> Vec<Op> {
    outcome
        .found()
        .map(|failure| {
            let artifact = &failure.artifact;
            let ops: Vec<Op> = serde_json::from_value(artifact.ops.clone()).expect("demo operations");
            assert!(ops.len() <= artifact.ops_unshrunk, "shrinking lengthened the case");
            ops[artifact.violation_at].clone()
        })
        .collect()
}

#[test]
fn use_after_shrink_is_found_without_shrink_skips_used_and_quiet_with_it() {
    let outcome = assert_found_and_fixed::<DemoSubject>("demo use after shrink");
    for op in failing_ops(&outcome) {
        // The shrink that frees an entry in use (a mismatch), or the holder's put (a use after free).
        assert!(
            matches!(op, Op::Shrink { .. } | Op::Put { .. }),
            "reported at {op:?}: {}",
            outcome.explain()
        );
    }
}

#[test]
fn abba_lock_order_is_found_without_lru_lock_order_and_quiet_with_it() {
    let outcome = assert_found_and_fixed::<DemoSubject>("demo ABBA between cache and LRU locks");
    for op in failing_ops(&outcome) {
        // Lockdep reports the cycle when the second order is taken; in a shrunk case that is the
        // shrinker's LRU-then-cache order after an insert or get took cache-then-LRU.
        assert!(matches!(op, Op::Shrink { .. } | Op::Insert { .. } | Op::Get { .. }), "reported at {op:?}");
    }
}
