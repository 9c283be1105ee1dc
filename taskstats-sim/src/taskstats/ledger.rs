//! Checker state, not kernel state: the ledger of what delivered records must add up to, the
//! invariants judged against it, and teardown's leak checks. It sits behind a std mutex, never a
//! model lock, so lockdep, the trace and loom/shuttle never see it.

use super::*;

/// What the checker's ledger knows about one thread group.
///
/// An exiting thread is booked when the version decides to count it (`pending`), and enters
/// `truth` where the kernel adds it to `sig->stats`: fill_tgid_exit()'s siglock section, or,
/// for a version that skipped the fill, exit_notify(), where it leaves fill_stats_for_tgid()'s
/// walk (`tsk->exit_state` set) and from where it should be in `sig->stats`. Between
/// fill_tgid_exit() and exit_notify() the thread is in both (`filled_live`): a TGID query then
/// counts it twice, as the kernel does (see [`Taskstats::tgid_query_expect`]). Inside its fill's
/// siglock section a thread is in the truth before delayacct_add_tsk() has added it (`filling`):
/// a TGID query, under siglock, never sees that; the group death's unlocked memcpy() may.
#[derive(Debug, Default, Clone)]
pub(super) struct GroupLedger {
    /// Sum of the delay counters of exited threads that the version must have aggregated.
    pub(super) truth: TaskstatsRecord,
    /// Threads booked whose fill_tgid_exit() has not run yet: their delays, as at the booking.
    pub(super) pending: Pending,
    /// Threads in `truth` still inside their fill_tgid_exit() siglock section: their delays,
    /// which `sig->stats` may not hold yet, or hold in part.
    pub(super) filling: Pending,
    /// Threads in `truth` that fill_stats_for_tgid()'s walk still counts as live.
    pub(super) filled_live: BTreeSet<u32>,
}

impl GroupLedger {
    /// The least `sig->stats` may hold while the threads `filling` are inside their fills:
    /// the truth without any of their delays.
    pub(super) fn truth_before_fills(&self) -> TaskstatsRecord {
        let mut low = self.truth.clone();
        for (_, delays) in &self.filling.0 {
            sub_delays(&mut low, delays);
        }
        low
    }

    /// What a TGID query must find whose copy of `signal->stats` had `truth` with the threads
    /// `filled` in it, and whose walk, starting from this ledger, counted the threads
    /// `counted`: a thread the copy had and the walk counts is counted twice; one booked and
    /// not yet filled as the walk started is counted once, as live.
    pub(super) fn expect(
        &self,
        truth: TaskstatsRecord,
        filled: &BTreeSet<u32>,
        counted: &[u32],
    ) -> TgidExpect {
        let counted_twice = counted.iter().copied().filter(|pid| filled.contains(pid)).collect();
        let before_fill = counted.iter().copied().filter(|pid| self.pending.contains_key(pid)).collect();
        TgidExpect { truth, counted_twice, before_fill }
    }
}

/// A group's booked threads and their delays: a short vector (a thread is pending from its
/// booking to its fill or exit_notify(), a few steps of one exit, so a group rarely has more
/// than one), where a tree of 330-byte records allocated and freed a node at each booking.
#[derive(Debug, Default, Clone)]
pub(super) struct Pending(Vec<(u32, TaskstatsRecord)>);

impl Pending {
    /// Books thread `pid` with `delays` (a second booking of the same thread replaces the first).
    pub(super) fn insert(&mut self, pid: u32, delays: TaskstatsRecord) {
        match self.0.iter_mut().find(|(booked, _)| *booked == pid) {
            Some((_, booked)) => *booked = delays,
            None => self.0.push((pid, delays)),
        }
    }

    /// Thread `pid`'s delays, taken out of the book (None: not booked).
    pub(super) fn remove(&mut self, pid: &u32) -> Option<TaskstatsRecord> {
        let at = self.0.iter().position(|(booked, _)| booked == pid)?;
        Some(self.0.swap_remove(at).1)
    }

