//! Balloon pages inflated and deflated per second through the virtqueue (driver fill/leak rounds
//! of 256 PFNs, the host consuming the split ring synchronously), for 1 GiB and 16 GiB guests
//! with 4 KiB and 64 KiB pages, against a native baseline that only moves the PFN arrays (free
//! list -> pfns[256] -> the host's list, and back). Each iteration inflates and then deflates
//! 64 MiB, so the guest ends as it began.

use std::hint::black_box;

use balloon_sim::Endian;
use balloon_sim::HOST_FEATURES_ALL;
use balloon_sim::{BalloonConfig, World};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
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

fn model(c: &mut Criterion, guest_bytes: u64, page_size: u64, label: &str) {
    let sim = Sim::new(SimConfig::new(1).without_lockdep().trace(TraceMode::HashOnly));
    let mut config = BalloonConfig::preset("fixed").expect("preset");
    config.memory_bytes = guest_bytes;
    config.queue_size = 256;
    let cx = sim.cx("vballoon", 0);
    let world = World::new(&cx, &config, page_size, HOST_FEATURES_ALL, Endian::Little, true);
    let vb = world.vb.clone().expect("probe");
    let mut group = c.benchmark_group("balloon");
    group.throughput(Throughput::Elements(2 * MOVED_BALLOON_PAGES as u64));
    group.bench_function(BenchmarkId::new("virtqueue", label), |b| {
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
            model(c, bytes, page_size, &label);
        }
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(10).warm_up_time(std::time::Duration::from_millis(300)).measurement_time(std::time::Duration::from_secs(1));
    targets = balloon
}
criterion_main!(benches);
