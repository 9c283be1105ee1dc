//! The checker face of the balloon: [`BalloonSubject`] drives a [`World`] one whole operation
//! at a time for sim-core's op-level checker, judged by the reference model
//! ([`reference::BalloonModel`]); [`catalog`] lists its fixes, zoo and scenarios.

mod catalog;
#[cfg(feature = "threaded")]
mod loom;
mod op;
mod reference;
mod scenario;
#[cfg(feature = "threaded")]
mod threaded;

use std::sync::Mutex as StdMutex;

use proptest::strategy::BoxedStrategy;
use serde::{Deserialize, Serialize};
use sim_core::check::Subject;
use sim_core::fault::{FaultAttr, FaultPlan};
use sim_core::gen::OpGen;
use sim_core::mm::{Gfp, Pfn, PAGE_SIZE_4K, PAGE_SIZE_64K};
use sim_core::sync::atomic::Ordering;
use sim_core::sync::Arc;
use sim_core::trace::CallName;
use sim_core::{Cx, Sim, SimConfig, Violation, ViolationKind};

use crate::balloon_compaction::{compact_one, CompactResult};
use crate::fixes::Fixes;
use crate::guest::Endian;
use crate::host::PfnBits;
use crate::host::{
    VIRTIO_BALLOON_F_DEFLATE_ON_OOM, VIRTIO_BALLOON_F_MUST_TELL_HOST, VIRTIO_BALLOON_F_STATS_VQ,
    VIRTIO_F_VERSION_1,
};
use crate::virtio_balloon::{VirtioBalloon, DRIVER_FEATURES, OOM_VBALLOON_DEFAULT_PAGES};
use crate::virtio_ring::VIRTIO_RING_F_EVENT_IDX;
use crate::world::{Scope, World};

// Re-exported for the crate root (tests, the CLI registry, benches).
pub use op::{Op, Outcome};
pub use reference::BalloonModel;
pub use scenario::oom_deadlock_scenario;

/// Balloon thread rounds one `BalloonRun` operation may take before the balloon must have
/// converged (liveness, with a fixed target and no pressure).
pub const ROUNDS_MAX: u32 = 64;

/// Every feature bit the host may offer.
pub const HOST_FEATURES_ALL: u64 =
    DRIVER_FEATURES | (1 << VIRTIO_F_VERSION_1) | (1 << VIRTIO_RING_F_EVENT_IDX);

/// The most guest tasks a config may ask for (the default is 2).
pub const TASKS_MAX: usize = 64;

/// The largest guest an artifact may ask for: 64 GiB, whose replay took a third of a second and
/// a hundred megabytes (2^44 bytes took eight seconds and 3.7 GB; 2^63 failed its allocation and
/// aborted the process).
pub const MEMORY_BYTES_MAX: u64 = 64 << 30;

/// A case's configuration.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BalloonConfig {
    /// The preset the fixes came from.
    pub preset: String,
    /// The fixes in force.
    pub fixes: Fixes,
    /// Guest `PAGE_SIZE`; `None`: each seed picks 4 KiB or 64 KiB.
    pub page_size: Option<u64>,
    /// Guest memory in bytes.
    pub memory_bytes: u64,
    /// Features the host offers; `None`: each seed picks a subset.
    pub host_features: Option<u64>,
    /// Guest byte order; `None`: each seed picks one.
    pub guest_endian: Option<Endian>,
    /// Entries per virtqueue.
    pub queue_size: u16,
    /// Whether the transport has config access (`vdev->config->get`).
    pub config_access: bool,
    /// The `oom_pages` module parameter.
    pub oom_pages: u32,
    /// Allocating tasks.
    pub tasks: usize,
    /// Faults to inject.
    pub faults: FaultPlan,
    /// Judge the seed's benign unlocked reads of `vb->num_pages` (a lockset race the driver
    /// has; off: they are annotated like `data_race()`).
    #[serde(default)]
    pub judge_benign_races: bool,
}

