//! The checker face of the balloon: [`World`] (a guest, a host and the driver wired together),
//! [`BalloonSim`] (sim-core's `Subject` and `Catalog`), its operations, invariants and reference
//! model [`BalloonModel`].

use std::collections::{BTreeMap, BTreeSet};

use proptest::prelude::*;
use serde::{Deserialize, Serialize};
use sim_core::check::{Catalog, Reference, ScenarioInfo, Subject, ZooEntry};
use sim_core::fault::{FaultAttr, FaultPlan};
use sim_core::fixes::{FixTable, FixTableOf};
use sim_core::lockdep::ReportMode;
use sim_core::mm::{Gfp, PageAllocConfig, PageAllocator, Pfn, PAGE_SIZE_4K, PAGE_SIZE_64K};
use sim_core::sync::atomic::Ordering;
use sim_core::sync::Arc;
use sim_core::trace::TraceMode;
use sim_core::{Cx, Errno, Sim, SimConfig, Violation};

use crate::balloon_compaction::{compact_one, CompactResult};
use crate::fixes::{BalloonFixes, Fixes};
use crate::guest::Endian;
use crate::host::{
    BalloonHost, VIRTIO_BALLOON_F_DEFLATE_ON_OOM, VIRTIO_BALLOON_F_MUST_TELL_HOST, VIRTIO_BALLOON_F_STATS_VQ,
    VIRTIO_BALLOON_S_NR, VIRTIO_F_VERSION_1,
};
use crate::virtio::VirtioDevice;
use crate::virtio_balloon::{VirtioBalloon, DRIVER_FEATURES, OOM_VBALLOON_DEFAULT_PAGES};
use crate::virtio_ring::VIRTIO_RING_F_EVENT_IDX;

/// Balloon thread rounds one `BalloonRun` operation may take before the balloon must have
/// converged (liveness, with a fixed target and no pressure).
pub const ROUNDS_MAX: u32 = 64;

/// Every feature bit the host may offer.
pub const HOST_FEATURES_ALL: u64 =
    DRIVER_FEATURES | (1 << VIRTIO_F_VERSION_1) | (1 << VIRTIO_RING_F_EVENT_IDX);

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

/// A guest with the balloon driver and a host: what both the op-level simulation and the
/// threaded actors run.
#[derive(Debug)]
pub struct World {
    /// The guest's page allocator.
    pub pages: Arc<PageAllocator>,
    /// The host device.
    pub host: Arc<BalloonHost>,
    /// The transport.
    pub vdev: Arc<VirtioDevice>,
    /// The driver, when probe succeeded.
    pub vb: Option<Arc<VirtioBalloon>>,
    /// The probe's result.
    pub probe_result: Result<(), Errno>,
}

impl World {
    /// Builds the guest and host, and probes the driver. `synchronous`: the host runs kicks in
    /// the kicking context (op-level); else a host actor must call [`World::host_actor`].
    pub fn new(
        cx: &Cx,
        config: &BalloonConfig,
        page_size: u64,
        features: u64,
        endian: Endian,
        synchronous: bool,
    ) -> World {
        let pages = Arc::new(
            PageAllocator::new(&PageAllocConfig::guest(config.memory_bytes, page_size))
                .expect("a valid guest shape"),
        );
        let host = Arc::new(BalloonHost::new(features, endian, config.memory_bytes));
        let vdev = Arc::new(VirtioDevice::new(
            host.clone(),
            DRIVER_FEATURES,
            endian,
            config.queue_size,
            config.config_access,
            synchronous,
        ));
        let probed = VirtioBalloon::probe(cx, vdev.clone(), pages.clone(), config.fixes, config.oom_pages);
        let (vb, probe_result) = match probed {
            Ok(vb) => (Some(vb), Ok(())),
            Err(err) => (None, Err(err)),
        };
        World { pages, host, vdev, vb, probe_result }
    }

    /// The host thread: processes kicks until `stop` says so.
    pub fn host_actor(&self, cx: &Cx, stop: &sim_core::sync::atomic::AtomicBool) {
        loop {
            self.host.kicks.wait_event(cx, || self.host.has_pending() || stop.load(Ordering::SeqCst));
            if stop.load(Ordering::SeqCst) && !self.host.has_pending() {
                return;
            }
            for queue in self.host.pending() {
                self.vdev.host_process(cx, queue);
            }
        }
    }

