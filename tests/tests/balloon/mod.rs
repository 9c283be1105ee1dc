//! balloon: property tests, the zoo, the ring check and threaded campaigns (plain), loom models (`--cfg loom`),
//! shuttle runs with the real actors (plain build, runtime backend).

#[cfg(not(any(loom, shuttle)))]
mod gen;
#[cfg(not(any(loom, shuttle)))]
mod incremental;
#[cfg(loom)]
mod loom;
#[cfg(not(any(loom, shuttle)))]
mod property;
#[cfg(not(any(loom, shuttle)))]
mod ring;
#[cfg(not(loom))]
mod shuttle;
#[cfg(not(any(loom, shuttle)))]
mod threaded;
#[cfg(not(any(loom, shuttle)))]
mod zoo;
