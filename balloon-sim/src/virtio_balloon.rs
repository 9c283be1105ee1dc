//! drivers/virtio/virtio_balloon.c (Linux 4.4/4.5, seed 004), function for function, with the
//! later fixes of [`crate::fixes`] as switches. Left out: the freezer's own machinery (freeze is
//! called with the thread parked, as the PM core guarantees), `dev_info_ratelimited` rate limits,
//! vm event counters other than the balloon's.

use sim_core::fault::FaultSite;
use sim_core::mm::page::PageListHeads;
use sim_core::mm::{NotifierId, PageAllocator, Pfn};
use sim_core::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use sim_core::sync::{Arc, Mutex as FacadeMutex};
use sim_core::trace::CallName;
use sim_core::{Cx, Errno, Guarded, Mutex, Violation, ViolationKind, WaitQueue};

use crate::balloon_compaction::BalloonDevInfo;
use crate::fixes::Fixes;
use crate::guest::Endian;
use crate::host::{
    CONFIG_ACTUAL, CONFIG_NUM_PAGES, DEFLATE_VQ, INFLATE_VQ, STATS_VQ, VIRTIO_BALLOON_F_DEFLATE_ON_OOM,
    VIRTIO_BALLOON_F_MUST_TELL_HOST, VIRTIO_BALLOON_F_STATS_VQ, VIRTIO_BALLOON_PFN_SHIFT,
    VIRTIO_BALLOON_STAT_SIZE, VIRTIO_BALLOON_S_MAJFLT, VIRTIO_BALLOON_S_MEMFREE, VIRTIO_BALLOON_S_MEMTOT,
    VIRTIO_BALLOON_S_MINFLT, VIRTIO_BALLOON_S_NR, VIRTIO_BALLOON_S_SWAP_IN, VIRTIO_BALLOON_S_SWAP_OUT,
    VIRTIO_F_VERSION_1,
};
use crate::virtio::{Callback, VirtioDevice, PFNS_ADDR, STATS_ADDR};
use crate::virtio_ring::VirtQueue;

/// `VIRTIO_BALLOON_ARRAY_PFNS_MAX`: PFNs told to the host per round.
pub(crate) const VIRTIO_BALLOON_ARRAY_PFNS_MAX: usize = 256;
/// `OOM_VBALLOON_DEFAULT_PAGES`: the `oom_pages` module parameter's default.
pub(crate) const OOM_VBALLOON_DEFAULT_PAGES: u32 = 256;
/// `VIRTBALLOON_OOM_NOTIFY_PRIORITY`.
pub(crate) const VIRTBALLOON_OOM_NOTIFY_PRIORITY: i32 = 80;
/// `msleep(200)` when out of puff.
pub(crate) const OUT_OF_PUFF_SLEEP_NS: u64 = 200_000_000;
/// The driver's feature table: MUST_TELL_HOST, STATS_VQ, DEFLATE_ON_OOM.
pub(crate) const DRIVER_FEATURES: u64 = (1 << VIRTIO_BALLOON_F_MUST_TELL_HOST)
    | (1 << VIRTIO_BALLOON_F_STATS_VQ)
    | (1 << VIRTIO_BALLOON_F_DEFLATE_ON_OOM);
/// What the kmalloc'd `vb->stats` holds before anything writes it (uninitialised memory; the
/// model fills it with this byte so a host that reads it sees nonsense).
pub(crate) const UNINITIALISED_BYTE: u8 = 0xa5;

const _: () = assert!(VIRTIO_BALLOON_ARRAY_PFNS_MAX * 4 <= (STATS_ADDR - PFNS_ADDR) as usize);

// The driver's traced calls: names hashed at compile time, integer words hashed, text built
// only when the trace keeps events.
const PROBE: CallName = CallName::new("virtballoon_probe");
const FILL: CallName = CallName::new("fill_balloon");
const LEAK: CallName = CallName::new("leak_balloon");
const TELL_HOST: CallName = CallName::new("tell_host");
const ADD_OUTBUF: CallName = CallName::new("virtqueue_add_outbuf");
const OUT_OF_PUFF: CallName = CallName::new("out_of_puff");
const MIGRATEPAGE: CallName = CallName::new("virtballoon_migratepage");
const REMOVE: CallName = CallName::new("virtballoon_remove");
const FREEZE: CallName = CallName::new("virtballoon_freeze");
const RESTORE: CallName = CallName::new("virtballoon_restore");

/// A traced call's result word: 0 for success, the errno's number otherwise.
fn errno_word(error: Option<&Errno>) -> u64 {
    error.map_or(0, |err| u64::from(err.number().unsigned_abs()))
}

/// The lock class of `vb->balloon_lock`.
pub const BALLOON_LOCK_CLASS: &str = "&vb->balloon_lock";

/// The wait queues and flags the virtqueue callbacks reach.
#[derive(Debug)]
pub struct Shared {
    /// `vb->acked`.
    pub acked: WaitQueue,
    /// `vb->config_change`.
    pub config_change: WaitQueue,
    /// `vb->need_stats_update`.
    pub need_stats_update: AtomicBool,
    /// `kthread_should_stop()`.
    pub should_stop: AtomicBool,
    /// `freezing(current)`.
    pub freezing: AtomicBool,
    /// `frozen(current)`: the thread is parked in the refrigerator.
    pub frozen: AtomicBool,
    /// Where the PM core waits for the thread to freeze (`freeze_kernel_threads()`).
    pub refrigerator: WaitQueue,
}

/// What one fill_balloon() round did, for the caller that drives the thread by hand (the
/// op-level subject's convergence check). The 4.4 function returns nothing; later kernels
/// return the pages allocated.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FillRound {
    /// PFNs told to the host this round.
    pub pfns: usize,
    /// Whether an allocation failed ("Out of puff!").
    pub out_of_puff: bool,
}

/// What one pass of the balloon thread did ([`VirtioBalloon::balloon_thread_step`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ThreadStep {
    /// `towards_target()` when the pass began.
    pub diff: i64,
    /// The fill round, when the pass inflated.
    pub fill: FillRound,
    /// Balloon pages (4 KiB units) deflated.
    pub leaked: u32,
}

#[derive(Debug, Clone)]
struct Vqs {
    inflate: Arc<VirtQueue>,
    deflate: Arc<VirtQueue>,
    stats: Option<Arc<VirtQueue>>,
}

/// `struct virtio_balloon`.
pub struct VirtioBalloon {
    /// `vb->vdev`.
    pub vdev: Arc<VirtioDevice>,
    /// The guest's page allocator.
    pub pages: Arc<PageAllocator>,
    /// Callback-reachable state.
    pub shared: Arc<Shared>,
    /// `vb->num_pages`: balloon pages (4 KiB units) told to the host. A plain `unsigned int`
    /// written under balloon_lock and read without it by `towards_target`,
    /// `update_balloon_size` and remove_common's loop, as in the seed: the lockset detector
    /// judges each access.
    num_pages: Guarded<u32>,
    /// The same word as the seed's unlocked readers see it when their race is annotated
    /// (`data_race()`): a relaxed atomic, the standard model of a benign racy load, which every
    /// write of `num_pages` also stores.
    num_pages_racy: AtomicU32,
    /// `vb->vb_dev_info`.
    pub vb_dev_info: BalloonDevInfo,
    /// `vb->balloon_lock` ("Synchronize access/update to this struct virtio_balloon
    /// elements"): a lock with no payload; what it guards is guarded by convention.
    pub balloon_lock: Mutex<()>,
    /// `vb->num_pfns`, guarded by balloon_lock.
    num_pfns: Guarded<usize>,
    /// `vb->pfns`, guarded by balloon_lock.
    pfns: Guarded<[u32; VIRTIO_BALLOON_ARRAY_PFNS_MAX]>,
    vqs: FacadeMutex<Option<Vqs>>,
    nb: FacadeMutex<Option<NotifierId>>,
    /// The balloon's shrinker, in the shrinker era (`oom-shrinker` without
    /// `deflate-on-oom-handler`).
    shrinker: FacadeMutex<Option<sim_core::mm::reclaim::ShrinkerId>>,
    /// The fixes in force.
    pub fixes: Fixes,
    /// The `oom_pages` module parameter.
    pub oom_pages: u32,
    /// `VIRTIO_BALLOON_PAGES_PER_PAGE`.
    pub pages_per_page: u32,
    /// Whether the seed's unlocked reads of `num_pages` are judged by the lockset detector
    /// (they race with leak_balloon() in the OOM notifier and with freeze; see
    /// [`VirtioBalloon::num_pages_unlocked`]) or annotated as benign, like `data_race()`.
    judge_benign_races: bool,
}