    /// The balloon pages' balloon PFNs (4 KiB units), as the host should hold them.
    pub fn balloon_pfns(&self, cx: &Cx) -> BTreeSet<u32> {
        let Some(vb) = &self.vb else {
            return BTreeSet::new();
        };
        let mut out = BTreeSet::new();
        for page in vb.vb_dev_info.all_pages(cx) {
            for i in 0..vb.pages_per_page {
                out.insert(vb.page_to_balloon_pfn(page) + i);
            }
        }
        out
    }

    /// Whether the host holds any 4 KiB piece of guest page `pfn`.
    pub fn host_holds_page(&self, pfn: Pfn) -> bool {
        let ppp = (self.pages.page_size() / PAGE_SIZE_4K) as u32;
        (0..ppp).any(|i| self.host.holds(pfn as u32 * ppp + i))
    }

    /// An allocating task's page: reports a guest touching a page the host holds.
    pub fn touch(&self, cx: &Cx, pfn: Pfn) {
        if self.host_holds_page(pfn) {
            cx.sim().report(
                Some(cx),
                Violation::new(
                    "host-held-page-touched",
                    format!("guest uses page {pfn}, which the host holds"),
                ),
            );
        }
    }

    /// Checks the subsystem's invariants with `task_pages` in use by tasks. One fact per check.
    pub fn check_invariants(&self, cx: &Cx, task_pages: &BTreeSet<Pfn>) -> Result<(), Violation> {
        let fail = |kind: &str, message: String| Err(Violation::new(format!("invariant:{kind}"), message));
        let findings = self.host.findings();
        if !findings.is_empty() {
            return Err(Violation::new("host-finding", findings.join("; ")));
        }
        let Some(vb) = &self.vb else {
            if self.pages.allocated_pages(cx) != task_pages.len() as u64 {
                return fail(
                    "pages-leaked",
                    format!(
                        "no driver, {} pages allocated, tasks hold {}",
                        self.pages.allocated_pages(cx),
                        task_pages.len()
                    ),
                );
            }
            return Ok(());
        };
        let balloon: Vec<Pfn> = vb.vb_dev_info.all_pages(cx);
        let ppp = vb.pages_per_page;
        if vb.num_pages() as usize != balloon.len() * ppp as usize {
            return fail(
                "num-pages",
                format!("num_pages {} but {} balloon pages x {ppp}", vb.num_pages(), balloon.len()),
            );
        }
        {
            let guard = vb.vb_dev_info.pages_lock.lock_irqsave(cx);
            if guard.isolated_pages != 0 || !guard.isolated.is_empty() {
                return fail("isolated-at-rest", format!("{} isolated pages at rest", guard.isolated_pages));
            }
        }
        let expected = self.balloon_pfns(cx);
        let held = self.host.held();
        if let Some(stray) = held.difference(&expected).next() {
            return fail(
                "host-holds-non-balloon-pfn",
                format!(
                    "the host holds pfn {stray:#x}, which no balloon page covers (held {}, balloon {})",
                    held.len(),
                    expected.len()
                ),
            );
        }
        if let Some(missing) = expected.difference(&held).next() {
            return fail(
                "balloon-pfn-not-held",
                format!(
                    "balloon pfn {missing:#x} was never told to the host (held {}, balloon {})",
                    held.len(),
                    expected.len()
                ),
            );
        }
        if let Some(both) = balloon.iter().find(|p| task_pages.contains(p)) {
            return fail(
                "page-in-balloon-and-in-use",
                format!("page {both} is in the balloon and used by a task"),
            );
        }
        if let Some(touched) = task_pages.iter().find(|&&p| self.host_holds_page(p)) {
            return fail(
                "page-in-use-held-by-host",
                format!("page {touched} is in use but the host holds it"),
            );
        }
        let allocated = self.pages.allocated_pages(cx);
        if allocated != (balloon.len() + task_pages.len()) as u64 {
            return fail(
                "pages-leaked",
                format!(
                    "{allocated} pages allocated, balloon {} + tasks {}",
                    balloon.len(),
                    task_pages.len()
                ),
            );
        }
        let deflate_on_oom = self.vdev.has_feature(VIRTIO_BALLOON_F_DEFLATE_ON_OOM);
        let zones = self.pages.zones_count(cx);
        for zone in 0..zones {
            let in_balloon =
                balloon.iter().filter(|&&p| self.pages.zone_of(cx, p) == Ok(zone)).count() as i64;
            let managed = self.pages.managed_pages(cx, zone);
            let spanned = self.pages.zone_spanned_pages(cx, zone) as i64;
            let counted = if deflate_on_oom { managed } else { managed + in_balloon };
            if counted != spanned {
                return fail(
                    "managed-pages-not-conserved",
                    format!("zone {zone}: managed {managed} + ballooned {in_balloon} != {spanned} (deflate_on_oom {deflate_on_oom})"),
                );
            }
        }
        if vb.has_vqs() && self.host.actual() != vb.num_pages() {
            return fail(
                "actual",
                format!("config actual {} but num_pages {}", self.host.actual(), vb.num_pages()),
            );
        }
        if let (Some(report), _) = self.host.stats() {
            if let Some((tag, _)) = report.iter().find(|(tag, _)| *tag as usize >= VIRTIO_BALLOON_S_NR) {
                return fail("stats-tag", format!("the host's last stats carry unknown tag {tag:#x}"));
            }
        }
        Ok(())
    }
}

