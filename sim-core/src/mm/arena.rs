//! A slab cache as flat, generation-checked storage: `kmem_cache_alloc`, `kmem_cache_free`,
//! `kmem_cache_destroy` (mm/slab_common.c) over a `Vec` of slots, for models whose objects are
//! reached on a hot path (hash chains walked node by node) and whose memory is already guarded
//! by one lock of the model's choosing.
//!
//! [`super::KmemCache`] keeps each object in an `Arc` behind the cache's own mutex, so every
//! dereference is a lock and a reference-count round trip. A [`SlabArena`] is plain data instead:
//! the model keeps it where its objects' memory lives (typically inside one checker-private `std`
//! mutex taken once per critical section), and a dereference is an index and a generation
//! compare. What the kernel's debug options add is kept: live-object accounting (a leak reported
//! at destroy), and handles ([`ArenaRef`]) that carry the slot's generation, so a use after free
//! or a double free is a reported violation of the same kinds as `KmemCache`'s
//! (`use-after-free`, `double-free`), even after the slot was reused.
//!
//! Allocation is split in two because the arena sits under the model's lock: [`slab_precheck`]
//! makes `kmem_cache_alloc`'s side effects (it may sleep, `fs_reclaim`, failslab, direct reclaim,
//! whose shrinkers may take that same lock) with no lock of the arena's held; then
//! [`SlabArena::insert`] places the object. Left out, as in `KmemCache`: slab merging, per-CPU
//! freelists, constructors, RCU-delayed freeing.
//!
//! [`SharedArena`] is the same cache for objects no one lock guards, reached concurrently by
//! tasks holding different locks or none (mbcache2's entries): slots in chunks that never move,
//! a slot's state a `std` atomic, so a dereference takes no lock either, and freed slots
//! quarantined for a while (as KASAN's quarantine delays reuse), then reused with their objects
//! rewritten in place ([`Recycle`]).

use std::collections::VecDeque;
use std::fmt;
use std::marker::PhantomData;
use std::sync::atomic::{AtomicU32 as StdAtomicU32, AtomicU64 as StdAtomicU64, Ordering as StdOrdering};
use std::sync::{Mutex as StdMutex, OnceLock, PoisonError};

use crate::cx::Cx;
use crate::errno::Errno;
use crate::fault::{FaultKind, SiteRef};
use crate::mm::reclaim::{maybe_direct_reclaim, might_alloc};
use crate::mm::slab::destroy_check;
use crate::mm::{Gfp, MmError};
use crate::sim::Violation;

/// A pointer to an object of a [`SlabArena`]: the slot and the generation it was allocated in.
pub struct ArenaRef<T> {
    index: u32,
    generation: u32,
    _type: PhantomData<fn() -> T>,
}

generation_handle_impls!(ArenaRef);

impl<T> ArenaRef<T> {
    /// The slot index (stable while the object lives; reused after it is freed).
    pub fn index(self) -> u32 {
        self.index
    }
}

/// The generation first, so a dereference's compare and the object's first fields share a
/// cache line (mbcache puts what a chain walk reads at the front of its entries).
#[repr(C)]
struct Slot<T> {
    generation: u32,
    object: Option<T>,
}

// What the layout comments claim: an 8-aligned object (mbcache's entry) starts right after the
// generation word, and a `SharedSlot` of a 16-byte object is the 32 bytes its comment counts.
const _: () = assert!(std::mem::offset_of!(Slot<[u64; 4]>, object) == 8);
const _: () = assert!(std::mem::size_of::<SharedSlot<[u64; 2]>>() == 32);

/// `struct kmem_cache` for objects of type `T`, stored flat. Plain data: the model decides which
/// lock guards it.
pub struct SlabArena<T> {
    name: &'static str,
    slots: Vec<Slot<T>>,
    free: Vec<u32>,
    live: u64,
    allocations: u64,
}

impl<T> fmt::Debug for SlabArena<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SlabArena").field("name", &self.name).field("live", &self.live).finish()
    }
}

