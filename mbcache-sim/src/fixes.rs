//! The behavioural differences between the fs/mbcache.c versions ksim models, as one fix table:
//! each row a named switch with its upstream identity and the kernel version it landed in, so a
//! kernel version is a preset (`--kernel 2.6.11`).
//!
//! What the search for upstream identities found (recorded here so the next reader need not
//! repeat it):
//! - `exclusive-get` is Andreas Gruenbacher's "Race in ext[23] xattr sharing code" (patch 3/9 of
//!   "Ext3: extended attribute sharing fixes and in-inode EAs", 2005-01), listed in the Linux
//!   2.6.11-rc2 shortlog as "ext3/EA: Race in ext[23] xattr sharing code". It predates the git
//!   history (a BitKeeper changeset), so there is no commit id to cite.
//! - `entry-count-after-alloc`: no upstream change was found that moved
//!   `atomic_inc(&cache->c_entry_count)` after `kmem_cache_alloc()`. The 2.6.11-rc2 race patch
//!   leaves it before the allocation; the after-allocation order is first seen as unchanged context
//!   of 335e92e8a515 ("vfs: fix possible deadlock in ext2, ext3, ext4 when using xattrs"), years
//!   later. The row is ksim's own switch, marked as such.
//! - The newest preset, `linux-2.6.35`, was checked line by line against a later-2.6
//!   fs/mbcache.c listing found by the search tool: its shrinker callback takes a
//!   `struct shrinker *` (2.6.35 on) and a plain `nr_to_scan` (before 3.0's `shrink_control`),
//!   and it still has `c_op.free` and several indexes. Its differences from 2.6.11, each a row:
//!   takeout/dup absent (`takeout-dup-removed`), `mb_cache_shrink_fn()` returning
//!   `(count / 100) * sysctl_vfs_cache_pressure` (`shrinker-vfs-cache-pressure`, Andrew Morton's
//!   "slab shrinkers use vfs_cache_pressure", -mm 2005-03, no commit id found),
//!   `mb_cache_entry_alloc(cache, gfp_flags)` (`alloc-gfp-nofs`, 335e92e8a515), and the entry
//!   counted after `kmem_cache_alloc()` (`entry-count-after-alloc`). Differences that change no
//!   behaviour the model has: `mb_cache_shrink()` takes only the block device (2.6.13-rc4,
//!   "mbcache: Remove unused mb_cache_shrink parameter"; the model's filters by device already,
//!   as the seed did), `SLAB_MEM_SPREAD`, sparse annotations, a static `mb_cache_queue`. Any
//!   version from 2.6.0 to 2.6.35 (2.6.18, say) is a preset of the rows landed by then.
//! - The ext2/ext3 half of the race fix (`xattr-entry-before-buffer-lock`) is a row here because
//!   the ext2 xattr model (`ext2_xattr`) runs against this table.

use sim_core::fixes::{Commit, Fix, FixId, FixTable, FixTableOf, KernelVersion, NamedPreset};

/// The mbcache fix table, as a type ([`Fixes`] is a set of its rows).
#[derive(Debug)]
pub struct MbcacheFixes;

/// Which mbcache fixes are on.
pub type Fixes = sim_core::fixes::Fixes<MbcacheFixes>;

/// `mb_cache_entry_alloc()` counts the entry in `c_entry_count` only once `kmem_cache_alloc()`
/// succeeded; the seed counts it before, and a failed allocation leaks one count forever (the
/// shrinker over-reports, destroy reports a phantom orphan). No upstream commit is known: see the
/// module comment.
pub const ENTRY_COUNT_AFTER_ALLOC: FixId = FixId::new(0, "entry-count-after-alloc");
/// Entry handles become shared ("readers", from find_first/find_next) or exclusive ("writer",
/// from alloc/get): `get` waits until no handle refers to the entry, `find` waits while a writer
/// holds it, both give up on an entry unhashed meanwhile, and the racy `takeout`/`dup` leave the
/// API. Without it, one task can free (unhash) an entry while another holds it from a find walk,
/// whose `find_next` then follows a poisoned list link (an oops).
pub const EXCLUSIVE_GET: FixId = FixId::new(1, "exclusive-get");

/// `mb_cache_entry_takeout()` and `mb_cache_entry_dup()` leave the API. They are not part of the
/// race fix (its diff does not touch them), but the 2.6.11-rc2 series is written against an
/// `include/linux/mbcache.h` that no longer declares them, and the first git tree (2.6.12-rc2)
/// has neither. Split from `exclusive-get` so that the fixed kernel's quiet is owed to the
/// exclusive get, not to takeout returning ENOSYS.
pub const TAKEOUT_DUP_REMOVED: FixId = FixId::new(2, "takeout-dup-removed");

