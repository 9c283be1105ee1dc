//! mbcache2 (fs/mbcache.c, 4.6 on) against a fair native baseline: the same table of
//! `1 << bucket_bits` chains, the same `hash_32`, a bit spinlock per chain, nodes holding key,
//! value and the entry's index, entries in a flat `Vec` with an atomic `e_refcnt`. Both do
//! `mb_cache_entry_get` (lock the chain, walk it comparing key and value, take a reference,
//! unlock) and then `mb_cache_entry_put`, on entries picked by a fixed stride.
//!
//! The table grows with the cache as ext4's limit keeps it (`c_max_entries` is 16 per bucket),
//! so a get walks about 8 nodes at every size; cost per visited node is the time over the nodes
//! walked, reported alongside. The model's rows run in a campaign's world: lockdep on, the trace
//! hashed only (`TraceMode::HashOnly`) and confined to the bench's thread; a line per size, timed
//! outside criterion in on-CPU time (so it holds on a machine shared with builds), gives get +
//! put for the model with lockdep off, with it on (as `ksim fuzz` runs it) and for the native
//! cache.
//! `MBCACHE2_BENCH_SIZES=1000,1000000` runs those sizes only (a profile of one size).

use std::hint::black_box;
use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use ksim_benches::medians_per_call;
use mbcache_sim::{Mbcache2FixSet, Mbcache2World};
use sim_core::trace::TraceMode;
use sim_core::{Sim, SimConfig};

const SIZES: [u32; 4] = [1_000, 10_000, 100_000, 1_000_000];
/// Entries visited per iteration step: a stride coprime with every size.
const STRIDE: u32 = 7_919;

/// `hash_32` with GOLDEN_RATIO_32, as the model uses it.
fn hash_32(val: u32, bits: u32) -> usize {
    (val.wrapping_mul(0x61C8_8647) >> (32 - bits)) as usize
}

/// The bucket bits that give about 16 entries per chain (ext4's limit ratio) for `n` entries.
fn bucket_bits(n: u32) -> u32 {
    (n / 16).max(2).ilog2()
}

/// One chain: its bit-lock word and its nodes (key, value, entry index), newest first.
struct NativeChain {
    lock: AtomicUsize,
    nodes: Vec<(u32, u64, u32)>,
}

/// The native cache.
struct Native {
    bits: u32,
    chains: Vec<NativeChain>,
    refcnt: Vec<AtomicU32>,
}

impl Native {
    fn new(n: u32) -> Native {
        let bits = bucket_bits(n);
        let mut chains: Vec<NativeChain> = (0..1usize << bits)
            .map(|_| NativeChain { lock: AtomicUsize::new(0), nodes: Vec::new() })
            .collect();
        for i in 0..n {
            chains[hash_32(i, bits)].nodes.insert(0, (i, u64::from(i), i));
        }
        Native { bits, chains, refcnt: (0..n).map(|_| AtomicU32::new(2)).collect() }
    }

    /// Nodes a get of `key` walks.
    fn walk_len(&self, key: u32) -> usize {
        let chain = &self.chains[hash_32(key, self.bits)];
        chain.nodes.iter().position(|n| n.0 == key).map_or(chain.nodes.len(), |at| at + 1)
    }

    /// Lock, walk, reference, unlock; then the put. Not inlined: a call per get and put, as the
    /// model makes one per kernel call.
    #[inline(never)]
    fn get_put(&self, key: u32, value: u64) -> u32 {
        let chain = &self.chains[hash_32(key, self.bits)];
        while chain.lock.fetch_or(1, Ordering::Acquire) & 1 != 0 {
            std::hint::spin_loop();
        }
        let found = chain.nodes.iter().find(|n| n.0 == key && n.1 == value).map(|n| n.2);
        if let Some(at) = found {
            self.refcnt[at as usize].fetch_add(1, Ordering::Relaxed);
        }
        chain.lock.fetch_and(!1, Ordering::Release);
        let at = found.expect("existing entry");
        self.refcnt[at as usize].fetch_sub(1, Ordering::AcqRel);
        at
    }
}

