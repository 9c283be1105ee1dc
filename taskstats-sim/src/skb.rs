//! The sk_buffs of the TASKSTATS family's replies and events: alloc_skb()'s tailroom
//! (net/core/skbuff.c), nlmsg_new()/genlmsg_new() and genlmsg_put() (include/net/netlink.h,
//! include/net/genetlink.h), nla_put()/nla_reserve()/nla_nest_start() failing with EMSGSIZE
//! when the tailroom is spent (lib/nlattr.c), skb_clone(), kfree_skb()/nlmsg_free(), and the
//! consumption by netlink_unicast(). Every skb is booked in [`SkbPool`] (checker state behind a
//! std mutex), so one that is neither freed nor consumed is a leak at teardown.
//! Left out: the skb's own struct and fragments (a reply is linear), and the acks
//! netlink_ack() allocates (its failure, ENOBUFS to the reader, is not injected).

use sim_core::fault::FaultSite;
use sim_core::mm::{kmalloc, Gfp};
use sim_core::{Cx, Errno, Violation, ViolationKind};

use crate::wire::{align4, nla_total_size, GENL_HDRLEN, NLA_HDRLEN, NLMSG_HDRLEN};

/// skb_clone()'s call site, which the fault plan may fail (made once: see `StaticSite`).
static SKB_CLONE_SITE: std::sync::LazyLock<FaultSite> =
    std::sync::LazyLock::new(|| FaultSite::call("taskstats:skb_clone"));

/// `sizeof(struct skb_shared_info)` on x86-64 in 3.x (17 fragments of 16 bytes plus 48), what
/// alloc_skb() puts after the data area.
const SKB_SHARED_INFO: usize = 320;
/// `PAGE_SIZE`.
const PAGE_SIZE: usize = 4096;
/// Most nests open at once in one message: ctrl_fill_info()'s ops or groups nest and one entry's
/// nest inside it (2), with room to spare.
const NESTS_MAX: usize = 4;

/// How alloc_skb() turns a requested size into tailroom in the era of a listing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct SkbGeometry {
    /// `SMP_CACHE_BYTES`, which `SKB_DATA_ALIGN()` rounds to: 128 for 2.6.19's x86-64
    /// GENERIC_CPU (X86_L1_CACHE_BYTES), 64 for 3.x.
    cache_bytes: usize,
    /// Whether alloc_skb() hands out ksize()'s slack as tailroom (3.2, "net: more accurate skb
    /// truesize"): the data and `skb_shared_info` come from a power-of-two kmalloc class.
    ksize: bool,
}

impl SkbGeometry {
    /// The geometry of the 2.6.19 listing (`v3` false) or of the 3.x listings.
    pub(crate) fn of_era(v3: bool) -> SkbGeometry {
        if v3 {
            SkbGeometry { cache_bytes: 64, ksize: true }
        } else {
            SkbGeometry { cache_bytes: 128, ksize: false }
        }
    }

    /// `SKB_DATA_ALIGN(size)`.
    fn data_align(&self, size: usize) -> usize {
        size.div_ceil(self.cache_bytes) * self.cache_bytes
    }

    /// The tailroom alloc_skb(`size`) leaves: `SKB_DATA_ALIGN(size)`, and from 3.2 what the
    /// kmalloc class holds beyond `skb_shared_info`.
    pub(crate) fn tailroom(&self, size: usize) -> usize {
        let data = self.data_align(size);
        if !self.ksize {
            return data;
        }
        let total = data + self.data_align(SKB_SHARED_INFO);
        total.next_power_of_two().max(32) - self.data_align(SKB_SHARED_INFO)
    }

    /// `NLMSG_GOODSIZE`: one page less the shared info, what ctrl_build_family_msg() asks
    /// nlmsg_new() for (as `NLMSG_DEFAULT_SIZE`, less the netlink header).
    pub(crate) fn nlmsg_goodsize(&self) -> usize {
        PAGE_SIZE - self.data_align(SKB_SHARED_INFO)
    }
}

/// `nlmsg_total_size(genlmsg_total_size(payload))`: what genlmsg_new(`payload`) asks
/// alloc_skb() for (3.x; 2.6.19 after "taskstats: fix sk_buff size calculation").
pub(crate) const fn genlmsg_new_size(payload: usize) -> usize {
    align4(NLMSG_HDRLEN + align4(GENL_HDRLEN + payload))
}

