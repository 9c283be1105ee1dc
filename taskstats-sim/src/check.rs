//! How the checkers drive the model: the operations, the reference model that judges each
//! request's errno, the `Subject`/`Catalog` implementations, and the teaching scenarios.

use std::collections::BTreeSet;

use proptest::prelude::*;
use proptest::strategy::BoxedStrategy;
use serde::{Deserialize, Serialize};
use sim_core::check::{Catalog, Reference, ScenarioInfo, Subject, ZooEntry};
use sim_core::fault::{FaultAttr, FaultPlan};
use sim_core::fixes::{FixTable, FixTableOf};
use sim_core::trace::TraceMode;
use sim_core::{Errno, Sim, SimConfig, Violation};

use crate::fixes::{Fixes, TaskstatsFixes};
use crate::task::TaskState;
use crate::taskstats::{ForkKind, Params, Taskstats, NR_CPUS, TASKSTATS_CPUMASK_MAXLEN};
use crate::wire::*;

/// Everything a case needs besides its seed and operations.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Config {
    /// The preset the fixes came from.
    pub preset: String,
    /// The switches.
    pub fixes: Fixes,
    /// Sizes and architecture.
    pub params: Params,
    /// Faults to inject.
    pub faults: FaultPlan,
}

impl Config {
    /// A preset's own contract: its known bugs are not checked, faults on allocations and clones.
    pub fn contract(preset: &str) -> Config {
        Config::for_preset(preset).expect("known preset")
    }

    /// A preset, faults on; invariants of the fixes it has.
    pub fn for_preset(preset: &str) -> Option<Config> {
        Some(Config {
            preset: preset.to_string(),
            fixes: Fixes::preset(preset)?,
            params: Params::default(),
            faults: FaultPlan::with(FaultAttr::probability(4)),
        })
    }

    /// The same configuration with fix `name` off (panics on an unknown name).
    pub fn fix_off(mut self, name: &str) -> Config {
        let (index, _) = TaskstatsFixes::TABLE.find(name).expect("known fix");
        self.fixes = self.fixes.without(crate::fixes::FIX_IDS[index]);
        self.params.audit.push(name.to_string());
        self
    }
}

/// A cpumask attribute as an operation spells it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum MaskSpec {
    /// The CPUs of a bitmap, as a list ("0,2").
    Cpus(u8),
    /// A range "a-b".
    Range(u8, u8),
    /// Text that is wrong one way or another.
    Odd(u8),
}

/// Odd cpumask texts.
const ODD_MASKS: [&str; 6] = ["", "1-0", "x", "999", "0-", "0,,1"];

impl MaskSpec {
    fn text(&self) -> Vec<u8> {
        match self {
            MaskSpec::Cpus(bits) => {
                let cpus: Vec<String> =
                    (0..8).filter(|b| bits & (1 << b) != 0).map(|b| b.to_string()).collect();
                cpumask_payload(&cpus.join(","))
            }
            MaskSpec::Range(a, b) => cpumask_payload(&format!("{a}-{b}")),
            MaskSpec::Odd(i) if usize::from(*i) < ODD_MASKS.len() => {
                cpumask_payload(ODD_MASKS[usize::from(*i)])
            }
            // Oversized: longer than TASKSTATS_CPUMASK_MAXLEN.
            MaskSpec::Odd(_) => cpumask_payload(&"0,".repeat(TASKSTATS_CPUMASK_MAXLEN / 2 + 8)),
        }
    }
}

/// Which task a query names.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Target {
    /// A task picked by index, named by its number in the requester's pid namespace.
    Task(u8),
    /// A raw number.
    Nr(u32),
}

/// One operation.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[allow(missing_docs)]
pub enum Op {
    Fork { parent: u8, kind: ForkKind },
    Run { task: u8 },
    SetState { task: u8, state: TaskState },
    Migrate { task: u8, cpu: u8 },
    Attach { task: u8, cgroup: u8 },
    OpenFile { task: u8, cgroup: Option<u8> },
    Exit { task: u8 },
    Reap { task: u8 },
    OpenPort { task: u8 },
    ClosePort { port: u8 },
    Recv { port: u8 },
    Register { port: u8, mask: MaskSpec },
    Deregister { port: u8, mask: MaskSpec },
    QueryPid { port: u8, target: Target },
    QueryTgid { port: u8, target: Target },
    CgroupStats { port: u8, fd: u8 },
    Raw { port: u8, bytes: Vec<u8> },
}

