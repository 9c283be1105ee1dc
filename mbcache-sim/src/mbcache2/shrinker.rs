//! The shrinker half of fs/mbcache.c: `mb_cache_count()`, `mb_cache_shrink()`,
//! `mb_cache_scan()` and the shrink work's `mb_cache_shrink_worker()`.
//!
//! `mb_cache_shrink()` walks the LRU from its head under `c_list_lock`. A referenced entry (and,
//! from 58318914186c on, one somebody uses) loses its referenced bit and goes to the tail; any
//! other entry leaves the LRU, and with the list lock dropped, its chain (under the bucket's bit
//! lock, where 58318914186c checks again that nobody took a reference); the LRU's reference is
//! dropped last, which frees the entry if nobody else holds it. From 307af6c87937 the test is a
//! `cmpxchg` of the count from one (the cache's) to zero, and the entry is freed at once.
//! The e_referenced bug (fixed by 918b7306edac) is the swapped `list_move_tail` arguments:
//! moving the list head in front of the entry leaves the entry first, so the next step reclaims
//! it.

use sim_core::list;
use sim_core::sync::atomic::Ordering;
use sim_core::Cx;

use super::fixes::{AUTO_DELETE, DONT_RECLAIM_USED, REFERENCED_TO_TAIL};
use super::mbcache::{
    lru_add_tail, lru_del_init, CList, CacheHandle, EntryHandle, MbCache, MbCacheEntry, MbcacheModule,
    MBE_REFERENCED_B,
};
use super::workqueue::Dequeued;

/// The finding reported when the shrinker reclaims an entry it just gave a second chance.
pub(crate) const SECOND_CHANCE_LOST: sim_core::ViolationKind =
    sim_core::ViolationKind::finding("mbcache2-second-chance-lost");

/// `SHRINK_DIVISOR`: the shrink work reclaims `c_max_entries / SHRINK_DIVISOR` entries.
pub(crate) const SHRINK_DIVISOR: u64 = 16;

impl MbcacheModule {
    /// `mb_cache_count()`: the shrinker's `count_objects`, read without the lock.
    pub(crate) fn mb_cache_count(&self, cache: &MbCache) -> u64 {
        cache.c_entry_count.load(Ordering::Relaxed)
    }

    /// `mb_cache_scan()`: the shrinker's `scan_objects`.
    pub(crate) fn mb_cache_scan(&self, cx: &Cx, cache: &MbCache, nr_to_scan: u64) -> u64 {
        self.mb_cache_shrink(cx, cache, nr_to_scan)
    }

    /// `mb_cache_shrink()`: scans up to `nr_to_scan` LRU entries from the head and returns how
    /// many it freed.
    pub(crate) fn mb_cache_shrink(&self, cx: &Cx, cache: &MbCache, nr_to_scan: u64) -> u64 {
        self.mb_cache_shrink_steps(cx, ScanCache::held(cache), nr_to_scan).1
    }

