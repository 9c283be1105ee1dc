//! How the checkers drive the model: [`TaskstatsSubject`] applies the generated operations
//! ([`op`]) to the model and reports what each returned, the reference model
//! ([`reference::TaskstatsModel`]) judges it, and the catalogue ([`catalog`]) lists the zoo and
//! the teaching scenarios ([`scenario`]).
//!
//! Every model entry point takes the caller's `&Cx`; [`task_cx`] and [`sender_cx`] are how a
//! driver (this subject, the scenarios, the CLI, tests and benches) makes the context of the task
//! that runs an operation. The subject itself reads what one operation needs through one observer
//! context, in as few looks at the tables as it can (`*_seen` helpers): the driver's reads were
//! a fifth of a campaign's time.

mod catalog;
mod op;
mod reference;
pub(crate) mod scenario;
#[cfg(feature = "threaded")]
mod threaded;

use proptest::strategy::BoxedStrategy;
use serde::{Deserialize, Serialize};
use sim_core::check::Subject;
use sim_core::fault::{FaultAttr, FaultKind, FaultPlan};
use sim_core::fixes::FixTableOf;
use sim_core::{Cx, Sim, SimConfig, Violation};

use sim_core::sync::Arc;

use crate::fixes::{Fixes, TaskstatsFixes};
use crate::task::{ExitState, Task};
use crate::taskstats::{spare_ack, ForkKind, Params, Preemption, Socket, Taskstats, NR_CPUS};
use crate::wire::*;

// The operation vocabulary, for the CLI (artifacts) and the tests.
pub use op::{MaskSpec, Op, Outcome, RequestFacts, Target, Work};
// The reference model, for the tests that drive it directly.
pub use reference::TaskstatsModel;

/// Everything a case needs besides its seed and operations.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskstatsConfig {
    /// The preset the fixes came from.
    pub preset: String,
    /// The switches.
    pub fixes: Fixes,
    /// Sizes and architecture.
    pub params: Params,
    /// Faults to inject.
    pub faults: FaultPlan,
}

impl TaskstatsConfig {
    /// A preset's own contract: its known bugs are not checked, faults on allocations and clones.
    pub fn contract(preset: &str) -> TaskstatsConfig {
        TaskstatsConfig::for_preset(preset).expect("known preset")
    }

    /// A preset, faults on; invariants of the fixes it has.
    pub fn for_preset(preset: &str) -> Option<TaskstatsConfig> {
        Some(TaskstatsConfig {
            preset: preset.to_string(),
            fixes: Fixes::preset(preset)?,
            params: Params::default(),
            faults: default_faults(),
        })
    }

    /// The same configuration with fix `name` on, a later kernel's change applied to this one
    /// (panics on an unknown name): how tests run "linux-3.8 plus the 2019 data-race fix".
    pub fn fix_on(mut self, name: &str) -> TaskstatsConfig {
        let (index, _) = TaskstatsFixes::TABLE.find(name).expect("known fix");
        self.fixes.set(crate::fixes::FIX_IDS[index], true);
        self
    }

    /// The same configuration with fix `name` off (panics on an unknown name).
    pub fn fix_off(mut self, name: &str) -> TaskstatsConfig {
        let (index, _) = TaskstatsFixes::TABLE.find(name).expect("known fix");
        self.fixes = self.fixes.without(crate::fixes::FIX_IDS[index]);
        self.params.audit.push(name.to_string());
        self
    }
}

/// Index of the `skb_clone` attribute in [`default_faults`]: its counters tell the checker how
/// many clones an exit attempted and whether one failed (the environment's faults, not the
/// model's account of them).
const CLONE_ATTR: usize = 2;

/// Every fault site fails with probability 4%: slab allocations, the copy_process() step after
/// copy_signal() and the listeners' `skb_clone()`, each matched by exactly one attribute (so a
/// call draws once from the RNG, as with one catch-all attribute).
pub(crate) fn default_faults() -> FaultPlan {
    FaultPlan::with(FaultAttr::probability(4).kind(FaultKind::Slab))
        .and(FaultAttr::probability(4).kind(FaultKind::Call).site("copy_process"))
        .and(FaultAttr::probability(4).kind(FaultKind::Call).site("skb_clone"))
}

/// Whether `plan` has the clone attribute ([`CLONE_ATTR`], filtered to `skb_clone`): found
/// once, when the subject is made, so an exit reads its counters without the plan.
fn has_clone_attr(plan: &FaultPlan) -> bool {
    plan.attrs.get(CLONE_ATTR).is_some_and(|a| a.site.as_deref() == Some("skb_clone"))
}

/// (calls, failures) of the clone attribute so far ([`Sim::fault_counters`], loads without the
/// plan's lock); zero when the plan has none (`clone_attr` false, [`has_clone_attr`]).
fn clone_counters(sim: &Sim, clone_attr: bool) -> (u64, u64) {
    match clone_attr {
        true => sim.fault_counters(CLONE_ATTR),
        false => (0, 0),
    }
}

/// The context of task `pid` running operation `name` on the CPU the task is on (CPU 0 for a
/// task the model does not know): what a driver hands to a model entry point.
pub fn task_cx(sim: &Sim, model: &Taskstats, pid: u32, name: &str) -> Cx {
    let cpu = model.task(&sim.observer_cx("task_cx", 0), pid).map_or(0, |t| t.cpu());
    sim.cx_for_task(pid, name, cpu)
}

/// The context of the task that sends on port `port` (see [`Taskstats::port_sender`]); None
/// when the port is not open or its process has no live thread.
pub fn sender_cx(sim: &Sim, model: &Taskstats, port: u32) -> Option<Cx> {
    let (pid, cpu) = model.port_sender(&sim.observer_cx("sender_cx", 0), port)?;
    Some(sim.cx_for_task(pid, PidTask::Sendmsg.name(), cpu))
}

/// sendmsg(2) of `bytes` on port `port` by its process (see [`sender_cx`]): the messages the
/// call delivered to the port, nothing when the port has no live sender.
pub fn netlink_send(sim: &Sim, model: &Taskstats, port: u32, bytes: &[u8]) -> Vec<Vec<u8>> {
    sender_cx(sim, model, port).map(|cx| model.netlink_request(&cx, port, bytes)).unwrap_or_default()
}

/// The listener lists of `model`, head first, as `observer` reads them.
fn lists_of(model: &Taskstats, observer: &Cx) -> Vec<Vec<u32>> {
    (0..model.params().cpus)
        .map(|cpu| model.listeners(observer, cpu).into_iter().map(|(p, _)| p).collect())
        .collect()
}

