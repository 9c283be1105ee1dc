//! fs/ext2/xattr.c (2.6.10 to 2.6.35) where it shares extended-attribute blocks through mbcache:
//! `ext2_xattr_set2()`'s reuse of a cached block with the same contents, `ext2_xattr_cache_find()`,
//! `ext2_xattr_cache_insert()`, the disposal of a block no inode uses any more (in
//! `ext2_xattr_set2()` and `ext2_xattr_delete_inode()`), `h_refcount` and
//! `EXT2_XATTR_REFCOUNT_MAX`, `lock_buffer()` and `xattr_sem`, and the block allocator
//! (`ext2_new_block()`/`ext2_free_blocks()`) handing out the lowest free block, so a freed number
//! comes back at once. ext3 does the same under a journal.
//!
//! Left out: the entries inside a block (a block holds one value, and its `h_hash` is the value),
//! modifying an unshared block in place (every change writes a new or shared block), quotas,
//! reading blocks from disk (a block's header is memory behind its buffer lock).
//!
//! Checked here, as instrumentation (a `std` map the model's locks never guard): a block handed
//! out by `mb_cache_entry_find_first()/_next()` is never freed while that find handle is held
//! (`xattr-block-freed-while-found`), and a block is never shared after it was freed or rewritten
//! with other contents (`xattr-block-reused`).
//!
//! In the op-level simulation a task's `ext2_xattr_set()` may stop at an operation boundary while
//! it holds the entry find handed out (the window of the 2.6.10 race), or while it would sleep in
//! `mb_cache_entry_get()`: it leaves a [`Pending`] step its next operation continues. The model
//! drops `xattr_sem` and the buffer lock across that boundary (a guard cannot outlive the
//! operation); the subject refuses other tasks' operations on the inode meanwhile, as the held
//! `xattr_sem` would make them wait.

use std::sync::Mutex as StdMutex;

use sim_core::mm::Gfp;
use sim_core::{Cx, Errno, Mutex, RwSem, Sim, SpinLock, Violation, ViolationKind};

use crate::cache::CacheRef;
use crate::entry::Handle;
use crate::fixes::{Fixes, XATTR_ENTRY_BEFORE_BUFFER_LOCK};
use crate::registry::{bdev_address, locked, MbError, Registry, Waits, ENTRY_HEADER_SIZE, ENTRY_INDEX_SIZE};

/// `EXT2_XATTR_REFCOUNT_MAX`: a block shared by more inodes is not shared further. 2.6's
/// `ext2_xattr_cache_find()` skips a block whose count is *above* it, so one more share is
/// possible and a block reaches `EXT2_XATTR_REFCOUNT_MAX + 1`.
pub const EXT2_XATTR_REFCOUNT_MAX: u32 = 1024;
/// The lock class of `EXT2_I(inode)->xattr_sem`.
pub const XATTR_SEM: &str = "ext2_inode_info.xattr_sem";
/// The lock class of a buffer head's `BH_Lock` (`lock_buffer()`).
pub const BUFFER_LOCK: &str = "buffer_head.BH_Lock";
/// The lock class of the block group's bitmap lock (`sb_bgl_lock`).
pub(crate) const BITMAP_LOCK: &str = "sb_bgl_lock";

/// The header of an xattr block as its buffer holds it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct BlockHeader {
    /// Allocated in the bitmap (instrumentation mirror of the bitmap, read under the buffer lock).
    in_use: bool,
    /// `h_refcount`.
    refcount: u32,
    /// `h_hash`, which is the contents here.
    value: u32,
}

/// What the refcount check gathers per block: its header, the users counted, its bitmap bit.
#[derive(Clone, Copy, Debug, Default)]
struct Tally {
    header: BlockHeader,
    users: u32,
    bit: bool,
}

/// Most inodes or blocks [`Ext2Touched`] logs between two checks; past it the next incremental
/// check counts every block's users again, as the whole check does.
const EXT2_TOUCHED_MAX: usize = 64;

/// Instrumentation the model writes where it writes the filesystem: the inodes whose
/// `i_file_acl` and the blocks whose header or bitmap bit changed since the incremental check
/// last ran, and among those blocks the ones whose bitmap bit was written (`bits`). A `std`
/// mutex no model lock orders with: held only for a push, never across a model lock.
#[derive(Debug, Default)]
struct Ext2Touched {
    inodes: Vec<usize>,
    blocks: Vec<u64>,
    bits: Vec<u64>,
    overflowed: bool,
}

impl Ext2Touched {
    /// Empties the log, keeping its lists' capacity.
    fn clear(&mut self) {
        self.inodes.clear();
        self.blocks.clear();
        self.bits.clear();
        self.overflowed = false;
    }

    fn push<T: PartialEq>(list: &mut Vec<T>, overflowed: &mut bool, item: T) {
        if list.last() == Some(&item) {
            return;
        }
        if list.len() < EXT2_TOUCHED_MAX {
            list.push(item);
        } else {
            *overflowed = true;
        }
    }
}

/// Checker state of the incremental check: the filesystem as its last run saw it (each inode's
/// `i_file_acl`, each block's inode users and bitmap bit, the disposals then pending), so a run
/// reads only what was written since and the blocks whose users changed.
#[derive(Debug, Default)]
struct Ext2Shadow {
    acl: Vec<Option<u64>>,
    users: Vec<u32>,
    bits: Vec<bool>,
    pending: Vec<u64>,
    /// The blocks' tallies, kept between runs so a run allocates nothing once it has grown.
    tallies: Vec<(u64, Tally)>,
    /// Every block's tally, the whole count's working space (kept for its allocation only).
    every: Vec<Tally>,
}

