//! fs/mbcache.c's caches: `struct mb_cache` with its block and index hash tables,
//! `mb_cache_create` (with the entry-size validation), `mb_cache_destroy` (and its orphan report).
//! Left out: `MB_CACHE_INDEXES_COUNT` hard-wiring.

use std::sync::Mutex as StdMutex;

use sim_core::fault::FaultSite;
use sim_core::mm::{Gfp, KmemCache};
use sim_core::sync::atomic::{AtomicI32, Ordering};
use sim_core::{Cx, Errno};

use crate::entry::Entry;
use crate::registry::{
    locked, MbError, Registry, BUCKET_BITS_MAX, ENTRY_HEADER_SIZE, ENTRY_INDEX_SIZE, INDEXES_MAX,
};
use crate::registry::{CacheHandle, HeadId, ListHead, Node};

/// `struct mb_cache_op`: the free callback. `free(ce, gfp)` returning nonzero keeps the entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct FreeOp {
    /// The callback refuses when the caller may not enter the filesystem (no `__GFP_FS`), as a
    /// callback that must write metadata back would.
    pub fails_without_fs: bool,
}

/// The fault site the free callback also consults (so a fault plan can make it fail).
pub(crate) const FREE_CALLBACK_SITE: &str = "mbcache:c_op.free";

/// `struct mb_cache`.
#[derive(Debug)]
pub(crate) struct MbCache {
    pub(crate) name: &'static str,
    pub(crate) free_op: Option<FreeOp>,
    /// `c_entry_count`.
    pub(crate) entry_count: AtomicI32,
    pub(crate) bucket_bits: u32,
    pub(crate) indexes_count: u32,
    /// `c_entry_cache`.
    pub(crate) entries: KmemCache<Entry>,
    /// `c_block_hash` and `c_indexes_hash`, freed with the cache.
    pub(crate) tables: StdMutex<Tables>,
}

#[derive(Debug)]
pub(crate) struct Tables {
    pub(crate) block: Vec<ListHead>,
    pub(crate) index: Vec<Vec<ListHead>>,
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
        cx.op_begin(
            "mb_cache_create",
            format!("{name} size={entry_size} indexes={indexes_count} bits={bucket_bits}"),
        );
        let result = self.create_inner(cx, name, free_op, entry_size, indexes_count, bucket_bits);
        cx.op_end("mb_cache_create", format!("{result:?}"));
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
        let bucket_count = 1usize << bucket_bits;
        let tables = Tables {
            block: vec![ListHead::UNINIT; bucket_count],
            index: vec![vec![ListHead::UNINIT; bucket_count]; indexes_count as usize],
        };
        let cache = MbCache {
            name,
            free_op,
            entry_count: AtomicI32::new(0),
            bucket_bits,
            indexes_count,
            entries: KmemCache::new(name, entry_size),
            tables: StdMutex::new(tables),
        };
        let handle = self.caches.alloc(cx, Gfp::GFP_KERNEL, cache)?;
        let object = self.caches.get(cx, handle).expect("just allocated");
        let table_bytes = (bucket_count * 16) as u64;
        // kmalloc of c_block_hash, then one table per index; any failure unwinds all.
        let mut failed = cx.sim().should_fail(cx, &FaultSite::slab("kmalloc:c_block_hash"), table_bytes);
        for _ in 0..indexes_count {
            failed =
                failed || cx.sim().should_fail(cx, &FaultSite::slab("kmalloc:c_indexes_hash"), table_bytes);
        }
        failed = failed || cx.sim().should_fail(cx, &FaultSite::call("kmem_cache_create"), entry_size);
        if failed {
            drop(object);
            let _ = self.caches.free(cx, handle);
            return Err(Errno::ENOMEM);
        }
        {
            let mut tables = locked(&object.tables);
            for bucket in 0..bucket_count {
                tables.block[bucket] = ListHead::init(Node::Head(HeadId::Block(handle, bucket as u32)));
            }
            for index in 0..indexes_count {
                for bucket in 0..bucket_count {
                    tables.index[index as usize][bucket] =
                        ListHead::init(Node::Head(HeadId::Index(handle, index, bucket as u32)));
                }
            }
        }
        let mut locked_global = self.lock(cx);
        locked_global.guard.caches.insert(0, handle);
        drop(locked_global);
        Ok(CacheRef(handle))
    }

    /// `c_entry_count`.
    pub fn entry_count(&self, cx: &Cx, cache: CacheRef) -> Result<i32, MbError> {
        Ok(self.cache(cx, cache.0)?.entry_count.load(Ordering::SeqCst))
    }

    /// Entries of the cache's slab still allocated.
    pub fn entries_live(&self, cx: &Cx, cache: CacheRef) -> Result<u64, MbError> {
        Ok(self.cache(cx, cache.0)?.entries.live())
    }

    /// The cache's name.
    pub fn cache_name(&self, cx: &Cx, cache: CacheRef) -> Result<&'static str, MbError> {
        Ok(self.cache(cx, cache.0)?.name)
    }

    /// The number of additional indexes of a cache.
    pub fn indexes_count(&self, cx: &Cx, cache: CacheRef) -> Result<u32, MbError> {
        Ok(self.cache(cx, cache.0)?.indexes_count)
    }

    /// Mirrors `mb_cache_destroy()`: frees the cache's unused entries, unlists and frees the
    /// cache, and reports the entries it could not free ("orphaned entries").
    pub fn destroy(&self, cx: &Cx, cache: CacheRef) -> Result<Destroyed, MbError> {
        cx.op_begin("mb_cache_destroy", "");
        let mut locked_global = self.lock(cx);
        let taken = Self::collect(&mut locked_global, |_, entry| Ok(entry.cache == cache.0), None)?;
        locked_global.guard.caches.retain(|c| *c != cache.0);
        drop(locked_global);
        let held = self.handles_held(cache);
        if held > 0 {
            cx.sim().mark("destroy: entries still held by handles");
        }
        for entry in taken {
            self.forget(cx, entry, Gfp::GFP_KERNEL)?;
            if self.cache(cx, cache.0)?.entries.is_live(entry.entry) {
                // Put back on the global LRU, where it outlives its cache.
                cx.sim().mark("destroy: a free callback kept an entry");
            }
        }
        let object = self.cache(cx, cache.0)?;
        let orphans = object.entry_count.load(Ordering::SeqCst);
        if orphans > 0 {
            cx.note(format!("cache {}: {orphans} orphaned entries", object.name));
        }
        // kmem_cache_destroy reports entries still allocated (held by handles) as a leak.
        let _ = object.entries.destroy(cx);
        drop(object);
        self.cache_memory.fetch_add(1, Ordering::SeqCst);
        let _ = self.caches.free(cx, cache.0);
        cx.op_end("mb_cache_destroy", format!("orphans={orphans}"));
        Ok(Destroyed { orphans })
    }
}
