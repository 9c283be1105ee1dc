//! mm/balloon_compaction.c (4.4) as the balloon uses it: `struct balloon_dev_info` with its page
//! list, isolated page count and `pages_lock`; enqueue, dequeue, isolate, putback; and the
//! compaction step that isolates a balloon page, finds a target page and calls the driver's
//! `migratepage`. Left out: the page lock (`trylock_page`), page flags and reference counts:
//! a page is in exactly one of the list and the isolated set, which stands for both.

use std::collections::BTreeSet;

use sim_core::mm::{Gfp, PageAllocator, Pfn};
use sim_core::{Cx, Errno, SpinLock, ViolationKind};

/// `balloon_mapping_gfp_mask() | __GFP_NOMEMALLOC | __GFP_NORETRY`: what balloon pages are
/// allocated with (4.4 `balloon_page_enqueue`, later `balloon_page_alloc`).
pub(crate) const BALLOON_GFP: Gfp =
    Gfp(Gfp::GFP_HIGHUSER_MOVABLE.0 | Gfp::__GFP_NOMEMALLOC.0 | Gfp::__GFP_NORETRY.0 | Gfp::__GFP_NOWARN.0);

/// The fault site of balloon page allocations.
pub(crate) const BALLOON_ALLOC_SITE: &str = "balloon_page_alloc";

/// What `pages_lock` protects.
#[derive(Debug, Default)]
pub struct BalloonPages {
    /// `b_dev_info->pages`; the last element is the list head (`list_add` pushes there).
    pub pages: Vec<Pfn>,
    /// Pages compaction has taken off the list and not yet put back or migrated.
    pub isolated: BTreeSet<Pfn>,
    /// `b_dev_info->isolated_pages`.
    pub isolated_pages: u64,
}

/// `struct balloon_dev_info`.
#[derive(Debug)]
pub struct BalloonDevInfo {
    /// `pages_lock`, taken with irqs saved as the kernel does.
    pub pages_lock: SpinLock<BalloonPages>,
}

impl Default for BalloonDevInfo {
    fn default() -> Self {
        BalloonDevInfo::new()
    }
}

impl BalloonDevInfo {
    /// Mirrors balloon_devinfo_init().
    pub fn new() -> BalloonDevInfo {
        BalloonDevInfo { pages_lock: SpinLock::new("b_dev_info->pages_lock", BalloonPages::default()) }
    }

    /// Mirrors balloon_page_alloc() (the allocation half of 4.4's balloon_page_enqueue).
    pub fn balloon_page_alloc(cx: &Cx, pages: &PageAllocator) -> Result<Pfn, Errno> {
        pages.alloc_page(cx, BALLOON_GFP, BALLOON_ALLOC_SITE)
    }

    /// Mirrors balloon_page_insert() under `pages_lock` (the list half of balloon_page_enqueue).
    pub fn balloon_page_insert(&self, cx: &Cx, pfn: Pfn) {
        let mut guard = self.pages_lock.lock_irqsave(cx);
        guard.pages.push(pfn);
    }

    /// Mirrors balloon_page_enqueue() of 4.4: allocate a page and put it on the list.
    pub fn balloon_page_enqueue(&self, cx: &Cx, pages: &PageAllocator) -> Option<Pfn> {
        let pfn = Self::balloon_page_alloc(cx, pages).ok()?;
        self.balloon_page_insert(cx, pfn);
        Some(pfn)
    }

    /// Mirrors balloon_page_dequeue(): the list head, skipping isolated pages (which are off the
    /// list here); `None` for an empty list. An empty list with no isolated page either is the
    /// kernel's BUG() ("some balloon pages are lost"): reported as a `BUG` violation.
    pub fn balloon_page_dequeue(&self, cx: &Cx) -> Option<Pfn> {
        let mut guard = self.pages_lock.lock_irqsave(cx);
        let page = guard.pages.pop();
        if page.is_none() && guard.isolated_pages == 0 {
            drop(guard);
            cx.sim().report(
                Some(cx),
                sim_core::Violation::new(
                    ViolationKind::Bug,
                    "balloon_page_dequeue: the page list is empty and no page is isolated",
                ),
            );
        }
        page
    }

    /// Mirrors balloon_page_isolate(): takes list entry `index` (modulo the list) off the list.
    pub fn balloon_page_isolate(&self, cx: &Cx, index: usize) -> Option<Pfn> {
        let mut guard = self.pages_lock.lock_irqsave(cx);
        if guard.pages.is_empty() {
            return None;
        }
        let at = index % guard.pages.len();
        let pfn = guard.pages.remove(at);
        guard.isolated.insert(pfn);
        guard.isolated_pages += 1;
        Some(pfn)
    }

    /// Mirrors balloon_page_putback(): an isolated page goes back on the list.
    pub fn balloon_page_putback(&self, cx: &Cx, pfn: Pfn) {
        let mut guard = self.pages_lock.lock_irqsave(cx);
        if guard.isolated.remove(&pfn) {
            guard.isolated_pages -= 1;
            guard.pages.push(pfn);
        }
    }

    /// Every balloon page, listed or isolated, in pfn order.
    pub fn all_pages(&self, cx: &Cx) -> Vec<Pfn> {
        let guard = self.pages_lock.lock_irqsave(cx);
        let mut all: Vec<Pfn> = guard.pages.iter().chain(guard.isolated.iter()).copied().collect();
        all.sort_unstable();
        all
    }

    /// Pages on the list plus isolated ones.
    pub fn count(&self, cx: &Cx) -> usize {
        let guard = self.pages_lock.lock_irqsave(cx);
        guard.pages.len() + guard.isolated.len()
    }
}

/// What one compaction step did.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum CompactResult {
    /// No balloon page to isolate.
    Nothing,
    /// No target page in the requested zone: the page was put back.
    NoTarget,
    /// `migratepage` returned `-EAGAIN`: put back, to retry later.
    Again,
    /// Migrated from the first pfn to the second.
    Migrated(Pfn, Pfn),
}

/// One step of compaction (or memory offlining) over the balloon: isolate list entry `index`,
/// take a target page from zone `to_zone`, and mirror balloon_page_migrate() by calling
/// `migratepage(cx, newpage, page)`; on failure put the page back and free the target.
pub fn compact_one(
    cx: &Cx,
    dev_info: &BalloonDevInfo,
    pages: &PageAllocator,
    index: usize,
    to_zone: usize,
    migratepage: impl FnOnce(&Cx, Pfn, Pfn) -> Result<(), Errno>,
) -> CompactResult {
    let Some(page) = dev_info.balloon_page_isolate(cx, index) else {
        return CompactResult::Nothing;
    };
    let zones = pages.zones_count(cx);
    let Ok(newpage) = pages.alloc_page_in_zone(cx, to_zone % zones, "compaction_alloc") else {
        dev_info.balloon_page_putback(cx, page);
        return CompactResult::NoTarget;
    };
    match migratepage(cx, newpage, page) {
        Ok(()) => CompactResult::Migrated(page, newpage),
        Err(_) => {
            dev_info.balloon_page_putback(cx, page);
            let _ = pages.free_page(cx, newpage);
            CompactResult::Again
        }
    }
}
