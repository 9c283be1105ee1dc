//! shuttle: four or more threads exiting, registering, deregistering and closing ports across
//! two CPUs on one model, under seeded random schedules. Each run prints its seed; a failure
//! prints shuttle's schedule, which `shuttle::replay` runs again.

use shuttle::scheduler::RandomScheduler;
use shuttle::{Config, Runner};
use sim_core::sync::{thread, Arc};
use sim_core::{Sim, SimConfig};
use taskstats_sim::wire::*;
use taskstats_sim::{netlink_send, task_cx, Fixes, ForkKind, Params, Taskstats};

/// linux-3.8 plus "taskstats: fix data-race" (5.5): seed 003 as it is has an unlocked
/// `sig->stats` read that lockset reports whenever two threads of a group exit together (its own
/// zoo row); these tests look for other things.
fn linux_3_8_with_the_data_race_fix() -> Fixes {
    let mut fixes = Fixes::preset("linux-3.8").unwrap();
    fixes.set(taskstats_sim::fixes::TGID_ALLOC_DATA_RACE, true);
    fixes
}

fn register(model: &Taskstats, sim: &Sim, port: u32, attr: u16, mask: &str) {
    let bytes = request(
        TASKSTATS_FAMILY_ID,
        NLM_F_REQUEST | NLM_F_ACK,
        1,
        port,
        TASKSTATS_CMD_GET,
        &[(attr, cpumask_payload(mask))],
    );
    let _ = netlink_send(sim, model, port, &bytes);
}

fn body() {
    let sim = Sim::new(SimConfig::new(9).cpus(2));
    let model = Arc::new(Taskstats::new(&sim, linux_3_8_with_the_data_race_fix(), Params::default()));
    let leader = model.fork(&task_cx(&sim, &model, 1, "fork"), ForkKind::Process).unwrap();
    let threads: Vec<u32> = (0..3)
        .map(|_| model.fork(&task_cx(&sim, &model, leader, "fork"), ForkKind::Thread).unwrap())
        .collect();
    for (i, &t) in threads.iter().enumerate() {
        model.set_task(&sim.cx("sched", 0), t, None, None, Some(i as u32 % 2));
        model.run(&task_cx(&sim, &model, t, "run"));
    }
    let expect: u64 = threads
        .iter()
        .map(|&t| model.fill_stats_for(&sim.observer_cx("fill_stats_for", 0), t).unwrap().cpu_count)
        .sum();
    let stay = model.open_port(&task_cx(&sim, &model, 1, "socket")).unwrap();
    let gone = model.open_port(&task_cx(&sim, &model, 1, "socket")).unwrap();
    register(&model, &sim, gone, TASKSTATS_CMD_ATTR_REGISTER_CPUMASK, "0-1");
    let mut handles = Vec::new();
    for &t in &threads {
        let (m, s) = (model.clone(), sim.clone());
        handles.push(thread::spawn(move || {
            m.exit(&task_cx(&s, &m, t, "do_exit"));
        }));
    }
    {
        let (m, s) = (model.clone(), sim.clone());
        handles
            .push(thread::spawn(move || register(&m, &s, stay, TASKSTATS_CMD_ATTR_REGISTER_CPUMASK, "0-1")));
    }
    {
        let (m, s) = (model.clone(), sim.clone());
        handles.push(thread::spawn(move || m.close_port(&s.cx("close", 0), gone)));
    }
    for h in handles {
        h.join().unwrap();
    }
    // Two exits on one CPU may deliver out of sequence order: taskstats_exit() takes its sequence
    // number in prepare_reply() and can be preempted (down_read, GFP_KERNEL clones) before it
    // sends, as in the kernel. The op-level checker, whose exits do not overlap, keeps that check.
    let violations: Vec<_> = sim.violations().into_iter().filter(|v| v.kind != "seq-order").collect();
    assert!(violations.is_empty(), "violations: {violations:?}");
    model.check_invariants(&sim).unwrap();
    let group = model
        .group_stats(&sim.observer_cx("group_stats", 0), leader)
        .expect("a group of four allocates its stats");
    assert_eq!(group.cpu_count, expect, "group stats hold every exited thread exactly once");
}

#[test]
fn exits_registrations_and_closes_across_cpus_keep_the_invariants() {
    for seed in [1u64, 2, 3] {
        println!("taskstats shuttle: RandomScheduler seed {seed}, 150 iterations");
        let scheduler = RandomScheduler::new_from_seed(seed, 150);
        Runner::new(scheduler, Config::new()).run(body);
    }
}