impl BalloonConfig {
    /// The configuration of `preset` with no faults: a 1 MiB guest, everything else chosen per
    /// seed.
    pub fn preset(name: &str) -> Result<BalloonConfig, String> {
        Ok(BalloonConfig {
            preset: name.to_string(),
            fixes: Fixes::parse(Some(name), &[])?,
            page_size: None,
            memory_bytes: 1 << 20,
            host_features: None,
            guest_endian: None,
            queue_size: 8,
            config_access: true,
            oom_pages: OOM_VBALLOON_DEFAULT_PAGES,
            tasks: 2,
            faults: FaultPlan::none(),
            judge_benign_races: false,
        })
    }

    /// The fault plan the property tests use: balloon allocations, queue setup and the kthread
    /// fail now and then.
    pub fn with_faults(mut self) -> BalloonConfig {
        self.faults =
            FaultPlan::with(FaultAttr::probability(5).site(crate::balloon_compaction::BALLOON_ALLOC_SITE))
                .and(FaultAttr::probability(10).site("virtio:find_vqs"))
                .and(FaultAttr::probability(3).site("kthread_run"));
        self
    }
}

/// The op-level subject: a [`World`] and the contexts of the tasks that act on it.
#[derive(Debug)]
pub struct BalloonSubject {
    /// The balloon thread (and probe/remove).
    cx: Cx,
    /// The allocating tasks, one context each.
    task_cxs: Vec<Cx>,
    /// The compaction thread.
    compaction_cx: Cx,
    /// The host's side: config changes and stats requests arrive as interrupts here.
    host_cx: Cx,
    /// The PM core (freeze, restore).
    pm_cx: Cx,
    /// The world.
    pub world: World,
    /// The pages each task holds.
    tasks: Vec<Vec<Pfn>>,
    /// Whether the PM core has frozen the device.
    frozen: bool,
    /// Whether the balloon thread is asleep in its wait (it is after probe and after a pass
    /// that found nothing to do), so its next test of the condition follows a wake-up.
    thread_asleep: bool,
    /// Checker bookkeeping for the incremental check (std-locked: the checks take `&self`).
    shadow: StdMutex<Shadow>,
}

/// The balloon's pages as checks saw them, so the incremental check knows which are new.
#[derive(Debug, Default)]
struct Shadow {
    /// As the check after the previous operation saw them (`None`: no check passed yet).
    before: Option<PfnBits>,
    /// As the check after this operation saw them.
    after: Option<PfnBits>,
    /// The tasks' pages as a set, made by the first check that needs it after an operation that
    /// allocated or freed (`None` until then), so the other operations' checks reuse it.
    task_pages: Option<PfnBits>,
}

impl BalloonSubject {
    /// Builds the subject's world with the seed's choices (page size, host features, guest
    /// byte order, where the config leaves them open).
    fn build(sim: &Sim, config: &BalloonConfig) -> BalloonSubject {
        sim.set_faults(config.faults.clone());
        let page_size =
            config.page_size.unwrap_or(if sim.chance(1, 2) { PAGE_SIZE_4K } else { PAGE_SIZE_64K });
        let features = config.host_features.unwrap_or_else(|| {
            [
                VIRTIO_BALLOON_F_MUST_TELL_HOST,
                VIRTIO_BALLOON_F_STATS_VQ,
                VIRTIO_BALLOON_F_DEFLATE_ON_OOM,
                VIRTIO_F_VERSION_1,
                VIRTIO_RING_F_EVENT_IDX,
            ]
            .into_iter()
            .filter(|_| sim.chance(3, 4))
            .fold(0, |features, bit| features | 1 << bit)
        });
        let endian =
            config.guest_endian.unwrap_or(if sim.chance(1, 2) { Endian::Little } else { Endian::Big });
        let cx = sim.cx("vballoon", 0);
        let world = World::new(&cx, config, page_size, features, endian, true);
        sim.mark(if page_size == PAGE_SIZE_64K { "page-64k" } else { "page-4k" });
        if world.probe_result.is_err() {
            sim.mark("probe-failed");
        }
        let tasks = config.tasks.max(1);
        BalloonSubject {
            cx,
            task_cxs: (0..tasks).map(|i| sim.cx(&format!("task-{i}"), 1)).collect(),
            compaction_cx: sim.cx("kcompactd", 1),
            host_cx: sim.cx("host-irq", 0),
            pm_cx: sim.cx("pm", 0),
            world,
            tasks: vec![Vec::new(); tasks],
            frozen: false,
            thread_asleep: true,
            shadow: StdMutex::default(),
        }
    }

