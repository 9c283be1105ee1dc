//! The registry's invariants, one function per fact, each failing with a message that dumps the
//! state it needs. Run after every operation of the one-thread simulation (and at quiescent
//! points of threaded runs) through an observer context, so the checks add no lock events to the
//! trace or lockdep's graph.

use std::collections::{BTreeMap, BTreeSet};

use sim_core::sync::atomic::Ordering;
use sim_core::{Cx, Violation, ViolationKind};

use crate::cache::{CacheInfo, MbCache};
use crate::fixes::EXCLUSIVE_GET;
use crate::hash::hash_long;
use crate::registry::{entry_of_lru, locked, Mem, Registry, MB_CACHE_WRITER, WALK_LIMIT};
use crate::registry::{CacheHandle, EntryRef, HeadId, Node};
use sim_core::list::{self, ListMemory, Oops};

type Checked<T = ()> = Result<T, Violation>;

fn fail<T>(kind: ViolationKind, message: String) -> Checked<T> {
    Err(Violation::new(kind, message))
}

fn oops(oops: Oops) -> Violation {
    oops.0
}

/// How often each entry was seen on the block chains walked, and on each index's chains.
type ChainCounts = (BTreeMap<EntryRef, u32>, BTreeMap<(EntryRef, u32), u32>);

/// The live handles, in id order (a copy of the handle table's, taken before the lock).
type Handles = Vec<(u64, EntryRef)>;

/// Which handles refer to each entry, and where each entry was found on the lists: what the
/// per-entry facts compare.
struct Seen<'a> {
    handles_per_entry: &'a BTreeMap<EntryRef, u32>,
    on_lru: &'a BTreeSet<EntryRef>,
    hashed: BTreeMap<EntryRef, u32>,
}

/// How many of `handles` refer to each entry.
fn handles_per_entry(handles: &[(u64, EntryRef)]) -> BTreeMap<EntryRef, u32> {
    let mut counts: BTreeMap<EntryRef, u32> = BTreeMap::new();
    for (_, entry) in handles {
        *counts.entry(*entry).or_default() += 1;
    }
    counts
}

/// Sorts `items` and drops repeats: a set as a `Vec`, in the order a `BTreeSet` iterates.
fn sorted_set<T: Ord>(mut items: Vec<T>) -> Vec<T> {
    items.sort_unstable();
    items.dedup();
    items
}

impl Registry {
    /// Checks the registry's invariants, one fact per check, with the state each needs.
    pub fn check_invariants(&self, cx: &Cx) -> Checked {
        let handles: Handles = locked(&self.handles).iter().collect();
        let mut locked_global = self.lock(cx);
        let caches = locked_global.guard.caches.clone();
        let entry_counts = Self::entry_counts(&mut locked_global, &caches)?;
        let mut mem = locked_global.mem();
        Self::handles_refer_to_live_entries(&mut mem, &handles)?;
        let on_lru = Self::lru_holds_unused_entries_in_release_order(&mut mem)?;
        let handles_per_entry = handles_per_entry(&handles);
        for (cache_handle, count) in caches.into_iter().zip(entry_counts) {
            let cache = mem.cache(cache_handle).map_err(oops)?;
            Self::entry_count_equals_live_entries(cache, count)?;
            let (info, live) = (cache.info.clone(), cache.entries.live_handles());
            let hashed = Self::block_chains_hold_each_key_once(&mut mem, cache_handle, &info)?;
            for index in 0..info.indexes_count {
                Self::index_chains_hold_the_hashed_entries(&mut mem, cache_handle, &info, index, &hashed)?;
            }
            let seen = Seen { handles_per_entry: &handles_per_entry, on_lru: &on_lru, hashed };
            for entry_handle in live {
                let entry = EntryRef { cache: cache_handle, entry: entry_handle };
                self.entry_use_matches_its_handles_and_lists(&mut mem, entry, &seen)?;
            }
        }
        Ok(())
    }