impl std::fmt::Debug for VirtioBalloon {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VirtioBalloon")
            .field("num_pages", &self.num_pages)
            .field("fixes", &self.fixes)
            .finish_non_exhaustive()
    }
}

fn swap_if_big(endian: Endian, value: u32) -> u32 {
    match endian {
        Endian::Little => value,
        Endian::Big => value.swap_bytes(),
    }
}

impl VirtioBalloon {
    /// Mirrors virtballoon_probe(): `EINVAL` without config access, `ENOMEM` when the kmalloc
    /// (fault site `slab:virtio_balloon`) or `kthread_run` (`call:kthread_run`) fails, and
    /// init_vqs' error; each failure unwinds what was set up, in the seed's order.
    pub fn probe(
        cx: &Cx,
        vdev: Arc<VirtioDevice>,
        pages: Arc<PageAllocator>,
        fixes: Fixes,
        oom_pages: u32,
        judge_benign_races: bool,
    ) -> Result<Arc<VirtioBalloon>, Errno> {
        let features = vdev.features();
        cx.call_begin(&PROBE, [features], || format!("features {features:#x}"));
        let result = Self::probe_inner(cx, vdev, pages, fixes, oom_pages, judge_benign_races);
        cx.call_end(&PROBE, [errno_word(result.as_ref().err())], || match &result {
            Ok(_) => "0".to_string(),
            Err(Errno::EINVAL) => "-EINVAL".to_string(),
            Err(Errno::ENOMEM) => "-ENOMEM".to_string(),
            Err(err) => format!("{err}"),
        });
        result
    }

    /// virtballoon_probe() itself, between its trace events.
    fn probe_inner(
        cx: &Cx,
        vdev: Arc<VirtioDevice>,
        pages: Arc<PageAllocator>,
        fixes: Fixes,
        oom_pages: u32,
        judge_benign_races: bool,
    ) -> Result<Arc<VirtioBalloon>, Errno> {
        if !vdev.config_access() {
            cx.note("virtballoon_probe failure: config access disabled");
            return Err(Errno::EINVAL);
        }
        cx.might_sleep("kmalloc");
        if cx.sim().should_fail(cx, &FaultSite::slab("virtio_balloon"), 2048) {
            return Err(Errno::ENOMEM);
        }
        let page_size = pages.page_size();
        let vb = Arc::new(VirtioBalloon {
            vdev: vdev.clone(),
            pages: pages.clone(),
            shared: Arc::new(Shared {
                acked: WaitQueue::new("vb->acked"),
                config_change: WaitQueue::new("vb->config_change"),
                need_stats_update: AtomicBool::new(false),
                should_stop: AtomicBool::new(false),
                freezing: AtomicBool::new(false),
                frozen: AtomicBool::new(false),
                refrigerator: WaitQueue::new("freezer"),
            }),
            num_pages: Guarded::undocumented("vb->num_pages", 0),
            num_pages_racy: AtomicU32::new(0),
            vb_dev_info: BalloonDevInfo::new(),
            balloon_lock: Mutex::new(BALLOON_LOCK_CLASS, ()),
            num_pfns: Guarded::new("vb->num_pfns", BALLOON_LOCK_CLASS, 0),
            pfns: Guarded::new("vb->pfns", BALLOON_LOCK_CLASS, [0; VIRTIO_BALLOON_ARRAY_PFNS_MAX]),
            vqs: FacadeMutex::new(None),
            nb: FacadeMutex::new(None),
            shrinker: FacadeMutex::new(None),
            fixes,
            oom_pages,
            pages_per_page: (page_size >> VIRTIO_BALLOON_PFN_SHIFT) as u32,
            judge_benign_races,
        });
        // kmalloc does not zero: vb->stats starts as whatever was there.
        let _ =
            vdev.mem.write(STATS_ADDR, &[UNINITIALISED_BYTE; VIRTIO_BALLOON_S_NR * VIRTIO_BALLOON_STAT_SIZE]);
        vb.init_vqs(cx)?;
        VirtioBalloon::register_deflate_on_oom(&vb, cx);
        // virtio_device_ready(), and the driver's config_changed hook.
        let changed = vb.shared.clone();
        vdev.set_config_changed(Some(std::sync::Arc::new(move |_cx: &Cx| changed.config_change.wake_up())));
        if cx.sim().should_fail(cx, &FaultSite::call("kthread_run"), 0) {
            // out_del_vqs: unregister, then (falling through out_oom_notify) del_vqs, kfree.
            vb.unregister(cx);
            vdev.set_config_changed(None);
            vdev.del_vqs();
            *vb.vqs.lock() = None;
            return Err(Errno::ENOMEM);
        }
        Ok(vb)
    }

    fn unregister(&self, cx: &Cx) {
        if let Some(id) = self.nb.lock().take() {
            let _ = self.pages.unregister_oom_notifier(cx, id);
        }
        if let Some(id) = self.shrinker.lock().take() {
            let _ = cx.sim().unregister_shrinker(id);
        }
    }

    /// Whether DEFLATE_ON_OOM deflates from a shrinker (4.19 to 5.6: `oom-shrinker` on,
    /// `deflate-on-oom-handler` off) rather than from the OOM notifier chain.
    fn deflates_from_shrinker(&self) -> bool {
        self.fixes.on(crate::fixes::OOM_SHRINKER) && !self.fixes.on(crate::fixes::DEFLATE_ON_OOM_HANDLER)
    }

    /// probe's hook for deflation under memory pressure: register_oom_notifier() as 4.4 (and
    /// 5.7 on) do, or, in the shrinker era, virtio_balloon_register_shrinker() (which 4.19
    /// does only with DEFLATE_ON_OOM; the notifier itself returns early without it).
    /// (An associated function taking the `Arc`, not a method: under loom the facade's `Arc` is
    /// not a receiver type.)
    fn register_deflate_on_oom(this: &Arc<Self>, cx: &Cx) {
        if this.deflates_from_shrinker() {
            if this.vdev.has_feature(VIRTIO_BALLOON_F_DEFLATE_ON_OOM) {
                let vb = this.clone();
                let scan = std::sync::Arc::new(move |cx: &Cx, sc: &sim_core::mm::reclaim::ShrinkControl| {
                    vb.shrinker_scan(cx, sc.nr_to_scan)
                });
                *this.shrinker.lock() = Some(cx.sim().register_shrinker("virtio_balloon", scan));
            }
            return;
        }
        let notifier = this.clone();
        let id = this.pages.register_oom_notifier(
            cx,
            "virtballoon_oom_notify",
            VIRTBALLOON_OOM_NOTIFY_PRIORITY,
            std::sync::Arc::new(move |cx: &Cx| notifier.oom_notify(cx)),
        );
        *this.nb.lock() = Some(id);
    }

