//! The teaching scenarios: short scripted runs whose traces show one idea each.

use sim_core::check::Subject;
use sim_core::lockdep::ReportMode;
use sim_core::mm::PAGE_SIZE_4K;
use sim_core::trace::TraceMode;
use sim_core::{Sim, SimConfig};

use crate::check::op::Op;
use crate::check::{BalloonConfig, BalloonSubject, HOST_FEATURES_ALL};
use crate::fixes::Fixes;
use crate::guest::Endian;

/// The OOM deadlock as a scripted run on 4.4's allocator: a 16-page guest, a task holding half
/// of it, a host that wants 12 pages, the balloon thread running out of puff under balloon_lock
/// (direct reclaim in `__GFP_FS` context waits for the filesystem lock); then a task holding the
/// filesystem lock allocates with GFP_NOFS and, 4.4 calling no OOM killer without `__GFP_FS`,
/// loops taking `oom_lock`; then a GFP_HIGHUSER_MOVABLE allocation (which may enter the
/// filesystem) reaches out_of_memory() under `oom_lock`, and the OOM notifier takes
/// balloon_lock: lockdep reports balloon_lock -> fs_lock -> oom_lock -> oom_notify_list ->
/// balloon_lock. With `fixes.on(crate::fixes::OOM_DEADLOCK)` the same script is quiet.
pub fn oom_deadlock_scenario(fixes: Fixes) -> Sim {
    let sim = Sim::new(SimConfig::new(1).cpus(2).lockdep(ReportMode::Collect).trace(TraceMode::Full));
    let mut config = BalloonConfig::preset("linux-4.4").expect("preset");
    config.fixes = fixes;
    config.memory_bytes = 16 * PAGE_SIZE_4K;
    config.page_size = Some(PAGE_SIZE_4K);
    config.host_features = Some(HOST_FEATURES_ALL);
    config.guest_endian = Some(Endian::Little);
    let mut subject = BalloonSubject::build(&sim, &config);
    subject.apply(&sim, &Op::Alloc { task: 0, pages: 8, nofs: false });
    subject.apply(&sim, &Op::SetTarget { pages: 12 });
    subject.apply(&sim, &Op::BalloonRun);
    subject.apply(&sim, &Op::Alloc { task: 1, pages: 2, nofs: true });
    subject.apply(&sim, &Op::Alloc { task: 0, pages: 1, nofs: false });
    let _ = subject.teardown(&sim);
    sim
}
