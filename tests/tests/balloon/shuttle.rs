//! Shuttle runs of the real actors: the balloon thread, the host thread, a task that allocates
//! under the filesystem lock (pushing the guest into OOM), compaction, and config changes and
//! stats requests from the host. Seeded: a failure prints shuttle's schedule, and the seed
//! replays it.

use std::collections::BTreeSet;
use std::panic::{catch_unwind, AssertUnwindSafe};

use balloon_sim::compact_one;
use balloon_sim::Endian;
use balloon_sim::Fixes;
use balloon_sim::HOST_FEATURES_ALL;
use balloon_sim::{BalloonConfig, VirtioBalloon, World};
use sim_core::lockdep::ReportMode;
use sim_core::mm::{Gfp, PAGE_SIZE_4K};
use sim_core::sync::atomic::{AtomicBool, Ordering};
use sim_core::sync::{thread, Arc, RwLock};
use sim_core::{Sim, SimConfig};

const MEMORY_PAGES: u64 = 32;

/// Runs (across iterations) in which the OOM notifier deflated, and in which a page migrated:
/// the "sometimes" marks that show the actors reached the interesting states.
static OOM_DEFLATES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
static MIGRATIONS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
/// Runs that ended with `actual` behind `num_pages` (reported, not required: shuttle's random
/// schedules may not meet the window).
static STALE_ACTUAL: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
/// Runs in which the PM core hibernated after compaction had migrated a page (reported).
static HIBERNATIONS_WITH_MIGRATION: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// The freezer for the user tasks and kcompactd: each holds it for reading between two freeze
/// points (one allocation, one compaction step); the PM core's freeze_processes() takes it for
/// writing, so no user task is inside the kernel (nor in the OOM notifier, which
/// oom_killer_disable() also shuts) while the device is frozen. The balloon thread freezes on
/// its own (`freeze_thread`), and host interrupts keep coming.
type Freezer = Arc<RwLock<()>>;

