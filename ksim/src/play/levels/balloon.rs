//! balloon levels: "virtio_balloon: fix deadlock on OOM" (4.15), on 4.4's page allocator. The
//! seed's `fill_balloon()` allocates with `balloon_lock` held, and direct reclaim in `__GFP_FS`
//! context waits for a filesystem lock. A task holding that lock allocates with GFP_NOFS: 4.4
//! calls no OOM killer without `__GFP_FS` and loops, waiting for somebody else's out_of_memory()
//! to free memory; a third task's GFP_KERNEL allocation reaches out_of_memory(), whose OOM
//! notifier wants `balloon_lock`. Each waits for the next: the kernel hangs (the NOFS task loops
//! for ever; the model gives up after a bounded number of rounds), and lockdep names the cycle
//! through the `oom_progress` annotation. The fix allocates first and takes the lock only to
//! enqueue.

use std::collections::BTreeSet;
use std::sync::Arc;

use balloon_sim::{BalloonConfig, Endian, Fixes, World, HOST_FEATURES_ALL};
use sim_core::mm::{Gfp, PAGE_SIZE_4K};

use super::super::level::{Level, TaskInfo, Win};
use super::super::runtime::{spawn_tasks, Control, TaskBody};
use super::taskstats::level_sim;

/// Guest memory, in 4 KiB pages.
const MEMORY_PAGES: u64 = 16;
/// Pages other tasks hold from the start.
const HELD_PAGES: usize = 8;
/// Pages the balloon is asked to take.
const TARGET_PAGES: u32 = 12;

/// The balloon levels, easiest first.
pub(crate) fn levels() -> Vec<Level> {
    let deadlock = Level {
        name: "balloon-1",
        subsystem: "balloon",
        title: "the balloon under OOM",
        zoo: "oom-deadlock",
        fix_on: false,
        kernel: "fixed",
        goal: "deadlock the balloon under OOM: make the balloon, the fs-lock holder and the OOM path wait \
               on each other",
        invariant: "no task waits, holding a lock, for one the next task holds (balloon_lock, the fs lock, \
                    progress of the OOM killer)",
        hint: "let the task take the fs lock first; then let fill_balloon take balloon_lock and eat the \
               free memory until reclaim waits for the fs lock; then let the task allocate without \
               __GFP_FS, and the third task run out of memory",
        tasks: &TASKS,
        win: Win::Violation(&["lockdep:circular-locking"]),
        setup: oom,
        solution: &[(1, "lock(fs_lock)"), (0, ""), (1, ""), (0, ""), (2, "")],
    };
    vec![
        deadlock,
        Level {
            name: "balloon-2",
            title: "convince yourself: allocate, then lock",
            fix_on: true,
            goal: "try to deadlock the balloon under OOM: every schedule keeps the invariant",
            hint: "fill_balloon() now allocates before it takes balloon_lock: reclaim may wait for the fs \
                   lock, but the OOM notifier can always take balloon_lock",
            win: Win::Holds,
            solution: &[(1, "lock(fs_lock)"), (0, ""), (1, ""), (0, ""), (2, "")],
            ..deadlock
        },
    ]
}

const TASKS: [TaskInfo; 3] = [
    TaskInfo { name: "vballoon (inflates)", entry: "fill_balloon" },
    TaskInfo { name: "task (under the fs lock)", entry: "alloc_page" },
    TaskInfo { name: "task (GFP_KERNEL)", entry: "alloc_page" },
];

/// A 16-page guest with 8 pages held, a balloon asked for 12, a task allocating two pages
/// without `__GFP_FS` under the filesystem lock, and a task allocating one with GFP_KERNEL.
fn oom(control: &Arc<Control>, fix_on: bool) {
    let sim = level_sim(2);
    control.publish(&sim);
    let mut config = BalloonConfig::preset("linux-4.4").expect("preset");
    let off = if fix_on { vec![] } else { vec!["oom-deadlock".to_string()] };
    config.fixes = Fixes::parse(Some("fixed"), &off).expect("the level's kernel is a preset");
    config.memory_bytes = MEMORY_PAGES * PAGE_SIZE_4K;
    let cx = sim.cx("probe", 0);
    let world = Arc::new(World::new(&cx, &config, PAGE_SIZE_4K, HOST_FEATURES_ALL, Endian::Little, true));
    let Some(vb) = world.vb.clone() else { return };
    let held: Vec<_> =
        (0..HELD_PAGES).filter_map(|_| world.pages.alloc_page(&cx, Gfp::GFP_KERNEL, "held").ok()).collect();
    world.host.set_num_pages(TARGET_PAGES);
    let balloon = {
        let (vb, sim) = (vb.clone(), sim.clone());
        move || {
            let cx = sim.cx("vballoon", 0);
            vb.fill_balloon(&cx, TARGET_PAGES as usize);
        }
    };
    let task = {
        let (world, sim) = (world.clone(), sim.clone());
        move || {
            let cx = sim.cx("task", 1);
            let mut mine = Vec::new();
            {
                let _fs = world.pages.fs_lock().lock(&cx);
                for _ in 0..2 {
                    mine.extend(world.pages.alloc_page(&cx, Gfp::GFP_NOFS, "task").ok());
                }
            }
            for pfn in mine {
                let _ = world.pages.free_page(&cx, pfn);
            }
        }
    };
    let oom_task = {
        let (world, sim) = (world.clone(), sim.clone());
        move || {
            let cx = sim.cx("oom", 0);
            if let Ok(pfn) = world.pages.alloc_page(&cx, Gfp::GFP_KERNEL, "oom") {
                let _ = world.pages.free_page(&cx, pfn);
            }
        }
    };
    let tasks = vec![
        TaskBody { daemon: false, body: Box::new(balloon) },
        TaskBody { daemon: false, body: Box::new(task) },
        TaskBody { daemon: false, body: Box::new(oom_task) },
    ];
    spawn_tasks(control, tasks, || {});
    for pfn in held {
        let _ = world.pages.free_page(&cx, pfn);
    }
    vb.update_balloon_size(&cx);
    if let Err(violation) = world.check_invariants(&sim.observer_cx("check_invariants", 0), &BTreeSet::new())
    {
        sim.report(None, violation);
    }
    let free = world.pages.free_pages(&cx);
    control.set_state(vec![format!(
        "balloon: {} pages; guest free pages: {free}",
        vb.num_pages(&sim.observer_cx("state", 0))
    )]);
}
