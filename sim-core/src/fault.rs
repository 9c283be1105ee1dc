//! Fault injection in the manner of the kernel's fault_attr (lib/fault-inject.c, failslab,
//! fail_page_alloc, fail_nth): fail the nth call, every interval-th call, with a probability, at
//! most N times, after a space budget, filtered by call site or cache.
//!
//! Randomness comes from the `Sim`'s RNG, so a fault plan and a seed always fail the same calls.
//! Left out: the task filter, stack-trace filters and debugfs.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};

/// What kind of call may fail.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum FaultKind {
    /// A slab allocation (`kmem_cache_alloc`, `kmalloc`): failslab.
    Slab,
    /// A page allocation (`alloc_page`): fail_page_alloc.
    Page,
    /// Any other fallible call a model exposes (a netlink clone, a host that drops a buffer).
    Call,
}

/// One call site that may fail: its kind and name (the cache name, or a model's call-site name
/// such as `"taskstats:genlmsg_new"`).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct FaultSite {
    /// The kind of call.
    pub kind: FaultKind,
    /// The cache or call-site name.
    pub name: String,
}

impl FaultSite {
    /// A slab allocation from cache `name`.
    pub fn slab(name: &str) -> FaultSite {
        FaultSite { kind: FaultKind::Slab, name: name.to_string() }
    }

    /// A page allocation at `name`.
    pub fn page(name: &str) -> FaultSite {
        FaultSite { kind: FaultKind::Page, name: name.to_string() }
    }

    /// Another fallible call named `name`.
    pub fn call(name: &str) -> FaultSite {
        FaultSite { kind: FaultKind::Call, name: name.to_string() }
    }
}

impl fmt::Display for FaultSite {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.as_ref().fmt(f)
    }
}

impl FaultSite {
    /// The site's kind and name, borrowed.
    pub(crate) fn as_ref(&self) -> SiteRef<'_> {
        SiteRef { kind: self.kind, name: &self.name }
    }
}

/// A fault site's kind and name, borrowed: what a plan matches a call against, so a call site
/// that names its site with a `&str` (`kmalloc`, `kmem_cache_alloc`'s precheck) owns no
/// `FaultSite`, whose name is an allocated `String`, per call. Prints as [`FaultSite`] does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct SiteRef<'a> {
    pub(crate) kind: FaultKind,
    pub(crate) name: &'a str,
}

impl SiteRef<'_> {
    /// What the site's text (`slab:taskstats`) has before its name: its kind and a colon. The
    /// trace hashes the text from the two parts without making it ([`crate::Cx::trace_fault`]).
    pub(crate) fn prefix(self) -> &'static str {
        match self.kind {
            FaultKind::Slab => "slab:",
            FaultKind::Page => "page:",
            FaultKind::Call => "call:",
        }
    }
}

impl fmt::Display for SiteRef<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}", self.prefix(), self.name)
    }
}

/// One `struct fault_attr`, with its counters.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FaultAttr {
    /// Only calls of this kind (None: any kind).
    pub kind: Option<FaultKind>,
    /// Only calls whose site name contains this (None: any site).
    pub site: Option<String>,
    /// Fail exactly the nth matching call, counting from 1 (`fail_nth`); the other fields are
    /// ignored when set.
    pub nth: Option<u64>,
    /// Percent chance a candidate call fails (`probability`), 0..=100.
    pub probability: u32,
    /// Only every interval-th matching call is a candidate (`interval`, 1 = every call).
    pub interval: u64,
    /// At most this many failures (`times`; None is the kernel's -1, unlimited).
    pub times: Option<u64>,
    /// Bytes that must be allocated before failures start (`space`).
    pub space: u64,
    /// Matching calls seen so far.
    pub count: u64,
    /// Failures injected so far.
    pub failed: u64,
}

impl FaultAttr {
    /// Fails every matching call (probability 100, unlimited), until narrowed by the builders.
    pub fn always() -> FaultAttr {
        FaultAttr {
            kind: None,
            site: None,
            nth: None,
            probability: 100,
            interval: 1,
            times: None,
            space: 0,
            count: 0,
            failed: 0,
        }
    }

