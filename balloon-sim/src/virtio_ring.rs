//! The split virtqueue (virtio 1.0 §2.6, include/uapi/linux/virtio_ring.h) laid out in guest
//! memory, with the driver side as drivers/virtio/virtio_ring.c (4.4) does it
//! (`virtqueue_add_outbuf`, `virtqueue_kick`, `virtqueue_get_buf`, `vring_interrupt`) and the
//! device side a host uses (pop an available chain, push a used element, decide whether to
//! interrupt). Left out: indirect descriptors, in-buffers with more than one element, the packed
//! ring and DMA mapping.

use sim_core::sync::Mutex;
use sim_core::Errno;

use crate::guest::{Endian, RingMemory};

/// Bytes in one descriptor (`struct vring_desc`: addr u64, len u32, flags u16, next u16).
pub(crate) const VRING_DESC_SIZE: u64 = 16;
/// `VRING_DESC_F_NEXT`.
pub const VRING_DESC_F_NEXT: u16 = 1;
/// `VRING_AVAIL_F_NO_INTERRUPT`.
pub(crate) const VRING_AVAIL_F_NO_INTERRUPT: u16 = 1;
/// `VRING_USED_F_NO_NOTIFY`.
pub(crate) const VRING_USED_F_NO_NOTIFY: u16 = 1;
/// `VIRTIO_RING_F_EVENT_IDX`, the feature bit.
pub(crate) const VIRTIO_RING_F_EVENT_IDX: u32 = 29;
/// `VIRTIO_PCI_VRING_ALIGN`: the legacy alignment of the used ring.
pub const VRING_ALIGN: u64 = 4096;

/// Where one split ring's three parts sit in guest memory (`vring_init()`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VringLayout {
    /// Entries (a power of two).
    pub num: u16,
    /// The descriptor table.
    pub desc: u64,
    /// The available ring: flags, idx, ring[num], used_event.
    pub avail: u64,
    /// The used ring: flags, idx, ring[num] of (id u32, len u32), avail_event.
    pub used: u64,
}

impl VringLayout {
    /// Mirrors vring_init(): descriptors at `base`, the available ring right after, the used
    /// ring at the next `align` boundary.
    pub fn new(base: u64, num: u16, align: u64) -> VringLayout {
        let desc = base;
        let avail = desc + VRING_DESC_SIZE * u64::from(num);
        let avail_end = avail + 2 * (3 + u64::from(num));
        let used = avail_end.div_ceil(align) * align;
        VringLayout { num, desc, avail, used }
    }

    /// Mirrors vring_size(): bytes the ring occupies from `desc`.
    pub fn size(&self) -> u64 {
        self.used + 2 * 3 + 8 * u64::from(self.num) - self.desc
    }

    /// `&avail->ring[i]`.
    pub fn avail_ring(&self, i: u16) -> u64 {
        self.avail + 4 + 2 * u64::from(i % self.num)
    }

    /// `vring_used_event()`: `avail->ring[num]`.
    pub fn used_event(&self) -> u64 {
        self.avail + 4 + 2 * u64::from(self.num)
    }

    /// `&used->ring[i]`.
    pub fn used_ring(&self, i: u16) -> u64 {
        self.used + 4 + 8 * u64::from(i % self.num)
    }

    /// `vring_avail_event()`: `used->ring[num]`, as a u16.
    pub fn avail_event(&self) -> u64 {
        self.used + 4 + 8 * u64::from(self.num)
    }
}

/// Mirrors vring_need_event(): whether moving an index from `old` to `new` crosses `event`.
pub(crate) fn vring_need_event(event: u16, new: u16, old: u16) -> bool {
    new.wrapping_sub(event).wrapping_sub(1) < new.wrapping_sub(old)
}

#[derive(Debug)]
struct DriverState {
    free_head: u16,
    num_free: u16,
    /// `desc_state[head].data`: the token `virtqueue_add` was given, per head.
    data: Vec<Option<u64>>,
    avail_idx_shadow: u16,
    num_added: u16,
    last_used_idx: u16,
    broken: bool,
}

