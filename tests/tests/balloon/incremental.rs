//! The balloon's incremental invariant check (`BalloonSubject::check_invariants_incremental`,
//! which campaigns run where the whole check is not due) against the whole check: after every
//! operation of many seeds both must find the same broken invariant, on the fixed kernel, on
//! the seed kernel (every fix off) with faults, and under a mutation that breaks the state of a
//! page an operation just put in the balloon.

use std::collections::BTreeSet;

use balloon_sim::{BalloonConfig, BalloonSubject, Op};
use sim_core::check::{self, Catalog, Subject};
use sim_core::lockdep::ReportMode;
use sim_core::trace::TraceMode;
use sim_core::Sim;

/// Compares the two checks over `cases` seeds; returns (operations compared, cases broken).
fn agree(config: &BalloonConfig, first_seed: u64, cases: u64) -> (u64, u64) {
    check::incremental_agrees::<BalloonSubject>(config, first_seed, cases, 40)
        .unwrap_or_else(|disagreement| panic!("{disagreement}"))
}

#[test]
fn incremental_and_whole_checks_agree_on_the_fixed_kernel() {
    let config = BalloonConfig::preset("fixed").expect("preset");
    let (compared, broken) = agree(&config, 0, 60);
    assert!(compared > 1_000, "only {compared} operations compared");
    assert_eq!(broken, 0, "the fixed kernel broke an invariant");
}

/// The seed kernel with faults: whatever its bugs break, both checks must break it at the same
/// operation.
#[test]
fn incremental_and_whole_checks_agree_on_the_seed_kernel_with_faults() {
    let config = BalloonConfig::preset("linux-4.4").expect("preset").with_faults();
    let (compared, broken) = agree(&config, 1_000, 150);
    assert!(compared > 500, "only {compared} operations compared");
    assert!(broken > 0, "the seed kernel broke no invariant in 150 cases");
}

/// Each fix off alone, with faults: every historical bug the zoo hunts breaks what it breaks at
/// the same operation for both checks (the incremental check compares page sets a word at a
/// time and keeps the tasks' pages between operations; this is where that would disagree).
#[test]
fn incremental_and_whole_checks_agree_with_each_fix_off() {
    let (mut compared, mut broken) = (0, 0);
    for (index, fix) in balloon_sim::FIX_IDS.iter().enumerate() {
        let config = BalloonSubject::config(Some("fixed"), &[fix.name().to_string()])
            .unwrap_or_else(|e| panic!("{}: {e}", fix.name()))
            .with_faults();
        let (fix_compared, fix_broken) = agree(&config, 5_000 + 100 * index as u64, 30);
        compared += fix_compared;
        broken += fix_broken;
    }
    assert!(compared > 5_000, "only {compared} operations compared");
    assert!(broken > 0, "no fix off broke an invariant in 30 cases each");
}

/// The balloon's pages as an observer sees them.
fn balloon_pages(model: &BalloonSubject, sim: &Sim) -> BTreeSet<u64> {
    let cx = sim.observer_cx("test", 0);
    model.world.vb.as_ref().map_or_else(BTreeSet::new, |vb| {
        vb.vb_dev_info.all_pages(&cx, &model.world.pages).into_iter().collect()
    })
}

/// The mutation: after a balloon run that inflated, the newest page it added keeps a stray
/// reference (a fill that took one `get_page` too many). Both checks must report
/// `balloon-page-state` after that very operation. Returns how many seeds were mutated.
fn mutated_cases_caught(config: &BalloonConfig, seeds: std::ops::Range<u64>) -> u64 {
    let mut caught = 0;
    for seed in seeds {
        let ops = check::generate::<BalloonSubject>(config, seed, 40);
        let sim = Sim::new(
            BalloonSubject::sim_config(config, seed).lockdep(ReportMode::Collect).trace(TraceMode::HashOnly),
        );
        sim.trace().confine_to_this_thread();
        let mut model = BalloonSubject::new(&sim, config);
        for (index, op) in ops.iter().enumerate() {
            let before = balloon_pages(&model, &sim);
            model.apply(&sim, op);
            let added = balloon_pages(&model, &sim).difference(&before).last().copied();
            let mutate = matches!(op, Op::BalloonRun) && added.is_some();
            if let Some(pfn) = added.filter(|_| mutate) {
                model.world.pages.get_page(&sim.observer_cx("mutation", 0), pfn).expect("a live page");
            }
            let whole = model.check_invariants(&sim).err().map(|found| found.kind.to_string());
            let incremental =
                model.check_invariants_incremental(&sim, op).err().map(|found| found.kind.to_string());
            assert_eq!(whole, incremental, "seed {seed} operation {} ({op:?})", index + 1);
            if mutate {
                assert_eq!(
                    whole.as_deref(),
                    Some("invariant:balloon-page-state"),
                    "seed {seed} op {}",
                    index + 1
                );
                caught += 1;
            }
            if whole.is_some() || sim.has_violations() {
                break;
            }
        }
    }
    caught
}

#[test]
fn a_stray_reference_on_a_page_just_ballooned_is_caught_by_both_checks() {
    let config = BalloonConfig::preset("fixed").expect("preset");
    let caught = mutated_cases_caught(&config, 0..40);
    assert!(caught >= 10, "only {caught} seeds inflated the balloon");
}
