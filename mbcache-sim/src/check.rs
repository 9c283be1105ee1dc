//! The harness face of the model: [`MbcacheSubject`] (the model driven by one `Op` enum),
//! [`MbcacheModel`] (the reference: BTreeMaps and a VecDeque, no sim-core locks) and the
//! [`Catalog`] the CLI reads (presets, fixes, zoo, scenarios).
//!
//! One op is one call of fs/mbcache.c's API by some task; handles returned stay held across ops
//! (in `handles`) until an op releases them, as a filesystem holds an xattr block's entry while it
//! works on it. Targets are picked by index modulo what exists, so any op applies in any state.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use proptest::prelude::*;
use proptest::strategy::BoxedStrategy;
use serde::{Deserialize, Serialize};
use sim_core::check::{Catalog, Reference, ScenarioInfo, Subject, ZooEntry};
use sim_core::fault::{FaultAttr, FaultKind, FaultPlan};
use sim_core::fixes::{FixTable, FixTableOf};
use sim_core::mm::Gfp;
use sim_core::trace::TraceMode;
use sim_core::{Cx, Errno, Sim, SimConfig, Violation};

use crate::cache::{CacheRef, FreeOp};
use crate::entry::Handle;
use crate::fixes::{self, Fixes, MbcacheFixes};
use crate::hash::hash_long;
use crate::registry::{
    bdev_address, MbError, Registry, Waits, ENTRY_HEADER_SIZE, ENTRY_INDEX_SIZE, MB_CACHE_WRITER,
};

/// Cache names the subject creates caches under, in turn. All contain "xattr", the site the
/// allocation fault plan targets.
pub const CACHE_NAMES: [&str; 4] = ["ext2_xattr", "ext3_xattr", "ext2_xattr_b", "ext3_xattr_b"];

/// Everything a case needs besides the seed and the ops.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MbcacheConfig {
    /// The preset the fixes came from.
    pub preset: String,
    /// The fixes.
    pub fixes: Fixes,
    /// Block devices (1..=8).
    pub devices: u32,
    /// Block numbers are 0..blocks.
    pub blocks: u32,
    /// Index keys are 0..keys (few keys: much sharing).
    pub keys: u32,
    /// Most caches alive at once.
    pub caches_max: usize,
    /// Largest `bucket_bits` a create asks for (small tables reach shared buckets).
    pub bucket_bits_max: u32,
    /// Percent chance an entry allocation (`kmem_cache_alloc` of an `*xattr*` cache) fails.
    pub alloc_fault_percent: u32,
}

impl MbcacheConfig {
    /// The default sizes with `fixes`.
    pub fn new(preset: &str, fixes: Fixes) -> MbcacheConfig {
        MbcacheConfig {
            preset: preset.to_string(),
            fixes,
            devices: 2,
            blocks: 6,
            keys: 3,
            caches_max: 3,
            bucket_bits_max: 2,
            alloc_fault_percent: 10,
        }
    }
}

/// One call of the mbcache API. Small integers pick targets modulo what exists.
#[allow(missing_docs)]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Op {
    /// `mb_cache_create`; `undersized` passes an entry size one byte too small.
    Create { indexes: u8, bucket_bits: u8, undersized: bool, free_op: bool },
    /// Releases the cache's held handles (as an unmount would), then `mb_cache_destroy`.
    Destroy { cache: u8 },
    /// `mb_cache_entry_alloc`.
    Alloc { cache: u8 },
    /// `mb_cache_entry_insert` through a held exclusive handle.
    Insert { handle: u8, device: u8, block: u16, keys: [u8; 2] },
    /// `mb_cache_entry_release`.
    Release { handle: u8 },
    /// `mb_cache_entry_get`.
    Get { cache: u8, device: u8, block: u16 },
    /// `mb_cache_entry_find_first`.
    FindFirst { cache: u8, index: u8, device: u8, key: u8 },
    /// `mb_cache_entry_find_next` on a held handle from a find, continuing its walk (same
    /// index, device and key, as the API asks).
    FindNext { handle: u8 },
    /// `mb_cache_entry_dup`.
    Dup { handle: u8 },
    /// `mb_cache_entry_takeout`.
    Takeout { handle: u8 },
    /// `mb_cache_entry_free` (with `exclusive-get`: of an exclusive handle, as the fixed API asks).
    Free { handle: u8 },
    /// `mb_cache_shrink` of a device.
    Shrink { cache: u8, device: u8 },
    /// The shrinker callback; `nofs` calls it from a GFP_NOFS reclaim (free callbacks refuse).
    ShrinkFn { nr_to_scan: u8, nofs: bool },
}

/// What one op returned, and the state the reference checks after it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Outcome {
    /// The call's result.
    pub result: OpResult,
    /// The LRU's entry serials, head first.
    pub lru: Vec<u64>,
    /// Each live cache's `c_entry_count`, in creation order.
    pub counts: Vec<i32>,
}

