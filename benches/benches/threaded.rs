//! Threaded campaigns' costs (`cargo bench -p ksim-benches --bench threaded --features threaded`):
//!
//! - the runtime dual backend's per-lock branch: sim-core's facade mutex built with the cargo
//!   feature `threaded` (an enum whose parking_lot arm is taken outside shuttle) against raw
//!   parking_lot and against sim-core's instrumented `SpinLock` over it, in the same run (a build
//!   without the feature is another build: `--bench locks` measures that one);
//! - executions per second of one threaded case (`threaded::run_case`: history, linearizability,
//!   invariants, claims) against bare shuttle executions of the same operations on the same model
//!   (threads applying them, nothing recorded or judged), same build, same schedulers' seeds.

use std::hint::black_box;
use std::sync::Arc;

use criterion::{criterion_group, criterion_main, Criterion};
use mbcache_sim::MbcacheSubject;
use sim_core::check::Catalog;
use sim_core::sync::schedule::{self, RandomScheduler};
use sim_core::threaded::{self, ThreadedOptions, ThreadedSubject};
use sim_core::trace::TraceMode;
use sim_core::{Sim, SimConfig, SpinLock};
use taskstats_sim::TaskstatsSubject;

fn dual_backend(c: &mut Criterion) {
    let mut group = c.benchmark_group("dual-backend-lock");
    let native = parking_lot::Mutex::new(0u64);
    group.bench_function("raw-parking_lot", |b| b.iter(|| *native.lock() += black_box(1)));
    let dual = sim_core::sync::Mutex::new(0u64);
    group.bench_function("facade-dual-parking_lot-arm", |b| b.iter(|| *dual.lock() += black_box(1)));
    let sim = Sim::new(SimConfig::new(1).trace(TraceMode::HashOnly).without_lockdep());
    let cx = sim.cx("bench", 0);
    let lock = SpinLock::new("bench_lock", 0u64);
    group.bench_function("sim-core-spinlock-lockdep-off", |b| b.iter(|| *lock.lock(&cx) += black_box(1)));
    group.finish();
}

/// Executions per iteration in the execution benches.
const EXECUTIONS: usize = 16;

/// One threaded case of `S`'s default preset (seed 1) on three threads: `run_case` against bare
/// shuttle executions of the same operations.
fn executions<S: Catalog + ThreadedSubject>(c: &mut Criterion) {
    let config = S::config(None, &[]).expect("default preset");
    let options =
        ThreadedOptions { executions: EXECUTIONS, trace: TraceMode::HashOnly, ..ThreadedOptions::new(3) };
    let case = threaded::generate::<S>(&config, 1, &options);
    let mut group = c.benchmark_group(format!("{}-executions-x{EXECUTIONS}", S::NAME));
    group.sample_size(10);
    group.bench_function("run_case", |b| {
        b.iter(|| threaded::run_case::<S>(&config, 1, &case, &options).executions)
    });
    let (config, case) = (Arc::new(config), Arc::new(case));
    group.bench_function("bare-shuttle", |b| {
        b.iter(|| {
            let (config, case) = (config.clone(), case.clone());
            schedule::run(RandomScheduler::new_from_seed(1, EXECUTIONS), 20_000, move || {
                bare::<S>(&config, &case.prefix, &case.threads)
            })
        })
    });
    group.finish();
}

/// One bare execution: the model shared, the prefix applied, one shuttle thread per list.
fn bare<S: ThreadedSubject>(config: &S::Config, prefix: &[S::Op], threads: &[Vec<S::Op>]) {
    let sim = Sim::new(S::sim_config(config, 1).trace(TraceMode::HashOnly));
    let shared = Arc::new(S::share(&sim, config));
    let setup = sim.cx("setup", 0);
    for op in prefix {
        black_box(S::apply_shared(&shared, &setup, op));
    }
    S::finish_thread(&shared, &setup);
    let handles: Vec<_> = threads
        .iter()
        .enumerate()
        .map(|(thread, ops)| {
            let (shared, ops) = (shared.clone(), ops.clone());
            let cx = sim.cx(&format!("thread-{thread}"), thread as u32 % sim.cpus());
            sim_core::sync::thread::spawn(move || {
                for op in &ops {
                    black_box(S::apply_shared(&shared, &cx, op));
                }
                S::finish_thread(&shared, &cx);
            })
        })
        .collect();
    for handle in handles {
        let _ = handle.join();
    }
}

fn taskstats(c: &mut Criterion) {
    executions::<TaskstatsSubject>(c);
}

fn mbcache(c: &mut Criterion) {
    executions::<MbcacheSubject>(c);
}

criterion_group!(benches, dual_backend, taskstats, mbcache);
criterion_main!(benches);
