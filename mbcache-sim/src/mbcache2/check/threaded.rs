//! mbcache2 under threaded campaigns (`ksim fuzz mbcache2 --threads N`): one mounted ext4 (its
//! mbcache and xattr blocks) shared by the threads, each thread an inode task making whole system
//! calls (`Mbcache2Config::whole_calls`), judged by linearizability against [`Mbcache2Model`].
//!
//! What overlaps: ext4's xattr calls — a new block inserted into the cache (`XattrNew`: the
//! block allocator, the buffer lock, `mb_cache_entry_create`'s bucket and list locks), a find
//! and reuse (`XattrFind`: `mb_cache_entry_find_first`/`_find_next`, journal write access, the
//! buffer lock, `mb_cache_entry_touch`, the put) and a release (`XattrRelease`:
//! `mb_cache_entry_delete_or_get` or `_delete`, `mb_cache_entry_wait_unused`, `_get` when a full
//! block becomes reusable again, the block freed). Each task owns the references its calls made
//! (an inode's xattr block) and a release drops one of its own. Those are the calls the reuse-vs-release race
//! (65f8b80053a1) and the lost `e_flags` update (a44e84a9b776) live between. Operations that
//! hold an entry across calls in the op-level subject (find-next, reuse, put, get) and the
//! buffer read are turned into these calls on threads (see [`on_thread`](ThreadedSubject::on_thread)),
//! since in the kernel no task keeps a cache entry past its system call.
//!
//! What needs a quiescent world (set-up prefix only): mount (`mb_cache_create`: no inode task
//! runs on a filesystem being mounted). Unmount overlaps the threads as a lazy unmount
//! (`umount -l`, `MNT_DETACH`) does: the filesystem is detached at once (calls that start later
//! fail with ENODEV), and the superblock's shutdown (`ext4_put_super()`, `mb_cache_destroy()`)
//! runs once the calls in flight on it have ended (the kernel runs it in the task that drops
//! the last reference; here the unmounting task waits for that, on a wait queue, and runs it).
//! A shrinker scan in flight is waited for too, as `unregister_shrinker()` waits for it. The
//! shrink work is not: a kworker may be running it when `mb_cache_destroy()` starts, which is
//! the race "fs/mbcache: cancel shrink work before destroying the cache" closes, and whose
//! `cancel_work_sync()` waits for the running item (`workqueue.rs`).
//! `ext4_xattr_block_get()`'s insert is kept out too: it decides `e_reusable` from an
//! `h_refcount` read before the insert, so a release between the two leaves a shareable block
//! marked unreusable (a real, harmless kernel window: the block is not shared until the entry is
//! evicted), which no order of whole calls explains.
//!
//! The shrinker (`Shrink`, one step a call) and the shrink work (`RunWork`: a kworker's
//! `process_one_work()` of the first queued item, `c_max_entries / 16` steps) overlap the calls.
//! The workqueue is non-reentrant as the kernel's is: a kworker that dequeues the item while
//! another executes it hands it over (`Outcome::Deferred`), and the executing one runs it again
//! (`Outcome::Reran`). Which entries a scan keeps depends on what overlapping calls hold at that
//! instant, so a scan's outcome lists its steps (each entry met, evicted or kept) and the
//! reference judges them ([`Mbcache2Model`]'s `scan`): a shrinker's first step at the LRU's
//! head, later ones anywhere on it, never evicting a referenced entry. Eleven kernel windows no
//! order of whole calls explains are judged as the kernel has them (see the reference):
//! - a shrink work run takes its item off the queue at one instant and scans later, so its
//!   first step may be anywhere on the LRU;
//! - its rerun may have nothing queued in the reference: a `schedule_work()` ordered after it
//!   found the item still pending, and queues nothing; so does any further one before the rerun
//!   claims the item, so an idle kworker ordered after may find nothing (case seed 7003753);
//! - an insert in flight when the rerun starts may have merged into it, though its hash comes
//!   after the rerun's end (after a find that missed its entry): one per task with no call
//!   ordered since, but the kworker's (case seed 23911);
//! - `mb_cache_entry_create()` calls `schedule_work()` before its insert, so the first insert
//!   ordered after a kworker took the item may have been covered by that run (case seed 7004638);
//! - the other way round, a kworker may run the item before the insert that scheduled it hashes
//!   its entry: a run with nothing queued is owed to a later insert, and must be paid before
//!   the unmount and the case's end (`Reference::finish`; case seed 9677);
//! - an insert in flight across a lazy unmount is ordered before it, but may queue the work
//!   again after a kworker took it: the detached item may run (or rerun) once more per such
//!   insert (case seeds 8005756, 9002097);
//! - a shrinker scan in flight at the detach goes on with the detached cache, one per other
//!   task (case seed 11001046); the reference keeps that cache until the unmount's
//!   `mb_cache_destroy()` and judges such scans, and detached runs, on it;
//! - a release claims its entry (finds pass it over) before it unlists it, so a scan in
//!   between keeps it (case seed 9002599);
//! - an insert may read the entry count before the scan of a run ordered before it (case seed
//!   11018796);
//! - `mb_cache_shrink()` tests `e_referenced` and claims the count in two instants, at every
//!   step, so a share's touch and put between them leave the entry it just referenced evicted,
//!   by a rerun's steps too (case seeds 200000, 10155 and 24501);
//! - a scan's steps span calls ordered after it: a share of a task whose earlier call, ordered
//!   after the scan, saw an earlier step may use an entry a later step evicted (case seed
//!   81361), and so may the share of one task per idle kworker ordered after a shrink work
//!   run (case seed 225129: the kworker's thread);
//! - on a detached cache, the share may have been in flight at the detach, ordered anywhere
//!   before the unmount: each task's last call then, if a share (the session-10 pin in
//!   `tests/tests/mbcache2/reference_windows.rs`).
//!
//! Each filesystem starts with [`THREADED_PREFILL`] blocks no task owns
//! (`Mbcache2Config::prefill`), so the cache is past `c_max_entries`: every insert queues the
//! shrink work, and the oldest entries, which finds of hashes 0 and 1 share when nothing newer
//! is reusable, are the ones the scans meet.
//!
//! No outcome is relaxed. Which block a find shares is the one nondeterminism of the contract
//! (the reference accepts any shareable block, `Mbcache2Model`'s `share`).

