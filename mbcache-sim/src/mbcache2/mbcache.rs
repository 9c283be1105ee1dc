//! fs/mbcache.c and include/linux/mbcache.h from 4.6 on ("mbcache2"): per-filesystem caches
//! (`mb_cache_create`, `mb_cache_destroy`), entries with `e_refcnt`, `e_referenced` and
//! `e_reusable`, hash chains with bit locks, the LRU under `c_list_lock`, and the entry functions
//! (`mb_cache_entry_create`, `_find_first`, `_find_next`, `_get`, `_delete`, `_delete_or_get`,
//! `_wait_unused`, `_touch`, `_put`). The shrinker and the shrink work are in `shrinker.rs`.
//!
//! References, as 4.6 to 5.19 count them: one for the hash chain while hashed, one for the LRU
//! while listed, one per user. From 307af6c87937 (6.0, `auto-delete-on-free`) the cache holds
//! one reference for both, lookups take theirs with `atomic_inc_not_zero`, the shrinker and
//! `mb_cache_entry_delete_or_get()` claim an unused entry by a `cmpxchg` of its count to zero,
//! and the last put unhashes the entry as it frees it (`__mb_cache_entry_free`). `e_refcnt` is
//! the kernel's `atomic_t` (a facade atomic, not a `Kref`: the kernel reads it against
//! thresholds, `> 2` and `<= 3` or `<= 2`, and cmpxchg's it, which a kref hides).
//!
//! `c_list_lock` is a `spinlock_t`, which PREEMPT_RT turns into a sleeping lock: every
//! acquisition here makes `might_sleep()`'s check, as RT's `spin_lock()` does, so taking it
//! under a bucket's bit spinlock (6.0's create, before 5fc4cbd9fde5) is reported as sleeping in
//! atomic context on every configuration. (The kernel's lockdep does not see bit spinlocks, which
//! is why the nesting was found on an RT kernel.)
//! Entries are slab objects (`mb_entry_cache`) in sim-core's flat [`SharedArena`]: a handle is
//! a slot index and a generation, a dereference an index and a compare (no lock, no reference
//! count of ksim's own), and a dereference of a freed entry is a reported use after free, also
//! after the slot was reused (a freed slot waits in the arena's quarantine, then a create
//! rewrites the entry in place, [`Recycle`]; `e_key` and `e_value` are `std` atomics for that
//! alone). What a lookup and a put read (`e_refcnt`, the flag word) is in the slot, the rest in
//! a boxed cold part, so a slot is 32 bytes. The entry's fields are the kernel's synchronisation and nothing else: `e_refcnt` a facade atomic,
//! `e_list` guarded by `c_list_lock`, the bitfield judged by the lockset detector. Entries are
//! freed at once by the last put, as `__mb_cache_entry_free` does (no RCU in mbcache). A chain
//! node keeps the entry's key and value beside its handle: both are stable for the entry's
//! lifetime, as the kernel's comments say, and the walk compares them there.
//!
//! ksim departures, each harmless to what the checks judge: the LRU node of an entry is freed
//! when the entry leaves the LRU (the kernel re-initialises it; nothing re-adds an entry); and
//! `mb_cache_destroy` takes the bucket and list locks it walks under, which the kernel skips
//! because nobody else can reach the cache (sim-core's `hlist_bl` reports an unlocked change).

use sim_core::list::{self, ListArena, NodeRef};
use sim_core::list_bl::{HlistBl, HlistBlTable};
use sim_core::locks::SpinLockGuard;
use sim_core::mm::{ArenaRef, Gfp, KmemCache, ObjHandle, Recycle, SharedArena};
use sim_core::sync::atomic::{fence, AtomicBool, AtomicU32, AtomicU64, Ordering};
use sim_core::{Cx, Errno, Guarded, SpinLock, Violation, ViolationKind, WaitQueue};
use std::sync::atomic::{AtomicU32 as StdAtomicU32, AtomicU64 as StdAtomicU64, Ordering as StdOrdering};
use std::sync::Arc;

use super::fixes::{Fixes, AUTO_DELETE, CREATE_HOLDS_REF, DELETE_OR_GET, LIMIT_CACHE_SIZE, REUSABLE_FLAG};
use super::workqueue::Workqueue;

/// The lock class of every bucket's bit lock (one class for the whole table, as in lockdep).
pub(crate) const C_HASH_CLASS: &str = "mb_cache->c_hash";
/// The lock class of `cache->c_list_lock`.
pub(crate) const C_LIST_LOCK_CLASS: &str = "&cache->c_list_lock";
/// `MBE_REFERENCED_B`.
pub(crate) const MBE_REFERENCED_B: u32 = 0;
/// `MBE_REUSABLE_B`.
pub(crate) const MBE_REUSABLE_B: u32 = 1;
/// `SYNC_SHRINK_BATCH`: entries reclaimed synchronously when the cache is twice over its size.
pub(crate) const SYNC_SHRINK_BATCH: u64 = 64;
/// The finding reported when one lock hold walks more chain nodes than the bound allows.
pub(crate) const CHAIN_WALK_FINDING: ViolationKind = ViolationKind::finding("mbcache2-chain-walk-unbounded");

/// A handle on an entry: the kernel's `struct mb_cache_entry *`.
pub(crate) type EntryHandle = ArenaRef<MbCacheEntry>;
/// A handle on a cache: the kernel's `struct mb_cache *` (kzalloc'ed, so a slab object here).
pub(crate) type CacheHandle = ObjHandle<MbCache>;

/// One more on a checker's count of model accesses (an entry's `derefs`, the buffer and bitmap
/// lock counts of `xattr.rs`): a load and a store, not a read-modify-write, so a model access
/// pays no locked instruction for it. Only the op-level check reads these counts, between
/// operations of one thread, where no increment is lost; threaded runs may lose some, and never
/// read them.
#[inline]
pub(crate) fn bump(count: &StdAtomicU64) {
    count.store(count.load(StdOrdering::Relaxed).wrapping_add(1), StdOrdering::Relaxed);
}

/// `hash_32()` (include/linux/hash.h, GOLDEN_RATIO_32 as of 4.7; 4.6 used another multiplier,
/// which changes which bucket a key lands in and nothing the checks judge).
pub(crate) fn hash_32(val: u32, bits: u32) -> u32 {
    if bits == 0 {
        return 0;
    }
    val.wrapping_mul(0x61C8_8647) >> (32 - bits)
}

/// `e_referenced` and `e_reusable`, in the three forms the versions had: a view of the entry's
/// flag word (in the slot) and its bitfield (in the entry's cold part).
#[derive(Clone, Copy, Debug)]
pub(crate) struct EntryFlags<'a> {
    /// `unsigned long e_flags` with atomic bitops (a44e84a9b776); before the reusable flag, the
    /// lone `e_referenced:1` bit, which the kernel reads and writes racily on purpose (a lost
    /// update of it alone only ages an entry differently), modelled as relaxed loads and stores.
    word: &'a AtomicU32,
    /// `u32 e_referenced:1; u32 e_reusable:1;` between 4.10 and 6.1: one plain word that every
    /// bit update reads, modifies and writes whole. No lock orders all its writers (touch takes
    /// none, the shrinker `c_list_lock`, ext4 the buffer lock), so the lockset detector judges it.
    bitfield: &'a Guarded<u32>,
}

/// The flags' initial word: `e_reusable` as the creator asks, `e_referenced` clear.
fn initial_flags(reusable: bool) -> u32 {
    u32::from(reusable) << MBE_REUSABLE_B
}

