//! Balloon pages inflated and deflated per second through the virtqueue (driver fill/leak rounds
//! of 256 PFNs, the host consuming the split ring synchronously), for 1 GiB and 16 GiB guests
//! with 4 KiB and 64 KiB pages, against a native baseline that only moves the PFN arrays (free
//! list -> pfns[256] -> the host's list, and back). Each iteration inflates and then deflates
//! 64 MiB, so the guest ends as it began. Then the same rounds with lockdep on (as campaigns run
//! them), and `ksim fuzz balloon`'s own cases run as a campaign runs them, per operation, after
//! a line that says how many pages those operations move.

use std::hint::black_box;

use balloon_sim::Endian;
use balloon_sim::HOST_FEATURES_ALL;
use balloon_sim::{BalloonConfig, BalloonSubject, Op, Outcome, World};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use sim_core::check::{self, RunOptions, Subject};
use sim_core::mm::{PAGE_SIZE_4K, PAGE_SIZE_64K};
use sim_core::trace::TraceMode;
use sim_core::{Sim, SimConfig};

/// Balloon pages (4 KiB) moved each way per iteration: 64 MiB.
const MOVED_BALLOON_PAGES: usize = 16384;
const ROUND: usize = 256;

fn native(c: &mut Criterion, guest_bytes: u64, page_size: u64, label: &str) {
    let pages = (guest_bytes / page_size) as u32;
    let ppp = (page_size / PAGE_SIZE_4K) as u32;
    let mut free: Vec<u32> = (0..pages).rev().collect();
    let mut balloon: Vec<u32> = Vec::new();
    let mut host: Vec<u32> = Vec::with_capacity(MOVED_BALLOON_PAGES);
    let mut group = c.benchmark_group("balloon");
    group.throughput(Throughput::Elements(2 * MOVED_BALLOON_PAGES as u64));
    group.bench_function(BenchmarkId::new("native-pfn-arrays", label), |b| {
        b.iter(|| {
            let mut pfns = [0u32; ROUND];
            let mut moved = 0;
            while moved < MOVED_BALLOON_PAGES {
                let mut n = 0;
                while n < ROUND {
                    let page = free.pop().expect("memory");
                    balloon.push(page);
                    for i in 0..ppp {
                        pfns[n + i as usize] = page * ppp + i;
                    }
                    n += ppp as usize;
                }
                host.extend_from_slice(&pfns[..n]);
                moved += n;
            }
            moved = 0;
            while moved < MOVED_BALLOON_PAGES {
                let mut n = 0;
                while n < ROUND {
                    let page = balloon.pop().expect("ballooned");
                    for i in 0..ppp {
                        pfns[n + i as usize] = page * ppp + i;
                    }
                    free.push(page);
                    n += ppp as usize;
                }
                host.truncate(host.len() - n);
                moved += n;
            }
            black_box(&pfns);
        })
    });
    group.finish();
}

/// The model's fill and leak rounds; `lockdep`: with lockdep and the lockset detector on, as a
/// campaign runs them (off: the model's own work and trace hashing only).
fn model(c: &mut Criterion, guest_bytes: u64, page_size: u64, label: &str, lockdep: bool) {
    let config = SimConfig::new(1).trace(TraceMode::HashOnly);
    let sim = Sim::new(if lockdep { config } else { config.without_lockdep() });
    let mut config = BalloonConfig::preset("fixed").expect("preset");
    config.memory_bytes = guest_bytes;
    config.queue_size = 256;
    let cx = sim.cx("vballoon", 0);
    let world = World::new(&cx, &config, page_size, HOST_FEATURES_ALL, Endian::Little, true);
    let vb = world.vb.clone().expect("probe");
    let mut group = c.benchmark_group("balloon");
    group.throughput(Throughput::Elements(2 * MOVED_BALLOON_PAGES as u64));
    let name = if lockdep { "virtqueue-lockdep" } else { "virtqueue" };
    group.bench_function(BenchmarkId::new(name, label), |b| {
        b.iter(|| {
            while (vb.num_pages(&cx) as usize) < MOVED_BALLOON_PAGES {
                vb.fill_balloon(&cx, ROUND);
            }
            while vb.num_pages(&cx) > 0 {
                vb.leak_balloon(&cx, ROUND);
            }
        })
    });
    group.finish();
    vb.remove(&cx);
}

