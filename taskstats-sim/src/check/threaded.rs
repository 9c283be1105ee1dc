//! taskstats under threaded campaigns (`ksim fuzz taskstats --threads N`): the model shared by
//! the threads, each operation run as the op-level subject runs it, in the contexts of the tasks
//! it names (so the trace's lanes are the kernel's tasks: forks, exits, senders).
//!
//! A kernel task runs one thing at a time, so a thread claims the task an operation acts as
//! before running it (checker state, std-locked, never held across a model call): another thread
//! that picks the same task skips its operation. A task that exits, and a zombie that is reaped,
//! stay claimed for good (a task exits once, is reaped once).
//!
//! Outcomes are judged by linearizability (sim-core's search over orders of overlapping
//! operations) against [`super::TaskstatsModel`]: forks (pids handed out once), socket opens and
//! closes, and every request's errno, reply count and headers. A request is judged from the
//! facts its subject reads as it starts (is the sender capable, does the target exist, which fd
//! is open, how full its queue gets); the claims made here keep those facts true for the whole
//! call, so one judgement holds wherever the search places it. Exits, recvmsg(2) and queries of
//! a raw number are declared relaxed (see [`ThreadedSubject::relaxed`] below for why the kernel
//! does not linearize them); they still advance the reference.

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

/// A port call's operation with its target named by number, and what it claims.
struct Resolved {
    op: Op,
    /// Live tasks to claim in `claimed`.
    tasks: Vec<u32>,
    /// A target to claim in `reaped`, so that it is not reaped while the call runs: a zombie,
    /// or a PID query's live target (which may exit meanwhile, see
    /// [`TaskstatsShared::resolve_target`]).
    zombie: Option<u32>,
    /// A PID query's live target, which may exit while the call runs.
    may_exit: Option<u32>,
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