/// do_exit() of a live task run as `cx` (the task's context) and what the checker saw of it:
/// the report, the clones the fault injector counted, and the lists when another fault struck.
fn exit_outcome(sim: &Sim, model: &Taskstats, cx: &Cx, clone_attr: bool) -> Outcome {
    let (faults_before, clones_before) = (sim.faults_failed(), clone_counters(sim, clone_attr));
    let Some(report) = model.exit(cx) else {
        return Outcome::Done;
    };
    let (failed_after, clones_after) = (sim.faults_failed(), clone_counters(sim, clone_attr));
    let clone_failed = clones_after.1 > clones_before.1;
    let other_faults = failed_after - faults_before - (clones_after.1 - clones_before.1);
    Outcome::Exited {
        pid: report.pid,
        cpu: report.cpu,
        delivered: report.delivered,
        closed: report.closed,
        clones: (clones_after.0 - clones_before.0, clone_failed),
        pruned: report.pruned,
        faulted: other_faults > 0,
    }
}

/// The checker's face of the model.
#[derive(Debug)]
pub struct TaskstatsSubject {
    /// The model.
    pub model: Taskstats,
    /// What the operations since the last incremental check touched (checker state, behind a
    /// std lock so that threaded runs, which share the subject, may record it too).
    touched: std::sync::Mutex<Touched>,
    /// Whether [`Self::touched`] may hold something the next incremental check reads: set with
    /// the record held by every touch, cleared with it held by the check, and set from the
    /// start (the first check reads the groups with stats whole). Clear, an operation that
    /// names no CPU leaves the check nothing to do, and it returns without the std mutex round
    /// trip (most operations; checker state, as the record).
    touched_pending: std::sync::atomic::AtomicBool,
    /// [`Subject::apply`]'s contexts, kept between operations: its observer and the driver's
    /// named tasks ([`Kept`]). None before the first operation, and in threaded runs, which make
    /// their own. Reached only through `&mut self` ([`std::sync::Mutex::get_mut`], no locking):
    /// the mutex is there because a context is not `Sync` and threaded runs share the subject.
    /// Boxed, so that taking them out for an operation and putting them back moves a pointer.
    kept: std::sync::Mutex<Option<Box<Kept>>>,
    /// Whether the plan has the clone attribute ([`has_clone_attr`]).
    pub(crate) clone_attr: bool,
}

/// [`Subject::apply`]'s kept contexts, in one box (one take and one put-back an operation).
#[derive(Debug)]
struct Kept {
    /// The observer ("op"), renewed each operation ([`Cx::renew`]): the same serial numbers,
    /// so the same trace, without making a context each operation.
    observer: Cx,
    /// The contexts of the driver's named tasks.
    drivers: DriverCxs,
}

/// The named tasks the op-level driver runs operations as, on CPU 0 (a pid's operations run
/// as the pid's task, [`PidTask`]).
#[derive(Clone, Copy, Debug)]
enum DriverTask {
    /// Scheduler changes: state, migration, cgroup attach.
    Sched,
    /// close(2) of a port.
    Close,
    /// recvmsg(2) on a port.
    Recvmsg,
    /// release_task() of a zombie.
    ReleaseTask,
}

impl DriverTask {
    /// How many there are: the last one's index and one.
    const COUNT: usize = DriverTask::ReleaseTask as usize + 1;

    fn name(self) -> &'static str {
        match self {
            DriverTask::Sched => "sched",
            DriverTask::Close => "close",
            DriverTask::Recvmsg => "recvmsg",
            DriverTask::ReleaseTask => "release_task",
        }
    }
}

/// The operations a pid runs as its own task ([`Sim::cx_for_task`]), each named for the
/// kernel path its context enters by.
#[derive(Clone, Copy, Debug)]
enum PidTask {
    /// fork(2): copy_process().
    Fork,
    /// A run of the task (its accounting).
    Run,
    /// open(2).
    Open,
    /// socket(2).
    Socket,
    /// sigaction(2) of SIGCHLD.
    Sigaction,
    /// do_exit().
    DoExit,
    /// sendmsg(2) on the task's netlink socket.
    Sendmsg,
    /// it_real_fn(), the ITIMER_REAL expiry, in the task's context.
    ItRealFn,
}

impl PidTask {
    /// How many there are: the last one's index and one.
    const COUNT: usize = PidTask::ItRealFn as usize + 1;

    fn name(self) -> &'static str {
        match self {
            PidTask::Fork => "fork",
            PidTask::Run => "run",
            PidTask::Open => "open",
            PidTask::Socket => "socket",
            PidTask::Sigaction => "sigaction",
            PidTask::DoExit => "do_exit",
            PidTask::Sendmsg => "sendmsg",
            PidTask::ItRealFn => "it_real_fn",
        }
    }
}

std::thread_local! {
    /// The driver's sendmsg(2) buffer: each request is built into it ([`MsgBuilder::genlmsg_put_into`])
    /// and it is put back once the request is delivered, kept for its room. Checker
    /// bookkeeping (a userspace buffer, no kernel allocation: the model's skb is its own): it
    /// decides which allocation holds a request's bytes, never the bytes.
    static REQUEST_BYTES: std::cell::Cell<Vec<u8>> = const { std::cell::Cell::new(Vec::new()) };
}

/// The contexts the driver runs operations in, kept between operations: one per
/// [`DriverTask`], made by [`Sim::cx`] the first time and renewed after ([`Cx::renew`]), and
/// one per [`PidTask`], made by [`Sim::cx_for_task`] the first time and lent to the next pid
/// that runs that operation ([`Cx::renew_for_task`]). A renewal takes the next serial number
/// and names the task in the trace as a new context would: the trace is the one a context made
/// per operation gives, without the world's handle cloned and dropped, the name looked up, a
/// context built and one dropped each time (22,000 contexts in taskstats' 300 cases). A
/// context the operation leaves holding a lock or inside an RCU read-side section is not kept
/// but dropped where the one made per operation was (its drop reports the section, `Drop for
/// Cx`).
#[derive(Debug, Default)]
struct DriverCxs {
    named: [Option<Cx>; DriverTask::COUNT],
    pids: [Option<Cx>; PidTask::COUNT],
}

impl DriverCxs {
    /// `f` run as the driver's task `task` on CPU 0, in the context [`Sim::cx`] would make now.
    fn as_named<R>(&mut self, sim: &Sim, task: DriverTask, f: impl FnOnce(&Cx) -> R) -> R {
        let slot = &mut self.named[task as usize];
        match slot {
            Some(cx) => cx.renew(0),
            None => *slot = Some(sim.cx(task.name(), 0)),
        }
        Self::run_kept(slot, f)
    }

    /// `f` run as task `pid` on `cpu` entering by `op`, in the context
    /// [`Sim::cx_for_task`]`(pid, op.name(), cpu)` would make now.
    fn as_pid<R>(&mut self, sim: &Sim, (op, pid, cpu): (PidTask, u32, u32), f: impl FnOnce(&Cx) -> R) -> R {
        let slot = &mut self.pids[op as usize];
        match slot {
            Some(cx) => cx.renew_for_task(pid, cpu),
            None => *slot = Some(sim.cx_for_task(pid, op.name(), cpu)),
        }
        Self::run_kept(slot, f)
    }