    /// Fails a matching call with `percent` probability.
    pub fn probability(percent: u32) -> FaultAttr {
        FaultAttr { probability: percent.min(100), ..FaultAttr::always() }
    }

    /// Fails only the nth matching call.
    pub fn nth(n: u64) -> FaultAttr {
        FaultAttr { nth: Some(n.max(1)), ..FaultAttr::always() }
    }

    /// Restricts to calls of `kind`.
    pub fn kind(mut self, kind: FaultKind) -> FaultAttr {
        self.kind = Some(kind);
        self
    }

    /// Restricts to sites whose name contains `site`.
    pub fn site(mut self, site: &str) -> FaultAttr {
        self.site = Some(site.to_string());
        self
    }

    /// Makes only every `interval`-th call a candidate.
    pub fn interval(mut self, interval: u64) -> FaultAttr {
        self.interval = interval.max(1);
        self
    }

    /// Fails at most `times` calls.
    pub fn times(mut self, times: u64) -> FaultAttr {
        self.times = Some(times);
        self
    }

    /// Lets `bytes` be allocated before failing.
    pub fn space(mut self, bytes: u64) -> FaultAttr {
        self.space = bytes;
        self
    }

    /// Whether only the probability decides this attribute's calls: no `nth`, no `times`, no
    /// `space`, an interval of 1. A plan's attribute keeps this as its calls are decided (they
    /// change only `count` and `failed` then), so it is found once, when the plan is set.
    fn is_plain(&self) -> bool {
        self.nth.is_none() && self.times.is_none() && self.space == 0 && self.interval <= 1
    }

    /// [`FaultAttr::should_fail`] for a plain attribute ([`FaultAttr::is_plain`]): the same
    /// count, draw (made only for a probability strictly between 0 and 100) and failure,
    /// without testing the fields a plain attribute leaves unset.
    #[inline(always)]
    fn should_fail_plain(&mut self, mut percent_chance: impl FnMut(u32) -> bool) -> bool {
        self.count += 1;
        let fail = self.probability >= 100 || self.probability != 0 && percent_chance(self.probability);
        self.failed += u64::from(fail);
        fail
    }

    fn matches(&self, site: SiteRef<'_>) -> bool {
        self.kind.is_none_or(|kind| kind == site.kind)
            && self.site.as_deref().is_none_or(|name| contains(site.name, name))
    }

    /// `should_fail()` for one matching call. `percent_chance(p)` is true with probability
    /// `p`/100, drawn from the `Sim`'s RNG.
    fn should_fail(&mut self, size: u64, mut percent_chance: impl FnMut(u32) -> bool) -> bool {
        self.count += 1;
        if let Some(nth) = self.nth {
            let fail = self.count == nth;
            self.failed += u64::from(fail);
            return fail;
        }
        if self.times == Some(0) {
            return false;
        }
        if self.space > size {
            self.space -= size;
            return false;
        }
        if self.interval > 1 && !self.count.is_multiple_of(self.interval) {
            return false;
        }
        if self.probability < 100 && (self.probability == 0 || !percent_chance(self.probability)) {
            return false;
        }
        if let Some(times) = self.times.as_mut() {
            *times -= 1;
        }
        self.failed += 1;
        true
    }
}

/// `text.contains(part)` by a plain scan of `text`'s bytes for `part`'s first byte, comparing the
/// rest only there: a site name and a filter are a few bytes each, and the standard library's
/// searcher cost more to set up per call than the whole scan (about 250 instructions an
/// allocation in the mbcache campaign, callgrind). Byte substrings of UTF-8 text are its `str`
/// substrings, so the answer is `contains`'s.
fn contains(text: &str, part: &str) -> bool {
    let (text, part) = (text.as_bytes(), part.as_bytes());
    let Some((&first, rest)) = part.split_first() else {
        return true;
    };
    text.windows(part.len()).any(|window| window[0] == first && &window[1..] == rest)
}

/// The faults a `Sim` injects: a list of attributes; a call fails when any matching one says so.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FaultPlan {
    /// The attributes, consulted in order.
    pub attrs: Vec<FaultAttr>,
}

