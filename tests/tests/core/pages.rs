//! A tiny balloon on sim-core alone, with the sequence mm/balloon_compaction.c of Linux 4.4 runs
//! (balloon_page_enqueue/dequeue, balloon_page_isolate/putback, balloon_page_insert/delete):
//! `trylock_page`, `get_page_unless_zero`, a walk of `b_dev_info->pages` under `pages_lock`, and
//! the `lru` link of each page; plus an xattr setter shaped like M3 (an allocation under
//! `xattr_sem`) with a cache of entries a shrinker frees. It proves sim-core's `list_head`,
//! `struct page` state and reclaim checks before the balloon crate moves onto them.
//!
//! As in C, the list memory is reachable without `pages_lock` (a `std` mutex holds it only
//! so the Rust can reach it, never across a facade operation); holding `pages_lock` is the
//! convention. Each [`Misuse`] writes one historical mistake.

use std::sync::{Arc, Mutex as StdMutex};

use serde::{Deserialize, Serialize};
use sim_core::list::{self, Cursor, Oops, SafeCursor};
use sim_core::mm::page::{PageListHeads, PageLruMem, PageNode, PG_PRIVATE};
use sim_core::mm::{Gfp, KmemCache, ObjHandle, PageAllocConfig, PageAllocator, Pfn, PAGE_SIZE_4K};
use sim_core::sync::atomic::{AtomicU64, Ordering};
use sim_core::{Cx, Errno, Mutex, Sim, SpinLock};

/// The address of the balloon's `address_space` (`b_dev_info->mapping`).
pub const BALLOON_MAPPING: u64 = 0xffff_8800_0bad_0000;
/// The address of the `balloon_dev_info` (what `set_page_private` stores).
pub const BALLOON_DEV: u64 = 0xffff_8800_0bad_1000;
/// The lock class of `b_dev_info->pages_lock`.
pub const PAGES_LOCK: &str = "b_dev_info->pages_lock";
/// The lock class of the made-up inode's `xattr_sem`.
pub const XATTR_SEM: &str = "ext3_inode_info.xattr_sem";
/// The lock class of the made-up entry cache's spinlock.
pub const CACHE_LOCK: &str = "mb_cache_spinlock";
/// Page frames of the tiny guest.
pub const FRAMES: u64 = 8;

/// One historical mistake at a time (or none).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum Misuse {
    /// The code as the kernel has it.
    #[default]
    None,
    /// Deflate walks with `list_for_each_entry` while deleting the entry it stands on.
    PlainCursorDeflate,
    /// Putback "defensively" unlinks a page whose `lru` isolation `list_del`ed without
    /// `INIT_LIST_HEAD`: `list_empty` is false on a poisoned head, and the `list_del` oopses.
    DelWithoutInit,
    /// Isolation takes `get_page` on a scanned pfn instead of `get_page_unless_zero`.
    GetPageOnScan,
    /// Isolation unlinks the page without `pages_lock`.
    IsolateWithoutPagesLock,
    /// The xattr setter allocates with GFP_KERNEL under `xattr_sem` (M3).
    XattrGfpKernel,
}

/// The balloon and the xattr setter, over one page allocator.
#[derive(Debug)]
pub struct Balloon {
    pub mm: PageAllocator,
    /// `b_dev_info->pages_lock`, guarding (by convention) the list and `isolated_pages`.
    pub pages_lock: SpinLock<()>,
    /// `b_dev_info->isolated_pages`: an atomic only so that the Rust can write it without the
    /// lock, as C can; every access is a relaxed one, as a plain C access would be.
    pub isolated_pages: AtomicU64,
    /// `b_dev_info->pages` and its links' memory (see the module documentation).
    lists: StdMutex<PageListHeads>,
    pub pages: PageNode,
    pub misuse: Misuse,
    pub xattr_sem: Mutex<()>,
    pub entries: KmemCache<u64>,
    /// The entry cache's LRU, which the shrinker trims.
    pub lru: SpinLock<Vec<ObjHandle<u64>>>,
    pub shrunk: AtomicU64,
}

impl Balloon {
    /// A balloon over a guest of [`FRAMES`] pages; registers `xattr_sem` as a lock reclaim
    /// takes (inode eviction removes xattrs) from `cx`.
    pub fn new(sim: &Sim, cx: &Cx, misuse: Misuse) -> Balloon {
        let config = PageAllocConfig { page_size: PAGE_SIZE_4K, zone_pages: vec![4, 4], limit_pages: FRAMES };
        let mut heads = PageListHeads::new("b_dev_info->pages");
        let pages = heads.add_head();
        sim.register_fs_reclaim_lock(cx, XATTR_SEM);
        Balloon {
            mm: PageAllocator::new(&config).expect("valid shape"),
            pages_lock: SpinLock::new(PAGES_LOCK, ()),
            isolated_pages: AtomicU64::new(0),
            lists: StdMutex::new(heads),
            pages,
            misuse,
            xattr_sem: Mutex::new(XATTR_SEM, ()),
            entries: KmemCache::new("mbcache", 64),
            lru: SpinLock::new(CACHE_LOCK, Vec::new()),
            shrunk: AtomicU64::new(0),
        }
    }

