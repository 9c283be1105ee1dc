//! The harness face of the model: [`MbcacheSubject`] (the model driven by one [`Op`] enum),
//! [`MbcacheModel`] (the reference, in `reference`), the operations (`op`), and the [`Catalog`]
//! the CLI reads (`catalog`, with the scenarios in `scenario`).
//!
//! One op is one call of fs/mbcache.c's API by one of several tasks, each with its own context;
//! handles returned belong to the task that got them and stay held across ops (in `handles`) until
//! an op of that task releases them, as a filesystem holds an xattr block's entry while it works
//! on it. Two tasks' ops interleave at operation boundaries, which is where the 2.6.10 race lives:
//! one task disposes of a block (get + free) between another's find_first and find_next. A task
//! unhashing an entry it is itself walking is API misuse, refused (or reported, see
//! [`MbcacheConfig::misuse_reported`]) rather than counted as that race. Targets are picked by
//! index modulo what exists, so any op applies in any state.
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
use sim_core::gen::OpGen;
use sim_core::mm::Gfp;
use sim_core::{Cx, Sim, SimConfig, Violation, ViolationKind};

use crate::cache::{CacheRef, FreeOp};
use crate::entry::Handle;
use crate::ext2_xattr::{Ext2Xattr, Pending, Step};
use crate::fixes::{Fixes, EXCLUSIVE_GET};
use crate::registry::{bdev_address, MbError, Registry, Waits, ENTRY_HEADER_SIZE, ENTRY_INDEX_SIZE};
use op::{pick_index, pick_where};
use sim_core::Errno;

// For the CLI, tests and the campaign engine: the scenario names, the operations and the reference.
pub use catalog::{SCENARIO_FIND_NEXT_AFTER_FREE, SCENARIO_SHRINKER_LRU};
pub use op::{Op, OpResult, Outcome};
pub use reference::MbcacheModel;

/// Cache names the subject creates caches under, in turn. All contain "xattr", the site the
/// allocation fault plan targets.
pub const CACHE_NAMES: [&str; 4] = ["ext2_xattr", "ext3_xattr", "ext2_xattr_b", "ext3_xattr_b"];

/// The most ext2 blocks a config may ask for (the default is 8).
pub const FS_BLOCKS_MAX: u32 = 1 << 16;

/// Most tasks a case runs (`MbcacheConfig::tasks` is clamped to 1..=this): the subject's contexts,
/// its pending steps, and the reference's task numbers.
pub(crate) const TASKS_MAX: u32 = 4;

/// The tasks' context names (`task0` on CPU 0, `task1` on CPU 1, ...), one per task up to
/// [`TASKS_MAX`]: a case's set-up names them without formatting.
const TASK_NAMES: [&str; TASKS_MAX as usize] = ["task0", "task1", "task2", "task3"];

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
    /// Tasks whose ops interleave (1..=[`TASKS_MAX`]); each holds its own handles.
    pub tasks: u32,
    /// A task unhashing an entry it is itself walking (API misuse) is reported as a
    /// `finding:api-misuse` violation instead of refused with [`OpResult::Misuse`].
    pub misuse_reported: bool,
    /// Generate the mbcache API ops.
    pub api_ops: bool,
    /// Generate the ext2 xattr ops (`setxattr`, inode deletion) on an ext2 filesystem with its
    /// own mbcache world (so the reference's picture of the API ops' world stays exact; the
    /// filesystem is judged by its invariants and lockdep).
    pub xattr_ops: bool,
    /// Inodes of the ext2 filesystem (1..=8).
    pub inodes: u32,
    /// Distinct xattr values (few: much sharing).
    pub values: u32,
    /// Blocks of the ext2 filesystem.
    pub fs_blocks: u32,
    /// The reference judges a threaded case (set by `threaded_config`): each op picks among its
    /// thread's handles ([`Outcome::task`]) and a lookup sleeps instead of returning WouldBlock.
    #[serde(default)]
    pub threaded: bool,
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
            tasks: 2,
            misuse_reported: false,
            api_ops: true,
            xattr_ops: true,
            inodes: 4,
            values: 2,
            fs_blocks: 8,
            threaded: false,
        }
    }
}

