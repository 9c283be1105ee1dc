//! `struct page` (include/linux/mm_types.h, mm.h, page-flags.h, pagemap.h of Linux 4.4) as the
//! balloon and compaction use it: the reference count (`get_page`, `put_page`,
//! `get_page_unless_zero`, `page_count`; the last put frees the page to the allocator), the
//! `PG_locked` bit as a sleeping lock (`trylock_page`, `lock_page`, `unlock_page`) with its own
//! lockdep class, the flags `PG_lru` and `PG_private`, the balloon page type kept in `_mapcount`
//! (`__SetPageBalloon`), `page->mapping`, `page_private`, and the `lru` list link (a
//! [`crate::list`] head that lives in the page). Left out: compound pages, `PG_isolated` and
//! `__PageMovable` (Linux 4.8), the page waitqueue hash (one wait queue per page instead), and
//! every flag the models do not use.
//!
//! A page's state lives with its pfn in the [`PageAllocator`]: one `struct page` per frame for
//! the allocator's life, as `mem_map` has it, made on the frame's first use and reset by each
//! allocation (prep_new_page() sets the count to 1; the free path left the flags clear). The
//! count, the flags and the mapcount are facade atomics with the kernel's orderings, so loom and
//! shuttle see the races the kernel has on them (a scanner's `get_page_unless_zero` on a frame
//! freed and allocated again takes a reference to the new allocation, as in the kernel);
//! `mapping`, `private` and `lru` are plain memory the kernel guards by convention (the page
//! lock, the balloon's `pages_lock`): they sit in a per-page `std` mutex that adds no
//! interleavings. Each allocation of a pfn is a new generation: a [`PageRef`] (a `struct page *`
//! kept in a list or by a scanner) that outlives the allocation is a use after free when its
//! `lru` is followed.

use std::fmt;
use std::panic::Location;
use std::sync::{Mutex as StdMutex, OnceLock};

use crate::chain_cache::ClassKey;
use crate::cx::Cx;
use crate::errno::Errno;
use crate::list::{poisoned_link, Link, ListHead, ListMemory, Oops};
use crate::lockdep::LockMode;
use crate::mm::page_alloc::{PageAllocator, Pfn};
use crate::sim::Violation;
use crate::sync;
use crate::sync::atomic::{AtomicI32, AtomicU64, Ordering};
use crate::trace::{CallName, TaskId};

/// The lockdep class of every page lock. The kernel's lockdep does not track `PG_locked`
/// (crossrelease tried, and was reverted); ksim does, so a page lock taken under a spinlock, or
/// two page locks taken in both orders, is reported like any sleeping lock.
pub const PAGE_LOCK_CLASS: &str = "PG_locked";

thread_local! {
    /// [`PAGE_LOCK_CLASS`]'s memo (no page keeps one): its class id and chain found without
    /// hashing the name on each lock and unlock. One per thread, as every by-name class's is.
    static PAGE_LOCK_KEY: ClassKey = const { ClassKey::new(PAGE_LOCK_CLASS) };
}

/// The instance a page lock has in the tasks' held-and-awaited records (deadlock reports): the
/// pfn plus one (0 means "no instance"), the same in every run, so a report can name the page.
pub(crate) fn page_lock_instance(pfn: Pfn) -> usize {
    usize::try_from(pfn).map_or(usize::MAX, |pfn| pfn.saturating_add(1))
}

/// The pfn a page lock's record instance ([`page_lock_instance`]) stands for.
#[cfg_attr(not(feature = "threaded"), allow(dead_code))]
pub(crate) fn page_lock_pfn(instance: usize) -> Option<Pfn> {
    instance.checked_sub(1).map(|pfn| pfn as Pfn)
}

/// The last put_page()'s call into the allocator, as the trace names it.
const PUT_PAGE_FREE: CallName = CallName::new("__put_page");

/// `PG_locked` (bit 0 of `page->flags`).
pub const PG_LOCKED: u64 = 1 << 0;
/// `PG_lru` (bit 5): the page is on an LRU list.
pub const PG_LRU: u64 = 1 << 5;
/// `PG_private` (bit 11): `page_private` holds something; the balloon sets it while a page is
/// on its list and clears it while the page is isolated.
pub const PG_PRIVATE: u64 = 1 << 11;

/// `_mapcount` of a page that no process maps.
pub const MAPCOUNT_NONE: i32 = -1;
/// `PAGE_BALLOON_MAPCOUNT_VALUE`: the `_mapcount` that makes a page a balloon page in 4.4.
pub const PAGE_BALLOON_MAPCOUNT_VALUE: i32 = -256;

/// A `struct page *`: a pfn and the allocation of it that the pointer was taken in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PageRef {
    /// The page frame.
    pub pfn: Pfn,
    generation: u32,
}