/// On-CPU samples per figure of the line (the median is printed; see [`medians_per_call`]).
const SAMPLES: usize = 5;

/// get + put per call and per node walked (`walked`, the mean) in on-CPU time: the model with
/// lockdep off, with it on, and native, the median of [`SAMPLES`] samples each, taken in turn
/// (each row its own walk of keys from 0).
fn cpu_line(n: u32, native: &Native, walked: f64) {
    let sims = [SimConfig::new(0).without_lockdep(), SimConfig::new(0)]
        .map(|config| Sim::new(config.trace(TraceMode::HashOnly)));
    let [off_world, on_world] = [0, 1].map(|at| (model(&sims[at], n), sims[at].cx("getxattr", 0)));
    let model_row = |(world, cx): &(Mbcache2World, sim_core::Cx), i: &mut u32| {
        *i = i.wrapping_add(STRIDE) % n;
        let entry = world.get(cx, *i, u64::from(*i)).expect("existing entry");
        black_box(world.put(cx, entry));
    };
    let mut keys = [0u32; 3];
    let [off_key, on_key, native_key] = &mut keys;
    let [off, on, native_ns] = medians_per_call(
        SAMPLES,
        [&mut || model_row(&off_world, off_key), &mut || model_row(&on_world, on_key), &mut || {
            *native_key = native_key.wrapping_add(STRIDE) % n;
            black_box(native.get_put(*native_key, u64::from(*native_key)));
        }],
    );
    println!(
        "mbcache2 n={n} get+put (cpu time, median of {SAMPLES}): model {off:.0} ns ({:.1}x), lockdep on \
         {on:.0} ns ({:.1}x), native {native_ns:.1} ns; per node walked ({walked:.1}): model {:.1} ns, \
         lockdep on {:.1} ns, native {:.1} ns",
        off / native_ns,
        on / native_ns,
        off / walked,
        on / walked,
        native_ns / walked,
    );
}

/// The model with `n` entries, keys and values `0..n`.
fn model(sim: &Sim, n: u32) -> Mbcache2World {
    let cx = sim.cx("setup", 0);
    let world = Mbcache2World::new(&cx, Mbcache2FixSet::all(), bucket_bits(n), 1, 2);
    for i in 0..n {
        world.create(&cx, i, u64::from(i), true).expect("create");
    }
    world
}

fn get_put(c: &mut Criterion) {
    let mut group = c.benchmark_group("mbcache2_get_put");
    for n in ksim_benches::sizes_from_env("MBCACHE2_BENCH_SIZES", &SIZES) {
        let native = Native::new(n);
        let walked: usize = (0..1000u32).map(|i| native.walk_len(i.wrapping_mul(STRIDE) % n)).sum();
        let walked = walked as f64 / 1000.0;
        println!("mbcache2 n={n}: bucket_bits {}, mean nodes walked per get {walked:.2}", bucket_bits(n));
        cpu_line(n, &native, walked);
        let mut i = 0u32;
        group.bench_with_input(BenchmarkId::new("native", n), &n, |b, &n| {
            b.iter(|| {
                i = i.wrapping_add(STRIDE) % n;
                black_box(native.get_put(i, u64::from(i)))
            })
        });
        drop(native);
        // A campaign's world: lockdep on, the trace hashed and confined to this thread.
        let sim = Sim::new(SimConfig::new(0).trace(TraceMode::HashOnly));
        sim.trace().confine_to_this_thread();
        let world = model(&sim, n);
        let cx = sim.cx("getxattr", 0);
        let mut i = 0u32;
        group.bench_with_input(BenchmarkId::new("model", n), &n, |b, &n| {
            b.iter(|| {
                i = i.wrapping_add(STRIDE) % n;
                let entry = world.get(&cx, i, u64::from(i)).expect("existing entry");
                black_box(world.put(&cx, entry))
            })
        });
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(10).warm_up_time(Duration::from_millis(300)).measurement_time(Duration::from_secs(1));
    targets = get_put
}
criterion_main!(benches);
