//! balloon: property tests, the zoo and the ring check (plain), loom models (`--cfg loom`),
//! shuttle runs with the real actors (`--cfg shuttle`).

#[cfg(loom)]
mod loom;
#[cfg(not(any(loom, shuttle)))]
mod property;
#[cfg(not(any(loom, shuttle)))]
mod ring;
#[cfg(shuttle)]
mod shuttle;
#[cfg(not(any(loom, shuttle)))]
mod zoo;