    /// `f` run in the context in `slot` (filled), which stays there only if `f` left it
    /// holding no lock and outside every RCU read-side section.
    fn run_kept<R>(slot: &mut Option<Cx>, f: impl FnOnce(&Cx) -> R) -> R {
        let cx = slot.as_ref().expect("the caller filled the slot");
        let result = f(cx);
        if cx.held_count() != 0 || cx.rcu_read_depth() != 0 {
            *slot = None;
        }
        result
    }
}

/// What operations touched, for the incremental invariant check: the CPUs whose listener lists
/// they may have changed and the thread groups whose stats or ledger they may have changed; and
/// the checker's copy of the groups that have stats, kept up to date over the touched groups.
#[derive(Debug, Default)]
struct Touched {
    /// A bit per CPU.
    cpus: u64,
    /// Thread group ids, ascending, each once (a short list: an operation touches one or two).
    tgids: Vec<u32>,
    /// [`Taskstats::groups_with_stats`] as of the last incremental check, ascending (a sorted
    /// vector: a few groups, and no tree made and freed per case); None before the first,
    /// which reads it whole (not at set-up: threaded runs, which share the subject and check
    /// only whole, would see the reads' lock steps in their schedules).
    with_stats: Option<Vec<u32>>,
    /// The buffer the check reads the touched groups' leaders into; empty between checks, kept
    /// for its room (so is `tgids`'s), so an operation's check allocates nothing for them.
    leaders: Vec<Arc<Task>>,
    /// The incremental check's observer context ("check_invariants"), kept and renewed in
    /// place ([`observer_in`]). Boxed: a context is large (its held-lock stack is inline), and
    /// the record is made and dropped with the subject.
    check_observer: Option<Box<Cx>>,
}

/// The observer `name` kept in `slot`, renewed as [`Sim::observer_cx`] would make it now (on
/// CPU 0), or made the first time; it stays in the slot (nothing taken out and put back).
fn observer_in<'a>(slot: &'a mut Option<Box<Cx>>, sim: &Sim, name: &str) -> &'a Cx {
    match slot {
        Some(cx) => {
            cx.renew(0);
            cx
        }
        None => slot.insert(Box::new(sim.observer_cx(name, 0))),
    }
}

/// Which driver a request runs under, which decides how often its port is read.
#[derive(Debug)]
enum PortLook {
    /// The op-level driver picked the port and read its socket (identity and credentials) and
    /// queue length in one look ([`Taskstats::port_pick_socket`]); nothing else runs, so
    /// neither the driver nor netlink_request() reads them again.
    OpLevel(Arc<Socket>, usize),
    /// A threaded campaign claimed the port: its state is read as the request starts, and its
    /// queue again after the call (other tasks' exits may queue events meanwhile).
    Threaded,
}

/// The messages a request call delivered (`replies`, then `last`) cut to those addressed to
/// `port`, and the ack taken out of them: the last such message (`last` if it is one, else the
/// last of the others).
fn ack_apart(replies: &mut Replies, last: Option<Vec<u8>>, port: u32) -> Option<Vec<u8>> {
    let ours = |m: &[u8]| NlMsgHdr::parse(m).is_some_and(|h| h.pid == port);
    replies.retain(|m| ours(m));
    match last {
        Some(last) if ours(&last) => Some(last),
        _ => replies.pop(),
    }
}

fn pick<T: Copy>(items: &[T], index: u8) -> Option<T> {
    (!items.is_empty()).then(|| items[usize::from(index) % items.len()])
}

