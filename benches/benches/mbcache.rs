//! mbcache-sim against a fair native baseline: the same data structure in plain Rust (entries in
//! a `Vec`, intrusive doubly linked block chains, index chains and LRU by index, the same 2.6
//! `hash_long` and the same bucket counts), so both walk the same chains, and the same work per
//! call: each get, find and release takes the cache's one lock (a `parking_lot` mutex standing
//! for `mb_cache_spinlock`), as the kernel does; on caches of 1k to 1M entries: get + release,
//! insert (alloc + insert + free), find_first + find_next.
//!
//! The model runs as the checkers run it (lockdep on, trace hashed but not stored), with
//! `bucket_bits` growing with the cache; get + release also runs on a second model built with
//! `SimConfig::without_lockdep()` (row `mbcache-sim-lockdep-off`, and a figure on the per-node
//! line), which separates the checking instrumentation's share of the gap from the model's data
//! structures' (lockdep on stays the headline figure, as campaigns run) (2^bits about n/4). The 2.6 `hash_long` multiplier spreads
//! one device's sequential block numbers over only 8192 buckets (see `hash::tests`), so block
//! chains grow with n beyond 32k entries, in the model and the baseline alike; each size prints
//! the mean block-chain nodes a get visits, so the cost per visited node can be compared across
//! sizes, and a line with get + release per call and per visited node for both, timed outside
//! criterion over the same walk (on-CPU time, the median of several samples taken in turn). The
//! native get and release are calls of their own, as the model's are, each taking the lock.

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use ksim_benches::medians_per_call;
use mbcache_sim::Fixes;
use mbcache_sim::{bdev_address, hash_long, CacheRef, Registry, Waits};
use mbcache_sim::{ENTRY_HEADER_SIZE, ENTRY_INDEX_SIZE};
use parking_lot::Mutex;
use sim_core::lockdep::ReportMode;
use sim_core::trace::TraceMode;
use sim_core::{Cx, Sim, SimConfig};

const SIZES: [u64; 4] = [1_000, 10_000, 100_000, 1_000_000];
const KEYS: u64 = 1024;
const NIL: u32 = u32::MAX;

/// A `struct list_head` by index: `next`/`prev` of one list an entry is on.
#[derive(Clone, Copy)]
struct Link {
    next: u32,
    prev: u32,
}

const UNLINKED: Link = Link { next: NIL, prev: NIL };

#[derive(Clone, Copy)]
struct NativeEntry {
    bdev: u64,
    block: u64,
    key: u32,
    used: u32,
    lru: Link,
    block_list: Link,
    index_list: Link,
}

/// Which of an entry's hash-chain links a list uses (the LRU has functions of its own).
#[derive(Clone, Copy)]
enum List {
    Block,
    Index,
}

/// Native mbcache: the model's chains, hashes and LRU, without locks, slab or checks.
struct Native {
    bits: u32,
    entries: Vec<NativeEntry>,
    free: Vec<u32>,
    block_heads: Vec<u32>,
    index_heads: Vec<u32>,
    lru_head: u32,
    lru_tail: u32,
}

impl Native {
    fn new(bits: u32) -> Native {
        let buckets = 1usize << bits;
        Native {
            bits,
            entries: Vec::new(),
            free: Vec::new(),
            block_heads: vec![NIL; buckets],
            index_heads: vec![NIL; buckets],
            lru_head: NIL,
            lru_tail: NIL,
        }
    }

    fn link(&mut self, at: u32, list: List) -> &mut Link {
        let entry = &mut self.entries[at as usize];
        match list {
            List::Block => &mut entry.block_list,
            List::Index => &mut entry.index_list,
        }
    }

    /// `list_add` at the head of a hash chain.
    fn push_head(&mut self, at: u32, list: List, bucket: usize) {
        let heads = if matches!(list, List::Block) { &mut self.block_heads } else { &mut self.index_heads };
        let old = heads[bucket];
        heads[bucket] = at;
        *self.link(at, list) = Link { next: old, prev: NIL };
        if old != NIL {
            self.link(old, list).prev = at;
        }
    }

