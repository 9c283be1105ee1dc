//! fs/mbcache.c's entries and handles: `struct mb_cache_entry`, alloc, insert, release, get,
//! find_first/find_next, dup, takeout, free, and the internal unhash/forget/release-unlock. With
//! `exclusive-get`, the later 2.6 shared/exclusive handles (`e_queued`, `MB_CACHE_WRITER`).

use std::sync::atomic::Ordering as StdOrdering;

use sim_core::mm::{slab_precheck, Gfp};
use sim_core::sync::atomic::Ordering;
use sim_core::trace::CallName;
use sim_core::{Cx, Errno, Violation, ViolationKind};

use crate::cache::{CacheRef, FREE_CALLBACK_SITE};
use crate::hash::hash_long;
use crate::registry::{
    freed, CacheHandle, EntryRef, Found, HeadId, ListHead, Locked, LruLink, MbError, Mem, Node, Registry,
    Waits, INDEXES_MAX, MB_CACHE_WRITER,
};
use sim_core::list::{self, Oops};

/// `struct mb_cache_entry`: a slab object of mbcache's one entry arena (`Memory::entries`).
/// Every field is guarded by `mb_cache_spinlock` in the kernel (`e_used` is an `atomic_t` only
/// `mb_cache_entry_dup` changes without it); here all sit in mbcache's `Memory`. In C order,
/// what a block chain walk reads first (the key, then `e_block_list`, whose `next` it follows),
/// so a walk's step reads the slot's generation and those fields from its first 40 bytes. The
/// slot holds what a get and a release read (the walk's fields, `e_lru_list`, the use counts,
/// the serial): its `e_indexes[]` (148 bytes, which only insert, find and unhash read) sit in
/// [`Memory::entry_indexes`] at the same slot number, so a slot is 128 bytes, two cache lines,
/// and the 1k..1M entries' hot bytes are about half as many as with the indexes inline.
#[derive(Debug)]
#[repr(C)]
pub(crate) struct Entry {
    pub(crate) bdev: u64,
    pub(crate) block: u64,
    pub(crate) block_list: ListHead,
    /// `e_cache`.
    pub(crate) cache: CacheHandle,
    /// Instrumentation: a serial number, unique per registry, for outcomes and traces.
    pub(crate) id: u64,
    /// `e_lru_list`: written only through [`crate::registry::LruLink::write`].
    pub(crate) lru: LruLink,
    /// `e_used`.
    pub(crate) used: u32,
    /// `e_queued` (the fixed kernel).
    pub(crate) queued: u32,
    /// Instrumentation: when it went on the LRU tail (0: put back at the head by a failed free).
    pub(crate) lru_stamp: u64,
    /// Instrumentation: its free callback failed and it is waiting on the LRU to be freed.
    pub(crate) free_failed: bool,
}

// The claim above: the slot's 8-byte generation word, then the entry up to the end of
// `e_block_list.next`, span 40 bytes.
const _: () = assert!(
    8 + std::mem::offset_of!(Entry, block_list)
        + std::mem::offset_of!(ListHead, next)
        + std::mem::size_of::<crate::registry::Link>()
        <= 40
);
// The claim above: a slot (the 8-byte generation word and the entry) is two cache lines.
const _: () = assert!(8 + std::mem::size_of::<Entry>() == 128);

/// What a write through `Memory::entry_use_mut` may reach: an entry's use and LRU-order fields,
/// borrowed for writing, and its `e_block_list`, borrowed for reading only (whether the entry is
/// hashed). The write log files such a write as one no hash-chain fact reads
/// (`registry::Touched::entries`), so a key, `e_bdev`/`e_block` or a chain link written through
/// it would be hidden from the incremental check's chain walks: this view has no way to write
/// them, so the log's claim is the type's. Field borrows only, nothing copied: the optimiser
/// makes each access the field access it stands for.
pub(crate) struct EntryUse<'a> {
    /// `e_used`.
    pub(crate) used: &'a mut u32,
    /// `e_queued` (the fixed kernel).
    pub(crate) queued: &'a mut u32,
    /// Instrumentation: when it went on the LRU tail (0: put back at the head by a failed free).
    pub(crate) lru_stamp: &'a mut u64,
    /// Instrumentation: its free callback failed and it is waiting on the LRU to be freed.
    pub(crate) free_failed: &'a mut bool,
    /// `e_block_list`, read-only.
    pub(crate) block_list: &'a ListHead,
}

impl Entry {
    /// The [`EntryUse`] view of this entry.
    #[inline]
    pub(crate) fn use_view(&mut self) -> EntryUse<'_> {
        let Entry { used, queued, lru_stamp, free_failed, block_list, .. } = self;
        EntryUse { used, queued, lru_stamp, free_failed, block_list }
    }
}

/// `struct mb_cache_entry_index`: `o_list` and `o_key`.
#[derive(Clone, Copy, Debug)]
pub(crate) struct IndexSlot {
    pub(crate) list: ListHead,
    pub(crate) key: u32,
}

/// `e_indexes[]`, the flexible array at the end of the kernel's entry, kept beside the entry's
/// slot ([`Memory::entry_indexes`]): room for [`INDEXES_MAX`], the first `len` in use (a slice
/// of them through `Deref`).
#[derive(Debug)]
pub(crate) struct Indexes {
    len: u8,
    slots: [IndexSlot; INDEXES_MAX as usize],
}