    /// `mb_cache_shrink()`, also returning each step as the threaded judge reads it: the entry at
    /// the LRU's head then, and whether it left the cache (unhashed and off the LRU) or was kept
    /// (moved to the tail). Which entries a scan takes depends on what overlapping calls hold,
    /// so the judge is told rather than left to guess; the steps are checker state.
    ///
    /// `scan` is how the scan reaches its cache (see [`ScanCache`]): the shrink work's, which
    /// holds no reference, makes each of its accesses through the slab's checked lookup, so a
    /// destroy that freed the cache under it (d227786ab111's race with a kworker running the
    /// item) is the slab's use-after-free report at the scan's next access; the scan stops.
    pub(crate) fn mb_cache_shrink_steps(
        &self,
        cx: &Cx,
        scan: ScanCache<'_>,
        mut nr_to_scan: u64,
    ) -> (Vec<ScanStep>, u64) {
        let (mut steps, mut shrunk) = (Vec::new(), 0);
        // Checker state: the entry the previous step gave a second chance, and the LRU's length
        // then (the lock is held from that step to this one, so nothing moved in between).
        let mut chance: Option<(EntryHandle, u64)> = None;
        let Some(cache) = scan.at(self, cx) else { return (steps, shrunk) };
        let mut clist = self.list_lock(cx, cache);
        while nr_to_scan > 0 {
            nr_to_scan -= 1;
            // Each step reads the LRU after schedule points (the lock, the entries' atomics).
            if scan.at(self, cx).is_none() {
                return (steps, shrunk);
            }
            let head = clist.head;
            let Ok(first) = list::next(&mut clist.arena.mem(cx), head, "mb_cache_shrink") else { break };
            if first == head {
                break;
            }
            let Some(handle) = clist.owners.get(first.index() as usize).copied().flatten() else { break };
            let Some(entry) = self.entry(cx, handle) else { break };
            let (key, value) = (entry.key(), entry.value());
            if self.second_chance(cx, &mut clist, entry, first) {
                chance = Some((handle, clist.c_entry_count));
                steps.push(ScanStep { key, value, evicted: false });
                continue;
            }
            if let Some((given, listed)) = chance.take() {
                second_chance_lost(cx, entry, given == handle && listed > 1, listed);
            }
            lru_del_init(cx, &mut clist, entry);
            clist.c_entry_count = clist.c_entry_count.saturating_sub(1);
            cache.c_entry_count.store(clist.c_entry_count, Ordering::Relaxed);
            drop(clist);
            let Some(reclaimed) = self.reclaim(cx, scan, handle) else { return (steps, shrunk) };
            if reclaimed.freed {
                shrunk += 1;
                cx.sim().mark("shrink-freed");
            }
            steps.push(ScanStep { key, value, evicted: !reclaimed.kept });
            let Some(cache) = scan.at(self, cx) else { return (steps, shrunk) };
            clist = self.list_lock(cx, cache);
        }
        (steps, shrunk)
    }

    /// The first entry's keep-or-reclaim test, `c_list_lock` held: a referenced entry (and from
    /// 58318914186c one somebody uses; from 307af6c87937 one whose count the `cmpxchg` from one to
    /// zero does not claim) loses its referenced bit and goes to the tail (true). False: it is
    /// the shrinker's, already off nobody's hands (and from 307af6c87937 at count zero).
    fn second_chance(&self, cx: &Cx, clist: &mut CList, entry: &MbCacheEntry, first: list::NodeRef) -> bool {
        let referenced = entry.e_flags().test(cx, self.fixes, MBE_REFERENCED_B);
        let used = if self.fixes.on(AUTO_DELETE) {
            !referenced && entry.e_refcnt.compare_exchange(1, 0, Ordering::AcqRel, Ordering::Relaxed).is_err()
        } else {
            self.fixes.on(DONT_RECLAIM_USED) && entry.e_refcnt.load(Ordering::Relaxed) > 2
        };
        if !(referenced || used) {
            return false;
        }
        entry.e_flags().assign(cx, self.fixes, MBE_REFERENCED_B, false);
        let head = clist.head;
        let mut mem = clist.arena.mem(cx);
        let moved = if self.fixes.on(REFERENCED_TO_TAIL) {
            list::list_move_tail(&mut mem, first, head)
        } else {
            // The bug: `list_move_tail(&cache->c_list, &entry->e_list)`. The list head goes in
            // front of the entry, where it already was: the entry stays first.
            list::list_move_tail(&mut mem, head, first)
        };
        cx.sim().mark(if used { "shrink-kept-used" } else { "shrink-second-chance" });
        moved.is_ok()
    }

