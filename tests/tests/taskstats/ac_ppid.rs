//! `ac_ppid` of non-leader threads, per version of bacct_add_tsk() (kernel/tsacct.c), which
//! fill_stats() calls for the version-8 records (3.4 and 3.8; the 2.6.19 model's version-1
//! record carries the delay counters only): before "bacct_add_tsk: fix unsafe and wrong
//! parent/group_leader dereference" (the zoo's `bacct-parent-rcu` off) `tsk->parent->pid`,
//! then to 3.7 `pid_alive(tsk) ? rcu_dereference(tsk->real_parent)->tgid : 0`, and in 3.8
//! `task_tgid_nr_ns(rcu_dereference(tsk->real_parent), ns)`. Which task `real_parent` is comes
//! from copy_process(): a CLONE_THREAD (or CLONE_PARENT) child gets `current->real_parent`, any
//! other child `current` itself, even when `current` is not its group's leader; and from
//! forget_original_parent() (3.x: find_new_reaper()), which every exiting thread runs: its
//! children go to the next eligible thread of its group, or to the child reaper when none is.
//!
//! The fixed reads name the parent's thread group, so they cannot tell the creating thread from
//! its leader: a model that hung children off the creator's leader (as this one did before
//! session 12's ts12b) answers them the same, and keeps children inside the group for as long as
//! the kernel's rule does (both move them out when no thread of the group is left). The
//! unfixed `->pid` read names the thread itself: the tests below that run the reverted version
//! are the ones that tell the two rules apart.

use sim_core::{Sim, SimConfig};
use taskstats_sim::{task_cx, Fixes, ForkKind, Params, Taskstats, TaskstatsConfig};

/// The reverted version: 3.8 without "bacct_add_tsk: fix unsafe and wrong parent/group_leader
/// dereference" (the zoo row's kernel: the `tsk->parent->pid` read).
const REVERTED: &str = "linux-3.8 without bacct-parent-rcu";

