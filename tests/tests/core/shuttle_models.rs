//! Shuttle runs of the listener-list model: four threads (two exits, a registration, a port
//! closing) under random and PCT schedules, seeded. Run with
//! `cargo test -p ksim-tests --test main -- core::shuttle_models`.
//! A failure prints shuttle's schedule string; `shuttle::replay(model, "<schedule>")` replays it.

use std::panic::{catch_unwind, AssertUnwindSafe};

use shuttle::scheduler::{PctScheduler, RandomScheduler};
use shuttle::{Config, Runner};
use sim_core::sync::atomic::Ordering;
use sim_core::sync::{thread, Arc};
use sim_core::{Sim, SimConfig};

use super::listeners::{ListenerList, Port, Prune};

/// Seeds and iteration counts: fixed, so a run is reproducible; printed on failure by shuttle.
const SEED: u64 = 0x6b73_696d;
const ITERATIONS: usize = 2000;

fn model(prune: Prune) {
    let sim = Sim::new(SimConfig::new(0).cpus(1));
    let list = Arc::new(ListenerList::new());
    let ports = Arc::new(vec![Port::new(), Port::new(), Port::new()]);
    let setup = sim.cx("setup", 0);
    list.register(&setup, 0);
    list.register(&setup, 1);
    ports[0].open.store(false, Ordering::Release);
    let mut threads = Vec::new();
    for name in ["exit-a", "exit-b"] {
        let (list, ports, cx) = (list.clone(), ports.clone(), sim.cx(name, 0));
        threads.push(thread::spawn(move || {
            list.deliver(&cx, &ports, prune);
        }));
    }
    {
        let (list, cx) = (list.clone(), sim.cx("register", 0));
        threads.push(thread::spawn(move || list.register(&cx, 2)));
    }
    {
        let ports = ports.clone();
        threads.push(thread::spawn(move || ports[2].open.store(false, Ordering::Release)));
    }
    for thread in threads {
        thread.join().expect("thread");
    }
    let survivors = list.ports(&setup);
    assert!(survivors.contains(&1), "listener of open port 1 was dropped: {survivors:?}");
    assert!(!survivors.contains(&0), "port 0 is closed, so its listener is pruned: {survivors:?}");
}

fn random(prune: Prune) {
    Runner::new(RandomScheduler::new_from_seed(SEED, ITERATIONS), Config::new()).run(move || model(prune));
}

fn pct(prune: Prune) {
    Runner::new(PctScheduler::new_from_seed(SEED, 3, ITERATIONS), Config::new()).run(move || model(prune));
}

#[test]
fn listener_prune_keeps_valid_listeners_under_random_schedules() {
    random(Prune::Revalidate);
}

#[test]
fn listener_prune_keeps_valid_listeners_under_pct_schedules() {
    pct(Prune::Revalidate);
}

#[test]
fn shuttle_random_catches_pruning_by_stale_indices() {
    let result = catch_unwind(AssertUnwindSafe(|| random(Prune::SnapshotIndices)));
    assert!(result.is_err(), "random schedules must find the stale-index prune");
}

#[test]
fn shuttle_pct_catches_pruning_by_stale_indices() {
    let result = catch_unwind(AssertUnwindSafe(|| pct(Prune::SnapshotIndices)));
    assert!(result.is_err(), "PCT schedules must find the stale-index prune");
}