impl EntryFlags<'_> {
    /// `test_bit(bit, &entry->e_flags)` or a read of the bitfield member.
    #[track_caller]
    pub(crate) fn test(self, cx: &Cx, fixes: Fixes, bit: u32) -> bool {
        let mask = 1 << bit;
        if fixes.on(super::fixes::ATOMIC_ENTRY_FLAGS) || !fixes.on(REUSABLE_FLAG) {
            self.word.load(Ordering::Relaxed) & mask != 0
        } else {
            self.bitfield.read(cx, |word| word & mask != 0)
        }
    }

    /// `set_bit`/`clear_bit`, or an assignment to the bitfield member.
    #[track_caller]
    pub(crate) fn assign(self, cx: &Cx, fixes: Fixes, bit: u32, on: bool) {
        let mask = 1 << bit;
        if fixes.on(super::fixes::ATOMIC_ENTRY_FLAGS) {
            if on {
                self.word.fetch_or(mask, Ordering::Relaxed);
            } else {
                self.word.fetch_and(!mask, Ordering::Relaxed);
            }
        } else if !fixes.on(REUSABLE_FLAG) {
            let old = self.word.load(Ordering::Relaxed);
            self.word.store(if on { old | mask } else { old & !mask }, Ordering::Relaxed);
        } else {
            // The compiler's code for `entry->e_reusable = 0`: load the word, change one bit,
            // store the word. A concurrent store to the other bit between the load and the store
            // is lost (shuttle's schedules lose it; loom reports the unordered accesses).
            let word = self.bitfield.get(cx);
            self.bitfield.set(cx, if on { word | mask } else { word & !mask });
        }
    }
}

/// `struct mb_cache_entry`, as its slab slot holds it: what a lookup and a put read
/// (`e_refcnt`, and the flag word a find tests), and the rest apart in [`EntryCold`]. The slot
/// is then 32 bytes with the arena's state word (not a cache line: a cache of a million entries
/// is half the memory, as a kernel slab of 56-byte objects is not one line per object either).
#[derive(Debug)]
pub(crate) struct MbCacheEntry {
    /// `e_refcnt`.
    pub(crate) e_refcnt: AtomicU32,
    /// `e_flags` as a word (see [`EntryFlags`]).
    e_flags_word: AtomicU32,
    /// The fields no lookup of another entry reads. Made with the slot and kept when the slot is
    /// reused.
    cold: Box<EntryCold>,
}

/// The rest of `struct mb_cache_entry`.
#[derive(Debug)]
struct EntryCold {
    /// `e_key`: stable for the entry's life (written when the slab object is made; a `std`
    /// atomic only so that a reused slot's object can be rewritten in place, see [`Recycle`]).
    e_key: StdAtomicU32,
    /// `e_value` (`e_block` before 4.13): stable for the entry's life, as `e_key`.
    e_value: StdAtomicU64,
    /// `!hlist_bl_unhashed(&e_hash_list)`: changed under the bucket's bit lock.
    e_hashed: AtomicBool,
    /// The `e_referenced:1,e_reusable:1` bitfield (see [`EntryFlags`]).
    bitfield: Guarded<u32>,
    /// `e_list`: the entry's LRU node, `None` once `list_empty` ("protected by
    /// cache->c_list_lock", as the kernel's comment says, and checked as such).
    e_list: Guarded<Option<NodeRef>>,
    /// Checker state, no kernel field: how many times [`MbcacheModule::entry`] handed this
    /// slot's entries out, in a module that counts ([`MbcacheModule::count_derefs`]; a `std`
    /// atomic: no schedule point, no trace). Every access of the
    /// model to an entry goes through that dereference first, so while the count stands still
    /// the entry's fields are the ones the check last read ([`MbCache::snapshot_into`]).
    derefs: StdAtomicU64,
}

/// What `mb_cache_entry_create()` initialises a new entry from.
#[derive(Clone, Copy, Debug)]
pub(crate) struct EntryInit {
    key: u32,
    value: u64,
    refcnt: u32,
    reusable: bool,
}

impl MbCacheEntry {
    /// `entry->e_key`.
    #[inline]
    pub(crate) fn key(&self) -> u32 {
        self.cold.e_key.load(StdOrdering::Relaxed)
    }

    /// `entry->e_value`.
    #[inline]
    pub(crate) fn value(&self) -> u64 {
        self.cold.e_value.load(StdOrdering::Relaxed)
    }

    /// `e_referenced` and `e_reusable`.
    #[inline]
    pub(crate) fn e_flags(&self) -> EntryFlags<'_> {
        EntryFlags { word: &self.e_flags_word, bitfield: &self.cold.bitfield }
    }

    /// Whether the entry is on its chain (`!hlist_bl_unhashed(&entry->e_hash_list)`).
    #[inline]
    pub(crate) fn e_hashed(&self) -> &AtomicBool {
        &self.cold.e_hashed
    }

    /// `entry->e_list`.
    #[inline]
    pub(crate) fn e_list(&self) -> &Guarded<Option<NodeRef>> {
        &self.cold.e_list
    }
}

/// `kmem_cache_alloc(mb_entry_cache)` and `mb_cache_entry_create()`'s initialisation of the
/// entry's fields: in new memory (`create`), or field by field in a freed entry's (`recycle`;
/// the `Guarded` fields' detector state back to new, not an access).
impl Recycle for MbCacheEntry {
    type Init = EntryInit;

    fn create(init: EntryInit) -> MbCacheEntry {
        let flags = initial_flags(init.reusable);
        let cold = EntryCold {
            e_key: StdAtomicU32::new(init.key),
            e_value: StdAtomicU64::new(init.value),
            e_hashed: AtomicBool::new(false),
            bitfield: Guarded::undocumented("mb_cache_entry->e_referenced:1,e_reusable:1", flags),
            e_list: Guarded::new("mb_cache_entry->e_list", C_LIST_LOCK_CLASS, None),
            derefs: StdAtomicU64::new(0),
        };
        MbCacheEntry {
            e_refcnt: AtomicU32::new(init.refcnt),
            e_flags_word: AtomicU32::new(flags),
            cold: Box::new(cold),
        }
    }

    fn recycle(&self, init: EntryInit) {
        let flags = initial_flags(init.reusable);
        self.cold.e_key.store(init.key, StdOrdering::Relaxed);
        self.cold.e_value.store(init.value, StdOrdering::Relaxed);
        self.e_refcnt.store(init.refcnt, Ordering::Relaxed);
        self.e_flags_word.store(flags, Ordering::Relaxed);
        self.cold.bitfield.reinit(flags);
        self.cold.e_hashed.store(false, Ordering::Relaxed);
        self.cold.e_list.reinit(None);
    }
}

/// One node of a hash chain: the entry and its stable key and value. Packed to 4-byte
/// alignment (20 bytes, not 24): a walk reads every node of a chain, so the chain's bytes are
/// the walk's memory traffic. Read `value` by copy (`{ node.value }`), never by reference.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(C, packed(4))]
pub(crate) struct HashNode {
    pub(crate) key: u32,
    pub(crate) value: u64,
    pub(crate) entry: EntryHandle,
}

/// `c_list` and `c_entry_count`, under `c_list_lock`: the LRU's nodes and which entry each is in.
#[derive(Debug)]
pub(crate) struct CList {
    pub(crate) arena: ListArena,
    pub(crate) head: NodeRef,
    /// The entry each LRU node belongs to (`list_entry`), by node slot.
    pub(crate) owners: Vec<Option<EntryHandle>>,
    pub(crate) c_entry_count: u64,
}

