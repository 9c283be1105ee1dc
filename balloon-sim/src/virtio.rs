//! The virtio core and transport between the driver and the host (drivers/virtio/virtio.c,
//! virtio_pci's `find_vqs`/`del_vqs`/`get`/`set`/`reset`, `vring_interrupt`): feature bits,
//! config access in the guest's byte order for legacy devices, queues placed in guest memory,
//! kicks delivered to the host and used buffers delivered back as interrupts. In the op-level
//! simulation the host runs a kick synchronously inside the kicking context (nobody else could
//! satisfy the driver's `wait_event`); in the threaded checkers a host thread does.

use sim_core::fault::FaultSite;
use sim_core::sync::atomic::{AtomicBool, Ordering};
use sim_core::sync::{Arc, Mutex};
use sim_core::{Cx, Errno};

use crate::guest::{Endian, GuestMemory};
use crate::host::{BalloonHost, VIRTIO_F_VERSION_1};
use crate::virtio_ring::{VirtQueue, VringLayout, VIRTIO_RING_F_EVENT_IDX, VRING_ALIGN};

/// `vq_callback_t`: a plain `std` Arc, which only owns the callback (loom's cannot hold a trait
/// object).
pub(crate) type Callback = std::sync::Arc<dyn Fn(&Cx) + Send + Sync>;

/// A queue and its callback, as `find_vqs` registered them.
type QueueSlot = Option<(Arc<VirtQueue>, Callback)>;

/// Where `vb->pfns` lives.
pub(crate) const PFNS_ADDR: u64 = 0;
/// Where `vb->stats` lives.
pub(crate) const STATS_ADDR: u64 = PFNS_ADDR + 2048;
/// Where the first queue's ring starts; each ring takes its vring_size() rounded up to a page.
const QUEUES_BASE: u64 = 4096;
/// Queues a balloon may have (inflate, deflate, stats).
const QUEUES_MAX: u64 = 3;
/// The largest queue the split ring allows (virtio 1.0: `Queue Size` at most 32768).
pub(crate) const VIRTQUEUE_NUM_MAX: u16 = 32768;

/// Guest memory one queue of `num` entries takes (`vring_size()`, page aligned), as
/// `vp_setup_vq`'s `alloc_pages_exact` sizes it.
fn queue_region(num: u16) -> u64 {
    VringLayout::new(0, num, VRING_ALIGN).size().div_ceil(VRING_ALIGN) * VRING_ALIGN
}

/// Mirrors setup_vq()'s checks of the device's queue size: 0 means no such queue (`ENOENT`);
/// vring_new_virtqueue() refuses a size that is not a power of two ("Bad virtqueue length",
/// `ENOMEM` from its NULL); a u16 power of two is at most [`VIRTQUEUE_NUM_MAX`].
pub(crate) fn validate_queue_size(num: u16) -> Result<(), Errno> {
    if num == 0 {
        return Err(Errno::ENOENT);
    }
    if !num.is_power_of_two() || num > VIRTQUEUE_NUM_MAX {
        return Err(Errno::ENOMEM);
    }
    Ok(())
}

/// `struct virtio_device` with its transport.
pub struct VirtioDevice {
    /// The device.
    pub host: Arc<BalloonHost>,
    /// The shared memory.
    pub mem: Arc<GuestMemory>,
    features: u64,
    guest_endian: Endian,
    queue_size: u16,
    /// `vdev->config->get` is present.
    config_access: bool,
    synchronous: bool,
    callbacks: Mutex<Vec<QueueSlot>>,
    config_changed: Mutex<Option<Callback>>,
    /// Between the driver's freeze and its restore: the PM transition during which a device may
    /// reset (fault site [`RESET_DURING_FREEZE_SITE`]).
    suspended: AtomicBool,
}

/// The fault site of a device that resets while the guest freezes it: the kick of a buffer in
/// flight is lost with the queues, and no interrupt ever answers it.
pub(crate) const RESET_DURING_FREEZE_SITE: &str = "virtio:reset_during_freeze";

impl std::fmt::Debug for VirtioDevice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VirtioDevice").field("features", &self.features).finish_non_exhaustive()
    }
}

impl VirtioDevice {
    /// Negotiates features (`virtio_dev_probe`: the driver's table plus the transport's
    /// VERSION_1 and EVENT_IDX, intersected with the offer) and returns the device.
    pub fn new(
        host: Arc<BalloonHost>,
        driver_features: u64,
        guest_endian: Endian,
        queue_size: u16,
        config_access: bool,
        synchronous: bool,
    ) -> VirtioDevice {
        let supported = driver_features | (1 << VIRTIO_F_VERSION_1) | (1 << VIRTIO_RING_F_EVENT_IDX);
        let features = host.offered() & supported;
        host.ack_features(features);
        VirtioDevice {
            host,
            mem: Arc::new(GuestMemory::new(
                (QUEUES_BASE + QUEUES_MAX * queue_region(queue_size.max(1).next_power_of_two())) as usize,
            )),
            features,
            guest_endian,
            queue_size,
            config_access,
            synchronous,
            callbacks: Mutex::new(vec![None, None, None]),
            config_changed: Mutex::new(None),
            suspended: AtomicBool::new(false),
        }
    }

