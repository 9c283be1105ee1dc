//! The cost of sim-core 2's detectors, each against the same code with the detector off:
//! the lockset check on one access to a convention-guarded field, and lockdep's irq usage
//! tracking (hardirq and softirq bits) on a spinlock round trip.
//! `cargo bench -p ksim-benches --bench lockset`.

use criterion::{criterion_group, criterion_main, Criterion};
use sim_core::trace::TraceMode;
use sim_core::{Guarded, Sim, SimConfig, SpinLock};
use std::hint::black_box;

fn guarded_access(c: &mut Criterion) {
    let mut group = c.benchmark_group("guarded-write-under-its-lock");
    let native = parking_lot::RwLock::new(0u64);
    group.bench_function("native-parking_lot-rwlock", |b| b.iter(|| *native.write() += black_box(1)));
    let sims = [
        ("lockset-on", Sim::new(SimConfig::new(1).trace(TraceMode::HashOnly))),
        ("lockset-off", Sim::new(SimConfig::new(1).trace(TraceMode::HashOnly).without_lockdep())),
    ];
    for (name, sim) in sims {
        // Two tasks have touched the field, so the detector is in its steady Shared-Modified
        // state.
        let lock = SpinLock::new("bench_lock", ());
        let field = Guarded::new("bench->count", "bench_lock", 0u64);
        let other = sim.cx("other", 1);
        drop((lock.lock(&other), field.set(&other, 1)));
        let cx = sim.cx("bench", 0);
        let _held = lock.lock(&cx);
        // The same task with the same lock as the last access: the refinement is skipped.
        group.bench_function(name, |b| b.iter(|| field.write(&cx, |n| *n += black_box(1))));
        if name == "lockset-on" {
            // Two tasks in turn, each under its own lock of the class: every access refines.
            let (own, theirs) = (SpinLock::new("bench_lock", ()), SpinLock::new("bench_lock", ()));
            let field = Guarded::new("bench->count", "bench_lock", 0u64);
            let (one, two) = (sim.cx("one", 0), sim.cx("two", 1));
            let (_one, _two) = (own.lock(&one), theirs.lock(&two));
            group.bench_function("lockset-on/two-tasks-in-turn-two-accesses", |b| {
                b.iter(|| {
                    field.write(&one, |n| *n += black_box(1));
                    field.write(&two, |n| *n += black_box(1));
                })
            });
        }
    }
    group.finish();
}

fn irq_tracking(c: &mut Criterion) {
    let mut group = c.benchmark_group("spinlock-round-trip-irq-tracking");
    for (name, tracking) in [("irq-tracking-on", true), ("irq-tracking-off", false)] {
        let sim = Sim::new(SimConfig::new(1).trace(TraceMode::HashOnly));
        sim.lockdep().set_irq_tracking(tracking);
        let cx = sim.cx("bench", 0);
        let (outer, inner) = (SpinLock::new("outer", 0u64), SpinLock::new("inner", 0u64));
        group.bench_function(format!("{name}/spin_lock"), |b| b.iter(|| *inner.lock(&cx) += black_box(1)));
        group.bench_function(format!("{name}/nested-bh"), |b| {
            b.iter(|| {
                let _outer = outer.lock_bh(&cx);
                *inner.lock(&cx) += black_box(1);
            })
        });
    }
    group.finish();
}

criterion_group!(benches, guarded_access, irq_tracking);
criterion_main!(benches);
