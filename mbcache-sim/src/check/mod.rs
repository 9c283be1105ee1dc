//! The harness face of the model: [`MbcacheSubject`] (the model driven by one [`Op`] enum),
//! [`MbcacheModel`] (the reference, in `reference`), the operations (`op`), and the [`Catalog`]
//! the CLI reads (`catalog`, with the scenarios in `scenario`).
//!
//! One op is one call of fs/mbcache.c's API by some task; handles returned stay held across ops
//! (in `handles`) until an op releases them, as a filesystem holds an xattr block's entry while it
//! works on it. Targets are picked by index modulo what exists, so any op applies in any state.
//!
//! [`Catalog`]: sim_core::check::Catalog

mod catalog;
mod invariants;
mod op;
mod reference;
mod scenario;
#[cfg(feature = "threaded")]
mod threaded;

use proptest::strategy::BoxedStrategy;
use serde::{Deserialize, Serialize};
use sim_core::check::Subject;
use sim_core::fault::{FaultAttr, FaultKind, FaultPlan};
use sim_core::mm::Gfp;
use sim_core::{Cx, Sim, SimConfig, Violation, ViolationKind};

use crate::cache::{CacheRef, FreeOp};
use crate::entry::Handle;
use crate::fixes::{Fixes, EXCLUSIVE_GET};
use crate::registry::{bdev_address, MbError, Registry, Waits, ENTRY_HEADER_SIZE, ENTRY_INDEX_SIZE};
use op::{all_positions, pick_among, writer_positions};

// For the CLI, tests and the campaign engine: the scenario names, the operations and the reference.
pub use catalog::{SCENARIO_FIND_NEXT_AFTER_FREE, SCENARIO_SHRINKER_LRU};
pub use op::{Op, OpResult, Outcome};
pub use reference::MbcacheModel;

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

/// A handle the subject holds across ops: exclusive (`writer`) or shared, and for a find the
/// walk (`index`, device, key) `find_next` continues.
#[derive(Clone, Debug)]
struct Held {
    handle: Handle,
    writer: bool,
    walk: Option<(u32, u32, u32)>,
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
}

/// An op's result before it is folded into an [`OpResult`].
type Applied = Result<OpResult, MbError>;

