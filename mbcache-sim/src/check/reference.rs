//! The reference model, [`MbcacheModel`]: what each op may return, from plain collections
//! (sorted `Vec`s, BTreeMaps, a VecDeque, no sim-core locks), one function per operation. It
//! follows the same kernel version as the subject (the fixes decide `e_used`'s meaning,
//! `dup`/`takeout`, and when the entry count is bumped), and learns from the subject's result
//! only what the kernel leaves open: an allocation's serial, and whether a fault failed it.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;

use sim_core::check::Reference;
use sim_core::{Errno, ViolationKind};

use super::op::{pick_index, pick_where, positions, Op, OpResult, Outcome};
use super::MbcacheConfig;
use crate::fixes::{
    ENTRY_COUNT_AFTER_ALLOC, EXCLUSIVE_GET, SHRINKER_VFS_CACHE_PRESSURE, TAKEOUT_DUP_REMOVED,
};
use crate::hash::hash_long;
use crate::registry::MB_CACHE_WRITER;
use crate::shrink::vfs_cache_pressure_scaled;

mod by_serial;
mod threaded;

use by_serial::BySerial;

/// Most indexes a cache of the reference has (`Op::Create`'s `indexes % 3`), and the keys an
/// `Op::Insert` carries.
const KEYS_MAX: usize = 2;

#[derive(Clone, Debug)]
struct EntryModel {
    cache: usize,
    /// `e_bdev` and `e_block` as last inserted (they outlive unhashing, as in the kernel).
    device: Option<u32>,
    block: u64,
    hashed: bool,
    /// Per index, its key: the first `indexes` of its cache (an op's keys are two, a cache's
    /// indexes at most two), in place, so an entry the model makes or rehashes allocates nothing.
    keys: [u32; KEYS_MAX],
    /// Per index, when the entry was put on its index chain (chains are newest first).
    stamps: [u64; KEYS_MAX],
    used: u32,
    free_failed: bool,
    /// Allocated and not yet inserted (threaded cases insert only such entries).
    fresh: bool,
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
    task: u32,
    serial: u64,
    writer: bool,
    walk: Option<(u32, u32, u32)>,
}

/// A collection of the model and whether it may have changed since the outcome's copy was
/// last found equal to it: every mutable access marks it (through `DerefMut`, so no mutation can
/// skip the mark), a read does not. While it is unmarked and the outcome's copy is the very
/// `Arc` found equal last time, the comparison would read the same two lists again.
#[derive(Clone, Debug, Default)]
struct Tracked<T> {
    value: T,
    changed: bool,
}

impl<T> Tracked<T> {
    fn new(value: T) -> Self {
        Tracked { value, changed: true }
    }
}

impl<T> std::ops::Deref for Tracked<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.value
    }
}

impl<T> std::ops::DerefMut for Tracked<T> {
    fn deref_mut(&mut self) -> &mut T {
        self.changed = true;
        &mut self.value
    }
}

/// The outcome's lists last found equal to the model's ([`MbcacheModel::check`]): the same
/// `Arc`s again, with the model's lists unmarked, need no comparison. Holding them keeps their
/// allocations, so an equal pointer is the same contents.
#[derive(Clone, Debug, Default)]
struct Compared {
    lru: Option<Arc<[u64]>>,
    counts: Option<Arc<[i32]>>,
}

