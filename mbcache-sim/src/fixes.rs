//! The behavioural differences between the fs/mbcache.c versions ksim models, as one fix table:
//! each row a named switch with its upstream identity and the kernel version it landed in, so a
//! kernel version is a preset (`--kernel 2.6.11`).

use sim_core::fixes::{Commit, Fix, FixId, FixTable, FixTableOf, KernelVersion, NamedPreset};

/// The mbcache fix table, as a type ([`Fixes`] is a set of its rows).
#[derive(Debug)]
pub struct MbcacheFixes;

/// Which mbcache fixes are on.
pub type Fixes = sim_core::fixes::Fixes<MbcacheFixes>;

/// `mb_cache_entry_alloc()` counts the entry in `c_entry_count` only once `kmem_cache_alloc()`
/// succeeded; the seed counts it before, and a failed allocation leaks one count forever (the
/// shrinker over-reports, destroy reports a phantom orphan).
pub const ENTRY_COUNT_AFTER_ALLOC: FixId = FixId::new(0, "entry-count-after-alloc");
/// Entry handles become shared ("readers", from find_first/find_next) or exclusive ("writer",
/// from alloc/get): `get` waits until no handle refers to the entry, `find` waits while a writer
/// holds it, both give up on an entry unhashed meanwhile, and the racy `takeout`/`dup` leave the
/// API. Without it, one task can free (unhash) an entry while another holds it from a find walk,
/// whose `find_next` then follows a poisoned list link (an oops).
pub const EXCLUSIVE_GET: FixId = FixId::new(1, "exclusive-get");

/// Every [`FixId`], in table order.
pub const FIX_IDS: [FixId; 2] = [ENTRY_COUNT_AFTER_ALLOC, EXCLUSIVE_GET];

/// The switch names, as `--fix-off` takes them.
pub const FIX_ENTRY_COUNT_AFTER_ALLOC: &str = ENTRY_COUNT_AFTER_ALLOC.name();
/// See [`EXCLUSIVE_GET`].
pub const FIX_EXCLUSIVE_GET: &str = EXCLUSIVE_GET.name();

/// The seed, Linux 2.6.0 to 2.6.10.
pub const PRESET_SEED: &str = "linux-2.6.10";
/// The later 2.6 fs/mbcache.c (before the 3.x rewrites): both fixes on.
pub const PRESET_FIXED: &str = "linux-2.6.18";

impl FixTableOf for MbcacheFixes {
    const TABLE: &'static FixTable = &FixTable {
        subsystem: "mbcache",
        oldest: KernelVersion::new(2, 6, 0),
        newest: KernelVersion::new(2, 6, 18),
        fixes: &[
            Fix {
                name: "entry-count-after-alloc",
                title: "mbcache: count an entry only after kmem_cache_alloc() succeeded",
                commit: Commit::Unverified,
                landed_in: KernelVersion::new(2, 6, 18),
                cve: None,
                symptom: "a failed entry allocation leaves c_entry_count one too high: the shrinker reports \
                          entries that do not exist and mb_cache_destroy() reports orphans",
            },
            Fix {
                name: "exclusive-get",
                title: "Race in ext[23] xattr sharing code",
                commit: Commit::Unverified,
                landed_in: KernelVersion::new(2, 6, 11),
                cve: None,
                symptom: "a task frees an xattr block's entry while another walks the index with \
                          find_first/find_next; find_next follows the freed entry's poisoned list link",
            },
        ],
        presets: &[
            NamedPreset {
                name: PRESET_SEED,
                version: KernelVersion::new(2, 6, 10),
                description: "seed 001: fs/mbcache.c of 2.6.0-2.6.10: atomic e_used, takeout/dup, the entry \
                              count bumped before the allocation",
            },
            NamedPreset {
                name: PRESET_FIXED,
                version: KernelVersion::new(2, 6, 18),
                description: "fs/mbcache.c as later 2.6 kernels had it: exclusive get / shared find with \
                              e_queued and mb_cache_queue, the entry counted after allocation",
            },
        ],
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fix_table_is_consistent_with_its_ids() {
        MbcacheFixes::TABLE.validate(&FIX_IDS).unwrap();
    }
}
