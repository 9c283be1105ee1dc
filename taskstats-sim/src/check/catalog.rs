//! The catalogue: the fix table, the zoo of historical bugs, and the teaching scenarios.

use sim_core::check::{Catalog, ScenarioInfo, ZooEntry};
use sim_core::fixes::{FixTable, FixTableOf};
use sim_core::trace::TraceMode;
use sim_core::{Sim, ViolationKind};

use super::{TaskstatsConfig, TaskstatsSubject};
use crate::fixes::{Fixes, TaskstatsFixes};

impl Catalog for TaskstatsSubject {
    fn fix_table() -> &'static FixTable {
        <TaskstatsFixes as FixTableOf>::TABLE
    }

    fn config(kernel: Option<&str>, fixes_off: &[String]) -> Result<TaskstatsConfig, String> {
        let fixes = Fixes::parse(kernel, fixes_off)?;
        let name = kernel.unwrap_or("linux-3.8");
        let mut config =
            TaskstatsConfig::for_preset(name).unwrap_or_else(|| TaskstatsConfig::contract("linux-3.8"));
        config.preset = name.to_string();
        config.fixes = fixes;
        config.params.audit.extend(fixes_off.iter().cloned());
        Ok(config)
    }

    fn zoo() -> Vec<ZooEntry> {
        vec![
            ZooEntry {
                name: "CVE-2011-2484 duplicate listeners",
                kernel: "linux-3.4",
                fix: "duplicate-listener-check",
                checker: "op-sim",
                expected: vec![ViolationKind::finding("duplicate-listener")],
                ops_max: 60,
                cases_max: 400,
            },
            ZooEntry {
                name: "CVE-2011-2494 unprivileged taskstats",
                kernel: "linux-3.4",
                fix: "admin-perm",
                checker: "op-sim",
                expected: vec![ViolationKind::finding("unprivileged-access")],
                ops_max: 60,
                cases_max: 400,
            },
            ZooEntry {
                name: "global ids leak into pid/user namespaces",
                kernel: "linux-3.8",
                fix: "namespace-checks",
                checker: "op-sim",
                expected: vec![ViolationKind::finding("namespace-leak")],
                ops_max: 60,
                cases_max: 400,
            },
            // 2.6.19-rc5 without one of rc4's changes (rc4 itself still has the delayacct lock
            // order bug, fixed in rc5): the kernels around seed 002 (rc3).
            ZooEntry {
                name: "2.6.19 group stats miss threads that exit unheard",
                kernel: "2.6.19-rc5",
                fix: "exit-fill-before-send",
                checker: "op-sim",
                expected: vec![ViolationKind::finding("group-stats")],
                ops_max: 80,
                cases_max: 600,
            },
            ZooEntry {
                name: "taskstats_tgid_free: fix usage (a failed CLONE_THREAD fork frees the group's stats)",
                kernel: "2.6.19-rc5",
                fix: "tgid-free-usage",
                checker: "op-sim",
                expected: vec![ViolationKind::finding("group-stats")],
                ops_max: 80,
                cases_max: 800,
            },
            ZooEntry {
                name: "cgroupstats_cmd_get_policy too short (attribute types 2..4 read past it)",
                kernel: "4.6",
                fix: "cgroupstats-policy-len",
                checker: "op-sim",
                expected: vec![ViolationKind::finding("global-out-of-bounds")],
                ops_max: 60,
                cases_max: 400,
            },
            ZooEntry {
                name: "lockdep: siglock -> delays->lock, soft-safe -> soft-unsafe (delayacct locking bug)",
                kernel: "2.6.19-rc5",
                fix: "delayacct-lock-irqsave",
                checker: "lockdep",
                expected: vec![
                    ViolationKind::lockdep("irq-safe-to-unsafe"),
                    ViolationKind::lockdep("irq-lock-inversion"),
                ],
                ops_max: 60,
                cases_max: 400,
            },
            // 4.15 without b512719f771a but with c96f5471ce7d: found by the op-level campaign's
            // own slab faults (one on delayacct_cache) and a wakeup of that task.
            ZooEntry {
                name: "delayacct: NULL delays after a failed delayacct_tsk_init, dereferenced at wakeup",
                kernel: "4.15",
                fix: "delayacct-null-delays",
                checker: "op-sim",
                expected: vec![ViolationKind::finding("null-ptr-deref")],
                ops_max: 60,
                cases_max: 400,
            },
            // 3.8 with 2.6.19-rc4's bacct_add_tsk() change reverted: the first record filled for
            // a task follows its parent pointer outside any read-side section or lock.
            ZooEntry {
                name: "bacct_add_tsk: unsafe parent dereference (tsk->parent->pid without RCU)",
                kernel: "linux-3.8",
                fix: "bacct-parent-rcu",
                checker: "op-sim",
                expected: vec![ViolationKind::detector("rcu", "dereference-outside-read-side")],
                ops_max: 60,
                cases_max: 400,
            },
            // 3.4 with 2.6.19-rc4's xacct_add_tsk() change reverted (RHEL 5's 2.6.18 kept the old
            // code until CVE-2012-3510): a PID query, preempted between its `p->mm` test and the
            // read, while its target exits and frees the mm.
            ZooEntry {
                name: "CVE-2012-3510 xacct_add_tsk reads a freed mm (->mm use-after-free)",
                kernel: "linux-3.4",
                fix: "xacct-get-task-mm",
                checker: "op-sim",
                expected: vec![ViolationKind::detector("kref", "use-after-release")],
                ops_max: 60,
                cases_max: 400,
            },
        ]
    }

    fn scenarios() -> Vec<ScenarioInfo> {
        super::scenario::SCENARIOS
            .iter()
            .map(|(name, description)| ScenarioInfo { name, description })
            .collect()
    }

    fn run_scenario(name: &str) -> Option<Sim> {
        super::scenario::run(name, TraceMode::Full)
    }
}
