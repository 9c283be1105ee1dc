//! sim-core's `list_head`, `struct page` state and reclaim checks in the op-level simulation:
//! the tiny balloon of [`super::pages`] as a [`Subject`] against a reference model, silent with
//! the kernel's code and reporting each seeded [`Misuse`] from random operation sequences.

use std::collections::BTreeSet;
use std::sync::Arc;

use proptest::prelude::*;
use serde::{Deserialize, Serialize};
use sim_core::check::{self, Reference, RunOptions, Subject};
use sim_core::fault::{FaultAttr, FaultPlan};
use sim_core::lockdep::{LockdepReport, ReportMode};
use sim_core::mm::page::PG_PRIVATE;
use sim_core::mm::reclaim::FS_RECLAIM_CLASS;
use sim_core::mm::Pfn;
use sim_core::sync::atomic::Ordering;
use sim_core::trace::EventKind;
use sim_core::{Cx, Sim, SimConfig, Violation};

use super::pages::{register_shrinker, Balloon, Misuse, FRAMES, XATTR_SEM};

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct PoolConfig {
    misuse: Misuse,
    /// Percent of entry allocations that enter direct reclaim (the Sim's reclaim plan).
    reclaim_percent: u32,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
enum PoolOp {
    Enqueue,
    Dequeue,
    Deflate(u8),
    Isolate(u8),
    Putback(u8),
    SetXattr(u8),
}

/// The pages an operation returned, or the kind of the oops it hit.
type PoolOutcome = Result<Vec<Pfn>, String>;

struct Pool {
    balloon: Arc<Balloon>,
    driver: Cx,
    compaction: Cx,
    isolated: Vec<Pfn>,
    marks: BTreeSet<&'static str>,
}

fn oops(oops: sim_core::list::Oops) -> String {
    oops.0.kind.to_string()
}

impl Pool {
    fn isolate(&mut self, index: u8) -> PoolOutcome {
        let pfn = u64::from(index) % FRAMES;
        if !self.balloon.isolate(&self.compaction, pfn).map_err(oops)? {
            return Ok(Vec::new());
        }
        self.isolated.push(pfn);
        self.marks.insert("page isolated");
        Ok(vec![pfn])
    }

    fn putback(&mut self, index: u8) -> PoolOutcome {
        if self.isolated.is_empty() {
            return Ok(Vec::new());
        }
        let pfn = self.isolated.remove(usize::from(index) % self.isolated.len());
        self.balloon.putback(&self.compaction, pfn).map_err(oops)?;
        self.marks.insert("page put back");
        Ok(vec![pfn])
    }

    fn check_listed(&self, cx: &Cx, listed: &[Pfn]) -> Result<(), Violation> {
        let mm = &self.balloon.mm;
        for &pfn in listed {
            let state =
                (mm.page_count(cx, pfn), mm.page_balloon(cx, pfn), mm.test_page_flag(cx, pfn, PG_PRIVATE));
            if state != (Ok(1), true, true) || mm.page_locked(cx, pfn) {
                let message = format!("listed pfn {pfn}: (count, balloon, private) = {state:?}");
                return Err(Violation::new("invariant", message));
            }
        }
        Ok(())
    }
}

impl Subject for Pool {
    const NAME: &'static str = "core-pages";
    type Config = PoolConfig;
    type Op = PoolOp;
    type Outcome = PoolOutcome;
    type Reference = PoolModel;

    fn new(sim: &Sim, config: &PoolConfig) -> Pool {
        let driver = sim.cx("vballoon", 0);
        let balloon = Arc::new(Balloon::new(sim, &driver, config.misuse));
        register_shrinker(sim, &balloon);
        sim.set_reclaim_plan(FaultPlan::with(FaultAttr::probability(config.reclaim_percent).site("mbcache")));
        Pool {
            balloon,
            driver,
            compaction: sim.cx("kcompactd0", 1),
            isolated: Vec::new(),
            marks: BTreeSet::new(),
        }
    }

    fn op_strategy(_config: &PoolConfig) -> BoxedStrategy<PoolOp> {
        prop_oneof![
            4 => Just(PoolOp::Enqueue),
            1 => Just(PoolOp::Dequeue),
            1 => (1..4u8).prop_map(PoolOp::Deflate),
            3 => any::<u8>().prop_map(PoolOp::Isolate),
            2 => any::<u8>().prop_map(PoolOp::Putback),
            2 => any::<u8>().prop_map(PoolOp::SetXattr),
        ]
        .boxed()
    }

    fn apply(&mut self, _sim: &Sim, op: &PoolOp) -> PoolOutcome {
        let balloon = self.balloon.clone();
        match op {
            PoolOp::Enqueue => Ok(balloon.enqueue(&self.driver).map_err(oops)?.into_iter().collect()),
            PoolOp::Dequeue => {
                let pfn = balloon.dequeue(&self.driver).map_err(oops)?;
                if let Some(pfn) = pfn {
                    balloon.mm.put_page(&self.driver, pfn).expect("the balloon's reference");
                }
                Ok(pfn.into_iter().collect())
            }
            PoolOp::Deflate(count) => {
                let taken = balloon.deflate(&self.driver, usize::from(*count)).map_err(oops)?;
                if taken.len() >= 2 {
                    self.marks.insert("deflated several pages in one walk");
                }
                Ok(taken)
            }
            PoolOp::Isolate(index) => self.isolate(*index),
            PoolOp::Putback(index) => self.putback(*index),
            PoolOp::SetXattr(block) => {
                // ENOMEM is not an outcome here: the reclaim plan never fails an allocation.
                balloon.set_xattr(&self.driver, u64::from(*block)).map_err(|e| e.to_string())?;
                Ok(Vec::new())
            }
        }
    }

    fn check_invariants(&self, sim: &Sim) -> Result<(), Violation> {
        let cx = sim.observer_cx("check", 0);
        let listed = self.balloon.listed(&cx).map_err(|oops| oops.0)?;
        self.check_listed(&cx, &listed)?;
        let isolated_pages = {
            let _held = self.balloon.pages_lock.lock(&cx);
            self.balloon.isolated_pages.load(Ordering::Relaxed)
        };
        let allocated = self.balloon.mm.allocated_pages(&cx);
        let expect = (listed.len() + self.isolated.len()) as u64;
        if isolated_pages != self.isolated.len() as u64 || allocated != expect {
            let message = format!(
                "isolated_pages {isolated_pages}, isolated {:?}, allocated {allocated}, listed {listed:?}",
                self.isolated
            );
            return Err(Violation::new("invariant", message));
        }
        Ok(())
    }

    fn teardown(mut self, sim: &Sim) -> Result<(), Violation> {
        let balloon = self.balloon.clone();
        for pfn in std::mem::take(&mut self.isolated) {
            balloon.putback(&self.driver, pfn).map_err(|oops| oops.0)?;
        }
        while !balloon.deflate(&self.driver, FRAMES as usize).map_err(|oops| oops.0)?.is_empty() {}
        balloon.shrink(&self.driver, u64::MAX);
        let left = balloon.mm.allocated_pages(&self.driver);
        if left != 0 {
            return Err(Violation::new("leak", format!("{left} pages still allocated at teardown")));
        }
        balloon.entries.destroy(&self.driver)?;
        let _ = sim;
        Ok(())
    }

    fn coverage(&self) -> BTreeSet<&'static str> {
        let mut marks = self.marks.clone();
        if self.balloon.shrunk.load(Ordering::Relaxed) > 0 {
            marks.insert("a shrinker freed entries");
        }
        marks
    }
}

