//! The cheap generator of taskstats (`Subject::op_gen`) draws what its proptest strategy
//! draws: the same kinds, fork kinds, masks and targets in the same proportions, and every field
//! over the same range, on two CPU counts (the masks and migrations depend on it); and a seed
//! names the same operations and trace every time.

use std::collections::BTreeSet;

use taskstats_sim::{TaskstatsConfig, TaskstatsSubject};

use crate::core::gen_support::{assert_counts_agree, assert_values_agree, draw_both};
use crate::core::harness::assert_default_seeds_repeat;

/// Draws per generator: enough that every value of the narrow fields and every bucket of the
/// wide ones ([`class`]) shows up in both, the rarest (an unprivileged fork's uid bucket)
/// about eleven times.
const DRAWS: u32 = 12_000;

/// A field with at most this many distinct values is compared value by value.
const EXACT_MAX: usize = 16;

/// A field with more than this many distinct values (the `any::<u8>()` ones: task and port
/// indices, uids, raw bytes) is compared by sixteenths of 0..=255; one with fewer (raw query
/// numbers, raw-message lengths) by eighths of that, in buckets of 8, so an end one too far
/// still lands in a bucket of its own. A few hundred draws cannot show every one of 256 values.
const BYTE_WIDE_MIN: usize = 64;

/// A value as it is compared: itself when its field took at most [`EXACT_MAX`] distinct values
/// (`both`, over both generators), else its number's bucket.
fn class(value: &str, both: &BTreeSet<String>) -> String {
    let bucket = match both.len() {
        d if d <= EXACT_MAX => return value.to_string(),
        d if d <= BYTE_WIDE_MIN => 8,
        _ => 16,
    };
    match value.strip_prefix("len ").unwrap_or(value).parse::<u32>() {
        Ok(n) => {
            assert!(n <= 255, "a wide field is at most a byte: {value}");
            format!("{}..={}", n / bucket * bucket, n / bucket * bucket + bucket - 1)
        }
        Err(_) => value.to_string(),
    }
}

fn assert_same_mix(config: &TaskstatsConfig, seed: u64) {
    let (cheap, tree) = draw_both::<TaskstatsSubject>(config, seed, DRAWS, |mix, op| mix.add_json(op));
    assert_counts_agree(&cheap, &tree, seed);
    assert_values_agree(&cheap, &tree, seed, class);
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
fn a_thousand_seeds_name_the_same_operations_and_trace_twice() {
    assert_default_seeds_repeat::<TaskstatsSubject>();
}
