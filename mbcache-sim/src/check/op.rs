//! The operations the checkers drive the model with ([`Op`]: one call of fs/mbcache.c's API by
//! some task), what each returned ([`Outcome`]), and the proptest strategy that generates them.

use proptest::prelude::*;
use proptest::strategy::BoxedStrategy;
use serde::{Deserialize, Serialize};
use sim_core::gen::{OpGen, OpRng};
use sim_core::{Errno, ViolationKind};

/// One call of the mbcache API. The ops that get a handle (alloc, get, find_first) name the task
/// that calls (modulo the configured tasks) and the handle belongs to that task; the ops on a held
/// handle run as the task that holds it. Small integers pick targets modulo what exists.
#[allow(missing_docs)]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Op {
    /// `mb_cache_create`; `undersized` passes an entry size one byte too small.
    Create { indexes: u8, bucket_bits: u8, undersized: bool, free_op: bool },
    /// Releases the cache's held handles (as an unmount would), then `mb_cache_destroy`.
    Destroy { cache: u8 },
    /// `mb_cache_entry_alloc`.
    Alloc { task: u8, cache: u8 },
    /// `mb_cache_entry_insert` through a held exclusive handle.
    Insert { handle: u8, device: u8, block: u16, keys: [u8; 2] },
    /// `mb_cache_entry_release`.
    Release { handle: u8 },
    /// `mb_cache_entry_get`.
    Get { task: u8, cache: u8, device: u8, block: u16 },
    /// `mb_cache_entry_find_first`.
    FindFirst { task: u8, cache: u8, index: u8, device: u8, key: u8 },
    /// `mb_cache_entry_find_next` on a held handle from a find, continuing its walk (same
    /// index, device and key, as the API asks).
    FindNext { handle: u8 },
    /// `mb_cache_entry_dup`.
    Dup { handle: u8 },
    /// `mb_cache_entry_takeout`.
    Takeout { handle: u8 },
    /// `mb_cache_entry_free` (with `exclusive-get`: of an exclusive handle, as the fixed API asks).
    Free { handle: u8 },
    /// `mb_cache_shrink` of a device.
    Shrink { cache: u8, device: u8 },
    /// The shrinker callback; `nofs` calls it from a GFP_NOFS reclaim (free callbacks refuse).
    ShrinkFn { nr_to_scan: u8, nofs: bool },
    /// `setxattr` on an inode of the ext2 filesystem (its own mbcache world): `ext2_xattr_set()`.
    /// A task with a step pending (it holds a find handle, or sleeps in a get) continues that
    /// step instead.
    XattrSet { task: u8, inode: u8, value: u8 },
    /// The last `iput` of an ext2 inode: `ext2_xattr_delete_inode()` (or the pending step).
    XattrDelete { task: u8, inode: u8 },
}

/// What one op returned, and the state the reference checks after it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Outcome {
    /// The call's result.
    pub result: OpResult,
    /// The LRU's entry serials, head first (shared with the walk that read them, which the
    /// next op's outcome reuses while the LRU is unchanged).
    pub lru: std::sync::Arc<[u64]>,
    /// Each live cache's `c_entry_count`, in creation order (shared with the next op's outcome
    /// while no count changes).
    pub counts: std::sync::Arc<[i32]>,
    /// Threaded cases only (None and empty at op level): the thread that ran the op (its
    /// handles are the ones the op picks among), or [`SETUP_TASK`] for the set-up prefix.
    pub task: Option<u32>,
    /// Threaded cases only: the entries a shrink took off the LRU, in the order it took them.
    /// The LRU is not part of a threaded outcome (a snapshot after the call is not atomic with
    /// it), and which entries are on it depends on releases a thread makes as it finishes,
    /// which are no operation; the reference checks each of these was unused, in LRU order.
    pub shrunk: Vec<u64>,
}

/// [`Outcome::task`] of the set-up prefix's operations in a threaded case.
pub(crate) const SETUP_TASK: u32 = u32::MAX;

