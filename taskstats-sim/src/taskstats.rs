//! kernel/taskstats.c: the TASKSTATS generic-netlink family (taskstats_user_cmd,
//! cgroupstats_user_cmd, prepare_reply, mk_reply, fill_stats, fill_stats_for_pid/_tgid,
//! fill_tgid_exit, taskstats_tgid_alloc, taskstats_exit and 2.6.19's taskstats_exit_alloc/_send,
//! send_cpu_listeners), with the slice of net/netlink (af_netlink ports with bounded receive
//! queues, netlink_rcv_skb, netlink_ack) and net/netlink/genetlink.c (genl_rcv_msg) it needs.
//! Left out: dump requests (the family has no dumpit), multicast, the controller family.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use serde::{Deserialize, Serialize};
use sim_core::fault::FaultSite;
use sim_core::mm::{Gfp, KmemCache};
use sim_core::sync::atomic::{AtomicU32, Ordering};
use sim_core::sync::Arc;
use sim_core::{Cx, Errno, Sim, SpinLock, Violation, ViolationKind};

use crate::fixes::Fixes;
use crate::listener::CpuSet;
use crate::listener::{add_del_listener, deliver_to_listeners, prune_invalid, Action, ListenerList};
use crate::task::{Acct, ExitState, File, PidNs, Signal, Task, TaskDelays, TaskState, TaskTable, UserNs};
use crate::wire::*;
use sim_core::percpu::{cpulist_parse_bytes, cpulist_parse_with, CpulistSyntax};

/// `NR_CPUS` of the modelled build: the bound cpulist_parse checks against.
pub const NR_CPUS: u32 = 64;
/// `TASKSTATS_CPUMASK_MAXLEN` (100 + 6 * NR_CPUS).
pub const TASKSTATS_CPUMASK_MAXLEN: usize = 100 + 6 * NR_CPUS as usize;

/// Sizes and the architecture, as constructor parameters.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Params {
    /// Possible CPUs.
    pub cpus: u32,
    /// `TASKSTATS_NEEDS_PADDING`: 64-bit without efficient unaligned access (ia64, say).
    pub needs_padding: bool,
    /// Messages a port's receive queue holds before sends to it fail (`sk_rcvbuf`).
    pub queue_max: usize,
    /// Most tasks at once (fork fails with EAGAIN beyond, as RLIMIT_NPROC would).
    pub tasks_max: usize,
    /// Fixes (by name) whose invariants are checked even though they are off: the zoo and the
    /// CLI name the fixes they switch off here; a preset's own property test checks its contract.
    pub audit: Vec<String>,
}

impl Default for Params {
    fn default() -> Self {
        Params { cpus: 2, needs_padding: false, queue_max: 8, tasks_max: 24, audit: Vec::new() }
    }
}

/// A netlink socket's receiving end.
#[derive(Debug, Clone)]
pub(crate) struct Port {
    /// The port id (`nl_pid` / `portid`).
    pub id: u32,
    /// The owning process (tgid).
    pub owner_tgid: u32,
    /// Owner credentials at open: kuid, user namespace, pid namespace, capable(CAP_NET_ADMIN).
    pub uid: u32,
    /// Owner's user namespace.
    pub user_ns: usize,
    /// Owner's pid namespace.
    pub pid_ns: usize,
    /// `capable(CAP_NET_ADMIN)` (in init_user_ns).
    pub capable: bool,
    /// Open or closed (sends get ECONNREFUSED once closed).
    pub open: bool,
    /// The receive queue.
    pub queue: VecDeque<Vec<u8>>,
    /// Sends that failed because the queue was full (`sk_drops`).
    pub overruns: u64,
    /// `sk_err`: ENOBUFS after an overrun (netlink_overrun()), until a recvmsg(2) reports it.
    pub sk_err: Option<Errno>,
}

impl Port {
    /// A new open socket of `task`'s process at port `id`, with the owner's credentials as
    /// they are now (the kernel records them at open and checks them at each request).
    fn of_task(id: u32, task: &Task) -> Port {
        Port {
            id,
            owner_tgid: task.tgid,
            uid: task.uid,
            user_ns: task.user_ns,
            pid_ns: task.pid_ns(),
            capable: task.cap_net_admin && task.user_ns == 0,
            open: true,
            queue: VecDeque::new(),
            overruns: 0,
            sk_err: None,
        }
    }
}

/// What the checker's ledger knows about one thread group.
#[derive(Debug, Default, Clone)]
struct GroupLedger {
    /// Sum of the delay counters of exited threads that the version must have aggregated.
    truth: TaskstatsRecord,
}

/// Checker state: what the delivered records must add up to. It sits behind a std mutex, not a
/// model lock, so lockdep's graph, the trace and loom/shuttle never see it.
#[derive(Debug, Default)]
struct Ledger {
    groups: BTreeMap<u32, GroupLedger>,
    /// Per (port, CPU), the last exit-event sequence number the port received.
    last_seq: BTreeMap<(u32, u32), u32>,
    exits: u64,
}

/// The model: the family, its listeners, the tasks and the ports.
#[derive(Debug)]
pub struct Taskstats {
    fixes: Fixes,
    params: Params,
    tasks: SpinLock<TaskTable>,
    listener_array: Vec<ListenerList>,
    taskstats_seqnum: Vec<AtomicU32>,
    ports: SpinLock<BTreeMap<u32, Port>>,
    listener_cache: KmemCache<()>,
    taskstats_cache: KmemCache<()>,
    /// Checker state (std-synchronised, untraced); see [`Ledger`].
    ledger: std::sync::Mutex<Ledger>,
    next_port: AtomicU32,
}

/// How a fork creates the child.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ForkKind {
    /// CLONE_THREAD: a thread in the parent's group.
    Thread,
    /// A new process with the parent's credentials.
    Process,
    /// A new process that drops to an unprivileged uid (1000 + n) and CAP_NET_ADMIN.
    Unprivileged(u8),
    /// CLONE_NEWPID.
    NewPidNs,
    /// CLONE_NEWUSER: root inside, unprivileged outside.
    NewUserNs,
}

/// Where a record went, for the outcome.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExitReport {
    /// The exiting task (global pid).
    pub pid: u32,
    /// Whether it was the group's last live thread.
    pub group_dead: bool,
    /// The CPU its record was for.
    pub cpu: u32,
    /// Ports that got the record, in list order.
    pub delivered: Vec<u32>,
    /// Listeners pruned afterwards.
    pub pruned: usize,
    /// Ports closed because the group died (its files were closed).
    pub closed: Vec<u32>,
}

fn comm_for(pid: u32) -> [u8; TS_COMM_LEN] {
    let mut comm = [0u8; TS_COMM_LEN];
    let name = format!("task{pid}");
    comm[..name.len()].copy_from_slice(name.as_bytes());
    comm
}

impl Taskstats {
    /// taskstats_init_early() + taskstats_init(): caches, per-CPU lists, the family; and a
    /// world with init (pid 1, root, CAP_NET_ADMIN) in cgroup "/", a second cgroup "/work".
    pub fn new(sim: &Sim, fixes: Fixes, params: Params) -> Taskstats {
        let cpus = params.cpus.clamp(1, NR_CPUS);
        let params = Params { cpus, ..params };
        let class = if fixes.on(crate::fixes::SIGLOCK_GROUP_STATS) {
            "&sighand->siglock"
        } else {
            "&sig->stats_lock"
        };
        let mut table = TaskTable {
            pid_ns: vec![PidNs { parent: None, next_nr: 1 }],
            user_ns: vec![UserNs { parent: None, base: 0 }],
            cgroups: vec!["/", "/work"],
            ..TaskTable::default()
        };
        let numbers = table.alloc_numbers(0);
        let init = Task {
            pid: 1,
            tgid: 1,
            numbers,
            user_ns: 0,
            uid: 0,
            gid: 0,
            cap_net_admin: true,
            real_parent: 0,
            cpu: 0,
            comm: comm_for(1),
            start_ns: sim.now_ns(),
            cgroup: 0,
            state: TaskState::Running,
            exit_code: 0,
            exit_state: ExitState::None,
            signal: Signal::new(class),
            delays: Some(TaskDelays::new()),
        };
        {
            let cx = sim.cx("taskstats_init", 0);
            let mut inner = init.signal.lock.lock_irqsave(&cx);
            inner.threads.insert(1, (Acct::default(), ExitState::None));
            inner.live = 1;
        }
        table.files.insert(1, vec![Some(File::Regular), Some(File::CgroupDir(0)), Some(File::CgroupDir(1))]);
        table.tasks.insert(1, init);
        Taskstats {
            fixes,
            listener_array: (0..cpus).map(|_| ListenerList::new()).collect(),
            taskstats_seqnum: (0..cpus).map(|_| AtomicU32::new(0)).collect(),
            params,
            tasks: SpinLock::new("tasklist_lock", table),
            ports: SpinLock::new("nl_table_lock", BTreeMap::new()),
            listener_cache: KmemCache::new("listener", 24),
            taskstats_cache: KmemCache::new("taskstats_cache", TASKSTATS_V8_SIZE as u64),
            ledger: std::sync::Mutex::new(Ledger::default()),
            next_port: AtomicU32::new(0xffff_f000),
        }
    }

