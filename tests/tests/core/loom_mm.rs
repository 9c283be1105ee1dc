//! Loom models of sim-core's `list_head`, `struct page` state and reclaim checks, each with the
//! classic misuse found and the kernel's code silent. From the ordinary test build:
//! `cargo test --workspace --test main -- core::loom_mm`. Each states its preemption bound.

use std::sync::Arc as StdArc;

use sim_core::lockdep::ReportMode;
use sim_core::mm::reclaim::{direct_reclaim, FS_RECLAIM_CLASS};
use sim_core::mm::{Gfp, KmemCache, PageAllocConfig, PageAllocator, PAGE_SIZE_4K};
use sim_core::sync::atomic::{AtomicUsize, Ordering};
use sim_core::sync::{thread, Arc};
use sim_core::{Mutex, Sim, SimConfig};

use super::loom_support::{fails, passes};
use super::pages::{Balloon, Misuse, XATTR_SEM};

fn collecting_sim() -> Sim {
    Sim::new(SimConfig::new(0).lockdep(ReportMode::Collect))
}

/// The driver deflates two pages in one walk under `pages_lock` while compaction isolates the
/// page the walk will step to next.
fn deflate_against_isolation(misuse: Misuse) {
    let sim = collecting_sim();
    let driver = sim.cx("vballoon", 0);
    let balloon = Arc::new(Balloon::new(&sim, &driver, misuse));
    let first = balloon.enqueue(&driver).expect("no oops").expect("a page");
    balloon.enqueue(&driver).expect("no oops").expect("a page");
    let compaction = {
        let (balloon, cx) = (balloon.clone(), sim.cx("kcompactd0", 1));
        thread::spawn(move || balloon.isolate(&cx, first).map_err(|oops| oops.0))
    };
    let deflated = balloon.deflate(&driver, 2).map_err(|oops| oops.0);
    let isolated = compaction.join().expect("compaction thread");
    assert!(sim.violations().is_empty(), "{:?}", sim.violations());
    let (deflated, isolated) = (deflated.expect("no oops"), isolated.expect("no oops"));
    assert_eq!(deflated.len() + usize::from(isolated), 2, "each page is deflated or isolated: {deflated:?}");
}

#[test]
fn pages_lock_keeps_a_deflate_walk_off_a_page_isolation_unlinks() {
    // Bound 2: the walk is preempted after its trylock_page, the isolation runs whole.
    passes(Some(2), || deflate_against_isolation(Misuse::None));
}

#[test]
fn loom_finds_isolation_without_pages_lock_poisoning_the_walk() {
    let text = fails(Some(2), || deflate_against_isolation(Misuse::IsolateWithoutPagesLock));
    // The first failing interleaving loom reaches is one of two faces of the same missing lock:
    // the walk follows the LIST_POISON1 the unlocked list_del left in the page it was about to
    // visit, or it had read that page's link just before and deflates a page isolation took.
    let poisoned = text.contains("list-poison") && text.contains("LIST_POISON1");
    assert!(poisoned || text.contains("each page is deflated or isolated"), "{text}");
}

/// The owner drops the last reference while a pfn scanner takes one.
fn last_put_against_a_scanner(unless_zero: bool) {
    let sim = collecting_sim();
    let owner = sim.cx("owner", 0);
    let config = PageAllocConfig { page_size: PAGE_SIZE_4K, zone_pages: vec![1, 1], limit_pages: 2 };
    let mm = Arc::new(PageAllocator::new(&config).expect("valid"));
    let pfn = mm.alloc_page(&owner, Gfp::GFP_KERNEL, "t").expect("a page");
    let scanner = {
        let (mm, cx) = (mm.clone(), sim.cx("scanner", 1));
        thread::spawn(move || {
            let got =
                if unless_zero { mm.get_page_unless_zero(&cx, pfn) } else { mm.get_page(&cx, pfn).is_ok() };
            if got {
                mm.put_page(&cx, pfn).expect("the reference just taken");
            }
        })
    };
    mm.put_page(&owner, pfn).expect("the owner's reference");
    scanner.join().expect("scanner thread");
    assert!(sim.violations().is_empty(), "{:?}", sim.violations());
    assert_eq!(mm.allocated_pages(&owner), 0, "whoever puts last frees the page");
}

