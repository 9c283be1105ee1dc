//! kernel/delayacct.c's per-task `delays->lock` and the itimer softirq (it_real_fn) that takes
//! siglock, so lockdep sees the irq-safety orders of the seeds.

use super::*;

pub(super) fn add_delays(into: &mut TaskstatsRecord, from: &TaskstatsRecord) {
    into.cpu_count += from.cpu_count;
    into.cpu_delay_total += from.cpu_delay_total;
    into.blkio_count += from.blkio_count;
    into.blkio_delay_total += from.blkio_delay_total;
    into.swapin_count += from.swapin_count;
    into.swapin_delay_total += from.swapin_delay_total;
    into.cpu_run_real_total += from.cpu_run_real_total;
    into.cpu_run_virtual_total += from.cpu_run_virtual_total;
    into.freepages_count += from.freepages_count;
    into.freepages_delay_total += from.freepages_delay_total;
}

pub(super) fn same_delays(a: &TaskstatsRecord, b: &TaskstatsRecord) -> bool {
    (a.cpu_count, a.cpu_delay_total, a.blkio_count, a.blkio_delay_total, a.swapin_count, a.swapin_delay_total)
        == (
            b.cpu_count,
            b.cpu_delay_total,
            b.blkio_count,
            b.blkio_delay_total,
            b.swapin_count,
            b.swapin_delay_total,
        )
        && (a.cpu_run_real_total, a.cpu_run_virtual_total, a.freepages_count, a.freepages_delay_total)
            == (b.cpu_run_real_total, b.cpu_run_virtual_total, b.freepages_count, b.freepages_delay_total)
}

impl Taskstats {
    /// `tsk->delays->lock` as the version takes it: spin_lock_irqsave() after "lockdep: fix
    /// delayacct locking bug", plain spin_lock() (softirq-unsafe in process context) before.
    #[track_caller]
    pub(super) fn delays_lock<'a>(
        &self,
        cx: &'a Cx,
        delays: &'a TaskDelays,
    ) -> sim_core::locks::SpinLockGuard<'a, ()> {
        if self.fixes.on(crate::fixes::DELAYACCT_LOCK_IRQSAVE) {
            delays.lock.lock_irqsave(cx)
        } else {
            delays.lock.lock(cx)
        }
    }

    /// it_real_fn(), the ITIMER_REAL hrtimer/timer callback, in softirq context on the task's
    /// CPU: it sends SIGALRM, which takes the group's siglock (lock_task_sighand()). That makes
    /// siglock softirq-safe in lockdep's eyes. Only where the model's group lock is siglock;
    /// 2.6.19-rc3's `stats_lock` is another lock, and its siglock is not modelled.
    pub fn it_real_fn(&self, cx: &Cx) -> bool {
        if !self.fixes.on(crate::fixes::SIGLOCK_GROUP_STATS) {
            return false;
        }
        let Some(task) = self.task(cx, cx.task()).filter(|t| t.exit_state == ExitState::None) else {
            return false;
        };
        cx.softirq(|cx| {
            cx.note(format!("it_real_fn: SIGALRM to {}: lock_task_sighand", task.tgid));
            drop(task.signal.lock.lock_irqsave(cx));
        });
        self.mark(cx, "itimer-softirq");
        true
    }
}