/// The versions whose records carry `ac_ppid`: 3.4 and 3.8 as shipped, and [`REVERTED`].
fn versions() -> Vec<(&'static str, Fixes)> {
    let reverted = TaskstatsConfig::contract("linux-3.8").fix_off("bacct-parent-rcu").fixes;
    let mut versions: Vec<(&'static str, Fixes)> = ["linux-3.4", "linux-3.8"]
        .into_iter()
        .map(|preset| (preset, Fixes::preset(preset).expect("known preset")))
        .collect();
    versions.push((REVERTED, reverted));
    versions
}

/// The version called `name` in [`versions`].
fn version(name: &str) -> Fixes {
    versions().into_iter().find(|(v, _)| *v == name).map(|(_, fixes)| fixes).expect("a listed version")
}

/// A fresh two-CPU world (simulation seed `seed`) running `fixes`.
fn world(seed: u64, fixes: Fixes) -> (Sim, Taskstats) {
    let sim = Sim::new(SimConfig::new(seed).cpus(2));
    let model = Taskstats::new(&sim, fixes, Params::default());
    (sim, model)
}

/// Task `by` forks a child of kind `kind` (copy_process() run by `by` as `current`).
fn fork(sim: &Sim, model: &Taskstats, by: u32, kind: ForkKind) -> u32 {
    model.fork(&task_cx(sim, model, by, "fork"), kind).unwrap_or_else(|e| panic!("pid {by} forks: {e:?}"))
}

/// Task `pid` runs do_exit().
fn exit(sim: &Sim, model: &Taskstats, pid: u32) {
    model.exit(&task_cx(sim, model, pid, "exit")).unwrap_or_else(|| panic!("pid {pid} is a live task"));
}

/// `pid`'s `ac_ppid` as a PID query's fill_stats() fills it.
fn ac_ppid(sim: &Sim, model: &Taskstats, pid: u32) -> u32 {
    model.fill_stats_for(&sim.observer_cx("test", 0), pid).expect("a live task").ac_ppid
}

/// 1. Init forks G; G forks thread GT; GT, not G's leader, forks process P (P's parent is GT).
/// 2. P forks thread T1; T1, not the leader, forks thread T2.
/// 3. A PID query fills P, T1 and T2: all three name GT's group G with the fix (`->tgid` of GT,
///    or its task_tgid_nr_ns()), GT's own pid without it (`->pid`): copy_process() copies
///    `current->real_parent` into a CLONE_THREAD child, so T1 and T2 have P's parent.
///
/// A model that made a thread's parent the task that created it would answer P for T1 (and P
/// or T1 for T2); one that read the group leader's own parent for T2 only would still pass T1,
/// hence both threads; one that hung P off GT's leader G would answer G in the reverted version.
#[test]
fn a_thread_made_by_a_non_leader_thread_names_its_groups_parent() {
    for (version, fixes) in versions() {
        let (sim, model) = world(11, fixes);
        let g = fork(&sim, &model, 1, ForkKind::Process);
        let gt = fork(&sim, &model, g, ForkKind::Thread);
        let p = fork(&sim, &model, gt, ForkKind::Process);
        let t1 = fork(&sim, &model, p, ForkKind::Thread);
        let t2 = fork(&sim, &model, t1, ForkKind::Thread);
        assert!(g != gt && p != t1 && t1 != t2, "{version}: distinct tasks, distinct pids");
        let want = if version == REVERTED { gt } else { g };
        for (name, pid) in
            [("the leader P", p), ("thread T1 (made by P)", t1), ("thread T2 (made by T1)", t2)]
        {
            assert_eq!(ac_ppid(&sim, &model, pid), want, "{version}: {name} names {want} (G {g}, GT {gt})");
        }
    }
}

/// 1. Init forks P; P forks thread T; T (not the leader) forks process C: C's `real_parent`
///    is T.
/// 2. A PID query fills C: with the bacct_add_tsk() fix the record names T's thread group, P
///    (`->tgid` of T, or its task_tgid_nr_ns(): the number of T's leader), never T's own pid.
///
/// It cannot tell T from P as C's parent (both read P's number): see the reverted-version test
/// after it for the read that can.
#[test]
fn a_process_made_by_a_non_leader_thread_names_that_threads_group() {
    for (version, fixes) in versions().into_iter().filter(|(version, _)| *version != REVERTED) {
        let (sim, model) = world(12, fixes);
        let p = fork(&sim, &model, 1, ForkKind::Process);
        let t = fork(&sim, &model, p, ForkKind::Thread);
        let c = fork(&sim, &model, t, ForkKind::Process);
        assert_ne!(t, p, "{version}: T is not the leader");
        assert_eq!(ac_ppid(&sim, &model, c), p, "{version}: C (made by thread T) names T's group P, not T");
    }
}

/// The unfixed read of the same family: `tsk->parent->pid` of C is T's own pid, not P's (a
/// model hanging C off T's leader answers P).
#[test]
fn without_the_bacct_fix_a_process_made_by_a_thread_names_the_threads_own_pid() {
    let (sim, model) = world(12, version(REVERTED));
    let p = fork(&sim, &model, 1, ForkKind::Process);
    let t = fork(&sim, &model, p, ForkKind::Thread);
    let c = fork(&sim, &model, t, ForkKind::Process);
    assert_eq!(ac_ppid(&sim, &model, c), t, "{REVERTED}: C names T's own pid ->pid, not its group P");
}

/// forget_original_parent() at each thread's exit, read through the unfixed `->pid`:
/// 1. Init forks P; P forks threads T1 and T2; T1 forks process C1 and P forks process C2.
/// 2. T1 exits (P's group lives on): C1 goes to the next thread after T1 in the group's list,
///    T2 (3.x's find_new_reaper(): not PF_EXITING), not to P and not to init.
/// 3. P exits, its group still live (T2): P stays a zombie and C2 goes to T2, P's next thread.
/// 4. T2 exits, the group's last: no thread is eligible (P a zombie, PF_EXITING), so C1 and C2
///    go to the child reaper, init (pid 1).
///
/// A model that reparented only at the group's death would answer T1 after step 2 and P after
/// step 3; one that took the group's leader as the new parent would answer P after step 2.
#[test]
fn without_the_bacct_fix_a_dying_threads_children_go_to_the_next_live_thread_then_to_init() {
    let (sim, model) = world(13, version(REVERTED));
    let p = fork(&sim, &model, 1, ForkKind::Process);
    let t1 = fork(&sim, &model, p, ForkKind::Thread);
    let t2 = fork(&sim, &model, p, ForkKind::Thread);
    let c1 = fork(&sim, &model, t1, ForkKind::Process);
    let c2 = fork(&sim, &model, p, ForkKind::Process);
    assert!(p < t1 && t1 < t2, "the thread list's order is pid order here: P {p}, T1 {t1}, T2 {t2}");
    assert_eq!(
        (ac_ppid(&sim, &model, c1), ac_ppid(&sim, &model, c2)),
        (t1, p),
        "{REVERTED}: after the forks"
    );
    exit(&sim, &model, t1);
    assert_eq!(ac_ppid(&sim, &model, c1), t2, "{REVERTED}: T1 exited, C1 goes to T2 (P {p}, T1 {t1})");
    exit(&sim, &model, p);
    assert_eq!(ac_ppid(&sim, &model, c2), t2, "{REVERTED}: P exited with T2 live, C2 goes to T2 (P {p})");
    exit(&sim, &model, t2);
    assert_eq!(
        (ac_ppid(&sim, &model, c1), ac_ppid(&sim, &model, c2)),
        (1, 1),
        "{REVERTED}: the group is dead"
    );
}