/// The driver side of one queue (`struct vring_virtqueue`).
#[derive(Debug)]
pub struct VirtQueue {
    /// The queue's index on the device.
    pub index: u16,
    /// `vq->name`.
    pub name: &'static str,
    layout: VringLayout,
    endian: Endian,
    event_idx: bool,
    state: Mutex<DriverState>,
    /// Set by vring_del_virtqueue(): the memory is freed, and a use of this handle is a use
    /// after free. Instrumentation (a `std` atomic): it stands for the allocator's knowledge.
    deleted: std::sync::atomic::AtomicBool,
}

impl VirtQueue {
    /// Mirrors vring_new_virtqueue(): the free list threads every descriptor, rings zeroed.
    pub fn new(
        mem: &(impl RingMemory + ?Sized),
        index: u16,
        name: &'static str,
        layout: VringLayout,
        endian: Endian,
        event_idx: bool,
    ) -> VirtQueue {
        let zeros = vec![0; usize::try_from(layout.size()).unwrap_or(0)];
        let _ = mem.write(layout.desc, &zeros);
        for i in 0..layout.num {
            mem.write_u16(layout.desc + VRING_DESC_SIZE * u64::from(i) + 14, i.wrapping_add(1), endian);
        }
        let state = DriverState {
            free_head: 0,
            num_free: layout.num,
            data: vec![None; usize::from(layout.num)],
            avail_idx_shadow: 0,
            num_added: 0,
            last_used_idx: 0,
            broken: false,
        };
        VirtQueue {
            index,
            name,
            layout,
            endian,
            event_idx,
            state: Mutex::new(state),
            deleted: std::sync::atomic::AtomicBool::new(false),
        }
    }

    /// The ring's layout.
    pub fn layout(&self) -> VringLayout {
        self.layout
    }

    /// Free descriptors.
    pub fn num_free(&self) -> u16 {
        self.state.lock().num_free
    }

    /// Mirrors virtqueue_add_outbuf() (`virtqueue_add` with one readable element per
    /// `(addr, len)`): `ENOSPC` without enough free descriptors, `EIO` on a broken queue.
    pub fn add_outbuf(
        &self,
        mem: &(impl RingMemory + ?Sized),
        sg: &[(u64, u32)],
        data: u64,
    ) -> Result<(), Errno> {
        let mut s = self.state.lock();
        if s.broken {
            return Err(Errno::EIO);
        }
        if sg.is_empty() {
            return Err(Errno::EINVAL);
        }
        if usize::from(s.num_free) < sg.len() {
            return Err(Errno::ENOSPC);
        }
        let head = s.free_head;
        let mut i = head;
        let mut prev = head;
        for (n, &(addr, len)) in sg.iter().enumerate() {
            let desc = self.layout.desc + VRING_DESC_SIZE * u64::from(i);
            let flags = if n + 1 < sg.len() { VRING_DESC_F_NEXT } else { 0 };
            let next = mem.read_u16(desc + 14, self.endian);
            mem.write_u64(desc, addr, self.endian);
            mem.write_u32(desc + 8, len, self.endian);
            mem.write_u16(desc + 12, flags, self.endian);
            prev = i;
            i = next;
        }
        let _ = prev;
        s.free_head = i;
        s.num_free -= sg.len() as u16;
        s.data[usize::from(head)] = Some(data);
        // Put the head in the next available slot, then (after a write barrier) publish it.
        let slot = s.avail_idx_shadow;
        mem.write_u16(self.layout.avail_ring(slot), head, self.endian);
        s.avail_idx_shadow = s.avail_idx_shadow.wrapping_add(1);
        mem.write_u16(self.layout.avail + 2, s.avail_idx_shadow, self.endian);
        s.num_added = s.num_added.wrapping_add(1);
        Ok(())
    }

    /// Mirrors virtqueue_kick_prepare(): whether the device wants a notification for what was
    /// added since the last kick (its avail_event, or the NO_NOTIFY flag).
    pub fn kick_prepare(&self, mem: &(impl RingMemory + ?Sized)) -> bool {
        let mut s = self.state.lock();
        let new = s.avail_idx_shadow;
        let old = new.wrapping_sub(s.num_added);
        s.num_added = 0;
        if self.event_idx {
            vring_need_event(mem.read_u16(self.layout.avail_event(), self.endian), new, old)
        } else {
            mem.read_u16(self.layout.used, self.endian) & VRING_USED_F_NO_NOTIFY == 0
        }
    }