    /// The switches this model runs with.
    pub fn fixes(&self) -> Fixes {
        self.fixes
    }

    /// The parameters.
    pub fn params(&self) -> &Params {
        &self.params
    }

    /// A coverage mark: checker state in the Sim, no model lock.
    fn mark(&self, cx: &Cx, mark: &'static str) {
        cx.sim().mark(mark);
    }

    /// The checker's ledger. A poisoned lock means a checker panicked already; its state is
    /// still the best there is.
    fn ledger(&self) -> std::sync::MutexGuard<'_, Ledger> {
        self.ledger.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn checks(&self, fix: &str) -> bool {
        self.fixes.names_on().contains(&fix) || self.params.audit.iter().any(|name| name == fix)
    }

    fn version(&self) -> u16 {
        if self.fixes.on(crate::fixes::TASKSTATS_V8) {
            8
        } else {
            1
        }
    }

    fn padding(&self) -> bool {
        // The TASKSTATS_TYPE_NULL padding came with the version-8 era kernels.
        self.params.needs_padding && self.fixes.on(crate::fixes::TASKSTATS_V8)
    }

    // --- tasks ---------------------------------------------------------------------------------

    /// Live tasks' global pids, ascending.
    pub fn live_pids(&self, cx: &Cx) -> Vec<u32> {
        let t = self.tasks.lock(cx);
        t.tasks.values().filter(|t| t.exit_state == ExitState::None).map(|t| t.pid).collect()
    }

    /// Zombies' global pids, ascending.
    pub fn zombie_pids(&self, cx: &Cx) -> Vec<u32> {
        let t = self.tasks.lock(cx);
        t.tasks.values().filter(|t| t.exit_state == ExitState::Zombie).map(|t| t.pid).collect()
    }

    /// A copy of a task.
    pub fn task(&self, cx: &Cx, pid: u32) -> Option<Task> {
        self.tasks.lock(cx).tasks.get(&pid).cloned()
    }

    /// The numbers of task `pid` per namespace level, and its tgid's numbers.
    pub fn task_nr_in(&self, cx: &Cx, pid: u32, ns: usize) -> u32 {
        self.tasks.lock(cx).pid_nr_ns(pid, ns)
    }

    /// copy_process() as far as taskstats cares, run by `current` (the task of `cx`): a new
    /// task (and, without CLONE_THREAD, a new group and fd table). In 2.6.19 a CLONE_THREAD fork
    /// also allocates the group's stats (taskstats_tgid_alloc at fork). Returns the child's
    /// global pid; ESRCH when the caller's task does not exist.
    pub fn fork(&self, cx: &Cx, kind: ForkKind) -> Result<u32, Errno> {
        let parent = cx.task();
        let sim = cx.sim();
        let class = if self.fixes.on(crate::fixes::SIGLOCK_GROUP_STATS) {
            "&sighand->siglock"
        } else {
            "&sig->stats_lock"
        };
        let mut kind = kind;
        if !self.fixes.on(crate::fixes::PID_NAMESPACES)
            && matches!(kind, ForkKind::NewPidNs | ForkKind::NewUserNs)
        {
            kind = ForkKind::Process;
        }
        let (pid, signal, thread) = {
            let mut t = self.tasks.lock(cx);
            if t.tasks.len() >= self.params.tasks_max {
                return Err(Errno::EAGAIN);
            }
            let p = t
                .tasks
                .get(&parent)
                .filter(|p| p.exit_state == ExitState::None)
                .cloned()
                .ok_or(Errno::ESRCH)?;
            let (pid_ns, user_ns, uid, cap) = child_namespaces(&mut t, &p, kind);
            let numbers = t.alloc_numbers(pid_ns);
            let pid = numbers[0].1;
            let thread = kind == ForkKind::Thread;
            let signal = if thread { p.signal.clone() } else { Signal::new(class) };
            let task = Task {
                pid,
                tgid: if thread { p.tgid } else { pid },
                numbers,
                user_ns,
                uid,
                gid: uid,
                cap_net_admin: cap,
                real_parent: if thread { p.real_parent } else { p.tgid },
                cpu: p.cpu,
                comm: comm_for(pid),
                start_ns: sim.now_ns(),
                cgroup: p.cgroup,
                state: TaskState::Running,
                exit_code: 0,
                exit_state: ExitState::None,
                signal: signal.clone(),
                delays: Some(TaskDelays::new()),
            };
            if !thread {
                let files = t.files.get(&p.tgid).cloned().unwrap_or_default();
                t.files.insert(pid, files);
            }
            t.tasks.insert(pid, task);
            (pid, signal, thread)
        };
        {
            let mut inner = signal.lock.lock_irqsave(cx);
            inner.threads.insert(pid, (Acct::default(), ExitState::None));
            inner.live += 1;
        }
        if thread && !self.fixes.on(crate::fixes::TGID_ALLOC_AT_EXIT) {
            self.tgid_alloc_at_fork(cx, &signal);
        }
        if thread && cx.sim().should_fail(cx, &FaultSite::call("taskstats:copy_process"), 0) {
            self.copy_process_failed(cx, pid, &signal);
            return Err(Errno::ENOMEM);
        }
        cx.note(format!("fork {kind:?}: pid {pid}"));
        Ok(pid)
    }

    /// copy_process()'s error path after copy_signal() for a CLONE_THREAD child (a later step,
    /// say copy_mm(), failed): the child is unhashed and the group's live and count drop again.
    /// Before "taskstats_tgid_free: fix usage" the path also ran taskstats_tgid_free() on the
    /// shared signal_struct, freeing the stats the rest of the group is accumulating.
    fn copy_process_failed(&self, cx: &Cx, pid: u32, signal: &Arc<Signal>) {
        cx.note(format!("copy_process: a step after copy_signal failed; pid {pid} is undone"));
        self.tasks.lock(cx).tasks.remove(&pid);
        let mut inner = signal.lock.lock_irqsave(cx);
        inner.threads.remove(&pid);
        inner.live -= 1;
        if self.fixes.on(crate::fixes::TGID_FREE_USAGE) {
            return;
        }
        let stats = inner.stats.take();
        let handle = inner.stats_handle.take();
        signal.stats_published.store(false, Ordering::Release);
        drop(inner);
        if let Some(handle) = handle {
            cx.note("copy_process: taskstats_tgid_free() frees the group's signal->stats");
            let _ = self.taskstats_cache.free(cx, handle);
        }
        if stats.is_some() {
            self.mark(cx, "tgid-freed-by-failed-fork");
        }
    }

    /// Whether the group-stats property (every exited thread counted once in its group's
    /// stats) is checked: a change that makes it hold is on or audited (the 2.6.19-rc3
    /// contract, with both off, does not promise it).
    fn checks_group_stats(&self) -> bool {
        self.checks("exit-fill-before-send") || self.checks("tgid-free-usage")
    }

    /// 2.6.19's taskstats_tgid_alloc(): allocate outside the lock, install under stats_lock if
    /// still empty, free the spare. A failed allocation is silently tolerated.
    fn tgid_alloc_at_fork(&self, cx: &Cx, signal: &Arc<Signal>) {
        let Ok(handle) = self.taskstats_cache.alloc(cx, Gfp::GFP_KERNEL, ()) else {
            return;
        };
        let mut inner = signal.lock.lock_irqsave(cx);
        if inner.stats.is_none() {
            inner.stats = Some(TaskstatsRecord::default());
            inner.stats_handle = Some(handle);
            signal.stats_published.store(true, Ordering::Release);
        } else {
            drop(inner);
            let _ = self.taskstats_cache.free(cx, handle);
        }
    }

    /// Simulated activity: the task runs a while; its counters advance by amounts from the Sim's
    /// RNG and the virtual clock moves.
    pub fn run(&self, cx: &Cx) -> bool {
        let (sim, pid) = (cx.sim(), cx.task());
        let Some(task) = self.task(cx, pid).filter(|t| t.exit_state == ExitState::None) else {
            return false;
        };
        sim.advance_ns(1 + sim.below(1_000_000));
        // delayacct_end() for the I/O it waited on: the delay is added under delays->lock.
        if let Some(delays) = &task.delays {
            drop(self.delays_lock(cx, delays));
        }
        let mut inner = task.signal.lock.lock_irqsave(cx);
        if let Some((acct, _)) = inner.threads.get_mut(&pid) {
            acct.advance(|bound| sim.below(bound.max(1)));
        }
        true
    }

    /// Sets a task's scheduler state, cgroup or CPU.
    pub fn set_task(
        &self,
        cx: &Cx,
        pid: u32,
        state: Option<TaskState>,
        cgroup: Option<usize>,
        cpu: Option<u32>,
    ) {
        let mut t = self.tasks.lock(cx);
        let ncg = t.cgroups.len();
        if let Some(task) = t.tasks.get_mut(&pid) {
            if let Some(state) = state {
                task.state = state;
            }
            if let Some(cg) = cgroup {
                task.cgroup = cg % ncg;
            }
            if let Some(cpu) = cpu {
                task.cpu = cpu % self.params.cpus;
            }
        }
    }

