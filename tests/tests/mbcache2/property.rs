//! The op-level simulation of mbcache2 against its reference model: the newest kernel passes and
//! reaches every interesting state (a release that waits for a reuser, a reuse undone, a find-next
//! from an unhashed entry, the shrinker's second chance and its keeping of used entries, the shrink
//! work, a sync shrink, a full block made reusable again); older kernels pass on workloads that do
//! not reach their bugs.

use mbcache_sim::{Mbcache2Config, Mbcache2FixSet, Mbcache2Subject, PRESET_4_10, PRESET_4_6, PRESET_6_2};
use sim_core::check::assert_cases_pass;

/// What a fixed run must reach (marks set with `cx.sim().mark` in the kernel modules).
const MARKS_EXPECTED: &[&str] = &[
    "create-ebusy",
    "xattr-reused",
    "xattr-reuse-undone",
    "xattr-block-full",
    "xattr-block-freed",
    "xattr-block-reusable-again",
    "delete-or-get-in-use",
    "delete-or-get-deleted",
    "wait-unused",
    "find-skips-unreusable",
    "shrink-second-chance",
    "shrink-kept-used",
    "shrink-freed",
    "entry-freed",
];

#[test]
fn the_newest_kernel_matches_its_reference_and_reaches_every_interesting_state() {
    // Two filesystems: two caches side by side.
    let two = Mbcache2Config { filesystems: 2, ..Mbcache2Config::fixed() };
    let mut marks = assert_cases_pass::<Mbcache2Subject>(&two, 0, 150, 80);
    // Few keys on one filesystem: two tasks find the same block and race to reuse it.
    let crowded = Mbcache2Config { filesystems: 1, keys: 2, refcount_max: 2, ..Mbcache2Config::fixed() };
    marks.extend(assert_cases_pass::<Mbcache2Subject>(&crowded, 0, 100, 60));
    for mark in MARKS_EXPECTED {
        assert!(marks.contains(*mark), "never reached {mark:?}; reached {marks:?}");
    }
}

#[test]
fn a_small_cache_runs_its_shrink_work_and_sync_shrink_and_stays_bounded() {
    // One filesystem and few keys, so one cache passes c_max_entries (32) and twice that.
    let config = Mbcache2Config { filesystems: 1, ..Mbcache2Config::fixed() };
    let marks = assert_cases_pass::<Mbcache2Subject>(&config, 0, 10, 800);
    for mark in ["shrink-work-scheduled", "shrink-work-ran", "create-sync-shrink"] {
        assert!(marks.contains(mark), "never reached {mark:?}; reached {marks:?}");
    }
}

#[test]
fn older_kernels_match_the_reference_where_it_holds_for_them() {
    // One task (a lone task cannot race on the flags word) and fewer blocks than c_max_entries
    // (no shrink work to outlive its cache): 6.2 behaves as the newest kernel.
    let fixes = Mbcache2FixSet::parse(Some(PRESET_6_2), &[]).expect("6.2");
    let config =
        Mbcache2Config { tasks: 1, filesystems: 1, blocks: 24, ..Mbcache2Config::new(PRESET_6_2, fixes) };
    let marks = assert_cases_pass::<Mbcache2Subject>(&config, 0, 40, 40);
    assert!(marks.contains("shrink-second-chance"), "6.2: {marks:?}");
    // 4.10 keeps no used entry from the shrinker: a find after a shrink disagrees.
    let fixes = Mbcache2FixSet::parse(Some(PRESET_4_10), &[]).expect("4.10");
    let config =
        Mbcache2Config { tasks: 1, filesystems: 1, blocks: 24, ..Mbcache2Config::new(PRESET_4_10, fixes) };
    assert!(sim_core::check::find_failure::<Mbcache2Subject>(&config, 0, 200, 40).is_some());
    let fixes = Mbcache2FixSet::parse(Some(PRESET_4_6), &[]).expect("4.6");
    assert!(fixes.on(mbcache_sim::LIMIT_CACHE_SIZE) && !fixes.on(mbcache_sim::REUSABLE_FLAG));
}

/// An edited artifact's sizes are refused with one line before any buffer head or chain is made:
/// more xattr blocks or hash chains over all filesystems than the bounds, a prefill past its
/// bound or past a filesystem's blocks; the configs the catalog makes, and the bounds
/// themselves, pass.
#[test]
fn a_config_asking_for_more_blocks_chains_or_prefill_than_the_bounds_is_refused() {
    use mbcache_sim::{MBCACHE2_BLOCKS_MAX, MBCACHE2_CHAINS_MAX, MBCACHE2_PREFILL_MAX};
    use sim_core::check::Subject;
    let made = Mbcache2Config::fixed();
    let check = |config: &Mbcache2Config| Mbcache2Subject::check_config(config);
    let refused = |config: &Mbcache2Config, what: &str| {
        let line = check(config).expect_err(what);
        assert!(line.contains(what) && !line.contains('\n'), "{line}");
    };
    assert_eq!(check(&made), Ok(()));
    let prefill = MBCACHE2_PREFILL_MAX;
    let bound = Mbcache2Config { filesystems: 1, blocks: u16::MAX, prefill, bucket_bits: 16, ..made.clone() };
    assert_eq!(check(&bound), Ok(()));
    assert_eq!(u32::from(u16::MAX) + 1, MBCACHE2_BLOCKS_MAX);
    refused(
        &Mbcache2Config { filesystems: 255, blocks: u16::MAX, ..made.clone() },
        "filesystems 255 times blocks 65535",
    );
    // The quadratic prefill (each new block scans the bitmap from 0) stops at its own bound.
    refused(&Mbcache2Config { prefill: prefill + 1, ..bound.clone() }, &format!("prefill {}", prefill + 1));
    refused(
        &Mbcache2Config { blocks: u16::MAX, prefill: u16::MAX, ..made.clone() },
        "prefill 65535 is more than",
    );
    // 255 filesystems of 16 bucket bits would be 16M chains; 64 of ext4's 10 is the bound.
    let ext4 = Mbcache2Config { filesystems: 64, blocks: 8, bucket_bits: 10, ..made.clone() };
    assert_eq!(64 << 10, MBCACHE2_CHAINS_MAX);
    assert_eq!(check(&ext4), Ok(()));
    refused(
        &Mbcache2Config { filesystems: 65, ..ext4 },
        "filesystems 65 times 1 << bucket_bits 10 is 66560 hash chains",
    );
    let wide = Mbcache2Config { filesystems: 2, blocks: 8, prefill: 0, ..bound };
    refused(&wide, "filesystems 2 times 1 << bucket_bits 16");
    refused(&Mbcache2Config { blocks: 8, prefill: 9, ..made }, "prefill 9 is more than the 8 blocks");
}
