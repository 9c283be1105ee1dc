//! The cheap generator of taskstats ([`Subject::op_gen`]) draws what its proptest strategy
//! draws: the same kinds, fork kinds, masks and targets in the same proportions, and every field
//! over the same range, on two CPU counts (the masks and migrations depend on it).

use std::collections::{BTreeMap, BTreeSet};

use proptest::strategy::{Strategy, ValueTree};
use proptest::test_runner::TestRunner;
use serde_json::Value;
use sim_core::check::Subject;
use sim_core::gen::OpRng;
use taskstats_sim::{Op, TaskstatsConfig, TaskstatsSubject};

/// Draws per generator: enough that every value of the narrow fields and every bucket of the
/// wide ones ([`compared`]) shows up in both, the rarest (an unprivileged fork's uid bucket)
/// about eleven times.
const DRAWS: u32 = 12_000;

/// A field with at most this many distinct values is compared value by value.
const EXACT_MAX: usize = 16;

/// A field with more than this many distinct values (the `any::<u8>()` ones: task and port
/// indices, uids, raw bytes) is compared by sixteenths of 0..=255; one with fewer (raw query
/// numbers, raw-message lengths) by eighths of that, in buckets of 8, so an end one too far
/// still lands in a bucket of its own. A few hundred draws cannot show every one of 256 values.
const BYTE_WIDE_MIN: usize = 64;

/// What a set of draws looked like: how often each kind and each nested variant came, and the
/// numbers and names each (kind, field) took.
#[derive(Default)]
struct Mix {
    counts: BTreeMap<String, u32>,
    values: BTreeMap<(String, String), BTreeSet<String>>,
}

impl Mix {
    /// Counts `op` through its serialised form, so every field of every kind is seen without a
    /// hand-written list that could miss one.
    fn add(&mut self, op: &Op) {
        let Value::Object(outer) = serde_json::to_value(op).expect("an op serialises") else {
            panic!("an op serialises as {{kind: fields}}: {op:?}");
        };
        for (kind, fields) in outer {
            *self.counts.entry(kind.clone()).or_default() += 1;
            let Value::Object(fields) = fields else { continue };
            for (name, value) in fields {
                self.add_value(&kind, &name, value);
            }
        }
    }

    /// One field's value: a nested enum counts its variant and recurses into its payload, an
    /// array records its length and each element, `null` (an `Option`'s None) counts as such.
    fn add_value(&mut self, kind: &str, field: &str, value: Value) {
        let note = |mix: &mut Mix, text: String| {
            mix.values.entry((kind.to_string(), field.to_string())).or_default().insert(text);
        };
        match value {
            Value::Object(variant) => {
                for (name, payload) in variant {
                    *self.counts.entry(format!("{kind}.{field}.{name}")).or_default() += 1;
                    note(self, name.clone());
                    self.add_value(kind, &format!("{field}.{name}"), payload);
                }
            }
            Value::String(name) => {
                *self.counts.entry(format!("{kind}.{field}.{name}")).or_default() += 1;
                note(self, name);
            }
            Value::Array(items) => {
                note(self, format!("len {}", items.len()));
                for item in items {
                    self.add_value(kind, &format!("{field}[]"), item);
                }
            }
            Value::Null => {
                *self.counts.entry(format!("{kind}.{field}.none")).or_default() += 1;
                note(self, "null".into());
            }
            other => note(self, other.to_string()),
        }
    }
}

/// The values of one field as they are compared: exactly when it has at most [`EXACT_MAX`]
/// distinct values (`distinct`, over both generators), else numbers in buckets.
fn compared(values: &BTreeSet<String>, distinct: usize) -> BTreeSet<String> {
    let bucket = match distinct {
        d if d <= EXACT_MAX => return values.clone(),
        d if d <= BYTE_WIDE_MIN => 8,
        _ => 16,
    };
    values
        .iter()
        .map(|v| match v.strip_prefix("len ").unwrap_or(v).parse::<u32>() {
            Ok(n) => {
                assert!(n <= 255, "a wide field is at most a byte: {v}");
                format!("{}..={}", n / bucket * bucket, n / bucket * bucket + bucket - 1)
            }
            Err(_) => v.clone(),
        })
        .collect()
}

fn assert_same_mix(config: &TaskstatsConfig, seed: u64) {
    let gen = TaskstatsSubject::op_gen(config).expect("taskstats has a cheap generator");
    let strategy = TaskstatsSubject::op_strategy(config);
    let mut runner = TestRunner::deterministic();
    let mut rng = OpRng::for_case(seed);
    let (mut cheap, mut tree) = (Mix::default(), Mix::default());
    for _ in 0..DRAWS {
        cheap.add(&gen(&mut rng));
        tree.add(&strategy.new_tree(&mut runner).expect("no rejects").current());
    }
    let counted: BTreeSet<_> = cheap.counts.keys().chain(tree.counts.keys()).collect();
    for key in counted {
        let a = f64::from(cheap.counts.get(key).copied().unwrap_or(0));
        let b = f64::from(tree.counts.get(key).copied().unwrap_or(0));
        // Within 20 % or, for the rare ones, four standard deviations of a count near b.
        let slack = (0.2 * b).max(4.0 * b.sqrt());
        assert!((a - b).abs() <= slack, "{key}: cheap {a} vs strategy {b} (seed {seed})");
    }
    let fields: BTreeSet<_> = cheap.values.keys().chain(tree.values.keys()).collect();
    for field in fields {
        let none = BTreeSet::new();
        let (a, b) = (cheap.values.get(field).unwrap_or(&none), tree.values.get(field).unwrap_or(&none));
        let distinct = a.union(b).count();
        let (a, b) = (compared(a, distinct), compared(b, distinct));
        let only_cheap: Vec<_> = a.difference(&b).collect();
        let only_tree: Vec<_> = b.difference(&a).collect();
        assert!(
            only_cheap.is_empty() && only_tree.is_empty(),
            "{field:?} (seed {seed}): only cheap {only_cheap:?}, only strategy {only_tree:?}"
        );
    }
    assert!(cheap.counts.len() > 30, "every kind and variant was counted: {:?}", cheap.counts);
}

#[test]
fn the_cheap_generator_draws_the_strategys_mix() {
    let config = TaskstatsConfig::contract("linux-3.8");
    assert_eq!(config.params.cpus, 2, "the default world has two CPUs");
    assert_same_mix(&config, 3);
}

#[test]
fn the_cheap_generator_follows_the_cpu_count() {
    let mut config = TaskstatsConfig::contract("linux-2.6.19");
    config.params.cpus = 4;
    assert_same_mix(&config, 4);
}

#[test]
fn a_seed_names_the_same_cheaply_drawn_operations_every_time() {
    let config = TaskstatsConfig::contract("linux-3.8");
    let ops = sim_core::check::generate::<TaskstatsSubject>(&config, 11, 60);
    assert_eq!(ops, sim_core::check::generate::<TaskstatsSubject>(&config, 11, 60));
    assert_ne!(ops, sim_core::check::generate::<TaskstatsSubject>(&config, 12, 60));
    assert!(ops.len() > 1, "a case has operations: {ops:?}");
}