/// A call's result.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum OpResult {
    /// Nothing to apply the op to.
    Skipped,
    /// An errno.
    Errno(Errno),
    /// Done, nothing returned.
    Done,
    /// A cache was created.
    Created,
    /// `mb_cache_destroy`'s orphan count.
    Destroyed { orphans: i32 },
    /// An entry (its serial) or none.
    Entry(Option<u64>),
    /// The shrinker's count.
    Count(i32),
    /// The call would sleep (exclusive-get, one thread).
    WouldBlock,
    /// An oops or memory misuse, by violation kind.
    Oops(String),
}

#[derive(Clone, Debug)]
struct Held {
    handle: Handle,
    writer: bool,
    walk: Option<(u32, u32, u32)>,
}

/// Picks `pick` modulo `len` among the positions `eligible` allows, in order.
fn pick_among(pick: u8, eligible: &[usize]) -> Option<usize> {
    if eligible.is_empty() {
        None
    } else {
        Some(eligible[pick as usize % eligible.len()])
    }
}

fn writer_positions(writers: impl Iterator<Item = bool>, only_writers: bool) -> Vec<usize> {
    writers.enumerate().filter(|(_, writer)| *writer || !only_writers).map(|(at, _)| at).collect()
}

/// The model as the checkers drive it.
#[derive(Debug)]
pub struct MbcacheSubject {
    config: MbcacheConfig,
    registry: Registry,
    cx: Cx,
    caches: Vec<CacheRef>,
    created: usize,
    handles: Vec<Held>,
    marks: BTreeSet<&'static str>,
}

impl MbcacheSubject {
    /// The registry.
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    fn result_of(&self, result: Result<OpResult, MbError>) -> OpResult {
        match result {
            Ok(result) => result,
            Err(MbError::Errno(errno)) => OpResult::Errno(errno),
            Err(MbError::WouldBlock) => OpResult::WouldBlock,
            Err(MbError::Oops(violation)) => OpResult::Oops(violation.kind.to_string()),
        }
    }

    fn push_handle(
        &mut self,
        handle: Option<Handle>,
        writer: bool,
        walk: Option<(u32, u32, u32)>,
    ) -> OpResult {
        match handle {
            Some(handle) => {
                let serial = handle.entry_id();
                self.handles.push(Held { handle, writer, walk });
                OpResult::Entry(Some(serial))
            }
            None => OpResult::Entry(None),
        }
    }

    fn cache_at(&self, pick: u8) -> Option<CacheRef> {
        let positions: Vec<usize> = (0..self.caches.len()).collect();
        pick_among(pick, &positions).map(|at| self.caches[at])
    }

