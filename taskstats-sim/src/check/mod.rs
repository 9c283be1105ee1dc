//! How the checkers drive the model: [`TaskstatsSubject`] applies the generated operations
//! ([`op`]) to the model and reports what each returned, the reference model
//! ([`reference::TaskstatsModel`]) judges it, and the catalogue ([`catalog`]) lists the zoo and
//! the teaching scenarios ([`scenario`]).
//!
//! Every model entry point takes the caller's `&Cx`; [`task_cx`] and [`sender_cx`] are how a
//! driver (this subject, the scenarios, the CLI, tests and benches) makes the context of the task
//! that runs an operation.

mod catalog;
mod op;
mod reference;
pub(crate) mod scenario;
#[cfg(feature = "threaded")]
mod threaded;

use std::collections::BTreeSet;

use proptest::strategy::BoxedStrategy;
use serde::{Deserialize, Serialize};
use sim_core::check::Subject;
use sim_core::fault::{FaultAttr, FaultKind, FaultPlan};
use sim_core::fixes::FixTableOf;
use sim_core::{Cx, Sim, SimConfig, Violation};

use crate::fixes::{Fixes, TaskstatsFixes};
use crate::taskstats::{Params, Preemption, Taskstats, NR_CPUS};
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

/// (calls, failures) of the clone attribute so far; zero when the plan has none.
fn clone_counters(sim: &Sim) -> (u64, u64) {
    let plan = sim.faults();
    plan.attrs
        .get(CLONE_ATTR)
        .filter(|a| a.site.as_deref() == Some("skb_clone"))
        .map_or((0, 0), |a| (a.count, a.failed))
}

/// The context of task `pid` running operation `name` on the CPU the task is on (CPU 0 for a
/// task the model does not know): what a driver hands to a model entry point.
pub fn task_cx(sim: &Sim, model: &Taskstats, pid: u32, name: &str) -> Cx {
    let cpu = model.task(&sim.observer_cx("task_cx", 0), pid).map_or(0, |t| t.cpu);
    sim.cx_for_task(pid, name, cpu)
}

/// The context of the task that sends on port `port` (see [`Taskstats::port_sender`]); None
/// when the port is not open or its process has no live thread.
pub fn sender_cx(sim: &Sim, model: &Taskstats, port: u32) -> Option<Cx> {
    let (pid, cpu) = model.port_sender(&sim.observer_cx("sender_cx", 0), port)?;
    Some(sim.cx_for_task(pid, "sendmsg", cpu))
}

/// sendmsg(2) of `bytes` on port `port` by its process (see [`sender_cx`]): the messages the
/// call delivered to the port, nothing when the port has no live sender.
pub fn netlink_send(sim: &Sim, model: &Taskstats, port: u32, bytes: &[u8]) -> Vec<Vec<u8>> {
    sender_cx(sim, model, port).map(|cx| model.netlink_request(&cx, port, bytes)).unwrap_or_default()
}

/// The listener lists of `model`, head first, as an observer reads them.
fn lists_of(sim: &Sim, model: &Taskstats) -> Vec<Vec<u32>> {
    let cx = sim.observer_cx("lists", 0);
    (0..model.params().cpus)
        .map(|cpu| model.listeners(&cx, cpu).into_iter().map(|(p, _)| p).collect())
        .collect()
}

/// do_exit() of live task `pid` and what the checker saw of it: the report, the clones the fault
/// injector counted, and the lists when another fault struck.
fn exit_outcome(sim: &Sim, model: &Taskstats, pid: u32) -> Outcome {
    let faults_before = sim.faults().failed();
    let clones_before = clone_counters(sim);
    let Some(report) = model.exit(&task_cx(sim, model, pid, "do_exit")) else {
        return Outcome::Done;
    };
    let clones_after = clone_counters(sim);
    let clone_failed = clones_after.1 > clones_before.1;
    let other_faults = sim.faults().failed() - faults_before - (clones_after.1 - clones_before.1);
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
    config: TaskstatsConfig,
    /// What the operations since the last incremental check touched (checker state, behind a
    /// std lock so that threaded runs, which share the subject, may record it too).
    touched: std::sync::Mutex<Touched>,
}

/// What operations touched, for the incremental invariant check: the CPUs whose listener lists
/// they may have changed and the thread groups whose stats or ledger they may have changed; and
/// the checker's copy of the groups that have stats, kept up to date over the touched groups.
#[derive(Debug, Default)]
struct Touched {
    /// A bit per CPU.
    cpus: u64,
    /// Thread group ids.
    tgids: BTreeSet<u32>,
    /// [`Taskstats::groups_with_stats`] as of the last incremental check; None before the first,
    /// which reads it whole (not at set-up: threaded runs, which share the subject and check
    /// only whole, would see the reads' lock steps in their schedules).
    with_stats: Option<BTreeSet<u32>>,
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