/// The world facts a request's errno depends on, gathered from the model before the request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RequestFacts {
    /// capable(CAP_NET_ADMIN).
    pub capable: bool,
    /// In the initial user and pid namespaces.
    pub init_ns: bool,
    /// The query's target exists in the requester's pid namespace.
    pub target_exists: bool,
    /// The fd: None if not open, Some(true) for a cgroup directory.
    pub fd_is_cgroup: Option<bool>,
    /// Messages already queued on the port.
    pub queued: usize,
}

/// What an operation returned.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Nothing to judge (no such target, or a state change).
    Done,
    /// fork.
    Forked(Result<u32, Errno>),
    /// do_exit: the record's CPU, the ports that got it in order, the ports its group's death
    /// closed, and (when a fault was injected during it) the listener lists afterwards.
    Exited { pid: u32, cpu: u32, delivered: Vec<u32>, closed: Vec<u32>, lists_after: Option<Vec<Vec<u32>>> },
    /// A port opened.
    Port(Option<u32>),
    /// A port closed.
    Closed(Option<u32>),
    /// Messages received from a port.
    Received(Option<u32>, usize),
    /// A request: its facts, the errno in its ack (None: no ack came back), the replies, and
    /// (when a fault was injected during it) the listener lists afterwards.
    Request {
        facts: RequestFacts,
        error: Option<i32>,
        replies: Vec<Vec<u8>>,
        port: u32,
        lists_after: Option<Vec<Vec<u32>>>,
    },
}

/// The checker's face of the model.
#[derive(Debug)]
pub struct TaskstatsSubject {
    /// The model.
    pub model: Taskstats,
    config: Config,
}

fn pick<T: Copy>(items: &[T], index: u8) -> Option<T> {
    (!items.is_empty()).then(|| items[usize::from(index) % items.len()])
}

impl TaskstatsSubject {
    fn facts(&self, sim: &Sim, port: u32, target: Option<&Target>, fd: Option<u8>) -> (RequestFacts, u32) {
        let cx = sim.observer_cx("facts", 0);
        let live = self.model.live_pids(&cx);
        let p = self.port_info(sim, port);
        let current =
            live.iter().copied().find(|&pid| self.model.task(&cx, pid).is_some_and(|t| t.tgid == p.0));
        let current = current.and_then(|pid| self.model.task(&cx, pid));
        let mut facts = RequestFacts {
            capable: current.as_ref().is_some_and(|t| t.cap_net_admin && t.user_ns == 0),
            init_ns: current.as_ref().is_some_and(|t| t.user_ns == 0 && t.pid_ns() == 0),
            target_exists: false,
            fd_is_cgroup: None,
            queued: p.1,
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
            facts.target_exists = nr != 0 && all.iter().any(|&pid| self.model.task_nr_in(&cx, pid, ns) == nr);
        }
        if let (Some(fd), Some(t)) = (fd, &current) {
            facts.fd_is_cgroup = self.model.fd_kind(&cx, t.tgid, u32::from(fd));
        }
        (facts, nr)
    }

    fn port_info(&self, sim: &Sim, port: u32) -> (u32, usize) {
        self.model.port_owner(sim, port).unwrap_or((0, 0))
    }

