//! Direct reclaim as an allocating task meets it: mm/vmscan.c's `shrink_slab` over registered
//! shrinkers (`register_shrinker`, `set_shrinker` in 2.6), and lockdep's `fs_reclaim` pseudo-lock
//! (`fs_reclaim_acquire`/`fs_reclaim_release` in mm/page_alloc.c, Linux 4.14 and later), which
//! teaches lockdep that an allocation that may enter the filesystem depends on every lock reclaim
//! takes there.
//!
//! The check applies to every era ksim models: it is lockdep's knowledge, not the model's
//! behaviour, and the deadlock it describes (M3 in KERNEL_FACTS: `mb_cache_entry_alloc` with
//! GFP_KERNEL under `xattr_sem`) existed long before lockdep could see it. A model registers the
//! lock classes its filesystem takes from reclaim ([`Sim::register_fs_reclaim_lock`]); from then
//! on, a `__GFP_FS` allocation by a task holding one of them is a "possible circular locking
//! dependency" through `fs_reclaim`. Reclaim itself runs when the Sim's reclaim plan says so
//! (a fault plan of its own, so existing fault plans keep failing the same calls) or when the
//! page allocator runs out: then the registered shrinkers run on the allocating task, in
//! registration order, with `fs_reclaim` held. Left out: kswapd, LRU page reclaim and writeback,
//! `PF_MEMALLOC` and `memalloc_nofs_save` scopes, shrinker batching by `seeks`.

use std::fmt;
use std::panic::Location;
use std::sync::{Arc, Mutex as StdMutex};

use crate::chain_cache::ClassKey;
use crate::cx::Cx;
use crate::errno::Errno;
use crate::fault::{FaultPlan, SiteRef};
use crate::lockdep::LockMode;
use crate::mm::Gfp;
use crate::sim::Sim;

/// The lockdep class of the reclaim pseudo-lock, as the kernel names its `lockdep_map`.
pub const FS_RECLAIM_CLASS: &str = "fs_reclaim";

/// `SHRINK_BATCH`: how many objects `shrink_slab` asks a shrinker to scan at a time.
pub const SHRINK_BATCH: u64 = 128;

/// `struct shrink_control` as far as a 2.6-era shrinker sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ShrinkControl {
    /// The allocation's flags: a shrinker that would enter the filesystem checks `__GFP_FS`.
    pub gfp: Gfp,
    /// Objects to scan; 0 asks only for a count.
    pub nr_to_scan: u64,
}

/// A shrinker callback: returns the objects it freed (or, for `nr_to_scan == 0`, how many it
/// could free). A plain `std` Arc: it only owns the callback.
pub type ShrinkerFn = Arc<dyn Fn(&Cx, &ShrinkControl) -> u64 + Send + Sync>;

/// A registered shrinker, for [`Sim::unregister_shrinker`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct ShrinkerId(u64);

#[derive(Clone)]
struct Shrinker {
    id: u64,
    name: &'static str,
    scan: ShrinkerFn,
}

/// The reclaim side of a `Sim`: instrumentation (`std` locks), so it adds no interleavings.
#[derive(Default)]
pub(crate) struct ReclaimState {
    plan: StdMutex<FaultPlan>,
    /// Whether `plan` has an attribute, stored with it: a sleeping allocation with no reclaim
    /// plan (every campaign's but the ones that set one) is answered without the plan's lock.
    /// Checker bookkeeping, a `std` atomic.
    planned: std::sync::atomic::AtomicBool,
    shrinkers: StdMutex<Vec<Shrinker>>,
    next_id: StdMutex<u64>,
    runs: StdMutex<u64>,
}

impl fmt::Debug for ReclaimState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReclaimState").finish_non_exhaustive()
    }
}