/// `kmem_cache_alloc(cache, gfp)`'s side effects for a cache named `name` of `object_size`-byte
/// objects, made before the object exists: may sleep when `gfp` allows blocking, and may then
/// enter the filesystem in reclaim when `gfp` has `__GFP_FS` (checked against the locks held);
/// fails with ENOMEM when the fault plan says so (slab fault site `name`, as `KmemCache`'s); enters
/// direct reclaim when the reclaim plan says so. Call it with no lock held that guards the
/// arena: a shrinker run by reclaim may take it.
#[track_caller]
pub fn slab_precheck(cx: &Cx, gfp: Gfp, name: &str, object_size: u64) -> Result<(), Errno> {
    might_alloc(cx, gfp, "kmem_cache_alloc");
    let site = SiteRef { kind: FaultKind::Slab, name };
    if cx.sim().should_fail_at(cx, site, object_size) {
        return Err(Errno::ENOMEM);
    }
    maybe_direct_reclaim(cx, gfp, site, object_size);
    Ok(())
}

impl<T> SlabArena<T> {
    /// `kmem_cache_create(name, ...)`: an empty cache.
    pub fn new(name: &'static str) -> Self {
        SlabArena { name, slots: Vec::new(), free: Vec::new(), live: 0, allocations: 0 }
    }

    /// The cache name.
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// Objects allocated and not yet freed.
    pub fn live(&self) -> u64 {
        self.live
    }

    /// Successful allocations over the cache's life.
    pub fn allocations(&self) -> u64 {
        self.allocations
    }

    /// The second half of `kmem_cache_alloc`, after [`slab_precheck`] passed: places `object` in
    /// a free slot (the most recently freed first, as a slab's freelist hands it out).
    pub fn insert(&mut self, object: T) -> ArenaRef<T> {
        self.live += 1;
        self.allocations += 1;
        let index = match self.free.pop() {
            Some(index) => {
                self.slots[index as usize].object = Some(object);
                index
            }
            None => {
                self.slots.push(Slot { generation: 0, object: Some(object) });
                (self.slots.len() - 1) as u32
            }
        };
        ArenaRef { index, generation: self.slots[index as usize].generation, _type: PhantomData }
    }

    /// The object, if `handle` is live (no report either way).
    #[inline]
    pub fn peek(&self, handle: ArenaRef<T>) -> Option<&T> {
        let slot = self.slots.get(handle.index as usize)?;
        if slot.generation != handle.generation {
            return None;
        }
        slot.object.as_ref()
    }

    /// Dereferences `handle`. A freed object is a use after free: reported from `cx`, and an
    /// error.
    #[inline]
    pub fn get(&self, cx: &Cx, handle: ArenaRef<T>) -> Result<&T, MmError> {
        match self.peek(handle) {
            Some(object) => Ok(object),
            None => Err(use_after_free(self.name, cx, handle)),
        }
    }

    /// Dereferences `handle` for writing; a freed object is reported as [`SlabArena::get`] does.
    #[inline]
    pub fn get_mut(&mut self, cx: &Cx, handle: ArenaRef<T>) -> Result<&mut T, MmError> {
        // One look at the slot: the generation compare and the object in the same borrow.
        let name = self.name;
        match self.slots.get_mut(handle.index as usize) {
            Some(Slot { generation, object: Some(object) }) if *generation == handle.generation => Ok(object),
            _ => Err(use_after_free(name, cx, handle)),
        }
    }

    /// Whether `handle`'s object is still allocated (no report either way).
    #[inline]
    pub fn is_live(&self, handle: ArenaRef<T>) -> bool {
        self.peek(handle).is_some()
    }

