//! Loom models of fs/mbcache.c on `mb_cache_spinlock`: every interleaving of two or three tasks
//! doing release, get and the shrinker, under a preemption bound of 2, from the ordinary test
//! build: `cargo test --workspace --test main -- mbcache::loom`.

use std::sync::atomic::{AtomicBool, Ordering};

use mbcache_sim::Fixes;
use mbcache_sim::{bdev_address, CacheRef, Registry, Waits};
use mbcache_sim::{ENTRY_HEADER_SIZE, ENTRY_INDEX_SIZE};
use sim_core::lockdep::ReportMode;
use sim_core::mm::Gfp;
use sim_core::sync::{thread, Arc};
use sim_core::{Sim, SimConfig};

use crate::core::loom_support::passes;

/// The preemption bound every model here states.
const PREEMPTION_BOUND: Option<usize> = Some(2);

fn world(fixes: Fixes) -> (Sim, Arc<Registry>, CacheRef) {
    let sim = Sim::new(SimConfig::new(1).cpus(4).lockdep(ReportMode::Collect));
    let registry = Arc::new(Registry::new(&sim, fixes, Waits::Sleep));
    let cx = sim.cx("setup", 0);
    let cache =
        registry.create(&cx, "ext2_xattr", None, ENTRY_HEADER_SIZE + ENTRY_INDEX_SIZE, 1, 1).expect("create");
    (sim, registry, cache)
}

/// One hashed entry for (device 0, `block`) with key 7, released onto the LRU.
fn hashed_entry(sim: &Sim, registry: &Registry, cache: CacheRef, block: u64) {
    let cx = sim.cx("setup", 0);
    let entry = registry.alloc(&cx, cache).expect("alloc");
    registry.insert(&cx, &entry, bdev_address(0), block, &[7]).expect("insert");
    registry.release(&cx, entry).expect("release");
}

#[test]
fn release_get_and_shrinker_never_lose_or_double_free_an_entry() {
    for fixes in [Fixes::none(), Fixes::all()] {
        passes(PREEMPTION_BOUND, move || {
            let (sim, registry, cache) = world(fixes);
            hashed_entry(&sim, &registry, cache, 1);
            let setup = sim.cx("setup", 0);
            let held = registry.get(&setup, cache, bdev_address(0), 1).expect("get").expect("entry");
            let releaser = {
                let registry = registry.clone();
                let cx = sim.cx("release", 1);
                thread::spawn(move || registry.release(&cx, held).expect("release"))
            };
            let shrinker = {
                let registry = registry.clone();
                let cx = sim.cx("kswapd", 2);
                thread::spawn(move || {
                    registry.shrink_fn(&cx, 1, Gfp::GFP_KERNEL).expect("shrink");
                })
            };
            let getter = sim.cx("getxattr", 3);
            if let Some(handle) = registry.get(&getter, cache, bdev_address(0), 1).expect("get") {
                registry.release(&getter, handle).expect("release");
            }
            releaser.join().expect("releaser");
            shrinker.join().expect("shrinker");
            assert!(sim.violations().is_empty(), "{:?}", sim.violations());
            registry.check_invariants(&setup).expect("invariants");
            let live = registry.entries_live(&setup, cache).expect("cache");
            assert_eq!(registry.entry_count(&setup, cache), Ok(live as i32));
        });
    }
}

#[test]
fn exclusive_get_waits_for_a_find_handle_and_is_woken_by_its_release() {
    passes(PREEMPTION_BOUND, || {
        let (sim, registry, cache) = world(Fixes::all());
        hashed_entry(&sim, &registry, cache, 1);
        let reader_cx = sim.cx("find", 1);
        let found =
            registry.find_first(&reader_cx, cache, 0, bdev_address(0), 7).expect("find").expect("entry");
        let reader = {
            let registry = registry.clone();
            thread::spawn(move || {
                assert_eq!(registry.find_next(&reader_cx, found, 0, bdev_address(0), 7), Ok(None));
            })
        };
        let writer = sim.cx("unlink", 2);
        let held = registry.get(&writer, cache, bdev_address(0), 1).expect("get").expect("entry");
        registry.free(&writer, held).expect("free");
        reader.join().expect("reader");
        assert!(sim.violations().is_empty(), "{:?}", sim.violations());
        registry.check_invariants(&writer).expect("invariants");
        assert_eq!(registry.entry_count(&writer, cache), Ok(0));
    });
}