/// Plain memory of a page (guarded by convention, not by the checkers).
#[derive(Debug)]
struct PageMeta {
    mapping: Option<u64>,
    private: u64,
    lru: ListHead<PageNode>,
    /// The lockdep token and task of the `PG_locked` holder (instrumentation).
    lock_owner: Option<(u64, TaskId)>,
    /// Set when the page went back to the allocator.
    freed: bool,
    /// The allocation the frame is in (instrumentation): 0 before its first, one more at each.
    /// Kept with `freed` under one lock, so a link's check sees both of the same allocation.
    generation: u32,
}

impl PageMeta {
    /// The plain memory of a frame's page before any allocation, or as an allocation starts.
    const FRESH: PageMeta = PageMeta {
        mapping: None,
        private: 0,
        lru: ListHead::UNINIT,
        lock_owner: None,
        freed: false,
        generation: 0,
    };
}

/// One page frame's `struct page`, for one allocation of it.
pub(crate) struct Page {
    /// `page->_count` (`_refcount` from 4.6).
    refcount: AtomicI32,
    /// `page->flags`.
    flags: AtomicU64,
    /// `page->_mapcount`.
    mapcount: AtomicI32,
    /// The page's wait queue (`page_waitqueue(page)`): lock_page sleeps on it.
    wait_lock: sync::Mutex<()>,
    woken: sync::Condvar,
    meta: StdMutex<PageMeta>,
}

impl fmt::Debug for Page {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Page").finish_non_exhaustive()
    }
}

