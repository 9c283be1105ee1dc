//! Loom models of sim-core's primitives and of the listener-list model, from the ordinary test
//! build: `cargo test --workspace --test main -- core::loom_models`. Each states its preemption
//! bound.

use sim_core::lockdep::ReportMode;
use sim_core::rwlock::RwLock;
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

/// A writer task bumps an `rwlock_t` twice while a checker reads it through an observer
/// context, with [`RwLock::observe_read`] (`observe`) or `read_lock()`; returns the value read.
fn observer_reads_beside_a_writer(observe: bool) -> u32 {
    let sim = Sim::new(SimConfig::new(0));
    let lock = Arc::new(RwLock::new("tasklist_lock", 0u32));
    let writer = {
        let (lock, cx) = (lock.clone(), sim.cx("fork", 0));
        thread::spawn(move || {
            for _ in 0..2 {
                *lock.write_lock(&cx) += 1;
            }
        })
    };
    let observer = sim.observer_cx("check", 1);
    let seen = match observe {
        true => lock.observe_read(&observer, |value| *value),
        false => *lock.read_lock(&observer),
    };
    writer.join().expect("writer");
    seen
}

/// Inside a loom model an observer's `observe_read` keeps `read_lock()`'s round trip, so it is
/// the same scheduling point: loom explores exactly as many interleavings either way, and the
/// read lands before, between and after the writes. A fast path taken here (the value's `std`
/// lock, which loom does not see) would explore fewer and see fewer values.
#[test]
fn loom_an_observer_s_read_keeps_its_schedule_points() {
    let seen = std::sync::Arc::new(std::sync::Mutex::new(std::collections::BTreeSet::new()));
    let observed = {
        let seen = seen.clone();
        passes(Some(3), move || {
            let value = observer_reads_beside_a_writer(true);
            seen.lock().expect("seen").insert(value);
        })
    };
    let locked = passes(Some(3), || {
        observer_reads_beside_a_writer(false);
    });
    assert_eq!(observed.executions, locked.executions, "observe_read: {observed}; read_lock: {locked}");
    assert_eq!(*seen.lock().expect("seen"), [0, 1, 2].into(), "values an observer's read saw");
}
