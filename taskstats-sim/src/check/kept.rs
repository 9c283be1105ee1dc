//! The op-level driver's task contexts, kept between operations and renewed ([`Cx::renew`])
//! instead of made anew for each one ([`Sim::cx_for_task`], [`Sim::cx`]): the same serial
//! numbers and the same names given in the trace, so the same trace and hash, without a new
//! context (its allocations, its name looked up and shared) per operation.

use sim_core::{Cx, Sim};

/// The names of the contexts the op-level driver makes, a slot each per task.
pub(super) const NAMES: [&str; 10] =
    ["fork", "run", "open", "socket", "do_exit", "it_real_fn", "sendmsg", "sched", "close", "recvmsg"];

/// Pids below this keep contexts (the rest, rare, are made each time).
const PIDS_KEPT: usize = 1024;

/// A context per (pid, name), by pid then by [`NAMES`]' index; named tasks (`pid` None, the
/// kernel threads [`Sim::cx`] names) in slot 0's row of their own.
#[derive(Debug, Default)]
pub(super) struct KeptCxs {
    by_pid: Vec<[Option<Box<Cx>>; NAMES.len()]>,
    named: [Option<Box<Cx>>; NAMES.len()],
}

impl KeptCxs {
    fn slot(&mut self, pid: Option<u32>, name: usize) -> Option<&mut Option<Box<Cx>>> {
        let Some(pid) = pid else { return Some(&mut self.named[name]) };
        let pid = usize::try_from(pid).ok().filter(|&p| p < PIDS_KEPT)?;
        if self.by_pid.len() <= pid {
            self.by_pid.resize_with(pid + 1, Default::default);
        }
        Some(&mut self.by_pid[pid][name])
    }
}

/// The index of `name` in [`NAMES`] (a driver's literal: a name not there is a bug).
fn index_of(name: &str) -> usize {
    NAMES.iter().position(|&known| known == name).unwrap_or_else(|| panic!("no kept context {name:?}"))
}

/// Runs `f` with the context of task `pid` (or the named task `name`, `pid` None) running `name`
/// on `cpu`: the kept one renewed, as [`Sim::cx_for_task`] (or [`Sim::cx`]) would make it now,
/// or made the first time. Kept again afterwards unless `f` left it holding a lock or inside an
/// RCU read-side section: then it is dropped there, as a context made for the call would be
/// (its drop reports the leaked section).
pub(super) fn with_cx<R>(
    kept: &std::sync::Mutex<KeptCxs>,
    sim: &Sim,
    (pid, name): (Option<u32>, &'static str),
    cpu: u32,
    f: impl FnOnce(&Cx) -> R,
) -> R {
    let index = index_of(name);
    let lock = || kept.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    let taken = lock().slot(pid, index).and_then(Option::take);
    let cx = match taken {
        Some(mut cx) => {
            cx.renew(cpu);
            cx
        }
        None => Box::new(match pid {
            Some(pid) => sim.cx_for_task(pid, name, cpu),
            None => sim.cx(name, cpu),
        }),
    };
    let result = f(&cx);
    if cx.held_count() == 0 && cx.rcu_read_depth() == 0 {
        if let Some(slot) = lock().slot(pid, index) {
            *slot = Some(cx);
        }
    }
    result
}
