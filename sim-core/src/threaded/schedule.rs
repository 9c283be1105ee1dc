//! Schedules as data: which scheduler a threaded case runs under, the decisions an execution made
//! (recorded by a wrapper around any shuttle [`Scheduler`]), their text form for artifacts, and a
//! replaying scheduler that makes the same decisions again.
//!
//! The recorder is what keeps the scheduler pluggable: [`run_threads`] takes any boxed shuttle
//! scheduler (random, PCT, a replay, or one of a caller's own, as `ksim play` has) and hands back
//! each execution's decisions, so whatever chose a schedule, the artifact can replay it exactly.

use std::fmt::Write as _;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex as StdMutex, PoisonError};

use serde::{Deserialize, Serialize};

use crate::sync::schedule::{self, PctScheduler, RandomScheduler, Schedule, Scheduler, Task, TaskId};

/// Which scheduler a threaded case runs under.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum SchedulerChoice {
    /// Shuttle's random scheduler, seeded from the case seed.
    Random,
    /// Runs of one task at a time ([`Bursts`]): random, but the running task usually goes on,
    /// seeded from the case seed.
    Bursts,
    /// Shuttle's PCT scheduler (probabilistic concurrency testing) with this bug depth, seeded
    /// from the case seed.
    Pct {
        /// How many priority change points an execution gets (the bug depth PCT targets).
        depth: usize,
    },
    /// The recorded decisions of one execution ([`Recorded::encode`]), made again.
    Replay {
        /// The encoded schedule.
        schedule: String,
    },
}

impl SchedulerChoice {
    /// The choice for a campaign's case seed, in turn: random, bursts, PCT (depth 2 or 3), so a
    /// campaign gets all three.
    pub fn for_seed(seed: u64) -> SchedulerChoice {
        match seed % 3 {
            0 => SchedulerChoice::Random,
            1 => SchedulerChoice::Bursts,
            _ => SchedulerChoice::Pct { depth: 2 + (seed / 3 % 2) as usize },
        }
    }

    /// The shuttle scheduler for this choice, `executions` executions long, seeded from `seed`.
    pub fn scheduler(&self, seed: u64, executions: usize) -> Result<Box<dyn Scheduler + Send>, String> {
        if !matches!(self, SchedulerChoice::Replay { .. }) {
            env_seed_unset()?;
        }
        let seed = seed ^ 0x6b73_696d_5f74_6872; // "ksim_thr": apart from the op generator's stream
        Ok(match self {
            SchedulerChoice::Random => Box::new(RandomScheduler::new_from_seed(seed, executions)),
            SchedulerChoice::Bursts => Box::new(Bursts::new(seed, executions)),
            // PCT's first execution only measures the schedule's length: give it one more.
            SchedulerChoice::Pct { depth } => {
                Box::new(PctScheduler::new_from_seed(seed, (*depth).max(1), executions + 1))
            }
            SchedulerChoice::Replay { schedule } => Box::new(Replay::new(Recorded::decode(schedule)?)),
        })
    }
}

/// The environment variable shuttle's random and PCT schedulers read their seed from, in place
/// of the one they are given.
pub const SHUTTLE_SEED_VARIABLE: &str = "SHUTTLE_RANDOM_SEED";

/// Err when [`SHUTTLE_SEED_VARIABLE`] is set: shuttle would then seed every case's scheduler
/// with it, whatever the case seed, so a campaign would run one schedule stream over and over
/// and its artifacts would name seeds that do not replay. Refusing is louder than unsetting it
/// (which a multithreaded process cannot do safely).
pub fn env_seed_unset() -> Result<(), String> {
    refuse_seed_override(std::env::var_os(SHUTTLE_SEED_VARIABLE))
}

/// [`env_seed_unset`]'s verdict on the variable's value (`None`: unset).
pub fn refuse_seed_override(value: Option<std::ffi::OsString>) -> Result<(), String> {
    match value {
        None => Ok(()),
        Some(value) => Err(format!(
            "{SHUTTLE_SEED_VARIABLE}={} is set: shuttle would use it in place of each threaded case's \
             seed; unset it (ksim replays a case from its own seed or artifact)",
            value.to_string_lossy()
        )),
    }
}

