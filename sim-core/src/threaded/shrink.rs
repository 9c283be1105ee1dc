//! Joint shrinking of a failing threaded case: fewer threads, then fewer operations per thread
//! (and in the prefix), then fewer preemptions, keeping the failure's kind.
//!
//! A candidate runs first under the current failing schedule replayed leniently (decisions that
//! no longer fit fall back to keeping the running task), then under the case's own scheduler; the
//! execution that fails has its schedule recorded, so the result is always a pinned case that
//! [`super::run_case`] reproduces exactly.

use super::{run_case, Recorded, SchedulerChoice, Step, ThreadedCase, ThreadedOptions, ThreadedSubject};
use crate::violation::ViolationKind;

/// Shrinks `failing` (a case pinned to its failing schedule, whose unpinned scheduler was
/// `original`) in at most `runs_max` runs; returns a pinned case that still fails with `kind`.
pub fn shrink<S: ThreadedSubject>(
    config: &S::Config,
    seed: u64,
    failing: &ThreadedCase<S::Op>,
    original: &SchedulerChoice,
    kind: &ViolationKind,
    options: &ThreadedOptions,
    runs_max: usize,
) -> ThreadedCase<S::Op> {
    let mut shrinker = Shrinker::<S> { config, seed, original, kind, options, runs: 0, runs_max };
    let mut best = failing.clone();
    // Fewer threads.
    let mut thread = best.threads.len();
    while thread > 0 && best.threads.len() > 1 {
        thread -= 1;
        let mut candidate = best.clone();
        candidate.threads.remove(thread);
        if let Some(found) = shrinker.fails(&candidate, &best) {
            best = found;
        }
    }
    // Fewer operations, one at a time to a fixpoint (each thread's list and the prefix).
    loop {
        let mut removed = false;
        for list in (0..=best.threads.len()).rev() {
            let len = if list == best.threads.len() { best.prefix.len() } else { best.threads[list].len() };
            for index in (0..len).rev() {
                let mut candidate = best.clone();
                let ops = if list == candidate.threads.len() {
                    &mut candidate.prefix
                } else {
                    &mut candidate.threads[list]
                };
                if index >= ops.len() {
                    continue;
                }
                ops.remove(index);
                if let Some(found) = shrinker.fails(&candidate, &best) {
                    best = found;
                    removed = true;
                }
            }
        }
        if !removed || shrinker.spent() {
            break;
        }
    }
    if best.threads.iter().any(Vec::is_empty) {
        // Dropping the idle threads renumbers the rest: pinned again if it still fails.
        let mut candidate = best.clone();
        candidate.threads.retain(|ops| !ops.is_empty());
        shrinker.runs_max += 2;
        if let Some(found) = shrinker.fails(&candidate, &best) {
            best = found;
        }
    }
    fewer_preemptions(&mut shrinker, best)
}

/// Tries each switch of task in the schedule as "keep running the same task", keeping those after
/// which the case still fails.
fn fewer_preemptions<S: ThreadedSubject>(
    shrinker: &mut Shrinker<'_, S>,
    mut best: ThreadedCase<S::Op>,
) -> ThreadedCase<S::Op> {
    let mut point = usize::MAX;
    loop {
        let SchedulerChoice::Replay { schedule } = &best.scheduler else { return best };
        let Ok(recorded) = Recorded::decode(schedule) else { return best };
        let Some(&at) = recorded.switch_points().iter().rev().find(|&&p| p < point) else { return best };
        point = at;
        let previous = recorded.steps[..at].iter().rev().find_map(|s| match s {
            Step::Task(task) => Some(*task),
            Step::Random(_) => None,
        });
        let Some(previous) = previous else { continue };
        let mut steps = recorded.steps.clone();
        steps[at] = Step::Task(previous);
        let candidate = ThreadedCase {
            scheduler: SchedulerChoice::Replay { schedule: Recorded { steps, preemptions: 0 }.encode() },
            ..best.clone()
        };
        if shrinker.spent() {
            return best;
        }
        if let Some(found) = shrinker.replays(&candidate) {
            best = found;
        }
    }
}

struct Shrinker<'a, S: ThreadedSubject> {
    config: &'a S::Config,
    seed: u64,
    original: &'a SchedulerChoice,
    kind: &'a ViolationKind,
    options: &'a ThreadedOptions,
    runs: usize,
    runs_max: usize,
}

impl<S: ThreadedSubject> Shrinker<'_, S> {
    fn spent(&self) -> bool {
        self.runs >= self.runs_max
    }

    /// Runs `case` as it is (its scheduler a replay); the pinned case if it fails with the kind.
    fn replays(&mut self, case: &ThreadedCase<S::Op>) -> Option<ThreadedCase<S::Op>> {
        self.runs += 1;
        let report = run_case::<S>(self.config, self.seed, case, self.options);
        let last = report.last?;
        let found = last.violation.as_ref().is_some_and(|v| v.kind == *self.kind);
        found.then(|| ThreadedCase {
            scheduler: SchedulerChoice::Replay { schedule: last.schedule.encode() },
            ..case.clone()
        })
    }

    /// `candidate` under `best`'s schedule replayed leniently, then under the original scheduler.
    fn fails(
        &mut self,
        candidate: &ThreadedCase<S::Op>,
        best: &ThreadedCase<S::Op>,
    ) -> Option<ThreadedCase<S::Op>> {
        if self.spent() {
            return None;
        }
        let pinned = ThreadedCase { scheduler: best.scheduler.clone(), ..candidate.clone() };
        if let Some(found) = self.replays(&pinned) {
            return Some(found);
        }
        if self.spent() {
            return None;
        }
        let fresh = ThreadedCase { scheduler: self.original.clone(), ..candidate.clone() };
        self.replays(&fresh)
    }
}
