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

use sim_core::check::Subject;
use sim_core::threaded::ThreadedSubject;
use sim_core::{Cx, Sim, Violation, ViolationKind};

use super::{pick, task_cx, Op, Outcome, TaskstatsConfig, TaskstatsSubject};

/// The subject and which tasks are claimed.
#[derive(Debug)]
pub struct TaskstatsShared {
    subject: TaskstatsSubject,
    /// Checker state: tasks an operation is running as, and tasks that exited (kept).
    claimed: StdMutex<BTreeSet<u32>>,
    /// Checker state: zombies reaped or being reaped (kept).
    reaped: StdMutex<BTreeSet<u32>>,
}

/// Claims the `index`-th of `candidates` not claimed in `set`; None when none is free.
fn claim(set: &StdMutex<BTreeSet<u32>>, candidates: Vec<u32>, index: u8) -> Option<u32> {
    let mut set = set.lock().unwrap_or_else(PoisonError::into_inner);
    let free: Vec<u32> = candidates.into_iter().filter(|pid| !set.contains(pid)).collect();
    let pid = pick(&free, index)?;
    set.insert(pid);
    Some(pid)
}

fn release(set: &StdMutex<BTreeSet<u32>>, pid: u32) {
    set.lock().unwrap_or_else(PoisonError::into_inner).remove(&pid);
}

impl TaskstatsShared {
    /// fork, run, scheduler changes, open(2), socket(2), as the subject's `apply_task_op`, on
    /// a claimed task.
    fn task_op(&self, sim: &Sim, op: &Op, task: u8, name: &str) -> Outcome {
        let model = &self.subject.model;
        let Some(pid) = claim(&self.claimed, self.subject.live_pids(sim), task) else {
            return if matches!(op, Op::OpenPort { .. }) { Outcome::Port(None) } else { Outcome::Done };
        };
        let cx = if name == "sched" { sim.cx("sched", 0) } else { task_cx(sim, model, pid, name) };
        let outcome = match op {
            Op::Fork { kind, .. } => Outcome::Forked(model.fork(&cx, *kind)),
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
            _ => Outcome::Done,
        };
        drop(cx);
        release(&self.claimed, pid);
        outcome
    }

    /// do_exit() of a claimed live task other than init; the claim is kept.
    fn exit(&self, sim: &Sim, task: u8) -> Outcome {
        let model = &self.subject.model;
        let candidates = self.subject.live_pids(sim).into_iter().filter(|&p| p != 1).collect();
        let Some(pid) = claim(&self.claimed, candidates, task) else {
            return Outcome::Done;
        };
        let faults_before = sim.faults().failed();
        match model.exit(&task_cx(sim, model, pid, "do_exit")) {
            Some(report) => Outcome::Exited {
                pid: report.pid,
                cpu: report.cpu,
                delivered: report.delivered,
                closed: report.closed,
                lists_after: (sim.faults().failed() != faults_before).then(|| self.subject.lists(sim)),
            },
            None => Outcome::Done,
        }
    }

    /// A port operation (close, recvmsg, sendmsg), as the subject runs it, while its port's owner
    /// task is claimed: one syscall at a time per task, so a register and a deregister on one
    /// socket do not overlap (the model's own post-condition checks assume they do not). The
    /// subject picks the port again from the same list; an open or close between the two picks
    /// can make it another port, a window the claim does not cover.
    fn port_op(&self, sim: &Sim, op: &Op, port: u8) -> Outcome {
        let model = &self.subject.model;
        let observer = sim.observer_cx("op", 0);
        let owner = pick(&self.subject.port_ids(sim), port).and_then(|id| model.port_sender(&observer, id));
        drop(observer);
        let Some((owner, _)) = owner else {
            // No port to act on now: what the subject returns when there is none (its own pick
            // could see a port another thread is opening, unclaimed).
            return match op {
                Op::ClosePort { .. } => Outcome::Closed(None),
                Op::Recv { .. } => Outcome::Received(None, 0),
                _ => Outcome::Done,
            };
        };
        if claim(&self.claimed, vec![owner], 0).is_none() {
            return Outcome::Done;
        }
        let outcome = self.subject.apply_shared(sim, op);
        release(&self.claimed, owner);
        outcome
    }

    /// release_task() of a zombie no other thread is reaping.
    fn reap(&self, sim: &Sim, task: u8) -> Outcome {
        let model = &self.subject.model;
        let zombies = model.zombie_pids(&sim.observer_cx("op", 0));
        if let Some(pid) = claim(&self.reaped, zombies, task) {
            model.reap(&sim.cx("release_task", 0), pid);
        }
        Outcome::Done
    }
}

impl ThreadedSubject for TaskstatsSubject {
    type Shared = TaskstatsShared;

    fn share(sim: &Sim, config: &TaskstatsConfig) -> TaskstatsShared {
        TaskstatsShared {
            subject: TaskstatsSubject::new(sim, config),
            claimed: StdMutex::default(),
            reaped: StdMutex::default(),
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

    /// Two kinds need a quiescent world and run in the prefix only. A fork: the child is in the
    /// task table before fork returns, where another thread's exit or run could pick it, which no
    /// kernel task can do to a child that has not run yet (claiming it would need the pid before
    /// it exists). A stats query: the model checks the record it returns against its ledger of
    /// every thread's accounting after the reply, which another thread's `Run` changes meanwhile.
    fn concurrent(op: &Op) -> bool {
        !matches!(op, Op::Fork { .. } | Op::QueryPid { .. } | Op::QueryTgid { .. })
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