    /// The invariants of what the operations since the last check wrote, a check of the same
    /// facts as [`Registry::check_invariants`] confined to the chains and entries the write log
    /// names (see `registry::Touched`): the handles and every cache's `c_entry_count` (cheap:
    /// few of them), each chain a written or freed entry is keyed for or sits on, and each written
    /// entry's use count, hash and LRU membership, and LRU order against its two neighbours. What
    /// only a whole walk sees (an entry on the LRU twice, a chain corrupted by a write the log
    /// missed) is left to the full check, which the harness runs every few operations; a log that
    /// overflowed runs the full check now.
    pub fn check_invariants_touched(&self, cx: &Cx) -> Checked {
        let handles: Handles = locked(&self.handles).iter().collect();
        let mut locked_global = self.lock(cx);
        let touched = std::mem::take(&mut locked_global.mem().memory.touched);
        if touched.overflowed {
            drop(locked_global);
            return self.check_invariants(cx);
        }
        let caches = locked_global.guard.caches.clone();
        let entry_counts = Self::entry_counts(&mut locked_global, &caches)?;
        let mut mem = locked_global.mem();
        // The facts in the whole check's order, so both name the same one when several break.
        Self::handles_refer_to_live_entries(&mut mem, &handles)?;
        let live = |e: &EntryRef| mem.memory.caches.peek(e.cache).is_some_and(|c| c.entries.is_live(e.entry));
        let entries = sorted_set(touched.entries.iter().copied().filter(live).collect());
        let mut on_lru = BTreeSet::new();
        for entry in &entries {
            if Self::lru_neighbours_keep_release_order(&mut mem, *entry)? {
                on_lru.insert(*entry);
            }
        }
        for (cache_handle, count) in caches.iter().zip(entry_counts) {
            Self::entry_count_equals_live_entries(mem.cache(*cache_handle).map_err(oops)?, count)?;
        }
        let mut heads: Vec<HeadId> = touched.heads;
        for entry in &entries {
            Self::chains_of(&mut mem, *entry, &mut heads)?;
        }
        let (hashed, index_seen) = Self::walk_chains(&mut mem, &sorted_set(heads))?;
        let handles_per_entry = handles_per_entry(&handles);
        let seen = Seen { handles_per_entry: &handles_per_entry, on_lru: &on_lru, hashed };
        for entry in &entries {
            Self::entry_is_once_on_each_chain(&mut mem, *entry, &seen.hashed, &index_seen)?;
            self.entry_use_matches_its_handles_and_lists(&mut mem, *entry, &seen)?;
        }
        Ok(())
    }

    /// Every cache's `c_entry_count`, a `sim_core::sync` atomic, read with no `Memory` guard held.
    fn entry_counts(
        locked_global: &mut crate::registry::Locked<'_>,
        caches: &[CacheHandle],
    ) -> Checked<Vec<i32>> {
        let counts = {
            let mem = locked_global.mem();
            let count_of = |cache| mem.cache(cache).map(|c| c.info.entry_count.clone()).map_err(oops);
            caches.iter().map(|cache| count_of(*cache)).collect::<Checked<Vec<_>>>()?
        };
        locked_global.unlock_memory();
        Ok(counts.iter().map(|count| count.load(Ordering::SeqCst)).collect())
    }

    /// Adds to `heads` the chains `entry` is keyed for and the chains it sits on (found by
    /// following its links to a list head), so a walk of them sees it wherever it is.
    fn chains_of(mem: &mut Mem<'_>, entry: EntryRef, heads: &mut Vec<HeadId>) -> Checked {
        let bits = mem.cache(entry.cache).map_err(oops)?.info.bucket_bits;
        let object = mem.entry(entry).map_err(oops)?;
        heads.push(HeadId::Block(
            entry.cache,
            hash_long(object.bdev.wrapping_add(object.block & 0xffff_ffff), bits),
        ));
        let indexes = object.indexes.len() as u32;
        for (index, (_, key)) in object.indexes.iter().enumerate() {
            heads.push(HeadId::Index(entry.cache, index as u32, hash_long(u64::from(*key), bits)));
        }
        let nodes =
            std::iter::once(Node::Block(entry)).chain((0..indexes).map(|index| Node::Index(entry, index)));
        for start in nodes {
            // Only live links are followed: an unhashed entry's index links are poisoned, and a
            // corrupt chain is the full check's to report.
            let mut at = start;
            for _ in 0..WALK_LIMIT {
                match mem.read(at).map_err(oops)?.next {
                    list::Link::To(Node::Head(head)) => {
                        heads.push(head);
                        break;
                    }
                    list::Link::To(next) if next != start => at = next,
                    _ => break,
                }
            }
        }
        Ok(())
    }

