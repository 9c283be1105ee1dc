//! mbcache2's incremental invariant check (`Subject::check_invariants_incremental`: only the
//! cache of the filesystem an operation names) against the whole check, on three filesystems so
//! most operations leave two caches unread: over many seeds, on the newest kernel and on older
//! ones, after every operation the two must find the same broken invariant; and with the whole
//! check run only every 8th operation (so the incremental one works from reachable counts left
//! by earlier checks), the incremental check must still agree with the whole one there. (The
//! second test is the one a wrong filesystem choice fails: making `Shrink`'s and the others'
//! touched filesystem the one before it failed it at seed 35; the first test, whose whole check
//! refreshes every count before each incremental one, passed that mutation.)

use mbcache_sim::{
    Mbcache2Config, Mbcache2FixSet, Mbcache2Op as Op, Mbcache2Subject, PRESET_4_10, PRESET_4_6, PRESET_6_2,
    PRESET_7_1,
};
use sim_core::check::{self, Subject};
use sim_core::lockdep::ReportMode;
use sim_core::trace::TraceMode;
use sim_core::Sim;

/// Whether the incremental check reads one cache only after `op`.
fn names_a_filesystem(op: &Op) -> bool {
    matches!(
        op,
        Op::Mount { .. }
            | Op::Umount { .. }
            | Op::XattrNew { .. }
            | Op::XattrFind { .. }
            | Op::XattrRelease { .. }
            | Op::Get { .. }
            | Op::XattrRead { .. }
            | Op::Shrink { .. }
    )
}

fn configs() -> Vec<Mbcache2Config> {
    let three = |preset: &str, fixes: Mbcache2FixSet| Mbcache2Config {
        filesystems: 3,
        ..Mbcache2Config::new(preset, fixes)
    };
    let preset = |name: &str| Mbcache2FixSet::parse(Some(name), &[]).expect("preset");
    vec![
        three(PRESET_7_1, Mbcache2FixSet::all()),
        three(PRESET_6_2, preset(PRESET_6_2)),
        three(PRESET_4_10, preset(PRESET_4_10)),
        three(PRESET_4_6, preset(PRESET_4_6)),
    ]
}

/// The shapes the campaigns also run: whole system calls (the threaded adapter's, where a
/// release names a block of any filesystem the task owns) and a cache prefilled past
/// `c_max_entries` (so scans and the shrink work meet full chains), on the newest kernel and on
/// 4.10 (the bitfield flags), each on three filesystems.
fn campaign_shapes() -> Vec<Mbcache2Config> {
    let preset = |name: &str| Mbcache2FixSet::parse(Some(name), &[]).expect("preset");
    let mut shapes = Vec::new();
    for (name, fixes) in [(PRESET_7_1, Mbcache2FixSet::all()), (PRESET_4_10, preset(PRESET_4_10))] {
        let base = Mbcache2Config { filesystems: 3, ..Mbcache2Config::new(name, fixes) };
        shapes.push(Mbcache2Config { whole_calls: true, ..base.clone() });
        shapes.push(Mbcache2Config { prefill: 40, ..base.clone() });
        shapes.push(Mbcache2Config { whole_calls: true, prefill: 40, ..base });
    }
    shapes
}

/// The check reads each cache into buffers it keeps between checks (`CacheSnapshot`, the
/// bitmap): on three filesystems checked one after the other, a buffer the previous cache left
/// longer must not leak into the next one's facts. Over 40 seeds per shape (whole calls, caches
/// prefilled with 40 entries, both), the incremental and whole checks must agree after every
/// operation, over enough operations (more than 600 per shape) to have compared many states.
/// That the cases reach a cache past its limit is not asserted here.
#[test]
fn incremental_and_whole_checks_agree_on_whole_calls_and_prefilled_caches() {
    let mut compared = 0;
    for config in campaign_shapes() {
        let label =
            format!("{} whole_calls {} prefill {}", config.preset, config.whole_calls, config.prefill);
        let (ops, _broken) = check::incremental_agrees::<Mbcache2Subject>(&config, 0, 40, 60)
            .unwrap_or_else(|disagreement| panic!("{label}: {disagreement}"));
        assert!(ops > 600, "{label}: only {ops} operations compared");
        compared += ops;
    }
    assert!(compared > 6_000, "only {compared} operations compared");
}

#[test]
fn incremental_and_whole_checks_agree_after_every_operation_over_many_seeds() {
    let mut compared = 0;
    for config in configs() {
        let (ops, _broken) = check::incremental_agrees::<Mbcache2Subject>(&config, 0, 40, 60)
            .unwrap_or_else(|disagreement| panic!("{}: {disagreement}", config.preset));
        compared += ops;
    }
    assert!(compared > 4_000, "only {compared} operations compared");
}

#[test]
fn the_incremental_check_agrees_with_the_whole_one_when_that_runs_only_every_8th_operation() {
    let mut partial = 0;
    for config in configs() {
        for seed in 0..40 {
            let sim_config = <Mbcache2Subject as Subject>::sim_config(&config, seed);
            let sim = Sim::new(sim_config.lockdep(ReportMode::Collect).trace(TraceMode::HashOnly));
            sim.trace().confine_to_this_thread();
            let mut model = Mbcache2Subject::new(&sim, &config);
            for (index, op) in check::generate::<Mbcache2Subject>(&config, seed, 60).iter().enumerate() {
                model.apply(&sim, op);
                let incremental = model.check_invariants_incremental(&sim, op).err().map(|v| v.kind);
                partial += u64::from(names_a_filesystem(op));
                if index % 8 == 7 {
                    let whole = model.check_invariants(&sim).err().map(|v| v.kind);
                    assert_eq!(
                        incremental,
                        whole,
                        "{} seed {seed} operation {}: {op:?}",
                        config.preset,
                        index + 1
                    );
                }
                // Past the first violation (a bug of an older kernel) the state is the bug's.
                if incremental.is_some() || sim.has_violations() {
                    break;
                }
            }
        }
    }
    assert!(partial > 2_000, "only {partial} operations checked incrementally");
}