    /// The reclaim of an entry `mb_cache_shrink()` took off the LRU, with `c_list_lock` dropped:
    /// from 307af6c87937 `__mb_cache_entry_free()`; before, under the bucket's lock, the entry is
    /// unhashed and the hash's reference dropped, then the LRU's reference is put. From
    /// 58318914186c the bucket lock is where the decision is reliable (no reference is taken but
    /// by a hash lookup), so an entry found used there goes back on the LRU instead. Each access
    /// to the cache (its table, its list, its count) goes through `scan`; None: the shrink
    /// work's cache was freed under it (reported), and the scan stops.
    fn reclaim(&self, cx: &Cx, scan: ScanCache<'_>, handle: EntryHandle) -> Option<Reclaimed> {
        if self.fixes.on(AUTO_DELETE) {
            self.entry_free(cx, scan.at(self, cx)?, handle);
            return Some(Reclaimed { freed: true, kept: false });
        }
        let Some(entry) = self.entry(cx, handle) else {
            return Some(Reclaimed { freed: false, kept: false });
        };
        let table_of = scan.at(self, cx)?;
        let bucket = table_of.bucket(entry.key());
        let guard = bucket.lock(cx);
        scan.at(self, cx)?;
        if self.fixes.on(DONT_RECLAIM_USED) && entry.e_refcnt.load(Ordering::Relaxed) > 2 {
            bucket.unlock(guard);
            let mut clist = self.list_lock(cx, scan.at(self, cx)?);
            let cache = scan.at(self, cx)?;
            lru_add_tail(cx, &mut clist, entry, handle);
            clist.c_entry_count += 1;
            cache.c_entry_count.store(clist.c_entry_count, Ordering::Relaxed);
            cx.sim().mark("shrink-rechecked-used");
            return Some(Reclaimed { freed: false, kept: true });
        }
        if entry.e_hashed().load(Ordering::Relaxed) {
            table_of.chain_written();
            bucket.del_init(cx, |node| node.entry == handle);
            entry.e_hashed().store(false, Ordering::Relaxed);
            entry.e_refcnt.fetch_sub(1, Ordering::Relaxed);
        }
        bucket.unlock(guard);
        let freed = self.mb_cache_entry_put(cx, scan.at(self, cx)?, handle);
        if !freed {
            cx.sim().mark("shrink-unhashed-held");
        }
        Some(Reclaimed { freed, kept: false })
    }

    /// `mb_cache_shrink_worker()`: the shrink work, run by a kworker; reaches its cache through
    /// the work item (a freed cache is the slab's use-after-free report). Its scan's steps
    /// (see [`MbcacheModule::mb_cache_shrink_steps`]) and how many entries it freed.
    pub(crate) fn mb_cache_shrink_worker(&self, cx: &Cx, work: CacheHandle) -> (Vec<ScanStep>, u64) {
        let Ok(cache) = self.caches.get(cx, work) else {
            cx.sim().mark("shrink-work-on-freed-cache");
            return (Vec::new(), 0);
        };
        cx.sim().mark("shrink-work-ran");
        let scan = ScanCache { cache: &cache, work: Some(work) };
        self.mb_cache_shrink_steps(cx, scan, cache.c_max_entries / SHRINK_DIVISOR)
    }

    /// A kworker's loop: runs every queued work item; returns how many entries they freed.
    pub(crate) fn run_workqueue(&self, cx: &Cx) -> u64 {
        let mut freed = 0;
        loop {
            match self.run_one_work(cx) {
                WorkRun::Idle => return freed,
                WorkRun::Deferred => {}
                WorkRun::Ran(runs) => freed += runs.iter().map(|run| run.1).sum::<u64>(),
            }
        }
    }

    /// A kworker's `process_one_work()` of the worklist's first item: nothing when the worklist
    /// is empty, a hand-over when another kworker is executing the item, else each run's scan
    /// steps and count: the first, then one more for each time another kworker handed the item
    /// over during a run (non-reentrancy, see `workqueue.rs`). One item, not the whole queue,
    /// so the call takes one item off the queue at one instant.
    pub(crate) fn run_one_work(&self, cx: &Cx) -> WorkRun {
        let work = match self.workqueue.dequeue(cx) {
            Dequeued::Idle => return WorkRun::Idle,
            Dequeued::Deferred => return WorkRun::Deferred,
            Dequeued::Run(work) => work,
        };
        let mut runs = vec![self.mb_cache_shrink_worker(cx, work)];
        while let Some(work) = self.workqueue.finish(cx, work) {
            runs.push(self.mb_cache_shrink_worker(cx, work));
        }
        WorkRun::Ran(runs)
    }
}