/// A random scheduler whose running task goes on with a high probability (drawn per execution:
/// 3/4, 15/16 or 63/64), else another runnable task, uniformly. Shuttle's random scheduler
/// switches at almost every step, so a window that needs one task to stop for a whole call of
/// another (a lookup preempted while its target exits and frees what it read) is reached with
/// a probability that falls geometrically in the length of that call; here, once switched to,
/// the other task usually runs a long stretch. PCT reaches such windows too, but only where one
/// of its few change points falls. A task that yields is always switched away from, so a spin
/// never livelocks; and half the time it is also kept off for up to [`PARK_STEPS_MAX`] steps
/// while another task can run: a model yields where the kernel may preempt a task (a preemption
/// point), and a preempted task may stay off its CPU while another runs a whole call.
#[derive(Debug)]
pub struct Bursts {
    state: u64,
    executions_left: usize,
    /// The running task goes on unless a draw below this (out of 2^16) says switch.
    switch_below: u64,
    /// A task that yielded and is kept off, with the steps left.
    parked: Option<(TaskId, u64)>,
}

/// Most steps [`Bursts`] keeps a yielding task off while others can run.
pub const PARK_STEPS_MAX: u64 = 400;

impl Bursts {
    /// `executions` executions, their decisions drawn from `seed`.
    pub fn new(seed: u64, executions: usize) -> Bursts {
        Bursts { state: seed, executions_left: executions, switch_below: 1 << 14, parked: None }
    }

    /// splitmix64: small, and the same on every platform.
    fn next(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
}

impl Scheduler for Bursts {
    fn new_execution(&mut self) -> Option<Schedule> {
        if self.executions_left == 0 {
            return None;
        }
        self.executions_left -= 1;
        self.switch_below = [1 << 14, 1 << 12, 1 << 10][(self.next() % 3) as usize];
        self.parked = None;
        Some(Schedule::new(self.next()))
    }

    fn next_task(&mut self, runnable: &[&Task], current: Option<TaskId>, yielding: bool) -> Option<TaskId> {
        self.parked = self.parked.and_then(|(task, left)| (left > 1).then_some((task, left - 1)));
        if let Some(current) = current.filter(|_| yielding && self.next() & 1 == 0) {
            self.parked = Some((current, 1 + self.next() % PARK_STEPS_MAX));
        }
        let parked = self.parked.map(|(task, _)| task);
        let others_run = runnable.iter().any(|t| Some(t.id()) != parked);
        let runnable: Vec<&Task> =
            runnable.iter().copied().filter(|t| !others_run || Some(t.id()) != parked).collect();
        let goes_on = current.filter(|c| !yielding && runnable.iter().any(|t| t.id() == *c));
        if let Some(current) = goes_on {
            if self.next() % (1 << 16) >= self.switch_below {
                return Some(current);
            }
        }
        let others: Vec<TaskId> = runnable.iter().map(|t| t.id()).filter(|&id| Some(id) != goes_on).collect();
        if others.is_empty() {
            return goes_on.or_else(|| runnable.first().map(|t| t.id()));
        }
        Some(others[(self.next() % others.len() as u64) as usize])
    }

    fn next_u64(&mut self) -> u64 {
        self.next()
    }
}

/// One scheduling decision.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    /// Shuttle task `n` ran next (0 is the execution's main task, threads follow in spawn order).
    Task(usize),
    /// A task asked for a random number and got this one.
    Random(u64),
}

/// The decisions of one execution, and how many of them were preemptions (the running task was
/// still runnable and another was chosen).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Recorded {
    /// Every decision, in order.
    pub steps: Vec<Step>,
    /// How many task choices switched away from a task that could have gone on.
    pub preemptions: usize,
}