    /// Mirrors virtio_has_feature().
    pub fn has_feature(&self, bit: u32) -> bool {
        self.features & (1 << bit) != 0
    }

    /// The negotiated features.
    pub fn features(&self) -> u64 {
        self.features
    }

    /// The guest CPU's byte order.
    pub fn guest_endian(&self) -> Endian {
        self.guest_endian
    }

    /// Byte order of rings and buffers: `cpu_to_virtio*` (little-endian for VERSION_1, the
    /// guest's own for legacy).
    pub fn virtio_endian(&self) -> Endian {
        if self.has_feature(VIRTIO_F_VERSION_1) {
            Endian::Little
        } else {
            self.guest_endian
        }
    }

    /// Whether the host runs kicks inside the kicking context (the op-level simulation).
    pub fn is_synchronous(&self) -> bool {
        self.synchronous
    }

    /// Whether `vdev->config->get` exists.
    pub fn config_access(&self) -> bool {
        self.config_access
    }

    /// Mirrors virtio_cread() of a u32: a legacy device's config is read in the guest's byte
    /// order, a modern one's as little-endian. A call that may sleep (virtio_ccw waits for the
    /// channel I/O that reads it).
    #[track_caller]
    pub fn cread_u32(&self, cx: &Cx, offset: usize) -> u32 {
        cx.might_sleep("virtio_cread");
        let bytes = self.host.config_read(offset);
        match self.virtio_endian() {
            Endian::Little => u32::from_le_bytes(bytes),
            Endian::Big => u32::from_be_bytes(bytes),
        }
    }

    /// Mirrors virtio_cwrite() of a u32; may sleep, as virtio_cread().
    #[track_caller]
    pub fn cwrite_u32(&self, cx: &Cx, offset: usize, value: u32) {
        cx.might_sleep("virtio_cwrite");
        let bytes = match self.virtio_endian() {
            Endian::Little => value.to_le_bytes(),
            Endian::Big => value.to_be_bytes(),
        };
        self.host.config_write(offset, bytes);
    }

    /// Registers `virtio_driver.config_changed`.
    pub fn set_config_changed(&self, callback: Option<Callback>) {
        *self.config_changed.lock() = callback;
    }

    /// The host changed its config: `virtio_config_changed()` calls the driver from the
    /// config interrupt.
    pub fn config_changed(&self, cx: &Cx) {
        let callback = self.config_changed.lock().clone();
        if let Some(callback) = callback {
            cx.hardirq(|cx| callback(cx));
        }
    }

