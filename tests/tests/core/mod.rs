//! sim-core's own checkers, proved on its primitives and on a small per-CPU listener-list model
//! before any subsystem relies on them.

mod listeners;

#[cfg(not(any(loom, shuttle)))]
pub(crate) mod harness;
#[cfg(not(any(loom, shuttle)))]
mod lockdep;
#[cfg(loom)]
mod loom_models;
#[cfg(shuttle)]
mod shuttle_models;
