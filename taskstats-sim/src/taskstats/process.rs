//! The task lifecycle the family observes: kernel/fork.c (copy_process, its failure path and
//! the 2.6.19 fork-time taskstats_tgid_alloc), kernel/exit.c (do_exit, release_task) and the
//! scheduler's choice of CPU, over the task table of `task.rs`.

use super::*;
use sim_core::sync::atomic::AtomicBool;
use sim_core::trace::CallName;

/// The copy_process() step after copy_signal() that the fault plan may fail.
static COPY_PROCESS_SITE: StaticSite = StaticSite::new(|| FaultSite::call("taskstats:copy_process"));

/// copy_process()'s success, as the trace shows a fork.
const COPY_PROCESS: CallName = CallName::new("copy_process");

/// A fork kind as one trace word: its variant, and an unprivileged child's uid offset above it.
fn fork_kind_word(kind: ForkKind) -> u64 {
    match kind {
        ForkKind::Thread => 0,
        ForkKind::Process => 1,
        ForkKind::Unprivileged(n) => 2 | u64::from(n) << 8,
        ForkKind::NewPidNs => 3,
        ForkKind::NewUserNs => 4,
    }
}

pub(super) fn comm_for(pid: u32) -> [u8; TS_COMM_LEN] {
    let mut comm = [0u8; TS_COMM_LEN];
    comm[..4].copy_from_slice(b"task");
    // The digits, most significant first, written in place (a fork makes no String for them).
    let digits = pid.checked_ilog10().map_or(1, |log| log as usize + 1);
    let mut rest = pid;
    for at in (4..4 + digits).rev() {
        comm[at] = b'0' + (rest % 10) as u8;
        rest /= 10;
    }
    comm
}

/// The credential change a fork kind stands for (copy_creds(), and copy_namespaces()'s user
/// namespace): the child's user namespace, kuid and capable(CAP_NET_ADMIN). A new pid namespace
/// is made before alloc_pid() ([`Taskstats::fork`]).
pub(super) fn child_namespaces(t: &mut TaskTable, p: &Task, kind: ForkKind) -> (usize, u32, bool) {
    let mut user_ns = p.user_ns;
    let (mut uid, mut cap) = (p.uid, p.cap_net_admin);
    match kind {
        ForkKind::NewUserNs => {
            let base = 100_000 * t.user_ns.len() as u32;
            t.user_ns.push(UserNs { parent: Some(user_ns), base });
            user_ns = t.user_ns.len() - 1;
            uid = t.make_kuid(user_ns, 0);
            cap = true;
        }
        ForkKind::Unprivileged(n) => {
            uid = t.make_kuid(user_ns, 1000 + u32::from(n % 4));
            cap = false;
        }
        ForkKind::Thread | ForkKind::Process | ForkKind::NewPidNs => {}
    }
    (user_ns, uid, cap)
}

/// Mirrors copy_mm(), run by the parent: CLONE_VM (every CLONE_THREAD child) shares the
/// parent's mm with one more user; any other child gets dup_mm()'s copy, named after `pid`.
fn copy_mm(cx: &Cx, parent: &Task, thread: bool, pid: u32) -> Option<Arc<MmStruct>> {
    match parent.mm.load() {
        Some(mm) if thread => {
            mm.mmget(cx);
            Some(mm)
        }
        _ => Some(MmStruct::new(cx, pid)),
    }
}

/// What fork() made of a child before its tasklist_lock section: its kind, `delays`, the flag
/// lock_task_sighand() will read, and its pid with the pid's numbers (alloc_pid()).
struct NewTask {
    kind: ForkKind,
    delays: Option<Arc<TaskDelays>>,
    sighand_detached: Arc<AtomicBool>,
    struct_pid: Arc<StructPid>,
    numbers: Arc<[(usize, u32)]>,
}

impl Taskstats {
    /// Live tasks' global pids, ascending.
    pub fn live_pids(&self, cx: &Cx) -> Vec<u32> {
        let t = self.tasks.read_lock(cx);
        t.tasks.values().filter(|t| t.exit_state() == ExitState::None).map(|t| t.pid).collect()
    }

    /// Zombies' global pids, ascending.
    pub fn zombie_pids(&self, cx: &Cx) -> Vec<u32> {
        let t = self.tasks.read_lock(cx);
        t.tasks.values().filter(|t| t.exit_state() == ExitState::Zombie).map(|t| t.pid).collect()
    }

    /// Task `pid` as a lookup under read_lock(&tasklist_lock) finds it (a pointer, no counted
    /// reference): for the checkers and drivers. A task finds itself through [`Self::current`].
    /// Through an observer context the table is read as [`Self::with_task_table`] reads it (no
    /// round trip between operations of the op-level simulation); a model context takes the
    /// read lock.
    pub fn task(&self, cx: &Cx, pid: u32) -> Option<Arc<Task>> {
        if cx.is_observer() {
            return self.with_task_table(cx, |table| table.tasks.get(&pid).cloned());
        }
        self.tasks.read_lock(cx).tasks.get(&pid).cloned()
    }

    /// `current`, the task of `cx`, read as the kernel reads it: no tasklist_lock, no RCU, no
    /// counted reference, since a running task cannot be reaped under itself. None when `cx`
    /// names no running task (a driver's call for a task that exited or never was, which a
    /// kernel could not make).
    pub(crate) fn current(&self, cx: &Cx) -> Option<Arc<Task>> {
        let running = self.current.read().unwrap_or_else(std::sync::PoisonError::into_inner);
        let at = running.binary_search_by_key(&cx.task(), |&(pid, _)| pid).ok()?;
        Some(running[at].1.clone())
    }

    /// Makes the task_struct the table holds for `pid` (under tasklist_lock, the caller's
    /// `table`) its CPU's `current` once it runs (a new child), or, `running` false, no one's
    /// `current` again: the task ran its last (exit_notify()) or its fork failed.
    pub(super) fn current_changed(&self, table: &TaskTable, pid: u32, running: bool) {
        let mut current = self.current.write().unwrap_or_else(std::sync::PoisonError::into_inner);
        let found = current.binary_search_by_key(&pid, |&(running, _)| running);
        match (table.tasks.get(&pid).filter(|_| running), found) {
            (Some(task), Ok(at)) => current[at].1 = task.clone(),
            (Some(task), Err(at)) if task.exit_state() == ExitState::None => {
                current.insert(at, (pid, task.clone()))
            }
            (_, Ok(at)) => drop(current.remove(at)),
            (_, Err(_)) => {}
        }
    }

    /// The lookup of a PID or TGID query. With pid-lookup-rcu, fill_stats_for_pid()'s
    /// rcu_read_lock(), find_task_by_vpid() and get_task_struct(), and fill_stats_for_tgid()'s
    /// rcu_read_lock() and lookup, its section left open for the fill; without it, 2.6.19-rc3's
    /// fill_pid()/fill_tgid(): find_task_by_pid() and get_task_struct() under
    /// read_lock(&tasklist_lock), an `rwlock_t` whose readers share it and may nest.
    /// [`Self::query_release`] undoes what this took.
    pub(super) fn query_lookup(&self, cx: &Cx, nr: u32, ns: usize, tgid_query: bool) -> Option<Arc<Task>> {
        if !self.fixes.on(crate::fixes::PID_LOOKUP_RCU) {
            let _table = self.tasks.read_lock(cx);
            let task = self.pid_hash.find_task_by_pid_ns(cx, nr, ns, Some(crate::task::TASKLIST_LOCK))?;
            task.get_task_struct(cx);
            return Some(task);
        }
        cx.rcu_read_lock();
        let task = self.pid_hash.find_task_by_pid_ns(cx, nr, ns, None);
        match &task {
            Some(task) if !tgid_query => {
                task.get_task_struct(cx);
                if !task.has_sighand() {
                    cx.note(format!(
                        "find_task_by_vpid({nr}): found task {} as release_task() unhashed it",
                        task.pid
                    ));
                    self.mark(cx, "rcu-lookup-raced-exit");
                }
                cx.rcu_read_unlock();
            }
            Some(_) => {}
            None => cx.rcu_read_unlock(),
        }
        task
    }

    /// The end of a query's lookup: put_task_struct(), or (TGID, pid-lookup-rcu)
    /// rcu_read_unlock().
    pub(super) fn query_release(&self, cx: &Cx, task: &Task, tgid_query: bool) {
        if tgid_query && self.fixes.on(crate::fixes::PID_LOOKUP_RCU) {
            cx.rcu_read_unlock();
        } else {
            task.put_task_struct(cx);
        }
    }

    /// bacct_add_tsk()'s `ac_ppid`, read as the version reads it, with no tasklist_lock (3.x's
    /// fill_stats() and 2.6.19's fill_pid() run without it); `pid_ns` is the namespace the ids
    /// are read in (namespace-checks), `None` for global ids. With bacct-parent-rcu, inside
    /// rcu_read_lock(): `pid_alive(tsk) ? <id of rcu_dereference(tsk->real_parent)> : 0`,
    /// the id being the plain field `->tgid` in 3.1-3.7 and task_tgid_nr_ns(parent, ns) in 3.8
    /// ([`Task::task_tgid_nr_ns`]: the parent's leader's pid, no check of the parent's own).
    /// pid_alive() is asked of the filled task only: a parent reaped under the reader still
    /// reads its tgid. Without the fix: `tsk->parent->pid`, a plain dereference of a pointer
    /// nothing protects, which PROVE_RCU-style checking reports. Children of a dead group are
    /// reparented ([`Self::forget_original_parent`]) before its leader can be released.
    pub(super) fn bacct_ppid(&self, cx: &Cx, task: &Task, pid_ns: Option<usize>) -> u32 {
        let fixed = self.fixes.on(crate::fixes::BACCT_PARENT_RCU);
        if fixed {
            if !task.pid_alive() {
                return 0;
            }
            cx.rcu_read_lock();
        }
        let parent = task.parent.rcu_dereference(cx).and_then(|p| p.get(cx).ok());
        let ppid = parent.map_or(0, |p| match (pid_ns, fixed) {
            (Some(ns), true) => p.task_tgid_nr_ns(ns),
            (Some(ns), false) => p.task_pid_nr_ns(ns),
            (None, true) => p.tgid,
            (None, false) => p.pid,
        });
        if fixed {
            cx.rcu_read_unlock();
        }
        ppid
    }

    /// bacct_add_tsk()'s start of the elapsed time: `tsk->start_time` with bacct-parent-rcu,
    /// `current->group_leader->start_time` (the requester's, a different task) before it,
    /// both the tasks' own fields, read with no lock.
    pub(super) fn bacct_start_ns(&self, cx: &Cx, task: &Task) -> u64 {
        if self.fixes.on(crate::fixes::BACCT_PARENT_RCU) {
            return task.start_ns;
        }
        self.current(cx).map_or(task.start_ns, |current| current.leader_start_ns)
    }

    /// Mirrors release_task() once __exit_signal() detached the task (the caller set
    /// `sighand_detached` under siglock): __unhash_process() under tasklist_lock (the caller's
    /// `table`): detach_pid(), which frees the pid with its last task (free_pid()), and the
    /// task list's removal; then delayed_put_task_struct(): the pid hash's reference is put
    /// after a grace period, with the task's node on the pid's chain, so a reader that found
    /// the task under RCU may still take its own reference.
    pub(super) fn unhash_process(&self, cx: &Cx, table: &mut TaskTable, task: &Arc<Task>) {
        let Some((task, link)) = table.remove_task(task.pid) else { return };
        self.pid_hash.detach_pid(cx, &link);
        let links = self.pid_hash.task_links();
        sim_core::rcu::call_rcu(cx, move |cx| {
            links.kfree(cx, &[], &[link.node()]);
            task.put_task_struct(cx);
        });
    }