/// One operation of the op-level simulation.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Op {
    /// The host sets `num_pages` (modulo the guest's 4 KiB pages plus one) and signals a
    /// config change.
    SetTarget {
        /// The raw target.
        pages: u32,
    },
    /// The balloon thread runs until it has nothing to do (at most [`ROUNDS_MAX`] rounds).
    BalloonRun,
    /// Task `task` allocates `pages` pages (modulo half of memory), with `GFP_NOFS` under the
    /// filesystem lock when `nofs`, else `GFP_HIGHUSER_MOVABLE`.
    Alloc {
        /// Which task (modulo the tasks).
        task: u8,
        /// How many pages.
        pages: u16,
        /// Allocate holding the filesystem lock.
        nofs: bool,
    },
    /// Task `task` frees up to `pages` pages.
    Free {
        /// Which task.
        task: u8,
        /// How many.
        pages: u16,
    },
    /// Compaction (or offlining) migrates balloon page `index` to zone `to_zone`.
    Compact {
        /// Which balloon page (modulo the list).
        index: u16,
        /// Target zone (modulo the zones).
        to_zone: u8,
    },
    /// The host asks for stats.
    StatsRequest,
    /// The PM core freezes the device.
    Freeze,
    /// The PM core restores it.
    Restore,
}

/// What an operation returned.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Nothing to do (no driver, or frozen).
    Idle,
    /// The host's new target.
    Target {
        /// The target as set.
        target: u32,
    },
    /// The balloon thread ran.
    Run {
        /// `vb->num_pages` after.
        num_pages: u32,
        /// `actual` after.
        actual: u32,
        /// Whether it ran out of puff.
        out_of_puff: bool,
        /// `VIRTIO_BALLOON_PAGES_PER_PAGE`.
        pages_per_page: u32,
    },
    /// Pages allocated.
    Alloc {
        /// How many it got.
        got: u64,
        /// Whether the task was OOM-killed (and its pages freed).
        killed: bool,
        /// Pages the task holds after.
        task_pages: u64,
    },
    /// Pages freed.
    Free {
        /// How many.
        freed: u64,
        /// Pages the task holds after.
        task_pages: u64,
    },
    /// Compaction's result.
    Compact(CompactResult),
    /// Whether the host's request reached the driver.
    Stats(bool),
    /// Freeze happened.
    Frozen,
    /// Restore's result.
    Restored(Result<(), Errno>),
}

/// The op-level subject.
#[derive(Debug)]
pub struct BalloonSim {
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
    tasks: Vec<Vec<Pfn>>,
    frozen: bool,
    coverage: BTreeSet<&'static str>,
    stats_seen: u64,
}

