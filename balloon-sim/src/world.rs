//! The machine the balloon runs in: a guest (its page allocator), a host device and the
//! transport, with the driver probed on them (virtballoon_probe()). Both the op-level subject and
//! the threaded loom/shuttle actors drive one; its invariants are what every checker checks.

use std::collections::BTreeSet;

use sim_core::mm::{PageAllocConfig, PageAllocator, Pfn, PAGE_SIZE_4K};
use sim_core::sync::atomic::Ordering;
use sim_core::sync::Arc;
use sim_core::{Cx, Errno, Violation, ViolationKind};

use crate::check::BalloonConfig;
use crate::guest::Endian;
use crate::host::{BalloonHost, VIRTIO_BALLOON_F_DEFLATE_ON_OOM, VIRTIO_BALLOON_S_NR};
use crate::virtio::VirtioDevice;
use crate::virtio_balloon::{VirtioBalloon, DRIVER_FEATURES};

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
        let probed = VirtioBalloon::probe(
            cx,
            vdev.clone(),
            pages.clone(),
            config.fixes,
            config.oom_pages,
            config.judge_benign_races,
        );
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
        for page in vb.vb_dev_info.all_pages(cx, &self.pages) {
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
                    ViolationKind::finding("host-held-page-touched"),
                    format!("guest uses page {pfn}, which the host holds"),
                ),
            );
        }
    }

    /// Checks the subsystem's invariants with `task_pages` in use by tasks: the first broken
    /// one. `cx` is an observer context, so the checks add nothing to the trace or lockdep.
    pub fn check_invariants(&self, cx: &Cx, task_pages: &BTreeSet<Pfn>) -> Result<(), Violation> {
        let findings = self.host.findings();
        if !findings.is_empty() {
            return Err(Violation::new(ViolationKind::finding("host-finding"), findings.join("; ")));
        }
        let Some(vb) = &self.vb else {
            let allocated = self.pages.allocated_pages(cx);
            if allocated != task_pages.len() as u64 {
                return broken(
                    "pages-leaked",
                    format!("no driver, {allocated} pages allocated, tasks hold {}", task_pages.len()),
                );
            }
            return Ok(());
        };
        let balloon: Vec<Pfn> = vb.vb_dev_info.all_pages(cx, &self.pages);
        self.check_balloon_list(cx, vb, &balloon)?;
        self.check_host_pfns(cx)?;
        self.check_page_owners(cx, &balloon, task_pages)?;
        self.check_managed_pages(cx, &balloon)?;
        self.check_config(cx, vb)
    }

    /// `num_pages` counts the balloon list, and nothing is isolated at rest.
    fn check_balloon_list(&self, cx: &Cx, vb: &VirtioBalloon, balloon: &[Pfn]) -> Result<(), Violation> {
        let ppp = vb.pages_per_page;
        if vb.num_pages(cx) as usize != balloon.len() * ppp as usize {
            return broken(
                "num-pages",
                format!("num_pages {} but {} balloon pages x {ppp}", vb.num_pages(cx), balloon.len()),
            );
        }
        let isolated = vb.vb_dev_info.isolated_count(cx);
        if isolated != 0 {
            return broken("isolated-at-rest", format!("{isolated} isolated pages at rest"));
        }
        self.check_balloon_pages(cx, balloon)
    }

    /// Each balloon page is what 4.4's balloon_page_insert() makes it: a balloon page with
    /// `PG_private`, unlocked, holding exactly the balloon's reference.
    fn check_balloon_pages(&self, cx: &Cx, balloon: &[Pfn]) -> Result<(), Violation> {
        use sim_core::mm::page::PG_PRIVATE;
        for &pfn in balloon {
            let count = self.pages.page_count(cx, pfn).unwrap_or(0);
            let typed = self.pages.page_balloon(cx, pfn) && self.pages.test_page_flag(cx, pfn, PG_PRIVATE);
            if !typed || count != 1 || self.pages.page_locked(cx, pfn) {
                return broken(
                    "balloon-page-state",
                    format!(
                        "balloon page {pfn}: PageBalloon+PagePrivate {typed}, page_count {count}, locked {}",
                        self.pages.page_locked(cx, pfn)
                    ),
                );
            }
        }
        Ok(())
    }

    /// The host holds exactly the balloon pages' PFNs.
    fn check_host_pfns(&self, cx: &Cx) -> Result<(), Violation> {
        let expected = self.balloon_pfns(cx);
        let held = self.host.held();
        let sizes = format!("held {}, balloon {}", held.len(), expected.len());
        if let Some(stray) = held.difference(&expected).next() {
            return broken(
                "host-holds-non-balloon-pfn",
                format!("the host holds pfn {stray:#x}, which no balloon page covers ({sizes})"),
            );
        }
        if let Some(missing) = expected.difference(&held).next() {
            return broken(
                "balloon-pfn-not-held",
                format!("balloon pfn {missing:#x} was never told to the host ({sizes})"),
            );
        }
        Ok(())
    }

    /// Every allocated page is the balloon's or a task's, never both, and no page in use is
    /// held by the host.
    fn check_page_owners(
        &self,
        cx: &Cx,
        balloon: &[Pfn],
        task_pages: &BTreeSet<Pfn>,
    ) -> Result<(), Violation> {
        if let Some(both) = balloon.iter().find(|p| task_pages.contains(p)) {
            return broken(
                "page-in-balloon-and-in-use",
                format!("page {both} is in the balloon and used by a task"),
            );
        }
        if let Some(touched) = task_pages.iter().find(|&&p| self.host_holds_page(p)) {
            return broken(
                "page-in-use-held-by-host",
                format!("page {touched} is in use but the host holds it"),
            );
        }
        let allocated = self.pages.allocated_pages(cx);
        if allocated != (balloon.len() + task_pages.len()) as u64 {
            return broken(
                "pages-leaked",
                format!(
                    "{allocated} pages allocated, balloon {} + tasks {}",
                    balloon.len(),
                    task_pages.len()
                ),
            );
        }
        Ok(())
    }

    /// Each zone's managed pages plus its ballooned pages (unless DEFLATE_ON_OOM, which leaves
    /// them managed) equal its spanned pages.
    fn check_managed_pages(&self, cx: &Cx, balloon: &[Pfn]) -> Result<(), Violation> {
        let deflate_on_oom = self.vdev.has_feature(VIRTIO_BALLOON_F_DEFLATE_ON_OOM);
        for zone in 0..self.pages.zones_count(cx) {
            let in_balloon =
                balloon.iter().filter(|&&p| self.pages.zone_of(cx, p) == Ok(zone)).count() as i64;
            let managed = self.pages.managed_pages(cx, zone);
            let spanned = self.pages.zone_spanned_pages(cx, zone) as i64;
            let counted = if deflate_on_oom { managed } else { managed + in_balloon };
            if counted != spanned {
                return broken(
                    "managed-pages-not-conserved",
                    format!(
                        "zone {zone}: managed {managed} + ballooned {in_balloon} != {spanned} \
                         (deflate_on_oom {deflate_on_oom})"
                    ),
                );
            }
        }
        Ok(())
    }

    /// The config space's `actual` follows `num_pages`, and the host's last stats carry only
    /// known tags.
    fn check_config(&self, cx: &Cx, vb: &VirtioBalloon) -> Result<(), Violation> {
        if vb.has_vqs() && self.host.actual() != vb.num_pages(cx) {
            return broken(
                "actual",
                format!("config actual {} but num_pages {}", self.host.actual(), vb.num_pages(cx)),
            );
        }
        if let (Some(report), _) = self.host.stats() {
            if let Some((tag, _)) = report.iter().find(|(tag, _)| *tag as usize >= VIRTIO_BALLOON_S_NR) {
                return broken("stats-tag", format!("the host's last stats carry unknown tag {tag:#x}"));
            }
        }
        Ok(())
    }
}

/// A broken invariant named `name`.
fn broken(name: &'static str, message: String) -> Result<(), Violation> {
    Err(Violation::new(ViolationKind::invariant(name), message))
}