fn locked<T>(mutex: &StdMutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Page {
    /// prep_new_page() (`count` 1), or a frame never allocated (`count` 0): no flags,
    /// unmapped, no mapping, `lru` uninitialised.
    fn new(count: i32) -> Page {
        Page {
            refcount: AtomicI32::new(count),
            flags: AtomicU64::new(0),
            mapcount: AtomicI32::new(MAPCOUNT_NONE),
            wait_lock: sync::Mutex::new(()),
            woken: sync::Condvar::new(),
            meta: StdMutex::new(PageMeta::FRESH),
        }
    }
}

/// Frames per [`PageMap`] chunk: a chunk's slots are one allocation, made when one of its
/// frames is first used.
const PAGE_MAP_CHUNK_FRAMES: usize = 256;

/// `mem_map`: the `struct page` of every frame, made on the frame's first use (its chunk of
/// [`PAGE_MAP_CHUNK_FRAMES`] slots on the chunk's first use, so a 16 GiB guest costs memory
/// only near the frames a run touches; a page's facade objects are made inside the loom model
/// or shuttle execution that uses them, and only for the pages it uses) and kept until the
/// allocator goes. Finding a page from its pfn is arithmetic in the kernel; here it is two
/// indexes and two `OnceLock` reads (instrumentation: no lock and no reference count per
/// access, no interleaving).
#[derive(Debug)]
pub(crate) struct PageMap {
    frames: usize,
    chunks: Box<[OnceLock<PageChunk>]>,
}

/// One chunk of [`PageMap`]: a slot per frame, its page made on the frame's first use.
type PageChunk = Box<[OnceLock<Page>]>;

impl PageMap {
    pub(crate) fn new(frames: usize) -> PageMap {
        let chunks = frames.div_ceil(PAGE_MAP_CHUNK_FRAMES);
        PageMap { frames, chunks: (0..chunks).map(|_| OnceLock::new()).collect() }
    }

    /// Mirrors prep_new_page() for a newly allocated `pfn`: the next generation, plain memory
    /// reset, and `set_page_refcounted()` (count 1). The flags and the mapcount are clear
    /// already: the free path checked them ([`PageAllocator::free_pages_check`]).
    pub(crate) fn install(&self, pfn: Pfn) {
        let Some(page) = self.get(pfn) else { return };
        let mut meta = locked(&page.meta);
        let generation = meta.generation.wrapping_add(1);
        *meta = PageMeta { generation, ..PageMeta::FRESH };
        drop(meta);
        page.refcount.store(1, Ordering::Relaxed);
    }

    /// The page of `pfn` (None outside memory); a frame never allocated has its free
    /// `struct page` (count 0, generation 0).
    fn get(&self, pfn: Pfn) -> Option<&Page> {
        let index = usize::try_from(pfn).ok().filter(|&index| index < self.frames)?;
        let chunk = self.chunks[index / PAGE_MAP_CHUNK_FRAMES].get_or_init(|| {
            let first = index - index % PAGE_MAP_CHUNK_FRAMES;
            let len = (self.frames - first).min(PAGE_MAP_CHUNK_FRAMES);
            (0..len).map(|_| OnceLock::new()).collect()
        });
        Some(chunk[index % PAGE_MAP_CHUNK_FRAMES].get_or_init(|| Page::new(0)))
    }
}

/// What a put did to the count.
pub(crate) enum Put {
    /// The count was already zero: nothing changed.
    Underflow,
    /// The count reached zero: the caller frees the page.
    Zero,
    /// Other references remain.
    Held,
}

impl PageAllocator {
    fn page(&self, pfn: Pfn) -> Result<&Page, Errno> {
        self.pages.get(pfn).ok_or(Errno::EINVAL)
    }

    /// `pfn_to_page(pfn)` as a pointer that remembers this allocation; `EINVAL` outside memory.
    pub fn page_ref(&self, _cx: &Cx, pfn: Pfn) -> Result<PageRef, Errno> {
        let generation = locked(&self.page(pfn)?.meta).generation;
        Ok(PageRef { pfn, generation })
    }

    /// Mirrors page_count(): the reference count (0 for a free page).
    pub fn page_count(&self, _cx: &Cx, pfn: Pfn) -> Result<i32, Errno> {
        Ok(self.page(pfn)?.refcount.load(Ordering::Acquire))
    }

    /// Mirrors get_page(): takes a reference to a page the caller knows is live. A get on a free
    /// page (count 0) is the kernel's VM_BUG_ON_PAGE: reported, the count untouched, `EINVAL`.
    #[track_caller]
    pub fn get_page(&self, cx: &Cx, pfn: Pfn) -> Result<(), Errno> {
        let page = self.page(pfn)?;
        let mut count = page.refcount.load(Ordering::Relaxed);
        loop {
            if count <= 0 {
                let message = format!(
                    "get_page on a free page: pfn {pfn} has page_count {count} at {}",
                    crate::lockdep::site(Location::caller())
                );
                cx.sim().report(Some(cx), Violation::new("page:get-free", message));
                return Err(Errno::EINVAL);
            }
            match page.refcount.compare_exchange(count, count + 1, Ordering::Relaxed, Ordering::Relaxed) {
                Ok(_) => return Ok(()),
                Err(actual) => count = actual,
            }
        }
    }

    /// Mirrors get_page_unless_zero() (`atomic_inc_not_zero`): a reference unless the page is
    /// free, the way a pfn scanner takes pages it does not own.
    pub fn get_page_unless_zero(&self, _cx: &Cx, pfn: Pfn) -> bool {
        let Ok(page) = self.page(pfn) else { return false };
        let mut count = page.refcount.load(Ordering::Relaxed);
        loop {
            if count <= 0 {
                return false;
            }
            match page.refcount.compare_exchange(count, count + 1, Ordering::AcqRel, Ordering::Relaxed) {
                Ok(_) => return true,
                Err(actual) => count = actual,
            }
        }
    }

    /// `put_page_testzero()`: drops one reference unless the count is already zero.
    pub(crate) fn put_page_testzero(&self, pfn: Pfn) -> Result<Put, Errno> {
        let page = self.page(pfn)?;
        let mut count = page.refcount.load(Ordering::Relaxed);
        loop {
            if count <= 0 {
                return Ok(Put::Underflow);
            }
            match page.refcount.compare_exchange(count, count - 1, Ordering::AcqRel, Ordering::Relaxed) {
                Ok(_) if count == 1 => return Ok(Put::Zero),
                Ok(_) => return Ok(Put::Held),
                Err(actual) => count = actual,
            }
        }
    }

    /// Mirrors put_page(): drops a reference; the last one frees the page to its zone. A put
    /// on a free page is a reported refcount underflow and `EINVAL`.
    #[track_caller]
    pub fn put_page(&self, cx: &Cx, pfn: Pfn) -> Result<(), Errno> {
        let site = Location::caller();
        match self.put_page_testzero(pfn)? {
            Put::Held => Ok(()),
            Put::Zero => {
                // __put_page() -> free_hot_cold_page(), traced as a call: the pfn as a word,
                // its text only when the trace keeps events.
                cx.call_begin(&PUT_PAGE_FREE, [pfn], || format!("pfn {pfn} freed (count 0)"));
                let freed = self.free_frozen_page(cx, pfn);
                cx.call_end(
                    &PUT_PAGE_FREE,
                    [freed.err().map_or(0, |err| u64::from(err.number().unsigned_abs()))],
                    || match freed {
                        Ok(()) => "0".to_string(),
                        Err(err) => format!("{err}"),
                    },
                );
                freed
            }
            Put::Underflow => {
                let message = format!(
                    "put_page below zero: pfn {pfn} is already free (page_count 0) at {}",
                    crate::lockdep::site(site)
                );
                cx.sim().report(Some(cx), Violation::new("page:refcount-underflow", message));
                Err(Errno::EINVAL)
            }
        }
    }

    /// Mirrors free_pages_check(): a page freed while still locked, on a list, private, mapped
    /// or with a mapping is a "Bad page state" report; the kernel then leaks the page, and so
    /// does the model. Returns whether the page may go back to its zone.
    pub(crate) fn free_pages_check(&self, cx: &Cx, pfn: Pfn) -> bool {
        let Some(page) = self.pages.get(pfn) else { return true };
        let flags = page.flags.load(Ordering::Relaxed);
        let mapcount = page.mapcount.load(Ordering::Relaxed);
        let mut meta = locked(&page.meta);
        let reason = if flags & (PG_LOCKED | PG_LRU | PG_PRIVATE) != 0 {
            Some("PAGE_FLAGS_CHECK_AT_FREE flag(s) set")
        } else if mapcount != MAPCOUNT_NONE {
            Some("nonzero mapcount")
        } else if meta.mapping.is_some() {
            Some("non-NULL mapping")
        } else {
            None
        };
        meta.freed = true;
        drop(meta);
        let Some(reason) = reason else {
            // free_pages_prepare(): the flags the check allows are cleared for the next
            // allocation (a store only when there is one: a clean page costs no atomic op).
            if flags != 0 {
                page.flags.store(0, Ordering::Relaxed);
            }
            return true;
        };
        let message = format!(
            "BUG: Bad page state in process {} pfn:{pfn:05x}: {reason} (flags {flags:#x}, mapcount {mapcount})",
            cx.name()
        );
        cx.sim().report(Some(cx), Violation::new("page:bad-state", message));
        false
    }

    // --- PG_locked ------------------------------------------------------------------------------

    /// Mirrors trylock_page(): `test_and_set_bit_lock(PG_locked)`; never sleeps.
    #[track_caller]
    pub fn trylock_page(&self, cx: &Cx, pfn: Pfn) -> bool {
        let Ok(page) = self.page(pfn) else { return false };
        let site = Location::caller();
        let token = PAGE_LOCK_KEY.with(|key| cx.push_held(key, LockMode::Mutex, true, site));
        if page.flags.fetch_or(PG_LOCKED, Ordering::Acquire) & PG_LOCKED != 0 {
            cx.lock_acquire_failed(token);
            return false;
        }
        // Names the page in the task's held-lock record (a trylock never waits: the record's
        // wait is taken back by the acquisition at once).
        cx.lock_wait(PAGE_LOCK_CLASS, page_lock_instance(pfn), LockMode::Mutex, token);
        self.page_locked_by(cx, page, token, true);
        true
    }

    fn page_locked_by(&self, cx: &Cx, page: &Page, token: u64, trylock: bool) {
        locked(&page.meta).lock_owner = Some((token, cx.task()));
        PAGE_LOCK_KEY.with(|key| cx.lock_acquired_instance(key, 0, LockMode::Mutex, trylock, token));
    }

    /// Mirrors lock_page() (`__lock_page`, `wait_on_page_bit_killable` without signals): may
    /// sleep until the bit is free. Lockdep checks it before it waits. A task that already
    /// holds the page lock would wait for itself forever: after lockdep's recursion report that
    /// is `EDEADLK` here instead of a hang. A page locked by another context waits for it, as
    /// in the kernel; in the one-thread simulation that context never runs again, so models hold
    /// page locks only within one operation there.
    #[track_caller]
    pub fn lock_page(&self, cx: &Cx, pfn: Pfn) -> Result<(), Errno> {
        let page = self.page(pfn)?;
        cx.might_sleep("lock_page");
        let site = Location::caller();
        let token = PAGE_LOCK_KEY.with(|key| cx.push_held(key, LockMode::Mutex, false, site));
        let owner = locked(&page.meta).lock_owner;
        if let Some((held, _)) = owner.filter(|&(held, _)| cx.holds_token(held)) {
            cx.lock_acquire_failed(token);
            let message = format!("lock_page: pfn {pfn} is already locked by this task (token {held})");
            cx.sim().report(Some(cx), Violation::new("page:lock-recursion", message));
            return Err(Errno::EDEADLK);
        }
        // What a deadlock's report says this task waits for: this page, held by its locker.
        cx.lock_wait(PAGE_LOCK_CLASS, page_lock_instance(pfn), LockMode::Mutex, token);
        let mut waiting = page.wait_lock.lock();
        while page.flags.fetch_or(PG_LOCKED, Ordering::Acquire) & PG_LOCKED != 0 {
            waiting = page.woken.wait(waiting);
        }
        drop(waiting);
        self.page_locked_by(cx, page, token, false);
        Ok(())
    }

    /// Mirrors unlock_page(): `clear_bit_unlock(PG_locked)` and a wake-up of the waiters. An
    /// unlock of an unlocked page is the kernel's VM_BUG_ON_PAGE: reported and `EINVAL`.
    #[track_caller]
    pub fn unlock_page(&self, cx: &Cx, pfn: Pfn) -> Result<(), Errno> {
        let page = self.page(pfn)?;
        let owner = locked(&page.meta).lock_owner.take();
        if page.flags.load(Ordering::Relaxed) & PG_LOCKED == 0 {
            let message = format!(
                "unlock_page of an unlocked page: pfn {pfn} at {}",
                crate::lockdep::site(Location::caller())
            );
            cx.sim().report(Some(cx), Violation::new("page:unlock-unlocked", message));
            return Err(Errno::EINVAL);
        }
        page.flags.fetch_and(!PG_LOCKED, Ordering::Release);
        drop(page.wait_lock.lock());
        page.woken.notify_all();
        match owner {
            Some((token, _)) if cx.holds_token(token) => {
                PAGE_LOCK_KEY.with(|key| cx.lock_release_key(key, token));
            }
            // Unlocked by another context than the locker (I/O completion does this): the
            // locker's lockdep stack keeps the entry, a limit ksim shares with lockdep.
            _ => cx.note(format!("unlock_page: pfn {pfn} unlocked by a task that did not lock it")),
        }
        Ok(())
    }

    /// Mirrors PageLocked().
    pub fn page_locked(&self, _cx: &Cx, pfn: Pfn) -> bool {
        self.page_flags(pfn) & PG_LOCKED != 0
    }

    // --- flags, page type, mapping, private --------------------------------------------------

    fn page_flags(&self, pfn: Pfn) -> u64 {
        self.page(pfn).map_or(0, |page| page.flags.load(Ordering::Acquire))
    }

    /// Mirrors SetPageLRU()/SetPagePrivate() (`set_bit`, atomic): sets `flag` (not `PG_LOCKED`,
    /// which only the lock functions touch).
    pub fn set_page_flag(&self, _cx: &Cx, pfn: Pfn, flag: u64) -> Result<(), Errno> {
        debug_assert_eq!(flag & PG_LOCKED, 0, "PG_locked is the lock functions' business");
        self.page(pfn)?.flags.fetch_or(flag & !PG_LOCKED, Ordering::Relaxed);
        Ok(())
    }

    /// Mirrors ClearPageLRU()/ClearPagePrivate() (`clear_bit`, atomic).
    pub fn clear_page_flag(&self, _cx: &Cx, pfn: Pfn, flag: u64) -> Result<(), Errno> {
        self.page(pfn)?.flags.fetch_and(!(flag & !PG_LOCKED), Ordering::Relaxed);
        Ok(())
    }

    /// Mirrors PageLRU()/PagePrivate()/PageLocked(): whether every bit of `flag` is set.
    pub fn test_page_flag(&self, _cx: &Cx, pfn: Pfn, flag: u64) -> bool {
        self.page_flags(pfn) & flag == flag
    }

    /// Mirrors __SetPageBalloon(): the page's type becomes balloon (`_mapcount` =
    /// `PAGE_BALLOON_MAPCOUNT_VALUE`); a page that is mapped or typed already is reported.
    pub fn set_page_balloon(&self, cx: &Cx, pfn: Pfn) -> Result<(), Errno> {
        let page = self.page(pfn)?;
        let was = page.mapcount.swap(PAGE_BALLOON_MAPCOUNT_VALUE, Ordering::Relaxed);
        if was != MAPCOUNT_NONE {
            let message = format!("__SetPageBalloon: pfn {pfn} has _mapcount {was}, expected -1");
            cx.sim().report(Some(cx), Violation::new("page:bad-state", message));
        }
        Ok(())
    }

    /// Mirrors __ClearPageBalloon(); clearing a page that is not a balloon page is reported.
    pub fn clear_page_balloon(&self, cx: &Cx, pfn: Pfn) -> Result<(), Errno> {
        let page = self.page(pfn)?;
        let was = page.mapcount.swap(MAPCOUNT_NONE, Ordering::Relaxed);
        if was != PAGE_BALLOON_MAPCOUNT_VALUE {
            let message = format!("__ClearPageBalloon: pfn {pfn} is not a balloon page (_mapcount {was})");
            cx.sim().report(Some(cx), Violation::new("page:bad-state", message));
        }
        Ok(())
    }

    /// Mirrors PageBalloon().
    pub fn page_balloon(&self, _cx: &Cx, pfn: Pfn) -> bool {
        self.page(pfn).is_ok_and(|page| page.mapcount.load(Ordering::Acquire) == PAGE_BALLOON_MAPCOUNT_VALUE)
    }

    /// `page->mapping = mapping` (an `address_space` named by its address).
    pub fn set_page_mapping(&self, _cx: &Cx, pfn: Pfn, mapping: Option<u64>) -> Result<(), Errno> {
        locked(&self.page(pfn)?.meta).mapping = mapping;
        Ok(())
    }

    /// Mirrors page_mapping() for the pages the models have (no anon or swap cache pages).
    pub fn page_mapping(&self, _cx: &Cx, pfn: Pfn) -> Option<u64> {
        self.page(pfn).ok().and_then(|page| locked(&page.meta).mapping)
    }

    /// Mirrors set_page_private().
    pub fn set_page_private(&self, _cx: &Cx, pfn: Pfn, private: u64) -> Result<(), Errno> {
        locked(&self.page(pfn)?.meta).private = private;
        Ok(())
    }

    /// Mirrors page_private().
    pub fn page_private(&self, _cx: &Cx, pfn: Pfn) -> u64 {
        self.page(pfn).map_or(0, |page| locked(&page.meta).private)
    }

    /// The pages' `lru` links and the `heads` a model owns, as list memory for `cx`.
    pub fn lru_mem<'a>(&'a self, cx: &'a Cx, heads: &'a mut PageListHeads) -> PageLruMem<'a> {
        PageLruMem { pages: self, heads, cx }
    }
}

