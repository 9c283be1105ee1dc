//! fs/mbcache.c (2.6.0-2.6.10, seed 001, and the later 2.6 behaviour behind [`Fixes`]): the
//! registry of caches with its global LRU, `mb_cache_spinlock` and shrinker; caches with block and
//! index hashes; entries and the handles that refer to them. Left out: the `mb_debug` printks,
//! `MB_CACHE_INDEXES_COUNT` hard-wiring, module init/exit beyond registering the shrinker.
//!
//! Memory is modelled where the kernel's bugs live in it: a cache (`struct mb_cache`) and each
//! entry are slab objects, so a use after `kfree`/`kmem_cache_free` is reported; list heads live in
//! the object they belong to (see [`crate::list`]). An entry's fields are plain memory the seed
//! guards with `mb_cache_spinlock`; they sit in a `std` mutex that adds no interleavings (the
//! checkers see `mb_cache_spinlock`, `e_used` and `c_entry_count`, which are what the kernel
//! synchronises with).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicU64 as StdAtomicU64, Ordering as StdOrdering};
use std::sync::Mutex as StdMutex;

use sim_core::fault::FaultSite;
use sim_core::locks::SpinLockGuard;
use sim_core::mm::{Gfp, KmemCache};
use sim_core::sync::atomic::{AtomicI32, AtomicU32, AtomicUsize, Ordering};
use sim_core::{Cx, Errno, Sim, SpinLock, Violation, WaitQueue};

use crate::fixes::Fixes;
use crate::hash::hash_long;
use crate::list::{self, CacheHandle, EntryRef, HeadId, Link, ListHead, Memory, Node, Oops};

/// The lock class of `mb_cache_spinlock`.
pub const MB_CACHE_SPINLOCK: &str = "mb_cache_spinlock";
/// The wait queue the fixed kernel sleeps on for a busy entry (`mb_cache_queue`).
pub const MB_CACHE_QUEUE: &str = "mb_cache_queue";
/// `sizeof(struct mb_cache_entry)` on x86-64 (two list heads, three pointers, `atomic_t`
/// padded, a 64-bit `sector_t`): the part of an entry before its indexes.
pub const ENTRY_HEADER_SIZE: u64 = 64;
/// `sizeof(struct mb_cache_entry_index)` on x86-64: a list head and a padded `unsigned int` key.
pub const ENTRY_INDEX_SIZE: u64 = 24;
/// `MB_CACHE_WRITER` of the fixed kernel: the share of `e_used` an exclusive handle holds.
pub const MB_CACHE_WRITER: u32 = (u16::MAX >> 1) as u32;
/// Most hash bits a cache may ask for. The kernel has no limit: a larger table makes `kmalloc`
/// fail and `mb_cache_create` return NULL, which this model returns as ENOMEM.
pub const BUCKET_BITS_MAX: u32 = 20;
/// Most additional indexes: ext2/ext3 use one; beyond this the cache `kmalloc` is modelled as
/// failing (ENOMEM), as a huge `indexes_count` makes it fail in the kernel.
pub const INDEXES_MAX: u32 = 4;
/// `DEFAULT_SEEKS`, what `set_shrinker` registers mbcache with.
pub const DEFAULT_SEEKS: u32 = 2;
/// Longest list walked by the invariant checker before it calls the list corrupt.
const WALK_LIMIT: usize = 1 << 22;

/// The `block_device *` a device index stands for: a kernel-looking address (hashing uses it).
pub fn bdev_address(device: u32) -> u64 {
    0xffff_8100_0000_0000 + u64::from(device) * 0x400
}

/// `struct mb_cache_op`: the free callback. `free(ce, gfp)` returning nonzero keeps the entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct FreeOp {
    /// The callback refuses when the caller may not enter the filesystem (no `__GFP_FS`), as a
    /// callback that must write metadata back would.
    pub fails_without_fs: bool,
}

/// The fault site the free callback also consults (so a fault plan can make it fail).
pub const FREE_CALLBACK_SITE: &str = "mbcache:c_op.free";

/// `struct mb_cache`.
#[derive(Debug)]
pub struct MbCache {
    name: &'static str,
    free_op: Option<FreeOp>,
    /// `c_entry_count`.
    entry_count: AtomicI32,
    bucket_bits: u32,
    indexes_count: u32,
    /// `c_entry_cache`.
    entries: KmemCache<Entry>,
    /// `c_block_hash` and `c_indexes_hash`, freed with the cache.
    tables: StdMutex<Tables>,
}

#[derive(Debug)]
struct Tables {
    block: Vec<ListHead>,
    index: Vec<Vec<ListHead>>,
}

/// The fields of an entry that `mb_cache_spinlock` guards.
#[derive(Debug)]
struct EntryFields {
    lru: ListHead,
    block_list: ListHead,
    indexes: Vec<(ListHead, u32)>,
    bdev: u64,
    block: u64,
    /// `e_queued` (the fixed kernel).
    queued: u32,
    /// Instrumentation: when it went on the LRU tail (0: put back at the head by a failed free).
    lru_stamp: u64,
    /// Instrumentation: its free callback failed and it is waiting on the LRU to be freed.
    free_failed: bool,
}

/// `struct mb_cache_entry`.
#[derive(Debug)]
pub struct Entry {
    /// Instrumentation: a serial number, unique per registry, for outcomes and traces.
    id: u64,
    /// `e_used`.
    used: AtomicU32,
    fields: StdMutex<EntryFields>,
}

fn locked<T>(mutex: &StdMutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// What `mb_cache_spinlock` guards besides entries: the cache list, the LRU head, and the
/// free-list heads of functions in progress.
#[derive(Debug)]
pub(crate) struct Global {
    /// `mb_cache_list`, most recently created first.
    caches: Vec<CacheHandle>,
    lru: ListHead,
    locals: BTreeMap<u64, ListHead>,
    next_local: u64,
}

/// A cache, as its creator holds it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct CacheRef(pub(crate) CacheHandle);

/// A handle to an entry: the pointer `mb_cache_entry_get` and friends return. A value the user
/// holds across operations; copying it is copying the pointer, and using a copy after the handle
/// was released is a reported violation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Handle {
    id: u64,
    entry: EntryRef,
    serial: u64,
}