    /// Mirrors virtio_balloon_shrinker_scan() with shrink_balloon_pages() (4.19 to 5.6, with
    /// the later repair of its freed-page arithmetic): leak_balloon() until `nr_to_scan` guest
    /// pages are freed or the balloon is empty, then update_balloon_size(). Runs in the
    /// allocating task's direct reclaim, whoever that is: the balloon thread's own
    /// fill_balloon() included, which is the busy no-op da10329cb057 removed. Returns guest
    /// pages freed.
    pub fn shrinker_scan(&self, cx: &Cx, nr_to_scan: u64) -> u64 {
        let to_free = nr_to_scan * u64::from(self.pages_per_page);
        let mut freed = 0u64;
        while self.num_pages_unlocked(cx) != 0 && freed < to_free {
            let round = self.leak_balloon(cx, (to_free - freed) as usize);
            if round == 0 {
                break;
            }
            freed += u64::from(round);
        }
        self.update_balloon_size(cx);
        if freed > 0 {
            cx.sim().mark("shrinker-deflate");
        }
        freed / u64::from(self.pages_per_page)
    }

    /// `vb->num_pages`, read in context `cx`: judged by the lockset detector unless `cx` is an
    /// observer (checkers read it through one).
    #[track_caller]
    pub fn num_pages(&self, cx: &Cx) -> u32 {
        self.num_pages.get(cx)
    }

    /// The seed's reads of `vb->num_pages` without balloon_lock (towards_target(),
    /// update_balloon_size(), remove_common()'s loop). They race with leak_balloon() run by the
    /// OOM notifier in another task, and with freeze: a real data race (KCSAN would report
    /// it), benign because a word-sized stale count only costs the thread one more round, and
    /// the next config poll corrects it. Judged only with `judge_benign_races`.
    #[track_caller]
    fn num_pages_unlocked(&self, cx: &Cx) -> u32 {
        if self.judge_benign_races {
            self.num_pages.get(cx)
        } else {
            self.num_pages_racy.load(Ordering::Relaxed)
        }
    }

    /// `vb->num_pages = f(vb->num_pages)`, a plain store under balloon_lock (judged).
    #[track_caller]
    fn update_num_pages(&self, cx: &Cx, f: impl FnOnce(u32) -> u32) {
        let value = self.num_pages.write(cx, |n| {
            *n = f(*n);
            *n
        });
        self.num_pages_racy.store(value, Ordering::Relaxed);
    }

    /// Whether the queues exist (false between freeze and restore, or after remove).
    pub fn has_vqs(&self) -> bool {
        self.vqs.lock().as_ref().is_some_and(|vqs| !vqs.inflate.is_deleted())
    }

    /// `vb->inflate_vq` and friends: set by init_vqs(), never cleared, so after del_vqs() they
    /// are stale pointers, as in the seed. `None` only before the first init_vqs().
    fn vqs(&self) -> Option<Vqs> {
        self.vqs.lock().clone()
    }

    /// A use of queue `vq` through the driver's pointer: after del_vqs() the queue's memory is
    /// freed, and the use is a reported use after free (the model then skips it; the kernel
    /// would scribble on freed memory and, in tell_host, wait for ever).
    fn vq_live(&self, cx: &Cx, vq: &VirtQueue, what: &str) -> bool {
        if !vq.is_deleted() {
            return true;
        }
        cx.sim().report(
            Some(cx),
            Violation::new(
                ViolationKind::UseAfterFree,
                format!("{what} uses vb->{}_vq after del_vqs() freed it", vq.name),
            ),
        );
        false
    }

    /// Mirrors page_to_balloon_pfn().
    pub fn page_to_balloon_pfn(&self, pfn: Pfn) -> u32 {
        (pfn * u64::from(self.pages_per_page)) as u32
    }

    /// Mirrors balloon_pfn_to_page(): `None` where the kernel would BUG().
    pub fn balloon_pfn_to_page(&self, pfn: u32) -> Option<Pfn> {
        if !pfn.is_multiple_of(self.pages_per_page) {
            return None;
        }
        Some(u64::from(pfn / self.pages_per_page))
    }

    /// Mirrors set_page_pfns(): the page's balloon pfns at `pfns[at..]`. Writing past the
    /// array is the kernel's memory corruption: reported, and the write dropped.
    fn set_page_pfns(&self, cx: &Cx, at: usize, page: Pfn) {
        let first = self.page_to_balloon_pfn(page);
        let ppp = self.pages_per_page as usize;
        let overrun = self.pfns.write(cx, |pfns| {
            let mut overrun = None;
            for i in 0..ppp {
                match pfns.get_mut(at + i) {
                    Some(slot) => *slot = first + i as u32,
                    None => overrun = overrun.or(Some(at + i)),
                }
            }
            overrun
        });
        if let Some(index) = overrun {
            cx.sim().report(
                Some(cx),
                Violation::new(
                    ViolationKind::finding("memory-corruption"),
                    format!("set_page_pfns writes vb->pfns[{index}] past its end"),
                ),
            );
        }
    }

    /// Mirrors balloon_ack(): the inflate/deflate callback.
    fn balloon_ack(shared: &Shared) {
        shared.acked.wake_up();
    }

    /// Mirrors tell_host(): one out-buffer of `pfns[..num_pfns]`, a kick, and a wait for the
    /// host to use it.
    fn tell_host(&self, cx: &Cx, vq: &VirtQueue) {
        if !self.vq_live(cx, vq, "tell_host") {
            return;
        }
        let mem = &self.vdev.mem;
        // The seed sends CPU-order u32s; the fix sends __virtio32.
        let endian = if self.fixes.on(crate::fixes::PFN_FORMAT_VIRTIO1) {
            self.vdev.virtio_endian()
        } else {
            self.vdev.guest_endian()
        };
        // sg_init_one(&sg, vb->pfns, sizeof(vb->pfns[0]) * vb->num_pfns): the buffer is vb->pfns
        // itself, which the model keeps apart from the shared bytes; the copy stands for the
        // device reading it.
        let num_pfns = self.num_pfns.get(cx);
        self.pfns.read(cx, |pfns| {
            for (i, &pfn) in pfns[..num_pfns.min(VIRTIO_BALLOON_ARRAY_PFNS_MAX)].iter().enumerate() {
                mem.write_u32(PFNS_ADDR + 4 * i as u64, pfn, endian);
            }
        });
        cx.call_begin(&TELL_HOST, [u64::from(vq.index), num_pfns as u64], || {
            format!("{}: {} pfns", vq.name, num_pfns)
        });
        // A device that misbehaves may break the queue (virtio_break_device): fault site
        // `virtio:broken_queue`.
        if cx.sim().should_fail(cx, &FaultSite::call("virtio:broken_queue"), 0) {
            vq.mark_broken();
        }
        // "We should always be able to add one buffer to an empty queue": the seed ignores the
        // error, and then waits for an ack that cannot come.
        if let Err(err) = vq.add_outbuf(mem, &[(PFNS_ADDR, 4 * num_pfns as u32)], 1) {
            cx.call_begin(&ADD_OUTBUF, [num_pfns as u64], || format!("{num_pfns} pfns"));
            cx.call_end(&ADD_OUTBUF, [errno_word(Some(&err))], || format!("{err}"));
        }
        if vq.kick_prepare(mem) {
            self.vdev.notify(cx, usize::from(vq.index));
        }
        self.wait_for_ack(cx, vq);
        cx.call_end(&TELL_HOST, [], String::new);
    }