    fn request(
        &mut self,
        sim: &Sim,
        port: u8,
        attrs: Vec<(u16, Vec<u8>)>,
        cmd: u8,
        target: Option<&Target>,
        fd: Option<u8>,
    ) -> Outcome {
        let cx = sim.observer_cx("op", 0);
        let Some(port) = pick(&self.model.port_ids(&cx), port) else {
            return Outcome::Done;
        };
        drop(cx);
        let (facts, nr) = self.facts(sim, port, target, fd);
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
        let mut replies = self.model.netlink_request(sim, port, &bytes);
        let faulted = sim.faults().failed() != faults_before;
        let error = replies.pop().and_then(|ack| {
            let hdr = NlMsgHdr::parse(&ack)?;
            (hdr.kind == NLMSG_ERROR).then(|| u32_at(&ack, NLMSG_HDRLEN) as i32)
        });
        // A dropped ack (full queue) hides whether a registration happened: the lists decide.
        let lists_after = (faulted || error.is_none()).then(|| self.lists(sim));
        Outcome::Request { facts, error, replies, port, lists_after }
    }

    fn lists(&self, sim: &Sim) -> Vec<Vec<u32>> {
        let cx = sim.observer_cx("lists", 0);
        (0..self.model.params().cpus)
            .map(|cpu| self.model.listeners(&cx, cpu).into_iter().map(|(p, _)| p).collect())
            .collect()
    }
}

impl Subject for TaskstatsSubject {
    const NAME: &'static str = "taskstats";
    type Config = Config;
    type Op = Op;
    type Outcome = Outcome;
    type Reference = TaskstatsModel;

    fn sim_config(config: &Config, seed: u64) -> SimConfig {
        SimConfig::new(seed).cpus(config.params.cpus.clamp(1, NR_CPUS))
    }

    fn new(sim: &Sim, config: &Config) -> Self {
        sim.set_faults(config.faults.clone());
        TaskstatsSubject {
            model: Taskstats::new(sim, config.fixes, config.params.clone()),
            config: config.clone(),
        }
    }

    fn op_strategy(config: &Config) -> BoxedStrategy<Op> {
        let cpus = config.params.cpus.max(1) as u8;
        let kind = prop_oneof![
            3 => Just(ForkKind::Thread),
            2 => Just(ForkKind::Process),
            1 => any::<u8>().prop_map(ForkKind::Unprivileged),
            1 => Just(ForkKind::NewPidNs),
            1 => Just(ForkKind::NewUserNs),
        ];
        let state = prop_oneof![
            Just(TaskState::Running),
            Just(TaskState::Interruptible),
            Just(TaskState::Uninterruptible),
            Just(TaskState::Stopped)
        ];
        let mask = prop_oneof![
            6 => (1u8..(1 << cpus.min(7))).prop_map(MaskSpec::Cpus),
            1 => (0u8..4, 0u8..4).prop_map(|(a, b)| MaskSpec::Range(a, b)),
            1 => (0u8..7).prop_map(MaskSpec::Odd),
        ];
        let target =
            prop_oneof![4 => any::<u8>().prop_map(Target::Task), 1 => (0u32..40).prop_map(Target::Nr)];
        prop_oneof![
            4 => (any::<u8>(), kind).prop_map(|(parent, kind)| Op::Fork { parent, kind }),
            4 => any::<u8>().prop_map(|task| Op::Run { task }),
            1 => (any::<u8>(), state).prop_map(|(task, state)| Op::SetState { task, state }),
            1 => (any::<u8>(), 0..cpus).prop_map(|(task, cpu)| Op::Migrate { task, cpu }),
            1 => (any::<u8>(), any::<u8>()).prop_map(|(task, cgroup)| Op::Attach { task, cgroup }),
            1 => (any::<u8>(), proptest::option::of(any::<u8>())).prop_map(|(task, cgroup)| Op::OpenFile { task, cgroup }),
            4 => any::<u8>().prop_map(|task| Op::Exit { task }),
            1 => any::<u8>().prop_map(|task| Op::Reap { task }),
            2 => any::<u8>().prop_map(|task| Op::OpenPort { task }),
            1 => any::<u8>().prop_map(|port| Op::ClosePort { port }),
            2 => any::<u8>().prop_map(|port| Op::Recv { port }),
            4 => (any::<u8>(), mask.clone()).prop_map(|(port, mask)| Op::Register { port, mask }),
            1 => (any::<u8>(), mask).prop_map(|(port, mask)| Op::Deregister { port, mask }),
            2 => (any::<u8>(), target.clone()).prop_map(|(port, target)| Op::QueryPid { port, target }),
            2 => (any::<u8>(), target).prop_map(|(port, target)| Op::QueryTgid { port, target }),
            1 => (any::<u8>(), 0u8..6).prop_map(|(port, fd)| Op::CgroupStats { port, fd }),
            1 => (any::<u8>(), proptest::collection::vec(any::<u8>(), 0..48)).prop_map(|(port, bytes)| Op::Raw { port, bytes }),
        ]
        .boxed()
    }

