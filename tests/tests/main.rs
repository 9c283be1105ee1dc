//! The one integration-test binary. Each topic is a module: plain tests, and loom and shuttle
//! models on sim-core's runtime backend (`sim_core::loom_runner`, `sim_core::threaded`), all
//! from the ordinary test build; no test needs a `--cfg` build.

mod balloon;
mod core;
mod demo;
mod mbcache;
mod mbcache2;
mod taskstats;
