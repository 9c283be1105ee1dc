//! `rwlock_t` as 2.6-era kernels have it (include/linux/spinlock.h, kernel/spinlock.c): a
//! spinning reader-writer lock whose readers may recurse. `read_lock()` enters whenever no
//! writer holds the lock, even past a spinning writer (the pre-qrwlock rule that lets a reader
//! nest inside another read hold, and the reason `tasklist_lock` readers can starve its
//! writers); `write_lock()` spins until no reader or writer holds it. Both disable preemption and
//! never sleep. lockdep sees reads as [`LockMode::ReadRecursive`], in every context: the
//! kernels modelled predate `read_lock_is_recursive()` (5.10 lockdep, where a process-context
//! `read_lock()` under qrwlocks is not recursive). lockdep's cycle search follows 5.10's
//! (`__bfs()`, `hlock_conflict()`, `lock_list::dep`), which judges recursive reads more finely
//! than 2.6's, which kept no dependency with a recursive read at either end at all.
//!
//! Left out: qrwlock's fairness (from 3.16 a process-context reader waits behind a queued
//! writer), the `_bh` variants and trylocks.

use std::fmt;
use std::ops::{Deref, DerefMut};
use std::panic::Location;

use crate::chain_cache::ClassKey;
use crate::cx::{Cx, IrqFlags};
use crate::lockdep::LockMode;
use crate::sync;

/// `rwlock_t` (`DEFINE_RWLOCK`, `rwlock_init`).
///
/// Admission is the facade's [`sync::RecursiveRwLock`]: parking_lot's lock with recursive reads
/// outside the checkers (one atomic operation each way), and inside shuttle or loom a small
/// state machine on their primitives, so they see every wait (the value then sits in a `std`
/// lock that admission guarantees never blocks, as in [`crate::RwSem`]).
pub struct RwLock<T> {
    key: ClassKey,
    data: sync::RecursiveRwLock<T>,
}

impl<T> fmt::Debug for RwLock<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RwLock").field("class", &self.key.name).finish_non_exhaustive()
    }
}

/// A read hold of an [`RwLock`]: `read_unlock` (or `read_unlock_irqrestore`) on drop.
pub struct RwLockReadGuard<'a, T> {
    guard: Option<sync::RecursiveReadGuard<'a, T>>,
    lock: &'a RwLock<T>,
    cx: &'a Cx,
    token: u64,
    irq: Option<IrqFlags>,
}

/// A write hold of an [`RwLock`]: `write_unlock` (or `write_unlock_irq`) on drop.
pub struct RwLockWriteGuard<'a, T> {
    guard: Option<sync::RecursiveWriteGuard<'a, T>>,
    lock: &'a RwLock<T>,
    cx: &'a Cx,
    token: u64,
    irq: Option<IrqFlags>,
}

impl<T> RwLock<T> {
    /// A reader-writer spinlock of lock class `class`.
    pub fn new(class: &'static str, value: T) -> Self {
        RwLock { key: ClassKey::new(class), data: sync::RecursiveRwLock::new(value) }
    }