    fn apply(&mut self, sim: &Sim, op: &Op) -> Outcome {
        let cx = sim.observer_cx("op", 0);
        let live = self.model.live_pids(&cx);
        drop(cx);
        match op {
            Op::Fork { parent, kind } => match pick(&live, *parent) {
                Some(parent) => Outcome::Forked(self.model.fork(sim, parent, *kind)),
                None => Outcome::Done,
            },
            Op::Run { task } => {
                if let Some(pid) = pick(&live, *task) {
                    self.model.run(sim, pid);
                }
                Outcome::Done
            }
            Op::SetState { task, state } => {
                if let Some(pid) = pick(&live, *task) {
                    self.model.set_task(sim, pid, Some(*state), None, None);
                }
                Outcome::Done
            }
            Op::Migrate { task, cpu } => {
                if let Some(pid) = pick(&live, *task) {
                    self.model.set_task(sim, pid, None, None, Some(u32::from(*cpu)));
                }
                Outcome::Done
            }
            Op::Attach { task, cgroup } => {
                if let Some(pid) = pick(&live, *task) {
                    self.model.set_task(sim, pid, None, Some(usize::from(*cgroup)), None);
                }
                Outcome::Done
            }
            Op::OpenFile { task, cgroup } => {
                if let Some(pid) = pick(&live, *task) {
                    self.model.open_file(sim, pid, cgroup.map(usize::from));
                }
                Outcome::Done
            }
            Op::Exit { task } => {
                // Keep init alive: it reaps and owns the world.
                let candidates: Vec<u32> = live.iter().copied().filter(|&p| p != 1).collect();
                let faults_before = sim.faults().failed();
                match pick(&candidates, *task).and_then(|pid| self.model.exit(sim, pid)) {
                    Some(report) => Outcome::Exited {
                        pid: report.pid,
                        cpu: report.cpu,
                        delivered: report.delivered,
                        closed: report.closed,
                        lists_after: (sim.faults().failed() != faults_before).then(|| self.lists(sim)),
                    },
                    None => Outcome::Done,
                }
            }
            Op::Reap { task } => {
                let cx = sim.observer_cx("op", 0);
                let zombies = self.model.zombie_pids(&cx);
                drop(cx);
                if let Some(pid) = pick(&zombies, *task) {
                    self.model.reap(sim, pid);
                }
                Outcome::Done
            }
            Op::OpenPort { task } => {
                Outcome::Port(pick(&live, *task).and_then(|pid| self.model.open_port(sim, pid)))
            }
            Op::ClosePort { port } => {
                let cx = sim.observer_cx("op", 0);
                let ports = self.model.port_ids(&cx);
                drop(cx);
                let id = pick(&ports, *port);
                if let Some(id) = id {
                    self.model.close_port(sim, id);
                }
                Outcome::Closed(id)
            }
            Op::Recv { port } => {
                let cx = sim.observer_cx("op", 0);
                let ports = self.model.port_ids(&cx);
                drop(cx);
                let id = pick(&ports, *port);
                Outcome::Received(id, id.map_or(0, |id| self.model.recv(sim, id).len()))
            }
            Op::Register { port, mask } => self.request(
                sim,
                *port,
                vec![(TASKSTATS_CMD_ATTR_REGISTER_CPUMASK, mask.text())],
                TASKSTATS_CMD_GET,
                None,
                None,
            ),
            Op::Deregister { port, mask } => self.request(
                sim,
                *port,
                vec![(TASKSTATS_CMD_ATTR_DEREGISTER_CPUMASK, mask.text())],
                TASKSTATS_CMD_GET,
                None,
                None,
            ),
            Op::QueryPid { port, target } => self.request(
                sim,
                *port,
                vec![(TASKSTATS_CMD_ATTR_PID, vec![0; 4])],
                TASKSTATS_CMD_GET,
                Some(target),
                None,
            ),
            Op::QueryTgid { port, target } => self.request(
                sim,
                *port,
                vec![(TASKSTATS_CMD_ATTR_TGID, vec![0; 4])],
                TASKSTATS_CMD_GET,
                Some(target),
                None,
            ),
            Op::CgroupStats { port, fd } => self.request(
                sim,
                *port,
                vec![(CGROUPSTATS_CMD_ATTR_FD, vec![0; 4])],
                CGROUPSTATS_CMD_GET,
                None,
                Some(*fd),
            ),
            Op::Raw { port, bytes } => {
                let cx = sim.observer_cx("op", 0);
                let ports = self.model.port_ids(&cx);
                drop(cx);
                if let Some(id) = pick(&ports, *port) {
                    let _ = self.model.netlink_request(sim, id, bytes);
                }
                Outcome::Done
            }
        }
    }