impl Indexes {
    /// `count` indexes, uninitialised as a fresh slab object's are.
    pub(crate) fn new(count: u32) -> Indexes {
        assert!(count <= INDEXES_MAX, "mb_cache_create refuses more than {INDEXES_MAX} indexes");
        let slot = IndexSlot { list: ListHead::UNINIT, key: 0 };
        Indexes { len: count as u8, slots: [slot; INDEXES_MAX as usize] }
    }
}

impl std::ops::Deref for Indexes {
    type Target = [IndexSlot];
    fn deref(&self) -> &[IndexSlot] {
        &self.slots[..usize::from(self.len)]
    }
}

impl std::ops::DerefMut for Indexes {
    fn deref_mut(&mut self) -> &mut [IndexSlot] {
        &mut self.slots[..usize::from(self.len)]
    }
}

/// A handle to an entry: the pointer `mb_cache_entry_get` and friends return. A value the user
/// holds across operations; copying it is copying the pointer, and using a copy after the handle
/// was released is a reported violation.
#[derive(Clone, PartialEq, Eq)]
pub struct Handle {
    pub(crate) id: u64,
    pub(crate) entry: EntryRef,
    /// Instrumentation: the entry's cache (`ce->e_cache`, known without a dereference).
    pub(crate) cache: CacheHandle,
    pub(crate) serial: u64,
}

/// Short, since every call's end marker in a kept trace prints its result: the handle and its
/// entry's serial say all a reader needs (the slot and generation are in the entry's own events).
impl std::fmt::Debug for Handle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "handle#{}(entry {})", self.id, self.serial)
    }
}

/// At most this many words describe a call's result in the trace: `Result<Option<Handle>, _>`
/// needs four (two tags, the handle's id and its entry's serial).
const RESULT_WORDS: usize = 4;

/// A call's result as the trace hashes it: up to [`RESULT_WORDS`] integers, no text.
#[derive(Default)]
pub(crate) struct Words {
    words: [u64; RESULT_WORDS],
    len: usize,
}

impl Words {
    #[inline(always)]
    fn push(&mut self, word: u64) {
        assert!(self.len < RESULT_WORDS, "a call's result has more than {RESULT_WORDS} trace words");
        self.words[self.len] = word;
        self.len += 1;
    }

    #[inline(always)]
    fn as_slice(&self) -> &[u64] {
        &self.words[..self.len]
    }
}

/// What a call's end marker hashes for its result: the integers its `{:?}` text would show, so
/// the trace tells results apart without formatting any (text is built only for a kept trace).
pub(crate) trait TraceWords: std::fmt::Debug {
    /// Appends `self`'s words to `out`.
    fn trace_words(&self, out: &mut Words);
}

impl TraceWords for Handle {
    #[inline(always)]
    fn trace_words(&self, out: &mut Words) {
        out.push(self.id);
        out.push(self.serial);
    }
}

impl TraceWords for () {
    #[inline(always)]
    fn trace_words(&self, _out: &mut Words) {}
}

impl<T: TraceWords> TraceWords for Option<T> {
    #[inline(always)]
    fn trace_words(&self, out: &mut Words) {
        match self {
            Some(value) => {
                out.push(1);
                value.trace_words(out);
            }
            None => out.push(0),
        }
    }
}

impl<T: TraceWords> TraceWords for Result<T, MbError> {
    #[inline(always)]
    fn trace_words(&self, out: &mut Words) {
        match self {
            Ok(value) => {
                out.push(0);
                value.trace_words(out);
            }
            // An errno by its number; the other two end the call without a kernel return value
            // (an oops is also reported, with its text, as a violation event).
            Err(MbError::Errno(errno)) => out.push(1 | u64::from(errno.number().unsigned_abs()) << 8),
            Err(MbError::WouldBlock) => out.push(2),
            Err(MbError::Oops(_)) => out.push(3),
        }
    }
}

/// What [`Registry::get`]'s section leaves for after it is dropped: a handle and whether it is
/// the registry's first found entry (the coverage mark is made after the unlock), or the answer
/// already made (no entry, or [`Registry::get_waited`]'s).
enum Got {
    Found(Handle, bool),
    Answered(Option<Handle>),
}

/// The traced calls, their names hashed at compile time.
mod call {
    use sim_core::trace::CallName;

    pub(super) const ALLOC: CallName = CallName::new("mb_cache_entry_alloc");
    pub(super) const INSERT: CallName = CallName::new("mb_cache_entry_insert");
    pub(super) const RELEASE: CallName = CallName::new("mb_cache_entry_release");
    pub(super) const TAKEOUT: CallName = CallName::new("mb_cache_entry_takeout");
    pub(super) const FREE: CallName = CallName::new("mb_cache_entry_free");
    pub(super) const DUP: CallName = CallName::new("mb_cache_entry_dup");
    pub(super) const GET: CallName = CallName::new("mb_cache_entry_get");
    pub(super) const FIND_FIRST: CallName = CallName::new("mb_cache_entry_find_first");
    pub(super) const FIND_NEXT: CallName = CallName::new("mb_cache_entry_find_next");
}

impl Handle {
    /// The entry the handle points to.
    pub fn entry_ref(&self) -> EntryRef {
        self.entry
    }

    /// The cache of the entry the handle points to.
    pub fn cache_ref(&self) -> CacheRef {
        CacheRef(self.cache)
    }

    /// The entry's serial number (stable for the entry's life).
    pub fn entry_id(&self) -> u64 {
        self.serial
    }
}

