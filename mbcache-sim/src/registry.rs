//! fs/mbcache.c's global state (2.6.0-2.6.10, seed 001, and the 2.6.11 behaviour behind
//! [`Fixes`]): the registry of caches with the global LRU, `mb_cache_spinlock`, `mb_cache_queue`
//! and the shrinker registration (`init_mbcache`/`exit_mbcache`), and the handles users hold (as
//! instrumentation; the invariant checker over them is in `check/invariants.rs`). Left out: the
//! `mb_debug` printks and `MB_CACHE_INDEXES_COUNT` hard-wiring.
//!
//! Memory is modelled where the kernel's bugs live in it: a cache (`struct mb_cache`) and each
//! entry are slab objects in sim-core's flat generation-checked [`SlabArena`]s, so a use after
//! `kfree`/`kmem_cache_free` is reported; list heads live in the object they belong to (see
//! [`sim_core::list`]; [`Node`] names every head's place). The entries of every cache share one
//! arena ([`Memory::entries`]; each entry names its cache, as `e_cache` does), so an entry is
//! reached by one generation check through an 8-byte [`EntryRef`]; entries still allocated when
//! their cache is destroyed outlive it, as the kernel's do ([`Registry::destroy`]). All of mbcache's memory (the
//! caches, their hash tables and every entry's fields and links, and beside them the checker's
//! table of live handles and its working sets) is one [`Memory`] behind one `std` mutex that
//! adds no interleavings: a critical section under `mb_cache_spinlock` takes it
//! once ([`Locked::mem`]), so walking a chain is indexing, not a lock per node. The checkers see
//! `mb_cache_spinlock`, `mb_cache_queue` and `c_entry_count`, which are what the kernel
//! synchronises with. The rule that keeps loom and shuttle sound: the `Memory` guard is never
//! held across a `sim_core::sync` operation (a lock, an atomic, a wait), and never while taking
//! `mb_cache_spinlock`.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU32 as StdAtomicU32, AtomicU64 as StdAtomicU64, Ordering as StdOrdering};
use std::sync::Arc;
use std::sync::Mutex as StdMutex;

use sim_core::locks::SpinLockGuard;
use sim_core::mm::{ArenaRef, MmError, SlabArena};
use sim_core::sync::atomic::{AtomicUsize, Ordering};
use sim_core::{Cx, Errno, Sim, SpinLock, Violation, ViolationKind, WaitQueue};

use crate::cache::{CacheInfo, CacheRef, MbCache};
use crate::entry::{Entry, EntryUse, Handle, Indexes};
use crate::fixes::Fixes;
use sim_core::list::{self, ListMemory, Oops};

/// `struct mb_cache *`.
pub(crate) type CacheHandle = ArenaRef<MbCache>;

/// `struct mb_cache_entry *`: the entry's slot in mbcache's one entry arena (every cache's
/// entries), with the generation it was allocated in: 8 bytes, one look-up to dereference.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct EntryRef(pub(crate) ArenaRef<Entry>);

impl EntryRef {
    /// The entry's slot number in `Memory::entries`, which also numbers its
    /// [`Memory::entry_indexes`]. Read only after a generation check of the handle (or a peek).
    #[inline(always)]
    pub(crate) fn slot(self) -> usize {
        self.0.index() as usize
    }
}

/// A list head that is not inside an entry. Index numbers are below [`INDEXES_MAX`], so a byte
/// holds one and a [`Node`] fits 16 bytes (a [`ListHead`] 32).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum HeadId {
    /// `mb_cache_lru_list`.
    Lru,
    /// `cache->c_block_hash[bucket]`.
    Block(CacheHandle, u32),
    /// `cache->c_indexes_hash[index][bucket]`.
    Index(CacheHandle, u8, u32),
    /// A `LIST_HEAD(free_list)` on some function's stack.
    Local(u32),
}

impl HeadId {
    /// `cache->c_indexes_hash[index][bucket]`.
    pub(crate) fn index(cache: CacheHandle, index: u32, bucket: u32) -> HeadId {
        let index = u8::try_from(index).unwrap_or_else(|_| {
            panic!("index {index} does not fit a HeadId (below INDEXES_MAX {INDEXES_MAX})")
        });
        HeadId::Index(cache, index, bucket)
    }
}

/// The address of one `struct list_head` in mbcache's memory. Compared by hand
/// ([`Node::eq`]); ordered as derived, which agrees with it.
#[derive(Clone, Copy, Debug, Eq, PartialOrd, Ord)]
pub(crate) enum Node {
    /// A head outside entries.
    Head(HeadId),
    /// `&ce->e_lru_list`.
    Lru(EntryRef),
    /// `&ce->e_block_list`.
    Block(EntryRef),
    /// `&ce->e_indexes[n].o_list`.
    Index(EntryRef, u32),
}

/// The derived compare, written out and inlined always: derived, it was a call of its own from
/// every `link == Link::To(node)` of the LRU steps and the hashed tests (about 15 instructions a
/// get + release, callgrind of the `get_release` bench); inlined, a compare against a node of a
/// known kind is the tag and the payload.
impl PartialEq for Node {
    #[inline(always)]
    fn eq(&self, other: &Node) -> bool {
        match (self, other) {
            (Node::Lru(a), Node::Lru(b)) | (Node::Block(a), Node::Block(b)) => a == b,
            (Node::Index(a, at_a), Node::Index(b, at_b)) => a == b && at_a == at_b,
            (Node::Head(a), Node::Head(b)) => a == b,
            _ => false,
        }
    }
}

/// `struct list_head` at mbcache's addresses.
pub(crate) type ListHead = list::ListHead<Node>;
/// A `next` or `prev` field at mbcache's addresses.
pub(crate) type Link = list::Link<Node>;

const _: () = assert!(std::mem::size_of::<ListHead>() == 32, "a list head is two 16-byte links");
const _: () = assert!(std::mem::size_of::<EntryRef>() == 8, "an entry pointer is 8 bytes");
const _: () = assert!(std::mem::size_of::<Node>() == 16, "a node fits 16 bytes");

/// The lock class of `mb_cache_spinlock`.
pub(crate) const MB_CACHE_SPINLOCK: &str = "mb_cache_spinlock";
/// The wait queue the fixed kernel sleeps on for a busy entry (`mb_cache_queue`).
pub(crate) const MB_CACHE_QUEUE: &str = "mb_cache_queue";
/// `sizeof(struct mb_cache_entry)` on x86-64 (two list heads, three pointers, `atomic_t`
/// padded, a 64-bit `sector_t`): the part of an entry before its indexes.
pub const ENTRY_HEADER_SIZE: u64 = 64;
/// `sizeof(struct mb_cache_entry_index)` on x86-64: a list head and a padded `unsigned int` key.
pub const ENTRY_INDEX_SIZE: u64 = 24;
/// `MB_CACHE_WRITER` of the fixed kernel: the share of `e_used` an exclusive handle holds.
pub(crate) const MB_CACHE_WRITER: u32 = (u16::MAX >> 1) as u32;
/// Most hash bits a cache may ask for. The kernel has no limit: a larger table makes `kmalloc`
/// fail and `mb_cache_create` return NULL, which this model returns as ENOMEM.
pub(crate) const BUCKET_BITS_MAX: u32 = 20;
/// Most additional indexes: ext2/ext3 use one; beyond this the cache `kmalloc` is modelled as
/// failing (ENOMEM), as a huge `indexes_count` makes it fail in the kernel.
pub(crate) const INDEXES_MAX: u32 = 4;
/// `DEFAULT_SEEKS`, what `set_shrinker` registers mbcache with.
pub(crate) const DEFAULT_SEEKS: u32 = 2;
// `Registry::shrinker` keeps 0 for "not registered".
const _: () = assert!(DEFAULT_SEEKS != 0);
/// Longest list walked by the invariant checker before it calls the list corrupt.
pub(crate) const WALK_LIMIT: usize = 1 << 22;

