//! sim-core's own checkers, proved on its primitives and on a small per-CPU listener-list model
//! before any subsystem relies on them.

mod listeners;
mod pages;

mod contexts;
mod detectors;
mod determinism;
pub(crate) mod gen_support;
pub(crate) mod harness;
mod incremental;
mod kref;
mod lockdep;
mod loom_detectors;
mod loom_mm;
mod loom_models;
mod loom_rcu;
mod loom_rcu_hlist;
pub(crate) mod loom_support;
mod loom_zoo;
mod mm;
mod observers;
mod rcu;
mod rcu_models;
mod reuse;
mod shuttle_detectors;
mod shuttle_models;
mod shuttle_rcu;
mod threaded;
