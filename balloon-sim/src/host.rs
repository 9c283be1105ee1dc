//! The balloon device in the host (a QEMU-like virtio-balloon backend): config space
//! (`num_pages`, `actual`, little-endian as the spec requires even for legacy devices), feature
//! offer, the inflate, deflate and stats queues consumed through [`DeviceQueue`], and the set of
//! PFNs the host holds. It flags what a real host would trip over: a PFN outside guest memory, a
//! stats tag it does not know, a malformed chain. Left out: the host's own memory accounting.

use std::collections::BTreeSet;
use std::sync::Mutex as StdMutex;

use sim_core::sync::Mutex;
use sim_core::WaitQueue;

use crate::guest::{Endian, GuestMemory};
use crate::virtio_ring::{Descriptor, DeviceQueue, VringLayout};

/// `VIRTIO_BALLOON_F_MUST_TELL_HOST`: tell the host before a deflated page is used.
pub(crate) const VIRTIO_BALLOON_F_MUST_TELL_HOST: u32 = 0;
/// `VIRTIO_BALLOON_F_STATS_VQ`: the stats queue exists.
pub(crate) const VIRTIO_BALLOON_F_STATS_VQ: u32 = 1;
/// `VIRTIO_BALLOON_F_DEFLATE_ON_OOM`: deflate when the guest runs out of memory.
pub(crate) const VIRTIO_BALLOON_F_DEFLATE_ON_OOM: u32 = 2;
/// `VIRTIO_F_VERSION_1`: a modern device (little-endian rings and buffers).
pub(crate) const VIRTIO_F_VERSION_1: u32 = 32;

/// `VIRTIO_BALLOON_PFN_SHIFT`: balloon PFNs are in 4 KiB units whatever the guest page size.
pub(crate) const VIRTIO_BALLOON_PFN_SHIFT: u32 = 12;

/// `VIRTIO_BALLOON_S_SWAP_IN` .. `VIRTIO_BALLOON_S_MEMTOT`: the six tags of Linux 4.4.
pub(crate) const VIRTIO_BALLOON_S_SWAP_IN: u16 = 0;
/// Pages swapped out (bytes).
pub(crate) const VIRTIO_BALLOON_S_SWAP_OUT: u16 = 1;
/// Major faults.
pub(crate) const VIRTIO_BALLOON_S_MAJFLT: u16 = 2;
/// Minor faults.
pub(crate) const VIRTIO_BALLOON_S_MINFLT: u16 = 3;
/// Free memory (bytes).
pub(crate) const VIRTIO_BALLOON_S_MEMFREE: u16 = 4;
/// Total memory (bytes).
pub(crate) const VIRTIO_BALLOON_S_MEMTOT: u16 = 5;
/// `VIRTIO_BALLOON_S_NR`.
pub(crate) const VIRTIO_BALLOON_S_NR: usize = 6;
/// `sizeof(struct virtio_balloon_stat)`: a packed u16 tag and u64 value.
pub(crate) const VIRTIO_BALLOON_STAT_SIZE: usize = 10;

/// Queue indices.
pub(crate) const INFLATE_VQ: usize = 0;
/// The deflate queue.
pub(crate) const DEFLATE_VQ: usize = 1;
/// The stats queue.
pub(crate) const STATS_VQ: usize = 2;

/// Offsets in `struct virtio_balloon_config`.
pub(crate) const CONFIG_NUM_PAGES: usize = 0;
/// `actual`.
pub(crate) const CONFIG_ACTUAL: usize = 4;

/// One stats report as the host decoded it.
pub(crate) type StatsReport = Vec<(u16, u64)>;

/// A set of balloon PFNs below the guest's limit, one bit each: the host's held set is asked
/// for every page on the hot path, where a tree's allocation and pointer chasing cost more than
/// the work it records.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct PfnBits {
    words: Vec<u64>,
    count: usize,
}

impl PfnBits {
    /// An empty set for PFNs below `limit`.
    pub(crate) fn new(limit: u64) -> PfnBits {
        PfnBits { words: vec![0; limit.div_ceil(64) as usize], count: 0 }
    }

