//! mbcache scenarios: property tests, the xattr-sharing workload, loom and shuttle models, the zoo.

mod ext2;
mod gen;
mod incremental;
mod property;
mod regression;
mod threaded;
mod workload;
mod xattr;
mod zoo;

mod loom;
mod shuttle;