// --- the lru link --------------------------------------------------------------------------------

/// The address of a `struct list_head` that page lists use: a head a model owns, or a page's
/// `lru` link.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum PageNode {
    /// A head in a [`PageListHeads`] (`b_dev_info->pages`, a local `LIST_HEAD`).
    Head(u32),
    /// `&page->lru`.
    Lru(PageRef),
}

impl PageNode {
    /// `list_entry(node, struct page, lru)`: the page whose `lru` this is.
    pub fn page(self) -> Option<PageRef> {
        match self {
            PageNode::Lru(page) => Some(page),
            PageNode::Head(_) => None,
        }
    }
}

/// List heads outside pages, kept by a model under the lock that guards its lists.
#[derive(Clone, Debug)]
pub struct PageListHeads {
    name: &'static str,
    heads: Vec<ListHead<PageNode>>,
}

impl PageListHeads {
    /// No heads yet; `name` names the lists in reports.
    pub fn new(name: &'static str) -> PageListHeads {
        PageListHeads { name, heads: Vec::new() }
    }

    /// `LIST_HEAD(name)`: a new empty list.
    pub fn add_head(&mut self) -> PageNode {
        let node = PageNode::Head(self.heads.len() as u32);
        self.heads.push(ListHead::init(node));
        node
    }
}

