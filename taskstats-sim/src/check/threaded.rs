//! taskstats under threaded campaigns (`ksim fuzz taskstats --threads N`): the model shared by
//! the threads, each operation run as the op-level subject runs it, in the contexts of the tasks
//! it names (so the trace's lanes are the kernel's tasks: forks, exits, senders).
//!
//! A kernel task runs one thing at a time, so a thread claims the task an operation acts as
//! before running it (checker state, std-locked, never held across a model call): another thread
//! that picks the same task skips its operation. A task that exits, and a zombie that is reaped,
//! stay claimed for good (a task exits once, is reaped once).
//!
//! Outcomes are not held to linearizability: the reference judges a request from the facts the
//! subject observed just before it (is the sender capable, does the target exist, how much is
//! queued), and an exit's delivery from the listener lists; on several threads those facts are
//! read apart from the operation, and the per-CPU sequence numbers in delivered messages follow
//! the order exits took each CPU's list, not one order of whole operations. So every outcome is
//! declared relaxed, and a threaded taskstats case is judged by lockdep, the lockset and lifetime
//! detectors, the invariants at quiescence (listener lists, ledger, slab objects), teardown's
//! leak check and deadlock detection.

use std::collections::BTreeSet;
use std::sync::{Mutex as StdMutex, PoisonError};

use proptest::prelude::*;
use proptest::strategy::BoxedStrategy;
use sim_core::check::Subject;
use sim_core::threaded::ThreadedSubject;
use sim_core::{Cx, Sim, Violation, ViolationKind};

use super::{
    clone_counters, pick, task_cx, MaskSpec, Op, Outcome, Target, TaskstatsConfig, TaskstatsSubject,
};
use crate::taskstats::ForkKind;

/// The subject and which tasks and ports are claimed.
#[derive(Debug)]
pub struct TaskstatsShared {
    subject: TaskstatsSubject,
    /// Checker state: tasks an operation is running as, and tasks that exited (kept).
    claimed: StdMutex<BTreeSet<u32>>,
    /// Checker state: zombies reaped or being reaped (kept).
    reaped: StdMutex<BTreeSet<u32>>,
    /// Checker state: tasks an operation may act as: those there at the start and children whose
    /// fork returned. A child is in the task table before its parent's fork returns, where a
    /// query may find it, but it runs only after: no operation acts as it before then.
    born: StdMutex<BTreeSet<u32>>,
    /// Checker state: ports a socket call is running on (one call at a time per socket, so a
    /// register and a deregister on one socket do not overlap: the model's post-condition checks
    /// assume they do not).
    ports: StdMutex<BTreeSet<u32>>,
}