    fn apply_inner(&mut self, op: &Op) -> Result<OpResult, MbError> {
        let cx = &self.cx;
        let registry = &self.registry;
        let exclusive = self.config.fixes.on(crate::fixes::EXCLUSIVE_GET);
        match *op {
            Op::Create { indexes, bucket_bits, undersized, free_op } => {
                if self.caches.len() >= self.config.caches_max {
                    return Ok(OpResult::Skipped);
                }
                let indexes = u32::from(indexes) % 3;
                let bits = u32::from(bucket_bits) % (self.config.bucket_bits_max + 1);
                let size = ENTRY_HEADER_SIZE + u64::from(indexes) * ENTRY_INDEX_SIZE - u64::from(undersized);
                let name = CACHE_NAMES[self.created % CACHE_NAMES.len()];
                let free_op = free_op.then_some(FreeOp { fails_without_fs: true });
                match registry.create(cx, name, free_op, size, indexes, bits) {
                    Ok(cache) => {
                        self.created += 1;
                        self.caches.push(cache);
                        Ok(OpResult::Created)
                    }
                    Err(errno) => Ok(OpResult::Errno(errno)),
                }
            }
            Op::Destroy { cache } => {
                let positions: Vec<usize> = (0..self.caches.len()).collect();
                let Some(at) = pick_among(cache, &positions) else { return Ok(OpResult::Skipped) };
                let cache = self.caches[at];
                let mut kept = Vec::new();
                for held in std::mem::take(&mut self.handles) {
                    if held.handle.entry_ref().cache == cache.0 {
                        registry.release(cx, held.handle)?;
                    } else {
                        kept.push(held);
                    }
                }
                self.handles = kept;
                let destroyed = registry.destroy(cx, cache)?;
                self.caches.remove(at);
                self.marks.insert("cache destroyed");
                Ok(OpResult::Destroyed { orphans: destroyed.orphans })
            }
            Op::Alloc { cache } => {
                let Some(cache) = self.cache_at(cache) else { return Ok(OpResult::Skipped) };
                let handle = registry.alloc(cx, cache)?;
                Ok(self.push_handle(Some(handle), true, None))
            }
            Op::Insert { handle, device, block, keys } => {
                let eligible = writer_positions(self.handles.iter().map(|h| h.writer), true);
                let Some(at) = pick_among(handle, &eligible) else { return Ok(OpResult::Skipped) };
                let held = &self.handles[at];
                let indexes = registry.indexes_count(cx, CacheRef(held.handle.entry_ref().cache))?;
                let keys: Vec<u32> =
                    keys[..indexes as usize].iter().map(|k| u32::from(*k) % self.config.keys).collect();
                let bdev = bdev_address(u32::from(device) % self.config.devices);
                let block = u64::from(block) % u64::from(self.config.blocks);
                registry.insert(cx, &held.handle, bdev, block, &keys)?;
                self.marks.insert("entry inserted");
                Ok(OpResult::Done)
            }
            Op::Release { handle } => {
                let positions: Vec<usize> = (0..self.handles.len()).collect();
                let Some(at) = pick_among(handle, &positions) else { return Ok(OpResult::Skipped) };
                let held = self.handles.remove(at);
                registry.release(cx, held.handle)?;
                Ok(OpResult::Done)
            }
            Op::Get { cache, device, block } => {
                let Some(cache) = self.cache_at(cache) else { return Ok(OpResult::Skipped) };
                let bdev = bdev_address(u32::from(device) % self.config.devices);
                let block = u64::from(block) % u64::from(self.config.blocks);
                let found = registry.get(cx, cache, bdev, block)?;
                Ok(self.push_handle(found, true, None))
            }
            Op::FindFirst { cache, index, device, key } => {
                let Some(cache) = self.cache_at(cache) else { return Ok(OpResult::Skipped) };
                let indexes = registry.indexes_count(cx, cache)?;
                if indexes == 0 {
                    return Ok(OpResult::Skipped);
                }
                let index = u32::from(index) % indexes;
                let device = u32::from(device) % self.config.devices;
                let key = u32::from(key) % self.config.keys;
                let found = registry.find_first(cx, cache, index, bdev_address(device), key)?;
                Ok(self.push_handle(found, false, Some((index, device, key))))
            }
            Op::FindNext { handle } => {
                let walking: Vec<usize> =
                    (0..self.handles.len()).filter(|at| self.handles[*at].walk.is_some()).collect();
                let Some(at) = pick_among(handle, &walking) else { return Ok(OpResult::Skipped) };
                let held = self.handles[at].clone();
                let walk = held.walk.expect("a walking handle");
                let (index, device, key) = walk;
                let found = registry.find_next(cx, held.handle.clone(), index, bdev_address(device), key);
                if !matches!(found, Err(MbError::WouldBlock)) {
                    self.handles.remove(at);
                }
                let found = found?;
                Ok(self.push_handle(found, false, Some(walk)))
            }
            Op::Dup { handle } => {
                let positions: Vec<usize> = (0..self.handles.len()).collect();
                let Some(at) = pick_among(handle, &positions) else { return Ok(OpResult::Skipped) };
                let held = self.handles[at].clone();
                let dup = registry.dup(cx, &held.handle)?;
                Ok(self.push_handle(Some(dup), held.writer, held.walk))
            }
            Op::Takeout { handle } => {
                let positions: Vec<usize> = (0..self.handles.len()).collect();
                let Some(at) = pick_among(handle, &positions) else { return Ok(OpResult::Skipped) };
                registry.takeout(cx, &self.handles[at].handle)?;
                Ok(OpResult::Done)
            }
            Op::Free { handle } => {
                let eligible = writer_positions(self.handles.iter().map(|h| h.writer), exclusive);
                let Some(at) = pick_among(handle, &eligible) else { return Ok(OpResult::Skipped) };
                let held = self.handles.remove(at);
                registry.free(cx, held.handle)?;
                Ok(OpResult::Done)
            }
            Op::Shrink { cache, device } => {
                let Some(cache) = self.cache_at(cache) else { return Ok(OpResult::Skipped) };
                let bdev = bdev_address(u32::from(device) % self.config.devices);
                registry.shrink(cx, cache, bdev)?;
                Ok(OpResult::Done)
            }
            Op::ShrinkFn { nr_to_scan, nofs } => {
                let nr_to_scan = i32::from(nr_to_scan % 5);
                let gfp = if nofs { Gfp::GFP_NOFS } else { Gfp::GFP_KERNEL };
                if nr_to_scan == 0 {
                    self.marks.insert("shrinker asked only to count");
                }
                Ok(OpResult::Count(registry.shrink_fn(cx, nr_to_scan, gfp)?))
            }
        }
    }
}

impl Subject for MbcacheSubject {
    const NAME: &'static str = "mbcache";
    type Config = MbcacheConfig;
    type Op = Op;
    type Outcome = Outcome;
    type Reference = MbcacheModel;

    fn sim_config(_config: &MbcacheConfig, seed: u64) -> SimConfig {
        SimConfig::new(seed).cpus(2)
    }

    fn new(sim: &Sim, config: &MbcacheConfig) -> Self {
        if config.alloc_fault_percent > 0 {
            sim.set_faults(FaultPlan::with(
                FaultAttr::probability(config.alloc_fault_percent).kind(FaultKind::Slab).site("xattr"),
            ));
        }
        MbcacheSubject {
            config: config.clone(),
            registry: Registry::new(sim, config.fixes, Waits::WouldBlock),
            cx: sim.cx("fs", 0),
            caches: Vec::new(),
            created: 0,
            handles: Vec::new(),
            marks: BTreeSet::new(),
        }
    }

