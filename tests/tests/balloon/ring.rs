//! The split ring checked against independent implementations on ONE shared guest memory (no
//! copies): ksim's driver side (`VirtQueue`) lays out buffers in a `GuestMemoryMmap`, and three
//! device sides read and complete them in that same memory: rust-vmm's virtio-queue (what
//! Firecracker and Cloud Hypervisor use; little-endian only, as virtio 1.0 is), ksim's
//! `DeviceQueue`, and [`spec`], a decoder written here from the virtio specification's split
//! virtqueue section that shares no code with the model (it is the only checker of a big-endian,
//! legacy guest layout). Several buffers are in flight, completed out of order; kicks (driver →
//! device: `avail_event` or `VRING_USED_F_NO_NOTIFY`) and interrupts (device → driver:
//! `used_event` or `VRING_AVAIL_F_NO_INTERRUPT`) are decided by each side and compared after
//! every step, with rounds where the device does not re-arm notifications and the driver
//! disables callbacks, so each decision goes both ways.

use balloon_sim::{DeviceQueue, Endian, RingMemory, VirtQueue, VringLayout, VRING_ALIGN, VRING_DESC_F_NEXT};
use virtio_queue::{Queue, QueueT};
use vm_memory::{Bytes, GuestAddress, GuestMemoryMmap};

const BYTES: usize = 0x4000;
const NUM: u16 = 8;

/// The one guest memory, owned by vm-memory; ksim's ring code reaches it through
/// [`RingMemory`], virtio-queue through vm-memory's own traits.
struct Shared(GuestMemoryMmap<()>);

impl RingMemory for Shared {
    fn read(&self, addr: u64, out: &mut [u8]) -> Option<()> {
        self.0.read_slice(out, GuestAddress(addr)).ok()
    }

    fn write(&self, addr: u64, data: &[u8]) -> Option<()> {
        self.0.write_slice(data, GuestAddress(addr)).ok()
    }
}

/// The split virtqueue as the virtio specification (2.7 "Split Virtqueues", legacy interface
/// 2.7.2 for the layout and guest-endian fields) describes it, decoded from raw bytes. Written
/// without ksim's `VringLayout`, `RingMemory` accessors or `vring_need_event`.
mod spec {
    use vm_memory::{Bytes, GuestAddress, GuestMemoryMmap};

    /// Where the three parts are: descriptor table at the base (16 bytes each), the driver
    /// area right after it (flags, idx, ring[num], used_event), the device area at the next
    /// 4096-byte boundary (flags, idx, ring[num] of {id u32, len u32}, avail_event).
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub struct Areas {
        pub desc: u64,
        pub avail: u64,
        pub used: u64,
        pub num: u16,
    }

    impl Areas {
        pub fn legacy(base: u64, num: u16) -> Areas {
            let avail = base + 16 * u64::from(num);
            let avail_end = avail + 2 + 2 + 2 * u64::from(num) + 2;
            Areas { desc: base, avail, used: avail_end.div_ceil(4096) * 4096, num }
        }
        pub fn used_event(&self) -> u64 {
            self.avail + 4 + 2 * u64::from(self.num)
        }
        pub fn avail_event(&self) -> u64 {
            self.used + 4 + 8 * u64::from(self.num)
        }
    }

