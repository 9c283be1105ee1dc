//! mbcache-sim against a native baseline doing the same logical work (a HashMap from
//! (device, block) to an entry, a HashMap from key to entries, and an LRU list), on caches of
//! 1k to 1M entries: get + release, insert (alloc + insert + free), find_first + find_next.
//!
//! The model runs as the checkers run it (lockdep on, trace hashed but not stored), with
//! `bucket_bits` growing with the cache (2^bits about n/4; ext2's own 2^6 buckets would make every
//! chain n/64 long). Even so, get and insert slow down as the cache grows: the 2.6 `hash_long`
//! multiplier spreads one device's sequential block numbers over only 8192 buckets (see
//! `hash::tests`), so the block chains grow with n as they did in the kernel; the index chains
//! (1024 keys) do not, and find_first/find_next stay flat.

use std::collections::HashMap;
use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use mbcache_sim::Fixes;
use mbcache_sim::{bdev_address, CacheRef, Registry, Waits};
use mbcache_sim::{ENTRY_HEADER_SIZE, ENTRY_INDEX_SIZE};
use sim_core::lockdep::ReportMode;
use sim_core::trace::TraceMode;
use sim_core::{Cx, Sim, SimConfig};

const SIZES: [u64; 4] = [1_000, 10_000, 100_000, 1_000_000];
const KEYS: u64 = 1024;

/// Native baseline: entries in a slab `Vec`, an intrusive doubly linked LRU by index.
struct Native {
    by_block: HashMap<u64, usize>,
    by_key: HashMap<u32, Vec<usize>>,
    entries: Vec<NativeEntry>,
    lru_head: Option<usize>,
    lru_tail: Option<usize>,
}

#[derive(Clone, Copy)]
struct NativeEntry {
    block: u64,
    key: u32,
    used: u32,
    prev: Option<usize>,
    next: Option<usize>,
    on_lru: bool,
}

impl Native {
    fn new() -> Native {
        Native {
            by_block: HashMap::new(),
            by_key: HashMap::new(),
            entries: Vec::new(),
            lru_head: None,
            lru_tail: None,
        }
    }

    fn unlink(&mut self, at: usize) {
        let NativeEntry { prev, next, .. } = self.entries[at];
        match prev {
            Some(p) => self.entries[p].next = next,
            None => self.lru_head = next,
        }
        match next {
            Some(n) => self.entries[n].prev = prev,
            None => self.lru_tail = prev,
        }
        self.entries[at].on_lru = false;
    }

    fn push_tail(&mut self, at: usize) {
        self.entries[at].prev = self.lru_tail;
        self.entries[at].next = None;
        match self.lru_tail {
            Some(t) => self.entries[t].next = Some(at),
            None => self.lru_head = Some(at),
        }
        self.lru_tail = Some(at);
        self.entries[at].on_lru = true;
    }

    fn insert(&mut self, block: u64, key: u32) -> Option<usize> {
        if self.by_block.contains_key(&block) {
            return None;
        }
        let at = self.entries.len();
        self.entries.push(NativeEntry { block, key, used: 1, prev: None, next: None, on_lru: false });
        self.by_block.insert(block, at);
        self.by_key.entry(key).or_default().push(at);
        Some(at)
    }

    fn take(&mut self, at: usize) {
        if self.entries[at].on_lru {
            self.unlink(at);
        }
        self.entries[at].used += 1;
    }

    fn get(&mut self, block: u64) -> Option<usize> {
        let at = *self.by_block.get(&block)?;
        self.take(at);
        Some(at)
    }

    fn release(&mut self, at: usize) {
        self.entries[at].used -= 1;
        if self.entries[at].used == 0 {
            self.push_tail(at);
        }
    }

    fn remove_last(&mut self) {
        let at = self.entries.len() - 1;
        let NativeEntry { block, key, on_lru, .. } = self.entries[at];
        if on_lru {
            self.unlink(at);
        }
        self.by_block.remove(&block);
        if let Some(list) = self.by_key.get_mut(&key) {
            // The entry was the last pushed for its key.
            if list.last() == Some(&at) {
                list.pop();
            }
        }
        self.entries.pop();
    }

    fn find(&mut self, key: u32, after: usize) -> Option<usize> {
        let at = *self.by_key.get(&key)?.get(after)?;
        self.take(at);
        Some(at)
    }
}

struct Model {
    _sim: Sim,
    registry: Registry,
    cx: Cx,
    cache: CacheRef,
}

fn bucket_bits(n: u64) -> u32 {
    (64 - n.leading_zeros()).saturating_sub(2)
}

