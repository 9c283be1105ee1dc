//! fs/mbcache.c's shrinking: the shrinker callback `mb_cache_shrink_fn` (nr_to_scan 0 only
//! counts) over the global LRU, and `mb_cache_shrink` of one device. Left out: the VM's
//! `shrink_slab` pacing (`DEFAULT_SEEKS` is recorded, not used).

use sim_core::mm::Gfp;
use sim_core::sync::atomic::Ordering;
use sim_core::trace::CallName;
use sim_core::Cx;

use crate::cache::CacheRef;
use crate::registry::{entry_of_lru, EntryRef, HeadId, Locked, MbError, Mem, Node, Registry};
use sim_core::list::{self, Oops};

/// The traced calls, their names hashed at compile time.
const SHRINK_FN: CallName = CallName::new("mb_cache_shrink_fn");
const SHRINK: CallName = CallName::new("mb_cache_shrink");

/// `sysctl_vfs_cache_pressure` at its default.
pub(crate) const SYSCTL_VFS_CACHE_PRESSURE: i32 = 100;

/// What the later 2.6 `mb_cache_shrink_fn()` returns for `count` entries:
/// `(count / 100) * sysctl_vfs_cache_pressure` (integer division first, so 99 entries read 0).
pub(crate) fn vfs_cache_pressure_scaled(count: i32) -> i32 {
    (count / 100).wrapping_mul(SYSCTL_VFS_CACHE_PRESSURE)
}