/// The ext2/ext3 half of "Race in ext[23] xattr sharing code": disposal takes the block's entry
/// with `mb_cache_entry_get()` before `lock_buffer()` (the seed's `ext2_xattr_cache_remove()`
/// took it under the buffer lock, after deciding to free), and `ext2_xattr_cache_find()` retries
/// a find that returned -EAGAIN.
pub const XATTR_ENTRY_BEFORE_BUFFER_LOCK: FixId = FixId::new(3, "xattr-entry-before-buffer-lock");
/// `mb_cache_entry_alloc()` takes the caller's gfp mask and ext2/ext3/ext4 pass GFP_NOFS: before
/// it, the allocation was GFP_KERNEL while the caller held `xattr_sem`, and reclaim could enter
/// the filesystem against its lock order.
pub const ALLOC_GFP_NOFS: FixId = FixId::new(4, "alloc-gfp-nofs");
/// `mb_cache_shrink_fn()` returns `(count / 100) * sysctl_vfs_cache_pressure`, not the count.
pub const SHRINKER_VFS_CACHE_PRESSURE: FixId = FixId::new(5, "shrinker-vfs-cache-pressure");

/// Every [`FixId`], in table order.
pub const FIX_IDS: [FixId; 6] = [
    ENTRY_COUNT_AFTER_ALLOC,
    EXCLUSIVE_GET,
    TAKEOUT_DUP_REMOVED,
    XATTR_ENTRY_BEFORE_BUFFER_LOCK,
    ALLOC_GFP_NOFS,
    SHRINKER_VFS_CACHE_PRESSURE,
];

/// The switch names, as `--fix-off` takes them.
pub const FIX_ENTRY_COUNT_AFTER_ALLOC: &str = ENTRY_COUNT_AFTER_ALLOC.name();
/// See [`EXCLUSIVE_GET`].
pub const FIX_EXCLUSIVE_GET: &str = EXCLUSIVE_GET.name();
/// See [`TAKEOUT_DUP_REMOVED`].
pub const FIX_TAKEOUT_DUP_REMOVED: &str = TAKEOUT_DUP_REMOVED.name();
/// See [`XATTR_ENTRY_BEFORE_BUFFER_LOCK`].
pub const FIX_XATTR_ENTRY_BEFORE_BUFFER_LOCK: &str = XATTR_ENTRY_BEFORE_BUFFER_LOCK.name();
/// See [`ALLOC_GFP_NOFS`].
pub const FIX_ALLOC_GFP_NOFS: &str = ALLOC_GFP_NOFS.name();
/// See [`SHRINKER_VFS_CACHE_PRESSURE`].
pub const FIX_SHRINKER_VFS_CACHE_PRESSURE: &str = SHRINKER_VFS_CACHE_PRESSURE.name();

/// The seed, Linux 2.6.0 to 2.6.10.
pub const PRESET_SEED: &str = "linux-2.6.10";
/// Linux 2.6.11: the race fixed (both halves), takeout and dup gone.
pub const PRESET_FIXED: &str = "linux-2.6.11";
/// Linux 2.6.35, the newest version modelled, checked against a later-2.6 listing: every row on.
pub const PRESET_LATER: &str = "linux-2.6.35";