    /// `list_del` from a hash chain.
    fn unlink_chain(&mut self, at: u32, list: List, bucket: usize) {
        let Link { next, prev } = *self.link(at, list);
        if prev == NIL {
            let heads =
                if matches!(list, List::Block) { &mut self.block_heads } else { &mut self.index_heads };
            heads[bucket] = next;
        } else {
            self.link(prev, list).next = next;
        }
        if next != NIL {
            self.link(next, list).prev = prev;
        }
        *self.link(at, list) = UNLINKED;
    }

    fn lru_unlink(&mut self, at: u32) {
        let Link { next, prev } = self.entries[at as usize].lru;
        match prev {
            NIL => self.lru_head = next,
            p => self.entries[p as usize].lru.next = next,
        }
        match next {
            NIL => self.lru_tail = prev,
            n => self.entries[n as usize].lru.prev = prev,
        }
        self.entries[at as usize].lru = UNLINKED;
    }

    fn lru_push_tail(&mut self, at: u32) {
        self.entries[at as usize].lru = Link { next: NIL, prev: self.lru_tail };
        match self.lru_tail {
            NIL => self.lru_head = at,
            t => self.entries[t as usize].lru.next = at,
        }
        self.lru_tail = at;
    }

    fn block_bucket(&self, bdev: u64, block: u64) -> usize {
        hash_long(bdev.wrapping_add(block & 0xffff_ffff), self.bits) as usize
    }

    /// alloc + insert: a new entry hashed under (bdev, block) and `key`, held once.
    fn insert(&mut self, bdev: u64, block: u64, key: u32) -> u32 {
        let entry = NativeEntry {
            bdev,
            block,
            key,
            used: 1,
            lru: UNLINKED,
            block_list: UNLINKED,
            index_list: UNLINKED,
        };
        let at = match self.free.pop() {
            Some(at) => {
                self.entries[at as usize] = entry;
                at
            }
            None => {
                self.entries.push(entry);
                (self.entries.len() - 1) as u32
            }
        };
        let bucket = self.block_bucket(bdev, block);
        self.push_head(at, List::Block, bucket);
        self.push_head(at, List::Index, hash_long(u64::from(key), self.bits) as usize);
        at
    }

    /// free: unhash and release the last use.
    fn free(&mut self, at: u32) {
        let NativeEntry { bdev, block, key, .. } = self.entries[at as usize];
        let bucket = self.block_bucket(bdev, block);
        self.unlink_chain(at, List::Block, bucket);
        self.unlink_chain(at, List::Index, hash_long(u64::from(key), self.bits) as usize);
        self.free.push(at);
    }

    fn take(&mut self, at: u32) {
        if self.entries[at as usize].used == 0 {
            self.lru_unlink(at);
        }
        self.entries[at as usize].used += 1;
    }

    /// get: walks the block chain; returns the entry and the nodes visited.
    fn get(&mut self, bdev: u64, block: u64) -> (Option<u32>, u32) {
        let mut at = self.block_heads[self.block_bucket(bdev, block)];
        let mut visited = 0;
        while at != NIL {
            visited += 1;
            let entry = &self.entries[at as usize];
            if entry.bdev == bdev && entry.block == block {
                self.take(at);
                return (Some(at), visited);
            }
            at = entry.block_list.next;
        }
        (None, visited)
    }

    fn release(&mut self, at: u32) {
        self.entries[at as usize].used -= 1;
        if self.entries[at as usize].used == 0 {
            self.lru_push_tail(at);
        }
    }