    /// The numbers of task `pid` per namespace level, and its tgid's numbers.
    pub fn task_nr_in(&self, cx: &Cx, pid: u32, ns: usize) -> u32 {
        self.tasks.read_lock(cx).pid_nr_ns(pid, ns)
    }

    /// do_fork() and copy_process() as far as taskstats cares, run by `current` (the task of
    /// `cx`): a new task (and, without CLONE_THREAD, a new group and fd table). Returns the
    /// child's global pid; ESRCH when the caller's task does not exist. The steps in the
    /// kernel's order: 2.6.19's do_fork() allocates the pid first (alloc_pid(), -EAGAIN when it
    /// fails, freed again if copy_process() fails); copy_process() checks the thread limit
    /// (-EAGAIN), makes the child's `delays` and, for a CLONE_THREAD child, runs copy_signal()
    /// ([`Self::copy_signal_thread`]); a later step may fail (-ENOMEM, [`COPY_PROCESS_SITE`]);
    /// from 2.6.24 copy_process() itself then allocates the pid (-ENOMEM); and the child is
    /// built and hashed inside one tasklist_lock section ([`Self::copy_process_hashed`]).
    pub fn fork(&self, cx: &Cx, kind: ForkKind) -> Result<u32, Errno> {
        let mut kind = kind;
        if !self.fixes.on(crate::fixes::PID_NAMESPACES)
            && matches!(kind, ForkKind::NewPidNs | ForkKind::NewUserNs)
        {
            kind = ForkKind::Process;
        }
        let p = self.current(cx).ok_or(Errno::ESRCH)?;
        let thread = kind == ForkKind::Thread;
        let early = match self.pid_in_copy_process() {
            true => None,
            false => {
                // ns->level + 1: the parent's own count of numbers (its namespace's).
                let Some(allocated) = self.pid_hash.alloc_pid(cx, p.pid_ns(), p.numbers.len()) else {
                    self.mark(cx, "alloc-pid-failed-eagain");
                    return Err(Errno::EAGAIN);
                };
                Some(allocated)
            }
        };
        // copy_process(): `nr_threads >= max_threads`, read with no lock.
        if self.pid_hash.nr_threads() >= self.params.tasks_max {
            self.bad_fork_free_pid(cx, early);
            return Err(Errno::EAGAIN);
        }
        let delays = self.delayacct_tsk_init(cx);
        if thread {
            self.copy_signal_thread(cx, &p.signal);
        }
        if thread && cx.sim().should_fail(cx, &COPY_PROCESS_SITE, 0) {
            self.copy_process_failed(cx, &p.signal, thread, early);
            return Err(Errno::ENOMEM);
        }
        let (struct_pid, numbers) = match early {
            Some(allocated) => allocated,
            None => {
                // copy_namespaces(): a CLONE_NEWPID child's namespace, before its pid.
                // Its level + 1: the parent's count of numbers, one more in a new namespace.
                let (ns, levels) = match kind {
                    ForkKind::NewPidNs => {
                        (self.pid_hash.create_pid_namespace(p.pid_ns()), p.numbers.len() + 1)
                    }
                    _ => (p.pid_ns(), p.numbers.len()),
                };
                let Some(allocated) = self.pid_hash.alloc_pid(cx, ns, levels) else {
                    self.mark(cx, "alloc-pid-failed-enomem");
                    self.copy_process_failed(cx, &p.signal, thread, None);
                    return Err(Errno::ENOMEM);
                };
                allocated
            }
        };
        let sighand_detached = Arc::new(AtomicBool::new(false));
        let new = NewTask { kind, delays, sighand_detached, struct_pid, numbers };
        let pid = {
            let mut t = self.tasks.write_lock_irq(cx);
            let (pid, signal) = self.copy_process_hashed(cx, &mut t, &p, new);
            if let Some(child) = t.tasks.get(&pid) {
                self.thread_group_add(cx, &p.signal, &signal, child, thread);
            }
            pid
        };
        let words = [fork_kind_word(kind), u64::from(pid)];
        crate::task::trace_point(cx, &COPY_PROCESS, words, || format!("fork {kind:?}: pid {pid}"));
        Ok(pid)
    }

    /// Whether copy_process() allocates the pid, after copy_signal() (-ENOMEM when it fails),
    /// as from 2.6.24, whose pid namespaces need the child's `nsproxy` for alloc_pid(ns): the
    /// model's `pid-namespaces` switch stands for that era. Off: 2.6.19's do_fork() allocates
    /// it before copy_process() (-EAGAIN).
    fn pid_in_copy_process(&self) -> bool {
        self.fixes.on(crate::fixes::PID_NAMESPACES)
    }

    /// 2.6.19's do_fork() when copy_process() failed: free_pid() of the pid it allocated, with
    /// no lock held but the pidmap_lock free_pid() takes.
    fn bad_fork_free_pid(&self, cx: &Cx, early: Option<crate::task::AllocatedPid>) {
        if let Some((pid, _)) = early {
            self.pid_hash.free_pid(cx, &pid);
        }
    }

    /// copy_signal() for a CLONE_THREAD child: the group's `live` counts it there in
    /// 2.6.19-rc3 (atomic_inc(), no lock; later kernels count it in copy_process()'s tasklist_lock
    /// section, [`Self::thread_group_add`]), and before "taskstats: cleanup ->signal->stats
    /// allocation" taskstats_tgid_alloc() runs ([`Self::tgid_alloc_at_fork`]).
    // Out of line: it does work only in 2.6.19-era versions; inlined, its code sat among fork()'s
    // hot instructions (session 27's count of the cache lines an op fetches).
    #[inline(never)]
    fn copy_signal_thread(&self, cx: &Cx, signal: &Arc<Signal>) {
        if !self.siglock_modelled() {
            signal.live.fetch_add(1, Ordering::Relaxed);
        }
        if !self.fixes.on(crate::fixes::TGID_ALLOC_AT_EXIT) {
            self.tgid_alloc_at_fork(cx, signal);
        }
    }

    /// The part of copy_process() under `tasklist_lock` (held as `t`), run by `p`: the child's
    /// user namespace and ids, signal_struct (shared by a thread), mm and files, attached to
    /// its pid and published; returns (pid, the child's signal).
    fn copy_process_hashed(
        &self,
        cx: &Cx,
        t: &mut TaskTable,
        p: &Arc<Task>,
        new: NewTask,
    ) -> (u32, Arc<Signal>) {
        let NewTask { kind, delays, sighand_detached, struct_pid, numbers } = new;
        let class = signal_lock_class(self.fixes);
        let (user_ns, uid, cap) = child_namespaces(t, p, kind);
        let pid = numbers[0].1;
        let thread = kind == ForkKind::Thread;
        let signal = if thread { p.signal.clone() } else { Signal::new(class) };
        if !thread && p.signal.sigchld_ignored.load(Ordering::Relaxed) {
            // copy_sighand(): a new process copies its creator's actions, with no lock.
            signal.sigchld_ignored.store(true, Ordering::Relaxed);
        }
        let mm = copy_mm(cx, p, thread, pid);
        // copy_process(): a CLONE_THREAD child shares its creator's parent; any other child's
        // parent is `current` itself, the creating thread, leader or not.
        let real_parent = if thread { p.real_parent() } else { p.pid };
        let parent = Task::parent_pointer(cx, t.tasks.get(&real_parent).cloned());
        // The credentials' namespace (prepare_creds() shares the parent's unless a new one).
        let user_ns_bases =
            if user_ns == p.user_ns { p.user_ns_bases.clone() } else { t.user_ns_bases(user_ns) };
        let start_ns = cx.sim().now_ns();
        let (tgid_numbers, leader_start_ns) =
            if thread { (p.tgid_numbers.clone(), p.leader_start_ns) } else { (numbers.clone(), start_ns) };
        let leader_detached = if thread { p.leader_detached.clone() } else { sighand_detached.clone() };
        // dup_task_struct(): the task built where it lives, in its `Arc` (a `Task` on the stack
        // moved in later was copied twice a fork).
        let task = Arc::new(Task {
            pid,
            tgid: if thread { p.tgid } else { pid },
            tgid_numbers,
            leader_start_ns,
            numbers,
            user_ns,
            user_ns_bases,
            uid,
            gid: uid,
            cap_net_admin: cap,
            real_parent: InPlace::new(real_parent),
            parent,
            cpu: InPlace::new(p.cpu()),
            comm: comm_for(pid),
            start_ns,
            cgroup: InPlace::new(p.cgroup() as u32),
            state: InPlace::new(TaskState::Running as u32),
            exit_code: 0,
            exit_state: InPlace::new(ExitState::None as u32),
            self_reaping: InPlace::new(0),
            signal: signal.clone(),
            delays,
            acct: TaskAcct::default(),
            usage: Task::new_usage(cx, pid),
            sighand_detached,
            exiting: AtomicBool::new(false),
            leader_detached,
            mm: TaskMm::new(mm),
            exit_record_booked: std::sync::OnceLock::new(),
        });
        self.hash_new_task(cx, t, task, p.tgid, struct_pid);
        (pid, signal)
    }

    /// Whether the model has the group's `sighand->siglock`: its group lock is siglock from
    /// "taskstats: kill ->taskstats_lock in favor of ->siglock" on; 2.6.19-rc3's group lock is
    /// `stats_lock`, another lock, and its siglock is not modelled.
    pub(super) fn siglock_modelled(&self) -> bool {
        self.fixes.on(crate::fixes::SIGLOCK_GROUP_STATS)
    }

    /// copy_process()'s list_add_tail_rcu() of `child` to its group's thread list (`signal`'s:
    /// a new group's list starts with its leader), under tasklist_lock (the caller's) and
    /// `current`'s siglock inside it (`creator`'s lock), where a CLONE_THREAD child is also
    /// counted in `signal->live`. In 2.6.19-rc3, under tasklist_lock alone (no siglock in the
    /// model; its `live` was counted by copy_signal(), [`Self::copy_signal_thread`]).
    fn thread_group_add(&self, cx: &Cx, creator: &Signal, signal: &Signal, child: &Arc<Task>, thread: bool) {
        if !self.siglock_modelled() {
            signal.threads.change(cx, false, |threads| threads.insert(child));
            return;
        }
        // copy_process(): spin_lock(&current->sighand->siglock), a plain spin_lock() inside
        // write_lock_irq(&tasklist_lock), whose irqs are already off.
        let inner = creator.lock.lock(cx);
        signal.threads.change(cx, true, |threads| threads.insert(child));
        if thread {
            // The same signal_struct: a thread's group is its creator's. atomic_inc(): the
            // siglock held here orders nothing for it.
            signal.live.fetch_add(1, Ordering::Relaxed);
        }
        drop(inner);
    }

    /// The end of copy_process() under `tasklist_lock`: a process child gets its own copy of
    /// its creator's fd table (copy_files()), the child is attached to its pid (attach_pid()),
    /// and becomes its CPU's `current` for when it runs (after wake_up_new_task()).
    fn hash_new_task(
        &self,
        cx: &Cx,
        t: &mut TaskTable,
        task: Arc<Task>,
        creator_tgid: u32,
        struct_pid: Arc<StructPid>,
    ) {
        let pid = task.pid;
        if task.delays.is_none() {
            cx.note(format!(
                "delayacct_tsk_init: kmem_cache_zalloc failed; pid {pid} runs with delays == NULL"
            ));
        }
        if task.tgid == pid {
            let files = t.files.get(&creator_tgid).cloned().unwrap_or_default();
            t.files.insert(pid, files);
        }
        // attach_pid() of the pid alloc_pid() made before this section, and the task list.
        let link = self.pid_hash.attach_pid(cx, &task, struct_pid);
        t.insert_task(task, link);
        self.current_changed(t, pid, true);
    }

