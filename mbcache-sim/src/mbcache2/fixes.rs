//! mbcache2's fix table: every behavioural difference between the fs/mbcache.c versions modelled
//! (4.6, the rewrite, to 7.1), one row each, so a kernel version is a preset.
//!
//! Commit ids were read next to their titles (upstream ids quoted in stable backports, `Fixes:`
//! tags and shortlogs); 918b7306edac is the id `../shared/KERNEL_FACTS.md` records as verified,
//! its title confirmed in the 4.10 merge-window shortlog. Merge-window commits land in -rc1;
//! d227786ab111 was queued for 7.0-stable, so it is in 7.1 (its -rc not checked).
//!
//! The refcount rework of 2022 is two rows. 307af6c87937 "mbcache: automatically delete entries
//! from cache on freeing" is in the mainline push of 12 August 2022 (the 6.0 merge window, so
//! 6.0-rc1), beside 75896339e431 "mbcache: Remove mb_cache_entry_delete()", which removed an API
//! and changed no behaviour (no row). 5fc4cbd9fde5 "mbcache: Avoid nesting of cache->c_list_lock
//! under bit locks" names 307af6c87937 in its `Fixes:` tag; it is in the ext4 push of the 6.1
//! merge window (6.1-rc1) and was backported to 6.0.3, so the `linux-6.0` preset (6.0 as
//! released) has the nesting.

use sim_core::fixes::{Commit, Fix, FixId, FixTable, FixTableOf, KernelVersion, NamedPreset};

/// mbcache2's fix table, as a type.
#[derive(Debug)]
pub struct Mbcache2Fixes;

/// Which mbcache2 fixes are on (the config holds one; the model asks it).
pub type Fixes = sim_core::fixes::Fixes<Mbcache2Fixes>;

/// `mb_cache_entry_create()` schedules the shrink work past `c_max_entries` and shrinks
/// synchronously past twice that. Off, the cache grows without bound (as the one global 2.6
/// cache did) and the chain walks under a bucket's bit lock grow with it: CVE-2015-8952.
pub const LIMIT_CACHE_SIZE: FixId = FixId::new(0, "limit-cache-size");
/// Entries carry `e_reusable`, and the find functions return only reusable ones. Off (4.6-4.9),
/// every entry is found, and the flags word holds `e_referenced` alone.
pub const REUSABLE_FLAG: FixId = FixId::new(1, "reusable-flag");
/// The shrinker moves a referenced entry to the LRU's tail. Off, its `list_move_tail` arguments
/// are swapped, the entry stays first, and the next iteration reclaims it anyway.
pub const REFERENCED_TO_TAIL: FixId = FixId::new(2, "e-referenced-to-tail");
/// The shrinker skips entries somebody uses (`e_refcnt > 2`). Off, it unhashes them too.
pub const DONT_RECLAIM_USED: FixId = FixId::new(3, "dont-reclaim-used");
/// ext4 drops the last reference to an xattr block with `mb_cache_entry_delete_or_get()` and
/// waits (`mb_cache_entry_wait_unused()`) while a reuser holds the entry. Off, it deletes the
/// entry and frees the block under a task that found it and is about to reuse it.
pub const DELETE_OR_GET: FixId = FixId::new(4, "delete-or-get");
/// `e_referenced` and `e_reusable` are bits of `e_flags` changed with atomic bit operations.
/// Off, they share a plain bitfield word, and one task's read-modify-write loses another's.
pub const ATOMIC_ENTRY_FLAGS: FixId = FixId::new(5, "atomic-entry-flags");
/// `mb_cache_destroy()` cancels the shrink work first. Off, a pending work item runs on the freed
/// cache.
pub const CANCEL_SHRINK_WORK: FixId = FixId::new(6, "cancel-shrink-work");