    fn wait_for_ack(&self, cx: &Cx, vq: &VirtQueue) {
        let mem = &self.vdev.mem;
        if !self.vdev_is_threaded() && vq.get_buf(mem).is_none() {
            // Single-threaded: nobody else can ack, so the kernel would hang here for ever.
            cx.sim().report(
                Some(cx),
                Violation::new(
                    ViolationKind::Hang,
                    format!("tell_host on {} waits for an ack that never comes", vq.name),
                ),
            );
            return;
        } else if !self.vdev_is_threaded() {
            return;
        }
        self.shared.acked.wait_event(cx, || vq.get_buf(mem).is_some());
    }

    fn vdev_is_threaded(&self) -> bool {
        !self.vdev.is_synchronous()
    }

    /// Mirrors fill_balloon(): at most one array of pages a round; "out of puff" sleeps 200 ms.
    /// The seed allocates under balloon_lock; with `oom-deadlock` it allocates first and locks
    /// only to enqueue.
    pub fn fill_balloon(&self, cx: &Cx, num: usize) -> FillRound {
        let num = num.min(VIRTIO_BALLOON_ARRAY_PFNS_MAX);
        cx.call_begin(&FILL, [num as u64], || format!("{num}"));
        let round = if self.fixes.on(crate::fixes::OOM_DEADLOCK) {
            self.fill_balloon_unlocked_alloc(cx, num)
        } else {
            self.fill_balloon_locked_alloc(cx, num)
        };
        // The trace's note, not the seed's code: not judged.
        let num_pages = self.num_pages_racy.load(Ordering::Relaxed);
        cx.call_end(&FILL, [u64::from(num_pages)], || format!("num_pages {num_pages}"));
        round
    }

    /// fill_balloon() as the seed has it: allocate, and sleep, with balloon_lock held.
    fn fill_balloon_locked_alloc(&self, cx: &Cx, num: usize) -> FillRound {
        let ppp = self.pages_per_page as usize;
        let mut out_of_puff = false;
        let guard = self.balloon_lock.lock(cx);
        self.num_pfns.set(cx, 0);
        while self.num_pfns.get(cx) < num {
            let Some(page) = self.vb_dev_info.balloon_page_enqueue(cx, &self.pages) else {
                self.out_of_puff(cx);
                out_of_puff = true;
                break;
            };
            self.set_page_pfns(cx, self.num_pfns.get(cx), page);
            self.account_inflated(cx, page);
            self.num_pfns.write(cx, |n| *n += ppp);
        }
        let pfns = self.finish_fill(cx);
        drop(guard);
        FillRound { pfns, out_of_puff }
    }

    /// fill_balloon() after "virtio_balloon: fix deadlock on OOM": allocate first, then take
    /// balloon_lock to enqueue (and, without `fill-pfns-index`, write each page's PFNs one slot
    /// too far, as the regression did).
    fn fill_balloon_unlocked_alloc(&self, cx: &Cx, num: usize) -> FillRound {
        let ppp = self.pages_per_page as usize;
        // LIST_HEAD(pages): the allocated pages wait on a local list, linked through page->lru.
        let mut list = PageListHeads::new("fill_balloon pages");
        let head = list.add_head();
        let (mut allocated, mut out_of_puff) = (0, false);
        while allocated * ppp < num {
            match BalloonDevInfo::balloon_page_alloc(cx, &self.pages) {
                Ok(page) => {
                    BalloonDevInfo::balloon_page_push(cx, &self.pages, &mut list, head, page);
                    allocated += 1;
                }
                Err(_) => {
                    self.out_of_puff(cx);
                    out_of_puff = true;
                    break;
                }
            }
        }
        let double_del = self.fixes.on(crate::fixes::LIST_INTERFACES)
            && !self.fixes.on(crate::fixes::AVOID_DUPLICATE_REMOVAL);
        let guard = self.balloon_lock.lock(cx);
        self.num_pfns.set(cx, 0);
        while let Some(page) = BalloonDevInfo::balloon_page_pop(cx, &self.pages, &mut list, head) {
            if double_del {
                self.vb_dev_info.balloon_page_enqueue_one(cx, &self.pages, &mut list, page);
            } else {
                self.vb_dev_info.balloon_page_enqueue_page(cx, &self.pages, page);
            }
            if self.fixes.on(crate::fixes::FILL_PFNS_INDEX) {
                self.set_page_pfns(cx, self.num_pfns.get(cx), page);
            } else {
                // The regression: advance first, then write one slot too far.
                self.num_pfns.write(cx, |n| *n += ppp);
                self.set_page_pfns(cx, self.num_pfns.get(cx), page);
                self.num_pfns.write(cx, |n| *n -= ppp);
            }
            self.account_inflated(cx, page);
            self.num_pfns.write(cx, |n| *n += ppp);
        }
        let pfns = self.finish_fill(cx);
        drop(guard);
        FillRound { pfns, out_of_puff }
    }

    /// fill_balloon()'s per-page accounting: `num_pages` grows, and without DEFLATE_ON_OOM the
    /// page leaves its zone's managed count (adjust_managed_page_count(page, -1)).
    fn account_inflated(&self, cx: &Cx, page: Pfn) {
        self.update_num_pages(cx, |n| n + self.pages_per_page);
        if !self.vdev.has_feature(VIRTIO_BALLOON_F_DEFLATE_ON_OOM) {
            let _ = self.pages.adjust_managed_page_count(cx, page, -1);
        }
    }

    fn out_of_puff(&self, cx: &Cx) {
        let ppp = self.pages_per_page;
        cx.call_begin(&OUT_OF_PUFF, [u64::from(ppp)], || format!("Out of puff! Can't get {ppp} pages"));
        cx.sim().mark("out-of-puff");
        cx.sleep_ns("msleep", OUT_OF_PUFF_SLEEP_NS);
        cx.call_end(&OUT_OF_PUFF, [], String::new);
        // A real sleep gives the CPU away: let the threaded checkers run someone else.
        if self.vdev_is_threaded() {
            sim_core::sync::thread::yield_now();
        }
    }

    /// fill_balloon()'s "Did we get any?": tells the host. Returns `num_pfns`.
    fn finish_fill(&self, cx: &Cx) -> usize {
        let num_pfns = self.num_pfns.get(cx);
        if num_pfns != 0 {
            cx.sim().mark("fill");
            if let Some(vqs) = self.vqs() {
                // Always there after probe: init_vqs() set it.
                self.tell_host(cx, &vqs.inflate);
            }
        }
        num_pfns
    }

    /// Mirrors release_pages_balloon(): each page's managed count restored (without
    /// DEFLATE_ON_OOM) and the balloon's reference dropped (`put_page`), which frees it.
    fn release_pages_balloon(&self, cx: &Cx) {
        let deflate_on_oom = self.vdev.has_feature(VIRTIO_BALLOON_F_DEFLATE_ON_OOM);
        let num_pfns = self.num_pfns.get(cx);
        let mut i = 0;
        while i < num_pfns {
            let pfn = self.pfns.read(cx, |pfns| pfns.get(i).copied().unwrap_or(0));
            i += self.pages_per_page as usize;
            let Some(page) = self.balloon_pfn_to_page(pfn) else {
                cx.sim().report(
                    Some(cx),
                    Violation::new(ViolationKind::Bug, format!("balloon_pfn_to_page({pfn:#x})")),
                );
                continue;
            };
            if !deflate_on_oom {
                let _ = self.pages.adjust_managed_page_count(cx, page, 1);
            }
            let _ = self.pages.put_page(cx, page);
        }
    }

