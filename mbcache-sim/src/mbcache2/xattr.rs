//! fs/ext4/xattr.c as far as it shares xattr blocks through mbcache2: a new block is inserted
//! into the cache (`ext4_xattr_block_cache_insert`), found for reuse
//! (`ext4_xattr_block_cache_find`), reused by `ext4_xattr_block_set()` (journal write access,
//! then under the buffer lock one more `h_refcount`, the entry no longer reusable at the
//! maximum, then `mb_cache_entry_touch`), and released by `ext4_xattr_release_block()`.
//!
//! The release is where the reuse-vs-release race lived. Before 65f8b80053a1 the last reference's
//! release deleted the cache entry and freed the block while a task that had just found the
//! entry was on its way to reuse it; the reuser's journal write access then landed on a freed
//! block (cancelling its revoke: journal corruption, or jbd2 assertions), and only under the
//! buffer lock did it see the entry unhashed and back off. From 65f8b80053a1 on, the release uses
//! `mb_cache_entry_delete_or_get()`: an entry somebody holds is not deleted, and the releaser
//! drops the buffer lock, waits until it is the entry's last user, and starts again.
//!
//! What ksim leaves out: block contents (the key stands for the content hash, so one key is one
//! content), quota, the inode side, journalling beyond "write access to this block", and the
//! `h_refcount` maximum, which is a small config number instead of 1024 so it is reached.

use sim_core::locks::{MutexGuard, SpinLockGuard};
use sim_core::{Cx, Errno, Mutex, SpinLock, Violation, ViolationKind};
use std::sync::atomic::{AtomicU64 as StdAtomicU64, Ordering as StdOrdering};

use super::fixes::{DELETE_OR_GET, REUSABLE_FLAG};
use super::mbcache::{CacheHandle, EntryHandle, MbCache, MbcacheModule, MBE_REUSABLE_B};

/// The finding reported when journal write access is taken to a freed block.
pub(crate) const REUSE_OF_FREED_BLOCK: ViolationKind =
    ViolationKind::finding("ext4-xattr-reuse-of-freed-block");

/// The xattr block header and its buffer's state.
#[derive(Debug, Default)]
pub(crate) struct BufferHead {
    /// Allocated to some inode's xattrs.
    pub(crate) allocated: bool,
    /// `h_refcount`: inodes sharing the block.
    pub(crate) h_refcount: u32,
    /// `h_hash`: the content hash, the cache key.
    pub(crate) h_hash: u32,
}

/// One filesystem's xattr blocks: a buffer (under `BH_Lock`) per block and the block bitmap.
#[derive(Debug)]
pub(crate) struct XattrBlocks {
    /// `lock_buffer()`/`unlock_buffer()`, one sleeping lock per block, all of class `BH_Lock`.
    pub(crate) buffers: Vec<Mutex<BufferHead>>,
    /// Which blocks are allocated, as the group's bitmap says (under `ext4_group_lock`).
    bitmap: SpinLock<Vec<bool>>,
    /// `EXT4_XATTR_REFCOUNT_MAX` (1024 in the kernel).
    pub(crate) refcount_max: u32,
    /// Checker state, beside the buffers and under no model lock: per block, how many times the
    /// model took its buffer lock ([`XattrBlocks::lock_buffer`], reads and writes alike), so a
    /// check that read a header can read it again only once the count moved
    /// ([`XattrBlocks::block_state_kept`]). A `std` atomic: no schedule point, no trace.
    locked: Vec<StdAtomicU64>,
    /// Checker state, as `locked`: how many times the model took the bitmap's lock
    /// ([`XattrBlocks::lock_bitmap`]), for [`XattrBlocks::bitmap_kept`].
    bitmap_locked: StdAtomicU64,
    /// Checker state, as `locked`: the buffer locks the model took, every block's together
    /// (see [`XattrBlocks::locks_taken`]).
    buffers_locked: StdAtomicU64,
}

