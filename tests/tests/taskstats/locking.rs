//! Which locks the model takes where, read from the trace's lock events: each test fails if a
//! lock came back where the seed's kernel takes none (or another one). The thread list's
//! convention (written under tasklist_lock and siglock, read under either), thread_group_empty()'s
//! unlocked read, and one `delays->lock` section per block I/O wait's end.

use sim_core::lockdep::ReportMode;
use sim_core::trace::{EventKind, TaskId, TraceMode};
use sim_core::{Sim, SimConfig};
use taskstats_sim::wire::*;
use taskstats_sim::{netlink_send, task_cx, Fixes, ForkKind, Params, Taskstats};

const TASKLIST_LOCK: &str = "tasklist_lock";
const SIGLOCK: &str = "&sighand->siglock";
const STATS_LOCK: &str = "&sig->stats_lock";
const DELAYS_LOCK: &str = "&tsk->delays->lock";

/// A traced world with lockdep collecting (a report fails the tests below through
/// `sim.lockdep().reports()`, with the run's text) and a model of `kernel`.
fn traced(kernel: &str) -> (Sim, Taskstats) {
    let sim = Sim::new(SimConfig::new(1).cpus(2).trace(TraceMode::Full).lockdep(ReportMode::Collect));
    let model = Taskstats::new(&sim, Fixes::preset(kernel).unwrap(), Params::default());
    (sim, model)
}

/// Task `task`'s lock acquisitions in the trace from event `from` on, in order: each one's class
/// and the classes the task held when it took it (innermost last).
fn acquisitions(sim: &Sim, from: usize, task: TaskId) -> Vec<(String, Vec<String>)> {
    let mut held: Vec<(u64, String)> = Vec::new();
    let mut taken = Vec::new();
    for event in sim.trace().events().iter().skip(from).filter(|event| event.task == task) {
        match &event.kind {
            EventKind::Acquired { class, token, .. } => {
                taken.push((class.to_string(), held.iter().map(|(_, name)| name.clone()).collect()));
                held.push((*token, class.to_string()));
            }
            EventKind::Released { token, .. } => held.retain(|(held_token, _)| held_token != token),
            _ => {}
        }
    }
    taken
}

/// The classes among `classes` that `taken` acquired, in order.
fn only<'a>(taken: &'a [(String, Vec<String>)], classes: &[&str]) -> Vec<&'a str> {
    taken.iter().map(|(class, _)| class.as_str()).filter(|class| classes.contains(class)).collect()
}

/// A TGID query for process P of three live threads, sent by init: 2.6.19-rc3's fill_tgid()
/// copies `signal->stats` under `stats_lock` alone, then walks the threads under
/// read_lock(&tasklist_lock) alone (its writers hold it for writing); 3.x's
/// fill_stats_for_tgid() walks them under lock_task_sighand() alone, inside rcu_read_lock(),
/// with no tasklist_lock anywhere in the query. Each thread's `delays->lock` is taken with
/// exactly the walk's lock held: a group lock nested in 2.6.19's walk, or tasklist_lock in
/// 3.x's, fails here.
#[test]
fn a_tgid_query_walks_the_threads_under_the_one_lock_its_seed_takes() {
    for (kernel, walk_lock) in
        [("linux-2.6.19", TASKLIST_LOCK), ("linux-3.4", SIGLOCK), ("linux-3.8", SIGLOCK)]
    {
        let (sim, model) = traced(kernel);
        let init = task_cx(&sim, &model, 1, "init");
        let port = model.open_port(&init).unwrap();
        let p = model.fork(&init, ForkKind::Process).unwrap();
        for _ in 0..2 {
            model.fork(&task_cx(&sim, &model, p, "fork"), ForkKind::Thread).unwrap();
        }
        let from = sim.trace().events().len();
        let query = super::id_query(port, TASKSTATS_CMD_ATTR_TGID, p);
        assert_eq!(netlink_send(&sim, &model, port, &query).len(), 1, "{kernel}: the TGID reply");
        let taken = acquisitions(&sim, from, 1);
        let walk: Vec<&Vec<String>> =
            taken.iter().filter(|(class, _)| class == DELAYS_LOCK).map(|(_, held)| held).collect();
        // genl_rcv()'s genl_mutex around the doit, then the walk's one lock.
        let held = vec!["genl_mutex".to_string(), walk_lock.to_string()];
        assert_eq!(walk, vec![&held; 3], "{kernel}: the locks held at each thread's delays:\n{taken:#?}");
        let group_locks = only(&taken, &[TASKLIST_LOCK, SIGLOCK, STATS_LOCK]);
        let expect: &[&str] = if walk_lock == TASKLIST_LOCK {
            // find_task_by_pid() under tasklist_lock, the copy under stats_lock, the walk.
            &[TASKLIST_LOCK, STATS_LOCK, TASKLIST_LOCK]
        } else {
            &[SIGLOCK]
        };
        assert_eq!(group_locks, expect, "{kernel}: the query's group and task-list locks:\n{taken:#?}");
        assert!(sim.lockdep().reports().is_empty(), "{kernel}: {:#?}", sim.lockdep().reports());
    }
}