/// The `block_device *` a device index stands for: a kernel-looking address (hashing uses it).
pub fn bdev_address(device: u32) -> u64 {
    0xffff_8100_0000_0000 + u64::from(device) * 0x400
}
#[inline(always)]
pub(crate) fn locked<T>(mutex: &StdMutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The handles not yet released, by id, in id order (instrumentation). Ids are handed out in
/// increasing order, so a new one goes at the end; few are live at a time, so a sorted `Vec`
/// finds one by binary search and, unlike a `BTreeMap` emptied and refilled on every get and
/// release, keeps its allocation.
#[derive(Clone, Debug, Default)]
pub(crate) struct HandleTable {
    live: Vec<(u64, EntryRef, CacheHandle)>,
    /// Bumped by every insert and remove, so a checker that copied the table knows whether its
    /// copy is current ([`HandleTable::version`]).
    version: u64,
}

impl HandleTable {
    /// Adds handle `id` (larger than every id added before) to `entry` of `cache`. Inlined
    /// always, as [`HandleTable::remove`]: a get and a release each make one of these calls.
    #[inline(always)]
    pub(crate) fn insert(&mut self, id: u64, entry: EntryRef, cache: CacheHandle) {
        debug_assert!(self.live.last().is_none_or(|&(last, _, _)| last < id), "handle ids increase");
        self.live.push((id, entry, cache));
        self.version += 1;
    }

    /// How many times the table changed: equal values mean the same handles.
    pub(crate) fn version(&self) -> u64 {
        self.version
    }

    pub(crate) fn contains(&self, id: u64) -> bool {
        self.live.binary_search_by_key(&id, |&(id, _, _)| id).is_ok()
    }

    /// Removes handle `id`; whether it was there.
    #[inline(always)]
    pub(crate) fn remove(&mut self, id: u64) -> bool {
        // The handle made last is the one most often given up (a get and its release): found
        // at the end with one compare, and popped with no move of the rest.
        if self.live.last().is_some_and(|&(last, _, _)| last == id) {
            self.live.pop();
            self.version += 1;
            return true;
        }
        match self.live.binary_search_by_key(&id, |&(id, _, _)| id) {
            Ok(at) => {
                self.live.remove(at);
                self.version += 1;
                true
            }
            Err(_) => false,
        }
    }

    /// The live handles, in id order: each with its entry and the entry's cache.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (u64, EntryRef, CacheHandle)> + '_ {
        self.live.iter().copied()
    }
}

/// What `mb_cache_spinlock` guards besides entries: the cache list, the LRU head, and the
/// free-list heads of functions in progress.
#[derive(Debug)]
pub(crate) struct Global {
    /// `mb_cache_list`, most recently created first.
    pub(crate) caches: Vec<CacheHandle>,
    pub(crate) lru: LruLink,
    pub(crate) locals: BTreeMap<u32, ListHead>,
    pub(crate) next_local: u32,
}

/// An LRU link (the head's, or an entry's `e_lru_list`): read freely, written only through
/// [`LruLink::write`], which counts the write in [`Memory::lru_writes`], so the LRU walk a reader
/// keeps ([`Registry::lru_serials_unless_seen`]) cannot miss one. A new entry's link is made off
/// the LRU ([`LruLink::new`]), which changes no walk.
#[derive(Clone, Copy, Debug)]
#[repr(transparent)]
pub(crate) struct LruLink(ListHead);

impl LruLink {
    #[inline]
    pub(crate) const fn new(head: ListHead) -> Self {
        LruLink(head)
    }

    #[inline]
    pub(crate) fn get(&self) -> ListHead {
        self.0
    }