    /// Whether no thread is booked.
    pub(super) fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Whether thread `pid` is booked.
    pub(super) fn contains_key(&self, pid: &u32) -> bool {
        self.0.iter().any(|(booked, _)| booked == pid)
    }
}

/// What a TGID query in a group's siglock section must find, taken in that section with the
/// walk's copy of the thread list (so no exit's fill or exit_notify() lands between the
/// model's look and the checker's).
#[derive(Debug, Clone)]
pub(super) struct TgidExpect {
    /// The group's `truth` at the query.
    pub(super) truth: TaskstatsRecord,
    /// Live threads the walk counts whose delays are already in `sig->stats`.
    pub(super) counted_twice: Vec<u32>,
    /// Live threads the walk counts that are booked but not yet filled (counted once, live).
    pub(super) before_fill: Vec<u32>,
}

/// Checker state: what the delivered records must add up to. It sits behind a std mutex, not a
/// model lock, so lockdep's graph, the trace and loom/shuttle never see it.
#[derive(Debug, Default)]
pub(super) struct Ledger {
    pub(super) groups: BTreeMap<u32, GroupLedger>,
    /// Per (port, CPU), the last exit-event sequence number the port received.
    pub(super) last_seq: BTreeMap<(u32, u32), u32>,
    pub(super) exits: u64,
}

/// What the model's own checks read the model through: netlink_request()'s look at the
/// sender's own socket (and the reply audit that reads the task table through it), the
/// ledger's look at an exiting thread's group, and the audits of a delivery or a deregistration.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum ObserverUse {
    /// `own-socket` (see [`Taskstats::netlink_request`]).
    OwnSocket,
    /// `ledger` (see [`Taskstats::ledger_exit`]).
    Ledger,
    /// `audit` (see [`Taskstats::send_cpu_listeners`], [`Taskstats::audit_deregister`]).
    Audit,
}

impl ObserverUse {
    const ALL: [ObserverUse; 3] = [ObserverUse::OwnSocket, ObserverUse::Ledger, ObserverUse::Audit];

    /// The context's name, as [`Sim::observer_cx`] is given it.
    fn name(self) -> &'static str {
        match self {
            ObserverUse::OwnSocket => "own-socket",
            ObserverUse::Ledger => "ledger",
            ObserverUse::Audit => "audit",
        }
    }
}

/// Checker state: one observer context kept per [`ObserverUse`] between the calls that read
/// through it, renewed when taken ([`Cx::renew`]: the serial number and state a new one would
/// have, so nothing a trace or a report shows changes) instead of made (a context is ~700
/// bytes, and requests, exits and deregistrations made one each). A use that finds its slot
/// empty (a nested or concurrent call: a preempted query's exit, a threaded campaign's other
/// thread) makes one, and keeps it only if the slot is still empty when it is done. Behind std
/// mutexes: never a model lock, never a scheduling point.
#[derive(Debug, Default)]
pub(super) struct KeptObservers {
    slots: [std::sync::Mutex<Option<Box<Cx>>>; ObserverUse::ALL.len()],
}

/// An observer context taken from [`KeptObservers`], given back when dropped.
pub(super) struct KeptObserver<'a> {
    slot: &'a std::sync::Mutex<Option<Box<Cx>>>,
    cx: Option<Box<Cx>>,
}

impl std::ops::Deref for KeptObserver<'_> {
    type Target = Cx;

    fn deref(&self) -> &Cx {
        self.cx.as_deref().expect("held until dropped")
    }
}

impl Drop for KeptObserver<'_> {
    fn drop(&mut self) {
        let mut slot = self.slot.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if slot.is_none() {
            *slot = self.cx.take();
        }
    }
}

impl Taskstats {
    /// The observer context for `purpose` on the CPU of `cx`, as
    /// `cx.sim().observer_cx(purpose.name(), cx.cpu())` would make it now (see [`KeptObservers`]).
    pub(super) fn observer(&self, cx: &Cx, purpose: ObserverUse) -> KeptObserver<'_> {
        let slot = &self.observers.slots[purpose as usize];
        let kept = slot.lock().unwrap_or_else(std::sync::PoisonError::into_inner).take();
        let observer = match kept {
            Some(mut observer) => {
                observer.renew(cx.cpu());
                observer
            }
            None => Box::new(cx.sim().observer_cx(purpose.name(), cx.cpu())),
        };
        KeptObserver { slot, cx: Some(observer) }
    }
}

