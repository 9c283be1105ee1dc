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
use crate::host::{BalloonHost, PfnBits, VIRTIO_BALLOON_F_DEFLATE_ON_OOM};
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
        let listed = vb.vb_dev_info.listed_pages(cx, &self.pages, 0);
        self.page_bits(cx, &listed).pieces(vb.pages_per_page).iter().collect()
    }

    /// Guest pages `pages` as a set sized for this guest's frames (one allocation).
    fn page_bits(&self, cx: &Cx, pages: &[Pfn]) -> PfnBits {
        let mut out = PfnBits::new(self.pages.spanned_pages(cx));
        pages.iter().for_each(|&pfn| {
            out.insert(pfn as u32);
        });
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
        let mut tasks = PfnBits::default();
        task_pages.iter().for_each(|&pfn| {
            tasks.insert(pfn as u32);
        });
        self.check_scoped(cx, &tasks, Scope::Whole).map(|_| ())
    }

    /// The invariants, each page's state checked over all balloon pages ([`Scope::Whole`]) or only
    /// over those an operation may have changed ([`Scope::Changed`]); every other invariant is
    /// checked whole either way, so both scopes find the same first broken invariant whenever the
    /// state before the operation passed. Returns the balloon's pages for the next check's scope.
    ///
    /// Both scopes walk the balloon list once (the walk is what sees its links, and `num_pages`
    /// counts it) but never sort it: the pages become a bit set, and every set comparison (host
    /// PFNs, owners, the pages new since the last check) goes a 64-bit word at a time.
    pub(crate) fn check_scoped(
        &self,
        cx: &Cx,
        tasks: &PfnBits,
        scope: Scope<'_>,
    ) -> Result<PfnBits, Violation> {
        if let Some(findings) = self.host.findings_joined() {
            return Err(Violation::new(ViolationKind::finding("host-finding"), findings));
        }
        let Some(vb) = &self.vb else {
            let allocated = self.pages.allocated_pages(cx);
            if allocated != tasks.len() as u64 {
                return broken(
                    "pages-leaked",
                    format!("no driver, {allocated} pages allocated, tasks hold {}", tasks.len()),
                );
            }
            return Ok(PfnBits::default());
        };
        // List order, a page listed twice counted twice (as `num_pages` would count it).
        // Room for as many pages as the last check saw: no read of the model for it (under the
        // threaded checkers a facade read is a scheduling point, and pinned schedules move).
        let expected = match scope {
            Scope::Whole => 0,
            Scope::Changed(before) => before.len(),
        };
        let balloon: Vec<Pfn> = vb.vb_dev_info.listed_pages(cx, &self.pages, expected);
        let members = self.page_bits(cx, &balloon);
        let held = self.host.held_bits();
        self.check_balloon_list(cx, vb, &balloon)?;
        match scope {
            Scope::Whole => self.check_balloon_pages(cx, members.iter())?,
            Scope::Changed(before) => {
                let changed = self.host.changed();
                let ppp = vb.pages_per_page;
                let touched = members.iter().filter(|&pfn| {
                    !before.contains(pfn) || changed.any_in(vb.page_to_balloon_pfn(Pfn::from(pfn)), ppp)
                });
                self.check_balloon_pages(cx, touched)?
            }
        }
        self.check_host_pfns(vb, &members, &held)?;
        self.check_page_owners(cx, vb, &balloon, &members, tasks, &held)?;
        self.check_managed_pages(cx, &balloon)?;
        self.check_config(cx, vb)?;
        Ok(members)
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
        Ok(())
    }

    /// Each balloon page in `pages` is what 4.4's balloon_page_insert() makes it: a balloon page
    /// with `PG_private`, unlocked, holding exactly the balloon's reference.
    fn check_balloon_pages(&self, cx: &Cx, pages: impl Iterator<Item = u32>) -> Result<(), Violation> {
        use sim_core::mm::page::PG_PRIVATE;
        for pfn in pages.map(Pfn::from) {
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

    /// The host holds exactly the balloon pages' (`members`) PFNs (`held`).
    fn check_host_pfns(
        &self,
        vb: &VirtioBalloon,
        members: &PfnBits,
        held: &PfnBits,
    ) -> Result<(), Violation> {
        // With one 4 KiB piece a page the balloon's pages are its PFNs: no copy.
        let pieces;
        let expected = if vb.pages_per_page == 1 {
            members
        } else {
            pieces = members.pieces(vb.pages_per_page);
            &pieces
        };
        let sizes = || format!("held {}, balloon {}", held.len(), expected.len());
        if let Some(stray) = held.first_not_in(expected) {
            return broken(
                "host-holds-non-balloon-pfn",
                format!("the host holds pfn {stray:#x}, which no balloon page covers ({})", sizes()),
            );
        }
        if let Some(missing) = expected.first_not_in(held) {
            return broken(
                "balloon-pfn-not-held",
                format!("balloon pfn {missing:#x} was never told to the host ({})", sizes()),
            );
        }
        Ok(())
    }

    /// Every allocated page is the balloon's (`members`) or a task's (`tasks`), never both, and
    /// no page in use is held by the host (`held`).
    fn check_page_owners(
        &self,
        cx: &Cx,
        vb: &VirtioBalloon,
        balloon: &[Pfn],
        members: &PfnBits,
        tasks: &PfnBits,
        held: &PfnBits,
    ) -> Result<(), Violation> {
        if let Some(both) = members.first_in(tasks) {
            return broken(
                "page-in-balloon-and-in-use",
                format!("page {both} is in the balloon and used by a task"),
            );
        }
        let ppp = vb.pages_per_page;
        let in_use_held = if ppp == 1 {
            tasks.first_in(held)
        } else {
            tasks.iter().find(|&pfn| held.any_in(pfn * ppp, ppp))
        };
        if let Some(touched) = in_use_held {
            return broken(
                "page-in-use-held-by-host",
                format!("page {touched} is in use but the host holds it"),
            );
        }
        let allocated = self.pages.allocated_pages(cx);
        if allocated != (balloon.len() + tasks.len()) as u64 {
            return broken(
                "pages-leaked",
                format!("{allocated} pages allocated, balloon {} + tasks {}", balloon.len(), tasks.len()),
            );
        }
        Ok(())
    }

    /// Each zone's managed pages plus its ballooned pages (unless DEFLATE_ON_OOM, which leaves
    /// them managed) equal its spanned pages. The ballooned pages are counted per zone only when
    /// the sum needs them, or for the report.
    fn check_managed_pages(&self, cx: &Cx, balloon: &[Pfn]) -> Result<(), Violation> {
        let deflate_on_oom = self.vdev.has_feature(VIRTIO_BALLOON_F_DEFLATE_ON_OOM);
        let zones = self.pages.zones_count(cx);
        let count_ballooned = || {
            let mut in_balloon = vec![0i64; zones];
            for &pfn in balloon {
                if let Some(count) =
                    self.pages.zone_of(cx, pfn).ok().and_then(|zone| in_balloon.get_mut(zone))
                {
                    *count += 1;
                }
            }
            in_balloon
        };
        let ballooned = (!deflate_on_oom).then(count_ballooned);
        for zone in 0..zones {
            let managed = self.pages.managed_pages(cx, zone);
            let spanned = self.pages.zone_spanned_pages(cx, zone) as i64;
            let counted = managed + ballooned.as_ref().map_or(0, |in_balloon| in_balloon[zone]);
            if counted != spanned {
                let in_balloon =
                    ballooned.as_ref().map_or_else(|| count_ballooned()[zone], |in_balloon| in_balloon[zone]);
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
        if let Some(tag) = self.host.unknown_stats_tag() {
            return broken("stats-tag", format!("the host's last stats carry unknown tag {tag:#x}"));
        }
        Ok(())
    }
}

/// How much of the balloon's page state a check looks at ([`World::check_scoped`]).
#[derive(Clone, Copy, Debug)]
pub(crate) enum Scope<'a> {
    /// Every balloon page.
    Whole,
    /// Only balloon pages not in this set (the balloon as the last check saw it) or whose
    /// pieces the host took or gave back since its change log was cleared: what one
    /// operation of the balloon thread, an allocating task or the host may have changed.
    Changed(&'a PfnBits),
}

/// A broken invariant named `name`.
fn broken<T>(name: &'static str, message: String) -> Result<T, Violation> {
    Err(Violation::new(ViolationKind::invariant(name), message))
}
