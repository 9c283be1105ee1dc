//! The demo cache: a table of reference-counted entries under `demo_cache_lock`, their slab
//! cache, and `insert`/`get`/`put`, in the shape of fs/mbcache.c's `mb_cache_entry_insert`,
//! `mb_cache_entry_get` and `mb_cache_entry_release` (the demo models no kernel file).
//!
//! What a newcomer puts in a kernel module: the kernel's data structure as a Rust struct whose
//! fields are sim-core objects (a [`SpinLock`] or `Mutex` or `RwSem` per kernel lock, named by its
//! lockdep class, the data it guards inside it; a [`KmemCache`] per `kmem_cache`), and one method
//! per kernel function, each taking the caller's `&Cx` (the task and CPU it runs on) and citing
//! the function it mirrors. Take locks exactly where the kernel does: lockdep, the trace, loom and
//! shuttle all see the model through them. What a caller can cause returns an `Errno`; misuse of
//! an object (use after free) is reported by sim-core, never a panic. Interesting states are
//! recorded with `cx.sim().mark(..)` where they are reached, so a property test can assert the
//! fuzzer got there. Nothing of the checker's (handles callers hold, expectations) lives here.

use std::collections::BTreeMap;

use sim_core::mm::{Gfp, KmemCache, ObjHandle};
use sim_core::{Cx, Errno, SpinLock, Violation};

use crate::fixes::Fixes;
use crate::lru::Lru;

/// An entry object, as the slab cache holds it.
#[derive(Debug)]
pub(crate) struct DemoEntry {
    pub(crate) key: u8,
}

/// A handle on an entry: the kernel's pointer, which `get` returns and `put` gives back.
pub(crate) type EntryHandle = ObjHandle<DemoEntry>;

/// One entry in the table: its object and how many handles are out (the kernel's `e_used`).
#[derive(Debug)]
pub(crate) struct TableSlot {
    pub(crate) handle: EntryHandle,
    pub(crate) used: u32,
}

/// The cache (a kernel cache's `struct mb_cache`, say).
#[derive(Debug)]
pub(crate) struct DemoCache {
    /// The fixes this "kernel version" has.
    pub(crate) fixes: Fixes,
    /// `kmem_cache_create("demo_entry", ..)`.
    pub(crate) objects: KmemCache<DemoEntry>,
    /// The table, under `demo_cache_lock`.
    pub(crate) table: SpinLock<BTreeMap<u8, TableSlot>>,
    /// The LRU, under `demo_lru_lock`, which nests inside `demo_cache_lock` on every path.
    pub(crate) lru: SpinLock<Lru>,
}

/// What the invariant check reads, taken under the cache's locks by an observer context.
#[derive(Debug)]
pub(crate) struct CacheState {
    /// The LRU's keys, least recently used first.
    pub(crate) lru: Vec<u8>,
    /// Each table entry's use count, by key in ascending order (the table's order): a vector,
    /// not a map, since the check reads it in order and per operation.
    pub(crate) used: Vec<(u8, u32)>,
    /// Live objects in the slab cache.
    pub(crate) live: u64,
}

impl DemoCache {
    /// `kmem_cache_create` plus an empty table and LRU (a cache's `*_create`).
    pub(crate) fn new(fixes: Fixes) -> DemoCache {
        DemoCache {
            fixes,
            objects: KmemCache::new("demo_entry", 32),
            table: SpinLock::new("demo_cache_lock", BTreeMap::new()),
            lru: SpinLock::new("demo_lru_lock", Lru::default()),
        }
    }

    /// Inserts an entry for `key` (as `mb_cache_entry_insert`): allocates it outside the locks,
    /// then hashes it and puts it at the LRU tail. EEXIST when the key is present (the new object
    /// is freed), ENOMEM when the allocation fails.
    pub(crate) fn insert(&self, cx: &Cx, key: u8) -> Result<(), Errno> {
        let handle = self.objects.alloc(cx, Gfp::GFP_KERNEL, DemoEntry { key }).inspect_err(|_| {
            cx.sim().mark("insert-enomem");
        })?;
        let mut table = self.table.lock(cx);
        if table.contains_key(&key) {
            drop(table);
            let _ = self.objects.free(cx, handle);
            cx.sim().mark("insert-exists");
            return Err(Errno::EEXIST);
        }
        table.insert(key, TableSlot { handle, used: 0 });
        let mut lru = self.lru.lock(cx);
        lru.add_tail(key);
        Ok(())
    }

    /// Takes a handle on `key`'s entry (as `mb_cache_entry_get`): its use count goes up and it
    /// moves to the LRU tail. ENOENT when absent.
    pub(crate) fn get(&self, cx: &Cx, key: u8) -> Result<EntryHandle, Errno> {
        let mut table = self.table.lock(cx);
        let Some(slot) = table.get_mut(&key) else {
            cx.sim().mark("get-missing");
            return Err(Errno::ENOENT);
        };
        slot.used += 1;
        let handle = slot.handle;
        let mut lru = self.lru.lock(cx);
        lru.move_tail(key);
        Ok(handle)
    }

    /// Drops a handle (as `mb_cache_entry_release`). The holder reads its entry first, to find
    /// the key: after a shrink that freed the entry under it, this read is the use after free,
    /// which the slab cache reports.
    pub(crate) fn put(&self, cx: &Cx, handle: EntryHandle) {
        let Ok(entry) = self.objects.get(cx, handle) else {
            return;
        };
        let mut table = self.table.lock(cx);
        if let Some(slot) = table.get_mut(&entry.key) {
            slot.used = slot.used.saturating_sub(1);
        }
        cx.sim().mark("put");
    }

    /// Frees every entry and destroys the slab cache (as `mb_cache_destroy`); objects still live
    /// then are a leak, which `kmem_cache_destroy` reports.
    pub(crate) fn destroy(self, cx: &Cx) -> Result<(), Violation> {
        for slot in self.table.into_inner().into_values() {
            let _ = self.objects.free(cx, slot.handle);
        }
        self.objects.destroy(cx)
    }

    /// The state the invariant check compares, read under both locks in the kernel's order by
    /// `observer` (an observer context: neither traced nor seen by lockdep).
    pub(crate) fn state(&self, observer: &Cx) -> CacheState {
        let table = self.table.lock(observer);
        let lru = self.lru.lock(observer);
        CacheState {
            lru: lru.keys().to_vec(),
            used: table.iter().map(|(&key, slot)| (key, slot.used)).collect(),
            live: self.objects.live(),
        }
    }
}