fn balloon(c: &mut Criterion) {
    for (bytes, size_label) in [(1u64 << 30, "1GiB"), (16u64 << 30, "16GiB")] {
        for (page_size, page_label) in [(PAGE_SIZE_4K, "4KiB"), (PAGE_SIZE_64K, "64KiB")] {
            let label = format!("{size_label}/{page_label}");
            native(c, bytes, page_size, &label);
            model(c, bytes, page_size, &label, false);
        }
    }
    model(c, 1 << 30, PAGE_SIZE_4K, "1GiB/4KiB", true);
    campaign_mix(c);
}

/// The campaign's own mix: seeds `0..CASE_SEEDS` of `ksim fuzz balloon`'s fixed preset, each
/// case as a campaign runs it (`run_case`: reference, incremental and whole invariant checks,
/// lockdep, the trace hashed). Throughput in operations.
const CASE_SEEDS: u64 = 20;

/// What the fuzz mix moves per operation, counted once by applying the same cases by hand: balloon
/// pages through the virtqueue (the host's inflate and deflate PFN counts, in guest pages) and
/// pages allocated or freed by the tasks (an OOM kill frees what the task held).
#[derive(Default)]
struct Moved {
    ops: u64,
    host_pfns: u64,
    balloon_pages: u64,
    task_pages: u64,
}

fn moved_per_case(config: &BalloonConfig, seed: u64, ops: &[Op], moved: &mut Moved) {
    let sim = Sim::new(BalloonSubject::sim_config(config, seed).trace(TraceMode::HashOnly));
    sim.trace().confine_to_this_thread();
    let mut subject = BalloonSubject::new(&sim, config);
    let tasks = config.tasks.max(1);
    let mut held = vec![0u64; tasks];
    for op in ops {
        let (inflated, deflated) = subject.world.host.traffic();
        let outcome = subject.apply(&sim, op);
        let (inflated_after, deflated_after) = subject.world.host.traffic();
        let pfns = inflated_after - inflated + deflated_after - deflated;
        let ppp = subject.world.pages.page_size() / PAGE_SIZE_4K;
        moved.host_pfns += pfns;
        moved.balloon_pages += pfns / ppp;
        moved.task_pages += match (op, outcome) {
            (Op::Alloc { task, .. }, Outcome::Alloc { got, killed, task_pages }) => {
                let slot = &mut held[usize::from(*task) % tasks];
                let freed = if killed { *slot + got } else { 0 };
                *slot = task_pages;
                got + freed
            }
            (Op::Free { task, .. }, Outcome::Free { freed, task_pages }) => {
                held[usize::from(*task) % tasks] = task_pages;
                freed
            }
            _ => 0,
        };
        moved.ops += 1;
    }
}

fn campaign_mix(c: &mut Criterion) {
    let config = BalloonConfig::preset("fixed").expect("preset");
    let cases: Vec<(u64, Vec<Op>)> =
        (0..CASE_SEEDS).map(|seed| (seed, check::generate::<BalloonSubject>(&config, seed, 200))).collect();
    let mut moved = Moved::default();
    cases.iter().for_each(|(seed, ops)| moved_per_case(&config, *seed, ops, &mut moved));
    let per_op = |n: u64| n as f64 / moved.ops as f64;
    eprintln!(
        "balloon fuzz mix, seeds 0..{CASE_SEEDS}: {} operations; per operation {:.1} host PFNs, {:.1} balloon pages, {:.1} task pages",
        moved.ops,
        per_op(moved.host_pfns),
        per_op(moved.balloon_pages),
        per_op(moved.task_pages)
    );
    let options = RunOptions { trace: TraceMode::HashOnly, ..RunOptions::default() };
    let mut group = c.benchmark_group("balloon");
    group.throughput(Throughput::Elements(moved.ops));
    group.bench_function(BenchmarkId::new("fuzz-cases", format!("seeds-0-{CASE_SEEDS}")), |b| {
        b.iter(|| {
            for (seed, ops) in &cases {
                let report = check::run_case::<BalloonSubject>(&config, *seed, ops, &options);
                assert!(report.passed(), "seed {seed}: the fixed balloon failed");
            }
        })
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(10).warm_up_time(std::time::Duration::from_millis(300)).measurement_time(std::time::Duration::from_secs(1));
    targets = balloon
}
criterion_main!(benches);