    /// open(2) by `current` (the task of `cx`) in its process: a cgroup directory or a regular
    /// file. Returns the fd.
    pub fn open_file(&self, cx: &Cx, cgroup: Option<usize>) -> Option<u32> {
        let pid = cx.task();
        let mut t = self.tasks.lock(cx);
        let tgid = t.tasks.get(&pid)?.tgid;
        let ncg = t.cgroups.len();
        let files = t.files.entry(tgid).or_default();
        if files.len() >= 16 {
            return None;
        }
        files.push(Some(cgroup.map_or(File::Regular, |c| File::CgroupDir(c % ncg))));
        Some(files.len() as u32 - 1)
    }

    // --- ports ---------------------------------------------------------------------------------

    /// socket(AF_NETLINK, ..., NETLINK_GENERIC) + autobind: the process's first socket gets its
    /// tgid as port id, later ones ids counting down from 0xfffff000 (as the kernel's negative ids).
    /// Run by `current`, the task of `cx`.
    pub fn open_port(&self, cx: &Cx) -> Option<u32> {
        let task = self.task(cx, cx.task()).filter(|t| t.exit_state == ExitState::None)?;
        let mut ports = self.ports.lock(cx);
        let id = if ports.contains_key(&task.tgid) {
            self.next_port.fetch_sub(1, Ordering::Relaxed)
        } else {
            task.tgid
        };
        ports.insert(id, Port::of_task(id, &task));
        drop(ports);
        self.ledger().last_seq.retain(|&(port, _), _| port != id);
        Some(id)
    }

    /// bind(2) with an explicit `nl_pid`: a socket of task `pid`'s process at port `id` (the CLI
    /// binds the port a client names). EBUSY where the kernel says EADDRINUSE (the id is taken),
    /// ESRCH if the task (`current`, the task of `cx`) is not alive.
    pub fn bind_port(&self, cx: &Cx, id: u32) -> Result<(), Errno> {
        let task =
            self.task(cx, cx.task()).filter(|t| t.exit_state == ExitState::None).ok_or(Errno::ESRCH)?;
        let mut ports = self.ports.lock(cx);
        if ports.contains_key(&id) {
            return Err(Errno::EBUSY);
        }
        ports.insert(id, Port::of_task(id, &task));
        drop(ports);
        self.ledger().last_seq.retain(|&(port, _), _| port != id);
        Ok(())
    }

    /// close(2) on a port: later sends to it get ECONNREFUSED; its listeners stay until a send
    /// finds them, as in the kernel.
    pub fn close_port(&self, cx: &Cx, id: u32) {
        let mut ports = self.ports.lock(cx);
        if let Some(port) = ports.get_mut(&id) {
            port.open = false;
            port.queue.clear();
        }
        ports.remove(&id);
    }

    /// Open port ids, ascending.
    pub fn port_ids(&self, cx: &Cx) -> Vec<u32> {
        self.ports.lock(cx).keys().copied().collect()
    }

    /// The messages queued for `port`, drained without looking at `sk_err` (drivers that count
    /// deliveries themselves; a reader that must hear of drops uses [`Self::recvmsg`]).
    pub fn recv(&self, cx: &Cx, id: u32) -> Vec<Vec<u8>> {
        let mut ports = self.ports.lock(cx);
        ports.get_mut(&id).map(|p| p.queue.drain(..).collect()).unwrap_or_default()
    }

    /// recvmsg(2) until empty, as a client reads its socket: skb_recv_datagram() first returns
    /// a pending `sk_err` (ENOBUFS after an overrun) and clears it; the next call gets the
    /// queued messages. EBADF for a socket that is closed.
    pub fn recvmsg(&self, cx: &Cx, id: u32) -> Result<Vec<Vec<u8>>, Errno> {
        let mut ports = self.ports.lock(cx);
        let port = ports.get_mut(&id).ok_or(Errno::EBADF)?;
        if let Some(err) = port.sk_err.take() {
            return Err(err);
        }
        Ok(port.queue.drain(..).collect())
    }

    /// netlink_unicast() with MSG_DONTWAIT: ECONNREFUSED to a closed port, EAGAIN when its queue
    /// is full, which netlink_overrun() also reports to the reader as ENOBUFS (`sk_err`).
    fn unicast(&self, cx: &Cx, id: u32, bytes: Vec<u8>) -> Result<(), Errno> {
        let mut ports = self.ports.lock(cx);
        let Some(port) = ports.get_mut(&id).filter(|p| p.open) else {
            return Err(Errno::ECONNREFUSED);
        };
        if port.queue.len() >= self.params.queue_max {
            port.overruns += 1;
            port.sk_err = Some(Errno::ENOBUFS);
            drop(ports);
            self.mark(cx, "port-overrun");
            return Err(Errno::EAGAIN);
        }
        port.queue.push_back(bytes);
        Ok(())
    }

    /// The owning process and queue length of port `id`.
    pub fn port_owner(&self, cx: &Cx, id: u32) -> Option<(u32, usize)> {
        self.port(cx, id).map(|p| (p.owner_tgid, p.queue.len()))
    }

    /// The task that sends on port `id` for the checker and the CLI: the lowest live thread of
    /// the owning process, with its CPU (None: no such port, or its process has no live thread).
    pub fn port_sender(&self, cx: &Cx, id: u32) -> Option<(u32, u32)> {
        let p = self.port(cx, id).filter(|p| p.open)?;
        let t = self.tasks.lock(cx);
        t.tasks
            .values()
            .find(|t| t.tgid == p.owner_tgid && t.exit_state == ExitState::None)
            .map(|t| (t.pid, t.cpu))
    }

    /// What fd `fd` of process `tgid` is: None if not open, Some(true) for a cgroup directory.
    pub fn fd_kind(&self, cx: &Cx, tgid: u32, fd: u32) -> Option<bool> {
        let t = self.tasks.lock(cx);
        t.files.get(&tgid)?.get(fd as usize).copied().flatten().map(|f| matches!(f, File::CgroupDir(_)))
    }

    fn port(&self, cx: &Cx, id: u32) -> Option<Port> {
        self.ports.lock(cx).get(&id).cloned()
    }

    // --- the netlink entry point ---------------------------------------------------------------

    /// The byte-level entry point: `bytes` as written by `sendmsg(2)` on port `port` (one or more
    /// netlink messages), processed as netlink_rcv_skb() + genl_rcv_msg() would. Returns every
    /// message delivered to that port during the call (replies, then the ack or error), in order,
    /// without leaving them in its queue. Exit events queued earlier stay queued (see [`Self::recv`]).
    /// A port that is not open, or that is not a socket of the sender's process (`current`, the
    /// task of `cx`; see [`Self::port_sender`]), gets nothing back.
    pub fn netlink_request(&self, cx: &Cx, port: u32, bytes: &[u8]) -> Vec<Vec<u8>> {
        let Some(p) = self.port(cx, port).filter(|p| p.open) else {
            return Vec::new();
        };
        let current = self.task(cx, cx.task()).filter(|t| t.exit_state == ExitState::None);
        let Some(current) = current.filter(|t| t.tgid == p.owner_tgid) else {
            return Vec::new();
        };
        let queued_before = self.port(cx, port).map_or(0, |p| p.queue.len());
        let mut at = 0usize;
        // netlink_rcv_skb(): one message after another while a header fits.
        while bytes.len() - at >= NLMSG_HDRLEN {
            let Some(hdr) = NlMsgHdr::parse(&bytes[at..]) else { break };
            let len = hdr.len as usize;
            if len < NLMSG_HDRLEN || bytes.len() - at < len {
                break;
            }
            let msg = &bytes[at..at + len];
            let err = if hdr.flags & NLM_F_REQUEST == 0 || hdr.kind < NLMSG_MIN_TYPE {
                None
            } else {
                self.genl_rcv_msg(cx, &current, port, msg, &hdr).err()
            };
            if hdr.flags & NLM_F_ACK != 0 || err.is_some() {
                let ack = netlink_ack(msg, &hdr, port, err);
                let _ = self.unicast(cx, port, ack);
            }
            at += align4(len).min(bytes.len() - at);
        }
        let mut ports = self.ports.lock(cx);
        match ports.get_mut(&port) {
            Some(p) if p.queue.len() > queued_before => p.queue.drain(queued_before..).collect(),
            _ => Vec::new(),
        }
    }