/// One sk_buff: its bytes from `data` to `tail`, and `end`. Not `Clone` and without `Drop`:
/// the code that holds one must hand it to [`SkbPool::kfree_skb`] or [`SkbPool::consume`],
/// or the pool reports the leak at teardown.
#[derive(Debug)]
#[must_use = "an skb must be freed or consumed"]
pub(crate) struct SkBuff {
    id: u64,
    data: Vec<u8>,
    end: usize,
    /// The open nests' starts, innermost last (`nests[..depth]`): in place, as the kernel keeps
    /// them in its callers' locals.
    nests: [usize; NESTS_MAX],
    depth: usize,
    /// Where the last message nlmsg_put() began (a dump puts several in one skb).
    msg_start: usize,
}

impl SkBuff {
    /// `skb_tailroom()`.
    pub(crate) fn tailroom(&self) -> usize {
        self.end - self.data.len()
    }

    /// `skb->len`.
    pub(crate) fn len(&self) -> usize {
        self.data.len()
    }

    /// The bytes so far.
    pub(crate) fn bytes(&self) -> &[u8] {
        &self.data
    }

    /// `skb_put()` after the caller checked the tailroom.
    fn put(&mut self, bytes: &[u8]) {
        debug_assert!(bytes.len() <= self.tailroom());
        self.data.extend_from_slice(bytes);
    }

    /// `genlmsg_put()` (`nlmsg_put()` + the genl header) of a message without flags: NULL (here
    /// EMSGSIZE) when `nlmsg_total_size(GENL_HDRLEN)` does not fit.
    pub(crate) fn genlmsg_put(
        &mut self,
        kind: u16,
        seq: u32,
        port: u32,
        cmd: u8,
        version: u8,
    ) -> Result<(), Errno> {
        self.genlmsg_put_flags(kind, seq, port, 0, cmd, version)
    }

    /// `genlmsg_put()` with `flags` in the netlink header (a dump's NLM_F_MULTI), a new message
    /// after those the skb already holds.
    pub(crate) fn genlmsg_put_flags(
        &mut self,
        kind: u16,
        seq: u32,
        port: u32,
        flags: u16,
        cmd: u8,
        version: u8,
    ) -> Result<(), Errno> {
        let at = self.nlmsg_put(kind, seq, port, flags, GENL_HDRLEN)?;
        self.data[at..at + 2].copy_from_slice(&[cmd, version]);
        Ok(())
    }

    /// `nlmsg_put()`: a new message's netlink header and `payload` zeroed bytes, EMSGSIZE (the
    /// kernel's NULL) when `nlmsg_total_size(payload)` does not fit. Returns the payload's offset;
    /// [`Self::genlmsg_end`] later writes this message's length.
    pub(crate) fn nlmsg_put(
        &mut self,
        kind: u16,
        seq: u32,
        port: u32,
        flags: u16,
        payload: usize,
    ) -> Result<usize, Errno> {
        let total = align4(NLMSG_HDRLEN + payload);
        if self.tailroom() < total {
            return Err(Errno::EMSGSIZE);
        }
        self.msg_start = self.data.len();
        let mut hdr = [0u8; NLMSG_HDRLEN];
        hdr[0..4].copy_from_slice(&((NLMSG_HDRLEN + payload) as u32).to_le_bytes());
        hdr[4..6].copy_from_slice(&kind.to_le_bytes());
        hdr[6..8].copy_from_slice(&flags.to_le_bytes());
        hdr[8..12].copy_from_slice(&seq.to_le_bytes());
        hdr[12..16].copy_from_slice(&port.to_le_bytes());
        self.put(&hdr);
        self.data.resize(self.msg_start + total, 0);
        Ok(self.msg_start + NLMSG_HDRLEN)
    }

    /// `nla_reserve()`: EMSGSIZE when `nla_total_size(len)` exceeds the tailroom; otherwise
    /// the header, `len` zeroed bytes and the padding. Returns the payload's offset.
    pub(crate) fn nla_reserve(&mut self, kind: u16, len: usize) -> Result<usize, Errno> {
        if self.tailroom() < nla_total_size(len) {
            return Err(Errno::EMSGSIZE);
        }
        let at = self.data.len() + NLA_HDRLEN;
        self.put(&((NLA_HDRLEN + len) as u16).to_le_bytes());
        self.put(&kind.to_le_bytes());
        self.data.resize(self.data.len() + align4(len), 0);
        Ok(at)
    }

    /// `nla_put()`: [`Self::nla_reserve`] and the payload copied in.
    pub(crate) fn nla_put(&mut self, kind: u16, payload: &[u8]) -> Result<(), Errno> {
        let at = self.nla_reserve(kind, payload.len())?;
        self.data[at..at + payload.len()].copy_from_slice(payload);
        Ok(())
    }

    /// The `len` payload bytes at `at` that [`Self::nla_reserve`] made, for the caller to fill.
    pub(crate) fn payload_mut(&mut self, at: usize, len: usize) -> &mut [u8] {
        &mut self.data[at..at + len]
    }

