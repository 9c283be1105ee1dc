//! The system workqueue as the shrink work uses it (kernel/workqueue.c): `schedule_work()`
//! queues a work item unless it is pending, `cancel_work_sync()` takes a pending one off, and a
//! kworker runs the queued items in order.
//!
//! A work item is the cache's `c_shrink_work`, named here by the cache's handle: the worker
//! reaches the cache through it, so a work item left queued when `mb_cache_destroy()` freed the
//! cache is a use after free the slab reports. The pending bit is "queued on the pool" (one queue,
//! one pool); `cancel_work_sync()`'s wait for a running item is not modelled, since the op-level
//! simulation runs an item whole inside one operation.

use sim_core::{Cx, SpinLock};

use super::mbcache::CacheHandle;

/// The pool's queue, under the pool's lock.
#[derive(Debug)]
pub(crate) struct Workqueue {
    pool: SpinLock<Vec<CacheHandle>>,
}

impl Workqueue {
    /// An idle workqueue.
    pub(crate) fn new() -> Workqueue {
        Workqueue { pool: SpinLock::new("&pool->lock", Vec::new()) }
    }

    /// `schedule_work(&cache->c_shrink_work)`: false when it was already pending.
    pub(crate) fn schedule_work(&self, cx: &Cx, work: CacheHandle) -> bool {
        let mut pool = self.pool.lock(cx);
        if pool.contains(&work) {
            return false;
        }
        pool.push(work);
        cx.sim().mark("shrink-work-scheduled");
        true
    }

    /// `cancel_work_sync(&cache->c_shrink_work)`: whether it was pending.
    pub(crate) fn cancel_work_sync(&self, cx: &Cx, work: CacheHandle) -> bool {
        let mut pool = self.pool.lock(cx);
        let before = pool.len();
        pool.retain(|&queued| queued != work);
        before != pool.len()
    }

    /// A kworker takes the next queued item (its pending bit clears as it starts).
    pub(crate) fn dequeue(&self, cx: &Cx) -> Option<CacheHandle> {
        let mut pool = self.pool.lock(cx);
        (!pool.is_empty()).then(|| pool.remove(0))
    }
}