    fn op_strategy(_config: &MbcacheConfig) -> BoxedStrategy<Op> {
        let small = || 0u8..8;
        prop_oneof![
            2 => (0u8..3, 0u8..3, prop::bool::weighted(0.1), any::<bool>()).prop_map(|(indexes, bucket_bits, undersized, free_op)| Op::Create { indexes, bucket_bits, undersized, free_op }),
            1 => small().prop_map(|cache| Op::Destroy { cache }),
            6 => small().prop_map(|cache| Op::Alloc { cache }),
            6 => (small(), small(), 0u16..16, (small(), small())).prop_map(|(handle, device, block, (k0, k1))| Op::Insert { handle, device, block, keys: [k0, k1] }),
            6 => small().prop_map(|handle| Op::Release { handle }),
            4 => (small(), small(), 0u16..16).prop_map(|(cache, device, block)| Op::Get { cache, device, block }),
            4 => (small(), small(), small(), small()).prop_map(|(cache, index, device, key)| Op::FindFirst { cache, index, device, key }),
            4 => small().prop_map(|handle| Op::FindNext { handle }),
            1 => small().prop_map(|handle| Op::Dup { handle }),
            1 => small().prop_map(|handle| Op::Takeout { handle }),
            2 => small().prop_map(|handle| Op::Free { handle }),
            1 => (small(), small()).prop_map(|(cache, device)| Op::Shrink { cache, device }),
            2 => (0u8..5, any::<bool>()).prop_map(|(nr_to_scan, nofs)| Op::ShrinkFn { nr_to_scan, nofs }),
        ]
        .boxed()
    }

    fn apply(&mut self, _sim: &Sim, op: &Op) -> Outcome {
        let result = self.apply_inner(op);
        let result = self.result_of(result);
        let lru = self.registry.lru_serials(&self.cx).unwrap_or_default();
        let counts =
            self.caches.iter().map(|c| self.registry.entry_count(&self.cx, *c).unwrap_or(i32::MIN)).collect();
        Outcome { result, lru, counts }
    }

    fn check_invariants(&self, sim: &Sim) -> Result<(), Violation> {
        self.registry.check_invariants(&sim.observer_cx("check_invariants", 0))?;
        if !self.registry.shrinker_registered() {
            return Err(Violation::new(
                "invariant",
                "the shrinker is not registered while the registry lives",
            ));
        }
        Ok(())
    }

    fn teardown(mut self, _sim: &Sim) -> Result<(), Violation> {
        let oops = |error: MbError| match error {
            MbError::Oops(violation) => violation,
            other => Violation::new("invariant", format!("teardown: {other:?}")),
        };
        for held in std::mem::take(&mut self.handles) {
            self.registry.release(&self.cx, held.handle).map_err(oops)?;
        }
        for cache in std::mem::take(&mut self.caches) {
            let name = self.registry.cache_name(&self.cx, cache).map_err(oops)?;
            let destroyed = self.registry.destroy(&self.cx, cache).map_err(oops)?;
            if destroyed.orphans != 0 {
                return Err(Violation::new(
                    "leak",
                    format!(
                        "mb_cache_destroy({name}) with no handle left: {} orphaned entries",
                        destroyed.orphans
                    ),
                ));
            }
        }
        self.registry.exit_mbcache();
        Ok(())
    }

    fn coverage(&self) -> BTreeSet<&'static str> {
        let mut marks = self.registry.marks();
        marks.extend(self.marks.iter().copied());
        marks
    }
}

// --- the reference ---------------------------------------------------------------------------

#[derive(Clone, Debug)]
struct EntryModel {
    cache: usize,
    /// `e_bdev` and `e_block` as last inserted (they outlive unhashing, as in the kernel).
    device: Option<u32>,
    block: u64,
    hashed: bool,
    keys: Vec<u32>,
    /// Per index, when the entry was put on its index chain (chains are newest first).
    stamps: Vec<u64>,
    used: u32,
    free_failed: bool,
}

#[derive(Clone, Debug)]
struct CacheModel {
    id: usize,
    indexes: u32,
    bucket_bits: u32,
    free_op: bool,
    count: i32,
}

#[derive(Clone, Debug)]
struct HeldModel {
    serial: u64,
    writer: bool,
    walk: Option<(u32, u32, u32)>,
}

/// The reference model: what each op may return, from plain collections.
#[derive(Debug)]
pub struct MbcacheModel {
    config: MbcacheConfig,
    caches: Vec<CacheModel>,
    next_cache: usize,
    created: usize,
    entries: BTreeMap<u64, EntryModel>,
    lru: VecDeque<u64>,
    handles: Vec<HeldModel>,
    stamp: u64,
}

type Expect = Result<OpResult, String>;

