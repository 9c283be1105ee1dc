//! The cost of sim-core's RCU and kref against native Rust doing the same logical work, with
//! their detectors on (lockdep enabled: PROVE_RCU's checks, the section check on each use, kref's
//! record of who holds which reference) and off (`without_lockdep`). The trace keeps only its
//! hash, as in a campaign. `cargo bench -p ksim-benches --bench rcu_kref`.

use std::hint::black_box;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

use criterion::{criterion_group, criterion_main, Criterion};
use sim_core::trace::TraceMode;
use sim_core::{Kref, RcuPointer, Sim, SimConfig};

fn sims() -> [(&'static str, Sim); 2] {
    [
        ("detectors-on", Sim::new(SimConfig::new(1).trace(TraceMode::HashOnly))),
        ("detectors-off", Sim::new(SimConfig::new(1).trace(TraceMode::HashOnly).without_lockdep())),
    ]
}

/// A whole read: rcu_read_lock, rcu_dereference, one use of the object, rcu_read_unlock. The
/// native baseline clones an `Arc` out of a read-locked slot, what safe Rust would write.
fn read_section(c: &mut Criterion) {
    let mut group = c.benchmark_group("rcu-read-section");
    let native = parking_lot::RwLock::new(Arc::new(7u64));
    group.bench_function("native-rwlock-arc", |b| b.iter(|| black_box(*native.read().clone())));
    for (name, sim) in sims() {
        let cx = sim.cx("bench", 0);
        let gp = RcuPointer::new("gp");
        gp.rcu_assign_pointer(&cx, Some(gp.alloc(7u64)));
        group.bench_function(name, |b| {
            b.iter(|| {
                cx.rcu_read_lock();
                let seen = gp.rcu_dereference(&cx).expect("published");
                black_box(*seen.get(&cx).expect("live"));
                cx.rcu_read_unlock();
            })
        });
    }
    group.finish();
}

/// One rcu_dereference and one use inside a section that stays open. The native baseline is an
/// `Arc` clone and read.
fn dereference(c: &mut Criterion) {
    let mut group = c.benchmark_group("rcu-dereference-in-section");
    let native = Arc::new(7u64);
    group.bench_function("native-arc-clone", |b| b.iter(|| black_box(*Arc::clone(&native))));
    for (name, sim) in sims() {
        let cx = sim.cx("bench", 0);
        let gp = RcuPointer::new("gp");
        gp.rcu_assign_pointer(&cx, Some(gp.alloc(7u64)));
        cx.rcu_read_lock();
        group.bench_function(name, |b| {
            b.iter(|| black_box(*gp.rcu_dereference(&cx).expect("published").get(&cx).expect("live")))
        });
        cx.rcu_read_unlock();
    }
    group.finish();
}

/// A kref_get / kref_put pair that does not release. Native baselines: the same two atomic
/// operations, and an `Arc` clone and drop.
fn get_put(c: &mut Criterion) {
    let mut group = c.benchmark_group("kref-get-put");
    let count = AtomicU32::new(1);
    group.bench_function("native-atomic", |b| {
        b.iter(|| {
            count.fetch_add(1, Ordering::Relaxed);
            black_box(count.fetch_sub(1, Ordering::Release));
        })
    });
    let arc = Arc::new(7u64);
    group.bench_function("native-arc", |b| b.iter(|| drop(black_box(Arc::clone(&arc)))));
    for (name, sim) in sims() {
        let cx = sim.cx("bench", 0);
        let kref = Kref::new(&cx, "bench");
        group.bench_function(name, |b| {
            b.iter(|| {
                kref.get(&cx);
                black_box(kref.put(&cx, |_| unreachable!("the owner's reference remains")));
            })
        });
    }
    group.finish();
}

criterion_group!(benches, read_section, dereference, get_put);
criterion_main!(benches);