impl TaskstatsSubject {
    /// The touched record; a poisoned lock means a checker panicked already, and its record is
    /// still the best there is.
    fn touched(&self) -> std::sync::MutexGuard<'_, Touched> {
        self.touched.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The slot of [`Subject::apply`]'s kept contexts, reached without a lock.
    fn kept(&mut self) -> &mut Option<Box<Kept>> {
        self.kept.get_mut().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Records that the coming exit of `task` touches its group and the listener list of the
    /// CPU it is on (where the exit delivers and prunes).
    fn touch(&self, task: &Task) {
        let mut touched = self.touched();
        Self::add_group(&mut touched, task.tgid);
        touched.cpus |= 1u64.checked_shl(task.cpu()).unwrap_or(0);
        self.touched_pending.store(true, std::sync::atomic::Ordering::Release);
    }

    /// Records that the coming or finished operation touches group `tgid` (a fork or a reap:
    /// its stats and ledger, no listener list).
    fn touch_group(&self, tgid: u32) {
        Self::add_group(&mut self.touched(), tgid);
        self.touched_pending.store(true, std::sync::atomic::Ordering::Release);
    }

    /// `tgid` into the record's ascending list of groups, once.
    fn add_group(touched: &mut Touched, tgid: u32) {
        if let Err(at) = touched.tgids.binary_search(&tgid) {
            touched.tgids.insert(at, tgid);
        }
    }

    /// [`Self::touch`] of task `pid` as `observer` finds it (nothing for a task not in the table).
    fn touch_pid(&self, observer: &Cx, pid: u32) {
        if let Some(task) = self.model.task(observer, pid) {
            self.touch(&task);
        }
    }

    /// The task `index` picks among the tasks `wanted` accepts, by ascending pid, modulo their
    /// number (what indexing a list of their pids picks), in one look at the task table: a walk
    /// that counts the candidates and one to the pick, both over the pid-ordered vector
    /// ([`TaskTable::by_pid`](crate::task::TaskTable::by_pid)), not the tree. (Gathering the
    /// candidates in one walk into a `SmallVec` cost 42 instructions an operation more; noting
    /// the first 32 candidates' places in a plain `[u16; 32]` and reading the pick at its place
    /// cost 3 more, session 25.)
    fn pick_task(&self, observer: &Cx, index: u8, wanted: impl Fn(&Task) -> bool) -> Option<Arc<Task>> {
        self.model.with_task_table(observer, |table| {
            let count = table.by_pid().filter(|t| wanted(t)).count();
            let nth = usize::from(index) % count.max(1);
            table.by_pid().filter(|t| wanted(t)).nth(nth).cloned()
        })
    }

    /// The CPUs whose lists `op` may change by what it names (an exit's CPU is recorded when
    /// the driver picks the task): a registration's mask, every CPU for raw bytes (which may
    /// spell any request).
    fn op_cpus(op: &Op) -> u64 {
        match op {
            Op::Register { mask, .. } | Op::Deregister { mask, .. } => Self::mask_cpus(mask),
            Op::Raw { .. } => u64::MAX,
            _ => 0,
        }
    }

    /// What the next incremental check after `op` (just applied) looks at: the CPUs whose
    /// lists it reads (a bit each) and the thread groups, ascending. For the test that every
    /// list and group an operation changes is among them (`tests/tests/taskstats/incremental.rs`).
    pub fn incremental_scope(&self, op: &Op) -> (u64, Vec<u32>) {
        let touched = self.touched();
        (touched.cpus | Self::op_cpus(op), touched.tgids.clone())
    }

    /// The CPUs a REGISTER or DEREGISTER with `mask` may change the lists of (all, for odd
    /// text or a reversed range, whose parse the model decides).
    fn mask_cpus(mask: &MaskSpec) -> u64 {
        match mask {
            MaskSpec::Cpus(bits) => u64::from(*bits),
            MaskSpec::Range(a, b) if a <= b => (*a..=*b).fold(0, |cpus, cpu| cpus | 1 << cpu),
            MaskSpec::Range(..) | MaskSpec::Odd(_) => u64::MAX,
        }
    }

    /// The facts a request on `port` depends on, the number the query's target has in the
    /// requester's pid namespace, and the task that sends on the port (pid and CPU; None when
    /// the port is closed or its process has no live thread, as [`Taskstats::port_sender`]),
    /// read through `observer` in one look at the port and one at the task table.
    /// The port's state is the op-level driver's look, or read here for a threaded request.
    fn facts(
        &self,
        observer: &Cx,
        (port, look): (u32, &PortLook),
        target: Option<&Target>,
        fd: Option<u8>,
    ) -> (RequestFacts, u32, Option<(u32, u32)>) {
        let state = match look {
            PortLook::OpLevel(socket, queued) => Some((socket.port.owner_tgid, *queued, socket.port.open)),
            PortLook::Threaded => self.model.port_state(observer, port),
        };
        let (owner, queued, open) = state.unwrap_or((0, 0, false));
        let pid_namespaces = self.model.fixes().on(crate::fixes::PID_NAMESPACES);
        let (facts, nr, current) = self.model.with_task_table(observer, |table| {
            // The process's lowest live thread speaks for it.
            let current = table.by_pid().find(|t| t.tgid == owner && t.exit_state() == ExitState::None);
            let mut facts = RequestFacts {
                capable: current.is_some_and(|t| t.cap_net_admin && t.user_ns == 0),
                init_ns: current.is_some_and(|t| t.user_ns == 0 && t.pid_ns() == 0),
                target_exists: false,
                fd_is_cgroup: None,
                queued,
                target_pid: None,
            };
            let ns = match (current, pid_namespaces) {
                (Some(t), true) => t.pid_ns(),
                _ => 0,
            };
            // A query picks among live tasks and zombies: every task in the table, by pid.
            let nr = match target {
                Some(Target::Task(i)) if !table.tasks.is_empty() => {
                    let task = table.nth_by_pid(usize::from(*i) % table.tasks.len());
                    task.map_or(0, |t| crate::task::nr_in(&t.numbers, ns))
                }
                Some(Target::Nr(n)) => *n,
                _ => 0,
            };
            if target.is_some() && nr != 0 {
                // The task whose number in `ns` is `nr` (one lookup in the initial namespace).
                facts.target_pid = table.find_by_nr_ns(nr, ns).map(|t| t.pid);
                facts.target_exists = facts.target_pid.is_some();
            }
            // What the fd is in the requester's file table (as [`Taskstats::fd_kind`] reads it).
            if let (Some(fd), Some(t)) = (fd, current) {
                facts.fd_is_cgroup = table.fd_is_cgroup(t.tgid, u32::from(fd));
            }
            (facts, nr, current.map(|t| (t.pid, t.cpu())))
        });
        let sender = current.filter(|_| open);
        (facts, nr, sender)
    }

    /// One TASKSTATS/CGROUPSTATS request on the `port`-th open port, sent by that port's
    /// process, with the target's number and the fd filled in.
    #[allow(clippy::too_many_arguments)]
    fn request(
        &self,
        sim: &Sim,
        (observer, drivers): (&Cx, &mut DriverCxs),
        port: u8,
        attrs: &[(u16, &[u8])],
        cmd: u8,
        target: Option<&Target>,
        fd: Option<u8>,
    ) -> Outcome {
        // The port, its socket and queue in one look (facts() and netlink_request() would each
        // look again).
        let Some((socket, queued)) = self.model.port_pick_socket(observer, port) else {
            return Outcome::Done;
        };
        let port = socket.port.id;
        let look = (port, PortLook::OpLevel(socket, queued));
        self.request_on(sim, (observer, drivers), look, attrs, cmd, target, fd)
    }

    /// [`Self::request`] on the open port `port` (threaded campaigns pick and claim it first),
    /// found by the driver `look` names.
    #[allow(clippy::too_many_arguments)]
    fn request_on(
        &self,
        sim: &Sim,
        (observer, drivers): (&Cx, &mut DriverCxs),
        (port, look): (u32, PortLook),
        attrs: &[(u16, &[u8])],
        cmd: u8,
        target: Option<&Target>,
        fd: Option<u8>,
    ) -> Outcome {
        let (mut facts, nr, sender) = self.facts(observer, (port, &look), target, fd);
        // The message built in one buffer, the query's target number and the fd filled in.
        let mut msg = MsgBuilder::genlmsg_put_into(
            REQUEST_BYTES.take(),
            (TASKSTATS_FAMILY_ID, NLM_F_REQUEST | NLM_F_ACK, 7, port),
            cmd,
            TASKSTATS_GENL_VERSION,
        );
        for &(kind, payload) in attrs {
            if (kind == TASKSTATS_CMD_ATTR_PID || kind == TASKSTATS_CMD_ATTR_TGID) && target.is_some() {
                msg.nla_put(kind, &nr.to_le_bytes());
            } else if kind == CGROUPSTATS_CMD_ATTR_FD && fd.is_some() {
                msg.nla_put(kind, &u32::from(fd.unwrap_or(0)).to_le_bytes());
            } else {
                msg.nla_put(kind, payload);
            }
        }
        let bytes = msg.finish();
        let faults_before = sim.faults_failed();
        // The messages the call delivered, the last apart (an ack alone needs no vector).
        let (mut replies, last) = match (sender, &look) {
            // The driver's look at the socket is netlink_request()'s, through the same observer.
            (Some((pid, cpu)), PortLook::OpLevel(socket, queued)) => {
                drivers.as_pid(sim, (PidTask::Sendmsg, pid, cpu), |cx| {
                    self.model.netlink_request_seen(cx, observer, Some((socket, *queued)), port, &bytes)
                })
            }
            (Some((pid, cpu)), PortLook::Threaded) => {
                let mut delivered = drivers.as_pid(sim, (PidTask::Sendmsg, pid, cpu), |cx| {
                    self.model.netlink_request(cx, port, &bytes)
                });
                let last = delivered.pop();
                (Replies::from_vec(delivered), last)
            }
            (None, _) => (Replies::new(), None),
        };
        REQUEST_BYTES.set(bytes);
        let faulted = sim.faults_failed() != faults_before;
        // Only the messages addressed to this request (nlmsg_pid is the requester's port; exit
        // events carry 0); threaded, another task's exit may queue events meanwhile, and the
        // queue may grow while the request runs (no recvmsg(2) on the port can overlap it).
        // In the op-level run nothing else runs, netlink_request() takes back every message
        // the call queued, and an exit that preempts a query never delivers to its port (see
        // `preempted_query`): the queue is as long as before, and no second look is taken.
        let ack = ack_apart(&mut replies, last, port);
        if matches!(look, PortLook::Threaded) {
            facts.queued = facts.queued.max(self.model.port_owner(observer, port).map_or(0, |p| p.1));
        }
        let error = ack.and_then(|ack| {
            let hdr = NlMsgHdr::parse(&ack);
            let error = hdr.filter(|hdr| hdr.kind == NLMSG_ERROR).map(|_| u32_at(&ack, NLMSG_HDRLEN) as i32);
            // Read: its buffer is the next ack's (no allocation per ack).
            spare_ack(ack);
            error
        });
        // A dropped ack (full queue) hides whether a registration happened: the lists decide.
        let lists_after = (faulted || error.is_none()).then(|| lists_of(&self.model, observer));
        Outcome::Request { facts, error, replies, port, lists_after }
    }

    #[cfg_attr(not(feature = "threaded"), allow(dead_code))]
    fn live_pids(&self, sim: &Sim) -> Vec<u32> {
        self.model.live_pids(&sim.observer_cx("op", 0))
    }

    #[cfg_attr(not(feature = "threaded"), allow(dead_code))]
    fn port_ids(&self, sim: &Sim) -> Vec<u32> {
        self.model.port_ids(&sim.observer_cx("op", 0))
    }

    /// The task operations: fork, run, scheduler changes, open(2), socket(2), sigaction(2).
    fn apply_task_op(&self, sim: &Sim, (observer, drivers): (&Cx, &mut DriverCxs), op: &Op) -> Outcome {
        // The task's own context's name; None: the scheduler's named task runs it.
        let (task, name) = match op {
            Op::Fork { parent, .. } => (*parent, Some(PidTask::Fork)),
            Op::Run { task } => (*task, Some(PidTask::Run)),
            Op::OpenFile { task, .. } => (*task, Some(PidTask::Open)),
            Op::OpenPort { task } => (*task, Some(PidTask::Socket)),
            Op::SigactionSigchld { task, .. } => (*task, Some(PidTask::Sigaction)),
            Op::SetState { task, .. } | Op::Migrate { task, .. } | Op::Attach { task, .. } => (*task, None),
            _ => unreachable!("apply_task_op is called for task operations only"),
        };
        let Some(task) = self.pick_task(observer, task, |t| t.exit_state() == ExitState::None) else {
            return if matches!(op, Op::OpenPort { .. }) { Outcome::Port(None) } else { Outcome::Done };
        };
        let pid = task.pid;
        let run = |cx: &Cx| self.task_op_as(cx, &task, op);
        match name {
            None => drivers.as_named(sim, DriverTask::Sched, run),
            Some(name) => drivers.as_pid(sim, (name, pid, task.cpu()), run),
        }
    }

    /// Task operation `op` run by `task` in `cx` (its context, or the scheduler's).
    fn task_op_as(&self, cx: &Cx, task: &Task, op: &Op) -> Outcome {
        let pid = task.pid;
        match op {
            Op::Fork { kind, .. } => {
                // A thread joins the parent's group (its stats may be allocated, or freed by a
                // failed fork, in 2.6.19); any other child leads a new group whose tgid is its
                // own pid, and copy_process() leaves the parent's group alone (a new
                // signal_struct, no stats).
                let thread = *kind == ForkKind::Thread;
                if thread {
                    self.touch_group(task.tgid);
                }
                let forked = self.model.fork(cx, *kind);
                if let (Ok(child), false) = (&forked, thread) {
                    self.touch_group(*child);
                }
                return Outcome::Forked(forked);
            }
            Op::Run { .. } => {
                // The counters as the run's siglock section found and left them (a task that is
                // no one's `current` any more ran nothing: no work).
                let work = self.model.run_accounted(cx).unwrap_or_default();
                return Outcome::Ran { pid, work };
            }
            Op::SetState { state, .. } => self.model.set_task(cx, pid, Some(*state), None, None),
            Op::Migrate { cpu, .. } => self.model.set_task(cx, pid, None, None, Some(u32::from(*cpu))),
            Op::Attach { cgroup, .. } => self.model.set_task(cx, pid, None, Some(usize::from(*cgroup)), None),
            Op::OpenFile { cgroup, .. } => {
                self.model.open_file(cx, cgroup.map(usize::from));
            }
            Op::OpenPort { .. } => return Outcome::Port(self.model.open_port(cx)),
            Op::SigactionSigchld { ignore, .. } => {
                self.model.sigaction_sigchld(cx, *ignore);
            }
            _ => {}
        }
        Outcome::Done
    }

    /// do_exit() of a live task other than init (it reaps and owns the world).
    fn apply_exit(&self, sim: &Sim, (observer, drivers): (&Cx, &mut DriverCxs), task: u8) -> Outcome {
        let wanted = |t: &Task| t.exit_state() == ExitState::None && t.pid != 1;
        let Some(task) = self.pick_task(observer, task, wanted) else {
            return Outcome::Done;
        };
        self.touch(&task);
        let exit = |cx: &Cx| exit_outcome(sim, &self.model, cx, self.clone_attr);
        drivers.as_pid(sim, (PidTask::DoExit, task.pid, task.cpu()), exit)
    }

    /// A PID query whose requester is preempted at its first preemption point while the task
    /// `which` picks runs do_exit() (see [`Op::QueryPid`]): both outcomes, in the order they
    /// finished. The candidates are live tasks other than init and the requester whose exit
    /// record does not go to the requester's port (its CPU's list does not hold the port): the
    /// request reads its port after the call, so it would drain that record with its reply.
    fn preempted_query(
        &self,
        sim: &Sim,
        (observer, drivers): (&Cx, &mut DriverCxs),
        op: &Op,
        which: u8,
    ) -> Outcome {
        let Op::QueryPid { port, target, .. } = op else {
            unreachable!("preempted_query is called for PID queries only")
        };
        let plain = Op::QueryPid { port: *port, target: target.clone(), preempt: None };
        let port_id = self.model.port_pick(observer, *port);
        let requester = port_id.and_then(|id| self.model.port_sender(observer, id)).map(|(pid, _)| pid);
        // The CPUs whose lists hold the port, one look at each list; then the candidates in
        // one look at the task table (live tasks by pid, each on its CPU).
        let hearing: u64 = (0..self.model.params().cpus)
            .filter(|&cpu| self.model.listeners(observer, cpu).iter().any(|&(p, _)| Some(p) == port_id))
            .fold(0, |cpus, cpu| cpus | 1 << cpu);
        let hears = |task: &Task| hearing & 1u64.checked_shl(task.cpu()).unwrap_or(0) != 0;
        let candidates: Vec<u32> = self.model.with_task_table(observer, |table| {
            let live = table.by_pid().filter(|t| t.exit_state() == ExitState::None);
            live.filter(|t| t.pid != 1 && Some(t.pid) != requester && !hears(t)).map(|t| t.pid).collect()
        });
        let Some(victim) = pick(&candidates, which) else {
            return self.apply_request_seen(sim, (observer, drivers), &plain, None);
        };
        self.touch_pid(observer, victim);
        let slot = std::sync::Arc::new(std::sync::Mutex::new(None));
        let filled = slot.clone();
        let clone_attr = self.clone_attr;
        self.model.preempt_at_next_point(Preemption::new(move |model, cx| {
            let exited = exit_outcome(
                cx.sim(),
                model,
                &task_cx(cx.sim(), model, victim, PidTask::DoExit.name()),
                clone_attr,
            );
            *filled.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = Some(exited);
        }));
        let request = self.apply_request_seen(sim, (observer, drivers), &plain, None);
        let exit = Op::Exit { task: which };
        if self.model.preemption_not_taken().is_some() {
            let victim_cx = task_cx(sim, &self.model, victim, PidTask::DoExit.name());
            let exited = exit_outcome(sim, &self.model, &victim_cx, self.clone_attr);
            return Outcome::Interleaved(vec![(plain, request), (exit, exited)]);
        }
        let exited = slot.lock().unwrap_or_else(std::sync::PoisonError::into_inner).take();
        let exited = exited.unwrap_or(Outcome::Done);
        Outcome::Interleaved(vec![(exit, exited), (plain, request)])
    }

    /// The port operations that are not requests: close(2), recvmsg(2), raw bytes.
    fn apply_port_op(&self, sim: &Sim, (observer, drivers): (&Cx, &mut DriverCxs), op: &Op) -> Outcome {
        match op {
            Op::ClosePort { port } => {
                let id = self.model.port_pick(observer, *port);
                if let Some(id) = id {
                    drivers.as_named(sim, DriverTask::Close, |cx| self.model.close_port(cx, id));
                }
                Outcome::Closed(id)
            }
            Op::Recv { port } => {
                // The reader's socket as the pick holds it (its fd's), read on with no lookup.
                let socket = self.model.port_pick_socket(observer, *port).map(|(socket, _)| socket);
                let recv = |socket: &Socket| {
                    drivers.as_named(sim, DriverTask::Recvmsg, |cx| self.model.recv_count_on(cx, socket))
                };
                let received = socket.as_deref().map_or(0, recv);
                Outcome::Received(socket.map(|socket| socket.port.id), received)
            }
            Op::Raw { port, bytes } => {
                // As a request: the pick's look at the socket and the driver's observer are
                // netlink_request()'s (nothing runs in between).
                if let Some((socket, queued)) = self.model.port_pick_socket(observer, *port) {
                    let id = socket.port.id;
                    if let Some((pid, cpu)) = self.model.port_sender(observer, id) {
                        drivers.as_pid(sim, (PidTask::Sendmsg, pid, cpu), |cx| {
                            self.model.netlink_request_seen(cx, observer, Some((&socket, queued)), id, bytes)
                        });
                    }
                }
                Outcome::Done
            }
            _ => unreachable!("apply_port_op is called for port operations only"),
        }
    }

    /// The generic-netlink requests the reference model judges, on port id `on` when given
    /// (threaded campaigns pick and claim the port first) instead of the op's `port`-th open port.
    #[cfg_attr(not(feature = "threaded"), allow(dead_code))]
    fn apply_request_on(&self, sim: &Sim, op: &Op, on: Option<u32>) -> Outcome {
        self.apply_request_seen(sim, (&sim.observer_cx("op", 0), &mut DriverCxs::default()), op, on)
    }

    /// [`Self::apply_request_on`], the model read through the caller's `observer`.
    fn apply_request_seen(
        &self,
        sim: &Sim,
        seen: (&Cx, &mut DriverCxs),
        op: &Op,
        on: Option<u32>,
    ) -> Outcome {
        if let (Op::QueryPid { preempt: Some(which), .. }, None) = (op, on) {
            return self.preempted_query(sim, seen, op, *which);
        }
        let (port, attr, mask, cmd, target, fd) = match op {
            Op::Register { port, mask } => {
                (port, TASKSTATS_CMD_ATTR_REGISTER_CPUMASK, Some(mask), TASKSTATS_CMD_GET, None, None)
            }
            Op::Deregister { port, mask } => {
                (port, TASKSTATS_CMD_ATTR_DEREGISTER_CPUMASK, Some(mask), TASKSTATS_CMD_GET, None, None)
            }
            Op::QueryPid { port, target, .. } => {
                (port, TASKSTATS_CMD_ATTR_PID, None, TASKSTATS_CMD_GET, Some(target), None)
            }
            Op::QueryTgid { port, target } => {
                (port, TASKSTATS_CMD_ATTR_TGID, None, TASKSTATS_CMD_GET, Some(target), None)
            }
            Op::CgroupStats { port, fd, .. } => {
                (port, CGROUPSTATS_CMD_ATTR_FD, None, CGROUPSTATS_CMD_GET, None, Some(*fd))
            }
            _ => unreachable!("apply_request is called for requests only"),
        };
        // A cpumask's text, or four zero bytes (a number filled in when the message is built).
        let text = mask.map(MaskSpec::text);
        let payload = text.as_deref().unwrap_or(&[0; 4]);
        let extra = match op {
            Op::CgroupStats { extra: Some(kind), .. } => Some(u16::from(*kind)),
            _ => None,
        };
        let both = [(attr, payload), (extra.unwrap_or(0), &[0; 4][..])];
        let attrs = &both[..if extra.is_some() { 2 } else { 1 }];
        match on {
            Some(id) => self.request_on(sim, seen, (id, PortLook::Threaded), attrs, cmd, target, fd),
            None => self.request(sim, seen, *port, attrs, cmd, target, fd),
        }
    }
}

impl Subject for TaskstatsSubject {
    const NAME: &'static str = "taskstats";
    type Config = TaskstatsConfig;
    type Op = Op;
    type Outcome = Outcome;
    type Reference = TaskstatsModel;