impl Registry {
    /// Runs one API call between its trace markers: its arguments (`args`) and result hashed as
    /// integer words, their text (`detail`, the result's `{:?}`) built only for a kept trace.
    fn traced<T: TraceWords>(
        &self,
        cx: &Cx,
        name: &CallName,
        args: impl IntoIterator<Item = u64>,
        detail: impl FnOnce() -> String,
        call: impl FnOnce() -> T,
    ) -> T {
        cx.call_begin(name, args, detail);
        let result = call();
        let mut words = Words::default();
        result.trace_words(&mut words);
        cx.call_end(name, words.as_slice().iter().copied(), || format!("{result:?}"));
        result
    }

    /// Mirrors `__mb_cache_entry_is_hashed()`.
    pub(crate) fn is_hashed(mem: &mut Mem<'_>, entry: EntryRef) -> Result<bool, Oops> {
        Ok(!list::list_empty(mem, Node::Block(entry))?)
    }

    /// Mirrors `__mb_cache_entry_unhash()`.
    pub(crate) fn unhash(mem: &mut Mem<'_>, entry: EntryRef) -> Result<(), Oops> {
        if Self::is_hashed(mem, entry)? {
            list::list_del_init(mem, Node::Block(entry))?;
            let cache = mem.entry(entry)?.cache;
            let indexes = mem.cache(cache)?.info.indexes_count;
            for index in 0..indexes {
                list::list_del(mem, Node::Index(entry, index))?;
            }
        }
        Ok(())
    }

    /// Mirrors `__mb_cache_entry_forget()`: called without the lock; a failed free callback puts
    /// the entry back at the head of the LRU.
    pub(crate) fn forget(&self, cx: &Cx, entry: EntryRef, gfp: Gfp) -> Result<(), MbError> {
        // The kernel starts with plain reads of `ce->e_cache` and `cache->c_op`, unlocked, which
        // another CPU may race with: a point where loom and shuttle may switch tasks.
        self.preemption_point();
        let (info, cache, serial) = {
            let memory = self.memory();
            let object = memory.entry(cx, entry)?;
            (memory.cache(cx, object.cache)?.info.clone(), object.cache, object.id)
        };
        let refused = match info.free_op {
            Some(op) => {
                (op.fails_without_fs && !gfp.contains(Gfp::__GFP_FS))
                    || cx.sim().should_fail(cx, &FREE_CALLBACK_SITE, 0)
            }
            None => false,
        };
        if refused {
            cx.sim().mark("free callback failed: entry back on the lru");
            cx.note(format!("{}: free callback refused entry {serial}; back on the lru", info.name));
            let mut locked_global = self.lock(cx);
            let mut mem = locked_global.mem();
            let object = mem.entry_use_mut(entry)?;
            *object.lru_stamp = 0;
            *object.free_failed = true;
            list::list_add(&mut mem, Node::Lru(entry), Node::Head(HeadId::Lru))?;
            drop(locked_global);
        } else {
            {
                let mut memory = self.memory();
                Self::log_chains_of(&mut memory, entry, info.bucket_bits);
                memory.free_entry(cx, entry).map_err(|e| {
                    MbError::Oops(Box::new(Violation::new(ViolationKind::DoubleFree, e.to_string())))
                })?;
                memory.caches.get_mut(cx, cache).map_err(freed)?.entries_live -= 1;
            }
            info.entry_count.fetch_sub(1, Ordering::SeqCst);
        }
        Ok(())
    }

    /// Logs the hash chains a freed entry was keyed for (instrumentation for the incremental
    /// invariant check, which then walks them for a link left dangling).
    fn log_chains_of(memory: &mut crate::registry::Memory, entry: EntryRef, bucket_bits: u32) {
        let Some(object) = memory.entries.peek(entry.0) else {
            return;
        };
        let bucket = hash_long(object.bdev.wrapping_add(object.block & 0xffff_ffff), bucket_bits);
        memory.touched.head(HeadId::Block(object.cache, bucket));
        for (index, slot) in memory.entry_indexes[entry.slot()].iter().enumerate() {
            let bucket = hash_long(u64::from(slot.key), bucket_bits);
            memory.touched.head(HeadId::index(object.cache, index as u32, bucket));
        }
    }

    /// Mirrors `__mb_cache_entry_release_unlock()`: drops one use under the lock; the last use
    /// puts a hashed entry on the LRU tail and forgets an unhashed one (after unlocking). Inlined
    /// always, its rare ends (a wake-up, a forget) cold calls of their own: as a call it took the
    /// held section by value, a copy of the [`Locked`] in and its drop's copy out (about 30
    /// instructions a release, callgrind of the bench's `MBCACHE_PROFILE_PAIRS`).
    #[inline(always)]
    pub(crate) fn release_unlock(
        &self,
        mut locked_global: Locked<'_>,
        entry: EntryRef,
    ) -> Result<(), MbError> {
        let cx = locked_global.cx;
        let forget = self.release_held(&mut locked_global, entry)?;
        drop(locked_global);
        if forget {
            return self.forget_last(cx, entry);
        }
        Ok(())
    }

