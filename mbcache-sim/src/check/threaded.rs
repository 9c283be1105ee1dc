//! mbcache (the 2.6 model) under threaded campaigns (`ksim fuzz mbcache --threads N`): one
//! registry shared by the threads, each thread an inode task with its own handles, sleeping where
//! the kernel sleeps (`Waits::Sleep`, as the shuttle workload does) instead of returning
//! `WouldBlock`.
//!
//! `mb_cache_create` and `mb_cache_destroy` need a quiescent world (a filesystem's mount and
//! unmount: no inode task runs meanwhile) and run in the set-up prefix only. Every API call's
//! outcome is judged by linearizability against [`MbcacheModel`](super::MbcacheModel) in its
//! threaded mode (`MbcacheConfig::threaded`; its module comment says what it does not judge and
//! why: the shrinker's count, and how many entries a shrink could have taken). A threaded outcome
//! carries no LRU snapshot or entry counts (read after the call, they are not atomic with it): it
//! names the thread, and a shrink lists the entries it took. The API calls and the ext2 xattr
//! calls work on two separate mbcache worlds, so the search takes them apart ([`key`]); the xattr
//! calls are judged by the ext2 world's invariants, lockdep and the detectors, their outcomes only
//! by kind. No outcome is relaxed.
//!
//! [`key`]: ThreadedSubject::key

use std::collections::BTreeMap;
use std::sync::{Mutex as StdMutex, MutexGuard, PoisonError};

use sim_core::fault::{FaultAttr, FaultKind, FaultPlan};
use sim_core::mm::Gfp;
use sim_core::threaded::ThreadedSubject;
use sim_core::{Cx, Sim, Violation, ViolationKind};

use super::op::SETUP_TASK;
use super::op::{all_positions, pick_among};
use super::{Held, MbcacheConfig, MbcacheSubject, Op, OpResult, Outcome, CACHE_NAMES};
use crate::cache::{CacheRef, FreeOp};
use crate::entry::Handle;
use crate::ext2_xattr::{Ext2Xattr, Step};
use crate::fixes::EXCLUSIVE_GET;
use crate::registry::{bdev_address, MbError, Registry, Waits, ENTRY_HEADER_SIZE, ENTRY_INDEX_SIZE};

/// The registry, the caches made in the prefix, and each task's handles (checker state).
#[derive(Debug)]
pub struct MbcacheShared {
    config: MbcacheConfig,
    registry: Registry,
    caches: StdMutex<Vec<CacheRef>>,
    /// Handles by the holding context's name (`thread-N`, `setup`).
    handles: StdMutex<BTreeMap<String, Vec<Held>>>,
    /// Entries allocated and not yet inserted, by entry id.
    fresh: StdMutex<std::collections::BTreeSet<u64>>,
    /// The ext2 filesystem (its own mbcache world), which the xattr ops drive.
    ext2: Ext2Xattr,
    /// Inodes whose `xattr_sem` an xattr call holds across the model's operation boundary
    /// (checker state: the model drops the guard there, the kernel does not).
    inodes: StdMutex<std::collections::BTreeSet<usize>>,
}

type Applied = Result<OpResult, MbError>;

/// `Held::task` in the threaded adapter: there the holding task is the map key (the thread's
/// context name), since each thread is one task; the op's own `task` field is the op-level
/// subject's choice among its tasks and is ignored.
const THREAD_TASK: u32 = u32::MAX;

/// The positions of the handles `Free` may take: writers only when the fixed API asks for an
/// exclusive handle (`exclusive-get`), any otherwise.
fn writer_positions(writers: impl Iterator<Item = bool>, only_writers: bool) -> Vec<usize> {
    writers.enumerate().filter(|(_, writer)| *writer || !only_writers).map(|(at, _)| at).collect()
}

impl MbcacheShared {
    fn caches(&self) -> Vec<CacheRef> {
        self.caches.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }

    fn handles(&self) -> MutexGuard<'_, BTreeMap<String, Vec<Held>>> {
        self.handles.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn cache_at(&self, pick: u8) -> Option<CacheRef> {
        let caches = self.caches();
        pick_among(pick, &all_positions(caches.len())).map(|at| caches[at])
    }

    fn bdev(&self, device: u8) -> u64 {
        bdev_address(u32::from(device) % self.config.devices)
    }

    fn block(&self, block: u16) -> u64 {
        u64::from(block) % u64::from(self.config.blocks)
    }

    fn push(&self, cx: &Cx, handle: Option<Handle>, writer: bool, walk: Option<(u32, u32, u32)>) -> OpResult {
        match handle {
            Some(handle) => {
                let serial = handle.entry_id();
                self.handles().entry(cx.name().to_string()).or_default().push(Held {
                    task: THREAD_TASK,
                    handle,
                    writer,
                    walk,
                });
                OpResult::Entry(Some(serial))
            }
            None => OpResult::Entry(None),
        }
    }

    /// Takes the `pick`-th of this task's handles among those `eligible` says; None when none.
    fn take(&self, cx: &Cx, pick: u8, eligible: impl Fn(&[Held]) -> Vec<usize>) -> Option<Held> {
        let mut handles = self.handles();
        let mine = handles.entry(cx.name().to_string()).or_default();
        let at = pick_among(pick, &eligible(mine))?;
        Some(mine.remove(at))
    }

    /// Releases every handle this task holds, before a lookup that may sleep on another task's
    /// entry: an inode task holds one xattr block at a time (ext2/ext3 release the old block
    /// before looking up a new one), so two tasks never wait on each other's entries.
    fn release_mine(&self, cx: &Cx) -> Result<(), MbError> {
        let mine = std::mem::take(self.handles().entry(cx.name().to_string()).or_default());
        for held in mine {
            self.registry.release(cx, held.handle)?;
        }
        Ok(())
    }

    /// A copy of the `pick`-th of this task's handles, left in place.
    fn peek(&self, cx: &Cx, pick: u8) -> Option<Held> {
        let mut handles = self.handles();
        let mine = handles.entry(cx.name().to_string()).or_default();
        pick_among(pick, &all_positions(mine.len())).map(|at| mine[at].clone())
    }

    /// `mb_cache_create` (prefix only).
    fn create(&self, cx: &Cx, indexes: u8, bucket_bits: u8, undersized: bool, free_op: bool) -> Applied {
        let count = self.caches().len();
        if count >= self.config.caches_max {
            return Ok(OpResult::Skipped);
        }
        let indexes = u32::from(indexes) % 3;
        let bits = u32::from(bucket_bits) % (self.config.bucket_bits_max + 1);
        let size = ENTRY_HEADER_SIZE + u64::from(indexes) * ENTRY_INDEX_SIZE - u64::from(undersized);
        let free_op = free_op.then_some(FreeOp { fails_without_fs: true });
        match self.registry.create(cx, CACHE_NAMES[count % CACHE_NAMES.len()], free_op, size, indexes, bits) {
            Ok(cache) => {
                self.caches.lock().unwrap_or_else(PoisonError::into_inner).push(cache);
                Ok(OpResult::Created)
            }
            Err(errno) => Ok(OpResult::Errno(errno)),
        }
    }

    /// `mb_cache_destroy` after every task released its handles on it (prefix only).
    fn destroy(&self, cx: &Cx, cache: u8) -> Applied {
        let Some(cache) = self.cache_at(cache) else { return Ok(OpResult::Skipped) };
        let mut released = Vec::new();
        for list in self.handles().values_mut() {
            let (on_cache, kept) =
                std::mem::take(list).into_iter().partition(|h| h.handle.cache_ref() == cache);
            *list = kept;
            released.extend::<Vec<Held>>(on_cache);
        }
        for held in released {
            self.registry.release(cx, held.handle)?;
        }
        let destroyed = self.registry.destroy(cx, cache)?;
        self.caches.lock().unwrap_or_else(PoisonError::into_inner).retain(|c| *c != cache);
        Ok(OpResult::Destroyed { orphans: destroyed.orphans })
    }

