//! The cheap generator of mbcache2 (`Subject::op_gen`) draws what its proptest strategy draws:
//! the same kinds in the same proportions and every field over the same range; and a seed names
//! the same operations and trace every time.

use std::collections::BTreeSet;

use mbcache_sim::{Mbcache2Config, Mbcache2Subject};

use crate::core::gen_support::{assert_counts_agree, assert_values_agree, draw_both};
use crate::core::harness::assert_default_seeds_repeat;

/// Draws per generator: the rarest kinds (one in 28) come about 700 times each.
const DRAWS: u32 = 20_000;

/// A value's class: itself where both generators kept its field under 16, else its 32-wide band,
/// so a byte drawn over `0..=255` by a rare kind shows all its bands in a few hundred draws while
/// a small range is compared exactly.
fn class(value: &str, both: &BTreeSet<String>) -> String {
    let number = |text: &str| text.parse::<u64>().expect("mbcache2's fields are numbers");
    if both.iter().any(|seen| number(seen) >= 16) {
        format!("band {}", number(value) / 32)
    } else {
        value.to_string()
    }
}

#[test]
fn the_cheap_generator_draws_the_strategys_mix() {
    let config = Mbcache2Config::fixed();
    let (cheap, tree) = draw_both::<Mbcache2Subject>(&config, 7, DRAWS, |mix, op| mix.add_json(op));
    assert_eq!(cheap.counts.len(), 12, "every kind drawn: {:?}", cheap.counts);
    assert_counts_agree(&cheap, &tree, 7);
    assert_values_agree(&cheap, &tree, 7, class);
}

#[test]
fn a_thousand_seeds_name_the_same_operations_and_trace_twice() {
    assert_default_seeds_repeat::<Mbcache2Subject>();
}
