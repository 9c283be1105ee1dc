//! Typed object caches: `kmem_cache_create`, `kmem_cache_alloc`, `kmem_cache_free`,
//! `kmem_cache_destroy` (mm/slab_common.c), with what the kernel's debug options add: live-object
//! accounting (a leak is reported at destroy, as "objects remaining"), and generation-checked
//! handles, so a use after free or a double free is a reported violation, never undefined
//! behaviour or a silent reuse.
//!
//! Objects live in the cache as `Arc<T>`: a handle is the kernel's pointer, `get` is a
//! dereference. The slot table is instrumentation (behind a `sync::BookLock`), so the threaded
//! checkers see only the model's own locks, as the kernel's slab allocator is invisible to lock
//! ordering.
//! Left out: slab merging, per-CPU freelists, constructors, RCU-delayed freeing.

use std::fmt;
use std::marker::PhantomData;
use std::sync::Arc;

use crate::cx::Cx;
use crate::errno::Errno;
use crate::fault::{FaultKind, FaultSite, SiteRef};
use crate::mm::reclaim::{maybe_direct_reclaim, might_alloc};
use crate::mm::Gfp;
use crate::sim::Violation;

/// A reference to an object of a [`KmemCache`]: the slot and the generation it was allocated in.
pub struct ObjHandle<T> {
    index: u32,
    generation: u32,
    _type: PhantomData<fn() -> T>,
}

generation_handle_impls!(ObjHandle);

impl<T> ObjHandle<T> {
    /// The slot index (stable while the object lives; reused after it is freed).
    pub fn index(&self) -> u32 {
        self.index
    }
}

/// A misuse of a cache's objects. Each is also reported to the `Sim` as a violation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MmError {
    /// The handle's object was freed (and its slot maybe reused).
    UseAfterFree { cache: &'static str, handle: String },
    /// `kmem_cache_free` of an object already freed.
    DoubleFree { cache: &'static str, handle: String },
}

impl fmt::Display for MmError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MmError::UseAfterFree { cache, handle } => {
                write!(f, "use after free of {handle} in cache {cache}")
            }
            MmError::DoubleFree { cache, handle } => write!(f, "double free of {handle} in cache {cache}"),
        }
    }
}

impl std::error::Error for MmError {}

struct Slot<T> {
    generation: u32,
    object: Option<Arc<T>>,
}

struct Slots<T> {
    slots: Vec<Slot<T>>,
    free: Vec<u32>,
    allocations: u64,
}

/// `struct kmem_cache` for objects of type `T`.
pub struct KmemCache<T> {
    name: &'static str,
    object_size: u64,
    site: FaultSite,
    slots: crate::sync::BookLock<Slots<T>>,
    /// Objects allocated and not yet freed: changed only under `slots`' lock (a load and a
    /// store, no read-modify-write), read without it, so a checker's count ([`KmemCache::live`],
    /// taskstats' invariants ask about once an operation) is a load, not the lock's two atomic
    /// exchanges. Bookkeeping, a `std` atomic: no schedule point.
    live: std::sync::atomic::AtomicU64,
}

impl<T> fmt::Debug for KmemCache<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KmemCache").field("name", &self.name).field("live", &self.live()).finish()
    }
}

impl<T> KmemCache<T> {
    /// `kmem_cache_create(name, object_size, ...)`.
    pub fn new(name: &'static str, object_size: u64) -> Self {
        KmemCache {
            name,
            object_size,
            site: FaultSite::slab(name),
            slots: crate::sync::BookLock::new(Slots { slots: Vec::new(), free: Vec::new(), allocations: 0 }),
            live: std::sync::atomic::AtomicU64::new(0),
        }
    }