fn locked<T>(mutex: &StdMutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Sim {
    /// Tells lockdep that reclaim in `__GFP_FS` context takes locks of `class` (a filesystem's
    /// inode or xattr lock, taken when reclaim evicts an inode), as lockdep learns it in the
    /// kernel from one reclaim pass that took it: the dependency `fs_reclaim -> class` is
    /// recorded now, from `cx`, which the report's existing chain then names.
    #[track_caller]
    pub fn register_fs_reclaim_lock(&self, cx: &Cx, class: &'static str) {
        let site = Location::caller();
        let reclaim = FS_RECLAIM_KEY.with(|key| cx.push_held(key, LockMode::Mutex, false, site));
        let inner = cx.push_held(&ClassKey::new(class), LockMode::Mutex, false, site);
        cx.lock_acquire_failed(inner);
        cx.lock_acquire_failed(reclaim);
        cx.note(format!("fs_reclaim may take {class}"));
    }

    /// Mirrors register_shrinker() (2.6's set_shrinker()): `scan` runs in direct reclaim.
    pub fn register_shrinker(&self, name: &'static str, scan: ShrinkerFn) -> ShrinkerId {
        let reclaim = &self.world.reclaim;
        let id = {
            let mut next = locked(&reclaim.next_id);
            *next += 1;
            *next
        };
        locked(&reclaim.shrinkers).push(Shrinker { id, name, scan });
        ShrinkerId(id)
    }

    /// Mirrors unregister_shrinker(); `ENOENT` when `id` is not registered.
    pub fn unregister_shrinker(&self, id: ShrinkerId) -> Result<(), Errno> {
        let mut shrinkers = locked(&self.world.reclaim.shrinkers);
        let at = shrinkers.iter().position(|s| s.id == id.0).ok_or(Errno::ENOENT)?;
        shrinkers.remove(at);
        Ok(())
    }

    /// The registered shrinkers' names, in the order reclaim runs them.
    pub fn shrinkers(&self) -> Vec<&'static str> {
        locked(&self.world.reclaim.shrinkers).iter().map(|s| s.name).collect()
    }

    /// Whether any shrinker is registered (no copy of the list).
    pub fn has_shrinkers(&self) -> bool {
        !locked(&self.world.reclaim.shrinkers).is_empty()
    }

    /// Replaces the reclaim plan: a sleeping allocation at a site the plan "fails" enters
    /// direct reclaim (and then succeeds or fails as the fault plan says).
    pub fn set_reclaim_plan(&self, plan: FaultPlan) {
        let mut kept = locked(&self.world.reclaim.plan);
        self.world.reclaim.planned.store(!plan.is_empty(), std::sync::atomic::Ordering::Release);
        *kept = plan;
    }

    /// Direct reclaim passes run so far.
    pub fn reclaim_runs(&self) -> u64 {
        *locked(&self.world.reclaim.runs)
    }

    /// Whether the reclaim plan sends this allocation into direct reclaim. An empty plan draws
    /// nothing from the RNG, so a model that never sets one keeps its random stream.
    fn should_reclaim(&self, site: SiteRef<'_>, size: u64) -> bool {
        let mut plan = locked(&self.world.reclaim.plan);
        if plan.is_empty() {
            return false;
        }
        plan.should_fail_at(site, size, |percent| self.percent_chance(percent))
    }
}

/// Whether an allocation with `gfp` may recurse into the filesystem (`__need_fs_reclaim`).
pub fn may_enter_fs(gfp: Gfp) -> bool {
    gfp.allows_blocking() && gfp.contains(Gfp::__GFP_FS)
}

/// Mirrors fs_reclaim_acquire(gfp) followed at once by fs_reclaim_release(gfp), as
/// slab_pre_alloc_hook() and __alloc_pages_nodemask() do: lockdep records that every lock the
/// task holds is taken before reclaim, and reports a cycle with a lock reclaim takes. Not
/// traced (it is lockdep's bookkeeping, made on every allocation).
#[track_caller]
pub fn fs_reclaim_might_enter(cx: &Cx, gfp: Gfp) {
    if !may_enter_fs(gfp) || cx.is_observer() || !cx.sim().lockdep().is_enabled() || in_reclaim(cx) {
        return;
    }
    let site = Location::caller();
    let token = FS_RECLAIM_KEY.with(|key| cx.push_held(key, LockMode::Mutex, false, site));
    cx.lock_acquire_failed(token);
}

thread_local! {
    /// [`FS_RECLAIM_CLASS`]'s memo, for [`fs_reclaim_might_enter`] (every sleeping allocation)
    /// and reclaim itself: its class id and chain found without hashing the name or asking the
    /// thread's table. One per thread, so worker threads' worlds never share it.
    static FS_RECLAIM_KEY: ClassKey = const { ClassKey::new(FS_RECLAIM_CLASS) };
}

/// Whether `cx` is running reclaim: its allocations do not reclaim again (the kernel's
/// `PF_MEMALLOC`, which `__perform_reclaim` sets around the same section).
fn in_reclaim(cx: &Cx) -> bool {
    cx.holds(FS_RECLAIM_CLASS)
}

/// Mirrors the checks at the top of a sleeping allocation (`might_sleep_if` and
/// `fs_reclaim_acquire`/`release` in slab_pre_alloc_hook()): `what` names the call in a report.
#[track_caller]
pub(crate) fn might_alloc(cx: &Cx, gfp: Gfp, what: &str) {
    if gfp.allows_blocking() {
        cx.might_sleep(what);
    }
    fs_reclaim_might_enter(cx, gfp);
}