impl FaultPlan {
    /// No faults.
    pub fn none() -> FaultPlan {
        FaultPlan::default()
    }

    /// A plan of one attribute.
    pub fn with(attr: FaultAttr) -> FaultPlan {
        FaultPlan { attrs: vec![attr] }
    }

    /// Adds an attribute.
    pub fn and(mut self, attr: FaultAttr) -> FaultPlan {
        self.attrs.push(attr);
        self
    }

    /// Whether the plan can fail nothing.
    pub fn is_empty(&self) -> bool {
        self.attrs.is_empty()
    }

    /// Failures injected so far, over every attribute.
    pub fn failed(&self) -> u64 {
        self.attrs.iter().map(|a| a.failed).sum()
    }

    /// `should_fail()` for a call at `site` (its kind and name), `size` bytes: every matching
    /// attribute counts the call; it fails when one of them says so.
    pub(crate) fn should_fail_at(
        &mut self,
        site: SiteRef<'_>,
        size: u64,
        mut percent_chance: impl FnMut(u32) -> bool,
    ) -> bool {
        let mut fail = false;
        for attr in self.attrs.iter_mut().filter(|a| a.matches(site)) {
            // Every matching attribute counts the call, as independent fault_attrs would.
            fail |= attr.should_fail(size, &mut percent_chance);
        }
        fail
    }
}

/// For each kind (by [`FaultKind`] number), the attributes whose kind filter admits it, one bit
/// each by index, with the sites' matches memoised ([`SiteMasks`]): what
/// [`FaultPlan::should_fail_masked`] visits. None for a plan of more than 64 attributes (then
/// every call visits them all, [`FaultPlan::should_fail_at`]).
pub(crate) type KindMasks = Option<SiteMasks>;

/// Site names a thread remembers for a plan's filters ([`SitesKept`]): pairs of slots, a name
/// in either slot of the pair its text picks ([`memo_slot`]). Binary core25-3's 16 slots, one
/// per name, left mbcache 2.6's two `kmalloc:` sites, called by turns, in one slot: 2,420 of
/// 6,507 calls scanned.
const SITES_MEMO: usize = 64;

/// The longest site name [`SiteMasks`] remembers (a longer one is matched every call).
const SITE_TEXT: usize = 30;

/// One remembered site: its kind, its name's text, and the attributes it matches.
#[derive(Clone, Copy)]
struct SiteMemo {
    /// The kind's number, [`SiteMemo::EMPTY`] when the slot holds none.
    kind: u8,
    len: u8,
    text: [u8; SITE_TEXT],
    mask: u64,
}

impl SiteMemo {
    const EMPTY: u8 = u8::MAX;
    const NONE: SiteMemo = SiteMemo { kind: SiteMemo::EMPTY, len: 0, text: [0; SITE_TEXT], mask: 0 };

    /// Whether this slot remembers `site`. Always inlined: asked of both slots of a pair, it
    /// became a call of its own (binary core25-4: +39 K instructions in taskstats).
    #[inline(always)]
    fn is(&self, site: SiteRef<'_>) -> bool {
        self.kind == site.kind as u8
            && crate::trace::same_bytes(&self.text[..usize::from(self.len)], site.name.as_bytes())
    }
}

/// A plan's attributes by the calls they match, made when the plan is set: per kind, the
/// attributes its kind filter admits, and which of those have a site filter. A call of a kind
/// whose attributes have none is matched by its kind alone; for the others, the thread
/// remembers, for the site names met (by text, never by address: a name's storage may be
/// freed and reused), the attributes whose site filter the name passes ([`SitesKept`]), so a
/// site's `contains` scans are made once per name and thread instead of once per call. It is
/// checker bookkeeping beside the plan (under the same lock): it decides nothing the
/// attributes' filters do not.
#[derive(Clone, Copy, Debug)]
pub(crate) struct SiteMasks {
    kinds: [u64; 3],
    filtered: u64,
    /// The attributes decided by their probability alone ([`FaultAttr::is_plain`]), one bit
    /// each by index: [`FaultAttr::should_fail_plain`] decides them.
    plain: u64,
    /// The id of the thread's [`SitesKept`] that remembers sites for this plan's filters (0:
    /// none, when no attribute has a site filter).
    kept: u64,
}