impl MbcacheModel {
    fn cache_pos(&self, pick: u8) -> Option<usize> {
        let positions: Vec<usize> = (0..self.caches.len()).collect();
        pick_among(pick, &positions)
    }

    fn cache_by_id(&self, id: usize) -> &CacheModel {
        self.caches.iter().find(|c| c.id == id).expect("entry of a live cache")
    }

    fn cache_by_id_mut(&mut self, id: usize) -> &mut CacheModel {
        self.caches.iter_mut().find(|c| c.id == id).expect("entry of a live cache")
    }

    /// `__mb_cache_entry_forget` with `nofs` telling whether the free callback refuses.
    fn forget(&mut self, serial: u64, nofs: bool) {
        let cache = self.entries[&serial].cache;
        if self.cache_by_id(cache).free_op && nofs {
            self.entries.get_mut(&serial).expect("entry").free_failed = true;
            self.lru.push_front(serial);
        } else {
            self.entries.remove(&serial);
            self.cache_by_id_mut(cache).count -= 1;
        }
    }

    fn unhash(&mut self, serial: u64) {
        self.entries.get_mut(&serial).expect("entry").hashed = false;
    }

    fn release(&mut self, serial: u64, writer: bool) {
        let exclusive = self.config.fixes.on(crate::fixes::EXCLUSIVE_GET);
        let entry = self.entries.get_mut(&serial).expect("entry of a held handle");
        let _ = writer;
        if exclusive && entry.used >= MB_CACHE_WRITER {
            entry.used -= MB_CACHE_WRITER;
        }
        entry.used -= 1;
        if entry.used == 0 {
            if !entry.hashed {
                self.forget(serial, false);
            } else {
                self.lru.push_back(serial);
            }
        }
    }

    /// Takes a use of `serial`, as `get` (writer) or a find (reader) does. None: would block.
    fn take_use(&mut self, serial: u64, writer: bool) -> Option<()> {
        let exclusive = self.config.fixes.on(crate::fixes::EXCLUSIVE_GET);
        let entry = &self.entries[&serial];
        if exclusive && (if writer { entry.used > 0 } else { entry.used >= MB_CACHE_WRITER }) {
            return None;
        }
        self.lru.retain(|s| *s != serial);
        let entry = self.entries.get_mut(&serial).expect("entry");
        entry.free_failed = false;
        entry.used += if exclusive && writer { 1 + MB_CACHE_WRITER } else { 1 };
        Some(())
    }

    /// The entries of cache `cache` on index `index`'s chain for `bucket`, chain order.
    fn chain(&self, cache: usize, index: u32, bucket: u32) -> Vec<u64> {
        let bits = self.cache_by_id(cache).bucket_bits;
        let mut members: Vec<(u64, u64)> = self
            .entries
            .iter()
            .filter(|(_, e)| {
                e.cache == cache && e.hashed && hash_long(u64::from(e.keys[index as usize]), bits) == bucket
            })
            .map(|(serial, e)| (e.stamps[index as usize], *serial))
            .collect();
        members.sort_by(|a, b| b.cmp(a));
        members.into_iter().map(|(_, serial)| serial).collect()
    }

    /// `__mb_cache_entry_find` over `candidates` (chain order).
    fn find_in(&mut self, candidates: &[u64], index: u32, device: u32, key: u32) -> Result<Option<u64>, ()> {
        for serial in candidates {
            let entry = &self.entries[serial];
            if entry.device == Some(device) && entry.keys[index as usize] == key {
                return match self.take_use(*serial, false) {
                    Some(()) => Ok(Some(*serial)),
                    None => Err(()),
                };
            }
        }
        Ok(None)
    }