/// Direct reclaim for an allocation at `site`, if the reclaim plan says it happens now: the
/// pages or objects the shrinkers freed (0 when no reclaim ran).
pub(crate) fn maybe_direct_reclaim(cx: &Cx, gfp: Gfp, site: SiteRef<'_>, size: u64) -> u64 {
    // No reclaim plan (told by a load, before the held locks are searched and the plan's lock
    // taken): no reclaim, and nothing counted or drawn, as an empty plan's answer.
    let planned = || cx.sim().world.reclaim.planned.load(std::sync::atomic::Ordering::Acquire);
    if !gfp.allows_blocking() || !planned() || in_reclaim(cx) || !cx.sim().should_reclaim(site, size) {
        return 0;
    }
    direct_reclaim(cx, gfp)
}

/// Mirrors __perform_reclaim() down to shrink_slab(): with `fs_reclaim` held (when `gfp` allows
/// entering the filesystem, so the locks a shrinker takes are ordered after it), every
/// registered shrinker runs once on the allocating task with [`SHRINK_BATCH`]. Returns what
/// they freed. The shrinkers are called with no `std` lock held, so they may register others.
#[track_caller]
pub fn direct_reclaim(cx: &Cx, gfp: Gfp) -> u64 {
    let site = Location::caller();
    *locked(&cx.sim().world.reclaim.runs) += 1;
    let shrinkers: Vec<Shrinker> = locked(&cx.sim().world.reclaim.shrinkers).clone();
    cx.note(format!("direct reclaim: gfp {gfp:?}, {} shrinkers", shrinkers.len()));
    let enter_fs = may_enter_fs(gfp) && !cx.is_observer();
    let token = enter_fs.then(|| FS_RECLAIM_KEY.with(|key| cx.push_held(key, LockMode::Mutex, false, site)));
    let control = ShrinkControl { gfp, nr_to_scan: SHRINK_BATCH };
    let mut freed = 0;
    for shrinker in &shrinkers {
        let count = (shrinker.scan)(cx, &control);
        cx.note(format!("shrinker {} freed {count}", shrinker.name));
        freed += count;
    }
    if let Some(token) = token {
        cx.lock_acquire_failed(token);
    }
    freed
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fault::FaultAttr;
    use crate::lockdep::{LockdepReport, ReportMode};
    use crate::locks::{Mutex, SpinLock};
    use crate::mm::KmemCache;
    use crate::sim::SimConfig;
    use std::sync::atomic::{AtomicU64, Ordering};

    fn sim() -> Sim {
        Sim::new(SimConfig::new(1).lockdep(ReportMode::Collect))
    }

    /// Whether this thread's `fs_reclaim` memo holds `sim`'s class id for it.
    fn memo_knows(sim: &Sim) -> bool {
        FS_RECLAIM_KEY.with(|key| key.class(sim.lockdep().id()).is_some())
    }

    #[test]
    fn the_by_name_class_memo_is_per_thread_so_another_threads_world_never_overwrites_it() {
        let here = sim();
        fs_reclaim_might_enter(&here.cx("alloc", 0), Gfp::GFP_KERNEL);
        assert!(memo_knows(&here), "an allocation fills this thread's fs_reclaim memo");
        std::thread::scope(|scope| {
            scope.spawn(|| {
                let there = sim();
                assert!(!memo_knows(&there), "a new thread's memo starts empty");
                fs_reclaim_might_enter(&there.cx("alloc", 0), Gfp::GFP_KERNEL);
                assert!(memo_knows(&there), "the other thread's world fills its own memo");
            });
        });
        assert!(memo_knows(&here), "another thread's world overwrote this thread's memo");
        assert_eq!(
            FS_RECLAIM_KEY.with(|key| key.name_hash),
            crate::trace::name_hash(FS_RECLAIM_CLASS),
            "a by-name class's compile-time hash is the trace's"
        );
    }

    #[test]
    fn a_fs_allocation_under_a_lock_reclaim_takes_is_a_circular_dependency_through_fs_reclaim() {
        let sim = sim();
        let cx = sim.cx("setfattr", 0);
        sim.register_fs_reclaim_lock(&cx, "xattr_sem");
        let xattr_sem = Mutex::new("xattr_sem", ());
        let cache = KmemCache::new("mbcache", 64);
        let held = xattr_sem.lock(&cx);
        let nofs = cache.alloc(&cx, Gfp::GFP_NOFS, ()).expect("alloc");
        assert!(sim.lockdep().reports().is_empty(), "GFP_NOFS does not enter the filesystem");
        let kernel = cache.alloc(&cx, Gfp::GFP_KERNEL, ()).expect("alloc");
        drop(held);
        let reports = sim.lockdep().reports();
        assert_eq!(reports.len(), 1, "{reports:?}");
        let LockdepReport::CircularDependency { held, acquiring, .. } = &reports[0] else {
            panic!("{}", reports[0]);
        };
        assert_eq!((held.class.as_str(), acquiring.class.as_str()), ("xattr_sem", FS_RECLAIM_CLASS));
        let text = reports[0].to_string();
        assert!(text.contains("-> fs_reclaim then xattr_sem"), "{text}");
        for handle in [nofs, kernel] {
            cache.free(&cx, handle).expect("free");
        }
    }

    #[test]
    fn atomic_allocations_never_touch_fs_reclaim_and_observers_are_not_checked() {
        let sim = sim();
        let cx = sim.cx("t", 0);
        sim.register_fs_reclaim_lock(&cx, "xattr_sem");
        let xattr_sem = Mutex::new("xattr_sem", ());
        let held = xattr_sem.lock(&cx);
        fs_reclaim_might_enter(&cx, Gfp::GFP_ATOMIC);
        fs_reclaim_might_enter(&sim.observer_cx("checker", 0), Gfp::GFP_KERNEL);
        drop(held);
        assert!(sim.lockdep().reports().is_empty());
        assert!(!sim.lockdep().dependencies().contains(&("xattr_sem".into(), FS_RECLAIM_CLASS.into())));
    }

    #[test]
    fn the_reclaim_plan_runs_shrinkers_on_the_allocating_task_with_fs_reclaim_held() {
        let sim = sim();
        let cx = sim.cx("t", 0);
        let cache_lock = Arc::new(SpinLock::new("shrinker_lock", ()));
        let scanned = Arc::new(AtomicU64::new(0));
        let (lock, seen) = (cache_lock.clone(), scanned.clone());
        let id = sim.register_shrinker(
            "test",
            Arc::new(move |cx, control| {
                drop(lock.lock(cx));
                seen.fetch_add(control.nr_to_scan, Ordering::Relaxed);
                3
            }),
        );
        sim.set_reclaim_plan(FaultPlan::with(FaultAttr::nth(2).site("things")));
        let cache = KmemCache::new("things", 16);
        let kept: Vec<_> = (0..3).map(|_| cache.alloc(&cx, Gfp::GFP_KERNEL, ()).expect("alloc")).collect();
        assert_eq!(sim.reclaim_runs(), 1, "only the second allocation reclaims");
        assert_eq!(scanned.load(Ordering::Relaxed), SHRINK_BATCH);
        assert!(sim.lockdep().dependencies().contains(&(FS_RECLAIM_CLASS.into(), "shrinker_lock".into())));
        assert_eq!(sim.shrinkers(), ["test"]);
        sim.unregister_shrinker(id).expect("registered");
        assert_eq!(sim.unregister_shrinker(id), Err(Errno::ENOENT));
        for handle in kept {
            cache.free(&cx, handle).expect("free");
        }
        assert_eq!(cx.held_count(), 0, "fs_reclaim is not left held");
    }

    #[test]
    fn a_shrinker_that_allocates_neither_recurses_into_reclaim_nor_reports_recursion() {
        let sim = sim();
        let cx = sim.cx("t", 0);
        let cache = Arc::new(KmemCache::new("things", 16));
        let inner = cache.clone();
        sim.register_shrinker(
            "allocating",
            Arc::new(move |cx, _| {
                let handle = inner.alloc(cx, Gfp::GFP_KERNEL, ()).expect("alloc");
                inner.free(cx, handle).expect("free");
                1
            }),
        );
        sim.set_reclaim_plan(FaultPlan::with(FaultAttr::always()));
        let handle = cache.alloc(&cx, Gfp::GFP_KERNEL, ()).expect("alloc");
        assert_eq!(sim.reclaim_runs(), 1, "the shrinker's own allocation does not reclaim");
        assert!(sim.lockdep().reports().is_empty(), "{:?}", sim.lockdep().reports());
        cache.free(&cx, handle).expect("free");
    }

    #[test]
    fn atomic_allocations_never_reclaim() {
        let sim = sim();
        let cx = sim.cx("t", 0);
        sim.set_reclaim_plan(FaultPlan::with(FaultAttr::always()));
        let cache = KmemCache::new("things", 16);
        let handle = cache.alloc(&cx, Gfp::GFP_ATOMIC, ()).expect("alloc");
        assert_eq!(sim.reclaim_runs(), 0);
        let blocking = cache.alloc(&cx, Gfp::GFP_NOFS, ()).expect("alloc");
        assert_eq!(sim.reclaim_runs(), 1, "GFP_NOFS reclaims, without entering the filesystem");
        assert!(!sim.lockdep().dependencies().iter().any(|(from, _)| from == FS_RECLAIM_CLASS));
        cache.free(&cx, handle).expect("free");
        cache.free(&cx, blocking).expect("free");
    }
}
