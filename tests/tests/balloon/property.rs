//! The op-level property test: random target changes, memory pressure, OOM, migration, stats
//! requests and freeze/restore, with both page sizes, both byte orders, random feature offers
//! and faults, judged by the reference model and the invariants.

use balloon_sim::{BalloonConfig, BalloonSubject};
use sim_core::check::{assert_cases_pass, generate, run_case, RunOptions};

fn assert_marks(marks: &std::collections::BTreeSet<String>, wanted: &[&str]) {
    for mark in wanted {
        assert!(marks.contains(*mark), "coverage mark {mark:?} never reached; reached: {marks:?}");
    }
}

#[test]
fn fixed_preset_keeps_every_invariant_under_random_operations() {
    let config = BalloonConfig::preset("fixed").expect("preset");
    let marks = assert_cases_pass::<BalloonSubject>(&config, 1, 600, 60);
    assert_marks(
        &marks,
        &[
            "fill",
            "leak",
            "out-of-puff",
            "oom-deflate",
            "oom-kill",
            "migration",
            "migration-cross-zone",
            "stats-round",
            "freeze",
            "restore",
            "target-reached",
            "page-4k",
            "page-64k",
        ],
    );
}

#[test]
fn fixed_preset_survives_injected_faults() {
    let config = BalloonConfig::preset("fixed").expect("preset").with_faults();
    let marks = assert_cases_pass::<BalloonSubject>(&config, 10_000, 400, 60);
    assert_marks(&marks, &["fault", "probe-failed", "fill", "oom-deflate", "migration"]);
}

#[test]
fn the_same_seed_gives_the_same_trace() {
    let config = BalloonConfig::preset("fixed").expect("preset");
    let ops = generate::<BalloonSubject>(&config, 77, 40);
    let first = run_case::<BalloonSubject>(&config, 77, &ops, &RunOptions::default());
    let second = run_case::<BalloonSubject>(&config, 77, &ops, &RunOptions::default());
    assert!(first.passed(), "{:?}", first.violation);
    assert_eq!(first.trace_hash, second.trace_hash);
}

/// An edited artifact's task count is refused with a line before a context per task is made, and
/// the presets pass.
#[test]
fn a_config_asking_for_more_tasks_than_the_bound_is_refused() {
    use sim_core::check::Subject;
    let made = BalloonConfig::preset("fixed").expect("preset");
    assert_eq!(BalloonSubject::check_config(&made), Ok(()));
    let bound = BalloonConfig { tasks: balloon_sim::TASKS_MAX, ..made.clone() };
    assert_eq!(BalloonSubject::check_config(&bound), Ok(()));
    let edited = BalloonConfig { tasks: usize::MAX, ..made };
    let refused = BalloonSubject::check_config(&edited).expect_err("usize::MAX tasks refused");
    assert!(refused.contains(&format!("more than {}", balloon_sim::TASKS_MAX)), "{refused}");
}

/// An edited artifact's guest shape is refused with a line: a guest past the bound (2^63 bytes
/// once aborted the process on its page map's allocation) and a page size the driver cannot
/// have (0 once divided by zero, 3 panicked on an invalid guest); the bound and every power of
/// two from 4 KiB to 64 KiB pass.
#[test]
fn a_config_asking_for_a_guest_the_model_cannot_make_is_refused() {
    use sim_core::check::Subject;
    let made = BalloonConfig::preset("fixed").expect("preset");
    let largest = BalloonConfig { memory_bytes: balloon_sim::MEMORY_BYTES_MAX, ..made.clone() };
    assert_eq!(BalloonSubject::check_config(&largest), Ok(()));
    for memory_bytes in [balloon_sim::MEMORY_BYTES_MAX + 1, 1 << 44, u64::MAX] {
        let edited = BalloonConfig { memory_bytes, ..made.clone() };
        let refused = BalloonSubject::check_config(&edited).expect_err("a guest past the bound");
        assert!(refused.starts_with(&format!("memory_bytes {memory_bytes} is more than")), "{refused}");
    }
    for page_size in [4096, 8192, 16384, 32768, 65536] {
        let shaped = BalloonConfig { page_size: Some(page_size), ..made.clone() };
        assert_eq!(BalloonSubject::check_config(&shaped), Ok(()), "page size {page_size}");
    }
    for page_size in [0, 3, 2048, 4097, 1 << 17, u64::MAX] {
        let edited = BalloonConfig { page_size: Some(page_size), ..made.clone() };
        let refused = BalloonSubject::check_config(&edited).expect_err("a page size the driver cannot have");
        assert!(refused.starts_with(&format!("page_size {page_size} is not")), "{refused}");
    }
}