    /// The pages the tasks hold, as a set.
    fn task_pages(&self) -> PfnBits {
        let mut out = PfnBits::new(self.total_pages());
        self.tasks.iter().flatten().for_each(|&pfn| {
            out.insert(pfn as u32);
        });
        out
    }

    /// Checks the invariants in `scope` and remembers the balloon's pages for the next check.
    fn check_scoped(&self, sim: &Sim, scope: Scope<'_>) -> Result<(), Violation> {
        let cx = sim.observer_cx("check_invariants", 0);
        let task_pages = self.shadow().task_pages.take().unwrap_or_else(|| self.task_pages());
        let checked = self.world.check_scoped(&cx, &task_pages, scope);
        let mut shadow = self.shadow();
        shadow.task_pages = Some(task_pages);
        shadow.after = Some(checked?);
        Ok(())
    }

    fn shadow(&self) -> std::sync::MutexGuard<'_, Shadow> {
        self.shadow.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn total_pages(&self) -> u64 {
        self.world.pages.spanned_pages(&self.cx)
    }

    /// The driver, when probed and not frozen.
    fn running_driver(&self) -> Option<Arc<VirtioBalloon>> {
        if self.frozen {
            return None;
        }
        self.world.vb.clone()
    }

    /// The host sets `num_pages` (modulo the guest's 4 KiB pages plus one) and interrupts.
    fn set_target(&mut self, pages: u32) -> Outcome {
        set_target(&self.world, &self.host_cx, pages)
    }

    /// Runs the balloon thread until it has nothing to do or runs out of puff.
    fn run(&mut self) -> Outcome {
        let Some(vb) = self.running_driver() else {
            return Outcome::Idle;
        };
        run_balloon_thread(&self.world, &vb, &self.cx, &mut self.thread_asleep, &|| 0, true)
    }

    /// Task `task` allocates `pages` pages.
    fn alloc(&mut self, task: usize, pages: u64, nofs: bool) -> Outcome {
        alloc_pages(&self.world, &self.task_cxs[task], &mut self.tasks[task], task, pages, nofs)
    }

    /// Task `task` frees up to `pages` of its pages, newest first.
    fn free(&mut self, task: usize, pages: u16) -> Outcome {
        free_pages(&self.world, &self.task_cxs[task], &mut self.tasks[task], pages)
    }

    /// Compaction migrates balloon page `index` to zone `to_zone`.
    fn compact(&mut self, index: u16, to_zone: u8) -> Outcome {
        compact(&self.world, &self.compaction_cx, index, to_zone)
    }

    /// The PM core freezes the device (the balloon thread is parked first).
    fn freeze(&mut self) -> Outcome {
        let Some(vb) = self.running_driver() else {
            return Outcome::Idle;
        };
        self.frozen = true;
        freeze_device(&vb, &self.pm_cx)
    }

    /// The PM core restores a frozen device; the thread thaws when that succeeds.
    fn restore(&mut self) -> Outcome {
        let Some(vb) = self.world.vb.clone().filter(|_| self.frozen) else {
            return Outcome::Idle;
        };
        let outcome = restore_device(&self.world, &vb, &self.pm_cx);
        if matches!(outcome, Outcome::Restored(Ok(()))) {
            self.frozen = false;
            // Thawed, the thread tests its condition afresh before it sleeps again.
            self.thread_asleep = false;
        }
        outcome
    }
}

