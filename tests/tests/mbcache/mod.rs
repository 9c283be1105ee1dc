//! mbcache scenarios: property tests, the xattr-sharing workload, loom and shuttle models, the zoo.

#[cfg(loom)]
mod loom;
#[cfg(not(any(loom, shuttle)))]
mod property;
#[cfg(not(any(loom, shuttle)))]
mod regression;
#[cfg(not(any(loom, shuttle)))]
mod zoo;
