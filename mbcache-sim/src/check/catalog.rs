//! What the CLI and the zoo read about mbcache: the fix table, a configuration for a kernel
//! version, the zoo rows (each a bug found with its fix off and quiet with it on) and the
//! teaching scenarios.

use sim_core::check::{Catalog, ScenarioInfo, ZooEntry};
use sim_core::fixes::{FixTable, FixTableOf};
use sim_core::trace::TraceMode;
use sim_core::{Sim, SimConfig, ViolationKind};

use super::scenario::{scenario_find_next_after_free, scenario_shrinker_lru};
use super::{MbcacheConfig, MbcacheSubject};
use crate::fixes::{self, Fixes, MbcacheFixes};

/// The scenario that shows the seed's find_next-after-free oops.
pub const SCENARIO_FIND_NEXT_AFTER_FREE: &str = "find-next-after-free";
/// The scenario that shows release order on the LRU and the shrinker.
pub const SCENARIO_SHRINKER_LRU: &str = "shrinker-lru";

impl Catalog for MbcacheSubject {
    fn fix_table() -> &'static FixTable {
        <MbcacheFixes as FixTableOf>::TABLE
    }

    fn config(kernel: Option<&str>, fixes_off: &[String]) -> Result<MbcacheConfig, String> {
        let fixes = Fixes::parse(kernel, fixes_off)?;
        Ok(MbcacheConfig::new(kernel.unwrap_or(fixes::PRESET_LATER), fixes))
    }

    /// Every row is hunted in the newest kernel with only its own fix off, so that no other bug
    /// of an older kernel (2.6.11's GFP_KERNEL allocation under `xattr_sem`, say) answers first.
    fn zoo() -> Vec<ZooEntry> {
        vec![
            ZooEntry {
                name: "entry-count-leak-on-failed-alloc",
                kernel: fixes::PRESET_LATER,
                fix: fixes::FIX_ENTRY_COUNT_AFTER_ALLOC,
                checker: "op-sim",
                expected: vec![ViolationKind::Leak],
                ops_max: 60,
                cases_max: 200,
            },
            ZooEntry {
                name: "find-next-after-free",
                kernel: fixes::PRESET_LATER,
                fix: fixes::FIX_EXCLUSIVE_GET,
                checker: "op-sim",
                // find_next from an entry another task freed follows LIST_POISON1; from one
                // another task re-inserted elsewhere it walks into a foreign bucket's head; in
                // ext2, a block whose entry a setxattr holds from a find is freed under it.
                expected: vec![
                    ViolationKind::ListPoison,
                    ViolationKind::finding("wild-pointer"),
                    ViolationKind::finding("xattr-block-freed-while-found"),
                    ViolationKind::finding("xattr-block-reused"),
                ],
                ops_max: 80,
                cases_max: 1000,
            },
            ZooEntry {
                name: "gfp-kernel-alloc-under-xattr-sem",
                kernel: fixes::PRESET_LATER,
                fix: fixes::FIX_ALLOC_GFP_NOFS,
                checker: "op-sim",
                expected: vec![ViolationKind::lockdep("circular-locking")],
                ops_max: 40,
                cases_max: 200,
            },
        ]
    }

    fn scenarios() -> Vec<ScenarioInfo> {
        vec![
            ScenarioInfo {
                name: SCENARIO_FIND_NEXT_AFTER_FREE,
                description: "seed 2.6.10: one task walks an xattr key with find_first/find_next while \
                              another frees the block it holds; find_next follows LIST_POISON1",
            },
            ScenarioInfo {
                name: SCENARIO_SHRINKER_LRU,
                description: "entries go on the global LRU in release order; the shrinker counts with \
                              nr_to_scan 0 and frees from the head",
            },
        ]
    }

    fn run_scenario(name: &str) -> Option<Sim> {
        let sim = Sim::new(
            SimConfig::new(1).cpus(2).lockdep(sim_core::lockdep::ReportMode::Collect).trace(TraceMode::Full),
        );
        match name {
            SCENARIO_FIND_NEXT_AFTER_FREE => scenario_find_next_after_free(&sim),
            SCENARIO_SHRINKER_LRU => scenario_shrinker_lru(&sim),
            _ => return None,
        }
        Some(sim)
    }
}