fn model(n: u64) -> Model {
    let sim = Sim::new(SimConfig::new(1).lockdep(ReportMode::Collect).trace(TraceMode::HashOnly));
    let registry = Registry::new(&sim, Fixes::all(), Waits::WouldBlock);
    let cx = sim.cx("bench", 0);
    let cache = registry
        .create(&cx, "ext2_xattr", None, ENTRY_HEADER_SIZE + ENTRY_INDEX_SIZE, 1, bucket_bits(n))
        .expect("create");
    for block in 0..n {
        let entry = registry.alloc(&cx, cache).expect("alloc");
        registry.insert(&cx, &entry, bdev_address(0), block, &[(block % KEYS) as u32]).expect("insert");
        registry.release(&cx, entry).expect("release");
    }
    Model { _sim: sim, registry, cx, cache }
}

fn native(n: u64) -> Native {
    let mut native = Native::new();
    for block in 0..n {
        let at = native.insert(block, (block % KEYS) as u32).expect("new block");
        native.release(at);
    }
    native
}

fn configure<'a>(
    c: &'a mut Criterion,
    name: &str,
    n: u64,
) -> criterion::BenchmarkGroup<'a, criterion::measurement::WallTime> {
    let mut group = c.benchmark_group(name);
    group.sample_size(10).warm_up_time(Duration::from_millis(300));
    group.measurement_time(if n >= 1_000_000 { Duration::from_secs(2) } else { Duration::from_secs(1) });
    group
}

fn benches(c: &mut Criterion) {
    for n in SIZES {
        let m = model(n);
        let mut base = native(n);
        let mut next = 0u64;
        let mut step = move || {
            next = (next + 7919) % n;
            next
        };
        get_release(c, n, &m, &mut base, &mut step);
        insert(c, n, &m, &mut base);
        find_first_next(c, n, &m, &mut base, &mut step);
    }
}

/// `mb_cache_entry_get` + release of a present block, against a native lookup.
fn get_release(c: &mut Criterion, n: u64, m: &Model, base: &mut Native, step: &mut impl FnMut() -> u64) {
    let mut group = configure(c, "mbcache/get_release", n);
    group.bench_with_input(BenchmarkId::new("mbcache-sim", n), &n, |b, _| {
        b.iter(|| {
            let handle = m.registry.get(&m.cx, m.cache, bdev_address(0), step()).expect("get").expect("hit");
            m.registry.release(&m.cx, black_box(handle)).expect("release");
        })
    });
    group.bench_with_input(BenchmarkId::new("native", n), &n, |b, _| {
        b.iter(|| {
            let at = base.get(step()).expect("hit");
            base.release(black_box(at));
        })
    });
    group.finish();
}

/// alloc + insert + free of one entry, against a native insert and remove.
fn insert(c: &mut Criterion, n: u64, m: &Model, base: &mut Native) {
    let mut group = configure(c, "mbcache/insert", n);
    group.bench_with_input(BenchmarkId::new("mbcache-sim", n), &n, |b, _| {
        b.iter(|| {
            let entry = m.registry.alloc(&m.cx, m.cache).expect("alloc");
            m.registry.insert(&m.cx, &entry, bdev_address(1), n, &[7]).expect("insert");
            m.registry.free(&m.cx, black_box(entry)).expect("free");
        })
    });
    group.bench_with_input(BenchmarkId::new("native", n), &n, |b, _| {
        b.iter(|| {
            black_box(base.insert(u64::MAX, 7).expect("new"));
            base.remove_last();
        })
    });
    group.finish();
}

/// find_first + find_next by index key, against a native index lookup.
fn find_first_next(c: &mut Criterion, n: u64, m: &Model, base: &mut Native, step: &mut impl FnMut() -> u64) {
    let mut group = configure(c, "mbcache/find_first_next", n);
    group.bench_with_input(BenchmarkId::new("mbcache-sim", n), &n, |b, _| {
        b.iter(|| {
            let key = (step() % KEYS) as u32;
            let first =
                m.registry.find_first(&m.cx, m.cache, 0, bdev_address(0), key).expect("find").expect("hit");
            if let Some(second) = m.registry.find_next(&m.cx, first, 0, bdev_address(0), key).expect("next") {
                m.registry.release(&m.cx, black_box(second)).expect("release");
            }
        })
    });
    group.bench_with_input(BenchmarkId::new("native", n), &n, |b, _| {
        b.iter(|| {
            let key = (step() % KEYS) as u32;
            let first = base.find(key, 0).expect("hit");
            let second = base.find(key, 1);
            base.release(first);
            if let Some(second) = second {
                base.release(black_box(second));
            }
        })
    });
    group.finish();
}

criterion_group!(mbcache, benches);
criterion_main!(mbcache);
