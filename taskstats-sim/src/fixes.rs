//! The behavioural differences between the three taskstats.c listings, each a named switch, and
//! the presets (sets of switches) that stand for each listing.

use serde::{Deserialize, Serialize};
use sim_core::check::{FixInfo, PresetInfo};

/// Every switch. `true` is the later kernel's behaviour.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fixes {
    /// add_del_listener() skips a CPU where the port already has a valid listener.
    pub duplicate_listener_check: bool,
    /// TASKSTATS_CMD_GET carries GENL_ADMIN_PERM: CAP_NET_ADMIN or -EPERM.
    pub admin_perm: bool,
    /// Listeners only from the initial user and pid namespaces; ids translated into the
    /// requester's namespaces (bacct_add_tsk(user_ns, pid_ns, ...)).
    pub namespace_checks: bool,
    /// taskstats_exit(): the exiting thread is added to its group's stats whether or not anyone
    /// listens; group stats allocated lazily at exit (taskstats_tgid_alloc with its unlocked fast
    /// path). Off: 2.6.19's taskstats_exit_alloc()/taskstats_exit_send() split.
    pub exit_single_pass: bool,
    /// Group stats under sighand->siglock (off: signal->stats_lock).
    pub siglock_group_stats: bool,
    /// The CGROUPSTATS_CMD_GET operation exists.
    pub cgroupstats: bool,
    /// struct taskstats version 8 with basic and extended accounting (off: version 1, delays only).
    pub taskstats_v8: bool,
    /// Lookups by pid go through the caller's pid namespace (find_task_by_vpid); CLONE_NEWPID and
    /// CLONE_NEWUSER exist. Off: one global pid space, as in 2.6.19.
    pub pid_namespaces: bool,
    /// cpulist_parse() is 3.0's `__bitmap_parselist()` (`""` selects CPU 0, whitespace allowed
    /// around the list). Off: 2.6.18's `simple_strtoul()` parser, stricter.
    pub cpulist_parse_3: bool,
}

/// Switch names, as `--fix-off` takes them, in field order.
pub const FIX_NAMES: [&str; 9] = [
    "duplicate-listener-check",
    "admin-perm",
    "namespace-checks",
    "exit-single-pass",
    "siglock-group-stats",
    "cgroupstats",
    "taskstats-v8",
    "pid-namespaces",
    "cpulist-parse-3",
];

impl Fixes {
    /// Every switch on (the 3.8 listing).
    pub fn all() -> Fixes {
        Fixes {
            duplicate_listener_check: true,
            admin_perm: true,
            namespace_checks: true,
            exit_single_pass: true,
            siglock_group_stats: true,
            cgroupstats: true,
            taskstats_v8: true,
            pid_namespaces: true,
            cpulist_parse_3: true,
        }
    }

    /// The switch called `name`.
    pub fn flag_mut(&mut self, name: &str) -> Option<&mut bool> {
        Some(match name {
            "duplicate-listener-check" => &mut self.duplicate_listener_check,
            "admin-perm" => &mut self.admin_perm,
            "namespace-checks" => &mut self.namespace_checks,
            "exit-single-pass" => &mut self.exit_single_pass,
            "siglock-group-stats" => &mut self.siglock_group_stats,
            "cgroupstats" => &mut self.cgroupstats,
            "taskstats-v8" => &mut self.taskstats_v8,
            "pid-namespaces" => &mut self.pid_namespaces,
            "cpulist-parse-3" => &mut self.cpulist_parse_3,
            _ => return None,
        })
    }

    /// The names of the switches that are on.
    pub fn names_on(&self) -> Vec<&'static str> {
        let mut copy = *self;
        FIX_NAMES.iter().copied().filter(|name| *copy.flag_mut(name).expect("known name")).collect()
    }

    /// The fixes of preset `name`.
    pub fn preset(name: &str) -> Option<Fixes> {
        let all = Fixes::all();
        match name {
            "linux-2.6.19" => Some(Fixes {
                duplicate_listener_check: false,
                admin_perm: false,
                namespace_checks: false,
                exit_single_pass: false,
                siglock_group_stats: false,
                cgroupstats: false,
                taskstats_v8: false,
                pid_namespaces: false,
                cpulist_parse_3: false,
            }),
            "linux-3.4" => Some(Fixes { namespace_checks: false, ..all }),
            "linux-3.8" => Some(all),
            _ => None,
        }
    }
}