    /// Mirrors leak_balloon(): at most one array a round, told to the host before the pages
    /// are released (the MUST_TELL_HOST order). Returns balloon pages freed.
    pub fn leak_balloon(&self, cx: &Cx, num: usize) -> u32 {
        let ppp = self.pages_per_page as usize;
        let num = num.min(VIRTIO_BALLOON_ARRAY_PFNS_MAX);
        cx.call_begin(&LEAK, [num as u64], || format!("{num}"));
        let guard = self.balloon_lock.lock(cx);
        // "balloon: check the number of available pages in leak balloon".
        let num = if self.fixes.on(crate::fixes::LEAK_AVAILABLE_PAGES) {
            num.min(self.num_pages(cx) as usize)
        } else {
            num
        };
        self.num_pfns.set(cx, 0);
        while self.num_pfns.get(cx) < num {
            let Some(page) =
                self.vb_dev_info.balloon_page_dequeue(cx, &self.pages, self.dequeue_walk_locked())
            else {
                break;
            };
            self.set_page_pfns(cx, self.num_pfns.get(cx), page);
            self.update_num_pages(cx, |n| n.wrapping_sub(self.pages_per_page));
            self.num_pfns.write(cx, |n| *n += ppp);
        }
        let freed = self.num_pfns.get(cx) as u32;
        if freed != 0 {
            cx.sim().mark("leak");
            if let Some(vqs) = self.vqs() {
                // Always there after probe: init_vqs() set it.
                self.tell_host(cx, &vqs.deflate);
            }
        }
        self.release_pages_balloon(cx);
        drop(guard);
        cx.call_end(&LEAK, [u64::from(freed)], || format!("{freed}"));
        freed
    }

    /// Mirrors update_balloon_stats(): the six tags, in `cpu_to_virtio` order, into `vb->stats`.
    /// The model has no swap and no page faults, so those four counters are zero.
    pub fn update_balloon_stats(&self, cx: &Cx) {
        let page_size = self.pages.page_size();
        let values = [
            (VIRTIO_BALLOON_S_SWAP_IN, 0),
            (VIRTIO_BALLOON_S_SWAP_OUT, 0),
            (VIRTIO_BALLOON_S_MAJFLT, 0),
            (VIRTIO_BALLOON_S_MINFLT, 0),
            (VIRTIO_BALLOON_S_MEMFREE, self.pages.free_pages(cx) * page_size),
            (VIRTIO_BALLOON_S_MEMTOT, self.pages.totalram_pages(cx).max(0) as u64 * page_size),
        ];
        let endian = self.vdev.virtio_endian();
        for (idx, (tag, val)) in values.into_iter().enumerate() {
            let at = STATS_ADDR + (idx * VIRTIO_BALLOON_STAT_SIZE) as u64;
            self.vdev.mem.write_u16(at, tag, endian);
            self.vdev.mem.write_u64(at + 2, val, endian);
        }
    }

    /// Mirrors stats_request(): the stats queue callback.
    fn stats_request(shared: &Shared) {
        shared.need_stats_update.store(true, Ordering::SeqCst);
        shared.config_change.wake_up();
    }

    /// Mirrors stats_handle_request().
    pub fn stats_handle_request(&self, cx: &Cx) {
        self.shared.need_stats_update.store(false, Ordering::SeqCst);
        self.update_balloon_stats(cx);
        // Without STATS_VQ no stats request can come (vb->stats_vq is NULL).
        let Some(vq) = self.vqs().and_then(|v| v.stats) else {
            return;
        };
        if !self.vq_live(cx, &vq, "stats_handle_request") {
            return;
        }
        let mem = &self.vdev.mem;
        if vq.get_buf(mem).is_none() {
            return;
        }
        let len = (VIRTIO_BALLOON_S_NR * VIRTIO_BALLOON_STAT_SIZE) as u32;
        let _ = vq.add_outbuf(mem, &[(STATS_ADDR, len)], 1);
        cx.sim().mark("stats-round");
        if vq.kick_prepare(mem) {
            self.vdev.notify(cx, STATS_VQ);
        }
    }

    /// Mirrors towards_target(): the host's target (legacy config is little-endian) less
    /// `num_pages`; with `align-target` the target is rounded up to whole guest pages.
    pub fn towards_target(&self, cx: &Cx) -> i64 {
        let mut num_pages = self.vdev.cread_u32(cx, CONFIG_NUM_PAGES);
        if !self.vdev.has_feature(VIRTIO_F_VERSION_1) {
            // le32_to_cpu on the guest.
            num_pages = swap_if_big(self.vdev.guest_endian(), num_pages);
        }
        let mut target = i64::from(num_pages);
        if self.fixes.on(crate::fixes::ALIGN_TARGET) {
            let ppp = i64::from(self.pages_per_page);
            target = (target + ppp - 1) / ppp * ppp;
        }
        target - i64::from(self.num_pages_unlocked(cx))
    }

    /// Mirrors update_balloon_size(): `actual` is `num_pages`, little-endian for legacy.
    pub fn update_balloon_size(&self, cx: &Cx) {
        let mut actual = self.num_pages_unlocked(cx);
        if !self.vdev.has_feature(VIRTIO_F_VERSION_1) {
            actual = swap_if_big(self.vdev.guest_endian(), actual);
        }
        self.vdev.cwrite_u32(cx, CONFIG_ACTUAL, actual);
    }

    /// Mirrors virtballoon_oom_notify(): without DEFLATE_ON_OOM nothing; else leak `oom_pages`
    /// and report them freed.
    pub fn oom_notify(&self, cx: &Cx) -> u64 {
        if !self.vdev.has_feature(VIRTIO_BALLOON_F_DEFLATE_ON_OOM) {
            return 0;
        }
        let freed = self.leak_balloon(cx, self.oom_pages as usize);
        self.update_balloon_size(cx);
        if freed > 0 {
            cx.sim().mark("oom-deflate");
        }
        u64::from(freed)
    }

    /// The balloon thread's wake-up condition (the inner `for (;;)` of balloon()).
    pub fn thread_has_work(&self, cx: &Cx) -> bool {
        self.towards_target(cx) != 0
            || self.shared.need_stats_update.load(Ordering::SeqCst)
            || self.shared.should_stop.load(Ordering::SeqCst)
            || self.shared.freezing.load(Ordering::SeqCst)
    }

    /// The balloon thread's condition tested again after a wake-up. Seed 004 (`wait-woken`)
    /// waits with wait_woken(), so the condition runs in TASK_RUNNING; before it, 3.x's
    /// `wait_event_interruptible()` tests the condition after prepare_to_wait() has set
    /// TASK_INTERRUPTIBLE, and towards_target()'s config read may sleep: the kernel warns "do
    /// not call blocking ops when !TASK_RUNNING".
    pub fn thread_recheck(&self, cx: &Cx) -> bool {
        if self.fixes.on(crate::fixes::WAIT_WOKEN) {
            return self.thread_has_work(cx);
        }
        cx.set_current_state(false);
        let has_work = self.thread_has_work(cx);
        cx.set_current_state(true);
        has_work
    }

    /// One pass of balloon()'s loop body after the wait: stats, fill or leak, size update.
    /// Returns what it did.
    pub fn balloon_thread_step(&self, cx: &Cx) -> ThreadStep {
        let mut step = ThreadStep { diff: self.towards_target(cx), ..ThreadStep::default() };
        if self.shared.need_stats_update.load(Ordering::SeqCst) {
            self.stats_handle_request(cx);
        }
        if step.diff > 0 {
            step.fill = self.fill_balloon(cx, step.diff as usize);
        } else if step.diff < 0 {
            step.leaked = self.leak_balloon(cx, step.diff.unsigned_abs() as usize);
        }
        self.update_balloon_size(cx);
        step
    }

