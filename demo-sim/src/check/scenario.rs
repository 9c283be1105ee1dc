//! The bodies of the demo's teaching scenarios (`ksim trace <name>`): short scripted runs whose
//! traces each show one idea. The catalog lists them with their descriptions.
//!
//! What a newcomer puts here: for each historical bug, a scripted run that reaches it with the fix
//! off (the trace a learner reads to understand it) and, where it helps, the same steps with the
//! fix on. Scripts are lists of [`Op`]s applied to the subject in a `Sim` that keeps the whole
//! trace; a scenario needing true concurrency drives several `Cx`s by hand instead.

use sim_core::check::Subject;
use sim_core::lockdep::ReportMode;
use sim_core::trace::TraceMode;
use sim_core::{Sim, SimConfig};

use super::op::Op;
use super::{DemoConfig, DemoSubject};
use crate::fixes::{Fixes, LRU_LOCK_ORDER, PRESET_NEW, SHRINK_SKIPS_USED};

/// task-A holds key 1 while task-B shrinks, then puts it, then task-B shrinks again.
const HOLD_AND_SHRINK: [Op; 6] = [
    Op::Insert { task: 0, key: 1 },
    Op::Insert { task: 0, key: 2 },
    Op::Get { task: 0, key: 1 },
    Op::Shrink { task: 1, count: 2 },
    Op::Put { task: 0, index: 0 },
    Op::Shrink { task: 1, count: 2 },
];

/// Runs scenario `name`; None when there is no such scenario.
pub(crate) fn run(name: &str) -> Option<Sim> {
    let all = Fixes::all();
    match name {
        "shrink-skips-used" => Some(scripted(all, &HOLD_AND_SHRINK)),
        "use-after-shrink" => Some(scripted(all.without(SHRINK_SKIPS_USED), &HOLD_AND_SHRINK)),
        "lru-lock-inversion" => Some(scripted(
            all.without(LRU_LOCK_ORDER),
            &[Op::Insert { task: 0, key: 1 }, Op::Shrink { task: 1, count: 1 }],
        )),
        _ => None,
    }
}

/// Runs `script` in a fresh `Sim` that keeps its whole trace and collects lockdep reports,
/// stopping at the first violation.
fn scripted(fixes: Fixes, script: &[Op]) -> Sim {
    let sim = Sim::new(SimConfig::new(1).lockdep(ReportMode::Collect).trace(TraceMode::Full));
    let mut demo = DemoSubject::new(&sim, &DemoConfig::new(PRESET_NEW, fixes));
    for op in script {
        demo.apply(&sim, op);
        if sim.has_violations() {
            return sim;
        }
    }
    let _ = demo.teardown(&sim);
    sim
}
