//! kernel/delayacct.c: the per-task `delays` (delayacct_tsk_init(), which may leave it NULL),
//! its `delays->lock`, the block I/O delay's end at wakeup (delayacct_blkio_end()), and the
//! itimer softirq (it_real_fn) that takes siglock, so lockdep sees the irq-safety orders of the
//! seeds.

use super::*;

/// `sizeof(struct task_delay_info)` of a 64-bit 3.x build, the size delayacct_cache hands out.
const TASK_DELAY_INFO_SIZE: u64 = 104;

/// delayacct_tsk_init()'s `kmem_cache_zalloc()` from `delayacct_cache`.
static DELAYACCT_CACHE_SITE: StaticSite = StaticSite::new(|| FaultSite::slab("delayacct_cache"));

/// `from`'s delay counters added into `into`, field by field (delayacct_add_tsk()'s sums).
pub(super) fn add_delays(into: &mut TaskstatsRecord, from: &TaskstatsRecord) {
    for (field, value) in delay_fields_mut(into).into_iter().zip(delay_fields(from)) {
        *field += value;
    }
}

/// `from`'s delay counters taken out of `into` (what [`add_delays`] added).
pub(super) fn sub_delays(into: &mut TaskstatsRecord, from: &TaskstatsRecord) {
    for (field, value) in delay_fields_mut(into).into_iter().zip(delay_fields(from)) {
        *field -= value;
    }
}

/// The delay counters [`add_delays`] adds, in its order.
fn delay_fields(r: &TaskstatsRecord) -> [u64; 10] {
    [
        r.cpu_count,
        r.cpu_delay_total,
        r.blkio_count,
        r.blkio_delay_total,
        r.swapin_count,
        r.swapin_delay_total,
        r.cpu_run_real_total,
        r.cpu_run_virtual_total,
        r.freepages_count,
        r.freepages_delay_total,
    ]
}

/// [`delay_fields`], to write.
fn delay_fields_mut(r: &mut TaskstatsRecord) -> [&mut u64; 10] {
    [
        &mut r.cpu_count,
        &mut r.cpu_delay_total,
        &mut r.blkio_count,
        &mut r.blkio_delay_total,
        &mut r.swapin_count,
        &mut r.swapin_delay_total,
        &mut r.cpu_run_real_total,
        &mut r.cpu_run_virtual_total,
        &mut r.freepages_count,
        &mut r.freepages_delay_total,
    ]
}

/// Whether each of `stats`' delay counters lies between `low`'s and `high`'s: a copy taken
/// while fills add to the record field by field, with no lock against them.
pub(super) fn delays_between(low: &TaskstatsRecord, stats: &TaskstatsRecord, high: &TaskstatsRecord) -> bool {
    let (low, stats, high) = (delay_fields(low), delay_fields(stats), delay_fields(high));
    (0..low.len()).all(|i| low[i] <= stats[i] && stats[i] <= high[i])
}

/// Whether `a` and `b` hold the same delay counters.
pub(super) fn same_delays(a: &TaskstatsRecord, b: &TaskstatsRecord) -> bool {
    delay_fields(a) == delay_fields(b)
}