    fn sim_config(config: &TaskstatsConfig, seed: u64) -> SimConfig {
        SimConfig::new(seed).cpus(config.params.cpus.clamp(1, NR_CPUS))
    }

    /// The model keeps its fixes and parameters; the subject keeps no copy of the configuration
    /// (a clone and a drop of its preset, parameters and fault plan each case: about 600
    /// instructions a case, callgrind).
    fn new(sim: &Sim, config: &TaskstatsConfig) -> Self {
        sim.set_faults(config.faults.clone());
        TaskstatsSubject {
            model: Taskstats::new(sim, config.fixes, config.params.clone()),
            touched: std::sync::Mutex::default(),
            touched_pending: std::sync::atomic::AtomicBool::new(true),
            kept: std::sync::Mutex::default(),
            clone_attr: has_clone_attr(&config.faults),
        }
    }

    fn op_strategy(config: &TaskstatsConfig) -> BoxedStrategy<Op> {
        op::op_strategy(config)
    }

    fn op_gen(config: &TaskstatsConfig) -> Option<sim_core::gen::OpGen<Op>> {
        Some(op::generator(config))
    }

    fn apply(&mut self, sim: &Sim, op: &Op) -> Outcome {
        // The kept observer, reached without a lock: `&mut self` is this thread's alone.
        let mut kept = match self.kept().take() {
            Some(mut kept) => {
                kept.observer.renew(0);
                kept
            }
            None => Box::new(Kept { observer: sim.observer_cx("op", 0), drivers: DriverCxs::default() }),
        };
        let Kept { observer, drivers } = &mut *kept;
        let outcome = self.apply_seen(sim, (observer, drivers), op);
        *self.kept() = Some(kept);
        // A grace period ends between operations: deferred frees and puts (pid hash versions,
        // delayed_put_task_struct) run on the "rcu" task.
        sim.rcu_advance();
        outcome
    }