    /// Adds `pfn` (the set grows past its limit if it must); whether it was new.
    pub(crate) fn insert(&mut self, pfn: u32) -> bool {
        let (word, bit) = (pfn as usize / 64, 1u64 << (pfn % 64));
        if word >= self.words.len() {
            self.words.resize(word + 1, 0);
        }
        let fresh = self.words[word] & bit == 0;
        self.words[word] |= bit;
        self.count += usize::from(fresh);
        fresh
    }

    /// Removes `pfn`; whether it was there.
    pub(crate) fn remove(&mut self, pfn: u32) -> bool {
        let Some(word) = self.words.get_mut(pfn as usize / 64) else {
            return false;
        };
        let bit = 1u64 << (pfn % 64);
        let was = *word & bit != 0;
        *word &= !bit;
        self.count -= usize::from(was);
        was
    }

    /// Whether `pfn` is in the set.
    pub(crate) fn contains(&self, pfn: u32) -> bool {
        self.words.get(pfn as usize / 64).is_some_and(|word| word & (1u64 << (pfn % 64)) != 0)
    }

    /// How many PFNs the set holds.
    pub(crate) fn len(&self) -> usize {
        self.count
    }

    /// Empties the set.
    pub(crate) fn clear(&mut self) {
        self.words.iter_mut().for_each(|word| *word = 0);
        self.count = 0;
    }

    /// Whether any PFN in `start..start + len` is in the set: a word at a time (a 64 KiB page's
    /// sixteen pieces are one mask).
    pub(crate) fn any_in(&self, start: u32, len: u32) -> bool {
        let (mut pfn, end) = (u64::from(start), u64::from(start) + u64::from(len));
        while pfn < end {
            let (index, bit) = ((pfn / 64) as usize, pfn % 64);
            let Some(&word) = self.words.get(index) else {
                return false;
            };
            let span = (64 - bit).min(end - pfn);
            let mask = if span == 64 { u64::MAX } else { ((1u64 << span) - 1) << bit };
            if word & mask != 0 {
                return true;
            }
            pfn += span;
        }
        false
    }

    /// The first PFN (ascending) in this set and not in `other`.
    pub(crate) fn first_not_in(&self, other: &PfnBits) -> Option<u32> {
        self.words.iter().enumerate().find_map(|(index, &word)| {
            let rest = word & !other.words.get(index).copied().unwrap_or(0);
            (rest != 0).then(|| (index * 64) as u32 + rest.trailing_zeros())
        })
    }

    /// The first PFN (ascending) in both this set and `other`.
    pub(crate) fn first_in(&self, other: &PfnBits) -> Option<u32> {
        self.words.iter().zip(&other.words).enumerate().find_map(|(index, (&word, &theirs))| {
            let both = word & theirs;
            (both != 0).then(|| (index * 64) as u32 + both.trailing_zeros())
        })
    }

    /// The PFNs in ascending order (a word's set bits found by counting zeros, not by testing
    /// all sixty-four).
    pub(crate) fn iter(&self) -> impl Iterator<Item = u32> + '_ {
        self.words.iter().enumerate().flat_map(|(index, &word)| {
            let mut rest = word;
            std::iter::from_fn(move || {
                (rest != 0).then(|| {
                    let bit = rest.trailing_zeros();
                    rest &= rest - 1;
                    (index * 64) as u32 + bit
                })
            })
        })
    }

    /// Every PFN `pfn * per + i` (`i < per`) of each `pfn` in this set: a guest page's 4 KiB
    /// pieces. With one piece a page, a copy.
    pub(crate) fn pieces(&self, per: u32) -> PfnBits {
        if per == 1 {
            return self.clone();
        }
        let mut out = PfnBits::new(self.words.len() as u64 * 64 * u64::from(per));
        for pfn in self.iter() {
            if per < 64 && 64 % per == 0 {
                // A page's pieces are one mask inside one word (16 for 64 KiB pages); the
                // set's PFNs are distinct, so their masks are too.
                let first = u64::from(pfn) * u64::from(per);
                out.words[(first / 64) as usize] |= ((1u64 << per) - 1) << (first % 64);
                out.count += per as usize;
            } else {
                for i in 0..per {
                    out.insert(pfn * per + i);
                }
            }
        }
        out
    }
}

