//! The one integration-test binary. Each topic is a module; each module gates its own parts:
//! plain tests and shuttle models (on sim-core's runtime shuttle backend) run by default, loom
//! models under `--cfg loom` (see `cargo xtask test`).

mod balloon;
mod core;
mod demo;
mod mbcache;
mod mbcache2;
mod taskstats;
