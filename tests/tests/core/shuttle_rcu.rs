//! Shuttle runs of the RCU and kref models (`rcu_models.rs`) under seeded random schedules,
//! collecting the kinds of violation any schedule reported. Run with
//! `cargo test -p ksim-tests --test main -- core::shuttle_rcu`.

use std::collections::BTreeSet;
use std::sync::{Arc as StdArc, Mutex as StdMutex};

use shuttle::scheduler::RandomScheduler;
use shuttle::{Config, Runner};
use sim_core::lockdep::ReportMode;
use sim_core::{Sim, SimConfig};

use super::rcu_models::{lookup_races_last_put, replace_and_free, Free};

/// Fixed, so a run is reproducible.
const SEED: u64 = 0x7263_7521;
const ITERATIONS: usize = 500;

fn explore(model: impl Fn(&Sim) + Sync + Send + 'static) -> BTreeSet<String> {
    let found: StdArc<StdMutex<BTreeSet<String>>> = StdArc::default();
    let into = found.clone();
    Runner::new(RandomScheduler::new_from_seed(SEED, ITERATIONS), Config::new()).run(move || {
        let sim = Sim::new(SimConfig::new(0).lockdep(ReportMode::Collect));
        model(&sim);
        let kinds = sim.violations().into_iter().map(|violation| violation.kind.to_string());
        into.lock().expect("found").extend(kinds);
    });
    let kinds = found.lock().expect("found").clone();
    kinds
}

#[test]
fn shuttle_finds_kfree_without_a_grace_period_as_use_after_free() {
    let found = explore(|sim| replace_and_free(sim, Free::Kfree, false));
    assert!(found.contains("rcu:use-after-free"), "{found:?}");
}

#[test]
fn synchronize_rcu_before_kfree_is_quiet_under_random_schedules() {
    let found = explore(|sim| replace_and_free(sim, Free::SynchronizeThenKfree, false));
    assert!(found.is_empty(), "{found:?}");
}

#[test]
fn shuttle_finds_a_plain_get_racing_the_last_put() {
    let found = explore(|sim| lookup_races_last_put(sim, false));
    assert!(found.contains("kref:get-after-release"), "{found:?}");
}

#[test]
fn get_unless_zero_is_quiet_under_random_schedules() {
    let found = explore(|sim| lookup_races_last_put(sim, true));
    assert!(found.is_empty(), "{found:?}");
}

#[test]
fn kfree_rcu_is_quiet_and_a_pointer_kept_past_the_section_is_found() {
    let quiet = explore(|sim| replace_and_free(sim, Free::KfreeRcu, false));
    assert!(quiet.is_empty(), "{quiet:?}");
    let found = explore(|sim| replace_and_free(sim, Free::KfreeRcu, true));
    assert!(found.contains("rcu:use-after-free"), "{found:?}");
}