    /// The lock class name.
    pub fn class(&self) -> &'static str {
        self.key.name
    }

    /// `read_lock()`: spins only while a writer holds the lock.
    #[track_caller]
    pub fn read_lock<'a>(&'a self, cx: &'a Cx) -> RwLockReadGuard<'a, T> {
        self.read(cx, None, Location::caller())
    }

    /// `read_lock_irqsave()`: also disables local irqs until the guard drops.
    #[track_caller]
    pub fn read_lock_irqsave<'a>(&'a self, cx: &'a Cx) -> RwLockReadGuard<'a, T> {
        let flags = cx.local_irq_save();
        self.read(cx, Some(flags), Location::caller())
    }

    /// `write_lock()`: spins until no reader or writer holds the lock.
    #[track_caller]
    pub fn write_lock<'a>(&'a self, cx: &'a Cx) -> RwLockWriteGuard<'a, T> {
        self.write(cx, None, LockMode::Spin, Location::caller())
    }

    /// `write_lock_irq()`: local irqs off until `write_unlock_irq()` (the guard's drop, which
    /// restores the state they had, as every caller in the model entered with them on).
    #[track_caller]
    pub fn write_lock_irq<'a>(&'a self, cx: &'a Cx) -> RwLockWriteGuard<'a, T> {
        let flags = cx.local_irq_save();
        self.write(cx, Some(flags), LockMode::SpinIrq, Location::caller())
    }

    /// A checker's read of the value through observer context `cx`, without the lock round
    /// trip where none is owed: `f` runs on the value as a `read_lock()` section would show it.
    ///
    /// An observer's `read_lock()` is seen by no one (lockdep and the trace skip observers), so
    /// in the op-level simulation, where the checker reads between operations and no kernel
    /// task can take the lock meanwhile, its admission state, held-stack entry, token and
    /// preemption count are work for nobody. Here the admission's `try_read` (no admission
    /// state on a checker's lock: its value's `std` lock alone) never blocks: it succeeds when no
    /// writer holds the lock (a reader the model left holding it does not stop it). With a writer holding it, or inside a
    /// shuttle execution or a loom model (a world made there, `Sim`'s `threaded`), the read is
    /// `read_lock()`'s round trip as before: there an observer's acquisition is a scheduling
    /// point, and threaded cases' pinned windows count them
    /// (`tests/tests/mbcache2/reference_windows.rs`), so the fast path must not remove it.
    /// Outside those checkers, a model driven from other OS threads stays excluded: the read
    /// is parking_lot's, so a writer waits for `f` to return.
    ///
    /// Inside `f` the context does not hold the lock ([`Cx::holds`] says so), so `f` reads the
    /// value and takes nothing that asks whether it is held, nor this lock again. Panics for a
    /// model context: a model's read is kernel code, which lockdep and the trace must see.
    #[track_caller]
    pub fn observe_read<R>(&self, cx: &Cx, f: impl FnOnce(&T) -> R) -> R {
        assert!(
            cx.is_observer(),
            "{}: observe_read is a checker's read, through an observer context",
            cx.name()
        );
        if !cx.sim().world.threaded {
            if let Some(value) = self.data.try_read() {
                return f(&value);
            }
        }
        f(&self.read_lock(cx))
    }

    fn read<'a>(
        &'a self,
        cx: &'a Cx,
        irq: Option<IrqFlags>,
        site: &'static Location<'static>,
    ) -> RwLockReadGuard<'a, T> {
        let (guard, token) = cx.acquire_with(&self.key, LockMode::ReadRecursive, site, || {
            cx.preempt_disable();
            self.data.read()
        });
        RwLockReadGuard { guard: Some(guard), lock: self, cx, token, irq }
    }

    fn write<'a>(
        &'a self,
        cx: &'a Cx,
        irq: Option<IrqFlags>,
        mode: LockMode,
        site: &'static Location<'static>,
    ) -> RwLockWriteGuard<'a, T> {
        let (guard, token) = cx.acquire_with(&self.key, mode, site, || {
            cx.preempt_disable();
            self.data.write()
        });
        RwLockWriteGuard { guard: Some(guard), lock: self, cx, token, irq }
    }

    /// The value, when the lock is no longer shared.
    pub fn into_inner(self) -> T {
        self.data.into_inner()
    }
}

impl<T> Deref for RwLockReadGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        self.guard.as_ref().expect("guard present until drop")
    }
}

impl<T> Drop for RwLockReadGuard<'_, T> {
    fn drop(&mut self) {
        sync::Release::release(&mut self.guard);
        self.cx.lock_release_key(&self.lock.key, self.token);
        self.cx.preempt_enable();
        if let Some(flags) = self.irq {
            self.cx.local_irq_restore(flags);
        }
    }
}

impl<T> Deref for RwLockWriteGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        self.guard.as_ref().expect("guard present until drop")
    }
}

impl<T> DerefMut for RwLockWriteGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        self.guard.as_mut().expect("guard present until drop")
    }
}

impl<T> Drop for RwLockWriteGuard<'_, T> {
    fn drop(&mut self) {
        sync::Release::release(&mut self.guard);
        self.cx.lock_release_key(&self.lock.key, self.token);
        self.cx.preempt_enable();
        if let Some(flags) = self.irq {
            self.cx.local_irq_restore(flags);
        }
    }
}

impl<T> fmt::Debug for RwLockReadGuard<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RwLockReadGuard({})", self.lock.key.name)
    }
}