    /// Records that the coming or finished operation touches task `pid`'s group and the
    /// listener list of the CPU it is on (where its exit delivers and prunes).
    fn touch(&self, sim: &Sim, pid: u32) {
        let Some(task) = self.model.task(&sim.observer_cx("touch", 0), pid) else { return };
        let mut touched = self.touched();
        touched.tgids.insert(task.tgid);
        touched.cpus |= 1u64.checked_shl(task.cpu).unwrap_or(0);
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

    /// The facts a request's errno depends on, read through an observer context, and the
    /// number the query's target has in the requester's pid namespace.
    fn facts(&self, sim: &Sim, port: u32, target: Option<&Target>, fd: Option<u8>) -> (RequestFacts, u32) {
        let cx = sim.observer_cx("facts", 0);
        let live = self.model.live_pids(&cx);
        let p = self.model.port_owner(&cx, port).unwrap_or((0, 0));
        let current =
            live.iter().copied().find(|&pid| self.model.task(&cx, pid).is_some_and(|t| t.tgid == p.0));
        let current = current.and_then(|pid| self.model.task(&cx, pid));
        let mut facts = RequestFacts {
            capable: current.as_ref().is_some_and(|t| t.cap_net_admin && t.user_ns == 0),
            init_ns: current.as_ref().is_some_and(|t| t.user_ns == 0 && t.pid_ns() == 0),
            target_exists: false,
            fd_is_cgroup: None,
            queued: p.1,
            target_pid: None,
        };
        let ns = match (&current, self.config.fixes.on(crate::fixes::PID_NAMESPACES)) {
            (Some(t), true) => t.pid_ns(),
            _ => 0,
        };
        let mut nr = 0;
        if let Some(target) = target {
            let mut all = live.clone();
            all.extend(self.model.zombie_pids(&cx));
            all.sort_unstable();
            nr = match target {
                Target::Task(i) => pick(&all, *i).map_or(0, |pid| self.model.task_nr_in(&cx, pid, ns)),
                Target::Nr(n) => *n,
            };
            facts.target_pid =
                all.iter().copied().find(|&pid| nr != 0 && self.model.task_nr_in(&cx, pid, ns) == nr);
            facts.target_exists = facts.target_pid.is_some();
        }
        if let (Some(fd), Some(t)) = (fd, &current) {
            facts.fd_is_cgroup = self.model.fd_kind(&cx, t.tgid, u32::from(fd));
        }
        (facts, nr)
    }

    /// One TASKSTATS/CGROUPSTATS request on the `port`-th open port, sent by that port's
    /// process, with the target's number and the fd filled in.
    fn request(
        &self,
        sim: &Sim,
        port: u8,
        attrs: Vec<(u16, Vec<u8>)>,
        cmd: u8,
        target: Option<&Target>,
        fd: Option<u8>,
    ) -> Outcome {
        let Some(port) = pick(&self.port_ids(sim), port) else {
            return Outcome::Done;
        };
        self.request_on(sim, port, attrs, cmd, target, fd)
    }

    /// [`Self::request`] on the open port `port` (threaded campaigns pick and claim it first).
    fn request_on(
        &self,
        sim: &Sim,
        port: u32,
        attrs: Vec<(u16, Vec<u8>)>,
        cmd: u8,
        target: Option<&Target>,
        fd: Option<u8>,
    ) -> Outcome {
        let (mut facts, nr) = self.facts(sim, port, target, fd);
        let mut attrs = attrs;
        for (kind, payload) in attrs.iter_mut() {
            if (*kind == TASKSTATS_CMD_ATTR_PID || *kind == TASKSTATS_CMD_ATTR_TGID) && target.is_some() {
                *payload = nr.to_le_bytes().to_vec();
            }
            if *kind == CGROUPSTATS_CMD_ATTR_FD && fd.is_some() {
                *payload = u32::from(fd.unwrap_or(0)).to_le_bytes().to_vec();
            }
        }
        let bytes = request(TASKSTATS_FAMILY_ID, NLM_F_REQUEST | NLM_F_ACK, 7, port, cmd, &attrs);
        let faults_before = sim.faults().failed();
        let mut replies = match sender_cx(sim, &self.model, port) {
            Some(cx) => self.model.netlink_request(&cx, port, &bytes),
            None => Vec::new(),
        };
        let faulted = sim.faults().failed() != faults_before;
        // Only the messages addressed to this request (nlmsg_pid is the requester's port; exit
        // events carry 0); threaded, another task's exit may queue events meanwhile, and the
        // queue may grow while the request runs (no recvmsg(2) on the port can overlap it).
        replies.retain(|m| NlMsgHdr::parse(m).is_some_and(|h| h.pid == port));
        facts.queued =
            facts.queued.max(self.model.port_owner(&sim.observer_cx("facts", 0), port).map_or(0, |p| p.1));
        let error = replies.pop().and_then(|ack| {
            let hdr = NlMsgHdr::parse(&ack)?;
            (hdr.kind == NLMSG_ERROR).then(|| u32_at(&ack, NLMSG_HDRLEN) as i32)
        });
        // A dropped ack (full queue) hides whether a registration happened: the lists decide.
        let lists_after = (faulted || error.is_none()).then(|| self.lists(sim));
        Outcome::Request { facts, error, replies, port, lists_after }
    }

    /// The listener lists, head first, as an observer reads them.
    fn lists(&self, sim: &Sim) -> Vec<Vec<u32>> {
        lists_of(sim, &self.model)
    }

    /// The task's accounting counters, read by an observer (the figures a run adds to).
    fn work_of(&self, sim: &Sim, pid: u32) -> crate::task::Acct {
        let cx = sim.observer_cx("work", 0);
        let Some(task) = self.model.task(&cx, pid) else { return Default::default() };
        let inner = task.signal.lock.lock_irqsave(&cx);
        inner.threads.get(&pid).map(|(acct, _)| *acct).unwrap_or_default()
    }

    fn live_pids(&self, sim: &Sim) -> Vec<u32> {
        self.model.live_pids(&sim.observer_cx("op", 0))
    }

    fn port_ids(&self, sim: &Sim) -> Vec<u32> {
        self.model.port_ids(&sim.observer_cx("op", 0))
    }

    /// The task operations: fork, run, scheduler changes, open(2), socket(2).
    fn apply_task_op(&self, sim: &Sim, op: &Op) -> Outcome {
        let live = self.live_pids(sim);
        let (task, name) = match op {
            Op::Fork { parent, .. } => (*parent, "fork"),
            Op::Run { task } => (*task, "run"),
            Op::OpenFile { task, .. } => (*task, "open"),
            Op::OpenPort { task } => (*task, "socket"),
            Op::SetState { task, .. } | Op::Migrate { task, .. } | Op::Attach { task, .. } => {
                (*task, "sched")
            }
            _ => unreachable!("apply_task_op is called for task operations only"),
        };
        let Some(pid) = pick(&live, task) else {
            return if matches!(op, Op::OpenPort { .. }) { Outcome::Port(None) } else { Outcome::Done };
        };
        let cx = if name == "sched" { sim.cx("sched", 0) } else { task_cx(sim, &self.model, pid, name) };
        match op {
            Op::Fork { kind, .. } => {
                self.touch(sim, pid);
                let forked = self.model.fork(&cx, *kind);
                if let Ok(child) = forked {
                    self.touch(sim, child);
                }
                return Outcome::Forked(forked);
            }
            Op::Run { .. } => {
                let before = self.work_of(sim, pid);
                self.model.run(&cx);
                let after = self.work_of(sim, pid);
                return Outcome::Ran { pid, work: op::work_between(&before, &after) };
            }
            Op::SetState { state, .. } => self.model.set_task(&cx, pid, Some(*state), None, None),
            Op::Migrate { cpu, .. } => self.model.set_task(&cx, pid, None, None, Some(u32::from(*cpu))),
            Op::Attach { cgroup, .. } => {
                self.model.set_task(&cx, pid, None, Some(usize::from(*cgroup)), None)
            }
            Op::OpenFile { cgroup, .. } => {
                self.model.open_file(&cx, cgroup.map(usize::from));
            }
            Op::OpenPort { .. } => return Outcome::Port(self.model.open_port(&cx)),
            _ => {}
        }
        Outcome::Done
    }

    /// do_exit() of a live task other than init (it reaps and owns the world).
    fn apply_exit(&self, sim: &Sim, task: u8) -> Outcome {
        let candidates: Vec<u32> = self.live_pids(sim).into_iter().filter(|&p| p != 1).collect();
        let Some(pid) = pick(&candidates, task) else {
            return Outcome::Done;
        };
        self.touch(sim, pid);
        exit_outcome(sim, &self.model, pid)
    }

    /// A PID query whose requester is preempted at its first preemption point while the task
    /// `which` picks runs do_exit() (see [`Op::QueryPid`]): both outcomes, in the order they
    /// finished. The candidates are live tasks other than init and the requester whose exit
    /// record does not go to the requester's port (its CPU's list does not hold the port): the
    /// request reads its port after the call, so it would drain that record with its reply.
    fn preempted_query(&self, sim: &Sim, op: &Op, which: u8) -> Outcome {
        let Op::QueryPid { port, target, .. } = op else {
            unreachable!("preempted_query is called for PID queries only")
        };
        let plain = Op::QueryPid { port: *port, target: target.clone(), preempt: None };
        let observer = sim.observer_cx("op", 0);
        let port_id = pick(&self.port_ids(sim), *port);
        let requester = port_id.and_then(|id| self.model.port_sender(&observer, id)).map(|(pid, _)| pid);
        let hears = |pid: u32| {
            let cpu = self.model.task(&observer, pid).map_or(0, |t| t.cpu);
            self.model.listeners(&observer, cpu).iter().any(|&(p, _)| Some(p) == port_id)
        };
        let candidates: Vec<u32> = self
            .live_pids(sim)
            .into_iter()
            .filter(|&p| p != 1 && Some(p) != requester && !hears(p))
            .collect();
        drop(observer);
        let Some(victim) = pick(&candidates, which) else {
            return self.apply_request_on(sim, &plain, None);
        };
        self.touch(sim, victim);
        let slot = std::sync::Arc::new(std::sync::Mutex::new(None));
        let filled = slot.clone();
        self.model.preempt_at_next_point(Preemption::new(move |model, cx| {
            let exited = exit_outcome(cx.sim(), model, victim);
            *filled.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = Some(exited);
        }));
        let request = self.apply_request_on(sim, &plain, None);
        let exit = Op::Exit { task: which };
        if self.model.preemption_not_taken().is_some() {
            let exited = exit_outcome(sim, &self.model, victim);
            return Outcome::Interleaved(vec![(plain, request), (exit, exited)]);
        }
        let exited = slot.lock().unwrap_or_else(std::sync::PoisonError::into_inner).take();
        let exited = exited.unwrap_or(Outcome::Done);
        Outcome::Interleaved(vec![(exit, exited), (plain, request)])
    }

    /// The port operations that are not requests: close(2), recvmsg(2), raw bytes.
    fn apply_port_op(&self, sim: &Sim, op: &Op) -> Outcome {
        let ports = self.port_ids(sim);
        match op {
            Op::ClosePort { port } => {
                let id = pick(&ports, *port);
                if let Some(id) = id {
                    self.model.close_port(&sim.cx("close", 0), id);
                }
                Outcome::Closed(id)
            }
            Op::Recv { port } => {
                let id = pick(&ports, *port);
                Outcome::Received(id, id.map_or(0, |id| self.model.recv(&sim.cx("recvmsg", 0), id).len()))
            }
            Op::Raw { port, bytes } => {
                if let Some(id) = pick(&ports, *port) {
                    if let Some(cx) = sender_cx(sim, &self.model, id) {
                        let _ = self.model.netlink_request(&cx, id, bytes);
                    }
                }
                Outcome::Done
            }
            _ => unreachable!("apply_port_op is called for port operations only"),
        }
    }

    /// The generic-netlink requests the reference model judges.
    fn apply_request(&self, sim: &Sim, op: &Op) -> Outcome {
        self.apply_request_on(sim, op, None)
    }

    /// [`Self::apply_request`], on port id `on` when given (threaded campaigns pick and claim the
    /// port first) instead of the op's `port`-th open port.
    fn apply_request_on(&self, sim: &Sim, op: &Op, on: Option<u32>) -> Outcome {
        if let (Op::QueryPid { preempt: Some(which), .. }, None) = (op, on) {
            return self.preempted_query(sim, op, *which);
        }
        let (port, attr, payload, cmd, target, fd) = match op {
            Op::Register { port, mask } => {
                (port, TASKSTATS_CMD_ATTR_REGISTER_CPUMASK, mask.text(), TASKSTATS_CMD_GET, None, None)
            }
            Op::Deregister { port, mask } => {
                (port, TASKSTATS_CMD_ATTR_DEREGISTER_CPUMASK, mask.text(), TASKSTATS_CMD_GET, None, None)
            }
            Op::QueryPid { port, target, .. } => {
                (port, TASKSTATS_CMD_ATTR_PID, vec![0; 4], TASKSTATS_CMD_GET, Some(target), None)
            }
            Op::QueryTgid { port, target } => {
                (port, TASKSTATS_CMD_ATTR_TGID, vec![0; 4], TASKSTATS_CMD_GET, Some(target), None)
            }
            Op::CgroupStats { port, fd, .. } => {
                (port, CGROUPSTATS_CMD_ATTR_FD, vec![0; 4], CGROUPSTATS_CMD_GET, None, Some(*fd))
            }
            _ => unreachable!("apply_request is called for requests only"),
        };
        let mut attrs = vec![(attr, payload)];
        if let Op::CgroupStats { extra: Some(kind), .. } = op {
            attrs.push((u16::from(*kind), vec![0; 4]));
        }
        match on {
            Some(id) => self.request_on(sim, id, attrs, cmd, target, fd),
            None => self.request(sim, *port, attrs, cmd, target, fd),
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

    fn new(sim: &Sim, config: &TaskstatsConfig) -> Self {
        sim.set_faults(config.faults.clone());
        TaskstatsSubject {
            model: Taskstats::new(sim, config.fixes, config.params.clone()),
            config: config.clone(),
            touched: std::sync::Mutex::default(),
        }
    }

    fn op_strategy(config: &TaskstatsConfig) -> BoxedStrategy<Op> {
        op::op_strategy(config)
    }

    fn op_gen(config: &TaskstatsConfig) -> Option<sim_core::gen::OpGen<Op>> {
        Some(op::generator(config))
    }

    fn apply(&mut self, sim: &Sim, op: &Op) -> Outcome {
        let outcome = self.apply_shared(sim, op);
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
        let mut touched = std::mem::take(&mut *self.touched());
        touched.cpus |= match op {
            Op::Register { mask, .. } | Op::Deregister { mask, .. } => Self::mask_cpus(mask),
            // Raw bytes may spell any request.
            Op::Raw { .. } => u64::MAX,
            _ => 0,
        };
        let mut with_stats = touched.with_stats.take();
        // Most operations touch no group: then no observer context is made (a tenth of the
        // check's cost).
        if with_stats.is_none() || !touched.tgids.is_empty() {
            let cx = sim.observer_cx("check_invariants", 0);
            let groups = with_stats.get_or_insert_with(|| self.model.groups_with_stats(&cx));
            for &tgid in &touched.tgids {
                match self.model.group_has_stats(&cx, tgid) {
                    true => groups.insert(tgid),
                    false => groups.remove(&tgid),
                };
            }
        }
        let with_stats = with_stats.unwrap_or_default();
        let found = self.model.check_invariants_touched(sim, touched.cpus, &touched.tgids, with_stats.len());
        // Only the copy of the groups with stats carries over to the next check.
        self.touched().with_stats = Some(with_stats);
        found
    }

    fn teardown(self, sim: &Sim) -> Result<(), Violation> {
        self.model.teardown(sim)
    }
}

impl TaskstatsSubject {
    /// Applies one operation through `&self`: every model entry point takes `&self` and the
    /// caller's `Cx`, so threaded campaigns (`threaded.rs`) run this same code on several threads.
    fn apply_shared(&self, sim: &Sim, op: &Op) -> Outcome {
        match op {
            Op::Fork { .. }
            | Op::Run { .. }
            | Op::SetState { .. }
            | Op::Migrate { .. }
            | Op::Attach { .. }
            | Op::OpenFile { .. }
            | Op::OpenPort { .. } => self.apply_task_op(sim, op),
            Op::Exit { task } => self.apply_exit(sim, *task),
            Op::Timer { task } => {
                if let Some(pid) = pick(&self.live_pids(sim), *task) {
                    self.model.it_real_fn(&task_cx(sim, &self.model, pid, "it_real_fn"));
                }
                Outcome::Done
            }
            Op::Reap { task } => {
                let zombies = self.model.zombie_pids(&sim.observer_cx("op", 0));
                if let Some(pid) = pick(&zombies, *task) {
                    self.touch(sim, pid);
                    self.model.reap(&sim.cx("release_task", 0), pid);
                }
                Outcome::Done
            }
            Op::ClosePort { .. } | Op::Recv { .. } | Op::Raw { .. } => self.apply_port_op(sim, op),
            Op::Register { .. }
            | Op::Deregister { .. }
            | Op::QueryPid { .. }
            | Op::QueryTgid { .. }
            | Op::CgroupStats { .. } => self.apply_request(sim, op),
        }
    }
}
