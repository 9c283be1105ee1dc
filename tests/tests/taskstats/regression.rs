//! Regression tests for the historical bugs, each opening with its interleaving, and the
//! teaching scenarios the CLI runs.

use sim_core::check::Catalog;
use sim_core::fault::{FaultAttr, FaultPlan};
use sim_core::lockdep::ReportMode;
use sim_core::{Sim, SimConfig};
use taskstats_sim::wire::*;
use taskstats_sim::{netlink_send, task_cx, Fixes, ForkKind, Params, Taskstats, TaskstatsSubject};

fn register(model: &Taskstats, sim: &Sim, port: u32, mask: &str) -> Option<i32> {
    let bytes = request(
        TASKSTATS_FAMILY_ID,
        NLM_F_REQUEST | NLM_F_ACK,
        1,
        port,
        TASKSTATS_CMD_GET,
        &[(TASKSTATS_CMD_ATTR_REGISTER_CPUMASK, cpumask_payload(mask))],
    );
    let replies = netlink_send(sim, model, port, &bytes);
    replies.last().map(|ack| i32::from_le_bytes(ack[16..20].try_into().unwrap()))
}

/// Registration that fails part-way (every preset; fixed upstream much later by returning
/// -ENOMEM from add_del_listener()).
///
/// 1. Port P registers cpu 0: one entry on cpu 0.
/// 2. P registers cpus 0-1. On 3.x the duplicate check skips cpu 0; kmalloc_node for cpu 1 fails.
/// 3. The cleanup loop removes the first entry for P on every cpu of the mask: cpu 0's entry from
///    step 1 goes too.
///
/// Symptom: the request returns 0, yet P now listens nowhere. On 2.6.19 (no duplicate check)
/// step 2 adds a second cpu-0 entry and the cleanup removes that one, so step 1's survives.
#[test]
fn register_failing_part_way_returns_0_and_drops_the_earlier_registration_on_3_x() {
    for (preset, left_on_cpu0) in [("linux-3.4", 0), ("linux-3.8", 0), ("linux-2.6.19", 1)] {
        let sim = Sim::new(SimConfig::new(1).cpus(2));
        let model = Taskstats::new(&sim, Fixes::preset(preset).unwrap(), Params::default());
        let port = model.open_port(&task_cx(&sim, &model, 1, "socket")).unwrap();
        assert_eq!(register(&model, &sim, port, "0"), Some(0));
        // The second listener allocation of the request fails: cpu 1's. (3.x allocates for cpu 0
        // too, finds the duplicate under the lock and frees it.)
        let nth = 2;
        sim.set_faults(FaultPlan::with(FaultAttr::nth(nth).site("listener")));
        assert_eq!(
            register(&model, &sim, port, "0-1"),
            Some(0),
            "{preset}: the failure is reported as success"
        );
        let cx = sim.cx("test", 0);
        assert_eq!(model.listeners(&cx, 0).len(), left_on_cpu0, "{preset}: entries left on cpu 0");
        assert!(model.listeners(&cx, 1).is_empty(), "{preset}: nothing on cpu 1");
    }
}

/// CVE-2011-2484, as a fixed sequence.
///
/// 1. Port P sends REGISTER "0" three times.
/// 2. A task exits on cpu 0.
///
/// Symptom (without "taskstats: don't allow duplicate entries in listener mode"): three list
/// entries, three copies of the record; a loop of REGISTERs grows kernel memory without bound.
#[test]
fn cve_2011_2484_register_loop_grows_the_list_only_without_the_fix() {
    for (check, expect) in [(false, 3), (true, 1)] {
        let sim = Sim::new(SimConfig::new(1).cpus(2));
        let mut fixes = Fixes::preset("linux-3.4").unwrap();
        fixes.set(taskstats_sim::fixes::DUPLICATE_LISTENER_CHECK, check);
        let model = Taskstats::new(&sim, fixes, Params::default());
        let port = model.open_port(&task_cx(&sim, &model, 1, "socket")).unwrap();
        for _ in 0..3 {
            assert_eq!(register(&model, &sim, port, "0"), Some(0));
        }
        let child = model.fork(&task_cx(&sim, &model, 1, "fork"), ForkKind::Process).unwrap();
        let report = model.exit(&task_cx(&sim, &model, child, "do_exit")).unwrap();
        let cx = sim.cx("test", 0);
        assert_eq!(model.listeners(&cx, 0).len(), expect, "entries on cpu 0 (check {check})");
        assert_eq!(report.delivered.len(), expect, "copies of one exit (check {check})");
    }
}

