//! Contexts as the harness and the models make them, per operation: `Sim::cx`, `Sim::observer_cx`
//! and `Sim::cx_for_task` found again without a lock, `Cx::renew` in place of a new context, and
//! `Sim::rcu_advance` with nothing queued. Each must leave the run exactly as before: the same
//! task ids, the same names in the trace, the same lock tokens, hence the same trace hash.

use sim_core::lockdep::ReportMode;
use sim_core::rcu::call_rcu;
use sim_core::trace::TraceMode;
use sim_core::{Cx, Sim, SimConfig, SpinLock};

fn sim(seed: u64) -> Sim {
    Sim::new(SimConfig::new(seed).lockdep(ReportMode::Collect).trace(TraceMode::Full))
}

/// One operation as a driver runs it with the context `task` for pid 7: an observer reads, the
/// task takes two locks, a named kworker takes one; every other round pid 7 also acts under
/// another name (as taskstats' driver names a pid "sendmsg", then "do_exit"), which renames it
/// in the trace.
fn operation(sim: &Sim, task: &Cx, locks: &[SpinLock<u32>; 2], round: u32) {
    let observer = sim.observer_cx("op", 0);
    drop(locks[0].lock(&observer));
    let outer = locks[0].lock(task);
    *locks[1].lock(task) += round;
    drop(outer);
    let kworker = sim.cx("kworker", 1);
    drop(locks[1].lock(&kworker));
    if round % 2 == 1 {
        let other = sim.cx_for_task(7, "do_exit", 1);
        drop(locks[0].lock(&other));
    }
}

#[test]
fn a_renewed_context_records_what_a_new_context_per_operation_records() {
    let (fresh, renewed) = (sim(5), sim(5));
    let locks = || [SpinLock::new("outer_lock", 0), SpinLock::new("inner_lock", 0)];
    let (fresh_locks, renewed_locks) = (locks(), locks());
    let mut kept = renewed.cx_for_task(7, "sendmsg", 0);
    for round in 0..6u32 {
        let made = fresh.cx_for_task(7, "sendmsg", round % 2);
        operation(&fresh, &made, &fresh_locks, round);
        drop(made);
        if round > 0 {
            kept.renew(round % 2);
        }
        operation(&renewed, &kept, &renewed_locks, round);
        assert_eq!(fresh.trace().task_names(), renewed.trace().task_names(), "round {round}: names differ");
    }
    assert_eq!(fresh.trace_hash(), renewed.trace_hash(), "renew gives a new context's lock tokens");
    assert_eq!(renewed.trace().task_names().get(&7).map(String::as_str), Some("do_exit"));
}

#[test]
fn renewing_in_place_takes_the_serial_a_new_context_would() {
    let (fresh, renewed) = (sim(9), sim(9));
    let (fresh_lock, renewed_lock) = (SpinLock::new("l", ()), SpinLock::new("l", ()));
    let mut kept = renewed.cx("fs", 0);
    for round in 0..5u32 {
        let made = fresh.cx("fs", round % 2);
        drop(fresh_lock.lock(&made));
        drop(made);
        drop(fresh.observer_cx("check", 0));
        if round > 0 {
            kept.renew(round % 2);
        }
        drop(renewed_lock.lock(&kept));
        drop(renewed.observer_cx("check", 0));
    }
    assert_eq!(fresh.trace_hash(), renewed.trace_hash(), "seed 9: the tokens of five operations differ");
    assert_eq!(kept.cpu(), 0, "renew moves the context to the CPU asked for");
}

#[test]
#[should_panic(expected = "renewed while holding a lock")]
fn renewing_a_context_that_holds_a_lock_panics() {
    let sim = sim(1);
    let lock = SpinLock::new("held_lock", ());
    let mut cx = sim.cx("task", 0);
    let guard = lock.lock(&cx);
    std::mem::forget(guard);
    cx.renew(0);
}

#[test]
fn named_contexts_keep_their_ids_and_names_past_the_shared_slots() {
    let sim = sim(3);
    let names: Vec<String> = (0..40).map(|i| format!("task-{i}")).collect();
    let first: Vec<u32> = names.iter().map(|name| sim.cx(name, 0).task()).collect();
    let sorted = {
        let mut ids = first.clone();
        ids.sort_unstable();
        ids.dedup();
        ids
    };
    assert_eq!(sorted, first, "ids follow the order names first appear, one per name");
    for (name, &task) in names.iter().zip(&first).rev() {
        let cx = sim.cx(name, 1);
        assert_eq!((cx.task(), cx.name(), cx.cpu()), (task, name.as_str(), 1), "{name} again");
    }
    let table = sim.trace().task_names();
    assert!(names.iter().zip(&first).all(|(name, task)| table.get(task) == Some(name)), "{table:?}");
}

#[test]
fn observer_contexts_keep_their_names_past_the_shared_slots() {
    let sim = sim(4);
    for round in 0..2 {
        for i in 0..40 {
            let name = format!("check-{i}");
            let observer = sim.observer_cx(&name, 1);
            assert!(observer.is_observer(), "round {round}");
            assert_eq!(
                (observer.name(), observer.task(), observer.cpu()),
                (name.as_str(), 0, 1),
                "round {round}"
            );
        }
    }
    assert!(sim.trace().task_names().is_empty(), "observers name no task in the trace");
}

#[test]
fn rcu_advance_runs_a_queued_callback_once_its_grace_period_ends_and_nothing_otherwise() {
    let sim = sim(6);
    let ran = std::sync::Arc::new(std::sync::atomic::AtomicU32::new(0));
    assert_eq!(sim.rcu_advance(), 0, "RCU never used");
    let reader = sim.cx("reader", 1);
    reader.rcu_read_lock();
    let counter = ran.clone();
    call_rcu(&sim.cx("updater", 0), move |_| {
        counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    });
    assert_eq!((sim.rcu_advance(), sim.rcu_callbacks_pending()), (0, 1), "the reader holds the grace period");
    reader.rcu_read_unlock();
    assert_eq!(sim.rcu_advance(), 1, "due once the reader left");
    assert_eq!((sim.rcu_advance(), sim.rcu_callbacks_pending()), (0, 0), "nothing queued");
    assert_eq!(ran.load(std::sync::atomic::Ordering::Relaxed), 1);
}
