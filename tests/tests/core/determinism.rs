//! Cheap generation ([`Subject::op_gen`], `sim_core::gen`) on the demo: a seed names one case,
//! byte for byte, in every run; the generator draws what the proptest strategy draws; and a
//! failing list from it shrinks, without a value tree, to a 1-minimal one.

use std::collections::BTreeSet;
use std::sync::atomic::AtomicBool;

use demo_sim::{DemoConfig, DemoSubject, Fixes, Op, PRESET_NEW, SHRINK_SKIPS_USED};
use proptest::strategy::{Strategy, ValueTree};
use proptest::test_runner::TestRunner;
use sim_core::check::{self, CampaignOptions, RunOptions, Subject};
use sim_core::gen::OpRng;
use sim_core::trace::TraceMode;

use super::harness::assert_one_minimal;

fn fixed() -> DemoConfig {
    DemoConfig::new(PRESET_NEW, Fixes::all())
}

#[test]
fn demo_seeds_give_the_same_operations_and_trace_hash_for_1000_seeds() {
    let config = fixed();
    let options = RunOptions { check_every: 1, trace: TraceMode::HashOnly };
    let mut distinct = BTreeSet::new();
    for seed in 0..1000 {
        let ops = check::generate::<DemoSubject>(&config, seed, 30);
        let again = check::generate::<DemoSubject>(&config, seed, 30);
        let bytes = serde_json::to_string(&ops).expect("operations serialise");
        assert_eq!(bytes, serde_json::to_string(&again).expect("again"), "seed {seed}: operations differ");
        let first = check::run_case::<DemoSubject>(&config, seed, &ops, &options);
        let second = check::run_case::<DemoSubject>(&config, seed, &ops, &options);
        assert!(
            first.passed(),
            "seed {seed}: {:?}; replay: ksim fuzz demo --seed {seed} --cases 1",
            first.violation
        );
        assert_eq!(first.trace_hash, second.trace_hash, "seed {seed}: same operations, different trace");
        distinct.insert(bytes);
    }
    assert!(distinct.len() > 990, "seeds must name different cases: {} distinct", distinct.len());
}

#[test]
fn demo_seed_zero_names_the_same_case_in_every_build() {
    // Pinned: if this moves, every seed named in the guide (exercises, zoo) moves with it.
    let ops = check::generate::<DemoSubject>(&fixed(), 0, 40);
    let head: Vec<String> = ops.iter().take(3).map(|op| format!("{op:?}")).collect();
    assert_eq!((ops.len(), head.join("; ")), (PINNED_LEN, PINNED_HEAD.to_string()), "seed 0 moved");
}

/// Seed 0's list for the default demo, 40 operations at most: its length and first three.
const PINNED_LEN: usize = 29;
const PINNED_HEAD: &str =
    "Shrink { task: 0, count: 3 }; Put { task: 2, index: 63 }; Put { task: 0, index: 55 }";

/// Which kind an operation is, for comparing the two generators' mixes.
fn kind(op: &Op) -> usize {
    match op {
        Op::Insert { .. } => 0,
        Op::Get { .. } => 1,
        Op::Put { .. } => 2,
        Op::Shrink { .. } => 3,
    }
}

#[test]
fn the_cheap_generator_draws_the_strategys_mix() {
    let config = fixed();
    let gen = DemoSubject::op_gen(&config).expect("the demo has a cheap generator");
    let strategy = DemoSubject::op_strategy(&config);
    let mut runner = TestRunner::deterministic();
    let mut rng = OpRng::for_case(5);
    let (mut cheap, mut tree) = ([0u32; 4], [0u32; 4]);
    let (mut cheap_keys, mut tree_keys) = (BTreeSet::new(), BTreeSet::new());
    for _ in 0..4000 {
        let op = gen(&mut rng);
        cheap[kind(&op)] += 1;
        if let Op::Insert { key, .. } | Op::Get { key, .. } = op {
            cheap_keys.insert(key);
        }
        let op = strategy.new_tree(&mut runner).expect("no rejects").current();
        tree[kind(&op)] += 1;
        if let Op::Insert { key, .. } | Op::Get { key, .. } = op {
            tree_keys.insert(key);
        }
    }
    for k in 0..4 {
        let (a, b) = (f64::from(cheap[k]), f64::from(tree[k]));
        assert!((a - b).abs() < 0.15 * b, "kind {k}: cheap {cheap:?} vs strategy {tree:?}");
    }
    assert_eq!(cheap_keys, tree_keys, "both draw every key of the config and no other");
}

#[test]
fn a_cheaply_generated_failure_shrinks_to_a_one_minimal_case() {
    let config = DemoConfig::new(PRESET_NEW, Fixes::all().without(SHRINK_SKIPS_USED));
    let options = CampaignOptions { ops_max: 40, stop_on_failure: false, ..CampaignOptions::cases(30) };
    let report = check::campaign::<DemoSubject>(&config, &options, &AtomicBool::new(false), &mut |_| {})
        .expect("campaign");
    assert!(report.failures.len() >= 3, "the bug is common: {} failures", report.failures.len());
    for failure in report.failures.iter().take(3) {
        let artifact = &failure.artifact;
        let ops: Vec<Op> = serde_json::from_value(artifact.ops.clone()).expect("ops");
        assert!(ops.len() < artifact.ops_unshrunk, "seed {}: nothing was removed", artifact.seed);
        assert_one_minimal::<DemoSubject>(&config, artifact.seed, &ops, &artifact.violation.kind);
    }
}

#[test]
fn chunk_removal_cuts_long_runs_of_noise_within_its_bound() {
    // Fails while 3 comes before 7; the rest is noise in long runs.
    let fails = |ops: &[u8]| ops.iter().position(|&v| v == 3).is_some_and(|at| ops[at..].contains(&7));
    let mut ops = vec![1u8; 40];
    ops[10] = 3;
    ops[30] = 7;
    let cut = check::remove_chunks(ops.clone(), fails, 1000);
    assert!(fails(&cut) && cut.len() <= 6, "most noise removed: {cut:?}");
    assert_eq!(check::remove_chunks(ops.clone(), fails, 0), ops, "no runs allowed: unchanged");
}
