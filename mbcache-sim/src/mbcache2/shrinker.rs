//! The shrinker half of fs/mbcache.c: `mb_cache_count()`, `mb_cache_shrink()`,
//! `mb_cache_scan()` and the shrink work's `mb_cache_shrink_worker()`.
//!
//! `mb_cache_shrink()` walks the LRU from its head under `c_list_lock`. A referenced entry (and,
//! from 58318914186c on, one somebody uses) loses its referenced bit and goes to the tail; any
//! other entry leaves the LRU, and with the list lock dropped, its chain (under the bucket's bit
//! lock); the LRU's reference is dropped last, which frees the entry if nobody else holds it.
//! The e_referenced bug (fixed by 918b7306edac) is the swapped `list_move_tail` arguments:
//! moving the list head in front of the entry leaves the entry first, so the next step reclaims
//! it.

use sim_core::list;
use sim_core::sync::atomic::Ordering;
use sim_core::Cx;

use super::fixes::{DONT_RECLAIM_USED, REFERENCED_TO_TAIL};
use super::mbcache::{lru_del_init, CacheHandle, MbCache, MbcacheModule, MBE_REFERENCED_B};

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
    pub(crate) fn mb_cache_shrink(&self, cx: &Cx, cache: &MbCache, mut nr_to_scan: u64) -> u64 {
        let mut shrunk = 0;
        let mut clist = cache.c_list_lock.lock(cx);
        while nr_to_scan > 0 {
            nr_to_scan -= 1;
            let head = clist.head;
            let Ok(first) = list::next(&mut clist.arena.mem(cx), head, "mb_cache_shrink") else { break };
            if first == head {
                break;
            }
            let Some(handle) = clist.owners.get(first.index() as usize).copied().flatten() else { break };
            let Some(entry) = self.entry(cx, handle) else { break };
            let used = self.fixes.on(DONT_RECLAIM_USED) && entry.e_refcnt.load(Ordering::Relaxed) > 2;
            if entry.e_flags.test(cx, self.fixes, MBE_REFERENCED_B) || used {
                entry.e_flags.assign(cx, self.fixes, MBE_REFERENCED_B, false);
                let mut mem = clist.arena.mem(cx);
                let moved = if self.fixes.on(REFERENCED_TO_TAIL) {
                    list::list_move_tail(&mut mem, first, head)
                } else {
                    // The bug: `list_move_tail(&cache->c_list, &entry->e_list)`. The list head
                    // goes in front of the entry, where it already was: the entry stays first.
                    list::list_move_tail(&mut mem, head, first)
                };
                if moved.is_err() {
                    break;
                }
                cx.sim().mark(if used { "shrink-kept-used" } else { "shrink-second-chance" });
                continue;
            }
            lru_del_init(cx, &mut clist, &entry);
            clist.c_entry_count = clist.c_entry_count.saturating_sub(1);
            cache.c_entry_count.store(clist.c_entry_count, Ordering::Relaxed);
            drop(clist);
            let bucket = cache.bucket(entry.e_key);
            let guard = bucket.lock(cx);
            if entry.e_hashed.load(Ordering::Relaxed) {
                bucket.del_init(cx, |node| node.entry == handle);
                entry.e_hashed.store(false, Ordering::Relaxed);
                entry.e_refcnt.fetch_sub(1, Ordering::Relaxed);
            }
            bucket.unlock(guard);
            drop(entry);
            if self.mb_cache_entry_put(cx, cache, handle) {
                shrunk += 1;
                cx.sim().mark("shrink-freed");
            } else {
                cx.sim().mark("shrink-unhashed-held");
            }
            clist = cache.c_list_lock.lock(cx);
        }
        shrunk
    }

    /// `mb_cache_shrink_worker()`: the shrink work, run by a kworker; reaches its cache through
    /// the work item (a freed cache is the slab's use-after-free report).
    pub(crate) fn mb_cache_shrink_worker(&self, cx: &Cx, work: CacheHandle) -> u64 {
        let Ok(cache) = self.caches.get(cx, work) else {
            cx.sim().mark("shrink-work-on-freed-cache");
            return 0;
        };
        cx.sim().mark("shrink-work-ran");
        self.mb_cache_shrink(cx, &cache, cache.c_max_entries / SHRINK_DIVISOR)
    }

    /// A kworker's loop: runs every queued work item; returns how many entries they freed.
    pub(crate) fn run_workqueue(&self, cx: &Cx) -> u64 {
        let mut freed = 0;
        while let Some(work) = self.workqueue.dequeue(cx) {
            freed += self.mb_cache_shrink_worker(cx, work);
        }
        freed
    }
}
