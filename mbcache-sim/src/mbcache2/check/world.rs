//! One mounted filesystem (the module, its cache and its xattr blocks) for the checkers that
//! run the model on several threads (loom, shuttle) and for the benchmarks: the kernel entry
//! points, each taking the calling task's `&Cx`, over handles a caller can hold across threads.

use sim_core::{Cx, Errno, Violation};
use std::sync::Arc;

use crate::mbcache2::fixes::Fixes;
use crate::mbcache2::mbcache::{
    CacheHandle, EntryHandle, MbCache, MbcacheModule, MBE_REFERENCED_B, MBE_REUSABLE_B,
};
use crate::mbcache2::xattr::{Release, Reuse, XattrBlocks};

/// An entry a caller holds a reference on (`struct mb_cache_entry *`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Mbcache2Entry(EntryHandle);

/// One filesystem with its mbcache (`mb_cache_create(bucket_bits)`) and `blocks` xattr blocks.
#[derive(Debug)]
pub struct Mbcache2World {
    mb: MbcacheModule,
    handle: CacheHandle,
    cache: Arc<MbCache>,
    blocks: XattrBlocks,
}

impl Mbcache2World {
    /// Mounts a filesystem in `cx`'s task: a cache of `1 << bucket_bits` chains.
    pub fn new(cx: &Cx, fixes: Fixes, bucket_bits: u32, blocks: u16, refcount_max: u32) -> Mbcache2World {
        let mb = MbcacheModule::new(fixes, 0);
        let (handle, cache) = mb.mb_cache_create(cx, bucket_bits.clamp(1, 24)).expect("mb_cache_create");
        Mbcache2World { mb, handle, cache, blocks: XattrBlocks::new(blocks, refcount_max.max(2)) }
    }

    /// `mb_cache_entry_create()`.
    pub fn create(&self, cx: &Cx, key: u32, value: u64, reusable: bool) -> Result<(), Errno> {
        self.mb.mb_cache_entry_create(cx, self.handle, &self.cache, key, value, reusable)
    }

    /// `mb_cache_entry_get()`.
    pub fn get(&self, cx: &Cx, key: u32, value: u64) -> Option<Mbcache2Entry> {
        self.mb.mb_cache_entry_get(cx, &self.cache, key, value).map(Mbcache2Entry)
    }

    /// `mb_cache_entry_find_first()`.
    pub fn find_first(&self, cx: &Cx, key: u32) -> Option<Mbcache2Entry> {
        self.mb.mb_cache_entry_find_first(cx, &self.cache, key).map(Mbcache2Entry)
    }

    /// The cache half of dropping a block's last reference: `mb_cache_entry_delete_or_get()`
    /// (putting what it returns, without waiting), or `mb_cache_entry_delete()` before
    /// `delete-or-get`; false when somebody held the entry and it stayed.
    pub fn delete(&self, cx: &Cx, key: u32, value: u64) -> bool {
        if !self.mb.fixes.on(crate::mbcache2::fixes::DELETE_OR_GET) {
            self.mb.mb_cache_entry_delete(cx, &self.cache, key, value);
            return true;
        }
        match self.mb.mb_cache_entry_delete_or_get(cx, &self.cache, key, value) {
            Some(entry) => {
                self.mb.mb_cache_entry_put(cx, &self.cache, entry);
                false
            }
            None => true,
        }
    }

    /// `mb_cache_entry_put()`: true when it freed the entry.
    pub fn put(&self, cx: &Cx, entry: Mbcache2Entry) -> bool {
        self.mb.mb_cache_entry_put(cx, &self.cache, entry.0)
    }

    /// `mb_cache_entry_wait_unused()` on an entry the caller holds: returns once the caller is
    /// its last user.
    pub fn wait_unused(&self, cx: &Cx, entry: Mbcache2Entry) {
        self.mb.mb_cache_entry_wait_unused(cx, &self.cache, entry.0);
    }

    /// Drops (false) or keeps `mb_cache_entry_wait_unused()`'s full barrier between queueing the
    /// waiter and testing the count: an experiment no kernel made, for the loom model that
    /// shows what the barrier is for (threaded builds only, and hidden from the docs: no
    /// campaign or kernel preset turns it off).
    #[cfg(feature = "threaded")]
    #[doc(hidden)]
    pub fn set_wait_barrier(&mut self, on: bool) {
        self.mb.wait_barrier = on;
    }

    /// `mb_cache_entry_touch()`.
    pub fn touch(&self, cx: &Cx, entry: Mbcache2Entry) {
        self.mb.mb_cache_entry_touch(cx, entry.0);
    }

    /// ext4's write of `e_reusable` on an entry it holds (set or clear).
    pub fn set_reusable(&self, cx: &Cx, entry: Mbcache2Entry, on: bool) {
        if let Some(found) = self.mb.entry(cx, entry.0) {
            found.e_flags().assign(cx, self.mb.fixes, MBE_REUSABLE_B, on);
        }
    }

    /// The entry's (`e_referenced`, `e_reusable`), read in `cx`.
    pub fn flags(&self, cx: &Cx, entry: Mbcache2Entry) -> (bool, bool) {
        self.mb.entry(cx, entry.0).map_or((false, false), |found| {
            (
                found.e_flags().test(cx, self.mb.fixes, MBE_REFERENCED_B),
                found.e_flags().test(cx, self.mb.fixes, MBE_REUSABLE_B),
            )
        })
    }

    /// The shrinker's `mb_cache_scan()`.
    pub fn shrink(&self, cx: &Cx, nr_to_scan: u64) -> u64 {
        self.mb.mb_cache_scan(cx, &self.cache, nr_to_scan)
    }

    /// A new xattr block with content `key`.
    pub fn xattr_new(&self, cx: &Cx, key: u32) -> Result<u64, Errno> {
        self.blocks.new_block(cx, &self.mb, self.handle, &self.cache, key)
    }

    /// ext4's reuse of the block behind a found entry (drops the entry); the new `h_refcount`.
    pub fn xattr_reuse(&self, cx: &Cx, entry: Mbcache2Entry) -> Option<u32> {
        match self.blocks.reuse(cx, &self.mb, &self.cache, entry.0) {
            Reuse::Reused(count) => Some(count),
            Reuse::Undone => None,
        }
    }

    /// `ext4_xattr_release_block()`, waiting as the kernel does; true when it freed the block.
    pub fn xattr_release(&self, cx: &Cx, block: u64) -> bool {
        loop {
            match self.blocks.release_block(cx, &self.mb, &self.cache, block) {
                Release::Wait(oe) => self.blocks.release_after_wait(cx, &self.mb, &self.cache, oe),
                Release::Freed => return true,
                Release::Dropped(_) => return false,
            }
        }
    }

    /// Entries allocated and not freed.
    pub fn entries_live(&self) -> u64 {
        self.mb.entries.live()
    }

    /// `mb_cache_destroy()`, then the entries' slab must be empty.
    pub fn destroy(self, cx: &Cx) -> Result<(), Violation> {
        self.mb.mb_cache_destroy(cx, self.handle);
        self.mb.entries.destroy(cx)
    }
}
