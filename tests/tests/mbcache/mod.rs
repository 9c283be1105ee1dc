//! mbcache scenarios: property tests, the xattr-sharing workload, loom and shuttle models, the zoo.

#[cfg(not(any(loom, shuttle)))]
mod ext2;
#[cfg(not(any(loom, shuttle)))]
mod gen;
#[cfg(not(any(loom, shuttle)))]
mod incremental;
#[cfg(not(any(loom, shuttle)))]
mod property;
#[cfg(not(any(loom, shuttle)))]
mod regression;
#[cfg(not(any(loom, shuttle)))]
mod threaded;
#[cfg(not(loom))]
mod workload;
#[cfg(not(any(loom, shuttle)))]
mod xattr;
#[cfg(not(any(loom, shuttle)))]
mod zoo;

#[cfg(loom)]
mod loom;
#[cfg(not(loom))]
mod shuttle;
