//! The behavioural differences between the three taskstats.c listings, as one fix table: each
//! row is a named switch with its upstream identity and the kernel version it landed in, so a
//! kernel version is a preset (`--kernel 3.4`: every fix landed by 3.4).

use sim_core::fixes::{Commit, Fix, FixId, FixTable, FixTableOf, KernelVersion, NamedPreset};

/// The taskstats fix table, as a type ([`Fixes`] is a set of its rows).
#[derive(Debug)]
pub struct TaskstatsFixes;

/// Which taskstats fixes are on.
pub type Fixes = sim_core::fixes::Fixes<TaskstatsFixes>;

/// add_del_listener() skips a CPU where the port already has a valid listener.
pub const DUPLICATE_LISTENER_CHECK: FixId = FixId::new(0, "duplicate-listener-check");
/// TASKSTATS_CMD_GET carries GENL_ADMIN_PERM: CAP_NET_ADMIN or -EPERM.
pub const ADMIN_PERM: FixId = FixId::new(1, "admin-perm");
/// Listeners only from the initial user and pid namespaces; ids translated into the requester's
/// namespaces (bacct_add_tsk(user_ns, pid_ns, ...)).
pub const NAMESPACE_CHECKS: FixId = FixId::new(2, "namespace-checks");
/// taskstats_exit(): the exiting thread is added to its group's stats whether or not anyone
/// listens; group stats allocated lazily at exit (taskstats_tgid_alloc with its unlocked fast
/// path). Off: 2.6.19-rc3's taskstats_exit_alloc()/taskstats_exit_send() split.
pub const EXIT_SINGLE_PASS: FixId = FixId::new(3, "exit-single-pass");
/// Group stats under sighand->siglock (off: signal->stats_lock).
pub const SIGLOCK_GROUP_STATS: FixId = FixId::new(4, "siglock-group-stats");
/// The CGROUPSTATS_CMD_GET operation exists.
pub const CGROUPSTATS: FixId = FixId::new(5, "cgroupstats");
/// struct taskstats version 8 with basic and extended accounting (off: version 1, delays only).
pub const TASKSTATS_V8: FixId = FixId::new(6, "taskstats-v8");
/// Lookups by pid go through the caller's pid namespace (find_task_by_vpid); CLONE_NEWPID and
/// CLONE_NEWUSER exist. Off: one global pid space, as in 2.6.19.
pub const PID_NAMESPACES: FixId = FixId::new(7, "pid-namespaces");
/// cpulist_parse() is 3.0's `__bitmap_parselist()` (`""` selects CPU 0, whitespace allowed around
/// the list). Off: 2.6.18's `simple_strtoul()` parser, stricter.
pub const CPULIST_PARSE_3: FixId = FixId::new(8, "cpulist-parse-3");

/// Every [`FixId`], in table order (checked by [`FixTable::validate`]).
pub const FIX_IDS: [FixId; 9] = [
    DUPLICATE_LISTENER_CHECK,
    ADMIN_PERM,
    NAMESPACE_CHECKS,
    EXIT_SINGLE_PASS,
    SIGLOCK_GROUP_STATS,
    CGROUPSTATS,
    TASKSTATS_V8,
    PID_NAMESPACES,
    CPULIST_PARSE_3,
];

const fn v(major: u16, minor: u16, patch: u16) -> KernelVersion {
    KernelVersion::new(major, minor, patch)
}

/// The seed 002 kernel: 2.6.19-rc3.
pub const LINUX_2_6_19_RC3: KernelVersion = KernelVersion::rc(2, 6, 19, 3);

