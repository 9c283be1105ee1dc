//! Lockdep finds each kind of problem in a single-threaded run that never deadlocks, and stays
//! quiet for a consistent order.

use sim_core::lockdep::{LockdepReport, ReportMode};
use sim_core::mm::{Gfp, KmemCache};
use sim_core::{Mutex, RwSem, Sim, SimConfig, SpinLock, WaitQueue};

fn collecting() -> Sim {
    Sim::new(SimConfig::new(1).lockdep(ReportMode::Collect))
}

#[test]
fn ab_ba_order_is_reported_without_a_deadlock() {
    let sim = collecting();
    let b = Mutex::new("lock_b", ());
    let c = Mutex::new("lock_c", ());
    let first = sim.cx("first", 0);
    let second = sim.cx("second", 1);
    // 1. second takes lock_c, then lock_b: the order c -> b.
    {
        let _c = c.lock(&second);
        let _b = b.lock(&second);
    }
    // 2. Later, first takes lock_b, then lock_c: b -> c closes the cycle. The two never ran at
    //    the same time, so nothing deadlocked; lockdep reports the order anyway.
    {
        let _b = b.lock(&first);
        let _c = c.lock(&first);
    }
    let reports = sim.lockdep().reports();
    assert_eq!(reports.len(), 1, "{reports:#?}");
    let LockdepReport::CircularDependency { held, acquiring, existing_chain, current_chain } = &reports[0]
    else {
        panic!("expected a circular dependency, got {:#?}", reports[0]);
    };
    assert_eq!((held.class.as_str(), acquiring.class.as_str()), ("lock_b", "lock_c"));
    assert_eq!(existing_chain.len(), 1);
    assert_eq!((existing_chain[0].from.as_str(), existing_chain[0].to.as_str()), ("lock_c", "lock_b"));
    assert_eq!(existing_chain[0].acquired.task, "second", "the chain names who made the old order");
    assert_eq!(current_chain.len(), 2);
    let text = reports[0].to_string();
    assert!(text.contains("possible circular locking dependency"), "{text}");
    let scenario = reports[0].scenario();
    let expected = ["lock(lock_b);", "lock(lock_c);", "lock(lock_b);", "lock(lock_c);"];
    let lines: Vec<&str> = scenario.lines().map(str::trim).filter(|l| l.starts_with("lock(")).collect();
    assert_eq!(lines, expected, "the two-CPU table:\n{scenario}");
}

#[test]
fn a_longer_cycle_names_the_whole_chain() {
    let sim = collecting();
    let (a, b, c) = (Mutex::new("a", ()), Mutex::new("b", ()), Mutex::new("c", ()));
    let cx = sim.cx("t", 0);
    for (outer, inner) in [(&a, &b), (&b, &c), (&c, &a)] {
        let _o = outer.lock(&cx);
        let _i = inner.lock(&cx);
    }
    let reports = sim.lockdep().reports();
    assert_eq!(reports.len(), 1, "{reports:#?}");
    assert!(reports[0].scenario().contains("a --> b --> c"), "{}", reports[0].scenario());
}

#[test]
fn consistent_order_yields_no_report() {
    let sim = collecting();
    let (a, b) = (SpinLock::new("a", 0), SpinLock::new("b", 0));
    let (first, second) = (sim.cx("first", 0), sim.cx("second", 1));
    for cx in [&first, &second, &first] {
        let mut x = a.lock(cx);
        let mut y = b.lock(cx);
        *x += 1;
        *y += 1;
    }
    assert!(sim.lockdep().reports().is_empty(), "{:#?}", sim.lockdep().reports());
    assert_eq!(sim.lockdep().dependencies(), vec![("a".to_string(), "b".to_string())]);
}

#[test]
fn recursive_acquisition_of_a_held_class_is_reported() {
    let sim = collecting();
    // Two instances of one class, as two listener lists share "listeners->sem".
    let (one, two) = (RwSem::new("listeners->sem", ()), RwSem::new("listeners->sem", ()));
    let cx = sim.cx("t", 0);
    let _first = one.down_read(&cx);
    let _second = two.down_read(&cx);
    let reports = sim.lockdep().reports();
    assert_eq!(reports.len(), 1, "{reports:#?}");
    assert!(
        matches!(&reports[0], LockdepReport::RecursiveLocking { held, .. } if held.class == "listeners->sem")
    );
}

