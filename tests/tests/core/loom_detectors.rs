//! Loom models of the detectors added in sim-core 2: the lockset detector on a convention-guarded
//! field, softirq lock-order inversion, and a bit spinlock held across a sleeping call. From the
//! ordinary test build: `cargo test --workspace --test main -- core::loom_detectors`.
//! Each misuse is found in every interleaving loom explores (the detectors judge the order of
//! acquisitions and accesses, not their timing), and each correct variant passes them all.

// std's Arc, not loom's: where a model fails, loom unwinds the other threads, and dropping a
// loom object then would abort the test process.
use std::sync::Arc;

use sim_core::bit_spinlock::bit_spin_lock;
use sim_core::list_bl::HlistBlHead;
use sim_core::lockdep::{IrqContext, LockdepReport, ReportMode};
use sim_core::sync::atomic::AtomicUsize;
use sim_core::sync::thread;
use sim_core::{Guarded, Mutex, Sim, SimConfig, SpinLock};

use super::loom_support::{fails, passes};

/// A counter set up by the main task, then incremented by two threads, each under the lock
/// class it names: the same one (correct) or two different ones (the classic misuse).
struct Counter {
    count: Guarded<u64>,
    a_lock: SpinLock<()>,
    b_lock: SpinLock<()>,
}

fn counter_model(sim: Sim, second_lock_differs: bool) {
    let counter = Arc::new(Counter {
        count: Guarded::undocumented("obj->count", 0),
        a_lock: SpinLock::new("a_lock", ()),
        b_lock: SpinLock::new("b_lock", ()),
    });
    counter.count.set(&sim.cx("init", 0), 1);
    let workers: Vec<_> = [("one", false), ("two", second_lock_differs)]
        .into_iter()
        .map(|(name, use_b)| {
            let (counter, cx) = (counter.clone(), sim.cx(name, 0));
            thread::spawn(move || {
                let lock = if use_b { &counter.b_lock } else { &counter.a_lock };
                let _held = lock.lock(&cx);
                counter.count.write(&cx, |n| *n += 1);
            })
        })
        .collect();
    for worker in workers {
        worker.join().expect("worker");
    }
    assert_eq!(counter.count.get(&sim.observer_cx("check", 0)), 3);
}

#[test]
fn guarded_counter_under_one_lock_has_no_race_in_any_interleaving() {
    passes(None, || counter_model(Sim::new(SimConfig::new(0)), false));
}

#[test]
fn lockset_reports_a_field_written_under_two_different_locks() {
    // Lockdep panics with the report, which the lockset check makes before the access.
    let text = fails(Some(2), || counter_model(Sim::new(SimConfig::new(0)), true));
    assert!(text.contains("data race on obj->count"), "unexpected failure: {text}");
    assert!(text.contains("a_lock") && text.contains("b_lock"), "both accesses' locks: {text}");
}

#[test]
fn without_the_detector_loom_itself_judges_the_guarded_cell() {
    // The value is a loom UnsafeCell, so loom's causality check finds the real race too.
    let text = fails(Some(2), || counter_model(Sim::new(SimConfig::new(0).without_lockdep()), true));
    assert!(text.to_lowercase().contains("causality"), "unexpected failure: {text}");
}

/// KERNEL_FACTS T12 on three threads: a timer softirq takes siglock, a task takes delays->lock
/// (plain spin_lock unless `fixed`), the exit path nests them. Returns the reports.
fn t12_model(fixed: bool) -> Vec<LockdepReport> {
    let sim = Sim::new(SimConfig::new(0).lockdep(ReportMode::Collect));
    let siglock = Arc::new(SpinLock::new("sighand->siglock", ()));
    let delays = Arc::new(SpinLock::new("delays->lock", 0u64));
    let timer = {
        let (siglock, cx) = (siglock.clone(), sim.cx("timer", 0));
        thread::spawn(move || cx.softirq(|cx| drop(siglock.lock_irqsave(cx))))
    };
    let task = {
        let (delays, cx) = (delays.clone(), sim.cx("task", 1));
        thread::spawn(move || {
            let mut held = if fixed { delays.lock_irqsave(&cx) } else { delays.lock(&cx) };
            *held += 1;
        })
    };
    let exit = sim.cx("exit", 1);
    {
        let _siglock = siglock.lock_irqsave(&exit);
        *delays.lock_irqsave(&exit) += 1;
    }
    timer.join().expect("timer");
    task.join().expect("task");
    sim.lockdep().reports()
}