impl BalloonSim {
    /// Builds the subject's world with the seed's choices.
    fn build(sim: &Sim, config: &BalloonConfig) -> BalloonSim {
        sim.set_faults(config.faults.clone());
        let page_size =
            config.page_size.unwrap_or(if sim.chance(1, 2) { PAGE_SIZE_4K } else { PAGE_SIZE_64K });
        let features = config.host_features.unwrap_or_else(|| {
            let mut features = 0;
            for bit in [
                VIRTIO_BALLOON_F_MUST_TELL_HOST,
                VIRTIO_BALLOON_F_STATS_VQ,
                VIRTIO_BALLOON_F_DEFLATE_ON_OOM,
                VIRTIO_F_VERSION_1,
                VIRTIO_RING_F_EVENT_IDX,
            ] {
                if sim.chance(3, 4) {
                    features |= 1 << bit;
                }
            }
            features
        });
        let endian =
            config.guest_endian.unwrap_or(if sim.chance(1, 2) { Endian::Little } else { Endian::Big });
        let cx = sim.cx("vballoon", 0);
        let world = World::new(&cx, config, page_size, features, endian, true);
        let mut coverage = BTreeSet::new();
        if page_size == PAGE_SIZE_64K {
            coverage.insert("page-64k");
        } else {
            coverage.insert("page-4k");
        }
        if world.probe_result.is_err() {
            coverage.insert("probe-failed");
        }
        let tasks = config.tasks.max(1);
        BalloonSim {
            cx,
            task_cxs: (0..tasks).map(|i| sim.cx(&format!("task-{i}"), 1)).collect(),
            compaction_cx: sim.cx("kcompactd", 1),
            host_cx: sim.cx("host-irq", 0),
            pm_cx: sim.cx("pm", 0),
            world,
            tasks: vec![Vec::new(); tasks],
            frozen: false,
            coverage,
            stats_seen: 0,
        }
    }

    fn task_pages(&self) -> BTreeSet<Pfn> {
        self.tasks.iter().flatten().copied().collect()
    }

    fn total_pages(&self) -> u64 {
        self.world.pages.spanned_pages(&self.cx)
    }

    fn run(&mut self) -> Outcome {
        let Some(vb) = self.world.vb.clone() else {
            return Outcome::Idle;
        };
        if self.frozen {
            return Outcome::Idle;
        }
        let cx = &self.cx;
        let fills_before = vb.counters.fills.load(Ordering::Relaxed);
        let leaks_before = vb.counters.leaks.load(Ordering::Relaxed);
        let puff_before = vb.counters.out_of_puff.load(Ordering::Relaxed);
        let mut rounds = 0;
        while vb.thread_has_work() && rounds < ROUNDS_MAX {
            vb.balloon_thread_step(cx);
            rounds += 1;
            if vb.counters.out_of_puff.load(Ordering::Relaxed) != puff_before {
                break;
            }
        }
        let out_of_puff = vb.counters.out_of_puff.load(Ordering::Relaxed) != puff_before;
        let filled = vb.counters.fills.load(Ordering::Relaxed) != fills_before;
        let leaked = vb.counters.leaks.load(Ordering::Relaxed) != leaks_before;
        if filled {
            self.coverage.insert("fill");
        }
        if leaked {
            self.coverage.insert("leak");
        }
        if out_of_puff {
            self.coverage.insert("out-of-puff");
        }
        if filled && leaked {
            cx.sim().report(
                Some(cx),
                Violation::new(
                    "liveness",
                    format!("the balloon inflated and deflated under one fixed target (num_pages {}, towards_target {})", vb.num_pages(), vb.towards_target()),
                ),
            );
        } else if !out_of_puff && vb.thread_has_work() && !vb.shared.need_stats_update.load(Ordering::SeqCst)
        {
            cx.sim().report(
                Some(cx),
                Violation::new(
                    "liveness",
                    format!("no convergence after {rounds} rounds (towards_target {})", vb.towards_target()),
                ),
            );
        } else if rounds > 0 && !out_of_puff {
            self.coverage.insert("target-reached");
        }
        let (_, received) = self.world.host.stats();
        if received > self.stats_seen && vb.counters.stats_rounds.load(Ordering::Relaxed) > 0 {
            self.coverage.insert("stats-round");
        }
        self.stats_seen = received;
        Outcome::Run {
            num_pages: vb.num_pages(),
            actual: self.world.host.actual(),
            out_of_puff,
            pages_per_page: vb.pages_per_page,
        }
    }