/// A finding, not a bug in the model: two tasks exiting on one CPU can deliver their records out
/// of sequence order, because taskstats_exit() takes the CPU's sequence number in
/// prepare_reply() and may sleep (down_read, GFP_KERNEL clones) before it sends.
///
/// 1. Task X exits on cpu 0: prepare_reply() takes seq 0.
/// 2. X sleeps in down_read(); task Y exits on cpu 0, takes seq 1 and delivers it.
/// 3. X wakes and delivers seq 0: the listener sees 1 then 0.
#[test]
fn same_cpu_exits_can_deliver_out_of_sequence_order_when_preempted() {
    let body = || {
        let sim = Sim::new(SimConfig::new(4).cpus(1));
        let params = Params { cpus: 1, ..Params::default() };
        let model = Arc::new(Taskstats::new(&sim, linux_3_8_with_the_data_race_fix(), params));
        let port = model.open_port(&task_cx(&sim, &model, 1, "socket")).unwrap();
        register(&model, &sim, port, TASKSTATS_CMD_ATTR_REGISTER_CPUMASK, "0");
        let tasks: Vec<u32> = (0..2)
            .map(|_| model.fork(&task_cx(&sim, &model, 1, "fork"), ForkKind::Process).unwrap())
            .collect();
        let handles: Vec<_> = tasks
            .into_iter()
            .map(|t| {
                let (m, s) = (model.clone(), sim.clone());
                thread::spawn(move || {
                    m.exit(&task_cx(&s, &m, t, "do_exit"));
                })
            })
            .collect();
        for h in handles {
            h.join().unwrap();
        }
        let kinds: Vec<String> = sim.violations().into_iter().map(|v| v.kind.to_string()).collect();
        assert!(!kinds.iter().any(|k| k == "seq-order"), "seq-order: records arrived out of sequence");
    };
    let mut found = false;
    for seed in 1u64..=20 {
        println!("taskstats shuttle: RandomScheduler seed {seed}, 50 iterations");
        let run = std::panic::catch_unwind(|| {
            Runner::new(RandomScheduler::new_from_seed(seed, 50), Config::new()).run(body)
        });
        if run.is_err() {
            found = true;
            break;
        }
    }
    assert!(found, "no schedule delivered out of order in 20 seeds x 50 iterations");
}

/// A query's RCU lookup racing the exit of the task it looks up (3.8: find_task_by_vpid() under
/// rcu_read_lock(), release_task() unhashing the task and putting the pid hash's reference after
/// a grace period).
///
/// 1. init's PID query for thread T dereferences the pid hash and finds T.
/// 2. T exits: __exit_signal() detaches its sighand, the unhash republishes the hash, and the
///    hash's reference waits for a grace period.
/// 3. The query's get_task_struct() still succeeds (the grace period cannot end while it reads),
///    and its TGID query sibling's lock_task_sighand() fails cleanly (ESRCH).
///
/// Every schedule must be free of use-after-free, underflow and leak reports once the grace
/// period ends; some schedule must reach step 3 with T already released.
#[test]
fn a_pid_lookup_under_rcu_racing_the_exit_keeps_the_task_alive_until_its_put() {
    static RACED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
    let body = || {
        let sim = Sim::new(SimConfig::new(5).cpus(2));
        let model = Arc::new(Taskstats::new(&sim, linux_3_8_with_the_data_race_fix(), Params::default()));
        let leader = model.fork(&task_cx(&sim, &model, 1, "fork"), ForkKind::Process).unwrap();
        let thread_pid = model.fork(&task_cx(&sim, &model, leader, "fork"), ForkKind::Thread).unwrap();
        let port = model.open_port(&task_cx(&sim, &model, 1, "socket")).unwrap();
        let query = {
            let (m, s) = (model.clone(), sim.clone());
            thread::spawn(move || {
                for attr in [TASKSTATS_CMD_ATTR_PID, TASKSTATS_CMD_ATTR_TGID] {
                    let _ = netlink_send(&s, &m, port, &super::id_query(port, attr, thread_pid));
                }
            })
        };
        model.exit(&task_cx(&sim, &model, thread_pid, "do_exit"));
        query.join().unwrap();
        sim.rcu_advance();
        let violations = sim.violations();
        assert!(violations.is_empty(), "violations: {violations:?}");
        assert!(sim.marks().contains("task-struct-freed"), "the exited thread's task_struct is freed");
        if sim.marks().contains("rcu-lookup-raced-exit") {
            RACED.store(true, std::sync::atomic::Ordering::Relaxed);
        }
    };
    println!("taskstats shuttle: RandomScheduler seed 7, 200 iterations");
    Runner::new(RandomScheduler::new_from_seed(7, 200), Config::new()).run(body);
    assert!(RACED.load(std::sync::atomic::Ordering::Relaxed), "no schedule had the lookup race the release");
}