/// The reference: the list as a Vec (front is `pages.next`), the isolated pages in order.
struct PoolModel {
    list: Vec<Pfn>,
    isolated: Vec<Pfn>,
}

impl PoolModel {
    fn expect(&mut self, op: &PoolOp) -> Vec<Pfn> {
        match op {
            PoolOp::Enqueue => Vec::new(),
            PoolOp::Dequeue => self.list.first().copied().into_iter().collect(),
            PoolOp::Deflate(count) => self.list.iter().copied().take(usize::from(*count)).collect(),
            PoolOp::Isolate(index) => {
                let pfn = u64::from(*index) % FRAMES;
                self.list.iter().copied().filter(|&p| p == pfn).collect()
            }
            PoolOp::Putback(index) if !self.isolated.is_empty() => {
                vec![self.isolated[usize::from(*index) % self.isolated.len()]]
            }
            PoolOp::Putback(_) | PoolOp::SetXattr(_) => Vec::new(),
        }
    }
}

impl Reference for PoolModel {
    type Config = PoolConfig;
    type Op = PoolOp;
    type Outcome = PoolOutcome;

    fn new(_config: &PoolConfig) -> PoolModel {
        PoolModel { list: Vec::new(), isolated: Vec::new() }
    }

    fn check(&mut self, op: &PoolOp, actual: &PoolOutcome) -> Result<(), String> {
        // An oops is already a reported violation; the reference has nothing to add.
        let Ok(actual) = actual else { return Ok(()) };
        if let PoolOp::Enqueue = op {
            let full = (self.list.len() + self.isolated.len()) as u64 == FRAMES;
            return match actual.as_slice() {
                [] if full => Ok(()),
                [pfn] if !full && !self.list.contains(pfn) && !self.isolated.contains(pfn) => {
                    self.list.insert(0, *pfn);
                    Ok(())
                }
                _ => Err(format!("enqueue returned {actual:?} with {} pages taken", self.list.len())),
            };
        }
        let expect = self.expect(op);
        if expect != *actual {
            return Err(format!("expected {expect:?}, got {actual:?}"));
        }
        match op {
            PoolOp::Dequeue | PoolOp::Deflate(_) => self.list.retain(|p| !expect.contains(p)),
            PoolOp::Isolate(_) => {
                self.list.retain(|p| !expect.contains(p));
                self.isolated.extend(&expect);
            }
            PoolOp::Putback(_) => {
                self.isolated.retain(|p| !expect.contains(p));
                self.list.splice(0..0, expect);
            }
            PoolOp::Enqueue | PoolOp::SetXattr(_) => {}
        }
        Ok(())
    }
}