    /// find_first (`after` NIL) or find_next (after `after`) along the key's index chain.
    fn find(&mut self, bdev: u64, key: u32, after: u32) -> Option<u32> {
        let mut at = match after {
            NIL => self.index_heads[hash_long(u64::from(key), self.bits) as usize],
            after => self.entries[after as usize].index_list.next,
        };
        while at != NIL {
            let entry = &self.entries[at as usize];
            if entry.bdev == bdev && entry.key == key {
                self.take(at);
                return Some(at);
            }
            at = entry.index_list.next;
        }
        None
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

/// The model with `n` entries, with lockdep on (as campaigns run it) or off.
fn model(n: u64, lockdep: bool) -> Model {
    let config = SimConfig::new(1).lockdep(ReportMode::Collect).trace(TraceMode::HashOnly);
    let sim = Sim::new(if lockdep { config } else { config.without_lockdep() });
    // As `check::run_case` runs an op-level case: one thread drives the world.
    sim.trace().confine_to_this_thread();
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

/// `mb_cache_entry_get` natively: the lock taken, the block chain walked, a use taken, the lock
/// dropped. Not inlined, as the model's `Registry::get` is not: each side makes one call per
/// kernel call (and a profile counts them).
#[inline(never)]
fn native_get(base: &Mutex<Native>, bdev: u64, block: u64) -> u32 {
    base.lock().get(bdev, block).0.expect("hit")
}

/// `mb_cache_entry_release` natively: the lock taken, the use dropped (the last one puts the
/// entry on the LRU tail), the lock dropped. Not inlined, as [`native_get`].
#[inline(never)]
fn native_release(base: &Mutex<Native>, at: u32) {
    base.lock().release(at);
}

fn native(n: u64) -> Native {
    let mut native = Native::new(bucket_bits(n));
    for block in 0..n {
        let at = native.insert(bdev_address(0), block, (block % KEYS) as u32);
        native.release(at);
    }
    native
}

/// The mean block-chain nodes a get of the benchmark's blocks visits.
fn mean_visited(native: &mut Native, n: u64) -> f64 {
    let samples = n.min(10_000);
    let mut total = 0u64;
    for i in 0..samples {
        let (found, visited) = native.get(bdev_address(0), (i * 7919) % n);
        native.release(found.expect("hit"));
        total += u64::from(visited);
    }
    total as f64 / samples as f64
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

/// On-CPU samples per figure of the per-node line (the median is printed; see
/// [`medians_per_call`]).
const SAMPLES: usize = 5;

/// Prints get + release per call and per visited block-chain node, model (lockdep on, then
/// off) and native, over the benchmark's own walk of blocks (each row its own walk from block
/// 0): the median of [`SAMPLES`] on-CPU samples each, taken in turn.
fn per_node(n: u64, models: [&Model; 2], base: &Mutex<Native>, visited: f64) {
    let mut walks = [0u64; 3];
    let [on_walk, off_walk, native_walk] = &mut walks;
    let model_row = |m: &Model, next: &mut u64| {
        *next = (*next + 7919) % n;
        let handle = m.registry.get(&m.cx, m.cache, bdev_address(0), *next).expect("get").expect("hit");
        m.registry.release(&m.cx, black_box(handle)).expect("release");
    };
    let [model_ns, bare_ns, native_ns] = medians_per_call(
        SAMPLES,
        [&mut || model_row(models[0], on_walk), &mut || model_row(models[1], off_walk), &mut || {
            *native_walk = (*native_walk + 7919) % n;
            let at = native_get(base, bdev_address(0), *native_walk);
            native_release(base, black_box(at));
        }],
    );
    println!(
        "mbcache n={n} get+release (cpu time, median of {SAMPLES}): model {model_ns:.0} ns, native \
         {native_ns:.1} ns ({:.1}x); lockdep off {bare_ns:.0} ns ({:.1}x); per visited node \
         ({visited:.1}): model {:.1} ns, lockdep off {:.1} ns, native {:.1} ns",
        model_ns / native_ns,
        bare_ns / native_ns,
        model_ns / visited,
        bare_ns / visited,
        native_ns / visited,
    );
}

/// `pairs` get + release pairs on `m` over the benchmark's walk of blocks, and nothing else: what
/// a profile of the pair counts (`MBCACHE_PROFILE_PAIRS`, below; callgrind's
/// `--toggle-collect` names this function). Not inlined, so a profile finds it.
#[inline(never)]
fn profile_pairs(m: &Model, n: u64, pairs: u64) {
    let mut next = 0u64;
    for _ in 0..pairs {
        next = (next + 7919) % n;
        let handle = m.registry.get(&m.cx, m.cache, bdev_address(0), next).expect("get").expect("hit");
        m.registry.release(&m.cx, black_box(handle)).expect("release");
    }
}

fn benches(c: &mut Criterion) {
    // `MBCACHE_PROFILE_PAIRS=N`: build each size's model (lockdep on), run N get + release pairs
    // in `profile_pairs` and stop (no criterion, no native): for
    // `valgrind --tool=callgrind --toggle-collect='*profile_pairs*'`, instructions per pair by
    // function.
    if let Some(pairs) = std::env::var("MBCACHE_PROFILE_PAIRS").ok().and_then(|v| v.parse().ok()) {
        for n in ksim_benches::sizes_from_env("MBCACHE_BENCH_SIZES", &SIZES) {
            profile_pairs(&model(n, true), n, pairs);
        }
        return;
    }
    for n in ksim_benches::sizes_from_env("MBCACHE_BENCH_SIZES", &SIZES) {
        let m = model(n, true);
        let bare = model(n, false);
        let mut base = native(n);
        let visited = mean_visited(&mut base, n);
        println!("mbcache n={n}: a get visits {visited:.1} block-chain nodes on average");
        let base = Mutex::new(base);
        per_node(n, [&m, &bare], &base, visited);
        let mut next = 0u64;
        let mut step = move || {
            next = (next + 7919) % n;
            next
        };
        get_release(c, n, [&m, &bare], &base, &mut step);
        drop(bare);
        insert(c, n, &m, &base);
        find_first_next(c, n, &m, &base, &mut step);
    }
}

/// `mb_cache_entry_get` + release of a present block, against the native walk of the same chain;
/// the model with lockdep on (`mbcache-sim`), then off (`mbcache-sim-lockdep-off`).
fn get_release(
    c: &mut Criterion,
    n: u64,
    models: [&Model; 2],
    base: &Mutex<Native>,
    step: &mut impl FnMut() -> u64,
) {
    let mut group = configure(c, "mbcache/get_release", n);
    for (name, m) in ["mbcache-sim", "mbcache-sim-lockdep-off"].into_iter().zip(models) {
        group.bench_with_input(BenchmarkId::new(name, n), &n, |b, _| {
            b.iter(|| {
                let handle =
                    m.registry.get(&m.cx, m.cache, bdev_address(0), step()).expect("get").expect("hit");
                m.registry.release(&m.cx, black_box(handle)).expect("release");
            })
        });
    }
    group.bench_with_input(BenchmarkId::new("native", n), &n, |b, _| {
        b.iter(|| {
            let at = native_get(base, bdev_address(0), step());
            native_release(base, black_box(at));
        })
    });
    group.finish();
}

/// alloc + insert + free of one entry, against the native insert and free.
fn insert(c: &mut Criterion, n: u64, m: &Model, base: &Mutex<Native>) {
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
            let at = base.lock().insert(bdev_address(1), n, 7);
            base.lock().free(black_box(at));
        })
    });
    group.finish();
}

/// find_first + find_next by index key, against the native walk of the same index chain.
fn find_first_next(
    c: &mut Criterion,
    n: u64,
    m: &Model,
    base: &Mutex<Native>,
    step: &mut impl FnMut() -> u64,
) {
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
            let first = base.lock().find(bdev_address(0), key, NIL).expect("hit");
            let mut locked = base.lock();
            let second = locked.find(bdev_address(0), key, first);
            locked.release(first);
            drop(locked);
            if let Some(second) = second {
                base.lock().release(black_box(second));
            }
        })
    });
    group.finish();
}

criterion_group!(mbcache, benches);
criterion_main!(mbcache);