impl Handle {
    /// The entry the handle points to.
    pub fn entry_ref(&self) -> EntryRef {
        self.entry
    }

    /// The entry's serial number (stable for the entry's life).
    pub fn entry_id(&self) -> u64 {
        self.serial
    }
}

/// Why an entry operation did not return normally.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MbError {
    /// The kernel's error return.
    Errno(Errno),
    /// The call would sleep and, in the one-thread simulation, nobody could wake it: the call
    /// did not happen. (Only with `exclusive-get`; threaded runs really wait.)
    WouldBlock,
    /// The kernel would oops, or memory was misused: already reported to the `Sim`.
    Oops(Violation),
}

impl From<Oops> for MbError {
    fn from(oops: Oops) -> Self {
        MbError::Oops(oops.0)
    }
}

/// Whether a call that must wait for an entry sleeps (threads) or returns `WouldBlock` (the
/// one-thread op-level simulation).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Waits {
    /// Sleep on `mb_cache_queue` until woken.
    Sleep,
    /// Return [`MbError::WouldBlock`].
    WouldBlock,
}

/// What `mb_cache_destroy` found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Destroyed {
    /// `c_entry_count` after freeing what it could ("%d orphaned entries").
    pub orphans: i32,
}

/// The registry: what fs/mbcache.c keeps global, one per `Sim`.
#[derive(Debug)]
pub struct Registry {
    sim: Sim,
    fixes: Fixes,
    waits: Waits,
    /// `mb_cache_spinlock` and what it guards.
    global: SpinLock<Global>,
    /// `kmalloc` of `struct mb_cache` (and its hash tables).
    caches: KmemCache<MbCache>,
    /// `mb_cache_queue`.
    queue: WaitQueue,
    /// Wake-ups of `mb_cache_queue` so far, bumped under `mb_cache_spinlock`: a sleeper that read
    /// it under the lock before sleeping returns from `schedule()` once it changes, as a task
    /// on the kernel's queue does after `wake_up_all`, and rechecks under the lock.
    wakeups: AtomicUsize,
    /// A stand-in for the memory of `struct mb_cache` objects: `kfree` in destroy writes it and
    /// the unlocked reads in `__mb_cache_entry_forget` read it, so loom and shuttle see the two
    /// conflict and try both orders. Free in the default backend.
    cache_memory: AtomicUsize,
    /// `mb_shrinker`: the seeks it was registered with (None: not registered).
    shrinker: StdMutex<Option<u32>>,
    // Instrumentation below: never model state.
    handles: StdMutex<BTreeMap<u64, EntryRef>>,
    next_handle: StdAtomicU64,
    next_serial: StdAtomicU64,
    lru_clock: StdAtomicU64,
    marks: StdMutex<BTreeSet<&'static str>>,
}

/// The memory the list code reads and writes while `mb_cache_spinlock` is held.
struct Mem<'a> {
    registry: &'a Registry,
    cx: &'a Cx,
    global: &'a mut Global,
}

impl Mem<'_> {
    fn cache(&mut self, cache: CacheHandle) -> Result<std::sync::Arc<MbCache>, Oops> {
        self.registry
            .caches
            .get(self.cx, cache)
            .map_err(|e| Oops(Violation::new("use-after-free", e.to_string())))
    }

    fn entry(&mut self, entry: EntryRef) -> Result<std::sync::Arc<Entry>, Oops> {
        let cache = self.cache(entry.cache)?;
        cache
            .entries
            .get(self.cx, entry.entry)
            .map_err(|e| Oops(Violation::new("use-after-free", e.to_string())))
    }
}

impl Memory for Mem<'_> {
    fn read(&mut self, node: Node) -> Result<ListHead, Oops> {
        match node {
            Node::Head(HeadId::Lru) => Ok(self.global.lru),
            Node::Head(HeadId::Local(id)) => Ok(self.global.locals[&id]),
            Node::Head(HeadId::Block(cache, bucket)) => {
                Ok(locked(&self.cache(cache)?.tables).block[bucket as usize])
            }
            Node::Head(HeadId::Index(cache, index, bucket)) => {
                Ok(locked(&self.cache(cache)?.tables).index[index as usize][bucket as usize])
            }
            Node::Lru(entry) => Ok(locked(&self.entry(entry)?.fields).lru),
            Node::Block(entry) => Ok(locked(&self.entry(entry)?.fields).block_list),
            Node::Index(entry, index) => Ok(locked(&self.entry(entry)?.fields).indexes[index as usize].0),
        }
    }

    fn write(&mut self, node: Node, head: ListHead) -> Result<(), Oops> {
        match node {
            Node::Head(HeadId::Lru) => self.global.lru = head,
            Node::Head(HeadId::Local(id)) => {
                self.global.locals.insert(id, head);
            }
            Node::Head(HeadId::Block(cache, bucket)) => {
                locked(&self.cache(cache)?.tables).block[bucket as usize] = head
            }
            Node::Head(HeadId::Index(cache, index, bucket)) => {
                locked(&self.cache(cache)?.tables).index[index as usize][bucket as usize] = head
            }
            Node::Lru(entry) => locked(&self.entry(entry)?.fields).lru = head,
            Node::Block(entry) => locked(&self.entry(entry)?.fields).block_list = head,
            Node::Index(entry, index) => locked(&self.entry(entry)?.fields).indexes[index as usize].0 = head,
        }
        Ok(())
    }

    fn bad_link(&mut self, at: Node, link: Link, what: &str) -> Oops {
        let violation = Violation::new(
            "list-poison",
            format!(
                "{what}: followed {link:?} found in {at:?}: the kernel oopses here (a list_del'ed \
                 link was used; the entry was unhashed while this path still held it)"
            ),
        );
        self.cx.sim().report(Some(self.cx), violation.clone());
        Oops(violation)
    }
}

/// What `__mb_cache_entry_find` found: an entry (and its serial), none, or EAGAIN.
type Found = Result<Option<(EntryRef, u64)>, Errno>;

/// A held `mb_cache_spinlock` with the memory it guards.
struct Locked<'a> {
    guard: SpinLockGuard<'a, Global>,
    registry: &'a Registry,
    cx: &'a Cx,
}