/// `struct mb_cache`.
#[derive(Debug)]
pub(crate) struct MbCache {
    /// `c_hash`: `1 << c_bucket_bits` chains.
    pub(crate) c_hash: HlistBlTable<HashNode>,
    pub(crate) c_bucket_bits: u32,
    /// `c_max_entries`: `bucket_count << 4`.
    pub(crate) c_max_entries: u64,
    pub(crate) c_list_lock: SpinLock<CList>,
    /// `c_entry_count` as the lockless readers see it (`mb_cache_count`, the create checks).
    pub(crate) c_entry_count: AtomicU64,
    /// `wait_var_event(&entry->e_refcnt, ..)`: the kernel hashes the address into a global table
    /// of queues; one queue per cache here.
    pub(crate) refcnt_wait: WaitQueue,
    /// The queue's list as `waitqueue_active()` sees it: how many tasks `prepare_to_wait_event()`
    /// put on `refcnt_wait` and `finish_wait()` has not taken off. A facade atomic, so the
    /// wakers' unlocked read of it is a step the threaded checkers schedule and loom orders.
    pub(crate) refcnt_waiters: AtomicU32,
    /// Checker state: the most chain nodes one lock hold may walk before it is reported, with
    /// no touch made: twice `c_max_entries`, plus one, plus the module's slack (see
    /// [`MbcacheModule::walked`]).
    pub(crate) walk_bound: u64,
    /// Checker state, no kernel field: `c_list`'s version. It starts at a value no other cache
    /// of the module had (`MbcacheModule::cache_serial` in its high half) and is bumped
    /// ([`bump`]) each time the model takes `c_list_lock` ([`MbcacheModule::list_lock`],
    /// `mb_cache_destroy()`'s unlocked walk): all of `CList` is read and written under that
    /// lock, so while the version stands still, `c_list`, its owners and `c_entry_count` are
    /// as a snapshot that read them at that version found them ([`MbCache::snapshot_into`]).
    pub(crate) list_version: StdAtomicU64,
    /// Checker state, no kernel field: `c_hash`'s version, as [`MbCache::list_version`] is
    /// `c_list`'s: unique to the cache at first, bumped by every chain write the model makes
    /// ([`MbCache::chain_written`], before each `hlist_bl_add_head` and `hlist_bl_del_init`;
    /// a chain node is a copy of the key, value and entry, changed by no other write).
    hash_version: StdAtomicU64,
}

impl MbCache {
    /// Counts a chain write in [`MbCache::hash_version`] (checker state: no lock, no trace).
    #[inline]
    pub(crate) fn chain_written(&self) {
        bump(&self.hash_version);
    }

    /// `mb_cache_entry_head()`.
    #[inline]
    pub(crate) fn bucket(&self, key: u32) -> HlistBl<'_, HashNode> {
        self.c_hash.bucket(hash_32(key, self.c_bucket_bits) as usize)
    }
}

/// What the module owns: `mb_entry_cache` (the entries' slab), the caches' memory, the system
/// workqueue the shrink work runs on, and the fixes of this kernel version.
#[derive(Debug)]
pub(crate) struct MbcacheModule {
    pub(crate) fixes: Fixes,
    pub(crate) entries: SharedArena<MbCacheEntry>,
    pub(crate) caches: KmemCache<MbCache>,
    pub(crate) workqueue: Workqueue,
    /// Checker state: entries in use (`U`) the walk bound allows for; see [`MbcacheModule::walked`].
    walk_slack: u64,
    /// Checker switch: whether [`MbcacheModule::entry`] counts each dereference in the entry's
    /// `derefs` (the op-level subject's, [`MbcacheModule::count_derefs`]); off, a dereference
    /// reads nothing of the entry's cold part (the benches' get and put, the threaded runs),
    /// and no snapshot reuses what it read.
    count_derefs: bool,
    /// Checker state: `mb_cache_entry_touch()` calls so far (`τ`), each of which can keep one
    /// entry through one sync shrink.
    touches: std::sync::atomic::AtomicU64,
    /// Experiment switch, not a kernel fix (every kernel has the barrier): whether
    /// `mb_cache_entry_wait_unused()`'s wait keeps `set_current_state()`'s full barrier between
    /// queueing itself and testing the count. Off, a loom model finds the lost wake-up
    /// (`tests/tests/mbcache2/loom.rs`, through `Mbcache2World::set_wait_barrier`). Always on
    /// in campaigns, as in the kernel: `set_current_state()` is `smp_store_mb()` on every
    /// architecture, so no preset may drop it. The op-level simulation never reaches the
    /// barrier either way: it parks a release that must wait and resumes it only once the entry
    /// is unused (`Mbcache2Subject::wake_waiters`), so its wait returns at the first test and
    /// nobody is ever queued; threaded campaigns queue, with the barrier.
    pub(crate) wait_barrier: bool,
    /// Checker state: caches created so far, the high half of each new cache's
    /// [`MbCache::list_version`].
    cache_serial: StdAtomicU64,
}

impl MbcacheModule {
    /// `mbcache_init()`: `kmem_cache_create("mbcache", ..)`. `walk_slack` is the checker's
    /// allowance, in nodes, for entries users hold (the shrinker keeps those).
    pub(crate) fn new(fixes: Fixes, walk_slack: u64) -> MbcacheModule {
        MbcacheModule {
            fixes,
            entries: SharedArena::new("mbcache", 64),
            caches: KmemCache::new("mb_cache", 128),
            workqueue: Workqueue::new(),
            walk_slack,
            count_derefs: false,
            touches: std::sync::atomic::AtomicU64::new(0),
            wait_barrier: true,
            cache_serial: StdAtomicU64::new(0),
        }
    }

    /// `mb_cache_create(bucket_bits)`: kzalloc the cache, its table, register its shrinker.
    pub(crate) fn mb_cache_create(
        &self,
        cx: &Cx,
        bucket_bits: u32,
    ) -> Result<(CacheHandle, Arc<MbCache>), Errno> {
        let bucket_count = 1u64 << bucket_bits;
        let c_max_entries = bucket_count << 4;
        let mut arena = ListArena::new("mb_cache->c_list");
        let head = arena.alloc_head();
        let serial = self.cache_serial.fetch_add(1, StdOrdering::Relaxed);
        let cache = MbCache {
            // A chain's first node reserves room for its share of `c_max_entries` (16), so a
            // chain grows once to the size the limit keeps it near; an empty chain has nothing.
            c_hash: HlistBlTable::with_chain_capacity(
                C_HASH_CLASS,
                bucket_count as usize,
                (c_max_entries / bucket_count) as usize,
            ),
            c_bucket_bits: bucket_bits,
            c_max_entries,
            c_list_lock: SpinLock::new(
                C_LIST_LOCK_CLASS,
                CList { arena, head, owners: Vec::new(), c_entry_count: 0 },
            ),
            c_entry_count: AtomicU64::new(0),
            refcnt_wait: WaitQueue::new("mb_cache_entry->e_refcnt"),
            refcnt_waiters: AtomicU32::new(0),
            walk_bound: 2 * c_max_entries + 1 + self.walk_slack,
            list_version: StdAtomicU64::new(serial << 32),
            hash_version: StdAtomicU64::new(serial << 32),
        };
        let handle = self.caches.alloc(cx, Gfp::GFP_KERNEL, cache)?;
        let cache = self.caches.get(cx, handle).map_err(|_| Errno::EINVAL)?;
        Ok((handle, cache))
    }

