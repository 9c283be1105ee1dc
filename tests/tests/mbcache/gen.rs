//! The cheap generator of mbcache 2.6 (`Subject::op_gen`) draws what its proptest strategy
//! draws: the same kinds in the same proportions and every field over the same range, for each
//! mix of operations a config can ask for; and a seed names the same operations and trace every
//! time.

use mbcache_sim::{Fixes, MbcacheConfig, MbcacheSubject, PRESET_FIXED};

use crate::core::gen_support::{assert_counts_agree, assert_values_agree, draw_both, exact};
use crate::core::harness::assert_default_seeds_repeat;

/// Draws per generator: enough that the rarest field value (an undersized create, about one
/// draw in three hundred) shows up in both.
const DRAWS: u32 = 12_000;

fn assert_same_mix(config: &MbcacheConfig, seed: u64) {
    let (cheap, tree) = draw_both::<MbcacheSubject>(config, seed, DRAWS, |mix, op| mix.add_json(op));
    assert_counts_agree(&cheap, &tree, seed);
    assert_values_agree(&cheap, &tree, seed, exact);
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
fn a_thousand_seeds_name_the_same_operations_and_trace_twice() {
    assert_default_seeds_repeat::<MbcacheSubject>();
}
