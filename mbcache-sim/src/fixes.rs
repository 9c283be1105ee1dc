//! The behavioural differences between the fs/mbcache.c versions ksim models, as named switches,
//! and the presets (kernel versions) that are sets of them.

use serde::{Deserialize, Serialize};
use sim_core::check::{FixInfo, PresetInfo};

/// Which fixes are on. Every field is one upstream change to fs/mbcache.c after 2.6.10.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fixes {
    /// `mb_cache_entry_alloc()` counts the entry in `c_entry_count` only once
    /// `kmem_cache_alloc()` succeeded; the seed counts it before, and a failed allocation leaks
    /// one count forever (the shrinker over-reports, destroy reports a phantom orphan).
    pub entry_count_after_alloc: bool,
    /// Entry handles become shared ("readers", from find_first/find_next) or exclusive ("writer",
    /// from alloc/get): `get` waits until no handle refers to the entry, `find` waits while a
    /// writer holds it, both give up on an entry unhashed meanwhile, and the racy
    /// `takeout`/`dup` leave the API. Without it, one task can free (unhash) an entry while another
    /// holds it from a find walk, whose `find_next` then follows a poisoned list link (an oops).
    pub exclusive_get: bool,
}

/// The switch names, as `--fix-off` takes them.
pub const FIX_ENTRY_COUNT_AFTER_ALLOC: &str = "entry-count-after-alloc";
/// See [`Fixes::exclusive_get`].
pub const FIX_EXCLUSIVE_GET: &str = "exclusive-get";

/// The seed, Linux 2.6.0 to 2.6.10.
pub const PRESET_SEED: &str = "linux-2.6.10";
/// The later 2.6 fs/mbcache.c (before the 3.x rewrites): both fixes on.
pub const PRESET_FIXED: &str = "linux-2.6.18";

impl Fixes {
    /// Every fix on.
    pub fn all() -> Fixes {
        Fixes { entry_count_after_alloc: true, exclusive_get: true }
    }

    /// The seed's behaviour: no fix.
    pub fn none() -> Fixes {
        Fixes { entry_count_after_alloc: false, exclusive_get: false }
    }

    /// The fixes of `preset`.
    pub fn preset(name: &str) -> Option<Fixes> {
        match name {
            PRESET_SEED => Some(Fixes::none()),
            PRESET_FIXED => Some(Fixes::all()),
            _ => None,
        }
    }

    /// Switches `name` off; false for an unknown name.
    pub fn switch_off(&mut self, name: &str) -> bool {
        match name {
            FIX_ENTRY_COUNT_AFTER_ALLOC => self.entry_count_after_alloc = false,
            FIX_EXCLUSIVE_GET => self.exclusive_get = false,
            _ => return false,
        }
        true
    }
}

/// Every fix, for the CLI and the zoo.
pub fn fix_infos() -> Vec<FixInfo> {
    vec![
        FixInfo {
            name: FIX_ENTRY_COUNT_AFTER_ALLOC,
            title: "mbcache: count an entry only after kmem_cache_alloc() succeeded (mb_cache_entry_alloc, 2.6.1x)",
            cve: None,
            symptom: "a failed entry allocation leaves c_entry_count one too high: the shrinker reports \
                      entries that do not exist and mb_cache_destroy() reports orphans",
        },
        FixInfo {
            name: FIX_EXCLUSIVE_GET,
            title: "Race in ext[23] xattr sharing code (Andreas Gruenbacher, 2.6.11)",
            cve: None,
            symptom: "a task frees an xattr block's entry while another walks the index with \
                      find_first/find_next; find_next follows the freed entry's poisoned list link",
        },
    ]
}

/// The presets, oldest first; the last is the default.
pub fn preset_infos() -> Vec<PresetInfo> {
    vec![
        PresetInfo {
            name: PRESET_SEED,
            description: "seed 001: fs/mbcache.c of 2.6.0-2.6.10: atomic e_used, takeout/dup, the \
                          entry count bumped before the allocation",
            fixes: vec![],
        },
        PresetInfo {
            name: PRESET_FIXED,
            description: "fs/mbcache.c as later 2.6 kernels had it: exclusive get / shared find with \
                          e_queued and mb_cache_queue, the entry counted after allocation",
            fixes: vec![FIX_ENTRY_COUNT_AFTER_ALLOC, FIX_EXCLUSIVE_GET],
        },
    ]
}
