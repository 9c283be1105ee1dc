//! mm/balloon_compaction.c and include/linux/balloon_compaction.h (Linux 4.4) over sim-core's
//! `struct page`: `struct balloon_dev_info` (its page list head, `isolated_pages` and
//! `pages_lock`); balloon_page_enqueue/dequeue, isolate, putback and migrate, with the page lock,
//! the reference count, `PG_private`, the balloon page type and `page->lru` as 4.4 uses them; and
//! the part of mm/compaction.c and mm/migrate.c that moves one balloon page
//! ([`compact_one`]). The list links live in the pages: a page isolated by compaction is
//! `list_del`ed (poisoned) and moved to compaction's own list, as in the kernel.
//!
//! Left out: vm event counters, `balloon_page_device()` (one balloon per guest: the page's
//! `private` is checked to name it), the `page_count(page) == 1` "freed under us" exit of
//! unmap_and_move (a balloon page holds the balloon's reference while isolated), and the ten
//! passes of migrate_pages (one pass; a `-EAGAIN` page is put back at once).

use std::sync::{Mutex as StdMutex, MutexGuard};

use sim_core::list::{self, SafeCursor};
use sim_core::mm::page::{PageListHeads, PageLruMem, PageNode, PG_PRIVATE};
use sim_core::mm::{Gfp, PageAllocator, Pfn};
use sim_core::{Cx, Errno, Guarded, SpinLock, Violation, ViolationKind};

/// `balloon_mapping_gfp_mask() | __GFP_NOMEMALLOC | __GFP_NORETRY`: what 4.4's
/// balloon_page_enqueue allocates with (`__GFP_NOWARN` came later).
pub(crate) const BALLOON_GFP: Gfp =
    Gfp(Gfp::GFP_HIGHUSER_MOVABLE.0 | Gfp::__GFP_NOMEMALLOC.0 | Gfp::__GFP_NORETRY.0);

/// The fault site of balloon page allocations.
pub(crate) const BALLOON_ALLOC_SITE: &str = "balloon_page_alloc";

/// The lock class of `b_dev_info->pages_lock`.
pub const PAGES_LOCK_CLASS: &str = "b_dev_info->pages_lock";

/// What `page_private()` of a balloon page holds: the address of its `balloon_dev_info`.
const BALLOON_DEV_INFO_ADDR: u64 = 0xffff_8800_0bad_b000;

/// `struct balloon_dev_info`.
pub struct BalloonDevInfo {
    /// `pages_lock`, taken with irqs saved as the kernel does. It guards `pages` and
    /// `isolated_pages` by convention (the header says so), not as a payload.
    pub pages_lock: SpinLock<()>,
    /// `b_dev_info->pages` (the head; the links are in the pages). Plain memory, like
    /// `page->lru`: 4.4's dequeue walks it without `pages_lock`.
    heads: StdMutex<PageListHeads>,
    head: PageNode,
    /// `b_dev_info->isolated_pages`.
    isolated_pages: Guarded<u64>,
}

impl std::fmt::Debug for BalloonDevInfo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BalloonDevInfo").finish_non_exhaustive()
    }
}

impl Default for BalloonDevInfo {
    fn default() -> Self {
        BalloonDevInfo::new()
    }
}

fn report(cx: &Cx, kind: ViolationKind, message: String) {
    cx.sim().report(Some(cx), Violation::new(kind, message));
}

impl BalloonDevInfo {
    /// Mirrors balloon_devinfo_init().
    pub fn new() -> BalloonDevInfo {
        let mut heads = PageListHeads::new("b_dev_info->pages");
        let head = heads.add_head();
        BalloonDevInfo {
            pages_lock: SpinLock::new(PAGES_LOCK_CLASS, ()),
            heads: StdMutex::new(heads),
            head,
            isolated_pages: Guarded::new("b_dev_info->isolated_pages", PAGES_LOCK_CLASS, 0),
        }
    }