    fn alloc(&mut self, task: usize, pages: u64, nofs: bool) -> Outcome {
        let cx = &self.task_cxs[task];
        let kills_before = self.world.pages.oom_kills(cx);
        let deflates_before =
            self.world.vb.as_ref().map_or(0, |vb| vb.counters.oom_deflates.load(Ordering::Relaxed));
        let mut got = 0;
        cx.op_begin(
            "alloc_pages",
            format!("task {task}: {pages} pages{}", if nofs { " under fs_lock" } else { "" }),
        );
        for _ in 0..pages {
            let result = if nofs {
                let _fs = self.world.pages.fs_lock().lock(cx);
                self.world.pages.alloc_page(cx, Gfp::GFP_NOFS, "task")
            } else {
                self.world.pages.alloc_page(cx, Gfp::GFP_HIGHUSER_MOVABLE, "task")
            };
            match result {
                Ok(pfn) => {
                    self.world.touch(cx, pfn);
                    self.tasks[task].push(pfn);
                    got += 1;
                }
                Err(_) => break,
            }
        }
        let killed = self.world.pages.oom_kills(cx) != kills_before;
        if killed {
            self.coverage.insert("oom-kill");
            for pfn in std::mem::take(&mut self.tasks[task]) {
                let _ = self.world.pages.free_page(cx, pfn);
            }
        }
        if self.world.vb.as_ref().map_or(0, |vb| vb.counters.oom_deflates.load(Ordering::Relaxed))
            != deflates_before
        {
            self.coverage.insert("oom-deflate");
        }
        cx.op_end("alloc_pages", format!("got {got}{}", if killed { ", killed" } else { "" }));
        Outcome::Alloc { got, killed, task_pages: self.tasks[task].len() as u64 }
    }
}

impl Subject for BalloonSim {
    const NAME: &'static str = "balloon";
    type Config = BalloonConfig;
    type Op = Op;
    type Outcome = Outcome;
    type Reference = BalloonModel;

    fn sim_config(_config: &BalloonConfig, seed: u64) -> SimConfig {
        SimConfig::new(seed).cpus(2)
    }

    fn new(sim: &Sim, config: &BalloonConfig) -> Self {
        BalloonSim::build(sim, config)
    }

    fn op_strategy(_config: &BalloonConfig) -> BoxedStrategy<Op> {
        prop_oneof![
            3 => any::<u32>().prop_map(|pages| Op::SetTarget { pages }),
            4 => Just(Op::BalloonRun),
            3 => (any::<u8>(), any::<u16>(), any::<bool>()).prop_map(|(task, pages, nofs)| Op::Alloc { task, pages, nofs }),
            2 => (any::<u8>(), any::<u16>()).prop_map(|(task, pages)| Op::Free { task, pages }),
            2 => (any::<u16>(), any::<u8>()).prop_map(|(index, to_zone)| Op::Compact { index, to_zone }),
            1 => Just(Op::StatsRequest),
            1 => Just(Op::Freeze),
            1 => Just(Op::Restore),
        ]
        .boxed()
    }