use std::sync::{Mutex as StdMutex, PoisonError};

use proptest::prelude::*;
use proptest::strategy::BoxedStrategy;
use sim_core::threaded::ThreadedSubject;
use sim_core::{Cx, Errno, Sim, Violation, ViolationKind, WaitQueue};
use std::sync::Arc;

use super::{
    check_cache_with, get_outcome, pick, prefill, release_outcome, scan_outcome, share_outcome, work_outcome,
    Mbcache2Config, Mbcache2Subject, Op, Outcome,
};
use crate::mbcache2::mbcache::{CacheHandle, CacheSnapshot, MbCache, MbcacheModule};
use crate::mbcache2::xattr::XattrBlocks;

/// Xattr blocks per filesystem in a threaded case: fewer than twice `c_max_entries` (32 with
/// one bucket bit), so no insert shrinks synchronously, and [`THREADED_PREFILL`] of them taken
/// at mount, so the 15 the threads allocate from come back soon once freed.
const THREADED_BLOCKS: u16 = 63;

/// Blocks given to each filesystem at mount (`Mbcache2Config::prefill`): their entries put the
/// cache past `c_max_entries`, so every insert queues the shrink work and scans find entries to
/// reclaim, and far enough past it (16 evictions) that no case's scans bring it back under.
const THREADED_PREFILL: u16 = 48;