impl Subject for BalloonSubject {
    const NAME: &'static str = "balloon";
    type Config = BalloonConfig;
    type Op = Op;
    type Outcome = Outcome;
    type Reference = BalloonModel;

    fn sim_config(_config: &BalloonConfig, seed: u64) -> SimConfig {
        SimConfig::new(seed).cpus(2)
    }

    fn new(sim: &Sim, config: &BalloonConfig) -> Self {
        BalloonSubject::build(sim, config)
    }

    fn op_strategy(_config: &BalloonConfig) -> BoxedStrategy<Op> {
        op::op_strategy()
    }

    fn op_gen(_config: &BalloonConfig) -> Option<OpGen<Op>> {
        Some(op::generator())
    }

    fn apply(&mut self, sim: &Sim, op: &Op) -> Outcome {
        // A new operation: what the last check saw is now the state before it, and the host's
        // change log starts afresh.
        let shadow = self.shadow.get_mut().unwrap_or_else(std::sync::PoisonError::into_inner);
        shadow.before = shadow.after.take();
        if matches!(op, Op::Alloc { .. } | Op::Free { .. }) {
            // Only these move the tasks' pages (an OOM kill inside an allocation included).
            shadow.task_pages = None;
        }
        self.world.host.clear_changed();
        let outcome = match *op {
            Op::SetTarget { pages } => self.set_target(pages),
            Op::BalloonRun => self.run(),
            Op::Alloc { task, pages, nofs } => {
                let task = usize::from(task) % self.tasks.len();
                let pages = u64::from(pages) % (self.total_pages() / 2 + 1);
                self.alloc(task, pages, nofs)
            }
            Op::Free { task, pages } => self.free(usize::from(task) % self.tasks.len(), pages),
            Op::Compact { index, to_zone } => self.compact(index, to_zone),
            Op::StatsRequest => match self.running_driver() {
                Some(_) => Outcome::Stats(self.world.vdev.host_request_stats(&self.host_cx)),
                None => Outcome::Idle,
            },
            Op::Freeze => self.freeze(),
            Op::Restore => self.restore(),
        };
        if sim.faults_failed() > 0 {
            sim.mark("fault");
        }
        outcome
    }

    fn check_invariants(&self, sim: &Sim) -> Result<(), Violation> {
        self.check_scoped(sim, Scope::Whole)
    }

    /// Each balloon page's state only where `op` may have changed it: pages new to the balloon
    /// and pages whose pieces the host took or gave back. Compaction (which locks, isolates and
    /// puts back pages that stay listed) and freeze/restore (which reset the device) get the
    /// whole check, and so does an operation after which no check has passed yet.
    fn check_invariants_incremental(&self, sim: &Sim, op: &Op) -> Result<(), Violation> {
        let before = match op {
            Op::Compact { .. } | Op::Freeze | Op::Restore => None,
            // Taken, not cloned: `apply` sets it afresh before the next operation.
            _ => self.shadow().before.take(),
        };
        match before {
            Some(before) => self.check_scoped(sim, Scope::Changed(&before)),
            None => self.check_scoped(sim, Scope::Whole),
        }
    }