    fn check_invariants(&self, sim: &Sim) -> Result<(), Violation> {
        self.model.check_invariants(sim)
    }

    /// The invariants over what the operations since the last incremental check touched (the
    /// whole check between leaves the record alone, so nothing is missed): the listener lists
    /// of the CPUs a registration named or an exit ran on, the groups a fork, exit or reap
    /// touched, and the stats objects against the checker's copy of the groups with stats,
    /// brought up to date over those groups.
    fn check_invariants_incremental(&self, sim: &Sim, op: &Op) -> Result<(), Violation> {
        // Nothing recorded since the last check and no CPU named: the check below would make
        // no observer and read nothing (its model check returns the untouched ledger's `Ok`).
        let op_cpus = Self::op_cpus(op);
        if op_cpus == 0 && !self.touched_pending.load(std::sync::atomic::Ordering::Acquire) {
            return Ok(());
        }
        // One look at the record for the whole check: only threaded runs record from other
        // threads, and they check whole.
        let mut record = self.touched();
        self.touched_pending.store(false, std::sync::atomic::Ordering::Release);
        let touched = &mut *record;
        let cpus = std::mem::take(&mut touched.cpus) | op_cpus;
        let first = touched.with_stats.is_none();
        // Most operations touch nothing: then no observer context is made (a tenth of the
        // check's cost); otherwise one serves the whole check (the kept one, renewed).
        let cx = (first || cpus != 0 || !touched.tgids.is_empty())
            .then(|| observer_in(&mut touched.check_observer, sim, "check_invariants"));
        let mut ledger = Ok(());
        if let Some(cx) = &cx {
            let groups = touched.with_stats.get_or_insert_with(|| self.model.groups_with_stats(cx));
            if !touched.tgids.is_empty() {
                // The touched groups' leaders in one look at the task table, then one look
                // under each one's siglock: the copy's update and the ledger check.
                self.model.leaders_of(cx, &touched.tgids, &mut touched.leaders);
                groups.retain(|tgid| touched.tgids.binary_search(tgid).is_err());
                ledger = self.model.check_touched_leaders(cx, &touched.leaders, |tgid| {
                    if let Err(at) = groups.binary_search(&tgid) {
                        groups.insert(at, tgid);
                    }
                });
            }
        }
        // The buffers emptied, kept for their room (an operation's check allocates nothing).
        touched.leaders.clear();
        touched.tgids.clear();
        let groups_with_stats = touched.with_stats.as_ref().map_or(0, Vec::len);
        // The record stays locked across the model's check, which takes the model's own locks
        // (never this std mutex, checker state outside every model lock): only threaded runs
        // record from other threads, and they do not run this check, so no one waits on it.
        self.model.check_invariants_touched(cx, cpus, ledger, groups_with_stats)
    }