fn config(misuse: Misuse) -> PoolConfig {
    PoolConfig { misuse, reclaim_percent: 30 }
}

/// The first violation any of `seeds` finds with `misuse`, and the seed.
fn first_violation(misuse: Misuse, seeds: std::ops::Range<u64>) -> Option<(u64, Violation)> {
    let config = config(misuse);
    seeds.into_iter().find_map(|seed| {
        let ops = check::generate::<Pool>(&config, seed, 60);
        let report = check::run_case::<Pool>(&config, seed, &ops, &RunOptions::default());
        report.violation.map(|(_, violation)| (seed, violation))
    })
}

#[test]
fn the_balloon_sequence_passes_against_its_reference_and_reaches_isolation_putback_and_reclaim() {
    let marks = check::assert_cases_pass::<Pool>(&config(Misuse::None), 0, 64, 60);
    for mark in
        ["page isolated", "page put back", "deflated several pages in one walk", "a shrinker freed entries"]
    {
        assert!(marks.contains(mark), "no case reached {mark:?}: {marks:?}");
    }
}

#[test]
fn a_plain_cursor_that_deletes_while_walking_is_found_as_list_poison() {
    let (seed, violation) = first_violation(Misuse::PlainCursorDeflate, 0..64).expect("found");
    assert_eq!(violation.kind, "list-poison", "seed {seed}: {violation}");
    assert!(violation.message.contains("list_for_each_entry at tests/tests/core/pages.rs:"), "{violation}");
    assert!(violation.message.contains("LIST_POISON1"), "{violation}");
}

#[test]
fn a_list_del_without_init_then_reuse_is_found_as_list_poison() {
    let (seed, violation) = first_violation(Misuse::DelWithoutInit, 0..64).expect("found");
    assert_eq!(violation.kind, "list-poison", "seed {seed}: {violation}");
    assert!(violation.message.contains("list_del"), "{violation}");
}