/// The sites met on this thread under a plan's filters (each attribute's kind and site
/// filter, in order: all a site's mask depends on), so that every plan set on the thread with
/// the same filters (a campaign sets the same plan in each case's new world) knows them.
/// Checker bookkeeping: plain `std`, never seen by loom or shuttle; it only spares `contains`
/// scans.
struct SitesKept {
    filters: Vec<(Option<FaultKind>, Option<String>)>,
    /// Unique in the process ([`NEXT_KEPT`]): masks made on another thread, or for other
    /// filters, never read or write here (they scan).
    id: u64,
    memo: [SiteMemo; SITES_MEMO],
}

impl SitesKept {
    fn same_filters(&self, plan: &FaultPlan) -> bool {
        self.filters.len() == plan.attrs.len()
            && self
                .filters
                .iter()
                .zip(&plan.attrs)
                .all(|((kind, site), attr)| *kind == attr.kind && site.as_deref() == attr.site.as_deref())
    }
}

/// The next [`SitesKept`] id.
static NEXT_KEPT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);

std::thread_local! {
    static SITES_KEPT: std::cell::RefCell<SitesKept> = const {
        std::cell::RefCell::new(SitesKept { filters: Vec::new(), id: 0, memo: [SiteMemo::NONE; SITES_MEMO] })
    };
}

impl SiteMasks {
    /// The masks of a plan with no attributes.
    pub(crate) const NONE: SiteMasks = SiteMasks { kinds: [0; 3], filtered: 0, plain: 0, kept: 0 };

    /// The attributes only their probability decides ([`FaultAttr::is_plain`]), by index.
    #[inline]
    pub(crate) fn plain(&self) -> u64 {
        self.plain
    }

    /// The attributes of `plan` (whose masks these are) that a call at `site` matches, by
    /// index: its kind's, less those whose site filter the name fails.
    #[inline]
    pub(crate) fn matching(&self, plan: &FaultPlan, site: SiteRef<'_>) -> u64 {
        let kind = self.kinds[site.kind as usize];
        if kind & self.filtered == 0 {
            return kind;
        }
        SITES_KEPT.with(|kept| {
            let mut kept = kept.borrow_mut();
            if kept.id != self.kept {
                return self.scan(plan, kind, site);
            }
            let at = memo_slot(site);
            if kept.memo[at].is(site) {
                return kept.memo[at].mask;
            }
            if kept.memo[at ^ 1].is(site) {
                return kept.memo[at ^ 1].mask;
            }
            let mask = self.scan(plan, kind, site);
            if site.name.len() <= SITE_TEXT {
                // The newest name first, the one it displaces to the pair's other slot.
                let mut text = [0; SITE_TEXT];
                text[..site.name.len()].copy_from_slice(site.name.as_bytes());
                kept.memo[at ^ 1] = kept.memo[at];
                kept.memo[at] = SiteMemo { kind: site.kind as u8, len: site.name.len() as u8, text, mask };
            }
            mask
        })
    }

    /// [`SiteMasks::matching`] by the filters: of the attributes in `kind` (the call's kind's),
    /// those with no site filter and those whose filter the name passes.
    #[inline(never)]
    fn scan(&self, plan: &FaultPlan, kind: u64, site: SiteRef<'_>) -> u64 {
        let mut mask = kind & !self.filtered;
        let mut bits = kind & self.filtered;
        while bits != 0 {
            let index = bits.trailing_zeros() as usize;
            bits &= bits - 1;
            if plan.attrs[index].site.as_deref().is_none_or(|name| contains(site.name, name)) {
                mask |= 1 << index;
            }
        }
        mask
    }

    /// Has these masks, made for `plan`, use the thread's [`SitesKept`] for the plan's
    /// filters: the one there, when it was made for the same filters, else a new one.
    fn adopt_kept(&mut self, plan: &FaultPlan) {
        SITES_KEPT.with(|kept| {
            let mut kept = kept.borrow_mut();
            if !kept.same_filters(plan) {
                kept.filters = plan.attrs.iter().map(|attr| (attr.kind, attr.site.clone())).collect();
                kept.id = NEXT_KEPT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                kept.memo = [SiteMemo::NONE; SITES_MEMO];
            }
            self.kept = kept.id;
        });
    }

