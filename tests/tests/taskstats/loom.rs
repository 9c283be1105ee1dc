//! loom models of taskstats' two concurrent protocols, on the model's own code (sim-core's runtime
//! backend makes the model's objects loom's inside `loom_runner::explore`), from the ordinary test
//! build: `cargo test --workspace --test main -- taskstats::loom`. Preemption bound 2; each
//! model's name is its claim.

use sim_core::mm::KmemCache;
use sim_core::sync::{thread, Arc};
use sim_core::{Errno, Sim, SimConfig};
use taskstats_sim::{
    add_del_listener, deliver_to_listeners, prune_invalid, task_cx, Action, CpuSet, ListenerList,
};
use taskstats_sim::{Fixes, ForkKind, Params, Taskstats};

use crate::core::loom_support::{fails, passes};

/// The preemption bound every model here states.
const PREEMPTION_BOUND: Option<usize> = Some(2);

/// One CPU's list: port 10 closed (its entry will be pruned), port 20 registering concurrently
/// with an exit's delivery and the pruning that follows it.
///
/// Thread A (exit on cpu 0): down_read, unicast to each listener, mark port 10 invalid, up_read,
/// then down_write and prune. Thread B (REGISTER "0" for port 20): kmalloc, down_write, duplicate
/// check, list_add. Whatever the interleaving: the closed port's entry is gone, port 20 has
/// exactly one valid entry, nothing leaks.
#[test]
fn rwsem_listener_prune_never_drops_a_valid_listener() {
    passes(PREEMPTION_BOUND, || {
        let sim = Sim::new(SimConfig::new(1).cpus(1));
        let lists = Arc::new(vec![ListenerList::new()]);
        let cache: Arc<KmemCache<()>> = Arc::new(KmemCache::new("listener", 24));
        let cpu0 = CpuSet::from_cpus(1, [0]);
        let cx = sim.cx("setup", 0);
        add_del_listener(&cx, &lists, &cache, 10, &cpu0, Action::Register, true).unwrap();
        drop(cx);
        let (lists2, cache2, sim2) = (lists.clone(), cache.clone(), sim.clone());
        let exit = thread::spawn(move || {
            let cx = sim2.cx("exit", 0);
            // The message is a token here: clones always succeed, and none is left unsent.
            let unicast = |pid: u32, _msg: ()| if pid == 10 { Err(Errno::ECONNREFUSED) } else { Ok(()) };
            let (marked, unsent) = deliver_to_listeners(&cx, &lists2[0], (), |_, _| Some(()), unicast);
            assert_eq!(marked, 1, "the closed port is always seen: it was registered first");
            assert_eq!(unsent, None, "every listener walked took its copy");
            prune_invalid(&cx, &lists2[0], &cache2)
        });
        let cx = sim.cx("register", 0);
        add_del_listener(&cx, &lists, &cache, 20, &cpu0, Action::Register, true).unwrap();
        let pruned = exit.join().unwrap();
        assert_eq!(pruned, 1, "exactly the closed port's entry is pruned");
        let list = lists[0].sem.down_read(&cx);
        let ports: Vec<(u32, bool)> =
            list.iter().map(|s| (s.pid, s.valid.load(sim_core::sync::atomic::Ordering::Relaxed))).collect();
        assert_eq!(ports, [(20, true)], "port 20 registered once and valid");
        drop(list);
        assert_eq!(cache.live(), 1, "one listener object live");
    });
}

/// Two threads of one group exit at once (the leader stays). Each runs taskstats_tgid_alloc():
/// the unlocked fast path may see no stats, both may allocate, only one installs under siglock
/// and the other frees its spare; then both add their delays. Whatever the interleaving: one
/// stats object, holding the sum of both threads.
#[test]
fn group_stats_publication_between_two_exiting_threads_keeps_one_object_and_both_sums() {
    passes(PREEMPTION_BOUND, || {
        let sim = Sim::new(SimConfig::new(2).cpus(2));
        let fixes = linux_3_8_with_the_data_race_fix();
        let model = Arc::new(Taskstats::new(&sim, fixes, Params { cpus: 2, ..Params::default() }));
        let leader = model.fork(&task_cx(&sim, &model, 1, "fork"), ForkKind::Process).unwrap();
        let a = model.fork(&task_cx(&sim, &model, leader, "fork"), ForkKind::Thread).unwrap();
        let b = model.fork(&task_cx(&sim, &model, leader, "fork"), ForkKind::Thread).unwrap();
        model.run(&task_cx(&sim, &model, a, "run"));
        model.run(&task_cx(&sim, &model, b, "run"));
        let expect = {
            let sa = model.fill_stats_for(&sim.observer_cx("fill_stats_for", 0), a).unwrap();
            let sb = model.fill_stats_for(&sim.observer_cx("fill_stats_for", 0), b).unwrap();
            (sa.cpu_count + sb.cpu_count, sa.cpu_delay_total + sb.cpu_delay_total)
        };
        let (m2, s2) = (model.clone(), sim.clone());
        let other = thread::spawn(move || {
            m2.exit(&task_cx(&s2, &m2, b, "do_exit"));
        });
        model.exit(&task_cx(&sim, &model, a, "do_exit"));
        other.join().unwrap();
        let group =
            model.group_stats(&sim.observer_cx("group_stats", 0), leader).expect("group stats allocated");
        assert_eq!((group.cpu_count, group.cpu_delay_total), expect, "both threads summed once");
        assert_eq!(model.live_objects().1, 1, "one taskstats object: the spare was freed");
    });
}

/// Not vacuous: some interleaving has both threads miss the fast path, both allocate, and one
/// free its spare (loom finds it, so this assertion that it never happens must fail).
#[test]
fn both_exiting_threads_can_allocate_and_one_frees_its_spare() {
    let text = fails(PREEMPTION_BOUND, || {
        let sim = Sim::new(SimConfig::new(2).cpus(2));
        let model = Arc::new(Taskstats::new(
            &sim,
            linux_3_8_with_the_data_race_fix(),
            Params { cpus: 2, ..Params::default() },
        ));
        let leader = model.fork(&task_cx(&sim, &model, 1, "fork"), ForkKind::Process).unwrap();
        let a = model.fork(&task_cx(&sim, &model, leader, "fork"), ForkKind::Thread).unwrap();
        let b = model.fork(&task_cx(&sim, &model, leader, "fork"), ForkKind::Thread).unwrap();
        let (m2, s2) = (model.clone(), sim.clone());
        let other = thread::spawn(move || {
            m2.exit(&task_cx(&s2, &m2, b, "do_exit"));
        });
        model.exit(&task_cx(&sim, &model, a, "do_exit"));
        other.join().unwrap();
        assert!(!sim.marks().contains("group-stats-spare-freed"), "spare freed in this interleaving");
    });
    assert!(text.contains("spare freed"), "{text}");
}

/// linux-3.8 plus "taskstats: fix data-race" (5.5): as the seed has it, the fast path's plain
/// `sig->stats` load races the other exit's store, which loom's race cell reports; these models
/// check the publication protocol with the fix's acquire/release.
fn linux_3_8_with_the_data_race_fix() -> Fixes {
    let mut fixes = Fixes::preset("linux-3.8").unwrap();
    fixes.set(taskstats_sim::fixes::TGID_ALLOC_DATA_RACE, true);
    fixes
}
