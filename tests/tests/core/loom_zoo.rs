//! The zoo's loom column from the ordinary test build, for the rows whose loom model is big
//! enough to need saying: the balloon's fill_balloon() against the OOM notifier under the
//! filesystem lock (row `oom-deadlock`), run by `sim_core::loom_runner` as `ksim zoo` runs it.
//! (mbcache2's row is tested in `mbcache2::loom`.) Run with
//! `cargo test --workspace --test main -- core::loom_zoo --nocapture` for the figures.

use balloon_sim::BalloonSubject;
use sim_core::check::Catalog;
use sim_core::loom_runner;
use sim_core::ViolationKind;

#[test]
fn the_loom_column_finds_the_balloon_oom_deadlock_and_passes_its_fix() {
    let row = BalloonSubject::zoo().into_iter().find(|row| row.name == "oom-deadlock").expect("the row");
    let outcome =
        loom_runner::hunt::<BalloonSubject>(&row).expect("the row's kernel and fix").expect("a model");
    let finding = outcome.buggy.finding.as_ref().expect("loom must reach the deadlock's cycle");
    assert!(outcome.found(), "found as {}: {}", finding.kind, finding.message);
    assert!(
        finding.kind == ViolationKind::lockdep("circular-locking") || finding.kind == ViolationKind::Hang,
        "{}",
        finding.kind
    );
    println!("{outcome}");
    assert!(outcome.fixed_quiet(), "{outcome}");
    assert!(outcome.fixed.executions > 1, "{outcome}");
}
