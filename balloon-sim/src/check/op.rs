//! The op-level simulation's operations, their outcomes and the proptest strategy that draws
//! them.

use proptest::prelude::*;
use serde::{Deserialize, Serialize};
use sim_core::gen::{OpGen, OpRng};
use sim_core::Errno;

use crate::balloon_compaction::CompactResult;

/// One operation of the op-level simulation.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Op {
    /// The host sets `num_pages` (modulo the guest's 4 KiB pages plus one) and signals a
    /// config change.
    SetTarget {
        /// The raw target.
        pages: u32,
    },
    /// The balloon thread runs until it has nothing to do (at most [`ROUNDS_MAX`](crate::check::ROUNDS_MAX) rounds).
    BalloonRun,
    /// Task `task` allocates `pages` pages (modulo half of memory), with `GFP_NOFS` under the
    /// filesystem lock when `nofs`, else `GFP_HIGHUSER_MOVABLE`.
    Alloc {
        /// Which task (modulo the tasks).
        task: u8,
        /// How many pages.
        pages: u16,
        /// Allocate holding the filesystem lock.
        nofs: bool,
    },
    /// Task `task` frees up to `pages` pages.
    Free {
        /// Which task.
        task: u8,
        /// How many.
        pages: u16,
    },
    /// Compaction (or offlining) scans the page frames from `index` and migrates the first
    /// balloon page it isolates to zone `to_zone`.
    Compact {
        /// Where the pfn scan starts (modulo the frames).
        index: u16,
        /// Target zone (modulo the zones).
        to_zone: u8,
    },
    /// The host asks for stats.
    StatsRequest,
    /// The PM core freezes the device.
    Freeze,
    /// The PM core restores it.
    Restore,
}

/// What an operation returned.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Nothing to do (no driver, or frozen).
    Idle,
    /// The host's new target.
    Target {
        /// The target as set.
        target: u32,
    },
    /// The balloon thread ran.
    Run {
        /// `vb->num_pages` after.
        num_pages: u32,
        /// `actual` after.
        actual: u32,
        /// Whether it ran out of puff.
        out_of_puff: bool,
        /// `VIRTIO_BALLOON_PAGES_PER_PAGE`.
        pages_per_page: u32,
    },
    /// Pages allocated.
    Alloc {
        /// How many it got.
        got: u64,
        /// Whether the task was OOM-killed (and its pages freed).
        killed: bool,
        /// Pages the task holds after.
        task_pages: u64,
    },
    /// Pages freed.
    Free {
        /// How many.
        freed: u64,
        /// Pages the task holds after.
        task_pages: u64,
    },
    /// Compaction's result.
    Compact(CompactResult),
    /// Whether the host's request reached the driver.
    Stats(bool),
    /// Freeze happened.
    Frozen,
    /// Restore's result.
    Restored(Result<(), Errno>),
}

/// How often each kind is drawn, in [`Op`]'s order (set target, run, alloc, free, compact,
/// stats, freeze, restore): both [`op_strategy`] and [`generator`] use these, so they cannot
/// drift apart.
const WEIGHTS: [u32; 8] = [3, 4, 3, 2, 2, 1, 1, 1];

/// A strategy for one operation: mostly targets, balloon runs and allocations, with some
/// compaction, stats requests and suspend/resume.
pub(crate) fn op_strategy() -> BoxedStrategy<Op> {
    let [target, run, alloc, free, compact, stats, freeze, restore] = WEIGHTS;
    prop_oneof![
        target => any::<u32>().prop_map(|pages| Op::SetTarget { pages }),
        run => Just(Op::BalloonRun),
        alloc => (any::<u8>(), any::<u16>(), any::<bool>()).prop_map(|(task, pages, nofs)| Op::Alloc { task, pages, nofs }),
        free => (any::<u8>(), any::<u16>()).prop_map(|(task, pages)| Op::Free { task, pages }),
        compact => (any::<u16>(), any::<u8>()).prop_map(|(index, to_zone)| Op::Compact { index, to_zone }),
        stats => Just(Op::StatsRequest),
        freeze => Just(Op::Freeze),
        restore => Just(Op::Restore),
    ]
    .boxed()
}

/// The cheap generator ([`sim_core::gen`]): [`op_strategy`]'s distribution (a kind by
/// [`WEIGHTS`], then every field uniform over its whole type, as `any` draws it) from a plain
/// random stream, so a campaign spends its time on the machine instead of on value trees.
pub(crate) fn generator() -> OpGen<Op> {
    Box::new(|rng: &mut OpRng| match rng.weighted(&WEIGHTS) {
        0 => Op::SetTarget { pages: rng.any_u32() },
        1 => Op::BalloonRun,
        2 => Op::Alloc { task: rng.any_u8(), pages: rng.any_u16(), nofs: rng.any_bool() },
        3 => Op::Free { task: rng.any_u8(), pages: rng.any_u16() },
        4 => Op::Compact { index: rng.any_u16(), to_zone: rng.any_u8() },
        5 => Op::StatsRequest,
        6 => Op::Freeze,
        _ => Op::Restore,
    })
}