    /// `nla_put_u16()`.
    pub(crate) fn nla_put_u16(&mut self, kind: u16, value: u16) -> Result<(), Errno> {
        self.nla_put(kind, &value.to_le_bytes())
    }

    /// `nla_put_u32()`.
    pub(crate) fn nla_put_u32(&mut self, kind: u16, value: u32) -> Result<(), Errno> {
        self.nla_put(kind, &value.to_le_bytes())
    }

    /// `nla_nest_start()`: an empty attribute whose length nla_nest_end() fixes (EMSGSIZE, the
    /// kernel's NULL, when its header does not fit).
    pub(crate) fn nla_nest_start(&mut self, kind: u16) -> Result<(), Errno> {
        let at = self.data.len();
        assert!(self.depth < NESTS_MAX, "more than {NESTS_MAX} nests open");
        self.nla_reserve(kind, 0)?;
        self.nests[self.depth] = at;
        self.depth += 1;
        Ok(())
    }

    /// `nla_nest_end()`: writes the nest's length.
    pub(crate) fn nla_nest_end(&mut self) {
        assert!(self.depth > 0, "nla_nest_end without nla_nest_start");
        self.depth -= 1;
        let start = self.nests[self.depth];
        let len = (self.data.len() - start) as u16;
        self.data[start..start + 2].copy_from_slice(&len.to_le_bytes());
    }

    /// `genlmsg_end()` / `nlmsg_end()`: writes the last message's `nlmsg_len`.
    pub(crate) fn genlmsg_end(&mut self) {
        let (at, len) = (self.msg_start, (self.data.len() - self.msg_start) as u32);
        self.data[at..at + 4].copy_from_slice(&len.to_le_bytes());
    }
}

/// The checker's book of live skbs (std-synchronised, untraced): which allocation site each
/// live skb came from, so teardown can name a leak.
#[derive(Debug, Default)]
pub(crate) struct SkbPool {
    table: std::sync::Mutex<SkbTable>,
}

#[derive(Debug, Default)]
struct SkbTable {
    next: u64,
    /// Live skbs by id, ascending (ids only grow, so a new one goes last), with the site that
    /// allocated each. A list, not a map: a handful are live at once, and a map freed its node
    /// each time the last one went and made it again for the next skb.
    live: Vec<(u64, &'static str)>,
    allocated: u64,
}

impl SkbTable {
    /// Takes skb `id` off the live list; false when it is not there (freed or consumed before).
    fn remove(&mut self, id: u64) -> bool {
        match self.live.binary_search_by_key(&id, |&(live, _)| live) {
            Ok(at) => {
                self.live.remove(at);
                true
            }
            Err(_) => false,
        }
    }
}

impl SkbPool {
    fn table(&self) -> std::sync::MutexGuard<'_, SkbTable> {
        self.table.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn book(&self, site: &'static str, end: usize, data: Vec<u8>) -> SkBuff {
        let mut table = self.table();
        let id = table.next;
        table.next += 1;
        table.allocated += 1;
        table.live.push((id, site));
        SkBuff { id, data, end, nests: [0; NESTS_MAX], depth: 0, msg_start: 0 }
    }

    /// alloc_skb(`size`, `gfp`) for `site` (the caller, for leak reports): failslab at
    /// `skbuff_head_cache` (with `fault_size`, the size that site has always been charged),
    /// the sleeping checks of `gfp`, and `geometry`'s tailroom.
    pub(crate) fn alloc_skb(
        &self,
        cx: &Cx,
        geometry: SkbGeometry,
        size: usize,
        gfp: Gfp,
        site: &'static str,
        fault_size: u64,
    ) -> Result<SkBuff, Errno> {
        kmalloc(cx, gfp, "skbuff_head_cache", fault_size)?;
        let end = geometry.tailroom(size);
        Ok(self.book(site, end, Vec::with_capacity(end)))
    }

    /// skb_clone(`skb`, GFP_KERNEL): a new head sharing the (finished) data; fails where the
    /// fault plan fails the `taskstats:skb_clone` call site.
    pub(crate) fn skb_clone(&self, cx: &Cx, skb: &SkBuff) -> Option<SkBuff> {
        if cx.sim().should_fail(cx, &SKB_CLONE_SITE, skb.len() as u64) {
            return None;
        }
        Some(self.book("skb_clone", skb.end, skb.data.clone()))
    }

    fn release(&self, cx: &Cx, skb: &SkBuff, how: &str) {
        let known = self.table().remove(skb.id);
        if !known {
            cx.sim().report(
                Some(cx),
                Violation::new(
                    ViolationKind::DoubleFree,
                    format!("{how} of skb #{} that was already freed or consumed", skb.id),
                ),
            );
        }
    }

