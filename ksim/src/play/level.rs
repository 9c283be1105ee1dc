//! The levels: each a zoo bug with its fix off (find the schedule that breaks it) or on (the
//! "convince yourself" twin: the same tasks, and the invariant that no schedule breaks), in the
//! order a learner should meet them.

use std::sync::Arc;

use super::levels;
use super::runtime::{self, Control};
use super::snapshot::{End, Snapshot, TaskStatus};

/// A task of a level as the screen introduces it.
#[derive(Clone, Copy, Debug)]
pub(crate) struct TaskInfo {
    /// Its name (the trace lane's).
    pub name: &'static str,
    /// The kernel entry point it runs, as the kernel names it.
    pub entry: &'static str,
}

/// What wins a level.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Win {
    /// A violation of one of these kinds (as `ViolationKind` prints them).
    Violation(&'static [&'static str]),
    /// A deadlock: every unfinished task blocked. Lockdep's report of the cycle (it sees the
    /// cycle before it closes) is shown but does not end the run.
    Deadlock,
    /// Every task finishes and every check passes: the twin of a fixed bug.
    Holds,
}

/// One level. See the module documentation.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Level {
    /// Its name, as `ksim play NAME` takes it.
    pub name: &'static str,
    /// The subsystem.
    pub subsystem: &'static str,
    /// A title for the list and the screen.
    pub title: &'static str,
    /// The zoo row (its fix switch) the level is made from.
    pub zoo: &'static str,
    /// Whether the fix is on (the twin).
    pub fix_on: bool,
    /// The kernel preset.
    pub kernel: &'static str,
    /// What the player must make happen.
    pub goal: &'static str,
    /// The invariant at stake, in a sentence.
    pub invariant: &'static str,
    /// A hint, shown on `h`.
    pub hint: &'static str,
    /// The tasks, in the order the keys 1, 2, 3 pick them.
    pub tasks: &'static [TaskInfo],
    /// What wins.
    pub win: Win,
    /// The set-up: makes the `Sim` and the model, spawns the tasks, checks the invariants at the
    /// end. Runs inside the execution; the flag is `fix_on`.
    pub setup: fn(&Arc<Control>, bool),
    /// A winning plan, replayed by the tests: (level task from 0, what to run it until: the
    /// first event whose text contains this, or "" for until it blocks or finishes). A plan
    /// rather than a list of steps, so it survives a model that takes a step more or less.
    pub solution: &'static [(usize, &'static str)],
}

/// How a snapshot stands against the level's goal.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// The run is paused for the player.
    Playing,
    /// The goal was reached; the line says how.
    Won(String),
    /// The run ended without reaching the goal; the line says how.
    Lost(String),
}

impl Level {
    /// Runs the level with `choices` (level task indices) and returns where it stopped.
    pub(crate) fn run(&self, choices: &[usize]) -> Snapshot {
        let setup = self.setup;
        let fix_on = self.fix_on;
        // A deadlock level goes on past lockdep's report of the cycle: the player makes it real.
        let lockdep_ends = self.win != Win::Deadlock;
        runtime::run(move |control| setup(control, fix_on), choices, lockdep_ends)
    }

    /// The player's choices that carry out the level's solution plan.
    pub(crate) fn solution_choices(&self) -> Vec<usize> {
        let mut choices = Vec::new();
        for &(task, until) in self.solution {
            loop {
                let snapshot = self.run(&choices);
                let Some(view) = snapshot.tasks.get(task) else { break };
                if snapshot.end.is_some() || view.status != TaskStatus::Runnable {
                    break;
                }
                choices.push(task);
                let after = self.run(&choices);
                let reached = !until.is_empty()
                    && after
                        .trace
                        .iter()
                        .rev()
                        .take(after.trace.len() - snapshot.trace.len())
                        .any(|(o, t)| *o == Some(task) && t.contains(until));
                if reached || after.end.is_some() {
                    break;
                }
            }
        }
        choices
    }

    /// Judges `snapshot` against the goal.
    pub(crate) fn verdict(&self, snapshot: &Snapshot) -> Verdict {
        let Some(end) = &snapshot.end else { return Verdict::Playing };
        let line = end.line();
        match (self.win, end) {
            (Win::Violation(kinds), End::Violation(v)) if kinds.contains(&v.kind.to_string().as_str()) => {
                Verdict::Won(line)
            }
            (Win::Deadlock, End::Deadlock) => Verdict::Won(line),
            (Win::Holds, End::Finished) => Verdict::Won(format!("{line}: {}", self.invariant)),
            (Win::Deadlock, End::Finished) if !snapshot.violations.is_empty() => Verdict::Lost(
                "lockdep saw the cycle, but every task got through: make the deadlock real (u: undo, r: restart)"
                    .to_string(),
            ),
            (_, End::Finished) => {
                Verdict::Lost(format!("{line}: the bug did not happen in this schedule (u: undo, r: restart)"))
            }
            (Win::Holds, End::Violation(_) | End::Deadlock) => {
                Verdict::Lost(format!("{line}: the fixed kernel broke (a bug in ksim: please report it)"))
            }
            _ => Verdict::Lost(line),
        }
    }

    /// The title line: name, subsystem, fix state.
    pub(crate) fn heading(&self) -> String {
        let fix = if self.fix_on { "on" } else { "off" };
        format!("{}: {} · {} {} · fix {} {fix}", self.name, self.title, self.subsystem, self.kernel, self.zoo)
    }
}

/// Every level, easiest first.
pub(crate) fn levels() -> Vec<Level> {
    let mut all = levels::demo::levels();
    all.extend(levels::taskstats::levels());
    all.extend(levels::mbcache::levels());
    all.extend(levels::balloon::levels());
    all
}

/// The level named `name`, or one error line listing the names.
pub(crate) fn find(name: &str) -> Result<Level, String> {
    let all = levels();
    all.iter().find(|l| l.name == name).copied().ok_or_else(|| {
        let names: Vec<&str> = all.iter().map(|l| l.name).collect();
        format!("no level {name:?}; the levels are {} (ksim play --list)", names.join(", "))
    })
}