    /// The chain-walk detector (CVE-2015-8952): one lock hold walked `visited` nodes. A walk
    /// visits at most one chain, so at most the hashed entries `H`; with the size limit, the
    /// bound `2·M + 1 + U + ⌊τ / (S − U)⌋` follows from the model's rules (the guide's
    /// derivation): `M` is `c_max_entries`, `S` is `SYNC_SHRINK_BATCH`, `U` the slack for entries
    /// users hold (a scan cannot free them) and for the threaded adapter's overlapping creates
    /// and scans, `τ` the touches so far (a scan cannot free an entry whose `e_referenced` a
    /// touch set; each growth past `2·M` needs `S − U` of them).
    fn walked(&self, cx: &Cx, cache: &MbCache, visited: u64, what: &str) {
        let per_excess = SYNC_SHRINK_BATCH.saturating_sub(self.walk_slack).max(1);
        let touches = self.touches.load(std::sync::atomic::Ordering::Relaxed);
        let bound = cache.walk_bound + touches / per_excess;
        if visited > bound {
            let message = format!(
                "{what} walked {visited} chain nodes under one {C_HASH_CLASS} bit lock (bound {bound}: twice \
                 c_max_entries {}, plus one, plus {} entries in use, plus {touches} touches / {per_excess}); \
                 the walk grows with the cache",
                cache.c_max_entries, self.walk_slack
            );
            cx.sim().report(Some(cx), Violation::new(CHAIN_WALK_FINDING, message));
        }
    }

    /// The entry behind `handle`; a freed one is reported by the slab (use after free). Once
    /// [`MbcacheModule::count_derefs`] was called, every dereference counts in the entry's
    /// `derefs` (checker state, see [`CacheSnapshot`]).
    #[inline]
    pub(crate) fn entry(&self, cx: &Cx, handle: EntryHandle) -> Option<&MbCacheEntry> {
        let entry = self.entries.get(cx, handle).ok()?;
        if self.count_derefs {
            bump(&entry.cold.derefs);
        }
        Some(entry)
    }

    /// From now on every [`MbcacheModule::entry`] counts, so a snapshot may reuse what it read
    /// of an entry not dereferenced since (the op-level subject's check; called before any
    /// entry exists).
    pub(crate) fn count_derefs(&mut self) {
        assert_eq!(self.entries.live(), 0, "dereferences are counted from the first entry on");
        self.count_derefs = true;
    }

    /// `mb_cache_entry_create()`: schedules the shrink work past `c_max_entries`, shrinks
    /// synchronously past twice that, then hashes a new entry (EBUSY when the key and value are
    /// there) and puts it on the LRU. One reference for the hash, one for the LRU. The entry is
    /// allocated with GFP_NOFS, as ext2 and ext4 ask (their callers hold filesystem locks).
    pub(crate) fn mb_cache_entry_create(
        &self,
        cx: &Cx,
        cache_handle: CacheHandle,
        cache: &MbCache,
        key: u32,
        value: u64,
        reusable: bool,
    ) -> Result<(), Errno> {
        if self.fixes.on(LIMIT_CACHE_SIZE) {
            let count = cache.c_entry_count.load(Ordering::Relaxed);
            if count >= cache.c_max_entries {
                self.workqueue.schedule_work(cx, cache_handle);
            }
            if count >= 2 * cache.c_max_entries {
                cx.sim().mark("create-sync-shrink");
                self.mb_cache_shrink(cx, cache, SYNC_SHRINK_BATCH);
            }
        }
        // One reference for the hash (4.6 to 5.19; from 6.0 the cache's one), and from
        // 5fc4cbd9fde5 on one more the create holds until the entry is on the LRU.
        let initial = 1 + u32::from(self.fixes.on(CREATE_HOLDS_REF));
        let init = EntryInit { key, value, refcnt: initial, reusable };
        let handle = self.entries.alloc(cx, Gfp::GFP_NOFS, init)?;
        let head = cache.bucket(key);
        let guard = head.lock(cx);
        let (duplicate, visited) = head.for_each_entry(cx, |chain| {
            let at = chain.iter().position(|node| node.key == key && { node.value } == value);
            (at.is_some(), at.map_or(chain.len(), |at| at + 1) as u64)
        });
        self.walked(cx, cache, visited, "mb_cache_entry_create");
        if duplicate {
            head.unlock(guard);
            let _ = self.entries.free(cx, handle);
            cx.sim().mark("create-ebusy");
            return Err(Errno::EBUSY);
        }
        cache.chain_written();
        head.add_head(cx, HashNode { key, value, entry: handle });
        if let Some(entry) = self.entry(cx, handle) {
            entry.e_hashed().store(true, Ordering::Relaxed);
        }
        if self.fixes.on(AUTO_DELETE) && !self.fixes.on(CREATE_HOLDS_REF) {
            // 6.0: on the LRU before the entry can be found and deleted, so under the bit lock.
            self.lru_add_new(cx, cache, handle);
            head.unlock(guard);
            return Ok(());
        }
        head.unlock(guard);
        if !self.fixes.on(CREATE_HOLDS_REF) {
            // 4.6 to 5.19: hashed with the hash's reference alone, findable and deletable, and
            // not on the LRU: a delete here frees the entry, and the LRU add uses freed memory.
            cx.sim().mark("create-hashed-unlisted");
        }
        self.lru_add_new(cx, cache, handle);
        if self.fixes.on(CREATE_HOLDS_REF) {
            self.mb_cache_entry_put(cx, cache, handle);
        }
        Ok(())
    }

    /// The LRU half of `mb_cache_entry_create()`: the new entry (dereferenced again, as the kernel
    /// dereferences its pointer) goes to the LRU's tail, taking the LRU's reference before 6.0.
    fn lru_add_new(&self, cx: &Cx, cache: &MbCache, handle: EntryHandle) {
        let mut clist = self.list_lock(cx, cache);
        let Some(entry) = self.entry(cx, handle) else { return };
        lru_add_tail(cx, &mut clist, entry, handle);
        if !self.fixes.on(AUTO_DELETE) {
            entry.e_refcnt.fetch_add(1, Ordering::Relaxed);
        }
        clist.c_entry_count += 1;
        cache.c_entry_count.store(clist.c_entry_count, Ordering::Relaxed);
    }

    /// `spin_lock(&cache->c_list_lock)`. On PREEMPT_RT a `spinlock_t` is a sleeping lock, and its
    /// `spin_lock()` makes `might_sleep()`'s check; ksim makes it on every configuration.
    #[track_caller]
    pub(crate) fn list_lock<'a>(&self, cx: &'a Cx, cache: &'a MbCache) -> SpinLockGuard<'a, CList> {
        cx.might_sleep("spin_lock(&cache->c_list_lock), a sleeping lock on PREEMPT_RT");
        bump(&cache.list_version);
        cache.c_list_lock.lock(cx)
    }

    /// The references the cache holds on an entry it has: the hash's and the LRU's before
    /// 307af6c87937, one after.
    pub(crate) fn cache_refs(&self) -> u32 {
        if self.fixes.on(AUTO_DELETE) {
            1
        } else {
            2
        }
    }

    /// A lookup's reference: `atomic_inc` before 307af6c87937, `atomic_inc_not_zero` after (an
    /// entry whose count the shrinker or a delete took to zero is being freed: skipped).
    fn take_ref(&self, entry: &MbCacheEntry) -> bool {
        if !self.fixes.on(AUTO_DELETE) {
            entry.e_refcnt.fetch_add(1, Ordering::Relaxed);
            return true;
        }
        let mut current = entry.e_refcnt.load(Ordering::Relaxed);
        while current != 0 {
            match entry.e_refcnt.compare_exchange(current, current + 1, Ordering::Acquire, Ordering::Relaxed)
            {
                Ok(_) => return true,
                Err(actual) => current = actual,
            }
        }
        false
    }

