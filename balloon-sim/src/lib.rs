//! drivers/virtio/virtio_balloon.c (Linux 4.4/4.5) as an executable model: guest memory with a
//! page allocator and OOM notifier chain (sim-core's), balloon compaction's page list, a split
//! virtqueue laid out in guest memory as the virtio specification lays it out, a host device
//! that consumes it, and the driver function for function, with later upstream fixes as
//! switches. [`BalloonSim`] plugs it into sim-core's checkers.
#![forbid(unsafe_code)]

pub mod balloon_compaction;
pub mod fixes;
pub mod guest;
pub mod host;
pub mod model;
pub mod virtio;
pub mod virtio_balloon;
pub mod virtio_ring;

// For the tests, the CLI and the benches: the checker face of the model.
pub use fixes::Fixes;
pub use model::{BalloonConfig, BalloonModel, BalloonSim, Op, Outcome, World};

/// Scripted scenarios, for the tests that compare a fixed and an unfixed run.
pub mod model_scenarios {
    pub use crate::model::oom_deadlock_scenario;
}