    /// Runs `f` on the list memory; the `std` lock is held for `f` only.
    pub fn lru_mem<R>(&self, cx: &Cx, f: impl FnOnce(&mut PageLruMem<'_>) -> R) -> R {
        let mut heads = self.lists.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        f(&mut self.mm.lru_mem(cx, &mut heads))
    }

    fn node(&self, cx: &Cx, pfn: Pfn) -> PageNode {
        PageNode::Lru(self.mm.page_ref(cx, pfn).expect("a pfn of this guest"))
    }

    /// Mirrors balloon_page_insert(): the page becomes a balloon page on `b_dev_info->pages`.
    /// Caller holds `pages_lock` and the page lock.
    fn insert(&self, cx: &Cx, pfn: Pfn) -> Result<(), Oops> {
        self.mm.set_page_balloon(cx, pfn).expect("pfn");
        self.mm.set_page_mapping(cx, pfn, Some(BALLOON_MAPPING)).expect("pfn");
        self.mm.set_page_flag(cx, pfn, PG_PRIVATE).expect("pfn");
        self.mm.set_page_private(cx, pfn, BALLOON_DEV).expect("pfn");
        let (node, head) = (self.node(cx, pfn), self.pages);
        self.lru_mem(cx, |mem| list::list_add(mem, node, head))
    }

    /// Mirrors balloon_page_delete(). Caller holds `pages_lock` and the page lock.
    fn delete(&self, cx: &Cx, pfn: Pfn) -> Result<(), Oops> {
        self.mm.clear_page_balloon(cx, pfn).expect("pfn");
        self.mm.set_page_mapping(cx, pfn, None).expect("pfn");
        self.mm.set_page_private(cx, pfn, 0).expect("pfn");
        if self.mm.test_page_flag(cx, pfn, PG_PRIVATE) {
            self.mm.clear_page_flag(cx, pfn, PG_PRIVATE).expect("pfn");
            let node = self.node(cx, pfn);
            self.lru_mem(cx, |mem| list::list_del(mem, node))?;
        }
        Ok(())
    }

    /// Mirrors balloon_page_enqueue(): a new page, locked while it is inserted.
    pub fn enqueue(&self, cx: &Cx) -> Result<Option<Pfn>, Oops> {
        let gfp = Gfp::GFP_HIGHUSER_MOVABLE | Gfp::__GFP_NOMEMALLOC | Gfp::__GFP_NORETRY;
        let Ok(pfn) = self.mm.alloc_page(cx, gfp, "balloon") else { return Ok(None) };
        assert!(self.mm.trylock_page(cx, pfn), "a page fresh from the allocator is unlocked");
        let guard = self.pages_lock.lock_irqsave(cx);
        let inserted = self.insert(cx, pfn);
        drop(guard);
        self.mm.unlock_page(cx, pfn).expect("locked above");
        inserted.map(|()| Some(pfn))
    }

    /// Mirrors balloon_page_dequeue(): the first page on the list that can be locked and is
    /// still private, taken off; `None` when there is none.
    pub fn dequeue(&self, cx: &Cx) -> Result<Option<Pfn>, Oops> {
        let guard = self.pages_lock.lock_irqsave(cx);
        let mut cursor = SafeCursor::new(self.pages);
        let mut dequeued = None;
        while let Some(node) = self.lru_mem(cx, |mem| cursor.next(mem))? {
            let pfn = node.page().expect("a page on the list").pfn;
            if !self.mm.trylock_page(cx, pfn) {
                continue;
            }
            if !self.mm.test_page_flag(cx, pfn, PG_PRIVATE) {
                self.mm.unlock_page(cx, pfn).expect("locked above");
                continue;
            }
            let deleted = self.delete(cx, pfn);
            self.mm.unlock_page(cx, pfn).expect("locked above");
            deleted?;
            dequeued = Some(pfn);
            break;
        }
        drop(guard);
        Ok(dequeued)
    }

    /// Up to `count` pages off the list in one walk, each freed (`leak_balloon` with
    /// `release_pages_balloon`, as one walk rather than one `balloon_page_dequeue` a page).
    pub fn deflate(&self, cx: &Cx, count: usize) -> Result<Vec<Pfn>, Oops> {
        let guard = self.pages_lock.lock_irqsave(cx);
        let mut taken = Vec::new();
        let plain = self.misuse == Misuse::PlainCursorDeflate;
        let (mut cursor, mut safe) = (Cursor::new(self.pages), SafeCursor::new(self.pages));
        while taken.len() < count {
            let step = |mem: &mut PageLruMem<'_>| if plain { cursor.next(mem) } else { safe.next(mem) };
            let Some(node) = self.lru_mem(cx, step)? else { break };
            let pfn = node.page().expect("a page on the list").pfn;
            if !self.mm.trylock_page(cx, pfn) {
                continue;
            }
            let deleted = self.delete(cx, pfn);
            self.mm.unlock_page(cx, pfn).expect("locked above");
            deleted?;
            taken.push(pfn);
        }
        drop(guard);
        for &pfn in &taken {
            self.mm.put_page(cx, pfn).expect("the balloon's reference");
        }
        Ok(taken)
    }

    /// Mirrors balloon_page_isolate() as compaction calls it on a pfn it scanned: a reference
    /// unless the page is free, the page lock by trylock, and the balloon's own checks.
    pub fn isolate(&self, cx: &Cx, pfn: Pfn) -> Result<bool, Oops> {
        if self.misuse == Misuse::GetPageOnScan {
            if self.mm.get_page(cx, pfn).is_err() {
                return Ok(false);
            }
        } else if !self.mm.get_page_unless_zero(cx, pfn) {
            return Ok(false);
        }
        if self.mm.trylock_page(cx, pfn) {
            let movable = self.mm.page_balloon(cx, pfn)
                && self.mm.test_page_flag(cx, pfn, PG_PRIVATE)
                && self.mm.page_mapping(cx, pfn) == Some(BALLOON_MAPPING);
            if movable && self.mm.page_count(cx, pfn) == Ok(2) {
                let unlinked = self.isolate_locked(cx, pfn);
                self.mm.unlock_page(cx, pfn).expect("locked above");
                unlinked?;
                return Ok(true);
            }
            self.mm.unlock_page(cx, pfn).expect("locked above");
        }
        self.mm.put_page(cx, pfn).expect("the reference taken above");
        Ok(false)
    }

    /// Mirrors __isolate_balloon_page(): off the list under `pages_lock`.
    fn isolate_locked(&self, cx: &Cx, pfn: Pfn) -> Result<(), Oops> {
        let guard =
            (self.misuse != Misuse::IsolateWithoutPagesLock).then(|| self.pages_lock.lock_irqsave(cx));
        self.mm.clear_page_flag(cx, pfn, PG_PRIVATE).expect("pfn");
        let node = self.node(cx, pfn);
        let unlinked = self.lru_mem(cx, |mem| list::list_del(mem, node));
        self.isolated_pages.fetch_add(1, Ordering::Relaxed);
        drop(guard);
        unlinked
    }

    /// Mirrors balloon_page_putback(): back on the list, and the isolation's reference dropped.
    pub fn putback(&self, cx: &Cx, pfn: Pfn) -> Result<(), Oops> {
        self.mm.lock_page(cx, pfn).expect("not locked by this task");
        let guard = self.pages_lock.lock_irqsave(cx);
        self.mm.set_page_flag(cx, pfn, PG_PRIVATE).expect("pfn");
        let (node, head) = (self.node(cx, pfn), self.pages);
        let linked = self.lru_mem(cx, |mem| {
            if self.misuse == Misuse::DelWithoutInit && !list::list_empty(mem, node)? {
                list::list_del(mem, node)?;
            }
            list::list_add(mem, node, head)
        });
        self.isolated_pages.fetch_sub(1, Ordering::Relaxed);
        drop(guard);
        self.mm.put_page(cx, pfn).expect("the isolation's reference");
        self.mm.unlock_page(cx, pfn).expect("locked above");
        linked
    }

    /// An xattr set that caches the block (`ext3_xattr_cache_insert` ->
    /// `mb_cache_entry_alloc`) under `xattr_sem`: GFP_NOFS, or GFP_KERNEL with M3's bug.
    pub fn set_xattr(&self, cx: &Cx, block: u64) -> Result<(), Errno> {
        let gfp = if self.misuse == Misuse::XattrGfpKernel { Gfp::GFP_KERNEL } else { Gfp::GFP_NOFS };
        let held = self.xattr_sem.lock(cx);
        let entry = self.entries.alloc(cx, gfp, block);
        drop(held);
        let entry = entry?;
        self.lru.lock(cx).push(entry);
        Ok(())
    }

    /// The entry cache's shrinker: frees up to `nr_to_scan` entries from the LRU's cold end.
    pub fn shrink(&self, cx: &Cx, nr_to_scan: u64) -> u64 {
        let victims: Vec<ObjHandle<u64>> = {
            let mut lru = self.lru.lock(cx);
            let count = (nr_to_scan as usize).min(lru.len());
            lru.drain(..count).collect()
        };
        for &entry in &victims {
            self.entries.free(cx, entry).expect("an entry the LRU owned");
        }
        self.shrunk.fetch_add(victims.len() as u64, Ordering::Relaxed);
        victims.len() as u64
    }

    /// The pages on `b_dev_info->pages`, in list order.
    pub fn listed(&self, cx: &Cx) -> Result<Vec<Pfn>, Oops> {
        let head = self.pages;
        let nodes = self.lru_mem(cx, |mem| list::walk(mem, head, FRAMES as usize + 1))?;
        Ok(nodes.into_iter().filter_map(|node| node.page()).map(|page| page.pfn).collect())
    }
}

/// Registers the entry cache's shrinker with the Sim; the shrinker keeps `balloon` alive.
pub fn register_shrinker(sim: &Sim, balloon: &Arc<Balloon>) {
    let balloon = balloon.clone();
    sim.register_shrinker("mbcache", Arc::new(move |cx, control| balloon.shrink(cx, control.nr_to_scan)));
}
