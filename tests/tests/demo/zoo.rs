//! The demo bug zoo: each bug is found with its fix off, as one of the kinds its row lists, and
//! the same budget stays quiet with the fix on (`sim_core::zoo`, the routine `ksim zoo` uses).

use demo_sim::DemoSubject;
use sim_core::zoo::assert_found_and_fixed;

#[test]
fn use_after_shrink_is_found_without_shrink_skips_used_and_quiet_with_it() {
    let outcome = assert_found_and_fixed::<DemoSubject>("demo use after shrink");
    let failure = outcome.found().next().expect("found");
    let ops = failure.artifact.ops.as_array().map_or(0, Vec::len);
    assert!(ops <= 4, "insert, get and a shrink suffice; shrunk to {ops}: {}", outcome.explain());
}

#[test]
fn abba_lock_order_is_found_without_lru_lock_order_and_quiet_with_it() {
    let outcome = assert_found_and_fixed::<DemoSubject>("demo ABBA between cache and LRU locks");
    let failure = outcome.found().next().expect("found");
    let ops = failure.artifact.ops.as_array().map_or(0, Vec::len);
    assert!(ops <= 2, "an insert and a shrink suffice; shrunk to {ops}: {}", outcome.explain());
}