    /// Mirrors balloon(): the kthread, for the threaded checkers. Waits on `config_change`.
    pub fn balloon_thread(&self, cx: &Cx) {
        while !self.shared.should_stop.load(Ordering::SeqCst) {
            // try_to_freeze(): parked while the PM core has it frozen.
            if self.shared.freezing.load(Ordering::SeqCst) {
                self.shared.frozen.store(true, Ordering::SeqCst);
                self.shared.refrigerator.wake_up();
                self.shared.config_change.wait_event(cx, || {
                    !self.shared.freezing.load(Ordering::SeqCst)
                        || self.shared.should_stop.load(Ordering::SeqCst)
                });
                self.shared.frozen.store(false, Ordering::SeqCst);
            }
            // The first test runs before the thread sleeps; each later one after a wake-up.
            let mut woken = false;
            self.shared.config_change.wait_event(cx, || {
                let has_work = if woken { self.thread_recheck(cx) } else { self.thread_has_work(cx) };
                woken = true;
                has_work
            });
            if self.shared.should_stop.load(Ordering::SeqCst) {
                break;
            }
            if self.shared.freezing.load(Ordering::SeqCst) {
                continue;
            }
            self.balloon_thread_step(cx);
        }
    }

    /// The PM core's freeze_kernel_threads() for the balloon thread: asks it to freeze and
    /// waits until it is parked (or has stopped), so virtballoon_freeze() runs with the thread
    /// frozen, as the seed assumes.
    pub fn freeze_thread(&self, cx: &Cx) {
        self.shared.freezing.store(true, Ordering::SeqCst);
        self.shared.config_change.wake_up();
        self.shared.refrigerator.wait_event(cx, || {
            self.shared.frozen.load(Ordering::SeqCst) || self.shared.should_stop.load(Ordering::SeqCst)
        });
    }

    /// The PM core's thaw_processes() for the balloon thread.
    pub fn thaw_thread(&self) {
        self.shared.freezing.store(false, Ordering::SeqCst);
        self.shared.config_change.wake_up();
    }

    /// Mirrors init_vqs(): two queues, or three with STATS_VQ, the stats one primed with a
    /// buffer (after filling it, with `stats-first-buffer`).
    pub fn init_vqs(&self, cx: &Cx) -> Result<(), Errno> {
        let stats = self.vdev.has_feature(VIRTIO_BALLOON_F_STATS_VQ);
        let mut callbacks: Vec<Callback> = Vec::new();
        for _ in 0..2 {
            let shared = self.shared.clone();
            callbacks.push(std::sync::Arc::new(move |_cx: &Cx| VirtioBalloon::balloon_ack(&shared)));
        }
        if stats {
            let shared = self.shared.clone();
            callbacks.push(std::sync::Arc::new(move |_cx: &Cx| VirtioBalloon::stats_request(&shared)));
        }
        let vqs = self.vdev.find_vqs(cx, callbacks, &["inflate", "deflate", "stats"])?;
        let mut vqs = vqs.into_iter();
        let (Some(inflate), Some(deflate)) = (vqs.next(), vqs.next()) else {
            return Err(Errno::ENOENT);
        };
        let stats_vq = vqs.next();
        *self.vqs.lock() = Some(Vqs { inflate, deflate, stats: stats_vq.clone() });
        if let Some(vq) = stats_vq {
            if self.fixes.on(crate::fixes::STATS_FIRST_BUFFER) {
                self.update_balloon_stats(cx);
            }
            let len = (VIRTIO_BALLOON_S_NR * VIRTIO_BALLOON_STAT_SIZE) as u32;
            // "it can't be broken yet!"
            if vq.add_outbuf(&self.vdev.mem, &[(STATS_ADDR, len)], 1).is_err() {
                cx.sim().report(
                    Some(cx),
                    Violation::new(ViolationKind::Bug, "init_vqs: BUG() priming the stats queue"),
                );
            }
            if vq.kick_prepare(&self.vdev.mem) {
                self.vdev.notify(cx, STATS_VQ);
            }
        }
        let _ = (INFLATE_VQ, DEFLATE_VQ);
        Ok(())
    }

    /// Mirrors virtballoon_migratepage(): gives up with `EAGAIN` when balloon_lock is taken;
    /// else inserts `newpage`, tells the host about it, deletes `page`, tells the host, frees it.
    pub fn migratepage(&self, cx: &Cx, newpage: Pfn, page: Pfn) -> Result<(), Errno> {
        let Some(guard) = self.balloon_lock.try_lock(cx) else {
            cx.sim().mark("migrate-again");
            return Err(Errno::EAGAIN);
        };
        cx.call_begin(&MIGRATEPAGE, [page, newpage], || format!("{page} -> {newpage}"));
        // get_page(newpage): the balloon's reference.
        let _ = self.pages.get_page(cx, newpage);
        {
            let _pages = self.vb_dev_info.pages_lock.lock_irqsave(cx);
            self.vb_dev_info.balloon_page_insert(cx, &self.pages, newpage);
            self.vb_dev_info.isolated_pages().write(cx, |n| *n = n.wrapping_sub(1));
        }
        if self.fixes.on(crate::fixes::MIGRATE_MANAGED_COUNT)
            && !self.vdev.has_feature(VIRTIO_BALLOON_F_DEFLATE_ON_OOM)
            && self.pages.zone_of(cx, page).ok() != self.pages.zone_of(cx, newpage).ok()
        {
            let _ = self.pages.adjust_managed_page_count(cx, page, 1);
            let _ = self.pages.adjust_managed_page_count(cx, newpage, -1);
        }
        let vqs = self.vqs();
        self.num_pfns.set(cx, self.pages_per_page as usize);
        self.set_page_pfns(cx, 0, newpage);
        // Always there after probe: init_vqs() set them.
        if let Some(vqs) = &vqs {
            self.tell_host(cx, &vqs.inflate);
        }
        // The old page is isolated (PG_private clear): balloon_page_delete leaves the lists
        // alone, so the seed calls it without pages_lock.
        self.vb_dev_info.balloon_page_delete(cx, &self.pages, page);
        self.num_pfns.set(cx, self.pages_per_page as usize);
        self.set_page_pfns(cx, 0, page);
        if let Some(vqs) = &vqs {
            self.tell_host(cx, &vqs.deflate);
        }
        drop(guard);
        // put_page(page): the balloon's reference; compaction still holds the isolation's.
        let _ = self.pages.put_page(cx, page);
        cx.sim().mark("migration");
        cx.call_end(&MIGRATEPAGE, [0], || "MIGRATEPAGE_SUCCESS".to_string());
        Ok(())
    }

    /// Mirrors remove_common(): deflate everything, update the size, reset, delete the queues.
    pub fn remove_common(&self, cx: &Cx) {
        let mut idle_rounds = 0;
        while self.num_pages_unlocked(cx) != 0 {
            if self.leak_balloon(cx, self.num_pages_unlocked(cx) as usize) == 0 {
                // Only isolated pages are left: compaction will put them back or migrate them.
                idle_rounds += 1;
                if !self.vdev_is_threaded() || idle_rounds > 10_000 {
                    cx.sim().report(
                        Some(cx),
                        Violation::new(
                            ViolationKind::Hang,
                            "remove_common: balloon pages left that leak_balloon cannot dequeue",
                        ),
                    );
                    break;
                }
                sim_core::sync::thread::yield_now();
            }
        }
        self.update_balloon_size(cx);
        self.vdev.reset();
        self.vdev.del_vqs();
    }

    /// Mirrors virtballoon_remove(): unregister the notifier, stop the thread (the caller joins
    /// a real one), remove_common.
    pub fn remove(&self, cx: &Cx) {
        cx.call_begin(&REMOVE, [], String::new);
        self.unregister(cx);
        self.shared.should_stop.store(true, Ordering::SeqCst);
        self.shared.config_change.wake_up();
        self.remove_common(cx);
        self.vdev.set_config_changed(None);
        cx.call_end(&REMOVE, [], String::new);
    }