    fn expect(&mut self, op: &Op, actual: &OpResult) -> Expect {
        let exclusive = self.config.fixes.on(crate::fixes::EXCLUSIVE_GET);
        let config = self.config.clone();
        Ok(match *op {
            Op::Create { indexes, bucket_bits, undersized, free_op } => {
                if self.caches.len() >= config.caches_max {
                    return Ok(OpResult::Skipped);
                }
                if undersized {
                    return Ok(OpResult::Errno(Errno::EINVAL));
                }
                self.created += 1;
                self.caches.push(CacheModel {
                    id: self.next_cache,
                    indexes: u32::from(indexes) % 3,
                    bucket_bits: u32::from(bucket_bits) % (config.bucket_bits_max + 1),
                    free_op,
                    count: 0,
                });
                self.next_cache += 1;
                OpResult::Created
            }
            Op::Destroy { cache } => {
                let Some(at) = self.cache_pos(cache) else { return Ok(OpResult::Skipped) };
                let id = self.caches[at].id;
                for held in std::mem::take(&mut self.handles) {
                    if self.entries[&held.serial].cache == id {
                        self.release(held.serial, held.writer);
                    } else {
                        self.handles.push(held);
                    }
                }
                let lru: Vec<u64> =
                    self.lru.iter().copied().filter(|s| self.entries[s].cache == id).collect();
                self.lru.retain(|s| self.entries[s].cache != id);
                for serial in lru {
                    self.unhash(serial);
                    self.forget(serial, false);
                }
                let orphans = self.caches[at].count;
                self.entries.retain(|_, e| e.cache != id);
                self.caches.remove(at);
                OpResult::Destroyed { orphans }
            }
            Op::Alloc { cache } => {
                let Some(at) = self.cache_pos(cache) else { return Ok(OpResult::Skipped) };
                match actual {
                    OpResult::Errno(Errno::ENOMEM) if config.alloc_fault_percent > 0 => {
                        if !config.fixes.on(crate::fixes::ENTRY_COUNT_AFTER_ALLOC) {
                            self.caches[at].count += 1;
                        }
                        OpResult::Errno(Errno::ENOMEM)
                    }
                    OpResult::Entry(Some(serial)) if !self.entries.contains_key(serial) => {
                        let cache = &mut self.caches[at];
                        cache.count += 1;
                        self.entries.insert(
                            *serial,
                            EntryModel {
                                cache: cache.id,
                                device: None,
                                block: 0,
                                hashed: false,
                                keys: vec![0; cache.indexes as usize],
                                stamps: vec![0; cache.indexes as usize],
                                used: if exclusive { 1 + MB_CACHE_WRITER } else { 1 },
                                free_failed: false,
                            },
                        );
                        self.handles.push(HeldModel { serial: *serial, writer: true, walk: None });
                        actual.clone()
                    }
                    other => {
                        return Err(format!(
                            "alloc may return a new entry, or ENOMEM under faults; got {other:?}"
                        ))
                    }
                }
            }
            Op::Insert { handle, device, block, keys } => {
                let eligible = writer_positions(self.handles.iter().map(|h| h.writer), true);
                let Some(at) = pick_among(handle, &eligible) else { return Ok(OpResult::Skipped) };
                let serial = self.handles[at].serial;
                let device = u32::from(device) % config.devices;
                let block = u64::from(block) % u64::from(config.blocks);
                let cache = self.entries[&serial].cache;
                let indexes = self.cache_by_id(cache).indexes as usize;
                let busy = self
                    .entries
                    .values()
                    .any(|e| e.cache == cache && e.hashed && e.device == Some(device) && e.block == block);
                if busy {
                    return Ok(OpResult::Errno(Errno::EBUSY));
                }
                let stamp = self.stamp;
                self.stamp += 1;
                let entry = self.entries.get_mut(&serial).expect("entry");
                entry.hashed = true;
                entry.device = Some(device);
                entry.block = block;
                entry.keys = keys[..indexes].iter().map(|k| u32::from(*k) % config.keys).collect();
                entry.stamps = vec![stamp; indexes];
                OpResult::Done
            }
            Op::Release { handle } => {
                let positions: Vec<usize> = (0..self.handles.len()).collect();
                let Some(at) = pick_among(handle, &positions) else { return Ok(OpResult::Skipped) };
                let held = self.handles.remove(at);
                self.release(held.serial, held.writer);
                OpResult::Done
            }
            Op::Get { cache, device, block } => {
                let Some(at) = self.cache_pos(cache) else { return Ok(OpResult::Skipped) };
                let id = self.caches[at].id;
                let device = u32::from(device) % config.devices;
                let block = u64::from(block) % u64::from(config.blocks);
                let found = self
                    .entries
                    .iter()
                    .find(|(_, e)| e.cache == id && e.hashed && e.device == Some(device) && e.block == block)
                    .map(|(s, _)| *s);
                match found {
                    None => OpResult::Entry(None),
                    Some(serial) => match self.take_use(serial, true) {
                        None => OpResult::WouldBlock,
                        Some(()) => {
                            self.handles.push(HeldModel { serial, writer: true, walk: None });
                            OpResult::Entry(Some(serial))
                        }
                    },
                }
            }
            Op::FindFirst { cache, index, device, key } => {
                let Some(at) = self.cache_pos(cache) else { return Ok(OpResult::Skipped) };
                let (id, indexes, bits) =
                    (self.caches[at].id, self.caches[at].indexes, self.caches[at].bucket_bits);
                if indexes == 0 {
                    return Ok(OpResult::Skipped);
                }
                let index = u32::from(index) % indexes;
                let device = u32::from(device) % config.devices;
                let key = u32::from(key) % config.keys;
                let chain = self.chain(id, index, hash_long(u64::from(key), bits));
                match self.find_in(&chain, index, device, key) {
                    Err(()) => OpResult::WouldBlock,
                    Ok(None) => OpResult::Entry(None),
                    Ok(Some(serial)) => {
                        self.handles.push(HeldModel {
                            serial,
                            writer: false,
                            walk: Some((index, device, key)),
                        });
                        OpResult::Entry(Some(serial))
                    }
                }
            }
            Op::FindNext { handle } => {
                let walking: Vec<usize> =
                    (0..self.handles.len()).filter(|at| self.handles[*at].walk.is_some()).collect();
                let Some(at) = pick_among(handle, &walking) else { return Ok(OpResult::Skipped) };
                let held = self.handles[at].clone();
                let cache = self.entries[&held.serial].cache;
                let bits = self.cache_by_id(cache).bucket_bits;
                let walk = held.walk.expect("a walking handle");
                let (index, device, key) = walk;
                let prev = self.entries[&held.serial].clone();
                if !prev.hashed {
                    // prev's o_list was list_del'ed: its next is LIST_POISON1.
                    return Ok(OpResult::Oops("list-poison".into()));
                }
                let prev_bucket = hash_long(u64::from(prev.keys[index as usize]), bits);
                let key_bucket = hash_long(u64::from(key), bits);
                let chain = self.chain(cache, index, prev_bucket);
                let after_prev: Vec<u64> =
                    chain.iter().copied().skip_while(|s| *s != held.serial).skip(1).collect();
                let found = match self.find_in(&after_prev, index, device, key) {
                    Err(()) => return Ok(OpResult::WouldBlock),
                    Ok(None) if prev_bucket != key_bucket => {
                        return Ok(OpResult::Oops("wild-pointer".into()))
                    }
                    Ok(found) => found,
                };
                self.handles.remove(at);
                self.release(held.serial, held.writer);
                match found {
                    None => OpResult::Entry(None),
                    Some(serial) => {
                        self.handles.push(HeldModel { serial, writer: false, walk: Some(walk) });
                        OpResult::Entry(Some(serial))
                    }
                }
            }
            Op::Dup { handle } => {
                let positions: Vec<usize> = (0..self.handles.len()).collect();
                let Some(at) = pick_among(handle, &positions) else { return Ok(OpResult::Skipped) };
                if exclusive {
                    return Ok(OpResult::Errno(Errno::ENOSYS));
                }
                let held = self.handles[at].clone();
                self.entries.get_mut(&held.serial).expect("entry").used += 1;
                self.handles.push(held.clone());
                OpResult::Entry(Some(held.serial))
            }
            Op::Takeout { handle } => {
                let positions: Vec<usize> = (0..self.handles.len()).collect();
                let Some(at) = pick_among(handle, &positions) else { return Ok(OpResult::Skipped) };
                if exclusive {
                    return Ok(OpResult::Errno(Errno::ENOSYS));
                }
                let serial = self.handles[at].serial;
                self.unhash(serial);
                OpResult::Done
            }
            Op::Free { handle } => {
                let eligible = writer_positions(self.handles.iter().map(|h| h.writer), exclusive);
                let Some(at) = pick_among(handle, &eligible) else { return Ok(OpResult::Skipped) };
                let held = self.handles.remove(at);
                self.unhash(held.serial);
                self.release(held.serial, held.writer);
                OpResult::Done
            }
            Op::Shrink { cache, device } => {
                if self.cache_pos(cache).is_none() {
                    return Ok(OpResult::Skipped);
                }
                let device = u32::from(device) % config.devices;
                let chosen: Vec<u64> =
                    self.lru.iter().copied().filter(|s| self.entries[s].device == Some(device)).collect();
                self.lru.retain(|s| !chosen.contains(s));
                for serial in chosen {
                    self.unhash(serial);
                    self.forget(serial, false);
                }
                OpResult::Done
            }
            Op::ShrinkFn { nr_to_scan, nofs } => {
                let nr_to_scan = usize::from(nr_to_scan % 5);
                let count = self.caches.iter().map(|c| c.count).sum();
                let mut taken = Vec::new();
                for _ in 0..nr_to_scan {
                    match self.lru.pop_front() {
                        Some(serial) => taken.push(serial),
                        None => break,
                    }
                }
                for serial in taken {
                    self.unhash(serial);
                    self.forget(serial, nofs);
                }
                OpResult::Count(count)
            }
        })
    }
}