/// One run: a 32-page guest (8 DMA32, 24 Normal), `held_pages` held from the start, a host
/// asking for 8 balloon pages, a task allocating 4 more under the filesystem lock and another 4
/// more that may enter the filesystem: together more than is free, so someone reaches reclaim
/// and the OOM path (with 26 held, the balloon's fill always does).
fn actors(fixes: Fixes, held_pages: usize, hibernates: bool) {
    let sim = Sim::new(SimConfig::new(1).cpus(2).lockdep(ReportMode::Collect));
    let mut config = BalloonConfig::preset("fixed").expect("preset");
    config.fixes = fixes;
    config.memory_bytes = MEMORY_PAGES * PAGE_SIZE_4K;
    let cx = sim.cx("probe", 0);
    let world = Arc::new(World::new(&cx, &config, PAGE_SIZE_4K, HOST_FEATURES_ALL, Endian::Little, false));
    let vb = world.vb.clone().expect("probe succeeds without faults");
    let stop_host = Arc::new(AtomicBool::new(false));
    let freezer: Freezer = Arc::new(RwLock::new(()));
    let mut held = Vec::new();
    for _ in 0..held_pages {
        held.push(world.pages.alloc_page(&cx, Gfp::GFP_KERNEL, "task").expect("memory is free"));
    }

    let host = {
        let (world, sim, stop) = (world.clone(), sim.clone(), stop_host.clone());
        thread::spawn(move || world.host_actor(&sim.cx("host", 1), &stop))
    };
    let balloon = {
        let (vb, sim) = (vb.clone(), sim.clone());
        thread::spawn(move || vb.balloon_thread(&sim.cx("vballoon", 0)))
    };
    let config_changes = {
        let (world, sim) = (world.clone(), sim.clone());
        thread::spawn(move || {
            let cx = sim.cx("host-config", 1);
            world.host.set_num_pages(8);
            world.vdev.config_changed(&cx);
            world.vdev.host_request_stats(&cx);
        })
    };
    let task = {
        let (world, sim, freezer) = (world.clone(), sim.clone(), freezer.clone());
        thread::spawn(move || task_allocates_under_the_fs_lock(&world, &sim, &freezer))
    };
    let user = {
        let (world, sim, freezer) = (world.clone(), sim.clone(), freezer.clone());
        thread::spawn(move || task_allocates(&world, &sim, &freezer))
    };
    let compaction = {
        let (world, vb, sim, freezer) = (world.clone(), vb.clone(), sim.clone(), freezer.clone());
        thread::spawn(move || {
            let cx = sim.cx("kcompactd", 0);
            let _running = freezer.read();
            compact_one(&cx, &vb.vb_dev_info, &world.pages, 0, 0, |cx, new, old| {
                vb.migratepage(cx, new, old)
            });
        })
    };
    let pm = hibernates.then(|| {
        let (world, vb, sim) = (world.clone(), vb.clone(), sim.clone());
        thread::spawn(move || hibernate(&world, &vb, &sim, &freezer))
    });
    for handle in [config_changes, task, user, compaction].into_iter().chain(pm) {
        handle.join().expect("actor");
    }
    // virtballoon_remove(): kthread_stop() first, then remove_common with the host still up.
    vb.shared.should_stop.store(true, Ordering::SeqCst);
    vb.shared.config_change.wake_up();
    balloon.join().expect("balloon thread");
    for pfn in held.drain(..) {
        world.pages.free_page(&cx, pfn).expect("ours");
    }
    // update_balloon_size() runs without balloon_lock in both the thread and the OOM notifier,
    // so a stopped thread may have written a stale `actual`: everything else must hold now;
    // `actual` must be a count the balloon had, and after the thread's next pass the current one.
    let observer = sim.observer_cx("check", 0);
    let (actual, num_pages) = (world.host.actual(), vb.num_pages(&observer));
    assert!(actual <= 8 * 4, "actual {actual} is more than the balloon ever held");
    if actual != num_pages {
        STALE_ACTUAL.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }
    vb.update_balloon_size(&sim.cx("vballoon", 0));
    world.check_invariants(&observer, &BTreeSet::new()).unwrap_or_else(|v| panic!("{v}"));
    count_marks(&sim);
    vb.remove(&cx);
    stop_host.store(true, Ordering::SeqCst);
    world.host.kicks.wake_up();
    host.join().expect("host");
    assert_eq!(world.pages.allocated_pages(&cx), 0, "remove gives every page back");
    assert_eq!(world.host.held_count(), 0, "the host holds nothing after remove");
    let violations: Vec<String> = sim.violations().iter().map(ToString::to_string).collect();
    assert!(violations.is_empty(), "{}", violations.join("\n"));
}

/// A task that allocates four pages under the filesystem lock (pushing the guest towards OOM),
/// touches them, and frees them.
fn task_allocates_under_the_fs_lock(world: &World, sim: &Sim, freezer: &Freezer) {
    let cx = sim.cx("task", 1);
    let mut mine = Vec::new();
    for _ in 0..4 {
        let _running = freezer.read();
        let _fs = world.pages.fs_lock().lock(&cx);
        if let Ok(pfn) = world.pages.alloc_page(&cx, Gfp::GFP_NOFS, "task") {
            world.touch(&cx, pfn);
            mine.push(pfn);
        }
    }
    for pfn in mine {
        world.pages.free_page(&cx, pfn).expect("ours");
    }
}

/// A task that allocates four pages with GFP_HIGHUSER_MOVABLE (which may enter the filesystem,
/// so on 4.4 it is the one that reaches out_of_memory() and the OOM notifier), touches them and
/// frees them.
fn task_allocates(world: &World, sim: &Sim, freezer: &Freezer) {
    let cx = sim.cx("user", 0);
    let mut mine = Vec::new();
    for _ in 0..4 {
        let _running = freezer.read();
        if let Ok(pfn) = world.pages.alloc_page(&cx, Gfp::GFP_HIGHUSER_MOVABLE, "task") {
            world.touch(&cx, pfn);
            mine.push(pfn);
        }
    }
    for pfn in mine {
        world.pages.free_page(&cx, pfn).expect("ours");
    }
}