    fn heads(&self) -> MutexGuard<'_, PageListHeads> {
        self.heads.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Runs one list operation on the balloon list's memory (held only for that operation, so
    /// no facade lock is ever taken under it).
    fn lru<R>(
        &self,
        cx: &Cx,
        pages: &PageAllocator,
        f: impl FnOnce(&mut PageLruMem<'_>, PageNode) -> R,
    ) -> R {
        let mut heads = self.heads();
        f(&mut pages.lru_mem(cx, &mut heads), self.head)
    }

    fn node(cx: &Cx, pages: &PageAllocator, pfn: Pfn) -> Option<PageNode> {
        pages.page_ref(cx, pfn).ok().map(PageNode::Lru)
    }

    /// `b_dev_info->isolated_pages`, for the driver's migratepage (under `pages_lock`).
    pub(crate) fn isolated_pages(&self) -> &Guarded<u64> {
        &self.isolated_pages
    }

    /// Mirrors balloon_page_alloc() (Linux 4.15; the allocation half of 4.4's enqueue).
    pub fn balloon_page_alloc(cx: &Cx, pages: &PageAllocator) -> Result<Pfn, Errno> {
        pages.alloc_page(cx, BALLOON_GFP, BALLOON_ALLOC_SITE)
    }

    /// Mirrors balloon_page_insert(): the caller holds the page lock and `pages_lock`. The page
    /// becomes a balloon page, `PG_private` and `page_private` name the device, and it goes to
    /// the head of the list.
    pub fn balloon_page_insert(&self, cx: &Cx, pages: &PageAllocator, pfn: Pfn) {
        let _ = pages.set_page_balloon(cx, pfn);
        let _ = pages.set_page_flag(cx, pfn, PG_PRIVATE);
        let _ = pages.set_page_private(cx, pfn, BALLOON_DEV_INFO_ADDR);
        if let Some(node) = Self::node(cx, pages, pfn) {
            // An oops is already reported; the kernel would be dead.
            let _ = self.lru(cx, pages, |mem, head| list::list_add(mem, node, head));
        }
    }

    /// Mirrors balloon_page_delete() of 4.4: the type and `page_private` go; the page leaves the
    /// list only if `PG_private` says it is on it (an isolated page is on compaction's list).
    pub fn balloon_page_delete(&self, cx: &Cx, pages: &PageAllocator, pfn: Pfn) {
        let _ = pages.clear_page_balloon(cx, pfn);
        let _ = pages.set_page_private(cx, pfn, 0);
        if pages.test_page_flag(cx, pfn, PG_PRIVATE) {
            let _ = pages.clear_page_flag(cx, pfn, PG_PRIVATE);
            if let Some(node) = Self::node(cx, pages, pfn) {
                let _ = self.lru(cx, pages, |mem, _| list::list_del(mem, node));
            }
        }
    }

    /// The second half of 4.4's balloon_page_enqueue() (Linux 4.15's `balloon_page_enqueue(b,
    /// page)`): lock the fresh page (`BUG_ON(!trylock_page(page))`), insert it under
    /// `pages_lock`, unlock it.
    pub fn balloon_page_enqueue_page(&self, cx: &Cx, pages: &PageAllocator, pfn: Pfn) {
        if !pages.trylock_page(cx, pfn) {
            report(cx, ViolationKind::Bug, format!("balloon_page_enqueue: BUG_ON(!trylock_page({pfn}))"));
            return;
        }
        {
            let _guard = self.pages_lock.lock_irqsave(cx);
            self.balloon_page_insert(cx, pages, pfn);
        }
        let _ = pages.unlock_page(cx, pfn);
    }

    /// Mirrors balloon_page_push() (Linux 4.15): `page` onto a caller's local list through
    /// `page->lru` (fill_balloon's `LIST_HEAD(pages)` of pages allocated before balloon_lock).
    pub fn balloon_page_push(
        cx: &Cx,
        pages: &PageAllocator,
        list: &mut PageListHeads,
        head: PageNode,
        pfn: Pfn,
    ) {
        if let Some(node) = Self::node(cx, pages, pfn) {
            let _ = list::list_add(&mut pages.lru_mem(cx, list), node, head);
        }
    }

    /// Mirrors balloon_page_pop() (Linux 4.15): the first page of a local list, `list_del`ed
    /// (its `lru` poisoned); `None` when the list is empty.
    pub fn balloon_page_pop(
        cx: &Cx,
        pages: &PageAllocator,
        list: &mut PageListHeads,
        head: PageNode,
    ) -> Option<Pfn> {
        let mut mem = pages.lru_mem(cx, list);
        let first = list::next(&mut mem, head, "balloon_page_pop").ok()?;
        let page = first.page()?;
        let _ = list::list_del(&mut mem, first);
        Some(page.pfn)
    }

    /// Mirrors balloon_page_enqueue() → balloon_page_enqueue_one() as "mm/balloon_compaction:
    /// List interfaces" (418a3ab1e778, 5.3-rc1) wrote them: the one-page enqueue takes the page
    /// off the caller's list (`list_del(&page->lru)`) before inserting it, which is right for
    /// balloon_page_list_enqueue() and wrong for a page fill_balloon() already popped: its links
    /// are LIST_POISON, and the kernel takes a #GP ("avoid duplicate page removal" moved the
    /// `list_del` to the list variant). `list` is where the page's links last were.
    pub fn balloon_page_enqueue_one(
        &self,
        cx: &Cx,
        pages: &PageAllocator,
        list: &mut PageListHeads,
        pfn: Pfn,
    ) {
        if !pages.trylock_page(cx, pfn) {
            report(cx, ViolationKind::Bug, format!("balloon_page_enqueue_one: BUG_ON(!trylock_page({pfn}))"));
            return;
        }
        {
            let _guard = self.pages_lock.lock_irqsave(cx);
            if let Some(node) = Self::node(cx, pages, pfn) {
                // An oops on a poisoned link is reported; the model goes on as if it survived.
                let _ = list::list_del(&mut pages.lru_mem(cx, list), node);
            }
            self.balloon_page_insert(cx, pages, pfn);
        }
        let _ = pages.unlock_page(cx, pfn);
    }

    /// Mirrors balloon_page_enqueue() of 4.4: allocate a page (`None`: the allocation failed)
    /// and enqueue it.
    pub fn balloon_page_enqueue(&self, cx: &Cx, pages: &PageAllocator) -> Option<Pfn> {
        let pfn = Self::balloon_page_alloc(cx, pages).ok()?;
        self.balloon_page_enqueue_page(cx, pages, pfn);
        Some(pfn)
    }

    /// Mirrors balloon_page_dequeue(): takes the first listed page whose lock it gets and which
    /// is not isolated (`PG_private` set), deleting it from the list. Finding nothing, it checks
    /// under `pages_lock` that something is isolated; an empty list with nothing isolated is the
    /// kernel's BUG() ("some balloon pages are lost").
    ///
    /// `walk_locked` chooses the walk. Off, 4.4's: `list_for_each_entry_safe` *without*
    /// `pages_lock`, which takes the lock only around the delete, so compaction can isolate (and
    /// `list_del`, poisoning) the page the walk's cursor will move to next. On, as "virtio_balloon:
    /// fix race between migration and ballooning" (Minchan Kim, Dec 2015) made it: the whole
    /// walk under `pages_lock`.
    pub fn balloon_page_dequeue(&self, cx: &Cx, pages: &PageAllocator, walk_locked: bool) -> Option<Pfn> {
        let dequeued = if walk_locked {
            let _guard = self.pages_lock.lock_irqsave(cx);
            self.dequeue_walk(cx, pages, false)
        } else {
            self.dequeue_walk(cx, pages, true)
        };
        if dequeued.is_some() {
            return dequeued;
        }
        let guard = self.pages_lock.lock_irqsave(cx);
        let empty = self.lru(cx, pages, |mem, head| list::list_empty(mem, head)).unwrap_or(false);
        if empty && self.isolated_pages.get(cx) == 0 {
            drop(guard);
            report(
                cx,
                ViolationKind::Bug,
                "balloon_page_dequeue: the page list is empty and no page is isolated".to_string(),
            );
        }
        None
    }

    /// The `list_for_each_entry_safe` loop of balloon_page_dequeue(): the first page it can lock
    /// that is still a listed balloon page (`PG_private`) is deleted and returned. `lock_delete`:
    /// the delete takes `pages_lock` itself (4.4's unlocked walk); otherwise the caller holds it.
    fn dequeue_walk(&self, cx: &Cx, pages: &PageAllocator, lock_delete: bool) -> Option<Pfn> {
        let mut cursor = SafeCursor::new(self.head);
        // An oops on a poisoned link ends the walk (reported already).
        while let Ok(Some(node)) = self.lru(cx, pages, |mem, _| cursor.next(mem)) {
            let pfn = node.page()?.pfn;
            if !pages.trylock_page(cx, pfn) {
                cx.sim().mark("dequeue-page-locked");
                continue;
            }
            if !pages.test_page_flag(cx, pfn, PG_PRIVATE) {
                // Raced with isolation (possible only in the unlocked walk).
                cx.sim().mark("dequeue-raced-isolation");
                let _ = pages.unlock_page(cx, pfn);
                continue;
            }
            if lock_delete {
                let _guard = self.pages_lock.lock_irqsave(cx);
                self.balloon_page_delete(cx, pages, pfn);
            } else {
                self.balloon_page_delete(cx, pages, pfn);
            }
            let _ = pages.unlock_page(cx, pfn);
            return Some(pfn);
        }
        None
    }

    /// Mirrors balloon_page_movable(): a balloon page with `PG_private` (not isolated). A
    /// lockless test, to be repeated under the page lock.
    pub fn balloon_page_movable(cx: &Cx, pages: &PageAllocator, pfn: Pfn) -> bool {
        pages.page_balloon(cx, pfn) && pages.test_page_flag(cx, pfn, PG_PRIVATE)
    }

    /// Mirrors balloon_page_isolate(): a reference unless the page is being freed
    /// (`get_page_unless_zero`), then under the page lock (`trylock_page`) a movable balloon
    /// page is taken off the list with `PG_private` cleared and `isolated_pages` raised, all
    /// under `pages_lock` (`__isolate_balloon_page`). Keeps the reference on success.
    pub fn balloon_page_isolate(&self, cx: &Cx, pages: &PageAllocator, pfn: Pfn) -> bool {
        if !pages.get_page_unless_zero(cx, pfn) {
            return false;
        }
        if pages.trylock_page(cx, pfn) {
            if Self::balloon_page_movable(cx, pages, pfn) {
                {
                    let _guard = self.pages_lock.lock_irqsave(cx);
                    let _ = pages.clear_page_flag(cx, pfn, PG_PRIVATE);
                    if let Some(node) = Self::node(cx, pages, pfn) {
                        let _ = self.lru(cx, pages, |mem, _| list::list_del(mem, node));
                    }
                    self.isolated_pages.write(cx, |count| *count += 1);
                }
                let _ = pages.unlock_page(cx, pfn);
                return true;
            }
            let _ = pages.unlock_page(cx, pfn);
        }
        let _ = pages.put_page(cx, pfn);
        false
    }

    /// Mirrors balloon_page_putback(): under `lock_page`, a balloon page goes back on the list
    /// with `PG_private` set and `isolated_pages` lowered (`__putback_balloon_page`, under
    /// `pages_lock`), and the isolation's reference is dropped; anything else is the kernel's
    /// WARN ("not movable balloon page").
    pub fn balloon_page_putback(&self, cx: &Cx, pages: &PageAllocator, pfn: Pfn) {
        if pages.lock_page(cx, pfn).is_err() {
            return;
        }
        if pages.page_balloon(cx, pfn) {
            {
                let _guard = self.pages_lock.lock_irqsave(cx);
                let _ = pages.set_page_flag(cx, pfn, PG_PRIVATE);
                if let Some(node) = Self::node(cx, pages, pfn) {
                    let _ = self.lru(cx, pages, |mem, head| list::list_add(mem, node, head));
                }
                self.isolated_pages.write(cx, |count| *count = count.wrapping_sub(1));
            }
            let _ = pages.put_page(cx, pfn);
        } else {
            report(
                cx,
                ViolationKind::Bug,
                format!("balloon_page_putback: WARN: pfn {pfn} is not a movable balloon page"),
            );
        }
        let _ = pages.unlock_page(cx, pfn);
    }

    /// Mirrors balloon_page_migrate() of 4.4, called with `page` locked: locks the fresh
    /// `newpage` (`BUG_ON(!trylock_page(newpage))`), checks `page` is still a balloon page, and
    /// calls the driver's `migratepage`.
    pub fn balloon_page_migrate(
        &self,
        cx: &Cx,
        pages: &PageAllocator,
        newpage: Pfn,
        page: Pfn,
        migratepage: impl FnOnce(&Cx, Pfn, Pfn) -> Result<(), Errno>,
    ) -> Result<(), Errno> {
        if !pages.trylock_page(cx, newpage) {
            report(cx, ViolationKind::Bug, format!("balloon_page_migrate: BUG_ON(!trylock_page({newpage}))"));
            return Err(Errno::EAGAIN);
        }
        let rc = if pages.page_balloon(cx, page) {
            migratepage(cx, newpage, page)
        } else {
            report(
                cx,
                ViolationKind::Bug,
                format!("balloon_page_migrate: WARN: pfn {page} is not a balloon page"),
            );
            Err(Errno::EAGAIN)
        };
        let _ = pages.unlock_page(cx, newpage);
        rc
    }

    /// The balloon's pages in list order (an observer's walk; isolated pages are not on it);
    /// empty when a link is bad (the walk's oops is reported). [`list::walk_into`]'s loop, each
    /// node's pfn kept as it is reached: the checks walk this list after every operation, and
    /// a list of nodes made only to be turned into pfns cost as much as the links' reads.
    /// `expected`: room to make first (to a checker, how many pages its last walk found), so
    /// the walk does not grow the vector page by page; never a limit.
    pub fn listed_pages(&self, cx: &Cx, pages: &PageAllocator, expected: usize) -> Vec<Pfn> {
        let mut listed = Vec::with_capacity(expected);
        let walked = self.lru(cx, pages, |mem, head| -> Result<(), list::Oops> {
            let mut at = list::next(mem, head, "list_for_each")?;
            while at != head {
                listed.extend(at.page().map(|page| page.pfn));
                at = list::next(mem, at, "list_for_each")?;
            }
            Ok(())
        });
        if walked.is_err() {
            listed.clear();
        }
        listed
    }

    /// Every listed balloon page, in pfn order.
    pub fn all_pages(&self, cx: &Cx, pages: &PageAllocator) -> Vec<Pfn> {
        let mut all = self.listed_pages(cx, pages, 0);
        all.sort_unstable();
        all
    }

    /// `isolated_pages` as an observer reads it.
    pub fn isolated_count(&self, cx: &Cx) -> u64 {
        self.isolated_pages.get(cx)
    }
}

/// What one compaction step did.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum CompactResult {
    /// No balloon page could be isolated.
    Nothing,
    /// No target page in the requested zone: the page was put back.
    NoTarget,
    /// The page lock was taken, or `migratepage` returned `-EAGAIN`: put back, to retry later.
    Again,
    /// Migrated from the first pfn to the second.
    Migrated(Pfn, Pfn),
}

