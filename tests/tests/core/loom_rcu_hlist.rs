//! Loom models of sim-core's RCU hlist (`sim_core::rcu_hlist`): a reader walks a chain inside
//! rcu_read_lock() while an updater, under the writers' lock, deletes the middle node with
//! hlist_del_rcu() and frees it, at once or after a grace period. Every interleaving within the
//! bound runs to its end and the kinds of violation any of them reported are collected. From the
//! ordinary test build: `cargo test -p ksim-tests --test main -- core::loom_rcu_hlist`.

use std::collections::BTreeSet;
use std::ops::ControlFlow;
use std::sync::{Arc as StdArc, Mutex as StdMutex};

use sim_core::lockdep::ReportMode;
use sim_core::rcu::{rcu_barrier, synchronize_rcu};
use sim_core::rcu_hlist::RcuHlist;
use sim_core::sync::{thread, Arc};
use sim_core::{Sim, SimConfig, SpinLock};

use super::loom_support::passes;
use super::rcu_models::Free;

/// The chain's writers' lock.
const CHAIN_LOCK: &str = "chain_lock";

/// The violation kinds found over all interleavings of one model, and the walks that ended
/// without a report.
type Found = StdArc<StdMutex<(BTreeSet<String>, BTreeSet<Vec<u32>>)>>;

/// Chain 3 -> 2 -> 1; the reader walks it once, the updater deletes 2 and frees it as `free`
/// says. Whatever the interleaving, the reader meets 3 and then 1 (a walk standing on 2 when it
/// is deleted goes on through its kept `next`), and 2 at most once between them. Returns what
/// the walk met, when it ended without a report.
fn delete_the_middle_under_a_reader(sim: &Sim, free: Free) -> Option<Vec<u32>> {
    let list: Arc<RcuHlist<u32>> = Arc::new(RcuHlist::new("chain", CHAIN_LOCK));
    let lock = Arc::new(SpinLock::new(CHAIN_LOCK, ()));
    let setup = sim.cx("setup", 0);
    let head = list.head_alloc();
    let nodes: Vec<_> = (1..=3).map(|entry| list.node_alloc(entry)).collect();
    {
        let _writer = lock.lock(&setup);
        for &node in &nodes {
            list.hlist_add_head_rcu(&setup, node, head).expect("live");
        }
    }
    let reader = {
        let (list, cx) = (list.clone(), sim.cx("reader", 0));
        thread::spawn(move || {
            let mut seen = Vec::new();
            cx.rcu_read_lock();
            let walked = list.hlist_for_each_entry_rcu(&cx, head, None, |&entry| {
                seen.push(entry);
                ControlFlow::<()>::Continue(())
            });
            cx.rcu_read_unlock();
            walked.is_ok().then(|| {
                assert!(seen == [3, 2, 1] || seen == [3, 1], "the walk met {seen:?}");
                seen
            })
        })
    };
    let cx = sim.cx("updater", 1);
    {
        let _writer = lock.lock(&cx);
        list.hlist_del_rcu(&cx, nodes[1]).expect("hashed");
    }
    match free {
        Free::Kfree => list.kfree(&cx, &[], &[nodes[1]]),
        Free::SynchronizeThenKfree => {
            synchronize_rcu(&cx);
            list.kfree(&cx, &[], &[nodes[1]]);
        }
        Free::KfreeRcu => list.kfree_rcu(&cx, &[], &[nodes[1]]),
    }
    rcu_barrier(&cx);
    let seen = reader.join().expect("reader");
    assert_eq!(list.live(), 3, "the head and the two nodes left");
    seen
}

/// Every interleaving within a preemption bound of 2: the kinds reported, the walks met.
#[track_caller]
fn explore(free: Free) -> (BTreeSet<String>, BTreeSet<Vec<u32>>) {
    let found: Found = StdArc::default();
    let into = found.clone();
    passes(Some(2), move || {
        let sim = Sim::new(SimConfig::new(0).lockdep(ReportMode::Collect));
        let seen = delete_the_middle_under_a_reader(&sim, free);
        let kinds = sim.violations().into_iter().map(|violation| violation.kind.to_string());
        let mut into = into.lock().expect("found");
        into.0.extend(kinds);
        into.1.extend(seen);
    });
    let found = found.lock().expect("found").clone();
    found
}

#[test]
fn loom_finds_a_deleted_node_freed_without_a_grace_period_under_a_walker() {
    let (kinds, _) = explore(Free::Kfree);
    assert!(kinds.contains("rcu:use-after-free"), "{kinds:?}");
}

/// The interesting interleavings are reached: a walk that met 2 (it stood on the node, or
/// passed it, before or while it was deleted) and a walk that started after the delete.
#[test]
fn a_walker_on_a_node_deleted_and_freed_after_a_grace_period_reaches_the_rest_safely() {
    for free in [Free::SynchronizeThenKfree, Free::KfreeRcu] {
        let (kinds, walks) = explore(free);
        assert!(kinds.is_empty(), "{free:?}: {kinds:?}");
        let both: BTreeSet<Vec<u32>> = [vec![3, 2, 1], vec![3, 1]].into();
        assert_eq!(walks, both, "{free:?}: the walks met");
    }
}
