//! Exit delivery in kernel/taskstats.c: taskstats_tgid_alloc, fill_tgid_exit, taskstats_exit
//! (and 2.6.19's taskstats_exit_alloc/_send) and send_cpu_listeners, which walks a CPU's
//! listener list under `listeners->sem` and prunes closed ports.

use super::*;

/// One counter of a PID record, read out of it.
type Counter = fn(&TaskstatsRecord) -> u64;

/// The counters of a PID record that only grow, by name: a PID reply about an exited task may
/// read none of them lower than its exit record did ([`Taskstats::judge_pid_reply_after_exit`]).
const GROWING_COUNTERS: [(&str, Counter); 16] = [
    ("cpu_count", |s| s.cpu_count),
    ("cpu_delay_total", |s| s.cpu_delay_total),
    ("blkio_count", |s| s.blkio_count),
    ("blkio_delay_total", |s| s.blkio_delay_total),
    ("swapin_count", |s| s.swapin_count),
    ("swapin_delay_total", |s| s.swapin_delay_total),
    ("cpu_run_real_total", |s| s.cpu_run_real_total),
    ("cpu_run_virtual_total", |s| s.cpu_run_virtual_total),
    ("freepages_count", |s| s.freepages_count),
    ("freepages_delay_total", |s| s.freepages_delay_total),
    ("nvcsw", |s| s.nvcsw),
    ("nivcsw", |s| s.nivcsw),
    ("ac_utime", |s| s.ac_utime),
    ("ac_stime", |s| s.ac_stime),
    ("ac_minflt", |s| s.ac_minflt),
    ("ac_majflt", |s| s.ac_majflt),
];

/// The records of one exit event (mk_reply() once or twice): the PID record and, at a group's
/// death, the TGID record, kept on the stack.
#[derive(Default)]
pub(super) struct ExitRecords {
    records: [(u16, u32, TaskstatsRecord); 2],
    len: usize,
}

impl ExitRecords {
    fn push(&mut self, record: (u16, u32, TaskstatsRecord)) {
        self.records[self.len] = record;
        self.len += 1;
    }

    /// The next slot, as `kind` for `id`, its record still the zeroed default, for the caller
    /// to fill in place.
    fn push_zeroed(&mut self, kind: u16, id: u32) -> &mut TaskstatsRecord {
        let slot = &mut self.records[self.len];
        (slot.0, slot.1) = (kind, id);
        self.len += 1;
        &mut slot.2
    }

    pub(super) fn as_slice(&self) -> &[(u16, u32, TaskstatsRecord)] {
        &self.records[..self.len]
    }
}

impl Taskstats {
    /// How this kernel reads and publishes `sig->stats` outside siglock. The kernels before
    /// "taskstats: cleanup ->signal->stats allocation" (2.6.19, 2.6.20-rc) race the same way:
    /// from 2.6.19-rc4, taskstats_tgid_alloc()'s fast path at each CLONE_THREAD fork
    /// ("taskstats_tgid_alloc: optimization") and taskstats_exit_send()'s `is_thread_group`
    /// ("taskstats: kill ->taskstats_lock in favor of ->siglock") are plain loads with no lock
    /// while another thread's fork stores the pointer under it. 2.6.19-rc3 (seed 002) reads it
    /// under `stats_lock` only. No commit fixed
    /// that code (the 2.6.20 change moved the race to exit time, where 0b8d616fb5a8 fixed it),
    /// so no switch can turn it off there: lockset judges those kernels only when the fix is
    /// audited (`--fix-off tgid-alloc-data-race`).
    pub(crate) fn stats_access(&self) -> StatsAccess {
        let marked = self.fixes.on(crate::fixes::TGID_ALLOC_DATA_RACE);
        if !self.fixes.on(crate::fixes::TGID_ALLOC_AT_EXIT) {
            if !marked && self.checks(crate::fixes::TGID_ALLOC_DATA_RACE) {
                StatsAccess::Plain
            } else {
                StatsAccess::Untracked
            }
        } else if marked {
            StatsAccess::Marked
        } else {
            StatsAccess::Plain
        }
    }