/// The cache a scan works on, as the scan reaches it. The shrinker and the sync shrink run on
/// a cache their caller keeps alive (`unregister_shrinker()` waits for a scan; a create holds
/// the mount): [`ScanCache::held`]. The shrink work holds no reference: it reaches its cache
/// through the work item (`container_of()`), so each access it makes is the slab's checked
/// lookup of the work's handle, a freed cache its use-after-free report. The `Arc` the worker
/// took keeps the model's memory; the lookup is what the kernel's dereference is.
#[derive(Clone, Copy)]
pub(crate) struct ScanCache<'a> {
    cache: &'a MbCache,
    /// The shrink work's cache handle; None for a held cache.
    work: Option<CacheHandle>,
}

impl<'a> ScanCache<'a> {
    /// A cache the scan's caller keeps alive.
    pub(crate) fn held(cache: &'a MbCache) -> Self {
        ScanCache { cache, work: None }
    }

    /// `cache->...`, one access: the cache, or None when the shrink work's cache was freed
    /// (the slab's report, and the mark saying it was a running scan's).
    #[inline]
    fn at(self, mb: &MbcacheModule, cx: &Cx) -> Option<&'a MbCache> {
        if let Some(work) = self.work {
            if mb.caches.get(cx, work).is_err() {
                cx.sim().mark("shrink-work-cache-freed-under-it");
                return None;
            }
        }
        Some(self.cache)
    }
}

/// What one kworker's `process_one_work()` did.
#[derive(Debug)]
pub(crate) enum WorkRun {
    /// Nothing was pending.
    Idle,
    /// The item was executing on another kworker, which runs it again.
    Deferred,
    /// Each run of the item: its scan's steps and the entries it freed.
    Ran(Vec<(Vec<ScanStep>, u64)>),
}

/// One step of a scan: the entry at the LRU's head, and whether it left the cache.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ScanStep {
    /// The entry's key.
    pub key: u32,
    /// The entry's value (the block).
    pub value: u64,
    /// Unhashed and taken off the LRU (false: kept, moved to the tail).
    pub evicted: bool,
}

/// What the reclaim of an entry the scan took off the LRU did.
struct Reclaimed {
    /// The last reference was put: the entry is freed.
    freed: bool,
    /// Found used under the bucket's lock and put back on the LRU (58318914186c).
    kept: bool,
}

/// The finding a lost second chance is: the shrinker reclaims, in the step right after it cleared
/// the entry's `e_referenced` and moved it to the tail, the same entry, although other entries
/// were on the LRU to come first (918b7306edac's bug; `lost` says whether it happened).
fn second_chance_lost(cx: &Cx, entry: &MbCacheEntry, lost: bool, listed: u64) {
    if lost {
        let message = format!(
            "mb_cache_shrink reclaimed entry key {} value {} in the step after giving it a second chance, \
             with {listed} entries on the LRU: the referenced entry was not moved to the tail",
            entry.key(),
            entry.value()
        );
        cx.sim().report(Some(cx), sim_core::Violation::new(SECOND_CHANCE_LOST, message));
    }
}

#[cfg(test)]
mod tests {
    use sim_core::lockdep::ReportMode;
    use sim_core::trace::{EventKind, TraceMode};
    use sim_core::{Sim, SimConfig};

    use super::super::fixes::{Fixes, AUTO_DELETE, PRESET_4_10};
    use super::super::mbcache::{lru_del_init, C_HASH_CLASS, C_LIST_LOCK_CLASS};
    use super::*;

    const REPLAY: &str = "replay: cargo test -p mbcache-sim --lib mbcache2::shrinker (no randomness)";

    fn sim() -> Sim {
        Sim::new(SimConfig::new(0).lockdep(ReportMode::Collect).trace(TraceMode::Full))
    }

