//! Memory management as the models need it: GFP flags, typed object caches (`kmem_cache`) with
//! live-object accounting and generation-checked handles (`KmemCache`, an `Arc` per object, and
//! `SlabArena`, flat plain data for hot paths), and a page allocator with a memory
//! limit, zones and the OOM notifier chain; direct reclaim with shrinkers and lockdep's
//! `fs_reclaim` ([`reclaim`]). Fault injection for all of them is in
//! [`crate::fault`].

/// The trait impls of a generation-checked handle ([`ObjHandle`], [`ArenaRef`]: a slot index and
/// the generation it was allocated in): `Copy`, compared, ordered and hashed by both, printed as
/// `obj#index.generation`, for every `T` (a derive would demand `T: Clone` and the like).
macro_rules! generation_handle_impls {
    ($handle:ident) => {
        impl<T> Clone for $handle<T> {
            fn clone(&self) -> Self {
                *self
            }
        }
        impl<T> Copy for $handle<T> {}
        impl<T> PartialEq for $handle<T> {
            fn eq(&self, other: &Self) -> bool {
                (self.index, self.generation) == (other.index, other.generation)
            }
        }
        impl<T> Eq for $handle<T> {}
        impl<T> PartialOrd for $handle<T> {
            fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
                Some(self.cmp(other))
            }
        }
        impl<T> Ord for $handle<T> {
            fn cmp(&self, other: &Self) -> std::cmp::Ordering {
                (self.index, self.generation).cmp(&(other.index, other.generation))
            }
        }
        impl<T> std::hash::Hash for $handle<T> {
            fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
                (self.index, self.generation).hash(state);
            }
        }
        impl<T> std::fmt::Debug for $handle<T> {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                write!(f, "obj#{}.{}", self.index, self.generation)
            }
        }
    };
}

mod arena;
mod gfp;
pub mod page;
pub mod reclaim;
mod slab;

pub use arena::{slab_precheck, ArenaRef, Recycle, SharedArena, SlabArena, SHARED_QUARANTINE};
pub use gfp::Gfp;
pub use slab::{kmalloc, KmemCache, MmError, ObjHandle};
mod page_alloc;
pub use page_alloc::{
    NotifierBlock, NotifierId, OomNotifierFn, PageAllocConfig, PageAllocator, PageState, Pfn, FS_LOCK_CLASS,
    OOM_LOCK_BACKOFF_NS, OOM_PROGRESS_CLASS, OOM_RETRIES_MAX, PAGE_SIZE_4K, PAGE_SIZE_64K, ZONE_NAMES,
};