    fn check_invariants(&self, sim: &Sim) -> Result<(), Violation> {
        self.model.check_invariants(sim)
    }

    fn teardown(self, sim: &Sim) -> Result<(), Violation> {
        self.model.teardown(sim)
    }

    fn coverage(&self) -> BTreeSet<&'static str> {
        // A throwaway context: coverage reading takes the ledger lock only.
        let sim = Sim::new(SimConfig::new(0).without_lockdep());
        self.model.coverage(&sim.cx("coverage", 0))
    }
}

/// The reference model: from the facts of the world before each request, the errno the seed
/// returns; replies counted and their headers checked.
#[derive(Debug)]
pub struct TaskstatsModel {
    fixes: Fixes,
    cpus: u32,
    faults: bool,
    queue_max: usize,
    pids: BTreeSet<u32>,
    /// Per CPU, the listener list head first (ports), as add_del_listener() and the pruning
    /// leave it.
    lists: Vec<Vec<u32>>,
    /// Open ports and how many exit events wait in each queue.
    ports: std::collections::BTreeMap<u32, usize>,
}

impl TaskstatsModel {
    /// The errno the seed returns for a cpumask request, before any allocation can fail.
    fn cpumask_errno(&self, facts: &RequestFacts, text: &[u8]) -> Result<(), Errno> {
        if self.fixes.on(crate::fixes::ADMIN_PERM) && !facts.capable {
            return Err(Errno::EPERM);
        }
        if text.len() > TASKSTATS_CPUMASK_MAXLEN {
            return Err(Errno::E2BIG);
        }
        let mask = crate::taskstats::parse_cpulist(self.fixes, text)?;
        if mask.iter().any(|&cpu| cpu >= self.cpus) {
            return Err(Errno::EINVAL);
        }
        if self.fixes.on(crate::fixes::NAMESPACE_CHECKS) && !facts.init_ns {
            return Err(Errno::EINVAL);
        }
        Ok(())
    }
}

impl TaskstatsModel {
    /// Mirrors add_del_listener() on the reference lists for a request that returned 0; after a
    /// request with an injected fault, adopts the model's lists (the actual outcome decides).
    fn mirror_listeners(
        &mut self,
        op: &Op,
        port: u32,
        error: Option<i32>,
        lists_after: Option<&Vec<Vec<u32>>>,
    ) {
        if let Some(lists) = lists_after {
            self.lists = lists.clone();
            return;
        }
        let (mask, register) = match op {
            Op::Register { mask, .. } => (mask, true),
            Op::Deregister { mask, .. } => (mask, false),
            _ => return,
        };
        if error != Some(0) {
            return;
        }
        let Ok(cpus) = crate::taskstats::parse_cpulist(self.fixes, &mask.text()) else { return };
        for cpu in cpus {
            let list = &mut self.lists[cpu as usize];
            if register {
                if !(self.fixes.on(crate::fixes::DUPLICATE_LISTENER_CHECK) && list.contains(&port)) {
                    list.insert(0, port);
                }
            } else if let Some(at) = list.iter().position(|&p| p == port) {
                list.remove(at);
            }
        }
    }
}

