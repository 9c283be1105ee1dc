//! The registry's incremental invariant check (`Registry::check_invariants_touched`, which
//! `MbcacheSubject::check_invariants_incremental` runs where the whole check is not due) against
//! the whole check: after every operation of many seeds both must find the same broken invariant,
//! on the fixed kernel (none) and with fixes off whose bugs break invariants.

use mbcache_sim::{Fixes, MbcacheConfig, MbcacheSubject, PRESET_FIXED, PRESET_LATER, PRESET_SEED};
use sim_core::check::{self, Catalog};

/// Compares the two checks over `cases` seeds; returns (operations compared, cases broken).
fn agree(config: &MbcacheConfig, cases: u64) -> (u64, u64) {
    check::incremental_agrees::<MbcacheSubject>(config, 0, cases, 80)
        .unwrap_or_else(|disagreement| panic!("{disagreement}"))
}

#[test]
fn incremental_and_whole_checks_agree_on_the_fixed_kernel() {
    let config = MbcacheConfig { xattr_ops: false, ..MbcacheConfig::new(PRESET_FIXED, Fixes::all()) };
    let (compared, broken) = agree(&config, 150);
    assert!(compared > 4_000, "only {compared} operations compared");
    assert_eq!(broken, 0, "the fixed kernel broke an invariant");
}

#[test]
fn incremental_and_whole_checks_agree_with_one_bucket_and_long_chains() {
    let config = MbcacheConfig {
        bucket_bits_max: 0,
        devices: 4,
        blocks: 3,
        keys: 2,
        xattr_ops: false,
        ..MbcacheConfig::new(PRESET_FIXED, Fixes::all())
    };
    let (compared, broken) = agree(&config, 100);
    assert!(compared > 2_500, "only {compared} operations compared");
    assert_eq!(broken, 0, "the fixed kernel broke an invariant");
}

/// The early `c_entry_count` bump leaks a count on a failed allocation: both checks must find
/// the leak after the same operation.
#[test]
fn incremental_check_finds_the_entry_count_leak_where_the_whole_check_does() {
    let config = <MbcacheSubject as Catalog>::config(Some(PRESET_LATER), &["entry-count-after-alloc".into()])
        .expect("config");
    let (_, broken) = agree(&MbcacheConfig { xattr_ops: false, ..config }, 100);
    assert!(broken > 10, "the leak broke an invariant in only {broken} cases");
}

/// The seed kernel (every fix off, `dup` and `takeout` in the API): whatever its bugs break,
/// both checks must break it at the same operation.
#[test]
fn incremental_and_whole_checks_agree_on_the_seed_kernel() {
    let config = MbcacheConfig { xattr_ops: false, ..MbcacheConfig::new(PRESET_SEED, Fixes::none()) };
    let (compared, broken) = agree(&config, 150);
    assert!(compared > 2_000, "only {compared} operations compared");
    assert!(broken > 0, "the seed kernel broke no invariant in 150 cases");
}

/// With the ext2 filesystem's ops mixed in (the campaigns' default), the incremental check looks
/// at the filesystem only after an xattr op: both checks must still agree after every op.
#[test]
fn incremental_and_whole_checks_agree_with_xattr_ops_on_the_fixed_kernel() {
    let config = MbcacheConfig::new(PRESET_FIXED, Fixes::all());
    assert!(config.api_ops && config.xattr_ops);
    let (compared, broken) = agree(&config, 150);
    assert!(compared > 4_000, "only {compared} operations compared");
    assert_eq!(broken, 0, "the fixed kernel broke an invariant");
}

/// Only xattr ops, on the fixed kernel and with `exclusive-get` off (whose race frees a block a
/// setxattr still holds from a find): the filesystem's cache and blocks checked after every op
/// both ways.
#[test]
fn incremental_and_whole_checks_agree_on_xattr_ops_alone() {
    let fixed = MbcacheConfig { api_ops: false, ..MbcacheConfig::new(PRESET_FIXED, Fixes::all()) };
    let (compared, broken) = agree(&fixed, 150);
    assert!(compared > 5_000, "fixed kernel: only {compared} operations compared");
    assert_eq!(broken, 0, "the fixed kernel broke an invariant");
    let racy =
        <MbcacheSubject as Catalog>::config(Some(PRESET_LATER), &["exclusive-get".into()]).expect("config");
    let (compared, _) = agree(&MbcacheConfig { api_ops: false, ..racy }, 100);
    assert!(compared > 1_000, "exclusive-get off: only {compared} operations compared");
}