/// isolate_migratepages_block() for balloon pages: scans the page frames from `start`
/// (wrapping), and isolates the first that passes the lockless balloon_page_movable() test
/// and balloon_page_isolate(); it goes on compaction's private list (`page->lru`).
fn isolate_one(cx: &Cx, dev_info: &BalloonDevInfo, pages: &PageAllocator, start: usize) -> Option<Pfn> {
    let frames = pages.spanned_pages(cx);
    (0..frames).map(|i| (start as u64 + i) % frames).find(|&pfn| {
        BalloonDevInfo::balloon_page_movable(cx, pages, pfn) && dev_info.balloon_page_isolate(cx, pages, pfn)
    })
}

/// One step of compaction (or memory offlining) over the balloon, as 4.4 runs it: isolate a
/// balloon page found by a pfn scan from `start`, put it on a local `migratepages` list, take a
/// target page from zone `to_zone` (`compaction_alloc`), then unmap_and_move(): `trylock_page`
/// (asynchronous compaction gives up with `-EAGAIN`), balloon_page_migrate() with the driver's
/// `migratepage`, unlock. On success the isolation's reference and the target's extra one are
/// dropped; otherwise the page is put back (putback_movable_pages) and the target freed.
pub fn compact_one(
    cx: &Cx,
    dev_info: &BalloonDevInfo,
    pages: &PageAllocator,
    start: usize,
    to_zone: usize,
    migratepage: impl FnOnce(&Cx, Pfn, Pfn) -> Result<(), Errno>,
) -> CompactResult {
    let Some(page) = isolate_one(cx, dev_info, pages, start) else {
        return CompactResult::Nothing;
    };
    let mut local = PageListHeads::new("cc->migratepages");
    let migratepages = local.add_head();
    let node = BalloonDevInfo::node(cx, pages, page);
    if let Some(node) = node {
        let _ = list::list_add(&mut pages.lru_mem(cx, &mut local), node, migratepages);
    }
    let unlink = |local: &mut PageListHeads| {
        if let Some(node) = node {
            let _ = list::list_del(&mut pages.lru_mem(cx, local), node);
        }
    };
    let zones = pages.zones_count(cx);
    let Ok(newpage) = pages.alloc_page_in_zone(cx, to_zone % zones, "compaction_alloc") else {
        unlink(&mut local);
        dev_info.balloon_page_putback(cx, pages, page);
        return CompactResult::NoTarget;
    };
    let rc = if pages.trylock_page(cx, page) {
        let rc = dev_info.balloon_page_migrate(cx, pages, newpage, page, migratepage);
        let _ = pages.unlock_page(cx, page);
        rc
    } else {
        cx.sim().mark("compaction-page-locked");
        Err(Errno::EAGAIN)
    };
    unlink(&mut local);
    match rc {
        Ok(()) => {
            // putback_lru_page(page) drops the isolation's reference: the page is freed. The
            // balloon holds its own reference to newpage (get_page in migratepage).
            let _ = pages.put_page(cx, page);
            let _ = pages.put_page(cx, newpage);
            CompactResult::Migrated(page, newpage)
        }
        Err(_) => {
            dev_info.balloon_page_putback(cx, pages, page);
            let _ = pages.free_page(cx, newpage);
            CompactResult::Again
        }
    }
}