impl FixTableOf for MbcacheFixes {
    const TABLE: &'static FixTable = &FixTable {
        subsystem: "mbcache",
        oldest: KernelVersion::new(2, 6, 0),
        newest: KernelVersion::new(2, 6, 35),
        // Session 10 searched the Unverified rows again (find_string for the titles, code and
        // pages search, find_repos for kernel mirrors): nothing new. The 2.6.11 rows can have
        // no mainline id: Linux's git history starts at 2.6.12-rc2 (April 2005); torvalds/linux
        // (8.6 GB) is over fetch's 500 MiB limit, so no history import was read either.
        fixes: &[
            Fix {
                name: "entry-count-after-alloc",
                title: "(ksim's own switch: no upstream commit found) count an entry in c_entry_count only \
                        after kmem_cache_alloc() succeeded",
                commit: Commit::Unverified,
                landed_in: KernelVersion::new(2, 6, 11),
                cve: None,
                symptom: "a failed entry allocation leaves c_entry_count one too high: the shrinker reports \
                          entries that do not exist and mb_cache_destroy() reports orphans. Upstream has the \
                          after-allocation order by 335e92e8a515 but no commit moving it was found; landed_in \
                          is ksim's placeholder (2.6.11), not an upstream fact; the 2.6.35 listing has the \
                          after-allocation order",
            },
            Fix {
                name: "exclusive-get",
                title: "Race in ext[23] xattr sharing code",
                commit: Commit::Unverified,
                landed_in: KernelVersion::rc(2, 6, 11, 2),
                cve: None,
                symptom: "a task frees an xattr block's entry while another walks the index with \
                          find_first/find_next; find_next follows the freed entry's poisoned list link \
                          (pre-git: a BitKeeper changeset, shortlog 'ext3/EA: Race in ext[23] xattr sharing \
                          code' in 2.6.11-rc2). This row is the patch's fs/mbcache.c half; its ext2/ext3 \
                          half (take the entry before lock_buffer, retry EAGAIN) is the ext2 xattr model's \
                          xattr-entry-before-buffer-lock",
            },
            Fix {
                name: "takeout-dup-removed",
                title: "(no commit found) mb_cache_entry_takeout() and mb_cache_entry_dup() removed",
                commit: Commit::Unverified,
                landed_in: KernelVersion::rc(2, 6, 11, 2),
                cve: None,
                symptom: "the seed's takeout unhashes an entry whose handle stays held and dup copies a handle \
                          without the lock; beside the exclusive get a dup of an exclusive handle gives away \
                          the writer bias on its first release. The race patch's base header no longer \
                          declares them and 2.6.12-rc2 has neither; the removing change was not found",
            },
            Fix {
                name: "xattr-entry-before-buffer-lock",
                title: "Race in ext[23] xattr sharing code",
                commit: Commit::Unverified,
                landed_in: KernelVersion::rc(2, 6, 11, 2),
                cve: None,
                symptom: "the fs/ext2/xattr.c and fs/ext3/xattr.c half of the race patch: the block's entry \
                          is taken before lock_buffer() and freed or released by the refcount seen under \
                          it, and ext2_xattr_cache_find() retries on -EAGAIN. With the exclusive get but \
                          without it, the disposing task would wait for the entry while holding the buffer \
                          lock the finding task needs (pre-git, no commit id)",
            },
            Fix {
                name: "alloc-gfp-nofs",
                title: "vfs: fix possible deadlock in ext2, ext3, ext4 when using xattrs",
                commit: Commit::Id("335e92e8a515"),
                landed_in: KernelVersion::new(2, 6, 28),
                cve: None,
                symptom: "mb_cache_entry_alloc() allocated with GFP_KERNEL while ext2/ext3 held xattr_sem; \
                          reclaim could recurse into the filesystem and take xattr_sem against the lock \
                          order (lockdep: fs_reclaim then xattr_sem, and xattr_sem then fs_reclaim). \
                          landed_in is inferred from the commit's 2008 date, not checked against a tag",
            },
            Fix {
                name: "shrinker-vfs-cache-pressure",
                title: "(no commit id found) slab shrinkers use vfs_cache_pressure",
                commit: Commit::Unverified,
                landed_in: KernelVersion::new(2, 6, 12),
                cve: None,
                symptom: "mb_cache_shrink_fn() reports (count / 100) * sysctl_vfs_cache_pressure (100 by \
                          default): fewer than 100 entries read as none to the VM. Andrew Morton's -mm \
                          patch of 2005-03; the 2.6.35 listing has it",
            },
        ],
        presets: &[
            NamedPreset {
                name: PRESET_SEED,
                version: KernelVersion::new(2, 6, 10),
                description: "seed 001: fs/mbcache.c of 2.6.0-2.6.10: atomic e_used, takeout/dup, the entry \
                              count bumped before the allocation",
            },
            NamedPreset {
                name: PRESET_FIXED,
                version: KernelVersion::new(2, 6, 11),
                description: "2.6.11: exclusive get / shared find with e_queued and mb_cache_queue, ext2/ext3 \
                              taking the entry before the buffer lock, takeout and dup gone, and (ksim's own \
                              switch) the entry counted after allocation",
            },
            NamedPreset {
                name: PRESET_LATER,
                version: KernelVersion::new(2, 6, 35),
                description: "2.6.35, checked against a later-2.6 fs/mbcache.c listing: GFP_NOFS entry \
                              allocation from ext2/ext3 and the shrinker scaled by vfs_cache_pressure",
            },
        ],
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fix_table_is_consistent_with_its_ids() {
        MbcacheFixes::TABLE.validate(&FIX_IDS).unwrap();
    }

    #[test]
    fn the_seed_has_no_fix_and_the_newest_version_has_both() {
        let seed = Fixes::preset(PRESET_SEED).unwrap();
        assert!(
            !seed.on(ENTRY_COUNT_AFTER_ALLOC) && !seed.on(EXCLUSIVE_GET) && !seed.on(TAKEOUT_DUP_REMOVED)
        );
        let fixed = Fixes::preset(PRESET_FIXED).unwrap();
        assert!(
            fixed.on(ENTRY_COUNT_AFTER_ALLOC) && fixed.on(EXCLUSIVE_GET) && fixed.on(TAKEOUT_DUP_REMOVED)
        );
        let later = Fixes::preset(PRESET_LATER).unwrap();
        assert!(FIX_IDS.iter().all(|id| later.on(*id)));
        assert!(!fixed.on(ALLOC_GFP_NOFS) && !fixed.on(SHRINKER_VFS_CACHE_PRESSURE));
    }
}