/// A call's result.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum OpResult {
    /// Nothing to apply the op to.
    Skipped,
    /// An errno.
    Errno(Errno),
    /// Done, nothing returned.
    Done,
    /// A cache was created.
    Created,
    /// `mb_cache_destroy`'s orphan count.
    Destroyed { orphans: i32 },
    /// An entry (its serial) or none.
    Entry(Option<u64>),
    /// The shrinker's count.
    Count(i32),
    /// The call would sleep (exclusive-get, one thread).
    WouldBlock,
    /// An oops or memory misuse, by violation kind.
    Oops(ViolationKind),
    /// An xattr call stopped at the operation boundary, a step pending for its task.
    Pending,
    /// Refused: the task would unhash an entry it is itself walking with a find handle (an API
    /// misuse by one task, not a race between two; see `MbcacheConfig::misuse_reported`).
    Misuse,
}

/// The operation mix (API ops, the ext2 xattr ops, or both, three to one): mostly entry traffic
/// (alloc, insert, release, lookups), some cache lifetime and shrinking, rarely the racy
/// `dup`/`takeout`.
pub(crate) fn strategy(api: bool, xattr: bool) -> BoxedStrategy<Op> {
    let task = || 0u8..4;
    let xattr_ops = prop_oneof![
        3 => (task(), 0u8..8, 0u8..4).prop_map(|(task, inode, value)| Op::XattrSet { task, inode, value }),
        1 => (task(), 0u8..8).prop_map(|(task, inode)| Op::XattrDelete { task, inode }),
    ];
    match (api, xattr) {
        (true, true) => prop_oneof![3 => api_strategy(), 1 => xattr_ops].boxed(),
        (false, true) => xattr_ops.boxed(),
        _ => api_strategy(),
    }
}

/// The API ops' mix (see [`strategy`]).
fn api_strategy() -> BoxedStrategy<Op> {
    let small = || 0u8..8;
    let task = || 0u8..4;
    prop_oneof![
        2 => (0u8..3, 0u8..3, prop::bool::weighted(0.1), any::<bool>()).prop_map(|(indexes, bucket_bits, undersized, free_op)| Op::Create { indexes, bucket_bits, undersized, free_op }),
        1 => small().prop_map(|cache| Op::Destroy { cache }),
        6 => (task(), small()).prop_map(|(task, cache)| Op::Alloc { task, cache }),
        6 => (small(), small(), 0u16..16, (small(), small())).prop_map(|(handle, device, block, (k0, k1))| Op::Insert { handle, device, block, keys: [k0, k1] }),
        6 => small().prop_map(|handle| Op::Release { handle }),
        4 => (task(), small(), small(), 0u16..16).prop_map(|(task, cache, device, block)| Op::Get { task, cache, device, block }),
        4 => (task(), small(), small(), small(), small()).prop_map(|(task, cache, index, device, key)| Op::FindFirst { task, cache, index, device, key }),
        4 => small().prop_map(|handle| Op::FindNext { handle }),
        1 => small().prop_map(|handle| Op::Dup { handle }),
        1 => small().prop_map(|handle| Op::Takeout { handle }),
        2 => small().prop_map(|handle| Op::Free { handle }),
        1 => (small(), small()).prop_map(|(cache, device)| Op::Shrink { cache, device }),
        2 => (0u8..5, any::<bool>()).prop_map(|(nr_to_scan, nofs)| Op::ShrinkFn { nr_to_scan, nofs }),
    ]
    .boxed()
}

/// The API ops' weights, in [`api_strategy`]'s order (the cheap generator picks by them).
const API_WEIGHTS: [u32; 13] = [2, 1, 6, 6, 6, 4, 4, 4, 1, 1, 2, 1, 2];

/// The cheap generator ([`sim_core::gen`]): the same distribution as [`strategy`] (the same three
/// to one split between API and xattr ops, the same weights and ranges within each), drawn from
/// a plain random stream instead of a proptest value tree, so a campaign spends its time on the
/// model rather than on building and discarding trees.
pub(crate) fn generator(api: bool, xattr: bool) -> OpGen<Op> {
    match (api, xattr) {
        (true, true) => {
            Box::new(|rng: &mut OpRng| if rng.chance(3, 4) { api_op(rng) } else { xattr_op(rng) })
        }
        (false, true) => Box::new(xattr_op),
        _ => Box::new(api_op),
    }
}

