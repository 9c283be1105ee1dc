//! kernel/taskstats.c: the TASKSTATS generic-netlink family. This file has the model's state,
//! the commands (taskstats_user_cmd, cgroupstats_user_cmd, cmd_attr_pid/_tgid and
//! _register/_deregister_cpumask, prepare_reply, mk_reply, fill_stats, fill_stats_for_pid/_tgid);
//! its children are `exit.rs` (exit delivery to the per-CPU listeners), `process.rs` (fork and
//! exit of the tasks the family reports on), `delayacct.rs` (`delays->lock` and the itimer
//! softirq), `netlink.rs` (the af_netlink/genetlink/nlctrl slice the family runs on) and
//! `ledger.rs` (checker state: what delivered records must add up to, invariants, teardown) and
//! `invariants.rs` (the invariants' pieces, shared by the whole and the incremental check).
//! Left out: dump requests (the family has no dumpit) and multicast.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use serde::{Deserialize, Serialize};
use sim_core::fault::FaultSite;
use sim_core::mm::{Gfp, KmemCache};
use sim_core::sync::atomic::{AtomicU32, Ordering};
use sim_core::sync::Arc;
use sim_core::{Cx, Errno, Mutex, RwLock, Sim, SpinLock, Violation, ViolationKind};

use crate::fixes::Fixes;
use crate::listener::CpuSet;
use crate::listener::{add_del_listener, deliver_to_listeners, prune_invalid, Action, ListenerList};
use crate::mm::{MmStruct, TaskMm};
use crate::skb::{genlmsg_new_size, SkBuff, SkbGeometry, SkbPool};
use crate::task::{
    Acct, DelayInfo, ExitState, File, InPlace, PidHash, Signal, StatsAccess, StructPid, Task, TaskAcct,
    TaskDelays, TaskState, TaskTable, UserNs,
};
use crate::wire::*;
use sim_core::percpu::{cpulist_parse_bytes, cpulist_parse_with, CpulistSyntax};

mod delayacct;
mod exit;
mod invariants;
mod ledger;
mod netlink;
mod process;

use delayacct::{add_delays, delays_between, same_delays, sub_delays};
use ledger::{Ledger, TgidExpect};
use netlink::Info;
pub(crate) use netlink::{spare_ack, Port, Socket};
use process::comm_for;

/// A fault site the model names on a hot path, made once: a `FaultSite` owns its name's text,
/// so making one per call cost an allocation per fork, registration and clone.
pub(crate) type StaticSite = std::sync::LazyLock<FaultSite>;

/// alloc_cpumask_var()'s site (3.x, CONFIG_CPUMASK_OFFSTACK).
static CPUMASK_VAR_SITE: StaticSite = StaticSite::new(|| FaultSite::slab("cpumask_var"));
/// parse()'s kmalloc() of the cpulist's copy.
static CPULIST_SITE: StaticSite = StaticSite::new(|| FaultSite::slab("kmalloc-cpulist"));

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

/// `PID_MAX_DEFAULT` (0x8000): the most pids a kernel hands out by default, so the most tasks a
/// config may ask the model to hold at once ([`Params::tasks_max`]). The model has no pid_max:
/// its pid allocation ([`crate::task`]'s `alloc_numbers`) never wraps (each namespace's counter
/// only grows) and never refuses, where alloc_pid() wraps at pid_max and fails with EAGAIN once
/// every number is in use. The bound is what keeps a config inside what a kernel at the default
/// pid_max can hold; the model's own limit on live tasks is `tasks_max` (fork's EAGAIN).
pub const PID_MAX_DEFAULT: usize = 0x8000;

impl Params {
    /// What the model cannot represent in these parameters, as one line (None: all of it can).
    /// A CPU is a bit of a 64-bit `CpuMask` (`NR_CPUS`), and the model, the reference and the
    /// checker's touched set all index CPUs by it: none is silently dropped by a clamp. At least
    /// init runs (`tasks_max` 1), and no more tasks than a kernel at the default pid_max can
    /// number at once (`PID_MAX_DEFAULT`: the model itself has no pid_max, see there).
    /// A fix named for audit must exist, or its invariants would go unchecked without a word.
    pub fn bounds_error(&self) -> Option<String> {
        if self.cpus == 0 || self.cpus > NR_CPUS {
            return Some(format!(
                "cpus {} is outside 1..={NR_CPUS} (NR_CPUS, a CPU mask's width)",
                self.cpus
            ));
        }
        if self.tasks_max == 0 || self.tasks_max > PID_MAX_DEFAULT {
            return Some(format!(
                "tasks_max {} is outside 1..={PID_MAX_DEFAULT} (init, up to PID_MAX_DEFAULT pids)",
                self.tasks_max
            ));
        }
        let table = <crate::fixes::TaskstatsFixes as sim_core::fixes::FixTableOf>::TABLE;
        let unknown = self.audit.iter().find(|name| table.find(name).is_none());
        unknown.map(|name| format!("audit names {name:?}, which is no taskstats fix"))
    }
}

