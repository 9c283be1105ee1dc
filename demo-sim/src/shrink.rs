//! The demo cache's shrinker: `scan_objects` of a `struct shrinker` (include/linux/shrinker.h), as
//! `mb_cache_shrink_scan` is for fs/mbcache.c: walk the LRU from its head and free up to `count`
//! unused entries. Both of the demo's bugs live here, each behind its fix.
//!
//! What a newcomer puts here: the kernel paths that differ between versions, with the fix as an
//! `if self.fixes.on(FIX)` at the exact place the upstream commit changed the code, the old code in
//! the other branch, and a comment saying what goes wrong there.

use std::collections::BTreeMap;

use sim_core::Cx;

use crate::cache::{DemoCache, TableSlot};
use crate::fixes::{LRU_LOCK_ORDER, SHRINK_SKIPS_USED};
use crate::lru::Lru;

impl DemoCache {
    /// The shrinker's scan (as `mb_cache_shrink_scan`): frees up to `count` entries from the LRU
    /// head, and returns how many it freed.
    pub(crate) fn shrink_scan(&self, cx: &Cx, count: u32) -> u32 {
        if self.fixes.on(LRU_LOCK_ORDER) {
            let mut table = self.table.lock(cx);
            let mut lru = self.lru.lock(cx);
            self.scan(cx, &mut table, &mut lru, count)
        } else {
            // The bug: the LRU lock first, then the cache lock, while insert and get take the cache
            // lock first. Two tasks doing both can deadlock (ABBA); lockdep reports the cycle the
            // first time both orders have been seen, even in a run that did not deadlock.
            let mut lru = self.lru.lock(cx);
            let mut table = self.table.lock(cx);
            self.scan(cx, &mut table, &mut lru, count)
        }
    }

    /// The walk itself, with both locks held.
    fn scan(&self, cx: &Cx, table: &mut BTreeMap<u8, TableSlot>, lru: &mut Lru, count: u32) -> u32 {
        let mut freed = 0u32;
        let mut position = 0;
        while position < lru.len() && freed < count {
            let key = lru.at(position);
            let used = table.get(&key).map_or(0, |slot| slot.used);
            if used > 0 && self.fixes.on(SHRINK_SKIPS_USED) {
                cx.sim().mark("shrink-skipped-used");
                position += 1;
                continue;
            }
            // Without SHRINK_SKIPS_USED an entry in use is freed here: its holder's put reads it
            // after the free.
            lru.remove_at(position);
            if let Some(slot) = table.remove(&key) {
                let _ = self.objects.free(cx, slot.handle);
                cx.note(format!("shrink frees key {key} (used {used})"));
                freed += 1;
                cx.sim().mark("shrink-freed");
            }
        }
        freed
    }
}