    /// Mirrors virtballoon_freeze(): the thread is already frozen. Seed 004 (`s4-leak-fill`)
    /// deflates the balloon (remove_common); before it, 3.3's freeze only reset the device and
    /// deleted the queues, keeping the pages for restore to forget.
    pub fn freeze(&self, cx: &Cx) {
        cx.call_begin(&FREEZE, [], String::new);
        self.vdev.set_suspended(true);
        if self.fixes.on(crate::fixes::S4_LEAK_FILL) {
            self.remove_common(cx);
        } else {
            self.vdev.reset();
            self.vdev.del_vqs();
        }
        cx.call_end(&FREEZE, [0], || "0".to_string());
    }

    /// Whether balloon_page_dequeue() walks the list under `pages_lock` ("virtio_balloon: fix
    /// race between migration and ballooning"; 4.4 walks it without).
    fn dequeue_walk_locked(&self) -> bool {
        self.fixes.on(crate::fixes::DEQUEUE_WALK_LOCKED)
    }

    /// 3.3's restore-time "fudge" (e562966dbaf4): the pages given to the host are taken off the
    /// list, counted back into totalram and `num_pages` reset to 0, but never freed: the leak
    /// 4eb05d562ea1 fixed.
    fn forget_balloon_pages(&self, cx: &Cx) {
        let guard = self.balloon_lock.lock(cx);
        for _ in 0..self.num_pages.get(cx) / self.pages_per_page {
            let Some(page) =
                self.vb_dev_info.balloon_page_dequeue(cx, &self.pages, self.dequeue_walk_locked())
            else {
                break;
            };
            if !self.vdev.has_feature(VIRTIO_BALLOON_F_DEFLATE_ON_OOM) {
                let _ = self.pages.adjust_managed_page_count(cx, page, 1);
            }
        }
        self.update_num_pages(cx, |_| 0);
        drop(guard);
    }

    /// Mirrors virtballoon_restore(): queues again, then one fill towards the target.
    pub fn restore(&self, cx: &Cx) -> Result<(), Errno> {
        cx.call_begin(&RESTORE, [], String::new);
        let result = self.restore_inner(cx);
        cx.call_end(&RESTORE, [errno_word(result.as_ref().err())], || match result {
            Ok(()) => "0".to_string(),
            Err(err) => format!("{err}"),
        });
        result
    }

    /// virtballoon_restore() itself, between its trace events.
    fn restore_inner(&self, cx: &Cx) -> Result<(), Errno> {
        self.vdev.set_suspended(false);
        self.init_vqs(cx)?;
        if !self.fixes.on(crate::fixes::S4_LEAK_FILL) {
            self.forget_balloon_pages(cx);
            self.update_balloon_size(cx);
            return Ok(());
        }
        // fill_balloon takes a size_t: a negative diff would become huge (then 256).
        let diff = self.towards_target(cx);
        self.fill_balloon(cx, diff as u64 as usize);
        self.update_balloon_size(cx);
        Ok(())
    }