    /// A little-endian or big-endian (legacy guest-endian) field decoder.
    #[derive(Clone, Copy, Debug)]
    pub struct Fields<'a> {
        pub mem: &'a GuestMemoryMmap<()>,
        pub big: bool,
    }

    impl Fields<'_> {
        fn bytes<const N: usize>(&self, addr: u64) -> [u8; N] {
            let mut b = [0u8; N];
            self.mem.read_slice(&mut b, GuestAddress(addr)).expect("in guest memory");
            if self.big {
                b.reverse();
            }
            b
        }
        pub fn u16(&self, addr: u64) -> u16 {
            u16::from_le_bytes(self.bytes(addr))
        }
        pub fn u32(&self, addr: u64) -> u32 {
            u32::from_le_bytes(self.bytes(addr))
        }
        pub fn u64(&self, addr: u64) -> u64 {
            u64::from_le_bytes(self.bytes(addr))
        }
        pub fn put_u16(&self, addr: u64, v: u16) {
            let mut b = v.to_le_bytes();
            if self.big {
                b.reverse();
            }
            self.mem.write_slice(&b, GuestAddress(addr)).expect("in guest memory");
        }
        pub fn put_u32(&self, addr: u64, v: u32) {
            let mut b = v.to_le_bytes();
            if self.big {
                b.reverse();
            }
            self.mem.write_slice(&b, GuestAddress(addr)).expect("in guest memory");
        }
    }

    /// 2.7.10.2 / 2.7.7.2: notify when the index moved past the event index since the last
    /// decision: `event` lies in the half-open window `[old, new)`, 16-bit wrapping.
    pub fn crosses(event: u16, new: u16, old: u16) -> bool {
        let window = new.wrapping_sub(old);
        let distance = event.wrapping_sub(old);
        distance < window
    }

    /// The spec's device: its next available index, its used index and the used index at its
    /// last interrupt decision.
    #[derive(Debug, Default)]
    pub struct Device {
        pub next_avail: u16,
        pub used: u16,
        pub signalled: u16,
    }

    impl Device {
        /// Reads the next chain: its head and `(addr, len, flags without NEXT)` per descriptor.
        pub fn pop(&mut self, f: Fields<'_>, a: Areas) -> (u16, Vec<(u64, u32, u16)>) {
            let slot = a.avail + 4 + 2 * u64::from(self.next_avail % a.num);
            let head = f.u16(slot);
            self.next_avail = self.next_avail.wrapping_add(1);
            let mut chain = Vec::new();
            let mut i = head;
            loop {
                let d = a.desc + 16 * u64::from(i);
                let flags = f.u16(d + 12);
                chain.push((f.u64(d), f.u32(d + 8), flags & !1));
                if flags & 1 == 0 || chain.len() > usize::from(a.num) {
                    break;
                }
                i = f.u16(d + 14);
            }
            (head, chain)
        }

        /// Writes the used element and then the used index.
        pub fn put_used(&mut self, f: Fields<'_>, a: Areas, head: u16, len: u32) {
            let elem = a.used + 4 + 8 * u64::from(self.used % a.num);
            f.put_u32(elem, u32::from(head));
            f.put_u32(elem + 4, len);
            self.used = self.used.wrapping_add(1);
            f.put_u16(a.used + 2, self.used);
        }

        /// Whether to interrupt for the buffers used since the last decision.
        pub fn interrupt(&mut self, f: Fields<'_>, a: Areas, event_idx: bool) -> bool {
            let (old, new) = (self.signalled, self.used);
            self.signalled = new;
            if old == new {
                return false;
            }
            if event_idx {
                crosses(f.u16(a.used_event()), new, old)
            } else {
                f.u16(a.avail) & 1 == 0
            }
        }
    }

    /// Whether a driver that moved avail idx from `old` to `new` must notify the device.
    pub fn kick(f: Fields<'_>, a: Areas, event_idx: bool, new: u16, old: u16) -> bool {
        if event_idx {
            crosses(f.u16(a.avail_event()), new, old)
        } else {
            f.u16(a.used) & 1 == 0
        }
    }
}

/// Counts of decisions: kicks true/false, interrupts true/false, and interrupt decisions where
/// virtio-queue differed as the specification allows.
#[derive(Debug, Default)]
struct Counts {
    kicks: [u64; 2],
    interrupts: [u64; 2],
    allowed_differences: u64,
}

fn vmm_queue(layout: &VringLayout, event_idx: bool) -> Queue {
    let mut vmm = Queue::new(NUM).expect("queue");
    vmm.set_size(NUM);
    vmm.set_desc_table_address(Some(layout.desc as u32), Some(0));
    vmm.set_avail_ring_address(Some(layout.avail as u32), Some(0));
    vmm.set_used_ring_address(Some(layout.used as u32), Some(0));
    vmm.set_event_idx(event_idx);
    vmm.set_ready(true);
    vmm
}

fn fields_of(mem: &Shared, endian: Endian) -> spec::Fields<'_> {
    spec::Fields { mem: &mem.0, big: endian == Endian::Big }
}

fn used_ring(mem: &Shared, layout: &VringLayout) -> Vec<u8> {
    let mut buf = vec![0; 4 + 8 * usize::from(NUM) + 2];
    mem.read(layout.used, &mut buf).expect("in range");
    buf
}

/// The three sides (two for a big-endian guest) on one memory for `rounds` rounds.
struct Bench {
    mem: Shared,
    layout: VringLayout,
    areas: spec::Areas,
    endian: Endian,
    event_idx: bool,
    driver: VirtQueue,
    ours: DeviceQueue,
    theirs: Option<Queue>,
    spec: spec::Device,
    counts: Counts,
    avail_seen: u16,
    /// Whether the 16-bit avail index wrapped.
    wrapped: bool,
}

impl Bench {
    fn new(endian: Endian, event_idx: bool) -> Bench {
        let mem = Shared(GuestMemoryMmap::<()>::from_ranges(&[(GuestAddress(0), BYTES)]).expect("memory"));
        let layout = VringLayout::new(0, NUM, VRING_ALIGN);
        let areas = spec::Areas::legacy(0, NUM);
        assert_eq!(
            (areas.desc, areas.avail, areas.used),
            (layout.desc, layout.avail, layout.used),
            "ksim's layout is the specification's"
        );
        Bench {
            driver: VirtQueue::new(&mem, 0, "check", layout, endian, event_idx),
            ours: DeviceQueue::new(layout, endian, event_idx),
            theirs: (endian == Endian::Little).then(|| vmm_queue(&layout, event_idx)),
            mem,
            layout,
            areas,
            endian,
            event_idx,
            spec: spec::Device::default(),
            counts: Counts::default(),
            avail_seen: 0,
            wrapped: false,
        }
    }