    /// `kmem_cache_free(cache, object)`: returns the object; its slot's generation moves on, so
    /// every copy of `handle` is dangling. Freeing twice is reported and an error.
    pub fn free(&mut self, cx: &Cx, handle: ArenaRef<T>) -> Result<T, MmError> {
        let freed = match self.slots.get_mut(handle.index as usize) {
            Some(slot) if slot.generation == handle.generation && slot.object.is_some() => {
                slot.generation = slot.generation.wrapping_add(1);
                slot.object.take()
            }
            _ => None,
        };
        match freed {
            Some(object) => {
                self.live -= 1;
                self.free.push(handle.index);
                Ok(object)
            }
            None => {
                let error = MmError::DoubleFree { cache: self.name, handle: format!("{handle:?}") };
                cx.sim().report(Some(cx), Violation::new("double-free", error.to_string()));
                Err(error)
            }
        }
    }

    /// The live objects with their handles, in slot order (deterministic), allocating nothing.
    pub fn iter(&self) -> impl Iterator<Item = (ArenaRef<T>, &T)> + '_ {
        self.slots.iter().enumerate().filter_map(|(index, slot)| {
            let handle = ArenaRef { index: index as u32, generation: slot.generation, _type: PhantomData };
            slot.object.as_ref().map(|object| (handle, object))
        })
    }

    /// `kmem_cache_destroy()`: objects still allocated are a leak, reported with their count.
    pub fn destroy(&self, cx: &Cx) -> Result<(), Violation> {
        destroy_check(cx, self.name, self.live)
    }

    /// `kmem_cache_destroy()` of one of several caches kept in one arena (a model that puts the
    /// objects of all its caches in one flat table and counts each cache's live objects itself):
    /// reports the cache's `live` objects (its own count, not the arena's) as a leak under
    /// `name`, as [`SlabArena::destroy`] does, and frees nothing: 2.6's outcome (mm/slab.c:
    /// `__cache_shrink()` cannot free them, so the cache and its objects stay valid memory).
    /// Returns whether it reported. An associated function: it reads nothing of the arena, so a
    /// caller can report after dropping the lock the arena is kept under.
    pub fn report_leak(cx: &Cx, name: &str, live: u64) -> bool {
        destroy_check(cx, name, live).is_err()
    }
}

/// Reports a dereference of a freed object of cache `name` through `handle`: off the hot path,
/// so the checks that precede it inline into their callers.
#[cold]
#[inline(never)]
fn use_after_free<T>(name: &'static str, cx: &Cx, handle: ArenaRef<T>) -> MmError {
    let error = MmError::UseAfterFree { cache: name, handle: format!("{handle:?}") };
    cx.sim().report(Some(cx), Violation::new("use-after-free", error.to_string()));
    error
}

/// Slots in a [`SharedArena`]'s first chunk; chunk `k` holds `FIRST_CHUNK_SLOTS << k`.
const FIRST_CHUNK_SLOTS_LOG2: u32 = 3;
/// Chunks a [`SharedArena`] may grow to: enough for every `u32` slot index.
const SHARED_CHUNKS: usize = 30;
const _: () = assert!(
    (1u64 << (SHARED_CHUNKS as u32 + FIRST_CHUNK_SLOTS_LOG2)) - (1 << FIRST_CHUNK_SLOTS_LOG2)
        > u32::MAX as u64
);
/// Freed slots a [`SharedArena`] holds back before it hands the oldest out again (KASAN's
/// quarantine, counted in objects rather than bytes).
pub const SHARED_QUARANTINE: usize = 64;

/// A slot's state word: the generation shifted left by one, and bit 0 set while allocated.
const SLOT_LIVE: u64 = 1;

/// An object a [`SharedArena`] makes from an initial state, in a new slot or in a slot that held
/// an earlier, freed one. Objects in a `SharedArena` are reached through shared references only
/// (no lock guards them), so a reused slot's object is rewritten field by field, through its
/// fields' own interior mutability, as the slab's reuse of the memory and the new object's
/// initialisation write it in the kernel; memory the object owns (a boxed cold part) is kept.
pub trait Recycle: Sized {
    /// What a new object is made from (the constructor's arguments).
    type Init;
    /// A new object, for a slot never handed out before.
    fn create(init: Self::Init) -> Self;
    /// Makes `self`, a freed object, what [`Recycle::create`] would make of `init`. Called with
    /// the slot dead: every handle still naming it is stale and fails its generation check.
    fn recycle(&self, init: Self::Init);
}