/// The reference model: what each op may return, from plain collections.
#[derive(Clone, Debug)]
pub struct MbcacheModel {
    config: MbcacheConfig,
    caches: Tracked<Vec<CacheModel>>,
    next_cache: usize,
    entries: BySerial<EntryModel>,
    lru: Tracked<VecDeque<u64>>,
    /// Checker state: what `check` last found equal.
    compared: Compared,
    handles: Vec<HeldModel>,
    stamp: u64,
    /// Threaded cases: the tasks whose end (the release of every handle they hold, which is no
    /// operation) an outcome showed to have happened; another op of theirs is then impossible.
    finished: Vec<u32>,
    /// Threaded cases: the tasks whose handles an outcome showed released, though they ran no
    /// release: either their thread ended, or their next op is a lookup, which releases every
    /// handle first (the release and the lookup are two calls, and another task may run between).
    released: Vec<u32>,
    /// Threaded cases: LRU tail additions so far (`release`'s `list_add_tail`), the clock the
    /// order of entries released at an inferred point is judged by.
    lru_clock: u64,
    /// Threaded cases: per LRU entry, the clock its addition set (0: put back at the head).
    lru_added: BTreeMap<u64, u64>,
    /// Threaded cases: per task, the clock when its last op ended.
    op_floor: BTreeMap<u32, u64>,
    /// Threaded cases: the LRU entries an inferred release put there, with the clocks between
    /// which that release really ran (after its task's last op, before the op that showed it).
    loose: BTreeMap<u64, (u64, u64)>,
}

/// What an op must return, or why the subject's result is impossible.
type Expect = Result<OpResult, String>;

impl MbcacheModel {
    fn exclusive(&self) -> bool {
        self.config.fixes.on(EXCLUSIVE_GET)
    }

    fn task(&self, task: u8) -> u32 {
        u32::from(task) % self.config.tasks.clamp(1, super::TASKS_MAX)
    }

    /// The held handles `keep` accepts, whatever their task (for threaded cases, whose ops are
    /// judged apart from the op-level hot path).
    fn held(&self, keep: impl Fn(&HeldModel) -> bool) -> Vec<usize> {
        positions(&self.handles, keep)
    }

    /// The held handle `pick` names among those `keep` accepts, whatever their task.
    fn pick_held(&self, pick: u8, keep: impl Fn(&HeldModel) -> bool) -> Option<usize> {
        pick_where(pick, &self.handles, keep)
    }

    /// Unhashing handle `at`'s entry while its task walks it with a find handle is misuse
    /// (`at` itself counts when the op keeps it).
    fn misuse(&self, at: usize, keeps_handle: bool) -> bool {
        let held = &self.handles[at];
        let walking = |(other, h): (usize, &HeldModel)| {
            h.task == held.task
                && h.walk.is_some()
                && h.serial == held.serial
                && (keeps_handle || other != at)
        };
        self.handles.iter().enumerate().any(walking)
    }

    fn cache_pos(&self, pick: u8) -> Option<usize> {
        pick_index(pick, self.caches.len())
    }

    fn cache_by_id(&self, id: usize) -> &CacheModel {
        self.caches.iter().find(|c| c.id == id).expect("entry of a live cache")
    }

    fn cache_by_id_mut(&mut self, id: usize) -> &mut CacheModel {
        self.caches.iter_mut().find(|c| c.id == id).expect("entry of a live cache")
    }

    fn device(&self, device: u8) -> u32 {
        u32::from(device) % self.config.devices
    }

    fn block(&self, block: u16) -> u64 {
        u64::from(block) % u64::from(self.config.blocks)
    }

    /// `__mb_cache_entry_forget` with `nofs` telling whether the free callback refuses.
    fn forget(&mut self, serial: u64, nofs: bool) {
        let cache = self.entries[&serial].cache;
        if self.cache_by_id(cache).free_op && nofs {
            self.entries.get_mut(&serial).expect("entry").free_failed = true;
            self.lru.push_front(serial);
            if self.config.threaded {
                self.lru_added.insert(serial, 0);
                self.loose.remove(&serial);
            }
        } else {
            self.entries.remove(&serial);
            self.cache_by_id_mut(cache).count -= 1;
            self.lru_added.remove(&serial);
            self.loose.remove(&serial);
        }
    }

    /// `__mb_cache_entry_unhash`.
    fn unhash(&mut self, serial: u64) {
        self.entries.get_mut(&serial).expect("entry").hashed = false;
    }

