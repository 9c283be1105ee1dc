//! The catalogue: the fix table, the zoo of historical bugs, and the teaching scenarios.

use sim_core::check::{Catalog, ScenarioInfo, ZooEntry};
use sim_core::fixes::{FixTable, FixTableOf};
use sim_core::trace::TraceMode;
use sim_core::{Sim, ViolationKind};

use super::{TaskstatsConfig, TaskstatsSubject};
use crate::fixes::{Fixes, TaskstatsFixes};

/// The kernel a campaign without `--kernel` runs: seed 003 plus "taskstats: fix data-race".
pub(crate) const DEFAULT_KERNEL: &str = "linux-3.8+tgid-alloc-data-race";

impl Catalog for TaskstatsSubject {
    fn fix_table() -> &'static FixTable {
        <TaskstatsFixes as FixTableOf>::TABLE
    }

    /// `--kernel` names a preset or version, optionally followed by `+fix` terms that switch
    /// later fixes on ("linux-3.8+tgid-alloc-data-race": the seed with the 2019 data-race fix,
    /// which the property tests and the zoo's other rows run so that race does not hide the
    /// bug they look for). Without `--kernel`, that is the kernel: a default campaign looks for
    /// everything but the seeds' known race, which `--kernel linux-3.8` finds.
    fn config(kernel: Option<&str>, fixes_off: &[String]) -> Result<TaskstatsConfig, String> {
        let kernel = kernel.or(Some(DEFAULT_KERNEL));
        let mut terms = kernel.map(|kernel| kernel.split('+'));
        let base = terms.as_mut().and_then(Iterator::next);
        let mut fixes = Fixes::parse(base, fixes_off)?;
        for name in terms.into_iter().flatten() {
            let Some((index, _)) = TaskstatsFixes::TABLE.find(name) else {
                return Err(format!("taskstats: no fix named '{name}' after '+' in --kernel"));
            };
            if !fixes_off.iter().any(|off| off == name) {
                fixes.set(crate::fixes::FIX_IDS[index], true);
            }
        }
        let name = base.unwrap_or("linux-3.8");
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
                kernel: "linux-3.4+tgid-alloc-data-race",
                fix: "duplicate-listener-check",
                checker: "op-sim",
                expected: vec![ViolationKind::finding("duplicate-listener")],
                ops_max: 60,
                cases_max: 400,
            },
            ZooEntry {
                name: "CVE-2011-2494 unprivileged taskstats",
                kernel: "linux-3.4+tgid-alloc-data-race",
                fix: "admin-perm",
                checker: "op-sim",
                expected: vec![ViolationKind::finding("unprivileged-access")],
                ops_max: 60,
                cases_max: 400,
            },
            ZooEntry {
                name: "global ids leak into pid/user namespaces",
                kernel: "linux-3.8+tgid-alloc-data-race",
                fix: "namespace-checks",
                checker: "op-sim",
                expected: vec![ViolationKind::finding("namespace-leak")],
                ops_max: 60,
                cases_max: 400,
            },
            // 2.6.19-rc5 with this row's own change switched off (it landed in rc5; rc4 also still
            // has the delayacct lock order bug, fixed in rc5): the kernels around seed 002 (rc3).
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
                kernel: "4.6+tgid-alloc-data-race",
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
                kernel: "4.15+tgid-alloc-data-race",
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
                kernel: "linux-3.8+tgid-alloc-data-race",
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
                kernel: "linux-3.4+tgid-alloc-data-race",
                fix: "xacct-get-task-mm",
                checker: "op-sim",
                expected: vec![ViolationKind::detector("kref", "use-after-release")],
                ops_max: 60,
                cases_max: 400,
            },
            // The seed 000/003 kernels as they are: one exiting thread's unlocked fast-path read
            // of sig->stats and another's store under siglock, no lock in common. Found from one
            // op-level run by the lockset detector (a TGID query or a failed allocation makes a
            // second task touch the pointer before it is stored).
            ZooEntry {
                name: "taskstats: fix data-race (sig->stats read without siglock or acquire)",
                kernel: "linux-3.8+tgid-alloc-data-race",
                fix: "tgid-alloc-data-race",
                checker: "lockset (op-sim)",
                expected: vec![ViolationKind::lockdep("lockset-race")],
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
