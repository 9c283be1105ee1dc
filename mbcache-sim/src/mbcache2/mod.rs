//! mbcache2: fs/mbcache.c as rewritten for 4.6 ("mbcache2: reimplement mbcache", f9a61eb4e247,
//! renamed back to mbcache in the same release), and the ext4 code that shares xattr blocks
//! through it, as a second model beside the 2.6 one in this crate. Its own fix table, kernel
//! modules and harness, in the one subsystem shape:
//!
//! - `fixes.rs`: the fix table, 4.6 to 7.1 (the 2022 refcount rework included);
//! - `mbcache.rs` (the cache, its entries, chains and LRU), `shrinker.rs` (the shrinker and the
//!   shrink work), `workqueue.rs` (the system workqueue the work runs on), `xattr.rs` (ext4's
//!   side of block sharing);
//! - `check/`: `Mbcache2Subject`, `Mbcache2Config`, `Op`/`Outcome`, `Mbcache2Model`, the catalog.

mod check;
mod fixes;
mod mbcache;
mod shrinker;
mod workqueue;
mod xattr;

pub use check::{
    Mbcache2Config, Mbcache2Model, Mbcache2Subject, Op as Mbcache2Op, Outcome as Mbcache2Outcome,
    MBCACHE2_BLOCKS_MAX, MBCACHE2_CHAINS_MAX, MBCACHE2_PREFILL_MAX,
};
pub use check::{Mbcache2Entry, Mbcache2World};
pub use check::{
    ZOO_CHAIN_WALK, ZOO_LIST_LOCK_NESTING, ZOO_LOST_FLAG, ZOO_REFERENCED, ZOO_REUSE_RELEASE, ZOO_SHRINK_WORK,
};
pub use fixes::{
    Fixes as Mbcache2FixSet, Mbcache2Fixes, ATOMIC_ENTRY_FLAGS, AUTO_DELETE, CANCEL_SHRINK_WORK,
    CREATE_HOLDS_REF, DELETE_OR_GET, DONT_RECLAIM_USED, FIX_IDS as MBCACHE2_FIX_IDS, LIMIT_CACHE_SIZE,
    PRESET_4_10, PRESET_4_6, PRESET_6_0, PRESET_6_1, PRESET_6_2, PRESET_7_1, REFERENCED_TO_TAIL,
    REUSABLE_FLAG,
};
pub use shrinker::ScanStep as Mbcache2ScanStep;