    /// `__mb_cache_entry_release_unlock`: drops one use; the last one frees an unhashed entry
    /// and puts a hashed one on the LRU tail.
    fn release(&mut self, serial: u64) {
        let exclusive = self.exclusive();
        let entry = self.entries.get_mut(&serial).expect("entry of a held handle");
        if exclusive && entry.used >= MB_CACHE_WRITER {
            entry.used -= MB_CACHE_WRITER;
        }
        entry.used -= 1;
        if entry.used == 0 {
            if !entry.hashed {
                self.forget(serial, false);
            } else {
                self.lru.push_back(serial);
                if self.config.threaded {
                    self.lru_clock += 1;
                    self.lru_added.insert(serial, self.lru_clock);
                    self.loose.remove(&serial);
                }
            }
        }
    }

    /// Takes a use of `serial`, as `get` (writer) or a find (reader) does. None: would block.
    fn take_use(&mut self, serial: u64, writer: bool) -> Option<()> {
        let exclusive = self.exclusive();
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

    /// The first of `candidates` (chain order) of `device` with `key` in index `index`.
    fn first_match(&self, candidates: &[u64], index: u32, device: u32, key: u32) -> Option<u64> {
        candidates.iter().copied().find(|serial| {
            let entry = &self.entries[serial];
            entry.device == Some(device) && entry.keys[index as usize] == key
        })
    }

    /// `__mb_cache_entry_find` over `candidates` (chain order). Err: the match would block.
    fn find_in(&mut self, candidates: &[u64], index: u32, device: u32, key: u32) -> Result<Option<u64>, ()> {
        match self.first_match(candidates, index, device, key) {
            Some(serial) => match self.take_use(serial, false) {
                Some(()) => Ok(Some(serial)),
                None => Err(()),
            },
            None => Ok(None),
        }
    }

    /// The hashed entry of cache `id` for (`device`, `block`), as `mb_cache_entry_get`'s walk
    /// of the block chain finds it.
    fn block_entry(&self, id: usize, device: u32, block: u64) -> Option<u64> {
        self.entries
            .iter()
            .find(|(_, e)| e.cache == id && e.hashed && e.device == Some(device) && e.block == block)
            .map(|(s, _)| *s)
    }

    /// Holds `found` as a reader walking `walk`, the result a find returns.
    fn hold_found(&mut self, task: u32, found: Option<u64>, walk: (u32, u32, u32)) -> OpResult {
        if let Some(serial) = found {
            self.handles.push(HeldModel { task, serial, writer: false, walk: Some(walk) });
        }
        OpResult::Entry(found)
    }

    /// `mb_cache_create`: EINVAL for an entry size below the header and its indexes.
    fn create(&mut self, indexes: u8, bucket_bits: u8, undersized: bool, free_op: bool) -> OpResult {
        if self.caches.len() >= self.config.caches_max {
            return OpResult::Skipped;
        }
        if undersized {
            return OpResult::Errno(Errno::EINVAL);
        }
        self.caches.push(CacheModel {
            id: self.next_cache,
            indexes: u32::from(indexes) % 3,
            bucket_bits: u32::from(bucket_bits) % (self.config.bucket_bits_max + 1),
            free_op,
            count: 0,
        });
        self.next_cache += 1;
        OpResult::Created
    }

    /// The subject releases the cache's handles, then `mb_cache_destroy` frees its LRU entries
    /// and reports the count left as orphans.
    fn destroy(&mut self, cache: u8) -> OpResult {
        let Some(at) = self.cache_pos(cache) else { return OpResult::Skipped };
        let id = self.caches[at].id;
        for held in std::mem::take(&mut self.handles) {
            if self.entries[&held.serial].cache == id {
                self.release(held.serial);
            } else {
                self.handles.push(held);
            }
        }
        let lru: Vec<u64> = self.lru.iter().copied().filter(|s| self.entries[s].cache == id).collect();
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

    /// `mb_cache_entry_alloc`: a new exclusive entry, or ENOMEM under faults (which, without
    /// `entry-count-after-alloc`, still counts one entry).
    fn alloc(&mut self, task: u32, cache: u8, actual: &OpResult) -> Expect {
        let Some(at) = self.cache_pos(cache) else { return Ok(OpResult::Skipped) };
        let used = if self.exclusive() { 1 + MB_CACHE_WRITER } else { 1 };
        match actual {
            OpResult::Errno(Errno::ENOMEM) if self.config.alloc_fault_percent > 0 => {
                if !self.config.fixes.on(ENTRY_COUNT_AFTER_ALLOC) {
                    self.caches[at].count += 1;
                }
                Ok(OpResult::Errno(Errno::ENOMEM))
            }
            OpResult::Entry(Some(serial)) if !self.entries.contains_key(serial) => {
                let cache = &mut self.caches[at];
                cache.count += 1;
                let entry = EntryModel {
                    cache: cache.id,
                    device: None,
                    block: 0,
                    hashed: false,
                    keys: [0; KEYS_MAX],
                    stamps: [0; KEYS_MAX],
                    used,
                    free_failed: false,
                    fresh: true,
                };
                self.entries.insert(*serial, entry);
                self.handles.push(HeldModel { task, serial: *serial, writer: true, walk: None });
                Ok(actual.clone())
            }
            other => Err(format!("alloc may return a new entry, or ENOMEM under faults; got {other:?}")),
        }
    }

    /// `mb_cache_entry_insert`: EBUSY if the cache already hashes (device, block).
    fn insert(&mut self, handle: u8, device: u8, block: u16, keys: [u8; 2]) -> OpResult {
        let Some(at) = self.pick_held(handle, |h| h.writer) else { return OpResult::Skipped };
        if self.misuse(at, true) {
            return OpResult::Misuse;
        }
        let serial = self.handles[at].serial;
        self.insert_entry(serial, device, block, keys)
    }

    /// Hashes `serial` under (`device`, `block`) and `keys`, or EBUSY.
    fn insert_entry(&mut self, serial: u64, device: u8, block: u16, keys: [u8; 2]) -> OpResult {
        let (device, block) = (self.device(device), self.block(block));
        let cache = self.entries[&serial].cache;
        let indexes = self.cache_by_id(cache).indexes as usize;
        let busy = self
            .entries
            .values()
            .any(|e| e.cache == cache && e.hashed && e.device == Some(device) && e.block == block);
        if busy {
            return OpResult::Errno(Errno::EBUSY);
        }
        let stamp = self.stamp;
        self.stamp += 1;
        let key_count = self.config.keys;
        let entry = self.entries.get_mut(&serial).expect("entry");
        entry.fresh = false;
        entry.hashed = true;
        entry.device = Some(device);
        entry.block = block;
        for (at, key) in keys[..indexes].iter().enumerate() {
            entry.keys[at] = u32::from(*key) % key_count;
            entry.stamps[at] = stamp;
        }
        OpResult::Done
    }

    /// `mb_cache_entry_release`.
    fn release_op(&mut self, handle: u8) -> OpResult {
        let Some(at) = self.pick_held(handle, |_| true) else {
            return OpResult::Skipped;
        };
        let held = self.handles.remove(at);
        self.release(held.serial);
        OpResult::Done
    }

    /// `mb_cache_entry_get`: the hashed entry for (device, block), taken exclusively.
    fn get(&mut self, task: u8, cache: u8, device: u8, block: u16) -> OpResult {
        let task = self.task(task);
        let Some(at) = self.cache_pos(cache) else { return OpResult::Skipped };
        let id = self.caches[at].id;
        let (device, block) = (self.device(device), self.block(block));
        let Some(serial) = self.block_entry(id, device, block) else { return OpResult::Entry(None) };
        match self.take_use(serial, true) {
            None => OpResult::WouldBlock,
            Some(()) => {
                self.handles.push(HeldModel { task, serial, writer: true, walk: None });
                OpResult::Entry(Some(serial))
            }
        }
    }

    /// `mb_cache_entry_find_first`: the newest match on the key's index chain, shared.
    fn find_first(&mut self, task: u8, cache: u8, index: u8, device: u8, key: u8) -> OpResult {
        let task = self.task(task);
        let Some(at) = self.cache_pos(cache) else { return OpResult::Skipped };
        let (id, indexes, bits) = (self.caches[at].id, self.caches[at].indexes, self.caches[at].bucket_bits);
        if indexes == 0 {
            return OpResult::Skipped;
        }
        let index = u32::from(index) % indexes;
        let device = self.device(device);
        let key = u32::from(key) % self.config.keys;
        let chain = self.chain(id, index, hash_long(u64::from(key), bits));
        match self.find_in(&chain, index, device, key) {
            Err(()) => OpResult::WouldBlock,
            Ok(found) => self.hold_found(task, found, (index, device, key)),
        }
    }

    /// `mb_cache_entry_find_next`: continues from the held entry's chain position. From an
    /// unhashed entry the kernel follows LIST_POISON1; from one re-hashed into another bucket it
    /// walks into a foreign list head.
    fn find_next(&mut self, handle: u8) -> OpResult {
        let Some(at) = self.pick_held(handle, |h| h.walk.is_some()) else { return OpResult::Skipped };
        let task = self.handles[at].task;
        let held = self.handles[at].clone();
        let walk = held.walk.expect("a walking handle");
        let (index, device, key) = walk;
        let prev = self.entries[&held.serial].clone();
        if !prev.hashed {
            return OpResult::Oops(ViolationKind::ListPoison);
        }
        let bits = self.cache_by_id(prev.cache).bucket_bits;
        let prev_bucket = hash_long(u64::from(prev.keys[index as usize]), bits);
        let key_bucket = hash_long(u64::from(key), bits);
        let chain = self.chain(prev.cache, index, prev_bucket);
        let after_prev: Vec<u64> = chain.iter().copied().skip_while(|s| *s != held.serial).skip(1).collect();
        let found = match self.find_in(&after_prev, index, device, key) {
            Err(()) => return OpResult::WouldBlock,
            Ok(None) if prev_bucket != key_bucket => {
                return OpResult::Oops(ViolationKind::finding("wild-pointer"))
            }
            Ok(found) => found,
        };
        self.handles.remove(at);
        self.release(held.serial);
        self.hold_found(task, found, walk)
    }

    /// `mb_cache_entry_dup` (ENOSYS once `takeout-dup-removed` removed it).
    fn dup(&mut self, handle: u8) -> OpResult {
        let Some(at) = self.pick_held(handle, |_| true) else {
            return OpResult::Skipped;
        };
        if self.config.fixes.on(TAKEOUT_DUP_REMOVED) {
            return OpResult::Errno(Errno::ENOSYS);
        }
        let held = self.handles[at].clone();
        self.entries.get_mut(&held.serial).expect("entry").used += 1;
        self.handles.push(held.clone());
        OpResult::Entry(Some(held.serial))
    }

    /// `mb_cache_entry_takeout` (ENOSYS once `takeout-dup-removed` removed it).
    fn takeout(&mut self, handle: u8) -> OpResult {
        let Some(at) = self.pick_held(handle, |_| true) else {
            return OpResult::Skipped;
        };
        if self.misuse(at, true) {
            return OpResult::Misuse;
        }
        if self.config.fixes.on(TAKEOUT_DUP_REMOVED) {
            return OpResult::Errno(Errno::ENOSYS);
        }
        let serial = self.handles[at].serial;
        self.unhash(serial);
        OpResult::Done
    }

    /// `mb_cache_entry_free`: unhash, then release.
    fn free(&mut self, handle: u8) -> OpResult {
        let exclusive = self.exclusive();
        let Some(at) = self.pick_held(handle, |h| h.writer || !exclusive) else {
            return OpResult::Skipped;
        };
        if self.misuse(at, false) {
            return OpResult::Misuse;
        }
        let held = self.handles.remove(at);
        self.unhash(held.serial);
        self.release(held.serial);
        OpResult::Done
    }

    /// `mb_cache_shrink`: frees the device's unused entries (on the LRU), whatever their cache.
    fn shrink(&mut self, cache: u8, device: u8) -> OpResult {
        if self.cache_pos(cache).is_none() {
            return OpResult::Skipped;
        }
        let device = self.device(device);
        let chosen: Vec<u64> =
            self.lru.iter().copied().filter(|s| self.entries[s].device == Some(device)).collect();
        self.lru.retain(|s| !chosen.contains(s));
        for serial in chosen {
            self.unhash(serial);
            self.forget(serial, false);
        }
        OpResult::Done
    }

    /// `mb_cache_shrink_fn`: the count before scanning, then up to `nr_to_scan` from the LRU head.
    fn shrink_fn(&mut self, nr_to_scan: u8, nofs: bool) -> OpResult {
        let nr_to_scan = usize::from(nr_to_scan % 5);
        let count = self.caches.iter().map(|c| c.count).sum();
        let taken: Vec<u64> = (0..nr_to_scan).map_while(|_| self.lru.pop_front()).collect();
        for serial in taken {
            self.unhash(serial);
            self.forget(serial, nofs);
        }
        if self.config.fixes.on(SHRINKER_VFS_CACHE_PRESSURE) {
            return OpResult::Count(vfs_cache_pressure_scaled(count));
        }
        OpResult::Count(count)
    }

    /// What `op` must return, given the subject's `actual` result where the kernel leaves it open.
    fn expect(&mut self, op: &Op, actual: &OpResult) -> Expect {
        Ok(match *op {
            Op::Create { indexes, bucket_bits, undersized, free_op } => {
                self.create(indexes, bucket_bits, undersized, free_op)
            }
            Op::Destroy { cache } => self.destroy(cache),
            Op::Alloc { task, cache } => return self.alloc(self.task(task), cache, actual),
            Op::Insert { handle, device, block, keys } => self.insert(handle, device, block, keys),
            Op::Release { handle } => self.release_op(handle),
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
            // The ext2 filesystem has its own mbcache world, judged by its invariants and
            // lockdep: the reference only checks that the API world is untouched.
            Op::XattrSet { .. } | Op::XattrDelete { .. } => match actual {
                OpResult::Done | OpResult::Pending | OpResult::WouldBlock | OpResult::Errno(_) => {
                    actual.clone()
                }
                other => return Err(format!("an xattr call returned {other:?}")),
            },
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
            caches: Tracked::new(Vec::new()),
            next_cache: 0,
            entries: BySerial::new(),
            lru: Tracked::new(VecDeque::new()),
            compared: Compared::default(),
            handles: Vec::new(),
            stamp: 0,
            finished: Vec::new(),
            released: Vec::new(),
            lru_clock: 0,
            lru_added: BTreeMap::new(),
            op_floor: BTreeMap::new(),
            loose: BTreeMap::new(),
        }
    }

    fn check(&mut self, op: &Op, actual: &Outcome) -> Result<(), String> {
        if self.config.threaded {
            let expect = self.expect_threaded(op, actual)?;
            if expect != actual.result {
                return Err(format!("expected {expect:?}"));
            }
            return Ok(());
        }
        let expect = self.expect(op, &actual.result)?;
        if expect != actual.result {
            return Err(format!("expected {expect:?}"));
        }
        if let OpResult::Oops(_) = expect {
            return Ok(());
        }
        self.lru_and_counts_match(actual)
    }
}

impl MbcacheModel {
    /// The outcome's LRU and `c_entry_count`s equal the model's, each compared unless it is the
    /// `Arc` last found equal and the model's list is unchanged since ([`Tracked`]).
    fn lru_and_counts_match(&mut self, actual: &Outcome) -> Result<(), String> {
        fn unchanged<T: ?Sized>(changed: bool, seen: &Option<Arc<T>>, now: &Arc<T>) -> bool {
            !changed && seen.as_ref().is_some_and(|seen| Arc::ptr_eq(seen, now))
        }
        if !unchanged(self.lru.changed, &self.compared.lru, &actual.lru) {
            // Compared in place; the expected list is built only for the message.
            if !self.lru.iter().eq(actual.lru.iter()) {
                let lru: Vec<u64> = self.lru.iter().copied().collect();
                return Err(format!("lru expected {lru:?}, actual {:?}", actual.lru));
            }
            self.compared.lru = Some(Arc::clone(&actual.lru));
            self.lru.changed = false;
        }
        if !unchanged(self.caches.changed, &self.compared.counts, &actual.counts) {
            if !self.caches.iter().map(|c| c.count).eq(actual.counts.iter().copied()) {
                let counts: Vec<i32> = self.caches.iter().map(|c| c.count).collect();
                return Err(format!("c_entry_count expected {counts:?}, actual {:?}", actual.counts));
            }
            self.compared.counts = Some(Arc::clone(&actual.counts));
            self.caches.changed = false;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixes::{Fixes, PRESET_FIXED};

    fn outcome(result: OpResult, lru: &Arc<[u64]>, counts: &Arc<[i32]>) -> Outcome {
        Outcome { result, lru: Arc::clone(lru), counts: Arc::clone(counts), task: None, shrunk: Vec::new() }
    }

    /// A model with one cache and one allocated entry (serial 1, not hashed), both checked, and
    /// the outcome lists it last found equal.
    fn one_entry() -> (MbcacheModel, Arc<[u64]>, Arc<[i32]>) {
        let mut model = MbcacheModel::new(&MbcacheConfig::new(PRESET_FIXED, Fixes::all()));
        let (lru, none): (Arc<[u64]>, Arc<[i32]>) = (Arc::from([]), Arc::from([0]));
        let create = Op::Create { indexes: 1, bucket_bits: 0, undersized: false, free_op: false };
        model.check(&create, &outcome(OpResult::Created, &lru, &none)).expect("create");
        let one: Arc<[i32]> = Arc::from([1]);
        let alloc = Op::Alloc { task: 0, cache: 0 };
        model.check(&alloc, &outcome(OpResult::Entry(Some(1)), &lru, &one)).expect("alloc");
        (model, lru, one)
    }

    /// A lookup that finds nothing and changes nothing.
    const MISS: Op = Op::Get { task: 0, cache: 0, device: 0, block: 3 };

    #[test]
    fn a_model_change_is_compared_though_the_outcome_shares_its_lists() {
        let (mut model, lru, one) = one_entry();
        model.check(&MISS, &outcome(OpResult::Entry(None), &lru, &one)).expect("nothing changed");
        // The release frees the unhashed entry: the model's count drops, the outcome's stale
        // `Arc` (the very one found equal before) must not pass for it.
        let release = Op::Release { handle: 0 };
        let found = model.check(&release, &outcome(OpResult::Done, &lru, &one)).expect_err("a stale count");
        assert!(found.contains("c_entry_count expected [0]"), "{found}");
    }

    #[test]
    fn a_new_outcome_list_is_compared_though_the_model_is_unchanged() {
        let (mut model, lru, one) = one_entry();
        model.check(&MISS, &outcome(OpResult::Entry(None), &lru, &one)).expect("nothing changed");
        let (other_lru, other_counts): (Arc<[u64]>, Arc<[i32]>) = (Arc::from([1]), Arc::from([2]));
        let found = model.check(&MISS, &outcome(OpResult::Entry(None), &other_lru, &one)).expect_err("lru");
        assert!(found.contains("lru expected []"), "{found}");
        let found =
            model.check(&MISS, &outcome(OpResult::Entry(None), &lru, &other_counts)).expect_err("count");
        assert!(found.contains("c_entry_count expected [1]"), "{found}");
        // An equal list in a new allocation passes, and is the one remembered from then on.
        let same: Arc<[i32]> = Arc::from([1]);
        model.check(&MISS, &outcome(OpResult::Entry(None), &lru, &same)).expect("equal contents");
        assert!(model.compared.counts.as_ref().is_some_and(|seen| Arc::ptr_eq(seen, &same)));
    }
}
