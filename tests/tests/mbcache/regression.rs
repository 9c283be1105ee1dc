//! Regression tests for the seed's bugs, scripted step by step.

use mbcache_sim::Fixes;
use mbcache_sim::{bdev_address, Handle, MbError, Registry, Waits};
use mbcache_sim::{ENTRY_HEADER_SIZE, ENTRY_INDEX_SIZE};
use sim_core::lockdep::ReportMode;
use sim_core::{Sim, SimConfig};

fn sim() -> Sim {
    Sim::new(SimConfig::new(7).lockdep(ReportMode::Collect))
}

/// 1. Task A: `mb_cache_entry_find_first(cache, 0, bdev, key)` returns entry E (A holds it).
/// 2. Task B: `mb_cache_entry_get(cache, bdev, E's block)` returns E too (B holds it).
/// 3. Task B: `mb_cache_entry_free(E)`: unhashes E, `list_del` poisons its `o_list`.
/// 4. Task A: `mb_cache_entry_find_next(E, 0, bdev, key)` reads `E->e_indexes[0].o_list.next`.
///
/// Symptom: A dereferences LIST_POISON1 and oopses. Fix: "Race in ext[23] xattr sharing code"
/// (2.6.11): `get` waits for exclusive use, so step 2 sleeps until A is done.
#[test]
fn find_next_after_another_task_freed_the_entry_follows_a_poisoned_link() {
    let sim = sim();
    let reader = sim.cx("A", 0);
    let writer = sim.cx("B", 1);
    let registry = Registry::new(&sim, Fixes::none(), Waits::WouldBlock);
    let cache = registry
        .create(&reader, "ext2_xattr", None, ENTRY_HEADER_SIZE + ENTRY_INDEX_SIZE, 1, 1)
        .expect("create");
    let bdev = bdev_address(0);
    let entry = registry.alloc(&writer, cache).expect("alloc");
    registry.insert(&writer, &entry, bdev, 5, &[9]).expect("insert");
    registry.release(&writer, entry).expect("release");

    let found = registry.find_first(&reader, cache, 0, bdev, 9).expect("find_first").expect("an entry");
    let held = registry.get(&writer, cache, bdev, 5).expect("get").expect("the same entry");
    assert_eq!(found.entry_id(), held.entry_id());
    registry.free(&writer, held).expect("free");
    let walked = registry.find_next(&reader, found, 0, bdev, 9);
    assert!(matches!(walked, Err(MbError::Oops(ref v)) if v.kind == "list-poison"), "{walked:?}");
    assert_eq!(sim.violations()[0].kind, "list-poison");
}

#[test]
fn with_exclusive_get_the_freeing_get_waits_instead() {
    let sim = sim();
    let reader = sim.cx("A", 0);
    let writer = sim.cx("B", 1);
    let registry = Registry::new(&sim, Fixes::all(), Waits::WouldBlock);
    let cache = registry
        .create(&reader, "ext2_xattr", None, ENTRY_HEADER_SIZE + ENTRY_INDEX_SIZE, 1, 1)
        .expect("create");
    let bdev = bdev_address(0);
    let entry = registry.alloc(&writer, cache).expect("alloc");
    registry.insert(&writer, &entry, bdev, 5, &[9]).expect("insert");
    registry.release(&writer, entry).expect("release");
    let found = registry.find_first(&reader, cache, 0, bdev, 9).expect("find_first").expect("an entry");
    assert_eq!(registry.get(&writer, cache, bdev, 5), Err(MbError::WouldBlock));
    assert_eq!(registry.find_next(&reader, found, 0, bdev, 9), Ok(None));
    let held = registry.get(&writer, cache, bdev, 5).expect("get").expect("now free to take");
    registry.free(&writer, held).expect("free");
    assert!(sim.violations().is_empty(), "{:?}", sim.violations());
    registry.check_invariants(&writer).expect("invariants");
}

#[test]
fn using_a_handle_after_releasing_it_is_reported() {
    let sim = sim();
    let cx = sim.cx("fs", 0);
    let registry = Registry::new(&sim, Fixes::none(), Waits::WouldBlock);
    let cache = registry.create(&cx, "ext2_xattr", None, ENTRY_HEADER_SIZE, 0, 1).expect("create");
    let entry = registry.alloc(&cx, cache).expect("alloc");
    registry.insert(&cx, &entry, bdev_address(0), 1, &[]).expect("insert");
    let copy = entry.clone();
    registry.release(&cx, entry).expect("release");
    assert!(
        matches!(registry.release(&cx, copy), Err(MbError::Oops(ref v)) if v.kind == "use-after-release")
    );
    assert_eq!(sim.violations()[0].kind, "use-after-release");
}