/// `EXT2_I(inode)->i_file_acl`, guarded by `xattr_sem`.
#[derive(Debug, Default)]
struct InodeXattr {
    file_acl: Option<u64>,
}

/// What a task's set or delete left for its next operation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Pending {
    /// `ext2_xattr_cache_find()` handed out `found` for `value`; inode `inode` still to be set.
    Share { inode: usize, value: u32, found: Handle },
    /// The disposal of `block` would sleep in `mb_cache_entry_get()`; inode `inode` already
    /// points elsewhere (`clear` says whether its `i_file_acl` still has to be cleared).
    Release { inode: usize, block: u64, clear: bool },
}

/// How a step of a set or delete ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Step {
    /// The system call finished.
    Done,
    /// It stopped at an operation boundary; the task continues with this.
    Pending(Pending),
}

/// One ext2 filesystem's xattr blocks, its inodes and its mbcache (`ext2_xattr_cache`).
#[derive(Debug)]
pub struct Ext2Xattr {
    registry: Registry,
    cache: CacheRef,
    bdev: u64,
    inodes: Vec<RwSem<InodeXattr>>,
    blocks: Vec<Mutex<BlockHeader>>,
    bitmap: SpinLock<Vec<bool>>,
    /// Instrumentation: per block, the find handles to its entry held (a count per block number,
    /// made whole at mount as the bitmap is: no map look-up per find).
    found: StdMutex<Vec<u32>>,
    /// Instrumentation: per block, whether it was freed at least once (a new block among them
    /// is a reused number).
    freed: StdMutex<Vec<bool>>,
    /// Instrumentation: what was written since the incremental check last ran.
    touched: StdMutex<Ext2Touched>,
    /// Checker state: what the incremental check last saw. Only the incremental check takes it
    /// (op-level, on one thread), and holds it across its reads of the model: no model path
    /// takes it, so it orders with no model lock.
    shadow: StdMutex<Ext2Shadow>,
    /// Checker scratch: an empty log the incremental check swaps with the model's (whose
    /// capacity it keeps), taken with `shadow` held.
    spare: StdMutex<Ext2Touched>,
    /// Checker scratch of the whole check, kept between runs only for its allocations: never
    /// the incremental check's `shadow`, whose running counts the whole check would otherwise
    /// reset to the truth before each incremental run.
    whole: StdMutex<Ext2Shadow>,
}

impl Ext2Xattr {
    /// Mirrors `init_ext2_xattr()` (the cache, 2^`bucket_bits` buckets, one index) and a mounted
    /// filesystem with `inodes` inodes and `blocks` blocks. Registers `xattr_sem` as a lock reclaim
    /// may take (inode eviction runs `ext2_xattr_delete_inode()`), so lockdep sees a `__GFP_FS`
    /// allocation under it.
    pub fn new(sim: &Sim, cx: &Cx, fixes: Fixes, waits: Waits, inodes: usize, blocks: usize) -> Self {
        let registry = Registry::new(sim, fixes, waits);
        let cache = registry
            .create(cx, "ext2_xattr", None, ENTRY_HEADER_SIZE + ENTRY_INDEX_SIZE, 1, 2)
            .expect("the ext2_xattr cache fits");
        sim.register_fs_reclaim_lock(cx, XATTR_SEM);
        Ext2Xattr {
            registry,
            cache,
            bdev: bdev_address(7),
            inodes: (0..inodes).map(|_| RwSem::new(XATTR_SEM, InodeXattr::default())).collect(),
            blocks: (0..blocks).map(|_| Mutex::new(BUFFER_LOCK, BlockHeader::default())).collect(),
            bitmap: SpinLock::new(BITMAP_LOCK, vec![false; blocks]),
            found: StdMutex::new(vec![0; blocks]),
            freed: StdMutex::new(vec![false; blocks]),
            touched: StdMutex::new(Ext2Touched::default()),
            // A new filesystem: no inode points to a block, nothing pending.
            shadow: StdMutex::new(Ext2Shadow {
                acl: vec![None; inodes],
                users: vec![0; blocks],
                bits: vec![false; blocks],
                pending: Vec::new(),
                ..Ext2Shadow::default()
            }),
            whole: StdMutex::new(Ext2Shadow::default()),
            spare: StdMutex::new(Ext2Touched::default()),
        }
    }

    /// Logs a write of inode `inode`'s `i_file_acl` (instrumentation).
    fn touch_inode(&self, inode: usize) {
        let touched = &mut *locked(&self.touched);
        Ext2Touched::push(&mut touched.inodes, &mut touched.overflowed, inode);
    }

    /// Logs a write of block `block`'s header (instrumentation).
    fn touch_block(&self, block: u64) {
        let touched = &mut *locked(&self.touched);
        Ext2Touched::push(&mut touched.blocks, &mut touched.overflowed, block);
    }

    /// Logs a write of block `block`'s bitmap bit (instrumentation): the block's facts are
    /// judged again, and its bit read again.
    fn touch_bit(&self, block: u64) {
        let touched = &mut *locked(&self.touched);
        Ext2Touched::push(&mut touched.blocks, &mut touched.overflowed, block);
        Ext2Touched::push(&mut touched.bits, &mut touched.overflowed, block);
    }

