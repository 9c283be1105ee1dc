//! What mbcache2 publishes to the tool: its fix table, its configuration for a kernel with some
//! fixes off, and its zoo. Every zoo row runs the newest preset with one fix off.

use sim_core::check::{Catalog, ScenarioInfo, ZooEntry};
use sim_core::fixes::{FixTable, FixTableOf};
use sim_core::trace::TraceMode;
use sim_core::{Sim, SimConfig, ViolationKind};

use super::{scenario, Mbcache2Config, Mbcache2Subject};
use crate::mbcache2::fixes::{
    Fixes, Mbcache2Fixes, ATOMIC_ENTRY_FLAGS, CANCEL_SHRINK_WORK, CREATE_HOLDS_REF, DELETE_OR_GET,
    LIMIT_CACHE_SIZE, PRESET_7_1, REFERENCED_TO_TAIL,
};
use crate::mbcache2::mbcache::CHAIN_WALK_FINDING;
use crate::mbcache2::shrinker::SECOND_CHANCE_LOST;
use crate::mbcache2::xattr::REUSE_OF_FREED_BLOCK;

/// The teaching scenarios' names (`ksim trace mbcache2:NAME`).
pub(crate) const SCENARIO_REUSE_VS_RELEASE: &str = "reuse-vs-release";
/// See [`SCENARIO_REUSE_VS_RELEASE`].
pub(crate) const SCENARIO_RELEASE_WAITS: &str = "release-waits-for-reuser";
/// See [`SCENARIO_REUSE_VS_RELEASE`].
pub(crate) const SCENARIO_SHRINK_WORK_VS_DESTROY: &str = "shrink-work-vs-destroy";

/// The zoo row names, for tests.
pub const ZOO_CHAIN_WALK: &str = "CVE-2015-8952 unbounded hash chain walks";
/// See [`ZOO_CHAIN_WALK`].
pub const ZOO_REFERENCED: &str = "mbcache: correctly handle 'e_referenced' bit";
/// See [`ZOO_CHAIN_WALK`].
pub const ZOO_LOST_FLAG: &str = "ext4: fix deadlock due to mbcache entry corruption";
/// See [`ZOO_CHAIN_WALK`].
pub const ZOO_REUSE_RELEASE: &str = "ext4: fix race when reusing xattr blocks";
/// See [`ZOO_CHAIN_WALK`].
pub const ZOO_SHRINK_WORK: &str = "fs/mbcache: cancel shrink work before destroying the cache";
/// See [`ZOO_CHAIN_WALK`].
pub const ZOO_LIST_LOCK_NESTING: &str = "mbcache: Avoid nesting of cache->c_list_lock under bit locks";

impl Catalog for Mbcache2Subject {
    fn fix_table() -> &'static FixTable {
        Mbcache2Fixes::TABLE
    }

    fn config(kernel: Option<&str>, fixes_off: &[String]) -> Result<Mbcache2Config, String> {
        let fixes = Fixes::parse(kernel, fixes_off)?;
        Ok(Mbcache2Config::new(kernel.unwrap_or(PRESET_7_1), fixes))
    }

    fn zoo() -> Vec<ZooEntry> {
        vec![
            ZooEntry {
                name: ZOO_CHAIN_WALK,
                kernel: PRESET_7_1,
                fix: LIMIT_CACHE_SIZE.name(),
                checker: "op-sim",
                // The walk bound is passed well after the fixed kernel would have shrunk the
                // cache; an operation that sees the difference first is a mismatch.
                expected: vec![CHAIN_WALK_FINDING, ViolationKind::Mismatch],
                ops_max: 300,
                cases_max: 40,
            },
            ZooEntry {
                name: ZOO_REFERENCED,
                kernel: PRESET_7_1,
                fix: REFERENCED_TO_TAIL.name(),
                checker: "op-sim (a shrink frees more than the reference allows, or the entry just given a second chance is reclaimed next)",
                expected: vec![SECOND_CHANCE_LOST, ViolationKind::Mismatch],
                ops_max: 60,
                cases_max: 400,
            },
            ZooEntry {
                name: ZOO_LOST_FLAG,
                kernel: PRESET_7_1,
                fix: ATOMIC_ENTRY_FLAGS.name(),
                checker: "lockset (op-sim); shuttle loses the update, loom reports the race",
                expected: vec![ViolationKind::lockdep("lockset-race")],
                ops_max: 40,
                cases_max: 300,
            },
            ZooEntry {
                name: ZOO_REUSE_RELEASE,
                kernel: PRESET_7_1,
                fix: DELETE_OR_GET.name(),
                checker: "op-sim",
                expected: vec![REUSE_OF_FREED_BLOCK, ViolationKind::Mismatch],
                ops_max: 40,
                cases_max: 400,
            },
            ZooEntry {
                name: ZOO_SHRINK_WORK,
                kernel: PRESET_7_1,
                fix: CANCEL_SHRINK_WORK.name(),
                checker: "op-sim",
                expected: vec![ViolationKind::UseAfterFree],
                ops_max: 300,
                cases_max: 40,
            },
            ZooEntry {
                name: ZOO_LIST_LOCK_NESTING,
                kernel: PRESET_7_1,
                fix: CREATE_HOLDS_REF.name(),
                checker:
                    "might_sleep (op-sim): c_list_lock, a sleeping lock on PREEMPT_RT, under a bit spinlock",
                expected: vec![ViolationKind::lockdep("sleep-in-atomic")],
                ops_max: 20,
                cases_max: 20,
            },
        ]
    }

    fn scenarios() -> Vec<ScenarioInfo> {
        vec![
            ScenarioInfo {
                name: SCENARIO_REUSE_VS_RELEASE,
                description: "before 6.0: setxattr(A) finds B's xattr block in the mbcache; unlink(B) \
                              deletes the entry and frees the block; A takes journal write access to the \
                              freed block",
            },
            ScenarioInfo {
                name: SCENARIO_RELEASE_WAITS,
                description: "from 6.0: unlink(B)'s mb_cache_entry_delete_or_get() sees A's reference, \
                              sleeps until A's reuse puts the entry, then drops a second reference instead",
            },
            ScenarioInfo {
                name: SCENARIO_SHRINK_WORK_VS_DESTROY,
                description: "before 7.1: 33 inserts queue the shrink work; umount's mb_cache_destroy() \
                              frees the cache with the work queued; the kworker shrinks freed memory",
            },
        ]
    }

    fn run_scenario(name: &str) -> Option<Sim> {
        let sim = Sim::new(
            SimConfig::new(1).cpus(2).lockdep(sim_core::lockdep::ReportMode::Collect).trace(TraceMode::Full),
        );
        match name {
            SCENARIO_REUSE_VS_RELEASE => scenario::scenario_reuse_vs_release(&sim),
            SCENARIO_RELEASE_WAITS => scenario::scenario_release_waits_for_reuser(&sim),
            SCENARIO_SHRINK_WORK_VS_DESTROY => scenario::scenario_shrink_work_vs_destroy(&sim),
            _ => return None,
        }
        Some(sim)
    }
}