/// What the checker last read of one filesystem's blocks, kept between checks: the bitmap
/// with the bitmap lock's count then ([`XattrBlocks::bitmap_kept`]), and each block's header
/// with its buffer lock's count then (None: never read; [`XattrBlocks::block_state_kept`]).
#[derive(Debug, Default)]
pub(crate) struct KeptBlocks {
    bitmap: Vec<bool>,
    bitmap_locked: Option<u64>,
    /// How many bits of `bitmap` are set: counted by the first pick after it is read (None
    /// until then; [`XattrBlocks::nth_allocated_kept`]).
    allocated: Option<usize>,
    headers: Vec<Option<(u64, HeaderState)>>,
    /// The cache's [`MbCache::hash_version`](super::mbcache::MbCache) and the blocks'
    /// [`XattrBlocks::locks_taken`] when the incremental check last found every hashed block
    /// allocated with its entry's key as its hash (see `Mbcache2Subject::check_cache`).
    pub(crate) chains_judged: Option<(u64, (u64, u64))>,
}

/// A header as the checker reads it: (allocated, h_refcount, h_hash).
type HeaderState = (bool, u32, u32);

impl KeptBlocks {
    /// The bitmap as [`XattrBlocks::bitmap_kept`] last brought it up to date.
    #[cfg(test)]
    pub(crate) fn bitmap(&self) -> &[bool] {
        &self.bitmap
    }
}

/// What `ext4_xattr_release_block()` did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Release {
    /// Dropped one reference; this many remain.
    Dropped(u32),
    /// Dropped the last reference and freed the block.
    Freed,
    /// `mb_cache_entry_delete_or_get()` returned the entry (held): somebody uses it. The caller
    /// waits until it is unused (`release_after_wait`), then starts again.
    Wait(EntryHandle),
}

/// What `ext4_xattr_block_set()`'s reuse of a found block did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Reuse {
    /// One more reference; the block's `h_refcount` is now this.
    Reused(u32),
    /// The entry was unhashed or not reusable, or the block was full: undone, look again.
    Undone,
}

impl XattrBlocks {
    /// `blocks` free blocks, each reusable up to `refcount_max` times.
    pub(crate) fn new(blocks: u16, refcount_max: u32) -> XattrBlocks {
        XattrBlocks {
            buffers: (0..blocks).map(|_| Mutex::new("BH_Lock", BufferHead::default())).collect(),
            bitmap: SpinLock::new("ext4_group_lock", vec![false; usize::from(blocks)]),
            refcount_max,
            locked: (0..blocks).map(|_| StdAtomicU64::new(0)).collect(),
            bitmap_locked: StdAtomicU64::new(0),
            buffers_locked: StdAtomicU64::new(0),
        }
    }

    /// How many times the model took the bitmap's lock and any buffer's lock so far (checker
    /// state): while both stand still, the bitmap and every header are as a check read them.
    pub(crate) fn locks_taken(&self) -> (u64, u64) {
        (self.bitmap_locked.load(StdOrdering::Relaxed), self.buffers_locked.load(StdOrdering::Relaxed))
    }

    /// `ext4_lock_group()` around the bitmap, by the model: every access of the model to the
    /// bitmap goes through here, and counts (`bitmap_locked`) for the checker.
    #[track_caller]
    fn lock_bitmap<'a>(&'a self, cx: &'a Cx) -> SpinLockGuard<'a, Vec<bool>> {
        let bitmap = self.bitmap.lock(cx);
        super::mbcache::bump(&self.bitmap_locked);
        bitmap
    }

    /// `lock_buffer(bh)` of `block`, by the model: every access of the model to a header goes
    /// through here, and counts (`locked`) for the checker.
    #[track_caller]
    fn lock_buffer<'a>(&'a self, cx: &'a Cx, block: usize) -> MutexGuard<'a, BufferHead> {
        let bh = self.buffers[block].lock(cx);
        super::mbcache::bump(&self.locked[block]);
        super::mbcache::bump(&self.buffers_locked);
        bh
    }

    /// A new xattr block (ext4_new_meta_blocks, the lowest free block, so freed numbers come
    /// back) holding content `key`, then `ext4_xattr_block_cache_insert()` (reusable while below
    /// the maximum). ENOSPC when every block is allocated.
    pub(crate) fn new_block(
        &self,
        cx: &Cx,
        mb: &MbcacheModule,
        cache_handle: CacheHandle,
        cache: &MbCache,
        key: u32,
    ) -> Result<u64, Errno> {
        let block = {
            let mut bitmap = self.lock_bitmap(cx);
            let block = bitmap.iter().position(|used| !used).ok_or(Errno::ENOSPC)?;
            bitmap[block] = true;
            block
        };
        {
            let mut bh = self.lock_buffer(cx, block);
            *bh = BufferHead { allocated: true, h_refcount: 1, h_hash: key };
        }
        // ext4 ignores a failed insert: the block is simply not shared.
        let reusable = self.refcount_max > 1;
        if mb.mb_cache_entry_create(cx, cache_handle, cache, key, block as u64, reusable).is_err() {
            cx.sim().mark("xattr-insert-failed");
        }
        Ok(block as u64)
    }

