//! The cost of sim-core's instrumented locks against raw parking_lot, with lockdep on and off,
//! so the price of the instrumentation is known. `cargo bench -p ksim-benches --bench locks`.

use criterion::{criterion_group, criterion_main, Criterion};
use sim_core::rwlock::RwLock;
use sim_core::trace::TraceMode;
use sim_core::{Mutex, RwSem, Sim, SimConfig, SpinLock};
use std::hint::black_box;

/// The worlds each lock is measured in: lockdep on and off with a trace any OS thread may record
/// (a world driven by several real threads, under its one-word spin lock), and lockdep on with
/// the trace confined to one thread: the world every checker runs, the op-level simulation
/// (`check::run_case`) and, since their tasks share one OS thread, a threaded campaign's shuttle
/// execution and a loom model (`Sim::new` confines those itself).
fn sims() -> [(&'static str, Sim); 3] {
    let op_level = Sim::new(SimConfig::new(1).trace(TraceMode::HashOnly));
    op_level.trace().confine_to_this_thread();
    [
        ("lockdep-on", Sim::new(SimConfig::new(1).trace(TraceMode::HashOnly))),
        ("lockdep-off", Sim::new(SimConfig::new(1).trace(TraceMode::HashOnly).without_lockdep())),
        ("lockdep-on-op-level", op_level),
    ]
}

fn spinlock(c: &mut Criterion) {
    let mut group = c.benchmark_group("spinlock");
    let native = parking_lot::Mutex::new(0u64);
    group.bench_function("native-parking_lot", |b| b.iter(|| *native.lock() += black_box(1)));
    for (name, sim) in sims() {
        let cx = sim.cx("bench", 0);
        let lock = SpinLock::new("bench_lock", 0u64);
        group.bench_function(name, |b| b.iter(|| *lock.lock(&cx) += black_box(1)));
    }
    group.finish();
}

fn nested(c: &mut Criterion) {
    let mut group = c.benchmark_group("nested-two-locks");
    let (outer, inner) = (parking_lot::Mutex::new(0u64), parking_lot::Mutex::new(0u64));
    group.bench_function("native-parking_lot", |b| {
        b.iter(|| {
            let _outer = outer.lock();
            *inner.lock() += black_box(1);
        })
    });
    for (name, sim) in sims() {
        let cx = sim.cx("bench", 0);
        let (outer, inner) = (Mutex::new("outer", 0u64), SpinLock::new("inner", 0u64));
        group.bench_function(name, |b| {
            b.iter(|| {
                let _outer = outer.lock(&cx);
                *inner.lock(&cx) += black_box(1);
            })
        });
    }
    group.finish();
}

fn rwsem(c: &mut Criterion) {
    let mut group = c.benchmark_group("rwsem-read");
    let native = parking_lot::RwLock::new(0u64);
    group.bench_function("native-parking_lot", |b| b.iter(|| black_box(*native.read())));
    for (name, sim) in sims() {
        let cx = sim.cx("bench", 0);
        let sem = RwSem::new("bench_sem", 0u64);
        group.bench_function(name, |b| b.iter(|| black_box(*sem.down_read(&cx))));
    }
    group.finish();
}

/// `read_lock()` of an `rwlock_t` (a recursive read to lockdep, as taskstats' `tasklist_lock`).
fn rwlock_read(c: &mut Criterion) {
    let mut group = c.benchmark_group("rwlock-read");
    let native = parking_lot::RwLock::new(0u64);
    group.bench_function("native-parking_lot", |b| b.iter(|| black_box(*native.read())));
    for (name, sim) in sims() {
        let cx = sim.cx("bench", 0);
        let lock = RwLock::new("bench_rwlock", 0u64);
        group.bench_function(name, |b| b.iter(|| black_box(*lock.read_lock(&cx))));
    }
    group.finish();
}

/// What each case of a campaign pays before lockdep's chain cache can help: a new world (as
/// `check::run_case` makes per case), a context, and the first acquisitions of three nested
/// classes (a mutex, a spinlock under it, an rwlock read under both) and of the spinlock alone,
/// each chain validated against the new world's empty graph. Lockdep off is the baseline: the
/// same world and locks with no validation.
fn first_acquisitions(c: &mut Criterion) {
    let mut group = c.benchmark_group("new-world-first-acquisitions");
    let configs = [
        ("lockdep-on-op-level", SimConfig::new(1).trace(TraceMode::HashOnly)),
        ("lockdep-off-op-level", SimConfig::new(1).trace(TraceMode::HashOnly).without_lockdep()),
    ];
    for (name, config) in configs {
        group.bench_function(name, |b| {
            b.iter(|| {
                let sim = Sim::new(config.clone());
                sim.trace().confine_to_this_thread();
                let cx = sim.cx("bench", 0);
                let (outer, middle) = (Mutex::new("outer", 0u64), SpinLock::new("middle", 0u64));
                let inner = RwLock::new("inner", 0u64);
                for _ in 0..2 {
                    let _outer = outer.lock(&cx);
                    let _middle = middle.lock(&cx);
                    black_box(*inner.read_lock(&cx));
                }
                *middle.lock(&cx) += black_box(1);
                black_box(sim.trace_hash())
            })
        });
    }
    group.finish();
}

/// With `KSIM_LOCK_RATIO=1`: the spinlock round trip against parking_lot's, alternating the two in
/// rounds of 2M iterations and keeping each one's best of seven rounds. On a machine shared with
/// other builds, criterion's rows run one after another and a neighbour can land on one row and
/// not the next; best-of alternating rounds gives the ratio both would have on a quiet core.
///
/// With `KSIM_LOCK_ROUND_TRIPS=N` instead: N spinlock round trips in the op-level world and
/// nothing else, for an instruction count (`valgrind --tool=callgrind`); two counts' difference
/// over the difference of their N is a round trip's instructions, criterion's start-up cancelled.
fn alternating_ratio(_c: &mut Criterion) {
    if let Some(count) = std::env::var("KSIM_LOCK_ROUND_TRIPS").ok().and_then(|n| n.parse::<u64>().ok()) {
        let kind = std::env::var("KSIM_LOCK_KIND").unwrap_or_else(|_| "spin".to_owned());
        let (_, sim) = sims().into_iter().last().expect("the op-level world");
        let cx = sim.cx("bench", 0);
        profile_round_trips(&cx, &kind, count);
        println!("{count} {kind} round trips, trace hash {:x}", sim.trace_hash());
        return;
    }
    if std::env::var_os("KSIM_LOCK_RATIO").is_none() {
        return;
    }
    const ROUNDS: usize = 7;
    const ITERATIONS: u32 = 2_000_000;
    let native = parking_lot::Mutex::new(0u64);
    for (name, sim) in sims() {
        let cx = sim.cx("bench", 0);
        let lock = SpinLock::new("bench_lock", 0u64);
        let (mut best_native, mut best_model) = (f64::MAX, f64::MAX);
        for _ in 0..ROUNDS {
            let started = std::time::Instant::now();
            for _ in 0..ITERATIONS {
                *native.lock() += black_box(1);
            }
            best_native = best_native.min(started.elapsed().as_secs_f64());
            let started = std::time::Instant::now();
            for _ in 0..ITERATIONS {
                *lock.lock(&cx) += black_box(1);
            }
            best_model = best_model.min(started.elapsed().as_secs_f64());
        }
        let per = |seconds: f64| seconds * 1e9 / f64::from(ITERATIONS);
        println!(
            "alternating spinlock {name}: native {:.1} ns, model {:.1} ns, {:.2}x",
            per(best_native),
            per(best_model),
            best_model / best_native
        );
    }
}

/// `KSIM_LOCK_ROUND_TRIPS`'s driver: `count` round trips of the lock kind `kind` (`spin`,
/// `spin-irqsave`, `read`, `write-irq`, `mutex`, `rwsem-read`, `rwsem-write`) in context `cx`. A
/// call of its own, so `valgrind --tool=callgrind --toggle-collect='*profile_round_trips*'`
/// counts the round trips and nothing else (the locks are made before the first iteration).
#[inline(never)]
fn profile_round_trips(cx: &sim_core::Cx, kind: &str, count: u64) {
    let (spin, rwlock) = (SpinLock::new("bench_lock", 0u64), RwLock::new("bench_rwlock", 0u64));
    let (mutex, sem) = (Mutex::new("bench_mutex", 0u64), RwSem::new("bench_sem", 0u64));
    match kind {
        "spin" => (0..count).for_each(|_| *spin.lock(cx) += black_box(1)),
        "spin-irqsave" => (0..count).for_each(|_| *spin.lock_irqsave(cx) += black_box(1)),
        "read" => (0..count).for_each(|_| _ = black_box(*rwlock.read_lock(cx))),
        "write-irq" => (0..count).for_each(|_| *rwlock.write_lock_irq(cx) += black_box(1)),
        "mutex" => (0..count).for_each(|_| *mutex.lock(cx) += black_box(1)),
        "rwsem-read" => (0..count).for_each(|_| _ = black_box(*sem.down_read(cx))),
        "rwsem-write" => (0..count).for_each(|_| *sem.down_write(cx) += black_box(1)),
        _ => panic!("KSIM_LOCK_KIND={kind}: not a lock kind this bench profiles"),
    }
}

criterion_group!(benches, spinlock, nested, rwsem, rwlock_read, first_acquisitions, alternating_ratio);
criterion_main!(benches);
