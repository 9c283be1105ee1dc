//! mm/page_alloc.c and mm/oom_kill.c (Linux 4.4) as far as a balloon driver reaches them:
//! zones with managed page counts, `alloc_page`/`__free_page` honouring GFP flags, a memory limit,
//! fail_page_alloc fault injection, direct reclaim that may wait for a filesystem lock, and the
//! OOM path (`oom_lock`, the OOM notifier chain, the OOM kill). Left out: orders above 0,
//! watermarks, per-CPU page lists, kswapd, real reclaim (the model has no page cache to reclaim)
//! and victim selection (an OOM kill is an event and a failed allocation).

use std::fmt;
use std::panic::Location;

use serde::{Deserialize, Serialize};

use crate::chain_cache::ClassKey;
use crate::cx::Cx;
use crate::errno::Errno;
use crate::fault::{FaultKind, SiteRef};
use crate::lockdep::LockMode;
use crate::locks::{Mutex, RwSem, SpinLock};
use crate::mm::page::{PageMap, Put};
use crate::mm::Gfp;
use crate::sim::Violation;

/// Page fault site `site` (fail_page_alloc's), borrowed: [`crate::fault::FaultSite::page`] made
/// an owned name, an allocation and a free on every page allocation, before the fault plan's
/// test that most often says no attribute matches a page allocation at all.
fn page_site(site: &str) -> SiteRef<'_> {
    SiteRef { kind: FaultKind::Page, name: site }
}

/// A page frame number, in units of the allocator's page size.
pub type Pfn = u64;

/// The 4 KiB page size (x86, most arm64 configurations).
pub const PAGE_SIZE_4K: u64 = 4096;
/// The 64 KiB page size (ppc64, arm64 with CONFIG_ARM64_64K_PAGES).
pub const PAGE_SIZE_64K: u64 = 65536;

/// Zone names, lowest first, as `/proc/zoneinfo` spells them.
pub const ZONE_NAMES: [&str; 3] = ["DMA32", "Normal", "Movable"];

/// How many times an allocation goes round the OOM path before it gives up. The kernel loops
/// for as long as the OOM notifiers report progress; a model needs a bound so that a notifier
/// that always "frees" something cannot spin a case forever.
pub const OOM_RETRIES_MAX: u32 = 16;

/// `schedule_timeout_uninterruptible(1)` at HZ=250: what a task that lost the race for
/// `oom_lock` sleeps before it retries.
pub const OOM_LOCK_BACKOFF_NS: u64 = 4_000_000;

/// The lock class of the filesystem lock direct reclaim may wait for in `__GFP_FS` context
/// (writeback of a dirty page takes the filesystem's locks).
pub const FS_LOCK_CLASS: &str = "fs_lock";

/// The lock class of ksim's "waits for the OOM killer" annotation. An allocation 4.4 keeps
/// looping without calling the OOM killer (no `__GFP_FS`) can only succeed once some other
/// task's out_of_memory() frees memory: it waits for that, as a task waits for a lock. ksim
/// records the wait as an acquisition of this class and holds it across out_of_memory(), the
/// way lockdep's `fs_reclaim` annotation records waiting for reclaim, so a lock held across such
/// an allocation and needed by an OOM notifier is a reported cycle. 4.4's lockdep had no such
/// annotation (the OOM lockups it would have explained were found as hangs).
pub const OOM_PROGRESS_CLASS: &str = "oom_progress";

thread_local! {
    /// [`OOM_PROGRESS_CLASS`]'s memo: its class id and chain found without hashing the name.
    /// One per thread, as every by-name class's is.
    static OOM_PROGRESS_KEY: ClassKey = const { ClassKey::new(OOM_PROGRESS_CLASS) };
}

/// The allocator's shape: page size, zone sizes and the memory limit.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PageAllocConfig {
    /// `PAGE_SIZE` in bytes (a power of two, at least 4096).
    pub page_size: u64,
    /// Pages in each zone, lowest zone first (at least two, at most [`ZONE_NAMES`]).
    pub zone_pages: Vec<u64>,
    /// At most this many pages may be allocated at once (a memory cgroup's limit, in effect).
    pub limit_pages: u64,
}

impl PageAllocConfig {
    /// A guest of `bytes` of memory in pages of `page_size`, split into DMA32 (a quarter, at
    /// most 4 GiB) and Normal, with no limit below the memory size.
    pub fn guest(bytes: u64, page_size: u64) -> PageAllocConfig {
        let pages = (bytes / page_size).max(2);
        let dma32 = (pages / 4).clamp(1, (4u64 << 30) / page_size);
        PageAllocConfig { page_size, zone_pages: vec![dma32, pages - dma32], limit_pages: pages }
    }