    /// Walks the chains in `heads` with the full check's per-chain facts. Returns how often each
    /// entry was seen on a block chain and on each index's chains.
    fn walk_chains(mem: &mut Mem<'_>, heads: &[HeadId]) -> Checked<ChainCounts> {
        let mut hashed = BTreeMap::new();
        let mut index_seen = BTreeMap::new();
        for head in heads {
            let (HeadId::Block(cache, _) | HeadId::Index(cache, _, _)) = *head else { continue };
            let Some(info) = mem.memory.caches.peek(cache).map(|c| c.info.clone()) else { continue };
            match *head {
                HeadId::Block(_, bucket) => {
                    Self::block_chain_holds_each_key_once(mem, cache, &info, bucket, &mut hashed)?;
                }
                HeadId::Index(_, index, bucket) => {
                    let mut seen = BTreeMap::new();
                    Self::index_chain_holds_its_keys(mem, cache, &info, (index, bucket), &mut seen)?;
                    for (entry, count) in seen {
                        *index_seen.entry((entry, index)).or_default() += count;
                    }
                }
                _ => {}
            }
        }
        Ok((hashed, index_seen))
    }

    /// A written entry is on its block chain at most once, and on each index's chains exactly as
    /// often as on the block chains (the per-entry part of `index-matches-block`).
    fn entry_is_once_on_each_chain(
        mem: &mut Mem<'_>,
        entry: EntryRef,
        hashed: &BTreeMap<EntryRef, u32>,
        index_seen: &BTreeMap<(EntryRef, u32), u32>,
    ) -> Checked {
        let object = mem.entry(entry).map_err(oops)?;
        let on_block = hashed.get(&entry).copied().unwrap_or(0);
        for index in 0..object.indexes.len() as u32 {
            let on_index = index_seen.get(&(entry, index)).copied().unwrap_or(0);
            if on_block > 1 || on_index != on_block {
                return fail(
                    ViolationKind::invariant("index-matches-block"),
                    format!(
                        "entry {}: on block chains {on_block} times, on index {index} chains {on_index}",
                        object.id
                    ),
                );
            }
        }
        Ok(())
    }