    /// `ext4_xattr_block_get()`'s insert of a block it read (`ext4_xattr_block_cache_insert`):
    /// reusable while below the maximum; EBUSY when the cache has it already. (ksim reads the
    /// header under the buffer lock, which the kernel's read does not take.)
    pub(crate) fn block_get(
        &self,
        cx: &Cx,
        mb: &MbcacheModule,
        cache_handle: CacheHandle,
        cache: &MbCache,
        block: u64,
    ) -> Result<(), Errno> {
        let (key, reusable) = {
            let bh = self.lock_buffer(cx, block as usize);
            (bh.h_hash, bh.h_refcount < self.refcount_max)
        };
        mb.mb_cache_entry_create(cx, cache_handle, cache, key, block, reusable)
    }

    /// `ext4_xattr_block_cache_find()`: the first reusable entry for `key` (the content compare
    /// always matches: one key is one content here).
    pub(crate) fn cache_find(
        &self,
        cx: &Cx,
        mb: &MbcacheModule,
        cache: &MbCache,
        key: u32,
    ) -> Option<EntryHandle> {
        mb.mb_cache_entry_find_first(cx, cache, key)
    }

    /// The reuse in `ext4_xattr_block_set()` of the block behind `ce`, which the caller found
    /// and holds; the reference on `ce` is dropped at the end.
    pub(crate) fn reuse(&self, cx: &Cx, mb: &MbcacheModule, cache: &MbCache, ce: EntryHandle) -> Reuse {
        let Some(entry) = mb.entry(cx, ce) else { return Reuse::Undone };
        let block = entry.value() as usize;
        self.journal_get_write_access(cx, block);
        let mut bh = self.lock_buffer(cx, block);
        let hashed = entry.e_hashed().load(sim_core::sync::atomic::Ordering::Relaxed);
        let reusable = !mb.fixes.on(REUSABLE_FLAG) || entry.e_flags().test(cx, mb.fixes, MBE_REUSABLE_B);
        let reference = bh.h_refcount + 1;
        if !hashed || !reusable || reference > self.refcount_max {
            drop(bh);
            mb.mb_cache_entry_put(cx, cache, ce);
            cx.sim().mark("xattr-reuse-undone");
            return Reuse::Undone;
        }
        bh.h_refcount = reference;
        if reference == self.refcount_max {
            entry.e_flags().assign(cx, mb.fixes, MBE_REUSABLE_B, false);
            cx.sim().mark("xattr-block-full");
        }
        drop(bh);
        mb.mb_cache_entry_touch(cx, ce);
        mb.mb_cache_entry_put(cx, cache, ce);
        cx.sim().mark("xattr-reused");
        Reuse::Reused(reference)
    }

    /// `ext4_xattr_block_set()`'s sharing path as one call, as a system call runs it: find a
    /// reusable block with content `key` (`ext4_xattr_block_cache_find`) and reuse it; a reuse
    /// undone looks in the cache again (`goto inserted`). Before the reusable flag (4.6 to 4.9),
    /// the find itself read each candidate's header and passed over a block at the maximum
    /// (ksim reads it under the buffer lock). The block shared and its new `h_refcount`, or None
    /// when the cache has no block to share.
    pub(crate) fn share(&self, cx: &Cx, mb: &MbcacheModule, cache: &MbCache, key: u32) -> Option<(u64, u32)> {
        let mut found = mb.mb_cache_entry_find_first(cx, cache, key);
        while let Some(ce) = found {
            let block = mb.entry(cx, ce)?.value();
            if !mb.fixes.on(REUSABLE_FLAG)
                && self.lock_buffer(cx, block as usize).h_refcount >= self.refcount_max
            {
                found = mb.mb_cache_entry_find_next(cx, cache, ce);
                continue;
            }
            ext4_sb_bread();
            match self.reuse(cx, mb, cache, ce) {
                Reuse::Reused(count) => return Some((block, count)),
                Reuse::Undone => found = mb.mb_cache_entry_find_first(cx, cache, key),
            }
        }
        None
    }

