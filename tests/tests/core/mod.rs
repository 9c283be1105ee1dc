//! sim-core's own checkers, proved on its primitives and on a small per-CPU listener-list model
//! before any subsystem relies on them.

mod listeners;
mod pages;

#[cfg(not(any(loom, shuttle)))]
mod detectors;
#[cfg(not(any(loom, shuttle)))]
mod determinism;
#[cfg(not(any(loom, shuttle)))]
pub(crate) mod harness;
#[cfg(not(any(loom, shuttle)))]
mod incremental;
#[cfg(not(any(loom, shuttle)))]
mod kref;
#[cfg(not(any(loom, shuttle)))]
mod lockdep;
#[cfg(loom)]
mod loom_detectors;
#[cfg(loom)]
mod loom_mm;
#[cfg(loom)]
mod loom_models;
#[cfg(loom)]
mod loom_rcu;
#[cfg(not(loom))]
mod loom_zoo;
#[cfg(not(any(loom, shuttle)))]
mod mm;
#[cfg(not(any(loom, shuttle)))]
mod rcu;
mod rcu_models;
#[cfg(not(loom))]
mod shuttle_detectors;
#[cfg(not(loom))]
mod shuttle_models;
#[cfg(not(loom))]
mod shuttle_rcu;
#[cfg(not(any(loom, shuttle)))]
mod threaded;
