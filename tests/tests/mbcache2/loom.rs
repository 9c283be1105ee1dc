//! The zoo's loom column for mbcache2, from the ordinary test build: the entry-flags row's loom
//! model (ext4 clearing `e_reusable` while another task's `mb_cache_entry_touch()` sets
//! `e_referenced`), every interleaving under a preemption bound of 2, run by
//! `sim_core::loom_runner` as `ksim zoo` runs it. Run with
//! `cargo test -p ksim-tests --test main -- mbcache2::loom`.

use mbcache_sim::{Mbcache2Subject, ZOO_LOST_FLAG};
use sim_core::check::Catalog;
use sim_core::loom_runner::{self, loom_data_race, LoomCatalog};
use sim_core::ViolationKind;

#[test]
fn the_loom_column_finds_the_shared_bitfield_word_and_passes_the_atomic_flags() {
    let row = Mbcache2Subject::zoo().into_iter().find(|row| row.name == ZOO_LOST_FLAG).expect("the row");
    let outcome =
        loom_runner::hunt::<Mbcache2Subject>(&row).expect("the row's kernel and fix").expect("a model");
    assert_eq!(outcome.preemption_bound, 2);
    let finding = outcome.buggy.finding.as_ref().expect("loom must find the racing bitfield writes");
    assert!(
        finding.kind == loom_data_race() || finding.kind == ViolationKind::lockdep("lockset-race"),
        "found as {}: {}",
        finding.kind,
        finding.message
    );
    assert!(outcome.found(), "{} is not an expected kind", finding.kind);
    println!("{outcome}");
    assert!(outcome.fixed_quiet(), "{outcome}");
    // A pass is a proof only if loom explored more than the one sequential order.
    assert!(outcome.fixed.executions > 1, "{} interleavings", outcome.fixed.executions);
}

#[test]
fn rows_without_a_loom_model_name_none() {
    let others = Mbcache2Subject::zoo().into_iter().filter(|row| row.name != ZOO_LOST_FLAG);
    for row in others {
        assert!(Mbcache2Subject::loom_scenario(&row).is_none(), "{}", row.name);
    }
}