impl Locked<'_> {
    fn mem(&mut self) -> Mem<'_> {
        Mem { registry: self.registry, cx: self.cx, global: &mut self.guard }
    }

    fn new_local(&mut self) -> Node {
        let id = self.guard.next_local;
        self.guard.next_local += 1;
        let node = Node::Head(HeadId::Local(id));
        self.guard.locals.insert(id, ListHead::init(node));
        node
    }
}

fn entry_of_lru(node: Node) -> EntryRef {
    match node {
        Node::Lru(entry) => entry,
        other => panic!("a node on an lru list is not an entry's e_lru_list: {other:?}"),
    }
}

impl Registry {
    /// The registry for `sim` with `fixes`; registers the shrinker, as `init_mbcache()` does.
    pub fn new(sim: &Sim, fixes: Fixes, waits: Waits) -> Registry {
        let registry = Registry {
            sim: sim.clone(),
            fixes,
            waits,
            global: SpinLock::new(
                MB_CACHE_SPINLOCK,
                Global {
                    caches: Vec::new(),
                    lru: ListHead::init(Node::Head(HeadId::Lru)),
                    locals: BTreeMap::new(),
                    next_local: 0,
                },
            ),
            caches: KmemCache::new("size-128(mb_cache)", 128),
            queue: WaitQueue::new(MB_CACHE_QUEUE),
            wakeups: AtomicUsize::new(0),
            cache_memory: AtomicUsize::new(0),
            shrinker: StdMutex::new(None),
            handles: StdMutex::new(BTreeMap::new()),
            next_handle: StdAtomicU64::new(1),
            next_serial: StdAtomicU64::new(1),
            lru_clock: StdAtomicU64::new(1),
            marks: StdMutex::new(BTreeSet::new()),
        };
        registry.init_mbcache();
        registry
    }

    /// Mirrors `init_mbcache()`: `set_shrinker(DEFAULT_SEEKS, mb_cache_shrink_fn)`.
    fn init_mbcache(&self) {
        *locked(&self.shrinker) = Some(DEFAULT_SEEKS);
    }

    /// Mirrors `exit_mbcache()`: `remove_shrinker`.
    pub fn exit_mbcache(&self) {
        *locked(&self.shrinker) = None;
    }

    /// Whether the shrinker is registered.
    pub fn shrinker_registered(&self) -> bool {
        locked(&self.shrinker).is_some()
    }

    /// The world this registry belongs to.
    pub fn sim(&self) -> &Sim {
        &self.sim
    }

    /// `ce->e_bdev` and `ce->e_block` of a held handle's entry.
    pub fn entry_block(&self, cx: &Cx, handle: &Handle) -> Result<(u64, u64), MbError> {
        self.check_handle(cx, handle, "entry_block")?;
        let object = self.entry(cx, handle.entry)?;
        let fields = locked(&object.fields);
        Ok((fields.bdev, fields.block))
    }

    /// The fixes this registry runs with.
    pub fn fixes(&self) -> Fixes {
        self.fixes
    }