    /// Mirrors genl_rcv_msg() for the TASKSTATS family: family lookup (ENOENT), header length
    /// (EINVAL), command lookup (EOPNOTSUPP), GENL_ADMIN_PERM (EPERM), dump (EOPNOTSUPP),
    /// nlmsg_parse against the op's policy, then the doit.
    fn genl_rcv_msg(
        &self,
        cx: &Cx,
        current: &Task,
        port: u32,
        msg: &[u8],
        hdr: &NlMsgHdr,
    ) -> Result<(), Errno> {
        if hdr.kind == GENL_ID_CTRL {
            return self.ctrl_getfamily(cx, port, msg, hdr);
        }
        if hdr.kind != TASKSTATS_FAMILY_ID {
            return Err(Errno::ENOENT);
        }
        if msg.len() < NLMSG_HDRLEN + GENL_HDRLEN {
            return Err(Errno::EINVAL);
        }
        let cmd = msg[NLMSG_HDRLEN];
        let is_cgroup = cmd == CGROUPSTATS_CMD_GET && self.fixes.on(crate::fixes::CGROUPSTATS);
        if cmd != TASKSTATS_CMD_GET && !is_cgroup {
            return Err(Errno::EOPNOTSUPP);
        }
        let capable = current.cap_net_admin && current.user_ns == 0;
        if cmd == TASKSTATS_CMD_GET && self.fixes.on(crate::fixes::ADMIN_PERM) && !capable {
            cx.note("genl_rcv_msg: GENL_ADMIN_PERM and no CAP_NET_ADMIN");
            self.mark(cx, "eperm");
            return Err(Errno::EPERM);
        }
        if hdr.flags & NLM_F_DUMP == NLM_F_DUMP {
            return Err(Errno::EOPNOTSUPP);
        }
        let policy = move |kind: u16| -> Option<NlaType> {
            if is_cgroup {
                (kind == CGROUPSTATS_CMD_ATTR_FD).then_some(NlaType::U32)
            } else {
                match kind {
                    TASKSTATS_CMD_ATTR_PID | TASKSTATS_CMD_ATTR_TGID => Some(NlaType::U32),
                    TASKSTATS_CMD_ATTR_REGISTER_CPUMASK | TASKSTATS_CMD_ATTR_DEREGISTER_CPUMASK => {
                        Some(NlaType::String)
                    }
                    _ => None,
                }
            }
        };
        let attrs = nla_parse(msg, NLMSG_HDRLEN + GENL_HDRLEN, msg.len(), TASKSTATS_CMD_ATTR_MAX, &policy)?;
        if is_cgroup && !self.fixes.on(crate::fixes::CGROUPSTATS_POLICY_LEN) {
            self.policy_out_of_bounds(cx, &attrs);
        }
        let info = Info { port, seq: hdr.seq, msg, attrs };
        if is_cgroup {
            self.cgroupstats_user_cmd(cx, current, &info)
        } else {
            self.taskstats_user_cmd(cx, current, &info)
        }
    }

    /// Before "taskstats: fix the length of cgroupstats_cmd_get_policy": the family's maxattr
    /// is TASKSTATS_CMD_ATTR_MAX (4) but the cgroupstats policy has CGROUPSTATS_CMD_ATTR_MAX + 1
    /// (2) entries, so validate_nla() looks up `policy[type]` past the array for every attribute
    /// of type 2..4. The model treats what it read as no policy (the bytes past the array are
    /// other static data) and the checker reports the read, as KASAN would.
    fn policy_out_of_bounds(&self, cx: &Cx, attrs: &[Option<Attr>]) {
        let Some(kind) = (2..=TASKSTATS_CMD_ATTR_MAX).find(|&t| attrs[usize::from(t)].is_some()) else {
            return;
        };
        cx.note(format!("nla_parse: cgroupstats_cmd_get_policy[{kind}] is past the array's 2 entries"));
        self.mark(cx, "cgroupstats-policy-oob");
        if self.checks("cgroupstats-policy-len") {
            cx.sim().report(
                Some(cx),
                Violation::new(
                    ViolationKind::finding("global-out-of-bounds"),
                    format!(
                        "CGROUPSTATS_CMD_GET with attribute type {kind}: validate_nla() reads \
                         cgroupstats_cmd_get_policy[{kind}], past its 2 entries (the family's maxattr is 4)"
                    ),
                ),
            );
        }
    }

    /// Mirrors the `nlctrl` family's ctrl_getfamily() for the one family the model registers,
    /// so a client resolves "TASKSTATS" as it would on a kernel (getdelays does this first):
    /// EOPNOTSUPP for another command; `ctrl_policy` types `CTRL_ATTR_FAMILY_ID` as NLA_U16 and
    /// the name as a NUL-terminated string; the id lookup runs first and the name lookup after
    /// it replaces its result, so the name wins when both are given; neither is EINVAL, a miss
    /// ENOENT. The reply carries id, name, version, header size, maxattr and the ops.
    fn ctrl_getfamily(&self, cx: &Cx, port: u32, msg: &[u8], hdr: &NlMsgHdr) -> Result<(), Errno> {
        if msg.len() < NLMSG_HDRLEN + GENL_HDRLEN {
            return Err(Errno::EINVAL);
        }
        if msg[NLMSG_HDRLEN] != CTRL_CMD_GETFAMILY || hdr.flags & NLM_F_DUMP == NLM_F_DUMP {
            return Err(Errno::EOPNOTSUPP);
        }
        let policy = |kind: u16| match kind {
            CTRL_ATTR_FAMILY_ID => Some(NlaType::U16),
            CTRL_ATTR_FAMILY_NAME => Some(NlaType::NulString(GENL_NAMSIZ - 1)),
            _ => None,
        };
        let attrs = nla_parse(msg, NLMSG_HDRLEN + GENL_HDRLEN, msg.len(), CTRL_ATTR_OPS, &policy)?;
        // genl_family_find_byid(), then genl_family_find_byname() overriding it.
        let mut found = None;
        if let Some(a) = attrs[usize::from(CTRL_ATTR_FAMILY_ID)] {
            found = Some(a.get_u16(msg) == TASKSTATS_FAMILY_ID);
        }
        if let Some(a) = attrs[usize::from(CTRL_ATTR_FAMILY_NAME)] {
            let data = a.data(msg);
            let end = data.iter().position(|&c| c == 0).unwrap_or(data.len());
            found = Some(data[..end] == *TASKSTATS_GENL_NAME.as_bytes());
        }
        match found {
            None => return Err(Errno::EINVAL),
            Some(false) => return Err(Errno::ENOENT),
            Some(true) => {}
        }
        if cx.sim().should_fail(cx, &FaultSite::slab("skbuff_head_cache"), 256) {
            return Err(Errno::ENOMEM);
        }
        let mut reply =
            MsgBuilder::genlmsg_put(GENL_ID_CTRL, 0, hdr.seq, port, CTRL_CMD_NEWFAMILY, GENL_CTRL_VERSION);
        reply.nla_put_u16(CTRL_ATTR_FAMILY_ID, TASKSTATS_FAMILY_ID);
        let mut name = TASKSTATS_GENL_NAME.as_bytes().to_vec();
        name.push(0);
        reply.nla_put(CTRL_ATTR_FAMILY_NAME, &name);
        reply.nla_put_u32(CTRL_ATTR_VERSION, u32::from(TASKSTATS_GENL_VERSION));
        reply.nla_put_u32(CTRL_ATTR_HDRSIZE, 0);
        reply.nla_put_u32(CTRL_ATTR_MAXATTR, u32::from(TASKSTATS_CMD_ATTR_MAX));
        reply.nest_start(CTRL_ATTR_OPS);
        let admin = if self.fixes.on(crate::fixes::ADMIN_PERM) { GENL_ADMIN_PERM } else { 0 };
        let mut ops = vec![(TASKSTATS_CMD_GET, admin | GENL_CMD_CAP_DO | GENL_CMD_CAP_HASPOL)];
        if self.fixes.on(crate::fixes::CGROUPSTATS) {
            ops.push((CGROUPSTATS_CMD_GET, GENL_CMD_CAP_DO | GENL_CMD_CAP_HASPOL));
        }
        for (index, (cmd, flags)) in ops.into_iter().enumerate() {
            reply.nest_start(index as u16 + 1);
            reply.nla_put_u32(CTRL_ATTR_OP_ID, u32::from(cmd));
            reply.nla_put_u32(CTRL_ATTR_OP_FLAGS, flags);
            reply.nest_end();
        }
        reply.nest_end();
        self.unicast(cx, port, reply.finish())
    }

    // --- commands ------------------------------------------------------------------------------

    /// Mirrors prepare_reply(): genlmsg_new (may fail: ENOMEM), then the headers; a reply to a
    /// request echoes its port and seq, an exit event takes this CPU's next sequence number.
    fn prepare_reply(
        &self,
        cx: &Cx,
        info: Option<&Info<'_>>,
        cmd: u8,
        size: usize,
    ) -> Result<MsgBuilder, Errno> {
        if cx.sim().should_fail(cx, &FaultSite::slab("skbuff_head_cache"), size as u64) {
            cx.note("prepare_reply: genlmsg_new failed");
            return Err(Errno::ENOMEM);
        }
        Ok(match info {
            None => {
                let seq = self.taskstats_seqnum[cx.cpu() as usize].fetch_add(1, Ordering::Relaxed);
                MsgBuilder::genlmsg_put(TASKSTATS_FAMILY_ID, 0, seq, 0, cmd, TASKSTATS_GENL_VERSION)
            }
            Some(info) => MsgBuilder::genlmsg_put(
                TASKSTATS_FAMILY_ID,
                0,
                info.seq,
                info.port,
                cmd,
                TASKSTATS_GENL_VERSION,
            ),
        })
    }

