//! Teaching scenarios: short scripted runs whose traces show one idea each.

use sim_core::trace::TraceMode;
use sim_core::{Sim, SimConfig};

use super::{netlink_send, task_cx};
use crate::fixes::Fixes;
use crate::taskstats::{ForkKind, Params, Preemption, Taskstats};
use crate::wire::*;

/// Name and description of every scenario.
pub(crate) const SCENARIOS: [(&str, &str); 6] = [
    (
        "cve-2011-2484",
        "linux-3.4 with the duplicate check off: one port registers cpu 0 three times; one exit reaches it \
         three times and the list holds three entries (CVE-2011-2484)",
    ),
    (
        "cve-2011-2494",
        "linux-3.4 with admin-perm off: an unprivileged process reads root's I/O accounting (CVE-2011-2494); \
         with it on the request gets EPERM",
    ),
    (
        "namespace-leak",
        "linux-3.8 with namespace-checks off: a task in a child pid namespace registers and receives global pids",
    ),
    (
        "group-stats-2.6.19",
        "linux-2.6.19: a thread exits while nobody listens; its delays never reach the group's stats, so the \
         TGID record at group death under-counts",
    ),
    (
        "cve-2012-3510",
        "linux-3.4 with xacct-get-task-mm off: a PID query tests its target's p->mm, is preempted, the target \
         exits and frees its mm, and the query reads the freed mm (CVE-2012-3510); then the same with the fix",
    ),
    (
        "register-fails-part-way",
        "linux-3.4: registering cpus 0-1 fails to allocate for cpu 1; the cleanup removes the port's earlier \
         cpu 0 registration too, and the request still returns 0",
    ),
];

fn register(model: &Taskstats, sim: &Sim, port: u32, mask: &str) -> Vec<Vec<u8>> {
    let bytes = request(
        TASKSTATS_FAMILY_ID,
        NLM_F_REQUEST | NLM_F_ACK,
        1,
        port,
        TASKSTATS_CMD_GET,
        &[(TASKSTATS_CMD_ATTR_REGISTER_CPUMASK, cpumask_payload(mask))],
    );
    netlink_send(sim, model, port, &bytes)
}

fn query_pid(model: &Taskstats, sim: &Sim, port: u32, pid: u32) -> Vec<Vec<u8>> {
    let bytes = request(
        TASKSTATS_FAMILY_ID,
        NLM_F_REQUEST | NLM_F_ACK,
        2,
        port,
        TASKSTATS_CMD_GET,
        &[(TASKSTATS_CMD_ATTR_PID, pid.to_le_bytes().to_vec())],
    );
    netlink_send(sim, model, port, &bytes)
}

/// Runs scenario `name` in a fresh `Sim` keeping the trace as `trace`; None if there is no such
/// scenario.
pub(crate) fn run(name: &str, trace: TraceMode) -> Option<Sim> {
    let sim = Sim::new(SimConfig::new(1).cpus(2).trace(trace));
    match name {
        "cve-2011-2484" => scenario_cve_2011_2484(&sim)?,
        "cve-2011-2494" => scenario_cve_2011_2494(&sim)?,
        "namespace-leak" => scenario_namespace_leak(&sim)?,
        "group-stats-2.6.19" => scenario_group_stats_2_6_19(&sim)?,
        "register-fails-part-way" => scenario_register_fails_part_way(&sim)?,
        "cve-2012-3510" => scenario_cve_2012_3510(&sim)?,
        _ => return None,
    }
    Some(sim)
}

/// Parameters of a two-CPU model whose checker audits fix `fix` although it is off.
fn audit(fix: &str) -> Params {
    Params { cpus: 2, audit: vec![fix.to_string()], ..Params::default() }
}

fn note(sim: &Sim, text: &str) {
    sim.cx("scenario", 0).note(text.to_string());
}

/// Scenario `cve-2011-2484` (see [`SCENARIOS`]).
fn scenario_cve_2011_2484(sim: &Sim) -> Option<()> {
    let fixes = Fixes::preset("linux-3.4")?.without(crate::fixes::DUPLICATE_LISTENER_CHECK);
    let model = Taskstats::new(sim, fixes, audit("duplicate-listener-check"));
    let port = model.open_port(&task_cx(sim, &model, 1, "socket"))?;
    for _ in 0..3 {
        note(sim, "1. register port for cpu 0 again");
        register(&model, sim, port, "0");
    }
    let child = model.fork(&task_cx(sim, &model, 1, "fork"), ForkKind::Process).ok()?;
    note(sim, "2. a task exits on cpu 0");
    model.exit(&task_cx(sim, &model, child, "do_exit"));
    if let Err(violation) = model.check_invariants(sim) {
        sim.report(None, violation);
    }
    Some(())
}

