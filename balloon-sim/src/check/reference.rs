//! The reference model: what each operation may return, from plain counts (the host's target,
//! each task's pages), with no sim-core locks.

use std::collections::BTreeMap;

use sim_core::check::Reference;
use sim_core::Errno;

use crate::balloon_compaction::CompactResult;
use crate::check::op::{Op, Outcome};
use crate::check::BalloonConfig;

/// The reference model: the host's target, each task's page count, what the balloon must
/// converge to, and what it knows of the driver (probed or not, frozen or not, balloon size
/// when an outcome told it, whether the host holds a stats buffer).
#[derive(Clone, Debug)]
pub struct BalloonModel {
    align_target: bool,
    s4_leak_fill: bool,
    target: u32,
    tasks: BTreeMap<usize, u64>,
    tasks_count: usize,
    /// Whether probe succeeded: learnt from the first outcome that shows it.
    driver: Option<bool>,
    frozen: bool,
    /// `num_pages` when the last outcome told it (an OOM deflate in an allocation forgets it).
    num_pages: Option<u32>,
    /// Whether the device has a stats queue (None: not known yet; the first request tells).
    stats_vq: Option<bool>,
    /// Whether the host holds the stats buffer (primed at probe and restore, given back with a
    /// request, refilled by the thread).
    stats_buffer: bool,
}

impl BalloonModel {
    /// Learns, or checks, whether the driver exists from an outcome that shows it.
    fn driver_is(&mut self, present: bool) -> Result<(), String> {
        match self.driver.replace(present) {
            Some(known) if known != present => {
                Err(format!("the driver was {}, now {}", present_word(known), present_word(present)))
            }
            _ => Ok(()),
        }
    }

    /// An operation that needs a running driver returned `Idle`: only without a driver, or
    /// frozen.
    fn idle(&mut self, op: &Op) -> Result<(), String> {
        if self.frozen {
            return Ok(());
        }
        self.driver_is(false).map_err(|e| format!("{op:?} idle: {e}"))
    }

    fn check_run(&mut self, actual: u32, num_pages: u32, out_of_puff: bool, ppp: u32) -> Result<(), String> {
        self.driver_is(true)?;
        if self.frozen {
            return Err("the balloon thread ran while frozen".into());
        }
        if actual != num_pages {
            return Err(format!("actual {actual} != num_pages {num_pages} after an update"));
        }
        let expect = if self.align_target { self.target.div_ceil(ppp) * ppp } else { self.target };
        if !out_of_puff && num_pages != expect {
            return Err(format!("balloon at {num_pages}, target {} (expected {expect})", self.target));
        }
        if out_of_puff && num_pages > expect {
            return Err(format!("out of puff yet above the target: {num_pages} > {expect}"));
        }
        self.num_pages = Some(num_pages);
        // The thread handled any stats request: the host has its buffer again.
        self.stats_buffer = true;
        Ok(())
    }

    /// Compaction in the op-level simulation: nothing holds balloon_lock or a page lock between
    /// operations, so it never backs off with `-EAGAIN`; an empty balloon has nothing to
    /// isolate, a non-empty one always gives a page to migrate or put back for want of a target.
    fn check_compact(&mut self, result: &CompactResult) -> Result<(), String> {
        self.driver_is(true)?;
        match (result, self.num_pages) {
            (CompactResult::Again, _) => Err("compaction backed off with nobody holding a lock".into()),
            (CompactResult::Migrated(from, to), _) if from == to => Err(format!("migrated {from} to itself")),
            (CompactResult::Nothing, Some(n)) if n > 0 => {
                Err(format!("nothing isolated from a balloon of {n}"))
            }
            (CompactResult::Migrated(..) | CompactResult::NoTarget, Some(0)) => {
                Err(format!("{result:?} from an empty balloon"))
            }
            _ => Ok(()),
        }
    }

    /// A stats request reaches the driver only while the host holds the buffer, which it gives
    /// back with the request and gets again when the thread has refilled it.
    fn check_stats(&mut self, delivered: bool) -> Result<(), String> {
        self.driver_is(true)?;
        if self.frozen {
            return Err("a stats request reached a frozen driver".into());
        }
        let stats_vq = *self.stats_vq.get_or_insert(delivered);
        let expect = stats_vq && self.stats_buffer;
        if delivered != expect {
            return Err(format!(
                "stats request delivered {delivered}, expected {expect} (stats queue {stats_vq}, host holds \
                 the buffer {})",
                self.stats_buffer
            ));
        }
        // After a request the host holds nothing until the thread refills the queue.
        self.stats_buffer = false;
        Ok(())
    }

    fn check_freeze(&mut self) -> Result<(), String> {
        self.driver_is(true)?;
        if self.frozen {
            return Err("frozen twice".into());
        }
        self.frozen = true;
        // Seed 004 deflates on freeze; 3.3 kept the pages.
        self.num_pages = if self.s4_leak_fill { Some(0) } else { self.num_pages };
        Ok(())
    }

    fn check_restore(&mut self, result: &Result<(), Errno>) -> Result<(), String> {
        self.driver_is(true)?;
        if !self.frozen {
            return Err("restored without a freeze".into());
        }
        match result {
            Ok(()) => {
                self.frozen = false;
                // Restore fills toward the target (seed) or forgets the balloon (3.3).
                self.num_pages = if self.s4_leak_fill { None } else { Some(0) };
                self.stats_buffer = true;
                Ok(())
            }
            // init_vqs() failing in find_vqs (fault site virtio:find_vqs).
            Err(Errno::ENOMEM) => Ok(()),
            Err(err) => Err(format!("restore cannot fail with {err}")),
        }
    }
}