#[test]
fn every_scenario_runs_and_the_cve_scenarios_show_their_violation() {
    for info in TaskstatsSubject::scenarios() {
        let sim =
            TaskstatsSubject::run_scenario(info.name).unwrap_or_else(|| panic!("{} did not run", info.name));
        assert!(!sim.trace().events().is_empty(), "{}: empty trace", info.name);
        let kinds: Vec<String> = sim.violations().into_iter().map(|v| v.kind.to_string()).collect();
        let expect = match info.name {
            "cve-2011-2484" => Some("duplicate-listener"),
            "cve-2011-2494" => Some("unprivileged-access"),
            "namespace-leak" => Some("namespace-leak"),
            "group-stats-2.6.19" => Some("group-stats"),
            "cve-2012-3510" => Some("kref:use-after-release"),
            _ => None,
        };
        if let Some(kind) = expect {
            assert!(kinds.iter().any(|k| k == kind), "{}: expected {kind}, saw {kinds:?}", info.name);
        }
    }
    assert!(TaskstatsSubject::run_scenario("no-such-scenario").is_none());
}

#[test]
fn catalog_names_presets_fixes_and_rejects_unknown_names() {
    let presets: Vec<_> = TaskstatsSubject::presets().into_iter().map(|p| p.name).collect();
    assert_eq!(presets, ["linux-2.6.19", "linux-3.4", "linux-3.8"]);
    assert!(TaskstatsSubject::fixes().iter().any(|f| f.cve.as_deref() == Some("CVE-2011-2484")));
    assert!(TaskstatsSubject::fixes().iter().any(|f| f.cve.as_deref() == Some("CVE-2011-2494")));
    assert!(TaskstatsSubject::config(Some("linux-9"), &[]).unwrap_err().contains("linux-3.8"));
    assert!(TaskstatsSubject::config(None, &["nope".into()]).unwrap_err().contains("admin-perm"));
    let config = TaskstatsSubject::config(None, &["admin-perm".into()]).unwrap();
    assert!(
        !config.fixes.on(taskstats_sim::fixes::ADMIN_PERM)
            && config.fixes.on(taskstats_sim::fixes::NAMESPACE_CHECKS)
    );
}

/// The reference judges an exit whose `skb_clone()` fails as send_cpu_listeners() walks it: with
/// four listeners on cpu 0 (one of a closed port), the nth clone failing ends the walk before
/// listener n, only the walked closed port's entry is pruned, and the unwalked ones stay. A model
/// that clones for the last listener too, breaks at another listener, or miscounts the pruned
/// entries fails these cases (each mutation of deliver_to_listeners was tried).
#[test]
fn exits_with_a_failing_clone_are_judged_listener_by_listener() {
    use sim_core::check::{run_case, RunOptions};
    use sim_core::fault::FaultKind;
    use taskstats_sim::{MaskSpec, Op, TaskstatsConfig};
    let mut ops: Vec<Op> = (0..4).map(|_| Op::OpenPort { task: 0 }).collect();
    ops.extend((0..4).map(|port| Op::Register { port, mask: MaskSpec::Cpus(1) }));
    ops.push(Op::ClosePort { port: 2 });
    ops.push(Op::Fork { parent: 0, kind: ForkKind::Process });
    ops.push(Op::Exit { task: 0 });
    ops.push(Op::Fork { parent: 0, kind: ForkKind::Process });
    ops.push(Op::Exit { task: 0 });
    // No clone fails, then each of the three clones in turn.
    for nth in 0..=3u64 {
        let mut config = TaskstatsConfig::contract("linux-3.8");
        config.faults = FaultPlan::with(FaultAttr::probability(0).kind(FaultKind::Slab))
            .and(FaultAttr::probability(0).kind(FaultKind::Call).site("copy_process"))
            .and(if nth == 0 {
                FaultAttr::probability(0).kind(FaultKind::Call).site("skb_clone")
            } else {
                FaultAttr::nth(nth).kind(FaultKind::Call).site("skb_clone")
            });
        let report = run_case::<TaskstatsSubject>(&config, 1, &ops, &RunOptions::default());
        assert!(report.passed(), "clone {nth} failing: {:?}", report.violation);
        let marks: Vec<&str> = report.coverage.iter().copied().collect();
        assert!(marks.contains(&"exit-delivered") || nth == 1, "clone {nth}: {marks:?}");
        assert_eq!(marks.contains(&"clone-failed"), nth > 0, "clone {nth}: {marks:?}");
    }
}