/// Content hashes the threads' calls use: four, two of them (0 and 1) with prefilled blocks to
/// share and two only with blocks the threads made, so a find often meets a block another thread
/// is releasing (the reuse-vs-release race in 4 of 6 zoo seed ranges of 400 cases; 0 of 6 with
/// one hash, 2 with two, 3 with three, 2 with six).
const THREADED_KEYS: u8 = 4;

/// A filesystem's mount as the VFS keeps it: the cache while mounted (not detached), and the
/// calls in flight on it (their references on the mount). Checker state, behind a std mutex.
#[derive(Debug, Default)]
struct FsMount {
    cache: Option<(CacheHandle, Arc<MbCache>)>,
    calls: u32,
}

/// One filesystem: its mount, its blocks.
#[derive(Debug)]
struct SharedFs {
    mount: StdMutex<FsMount>,
    blocks: XattrBlocks,
}

/// The module and the filesystems, shared by the threads.
#[derive(Debug)]
pub struct Mbcache2Shared {
    mb: MbcacheModule,
    filesystems: Vec<SharedFs>,
    bucket_bits: u32,
    /// Woken whenever a call in flight on a filesystem ends: a lazy unmount waits here for the
    /// last one before it shuts the filesystem down.
    calls_done: WaitQueue,
    /// Per task (thread), the (filesystem, block) references its inodes own: a release drops
    /// one of its own, as an inode drops its own xattr block, so no task releases a block
    /// another task is still creating (which ext4's inode ownership rules out).
    owned: StdMutex<Vec<Vec<(usize, u64)>>>,
}

/// The context the checker reads state in (neither traced nor checked by lockdep).
fn observer(sim: &Sim) -> Cx {
    sim.observer_cx("mbcache2-check", 0)
}

impl Mbcache2Shared {
    fn mounted(&self, fs: usize) -> std::sync::MutexGuard<'_, FsMount> {
        self.filesystems[fs].mount.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn cache(&self, fs: usize) -> Option<(CacheHandle, Arc<MbCache>)> {
        self.mounted(fs).cache.clone()
    }

    /// A call starts on `fs`: its reference on the mount, unless the filesystem is detached.
    fn enter(&self, fs: usize) -> Option<(CacheHandle, Arc<MbCache>)> {
        let mut mount = self.mounted(fs);
        let cache = mount.cache.clone()?;
        mount.calls += 1;
        Some(cache)
    }

    /// The call on `fs` ended: its reference dropped, a waiting unmount woken.
    fn leave(&self, fs: usize) {
        let mut mount = self.mounted(fs);
        mount.calls = mount.calls.saturating_sub(1);
        drop(mount);
        self.calls_done.wake_up();
    }

    fn fs(&self, fs: u8) -> usize {
        usize::from(fs) % self.filesystems.len()
    }

    /// The `index`-th allocated block of `fs`, modulo how many are (set-up prefix only).
    fn allocated_block(&self, cx: &Cx, fs: usize, index: u8) -> Option<(u64, u32)> {
        let observer = observer(cx.sim());
        let blocks = &self.filesystems[fs].blocks;
        let block = blocks.nth_allocated(&observer, index)?;
        Some((block, blocks.hash_of(&observer, block)))
    }

    /// `mb_cache_create` (prefix only).
    fn mount(&self, cx: &Cx, fs: usize) -> Outcome {
        if self.cache(fs).is_some() {
            return Outcome::Failed(Errno::EBUSY);
        }
        match self.mb.mb_cache_create(cx, self.bucket_bits) {
            Ok(cache) => {
                self.mounted(fs).cache = Some(cache);
                Outcome::Done
            }
            Err(errno) => Outcome::Failed(errno),
        }
    }

    /// A lazy unmount: detach (later calls fail with ENODEV), wait for the calls in flight, then
    /// `mb_cache_destroy` (no task holds an entry between calls; the shrink work may be running).
    fn umount(&self, cx: &Cx, fs: usize) -> Outcome {
        let taken = self.mounted(fs).cache.take();
        let Some((handle, cache)) = taken else { return Outcome::Failed(Errno::EINVAL) };
        drop(cache);
        self.calls_done.wait_event(cx, || self.mounted(fs).calls == 0);
        self.mb.mb_cache_destroy(cx, handle);
        Outcome::Done
    }