impl Taskstats {
    /// `tsk->delays->lock` as the version takes it: spin_lock_irqsave() after "lockdep: fix
    /// delayacct locking bug", plain spin_lock() (softirq-unsafe in process context) before.
    #[track_caller]
    pub(super) fn delays_lock<'a>(
        &self,
        cx: &'a Cx,
        delays: &'a TaskDelays,
    ) -> sim_core::locks::SpinLockGuard<'a, DelayInfo> {
        if self.fixes.on(crate::fixes::DELAYACCT_LOCK_IRQSAVE) {
            delays.lock.lock_irqsave(cx)
        } else {
            delays.lock.lock(cx)
        }
    }

    /// Mirrors delayacct_end() (the swapin, freepages and, before c96f5471ce7d, block I/O
    /// waits' ends in the task's own context): `delta` added to `task`'s `task_delay_info` under
    /// its `delays->lock` (nothing when `delays` is NULL: the hooks test it first). Returns the
    /// counters before and after, for the run's report.
    pub(super) fn delayacct_end(&self, cx: &Cx, task: &Task, delta: &DelayInfo) -> (DelayInfo, DelayInfo) {
        let Some(delays) = &task.delays else {
            return Default::default();
        };
        let mut info = self.delays_lock(cx, delays);
        let before = *info;
        info.add(delta);
        let after = *info;
        drop(info);
        (before, after)
    }

    /// Mirrors delayacct_add_tsk() and __delayacct_add_tsk(): nothing when `tsk->delays` is
    /// NULL (not even the scheduler's figures); else the scheduler's figures read with no lock
    /// (sched_info, `se.sum_exec_runtime`: [`Task::acct`]), then the `task_delay_info` counters
    /// under `delays->lock`.
    pub(super) fn delayacct_add_tsk(&self, cx: &Cx, task: &Task, stats: &mut TaskstatsRecord) {
        if task.delays.is_some() {
            self.delayacct_add_tsk_read(cx, task, &task.acct.get(), stats);
        }
    }

    /// [`Self::delayacct_add_tsk`] with the scheduler's figures taken from `acct`, the task's
    /// counters as the caller has just read them with no lock and no scheduling point since
    /// (fill_stats()'s one read serves both: the same values a second read would give).
    pub(super) fn delayacct_add_tsk_read(
        &self,
        cx: &Cx,
        task: &Task,
        acct: &Acct,
        stats: &mut TaskstatsRecord,
    ) {
        let Some(delays) = &task.delays else {
            return;
        };
        let v8 = self.fixes.on(crate::fixes::TASKSTATS_V8);
        acct.add_sched(stats, v8);
        let info = self.delays_lock(cx, delays);
        info.add_to(stats, v8);
        drop(info);
    }

    /// Mirrors delayacct_tsk_init() (__delayacct_tsk_init()): `kmem_cache_zalloc()` of the child's
    /// `task_delay_info` from `delayacct_cache`. The allocation may fail; copy_process() goes on
    /// and the task runs with `delays == NULL`, which every later user must test.
    pub(super) fn delayacct_tsk_init(&self, cx: &Cx) -> Option<Arc<TaskDelays>> {
        if cx.sim().should_fail(cx, &DELAYACCT_CACHE_SITE, TASK_DELAY_INFO_SIZE) {
            self.mark(cx, "delays-init-failed");
            return None;
        }
        Some(TaskDelays::new())
    }

    /// The end of a block I/O wait as the version accounts it, run by `current` when it
    /// completes the I/O. Before c96f5471ce7d: delayacct_blkio_end() in the woken task's own
    /// context after the switch, on `current->delays` when set, which is delayacct_end() on
    /// its own `delays->lock`, one section: the run's own delayacct_end() in
    /// [`Self::run_accounted`] (its blkio counters among the run's), so nothing here. From it:
    /// try_to_wake_up(p) calls delayacct_blkio_end(p), which tests `current->delays` and ends
    /// `p->delays`'s wait (delayacct_end() on `p`'s `delays->lock`, once) until b512719f771a
    /// makes it test `p->delays`; a `p` whose delayacct_tsk_init() failed is then a NULL
    /// dereference. The woken task is the next live task after `current` in pid order (the
    /// model has no I/O queues; any task may be waiting).
    pub(super) fn delayacct_blkio_end(&self, cx: &Cx, current: &Task) {
        if self.fixes.on(crate::fixes::DELAYACCT_BLKIO_TARGET) {
            self.delayacct_blkio_end_woken(cx, current);
        }
    }

    /// [`Self::delayacct_blkio_end`] from c96f5471ce7d on: the woken task's wait ends. Out of
    /// line: the versions before it return at once, and inlined this sat among
    /// run_accounted()'s hot instructions (session 27's count of the cache lines an op fetches).
    #[inline(never)]
    fn delayacct_blkio_end_woken(&self, cx: &Cx, current: &Task) {
        let Some(p) = self.io_waiter(cx, current.pid) else {
            return;
        };
        let tested =
            if self.fixes.on(crate::fixes::DELAYACCT_NULL_DELAYS) { &p.delays } else { &current.delays };
        if tested.is_none() {
            return;
        }
        match &p.delays {
            Some(delays) => drop(self.delays_lock(cx, delays)),
            None => null_delays_oops(cx, current.pid, p.pid),
        }
    }

    /// The task `current` wakes from its I/O wait: the next live task after `pid`, wrapping.
    fn io_waiter(&self, cx: &Cx, pid: u32) -> Option<Arc<Task>> {
        let table = self.tasks.read_lock(cx);
        let (upto, after) = table.split_after(pid);
        let woken = after.iter().chain(upto).find(|task| task.exit_state() == ExitState::None).cloned();
        drop(table);
        woken
    }

    /// it_real_fn(), the ITIMER_REAL hrtimer/timer callback, in softirq context on the task's
    /// CPU: it sends SIGALRM, which takes the group's siglock (lock_task_sighand()). That makes
    /// siglock softirq-safe in lockdep's eyes. Only where the model's group lock is siglock;
    /// 2.6.19-rc3's `stats_lock` is another lock, and its siglock is not modelled.
    pub fn it_real_fn(&self, cx: &Cx) -> bool {
        if !self.fixes.on(crate::fixes::SIGLOCK_GROUP_STATS) {
            return false;
        }
        // The timer is the process's own (`sig->real_timer`), found from the callback's
        // argument; the model has it fire while the process's task of `cx` runs.
        let Some(task) = self.current(cx) else {
            return false;
        };
        cx.softirq(|cx| {
            let pieces = [("it_real_fn: SIGALRM to ", Some(task.tgid)), (": lock_task_sighand", None)];
            cx.note(crate::task::numbered_text(&pieces));
            drop(task.signal.lock.lock_irqsave(cx));
        });
        self.mark(cx, "itimer-softirq");
        true
    }
}

/// The oops of a delayacct_blkio_end() that dereferenced a NULL `p->delays` (task `woken`,
/// whose delayacct_tsk_init() failed), woken by task `waker`: reported, as the kernel's
/// NULL-pointer oops. Cold: only a failed allocation and the unfixed test reach it.
#[cold]
fn null_delays_oops(cx: &Cx, waker: u32, woken: u32) {
    let text = format!(
        "BUG: unable to handle kernel NULL pointer dereference in __delayacct_blkio_end(): pid {waker} \
         woke pid {woken} from its I/O wait; delayacct_blkio_end() tested current->delays (pid {waker}'s, \
         set) and dereferenced p->delays, NULL since pid {woken}'s delayacct_tsk_init() failed"
    );
    cx.note(format!("try_to_wake_up(pid {woken}): p->delays is NULL"));
    cx.sim().report(Some(cx), Violation::new(ViolationKind::finding("null-ptr-deref"), text));
}