    /// copy_process()'s error path after copy_signal() (a later step, say copy_mm(), or 3.x's
    /// alloc_pid() failed), before the child was hashed: for a CLONE_THREAD child 2.6.19-rc3's
    /// cleanup_signal() drops the `live` copy_signal() counted (atomic_dec(), no lock), and
    /// before "taskstats_tgid_free: fix usage" the path also runs taskstats_tgid_free() on the
    /// shared signal_struct, freeing the stats the rest of the group is accumulating. Then
    /// 2.6.19's do_fork() frees the pid it allocated (`early`).
    // Out of line and cold: a failed fork is the fault injector's rare path.
    #[cold]
    #[inline(never)]
    pub(super) fn copy_process_failed(
        &self,
        cx: &Cx,
        signal: &Arc<Signal>,
        thread: bool,
        early: Option<crate::task::AllocatedPid>,
    ) {
        cx.note("copy_process: a step after copy_signal failed; the child is undone");
        if thread && !self.siglock_modelled() {
            signal.live.fetch_sub(1, Ordering::AcqRel);
        }
        if thread && !self.fixes.on(crate::fixes::TGID_FREE_USAGE) {
            let mut inner = signal.lock.lock_irqsave(cx);
            let stats = signal.stats.replace(None);
            let handle = inner.stats_handle.take();
            signal.set_stats(cx, self.stats_access(), false);
            drop(inner);
            if let Some(handle) = handle {
                cx.note("copy_process: taskstats_tgid_free() frees the group's signal->stats");
                let _ = self.taskstats_cache.free(cx, handle);
            }
            if stats.is_some() {
                self.mark(cx, "tgid-freed-by-failed-fork");
            }
        }
        self.bad_fork_free_pid(cx, early);
    }

    /// Whether the group-stats property (every exited thread counted once in its group's
    /// stats) is checked: a change that makes it hold is on or audited (the 2.6.19-rc3
    /// contract, with both off, does not promise it).
    pub(super) fn checks_group_stats(&self) -> bool {
        self.checks(crate::fixes::EXIT_FILL_BEFORE_SEND) || self.checks(crate::fixes::TGID_FREE_USAGE)
    }

    /// 2.6.19's taskstats_tgid_alloc() in copy_signal(): from "taskstats_tgid_alloc:
    /// optimization" an unlocked fast path (`sig->stats` already set); then allocate outside the
    /// lock, install under the group's lock if still empty, free the spare. A failed allocation
    /// is silently tolerated. The fast path's load races with another thread's fork, which
    /// stores the pointer (see [`Self::stats_access`]).
    pub(super) fn tgid_alloc_at_fork(&self, cx: &Cx, signal: &Arc<Signal>) {
        let access = self.stats_access();
        if self.fixes.on(crate::fixes::TGID_ALLOC_FAST_PATH) && signal.stats_unlocked(cx, access) {
            return;
        }
        let Ok(handle) = self.taskstats_cache.alloc(cx, Gfp::GFP_KERNEL, ()) else {
            return;
        };
        let mut inner = signal.lock.lock_irqsave(cx);
        signal.stats_locked_read(cx, access);
        if !signal.stats.is_some() {
            signal.stats.replace(Some(TaskstatsRecord::default()));
            inner.stats_handle = Some(handle);
            signal.set_stats(cx, access, true);
        } else {
            drop(inner);
            let _ = self.taskstats_cache.free(cx, handle);
        }
    }

    /// Simulated activity: the task runs a while; its counters advance by amounts from the Sim's
    /// RNG and the virtual clock moves.
    pub fn run(&self, cx: &Cx) -> bool {
        self.run_accounted(cx).is_some()
    }

    /// [`Self::run`], returning what the run added to the task's counters (the op-level
    /// driver's report of a run); None when `cx` names no running task. The task advances its
    /// own counters in its `task_struct` ([`Task::acct`]) with no kernel lock, as the kernel's
    /// accounting hooks (the scheduler's sched_info/`sum_exec_runtime`, account_user_time(),
    /// the fault and I/O paths) do. The increase is taken where the model writes the counters
    /// (and, for the `task_delay_info` part, from delayacct_end()'s before and after): no
    /// copies of the whole counters handed back.
    pub(crate) fn run_accounted(&self, cx: &Cx) -> Option<crate::Work> {
        let sim = cx.sim();
        let task = self.current(cx)?;
        sim.advance_ns(1 + sim.below(1_000_000));
        // The end of the block I/O wait of the task this one wakes (from c96f5471ce7d:
        // delayacct_blkio_end(p), p's delays->lock); before it, the end of this task's own wait
        // is the run's delayacct_end() below, one section.
        self.delayacct_blkio_end(cx, &task);
        let (mut work, delta, hiwater) = task.acct.update(|acct| {
            let before = *acct;
            // The run's draws, one book hold for all of them (the same numbers, in order).
            let has_delays = task.delays.is_some();
            let delta = sim.with_draws(|draws| acct.advance(|bound| draws.below(bound.max(1)), has_delays));
            (crate::Work::between(&before, acct), delta, (acct.rss_pages, acct.vm_pages))
        });
        // The run's waits end: delayacct_end() adds them under the task's delays->lock.
        let (delays_before, delays_after) = self.delayacct_end(cx, &task, &delta);
        work.set_delays_between(&delays_before, &delays_after);
        // The task's own page faults raise its mm's high-water marks (current->mm, no lock).
        if let Some(mm) = task.mm.load() {
            mm.update_hiwater(hiwater.0, hiwater.1);
        }
        Some(work)
    }

    /// Sets a task's scheduler state, cgroup or CPU: written in place in the one `task_struct`
    /// (set_current_state(), cgroup_attach_task(), set_task_cpu()), under tasklist_lock, where
    /// the cgroup and task-list readers read them; the pid hash, which points at that object,
    /// is left alone.
    pub fn set_task(
        &self,
        cx: &Cx,
        pid: u32,
        state: Option<TaskState>,
        cgroup: Option<usize>,
        cpu: Option<u32>,
    ) {
        let t = self.tasks.write_lock_irq(cx);
        let Some(task) = t.tasks.get(&pid) else { return };
        if let Some(state) = state {
            task.set_state(state);
        }
        if let Some(cg) = cgroup {
            task.set_cgroup(cg % t.cgroups.len());
        }
        if let Some(cpu) = cpu {
            task.set_cpu(cpu % self.params.cpus);
        }
    }

    /// do_exit() as taskstats sees it, on the task's CPU: PF_EXITING ([`Self::exit_signals`]),
    /// the exit hook (taskstats_exit, or 2.6.19's taskstats_exit_alloc + taskstats_exit_send),
    /// exit_mm(), then [`Self::exit_notify`]: a non-leader is released at once, a leader stays a
    /// zombie until its group is dead and it is reaped (at once, with no wait(2), when its
    /// parent ignores SIGCHLD: [`Self::do_notify_parent`]); a dead group's ports close. Run by the
    /// exiting task, `current` (the task of `cx`), on the CPU of `cx`; None when it is not a
    /// live task.
    pub fn exit(&self, cx: &Cx) -> Option<ExitReport> {
        let (sim, pid) = (cx.sim(), cx.task());
        let task = self.current(cx)?;
        sim.advance_ns(1000);
        self.exit_signals(cx, &task);
        // atomic_dec_and_test(&tsk->signal->live), after PF_EXITING, with no lock.
        let group_dead = task.signal.live.fetch_sub(1, Ordering::AcqRel) == 1;
        let report = if self.fixes.on(crate::fixes::EXIT_SINGLE_PASS) {
            self.taskstats_exit(cx, &task, group_dead)
        } else {
            let tidstats = self.taskstats_exit_alloc(cx);
            self.taskstats_exit_send(cx, &task, tidstats, group_dead)
        };
        // exit_mm(), after the taskstats hook in every version's do_exit().
        task.mm.exit_mm(cx);
        self.exit_notify(cx, &task);
        let mut closed = Vec::new();
        if group_dead {
            // exit_files(): the group's sockets close, each by netlink_release(): out of the
            // table under netlink_table_grab(), then released with the table lock dropped.
            let mut ports = self.ports.write_lock_irq(cx);
            closed = ports.values().filter(|s| s.port.owner_tgid == task.tgid).map(|s| s.port.id).collect();
            let released: Vec<_> = closed.iter().filter_map(|id| ports.remove(id)).collect();
            drop(ports);
            for socket in released {
                socket.release(cx);
            }
        }
        self.ledger().exits += 1;
        Some(ExitReport { pid, group_dead, cpu: cx.cpu(), closed, ..report })
    }

    /// `tsk->flags |= PF_EXITING` as each era's do_exit() sets it: 2.6.19's do_exit() with no
    /// lock; 3.x's exit_signals() with no lock when thread_group_empty() (the model has no
    /// SIGNAL_GROUP_EXIT, the other lockless case), else inside `sighand->siglock`. The flag is
    /// the task's own word, read with no lock by 3.x's find_new_reaper() ([`Task::exiting`]).
    fn exit_signals(&self, cx: &Cx, task: &Task) {
        let siglock =
            self.fixes.on(crate::fixes::EXIT_SINGLE_PASS) && !task.signal.threads.thread_group_empty();
        // exit_signals(): spin_lock_irq(&tsk->sighand->siglock) (kernel/signal.c, 3.x).
        let _siglock = siglock.then(|| task.signal.lock.lock_irq(cx));
        task.exiting.store(true, Ordering::Release);
    }

    /// Mirrors exit_notify() and, for a non-leader, the release_task() that follows it.
    /// 3.x: forget_original_parent() in a tasklist_lock section of its own, then a second one
    /// that sets `exit_state`; 2.6.19: one section, forget_original_parent() first. A leader's
    /// EXIT_ZOMBIE is written under tasklist_lock alone, as the kernel writes it, while 3.x's
    /// fill_stats_for_tgid() reads it under siglock alone: a racy read the kernel tolerates
    /// ([`crate::task::ThreadList`]). A non-leader is autoreaped: exit_notify() sets EXIT_DEAD
    /// (2.6.19: `exit_signal == -1`; 3.x: `autoreap`) and unlocks, and release_task() takes
    /// tasklist_lock again in a section of its own ([`Self::release_thread`]); in between the
    /// thread is dead, still hashed and still on its group's list, where a 3.x TGID walk skips
    /// it and 2.6.19's counts it. A leader's parent is told when the group is empty
    /// ([`Self::exit_notify_leader`]), else by the group's last thread
    /// ([`Self::notify_delayed_leader`]).
    fn exit_notify(&self, cx: &Cx, task: &Arc<Task>) {
        let era_3x = self.fixes.on(crate::fixes::EXIT_SINGLE_PASS);
        if era_3x {
            let mut t = self.tasks.write_lock_irq(cx);
            self.forget_original_parent(cx, &mut t, task);
        }
        let mut t = self.tasks.write_lock_irq(cx);
        if !era_3x {
            self.forget_original_parent(cx, &mut t, task);
        }
        if task.is_leader() {
            let autoreap = self.exit_notify_leader(cx, &t, task);
            // The last schedule() of do_exit(): the task is no one's `current` any more.
            self.current_changed(&t, task.pid, false);
            if autoreap {
                drop(t);
                self.preemption_point(cx, "do_exit, between exit_notify and release_task");
                self.release_leader_autoreaped(cx, task);
            }
            return;
        }
        // `tsk->exit_state = EXIT_DEAD`: 3.x's walk, which skips any exit state, counts the
        // thread no more from here (the checker's ledger, here); 2.6.19's until its release.
        task.set_exit_state(ExitState::Dead);
        if era_3x {
            self.ledger_left_walk(task);
        }
        drop(t);
        // write_unlock_irq(): irqs and preemption back on before release_task() (3.x's
        // proc_flush_task() even sleeps there): other tasks may run between the two sections.
        self.preemption_point(cx, "do_exit, between exit_notify and release_task");
        self.release_thread(cx, task);
    }