/// A handle the subject holds across ops: exclusive (`writer`) or shared, and for a find the
/// walk (`index`, device, key) `find_next` continues.
#[derive(Clone, Debug)]
struct Held {
    task: u32,
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
    /// One context per task (`task0` on CPU 0, `task1` on CPU 1, ...).
    tasks: Vec<Cx>,
    /// The ext2 filesystem the xattr ops run on.
    ext2: Ext2Xattr,
    /// Per task, the xattr step its last xattr op left pending.
    pending: Vec<Option<Pending>>,
    caches: Vec<CacheRef>,
    created: usize,
    handles: Vec<Held>,
    /// The untraced contexts the checker reads the model through: for an op's outcome, and for
    /// the invariants (made once per case, not per op).
    outcome_cx: Cx,
    check_cx: Cx,
    /// The LRU's serials as the last outcome read them, and when (`Memory::lru_writes`).
    lru_seen: Option<(u64, std::sync::Arc<[u64]>)>,
    /// The working space of the LRU walks behind `lru_seen`.
    lru_walked: Vec<u64>,
    /// The caches' `c_entry_count` cells the outcome reads, fetched again only when
    /// `mb_cache_list` changed.
    count_cells: crate::cache::CountCells,
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
        task: u32,
        handle: Option<Handle>,
        writer: bool,
        walk: Option<(u32, u32, u32)>,
    ) -> OpResult {
        match handle {
            Some(handle) => {
                let serial = handle.entry_id();
                self.handles.push(Held { task, handle, writer, walk });
                OpResult::Entry(Some(serial))
            }
            None => OpResult::Entry(None),
        }
    }

    /// The task an op names, modulo the configured tasks.
    fn task(&self, task: u8) -> u32 {
        u32::from(task) % self.tasks.len() as u32
    }

    /// Task `task`'s context.
    fn task_cx(&self, task: u32) -> &Cx {
        &self.tasks[task as usize]
    }

    /// The held handle `pick` names among those `keep` accepts, whatever their task.
    fn pick_held(&self, pick: u8, keep: impl Fn(&Held) -> bool) -> Option<usize> {
        pick_where(pick, &self.handles, keep)
    }

    /// Whether unhashing the entry of handle `at` (by takeout, free or a re-insert) is API
    /// misuse: its task still walks that entry with a find handle (`at` itself counts when the
    /// op keeps it, as takeout does). The kernel's users never do this: a task disposes of a
    /// block it is not walking, and races only with other tasks. Refused as [`OpResult::Misuse`],
    /// or reported when the configuration asks.
    fn misuse(&self, at: usize, keeps_handle: bool) -> Option<OpResult> {
        let held = &self.handles[at];
        let serial = held.handle.entry_id();
        let walking = |(other, h): (usize, &Held)| {
            h.task == held.task
                && h.walk.is_some()
                && h.handle.entry_id() == serial
                && (keeps_handle || other != at)
        };
        if !self.handles.iter().enumerate().any(walking) {
            return None;
        }
        let cx = self.task_cx(held.task);
        cx.sim().mark("api misuse: a task unhashes an entry it walks");
        if !self.config.misuse_reported {
            return Some(OpResult::Misuse);
        }
        let violation = Violation::new(
            ViolationKind::finding("api-misuse"),
            format!(
                "task{} unhashes entry {serial} while it holds a find handle to it (one task \
                 misusing its own handles, not a race)",
                held.task
            ),
        );
        cx.sim().report(Some(cx), violation.clone());
        Some(OpResult::Oops(violation.kind))
    }

    fn cache_at(&self, pick: u8) -> Option<CacheRef> {
        pick_index(pick, self.caches.len()).map(|at| self.caches[at])
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
        let Some(at) = pick_index(cache, self.caches.len()) else {
            return Ok(OpResult::Skipped);
        };
        let cache = self.caches[at];
        let mut kept = Vec::new();
        for held in std::mem::take(&mut self.handles) {
            if held.handle.cache_ref() == cache {
                self.registry.release(&self.tasks[held.task as usize], held.handle)?;
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

    fn alloc(&mut self, task: u8, cache: u8) -> Applied {
        let task = self.task(task);
        let Some(cache) = self.cache_at(cache) else { return Ok(OpResult::Skipped) };
        let handle = self.registry.alloc(self.task_cx(task), cache)?;
        Ok(self.push_handle(task, Some(handle), true, None))
    }

    fn insert(&mut self, handle: u8, device: u8, block: u16, keys: [u8; 2]) -> Applied {
        let Some(at) = self.pick_held(handle, |h| h.writer) else {
            return Ok(OpResult::Skipped);
        };
        let task = self.handles[at].task;
        if let Some(misuse) = self.misuse(at, true) {
            return Ok(misuse);
        }
        let held = &self.handles[at];
        let cx = self.task_cx(task);
        let indexes = self.registry.indexes_count(cx, held.handle.cache_ref())?;
        let keys: Vec<u32> =
            keys[..indexes as usize].iter().map(|k| u32::from(*k) % self.config.keys).collect();
        self.registry.insert(cx, &held.handle, self.bdev(device), self.block(block), &keys)?;
        cx.sim().mark("entry inserted");
        Ok(OpResult::Done)
    }

    fn release(&mut self, handle: u8) -> Applied {
        let Some(at) = self.pick_held(handle, |_| true) else {
            return Ok(OpResult::Skipped);
        };
        let task = self.handles[at].task;
        let held = self.handles.remove(at);
        self.registry.release(self.task_cx(task), held.handle)?;
        Ok(OpResult::Done)
    }

    fn get(&mut self, task: u8, cache: u8, device: u8, block: u16) -> Applied {
        let task = self.task(task);
        let Some(cache) = self.cache_at(cache) else { return Ok(OpResult::Skipped) };
        let found = self.registry.get(self.task_cx(task), cache, self.bdev(device), self.block(block))?;
        Ok(self.push_handle(task, found, true, None))
    }

    fn find_first(&mut self, task: u8, cache: u8, index: u8, device: u8, key: u8) -> Applied {
        let task = self.task(task);
        let Some(cache) = self.cache_at(cache) else { return Ok(OpResult::Skipped) };
        let cx = self.task_cx(task);
        let indexes = self.registry.indexes_count(cx, cache)?;
        if indexes == 0 {
            return Ok(OpResult::Skipped);
        }
        let index = u32::from(index) % indexes;
        let device = u32::from(device) % self.config.devices;
        let key = u32::from(key) % self.config.keys;
        let found = self.registry.find_first(cx, cache, index, bdev_address(device), key);
        if found == Err(MbError::Errno(Errno::EAGAIN)) {
            cx.sim().mark("find_first: EAGAIN");
        }
        Ok(self.push_handle(task, found?, false, Some((index, device, key))))
    }

    fn find_next(&mut self, handle: u8) -> Applied {
        let Some(at) = self.pick_held(handle, |h| h.walk.is_some()) else {
            return Ok(OpResult::Skipped);
        };
        let task = self.handles[at].task;
        let held = self.handles[at].clone();
        let walk = held.walk.expect("a walking handle");
        let (index, device, key) = walk;
        let cx = self.task_cx(task);
        let found = self.registry.find_next(cx, held.handle.clone(), index, bdev_address(device), key);
        if found == Err(MbError::Errno(Errno::EAGAIN)) {
            cx.sim().mark("find_next: EAGAIN");
        }
        if !matches!(found, Err(MbError::WouldBlock)) {
            self.handles.remove(at);
        }
        let found = found?;
        Ok(self.push_handle(task, found, false, Some(walk)))
    }

    fn dup(&mut self, handle: u8) -> Applied {
        let Some(at) = self.pick_held(handle, |_| true) else {
            return Ok(OpResult::Skipped);
        };
        let task = self.handles[at].task;
        let held = self.handles[at].clone();
        let dup = self.registry.dup(self.task_cx(task), &held.handle)?;
        Ok(self.push_handle(task, Some(dup), held.writer, held.walk))
    }

    fn takeout(&mut self, handle: u8) -> Applied {
        let Some(at) = self.pick_held(handle, |_| true) else {
            return Ok(OpResult::Skipped);
        };
        let task = self.handles[at].task;
        if let Some(misuse) = self.misuse(at, true) {
            return Ok(misuse);
        }
        self.registry.takeout(self.task_cx(task), &self.handles[at].handle)?;
        Ok(OpResult::Done)
    }

    fn free(&mut self, handle: u8) -> Applied {
        let exclusive = self.config.fixes.on(EXCLUSIVE_GET);
        let Some(at) = self.pick_held(handle, |h| h.writer || !exclusive) else {
            return Ok(OpResult::Skipped);
        };
        let task = self.handles[at].task;
        if let Some(misuse) = self.misuse(at, false) {
            return Ok(misuse);
        }
        let held = self.handles.remove(at);
        self.registry.free(self.task_cx(task), held.handle)?;
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

    /// An xattr op by `task` on `inode`: the task's pending step if it has one; else refused as
    /// WouldBlock while another task's pending step holds the inode's `xattr_sem`; else `call`.
    fn xattr(
        &mut self,
        task: u8,
        inode: u8,
        call: impl FnOnce(&Ext2Xattr, &Cx, usize) -> Result<Step, MbError>,
    ) -> Applied {
        let task = self.task(task) as usize;
        let inode = usize::from(inode) % self.ext2.inode_count();
        let cx = &self.tasks[task];
        let step = match self.pending[task].take() {
            Some(pending) => self.ext2.resume(cx, pending),
            None => {
                let busy = self.pending.iter().flatten().any(|p| pending_inode(p) == inode);
                if busy {
                    return Ok(OpResult::WouldBlock);
                }
                call(&self.ext2, cx, inode)
            }
        }?;
        Ok(match step {
            Step::Done => OpResult::Done,
            Step::Pending(pending) => {
                self.pending[task] = Some(pending);
                OpResult::Pending
            }
        })
    }

    fn apply_op(&mut self, op: &Op) -> Applied {
        match *op {
            Op::Create { indexes, bucket_bits, undersized, free_op } => {
                self.create(indexes, bucket_bits, undersized, free_op)
            }
            Op::Destroy { cache } => self.destroy(cache),
            Op::Alloc { task, cache } => self.alloc(task, cache),
            Op::Insert { handle, device, block, keys } => self.insert(handle, device, block, keys),
            Op::Release { handle } => self.release(handle),
            Op::Get { task, cache, device, block } => self.get(task, cache, device, block),
            Op::FindFirst { task, cache, index, device, key } => {
                self.find_first(task, cache, index, device, key)
            }
            Op::FindNext { handle } => self.find_next(handle),
            Op::Dup { handle } => self.dup(handle),
            Op::Takeout { handle } => self.takeout(handle),
            Op::Free { handle } => self.free(handle),
            Op::Shrink { cache, device } => self.shrink(cache, device),
            Op::ShrinkFn { nr_to_scan, nofs } => self.shrink_fn(nr_to_scan, nofs),
            Op::XattrSet { task, inode, value } => {
                let value = 1 + u32::from(value) % self.config.values.max(1);
                self.xattr(task, inode, |ext2, cx, inode| ext2.set(cx, inode, value))
            }
            Op::XattrDelete { task, inode } => {
                self.xattr(task, inode, |ext2, cx, inode| ext2.delete_inode(cx, inode))
            }
        }
    }

    /// `check` of the blocks whose disposal a task left pending after pointing its inode
    /// elsewhere: their `h_refcount` still counts that inode. Gathered on the stack (one a task
    /// at most), so a check after every xattr op allocates nothing for them.
    fn with_pending_releases<T>(&self, check: impl FnOnce(&[u64]) -> T) -> T {
        let mut blocks = [0u64; TASKS_MAX as usize];
        let mut len = 0;
        for pending in self.pending.iter().flatten() {
            if let Pending::Release { block, clear: false, .. } = *pending {
                blocks[len] = block;
                len += 1;
            }
        }
        check(&blocks[..len])
    }
}

/// The inode a pending step holds (`xattr_sem`).
fn pending_inode(pending: &Pending) -> usize {
    match pending {
        Pending::Share { inode, .. } | Pending::Release { inode, .. } => *inode,
    }
}
impl MbcacheSubject {
    /// The invariants outside the registry: the ext2 filesystem's and the shrinker's.
    fn check_beside_the_registry(&self, observer: &Cx) -> Result<(), Violation> {
        self.with_pending_releases(|pending| self.ext2.check_invariants(observer, pending))?;
        self.shrinker_is_registered()
    }

    /// The shrinker stays registered while the registry lives.
    fn shrinker_is_registered(&self) -> Result<(), Violation> {
        if !self.registry.shrinker_registered() {
            return Err(Violation::new(
                ViolationKind::invariant("shrinker-registered"),
                "the shrinker is not registered while the registry lives",
            ));
        }
        Ok(())
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
            tasks: (0..config.tasks.clamp(1, TASKS_MAX))
                .map(|task| sim.cx(TASK_NAMES[task as usize], task % 2))
                .collect(),
            ext2: Ext2Xattr::new(
                sim,
                &sim.cx("mount", 0),
                config.fixes,
                Waits::WouldBlock,
                config.inodes.clamp(1, 8) as usize,
                config.fs_blocks.max(1) as usize,
            ),
            pending: vec![None; config.tasks.clamp(1, TASKS_MAX) as usize],
            caches: Vec::new(),
            created: 0,
            handles: Vec::new(),
            outcome_cx: sim.observer_cx("outcome", 0),
            check_cx: sim.observer_cx("check_invariants", 0),
            lru_seen: None,
            lru_walked: Vec::new(),
            count_cells: Default::default(),
        }
    }

    fn op_strategy(config: &MbcacheConfig) -> BoxedStrategy<Op> {
        op::strategy(config.api_ops, config.xattr_ops)
    }

    fn op_gen(config: &MbcacheConfig) -> Option<OpGen<Op>> {
        Some(op::generator(config.api_ops, config.xattr_ops))
    }

    fn apply(&mut self, _sim: &Sim, op: &Op) -> Outcome {
        let result = Self::result_of(self.apply_op(op));
        // The checker reads the state the reference compares through an untraced context.
        let observer = &self.outcome_cx;
        // Walked again only when an LRU link was written or an entry freed.
        let (lru_writes, caches_version) = self.registry.outcome_versions();
        let lru = self.registry.lru_serials_unless_seen(
            observer,
            &mut self.lru_seen,
            lru_writes,
            &mut self.lru_walked,
        );
        let counts =
            self.registry.entry_count_list(observer, &self.caches, &mut self.count_cells, caches_version);
        Outcome { result, lru, counts, task: None, shrunk: Vec::new() }
    }

    fn check_invariants(&self, _sim: &Sim) -> Result<(), Violation> {
        self.registry.check_invariants(&self.check_cx)?;
        self.check_beside_the_registry(&self.check_cx)
    }

    /// The registry's facts about what the op wrote (`Registry::check_invariants_touched`), and
    /// after an xattr op the ext2 filesystem's (its cache's confined the same way, its blocks'
    /// counts whole). The filesystem has its own registry, inodes and blocks, which only xattr
    /// ops reach: after any other op it is as the previous check left it.
    fn check_invariants_incremental(&self, _sim: &Sim, op: &Op) -> Result<(), Violation> {
        let observer = &self.check_cx;
        self.registry.check_invariants_touched(observer)?;
        if op.is_xattr() {
            self.with_pending_releases(|pending| self.ext2.check_invariants_incremental(observer, pending))?;
        }
        self.shrinker_is_registered()
    }

    /// The ext2 model's block table is made whole at mount (`fs_blocks` entries), so an edited
    /// artifact's size is bounded here rather than by an allocation failure.
    fn check_config(config: &MbcacheConfig) -> Result<(), String> {
        if config.fs_blocks > FS_BLOCKS_MAX {
            return Err(format!("fs_blocks {} is more than {FS_BLOCKS_MAX}", config.fs_blocks));
        }
        Ok(())
    }

    fn teardown(mut self, _sim: &Sim) -> Result<(), Violation> {
        let oops = |error: MbError| match error {
            MbError::Oops(violation) => *violation,
            other => Violation::new(ViolationKind::invariant("teardown"), format!("teardown: {other:?}")),
        };
        for held in std::mem::take(&mut self.handles) {
            self.registry.release(&self.tasks[held.task as usize], held.handle).map_err(oops)?;
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
        // Find handles first: a disposal left pending may wait for one of them.
        let mut pending: Vec<(usize, Pending)> = std::mem::take(&mut self.pending)
            .into_iter()
            .enumerate()
            .filter_map(|(task, pending)| pending.map(|p| (task, p)))
            .collect();
        pending.sort_by_key(|(_, p)| matches!(p, Pending::Release { .. }));
        for (task, pending) in pending {
            self.ext2.abandon(&self.tasks[task], pending).map_err(oops)?;
        }
        let orphans = self.ext2.unmount(&self.cx).map_err(oops)?;
        if orphans != 0 {
            return Err(Violation::new(
                ViolationKind::Leak,
                format!("ext2 unmount: mb_cache_destroy(ext2_xattr): {orphans} orphaned entries"),
            ));
        }
        Ok(())
    }
}