    /// The link for a write, counted in `writes` ([`Memory::lru_writes`]).
    #[inline]
    pub(crate) fn write(&mut self, writes: &mut u64) -> &mut ListHead {
        *writes += 1;
        &mut self.0
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
    /// The kernel would oops, or memory was misused: already reported to the `Sim`. Boxed, so
    /// that an operation's `Result` is two words, returned in registers: the 56-byte
    /// [`Violation`] in place made every `Result<_, MbError>` a copy through memory (about 10
    /// instructions a return; callgrind of the bench's `MBCACHE_PROFILE_PAIRS`).
    Oops(Box<Violation>),
}

impl From<Oops> for MbError {
    fn from(oops: Oops) -> Self {
        MbError::Oops(Box::new(oops.0))
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

/// The registry: what fs/mbcache.c keeps global, one per `Sim`.
#[derive(Debug)]
pub struct Registry {
    pub(crate) sim: Sim,
    pub(crate) fixes: Fixes,
    pub(crate) waits: Waits,
    /// `mb_cache_spinlock` and what it guards.
    pub(crate) global: SpinLock<Global>,
    /// mbcache's memory: `kmalloc` of `struct mb_cache` (with its hash tables and entry cache).
    pub(crate) memory: StdMutex<Memory>,
    /// `mb_cache_queue`.
    pub(crate) queue: WaitQueue,
    /// Wake-ups of `mb_cache_queue` so far, bumped under `mb_cache_spinlock`: a sleeper that read
    /// it under the lock before sleeping returns from `schedule()` once it changes, as a task
    /// on the kernel's queue does after `wake_up_all`, and rechecks under the lock.
    pub(crate) wakeups: AtomicUsize,
    /// A stand-in for the memory of `struct mb_cache` objects: `kfree` in destroy writes it and
    /// the unlocked reads in `__mb_cache_entry_forget` read it, so loom and shuttle see the two
    /// conflict and try both orders. Free in the default backend.
    pub(crate) cache_memory: AtomicUsize,
    /// `mb_shrinker`: the seeks it was registered with (0: not registered; `DEFAULT_SEEKS` is
    /// not 0). A `std` atomic, not a mutex: the subject reads it after every operation, and
    /// registration is the driver's, not a model path any checker schedules.
    pub(crate) shrinker: StdAtomicU32,
    // Instrumentation below: never model state (the handle table, the next handle's id and the
    // LRU clock are in `Memory`, drawn under its guard).
    pub(crate) next_serial: StdAtomicU64,
}

/// `kmalloc` of `struct mb_cache`: its slab cache's name and object size.
pub(crate) const MB_CACHE_SLAB: (&str, u64) = ("size-128(mb_cache)", 128);
/// The name of the arena that holds every cache's `c_entry_cache` (a use after free names it;
/// allocation faults and leaks name the cache, as the kernel's per-cache slab would).
pub(crate) const ENTRY_SLAB: &str = "mb_cache_entry";

/// All of mbcache's memory: the caches (each with its hash tables) and the entries of all.
#[derive(Debug)]
pub(crate) struct Memory {
    pub(crate) caches: SlabArena<MbCache>,
    /// Every cache's `c_entry_cache`, in one flat arena: each entry names its cache
    /// (`e_cache`), and each cache counts its own (`MbCache::entries_live`).
    pub(crate) entries: SlabArena<Entry>,
    /// Each entry's `e_indexes[]`, by its slot number in `entries` (part of the same slab object
    /// in the kernel, kept apart so a slot holds only what a get and a release read; see
    /// [`Entry`]). Reached only through a generation-checked dereference of the entry
    /// ([`Memory::indexes_mut`], [`Mem::entry_and_indexes`]) or a peek of it; a freed slot's
    /// stay until the slot is allocated again, as an inline array's would.
    pub(crate) entry_indexes: Vec<Indexes>,
    /// Instrumentation: what was written since the incremental invariant check last ran.
    pub(crate) touched: Touched,
    /// Instrumentation: bumped by every write of an LRU link (the head's or an entry's
    /// `e_lru_list`, through [`LruLink::write`]) and every entry freed ([`Memory::free_entry`])
    /// (one still on the LRU makes the walk a use after free), so a reader that saw the LRU while
    /// it had one value knows the LRU's members and order are the same while it keeps it
    /// ([`Registry::lru_serials_unless_seen`]).
    pub(crate) lru_writes: u64,
    /// Instrumentation: bumped by every change of `mb_cache_list` (a create, a destroy), so a
    /// check that saw the list knows it is the same while this is.
    pub(crate) caches_version: u64,
    /// Instrumentation: a destroy has left entries of its cache allocated (`kmem_cache_destroy`
    /// found some live), so an entry's cache may be a freed one.
    pub(crate) orphans_possible: bool,
    /// Checker state: the incremental check has marked its quiet case in this registry's `Sim`
    /// (whose marks are a set kept for the case), so it need not mark it again.
    pub(crate) quiet_marked: bool,
    /// Checker state: a get has made its coverage mark ("get found an entry") in this
    /// registry's `Sim`, whose marks are a set kept for the world's life, so later gets need not
    /// make it again (one flag read under the guard the get holds, where the mark's own
    /// look-up cost about 35 instructions a get).
    pub(crate) get_found_marked: bool,
    /// Instrumentation: the handles not yet released. Kept here, not behind a mutex of its own,
    /// so a lookup that finds an entry makes its handle under the guard it already holds.
    pub(crate) handles: HandleTable,
    /// Instrumentation: the id the next handle gets. A plain counter, not an atomic: a handle
    /// is made under this guard ([`Memory::new_handle`]).
    pub(crate) next_handle: u64,
    /// Instrumentation: the stamp the next entry put on the LRU tail gets (drawn under this
    /// guard, by [`Mem::release_use`]), so the checks can judge the LRU's order by the stamps.
    pub(crate) lru_clock: u64,
    /// Checker state: the invariant checks' working sets, kept between checks so a check
    /// allocates nothing once they have grown (taken out while a check runs).
    /// Boxed, so taking it out and putting it back moves a pointer, not its twenty `Vec`s.
    pub(crate) scratch: Option<Box<CheckScratch>>,
}

/// The invariant checks' working sets (`check/invariants.rs`), emptied and refilled by every
/// check; sets and maps are sorted `Vec`s, looked up by binary search.
#[derive(Debug, Default)]
pub(crate) struct CheckScratch {
    /// The live handles, in id order, with their entries and caches.
    pub(crate) handles: Vec<(u64, EntryRef, CacheHandle)>,
    /// `mb_cache_list` and each cache's `c_entry_count` (the atomics, then their values).
    pub(crate) caches: Vec<CacheHandle>,
    pub(crate) count_cells: Vec<std::sync::Arc<sim_core::sync::atomic::AtomicI32>>,
    pub(crate) counts: Vec<i32>,
    /// The [`Memory::caches_version`] `caches` and `count_cells` were loaded at.
    pub(crate) caches_at: Option<u64>,
    /// The whole check's live entries with their cache's place in `caches`, grouped by it.
    pub(crate) by_cache: Vec<(usize, EntryRef)>,
    /// The live entries written, sorted, and those of them on the LRU.
    pub(crate) entries: Vec<EntryRef>,
    /// The live entries written in a way a hash-chain fact reads ([`Touched::chained`]), sorted.
    pub(crate) chained: Vec<EntryRef>,
    pub(crate) on_lru: Vec<EntryRef>,
    /// Whether each of `entries` was linked on a block chain as its LRU facts read it.
    pub(crate) entries_hashed: Vec<bool>,
    /// The chains to walk, a chain's nodes, and the (bdev, block, serial) keys seen on it.
    pub(crate) heads: Vec<HeadId>,
    pub(crate) nodes: Vec<Node>,
    pub(crate) keys: Vec<(u64, u64, u64)>,
    /// Each sighting of an entry on a block chain, and on an index's chain; then their counts.
    pub(crate) hashed_raw: Vec<EntryRef>,
    pub(crate) hashed: Vec<(EntryRef, u32)>,
    pub(crate) index_raw: Vec<(EntryRef, u32)>,
    pub(crate) index_seen: Vec<((EntryRef, u32), u32)>,
    /// The whole check's entries seen on one index's chains, and their counts.
    pub(crate) index_entries: Vec<EntryRef>,
    pub(crate) index_counts: Vec<(EntryRef, u32)>,
    /// The [`HandleTable::version`] `handles` and the counts per entry were loaded at.
    pub(crate) handles_version: Option<u64>,
    /// What the last incremental check that passed saw: `caches_version` and `lru_writes` (its
    /// handle table's version is `handles_version`). While they and an empty write log say
    /// nothing was written since, only the `c_entry_count` atomics can have moved (see
    /// `Registry::check_untouched`). The whole check leaves it as it is.
    pub(crate) passed_at: Option<(u64, u64)>,
    /// The `c_entry_count`s (`counts`) the last incremental check that passed read, one per
    /// cache of `caches`: each equal to its cache's live entries then, and, while nothing was
    /// written since (`passed_at`), now.
    pub(crate) passed_counts: Vec<i32>,
    /// The entries and caches freed, and the next handle's id, when the last incremental check
    /// passed (its `frees`): the handles it judged are those with smaller ids.
    pub(crate) passed_frees: Option<(u64, u64, u64)>,
}

/// Most [`CheckScratch`]es a thread keeps for the next registries it makes.
const SCRATCH_POOL_MAX: usize = 4;

thread_local! {
    /// The working sets of registries dropped on this thread, emptied, for the next registry
    /// made here: a campaign makes two registries a case, and their working sets would otherwise
    /// grow from nothing in every case. Only capacity carries over (see [`CheckScratch::emptied`]):
    /// no checker state, and nothing a model or a trace reads.
    #[allow(clippy::vec_box, reason = "a pooled box moves into `Memory::scratch` as it is, with no new allocation")]
    static SCRATCH_POOL: std::cell::RefCell<Vec<Box<CheckScratch>>> = const { std::cell::RefCell::new(Vec::new()) };
}

impl CheckScratch {
    /// Working sets for a new registry: a dropped registry's, emptied, when this thread has one.
    pub(crate) fn pooled() -> Box<CheckScratch> {
        SCRATCH_POOL.with(|pool| pool.borrow_mut().pop()).unwrap_or_default()
    }

    /// Gives `scratch` back to this thread's pool, emptied, unless the pool is full.
    fn recycle(scratch: Box<CheckScratch>) {
        let scratch = scratch.emptied();
        SCRATCH_POOL.with(|pool| {
            let mut pool = pool.borrow_mut();
            if pool.len() < SCRATCH_POOL_MAX {
                pool.push(scratch);
            }
        });
    }

    /// Every list emptied (capacity kept) and every version forgotten, as `default()` makes it.
    /// Names every field, so a new one cannot be missed here.
    fn emptied(mut self: Box<Self>) -> Box<Self> {
        let CheckScratch {
            handles,
            caches,
            count_cells,
            counts,
            caches_at,
            by_cache,
            entries,
            chained,
            on_lru,
            entries_hashed,
            heads,
            nodes,
            keys,
            hashed_raw,
            hashed,
            index_raw,
            index_seen,
            index_entries,
            index_counts,
            handles_version,
            passed_at,
            passed_counts,
            passed_frees,
        } = &mut *self;
        handles.clear();
        caches.clear();
        count_cells.clear();
        counts.clear();
        by_cache.clear();
        entries.clear();
        chained.clear();
        on_lru.clear();
        entries_hashed.clear();
        heads.clear();
        nodes.clear();
        keys.clear();
        hashed_raw.clear();
        hashed.clear();
        index_raw.clear();
        index_seen.clear();
        index_entries.clear();
        index_counts.clear();
        passed_counts.clear();
        (*caches_at, *handles_version, *passed_at, *passed_frees) = (None, None, None, None);
        self
    }
}

impl Drop for Registry {
    /// Gives the checker's working sets back to this thread's pool ([`CheckScratch::pooled`]).
    fn drop(&mut self) {
        let memory = self.memory.get_mut().unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(scratch) = memory.scratch.take() {
            CheckScratch::recycle(scratch);
        }
    }
}

/// Most writes [`Touched`] logs between two checks; past it the next check is the full one, so
/// runs that never check (benches, loom, threaded cases) keep a bounded log for one branch a write.
pub(crate) const TOUCHED_MAX: usize = 1024;

/// The log `Registry::check_invariants_touched` reads: every entry written (its fields or links,
/// so an entry's list neighbours are logged when it is linked or unlinked), every hash-chain head
/// written, and the chains a freed entry was hashed on. Checker state beside the model's memory,
/// written where the memory is, so it costs a push and adds no lock.
///
/// Entries are logged in two lists by what was written: `entries` for writes no hash-chain fact
/// reads (`e_used`, `e_queued`, the LRU stamp and `free_failed` through
/// [`Memory::entry_use_mut`], `e_lru_list` links, and a new entry's `INIT_LIST_HEAD`s through
/// [`Memory::init_entry_links`]), `chained` for every other write (the
/// conservative default, [`Memory::entry_mut`]: keys, `e_bdev`/`e_block`, chain links). The
/// check walks the hash chains of `chained` entries only: a get or a release, which moves an
/// entry off or onto the LRU and counts a use, walks no chain.
#[derive(Debug, Default)]
pub(crate) struct Touched {
    pub(crate) entries: Vec<EntryRef>,
    pub(crate) chained: Vec<EntryRef>,
    pub(crate) heads: Vec<HeadId>,
    /// More was written than the log keeps: the next check must be the full one.
    pub(crate) overflowed: bool,
}

impl Touched {
    /// Logs a write of `entry` that no hash-chain fact reads (see [`Touched`]).
    pub(crate) fn entry(&mut self, entry: EntryRef) {
        Self::push(&mut self.entries, &mut self.overflowed, entry);
    }

    /// Logs a write of `entry` that a hash-chain fact may read (see [`Touched`]).
    pub(crate) fn chained(&mut self, entry: EntryRef) {
        Self::push(&mut self.chained, &mut self.overflowed, entry);
    }

    fn push(list: &mut Vec<EntryRef>, overflowed: &mut bool, entry: EntryRef) {
        if list.last() == Some(&entry) {
            return;
        }
        if list.len() < TOUCHED_MAX {
            list.push(entry);
        } else {
            *overflowed = true;
        }
    }

    pub(crate) fn head(&mut self, head: HeadId) {
        // A list step writes a head's `next` and then its `prev` (`__list_add`, `__list_del`
        // on a one-entry chain): the repeat adds nothing the check's set does not have.
        if self.heads.last() == Some(&head) {
            return;
        }
        if self.heads.len() < TOUCHED_MAX {
            self.heads.push(head);
        } else {
            self.overflowed = true;
        }
    }

    /// Whether nothing was logged (and nothing overflowed) since the log was emptied.
    pub(crate) fn is_empty(&self) -> bool {
        self.entries.is_empty() && self.chained.is_empty() && self.heads.is_empty() && !self.overflowed
    }

    /// Empties the log, keeping its allocations.
    pub(crate) fn clear(&mut self) {
        self.entries.clear();
        self.chained.clear();
        self.heads.clear();
        self.overflowed = false;
    }
}

/// A use after free the arena already reported, as the list code's [`Oops`].
#[cold]
pub(crate) fn freed(error: MmError) -> Oops {
    Oops(Violation::new(ViolationKind::UseAfterFree, error.to_string()))
}

impl Memory {
    /// A handle to `entry` with the next id, entered in the table. The id is drawn under the
    /// `Memory` guard, so ids enter the table in increasing order even when threads make handles
    /// at once.
    #[inline]
    pub(crate) fn new_handle(&mut self, entry: EntryRef, cache: CacheHandle, serial: u64) -> Handle {
        let id = self.next_handle;
        self.next_handle += 1;
        self.handles.insert(id, entry, cache);
        Handle { id, entry, cache, serial }
    }

    /// `cache`, dereferenced (a freed cache is a reported use after free).
    #[inline]
    pub(crate) fn cache(&self, cx: &Cx, cache: CacheHandle) -> Result<&MbCache, Oops> {
        self.caches.get(cx, cache).map_err(freed)
    }

    /// `entry`, dereferenced: one generation check (a freed entry, or one of a destroyed
    /// cache, is a reported use after free).
    #[inline]
    pub(crate) fn entry(&self, cx: &Cx, entry: EntryRef) -> Result<&Entry, Oops> {
        self.entries.get(cx, entry.0).map_err(freed)
    }

    /// `entry`, dereferenced for writing any field (logged as [`Touched::chained`]).
    #[inline]
    pub(crate) fn entry_mut(&mut self, cx: &Cx, entry: EntryRef) -> Result<&mut Entry, Oops> {
        self.touched.chained(entry);
        self.entries.get_mut(cx, entry.0).map_err(freed)
    }

    /// `entry`'s `e_indexes[]`, dereferenced for writing (logged as [`Memory::entry_mut`] logs
    /// a write of the entry).
    #[inline]
    pub(crate) fn indexes_mut(&mut self, cx: &Cx, entry: EntryRef) -> Result<&mut Indexes, Oops> {
        self.touched.chained(entry);
        self.entries.get(cx, entry.0).map_err(freed)?;
        Ok(&mut self.entry_indexes[entry.slot()])
    }

    /// `entry` and its `e_indexes[]`, dereferenced for reading (one generation check).
    #[inline]
    pub(crate) fn entry_and_indexes(&self, cx: &Cx, entry: EntryRef) -> Result<(&Entry, &Indexes), Oops> {
        let object = self.entries.get(cx, entry.0).map_err(freed)?;
        Ok((object, &self.entry_indexes[entry.slot()]))
    }

    /// A newly allocated entry's `e_indexes[]`, at its slot number.
    pub(crate) fn set_indexes(&mut self, entry: EntryRef, indexes: Indexes) {
        let slot = entry.slot();
        if slot >= self.entry_indexes.len() {
            self.entry_indexes.resize_with(slot + 1, || Indexes::new(0));
        }
        self.entry_indexes[slot] = indexes;
    }

    /// `entry`, dereferenced for writing only `used`, `queued`, `lru_stamp` or `free_failed`,
    /// which no hash-chain fact reads (logged as [`Touched::entry`]): a view
    /// ([`EntryUse`]) that reaches those fields alone, so no other write can be filed so.
    #[inline]
    pub(crate) fn entry_use_mut(&mut self, cx: &Cx, entry: EntryRef) -> Result<EntryUse<'_>, Oops> {
        self.touched.entry(entry);
        self.entries.get_mut(cx, entry.0).map(Entry::use_view).map_err(freed)
    }

    /// `INIT_LIST_HEAD` of a new entry's `e_lru_list` and `e_block_list`: each links to the entry
    /// itself. Logged as a write no hash-chain fact reads ([`Touched::entry`]): nothing links to
    /// a new entry and it links to nothing, so no chain can hold it (its use count and LRU
    /// membership are still judged). A new link, not an LRU write: it changes no LRU walk.
    pub(crate) fn init_entry_links(&mut self, cx: &Cx, entry: EntryRef) -> Result<(), Oops> {
        self.touched.entry(entry);
        let new = self.entries.get_mut(cx, entry.0).map_err(freed)?;
        new.lru = LruLink::new(ListHead::init(Node::Lru(entry)));
        new.block_list = ListHead::init(Node::Block(entry));
        Ok(())
    }

    /// Frees `entry` (`kmem_cache_free`), counted in `lru_writes`: an entry freed while on the
    /// LRU makes the next walk a use after free.
    pub(crate) fn free_entry(&mut self, cx: &Cx, entry: EntryRef) -> Result<(), sim_core::mm::MmError> {
        self.entries.free(cx, entry.0)?;
        self.lru_writes += 1;
        Ok(())
    }

    /// Whether `entry` is still allocated (no report either way).
    #[inline]
    pub(crate) fn entry_live(&self, entry: EntryRef) -> bool {
        self.entries.is_live(entry.0)
    }
}

/// The memory the list code reads and writes while `mb_cache_spinlock` is held, or reads
/// through a checker's look ([`Registry::look`]).
pub(crate) struct Mem<'a> {
    pub(crate) cx: &'a Cx,
    pub(crate) global: GlobalRef<'a>,
    pub(crate) memory: &'a mut Memory,
}

/// What `mb_cache_spinlock` guards, as a [`Mem`] sees it: held (read and written), or looked at
/// by a checker (read only: [`SpinLock::observe`] hands out no write access, and a write through
/// a look is a bug in the checker, which panics here).
pub(crate) enum GlobalRef<'a> {
    Held(&'a mut Global),
    Looked(&'a Global),
}

impl std::ops::Deref for GlobalRef<'_> {
    type Target = Global;
    #[inline]
    fn deref(&self) -> &Global {
        match self {
            GlobalRef::Held(global) => global,
            GlobalRef::Looked(global) => global,
        }
    }
}

impl std::ops::DerefMut for GlobalRef<'_> {
    #[inline]
    fn deref_mut(&mut self) -> &mut Global {
        match self {
            GlobalRef::Held(global) => global,
            GlobalRef::Looked(_) => panic!("a checker's look at mb_cache_spinlock's state writes nothing"),
        }
    }
}

