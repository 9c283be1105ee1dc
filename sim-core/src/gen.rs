//! Cheap operation generation for the op-level checker's hot path.
//!
//! A proptest value tree per operation costs more than many operations do: a `prop_oneof!` tree
//! copies its runner and reseeds a ChaCha RNG for every alternative it did not pick (25–30 % of a
//! campaign's time in the profile of December 2026). A subject may instead give
//! [`crate::check::Subject::op_gen`]: a plain function from an [`OpRng`] to an operation, drawn
//! with the same distribution as its strategy. Then a campaign draws each case's list from an
//! [`OpRng`] seeded by the case's seed, and a failing list is shrunk by removing operations
//! ([`crate::check::shrink`]) instead of through a value tree. A subject without one keeps the
//! proptest strategy for everything, exactly as before.
//!
//! The stream is SplitMix64: one add and three mixing steps per draw, no table, no allocation,
//! and the same numbers on every platform, so a seed names the same case everywhere.

/// A deterministic random stream for generating one case's operations.
#[derive(Clone, Debug)]
pub struct OpRng {
    state: u64,
}

/// SplitMix64's increment (the golden ratio in 64 bits).
const GOLDEN: u64 = 0x9e37_79b9_7f4a_7c15;

/// Mixed into the seed so that a case's stream differs from other users of the same seed
/// (`"ksim-ops"` as a little-endian word).
const DOMAIN: u64 = u64::from_le_bytes(*b"ksim-ops");

impl OpRng {
    /// The stream for the case with seed `seed`.
    pub fn for_case(seed: u64) -> OpRng {
        let mut rng = OpRng { state: seed ^ DOMAIN };
        // One draw so that neighbouring seeds start far apart.
        rng.next_u64();
        rng
    }

    /// The next 64 random bits (SplitMix64's output function).
    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(GOLDEN);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number in `0..bound` (0 when `bound` is 0), by the multiply-shift reduction: its bias is
    /// below `bound / 2^64`, nothing a checker's bounds (a few hundred at most) can see.
    pub fn below(&mut self, bound: u64) -> u64 {
        ((u128::from(self.next_u64()) * u128::from(bound)) >> 64) as u64
    }

    /// A byte in `0..bound` (0 when `bound` is 0), as proptest's `0..bound` strategy draws.
    pub fn u8_below(&mut self, bound: u8) -> u8 {
        self.below(u64::from(bound)) as u8
    }

    /// A byte in `low..=high` (`low` when the range is empty).
    pub fn u8_in(&mut self, low: u8, high: u8) -> u8 {
        low + self.below(u64::from(high.saturating_sub(low)) + 1) as u8
    }

    /// A `u32` in `low..=high` (`low` when the range is empty).
    pub fn u32_in(&mut self, low: u32, high: u32) -> u32 {
        low + self.below(u64::from(high.saturating_sub(low)) + 1) as u32
    }

    /// Any byte, as proptest's `any::<u8>()` draws.
    pub fn any_u8(&mut self) -> u8 {
        (self.next_u64() >> 56) as u8
    }

    /// Any `u16`, as proptest's `any::<u16>()` draws.
    pub fn any_u16(&mut self) -> u16 {
        (self.next_u64() >> 48) as u16
    }

    /// Any `u32`, as proptest's `any::<u32>()` draws.
    pub fn any_u32(&mut self) -> u32 {
        (self.next_u64() >> 32) as u32
    }

    /// Either boolean, as proptest's `any::<bool>()` draws.
    pub fn any_bool(&mut self) -> bool {
        self.next_u64() >> 63 == 1
    }

    /// True with probability `numerator / denominator`.
    pub fn chance(&mut self, numerator: u64, denominator: u64) -> bool {
        self.below(denominator) < numerator
    }

    /// An index into `weights`, each picked with probability its weight over their sum, as a
    /// weighted `prop_oneof!` picks an alternative. Panics on an empty or all-zero list, which
    /// is a generator's bug, never a caller's. Inlined, so a generator's constant table sums
    /// at compile time.
    #[inline(always)]
    pub fn weighted(&mut self, weights: &[u32]) -> usize {
        let total: u64 = weights.iter().map(|&w| u64::from(w)).sum();
        assert!(total > 0, "OpRng::weighted needs a positive weight");
        let mut pick = self.below(total);
        for (index, &weight) in weights.iter().enumerate() {
            if pick < u64::from(weight) {
                return index;
            }
            pick -= u64::from(weight);
        }
        unreachable!("pick < total")
    }
}

/// A subject's cheap generator: one operation per call, drawn from the stream it is given.
/// Built once per campaign from the config ([`crate::check::Subject::op_gen`]).
pub type OpGen<Op> = Box<dyn Fn(&mut OpRng) -> Op + Send + Sync>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_stream_and_seeds_differ() {
        let draw = |seed| {
            let mut rng = OpRng::for_case(seed);
            (0..8).map(|_| rng.next_u64()).collect::<Vec<_>>()
        };
        assert_eq!(draw(7), draw(7));
        assert_ne!(draw(7), draw(8));
        // Pinned: a seed must name the same case on every platform and in every later build.
        let mut zero = OpRng::for_case(0);
        assert_eq!((zero.next_u64(), zero.next_u64()), (0xb779_7c1c_5ade_681c, 0xea84_b754_08ff_af7f));
    }

    #[test]
    fn bounded_draws_stay_in_range_and_cover_it() {
        let mut rng = OpRng::for_case(1);
        let mut seen = [0u32; 5];
        for _ in 0..5000 {
            let v = rng.u8_in(3, 7);
            assert!((3..=7).contains(&v));
            seen[usize::from(v - 3)] += 1;
        }
        assert!(seen.iter().all(|&n| n > 800), "roughly uniform: {seen:?}");
        assert_eq!(rng.below(0), 0);
        assert_eq!(rng.u8_in(5, 5), 5);
        let mut picks = [0u32; 3];
        for _ in 0..4000 {
            picks[rng.weighted(&[1, 0, 3])] += 1;
        }
        assert_eq!(picks[1], 0);
        assert!(picks[2] > 2 * picks[0], "weights respected: {picks:?}");
    }
}