    /// fork, run, scheduler changes, open(2), socket(2), sigaction(2), as the subject's `apply_task_op`, on
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
            Op::SigactionSigchld { ignore, .. } => {
                model.sigaction_sigchld(&cx, *ignore);
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
        let clone_attr = self.subject.clone_attr;
        let faults_before = sim.faults_failed();
        let clones_before = clone_counters(sim, clone_attr);
        match model.exit(&task_cx(sim, model, pid, "do_exit")) {
            Some(report) => {
                let clones_after = clone_counters(sim, clone_attr);
                Outcome::Exited {
                    pid: report.pid,
                    cpu: report.cpu,
                    delivered: report.delivered,
                    closed: report.closed,
                    clones: (clones_after.0 - clones_before.0, clones_after.1 > clones_before.1),
                    pruned: report.pruned,
                    faulted: sim.faults_failed() != faults_before,
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
    /// sender task, claimed too (a task in sendmsg(2) is not also exiting), with the tasks
    /// [`TaskstatsShared::resolve_target`] names: then the facts the reference judges the call
    /// by (does the target exist, which fds are open) hold for the whole call.
    fn on_port(&self, sim: &Sim, op: &Op, id: u32) -> Outcome {
        let model = &self.subject.model;
        match op {
            Op::ClosePort { .. } => {
                model.close_port(&sim.cx("close", 0), id);
                return Outcome::Closed(Some(id));
            }
            Op::Recv { .. } => {
                return Outcome::Received(Some(id), model.recv_count(&sim.cx("recvmsg", 0), id))
            }
            _ => {}
        }
        let observer = sim.observer_cx("op", 0);
        let sender = model.port_sender(&observer, id);
        let resolved = self.resolve_target(&observer, op, id);
        drop(observer);
        let Some(Resolved { op, tasks, zombie, may_exit }) = resolved else { return Outcome::Done };
        // No live sender (its group is dying, its sockets not yet closed): nothing is sent.
        let Some((owner, cpu)) = sender else { return Outcome::Done };
        let mut claims = tasks;
        claims.retain(|&pid| pid != owner);
        claims.push(owner);
        if !claim_all(&self.claimed, &claims) {
            return Outcome::Done;
        }
        if zombie.is_some_and(|pid| !claim_all(&self.reaped, &[pid])) {
            claims.iter().for_each(|&pid| release(&self.claimed, pid));
            return Outcome::Done;
        }
        let outcome = match &op {
            Op::Raw { bytes, .. } => {
                let _ = model.netlink_request(&sim.cx_for_task(owner, "sendmsg", cpu), id, bytes);
                Outcome::Done
            }
            _ => self.subject.apply_request_on(sim, &op, Some(id)),
        };
        claims.iter().for_each(|&pid| release(&self.claimed, pid));
        if let Some(pid) = zombie {
            release(&self.reaped, pid);
        }
        if may_exit.is_some_and(|pid| !self.subject.live_pids(sim).contains(&pid)) {
            // The target exited (a thread reaps itself) while the query ran: the facts the
            // outcome carries, read as it started, may no longer be what its lookup saw.
            return Outcome::Done;
        }
        // A zombie leader is kept from wait(2) by its claim, not from do_notify_parent()'s
        // autoreap: its group's last thread (one forked after the claim) may have released it
        // while the query ran, so its lookup may have failed: not judged either.
        let zombie = zombie.filter(|_| may_exit.is_none());
        if zombie.is_some_and(|pid| !model.zombie_pids(&sim.observer_cx("op", 0)).contains(&pid)) {
            return Outcome::Done;
        }
        outcome
    }

    /// A query's target picked now, as the subject's `facts` would pick it, and named by its
    /// number in the requester's pid namespace (so a later pick over a list another thread changed
    /// cannot make it another task), with what the call must claim so that the facts it is
    /// judged by hold while it runs: a live target (it cannot exit meanwhile) and for a TGID
    /// query its group's live threads, a zombie target (it cannot be reaped meanwhile), for a
    /// cgroupstats request the sender's group's live threads (no open(2) changes the fd table
    /// meanwhile). None: the target's fork has not returned (it may still fail and vanish).
    ///
    /// A PID query's live target is not claimed as a task: it may exit while the query runs,
    /// as in the kernel (fill_pid() holds a task reference, not the task), which is the window
    /// CVE-2012-3510's xacct_add_tsk() read of a freed mm needs. It is only kept from being
    /// reaped by another task. A thread that exits reaps itself, though, so when the target is
    /// gone after the call the query's outcome is not judged (its facts, read as it started,
    /// may not be what its lookup saw): the detectors judge that overlap.
    ///
    /// A TGID query claims its group as resolved here: a thread forked into the group after
    /// that (its parent's fork claimed and released the parent before the query's claim) is
    /// not claimed and may run and exit while the query runs. The request's facts do not
    /// change (the target is claimed); its figures are judged by the model's ledger inside the
    /// query's siglock section (`Taskstats::judge_tgid_query`), which counts such an exiting
    /// thread as the kernel does: once before its fill_tgid_exit(), twice between that and its
    /// exit_notify(), once (as exited) after. Seed 555's case is such an overlap.
    fn resolve_target(&self, observer: &Cx, op: &Op, id: u32) -> Option<Resolved> {
        let model = &self.subject.model;
        let live = model.live_pids(observer);
        let owner = model.port_owner(observer, id).map_or(0, |(tgid, _)| tgid);
        let group_of = |tgid: u32| -> Vec<u32> {
            live.iter()
                .copied()
                .filter(|&pid| model.task(observer, pid).is_some_and(|t| t.tgid == tgid))
                .collect()
        };
        let (port, target, tgid_query) = match op {
            Op::QueryPid { port, target, .. } => (*port, target, false),
            Op::QueryTgid { port, target } => (*port, target, true),
            Op::CgroupStats { .. } => {
                return Some(Resolved {
                    op: op.clone(),
                    tasks: group_of(owner),
                    zombie: None,
                    may_exit: None,
                })
            }
            _ => return Some(Resolved { op: op.clone(), tasks: Vec::new(), zombie: None, may_exit: None }),
        };
        let mut all = live.clone();
        all.extend(model.zombie_pids(observer));
        all.sort_unstable();
        let current = live.iter().find_map(|&pid| model.task(observer, pid).filter(|t| t.tgid == owner));
        let ns = match (&current, self.subject.model.fixes().on(crate::fixes::PID_NAMESPACES)) {
            (Some(t), true) => t.pid_ns(),
            _ => 0,
        };
        let (picked, nr) = match target {
            Target::Task(i) => {
                let picked = pick(&all, *i);
                (picked, picked.map_or(0, |pid| model.task_nr_in(observer, pid, ns)))
            }
            Target::Nr(n) => {
                (all.iter().copied().find(|&pid| *n != 0 && model.task_nr_in(observer, pid, ns) == *n), *n)
            }
        };
        if picked.is_some_and(|pid| !locked(&self.born).contains(&pid)) {
            return None;
        }
        let found = picked.and_then(|pid| model.task(observer, pid));
        let found_pid = found.as_ref().map(|t| t.pid);
        let zombie = found_pid.filter(|pid| !tgid_query || !live.contains(pid));
        let mut tasks = match &found {
            Some(t) if tgid_query => group_of(t.tgid),
            _ => Vec::new(),
        };
        if let Some(pid) = found_pid.filter(|pid| tgid_query && live.contains(pid) && !tasks.contains(pid)) {
            tasks.push(pid);
        }
        let target = Target::Nr(nr);
        let op = if tgid_query {
            Op::QueryTgid { port, target }
        } else {
            Op::QueryPid { port, target, preempt: None }
        };
        let may_exit = found_pid.filter(|pid| !tgid_query && live.contains(pid));
        Some(Resolved { op, tasks, zombie, may_exit })
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
    /// The extra forks are of every kind a task's own credentials allow (threads, processes, new
    /// pid and user namespaces, each as likely): a threaded case has a fifth of an op-level
    /// case's operations, and what happens to a group or a namespace needs its fork first, then
    /// a socket of a task inside it (socket opens weigh twice a close). PID queries of a task,
    /// half of them preempted in `xacct_add_tsk()`, are weighted up too: a query racing its
    /// target's exit is the taskstats race (CVE-2012-3510's read of a freed mm). Before session
    /// 10 (namespace forks a third of the extra ones, one open per close, no extra queries) the
    /// zoo's `namespace-checks` row was found threaded in 4 of 6 seed ranges of 400 cases
    /// (median 73 cases), after it in 6 of 6 (median 20).
    fn threaded_ops(config: &TaskstatsConfig) -> BoxedStrategy<Op> {
        let cpus = config.params.cpus.max(1) as u8;
        let kind = prop_oneof![
            2 => Just(ForkKind::Process),
            2 => Just(ForkKind::Thread),
            2 => Just(ForkKind::NewPidNs),
            2 => Just(ForkKind::NewUserNs),
        ];
        prop_oneof![
            4 => super::op::op_strategy(config),
            2 => any::<u8>().prop_map(|task| Op::Exit { task }),
            1 => (any::<u8>(), kind).prop_map(|(parent, kind)| Op::Fork { parent, kind }),
            2 => any::<u8>().prop_map(|task| Op::OpenPort { task }),
            1 => (any::<u8>(), any::<u8>(), proptest::option::weighted(0.5, any::<u8>()))
                .prop_map(|(port, task, preempt)| Op::QueryPid { port, target: Target::Task(task), preempt }),
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
            Op::SigactionSigchld { task, .. } => shared.task_op(sim, op, *task, "sigaction"),
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

    /// Exits and recvmsg(2): an exit walks its CPU's listeners under `down_read` and prunes
    /// under `down_write` later, so two exits on one CPU can each see the other's half done
    /// (both find a closed listener, one prunes it): no order of whole exits explains their
    /// clone and prune counts; and a recvmsg(2) counts what those exits queued. A query naming
    /// a raw number is relaxed too: a fork running beside it may hand out that number
    /// (the child is hashed before its fork returns), so whether it exists is decided mid-call.
    fn relaxed(op: &Op) -> bool {
        matches!(
            op,
            Op::Exit { .. }
                | Op::Recv { .. }
                | Op::QueryPid { target: Target::Nr(_), .. }
                | Op::QueryTgid { target: Target::Nr(_), .. }
        )
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