impl Mem<'_> {
    #[inline]
    pub(crate) fn cache(&self, cache: CacheHandle) -> Result<&MbCache, Oops> {
        self.memory.cache(self.cx, cache)
    }

    #[inline]
    pub(crate) fn entry(&self, entry: EntryRef) -> Result<&Entry, Oops> {
        self.memory.entry(self.cx, entry)
    }

    #[inline]
    pub(crate) fn entry_mut(&mut self, entry: EntryRef) -> Result<&mut Entry, Oops> {
        self.memory.entry_mut(self.cx, entry)
    }

    /// [`Memory::indexes_mut`].
    #[inline]
    pub(crate) fn indexes_mut(&mut self, entry: EntryRef) -> Result<&mut Indexes, Oops> {
        self.memory.indexes_mut(self.cx, entry)
    }

    /// [`Memory::entry_and_indexes`].
    #[inline]
    pub(crate) fn entry_and_indexes(&self, entry: EntryRef) -> Result<(&Entry, &Indexes), Oops> {
        self.memory.entry_and_indexes(self.cx, entry)
    }

    /// [`Memory::entry_use_mut`].
    #[inline]
    pub(crate) fn entry_use_mut(&mut self, entry: EntryRef) -> Result<EntryUse<'_>, Oops> {
        self.memory.entry_use_mut(self.cx, entry)
    }

    pub(crate) fn cache_mut(&mut self, cache: CacheHandle) -> Result<&mut MbCache, Oops> {
        self.memory.caches.get_mut(self.cx, cache).map_err(freed)
    }
}