/// The thread list's convention under real interleavings: P's threads exit (taskstats_exit()'s
/// thread_group_empty() a load with no lock; exit_notify() changes the list under tasklist_lock
/// and siglock), P forks another thread (copy_process() adds it under both) and init queries
/// P's group (the walk under tasklist_lock alone in 2.6.19-rc3, under siglock alone in 3.8), all
/// at once. Lockdep panics on a report in these runs (lockset's too), so every schedule is free
/// of lockset and lock-not-held reports on both sides of the list and of any other violation;
/// the racy unlocked read is not reported, as it is benign. Some schedule must run the query
/// (and, in 3.8, an exit's taskstats_tgid_alloc() must allocate the group's stats past
/// thread_group_empty()), so the runs reach the list's readers and writers.
#[test]
fn the_thread_list_read_under_either_lock_and_empty_tested_with_none_is_never_reported() {
    static REACHED: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let runs: [(&str, &[&str]); 2] =
        [("linux-2.6.19", &["tgid-query"]), ("linux-3.8", &["tgid-query", "group-stats-allocated"])];
    for (kernel, reach) in runs {
        REACHED.store(0, std::sync::atomic::Ordering::Relaxed);
        let body = move || {
            let sim = Sim::new(SimConfig::new(6).cpus(2));
            let mut fixes = Fixes::preset(kernel).unwrap();
            fixes.set(taskstats_sim::fixes::TGID_ALLOC_DATA_RACE, true);
            let model = Arc::new(Taskstats::new(&sim, fixes, Params::default()));
            let p = model.fork(&task_cx(&sim, &model, 1, "fork"), ForkKind::Process).unwrap();
            let threads: Vec<u32> = (0..2)
                .map(|_| model.fork(&task_cx(&sim, &model, p, "fork"), ForkKind::Thread).unwrap())
                .collect();
            let port = model.open_port(&task_cx(&sim, &model, 1, "socket")).unwrap();
            let mut handles = Vec::new();
            for &t in &threads {
                let (m, s) = (model.clone(), sim.clone());
                handles.push(thread::spawn(move || drop(m.exit(&task_cx(&s, &m, t, "do_exit")))));
            }
            let (m, s) = (model.clone(), sim.clone());
            handles.push(thread::spawn(move || {
                let _ = m.fork(&task_cx(&s, &m, p, "fork"), ForkKind::Thread);
            }));
            let (m, s) = (model.clone(), sim.clone());
            handles.push(thread::spawn(move || {
                drop(netlink_send(&s, &m, port, &super::id_query(port, TASKSTATS_CMD_ATTR_TGID, p)));
            }));
            for h in handles {
                h.join().unwrap();
            }
            let violations = sim.violations();
            assert!(violations.is_empty(), "{kernel}: violations: {violations:?}");
            assert!(sim.lockdep().reports().is_empty(), "{kernel}: {:#?}", sim.lockdep().reports());
            let marks = sim.marks();
            if reach.iter().all(|mark| marks.contains(mark)) {
                REACHED.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
        };
        println!("taskstats shuttle: {kernel}, RandomScheduler seed 11, 100 iterations");
        Runner::new(RandomScheduler::new_from_seed(11, 100), Config::new()).run(body);
        let reached = REACHED.load(std::sync::atomic::Ordering::Relaxed);
        assert!(reached > 0, "{kernel}: no schedule reached all of {reach:?}");
    }
}

/// A 3.x group of a leader and two threads: one task's exit runs on its own thread while a TGID
/// query of the group walks it, under shuttle's random scheduler (`seed`, `iterations`). No
/// schedule may report anything (lockdep panics on a report in these runs); returns how many
/// schedules reached `mark`. `exiting` picks the task that exits from the leader and threads.
fn exit_racing_a_tgid_query(
    seed: u64,
    iterations: usize,
    exiting: fn(u32, &[u32]) -> u32,
    mark: &'static str,
) -> u32 {
    // The checker's count, apart from the model: a std atomic per call, as two tests run at once.
    let reached = std::sync::Arc::new(std::sync::atomic::AtomicU32::new(0));
    let counter = reached.clone();
    let body = move || {
        let sim = Sim::new(SimConfig::new(8).cpus(2));
        let model = Arc::new(Taskstats::new(&sim, linux_3_8_with_the_data_race_fix(), Params::default()));
        let leader = model.fork(&task_cx(&sim, &model, 1, "fork"), ForkKind::Process).unwrap();
        let threads: Vec<u32> = (0..2)
            .map(|_| model.fork(&task_cx(&sim, &model, leader, "fork"), ForkKind::Thread).unwrap())
            .collect();
        for &pid in std::iter::once(&leader).chain(&threads) {
            model.run(&task_cx(&sim, &model, pid, "run"));
        }
        let port = model.open_port(&task_cx(&sim, &model, 1, "socket")).unwrap();
        let exiter = exiting(leader, &threads);
        let exit = {
            let (m, s) = (model.clone(), sim.clone());
            thread::spawn(move || drop(m.exit(&task_cx(&s, &m, exiter, "do_exit"))))
        };
        let query = super::id_query(port, TASKSTATS_CMD_ATTR_TGID, leader);
        assert_eq!(netlink_send(&sim, &model, port, &query).len(), 1, "the TGID reply");
        exit.join().unwrap();
        let violations = sim.violations();
        assert!(violations.is_empty(), "violations: {violations:?}");
        assert!(sim.lockdep().reports().is_empty(), "{:#?}", sim.lockdep().reports());
        if sim.marks().contains(mark) {
            counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
    };
    println!("taskstats shuttle: RandomScheduler seed {seed}, {iterations} iterations");
    Runner::new(RandomScheduler::new_from_seed(seed, iterations), Config::new()).run(body);
    reached.load(std::sync::atomic::Ordering::Relaxed)
}

/// 3.x's exit_notify() writes a leader's `exit_state` under tasklist_lock alone while
/// fill_stats_for_tgid() walks the group under siglock alone, so the leader's exit can land in
/// the middle of a TGID query's walk (between its copy of the thread list and its
/// `delays->lock` sections: `tgid-walk-raced-exit-notify`). The kernel's walk then counts the
/// leader live although it is in `signal->stats` already (a benign race: an answer the kernel
/// gives), and the checker, which takes its expectation with the walk's copy, expects that: no
/// schedule reports anything, lockset included (lockdep panics on a report in these runs), and
/// some schedule reaches the race.
#[test]
fn a_tgid_query_racing_its_leaders_exit_notify_is_judged_by_what_its_walk_saw() {
    let raced = exit_racing_a_tgid_query(12, 200, |leader, _| leader, "tgid-walk-raced-exit-notify");
    assert!(raced > 0, "no schedule had the leader's exit_notify() in the walk");
}

/// 3.x's fill_stats_for_tgid() reads each thread's `exit_state` as its walk reaches it (kernel/
/// taskstats.c, `if (tsk->exit_state) continue;` inside do/while_each_thread), under siglock
/// alone, and a thread's exit_notify() writes EXIT_DEAD under tasklist_lock alone, in a section
/// before its release_task()'s (which takes siglock, so it waits for the walk):
/// 1. a TGID query of group P copies `signal->stats` and starts the walk at the leader, taking
///    its `delays->lock`;
/// 2. thread T (after the leader in the list) runs exit_notify(): EXIT_DEAD, still listed;
/// 3. the walk reaches T and passes over it (`tgid-walk-skipped-a-thread-exiting-mid-walk`).
///
/// T's delays are in `signal->stats` from its fill_tgid_exit(), before or after the copy; the
/// checker judges the reply by what the walk counted, so no schedule reports anything, and some
/// schedule reaches the skip (a walk that read every state at its start never skips a thread
/// that was alive then).
#[test]
fn a_threads_exit_notify_landing_mid_walk_is_skipped_when_the_walk_reaches_it() {
    let mark = "tgid-walk-skipped-a-thread-exiting-mid-walk";
    let skipped = exit_racing_a_tgid_query(12, 300, |_, threads| threads[0], mark);
    assert!(
        skipped > 0,
        "no schedule had the thread's exit_notify() land in the walk before the walk reached it"
    );
}
