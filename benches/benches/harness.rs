//! The op-level harness's price per operation, on the demo subsystem: the same operation list
//! applied to the bare model (the baseline: the model's own locks, lockdep and trace hashing),
//! then with each thing the harness adds: the reference model's judgement, the invariants after
//! every operation, the whole `run_case` (markers, panics caught, violations polled, teardown),
//! `run_case` keeping a trace tail (as a campaign did before it hunted with the trace only
//! hashed), and generation from the seed. Then generation alone for every subsystem, per
//! operation. `cargo bench -p ksim-benches --bench harness`; the guide's performance chapter
//! has the figures.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use demo_sim::{DemoModel, DemoSubject};
use sim_core::check::{self, Catalog, Reference, RunOptions, Subject};
use sim_core::lockdep::ReportMode;
use sim_core::trace::TraceMode;
use sim_core::Sim;

/// Operations per case: the campaigns' default longest list.
const OPS: usize = 200;
const SEED: u64 = 7;

/// A seed's operations, padded with more seeds' until the list is `OPS` long, so every stage
/// runs the same long list.
fn operations<S: Subject>(config: &S::Config) -> Vec<S::Op> {
    let mut ops = Vec::new();
    let mut seed = SEED;
    while ops.len() < OPS {
        ops.extend(check::generate::<S>(config, seed, OPS));
        seed += 1;
    }
    ops.truncate(OPS);
    ops
}

/// The world `check::run_case` makes: lockdep collecting, the trace only hashed and confined to
/// this thread, so the stages below compare like with like (an unconfined trace would charge the
/// baseline a spin lock per event that `run_case` does not pay).
fn sim<S: Subject>(config: &S::Config) -> Sim {
    let sim = Sim::new(S::sim_config(config, SEED).lockdep(ReportMode::Collect).trace(TraceMode::HashOnly));
    sim.trace().confine_to_this_thread();
    sim
}

/// Applies `ops` to a fresh model, with the reference's judgement and the invariants when asked.
fn apply_all(config: &<DemoSubject as Subject>::Config, ops: &[demo_sim::Op], judge: bool, invariants: bool) {
    let sim = sim::<DemoSubject>(config);
    let mut model = DemoSubject::new(&sim, config);
    let mut reference = DemoModel::new(config);
    for op in ops {
        let outcome = model.apply(&sim, op);
        if judge {
            reference.check(op, &outcome).expect("the fixed demo passes");
        }
        if invariants {
            model.check_invariants(&sim).expect("the fixed demo passes");
        }
        black_box(outcome);
    }
    model.teardown(&sim).expect("no leak");
}

fn demo_harness(c: &mut Criterion) {
    let config = DemoSubject::config(None, &[]).expect("default preset");
    let ops = operations::<DemoSubject>(&config);
    let mut group = c.benchmark_group("harness-demo");
    group.throughput(Throughput::Elements(ops.len() as u64));
    group.bench_function("bare-model", |b| b.iter(|| apply_all(&config, &ops, false, false)));
    group.bench_function("plus-reference", |b| b.iter(|| apply_all(&config, &ops, true, false)));
    group.bench_function("plus-invariants", |b| b.iter(|| apply_all(&config, &ops, true, true)));
    let hashed = RunOptions { check_every: 1, trace: TraceMode::HashOnly };
    group.bench_function("run_case", |b| {
        b.iter(|| black_box(check::run_case::<DemoSubject>(&config, SEED, &ops, &hashed).trace_hash))
    });
    let tail = RunOptions::default();
    group.bench_function("run_case-trace-tail", |b| {
        b.iter(|| black_box(check::run_case::<DemoSubject>(&config, SEED, &ops, &tail).trace_hash))
    });
    // A seed's own list is shorter than `OPS`: the figure per operation counts its length.
    group.throughput(Throughput::Elements(check::generate::<DemoSubject>(&config, SEED, OPS).len() as u64));
    group.bench_function("generate-and-run_case", |b| {
        b.iter(|| {
            let ops = check::generate::<DemoSubject>(&config, SEED, OPS);
            black_box(check::run_case::<DemoSubject>(&config, SEED, &ops, &hashed).trace_hash)
        })
    });
    group.finish();
}

/// Generation alone, per operation, for one subsystem's default configuration: as campaigns
/// draw it (the cheap generator where the subject has one), and, for a subject that has one,
/// through its proptest strategy as before (`S-proptest`).
fn generation_of<S: Catalog>(group: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>) {
    let config = S::config(None, &[]).expect("default preset");
    let ops = check::generate::<S>(&config, SEED, OPS).len();
    group.throughput(Throughput::Elements(ops as u64));
    group.bench_function(S::NAME, |b| b.iter(|| black_box(check::generate::<S>(&config, SEED, OPS))));
    if S::op_gen(&config).is_some() {
        let ops = check::generate_tree::<S>(&config, SEED, OPS).len();
        group.throughput(Throughput::Elements(ops as u64));
        group.bench_function(format!("{}-proptest", S::NAME), |b| {
            b.iter(|| black_box(check::generate_tree::<S>(&config, SEED, OPS)))
        });
    }
}

fn generation(c: &mut Criterion) {
    let mut group = c.benchmark_group("generate");
    generation_of::<DemoSubject>(&mut group);
    generation_of::<taskstats_sim::TaskstatsSubject>(&mut group);
    generation_of::<mbcache_sim::MbcacheSubject>(&mut group);
    generation_of::<balloon_sim::BalloonSubject>(&mut group);
    group.finish();
}

/// A way to draw seed's list: [`check::generate`] or [`check::generate_tree`].
type Draw<S> = fn(&<S as Subject>::Config, u64, usize) -> Vec<<S as Subject>::Op>;

/// `run_case` per operation over the first 20 seeds' lists, drawn as campaigns draw them and
/// through the proptest strategy: a cheap generator must draw cases that cost what the
/// strategy's did, or a campaign's speed would change for another reason than generation.
fn cases_of<S: Catalog>(group: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>) {
    let config = S::config(None, &[]).expect("default preset");
    let hashed = RunOptions { check_every: check::CHECK_ALL_EVERY, trace: TraceMode::HashOnly };
    let draws: [(&str, Draw<S>); 2] =
        [("campaign", check::generate::<S>), ("proptest", check::generate_tree::<S>)];
    for (how, draw) in draws {
        let cases: Vec<(u64, Vec<S::Op>)> = (0..20).map(|seed| (seed, draw(&config, seed, OPS))).collect();
        group.throughput(Throughput::Elements(cases.iter().map(|(_, ops)| ops.len() as u64).sum()));
        group.bench_function(format!("{}-{how}", S::NAME), |b| {
            b.iter(|| {
                for (seed, ops) in &cases {
                    black_box(check::run_case::<S>(&config, *seed, ops, &hashed).trace_hash);
                }
            })
        });
    }
}

fn cases(c: &mut Criterion) {
    let mut group = c.benchmark_group("run-cases");
    group.sample_size(10);
    cases_of::<DemoSubject>(&mut group);
    cases_of::<balloon_sim::BalloonSubject>(&mut group);
    group.finish();
}

criterion_group!(benches, demo_harness, generation, cases);
criterion_main!(benches);