impl Mem<'_> {
    /// The start of a lookup's use of `entry` (`__mb_cache_entry_find()`, `mb_cache_entry_get()`):
    /// `if (!list_empty(&ce->e_lru_list)) list_del_init(&ce->e_lru_list);` and then the
    /// [`EntryUse`] view for the `e_used` writes that follow. The list steps are
    /// `list::list_empty` and `list::list_del_init`'s own (the link read once, the neighbours
    /// written through [`Mem::lru_head_mut`] with the links as read, a bad link reported
    /// at the caller's line), with the entry looked up once for the reads and once for the
    /// `INIT_LIST_HEAD` and the use view, instead of once per step. The write log is the one the
    /// list calls and [`Memory::entry_use_mut`] make: the neighbours, then the entry.
    #[track_caller]
    pub(crate) fn lru_del_init_for_use(&mut self, entry: EntryRef) -> Result<EntryUse<'_>, Oops> {
        let node = Node::Lru(entry);
        let link = self.entry(entry)?.lru.get();
        if link.next != list::Link::To(node) {
            // __list_del_entry(): the neighbours point at each other.
            let after = list::follow(self, node, link.next, "list_del_init")?;
            let before = list::follow(self, node, link.prev, "list_del_init")?;
            // The links written as read (`next->prev = prev; prev->next = next;`: `link.prev`
            // is `Link::To(before)`, `link.next` is `Link::To(after)`), not made again from
            // the nodes: a copy of each link, not a `Node` rebuilt field by field.
            self.lru_head_mut(after)?.prev = link.prev;
            self.lru_head_mut(before)?.next = link.next;
        }
        let memory = &mut *self.memory;
        memory.touched.entry(entry);
        let object = memory.entries.get_mut(self.cx, entry.0).map_err(freed)?;
        if link.next != list::Link::To(node) {
            // INIT_LIST_HEAD(entry), an LRU write as `Mem::head_mut` counts it.
            *object.lru.write(&mut memory.lru_writes) = ListHead::init(node);
        }
        Ok(object.use_view())
    }

    /// `__mb_cache_entry_release_unlock()`'s use drop (`drop_use`, given the entry's
    /// [`EntryUse`] view, says whether it was the last use, `e_queued`, and whether the entry is
    /// hashed) and, for the last use of a hashed entry, its LRU stamp (the next tick of
    /// [`Memory::lru_clock`]) and `list_add_tail(&ce->e_lru_list, &mb_cache_lru_list)`, with the
    /// entry looked up once for all three. The list step is `list::list_add_tail`'s: the head's `prev` followed (a bad link
    /// reported at the caller's line, after the use drop, as there), then the head's `prev`, the
    /// entry's link and the old tail's `next` written (the head is not in the arena, so writing
    /// the entry first leaves what `__list_add` leaves). The write log is the one
    /// [`Memory::entry_use_mut`] and the list call make: the entry, then the old tail.
    #[track_caller]
    #[inline(always)]
    pub(crate) fn release_use(
        &mut self,
        entry: EntryRef,
        drop_use: impl FnOnce(EntryUse<'_>) -> (bool, u32, bool),
    ) -> Result<(bool, u32, bool), Oops> {
        let lru = Node::Head(HeadId::Lru);
        let tail = self.global.lru.get().prev;
        let memory = &mut *self.memory;
        memory.touched.entry(entry);
        let object = memory.entries.get_mut(self.cx, entry.0).map_err(freed)?;
        let released = drop_use(object.use_view());
        let (last, _, hashed) = released;
        if !(last && hashed) {
            return Ok(released);
        }
        // Instrumentation: the entry's place in the LRU's order, from the clock under this guard.
        object.lru_stamp = memory.lru_clock;
        memory.lru_clock += 1;
        let list::Link::To(before) = tail else {
            return Err(list::follow(self, lru, tail, "list_add_tail").expect_err("a bad link"));
        };
        let new = Node::Lru(entry);
        // `new->prev = prev`: the head's `prev` as read (it is `Link::To(before)`).
        *object.lru.write(&mut memory.lru_writes) = ListHead { next: list::Link::To(lru), prev: tail };
        self.global.lru.write(&mut self.memory.lru_writes).prev = list::Link::To(new);
        self.lru_head_mut(before)?.next = list::Link::To(new);
        Ok(released)
    }
}