    /// The filesystem's mbcache world.
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// Inodes.
    pub fn inode_count(&self) -> usize {
        self.inodes.len()
    }

    /// Mirrors `ext2_new_block()` for one block: the lowest free one (ENOSPC when none).
    fn new_block(&self, cx: &Cx) -> Result<u64, Errno> {
        let mut bitmap = self.bitmap.lock(cx);
        let block = bitmap.iter().position(|used| !used).ok_or(Errno::ENOSPC)? as u64;
        bitmap[block as usize] = true;
        drop(bitmap);
        self.touch_bit(block);
        if locked(&self.freed)[block as usize] {
            cx.sim().mark("xattr: a freed block number handed out again");
        }
        Ok(block)
    }

    /// Mirrors `ext2_free_blocks()` for one block, called with the block's buffer locked.
    /// Reports freeing a block whose entry a task holds from a find: that task is about to share
    /// a block that is no longer in use.
    fn free_block(&self, cx: &Cx, block: u64) {
        if locked(&self.found).get(block as usize).is_some_and(|&held| held > 0) {
            let violation = Violation::new(
                ViolationKind::finding("xattr-block-freed-while-found"),
                format!("ext2_free_blocks({block}) while a task holds the block's entry from a find"),
            );
            cx.sim().report(Some(cx), violation);
        }
        self.bitmap.lock(cx)[block as usize] = false;
        self.touch_bit(block);
        if let Some(freed) = locked(&self.freed).get_mut(block as usize) {
            *freed = true;
        }
    }

    /// Counts a find handle to `handle`'s block held (`delta` 1) or given up (-1).
    fn note_found(&self, cx: &Cx, handle: &Handle, delta: i32) -> Result<(), MbError> {
        let (_, block) = self.registry.entry_block(cx, handle)?;
        self.note_found_block(block, delta);
        Ok(())
    }

    /// [`Ext2Xattr::note_found`] when the handle's block was just read (`ce->e_block`) and the
    /// handle is still held: the same count, without reading the entry again.
    fn note_found_block(&self, block: u64, delta: i32) {
        if let Some(count) = locked(&self.found).get_mut(block as usize) {
            *count = count.saturating_add_signed(delta);
        }
    }

    /// Mirrors `ext2_xattr_cache_insert()`: caches a new block under its hash. A failed
    /// allocation or an EBUSY insert leaves the block uncached, as the kernel does. The
    /// allocation asks for GFP_NOFS, which `mb_cache_entry_alloc()` honours only with
    /// `alloc-gfp-nofs` (before it: GFP_KERNEL, under `xattr_sem`).
    fn cache_insert(&self, cx: &Cx, block: u64, value: u32) -> Result<(), MbError> {
        let handle = match self.registry.alloc_gfp(cx, self.cache, Gfp::GFP_NOFS) {
            Ok(handle) => handle,
            Err(MbError::Errno(_)) => return Ok(()),
            Err(other) => return Err(other),
        };
        match self.registry.insert(cx, &handle, self.bdev, block, &[value]) {
            Ok(()) | Err(MbError::Errno(Errno::EBUSY)) => {}
            Err(other) => return Err(other),
        }
        self.registry.release(cx, handle)
    }

    /// The first step of `ext2_xattr_cache_find()`: `mb_cache_entry_find_first()` on the hash,
    /// retried on -EAGAIN (an entry freed while the find slept) when the ext2 half of the race fix
    /// is in. The handle found is held (and counted as found) until the set finishes with it.
    fn cache_find_first(&self, cx: &Cx, value: u32) -> Result<Option<Handle>, MbError> {
        let retry = self.registry.fixes().on(XATTR_ENTRY_BEFORE_BUFFER_LOCK);
        loop {
            match self.registry.find_first(cx, self.cache, 0, self.bdev, value) {
                Err(MbError::Errno(Errno::EAGAIN)) if retry => {
                    cx.sim().mark("xattr: cache_find retried after EAGAIN");
                }
                Err(MbError::Errno(_)) => return Ok(None),
                Ok(Some(handle)) => {
                    self.note_found(cx, &handle, 1)?;
                    return Ok(Some(handle));
                }
                other => return other,
            }
        }
    }

    /// `mb_cache_entry_find_next()` in `ext2_xattr_cache_find()`'s loop, with the same retry.
    fn cache_find_next(&self, cx: &Cx, prev: Handle, value: u32) -> Result<Option<Handle>, MbError> {
        match self.registry.find_next(cx, prev, 0, self.bdev, value) {
            Ok(Some(handle)) => {
                self.note_found(cx, &handle, 1)?;
                Ok(Some(handle))
            }
            Err(MbError::Errno(Errno::EAGAIN))
                if self.registry.fixes().on(XATTR_ENTRY_BEFORE_BUFFER_LOCK) =>
            {
                cx.sim().mark("xattr: cache_find retried after EAGAIN");
                self.cache_find_first(cx, value)
            }
            Err(MbError::Errno(_)) => Ok(None),
            other => other,
        }
    }

