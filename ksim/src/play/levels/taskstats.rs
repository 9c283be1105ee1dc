//! taskstats levels: CVE-2011-2484's duplicate listeners, and 2.6.19's group statistics that miss
//! a thread which exits while nobody listens. Each task is a system call or an exit running the
//! model's kernel entry points (`taskstats_user_cmd`, `do_exit` → `taskstats_exit`).

use std::sync::Arc;

use sim_core::check::Catalog;
use sim_core::lockdep::ReportMode;
use sim_core::trace::TraceMode;
use sim_core::{Sim, SimConfig};
use taskstats_sim::wire::*;
use taskstats_sim::{netlink_send, task_cx, ForkKind, Taskstats, TaskstatsSubject};

use super::super::level::{Level, TaskInfo, Win};
use super::super::runtime::{spawn_tasks, Control, TaskBody};

/// The taskstats levels, easiest first.
pub(crate) fn levels() -> Vec<Level> {
    let duplicate = Level {
        name: "taskstats-1",
        subsystem: "taskstats",
        title: "one exit, one listener, two copies",
        zoo: "duplicate-listener-check",
        fix_on: false,
        kernel: "linux-3.4",
        goal: "make one exit reach the same listener twice",
        invariant: "a port is on a CPU's listener list at most once, so each exit reaches it once",
        hint: "both registrations of the port must be on cpu 0's list before the exit walks it",
        tasks: &DUPLICATE_TASKS,
        // The second copy of one exit carries the sequence number the first did.
        win: Win::Violation(&["duplicate-listener", "seq-order"]),
        setup: duplicate_listener,
        solution: &[(0, ""), (1, ""), (2, "")],
    };
    let group = Level {
        name: "taskstats-3",
        title: "the thread nobody heard",
        zoo: GROUP_FIX,
        kernel: GROUP_KERNEL,
        goal: "make the group's record at its death miss a thread's statistics",
        invariant: "a dead group's TGID record sums every thread that exited in it",
        hint: "let the thread exit while the listener list is still empty, then register, then let \
               the leader die",
        tasks: &GROUP_TASKS,
        win: Win::Violation(&["group-stats"]),
        setup: group_stats,
        solution: &[(0, ""), (1, ""), (2, "")],
        ..duplicate
    };
    vec![
        duplicate,
        Level {
            name: "taskstats-2",
            title: "convince yourself: the duplicate check",
            fix_on: true,
            goal: "try to make one exit reach the same listener twice: every schedule keeps the invariant",
            hint: "add_del_listener() looks for the port and adds it under the same down_write: \
                   no second registration can slip in between",
            win: Win::Holds,
            solution: &[(0, ""), (1, ""), (2, "")],
            ..duplicate
        },
        group,
        Level {
            name: "taskstats-4",
            title: "convince yourself: exit in a single pass",
            fix_on: true,
            goal: "try to make the group's record miss a thread: every schedule keeps the invariant",
            hint: "taskstats_exit() adds the thread to its group's stats before it looks for listeners",
            win: Win::Holds,
            solution: &[(0, ""), (1, ""), (2, "")],
            ..group
        },
    ]
}

const DUPLICATE_TASKS: [TaskInfo; 3] = [
    TaskInfo { name: "register (1st)", entry: "taskstats_user_cmd" },
    TaskInfo { name: "register (2nd)", entry: "taskstats_user_cmd" },
    TaskInfo { name: "exit", entry: "do_exit" },
];

/// The group-stats levels run the zoo row's kernel: 2.6.19-rc5 with the change that fills the
/// group's stats before sending switched off (the bug) or on (its twin).
const GROUP_KERNEL: &str = "2.6.19-rc5";
const GROUP_FIX: &str = "exit-fill-before-send";

const GROUP_TASKS: [TaskInfo; 3] = [
    TaskInfo { name: "thread exits", entry: "do_exit" },
    TaskInfo { name: "register", entry: "taskstats_user_cmd" },
    TaskInfo { name: "leader exits", entry: "do_exit" },
];

/// The level's `Sim`: lockdep collecting, the whole trace kept.
pub(crate) fn level_sim(cpus: u32) -> Sim {
    Sim::new(SimConfig::new(1).cpus(cpus).lockdep(ReportMode::Collect).trace(TraceMode::Full))
}