    /// `__entry_find()`: from `old`'s successor (the chain's head when `old` is none or
    /// unhashed), the first entry with `key` that is reusable (every entry before the reusable
    /// flag), with a reference taken; then drops the reference on `old`.
    fn entry_find(
        &self,
        cx: &Cx,
        cache: &MbCache,
        old: Option<EntryHandle>,
        key: u32,
    ) -> Option<EntryHandle> {
        let head = cache.bucket(key);
        let old_entry = old.and_then(|handle| self.entry(cx, handle));
        let guard = head.lock(cx);
        let (found, visited) = head.for_each_entry(cx, |chain| {
            let start = match (old, &old_entry) {
                (Some(handle), Some(entry)) if entry.e_hashed().load(Ordering::Relaxed) => {
                    chain.iter().position(|node| node.entry == handle).map_or(0, |at| at + 1)
                }
                (Some(_), _) => {
                    cx.sim().mark("find-next-unhashed");
                    0
                }
                (None, _) => 0,
            };
            let mut visited = 0u64;
            for node in &chain[start.min(chain.len())..] {
                visited += 1;
                if node.key != key {
                    continue;
                }
                let Some(entry) = self.entry(cx, node.entry) else { continue };
                let reusable =
                    !self.fixes.on(REUSABLE_FLAG) || entry.e_flags().test(cx, self.fixes, MBE_REUSABLE_B);
                if reusable && self.take_ref(entry) {
                    return (Some(node.entry), visited);
                }
                cx.sim().mark("find-skips-unreusable");
            }
            (None, visited)
        });
        self.walked(cx, cache, visited, "__entry_find");
        head.unlock(guard);
        if let Some(old) = old {
            self.mb_cache_entry_put(cx, cache, old);
        }
        found
    }

    /// `mb_cache_entry_find_first()`.
    pub(crate) fn mb_cache_entry_find_first(
        &self,
        cx: &Cx,
        cache: &MbCache,
        key: u32,
    ) -> Option<EntryHandle> {
        self.entry_find(cx, cache, None, key)
    }

    /// `mb_cache_entry_find_next()`: drops the reference on `entry`.
    pub(crate) fn mb_cache_entry_find_next(
        &self,
        cx: &Cx,
        cache: &MbCache,
        entry: EntryHandle,
    ) -> Option<EntryHandle> {
        let key = self.entry(cx, entry)?.key();
        self.entry_find(cx, cache, Some(entry), key)
    }

    /// Walks `key`'s chain under its lock for the entry with `value`; `f` runs on it, lock held.
    fn with_entry<R>(
        &self,
        cx: &Cx,
        cache: &MbCache,
        key: u32,
        value: u64,
        what: &str,
        f: impl FnOnce(EntryHandle, &MbCacheEntry) -> Option<R>,
    ) -> Option<R> {
        let head = cache.bucket(key);
        let guard = head.lock(cx);
        let (found, visited) = head.for_each_entry(cx, |chain| {
            let at = chain.iter().position(|node| node.key == key && { node.value } == value);
            (at.map(|at| chain[at].entry), at.map_or(chain.len(), |at| at + 1) as u64)
        });
        self.walked(cx, cache, visited, what);
        let result = found.and_then(|handle| f(handle, self.entry(cx, handle)?));
        head.unlock(guard);
        result
    }

    /// `mb_cache_entry_get()`: the entry with `key` and `value`, with a reference taken.
    pub(crate) fn mb_cache_entry_get(
        &self,
        cx: &Cx,
        cache: &MbCache,
        key: u32,
        value: u64,
    ) -> Option<EntryHandle> {
        self.with_entry(cx, cache, key, value, "mb_cache_entry_get", |handle, entry| {
            self.take_ref(entry).then_some(handle)
        })
    }

    /// `hlist_bl_del_init` of `handle` from its chain, dropping the hash's reference. Needs the
    /// chain's lock.
    fn unhash(&self, cx: &Cx, cache: &MbCache, handle: EntryHandle, entry: &MbCacheEntry) {
        cache.chain_written();
        cache.bucket(entry.key()).del_init(cx, |node| node.entry == handle);
        entry.e_hashed().store(false, Ordering::Relaxed);
    }

    /// The LRU half of a delete: off the LRU (dropping its reference before 307af6c87937)
    /// unless already off; whether it was on.
    fn lru_remove(&self, cx: &Cx, cache: &MbCache, entry: &MbCacheEntry) -> bool {
        let mut clist = self.list_lock(cx, cache);
        let listed = lru_del_init(cx, &mut clist, entry);
        if listed {
            clist.c_entry_count = clist.c_entry_count.saturating_sub(1);
            cache.c_entry_count.store(clist.c_entry_count, Ordering::Relaxed);
            if !self.fixes.on(AUTO_DELETE) {
                entry.e_refcnt.fetch_sub(1, Ordering::Relaxed);
            }
        }
        listed
    }

    /// `mb_cache_entry_delete()` (4.6 to 5.19; ext4 stopped calling it with 65f8b80053a1): unhash
    /// the entry with `key` and `value`, take it off the LRU, and drop the cache's references (the
    /// hash's keeps it alive across the unlock). With `auto-delete-on-free` on, a combination no
    /// kernel shipped (75896339e431 removed the function first), the cache's one reference is
    /// dropped, and a user's last put frees the unhashed entry.
    pub(crate) fn mb_cache_entry_delete(&self, cx: &Cx, cache: &MbCache, key: u32, value: u64) {
        if self.fixes.on(AUTO_DELETE) {
            self.delete_one_ref(cx, cache, key, value);
            return;
        }
        let found = self.with_entry(cx, cache, key, value, "mb_cache_entry_delete", |handle, entry| {
            self.unhash(cx, cache, handle, entry);
            Some(handle)
        });
        let Some(handle) = found else { return };
        let Some(entry) = self.entry(cx, handle) else { return };
        self.lru_remove(cx, cache, entry);
        cx.sim().mark("delete-unhashed");
        self.mb_cache_entry_put(cx, cache, handle);
    }

    /// `mb_cache_entry_delete()` on one cache reference (no kernel has it): a reference taken
    /// with `atomic_inc_not_zero` first, so an entry the shrinker claimed is left to it; then the
    /// entry is unhashed and taken off the LRU, and the cache's reference and ours are put (the
    /// cache's only by the task that unhashed it).
    fn delete_one_ref(&self, cx: &Cx, cache: &MbCache, key: u32, value: u64) {
        let found = self.with_entry(cx, cache, key, value, "mb_cache_entry_delete", |handle, entry| {
            if !self.take_ref(entry) {
                return None;
            }
            self.unhash(cx, cache, handle, entry);
            Some(handle)
        });
        let Some(handle) = found else { return };
        if let Some(entry) = self.entry(cx, handle) {
            self.lru_remove(cx, cache, entry);
        }
        cx.sim().mark("delete-unhashed");
        self.mb_cache_entry_put(cx, cache, handle);
        self.mb_cache_entry_put(cx, cache, handle);
    }

    /// `mb_cache_entry_delete_or_get()` (3dc96bba65f5): as delete, but an entry somebody uses is
    /// not deleted: it is returned with a reference taken. Before 307af6c87937 "used" is
    /// `e_refcnt > 2` read under the bit lock; after, the entry is got and its count taken from
    /// two (the cache's and ours) to zero by a `cmpxchg`, which fails while anybody else holds it.
    pub(crate) fn mb_cache_entry_delete_or_get(
        &self,
        cx: &Cx,
        cache: &MbCache,
        key: u32,
        value: u64,
    ) -> Option<EntryHandle> {
        if self.fixes.on(AUTO_DELETE) {
            return self.delete_or_get_claim(cx, cache, key, value);
        }
        let found =
            self.with_entry(cx, cache, key, value, "mb_cache_entry_delete_or_get", |handle, entry| {
                if entry.e_refcnt.load(Ordering::Relaxed) > 2 {
                    entry.e_refcnt.fetch_add(1, Ordering::Relaxed);
                    return Some((handle, true));
                }
                self.unhash(cx, cache, handle, entry);
                Some((handle, false))
            });
        let (handle, in_use) = found?;
        if in_use {
            cx.sim().mark("delete-or-get-in-use");
            return Some(handle);
        }
        let entry = self.entry(cx, handle)?;
        self.lru_remove(cx, cache, entry);
        cx.sim().mark("delete-or-get-deleted");
        self.mb_cache_entry_put(cx, cache, handle);
        None
    }

