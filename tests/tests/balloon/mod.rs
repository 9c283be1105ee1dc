//! balloon: property tests, the zoo, the ring check and threaded campaigns, loom models and
//! shuttle runs with the real actors (loom and shuttle on sim-core's runtime backend); all from
//! the ordinary test build.

mod gen;
mod incremental;
mod loom;
mod property;
mod ring;
mod shuttle;
mod threaded;
mod zoo;
