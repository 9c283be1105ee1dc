//! The balloon's loom models, named per zoo row for the zoo's loom column
//! ([`sim_core::loom_runner`]): fill_balloon() against the OOM notifier under the filesystem lock,
//! the deadlock fixed by "virtio_balloon: fix deadlock on OOM".

use sim_core::check::ZooEntry;
use sim_core::lockdep::ReportMode;
use sim_core::loom_runner::{LoomCatalog, LoomScenario};
use sim_core::mm::{Gfp, PAGE_SIZE_4K};
use sim_core::sync::{thread, Arc};
use sim_core::{Sim, SimConfig, ViolationKind};

use super::{BalloonConfig, BalloonSubject, HOST_FEATURES_ALL};
use crate::guest::Endian;
use crate::world::World;

/// The zoo row [`fill_against_oom_under_the_fs_lock`] reaches.
const ROW_OOM_DEADLOCK: &str = "oom-deadlock";

impl LoomCatalog for BalloonSubject {
    fn loom_scenario(row: &ZooEntry) -> Option<LoomScenario<BalloonConfig>> {
        (row.name == ROW_OOM_DEADLOCK).then(|| LoomScenario {
            name: "fill-vs-oom-notifier-under-fs-lock",
            preemption_bound: 2,
            // Lockdep sees the cycle (balloon_lock -> fs lock -> balloon_lock) as soon as the
            // last edge is taken; where the three tasks block first, loom reports the deadlock.
            expected: vec![ViolationKind::lockdep("circular-locking"), ViolationKind::Hang],
            model: fill_against_oom_under_the_fs_lock,
        })
    }
}

/// The 2017 OOM deadlock on 4.4's allocator, with `config`'s fixes:
///
/// 1. before the threads start, a task holding the filesystem lock allocated with GFP_NOFS in a
///    full guest: 4.4 calls no OOM killer for it, so it waits for someone else's OOM progress
///    (ksim's `oom_progress` annotation records the wait under the filesystem lock);
/// 2. the balloon thread's fill_balloon() takes balloon_lock; memory is full, so its allocation
///    enters direct reclaim, which waits for the filesystem lock;
/// 3. a task's GFP_HIGHUSER_MOVABLE allocation reaches out_of_memory(); the OOM notifier's
///    leak_balloon() waits for balloon_lock (before the fix; after it, the notifier does not
///    take balloon_lock from that context).
fn fill_against_oom_under_the_fs_lock(config: &BalloonConfig) -> Sim {
    let sim = Sim::new(SimConfig::new(1).cpus(2).lockdep(ReportMode::Collect));
    let mut config = config.clone();
    config.memory_bytes = 4 * PAGE_SIZE_4K;
    config.queue_size = 2;
    let cx = sim.cx("probe", 0);
    let world = Arc::new(World::new(&cx, &config, PAGE_SIZE_4K, HOST_FEATURES_ALL, Endian::Little, true));
    let vb = world.vb.clone().expect("a probe with every feature succeeds");
    vb.fill_balloon(&cx, 1);
    let mut held = Vec::new();
    while let Ok(pfn) = world.pages.alloc_page(&cx, Gfp::GFP_ATOMIC, "fill") {
        held.push(pfn);
    }
    {
        let writer = sim.cx("writer", 1);
        let _fs = world.pages.fs_lock().lock(&writer);
        // 4.4 gives a GFP_NOFS allocation no OOM kill: it fails here, its wait recorded.
        let _ = world.pages.alloc_page(&writer, Gfp::GFP_NOFS, "task");
    }
    let filler = {
        let (vb, sim) = (vb.clone(), sim.clone());
        thread::spawn(move || vb.fill_balloon(&sim.cx("vballoon", 0), 1))
    };
    let task = sim.cx("task", 1);
    if let Ok(pfn) = world.pages.alloc_page(&task, Gfp::GFP_HIGHUSER_MOVABLE, "task") {
        held.push(pfn);
    }
    filler.join().expect("fill_balloon does not panic");
    for pfn in held {
        world.pages.free_page(&cx, pfn).expect("the pages are ours");
    }
    vb.remove(&cx);
    sim
}