    /// 307af6c87937's `mb_cache_entry_delete_or_get()`: get, then `cmpxchg(&e_refcnt, 2, 0)`; on
    /// success off the LRU (`c_entry_count` dropped whether or not it was listed, as the kernel
    /// drops it) and `__mb_cache_entry_free()`.
    fn delete_or_get_claim(&self, cx: &Cx, cache: &MbCache, key: u32, value: u64) -> Option<EntryHandle> {
        let handle = self.mb_cache_entry_get(cx, cache, key, value)?;
        let entry = self.entry(cx, handle)?;
        if entry.e_refcnt.compare_exchange(2, 0, Ordering::AcqRel, Ordering::Relaxed).is_err() {
            cx.sim().mark("delete-or-get-in-use");
            return Some(handle);
        }
        let mut clist = self.list_lock(cx, cache);
        lru_del_init(cx, &mut clist, entry);
        clist.c_entry_count = clist.c_entry_count.wrapping_sub(1);
        cache.c_entry_count.store(clist.c_entry_count, Ordering::Relaxed);
        drop(clist);
        cx.sim().mark("delete-or-get-deleted");
        self.entry_free(cx, cache, handle);
        None
    }

    /// The condition `mb_cache_entry_wait_unused()` waits for: the caller is the last user
    /// besides the cache (`e_refcnt <= 3` before 307af6c87937, `<= 2` after).
    pub(crate) fn entry_unused(&self, cx: &Cx, entry: EntryHandle) -> bool {
        let most = self.cache_refs() + 1;
        self.entry(cx, entry).is_none_or(|entry| entry.e_refcnt.load(Ordering::Acquire) <= most)
    }

    /// `mb_cache_entry_wait_unused()`: sleeps until the caller is the entry's last user, as
    /// `wait_var_event()` (include/linux/wait_bit.h) does: the condition first, and only when it
    /// is false `___wait_var_event()`, whose `prepare_to_wait_event()` puts the task on the queue
    /// and whose `set_current_state()` is a full barrier (`smp_store_mb`) between that and the
    /// condition's next read; `finish_wait()` takes it off. ksim's queue list is
    /// `refcnt_waiters`, the SeqCst fence the barrier. (The op-level simulation parks a waiting
    /// release instead and wakes it by polling, so there nobody is ever on the queue.)
    pub(crate) fn mb_cache_entry_wait_unused(&self, cx: &Cx, cache: &MbCache, entry: EntryHandle) {
        cx.sim().mark("wait-unused");
        if self.entry_unused(cx, entry) {
            return;
        }
        cache.refcnt_waiters.fetch_add(1, Ordering::Relaxed);
        if self.wait_barrier {
            fence(Ordering::SeqCst);
        }
        // Coverage: the entry still in use once queued, then unused at a later test (a put's
        // `wake_up_var()` woke the queue in between), the path a lost wake-up would leave asleep.
        let mut in_use = false;
        cache.refcnt_wait.wait_event(cx, || {
            let unused = self.entry_unused(cx, entry);
            if unused && in_use {
                cx.sim().mark("wait-unused-woken");
            }
            in_use |= !unused;
            unused
        });
        cache.refcnt_waiters.fetch_sub(1, Ordering::Relaxed);
    }

    /// `mb_cache_entry_touch()`: marks the entry used, so the shrinker gives it another round.
    pub(crate) fn mb_cache_entry_touch(&self, cx: &Cx, entry: EntryHandle) {
        self.touches.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        if let Some(entry) = self.entry(cx, entry) {
            entry.e_flags().assign(cx, self.fixes, MBE_REFERENCED_B, true);
        }
    }

    /// `mb_cache_entry_put()`: drops a reference (`atomic_dec_return()`, fully ordered: a
    /// SeqCst read-modify-write); the last one frees the entry (true). From 3dc96bba65f5 on, a
    /// drop to the last user's count wakes `mb_cache_entry_wait_unused()` (`wake_up_var()`).
    pub(crate) fn mb_cache_entry_put(&self, cx: &Cx, cache: &MbCache, handle: EntryHandle) -> bool {
        let Some(entry) = self.entry(cx, handle) else { return false };
        let count = entry.e_refcnt.fetch_sub(1, Ordering::SeqCst).wrapping_sub(1);
        if count > 0 {
            if self.fixes.on(DELETE_OR_GET) && count <= self.cache_refs() + 1 {
                wake_up_var(cache);
            }
            return false;
        }
        self.entry_free(cx, cache, handle);
        true
    }

    /// `__mb_cache_entry_free()`: from 307af6c87937 on, unhashes the entry under its bucket's
    /// lock first (an entry is hashed while its count is above zero); then frees it.
    pub(crate) fn entry_free(&self, cx: &Cx, cache: &MbCache, handle: EntryHandle) {
        if self.fixes.on(AUTO_DELETE) {
            if let Some(entry) = self.entry(cx, handle) {
                let bucket = cache.bucket(entry.key());
                let guard = bucket.lock(cx);
                if entry.e_hashed().load(Ordering::Relaxed) {
                    self.unhash(cx, cache, handle, entry);
                }
                bucket.unlock(guard);
            }
        }
        let _ = self.entries.free(cx, handle);
        cx.sim().mark("entry-freed");
    }

    /// `mb_cache_destroy()`: cancels the shrink work (from d227786ab111 on), then takes every
    /// entry off the LRU and puts the cache's reference (before 307af6c87937 it unhashes the
    /// entry and drops the hash's reference first); each should hold only that reference then
    /// (the kernel's `WARN_ON`). Then frees the cache.
    ///
    /// The kernel takes no lock for the walk, `c_list_lock` nor the chains' bit locks (before
    /// 307af6c87937, `hlist_bl_del_init()` unhashes unlocked): the cache must no longer be in
    /// use. So the walk's accesses to the list, the entries' `e_list` and the chains are made
    /// through an observer context: no lock is traced or known to lockdep, and no access is
    /// judged against the lock that documents it. (The list's Rust mutex is still taken around
    /// each step, for Rust's sake: a holder elsewhere, which the kernel would race, makes the
    /// step wait.) The references and the puts are the destroying task's own. A scan still
    /// using the cache is caught by the slab at its next access once the cache is freed
    /// ([`super::shrinker::ScanCache`]).
    pub(crate) fn mb_cache_destroy(&self, cx: &Cx, handle: CacheHandle) {
        if self.fixes.on(super::fixes::CANCEL_SHRINK_WORK) && self.workqueue.cancel_work_sync(cx, handle) {
            cx.sim().mark("destroy-cancelled-work");
        }
        let Ok(cache) = self.caches.get(cx, handle) else { return };
        let unlocked = cx.sim().observer_cx("mb_cache_destroy", cx.cpu());
        while let Some((handle, entry)) = self.destroy_unlist_first(cx, &unlocked, &cache) {
            destroy_check_refs(cx, entry);
            self.mb_cache_entry_put(cx, &cache, handle);
        }
        drop(cache);
        let _ = self.caches.free(cx, handle);
    }