fn locked<T>(mutex: &StdMutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Claims the `index`-th of `candidates` not claimed in `set`; None when none is free.
fn claim(set: &StdMutex<BTreeSet<u32>>, candidates: Vec<u32>, index: u8) -> Option<u32> {
    let mut set = locked(set);
    let free: Vec<u32> = candidates.into_iter().filter(|pid| !set.contains(pid)).collect();
    let pid = pick(&free, index)?;
    set.insert(pid);
    Some(pid)
}

/// Claims every one of `pids`, or none when one is claimed already.
fn claim_all(set: &StdMutex<BTreeSet<u32>>, pids: &[u32]) -> bool {
    let mut set = locked(set);
    if pids.iter().any(|pid| set.contains(pid)) {
        return false;
    }
    set.extend(pids.iter().copied());
    true
}

fn release(set: &StdMutex<BTreeSet<u32>>, pid: u32) {
    locked(set).remove(&pid);
}

/// What a port operation returns when there is no port for it to act on.
fn no_port(op: &Op) -> Outcome {
    match op {
        Op::ClosePort { .. } => Outcome::Closed(None),
        Op::Recv { .. } => Outcome::Received(None, 0),
        _ => Outcome::Done,
    }
}

impl TaskstatsShared {
    /// Live tasks an operation may act as (born, see [`TaskstatsShared::born`]).
    fn ready(&self, sim: &Sim) -> Vec<u32> {
        // The model's lock is a scheduling point: no checker lock is held across it.
        let live = self.subject.live_pids(sim);
        let born = locked(&self.born);
        live.into_iter().filter(|pid| born.contains(pid)).collect()
    }

    /// fork, run, scheduler changes, open(2), socket(2), as the subject's `apply_task_op`, on
    /// a claimed task; a child becomes [born](TaskstatsShared::born) when its fork returns.
    fn task_op(&self, sim: &Sim, op: &Op, task: u8, name: &str) -> Outcome {
        let model = &self.subject.model;
        let Some(pid) = claim(&self.claimed, self.ready(sim), task) else {
            return if matches!(op, Op::OpenPort { .. }) { Outcome::Port(None) } else { Outcome::Done };
        };
        let cx = if name == "sched" { sim.cx("sched", 0) } else { task_cx(sim, model, pid, name) };
        let outcome = match op {
            Op::Fork { kind, .. } => {
                let forked = model.fork(&cx, *kind);
                if let Ok(child) = forked {
                    locked(&self.born).insert(child);
                }
                Outcome::Forked(forked)
            }
            Op::Run { .. } => {
                model.run(&cx);
                Outcome::Done
            }
            Op::SetState { state, .. } => {
                model.set_task(&cx, pid, Some(*state), None, None);
                Outcome::Done
            }
            Op::Migrate { cpu, .. } => {
                model.set_task(&cx, pid, None, None, Some(u32::from(*cpu)));
                Outcome::Done
            }
            Op::Attach { cgroup, .. } => {
                model.set_task(&cx, pid, None, Some(usize::from(*cgroup)), None);
                Outcome::Done
            }
            Op::OpenFile { cgroup, .. } => {
                model.open_file(&cx, cgroup.map(usize::from));
                Outcome::Done
            }
            Op::OpenPort { .. } => Outcome::Port(model.open_port(&cx)),
            Op::Timer { .. } => {
                model.it_real_fn(&cx);
                Outcome::Done
            }
            _ => Outcome::Done,
        };
        drop(cx);
        release(&self.claimed, pid);
        outcome
    }

    /// do_exit() of a claimed live task other than init; the claim is kept.
    fn exit(&self, sim: &Sim, task: u8) -> Outcome {
        let model = &self.subject.model;
        let candidates = self.ready(sim).into_iter().filter(|&p| p != 1).collect();
        let Some(pid) = claim(&self.claimed, candidates, task) else {
            return Outcome::Done;
        };
        // The fault counters are the whole run's: another thread's faults between the two reads
        // count here too, which only makes the outcome carry more than it needs.
        let faults_before = sim.faults().failed();
        let clones_before = clone_counters(sim);
        match model.exit(&task_cx(sim, model, pid, "do_exit")) {
            Some(report) => {
                let clones_after = clone_counters(sim);
                Outcome::Exited {
                    pid: report.pid,
                    cpu: report.cpu,
                    delivered: report.delivered,
                    closed: report.closed,
                    clones: (clones_after.0 - clones_before.0, clones_after.1 > clones_before.1),
                    pruned: report.pruned,
                    faulted: sim.faults().failed() != faults_before,
                }
            }
            None => Outcome::Done,
        }
    }

    /// A port operation (close, recvmsg, sendmsg, the requests) on the `port`-th open port no
    /// other thread is using, claimed for the call: the subject's own code runs on that port id.
    fn port_op(&self, sim: &Sim, op: &Op, port: u8) -> Outcome {
        let Some(id) = claim(&self.ports, self.subject.port_ids(sim), port) else {
            return no_port(op);
        };
        let outcome = self.on_port(sim, op, id);
        release(&self.ports, id);
        outcome
    }

    /// [`TaskstatsShared::port_op`] on claimed port `id`. A call that sends runs as the port's
    /// sender task, claimed too (a task in sendmsg(2) is not also exiting); a TGID query claims
    /// the target group's live threads as well, since the model checks the record it returns
    /// against its ledger of exited threads after the reply, and an exit in the group between
    /// the two would make that check see the thread twice.
    fn on_port(&self, sim: &Sim, op: &Op, id: u32) -> Outcome {
        let model = &self.subject.model;
        match op {
            Op::ClosePort { .. } => {
                model.close_port(&sim.cx("close", 0), id);
                return Outcome::Closed(Some(id));
            }
            Op::Recv { .. } => {
                return Outcome::Received(Some(id), model.recv(&sim.cx("recvmsg", 0), id).len())
            }
            _ => {}
        }
        let observer = sim.observer_cx("op", 0);
        let sender = model.port_sender(&observer, id);
        let (op, group) = self.resolve_target(&observer, op, id);
        drop(observer);
        let Some((owner, cpu)) = sender else {
            // No live sender: nothing is sent (the subject's request records that itself).
            return match op {
                Op::Raw { .. } => Outcome::Done,
                _ => self.subject.apply_request_on(sim, &op, Some(id)),
            };
        };
        let mut claims = group;
        claims.retain(|&pid| pid != owner);
        claims.push(owner);
        if !claim_all(&self.claimed, &claims) {
            return Outcome::Done;
        }
        let outcome = match &op {
            Op::Raw { bytes, .. } => {
                let _ = model.netlink_request(&sim.cx_for_task(owner, "sendmsg", cpu), id, bytes);
                Outcome::Done
            }
            _ => self.subject.apply_request_on(sim, &op, Some(id)),
        };
        for pid in claims {
            release(&self.claimed, pid);
        }
        outcome
    }

    /// A query's target picked now, as the subject's `facts` would pick it, and named by its
    /// number in the requester's pid namespace (so a later pick over a list another thread changed
    /// cannot make it another task); for a TGID query, the target group's live threads.
    fn resolve_target(&self, observer: &Cx, op: &Op, id: u32) -> (Op, Vec<u32>) {
        let (port, target, tgid_query) = match op {
            Op::QueryPid { port, target: Target::Task(i) } => (*port, *i, false),
            Op::QueryTgid { port, target: Target::Task(i) } => (*port, *i, true),
            _ => return (op.clone(), Vec::new()),
        };
        let model = &self.subject.model;
        let live = model.live_pids(observer);
        let mut all = live.clone();
        all.extend(model.zombie_pids(observer));
        all.sort_unstable();
        let owner = model.port_owner(observer, id).map_or(0, |(tgid, _)| tgid);
        let current = live.iter().find_map(|&pid| model.task(observer, pid).filter(|t| t.tgid == owner));
        let ns = match (&current, self.subject.config.fixes.on(crate::fixes::PID_NAMESPACES)) {
            (Some(t), true) => t.pid_ns(),
            _ => 0,
        };
        let picked = pick(&all, target);
        let nr = picked.map_or(0, |pid| model.task_nr_in(observer, pid, ns));
        let target = Target::Nr(nr);
        let group = match picked.and_then(|pid| model.task(observer, pid)).filter(|_| tgid_query) {
            Some(t) => live
                .iter()
                .copied()
                .filter(|&pid| model.task(observer, pid).is_some_and(|other| other.tgid == t.tgid))
                .collect(),
            None => Vec::new(),
        };
        let op = if tgid_query { Op::QueryTgid { port, target } } else { Op::QueryPid { port, target } };
        (op, group)
    }

    /// release_task() of a zombie no other thread is reaping. A zombie group leader waits until
    /// its group has no live thread (`delay_group_leader()`: wait(2) does not reap it before), so a
    /// thread still in do_exit() finds its group's ids where the kernel finds them.
    fn reap(&self, sim: &Sim, task: u8) -> Outcome {
        let model = &self.subject.model;
        let observer = sim.observer_cx("op", 0);
        let live: Vec<_> =
            model.live_pids(&observer).into_iter().filter_map(|pid| model.task(&observer, pid)).collect();
        let zombies = model
            .zombie_pids(&observer)
            .into_iter()
            .filter(|&pid| {
                pid != model.task(&observer, pid).map_or(0, |t| t.tgid) || {
                    live.iter().all(|t| t.tgid != pid)
                }
            })
            .collect();
        drop(observer);
        if let Some(pid) = claim(&self.reaped, zombies, task) {
            model.reap(&sim.cx("release_task", 0), pid);
        }
        Outcome::Done
    }
}

impl ThreadedSubject for TaskstatsSubject {
    type Shared = TaskstatsShared;

    /// The op-level strategy, with forks, exits and a socket's life (open, register, close)
    /// weighted up: an exit's delivery prunes the listener of a socket closed while registered,
    /// and the races on the listener lists need that to overlap other exits and registrations.
    fn threaded_ops(config: &TaskstatsConfig) -> BoxedStrategy<Op> {
        let cpus = config.params.cpus.max(1) as u8;
        prop_oneof![
            4 => super::op::op_strategy(config),
            2 => any::<u8>().prop_map(|task| Op::Exit { task }),
            1 => any::<u8>().prop_map(|parent| Op::Fork { parent, kind: ForkKind::Process }),
            1 => any::<u8>().prop_map(|task| Op::OpenPort { task }),
            1 => any::<u8>().prop_map(|port| Op::ClosePort { port }),
            1 => (any::<u8>(), 1u8..(1 << cpus.min(7))).prop_map(|(port, bits)| Op::Register { port, mask: MaskSpec::Cpus(bits) }),
        ]
        .boxed()
    }

    fn share(sim: &Sim, config: &TaskstatsConfig) -> TaskstatsShared {
        let subject = TaskstatsSubject::new(sim, config);
        let born = subject.live_pids(sim).into_iter().collect();
        TaskstatsShared {
            subject,
            claimed: StdMutex::default(),
            reaped: StdMutex::default(),
            born: StdMutex::new(born),
            ports: StdMutex::default(),
        }
    }

    fn apply_shared(shared: &TaskstatsShared, cx: &Cx, op: &Op) -> Outcome {
        let sim = cx.sim();
        match op {
            Op::Fork { parent: task, .. } => shared.task_op(sim, op, *task, "fork"),
            Op::Run { task } => shared.task_op(sim, op, *task, "run"),
            Op::OpenFile { task, .. } => shared.task_op(sim, op, *task, "open"),
            Op::OpenPort { task } => shared.task_op(sim, op, *task, "socket"),
            Op::SetState { task, .. } | Op::Migrate { task, .. } | Op::Attach { task, .. } => {
                shared.task_op(sim, op, *task, "sched")
            }
            Op::Timer { task } => shared.task_op(sim, op, *task, "it_real_fn"),
            Op::Exit { task } => shared.exit(sim, *task),
            Op::Reap { task } => shared.reap(sim, *task),
            Op::ClosePort { port }
            | Op::Recv { port }
            | Op::Raw { port, .. }
            | Op::Register { port, .. }
            | Op::Deregister { port, .. }
            | Op::QueryPid { port, .. }
            | Op::QueryTgid { port, .. }
            | Op::CgroupStats { port, .. } => shared.port_op(sim, op, *port),
        }
    }

    /// Every outcome (see the module's comment): the facts a request is judged by are observed
    /// apart from it, and exit delivery's sequence numbers are per CPU.
    fn relaxed(_op: &Op) -> bool {
        true
    }

    /// `seq-order`: a listener got a lower sequence number after a higher one from one CPU. The
    /// kernel numbers each CPU's messages (`this_cpu_inc_return(taskstats_seqnum)` in
    /// `prepare_reply`) and then delivers them, preemptibly: two exits on one CPU can take numbers
    /// in one order and deliver in the other. Only overlapping exits show it.
    fn permitted(kind: &ViolationKind) -> bool {
        *kind == ViolationKind::finding("seq-order")
    }

    fn check_shared(shared: &TaskstatsShared, sim: &Sim) -> Result<(), Violation> {
        shared.subject.check_invariants(sim)
    }

    fn teardown_shared(shared: TaskstatsShared, sim: &Sim) -> Result<(), Violation> {
        shared.subject.teardown(sim)
    }
}