    /// Drops the OOM notifier's reference (for callers tearing down after a failed remove).
    pub fn notifier_registered(&self) -> bool {
        self.nb.lock().is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::{BalloonConfig, HOST_FEATURES_ALL};
    use crate::world::World;
    use sim_core::fault::{FaultAttr, FaultPlan};
    use sim_core::lockdep::ReportMode;
    use sim_core::mm::{Gfp, PAGE_SIZE_4K};
    use sim_core::{Sim, SimConfig};

    fn world(
        sim: &Sim,
        pages: u64,
        features: u64,
        endian: Endian,
        tweak: impl FnOnce(&mut BalloonConfig),
    ) -> World {
        let mut config = BalloonConfig::preset("fixed").expect("preset");
        config.memory_bytes = pages * PAGE_SIZE_4K;
        tweak(&mut config);
        World::new(&sim.cx("probe", 0), &config, PAGE_SIZE_4K, features, endian, true)
    }

    fn sim() -> Sim {
        Sim::new(SimConfig::new(3).lockdep(ReportMode::Collect))
    }

    #[test]
    fn probe_without_config_access_is_einval() {
        let sim = sim();
        let world = world(&sim, 64, HOST_FEATURES_ALL, Endian::Little, |c| c.config_access = false);
        assert_eq!(world.probe_result, Err(Errno::EINVAL));
        assert!(world.pages.oom_notifiers(&sim.cx("t", 0)).is_empty());
    }

    #[test]
    fn probe_unwinds_the_notifier_and_queues_when_kthread_run_fails() {
        let sim = sim();
        sim.set_faults(FaultPlan::with(FaultAttr::always().site("kthread_run")));
        let world = world(&sim, 64, HOST_FEATURES_ALL, Endian::Little, |_| {});
        assert_eq!(world.probe_result, Err(Errno::ENOMEM));
        assert!(world.pages.oom_notifiers(&sim.cx("t", 0)).is_empty());
    }

    #[test]
    fn init_vqs_makes_two_queues_without_stats_vq_and_three_with_it() {
        let sim = sim();
        let without =
            world(&sim, 64, HOST_FEATURES_ALL & !(1 << VIRTIO_BALLOON_F_STATS_VQ), Endian::Little, |_| {});
        let with = world(&sim, 64, HOST_FEATURES_ALL, Endian::Little, |_| {});
        assert!(without.vb.as_ref().expect("probe").vqs().expect("queues").stats.is_none());
        assert!(with.vb.as_ref().expect("probe").vqs().expect("queues").stats.is_some());
        assert_eq!(with.host.stats().1, 1, "the primed stats buffer reached the host");
    }

    #[test]
    fn a_big_endian_guest_reads_the_little_endian_target_legacy_or_modern() {
        for features in [HOST_FEATURES_ALL, HOST_FEATURES_ALL & !(1 << VIRTIO_F_VERSION_1)] {
            let sim = sim();
            let world = world(&sim, 64, features, Endian::Big, |_| {});
            let vb = world.vb.clone().expect("probe");
            world.host.set_num_pages(5);
            assert_eq!(vb.towards_target(&sim.observer_cx("t", 0)), 5, "features {features:#x}");
            vb.fill_balloon(&sim.cx("t", 0), 5);
            vb.update_balloon_size(&sim.cx("t", 0));
            assert_eq!(world.host.actual(), 5, "features {features:#x}");
        }
    }

    #[test]
    fn fill_takes_at_most_one_array_of_pfns_a_round() {
        let sim = sim();
        let world = world(&sim, 1024, HOST_FEATURES_ALL, Endian::Little, |_| {});
        let vb = world.vb.clone().expect("probe");
        vb.fill_balloon(&sim.cx("t", 0), 1000);
        assert_eq!(vb.num_pages(&sim.observer_cx("o", 0)) as usize, VIRTIO_BALLOON_ARRAY_PFNS_MAX);
        assert_eq!(world.host.held_count(), VIRTIO_BALLOON_ARRAY_PFNS_MAX);
    }

    #[test]
    fn out_of_puff_sleeps_two_hundred_virtual_milliseconds() {
        let sim = sim();
        let world = world(&sim, 8, HOST_FEATURES_ALL, Endian::Little, |_| {});
        let cx = sim.cx("t", 0);
        let mut taken = Vec::new();
        while let Ok(pfn) = world.pages.alloc_page(&cx, Gfp::GFP_ATOMIC, "t") {
            taken.push(pfn);
        }
        let vb = world.vb.clone().expect("probe");
        let before = sim.now_ns();
        let round = vb.fill_balloon(&cx, 4);
        assert_eq!(sim.now_ns() - before, OUT_OF_PUFF_SLEEP_NS);
        assert_eq!(vb.num_pages(&sim.observer_cx("o", 0)), 0);
        assert_eq!(round, FillRound { pfns: 0, out_of_puff: true });
        assert!(sim.marks().contains("out-of-puff"));
    }

    #[test]
    fn oom_notify_frees_nothing_without_deflate_on_oom_and_oom_pages_with_it() {
        let sim = sim();
        let cx = sim.cx("t", 0);
        let without = world(
            &sim,
            64,
            HOST_FEATURES_ALL & !(1 << VIRTIO_BALLOON_F_DEFLATE_ON_OOM),
            Endian::Little,
            |_| {},
        );
        let vb = without.vb.clone().expect("probe");
        vb.fill_balloon(&cx, 8);
        assert_eq!(vb.oom_notify(&cx), 0);
        let with = world(&sim, 64, HOST_FEATURES_ALL, Endian::Little, |c| c.oom_pages = 3);
        let vb = with.vb.clone().expect("probe");
        vb.fill_balloon(&cx, 8);
        assert_eq!(vb.oom_notify(&cx), 3);
        assert_eq!(vb.num_pages(&sim.observer_cx("o", 0)), 5);
        assert_eq!(with.host.actual(), 5);
    }

    #[test]
    fn migratepage_backs_off_with_eagain_while_balloon_lock_is_held() {
        let sim = sim();
        let cx = sim.cx("t", 0);
        let world = world(&sim, 64, HOST_FEATURES_ALL, Endian::Little, |_| {});
        let vb = world.vb.clone().expect("probe");
        vb.fill_balloon(&cx, 1);
        vb.update_balloon_size(&cx);
        let other = sim.cx("kcompactd", 1);
        let held = vb.balloon_lock.lock(&cx);
        let migrate = |cx: &Cx, new: Pfn, old: Pfn| vb.migratepage(cx, new, old);
        let again =
            crate::balloon_compaction::compact_one(&other, &vb.vb_dev_info, &world.pages, 0, 0, migrate);
        assert_eq!(again, crate::balloon_compaction::CompactResult::Again);
        drop(held);
        let migrate = |cx: &Cx, new: Pfn, old: Pfn| vb.migratepage(cx, new, old);
        let done =
            crate::balloon_compaction::compact_one(&other, &vb.vb_dev_info, &world.pages, 0, 0, migrate);
        let crate::balloon_compaction::CompactResult::Migrated(page, newpage) = done else {
            panic!("{done:?}")
        };
        assert!(world.host.holds(vb.page_to_balloon_pfn(newpage)));
        assert!(!world.host.holds(vb.page_to_balloon_pfn(page)));
        let observer = sim.observer_cx("o", 0);
        assert_eq!(world.pages.page_count(&observer, newpage), Ok(1), "only the balloon's reference");
        assert_eq!(world.pages.page_count(&observer, page), Ok(0), "the old page is free");
        let checked = world.check_invariants(&observer, &std::collections::BTreeSet::new());
        assert!(checked.is_ok(), "{checked:?} {:?}", sim.violations());
    }

    #[test]
    fn queue_sizes_are_validated_and_each_ring_is_sized_from_its_num() {
        for (size, expected) in
            [(0, Err(Errno::ENOENT)), (3, Err(Errno::ENOMEM)), (32768, Ok(())), (1, Ok(()))]
        {
            let sim = sim();
            let world = world(&sim, 64, HOST_FEATURES_ALL, Endian::Little, |c| c.queue_size = size);
            assert_eq!(world.probe_result, expected, "queue size {size}");
        }
        let sim = sim();
        let world = world(&sim, 64, HOST_FEATURES_ALL, Endian::Little, |c| c.queue_size = 1024);
        let vqs = world.vb.as_ref().expect("probe").vqs().expect("queues");
        let (a, b) = (vqs.inflate.layout(), vqs.deflate.layout());
        assert!(a.desc + a.size() <= b.desc, "the rings do not overlap: {a:?} {b:?}");
        assert!(b.desc + b.size() <= world.vdev.mem.len() as u64, "the ring fits the shared memory");
    }

    #[test]
    fn a_use_of_a_queue_after_del_vqs_is_a_reported_use_after_free() {
        let sim = sim();
        let cx = sim.cx("t", 0);
        // 3.3's freeze keeps the balloon: the OOM notifier then tells the host through a
        // deleted queue.
        let world = world(&sim, 64, HOST_FEATURES_ALL, Endian::Little, |c| {
            c.fixes.set(crate::fixes::S4_LEAK_FILL, false)
        });
        let vb = world.vb.clone().expect("probe");
        vb.fill_balloon(&cx, 4);
        vb.freeze(&sim.cx("pm", 0));
        assert!(!vb.has_vqs());
        assert!(sim.violations().is_empty(), "{:?}", sim.violations());
        vb.oom_notify(&sim.cx("oom", 1));
        let kinds: Vec<String> = sim.violations().iter().map(|v| v.kind.to_string()).collect();
        assert_eq!(kinds.first().map(String::as_str), Some("use-after-free"), "{kinds:?}");
    }

    #[test]
    fn a_broken_queue_leaves_tell_host_waiting_for_ever_and_a_lost_stats_interrupt_stops_the_stats() {
        let sim = sim();
        let cx = sim.cx("t", 0);
        let world = world(&sim, 64, HOST_FEATURES_ALL, Endian::Little, |_| {});
        let vb = world.vb.clone().expect("probe");
        sim.set_faults(FaultPlan::with(FaultAttr::always().site("virtio:lost_interrupt")));
        assert!(world.vdev.host_request_stats(&cx), "the host gave the buffer back");
        assert!(!vb.shared.need_stats_update.load(Ordering::SeqCst), "the interrupt was lost");
        assert!(!world.vdev.host_request_stats(&cx), "the host holds no buffer: stats stop for good");
        sim.set_faults(FaultPlan::with(FaultAttr::always().site("virtio:broken_queue")));
        vb.fill_balloon(&cx, 1);
        let kinds: Vec<String> = sim.violations().iter().map(|v| v.kind.to_string()).collect();
        assert_eq!(kinds, ["hang"], "the seed ignores virtqueue_add_outbuf's EIO and waits");
    }

    #[test]
    fn the_seeds_unlocked_num_pages_reads_are_a_lockset_race_when_judged() {
        for judge in [false, true] {
            let sim = sim();
            let world = world(&sim, 64, HOST_FEATURES_ALL, Endian::Little, |c| c.judge_benign_races = judge);
            let vb = world.vb.clone().expect("probe");
            let thread = sim.cx("vballoon", 0);
            vb.fill_balloon(&thread, 4);
            // The OOM notifier, in an allocating task, leaks under balloon_lock, then reads
            // num_pages without it in update_balloon_size(): no lock orders that read with the
            // thread's write. (ksim's detector keeps each task's latest access, so it names the
            // race when the other task's latest access is a write, as here.)
            assert_eq!(vb.oom_notify(&sim.cx("task", 1)), 4);
            let races: Vec<String> = sim
                .violations()
                .iter()
                .filter(|v| v.kind == ViolationKind::lockdep("lockset-race"))
                .map(|v| v.message.clone())
                .collect();
            if judge {
                assert!(
                    !races.is_empty() && races[0].contains("vb->num_pages"),
                    "{races:?} {:?} {:?}",
                    sim.violations(),
                    sim.lockdep().reports()
                );
            } else {
                assert!(races.is_empty(), "annotated as data_race(): {races:?}");
            }
        }
    }
}