    /// One step of `mb_cache_destroy()`'s unlocked walk, by `unlocked` (an observer context,
    /// see [`MbcacheModule::mb_cache_destroy`]): the LRU's first entry, before 307af6c87937
    /// unhashed with the hash's reference dropped (an unhashed one is the kernel's
    /// `WARN_ON(1)`), then `list_del`. None once the LRU is empty (or its entry is freed: the
    /// slab's report, to `cx`, the destroying task).
    fn destroy_unlist_first(
        &self,
        cx: &Cx,
        unlocked: &Cx,
        cache: &MbCache,
    ) -> Option<(EntryHandle, &MbCacheEntry)> {
        bump(&cache.list_version);
        let mut clist = cache.c_list_lock.lock(unlocked);
        let head = clist.head;
        let first = list::next(&mut clist.arena.mem(unlocked), head, "mb_cache_destroy").ok()?;
        if first == head {
            return None;
        }
        let handle = clist.owners.get(first.index() as usize).copied().flatten()?;
        let entry = self.entry(cx, handle)?;
        if !self.fixes.on(AUTO_DELETE) {
            if entry.e_hashed().load(Ordering::Relaxed) {
                self.unhash(unlocked, cache, handle, entry);
                entry.e_refcnt.fetch_sub(1, Ordering::Relaxed);
            } else {
                let message = format!(
                    "mb_cache_destroy: entry key {} value {} is on the LRU but not hashed",
                    entry.key(),
                    entry.value()
                );
                let kind = ViolationKind::finding("mbcache2-destroy-entry-unhashed");
                cx.sim().report(Some(cx), Violation::new(kind, message));
            }
        }
        let _ = list::list_del(&mut clist.arena.mem(unlocked), first);
        clist.arena.free(first);
        clist.owners[first.index() as usize] = None;
        entry.e_list().set(unlocked, None);
        Some((handle, entry))
    }
}

/// `wake_up_var(&entry->e_refcnt)`: `__wake_up_bit()` (kernel/sched/wait_bit.c) wakes the
/// queue only if `waitqueue_active()` sees a task on it, an unlocked read of the list head that
/// skips the queue's lock when nobody waits. `waitqueue_active()`'s comment (include/linux/wait.h,
/// 69e51e92a394 "sched/wait: Document waitqueue_active()") requires a full barrier between the
/// waker's change of the condition and that read, pairing with the waiter's
/// `set_current_state()`; 3cdee6b359f1 ("sched: Improve documentation for wake_up_bit/wait_on_bit
/// family of functions") spells out that `wake_up_var()` callers must provide it. mbcache's is
/// the put's fully ordered `atomic_dec_return()`, so the read here is SeqCst after a SeqCst
/// read-modify-write; the waiter registers and then fences (see
/// [`MbcacheModule::mb_cache_entry_wait_unused`]). Weaken either side and a waiter can test
/// the old count after the waker read an empty queue: the lost wake-up the checkers then find
/// (the waiter never returns). Shuttle's schedules are sequentially consistent; loom treats
/// SeqCst accesses as AcqRel (a documented limitation, it supports SeqCst fences), so a loom
/// model of this wait must model the waker's barrier as a fence or it reports a false lost
/// wake-up. Under loom, then, the put's barrier is spelled as a SeqCst fence here (only there:
/// elsewhere it would cost every put an `mfence` that x86's locked decrement already is);
/// `tests/tests/mbcache2/loom.rs` checks that no interleaving loses the wake-up, and that one
/// does once the waiter's barrier is dropped ([`MbcacheModule::wait_barrier`]).
fn wake_up_var(cache: &MbCache) {
    #[cfg(feature = "threaded")]
    if sim_core::sync::in_loom() {
        fence(Ordering::SeqCst);
    }
    if cache.refcnt_waiters.load(Ordering::SeqCst) != 0 {
        cache.refcnt_wait.wake_up();
    }
}

/// `mb_cache_destroy()`'s `WARN_ON(atomic_read(&entry->e_refcnt) != 1)`: somebody still holds
/// an entry of a cache being destroyed.
fn destroy_check_refs(cx: &Cx, entry: &MbCacheEntry) {
    let refs = entry.e_refcnt.load(Ordering::Relaxed);
    if refs != 1 {
        let message = format!(
            "mb_cache_destroy: entry key {} value {} has {refs} references, not 1",
            entry.key(),
            entry.value()
        );
        cx.sim().report(
            Some(cx),
            Violation::new(ViolationKind::finding("mbcache2-destroy-entry-in-use"), message),
        );
    }
}

/// `list_add_tail(&entry->e_list, &cache->c_list)`, with the entry's node allocated here.
pub(crate) fn lru_add_tail(cx: &Cx, clist: &mut CList, entry: &MbCacheEntry, handle: EntryHandle) {
    let node = clist.arena.alloc_head();
    let head = clist.head;
    if list::list_add_tail(&mut clist.arena.mem(cx), node, head).is_err() {
        return;
    }
    let slot = node.index() as usize;
    if clist.owners.len() <= slot {
        clist.owners.resize(slot + 1, None);
    }
    clist.owners[slot] = Some(handle);
    entry.e_list().set(cx, Some(node));
}

/// `if (!list_empty(&entry->e_list)) list_del_init(&entry->e_list)`: whether it was listed.
pub(crate) fn lru_del_init(cx: &Cx, clist: &mut CList, entry: &MbCacheEntry) -> bool {
    let Some(node) = entry.e_list().get(cx) else { return false };
    let _ = list::list_del(&mut clist.arena.mem(cx), node);
    clist.arena.free(node);
    clist.owners[node.index() as usize] = None;
    entry.e_list().set(cx, None);
    true
}

/// What the invariant check reads of one cache, through an observer context. Its vectors are
/// the check's to keep between checks ([`MbCache::snapshot_into`] clears and refills them), so a
/// check allocates nothing once they have grown.
#[derive(Debug, Default)]
pub(crate) struct CacheSnapshot {
    /// The LRU, head first.
    pub(crate) lru: Vec<EntryHandle>,
    /// Every chain's nodes, chain after chain, each chain first node first.
    pub(crate) nodes: Vec<HashNode>,
    /// `c_entry_count` under the lock.
    pub(crate) count: u64,
    /// Each listed or hashed entry's (hashed, listed, e_refcnt): the chains' first, then the
    /// LRU's unhashed ones.
    pub(crate) entries: Vec<(EntryHandle, bool, bool, u32)>,
    /// Scratch: per entry slot, the number of the last snapshot that read the live entry there,
    /// its handle, and what that read found with the entry's `derefs` count then (an entry the
    /// chains and the LRU both name is read once, without sorting the handles). Only a handle
    /// whose lookup succeeded is stamped: a slot has one live generation, so a stale handle to it
    /// (looked up, reported, and skipped) never displaces the live one's stamp, and a live entry
    /// named again after it is still read once. A snapshot that may reuse what was read
    /// ([`MbCache::snapshot_into`]'s `reuse`) takes it again while the handle and the count are
    /// the same, without the entry's `e_list` read.
    seen: Vec<SlotSeen>,
    /// This snapshot's number (never 0, the number of a slot no snapshot named).
    epoch: u32,
    /// The [`MbCache::list_version`] `lru` and `count` were read at: a snapshot that may reuse
    /// what was read takes them again, with no walk, while the version is the same.
    list_read: Option<u64>,
    /// The [`MbCache::hash_version`] `nodes` were read at, reused as `list_read` says.
    hash_read: Option<u64>,
    /// The entries' slab frees (allocations less live) when `entries` was last named, if every
    /// entry named then was found live: while the LRU, the chains and this count stand still,
    /// the same entries are named again, each still live (see [`CacheSnapshot::refresh`]).
    named_at_frees: Option<u64>,
    /// Snapshots that refreshed `entries` rather than naming them again (tests).
    #[cfg(test)]
    refreshed: usize,
}

/// What the snapshots read of one entry slot (see [`CacheSnapshot::seen`]).
#[derive(Clone, Copy, Debug, Default)]
struct SlotSeen {
    epoch: u32,
    handle: Option<EntryHandle>,
    derefs: u64,
    /// (hashed, listed, e_refcnt).
    state: (bool, bool, u32),
}