    fn owned(&self) -> std::sync::MutexGuard<'_, Vec<Vec<(usize, u64)>>> {
        self.owned.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A release of the task's `index`-th owned reference (whole calls), on a mounted
    /// filesystem.
    fn release(&self, cx: &Cx, task: u8, index: u8) -> Outcome {
        let (fs, block, cache) = {
            let mut owned = self.owned();
            let tasks = owned.len();
            let mine = &mut owned[usize::from(task) % tasks];
            let Some(at) = pick(mine, index) else { return Outcome::Nothing };
            let Some((_, cache)) = self.enter(mine[at].0) else { return Outcome::Failed(Errno::ENODEV) };
            let (fs, block) = mine.remove(at);
            (fs, block, cache)
        };
        let outcome = release_outcome(cx, &self.mb, &cache, &self.filesystems[fs].blocks, block);
        drop(cache);
        self.leave(fs);
        outcome
    }

    /// Books a block the task made or shared as one its inode owns.
    fn own(&self, task: u8, fs: usize, outcome: &Outcome) {
        if let Outcome::Block(block) | Outcome::Shared { block, .. } = *outcome {
            let mut owned = self.owned();
            let tasks = owned.len();
            owned[usize::from(task) % tasks].push((fs, block));
        }
    }

    /// The operations that need the filesystem's cache, in `cx`, as calls in flight on it.
    fn on_cache(&self, cx: &Cx, fs: usize, op: &Op) -> Outcome {
        let Some((handle, cache)) = self.enter(fs) else { return Outcome::Failed(Errno::ENODEV) };
        let outcome = self.on_mounted(cx, fs, handle, &cache, op);
        drop(cache);
        self.leave(fs);
        outcome
    }

    fn on_mounted(&self, cx: &Cx, fs: usize, handle: CacheHandle, cache: &Arc<MbCache>, op: &Op) -> Outcome {
        let blocks = &self.filesystems[fs].blocks;
        match *op {
            Op::XattrNew { key, .. } => match blocks.new_block(cx, &self.mb, handle, cache, u32::from(key)) {
                Ok(block) => Outcome::Block(block),
                Err(errno) => Outcome::Failed(errno),
            },
            Op::XattrFind { key, .. } => share_outcome(cx, &self.mb, cache, blocks, key),
            Op::Get { block, .. } => match self.allocated_block(cx, fs, block) {
                Some((block, key)) => get_outcome(cx, &self.mb, cache, key, block),
                None => Outcome::Nothing,
            },
            Op::XattrRead { block, .. } => match self.allocated_block(cx, fs, block) {
                Some((block, _)) => Outcome::from(blocks.block_get(cx, &self.mb, handle, cache, block)),
                None => Outcome::Nothing,
            },
            Op::Shrink { nr, .. } => scan_outcome(cx, &self.mb, cache, nr),
            _ => Outcome::Nothing,
        }
    }
}

impl ThreadedSubject for Mbcache2Subject {
    type Shared = Mbcache2Shared;

    /// One task per thread, whole calls, and few blocks.
    fn threaded_config(config: &Mbcache2Config, threads: usize) -> Mbcache2Config {
        Mbcache2Config {
            tasks: config.tasks.max(threads as u8),
            blocks: config.blocks.min(THREADED_BLOCKS),
            prefill: config.prefill.max(THREADED_PREFILL).min(config.blocks.min(THREADED_BLOCKS)),
            whole_calls: true,
            ..config.clone()
        }
    }