    /// A written entry on the LRU is unused and hashed (or put back by a failed free), and its
    /// release stamp lies between its neighbours'. Returns whether it is on the LRU.
    fn lru_neighbours_keep_release_order(mem: &mut Mem<'_>, entry: EntryRef) -> Checked<bool> {
        if list::list_empty(mem, Node::Lru(entry)).map_err(oops)? {
            return Ok(false);
        }
        let hashed = Registry::is_hashed(mem, entry).map_err(oops)?;
        let before = list::prev(mem, Node::Lru(entry), "check_invariants").map_err(oops)?;
        let after = list::next(mem, Node::Lru(entry), "check_invariants").map_err(oops)?;
        let stamp_of = |mem: &mut Mem<'_>, node| match node {
            Node::Lru(other) => mem.entry(other).map(|o| Some(o.lru_stamp)).map_err(oops),
            _ => Ok(None),
        };
        let (stamp_before, stamp_after) = (stamp_of(mem, before)?, stamp_of(mem, after)?);
        let object = mem.entry(entry).map_err(oops)?;
        if object.used != 0 {
            return fail(
                ViolationKind::invariant("lru-entry-in-use"),
                format!("entry {} is on the lru with e_used {}", object.id, object.used),
            );
        }
        if !hashed && !object.free_failed {
            return fail(
                ViolationKind::invariant("lru-entry-unhashed"),
                format!("entry {} is on the lru, unhashed, and its free never failed", object.id),
            );
        }
        let stamp = object.lru_stamp;
        if stamp_before.is_some_and(|s| s > stamp) || stamp_after.is_some_and(|s| s < stamp) {
            return fail(
                ViolationKind::invariant("lru-order"),
                format!(
                    "lru out of release order: entry {} released at {stamp} between {stamp_before:?} and {stamp_after:?}",
                    object.id
                ),
            );
        }
        Ok(true)
    }

    /// Nothing is freed while a handle refers to it.
    fn handles_refer_to_live_entries(mem: &mut Mem<'_>, handles: &[(u64, EntryRef)]) -> Checked {
        for (id, entry) in handles {
            if !mem.memory.caches.is_live(entry.cache) {
                return fail(
                    ViolationKind::invariant("handle-outlives-cache"),
                    format!("handle #{id} refers to an entry of a destroyed cache"),
                );
            }
            let cache = mem.cache(entry.cache).map_err(oops)?;
            if !cache.entries.is_live(entry.entry) {
                return fail(
                    ViolationKind::invariant("handle-outlives-entry"),
                    format!("handle #{id} refers to freed entry {:?} of {}", entry.entry, cache.info.name),
                );
            }
        }
        Ok(())
    }

    /// The LRU holds each entry at most once, each unused and hashed (or put back by a failed
    /// free), in release order. Returns the entries on it.
    fn lru_holds_unused_entries_in_release_order(mem: &mut Mem<'_>) -> Checked<BTreeSet<EntryRef>> {
        let nodes = list::walk(mem, Node::Head(HeadId::Lru), WALK_LIMIT).map_err(oops)?;
        let mut on_lru = BTreeSet::new();
        let mut stamp_before = 0;
        for node in &nodes {
            let entry = entry_of_lru(*node);
            let hashed = Registry::is_hashed(mem, entry).map_err(oops)?;
            let fields = mem.entry(entry).map_err(oops)?;
            let object = fields;
            let used = object.used;
            if used != 0 {
                return fail(
                    ViolationKind::invariant("lru-entry-in-use"),
                    format!("entry {} is on the lru with e_used {used}", object.id),
                );
            }
            if !hashed && !fields.free_failed {
                return fail(
                    ViolationKind::invariant("lru-entry-unhashed"),
                    format!("entry {} is on the lru, unhashed, and its free never failed", object.id),
                );
            }
            if fields.lru_stamp < stamp_before {
                return fail(
                    ViolationKind::invariant("lru-order"),
                    format!(
                        "lru out of release order: entry {} released at {} after one released at {stamp_before}",
                        object.id, fields.lru_stamp
                    ),
                );
            }
            stamp_before = fields.lru_stamp;
            if !on_lru.insert(entry) {
                return fail(
                    ViolationKind::invariant("lru-twice"),
                    format!("entry {} is on the lru twice", object.id),
                );
            }
        }
        Ok(on_lru)
    }

    /// A cache's `c_entry_count` equals its allocated entries (a leaked count is a leak).
    fn entry_count_equals_live_entries(cache: &MbCache, count: i32) -> Checked {
        let live = cache.entries.live();
        if i64::from(count) != live as i64 {
            return fail(
                ViolationKind::Leak,
                format!(
                    "cache {}: c_entry_count is {count} but {live} entries are allocated",
                    cache.info.name
                ),
            );
        }
        Ok(())
    }

    /// Each block chain holds only entries whose (bdev, block) hashes to it, and each key once.
    /// Returns how often each entry was seen on a block chain.
    fn block_chains_hold_each_key_once(
        mem: &mut Mem<'_>,
        cache_handle: CacheHandle,
        cache: &CacheInfo,
    ) -> Checked<BTreeMap<EntryRef, u32>> {
        let mut hashed: BTreeMap<EntryRef, u32> = BTreeMap::new();
        for bucket in 0..1u32 << cache.bucket_bits {
            Self::block_chain_holds_each_key_once(mem, cache_handle, cache, bucket, &mut hashed)?;
        }
        Ok(hashed)
    }

    /// One block chain holds only entries whose (bdev, block) hashes to it, and each key once (a
    /// key hashes to one chain, so a key seen twice in the cache is seen twice on one chain);
    /// counts each entry seen in `hashed`.
    fn block_chain_holds_each_key_once(
        mem: &mut Mem<'_>,
        cache_handle: CacheHandle,
        cache: &CacheInfo,
        bucket: u32,
        hashed: &mut BTreeMap<EntryRef, u32>,
    ) -> Checked {
        let mut keys_seen: BTreeMap<(u64, u64), u64> = BTreeMap::new();
        let head = Node::Head(HeadId::Block(cache_handle, bucket));
        for node in list::walk(mem, head, WALK_LIMIT).map_err(oops)? {
            let Node::Block(entry) = node else {
                return fail(
                    ViolationKind::invariant("block-chain-node"),
                    format!("block chain holds {node:?}"),
                );
            };
            let object = mem.entry(entry).map_err(oops)?;
            let expect = hash_long(object.bdev.wrapping_add(object.block & 0xffff_ffff), cache.bucket_bits);
            if expect != bucket {
                return fail(
                    ViolationKind::invariant("block-bucket"),
                    format!("entry {} is on block bucket {bucket}, its key hashes to {expect}", object.id),
                );
            }
            if let Some(other) = keys_seen.insert((object.bdev, object.block), object.id) {
                return fail(
                    ViolationKind::invariant("block-key-unique"),
                    format!(
                        "entries {other} and {} are both hashed as ({:#x}, {})",
                        object.id, object.bdev, object.block
                    ),
                );
            }
            *hashed.entry(entry).or_default() += 1;
        }
        Ok(())
    }

    /// Index `index`'s chains hold exactly the entries on the block chains, each once, each in the
    /// bucket its key hashes to.
    fn index_chains_hold_the_hashed_entries(
        mem: &mut Mem<'_>,
        cache_handle: CacheHandle,
        cache: &CacheInfo,
        index: u32,
        hashed: &BTreeMap<EntryRef, u32>,
    ) -> Checked {
        let mut index_seen: BTreeMap<EntryRef, u32> = BTreeMap::new();
        for bucket in 0..1u32 << cache.bucket_bits {
            Self::index_chain_holds_its_keys(mem, cache_handle, cache, (index, bucket), &mut index_seen)?;
        }
        let same = index_seen.len() == hashed.len()
            && index_seen.values().all(|n| *n == 1)
            && index_seen.keys().all(|e| hashed.contains_key(e));
        if !same {
            return fail(
                ViolationKind::invariant("index-matches-block"),
                format!(
                    "cache {}: index {index} chains hold {index_seen:?}, block chains hold {hashed:?}",
                    cache.name
                ),
            );
        }
        Ok(())
    }

    /// Index chain `bucket` of index `index` holds only entries whose key hashes to it; counts
    /// each entry seen in `index_seen`.
    fn index_chain_holds_its_keys(
        mem: &mut Mem<'_>,
        cache_handle: CacheHandle,
        cache: &CacheInfo,
        (index, bucket): (u32, u32),
        index_seen: &mut BTreeMap<EntryRef, u32>,
    ) -> Checked {
        let head = Node::Head(HeadId::Index(cache_handle, index, bucket));
        for node in list::walk(mem, head, WALK_LIMIT).map_err(oops)? {
            let Node::Index(entry, _) = node else {
                return fail(
                    ViolationKind::invariant("index-chain-node"),
                    format!("index chain holds {node:?}"),
                );
            };
            let object = mem.entry(entry).map_err(oops)?;
            let key = object.indexes[index as usize].1;
            let expect = hash_long(u64::from(key), cache.bucket_bits);
            if expect != bucket {
                return fail(
                    ViolationKind::invariant("index-bucket"),
                    format!(
                        "entry {} is on index {index} bucket {bucket}, key {key} hashes to {expect}",
                        object.id
                    ),
                );
            }
            *index_seen.entry(entry).or_default() += 1;
        }
        Ok(())
    }

    /// An entry's `e_used` counts the handles that refer to it (less the writer bias), it is on
    /// the LRU exactly when unused and hashed (or put back by a failed free), and an unused entry
    /// off every list is a leak: nobody can free it.
    fn entry_use_matches_its_handles_and_lists(
        &self,
        mem: &mut Mem<'_>,
        entry: EntryRef,
        seen: &Seen,
    ) -> Checked {
        let object = mem.entry(entry).map_err(oops)?;
        let used = object.used;
        let held = seen.handles_per_entry.get(&entry).copied().unwrap_or(0);
        let exclusive = self.fixes.on(EXCLUSIVE_GET);
        let uses = if exclusive && used >= MB_CACHE_WRITER { used - MB_CACHE_WRITER } else { used };
        if uses != held {
            return fail(
                ViolationKind::invariant("e-used-counts-handles"),
                format!("entry {} has e_used {used} but {held} handles refer to it", object.id),
            );
        }
        let hashed = seen.hashed.contains_key(&entry);
        let lru = seen.on_lru.contains(&entry);
        let free_failed = object.free_failed;
        if lru != (held == 0 && (hashed || free_failed)) {
            return fail(
                ViolationKind::invariant("lru-membership"),
                format!(
                    "entry {}: on lru {lru}, handles {held}, hashed {hashed}, free failed {free_failed}",
                    object.id
                ),
            );
        }
        if held == 0 && !lru {
            return fail(
                ViolationKind::Leak,
                format!("entry {} is allocated, unused and on no list: nobody can free it", object.id),
            );
        }
        Ok(())
    }
}