    fn insert(&self, cx: &Cx, handle: u8, device: u8, block: u16, keys: [u8; 2]) -> Applied {
        let Some(held) = self.peek_fresh(cx, handle) else { return Ok(OpResult::Skipped) };
        self.fresh.lock().unwrap_or_else(PoisonError::into_inner).remove(&held.handle.entry_id());
        let indexes = self.registry.indexes_count(cx, held.handle.cache_ref())?;
        let keys: Vec<u32> =
            keys[..indexes as usize].iter().map(|k| u32::from(*k) % self.config.keys).collect();
        self.registry.insert(cx, &held.handle, self.bdev(device), self.block(block), &keys)?;
        Ok(OpResult::Done)
    }

    /// The `pick`-th of this task's handles on entries it allocated and has not inserted: the
    /// kernel inserts only a fresh entry (`ext2_xattr_cache_insert` after
    /// `mb_cache_entry_alloc`), never one a lookup returned, which another task may be walking
    /// through.
    fn peek_fresh(&self, cx: &Cx, pick: u8) -> Option<Held> {
        let fresh = self.fresh.lock().unwrap_or_else(PoisonError::into_inner).clone();
        let mut handles = self.handles();
        let mine = handles.entry(cx.name().to_string()).or_default();
        let eligible: Vec<usize> = (0..mine.len())
            .filter(|&at| mine[at].writer && fresh.contains(&mine[at].handle.entry_id()))
            .collect();
        let at = pick_among(pick, &eligible)?;
        Some(mine[at].clone())
    }

    fn find_first(&self, cx: &Cx, cache: u8, index: u8, device: u8, key: u8) -> Applied {
        let Some(cache) = self.cache_at(cache) else { return Ok(OpResult::Skipped) };
        let indexes = self.registry.indexes_count(cx, cache)?;
        if indexes == 0 {
            return Ok(OpResult::Skipped);
        }
        self.release_mine(cx)?;
        let (index, device, key) = (
            u32::from(index) % indexes,
            u32::from(device) % self.config.devices,
            u32::from(key) % self.config.keys,
        );
        let found = self.registry.find_first(cx, cache, index, bdev_address(device), key)?;
        Ok(self.push(cx, found, false, Some((index, device, key))))
    }

    fn find_next(&self, cx: &Cx, handle: u8) -> Applied {
        let walking = |mine: &[Held]| (0..mine.len()).filter(|at| mine[*at].walk.is_some()).collect();
        let Some(held) = self.take(cx, handle, walking) else { return Ok(OpResult::Skipped) };
        self.release_mine(cx)?;
        let walk @ (index, device, key) = held.walk.expect("a walking handle");
        let found = self.registry.find_next(cx, held.handle, index, bdev_address(device), key)?;
        Ok(self.push(cx, found, false, Some(walk)))
    }

    /// An xattr system call on `inode` by this thread's task, run to its end: where the model
    /// stops at an operation boundary ([`Step::Pending`]) the thread continues at once, other
    /// threads' calls on other inodes interleaving there (the 2.6.10/2.6.11 windows). The inode
    /// is claimed for the whole call, as its held `xattr_sem` would make other tasks wait; a
    /// call on an inode another thread's call holds is refused as WouldBlock, as the op-level
    /// subject refuses it.
    fn xattr(
        &self,
        cx: &Cx,
        inode: u8,
        call: impl FnOnce(&Ext2Xattr, &Cx, usize) -> Result<Step, MbError>,
    ) -> Applied {
        let inode = usize::from(inode) % self.ext2.inode_count();
        if !self.inodes.lock().unwrap_or_else(PoisonError::into_inner).insert(inode) {
            return Ok(OpResult::WouldBlock);
        }
        let mut step = call(&self.ext2, cx, inode);
        while let Ok(Step::Pending(pending)) = step {
            step = self.ext2.resume(cx, pending);
        }
        self.inodes.lock().unwrap_or_else(PoisonError::into_inner).remove(&inode);
        step.map(|_| OpResult::Done)
    }