impl Recorded {
    /// The text form: one character per task choice (`0`-`9`, `a`-`z` for tasks 10 to 35) and
    /// `r<hex>.` per random number.
    pub fn encode(&self) -> String {
        let mut text = String::with_capacity(self.steps.len());
        for step in &self.steps {
            match *step {
                Step::Task(task) => text.push(char::from_digit(task as u32, 36).unwrap_or('?')),
                Step::Random(value) => {
                    let _ = write!(text, "r{value:x}.");
                }
            }
        }
        text
    }

    /// Parses [`Recorded::encode`]'s text.
    pub fn decode(text: &str) -> Result<Recorded, String> {
        let mut steps = Vec::with_capacity(text.len());
        let mut chars = text.chars();
        while let Some(c) = chars.next() {
            if c == 'r' {
                let hex: String = chars.by_ref().take_while(|&c| c != '.').collect();
                let value = u64::from_str_radix(&hex, 16).map_err(|e| format!("schedule: r{hex}: {e}"))?;
                steps.push(Step::Random(value));
            } else {
                let task = c.to_digit(36).ok_or_else(|| format!("schedule: unexpected {c:?}"))?;
                steps.push(Step::Task(task as usize));
            }
        }
        Ok(Recorded { steps, preemptions: 0 })
    }

    /// The task choices where another task was chosen while the previous one could go on, by
    /// index into `steps`, for shrinking.
    pub fn switch_points(&self) -> Vec<usize> {
        let mut points = Vec::new();
        let mut previous = None;
        for (index, step) in self.steps.iter().enumerate() {
            if let Step::Task(task) = *step {
                if previous.is_some_and(|p| p != task) {
                    points.push(index);
                }
                previous = Some(task);
            }
        }
        points
    }
}

/// Makes recorded decisions again. Where a decision does not fit (its task is not runnable: the
/// case changed under shrinking), it keeps the running task if it can and it is not yielding,
/// else takes the next runnable one, and counts the divergence; past the end of the record it
/// does the same.
#[derive(Debug)]
pub struct Replay {
    steps: std::vec::IntoIter<Step>,
    started: bool,
    /// Decisions that did not fit.
    pub diverged: usize,
}

impl Replay {
    /// A replay of `recorded`, one execution long.
    pub fn new(recorded: Recorded) -> Replay {
        Replay { steps: recorded.steps.into_iter(), started: false, diverged: 0 }
    }
}

impl Scheduler for Replay {
    fn new_execution(&mut self) -> Option<Schedule> {
        if std::mem::replace(&mut self.started, true) {
            return None;
        }
        Some(Schedule::new(0))
    }

    fn next_task(&mut self, runnable: &[&Task], current: Option<TaskId>, yielding: bool) -> Option<TaskId> {
        let wanted = loop {
            match self.steps.next() {
                Some(Step::Task(task)) => break Some(task),
                Some(Step::Random(_)) => self.diverged += 1,
                None => break None,
            }
        };
        if let Some(task) =
            runnable.iter().map(|t| t.id()).find(|&id| Some(schedule::task_index(id)) == wanted)
        {
            return Some(task);
        }
        if wanted.is_some() {
            self.diverged += 1;
        }
        // Keep the running task, unless it yields (a spin-wait would never end): then the next
        // runnable task after it in id order.
        let index = |id: TaskId| schedule::task_index(id);
        let keep = current.filter(|c| !yielding && runnable.iter().any(|t| t.id() == *c));
        let after = current.map_or(0, |c| index(c) + 1);
        let next = runnable
            .iter()
            .map(|t| t.id())
            .find(|&id| index(id) >= after)
            .unwrap_or_else(|| runnable[0].id());
        Some(keep.unwrap_or(next))
    }

    fn next_u64(&mut self) -> u64 {
        match self.steps.as_slice().first() {
            Some(Step::Random(value)) => {
                let value = *value;
                self.steps.next();
                value
            }
            _ => {
                self.diverged += 1;
                0
            }
        }
    }
}

/// What the recorder shares with [`run_threads`]: each execution's decisions, and the flag that
/// ends the run before the next execution.
#[derive(Debug, Default)]
struct Log {
    executions: Vec<Recorded>,
}

