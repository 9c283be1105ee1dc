//! The reference model: what each operation may return, from plain counts (the host's target,
//! each task's pages), with no sim-core locks.

use std::collections::BTreeMap;

use sim_core::check::Reference;

use crate::check::op::{Op, Outcome};
use crate::check::BalloonConfig;

/// The reference model: the host's target, each task's page count, and what the balloon
/// must converge to.
#[derive(Debug)]
pub struct BalloonModel {
    align_target: bool,
    target: u32,
    tasks: BTreeMap<usize, u64>,
    tasks_count: usize,
}

impl Reference for BalloonModel {
    type Config = BalloonConfig;
    type Op = Op;
    type Outcome = Outcome;

    fn new(config: &BalloonConfig) -> Self {
        BalloonModel {
            align_target: config.fixes.on(crate::fixes::ALIGN_TARGET),
            target: 0,
            tasks: BTreeMap::new(),
            tasks_count: config.tasks.max(1),
        }
    }

    fn check(&mut self, op: &Op, actual: &Outcome) -> Result<(), String> {
        match (op, actual) {
            (Op::SetTarget { .. }, Outcome::Target { target }) => {
                self.target = *target;
                Ok(())
            }
            (Op::BalloonRun, Outcome::Idle) => Ok(()),
            (Op::BalloonRun, Outcome::Run { num_pages, actual, out_of_puff, pages_per_page }) => {
                if actual != num_pages {
                    return Err(format!("actual {actual} != num_pages {num_pages} after an update"));
                }
                let ppp = *pages_per_page;
                let expect = if self.align_target { self.target.div_ceil(ppp) * ppp } else { self.target };
                if !out_of_puff && *num_pages != expect {
                    return Err(format!(
                        "balloon at {num_pages}, target {} (expected {expect})",
                        self.target
                    ));
                }
                if *out_of_puff && *num_pages > expect {
                    return Err(format!("out of puff yet above the target: {num_pages} > {expect}"));
                }
                Ok(())
            }
            (Op::Alloc { task, pages, .. }, Outcome::Alloc { got, killed, task_pages }) => {
                let task = usize::from(*task) % self.tasks_count;
                let held = self.tasks.entry(task).or_insert(0);
                if *got > u64::from(*pages) {
                    return Err(format!("got {got} of {pages} pages"));
                }
                let expect = if *killed { 0 } else { *held + got };
                if *task_pages != expect {
                    return Err(format!("task holds {task_pages}, expected {expect}"));
                }
                *held = expect;
                Ok(())
            }
            (Op::Free { task, pages }, Outcome::Free { freed, task_pages }) => {
                let task = usize::from(*task) % self.tasks_count;
                let held = self.tasks.entry(task).or_insert(0);
                let expect = u64::from(*pages).min(*held);
                if *freed != expect || *task_pages != *held - expect {
                    return Err(format!(
                        "freed {freed} leaving {task_pages}; expected {expect} leaving {}",
                        *held - expect
                    ));
                }
                *held -= expect;
                Ok(())
            }
            (Op::Compact { .. }, Outcome::Compact(_) | Outcome::Idle) => Ok(()),
            (Op::StatsRequest, Outcome::Stats(_) | Outcome::Idle) => Ok(()),
            (Op::Freeze, Outcome::Frozen | Outcome::Idle) => Ok(()),
            (Op::Restore, Outcome::Restored(_) | Outcome::Idle) => Ok(()),
            (op, outcome) => Err(format!("{op:?} cannot return {outcome:?}")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sim_core::check::Reference;

    fn reference() -> BalloonModel {
        BalloonModel::new(&BalloonConfig::preset("fixed").expect("preset"))
    }

    fn run(num_pages: u32, actual: u32, out_of_puff: bool, pages_per_page: u32) -> Outcome {
        Outcome::Run { num_pages, actual, out_of_puff, pages_per_page }
    }

    #[test]
    fn the_reference_wants_the_aligned_target_unless_out_of_puff() {
        let mut model = reference();
        model.check(&Op::SetTarget { pages: 17 }, &Outcome::Target { target: 17 }).expect("target");
        assert!(model.check(&Op::BalloonRun, &run(32, 32, false, 16)).is_ok());
        assert!(model.check(&Op::BalloonRun, &run(16, 16, false, 16)).is_err(), "short of the target");
        assert!(model.check(&Op::BalloonRun, &run(16, 16, true, 16)).is_ok(), "out of puff may stop short");
        assert!(model.check(&Op::BalloonRun, &run(48, 48, true, 16)).is_err(), "never above the target");
        assert!(model.check(&Op::BalloonRun, &run(32, 16, false, 16)).is_err(), "actual must follow");
    }

    #[test]
    fn the_reference_counts_each_tasks_pages_and_an_oom_kill_empties_them() {
        let mut model = reference();
        let alloc = Op::Alloc { task: 0, pages: 5, nofs: false };
        model.check(&alloc, &Outcome::Alloc { got: 5, killed: false, task_pages: 5 }).expect("alloc");
        assert!(model.check(&alloc, &Outcome::Alloc { got: 1, killed: false, task_pages: 5 }).is_err());
        model.check(&alloc, &Outcome::Alloc { got: 0, killed: true, task_pages: 0 }).expect("killed");
        let free = Op::Free { task: 0, pages: 3 };
        assert!(
            model.check(&free, &Outcome::Free { freed: 3, task_pages: 0 }).is_err(),
            "nothing left to free"
        );
        model.check(&free, &Outcome::Free { freed: 0, task_pages: 0 }).expect("free");
        assert!(model.check(&Op::Freeze, &Outcome::Stats(true)).is_err(), "an outcome of another operation");
    }
}