fn kinds(sim: &Sim) -> Vec<String> {
    sim.violations().into_iter().map(|v| v.kind.to_string()).collect()
}

/// A model with a process `leader` and its thread; returns (sim, model, thread).
fn group_of_two() -> (Sim, Taskstats, u32) {
    let sim = Sim::new(SimConfig::new(1).cpus(2).lockdep(ReportMode::Collect));
    let model = Taskstats::new(&sim, Fixes::preset("linux-3.8").unwrap(), Params::default());
    let leader = model.fork(&task_cx(&sim, &model, 1, "fork"), ForkKind::Process).unwrap();
    let thread = model.fork(&task_cx(&sim, &model, leader, "fork"), ForkKind::Thread).unwrap();
    (sim, model, thread)
}

/// task_struct lifetimes: release_task() puts the pid hash's reference after a grace period.
///
/// 1. A holder keeps a pointer to thread T without taking a reference.
/// 2. T exits and is released; the grace period ends and the last put frees T.
/// 3. The holder reads T, then puts it.
///
/// Symptom: step 3's read is a use after free (KASAN) and its put an underflow.
#[test]
fn a_task_used_or_put_after_its_last_put_is_reported() {
    let (sim, model, thread) = group_of_two();
    let cx = sim.cx("holder", 0);
    let stale = model.task(&cx, thread).unwrap();
    model.exit(&task_cx(&sim, &model, thread, "do_exit")).unwrap();
    assert!(stale.access(&cx), "alive until the grace period ends");
    assert!(kinds(&sim).is_empty(), "{:?}", kinds(&sim));
    assert!(sim.rcu_advance() >= 1, "delayed_put_task_struct ran");
    assert!(sim.marks().contains("task-struct-freed"));
    assert!(!stale.access(&cx));
    assert!(!stale.put_task_struct(&cx));
    assert_eq!(kinds(&sim), vec!["kref:use-after-release", "kref:underflow"]);
}

/// The same with get_task_struct() in step 1: the holder's reference keeps T alive past its
/// release, and the holder's put is the one that frees it.
#[test]
fn a_counted_reference_keeps_a_released_task_alive_until_its_put() {
    let (sim, model, thread) = group_of_two();
    let cx = sim.cx("holder", 0);
    let held = model.task(&cx, thread).unwrap();
    held.get_task_struct(&cx);
    model.exit(&task_cx(&sim, &model, thread, "do_exit")).unwrap();
    sim.rcu_advance();
    assert!(held.access(&cx), "the holder's reference keeps it");
    assert!(!sim.marks().contains("task-struct-freed"));
    assert!(held.put_task_struct(&cx), "the holder's put is the last");
    assert!(sim.marks().contains("task-struct-freed"));
    assert!(kinds(&sim).is_empty(), "{:?}", kinds(&sim));
}