/// One slot of a [`SharedArena`]: its state word (instrumentation, a `std` atomic) and the
/// object, written when the slot is first handed out and recycled in place when it is reused.
/// Aligned to 32 bytes: a slot of up to 32 bytes (the state word and a 24-byte `OnceLock` of a
/// 16-byte object) never straddles two cache lines, and two share one, so a cache's slots are
/// half the memory they were as one line each; a model keeps what a lookup does not read
/// outside its objects (mbcache2's entry keeps a boxed cold part).
#[repr(align(32))]
struct SharedSlot<T> {
    state: StdAtomicU64,
    object: OnceLock<T>,
}

/// A slab cache as flat storage whose objects are reached with no lock at all: for objects whose
/// fields are the kernel's own synchronisation (facade atomics, [`crate::Guarded`] fields, bit
/// locks), reached concurrently under different locks or none, as mbcache2's entries are (a chain
/// walk under a bucket's bit lock, the LRU under `c_list_lock`, a holder's `put` under nothing).
///
/// Slots live in chunks that never move (chunk `k` holds `8 << k` slots, allocated when first
/// needed), so a dereference is an index computation, a `std` atomic load of the slot's state and
/// a compare: no lock, no reference count. The slot table is instrumentation (`std` atomics,
/// `OnceLock`s and a `std` mutex for the quarantine), so the threaded checkers see only the
/// objects' own synchronisation, as the kernel's slab allocator is invisible to lock ordering.
///
/// A freed slot's generation moves on at once, so every dereference through a stale
/// [`ArenaRef`] is a reported `use-after-free` and a second free a reported `double-free`, before
/// and after the slot is reused. Freed slots wait in a quarantine of [`SHARED_QUARANTINE`]
/// slots, oldest handed out first (KASAN's quarantine delays reuse the same way), and are then
/// reused, their objects rewritten in place through [`Recycle`]; so the slots a campaign uses are
/// bounded by the most objects live at once plus the quarantine, however long it runs. Live
/// objects are counted and a leak is reported at destroy, as [`SlabArena`]'s are.
///
/// Under the `threaded` feature the quarantine's hand-off of a slot from the freeing task to the
/// reusing one is a `std` mutex, which loom does not see: loom would judge the recycling writes
/// unordered with the old object's last accesses. Loom models free far fewer objects than the
/// quarantine holds, so no slot is reused inside one.
pub struct SharedArena<T> {
    name: &'static str,
    object_size: u64,
    chunks: [OnceLock<Box<[SharedSlot<T>]>>; SHARED_CHUNKS],
    /// The next slot never handed out.
    next: StdAtomicU32,
    /// Freed slots, oldest first.
    quarantine: StdMutex<VecDeque<u32>>,
    live: StdAtomicU64,
    allocations: StdAtomicU64,
}

impl<T> fmt::Debug for SharedArena<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SharedArena").field("name", &self.name).field("live", &self.live()).finish()
    }
}

/// The chunk and the offset in it of slot `index`.
#[inline]
fn shared_locate(index: u32) -> (usize, usize) {
    let shifted = u64::from(index) + (1 << FIRST_CHUNK_SLOTS_LOG2);
    let chunk = shifted.ilog2() - FIRST_CHUNK_SLOTS_LOG2;
    let offset = shifted - (1 << (chunk + FIRST_CHUNK_SLOTS_LOG2));
    (chunk as usize, offset as usize)
}

impl<T> SharedArena<T> {
    /// `kmem_cache_create(name, object_size, ...)`: an empty cache. `object_size` is what the
    /// fault plan's size filters see.
    pub fn new(name: &'static str, object_size: u64) -> Self {
        SharedArena {
            name,
            object_size,
            chunks: std::array::from_fn(|_| OnceLock::new()),
            next: StdAtomicU32::new(0),
            quarantine: StdMutex::new(VecDeque::new()),
            live: StdAtomicU64::new(0),
            allocations: StdAtomicU64::new(0),
        }
    }