/// The PM core hibernates the guest once: freeze_processes() (user tasks and kcompactd stop at
/// a freeze point; the OOM notifier cannot run), the balloon thread frozen,
/// virtballoon_freeze(), the power cycle (the host forgets what it held),
/// virtballoon_restore(), thaw.
fn hibernate(world: &World, vb: &VirtioBalloon, sim: &Sim, freezer: &Freezer) {
    let cx = sim.cx("pm", 1);
    let frozen = freezer.write();
    vb.freeze_thread(&cx);
    vb.freeze(&cx);
    world.host.forget_held();
    vb.restore(&cx).expect("restore without faults");
    vb.thaw_thread();
    drop(frozen);
    if sim.marks().contains("migration") {
        HIBERNATIONS_WITH_MIGRATION.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }
}

/// Counts the run towards the "sometimes" marks the test asserts over all iterations.
fn count_marks(sim: &Sim) {
    let marks = sim.marks();
    if marks.contains("oom-deflate") {
        OOM_DEFLATES.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }
    if marks.contains("migration") {
        MIGRATIONS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }
}

#[test]
fn fixed_driver_actors_never_deadlock_and_keep_the_invariants() {
    let deflates = OOM_DEFLATES.load(std::sync::atomic::Ordering::Relaxed);
    let migrations = MIGRATIONS.load(std::sync::atomic::Ordering::Relaxed);
    shuttle::check_random_with_seed(|| actors(Fixes::all(), 22, true), 7, 1000);
    let scheduler = shuttle::scheduler::PctScheduler::new_from_seed(7, 3, 1000);
    shuttle::Runner::new(scheduler, shuttle::Config::default()).run(|| actors(Fixes::all(), 22, true));
    assert!(
        OOM_DEFLATES.load(std::sync::atomic::Ordering::Relaxed) > deflates,
        "no run reached an OOM deflate"
    );
    assert!(MIGRATIONS.load(std::sync::atomic::Ordering::Relaxed) > migrations, "no run migrated a page");
    eprintln!(
        "runs ending with a stale actual: {}; hibernations after a migration: {}",
        STALE_ACTUAL.load(std::sync::atomic::Ordering::Relaxed),
        HIBERNATIONS_WITH_MIGRATION.load(std::sync::atomic::Ordering::Relaxed)
    );
}

/// Regression: "virtio_balloon: fix deadlock on OOM" (2017), with real threads on 4.4's
/// allocator. The balloon thread holds balloon_lock in fill_balloon() while direct reclaim waits
/// for the filesystem lock; the task holding that lock loops in a GFP_NOFS allocation waiting
/// for OOM progress; another task reaches out_of_memory() and the notifier waits for
/// balloon_lock. Shuttle finds a schedule taking every edge, and lockdep names the cycle. (A
/// fuller guest than the fixed run's, so the fill runs out of memory under balloon_lock.)
#[test]
fn seed_fill_balloon_deadlocks_against_the_oom_notifier_under_some_schedule() {
    let mut fixes = Fixes::all();
    fixes.set(balloon_sim::OOM_DEADLOCK, false);
    let found = catch_unwind(AssertUnwindSafe(|| {
        shuttle::check_random_with_seed(move || actors(fixes, 26, false), 7, 400)
    }));
    let payload = found.expect_err("shuttle finds a failing schedule");
    let text = payload
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_default();
    // Either shuttle meets a schedule that deadlocks, or it first completes one that took both
    // orders, and lockdep (collecting, then checked at the end of the run) names the cycle.
    let lockdep_cycle = text.contains("circular locking dependency") && text.contains("balloon_lock");
    assert!(text.contains("deadlock") || lockdep_cycle, "expected the OOM deadlock, got: {text}");
}
