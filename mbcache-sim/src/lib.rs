//! fs/mbcache.c (2.6.0-2.6.10) as an executable model: the registry (global cache list, global
//! LRU, `mb_cache_spinlock`, the shrinker), caches with block and index hashes, entries and the
//! handles users hold across operations, and the later 2.6 fixes as named switches.
#![forbid(unsafe_code)]

pub mod check;
pub mod fixes;
pub mod hash;
pub(crate) mod list;
pub mod mbcache;

// For users of the model (tests, benches, the CLI): the registry and its values.
pub use fixes::Fixes;
pub use list::{EntryRef, Oops};
pub use mbcache::{bdev_address, CacheRef, Destroyed, FreeOp, Handle, MbError, Registry, Waits};
// For the checkers: the harness face.
pub use check::{MbcacheConfig, MbcacheSubject};