#[test]
fn get_page_on_a_scanned_pfn_is_found_as_a_get_on_a_free_page() {
    let (seed, violation) = first_violation(Misuse::GetPageOnScan, 0..64).expect("found");
    assert_eq!(violation.kind, "page:get-free", "seed {seed}: {violation}");
    assert!(violation.message.contains("page_count 0"), "{violation}");
}

#[test]
fn m3_gfp_kernel_under_xattr_sem_is_a_circular_dependency_through_fs_reclaim() {
    let (seed, violation) = first_violation(Misuse::XattrGfpKernel, 0..16).expect("found");
    assert_eq!(violation.kind, "lockdep:circular-locking", "seed {seed}: {violation}");
    for name in [FS_RECLAIM_CLASS, XATTR_SEM, "core/pages.rs"] {
        assert!(violation.message.contains(name), "the report names {name}: {violation}");
    }
    assert!(violation.message.contains("-> fs_reclaim then ext3_inode_info.xattr_sem"), "{violation}");
}

#[test]
fn the_misuse_that_needs_another_cpu_is_silent_in_one_thread() {
    // Isolating without pages_lock corrupts nothing when nobody else walks the list: the loom
    // model (loom_mm.rs) is what finds it.
    assert_eq!(first_violation(Misuse::IsolateWithoutPagesLock, 0..16), None);
}

#[test]
fn the_compaction_sequence_on_sim_core_alone_locks_counts_and_relinks_pages() {
    let sim = Sim::new(SimConfig::new(3).lockdep(ReportMode::Collect));
    let driver = sim.cx("vballoon", 0);
    let compaction = sim.cx("kcompactd0", 1);
    let balloon = Balloon::new(&sim, &driver, Misuse::None);
    let pfns: Vec<Pfn> =
        (0..3).map(|_| balloon.enqueue(&driver).expect("no oops").expect("a page")).collect();
    assert_eq!(balloon.listed(&driver).expect("walk"), [pfns[2], pfns[1], pfns[0]], "list_add puts first");
    assert!(balloon.isolate(&compaction, pfns[1]).expect("no oops"));
    assert_eq!(balloon.mm.page_count(&compaction, pfns[1]), Ok(2), "isolation holds a reference");
    assert!(!balloon.isolate(&compaction, pfns[1]).expect("no oops"), "not private any more");
    assert_eq!(balloon.listed(&driver).expect("walk"), [pfns[2], pfns[0]]);
    assert_eq!(balloon.dequeue(&driver).expect("no oops"), Some(pfns[2]));
    balloon.putback(&compaction, pfns[1]).expect("no oops");
    assert_eq!(balloon.mm.page_count(&compaction, pfns[1]), Ok(1));
    assert_eq!(balloon.listed(&driver).expect("walk"), [pfns[1], pfns[0]]);
    assert!(sim.violations().is_empty(), "{:?}", sim.violations());
    let locks = sim
        .trace()
        .events()
        .iter()
        .filter(|e| matches!(&e.kind, EventKind::Acquired { class, .. } if &**class == "PG_locked"))
        .count();
    assert!(locks >= 6, "every page lock is traced ({locks})");
    assert!(sim.lockdep().dependencies().contains(&("PG_locked".into(), super::pages::PAGES_LOCK.into())));
}

#[test]
fn a_gfp_kernel_allocation_under_xattr_sem_prints_the_kernels_report() {
    let sim = Sim::new(SimConfig::new(1).lockdep(ReportMode::Collect));
    let cx = sim.cx("setfattr", 0);
    let balloon = Balloon::new(&sim, &cx, Misuse::XattrGfpKernel);
    balloon.set_xattr(&cx, 7).expect("allocated");
    let reports = sim.lockdep().reports();
    let [LockdepReport::CircularDependency { .. }] = reports.as_slice() else { panic!("{reports:?}") };
    let text = reports[0].to_string();
    assert!(text.starts_with("WARNING: possible circular locking dependency detected"), "{text}");
    assert!(text.contains("is trying to acquire lock:\n  lock(fs_reclaim)"), "{text}");
    assert!(text.contains("already holding lock:\n  lock(ext3_inode_info.xattr_sem)"), "{text}");
    balloon.shrink(&cx, u64::MAX);
}