impl CacheSnapshot {
    /// The [`MbCache::list_version`] and [`MbCache::hash_version`] the LRU and the chains were
    /// last read at (tests: whether a snapshot reused them).
    #[cfg(test)]
    pub(crate) fn versions_read(&self) -> (Option<u64>, Option<u64>) {
        (self.list_read, self.hash_read)
    }

    /// The [`MbCache::hash_version`] `nodes` were read at.
    pub(crate) fn chains_read(&self) -> Option<u64> {
        self.hash_read
    }

    /// How many snapshots refreshed their entries in place (tests: whether the path ran).
    #[cfg(test)]
    pub(crate) fn refreshed(&self) -> usize {
        self.refreshed
    }

    /// `entries` as naming them again would make them, when nothing they are named from moved
    /// since they were named (the caller's test: the LRU's and the chains' versions as read, and
    /// no entry freed since a naming that found every entry live): the same entries, in the
    /// same order, each still live (a slot's handle dangles only once freed); so only the
    /// states of the entries the model dereferenced since are read again. Each is looked up by
    /// the slab as [`name_entry`] does (a checker's read, counting in no `derefs`).
    fn refresh(&mut self, mb: &MbcacheModule, observer: &Cx) {
        let CacheSnapshot { entries, seen, .. } = self;
        for named in entries.iter_mut() {
            let handle = named.0;
            let Ok(entry) = mb.entries.get(observer, handle) else {
                unreachable!("entry {handle:?} named live and none freed since, yet not live")
            };
            let known = &mut seen[handle.index() as usize];
            let derefs = entry.cold.derefs.load(StdOrdering::Relaxed);
            if known.derefs != derefs {
                known.state = entry_state(entry, observer);
                known.derefs = derefs;
                let (hashed, listed, refcnt) = known.state;
                *named = (handle, hashed, listed, refcnt);
            }
        }
        #[cfg(test)]
        {
            self.refreshed += 1;
        }
    }

    /// Each entry the chains and the LRU name, once, into `entries` (chains first, chain by
    /// chain, then the LRU's unhashed ones): looked up by the slab (not
    /// [`MbcacheModule::entry`]: a checker's read counts in no `derefs`; a freed one is
    /// reported and skipped), and its state read, or with `reuse` taken from `seen` while the
    /// model has not dereferenced it since.
    /// Returns whether every entry named was found live.
    fn name_entries(&mut self, mb: &MbcacheModule, observer: &Cx, reuse: bool) -> bool {
        self.epoch = self.epoch.wrapping_add(1);
        if self.epoch == 0 {
            self.seen.iter_mut().for_each(|slot| slot.epoch = 0);
            self.epoch = 1;
        }
        let CacheSnapshot { lru, nodes, entries, seen, epoch, .. } = self;
        let epoch = *epoch;
        let mut live = true;
        for handle in nodes.iter().map(|node| node.entry) {
            live &= name_entry(mb, observer, seen, epoch, handle, reuse, entries);
        }
        for &handle in lru.iter() {
            live &= name_entry(mb, observer, seen, epoch, handle, reuse, entries);
        }
        live
    }
}

/// An entry's (hashed, listed, e_refcnt), read by `observer`.
#[inline(always)]
fn entry_state(entry: &MbCacheEntry, observer: &Cx) -> (bool, bool, u32) {
    (
        entry.e_hashed().load(Ordering::Relaxed),
        entry.e_list().get(observer).is_some(),
        entry.e_refcnt.load(Ordering::Relaxed),
    )
}

/// One name of [`CacheSnapshot::name_entries`]: `handle`'s entry into `entries` unless this
/// snapshot (`epoch`) named it already or the slab finds it freed (then false).
#[inline(always)]
fn name_entry(
    mb: &MbcacheModule,
    observer: &Cx,
    seen: &mut Vec<SlotSeen>,
    epoch: u32,
    handle: EntryHandle,
    reuse: bool,
    entries: &mut Vec<(EntryHandle, bool, bool, u32)>,
) -> bool {
    let slot = handle.index() as usize;
    if slot >= seen.len() {
        seen.resize(slot + 1, SlotSeen::default());
    }
    let known = &mut seen[slot];
    let same = known.handle == Some(handle);
    if same && known.epoch == epoch {
        return true;
    }
    let Ok(entry) = mb.entries.get(observer, handle) else { return false };
    let derefs = entry.cold.derefs.load(StdOrdering::Relaxed);
    if !(reuse && same && known.derefs == derefs) {
        known.state = entry_state(entry, observer);
        (known.handle, known.derefs) = (Some(handle), derefs);
    }
    known.epoch = epoch;
    let (hashed, listed, refcnt) = known.state;
    entries.push((handle, hashed, listed, refcnt));
    true
}

impl MbCache {
    /// The cache's state as the invariant check compares it, read by `observer` (neither traced
    /// nor checked by lockdep) into `snapshot`'s vectors, the op-level and the threaded checks
    /// alike: the LRU walked under `c_list_lock`, each chain read under its bit lock's
    /// documentation, then each named entry's state once. With `reuse` (the op-level
    /// incremental check, between operations: no model access in flight) and the module
    /// counting dereferences ([`MbcacheModule::count_derefs`]), an entry the model has not
    /// dereferenced since `snapshot` last read it is not read again (its kept state), and the
    /// LRU and `c_entry_count` `snapshot` read of this cache are taken again, unwalked, while
    /// the model has not taken `c_list_lock` since ([`MbCache::list_version`]), and its chains'
    /// nodes while the model wrote no chain ([`MbCache::hash_version`]); every entry is still
    /// looked up, so a freed one is reported as before. When both were taken again and no
    /// entry was freed since a naming that found every entry live, the entries named then are
    /// the ones naming would find now, so they are kept and only refreshed
    /// ([`CacheSnapshot::refresh`]) rather than named again from the chains and the LRU.
    pub(crate) fn snapshot_into(
        &self,
        mb: &MbcacheModule,
        observer: &Cx,
        snapshot: &mut CacheSnapshot,
        reuse: bool,
    ) {
        let reuse = reuse && mb.count_derefs;
        let frees = mb.entries.allocations() - mb.entries.live();
        let (mut unmoved, version) = (reuse, self.list_version.load(StdOrdering::Relaxed));
        if !(reuse && snapshot.list_read == Some(version)) {
            self.read_list(observer, snapshot);
            snapshot.list_read = Some(version);
            unmoved = false;
        }
        let version = self.hash_version.load(StdOrdering::Relaxed);
        if !(reuse && snapshot.hash_read == Some(version)) {
            snapshot.nodes.clear();
            for index in 0..self.c_hash.len() {
                self.c_hash
                    .bucket(index)
                    .for_each_entry(observer, |chain| snapshot.nodes.extend_from_slice(chain));
            }
            snapshot.hash_read = Some(version);
            unmoved = false;
        }
        if unmoved && snapshot.named_at_frees == Some(frees) {
            snapshot.refresh(mb, observer);
            return;
        }
        snapshot.entries.clear();
        let live = snapshot.name_entries(mb, observer, reuse);
        snapshot.named_at_frees = live.then_some(frees);
    }

    /// The LRU walked under `c_list_lock` into `snapshot.lru`, and `c_entry_count`.
    fn read_list(&self, observer: &Cx, snapshot: &mut CacheSnapshot) {
        snapshot.lru.clear();
        let mut guard = self.c_list_lock.lock(observer);
        let clist = &mut *guard;
        let head = clist.head;
        let mut mem = clist.arena.mem(observer);
        let mut node = list::next(&mut mem, head, "snapshot").ok();
        while let Some(at) = node.filter(|&at| at != head) {
            if let Some(handle) = clist.owners.get(at.index() as usize).copied().flatten() {
                snapshot.lru.push(handle);
            }
            node = list::next(&mut mem, at, "snapshot").ok();
        }
        snapshot.count = clist.c_entry_count;
    }
}