/// CVE-2012-3510, as the `cve-2012-3510` scenario scripts it (linux-3.4, then with the fix off):
///
/// 1. Init sends a PID query for a process; xacct_add_tsk() tests `p->mm` and is preempted.
/// 2. The process exits: exit_mm() clears `p->mm` and drops the last `mm_users`; the mm is freed.
/// 3. The query reads `p->mm->hiwater_rss` through the pointer it tested: a use after free.
///
/// With "xacct_add_tsk: fix pure theoretical ->mm use-after-free" the query holds its own
/// reference from get_task_mm(), so the exit's mmput() is not the last and the query's is.
#[test]
fn cve_2012_3510_a_preempted_pid_query_reads_the_freed_mm_only_without_the_fix() {
    let sim = TaskstatsSubject::run_scenario("cve-2012-3510").expect("scenario");
    let kinds: Vec<String> = sim.violations().into_iter().map(|v| v.kind.to_string()).collect();
    assert_eq!(kinds, ["kref:use-after-release"], "one use after free, in the unfixed half only");
    let text = format!("{:?}", sim.trace().events());
    let at =
        |needle: &str| text.find(needle).unwrap_or_else(|| panic!("no {needle:?} in the trace:\n{text}"));
    assert!(at("preempted in xacct_add_tsk") < at("exit_mm: tsk->mm = NULL"));
    assert!(at("exit_mm: tsk->mm = NULL") < at("__mmput: the last user is gone"));
    assert!(at("__mmput: the last user is gone") < at("reads the freed mm_struct"));
}

/// Reparenting (forget_original_parent()): when a process's group dies, its children are handed
/// to init, so bacct_add_tsk()'s `rcu_dereference(tsk->real_parent)->tgid` reads 1 afterwards,
/// zombie or reaped, instead of a parent that no longer exists.
#[test]
fn a_child_whose_parent_group_died_reports_init_as_its_parent() {
    let sim = Sim::new(SimConfig::new(1).cpus(2));
    let model = Taskstats::new(&sim, Fixes::preset("linux-3.8").unwrap(), Params::default());
    let parent = model.fork(&task_cx(&sim, &model, 1, "fork"), ForkKind::Process).unwrap();
    let child = model.fork(&task_cx(&sim, &model, parent, "fork"), ForkKind::Process).unwrap();
    let ppid = |model: &Taskstats| model.fill_stats_for(&sim.observer_cx("test", 0), child).unwrap().ac_ppid;
    assert_eq!(ppid(&model), parent, "before the parent exits");
    model.exit(&task_cx(&sim, &model, parent, "do_exit")).unwrap();
    assert_eq!(ppid(&model), 1, "the parent is a zombie: the child was reparented at its exit");
    assert!(model.reap(&sim.cx("release_task", 0), parent));
    sim.rcu_advance();
    assert_eq!(ppid(&model), 1, "the parent is reaped");
    assert!(sim.violations().is_empty(), "{:?}", sim.violations());
}

/// A task whose delayacct_tsk_init() failed runs with `delays == NULL`; delayacct_add_tsk()
/// returns before it copies anything, so its record carries zero delay counters (and its CPU
/// time from bacct_add_tsk() as usual), where a task with `delays` reports what it waited.
#[test]
fn a_task_without_delays_reports_zero_delay_counters() {
    let sim = Sim::new(SimConfig::new(3).cpus(2));
    let model = Taskstats::new(&sim, Fixes::preset("linux-3.4").unwrap(), Params::default());
    sim.set_faults(FaultPlan::with(FaultAttr::nth(1).site("delayacct_cache")));
    let bare = model.fork(&task_cx(&sim, &model, 1, "fork"), ForkKind::Process).unwrap();
    let with = model.fork(&task_cx(&sim, &model, 1, "fork"), ForkKind::Process).unwrap();
    for pid in [bare, with] {
        model.run(&task_cx(&sim, &model, pid, "run"));
    }
    let record = |pid| model.fill_stats_for(&sim.observer_cx("test", 0), pid).unwrap();
    let (bare, with) = (record(bare), record(with));
    assert_eq!((bare.cpu_count, bare.cpu_delay_total, bare.cpu_run_real_total), (0, 0, 0));
    assert!(bare.ac_utime + bare.ac_stime > 0, "CPU time still counts: {bare:?}");
    assert!(with.cpu_count > 0 && with.cpu_run_real_total > 0, "{with:?}");
}

