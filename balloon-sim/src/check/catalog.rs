//! The balloon's catalog: its fix table, the configuration of a kernel version, the zoo of
//! historical bugs and the teaching scenarios.

use sim_core::check::{Catalog, ScenarioInfo, ZooEntry};
use sim_core::fixes::{FixTable, FixTableOf};
use sim_core::{Sim, ViolationKind};

use crate::check::scenario::oom_deadlock_scenario;
use crate::check::{BalloonConfig, BalloonSubject};
use crate::fixes::{BalloonFixes, Fixes};

impl Catalog for BalloonSubject {
    fn fix_table() -> &'static FixTable {
        <BalloonFixes as FixTableOf>::TABLE
    }

    fn config(kernel: Option<&str>, fixes_off: &[String]) -> Result<BalloonConfig, String> {
        let mut config = BalloonConfig::preset(kernel.unwrap_or("fixed"))?;
        config.fixes = Fixes::parse(kernel, fixes_off)?;
        Ok(config)
    }

    // One row per fix: a table of data, as long as the fix table.
    fn zoo() -> Vec<ZooEntry> {
        vec![
            ZooEntry {
                name: "oom-deadlock",
                kernel: "fixed",
                fix: "oom-deadlock",
                checker: "lockdep",
                expected: vec![ViolationKind::lockdep("circular-locking")],
                ops_max: 40,
                cases_max: 400,
            },
            ZooEntry {
                name: "fill-pfns-index",
                kernel: "fixed",
                fix: "fill-pfns-index",
                checker: "op-sim",
                expected: vec![
                    ViolationKind::invariant("host-holds-non-balloon-pfn"),
                    ViolationKind::invariant("balloon-pfn-not-held"),
                ],
                ops_max: 30,
                cases_max: 200,
            },
            ZooEntry {
                name: "stats-first-buffer",
                kernel: "fixed",
                fix: "stats-first-buffer",
                checker: "op-sim",
                expected: vec![ViolationKind::finding("host-finding")],
                ops_max: 10,
                cases_max: 100,
            },
            ZooEntry {
                name: "pfn-format-virtio1",
                kernel: "fixed",
                fix: "pfn-format-virtio1",
                checker: "op-sim",
                expected: vec![ViolationKind::finding("host-finding")],
                ops_max: 30,
                cases_max: 300,
            },
            ZooEntry {
                name: "endless-inflate-deflate-64k",
                kernel: "fixed",
                fix: "align-target",
                checker: "op-sim",
                expected: vec![ViolationKind::Liveness],
                ops_max: 30,
                cases_max: 300,
            },
            ZooEntry {
                name: "leak-available-pages",
                kernel: "fixed",
                fix: "leak-available-pages",
                checker: "op-sim",
                expected: vec![ViolationKind::Bug],
                ops_max: 40,
                cases_max: 400,
            },
            ZooEntry {
                name: "migrate-managed-count",
                kernel: "fixed",
                fix: "migrate-managed-count",
                checker: "op-sim",
                expected: vec![ViolationKind::invariant("managed-pages-not-conserved")],
                ops_max: 40,
                cases_max: 400,
            },
            ZooEntry {
                name: "blocking-config-read-in-wait",
                kernel: "fixed",
                fix: "wait-woken",
                checker: "op-sim",
                expected: vec![ViolationKind::finding(sim_core::cx::BLOCKING_OP_NOT_RUNNING)],
                ops_max: 20,
                cases_max: 100,
            },
            ZooEntry {
                name: "s4-balloon-leak",
                kernel: "fixed",
                fix: "s4-leak-fill",
                checker: "op-sim",
                // The leak, or first a use of the deleted queues by the OOM notifier or
                // compaction, which 3.3's freeze left with pages to move.
                expected: vec![ViolationKind::invariant("pages-leaked"), ViolationKind::UseAfterFree],
                ops_max: 30,
                cases_max: 300,
            },
            ZooEntry {
                name: "deflate-on-oom-reinflated",
                kernel: "fixed",
                fix: "deflate-on-oom-handler",
                checker: "op-sim",
                // The shrinker era: fill_balloon's own allocations reclaim, reclaim runs the
                // balloon's shrinker, and the thread inflates again what it just deflated.
                expected: vec![ViolationKind::Liveness],
                ops_max: 40,
                cases_max: 400,
            },
            ZooEntry {
                name: "list-del-twice",
                kernel: "fixed",
                fix: "avoid-duplicate-removal",
                checker: "op-sim",
                expected: vec![ViolationKind::ListPoison],
                ops_max: 20,
                cases_max: 100,
            },
        ]
    }

    fn scenarios() -> Vec<ScenarioInfo> {
        vec![ScenarioInfo {
            name: "oom-deadlock",
            description: "the seed's fill_balloon (fix oom-deadlock off) allocates under balloon_lock and direct reclaim waits for a filesystem lock; a task holding that lock allocates with GFP_NOFS and loops on oom_lock (4.4 calls no OOM killer without __GFP_FS); another task's allocation reaches out_of_memory() and the notifier wants balloon_lock (lockdep: circular locking)",
        }]
    }

    fn run_scenario(name: &str) -> Option<Sim> {
        match name {
            "oom-deadlock" => {
                // Only this fix off, so the trace shows one idea (the 4.4 preset also BUG()s in
                // the OOM notifier's leak of an almost empty balloon).
                let mut fixes = Fixes::all();
                fixes.set(crate::fixes::OOM_DEADLOCK, false);
                Some(oom_deadlock_scenario(fixes))
            }
            _ => None,
        }
    }
}
