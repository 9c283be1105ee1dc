//! demo: the teaching subsystem's property test (with coverage marks) and its zoo. A new
//! subsystem copied from demo-sim starts with exactly these two files; add `loom.rs` and
//! `shuttle.rs` (`loom.rs` under `--cfg loom`) once its kernel code runs on several
//! threads, and `regression.rs` for a bug with a scripted interleaving.

#[cfg(not(any(loom, shuttle)))]
mod property;
#[cfg(not(any(loom, shuttle)))]
mod threaded;
#[cfg(not(any(loom, shuttle)))]
mod zoo;
