//! fs/mbcache.c's caches: `struct mb_cache` with its block and index hash tables,
//! `mb_cache_create` (with the entry-size validation), `mb_cache_destroy` (and its orphan report).
//! Left out: `MB_CACHE_INDEXES_COUNT` hard-wiring.

use std::sync::Arc;

use sim_core::fault::FaultSite;
use sim_core::mm::{slab_precheck, Gfp, SlabArena};
use sim_core::sync::atomic::{AtomicI32, Ordering};
use sim_core::trace::{text_word, CallName};
use sim_core::{Cx, Errno};

use crate::entry::Entry;
use crate::registry::{CacheHandle, HeadId, ListHead, Memory, Node, MB_CACHE_SLAB};
use crate::registry::{MbError, Registry, BUCKET_BITS_MAX, ENTRY_HEADER_SIZE, ENTRY_INDEX_SIZE, INDEXES_MAX};
use sim_core::list::Oops;

/// The traced calls, their names hashed at compile time.
const CREATE: CallName = CallName::new("mb_cache_create");
const DESTROY: CallName = CallName::new("mb_cache_destroy");

/// `struct mb_cache_op`: the free callback. `free(ce, gfp)` returning nonzero keeps the entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct FreeOp {
    /// The callback refuses when the caller may not enter the filesystem (no `__GFP_FS`), as a
    /// callback that must write metadata back would.
    pub fails_without_fs: bool,
}

/// A fault site the model names on a path every case runs, made once: a `FaultSite` owns its
/// name's text, so making one per call cost an allocation (and its free) per `mb_cache_create`
/// site and per refused-or-not free callback.
pub(crate) type StaticSite = std::sync::LazyLock<FaultSite>;

/// The fault site the free callback also consults (so a fault plan can make it fail).
pub(crate) static FREE_CALLBACK_SITE: StaticSite = StaticSite::new(|| FaultSite::call("mbcache:c_op.free"));

/// `mb_cache_create`'s `kmalloc` of `c_block_hash` and of each index's table, and its
/// `kmem_cache_create`.
static BLOCK_HASH_SITE: StaticSite = StaticSite::new(|| FaultSite::slab("kmalloc:c_block_hash"));
static INDEXES_HASH_SITE: StaticSite = StaticSite::new(|| FaultSite::slab("kmalloc:c_indexes_hash"));
static KMEM_CACHE_CREATE_SITE: StaticSite = StaticSite::new(|| FaultSite::call("kmem_cache_create"));

/// `struct mb_cache`: a slab object of mbcache's [`crate::registry::Memory`].
#[derive(Debug)]
pub(crate) struct MbCache {
    pub(crate) info: CacheInfo,
    /// `c_entry_cache`'s objects still allocated (the objects themselves are in the registry's
    /// one entry arena, `Memory::entries`, each naming its cache).
    pub(crate) entries_live: u64,
    /// `c_block_hash`, freed with the cache.
    pub(crate) block: Vec<ListHead>,
    /// `c_indexes_hash`, freed with the cache.
    pub(crate) index: Vec<Vec<ListHead>>,
}

/// The fields of `struct mb_cache` fixed at create, which the kernel reads without the lock,
/// and `c_entry_count`, an `atomic_t` it changes without the lock (a `sim_core::sync` atomic, so
/// loom and shuttle see those races; shared so it is used with no `Memory` guard held).
#[derive(Clone, Debug)]
pub(crate) struct CacheInfo {
    pub(crate) name: &'static str,
    pub(crate) free_op: Option<FreeOp>,
    /// `c_entry_cache`'s object size.
    pub(crate) entry_size: u64,
    /// `c_entry_count`.
    pub(crate) entry_count: Arc<AtomicI32>,
    pub(crate) bucket_bits: u32,
    pub(crate) indexes_count: u32,
}

/// The fields of [`CacheInfo`] a walk needs, copied without touching `c_entry_count`'s `Arc`.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Geometry {
    pub(crate) bucket_bits: u32,
}