    /// Whether the thread remembers `site` for these masks' filters.
    #[cfg(test)]
    fn knows(&self, site: SiteRef<'_>) -> bool {
        SITES_KEPT.with(|kept| {
            let kept = kept.borrow();
            let at = memo_slot(site);
            kept.id == self.kept && (kept.memo[at].is(site) || kept.memo[at ^ 1].is(site))
        })
    }
}

/// Where [`SitesKept`] looks for `site` first (then in the other slot of its pair): its kind,
/// length and first, middle and last bytes, mixed.
#[inline]
fn memo_slot(site: SiteRef<'_>) -> usize {
    let bytes = site.name.as_bytes();
    let n = bytes.len();
    let bytes_key = match n {
        0 => 0,
        _ => u64::from(bytes[0]) | u64::from(bytes[n / 2]) << 8 | u64::from(bytes[n - 1]) << 16,
    };
    let key = bytes_key | (n as u64) << 24 | (site.kind as u64) << 40;
    let mixed = key.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    ((mixed ^ mixed >> 29) >> (u64::BITS - SITES_MEMO.ilog2())) as usize
}

/// [`KindMasks`] of `plan`, made when the plan is set.
pub(crate) fn kind_masks(plan: &FaultPlan) -> KindMasks {
    if plan.attrs.len() > 64 {
        return None;
    }
    let mut masks = SiteMasks::NONE;
    for (index, attr) in plan.attrs.iter().enumerate() {
        for (kind, mask) in
            [FaultKind::Slab, FaultKind::Page, FaultKind::Call].into_iter().zip(&mut masks.kinds)
        {
            if attr.kind.is_none_or(|wanted| wanted == kind) {
                *mask |= 1 << index;
            }
        }
        if attr.site.is_some() {
            masks.filtered |= 1 << index;
        }
        if attr.is_plain() {
            masks.plain |= 1 << index;
        }
    }
    if masks.filtered != 0 {
        masks.adopt_kept(plan);
    }
    Some(masks)
}

impl FaultPlan {
    /// [`FaultPlan::should_fail_at`] visiting only the attributes in `mask` (those the call
    /// matches, [`SiteMasks::matching`]): the same attributes count the call, in the same
    /// order, so the same draws are made; no filter is tested again. The attributes in `plain`
    /// ([`SiteMasks::plain`]) are decided by [`FaultAttr::should_fail_plain`].
    pub(crate) fn should_fail_masked(
        &mut self,
        mask: u64,
        plain: u64,
        size: u64,
        mut percent_chance: impl FnMut(u32) -> bool,
    ) -> bool {
        let mut fail = false;
        let mut bits = mask;
        while bits != 0 {
            let at = bits.trailing_zeros();
            let attr = &mut self.attrs[at as usize];
            bits &= bits - 1;
            fail |= match plain >> at & 1 {
                1 => attr.should_fail_plain(&mut percent_chance),
                _ => attr.should_fail(size, &mut percent_chance),
            };
        }
        fail
    }
}

/// Attributes whose counters [`FaultWatch`] can mirror: those at indexes below it.
pub(crate) const WATCHED_MAX: usize = 8;

/// Copies of some attributes' counters (`count`, `failed`), kept outside the world's book lock
/// so a checker that reads them around every operation ([`crate::Sim::fault_counters`]) loads
/// them instead of taking the lock. An attribute is mirrored once a reader asked for it
/// (`watched`): the fault path stores its counters after each call that visits it, under the
/// book lock, so a plan nobody watches costs the fault path one test. Checker bookkeeping:
/// `std` atomics, never a loom or shuttle object, never traced.
#[derive(Debug, Default)]
pub(crate) struct FaultWatch {
    /// The attributes mirrored, one bit each by index; written under the book lock.
    watched: AtomicU8,
    counts: [AtomicU64; WATCHED_MAX],
    failed: [AtomicU64; WATCHED_MAX],
}