#[test]
fn create_validates_entry_size_against_the_index_count() {
    let sim = sim();
    let cx = sim.cx("fs", 0);
    let registry = Registry::new(&sim, Fixes::none(), Waits::WouldBlock);
    let exact = ENTRY_HEADER_SIZE + 2 * ENTRY_INDEX_SIZE;
    assert_eq!(registry.create(&cx, "x", None, exact - 1, 2, 3), Err(sim_core::Errno::EINVAL));
    assert!(registry.create(&cx, "x", None, exact, 2, 3).is_ok());
}

#[test]
fn insert_of_a_hashed_block_is_ebusy_and_shrinker_zero_only_counts() {
    let sim = sim();
    let cx = sim.cx("fs", 0);
    let registry = Registry::new(&sim, Fixes::all(), Waits::WouldBlock);
    let cache =
        registry.create(&cx, "ext3_xattr", None, ENTRY_HEADER_SIZE + ENTRY_INDEX_SIZE, 1, 2).expect("create");
    let first = registry.alloc(&cx, cache).expect("alloc");
    registry.insert(&cx, &first, bdev_address(1), 3, &[1]).expect("insert");
    let second = registry.alloc(&cx, cache).expect("alloc");
    assert_eq!(
        registry.insert(&cx, &second, bdev_address(1), 3, &[2]),
        Err(MbError::Errno(sim_core::Errno::EBUSY))
    );
    registry.release(&cx, second).expect("release");
    registry.release(&cx, first).expect("release");
    let lru_before = registry.lru_serials(&cx).expect("lru");
    // 2.6.35 reports (count / 100) * vfs_cache_pressure: one entry reads as none.
    assert_eq!(registry.shrink_fn(&cx, 0, sim_core::mm::Gfp::GFP_KERNEL), Ok(0));
    assert_eq!(registry.lru_serials(&cx).expect("lru"), lru_before, "nr_to_scan 0 frees nothing");
    assert_eq!(registry.shrink_fn(&cx, 8, sim_core::mm::Gfp::GFP_KERNEL), Ok(0));
    assert_eq!(registry.entry_count(&cx, cache), Ok(0));
    registry.check_invariants(&cx).expect("invariants");
}

/// The kinds of the violations reported so far, in order.
fn kinds(sim: &Sim) -> Vec<String> {
    sim.violations().iter().map(|v| v.kind.to_string()).collect()
}

/// The one use after free reported: of the freed `struct mb_cache` (whose hash tables the model
/// keeps inside it), not of an entry, which `kmem_cache_destroy` left allocated.
fn assert_one_use_of_the_freed_cache(sim: &Sim, what: &str) {
    let uses: Vec<_> = sim.violations().into_iter().filter(|v| v.kind == "use-after-free").collect();
    assert_eq!(uses.len(), 1, "{what}: {uses:?}");
    assert!(uses[0].message.contains("size-128(mb_cache)"), "{what}: {}", uses[0].message);
}

/// A registry with `fixes` whose cache (1 index bit, no index) has one entry of block 1: with a
/// free callback that always refuses when `refusing`.
fn one_entry(sim: &Sim, fixes: Fixes, refusing: bool) -> (Registry, mbcache_sim::CacheRef, Handle) {
    use sim_core::fault::{FaultAttr, FaultKind, FaultPlan};
    if refusing {
        sim.set_faults(FaultPlan::with(
            FaultAttr::probability(100).kind(FaultKind::Call).site("mbcache:c_op.free"),
        ));
    }
    let cx = sim.cx("mount", 0);
    let registry = Registry::new(sim, fixes, Waits::WouldBlock);
    let free_op = refusing.then_some(mbcache_sim::FreeOp { fails_without_fs: false });
    let cache = registry.create(&cx, "ext2_xattr", free_op, ENTRY_HEADER_SIZE, 0, 1).expect("create");
    let entry = registry.alloc(&cx, cache).expect("alloc");
    registry.insert(&cx, &entry, bdev_address(0), 1, &[]).expect("insert");
    (registry, cache, entry)
}

