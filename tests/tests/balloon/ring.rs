//! The split ring checked against an independent device-side implementation: rust-vmm's
//! virtio-queue (what Firecracker and Cloud Hypervisor use) reads the rings ksim's driver side
//! lays out, and its used-ring writes are compared byte for byte with ksim's device side, through
//! 16-bit index wrap-around, with and without EVENT_IDX.

use balloon_sim::{DeviceQueue, VirtQueue, VringLayout, VRING_ALIGN, VRING_DESC_F_NEXT};
use balloon_sim::{Endian, GuestMemory};
use virtio_queue::{Queue, QueueT};
use vm_memory::{Bytes, GuestAddress, GuestMemoryMmap};

const BYTES: usize = 0x4000;

fn copy_to_vmm(ours: &GuestMemory, theirs: &GuestMemoryMmap) {
    let mut buf = vec![0; BYTES];
    ours.read(0, &mut buf).expect("in range");
    theirs.write_slice(&buf, GuestAddress(0)).expect("in range");
}

fn used_ring_bytes_of_vmm(theirs: &GuestMemoryMmap, layout: &VringLayout) -> Vec<u8> {
    let mut buf = vec![0; 4 + 8 * usize::from(layout.num)];
    theirs.read_slice(&mut buf, GuestAddress(layout.used)).expect("in range");
    buf
}

fn used_ring_bytes_of_ours(ours: &GuestMemory, layout: &VringLayout) -> Vec<u8> {
    let mut buf = vec![0; 4 + 8 * usize::from(layout.num)];
    ours.read(layout.used, &mut buf).expect("in range");
    buf
}

fn the_device_sides_agree(event_idx: bool, rounds: u64) {
    let num = 8;
    let layout = VringLayout::new(0, num, VRING_ALIGN);
    let ours = GuestMemory::new(BYTES);
    let theirs = GuestMemoryMmap::<()>::from_ranges(&[(GuestAddress(0), BYTES)]).expect("guest memory");
    let driver = VirtQueue::new(&ours, 0, "check", layout, Endian::Little, event_idx);
    let mut device = DeviceQueue::new(layout, Endian::Little, event_idx);
    let mut vmm = Queue::new(num).expect("queue");
    vmm.set_size(num);
    vmm.set_desc_table_address(Some(layout.desc as u32), Some(0));
    vmm.set_avail_ring_address(Some(layout.avail as u32), Some(0));
    vmm.set_used_ring_address(Some(layout.used as u32), Some(0));
    vmm.set_event_idx(event_idx);
    vmm.set_ready(true);
    for round in 0..rounds {
        let elements = 1 + (round % 3) as usize;
        let sg: Vec<(u64, u32)> =
            (0..elements).map(|i| (0x3000 + 64 * i as u64, 4 * (round % 7 + 1) as u32)).collect();
        driver.add_outbuf(&ours, &sg, round).expect("room");
        driver.kick_prepare(&ours);
        copy_to_vmm(&ours, &theirs);
        let chain = device.pop(&ours).expect("available").expect("well formed");
        let vmm_chain = vmm.pop_descriptor_chain(&theirs).expect("virtio-queue sees the buffer");
        assert_eq!(vmm_chain.head_index(), chain.head, "round {round}: heads differ");
        let vmm_descs: Vec<(u64, u32, u16)> =
            vmm_chain.clone().map(|d| (d.addr().0, d.len(), d.flags() & !VRING_DESC_F_NEXT)).collect();
        let our_descs: Vec<(u64, u32, u16)> =
            chain.descriptors.iter().map(|d| (d.addr, d.len, d.flags & !VRING_DESC_F_NEXT)).collect();
        assert_eq!(vmm_descs, our_descs, "round {round}: descriptor chains differ");
        assert_eq!(
            our_descs.iter().map(|d| (d.0, d.1)).collect::<Vec<_>>(),
            sg,
            "round {round}: not what was added"
        );
        device.push_used(&ours, chain.head, 0);
        vmm.add_used(&theirs, vmm_chain.head_index(), 0).expect("add_used");
        assert_eq!(
            used_ring_bytes_of_vmm(&theirs, &layout),
            used_ring_bytes_of_ours(&ours, &layout),
            "round {round}: used rings differ"
        );
        let ours_interrupt = device.needs_interrupt(&ours);
        let theirs_interrupt = vmm.needs_notification(&theirs).expect("needs_notification");
        assert_eq!(ours_interrupt, theirs_interrupt, "round {round}: interrupt decisions differ");
        assert_eq!(driver.get_buf(&ours), Some((round, 0)), "round {round}: the driver gets its buffer back");
    }
    assert_eq!(driver.num_free(), num);
}