impl MbcacheSubject {
    /// The registry.
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    fn result_of(result: Applied) -> OpResult {
        match result {
            Ok(result) => result,
            Err(MbError::Errno(errno)) => OpResult::Errno(errno),
            Err(MbError::WouldBlock) => OpResult::WouldBlock,
            Err(MbError::Oops(violation)) => OpResult::Oops(violation.kind),
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
        pick_among(pick, &all_positions(self.caches.len())).map(|at| self.caches[at])
    }

    fn bdev(&self, device: u8) -> u64 {
        bdev_address(u32::from(device) % self.config.devices)
    }

    fn block(&self, block: u16) -> u64 {
        u64::from(block) % u64::from(self.config.blocks)
    }

    fn create(&mut self, indexes: u8, bucket_bits: u8, undersized: bool, free_op: bool) -> Applied {
        if self.caches.len() >= self.config.caches_max {
            return Ok(OpResult::Skipped);
        }
        let indexes = u32::from(indexes) % 3;
        let bits = u32::from(bucket_bits) % (self.config.bucket_bits_max + 1);
        let size = ENTRY_HEADER_SIZE + u64::from(indexes) * ENTRY_INDEX_SIZE - u64::from(undersized);
        let name = CACHE_NAMES[self.created % CACHE_NAMES.len()];
        let free_op = free_op.then_some(FreeOp { fails_without_fs: true });
        match self.registry.create(&self.cx, name, free_op, size, indexes, bits) {
            Ok(cache) => {
                self.created += 1;
                self.caches.push(cache);
                Ok(OpResult::Created)
            }
            Err(errno) => Ok(OpResult::Errno(errno)),
        }
    }

    fn destroy(&mut self, cache: u8) -> Applied {
        let Some(at) = pick_among(cache, &all_positions(self.caches.len())) else {
            return Ok(OpResult::Skipped);
        };
        let cache = self.caches[at];
        let mut kept = Vec::new();
        for held in std::mem::take(&mut self.handles) {
            if held.handle.entry_ref().cache == cache.0 {
                self.registry.release(&self.cx, held.handle)?;
            } else {
                kept.push(held);
            }
        }
        self.handles = kept;
        let destroyed = self.registry.destroy(&self.cx, cache)?;
        self.caches.remove(at);
        self.cx.sim().mark("cache destroyed");
        Ok(OpResult::Destroyed { orphans: destroyed.orphans })
    }

    fn alloc(&mut self, cache: u8) -> Applied {
        let Some(cache) = self.cache_at(cache) else { return Ok(OpResult::Skipped) };
        let handle = self.registry.alloc(&self.cx, cache)?;
        Ok(self.push_handle(Some(handle), true, None))
    }

    fn insert(&mut self, handle: u8, device: u8, block: u16, keys: [u8; 2]) -> Applied {
        let eligible = writer_positions(self.handles.iter().map(|h| h.writer), true);
        let Some(at) = pick_among(handle, &eligible) else { return Ok(OpResult::Skipped) };
        let held = &self.handles[at];
        let indexes = self.registry.indexes_count(&self.cx, CacheRef(held.handle.entry_ref().cache))?;
        let keys: Vec<u32> =
            keys[..indexes as usize].iter().map(|k| u32::from(*k) % self.config.keys).collect();
        self.registry.insert(&self.cx, &held.handle, self.bdev(device), self.block(block), &keys)?;
        self.cx.sim().mark("entry inserted");
        Ok(OpResult::Done)
    }

    fn release(&mut self, handle: u8) -> Applied {
        let Some(at) = pick_among(handle, &all_positions(self.handles.len())) else {
            return Ok(OpResult::Skipped);
        };
        let held = self.handles.remove(at);
        self.registry.release(&self.cx, held.handle)?;
        Ok(OpResult::Done)
    }

    fn get(&mut self, cache: u8, device: u8, block: u16) -> Applied {
        let Some(cache) = self.cache_at(cache) else { return Ok(OpResult::Skipped) };
        let found = self.registry.get(&self.cx, cache, self.bdev(device), self.block(block))?;
        Ok(self.push_handle(found, true, None))
    }

    fn find_first(&mut self, cache: u8, index: u8, device: u8, key: u8) -> Applied {
        let Some(cache) = self.cache_at(cache) else { return Ok(OpResult::Skipped) };
        let indexes = self.registry.indexes_count(&self.cx, cache)?;
        if indexes == 0 {
            return Ok(OpResult::Skipped);
        }
        let index = u32::from(index) % indexes;
        let device = u32::from(device) % self.config.devices;
        let key = u32::from(key) % self.config.keys;
        let found = self.registry.find_first(&self.cx, cache, index, bdev_address(device), key)?;
        Ok(self.push_handle(found, false, Some((index, device, key))))
    }

    fn find_next(&mut self, handle: u8) -> Applied {
        let walking: Vec<usize> =
            (0..self.handles.len()).filter(|at| self.handles[*at].walk.is_some()).collect();
        let Some(at) = pick_among(handle, &walking) else { return Ok(OpResult::Skipped) };
        let held = self.handles[at].clone();
        let walk = held.walk.expect("a walking handle");
        let (index, device, key) = walk;
        let found = self.registry.find_next(&self.cx, held.handle.clone(), index, bdev_address(device), key);
        if !matches!(found, Err(MbError::WouldBlock)) {
            self.handles.remove(at);
        }
        let found = found?;
        Ok(self.push_handle(found, false, Some(walk)))
    }

    fn dup(&mut self, handle: u8) -> Applied {
        let Some(at) = pick_among(handle, &all_positions(self.handles.len())) else {
            return Ok(OpResult::Skipped);
        };
        let held = self.handles[at].clone();
        let dup = self.registry.dup(&self.cx, &held.handle)?;
        Ok(self.push_handle(Some(dup), held.writer, held.walk))
    }

    fn takeout(&mut self, handle: u8) -> Applied {
        let Some(at) = pick_among(handle, &all_positions(self.handles.len())) else {
            return Ok(OpResult::Skipped);
        };
        self.registry.takeout(&self.cx, &self.handles[at].handle)?;
        Ok(OpResult::Done)
    }

    fn free(&mut self, handle: u8) -> Applied {
        let exclusive = self.config.fixes.on(EXCLUSIVE_GET);
        let eligible = writer_positions(self.handles.iter().map(|h| h.writer), exclusive);
        let Some(at) = pick_among(handle, &eligible) else { return Ok(OpResult::Skipped) };
        let held = self.handles.remove(at);
        self.registry.free(&self.cx, held.handle)?;
        Ok(OpResult::Done)
    }

    fn shrink(&mut self, cache: u8, device: u8) -> Applied {
        let Some(cache) = self.cache_at(cache) else { return Ok(OpResult::Skipped) };
        self.registry.shrink(&self.cx, cache, self.bdev(device))?;
        Ok(OpResult::Done)
    }

    fn shrink_fn(&mut self, nr_to_scan: u8, nofs: bool) -> Applied {
        let nr_to_scan = i32::from(nr_to_scan % 5);
        let gfp = if nofs { Gfp::GFP_NOFS } else { Gfp::GFP_KERNEL };
        if nr_to_scan == 0 {
            self.cx.sim().mark("shrinker asked only to count");
        }
        Ok(OpResult::Count(self.registry.shrink_fn(&self.cx, nr_to_scan, gfp)?))
    }

    fn apply_op(&mut self, op: &Op) -> Applied {
        match *op {
            Op::Create { indexes, bucket_bits, undersized, free_op } => {
                self.create(indexes, bucket_bits, undersized, free_op)
            }
            Op::Destroy { cache } => self.destroy(cache),
            Op::Alloc { cache } => self.alloc(cache),
            Op::Insert { handle, device, block, keys } => self.insert(handle, device, block, keys),
            Op::Release { handle } => self.release(handle),
            Op::Get { cache, device, block } => self.get(cache, device, block),
            Op::FindFirst { cache, index, device, key } => self.find_first(cache, index, device, key),
            Op::FindNext { handle } => self.find_next(handle),
            Op::Dup { handle } => self.dup(handle),
            Op::Takeout { handle } => self.takeout(handle),
            Op::Free { handle } => self.free(handle),
            Op::Shrink { cache, device } => self.shrink(cache, device),
            Op::ShrinkFn { nr_to_scan, nofs } => self.shrink_fn(nr_to_scan, nofs),
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
        }
    }

    fn op_strategy(_config: &MbcacheConfig) -> BoxedStrategy<Op> {
        op::strategy()
    }

    fn apply(&mut self, sim: &Sim, op: &Op) -> Outcome {
        let result = Self::result_of(self.apply_op(op));
        // The checker reads the state the reference compares through an untraced context.
        let observer = sim.observer_cx("outcome", 0);
        let lru = self.registry.lru_serials(&observer).unwrap_or_default();
        let counts = self
            .caches
            .iter()
            .map(|c| self.registry.entry_count(&observer, *c).unwrap_or(i32::MIN))
            .collect();
        Outcome { result, lru, counts }
    }

    fn check_invariants(&self, sim: &Sim) -> Result<(), Violation> {
        self.registry.check_invariants(&sim.observer_cx("check_invariants", 0))?;
        if !self.registry.shrinker_registered() {
            return Err(Violation::new(
                ViolationKind::invariant("shrinker-registered"),
                "the shrinker is not registered while the registry lives",
            ));
        }
        Ok(())
    }

    fn teardown(mut self, _sim: &Sim) -> Result<(), Violation> {
        let oops = |error: MbError| match error {
            MbError::Oops(violation) => violation,
            other => Violation::new(ViolationKind::invariant("teardown"), format!("teardown: {other:?}")),
        };
        for held in std::mem::take(&mut self.handles) {
            self.registry.release(&self.cx, held.handle).map_err(oops)?;
        }
        for cache in std::mem::take(&mut self.caches) {
            let name = self.registry.cache_name(&self.cx, cache).map_err(oops)?;
            let destroyed = self.registry.destroy(&self.cx, cache).map_err(oops)?;
            if destroyed.orphans != 0 {
                return Err(Violation::new(
                    ViolationKind::Leak,
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
}