    fn teardown(self, sim: &Sim) -> Result<(), Violation> {
        self.model.teardown(sim)
    }

    /// An edited artifact's parameters, refused with one line when the model cannot represent
    /// them (see [`Params::bounds_error`]): more CPUs than a mask holds, no room even for init,
    /// more tasks than pids, an audited fix that does not exist.
    fn check_config(config: &TaskstatsConfig) -> Result<(), String> {
        config.params.bounds_error().map_or(Ok(()), Err)
    }
}

impl TaskstatsSubject {
    /// Applies one operation through `&self` (every model entry point takes `&self` and the
    /// caller's `Cx`), with one observer context, the caller's, for everything the driver reads
    /// for this operation, and the caller's kept contexts of the driver's named tasks.
    fn apply_seen(&self, sim: &Sim, (observer, drivers): (&Cx, &mut DriverCxs), op: &Op) -> Outcome {
        let live = |t: &Task| t.exit_state() == ExitState::None;
        match op {
            Op::Fork { .. }
            | Op::Run { .. }
            | Op::SetState { .. }
            | Op::Migrate { .. }
            | Op::Attach { .. }
            | Op::OpenFile { .. }
            | Op::OpenPort { .. }
            | Op::SigactionSigchld { .. } => self.apply_task_op(sim, (observer, drivers), op),
            Op::Exit { task } => self.apply_exit(sim, (observer, drivers), *task),
            Op::Timer { task } => {
                if let Some(task) = self.pick_task(observer, *task, live) {
                    let timer = |cx: &Cx| self.model.it_real_fn(cx);
                    drivers.as_pid(sim, (PidTask::ItRealFn, task.pid, task.cpu()), timer);
                }
                Outcome::Done
            }
            Op::Reap { task } => {
                if let Some(task) = self.pick_task(observer, *task, |t| t.exit_state() == ExitState::Zombie) {
                    self.touch_group(task.tgid);
                    drivers.as_named(sim, DriverTask::ReleaseTask, |cx| self.model.reap(cx, task.pid));
                }
                Outcome::Done
            }
            Op::ClosePort { .. } | Op::Recv { .. } | Op::Raw { .. } => {
                self.apply_port_op(sim, (observer, drivers), op)
            }
            Op::Register { .. }
            | Op::Deregister { .. }
            | Op::QueryPid { .. }
            | Op::QueryTgid { .. }
            | Op::CgroupStats { .. } => self.apply_request_seen(sim, (observer, drivers), op, None),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A kept driver context is the one `Sim::cx` would make (its task, a fresh serial: the
    /// same trace as contexts made anew); one left inside an RCU read-side section is dropped
    /// at once, so the leak is reported there, as for a context made per operation.
    #[test]
    fn a_driver_context_is_kept_renewed_and_dropped_when_left_inside_a_section() {
        let traced = |kept: bool| {
            let sim = Sim::with_seed(3);
            let mut drivers = DriverCxs::default();
            for _ in 0..3 {
                let lock = |cx: &Cx| {
                    cx.rcu_read_lock();
                    cx.rcu_read_unlock();
                    cx.task()
                };
                let task = match kept {
                    true => drivers.as_named(&sim, DriverTask::Close, lock),
                    false => lock(&sim.cx("close", 0)),
                };
                assert_eq!(task, sim.cx("close", 0).task(), "the name's one task");
            }
            assert!(drivers.named[DriverTask::Close as usize].is_some() == kept, "kept once made");
            (sim.trace_hash(), sim.trace().len())
        };
        assert_eq!(traced(true), traced(false), "kept contexts trace as new ones");
        let sim = Sim::with_seed(3);
        let mut drivers = DriverCxs::default();
        drivers.as_named(&sim, DriverTask::Recvmsg, |cx| cx.rcu_read_lock());
        assert!(
            drivers.named[DriverTask::Recvmsg as usize].is_none(),
            "a context left in a section is not kept"
        );
        let kinds: Vec<String> = sim.violations().into_iter().map(|v| v.kind.to_string()).collect();
        assert_eq!(kinds, ["rcu:leaked-read-side"], "its drop reported the section");
    }

    /// A pid context kept per operation name and lent from pid to pid is the one
    /// `Sim::cx_for_task` would make each time (its task, CPU and name, the same lock tokens and
    /// trace names, whether the trace reads names or a confined hash-only one does not), and one
    /// left inside an RCU read-side section is dropped at once, its leak reported there.
    #[test]
    fn a_pid_context_is_lent_from_pid_to_pid_as_a_new_one_would_be() {
        use sim_core::trace::TraceMode;
        let lock = sim_core::SpinLock::new("pid_lock", ());
        for mode in [TraceMode::Full, TraceMode::HashOnly] {
            let traced = |kept: bool| {
                let sim = Sim::new(SimConfig::new(4).cpus(2).trace(mode));
                sim.trace().confine_to_this_thread();
                let mut drivers = DriverCxs::default();
                for (round, pid) in [5u32, 6, 5, 9, 6].into_iter().enumerate() {
                    let (op, cpu) = ([PidTask::Sendmsg, PidTask::DoExit][round % 2], round as u32 % 2);
                    let run = |cx: &Cx| {
                        drop(lock.lock(cx));
                        (cx.task(), cx.name().to_string(), cx.cpu())
                    };
                    let seen = match kept {
                        true => drivers.as_pid(&sim, (op, pid, cpu), run),
                        false => run(&sim.cx_for_task(pid, op.name(), cpu)),
                    };
                    assert_eq!(seen, (pid, op.name().to_string(), cpu), "{mode:?} round {round}");
                }
                (sim.trace_hash(), sim.trace().len(), sim.trace().task_names())
            };
            assert_eq!(traced(true), traced(false), "{mode:?}: lent contexts trace as new ones");
        }
        let sim = Sim::with_seed(3);
        let mut drivers = DriverCxs::default();
        drivers.as_pid(&sim, (PidTask::Fork, 5, 0), |cx| cx.rcu_read_lock());
        assert!(drivers.pids[PidTask::Fork as usize].is_none(), "a context left in a section is not kept");
        let kinds: Vec<String> = sim.violations().into_iter().map(|v| v.kind.to_string()).collect();
        assert_eq!(kinds, ["rcu:leaked-read-side"], "its drop reported the section");
    }

    /// A world built on a thread whose earlier worlds left cells behind (sim-core's
    /// `rcu_hlist` keeps a dropped memory's cells for the thread's next memory of that type:
    /// the pid hash's buckets, pids and upids) runs as one built on a fresh thread, which finds
    /// none: for each of 24 seeds of two presets (faults on), the same trace hash, operations
    /// run, violation and coverage. A failure names the preset and the seed: replay it with
    /// `ksim replay` on a case generated from them.
    #[test]
    fn a_world_on_kept_cells_runs_as_one_on_a_fresh_thread() {
        use sim_core::check::{generate, run_case, RunOptions};
        use sim_core::trace::TraceMode;
        let options = RunOptions { trace: TraceMode::HashOnly, ..RunOptions::default() };
        for preset in ["linux-3.8", "linux-2.6.19"] {
            let config = TaskstatsConfig::contract(preset);
            let run = |seed: u64| {
                let report = run_case::<TaskstatsSubject>(
                    &config,
                    seed,
                    &generate::<TaskstatsSubject>(&config, seed, 120),
                    &options,
                );
                (report.trace_hash, report.ops_run, format!("{:?}", report.violation), report.coverage)
            };
            // Warm: this thread's earlier cases left cells for every later one.
            run(1_000);
            for seed in 0..24 {
                let warm = run(seed);
                let fresh =
                    std::thread::scope(|scope| scope.spawn(|| run(seed)).join().expect("fresh thread"));
                assert_eq!(warm, fresh, "{preset} seed {seed}: a world on kept cells differs from a new one");
            }
        }
    }

    /// pick_task() walks the pid-ordered vector of the task list, not the tree. With
    /// `tasks_max` 64 and 60 tasks, every index over all tasks and over all but init picks what
    /// the plain nth walk of the tree's candidates picks.
    #[test]
    fn pick_task_matches_a_plain_walk_of_the_tree() {
        let mut config = TaskstatsConfig::contract("linux-3.8");
        config.params.tasks_max = 64;
        let sim = Sim::new(TaskstatsSubject::sim_config(&config, 7));
        let subject = TaskstatsSubject::new(&sim, &config);
        // The contract's faults may fail a fork's alloc_pid() (ENOMEM): fork until 59 are made.
        let mut made = 0;
        for _ in 0..200 {
            let forked = subject.model.fork(&task_cx(&sim, &subject.model, 1, "fork"), ForkKind::Process);
            match forked {
                Ok(_) => made += 1,
                Err(errno) => assert_eq!(errno, sim_core::Errno::ENOMEM, "only alloc_pid() may fail"),
            }
            if made == 59 {
                break;
            }
        }
        assert_eq!(made, 59, "room for 60");
        let observer = sim.observer_cx("test", 0);
        type Wanted = fn(&Task) -> bool;
        let filters: [(&str, Wanted); 2] = [("all", |_| true), ("all but init", |t| t.pid != 1)];
        for (name, wanted) in filters {
            let candidates: Vec<u32> = subject.model.with_task_table(&observer, |table| {
                table.tasks.values().filter(|t| wanted(t)).map(|t| t.pid).collect()
            });
            assert!(
                candidates.len() > 50,
                "{name}: {} candidates, the test needs 60 tasks",
                candidates.len()
            );
            for index in 0..=u8::MAX {
                let nth = usize::from(index) % candidates.len();
                let got = subject.pick_task(&observer, index, wanted).map(|t| t.pid);
                assert_eq!(got, Some(candidates[nth]), "{name}: index {index} (candidate {nth})");
            }
        }
    }
}