/// The model for the zoo row `fix` of `kernel`, with the fix on or off (audited when off).
fn model(sim: &Sim, kernel: &str, fix: &str, fix_on: bool) -> Arc<Taskstats> {
    let off = if fix_on { vec![] } else { vec![fix.to_string()] };
    let config = TaskstatsSubject::config(Some(kernel), &off).expect("the level's kernel is a preset");
    let mut params = config.params;
    params.cpus = 2;
    Arc::new(Taskstats::new(sim, config.fixes, params))
}

/// REGISTER_CPUMASK of `mask` on `port`, sent by the port's process.
fn register(model: &Taskstats, sim: &Sim, port: u32, mask: &str) {
    let bytes = request(
        TASKSTATS_FAMILY_ID,
        NLM_F_REQUEST | NLM_F_ACK,
        1,
        port,
        TASKSTATS_CMD_GET,
        &[(TASKSTATS_CMD_ATTR_REGISTER_CPUMASK, cpumask_payload(mask))],
    );
    let _ = netlink_send(sim, model, port, &bytes);
}

/// Reports a broken invariant at the end of the run (when `check`) and lists cpu 0's listeners.
fn finish(control: &Control, sim: &Sim, model: &Taskstats, check: bool) {
    if let Err(violation) = model.check_invariants(sim) {
        if check {
            sim.report(None, violation);
        }
    }
    let listeners = model.listeners(&sim.observer_cx("play", 0), 0);
    control.set_state(vec![format!("cpu 0 listeners (port, valid): {listeners:?}")]);
}

/// Two registrations of one port for cpu 0 and an exit on cpu 0.
fn duplicate_listener(control: &Arc<Control>, fix_on: bool) {
    let sim = level_sim(2);
    control.publish(&sim);
    let model = model(&sim, "linux-3.4", "duplicate-listener-check", fix_on);
    let Some(port) = model.open_port(&task_cx(&sim, &model, 1, "socket")) else { return };
    let Ok(child) = model.fork(&task_cx(&sim, &model, 1, "fork"), ForkKind::Process) else { return };
    let mut tasks = Vec::new();
    for _ in 0..2 {
        let (m, s) = (model.clone(), sim.clone());
        tasks.push(TaskBody { daemon: false, body: Box::new(move || register(&m, &s, port, "0")) });
    }
    let (m, s) = (model.clone(), sim.clone());
    tasks.push(TaskBody {
        daemon: false,
        body: Box::new(move || {
            m.exit(&task_cx(&s, &m, child, "do_exit"));
        }),
    });
    spawn_tasks(control, tasks, || {});
    // The goal is the delivery: a list that merely holds the port twice at the end, after the
    // exit, is not checked here (the exit never saw it).
    finish(control, &sim, &model, fix_on);
}

/// A thread exits, a listener registers, the group leader exits.
fn group_stats(control: &Arc<Control>, fix_on: bool) {
    let sim = level_sim(2);
    control.publish(&sim);
    let model = model(&sim, GROUP_KERNEL, GROUP_FIX, fix_on);
    let Ok(leader) = model.fork(&task_cx(&sim, &model, 1, "fork"), ForkKind::Process) else { return };
    let Ok(thread) = model.fork(&task_cx(&sim, &model, leader, "fork"), ForkKind::Thread) else { return };
    model.run(&task_cx(&sim, &model, thread, "run"));
    model.run(&task_cx(&sim, &model, leader, "run"));
    let Some(port) = model.open_port(&task_cx(&sim, &model, 1, "socket")) else { return };
    let mut tasks = Vec::new();
    for (pid, body) in [(thread, 0), (port, 1), (leader, 2)] {
        let (m, s) = (model.clone(), sim.clone());
        tasks.push(TaskBody {
            daemon: false,
            body: Box::new(move || {
                if body == 1 {
                    register(&m, &s, pid, "0");
                } else {
                    m.exit(&task_cx(&s, &m, pid, "do_exit"));
                }
            }),
        });
    }
    spawn_tasks(control, tasks, || {});
    finish(control, &sim, &model, true);
}