impl Taskstats {
    /// The checker's ledger. A poisoned lock means a checker panicked already; its state is
    /// still the best there is.
    pub(super) fn ledger(&self) -> std::sync::MutexGuard<'_, Ledger> {
        self.ledger.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Objects live in the `listener` and `taskstats_cache` caches.
    pub fn live_objects(&self) -> (u64, u64) {
        (self.listener_cache.live(), self.taskstats_cache.live())
    }

    /// What a record about `task` may say to the owner of `port`; reports a violation where a
    /// delivered record breaks the admin or namespace property the version should guarantee.
    /// `observer` is the caller's observer context (netlink_request()'s, or the exit audit's),
    /// the one the namespace check reads the task table through; `(kind, id_attr)` the
    /// record's type and id attribute.
    pub(super) fn audit_record(
        &self,
        cx: &Cx,
        observer: &Cx,
        port: &Port,
        task: &Task,
        (kind, id_attr): (u16, u32),
        stats: &TaskstatsRecord,
    ) {
        if self.checks(crate::fixes::ADMIN_PERM) && !port.capable && port.uid != task.uid {
            cx.sim().report(
                Some(cx),
                Violation::new(
                    ViolationKind::finding("unprivileged-access"),
                    format!(
                        "port {} (uid {}, no CAP_NET_ADMIN) received the accounting of pid {} (uid {}): \
                         read_bytes={} cpu_delay_total={}",
                        port.id, port.uid, task.pid, task.uid, stats.read_bytes, stats.cpu_delay_total
                    ),
                ),
            );
        }
        if self.checks(crate::fixes::NAMESPACE_CHECKS) && self.fixes.on(crate::fixes::PID_NAMESPACES) {
            // The only check that reads the task table: one look through the caller's observer
            // context (untraced, unchecked, no model lock), [`Self::with_task_table`]'s.
            let per_task = kind == TASKSTATS_TYPE_PID && self.fixes.on(crate::fixes::TASKSTATS_V8);
            let leak = self.with_task_table(observer, |table| {
                // A task released after the query's RCU lookup found it has its pid detached:
                // task_pid_nr_ns() reads 0 in the record, as the kernel's would; its own
                // numbers still say what the requester may see.
                let released = !table.tasks.contains_key(&task.pid);
                let own = crate::task::nr_in(&task.numbers, port.pid_ns);
                let visible = if released { own } else { table.pid_nr_ns(task.pid, port.pid_ns) };
                let uid_seen = table.from_kuid_munged(port.user_ns, task.uid);
                let ok_attr = id_attr == visible || id_attr == table.pid_nr_ns(task.tgid, port.pid_ns);
                let ok_pid = !per_task || stats.ac_pid == visible || (released && stats.ac_pid == 0);
                let ok_uid = !per_task || stats.ac_uid == uid_seen;
                (!(ok_attr && ok_pid && ok_uid)).then_some((visible, uid_seen))
            });
            if let Some((visible, uid_seen)) = leak {
                cx.sim().report(
                    Some(cx),
                    Violation::new(
                        ViolationKind::finding("namespace-leak"),
                        format!(
                            "port {} (pid ns {}, user ns {}) received id {} / ac_pid {} / ac_uid {} for global pid {} \
                             (uid {}); in its namespaces that task is pid {} uid {}",
                            port.id,
                            port.pid_ns,
                            port.user_ns,
                            id_attr,
                            stats.ac_pid,
                            stats.ac_uid,
                            task.pid,
                            task.uid,
                            visible,
                            uid_seen
                        ),
                    ),
                );
            }
        }
    }