    /// `ext4_xattr_release_block()` to the end, sleeping in `mb_cache_entry_wait_unused()` and
    /// starting again as often as the kernel does; None when `block` is not allocated.
    pub(crate) fn release_waiting(
        &self,
        cx: &Cx,
        mb: &MbcacheModule,
        cache: &MbCache,
        block: u64,
    ) -> Option<Release> {
        loop {
            match self.release_block(cx, mb, cache, block) {
                Release::Wait(oe) => self.release_after_wait(cx, mb, cache, oe),
                Release::Dropped(0) => return None,
                done => return Some(done),
            }
        }
    }

    /// `ext4_journal_get_write_access()` on the block: the journal cancels the block's revoke.
    /// On a freed block that is the corruption 65f8b80053a1 names, reported here.
    fn journal_get_write_access(&self, cx: &Cx, block: usize) {
        let freed = !self.lock_bitmap(cx)[block];
        if freed {
            let message = format!(
                "journal write access to xattr block {block}, which another task freed after this one \
                 found it in the mbcache: its revoke is cancelled, and a journal replay after the block's \
                 reuse corrupts the filesystem"
            );
            cx.sim().report(Some(cx), Violation::new(REUSE_OF_FREED_BLOCK, message));
        }
    }

    /// `ext4_xattr_release_block()` up to the wait: drops one reference to `block`; the last one
    /// deletes the cache entry and frees the block, unless (from 65f8b80053a1 on) somebody holds
    /// the entry, when the caller must wait and call again.
    pub(crate) fn release_block(&self, cx: &Cx, mb: &MbcacheModule, cache: &MbCache, block: u64) -> Release {
        let index = block as usize;
        let mut bh = self.lock_buffer(cx, index);
        if !bh.allocated {
            return Release::Dropped(0);
        }
        let hash = bh.h_hash;
        if bh.h_refcount == 1 {
            if mb.fixes.on(DELETE_OR_GET) {
                if let Some(oe) = mb.mb_cache_entry_delete_or_get(cx, cache, hash, block) {
                    drop(bh);
                    return Release::Wait(oe);
                }
            } else {
                mb.mb_cache_entry_delete(cx, cache, hash, block);
            }
            *bh = BufferHead::default();
            drop(bh);
            self.lock_bitmap(cx)[index] = false;
            cx.sim().mark("xattr-block-freed");
            return Release::Freed;
        }
        bh.h_refcount -= 1;
        let left = bh.h_refcount;
        if left == self.refcount_max - 1 {
            if let Some(ce) = mb.mb_cache_entry_get(cx, cache, hash, block) {
                if let Some(entry) = mb.entry(cx, ce) {
                    entry.e_flags().assign(cx, mb.fixes, MBE_REUSABLE_B, true);
                }
                mb.mb_cache_entry_put(cx, cache, ce);
                cx.sim().mark("xattr-block-reusable-again");
            }
        }
        Release::Dropped(left)
    }

    /// The rest of a waiting release: `mb_cache_entry_wait_unused(oe)`, then the put of `oe`.
    /// The caller then calls [`XattrBlocks::release_block`] again (`goto retry_ref`).
    pub(crate) fn release_after_wait(&self, cx: &Cx, mb: &MbcacheModule, cache: &MbCache, oe: EntryHandle) {
        mb.mb_cache_entry_wait_unused(cx, cache, oe);
        mb.mb_cache_entry_put(cx, cache, oe);
    }

    /// Flips `block`'s bit under the bitmap's lock, as `new_block` and `release_block` write it
    /// (tests of the harness's pick).
    #[cfg(test)]
    pub(crate) fn flip_allocated_under_lock(&self, cx: &Cx, block: usize) {
        let mut bitmap = self.lock_bitmap(cx);
        bitmap[block] = !bitmap[block];
    }

    /// A model write that breaks the cache's facts: `block`'s `h_hash` set to `hash` under its
    /// buffer lock, as a buggy model would write it (tests of the checks).
    #[cfg(test)]
    pub(crate) fn rehash_under_lock(&self, cx: &Cx, block: usize, hash: u32) {
        self.lock_buffer(cx, block).h_hash = hash;
    }