    /// [`Registry::release_unlock`] up to the unlock, the section borrowed: the use dropped (and
    /// the waiters woken, the entry put on the LRU), and whether the caller must forget the entry
    /// once it has dropped the section (the last use of an unhashed entry). [`Registry::release`]
    /// calls it with the section it then drops in place: passed by value and dropped inside, the
    /// 72-byte [`Locked`] was copied twice a release (callgrind, `MBCACHE_PROFILE_PAIRS`).
    #[inline(always)]
    fn release_held(&self, locked_global: &mut Locked<'_>, entry: EntryRef) -> Result<bool, MbError> {
        let exclusive = self.fixes.on(crate::fixes::EXCLUSIVE_GET);
        // The use dropped and, for the last use of a hashed entry, its LRU stamp and
        // `list_add_tail(&ce->e_lru_list, &mb_cache_lru_list)` (after no unlock: a last use has
        // no waiter to wake), with the entry looked up once for all.
        let (last, queued, hashed) = locked_global.mem().release_use(entry, |object| {
            // `__mb_cache_entry_is_hashed()` (`list_empty(&ce->e_block_list)`) read from the
            // entry already at hand: it only matters for the last use, and nothing between here
            // and there can rehash the entry (the lock stays held).
            let hashed = object.block_list.next != list::Link::To(Node::Block(entry));
            let (last, queued) = if exclusive {
                let mut used = *object.used;
                if used >= MB_CACHE_WRITER {
                    used -= MB_CACHE_WRITER;
                }
                used -= 1;
                *object.used = used;
                (used == 0 && *object.queued == 0, *object.queued)
            } else {
                // atomic_dec_and_test: a count that underflows wraps, as the kernel's does.
                *object.used = object.used.wrapping_sub(1);
                (*object.used == 0, 0)
            };
            (last, queued, hashed)
        })?;
        if queued > 0 {
            self.wake_waiters(locked_global);
        }
        Ok(last && !hashed)
    }

    /// [`Registry::release_unlock`]'s `wake_up(&mb_cache_queue)` for an entry with waiters
    /// (`exclusive-get`), the `Memory` guard let go first.
    #[cold]
    fn wake_waiters(&self, locked_global: &mut Locked<'_>) {
        locked_global.unlock_memory();
        self.wakeups.fetch_add(1, Ordering::SeqCst);
        self.queue.wake_up();
    }

    /// [`Registry::release_unlock`]'s last release of an unhashed entry, after the unlock:
    /// `__mb_cache_entry_forget()`.
    #[cold]
    fn forget_last(&self, cx: &Cx, entry: EntryRef) -> Result<(), MbError> {
        cx.sim().mark("last release of an unhashed entry frees it");
        self.forget(cx, entry, Gfp::GFP_KERNEL)
    }

    // --- entries -------------------------------------------------------------------------------

    /// Mirrors `mb_cache_entry_alloc()` as the seed has it: GFP_KERNEL.
    pub fn alloc(&self, cx: &Cx, cache: CacheRef) -> Result<Handle, MbError> {
        self.alloc_gfp(cx, cache, Gfp::GFP_KERNEL)
    }

    /// Mirrors `mb_cache_entry_alloc(cache, gfp_flags)`: a new, unhashed entry with one
    /// (exclusive) use. Without `alloc-gfp-nofs` the kernel has no gfp argument and allocates
    /// with GFP_KERNEL whatever the caller holds (the caller's `gfp` is ignored).
    pub fn alloc_gfp(&self, cx: &Cx, cache: CacheRef, gfp: Gfp) -> Result<Handle, MbError> {
        let gfp = if self.fixes.on(crate::fixes::ALLOC_GFP_NOFS) { gfp } else { Gfp::GFP_KERNEL };
        let detail = || format!("{gfp:?}");
        self.traced(cx, &call::ALLOC, [u64::from(gfp.0)], detail, || {
            let info = self.cache(cx, cache.0)?;
            if !self.fixes.on(crate::fixes::ENTRY_COUNT_AFTER_ALLOC) {
                info.entry_count.fetch_add(1, Ordering::SeqCst);
            }
            let serial = self.next_serial.fetch_add(1, StdOrdering::Relaxed);
            // kmem_cache_alloc(cache->c_entry_cache, gfp_flags).
            if let Err(errno) = slab_precheck(cx, gfp, info.name, info.entry_size) {
                cx.sim().mark("entry allocation failed");
                return Err(MbError::Errno(errno));
            }
            let used = if self.fixes.on(crate::fixes::EXCLUSIVE_GET) { 1 + MB_CACHE_WRITER } else { 1 };
            let entry = {
                let mut memory = self.memory();
                memory.caches.get_mut(cx, cache.0).map_err(freed)?.entries_live += 1;
                let entry = EntryRef(memory.entries.insert(Entry {
                    cache: cache.0,
                    bdev: 0,
                    block: 0,
                    block_list: ListHead::UNINIT,
                    id: serial,
                    lru: LruLink::new(ListHead::UNINIT),
                    used,
                    queued: 0,
                    lru_stamp: 0,
                    free_failed: false,
                }));
                memory.set_indexes(entry, Indexes::new(info.indexes_count));
                // INIT_LIST_HEAD of both lists: links to itself only, off the LRU and unhashed.
                memory.init_entry_links(cx, entry)?;
                entry
            };
            if self.fixes.on(crate::fixes::ENTRY_COUNT_AFTER_ALLOC) {
                info.entry_count.fetch_add(1, Ordering::SeqCst);
            }
            Ok(self.new_handle(entry, cache.0, serial))
        })
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
        let args = [handle.serial, bdev, block].into_iter().chain(keys.iter().map(|&key| u64::from(key)));
        let detail = || format!("entry {} bdev={bdev:#x} block={block} keys={keys:?}", handle.serial);
        self.traced(cx, &call::INSERT, args, detail, || {
            self.check_handle(cx, handle, "mb_cache_entry_insert")?;
            let (entry, cache) = (handle.entry, handle.cache);
            let (indexes_count, bucket_bits) = self.geometry(cx, cache)?;
            if keys.len() != indexes_count as usize {
                return Err(MbError::Errno(Errno::EINVAL));
            }
            let bucket = hash_long(bdev.wrapping_add(block & 0xffff_ffff), bucket_bits);
            let mut locked_global = self.lock(cx);
            let mut mem = locked_global.mem();
            let head = Node::Head(HeadId::Block(cache, bucket));
            // list_for_each_prev over the bucket.
            let mut at = list::prev(&mut mem, head, "list_for_each_prev")?;
            while at != head {
                let Node::Block(other) = at else { panic!("block chain holds {at:?}") };
                let other = mem.entry(other)?;
                if other.bdev == bdev && other.block == block {
                    drop(locked_global);
                    cx.sim().mark("insert found the block hashed: EBUSY");
                    return Err(MbError::Errno(Errno::EBUSY));
                }
                at = list::prev(&mut mem, at, "list_for_each_prev")?;
            }
            Self::unhash(&mut mem, entry)?;
            let object = mem.entry_mut(entry)?;
            object.bdev = bdev;
            object.block = block;
            list::list_add(&mut mem, Node::Block(entry), head)?;
            for (index, key) in keys.iter().enumerate() {
                mem.indexes_mut(entry)?[index].key = *key;
                let bucket = hash_long(u64::from(*key), bucket_bits);
                list::list_add(
                    &mut mem,
                    Node::Index(entry, index as u32),
                    Node::Head(HeadId::index(cache, index as u32, bucket)),
                )?;
            }
            drop(locked_global);
            Ok(())
        })
    }