    /// Mirrors `ext2_xattr_set()` (with `ext2_xattr_set2()`) for inode `inode` and `value`, under
    /// `xattr_sem`: nothing to do when the inode's block already holds the value; a cached block
    /// with the same contents stops the call at the operation boundary holding its find handle
    /// ([`Pending::Share`]); otherwise a new block is written and cached. WouldBlock: the find
    /// would sleep on an entry another task holds exclusively (nothing changed).
    pub fn set(&self, cx: &Cx, inode: usize, value: u32) -> Result<Step, MbError> {
        let mut sem = self.inodes[inode].down_write(cx);
        if let Some(old) = sem.file_acl {
            if self.blocks[old as usize].lock(cx).value == value {
                return Ok(Step::Done);
            }
        }
        if let Some(found) = self.cache_find_first(cx, value)? {
            cx.sim().mark("xattr: cache_find handed out a block");
            return Ok(Step::Pending(Pending::Share { inode, value, found }));
        }
        self.write_new_block(cx, &mut sem.file_acl, inode, value)
    }

    /// The new-block path of `ext2_xattr_set2()`: allocate, write the header (`h_refcount` 1),
    /// cache it, point the inode at it, and dispose of the old block.
    fn write_new_block(
        &self,
        cx: &Cx,
        file_acl: &mut Option<u64>,
        inode: usize,
        value: u32,
    ) -> Result<Step, MbError> {
        let block = self.new_block(cx).map_err(MbError::Errno)?;
        *self.blocks[block as usize].lock(cx) = BlockHeader { in_use: true, refcount: 1, value };
        self.touch_block(block);
        self.cache_insert(cx, block, value)?;
        self.touch_inode(inode);
        match file_acl.replace(block) {
            Some(old) => self.release_block(cx, inode, old, false),
            None => Ok(Step::Done),
        }
    }

    /// The rest of `ext2_xattr_set2()` after `ext2_xattr_cache_find()` handed out `found`: read
    /// the block, and share it (`h_refcount` + 1 under the buffer lock) if it still holds `value`
    /// and is below the maximum; otherwise walk on with find_next, and without a block to share
    /// write a new one. The old block is disposed of last.
    fn set_finish(&self, cx: &Cx, inode: usize, value: u32, found: Handle) -> Result<Step, MbError> {
        let mut sem = self.inodes[inode].down_write(cx);
        let mut candidate = Some(found);
        while let Some(handle) = candidate {
            let (_, block) = self.registry.entry_block(cx, &handle)?;
            if self.try_share(cx, &handle, block, value)? {
                self.touch_inode(inode);
                return match sem.file_acl.replace(block) {
                    Some(old) if old != block => self.release_block(cx, inode, old, false),
                    _ => Ok(Step::Done),
                };
            }
            self.note_found_block(block, -1);
            let kept = handle.clone();
            candidate = match self.cache_find_next(cx, handle, value) {
                Err(MbError::WouldBlock) => {
                    self.note_found_block(block, 1);
                    return Ok(Step::Pending(Pending::Share { inode, value, found: kept }));
                }
                other => other?,
            };
        }
        self.write_new_block(cx, &mut sem.file_acl, inode, value)
    }

    /// Reads `block` under its buffer lock and shares it when it holds `value` and its
    /// `h_refcount` is not above [`EXT2_XATTR_REFCOUNT_MAX`]; gives up the find handle either way
    /// when shared (before `lock_buffer()` in the seed, after the increment with the fix).
    /// Sharing a block that was freed since find handed it out is reported.
    fn try_share(&self, cx: &Cx, handle: &Handle, block: u64, value: u32) -> Result<bool, MbError> {
        let fixed = self.registry.fixes().on(XATTR_ENTRY_BEFORE_BUFFER_LOCK);
        let header = *self.blocks[block as usize].lock(cx);
        if header.refcount > EXT2_XATTR_REFCOUNT_MAX {
            cx.sim().mark("xattr: block above its refcount maximum not shared");
            return Ok(false);
        }
        if header.value != value {
            return Ok(false);
        }
        self.note_found_block(block, -1);
        if !fixed {
            self.registry.release(cx, handle.clone())?;
        }
        let mut header = self.blocks[block as usize].lock(cx);
        if !header.in_use {
            let violation = Violation::new(
                ViolationKind::finding("xattr-block-reused"),
                format!("inode shares block {block}, which was freed after find handed it out"),
            );
            cx.sim().report(Some(cx), violation);
        }
        header.refcount += 1;
        cx.sim().mark("xattr: block shared");
        drop(header);
        self.touch_block(block);
        if fixed {
            self.registry.release(cx, handle.clone())?;
        }
        Ok(true)
    }

    /// Disposes of `block`, which inode `inode` no longer uses (the tail of `ext2_xattr_set2()`
    /// and `ext2_xattr_delete_inode()`): the last user frees the block and its cache entry, any
    /// other drops `h_refcount`. With the ext2 half of the race fix the entry is taken with
    /// `mb_cache_entry_get()` before `lock_buffer()`; the seed takes it only to free it, under
    /// the buffer lock (`ext2_xattr_cache_remove()`). A get that would sleep leaves
    /// [`Pending::Release`].
    fn release_block(&self, cx: &Cx, inode: usize, block: u64, clear: bool) -> Result<Step, MbError> {
        let pending = Ok(Step::Pending(Pending::Release { inode, block, clear }));
        let early = self.registry.fixes().on(XATTR_ENTRY_BEFORE_BUFFER_LOCK);
        let mut entry = None;
        if early {
            match self.registry.get(cx, self.cache, self.bdev, block) {
                Err(MbError::WouldBlock) => return pending,
                taken => entry = taken?,
            }
        }
        let mut header = self.blocks[block as usize].lock(cx);
        if header.refcount == 1 {
            if !early {
                match self.registry.get(cx, self.cache, self.bdev, block) {
                    Err(MbError::WouldBlock) => return pending,
                    taken => entry = taken?,
                }
            }
            if let Some(entry) = entry {
                self.registry.free(cx, entry)?;
            }
            header.in_use = false;
            self.touch_block(block);
            cx.sim().mark("xattr: last user frees the block");
            self.free_block(cx, block);
        } else {
            header.refcount -= 1;
            self.touch_block(block);
            if let Some(entry) = entry {
                self.registry.release(cx, entry)?;
            }
        }
        Ok(Step::Done)
    }