/// The model: the family, its listeners, the tasks and the ports.
#[derive(Debug)]
pub struct Taskstats {
    fixes: Fixes,
    /// [`Self::fixes`] with the audited fixes (`params.audit`) on: whose invariants are checked.
    checked: Fixes,
    params: Params,
    /// `tasklist_lock`, an `rwlock_t`: fork, exit and reaping take it with write_lock_irq(),
    /// lookups (2.6.19's queries among them) with read_lock(). The model keeps the fd and cgroup
    /// tables in the same table, so open(2) and close(2) write-lock it too.
    tasks: RwLock<TaskTable>,
    /// kernel/pid.c's `pid_hash` and each `struct pid`'s task chain, RCU hlists that
    /// find_task_by_vpid() walks (see [`PidHash`]).
    pid_hash: PidHash,
    /// `current`: each running task's own task_struct, which the kernel reads from its CPU
    /// with no lock, valid because a running task cannot be reaped. The map stands for those
    /// per-task pointers behind a std lock that lockdep, the trace and the schedulers never see,
    /// so reading `current` adds no model-lock step; see [`Self::current`]. By ascending pid,
    /// a sorted vector: read at nearly every entry point, changed at each fork and exit.
    current: std::sync::RwLock<Vec<(u32, Arc<Task>)>>,
    listener_array: Vec<ListenerList>,
    taskstats_seqnum: Vec<AtomicU32>,
    /// `nl_table_lock`, an `rwlock_t` over the bound sockets by port id: netlink_lookup()
    /// reads it (once per unicast), bind and release write it (netlink_table_grab()). Each
    /// socket's receive queue has its own lock ([`netlink::Socket::rx`]).
    ports: RwLock<BTreeMap<u32, Arc<netlink::Socket>>>,
    listener_cache: KmemCache<()>,
    taskstats_cache: KmemCache<()>,
    /// Checker state (std-synchronised, untraced); see [`Ledger`].
    ledger: std::sync::Mutex<Ledger>,
    next_port: AtomicU32,
    /// Checker state: every sk_buff the family allocated and not yet freed or consumed.
    skbs: SkbPool,
    /// `genl_mutex`: genl_rcv() holds it across netlink_rcv_skb(), so doits never overlap.
    genl_mutex: Mutex<()>,
    /// Checker state: what the op-level checker runs when the current operation's task next
    /// reaches a preemption point (see [`Taskstats::preemption_point`]).
    preemption: std::sync::Mutex<Option<Preemption>>,
    /// Checker state: whether [`Self::preemption`] holds work, so that a preemption point with
    /// nothing armed (nearly every one) reads a flag instead of taking the std mutex (two
    /// atomic read-modify-writes). Written only with the mutex held.
    preemption_armed: std::sync::atomic::AtomicBool,
    /// Checker state: the observer contexts the model's own checks read through, one kept per
    /// use between calls (see [`Taskstats::observer`]).
    observers: ledger::KeptObservers,
}

/// Another task's work the op-level checker runs while the task of an operation is preempted:
/// the op-level simulation runs one operation at a time, so a window between two steps of one
/// kernel function is explored by running the other task inside it.
pub struct Preemption(Box<PreemptedWork>);

/// The work a [`Preemption`] runs: given the model and the preempted task's context.
type PreemptedWork = dyn FnOnce(&Taskstats, &Cx) + Send;

impl Preemption {
    /// `work` runs, with the model, at the next preemption point.
    pub fn new(work: impl FnOnce(&Taskstats, &Cx) + Send + 'static) -> Preemption {
        Preemption(Box::new(work))
    }
}

impl std::fmt::Debug for Preemption {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Preemption")
    }
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
    /// Ports that got the record, in list order (a list holds a few: inline, no allocation an
    /// exit for them).
    pub delivered: smallvec::SmallVec<[u32; 4]>,
    /// Listeners pruned afterwards.
    pub pruned: usize,
    /// Ports closed because the group died (its files were closed).
    pub closed: Vec<u32>,
}

impl ExitReport {
    /// The report of an exit before any delivery: nobody got a record yet.
    fn nothing_sent(pid: u32, group_dead: bool, cpu: u32) -> ExitReport {
        ExitReport {
            pid,
            group_dead,
            cpu,
            delivered: smallvec::SmallVec::new(),
            pruned: 0,
            closed: Vec::new(),
        }
    }
}

/// The running tasks' list of a new world, init alone on it, with room for a case's tasks.
fn current_with_init(init: Arc<Task>) -> Vec<(u32, Arc<Task>)> {
    let mut current = Vec::with_capacity(crate::task::TASKS_ROOM);
    current.push((1, init));
    current
}

/// The lock class of a new signal_struct's stats lock: `sighand->siglock` once group stats moved
/// under it, `sig->stats_lock` before.
pub(crate) fn signal_lock_class(fixes: Fixes) -> &'static str {
    if fixes.on(crate::fixes::SIGLOCK_GROUP_STATS) {
        "&sighand->siglock"
    } else {
        "&sig->stats_lock"
    }
}

/// What a TGID walk did, for the checker: the threads it counted (ascending pid), their own
/// delays summed, whether a thread's `exit_state` changed while the walk ran, and whether the
/// walk passed over a thread that was alive when it started (its exit_notify() landed in the
/// walk before the walk reached it).
struct Walked {
    counted: smallvec::SmallVec<[u32; 8]>,
    live_sum: TaskstatsRecord,
    raced: bool,
    skipped_mid_walk: bool,
}

/// The fixes whose invariants are checked: those on, and those `audit` names (looked up once).
/// Every name must be a fix: [`Params::bounds_error`] refuses a config that names another (the
/// CLI and the artifacts pass through it), and a model built around that check says so here.
fn checked_fixes(fixes: Fixes, audit: &[String]) -> Fixes {
    let mut checked = fixes;
    for name in audit {
        let found = <crate::fixes::TaskstatsFixes as sim_core::fixes::FixTableOf>::TABLE.find(name);
        debug_assert!(
            found.is_some(),
            "audit names {name:?}, which is no taskstats fix (Params::bounds_error)"
        );
        if let Some((index, _)) = found {
            checked.set(crate::fixes::FIX_IDS[index], true);
        }
    }
    checked
}