impl Reference for MbcacheModel {
    type Config = MbcacheConfig;
    type Op = Op;
    type Outcome = Outcome;

    fn new(config: &MbcacheConfig) -> Self {
        MbcacheModel {
            config: config.clone(),
            caches: Vec::new(),
            next_cache: 0,
            created: 0,
            entries: BTreeMap::new(),
            lru: VecDeque::new(),
            handles: Vec::new(),
            stamp: 0,
        }
    }

    fn check(&mut self, op: &Op, actual: &Outcome) -> Result<(), String> {
        let expect = self.expect(op, &actual.result)?;
        if expect != actual.result {
            return Err(format!("expected {expect:?}"));
        }
        if let OpResult::Oops(_) = expect {
            return Ok(());
        }
        let lru: Vec<u64> = self.lru.iter().copied().collect();
        if lru != actual.lru {
            return Err(format!("lru expected {lru:?}, actual {:?}", actual.lru));
        }
        let counts: Vec<i32> = self.caches.iter().map(|c| c.count).collect();
        if counts != actual.counts {
            return Err(format!("c_entry_count expected {counts:?}, actual {:?}", actual.counts));
        }
        Ok(())
    }
}

// --- the catalog -----------------------------------------------------------------------------

/// The scenario that shows the seed's find_next-after-free oops.
pub const SCENARIO_FIND_NEXT_AFTER_FREE: &str = "find-next-after-free";
/// The scenario that shows release order on the LRU and the shrinker.
pub const SCENARIO_SHRINKER_LRU: &str = "shrinker-lru";