/// The cache holds one reference to an entry, not two (hash and LRU), and the last put unhashes
/// and frees it; lookups take references with `atomic_inc_not_zero`, and the shrinker and
/// `mb_cache_entry_delete_or_get()` claim an unused entry with a `cmpxchg` of its count. To close
/// the window in which a new entry is hashed but not yet on the LRU, `mb_cache_entry_create()`
/// adds it to the LRU with the bucket's bit lock still held. Off (4.6 to 5.19), the hash and the
/// LRU each hold a reference, and the create drops the bit lock before the LRU add.
pub const AUTO_DELETE: FixId = FixId::new(7, "auto-delete-on-free");
/// `mb_cache_entry_create()` creates the entry with a second reference of its own, drops the bit
/// lock, adds the entry to the LRU under `c_list_lock`, then puts that reference. Off, with
/// `auto-delete-on-free` on (6.0), `c_list_lock` (a sleeping lock on PREEMPT_RT) is taken under a
/// bit spinlock; with both off (4.6 to 5.19), a delete between the unlock and the LRU add frees
/// the entry under its creator.
pub const CREATE_HOLDS_REF: FixId = FixId::new(8, "create-holds-ref");

/// Every [`FixId`], in table order.
pub const FIX_IDS: [FixId; 9] = [
    LIMIT_CACHE_SIZE,
    REUSABLE_FLAG,
    REFERENCED_TO_TAIL,
    DONT_RECLAIM_USED,
    DELETE_OR_GET,
    ATOMIC_ENTRY_FLAGS,
    CANCEL_SHRINK_WORK,
    AUTO_DELETE,
    CREATE_HOLDS_REF,
];

/// The rewrite as merged.
pub const PRESET_4_6: &str = "linux-4.6";
/// With the `e_referenced` fix and the reusable flag.
pub const PRESET_4_10: &str = "linux-4.10";
/// With Jan Kara's 2022 reuse-vs-release fixes and the one-reference cache.
pub const PRESET_6_0: &str = "linux-6.0";
/// With the create's own reference instead of the nested `c_list_lock`.
pub const PRESET_6_1: &str = "linux-6.1";
/// With atomic entry flags.
pub const PRESET_6_2: &str = "linux-6.2";
/// With the shrink work cancelled at destroy (the default).
pub const PRESET_7_1: &str = "linux-7.1";

const FIXES: &[Fix] = &[
    Fix {
        name: LIMIT_CACHE_SIZE.name(),
        title: "mbcache2: limit cache size",
        commit: Commit::Id("c2f3140fe2ec"),
        landed_in: KernelVersion::rc(4, 6, 0, 1),
        cve: Some("CVE-2015-8952"),
        symptom: "the cache grows without bound and each walk of a hash chain under its bit lock grows with it (soft lockups)",
    },
    Fix {
        name: REUSABLE_FLAG.name(),
        title: "mbcache: add reusable flag to cache entries",
        commit: Commit::Id("6048c64b2609"),
        landed_in: KernelVersion::rc(4, 10, 0, 1),
        cve: None,
        symptom: "the find functions return entries their filesystem can no longer share",
    },
    Fix {
        name: REFERENCED_TO_TAIL.name(),
        title: "mbcache: correctly handle 'e_referenced' bit",
        commit: Commit::Id("918b7306edac"),
        landed_in: KernelVersion::rc(4, 10, 0, 1),
        cve: None,
        symptom: "a referenced entry stays at the LRU's head and is reclaimed by the shrinker's next step",
    },
    Fix {
        name: DONT_RECLAIM_USED.name(),
        title: "mbcache: don't reclaim used entries",
        commit: Commit::Id("58318914186c"),
        landed_in: KernelVersion::rc(6, 0, 0, 1),
        cve: None,
        symptom: "the shrinker unhashes entries their users still hold",
    },
    Fix {
        name: DELETE_OR_GET.name(),
        title: "ext4: fix race when reusing xattr blocks",
        commit: Commit::Id("65f8b80053a1"),
        landed_in: KernelVersion::rc(6, 0, 0, 1),
        cve: None,
        symptom: "a task that found an xattr block in the cache takes journal write access to it after another task freed it",
    },
    Fix {
        name: ATOMIC_ENTRY_FLAGS.name(),
        title: "ext4: fix deadlock due to mbcache entry corruption",
        commit: Commit::Id("a44e84a9b776"),
        landed_in: KernelVersion::rc(6, 2, 0, 1),
        cve: None,
        symptom: "an update of e_referenced loses a concurrent update of e_reusable; ext4 retries a full block forever",
    },
    Fix {
        name: CANCEL_SHRINK_WORK.name(),
        title: "fs/mbcache: cancel shrink work before destroying the cache",
        commit: Commit::Id("d227786ab111"),
        landed_in: KernelVersion::new(7, 1, 0),
        cve: None,
        symptom: "the shrink work runs on a cache mb_cache_destroy() freed",
    },
    Fix {
        name: AUTO_DELETE.name(),
        title: "mbcache: automatically delete entries from cache on freeing",
        commit: Commit::Id("307af6c87937"),
        landed_in: KernelVersion::rc(6, 0, 0, 1),
        cve: None,
        symptom: "none alone (a rework); with create-holds-ref also off, a delete between mb_cache_entry_create()'s \
                  unlock and its LRU add frees the entry under its creator",
    },
    Fix {
        name: CREATE_HOLDS_REF.name(),
        title: "mbcache: Avoid nesting of cache->c_list_lock under bit locks",
        commit: Commit::Id("5fc4cbd9fde5"),
        landed_in: KernelVersion::rc(6, 1, 0, 1),
        cve: None,
        symptom: "on PREEMPT_RT, mb_cache_entry_create() takes c_list_lock, a sleeping lock there, under a bucket's \
                  bit spinlock: sleeping in atomic context",
    },
];

