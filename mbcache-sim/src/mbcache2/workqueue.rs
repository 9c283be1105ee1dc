//! The system workqueue as the shrink work uses it (kernel/workqueue.c): `schedule_work()`
//! queues a work item unless it is pending, `cancel_work_sync()` takes a pending one off, and a
//! kworker runs the queued items in order.
//!
//! A work item is the cache's `c_shrink_work`, named here by the cache's handle: the worker
//! reaches the cache through it, so a work item left queued when `mb_cache_destroy()` freed the
//! cache is a use after free the slab reports. One queue, one pool. The pending bit clears when a
//! kworker starts the item, so a `schedule_work()` during its run queues it again; the kernel
//! never runs one work item on two kworkers at once (non-reentrancy): a kworker that dequeues an
//! item another kworker is executing hands it to that kworker, which runs it again after its
//! current run (`process_one_work()`'s `find_worker_executing_work()` collision, the executing
//! worker's `scheduled` list). The item stays pending meanwhile.
//!
//! `cancel_work_sync()` takes a pending item off the queue (`__cancel_work()` grabbing its
//! pending bit) and then, as `__flush_work()` does, waits for a kworker executing it to finish:
//! the kernel queues a barrier work behind the running one and sleeps on the barrier's
//! completion; here the kworker's finish wakes one wait queue standing for those completions.
//! The op-level simulation runs an item whole inside one operation, so it never waits there;
//! threaded runs unmount while kworkers run (`check/threaded.rs`), and the wait is what keeps
//! 7.1's `mb_cache_destroy()` from freeing the cache under a running shrink.

use sim_core::{Cx, SpinLock, WaitQueue};

use super::mbcache::CacheHandle;

/// The pool's state, under the pool's lock.
#[derive(Debug, Default)]
struct Pool {
    /// The worklist: pending items no kworker took yet.
    worklist: Vec<CacheHandle>,
    /// Items a kworker is executing (the pool's busy hash).
    busy: Vec<CacheHandle>,
    /// Items handed to the kworker executing them, still pending, run again after its run.
    scheduled: Vec<CacheHandle>,
}

/// What a kworker's `process_one_work()` got from the pool.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Dequeued {
    /// The worklist was empty, and no item waits behind a running one.
    Idle,
    /// The item to run; its pending bit cleared and it is marked executing.
    Run(CacheHandle),
    /// The first item was executing on another kworker (or waits behind one there), which will
    /// run it: this kworker did nothing.
    Deferred,
}

/// The system workqueue's pool.
#[derive(Debug)]
pub(crate) struct Workqueue {
    pool: SpinLock<Pool>,
    /// The `wq_barrier` completions `__flush_work()` sleeps on: woken whenever a kworker
    /// finishes an item.
    barrier: WaitQueue,
}

impl Workqueue {
    /// An idle workqueue.
    pub(crate) fn new() -> Workqueue {
        Workqueue {
            pool: SpinLock::new("&pool->lock", Pool::default()),
            barrier: WaitQueue::new("wq_barrier->done"),
        }
    }

    /// `schedule_work(&cache->c_shrink_work)`: false when it was already pending (on the
    /// worklist, or handed to the kworker executing it).
    pub(crate) fn schedule_work(&self, cx: &Cx, work: CacheHandle) -> bool {
        let mut pool = self.pool.lock(cx);
        if pool.worklist.contains(&work) || pool.scheduled.contains(&work) {
            return false;
        }
        pool.worklist.push(work);
        cx.sim().mark("shrink-work-scheduled");
        true
    }

    /// `cancel_work_sync(&cache->c_shrink_work)`: takes the item off the queue, then waits
    /// until no kworker executes it; whether it was pending. A sleeping call.
    pub(crate) fn cancel_work_sync(&self, cx: &Cx, work: CacheHandle) -> bool {
        let (pending, running) = {
            let mut pool = self.pool.lock(cx);
            let before = pool.worklist.len() + pool.scheduled.len();
            pool.worklist.retain(|&queued| queued != work);
            pool.scheduled.retain(|&queued| queued != work);
            (before != pool.worklist.len() + pool.scheduled.len(), pool.busy.contains(&work))
        };
        if running {
            // __flush_work(): sleep until the executing kworker is done with the item.
            cx.sim().mark("cancel-work-waited");
            self.barrier.wait_event(cx, || !self.pool.lock(cx).busy.contains(&work));
        }
        pending
    }

    /// `process_one_work()`'s start: takes the worklist's first item, and either claims it
    /// (pending cleared, executing) or, when another kworker is executing it, moves it to that
    /// kworker's scheduled list (`find_worker_executing_work()`, `move_linked_works()`).
    pub(crate) fn dequeue(&self, cx: &Cx) -> Dequeued {
        let mut pool = self.pool.lock(cx);
        if pool.worklist.is_empty() {
            return if pool.scheduled.is_empty() { Dequeued::Idle } else { Dequeued::Deferred };
        }
        let work = pool.worklist.remove(0);
        if pool.busy.contains(&work) {
            pool.scheduled.push(work);
            cx.sim().mark("shrink-work-collided");
            return Dequeued::Deferred;
        }
        pool.busy.push(work);
        Dequeued::Run(work)
    }

    /// `process_one_work()`'s end, the pool lock retaken after the work function returned: the
    /// item is no longer executing, unless another kworker handed it over meanwhile, in which
    /// case this kworker claims it again and returns it to run (`process_scheduled_works()`).
    pub(crate) fn finish(&self, cx: &Cx, work: CacheHandle) -> Option<CacheHandle> {
        let mut pool = self.pool.lock(cx);
        if let Some(at) = pool.scheduled.iter().position(|&queued| queued == work) {
            pool.scheduled.remove(at);
            cx.sim().mark("shrink-work-rerun");
            return Some(work);
        }
        pool.busy.retain(|&running| running != work);
        drop(pool);
        // The barrier a `cancel_work_sync()` queued behind the item runs now: its completion.
        self.barrier.wake_up();
        None
    }
}