    /// The coverage marks reached.
    pub fn marks(&self) -> BTreeSet<&'static str> {
        locked(&self.marks).clone()
    }

    fn mark(&self, mark: &'static str) {
        locked(&self.marks).insert(mark);
    }

    /// A scheduling point for loom and shuttle where the kernel reads shared memory without a
    /// lock (a relaxed load of a facade atomic; free in the default backend).
    fn preemption_point(&self) {
        self.cache_memory.load(Ordering::SeqCst);
    }

    fn lock<'a>(&'a self, cx: &'a Cx) -> Locked<'a> {
        Locked { guard: self.global.lock(cx), registry: self, cx }
    }

    fn cache(&self, cx: &Cx, cache: CacheHandle) -> Result<std::sync::Arc<MbCache>, MbError> {
        self.caches.get(cx, cache).map_err(|e| MbError::Oops(Violation::new("use-after-free", e.to_string())))
    }

    fn entry(&self, cx: &Cx, entry: EntryRef) -> Result<std::sync::Arc<Entry>, MbError> {
        let cache = self.cache(cx, entry.cache)?;
        cache
            .entries
            .get(cx, entry.entry)
            .map_err(|e| MbError::Oops(Violation::new("use-after-free", e.to_string())))
    }

    // --- handles (instrumentation) -------------------------------------------------------------

    fn new_handle(&self, entry: EntryRef, serial: u64) -> Handle {
        let id = self.next_handle.fetch_add(1, StdOrdering::Relaxed);
        locked(&self.handles).insert(id, entry);
        Handle { id, entry, serial }
    }

    /// Checks that `handle` was not released; a released one is a reported violation.
    fn check_handle(&self, cx: &Cx, handle: &Handle, what: &str) -> Result<(), MbError> {
        if locked(&self.handles).contains_key(&handle.id) {
            return Ok(());
        }
        let violation = Violation::new(
            "use-after-release",
            format!("{what}: handle #{} to entry {} was already released", handle.id, handle.serial),
        );
        cx.sim().report(Some(cx), violation.clone());
        Err(MbError::Oops(violation))
    }

    fn retire_handle(&self, handle: &Handle) {
        locked(&self.handles).remove(&handle.id);
    }

    /// Handles not yet released, per cache.
    pub fn handles_held(&self, cache: CacheRef) -> usize {
        locked(&self.handles).values().filter(|e| e.cache == cache.0).count()
    }

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

    fn create_inner(
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

    /// Mirrors `__mb_cache_entry_is_hashed()`.
    fn is_hashed(mem: &mut Mem<'_>, entry: EntryRef) -> Result<bool, Oops> {
        Ok(!list::list_empty(mem, Node::Block(entry))?)
    }

    /// Mirrors `__mb_cache_entry_unhash()`.
    fn unhash(mem: &mut Mem<'_>, entry: EntryRef) -> Result<(), Oops> {
        if Self::is_hashed(mem, entry)? {
            list::list_del_init(mem, Node::Block(entry))?;
            let indexes = mem.cache(entry.cache)?.indexes_count;
            for index in 0..indexes {
                list::list_del(mem, Node::Index(entry, index))?;
            }
        }
        Ok(())
    }

    /// Mirrors `__mb_cache_entry_forget()`: called without the lock; a failed free callback puts
    /// the entry back at the head of the LRU.
    fn forget(&self, cx: &Cx, entry: EntryRef, gfp: Gfp) -> Result<(), MbError> {
        // The kernel starts with plain reads of `ce->e_cache` and `cache->c_op`, unlocked, which
        // another CPU may race with: a point where loom and shuttle may switch tasks.
        self.preemption_point();
        let cache = self.cache(cx, entry.cache)?;
        let object = cache
            .entries
            .get(cx, entry.entry)
            .map_err(|e| MbError::Oops(Violation::new("use-after-free", e.to_string())))?;
        let refused = match cache.free_op {
            Some(op) => {
                let refuses = (op.fails_without_fs && !gfp.contains(Gfp::__GFP_FS))
                    || cx.sim().should_fail(cx, &FaultSite::call(FREE_CALLBACK_SITE), 0);
                refuses
            }
            None => false,
        };
        if refused {
            self.mark("free callback failed: entry back on the lru");
            cx.note(format!("{}: free callback refused entry {}; back on the lru", cache.name, object.id));
            let mut locked_global = self.lock(cx);
            {
                let mut fields = locked(&object.fields);
                fields.lru_stamp = 0;
                fields.free_failed = true;
            }
            list::list_add(&mut locked_global.mem(), Node::Lru(entry), Node::Head(HeadId::Lru))?;
            drop(locked_global);
        } else {
            drop(object);
            cache
                .entries
                .free(cx, entry.entry)
                .map_err(|e| MbError::Oops(Violation::new("double-free", e.to_string())))?;
            cache.entry_count.fetch_sub(1, Ordering::SeqCst);
        }
        Ok(())
    }

    /// Mirrors `__mb_cache_entry_release_unlock()`: drops one use under the lock; the last use
    /// puts a hashed entry on the LRU tail and forgets an unhashed one (after unlocking).
    fn release_unlock(&self, mut locked_global: Locked<'_>, entry: EntryRef) -> Result<(), MbError> {
        let cx = locked_global.cx;
        let object = locked_global.mem().entry(entry)?;
        let last = if self.fixes.exclusive_get {
            let queued = locked(&object.fields).queued;
            if queued > 0 {
                self.wakeups.fetch_add(1, Ordering::SeqCst);
                self.queue.wake_up();
            }
            let mut used = object.used.load(Ordering::SeqCst);
            if used >= MB_CACHE_WRITER {
                used -= MB_CACHE_WRITER;
            }
            used -= 1;
            object.used.store(used, Ordering::SeqCst);
            used == 0 && queued == 0
        } else {
            object.used.fetch_sub(1, Ordering::SeqCst) == 1
        };
        if last {
            if !Self::is_hashed(&mut locked_global.mem(), entry)? {
                drop(locked_global);
                self.mark("last release of an unhashed entry frees it");
                return self.forget(cx, entry, Gfp::GFP_KERNEL);
            }
            let stamp = self.lru_clock.fetch_add(1, StdOrdering::Relaxed);
            locked(&object.fields).lru_stamp = stamp;
            list::list_add_tail(&mut locked_global.mem(), Node::Lru(entry), Node::Head(HeadId::Lru))?;
        }
        drop(locked_global);
        Ok(())
    }

    /// Moves the LRU entries `select` picks onto a fresh free list and unhashes them (the locked
    /// half of `mb_cache_shrink`, `mb_cache_destroy` and the shrinker). Returns the free list's
    /// members in order.
    fn collect(
        locked_global: &mut Locked<'_>,
        mut select: impl FnMut(&mut Mem<'_>, EntryRef) -> Result<bool, Oops>,
        scan_max: Option<usize>,
    ) -> Result<Vec<EntryRef>, Oops> {
        let free_list = locked_global.new_local();
        let mut mem = locked_global.mem();
        let lru = Node::Head(HeadId::Lru);
        let mut taken = Vec::new();
        match scan_max {
            // The shrinker: the first entries of the LRU, whatever cache they belong to.
            Some(scan_max) => {
                for _ in 0..scan_max {
                    if list::list_empty(&mut mem, lru)? {
                        break;
                    }
                    let entry = entry_of_lru(list::next(&mut mem, lru, "mb_cache_lru_list.next")?);
                    list::list_move_tail(&mut mem, Node::Lru(entry), free_list)?;
                    Self::unhash(&mut mem, entry)?;
                    taken.push(entry);
                }
            }
            // list_for_each_safe over the whole LRU.
            None => {
                let mut at = list::next(&mut mem, lru, "list_for_each_safe")?;
                while at != lru {
                    let after = list::next(&mut mem, at, "list_for_each_safe")?;
                    let entry = entry_of_lru(at);
                    if select(&mut mem, entry)? {
                        list::list_move_tail(&mut mem, Node::Lru(entry), free_list)?;
                        Self::unhash(&mut mem, entry)?;
                        taken.push(entry);
                    }
                    at = after;
                }
            }
        }
        if let Node::Head(HeadId::Local(id)) = free_list {
            // The stack frame's head goes away when the function returns; its members are
            // forgotten one by one from `taken` (list_for_each_safe over free_list).
            locked_global.guard.locals.remove(&id);
        }
        Ok(taken)
    }

    /// Mirrors `mb_cache_shrink_fn()`: counts every cache's entries and, unless `nr_to_scan` is
    /// 0, frees up to `nr_to_scan` entries from the head of the LRU. Returns the count.
    pub fn shrink_fn(&self, cx: &Cx, nr_to_scan: i32, gfp: Gfp) -> Result<i32, MbError> {
        if !self.shrinker_registered() {
            return Ok(0);
        }
        cx.op_begin("mb_cache_shrink_fn", format!("nr_to_scan={nr_to_scan} gfp={gfp:?}"));
        let result = self.shrink_fn_inner(cx, nr_to_scan, gfp);
        cx.op_end("mb_cache_shrink_fn", format!("{result:?}"));
        result
    }

    fn shrink_fn_inner(&self, cx: &Cx, nr_to_scan: i32, gfp: Gfp) -> Result<i32, MbError> {
        let mut locked_global = self.lock(cx);
        let mut count = 0i32;
        let caches = locked_global.guard.caches.clone();
        for cache in caches {
            count = count.wrapping_add(self.cache(cx, cache)?.entry_count.load(Ordering::SeqCst));
        }
        if nr_to_scan == 0 {
            drop(locked_global);
            return Ok(count);
        }
        // `while (nr_to_scan-- && ...)`: a negative count never reaches zero, so it scans the
        // whole LRU.
        let scan_max = usize::try_from(nr_to_scan).unwrap_or(usize::MAX);
        let taken = Self::collect(&mut locked_global, |_, _| Ok(true), Some(scan_max))?;
        drop(locked_global);
        for entry in taken {
            self.mark("entry freed by the shrinker");
            self.forget(cx, entry, gfp)?;
        }
        Ok(count)
    }

    /// Mirrors `mb_cache_shrink()`: frees every unused entry of device `bdev`. The seed takes the
    /// cache but filters by device only, so it shrinks that device's entries of every cache.
    pub fn shrink(&self, cx: &Cx, _cache: CacheRef, bdev: u64) -> Result<(), MbError> {
        cx.op_begin("mb_cache_shrink", format!("bdev={bdev:#x}"));
        let mut locked_global = self.lock(cx);
        let taken = Self::collect(
            &mut locked_global,
            |mem, entry| Ok(locked(&mem.entry(entry)?.fields).bdev == bdev),
            None,
        )?;
        drop(locked_global);
        for entry in taken {
            self.mark("entry freed by mb_cache_shrink");
            self.forget(cx, entry, Gfp::GFP_KERNEL)?;
        }
        cx.op_end("mb_cache_shrink", "");
        Ok(())
    }

    /// Mirrors `mb_cache_destroy()`: frees the cache's unused entries, unlists and frees the
    /// cache, and reports the entries it could not free ("orphaned entries").
    pub fn destroy(&self, cx: &Cx, cache: CacheRef) -> Result<Destroyed, MbError> {
        cx.op_begin("mb_cache_destroy", "");
        let mut locked_global = self.lock(cx);
        let taken = Self::collect(&mut locked_global, |_, entry| Ok(entry.cache == cache.0), None)?;
        locked_global.guard.caches.retain(|c| *c != cache.0);
        drop(locked_global);
        for entry in taken {
            self.forget(cx, entry, Gfp::GFP_KERNEL)?;
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

    // --- entries -------------------------------------------------------------------------------

    /// Mirrors `mb_cache_entry_alloc()`: a new, unhashed entry with one (exclusive) use.
    pub fn alloc(&self, cx: &Cx, cache: CacheRef) -> Result<Handle, MbError> {
        let object = self.cache(cx, cache.0)?;
        if !self.fixes.entry_count_after_alloc {
            object.entry_count.fetch_add(1, Ordering::SeqCst);
        }
        let serial = self.next_serial.fetch_add(1, StdOrdering::Relaxed);
        let fields = EntryFields {
            lru: ListHead::UNINIT,
            block_list: ListHead::UNINIT,
            indexes: vec![(ListHead::UNINIT, 0); object.indexes_count as usize],
            bdev: 0,
            block: 0,
            queued: 0,
            lru_stamp: 0,
            free_failed: false,
        };
        let entry = Entry { id: serial, used: AtomicU32::new(0), fields: StdMutex::new(fields) };
        let allocated = object.entries.alloc(cx, Gfp::GFP_KERNEL, entry);
        let handle = match allocated {
            Ok(handle) => handle,
            Err(errno) => {
                self.mark("entry allocation failed");
                return Err(MbError::Errno(errno));
            }
        };
        if self.fixes.entry_count_after_alloc {
            object.entry_count.fetch_add(1, Ordering::SeqCst);
        }
        let entry = EntryRef { cache: cache.0, entry: handle };
        let new = object.entries.get(cx, handle).expect("just allocated");
        {
            let mut fields = locked(&new.fields);
            fields.lru = ListHead::init(Node::Lru(entry));
            fields.block_list = ListHead::init(Node::Block(entry));
        }
        let used = if self.fixes.exclusive_get { 1 + MB_CACHE_WRITER } else { 1 };
        new.used.store(used, Ordering::SeqCst);
        Ok(self.new_handle(entry, serial))
    }

    /// Mirrors `mb_cache_entry_insert()`: hashes the entry under (`bdev`, `block`) and `keys`;
    /// EBUSY when that (device, block) is hashed already. `keys` must have one key per index
    /// (the kernel reads past a short array; ksim returns EINVAL).
    pub fn insert(
        &self,
        cx: &Cx,
        handle: &Handle,
        bdev: u64,
        block: u64,
        keys: &[u32],
    ) -> Result<(), MbError> {
        self.check_handle(cx, handle, "mb_cache_entry_insert")?;
        let entry = handle.entry;
        let cache = self.cache(cx, entry.cache)?;
        if keys.len() != cache.indexes_count as usize {
            return Err(MbError::Errno(Errno::EINVAL));
        }
        let bucket = hash_long(bdev.wrapping_add(block & 0xffff_ffff), cache.bucket_bits);
        let mut locked_global = self.lock(cx);
        let mut mem = locked_global.mem();
        let head = Node::Head(HeadId::Block(entry.cache, bucket));
        // list_for_each_prev over the bucket.
        let mut at = list::prev(&mut mem, head, "list_for_each_prev")?;
        while at != head {
            let Node::Block(other) = at else { panic!("block chain holds {at:?}") };
            let other_object = mem.entry(other)?;
            let fields = locked(&other_object.fields);
            if fields.bdev == bdev && fields.block == block {
                drop(fields);
                drop(locked_global);
                self.mark("insert found the block hashed: EBUSY");
                return Err(MbError::Errno(Errno::EBUSY));
            }
            drop(fields);
            at = list::prev(&mut mem, at, "list_for_each_prev")?;
        }
        Self::unhash(&mut mem, entry)?;
        let object = mem.entry(entry)?;
        {
            let mut fields = locked(&object.fields);
            fields.bdev = bdev;
            fields.block = block;
        }
        list::list_add(&mut mem, Node::Block(entry), head)?;
        for (index, key) in keys.iter().enumerate() {
            locked(&object.fields).indexes[index].1 = *key;
            let bucket = hash_long(u64::from(*key), cache.bucket_bits);
            list::list_add(
                &mut mem,
                Node::Index(entry, index as u32),
                Node::Head(HeadId::Index(entry.cache, index as u32, bucket)),
            )?;
        }
        drop(locked_global);
        Ok(())
    }

    /// Mirrors `mb_cache_entry_release()`.
    pub fn release(&self, cx: &Cx, handle: Handle) -> Result<(), MbError> {
        self.check_handle(cx, &handle, "mb_cache_entry_release")?;
        self.retire_handle(&handle);
        let locked_global = self.lock(cx);
        self.release_unlock(locked_global, handle.entry)
    }

    /// Mirrors `mb_cache_entry_takeout()`: unhashes the entry; the handle stays held. Gone from
    /// the API with `exclusive-get` (ENOSYS here).
    pub fn takeout(&self, cx: &Cx, handle: &Handle) -> Result<(), MbError> {
        if self.fixes.exclusive_get {
            return Err(MbError::Errno(Errno::ENOSYS));
        }
        self.check_handle(cx, handle, "mb_cache_entry_takeout")?;
        let mut locked_global = self.lock(cx);
        Self::unhash(&mut locked_global.mem(), handle.entry)?;
        self.mark("entry taken out");
        drop(locked_global);
        Ok(())
    }

    /// Mirrors `mb_cache_entry_free()`: takeout and release in one.
    pub fn free(&self, cx: &Cx, handle: Handle) -> Result<(), MbError> {
        self.check_handle(cx, &handle, "mb_cache_entry_free")?;
        self.retire_handle(&handle);
        let mut locked_global = self.lock(cx);
        Self::unhash(&mut locked_global.mem(), handle.entry)?;
        self.mark("entry freed through a handle");
        self.release_unlock(locked_global, handle.entry)
    }

    /// Mirrors `mb_cache_entry_dup()`: a second handle to the same entry, counted without the
    /// lock. Gone from the API with `exclusive-get` (ENOSYS here).
    pub fn dup(&self, cx: &Cx, handle: &Handle) -> Result<Handle, MbError> {
        if self.fixes.exclusive_get {
            return Err(MbError::Errno(Errno::ENOSYS));
        }
        self.check_handle(cx, handle, "mb_cache_entry_dup")?;
        let object = self.entry(cx, handle.entry)?;
        object.used.fetch_add(1, Ordering::SeqCst);
        self.mark("handle duplicated");
        Ok(self.new_handle(handle.entry, handle.serial))
    }

    /// Takes a use of `entry`, found on a chain under the lock: off the LRU, `e_used` up, and with
    /// `exclusive-get` the wait for exclusive (`writer`) or shared access. Returns the held lock,
    /// or None when the entry was unhashed while waiting (its use dropped again, lock retaken).
    fn take_use<'a>(
        &'a self,
        mut locked_global: Locked<'a>,
        entry: EntryRef,
        writer: bool,
    ) -> Result<(Locked<'a>, bool), MbError> {
        let cx = locked_global.cx;
        let object = locked_global.mem().entry(entry)?;
        {
            let mut mem = locked_global.mem();
            if !list::list_empty(&mut mem, Node::Lru(entry))? {
                list::list_del_init(&mut mem, Node::Lru(entry))?;
            }
        }
        locked(&object.fields).free_failed = false;
        if !self.fixes.exclusive_get {
            object.used.fetch_add(1, Ordering::SeqCst);
            return Ok((locked_global, true));
        }
        if !writer {
            // Readers count themselves before waiting, which gives them priority over writers.
            object.used.fetch_add(1, Ordering::SeqCst);
        }
        let busy = |used: u32| if writer { used > 0 } else { used >= MB_CACHE_WRITER };
        while busy(object.used.load(Ordering::SeqCst)) {
            if self.waits == Waits::WouldBlock {
                if !writer {
                    object.used.fetch_sub(1, Ordering::SeqCst);
                }
                self.mark("lookup would wait for a busy entry");
                return Err(MbError::WouldBlock);
            }
            locked(&object.fields).queued += 1;
            let seen = self.wakeups.load(Ordering::SeqCst);
            drop(locked_global);
            self.mark("lookup slept on mb_cache_queue");
            self.queue.wait_event(cx, || self.wakeups.load(Ordering::SeqCst) != seen);
            locked_global = self.lock(cx);
            locked(&object.fields).queued -= 1;
        }
        if writer {
            object.used.fetch_add(1 + MB_CACHE_WRITER, Ordering::SeqCst);
        }
        if !Self::is_hashed(&mut locked_global.mem(), entry)? {
            self.mark("lookup waited for an entry that was freed meanwhile");
            self.release_unlock(locked_global, entry)?;
            return Ok((self.lock(cx), false));
        }
        Ok((locked_global, true))
    }

    /// Mirrors `mb_cache_entry_get()`: the entry for (`bdev`, `block`), or None.
    pub fn get(&self, cx: &Cx, cache: CacheRef, bdev: u64, block: u64) -> Result<Option<Handle>, MbError> {
        let object = self.cache(cx, cache.0)?;
        let bucket = hash_long(bdev.wrapping_add(block & 0xffff_ffff), object.bucket_bits);
        let mut locked_global = self.lock(cx);
        let head = Node::Head(HeadId::Block(cache.0, bucket));
        let mut at = list::next(&mut locked_global.mem(), head, "list_for_each")?;
        while at != head {
            let Node::Block(entry) = at else { panic!("block chain holds {at:?}") };
            let found = {
                let mut mem = locked_global.mem();
                let other = mem.entry(entry)?;
                let fields = locked(&other.fields);
                fields.bdev == bdev && fields.block == block
            };
            if found {
                let serial = locked_global.mem().entry(entry)?.id;
                let (relocked, hashed) = self.take_use(locked_global, entry, true)?;
                drop(relocked);
                if !hashed {
                    return Ok(None);
                }
                self.mark("get found an entry");
                return Ok(Some(self.new_handle(entry, serial)));
            }
            at = list::next(&mut locked_global.mem(), at, "list_for_each")?;
        }
        drop(locked_global);
        Ok(None)
    }

    /// Mirrors `__mb_cache_entry_find()`: from `start` along index chain `index` up to `head`,
    /// the first entry of `bdev` with `key`, with a use taken. Returns the lock (it may have been
    /// dropped and retaken while waiting) and the entry.
    fn find_from<'a>(
        &'a self,
        mut locked_global: Locked<'a>,
        mut at: Node,
        head: Node,
        index: u32,
        bdev: u64,
        key: u32,
    ) -> Result<(Locked<'a>, Found), MbError> {
        while at != head {
            let entry = match at {
                Node::Index(entry, _) => entry,
                other => {
                    // The walk left the bucket it started in (prev was re-hashed elsewhere) and
                    // reached another list head, which the kernel would read as an entry.
                    let violation = Violation::new(
                        "wild-pointer",
                        format!("__mb_cache_entry_find: reached {other:?} instead of {head:?}: the kernel reads a list head as an entry"),
                    );
                    locked_global.cx.sim().report(Some(locked_global.cx), violation.clone());
                    return Err(MbError::Oops(violation));
                }
            };
            let (found, serial) = {
                let mut mem = locked_global.mem();
                let other = mem.entry(entry)?;
                let fields = locked(&other.fields);
                (fields.bdev == bdev && fields.indexes[index as usize].1 == key, other.id)
            };
            if found {
                let (relocked, hashed) = self.take_use(locked_global, entry, false)?;
                if !hashed {
                    return Ok((relocked, Err(Errno::EAGAIN)));
                }
                return Ok((relocked, Ok(Some((entry, serial)))));
            }
            at = list::next(&mut locked_global.mem(), at, "__mb_cache_entry_find")?;
        }
        Ok((locked_global, Ok(None)))
    }

    /// Mirrors `mb_cache_entry_find_first()`: the first entry of `bdev` whose key in index `index`
    /// is `key`, or None. An index the cache does not have is EINVAL (the kernel reads past its
    /// table).
    pub fn find_first(
        &self,
        cx: &Cx,
        cache: CacheRef,
        index: u32,
        bdev: u64,
        key: u32,
    ) -> Result<Option<Handle>, MbError> {
        let object = self.cache(cx, cache.0)?;
        if index >= object.indexes_count {
            return Err(MbError::Errno(Errno::EINVAL));
        }
        let bucket = hash_long(u64::from(key), object.bucket_bits);
        let locked_global = self.lock(cx);
        let head = Node::Head(HeadId::Index(cache.0, index, bucket));
        let mut locked_global = locked_global;
        let first = list::next(&mut locked_global.mem(), head, "c_indexes_hash[index][bucket].next")?;
        let (locked_global, found) = self.find_from(locked_global, first, head, index, bdev, key)?;
        drop(locked_global);
        match found {
            Ok(Some((entry, serial))) => {
                self.mark("find_first found an entry");
                Ok(Some(self.new_handle(entry, serial)))
            }
            Ok(None) => Ok(None),
            Err(errno) => Err(MbError::Errno(errno)),
        }
    }

    /// Mirrors `mb_cache_entry_find_next()`: the next match after `prev` along `prev`'s own index
    /// link, releasing `prev`. Follows `prev`'s `o_list.next` as the seed does: if `prev` was
    /// unhashed meanwhile, that link is poisoned and the kernel oopses (reported).
    pub fn find_next(
        &self,
        cx: &Cx,
        prev: Handle,
        index: u32,
        bdev: u64,
        key: u32,
    ) -> Result<Option<Handle>, MbError> {
        self.check_handle(cx, &prev, "mb_cache_entry_find_next")?;
        let object = self.cache(cx, prev.entry.cache)?;
        if index >= object.indexes_count {
            return Err(MbError::Errno(Errno::EINVAL));
        }
        let bucket = hash_long(u64::from(key), object.bucket_bits);
        let mut locked_global = self.lock(cx);
        let head = Node::Head(HeadId::Index(prev.entry.cache, index, bucket));
        let after = list::next(
            &mut locked_global.mem(),
            Node::Index(prev.entry, index),
            "prev->e_indexes[index].o_list.next",
        )?;
        let (locked_global, found) = self.find_from(locked_global, after, head, index, bdev, key)?;
        self.retire_handle(&prev);
        self.mark("find_next walked on");
        self.release_unlock(locked_global, prev.entry)?;
        match found {
            Ok(Some((entry, serial))) => {
                self.mark("find_next found another entry");
                Ok(Some(self.new_handle(entry, serial)))
            }
            Ok(None) => Ok(None),
            Err(errno) => Err(MbError::Errno(errno)),
        }
    }

    // --- inspection ----------------------------------------------------------------------------

    /// The LRU's entry serials, head (next to be shrunk) first.
    pub fn lru_serials(&self, cx: &Cx) -> Result<Vec<u64>, MbError> {
        let mut locked_global = self.lock(cx);
        let mut mem = locked_global.mem();
        let nodes = list::walk(&mut mem, Node::Head(HeadId::Lru), WALK_LIMIT)?;
        let mut serials = Vec::with_capacity(nodes.len());
        for node in nodes {
            serials.push(mem.entry(entry_of_lru(node))?.id);
        }
        Ok(serials)
    }

    /// The caches on `mb_cache_list`, most recent first.
    pub fn cache_list(&self, cx: &Cx) -> Vec<CacheRef> {
        self.lock(cx).guard.caches.iter().map(|c| CacheRef(*c)).collect()
    }

    /// Checks the registry's invariants, one fact per check, with the state each needs. For the
    /// one-thread simulation (and at quiescent points of threaded runs).
    pub fn check_invariants(&self, cx: &Cx) -> Result<(), Violation> {
        let fail = |kind: &str, message: String| Err(Violation::new(kind, message));
        let handles: BTreeMap<u64, EntryRef> = locked(&self.handles).clone();
        let mut handles_per_entry: BTreeMap<EntryRef, u32> = BTreeMap::new();
        for entry in handles.values() {
            *handles_per_entry.entry(*entry).or_default() += 1;
        }
        let mut locked_global = self.lock(cx);
        let caches = locked_global.guard.caches.clone();
        let mut mem = locked_global.mem();
        let oops = |o: Oops| o.0;
        // Nothing is freed while a handle refers to it.
        for (id, entry) in &handles {
            let cache = match self.caches.is_live(entry.cache) {
                true => mem.cache(entry.cache).map_err(oops)?,
                false => {
                    return fail("invariant", format!("handle #{id} refers to an entry of a destroyed cache"))
                }
            };
            if !cache.entries.is_live(entry.entry) {
                return fail(
                    "invariant",
                    format!("handle #{id} refers to freed entry {:?} of {}", entry.entry, cache.name),
                );
            }
        }
        // The LRU: each entry unused, hashed or put back by a failed free, in release order.
        let lru_nodes = list::walk(&mut mem, Node::Head(HeadId::Lru), WALK_LIMIT).map_err(oops)?;
        let mut on_lru = BTreeSet::new();
        let mut stamp_before = 0;
        for node in &lru_nodes {
            let entry = entry_of_lru(*node);
            let object = mem.entry(entry).map_err(oops)?;
            let used = object.used.load(Ordering::SeqCst);
            if used != 0 {
                return fail("invariant", format!("entry {} is on the lru with e_used {used}", object.id));
            }
            let hashed = Self::is_hashed(&mut mem, entry).map_err(oops)?;
            let fields = locked(&object.fields);
            if !hashed && !fields.free_failed {
                return fail(
                    "invariant",
                    format!("entry {} is on the lru, unhashed, and its free never failed", object.id),
                );
            }
            if fields.lru_stamp < stamp_before {
                return fail(
                    "invariant",
                    format!("lru out of release order: entry {} released at {} after one released at {stamp_before}", object.id, fields.lru_stamp),
                );
            }
            stamp_before = fields.lru_stamp;
            if !on_lru.insert(entry) {
                return fail("invariant", format!("entry {} is on the lru twice", object.id));
            }
        }
        for cache_handle in caches {
            let cache = mem.cache(cache_handle).map_err(oops)?;
            let live = cache.entries.live_handles();
            // A cache's entry count equals its live entries.
            let count = cache.entry_count.load(Ordering::SeqCst);
            if i64::from(count) != live.len() as i64 {
                return fail(
                    "leak",
                    format!(
                        "cache {}: c_entry_count is {count} but {} entries are allocated",
                        cache.name,
                        live.len()
                    ),
                );
            }
            let buckets = 1u32 << cache.bucket_bits;
            let mut hashed_seen: BTreeMap<EntryRef, u32> = BTreeMap::new();
            let mut keys_seen: BTreeMap<(u64, u64), u64> = BTreeMap::new();
            for bucket in 0..buckets {
                let nodes = list::walk(&mut mem, Node::Head(HeadId::Block(cache_handle, bucket)), WALK_LIMIT)
                    .map_err(oops)?;
                for node in nodes {
                    let Node::Block(entry) = node else {
                        return fail("invariant", format!("block chain holds {node:?}"));
                    };
                    let object = mem.entry(entry).map_err(oops)?;
                    let fields = locked(&object.fields);
                    let expect =
                        hash_long(fields.bdev.wrapping_add(fields.block & 0xffff_ffff), cache.bucket_bits);
                    if expect != bucket {
                        return fail(
                            "invariant",
                            format!(
                                "entry {} is on block bucket {bucket}, its key hashes to {expect}",
                                object.id
                            ),
                        );
                    }
                    if let Some(other) = keys_seen.insert((fields.bdev, fields.block), object.id) {
                        return fail(
                            "invariant",
                            format!(
                                "entries {other} and {} are both hashed as ({:#x}, {})",
                                object.id, fields.bdev, fields.block
                            ),
                        );
                    }
                    *hashed_seen.entry(entry).or_default() += 1;
                }
            }
            for index in 0..cache.indexes_count {
                let mut index_seen: BTreeMap<EntryRef, u32> = BTreeMap::new();
                for bucket in 0..buckets {
                    let nodes = list::walk(
                        &mut mem,
                        Node::Head(HeadId::Index(cache_handle, index, bucket)),
                        WALK_LIMIT,
                    )
                    .map_err(oops)?;
                    for node in nodes {
                        let Node::Index(entry, _) = node else {
                            return fail("invariant", format!("index chain holds {node:?}"));
                        };
                        let object = mem.entry(entry).map_err(oops)?;
                        let key = locked(&object.fields).indexes[index as usize].1;
                        let expect = hash_long(u64::from(key), cache.bucket_bits);
                        if expect != bucket {
                            return fail("invariant", format!("entry {} is on index {index} bucket {bucket}, key {key} hashes to {expect}", object.id));
                        }
                        *index_seen.entry(entry).or_default() += 1;
                    }
                }
                if index_seen.len() != hashed_seen.len()
                    || index_seen.values().any(|n| *n != 1)
                    || index_seen.keys().any(|e| !hashed_seen.contains_key(e))
                {
                    return fail(
                        "invariant",
                        format!("cache {}: index {index} chains hold {index_seen:?}, block chains hold {hashed_seen:?}", cache.name),
                    );
                }
            }
            for entry_handle in live {
                let entry = EntryRef { cache: cache_handle, entry: entry_handle };
                let object = mem.entry(entry).map_err(oops)?;
                let used = object.used.load(Ordering::SeqCst);
                let held = handles_per_entry.get(&entry).copied().unwrap_or(0);
                let used_expect = if self.fixes.exclusive_get && used >= MB_CACHE_WRITER {
                    used - MB_CACHE_WRITER
                } else {
                    used
                };
                if used_expect != held {
                    return fail(
                        "invariant",
                        format!("entry {} has e_used {used} but {held} handles refer to it", object.id),
                    );
                }
                let hashed = hashed_seen.contains_key(&entry);
                let lru = on_lru.contains(&entry);
                let free_failed = locked(&object.fields).free_failed;
                if lru != (held == 0 && (hashed || free_failed)) {
                    return fail(
                        "invariant",
                        format!("entry {}: on lru {lru}, handles {held}, hashed {hashed}, free failed {free_failed}", object.id),
                    );
                }
                if held == 0 && !lru {
                    return fail(
                        "leak",
                        format!(
                            "entry {} is allocated, unused and on no list: nobody can free it",
                            object.id
                        ),
                    );
                }
            }
        }
        Ok(())
    }
}
