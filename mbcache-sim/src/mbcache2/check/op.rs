//! mbcache2's operations, what they return, and the strategy that generates them.
//!
//! An operation is what a filesystem does with its cache: mount and unmount (create and destroy
//! the cache), ext4's xattr block sharing (a new block, a find, a find-next, a reuse, a release),
//! a direct `mb_cache_entry_get` and put, memory pressure (the shrinker's scan) and a kworker
//! running the queued shrink work. Tasks hold the entries they found across operations, so
//! another task's operation can come between a find and the reuse: that is how the op-level
//! simulation interleaves two tasks at operation boundaries.

use proptest::prelude::*;
use proptest::strategy::BoxedStrategy;
use serde::{Deserialize, Serialize};
use sim_core::gen::{OpGen, OpRng};
use sim_core::Errno;

use super::Mbcache2Config;
use crate::mbcache2::shrinker::ScanStep;

/// One operation. Filesystems, blocks and held entries are chosen by index modulo what exists.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Op {
    /// Mounts filesystem `fs` (`mb_cache_create`); EBUSY when mounted.
    Mount {
        /// The filesystem.
        fs: u8,
    },
    /// Unmounts `fs` (`mb_cache_destroy`); EBUSY while a task holds one of its entries or waits.
    Umount {
        /// The filesystem.
        fs: u8,
    },
    /// A new xattr block with content `key` on `fs`, inserted into its cache.
    XattrNew {
        /// The task.
        task: u8,
        /// The filesystem.
        fs: u8,
        /// The content hash.
        key: u8,
    },
    /// Looks for a reusable block with content `key` (`mb_cache_entry_find_first`); the task
    /// holds what it finds.
    XattrFind {
        /// The task (holds the entry found).
        task: u8,
        /// The filesystem.
        fs: u8,
        /// The content hash.
        key: u8,
    },
    /// Moves the task's `index`-th held entry on (`mb_cache_entry_find_next`).
    XattrFindNext {
        /// The task.
        task: u8,
        /// Which held entry, modulo how many.
        index: u8,
    },
    /// Reuses the block behind the task's `index`-th held entry and drops it.
    XattrReuse {
        /// The task.
        task: u8,
        /// Which held entry, modulo how many.
        index: u8,
    },
    /// Reads an allocated block's xattrs (`ext4_xattr_block_get`), inserting it into the cache.
    XattrRead {
        /// The task.
        task: u8,
        /// The filesystem.
        fs: u8,
        /// Which allocated block, modulo how many.
        block: u8,
    },
    /// Drops one reference to an allocated block (`ext4_xattr_release_block`).
    XattrRelease {
        /// The task.
        task: u8,
        /// The filesystem.
        fs: u8,
        /// Which allocated block, modulo how many.
        block: u8,
    },
    /// `mb_cache_entry_get` of an allocated block's entry; the task holds it.
    Get {
        /// The task.
        task: u8,
        /// The filesystem.
        fs: u8,
        /// Which allocated block, modulo how many.
        block: u8,
    },
    /// `mb_cache_entry_put` of the task's `index`-th held entry.
    Put {
        /// The task.
        task: u8,
        /// Which held entry, modulo how many.
        index: u8,
    },
    /// Memory pressure: the shrinker scans `nr` entries of `fs`'s cache.
    Shrink {
        /// The task reclaim runs in.
        task: u8,
        /// The filesystem.
        fs: u8,
        /// `nr_to_scan`.
        nr: u8,
    },
    /// A kworker runs every queued shrink work item.
    RunWork,
}

/// What an operation returned.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Done.
    Done,
    /// Failed with an errno.
    Failed(Errno),
    /// A new block, or the block behind an entry found or got.
    Block(u64),
    /// A reuse: the block's `h_refcount` now.
    Reused(u32),
    /// A reuse undone (entry unhashed or not reusable, or block full).
    Undone,
    /// A whole sharing call (`Mbcache2Config::whole_calls`): the block shared and its
    /// `h_refcount` now.
    Shared {
        /// The block.
        block: u64,
        /// Its `h_refcount` after the reuse.
        count: u32,
    },
    /// Entries a shrink (or the shrink work) freed.
    Freed(u64),
    /// A whole call's scan (`Mbcache2Config::whole_calls`): each step's entry and whether it
    /// left the cache. Which entries a scan overlapping other calls keeps depends on what they
    /// hold at that instant, so the judge checks the steps rather than predicting them.
    Scanned(Vec<ScanStep>),
    /// A whole call's run of the shrink work, more than once: another kworker handed the item
    /// over while this one ran it (non-reentrancy); each run's steps.
    Reran(Vec<Vec<ScanStep>>),
    /// A whole call's `RunWork` that found the item executing on another kworker and left it
    /// to that one.
    Deferred,
    /// The task is waiting in `mb_cache_entry_wait_unused()` and did nothing.
    Blocked,
    /// The task holds no entry (or no block is allocated, or the task holds its most).
    Nothing,
}

