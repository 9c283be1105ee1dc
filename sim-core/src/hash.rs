//! include/linux/hash.h (2.6.0 to 4.6): `hash_long()` on a 64-bit machine, the multiplicative hash
//! mbcache 2.6 uses for its block and index buckets and kernel/pid.c for `pid_hash`. Left out: the
//! 32-bit variant and 4.7's new multiplier.

/// `GOLDEN_RATIO_PRIME_64`: a prime close to 2^64 / phi, with few bits set so that the product
/// is a handful of shifts and adds.
pub const GOLDEN_RATIO_PRIME_64: u64 = 0x9e37_ffff_fffc_0001;

/// Most hash bits a table may use (the kernel's `BITS_PER_LONG`).
pub const BITS_PER_LONG: u32 = 64;

/// Mirrors `hash_long()` / `hash_64()` of 2.6.0 for `BITS_PER_LONG == 64`: multiplies by
/// [`GOLDEN_RATIO_PRIME_64`] through the kernel's shift-and-add sequence and keeps the top `bits`.
///
/// `bits == 0` shifts right by 64 in C, which is undefined; every bucket index of a one-bucket
/// table is 0, so this returns 0.
pub fn hash_long(value: u64, bits: u32) -> u32 {
    debug_assert!(bits <= BITS_PER_LONG);
    let mut hash = value;
    let mut n = value;
    n <<= 18;
    hash = hash.wrapping_sub(n);
    n <<= 33;
    hash = hash.wrapping_sub(n);
    n <<= 3;
    hash = hash.wrapping_add(n);
    n <<= 3;
    hash = hash.wrapping_sub(n);
    n <<= 4;
    hash = hash.wrapping_add(n);
    n <<= 2;
    hash = hash.wrapping_add(n);
    if bits == 0 {
        return 0;
    }
    (hash >> (BITS_PER_LONG - bits)) as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shift_and_add_sequence_equals_multiplying_by_the_golden_ratio_prime() {
        for value in [0u64, 1, 2, 0xdead_beef, u64::MAX, 0xffff_8800_0000_0400, 12345678901234567] {
            let product = value.wrapping_mul(GOLDEN_RATIO_PRIME_64);
            for bits in 1..=16 {
                assert_eq!(u64::from(hash_long(value, bits)), product >> (64 - bits), "{value:#x} {bits}");
            }
        }
    }

    #[test]
    fn buckets_stay_in_range() {
        for value in 0..1000u64 {
            assert!(hash_long(value, 3) < 8);
            assert_eq!(hash_long(value, 0), 0);
        }
    }
}