    /// Mirrors more_used(): the device has used buffers this side has not collected.
    pub fn more_used(&self, mem: &(impl RingMemory + ?Sized)) -> bool {
        let s = self.state.lock();
        s.last_used_idx != mem.read_u16(self.layout.used + 2, self.endian)
    }

    /// Mirrors virtqueue_get_buf(): the next used buffer's token and written length, freeing its
    /// descriptors; `None` when there is none.
    pub fn get_buf(&self, mem: &(impl RingMemory + ?Sized)) -> Option<(u64, u32)> {
        let mut s = self.state.lock();
        if s.broken || s.last_used_idx == mem.read_u16(self.layout.used + 2, self.endian) {
            return None;
        }
        let elem = self.layout.used_ring(s.last_used_idx);
        let id = mem.read_u32(elem, self.endian);
        let len = mem.read_u32(elem + 4, self.endian);
        if id >= u32::from(self.layout.num) {
            s.broken = true;
            return None;
        }
        let head = id as u16;
        let Some(data) = s.data[usize::from(head)].take() else {
            // "id %u is not a head!": the device returned a buffer we never gave it.
            s.broken = true;
            return None;
        };
        // detach_buf(): walk the chain back onto the free list.
        let mut i = head;
        let mut freed = 1;
        loop {
            let desc = self.layout.desc + VRING_DESC_SIZE * u64::from(i);
            if mem.read_u16(desc + 12, self.endian) & VRING_DESC_F_NEXT == 0 {
                mem.write_u16(desc + 14, s.free_head, self.endian);
                break;
            }
            i = mem.read_u16(desc + 14, self.endian);
            freed += 1;
            if freed > self.layout.num {
                s.broken = true;
                return None;
            }
        }
        s.free_head = head;
        s.num_free += freed;
        s.last_used_idx = s.last_used_idx.wrapping_add(1);
        // Ask for an interrupt at the next used buffer, unless callbacks are disabled.
        if self.event_idx && mem.read_u16(self.layout.avail, self.endian) & VRING_AVAIL_F_NO_INTERRUPT == 0 {
            mem.write_u16(self.layout.used_event(), s.last_used_idx, self.endian);
        }
        Some((data, len))
    }

    /// Mirrors virtqueue_disable_cb(): sets `VRING_AVAIL_F_NO_INTERRUPT`.
    pub fn disable_cb(&self, mem: &(impl RingMemory + ?Sized)) {
        let flags = mem.read_u16(self.layout.avail, self.endian);
        mem.write_u16(self.layout.avail, flags | VRING_AVAIL_F_NO_INTERRUPT, self.endian);
    }

    /// Mirrors virtqueue_enable_cb(): clears the flag and republishes used_event; returns
    /// whether no used buffers are pending (false: the caller must poll again).
    pub fn enable_cb(&self, mem: &(impl RingMemory + ?Sized)) -> bool {
        let flags = mem.read_u16(self.layout.avail, self.endian);
        mem.write_u16(self.layout.avail, flags & !VRING_AVAIL_F_NO_INTERRUPT, self.endian);
        let last = self.state.lock().last_used_idx;
        if self.event_idx {
            mem.write_u16(self.layout.used_event(), last, self.endian);
        }
        last == mem.read_u16(self.layout.used + 2, self.endian)
    }

    /// vring_del_virtqueue(): the queue's memory goes back (see [`VirtQueue::is_deleted`]).
    pub(crate) fn mark_deleted(&self) {
        self.deleted.store(true, std::sync::atomic::Ordering::SeqCst);
    }

    /// Whether the queue was deleted (its handle is stale).
    pub fn is_deleted(&self) -> bool {
        self.deleted.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// virtio_break_device() for this queue: every later operation fails (`EIO`, no buffers).
    pub(crate) fn mark_broken(&self) {
        self.state.lock().broken = true;
    }

    /// Whether the queue was marked broken by a device that misbehaved.
    pub fn is_broken(&self) -> bool {
        self.state.lock().broken
    }
}

/// One descriptor as the device reads it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Descriptor {
    /// Guest-physical address.
    pub addr: u64,
    /// Length in bytes.
    pub len: u32,
    /// `VRING_DESC_F_*`.
    pub flags: u16,
}