impl CacheInfo {
    /// The table's geometry (fixed at create).
    pub(crate) fn geometry(&self) -> Geometry {
        Geometry { bucket_bits: self.bucket_bits }
    }
}

/// A cache, as its creator holds it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct CacheRef(pub(crate) CacheHandle);

/// What `mb_cache_destroy` found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Destroyed {
    /// `c_entry_count` after freeing what it could ("%d orphaned entries").
    pub orphans: i32,
}

impl Registry {
    // --- caches --------------------------------------------------------------------------------

    /// Mirrors `mb_cache_create()`. The kernel returns NULL for a too-small `entry_size` and for
    /// a failed allocation alike; ksim says which: EINVAL and ENOMEM.
    pub fn create(
        &self,
        cx: &Cx,
        name: &'static str,
        free_op: Option<FreeOp>,
        entry_size: u64,
        indexes_count: u32,
        bucket_bits: u32,
    ) -> Result<CacheRef, Errno> {
        let args = [text_word(name), entry_size, u64::from(indexes_count), u64::from(bucket_bits)];
        cx.call_begin(&CREATE, args, || {
            format!("{name} size={entry_size} indexes={indexes_count} bits={bucket_bits}")
        });
        let result = self.create_inner(cx, name, free_op, entry_size, indexes_count, bucket_bits);
        let words = match &result {
            Ok(cache) => [0, u64::from(cache.0.index())],
            Err(errno) => [1, u64::from(errno.number().unsigned_abs())],
        };
        cx.call_end(&CREATE, words, || format!("{result:?}"));
        result
    }

    pub(crate) fn create_inner(
        &self,
        cx: &Cx,
        name: &'static str,
        free_op: Option<FreeOp>,
        entry_size: u64,
        indexes_count: u32,
        bucket_bits: u32,
    ) -> Result<CacheRef, Errno> {
        if entry_size < ENTRY_HEADER_SIZE + u64::from(indexes_count) * ENTRY_INDEX_SIZE {
            return Err(Errno::EINVAL);
        }
        if indexes_count > INDEXES_MAX || bucket_bits > BUCKET_BITS_MAX {
            return Err(Errno::ENOMEM);
        }
        // kmalloc of struct mb_cache, then of c_block_hash and one table per index, then
        // kmem_cache_create: any failure unwinds all.
        slab_precheck(cx, Gfp::GFP_KERNEL, MB_CACHE_SLAB.0, MB_CACHE_SLAB.1)?;
        let bucket_count = 1usize << bucket_bits;
        let table_bytes = (bucket_count * 16) as u64;
        let mut failed = cx.sim().should_fail(cx, &BLOCK_HASH_SITE, table_bytes);
        for _ in 0..indexes_count {
            failed = failed || cx.sim().should_fail(cx, &INDEXES_HASH_SITE, table_bytes);
        }
        failed = failed || cx.sim().should_fail(cx, &KMEM_CACHE_CREATE_SITE, entry_size);
        if failed {
            return Err(Errno::ENOMEM);
        }
        let info = CacheInfo {
            name,
            free_op,
            entry_size,
            entry_count: Arc::new(AtomicI32::new(0)),
            bucket_bits,
            indexes_count,
        };
        let handle = {
            let mut memory = self.memory();
            let cache = MbCache { info, entries_live: 0, block: Vec::new(), index: Vec::new() };
            let handle = memory.caches.insert(cache);
            let cache = memory.caches.get_mut(cx, handle).expect("just allocated");
            cache.block = (0..bucket_count)
                .map(|b| ListHead::init(Node::Head(HeadId::Block(handle, b as u32))))
                .collect();
            cache.index = (0..indexes_count)
                .map(|i| {
                    (0..bucket_count)
                        .map(|b| ListHead::init(Node::Head(HeadId::index(handle, i, b as u32))))
                        .collect()
                })
                .collect();
            handle
        };
        let mut locked_global = self.lock(cx);
        locked_global.guard.caches.insert(0, handle);
        locked_global.mem().memory.caches_version += 1;
        drop(locked_global);
        Ok(CacheRef(handle))
    }