    /// Mirrors release_task() run by an autoreaped thread on itself after exit_notify(): its
    /// own write_lock_irq(&tasklist_lock) section (2.6.19 and 3.x alike), __exit_signal()'s
    /// siglock inside it (off the thread list, sighand detached), then __unhash_process().
    fn release_thread(&self, cx: &Cx, task: &Arc<Task>) {
        let mut t = self.tasks.write_lock_irq(cx);
        let siglock = self.siglock_modelled();
        // __exit_signal(): spin_lock(&sighand->siglock), plain inside write_lock_irq().
        let inner = siglock.then(|| task.signal.lock.lock(cx));
        task.signal.threads.change(cx, siglock, |threads| threads.remove(&task.pid));
        task.sighand_detached.store(true, Ordering::Release);
        self.unhash_process(cx, &mut t, task);
        if !self.fixes.on(crate::fixes::EXIT_SINGLE_PASS) {
            // Off the list: 2.6.19's walk, which skips only a zombie leader, counts it no more.
            self.ledger_left_walk(task);
        }
        drop(inner);
        let zap_leader = self.notify_delayed_leader(cx, &t, task);
        // The last schedule() of do_exit(): the task is no one's `current` any more.
        self.current_changed(&t, task.pid, false);
        drop(t);
        if let Some(leader) = zap_leader {
            // release_task()'s `goto repeat` for the leader: a tasklist_lock section of its own.
            self.release_leader_autoreaped(cx, &leader);
        }
    }

    /// exit_notify()'s leader: both eras notify the parent when the group is empty (2.6.19:
    /// `exit_signal != -1 && thread_group_empty()`; 3.x: `autoreap = thread_group_empty() &&
    /// do_notify_parent()`), and a parent that ignores SIGCHLD has it reaped at once
    /// (EXIT_DEAD; released by the caller after the section). Otherwise `tsk->exit_state =
    /// EXIT_ZOMBIE` under tasklist_lock alone (`table`); the zombie stays hashed. Returns
    /// whether it is autoreaped.
    fn exit_notify_leader(&self, cx: &Cx, table: &TaskTable, task: &Arc<Task>) -> bool {
        let autoreap = task.signal.threads.thread_group_empty() && self.do_notify_parent(cx, table, task);
        if !autoreap {
            task.set_exit_state(ExitState::Zombie);
            // The leader left fill_stats_for_tgid()'s walk: the checker's ledger, here.
            self.ledger_left_walk(task);
            return false;
        }
        // EXIT_DEAD: 3.x's walk skips it from here, 2.6.19's (which skips only a zombie
        // leader) until its release, as for a thread.
        task.set_exit_state(ExitState::Dead);
        if self.fixes.on(crate::fixes::EXIT_SINGLE_PASS) {
            self.ledger_left_walk(task);
        }
        self.mark(cx, "leader-autoreaped-at-exit");
        true
    }

    /// release_task()'s look at the group leader after a thread's __exit_signal() (`p`, its
    /// siglock dropped, still under tasklist_lock, `table`), in both eras: a zombie leader
    /// whose group is now empty was not notified at its own exit, so its parent is notified
    /// now (do_notify_parent()), and a parent that ignores SIGCHLD has it reaped too
    /// (`zap_leader`, released in a section of its own). 3.x writes EXIT_DEAD here; 2.6.19
    /// leaves it EXIT_ZOMBIE, marked `exit_signal = -1` ([`Task::self_reaping`]), so its
    /// fill_tgid() walk still skips it and wait(2) passes over it until the release.
    fn notify_delayed_leader(&self, cx: &Cx, table: &TaskTable, p: &Task) -> Option<Arc<Task>> {
        let leader = table.tasks.get(&p.tgid).filter(|leader| leader.pid != p.pid)?;
        if leader.exit_state() != ExitState::Zombie || !leader.signal.threads.thread_group_empty() {
            return None;
        }
        if !self.do_notify_parent(cx, table, leader) {
            return None;
        }
        if self.fixes.on(crate::fixes::EXIT_SINGLE_PASS) {
            leader.set_exit_state(ExitState::Dead);
        } else {
            leader.set_self_reaping();
        }
        self.mark(cx, "leader-autoreaped-by-last-thread");
        Some(leader.clone())
    }

    /// Mirrors do_notify_parent() as far as reaping goes, under tasklist_lock (`table`): the
    /// parent's `sighand->siglock` taken with spin_lock_irqsave() (both eras; not in
    /// 2.6.19-rc3, whose siglock the model lacks), and under it the parent's SIGCHLD action:
    /// SIG_IGN or SA_NOCLDWAIT means no one will wait for `tsk`, so it is reaped at once
    /// (2.6.19 writes `tsk->exit_signal = -1` for its callers to read back; 3.x returns
    /// true). The signal itself and the parent's wakeup are not modelled.
    fn do_notify_parent(&self, cx: &Cx, table: &TaskTable, tsk: &Task) -> bool {
        let Some(parent) = table.tasks.get(&tsk.real_parent()) else { return false };
        let _psig = self.siglock_modelled().then(|| parent.signal.lock.lock_irqsave(cx));
        parent.signal.sigchld_ignored.load(Ordering::Relaxed)
    }

    /// Mirrors do_sigaction() for SIGCHLD run by `current` (the task of `cx`): `ignore` sets
    /// SIG_IGN (or SA_NOCLDWAIT), else SIG_DFL, for its whole group (the action table is the
    /// group's shared sighand), under spin_lock_irq(&sighand->siglock) where the model has
    /// siglock. The drivers' `SigactionSigchld` operation; false when `cx` names no running
    /// task.
    pub fn sigaction_sigchld(&self, cx: &Cx, ignore: bool) -> bool {
        let Some(task) = self.current(cx) else { return false };
        let _siglock = self.siglock_modelled().then(|| task.signal.lock.lock_irq(cx));
        task.signal.sigchld_ignored.store(ignore, Ordering::Relaxed);
        true
    }

    /// release_task() of a leader no one waits for, run by the task that found it autoreaped
    /// (itself after exit_notify(), or its group's last thread): a tasklist_lock section of
    /// its own, as [`Self::reap`]'s.
    fn release_leader_autoreaped(&self, cx: &Cx, leader: &Arc<Task>) {
        let mut t = self.tasks.write_lock_irq(cx);
        let released = self.release_leader(cx, &mut t, leader);
        self.current_changed(&t, leader.pid, false);
        drop(t);
        if released {
            self.ledger().groups.remove(&leader.tgid);
        }
    }

    /// Mirrors forget_original_parent() in exit_notify(), run by every exiting thread: the
    /// children whose `real_parent` is the dying thread `father` itself (copy_process() makes
    /// the creating thread the parent, so a thread has its own children) go to
    /// [`Self::find_new_reaper`]'s pick, under tasklist_lock (the caller's `table`).
    /// `real_parent` is republished with rcu_assign_pointer() and the old pointer's object freed
    /// after a grace period, so a reader that followed it under RCU stays safe. Every thread of
    /// a child group has the same `real_parent` (a CLONE_THREAD child copies its creator's), so
    /// the one filter finds what 3.x's walk of `father->children` and each child's threads
    /// finds, and 2.6.19's list of every child task.
    pub(super) fn forget_original_parent(&self, cx: &Cx, table: &mut TaskTable, father: &Task) {
        let Some(reaper) = self.find_new_reaper(table, father) else {
            return;
        };
        let children: smallvec::SmallVec<[Arc<Task>; 4]> =
            table.by_pid().filter(|c| c.real_parent() == father.pid).cloned().collect();
        for child in &children {
            let old = child.parent.rcu_access_pointer();
            let object = child.parent.alloc(reaper.clone());
            child.parent.rcu_assign_pointer(cx, Some(object));
            if let Some(old) = old {
                child.parent.kfree_rcu(cx, old);
            }
            child.set_real_parent(reaper.pid);
            let pieces = [
                ("forget_original_parent: pid ", Some(child.pid)),
                (" reparented to pid ", Some(reaper.pid)),
            ];
            cx.note(crate::task::numbered_text(&pieces));
            self.mark(cx, "reparented");
        }
        // No republication of the pid hash: the reparenting writes `real_parent` in the one
        // task_struct and touches no pid chain.
    }

    /// The new parent of a dying thread's children, under tasklist_lock (`table`): the next
    /// thread of `father`'s group after it in the thread list (creation order, which is pid
    /// order: the model never reuses a pid) that is still eligible, else the child reaper of
    /// `father`'s pid namespace (that namespace's init, or init itself). Eligible per version:
    /// 3.x's find_new_reaper() passes over PF_EXITING threads ([`Task::exiting`]); 2.6.19's
    /// forget_original_parent() only over threads with an `exit_state` (a zombie leader), so a
    /// thread inside do_exit() but short of exit_notify() may still adopt. The model has no fix
    /// for kernel/exit.c: `exit-single-pass` (3.x's taskstats_exit()) stands for the 3.x era.
    fn find_new_reaper(&self, table: &TaskTable, father: &Task) -> Option<Arc<Task>> {
        let skips_exiting = self.fixes.on(crate::fixes::EXIT_SINGLE_PASS);
        let eligible = |t: &&Arc<Task>| {
            t.tgid == father.tgid
                && t.exit_state() == ExitState::None
                && !(skips_exiting && t.exiting.load(Ordering::Acquire))
        };
        let (before, after) = table.around(father.pid);
        if let Some(thread) = after.iter().chain(before).find(eligible) {
            return Some(thread.clone());
        }
        table
            .find_by_nr_ns(1, father.pid_ns())
            .filter(|r| r.tgid != father.tgid && r.exit_state() == ExitState::None)
            .or_else(|| table.tasks.get(&1))
            .cloned()
    }

    /// Reaps a zombie leader of a dead group (wait(2) by its parent): release_task(), which frees
    /// the signal's stats (taskstats_tgid_free). 2.6.19's eligible_child() passes over a
    /// self-reaping zombie (`exit_signal == -1`), which its last thread is releasing.
    pub fn reap(&self, cx: &Cx, pid: u32) -> bool {
        let mut t = self.tasks.write_lock_irq(cx);
        let waitable = |t: &&Arc<Task>| t.exit_state() == ExitState::Zombie && !t.self_reaping();
        let Some(task) = t.tasks.get(&pid).filter(waitable).cloned() else {
            return false;
        };
        // wait_task_zombie()'s delay_group_leader(): not while a thread is still on the list,
        // as one between its exit_notify() and its release_task() is (thread_group_empty(), an
        // unlocked read under tasklist_lock, which every list writer holds).
        if !task.signal.threads.thread_group_empty() || !self.release_leader(cx, &mut t, &task) {
            return false;
        }
        drop(t);
        self.ledger().groups.remove(&task.tgid);
        self.mark(cx, "reaped");
        true
    }

