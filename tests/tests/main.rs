//! The one integration-test binary. Each topic is a module; each module gates its own parts:
//! plain tests run by default, loom models under `--cfg loom`, shuttle models under
//! `--cfg shuttle` (see `cargo xtask test`).

mod core;
mod taskstats;
mod mbcache;
mod balloon;
