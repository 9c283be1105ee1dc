//! Memory management as the models need it: GFP flags, typed object caches (`kmem_cache`) with
//! live-object accounting and generation-checked handles (`KmemCache`, an `Arc` per object, and
//! `SlabArena`, flat plain data for hot paths), and a page allocator with a memory
//! limit, zones and the OOM notifier chain; direct reclaim with shrinkers and lockdep's
//! `fs_reclaim` ([`reclaim`]). Fault injection for all of them is in
//! [`crate::fault`].

mod arena;
mod gfp;
pub mod page;
pub mod reclaim;
mod slab;

pub use arena::{slab_precheck, ArenaRef, SlabArena};
pub use gfp::Gfp;
pub use slab::{kmalloc, KmemCache, MmError, ObjHandle};
mod page_alloc;
pub use page_alloc::{
    NotifierBlock, NotifierId, OomNotifierFn, PageAllocConfig, PageAllocator, PageState, Pfn, FS_LOCK_CLASS,
    OOM_LOCK_BACKOFF_NS, OOM_PROGRESS_CLASS, OOM_RETRIES_MAX, PAGE_SIZE_4K, PAGE_SIZE_64K, ZONE_NAMES,
};
