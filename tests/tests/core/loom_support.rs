//! What every loom test here shares: a model explored by `sim_core::loom_runner::explore` from
//! the ordinary test build (sim-core's runtime backend makes the model's objects loom's), with
//! the count of interleavings printed (`--nocapture`) and asserted.

use std::panic::Location;

use sim_core::loom_runner::{self, Exploration};

/// Explores `model` within `preemption_bound` (None: unbounded) and asserts that every
/// interleaving passed, and that loom explored more than the one sequential order (a pass is a
/// proof only then).
#[track_caller]
pub(crate) fn passes(
    preemption_bound: Option<usize>,
    model: impl Fn() + Send + Sync + 'static,
) -> Exploration {
    let caller = Location::caller();
    let run = loom_runner::explore(preemption_bound, model);
    println!("loom {caller}: {run}");
    assert!(run.passed(), "{run}");
    assert!(run.executions > 1, "loom explored only {} interleaving", run.executions);
    run
}

/// Explores `model` within `preemption_bound` and returns the failing interleaving's panic text;
/// fails the test if every interleaving passed.
#[track_caller]
pub(crate) fn fails(preemption_bound: Option<usize>, model: impl Fn() + Send + Sync + 'static) -> String {
    let caller = Location::caller();
    let run = loom_runner::explore(preemption_bound, model);
    println!("loom {caller}: {run}");
    match run.failure {
        Some(text) => text,
        None => panic!("loom found nothing: {run}"),
    }
}
