//! `demo`: the teaching subsystem, and the template every ksim subsystem crate follows.
//!
//! It models no kernel file. It is a reference-counted object cache in the shape of many kernel
//! caches (fs/mbcache.c among them): entries in a table and on an LRU list, handles taken with
//! `get` and dropped with `put`, and a shrinker that frees unused entries. Two fixes, switched
//! off, reintroduce two classic bugs: `shrink-skips-used` (off: the shrinker frees an entry a task
//! holds, whose `put` is then a use after free) and `lru-lock-order` (off: the shrinker takes the
//! two locks in the opposite order to every other path, an ABBA deadlock lockdep reports).
//!
//! To model a new subsystem, copy this crate (the guide's chapter "Modelling a new subsystem"
//! walks through it). Every subsystem crate has the same layout and names:
//!
//! - `fixes.rs`: the fix table (`<Name>Fixes`, `Fixes`, one `FixId` per row, the presets);
//! - the kernel modules, one per kernel concept and named as the kernel names it (here `cache.rs`,
//!   `lru.rs`, `shrink.rs`): the model itself, written against sim-core, every entry point taking
//!   the caller's `&Cx`;
//! - `check/`: the harness, kept apart from the kernel code: `mod.rs` (`<Name>Subject`,
//!   `<Name>Config`), `op.rs` (`Op`, `Outcome`, the strategy), `reference.rs` (`<Name>Model`),
//!   `catalog.rs` (the `Catalog`: zoo rows, scenarios), `scenario.rs` (the scenario bodies).
//!
//! Modules are private; what other crates use is re-exported below, each group with a comment
//! saying who uses it, so the crate's face is this one file.
#![forbid(unsafe_code)]
#![warn(unreachable_pub)]

mod cache;
mod check;
mod fixes;
mod lru;
mod shrink;

// For the CLI registry (`ksim/src/registry.rs`, one `entry::<DemoSubject>()` line) and the
// integration tests (`tests/tests/demo/`): the harness face, which implements
// `sim_core::check::{Subject, Catalog}`.
pub use check::{DemoConfig, DemoModel, DemoSubject, Op, Outcome};
// For tests and the guide: the fix table, its switches and its presets, to build a config with
// some fixes off without spelling switch names as strings.
pub use fixes::{DemoFixes, Fixes, FIX_IDS, LRU_LOCK_ORDER, PRESET_NEW, PRESET_OLD, SHRINK_SKIPS_USED};