#[derive(Debug, Default)]
struct HostState {
    acked: u64,
    config: [u8; 8],
    queues: [Option<DeviceQueue>; 3],
    pending: [bool; 3],
    held: PfnBits,
    stats_head: Option<u16>,
    stats_last: Option<StatsReport>,
    stats_received: u64,
    findings: Vec<String>,
    inflated_pfns: u64,
    deflated_pfns: u64,
}

/// The device. See the module documentation.
#[derive(Debug)]
pub struct BalloonHost {
    offered: u64,
    guest_endian: Endian,
    /// Balloon PFNs (4 KiB units) in guest memory: anything at or above is out of range.
    pfn_limit: u64,
    state: Mutex<HostState>,
    /// Where a host thread waits for kicks.
    pub kicks: WaitQueue,
    /// Checker bookkeeping (std-locked, so it adds no interleaving): the balloon PFNs inflated or
    /// deflated since the checker last cleared it, so an incremental invariant check looks only
    /// at the pages whose held state may have changed.
    changed: StdMutex<PfnBits>,
}

impl BalloonHost {
    /// A device offering `offered` feature bits to a guest with `guest_bytes` of memory.
    pub fn new(offered: u64, guest_endian: Endian, guest_bytes: u64) -> BalloonHost {
        let pfn_limit = guest_bytes >> VIRTIO_BALLOON_PFN_SHIFT;
        BalloonHost {
            offered,
            guest_endian,
            pfn_limit,
            state: Mutex::new(HostState { held: PfnBits::new(pfn_limit), ..HostState::default() }),
            kicks: WaitQueue::new("host kicks"),
            changed: StdMutex::new(PfnBits::new(pfn_limit)),
        }
    }

    /// The features the device offers.
    pub fn offered(&self) -> u64 {
        self.offered
    }

    /// Records the features the driver accepted (`FEATURES_OK`).
    pub fn ack_features(&self, acked: u64) {
        self.state.lock().acked = acked & self.offered;
    }

    fn endian(&self, acked: u64) -> Endian {
        if acked & (1 << VIRTIO_F_VERSION_1) != 0 {
            Endian::Little
        } else {
            self.guest_endian
        }
    }

    /// Config space bytes at `offset` (the transport's `get`).
    pub fn config_read(&self, offset: usize) -> [u8; 4] {
        let s = self.state.lock();
        let mut out = [0; 4];
        if let Some(bytes) = s.config.get(offset..offset + 4) {
            out.copy_from_slice(bytes);
        }
        out
    }

    /// Config space write from the driver (the transport's `set`).
    pub fn config_write(&self, offset: usize, bytes: [u8; 4]) {
        let mut s = self.state.lock();
        if let Some(dst) = s.config.get_mut(offset..offset + 4) {
            dst.copy_from_slice(&bytes);
        }
    }

    /// The host changes its target (`num_pages`, always little-endian).
    pub fn set_num_pages(&self, num_pages: u32) {
        self.config_write(CONFIG_NUM_PAGES, num_pages.to_le_bytes());
    }

    /// `num_pages` as the host reads it.
    pub fn num_pages(&self) -> u32 {
        u32::from_le_bytes(self.config_read(CONFIG_NUM_PAGES))
    }

    /// `actual` as the host reads it.
    pub fn actual(&self) -> u32 {
        u32::from_le_bytes(self.config_read(CONFIG_ACTUAL))
    }

    /// The driver set up queue `index` at `layout`.
    pub fn setup_queue(&self, index: usize, layout: VringLayout, event_idx: bool) {
        let mut s = self.state.lock();
        let endian = self.endian(s.acked);
        if let Some(slot) = s.queues.get_mut(index) {
            *slot = Some(DeviceQueue::new(layout, endian, event_idx));
        }
        if index == STATS_VQ {
            s.stats_head = None;
        }
    }

    /// Device reset: queues gone, config `actual` kept as QEMU keeps it; held PFNs stay held
    /// (the balloon's pages are the guest's problem to give back before reset).
    pub fn reset_queues(&self) {
        let mut s = self.state.lock();
        s.queues = Default::default();
        s.pending = [false; 3];
        s.stats_head = None;
    }

    /// The machine was powered off across S4 and the guest's image restored: a fresh device
    /// knows nothing of the pages the old one held (the management layer's target stays).
    pub fn forget_held(&self) {
        let mut s = self.state.lock();
        let mut changed = self.change_log();
        s.held.iter().for_each(|pfn| {
            changed.insert(pfn);
        });
        s.held.clear();
    }