/// Preset names, oldest first; the last is the default.
pub const PRESETS: [&str; 3] = ["linux-2.6.19", "linux-3.4", "linux-3.8"];

/// What `ksim` lists about each fix.
pub fn fix_infos() -> Vec<FixInfo> {
    vec![
        FixInfo {
            name: "duplicate-listener-check",
            title: "taskstats: don't allow duplicate entries in listener mode",
            cve: Some("CVE-2011-2484"),
            symptom:
                "one port registers the same CPU again and again: the listener list grows without bound \
                      (kernel memory exhaustion) and every exit is sent to the port once per entry",
        },
        FixInfo {
            name: "admin-perm",
            title: "taskstats: restrict access to user",
            cve: Some("CVE-2011-2494"),
            symptom: "an unprivileged user reads another user's per-task I/O and delay accounting \
                      (the side channel that measured ssh password lengths)",
        },
        FixInfo {
            name: "namespace-checks",
            title: "userns: Convert taskstats to handle the user and pid namespaces.",
            cve: None,
            symptom: "a listener inside a pid or user namespace receives global pids and uids of tasks \
                      outside its namespace",
        },
        FixInfo {
            name: "exit-single-pass",
            title: "[PATCH] taskstats: cleanup do_exit() path (title as recalled, not verified)",
            cve: None,
            symptom: "a thread that exits while nobody listens on its CPU (or whose exit buffer cannot be \
                      allocated) is never added to its thread group's stats: TGID figures under-count",
        },
        FixInfo {
            name: "siglock-group-stats",
            title: "[PATCH] taskstats: kill ->taskstats_lock in favor of ->siglock",
            cve: None,
            symptom: "none visible: group stats take a lock of their own (signal->stats_lock)",
        },
        FixInfo {
            name: "cgroupstats",
            title: "Add cgroupstats (2.6.24; not a fix: the operation is absent before)",
            cve: None,
            symptom: "CGROUPSTATS_CMD_GET is unknown to the family: -EOPNOTSUPP",
        },
        FixInfo {
            name: "taskstats-v8",
            title: "struct taskstats versions 2..8 (basic, extended, context-switch, scaled, freepages)",
            cve: None,
            symptom: "records carry version 1: the delay counters only",
        },
        FixInfo {
            name: "pid-namespaces",
            title: "pid namespaces (2.6.24): find_task_by_vpid() in taskstats",
            cve: None,
            symptom: "one global pid space: CLONE_NEWPID/CLONE_NEWUSER do not exist",
        },
        FixInfo {
            name: "cpulist-parse-3",
            title:
                "bitmap, irq: add smp_affinity_list interface to /proc/irq (3.0; rewrote __bitmap_parselist; \
                    title as recalled)",
            cve: None,
            symptom: "2.6.18's parser rejects an empty cpumask string and whitespace with EINVAL where 3.x \
                      selects CPU 0 or skips it",
        },
    ]
}

/// What `ksim` lists about each preset.
pub fn preset_infos() -> Vec<PresetInfo> {
    let describe = |name: &'static str, description: &'static str| PresetInfo {
        name,
        description,
        fixes: Fixes::preset(name).expect("known preset").names_on(),
    };
    vec![
        describe(
            "linux-2.6.19",
            "seed 002 (2.6.18-2.6.19-rc3): taskstats_exit_alloc/_send, signal->stats_lock, version 1 records, \
             no duplicate check, no admin permission",
        ),
        describe(
            "linux-3.4",
            "seed 000 (about 3.1-3.6): taskstats_exit, siglock, duplicate check, GENL_ADMIN_PERM, cgroupstats",
        ),
        describe("linux-3.8", "seed 003 (3.8 and later): as 3.4 plus user/pid namespace checks and ids"),
    ]
}
