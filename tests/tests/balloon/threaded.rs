//! The balloon under threaded campaigns: the fixed driver stays quiet on three threads while the
//! balloon thread, allocating tasks (reaching the OOM notifier), compaction and the host's
//! interrupts overlap, and a seed gives the same case, schedule and trace every time.

use std::sync::atomic::AtomicBool;

use balloon_sim::{BalloonConfig, BalloonSubject, Op};
use sim_core::check::{CampaignOptions, Catalog};
use sim_core::threaded::{self, ThreadedOptions};
use sim_core::ViolationKind;

fn fixed() -> BalloonConfig {
    BalloonSubject::config(Some("fixed"), &[]).expect("preset")
}

#[test]
fn the_fixed_balloon_passes_threaded_cases_and_reaches_its_states() {
    let options = CampaignOptions { shrink_steps: 100, ..CampaignOptions::cases(30) };
    let report = threaded::campaign::<BalloonSubject>(
        &fixed(),
        &options,
        &ThreadedOptions::new(3),
        &AtomicBool::new(false),
        &mut |_| {},
    )
    .expect("campaign runs");
    assert!(report.failures.is_empty(), "{:#?}", report.failures.first().map(|f| &f.artifact));
    assert_eq!(report.progress.cases, 30);
    for mark in ["fill", "leak", "target-reached"] {
        assert!(report.coverage.contains_key(mark), "{mark} not reached: {:?}", report.coverage);
    }
}

#[test]
fn freeze_and_restore_stay_in_the_prefix_and_threads_act_as_their_own_tasks() {
    let options = ThreadedOptions::new(3);
    let config = fixed();
    for seed in 0..40 {
        let case = threaded::generate::<BalloonSubject>(&config, seed, &options);
        for (thread, ops) in case.threads.iter().enumerate() {
            for op in ops {
                assert!(!matches!(op, Op::Freeze | Op::Restore), "seed {seed}: {op:?} on a thread");
                if let Op::Alloc { task, .. } | Op::Free { task, .. } = op {
                    assert_eq!(usize::from(*task), thread, "seed {seed}: {op:?}");
                }
            }
        }
    }
}

#[test]
fn a_seed_gives_the_same_case_schedule_and_trace_every_time() {
    let options = ThreadedOptions::new(3);
    let config = fixed();
    for seed in 0..8 {
        let case = threaded::generate::<BalloonSubject>(&config, seed, &options);
        assert_eq!(case, threaded::generate::<BalloonSubject>(&config, seed, &options));
        let first = threaded::run_case::<BalloonSubject>(&config, seed, &case, &options);
        let second = threaded::run_case::<BalloonSubject>(&config, seed, &case, &options);
        let (first, second) = (first.last.expect("ran"), second.last.expect("ran"));
        assert_eq!(first.schedule, second.schedule, "seed {seed}");
        assert_eq!(first.trace_hash, second.trace_hash, "seed {seed}");
    }
}

/// Seed 15225 of `ksim fuzz balloon --threads 3`: the OOM notifier's leak_balloon walks the page
/// list in balloon_page_dequeue() while two compactors isolate balloon pages. 4.4's walk holds
/// no `pages_lock`, so a compactor `list_del`s the page the walk's cursor moves to next and the
/// walk follows LIST_POISON1 (the oops of "virtio_balloon: fix race between migration and
/// ballooning"). With that fix (`dequeue-walk-locked`) the walk is under `pages_lock` and the same
/// seed is quiet. Replay: `ksim fuzz balloon --threads 3 --seed 15225 --cases 1 --fix-off
/// dequeue-walk-locked`.
#[test]
fn seed_15225_follows_list_poison_in_the_unlocked_dequeue_walk_and_is_quiet_with_the_fix() {
    const SEED: u64 = 15225;
    let options = ThreadedOptions::new(3);
    let unlocked =
        BalloonSubject::config(Some("fixed"), &["dequeue-walk-locked".to_string()]).expect("preset");
    let case = threaded::generate::<BalloonSubject>(&unlocked, SEED, &options);
    let run = threaded::run_case::<BalloonSubject>(&unlocked, SEED, &case, &options);
    let violation = run.violation().expect("the unlocked walk meets the poisoned link");
    assert_eq!(violation.kind, ViolationKind::ListPoison, "{violation:?}");
    assert!(violation.message.contains("b_dev_info->pages"), "{}", violation.message);

    let fixed = fixed();
    let case = threaded::generate::<BalloonSubject>(&fixed, SEED, &options);
    let run = threaded::run_case::<BalloonSubject>(&fixed, SEED, &case, &options);
    assert!(run.violation().is_none(), "the locked walk: {:?}", run.violation());
    assert!(run.executions > 0 && run.ops_run > 0, "the fixed case ran: {run:?}");
}
