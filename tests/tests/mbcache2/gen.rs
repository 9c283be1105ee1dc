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

/// What a set of draws looked like: how often each kind came, and each (kind, field, value).
#[derive(Default)]
struct Mix {
    kinds: BTreeMap<String, u32>,
    values: BTreeSet<(String, String, u64)>,
}

/// The (kind, field, value class) seen: a field's values as themselves where both generators
/// kept it under 16, else by 32-wide band, so a byte drawn over `0..=255` by a rare kind shows
/// all its bands in a few hundred draws while a small range is compared exactly.
fn classes(mix: &Mix, other: &Mix) -> BTreeSet<(String, String, u64)> {
    let wide = |kind: &str, field: &str| {
        mix.values.iter().chain(&other.values).any(|(k, f, v)| k == kind && f == field && *v >= 16)
    };
    let class = |(kind, field, value): &(String, String, u64)| {
        let value = if wide(kind, field) { 16 + value / 32 } else { *value };
        (kind.clone(), field.clone(), value)
    };
    mix.values.iter().map(class).collect()
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
                    self.values.insert((kind.clone(), name, value));
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
    let (cheap_classes, tree_classes) = (classes(&cheap, &tree), classes(&tree, &cheap));
    let only_cheap: Vec<_> = cheap_classes.difference(&tree_classes).collect();
    let only_tree: Vec<_> = tree_classes.difference(&cheap_classes).collect();
    assert!(
        only_cheap.is_empty() && only_tree.is_empty(),
        "only cheap {only_cheap:?}, only strategy {only_tree:?}"
    );
}
