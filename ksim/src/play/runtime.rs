//! The player's scheduler: a level's tasks run as shuttle threads, and every scheduling
//! decision that matters is the player's.
//!
//! A run is deterministic given the player's choices, so the UI never keeps an execution alive:
//! every key that changes the schedule runs the level again from the start with the choices made
//! so far, and the scheduler stops the execution at the first decision the choices do not cover
//! (undo and restart are the same run with a shorter prefix). What the player sees at that point
//! is a [`Snapshot`] the scheduler takes from `std`-locked state only (the `Sim`'s trace and
//! violations, which tasks shuttle says are runnable), because nothing that is a shuttle object
//! may be touched from inside the scheduler.
//!
//! Which decisions are the player's: after a chosen task has done something visible (a trace
//! event: a lock taken or released, a kernel function entered or left, a guarded field touched)
//! and reached its next scheduling point. Scheduling points where the running task did nothing
//! visible yet (an atomic, a lock fast path) are taken on the player's behalf by letting it run
//! on. The shuttle main task (the level's set-up) always runs when it can before the level's
//! tasks have all been spawned; after that it only waits, so "only the main task can run" while
//! some level task is unfinished is a deadlock, found by the scheduler itself.
//!
//! The schedule runtime is sim-core's (`sim_core::sync::schedule`, the `threaded` feature): the
//! model's locks are shuttle objects because the level builds them inside the execution.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use sim_core::sync::schedule::{self, Schedule, Scheduler, Task, TaskId};
use sim_core::sync::thread;
use sim_core::{Sim, Violation};

use super::snapshot::{End, Snapshot, TaskStatus};

/// Steps a task may run on its own between two visible events before the player is asked
/// anyway (a loop that makes no trace event, such as a spin on a bit lock).
const AUTO_STEPS_MAX: usize = 64;

/// Scheduling steps one run may take (a level's run takes a few hundred).
const STEPS_MAX: usize = 200_000;

/// What the level's set-up shares with the scheduler: all `std`, so reading it from the
/// scheduler adds no scheduling point.
#[derive(Debug, Default)]
pub(crate) struct Control {
    /// The level's `Sim`, once the set-up made it (dropped before the execution ends).
    sim: Mutex<Option<Sim>>,
    /// How many level tasks have been spawned; the set-up raises `started` after the last.
    spawned: AtomicUsize,
    started: AtomicBool,
    /// Which level tasks have returned.
    finished: Mutex<Vec<bool>>,
    /// Which level tasks are daemons (the level is over when every other task has returned).
    daemons: Mutex<Vec<bool>>,
    /// The run's result, set once.
    outcome: Mutex<Option<Snapshot>>,
    /// Who ran: (first trace event index, level task) for each stretch a level task ran.
    stretches: Mutex<Vec<(usize, Option<usize>)>>,
    /// The level's own lines about its state at the end (set by the set-up after its checks).
    state: Mutex<Vec<String>>,
    /// Whether a lockdep report ends the run (not in a level whose goal is the deadlock itself).
    lockdep_ends: bool,
}

impl Control {
    /// Publishes the level's `Sim` so the scheduler can read its trace.
    pub(crate) fn publish(&self, sim: &Sim) {
        *self.sim.lock().expect("control") = Some(sim.clone());
    }

    /// Sets the level's closing lines about its state.
    pub(crate) fn set_state(&self, lines: Vec<String>) {
        *self.state.lock().expect("control") = lines;
    }

    fn sim(&self) -> Option<Sim> {
        self.sim.lock().expect("control").clone()
    }

    /// The first violation that ends the run.
    fn ending_violation(&self, sim: &Sim) -> Option<Violation> {
        sim.violations()
            .into_iter()
            .find(|v| self.lockdep_ends || !v.kind.to_string().starts_with("lockdep:"))
    }

    fn all_done(&self) -> bool {
        let finished = self.finished.lock().expect("control");
        let daemons = self.daemons.lock().expect("control");
        finished.iter().zip(daemons.iter()).all(|(&f, &d)| f || d)
    }
}