    fn apply(&mut self, _sim: &Sim, op: &Op) -> Outcome {
        match *op {
            Op::SetTarget { pages } => {
                let limit = (self.world.pages.page_size() / PAGE_SIZE_4K) * self.total_pages() + 1;
                let target = (u64::from(pages) % limit) as u32;
                self.host_cx.note(format!("host: num_pages = {target}"));
                self.world.host.set_num_pages(target);
                self.world.vdev.config_changed(&self.host_cx);
                Outcome::Target { target }
            }
            Op::BalloonRun => self.run(),
            Op::Alloc { task, pages, nofs } => {
                let task = usize::from(task) % self.tasks.len();
                let pages = u64::from(pages) % (self.total_pages() / 2 + 1);
                self.alloc(task, pages, nofs)
            }
            Op::Free { task, pages } => {
                let task = usize::from(task) % self.tasks.len();
                let count = usize::from(pages).min(self.tasks[task].len());
                for _ in 0..count {
                    if let Some(pfn) = self.tasks[task].pop() {
                        let _ = self.world.pages.free_page(&self.task_cxs[task], pfn);
                    }
                }
                Outcome::Free { freed: count as u64, task_pages: self.tasks[task].len() as u64 }
            }
            Op::Compact { index, to_zone } => {
                let Some(vb) = self.world.vb.clone() else {
                    return Outcome::Idle;
                };
                let result = compact_one(
                    &self.compaction_cx,
                    &vb.vb_dev_info,
                    &self.world.pages,
                    usize::from(index),
                    usize::from(to_zone),
                    |cx, newpage, page| vb.migratepage(cx, newpage, page),
                );
                if let CompactResult::Migrated(from, to) = result {
                    self.coverage.insert("migration");
                    if self.world.pages.zone_of(&self.cx, from) != self.world.pages.zone_of(&self.cx, to) {
                        self.coverage.insert("migration-cross-zone");
                    }
                }
                Outcome::Compact(result)
            }
            Op::StatsRequest => {
                if self.world.vb.is_none() || self.frozen {
                    return Outcome::Idle;
                }
                let reached = self.world.vdev.host_request_stats(&self.host_cx);
                Outcome::Stats(reached)
            }
            Op::Freeze => {
                let Some(vb) = self.world.vb.clone() else {
                    return Outcome::Idle;
                };
                if self.frozen {
                    return Outcome::Idle;
                }
                vb.shared.freezing.store(true, Ordering::SeqCst);
                vb.freeze(&self.pm_cx);
                self.frozen = true;
                self.coverage.insert("freeze");
                Outcome::Frozen
            }
            Op::Restore => {
                let Some(vb) = self.world.vb.clone() else {
                    return Outcome::Idle;
                };
                if !self.frozen {
                    return Outcome::Idle;
                }
                let result = vb.restore(&self.pm_cx);
                if result.is_ok() {
                    self.frozen = false;
                    vb.shared.freezing.store(false, Ordering::SeqCst);
                    self.coverage.insert("restore");
                }
                Outcome::Restored(result)
            }
        }
    }

    fn check_invariants(&self, sim: &Sim) -> Result<(), Violation> {
        self.world.check_invariants(&sim.observer_cx("check_invariants", 0), &self.task_pages())
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
            return Err(Violation::new("leak", format!("{left} pages still allocated after remove")));
        }
        if self.world.host.held_count() != 0 {
            return Err(Violation::new(
                "leak",
                format!("the host still holds {} pfns after remove", self.world.host.held_count()),
            ));
        }
        Ok(())
    }

    fn coverage(&self) -> BTreeSet<&'static str> {
        let mut marks = self.coverage.clone();
        if sim_fault_count(&self.cx) > 0 {
            marks.insert("fault");
        }
        marks
    }
}

fn sim_fault_count(cx: &Cx) -> u64 {
    cx.sim().faults().failed()
}

/// The reference model: the host's target, each task's page count, and what the balloon
/// must converge to.
#[derive(Debug)]
pub struct BalloonModel {
    align_target: bool,
    target: u32,
    tasks: BTreeMap<usize, u64>,
    tasks_count: usize,
}

impl Reference for BalloonModel {
    type Config = BalloonConfig;
    type Op = Op;
    type Outcome = Outcome;

    fn new(config: &BalloonConfig) -> Self {
        BalloonModel {
            align_target: config.fixes.on(crate::fixes::ALIGN_TARGET),
            target: 0,
            tasks: BTreeMap::new(),
            tasks_count: config.tasks.max(1),
        }
    }