    /// Mirrors vp_find_vqs(): sets up `callbacks.len()` queues. Fault site `virtio:find_vqs`
    /// fails it with `ENOMEM`.
    pub fn find_vqs(
        &self,
        cx: &Cx,
        callbacks: Vec<Callback>,
        names: &[&'static str],
    ) -> Result<Vec<Arc<VirtQueue>>, Errno> {
        if cx.sim().should_fail(cx, &sim_core::fault::FaultSite::call("virtio:find_vqs"), 0) {
            return Err(Errno::ENOMEM);
        }
        validate_queue_size(self.queue_size)?;
        let event_idx = self.has_feature(VIRTIO_RING_F_EVENT_IDX);
        let region = queue_region(self.queue_size);
        let mut out = Vec::new();
        let mut slots = self.callbacks.lock();
        for (index, callback) in callbacks.into_iter().enumerate() {
            let layout = VringLayout::new(QUEUES_BASE + index as u64 * region, self.queue_size, VRING_ALIGN);
            let vq = Arc::new(VirtQueue::new(
                &self.mem,
                index as u16,
                names[index],
                layout,
                self.virtio_endian(),
                event_idx,
            ));
            self.host.setup_queue(index, layout, event_idx);
            slots[index] = Some((vq.clone(), callback));
            out.push(vq);
        }
        Ok(out)
    }

    /// Mirrors vp_del_vqs(): each queue is freed (`vring_del_virtqueue`), so a driver's
    /// pointer to it is stale from here on.
    pub fn del_vqs(&self) {
        let mut slots = self.callbacks.lock();
        for slot in slots.iter_mut() {
            if let Some((vq, _)) = slot.take() {
                vq.mark_deleted();
            }
        }
        drop(slots);
        self.host.reset_queues();
    }

    /// `vdev->config->reset`.
    pub fn reset(&self) {
        self.host.reset_queues();
    }

    /// The PM core's freeze of the device began (`true`, from virtballoon_freeze()) or its
    /// restore did (`false`).
    pub fn set_suspended(&self, suspended: bool) {
        self.suspended.store(suspended, Ordering::SeqCst);
    }

    /// Mirrors virtqueue_notify(): the kick reaches the host. Synchronous mode processes it
    /// here and delivers the interrupt at once. During a freeze the device may reset instead
    /// (fault site [`RESET_DURING_FREEZE_SITE`]): its queues go, with the buffer just made
    /// available, and the driver that kicked waits for an ack the device will never send.
    pub fn notify(&self, cx: &Cx, index: usize) {
        if self.suspended.load(Ordering::SeqCst)
            && cx.sim().should_fail(cx, &FaultSite::call(RESET_DURING_FREEZE_SITE), 0)
        {
            cx.note(format!("the device resets during freeze: the kick on queue {index} is lost"));
            cx.sim().mark("reset-during-freeze");
            self.host.reset_queues();
            return;
        }
        if self.synchronous {
            self.host_process(cx, index);
        } else {
            self.host.kick(index);
        }
    }

    /// The host consumes queue `index` and interrupts the guest if asked to.
    pub fn host_process(&self, cx: &Cx, index: usize) {
        if self.host.process(&self.mem, index) {
            self.interrupt(cx, index);
        }
    }

    /// The host asks for stats; the interrupt runs the stats callback.
    pub fn host_request_stats(&self, cx: &Cx) -> bool {
        let interrupt = self.host.request_stats(&self.mem);
        if interrupt {
            self.interrupt(cx, crate::host::STATS_VQ);
        }
        interrupt
    }

    /// Mirrors vring_interrupt(): nothing when no used buffer is pending, else the callback,
    /// in hard-irq context. A misbehaving transport may lose the interrupt (fault site
    /// `virtio:lost_interrupt`) or deliver it twice (`virtio:dup_interrupt`).
    pub fn interrupt(&self, cx: &Cx, index: usize) {
        let slot = self.callbacks.lock().get(index).cloned().flatten();
        let Some((vq, callback)) = slot else { return };
        if cx.sim().should_fail(cx, &FaultSite::call("virtio:lost_interrupt"), 0) {
            cx.note(format!("interrupt on queue {index} lost"));
            return;
        }
        let times = if cx.sim().should_fail(cx, &FaultSite::call("virtio:dup_interrupt"), 0) { 2 } else { 1 };
        for _ in 0..times {
            if vq.more_used(&self.mem) {
                cx.hardirq(|cx| callback(cx));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use sim_core::fault::{FaultAttr, FaultPlan};
    use sim_core::mm::PAGE_SIZE_4K;
    use sim_core::{Sim, SimConfig};

    use super::RESET_DURING_FREEZE_SITE;
    use crate::check::{BalloonConfig, HOST_FEATURES_ALL};
    use crate::guest::Endian;
    use crate::world::World;

    fn world(sim: &Sim) -> World {
        let mut config = BalloonConfig::preset("fixed").expect("preset");
        config.memory_bytes = 64 * PAGE_SIZE_4K;
        World::new(&sim.cx("probe", 0), &config, PAGE_SIZE_4K, HOST_FEATURES_ALL, Endian::Little, true)
    }

    /// Seed 004's freeze deflates the balloon through the deflate queue; a device that resets
    /// meanwhile drops the buffer, and tell_host's uninterruptible wait for the ack never ends:
    /// the suspend hangs in virtballoon_freeze() (reported as a hang by the single-threaded
    /// model). An empty balloon kicks nothing, so the same reset is harmless, and a restore
    /// brings the queues back either way.
    #[test]
    fn a_device_reset_during_freeze_leaves_the_seeds_deflate_waiting_for_ever() {
        for balloon_pages in [4, 0] {
            let sim = Sim::new(SimConfig::new(5));
            let world = world(&sim);
            let vb = world.vb.clone().expect("probe");
            let cx = sim.cx("vballoon", 0);
            vb.fill_balloon(&cx, balloon_pages);
            vb.update_balloon_size(&cx);
            sim.set_faults(FaultPlan::with(FaultAttr::always().site(RESET_DURING_FREEZE_SITE)));
            let pm = sim.cx("pm", 0);
            vb.freeze(&pm);
            let kinds: Vec<String> = sim.violations().iter().map(|v| v.kind.to_string()).collect();
            if balloon_pages > 0 {
                assert!(sim.marks().contains("reset-during-freeze"));
                assert_eq!(kinds, ["hang"], "{:?}", sim.violations());
                assert!(sim.violations()[0].message.contains("deflate"), "{:?}", sim.violations());
            } else {
                assert!(kinds.is_empty(), "{:?}", sim.violations());
            }
            sim.set_faults(FaultPlan::none());
            assert_eq!(vb.restore(&pm), Ok(()));
            assert!(vb.has_vqs(), "restore made the queues again");
        }
    }
}
