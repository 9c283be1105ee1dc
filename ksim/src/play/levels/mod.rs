//! The levels of each subsystem, one file each.

pub(crate) mod balloon;
pub(crate) mod demo;
pub(crate) mod mbcache;
pub(crate) mod taskstats;