    /// `spin_lock(&mb_cache_spinlock)` of a call that gives `handle` up (release, free), with
    /// the handle retired from the table under the `Memory` guard the critical section takes
    /// anyway: one guard for the section. A handle already released is reported (after the lock
    /// is dropped again: the kernel would go on to drop a use it does not hold). Inlined always:
    /// as a call it moved the held section out through its `Result`.
    #[inline(always)]
    fn lock_retiring<'a>(&'a self, cx: &'a Cx, handle: &Handle, what: &str) -> Result<Locked<'a>, MbError> {
        let mut locked_global = self.lock(cx);
        if locked_global.mem().memory.handles.remove(handle.id) {
            return Ok(locked_global);
        }
        drop(locked_global);
        Err(Self::released(cx, handle, what))
    }

    /// Mirrors `mb_cache_entry_release()`.
    pub fn release(&self, cx: &Cx, handle: Handle) -> Result<(), MbError> {
        let serial = handle.serial;
        let detail = || format!("entry {serial}");
        self.traced(cx, &call::RELEASE, [serial], detail, || {
            // `lock_retiring` and `release_unlock`, written out so that the section is dropped
            // where it lives: `lock_retiring`'s `Result` and `release_unlock`'s argument moved it.
            let forget = {
                let mut locked_global = self.lock(cx);
                if !locked_global.mem().memory.handles.remove(handle.id) {
                    drop(locked_global);
                    return Err(Self::released(cx, &handle, "mb_cache_entry_release"));
                }
                self.release_held(&mut locked_global, handle.entry)?
            };
            if forget {
                return self.forget_last(cx, handle.entry);
            }
            Ok(())
        })
    }

    /// Mirrors `mb_cache_entry_takeout()`: unhashes the entry; the handle stays held. Gone from
    /// the API with `takeout-dup-removed` (ENOSYS here).
    pub fn takeout(&self, cx: &Cx, handle: &Handle) -> Result<(), MbError> {
        let serial = handle.serial;
        let detail = || format!("entry {serial}");
        self.traced(cx, &call::TAKEOUT, [serial], detail, || {
            if self.fixes.on(crate::fixes::TAKEOUT_DUP_REMOVED) {
                return Err(MbError::Errno(Errno::ENOSYS));
            }
            self.check_handle(cx, handle, "mb_cache_entry_takeout")?;
            let mut locked_global = self.lock(cx);
            Self::unhash(&mut locked_global.mem(), handle.entry)?;
            cx.sim().mark("entry taken out");
            drop(locked_global);
            Ok(())
        })
    }

    /// Mirrors `mb_cache_entry_free()`: takeout and release in one.
    pub fn free(&self, cx: &Cx, handle: Handle) -> Result<(), MbError> {
        let serial = handle.serial;
        let detail = || format!("entry {serial}");
        self.traced(cx, &call::FREE, [serial], detail, || {
            let mut locked_global = self.lock_retiring(cx, &handle, "mb_cache_entry_free")?;
            Self::unhash(&mut locked_global.mem(), handle.entry)?;
            cx.sim().mark("entry freed through a handle");
            self.release_unlock(locked_global, handle.entry)
        })
    }

    /// Mirrors `mb_cache_entry_dup()`: a second handle to the same entry, counted without the
    /// lock. Gone from the API with `takeout-dup-removed` (ENOSYS here). Kept beside
    /// `exclusive-get` it breaks the writer count: releasing either copy of an exclusive handle
    /// drops the whole `MB_CACHE_WRITER` bias, one reason the API lost it.
    pub fn dup(&self, cx: &Cx, handle: &Handle) -> Result<Handle, MbError> {
        let serial = handle.serial;
        let detail = || format!("entry {serial}");
        self.traced(cx, &call::DUP, [serial], detail, || {
            if self.fixes.on(crate::fixes::TAKEOUT_DUP_REMOVED) {
                return Err(MbError::Errno(Errno::ENOSYS));
            }
            self.check_handle(cx, handle, "mb_cache_entry_dup")?;
            // atomic_inc(&ce->e_used) without the lock: a point where another task may run.
            self.preemption_point();
            *self.memory().entry_use_mut(cx, handle.entry)?.used += 1;
            cx.sim().mark("handle duplicated");
            Ok(self.new_handle(handle.entry, handle.cache, handle.serial))
        })
    }