    /// kfree_skb() / nlmsg_free().
    pub(crate) fn kfree_skb(&self, cx: &Cx, skb: SkBuff) {
        self.release(cx, &skb, "kfree_skb");
    }

    /// netlink_unicast() takes the skb whatever happens next (queued or freed): its bytes.
    pub(crate) fn consume(&self, cx: &Cx, skb: SkBuff) -> Vec<u8> {
        self.release(cx, &skb, "netlink_unicast");
        skb.data
    }

    /// An skb its holder dropped without freeing (a seed's leak): it stays booked as live.
    pub(crate) fn leak(&self, skb: SkBuff) {
        let SkBuff { id, .. } = skb;
        debug_assert!(self.table().live.iter().any(|&(live, _)| live == id));
    }

    /// Live skbs and all allocations so far.
    #[cfg(test)]
    pub(crate) fn counts(&self) -> (usize, u64) {
        let table = self.table();
        (table.live.len(), table.allocated)
    }

    /// Teardown: an skb still live was neither freed nor consumed.
    pub(crate) fn teardown(&self, cx: &Cx) -> Result<(), Violation> {
        let table = self.table();
        let Some(&(id, site)) = table.live.first() else {
            return Ok(());
        };
        let violation = Violation::new(
            ViolationKind::Leak,
            format!(
                "{} sk_buff(s) never freed nor consumed; the first, #{id}, was allocated by {site}",
                table.live.len()
            ),
        );
        drop(table);
        cx.sim().report(Some(cx), violation.clone());
        Err(violation)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::{TASKSTATS_V1_SIZE, TASKSTATS_V8_SIZE};
    use sim_core::{Sim, SimConfig};

    #[test]
    fn tailroom_follows_each_eras_alloc_skb() {
        let old = SkbGeometry::of_era(false);
        let new = SkbGeometry::of_era(true);
        // 2.6.19, PID + stats + nest (v1): 88 bytes asked, 128 given.
        let v1 = nla_total_size(4) + nla_total_size(TASKSTATS_V1_SIZE) + nla_total_size(0);
        assert_eq!(old.tailroom(v1), 128);
        assert_eq!(old.tailroom(2 * v1), 256);
        // 3.x: genlmsg_new(344) asks 364; 384 aligned + 320 shared info lands in kmalloc-1024.
        let v8 = nla_total_size(4) + nla_total_size(TASKSTATS_V8_SIZE) + nla_total_size(0);
        assert_eq!(genlmsg_new_size(v8), 364);
        assert_eq!(new.tailroom(genlmsg_new_size(v8)), 1024 - 320);
        assert_eq!(new.nlmsg_goodsize(), 3776);
    }

    #[test]
    fn a_full_skb_refuses_attributes_with_emsgsize() {
        let sim = Sim::new(SimConfig::new(1));
        let cx = sim.cx("t", 0);
        let pool = SkbPool::default();
        let geometry = SkbGeometry::of_era(false);
        let mut skb = pool.alloc_skb(&cx, geometry, 100, Gfp::GFP_KERNEL, "test", 100).unwrap();
        assert_eq!(skb.tailroom(), 128);
        skb.genlmsg_put(0x11, 1, 2, 3, 1).unwrap();
        assert_eq!(skb.nla_put(1, &[0; 100]), Ok(()), "104 bytes fit in the 108 left");
        assert_eq!(skb.tailroom(), 4);
        assert_eq!(skb.nla_put_u32(2, 7), Err(Errno::EMSGSIZE), "8 bytes do not fit in 4");
        assert_eq!(skb.nla_nest_start(3), Ok(()), "an empty nest's header fits exactly");
        assert_eq!(skb.nla_nest_start(3), Err(Errno::EMSGSIZE));
        assert_eq!(skb.len(), 128);
        pool.kfree_skb(&cx, skb);
        assert_eq!(pool.counts(), (0, 1));
        assert!(pool.teardown(&cx).is_ok());
    }

    #[test]
    fn an_skb_neither_freed_nor_consumed_is_a_leak_at_teardown() {
        let sim = Sim::new(SimConfig::new(1));
        let cx = sim.cx("t", 0);
        let pool = SkbPool::default();
        let geometry = SkbGeometry::of_era(true);
        let sent = pool.alloc_skb(&cx, geometry, 64, Gfp::GFP_KERNEL, "send", 64).unwrap();
        let clone = pool.skb_clone(&cx, &sent).unwrap();
        assert_eq!(pool.consume(&cx, sent).len(), 0);
        drop(clone);
        let err = pool.teardown(&cx).unwrap_err();
        assert!(err.to_string().contains("allocated by skb_clone"), "{err}");
    }
}