impl Reference for TaskstatsModel {
    type Config = Config;
    type Op = Op;
    type Outcome = Outcome;

    fn new(config: &Config) -> Self {
        TaskstatsModel {
            fixes: config.fixes,
            cpus: config.params.cpus.clamp(1, NR_CPUS),
            faults: !config.faults.is_empty(),
            queue_max: config.params.queue_max,
            pids: [1].into_iter().collect(),
            lists: vec![Vec::new(); config.params.cpus.clamp(1, NR_CPUS) as usize],
            ports: Default::default(),
        }
    }

    fn check(&mut self, op: &Op, actual: &Outcome) -> Result<(), String> {
        match (op, actual) {
            (_, Outcome::Forked(Ok(pid))) => {
                if !self.pids.insert(*pid) {
                    return Err(format!("fork handed out pid {pid} twice"));
                }
                Ok(())
            }
            (_, Outcome::Port(Some(id))) => {
                self.ports.insert(*id, 0);
                Ok(())
            }
            (_, Outcome::Closed(Some(id))) => {
                self.ports.remove(id);
                Ok(())
            }
            (_, Outcome::Received(Some(id), n)) => {
                let queued = self.ports.insert(*id, 0).unwrap_or(0);
                if queued != *n {
                    return Err(format!("port {id} held {n} messages, the reference counted {queued}"));
                }
                Ok(())
            }
            (Op::Exit { .. }, Outcome::Exited { pid, cpu, delivered, closed, lists_after }) => {
                if self.fixes.on(crate::fixes::DUPLICATE_LISTENER_CHECK) {
                    let distinct: BTreeSet<_> = delivered.iter().collect();
                    if distinct.len() != delivered.len() {
                        return Err(format!("exit of {pid} delivered twice to one port: {delivered:?}"));
                    }
                }
                let list = &self.lists[*cpu as usize];
                if lists_after.is_none() {
                    // send_cpu_listeners(): every listener, in list order, whose port is open and
                    // whose queue has room.
                    let mut queues = self.ports.clone();
                    let mut expect = Vec::new();
                    for p in list {
                        if let Some(q) = queues.get_mut(p).filter(|q| **q < self.queue_max) {
                            *q += 1;
                            expect.push(*p);
                        }
                    }
                    if *delivered != expect {
                        return Err(format!(
                            "exit of {pid} on cpu {cpu} reached {delivered:?}; list {list:?} says {expect:?}"
                        ));
                    }
                }
                for port in delivered {
                    if let Some(q) = self.ports.get_mut(port) {
                        *q += 1;
                    }
                }
                match lists_after {
                    Some(lists) => self.lists = lists.clone(),
                    None => {
                        // The pruning: entries of ports that refused are gone.
                        let ports = &self.ports;
                        self.lists[*cpu as usize].retain(|p| ports.contains_key(p));
                    }
                }
                for port in closed {
                    self.ports.remove(port);
                }
                Ok(())
            }
            (_, Outcome::Request { facts, error, replies, port, lists_after }) => {
                self.mirror_listeners(op, *port, *error, lists_after.as_ref());
                let (expect, fallible, replies_expect): (Result<(), Errno>, bool, usize) = match op {
                    Op::Register { mask, .. } | Op::Deregister { mask, .. } => {
                        (self.cpumask_errno(facts, &mask.text()), true, 0)
                    }
                    Op::QueryPid { .. } | Op::QueryTgid { .. } => {
                        if self.fixes.on(crate::fixes::ADMIN_PERM) && !facts.capable {
                            (Err(Errno::EPERM), false, 0)
                        } else if facts.target_exists {
                            (Ok(()), true, 1)
                        } else {
                            (Err(Errno::ESRCH), true, 0)
                        }
                    }
                    Op::CgroupStats { .. } => {
                        if !self.fixes.on(crate::fixes::CGROUPSTATS) {
                            (Err(Errno::EOPNOTSUPP), false, 0)
                        } else {
                            match facts.fd_is_cgroup {
                                None => (Ok(()), false, 0),
                                Some(false) => (Err(Errno::EINVAL), true, 0),
                                Some(true) => (Ok(()), true, 1),
                            }
                        }
                    }
                    _ => return Ok(()),
                };
                let expect_code = expect.err().map_or(0, |e| e.to_kernel_return());
                // A full receive queue drops replies and acks; an injected fault may end in ENOMEM.
                let queue_may_fill = facts.queued + 2 > self.queue_max;
                let enomem_ok = self.faults && fallible;
                match error {
                    None if queue_may_fill => Ok(()),
                    None => Err(format!("no ack came back (expected {expect_code}); facts {facts:?}")),
                    Some(code) if *code == expect_code => {
                        if replies.len() != replies_expect && !queue_may_fill {
                            return Err(format!("{} replies, expected {replies_expect}", replies.len()));
                        }
                        for reply in replies {
                            let hdr = NlMsgHdr::parse(reply).ok_or("short reply")?;
                            if hdr.len as usize != reply.len()
                                || hdr.kind != TASKSTATS_FAMILY_ID
                                || hdr.seq != 7
                            {
                                return Err(format!("bad reply header {hdr:?} for {} bytes", reply.len()));
                            }
                        }
                        Ok(())
                    }
                    Some(code) if *code == Errno::ENOMEM.to_kernel_return() && enomem_ok => Ok(()),
                    Some(code) if *code == Errno::EAGAIN.to_kernel_return() && queue_may_fill => Ok(()),
                    Some(code) => {
                        Err(format!("errno {code}, the seed returns {expect_code}; facts {facts:?}"))
                    }
                }
            }
            _ => Ok(()),
        }
    }
}