    /// Mirrors taskstats_tgid_alloc(): the unlocked fast path (stats already set, or a group of
    /// one), else allocate, install under siglock if still unset, free the spare. The fast path's
    /// load and the store are plain before "taskstats: fix data-race" (lockset judges them) and
    /// acquire/release after it; its thread_group_empty() takes no lock in any version, a racy
    /// read the kernel relies on being benign ([`crate::task::ThreadGroup::thread_group_empty`]).
    pub fn taskstats_tgid_alloc(&self, cx: &Cx, task: &Task) -> bool {
        let sig = &task.signal;
        let access = self.stats_access();
        if sig.stats_unlocked(cx, access) {
            return true;
        }
        if sig.threads.thread_group_empty() {
            return false;
        }
        let handle = self.taskstats_cache.alloc(cx, Gfp::GFP_KERNEL, ()).ok();
        // spin_lock_irq(&tsk->sighand->siglock): process context, irqs on (3.x, as the seeds).
        let mut inner = sig.lock.lock_irq(cx);
        sig.stats_locked_read(cx, access);
        if !sig.stats.is_some() {
            if handle.is_some() {
                sig.stats.replace(Some(TaskstatsRecord::default()));
                inner.stats_handle = handle;
                sig.set_stats(cx, access, true);
                drop(inner);
                self.mark(cx, "group-stats-allocated");
                return true;
            }
        } else if let Some(handle) = handle {
            drop(inner);
            self.mark(cx, "group-stats-spare-freed");
            let _ = self.taskstats_cache.free(cx, handle);
            return true;
        } else {
            drop(inner);
            // This allocation failed while another thread's exit published the group's stats.
            self.mark(cx, "group-stats-published-meanwhile");
            return true;
        }
        drop(inner);
        // Not counted: another thread's exit may still publish the group's stats after this.
        self.mark(cx, "group-stats-allocation-failed");
        false
    }

    /// Mirrors fill_tgid_exit(): adds the exiting thread's delays into signal->stats, under
    /// siglock (2.6.19: stats_lock), delayacct_add_tsk() taking the thread's delays->lock inside
    /// it. The checker's ledger moves the thread into its truth inside the same section, and
    /// marks the section's end ([`Self::ledger_fill_done`]) before siglock is dropped.
    pub(super) fn fill_tgid_exit(&self, cx: &Cx, task: &Task) {
        let inner = task.signal.lock.lock_irqsave(cx);
        self.ledger_filled(task);
        task.signal.stats_locked_read(cx, self.stats_access());
        if task.signal.stats.is_some() {
            // delayacct_add_tsk(tsk->signal->stats, tsk): the thread's delays->lock inside siglock.
            let mut own = TaskstatsRecord::default();
            self.delayacct_add_tsk(cx, task, &mut own);
            task.signal.stats.update(|stats| {
                add_delays(stats, &own);
                stats.cpu_scaled_run_real_total += own.cpu_scaled_run_real_total;
            });
            self.ledger_fill_done(task);
            drop(inner);
            self.mark(cx, "group-stats-aggregated");
        } else {
            self.ledger_fill_done(task);
        }
    }

    /// Mirrors taskstats_exit() (3.x).
    pub(super) fn taskstats_exit(&self, cx: &Cx, task: &Task, group_dead: bool) -> ExitReport {
        let mut report = ExitReport::nothing_sent(task.pid, group_dead, cx.cpu());
        let mut size = self.packet_size();
        let is_thread_group = if self.fixes.on(crate::fixes::TGID_ALLOC_AT_EXIT) {
            self.taskstats_tgid_alloc(cx, task)
        } else {
            // 2.6.20 before the on-demand allocation: the fork allocated it, or nobody did;
            // `is_thread_group = (tsk->signal->stats != NULL)`, no lock.
            task.signal.stats_unlocked(cx, self.stats_access())
        };
        // The ledger books the thread only when the kernel decided to count it: between this
        // thread's failed allocation (sig->stats read NULL) and a later look, another thread's
        // exit may publish the group's stats, and the kernel rightly leaves this thread out.
        if is_thread_group {
            self.ledger_exit(cx, task);
            size *= 2;
            self.fill_tgid_exit(cx, task);
        }
        let listeners = &self.listener_array[cx.cpu() as usize];
        if listeners.is_empty_unlocked() {
            return report;
        }
        let Ok(mut msg) = self.prepare_reply(cx, None, TASKSTATS_CMD_NEW, size) else {
            return report;
        };
        let records = self.exit_records(cx, task, is_thread_group && group_dead);
        for (kind, id, stats) in records.as_slice() {
            if self.mk_reply(&mut msg, *kind, *id, stats).is_err() {
                // err: nlmsg_free(rep_skb).
                self.reply_failed(cx, msg);
                return report;
            }
        }
        self.send_cpu_listeners(cx, msg, cx.cpu(), task, records.as_slice(), &mut report);
        report
    }