    /// The ledger's view: a thread whose group has stats at its exit must be counted in them.
    /// Booked as pending: it enters the truth at [`Self::ledger_filled`] or
    /// [`Self::ledger_left_walk`], whichever the exit reaches first.
    pub(super) fn ledger_exit(&self, cx: &Cx, task: &Task) {
        let v8 = self.fixes.on(crate::fixes::TASKSTATS_V8);
        // The checker reads the group through an observer context: untraced, unchecked, and
        // between operations of the op-level simulation with no round trip on siglock
        // ([`SpinLock::observe`](sim_core::SpinLock::observe)).
        let observer = self.observer(cx, ObserverUse::Ledger);
        let has_stats = task.signal.lock.observe(&observer, |_| task.signal.stats.is_some());
        if has_stats {
            // What delayacct_add_tsk() will add: nothing for a NULL `delays`; its counters read
            // through the observer.
            let mut delays = TaskstatsRecord::default();
            if let Some(info) = &task.delays {
                task.acct.get().add_sched(&mut delays, v8);
                info.lock.observe(&observer, |info| info.add_to(&mut delays, v8));
            }
            let mut ledger = self.ledger();
            ledger.groups.entry(task.tgid).or_default().pending.insert(task.pid, delays);
        }
    }

    /// The checker's mark of fill_tgid_exit()'s siglock section for `task` (whether or not the
    /// version finds `sig->stats` there): a booked thread belongs in the truth from here.
    /// Called inside that section: the ledger's std mutex is taken and released with no
    /// scheduling point between, so a TGID query's section sees both or neither.
    pub(super) fn ledger_filled(&self, task: &Task) {
        let mut ledger = self.ledger();
        let Some(group) = ledger.groups.get_mut(&task.tgid) else { return };
        if let Some(delays) = group.pending.remove(&task.pid) {
            add_delays(&mut group.truth, &delays);
            group.filling.insert(task.pid, delays);
            group.filled_live.insert(task.pid);
        }
    }

    /// The checker's mark of the end of fill_tgid_exit()'s siglock section for `task`, inside
    /// it, after delayacct_add_tsk(): `sig->stats` holds the thread's delays from here. Between
    /// [`Self::ledger_filled`] and here its delays->lock is a scheduling point, where a group
    /// death's memcpy() (no siglock) may copy `sig->stats` with all, some or none of them.
    pub(super) fn ledger_fill_done(&self, task: &Task) {
        let mut ledger = self.ledger();
        if let Some(group) = ledger.groups.get_mut(&task.tgid) {
            group.filling.remove(&task.pid);
        }
    }

    /// The checker's mark of exit_notify() for `task`, inside the section where the model takes
    /// it off the group's walk (a leader's `exit_state` write under tasklist_lock alone; a
    /// non-leader's release, with siglock inside it where the model has one): a thread still
    /// pending (a version that skipped its fill) belongs in the truth from here, and it is
    /// counted live no more. A 3.x TGID walk holds siglock, not tasklist_lock, so a leader's
    /// mark may land during its walk: the walk reads the ledger with its copy of the list.
    pub(super) fn ledger_left_walk(&self, task: &Task) {
        let mut ledger = self.ledger();
        let Some(group) = ledger.groups.get_mut(&task.tgid) else { return };
        if let Some(delays) = group.pending.remove(&task.pid) {
            add_delays(&mut group.truth, &delays);
        }
        group.filled_live.remove(&task.pid);
    }

    /// The ledger of group `tgid` as a TGID walk starts, a copy taken in the walk's own
    /// section (None: the ledger has booked no exit); [`GroupLedger::expect`] finishes the
    /// expectation once the walk has said which threads it counted.
    pub(super) fn tgid_walk_ledger(&self, tgid: u32) -> Option<GroupLedger> {
        self.ledger().groups.get(&tgid).cloned()
    }

    /// 2.6.19's fill_tgid(), its first section (the copy of `signal->stats` under stats_lock):
    /// the group's truth and the threads already in it, as the copy has them (None: the
    /// ledger has booked no exit). The walk's [`Self::tgid_walk_ledger`] finishes it.
    pub(super) fn tgid_query_copied(&self, tgid: u32) -> Option<(TaskstatsRecord, BTreeSet<u32>)> {
        let ledger = self.ledger();
        let group = ledger.groups.get(&tgid)?;
        Some((group.truth.clone(), group.filled_live.clone()))
    }