/// Page lists as [`ListMemory`]: a page's `lru` is read from its `struct page`, and a link to an
/// allocation of a page that has since been freed is a use after free.
#[derive(Debug)]
pub struct PageLruMem<'a> {
    pages: &'a PageAllocator,
    heads: &'a mut PageListHeads,
    cx: &'a Cx,
}

impl PageLruMem<'_> {
    /// Runs `f` on the `lru` link of `page`'s allocation, or reports the use after free.
    fn with_lru<R>(
        &mut self,
        page: PageRef,
        f: impl FnOnce(&mut ListHead<PageNode>) -> R,
    ) -> Result<R, Oops> {
        if let Some(found) = self.pages.pages.get(page.pfn) {
            let mut meta = locked(&found.meta);
            if meta.generation == page.generation && !meta.freed {
                return Ok(f(&mut meta.lru));
            }
        }
        let violation = Violation::new(
            "use-after-free",
            format!(
                "list {}: followed a link to pfn {} (allocation {}), which was freed",
                self.heads.name, page.pfn, page.generation
            ),
        );
        self.cx.sim().report(Some(self.cx), violation.clone());
        Err(Oops(violation))
    }

    fn head(&mut self, id: u32) -> Result<&mut ListHead<PageNode>, Oops> {
        let name = self.heads.name;
        match self.heads.heads.get_mut(id as usize) {
            Some(head) => Ok(head),
            None => {
                let violation = Violation::new("use-after-free", format!("list {name}: no head {id}"));
                self.cx.sim().report(Some(self.cx), violation.clone());
                Err(Oops(violation))
            }
        }
    }
}