/// init_task: pid 1 in the root namespaces, root with CAP_NET_ADMIN, in cgroup "/", on CPU 0;
/// its signal lock of lock class `class`. With it the set-up context ("taskstats_init"), made
/// once and renewed before each later use, as a new one would be made there ([`Cx::renew`]:
/// the same trace), for [`Taskstats::new`] to go on with.
fn init_task(sim: &Sim, pid_hash: &PidHash, class: &'static str) -> (Task, Cx) {
    let detached = Arc::new(sim_core::sync::atomic::AtomicBool::new(false));
    let numbers = pid_hash.init_numbers();
    // In the order the fields were once made in place.
    let signal = Signal::new(class);
    let mut cx = sim.cx("taskstats_init", 0);
    let parent = Task::parent_pointer(&cx, None);
    cx.renew(0);
    let usage = Task::new_usage(&cx, 1);
    cx.renew(0);
    let mm = TaskMm::new(Some(MmStruct::new(&cx, 1)));
    let task = Task {
        pid: 1,
        tgid: 1,
        tgid_numbers: numbers.clone(),
        leader_start_ns: sim.now_ns(),
        numbers,
        user_ns: 0,
        user_ns_bases: Arc::from([]),
        uid: 0,
        gid: 0,
        cap_net_admin: true,
        real_parent: InPlace::new(0),
        cpu: InPlace::new(0),
        comm: comm_for(1),
        start_ns: sim.now_ns(),
        cgroup: InPlace::new(0),
        state: InPlace::new(TaskState::Running as u32),
        exit_code: 0,
        exit_state: InPlace::new(ExitState::None as u32),
        self_reaping: InPlace::new(0),
        signal,
        parent,
        delays: Some(TaskDelays::new()),
        acct: TaskAcct::default(),
        usage,
        sighand_detached: detached.clone(),
        exiting: sim_core::sync::atomic::AtomicBool::new(false),
        leader_detached: detached,
        mm,
        exit_record_booked: std::sync::OnceLock::new(),
    };
    (task, cx)
}

