//! The balloon's cheap generator (`Subject::op_gen`) draws what its proptest strategy draws:
//! the same kinds in the same proportions, and every field over the same range. Fields drawn
//! over a whole integer type are compared by their top three bits (eight buckets), so the two
//! sets of values seen can be compared at all. And a seed names the same operations and trace
//! every time.

use balloon_sim::{BalloonConfig, BalloonSubject, Op};

use crate::core::gen_support::{assert_counts_agree, assert_values_agree, draw_both, exact, Mix};
use crate::core::harness::assert_default_seeds_repeat;

/// Draws per generator: enough that the rarest kind (one in eighteen) and every bucket of every
/// field show up in both.
const DRAWS: u32 = 12_000;

/// Counts `op`: its kind, and each field's bucket (a bool as itself, an integer of `bits` bits by
/// its top three).
fn add(mix: &mut Mix, op: &Op) {
    let top = |value: u32, bits: u32| value >> (bits - 3);
    let (kind, fields): (&str, Vec<(&str, u32)>) = match *op {
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
    mix.count(kind);
    for (field, bucket) in fields {
        mix.note(kind, field, bucket.to_string());
    }
}

#[test]
fn the_cheap_generator_draws_the_strategys_mix() {
    let config = BalloonConfig::preset("fixed").expect("preset");
    let (cheap, tree) = draw_both::<BalloonSubject>(&config, 3, DRAWS, add);
    assert_eq!(cheap.counts.len(), 8, "every kind drawn: {:?}", cheap.counts);
    assert_counts_agree(&cheap, &tree, 3);
    assert_values_agree(&cheap, &tree, 3, exact);
    // Every bucket of every field was seen: 8 per integer, 2 per bool.
    let buckets: usize = cheap.values.values().map(|seen| seen.len()).sum();
    assert_eq!(buckets, 8 + (8 + 8 + 2) + (8 + 8) + (8 + 8), "{:?}", cheap.values);
}

#[test]
fn a_thousand_seeds_name_the_same_operations_and_trace_twice() {
    assert_default_seeds_repeat::<BalloonSubject>();
}