    /// `c_entry_count`.
    pub fn entry_count(&self, cx: &Cx, cache: CacheRef) -> Result<i32, MbError> {
        // The counter is a `sim_core::sync` atomic: read with no `Memory` guard held.
        let cell = Self::entry_count_cell(&self.memory(), cx, cache.0)?;
        Ok(cell.load(Ordering::SeqCst))
    }

    /// The cell of a cache's `c_entry_count` (a freed cache is a reported use after free).
    fn entry_count_cell(memory: &Memory, cx: &Cx, cache: CacheHandle) -> Result<Arc<AtomicI32>, Oops> {
        Ok(memory.cache(cx, cache)?.info.entry_count.clone())
    }

    /// Each cache's `c_entry_count`, as [`Registry::entry_count`] reads it (`i32::MIN` for one
    /// freed, reported as a use after free). The cells are kept in `cells` and fetched again,
    /// under one `Memory` guard, only when `mb_cache_list` changed (`caches_version`, the
    /// `Memory::caches_version` the caller read with the LRU's, [`Registry::outcome_versions`]) or
    /// `caches` did; they are read with no guard held (`sim_core::sync` atomics).
    ///
    /// The list is shared: while every count reads as the last list says, that list is returned
    /// again (most operations change no count), so an outcome costs no allocation.
    pub(crate) fn entry_count_list(
        &self,
        cx: &Cx,
        caches: &[CacheRef],
        cells: &mut CountCells,
        caches_version: u64,
    ) -> Arc<[i32]> {
        if cells.at != Some(caches_version) || cells.cells.len() != caches.len() {
            let memory = self.memory();
            cells.at = Some(caches_version);
            cells.cells.clear();
            let cell = |&cache: &CacheRef| Self::entry_count_cell(&memory, cx, cache.0).ok();
            cells.cells.extend(caches.iter().map(cell));
        }
        let read = |cell: &Option<Arc<AtomicI32>>| {
            cell.as_ref().map_or(i32::MIN, |count| count.load(Ordering::SeqCst))
        };
        let same = cells.last.len() == cells.cells.len()
            && cells.cells.iter().zip(cells.last.iter()).all(|(cell, &last)| read(cell) == last);
        if !same {
            cells.last = cells.cells.iter().map(read).collect();
        }
        Arc::clone(&cells.last)
    }

    /// Entries of the cache's slab still allocated.
    pub fn entries_live(&self, cx: &Cx, cache: CacheRef) -> Result<u64, MbError> {
        Ok(self.memory().cache(cx, cache.0)?.entries_live)
    }