    fn slots(&self) -> crate::sync::BookGuard<'_, Slots<T>> {
        self.slots.lock()
    }

    /// The cache name.
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// Objects allocated and not yet freed.
    pub fn live(&self) -> u64 {
        self.live.load(std::sync::atomic::Ordering::Acquire)
    }

    /// Adds `delta` (wrapping: -1 is `u64::MAX`) to the live count; the caller holds the slots'
    /// lock, the only writers' lock, so a load and a store suffice.
    fn count_live(&self, _slots: &Slots<T>, delta: u64) {
        let live = self.live.load(std::sync::atomic::Ordering::Relaxed);
        self.live.store(live.wrapping_add(delta), std::sync::atomic::Ordering::Release);
    }

    /// Successful allocations over the cache's life.
    pub fn allocations(&self) -> u64 {
        self.slots().allocations
    }

    /// `kmem_cache_alloc(cache, gfp)`: may sleep when `gfp` allows blocking, and then may enter
    /// the filesystem in reclaim when `gfp` has `__GFP_FS` (checked against the locks held, see
    /// [`crate::mm::reclaim`]); fails with ENOMEM when the fault plan says so; enters direct
    /// reclaim when the Sim's reclaim plan says so.
    #[track_caller]
    pub fn alloc(&self, cx: &Cx, gfp: Gfp, object: T) -> Result<ObjHandle<T>, Errno> {
        might_alloc(cx, gfp, "kmem_cache_alloc");
        if cx.sim().should_fail(cx, &self.site, self.object_size) {
            return Err(Errno::ENOMEM);
        }
        maybe_direct_reclaim(cx, gfp, self.site.as_ref(), self.object_size);
        let mut slots = self.slots();
        self.count_live(&slots, 1);
        slots.allocations += 1;
        let object = Some(Arc::new(object));
        let index = match slots.free.pop() {
            Some(index) => {
                let slot = &mut slots.slots[index as usize];
                slot.object = object;
                index
            }
            None => {
                slots.slots.push(Slot { generation: 0, object });
                (slots.slots.len() - 1) as u32
            }
        };
        let generation = slots.slots[index as usize].generation;
        Ok(ObjHandle { index, generation, _type: PhantomData })
    }

    /// Dereferences a handle. A freed object is a use after free: reported, and an error.
    pub fn get(&self, cx: &Cx, handle: ObjHandle<T>) -> Result<Arc<T>, MmError> {
        let found = {
            let slots = self.slots();
            slots
                .slots
                .get(handle.index as usize)
                .filter(|slot| slot.generation == handle.generation)
                .and_then(|slot| slot.object.clone())
        };
        found.ok_or_else(|| {
            let error = MmError::UseAfterFree { cache: self.name, handle: format!("{handle:?}") };
            cx.sim().report(Some(cx), Violation::new("use-after-free", error.to_string()));
            error
        })
    }

    /// Whether the handle's object is still allocated (no report either way).
    pub fn is_live(&self, handle: ObjHandle<T>) -> bool {
        let slots = self.slots();
        slots
            .slots
            .get(handle.index as usize)
            .is_some_and(|slot| slot.generation == handle.generation && slot.object.is_some())
    }

    /// `kmem_cache_free(cache, object)`. Freeing twice is reported and an error.
    pub fn free(&self, cx: &Cx, handle: ObjHandle<T>) -> Result<Arc<T>, MmError> {
        let mut slots = self.slots();
        let freed = match slots.slots.get_mut(handle.index as usize) {
            Some(slot) if slot.generation == handle.generation && slot.object.is_some() => {
                slot.generation = slot.generation.wrapping_add(1);
                slot.object.take()
            }
            _ => None,
        };
        match freed {
            Some(object) => {
                self.count_live(&slots, u64::MAX);
                slots.free.push(handle.index);
                Ok(object)
            }
            None => {
                drop(slots);
                let error = MmError::DoubleFree { cache: self.name, handle: format!("{handle:?}") };
                cx.sim().report(Some(cx), Violation::new("double-free", error.to_string()));
                Err(error)
            }
        }
    }

    /// The live objects' handles, in slot order (deterministic).
    pub fn live_handles(&self) -> Vec<ObjHandle<T>> {
        let slots = self.slots();
        slots
            .slots
            .iter()
            .enumerate()
            .filter(|(_, slot)| slot.object.is_some())
            .map(|(index, slot)| ObjHandle {
                index: index as u32,
                generation: slot.generation,
                _type: PhantomData,
            })
            .collect()
    }

    /// `kmem_cache_destroy()`: objects still allocated are a leak, reported with their count.
    pub fn destroy(&self, cx: &Cx) -> Result<(), Violation> {
        destroy_check(cx, self.name, self.live())
    }
}