    /// What an edited artifact could ask that the guest cannot be: more tasks than
    /// [`TASKS_MAX`] (each gets a context and a page list when the subject is made), a guest
    /// larger than [`MEMORY_BYTES_MAX`] (its page map is made whole), and a `PAGE_SIZE` that is not
    /// a power of two from 4 KiB to 64 KiB (the driver counts a page in 4 KiB balloon pages).
    /// Each is refused here, as bad input, rather than by an allocation failure or a panic.
    fn check_config(config: &BalloonConfig) -> Result<(), String> {
        if config.tasks > TASKS_MAX {
            return Err(format!("tasks {} is more than {TASKS_MAX}", config.tasks));
        }
        if config.memory_bytes > MEMORY_BYTES_MAX {
            return Err(format!(
                "memory_bytes {} is more than {MEMORY_BYTES_MAX} (64 GiB)",
                config.memory_bytes
            ));
        }
        if let Some(size) = config.page_size {
            if !size.is_power_of_two() || !(PAGE_SIZE_4K..=PAGE_SIZE_64K).contains(&size) {
                return Err(format!(
                    "page_size {size} is not a power of two from {PAGE_SIZE_4K} to {PAGE_SIZE_64K}"
                ));
            }
        }
        Ok(())
    }

    fn teardown(self, sim: &Sim) -> Result<(), Violation> {
        let cx = &self.cx;
        if let Some(vb) = &self.world.vb {
            vb.remove(cx);
        }
        for pfn in self.tasks.iter().flatten() {
            let _ = self.world.pages.free_page(cx, *pfn);
        }
        if let Some(found) = sim.violations().into_iter().next() {
            return Err(found);
        }
        let left = self.world.pages.allocated_pages(cx);
        if left != 0 {
            return Err(Violation::new(
                ViolationKind::Leak,
                format!("{left} pages still allocated after remove"),
            ));
        }
        let held = self.world.host.held_count();
        if held != 0 {
            return Err(Violation::new(
                ViolationKind::Leak,
                format!("the host still holds {held} pfns after remove"),
            ));
        }
        Ok(())
    }
}

/// The host sets `num_pages` (modulo the guest's 4 KiB pages plus one) and signals a config
/// change: virtio_config_changed() runs the driver's hook in the interrupt, in context `cx`.
fn set_target(world: &World, cx: &Cx, pages: u32) -> Outcome {
    let limit = (world.pages.page_size() / PAGE_SIZE_4K) * world.pages.spanned_pages(cx) + 1;
    let target = (u64::from(pages) % limit) as u32;
    cx.call_begin(&SET_TARGET, [u64::from(target)], || format!("host: num_pages = {target}"));
    world.host.set_num_pages(target);
    world.vdev.config_changed(cx);
    cx.call_end(&SET_TARGET, [], String::new);
    Outcome::Target { target }
}

/// The balloon thread (balloon()'s loop) in context `cx`: passes until it has nothing to do or
/// runs out of puff, at most [`ROUNDS_MAX`], reporting a balloon that does not converge.
/// `asleep`: whether the thread is in its wait, so its next test of the condition follows a
/// wake-up; updated for the next run. `target_changes` counts the host's config changes, twice
/// each (odd while one is in flight; always 0 for the op-level simulation, where nothing else
/// runs meanwhile). `alone`: no other task runs meanwhile (the op-level simulation), so the host's
/// deflation count can be attributed to this thread.
fn run_balloon_thread(
    world: &World,
    vb: &VirtioBalloon,
    cx: &Cx,
    asleep: &mut bool,
    target_changes: &dyn Fn() -> u64,
    alone: bool,
) -> Outcome {
    let observer = cx.sim().observer_cx("checker", 0);
    let (changes_before, num_pages_before) = (target_changes(), vb.num_pages(&observer));
    let (mut rounds, mut filled, mut leaked, mut out_of_puff, mut moved) = (0, false, false, false, 0i64);
    let mut has_work = if *asleep { vb.thread_recheck(cx) } else { vb.thread_has_work(cx) };
    let (mut thread_leaked, deflated_before) = (0u64, world.host.traffic().1);
    let mut dequeued_none = false;
    while has_work && rounds < ROUNDS_MAX && !out_of_puff {
        let step = vb.balloon_thread_step(cx);
        rounds += 1;
        dequeued_none = step.diff < 0 && step.leaked == 0;
        filled |= step.fill.pfns > 0;
        leaked |= step.leaked > 0;
        thread_leaked += u64::from(step.leaked);
        out_of_puff |= step.fill.out_of_puff;
        moved += step.fill.pfns as i64 - i64::from(step.leaked);
        has_work = vb.thread_has_work(cx);
    }
    *asleep = !has_work;
    // Another task moved the target (a config change) or the balloon (the OOM notifier's
    // deflate) meanwhile: the thread's inflating and deflating then answer them.
    let disturbed = target_changes() != changes_before
        || changes_before % 2 == 1
        || i64::from(vb.num_pages(&observer)) != i64::from(num_pages_before) + moved;
    let passes = Passes {
        rounds,
        filled,
        leaked,
        out_of_puff,
        has_work,
        disturbed,
        self_deflated: (world.host.traffic().1 - deflated_before).saturating_sub(thread_leaked),
        dequeued_none,
    };
    match convergence_verdict(vb, &observer, &passes, alone) {
        Some(message) => cx.sim().report(Some(cx), Violation::new(ViolationKind::Liveness, message)),
        None if rounds > 0 && !out_of_puff => cx.sim().mark("target-reached"),
        None => {}
    }
    Outcome::Run {
        num_pages: vb.num_pages(&observer),
        actual: world.host.actual(),
        out_of_puff,
        pages_per_page: vb.pages_per_page,
    }
}

