//! The zoo's loom column from an ordinary build: a subsystem's loom model of one zoo row, run
//! under `loom::model` with [`crate::sync`]'s runtime backend making loom objects, the failing
//! interleaving's panic caught and named as a [`ViolationKind`].
//!
//! loom explores every interleaving within the scenario's preemption bound, so one run is the
//! whole answer: found (and how long loom took to reach the failing interleaving) or not. The same
//! model with the row's fix on must pass, which is a proof for that model and that bound. loom is
//! deterministic: the same model reaches the same first failing interleaving on every run, so a
//! finding is replayed by running it again; the report names the failing panic's place. (loom's
//! `LOOM_LOG` step log needs a `tracing` subscriber, which only `loom::model` installs, not the
//! `Builder::check` this runner calls, so it prints nothing here.)
//!
//! [`explore`] is the same machinery for any closure: the loom tests of sim-core's primitives and
//! of each subsystem's protocols (`tests/tests/*/loom.rs`, `tests/tests/core/loom_*.rs`) run
//! through it from the ordinary test build, with no `--cfg loom` build.
//!
//! The runner's own state (the flag that makes objects loom's, the execution count, the violation
//! a model reported, the first panic's place) is std, never a `sync` object, so it adds no
//! interleavings.

use std::cell::RefCell;
use std::fmt;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

use crate::check::{Catalog, ZooEntry};
use crate::{Sim, ViolationKind};

/// One loom model of a zoo row: what it is called, its bound, and what loom reports it as.
#[derive(Debug)]
pub struct LoomScenario<C> {
    /// A short name, for reports and test filters.
    pub name: &'static str,
    /// loom's preemption bound (2 unless the scenario says why not).
    pub preemption_bound: usize,
    /// The kinds that are this bug under loom: a row whose op-level kind is the lockset
    /// detector's may reach loom as loom's own data-race report ([`loom_data_race`]).
    pub expected: Vec<ViolationKind>,
    /// The model: builds a world with `config`'s fixes, runs its threads, and returns the `Sim`
    /// it ran in, whose violations (lockdep's included) the runner judges. A model's own check
    /// that fails reports a violation with `Sim::report` rather than panicking, so it keeps its
    /// kind.
    pub model: fn(&C) -> Sim,
}

/// The kind loom's own data-race report is mapped to: two accesses to a loom cell (a `Guarded`
/// field) or a non-atomic access that no happens-before relation orders.
pub fn loom_data_race() -> ViolationKind {
    ViolationKind::detector("loom", "data-race")
}

/// A subsystem's loom models, named per zoo row. Implemented next to the subsystem's
/// [`Catalog`] in `<crate>/src/check/loom.rs`.
pub trait LoomCatalog: Catalog {
    /// The loom model that reaches zoo row `row`, if the subsystem has one.
    fn loom_scenario(row: &ZooEntry) -> Option<LoomScenario<Self::Config>>;
}

/// What loom found in one model: the violation of the failing interleaving.
#[derive(Clone, Debug)]
pub struct LoomFinding {
    /// The violation's kind.
    pub kind: ViolationKind,
    /// Its message (loom's panic text, or the model's report).
    pub message: String,
}

/// One model run to completion or to its first failing interleaving.
#[derive(Clone, Debug)]
pub struct LoomRun {
    /// The violation, if loom reached one.
    pub finding: Option<LoomFinding>,
    /// Interleavings loom ran (the last one the failing one, when found).
    pub executions: usize,
    /// Wall-clock seconds to the finding, or for the whole exploration.
    pub seconds: f64,
}

/// A zoo row under loom: its model with the row's fix off and on.
#[derive(Clone, Debug)]
pub struct LoomOutcome {
    /// The scenario's name.
    pub scenario: &'static str,
    /// The bound both runs used.
    pub preemption_bound: usize,
    /// The kinds that are this bug under loom.
    pub expected: Vec<ViolationKind>,
    /// With the fix off.
    pub buggy: LoomRun,
    /// With the fix on (the row's kernel as it is).
    pub fixed: LoomRun,
}

impl LoomOutcome {
    /// Whether the buggy model failed as one of the expected kinds.
    pub fn found(&self) -> bool {
        self.buggy.finding.as_ref().is_some_and(|finding| self.expected.contains(&finding.kind))
    }

    /// Whether the fixed model passed every interleaving.
    pub fn fixed_quiet(&self) -> bool {
        self.fixed.finding.is_none()
    }
}