    fn kinds(sim: &Sim) -> Vec<String> {
        sim.violations().iter().map(|v| v.kind.to_string()).collect()
    }

    /// The put-back path of a reclaim (58318914186c, before 307af6c87937): an entry a user holds,
    /// taken off the LRU by the scan. `work`: reached as the shrink work reaches its cache.
    fn put_back(freed_under_it: bool) -> (Sim, Option<Reclaimed>, u64) {
        let sim = sim();
        let cx = sim.cx("kworker", 0);
        let mb = MbcacheModule::new(Fixes::all().without(AUTO_DELETE), 0);
        let (handle, cache) = mb.mb_cache_create(&cx, 2).expect("create the cache");
        mb.mb_cache_entry_create(&cx, handle, &cache, 7, 70, true).expect("create the entry");
        let held = mb.mb_cache_entry_get(&cx, &cache, 7, 70).expect("hashed");
        {
            let mut clist = mb.list_lock(&cx, &cache);
            assert!(lru_del_init(&cx, &mut clist, mb.entry(&cx, held).expect("live")));
            clist.c_entry_count -= 1;
        }
        if freed_under_it {
            let _ = mb.caches.free(&cx, handle);
        }
        let reclaimed = mb.reclaim(&cx, ScanCache { cache: &cache, work: Some(handle) }, held);
        let listed = mb.list_lock(&cx, &cache).c_entry_count;
        (sim, reclaimed, listed)
    }

    #[test]
    fn the_works_put_back_on_a_freed_cache_is_a_use_after_free_and_writes_nothing() {
        let (sim, reclaimed, listed) = put_back(false);
        assert!(reclaimed.is_some_and(|r| r.kept && !r.freed), "{REPLAY}");
        assert_eq!((listed, kinds(&sim)), (1, vec![]), "the used entry goes back on the LRU; {REPLAY}");
        let (sim, reclaimed, listed) = put_back(true);
        assert!(reclaimed.is_none(), "the scan stops; {REPLAY}");
        assert_eq!(kinds(&sim), ["use-after-free"], "{REPLAY}");
        assert_eq!(listed, 0, "nothing written to the freed cache's LRU; {REPLAY}");
    }

    #[test]
    fn mb_cache_destroy_takes_no_lock_for_its_walk() {
        for fixes in [Fixes::parse(Some(PRESET_4_10), &[]).expect("4.10"), Fixes::all()] {
            let sim = sim();
            let cx = sim.cx("umount", 0);
            let mb = MbcacheModule::new(fixes, 0);
            let (handle, cache) = mb.mb_cache_create(&cx, 2).expect("create the cache");
            for key in 0..5 {
                mb.mb_cache_entry_create(&cx, handle, &cache, key, u64::from(key), true).expect("create");
            }
            drop(cache);
            let before = sim.trace().events().len();
            mb.mb_cache_destroy(&cx, handle);
            let taken: Vec<String> = sim.trace().events()[before..]
                .iter()
                .filter_map(|event| match &event.kind {
                    EventKind::Acquired { class, .. } => Some(class.to_string()),
                    _ => None,
                })
                .collect();
            assert!(
                !taken.iter().any(|class| class == C_LIST_LOCK_CLASS),
                "{fixes:?}: destroy took {taken:?}; {REPLAY}"
            );
            let bucket_locks = taken.iter().filter(|class| *class == C_HASH_CLASS).count();
            // From 307af6c87937 each put frees its entry through `__mb_cache_entry_free()`,
            // which takes the bucket's lock; before, the walk unhashes unlocked.
            let expected = if fixes.on(AUTO_DELETE) { 5 } else { 0 };
            assert_eq!(bucket_locks, expected, "{fixes:?}: {taken:?}; {REPLAY}");
            assert_eq!(mb.entries.live(), 0, "{fixes:?}: every entry freed; {REPLAY}");
            assert_eq!(kinds(&sim), Vec::<String>::new(), "{fixes:?}; {REPLAY}");
        }
    }
}
