//! sim-core's own checkers, proved on its primitives and on a small per-CPU listener-list model
//! before any subsystem relies on them.

mod listeners;
mod pages;

#[cfg(not(any(loom, shuttle)))]
mod harness;
#[cfg(not(any(loom, shuttle)))]
mod lockdep;
#[cfg(loom)]
mod loom_mm;
#[cfg(loom)]
mod loom_models;
#[cfg(not(any(loom, shuttle)))]
mod mm;
#[cfg(shuttle)]
mod shuttle_models;
