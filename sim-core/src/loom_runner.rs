//! The zoo's loom column from an ordinary build: a subsystem's loom model of one zoo row, run
//! under `loom::model` with [`crate::sync`]'s runtime backend making loom objects, the failing
//! interleaving's panic caught and named as a [`ViolationKind`].
//!
//! loom explores every interleaving within the scenario's preemption bound, so one run is the
//! whole answer: found (and how long loom took to reach the failing interleaving) or not. The same
//! model with the row's fix on must pass, which is a proof for that model and that bound. loom is
//! deterministic: the same model reaches the same first failing interleaving on every run, so a
//! finding is replayed by running it again (`LOOM_LOG=trace LOOM_LOCATION=1` prints each step).
//!
//! The runner's own state (the flag that makes objects loom's, the execution count, the violation
//! a model reported) is std, never a `sync` object, so it adds no interleavings.

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
    quiet_panic_hook();
    let executions = Arc::new(AtomicUsize::new(0));
    let reported: Arc<Mutex<Option<LoomFinding>>> = Arc::default();
    let body = {
        let (config, model) = (Arc::new(config), scenario.model);
        let (executions, reported) = (executions.clone(), reported.clone());
        move || {
            executions.fetch_add(1, Ordering::Relaxed);
            let sim = model(&config);
            if let Some(violation) = sim.violations().into_iter().next() {
                let finding = LoomFinding { kind: violation.kind, message: violation.message };
                *reported.lock().unwrap_or_else(PoisonError::into_inner) = Some(finding);
                panic!("{REPORTED}");
            }
        }
    };
    let started = Instant::now();
    let result = catch_unwind(AssertUnwindSafe(|| crate::sync::loom_check(scenario.preemption_bound, body)));
    let seconds = started.elapsed().as_secs_f64();
    let finding = result.err().map(|payload| {
        let text = panic_text(payload.as_ref());
        let reported = reported.lock().unwrap_or_else(PoisonError::into_inner).take();
        match reported {
            Some(finding) if text == REPORTED => finding,
            _ => LoomFinding { kind: kind_of_panic(&text), message: text },
        }
    });
    LoomRun { finding, executions: executions.load(Ordering::Relaxed), seconds }
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

/// The failing interleaving's panic is the finding, reported by the caller: wraps the process's
/// panic hook once so that panics while a model runs here print nothing (loom's unwinding of the
/// other model threads after it neither). loom runs every model thread on the calling thread, so
/// the backend's loom flag says whether a panic is one of them.
fn quiet_panic_hook() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let hook = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if !crate::sync::in_loom() {
                hook(info);
            }
        }));
    });
}