/// What one run of the balloon thread did, for [`convergence_verdict`].
#[derive(Clone, Copy)]
struct Passes {
    rounds: u32,
    filled: bool,
    leaked: bool,
    out_of_puff: bool,
    /// The thread still had work when it stopped.
    has_work: bool,
    /// Another task moved the target or the balloon meanwhile.
    disturbed: bool,
    /// Pages the host saw deflated beyond what the thread's own steps deflated.
    self_deflated: u64,
    /// The last pass deflated and leak_balloon() dequeued no page.
    dequeued_none: bool,
}

/// The liveness verdict on one run of the balloon thread: why it did not converge, if it did not.
fn convergence_verdict(vb: &VirtioBalloon, observer: &Cx, passes: &Passes, alone: bool) -> Option<String> {
    // With no other task running (`alone`: the op-level simulation), deflations the host saw that
    // no thread step asked for happened inside the fill rounds: the balloon's own allocations
    // deflated it (the shrinker era's busy no-op). Under threads an OOM notifier elsewhere may
    // have deflated it instead, so the host's count proves nothing there.
    let Passes { rounds, filled, leaked, out_of_puff, has_work, disturbed, self_deflated, dequeued_none } =
        *passes;
    // Under threads, a deflating pass that dequeued nothing while the balloon still holds pages
    // waits for another task: balloon_page_dequeue() skips pages a compactor has isolated or
    // holds locked, and the kernel's thread gives the CPU away at each pass's cond_resched()
    // until that compactor is done. A scheduler that never runs the compactor again (PCT's
    // highest-priority task spinning) is no liveness bug of the balloon.
    let waits_for_compactor = !alone && dequeued_none && vb.num_pages(observer) > 0;
    if alone && filled && self_deflated > 0 {
        Some(format!(
            "the balloon deflated {self_deflated} pages inside its own fill rounds (its allocations' \
             reclaim shrank it) and inflated them again: {rounds} rounds, num_pages {}, \
             towards_target {}",
            vb.num_pages(observer),
            vb.towards_target(observer)
        ))
    } else if filled && leaked && !disturbed {
        Some(format!(
            "the balloon inflated and deflated under one fixed target (num_pages {}, towards_target {})",
            vb.num_pages(observer),
            vb.towards_target(observer)
        ))
    } else if has_work
        && !out_of_puff
        && vb.towards_target(observer) != 0
        && !vb.shared.need_stats_update.load(Ordering::SeqCst)
        && !waits_for_compactor
    {
        Some(format!("no convergence after {rounds} rounds (towards_target {})", vb.towards_target(observer)))
    } else {
        None
    }
}