/// A lone process exits (3.x, no listener): taskstats_tgid_alloc() finds no `sig->stats` and a
/// group of one by thread_group_empty(), a load with no lock, and returns. The exit takes no
/// siglock of its own group: exit_signals() sets PF_EXITING with none in a group of one, and
/// exit_notify()'s two tasklist_lock sections (forget_original_parent()'s, then the one that
/// writes the leader's `exit_state`) take only the parent's, inside the second, for
/// do_notify_parent() (the group is empty, so its parent is told); a siglock taken to read the
/// list's length would show here as one more.
#[test]
fn a_lone_threads_exit_reads_thread_group_empty_with_no_lock() {
    for kernel in ["linux-3.4", "linux-3.8"] {
        let (sim, model) = traced(kernel);
        let p = model.fork(&task_cx(&sim, &model, 1, "fork"), ForkKind::Process).unwrap();
        let from = sim.trace().events().len();
        let report = model.exit(&task_cx(&sim, &model, p, "do_exit")).expect("a live task exits");
        assert!(report.group_dead, "{kernel}: a group of one dies with its thread");
        let taken = acquisitions(&sim, from, p);
        assert_eq!(
            only(&taken, &[TASKLIST_LOCK, SIGLOCK]),
            [TASKLIST_LOCK, TASKLIST_LOCK, SIGLOCK],
            "{kernel}: the exit's siglock and tasklist_lock sections:\n{taken:#?}"
        );
        assert!(!sim.marks().contains("group-stats-allocated"), "{kernel}: a group of one has no stats");
        assert!(sim.lockdep().reports().is_empty(), "{kernel}: {:#?}", sim.lockdep().reports());
    }
}