    /// The change log, locked (a panic elsewhere cannot leave it inconsistent: each change is one
    /// bit).
    fn change_log(&self) -> std::sync::MutexGuard<'_, PfnBits> {
        self.changed.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// A kick on queue `index` (the notify register): a host thread processes it.
    pub fn kick(&self, index: usize) {
        if let Some(p) = self.state.lock().pending.get_mut(index) {
            *p = true;
        }
        self.kicks.wake_up();
    }

    /// Queues kicked and not processed yet.
    pub fn pending(&self) -> Vec<usize> {
        let mut s = self.state.lock();
        let out = (0..3).filter(|&i| s.pending[i]).collect();
        s.pending = [false; 3];
        out
    }

    /// Whether any kick waits.
    pub fn has_pending(&self) -> bool {
        self.state.lock().pending.iter().any(|&p| p)
    }

    /// Consumes what the driver made available on queue `index`. Returns whether the driver
    /// wants an interrupt.
    pub fn process(&self, mem: &GuestMemory, index: usize) -> bool {
        let mut s = self.state.lock();
        let endian = self.endian(s.acked);
        let Some(mut queue) = s.queues.get_mut(index).and_then(Option::take) else {
            return false;
        };
        while let Some(chain) = queue.pop(mem) {
            let chain = match chain {
                Ok(chain) => chain,
                Err(what) => {
                    s.findings.push(format!("queue {index}: {what}"));
                    break;
                }
            };
            if index == STATS_VQ {
                let mut report = Vec::new();
                for desc in &chain.descriptors {
                    let count = desc.len as usize / VIRTIO_BALLOON_STAT_SIZE;
                    for i in 0..count {
                        let at = desc.addr + (i * VIRTIO_BALLOON_STAT_SIZE) as u64;
                        let tag = mem.read_u16(at, endian);
                        let val = mem.read_u64(at + 2, endian);
                        if tag as usize >= VIRTIO_BALLOON_S_NR {
                            s.findings.push(format!("stats: unknown tag {tag:#x} (value {val:#x})"));
                        }
                        report.push((tag, val));
                    }
                }
                s.stats_last = Some(report);
                s.stats_received += 1;
                // Hold the buffer: returning it is how the host asks for the next report.
                s.stats_head = Some(chain.head);
                continue;
            }
            self.take_pfns(&mut s, mem, index, endian, &chain.descriptors);
            queue.push_used(mem, chain.head, 0);
        }
        let interrupt = queue.needs_interrupt(mem);
        s.queues[index] = Some(queue);
        interrupt
    }

    /// The PFNs of one inflate or deflate chain: held or given back, each noted in the
    /// checker's change log (one std lock per chain).
    fn take_pfns(
        &self,
        s: &mut HostState,
        mem: &GuestMemory,
        index: usize,
        endian: Endian,
        descriptors: &[Descriptor],
    ) {
        let mut changed = self.change_log();
        for desc in descriptors {
            for i in 0..desc.len / 4 {
                let pfn = mem.read_u32(desc.addr + 4 * u64::from(i), endian);
                if u64::from(pfn) >= self.pfn_limit {
                    s.findings.push(format!("queue {index}: pfn {pfn:#x} is outside guest memory"));
                    continue;
                }
                changed.insert(pfn);
                if index == INFLATE_VQ {
                    s.held.insert(pfn);
                    s.inflated_pfns += 1;
                } else {
                    s.held.remove(pfn);
                    s.deflated_pfns += 1;
                }
            }
        }
    }

    /// The host asks for stats by returning the buffer it holds. Returns whether the driver
    /// wants an interrupt for it (false also when the host holds no buffer).
    pub fn request_stats(&self, mem: &GuestMemory) -> bool {
        let mut s = self.state.lock();
        let Some(head) = s.stats_head.take() else {
            return false;
        };
        let Some(mut queue) = s.queues[STATS_VQ].take() else {
            return false;
        };
        queue.push_used(mem, head, 0);
        let interrupt = queue.needs_interrupt(mem);
        s.queues[STATS_VQ] = Some(queue);
        interrupt
    }