impl FaultWatch {
    /// Attribute `attr`'s mirrored counters, if it is watched.
    #[inline]
    pub(crate) fn read(&self, attr: usize) -> Option<(u64, u64)> {
        let watched = attr < WATCHED_MAX && self.watched.load(Ordering::Acquire) & 1 << attr != 0;
        watched
            .then(|| (self.counts[attr].load(Ordering::Acquire), self.failed[attr].load(Ordering::Acquire)))
    }

    /// Stores the counters of `plan`'s attributes in `mask` (watched ones, below
    /// [`WATCHED_MAX`]). Called under the book lock.
    #[inline(never)]
    pub(crate) fn mirror(&self, plan: &FaultPlan, mut mask: u64) {
        while mask != 0 {
            let at = mask.trailing_zeros() as usize;
            mask &= mask - 1;
            if let Some(attr) = plan.attrs.get(at) {
                self.counts[at].store(attr.count, Ordering::Release);
                self.failed[at].store(attr.failed, Ordering::Release);
            }
        }
    }

    /// Starts mirroring attribute `attr` of `plan` (if it has one below [`WATCHED_MAX`]) with
    /// its counters as they stand; `watched` is the book's copy of the watched bits. Under the
    /// book lock.
    pub(crate) fn watch(&self, plan: &FaultPlan, watched: &mut u64, attr: usize) {
        if attr < WATCHED_MAX && attr < plan.attrs.len() {
            self.mirror(plan, 1 << attr);
            *watched |= 1 << attr;
            self.watched.store(*watched as u8, Ordering::Release);
        }
    }

    /// Forgets every watched attribute (a new plan). Under the book lock.
    pub(crate) fn clear(&self, watched: &mut u64) {
        *watched = 0;
        self.watched.store(0, Ordering::Release);
    }
}

/// The kinds of call some attribute of `plan` matches, one bit each ([`kind_bit`]): a call of
/// another kind matches no attribute, so it counts nothing and draws nothing.
pub(crate) fn kinds_matched(plan: &FaultPlan) -> u8 {
    let all = kind_bit(FaultKind::Slab) | kind_bit(FaultKind::Page) | kind_bit(FaultKind::Call);
    plan.attrs.iter().fold(0, |kinds, attr| kinds | attr.kind.map_or(all, kind_bit))
}