impl Mem<'_> {
    /// The head at `node`, in place, for a write: one look-up (a freed entry or cache is a
    /// reported use after free), and the write logged as [`ListMemory::write`] logs it. Inlined
    /// always, as [`ListMemory::read`] is: each list step calls it with the node it has, and
    /// the call cost more than the look-up.
    #[inline(always)]
    pub(crate) fn head_mut(&mut self, node: Node) -> Result<&mut ListHead, Oops> {
        Ok(match node {
            Node::Head(HeadId::Lru) => self.global.lru.write(&mut self.memory.lru_writes),
            Node::Head(HeadId::Local(id)) => self.global.locals.entry(id).or_insert(ListHead::UNINIT),
            Node::Head(HeadId::Block(cache, bucket)) => {
                self.memory.touched.head(HeadId::Block(cache, bucket));
                &mut self.cache_mut(cache)?.block[bucket as usize]
            }
            Node::Head(HeadId::Index(cache, index, bucket)) => {
                self.memory.touched.head(HeadId::Index(cache, index, bucket));
                &mut self.cache_mut(cache)?.index[usize::from(index)][bucket as usize]
            }
            Node::Lru(entry) => self.entry_lru_mut(entry)?,
            Node::Block(entry) => &mut self.entry_mut(entry)?.block_list,
            Node::Index(entry, index) => &mut self.indexes_mut(entry)?[index as usize].list,
        })
    }
}

impl Mem<'_> {
    /// [`Mem::head_mut`] of a node an LRU link points at: an entry's `e_lru_list` or the LRU
    /// head, the two arms of `head_mut` it needs, without its match over every kind of node;
    /// any other node (a link the model corrupted) goes through [`Mem::head_mut_any`]. Used for
    /// [`Mem::lru_del_init_for_use`]'s two neighbours, where [`ListMemory::set_prev`] and
    /// [`ListMemory::set_next`] dispatched over seven kinds each.
    #[inline(always)]
    fn lru_head_mut(&mut self, node: Node) -> Result<&mut ListHead, Oops> {
        match node {
            Node::Lru(entry) => self.entry_lru_mut(entry),
            Node::Head(HeadId::Lru) => Ok(self.global.lru.write(&mut self.memory.lru_writes)),
            other => self.head_mut_any(other),
        }
    }

    /// An entry's `e_lru_list`, written (the write logged and counted): [`Mem::head_mut`]'s and
    /// [`Mem::lru_head_mut`]'s arm for [`Node::Lru`].
    #[inline(always)]
    fn entry_lru_mut(&mut self, entry: EntryRef) -> Result<&mut ListHead, Oops> {
        let memory = &mut *self.memory;
        memory.touched.entry(entry);
        let object = memory.entries.get_mut(self.cx, entry.0).map_err(freed)?;
        Ok(object.lru.write(&mut memory.lru_writes))
    }

    /// [`Mem::head_mut`], a call of its own: [`Mem::lru_head_mut`]'s node of another kind.
    #[cold]
    #[inline(never)]
    fn head_mut_any(&mut self, node: Node) -> Result<&mut ListHead, Oops> {
        self.head_mut(node)
    }
}

