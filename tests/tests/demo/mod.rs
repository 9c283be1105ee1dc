//! demo: the teaching subsystem's property test (with coverage marks) and its zoo. A new
//! subsystem copied from demo-sim starts with exactly these two files; add `loom.rs` and
//! `shuttle.rs` (both run from the ordinary test build) once its kernel code runs on several
//! threads, and `regression.rs` for a bug with a scripted interleaving.

mod property;
mod threaded;
mod zoo;