    /// The cache name.
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// Objects allocated and not yet freed.
    pub fn live(&self) -> u64 {
        self.live.load(StdOrdering::Relaxed)
    }

    /// Successful allocations over the cache's life.
    pub fn allocations(&self) -> u64 {
        self.allocations.load(StdOrdering::Relaxed)
    }

    /// Slots ever handed out: the arena's memory, in objects.
    pub fn slots(&self) -> u32 {
        self.next.load(StdOrdering::Relaxed)
    }

    /// `kmem_cache_alloc(cache, gfp)` and the new object's initialisation from `init`:
    /// [`slab_precheck`]'s side effects (sleep, `fs_reclaim`, failslab's ENOMEM, direct reclaim),
    /// then the object made in a slot.
    #[track_caller]
    pub fn alloc(&self, cx: &Cx, gfp: Gfp, init: T::Init) -> Result<ArenaRef<T>, Errno>
    where
        T: Recycle,
    {
        slab_precheck(cx, gfp, self.name, self.object_size)?;
        Ok(self.insert(init))
    }

    /// The second half of `kmem_cache_alloc`, after [`slab_precheck`] passed: the object made
    /// from `init` in the oldest quarantined slot once the quarantine is full, else in a new slot.
    pub fn insert(&self, init: T::Init) -> ArenaRef<T>
    where
        T: Recycle,
    {
        let reused = {
            let mut quarantine = self.quarantine.lock().unwrap_or_else(PoisonError::into_inner);
            if quarantine.len() >= SHARED_QUARANTINE {
                quarantine.pop_front()
            } else {
                None
            }
        };
        let handle = match reused {
            Some(index) => self.reuse(index, init),
            None => self.fresh(T::create(init)),
        };
        self.allocations.fetch_add(1, StdOrdering::Relaxed);
        self.live.fetch_add(1, StdOrdering::Relaxed);
        handle
    }

    /// `object` in a slot never handed out before.
    fn fresh(&self, object: T) -> ArenaRef<T> {
        let index = self.next.fetch_add(1, StdOrdering::Relaxed);
        assert!(index != u32::MAX, "SharedArena {}: slot indices exhausted", self.name);
        let (chunk, offset) = shared_locate(index);
        let slots = self.chunks[chunk].get_or_init(|| {
            let len = 1usize << (chunk as u32 + FIRST_CHUNK_SLOTS_LOG2);
            (0..len).map(|_| SharedSlot { state: StdAtomicU64::new(0), object: OnceLock::new() }).collect()
        });
        let slot = &slots[offset];
        if slot.object.set(object).is_err() {
            unreachable!("SharedArena {}: slot {index} handed out twice", self.name);
        }
        slot.state.store(SLOT_LIVE, StdOrdering::Release);
        ArenaRef { index, generation: 0, _type: PhantomData }
    }

    /// The object made from `init` in freed slot `index`, taken from the quarantine: the dead
    /// object is recycled in place, then the slot is live in the generation its free moved it to.
    fn reuse(&self, index: u32, init: T::Init) -> ArenaRef<T>
    where
        T: Recycle,
    {
        let (chunk, offset) = shared_locate(index);
        let slot = self.chunks[chunk].get().and_then(|slots| slots.get(offset));
        let Some(slot) = slot else {
            unreachable!("SharedArena {}: quarantined slot {index} missing", self.name)
        };
        let state = slot.state.load(StdOrdering::Acquire);
        assert!(state & SLOT_LIVE == 0, "SharedArena {}: quarantined slot {index} is live", self.name);
        let Some(dead) = slot.object.get() else { unreachable!("a freed slot has its object") };
        dead.recycle(init);
        slot.state.store(state | SLOT_LIVE, StdOrdering::Release);
        ArenaRef { index, generation: (state >> 1) as u32, _type: PhantomData }
    }

    #[inline]
    fn slot(&self, handle: ArenaRef<T>) -> Option<&SharedSlot<T>> {
        let (chunk, offset) = shared_locate(handle.index);
        self.chunks.get(chunk)?.get()?.get(offset)
    }