/// Operations over the config's filesystems, keys and tasks: xattr work weighted up, so blocks
/// are shared, found, reused and released by different tasks.
pub(crate) fn strategy(config: &Mbcache2Config) -> BoxedStrategy<Op> {
    let tasks = config.tasks.max(1);
    let fss = config.filesystems.max(1);
    let keys = config.keys.max(1);
    prop_oneof![
        1 => (0..fss).prop_map(|fs| Op::Mount { fs }),
        1 => (0..fss).prop_map(|fs| Op::Umount { fs }),
        6 => (0..tasks, 0..fss, 0..keys).prop_map(|(task, fs, key)| Op::XattrNew { task, fs, key }),
        4 => (0..tasks, 0..fss, 0..keys).prop_map(|(task, fs, key)| Op::XattrFind { task, fs, key }),
        1 => (0..tasks, any::<u8>()).prop_map(|(task, index)| Op::XattrFindNext { task, index }),
        3 => (0..tasks, any::<u8>()).prop_map(|(task, index)| Op::XattrReuse { task, index }),
        3 => (0..tasks, 0..fss, any::<u8>()).prop_map(|(task, fs, block)| Op::XattrRelease { task, fs, block }),
        1 => (0..tasks, 0..fss, any::<u8>()).prop_map(|(task, fs, block)| Op::Get { task, fs, block }),
        2 => (0..tasks, 0..fss, any::<u8>()).prop_map(|(task, fs, block)| Op::XattrRead { task, fs, block }),
        2 => (0..tasks, any::<u8>()).prop_map(|(task, index)| Op::Put { task, index }),
        1 => (0..tasks, 0..fss, 1..=8u8).prop_map(|(task, fs, nr)| Op::Shrink { task, fs, nr }),
        1 => Just(Op::RunWork),
    ]
    .boxed()
}

/// [`strategy`]'s weights, in its order (mount, unmount, new, find, find-next, reuse, release,
/// get, read, put, shrink, run-work): the cheap generator draws the same mix.
const WEIGHTS: [u32; 12] = [1, 1, 6, 4, 1, 3, 3, 1, 2, 2, 1, 1];

/// The cheap generator ([`sim_core::check::Subject::op_gen`]): one operation as [`strategy`]
/// draws it, a kind by [`WEIGHTS`] and its fields from the same ranges, without a proptest
/// value tree.
pub(crate) fn generator(config: &Mbcache2Config) -> OpGen<Op> {
    let (tasks, fss, keys) = (config.tasks.max(1), config.filesystems.max(1), config.keys.max(1));
    Box::new(move |rng: &mut OpRng| {
        let kind = rng.weighted(&WEIGHTS);
        let (task, fs) = (rng.u8_below(tasks), rng.u8_below(fss));
        match kind {
            0 => Op::Mount { fs },
            1 => Op::Umount { fs },
            2 => Op::XattrNew { task, fs, key: rng.u8_below(keys) },
            3 => Op::XattrFind { task, fs, key: rng.u8_below(keys) },
            4 => Op::XattrFindNext { task, index: rng.any_u8() },
            5 => Op::XattrReuse { task, index: rng.any_u8() },
            6 => Op::XattrRelease { task, fs, block: rng.any_u8() },
            7 => Op::Get { task, fs, block: rng.any_u8() },
            8 => Op::XattrRead { task, fs, block: rng.any_u8() },
            9 => Op::Put { task, index: rng.any_u8() },
            10 => Op::Shrink { task, fs, nr: rng.u8_in(1, 8) },
            _ => Op::RunWork,
        }
    })
}

impl From<Result<(), Errno>> for Outcome {
    fn from(result: Result<(), Errno>) -> Outcome {
        result.map_or_else(Outcome::Failed, |()| Outcome::Done)
    }
}