    /// The bitmap's bits into `into`, for the checker: an observer's read (`SpinLock::observe`:
    /// no round trip between operations, the full one under shuttle or loom), done before any
    /// buffer lock, which the model never nests with the bitmap's.
    pub(crate) fn bitmap_into(&self, observer: &Cx, into: &mut Vec<bool>) {
        into.clear();
        self.bitmap.observe(observer, |bitmap| into.extend_from_slice(bitmap));
    }

    /// One block's (allocated, h_refcount, h_hash) given the bitmap `bitmap_into` read: a clear
    /// bit is a free block with a default header (a block's bit is set before its header is
    /// written, `new_block`, and cleared after its header is reset, `release_block`); a set one
    /// is an observer's read of the buffer (`Mutex::observe`: no round trip between operations,
    /// the full one under shuttle or loom).
    pub(crate) fn block_state(&self, observer: &Cx, bitmap: &[bool], block: u64) -> (bool, u32, u32) {
        let index = usize::try_from(block).unwrap_or(usize::MAX);
        if !bitmap.get(index).copied().unwrap_or(false) {
            return (false, 0, 0);
        }
        self.buffers[index].observe(observer, |bh| (bh.allocated, bh.h_refcount, bh.h_hash))
    }

    /// Brings `kept`'s bitmap up to date: read again ([`XattrBlocks::bitmap_into`]) only when
    /// the model took the bitmap's lock since it was read (the model changes the bitmap only
    /// under it, through [`XattrBlocks::lock_bitmap`]). The count is read before the bits, and
    /// bumped by the model while it holds the lock, so a read that saw the count also sees
    /// every change made under it.
    pub(crate) fn bitmap_kept(&self, observer: &Cx, kept: &mut KeptBlocks) {
        let locked = self.bitmap_locked.load(StdOrdering::Relaxed);
        if kept.bitmap_locked != Some(locked) {
            self.bitmap_into(observer, &mut kept.bitmap);
            kept.allocated = None;
            kept.bitmap_locked = Some(locked);
        }
    }

    /// [`XattrBlocks::nth_allocated`] from `kept`'s bitmap while the model has not taken the
    /// bitmap's lock since a check read it (then it is the bitmap, see
    /// [`XattrBlocks::bitmap_kept`]): one pass up to the block picked, with the count kept, and
    /// no observer's read. Otherwise the bitmap read as `nth_allocated` reads it.
    pub(crate) fn nth_allocated_kept(
        &self,
        observer: &Cx,
        index: u8,
        kept: Option<&mut KeptBlocks>,
    ) -> Option<u64> {
        let locked = self.bitmap_locked.load(StdOrdering::Relaxed);
        match kept {
            Some(kept) if kept.bitmap_locked == Some(locked) => {
                let bitmap = &kept.bitmap;
                let count =
                    *kept.allocated.get_or_insert_with(|| bitmap.iter().map(|&b| usize::from(b)).sum());
                nth_allocated_of(bitmap.iter().copied(), count, index)
            }
            _ => self.nth_allocated(observer, index),
        }
    }

    /// [`XattrBlocks::block_state`] with `kept`'s bitmap (see [`XattrBlocks::bitmap_kept`]),
    /// of a block whose header `kept` holds as read while the model's buffer lock count
    /// (`locked`) was what it is now: that read again, without the buffer's observer read (the
    /// model changes a header only under its buffer lock, through [`XattrBlocks::lock_buffer`],
    /// so the header is the one read); else read, and kept. A clear bit is a free block, as
    /// `block_state` says, whatever `kept` holds.
    pub(crate) fn block_state_kept(
        &self,
        observer: &Cx,
        block: u64,
        kept: &mut KeptBlocks,
    ) -> (bool, u32, u32) {
        let index = usize::try_from(block).unwrap_or(usize::MAX);
        if !kept.bitmap.get(index).copied().unwrap_or(false) {
            return (false, 0, 0);
        }
        let locked = self.locked[index].load(StdOrdering::Relaxed);
        if kept.headers.len() < self.buffers.len() {
            kept.headers.resize(self.buffers.len(), None);
        }
        if let Some((count, state)) = kept.headers[index] {
            if count == locked {
                return state;
            }
        }
        let state = self.block_state(observer, &kept.bitmap, block);
        kept.headers[index] = Some((locked, state));
        state
    }