    fn validate(&self) -> Result<(), Errno> {
        let zones_ok = (2..=ZONE_NAMES.len()).contains(&self.zone_pages.len())
            && self.zone_pages.iter().all(|&pages| pages > 0);
        if !self.page_size.is_power_of_two() || self.page_size < PAGE_SIZE_4K || !zones_ok {
            return Err(Errno::EINVAL);
        }
        Ok(())
    }
}

/// What a page frame is doing, as far as the allocator knows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum PageState {
    /// On a zone's free list.
    Free,
    /// Handed out by `alloc_page`.
    Allocated,
}

#[derive(Debug)]
struct Zone {
    start_pfn: Pfn,
    spanned_pages: u64,
    /// `zone->managed_pages`: pages the buddy allocator manages (the balloon takes some away).
    managed_pages: i64,
    /// The free list, as a stack: the most recently freed page is handed out first.
    free: Vec<Pfn>,
}

#[derive(Debug)]
struct Zones {
    zones: Vec<Zone>,
    /// One byte per page frame: its [`PageState`].
    allocated: Vec<bool>,
    allocated_count: u64,
    oom_kills: u64,
    oom_notify_calls: u64,
}

/// The callback of an OOM notifier: returns how many pages it freed (`*freed += n`). A plain
/// `std` Arc: it only owns the callback (loom's Arc cannot hold a trait object), and every
/// shared state the callback reaches is a facade object of its own.
pub type OomNotifierFn = std::sync::Arc<dyn Fn(&Cx) -> u64 + Send + Sync>;

/// `struct notifier_block` on the OOM chain.
#[derive(Clone)]
pub struct NotifierBlock {
    /// Who registered it (for traces).
    pub name: &'static str,
    /// Higher runs first.
    pub priority: i32,
    /// `notifier_call`.
    pub call: OomNotifierFn,
    id: u64,
}

impl fmt::Debug for NotifierBlock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NotifierBlock").field("name", &self.name).field("priority", &self.priority).finish()
    }
}

/// A registered notifier, for `unregister_oom_notifier`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NotifierId(u64);

#[derive(Debug, Default)]
struct Chain {
    blocks: Vec<NotifierBlock>,
    next_id: u64,
}

/// The page allocator of one guest. See the module documentation.
pub struct PageAllocator {
    page_size: u64,
    limit_pages: u64,
    /// Each zone's first pfn and span: fixed at boot, so read without `zone->lock`.
    zone_spans: Vec<(Pfn, u64)>,
    /// `zone->lock` (one lock for every zone: the model has one node and order-0 pages).
    zones: SpinLock<Zones>,
    /// `oom_lock`: one OOM invocation at a time.
    oom_lock: Mutex<()>,
    /// `oom_notify_list`: a blocking notifier chain, so an rwsem.
    oom_notify_list: RwSem<Chain>,
    /// A filesystem lock: direct reclaim in `__GFP_FS` context waits for it, and a task that
    /// holds it allocates with `GFP_NOFS` (see [`FS_LOCK_CLASS`]).
    fs_lock: Mutex<()>,
    /// `mem_map`: each frame's `struct page` ([`crate::mm::page`]).
    pub(crate) pages: PageMap,
}

impl fmt::Debug for PageAllocator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PageAllocator")
            .field("page_size", &self.page_size)
            .field("limit_pages", &self.limit_pages)
            .finish_non_exhaustive()
    }
}

impl PageAllocator {
    /// Builds the allocator with every page free and managed (`free_area_init` and
    /// `mem_init`). A bad shape is `EINVAL`.
    pub fn new(config: &PageAllocConfig) -> Result<PageAllocator, Errno> {
        config.validate()?;
        let mut zones = Vec::new();
        let mut start_pfn = 0;
        for &pages in &config.zone_pages {
            // Reversed so the lowest pfn of each zone is handed out first.
            let free = (start_pfn..start_pfn + pages).rev().collect();
            zones.push(Zone { start_pfn, spanned_pages: pages, managed_pages: pages as i64, free });
            start_pfn += pages;
        }
        let frames = usize::try_from(start_pfn).map_err(|_| Errno::EINVAL)?;
        Ok(PageAllocator {
            page_size: config.page_size,
            limit_pages: config.limit_pages,
            zone_spans: zones.iter().map(|z| (z.start_pfn, z.spanned_pages)).collect(),
            zones: SpinLock::new(
                "zone->lock",
                Zones {
                    zones,
                    allocated: vec![false; frames],
                    allocated_count: 0,
                    oom_kills: 0,
                    oom_notify_calls: 0,
                },
            ),
            oom_lock: Mutex::new("oom_lock", ()),
            oom_notify_list: RwSem::new("oom_notify_list.rwsem", Chain::default()),
            fs_lock: Mutex::new(FS_LOCK_CLASS, ()),
            pages: PageMap::new(frames),
        })
    }

