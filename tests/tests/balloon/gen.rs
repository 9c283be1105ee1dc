//! The balloon's cheap generator ([`Subject::op_gen`]) draws what its proptest strategy draws:
//! the same kinds in the same proportions, and every field over the same range. Fields drawn
//! over a whole integer type are compared by their top three bits (eight buckets), so the two
//! sets of values seen can be compared at all.

use std::collections::{BTreeMap, BTreeSet};

use balloon_sim::{BalloonConfig, BalloonSubject, Op};
use proptest::strategy::{Strategy, ValueTree};
use proptest::test_runner::TestRunner;
use sim_core::check::Subject;
use sim_core::gen::OpRng;

/// Draws per generator: enough that the rarest kind (one in eighteen) and every bucket of every
/// field show up in both.
const DRAWS: u32 = 12_000;

/// What a set of draws looked like: how often each kind came, and each (kind, field, bucket).
#[derive(Default)]
struct Mix {
    kinds: BTreeMap<&'static str, u32>,
    values: BTreeSet<(&'static str, &'static str, u32)>,
}

impl Mix {
    /// Counts `op`: its kind, and each field's bucket (a bool as itself, an integer of `bits`
    /// bits by its top three).
    fn add(&mut self, op: &Op) {
        let top = |value: u32, bits: u32| value >> (bits - 3);
        let (kind, fields): (&'static str, Vec<(&'static str, u32)>) = match *op {
            Op::SetTarget { pages } => ("set-target", vec![("pages", top(pages, 32))]),
            Op::BalloonRun => ("run", vec![]),
            Op::Alloc { task, pages, nofs } => (
                "alloc",
                vec![("task", top(task.into(), 8)), ("pages", top(pages.into(), 16)), ("nofs", nofs.into())],
            ),
            Op::Free { task, pages } => {
                ("free", vec![("task", top(task.into(), 8)), ("pages", top(pages.into(), 16))])
            }
            Op::Compact { index, to_zone } => {
                ("compact", vec![("index", top(index.into(), 16)), ("to_zone", top(to_zone.into(), 8))])
            }
            Op::StatsRequest => ("stats", vec![]),
            Op::Freeze => ("freeze", vec![]),
            Op::Restore => ("restore", vec![]),
        };
        *self.kinds.entry(kind).or_default() += 1;
        for (field, bucket) in fields {
            self.values.insert((kind, field, bucket));
        }
    }
}

#[test]
fn the_cheap_generator_draws_the_strategys_mix() {
    let config = BalloonConfig::preset("fixed").expect("preset");
    let gen = BalloonSubject::op_gen(&config).expect("the balloon has a cheap generator");
    let strategy = BalloonSubject::op_strategy(&config);
    let mut runner = TestRunner::deterministic();
    let mut rng = OpRng::for_case(3);
    let (mut cheap, mut tree) = (Mix::default(), Mix::default());
    for _ in 0..DRAWS {
        cheap.add(&gen(&mut rng));
        tree.add(&strategy.new_tree(&mut runner).expect("no rejects").current());
    }
    assert_eq!(cheap.kinds.len(), 8, "every kind drawn: {:?}", cheap.kinds);
    for kind in cheap.kinds.keys().chain(tree.kinds.keys()) {
        let a = f64::from(cheap.kinds.get(kind).copied().unwrap_or(0));
        let b = f64::from(tree.kinds.get(kind).copied().unwrap_or(0));
        assert!((a - b).abs() <= 0.2 * b, "{kind}: cheap {:?} vs strategy {:?}", cheap.kinds, tree.kinds);
    }
    let only_cheap: Vec<_> = cheap.values.difference(&tree.values).collect();
    let only_tree: Vec<_> = tree.values.difference(&cheap.values).collect();
    assert!(
        only_cheap.is_empty() && only_tree.is_empty(),
        "only cheap {only_cheap:?}, only strategy {only_tree:?}"
    );
    // Every bucket of every field was seen: 8 per integer, 2 per bool.
    assert_eq!(cheap.values.len(), 8 + (8 + 8 + 2) + (8 + 8) + (8 + 8), "{:?}", cheap.values);
}

#[test]
fn a_seed_names_the_same_cheaply_drawn_operations_every_time() {
    let config = BalloonConfig::preset("fixed").expect("preset");
    let ops = sim_core::check::generate::<BalloonSubject>(&config, 11, 60);
    assert_eq!(ops, sim_core::check::generate::<BalloonSubject>(&config, 11, 60));
    assert_ne!(ops, sim_core::check::generate::<BalloonSubject>(&config, 12, 60));
    assert!(ops.len() > 1, "a case has operations: {ops:?}");
}
