//! What mbcache2 publishes to the tool: its fix table, its configuration for a kernel with some
//! fixes off, and its zoo. Every zoo row runs the newest preset with one fix off.

use sim_core::check::{Catalog, ScenarioInfo, ZooEntry};
use sim_core::fixes::{FixTable, FixTableOf};
use sim_core::{Sim, ViolationKind};

use super::{Mbcache2Config, Mbcache2Subject};
use crate::mbcache2::fixes::{
    Fixes, Mbcache2Fixes, ATOMIC_ENTRY_FLAGS, CANCEL_SHRINK_WORK, DELETE_OR_GET, LIMIT_CACHE_SIZE,
    PRESET_7_1, REFERENCED_TO_TAIL,
};
use crate::mbcache2::mbcache::CHAIN_WALK_FINDING;
use crate::mbcache2::xattr::REUSE_OF_FREED_BLOCK;

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
                checker: "op-sim",
                expected: vec![ViolationKind::Mismatch],
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
        ]
    }

    fn scenarios() -> Vec<ScenarioInfo> {
        Vec::new()
    }

    fn run_scenario(_name: &str) -> Option<Sim> {
        None
    }
}