    /// `PAGE_SIZE`.
    pub fn page_size(&self) -> u64 {
        self.page_size
    }

    /// Page frames in all zones.
    pub fn spanned_pages(&self, _cx: &Cx) -> u64 {
        self.zone_spans.iter().map(|z| z.1).sum()
    }

    /// The filesystem lock direct reclaim waits for (see [`FS_LOCK_CLASS`]).
    pub fn fs_lock(&self) -> &Mutex<()> {
        &self.fs_lock
    }

    /// The zone index of `pfn`, or `EINVAL` for a pfn outside every zone.
    pub fn zone_of(&self, _cx: &Cx, pfn: Pfn) -> Result<usize, Errno> {
        self.zone_spans
            .iter()
            .position(|&(start, span)| (start..start + span).contains(&pfn))
            .ok_or(Errno::EINVAL)
    }

    /// Number of zones.
    pub fn zones_count(&self, _cx: &Cx) -> usize {
        self.zone_spans.len()
    }

    /// `zone->managed_pages` of zone `zone`.
    pub fn managed_pages(&self, cx: &Cx, zone: usize) -> i64 {
        self.zones.lock(cx).zones.get(zone).map_or(0, |z| z.managed_pages)
    }

    /// Page frames zone `zone` spans.
    pub fn zone_spanned_pages(&self, _cx: &Cx, zone: usize) -> u64 {
        self.zone_spans.get(zone).map_or(0, |z| z.1)
    }

    /// Free pages in zone `zone`.
    pub fn zone_free_pages(&self, cx: &Cx, zone: usize) -> u64 {
        self.zones.lock(cx).zones.get(zone).map_or(0, |z| z.free.len() as u64)
    }

    /// `totalram_pages`: the sum of managed pages.
    pub fn totalram_pages(&self, cx: &Cx) -> i64 {
        self.zones.lock(cx).zones.iter().map(|z| z.managed_pages).sum()
    }

    /// Free pages in every zone (`si_meminfo`'s `freeram`).
    pub fn free_pages(&self, cx: &Cx) -> u64 {
        self.zones.lock(cx).zones.iter().map(|z| z.free.len() as u64).sum()
    }

    /// Pages handed out and not yet freed.
    pub fn allocated_pages(&self, cx: &Cx) -> u64 {
        self.zones.lock(cx).allocated_count
    }

    /// OOM kills so far.
    pub fn oom_kills(&self, cx: &Cx) -> u64 {
        self.zones.lock(cx).oom_kills
    }

    /// OOM notifier chain invocations so far.
    pub fn oom_notify_calls(&self, cx: &Cx) -> u64 {
        self.zones.lock(cx).oom_notify_calls
    }

    /// The state of `pfn`, or `EINVAL` outside every zone.
    pub fn page_state(&self, cx: &Cx, pfn: Pfn) -> Result<PageState, Errno> {
        let zones = self.zones.lock(cx);
        let index = usize::try_from(pfn).map_err(|_| Errno::EINVAL)?;
        match zones.allocated.get(index) {
            Some(true) => Ok(PageState::Allocated),
            Some(false) => Ok(PageState::Free),
            None => Err(Errno::EINVAL),
        }
    }

    /// Mirrors adjust_managed_page_count(): moves `pfn`'s zone's managed count (and
    /// `totalram_pages`) by `delta`.
    pub fn adjust_managed_page_count(&self, cx: &Cx, pfn: Pfn, delta: i64) -> Result<(), Errno> {
        let zone = self.zone_of(cx, pfn)?;
        self.zones.lock(cx).zones[zone].managed_pages += delta;
        Ok(())
    }