impl ListMemory for Mem<'_> {
    type Node = Node;

    /// The head at `node`, copied out (one look-up). Inlined always: the list library's steps
    /// and the checks' walks call it per node (about 60,000 calls in a 300-case campaign).
    #[inline(always)]
    fn read(&mut self, node: Node) -> Result<ListHead, Oops> {
        match node {
            Node::Head(HeadId::Lru) => Ok(self.global.lru.get()),
            Node::Head(HeadId::Local(id)) => Ok(self.global.locals[&id]),
            Node::Head(HeadId::Block(cache, bucket)) => Ok(self.cache(cache)?.block[bucket as usize]),
            Node::Head(HeadId::Index(cache, index, bucket)) => {
                Ok(self.cache(cache)?.index[usize::from(index)][bucket as usize])
            }
            Node::Lru(entry) => Ok(self.entry(entry)?.lru.get()),
            Node::Block(entry) => Ok(self.entry(entry)?.block_list),
            Node::Index(entry, index) => Ok(self.entry_and_indexes(entry)?.1[index as usize].list),
        }
    }

    /// Through [`Mem::head_mut`], which logs the write (an LRU write counted in one place).
    #[inline]
    fn write(&mut self, node: Node, head: ListHead) -> Result<(), Oops> {
        *self.head_mut(node)? = head;
        Ok(())
    }

    /// One look-up of the head that holds the field ([`Mem::head_mut`]), not a read and a write
    /// of the whole head: an entry off the LRU on every get and onto its tail on every release.
    #[inline]
    fn set_next(&mut self, node: Node, link: Link) -> Result<(), Oops> {
        self.head_mut(node)?.next = link;
        Ok(())
    }

    #[inline]
    fn set_prev(&mut self, node: Node, link: Link) -> Result<(), Oops> {
        self.head_mut(node)?.prev = link;
        Ok(())
    }

    fn bad_link(&mut self, at: Node, link: Link, what: &str) -> Oops {
        let violation = Violation::new(
            ViolationKind::ListPoison,
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
pub(crate) type Found = Result<Option<(EntryRef, u64)>, Errno>;

/// A held `mb_cache_spinlock` with the memory it guards. The `Memory` guard is taken on first
/// use and declared first, so it is dropped before the spin lock is released.
pub(crate) struct Locked<'a> {
    memory: Option<std::sync::MutexGuard<'a, Memory>>,
    pub(crate) guard: SpinLockGuard<'a, Global>,
    pub(crate) registry: &'a Registry,
    pub(crate) cx: &'a Cx,
}

impl Locked<'_> {
    /// The section's view of mbcache's memory, the `Memory` guard taken on first use. Inlined
    /// always: a section calls it once per kernel step (a get's walk, its use, its handle), and
    /// as a call it cost about 24 instructions each (callgrind, `get_release` bench).
    #[inline(always)]
    pub(crate) fn mem(&mut self) -> Mem<'_> {
        // `get_or_insert_with`, written out: the optimiser kept that call out of line.
        if self.memory.is_none() {
            self.memory = Some(locked(&self.registry.memory));
        }
        let Some(memory) = self.memory.as_mut() else { unreachable!("the Memory guard was just taken") };
        Mem { cx: self.cx, global: GlobalRef::Held(&mut self.guard), memory }
    }

    /// Lets go of the `Memory` guard before a `sim_core::sync` operation (an atomic, a wake-up),
    /// where loom or shuttle may switch to a task that needs it.
    pub(crate) fn unlock_memory(&mut self) {
        self.memory = None;
    }

    /// [`Registry::new_handle`] under the `Memory` guard this section holds (or takes).
    #[inline]
    pub(crate) fn new_handle(&mut self, entry: EntryRef, cache: CacheHandle, serial: u64) -> Handle {
        self.mem().memory.new_handle(entry, cache, serial)
    }

    pub(crate) fn new_local(&mut self) -> Node {
        let id = self.guard.next_local;
        self.guard.next_local = id.wrapping_add(1);
        let node = Node::Head(HeadId::Local(id));
        self.guard.locals.insert(id, ListHead::init(node));
        node
    }
}

/// A checker's look at what `mb_cache_spinlock` guards, with the memory it reads: the
/// read-only [`Locked`] of [`Registry::look`]. The `Memory` guard is taken on first use, as
/// there.
pub(crate) struct Looked<'a> {
    memory: Option<std::sync::MutexGuard<'a, Memory>>,
    pub(crate) global: &'a Global,
    registry: &'a Registry,
    cx: &'a Cx,
}

impl Looked<'_> {
    /// [`Locked::mem`], reading `mb_cache_spinlock`'s state only (inlined always, as that).
    #[inline(always)]
    pub(crate) fn mem(&mut self) -> Mem<'_> {
        let registry = self.registry;
        let memory = self.memory.get_or_insert_with(|| locked(&registry.memory));
        Mem { cx: self.cx, global: GlobalRef::Looked(self.global), memory }
    }

    /// [`Locked::unlock_memory`].
    pub(crate) fn unlock_memory(&mut self) {
        self.memory = None;
    }
}