    fn fields(&self) -> spec::Fields<'_> {
        fields_of(&self.mem, self.endian)
    }

    /// The driver adds `in_flight` buffers and decides whether to kick; the specification,
    /// reading the device's `avail_event` (or NO_NOTIFY) from the shared memory, must agree.
    fn add_and_kick(&mut self, round: u64, in_flight: usize, token: &mut u64) {
        for i in 0..in_flight {
            let elements = 1 + (round as usize + i) % 2;
            let sg: Vec<(u64, u32)> =
                (0..elements).map(|e| (0x3000 + 64 * (4 * i + e) as u64, 4 * (1 + e as u32))).collect();
            self.driver.add_outbuf(&self.mem, &sg, *token).expect("room");
            *token += 1;
        }
        let old = self.avail_seen;
        let new = self.fields().u16(self.areas.avail + 2);
        assert_eq!(new, old.wrapping_add(in_flight as u16), "round {round}: avail idx as the spec reads it");
        self.wrapped |= new < old;
        self.avail_seen = new;
        let ours = self.driver.kick_prepare(&self.mem);
        let expected = spec::kick(self.fields(), self.areas, self.event_idx, new, old);
        assert_eq!(ours, expected, "round {round}: kick decisions differ (ksim {ours}, spec {expected})");
        self.counts.kicks[usize::from(!ours)] += 1;
    }

    /// Every device pops the same chains; on `rearm` rounds the device re-enables notifications
    /// (EVENT_IDX: `avail_event` = next avail; else NO_NOTIFY cleared), on others it leaves
    /// them as they were (EVENT_IDX: a stale `avail_event`; else NO_NOTIFY set), so the next
    /// kick is decided both ways. ksim's and virtio-queue's writes are compared.
    fn pop_all(&mut self, round: u64, in_flight: usize, rearm: bool) -> Vec<u16> {
        let event_before = self.fields().u16(self.areas.avail_event());
        let mut heads = Vec::new();
        for _ in 0..in_flight {
            let chain = self.ours.pop(&self.mem).expect("available").expect("well formed");
            let ours: Vec<(u64, u32, u16)> =
                chain.descriptors.iter().map(|d| (d.addr, d.len, d.flags & !VRING_DESC_F_NEXT)).collect();
            let (head, spec_chain) = self.spec.pop(fields_of(&self.mem, self.endian), self.areas);
            assert_eq!(
                (chain.head, &ours),
                (head, &spec_chain),
                "round {round}: chains differ from the spec's"
            );
            if let Some(vmm) = self.theirs.as_mut() {
                let vmm_chain = vmm.pop_descriptor_chain(&self.mem.0).expect("virtio-queue sees the buffer");
                let theirs: Vec<(u64, u32, u16)> = vmm_chain
                    .clone()
                    .map(|d| (d.addr().0, d.len(), d.flags() & !VRING_DESC_F_NEXT))
                    .collect();
                assert_eq!(
                    (vmm_chain.head_index(), &theirs),
                    (head, &ours),
                    "round {round}: virtio-queue differs"
                );
            }
            heads.push(head);
        }
        self.arm_notifications(round, rearm, event_before);
        heads
    }

    fn arm_notifications(&mut self, round: u64, rearm: bool, event_before: u16) {
        let f = fields_of(&self.mem, self.endian);
        if self.event_idx {
            let ours = f.u16(self.areas.avail_event());
            assert_eq!(ours, self.spec.next_avail, "round {round}: ksim's device avail_event");
            if !rearm {
                // This device pops without re-arming: the driver sees the old avail_event.
                f.put_u16(self.areas.avail_event(), event_before);
            } else if let Some(vmm) = self.theirs.as_mut() {
                f.put_u16(self.areas.avail_event(), event_before);
                vmm.enable_notification(&self.mem.0).expect("enable_notification");
                let theirs = f.u16(self.areas.avail_event());
                assert_eq!(theirs, ours, "round {round}: avail_event (ksim {ours}, virtio-queue {theirs})");
            }
        } else {
            self.ours.set_no_notify(&self.mem, !rearm);
            let ours = used_ring(&self.mem, &self.layout);
            if let Some(vmm) = self.theirs.as_mut() {
                if rearm {
                    vmm.enable_notification(&self.mem.0).expect("enable_notification");
                } else {
                    vmm.disable_notification(&self.mem.0).expect("disable_notification");
                }
                assert_eq!(used_ring(&self.mem, &self.layout), ours, "round {round}: used flags differ");
            }
        }
    }

    /// Completes `heads` in the order given; every device writes the same used element (the
    /// bytes compared) and decides the interrupt from the driver's `used_event` (or
    /// NO_INTERRUPT). virtio-queue ignores NO_INTERRUPT without EVENT_IDX (the device "SHOULD
    /// NOT" interrupt): the one allowed difference.
    fn complete(&mut self, round: u64, heads: &[u16], no_interrupt: bool) {
        for &head in heads {
            self.ours.push_used(&self.mem, head, 0);
            let ours_bytes = used_ring(&self.mem, &self.layout);
            self.spec.put_used(fields_of(&self.mem, self.endian), self.areas, head, 0);
            assert_eq!(used_ring(&self.mem, &self.layout), ours_bytes, "round {round}: spec's used element");
            let ours = self.ours.needs_interrupt(&self.mem);
            let expected = self.spec.interrupt(fields_of(&self.mem, self.endian), self.areas, self.event_idx);
            assert_eq!(
                ours, expected,
                "round {round}: interrupt decisions differ (ksim {ours}, spec {expected})"
            );
            self.counts.interrupts[usize::from(!ours)] += 1;
            if let Some(vmm) = self.theirs.as_mut() {
                vmm.add_used(&self.mem.0, head, 0).expect("add_used");
                assert_eq!(
                    used_ring(&self.mem, &self.layout),
                    ours_bytes,
                    "round {round}: virtio-queue's used"
                );
                let theirs = vmm.needs_notification(&self.mem.0).expect("needs_notification");
                if theirs != ours {
                    assert!(
                        !self.event_idx && no_interrupt && !ours && theirs,
                        "round {round}: interrupt decisions differ (ksim {ours}, virtio-queue {theirs})"
                    );
                    self.counts.allowed_differences += 1;
                }
            }
        }
    }

    fn run(mut self, rounds: u64) -> Counts {
        let mut token = 0;
        for round in 0..rounds {
            let in_flight = 1 + (round % 4) as usize;
            self.add_and_kick(round, in_flight, &mut token);
            let no_interrupt = round % 5 == 0;
            if no_interrupt {
                self.driver.disable_cb(&self.mem);
            }
            let mut heads = self.pop_all(round, in_flight, round % 3 != 2);
            // Out of order: the newest first on odd rounds.
            if round % 2 == 1 {
                heads.reverse();
            }
            self.complete(round, &heads, no_interrupt);
            for _ in 0..in_flight {
                assert!(self.driver.get_buf(&self.mem).is_some(), "round {round}: a used buffer comes back");
            }
            if no_interrupt {
                self.driver.enable_cb(&self.mem);
            }
        }
        assert_eq!(self.driver.num_free(), NUM, "every descriptor is free again");
        assert!(self.wrapped, "the 16-bit indices wrapped");
        self.counts
    }
}

