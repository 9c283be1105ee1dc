//! Shuttle runs of the sim-core 2 detectors: a convention-guarded field judged by the lockset
//! detector and an hlist_bl bucket's bit lock, under random schedules, seeded. Run with
//! `cargo test -p ksim-tests --test main -- core::shuttle_detectors`.
//! Shuttle has no race detector of its own; each access to a guarded field is a schedule point
//! (the field is a shuttle `RwLock` underneath), and the lockset detector is the judge.

use shuttle::scheduler::RandomScheduler;
use shuttle::{Config, Runner};
use sim_core::list_bl::HlistBlHead;
use sim_core::lockdep::{LockdepReport, ReportMode};
use sim_core::sync::{thread, Arc};
use sim_core::{Guarded, Mutex, Sim, SimConfig};

/// Fixed, so a run is reproducible; shuttle prints the failing schedule.
const SEED: u64 = 0x6c6f_636b;
const ITERATIONS: usize = 500;

fn random(model: impl Fn() + Send + Sync + 'static) {
    Runner::new(RandomScheduler::new_from_seed(SEED, ITERATIONS), Config::new()).run(model);
}

/// A balloon-like device: `num_pfns` is documented as protected by `balloon_lock`. The fill
/// thread honours that; the stats thread reads it under the lock unless `stats_forgets_lock`.
fn device_model(stats_forgets_lock: bool) -> Vec<LockdepReport> {
    let sim = Sim::new(SimConfig::new(0).lockdep(ReportMode::Collect));
    let balloon_lock = Arc::new(Mutex::new("balloon_lock", ()));
    let num_pfns = Arc::new(Guarded::new("vb->num_pfns", "balloon_lock", 0u32));
    let fill = {
        let (lock, field, cx) = (balloon_lock.clone(), num_pfns.clone(), sim.cx("fill", 0));
        thread::spawn(move || {
            for _ in 0..2 {
                let _held = lock.lock(&cx);
                field.write(&cx, |n| *n += 1);
            }
        })
    };
    let stats = {
        let (lock, field, cx) = (balloon_lock.clone(), num_pfns.clone(), sim.cx("stats", 1));
        thread::spawn(move || {
            let _held = (!stats_forgets_lock).then(|| lock.lock(&cx));
            field.get(&cx)
        })
    };
    fill.join().expect("fill");
    let seen = stats.join().expect("stats");
    assert!(seen <= 2);
    sim.lockdep().reports()
}

#[test]
fn a_read_without_the_documented_lock_is_found_in_every_schedule() {
    random(|| {
        let reports = device_model(true);
        let kinds: Vec<&str> = reports.iter().map(|r| r.kind()).collect();
        assert!(kinds.contains(&"lock-not-held"), "{reports:#?}");
        let LockdepReport::LockNotHeld { access, .. } =
            reports.iter().find(|r| r.kind() == "lock-not-held").expect("found above")
        else {
            unreachable!()
        };
        assert_eq!((access.task.as_str(), access.write), ("stats", false));
    });
}

#[test]
fn reads_and_writes_under_the_documented_lock_are_quiet_in_every_schedule() {
    random(|| {
        let reports = device_model(false);
        assert!(reports.is_empty(), "{reports:#?}");
    });
}

/// Two tasks insert into one bucket; `sleep_inside` makes one allocate-and-wait (a mutex) with
/// the bucket's bit lock held.
fn bucket_model(sleep_inside: bool) -> Vec<LockdepReport> {
    let sim = Sim::new(SimConfig::new(0).lockdep(ReportMode::Collect));
    let bucket = Arc::new(HlistBlHead::new("mb_cache->c_hash"));
    let mutex = Arc::new(Mutex::new("c_mutex", ()));
    let threads: Vec<_> = [("one", 1u32), ("two", 2)]
        .into_iter()
        .map(|(name, key)| {
            let (bucket, mutex, cx) = (bucket.clone(), mutex.clone(), sim.cx(name, key - 1));
            thread::spawn(move || {
                let guard = bucket.head().lock(&cx);
                if sleep_inside && key == 1 {
                    drop(mutex.lock(&cx));
                }
                bucket.head().add_head(&cx, key);
                bucket.head().unlock(guard);
            })
        })
        .collect();
    for thread in threads {
        thread.join().expect("inserter");
    }
    let mut keys = bucket.head().for_each_entry(&sim.observer_cx("check", 0), |chain| chain.to_vec());
    keys.sort_unstable();
    assert_eq!(keys, [1, 2], "the bit lock excludes");
    sim.lockdep().reports()
}

#[test]
fn a_bit_lock_held_across_a_sleep_is_found_in_every_schedule() {
    random(|| {
        let reports = bucket_model(true);
        assert!(
            matches!(&reports[..], [LockdepReport::SleepInAtomic { held, .. }] if held[0].class == "mb_cache->c_hash"),
            "{reports:#?}"
        );
    });
}

#[test]
fn hlist_bl_inserts_are_quiet_in_every_schedule() {
    random(|| assert!(bucket_model(false).is_empty()));
}