#[test]
fn softirq_inversion_is_reported_whichever_order_the_threads_run_in() {
    passes(Some(2), || {
        let reports = t12_model(false);
        assert_eq!(reports.len(), 1, "{reports:#?}");
        assert!(
            matches!(
                &reports[0],
                LockdepReport::IrqSafeToUnsafe { irq: IrqContext::Soft, .. }
                    | LockdepReport::IrqLockInversion { irq: IrqContext::Soft, .. }
            ),
            "{reports:#?}"
        );
    });
}

#[test]
fn delays_lock_taken_irqsave_is_quiet_in_every_interleaving() {
    passes(Some(2), || {
        let reports = t12_model(true);
        assert!(reports.is_empty(), "{reports:#?}");
    });
}

/// Two tasks add to one hlist_bl bucket; `sleep_inside` makes the first take a mutex (a
/// sleeping call) with the bucket's bit lock held.
fn bucket_model(sleep_inside: bool) -> (Vec<LockdepReport>, Vec<u32>) {
    let sim = Sim::new(SimConfig::new(0).lockdep(ReportMode::Collect));
    let bucket = Arc::new(HlistBlHead::new("mb_cache->c_hash"));
    let mutex = Arc::new(Mutex::new("c_mutex", ()));
    let adder = {
        let (bucket, mutex, cx) = (bucket.clone(), mutex.clone(), sim.cx("adder", 0));
        thread::spawn(move || {
            let guard = bucket.head().lock(&cx);
            if sleep_inside {
                drop(mutex.lock(&cx));
            }
            bucket.head().add_head(&cx, 1);
            bucket.head().unlock(guard);
        })
    };
    let cx = sim.cx("main", 1);
    let guard = bucket.head().lock(&cx);
    bucket.head().add_head(&cx, 2);
    bucket.head().unlock(guard);
    adder.join().expect("adder");
    let observer = sim.observer_cx("check", 0);
    let mut keys = bucket.head().for_each_entry(&observer, |chain| chain.to_vec());
    keys.sort_unstable();
    (sim.lockdep().reports(), keys)
}

#[test]
fn a_bit_lock_held_across_a_sleeping_call_is_reported_in_every_interleaving() {
    passes(Some(2), || {
        let (reports, keys) = bucket_model(true);
        assert_eq!(keys, [1, 2], "the bit lock still excludes");
        assert!(
            matches!(&reports[..], [LockdepReport::SleepInAtomic { what, held, .. }]
                if what == "mutex_lock" && held[0].class == "mb_cache->c_hash"),
            "{reports:#?}"
        );
    });
}

#[test]
fn hlist_bl_bucket_lock_excludes_and_is_quiet_when_used_right() {
    passes(Some(2), || {
        let (reports, keys) = bucket_model(false);
        assert_eq!(keys, [1, 2]);
        assert!(reports.is_empty(), "{reports:#?}");
    });
}

#[test]
fn a_raw_bit_lock_word_keeps_its_other_bits() {
    passes(None, || {
        let sim = Sim::new(SimConfig::new(0));
        let word = Arc::new(AtomicUsize::new(0b1000));
        let other = {
            let (word, cx) = (word.clone(), sim.cx("other", 1));
            thread::spawn(move || drop(bit_spin_lock(&cx, "bits", 0, &word)))
        };
        let cx = sim.cx("main", 0);
        drop(bit_spin_lock(&cx, "bits", 0, &word));
        other.join().expect("other");
        assert_eq!(word.load(sim_core::sync::atomic::Ordering::Acquire), 0b1000);
    });
}
