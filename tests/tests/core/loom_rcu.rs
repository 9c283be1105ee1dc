//! Loom models of RCU and kref misuse: each runs a small reader/updater (or lookup/remover) pair
//! over every interleaving within its preemption bound and collects the kinds of violation any
//! interleaving reported, so a test can say both "found" and "never reported". From the ordinary
//! test build: `cargo test --workspace --test main -- core::loom_rcu`.

use std::collections::BTreeSet;
use std::sync::{Arc as StdArc, Mutex as StdMutex};

use sim_core::lockdep::ReportMode;
use sim_core::{Sim, SimConfig};

use super::loom_support::passes;
use super::rcu_models::{lookup_races_last_put, replace_and_free, Free};

/// The violation kinds found over all interleavings of one model.
type Found = StdArc<StdMutex<BTreeSet<String>>>;

/// Every interleaving of `model` within `preemption_bound` runs to its end (violations are
/// collected, not raised); the kinds any of them reported.
#[track_caller]
fn explore(preemption_bound: usize, model: impl Fn(&Sim) + Sync + Send + 'static) -> BTreeSet<String> {
    let found: Found = StdArc::default();
    let into = found.clone();
    passes(Some(preemption_bound), move || {
        let sim = Sim::new(SimConfig::new(0).lockdep(ReportMode::Collect));
        model(&sim);
        let kinds = sim.violations().into_iter().map(|violation| violation.kind.to_string());
        into.lock().expect("found").extend(kinds);
    });
    let kinds = found.lock().expect("found").clone();
    kinds
}

#[test]
fn loom_finds_kfree_without_a_grace_period_as_use_after_free() {
    let found = explore(2, |sim| replace_and_free(sim, Free::Kfree, false));
    assert!(found.contains("rcu:use-after-free"), "{found:?}");
}

#[test]
fn synchronize_rcu_before_kfree_never_frees_under_a_reader() {
    let found = explore(2, |sim| replace_and_free(sim, Free::SynchronizeThenKfree, false));
    assert!(found.is_empty(), "{found:?}");
}

#[test]
fn kfree_rcu_never_frees_under_a_reader() {
    let found = explore(2, |sim| replace_and_free(sim, Free::KfreeRcu, false));
    assert!(found.is_empty(), "{found:?}");
}

#[test]
fn loom_finds_a_reader_using_its_pointer_after_the_grace_period_freed_it() {
    let found = explore(2, |sim| replace_and_free(sim, Free::KfreeRcu, true));
    assert!(found.contains("rcu:use-after-free"), "{found:?}");
    assert!(found.contains("rcu:use-outside-read-side"), "{found:?}");
}

#[test]
fn loom_finds_a_plain_get_racing_the_last_put() {
    let found = explore(2, |sim| lookup_races_last_put(sim, false));
    assert!(found.contains("kref:get-after-release"), "{found:?}");
}

#[test]
fn get_unless_zero_never_revives_a_released_entry() {
    let found = explore(2, |sim| lookup_races_last_put(sim, true));
    assert!(found.is_empty(), "{found:?}");
}