    /// release_task() of a dead group's leader, `task`, under tasklist_lock (`t`):
    /// __exit_signal() (off its list, the group's stats freed, sighand detached), then
    /// __unhash_process() and the group's fd table. False, releasing nothing, while the group
    /// still counts a live thread.
    fn release_leader(&self, cx: &Cx, t: &mut TaskTable, task: &Arc<Task>) -> bool {
        let pid = task.pid;
        // release_task()'s __exit_signal(): 3.x's spin_lock(&sighand->siglock), plain inside
        // write_lock_irq(); 2.6.19-rc3's group lock here is taskstats_tgid_free()'s
        // spin_lock_irqsave(&sig->stats_lock).
        let mut inner = match self.siglock_modelled() {
            true => task.signal.lock.lock(cx),
            false => task.signal.lock.lock_irqsave(cx),
        };
        if task.signal.live.load(Ordering::Acquire) != 0 {
            return false;
        }
        task.signal.threads.change(cx, self.siglock_modelled(), |threads| threads.remove(&pid));
        task.signal.stats.replace(None);
        if let Some(handle) = inner.stats_handle.take() {
            let _ = self.taskstats_cache.free(cx, handle);
        }
        // taskstats_tgid_free() in free_signal_struct() reads the pointer once the last
        // reference to the group is gone (ordered by that refcount, which lockset cannot see,
        // so a plain kernel's pointer is left alone here) and frees the record.
        if self.stats_access() != StatsAccess::Plain {
            task.signal.stats_published.store(false, Ordering::Release);
        }
        task.sighand_detached.store(true, Ordering::Release);
        drop(inner);
        self.unhash_process(cx, t, task);
        t.files.remove(&pid);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::task_cx;
    use crate::task::ThreadList;
    use sim_core::lockdep::ReportMode;
    use sim_core::SimConfig;

    /// find_new_reaper()'s eligibility per version: P has threads T1 and T2, T1 forks process
    /// C, and T2 is inside do_exit() (PF_EXITING set, exit_notify() not yet run) when T1 exits.
    /// 3.x passes over T2 and C goes to the leader P; 2.6.19 checks `exit_state` only, so T2,
    /// the next thread after T1, adopts C. A model with one rule for both fails one preset.
    #[test]
    fn a_thread_inside_do_exit_adopts_in_2_6_19_and_not_in_3_x() {
        for (preset, want_t2) in [("linux-2.6.19", true), ("linux-3.4", false), ("linux-3.8", false)] {
            let sim = Sim::new(SimConfig::new(21).cpus(2));
            let model = Taskstats::new(&sim, Fixes::preset(preset).unwrap(), Params::default());
            let fork = |by: u32, kind| model.fork(&task_cx(&sim, &model, by, "fork"), kind).unwrap();
            let p = fork(1, ForkKind::Process);
            let t1 = fork(p, ForkKind::Thread);
            let t2 = fork(p, ForkKind::Thread);
            let c = fork(t1, ForkKind::Process);
            let seen = sim.observer_cx("test", 0);
            assert_eq!(model.task(&seen, c).unwrap().real_parent(), t1, "{preset}: copy_process() names T1");
            model.task(&seen, t2).unwrap().exiting.store(true, Ordering::Release);
            model.exit(&task_cx(&sim, &model, t1, "exit")).unwrap();
            let want = if want_t2 { t2 } else { p };
            let got = model.task(&seen, c).unwrap().real_parent();
            assert_eq!(got, want, "{preset}: C's parent after T1's exit (P {p}, T1 {t1}, T2 {t2} exiting)");
        }
    }

    /// The by-pid vector's slices (`TaskTable::split_after`, `around`) are the task tree's
    /// ranges (`..=pid` and `pid + 1..`; `..pid` and `pid + 1..`), the same tasks in the same
    /// order, for every pid from 0 to past the last, listed or not, after forks and exits that
    /// leave holes (the walks of forget_original_parent(), find_new_reaper() and io_waiter()
    /// read them where they walked the tree).
    #[test]
    fn the_by_pid_slices_are_the_tree_s_ranges() {
        let sim = Sim::new(SimConfig::new(3).cpus(2).lockdep(ReportMode::Collect));
        let params = Params { tasks_max: 64, ..Params::default() };
        let model = Taskstats::new(&sim, Fixes::preset("linux-3.8").unwrap(), params);
        let kinds = [ForkKind::Process, ForkKind::Thread, ForkKind::Thread, ForkKind::Process];
        let mut forked = vec![1];
        for round in 0..16 {
            let parent = forked[round * 5 % forked.len()];
            if let Ok(child) = model.fork(&task_cx(&sim, &model, parent, "fork"), kinds[round % kinds.len()])
            {
                forked.push(child);
            }
        }
        for &pid in forked.iter().skip(2).step_by(3) {
            let _ = model.exit(&task_cx(&sim, &model, pid, "exit"));
        }
        let seen = sim.observer_cx("test", 0);
        let pids = |tasks: &[Arc<Task>]| tasks.iter().map(|t| t.pid).collect::<Vec<_>>();
        model.with_task_table(&seen, |table| {
            let last = table.tasks.keys().next_back().copied().unwrap();
            assert!(table.tasks.len() < last as usize, "no hole left to look at");
            for pid in 0..last + 2 {
                let tree = |range: (std::ops::Bound<u32>, std::ops::Bound<u32>)| {
                    table.tasks.range(range).map(|(&p, _)| p).collect::<Vec<_>>()
                };
                use std::ops::Bound::{Excluded, Included, Unbounded};
                let (upto, after) = table.split_after(pid);
                assert_eq!(pids(upto), tree((Unbounded, Included(pid))), "split_after({pid}): up to");
                assert_eq!(pids(after), tree((Excluded(pid), Unbounded)), "split_after({pid}): after");
                let (below, above) = table.around(pid);
                assert_eq!(pids(below), tree((Unbounded, Excluded(pid))), "around({pid}): below");
                assert_eq!(pids(above), tree((Excluded(pid), Unbounded)), "around({pid}): above");
            }
        });
    }

    /// The comm written in place is "task" and the pid in decimal, NUL-padded, as format! spells it.
    #[test]
    fn comm_is_task_and_the_pid_in_decimal() {
        for pid in [0, 1, 9, 10, 99, 100, 12345, 999_999_999, 1_000_000_000, u32::MAX] {
            let name = format!("task{pid}");
            let mut want = [0u8; TS_COMM_LEN];
            want[..name.len()].copy_from_slice(name.as_bytes());
            assert_eq!(comm_for(pid), want, "pid {pid}");
        }
    }

    /// The pid hash (RCU hlists: `pid_hash`'s chains of upids, each pid's task chain) finds,
    /// for every number of every task in every namespace it is visible in, the task a walk of
    /// the task list finds, and nothing for numbers no task has, over nested pid namespaces
    /// (more numbers than chains, so chains are shared), after forks (alloc_pid(),
    /// attach_pid()) and exits that release threads (detach_pid(), free_pid()), inside
    /// rcu_read_lock() and with nothing reported.
    #[test]
    fn the_pid_hash_finds_what_the_task_list_walk_finds() {
        let sim = Sim::new(SimConfig::new(5).cpus(2).lockdep(ReportMode::Collect));
        let params = Params { tasks_max: 64, ..Params::default() };
        let model = Taskstats::new(&sim, Fixes::preset("linux-3.8").unwrap(), params);
        let kinds = [ForkKind::NewPidNs, ForkKind::Process, ForkKind::Thread, ForkKind::NewPidNs];
        let mut parents = vec![1];
        for round in 0..24 {
            let parent = parents[round * 7 % parents.len()];
            let cx = task_cx(&sim, &model, parent, "fork");
            if let Ok(child) = model.fork(&cx, kinds[round % kinds.len()]) {
                parents.push(child);
            }
        }
        // Exits: a thread is released at once (detach_pid()), a leader lingers as a zombie.
        for &pid in parents.iter().skip(1).step_by(3) {
            model.exit(&task_cx(&sim, &model, pid, "do_exit"));
        }
        sim.rcu_advance();
        let observer = sim.observer_cx("test", 0);
        let reader = sim.cx("reader", 0);
        let table = model.tasks.read_lock(&observer);
        assert!(table.tasks.len() < parents.len(), "no exit released a task: the test needs a detach");
        let namespaces = model.pid_hash.pid_namespaces();
        assert!(namespaces >= 4, "only {namespaces} pid namespaces: the test needs nesting");
        let mut found = 0;
        reader.rcu_read_lock();
        for ns in 0..namespaces {
            for nr in 0..40 {
                let has = |t: &&Arc<Task>| t.numbers.contains(&(ns, nr));
                let walk = table.tasks.values().find(has).map(|t| t.pid);
                let found_by = table.find_by_nr_ns(nr, ns).map(|t| t.pid);
                assert_eq!(found_by, walk, "find_by_nr_ns({nr}, {ns}) against the walk");
                let hashed = model.pid_hash.find_task_by_pid_ns(&reader, nr, ns, None).map(|t| t.pid);
                assert_eq!(hashed, walk, "number {nr} in pid namespace {ns}");
                found += usize::from(walk.is_some());
            }
        }
        reader.rcu_read_unlock();
        let numbers: usize = table.tasks.values().map(|t| t.numbers.len()).sum();
        assert_eq!(found, numbers, "every number of every task is found");
        assert!(numbers > 1 << crate::task::PIDHASH_SHIFT, "{numbers} numbers share no chain");
        assert_eq!(model.pid_hash.live(), (numbers, 2 * table.tasks.len()), "freed pids' memory is gone");
        assert!(sim.violations().is_empty(), "{:?}", sim.violations());
    }

    /// set_task() writes the task in place as the kernel does: no pid chain changes (the pid
    /// hash's memory holds the same objects), and a PID query through it still finds the
    /// task; a fork hashes one more pid (a upid, its task chain's head, the task's node).
    #[test]
    fn set_task_leaves_the_pid_hash_alone() {
        let sim = Sim::new(SimConfig::new(9).cpus(2).lockdep(ReportMode::Collect));
        let model = Taskstats::new(&sim, Fixes::preset("linux-3.8").unwrap(), Params::default());
        let cx = task_cx(&sim, &model, 1, "init");
        let child = model.fork(&cx, ForkKind::Process).unwrap();
        let before = model.pid_hash.live();
        model.set_task(&cx, child, Some(TaskState::Interruptible), Some(1), Some(1));
        assert_eq!(model.pid_hash.live(), before, "set_task changed the pid hash");
        let task = model.task(&cx, child).unwrap();
        assert_eq!(
            (task.state(), task.cgroup(), task.cpu()),
            (TaskState::Interruptible, 1, 1),
            "the task list's version"
        );
        let found = model.query_lookup(&cx, child, 0, false).map(|t| t.pid);
        assert_eq!(found, Some(child), "the RCU lookup after set_task");
        model.query_release(&cx, &task, false);
        model.fork(&cx, ForkKind::Process).unwrap();
        assert_eq!(model.pid_hash.live(), (before.0 + 1, before.1 + 2), "a fork hashes one pid");
    }

    /// A leader's exit to a zombie and its children's reparenting write `exit_state` and
    /// `real_parent` in place in the kernel and touch no pid chain: the pid hash holds the same
    /// objects, and PID queries through it still find the zombie and the reparented child; the
    /// release of the last thread (detach_pid(), and the leader's after it) frees their pids
    /// and nodes once a grace period has passed, not before.
    #[test]
    fn exit_to_a_zombie_and_reparenting_leave_the_pid_hash_alone() {
        let sim = Sim::new(SimConfig::new(9).cpus(2).lockdep(ReportMode::Collect));
        let model = Taskstats::new(&sim, Fixes::preset("linux-3.8").unwrap(), Params::default());
        let init = task_cx(&sim, &model, 1, "init");
        let leader = model.fork(&init, ForkKind::Process).unwrap();
        let child = model.fork(&task_cx(&sim, &model, leader, "fork"), ForkKind::Process).unwrap();
        let thread = model.fork(&task_cx(&sim, &model, leader, "fork"), ForkKind::Thread).unwrap();
        let before = model.pid_hash.live();
        model.exit(&task_cx(&sim, &model, leader, "do_exit")).unwrap();
        assert_eq!(model.task(&init, leader).unwrap().exit_state(), ExitState::Zombie, "the leader lingers");
        assert_eq!(model.task(&init, child).unwrap().real_parent(), thread, "the child went to the thread");
        assert_eq!(model.pid_hash.live(), before, "the zombie or the reparenting changed the pid hash");
        for pid in [leader, child] {
            let found = model.query_lookup(&init, pid, 0, false);
            assert_eq!(found.as_ref().map(|t| t.pid), Some(pid), "the RCU lookup of pid {pid}");
            model.query_release(&init, &found.unwrap(), false);
        }
        model.exit(&task_cx(&sim, &model, thread, "do_exit")).unwrap();
        assert_eq!(model.pid_hash.live(), before, "the released pids wait for a grace period");
        assert_eq!(model.query_lookup(&init, thread, 0, false).map(|t| t.pid), None, "unhashed");
        sim.rcu_advance();
        let after = model.pid_hash.live();
        assert!(after.0 < before.0 && after.1 < before.1, "{before:?} -> {after:?}: nothing freed");
    }

    /// 2.6.19's fill_tgid() preempted between its two sections (the stats copy under
    /// stats_lock, the walk under tasklist_lock): a thread whose exit runs there, its
    /// fill_tgid_exit() after the copy and its release before the walk, is in neither, as the
    /// kernel misses it. The checker expects exactly that (no violation) and marks the window.
    #[test]
    fn a_thread_exiting_between_fill_tgids_copy_and_walk_is_in_neither() {
        let sim = Sim::new(SimConfig::new(13).cpus(2).lockdep(ReportMode::Collect));
        let mut fixes = Fixes::preset("linux-2.6.19").unwrap();
        fixes.set(crate::fixes::EXIT_FILL_BEFORE_SEND, true);
        fixes.set(crate::fixes::TGID_FREE_USAGE, true);
        let model = Taskstats::new(&sim, fixes, Params::default());
        let leader = model.fork(&task_cx(&sim, &model, 1, "fork"), ForkKind::Process).unwrap();
        let threads: Vec<u32> = (0..3)
            .map(|_| model.fork(&task_cx(&sim, &model, leader, "fork"), ForkKind::Thread).unwrap())
            .collect();
        for &pid in std::iter::once(&leader).chain(&threads) {
            assert!(model.run(&task_cx(&sim, &model, pid, "run")));
        }
        let cx = task_cx(&sim, &model, 1, "query");
        let count = |pid| model.fill_stats_for(&cx, pid).unwrap().cpu_count;
        let (lead, early, victim, stays) =
            (count(leader), count(threads[0]), count(threads[1]), count(threads[2]));
        assert!(early > 0 && victim > 0, "the threads ran: {early} {victim}");
        // An exit before the query: the ledger books the group, signal->stats holds it.
        model.exit(&task_cx(&sim, &model, threads[0], "do_exit")).unwrap();
        let pid = threads[1];
        model.preempt_at_next_point(Preemption::new(move |model, cx| {
            model.exit(&task_cx(cx.sim(), model, pid, "do_exit")).unwrap();
        }));
        let first = model.task(&cx, leader).unwrap();
        let stats = model.fill_tgid(&cx, &first).unwrap();
        assert!(model.preemption_not_taken().is_none(), "no preemption point between the sections");
        assert_eq!(stats.cpu_count, early + lead + stays, "the thread that exited in between is in neither");
        let group = model.group_stats(&cx, leader).unwrap().cpu_count;
        assert_eq!(group, early + victim, "both exits' fill_tgid_exit() ran");
        assert!(sim.marks().contains("tgid-query-fill-between-copy-and-walk"), "{:?}", sim.marks());
        assert!(sim.violations().is_empty(), "{:?}", sim.violations());
    }

    /// What a query saw of an exiting thread from between exit_notify() and release_task().
    #[derive(Debug)]
    struct Between {
        exit_state: ExitState,
        hashed: bool,
        listed: usize,
        exiting_holds_tasklist_lock: bool,
        exiting_irqs_disabled: bool,
        tgid_cpu_count: u64,
    }

    /// Arms the op-level checker's preemption to look at thread `pid` (of group `leader`) from
    /// init once its exit_notify() has made it EXIT_DEAD: an earlier point of the exit (the
    /// records' xacct_add_tsk()) arms it again.
    fn look_once_dead(
        model: &Taskstats,
        pid: u32,
        leader: u32,
        seen: Arc<std::sync::Mutex<Option<Between>>>,
    ) {
        model.preempt_at_next_point(Preemption::new(move |model, exiting| {
            let cx = task_cx(exiting.sim(), model, 1, "query");
            let task = model.task(&cx, pid);
            if task.as_ref().is_none_or(|t| t.exit_state() != ExitState::Dead) {
                return look_once_dead(model, pid, leader, seen);
            }
            let table = model.tasks.read_lock(&cx);
            let listed = task.as_ref().unwrap().signal.threads.read_under_tasklist(&cx, ThreadList::len);
            drop(table);
            let first = model.task(&cx, leader).unwrap();
            let stats = if model.fixes.on(crate::fixes::EXIT_SINGLE_PASS) {
                model.fill_stats_for_tgid(&cx, &first)
            } else {
                model.fill_tgid(&cx, &first)
            };
            *seen.lock().unwrap() = Some(Between {
                exit_state: ExitState::Dead,
                hashed: task.is_some(),
                listed,
                exiting_holds_tasklist_lock: exiting.holds("tasklist_lock"),
                exiting_irqs_disabled: exiting.irqs_disabled(),
                tgid_cpu_count: stats.unwrap().cpu_count,
            });
        }));
    }

    /// release_task() takes tasklist_lock in a section of its own after exit_notify()'s
    /// write_unlock_irq() (kernel/exit.c, 2.6.19 and 3.x), so other tasks run in between:
    /// 1. thread T of group P (leader L, thread S stays) runs do_exit(): its fill_tgid_exit()
    ///    adds its delays to `signal->stats`, and exit_notify() sets EXIT_DEAD and unlocks;
    /// 2. preempted there (irqs on, no lock held), T is still hashed (a PID lookup finds it)
    ///    and on P's thread list;
    /// 3. a TGID query walks P: 3.x's fill_stats_for_tgid() skips T (`exit_state` set), so T
    ///    counts once, from `signal->stats`; 2.6.19's fill_tgid() skips only a zombie leader, so
    ///    T counts twice (the copy and the walk), which the checker expects of that kernel;
    /// 4. release_task() unhashes T. A model with one section never reaches the look.
    #[test]
    fn a_query_between_exit_notify_and_release_task_finds_a_dead_thread_still_listed() {
        for preset in ["linux-2.6.19", "linux-3.4", "linux-3.8"] {
            let sim = Sim::new(SimConfig::new(13).cpus(2).lockdep(ReportMode::Collect));
            let mut fixes = Fixes::preset(preset).unwrap();
            fixes.set(crate::fixes::EXIT_FILL_BEFORE_SEND, true);
            fixes.set(crate::fixes::TGID_FREE_USAGE, true);
            fixes.set(crate::fixes::TGID_ALLOC_DATA_RACE, true);
            let model = Taskstats::new(&sim, fixes, Params::default());
            let leader = model.fork(&task_cx(&sim, &model, 1, "fork"), ForkKind::Process).unwrap();
            let fork_thread =
                || model.fork(&task_cx(&sim, &model, leader, "fork"), ForkKind::Thread).unwrap();
            let (victim, stays) = (fork_thread(), fork_thread());
            for pid in [leader, victim, stays] {
                assert!(model.run(&task_cx(&sim, &model, pid, "run")));
            }
            let cx = task_cx(&sim, &model, 1, "query");
            let count = |pid| model.fill_stats_for(&cx, pid).unwrap().cpu_count;
            let (lead, dead, stay) = (count(leader), count(victim), count(stays));
            let seen = Arc::new(std::sync::Mutex::new(None));
            look_once_dead(&model, victim, leader, seen.clone());
            model.exit(&task_cx(&sim, &model, victim, "do_exit")).unwrap();
            assert!(model.preemption_not_taken().is_none(), "{preset}: no point between the sections");
            let between = seen.lock().unwrap().take().expect("the look ran");
            assert_eq!(between.exit_state, ExitState::Dead, "{preset}");
            assert!(between.hashed, "{preset}: the PID lookup finds it before the unhash");
            assert_eq!(between.listed, 3, "{preset}: still on the thread list: {between:?}");
            assert!(
                !between.exiting_holds_tasklist_lock && !between.exiting_irqs_disabled,
                "{preset}: {between:?}"
            );
            let walked_again = if preset == "linux-2.6.19" { dead } else { 0 };
            assert_eq!(between.tgid_cpu_count, lead + dead + stay + walked_again, "{preset}: {between:?}");
            assert!(model.task(&cx, victim).is_none(), "{preset}: release_task() unhashed it");
            assert!(sim.violations().is_empty(), "{preset}: {:?}", sim.violations());
            assert!(sim.lockdep().reports().is_empty(), "{preset}: {:?}", sim.lockdep().reports());
        }
    }

    /// do_notify_parent()'s autoreap leaves a leader between its exit_notify() and its release
    /// (a tasklist_lock section of its own, as a thread's, in both eras): P ignores SIGCHLD,
    /// the thread T of P's child C has exited and been released (its delays in
    /// `signal->stats`), and C exits alone in its group: EXIT_DEAD, its own fill done, still
    /// hashed and listed. A TGID query there: 2.6.19's fill_tgid() walk skips only a zombie
    /// leader, so it counts C again on top of the copy; 3.x's skips C. The checker's ledger
    /// expects each (no `group-stats` report); C is released after. And 2.6.19's wait(2)
    /// passes over a zombie do_notify_parent() marked self-reaping (eligible_child()).
    #[test]
    fn an_autoreaped_leader_before_its_release_is_walked_by_2_6_19s_fill_tgid() {
        for preset in ["linux-2.6.19", "linux-3.4", "linux-3.8"] {
            let sim = Sim::new(SimConfig::new(17).cpus(2).lockdep(ReportMode::Collect));
            let mut fixes = Fixes::preset(preset).unwrap();
            fixes.set(crate::fixes::EXIT_FILL_BEFORE_SEND, true);
            fixes.set(crate::fixes::TGID_FREE_USAGE, true);
            fixes.set(crate::fixes::TGID_ALLOC_DATA_RACE, true);
            let model = Taskstats::new(&sim, fixes, Params::default());
            let fork = |by: u32, kind| model.fork(&task_cx(&sim, &model, by, "fork"), kind).unwrap();
            let p = fork(1, ForkKind::Process);
            assert!(model.sigaction_sigchld(&task_cx(&sim, &model, p, "sigaction"), true));
            let c = fork(p, ForkKind::Process);
            let t = fork(c, ForkKind::Thread);
            for pid in [c, t] {
                assert!(model.run(&task_cx(&sim, &model, pid, "run")));
            }
            let cx = task_cx(&sim, &model, 1, "query");
            let count = |pid| model.fill_stats_for(&cx, pid).unwrap().cpu_count;
            let (lead, thread) = (count(c), count(t));
            model.exit(&task_cx(&sim, &model, t, "do_exit")).unwrap();
            let seen = Arc::new(std::sync::Mutex::new(None));
            look_once_dead(&model, c, c, seen.clone());
            model.exit(&task_cx(&sim, &model, c, "do_exit")).unwrap();
            let between = seen.lock().unwrap().take().expect("the look ran");
            assert!(between.hashed && between.listed == 1, "{preset}: C hashed and listed: {between:?}");
            let walked_again = if preset == "linux-2.6.19" { lead } else { 0 };
            assert_eq!(between.tgid_cpu_count, lead + thread + walked_again, "{preset}: {between:?}");
            assert!(model.task(&cx, c).is_none(), "{preset}: released after the look");
            assert!(sim.violations().is_empty(), "{preset}: {:?}", sim.violations());
            // The ledger's account of the walk: C in `signal->stats` and walked, counted twice.
            let twice = sim.marks().contains("tgid-query-counted-exiting-twice");
            assert_eq!(twice, preset == "linux-2.6.19", "{preset}: {:?}", sim.marks());
            assert!(sim.marks().contains("leader-autoreaped-at-exit"), "{preset}");
            // A zombie marked self-reaping (as 2.6.19's do_notify_parent() marks one) is no
            // wait(2)'s: init's child Z, a zombie for init, is not reaped once marked.
            let z = fork(1, ForkKind::Process);
            model.exit(&task_cx(&sim, &model, z, "do_exit")).unwrap();
            model.task(&cx, z).unwrap().set_self_reaping();
            assert!(!model.reap(&task_cx(&sim, &model, 1, "wait"), z), "{preset}: eligible_child()");
            assert!(sim.lockdep().reports().is_empty(), "{preset}: {:?}", sim.lockdep().reports());
        }
    }

    /// `ac_ppid` as each version's bacct_add_tsk() reads it when the parent was released under
    /// the reader (its pid detached after the reader dereferenced `real_parent`): 3.4 reads the
    /// parent's plain `->tgid` all the same; 3.8's task_tgid_nr_ns() reads the parent's leader's
    /// pid, 0 once that is detached, and for a thread whose own pid is detached but whose leader
    /// lives, still the group's number (no pid_alive() of the task itself).
    #[test]
    fn ac_ppid_reads_what_each_version_reads_of_a_released_parent() {
        for preset in ["linux-3.4", "linux-3.8"] {
            let sim = Sim::new(SimConfig::new(7).cpus(2).lockdep(ReportMode::Collect));
            let model = Taskstats::new(&sim, Fixes::preset(preset).unwrap(), Params::default());
            let parent = model.fork(&task_cx(&sim, &model, 1, "fork"), ForkKind::Process).unwrap();
            let child = model.fork(&task_cx(&sim, &model, parent, "fork"), ForkKind::Process).unwrap();
            let thread = model.fork(&task_cx(&sim, &model, parent, "fork"), ForkKind::Thread).unwrap();
            let cx = task_cx(&sim, &model, 1, "query");
            let (p, c, t) = (
                model.task(&cx, parent).unwrap(),
                model.task(&cx, child).unwrap(),
                model.task(&cx, thread).unwrap(),
            );
            let ns = Some(0).filter(|_| model.fixes.on(crate::fixes::NAMESPACE_CHECKS));
            assert_eq!(model.bacct_ppid(&cx, &c, ns), parent, "{preset}: the live parent");
            t.sighand_detached.store(true, Ordering::Release);
            assert_eq!(t.task_tgid_nr_ns(0), parent, "{preset}: a detached thread of a live leader");
            p.sighand_detached.store(true, Ordering::Release);
            let want = if ns.is_some() { 0 } else { parent };
            assert_eq!(model.bacct_ppid(&cx, &c, ns), want, "{preset}: the parent released under the reader");
            assert_eq!(t.task_tgid_nr_ns(0), 0, "{preset}: the leader's pid detached");
        }
    }

    /// A fully traced linux-3.8 world (with "taskstats: fix data-race", so that lockset finds
    /// nothing in the exits) whose init forked a process and that process a thread: the world,
    /// the model, the leader's pid and the thread's.
    fn traced_group_of_two(seed: u64) -> (Sim, Taskstats, u32, u32) {
        let config = SimConfig::new(seed).cpus(2).lockdep(ReportMode::Collect);
        let sim = Sim::new(config.trace(sim_core::trace::TraceMode::Full));
        let mut fixes = Fixes::preset("linux-3.8").unwrap();
        fixes.set(crate::fixes::TGID_ALLOC_DATA_RACE, true);
        let model = Taskstats::new(&sim, fixes, Params::default());
        let leader = model.fork(&task_cx(&sim, &model, 1, "fork"), ForkKind::Process).unwrap();
        let thread = model.fork(&task_cx(&sim, &model, leader, "fork"), ForkKind::Thread).unwrap();
        (sim, model, leader, thread)
    }

    /// The `task_delay_info` counters live in `tsk->delays` under `delays->lock`, not in the
    /// task's unlocked counters: runs add them there (delayacct_end()), and delayacct_add_tsk()
    /// reads them under the lock for a PID fill and for each live thread of the TGID walk.
    #[test]
    fn the_delay_counters_live_under_delays_lock_and_the_fills_read_them_there() {
        use sim_core::trace::EventKind;
        let (sim, model, leader, thread) = traced_group_of_two(23);
        for _ in 0..20 {
            for pid in [leader, thread] {
                assert!(model.run(&task_cx(&sim, &model, pid, "run")));
            }
        }
        let cx = task_cx(&sim, &model, 1, "query");
        let (l, t) = (model.task(&cx, leader).unwrap(), model.task(&cx, thread).unwrap());
        let delays = |task: &Task| *task.delays.as_ref().expect("delays").lock.lock(&cx);
        let (ld, td) = (delays(&l), delays(&t));
        assert!(ld.blkio_count > 0 && td.swapin_count > 0, "20 runs wait: {ld:?} {td:?}");
        let stored = l.acct.get();
        assert_eq!((stored.blkio_count, stored.swapin_delay_total, stored.freepages_count), (0, 0, 0));
        let pid = model.fill_stats_for(&cx, leader).unwrap();
        assert_eq!((pid.blkio_count, pid.blkio_delay_total), (ld.blkio_count, ld.blkio_delay_total));
        assert_eq!(
            (pid.swapin_count, pid.freepages_delay_total),
            (ld.swapin_count, ld.freepages_delay_total)
        );
        assert_eq!(pid.cpu_count, stored.cpu_count, "the scheduler's figures, from the task");
        let start = sim.trace().events().len();
        let group = model.fill_stats_for_tgid(&cx, &l).unwrap();
        let events = sim.trace().events();
        let delays_lock = |kind: &EventKind| match kind {
            EventKind::Acquired { class, .. } => *class == "&tsk->delays->lock",
            _ => false,
        };
        let taken = events[start..].iter().filter(|e| delays_lock(&e.kind)).count();
        assert_eq!(taken, 2, "the walk takes each live thread's delays->lock once");
        assert_eq!(group.blkio_delay_total, ld.blkio_delay_total + td.blkio_delay_total);
        assert_eq!(group.swapin_count, ld.swapin_count + td.swapin_count);
    }

    /// A task's counters are its own (`task.acct`): its runs advance them taking `delays->lock`
    /// and no siglock, a PID fill reads the task's, and 3.x's TGID walk under siglock adds each
    /// live thread's, as fill_stats_for_tgid() does; the exit records at group death (the PID
    /// record and the memcpy() of `signal->stats`) take no siglock either. The thread list holds
    /// no reference (a `Weak`): once the model and its world are gone, no task is left alive
    /// (no `Arc` cycle task -> signal -> thread list -> task).
    #[test]
    fn a_tasks_counters_are_its_own_and_the_tgid_walk_reads_them() {
        use sim_core::trace::EventKind;
        let (sim, model, leader, thread) = traced_group_of_two(21);
        let acquired_since = |start: usize| -> Vec<String> {
            let events = sim.trace().events();
            let kinds = events[start..].iter().map(|e| &e.kind);
            kinds
                .filter_map(|kind| match kind {
                    EventKind::Acquired { class, .. } => Some(class.to_string()),
                    _ => None,
                })
                .collect()
        };
        let start = sim.trace().events().len();
        for pid in [leader, thread, leader] {
            assert!(model.run(&task_cx(&sim, &model, pid, "run")));
        }
        let cx = task_cx(&sim, &model, 1, "query");
        let (l, t) = (model.task(&cx, leader).unwrap(), model.task(&cx, thread).unwrap());
        let siglock = l.signal.lock.class();
        let classes = acquired_since(start);
        assert!(classes.iter().any(|c| c == "&tsk->delays->lock"), "{classes:?}");
        assert!(!classes.iter().any(|c| c == siglock), "a run took siglock: {classes:?}");
        let (la, ta) = (l.acct.get(), t.acct.get());
        assert!(la.cpu_count > 0 && ta.cpu_count > 0, "both ran: {la:?} {ta:?}");
        assert_eq!(model.fill_stats_for(&cx, thread).unwrap().cpu_count, ta.cpu_count);
        let group = model.fill_stats_for_tgid(&cx, &l).unwrap();
        assert_eq!(group.cpu_count, la.cpu_count + ta.cpu_count, "the walk adds each thread's own");
        assert_eq!(group.nvcsw, la.nvcsw + ta.nvcsw, "version 8: context switches too");
        // The thread's exit allocates and fills signal->stats; the leader's records copy them.
        model.exit(&task_cx(&sim, &model, thread, "do_exit")).unwrap();
        let stats = model.group_stats(&cx, leader).expect("the thread's exit allocated the stats");
        assert_eq!(stats.cpu_count, ta.cpu_count, "fill_tgid_exit() added the thread's own");
        let start = sim.trace().events().len();
        let records = model.exit_records(&task_cx(&sim, &model, leader, "do_exit"), &l, true);
        let classes = acquired_since(start);
        assert!(!classes.iter().any(|c| c == siglock), "the exit records took siglock: {classes:?}");
        let kinds: Vec<(u16, u64)> = records.as_slice().iter().map(|r| (r.0, r.2.cpu_count)).collect();
        assert_eq!(kinds, [(TASKSTATS_TYPE_PID, la.cpu_count), (TASKSTATS_TYPE_TGID, ta.cpu_count)]);
        assert!(sim.violations().is_empty(), "{:?}", sim.violations());
        let tasks = [Arc::downgrade(&l), Arc::downgrade(&t)];
        drop((l, t, cx, model, sim));
        assert!(tasks.iter().all(|t| t.upgrade().is_none()), "a task outlived its model");
    }

    /// 3.x's pid caches are one slab per depth (create_pid_cachep(): "pid" for init_pid_ns,
    /// "pid_2" for a pid with two numbers, "pid_3", ..), so each is its own fault site: a plan
    /// failing "pid_2" fails a fork into a first-level namespace (the CLONE_NEWPID child itself,
    /// or any child of a task inside it) and neither init's forks nor a second-level child's.
    #[test]
    fn each_pid_namespace_depth_allocates_from_its_own_cache() {
        use sim_core::fault::{FaultAttr, FaultPlan};
        for preset in ["linux-3.4", "linux-3.8"] {
            let sim = Sim::new(SimConfig::new(9).cpus(2).lockdep(ReportMode::Collect));
            let model = Taskstats::new(&sim, Fixes::preset(preset).unwrap(), Params::default());
            let fork = |pid, kind| model.fork(&task_cx(&sim, &model, pid, "fork"), kind);
            let failing = |site: &str| sim.set_faults(FaultPlan::with(FaultAttr::always().site(site)));
            let inner = fork(1, ForkKind::NewPidNs).expect("a first-level namespace");
            failing("pid_2");
            assert!(fork(1, ForkKind::Process).is_ok(), "{preset}: init's fork allocates from \"pid\"");
            assert_eq!(fork(1, ForkKind::NewPidNs), Err(Errno::ENOMEM), "{preset}: CLONE_NEWPID from init");
            assert_eq!(fork(inner, ForkKind::Process), Err(Errno::ENOMEM), "{preset}: a fork inside it");
            let deeper = fork(inner, ForkKind::NewPidNs).expect("a second-level child: \"pid_3\"");
            failing("pid_3");
            assert!(fork(inner, ForkKind::Process).is_ok(), "{preset}: \"pid_2\" again");
            assert_eq!(fork(deeper, ForkKind::Thread), Err(Errno::ENOMEM), "{preset}: three numbers");
            failing("pid_1");
            for (pid, kind) in
                [(1, ForkKind::Process), (inner, ForkKind::Process), (deeper, ForkKind::Process)]
            {
                assert!(fork(pid, kind).is_ok(), "{preset}: no cache is \"pid_1\"");
            }
            assert!(sim.violations().is_empty(), "{preset}: {:?}", sim.violations());
        }
    }

    /// alloc_pid() can fail where the kernel's can, with each era's errno and at each era's
    /// place: 2.6.19's do_fork() gives -EAGAIN before copy_process() runs, 3.x's copy_process()
    /// -ENOMEM; either way no number is taken (the next fork gets the next pid), nothing is
    /// hashed, no `delays` are made in 2.6.19, and nr_threads stays. A 2.6.19 fork that meets
    /// the thread limit took a number first (do_fork()'s alloc_pid() ran) and freed it; a 3.x one
    /// did not. No fork takes pidmap_lock inside tasklist_lock any more: lockdep is quiet.
    #[test]
    fn alloc_pid_fails_with_each_eras_errno_and_takes_no_number() {
        use sim_core::fault::{FaultAttr, FaultPlan};
        for (preset, errno, limit_takes_a_number) in [
            ("linux-2.6.19", Errno::EAGAIN, true),
            ("linux-3.4", Errno::ENOMEM, false),
            ("linux-3.8", Errno::ENOMEM, false),
        ] {
            let sim = Sim::new(SimConfig::new(7).cpus(2).lockdep(ReportMode::Collect));
            let params = Params { tasks_max: 3, ..Params::default() };
            let model = Taskstats::new(&sim, Fixes::preset(preset).unwrap(), params);
            let fork = |kind| model.fork(&task_cx(&sim, &model, 1, "fork"), kind);
            assert_eq!(fork(ForkKind::Process), Ok(2), "{preset}");
            let hashed = model.pid_hash.live();
            sim.set_faults(FaultPlan::with(FaultAttr::always().site("pid")));
            for kind in [ForkKind::Process, ForkKind::Thread] {
                assert_eq!(fork(kind), Err(errno), "{preset} {kind:?}: alloc_pid() failed");
            }
            assert_eq!(model.pid_hash.live(), hashed, "{preset}: a failed alloc_pid() hashed something");
            assert_eq!(model.pid_hash.nr_threads(), 2, "{preset}: nr_threads moved");
            sim.set_faults(FaultPlan::none());
            assert_eq!(fork(ForkKind::Process), Ok(3), "{preset}: the failed forks took no number");
            // The thread limit (3 tasks): 2.6.19 numbered the child before it looked.
            assert_eq!(fork(ForkKind::Process), Err(Errno::EAGAIN), "{preset}: the limit");
            sim.rcu_advance();
            assert_eq!(
                model.pid_hash.live(),
                (hashed.0 + 1, hashed.1 + 2),
                "{preset}: the limit's pid was freed"
            );
            let reaped = model.exit(&task_cx(&sim, &model, 3, "do_exit")).is_some()
                && model.reap(&task_cx(&sim, &model, 1, "wait"), 3);
            assert!(reaped, "{preset}: pid 3 exits and is reaped");
            let next = if limit_takes_a_number { 5 } else { 4 };
            assert_eq!(fork(ForkKind::Process), Ok(next), "{preset}: the pid after the limit");
            assert!(sim.lockdep().reports().is_empty(), "{preset}: {:?}", sim.lockdep().reports());
            assert!(sim.violations().is_empty(), "{preset}: {:?}", sim.violations());
        }
    }

    /// A traced world of `preset` (with "taskstats: fix data-race"): the world and the model.
    fn traced(preset: &str, seed: u64) -> (Sim, Taskstats) {
        let config = SimConfig::new(seed).cpus(2).lockdep(ReportMode::Collect);
        let sim = Sim::new(config.trace(sim_core::trace::TraceMode::Full));
        let mut fixes = Fixes::preset(preset).unwrap();
        fixes.set(crate::fixes::TGID_ALLOC_DATA_RACE, true);
        (sim.clone(), Taskstats::new(&sim, fixes, Params::default()))
    }

    /// The modes of the acquisitions of lock class `class` in the trace from event `start` on.
    fn modes_since(sim: &Sim, class: &str, start: usize) -> Vec<sim_core::lockdep::LockMode> {
        use sim_core::trace::EventKind;
        let events = sim.trace().events();
        let kinds = events[start..].iter().map(|e| &e.kind);
        kinds
            .filter_map(|kind| match kind {
                EventKind::Acquired { class: taken, mode, .. } if *taken == class => Some(*mode),
                _ => None,
            })
            .collect()
    }

    /// Each siglock acquisition in the form its kernel site has, 3.4 and 3.8: copy_process()'s
    /// and __exit_signal()'s are plain spin_lock() inside write_lock_irq(&tasklist_lock)
    /// (lockdep's `Spin`); exit_signals()' and taskstats_tgid_alloc()'s spin_lock_irq(), and
    /// taskstats_exit()'s, do_notify_parent()'s and the TGID fill's spin_lock_irqsave() are
    /// `SpinIrq`. A model taking the first two with irqsave shows `SpinIrq` there.
    #[test]
    fn the_siglock_inside_tasklist_lock_is_a_plain_spin_lock() {
        use sim_core::lockdep::LockMode::{Spin, SpinIrq};
        for preset in ["linux-3.4", "linux-3.8"] {
            let (sim, model) = traced(preset, 31);
            let leader = model.fork(&task_cx(&sim, &model, 1, "fork"), ForkKind::Process).unwrap();
            let siglock = model.task(&sim.observer_cx("test", 0), leader).unwrap().signal.lock.class();
            let start = sim.trace().events().len();
            let thread = model.fork(&task_cx(&sim, &model, leader, "fork"), ForkKind::Thread).unwrap();
            assert_eq!(modes_since(&sim, siglock, start), [Spin], "{preset}: copy_process()'s siglock");
            let start = sim.trace().events().len();
            model.exit(&task_cx(&sim, &model, thread, "do_exit")).unwrap();
            let exit = modes_since(&sim, siglock, start);
            assert_eq!(exit.last(), Some(&Spin), "{preset}: __exit_signal() last: {exit:?}");
            let irq = exit.iter().filter(|&&m| m == SpinIrq).count();
            assert_eq!((exit.len(), irq), (irq + 1, irq), "{preset}: the others irq-saving: {exit:?}");
            assert!(irq >= 2, "{preset}: exit_signals() and taskstats_exit(): {exit:?}");
            let start = sim.trace().events().len();
            model.exit(&task_cx(&sim, &model, leader, "do_exit")).unwrap();
            let exit = modes_since(&sim, siglock, start);
            assert!(exit.iter().all(|&m| m == SpinIrq), "{preset}: a leader's exit: {exit:?}");
            let start = sim.trace().events().len();
            assert!(model.reap(&task_cx(&sim, &model, 1, "wait"), leader), "{preset}");
            assert_eq!(modes_since(&sim, siglock, start), [Spin], "{preset}: release_task()'s siglock");
            assert!(sim.lockdep().reports().is_empty(), "{preset}: {:?}", sim.lockdep().reports());
            assert!(sim.violations().is_empty(), "{preset}: {:?}", sim.violations());
        }
    }

    /// do_notify_parent()'s autoreap, in every era (2.6.19 through `exit_signal = -1`, 3.x
    /// through exit_notify()'s `autoreap`). P ignores SIGCHLD; then:
    /// 1. P's child C, alone in its group, exits: exit_notify() notifies P and C is reaped at
    ///    once, with no wait(2);
    /// 2. P's child D exits before its thread DT: D stays a zombie (its group is not empty, no
    ///    notification); DT's release_task() finds the zombie leader of an empty group,
    ///    notifies P and releases D too;
    /// 3. P's child Q inherited the action (copy_sighand()), so Q's child X is reaped at exit;
    /// 4. init's child Z (init does not ignore SIGCHLD) and, once P restores SIG_DFL, P's
    ///    child E stay zombies for wait(2).
    ///
    /// A model with no notification keeps C, D and X zombies.
    #[test]
    fn a_leader_no_one_waits_for_is_reaped_at_exit() {
        for preset in ["linux-2.6.19", "linux-3.4", "linux-3.8"] {
            let (sim, model) = traced(preset, 37);
            let fork = |by: u32, kind| model.fork(&task_cx(&sim, &model, by, "fork"), kind).unwrap();
            let exit = |pid: u32| model.exit(&task_cx(&sim, &model, pid, "do_exit")).unwrap();
            let p = fork(1, ForkKind::Process);
            assert!(model.sigaction_sigchld(&task_cx(&sim, &model, p, "sigaction"), true));
            let (c, d, q, z) = (
                fork(p, ForkKind::Process),
                fork(p, ForkKind::Process),
                fork(p, ForkKind::Process),
                fork(1, ForkKind::Process),
            );
            let (dt, x) = (fork(d, ForkKind::Thread), fork(q, ForkKind::Process));
            let seen = sim.observer_cx("test", 0);
            for pid in [c, d, x, z] {
                exit(pid);
            }
            assert_eq!(model.zombie_pids(&seen), [d, z], "{preset}: C and X reaped at exit (P {p} Q {q})");
            exit(dt);
            assert_eq!(model.zombie_pids(&seen), [z], "{preset}: DT's release_task() released D");
            for pid in [c, d, dt, x] {
                assert!(model.task(&seen, pid).is_none(), "{preset}: {pid} still hashed");
            }
            assert!(model.sigaction_sigchld(&task_cx(&sim, &model, p, "sigaction"), false));
            let e = fork(p, ForkKind::Process);
            exit(e);
            assert_eq!(model.zombie_pids(&seen), [z, e], "{preset}: SIG_DFL again");
            assert!(model.reap(&task_cx(&sim, &model, p, "wait"), e), "{preset}");
            assert!(sim.lockdep().reports().is_empty(), "{preset}: {:?}", sim.lockdep().reports());
            assert!(sim.violations().is_empty(), "{preset}: {:?}", sim.violations());
        }
    }
}