pub(crate) fn entry_of_lru(node: Node) -> EntryRef {
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
                    lru: LruLink::new(ListHead::init(Node::Head(HeadId::Lru))),
                    locals: BTreeMap::new(),
                    next_local: 0,
                },
            ),
            memory: StdMutex::new(Memory {
                caches: SlabArena::new(MB_CACHE_SLAB.0),
                entries: SlabArena::new(ENTRY_SLAB),
                entry_indexes: Vec::new(),
                touched: Touched::default(),
                lru_writes: 0,
                caches_version: 0,
                orphans_possible: false,
                quiet_marked: false,
                get_found_marked: false,
                handles: HandleTable::default(),
                next_handle: 1,
                lru_clock: 1,
                scratch: Some(CheckScratch::pooled()),
            }),
            queue: WaitQueue::new(MB_CACHE_QUEUE),
            wakeups: AtomicUsize::new(0),
            cache_memory: AtomicUsize::new(0),
            shrinker: StdAtomicU32::new(0),
            next_serial: StdAtomicU64::new(1),
        };
        registry.init_mbcache();
        registry
    }

    /// Mirrors `init_mbcache()`: `set_shrinker(DEFAULT_SEEKS, mb_cache_shrink_fn)`.
    pub(crate) fn init_mbcache(&self) {
        self.shrinker.store(DEFAULT_SEEKS, StdOrdering::Relaxed);
    }

    /// Mirrors `exit_mbcache()`: `remove_shrinker`.
    pub fn exit_mbcache(&self) {
        self.shrinker.store(0, StdOrdering::Relaxed);
    }

    /// Whether the shrinker is registered.
    pub fn shrinker_registered(&self) -> bool {
        self.shrinker.load(StdOrdering::Relaxed) != 0
    }

    /// The world this registry belongs to.
    pub fn sim(&self) -> &Sim {
        &self.sim
    }

    /// `ce->e_bdev` and `ce->e_block` of a held handle's entry.
    pub fn entry_block(&self, cx: &Cx, handle: &Handle) -> Result<(u64, u64), MbError> {
        self.check_handle(cx, handle, "entry_block")?;
        let memory = self.memory();
        let object = memory.entry(cx, handle.entry)?;
        Ok((object.bdev, object.block))
    }

    /// The fixes this registry runs with.
    pub fn fixes(&self) -> Fixes {
        self.fixes
    }

    /// A scheduling point for loom and shuttle where the kernel reads shared memory without a
    /// lock (a relaxed load of a facade atomic; free in the default backend).
    pub(crate) fn preemption_point(&self) {
        self.cache_memory.load(Ordering::SeqCst);
    }

    pub(crate) fn lock<'a>(&'a self, cx: &'a Cx) -> Locked<'a> {
        Locked { memory: None, guard: self.global.lock(cx), registry: self, cx }
    }

    /// A read-only look at what `mb_cache_spinlock` guards, for `f`: through an observer
    /// context, [`SpinLock::observe`] (no lock round trip between operations; inside shuttle or
    /// loom the full one, so the scheduling points a pinned window counts stay); through a model
    /// context, the lock taken and released as before.
    pub(crate) fn look<R>(&self, cx: &Cx, f: impl FnOnce(&mut Looked<'_>) -> R) -> R {
        let run = |global: &Global| f(&mut Looked { memory: None, global, registry: self, cx });
        if cx.is_observer() {
            self.global.observe(cx, run)
        } else {
            run(&self.global.lock(cx))
        }
    }

    /// mbcache's memory, outside `mb_cache_spinlock` (see the module comment for the rule).
    pub(crate) fn memory(&self) -> std::sync::MutexGuard<'_, Memory> {
        locked(&self.memory)
    }

    /// `cache->c_indexes_count` and `cache->c_bucket_bits`, read without the lock (fixed at
    /// create), with no copy of the rest of [`CacheInfo`].
    pub(crate) fn geometry(&self, cx: &Cx, cache: CacheHandle) -> Result<(u32, u32), MbError> {
        let memory = self.memory();
        let info = &memory.cache(cx, cache)?.info;
        Ok((info.indexes_count, info.bucket_bits))
    }

    /// What a cache's user may read without the lock (fixed at create), and its `c_entry_count`.
    pub(crate) fn cache(&self, cx: &Cx, cache: CacheHandle) -> Result<CacheInfo, MbError> {
        Ok(self.memory().cache(cx, cache)?.info.clone())
    }

    /// `read` of what a cache's user may read without the lock, with no copy of the
    /// [`CacheInfo`] (whose `c_entry_count` is an `Arc`).
    pub(crate) fn cache_field<T>(
        &self,
        cx: &Cx,
        cache: CacheHandle,
        read: impl FnOnce(&CacheInfo) -> T,
    ) -> Result<T, MbError> {
        Ok(read(&self.memory().cache(cx, cache)?.info))
    }

    // --- handles (instrumentation) -------------------------------------------------------------

    /// A new handle to `entry` (takes the `Memory` guard: never call it with the guard held;
    /// a section under `mb_cache_spinlock` uses [`Locked::new_handle`]).
    pub(crate) fn new_handle(&self, entry: EntryRef, cache: CacheHandle, serial: u64) -> Handle {
        self.memory().new_handle(entry, cache, serial)
    }

    /// Checks that `handle` was not released; a released one is a reported violation.
    pub(crate) fn check_handle(&self, cx: &Cx, handle: &Handle, what: &str) -> Result<(), MbError> {
        if self.memory().handles.contains(handle.id) {
            return Ok(());
        }
        Err(Self::released(cx, handle, what))
    }

    /// Reports the use of `handle`, already released, by `what`.
    #[cold]
    pub(crate) fn released(cx: &Cx, handle: &Handle, what: &str) -> MbError {
        let violation = Violation::new(
            ViolationKind::finding("use-after-release"),
            format!("{what}: handle #{} to entry {} was already released", handle.id, handle.serial),
        );
        cx.sim().report(Some(cx), violation.clone());
        MbError::Oops(Box::new(violation))
    }

    /// Handles not yet released, per cache.
    pub fn handles_held(&self, cache: CacheRef) -> usize {
        self.memory().handles.iter().filter(|&(_, _, c)| c == cache.0).count()
    }
}

impl Registry {
    // --- inspection ----------------------------------------------------------------------------

    /// The LRU's entry serials, head (next to be shrunk) first.
    pub fn lru_serials(&self, cx: &Cx) -> Result<Vec<u64>, MbError> {
        let mut serials = Vec::new();
        self.look(cx, |looked| Self::lru_walk(&mut looked.mem(), &mut serials))?;
        Ok(serials)
    }

    /// [`Registry::lru_serials`]'s walk over `mem`, into `serials` (emptied first).
    fn lru_walk(mem: &mut Mem<'_>, serials: &mut Vec<u64>) -> Result<(), MbError> {
        // `list::walk`'s steps, reading each serial and `next` from the entry in one look-up
        // rather than collecting the nodes.
        serials.clear();
        let head = Node::Head(HeadId::Lru);
        let mut at = list::next(mem, head, "list_for_each")?;
        while at != head && serials.len() < WALK_LIMIT {
            let object = mem.entry(entry_of_lru(at))?;
            serials.push(object.id);
            let link = object.lru.get().next;
            at = list::follow(mem, at, link, "list_for_each")?;
        }
        Ok(())
    }

    /// `Memory::lru_writes` and `Memory::caches_version` read under one guard: the versions an
    /// outcome's LRU and `c_entry_count` lists are current at ([`Registry::lru_serials_unless_seen`],
    /// [`Registry::entry_count_list`]), between operations when nothing writes.
    pub(crate) fn outcome_versions(&self) -> (u64, u64) {
        let memory = self.memory();
        (memory.lru_writes, memory.caches_version)
    }

    /// [`Registry::lru_serials`] unless `seen` holds them already: `seen` keeps the serials and
    /// the [`Memory::lru_writes`] they were read at, and is read again only when that moved
    /// (`writes`, as [`Registry::outcome_versions`] read it now: an LRU link written, an entry
    /// freed). A walk that failed (a use after free, reported) leaves no serials, as
    /// `lru_serials(..).unwrap_or_default()` does. The walk goes into `walked`, kept by the
    /// caller (so a walk allocates nothing once it has grown); the serials are then copied into
    /// a new shared list, unless they are the ones `seen` holds (the LRU as it was, though a
    /// write was counted), which are shared again.
    pub(crate) fn lru_serials_unless_seen(
        &self,
        cx: &Cx,
        seen: &mut Option<(u64, Arc<[u64]>)>,
        writes: u64,
        walked: &mut Vec<u64>,
    ) -> Arc<[u64]> {
        match seen {
            // Sound because every write that can change the walk counts in `lru_writes`: a link
            // is written only through `LruLink::write`, and an entry is freed only by
            // `Memory::free_entry`.
            Some((at, serials)) if *at == writes => Arc::clone(serials),
            _ => {
                if self.look(cx, |looked| Self::lru_walk(&mut looked.mem(), walked)).is_err() {
                    walked.clear();
                }
                let serials: Arc<[u64]> = match seen {
                    Some((_, serials)) if serials[..] == walked[..] => Arc::clone(serials),
                    _ => Arc::from(&walked[..]),
                };
                *seen = Some((writes, Arc::clone(&serials)));
                serials
            }
        }
    }

    /// The caches on `mb_cache_list`, most recent first.
    pub fn cache_list(&self, cx: &Cx) -> Vec<CacheRef> {
        self.look(cx, |looked| looked.global.caches.iter().map(|c| CacheRef(*c)).collect())
    }
}
