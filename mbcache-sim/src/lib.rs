//! fs/mbcache.c (2.6.0-2.6.10) as an executable model: the registry (global cache list, global
//! LRU, `mb_cache_spinlock`, the shrinker), caches with block and index hashes, entries and the
//! handles users hold across operations, and the later 2.6 fixes as named switches.
#![forbid(unsafe_code)]

pub mod cache;
pub mod check;
pub mod entry;
pub mod fixes;
pub mod hash;
pub mod registry;
pub mod shrink;

// For users of the model (tests, benches, the CLI): the registry and its values.
pub use cache::{CacheRef, Destroyed, FreeOp};
pub use entry::Handle;
pub use fixes::Fixes;
pub use registry::{bdev_address, EntryRef, MbError, Registry, Waits, ENTRY_HEADER_SIZE, ENTRY_INDEX_SIZE};
// For the checkers: the harness face.
pub use check::{MbcacheConfig, MbcacheSubject};
