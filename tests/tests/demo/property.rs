//! The op-level simulation of the demo cache against its reference model: the fixed cache passes,
//! and the run reaches every interesting state (so the pass is not vacuous).

use demo_sim::{DemoConfig, DemoSubject, Fixes, PRESET_NEW};
use sim_core::check::assert_cases_pass;

/// The coverage marks (`cx.sim().mark(..)` in the kernel modules) a fixed run must reach.
const MARKS_EXPECTED: &[&str] =
    &["insert-exists", "get-missing", "put", "shrink-freed", "shrink-skipped-used"];

#[test]
fn fixed_demo_matches_its_reference_and_reaches_every_interesting_state() {
    let config = DemoConfig::new(PRESET_NEW, Fixes::all());
    let marks = assert_cases_pass::<DemoSubject>(&config, 0, 200, 40);
    for mark in MARKS_EXPECTED {
        assert!(marks.contains(*mark), "never reached {mark:?}; reached {marks:?}");
    }
    assert!(!marks.contains("insert-enomem"), "no faults were injected, yet an insert failed");
}

#[test]
fn fixed_demo_matches_its_reference_when_entry_allocations_fail() {
    let config = DemoConfig { alloc_fault_percent: 20, ..DemoConfig::new(PRESET_NEW, Fixes::all()) };
    let marks = assert_cases_pass::<DemoSubject>(&config, 0, 200, 40);
    for mark in MARKS_EXPECTED.iter().chain(&["insert-enomem"]) {
        assert!(marks.contains(*mark), "never reached {mark:?}; reached {marks:?}");
    }
}
