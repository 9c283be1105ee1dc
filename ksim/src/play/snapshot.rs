//! What the player sees at one point of a run: each task's kernel function, last step and held
//! locks, the trace so far with who ran each event, the violations, and how the level ended.
//!
//! Everything here is derived from the `Sim`'s trace (a `std`-locked record), so it can be taken
//! from inside the scheduler without touching the model.

use std::collections::BTreeMap;

use sim_core::trace::{Event, EventKind};
use sim_core::Violation;

/// How a task stands where the run stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum TaskStatus {
    /// It can run its next step.
    Runnable,
    /// It waits (a lock another task holds, a wait queue, a completion).
    Blocked,
    /// It returned.
    Finished,
}

impl TaskStatus {
    /// The word the screen shows.
    pub(crate) fn word(self) -> &'static str {
        match self {
            TaskStatus::Runnable => "ready",
            TaskStatus::Blocked => "blocked",
            TaskStatus::Finished => "done",
        }
    }
}

/// How a run ended (a snapshot without one is paused, waiting for the player).
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum End {
    /// A checker reported a violation (lockdep, a detector, an invariant, the model's audit).
    Violation(Violation),
    /// Every unfinished task is blocked.
    Deadlock,
    /// Every task returned and the checks at the end found nothing.
    Finished,
    /// A saved schedule chose task `task` at step `step`, where it could not run.
    NotRunnable { step: usize, task: usize },
    /// ksim itself panicked (a bug in ksim or its model).
    Panic(String),
}

impl End {
    /// One line saying how the run ended.
    pub(crate) fn line(&self) -> String {
        match self {
            End::Violation(v) => format!("violation: {v}"),
            End::Deadlock => "deadlock: every unfinished task is blocked".to_string(),
            End::Finished => "every task finished and every check passed".to_string(),
            End::NotRunnable { step, task } => {
                format!("step {}: task {} cannot run there", step + 1, task + 1)
            }
            End::Panic(text) => format!("ksim panicked: {text}"),
        }
    }
}

/// One task as the screen shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct TaskView {
    /// Ready, blocked or done.
    pub status: TaskStatus,
    /// The kernel functions it is inside, outermost first (from the trace's op begin/end).
    pub functions: Vec<String>,
    /// The lock classes it holds, in the order taken.
    pub held: Vec<String>,
    /// Its last trace events, oldest first.
    pub recent: Vec<String>,
}

/// What the player sees. See the module documentation.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Snapshot {
    /// Each level task.
    pub tasks: Vec<TaskView>,
    /// The trace so far: (level task that ran it, or None for the set-up; the event's text).
    pub trace: Vec<(Option<usize>, String)>,
    /// Every violation reported so far.
    pub violations: Vec<Violation>,
    /// The trace hash where the run stopped.
    pub trace_hash: u64,
    /// How many of the player's choices the run used.
    pub steps: usize,
    /// How the run ended; None: paused for the player's next choice.
    pub end: Option<End>,
    /// The level's own lines about its state at the end.
    pub state: Vec<String>,
}

impl Snapshot {
    /// A run that ended before it had a trace to show.
    pub(crate) fn ended(end: End, steps: usize) -> Snapshot {
        Snapshot {
            tasks: Vec::new(),
            trace: Vec::new(),
            violations: Vec::new(),
            trace_hash: 0,
            steps,
            end: Some(end),
            state: Vec::new(),
        }
    }

    /// Derives the task views from the trace `events`, each owned by the level task in `owners`.
    pub(crate) fn new(
        events: Vec<Event>,
        owners: Vec<Option<usize>>,
        statuses: Vec<TaskStatus>,
        violations: Vec<Violation>,
        trace_hash: u64,
        steps: usize,
        state: Vec<String>,
    ) -> Snapshot {
        let mut tasks: Vec<TaskView> = statuses
            .into_iter()
            .map(|status| TaskView { status, functions: Vec::new(), held: Vec::new(), recent: Vec::new() })
            .collect();
        // Which task took each lock acquisition, so a release by another context still counts.
        let mut holders: BTreeMap<u64, usize> = BTreeMap::new();
        let mut trace = Vec::with_capacity(events.len());
        for (event, owner) in events.iter().zip(owners) {
            let text = describe(&event.kind);
            trace.push((owner, text.clone()));
            let Some(view) = owner.and_then(|o| tasks.get_mut(o)) else { continue };
            match &event.kind {
                EventKind::Acquired { class, token, .. } => {
                    view.held.push(class.to_string());
                    holders.insert(*token, owner.unwrap_or_default());
                }
                EventKind::OpBegin { name, .. } => view.functions.push(name.to_string()),
                EventKind::OpEnd { name, .. } => {
                    if let Some(at) = view.functions.iter().rposition(|f| f == &name.to_string()) {
                        view.functions.truncate(at);
                    }
                }
                _ => {}
            }
            view.recent.push(text);
            if view.recent.len() > 3 {
                view.recent.remove(0);
            }
            if let EventKind::Released { class, token } = &event.kind {
                let holder = holders.remove(token).unwrap_or(owner.unwrap_or_default());
                if let Some(view) = tasks.get_mut(holder) {
                    if let Some(at) = view.held.iter().rposition(|h| h == &class.to_string()) {
                        view.held.remove(at);
                    }
                }
            }
        }
        Snapshot { tasks, trace, violations, trace_hash, steps, end: None, state }
    }
}

/// One trace event as a short line (the trace's own story format is wider than a task column).
pub(crate) fn describe(kind: &EventKind) -> String {
    match kind {
        EventKind::Acquired { class, trylock, .. } => {
            format!("{}({class})", if *trylock { "trylock" } else { "lock" })
        }
        EventKind::Released { class, .. } => format!("unlock({class})"),
        EventKind::OpBegin { name, detail } if detail.is_empty() => format!("> {name}"),
        EventKind::OpBegin { name, detail } => format!("> {name} {detail}"),
        EventKind::OpEnd { name, result } => format!("< {name} = {result}"),
        EventKind::Fault { site } => format!("fault injected at {site}"),
        EventKind::Sleep { what, ns } => format!("sleep {what} {ns}ns"),
        EventKind::Note { text } => text.to_string(),
        EventKind::Violation { kind, message } => format!("!! {kind}: {message}"),
        EventKind::RcuReadSide { lock: true } => "rcu_read_lock()".to_string(),
        EventKind::RcuReadSide { lock: false } => "rcu_read_unlock()".to_string(),
        EventKind::RcuAssign { pointer, .. } => format!("rcu_assign_pointer({pointer})"),
        EventKind::RcuGracePeriod { callbacks } => format!("grace period ends ({callbacks} callbacks)"),
        EventKind::RcuFree { pointer, deferred, .. } => {
            format!("free {pointer}{}", if *deferred { " (call_rcu)" } else { "" })
        }
        EventKind::Kref { object, op, count } => format!("kref {op:?} {object} -> {count}"),
        EventKind::Irq { context, enter } => format!("{} {context}", if *enter { "enter" } else { "leave" }),
        EventKind::Access { field, write } => format!("{} {field}", if *write { "write" } else { "read" }),
    }
}
