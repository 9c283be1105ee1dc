//! Loom models of sim-core's primitives and of the listener-list model, from the ordinary test
//! build: `cargo test --workspace --test main -- core::loom_models`. Each states its preemption
//! bound.

use sim_core::lockdep::ReportMode;
use sim_core::sync::atomic::Ordering;
use sim_core::sync::{thread, Arc};
use sim_core::{RwSem, Sim, SimConfig};

use super::listeners::{ListenerList, Port, Prune};
use super::loom_support::{fails, passes};

/// Two exits on one CPU race to prune the same invalid listener; a second listener stays valid.
fn two_exits_prune(prune: Prune) {
    let sim = Sim::new(SimConfig::new(0).cpus(1));
    let list = Arc::new(ListenerList::new());
    let ports = Arc::new(vec![Port::new(), Port::new()]);
    let setup = sim.cx("setup", 0);
    list.register(&setup, 0);
    list.register(&setup, 1);
    ports[0].open.store(false, Ordering::Release);
    let exits: Vec<_> = ["exit-a", "exit-b"]
        .into_iter()
        .map(|name| {
            let (list, ports, cx) = (list.clone(), ports.clone(), sim.cx(name, 0));
            thread::spawn(move || list.deliver(&cx, &ports, prune))
        })
        .collect();
    for exit in exits {
        exit.join().expect("exit thread");
    }
    assert_eq!(list.ports(&setup), vec![1], "the open port's listener must survive every prune");
    assert_eq!(ports[1].received.load(Ordering::Acquire), 2, "both exits reach the open listener");
}

#[test]
fn rwsem_listener_prune_never_drops_a_valid_listener() {
    // Bound 4 (unbounded it takes 201,015 interleavings, 46 s in a release build; bound 4 takes
    // 2,652, about 0.5 s in debug): each exit may be preempted in the up_read/down_write gap and
    // inside its prune, twice over.
    passes(Some(4), || two_exits_prune(Prune::Revalidate));
}

#[test]
fn loom_catches_pruning_by_stale_indices() {
    // Preemption bound 2 is enough: exit-a is preempted between up_read and down_write.
    let text = fails(Some(2), || two_exits_prune(Prune::SnapshotIndices));
    assert!(text.contains("must survive"), "unexpected failure: {text}");
}

#[test]
fn rwsem_reader_taking_it_twice_deadlocks_behind_a_queued_writer() {
    // The kernel's writer preference: reader holds, writer queues, reader's second down_read
    // waits behind the writer, the writer waits for the reader. Lockdep collects (it would report
    // the recursion) so that loom gets to see the deadlock itself.
    let text = fails(Some(3), || {
        // std's Arc, not loom's: after loom reports the deadlock it unwinds the blocked
        // threads, and dropping a loom object then would abort the test process.
        let sim = Sim::new(SimConfig::new(0).lockdep(ReportMode::Collect));
        let sem = std::sync::Arc::new(RwSem::new("sem", 0u32));
        let reader = {
            let (sem, cx) = (sem.clone(), sim.cx("reader", 0));
            thread::spawn(move || {
                let first = sem.down_read(&cx);
                let second = sem.down_read(&cx);
                *first + *second
            })
        };
        let writer = {
            let (sem, cx) = (sem.clone(), sim.cx("writer", 1));
            thread::spawn(move || *sem.down_write(&cx) += 1)
        };
        reader.join().expect("reader");
        writer.join().expect("writer");
    });
    assert!(text.to_lowercase().contains("deadlock"), "expected a deadlock, got: {text}");
}

#[test]
fn rwsem_compatible_readers_and_a_writer_always_finish() {
    passes(Some(3), || {
        let sim = Sim::new(SimConfig::new(0));
        let sem = Arc::new(RwSem::new("sem", 0u32));
        let readers: Vec<_> = ["reader-a", "reader-b"]
            .into_iter()
            .map(|name| {
                let (sem, cx) = (sem.clone(), sim.cx(name, 0));
                thread::spawn(move || *sem.down_read(&cx))
            })
            .collect();
        let cx = sim.cx("writer", 1);
        *sem.down_write(&cx) += 1;
        for reader in readers {
            let seen = reader.join().expect("reader");
            assert!(seen <= 1);
        }
        assert_eq!(*sem.down_read(&cx), 1);
    });
}