    /// The zones an allocation with `gfp` may use, preferred first (the zonelist walk of
    /// `get_page_from_freelist`): `__GFP_DMA32` only the lowest zone; `__GFP_MOVABLE` with
    /// `__GFP_HIGHMEM` every zone; anything else every zone below Movable.
    fn zonelist(zones_count: usize, gfp: Gfp) -> std::iter::Rev<std::ops::RangeInclusive<usize>> {
        let highest = if gfp.contains(Gfp::__GFP_DMA32) || gfp.contains(Gfp::__GFP_DMA) {
            0
        } else if gfp.contains(Gfp::__GFP_MOVABLE) && gfp.contains(Gfp::__GFP_HIGHMEM) {
            zones_count - 1
        } else {
            (zones_count - 1).min(1)
        };
        (0..=highest).rev()
    }

    /// Mirrors get_page_from_freelist(): the first free page in the zonelist, within the limit.
    fn get_page_from_freelist(&self, cx: &Cx, gfp: Gfp) -> Option<Pfn> {
        let mut zones = self.zones.lock(cx);
        if zones.allocated_count >= self.limit_pages {
            return None;
        }
        for zone in Self::zonelist(zones.zones.len(), gfp) {
            if let Some(pfn) = zones.zones[zone].free.pop() {
                zones.allocated[pfn as usize] = true;
                zones.allocated_count += 1;
                self.pages.install(pfn);
                return Some(pfn);
            }
        }
        None
    }

    /// An order-0 page from zone `zone` only, without reclaim (compaction's and memory
    /// offlining's migration target, `compaction_alloc`/`new_node_page`): `ENOMEM` when that
    /// zone is empty or the limit is reached, `EINVAL` for no such zone. Fault site `site`.
    pub fn alloc_page_in_zone(&self, cx: &Cx, zone: usize, site: &str) -> Result<Pfn, Errno> {
        if cx.sim().should_fail_at(cx, page_site(site), self.page_size) {
            return Err(Errno::ENOMEM);
        }
        let mut zones = self.zones.lock(cx);
        if zone >= zones.zones.len() {
            return Err(Errno::EINVAL);
        }
        if zones.allocated_count >= self.limit_pages {
            return Err(Errno::ENOMEM);
        }
        let pfn = zones.zones[zone].free.pop().ok_or(Errno::ENOMEM)?;
        zones.allocated[pfn as usize] = true;
        zones.allocated_count += 1;
        self.pages.install(pfn);
        Ok(pfn)
    }

    /// Mirrors alloc_page() (`__alloc_pages_nodemask` and `__alloc_pages_slowpath`, order 0).
    ///
    /// A blocking allocation may sleep; fail_page_alloc may fail it at `site`; when the free
    /// lists are empty a blocking allocation enters direct reclaim (waiting for the filesystem
    /// lock in `__GFP_FS` context), and unless `__GFP_NORETRY` is set takes the OOM path
    /// (`__alloc_pages_may_oom`): `oom_lock`, 4.4's bail-outs, then the OOM
    /// notifier chain; pages freed there mean retry, none an OOM kill. Where 4.4 loops for ever
    /// (no `__GFP_FS`, or the notifiers keep freeing) the model gives up after
    /// [`OOM_RETRIES_MAX`] rounds.
    /// Failure is `ENOMEM` (the kernel's NULL).
    #[track_caller]
    pub fn alloc_page(&self, cx: &Cx, gfp: Gfp, site: &str) -> Result<Pfn, Errno> {
        crate::mm::reclaim::might_alloc(cx, gfp, "alloc_page");
        // should_fail_alloc_page(): __GFP_NOFAIL allocations are never failed on purpose.
        if !gfp.contains(Gfp::__GFP_NOFAIL) && cx.sim().should_fail_at(cx, page_site(site), self.page_size) {
            return Err(Errno::ENOMEM);
        }
        if let Some(pfn) = self.get_page_from_freelist(cx, gfp) {
            return Ok(pfn);
        }
        // Atomic allocations have no slow path to speak of.
        if !gfp.allows_blocking() {
            return Err(Errno::ENOMEM);
        }
        let mut retries = 0;
        loop {
            // __alloc_pages_direct_reclaim(): writeback in __GFP_FS context waits for the
            // filesystem's lock. The model has no page cache, so reclaim frees nothing itself;
            // another task may have freed pages meanwhile.
            if gfp.contains(Gfp::__GFP_FS) {
                drop(self.fs_lock.lock(cx));
            }
            // shrink_slab(): the shrinkers a model registered, which may free pages.
            if cx.sim().has_shrinkers() {
                crate::mm::reclaim::direct_reclaim(cx, gfp);
            }
            if let Some(pfn) = self.get_page_from_freelist(cx, gfp) {
                return Ok(pfn);
            }
            if gfp.contains(Gfp::__GFP_NORETRY) {
                return Err(Errno::ENOMEM);
            }
            if retries >= OOM_RETRIES_MAX {
                cx.note(format!("page allocation failure: gave up after {retries} OOM retries"));
                return Err(Errno::ENOMEM);
            }
            retries += 1;
            match self.alloc_pages_may_oom(cx, gfp) {
                MayOom::Page(pfn) => return Ok(pfn),
                MayOom::Progress => continue,
                MayOom::Killed | MayOom::NoOom => return Err(Errno::ENOMEM),
            }
        }
    }