    /// The object, if `handle` is live (no report either way).
    #[inline]
    pub fn peek(&self, handle: ArenaRef<T>) -> Option<&T> {
        let slot = self.slot(handle)?;
        let live = u64::from(handle.generation) << 1 | SLOT_LIVE;
        if slot.state.load(StdOrdering::Acquire) != live {
            return None;
        }
        slot.object.get()
    }

    /// Dereferences `handle`. A freed object is a use after free: reported from `cx`, and an
    /// error.
    #[inline]
    pub fn get(&self, cx: &Cx, handle: ArenaRef<T>) -> Result<&T, MmError> {
        match self.peek(handle) {
            Some(object) => Ok(object),
            None => Err(use_after_free(self.name, cx, handle)),
        }
    }

    /// Whether `handle`'s object is still allocated (no report either way).
    #[inline]
    pub fn is_live(&self, handle: ArenaRef<T>) -> bool {
        self.peek(handle).is_some()
    }

    /// `kmem_cache_free(cache, object)`: every copy of `handle` is dangling from now on (the
    /// slot's generation moves on, and the slot waits in the quarantine). Freeing twice is
    /// reported and an error.
    pub fn free(&self, cx: &Cx, handle: ArenaRef<T>) -> Result<(), MmError> {
        let live = u64::from(handle.generation) << 1 | SLOT_LIVE;
        let dead = u64::from(handle.generation.wrapping_add(1)) << 1;
        let freed = self.slot(handle).is_some_and(|slot| {
            slot.state.compare_exchange(live, dead, StdOrdering::AcqRel, StdOrdering::Relaxed).is_ok()
        });
        if freed {
            self.live.fetch_sub(1, StdOrdering::Relaxed);
            self.quarantine.lock().unwrap_or_else(PoisonError::into_inner).push_back(handle.index);
            return Ok(());
        }
        let error = MmError::DoubleFree { cache: self.name, handle: format!("{handle:?}") };
        cx.sim().report(Some(cx), Violation::new("double-free", error.to_string()));
        Err(error)
    }

