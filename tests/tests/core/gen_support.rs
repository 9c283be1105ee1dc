//! What every generator-agreement test shares (`tests/tests/<subsystem>/gen.rs`): a subject's
//! cheap generator ([`Subject::op_gen`]) and its proptest strategy each draw the same number of
//! operations, each draw is counted into a [`Mix`], and the two mixes must agree: every kind (and
//! nested variant) in the same proportion, and every field over the same values.

use std::collections::{BTreeMap, BTreeSet};

use proptest::strategy::{Strategy, ValueTree};
use proptest::test_runner::TestRunner;
use serde_json::Value;
use sim_core::check::Subject;
use sim_core::gen::OpRng;

/// What a set of draws looked like: how often each kind (and each nested variant) came, and the
/// values each (kind, field) took, as text.
#[derive(Default)]
pub(crate) struct Mix {
    pub(crate) counts: BTreeMap<String, u32>,
    pub(crate) values: BTreeMap<(String, String), BTreeSet<String>>,
}

impl Mix {
    /// Counts one draw of `key` (a kind, or `kind.field.variant`).
    pub(crate) fn count(&mut self, key: impl Into<String>) {
        *self.counts.entry(key.into()).or_default() += 1;
    }

    /// Records that `field` of `kind` took `value`.
    pub(crate) fn note(&mut self, kind: &str, field: &str, value: impl Into<String>) {
        self.values.entry((kind.to_string(), field.to_string())).or_default().insert(value.into());
    }

    /// Counts `op` through its serialised form, so every field of every kind is seen without a
    /// hand-written list that could miss one: a unit kind is a string, any other `{kind: fields}`.
    pub(crate) fn add_json(&mut self, op: &impl serde::Serialize) {
        match serde_json::to_value(op).expect("an op serialises") {
            Value::String(unit) => self.count(unit),
            Value::Object(outer) => {
                for (kind, fields) in outer {
                    self.count(kind.clone());
                    let Value::Object(fields) = fields else { continue };
                    for (name, value) in fields {
                        self.add_value(&kind, &name, value);
                    }
                }
            }
            other => panic!("an op serialises as a kind or {{kind: fields}}: {other}"),
        }
    }

    /// One field's value: a nested enum counts its variant and recurses into its payload, an
    /// array records its length and each element, `null` (an `Option`'s None) counts as such.
    fn add_value(&mut self, kind: &str, field: &str, value: Value) {
        match value {
            Value::Object(variant) => {
                for (name, payload) in variant {
                    self.count(format!("{kind}.{field}.{name}"));
                    self.note(kind, field, name.clone());
                    self.add_value(kind, &format!("{field}.{name}"), payload);
                }
            }
            Value::String(name) => {
                self.count(format!("{kind}.{field}.{name}"));
                self.note(kind, field, name);
            }
            Value::Array(items) => {
                self.note(kind, field, format!("len {}", items.len()));
                for item in items {
                    self.add_value(kind, &format!("{field}[]"), item);
                }
            }
            Value::Null => {
                self.count(format!("{kind}.{field}.none"));
                self.note(kind, field, "null");
            }
            other => self.note(kind, field, other.to_string()),
        }
    }
}

/// `draws` operations from `S`'s cheap generator (case seed `seed`) and as many from its
/// strategy (proptest's deterministic runner), each counted by `add`: (cheap, strategy).
pub(crate) fn draw_both<S: Subject>(
    config: &S::Config,
    seed: u64,
    draws: u32,
    add: impl Fn(&mut Mix, &S::Op),
) -> (Mix, Mix) {
    let gen = S::op_gen(config).unwrap_or_else(|| panic!("{} has a cheap generator", S::NAME));
    let strategy = S::op_strategy(config);
    let mut runner = TestRunner::deterministic();
    let mut rng = OpRng::for_case(seed);
    let (mut cheap, mut tree) = (Mix::default(), Mix::default());
    for _ in 0..draws {
        add(&mut cheap, &gen(&mut rng));
        add(&mut tree, &strategy.new_tree(&mut runner).expect("no rejects").current());
    }
    (cheap, tree)
}

/// Every count of either mix is within 20 % of the strategy's or, for the rare ones, within four
/// standard deviations of a count near it.
pub(crate) fn assert_counts_agree(cheap: &Mix, tree: &Mix, seed: u64) {
    let keys: BTreeSet<_> = cheap.counts.keys().chain(tree.counts.keys()).collect();
    for key in keys {
        let a = f64::from(cheap.counts.get(key).copied().unwrap_or(0));
        let b = f64::from(tree.counts.get(key).copied().unwrap_or(0));
        let slack = (0.2 * b).max(4.0 * b.sqrt());
        assert!(
            (a - b).abs() <= slack,
            "{key}: cheap {a} vs strategy {b} (seed {seed})\ncheap {:?}\nstrategy {:?}",
            cheap.counts,
            tree.counts
        );
    }
}

/// Every (kind, field) took the same values in both mixes once each value is put in its class:
/// `class(value, both)` where `both` is every value either mix saw for the field (so a class may
/// depend on how wide the field is). `exact` compares values as themselves.
pub(crate) fn assert_values_agree(
    cheap: &Mix,
    tree: &Mix,
    seed: u64,
    class: impl Fn(&str, &BTreeSet<String>) -> String,
) {
    let fields: BTreeSet<_> = cheap.values.keys().chain(tree.values.keys()).collect();
    let none = BTreeSet::new();
    for field in fields {
        let (a, b) = (cheap.values.get(field).unwrap_or(&none), tree.values.get(field).unwrap_or(&none));
        let both: BTreeSet<String> = a.union(b).cloned().collect();
        let classes = |values: &BTreeSet<String>| -> BTreeSet<String> {
            values.iter().map(|value| class(value, &both)).collect()
        };
        let (a, b) = (classes(a), classes(b));
        let only_cheap: Vec<_> = a.difference(&b).collect();
        let only_tree: Vec<_> = b.difference(&a).collect();
        assert!(
            only_cheap.is_empty() && only_tree.is_empty(),
            "{field:?} (seed {seed}): only cheap {only_cheap:?}, only strategy {only_tree:?}"
        );
    }
}

/// The class [`assert_values_agree`] compares by when values are compared as themselves.
pub(crate) fn exact(value: &str, _both: &BTreeSet<String>) -> String {
    value.to_string()
}