/// The traced calls of the harness's own operations.
const ALLOC_PAGES: CallName = CallName::new("alloc_pages");
const SET_TARGET: CallName = CallName::new("set_target");

/// Task `task` (context `cx`, holding `held`) allocates `pages` pages, under the filesystem
/// lock with `GFP_NOFS` when `nofs`; an OOM kill frees everything it holds.
fn alloc_pages(world: &World, cx: &Cx, held: &mut Vec<Pfn>, task: usize, pages: u64, nofs: bool) -> Outcome {
    let kills_before = world.pages.oom_kills(cx);
    let mut got = 0;
    cx.call_begin(&ALLOC_PAGES, [task as u64, pages, u64::from(nofs)], || {
        format!("task {task}: {pages} pages{}", if nofs { " under fs_lock" } else { "" })
    });
    for _ in 0..pages {
        let result = if nofs {
            let _fs = world.pages.fs_lock().lock(cx);
            world.pages.alloc_page(cx, Gfp::GFP_NOFS, "task")
        } else {
            world.pages.alloc_page(cx, Gfp::GFP_HIGHUSER_MOVABLE, "task")
        };
        let Ok(pfn) = result else {
            break;
        };
        world.touch(cx, pfn);
        held.push(pfn);
        got += 1;
    }
    let killed = world.pages.oom_kills(cx) != kills_before;
    if killed {
        cx.sim().mark("oom-kill");
        for pfn in std::mem::take(held) {
            let _ = world.pages.free_page(cx, pfn);
        }
    }
    cx.call_end(&ALLOC_PAGES, [got, u64::from(killed)], || {
        format!("got {got}{}", if killed { ", killed" } else { "" })
    });
    Outcome::Alloc { got, killed, task_pages: held.len() as u64 }
}

/// A task (context `cx`, holding `held`) frees up to `pages` of its pages, newest first.
fn free_pages(world: &World, cx: &Cx, held: &mut Vec<Pfn>, pages: u16) -> Outcome {
    let count = usize::from(pages).min(held.len());
    for _ in 0..count {
        if let Some(pfn) = held.pop() {
            let _ = world.pages.free_page(cx, pfn);
        }
    }
    Outcome::Free { freed: count as u64, task_pages: held.len() as u64 }
}

/// Compaction (context `cx`) scans from frame `index` and migrates the first balloon page it
/// isolates to zone `to_zone`.
fn compact(world: &World, cx: &Cx, index: u16, to_zone: u8) -> Outcome {
    let Some(vb) = world.vb.clone() else {
        return Outcome::Idle;
    };
    let result = compact_one(
        cx,
        &vb.vb_dev_info,
        &world.pages,
        usize::from(index),
        usize::from(to_zone),
        |cx, newpage, page| vb.migratepage(cx, newpage, page),
    );
    if let CompactResult::Migrated(from, to) = result {
        if world.pages.zone_of(cx, from) != world.pages.zone_of(cx, to) {
            cx.sim().mark("migration-cross-zone");
        }
    }
    Outcome::Compact(result)
}

/// The PM core (context `cx`) freezes the running driver `vb`: the thread is marked freezing
/// (the caller has parked it), then virtballoon_freeze().
fn freeze_device(vb: &VirtioBalloon, cx: &Cx) -> Outcome {
    vb.shared.freezing.store(true, Ordering::SeqCst);
    vb.freeze(cx);
    cx.sim().mark("freeze");
    Outcome::Frozen
}

/// The PM core (context `cx`) restores the frozen driver `vb`; the thread thaws when that
/// succeeds. Hibernation powered the machine off, so the device that comes back holds nothing.
fn restore_device(world: &World, vb: &VirtioBalloon, cx: &Cx) -> Outcome {
    world.host.forget_held();
    let result = vb.restore(cx);
    if result.is_ok() {
        vb.shared.freezing.store(false, Ordering::SeqCst);
        cx.sim().mark("restore");
    }
    Outcome::Restored(result)
}
