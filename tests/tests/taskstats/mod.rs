//! taskstats: property tests per preset, the zoo, the wire decoder and malformed requests
//! (plain tests); loom models (`--cfg loom`); shuttle runs (plain build, runtime backend).

#[cfg(not(any(loom, shuttle)))]
mod bad_input;
#[cfg(not(loom))]
mod gen;
#[cfg(not(loom))]
mod incremental;
#[cfg(loom)]
mod loom;
#[cfg(not(any(loom, shuttle)))]
mod property;
#[cfg(not(any(loom, shuttle)))]
mod regression;
#[cfg(not(any(loom, shuttle)))]
mod shrink;
#[cfg(not(loom))]
mod shuttle;
#[cfg(not(any(loom, shuttle)))]
mod threaded;
#[cfg(not(any(loom, shuttle)))]
mod uapi;
#[cfg(not(any(loom, shuttle)))]
mod wire;
#[cfg(not(any(loom, shuttle)))]
mod zoo;