/// The shape of "virtio_balloon: fix deadlock on OOM" (c7cdff0e8647) on sim-core alone, on 4.4's
/// path. A task holding the filesystem's lock allocates with GFP_NOFS and runs out: 4.4 does not
/// call the OOM killer without `__GFP_FS`, so it loops, taking `oom_lock` each round; another
/// task's GFP_KERNEL allocation runs the OOM notifier, which takes `balloon_lock`; the balloon
/// fills under `balloon_lock` with an allocation that may enter the filesystem, whose reclaim
/// would wait for that lock. With the filesystem lock registered as one reclaim takes, the cycle
/// is found although the fill never entered reclaim.
#[test]
fn the_balloons_oom_deadlock_shape_is_found_without_the_fill_ever_reclaiming() {
    use sim_core::mm::{PageAllocConfig, PageAllocator, FS_LOCK_CLASS, PAGE_SIZE_4K};
    let sim = Sim::new(SimConfig::new(1).lockdep(ReportMode::Collect));
    let (balloon_thread, task) = (sim.cx("vballoon", 0), sim.cx("writer", 1));
    let config = PageAllocConfig { page_size: PAGE_SIZE_4K, zone_pages: vec![2, 2], limit_pages: 2 };
    let mm = Arc::new(PageAllocator::new(&config).expect("valid"));
    sim.register_fs_reclaim_lock(&balloon_thread, FS_LOCK_CLASS);
    let balloon_lock = Arc::new(sim_core::Mutex::new("&vb->balloon_lock", Vec::<Pfn>::new()));
    let (notifier_lock, notifier_mm) = (balloon_lock.clone(), mm.clone());
    mm.register_oom_notifier(
        &balloon_thread,
        "virtballoon_oom_notify",
        0,
        Arc::new(move |cx| {
            let mut pages = notifier_lock.lock(cx);
            let freed = pages.len() as u64;
            for pfn in pages.drain(..) {
                notifier_mm.free_page(cx, pfn).expect("a balloon page");
            }
            freed
        }),
    );
    // fill_balloon() as the seed has it: the page allocated under balloon_lock; memory is
    // plentiful, so no reclaim happens.
    let balloon_gfp = sim_core::mm::Gfp::GFP_HIGHUSER_MOVABLE | sim_core::mm::Gfp::__GFP_NORETRY;
    {
        let mut pages = balloon_lock.lock(&balloon_thread);
        let pfn = mm.alloc_page(&balloon_thread, balloon_gfp, "balloon").expect("memory is plentiful");
        pages.push(pfn);
    }
    assert!(sim.lockdep().reports().is_empty(), "{:?}", sim.lockdep().reports());
    // The writer under the filesystem lock runs memory out and loops without the OOM killer;
    // another task's GFP_KERNEL allocation runs the OOM notifier, which deflates.
    let mine = {
        let _fs = mm.fs_lock().lock(&task);
        let mine = mm.alloc_page(&task, sim_core::mm::Gfp::GFP_NOFS, "task").expect("one page left");
        assert!(mm.alloc_page(&task, sim_core::mm::Gfp::GFP_NOFS, "task").is_err(), "4.4: no OOM for NOFS");
        mine
    };
    let other = sim.cx("reader", 1);
    let freed_by_oom =
        mm.alloc_page(&other, sim_core::mm::Gfp::GFP_KERNEL, "task").expect("the notifier freed one");
    for pfn in [mine, freed_by_oom] {
        mm.free_page(&task, pfn).expect("mine");
    }
    let reports = sim.lockdep().reports();
    assert!(!reports.is_empty() && reports.iter().all(|r| r.kind() == "circular-locking"), "{reports:?}");
    let text = reports[0].to_string();
    for class in ["&vb->balloon_lock", FS_RECLAIM_CLASS, FS_LOCK_CLASS] {
        assert!(text.contains(class), "the report names {class}:\n{text}");
    }
}