/// Scenario `cve-2011-2494` (see [`SCENARIOS`]).
fn scenario_cve_2011_2494(sim: &Sim) -> Option<()> {
    for admin_perm in [false, true] {
        let mut fixes = Fixes::preset("linux-3.4")?;
        fixes.set(crate::fixes::ADMIN_PERM, admin_perm);
        let model = Taskstats::new(sim, fixes, audit("admin-perm"));
        let user = model.fork(&task_cx(sim, &model, 1, "fork"), ForkKind::Unprivileged(0)).ok()?;
        model.run(&task_cx(sim, &model, 1, "run"));
        let port = model.open_port(&task_cx(sim, &model, user, "socket"))?;
        note(sim, if admin_perm { "admin-perm on: unprivileged PID query" } else { "admin-perm off" });
        query_pid(&model, sim, port, 1);
    }
    Some(())
}

/// Scenario `namespace-leak` (see [`SCENARIOS`]).
fn scenario_namespace_leak(sim: &Sim) -> Option<()> {
    let fixes = Fixes::preset("linux-3.8")?.without(crate::fixes::NAMESPACE_CHECKS);
    let model = Taskstats::new(sim, fixes, audit("namespace-checks"));
    let inside = model.fork(&task_cx(sim, &model, 1, "fork"), ForkKind::NewPidNs).ok()?;
    let port = model.open_port(&task_cx(sim, &model, inside, "socket"))?;
    note(sim, "1. a task in a child pid namespace registers for cpu 0");
    register(&model, sim, port, "0");
    let outside = model.fork(&task_cx(sim, &model, 1, "fork"), ForkKind::Process).ok()?;
    note(sim, "2. a task outside that namespace exits on cpu 0");
    model.exit(&task_cx(sim, &model, outside, "do_exit"));
    Some(())
}

/// Scenario `group-stats-2.6.19` (see [`SCENARIOS`]).
fn scenario_group_stats_2_6_19(sim: &Sim) -> Option<()> {
    let model = Taskstats::new(sim, Fixes::preset("linux-2.6.19")?, audit("exit-fill-before-send"));
    let leader = model.fork(&task_cx(sim, &model, 1, "fork"), ForkKind::Process).ok()?;
    let thread = model.fork(&task_cx(sim, &model, leader, "fork"), ForkKind::Thread).ok()?;
    model.run(&task_cx(sim, &model, thread, "run"));
    note(sim, "1. the thread exits on cpu 0 with no listener: taskstats_exit_alloc finds the list empty");
    model.exit(&task_cx(sim, &model, thread, "do_exit"));
    let port = model.open_port(&task_cx(sim, &model, 1, "socket"))?;
    note(sim, "2. a listener registers; the leader exits: the group's record lacks the thread");
    register(&model, sim, port, "0");
    model.exit(&task_cx(sim, &model, leader, "do_exit"));
    Some(())
}

/// Scenario `register-fails-part-way` (see [`SCENARIOS`]).
fn scenario_register_fails_part_way(sim: &Sim) -> Option<()> {
    let model = Taskstats::new(sim, Fixes::preset("linux-3.4")?, Params { cpus: 2, ..Params::default() });
    let port = model.open_port(&task_cx(sim, &model, 1, "socket"))?;
    register(&model, sim, port, "0");
    note(sim, "1. port registered on cpu 0; now register 0-1 with the listener allocation for cpu 1 failing");
    sim.set_faults(sim_core::fault::FaultPlan::with(sim_core::fault::FaultAttr::nth(2).site("listener")));
    register(&model, sim, port, "0-1");
    let cx = sim.cx("scenario", 0);
    cx.note(format!(
        "2. cpu 0 listeners now: {:?} (the earlier registration is gone)",
        model.listeners(&cx, 0)
    ));
    Some(())
}

/// Scenario `cve-2012-3510` (see [`SCENARIOS`]): the race once without the fix, once with it.
fn scenario_cve_2012_3510(sim: &Sim) -> Option<()> {
    for fixed in [false, true] {
        let mut fixes = Fixes::preset("linux-3.4")?;
        fixes.set(crate::fixes::XACCT_GET_TASK_MM, fixed);
        let model = Taskstats::new(sim, fixes, Params { cpus: 2, ..Params::default() });
        let target = model.fork(&task_cx(sim, &model, 1, "fork"), ForkKind::Process).ok()?;
        model.run(&task_cx(sim, &model, target, "run"));
        let port = model.open_port(&task_cx(sim, &model, 1, "socket"))?;
        note(
            sim,
            if fixed {
                "with the fix: xacct_add_tsk takes get_task_mm(); the target exits while the query is preempted"
            } else {
                "1. init queries the target's PID; xacct_add_tsk tests p->mm and is preempted before it reads it"
            },
        );
        model.preempt_at_next_point(Preemption::new(move |model, cx| {
            let text = if fixed {
                "2. meanwhile the target exits: exit_mm() puts its mm_users; the query's reference keeps the mm"
            } else {
                "2. meanwhile the target exits: exit_mm() puts the last mm_users and the mm is freed"
            };
            cx.sim().cx("scenario", 0).note(text);
            model.exit(&task_cx(cx.sim(), model, target, "do_exit"));
        }));
        query_pid(&model, sim, port, target);
        model.preemption_not_taken();
    }
    Some(())
}