#[test]
fn trylock_of_a_held_class_is_not_recursion() {
    let sim = collecting();
    let (one, two) = (Mutex::new("m", ()), Mutex::new("m", ()));
    let cx = sim.cx("t", 0);
    let _first = one.lock(&cx);
    assert!(two.try_lock(&cx).is_some());
    assert!(sim.lockdep().reports().is_empty());
}

#[test]
fn sleeping_under_a_spinlock_is_reported_for_each_sleeping_call() {
    let sim = collecting();
    let spin = SpinLock::new("spin", ());
    let mutex = Mutex::new("mutex", ());
    let sem = RwSem::new("sem", ());
    let cache: KmemCache<u8> = KmemCache::new("cache", 8);
    let wait = WaitQueue::new("wq");
    let cx = sim.cx("t", 0);
    let guard = spin.lock(&cx);
    drop(mutex.lock(&cx));
    drop(sem.down_write(&cx));
    let handle = cache.alloc(&cx, Gfp::GFP_KERNEL, 1).expect("alloc");
    wait.wait_event(&cx, || true);
    drop(guard);
    let whats: Vec<String> = sim
        .lockdep()
        .reports()
        .into_iter()
        .filter_map(|r| match r {
            LockdepReport::SleepInAtomic { what, held, .. } => {
                assert_eq!(held[0].class, "spin");
                Some(what)
            }
            _ => None,
        })
        .collect();
    assert_eq!(whats, ["mutex_lock", "down_write", "kmem_cache_alloc", "wait_event"]);
    cache.free(&cx, handle).expect("free");
    // With irqs off and no lock, a sleep is still reported (a different held set: none).
    let flags = cx.local_irq_save();
    cx.might_sleep("msleep");
    cx.local_irq_restore(flags);
    assert!(sim.lockdep().reports().iter().any(
        |r| matches!(r, LockdepReport::SleepInAtomic { what, irqs_disabled: true, .. } if what == "msleep")
    ));
}

#[test]
fn atomic_allocation_under_a_spinlock_is_fine() {
    let sim = collecting();
    let spin = SpinLock::new("spin", ());
    let cache: KmemCache<u8> = KmemCache::new("cache", 8);
    let cx = sim.cx("t", 0);
    let guard = spin.lock(&cx);
    let handle = cache.alloc(&cx, Gfp::GFP_ATOMIC, 1).expect("alloc");
    drop(guard);
    cache.free(&cx, handle).expect("free");
    assert!(sim.lockdep().reports().is_empty());
}

#[test]
fn a_class_taken_in_irq_and_with_irqs_on_is_an_inconsistent_state() {
    let sim = collecting();
    let lock = SpinLock::new("vq->lock", ());
    let cx = sim.cx("t", 0);
    cx.hardirq(|cx| drop(lock.lock(cx)));
    assert!(sim.lockdep().reports().is_empty(), "irq use alone is fine");
    drop(lock.lock_irqsave(&cx));
    assert!(sim.lockdep().reports().is_empty(), "irqsave in process context is fine");
    drop(lock.lock(&cx));
    let reports = sim.lockdep().reports();
    assert_eq!(reports.len(), 1, "{reports:#?}");
    assert!(matches!(&reports[0], LockdepReport::InconsistentIrqState { class, .. } if class == "vq->lock"));
    assert!(reports[0].scenario().contains("<Interrupt>"));
}

#[test]
fn irq_safe_lock_held_while_taking_an_irq_unsafe_one_is_reported() {
    let sim = collecting();
    let safe = SpinLock::new("safe", ());
    let unsafe_lock = SpinLock::new("unsafe", ());
    let cx = sim.cx("t", 0);
    cx.hardirq(|cx| drop(safe.lock(cx)));
    drop(unsafe_lock.lock(&cx));
    {
        let _safe = safe.lock_irqsave(&cx);
        let _unsafe = unsafe_lock.lock(&cx);
    }
    let kinds: Vec<&str> = sim.lockdep().reports().iter().map(|r| r.kind()).collect();
    assert_eq!(kinds, vec!["irq-safe-to-unsafe"]);
}

#[test]
fn panic_mode_panics_with_the_report() {
    let sim = Sim::with_seed(1);
    let (lock, other) = (Mutex::new("m", ()), Mutex::new("m", ()));
    let cx = sim.cx("t", 0);
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let _one = lock.lock(&cx);
        let _two = other.lock(&cx);
    }));
    let payload = result.expect_err("lockdep panics by default");
    let text = payload.downcast_ref::<String>().cloned().unwrap_or_default();
    assert!(text.contains("possible recursive locking"), "{text}");
}