impl Taskstats {
    /// taskstats_init_early() + taskstats_init(): caches, per-CPU lists, the family; and a
    /// world with init (pid 1, root, CAP_NET_ADMIN) in cgroup "/", a second cgroup "/work".
    pub fn new(sim: &Sim, fixes: Fixes, params: Params) -> Taskstats {
        let cpus = params.cpus.clamp(1, NR_CPUS);
        let params = Params { cpus, ..params };
        let class = signal_lock_class(fixes);
        let mut table = TaskTable::new(vec!["/", "/work"]);
        let pid_hash = PidHash::new(fixes.on(crate::fixes::PID_NAMESPACES));
        // One set-up context, renewed where a new one was made for each step.
        let (init, mut cx) = init_task(sim, &pid_hash, class);
        cx.renew(0);
        let init = Arc::new(init);
        init.signal.threads.init(&init);
        table.files.insert(1, vec![Some(File::Regular), Some(File::CgroupDir(0)), Some(File::CgroupDir(1))]);
        // init's pid, hashed and attached under tasklist_lock as copy_process() does for every
        // later task (init_struct_pid: static in the kernel, so no allocation that could fail).
        cx.renew(0);
        let tasks = RwLock::new("tasklist_lock", table);
        {
            let mut table = tasks.write_lock_irq(&cx);
            let init_pid = pid_hash.hash_pid(&cx, init.numbers.clone());
            let link = pid_hash.attach_pid(&cx, &init, init_pid);
            table.insert_task(init.clone(), link);
        }
        Taskstats {
            checked: checked_fixes(fixes, &params.audit),
            pid_hash,
            current: std::sync::RwLock::new(current_with_init(init)),
            fixes,
            listener_array: (0..cpus).map(|_| ListenerList::new()).collect(),
            taskstats_seqnum: (0..cpus).map(|_| AtomicU32::new(0)).collect(),
            params,
            tasks,
            ports: RwLock::new("nl_table_lock", BTreeMap::new()),
            listener_cache: KmemCache::new("listener", 24),
            taskstats_cache: KmemCache::new("taskstats_cache", TASKSTATS_V8_SIZE as u64),
            ledger: std::sync::Mutex::new(Ledger::default()),
            next_port: AtomicU32::new(0xffff_f000),
            skbs: SkbPool::default(),
            genl_mutex: Mutex::new("genl_mutex", ()),
            preemption: std::sync::Mutex::new(None),
            preemption_armed: std::sync::atomic::AtomicBool::new(false),
            observers: ledger::KeptObservers::default(),
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

    /// Whether the invariants of `fix` are checked: it is on, or audited (`params.audit`).
    fn checks(&self, fix: sim_core::fixes::FixId) -> bool {
        self.checked.on(fix)
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

    // --- commands ------------------------------------------------------------------------------

    /// Mirrors prepare_reply(): genlmsg_new() (may fail: ENOMEM), then genlmsg_put() (EINVAL
    /// and the skb freed if the headers do not fit); a reply to a request echoes its port and
    /// seq, an exit event takes this CPU's next sequence number. The 2.6.19 listing asks
    /// nlmsg_new(`size`) for the attributes alone (the headers live in alloc_skb()'s alignment
    /// slack until "taskstats: fix sk_buff size calculation"); 3.x asks genlmsg_new(`size`).
    fn prepare_reply(&self, cx: &Cx, info: Option<&Info<'_>>, cmd: u8, size: usize) -> Result<SkBuff, Errno> {
        let v3 = self.fixes.on(crate::fixes::TASKSTATS_V8);
        let asked = if v3 { genlmsg_new_size(size) } else { size };
        let geometry = SkbGeometry::of_era(v3);
        let skb = self.skbs.alloc_skb(cx, geometry, asked, Gfp::GFP_KERNEL, "prepare_reply", size as u64);
        let Ok(mut skb) = skb else {
            cx.note("prepare_reply: genlmsg_new failed");
            return Err(Errno::ENOMEM);
        };
        let (seq, port) = match info {
            None => (self.taskstats_seqnum[cx.cpu() as usize].fetch_add(1, Ordering::Relaxed), 0),
            Some(info) => (info.seq, info.port),
        };
        if skb.genlmsg_put(TASKSTATS_FAMILY_ID, seq, port, cmd, TASKSTATS_GENL_VERSION).is_err() {
            self.skbs.kfree_skb(cx, skb);
            return Err(Errno::EINVAL);
        }
        Ok(skb)
    }

    /// Mirrors mk_reply(): optional TASKSTATS_TYPE_NULL padding, the aggregate nest, the id and
    /// the stats; EMSGSIZE (the kernel's NULL, 2.6.19's NLA_PUT failure) when the skb is full.
    fn mk_reply(&self, msg: &mut SkBuff, kind: u16, id: u32, stats: &TaskstatsRecord) -> Result<(), Errno> {
        let aggr =
            if kind == TASKSTATS_TYPE_PID { TASKSTATS_TYPE_AGGR_PID } else { TASKSTATS_TYPE_AGGR_TGID };
        if self.padding() {
            msg.nla_put(TASKSTATS_TYPE_NULL, &[])?;
        }
        msg.nla_nest_start(aggr)?;
        msg.nla_put_u32(kind, id)?;
        // nla_reserve() and the record written into it: the kernel fills the reserved room.
        let version = self.version();
        let size = TaskstatsRecord::size_of(version);
        let at = msg.nla_reserve(TASKSTATS_TYPE_STATS, size)?;
        stats.write_to(version, msg.payload_mut(at, size));
        msg.nla_nest_end();
        Ok(())
    }

    /// The error path of a reply that did not fit: 3.x's `goto err` frees it and the doit
    /// returns -EINVAL; 2.6.19's `nla_put_failure` returns genlmsg_cancel()'s -1 (EPERM) and
    /// keeps the skb, a leak until "taskstats: fix sk_buff leak".
    fn reply_failed(&self, cx: &Cx, msg: SkBuff) -> Errno {
        cx.note(format!("mk_reply: the {}-byte skb is full", msg.len() + msg.tailroom()));
        self.mark(cx, "reply-emsgsize");
        if self.fixes.on(crate::fixes::REPLY_AFTER_DISPATCH) {
            self.skbs.kfree_skb(cx, msg);
            Errno::EINVAL
        } else {
            self.skbs.leak(msg);
            Errno::EPERM
        }
    }

    /// send_reply(): genlmsg_end() and the unicast, which consumes the skb.
    fn send_reply(&self, cx: &Cx, port: u32, mut msg: SkBuff) -> Result<(), Errno> {
        msg.genlmsg_end();
        self.unicast(cx, port, msg)
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
    /// the basic and extended accounting, with ids as seen from the requester's namespaces
    /// (`user_ns`: its credentials' uid_map chain, [`Task::user_ns_bases`]; `pid_ns`) where the
    /// version translates them. No tasklist_lock: neither version's fill takes it (2.6.19's
    /// fill_pid() drops it after the lookup); the reads are the task's own fields, its parent
    /// under RCU as bacct_add_tsk() does it ([`Self::bacct_ppid`]).
    fn fill_stats(
        &self,
        cx: &Cx,
        task: &Task,
        acct: &Acct,
        user_ns: &[u32],
        pid_ns: usize,
    ) -> TaskstatsRecord {
        let mut stats = TaskstatsRecord::default();
        self.fill_stats_into(cx, task, acct, (user_ns, pid_ns), &mut stats);
        stats
    }

    /// [`Self::fill_stats`] into `stats`, a zeroed record where the caller keeps it (the reply's
    /// or the exit event's slot: the kernel's fill writes the record it is given), so the
    /// 312-byte record is not returned and moved; `ids` is (`user_ns`, `pid_ns`).
    fn fill_stats_into(
        &self,
        cx: &Cx,
        task: &Task,
        acct: &Acct,
        (user_ns, pid_ns): (&[u32], usize),
        stats: &mut TaskstatsRecord,
    ) {
        let v8 = self.fixes.on(crate::fixes::TASKSTATS_V8);
        self.delayacct_add_tsk_read(cx, task, acct, stats);
        stats.version = self.version();
        if !v8 {
            return;
        }
        stats.nvcsw = acct.nvcsw;
        stats.nivcsw = acct.nivcsw;
        // bacct_add_tsk()
        stats.ac_etime = cx.sim().now_ns().saturating_sub(self.bacct_start_ns(cx, task)) / 1000;
        stats.ac_btime = (task.start_ns / 1_000_000_000) as u32;
        stats.ac_exitcode = task.exit_code;
        stats.ac_flag = 0;
        stats.ac_nice = 0;
        stats.ac_sched = 0;
        if self.fixes.on(crate::fixes::NAMESPACE_CHECKS) {
            stats.ac_pid = task.task_pid_nr_ns(pid_ns);
            stats.ac_ppid = self.bacct_ppid(cx, task, Some(pid_ns));
            stats.ac_uid = crate::task::from_kuid_munged_bases(user_ns, task.uid);
            stats.ac_gid = crate::task::from_kuid_munged_bases(user_ns, task.gid);
        } else {
            stats.ac_pid = task.pid;
            stats.ac_ppid = self.bacct_ppid(cx, task, None);
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
        // xacct_add_tsk(), all but the mm's high-water marks ([`Self::xacct_add_tsk`]).
        stats.coremem = acct.rss_pages * 4 * (acct.utime_ns + acct.stime_ns) / 1000 / 1024;
        stats.virtmem = acct.vm_pages * 4 * (acct.utime_ns + acct.stime_ns) / 1000 / 1024;
        stats.read_char = acct.read_char;
        stats.write_char = acct.write_char;
        stats.read_syscalls = acct.read_syscalls;
        stats.write_syscalls = acct.write_syscalls;
        stats.read_bytes = acct.read_bytes;
        stats.write_bytes = acct.write_bytes;
        stats.cancelled_write_bytes = acct.cancelled_write_bytes;
    }

    /// Mirrors xacct_add_tsk()'s mm part (kernel/tsacct.c): `hiwater_rss` and `hiwater_vm` in KB
    /// from the task's mm, for version-8 records; called without tasklist_lock or RCU, as
    /// fill_stats() runs in 3.x. With xacct-get-task-mm: get_task_mm(), the reads, mmput().
    /// Without it: `if (p->mm)` and then `p->mm->hiwater_rss`, the pointer loaded once (nothing
    /// between the test and the use makes the compiler load it again), no lock and no reference:
    /// a target that exits in between has freed the mm the reads then touch.
    pub(super) fn xacct_add_tsk(&self, cx: &Cx, task: &Task, stats: &mut TaskstatsRecord) {
        if !self.fixes.on(crate::fixes::TASKSTATS_V8) {
            return;
        }
        let counted = self.fixes.on(crate::fixes::XACCT_GET_TASK_MM);
        let mm = if counted { task.mm.get_task_mm(cx) } else { task.mm.load() };
        let Some(mm) = mm else {
            return;
        };
        self.preemption_point(cx, "xacct_add_tsk, between the mm test and its use");
        if !mm.access(cx) {
            cx.note(format!("xacct_add_tsk: p->mm->hiwater_rss reads the freed {}", mm.name()));
            self.mark(cx, "xacct-read-freed-mm");
        }
        let (rss, vm) = mm.hiwater();
        stats.hiwater_rss = rss * 4;
        stats.hiwater_vm = vm * 4;
        if counted {
            mm.mmput(cx);
        }
    }

    /// Arms the op-level checker's preemption: `work` runs at the next preemption point any task
    /// reaches (see [`Self::preemption_point`]). Returns what was armed before, if anything.
    pub fn preempt_at_next_point(&self, work: Preemption) -> Option<Preemption> {
        let mut armed = self.preemption.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        self.preemption_armed.store(true, std::sync::atomic::Ordering::Release);
        armed.replace(work)
    }

    /// Disarms the op-level checker's preemption: Some when no preemption point took it.
    pub fn preemption_not_taken(&self) -> Option<Preemption> {
        let mut armed = self.preemption.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        self.preemption_armed.store(false, std::sync::atomic::Ordering::Release);
        armed.take()
    }

    /// A place where the kernel may preempt the task of `cx` (process context, no spinlock, no
    /// RCU read-side section) between two steps that other tasks' work can come between. Here
    /// the op-level checker runs what it armed (another task's exit, say) and disarms it; in a
    /// threaded campaign the task yields, so the scheduler may keep it off while other threads
    /// really run in between. The points: the window in xacct_add_tsk(), and 2.6.19's fill_tgid()
    /// between its stats copy and its thread walk.
    pub(super) fn preemption_point(&self, cx: &Cx, what: &str) {
        if cx.in_atomic() || cx.irqs_disabled() || cx.rcu_read_depth() > 0 {
            return;
        }
        // Threaded campaigns: a yield, where a scheduler may keep the task off for a while.
        #[cfg(feature = "threaded")]
        if sim_core::sync::schedule::in_execution() {
            sim_core::sync::thread::yield_now();
        }
        // Nothing armed (the flag is set and cleared under the mutex, and only the op-level
        // checker and its scenarios arm, on the thread that runs the model): no mutex round trip.
        if !self.preemption_armed.load(std::sync::atomic::Ordering::Acquire) {
            return;
        }
        let Some(Preemption(work)) = self.preemption_not_taken() else {
            return;
        };
        cx.note(format!("preempted in {what}"));
        self.mark(cx, "preempted");
        work(self, cx);
    }

    /// A copy of `signal->stats` of the group task `pid` belongs to (None: not allocated).
    pub fn group_stats(&self, cx: &Cx, pid: u32) -> Option<TaskstatsRecord> {
        let task = self.task(cx, pid)?;
        let guard = task.signal.lock.lock_irqsave(cx);
        let stats = task.signal.stats.get();
        drop(guard);
        stats
    }

    /// The record fill_stats() computes for task `pid` as seen from the initial namespaces
    /// (what an exit event or an init-namespace PID query carries), for decoders to compare with.
    pub fn fill_stats_for(&self, cx: &Cx, pid: u32) -> Option<TaskstatsRecord> {
        let task = self.task(cx, pid)?;
        let mut stats = self.fill_stats(cx, &task, &task.acct.get(), &[], 0);
        if let Some(mm) = task.mm.load().filter(|_| self.fixes.on(crate::fixes::TASKSTATS_V8)) {
            let (rss, vm) = mm.hiwater();
            (stats.hiwater_rss, stats.hiwater_vm) = (rss * 4, vm * 4);
        }
        Some(stats)
    }

    /// Mirrors taskstats_user_cmd(): the first of REGISTER, DEREGISTER, PID, TGID present.
    fn taskstats_user_cmd(&self, cx: &Cx, current: &Task, info: &Info<'_>) -> Result<(), Errno> {
        if let Some(attr) = info.attrs[usize::from(TASKSTATS_CMD_ATTR_REGISTER_CPUMASK)] {
            return self.cmd_attr_cpumask(cx, current, info, attr, Action::Register);
        }
        if let Some(attr) = info.attrs[usize::from(TASKSTATS_CMD_ATTR_DEREGISTER_CPUMASK)] {
            return self.cmd_attr_cpumask(cx, current, info, attr, Action::Deregister);
        }
        // 2.6.19 allocates the reply before looking at PID/TGID: ENOMEM wins over EINVAL.
        let early = if self.fixes.on(crate::fixes::REPLY_AFTER_DISPATCH) {
            None
        } else {
            Some(self.prepare_reply(cx, Some(info), TASKSTATS_CMD_NEW, self.packet_size())?)
        };
        if let Some(attr) = info.attrs[usize::from(TASKSTATS_CMD_ATTR_PID)] {
            return self.cmd_attr_id(cx, current, info, early, attr.get_u32(info.msg), false);
        }
        if let Some(attr) = info.attrs[usize::from(TASKSTATS_CMD_ATTR_TGID)] {
            return self.cmd_attr_id(cx, current, info, early, attr.get_u32(info.msg), true);
        }
        if let Some(msg) = early {
            self.skbs.kfree_skb(cx, msg);
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
        if self.fixes.on(crate::fixes::CPUMASK_VAR) && cx.sim().should_fail(cx, &CPUMASK_VAR_SITE, 8) {
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
        if cx.sim().should_fail(cx, &CPULIST_SITE, len as u64) {
            return Err(Errno::ENOMEM);
        }
        let mask = parse_cpulist(self.fixes, attr.data(info.msg))?;
        // add_del_listener()
        if !mask.iter().all(|cpu| cpu < self.params.cpus) {
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
        if action == Action::Deregister && self.checks(crate::fixes::DUPLICATE_LISTENER_CHECK) {
            self.audit_deregister(cx, info.port, &mask);
        }
        Ok(())
    }

    /// Mirrors cmd_attr_pid()/cmd_attr_tgid() with fill_stats_for_pid()/_tgid() (2.6.19:
    /// fill_pid()/fill_tgid(), into the reply taskstats_user_cmd() allocated: `early`).
    fn cmd_attr_id(
        &self,
        cx: &Cx,
        current: &Task,
        info: &Info<'_>,
        early: Option<SkBuff>,
        nr: u32,
        tgid_query: bool,
    ) -> Result<(), Errno> {
        let mut msg = match early {
            Some(msg) => msg,
            None => self.prepare_reply(cx, Some(info), TASKSTATS_CMD_NEW, self.packet_size())?,
        };
        // find_task_by_vpid() (2.6.19: find_task_by_pid(), one global pid space), with a counted
        // reference or inside rcu_read_lock() as the version does it (process.rs).
        let ns = if self.fixes.on(crate::fixes::PID_NAMESPACES) { current.pid_ns() } else { 0 };
        let Some(task) = self.query_lookup(cx, nr, ns, tgid_query) else {
            self.skbs.kfree_skb(cx, msg);
            return Err(Errno::ESRCH);
        };
        // The checker's look, before the fill reads the counters: did the target's exit build
        // its record already?
        let booked = if tgid_query { None } else { Self::booked_exit_record(&task) };
        // One record, filled where it stays (a PID query's fill writes it in place).
        let mut stats = if !tgid_query {
            task.access(cx);
            // fill_stats() reads the target's own counters with no lock (racy by convention).
            let acct = task.acct.get();
            let mut stats = Some(TaskstatsRecord::default());
            if let Some(stats) = &mut stats {
                let ids = (&current.user_ns_bases[..], current.pid_ns());
                self.fill_stats_into(cx, &task, &acct, ids, stats);
            }
            stats
        } else if self.fixes.on(crate::fixes::PID_LOOKUP_RCU) {
            // fill_stats_for_tgid(): inside the lookup's rcu_read_lock() section, no tasklist_lock.
            self.fill_stats_for_tgid(cx, &task)
        } else {
            self.fill_tgid(cx, &task)
        };
        // The checker audits the record against the requester's socket (its credentials from
        // open, as netlink_request() found it); the namespace check alone reads the task table,
        // through the request's observer context (`info.observer`).
        if let Some(stats) = &stats {
            let kind = if tgid_query { TASKSTATS_TYPE_TGID } else { TASKSTATS_TYPE_PID };
            self.audit_record(cx, info.observer, info.socket, &task, (kind, nr), stats);
        }
        if let (Some(stats), false) = (&mut stats, tgid_query) {
            self.xacct_add_tsk(cx, &task, stats);
        }
        if let (Some(booked), Some(stats)) = (&booked, &stats) {
            self.judge_pid_reply_after_exit(cx, task.pid, booked, stats);
        }
        self.query_release(cx, &task, tgid_query);
        let Some(stats) = &stats else {
            self.skbs.kfree_skb(cx, msg);
            return Err(Errno::ESRCH);
        };
        let kind = if tgid_query { TASKSTATS_TYPE_TGID } else { TASKSTATS_TYPE_PID };
        if self.mk_reply(&mut msg, kind, nr, stats).is_err() {
            return Err(self.reply_failed(cx, msg));
        }
        self.mark(cx, if tgid_query { "tgid-query" } else { "pid-query" });
        // send_reply() -> genlmsg_reply(): the unicast's error is the doit's.
        self.send_reply(cx, info.port, msg)
    }

    /// Mirrors fill_stats_for_tgid() (3.x: under lock_task_sighand, skipping any exited thread)
    /// and fill_tgid() (2.6.19: signal->stats under stats_lock, then the threads, skipping only a
    /// zombie leader). Checks the result against the checker's ledger, read inside the same
    /// section. None (ESRCH) where lock_task_sighand() fails: the task was released after the
    /// RCU lookup found it.
    fn fill_stats_for_tgid(&self, cx: &Cx, first: &Task) -> Option<TaskstatsRecord> {
        let inner = first.signal.lock.lock_irqsave(cx);
        if self.fixes.on(crate::fixes::PID_LOOKUP_RCU) && !first.has_sighand() {
            cx.note(format!("lock_task_sighand({}): its sighand is gone (released)", first.pid));
            return None;
        }
        first.signal.stats_locked_read(cx, self.stats_access());
        let mut stats = first.signal.stats.get().unwrap_or_default();
        // The checker's copy of the ledger with the stats copy, no scheduling point between: an
        // exit_notify() during the walk below is judged by what the walk then counted.
        let ledger = self.checks_group_stats().then(|| self.tgid_walk_ledger(first.tgid)).flatten();
        // do/while_each_thread() under lock_task_sighand() alone: siglock keeps the list still,
        // not the threads' `exit_state`, which exit_notify() writes under tasklist_lock alone,
        // so each thread's is read as the walk reaches it: `if (tsk->exit_state) continue;`.
        let threads = first.signal.threads.read_under_siglock(cx, crate::task::ThreadList::threads);
        let walked = self.walk_threads(cx, &threads, &mut stats, |task| task.exit_state() == ExitState::None);
        if walked.raced {
            self.mark(cx, "tgid-walk-raced-exit-notify");
        }
        if walked.skipped_mid_walk {
            self.mark(cx, "tgid-walk-skipped-a-thread-exiting-mid-walk");
        }
        drop(inner);
        stats.version = self.version();
        if let Some(ledger) = ledger {
            let expect = ledger.expect(ledger.truth.clone(), &ledger.filled_live, &walked.counted);
            self.judge_tgid_query(cx, first.tgid, expect, &walked.live_sum, &stats);
        }
        Some(stats)
    }

    /// Mirrors 2.6.19-rc3's fill_tgid() after its lookup: two sections, not nested. The dead
    /// threads' figures are copied from `signal->stats` under `stats_lock` alone; then the
    /// threads are walked under read_lock(&tasklist_lock) (do/while_each_thread, skipping a
    /// zombie leader: an EXIT_DEAD thread not yet released is counted), each added by
    /// delayacct_add_tsk(). tasklist_lock alone keeps the thread list still (its writers hold it
    /// for writing, [`crate::task::ThreadGroup`]), so the walk takes no group lock; each
    /// thread's counters are its task's own ([`Task::acct`]), read with no lock, and its delays
    /// under its `delays->lock`. A thread whose fill_tgid_exit() comes after the copy and whose
    /// release comes before the walk is in neither, as in the kernel; the checker reads its
    /// ledger in each section (what the copy had, what the walk started from) and expects the
    /// copy plus what the walk counted.
    fn fill_tgid(&self, cx: &Cx, first: &Task) -> Option<TaskstatsRecord> {
        let (mut stats, copied) = {
            let inner = first.signal.lock.lock_irqsave(cx);
            first.signal.stats_locked_read(cx, self.stats_access());
            let copied = self.checks_group_stats().then(|| self.tgid_query_copied(first.tgid)).flatten();
            let stats = first.signal.stats.get().unwrap_or_default();
            drop(inner);
            (stats, copied)
        };
        // Between spin_unlock_irqrestore() and read_lock(): process context, preemptible.
        self.preemption_point(cx, "fill_tgid, between the stats copy and the thread walk");
        let walk = self.tasks.read_lock(cx);
        let threads = first.signal.threads.read_under_tasklist(cx, crate::task::ThreadList::threads);
        // The checker's second look as the walk starts, as in fill_stats_for_tgid().
        let ledger = copied.map(|copied| (self.tgid_walk_ledger(first.tgid), copied));
        // `if (tsk->exit_state == EXIT_ZOMBIE && thread_group_leader(tsk)) continue;`
        let counts = |task: &Task| !(task.exit_state() == ExitState::Zombie && task.is_leader());
        let walked = self.walk_threads(cx, &threads, &mut stats, counts);
        drop(walk);
        stats.version = self.version();
        if let Some((now, (truth, filled))) = ledger {
            if now.as_ref().is_some_and(|now| !same_delays(&now.truth, &truth)) {
                // A thread's fill_tgid_exit() ran between the copy and the walk.
                self.mark(cx, "tgid-query-fill-between-copy-and-walk");
            }
            let expect = now.unwrap_or_default().expect(truth, &filled, &walked.counted);
            self.judge_tgid_query(cx, first.tgid, expect, &walked.live_sum, &stats);
        }
        Some(stats)
    }

    /// The walk over a group's threads both TGID fills make (`threads`, the list as read under
    /// the lock the version holds): each thread's `exit_state` read as the walk reaches it,
    /// and one that `counts` (the version's test) has its delays added to `stats` by
    /// delayacct_add_tsk() (its `delays->lock` taken in turn inside the section, where other
    /// tasks may run) and, version 8, its context switches. Returns what the checker needs.
    fn walk_threads(
        &self,
        cx: &Cx,
        threads: &[(u32, Arc<Task>)],
        stats: &mut TaskstatsRecord,
        counts: impl Fn(&Task) -> bool,
    ) -> Walked {
        let v8 = self.fixes.on(crate::fixes::TASKSTATS_V8);
        // The checker's look at each thread's state as the walk starts (instrumentation).
        let at_start: smallvec::SmallVec<[ExitState; 8]> =
            threads.iter().map(|(_, task)| task.exit_state()).collect();
        let mut walked = Walked {
            counted: smallvec::SmallVec::new(),
            live_sum: TaskstatsRecord::default(),
            raced: false,
            skipped_mid_walk: false,
        };
        for ((pid, task), &start) in threads.iter().zip(&at_start) {
            if !counts(task) {
                walked.skipped_mid_walk |= start == ExitState::None;
                continue;
            }
            walked.counted.push(*pid);
            let mut own = TaskstatsRecord::default();
            self.delayacct_add_tsk(cx, task, &mut own);
            add_delays(stats, &own);
            stats.cpu_scaled_run_real_total += own.cpu_scaled_run_real_total;
            add_delays(&mut walked.live_sum, &own);
            if v8 {
                // The thread's own context switches, read in its task with no lock.
                let acct = task.acct.get();
                stats.nvcsw += acct.nvcsw;
                stats.nivcsw += acct.nivcsw;
            }
        }
        // The checker's look: a thread's exit_notify() ran during the walk, before or after
        // the walk reached it (its state read as instrumentation, untraced).
        walked.raced = threads.iter().zip(&at_start).any(|((_, task), &start)| task.exit_state() != start);
        walked
    }

    /// The checker's judgement of a TGID query's figures: the exited threads the ledger has in
    /// its truth plus the live threads the walk counted. A thread between fill_tgid_exit() and
    /// exit_notify() is in both, so the kernel's reply counts it twice, and so does this
    /// expectation (marked `tgid-query-counted-exiting-twice`).
    fn judge_tgid_query(
        &self,
        cx: &Cx,
        tgid: u32,
        expect: TgidExpect,
        live_sum: &TaskstatsRecord,
        stats: &TaskstatsRecord,
    ) {
        if !expect.counted_twice.is_empty() {
            cx.note(format!(
                "TGID {tgid} query: threads {:?} are in signal->stats and still live (between fill_tgid_exit and \
                 exit_notify): counted twice, as the kernel counts them",
                expect.counted_twice
            ));
            self.mark(cx, "tgid-query-counted-exiting-twice");
        }
        if !expect.before_fill.is_empty() {
            // Exiting, booked, not yet in signal->stats: counted once, as live.
            self.mark(cx, "tgid-query-before-exiting-fill");
        }
        let mut want = expect.truth;
        add_delays(&mut want, live_sum);
        if !same_delays(&want, stats) {
            let text = format!(
                "TGID {tgid} query: cpu_count {} cpu_delay_total {} blkio_delay_total {}, but exited threads plus \
                 live threads sum to {} / {} / {}",
                stats.cpu_count,
                stats.cpu_delay_total,
                stats.blkio_delay_total,
                want.cpu_count,
                want.cpu_delay_total,
                want.blkio_delay_total
            );
            cx.sim().report(Some(cx), Violation::new(ViolationKind::finding("group-stats"), text));
        }
    }

    /// Mirrors cgroupstats_user_cmd(): EINVAL without the fd attribute, nothing (0) for a bad fd,
    /// EINVAL (from cgroupstats_build) for a file that is not a cgroup directory.
    // Out of line: CGROUPSTATS is one request kind of five; inlined, its code sat among
    // genl_rcv()'s hot instructions (session 27's count of the cache lines an op fetches).
    #[inline(never)]
    fn cgroupstats_user_cmd(&self, cx: &Cx, current: &Task, info: &Info<'_>) -> Result<(), Errno> {
        let Some(attr) = info.attrs[usize::from(CGROUPSTATS_CMD_ATTR_FD)] else {
            return Err(Errno::EINVAL);
        };
        let fd = attr.get_u32(info.msg);
        // fget_light(): `current->files`, the caller's own fd table, read with no lock when the
        // table is not shared and under rcu_read_lock() otherwise (fcheck_files()); never under
        // tasklist_lock. The model keeps fd tables in the task table, so it reaches the
        // caller's through the request's observer context, inside the RCU section.
        cx.rcu_read_lock();
        let file = self.with_task_table(info.observer, |table| {
            table.files.get(&current.tgid).and_then(|f| f.get(fd as usize).copied().flatten())
        });
        cx.rcu_read_unlock();
        let Some(file) = file else {
            self.mark(cx, "cgroupstats-bad-fd");
            return Ok(());
        };
        let mut msg =
            self.prepare_reply(cx, Some(info), CGROUPSTATS_CMD_NEW, nla_total_size(CGROUPSTATS_SIZE))?;
        let File::CgroupDir(cgroup) = file else {
            self.skbs.kfree_skb(cx, msg);
            return Err(Errno::EINVAL);
        };
        // cgroupstats_build()'s cgroup_iter_start() takes read_lock(&css_set_lock), a lock the
        // model does not have; it walks the task list under read_lock(&tasklist_lock) instead
        // (another rwlock_t read, taken with nothing else held here). A known difference.
        let stats = self.tasks.read_lock(cx).cgroupstats_build(cgroup);
        // nla_reserve(), unchecked in the seed: the size it asked for always fits.
        if msg.nla_put(CGROUPSTATS_TYPE_CGROUP_STATS, &stats.to_bytes()).is_err() {
            return Err(self.reply_failed(cx, msg));
        }
        self.mark(cx, "cgroupstats");
        self.send_reply(cx, info.port, msg)
    }

    /// Entries on `cpu`'s list, head first: (port, valid). Through an observer context (the
    /// checker's lists after a request, the preempted query's choice of victim) the list is
    /// read with [`RwSem::observe_read`](sim_core::RwSem::observe_read): no round trip on
    /// `listeners->sem` between operations of the op-level simulation; a model context (a
    /// test's task) takes `down_read()` as before.
    pub fn listeners(&self, cx: &Cx, cpu: u32) -> Vec<(u32, bool)> {
        let entries = |list: &Vec<crate::listener::Listener>| {
            list.iter().map(|s| (s.pid, s.valid.load(Ordering::Relaxed))).collect()
        };
        let sem = &self.listener_array[cpu as usize].sem;
        if cx.is_observer() {
            sem.observe_read(cx, entries)
        } else {
            entries(&sem.down_read(cx))
        }
    }
}

/// parse()'s copy and cpulist_parse() of the version (sim_core::percpu's parsers), as the set
/// of CPUs: [`nla_strlcpy`] into a buffer of `nla_len()` bytes, so a payload without its NUL
/// loses its last character, and the parser reads the copy as a C string (up to its first NUL)
/// byte for byte, as the kernel does (3.x's isspace() includes Latin-1's no-break space; for
/// 2.6.18's parser any byte above 127 is a non-digit, so a lossy conversion reads the same).
/// The copy is on the stack for a payload parse() accepts (at most TASKSTATS_CPUMASK_MAXLEN
/// bytes), on the heap for a longer one (a direct caller's).
pub fn parse_cpulist(fixes: Fixes, payload: &[u8]) -> Result<CpuSet, Errno> {
    let mut buffer = [0u8; TASKSTATS_CPUMASK_MAXLEN];
    let heap;
    let copied: &[u8] = match buffer.get_mut(..payload.len()) {
        Some(dst) => {
            nla_strlcpy_into(payload, dst);
            dst
        }
        None => {
            heap = nla_strlcpy(payload, payload.len());
            &heap
        }
    };
    if fixes.on(crate::fixes::CPULIST_PARSE_3) {
        cpulist_parse_bytes(copied, NR_CPUS)
    } else {
        let end = copied.iter().position(|&c| c == 0).unwrap_or(copied.len());
        cpulist_parse_with(CpulistSyntax::Linux2_6_18, &String::from_utf8_lossy(&copied[..end]), NR_CPUS)
    }
}