    /// Takes a use of `entry`, found on a chain under the lock: off the LRU, `e_used` up, and with
    /// `exclusive-get` the wait for exclusive (`writer`) or shared access. Returns the held lock,
    /// or None when the entry was unhashed while waiting (its use dropped again, lock released).
    pub(crate) fn take_use<'a>(
        &'a self,
        mut locked_global: Locked<'a>,
        entry: EntryRef,
        writer: bool,
    ) -> Result<Option<Locked<'a>>, MbError> {
        match self.take_use_unwaited(&mut locked_global, entry, writer)? {
            Some(true) => Ok(Some(locked_global)),
            Some(false) => self.unhashed_while_waiting(locked_global, entry),
            None => self.wait_for_use(locked_global, entry, writer),
        }
    }

    /// [`Registry::take_use`] up to its wait, with the lock held throughout: off the LRU,
    /// `free_failed` cleared, a reader's use counted, and, when the entry is not busy, a writer's.
    /// Some(whether the entry is hashed) when no wait is needed; None when the caller must wait
    /// ([`Registry::wait_for_use`]). Borrows the section rather than taking it, so a lookup that
    /// does not wait (every lookup without `exclusive-get`, and most with it) keeps its lock where
    /// it is, with no move of the guard in and out of a call.
    #[inline(always)]
    fn take_use_unwaited(
        &self,
        locked_global: &mut Locked<'_>,
        entry: EntryRef,
        writer: bool,
    ) -> Result<Option<bool>, MbError> {
        let exclusive = self.fixes.on(crate::fixes::EXCLUSIVE_GET);
        let mut mem = locked_global.mem();
        // `if (!list_empty(&ce->e_lru_list)) list_del_init(&ce->e_lru_list);`, the entry looked
        // up for the reads and once more for its writes (not once per list step).
        let object = mem.lru_del_init_for_use(entry)?;
        *object.free_failed = false;
        // Readers count themselves before waiting, which gives them priority over writers.
        if !exclusive || !writer {
            *object.used += 1;
        }
        if !exclusive {
            // No wait without `exclusive-get`, and no recheck of the hash.
            return Ok(Some(true));
        }
        if Self::busy(*object.used, writer) {
            return Ok(None);
        }
        if writer {
            *object.used += 1 + MB_CACHE_WRITER;
        }
        // `__mb_cache_entry_is_hashed()`, as `Registry::is_hashed` reads it: the lock was held
        // throughout, so this is what the wait loop's recheck would read.
        Ok(Some(object.block_list.next != list::Link::To(Node::Block(entry))))
    }

    /// Whether an entry with `used` uses makes a lookup wait (`exclusive-get`): a writer waits
    /// for any use, a reader for a writer's.
    fn busy(used: u32, writer: bool) -> bool {
        if writer {
            used > 0
        } else {
            used >= MB_CACHE_WRITER
        }
    }

    /// The rest of [`Registry::take_use`] when the entry was busy (`exclusive-get`): sleep on
    /// `mb_cache_queue` until it is not (or, in the one-thread simulation, give the reader's use
    /// back and return `WouldBlock`), then a writer's use and the recheck of the hash.
    #[cold]
    fn wait_for_use<'a>(
        &'a self,
        mut locked_global: Locked<'a>,
        entry: EntryRef,
        writer: bool,
    ) -> Result<Option<Locked<'a>>, MbError> {
        let cx = locked_global.cx;
        while Self::busy(locked_global.mem().entry(entry)?.used, writer) {
            if self.waits == Waits::WouldBlock {
                if !writer {
                    *locked_global.mem().entry_use_mut(entry)?.used -= 1;
                }
                cx.sim().mark("lookup would wait for a busy entry");
                return Err(MbError::WouldBlock);
            }
            *locked_global.mem().entry_use_mut(entry)?.queued += 1;
            locked_global.unlock_memory();
            let seen = self.wakeups.load(Ordering::SeqCst);
            drop(locked_global);
            cx.sim().mark("lookup slept on mb_cache_queue");
            self.queue.wait_event(cx, || self.wakeups.load(Ordering::SeqCst) != seen);
            locked_global = self.lock(cx);
            *locked_global.mem().entry_use_mut(entry)?.queued -= 1;
        }
        if writer {
            *locked_global.mem().entry_use_mut(entry)?.used += 1 + MB_CACHE_WRITER;
        }
        if !Self::is_hashed(&mut locked_global.mem(), entry)? {
            return self.unhashed_while_waiting(locked_global, entry);
        }
        Ok(Some(locked_global))
    }

    /// The end of a lookup whose entry is no longer hashed: its use dropped again, no entry.
    fn unhashed_while_waiting<'a>(
        &'a self,
        locked_global: Locked<'a>,
        entry: EntryRef,
    ) -> Result<Option<Locked<'a>>, MbError> {
        locked_global.cx.sim().mark("lookup waited for an entry that was freed meanwhile");
        self.release_unlock(locked_global, entry)?;
        Ok(None)
    }

    /// Mirrors `mb_cache_entry_get()`: the entry for (`bdev`, `block`), or None.
    pub fn get(&self, cx: &Cx, cache: CacheRef, bdev: u64, block: u64) -> Result<Option<Handle>, MbError> {
        let detail = || format!("bdev={bdev:#x} block={block}");
        self.traced(cx, &call::GET, [bdev, block], detail, || {
            match self.get_locked(cx, cache, bdev, block)? {
                Got::Found(handle, first_found) => {
                    if first_found {
                        cx.sim().mark("get found an entry");
                    }
                    Ok(Some(handle))
                }
                Got::Answered(answer) => Ok(answer),
            }
        })
    }

    /// [`Registry::get`] under the section: the walk, the use and the handle, or, when the
    /// entry is busy or no longer hashed, [`Registry::get_waited`]'s answer. The section is
    /// dropped where it lives, at the end of this call (`drop(locked_global)` moved it, a copy
    /// of the 72-byte [`Locked`] a get; callgrind of the bench's `MBCACHE_PROFILE_PAIRS`).
    #[inline(always)]
    fn get_locked(&self, cx: &Cx, cache: CacheRef, bdev: u64, block: u64) -> Result<Got, MbError> {
        let mut locked_global = self.lock(cx);
        let found = {
            let mut mem = locked_global.mem();
            // `c_bucket_bits` is fixed at create: the kernel reads it before taking the lock,
            // read here under the memory guard the walk takes anyway, from the same look-up
            // of the cache as the bucket head's `next` (`list::next`'s read of the head).
            let object = mem.cache(cache.0)?;
            let bucket = hash_long(bdev.wrapping_add(block & 0xffff_ffff), object.info.bucket_bits);
            let head = Node::Head(HeadId::Block(cache.0, bucket));
            // The walk matches each link itself (`list::follow`'s step, the entry it points at
            // kept as an `EntryRef`), so that a step holds the entry in registers instead of
            // a whole `Node` on the stack; `prev` names the node a bad link was read from.
            let mut link = object.block[bucket as usize].next;
            let mut prev = None;
            loop {
                // `pos != head`, asked only of a node that is not an entry's `e_block_list`
                // (an entry's node is never the head), so a step compares one tag.
                let entry = match link {
                    list::Link::To(Node::Block(entry)) => entry,
                    list::Link::To(at) if at == head => break None,
                    list::Link::To(at) => panic!("block chain holds {at:?}"),
                    bad => {
                        let at = prev.map_or(head, Node::Block);
                        return Err(list::follow(&mut mem, at, bad, "list_for_each")
                            .expect_err("a bad link")
                            .into());
                    }
                };
                let object = mem.entry(entry)?;
                if object.bdev == bdev && object.block == block {
                    break Some((entry, object.id));
                }
                // `pos->member.next` of the entry just read: one dereference per node.
                link = object.block_list.next;
                prev = Some(entry);
            }
        };
        let Some((entry, serial)) = found else {
            return Ok(Got::Answered(None));
        };
        // `take_use`, with the section borrowed (not moved through a call or an `Option`)
        // where no wait is needed; the rest of `take_use` is a cold call of its own.
        match self.take_use_unwaited(&mut locked_global, entry, true)? {
            Some(true) => {
                let (handle, first_found) = Self::got(&mut locked_global, entry, cache, serial);
                Ok(Got::Found(handle, first_found))
            }
            unwaited => self.get_waited(locked_global, entry, cache, serial, unwaited).map(Got::Answered),
        }
    }

    /// The end of [`Registry::get`] with a use of `entry` taken, under the section: its handle,
    /// and whether it is the registry's first found entry (the caller drops the section, then
    /// makes the coverage mark). Inlined always, and the section borrowed: moved into a call, or
    /// dropped inside one, it was copied twice (about 20 instructions a get, callgrind).
    #[inline(always)]
    fn got(locked_global: &mut Locked<'_>, entry: EntryRef, cache: CacheRef, serial: u64) -> (Handle, bool) {
        let handle = locked_global.new_handle(entry, cache.0, serial);
        let first_found = !std::mem::replace(&mut locked_global.mem().memory.get_found_marked, true);
        (handle, first_found)
    }

    /// The rest of [`Registry::get`] when [`Registry::take_use_unwaited`] said `unwaited`: the
    /// entry is busy (`exclusive-get`: wait, [`Registry::wait_for_use`]) or no longer hashed.
    #[cold]
    fn get_waited(
        &self,
        locked_global: Locked<'_>,
        entry: EntryRef,
        cache: CacheRef,
        serial: u64,
        unwaited: Option<bool>,
    ) -> Result<Option<Handle>, MbError> {
        let cx = locked_global.cx;
        let relocked = match unwaited {
            Some(true) => Some(locked_global),
            Some(false) => self.unhashed_while_waiting(locked_global, entry)?,
            None => self.wait_for_use(locked_global, entry, true)?,
        };
        // The fixed kernel returns NULL for an entry unhashed while it waited.
        let Some(mut relocked) = relocked else {
            cx.sim().mark("get returned NULL for an entry freed while it waited");
            return Ok(None);
        };
        let (handle, first_found) = Self::got(&mut relocked, entry, cache, serial);
        drop(relocked);
        if first_found {
            cx.sim().mark("get found an entry");
        }
        Ok(Some(handle))
    }

    /// Mirrors `__mb_cache_entry_find()`: from `start` along index chain `index` up to `head`,
    /// the first entry of `bdev` with `key`, with a use taken. Returns the lock (it may have been
    /// dropped and retaken while waiting) and the entry.
    pub(crate) fn find_from<'a>(
        &'a self,
        mut locked_global: Locked<'a>,
        at: Node,
        head: Node,
        index: u32,
        bdev: u64,
        key: u32,
    ) -> Result<(Locked<'a>, Found), MbError> {
        let cx = locked_global.cx;
        let found = {
            let mut mem = locked_global.mem();
            let mut at = at;
            loop {
                // `pos != head`, asked only of a node that is not an entry's index link (an
                // entry's node is never the head), as in `Registry::get`'s walk.
                let Node::Index(entry, at_index) = at else {
                    if at == head {
                        break None;
                    }
                    // The walk left the bucket it started in (prev was re-hashed elsewhere) and
                    // reached another list head, which the kernel would read as an entry.
                    let violation = Violation::new(
                        ViolationKind::finding("wild-pointer"),
                        format!(
                            "__mb_cache_entry_find: reached {at:?} instead of {head:?}: \
                             the kernel reads a list head as an entry"
                        ),
                    );
                    cx.sim().report(Some(cx), violation.clone());
                    return Err(MbError::Oops(Box::new(violation)));
                };
                let (object, indexes) = mem.entry_and_indexes(entry)?;
                if object.bdev == bdev && indexes[index as usize].key == key {
                    break Some((entry, object.id));
                }
                // `pos->member.next` of the entry just read: one dereference per node.
                let link = indexes[at_index as usize].list.next;
                at = list::follow(&mut mem, at, link, "__mb_cache_entry_find")?;
            }
        };
        let Some((entry, serial)) = found else {
            return Ok((locked_global, Ok(None)));
        };
        Ok(match self.take_use(locked_global, entry, false)? {
            Some(relocked) => (relocked, Ok(Some((entry, serial)))),
            // Unhashed while waiting: the lock is taken again for the caller to drop.
            None => {
                cx.sim().mark("find returned EAGAIN for an entry freed while it waited");
                (self.lock(cx), Err(Errno::EAGAIN))
            }
        })
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
        let args = [u64::from(index), bdev, u64::from(key)];
        let detail = || format!("index={index} bdev={bdev:#x} key={key}");
        self.traced(cx, &call::FIND_FIRST, args, detail, || {
            let (indexes_count, bucket_bits) = self.geometry(cx, cache.0)?;
            if index >= indexes_count {
                return Err(MbError::Errno(Errno::EINVAL));
            }
            let bucket = hash_long(u64::from(key), bucket_bits);
            let locked_global = self.lock(cx);
            let head = Node::Head(HeadId::index(cache.0, index, bucket));
            let mut locked_global = locked_global;
            let first = list::next(&mut locked_global.mem(), head, "c_indexes_hash[index][bucket].next")?;
            let (mut locked_global, found) = self.find_from(locked_global, first, head, index, bdev, key)?;
            let handle = match found {
                Ok(Some((entry, serial))) => Some(locked_global.new_handle(entry, cache.0, serial)),
                _ => None,
            };
            drop(locked_global);
            match found {
                Ok(Some(_)) => {
                    cx.sim().mark("find_first found an entry");
                    Ok(handle)
                }
                Ok(None) => Ok(None),
                Err(errno) => Err(MbError::Errno(errno)),
            }
        })
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
        let args = [prev.serial, u64::from(index), bdev, u64::from(key)];
        let detail = || format!("after entry {} index={index} bdev={bdev:#x} key={key}", prev.serial);
        self.traced(cx, &call::FIND_NEXT, args, detail, || {
            self.check_handle(cx, &prev, "mb_cache_entry_find_next")?;
            let (indexes_count, bucket_bits) = self.geometry(cx, prev.cache)?;
            if index >= indexes_count {
                return Err(MbError::Errno(Errno::EINVAL));
            }
            let bucket = hash_long(u64::from(key), bucket_bits);
            let mut locked_global = self.lock(cx);
            let head = Node::Head(HeadId::index(prev.cache, index, bucket));
            let after = list::next(
                &mut locked_global.mem(),
                Node::Index(prev.entry, index),
                "prev->e_indexes[index].o_list.next",
            )?;
            let (mut locked_global, found) = self.find_from(locked_global, after, head, index, bdev, key)?;
            locked_global.mem().memory.handles.remove(prev.id);
            cx.sim().mark("find_next walked on");
            self.release_unlock(locked_global, prev.entry)?;
            match found {
                Ok(Some((entry, serial))) => {
                    cx.sim().mark("find_next found another entry");
                    Ok(Some(self.new_handle(entry, prev.cache, serial)))
                }
                Ok(None) => Ok(None),
                Err(errno) => Err(MbError::Errno(errno)),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::{TraceWords, Words};
    use crate::registry::MbError;
    use sim_core::Errno;

    /// A stand-in for a handle (its two words), since a real one needs a live registry.
    #[derive(Debug)]
    struct Pair(u64, u64);

    impl TraceWords for Pair {
        fn trace_words(&self, out: &mut Words) {
            out.push(self.0);
            out.push(self.1);
        }
    }

    fn words(value: &impl TraceWords) -> Vec<u64> {
        let mut out = Words::default();
        value.trace_words(&mut out);
        out.as_slice().to_vec()
    }

    /// Results that print differently must hash differently, or a trace hash could not tell
    /// apart two runs that a kept trace shows to differ.
    #[test]
    fn results_that_print_differently_have_different_trace_words() {
        let results: Vec<Result<Option<Pair>, MbError>> = vec![
            Ok(None),
            Ok(Some(Pair(1, 2))),
            Ok(Some(Pair(2, 1))),
            Err(MbError::Errno(Errno::EBUSY)),
            Err(MbError::Errno(Errno::EINVAL)),
            Err(MbError::WouldBlock),
        ];
        for (i, a) in results.iter().enumerate() {
            for b in &results[i + 1..] {
                assert_ne!(format!("{a:?}"), format!("{b:?}"));
                assert_ne!(words(a), words(b), "{a:?} and {b:?}");
            }
        }
        let unit: [Result<(), MbError>; 2] = [Ok(()), Err(MbError::Errno(Errno::EBUSY))];
        assert_ne!(words(&unit[0]), words(&unit[1]));
    }
}
