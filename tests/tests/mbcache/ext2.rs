//! The ext2 xattr block-sharing model, scripted: `h_refcount` stops sharing at its maximum, freed
//! block numbers come back, and the 2.6.10 race (a block freed while another task's setxattr
//! holds its entry from a find) step by step, with and without the fix.

use mbcache_sim::{
    Ext2Xattr, Fixes, Pending, Step, Waits, EXT2_XATTR_REFCOUNT_MAX, PRESET_LATER, PRESET_SEED,
};
use sim_core::lockdep::ReportMode;
use sim_core::{Sim, SimConfig};

fn fs(preset: &str, inodes: usize, blocks: usize) -> (Sim, Ext2Xattr) {
    let sim = Sim::new(SimConfig::new(3).cpus(2).lockdep(ReportMode::Collect));
    let mount = sim.cx("mount", 0);
    let fixes = Fixes::preset(preset).expect("preset");
    let ext2 = Ext2Xattr::new(&sim, &mount, fixes, Waits::WouldBlock, inodes, blocks);
    (sim, ext2)
}

/// Runs a set to completion (continuing a share it left pending).
fn set(ext2: &Ext2Xattr, cx: &sim_core::Cx, inode: usize, value: u32) {
    let mut step = ext2.set(cx, inode, value).expect("set");
    while let Step::Pending(pending) = step {
        step = ext2.resume(cx, pending).expect("resume");
    }
}

#[test]
fn a_block_is_shared_by_at_most_refcount_max_plus_one_inodes_then_a_new_block_starts() {
    let inodes = EXT2_XATTR_REFCOUNT_MAX as usize + 10;
    let (sim, ext2) = fs(PRESET_LATER, inodes, 4);
    let cx = sim.cx("setfattr", 0);
    for inode in 0..inodes {
        set(&ext2, &cx, inode, 5);
    }
    // 2.6's test is `h_refcount > EXT2_XATTR_REFCOUNT_MAX`: the first block takes one share more.
    ext2.check_invariants(&sim.observer_cx("check", 0), &[]).expect("refcounts match the inodes");
    assert!(sim.marks().contains("xattr: block above its refcount maximum not shared"));
    assert!(sim.violations().is_empty(), "{:?}", sim.violations());
}

/// 1. task A: setxattr(inode 1, v): `ext2_xattr_cache_find()` hands out block 0's entry (A holds it).
/// 2. task B: delete inode 0, the block's only user: gets the entry, frees it and the block.
/// 3. A shares a block no inode owns; the allocator hands block 0 out again.
///
/// Fix: the exclusive get (2.6.11): B's get waits until A has taken its share.
#[test]
fn seed_frees_a_block_another_task_found_and_the_fixed_kernel_makes_the_disposal_wait() {
    for (preset, racy) in [(PRESET_SEED, true), (PRESET_LATER, false)] {
        let (sim, ext2) = fs(preset, 3, 4);
        let a = sim.cx("A", 0);
        let b = sim.cx("B", 1);
        set(&ext2, &b, 0, 9);
        let Step::Pending(found @ Pending::Share { .. }) = ext2.set(&a, 1, 9).expect("find") else {
            panic!("{preset}: cache_find hands out block 0");
        };
        let deleted = ext2.delete_inode(&b, 0).expect("delete");
        let kinds: Vec<String> = sim.violations().iter().map(|v| v.kind.to_string()).collect();
        if racy {
            assert_eq!(deleted, Step::Done, "{preset}");
            // The seed also allocates the entry with GFP_KERNEL under xattr_sem (lockdep's report).
            assert_eq!(kinds[0], "xattr-block-freed-while-found", "{preset}: {kinds:?}");
            continue;
        }
        assert!(kinds.is_empty(), "{preset}: {kinds:?}");
        let Step::Pending(release @ Pending::Release { .. }) = deleted else {
            panic!("{preset}: the disposal waits for A's find handle: {deleted:?}");
        };
        assert_eq!(ext2.resume(&a, found).expect("share"), Step::Done);
        assert_eq!(ext2.resume(&b, release).expect("release"), Step::Done);
        ext2.check_invariants(&sim.observer_cx("check", 0), &[]).expect("block 0 now has inode 1 only");
        assert!(sim.violations().is_empty(), "{preset}: {:?}", sim.violations());
    }
}