    /// The PID record and, at group death of a group with stats, the TGID record, with no
    /// lock, as taskstats_exit() (and 2.6.19's taskstats_exit_send()) builds them: the exiting
    /// task's counters are its own ([`Task::acct`]), and the memcpy() of `signal->stats`
    /// ([`crate::task::GroupStats`]) takes no siglock, the group being dead (another thread's
    /// fill_tgid_exit() may still run: its exit came first but its fill may follow).
    pub(super) fn exit_records(&self, cx: &Cx, task: &Task, with_tgid: bool) -> ExitRecords {
        // The checker's truth, read next to the memcpy() with no scheduling point between them,
        // with the least the copy may hold: the memcpy() takes no siglock, so it may land inside
        // another thread's fill_tgid_exit() section, after the ledger counted that thread and
        // before (or while) its delayacct_add_tsk() adds its delays; the copy is judged against both.
        let (group, truth) = if with_tgid {
            let truth =
                self.ledger().groups.get(&task.tgid).map(|group| {
                    (group.truth_before_fills(), group.truth.clone(), !group.filling.is_empty())
                });
            (task.signal.stats.get(), truth)
        } else {
            (None, None)
        };
        // taskstats_exit(): fill_stats(&init_user_ns, &init_pid_ns, tsk, ...), no tasklist_lock
        // (2.6.19's taskstats_exit_send(): fill_pid() with the task given, no lookup, no lock).
        // Each record is filled in its slot of the event's records (not built and moved in).
        let mut records = ExitRecords::default();
        let pid_stats = records.push_zeroed(TASKSTATS_TYPE_PID, task.pid);
        self.fill_stats_into(cx, task, &task.acct.get(), (&[], 0), pid_stats);
        self.xacct_add_tsk(cx, task, pid_stats);
        Self::book_exit_record(task, pid_stats);
        if with_tgid {
            // memcpy() of signal->stats: its version is whatever the seed left there (zero:
            // taskstats_tgid_alloc() zeroes it and only the delay counters are added).
            let stats = group.unwrap_or_default();
            if self.checks_group_stats() {
                let (low, truth, during_fill) = truth.unwrap_or_default();
                if during_fill {
                    self.mark(cx, "group-stats-copied-during-fill");
                }
                if !delays_between(&low, &stats, &truth) {
                    cx.sim().report(
                        Some(cx),
                        Violation::new(
                            ViolationKind::finding("group-stats"),
                            format!(
                                "group {} died: its TGID record says cpu_count {} cpu_delay_total {} but its exited \
                                 threads sum to {} / {}",
                                task.tgid, stats.cpu_count, stats.cpu_delay_total, truth.cpu_count, truth.cpu_delay_total
                            ),
                        ),
                    );
                }
            }
            records.push((TASKSTATS_TYPE_TGID, task.tgid, stats));
        }
        records
    }

    /// The checker's booking of an exit's PID record (`stats`, as the exit built it) in the
    /// exiting task ([`Task::exit_record_booked`]): checker state, no model lock, no trace. A
    /// task exits once.
    fn book_exit_record(task: &Task, stats: &TaskstatsRecord) {
        let first = task.exit_record_booked.set(Box::new(stats.clone())).is_ok();
        debug_assert!(first, "task {} booked a second exit record", task.pid);
    }

    /// The PID record `task`'s exit built, if it built one (its CPU had listeners).
    pub(super) fn booked_exit_record(task: &Task) -> Option<&TaskstatsRecord> {
        task.exit_record_booked.get().map(|booked| &**booked)
    }