#[test]
fn virtio_queue_reads_our_rings_and_writes_the_same_used_ring_through_index_wrap() {
    the_device_sides_agree(false, 66_000);
}

#[test]
fn virtio_queue_agrees_with_our_event_idx_interrupt_decisions() {
    the_device_sides_agree(true, 66_000);
}

/// Interrupt decisions with several buffers in flight, completed out of order, some rounds with
/// callbacks disabled (`VRING_AVAIL_F_NO_INTERRUPT`), compared after every used element. Both
/// decisions are made, true and false, on both sides; they may differ in exactly one case, which
/// the virtio specification allows: without EVENT_IDX, virtio-queue ignores NO_INTERRUPT (the
/// device "SHOULD NOT" interrupt), where ksim's device honours it.
fn interrupt_decisions_with_buffers_in_flight(event_idx: bool, rounds: u64) -> [u64; 3] {
    let num = 8;
    let layout = VringLayout::new(0, num, VRING_ALIGN);
    let ours = GuestMemory::new(BYTES);
    let theirs = GuestMemoryMmap::<()>::from_ranges(&[(GuestAddress(0), BYTES)]).expect("guest memory");
    let driver = VirtQueue::new(&ours, 0, "check", layout, Endian::Little, event_idx);
    let mut device = DeviceQueue::new(layout, Endian::Little, event_idx);
    let mut vmm = Queue::new(num).expect("queue");
    vmm.set_size(num);
    vmm.set_desc_table_address(Some(layout.desc as u32), Some(0));
    vmm.set_avail_ring_address(Some(layout.avail as u32), Some(0));
    vmm.set_used_ring_address(Some(layout.used as u32), Some(0));
    vmm.set_event_idx(event_idx);
    vmm.set_ready(true);
    // [decisions that were true, that were false, that differed as the specification allows]
    let mut counts = [0u64; 3];
    let mut token = 0u64;
    for round in 0..rounds {
        let in_flight = 1 + (round % 4) as usize;
        for i in 0..in_flight {
            driver.add_outbuf(&ours, &[(0x3000 + 64 * i as u64, 4)], token).expect("room");
            token += 1;
        }
        driver.kick_prepare(&ours);
        if round % 5 == 0 {
            driver.disable_cb(&ours);
        }
        copy_to_vmm(&ours, &theirs);
        let mut chains = Vec::new();
        for _ in 0..in_flight {
            let chain = device.pop(&ours).expect("available").expect("well formed");
            let vmm_chain = vmm.pop_descriptor_chain(&theirs).expect("virtio-queue sees the buffer");
            assert_eq!(vmm_chain.head_index(), chain.head, "round {round}: heads differ");
            chains.push(chain.head);
        }
        // Out of order: the device completes the newest first on odd rounds.
        if round % 2 == 1 {
            chains.reverse();
        }
        for &head in &chains {
            device.push_used(&ours, head, 0);
            vmm.add_used(&theirs, head, 0).expect("add_used");
            let mine = device.needs_interrupt(&ours);
            let vmm_says = vmm.needs_notification(&theirs).expect("needs_notification");
            counts[usize::from(!mine)] += 1;
            if mine != vmm_says {
                let no_interrupt = round % 5 == 0;
                assert!(
                    !event_idx && no_interrupt && !mine && vmm_says,
                    "round {round}: interrupt decisions differ (ours {mine}, virtio-queue {vmm_says})"
                );
                counts[2] += 1;
            }
        }
        assert_eq!(
            used_ring_bytes_of_vmm(&theirs, &layout),
            used_ring_bytes_of_ours(&ours, &layout),
            "round {round}: used rings differ"
        );
        for _ in 0..in_flight {
            assert!(driver.get_buf(&ours).is_some(), "round {round}: a used buffer comes back");
        }
        if round % 5 == 0 {
            driver.enable_cb(&ours);
        }
    }
    assert_eq!(driver.num_free(), num);
    counts
}

#[test]
fn interrupt_decisions_agree_with_virtio_queue_with_several_buffers_in_flight_out_of_order() {
    let [yes, no, differ] = interrupt_decisions_with_buffers_in_flight(true, 30_000);
    assert!(yes > 0 && no > 0, "EVENT_IDX decided both ways: {yes} interrupts, {no} suppressed");
    assert_eq!(differ, 0, "with EVENT_IDX the two devices never differ");
    let [yes, no, differ] = interrupt_decisions_with_buffers_in_flight(false, 30_000);
    assert!(yes > 0 && no > 0, "NO_INTERRUPT decided both ways: {yes} interrupts, {no} suppressed");
    assert_eq!(differ, no, "each suppression is one virtio-queue does not make");
}