    /// The op-level mix with unmount made rare: unmount overlaps the threads (a lazy unmount,
    /// see the module comment) and ends the case's calls on the filesystem, so it has a third
    /// of its op-level weight (1 of 82). (Weighting new blocks, finds and releases up, and giving
    /// the prefilled shareable blocks to the tasks, both found the reuse-vs-release race in fewer
    /// of the zoo's seed ranges, not more.) The shrinker and the shrink work have twice their
    /// op-level weight (6 each, session 10): the e_referenced bug shows when a scan goes on past
    /// an entry it gave a second chance, and the entries finds share sit six or seven deep in
    /// the LRU, so the prefix's multi-step scans must bring one to the head and a kworker's run
    /// (two steps under one lock hold) meet it there.
    fn threaded_ops(config: &Mbcache2Config) -> BoxedStrategy<Op> {
        let (tasks, fss, keys) = (config.tasks.max(1), config.filesystems.max(1), config.keys.max(1));
        prop_oneof![
            3 => (0..fss).prop_map(|fs| Op::Mount { fs }),
            1 => (0..fss).prop_map(|fs| Op::Umount { fs }),
            18 => (0..tasks, 0..fss, 0..keys).prop_map(|(task, fs, key)| Op::XattrNew { task, fs, key }),
            12 => (0..tasks, 0..fss, 0..keys).prop_map(|(task, fs, key)| Op::XattrFind { task, fs, key }),
            3 => (0..tasks, any::<u8>()).prop_map(|(task, index)| Op::XattrFindNext { task, index }),
            9 => (0..tasks, any::<u8>()).prop_map(|(task, index)| Op::XattrReuse { task, index }),
            9 => (0..tasks, 0..fss, any::<u8>()).prop_map(|(task, fs, block)| Op::XattrRelease { task, fs, block }),
            3 => (0..tasks, 0..fss, any::<u8>()).prop_map(|(task, fs, block)| Op::Get { task, fs, block }),
            6 => (0..tasks, 0..fss, any::<u8>()).prop_map(|(task, fs, block)| Op::XattrRead { task, fs, block }),
            6 => (0..tasks, any::<u8>()).prop_map(|(task, index)| Op::Put { task, index }),
            6 => (0..tasks, 0..fss, 1..=8u8).prop_map(|(task, fs, nr)| Op::Shrink { task, fs, nr }),
            6 => Just(Op::RunWork),
        ]
        .boxed()
    }

    fn share(sim: &Sim, config: &Mbcache2Config) -> Mbcache2Shared {
        let walk_slack = u64::from(config.tasks.max(1)) * u64::from(config.held_max);
        let shared = Mbcache2Shared {
            mb: MbcacheModule::new(config.fixes, walk_slack),
            filesystems: (0..config.filesystems.max(1))
                .map(|_| SharedFs {
                    mount: StdMutex::new(FsMount::default()),
                    blocks: XattrBlocks::new(config.blocks.max(1), config.refcount_max.max(2)),
                })
                .collect(),
            bucket_bits: config.cache_bucket_bits(),
            calls_done: WaitQueue::new("umount: calls in flight"),
            owned: StdMutex::new(vec![Vec::new(); usize::from(config.tasks.max(1))]),
        };
        let setup = sim.cx("mount", 0);
        for fs in 0..shared.filesystems.len() {
            shared.mount(&setup, fs);
            if let Some(cache) = shared.cache(fs) {
                prefill(&setup, &shared.mb, &cache, &shared.filesystems[fs].blocks, config.prefill);
            }
        }
        shared
    }

