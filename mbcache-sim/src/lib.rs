//! fs/mbcache.c (2.6.0-2.6.11) as an executable model: the registry (global cache list, global
//! LRU, `mb_cache_spinlock`, the shrinker), caches with block and index hashes, entries and the
//! handles users hold across operations, and the 2.6.11 changes as named switches.
#![forbid(unsafe_code)]
#![warn(unreachable_pub)]

// Kernel code, one module per kernel concept.
mod cache;
mod entry;
mod ext2_xattr;
mod hash;
mod registry;
mod shrink;

// The fix table and the harness (subject, operations, reference, catalog, scenarios).
mod check;
mod fixes;

// The 4.6-and-later model ("mbcache2"), its own fix table and harness.
mod mbcache2;

// For users of the model (tests, benches, the CLI): the registry and its values.
pub use cache::{CacheRef, Destroyed, FreeOp};
pub use entry::Handle;
// For the benches' native baseline, which must hash as the model does.
pub use ext2_xattr::{Ext2Xattr, Pending, Step, BUFFER_LOCK, EXT2_XATTR_REFCOUNT_MAX, XATTR_SEM};
pub use hash::hash_long;
pub use registry::{bdev_address, EntryRef, MbError, Registry, Waits, ENTRY_HEADER_SIZE, ENTRY_INDEX_SIZE};
// For tests, the zoo and the CLI: the fixes, their switch names and the kernel versions.
pub use fixes::{
    Fixes, MbcacheFixes, ALLOC_GFP_NOFS, ENTRY_COUNT_AFTER_ALLOC, EXCLUSIVE_GET, FIX_ALLOC_GFP_NOFS,
    FIX_ENTRY_COUNT_AFTER_ALLOC, FIX_EXCLUSIVE_GET, FIX_IDS, FIX_SHRINKER_VFS_CACHE_PRESSURE,
    FIX_TAKEOUT_DUP_REMOVED, FIX_XATTR_ENTRY_BEFORE_BUFFER_LOCK, PRESET_FIXED, PRESET_LATER, PRESET_SEED,
    SHRINKER_VFS_CACHE_PRESSURE, TAKEOUT_DUP_REMOVED, XATTR_ENTRY_BEFORE_BUFFER_LOCK,
};
// For the checkers and the CLI registry: the harness face.
pub use check::{
    MbcacheConfig, MbcacheModel, MbcacheSubject, Op, OpResult, Outcome, CACHE_NAMES, FS_BLOCKS_MAX,
    SCENARIO_FIND_NEXT_AFTER_FREE, SCENARIO_SHRINKER_LRU,
};
// For the CLI registry, tests and benches: the mbcache2 model's harness face and fixes.
pub use mbcache2::{
    Mbcache2Config, Mbcache2Entry, Mbcache2FixSet, Mbcache2Fixes, Mbcache2Model, Mbcache2Op, Mbcache2Outcome,
    Mbcache2ScanStep, Mbcache2Subject, Mbcache2World, ATOMIC_ENTRY_FLAGS, AUTO_DELETE, CANCEL_SHRINK_WORK,
    CREATE_HOLDS_REF, DELETE_OR_GET, DONT_RECLAIM_USED, LIMIT_CACHE_SIZE, MBCACHE2_BLOCKS_MAX,
    MBCACHE2_CHAINS_MAX, MBCACHE2_FIX_IDS, MBCACHE2_PREFILL_MAX, PRESET_4_10, PRESET_4_6, PRESET_6_0,
    PRESET_6_1, PRESET_6_2, PRESET_7_1, REFERENCED_TO_TAIL, REUSABLE_FLAG, ZOO_CHAIN_WALK,
    ZOO_LIST_LOCK_NESTING, ZOO_LOST_FLAG, ZOO_REFERENCED, ZOO_REUSE_RELEASE, ZOO_SHRINK_WORK,
};