/// One line for a test's output or a report: what the buggy model was found as and at which
/// interleaving, and how many interleavings the fixed one passed.
impl fmt::Display for LoomOutcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "loom {} (preemption bound {}): ", self.scenario, self.preemption_bound)?;
        match &self.buggy.finding {
            Some(finding) => write!(
                f,
                "found as {} at interleaving {} in {:.4}s",
                finding.kind, self.buggy.executions, self.buggy.seconds
            )?,
            None => write!(
                f,
                "not found in {} interleavings ({:.4}s)",
                self.buggy.executions, self.buggy.seconds
            )?,
        }
        match &self.fixed.finding {
            None => {
                write!(f, "; fixed: {} interleavings in {:.4}s", self.fixed.executions, self.fixed.seconds)
            }
            Some(finding) => write!(
                f,
                "; fixed: failed as {} at interleaving {}: {}",
                finding.kind, self.fixed.executions, finding.message
            ),
        }
    }
}

/// Runs the loom model of zoo row `row` for subsystem `S` with the row's fix off, then on; `None`
/// when `S` has no loom model of that row. An unknown kernel or fix in the row is an error line.
pub fn hunt<S: LoomCatalog>(row: &ZooEntry) -> Result<Option<LoomOutcome>, String> {
    let Some(scenario) = S::loom_scenario(row) else {
        return Ok(None);
    };
    let buggy = S::config(Some(row.kernel), &[row.fix.to_string()])?;
    let fixed = S::config(Some(row.kernel), &[])?;
    Ok(Some(LoomOutcome {
        scenario: scenario.name,
        preemption_bound: scenario.preemption_bound,
        buggy: run(&scenario, buggy),
        fixed: run(&scenario, fixed),
        expected: scenario.expected,
    }))
}

/// Marks the panic the runner raises to stop loom at an interleaving whose `Sim` reported a
/// violation, so it is told apart from loom's own panics and the model's.
const REPORTED: &str = "ksim-loom: the model reported a violation";

/// Runs `scenario`'s model under loom with `config`, every interleaving within its bound, and
/// names the first failing one's violation.
pub fn run<C: Send + Sync + 'static>(scenario: &LoomScenario<C>, config: C) -> LoomRun {
    let reported: Arc<Mutex<Option<LoomFinding>>> = Arc::default();
    let body = {
        let (config, model, reported) = (Arc::new(config), scenario.model, reported.clone());
        move || {
            let sim = model(&config);
            if let Some(violation) = sim.violations().into_iter().next() {
                let finding = LoomFinding { kind: violation.kind, message: violation.message };
                *reported.lock().unwrap_or_else(PoisonError::into_inner) = Some(finding);
                panic!("{REPORTED}");
            }
        }
    };
    let exploration = explore(Some(scenario.preemption_bound), body);
    let finding = exploration.failure.map(|text| {
        let reported = reported.lock().unwrap_or_else(PoisonError::into_inner).take();
        match reported {
            Some(finding) if text == REPORTED => finding,
            _ => LoomFinding { kind: kind_of_panic(&text), message: text },
        }
    });
    LoomRun { finding, executions: exploration.executions, seconds: exploration.seconds }
}

/// One closure explored by [`explore`]: how many interleavings loom ran and, if one failed, its
/// panic.
#[derive(Clone, Debug)]
pub struct Exploration {
    /// Interleavings loom ran (the last one the failing one, when one failed).
    pub executions: usize,
    /// The failing interleaving's panic text: an assertion of the model's, loom's causality or
    /// deadlock report, or a detector's report under `ReportMode::Panic`.
    pub failure: Option<String>,
    /// Where that panic was raised (`file:line:column`), when the panic hook saw it.
    pub at: Option<String>,
    /// Wall-clock seconds to the failure, or for the whole exploration.
    pub seconds: f64,
}

impl Exploration {
    /// Whether every interleaving passed.
    pub fn passed(&self) -> bool {
        self.failure.is_none()
    }
}

/// One line for a test's failure message or output.
impl fmt::Display for Exploration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.failure {
            None => write!(f, "passed {} interleavings in {:.4}s", self.executions, self.seconds),
            Some(text) => {
                write!(f, "failed at interleaving {} ({:.4}s)", self.executions, self.seconds)?;
                if let Some(at) = &self.at {
                    write!(f, " at {at}")?;
                }
                write!(f, ": {text}")
            }
        }
    }
}