    /// `kmem_cache_destroy()`: objects still allocated are a leak, reported with their count.
    pub fn destroy(&self, cx: &Cx) -> Result<(), Violation> {
        destroy_check(cx, self.name, self.live())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fault::{FaultAttr, FaultPlan};
    use crate::lockdep::ReportMode;
    use crate::sim::{Sim, SimConfig};

    fn sim() -> Sim {
        Sim::new(SimConfig::new(1).lockdep(ReportMode::Collect))
    }

    /// A shared object: one value, rewritable in place.
    #[derive(Debug)]
    struct Thing(StdAtomicU64);

    impl Recycle for Thing {
        type Init = u64;
        fn create(init: u64) -> Thing {
            Thing(StdAtomicU64::new(init))
        }
        fn recycle(&self, init: u64) {
            self.0.store(init, StdOrdering::Relaxed);
        }
    }

    fn thing(value: u64) -> u64 {
        value
    }

    fn value(arena: &SharedArena<Thing>, cx: &Cx, handle: ArenaRef<Thing>) -> u64 {
        arena.get(cx, handle).expect("live").0.load(StdOrdering::Relaxed)
    }

    #[test]
    fn a_stale_handle_is_a_reported_use_after_free_even_when_the_slot_is_reused() {
        let sim = sim();
        let cx = sim.cx("t", 0);
        let mut arena = SlabArena::new("things");
        let first = arena.insert(1u32);
        arena.free(&cx, first).expect("free");
        let second = arena.insert(2u32);
        assert_eq!(first.index(), second.index(), "the slot is reused");
        assert!(arena.get(&cx, first).is_err());
        assert!(arena.get_mut(&cx, first).is_err());
        assert_eq!(*arena.get(&cx, second).expect("live"), 2);
        let kinds: Vec<String> = sim.violations().iter().map(|v| v.kind.to_string()).collect();
        assert_eq!(kinds, ["use-after-free", "use-after-free"]);
    }

    #[test]
    fn double_free_is_reported_and_accounting_stays_right() {
        let sim = sim();
        let cx = sim.cx("t", 0);
        let mut arena = SlabArena::new("things");
        let handle = arena.insert(());
        let kept = arena.insert(());
        arena.free(&cx, handle).expect("free");
        assert!(matches!(arena.free(&cx, handle), Err(MmError::DoubleFree { .. })));
        assert_eq!(sim.violations()[0].kind, "double-free");
        assert_eq!((arena.live(), arena.allocations()), (1, 2));
        assert_eq!(arena.iter().map(|(handle, _)| handle).collect::<Vec<_>>(), [kept]);
        assert!(arena.destroy(&cx).is_err(), "a live object at destroy is a leak");
        arena.free(&cx, kept).expect("free");
        assert!(arena.destroy(&cx).is_ok());
    }

    #[test]
    fn a_leak_of_one_cache_of_a_shared_arena_is_reported_under_its_name_and_frees_nothing() {
        let sim = sim();
        let cx = sim.cx("t", 0);
        let mut arena = SlabArena::new("things");
        let kept = arena.insert('a');
        assert!(!SlabArena::<char>::report_leak(&cx, "cache-b", 0), "nothing live: no report");
        assert!(sim.violations().is_empty());
        assert!(SlabArena::<char>::report_leak(&cx, "cache-a", 1));
        let violations = sim.violations();
        assert_eq!(violations.len(), 1, "replay: this test: {violations:?}");
        assert_eq!(violations[0].kind, "leak");
        assert!(violations[0].message.contains("cache-a") && violations[0].message.contains("1 live"));
        assert_eq!(*arena.get(&cx, kept).expect("the leaked object stays valid"), 'a');
    }

    #[test]
    fn the_precheck_fails_at_the_fault_plan_and_reports_sleeping_under_a_spinlock() {
        let sim = sim();
        let cx = sim.cx("t", 0);
        sim.set_faults(FaultPlan::with(FaultAttr::nth(2).site("things")));
        assert!(slab_precheck(&cx, Gfp::GFP_KERNEL, "things", 16).is_ok());
        assert_eq!(slab_precheck(&cx, Gfp::GFP_KERNEL, "things", 16), Err(Errno::ENOMEM));
        let lock = crate::locks::SpinLock::new("lock", ());
        let guard = lock.lock(&cx);
        let _ = slab_precheck(&cx, Gfp::GFP_KERNEL, "other", 16);
        drop(guard);
        let reports = sim.lockdep().reports();
        assert_eq!(reports.len(), 1, "{reports:?}");
        assert_eq!(reports[0].kind(), "sleep-in-atomic");
    }

    #[test]
    fn shared_slots_are_located_chunk_by_chunk_without_overlap() {
        let mut expected = (0usize, 0usize);
        for index in 0..10_000u32 {
            assert_eq!(shared_locate(index), expected, "slot {index}");
            expected.1 += 1;
            if expected.1 == 8 << expected.0 {
                expected = (expected.0 + 1, 0);
            }
        }
        assert_eq!(shared_locate(u32::MAX).0, SHARED_CHUNKS - 1);
    }

    #[test]
    fn a_stale_shared_handle_is_a_reported_use_after_free_and_a_second_free_a_double_free() {
        let sim = sim();
        let cx = sim.cx("t", 0);
        let arena: SharedArena<Thing> = SharedArena::new("things", 16);
        let handles: Vec<ArenaRef<Thing>> = (0..100).map(|v| arena.insert(thing(v))).collect();
        arena.free(&cx, handles[9]).expect("free");
        let later = arena.insert(thing(1000));
        assert_ne!(later.index(), handles[9].index(), "a freed slot waits in the quarantine");
        assert!(arena.get(&cx, handles[9]).is_err());
        assert!(matches!(arena.free(&cx, handles[9]), Err(MmError::DoubleFree { .. })));
        assert_eq!(value(&arena, &cx, handles[99]), 99);
        assert_eq!(value(&arena, &cx, later), 1000);
        let kinds: Vec<String> = sim.violations().iter().map(|v| v.kind.to_string()).collect();
        assert_eq!(kinds, ["use-after-free", "double-free"]);
        assert_eq!((arena.live(), arena.allocations()), (100, 101));
        assert!(arena.destroy(&cx).is_err(), "live objects at destroy are a leak");
        for handle in handles.iter().filter(|&&h| h != handles[9]).chain([&later]) {
            arena.free(&cx, *handle).expect("free");
        }
        assert!(arena.destroy(&cx).is_ok());
    }

    #[test]
    fn a_reused_shared_slot_is_recycled_and_its_stale_handles_are_still_caught() {
        let sim = sim();
        let cx = sim.cx("t", 0);
        let arena: SharedArena<Thing> = SharedArena::new("things", 16);
        let stale = arena.insert(thing(7));
        arena.free(&cx, stale).expect("free");
        // Fill the quarantine behind the stale slot, so the next insert takes the stale slot.
        for v in 0..SHARED_QUARANTINE as u64 - 1 {
            let handle = arena.insert(thing(v));
            arena.free(&cx, handle).expect("free");
        }
        let reused = arena.insert(thing(42));
        assert_eq!(reused.index(), stale.index(), "the oldest quarantined slot is reused");
        assert_ne!(reused, stale, "a reused slot is a new generation");
        assert_eq!(value(&arena, &cx, reused), 42, "the object is recycled in place");
        assert!(arena.peek(stale).is_none());
        assert!(arena.get(&cx, stale).is_err(), "a stale handle on a reused slot is a use after free");
        assert!(matches!(arena.free(&cx, stale), Err(MmError::DoubleFree { .. })));
        assert_eq!(value(&arena, &cx, reused), 42, "the stale free left the new object alone");
        let kinds: Vec<String> = sim.violations().iter().map(|v| v.kind.to_string()).collect();
        assert_eq!(kinds, ["use-after-free", "double-free"], "replay: this test, no seed");
        arena.free(&cx, reused).expect("free");
        assert!(arena.destroy(&cx).is_ok());
    }

    #[test]
    fn shared_memory_stays_bounded_over_a_long_churn() {
        let sim = sim();
        let cx = sim.cx("t", 0);
        let arena: SharedArena<Thing> = SharedArena::new("things", 16);
        let mut live: VecDeque<ArenaRef<Thing>> = VecDeque::new();
        for round in 0..20_000u64 {
            live.push_back(arena.insert(thing(round)));
            if live.len() > 100 {
                let oldest = live.pop_front().expect("live");
                assert_eq!(value(&arena, &cx, oldest), round - 100, "round {round}");
                arena.free(&cx, oldest).expect("free");
            }
        }
        assert_eq!(arena.allocations(), 20_000);
        let bound = 101 + SHARED_QUARANTINE as u32;
        assert!(
            arena.slots() <= bound,
            "{} slots for at most 101 live objects (bound {bound})",
            arena.slots()
        );
        assert!(sim.violations().is_empty(), "{:?}", sim.violations());
    }

    #[test]
    fn shared_inserts_from_several_threads_get_distinct_live_slots() {
        let arena: SharedArena<Thing> = SharedArena::new("things", 16);
        let handles: Vec<ArenaRef<Thing>> = std::thread::scope(|scope| {
            let workers: Vec<_> = (0..4u64)
                .map(|t| {
                    let arena = &arena;
                    scope.spawn(move || {
                        (0..500).map(|i| arena.insert(thing(t * 1000 + i))).collect::<Vec<_>>()
                    })
                })
                .collect();
            workers.into_iter().flat_map(|w| w.join().expect("worker")).collect()
        });
        let mut indices: Vec<u32> = handles.iter().map(|h| h.index()).collect();
        indices.sort_unstable();
        indices.dedup();
        assert_eq!(indices.len(), 2000);
        assert!(handles.iter().all(|&h| arena.peek(h).is_some()));
    }
}