impl<T> fmt::Debug for RwLockWriteGuard<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RwLockWriteGuard({})", self.lock.key.name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lockdep::{LockdepReport, ReportMode};
    use crate::{Sim, SimConfig, SpinLock};

    fn collecting() -> Sim {
        Sim::new(SimConfig::new(1).lockdep(ReportMode::Collect))
    }

    #[test]
    fn a_read_nested_in_a_read_of_the_same_lock_is_not_recursion() {
        let sim = collecting();
        let lock = RwLock::new("tasklist_lock", 7);
        let cx = sim.cx("reader", 0);
        let outer = lock.read_lock(&cx);
        let inner = lock.read_lock(&cx);
        assert_eq!(*outer + *inner, 14);
        drop(inner);
        drop(outer);
        assert!(sim.lockdep().reports().is_empty(), "{:#?}", sim.lockdep().reports());
    }

    #[test]
    fn a_read_under_a_write_of_the_same_lock_is_recursive_locking() {
        let sim = collecting();
        let lock = RwLock::new("tasklist_lock", ());
        let cx = sim.cx("writer", 0);
        let _write = lock.write_lock_irq(&cx);
        assert!(cx.irqs_disabled());
        let reports = {
            // The kernel would spin forever here; the model's read would too, so lockdep's
            // report (made before the acquisition blocks) is what this test reads.
            let key = ClassKey::new("tasklist_lock");
            let token = cx.lock_acquire_key(&key, LockMode::ReadRecursive, false, Location::caller());
            cx.lock_acquire_failed(token);
            sim.lockdep().reports()
        };
        assert!(matches!(reports.as_slice(), [LockdepReport::RecursiveLocking { .. }]), "{reports:#?}");
    }

    /// write_lock_irq(A); spin_lock(B) in one context and spin_lock(B); read_lock(A) in another:
    /// the reader waits for the writer, who waits for B: a real deadlock, reported.
    #[test]
    fn a_read_after_another_context_wrote_first_forms_a_cycle() {
        let sim = collecting();
        let (a, b) = (RwLock::new("tasklist_lock", ()), SpinLock::new("siglock", ()));
        let (one, two) = (sim.cx("fork", 0), sim.cx("query", 1));
        {
            let _a = a.write_lock_irq(&one);
            drop(b.lock(&one));
        }
        assert!(sim.lockdep().reports().is_empty());
        {
            let _b = b.lock_irqsave(&two);
            drop(a.read_lock(&two));
        }
        let reports = sim.lockdep().reports();
        assert!(
            reports.iter().any(|r| matches!(r, LockdepReport::CircularDependency { .. })),
            "{reports:#?}"
        );
    }

    /// read_lock(A); spin_lock(B) and spin_lock(B); read_lock(A): readers never wait for
    /// readers, so this is no deadlock, and lockdep (since its read-recursive rework) stays quiet.
    #[test]
    fn two_reader_orders_of_the_same_pair_are_no_cycle() {
        let sim = collecting();
        let (a, b) = (RwLock::new("tasklist_lock", ()), SpinLock::new("siglock", ()));
        let (one, two) = (sim.cx("lookup", 0), sim.cx("query", 1));
        {
            let _a = a.read_lock(&one);
            drop(b.lock(&one));
        }
        {
            let _b = b.lock(&two);
            drop(a.read_lock(&two));
        }
        assert!(sim.lockdep().reports().is_empty(), "{:#?}", sim.lockdep().reports());
    }

    /// B; read_lock(A) and then read_lock(A); B: the reverse order of the test above. The kernel
    /// stays quiet here too: B -> A ends in a recursive read (-(*R)->) and A -> B starts with A
    /// held shared (-(S*)->), so the cycle has no strong joint at A (`__bfs()` masks an S*
    /// dependency after an *R one; `hlock_conflict()` needs the held A exclusive or the route
    /// into it not only *R).
    #[test]
    fn two_reader_orders_of_the_same_pair_in_reverse_are_no_cycle() {
        let sim = collecting();
        let (a, b) = (RwLock::new("tasklist_lock", ()), SpinLock::new("siglock", ()));
        let (one, two) = (sim.cx("query", 0), sim.cx("lookup", 1));
        {
            let _b = b.lock(&one);
            drop(a.read_lock(&one));
        }
        {
            let _a = a.read_lock(&two);
            drop(b.lock(&two));
        }
        assert!(sim.lockdep().reports().is_empty(), "{:#?}", sim.lockdep().reports());
    }

    /// The chain key counts each held lock's read state (`hlock_id()`): a read nested in a read
    /// of its class (no report, so remembered) must not pass for the same classes with the outer
    /// one write-held, which is recursive locking. Were the key blind to read state, the second
    /// chain would hit the first one's cache entry and go unreported. Two locks of one class, so
    /// nothing blocks.
    #[test]
    fn a_remembered_read_under_a_read_does_not_pass_for_a_read_under_a_write() {
        let sim = collecting();
        let (a, b) = (RwLock::new("tasklist_lock", ()), RwLock::new("tasklist_lock", ()));
        let cx = sim.cx("reader", 0);
        for _ in 0..2 {
            let _a = a.read_lock(&cx);
            drop(b.read_lock(&cx));
        }
        assert!(sim.lockdep().reports().is_empty(), "{:#?}", sim.lockdep().reports());
        {
            let _a = a.write_lock(&cx);
            drop(b.read_lock(&cx));
        }
        let reports = sim.lockdep().reports();
        assert!(matches!(reports.as_slice(), [LockdepReport::RecursiveLocking { .. }]), "{reports:#?}");
    }

    /// A readers' cycle let pass keeps its closing dependency in the graph, as the kernel's
    /// check_prev_add() adds it, and its chain is remembered. A writer re-making a dependency of
    /// that cycle (write_lock(A); B, A -> B already present as a reader's) is checked for a
    /// cycle before its kind is ORed in, as check_prev_add() runs check_noncircular() before it
    /// looks for the entry, so the deadlock is reported at the writer's acquisition, through the
    /// reader's kept dependency B -> A; the reader's remembered chain adds nothing after.
    #[test]
    fn a_writer_closing_a_passed_readers_cycle_is_reported_at_once() {
        let sim = collecting();
        let (a, b) = (RwLock::new("tasklist_lock", ()), SpinLock::new("siglock", ()));
        let (lookup, query, fork) = (sim.cx("lookup", 0), sim.cx("query", 1), sim.cx("fork", 0));
        {
            let _a = a.read_lock(&lookup);
            drop(b.lock(&lookup));
        }
        for _ in 0..2 {
            let _b = b.lock(&query);
            drop(a.read_lock(&query));
        }
        assert!(sim.lockdep().reports().is_empty(), "{:#?}", sim.lockdep().reports());
        {
            let _a = a.write_lock(&fork);
            drop(b.lock(&fork));
        }
        let reports = sim.lockdep().reports();
        let [LockdepReport::CircularDependency { existing_chain, .. }] = reports.as_slice() else {
            panic!("{reports:#?}");
        };
        let route: Vec<_> = existing_chain.iter().map(|c| (c.from.as_str(), c.to.as_str())).collect();
        assert_eq!(route, [("siglock", "tasklist_lock")], "{reports:#?}");
        {
            let _b = b.lock(&query);
            drop(a.read_lock(&query));
        }
        assert_eq!(sim.lockdep().reports_count(), 1, "{:#?}", sim.lockdep().reports());
    }

    /// A chain remembered clean must not stand for a later acquisition of the same classes in
    /// another mode. `siglock; read_lock(tasklist_lock)` is validated clean and remembered (taken
    /// twice: the second time the chain cache skips it); `read_lock(tasklist_lock); siglock` is a
    /// readers' cycle the graph lets pass; then `siglock; write_lock(tasklist_lock)`, the very
    /// classes of the remembered chain with the lock now taken for writing, closes a real
    /// deadlock (the writer waits for the reader, who waits for siglock). Were the chain cache
    /// blind to the new lock's mode (its lookup key's mode bits and the chain key's read state,
    /// `chain_cache::lookup_key` and `chain_key`), that acquisition would pass for the
    /// remembered read and go unreported: this test fails then (checked by breaking both).
    #[test]
    fn a_remembered_read_chain_does_not_hide_a_later_cycle() {
        let sim = collecting();
        let (a, b) = (RwLock::new("tasklist_lock", ()), SpinLock::new("siglock", ()));
        let (query, lookup, fork) = (sim.cx("query", 0), sim.cx("lookup", 1), sim.cx("fork", 1));
        for _ in 0..2 {
            let _b = b.lock(&query);
            drop(a.read_lock(&query));
        }
        {
            let _a = a.read_lock(&lookup);
            drop(b.lock(&lookup));
        }
        assert!(sim.lockdep().reports().is_empty(), "{:#?}", sim.lockdep().reports());
        {
            let _b = b.lock(&fork);
            drop(a.write_lock(&fork));
        }
        let reports = sim.lockdep().reports();
        let [LockdepReport::CircularDependency { acquiring, existing_chain, .. }] = reports.as_slice() else {
            panic!("expected one circular dependency: {reports:#?}");
        };
        assert_eq!(
            (acquiring.class.as_str(), acquiring.mode),
            ("tasklist_lock", LockMode::Spin),
            "{reports:#?}"
        );
        let route: Vec<_> = existing_chain.iter().map(|c| (c.from.as_str(), c.to.as_str())).collect();
        assert_eq!(route, [("tasklist_lock", "siglock")], "{reports:#?}");
    }

    /// A dependency first made with its `from` class read-held and later with it write-held is
    /// a writer's dependency from then on (the kernel's check_prev_add() ORs the new kind into
    /// the existing entry, `entry->dep |= calc_dep(prev, next)`, since 3454a36d6a39 "lockdep:
    /// Introduce lock_list::dep"): a reader closing the cycle through it waits for that writer.
    /// The writer's chain must not pass for the reader's in the chain cache either (the chain key
    /// counts each held lock's read state, f611e8cf98ec "lockdep: Take read/write status in
    /// consideration when generate chainkey").
    #[test]
    fn a_dependency_taken_again_under_a_write_is_no_longer_a_readers_one() {
        let sim = collecting();
        let (a, b) = (RwLock::new("tasklist_lock", ()), SpinLock::new("siglock", ()));
        let (lookup, fork, query) = (sim.cx("lookup", 0), sim.cx("fork", 0), sim.cx("query", 1));
        {
            let _a = a.read_lock(&lookup);
            drop(b.lock(&lookup));
        }
        {
            let _a = a.write_lock(&fork);
            drop(b.lock(&fork));
        }
        assert!(sim.lockdep().reports().is_empty(), "{:#?}", sim.lockdep().reports());
        {
            let _b = b.lock(&query);
            drop(a.read_lock(&query));
        }
        let reports = sim.lockdep().reports();
        assert!(matches!(reports.as_slice(), [LockdepReport::CircularDependency { .. }]), "{reports:#?}");
    }

    /// A reader's cycle is let pass only when no route back is strong: a second route through a
    /// writer's dependency is a deadlock even though the nearest route is a readers' one
    /// (read_lock(A) -> B; write_lock(A) -> C -> B; then B -> read_lock(A): the reader waits for
    /// the writer, who waits for C's holder, who waits for B). The report names that route.
    #[test]
    fn a_readers_cycle_with_a_writers_route_beside_it_is_reported() {
        let sim = collecting();
        let (a, b, c) =
            (RwLock::new("tasklist_lock", ()), SpinLock::new("siglock", ()), SpinLock::new("alloc_lock", ()));
        let (lookup, fork, query) = (sim.cx("lookup", 0), sim.cx("fork", 0), sim.cx("query", 1));
        let exit = sim.cx("exit", 1);
        {
            let _a = a.read_lock(&lookup);
            drop(b.lock(&lookup));
        }
        {
            let _a = a.write_lock(&fork);
            drop(c.lock(&fork));
        }
        {
            let _c = c.lock(&exit);
            drop(b.lock(&exit));
        }
        assert!(sim.lockdep().reports().is_empty(), "{:#?}", sim.lockdep().reports());
        {
            let _b = b.lock(&query);
            drop(a.read_lock(&query));
        }
        let reports = sim.lockdep().reports();
        let [LockdepReport::CircularDependency { existing_chain, .. }] = reports.as_slice() else {
            panic!("{reports:#?}");
        };
        let route: Vec<_> = existing_chain.iter().map(|c| (c.from.as_str(), c.to.as_str())).collect();
        assert_eq!(route, [("tasklist_lock", "alloc_lock"), ("alloc_lock", "siglock")], "{reports:#?}");
    }

    #[test]
    fn irqs_come_back_when_the_irq_holds_drop() {
        let sim = collecting();
        let lock = RwLock::new("tasklist_lock", 0u32);
        let cx = sim.cx("exit", 0);
        {
            let mut write = lock.write_lock_irq(&cx);
            *write += 1;
            assert!(cx.irqs_disabled() && cx.in_atomic());
        }
        assert!(!cx.irqs_disabled() && !cx.in_atomic());
        {
            let read = lock.read_lock_irqsave(&cx);
            assert_eq!(*read, 1);
            assert!(cx.irqs_disabled());
        }
        assert!(!cx.irqs_disabled());
    }

    /// Between operations, an observer's [`RwLock::observe_read`] reads the value the last
    /// writer left without the round trip: no held-stack entry while `f` runs (a fast path that
    /// still took the lock would show one), no preemption count, nothing in the trace or lockdep,
    /// and the lock free for the model afterwards (a read that left the admission state
    /// counting a reader would make the next write wait forever; the write below completes).
    #[test]
    fn an_observer_s_read_between_operations_takes_no_round_trip() {
        use crate::locks::tests::{an_observer_s_look_takes_no_round_trip, Look, Write};
        let write: Write<RwLock<u32>> = |lock, cx, value| *lock.write_lock_irq(cx) = value;
        let look: Look<RwLock<u32>> = |lock, cx, f| lock.observe_read(cx, f);
        an_observer_s_look_takes_no_round_trip(RwLock::new("tasklist_lock", 0), ("fork", write), look);
    }

    /// A reader the model left holding the lock (a read section across the check) does not stop
    /// an observer's read: readers share the lock, as `read_lock()` would have let it in.
    #[test]
    fn an_observer_s_read_enters_beside_a_model_reader() {
        use crate::locks::tests::{an_observer_enters_beside_a_model_reader, Hold, Look};
        let read: Hold<RwLock<u32>> = |lock, cx, meanwhile| {
            let _held = lock.read_lock(cx);
            meanwhile();
        };
        let look: Look<RwLock<u32>> = |lock, cx, f| lock.observe_read(cx, f);
        an_observer_enters_beside_a_model_reader(RwLock::new("tasklist_lock", 5), ("lookup", read), look);
    }

    /// With a writer holding the lock on another thread (a model driven by several OS threads),
    /// the observer's read waits for the write to end and sees what it wrote: the fast path only
    /// reads a value no writer holds.
    #[test]
    fn an_observer_s_read_waits_for_a_writer_that_holds_the_lock() {
        let hold = |lock: &RwLock<u32>, cx: &Cx, meanwhile: &dyn Fn()| {
            let mut write = lock.write_lock(cx);
            *write = 1;
            meanwhile();
            *write = 2;
        };
        crate::locks::tests::an_observer_waits_for_the_holder(
            RwLock::new("tasklist_lock", 0),
            ("exit", hold),
            |lock, cx| lock.observe_read(cx, |value| *value),
        );
    }

    /// The 2.6 admission rule on the default backend (parking_lot's recursive reads): a read
    /// enters while a writer waits for the readers to leave, and the writer enters after them.
    /// A read queued behind the waiting writer (qrwlock's rule, or parking_lot's plain `read`)
    /// would never return here: the first reader leaves only after the second read.
    #[test]
    fn a_read_enters_past_a_writer_waiting_for_readers() {
        let lock = std::sync::Arc::new(sync::RecursiveRwLock::new(0u32));
        let first = lock.read();
        let writer = {
            let lock = std::sync::Arc::clone(&lock);
            std::thread::spawn(move || *lock.write() += 1)
        };
        // Give the writer time to start waiting (the test holds whether or not it has).
        std::thread::sleep(std::time::Duration::from_millis(50));
        let second = lock.read();
        assert_eq!(*first + *second, 0, "no write while the reads hold the lock");
        drop((second, first));
        writer.join().expect("the writer enters once the readers leave");
        assert_eq!(*lock.read(), 1);
    }

    /// A model context's read is kernel code: it goes through `read_lock()`, never this path.
    #[test]
    #[should_panic(expected = "observe_read is a checker's read")]
    fn a_model_context_may_not_observe() {
        let sim = collecting();
        let lock = RwLock::new("tasklist_lock", 0u32);
        lock.observe_read(&sim.cx("fork", 0), |value| *value);
    }
}