/// `kmem_cache_destroy()`'s check, for every slab cache kind: `live` objects still allocated
/// are a leak, reported from `cx` with their count.
pub(crate) fn destroy_check(cx: &Cx, name: &str, live: u64) -> Result<(), Violation> {
    if live == 0 {
        return Ok(());
    }
    let violation = Violation::new(
        "leak",
        format!("kmem_cache_destroy {name}: Slab cache still has objects ({live} live)"),
    );
    cx.sim().report(Some(cx), violation.clone());
    Err(violation)
}

/// Mirrors kmalloc(size, gfp) as far as its side effects go: the sleeping and reclaim checks of
/// [`KmemCache::alloc`], failslab at `site` (a slab fault site) and direct reclaim. The model
/// keeps the memory itself as a Rust value; `ENOMEM` is the kernel's NULL.
#[track_caller]
pub fn kmalloc(cx: &Cx, gfp: Gfp, site: &str, size: u64) -> Result<(), Errno> {
    might_alloc(cx, gfp, "kmalloc");
    let site = SiteRef { kind: FaultKind::Slab, name: site };
    if cx.sim().should_fail_at(cx, site, size) {
        return Err(Errno::ENOMEM);
    }
    maybe_direct_reclaim(cx, gfp, site, size);
    Ok(())
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

    #[test]
    fn use_after_free_is_reported_even_when_the_slot_is_reused() {
        let sim = sim();
        let cx = sim.cx("t", 0);
        let cache = KmemCache::new("things", 16);
        let first = cache.alloc(&cx, Gfp::GFP_KERNEL, 1u32).expect("alloc");
        cache.free(&cx, first).expect("free");
        let second = cache.alloc(&cx, Gfp::GFP_KERNEL, 2u32).expect("alloc");
        assert_eq!(first.index(), second.index(), "the slot is reused");
        assert!(cache.get(&cx, first).is_err());
        assert_eq!(*cache.get(&cx, second).expect("live"), 2);
        assert_eq!(sim.violations()[0].kind, "use-after-free");
    }

    #[test]
    fn double_free_is_reported() {
        let sim = sim();
        let cx = sim.cx("t", 0);
        let cache = KmemCache::new("things", 16);
        let handle = cache.alloc(&cx, Gfp::GFP_KERNEL, ()).expect("alloc");
        cache.free(&cx, handle).expect("free");
        assert!(matches!(cache.free(&cx, handle), Err(MmError::DoubleFree { .. })));
        assert_eq!(sim.violations()[0].kind, "double-free");
    }

    #[test]
    fn destroy_reports_live_objects_as_a_leak() {
        let sim = sim();
        let cx = sim.cx("t", 0);
        let cache = KmemCache::new("things", 16);
        let kept = cache.alloc(&cx, Gfp::GFP_KERNEL, ()).expect("alloc");
        assert!(cache.destroy(&cx).is_err());
        cache.free(&cx, kept).expect("free");
        assert!(cache.destroy(&cx).is_ok());
    }

    #[test]
    fn fault_plan_fails_allocations_with_enomem() {
        let sim = sim();
        let cx = sim.cx("t", 0);
        sim.set_faults(FaultPlan::with(FaultAttr::nth(2).site("things")));
        let cache = KmemCache::new("things", 16);
        assert!(cache.alloc(&cx, Gfp::GFP_KERNEL, ()).is_ok());
        assert_eq!(cache.alloc(&cx, Gfp::GFP_KERNEL, ()), Err(Errno::ENOMEM));
        assert_eq!(cache.live(), 1);
    }

    #[test]
    fn sleeping_allocation_under_a_spinlock_is_reported() {
        let sim = sim();
        let cx = sim.cx("t", 0);
        let lock = crate::locks::SpinLock::new("lock", ());
        let cache = KmemCache::new("things", 16);
        let guard = lock.lock(&cx);
        let handle = cache.alloc(&cx, Gfp::GFP_KERNEL, ()).expect("alloc");
        drop(guard);
        assert!(cache.alloc(&cx, Gfp::GFP_ATOMIC, ()).is_ok());
        let reports = sim.lockdep().reports();
        assert_eq!(reports.len(), 1, "{reports:?}");
        assert_eq!(reports[0].kind(), "sleep-in-atomic");
        cache.free(&cx, handle).expect("free");
    }
}