    /// The checker's look at one delivery before it is sent: what the record may say to the
    /// port's owner ([`Self::audit_record`]) and whether the port's per-CPU sequence numbers
    /// still rise. It reads the model through `observer` (the caller's observer context, one
    /// per listener walk), so neither the trace nor lockdep sees it.
    pub(super) fn audit_delivery(
        &self,
        cx: &Cx,
        observer: &Cx,
        (pid, cpu, seq): (u32, u32, u32),
        task: &Task,
        records: &[(u16, u32, TaskstatsRecord)],
    ) {
        let Some(port) = self.port(observer, pid).filter(|p| p.open) else {
            return;
        };
        for (kind, id, stats) in records {
            self.audit_record(cx, observer, &port, task, (*kind, *id), stats);
        }
        let last = self.ledger().last_seq.get(&(pid, cpu)).copied();
        if let Some(last) = last {
            if seq < last || (seq == last && self.checks(crate::fixes::DUPLICATE_LISTENER_CHECK)) {
                cx.sim().report(
                    Some(cx),
                    Violation::new(
                        ViolationKind::finding("seq-order"),
                        format!("port {pid} got seq {seq} after {last} from cpu {cpu}"),
                    ),
                );
            }
        }
    }

    /// The checker's count of one exit's copies per port (`(port, copies)`, each port once):
    /// more than one is CVE-2011-2484; the lowest such port is reported.
    pub(super) fn audit_copies(&self, cx: &Cx, copies: &[(u32, u32)], cpu: u32, task: &Task) {
        if !self.checks(crate::fixes::DUPLICATE_LISTENER_CHECK) {
            return;
        }
        if let Some((port, n)) = copies.iter().filter(|(_, n)| *n > 1).min() {
            cx.sim().report(
                Some(cx),
                Violation::new(
                    ViolationKind::finding("duplicate-listener"),
                    format!(
                        "the exit of pid {} was delivered {n} times to port {port} on cpu {cpu}",
                        task.pid
                    ),
                ),
            );
        }
    }

    /// The checker's look after a DEREGISTER that returned 0: no entry of the port may be left
    /// on the CPUs it named. Read through an observer context.
    pub(super) fn audit_deregister(&self, cx: &Cx, port: u32, mask: &CpuSet) {
        let observer = self.observer(cx, ObserverUse::Audit);
        for cpu in mask {
            let left = self.listener_array[cpu as usize]
                .sem
                .observe_read(&observer, |list| list.iter().filter(|s| s.pid == port).count());
            if left > 0 {
                cx.sim().report(
                    Some(cx),
                    Violation::new(
                        ViolationKind::finding("duplicate-listener"),
                        format!(
                            "DEREGISTER of port {port} on cpu {cpu} returned 0 but {left} entries are left"
                        ),
                    ),
                );
            }
        }
    }

    /// The invariants that hold between operations, over the whole model (the pieces are in
    /// `invariants.rs`, shared with the incremental check).
    pub fn check_invariants(&self, sim: &Sim) -> Result<(), Violation> {
        let cx = sim.observer_cx("check_invariants", 0);
        for cpu in 0..self.listener_array.len() {
            self.check_listener_list(&cx, cpu)?;
        }
        self.check_listener_objects()?;
        // Every group leader's ledger (when the version's fixes are checked), then the groups
        // with stats counted in a second look: two passes, not one, because threaded cases run
        // this check inside their executions after the set-up prefix, and their pinned
        // schedules (tests/tests/taskstats/threaded.rs) count these lock steps.
        if self.checks_group_stats() {
            let leaders: Vec<Arc<Task>> =
                self.tasks.read_lock(&cx).tasks.values().filter(|t| t.is_leader()).cloned().collect();
            self.check_leaders(&cx, leaders.iter().map(|t| &**t), true, None)?;
        }
        let mut groups = 0;
        {
            let table = self.tasks.read_lock(&cx);
            let leaders = table.tasks.values().filter(|t| t.is_leader()).map(|t| &**t);
            self.check_leaders(&cx, leaders, false, Some(&mut |_| groups += 1))?;
        }
        self.check_stats_objects(groups)
    }