    /// Mirrors __alloc_pages_may_oom() and out_of_memory() of Linux 4.4: under `oom_lock`
    /// (taken with a trylock; a loser sleeps a tick and counts as progress), a last freelist
    /// attempt; then, unless `__GFP_NOFAIL`, the bail-outs before the OOM killer: an allocation
    /// whose highest usable zone is below Normal gets no OOM ("does not needlessly kill tasks
    /// for lowmem": no progress, so the caller fails), and one without `__GFP_FS` neither ("does
    /// not compensate for IO-less reclaim") but counts as progress, so the caller keeps looping
    /// as 4.4 does. Only then the notifier chain and the kill.
    #[track_caller]
    fn alloc_pages_may_oom(&self, cx: &Cx, gfp: Gfp) -> MayOom {
        let Some(oom_guard) = self.oom_lock.try_lock(cx) else {
            // Somebody else is handling the OOM: back off a tick and call it progress.
            cx.sleep_ns("schedule_timeout_uninterruptible", OOM_LOCK_BACKOFF_NS);
            // The sleep gives the CPU away: under loom and shuttle, let the holder run.
            crate::sync::thread::yield_now();
            return MayOom::Progress;
        };
        // A last attempt under oom_lock: a parallel OOM kill may have freed memory.
        if let Some(pfn) = self.get_page_from_freelist(cx, gfp) {
            return MayOom::Page(pfn);
        }
        if !gfp.contains(Gfp::__GFP_NOFAIL) {
            let high_zoneidx = Self::zonelist(self.zone_spans.len(), gfp).next().unwrap_or(0);
            if high_zoneidx < ZONE_NORMAL {
                cx.note(format!("__alloc_pages_may_oom: no OOM kill for lowmem (gfp {gfp:?})"));
                return MayOom::NoOom;
            }
            if !gfp.contains(Gfp::__GFP_FS) {
                cx.note(format!(
                    "__alloc_pages_may_oom: no OOM killer without __GFP_FS, keep looping (gfp {gfp:?})"
                ));
                drop(oom_guard);
                let site = Location::caller();
                let wait = OOM_PROGRESS_KEY.with(|key| cx.push_held(key, LockMode::Mutex, false, site));
                cx.lock_acquire_failed(wait);
                return MayOom::Progress;
            }
        }
        let site = Location::caller();
        let progress = OOM_PROGRESS_KEY.with(|key| {
            let progress = cx.push_held(key, LockMode::Mutex, false, site);
            cx.lock_acquired_instance(key, 0, LockMode::Mutex, false, progress);
            progress
        });
        let freed = self.oom_notifier_call_chain(cx);
        OOM_PROGRESS_KEY.with(|key| cx.lock_release_key(key, progress));
        if freed > 0 {
            drop(oom_guard);
            return MayOom::Progress;
        }
        {
            let mut zones = self.zones.lock(cx);
            zones.oom_kills += 1;
        }
        cx.note(format!("oom-kill: {} (task {}) killed: out of memory, gfp {gfp:?}", cx.name(), cx.task()));
        drop(oom_guard);
        MayOom::Killed
    }

    /// Mirrors blocking_notifier_call_chain(&oom_notify_list, 0, &freed): every notifier in
    /// priority order, under the chain's rwsem for reading. Returns the pages they freed.
    fn oom_notifier_call_chain(&self, cx: &Cx) -> u64 {
        self.zones.lock(cx).oom_notify_calls += 1;
        let chain = self.oom_notify_list.down_read(cx);
        let mut freed = 0;
        for block in &chain.blocks {
            let pages = (block.call)(cx);
            cx.note(format!("oom notifier {} freed {pages}", block.name));
            freed += pages;
        }
        freed
    }