/// 2.6.19's `tasklist_lock` is an `rwlock_t`: a PID query finds its task under `read_lock()`
/// (fill_pid()), fork and exit take `write_lock_irq()`. The trace shows each mode, and lockdep,
/// which sees the reads as recursive reads, reports nothing.
#[test]
fn tasklist_lock_is_read_by_2_6_19_queries_and_written_by_fork_and_exit() {
    let sim = Sim::new(SimConfig::new(1).cpus(1).lockdep(ReportMode::Collect));
    let model = Taskstats::new(&sim, Fixes::preset("linux-2.6.19").unwrap(), Params::default());
    let port = model.open_port(&task_cx(&sim, &model, 1, "socket")).unwrap();
    let child = model.fork(&task_cx(&sim, &model, 1, "fork"), ForkKind::Process).unwrap();
    let bytes = super::id_query(port, TASKSTATS_CMD_ATTR_PID, child);
    let replies = netlink_send(&sim, &model, port, &bytes);
    assert_eq!(replies.len(), 1, "one reply to the PID query");
    model.exit(&task_cx(&sim, &model, child, "do_exit")).unwrap();
    let text = format!("{:?}", sim.trace().events());
    for mode in ["ReadRecursive", "SpinIrq"] {
        let needle = format!("class: \"tasklist_lock\", mode: {mode}");
        assert!(text.contains(&needle), "no {needle:?} in the trace:\n{text}");
    }
    assert!(sim.lockdep().reports().is_empty(), "{:#?}", sim.lockdep().reports());
}

/// 2.6.19's `sig->stats` races as 3.x's does, but no commit fixed that code (see
/// `Taskstats::stats_access`): judged only when "taskstats: fix data-race" is audited.
///
/// 1. init sends a TGID query for process P: fill_tgid() reads P's `sig->stats` under the
///    group's lock.
/// 2. P forks thread T. From 2.6.19-rc4 copy_signal()'s taskstats_tgid_alloc() first loads the
///    pointer with no lock ("taskstats_tgid_alloc: optimization"), then stores it under the lock.
/// 3. T exits: from 2.6.19-rc4 taskstats_exit_send() loads it with no lock for
///    `is_thread_group` ("taskstats: kill ->taskstats_lock in favor of ->siglock").
///
/// Symptom: lockset sees two tasks on the pointer with no lock in common, one of them storing.
/// Without the audit the same run is quiet (the presets say nothing of a race no switch turns
/// off), and 2.6.19-rc3 (seed 002), which touches the pointer under `stats_lock` only, is quiet
/// either way.
#[test]
fn sig_stats_of_2_6_19_races_at_fork_and_exit_send_when_audited() {
    for (kernel, racy) in [("linux-2.6.19", false), ("2.6.19-rc5", true)] {
        for audited in [true, false] {
            let sim = Sim::new(SimConfig::new(1).cpus(1).lockdep(ReportMode::Collect));
            let audit = if audited { vec!["tgid-alloc-data-race".to_string()] } else { Vec::new() };
            let model =
                Taskstats::new(&sim, Fixes::preset(kernel).unwrap(), Params { audit, ..Params::default() });
            let init = task_cx(&sim, &model, 1, "init");
            let port = model.open_port(&init).unwrap();
            let p = model.fork(&init, ForkKind::Process).unwrap();
            let query = super::id_query(port, TASKSTATS_CMD_ATTR_TGID, p);
            assert_eq!(netlink_send(&sim, &model, port, &query).len(), 1, "{kernel}: the TGID reply");
            let thread = model.fork(&task_cx(&sim, &model, p, "fork"), ForkKind::Thread).unwrap();
            model.exit(&task_cx(&sim, &model, thread, "do_exit")).unwrap();
            let races = sim.lockdep().reports().iter().filter(|r| r.kind() == "lockset-race").count();
            assert_eq!(
                races > 0,
                racy && audited,
                "{kernel}, audited {audited}: {:#?}",
                sim.lockdep().reports()
            );
        }
    }
}