impl ListMemory for PageLruMem<'_> {
    type Node = PageNode;

    fn read(&mut self, node: PageNode) -> Result<ListHead<PageNode>, Oops> {
        match node {
            PageNode::Head(id) => Ok(*self.head(id)?),
            PageNode::Lru(page) => self.with_lru(page, |lru| *lru),
        }
    }

    fn write(&mut self, node: PageNode, value: ListHead<PageNode>) -> Result<(), Oops> {
        match node {
            PageNode::Head(id) => *self.head(id)? = value,
            PageNode::Lru(page) => self.with_lru(page, |lru| *lru = value)?,
        }
        Ok(())
    }

    /// One look-up of the head (and one hold of its page's metadata lock) for the field, where
    /// the default's read and write made two: a `list_add` or `list_del` writes two single
    /// fields, so this is a third of their look-ups (the balloon's page lists, callgrind).
    fn set_next(&mut self, node: PageNode, link: Link<PageNode>) -> Result<(), Oops> {
        match node {
            PageNode::Head(id) => self.head(id)?.next = link,
            PageNode::Lru(page) => self.with_lru(page, |lru| lru.next = link)?,
        }
        Ok(())
    }

    fn set_prev(&mut self, node: PageNode, link: Link<PageNode>) -> Result<(), Oops> {
        match node {
            PageNode::Head(id) => self.head(id)?.prev = link,
            PageNode::Lru(page) => self.with_lru(page, |lru| lru.prev = link)?,
        }
        Ok(())
    }

    fn bad_link(&mut self, at: PageNode, link: Link<PageNode>, what: &str) -> Oops {
        let violation = poisoned_link(self.heads.name, at, link, what);
        self.cx.sim().report(Some(self.cx), violation.clone());
        Oops(violation)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::list;
    use crate::lockdep::ReportMode;
    use crate::locks::SpinLock;
    use crate::mm::{Gfp, PageAllocConfig, PAGE_SIZE_4K};
    use crate::sim::{Sim, SimConfig};

    fn sim() -> Sim {
        Sim::new(SimConfig::new(1).lockdep(ReportMode::Collect))
    }

    fn pages() -> PageAllocator {
        PageAllocator::new(&PageAllocConfig {
            page_size: PAGE_SIZE_4K,
            zone_pages: vec![2, 2],
            limit_pages: 4,
        })
        .expect("valid")
    }

    fn kinds(sim: &Sim) -> Vec<String> {
        sim.violations().into_iter().map(|v| v.kind.to_string()).collect()
    }

    #[test]
    fn the_last_put_frees_the_page_and_get_unless_zero_then_fails() {
        let sim = sim();
        let cx = sim.cx("t", 0);
        let pages = pages();
        let pfn = pages.alloc_page(&cx, Gfp::GFP_KERNEL, "t").expect("page");
        assert_eq!(pages.page_count(&cx, pfn), Ok(1));
        pages.get_page(&cx, pfn).expect("live");
        assert!(pages.get_page_unless_zero(&cx, pfn));
        assert_eq!(pages.page_count(&cx, pfn), Ok(3));
        pages.put_page(&cx, pfn).expect("put");
        pages.put_page(&cx, pfn).expect("put");
        assert_eq!(pages.allocated_pages(&cx), 1, "two references dropped, one left");
        pages.put_page(&cx, pfn).expect("last put");
        assert_eq!(pages.allocated_pages(&cx), 0, "the last put freed it");
        assert!(!pages.get_page_unless_zero(&cx, pfn));
        assert!(kinds(&sim).is_empty());
    }

    #[test]
    fn a_put_below_zero_and_a_get_on_a_free_page_are_reported() {
        let sim = sim();
        let cx = sim.cx("t", 0);
        let pages = pages();
        let pfn = pages.alloc_page(&cx, Gfp::GFP_KERNEL, "t").expect("page");
        pages.put_page(&cx, pfn).expect("last put");
        assert_eq!(pages.put_page(&cx, pfn), Err(Errno::EINVAL));
        assert_eq!(pages.get_page(&cx, pfn), Err(Errno::EINVAL));
        assert_eq!(pages.page_count(&cx, pfn), Ok(0), "neither changed the count");
        assert_eq!(kinds(&sim), ["page:refcount-underflow", "page:get-free"]);
        assert_eq!(pages.page_count(&cx, 99), Err(Errno::EINVAL));
    }

    #[test]
    fn free_page_keeps_its_double_free_report_and_respects_other_references() {
        let sim = sim();
        let cx = sim.cx("t", 0);
        let pages = pages();
        let pfn = pages.alloc_page(&cx, Gfp::GFP_KERNEL, "t").expect("page");
        pages.get_page(&cx, pfn).expect("live");
        pages.free_page(&cx, pfn).expect("drops one reference");
        assert_eq!(pages.allocated_pages(&cx), 1);
        pages.free_page(&cx, pfn).expect("the last reference");
        assert_eq!(pages.free_page(&cx, pfn), Err(Errno::EINVAL));
        assert_eq!(kinds(&sim), ["page:double-free"]);
    }

    #[test]
    fn a_frame_allocated_again_is_its_struct_page_reset_for_a_new_generation() {
        let sim = sim();
        let cx = sim.cx("t", 0);
        let pages = pages();
        let pfn = pages.alloc_page(&cx, Gfp::GFP_KERNEL, "t").expect("page");
        let first = pages.page_ref(&cx, pfn).expect("page");
        // PG_referenced (bit 2): a flag the check at free allows, which the free path clears.
        pages.set_page_flag(&cx, pfn, 1 << 2).expect("flag");
        pages.set_page_private(&cx, pfn, 9).expect("private");
        pages.put_page(&cx, pfn).expect("last put");
        assert_eq!(pages.page_count(&cx, pfn), Ok(0), "free");
        assert_eq!(pages.page_ref(&cx, pfn), Ok(first), "a free frame keeps its last generation");
        let again = pages.alloc_page(&cx, Gfp::GFP_KERNEL, "t").expect("page");
        assert_eq!(again, pfn, "the frame is reused");
        let second = pages.page_ref(&cx, pfn).expect("page");
        assert_eq!(second.generation, first.generation + 1, "{first:?} then {second:?}");
        assert_eq!(pages.page_count(&cx, pfn), Ok(1), "prep_new_page: one reference");
        assert!(!pages.test_page_flag(&cx, pfn, 1 << 2), "the allowed flag was cleared at free");
        assert_eq!(pages.page_private(&cx, pfn), 0);
        assert_eq!(pages.page_mapping(&cx, pfn), None);
        assert!(!pages.page_balloon(&cx, pfn));
        assert_eq!(pages.page_ref(&cx, 4), Err(Errno::EINVAL), "outside memory");
        assert!(kinds(&sim).is_empty(), "{:?}", kinds(&sim));
    }

    #[test]
    fn page_lock_is_a_lockdep_class_and_unlocking_an_unlocked_page_is_reported() {
        let sim = sim();
        let cx = sim.cx("t", 0);
        let pages = pages();
        let pfn = pages.alloc_page(&cx, Gfp::GFP_KERNEL, "t").expect("page");
        assert!(pages.trylock_page(&cx, pfn));
        assert!(!pages.trylock_page(&cx, pfn), "the bit is taken");
        assert!(cx.holds(PAGE_LOCK_CLASS));
        pages.unlock_page(&cx, pfn).expect("unlock");
        assert!(!cx.holds(PAGE_LOCK_CLASS));
        pages.lock_page(&cx, pfn).expect("lock");
        assert!(pages.page_locked(&cx, pfn));
        assert_eq!(pages.lock_page(&cx, pfn), Err(Errno::EDEADLK), "waiting for itself");
        pages.unlock_page(&cx, pfn).expect("unlock");
        assert_eq!(pages.unlock_page(&cx, pfn), Err(Errno::EINVAL));
        let found = kinds(&sim);
        assert!(found.contains(&"page:unlock-unlocked".to_string()), "{found:?}");
        assert!(found.contains(&"lockdep:recursive-locking".to_string()), "{found:?}");
        let acquired = sim
            .trace()
            .events()
            .iter()
            .filter(|e| matches!(&e.kind, crate::trace::EventKind::Acquired { class, .. } if &**class == PAGE_LOCK_CLASS))
            .count();
        assert_eq!(acquired, 2, "each page lock taken is a trace event");
    }

    #[test]
    fn lock_page_under_a_spinlock_is_sleeping_in_atomic_and_trylock_is_not() {
        let sim = sim();
        let cx = sim.cx("t", 0);
        let pages = pages();
        let pfn = pages.alloc_page(&cx, Gfp::GFP_KERNEL, "t").expect("page");
        let lock = SpinLock::new("pages_lock", ());
        let guard = lock.lock(&cx);
        assert!(pages.trylock_page(&cx, pfn));
        pages.unlock_page(&cx, pfn).expect("unlock");
        assert!(sim.lockdep().reports().is_empty());
        pages.lock_page(&cx, pfn).expect("lock");
        pages.unlock_page(&cx, pfn).expect("unlock");
        drop(guard);
        assert_eq!(sim.lockdep().reports()[0].kind(), "sleep-in-atomic");
    }

    #[test]
    fn balloon_type_mapping_and_private_round_trip_and_a_typed_page_freed_is_bad_state() {
        let sim = sim();
        let cx = sim.cx("t", 0);
        let pages = pages();
        let pfn = pages.alloc_page(&cx, Gfp::GFP_HIGHUSER_MOVABLE, "t").expect("page");
        pages.set_page_balloon(&cx, pfn).expect("typed");
        pages.set_page_flag(&cx, pfn, PG_PRIVATE).expect("flag");
        pages.set_page_mapping(&cx, pfn, Some(0xffff_8800_0000_1000)).expect("mapping");
        pages.set_page_private(&cx, pfn, 7).expect("private");
        assert!(pages.page_balloon(&cx, pfn));
        assert!(pages.test_page_flag(&cx, pfn, PG_PRIVATE));
        assert_eq!(pages.page_mapping(&cx, pfn), Some(0xffff_8800_0000_1000));
        assert_eq!(pages.page_private(&cx, pfn), 7);
        pages.put_page(&cx, pfn).expect("put");
        assert_eq!(kinds(&sim), ["page:bad-state"]);
        assert_eq!(pages.allocated_pages(&cx), 1, "a bad page is leaked, as the kernel leaks it");
    }

    #[test]
    fn lru_links_live_in_the_page_and_a_link_to_a_freed_page_is_a_use_after_free() {
        let sim = sim();
        let cx = sim.cx("t", 0);
        let pages = pages();
        let mut heads = PageListHeads::new("test pages");
        let head = heads.add_head();
        let pfns: Vec<Pfn> =
            (0..2).map(|_| pages.alloc_page(&cx, Gfp::GFP_KERNEL, "t").expect("page")).collect();
        let nodes: Vec<PageNode> =
            pfns.iter().map(|&pfn| PageNode::Lru(pages.page_ref(&cx, pfn).expect("page"))).collect();
        for node in &nodes {
            list::list_add_tail(&mut pages.lru_mem(&cx, &mut heads), *node, head).expect("add");
        }
        let walked = list::walk(&mut pages.lru_mem(&cx, &mut heads), head, 8).expect("walk");
        assert_eq!(walked, nodes);
        assert_eq!(walked[0].page().map(|p| p.pfn), Some(pfns[0]));
        // Freed while still linked, and allocated again: the list's link is stale.
        pages.put_page(&cx, pfns[1]).expect("put");
        let again = pages.alloc_page(&cx, Gfp::GFP_KERNEL, "t").expect("page");
        assert_eq!(again, pfns[1], "the frame is reused");
        assert!(list::walk(&mut pages.lru_mem(&cx, &mut heads), head, 8).is_err());
        assert_eq!(kinds(&sim), ["use-after-free"]);
    }
}