/// Process P (leader and thread T) exits leader first, then T. PF_EXITING: 2.6.19's do_exit()
/// sets it with no lock, so its exit takes no lock before the taskstats hook; 3.x's
/// exit_signals() takes siglock for it when the group has another thread, as its first lock.
/// The leader's exit_notify() writes `exit_state` under tasklist_lock alone (after 3.x's
/// forget_original_parent() section): no siglock or `stats_lock` is taken inside tasklist_lock
/// in the leader's exit (its group is not empty: no do_notify_parent()). T's release_task()
/// does take siglock inside tasklist_lock twice: __exit_signal()'s, where the thread leaves the
/// list, then do_notify_parent()'s (P's parent's), since P is a zombie leader of a group now
/// empty (3.x; the 2.6.19 preset is 2.6.19-rc3, whose siglock the model does not have).
#[test]
fn a_leaders_exit_state_is_written_under_tasklist_lock_alone() {
    for kernel in ["linux-2.6.19", "linux-3.4", "linux-3.8"] {
        let era_3x = kernel != "linux-2.6.19";
        let (sim, model) = traced(kernel);
        let p = model.fork(&task_cx(&sim, &model, 1, "fork"), ForkKind::Process).unwrap();
        let t = model.fork(&task_cx(&sim, &model, p, "fork"), ForkKind::Thread).unwrap();
        let from = sim.trace().events().len();
        model.exit(&task_cx(&sim, &model, p, "do_exit")).expect("the leader exits");
        let taken = acquisitions(&sim, from, p);
        let nested = |(class, held): &(String, Vec<String>)| {
            (class == SIGLOCK || class == STATS_LOCK) && held.iter().any(|h| h == TASKLIST_LOCK)
        };
        assert!(!taken.iter().any(nested), "{kernel}: a group lock inside tasklist_lock:\n{taken:#?}");
        let first = taken.first().map(|(class, _)| class.as_str());
        if era_3x {
            assert_eq!(first, Some(SIGLOCK), "{kernel}: exit_signals() under siglock first:\n{taken:#?}");
        } else {
            assert!(
                first != Some(SIGLOCK) && first != Some(STATS_LOCK),
                "{kernel}: PF_EXITING locked:\n{taken:#?}"
            );
        }
        // 3.x: forget_original_parent()'s section, then exit_notify()'s; 2.6.19: one, last.
        let sections = only(&taken, &[TASKLIST_LOCK, SIGLOCK, STATS_LOCK]);
        let tasklist = sections.iter().filter(|class| **class == TASKLIST_LOCK).count();
        assert_eq!(tasklist, if era_3x { 2 } else { 1 }, "{kernel}: tasklist_lock sections:\n{taken:#?}");
        assert_eq!(sections.last(), Some(&TASKLIST_LOCK), "{kernel}: exit_notify() last:\n{taken:#?}");
        let from = sim.trace().events().len();
        model.exit(&task_cx(&sim, &model, t, "do_exit")).expect("the thread exits");
        let taken = acquisitions(&sim, from, t);
        let release = taken.iter().filter(|entry| nested(entry)).count();
        // 2.6.19's preset is seed 002's 2.6.19-rc3, whose siglock the model does not have.
        let want = if era_3x { 2 } else { 0 };
        assert_eq!(release, want, "{kernel}: T's release_task(), siglock inside tasklist_lock:\n{taken:#?}");
        assert!(sim.lockdep().reports().is_empty(), "{kernel}: {:#?}", sim.lockdep().reports());
    }
}

/// A run's block I/O wait ends once, in one `delays->lock` section, as delayacct_blkio_end() is
/// delayacct_end() under the lock. Before "delayacct: Account blkio completion on the correct
/// task" (c96f5471ce7d, 4.15) that is the running task's own section (the run's delayacct_end());
/// from it the waker ends the woken task's wait on that task's lock, then its own waits on its
/// own: two sections, one per lock.
#[test]
fn a_run_takes_each_delays_lock_once() {
    for (kernel, sections) in [("linux-2.6.19", 1), ("linux-3.4", 1), ("linux-3.8", 1), ("4.15", 2)] {
        let (sim, model) = traced(kernel);
        let p = model.fork(&task_cx(&sim, &model, 1, "fork"), ForkKind::Process).unwrap();
        let from = sim.trace().events().len();
        assert!(model.run(&task_cx(&sim, &model, p, "run")), "{kernel}: a live task runs");
        let taken = acquisitions(&sim, from, p);
        assert_eq!(
            only(&taken, &[DELAYS_LOCK]).len(),
            sections,
            "{kernel}: the run's delays->lock sections:\n{taken:#?}"
        );
        assert!(sim.lockdep().reports().is_empty(), "{kernel}: {:#?}", sim.lockdep().reports());
    }
}