/// Runs `model` under loom once per interleaving within `preemption_bound` preemptions (None:
/// unbounded, for models small enough to finish), every object it makes loom's, and stops at the
/// first interleaving that panics. The panic is caught and returned, not printed, so a test can
/// assert that a misuse is found as well as that the kernel's code passes; a model that must
/// pass asserts [`Exploration::passed`] with the exploration as its message.
pub fn explore(preemption_bound: Option<usize>, model: impl Fn() + Send + Sync + 'static) -> Exploration {
    quiet_panic_hook();
    let executions = Arc::new(AtomicUsize::new(0));
    let body = {
        let executions = executions.clone();
        move || {
            executions.fetch_add(1, Ordering::Relaxed);
            // Only a panic of this interleaving is its failure's place (a model may catch one).
            FIRST_PANIC.with(|first| first.borrow_mut().take());
            model();
        }
    };
    let started = Instant::now();
    let result = catch_unwind(AssertUnwindSafe(|| crate::sync::loom_check(preemption_bound, body)));
    let seconds = started.elapsed().as_secs_f64();
    let failure = result.err().map(|payload| panic_text(payload.as_ref()));
    let at = FIRST_PANIC.with(|first| first.borrow_mut().take()).filter(|_| failure.is_some());
    Exploration { executions: executions.load(Ordering::Relaxed), failure, at, seconds }
}

/// The kind of a panic that ended a loom model: loom's data-race and deadlock reports by their
/// text, anything else the model's own panic.
fn kind_of_panic(text: &str) -> ViolationKind {
    if text.contains("Causality violation") {
        loom_data_race()
    } else if text.contains("deadlock") {
        ViolationKind::Hang
    } else {
        ViolationKind::Panic
    }
}

fn panic_text(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| payload.downcast_ref::<&str>().map(|text| (*text).to_string()))
        .unwrap_or_else(|| "(a panic without a message)".to_string())
}

std::thread_local! {
    /// Where the first panic of the current exploration was raised, for [`Exploration::at`]: loom
    /// runs every model thread on the thread that called [`explore`], so the hook records it here.
    static FIRST_PANIC: RefCell<Option<String>> = const { RefCell::new(None) };
}

/// The failing interleaving's panic is the finding, reported by the caller: wraps the process's
/// panic hook once so that panics while a model runs here print nothing (loom's unwinding of the
/// other model threads after it neither), and records the first one's place. loom runs every
/// model thread on the calling thread, so the backend's loom flag says whether a panic is one of
/// them.
fn quiet_panic_hook() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let hook = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if !crate::sync::in_loom() {
                hook(info);
                return;
            }
            if let Some(location) = info.location() {
                // try_with: a panic while this thread's locals are torn down has no place to go.
                let _ = FIRST_PANIC.try_with(|first| {
                    first.borrow_mut().get_or_insert_with(|| location.to_string());
                });
            }
        }));
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(finding: Option<(&'static str, &str)>, executions: usize) -> LoomRun {
        let finding = finding.map(|(kind, message)| LoomFinding {
            kind: ViolationKind::lockdep(kind),
            message: message.to_string(),
        });
        LoomRun { finding, executions, seconds: 0.5 }
    }

    #[test]
    fn an_outcome_prints_what_the_buggy_model_was_found_as_and_what_the_fixed_one_passed() {
        let outcome = LoomOutcome {
            scenario: "touch-vs-clear",
            preemption_bound: 2,
            expected: vec![ViolationKind::lockdep("lost-flag")],
            buggy: run(Some(("lost-flag", "the flag was lost")), 3),
            fixed: run(None, 40),
        };
        assert_eq!(
            outcome.to_string(),
            "loom touch-vs-clear (preemption bound 2): found as lockdep:lost-flag at interleaving 3 in \
             0.5000s; fixed: 40 interleavings in 0.5000s"
        );
        let missed =
            LoomOutcome { buggy: run(None, 7), fixed: run(Some(("oops", "it broke")), 2), ..outcome };
        assert_eq!(
            missed.to_string(),
            "loom touch-vs-clear (preemption bound 2): not found in 7 interleavings (0.5000s); fixed: \
             failed as lockdep:oops at interleaving 2: it broke"
        );
    }

    #[test]
    fn an_exploration_prints_its_failure_with_its_place() {
        let passed = Exploration { executions: 12, failure: None, at: None, seconds: 0.25 };
        assert!(passed.passed());
        assert_eq!(passed.to_string(), "passed 12 interleavings in 0.2500s");
        let failed = Exploration {
            executions: 4,
            failure: Some("deadlock".to_string()),
            at: Some("a.rs:1:2".to_string()),
            seconds: 0.25,
        };
        assert!(!failed.passed());
        assert_eq!(failed.to_string(), "failed at interleaving 4 (0.2500s) at a.rs:1:2: deadlock");
    }
}