impl Registry {
    /// Moves the LRU entries `select` picks onto a fresh free list and unhashes them (the locked
    /// half of `mb_cache_shrink`, `mb_cache_destroy` and the shrinker). Returns the free list's
    /// members in order.
    pub(crate) fn collect(
        locked_global: &mut Locked<'_>,
        mut select: impl FnMut(&mut Mem<'_>, EntryRef) -> Result<bool, Oops>,
        scan_max: Option<usize>,
    ) -> Result<Vec<EntryRef>, Oops> {
        let free_list = locked_global.new_local();
        let mut mem = locked_global.mem();
        let lru = Node::Head(HeadId::Lru);
        let mut taken = Vec::new();
        match scan_max {
            // The shrinker: the first entries of the LRU, whatever cache they belong to.
            Some(scan_max) => {
                for _ in 0..scan_max {
                    if list::list_empty(&mut mem, lru)? {
                        break;
                    }
                    let entry = entry_of_lru(list::next(&mut mem, lru, "mb_cache_lru_list.next")?);
                    list::list_move_tail(&mut mem, Node::Lru(entry), free_list)?;
                    Self::unhash(&mut mem, entry)?;
                    taken.push(entry);
                }
            }
            // list_for_each_safe over the whole LRU.
            None => {
                let mut at = list::next(&mut mem, lru, "list_for_each_safe")?;
                while at != lru {
                    let after = list::next(&mut mem, at, "list_for_each_safe")?;
                    let entry = entry_of_lru(at);
                    if select(&mut mem, entry)? {
                        list::list_move_tail(&mut mem, Node::Lru(entry), free_list)?;
                        Self::unhash(&mut mem, entry)?;
                        taken.push(entry);
                    }
                    at = after;
                }
            }
        }
        if let Node::Head(HeadId::Local(id)) = free_list {
            // The stack frame's head goes away when the function returns; its members are
            // forgotten one by one from `taken` (list_for_each_safe over free_list).
            locked_global.guard.locals.remove(&id);
        }
        Ok(taken)
    }

    /// Mirrors `mb_cache_shrink_fn()`: counts every cache's entries and, unless `nr_to_scan` is
    /// 0, frees up to `nr_to_scan` entries from the head of the LRU. Returns the count (with
    /// `shrinker-vfs-cache-pressure`, scaled as [`vfs_cache_pressure_scaled`] says).
    pub fn shrink_fn(&self, cx: &Cx, nr_to_scan: i32, gfp: Gfp) -> Result<i32, MbError> {
        self.shrink_fn_taken(cx, nr_to_scan, gfp).map(|(count, _)| count)
    }

    /// [`Registry::shrink_fn`], with the serials of the entries it took off the LRU (for the
    /// threaded reference, which cannot know the LRU: see `Outcome::shrunk`).
    pub(crate) fn shrink_fn_taken(
        &self,
        cx: &Cx,
        nr_to_scan: i32,
        gfp: Gfp,
    ) -> Result<(i32, Vec<u64>), MbError> {
        if !self.shrinker_registered() {
            return Ok((0, Vec::new()));
        }
        let args = [u64::from(nr_to_scan.unsigned_abs()), u64::from(gfp.0)];
        cx.call_begin(&SHRINK_FN, args, || format!("nr_to_scan={nr_to_scan} gfp={gfp:?}"));
        let scaled = self.fixes.on(crate::fixes::SHRINKER_VFS_CACHE_PRESSURE);
        let result = self
            .shrink_fn_inner(cx, nr_to_scan, gfp)
            .map(|(count, taken)| (if scaled { vfs_cache_pressure_scaled(count) } else { count }, taken));
        let words = match &result {
            Ok((count, _)) => [0, u64::from(count.unsigned_abs())],
            Err(_) => [1, 0],
        };
        cx.call_end(&SHRINK_FN, words, || format!("{:?}", result.as_ref().map(|(count, _)| count)));
        result
    }

    pub(crate) fn shrink_fn_inner(
        &self,
        cx: &Cx,
        nr_to_scan: i32,
        gfp: Gfp,
    ) -> Result<(i32, Vec<u64>), MbError> {
        let mut locked_global = self.lock(cx);
        let mut count = 0i32;
        let caches = locked_global.guard.caches.clone();
        let counts = {
            let mem = locked_global.mem();
            let count_of = |cache| mem.cache(cache).map(|c| c.info.entry_count.clone());
            caches.into_iter().map(count_of).collect::<Result<Vec<_>, _>>()?
        };
        locked_global.unlock_memory();
        for entry_count in counts {
            count = count.wrapping_add(entry_count.load(Ordering::SeqCst));
        }
        if nr_to_scan == 0 {
            drop(locked_global);
            return Ok((count, Vec::new()));
        }
        // `while (nr_to_scan-- && ...)`: a negative count never reaches zero, so it scans the
        // whole LRU.
        let scan_max = usize::try_from(nr_to_scan).unwrap_or(usize::MAX);
        let taken = Self::collect(&mut locked_global, |_, _| Ok(true), Some(scan_max))?;
        let serials = Self::serials(&mut locked_global, &taken)?;
        drop(locked_global);
        for entry in taken {
            cx.sim().mark("entry freed by the shrinker");
            self.forget(cx, entry, gfp)?;
        }
        Ok((count, serials))
    }

    /// The serials of `taken` (instrumentation, read under the lock before they are forgotten).
    fn serials(locked_global: &mut Locked<'_>, taken: &[EntryRef]) -> Result<Vec<u64>, Oops> {
        let mem = locked_global.mem();
        taken.iter().map(|entry| mem.entry(*entry).map(|object| object.id)).collect()
    }

    /// Mirrors `mb_cache_shrink()`: frees every unused entry of device `bdev`. The seed takes the
    /// cache but filters by device only, so it shrinks that device's entries of every cache.
    pub fn shrink(&self, cx: &Cx, cache: CacheRef, bdev: u64) -> Result<(), MbError> {
        self.shrink_taken(cx, cache, bdev).map(|_| ())
    }

    /// [`Registry::shrink`], with the serials of the entries it took off the LRU.
    pub(crate) fn shrink_taken(&self, cx: &Cx, _cache: CacheRef, bdev: u64) -> Result<Vec<u64>, MbError> {
        cx.call_begin(&SHRINK, [bdev], || format!("bdev={bdev:#x}"));
        let mut locked_global = self.lock(cx);
        let taken = Self::collect(&mut locked_global, |mem, entry| Ok(mem.entry(entry)?.bdev == bdev), None)?;
        let serials = Self::serials(&mut locked_global, &taken)?;
        drop(locked_global);
        for entry in taken {
            cx.sim().mark("entry freed by mb_cache_shrink");
            self.forget(cx, entry, Gfp::GFP_KERNEL)?;
        }
        cx.call_end(&SHRINK, [], String::new);
        Ok(serials)
    }
}