/// The incremental check's quiet path (nothing written since the last check that passed: no
/// entry, chain head, LRU link, handle or cache) still compares each cache's `c_entry_count` with
/// its live entries: the seed's failed allocation writes no memory but leaks a count, and the
/// very next incremental check must report it.
#[test]
fn the_incremental_check_finds_a_count_leaked_by_an_op_that_wrote_nothing() {
    use mbcache_sim::{bdev_address, MbError, Registry, Waits, ENTRY_HEADER_SIZE};
    use sim_core::fault::{FaultAttr, FaultKind, FaultPlan};
    use sim_core::{lockdep::ReportMode, Errno, Sim, SimConfig};
    let sim = Sim::new(SimConfig::new(3).lockdep(ReportMode::Collect));
    let cx = sim.cx("mount", 0);
    let registry = Registry::new(&sim, Fixes::none(), Waits::WouldBlock);
    let cache = registry.create(&cx, "ext2_xattr", None, ENTRY_HEADER_SIZE, 0, 1).expect("create");
    let entry = registry.alloc(&cx, cache).expect("alloc");
    registry.insert(&cx, &entry, bdev_address(0), 1, &[]).expect("insert");
    registry.release(&cx, entry).expect("release");
    registry.check_invariants_touched(&cx).expect("after the writes");
    let quiet = "incremental check: nothing written since it passed";
    assert!(!sim.marks().contains(quiet), "the writes took the quiet path: {:?}", sim.marks());
    registry.check_invariants_touched(&cx).expect("nothing written since");
    assert!(sim.marks().contains(quiet), "the second check did not take the quiet path");
    sim.set_faults(FaultPlan::with(FaultAttr::probability(100).kind(FaultKind::Slab).site("ext2_xattr")));
    let failed = registry.alloc(&cx, cache);
    assert_eq!(failed.map(|_| ()), Err(MbError::Errno(Errno::ENOMEM)));
    let found = registry.check_invariants_touched(&cx);
    assert!(matches!(&found, Err(v) if v.kind == "leak"), "{found:?}");
    assert!(registry.check_invariants(&cx).is_err(), "the whole check must agree");
}

/// The quiet path compares each count with the one its last pass read (`passed_counts`), not with
/// whatever a whole check read since: a whole check that runs between the leak and the next
/// incremental check (as the campaigns run one every few operations) and reads the leaked count
/// must not make the quiet path take it for the count that passed.
#[test]
fn the_quiet_path_finds_a_leaked_count_a_whole_check_read_first() {
    use mbcache_sim::{MbError, Registry, Waits, ENTRY_HEADER_SIZE};
    use sim_core::fault::{FaultAttr, FaultKind, FaultPlan};
    use sim_core::{lockdep::ReportMode, Errno, Sim, SimConfig};
    let sim = Sim::new(SimConfig::new(3).lockdep(ReportMode::Collect));
    let cx = sim.cx("mount", 0);
    let registry = Registry::new(&sim, Fixes::none(), Waits::WouldBlock);
    let cache = registry.create(&cx, "ext2_xattr", None, ENTRY_HEADER_SIZE, 0, 1).expect("create");
    registry.check_invariants_touched(&cx).expect("after the create");
    registry.check_invariants_touched(&cx).expect("nothing written since");
    let quiet = "incremental check: nothing written since it passed";
    assert!(sim.marks().contains(quiet), "the second check did not take the quiet path");
    sim.set_faults(FaultPlan::with(FaultAttr::probability(100).kind(FaultKind::Slab).site("ext2_xattr")));
    let failed = registry.alloc(&cx, cache);
    assert_eq!(failed.map(|_| ()), Err(MbError::Errno(Errno::ENOMEM)));
    let whole = registry.check_invariants(&cx);
    assert!(matches!(&whole, Err(v) if v.kind == "leak"), "{whole:?}");
    // Nothing written since the pass: the quiet path again, with the leaked count moved.
    let found = registry.check_invariants_touched(&cx);
    assert!(matches!(&found, Err(v) if v.kind == "leak"), "the quiet path passed a leaked count: {found:?}");
}