    /// Mirrors register_oom_notifier(): inserts by priority, after any of equal priority.
    pub fn register_oom_notifier(
        &self,
        cx: &Cx,
        name: &'static str,
        priority: i32,
        call: OomNotifierFn,
    ) -> NotifierId {
        let mut chain = self.oom_notify_list.down_write(cx);
        let id = chain.next_id;
        chain.next_id += 1;
        let at = chain.blocks.iter().position(|b| b.priority < priority).unwrap_or(chain.blocks.len());
        chain.blocks.insert(at, NotifierBlock { name, priority, call, id });
        NotifierId(id)
    }

    /// Mirrors unregister_oom_notifier(): `ENOENT` when `id` is not registered.
    pub fn unregister_oom_notifier(&self, cx: &Cx, id: NotifierId) -> Result<(), Errno> {
        let mut chain = self.oom_notify_list.down_write(cx);
        let at = chain.blocks.iter().position(|b| b.id == id.0).ok_or(Errno::ENOENT)?;
        chain.blocks.remove(at);
        Ok(())
    }

    /// Registered OOM notifiers, in call order.
    pub fn oom_notifiers(&self, cx: &Cx) -> Vec<(&'static str, i32)> {
        self.oom_notify_list.down_read(cx).blocks.iter().map(|b| (b.name, b.priority)).collect()
    }

    /// Mirrors __free_page(): drops the caller's reference (`put_page_testzero`) and, when it
    /// was the last, returns the page to its zone's free list. A pfn outside every zone is
    /// `EINVAL`; freeing a free page is a reported double free and `EINVAL`.
    pub fn free_page(&self, cx: &Cx, pfn: Pfn) -> Result<(), Errno> {
        self.zone_of(cx, pfn)?;
        match self.put_page_testzero(pfn)? {
            Put::Held => Ok(()),
            Put::Zero => self.free_frozen_page(cx, pfn),
            Put::Underflow => {
                cx.sim()
                    .report(Some(cx), Violation::new("page:double-free", format!("pfn {pfn} freed twice")));
                Err(Errno::EINVAL)
            }
        }
    }

    /// Mirrors free_hot_cold_page() for a page whose count reached zero: checked
    /// ([`PageAllocator::free_pages_check`]; a bad page is leaked, as the kernel leaks it) and
    /// pushed on its zone's free list.
    pub(crate) fn free_frozen_page(&self, cx: &Cx, pfn: Pfn) -> Result<(), Errno> {
        let zone = self.zone_of(cx, pfn)?;
        if !self.free_pages_check(cx, pfn) {
            return Ok(());
        }
        let mut zones = self.zones.lock(cx);
        if !zones.allocated[pfn as usize] {
            drop(zones);
            cx.sim().report(Some(cx), Violation::new("page:double-free", format!("pfn {pfn} freed twice")));
            return Err(Errno::EINVAL);
        }
        zones.allocated[pfn as usize] = false;
        zones.allocated_count -= 1;
        zones.zones[zone].free.push(pfn);
        Ok(())
    }
}

enum MayOom {
    Page(Pfn),
    Progress,
    Killed,
    /// A bail-out before the OOM killer without progress: the allocation fails.
    NoOom,
}