/// `kind`'s bit in [`kinds_matched`].
#[inline]
pub(crate) fn kind_bit(kind: FaultKind) -> u8 {
    1 << kind as u8
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(plan: &mut FaultPlan, site: &FaultSite, calls: usize) -> Vec<bool> {
        let mut state = 0x9e37_79b9_7f4a_7c15_u64;
        (0..calls)
            .map(|_| {
                plan.should_fail_at(site.as_ref(), 64, |percent| {
                    state = state.wrapping_mul(6364136223846793005).wrapping_add(1);
                    (state >> 33) % 100 < u64::from(percent)
                })
            })
            .collect()
    }

    /// The plain scan answers as `str::contains` for every part of a site name (empty, the
    /// whole name, longer than it), for parts that repeat a first byte, and for text past ASCII.
    #[test]
    fn a_site_filter_matches_as_str_contains_does() {
        let texts = ["mbcache_entry", "ext2_xattr", "aab", "", "bäume:täume", "skb_clone"];
        let parts =
            ["", "a", "ab", "aab", "aaab", "xattr", "_x", "entry!", "mbcache_entry", "ä", "täu", "clone"];
        for text in texts {
            for part in
                parts.iter().copied().chain((0..=text.len()).filter_map(|end| text.get(1.min(end)..end)))
            {
                assert_eq!(contains(text, part), text.contains(part), "{text:?} contains {part:?}");
            }
        }
    }

    /// The per-kind masks and the remembered sites visit the attributes the whole plan's loop
    /// matches, in its order: the same decisions, counters and draws call by call. The sites
    /// include names that share a memo slot's inputs (kind, length, first and last bytes) and
    /// so take turns in one slot, the same name in storage of its own at each call (a memo
    /// that matched by address, or that kept a name's mask after another took its slot,
    /// decides otherwise), and a name too long to remember.
    #[test]
    fn the_site_masks_decide_as_the_whole_plan_does() {
        let plan = FaultPlan::with(FaultAttr::probability(40).kind(FaultKind::Slab))
            .and(FaultAttr::probability(30).site("sk"))
            .and(FaultAttr::nth(3).kind(FaultKind::Call).site("skb_clone"))
            .and(FaultAttr::always().kind(FaultKind::Page).interval(2).times(2))
            .and(FaultAttr::probability(50).kind(FaultKind::Slab).site("xattr"))
            .and(FaultAttr::probability(0).kind(FaultKind::Page))
            .and(FaultAttr::always().kind(FaultKind::Call).site("clone"));
        let sites = [
            "skbuff_head_cache",
            "skb_clone",
            "sxb_clone",
            "ext2_xattr",
            "ext2_yattr",
            "copy_process",
            "pages",
            "a_site_name_longer_than_thirty_bytes_with_sk",
        ];
        let kinds = [FaultKind::Slab, FaultKind::Page, FaultKind::Call];
        let (mut whole, mut masked) = (plan.clone(), plan);
        let masks = kind_masks(&masked).expect("seven attributes");
        assert_eq!(masks.plain(), 0b111_0011, "the attributes only a probability decides");
        let (mut draws_whole, mut draws_masked) = (0u32, 0u32);
        for call in 0..240 {
            let name: String = sites[call % sites.len()].to_string();
            let site = SiteRef { kind: kinds[call / sites.len() % 3], name: &name };
            let chance = |draws: &mut u32, percent: u32| {
                *draws += 1;
                (*draws * 37 + percent) % 100 < percent
            };
            let a = whole.should_fail_at(site, 8, |p| chance(&mut draws_whole, p));
            let matching = masks.matching(&masked, site);
            let b = masked.should_fail_masked(matching, masks.plain, 8, |p| chance(&mut draws_masked, p));
            assert_eq!(a, b, "call {call} at {site}");
        }
        assert_eq!((whole, draws_whole), (masked, draws_masked));
        assert!(kind_masks(&FaultPlan { attrs: vec![FaultAttr::always(); 65] }).is_none());
    }

    /// Names the memo's slot cannot tell apart by its inputs (kind, length, first, middle and
    /// last bytes) share a pair of slots: each call still gets its own name's attributes, two
    /// such names taken by turns are both remembered (a memo of one slot a name, as binary
    /// core25-3's, forgets each at the other's call), and a third displaces the older.
    #[test]
    fn names_sharing_a_memo_slot_keep_their_own_matches() {
        let plan = FaultPlan::with(FaultAttr::always().site("2_x"));
        let masks = kind_masks(&plan).expect("one attribute");
        let site = |name| SiteRef { kind: FaultKind::Slab, name };
        let (hit, miss, third) = (site("ext2_xattr"), site("ext3_xattr"), site("ext4_xattr"));
        assert_eq!(memo_slot(hit), memo_slot(miss));
        assert_eq!(memo_slot(hit), memo_slot(third));
        for _ in 0..3 {
            assert_eq!(masks.matching(&plan, hit), 1);
            assert_eq!(masks.matching(&plan, miss), 0);
        }
        assert!(masks.knows(hit) && masks.knows(miss));
        assert_eq!(masks.matching(&plan, third), 0);
        assert!(masks.knows(third) && masks.knows(miss) && !masks.knows(hit));
        assert_eq!(masks.matching(&plan, hit), 1);
        assert_eq!(masks.matching(&plan, SiteRef { kind: FaultKind::Page, name: "ext2_xattr" }), 1);
    }

    /// A plan set after another with the same filters (a campaign's next case) knows the sites
    /// the first met on this thread, counters and probabilities aside; a plan whose filters
    /// differ in one site filter knows none and decides by its own filters (a memo kept by
    /// kinds alone, or by the attributes' count, answers `ext2_xattr` with the first plan's
    /// mask here); and the first plan's masks then neither read nor write the thread's memo.
    #[test]
    fn a_plan_with_the_same_filters_knows_the_sites_met() {
        let filters = |site: &str, percent: u32| {
            FaultPlan::with(FaultAttr::probability(percent).kind(FaultKind::Slab).site(site))
                .and(FaultAttr::probability(percent).kind(FaultKind::Call))
        };
        let xattr = SiteRef { kind: FaultKind::Slab, name: "ext2_xattr" };
        let first = filters("xattr", 10);
        let masks = kind_masks(&first).expect("two attributes");
        assert_eq!(masks.matching(&first, xattr), 1);
        assert!(masks.knows(xattr));
        let same = filters("xattr", 90);
        assert!(kind_masks(&same).expect("two attributes").knows(xattr), "the second plan knows ext2_xattr");
        let other = filters("entry", 10);
        let fresh = kind_masks(&other).expect("two attributes");
        assert!(!fresh.knows(xattr));
        assert_eq!(fresh.matching(&other, xattr), 0);
        let entry = SiteRef { kind: FaultKind::Slab, name: "mb_cache_entry" };
        assert_eq!(fresh.matching(&other, entry), 1);
        let block = SiteRef { kind: FaultKind::Slab, name: "xattr_block" };
        assert_eq!(masks.matching(&first, block), 1, "the first plan's masks scan");
        assert!(!masks.knows(xattr) && !fresh.knows(block) && fresh.knows(entry));
    }

    /// A plan's matched kinds: every kind for an attribute of any kind, none for no plan.
    #[test]
    fn kinds_matched_are_the_attributes_kinds() {
        assert_eq!(kinds_matched(&FaultPlan::none()), 0);
        let slab = FaultPlan::with(FaultAttr::always().kind(FaultKind::Slab));
        assert_eq!(kinds_matched(&slab), kind_bit(FaultKind::Slab));
        let any = slab.clone().and(FaultAttr::nth(1));
        assert_eq!(kinds_matched(&any), 0b111);
        let calls = slab.and(FaultAttr::always().kind(FaultKind::Call));
        assert_eq!(kinds_matched(&calls) & kind_bit(FaultKind::Page), 0);
    }

    #[test]
    fn nth_fails_exactly_that_call() {
        let mut plan = FaultPlan::with(FaultAttr::nth(3));
        let got = run(&mut plan, &FaultSite::slab("x"), 6);
        assert_eq!(got, [false, false, true, false, false, false]);
    }

    #[test]
    fn interval_and_times_limit_failures() {
        let mut plan = FaultPlan::with(FaultAttr::always().interval(2).times(2));
        let got = run(&mut plan, &FaultSite::slab("x"), 8);
        assert_eq!(got, [false, true, false, true, false, false, false, false]);
        assert_eq!(plan.failed(), 2);
    }

    #[test]
    fn space_is_spent_before_failing() {
        let mut plan = FaultPlan::with(FaultAttr::always().space(100));
        let got = run(&mut plan, &FaultSite::slab("x"), 3);
        assert_eq!(got, [false, true, true], "64 bytes fit in 100, the next 64 do not");
    }

    #[test]
    fn site_and_kind_filters_select_calls() {
        let mut plan = FaultPlan::with(FaultAttr::always().kind(FaultKind::Slab).site("mbcache"));
        assert_eq!(run(&mut plan, &FaultSite::slab("mbcache_entry"), 1), [true]);
        assert_eq!(run(&mut plan, &FaultSite::slab("taskstats"), 1), [false]);
        assert_eq!(run(&mut plan, &FaultSite::page("mbcache"), 1), [false]);
    }

    #[test]
    fn probability_zero_never_fails_and_fifty_sometimes_does() {
        let mut never = FaultPlan::with(FaultAttr::probability(0));
        assert!(run(&mut never, &FaultSite::call("c"), 200).iter().all(|f| !f));
        let mut half = FaultPlan::with(FaultAttr::probability(50));
        let failed = run(&mut half, &FaultSite::call("c"), 400).iter().filter(|f| **f).count();
        assert!((100..300).contains(&failed), "about half of 400 calls fail, got {failed}");
    }
}
