//! taskstats: property tests per preset, the zoo, the wire decoder and malformed requests
//! (plain tests); loom models and shuttle runs (sim-core's runtime backend); all from the
//! ordinary test build.

mod ac_ppid;
mod bad_input;
mod config;
mod gen;
mod incremental;
mod locking;
mod loom;
mod property;
mod regression;
mod shrink;
mod shuttle;
mod threaded;
mod uapi;
mod wire;
mod zoo;