/// `ZONE_NORMAL`'s index in [`ZONE_NAMES`].
const ZONE_NORMAL: usize = 1;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fault::{FaultAttr, FaultPlan};
    use crate::lockdep::ReportMode;
    use crate::sim::{Sim, SimConfig};
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::Arc;

    fn sim() -> Sim {
        Sim::new(SimConfig::new(1).lockdep(ReportMode::Collect))
    }

    fn small(limit_pages: u64) -> PageAllocator {
        PageAllocator::new(&PageAllocConfig { page_size: PAGE_SIZE_4K, zone_pages: vec![2, 2], limit_pages })
            .expect("valid")
    }

    #[test]
    fn bad_shapes_are_einval() {
        for (page_size, zones) in
            [(4095, vec![1, 1]), (2048, vec![1, 1]), (4096, vec![4]), (4096, vec![1, 0])]
        {
            let config = PageAllocConfig { page_size, zone_pages: zones, limit_pages: 8 };
            assert_eq!(PageAllocator::new(&config).err(), Some(Errno::EINVAL), "{config:?}");
        }
    }

    #[test]
    fn normal_allocations_prefer_the_normal_zone_then_fall_back_to_dma32() {
        let sim = sim();
        let cx = sim.cx("t", 0);
        let pages = small(8);
        let first = pages.alloc_page(&cx, Gfp::GFP_KERNEL, "t").expect("page");
        assert_eq!(pages.zone_of(&cx, first), Ok(1));
        pages.alloc_page(&cx, Gfp::GFP_KERNEL, "t").expect("page");
        let third = pages.alloc_page(&cx, Gfp::GFP_KERNEL, "t").expect("page");
        assert_eq!(pages.zone_of(&cx, third), Ok(0));
        assert_eq!(pages.free_pages(&cx), 1);
        assert_eq!(pages.page_state(&cx, third), Ok(PageState::Allocated));
    }

    #[test]
    fn the_memory_limit_fails_allocations_before_the_zones_run_out() {
        let sim = sim();
        let cx = sim.cx("t", 0);
        let pages = small(1);
        pages.alloc_page(&cx, Gfp::GFP_ATOMIC, "t").expect("page");
        assert_eq!(pages.alloc_page(&cx, Gfp::GFP_ATOMIC, "t"), Err(Errno::ENOMEM));
        assert_eq!(pages.free_pages(&cx), 3);
    }

    #[test]
    fn freeing_twice_is_a_reported_double_free() {
        let sim = sim();
        let cx = sim.cx("t", 0);
        let pages = small(4);
        let pfn = pages.alloc_page(&cx, Gfp::GFP_KERNEL, "t").expect("page");
        pages.free_page(&cx, pfn).expect("free");
        assert_eq!(pages.free_page(&cx, pfn), Err(Errno::EINVAL));
        assert_eq!(pages.free_page(&cx, 99), Err(Errno::EINVAL));
        assert_eq!(sim.violations()[0].kind, "page:double-free");
    }

    #[test]
    fn managed_page_counts_move_per_zone() {
        let sim = sim();
        let cx = sim.cx("t", 0);
        let pages = small(4);
        pages.adjust_managed_page_count(&cx, 3, -1).expect("pfn 3 is in Normal");
        assert_eq!(pages.managed_pages(&cx, 1), 1);
        assert_eq!(pages.managed_pages(&cx, 0), 2);
        assert_eq!(pages.totalram_pages(&cx), 3);
        assert_eq!(pages.adjust_managed_page_count(&cx, 4, 1), Err(Errno::EINVAL));
    }

    #[test]
    fn fault_injection_fails_the_named_site_only() {
        let sim = sim();
        let cx = sim.cx("t", 0);
        sim.set_faults(FaultPlan::with(FaultAttr::always().site("balloon")));
        let pages = small(4);
        assert_eq!(pages.alloc_page(&cx, Gfp::GFP_KERNEL, "balloon"), Err(Errno::ENOMEM));
        assert!(pages.alloc_page(&cx, Gfp::GFP_KERNEL, "other").is_ok());
        assert!(pages.alloc_page(&cx, Gfp::GFP_KERNEL | Gfp::__GFP_NOFAIL, "balloon").is_ok());
    }

    fn exhaust(pages: &PageAllocator, cx: &Cx) -> Vec<Pfn> {
        let mut taken = Vec::new();
        while let Ok(pfn) = pages.alloc_page(cx, Gfp::GFP_ATOMIC, "fill") {
            taken.push(pfn);
        }
        taken
    }

    #[test]
    fn oom_notifiers_run_in_priority_order_and_their_pages_satisfy_the_retry() {
        let sim = sim();
        let cx = sim.cx("t", 0);
        let pages = Arc::new(small(4));
        let taken = Arc::new(std::sync::Mutex::new(exhaust(&pages, &cx)));
        let order = Arc::new(std::sync::Mutex::new(Vec::new()));
        let (o1, o2) = (order.clone(), order.clone());
        pages.register_oom_notifier(
            &cx,
            "low",
            10,
            Arc::new(move |_| {
                o1.lock().expect("order").push("low");
                0
            }),
        );
        let (p, t) = (pages.clone(), taken.clone());
        pages.register_oom_notifier(
            &cx,
            "high",
            80,
            Arc::new(move |cx| {
                o2.lock().expect("order").push("high");
                let pfn = t.lock().expect("taken").pop().expect("a page to give back");
                p.free_page(cx, pfn).expect("free");
                1
            }),
        );
        assert_eq!(pages.oom_notifiers(&cx), vec![("high", 80), ("low", 10)]);
        assert!(pages.alloc_page(&cx, Gfp::GFP_KERNEL, "t").is_ok());
        assert_eq!(*order.lock().expect("order"), vec!["high", "low"]);
        assert_eq!(pages.oom_kills(&cx), 0);
    }

    #[test]
    fn oom_with_nothing_freed_is_a_kill_and_an_event() {
        let sim = sim();
        let cx = sim.cx("t", 0);
        let pages = small(4);
        exhaust(&pages, &cx);
        let calls = Arc::new(AtomicU64::new(0));
        let c = calls.clone();
        let id = pages.register_oom_notifier(
            &cx,
            "none",
            0,
            Arc::new(move |_| {
                c.fetch_add(1, Ordering::Relaxed);
                0
            }),
        );
        assert_eq!(pages.alloc_page(&cx, Gfp::GFP_KERNEL, "t"), Err(Errno::ENOMEM));
        assert_eq!(pages.oom_kills(&cx), 1);
        assert_eq!(calls.load(Ordering::Relaxed), 1);
        let noted = sim.trace().events().iter().any(|e| format!("{:?}", e.kind).contains("oom-kill"));
        assert!(noted, "the kill is a trace event");
        pages.unregister_oom_notifier(&cx, id).expect("registered");
        assert_eq!(pages.unregister_oom_notifier(&cx, id), Err(Errno::ENOENT));
    }

    #[test]
    fn without_gfp_fs_or_below_normal_the_oom_notifiers_never_run_as_in_4_4() {
        let sim = sim();
        let cx = sim.cx("t", 0);
        let pages = small(4);
        exhaust(&pages, &cx);
        let calls = Arc::new(AtomicU64::new(0));
        let c = calls.clone();
        pages.register_oom_notifier(
            &cx,
            "count",
            0,
            Arc::new(move |_| {
                c.fetch_add(1, Ordering::Relaxed);
                0
            }),
        );
        assert_eq!(pages.alloc_page(&cx, Gfp::GFP_NOFS, "t"), Err(Errno::ENOMEM));
        assert_eq!(pages.alloc_page(&cx, Gfp::GFP_KERNEL | Gfp::__GFP_DMA32, "t"), Err(Errno::ENOMEM));
        assert_eq!(calls.load(Ordering::Relaxed), 0, "4.4 calls out_of_memory() for neither");
        assert_eq!(pages.oom_kills(&cx), 0);
        let looped =
            sim.trace().events().iter().filter(|e| format!("{:?}", e.kind).contains("keep looping")).count();
        assert_eq!(looped as u32, OOM_RETRIES_MAX, "GFP_NOFS counts as progress and loops");
        assert_eq!(pages.alloc_page(&cx, Gfp::GFP_KERNEL, "t"), Err(Errno::ENOMEM));
        assert_eq!(calls.load(Ordering::Relaxed), 1, "GFP_KERNEL reaches the notifiers");
    }

    #[test]
    fn noretry_and_atomic_allocations_never_reach_the_oom_path() {
        let sim = sim();
        let cx = sim.cx("t", 0);
        let pages = small(4);
        exhaust(&pages, &cx);
        assert_eq!(pages.alloc_page(&cx, Gfp::GFP_KERNEL | Gfp::__GFP_NORETRY, "t"), Err(Errno::ENOMEM));
        assert_eq!(pages.alloc_page(&cx, Gfp::GFP_ATOMIC, "t"), Err(Errno::ENOMEM));
        assert_eq!(pages.oom_notify_calls(&cx), 0);
        assert_eq!(pages.oom_kills(&cx), 0);
    }

    #[test]
    fn a_blocking_allocation_under_a_spinlock_is_reported_and_an_atomic_one_is_not() {
        let sim = sim();
        let cx = sim.cx("t", 0);
        let pages = small(4);
        let lock = SpinLock::new("lock", ());
        let guard = lock.lock(&cx);
        pages.alloc_page(&cx, Gfp::GFP_ATOMIC, "t").expect("page");
        assert!(sim.lockdep().reports().is_empty());
        pages.alloc_page(&cx, Gfp::GFP_KERNEL, "t").expect("page");
        drop(guard);
        assert_eq!(sim.lockdep().reports()[0].kind(), "sleep-in-atomic");
    }

    #[test]
    fn direct_reclaim_in_fs_context_orders_the_callers_locks_before_the_fs_lock() {
        let sim = sim();
        let cx = sim.cx("t", 0);
        let pages = small(4);
        exhaust(&pages, &cx);
        let outer = Mutex::new("outer", ());
        let held = outer.lock(&cx);
        let _ = pages.alloc_page(&cx, Gfp::GFP_KERNEL | Gfp::__GFP_NORETRY, "t");
        drop(held);
        assert!(sim.lockdep().dependencies().contains(&("outer".to_string(), FS_LOCK_CLASS.to_string())));
    }
}