/// Wraps a scheduler and records every decision it makes.
struct Recorder {
    inner: Box<dyn Scheduler + Send>,
    log: Arc<StdMutex<Log>>,
    stop: Arc<AtomicBool>,
}

impl Recorder {
    /// Lets the inner scheduler run out of executions, so it ends as a finished run: shuttle's
    /// random scheduler prints its "failing seed ... To replay" banner when dropped in the middle
    /// of one, and ksim reports and replays its failures itself.
    fn finish_inner(&mut self) {
        while self.inner.new_execution().is_some() {}
    }
}

impl Drop for Recorder {
    /// A run that ends in a failure (a deadlock, the step bound, an escaped panic) drops the
    /// scheduler mid-execution while it unwinds.
    fn drop(&mut self) {
        // The drop may run while the failure unwinds: a panic out of it would abort.
        let _ = catch_unwind(AssertUnwindSafe(|| self.finish_inner()));
    }
}

impl Scheduler for Recorder {
    fn new_execution(&mut self) -> Option<Schedule> {
        if self.stop.load(Ordering::Relaxed) {
            self.finish_inner();
            return None;
        }
        let schedule = self.inner.new_execution()?;
        self.log.lock().unwrap_or_else(PoisonError::into_inner).executions.push(Recorded::default());
        Some(schedule)
    }

    fn next_task(&mut self, runnable: &[&Task], current: Option<TaskId>, yielding: bool) -> Option<TaskId> {
        let chosen = self.inner.next_task(runnable, current, yielding)?;
        let mut log = self.log.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(recorded) = log.executions.last_mut() {
            let could_go_on = current.is_some_and(|c| c != chosen && runnable.iter().any(|t| t.id() == c));
            recorded.preemptions += usize::from(could_go_on);
            recorded.steps.push(Step::Task(schedule::task_index(chosen)));
        }
        Some(chosen)
    }

    fn next_u64(&mut self) -> u64 {
        let value = self.inner.next_u64();
        let mut log = self.log.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(recorded) = log.executions.last_mut() {
            recorded.steps.push(Step::Random(value));
        }
        value
    }
}

/// What [`run_threads`] ran.
#[derive(Debug)]
pub struct Executions {
    /// Each execution's decisions, in order; the last is the one running when the run ended.
    pub recorded: Vec<Recorded>,
    /// A failure shuttle raised itself (a deadlock: every task blocked; a step bound exceeded),
    /// or a panic that escaped the body, as text. It ended the last execution.
    pub escaped: Option<String>,
}

/// Runs `body` once per execution `scheduler` grants (until `stop` is set between executions),
/// each a shuttle execution in which [`crate::sync`] makes shuttle objects and spawns shuttle
/// threads; records every decision. An execution longer than `steps_max` steps fails.
pub fn run_threads(
    scheduler: Box<dyn Scheduler + Send>,
    steps_max: usize,
    stop: Arc<AtomicBool>,
    body: impl Fn() + Send + Sync + 'static,
) -> Executions {
    let log = Arc::new(StdMutex::new(Log::default()));
    let recorder = Recorder { inner: scheduler, log: log.clone(), stop };
    let escaped = catch_unwind(AssertUnwindSafe(|| schedule::run(recorder, steps_max, body)))
        .err()
        .map(super::panic_text);
    let recorded = std::mem::take(&mut log.lock().unwrap_or_else(PoisonError::into_inner).executions);
    Executions { recorded, escaped }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_schedule_survives_its_text_form() {
        let recorded = Recorded {
            steps: vec![Step::Task(0), Step::Task(1), Step::Random(0xbeef), Step::Task(12), Step::Task(1)],
            preemptions: 0,
        };
        let text = recorded.encode();
        assert_eq!(text, "01rbeef.c1");
        assert_eq!(Recorded::decode(&text).expect("decodes").steps, recorded.steps);
        assert_eq!(recorded.switch_points(), vec![1, 3, 4]);
        assert!(Recorded::decode("0?").is_err());
        assert!(Recorded::decode("rzz.").is_err());
    }
}