impl FixTableOf for Mbcache2Fixes {
    const TABLE: &'static FixTable = &FixTable {
        subsystem: "mbcache2",
        // 4.5 stands for f9a61eb4e247's cache before c2f3140fe2ec gave it a size limit (both
        // merged for 4.6-rc1); no preset names it. 4.5 itself still had the 2.6 design.
        oldest: KernelVersion::new(4, 5, 0),
        newest: KernelVersion::new(7, 1, 0),
        fixes: FIXES,
        presets: &[
            NamedPreset {
                name: PRESET_4_6,
                version: KernelVersion::new(4, 6, 0),
                description: "the mbcache2 rewrite as merged: per-filesystem caches, bit-locked chains, the shrink work",
            },
            NamedPreset {
                name: PRESET_4_10,
                version: KernelVersion::new(4, 10, 0),
                description: "with the reusable flag and the e_referenced fix; flags still share a bitfield",
            },
            NamedPreset {
                name: PRESET_6_0,
                version: KernelVersion::new(6, 0, 0),
                description: "with mb_cache_entry_delete_or_get()/wait_unused(), used entries kept by the shrinker, and one cache reference per entry",
            },
            NamedPreset {
                name: PRESET_6_1,
                version: KernelVersion::new(6, 1, 0),
                description: "with the create's own reference instead of c_list_lock nested under the bit lock",
            },
            NamedPreset {
                name: PRESET_6_2,
                version: KernelVersion::new(6, 2, 0),
                description: "with atomic bit operations on e_flags",
            },
            NamedPreset {
                name: PRESET_7_1,
                version: KernelVersion::new(7, 1, 0),
                description: "with the shrink work cancelled before destroy (the default)",
            },
        ],
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fix_table_is_consistent_and_each_fix_id_names_its_row() {
        Mbcache2Fixes::TABLE.validate(&FIX_IDS).expect("the mbcache2 fix table");
    }

    #[test]
    fn each_preset_has_the_fixes_landed_by_its_version() {
        let old = Fixes::parse(Some(PRESET_4_6), &[]).expect("4.6");
        assert!(old.on(LIMIT_CACHE_SIZE) && !old.on(REFERENCED_TO_TAIL) && !old.on(REUSABLE_FLAG));
        let mid = Fixes::parse(Some(PRESET_6_0), &[]).expect("6.0");
        assert!(mid.on(DELETE_OR_GET) && mid.on(AUTO_DELETE) && !mid.on(CREATE_HOLDS_REF));
        assert!(!mid.on(ATOMIC_ENTRY_FLAGS));
        let rt = Fixes::parse(Some(PRESET_6_1), &[]).expect("6.1");
        assert!(rt.on(CREATE_HOLDS_REF) && !rt.on(ATOMIC_ENTRY_FLAGS));
        let older = Fixes::parse(Some(PRESET_4_10), &[]).expect("4.10");
        assert!(!older.on(AUTO_DELETE) && !older.on(CREATE_HOLDS_REF));
        assert_eq!(Fixes::parse(Some(PRESET_7_1), &[]).expect("7.1"), Fixes::all());
        assert!(Fixes::parse(Some("4.4"), &[]).is_err(), "4.4 predates mbcache2");
        assert!(!Fixes::parse(Some("4.5"), &[]).expect("4.5").on(LIMIT_CACHE_SIZE));
    }
}