/// A level's task as the set-up hands it to [`spawn_tasks`].
pub(crate) struct TaskBody {
    /// A daemon runs until the set-up stops it after the other tasks returned (a host device).
    pub daemon: bool,
    /// What the task runs.
    pub body: Box<dyn FnOnce() + Send>,
}

impl std::fmt::Debug for TaskBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TaskBody").field("daemon", &self.daemon).finish_non_exhaustive()
    }
}

/// Spawns the level's tasks in order (shuttle task `i + 1` is level task `i`) and waits, yielding,
/// until every non-daemon task has returned; `stop_daemons` is then called and the daemons are
/// joined. Runs in the level's set-up, inside the execution.
pub(crate) fn spawn_tasks(control: &Arc<Control>, tasks: Vec<TaskBody>, stop_daemons: impl FnOnce()) {
    let count = tasks.len();
    *control.finished.lock().expect("control") = vec![false; count];
    *control.daemons.lock().expect("control") = tasks.iter().map(|t| t.daemon).collect();
    let mut handles = Vec::new();
    for (index, task) in tasks.into_iter().enumerate() {
        let mine = control.clone();
        handles.push(thread::spawn(move || {
            (task.body)();
            mine.finished.lock().expect("control")[index] = true;
        }));
        control.spawned.fetch_add(1, Ordering::SeqCst);
    }
    control.started.store(true, Ordering::SeqCst);
    while !control.all_done() {
        thread::yield_now();
    }
    stop_daemons();
    for handle in handles {
        let _ = handle.join();
    }
}

/// Runs a level's set-up with the player's `choices` (level task indices) and returns what the
/// player sees where the choices run out, or how the level ended.
/// A lockdep report ends the run only when `lockdep_ends`.
pub(crate) fn run(
    setup: impl Fn(&Arc<Control>) + Send + Sync + 'static,
    choices: &[usize],
    lockdep_ends: bool,
) -> Snapshot {
    let control = Arc::new(Control { lockdep_ends, ..Control::default() });
    let scheduler = PlayerScheduler {
        control: control.clone(),
        choices: choices.to_vec(),
        used: 0,
        executions: 0,
        last_len: 0,
        running: None,
        auto: 0,
        counter: 0,
    };
    let inner = control.clone();
    let ran = catch_unwind(AssertUnwindSafe(|| {
        schedule::run(scheduler, STEPS_MAX, move || {
            setup(&inner);
            finish(&inner);
        })
    }));
    let snapshot = control.outcome.lock().expect("control").take();
    match (ran, snapshot) {
        (_, Some(snapshot)) => snapshot,
        (Err(payload), None) => Snapshot::ended(End::Panic(panic_text(payload.as_ref())), choices.len()),
        (Ok(_), None) => {
            Snapshot::ended(End::Panic("the level ended without a result".into()), choices.len())
        }
    }
}

/// The level ran to its end: every task returned and the set-up made its checks.
fn finish(control: &Control) {
    let Some(sim) = control.sim() else { return };
    let finished = control.finished.lock().expect("control").clone();
    let statuses = finished.iter().map(|_| TaskStatus::Finished).collect();
    let end = match control.ending_violation(&sim) {
        Some(violation) => End::Violation(violation),
        None => End::Finished,
    };
    let mut snapshot = take_snapshot(control, &sim, statuses, usize::MAX);
    snapshot.end = Some(end);
    *control.outcome.lock().expect("control") = Some(snapshot);
    *control.sim.lock().expect("control") = None;
}

fn panic_text(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_else(|| "a panic".to_string())
}

/// A snapshot of the `Sim`'s trace with each event attributed to the level task that ran it.
fn take_snapshot(control: &Control, sim: &Sim, statuses: Vec<TaskStatus>, steps: usize) -> Snapshot {
    let events = sim.trace().events();
    let stretches = control.stretches.lock().expect("control").clone();
    let mut owners = Vec::with_capacity(events.len());
    let mut next = 0;
    let mut owner = None;
    for index in 0..events.len() {
        while next < stretches.len() && stretches[next].0 <= index {
            owner = stretches[next].1;
            next += 1;
        }
        owners.push(owner);
    }
    let state = control.state.lock().expect("control").clone();
    Snapshot::new(events, owners, statuses, sim.violations(), sim.trace_hash(), steps, state)
}