fn present_word(present: bool) -> &'static str {
    if present {
        "present"
    } else {
        "absent"
    }
}

impl Reference for BalloonModel {
    type Config = BalloonConfig;
    type Op = Op;
    type Outcome = Outcome;

    fn new(config: &BalloonConfig) -> Self {
        BalloonModel {
            align_target: config.fixes.on(crate::fixes::ALIGN_TARGET),
            s4_leak_fill: config.fixes.on(crate::fixes::S4_LEAK_FILL),
            target: 0,
            tasks: BTreeMap::new(),
            tasks_count: config.tasks.max(1),
            driver: None,
            frozen: false,
            num_pages: Some(0),
            stats_vq: None,
            stats_buffer: true,
        }
    }

    fn check(&mut self, op: &Op, actual: &Outcome) -> Result<(), String> {
        match (op, actual) {
            (Op::SetTarget { .. }, Outcome::Target { target }) => {
                self.target = *target;
                Ok(())
            }
            (Op::BalloonRun | Op::Compact { .. } | Op::StatsRequest | Op::Freeze, Outcome::Idle) => {
                self.idle(op)
            }
            (Op::BalloonRun, Outcome::Run { num_pages, actual, out_of_puff, pages_per_page }) => {
                self.check_run(*actual, *num_pages, *out_of_puff, *pages_per_page)
            }
            (Op::Alloc { task, pages, .. }, Outcome::Alloc { got, killed, task_pages }) => {
                self.check_alloc(usize::from(*task), u64::from(*pages), *got, *killed, *task_pages)
            }
            (Op::Free { task, pages }, Outcome::Free { freed, task_pages }) => {
                self.check_free(usize::from(*task), u64::from(*pages), *freed, *task_pages)
            }
            (Op::Compact { .. }, Outcome::Compact(result)) => self.check_compact(result),
            (Op::StatsRequest, Outcome::Stats(delivered)) => self.check_stats(*delivered),
            (Op::Freeze, Outcome::Frozen) => self.check_freeze(),
            (Op::Restore, Outcome::Idle) if !self.frozen => Ok(()),
            (Op::Restore, Outcome::Restored(result)) => self.check_restore(result),
            (op, outcome) => Err(format!("{op:?} cannot return {outcome:?}")),
        }
    }
}

impl BalloonModel {
    fn check_alloc(
        &mut self,
        task: usize,
        pages: u64,
        got: u64,
        killed: bool,
        task_pages: u64,
    ) -> Result<(), String> {
        let task = task % self.tasks_count;
        let held = self.tasks.entry(task).or_insert(0);
        if got > pages {
            return Err(format!("got {got} of {pages} pages"));
        }
        let expect = if killed { 0 } else { *held + got };
        if task_pages != expect {
            return Err(format!("task holds {task_pages}, expected {expect}"));
        }
        *held = expect;
        // The OOM notifier may have deflated the balloon meanwhile.
        if self.num_pages != Some(0) {
            self.num_pages = None;
        }
        Ok(())
    }

    fn check_free(&mut self, task: usize, pages: u64, freed: u64, task_pages: u64) -> Result<(), String> {
        let task = task % self.tasks_count;
        let held = self.tasks.entry(task).or_insert(0);
        let expect = pages.min(*held);
        if freed != expect || task_pages != *held - expect {
            return Err(format!(
                "freed {freed} leaving {task_pages}; expected {expect} leaving {}",
                *held - expect
            ));
        }
        *held -= expect;
        Ok(())
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

    #[test]
    fn compaction_stats_freeze_and_restore_outcomes_are_stated_not_accepted() {
        let mut model = reference();
        let compact = Op::Compact { index: 0, to_zone: 0 };
        assert!(
            model.check(&compact, &Outcome::Compact(CompactResult::Migrated(3, 4))).is_err(),
            "empty balloon"
        );
        model.check(&compact, &Outcome::Compact(CompactResult::Nothing)).expect("nothing to isolate");
        model.check(&Op::SetTarget { pages: 2 }, &Outcome::Target { target: 2 }).expect("target");
        model.check(&Op::BalloonRun, &run(2, 2, false, 1)).expect("run");
        assert!(model.check(&compact, &Outcome::Compact(CompactResult::Nothing)).is_err(), "two pages");
        assert!(
            model.check(&compact, &Outcome::Compact(CompactResult::Again)).is_err(),
            "nobody holds a lock"
        );
        model.check(&compact, &Outcome::Compact(CompactResult::Migrated(3, 4))).expect("migrated");
        model.check(&Op::StatsRequest, &Outcome::Stats(true)).expect("the primed buffer");
        assert!(model.check(&Op::StatsRequest, &Outcome::Stats(true)).is_err(), "the host holds no buffer");
        model.check(&Op::BalloonRun, &run(2, 2, false, 1)).expect("the thread refills");
        model.check(&Op::StatsRequest, &Outcome::Stats(true)).expect("delivered again");
        model.check(&Op::Freeze, &Outcome::Frozen).expect("freeze");
        assert!(model.check(&Op::Freeze, &Outcome::Frozen).is_err(), "frozen twice");
        assert!(
            model.check(&compact, &Outcome::Compact(CompactResult::NoTarget)).is_err(),
            "deflated by freeze"
        );
        assert!(model.check(&Op::Restore, &Outcome::Restored(Err(Errno::EINVAL))).is_err());
        model.check(&Op::Restore, &Outcome::Restored(Ok(()))).expect("restore");
        assert!(model.check(&Op::Restore, &Outcome::Restored(Ok(()))).is_err(), "not frozen");
        assert!(model.check(&Op::Freeze, &Outcome::Idle).is_err(), "the driver exists");
    }
}