    fn check(&mut self, op: &Op, actual: &Outcome) -> Result<(), String> {
        match (op, actual) {
            (Op::SetTarget { .. }, Outcome::Target { target }) => {
                self.target = *target;
                Ok(())
            }
            (Op::BalloonRun, Outcome::Idle) => Ok(()),
            (Op::BalloonRun, Outcome::Run { num_pages, actual, out_of_puff, pages_per_page }) => {
                if actual != num_pages {
                    return Err(format!("actual {actual} != num_pages {num_pages} after an update"));
                }
                let ppp = *pages_per_page;
                let expect = if self.align_target { self.target.div_ceil(ppp) * ppp } else { self.target };
                if !out_of_puff && *num_pages != expect {
                    return Err(format!(
                        "balloon at {num_pages}, target {} (expected {expect})",
                        self.target
                    ));
                }
                if *out_of_puff && *num_pages > expect {
                    return Err(format!("out of puff yet above the target: {num_pages} > {expect}"));
                }
                Ok(())
            }
            (Op::Alloc { task, pages, .. }, Outcome::Alloc { got, killed, task_pages }) => {
                let task = usize::from(*task) % self.tasks_count;
                let held = self.tasks.entry(task).or_insert(0);
                if *got > u64::from(*pages) {
                    return Err(format!("got {got} of {pages} pages"));
                }
                let expect = if *killed { 0 } else { *held + got };
                if *task_pages != expect {
                    return Err(format!("task holds {task_pages}, expected {expect}"));
                }
                *held = expect;
                Ok(())
            }
            (Op::Free { task, pages }, Outcome::Free { freed, task_pages }) => {
                let task = usize::from(*task) % self.tasks_count;
                let held = self.tasks.entry(task).or_insert(0);
                let expect = u64::from(*pages).min(*held);
                if *freed != expect || *task_pages != *held - expect {
                    return Err(format!(
                        "freed {freed} leaving {task_pages}; expected {expect} leaving {}",
                        *held - expect
                    ));
                }
                *held -= expect;
                Ok(())
            }
            (Op::Compact { .. }, Outcome::Compact(_) | Outcome::Idle) => Ok(()),
            (Op::StatsRequest, Outcome::Stats(_) | Outcome::Idle) => Ok(()),
            (Op::Freeze, Outcome::Frozen | Outcome::Idle) => Ok(()),
            (Op::Restore, Outcome::Restored(_) | Outcome::Idle) => Ok(()),
            (op, outcome) => Err(format!("{op:?} cannot return {outcome:?}")),
        }
    }
}

impl Catalog for BalloonSim {
    fn fix_table() -> &'static FixTable {
        <BalloonFixes as FixTableOf>::TABLE
    }

    fn config(kernel: Option<&str>, fixes_off: &[String]) -> Result<BalloonConfig, String> {
        let mut config = BalloonConfig::preset(kernel.unwrap_or("fixed"))?;
        config.fixes = Fixes::parse(kernel, fixes_off)?;
        Ok(config)
    }

    fn zoo() -> Vec<ZooEntry> {
        vec![
            ZooEntry {
                name: "oom-deadlock",
                kernel: "fixed",
                fix: "oom-deadlock",
                checker: "lockdep",
                expected: vec!["lockdep:circular-locking".into()],
                ops_max: 40,
                cases_max: 400,
            },
            ZooEntry {
                name: "fill-pfns-index",
                kernel: "fixed",
                fix: "fill-pfns-index",
                checker: "op-sim",
                expected: vec![
                    "invariant:host-holds-non-balloon-pfn".into(),
                    "invariant:balloon-pfn-not-held".into(),
                ],
                ops_max: 30,
                cases_max: 200,
            },
            ZooEntry {
                name: "stats-first-buffer",
                kernel: "fixed",
                fix: "stats-first-buffer",
                checker: "op-sim",
                expected: vec!["host-finding".into()],
                ops_max: 10,
                cases_max: 100,
            },
            ZooEntry {
                name: "pfn-format-virtio1",
                kernel: "fixed",
                fix: "pfn-format-virtio1",
                checker: "op-sim",
                expected: vec!["host-finding".into()],
                ops_max: 30,
                cases_max: 300,
            },
            ZooEntry {
                name: "endless-inflate-deflate-64k",
                kernel: "fixed",
                fix: "align-target",
                checker: "op-sim",
                expected: vec!["liveness".into()],
                ops_max: 30,
                cases_max: 300,
            },
            ZooEntry {
                name: "leak-available-pages",
                kernel: "fixed",
                fix: "leak-available-pages",
                checker: "op-sim",
                expected: vec!["BUG".into()],
                ops_max: 40,
                cases_max: 400,
            },
            ZooEntry {
                name: "migrate-managed-count",
                kernel: "fixed",
                fix: "migrate-managed-count",
                checker: "op-sim",
                expected: vec!["invariant:managed-pages-not-conserved".into()],
                ops_max: 40,
                cases_max: 400,
            },
        ]
    }

    fn scenarios() -> Vec<ScenarioInfo> {
        vec![ScenarioInfo {
            name: "oom-deadlock",
            description: "the seed's fill_balloon (fix oom-deadlock off) allocates under balloon_lock and direct reclaim waits for a filesystem lock; a task holding that lock hits OOM and the notifier wants balloon_lock (lockdep: circular locking)",
        }]
    }

    fn run_scenario(name: &str) -> Option<Sim> {
        match name {
            "oom-deadlock" => {
                // Only this fix off, so the trace shows one idea (the 4.4 preset also BUG()s in
                // the OOM notifier's leak of an almost empty balloon).
                let mut fixes = Fixes::all();
                fixes.set(crate::fixes::OOM_DEADLOCK, false);
                Some(oom_deadlock_scenario(fixes))
            }
            _ => None,
        }
    }
}