    /// The checker's judgement of a PID reply (`reply`) whose fill read task `pid`'s counters
    /// after its exit built its record (`booked`, taken before the fill): the task's exit fill
    /// is behind it, so every counter the record carries (the delays, the CPU times, the
    /// context switches and faults) must read at least as much in the reply, whatever window
    /// of the exit the query landed in (before exit_notify(), a zombie, an EXIT_DEAD task
    /// not yet released). Counters only grow; the kernel's may still grow in the rest of
    /// do_exit(), the model's do not (it accounts nothing there), so in the model they are equal.
    pub(super) fn judge_pid_reply_after_exit(
        &self,
        cx: &Cx,
        pid: u32,
        booked: &TaskstatsRecord,
        reply: &TaskstatsRecord,
    ) {
        self.mark(cx, "pid-query-after-exit-record");
        let lower = GROWING_COUNTERS.iter().find(|(_, counter)| counter(reply) < counter(booked));
        let Some((name, counter)) = lower else { return };
        let text = format!(
            "PID reply for pid {pid} after its exit record: {name} {} below the record's {}",
            counter(reply),
            counter(booked)
        );
        cx.sim().report(Some(cx), Violation::new(ViolationKind::finding("pid-stats-after-exit"), text));
    }

    /// Mirrors taskstats_exit_alloc() (2.6.19): allocate the record, and drop it again unless
    /// this CPU has listeners.
    // Out of line: 2.6.19's exit path alone calls it; inlined, its code sat among exit()'s hot
    // instructions (session 27's count of the cache lines an op fetches).
    #[inline(never)]
    pub(super) fn taskstats_exit_alloc(&self, cx: &Cx) -> Option<sim_core::mm::ObjHandle<()>> {
        let handle = self.taskstats_cache.alloc(cx, Gfp::GFP_KERNEL, ()).ok()?;
        let listeners = &self.listener_array[cx.cpu() as usize];
        let empty = listeners.sem.down_read(cx).is_empty();
        if empty {
            let _ = self.taskstats_cache.free(cx, handle);
            return None;
        }
        Some(handle)
    }

    /// Mirrors taskstats_exit_send() (2.6.19): nothing at all without a record buffer, so the
    /// group's stats miss this thread (the bug exit-fill-before-send fixes), unless the version
    /// fills them before the check.
    // Out of line: 2.6.19's exit path alone calls it; inlined, its code sat among exit()'s hot
    // instructions (session 27's count of the cache lines an op fetches).
    #[inline(never)]
    pub(super) fn taskstats_exit_send(
        &self,
        cx: &Cx,
        task: &Task,
        tidstats: Option<sim_core::mm::ObjHandle<()>>,
        group_dead: bool,
    ) -> ExitReport {
        let mut report = ExitReport::nothing_sent(task.pid, group_dead, cx.cpu());
        // The ledger: the thread belongs in the group's stats whenever they exist.
        self.ledger_exit(cx, task);
        let fill_first = self.fixes.on(crate::fixes::EXIT_FILL_BEFORE_SEND);
        // 2.6.19: one look at the pointer, then fill_tgid_exit(), then the buffer check.
        let early = fill_first.then(|| self.exit_send_is_thread_group(cx, task));
        if early == Some(true) {
            self.fill_tgid_exit(cx, task);
        }
        let Some(tidstats) = tidstats else {
            // The checker's look (the shadow flag, untraced), not the kernel's.
            if task.signal.stats_published() && !fill_first {
                cx.note("taskstats_exit_send: no record buffer, the group's stats skip this thread");
                self.mark(cx, "group-stats-skipped");
            }
            return report;
        };
        let is_thread_group = early.unwrap_or_else(|| self.exit_send_is_thread_group(cx, task));
        let mut size = self.packet_size();
        if is_thread_group {
            size *= 2;
        }
        let Ok(mut msg) = self.prepare_reply(cx, None, TASKSTATS_CMD_NEW, size) else {
            let _ = self.taskstats_cache.free(cx, tidstats);
            return report;
        };
        if is_thread_group && !fill_first {
            self.fill_tgid_exit(cx, task);
        }
        let records = self.exit_records(cx, task, is_thread_group && group_dead);
        for (kind, id, stats) in records.as_slice() {
            if self.mk_reply(&mut msg, *kind, *id, stats).is_err() {
                // nla_put_failure: genlmsg_cancel(), and (before the leak fix) the skb is kept.
                self.reply_failed(cx, msg);
                let _ = self.taskstats_cache.free(cx, tidstats);
                return report;
            }
        }
        self.send_cpu_listeners(cx, msg, cx.cpu(), task, records.as_slice(), &mut report);
        let _ = self.taskstats_cache.free(cx, tidstats);
        report
    }