    /// Frees every listener and group stats; a leak (of those or of an sk_buff) is a violation.
    pub fn teardown(self, sim: &Sim) -> Result<(), Violation> {
        let cx = sim.cx("teardown", 0);
        for listeners in &self.listener_array {
            let mut list = listeners.sem.down_write(&cx);
            for s in list.drain(..) {
                let _ = self.listener_cache.free(&cx, s.handle);
            }
            listeners.len.store(0, Ordering::Relaxed);
        }
        let signals: Vec<Arc<Signal>> = self
            .tasks
            .read_lock(&cx)
            .tasks
            .values()
            .filter(|t| t.is_leader())
            .map(|t| t.signal.clone())
            .collect();
        for signal in signals {
            let handle = signal.lock.lock_irqsave(&cx).stats_handle.take();
            if let Some(handle) = handle {
                let _ = self.taskstats_cache.free(&cx, handle);
            }
        }
        self.listener_cache.destroy(&cx)?;
        self.taskstats_cache.destroy(&cx)?;
        // Every reference a query took was put: after the last grace period each task still
        // hashed holds only the pid hash's reference.
        sim.rcu_advance();
        let tasks: Vec<Arc<Task>> = self.tasks.read_lock(&cx).tasks.values().cloned().collect();
        for task in &tasks {
            task.usage.teardown(&cx, 1)?;
        }
        // Every get_task_mm() was matched by an mmput(): each mm has one user per task whose
        // `mm` points to it.
        let mut mms: Vec<(Arc<crate::mm::MmStruct>, u32)> = Vec::new();
        for mm in tasks.iter().filter_map(|task| task.mm.load()) {
            match mms.iter_mut().find(|(seen, _)| Arc::ptr_eq(seen, &mm)) {
                Some((_, users)) => *users += 1,
                None => mms.push((mm, 1)),
            }
        }
        for (mm, users) in mms {
            mm.teardown(&cx, users)?;
        }
        self.skbs.teardown(&cx)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sim_core::SimConfig;

    /// A use's observer is kept between calls and renewed on the caller's CPU (the same context
    /// object, not a new one each call); a nested take of the same use, whose slot is empty,
    /// makes its own, the first one given back is kept and the other dropped; another use has
    /// a slot of its own.
    #[test]
    fn a_kept_observer_is_reused_renewed_on_the_callers_cpu_and_made_when_nested() {
        let sim = Sim::new(SimConfig::new(5).cpus(2));
        let model = Taskstats::new(&sim, Fixes::preset("linux-3.8").unwrap(), Params::default());
        let slot = |purpose: ObserverUse| {
            let kept = model.observers.slots[purpose as usize].lock().unwrap();
            kept.as_deref().map(|cx| cx as *const Cx)
        };
        let on_cpu_1 = sim.cx("test", 1);
        let first: *const Cx = {
            let observer = model.observer(&on_cpu_1, ObserverUse::Audit);
            &*observer
        };
        assert_eq!(slot(ObserverUse::Audit), Some(first), "given back when dropped");
        let again = model.observer(&on_cpu_1, ObserverUse::Audit);
        assert_eq!(&*again as *const Cx, first, "the kept context is taken again, not made");
        assert_eq!((again.cpu(), again.is_observer()), (1, true), "renewed on the caller's CPU");
        let nested = model.observer(&sim.cx("test", 0), ObserverUse::Audit);
        let nested_at = &*nested as *const Cx;
        assert_ne!(nested_at, first, "a nested use makes its own context");
        assert_eq!(nested.cpu(), 0);
        drop(nested);
        drop(again);
        assert_eq!(slot(ObserverUse::Audit), Some(nested_at), "the first given back is kept");
        assert_eq!(slot(ObserverUse::Ledger), None, "each use has its own slot");
    }
}
