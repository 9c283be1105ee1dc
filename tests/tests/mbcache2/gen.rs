//! The cheap generator of mbcache2 ([`Subject::op_gen`]) draws what its proptest strategy draws:
//! the same kinds in the same proportions and every field over the same range.

use std::collections::{BTreeMap, BTreeSet};

use mbcache_sim::{Mbcache2Config, Mbcache2Op, Mbcache2Subject};
use proptest::strategy::{Strategy, ValueTree};
use proptest::test_runner::TestRunner;
use serde_json::Value;
use sim_core::check::Subject;
use sim_core::gen::OpRng;

/// Draws per generator: the rarest kinds (one in 28) come about 700 times each.
const DRAWS: u32 = 20_000;

/// What a set of draws looked like: how often each kind came, and each (kind, field, value
/// class): a value below 8 as itself, a larger one by its 32-wide band, so a byte field drawn over
/// `0..=255` shows all its bands in a few hundred draws while a small range is compared exactly.
#[derive(Default)]
struct Mix {
    kinds: BTreeMap<String, u32>,
    values: BTreeSet<(String, String, u64)>,
}

impl Mix {
    /// Counts `op` through its serialised form, so every field of every kind is seen.
    fn add(&mut self, op: &Mbcache2Op) {
        let kind = match serde_json::to_value(op).expect("an op serialises") {
            Value::String(unit) => unit,
            Value::Object(outer) => {
                let (kind, fields) = outer.into_iter().next().expect("one kind");
                let Value::Object(fields) = fields else { panic!("{op:?}") };
                for (name, value) in fields {
                    let value = value.as_u64().expect("fields are numbers");
                    let class = if value < 8 { value } else { 8 + value / 32 };
                    self.values.insert((kind.clone(), name, class));
                }
                kind
            }
            other => panic!("an op serialises as a kind: {other}"),
        };
        *self.kinds.entry(kind).or_default() += 1;
    }
}

#[test]
fn the_cheap_generator_draws_the_strategys_mix() {
    let config = Mbcache2Config::fixed();
    let gen = Mbcache2Subject::op_gen(&config).expect("mbcache2 has a cheap generator");
    let strategy = Mbcache2Subject::op_strategy(&config);
    let mut runner = TestRunner::deterministic();
    let mut rng = OpRng::for_case(7);
    let (mut cheap, mut tree) = (Mix::default(), Mix::default());
    for _ in 0..DRAWS {
        cheap.add(&gen(&mut rng));
        tree.add(&strategy.new_tree(&mut runner).expect("no rejects").current());
    }
    assert_eq!(cheap.kinds.len(), 12, "every kind drawn: {:?}", cheap.kinds);
    let kinds: BTreeSet<_> = cheap.kinds.keys().chain(tree.kinds.keys()).collect();
    for kind in kinds {
        let a = f64::from(cheap.kinds.get(kind).copied().unwrap_or(0));
        let b = f64::from(tree.kinds.get(kind).copied().unwrap_or(0));
        let slack = (0.2 * b).max(4.0 * b.sqrt());
        assert!((a - b).abs() <= slack, "{kind}: cheap {:?} vs strategy {:?}", cheap.kinds, tree.kinds);
    }
    let only_cheap: Vec<_> = cheap.values.difference(&tree.values).collect();
    let only_tree: Vec<_> = tree.values.difference(&cheap.values).collect();
    assert!(
        only_cheap.is_empty() && only_tree.is_empty(),
        "only cheap {only_cheap:?}, only strategy {only_tree:?}"
    );
}