#[test]
fn get_page_unless_zero_never_takes_a_page_being_freed() {
    // Unbounded: two short threads.
    passes(None, || last_put_against_a_scanner(true));
}

#[test]
fn loom_finds_get_page_on_a_page_whose_last_reference_went() {
    let text = fails(None, || last_put_against_a_scanner(false));
    assert!(text.contains("page:get-free"), "{text}");
}

#[test]
fn lock_page_excludes_and_wakes_its_waiter() {
    // Bound 3: enough for each thread to be preempted inside lock_page's wait loop.
    passes(Some(3), || {
        let sim = collecting_sim();
        let setup = sim.cx("setup", 0);
        let config = PageAllocConfig { page_size: PAGE_SIZE_4K, zone_pages: vec![1, 1], limit_pages: 2 };
        let mm = Arc::new(PageAllocator::new(&config).expect("valid"));
        let pfn = mm.alloc_page(&setup, Gfp::GFP_KERNEL, "t").expect("a page");
        let counter = Arc::new(AtomicUsize::new(0));
        let bump = |name: &str, cpu| {
            let (mm, counter, cx) = (mm.clone(), counter.clone(), sim.cx(name, cpu));
            thread::spawn(move || {
                mm.lock_page(&cx, pfn).expect("not held by this task");
                // A read-modify-write that only the page lock makes atomic.
                let seen = counter.load(Ordering::Relaxed);
                counter.store(seen + 1, Ordering::Relaxed);
                mm.unlock_page(&cx, pfn).expect("locked above");
            })
        };
        let threads = [bump("a", 0), bump("b", 1)];
        for thread in threads {
            thread.join().expect("locker");
        }
        assert_eq!(counter.load(Ordering::Relaxed), 2);
        assert!(sim.violations().is_empty(), "{:?}", sim.violations());
    });
}

/// A setter allocates under `xattr_sem` while reclaim on another CPU evicts an inode (a
/// shrinker that takes `xattr_sem`).
fn allocation_against_reclaim(gfp: Gfp) -> Vec<String> {
    let sim = collecting_sim();
    let xattr_sem = StdArc::new(Mutex::new(XATTR_SEM, ()));
    let evict = xattr_sem.clone();
    sim.register_shrinker(
        "super_cache_scan",
        StdArc::new(move |cx, _| {
            drop(evict.lock(cx));
            1
        }),
    );
    let reclaim = {
        let cx = sim.cx("kswapd0", 1);
        thread::spawn(move || direct_reclaim(&cx, Gfp::GFP_KERNEL))
    };
    let setter = sim.cx("setfattr", 0);
    let cache: KmemCache<u32> = KmemCache::new("mbcache", 64);
    let held = xattr_sem.lock(&setter);
    let entry = cache.alloc(&setter, gfp, 1).expect("allocated");
    drop(held);
    assert_eq!(reclaim.join().expect("reclaim thread"), 1);
    cache.free(&setter, entry).expect("free");
    sim.lockdep().reports().iter().map(|report| report.to_string()).collect()
}

#[test]
fn gfp_nofs_under_xattr_sem_is_silent_in_every_interleaving_with_reclaim() {
    // Unbounded: one lock and one pseudo-lock per thread.
    passes(None, || {
        let reports = allocation_against_reclaim(Gfp::GFP_NOFS);
        assert!(reports.is_empty(), "{reports:?}");
    });
}

#[test]
fn gfp_kernel_under_xattr_sem_is_reported_in_every_interleaving_with_reclaim() {
    // Unbounded. Whichever thread comes second closes the cycle xattr_sem -> fs_reclaim ->
    // xattr_sem, so every interleaving reports it, deadlocked or not.
    passes(None, || {
        let reports = allocation_against_reclaim(Gfp::GFP_KERNEL);
        assert_eq!(reports.len(), 1, "{reports:?}");
        assert!(reports[0].contains("circular locking dependency"), "{}", reports[0]);
        assert!(reports[0].contains(FS_RECLAIM_CLASS) && reports[0].contains(XATTR_SEM), "{}", reports[0]);
    });
}