/// 1. kswapd: `mb_cache_shrink_fn` moves the cache's last LRU entry to its own `free_list`,
///    unhashes it and drops `mb_cache_spinlock`.
/// 2. rmmod: `mb_cache_destroy` finds none of the cache's entries on the LRU, unlists the cache,
///    reports one orphan (`c_entry_count` is 1), destroys the slab and frees the cache.
/// 3. kswapd: `__mb_cache_entry_forget` reads `ce->e_cache->c_op` and frees into the destroyed slab.
///
/// Symptom: use after free of `struct mb_cache`. Unfixed in every version ksim models (mbcache
/// trusts its users to destroy a cache only when the shrinker cannot run); loom finds it.
#[test]
fn shrinker_racing_destroy_uses_the_freed_cache() {
    let found = std::sync::Arc::new(AtomicBool::new(false));
    let found_in = found.clone();
    let run = passes(PREEMPTION_BOUND, move || {
        let (sim, registry, cache) = world(Fixes::all());
        hashed_entry(&sim, &registry, cache, 1);
        let shrinker = {
            let registry = registry.clone();
            let cx = sim.cx("kswapd", 1);
            thread::spawn(move || {
                let _ = registry.shrink_fn(&cx, 1, Gfp::GFP_KERNEL);
            })
        };
        let rmmod = sim.cx("rmmod", 2);
        let _ = registry.destroy(&rmmod, cache);
        shrinker.join().expect("shrinker");
        if sim.violations().iter().any(|v| v.kind == "use-after-free") {
            found_in.store(true, Ordering::Relaxed);
        }
    });
    assert!(
        found.load(Ordering::Relaxed),
        "loom explored {} interleavings and never saw the shrinker use the destroyed cache",
        run.executions
    );
}

/// With `exclusive-get`: task B's get sleeps on an entry task A holds exclusively; A frees it
/// (unhashed, but not forgotten while B is queued). B wakes, finds it unhashed, returns NULL, and
/// its release is the last use, which frees the entry. Nothing leaks, nothing is used after free.
#[test]
fn get_that_slept_on_a_freed_entry_returns_none_and_frees_it() {
    let marks = std::sync::Arc::new(std::sync::Mutex::new(std::collections::BTreeSet::new()));
    let marks_in = marks.clone();
    passes(PREEMPTION_BOUND, move || {
        let (sim, registry, cache) = world(Fixes::all());
        hashed_entry(&sim, &registry, cache, 1);
        let a = sim.cx("unlink(A)", 1);
        let held = registry.get(&a, cache, bdev_address(0), 1).expect("get").expect("entry");
        let waiter = {
            let registry = registry.clone();
            let b = sim.cx("unlink(B)", 2);
            thread::spawn(move || {
                if let Some(handle) = registry.get(&b, cache, bdev_address(0), 1).expect("get") {
                    registry.free(&b, handle).expect("free");
                }
            })
        };
        registry.free(&a, held).expect("free");
        waiter.join().expect("waiter");
        assert!(sim.violations().is_empty(), "{:?}", sim.violations());
        registry.check_invariants(&a).expect("invariants");
        assert_eq!(registry.entry_count(&a, cache), Ok(0));
        assert_eq!(registry.entries_live(&a, cache), Ok(0));
        marks_in.lock().expect("marks").extend(sim.marks());
    });
    let marks = marks.lock().expect("marks");
    let mark = "get returned NULL for an entry freed while it waited";
    assert!(marks.contains(mark), "no interleaving reached {mark:?}: {marks:?}");
}

/// With `exclusive-get`: task A's find_first sleeps on an entry task B holds from a get (a reader
/// waits while a writer holds it); B frees the entry; A wakes, finds it unhashed and returns
/// -EAGAIN, which ext2 answers by starting its walk again. Some interleaving must take that path
/// (the mark says so), and none may leak or oops.
#[test]
fn find_that_slept_on_a_freed_entry_returns_eagain() {
    let marks = std::sync::Arc::new(std::sync::Mutex::new(std::collections::BTreeSet::new()));
    let marks_in = marks.clone();
    passes(PREEMPTION_BOUND, move || {
        let (sim, registry, cache) = world(Fixes::all());
        hashed_entry(&sim, &registry, cache, 1);
        let b = sim.cx("unlink(B)", 1);
        let held = registry.get(&b, cache, bdev_address(0), 1).expect("get").expect("entry");
        let finder = {
            let registry = registry.clone();
            let a = sim.cx("setxattr(A)", 2);
            thread::spawn(move || match registry.find_first(&a, cache, 0, bdev_address(0), 7) {
                Ok(Some(handle)) => registry.release(&a, handle).expect("release"),
                Ok(None) | Err(mbcache_sim::MbError::Errno(sim_core::Errno::EAGAIN)) => {}
                Err(other) => panic!("find_first: {other:?}"),
            })
        };
        registry.free(&b, held).expect("free");
        finder.join().expect("finder");
        assert!(sim.violations().is_empty(), "{:?}", sim.violations());
        assert_eq!(registry.entries_live(&b, cache), Ok(0));
        marks_in.lock().expect("marks").extend(sim.marks());
    });
    let marks = marks.lock().expect("marks");
    for mark in ["lookup slept on mb_cache_queue", "find returned EAGAIN for an entry freed while it waited"]
    {
        assert!(marks.contains(mark), "no interleaving reached {mark:?}: {marks:?}");
    }
}
