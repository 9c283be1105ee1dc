//! `ac_ppid` of non-leader threads, per version of bacct_add_tsk() (kernel/tsacct.c), which
//! fill_stats() calls for the version-8 records (3.4 and 3.8; the 2.6.19 model's version-1
//! record carries the delay counters only): before "bacct_add_tsk: fix unsafe and wrong
//! parent/group_leader dereference" (the zoo's `bacct-parent-rcu` off) `tsk->parent->pid`,
//! then to 3.7 `pid_alive(tsk) ? rcu_dereference(tsk->real_parent)->tgid : 0`, and in 3.8
//! `task_tgid_nr_ns(rcu_dereference(tsk->real_parent), ns)`. Which task `real_parent` is comes
//! from copy_process(): a CLONE_THREAD (or CLONE_PARENT) child gets `current->real_parent`, any
//! other child `current` itself, even when `current` is not its group's leader.

use sim_core::{Sim, SimConfig};
use taskstats_sim::{task_cx, Fixes, ForkKind, Params, Taskstats, TaskstatsConfig};

/// The versions whose records carry `ac_ppid`: 3.4 and 3.8 as shipped, and 3.8 with the
/// bacct_add_tsk() fix reverted (the zoo row's kernel: the `tsk->parent->pid` read).
fn versions() -> Vec<(&'static str, Fixes)> {
    let reverted = TaskstatsConfig::contract("linux-3.8").fix_off("bacct-parent-rcu").fixes;
    let mut versions: Vec<(&'static str, Fixes)> = ["linux-3.4", "linux-3.8"]
        .into_iter()
        .map(|preset| (preset, Fixes::preset(preset).expect("known preset")))
        .collect();
    versions.push(("linux-3.8 without bacct-parent-rcu", reverted));
    versions
}

/// `pid`'s `ac_ppid` as a PID query's fill_stats() fills it.
fn ac_ppid(sim: &Sim, model: &Taskstats, pid: u32) -> u32 {
    model.fill_stats_for(&sim.observer_cx("test", 0), pid).expect("a live task").ac_ppid
}

/// 1. Init forks G; G forks P (a process: P leads its group, its parent is G).
/// 2. P forks thread T1; T1, not the leader, forks thread T2.
/// 3. A PID query fills T1 and T2: both name G, their group's parent (copy_process() copies
///    `current->real_parent` into a CLONE_THREAD child), in every version: `->tgid` of G, its
///    task_tgid_nr_ns(), and 2.6.18's `->pid` of G are all G's number.
///
/// A model that made a thread's parent the task that created it would answer P for T1 (and P
/// or T1 for T2); one that read the group leader's own parent for T2 only would still pass T1,
/// hence both threads.
#[test]
fn a_thread_made_by_a_non_leader_thread_names_its_groups_parent() {
    for (version, fixes) in versions() {
        let sim = Sim::new(SimConfig::new(11).cpus(2));
        let model = Taskstats::new(&sim, fixes, Params::default());
        let fork = |by: u32, kind| model.fork(&task_cx(&sim, &model, by, "fork"), kind).expect("fork");
        let g = fork(1, ForkKind::Process);
        let p = fork(g, ForkKind::Process);
        let t1 = fork(p, ForkKind::Thread);
        let t2 = fork(t1, ForkKind::Thread);
        assert!(g != p && p != t1 && t1 != t2, "{version}: four tasks, four pids");
        assert_eq!(ac_ppid(&sim, &model, p), g, "{version}: the leader P names G");
        assert_eq!(ac_ppid(&sim, &model, t1), g, "{version}: thread T1 (made by P) names G, not P");
        assert_eq!(ac_ppid(&sim, &model, t2), g, "{version}: thread T2 (made by T1) names G, not P or T1");
    }
}

/// 1. Init forks P; P forks thread T; T (not the leader) forks process C: C's `real_parent`
///    is T.
/// 2. A PID query fills C: with the bacct_add_tsk() fix the record names T's thread group, P
///    (`->tgid` of T, or its task_tgid_nr_ns(): the number of T's leader), never T's own pid.
#[test]
fn a_process_made_by_a_non_leader_thread_names_that_threads_group() {
    for (version, fixes) in versions().into_iter().filter(|(version, _)| !version.contains("without")) {
        let sim = Sim::new(SimConfig::new(12).cpus(2));
        let model = Taskstats::new(&sim, fixes, Params::default());
        let fork = |by: u32, kind| model.fork(&task_cx(&sim, &model, by, "fork"), kind).expect("fork");
        let p = fork(1, ForkKind::Process);
        let t = fork(p, ForkKind::Thread);
        let c = fork(t, ForkKind::Process);
        assert_ne!(t, p, "{version}: T is not the leader");
        assert_eq!(ac_ppid(&sim, &model, c), p, "{version}: C (made by thread T) names T's group P, not T");
    }
}

/// The unfixed read of the same family: `tsk->parent->pid` of C is T's own pid, not P's. The
/// model hangs a child off its creator's group leader (`real_parent` is the creator's tgid,
/// see forget_original_parent() in `taskstats/process.rs`), which the fixed reads (`->tgid`,
/// task_tgid_nr_ns()) cannot tell apart but this one can: it answers P here. Left for the
/// model's owner.
#[test]
#[ignore = "model gap: a child's real_parent is its creator's leader, not the creating thread (copy_process)"]
fn without_the_bacct_fix_a_process_made_by_a_thread_names_the_threads_own_pid() {
    let (version, fixes) = versions().pop().expect("the reverted version");
    let sim = Sim::new(SimConfig::new(12).cpus(2));
    let model = Taskstats::new(&sim, fixes, Params::default());
    let fork = |by: u32, kind| model.fork(&task_cx(&sim, &model, by, "fork"), kind).expect("fork");
    let p = fork(1, ForkKind::Process);
    let t = fork(p, ForkKind::Thread);
    let c = fork(t, ForkKind::Process);
    assert_eq!(ac_ppid(&sim, &model, c), t, "{version}: C names T's own pid ->pid, not its group P");
}