    /// Applies `op` as `cx`'s task; a shrink leaves the serials it took in `shrunk`.
    fn apply(&self, cx: &Cx, op: &Op, shrunk: &mut Vec<u64>) -> Applied {
        let all = |mine: &[Held]| all_positions(mine.len());
        match *op {
            Op::Create { indexes, bucket_bits, undersized, free_op } => {
                self.create(cx, indexes, bucket_bits, undersized, free_op)
            }
            Op::Destroy { cache } => self.destroy(cx, cache),
            Op::Alloc { cache, .. } => {
                let Some(cache) = self.cache_at(cache) else { return Ok(OpResult::Skipped) };
                let handle = self.registry.alloc(cx, cache)?;
                self.fresh.lock().unwrap_or_else(PoisonError::into_inner).insert(handle.entry_id());
                Ok(self.push(cx, Some(handle), true, None))
            }
            Op::Insert { handle, device, block, keys } => self.insert(cx, handle, device, block, keys),
            Op::Release { handle } => match self.take(cx, handle, all) {
                Some(held) => self.registry.release(cx, held.handle).map(|()| OpResult::Done),
                None => Ok(OpResult::Skipped),
            },
            Op::Get { cache, device, block, .. } => {
                let Some(cache) = self.cache_at(cache) else { return Ok(OpResult::Skipped) };
                self.release_mine(cx)?;
                let found = self.registry.get(cx, cache, self.bdev(device), self.block(block))?;
                Ok(self.push(cx, found, true, None))
            }
            Op::FindFirst { cache, index, device, key, .. } => self.find_first(cx, cache, index, device, key),
            Op::FindNext { handle } => self.find_next(cx, handle),
            Op::Dup { handle } => {
                let Some(held) = self.peek(cx, handle) else { return Ok(OpResult::Skipped) };
                let dup = self.registry.dup(cx, &held.handle)?;
                Ok(self.push(cx, Some(dup), held.writer, held.walk))
            }
            Op::Takeout { handle } => {
                let Some(held) = self.peek(cx, handle) else { return Ok(OpResult::Skipped) };
                self.registry.takeout(cx, &held.handle).map(|()| OpResult::Done)
            }
            Op::Free { handle } => {
                let exclusive = self.config.fixes.on(EXCLUSIVE_GET);
                let writers = |mine: &[Held]| writer_positions(mine.iter().map(|h| h.writer), exclusive);
                match self.take(cx, handle, writers) {
                    Some(held) => self.registry.free(cx, held.handle).map(|()| OpResult::Done),
                    None => Ok(OpResult::Skipped),
                }
            }
            Op::Shrink { cache, device } => {
                let Some(cache) = self.cache_at(cache) else { return Ok(OpResult::Skipped) };
                *shrunk = self.registry.shrink_taken(cx, cache, self.bdev(device))?;
                Ok(OpResult::Done)
            }
            Op::ShrinkFn { nr_to_scan, nofs } => {
                let gfp = if nofs { Gfp::GFP_NOFS } else { Gfp::GFP_KERNEL };
                let (count, taken) = self.registry.shrink_fn_taken(cx, i32::from(nr_to_scan % 5), gfp)?;
                *shrunk = taken;
                Ok(OpResult::Count(count))
            }
            Op::XattrSet { inode, value, .. } => {
                let value = 1 + u32::from(value) % self.config.values.max(1);
                self.xattr(cx, inode, |ext2, cx, inode| ext2.set(cx, inode, value))
            }
            Op::XattrDelete { inode, .. } => {
                self.xattr(cx, inode, |ext2, cx, inode| ext2.delete_inode(cx, inode))
            }
        }
    }
}