impl Catalog for MbcacheSubject {
    fn fix_table() -> &'static FixTable {
        <MbcacheFixes as FixTableOf>::TABLE
    }

    fn config(kernel: Option<&str>, fixes_off: &[String]) -> Result<MbcacheConfig, String> {
        let fixes = Fixes::parse(kernel, fixes_off)?;
        Ok(MbcacheConfig::new(kernel.unwrap_or(fixes::PRESET_FIXED), fixes))
    }

    fn zoo() -> Vec<ZooEntry> {
        vec![
            ZooEntry {
                name: "entry-count-leak-on-failed-alloc",
                kernel: fixes::PRESET_FIXED,
                fix: fixes::FIX_ENTRY_COUNT_AFTER_ALLOC,
                checker: "op-sim",
                expected: vec!["leak".into()],
                ops_max: 60,
                cases_max: 200,
            },
            ZooEntry {
                name: "find-next-after-free",
                kernel: fixes::PRESET_FIXED,
                fix: fixes::FIX_EXCLUSIVE_GET,
                checker: "op-sim",
                expected: vec!["list-poison".into()],
                ops_max: 80,
                cases_max: 2000,
            },
        ]
    }

    fn scenarios() -> Vec<ScenarioInfo> {
        vec![
            ScenarioInfo {
                name: SCENARIO_FIND_NEXT_AFTER_FREE,
                description: "seed 2.6.10: one task walks an xattr key with find_first/find_next while \
                              another frees the block it holds; find_next follows LIST_POISON1",
            },
            ScenarioInfo {
                name: SCENARIO_SHRINKER_LRU,
                description: "entries go on the global LRU in release order; the shrinker counts with \
                              nr_to_scan 0 and frees from the head",
            },
        ]
    }

    fn run_scenario(name: &str) -> Option<Sim> {
        let sim = Sim::new(
            SimConfig::new(1).cpus(2).lockdep(sim_core::lockdep::ReportMode::Collect).trace(TraceMode::Full),
        );
        match name {
            SCENARIO_FIND_NEXT_AFTER_FREE => scenario_find_next_after_free(&sim),
            SCENARIO_SHRINKER_LRU => scenario_shrinker_lru(&sim),
            _ => return None,
        }
        Some(sim)
    }
}

fn scenario_find_next_after_free(sim: &Sim) {
    let registry = Registry::new(sim, Fixes::none(), Waits::WouldBlock);
    let reader = sim.cx("setxattr(A)", 0);
    let releaser = sim.cx("unlink(B)", 1);
    let Ok(cache) = registry.create(&reader, "ext2_xattr", None, ENTRY_HEADER_SIZE + ENTRY_INDEX_SIZE, 1, 2)
    else {
        return;
    };
    let bdev = bdev_address(0);
    for block in [10, 11] {
        if let Ok(handle) = registry.alloc(&releaser, cache) {
            let _ = registry.insert(&releaser, &handle, bdev, block, &[7]);
            let _ = registry.release(&releaser, handle);
        }
    }
    reader.note("A: looks for a shared xattr block with hash 7");
    let Ok(Some(first)) = registry.find_first(&reader, cache, 0, bdev, 7) else { return };
    releaser.note("B: drops the last inode using that block: get + free");
    let Ok((_, block)) = registry.entry_block(&reader, &first) else { return };
    if let Ok(Some(held)) = registry.get(&releaser, cache, bdev, block) {
        let _ = registry.free(&releaser, held);
    }
    reader.note("A: the block did not fit; find_next from the entry B just unhashed");
    let _ = registry.find_next(&reader, first, 0, bdev, 7);
}

fn scenario_shrinker_lru(sim: &Sim) {
    let registry = Registry::new(sim, Fixes::all(), Waits::WouldBlock);
    let cx = sim.cx("fs", 0);
    let reclaim = sim.cx("kswapd", 1);
    let Ok(cache) = registry.create(&cx, "ext3_xattr", None, ENTRY_HEADER_SIZE + ENTRY_INDEX_SIZE, 1, 2)
    else {
        return;
    };
    for block in 0..3 {
        if let Ok(handle) = registry.alloc(&cx, cache) {
            let _ = registry.insert(&cx, &handle, bdev_address(0), block, &[block as u32]);
            cx.note(format!("release entry for block {block}: it joins the LRU tail"));
            let _ = registry.release(&cx, handle);
        }
    }
    let _ = registry.shrink_fn(&reclaim, 0, Gfp::GFP_KERNEL);
    reclaim.note("nr_to_scan 2: the two oldest releases go");
    let _ = registry.shrink_fn(&reclaim, 2, Gfp::GFP_KERNEL);
    let _ = registry.shrink_fn(&reclaim, 0, Gfp::GFP_KERNEL);
}