/// The OOM deadlock as a scripted run: a 16-page guest, a task holding half of it, a host that
/// wants 12 pages, the balloon thread running out of puff under balloon_lock (direct reclaim
/// waits for the filesystem lock), then a task holding the filesystem lock hitting OOM, so the
/// OOM notifier takes balloon_lock: lockdep reports the cycle. With `fixes.on(crate::fixes::OOM_DEADLOCK)` the
/// same script is quiet.
pub fn oom_deadlock_scenario(fixes: Fixes) -> Sim {
    let sim = Sim::new(SimConfig::new(1).cpus(2).lockdep(ReportMode::Collect).trace(TraceMode::Full));
    let mut config = BalloonConfig::preset("linux-4.4").expect("preset");
    config.fixes = fixes;
    config.memory_bytes = 16 * PAGE_SIZE_4K;
    config.page_size = Some(PAGE_SIZE_4K);
    config.host_features = Some(HOST_FEATURES_ALL);
    config.guest_endian = Some(Endian::Little);
    let mut subject = BalloonSim::build(&sim, &config);
    subject.apply(&sim, &Op::Alloc { task: 0, pages: 8, nofs: false });
    subject.apply(&sim, &Op::SetTarget { pages: 12 });
    subject.apply(&sim, &Op::BalloonRun);
    subject.apply(&sim, &Op::Alloc { task: 1, pages: 2, nofs: true });
    let _ = subject.teardown(&sim);
    sim
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reference() -> BalloonModel {
        BalloonModel::new(&BalloonConfig::preset("fixed").expect("preset"))
    }

    fn run(num_pages: u32, actual: u32, out_of_puff: bool, pages_per_page: u32) -> Outcome {
        Outcome::Run { num_pages, actual, out_of_puff, pages_per_page }
    }

    #[test]
    fn the_reference_wants_the_aligned_target_unless_out_of_puff() {
        let mut model = reference();
        model.check(&Op::SetTarget { pages: 17 }, &Outcome::Target { target: 17 }).expect("target");
        assert!(model.check(&Op::BalloonRun, &run(32, 32, false, 16)).is_ok());
        assert!(model.check(&Op::BalloonRun, &run(16, 16, false, 16)).is_err(), "short of the target");
        assert!(model.check(&Op::BalloonRun, &run(16, 16, true, 16)).is_ok(), "out of puff may stop short");
        assert!(model.check(&Op::BalloonRun, &run(48, 48, true, 16)).is_err(), "never above the target");
        assert!(model.check(&Op::BalloonRun, &run(32, 16, false, 16)).is_err(), "actual must follow");
    }

    #[test]
    fn the_reference_counts_each_tasks_pages_and_an_oom_kill_empties_them() {
        let mut model = reference();
        let alloc = Op::Alloc { task: 0, pages: 5, nofs: false };
        model.check(&alloc, &Outcome::Alloc { got: 5, killed: false, task_pages: 5 }).expect("alloc");
        assert!(model.check(&alloc, &Outcome::Alloc { got: 1, killed: false, task_pages: 5 }).is_err());
        model.check(&alloc, &Outcome::Alloc { got: 0, killed: true, task_pages: 0 }).expect("killed");
        let free = Op::Free { task: 0, pages: 3 };
        assert!(
            model.check(&free, &Outcome::Free { freed: 3, task_pages: 0 }).is_err(),
            "nothing left to free"
        );
        model.check(&free, &Outcome::Free { freed: 0, task_pages: 0 }).expect("free");
        assert!(model.check(&Op::Freeze, &Outcome::Stats(true)).is_err(), "an outcome of another operation");
    }
}