impl FixTableOf for TaskstatsFixes {
    const TABLE: &'static FixTable = &FixTable {
        subsystem: "taskstats",
        oldest: LINUX_2_6_19_RC3,
        newest: v(3, 8, 0),
        fixes: &[
            Fix {
                name: "duplicate-listener-check",
                title: "taskstats: don't allow duplicate entries in listener mode",
                commit: Commit::Unverified,
                landed_in: v(3, 0, 0),
                cve: Some("CVE-2011-2484"),
                symptom: "one port registers the same CPU again and again: the listener list grows without \
                          bound (kernel memory exhaustion) and every exit is sent to the port once per entry",
            },
            Fix {
                name: "admin-perm",
                title: "taskstats: restrict access to user",
                commit: Commit::Unverified,
                landed_in: v(3, 1, 0),
                cve: Some("CVE-2011-2494"),
                symptom: "an unprivileged user reads another user's per-task I/O and delay accounting (the \
                          side channel that measured ssh password lengths)",
            },
            Fix {
                name: "namespace-checks",
                title: "userns: Convert taskstats to handle the user and pid namespaces.",
                commit: Commit::Unverified,
                landed_in: v(3, 8, 0),
                cve: None,
                symptom: "a listener inside a pid or user namespace receives global pids and uids of tasks \
                          outside its namespace",
            },
            Fix {
                name: "exit-single-pass",
                title: "taskstats: cleanup do_exit() path",
                commit: Commit::Unverified,
                landed_in: v(2, 6, 19),
                cve: None,
                symptom:
                    "a thread that exits while nobody listens on its CPU (or whose exit buffer cannot be \
                          allocated) is never added to its thread group's stats: TGID figures under-count",
            },
            Fix {
                name: "siglock-group-stats",
                title: "taskstats: kill ->taskstats_lock in favor of ->siglock",
                commit: Commit::Unverified,
                landed_in: v(2, 6, 19),
                cve: None,
                symptom: "none visible: group stats take a lock of their own (signal->stats_lock)",
            },
            Fix {
                name: "cgroupstats",
                title: "Add cgroupstats (not a fix: the operation is absent before)",
                commit: Commit::Unverified,
                landed_in: v(2, 6, 24),
                cve: None,
                symptom: "CGROUPSTATS_CMD_GET is unknown to the family: -EOPNOTSUPP",
            },
            Fix {
                name: "taskstats-v8",
                title: "struct taskstats versions 2..8 (basic, extended, context-switch, scaled, freepages)",
                commit: Commit::Unverified,
                landed_in: v(3, 0, 0),
                cve: None,
                symptom: "records carry version 1: the delay counters only",
            },
            Fix {
                name: "pid-namespaces",
                title: "pid namespaces: find_task_by_vpid() in taskstats",
                commit: Commit::Unverified,
                landed_in: v(2, 6, 24),
                cve: None,
                symptom: "one global pid space: CLONE_NEWPID/CLONE_NEWUSER do not exist",
            },
            Fix {
                name: "cpulist-parse-3",
                title: "bitmap, irq: add smp_affinity_list interface to /proc/irq",
                commit: Commit::Unverified,
                landed_in: v(3, 0, 0),
                cve: None,
                symptom:
                    "2.6.18's parser rejects an empty cpumask string and whitespace with EINVAL where 3.x \
                          selects CPU 0 or skips it",
            },
        ],
        presets: &[
            NamedPreset {
                name: "linux-2.6.19",
                version: LINUX_2_6_19_RC3,
                description: "seed 002 (2.6.18-2.6.19-rc3): taskstats_exit_alloc/_send, signal->stats_lock, \
                              version 1 records, no duplicate check, no admin permission",
            },
            NamedPreset {
                name: "linux-3.4",
                version: v(3, 4, 0),
                description: "seed 000 (about 3.1-3.6): taskstats_exit, siglock, duplicate check, \
                              GENL_ADMIN_PERM, cgroupstats",
            },
            NamedPreset {
                name: "linux-3.8",
                version: v(3, 8, 0),
                description: "seed 003 (3.8 and later): as 3.4 plus user/pid namespace checks and ids",
            },
        ],
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fix_table_is_consistent_with_its_ids() {
        TaskstatsFixes::TABLE.validate(&FIX_IDS).unwrap();
    }
}