    /// Mirrors `ext2_xattr_delete_inode()`: under `xattr_sem`, disposes of the inode's block.
    pub fn delete_inode(&self, cx: &Cx, inode: usize) -> Result<Step, MbError> {
        let mut sem = self.inodes[inode].down_write(cx);
        let Some(block) = sem.file_acl else { return Ok(Step::Done) };
        let step = self.release_block(cx, inode, block, true)?;
        if step == Step::Done {
            sem.file_acl = None;
            self.touch_inode(inode);
        }
        Ok(step)
    }

    /// Continues a task's pending step where the last operation left it.
    pub fn resume(&self, cx: &Cx, pending: Pending) -> Result<Step, MbError> {
        match pending {
            Pending::Share { inode, value, found } => self.set_finish(cx, inode, value, found),
            Pending::Release { inode, block, clear } => {
                let mut sem = self.inodes[inode].down_write(cx);
                let step = self.release_block(cx, inode, block, clear)?;
                if step == Step::Done && clear {
                    sem.file_acl = None;
                    self.touch_inode(inode);
                }
                Ok(step)
            }
        }
    }

    /// Gives up a pending step at teardown: a find handle is released, a disposal completed.
    pub fn abandon(&self, cx: &Cx, pending: Pending) -> Result<(), MbError> {
        match pending {
            Pending::Share { found, .. } => {
                self.note_found(cx, &found, -1)?;
                self.registry.release(cx, found)
            }
            release @ Pending::Release { .. } => match self.resume(cx, release)? {
                Step::Done => Ok(()),
                Step::Pending(_) => Err(MbError::WouldBlock),
            },
        }
    }

    /// The filesystem's invariants: each block in use has an `h_refcount` equal to the inodes
    /// that point to it plus the disposals still `pending` for it, never above
    /// `EXT2_XATTR_REFCOUNT_MAX + 1`; no inode points to a free block; the bitmap agrees with the
    /// headers. Reads through `cx` (an observer).
    pub fn check_invariants(&self, cx: &Cx, pending: &[u64]) -> Result<(), Violation> {
        self.registry.check_invariants(cx)?;
        // Its own scratch, not the incremental check's shadow: that one carries the incremental
        // check's counts from run to run, and must be tested across operations.
        let mut scratch = std::mem::take(&mut *locked(&self.whole));
        let result = self.blocks_count_their_users(cx, pending, &mut scratch);
        *locked(&self.whole) = scratch;
        result
    }

    /// [`Ext2Xattr::check_invariants`] confined to what was written since the last run: the
    /// cache's facts through `Registry::check_invariants_touched`, the blocks' counts for the
    /// blocks written, the blocks of the inodes written and the blocks of disposals pending now
    /// or at the last run (every other block and inode is as the last run saw it). When more was
    /// written than the log keeps, every block is counted again.
    pub fn check_invariants_incremental(&self, cx: &Cx, pending: &[u64]) -> Result<(), Violation> {
        self.registry.check_invariants_touched(cx)?;
        // Worked on in place (no copy of the state out and back): see `shadow`'s doc.
        let mut shadow = locked(&self.shadow);
        let mut touched = locked(&self.spare);
        std::mem::swap(&mut *locked(&self.touched), &mut *touched);
        let result = if touched.overflowed {
            self.blocks_count_their_users(cx, pending, &mut shadow)
        } else {
            self.written_blocks_count_their_users(cx, pending, &mut touched, &mut shadow)
        };
        touched.clear();
        result
    }

    /// Every inode's `i_file_acl` names an allocated block, and each allocated block's
    /// `h_refcount` counts the inodes that point to it (and the disposals left `pending`), within
    /// `EXT2_XATTR_REFCOUNT_MAX + 1`; the bitmap agrees with the blocks' headers. Leaves in
    /// `shadow` all it saw (whole, violation or not), for the incremental check to go on from.
    fn blocks_count_their_users(
        &self,
        cx: &Cx,
        pending: &[u64],
        shadow: &mut Ext2Shadow,
    ) -> Result<(), Violation> {
        // One look at each block's header, then the inodes' and the bitmap's, each an
        // observer's read (`Mutex::observe` of the buffer lock, `RwSem::observe_read`,
        // `SpinLock::observe`: no buffer lock, `xattr_sem` or bitmap lock round trip between
        // operations; the full one under shuttle or loom, so pinned windows keep their
        // scheduling points): the same snapshot as looking a block up again per inode (the
        // checker runs where nothing changes), with one look per block instead of one per user.
        let mut blocks = std::mem::take(&mut shadow.every);
        blocks.clear();
        blocks.extend(
            self.blocks.iter().map(|header| Tally { header: header.observe(cx, |h| *h), ..Tally::default() }),
        );
        let result = self.judge_every_block(cx, pending, shadow, &mut blocks);
        shadow.every = blocks;
        result
    }