/// `mb_cache_destroy()` forgets the cache's unused entries with GFP_KERNEL; a free callback that
/// refuses puts its entry back on the global LRU, which outlives the cache: destroy reports an
/// orphan and `kmem_cache_destroy` keeps the slab (a leak). The entry is valid memory: walking
/// the LRU, `mb_cache_shrink` of another device and the invariants read it without a report.
/// The next shrinker pass unlinks it (it is unhashed: no table is touched) and its
/// `__mb_cache_entry_forget()` reads `ce->e_cache->c_op`: that read is the use after free.
/// Latent in every version modelled (ext2 and ext3 register no callback).
#[test]
fn destroy_with_a_failing_free_callback_leaves_an_entry_the_shrinker_forgets_into_the_freed_cache() {
    let sim = sim();
    let (registry, cache, entry) = one_entry(&sim, Fixes::all(), true);
    let cx = sim.cx("rmmod", 0);
    let serial = entry.entry_id();
    registry.release(&cx, entry).expect("release");
    let destroyed = registry.destroy(&cx, cache).expect("destroy");
    assert_eq!(destroyed.orphans, 1);
    let marks = sim.marks();
    assert!(marks.contains("destroy: a free callback kept an entry"), "{marks:?}");
    assert!(marks.contains("destroy: entries outlive their cache"), "{marks:?}");
    assert_eq!(kinds(&sim), ["leak"]);
    // Only unlinked and relinked: no use after free yet.
    assert_eq!(registry.lru_serials(&cx), Ok(vec![serial]));
    registry.shrink(&cx, cache, bdev_address(1)).expect("another device's shrink reads e_bdev only");
    registry.check_invariants(&cx).expect("invariants");
    // The incremental check takes the orphan's LRU facts (it was relinked: logged) as the whole
    // check's LRU walk does, reading the entry and its neighbours, never its freed cache.
    registry.check_invariants_touched(&cx).expect("incremental invariants");
    assert_eq!(kinds(&sim), ["leak"], "a use after free before the kernel's access");
    let shrunk = registry.shrink_fn(&cx, 1, sim_core::mm::Gfp::GFP_KERNEL);
    assert!(matches!(shrunk, Err(MbError::Oops(ref v)) if v.kind == "use-after-free"), "{shrunk:?}");
    assert!(sim.marks().contains("entry freed by the shrinker"));
    assert_one_use_of_the_freed_cache(&sim, "the shrinker's forget");
    assert_eq!(registry.lru_serials(&cx), Ok(vec![]), "the shrinker took it off the LRU first");
}

/// `mb_cache_destroy()` with a handle still held: the entry is not on the LRU, so destroy cannot
/// free it; it reports it as an orphan and `kmem_cache_destroy` keeps the slab (a leak). The
/// entry stays hashed, its chain links into the freed hash table. The late release touches only
/// the entry and the LRU (it goes on the tail, hashed): no use after free. The shrinker's
/// `__mb_cache_entry_unhash()` then writes the freed table through those links: that write is
/// the use after free.
#[test]
fn destroy_with_a_handle_held_leaves_a_hashed_entry_whose_unhash_writes_the_freed_table() {
    let sim = sim();
    let (registry, cache, entry) = one_entry(&sim, Fixes::all(), false);
    let cx = sim.cx("umount", 0);
    let serial = entry.entry_id();
    let destroyed = registry.destroy(&cx, cache).expect("destroy");
    assert_eq!(destroyed.orphans, 1);
    assert!(sim.marks().contains("destroy: entries still held by handles"), "{:?}", sim.marks());
    assert_eq!(kinds(&sim), ["leak"]);
    registry.release(&cx, entry).expect("a late release touches only the entry and the LRU");
    assert_eq!(registry.lru_serials(&cx), Ok(vec![serial]));
    assert_eq!(kinds(&sim), ["leak"], "a use after free before the kernel's access");
    let shrunk = registry.shrink_fn(&cx, 1, sim_core::mm::Gfp::GFP_KERNEL);
    assert!(matches!(shrunk, Err(MbError::Oops(ref v)) if v.kind == "use-after-free"), "{shrunk:?}");
    // Unhash runs in the collect, under the lock: it fails before any entry is forgotten (the
    // mark is set only after the collect), so the use is unhash's write, not forget's read.
    assert!(!sim.marks().contains("entry freed by the shrinker"), "{:?}", sim.marks());
    assert_one_use_of_the_freed_cache(&sim, "the shrinker's unhash");
}

/// As above, but the holder took the entry out before the destroy (the 2.6.10 API): unhashed,
/// so the late release is its last use of an unhashed entry and forgets it, and the forget's
/// read of `ce->e_cache->c_op` is the use after free.
#[test]
fn destroy_with_a_taken_out_entry_held_makes_the_late_release_forget_into_the_freed_cache() {
    let sim = sim();
    let (registry, cache, entry) = one_entry(&sim, Fixes::none(), false);
    let cx = sim.cx("umount", 0);
    registry.takeout(&cx, &entry).expect("takeout");
    let destroyed = registry.destroy(&cx, cache).expect("destroy");
    assert_eq!(destroyed.orphans, 1);
    assert_eq!(kinds(&sim), ["leak"]);
    let released = registry.release(&cx, entry);
    assert!(matches!(released, Err(MbError::Oops(ref v)) if v.kind == "use-after-free"), "{released:?}");
    assert!(sim.marks().contains("last release of an unhashed entry frees it"));
    assert_one_use_of_the_freed_cache(&sim, "the release's forget");
}