impl ThreadedSubject for MbcacheSubject {
    type Shared = MbcacheShared;

    fn share(sim: &Sim, config: &MbcacheConfig) -> MbcacheShared {
        if config.alloc_fault_percent > 0 {
            sim.set_faults(FaultPlan::with(
                FaultAttr::probability(config.alloc_fault_percent).kind(FaultKind::Slab).site("xattr"),
            ));
        }
        MbcacheShared {
            config: config.clone(),
            registry: Registry::new(sim, config.fixes, Waits::Sleep),
            caches: StdMutex::default(),
            handles: StdMutex::default(),
            fresh: StdMutex::default(),
            ext2: Ext2Xattr::new(
                sim,
                &sim.cx("mount", 0),
                config.fixes,
                Waits::Sleep,
                config.inodes.clamp(1, 8) as usize,
                config.fs_blocks.max(1) as usize,
            ),
            inodes: StdMutex::default(),
        }
    }

    /// The reference judges threaded outcomes (see [`MbcacheConfig::threaded`]).
    fn threaded_config(config: &MbcacheConfig, _threads: usize) -> MbcacheConfig {
        MbcacheConfig { threaded: true, ..config.clone() }
    }

    fn apply_shared(shared: &MbcacheShared, cx: &Cx, op: &Op) -> Outcome {
        let mut shrunk = Vec::new();
        let result = MbcacheSubject::result_of(shared.apply(cx, op, &mut shrunk));
        let task = cx.name().strip_prefix("thread-").and_then(|n| n.parse().ok()).unwrap_or(SETUP_TASK);
        Outcome { result, lru: Default::default(), counts: Default::default(), task: Some(task), shrunk }
    }

    /// A finished inode task releases its handles; an error here is the model's, reported by it.
    fn finish_thread(shared: &MbcacheShared, cx: &Cx) {
        let _ = shared.release_mine(cx);
    }

    /// Create and destroy are a mount and an unmount: no inode task runs meanwhile.
    fn concurrent(op: &Op) -> bool {
        !matches!(op, Op::Create { .. } | Op::Destroy { .. })
    }

    /// The API calls share one registry, the xattr calls the ext2 filesystem's own: two parts
    /// no order between which matters.
    fn key(op: &Op) -> Option<u64> {
        Some(u64::from(matches!(op, Op::XattrSet { .. } | Op::XattrDelete { .. })))
    }

    fn check_shared(shared: &MbcacheShared, sim: &Sim) -> Result<(), Violation> {
        let cx = sim.observer_cx("check_invariants", 0);
        shared.registry.check_invariants(&cx)?;
        // Every xattr call ran to its end: no disposal is pending.
        shared.ext2.check_invariants(&cx, &[])
    }

    fn teardown_shared(shared: MbcacheShared, sim: &Sim) -> Result<(), Violation> {
        let cx = sim.cx("umount", 0);
        let oops = |error: MbError| match error {
            MbError::Oops(violation) => *violation,
            other => Violation::new(ViolationKind::invariant("teardown"), format!("teardown: {other:?}")),
        };
        let handles = std::mem::take(&mut *shared.handles());
        for held in handles.into_values().flatten() {
            shared.registry.release(&cx, held.handle).map_err(oops)?;
        }
        for cache in shared.caches() {
            let destroyed = shared.registry.destroy(&cx, cache).map_err(oops)?;
            if destroyed.orphans != 0 {
                return Err(Violation::new(
                    ViolationKind::Leak,
                    format!("{} orphaned entries", destroyed.orphans),
                ));
            }
        }
        shared.registry.exit_mbcache();
        let orphans = shared.ext2.unmount(&cx).map_err(oops)?;
        if orphans != 0 {
            return Err(Violation::new(ViolationKind::Leak, format!("ext2: {orphans} orphaned entries")));
        }
        Ok(())
    }
}