    /// Mirrors mk_reply(): optional TASKSTATS_TYPE_NULL padding, the aggregate nest, the id and
    /// the stats.
    fn mk_reply(&self, msg: &mut MsgBuilder, kind: u16, id: u32, stats: &TaskstatsRecord) {
        let aggr =
            if kind == TASKSTATS_TYPE_PID { TASKSTATS_TYPE_AGGR_PID } else { TASKSTATS_TYPE_AGGR_TGID };
        if self.padding() {
            msg.nla_put(TASKSTATS_TYPE_NULL, &[]);
        }
        msg.nest_start(aggr);
        msg.nla_put_u32(kind, id);
        msg.nla_put(TASKSTATS_TYPE_STATS, &stats.to_bytes(self.version()));
        msg.nest_end();
    }

    fn packet_size(&self) -> usize {
        let stats =
            if self.fixes.on(crate::fixes::TASKSTATS_V8) { TASKSTATS_V8_SIZE } else { TASKSTATS_V1_SIZE };
        let mut size = nla_total_size(4) + nla_total_size(stats) + nla_total_size(0);
        if self.padding() {
            size += nla_total_size(0);
        }
        size
    }

    /// Mirrors fill_stats() (3.x) and fill_pid() (2.6.19): delay accounting, and from version 8
    /// the basic and extended accounting, with ids as seen from `(user_ns, pid_ns)` where the
    /// version translates them.
    fn fill_stats(
        &self,
        cx: &Cx,
        table: &TaskTable,
        task: &Task,
        acct: &Acct,
        user_ns: usize,
        pid_ns: usize,
    ) -> TaskstatsRecord {
        let mut stats = TaskstatsRecord::default();
        let v8 = self.fixes.on(crate::fixes::TASKSTATS_V8);
        acct.delayacct_add(&mut stats, v8);
        stats.version = self.version();
        if !v8 {
            return stats;
        }
        stats.nvcsw = acct.nvcsw;
        stats.nivcsw = acct.nivcsw;
        // bacct_add_tsk()
        stats.ac_etime = cx.sim().now_ns().saturating_sub(task.start_ns) / 1000;
        stats.ac_btime = (task.start_ns / 1_000_000_000) as u32;
        stats.ac_exitcode = task.exit_code;
        stats.ac_flag = 0;
        stats.ac_nice = 0;
        stats.ac_sched = 0;
        if self.fixes.on(crate::fixes::NAMESPACE_CHECKS) {
            stats.ac_pid = table.pid_nr_ns(task.pid, pid_ns);
            stats.ac_ppid = table.tasks.get(&task.real_parent).map_or(0, |p| table.pid_nr_ns(p.tgid, pid_ns));
            stats.ac_uid = table.from_kuid_munged(user_ns, task.uid);
            stats.ac_gid = table.from_kuid_munged(user_ns, task.gid);
        } else {
            stats.ac_pid = task.pid;
            stats.ac_ppid = table.tasks.get(&task.real_parent).map_or(0, |p| p.tgid);
            stats.ac_uid = task.uid;
            stats.ac_gid = task.gid;
        }
        stats.ac_comm = task.comm;
        stats.ac_utime = acct.utime_ns / 1000;
        stats.ac_stime = acct.stime_ns / 1000;
        stats.ac_utimescaled = stats.ac_utime;
        stats.ac_stimescaled = stats.ac_stime;
        stats.ac_minflt = acct.minflt;
        stats.ac_majflt = acct.majflt;
        // xacct_add_tsk()
        stats.coremem = acct.rss_pages * 4 * (acct.utime_ns + acct.stime_ns) / 1000 / 1024;
        stats.virtmem = acct.vm_pages * 4 * (acct.utime_ns + acct.stime_ns) / 1000 / 1024;
        stats.hiwater_rss = acct.rss_pages * 4;
        stats.hiwater_vm = acct.vm_pages * 4;
        stats.read_char = acct.read_char;
        stats.write_char = acct.write_char;
        stats.read_syscalls = acct.read_syscalls;
        stats.write_syscalls = acct.write_syscalls;
        stats.read_bytes = acct.read_bytes;
        stats.write_bytes = acct.write_bytes;
        stats.cancelled_write_bytes = acct.cancelled_write_bytes;
        stats
    }

    /// A copy of `signal->stats` of the group task `pid` belongs to (None: not allocated).
    pub fn group_stats(&self, cx: &Cx, pid: u32) -> Option<TaskstatsRecord> {
        let task = self.task(cx, pid)?;
        let stats = task.signal.lock.lock_irqsave(cx).stats.clone();
        stats
    }

    /// Objects live in the `listener` and `taskstats_cache` caches.
    pub fn live_objects(&self) -> (u64, u64) {
        (self.listener_cache.live(), self.taskstats_cache.live())
    }

    /// The record fill_stats() computes for task `pid` as seen from the initial namespaces
    /// (what an exit event or an init-namespace PID query carries), for decoders to compare with.
    pub fn fill_stats_for(&self, cx: &Cx, pid: u32) -> Option<TaskstatsRecord> {
        let table = self.tasks.lock(cx);
        let task = table.tasks.get(&pid)?.clone();
        let acct = task.signal.lock.lock_irqsave(cx).threads.get(&pid).map(|(a, _)| *a).unwrap_or_default();
        Some(self.fill_stats(cx, &table, &task, &acct, 0, 0))
    }

