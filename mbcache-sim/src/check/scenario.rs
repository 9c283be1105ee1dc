//! The teaching scenarios' bodies: short scripted runs whose traces each show one idea.

use sim_core::mm::Gfp;
use sim_core::Sim;

use crate::fixes::Fixes;
use crate::registry::{bdev_address, Registry, Waits, ENTRY_HEADER_SIZE, ENTRY_INDEX_SIZE};

/// Seed 2.6.10: a reader walks an xattr key while another task frees the entry it holds.
pub(crate) fn scenario_find_next_after_free(sim: &Sim) {
    let registry = Registry::new(sim, Fixes::none(), Waits::WouldBlock);
    let reader = sim.cx("setxattr(A)", 0);
    let releaser = sim.cx("unlink(B)", 1);
    let Ok(cache) = registry.create(&reader, "ext2_xattr", None, ENTRY_HEADER_SIZE + ENTRY_INDEX_SIZE, 1, 2)
    else {
        return;
    };
    let bdev = bdev_address(0);
    for block in [10, 11] {
        if let Ok(handle) = registry.alloc(&releaser, cache) {
            let _ = registry.insert(&releaser, &handle, bdev, block, &[7]);
            let _ = registry.release(&releaser, handle);
        }
    }
    reader.note("A: looks for a shared xattr block with hash 7");
    let Ok(Some(first)) = registry.find_first(&reader, cache, 0, bdev, 7) else { return };
    releaser.note("B: drops the last inode using that block: get + free");
    let Ok((_, block)) = registry.entry_block(&reader, &first) else { return };
    if let Ok(Some(held)) = registry.get(&releaser, cache, bdev, block) {
        let _ = registry.free(&releaser, held);
    }
    reader.note("A: the block did not fit; find_next from the entry B just unhashed");
    let _ = registry.find_next(&reader, first, 0, bdev, 7);
}

/// Release order on the global LRU, and the shrinker counting and freeing from its head.
pub(crate) fn scenario_shrinker_lru(sim: &Sim) {
    let registry = Registry::new(sim, Fixes::all(), Waits::WouldBlock);
    let cx = sim.cx("fs", 0);
    let reclaim = sim.cx("kswapd", 1);
    let Ok(cache) = registry.create(&cx, "ext3_xattr", None, ENTRY_HEADER_SIZE + ENTRY_INDEX_SIZE, 1, 2)
    else {
        return;
    };
    for block in 0..3 {
        if let Ok(handle) = registry.alloc(&cx, cache) {
            let _ = registry.insert(&cx, &handle, bdev_address(0), block, &[block as u32]);
            cx.note(format!("release entry for block {block}: it joins the LRU tail"));
            let _ = registry.release(&cx, handle);
        }
    }
    let _ = registry.shrink_fn(&reclaim, 0, Gfp::GFP_KERNEL);
    reclaim.note("nr_to_scan 2: the two oldest releases go");
    let _ = registry.shrink_fn(&reclaim, 2, Gfp::GFP_KERNEL);
    let _ = registry.shrink_fn(&reclaim, 0, Gfp::GFP_KERNEL);
}