    /// [`Ext2Xattr::blocks_count_their_users`] once each block's header is in `blocks`: the
    /// inodes and the bitmap read into `shadow`, then every block judged.
    fn judge_every_block(
        &self,
        cx: &Cx,
        pending: &[u64],
        shadow: &mut Ext2Shadow,
        blocks: &mut [Tally],
    ) -> Result<(), Violation> {
        shadow.acl.clear();
        shadow.acl.extend(self.inodes.iter().map(|sem| sem.observe_read(cx, |inode| inode.file_acl)));
        for block in shadow.acl.iter().flatten() {
            blocks[*block as usize].users += 1;
        }
        shadow.users.clear();
        shadow.users.extend(blocks.iter().map(|tally| tally.users));
        shadow.pending.clear();
        shadow.pending.extend_from_slice(pending);
        shadow.bits.clear();
        self.bitmap.observe(cx, |bitmap| shadow.bits.extend(bitmap.iter()));
        // Judged only once `shadow` is whole: a run that stops at a violation still leaves one
        // entry per inode and block for the next incremental run to index.
        let on_free = |(inode, acl): (usize, &Option<u64>)| {
            acl.filter(|&block| !blocks[block as usize].header.in_use).map(|block| (inode, block))
        };
        if let Some((inode, block)) = shadow.acl.iter().enumerate().find_map(on_free) {
            return Err(inode_points_to_free_block(inode, block));
        }
        for block in pending {
            if let Some(tally) = blocks.get_mut(*block as usize) {
                tally.users += 1;
            }
        }
        for (tally, bit) in blocks.iter_mut().zip(&shadow.bits) {
            tally.bit = *bit;
        }
        for (block, &tally) in blocks.iter().enumerate() {
            block_counts_its_users(block as u64, tally)?;
        }
        Ok(())
    }

    /// [`Ext2Xattr::blocks_count_their_users`]'s facts for the blocks whose header, bitmap bit or
    /// users may have changed since `shadow` was taken: those `touched` names, those its inodes
    /// moved between, and those whose count of pending disposals changed. The inodes `touched`
    /// names are read again; the others point where `shadow` says. Each block's header is an
    /// observer's read of its buffer (`Mutex::observe`); the bitmap (an observer's read too)
    /// only when `touched` names a bit written, and then only those bits (every other bit is as
    /// `shadow` says).
    fn written_blocks_count_their_users(
        &self,
        cx: &Cx,
        pending: &[u64],
        touched: &mut Ext2Touched,
        shadow: &mut Ext2Shadow,
    ) -> Result<(), Violation> {
        self.inodes_moved(cx, touched, shadow);
        pending_moved(&shadow.pending, pending, &mut touched.blocks);
        shadow.pending.clear();
        shadow.pending.extend_from_slice(pending);
        let blocks = &mut touched.blocks;
        blocks.retain(|&block| (block as usize) < self.blocks.len());
        blocks.sort_unstable();
        blocks.dedup();
        if !touched.bits.is_empty() {
            self.bitmap.observe(cx, |bitmap| {
                for &block in &touched.bits {
                    if let (Some(shadowed), Some(bit)) =
                        (shadow.bits.get_mut(block as usize), bitmap.get(block as usize))
                    {
                        *shadowed = *bit;
                    }
                }
            });
        }
        let mut tallies = std::mem::take(&mut shadow.tallies);
        tallies.clear();
        tallies.extend(blocks.iter().map(|&block| {
            let header = self.blocks[block as usize].observe(cx, |header| *header);
            let pending_users = pending.iter().filter(|&&p| p == block).count() as u32;
            let users = shadow.users[block as usize] + pending_users;
            (block, Tally { header, users, bit: shadow.bits[block as usize] })
        }));
        let look =
            |tallies: &[(u64, Tally)], block: u64| tallies.binary_search_by_key(&block, |&(b, _)| b).ok();
        let on_free = |(inode, acl): (usize, &Option<u64>)| {
            acl.filter(|&block| look(&tallies, block).is_some_and(|at| !tallies[at].1.header.in_use))
                .map(|block| (inode, block))
        };
        let result = match shadow.acl.iter().enumerate().find_map(on_free) {
            Some((inode, block)) => Err(inode_points_to_free_block(inode, block)),
            None => tallies.iter().try_for_each(|&(block, tally)| block_counts_its_users(block, tally)),
        };
        shadow.tallies = tallies;
        result
    }

    /// Reads again each inode `touched` names (its `xattr_sem`'s observer read) and moves its user from the
    /// block `shadow` had it on to the block it points to now, adding both to `touched.blocks`
    /// (none when it points where it did).
    fn inodes_moved(&self, cx: &Cx, touched: &mut Ext2Touched, shadow: &mut Ext2Shadow) {
        let (inodes, blocks) = (&mut touched.inodes, &mut touched.blocks);
        inodes.sort_unstable();
        inodes.dedup();
        for &inode in inodes.iter() {
            let acl = self.inodes[inode].observe_read(cx, |inode| inode.file_acl);
            let before = std::mem::replace(&mut shadow.acl[inode], acl);
            if before == acl {
                continue;
            }
            if let Some(block) = before {
                shadow.users[block as usize] -= 1;
                blocks.push(block);
            }
            if let Some(block) = acl {
                shadow.users[block as usize] += 1;
                blocks.push(block);
            }
        }
    }

    /// Unmount: destroys the cache (every entry is unused by then) and reports orphans.
    pub fn unmount(&self, cx: &Cx) -> Result<i32, MbError> {
        let destroyed = self.registry.destroy(cx, self.cache)?;
        self.registry.exit_mbcache();
        Ok(destroyed.orphans)
    }
}