    /// What a record about `task` may say to the owner of `port`; reports a violation where a
    /// delivered record breaks the admin or namespace property the version should guarantee.
    #[allow(clippy::too_many_arguments)]
    fn audit_record(
        &self,
        cx: &Cx,
        port: &Port,
        task: &Task,
        kind: u16,
        id_attr: u32,
        stats: &TaskstatsRecord,
        table: &TaskTable,
    ) {
        if self.checks("admin-perm") && !port.capable && port.uid != task.uid {
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
        if self.checks("namespace-checks") && self.fixes.on(crate::fixes::PID_NAMESPACES) {
            let visible = table.pid_nr_ns(task.pid, port.pid_ns);
            let ok_attr = id_attr == visible || id_attr == table.pid_nr_ns(task.tgid, port.pid_ns);
            let per_task = kind == TASKSTATS_TYPE_PID && self.fixes.on(crate::fixes::TASKSTATS_V8);
            let ok_pid = !per_task || stats.ac_pid == visible;
            let ok_uid = !per_task || stats.ac_uid == table.from_kuid_munged(port.user_ns, task.uid);
            if !(ok_attr && ok_pid && ok_uid) {
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
                            table.from_kuid_munged(port.user_ns, task.uid)
                        ),
                    ),
                );
            }
        }
    }

    /// Mirrors taskstats_user_cmd(): the first of REGISTER, DEREGISTER, PID, TGID present.
    fn taskstats_user_cmd(&self, cx: &Cx, current: &Task, info: &Info<'_>) -> Result<(), Errno> {
        if let Some(attr) = info.attrs[usize::from(TASKSTATS_CMD_ATTR_REGISTER_CPUMASK)] {
            return self.cmd_attr_cpumask(cx, current, info, attr, Action::Register);
        }
        if let Some(attr) = info.attrs[usize::from(TASKSTATS_CMD_ATTR_DEREGISTER_CPUMASK)] {
            return self.cmd_attr_cpumask(cx, current, info, attr, Action::Deregister);
        }
        if !self.fixes.on(crate::fixes::REPLY_AFTER_DISPATCH) {
            // 2.6.19 allocates the reply before looking at PID/TGID: ENOMEM wins over EINVAL.
            let reply = self.prepare_reply(cx, Some(info), TASKSTATS_CMD_NEW, self.packet_size())?;
            drop(reply);
        }
        if let Some(attr) = info.attrs[usize::from(TASKSTATS_CMD_ATTR_PID)] {
            return self.cmd_attr_id(cx, current, info, attr.get_u32(info.msg), false);
        }
        if let Some(attr) = info.attrs[usize::from(TASKSTATS_CMD_ATTR_TGID)] {
            return self.cmd_attr_id(cx, current, info, attr.get_u32(info.msg), true);
        }
        Err(Errno::EINVAL)
    }

    /// Mirrors cmd_attr_register_cpumask()/cmd_attr_deregister_cpumask() with parse() and
    /// add_del_listener()'s checks.
    fn cmd_attr_cpumask(
        &self,
        cx: &Cx,
        current: &Task,
        info: &Info<'_>,
        attr: Attr,
        action: Action,
    ) -> Result<(), Errno> {
        if self.fixes.on(crate::fixes::CPUMASK_VAR)
            && cx.sim().should_fail(cx, &FaultSite::slab("cpumask_var"), 8)
        {
            // alloc_cpumask_var() (CONFIG_CPUMASK_OFFSTACK), 3.x only.
            return Err(Errno::ENOMEM);
        }
        // parse()
        let len = attr.len;
        if len > TASKSTATS_CPUMASK_MAXLEN {
            self.mark(cx, "e2big");
            return Err(Errno::E2BIG);
        }
        if len < 1 {
            return Err(Errno::EINVAL);
        }
        if cx.sim().should_fail(cx, &FaultSite::slab("kmalloc-cpulist"), len as u64) {
            return Err(Errno::ENOMEM);
        }
        let mask = parse_cpulist(self.fixes, attr.data(info.msg))?;
        // add_del_listener()
        if !mask.iter().all(|&cpu| cpu < self.params.cpus) {
            return Err(Errno::EINVAL);
        }
        if self.fixes.on(crate::fixes::NAMESPACE_CHECKS) && (current.user_ns != 0 || current.pid_ns() != 0) {
            cx.note("add_del_listener: not in the initial user and pid namespaces");
            self.mark(cx, "listener-ns-refused");
            return Err(Errno::EINVAL);
        }
        let report = add_del_listener(
            cx,
            &self.listener_array,
            &self.listener_cache,
            info.port,
            &mask,
            action,
            self.fixes.on(crate::fixes::DUPLICATE_LISTENER_CHECK),
        )?;
        if report.failed_part_way {
            self.mark(cx, "register-failed-part-way");
        }
        if !report.existed.is_empty() {
            self.mark(cx, "duplicate-skipped");
        }
        if action == Action::Deregister && !report.removed.is_empty() {
            self.mark(cx, "deregistered");
        }
        if action == Action::Register && !report.added.is_empty() {
            self.mark(cx, "registered");
        }
        if action == Action::Deregister && self.checks("duplicate-listener-check") {
            self.audit_deregister(cx, info.port, &mask);
        }
        Ok(())
    }

    /// Mirrors cmd_attr_pid()/cmd_attr_tgid() with fill_stats_for_pid()/_tgid() (2.6.19:
    /// fill_pid()/fill_tgid()).
    fn cmd_attr_id(
        &self,
        cx: &Cx,
        current: &Task,
        info: &Info<'_>,
        nr: u32,
        tgid_query: bool,
    ) -> Result<(), Errno> {
        let mut msg = self.prepare_reply(cx, Some(info), TASKSTATS_CMD_NEW, self.packet_size())?;
        let table = self.tasks.lock(cx);
        // find_task_by_vpid() (2.6.19: find_task_by_pid(), one global pid space).
        let ns = if self.fixes.on(crate::fixes::PID_NAMESPACES) { current.pid_ns() } else { 0 };
        let Some(task) = table.find_by_nr_ns(nr, ns).cloned() else {
            return Err(Errno::ESRCH);
        };
        let (user_ns, pid_ns) = (current.user_ns, current.pid_ns());
        let stats = if !tgid_query {
            let inner = task.signal.lock.lock_irqsave(cx);
            let acct = inner.threads.get(&task.pid).map(|(a, _)| *a).unwrap_or_default();
            drop(inner);
            self.fill_stats(cx, &table, &task, &acct, user_ns, pid_ns)
        } else {
            self.fill_stats_for_tgid(cx, &task)
        };
        let port = self.port(cx, info.port);
        if let Some(port) = &port {
            let kind = if tgid_query { TASKSTATS_TYPE_TGID } else { TASKSTATS_TYPE_PID };
            self.audit_record(cx, port, &task, kind, nr, &stats, &table);
        }
        drop(table);
        let kind = if tgid_query { TASKSTATS_TYPE_TGID } else { TASKSTATS_TYPE_PID };
        self.mk_reply(&mut msg, kind, nr, &stats);
        self.mark(cx, if tgid_query { "tgid-query" } else { "pid-query" });
        // send_reply() -> genlmsg_reply(): the unicast's error is the doit's.
        self.unicast(cx, info.port, msg.finish())
    }

    /// Mirrors fill_stats_for_tgid() (3.x: under lock_task_sighand, skipping any exited thread)
    /// and fill_tgid() (2.6.19: signal->stats under stats_lock, then the threads, skipping only a
    /// zombie leader). Checks the result against the checker's ledger.
    fn fill_stats_for_tgid(&self, cx: &Cx, first: &Task) -> TaskstatsRecord {
        let v8 = self.fixes.on(crate::fixes::TASKSTATS_V8);
        let inner = first.signal.lock.lock_irqsave(cx);
        let mut stats = inner.stats.clone().unwrap_or_default();
        let mut live_sum = TaskstatsRecord::default();
        for (_, (acct, exit_state)) in inner.threads.iter() {
            if *exit_state != ExitState::None {
                continue;
            }
            acct.delayacct_add(&mut stats, v8);
            acct.delayacct_add(&mut live_sum, v8);
            if v8 {
                stats.nvcsw += acct.nvcsw;
                stats.nivcsw += acct.nivcsw;
            }
        }
        drop(inner);
        stats.version = self.version();
        if inner_group_has_ledger(self, first.tgid) && self.checks_group_stats() {
            let ledger = self.ledger();
            if let Some(group) = ledger.groups.get(&first.tgid) {
                let mut expect = group.truth.clone();
                add_delays(&mut expect, &live_sum);
                if !same_delays(&expect, &stats) {
                    let text = format!(
                        "TGID {} query: cpu_count {} cpu_delay_total {} blkio_delay_total {}, but exited threads plus \
                         live threads sum to {} / {} / {}",
                        first.tgid,
                        stats.cpu_count,
                        stats.cpu_delay_total,
                        stats.blkio_delay_total,
                        expect.cpu_count,
                        expect.cpu_delay_total,
                        expect.blkio_delay_total
                    );
                    drop(ledger);
                    cx.sim().report(Some(cx), Violation::new(ViolationKind::finding("group-stats"), text));
                }
            }
        }
        stats
    }

    /// Mirrors cgroupstats_user_cmd(): EINVAL without the fd attribute, nothing (0) for a bad fd,
    /// EINVAL (from cgroupstats_build) for a file that is not a cgroup directory.
    fn cgroupstats_user_cmd(&self, cx: &Cx, current: &Task, info: &Info<'_>) -> Result<(), Errno> {
        let Some(attr) = info.attrs[usize::from(CGROUPSTATS_CMD_ATTR_FD)] else {
            return Err(Errno::EINVAL);
        };
        let fd = attr.get_u32(info.msg);
        let file = {
            let table = self.tasks.lock(cx);
            table.files.get(&current.tgid).and_then(|f| f.get(fd as usize).copied().flatten())
        };
        let Some(file) = file else {
            self.mark(cx, "cgroupstats-bad-fd");
            return Ok(());
        };
        let mut msg =
            self.prepare_reply(cx, Some(info), CGROUPSTATS_CMD_NEW, nla_total_size(CGROUPSTATS_SIZE))?;
        let File::CgroupDir(cgroup) = file else {
            return Err(Errno::EINVAL);
        };
        let stats = self.tasks.lock(cx).cgroupstats_build(cgroup);
        msg.nla_put(CGROUPSTATS_TYPE_CGROUP_STATS, &stats.to_bytes());
        self.mark(cx, "cgroupstats");
        self.unicast(cx, info.port, msg.finish())
    }

    // --- exit ----------------------------------------------------------------------------------

    /// do_exit() as taskstats sees it, on the task's CPU: the exit hook (taskstats_exit, or
    /// 2.6.19's taskstats_exit_alloc + taskstats_exit_send), then exit_notify: a non-leader is
    /// released at once, a leader stays a zombie until its group is dead and it is reaped; a dead
    /// group's ports close. Run by the exiting task, `current` (the task of `cx`), on the CPU
    /// of `cx`; None when it is not a live task.
    pub fn exit(&self, cx: &Cx) -> Option<ExitReport> {
        let (sim, pid) = (cx.sim(), cx.task());
        let task = self.task(cx, pid).filter(|t| t.exit_state == ExitState::None)?;
        sim.advance_ns(1000);
        let group_dead = {
            let mut inner = task.signal.lock.lock_irqsave(cx);
            inner.live -= 1;
            inner.live == 0
        };
        let report = if self.fixes.on(crate::fixes::EXIT_SINGLE_PASS) {
            self.taskstats_exit(cx, &task, group_dead)
        } else {
            let tidstats = self.taskstats_exit_alloc(cx);
            self.taskstats_exit_send(cx, &task, tidstats, group_dead)
        };
        // exit_notify(): release a non-leader at once; a leader lingers as a zombie.
        {
            let mut t = self.tasks.lock(cx);
            let mut inner = task.signal.lock.lock_irqsave(cx);
            if task.is_leader() {
                if let Some(entry) = inner.threads.get_mut(&pid) {
                    entry.1 = ExitState::Zombie;
                }
                if let Some(tk) = t.tasks.get_mut(&pid) {
                    tk.exit_state = ExitState::Zombie;
                }
            } else {
                inner.threads.remove(&pid);
                t.tasks.remove(&pid);
            }
        }
        let mut closed = Vec::new();
        if group_dead {
            // exit_files(): the group's sockets close.
            let mut ports = self.ports.lock(cx);
            closed = ports.values().filter(|p| p.owner_tgid == task.tgid).map(|p| p.id).collect();
            ports.retain(|_, p| p.owner_tgid != task.tgid);
        }
        self.ledger().exits += 1;
        Some(ExitReport { pid, group_dead, cpu: cx.cpu(), closed, ..report })
    }

    /// Reaps a zombie leader of a dead group (wait(2) by its parent): release_task(), which frees
    /// the signal's stats (taskstats_tgid_free).
    pub fn reap(&self, cx: &Cx, pid: u32) -> bool {
        let mut t = self.tasks.lock(cx);
        let Some(task) = t.tasks.get(&pid).filter(|t| t.exit_state == ExitState::Zombie).cloned() else {
            return false;
        };
        let mut inner = task.signal.lock.lock_irqsave(cx);
        if inner.live != 0 {
            return false;
        }
        inner.threads.remove(&pid);
        inner.stats = None;
        if let Some(handle) = inner.stats_handle.take() {
            let _ = self.taskstats_cache.free(cx, handle);
        }
        task.signal.stats_published.store(false, Ordering::Release);
        drop(inner);
        t.tasks.remove(&pid);
        t.files.remove(&pid);
        drop(t);
        self.ledger().groups.remove(&task.tgid);
        self.mark(cx, "reaped");
        true
    }

    /// Mirrors taskstats_tgid_alloc(): the unlocked fast path (stats already set, or a group of
    /// one), else allocate, install under siglock if still unset, free the spare.
    pub fn taskstats_tgid_alloc(&self, cx: &Cx, task: &Task) -> bool {
        let sig = &task.signal;
        if sig.stats_published() {
            return true;
        }
        let group_empty = sig.lock.lock_irqsave(cx).threads.len() <= 1;
        if group_empty {
            return false;
        }
        let handle = self.taskstats_cache.alloc(cx, Gfp::GFP_KERNEL, ()).ok();
        let mut inner = sig.lock.lock_irqsave(cx);
        if inner.stats.is_none() {
            if handle.is_some() {
                inner.stats = Some(TaskstatsRecord::default());
                inner.stats_handle = handle;
                sig.stats_published.store(true, Ordering::Release);
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

    /// `tsk->delays->lock` as the version takes it: spin_lock_irqsave() after "lockdep: fix
    /// delayacct locking bug", plain spin_lock() (softirq-unsafe in process context) before.
    #[track_caller]
    fn delays_lock<'a>(&self, cx: &'a Cx, delays: &'a TaskDelays) -> sim_core::locks::SpinLockGuard<'a, ()> {
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

    /// Mirrors fill_tgid_exit(): adds the exiting thread's delays into signal->stats, under
    /// siglock (2.6.19: stats_lock), delayacct_add_tsk() taking the thread's delays->lock inside
    /// it. Also books the thread into the checker's ledger.
    fn fill_tgid_exit(&self, cx: &Cx, task: &Task) {
        let v8 = self.fixes.on(crate::fixes::TASKSTATS_V8);
        let mut inner = task.signal.lock.lock_irqsave(cx);
        let acct = inner.threads.get(&task.pid).map(|(a, _)| *a).unwrap_or_default();
        if let Some(stats) = inner.stats.as_mut() {
            if let Some(delays) = &task.delays {
                drop(self.delays_lock(cx, delays));
            }
            acct.delayacct_add(stats, v8);
            drop(inner);
            self.mark(cx, "group-stats-aggregated");
        }
    }

    /// The ledger's view: a thread whose group has stats at its exit must be counted in them.
    fn ledger_exit(&self, cx: &Cx, task: &Task) {
        let v8 = self.fixes.on(crate::fixes::TASKSTATS_V8);
        // The checker reads the group through an observer context: untraced, unchecked.
        let observer = cx.sim().observer_cx("ledger", cx.cpu());
        let (has_stats, acct) = {
            let inner = task.signal.lock.lock_irqsave(&observer);
            (inner.stats.is_some(), inner.threads.get(&task.pid).map(|(a, _)| *a).unwrap_or_default())
        };
        if has_stats {
            let mut ledger = self.ledger();
            let group = ledger.groups.entry(task.tgid).or_default();
            acct.delayacct_add(&mut group.truth, v8);
        }
    }

    /// Mirrors taskstats_exit() (3.x).
    fn taskstats_exit(&self, cx: &Cx, task: &Task, group_dead: bool) -> ExitReport {
        let mut report = ExitReport {
            pid: task.pid,
            group_dead,
            cpu: cx.cpu(),
            delivered: Vec::new(),
            pruned: 0,
            closed: Vec::new(),
        };
        let mut size = self.packet_size();
        let is_thread_group = if self.fixes.on(crate::fixes::TGID_ALLOC_AT_EXIT) {
            self.taskstats_tgid_alloc(cx, task)
        } else {
            // 2.6.20 before the on-demand allocation: the fork allocated it, or nobody did.
            task.signal.stats_published()
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
        for (kind, id, stats) in &records {
            self.mk_reply(&mut msg, *kind, *id, stats);
        }
        self.send_cpu_listeners(cx, msg.finish(), cx.cpu(), task, &records, &mut report);
        report
    }

    /// The PID record and, at group death of a group with stats, the TGID record.
    fn exit_records(&self, cx: &Cx, task: &Task, with_tgid: bool) -> Vec<(u16, u32, TaskstatsRecord)> {
        let table = self.tasks.lock(cx);
        let inner = task.signal.lock.lock_irqsave(cx);
        let acct = inner.threads.get(&task.pid).map(|(a, _)| *a).unwrap_or_default();
        let group = inner.stats.clone();
        drop(inner);
        let mut records =
            vec![(TASKSTATS_TYPE_PID, task.pid, self.fill_stats(cx, &table, task, &acct, 0, 0))];
        if with_tgid {
            // memcpy() of signal->stats: its version is whatever the seed left there (zero:
            // taskstats_tgid_alloc() zeroes it and only the delay counters are added).
            let stats = group.unwrap_or_default();
            drop(table);
            if self.checks_group_stats() {
                let ledger = self.ledger();
                let truth = ledger.groups.get(&task.tgid).map(|g| g.truth.clone()).unwrap_or_default();
                drop(ledger);
                if !same_delays(&truth, &stats) {
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

    /// Mirrors taskstats_exit_alloc() (2.6.19): allocate the record, and drop it again unless
    /// this CPU has listeners.
    fn taskstats_exit_alloc(&self, cx: &Cx) -> Option<sim_core::mm::ObjHandle<()>> {
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
    fn taskstats_exit_send(
        &self,
        cx: &Cx,
        task: &Task,
        tidstats: Option<sim_core::mm::ObjHandle<()>>,
        group_dead: bool,
    ) -> ExitReport {
        let mut report = ExitReport {
            pid: task.pid,
            group_dead,
            cpu: cx.cpu(),
            delivered: Vec::new(),
            pruned: 0,
            closed: Vec::new(),
        };
        // The ledger: the thread belongs in the group's stats whenever they exist.
        self.ledger_exit(cx, task);
        let fill_first = self.fixes.on(crate::fixes::EXIT_FILL_BEFORE_SEND);
        if fill_first && task.signal.stats_published() {
            self.fill_tgid_exit(cx, task);
        }
        let Some(tidstats) = tidstats else {
            if task.signal.stats_published() && !fill_first {
                cx.note("taskstats_exit_send: no record buffer, the group's stats skip this thread");
                self.mark(cx, "group-stats-skipped");
            }
            return report;
        };
        let is_thread_group = task.signal.lock.lock_irqsave(cx).stats.is_some();
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
        for (kind, id, stats) in &records {
            self.mk_reply(&mut msg, *kind, *id, stats);
        }
        self.send_cpu_listeners(cx, msg.finish(), cx.cpu(), task, &records, &mut report);
        let _ = self.taskstats_cache.free(cx, tidstats);
        report
    }

    /// Mirrors send_cpu_listeners(): under the read lock, one clone per listener but the last
    /// (a failed clone ends the walk), a unicast to each; listeners whose port refused are marked
    /// invalid, and after up_read they are pruned under the write lock.
    fn send_cpu_listeners(
        &self,
        cx: &Cx,
        skb: Vec<u8>,
        cpu: u32,
        task: &Task,
        records: &[(u16, u32, TaskstatsRecord)],
        report: &mut ExitReport,
    ) {
        let listeners = &self.listener_array[cpu as usize];
        let mut copies: BTreeMap<u32, u32> = BTreeMap::new();
        let seq = u32_at(&skb, 8);
        let clone_fails = |skipped: usize| {
            let fail = cx.sim().should_fail(cx, &FaultSite::call("taskstats:skb_clone"), skb.len() as u64);
            if fail {
                cx.note(format!("send_cpu_listeners: skb_clone failed, {skipped} listeners skipped"));
                self.mark(cx, "clone-failed");
            }
            fail
        };
        let unicast = |pid: u32| {
            self.audit_delivery(cx, pid, cpu, seq, task, records);
            let rc = self.unicast(cx, pid, skb.clone());
            if rc.is_ok() {
                self.ledger().last_seq.insert((pid, cpu), seq);
                *copies.entry(pid).or_default() += 1;
                report.delivered.push(pid);
            }
            rc
        };
        let delcount = deliver_to_listeners(cx, listeners, clone_fails, unicast);
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

    /// The checker's look at one delivery before it is sent: what the record may say to the
    /// port's owner ([`Self::audit_record`]) and whether the port's per-CPU sequence numbers
    /// still rise. It reads the model through an observer context, so neither the trace nor
    /// lockdep sees it.
    fn audit_delivery(
        &self,
        cx: &Cx,
        pid: u32,
        cpu: u32,
        seq: u32,
        task: &Task,
        records: &[(u16, u32, TaskstatsRecord)],
    ) {
        let observer = cx.sim().observer_cx("audit", cx.cpu());
        let Some(port) = self.port(&observer, pid).filter(|p| p.open) else {
            return;
        };
        {
            let table = self.tasks.lock(&observer);
            for (kind, id, stats) in records {
                self.audit_record(cx, &port, task, *kind, *id, stats, &table);
            }
        }
        let last = self.ledger().last_seq.get(&(pid, cpu)).copied();
        if let Some(last) = last {
            if seq < last || (seq == last && self.checks("duplicate-listener-check")) {
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

    /// The checker's count of one exit's copies per port: more than one is CVE-2011-2484.
    fn audit_copies(&self, cx: &Cx, copies: &BTreeMap<u32, u32>, cpu: u32, task: &Task) {
        if !self.checks("duplicate-listener-check") {
            return;
        }
        if let Some((port, n)) = copies.iter().find(|(_, &n)| n > 1) {
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
    fn audit_deregister(&self, cx: &Cx, port: u32, mask: &CpuSet) {
        let observer = cx.sim().observer_cx("audit", cx.cpu());
        for &cpu in mask {
            let list = self.listener_array[cpu as usize].sem.down_read(&observer);
            let left = list.iter().filter(|s| s.pid == port).count();
            drop(list);
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

    // --- invariants and teardown ---------------------------------------------------------------

    /// The invariants that hold between operations.
    pub fn check_invariants(&self, sim: &Sim) -> Result<(), Violation> {
        let cx = sim.observer_cx("check_invariants", 0);
        let ports = self.port_ids(&cx);
        let _ = ports;
        for (cpu, listeners) in self.listener_array.iter().enumerate() {
            let list = listeners.sem.down_read(&cx);
            assert_eq!(
                listeners.len.load(Ordering::Relaxed),
                list.len(),
                "cpu {cpu}: the unlocked length disagrees with the list"
            );
            if self.checks("duplicate-listener-check") {
                let mut seen = BTreeSet::new();
                for s in list.iter().filter(|s| s.valid.load(Ordering::Relaxed)) {
                    if !seen.insert(s.pid) {
                        return Err(Violation::new(
                            ViolationKind::finding("duplicate-listener"),
                            format!(
                                "cpu {cpu} has more than one valid listener for port {}: {:?}",
                                s.pid,
                                list.iter().map(|s| s.pid).collect::<Vec<_>>()
                            ),
                        ));
                    }
                }
            }
            if list.iter().any(|s| !s.valid.load(Ordering::Relaxed)) {
                return Err(Violation::new(
                    ViolationKind::Invariant(None),
                    format!("cpu {cpu}: an invalid listener survived pruning"),
                ));
            }
        }
        let listeners_total: usize = self.listener_array.iter().map(|l| l.len.load(Ordering::Relaxed)).sum();
        if self.listener_cache.live() != listeners_total as u64 {
            return Err(Violation::new(
                ViolationKind::Leak,
                format!("{} listener objects live, {} on lists", self.listener_cache.live(), listeners_total),
            ));
        }
        if self.checks_group_stats() {
            self.check_group_ledger(&cx)?;
        }
        let t = self.tasks.lock(&cx);
        let groups_with_stats = t
            .tasks
            .values()
            .filter(|task| task.is_leader() && task.signal.lock.lock_irqsave(&cx).stats.is_some())
            .count();
        drop(t);
        if self.taskstats_cache.live() != groups_with_stats as u64 {
            return Err(Violation::new(
                ViolationKind::Leak,
                format!(
                    "{} taskstats objects live, {} groups with stats",
                    self.taskstats_cache.live(),
                    groups_with_stats
                ),
            ));
        }
        Ok(())
    }

    /// Every group the ledger has booked exits for still has its stats, and they hold exactly
    /// the delays of the threads that exited (fill_tgid_exit() once per thread, nothing lost).
    fn check_group_ledger(&self, cx: &Cx) -> Result<(), Violation> {
        let leaders: Vec<Task> =
            self.tasks.lock(cx).tasks.values().filter(|t| t.is_leader()).cloned().collect();
        let ledger = self.ledger();
        for task in leaders {
            let Some(group) = ledger.groups.get(&task.tgid) else { continue };
            let stats = task.signal.lock.lock_irqsave(cx).stats.clone();
            let ok = stats.as_ref().is_some_and(|stats| same_delays(&group.truth, stats));
            if !ok {
                let have = stats.map_or("no stats (freed)".to_string(), |s| {
                    format!("cpu_count {} cpu_delay_total {}", s.cpu_count, s.cpu_delay_total)
                });
                return Err(Violation::new(
                    ViolationKind::finding("group-stats"),
                    format!(
                        "group {}: signal->stats has {have}, but its exited threads sum to cpu_count {} \
                         cpu_delay_total {}",
                        task.tgid, group.truth.cpu_count, group.truth.cpu_delay_total
                    ),
                ));
            }
        }
        Ok(())
    }

    /// Frees every listener and group stats; a leak is a violation.
    pub fn teardown(self, sim: &Sim) -> Result<(), Violation> {
        let cx = sim.cx("teardown", 0);
        for listeners in &self.listener_array {
            let mut list = listeners.sem.down_write(&cx);
            for s in list.drain(..) {
                let _ = self.listener_cache.free(&cx, s.handle);
            }
            listeners.len.store(0, Ordering::Relaxed);
        }
        let signals: Vec<Arc<Signal>> =
            self.tasks.lock(&cx).tasks.values().filter(|t| t.is_leader()).map(|t| t.signal.clone()).collect();
        for signal in signals {
            let handle = signal.lock.lock_irqsave(&cx).stats_handle.take();
            if let Some(handle) = handle {
                let _ = self.taskstats_cache.free(&cx, handle);
            }
        }
        self.listener_cache.destroy(&cx)?;
        self.taskstats_cache.destroy(&cx)?;
        Ok(())
    }

    /// Entries on `cpu`'s list, head first: (port, valid).
    pub fn listeners(&self, cx: &Cx, cpu: u32) -> Vec<(u32, bool)> {
        let list = self.listener_array[cpu as usize].sem.down_read(cx);
        list.iter().map(|s| (s.pid, s.valid.load(Ordering::Relaxed))).collect()
    }
}

/// copy_namespaces() and the credential change a fork kind stands for: the child's pid
/// namespace, user namespace, kuid and capable(CAP_NET_ADMIN).
fn child_namespaces(t: &mut TaskTable, p: &Task, kind: ForkKind) -> (usize, usize, u32, bool) {
    let mut pid_ns = p.pid_ns();
    let mut user_ns = p.user_ns;
    let (mut uid, mut cap) = (p.uid, p.cap_net_admin);
    match kind {
        ForkKind::NewPidNs => {
            t.pid_ns.push(PidNs { parent: Some(pid_ns), next_nr: 1 });
            pid_ns = t.pid_ns.len() - 1;
        }
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
        ForkKind::Thread | ForkKind::Process => {}
    }
    (pid_ns, user_ns, uid, cap)
}

fn inner_group_has_ledger(model: &Taskstats, tgid: u32) -> bool {
    model.ledger().groups.contains_key(&tgid)
}

fn add_delays(into: &mut TaskstatsRecord, from: &TaskstatsRecord) {
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

fn same_delays(a: &TaskstatsRecord, b: &TaskstatsRecord) -> bool {
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

/// `struct genl_info`, as far as the doits read it.
struct Info<'a> {
    port: u32,
    seq: u32,
    msg: &'a [u8],
    attrs: Vec<Option<Attr>>,
}

/// parse()'s copy and cpulist_parse() of the version (sim_core::percpu's parsers), as the set
/// of CPUs: [`nla_strlcpy`] into a buffer of `nla_len()` bytes, so a payload without its NUL
/// loses its last character, and the parser reads the copy as a C string (up to its first NUL)
/// byte for byte, as the kernel does (3.x's isspace() includes Latin-1's no-break space; for
/// 2.6.18's parser any byte above 127 is a non-digit, so a lossy conversion reads the same).
pub fn parse_cpulist(fixes: Fixes, payload: &[u8]) -> Result<CpuSet, Errno> {
    let copied = nla_strlcpy(payload, payload.len());
    let mask = if fixes.on(crate::fixes::CPULIST_PARSE_3) {
        cpulist_parse_bytes(&copied, NR_CPUS)?
    } else {
        let end = copied.iter().position(|&c| c == 0).unwrap_or(copied.len());
        cpulist_parse_with(CpulistSyntax::Linux2_6_18, &String::from_utf8_lossy(&copied[..end]), NR_CPUS)?
    };
    Ok(mask.iter().collect())
}