impl Catalog for TaskstatsSubject {
    fn fix_table() -> &'static FixTable {
        <TaskstatsFixes as FixTableOf>::TABLE
    }

    fn config(kernel: Option<&str>, fixes_off: &[String]) -> Result<Config, String> {
        let fixes = Fixes::parse(kernel, fixes_off)?;
        let name = kernel.unwrap_or("linux-3.8");
        let mut config = Config::for_preset(name).unwrap_or_else(|| Config::contract("linux-3.8"));
        config.preset = name.to_string();
        config.fixes = fixes;
        config.params.audit.extend(fixes_off.iter().cloned());
        Ok(config)
    }

    fn zoo() -> Vec<ZooEntry> {
        vec![
            ZooEntry {
                name: "CVE-2011-2484 duplicate listeners",
                kernel: "linux-3.4",
                fix: "duplicate-listener-check",
                checker: "op-sim",
                expected: vec!["duplicate-listener".into()],
                ops_max: 60,
                cases_max: 400,
            },
            ZooEntry {
                name: "CVE-2011-2494 unprivileged taskstats",
                kernel: "linux-3.4",
                fix: "admin-perm",
                checker: "op-sim",
                expected: vec!["unprivileged-access".into()],
                ops_max: 60,
                cases_max: 400,
            },
            ZooEntry {
                name: "global ids leak into pid/user namespaces",
                kernel: "linux-3.8",
                fix: "namespace-checks",
                checker: "op-sim",
                expected: vec!["namespace-leak".into()],
                ops_max: 60,
                cases_max: 400,
            },
            ZooEntry {
                name: "2.6.19 group stats miss threads that exit unheard",
                kernel: "linux-3.4",
                fix: "exit-single-pass",
                checker: "op-sim",
                expected: vec!["group-stats".into()],
                ops_max: 80,
                cases_max: 600,
            },
        ]
    }

    fn scenarios() -> Vec<ScenarioInfo> {
        crate::scenario::SCENARIOS
            .iter()
            .map(|(name, description)| ScenarioInfo { name, description })
            .collect()
    }

    fn run_scenario(name: &str) -> Option<Sim> {
        crate::scenario::run(name, TraceMode::Full)
    }
}