/// One xattr op, as [`strategy`]'s xattr alternatives draw it (set three times in four).
fn xattr_op(rng: &mut OpRng) -> Op {
    let task = rng.u8_below(4);
    let inode = rng.u8_below(8);
    if rng.chance(3, 4) {
        Op::XattrSet { task, inode, value: rng.u8_below(4) }
    } else {
        Op::XattrDelete { task, inode }
    }
}

/// One API op, as [`api_strategy`] draws it: a kind by [`API_WEIGHTS`], then its fields from the
/// same ranges.
fn api_op(rng: &mut OpRng) -> Op {
    let small = |rng: &mut OpRng| rng.u8_below(8);
    match rng.weighted(&API_WEIGHTS) {
        0 => Op::Create {
            indexes: rng.u8_below(3),
            bucket_bits: rng.u8_below(3),
            undersized: rng.chance(1, 10),
            free_op: rng.any_bool(),
        },
        1 => Op::Destroy { cache: small(rng) },
        2 => Op::Alloc { task: rng.u8_below(4), cache: small(rng) },
        3 => Op::Insert {
            handle: small(rng),
            device: small(rng),
            block: rng.below(16) as u16,
            keys: [small(rng), small(rng)],
        },
        4 => Op::Release { handle: small(rng) },
        5 => Op::Get {
            task: rng.u8_below(4),
            cache: small(rng),
            device: small(rng),
            block: rng.below(16) as u16,
        },
        6 => Op::FindFirst {
            task: rng.u8_below(4),
            cache: small(rng),
            index: small(rng),
            device: small(rng),
            key: small(rng),
        },
        7 => Op::FindNext { handle: small(rng) },
        8 => Op::Dup { handle: small(rng) },
        9 => Op::Takeout { handle: small(rng) },
        10 => Op::Free { handle: small(rng) },
        11 => Op::Shrink { cache: small(rng), device: small(rng) },
        _ => Op::ShrinkFn { nr_to_scan: rng.u8_below(5), nofs: rng.any_bool() },
    }
}

impl Op {
    /// The task a handle-getting op names (before reducing modulo the configured tasks); None
    /// for the other ops (those on a held handle run as its holder).
    pub fn task(&self) -> Option<u8> {
        match *self {
            Op::Alloc { task, .. }
            | Op::Get { task, .. }
            | Op::FindFirst { task, .. }
            | Op::XattrSet { task, .. }
            | Op::XattrDelete { task, .. } => Some(task),
            _ => None,
        }
    }

    /// Whether the op runs on the ext2 filesystem (`setxattr`, inode deletion) rather than
    /// calling the mbcache API on the subject's own caches.
    pub fn is_xattr(&self) -> bool {
        matches!(self, Op::XattrSet { .. } | Op::XattrDelete { .. })
    }
}

/// Picks `pick` modulo the number of positions `eligible` allows, in order.
pub(crate) fn pick_among(pick: u8, eligible: &[usize]) -> Option<usize> {
    if eligible.is_empty() {
        None
    } else {
        Some(eligible[pick as usize % eligible.len()])
    }
}

/// [`pick_among`] of every position `0..len`, with no list made.
pub(crate) fn pick_index(pick: u8, len: usize) -> Option<usize> {
    (len > 0).then(|| pick as usize % len)
}

/// [`pick_among`] of [`positions`]`(held, keep)`, with no list made: counts the handles `keep`
/// accepts, then finds the one `pick` names (the same one).
pub(crate) fn pick_where<H>(pick: u8, held: &[H], keep: impl Fn(&H) -> bool) -> Option<usize> {
    let eligible = held.iter().filter(|h| keep(h)).count();
    let nth = pick_index(pick, eligible)?;
    held.iter().enumerate().filter(|(_, h)| keep(h)).nth(nth).map(|(at, _)| at)
}

/// The positions of the held handles `keep` accepts, in order (a task's own handles, say).
pub(crate) fn positions<H>(held: &[H], keep: impl Fn(&H) -> bool) -> Vec<usize> {
    held.iter().enumerate().filter(|(_, h)| keep(h)).map(|(at, _)| at).collect()
}

/// Every position `0..len`.
#[cfg(feature = "threaded")]
pub(crate) fn all_positions(len: usize) -> Vec<usize> {
    (0..len).collect()
}