fn both_ways(counts: &Counts, what: &str) {
    assert!(counts.kicks[0] > 0 && counts.kicks[1] > 0, "{what}: kicks decided both ways: {counts:?}");
    assert!(
        counts.interrupts[0] > 0 && counts.interrupts[1] > 0,
        "{what}: interrupts decided both ways: {counts:?}"
    );
}

#[test]
fn little_endian_ring_agrees_with_virtio_queue_and_the_spec_on_one_memory_through_index_wrap() {
    for event_idx in [true, false] {
        let counts = Bench::new(Endian::Little, event_idx).run(27_000);
        both_ways(&counts, &format!("little-endian, EVENT_IDX {event_idx}"));
        if event_idx {
            assert_eq!(counts.allowed_differences, 0, "with EVENT_IDX virtio-queue never differs");
        } else {
            assert!(counts.allowed_differences > 0, "NO_INTERRUPT rounds reached: {counts:?}");
        }
    }
}

#[test]
fn big_endian_legacy_ring_agrees_with_the_spec_decoder_through_index_wrap() {
    for event_idx in [true, false] {
        let bench = Bench::new(Endian::Big, event_idx);
        let counts = bench.run(27_000);
        both_ways(&counts, &format!("big-endian, EVENT_IDX {event_idx}"));
    }
    // The layout really is big-endian: after one buffer, avail idx reads 1 as big-endian only.
    let bench = Bench::new(Endian::Big, false);
    bench.driver.add_outbuf(&bench.mem, &[(0x3000, 4)], 0).expect("room");
    let mut raw = [0u8; 2];
    bench.mem.read(bench.layout.avail + 2, &mut raw).expect("in range");
    assert_eq!(raw, [0, 1], "avail idx is stored big-endian");
}
