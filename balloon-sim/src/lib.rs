//! drivers/virtio/virtio_balloon.c (Linux 4.4/4.5) as an executable model: guest memory with a
//! page allocator and OOM notifier chain (sim-core's), balloon compaction's page list, a split
//! virtqueue laid out in guest memory as the virtio specification lays it out, a host device
//! that consumes it, and the driver function for function, with later upstream fixes as
//! switches. [`BalloonSubject`] plugs it into sim-core's checkers.
#![forbid(unsafe_code)]
#![warn(unreachable_pub)]

mod balloon_compaction;
mod check;
mod fixes;
mod guest;
mod host;
mod virtio;
mod virtio_balloon;
mod virtio_ring;
mod world;

// For the CLI registry, the tests and the benches: the checker face of the model.
pub use check::{
    oom_deadlock_scenario, BalloonConfig, BalloonModel, BalloonSubject, Op, Outcome, HOST_FEATURES_ALL,
    MEMORY_BYTES_MAX, ROUNDS_MAX, TASKS_MAX,
};
// For the tests and the CLI: the fix table and its switches.
pub use fixes::{
    BalloonFixes, Fixes, ALIGN_TARGET, AVOID_DUPLICATE_REMOVAL, DEFLATE_ON_OOM_HANDLER, DEQUEUE_WALK_LOCKED,
    FILL_PFNS_INDEX, FIX_IDS, LEAK_AVAILABLE_PAGES, LIST_INTERFACES, MIGRATE_MANAGED_COUNT, OOM_DEADLOCK,
    OOM_SHRINKER, PFN_FORMAT_VIRTIO1, S4_LEAK_FILL, STATS_FIRST_BUFFER, WAIT_WOKEN,
};
// For the loom and shuttle tests and the benches, which drive the kernel side directly: the
// machine, the driver and balloon compaction's migration step.
pub use balloon_compaction::{compact_one, BalloonDevInfo, CompactResult, PAGES_LOCK_CLASS};
pub use guest::Endian;
pub use virtio_balloon::{FillRound, ThreadStep, VirtioBalloon, BALLOON_LOCK_CLASS};
pub use world::World;
// For the virtqueue layout tests, which compare the ring with rust-vmm's virtio-queue.
pub use guest::{GuestMemory, RingMemory};
pub use virtio_ring::{DeviceQueue, VirtQueue, VringLayout, VRING_ALIGN, VRING_DESC_F_NEXT};