/// A chain the device popped: its head (the id to return) and its descriptors.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DescriptorChain {
    /// The head index.
    pub head: u16,
    /// The descriptors, in chain order.
    pub descriptors: Vec<Descriptor>,
}

/// The device side of one queue: what a host keeps (`last_avail_idx`, the used index).
#[derive(Clone, Debug)]
pub struct DeviceQueue {
    layout: VringLayout,
    endian: Endian,
    event_idx: bool,
    last_avail_idx: u16,
    used_idx: u16,
    /// The used index at the last interrupt decision.
    signalled_used: u16,
}

impl DeviceQueue {
    /// A device queue over `layout` as the driver set it up.
    pub fn new(layout: VringLayout, endian: Endian, event_idx: bool) -> DeviceQueue {
        DeviceQueue { layout, endian, event_idx, last_avail_idx: 0, used_idx: 0, signalled_used: 0 }
    }

    /// Pops the next available chain; `Err` names what is malformed.
    pub fn pop(&mut self, mem: &(impl RingMemory + ?Sized)) -> Option<Result<DescriptorChain, String>> {
        let avail_idx = mem.read_u16(self.layout.avail + 2, self.endian);
        if avail_idx == self.last_avail_idx {
            return None;
        }
        if avail_idx.wrapping_sub(self.last_avail_idx) > self.layout.num {
            return Some(Err(format!(
                "avail idx {avail_idx} runs {} ahead",
                avail_idx.wrapping_sub(self.last_avail_idx)
            )));
        }
        let head = mem.read_u16(self.layout.avail_ring(self.last_avail_idx), self.endian);
        self.last_avail_idx = self.last_avail_idx.wrapping_add(1);
        if self.event_idx {
            mem.write_u16(self.layout.avail_event(), self.last_avail_idx, self.endian);
        }
        if head >= self.layout.num {
            return Some(Err(format!("head {head} out of range")));
        }
        let mut descriptors = Vec::new();
        let mut i = head;
        loop {
            let at = self.layout.desc + VRING_DESC_SIZE * u64::from(i);
            let desc = Descriptor {
                addr: mem.read_u64(at, self.endian),
                len: mem.read_u32(at + 8, self.endian),
                flags: mem.read_u16(at + 12, self.endian),
            };
            descriptors.push(desc);
            if desc.flags & VRING_DESC_F_NEXT == 0 {
                break;
            }
            i = mem.read_u16(at + 14, self.endian);
            if descriptors.len() > usize::from(self.layout.num) || i >= self.layout.num {
                return Some(Err("descriptor chain loops or leaves the table".to_string()));
            }
        }
        Some(Ok(DescriptorChain { head, descriptors }))
    }

    /// Writes a used element for `head` with `len` bytes written, and publishes it.
    pub fn push_used(&mut self, mem: &(impl RingMemory + ?Sized), head: u16, len: u32) {
        let elem = self.layout.used_ring(self.used_idx);
        mem.write_u32(elem, u32::from(head), self.endian);
        mem.write_u32(elem + 4, len, self.endian);
        self.used_idx = self.used_idx.wrapping_add(1);
        mem.write_u16(self.layout.used + 2, self.used_idx, self.endian);
    }

    /// Whether the driver wants an interrupt for the buffers used since the last decision
    /// (its used_event, or the NO_INTERRUPT flag).
    pub fn needs_interrupt(&mut self, mem: &(impl RingMemory + ?Sized)) -> bool {
        let old = self.signalled_used;
        let new = self.used_idx;
        self.signalled_used = new;
        if old == new {
            return false;
        }
        if self.event_idx {
            vring_need_event(mem.read_u16(self.layout.used_event(), self.endian), new, old)
        } else {
            mem.read_u16(self.layout.avail, self.endian) & VRING_AVAIL_F_NO_INTERRUPT == 0
        }
    }

    /// Sets or clears `VRING_USED_F_NO_NOTIFY` (a device that polls).
    pub fn set_no_notify(&self, mem: &(impl RingMemory + ?Sized), on: bool) {
        mem.write_u16(self.layout.used, if on { VRING_USED_F_NO_NOTIFY } else { 0 }, self.endian);
    }