    /// The thread's own task; the calls that hold an entry in the op-level subject become the
    /// whole calls the kernel makes (a find-next or a reuse is part of a find, a put or a get
    /// ends in a release), and the buffer read's insert a release (see the module comment).
    fn on_thread(op: Op, thread: usize) -> Op {
        let task = thread as u8;
        match op {
            Op::XattrNew { fs, key, .. } => Op::XattrNew { task, fs, key: key % THREADED_KEYS },
            Op::XattrFind { fs, key, .. } => Op::XattrFind { task, fs, key: key % THREADED_KEYS },
            Op::XattrFindNext { index, .. } | Op::XattrReuse { index, .. } => {
                Op::XattrFind { task, fs: 0, key: index % THREADED_KEYS }
            }
            Op::XattrRelease { fs, block, .. }
            | Op::Get { fs, block, .. }
            | Op::XattrRead { fs, block, .. } => Op::XattrRelease { task, fs, block },
            Op::Put { index, .. } => Op::XattrRelease { task, fs: 0, block: index },
            // One step a scan: `mb_cache_shrink()` drops `c_list_lock` after each eviction, and
            // calls between its steps create and delete entries, while the reference orders a
            // scan at one point (case seed 14007105: a four-step scan evicted block 50's entry,
            // then, after a release freed the block and an insert reused it, its new one).
            // Multi-step scans run in the set-up prefix, alone.
            Op::Shrink { fs, .. } => Op::Shrink { task, fs, nr: 1 },
            other => other,
        }
    }

    fn apply_shared(shared: &Mbcache2Shared, cx: &Cx, op: &Op) -> Outcome {
        match *op {
            Op::Mount { fs } => shared.mount(cx, shared.fs(fs)),
            Op::Umount { fs } => shared.umount(cx, shared.fs(fs)),
            Op::RunWork => work_outcome(cx, &shared.mb),
            Op::XattrFindNext { .. } | Op::XattrReuse { .. } | Op::Put { .. } => Outcome::Nothing,
            Op::XattrRelease { task, block, .. } => shared.release(cx, task, block),
            Op::XattrNew { task, fs, .. } | Op::XattrFind { task, fs, .. } => {
                let fs = shared.fs(fs);
                let outcome = shared.on_cache(cx, fs, op);
                shared.own(task, fs, &outcome);
                outcome
            }
            Op::Get { fs, .. } | Op::XattrRead { fs, .. } | Op::Shrink { fs, .. } => {
                shared.on_cache(cx, shared.fs(fs), op)
            }
        }
    }

    /// Mount needs a quiescent world; unmount is lazy (module comment).
    fn concurrent(op: &Op) -> bool {
        !matches!(op, Op::Mount { .. })
    }

    /// Every cache's invariants with no users (no task holds an entry between calls), and every
    /// live entry reachable from a cache.
    fn check_shared(shared: &Mbcache2Shared, sim: &Sim) -> Result<(), Violation> {
        let observer = observer(sim);
        let mut reachable = 0;
        let (mut snapshot, mut bitmap) = (CacheSnapshot::default(), Vec::new());
        for (fs, filesystem) in shared.filesystems.iter().enumerate() {
            let Some((_, cache)) = shared.cache(fs) else { continue };
            cache.snapshot_into(&shared.mb, &observer, &mut snapshot, false);
            reachable += snapshot.entries.len() as u64;
            let blocks = &filesystem.blocks;
            blocks.bitmap_into(&observer, &mut bitmap);
            let block = |value: u64| blocks.block_state(&observer, &bitmap, value);
            check_cache_with(fs, &snapshot, block, shared.mb.cache_refs(), true, |_| 0)?;
        }
        let live = shared.mb.entries.live();
        if live != reachable {
            return Err(Violation::new(
                ViolationKind::invariant("mbcache2-live-entries-reachable"),
                format!("{live} entries live, {reachable} in caches"),
            ));
        }
        Ok(())
    }

    /// Unmounts every filesystem, runs what is still queued (a work item on a destroyed cache is
    /// a use after free), and the slabs must be empty.
    fn teardown_shared(shared: Mbcache2Shared, sim: &Sim) -> Result<(), Violation> {
        let cx = sim.cx("umount", 0);
        for fs in 0..shared.filesystems.len() {
            shared.umount(&cx, fs);
        }
        shared.mb.run_workqueue(&sim.cx("kworker", 0));
        shared.mb.entries.destroy(&cx)?;
        shared.mb.caches.destroy(&cx)
    }
}