    /// taskstats_exit_send()'s `is_thread_group`: under `stats_lock` in 2.6.19-rc3; from "taskstats:
    /// kill ->taskstats_lock in favor of ->siglock" a load with no lock (see [`Self::stats_access`]).
    fn exit_send_is_thread_group(&self, cx: &Cx, task: &Task) -> bool {
        let access = self.stats_access();
        if self.fixes.on(crate::fixes::SIGLOCK_GROUP_STATS) {
            return task.signal.stats_unlocked(cx, access);
        }
        let inner = task.signal.lock.lock_irqsave(cx);
        task.signal.stats_locked_read(cx, access);
        let set = task.signal.stats.is_some();
        drop(inner);
        set
    }

    /// Mirrors send_cpu_listeners(): genlmsg_end(), then under the read lock one clone per
    /// listener but the last (a failed clone ends the walk), a unicast to each (consuming its
    /// skb); the skb a walk did not send (an empty list, a failed clone) is freed after up_read;
    /// listeners whose port refused are marked invalid and pruned under the write lock.
    pub(super) fn send_cpu_listeners(
        &self,
        cx: &Cx,
        mut skb: SkBuff,
        cpu: u32,
        task: &Task,
        records: &[(u16, u32, TaskstatsRecord)],
        report: &mut ExitReport,
    ) {
        let listeners = &self.listener_array[cpu as usize];
        // Copies per port, in delivery order (a list holds a few ports: no tree per exit, and
        // no heap list either while it holds at most four).
        let mut copies: smallvec::SmallVec<[(u32, u32); 4]> = smallvec::SmallVec::new();
        skb.genlmsg_end();
        let seq = u32_at(skb.bytes(), 8);
        let skb_clone = |cur: &SkBuff, skipped: usize| {
            let next = self.skbs.skb_clone(cx, cur);
            if next.is_none() {
                cx.note(format!("send_cpu_listeners: skb_clone failed, {skipped} listeners skipped"));
                self.mark(cx, "clone-failed");
            }
            next
        };
        // The checker's audits read through one observer context for the whole walk.
        let observer = self.observer(cx, ledger::ObserverUse::Audit);
        let unicast = |pid: u32, skb: SkBuff| {
            self.audit_delivery(cx, &observer, (pid, cpu, seq), task, records);
            let rc = self.unicast(cx, pid, skb);
            if rc.is_ok() {
                self.ledger().last_seq.insert((pid, cpu), seq);
                match copies.iter_mut().find(|(port, _)| *port == pid) {
                    Some((_, n)) => *n += 1,
                    None => copies.push((pid, 1)),
                }
                report.delivered.push(pid);
            }
            rc
        };
        let (delcount, unsent) = deliver_to_listeners(cx, listeners, skb, skb_clone, unicast);
        if let Some(unsent) = unsent {
            self.skbs.kfree_skb(cx, unsent);
        }
        if !report.delivered.is_empty() {
            self.mark(cx, "exit-delivered");
        }
        self.audit_copies(cx, &copies, cpu, task);
        if delcount == 0 {
            return;
        }
        // The gap: other CPUs' exits and registrations may run between up_read and down_write.
        report.pruned = prune_invalid(cx, listeners, &self.listener_cache);
        if report.pruned > 0 {
            cx.note(format!("send_cpu_listeners: pruned {} listeners of closed ports", report.pruned));
            self.mark(cx, "listener-pruned");
        }
    }
}
