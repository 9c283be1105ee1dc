//! The incremental invariant check ([`Subject::check_invariants_incremental`]) against the whole
//! one, on a small model whose incremental check looks only at the buckets an operation
//! touched: over many seeds, with the bug on and off, the two must find the same broken
//! invariant after every operation, and a campaign checking all invariants only every
//! [`check::CHECK_ALL_EVERY`] operations must find the bug in the same case as one checking
//! them all after every operation.

use std::sync::atomic::AtomicBool;

use proptest::prelude::*;
use serde::{Deserialize, Serialize};
use sim_core::check::{self, CampaignOptions, Reference, RunOptions, Subject};
use sim_core::{Sim, SpinLock, Violation};

const BUCKETS: usize = 8;
const BUCKET_CAPACITY: usize = 6;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct BucketsConfig {
    /// The bug: a move into a full bucket is not refused.
    move_overfills: bool,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
enum BucketsOp {
    Insert { bucket: u8, value: u8 },
    Remove { bucket: u8 },
    Move { from: u8, to: u8 },
}

impl BucketsOp {
    /// The buckets the operation may change.
    fn touched(&self) -> [usize; 2] {
        let index = |bucket: u8| usize::from(bucket) % BUCKETS;
        match *self {
            BucketsOp::Insert { bucket, .. } | BucketsOp::Remove { bucket } => [index(bucket); 2],
            BucketsOp::Move { from, to } => [index(from), index(to)],
        }
    }
}

/// Sorted buckets of bounded size, and the count of values in all of them.
struct Buckets {
    state: SpinLock<(Vec<Vec<u8>>, usize)>,
    move_overfills: bool,
    cx: sim_core::Cx,
}

impl Buckets {
    /// The invariants of one bucket: sorted, within capacity.
    fn check_bucket(bucket: usize, values: &[u8]) -> Result<(), Violation> {
        if values.len() > BUCKET_CAPACITY {
            return Err(Violation::new("invariant:bucket-capacity", format!("bucket {bucket}: {values:?}")));
        }
        if !values.is_sorted() {
            return Err(Violation::new("invariant:bucket-sorted", format!("bucket {bucket}: {values:?}")));
        }
        Ok(())
    }

    fn check_count(buckets: &[Vec<u8>], count: usize) -> Result<(), Violation> {
        let sum: usize = buckets.iter().map(Vec::len).sum();
        if sum != count {
            return Err(Violation::new("invariant:bucket-count", format!("{sum} values, count {count}")));
        }
        Ok(())
    }
}

impl Subject for Buckets {
    const NAME: &'static str = "buckets";
    type Config = BucketsConfig;
    type Op = BucketsOp;
    type Outcome = bool;
    type Reference = Lenient;

    fn new(sim: &Sim, config: &BucketsConfig) -> Buckets {
        Buckets {
            state: SpinLock::new("buckets->lock", (vec![Vec::new(); BUCKETS], 0)),
            move_overfills: config.move_overfills,
            cx: sim.cx("user", 0),
        }
    }

    fn op_strategy(_config: &BucketsConfig) -> BoxedStrategy<BucketsOp> {
        prop_oneof![
            3 => (any::<u8>(), any::<u8>()).prop_map(|(bucket, value)| BucketsOp::Insert { bucket, value }),
            1 => any::<u8>().prop_map(|bucket| BucketsOp::Remove { bucket }),
            2 => (any::<u8>(), any::<u8>()).prop_map(|(from, to)| BucketsOp::Move { from, to }),
        ]
        .boxed()
    }

    fn apply(&mut self, _sim: &Sim, op: &BucketsOp) -> bool {
        let mut state = self.state.lock(&self.cx);
        let (buckets, count) = &mut *state;
        let [from, to] = op.touched();
        match *op {
            BucketsOp::Insert { value, .. } if buckets[to].len() < BUCKET_CAPACITY => {
                let at = buckets[to].partition_point(|&v| v < value);
                buckets[to].insert(at, value);
                *count += 1;
                true
            }
            BucketsOp::Remove { .. } => buckets[from].pop().inspect(|_| *count -= 1).is_some(),
            BucketsOp::Move { .. }
                if from != to && (self.move_overfills || buckets[to].len() < BUCKET_CAPACITY) =>
            {
                let Some(value) = buckets[from].pop() else { return false };
                let at = buckets[to].partition_point(|&v| v < value);
                buckets[to].insert(at, value);
                true
            }
            _ => false,
        }
    }

    fn check_invariants(&self, _sim: &Sim) -> Result<(), Violation> {
        let state = self.state.lock(&self.cx);
        for (bucket, values) in state.0.iter().enumerate() {
            Buckets::check_bucket(bucket, values)?;
        }
        Buckets::check_count(&state.0, state.1)
    }

    /// Only the buckets `op` touched, and the count.
    fn check_invariants_incremental(&self, _sim: &Sim, op: &BucketsOp) -> Result<(), Violation> {
        let state = self.state.lock(&self.cx);
        for bucket in op.touched() {
            Buckets::check_bucket(bucket, &state.0[bucket])?;
        }
        Buckets::check_count(&state.0, state.1)
    }

    fn teardown(self, _sim: &Sim) -> Result<(), Violation> {
        Ok(())
    }
}

/// A reference that accepts every outcome: the invariants are what this model is checked by.
struct Lenient;

impl Reference for Lenient {
    type Config = BucketsConfig;
    type Op = BucketsOp;
    type Outcome = bool;

    fn new(_config: &BucketsConfig) -> Lenient {
        Lenient
    }

    fn check(&mut self, _op: &BucketsOp, _actual: &bool) -> Result<(), String> {
        Ok(())
    }
}

#[test]
fn incremental_and_whole_checks_agree_over_500_seeds_with_the_bug_on_and_off() {
    for move_overfills in [false, true] {
        let config = BucketsConfig { move_overfills };
        let (compared, broken) = check::incremental_agrees::<Buckets>(&config, 0, 500, 80)
            .unwrap_or_else(|disagreement| panic!("{disagreement}"));
        assert!(compared > 10_000, "only {compared} operations compared");
        if move_overfills {
            assert!(broken > 50, "the bug broke an invariant in only {broken} cases");
        } else {
            assert_eq!(broken, 0, "the fixed model broke an invariant");
        }
    }
}

#[test]
fn checking_all_invariants_every_16_operations_finds_the_bug_in_the_same_case() {
    let config = BucketsConfig { move_overfills: true };
    let find = |check_every: usize| {
        let run = RunOptions { check_every, ..RunOptions::default() };
        let options = CampaignOptions { ops_max: 80, shrink_steps: 50, run, ..CampaignOptions::cases(200) };
        let report = check::campaign::<Buckets>(&config, &options, &AtomicBool::new(false), &mut |_| {})
            .expect("campaign runs");
        let failure = report.failures.into_iter().next().expect("the bug is found");
        (failure.cases_to_find, failure.artifact.violation.kind, failure.artifact.ops)
    };
    let every_op = find(1);
    assert_eq!(find(check::CHECK_ALL_EVERY), every_op);
}