    /// The `index`-th allocated block, modulo how many are (the bitmap alone, an observer's
    /// read as in `bitmap_into`), for the harness choosing which block an operation names.
    pub(crate) fn nth_allocated(&self, observer: &Cx, index: u8) -> Option<u64> {
        self.bitmap.observe(observer, |bitmap| nth_allocated(bitmap.iter().copied(), index))
    }

    /// The content hash of an allocated block, for the harness (an observer's read of the
    /// buffer, as in `block_state`).
    pub(crate) fn hash_of(&self, observer: &Cx, block: u64) -> u32 {
        self.buffers[block as usize].observe(observer, |bh| bh.h_hash)
    }
}

/// `ext4_sb_bread()` of a block `ext4_xattr_block_cache_find()` found in the cache, before it
/// compares the contents: the read waits for the buffer's I/O, so the task sleeps between
/// `mb_cache_entry_find_first()` and the reuse, with no lock held. ksim keeps no block contents
/// (the content hash is the content), so only the sleep is modelled: in a threaded campaign a
/// yield, where the scheduler may keep the task off while other threads run (the window of the
/// reuse-vs-release race, 65f8b80053a1, spans it); elsewhere nothing.
fn ext4_sb_bread() {
    #[cfg(feature = "threaded")]
    if sim_core::sync::schedule::in_execution() {
        sim_core::sync::thread::yield_now();
    }
}

/// The `index`-th block whose bit in `allocated` is set, modulo how many are (two passes over
/// the bits, nothing collected): how the harness and the reference model pick the block an
/// operation names.
pub(crate) fn nth_allocated(allocated: impl Iterator<Item = bool> + Clone, index: u8) -> Option<u64> {
    let count = allocated.clone().filter(|&used| used).count();
    nth_allocated_of(allocated, count, index)
}

/// [`nth_allocated`] given how many bits of `allocated` are set (`count`): one pass, up to the
/// block picked.
pub(crate) fn nth_allocated_of(
    allocated: impl Iterator<Item = bool>,
    count: usize,
    index: u8,
) -> Option<u64> {
    if count == 0 {
        return None;
    }
    let nth = usize::from(index) % count;
    allocated.enumerate().filter(|&(_, used)| used).nth(nth).map(|(block, _)| block as u64)
}

#[cfg(test)]
mod tests {
    use sim_core::{Sim, SimConfig};

    use super::*;

    /// Every pick through the kept bitmap is the pick the model's bitmap gives, whether the kept
    /// copy is current (the count and the bits kept used) or stale (a bit flipped since: read
    /// again). Ignoring the lock count fails the stale half, as each flip moves the count.
    #[test]
    fn a_block_picked_from_the_kept_bitmap_is_the_one_the_bitmap_gives() {
        let sim = Sim::new(SimConfig::new(3));
        let (cx, observer) = (sim.cx("fs", 0), sim.observer_cx("check", 0));
        let blocks = XattrBlocks::new(8, 2);
        let mut kept = KeptBlocks::default();
        let same_picks = |kept: &mut KeptBlocks, when: &str| {
            for index in 0..=u8::MAX {
                let fresh = blocks.nth_allocated(&observer, index);
                assert_eq!(
                    blocks.nth_allocated_kept(&observer, index, Some(&mut *kept)),
                    fresh,
                    "{when}, index {index}"
                );
                assert_eq!(blocks.nth_allocated_kept(&observer, index, None), fresh, "{when}, none kept");
            }
        };
        let mut used = 0;
        for step in 0..24usize {
            blocks.flip_allocated_under_lock(&cx, step * 5 % 8);
            same_picks(&mut kept, &format!("step {step}, kept stale"));
            blocks.bitmap_kept(&observer, &mut kept);
            assert_eq!(kept.bitmap_locked, Some(blocks.locks_taken().0), "step {step}: kept is current");
            same_picks(&mut kept, &format!("step {step}, kept current"));
            used += usize::from(kept.allocated.is_some_and(|count| count > 0));
        }
        assert!(used > 12, "most steps pick among allocated blocks: {used}");
    }
}