    /// The next available index the device will read.
    pub fn last_avail_idx(&self) -> u16 {
        self.last_avail_idx
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::guest::GuestMemory;

    fn ring(num: u16, event_idx: bool) -> (GuestMemory, VirtQueue, DeviceQueue) {
        let mem = GuestMemory::new(3 * 4096);
        let layout = VringLayout::new(0, num, VRING_ALIGN);
        let vq = VirtQueue::new(&mem, 0, "test", layout, Endian::Little, event_idx);
        (mem, vq, DeviceQueue::new(layout, Endian::Little, event_idx))
    }

    #[test]
    fn layout_matches_vring_init_for_a_256_entry_ring() {
        let layout = VringLayout::new(0, 256, VRING_ALIGN);
        assert_eq!(layout.avail, 4096);
        assert_eq!(layout.used, 8192);
        assert_eq!(layout.size(), 8192 + 6 + 8 * 256);
    }

    #[test]
    fn a_full_ring_is_enospc_until_the_device_uses_a_buffer() {
        let (mem, vq, mut dev) = ring(2, false);
        vq.add_outbuf(&mem, &[(100, 4)], 1).expect("room");
        vq.add_outbuf(&mem, &[(200, 4)], 2).expect("room");
        assert_eq!(vq.add_outbuf(&mem, &[(300, 4)], 3), Err(Errno::ENOSPC));
        let chain = dev.pop(&mem).expect("available").expect("well formed");
        assert_eq!(chain.descriptors[0].addr, 100);
        dev.push_used(&mem, chain.head, 0);
        assert_eq!(vq.get_buf(&mem), Some((1, 0)));
        vq.add_outbuf(&mem, &[(300, 4)], 3).expect("room again");
    }

    #[test]
    fn indices_wrap_at_sixteen_bits_without_losing_a_buffer() {
        let (mem, vq, mut dev) = ring(4, true);
        for token in 0..70_000u64 {
            vq.add_outbuf(&mem, &[(token, 8), (token + 1, 8)], token).expect("room");
            let chain = dev.pop(&mem).expect("available").expect("well formed");
            assert_eq!(chain.descriptors.len(), 2);
            dev.push_used(&mem, chain.head, 0);
            assert_eq!(vq.get_buf(&mem), Some((token, 0)));
        }
        assert_eq!(vq.num_free(), 4);
        assert_eq!(dev.last_avail_idx(), (70_000u32 % 65_536) as u16);
    }

    #[test]
    fn event_idx_suppresses_kicks_until_the_device_catches_up() {
        let (mem, vq, mut dev) = ring(4, true);
        vq.add_outbuf(&mem, &[(1, 1)], 1).expect("room");
        // avail_event starts at 0: the first buffer (0 -> 1) crosses it.
        assert!(vq.kick_prepare(&mem));
        vq.add_outbuf(&mem, &[(2, 1)], 2).expect("room");
        // The device has not read anything, so avail_event is still 0: no kick.
        assert!(!vq.kick_prepare(&mem));
        dev.pop(&mem).expect("available").expect("ok");
        dev.pop(&mem).expect("available").expect("ok");
        vq.add_outbuf(&mem, &[(3, 1)], 3).expect("room");
        assert!(vq.kick_prepare(&mem));
    }

    #[test]
    fn no_notify_and_no_interrupt_flags_suppress_without_event_idx() {
        let (mem, vq, mut dev) = ring(4, false);
        dev.set_no_notify(&mem, true);
        vq.add_outbuf(&mem, &[(1, 1)], 1).expect("room");
        assert!(!vq.kick_prepare(&mem));
        vq.disable_cb(&mem);
        let chain = dev.pop(&mem).expect("available").expect("ok");
        dev.push_used(&mem, chain.head, 0);
        assert!(!dev.needs_interrupt(&mem));
        assert!(!vq.enable_cb(&mem), "a used buffer is pending");
    }

    #[test]
    fn a_device_returning_a_bogus_id_breaks_the_queue() {
        let (mem, vq, mut dev) = ring(4, false);
        dev.push_used(&mem, 3, 0);
        assert_eq!(vq.get_buf(&mem), None);
        assert!(vq.is_broken());
        assert_eq!(vq.add_outbuf(&mem, &[(1, 1)], 1), Err(Errno::EIO));
    }
}
