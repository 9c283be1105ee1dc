//! mbcache 2.6's bucket hash: include/linux/hash.h's `hash_long()`, which sim-core keeps
//! ([`sim_core::hash`]) for every model that hashes as the kernel does.

pub use sim_core::hash::hash_long;

#[cfg(test)]
mod tests {
    use super::*;

    /// The era's multiplier has few bits set, so sequential block numbers on one device land in
    /// few buckets: a large cache gets long chains (the kernel replaced the multiplier in 4.7).
    #[test]
    fn sequential_blocks_of_one_device_use_only_8192_of_2_pow_18_buckets() {
        let bdev = crate::registry::bdev_address(0);
        let used: std::collections::BTreeSet<u32> =
            (0..1_000_000u64).map(|b| hash_long(bdev + b, 18)).collect();
        assert_eq!(used.len(), 8192);
    }
}
