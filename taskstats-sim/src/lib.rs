//! kernel/taskstats.c as an executable model, in the three versions the seeds list (2.6.19,
//! 3.4, 3.8): tasks and thread groups with lazily allocated group stats, pid and user
//! namespaces, cgroups and fd tables, per-CPU listener lists under an rwsem, and the TASKSTATS
//! generic-netlink family speaking real wire bytes.
//!
//! Who uses what: the CLI and the tests drive [`TaskstatsSubject`] through `sim_core::check`
//! (`Subject`, `Reference`, `Catalog`); the byte-level entry point for existing clients is
//! [`Taskstats::netlink_request`]; [`wire`] holds the uapi constants and encoders.
#![forbid(unsafe_code)]

mod check;
mod fixes;
mod listener;
mod scenario;
mod task;
mod taskstats;
pub mod wire;

// For the CLI and the tests: the checker's face.
pub use check::{Config, MaskSpec, Op, Outcome, RequestFacts, Target, TaskstatsModel, TaskstatsSubject};
// For preset and fix listings.
pub use fixes::{Fixes, FIX_NAMES, PRESETS};
// For direct drivers (scenarios, benches, loom/shuttle models).
pub use listener::CpuSet;
pub use listener::{add_del_listener, deliver_to_listeners, prune_invalid, Action, Listener, ListenerList};
pub use task::{Signal, TaskState};
pub use taskstats::{
    parse_cpulist, ExitReport, ForkKind, Params, Taskstats, NR_CPUS, TASKSTATS_CPUMASK_MAXLEN,
};