/// The scheduler that asks the player (through the prefix of choices it was given).
struct PlayerScheduler {
    control: Arc<Control>,
    choices: Vec<usize>,
    used: usize,
    executions: usize,
    /// Trace length when the running task was last chosen.
    last_len: usize,
    running: Option<usize>,
    auto: usize,
    counter: u64,
}

impl PlayerScheduler {
    /// Records that level task `task` (None: the set-up) runs from trace event `at` on.
    fn ran(&mut self, task: Option<usize>, at: usize) {
        let mut stretches = self.control.stretches.lock().expect("control");
        if stretches.last().map(|s| s.1) != Some(task) {
            stretches.push((at, task));
        }
        self.running = task;
    }

    /// Ends the run here with `end` (None: the choices ran out; the player decides next).
    fn stop(&mut self, sim: &Sim, runnable: &[usize], end: Option<End>) -> Option<TaskId> {
        let spawned = self.control.spawned.load(Ordering::SeqCst);
        let finished = self.control.finished.lock().expect("control").clone();
        let statuses = (0..spawned)
            .map(|i| {
                if finished[i] {
                    TaskStatus::Finished
                } else if runnable.contains(&i) {
                    TaskStatus::Runnable
                } else {
                    TaskStatus::Blocked
                }
            })
            .collect();
        let mut snapshot = take_snapshot(&self.control, sim, statuses, self.used);
        snapshot.end = end;
        *self.control.outcome.lock().expect("control") = Some(snapshot);
        *self.control.sim.lock().expect("control") = None;
        None
    }
}

impl Scheduler for PlayerScheduler {
    fn new_execution(&mut self) -> Option<Schedule> {
        self.executions += 1;
        (self.executions == 1).then(|| Schedule::new(0))
    }

    fn next_task(&mut self, runnable: &[&Task], current: Option<TaskId>, yielding: bool) -> Option<TaskId> {
        let main = TaskId::from(0);
        let main_runnable = runnable.iter().any(|t| t.id() == main);
        let started = self.control.started.load(Ordering::SeqCst);
        let sim = self.control.sim();
        let len = sim.as_ref().map_or(0, |s| s.trace().len() as usize);
        if !started || self.control.all_done() || sim.is_none() {
            let pick = if main_runnable { main } else { runnable[0].id() };
            self.ran(level_task(pick), len);
            return Some(pick);
        }
        let sim = sim.expect("checked above");
        let levels: Vec<usize> = runnable.iter().filter_map(|t| level_task(t.id())).collect();
        let current_level = current.and_then(level_task);
        // Let the running task run on until it has done something the player can see.
        if let Some(task) = current_level.filter(|t| levels.contains(t) && Some(*t) == self.running) {
            if len == self.last_len && !yielding && self.auto < AUTO_STEPS_MAX {
                self.auto += 1;
                return Some(TaskId::from(task + 1));
            }
        }
        self.auto = 0;
        if let Some(violation) = self.control.ending_violation(&sim) {
            return self.stop(&sim, &levels, Some(End::Violation(violation)));
        }
        if levels.is_empty() {
            return self.stop(&sim, &levels, Some(End::Deadlock));
        }
        let Some(&choice) = self.choices.get(self.used) else {
            return self.stop(&sim, &levels, None);
        };
        if !levels.contains(&choice) {
            let end = End::NotRunnable { step: self.used, task: choice };
            return self.stop(&sim, &levels, Some(end));
        }
        self.used += 1;
        self.last_len = len;
        self.ran(Some(choice), len);
        Some(TaskId::from(choice + 1))
    }

    fn next_u64(&mut self) -> u64 {
        self.counter = self.counter.wrapping_add(0x9e37_79b9_7f4a_7c15);
        self.counter
    }
}

/// The level task a shuttle task is (None: the set-up, task 0).
fn level_task(id: TaskId) -> Option<usize> {
    schedule::task_index(id).checked_sub(1)
}
