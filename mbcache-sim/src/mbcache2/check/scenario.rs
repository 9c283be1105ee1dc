//! mbcache2's teaching scenarios: short scripted runs whose traces each tell one story, run by
//! `ksim trace mbcache2:NAME`. Each drives the kernel modules directly, one task per lane, in the
//! order the story needs (a script is one schedule a threaded campaign could pick).

use sim_core::Sim;

use crate::mbcache2::fixes::{Fixes, CANCEL_SHRINK_WORK, DELETE_OR_GET};
use crate::mbcache2::mbcache::{CacheHandle, MbcacheModule};
use crate::mbcache2::xattr::{Release, XattrBlocks};

/// The content hash both inodes' xattrs have.
const KEY: u32 = 7;

/// A mounted filesystem: the module, its cache (two chains) and `blocks` xattr blocks.
fn mount(sim: &Sim, fixes: Fixes, blocks: u16) -> Option<(MbcacheModule, CacheHandle, XattrBlocks)> {
    let mb = MbcacheModule::new(fixes, 0);
    let (handle, _) = mb.mb_cache_create(&sim.cx("mount", 0), 1).ok()?;
    Some((mb, handle, XattrBlocks::new(blocks, 1024)))
}

/// Before 65f8b80053a1 (6.0): `setxattr(A)` finds inode B's xattr block in the cache and goes to
/// reuse it; `unlink(B)` drops the block's last reference, deletes the cache entry and frees the
/// block; A's journal write access lands on the freed block (the finding), and only under the
/// buffer lock does A see the entry unhashed and back off.
pub(crate) fn scenario_reuse_vs_release(sim: &Sim) {
    let Some((mb, handle, blocks)) = mount(sim, Fixes::all().without(DELETE_OR_GET), 8) else { return };
    let Ok(cache) = mb.caches.get(&sim.cx("mount", 0), handle) else { return };
    let (a, b) = (sim.cx("setxattr(A)", 0), sim.cx("unlink(B)", 1));
    b.note("B: its inode's xattrs go to a new block, which ext4 inserts into the mbcache");
    let Ok(block) = blocks.new_block(&b, &mb, handle, &cache, KEY) else { return };
    a.note("A: setxattr with the same content: ext4_xattr_block_cache_find finds B's block");
    let Some(ce) = mb.mb_cache_entry_find_first(&a, &cache, KEY) else { return };
    b.note("B: unlink drops the block's last reference: the entry is deleted, the block freed");
    let _ = blocks.release_block(&b, &mb, &cache, block);
    a.note("A: journal write access to the block it found (now free: its revoke is cancelled)");
    let _ = blocks.reuse(&a, &mb, &cache, ce);
    a.note("A: under the buffer lock the entry is unhashed: A backs off, too late for the journal");
}

/// From 65f8b80053a1 on: the same two tasks, but `unlink(B)` drops the last reference with
/// `mb_cache_entry_delete_or_get()`, which sees A's reference and hands the entry back; B drops
/// the buffer lock and sleeps in `mb_cache_entry_wait_unused()` until A's reuse puts the entry,
/// then starts again and finds a second reference to drop instead of a block to free.
pub(crate) fn scenario_release_waits_for_reuser(sim: &Sim) {
    let Some((mb, handle, blocks)) = mount(sim, Fixes::all(), 8) else { return };
    let Ok(cache) = mb.caches.get(&sim.cx("mount", 0), handle) else { return };
    let (a, b) = (sim.cx("setxattr(A)", 0), sim.cx("unlink(B)", 1));
    let Ok(block) = blocks.new_block(&b, &mb, handle, &cache, KEY) else { return };
    a.note("A: finds B's block in the cache and holds its entry");
    let Some(ce) = mb.mb_cache_entry_find_first(&a, &cache, KEY) else { return };
    b.note("B: the last reference: delete_or_get sees A's reference (e_refcnt 3) and returns the entry");
    let Release::Wait(oe) = blocks.release_block(&b, &mb, &cache, block) else { return };
    b.note("B: drops the buffer lock and sleeps in mb_cache_entry_wait_unused()");
    a.note("A: journal write access to a block still allocated; h_refcount 1 -> 2; puts the entry (wakes B)");
    let _ = blocks.reuse(&a, &mb, &cache, ce);
    b.note("B: woken as the entry's last user: puts it and starts the release again");
    blocks.release_after_wait(&b, &mb, &cache, oe);
    let _ = blocks.release_block(&b, &mb, &cache, block);
    b.note("B: h_refcount 2 -> 1: A's inode keeps the block; nothing is freed");
}

/// Before d227786ab111: a burst of new xattr blocks takes the cache past `c_max_entries` (32
/// with two chains), so `mb_cache_entry_create()` queues the shrink work; the filesystem is
/// unmounted before a kworker runs it; `mb_cache_destroy()` frees the cache with the work still
/// queued, and the kworker's shrink runs on freed memory (the use after free the slab reports).
pub(crate) fn scenario_shrink_work_vs_destroy(sim: &Sim) {
    let Some((mb, handle, blocks)) = mount(sim, Fixes::all().without(CANCEL_SHRINK_WORK), 40) else { return };
    let (fs, umount, kworker) = (sim.cx("setxattr", 0), sim.cx("umount", 1), sim.cx("kworker", 0));
    {
        let Ok(cache) = mb.caches.get(&fs, handle) else { return };
        fs.note("33 new xattr blocks: the 33rd insert finds c_entry_count at c_max_entries and queues the shrink work");
        for key in 0..33 {
            let _ = blocks.new_block(&fs, &mb, handle, &cache, key);
        }
    }
    umount.note("umount: mb_cache_destroy() frees every entry and the cache; the work is still queued");
    mb.mb_cache_destroy(&umount, handle);
    kworker.note("the kworker runs mb_cache_shrink_worker() on the freed cache");
    let _ = mb.run_workqueue(&kworker);
}
