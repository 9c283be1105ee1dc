//! The cost of sim-core's memory checks: a `kmem_cache_alloc`/`kmem_cache_free` round trip with
//! the `fs_reclaim` check (GFP_KERNEL) and without it (GFP_NOFS, and lockdep off), against a
//! native `Box`; and a `struct page` reference and page-lock round trip. The allocating task
//! holds one mutex, as an allocation under a filesystem lock does, so lockdep has a dependency
//! to look up. `cargo bench -p ksim-benches --bench mm`.

use criterion::{criterion_group, criterion_main, Criterion};
use sim_core::mm::{Gfp, KmemCache, PageAllocConfig, PageAllocator, PAGE_SIZE_4K};
use sim_core::trace::TraceMode;
use sim_core::{Mutex, Sim, SimConfig};
use std::hint::black_box;

fn sim(lockdep: bool) -> Sim {
    let config = SimConfig::new(1).trace(TraceMode::HashOnly);
    Sim::new(if lockdep { config } else { config.without_lockdep() })
}

fn gfp_allocation(c: &mut Criterion) {
    let mut group = c.benchmark_group("kmem_cache_alloc-free-under-a-mutex");
    group.bench_function("native-box", |b| b.iter(|| drop(black_box(Box::new(black_box(7u64))))));
    let cases = [
        ("GFP_KERNEL-fs_reclaim-check-on", true, Gfp::GFP_KERNEL),
        ("GFP_NOFS-fs_reclaim-check-off", true, Gfp::GFP_NOFS),
        ("GFP_KERNEL-lockdep-off", false, Gfp::GFP_KERNEL),
    ];
    for (name, lockdep, gfp) in cases {
        let sim = sim(lockdep);
        let cx = sim.cx("bench", 0);
        let cache = KmemCache::new("bench", 64);
        let outer = Mutex::new("outer", ());
        let _held = outer.lock(&cx);
        group.bench_function(name, |b| {
            b.iter(|| {
                let handle = cache.alloc(&cx, black_box(gfp), 7u64).expect("no fault plan");
                cache.free(&cx, handle).expect("live");
            })
        });
    }
    group.finish();
}

fn page_state(c: &mut Criterion) {
    let mut group = c.benchmark_group("struct-page");
    let sim = sim(true);
    let cx = sim.cx("bench", 0);
    let config = PageAllocConfig { page_size: PAGE_SIZE_4K, zone_pages: vec![4, 4], limit_pages: 8 };
    let pages = PageAllocator::new(&config).expect("valid");
    let pfn = pages.alloc_page(&cx, Gfp::GFP_KERNEL, "bench").expect("a page");
    group.bench_function("get_page_unless_zero-put_page", |b| {
        b.iter(|| {
            assert!(pages.get_page_unless_zero(&cx, black_box(pfn)));
            pages.put_page(&cx, pfn).expect("held");
        })
    });
    group.bench_function("trylock_page-unlock_page", |b| {
        b.iter(|| {
            assert!(pages.trylock_page(&cx, black_box(pfn)));
            pages.unlock_page(&cx, pfn).expect("locked");
        })
    });
    group.finish();
}

criterion_group!(benches, gfp_allocation, page_state);
criterion_main!(benches);
