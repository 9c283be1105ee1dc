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

/// The OOM deadlock as a scripted run: a 16-page guest, a task holding half of it, a host that
/// wants 12 pages, the balloon thread running out of puff under balloon_lock (direct reclaim
/// waits for the filesystem lock), then a task holding the filesystem lock hitting OOM, so the
/// OOM notifier takes balloon_lock: lockdep reports the cycle. With `fixes.on(crate::fixes::OOM_DEADLOCK)` the
/// same script is quiet.
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
    let _ = subject.teardown(&sim);
    sim
}
