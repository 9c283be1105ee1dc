//! The cheap generator of mbcache 2.6 ([`Subject::op_gen`]) draws what its proptest strategy
//! draws: the same kinds in the same proportions and every field over the same range, for each
//! mix of operations a config can ask for.

use std::collections::{BTreeMap, BTreeSet};

use mbcache_sim::{Fixes, MbcacheConfig, MbcacheSubject, Op, PRESET_FIXED};
use proptest::strategy::{Strategy, ValueTree};
use proptest::test_runner::TestRunner;
use serde_json::Value;
use sim_core::check::Subject;
use sim_core::gen::OpRng;

/// Draws per generator: enough that the rarest field value (an undersized create, about one
/// draw in three hundred) shows up in both.
const DRAWS: u32 = 12_000;

/// What a set of draws looked like: how often each kind came, and each (kind, field, value).
#[derive(Default)]
struct Mix {
    kinds: BTreeMap<String, u32>,
    values: BTreeSet<(String, String, String)>,
}

impl Mix {
    /// Counts `op` through its serialised form, so every field of every kind is seen without a
    /// hand-written list that could miss one.
    fn add(&mut self, op: &Op) {
        let Value::Object(outer) = serde_json::to_value(op).expect("an op serialises") else {
            panic!("an op serialises as {{kind: fields}}: {op:?}");
        };
        for (kind, fields) in outer {
            *self.kinds.entry(kind.clone()).or_default() += 1;
            let Value::Object(fields) = fields else { continue };
            for (name, value) in fields {
                let elements = match value {
                    Value::Array(items) => items,
                    other => vec![other],
                };
                for element in elements {
                    self.values.insert((kind.clone(), name.clone(), element.to_string()));
                }
            }
        }
    }
}

fn assert_same_mix(config: &MbcacheConfig, seed: u64) {
    let gen = MbcacheSubject::op_gen(config).expect("mbcache 2.6 has a cheap generator");
    let strategy = MbcacheSubject::op_strategy(config);
    let mut runner = TestRunner::deterministic();
    let mut rng = OpRng::for_case(seed);
    let (mut cheap, mut tree) = (Mix::default(), Mix::default());
    for _ in 0..DRAWS {
        cheap.add(&gen(&mut rng));
        tree.add(&strategy.new_tree(&mut runner).expect("no rejects").current());
    }
    let kinds: BTreeSet<_> = cheap.kinds.keys().chain(tree.kinds.keys()).collect();
    for kind in kinds {
        let a = f64::from(cheap.kinds.get(kind).copied().unwrap_or(0));
        let b = f64::from(tree.kinds.get(kind).copied().unwrap_or(0));
        // Within 20 % or, for the rare kinds, four standard deviations of a count near b.
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

#[test]
fn the_cheap_generator_draws_the_strategys_mix_for_every_op_mix() {
    let both = MbcacheConfig::new(PRESET_FIXED, Fixes::all());
    assert!(both.api_ops && both.xattr_ops, "the preset mixes both kinds of op");
    assert_same_mix(&both, 3);
    assert_same_mix(&MbcacheConfig { xattr_ops: false, ..both.clone() }, 4);
    assert_same_mix(&MbcacheConfig { api_ops: false, ..both.clone() }, 5);
    assert_same_mix(&MbcacheConfig { api_ops: false, xattr_ops: false, ..both }, 6);
}

#[test]
fn a_seed_names_the_same_cheaply_drawn_operations_every_time() {
    let config = MbcacheConfig::new(PRESET_FIXED, Fixes::all());
    let ops = sim_core::check::generate::<MbcacheSubject>(&config, 11, 60);
    assert_eq!(ops, sim_core::check::generate::<MbcacheSubject>(&config, 11, 60));
    assert_ne!(ops, sim_core::check::generate::<MbcacheSubject>(&config, 12, 60));
    assert!(ops.len() > 1, "a case has operations: {ops:?}");
}