/// Adds to `blocks` each block whose count of disposals pending differs between `before` (at the
/// last run) and `now`: the blocks whose users the pending steps moved.
fn pending_moved(before: &[u64], now: &[u64], blocks: &mut Vec<u64>) {
    let count = |list: &[u64], block: u64| list.iter().filter(|&&b| b == block).count();
    for &block in before.iter().chain(now) {
        if count(before, block) != count(now, block) {
            blocks.push(block);
        }
    }
}

/// The violation of an inode whose `i_file_acl` names a free block.
fn inode_points_to_free_block(inode: usize, block: u64) -> Violation {
    Violation::new(
        ViolationKind::invariant("xattr-inode-points-to-free-block"),
        format!("inode {inode} points to free block {block}"),
    )
}

/// One block's counts: `h_refcount` (0 when free) equals the users counted, the bitmap bit
/// agrees with the header, and the count is within `EXT2_XATTR_REFCOUNT_MAX + 1`.
fn block_counts_its_users(block: u64, Tally { header, users: expect, bit }: Tally) -> Result<(), Violation> {
    let counted = if header.in_use { header.refcount } else { 0 };
    if counted != expect || bit != header.in_use || counted > EXT2_XATTR_REFCOUNT_MAX + 1 {
        return Err(Violation::new(
            ViolationKind::invariant("xattr-refcount"),
            format!("block {block}: {header:?}, bitmap {bit}, {expect} users"),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixes::PRESET_LATER;
    use sim_core::lockdep::ReportMode;
    use sim_core::SimConfig;

    fn fs() -> (Sim, Ext2Xattr) {
        let sim = Sim::new(SimConfig::new(5).cpus(2).lockdep(ReportMode::Collect));
        let fixes = Fixes::preset(PRESET_LATER).expect("preset");
        let ext2 = Ext2Xattr::new(&sim, &sim.cx("mount", 0), fixes, Waits::WouldBlock, 4, 8);
        (sim, ext2)
    }

    /// Runs a set to completion (continuing a share it left pending).
    fn set(ext2: &Ext2Xattr, cx: &Cx, inode: usize, value: u32) {
        let mut step = ext2.set(cx, inode, value).expect("set");
        while let Step::Pending(pending) = step {
            step = ext2.resume(cx, pending).expect("resume");
        }
    }

    /// Both checks' verdicts on the filesystem's blocks (the incremental one second, as the
    /// harness's comparison runs them).
    fn verdicts(sim: &Sim, ext2: &Ext2Xattr) -> (Option<String>, Option<String>) {
        let check = sim.observer_cx("check", 0);
        let whole = ext2.check_invariants(&check, &[]).err().map(|v| v.kind.to_string());
        let incremental = ext2.check_invariants_incremental(&check, &[]).err().map(|v| v.kind.to_string());
        (whole, incremental)
    }

    /// The incremental check reads only the inodes and blocks the log names and the blocks their
    /// users moved between, and checks them as the whole check does: quiet over sets, a share and
    /// a delete, and a header written wrong (logged, as every model write is) found by both.
    #[test]
    fn the_incremental_block_check_finds_a_wrong_count_where_the_whole_check_does() {
        let (sim, ext2) = fs();
        let cx = sim.cx("setfattr", 0);
        for (inode, value) in [(0, 5), (1, 5), (2, 6), (3, 7)] {
            set(&ext2, &cx, inode, value);
            assert_eq!(verdicts(&sim, &ext2), (None, None), "after set({inode}, {value})");
        }
        ext2.delete_inode(&cx, 0).expect("delete");
        set(&ext2, &cx, 3, 6);
        assert_eq!(verdicts(&sim, &ext2), (None, None), "after a delete and a share");
        let shared = ext2.inodes[1].down_read(&cx).file_acl.expect("inode 1 has a block");
        ext2.blocks[shared as usize].lock(&cx).refcount += 1;
        ext2.touch_block(shared);
        let (whole, incremental) = verdicts(&sim, &ext2);
        assert_eq!(whole.as_deref(), Some("invariant:xattr-refcount"), "replay: this test, seed 5");
        assert_eq!(incremental, whole, "replay: this test, seed 5");
    }

    /// An inode left pointing to a block whose header says free: both checks name it.
    #[test]
    fn the_incremental_block_check_finds_an_inode_on_a_free_block() {
        let (sim, ext2) = fs();
        let cx = sim.cx("setfattr", 0);
        set(&ext2, &cx, 2, 9);
        assert_eq!(verdicts(&sim, &ext2), (None, None));
        let block = ext2.inodes[2].down_read(&cx).file_acl.expect("inode 2 has a block");
        ext2.blocks[block as usize].lock(&cx).in_use = false;
        ext2.touch_block(block);
        let (whole, incremental) = verdicts(&sim, &ext2);
        assert_eq!(
            whole.as_deref(),
            Some("invariant:xattr-inode-points-to-free-block"),
            "replay: this test, seed 5"
        );
        assert_eq!(incremental, whole, "replay: this test, seed 5");
    }

    /// The incremental check goes on from its own last run, never from the whole check's: a
    /// drift planted in its running count of a block's users (which the whole check does not
    /// read) is what it reports once that block is written again, while the whole check, run
    /// first as the harness runs it, finds nothing.
    #[test]
    fn the_incremental_check_carries_its_own_counts_across_runs() {
        let (sim, ext2) = fs();
        let cx = sim.cx("setfattr", 0);
        set(&ext2, &cx, 0, 5);
        assert_eq!(verdicts(&sim, &ext2), (None, None), "replay: this test, seed 5");
        let block = ext2.inodes[0].down_read(&cx).file_acl.expect("inode 0 has a block");
        locked(&ext2.shadow).users[block as usize] += 1;
        set(&ext2, &cx, 2, 6);
        ext2.touch_block(block);
        let (whole, incremental) = verdicts(&sim, &ext2);
        assert_eq!(whole, None, "replay: this test, seed 5");
        assert_eq!(incremental.as_deref(), Some("invariant:xattr-refcount"), "replay: this test, seed 5");
    }

    /// The bitmap is read only where the log names a bit written, and the other bits are the
    /// incremental check's own record: a bit cleared under an allocated block and logged as a bit
    /// write is found by both checks; a drift planted in the record of a block's bit (which the
    /// whole check does not read) is reported once that block's header is written again, so the
    /// recorded bit, not a skipped fact, is what the incremental check judges.
    #[test]
    fn the_incremental_check_reads_the_bits_written_and_judges_the_others_as_recorded() {
        let (sim, ext2) = fs();
        let cx = sim.cx("setfattr", 0);
        set(&ext2, &cx, 0, 5);
        set(&ext2, &cx, 1, 6);
        assert_eq!(verdicts(&sim, &ext2), (None, None), "replay: this test, seed 5");
        let first = ext2.inodes[0].down_read(&cx).file_acl.expect("inode 0 has a block");
        let second = ext2.inodes[1].down_read(&cx).file_acl.expect("inode 1 has a block");
        locked(&ext2.shadow).bits[second as usize] = false;
        ext2.touch_block(second);
        let (whole, incremental) = verdicts(&sim, &ext2);
        assert_eq!(whole, None, "replay: this test, seed 5");
        assert_eq!(incremental.as_deref(), Some("invariant:xattr-refcount"), "replay: this test, seed 5");
        locked(&ext2.shadow).bits[second as usize] = true;
        ext2.bitmap.lock(&cx)[first as usize] = false;
        ext2.touch_bit(first);
        let (whole, incremental) = verdicts(&sim, &ext2);
        assert_eq!(whole.as_deref(), Some("invariant:xattr-refcount"), "replay: this test, seed 5");
        assert_eq!(incremental, whole, "replay: this test, seed 5");
    }

    /// A block is judged again when its count of pending disposals changes, with nothing
    /// written: a disposal said pending for a block whose one user still points to it breaks
    /// its count for both checks; while the same disposal stays pending and nothing is written
    /// the block is not read again, and once it is gone the block counts its users again.
    #[test]
    fn a_change_in_the_disposals_pending_is_judged_with_nothing_written() {
        let (sim, ext2) = fs();
        let cx = sim.cx("setfattr", 0);
        set(&ext2, &cx, 2, 8);
        let block = ext2.inodes[2].down_read(&cx).file_acl.expect("inode 2 has a block");
        let check = sim.observer_cx("check", 0);
        let kind = |result: Result<(), Violation>| result.err().map(|v| v.kind.to_string());
        assert_eq!(kind(ext2.check_invariants_incremental(&check, &[])), None, "replay: this test, seed 5");
        let whole = kind(ext2.check_invariants(&check, &[block]));
        let incremental = kind(ext2.check_invariants_incremental(&check, &[block]));
        assert_eq!(whole.as_deref(), Some("invariant:xattr-refcount"), "replay: this test, seed 5");
        assert_eq!(incremental, whole, "replay: this test, seed 5");
        let again = kind(ext2.check_invariants_incremental(&check, &[block]));
        assert_eq!(again, None, "nothing moved: replay: this test, seed 5");
        let after = kind(ext2.check_invariants_incremental(&check, &[]));
        assert_eq!(after, None, "replay: this test, seed 5");
    }

    /// A run that stops at a violation (the whole check, then an incremental one past the log's
    /// bound that counts every block again) leaves the incremental state whole: once the header
    /// is put right, an incremental run alone (no whole check first to rebuild its state) over
    /// the last inode neither panics nor finds anything.
    #[test]
    fn a_violation_a_check_stops_at_leaves_the_incremental_state_whole() {
        let (sim, ext2) = fs();
        let cx = sim.cx("setfattr", 0);
        for inode in 0..4 {
            set(&ext2, &cx, inode, 10 + inode as u32);
        }
        assert_eq!(verdicts(&sim, &ext2), (None, None), "replay: this test, seed 5");
        let block = ext2.inodes[0].down_read(&cx).file_acl.expect("inode 0 has a block");
        ext2.blocks[block as usize].lock(&cx).in_use = false;
        ext2.touch_block(block);
        locked(&ext2.touched).overflowed = true;
        let free = Some("invariant:xattr-inode-points-to-free-block".to_string());
        assert_eq!(verdicts(&sim, &ext2), (free.clone(), free), "replay: this test, seed 5");
        ext2.blocks[block as usize].lock(&cx).in_use = true;
        ext2.touch_block(block);
        ext2.delete_inode(&cx, 3).expect("delete");
        let incremental = ext2.check_invariants_incremental(&sim.observer_cx("check", 0), &[]);
        assert_eq!(incremental.err().map(|v| v.kind.to_string()), None, "replay: this test, seed 5");
    }
}