    /// Whether the host holds balloon PFN `pfn`.
    pub fn holds(&self, pfn: u32) -> bool {
        self.state.lock().held.contains(pfn)
    }

    /// Every balloon PFN the host holds.
    pub fn held(&self) -> BTreeSet<u32> {
        self.state.lock().held.iter().collect()
    }

    /// The held set itself, for the invariant checks (one lock and a copy of a few words).
    pub(crate) fn held_bits(&self) -> PfnBits {
        self.state.lock().held.clone()
    }

    /// The balloon PFNs inflated or deflated since the last [`BalloonHost::clear_changed`]
    /// (checker bookkeeping).
    pub(crate) fn changed(&self) -> PfnBits {
        self.change_log().clone()
    }

    /// Starts a new change log (the checker does, before each operation).
    pub(crate) fn clear_changed(&self) {
        self.change_log().clear();
    }

    /// Count of held PFNs.
    pub fn held_count(&self) -> usize {
        self.state.lock().held.len()
    }

    /// The last stats report and how many were received.
    pub fn stats(&self) -> (Option<StatsReport>, u64) {
        let s = self.state.lock();
        (s.stats_last.clone(), s.stats_received)
    }

    /// What the host tripped over, oldest first.
    pub fn findings(&self) -> Vec<String> {
        self.state.lock().findings.clone()
    }

    /// What the host tripped over, joined, or `None` when nothing (the invariant check's question:
    /// one lock, no copy when the answer is no).
    pub(crate) fn findings_joined(&self) -> Option<String> {
        let s = self.state.lock();
        (!s.findings.is_empty()).then(|| s.findings.join("; "))
    }

    /// The first tag of the last stats report that 4.4 does not know, if any (one lock, no copy
    /// of the report).
    pub(crate) fn unknown_stats_tag(&self) -> Option<u16> {
        let s = self.state.lock();
        s.stats_last.as_ref()?.iter().map(|&(tag, _)| tag).find(|&tag| tag as usize >= VIRTIO_BALLOON_S_NR)
    }

    /// PFNs inflated and deflated so far.
    pub fn traffic(&self) -> (u64, u64) {
        let s = self.state.lock();
        (s.inflated_pfns, s.deflated_pfns)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::PfnBits;

    /// A scattered set over three words, and the same as a tree.
    fn sample(seed: u32) -> (PfnBits, BTreeSet<u32>) {
        let mut bits = PfnBits::new(192);
        let mut tree = BTreeSet::new();
        for i in 0..60u32 {
            let pfn = (i.wrapping_mul(2_654_435_761).wrapping_add(seed) >> 7) % 192;
            assert_eq!(bits.insert(pfn), tree.insert(pfn), "insert {pfn}");
        }
        (bits, tree)
    }

    #[test]
    fn iteration_and_word_queries_match_a_tree() {
        for seed in 0..20 {
            let (bits, tree) = sample(seed);
            let (other, other_tree) = sample(seed + 100);
            assert_eq!(bits.iter().collect::<Vec<_>>(), tree.iter().copied().collect::<Vec<_>>());
            assert_eq!(bits.len(), tree.len());
            assert_eq!(bits.first_in(&other), tree.intersection(&other_tree).next().copied(), "seed {seed}");
            assert_eq!(
                bits.first_not_in(&other),
                tree.difference(&other_tree).next().copied(),
                "seed {seed}"
            );
            for start in 0..200 {
                for len in [1, 3, 16, 64, 70] {
                    let expect = (start..start + len).any(|pfn| tree.contains(&pfn));
                    assert_eq!(bits.any_in(start, len), expect, "seed {seed} any_in({start}, {len})");
                }
            }
        }
    }

    #[test]
    fn pieces_cover_each_page_of_the_set() {
        let (bits, tree) = sample(7);
        for per in [1, 2, 16, 3] {
            let expect: Vec<u32> =
                tree.iter().flat_map(|&pfn| (0..per).map(move |i| pfn * per + i)).collect();
            let pieces = bits.pieces(per);
            assert_eq!(pieces.iter().collect::<Vec<_>>(), expect, "{per} pieces a page");
            assert_eq!(pieces.len(), expect.len(), "{per} pieces a page: the count");
        }
    }
}
