//! kernel/taskstats.c as an executable model, in the three versions the seeds list (2.6.19,
//! 3.4, 3.8): tasks and thread groups with lazily allocated group stats, pid and user
//! namespaces, cgroups and fd tables, per-CPU listener lists under an rwsem, and the TASKSTATS
//! generic-netlink family speaking real wire bytes.
//!
//! Who uses what: the CLI and the tests drive [`TaskstatsSubject`] through `sim_core::check`
//! (`Subject`, `Reference`, `Catalog`); the byte-level entry point for existing clients is
//! [`Taskstats::netlink_request`]; [`wire`] holds the uapi constants and encoders.
//!
//! Modelling decisions a reader should know:
//! - 2.6.19 records are `struct taskstats` version 1 (72 bytes: the delay counters), which is
//!   what the seed's fill_pid() fills (delay accounting only); 3.4 and 3.8 report version 8
//!   (328 bytes). TASKSTATS_TYPE_NULL padding ([`Params::needs_padding`]) exists only in the
//!   version-8 era kernels.
//! - Exits never overlap in the op-level checker, so per-CPU sequence numbers arrive in order
//!   there; under shuttle two exits on one CPU can deliver out of order, as in the kernel.
//! - Registration that fails part-way returns 0 in every preset, as both listings do; the
//!   cleanup loop may remove the port's earlier registrations (see the regression tests).
//! - Attribute types are masked with NLA_TYPE_MASK in every preset; the bind(2) EADDRINUSE is
//!   reported as EBUSY (sim_core::Errno has no EADDRINUSE).
//! - Invariants of a fix that is off are checked only when [`Params::audit`] names it (the zoo
//!   and the CLI do); a preset's property test checks the contract of the kernel it models.
#![forbid(unsafe_code)]
#![warn(unreachable_pub)]

mod check;
pub mod fixes;
mod listener;
mod mm;
mod skb;
mod task;
mod taskstats;
pub mod wire;

// For the CLI registry and the tests: the checker's face (Subject, Reference, Catalog), the
// operation vocabulary, and the helpers that make a task's context for a model entry point.
pub use check::{
    netlink_send, sender_cx, task_cx, MaskSpec, Op, Outcome, RequestFacts, Target, TaskstatsConfig,
    TaskstatsModel, TaskstatsSubject, Work,
};
// For preset and fix listings.
pub use fixes::Fixes;
// For direct drivers (scenarios, benches, loom/shuttle models).
pub use listener::CpuSet;
pub use listener::{add_del_listener, deliver_to_listeners, prune_invalid, Action, Listener, ListenerList};
pub use task::{Signal, StatsAccess, TaskState};
pub use taskstats::{
    parse_cpulist, ExitReport, ForkKind, Params, Preemption, Taskstats, NR_CPUS, PID_MAX_DEFAULT,
    TASKSTATS_CPUMASK_MAXLEN,
};