    /// The cache's name.
    pub fn cache_name(&self, cx: &Cx, cache: CacheRef) -> Result<&'static str, MbError> {
        self.cache_field(cx, cache.0, |info| info.name)
    }

    /// The number of additional indexes of a cache.
    pub fn indexes_count(&self, cx: &Cx, cache: CacheRef) -> Result<u32, MbError> {
        self.cache_field(cx, cache.0, |info| info.indexes_count)
    }

    /// Mirrors `mb_cache_destroy()`: frees the cache's unused entries, unlists and frees the
    /// cache, and reports the entries it could not free ("orphaned entries").
    ///
    /// `kmem_cache_destroy(cache->c_entry_cache)` (2.6's mm/slab.c) cannot free entries still
    /// allocated (held by handles, or put back on the LRU by a failing free callback): it logs
    /// "Can't free all objects" and keeps the slab, so they stay valid memory and stay where
    /// they are (a held entry on its hash chains, a refused one on the global LRU). Only
    /// their `e_cache`, and a held entry's chain links, dangle once the cache and its hash
    /// tables are kfree'd. The model keeps them allocated too: the use after free is the later
    /// access that follows them (the cache read of a release's or a shrink's
    /// `__mb_cache_entry_forget()`, a write to a freed hash table in `__mb_cache_entry_unhash()`),
    /// and an entry only unlinked and relinked on the LRU is none.
    ///
    /// Two assumptions of the model: a freed `struct mb_cache`'s address is never reused (the
    /// kernel tells an entry's cache by the raw pointer `ce->e_cache == cache`, so a cache
    /// created later at the same address would adopt an orphan; a `CacheHandle`'s generation
    /// never matches again); and re-creating a cache of the same name after a destroy that
    /// leaked would fail `kmem_cache_create()`'s duplicate-name check on 2.6 (the slab is still
    /// listed), which the model does not check.
    pub fn destroy(&self, cx: &Cx, cache: CacheRef) -> Result<Destroyed, MbError> {
        cx.call_begin(&DESTROY, [u64::from(cache.0.index())], String::new);
        let mut locked_global = self.lock(cx);
        let select = |mem: &mut crate::registry::Mem<'_>, entry| Ok(mem.entry(entry)?.cache == cache.0);
        let taken = Self::collect(&mut locked_global, select, None)?;
        locked_global.guard.caches.retain(|c| *c != cache.0);
        locked_global.mem().memory.caches_version += 1;
        drop(locked_global);
        if self.handles_held(cache) > 0 {
            cx.sim().mark("destroy: entries still held by handles");
        }
        for entry in taken {
            self.forget(cx, entry, Gfp::GFP_KERNEL)?;
            if self.memory().entry_live(entry) {
                // Put back on the global LRU, where it outlives its cache.
                cx.sim().mark("destroy: a free callback kept an entry");
            }
        }
        let info = self.cache(cx, cache.0)?;
        let orphans = info.entry_count.load(Ordering::SeqCst);
        if orphans > 0 {
            cx.note(format!("cache {}: {orphans} orphaned entries", info.name));
        }
        self.kmem_cache_destroy_and_kfree(cx, cache.0, info.name);
        cx.call_end(&DESTROY, [u64::from(orphans.unsigned_abs())], || format!("orphans={orphans}"));
        Ok(Destroyed { orphans })
    }

    /// Mirrors `kmem_cache_destroy(cache->c_entry_cache)` as 2.6's mm/slab.c does it, then
    /// `kfree(cache)`: with objects still allocated the slab reports them ("Can't free all
    /// objects", here a leak with their count) and leaves them alone. The cache's live entries
    /// are read under the guard that frees it, and reported once it is dropped.
    fn kmem_cache_destroy_and_kfree(&self, cx: &Cx, cache: CacheHandle, name: &'static str) {
        // The kfree's write of `struct mb_cache`, which forget's unlocked reads conflict with.
        self.cache_memory.fetch_add(1, Ordering::SeqCst);
        let live = {
            let mut memory = self.memory();
            let live = memory.cache(cx, cache).map_or(0, |c| c.entries_live);
            let _ = memory.caches.free(cx, cache);
            // The incremental check looks an entry's cache up only once one has outlived it.
            memory.orphans_possible |= live > 0;
            live
        };
        if SlabArena::<Entry>::report_leak(cx, name, live) {
            cx.sim().mark("destroy: entries outlive their cache");
        }
    }
}

/// The `c_entry_count` cells a checker reads each op ([`Registry::entry_count_list`]), with the
/// [`Memory::caches_version`] they were fetched at.
#[derive(Debug)]
pub(crate) struct CountCells {
    at: Option<u64>,
    cells: Vec<Option<Arc<AtomicI32>>>,
    /// The counts the last call returned, shared with its outcome.
    last: Arc<[i32]>,
}

impl Default for CountCells {
    fn default() -> Self {
        CountCells { at: None, cells: Vec::new(), last: Arc::from([]) }
    }
}
