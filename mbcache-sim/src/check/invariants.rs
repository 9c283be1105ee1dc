//! The registry's invariants, one function per fact, each failing with a message that dumps the
//! state it needs. Run after every operation of the one-thread simulation (and at quiescent
//! points of threaded runs) through an observer context, so the checks add no lock events to the
//! trace or lockdep's graph.

use sim_core::sync::atomic::Ordering;
use sim_core::{Cx, Violation, ViolationKind};

use crate::cache::{Geometry, MbCache};
use crate::entry::{Entry, Indexes};
use crate::fixes::EXCLUSIVE_GET;
use crate::hash::hash_long;
use crate::registry::{entry_of_lru, CheckScratch, Looked, Mem, Registry, MB_CACHE_WRITER, WALK_LIMIT};
use crate::registry::{freed, CacheHandle, EntryRef, HeadId, Node};
use sim_core::list::{self, ListMemory, Oops};

type Checked<T = ()> = Result<T, Violation>;

fn fail<T>(kind: ViolationKind, message: String) -> Checked<T> {
    Err(Violation::new(kind, message))
}

fn oops(oops: Oops) -> Violation {
    oops.0
}

/// `list::walk_into` with the checks' limit, its oops as a violation.
fn walk_into(mem: &mut Mem<'_>, head: Node, nodes: &mut Vec<Node>) -> Checked {
    list::walk_into(mem, head, WALK_LIMIT, nodes).map_err(oops)
}

/// The live handles, and where each entry was found on the lists: what the per-entry facts
/// compare (the lists sorted, looked up by binary search; the handles, few, scanned).
struct Seen<'a> {
    handles: &'a [(u64, EntryRef, CacheHandle)],
    on_lru: &'a [EntryRef],
    hashed: &'a [(EntryRef, u32)],
}

/// `key`'s count in a sorted list of counts (0 when absent).
fn count_of<K: Ord>(counts: &[(K, u32)], key: &K) -> u32 {
    counts.binary_search_by(|(k, _)| k.cmp(key)).map_or(0, |at| counts[at].1)
}

/// Sorts `items` and writes each distinct item with how often it occurs to `counts` (emptied
/// first): a counting map as a sorted `Vec`, in the order a `BTreeMap` iterates.
fn count_into<K: Ord + Copy>(items: &mut [K], counts: &mut Vec<(K, u32)>) {
    items.sort_unstable();
    counts.clear();
    for item in items.iter() {
        match counts.last_mut() {
            Some((last, count)) if last == item => *count += 1,
            _ => counts.push((*item, 1)),
        }
    }
}

/// Sorts `items` and drops repeats: a set as a `Vec`, in the order a `BTreeSet` iterates.
fn sort_set<T: Ord>(items: &mut Vec<T>) {
    items.sort_unstable();
    items.dedup();
}

/// The entries and the caches freed so far (allocations less those live), and the id the next
/// handle gets: while the first two are as a pass saw them, nothing it judged live was freed.
fn frees(memory: &crate::registry::Memory) -> (u64, u64, u64) {
    let freed = |allocations: u64, live: u64| allocations - live;
    (
        freed(memory.entries.allocations(), memory.entries.live()),
        freed(memory.caches.allocations(), memory.caches.live()),
        memory.next_handle,
    )
}

/// Prints sorted counts as the `BTreeMap` they stand for prints.
struct AsMap<'a, K>(&'a [(K, u32)]);

impl<K: std::fmt::Debug> std::fmt::Debug for AsMap<'_, K> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_map().entries(self.0.iter().map(|(k, v)| (k, v))).finish()
    }
}

impl CheckScratch {
    /// Copies the live handles (in id order), unless the copy is of the table as it is
    /// ([`crate::registry::HandleTable::version`]).
    fn load_handles(&mut self, table: &crate::registry::HandleTable) {
        if self.handles_version == Some(table.version()) {
            return;
        }
        self.handles_version = Some(table.version());
        // A pass at another version is no longer one at `handles_version` (a whole check
        // reloads the table too): the quiet path reads `passed_at` with `handles_version`.
        self.passed_at = None;
        self.handles.clear();
        self.handles.extend(table.iter());
    }
}

impl Registry {
    /// Checks the registry's invariants, one fact per check, with the state each needs.
    pub fn check_invariants(&self, cx: &Cx) -> Checked {
        self.look(cx, |looked| {
            let mut scratch = looked.mem().memory.scratch.take().unwrap_or_default();
            let result = self.check_whole(looked, &mut scratch);
            // What a pass saw (`passed_at`) is the incremental check's alone: the quiet path
            // after a whole check would rest on a pass the incremental check never made.
            looked.mem().memory.scratch = Some(scratch);
            result
        })
    }

    /// Puts the working sets back, with what an incremental check that passed saw
    /// (`CheckScratch::passed_at`).
    fn put_back(looked: &mut Looked<'_>, mut s: Box<CheckScratch>, result: &Checked) {
        let memory = &mut *looked.mem().memory;
        s.passed_at = result.is_ok().then_some((memory.caches_version, memory.lru_writes));
        if result.is_ok() {
            // Each equal to its cache's live entries, or the check would not have passed.
            s.passed_counts.clear();
            s.passed_counts.extend_from_slice(&s.counts);
        }
        s.passed_frees = result.is_ok().then(|| frees(memory));
        memory.scratch = Some(s);
    }

    /// The incremental check when nothing was written since the last incremental check that
    /// passed: no entry, chain head or LRU link, no handle made or released, no cache created or
    /// destroyed (`CheckScratch::passed_at`, `handles_version` and an empty write log). Then every
    /// fact but one reads what that check read; the one is each cache's `c_entry_count`, an
    /// atomic changed with no write to mbcache's memory (the count leaked by a failed
    /// allocation), compared here with the cache's live entries, all under one `Memory` guard.
    /// No `mb_cache_spinlock`, and the atomics are read under the guard: for the op-level checks
    /// only, single-threaded between ops (no other task can write meanwhile). None when
    /// something was written (the full incremental check runs).
    fn check_untouched(&self, cx: &Cx) -> Option<Checked> {
        let mut memory = self.memory();
        let memory = &mut *memory;
        let s = memory.scratch.as_mut()?;
        let now = Some((memory.caches_version, memory.lru_writes));
        if !memory.touched.is_empty()
            || s.passed_at != now
            || s.handles_version != Some(memory.handles.version())
        {
            return None;
        }
        if !memory.quiet_marked {
            cx.sim().mark("incremental check: nothing written since it passed");
            memory.quiet_marked = true;
        }
        // `caches` and `count_cells` are the list as the last check saw it and as it still is,
        // and each cache's live entries are what that check compared `passed_counts` with (no
        // entry was allocated or freed since): a count still equal to what the pass read equals
        // them. Only a count that moved is compared with the cache's entries here.
        let cells = s.count_cells.iter().zip(&s.passed_counts);
        let result = s.caches.iter().zip(cells).try_for_each(|(&cache, (count, &passed))| {
            let count = count.load(Ordering::SeqCst);
            if count == passed {
                return Ok(());
            }
            Self::entry_count_equals_live_entries(
                memory.caches.get(cx, cache).map_err(freed).map_err(oops)?,
                count,
            )
        });
        if result.is_err() {
            s.passed_at = None;
        }
        Some(result)
    }

    /// [`Registry::check_invariants`] with `mb_cache_spinlock`'s state looked at
    /// ([`Registry::look`]) and the working sets out.
    fn check_whole(&self, looked: &mut Looked<'_>, s: &mut CheckScratch) -> Checked {
        Self::counts_and_handles(looked, s, false)?;
        let mut mem = looked.mem();
        Self::lru_holds_unused_entries_in_release_order(&mut mem, &mut s.nodes, &mut s.on_lru)?;
        // Every cache's live entries in one pass over the arena all caches share, grouped by
        // the cache's place on `mb_cache_list` and in slot order within it (`EntryRef` orders
        // by slot), so the loop below takes each cache's as a run.
        s.by_cache.clear();
        s.by_cache.extend(mem.memory.entries.iter().filter_map(|(handle, object)| {
            s.caches.iter().position(|&c| c == object.cache).map(|at| (at, EntryRef(handle)))
        }));
        s.by_cache.sort_unstable();
        let mut run = 0;
        for at in 0..s.caches.len() {
            let (cache_handle, count) = (s.caches[at], s.counts[at]);
            let cache = mem.cache(cache_handle).map_err(oops)?;
            Self::entry_count_equals_live_entries(cache, count)?;
            let (geometry, indexes_count) = (cache.info.geometry(), cache.info.indexes_count);
            // The cache's live entries, in slot order: its run of `by_cache`.
            let end = run + s.by_cache[run..].partition_point(|&(of, _)| of == at);
            s.entries.clear();
            s.entries.extend(s.by_cache[run..end].iter().map(|&(_, entry)| entry));
            run = end;
            s.hashed_raw.clear();
            for bucket in 0..1u32 << geometry.bucket_bits {
                let seen = (&mut s.keys, &mut s.hashed_raw);
                Self::block_chain_holds_each_key_once(&mut mem, cache_handle, &geometry, bucket, seen)?;
            }
            count_into(&mut s.hashed_raw, &mut s.hashed);
            for index in 0..indexes_count {
                Self::index_chains_hold_the_hashed_entries(&mut mem, cache_handle, &geometry, index, s)?;
            }
            let seen = Seen { handles: &s.handles, on_lru: &s.on_lru, hashed: &s.hashed };
            for &entry in &s.entries {
                let hashed = count_of(seen.hashed, &entry) > 0;
                self.entry_use_matches_its_handles_and_lists(&mut mem, entry, hashed, &seen)?;
            }
        }
        Ok(())
    }

    /// The invariants of what the operations since the last check wrote, a check of the same
    /// facts as [`Registry::check_invariants`] confined to the chains and entries the write log
    /// names (see `registry::Touched`): the handles and every cache's `c_entry_count` (cheap:
    /// few of them), each chain a freed entry or one written where a chain fact reads
    /// (`Touched::chained`) is keyed for or sits on, and each written entry's use count, hash and
    /// LRU membership (an unchained one's hashedness read from its link), and LRU order against
    /// its two neighbours. What
    /// only a whole walk sees (an entry on the LRU twice, a chain corrupted by a write the log
    /// missed) is left to the full check, which the harness runs every few operations; a log that
    /// overflowed runs the full check now. The working sets are kept between checks
    /// (`registry::CheckScratch`), so a check allocates nothing once they have grown.
    pub fn check_invariants_touched(&self, cx: &Cx) -> Checked {
        if let Some(result) = self.check_untouched(cx) {
            return result;
        }
        self.look(cx, |looked| {
            // The log is read where it is (`Memory::touched`: a look writes nothing, so nothing
            // logs meanwhile) and emptied once checked, passed or not.
            let (mut s, overflowed) = {
                let memory = &mut *looked.mem().memory;
                (memory.scratch.take().unwrap_or_default(), memory.touched.overflowed)
            };
            let result = if overflowed {
                self.check_whole(looked, &mut s)
            } else {
                self.check_touched(looked, &mut s)
            };
            looked.mem().memory.touched.clear();
            Self::put_back(looked, s, &result);
            result
        })
    }

    /// [`Registry::check_invariants_touched`] with `mb_cache_spinlock`'s state looked at, the
    /// log in `Memory::touched`.
    fn check_touched(&self, looked: &mut Looked<'_>, s: &mut CheckScratch) -> Checked {
        // The facts in the whole check's order, so both name the same one when several break.
        Self::counts_and_handles(looked, s, true)?;
        let mut mem = looked.mem();
        let memory = &*mem.memory;
        s.chained.clear();
        s.chained.extend(memory.touched.chained.iter().copied().filter(|e| memory.entry_live(*e)));
        sort_set(&mut s.chained);
        s.entries.clear();
        s.entries.extend(memory.touched.entries.iter().copied().filter(|e| memory.entry_live(*e)));
        s.entries.extend_from_slice(&s.chained);
        sort_set(&mut s.entries);
        s.on_lru.clear();
        s.entries_hashed.clear();
        for &entry in &s.entries {
            let (on_lru, hashed) = Self::lru_neighbours_keep_release_order(&mut mem, entry)?;
            if on_lru {
                s.on_lru.push(entry);
            }
            s.entries_hashed.push(hashed);
        }
        // An entry that outlived its destroyed cache (as the kernel's do) is on the LRU facts
        // above, as on the whole check's LRU walk, and in none of the facts below: the whole
        // check, too, takes chains and uses by the caches on `mb_cache_list`.
        if mem.memory.orphans_possible {
            let memory = &*mem.memory;
            let of_live_cache =
                |e: &EntryRef| memory.entries.peek(e.0).is_some_and(|o| memory.caches.is_live(o.cache));
            // `entries_hashed` in step with `entries` (`retain` visits each once, in order).
            let mut at = 0;
            s.entries_hashed.retain(|_| {
                at += 1;
                of_live_cache(&s.entries[at - 1])
            });
            s.entries.retain(of_live_cache);
            s.chained.retain(of_live_cache);
        }
        for (&cache_handle, &count) in s.caches.iter().zip(&s.counts) {
            Self::entry_count_equals_live_entries(mem.cache(cache_handle).map_err(oops)?, count)?;
        }
        s.heads.clear();
        s.heads.extend_from_slice(&mem.memory.touched.heads);
        for &entry in &s.chained {
            Self::chains_of(&mut mem, entry, &mut s.heads)?;
        }
        sort_set(&mut s.heads);
        Self::walk_chains(&mut mem, s)?;
        let seen = Seen { handles: &s.handles, on_lru: &s.on_lru, hashed: &s.hashed };
        for (&entry, &linked) in s.entries.iter().zip(&s.entries_hashed) {
            // A chained entry's chains were walked just now; any other's links and chains are as
            // the last check saw them, so its `e_block_list` link, as the LRU facts read it above
            // (`Registry::is_hashed`; nothing was written since), says whether it is hashed.
            let hashed = if s.chained.binary_search(&entry).is_ok() {
                Self::entry_is_once_on_each_chain(&mut mem, entry, &s.hashed, &s.index_seen)?;
                count_of(&s.hashed, &entry) > 0
            } else {
                linked
            };
            self.entry_use_matches_its_handles_and_lists(&mut mem, entry, hashed, &seen)?;
        }
        Ok(())
    }

    /// The facts both checks begin with, over few objects: every cache's `c_entry_count` (the
    /// cache list and handles loaded into `s`), and every handle naming a live entry. The
    /// incremental check (`since_pass`) judges only the handles made since its last pass while
    /// no entry or cache was freed since ([`Registry::handles_made_since_pass`]).
    fn counts_and_handles(looked: &mut Looked<'_>, s: &mut CheckScratch, since_pass: bool) -> Checked {
        s.load_handles(&looked.mem().memory.handles);
        Self::entry_counts(looked, s, since_pass)?;
        let mut mem = looked.mem();
        let from = if since_pass { Self::handles_made_since_pass(mem.memory, s) } else { 0 };
        Self::handles_refer_to_live_entries(&mut mem, &s.handles[from..])
    }

    /// Where the handles made since the last incremental pass start in `s.handles` (ids are
    /// handed out in increasing order), when no entry and no cache was freed since: each older
    /// handle named a live entry of a live cache at that pass, and still does. Otherwise 0
    /// (every handle judged).
    fn handles_made_since_pass(memory: &crate::registry::Memory, s: &CheckScratch) -> usize {
        let (entries_freed, caches_freed, _) = frees(memory);
        match s.passed_frees {
            Some((entries, caches, next_handle)) if (entries, caches) == (entries_freed, caches_freed) => {
                s.handles.partition_point(|&(id, _, _)| id < next_handle)
            }
            _ => 0,
        }
    }

    /// `mb_cache_list` into `s.caches`, and every cache's `c_entry_count`, a `sim_core::sync`
    /// atomic, read with no `Memory` guard held, into `s.counts`; the incremental check
    /// (`op_level`) reads them under the guard, as [`Registry::check_untouched`] does: it runs
    /// between the op-level simulation's operations only, where no other task can write (the
    /// threaded checks and shuttle's and loom's quiescent points take the whole check).
    fn entry_counts(looked: &mut Looked<'_>, s: &mut CheckScratch, op_level: bool) -> Checked {
        // A cache handle names one cache for its life, and a destroyed cache leaves the list
        // before it is freed: while the list is the one the last check saw (`caches_version`),
        // so are the cells (each cache is still dereferenced by `entry_count_equals_live_entries`).
        let version = looked.mem().memory.caches_version;
        if s.caches_at != Some(version) {
            s.caches_at = None;
            s.caches.clear();
            s.caches.extend_from_slice(&looked.global.caches);
            s.count_cells.clear();
            let mem = looked.mem();
            for &cache in &s.caches {
                s.count_cells.push(mem.cache(cache).map_err(oops)?.info.entry_count.clone());
            }
            s.caches_at = Some(version);
        }
        if !op_level {
            looked.unlock_memory();
        }
        s.counts.clear();
        s.counts.extend(s.count_cells.iter().map(|count| count.load(Ordering::SeqCst)));
        Ok(())
    }

    /// Adds to `heads` the chains `entry` is keyed for and the chains it sits on (found by
    /// following its links to a list head), so a walk of them sees it wherever it is. A chain
    /// already there is not added again: the entries of one write are mostly on the same few
    /// chains, and `heads` is a set (sorted and deduplicated before the walk), whose sort of
    /// every repeat cost more than this scan of the few heads before it.
    fn chains_of(mem: &mut Mem<'_>, entry: EntryRef, heads: &mut Vec<HeadId>) -> Checked {
        let add = |heads: &mut Vec<HeadId>, head: HeadId| {
            if !heads.contains(&head) {
                heads.push(head);
            }
        };
        let (object, entry_indexes) = mem.entry_and_indexes(entry).map_err(oops)?;
        let cache = object.cache;
        let bits = mem.cache(cache).map_err(oops)?.info.bucket_bits;
        add(
            heads,
            HeadId::Block(cache, hash_long(object.bdev.wrapping_add(object.block & 0xffff_ffff), bits)),
        );
        let indexes = entry_indexes.len() as u32;
        for (index, slot) in entry_indexes.iter().enumerate() {
            add(heads, HeadId::index(cache, index as u32, hash_long(u64::from(slot.key), bits)));
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
                        add(heads, head);
                        break;
                    }
                    list::Link::To(next) if next != start => at = next,
                    _ => break,
                }
            }
        }
        Ok(())
    }

    /// Walks the chains in `s.heads` with the full check's per-chain facts. Leaves in `s.hashed`
    /// how often each entry was seen on a block chain, and in `s.index_seen` on each index's chains.
    fn walk_chains(mem: &mut Mem<'_>, s: &mut CheckScratch) -> Checked {
        s.hashed_raw.clear();
        s.index_raw.clear();
        if s.heads.is_empty() {
            // No chain written or keyed for a chained entry (a get, a release): nothing seen.
            s.hashed.clear();
            s.index_seen.clear();
            return Ok(());
        }
        for &head in &s.heads {
            let (HeadId::Block(cache, _) | HeadId::Index(cache, _, _)) = head else { continue };
            let Some(info) = mem.memory.caches.peek(cache).map(|c| c.info.geometry()) else { continue };
            match head {
                HeadId::Block(_, bucket) => {
                    let seen = (&mut s.keys, &mut s.hashed_raw);
                    Self::block_chain_holds_each_key_once(mem, cache, &info, bucket, seen)?;
                }
                HeadId::Index(_, index, bucket) => {
                    let at = (u32::from(index), bucket);
                    Self::index_chain_holds_its_keys(mem, cache, &info, at, &mut s.index_raw)?;
                }
                _ => {}
            }
        }
        count_into(&mut s.hashed_raw, &mut s.hashed);
        count_into(&mut s.index_raw, &mut s.index_seen);
        Ok(())
    }

    /// A written entry is on its block chain at most once, and on each index's chains exactly as
    /// often as on the block chains (the per-entry part of `index-matches-block`).
    fn entry_is_once_on_each_chain(
        mem: &mut Mem<'_>,
        entry: EntryRef,
        hashed: &[(EntryRef, u32)],
        index_seen: &[((EntryRef, u32), u32)],
    ) -> Checked {
        let (object, indexes) = mem.entry_and_indexes(entry).map_err(oops)?;
        let on_block = count_of(hashed, &entry);
        for index in 0..indexes.len() as u32 {
            let on_index = count_of(index_seen, &(entry, index));
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
    /// release stamp lies between its neighbours'. Returns whether it is on the LRU, and whether
    /// its `e_block_list` is linked (`Registry::is_hashed`).
    fn lru_neighbours_keep_release_order(mem: &mut Mem<'_>, entry: EntryRef) -> Checked<(bool, bool)> {
        // One look at the entry: its `e_lru_list` (`list_empty`, `prev`, `next`), its
        // `e_block_list` (`Registry::is_hashed`) and the fields the facts read (in the order
        // they were read one by one: the links are followed before any fact is judged).
        let object = mem.entry(entry).map_err(oops)?;
        let lru = object.lru.get();
        let hashed = object.block_list.next != list::Link::To(Node::Block(entry));
        if lru.next == list::Link::To(Node::Lru(entry)) {
            return Ok((false, hashed));
        }
        let (id, used, free_failed, stamp) = (object.id, object.used, object.free_failed, object.lru_stamp);
        let before = list::follow(mem, Node::Lru(entry), lru.prev, "check_invariants").map_err(oops)?;
        let after = list::follow(mem, Node::Lru(entry), lru.next, "check_invariants").map_err(oops)?;
        let stamp_of = |mem: &mut Mem<'_>, node| match node {
            Node::Lru(other) => mem.entry(other).map(|o| Some(o.lru_stamp)).map_err(oops),
            _ => Ok(None),
        };
        let (stamp_before, stamp_after) = (stamp_of(mem, before)?, stamp_of(mem, after)?);
        if used != 0 {
            return fail(
                ViolationKind::invariant("lru-entry-in-use"),
                format!("entry {id} is on the lru with e_used {used}"),
            );
        }
        if !hashed && !free_failed {
            return fail(
                ViolationKind::invariant("lru-entry-unhashed"),
                format!("entry {id} is on the lru, unhashed, and its free never failed"),
            );
        }
        if stamp_before.is_some_and(|s| s > stamp) || stamp_after.is_some_and(|s| s < stamp) {
            return fail(
                ViolationKind::invariant("lru-order"),
                format!(
                    "lru out of release order: entry {id} released at {stamp} \
                     between {stamp_before:?} and {stamp_after:?}"
                ),
            );
        }
        Ok((true, hashed))
    }

    /// Nothing is freed while a handle refers to it.
    fn handles_refer_to_live_entries(mem: &mut Mem<'_>, handles: &[(u64, EntryRef, CacheHandle)]) -> Checked {
        for &(id, entry, cache) in handles {
            if !mem.memory.caches.is_live(cache) {
                return fail(
                    ViolationKind::invariant("handle-outlives-cache"),
                    format!("handle #{id} refers to an entry of a destroyed cache"),
                );
            }
            if !mem.memory.entry_live(entry) {
                let name = mem.cache(cache).map_err(oops)?.info.name;
                return fail(
                    ViolationKind::invariant("handle-outlives-entry"),
                    format!("handle #{id} refers to freed entry {:?} of {name}", entry.0),
                );
            }
        }
        Ok(())
    }

    /// The LRU holds each entry at most once, each unused and hashed (or put back by a failed
    /// free), in release order. Leaves the entries on it in `on_lru`, sorted (a set as a sorted
    /// `Vec`, kept between checks with `nodes`, the walk's working space).
    fn lru_holds_unused_entries_in_release_order(
        mem: &mut Mem<'_>,
        nodes: &mut Vec<Node>,
        on_lru: &mut Vec<EntryRef>,
    ) -> Checked {
        walk_into(mem, Node::Head(HeadId::Lru), nodes)?;
        on_lru.clear();
        let mut stamp_before = 0;
        for node in nodes.iter() {
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
            match on_lru.binary_search(&entry) {
                Ok(_) => {
                    return fail(
                        ViolationKind::invariant("lru-twice"),
                        format!("entry {} is on the lru twice", object.id),
                    );
                }
                Err(at) => on_lru.insert(at, entry),
            }
        }
        Ok(())
    }

    /// A cache's `c_entry_count` equals its allocated entries (a leaked count is a leak).
    fn entry_count_equals_live_entries(cache: &MbCache, count: i32) -> Checked {
        let live = cache.entries_live;
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

    /// One block chain holds only entries whose (bdev, block) hashes to it, and each key once (a
    /// key hashes to one chain, so a key seen twice in the cache is seen twice on one chain);
    /// records each entry seen in `hashed`. `keys` is working space. Walked as `list::walk_into`
    /// walks (every link followed, at most `WALK_LIMIT` nodes, a bad link reported before any
    /// fact), each node read once: its link and its facts from one look at the entry, a broken
    /// fact kept until the walk is done, so the violation reported is the one the walk and then
    /// the facts in chain order would report.
    fn block_chain_holds_each_key_once(
        mem: &mut Mem<'_>,
        cache_handle: CacheHandle,
        cache: &Geometry,
        bucket: u32,
        (keys, hashed): (&mut Vec<(u64, u64, u64)>, &mut Vec<EntryRef>),
    ) -> Checked {
        keys.clear();
        let head = Node::Head(HeadId::Block(cache_handle, bucket));
        let on_chain = |node| match node {
            Node::Block(entry) => Some(entry),
            _ => None,
        };
        let judge = |entry, object: &Entry, _: &Indexes| {
            let fact = Self::block_node_is_keyed_once(object, cache, bucket, keys);
            hashed.push(entry);
            fact
        };
        walk_chain_judging(mem, (head, "block chain", "block-chain-node"), on_chain, judge, |object, _, _| {
            object.block_list.next
        })
    }

    /// One block chain node's facts: its (bdev, block) hashes to `bucket`, and no entry before
    /// it on the chain (`keys`) has the same; adds its key to `keys`.
    fn block_node_is_keyed_once(
        object: &crate::entry::Entry,
        cache: &Geometry,
        bucket: u32,
        keys: &mut Vec<(u64, u64, u64)>,
    ) -> Checked {
        let expect = hash_long(object.bdev.wrapping_add(object.block & 0xffff_ffff), cache.bucket_bits);
        if expect != bucket {
            return fail(
                ViolationKind::invariant("block-bucket"),
                format!("entry {} is on block bucket {bucket}, its key hashes to {expect}", object.id),
            );
        }
        // A chain is short (its table grows with the cache), so a scan finds a repeat.
        if let Some(&(_, _, other)) = keys.iter().find(|k| (k.0, k.1) == (object.bdev, object.block)) {
            return fail(
                ViolationKind::invariant("block-key-unique"),
                format!(
                    "entries {other} and {} are both hashed as ({:#x}, {})",
                    object.id, object.bdev, object.block
                ),
            );
        }
        keys.push((object.bdev, object.block, object.id));
        Ok(())
    }

    /// Index `index`'s chains hold exactly the entries on the block chains (`s.hashed`), each
    /// once, each in the bucket its key hashes to.
    fn index_chains_hold_the_hashed_entries(
        mem: &mut Mem<'_>,
        cache_handle: CacheHandle,
        geometry: &Geometry,
        index: u32,
        s: &mut CheckScratch,
    ) -> Checked {
        s.index_raw.clear();
        for bucket in 0..1u32 << geometry.bucket_bits {
            let at = (index, bucket);
            Self::index_chain_holds_its_keys(mem, cache_handle, geometry, at, &mut s.index_raw)?;
        }
        s.index_entries.clear();
        s.index_entries.extend(s.index_raw.iter().map(|&(entry, _)| entry));
        count_into(&mut s.index_entries, &mut s.index_counts);
        let (index_seen, hashed) = (&s.index_counts, &s.hashed);
        let same = index_seen.len() == hashed.len()
            && index_seen.iter().all(|(_, n)| *n == 1)
            && index_seen.iter().all(|(e, _)| count_of(hashed, e) > 0);
        if !same {
            return fail(
                ViolationKind::invariant("index-matches-block"),
                format!(
                    "cache {}: index {index} chains hold {:?}, block chains hold {:?}",
                    mem.cache(cache_handle).map_err(oops)?.info.name,
                    AsMap(index_seen),
                    AsMap(hashed)
                ),
            );
        }
        Ok(())
    }

    /// Index chain `bucket` of index `index` holds only entries whose key hashes to it; records
    /// each entry seen, with the index, in `index_seen`. Walked and judged as
    /// [`Registry::block_chain_holds_each_key_once`] walks and judges a block chain.
    fn index_chain_holds_its_keys(
        mem: &mut Mem<'_>,
        cache_handle: CacheHandle,
        cache: &Geometry,
        (index, bucket): (u32, u32),
        index_seen: &mut Vec<(EntryRef, u32)>,
    ) -> Checked {
        let head = Node::Head(HeadId::index(cache_handle, index, bucket));
        let on_chain = |node| match node {
            Node::Index(entry, _) => Some(entry),
            _ => None,
        };
        let judge = |entry, object: &Entry, indexes: &Indexes| {
            let key = indexes[index as usize].key;
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
            index_seen.push((entry, index));
            Ok(())
        };
        let link_of = |_: &Entry, indexes: &Indexes, node| match node {
            Node::Index(_, on) => indexes[on as usize].list.next,
            _ => unreachable!("only a node on_chain picked is followed through its entry"),
        };
        walk_chain_judging(mem, (head, "index chain", "index-chain-node"), on_chain, judge, link_of)
    }

    /// An entry's `e_used` counts the handles that refer to it (less the writer bias), it is on
    /// the LRU exactly when unused and hashed (or put back by a failed free), and an unused entry
    /// off every list is a leak: nobody can free it.
    fn entry_use_matches_its_handles_and_lists(
        &self,
        mem: &mut Mem<'_>,
        entry: EntryRef,
        hashed: bool,
        seen: &Seen,
    ) -> Checked {
        let object = mem.entry(entry).map_err(oops)?;
        let used = object.used;
        // The handles that refer to it: a scan of the few live ones (a count kept per entry cost
        // a sort of the handles' entries each time the table changed, most checks).
        let held = seen.handles.iter().filter(|&&(_, of, _)| of == entry).count() as u32;
        let exclusive = self.fixes.on(EXCLUSIVE_GET);
        let uses = if exclusive && used >= MB_CACHE_WRITER { used - MB_CACHE_WRITER } else { used };
        if uses != held {
            return fail(
                ViolationKind::invariant("e-used-counts-handles"),
                format!("entry {} has e_used {used} but {held} handles refer to it", object.id),
            );
        }
        let lru = seen.on_lru.binary_search(&entry).is_ok();
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

/// Walks the hash chain at `head` as `list::walk_into` walks (every link followed, at most
/// `WALK_LIMIT` nodes, a bad link reported before any fact), reading each node once: a node
/// `on_chain` names an entry of is judged (`judge`, until a fact breaks) and followed by the link
/// `link_of` reads from that one look at the entry; any other node is a `node_kind` violation,
/// followed by its own link. The first broken fact is kept until the walk is done, so the
/// violation reported is the one the walk and then the facts in chain order would report.
fn walk_chain_judging(
    mem: &mut Mem<'_>,
    (head, chain, node_kind): (Node, &str, &'static str),
    on_chain: impl Fn(Node) -> Option<EntryRef>,
    mut judge: impl FnMut(EntryRef, &Entry, &Indexes) -> Checked,
    link_of: impl Fn(&Entry, &Indexes, Node) -> list::Link<Node>,
) -> Checked {
    let mut broken = None;
    let mut at = chain_first(mem, head)?;
    let mut walked = 0;
    while at != head && walked < WALK_LIMIT {
        walked += 1;
        let link = match on_chain(at) {
            Some(entry) => {
                let (object, indexes) = mem.entry_and_indexes(entry).map_err(oops)?;
                if broken.is_none() {
                    broken = judge(entry, object, indexes).err();
                }
                link_of(object, indexes, at)
            }
            None => {
                let violation =
                    Violation::new(ViolationKind::invariant(node_kind), format!("{chain} holds {at:?}"));
                broken.get_or_insert(violation);
                mem.read(at).map_err(oops)?.next
            }
        };
        at = list::follow(mem, at, link, "list_for_each").map_err(oops)?;
    }
    broken.map_or(Ok(()), Err)
}

/// `list::next` of a hash chain's head (`head->next`, followed): the link read straight from
/// the head's cache (one look-up, as `Mem::read` makes it), with no call of the list library's
/// generic step; any other node through `list::next`.
#[inline(always)]
fn chain_first(mem: &mut Mem<'_>, head: Node) -> Checked<Node> {
    let link = match head {
        Node::Head(HeadId::Block(cache, bucket)) => {
            mem.cache(cache).map_err(oops)?.block[bucket as usize].next
        }
        Node::Head(HeadId::Index(cache, index, bucket)) => {
            mem.cache(cache).map_err(oops)?.index[usize::from(index)][bucket as usize].next
        }
        _ => return list::next(mem, head, "list_for_each").map_err(oops),
    };
    list::follow(mem, head, link, "list_for_each").map_err(oops)
}

#[cfg(test)]
mod tests {
    use sim_core::{Sim, SimConfig};

    use super::*;
    use crate::cache::CacheRef;
    use crate::fixes::Fixes;
    use crate::registry::{bdev_address, ListHead, LruLink, Waits};

    /// A registry with two entries hashed and released (on the LRU), checked once.
    fn two_entries() -> (Sim, Cx, Registry, CacheRef) {
        let sim = Sim::new(SimConfig::new(5));
        let cx = sim.cx("fs", 0);
        let registry = Registry::new(&sim, Fixes::all(), Waits::WouldBlock);
        let cache = registry.create(&cx, "ext2_xattr", None, 88, 1, 1).expect("create");
        for block in 0..2 {
            let handle = registry.alloc(&cx, cache).expect("alloc");
            registry.insert(&cx, &handle, bdev_address(0), block, &[block as u32]).expect("insert");
            registry.release(&cx, handle).expect("release");
        }
        let observer = sim.observer_cx("check", 0);
        registry.check_invariants_touched(&observer).expect("a fresh registry");
        (sim, cx, registry, cache)
    }

    /// The incremental check judges only the handles made since its last pass while no entry
    /// or cache was freed since: an older handle whose entry is freed behind its back (a free
    /// the model never makes while a handle is held) is still found, as the whole check finds it,
    /// and a pass with nothing freed still judges the handle made since.
    #[test]
    fn a_held_entry_freed_after_a_pass_is_found_by_the_incremental_check() {
        let (sim, cx, registry, cache) = two_entries();
        let observer = sim.observer_cx("check", 0);
        let older = registry.alloc(&cx, cache).expect("alloc");
        registry.check_invariants_touched(&observer).expect("a new entry, held");
        let _newer = registry.alloc(&cx, cache).expect("alloc");
        registry.check_invariants_touched(&observer).expect("another, held");
        {
            let mut memory = registry.memory();
            let scratch = memory.scratch.as_ref().expect("kept");
            let from = Registry::handles_made_since_pass(&memory, scratch);
            assert_eq!(from, scratch.handles.len(), "every handle was judged by a pass: {from}");
            memory.free_entry(&cx, older.entry).expect("free");
        }
        let found = registry.check_invariants_touched(&observer).expect_err("a handle to a freed entry");
        assert_eq!(found.kind, "invariant:handle-outlives-entry", "{found:?}");
        let whole = registry.check_invariants(&observer).expect_err("the whole check must agree");
        assert_eq!(whole.kind, found.kind, "{whole:?}");
    }

    /// An entry's `e_indexes[]` live beside its slot (`Memory::entry_indexes`), by slot number:
    /// a slot freed and allocated again for a cache with another index count must carry the new
    /// entry's indexes, found under its key and not the old one's.
    #[test]
    fn a_reused_slot_carries_the_new_entrys_indexes() {
        let (sim, cx, registry, _) = two_entries();
        let first = registry.create(&cx, "ext3_xattr", None, 256, 2, 1).expect("create");
        let old = registry.alloc(&cx, first).expect("alloc");
        registry.insert(&cx, &old, bdev_address(1), 7, &[70, 71]).expect("insert");
        let old_slot = old.entry.slot();
        registry.free(&cx, old).expect("free");
        let second = registry.create(&cx, "ext2_xattr", None, 88, 1, 1).expect("create");
        let new = (0..128)
            .map(|_| registry.alloc(&cx, second).expect("alloc"))
            .find(|handle| handle.entry.slot() == old_slot)
            .expect("the freed slot is allocated again");
        registry.insert(&cx, &new, bdev_address(1), 8, &[80]).expect("insert");
        assert_eq!(registry.memory().entry_indexes[old_slot].len(), 1, "the new cache's one index");
        let serial = new.serial;
        registry.release(&cx, new).expect("release");
        let found = registry.find_first(&cx, second, 0, bdev_address(1), 80).expect("find");
        assert_eq!(found.as_ref().map(|handle| handle.serial), Some(serial), "found by the new key");
        registry.release(&cx, found.expect("found")).expect("release");
        assert!(registry.find_first(&cx, second, 0, bdev_address(1), 70).expect("find").is_none());
        registry.check_invariants_touched(&sim.observer_cx("check", 0)).expect("a reused slot");
    }

    #[test]
    fn a_get_and_release_log_no_chain_write() {
        let (sim, cx, registry, cache) = two_entries();
        let handle = registry.get(&cx, cache, bdev_address(0), 1).expect("get").expect("hit");
        registry.release(&cx, handle).expect("release");
        {
            let memory = registry.memory();
            assert!(!memory.touched.entries.is_empty(), "the LRU and e_used writes are logged");
            assert!(memory.touched.chained.is_empty(), "no chain fact to walk: {:?}", memory.touched);
            assert!(memory.touched.heads.is_empty(), "no chain head written: {:?}", memory.touched);
        }
        registry.check_invariants_touched(&sim.observer_cx("check", 0)).expect("a get and a release");
    }

    #[test]
    fn an_alloc_logs_its_entry_for_the_use_facts_and_no_chain_write() {
        let (sim, cx, registry, cache) = two_entries();
        let handle = registry.alloc(&cx, cache).expect("alloc");
        {
            let memory = registry.memory();
            assert_eq!(memory.touched.entries, [handle.entry], "the new entry's use facts are judged");
            assert!(memory.touched.chained.is_empty(), "no chain holds it: {:?}", memory.touched);
            assert!(memory.touched.heads.is_empty(), "no chain head written: {:?}", memory.touched);
        }
        let observer = sim.observer_cx("check", 0);
        registry.check_invariants_touched(&observer).expect("a new entry, held");
        // Its use count is still judged by the incremental check, as by the whole check.
        *registry.memory().entry_use_mut(&cx, handle.entry).expect("live").used += 1;
        let found = registry.check_invariants_touched(&observer).expect_err("a use nobody holds");
        assert_eq!(found.kind, "invariant:e-used-counts-handles", "{found:?}");
        let whole = registry.check_invariants(&observer).expect_err("the whole check must agree");
        assert_eq!(whole.kind, found.kind, "{whole:?}");
    }

    #[test]
    fn a_use_count_broken_without_a_chain_write_is_still_found() {
        let (sim, cx, registry, _) = two_entries();
        {
            let mut memory = registry.memory();
            let entry = memory.entries.iter().map(|(handle, _)| EntryRef(handle)).next().expect("an entry");
            *memory.entry_use_mut(&cx, entry).expect("live").used += 1;
            assert!(memory.touched.chained.is_empty());
        }
        let observer = sim.observer_cx("check", 0);
        // An entry on the LRU counted as used: the LRU fact breaks first, in both checks.
        let found = registry.check_invariants_touched(&observer).expect_err("a use nobody holds");
        assert_eq!(found.kind, "invariant:lru-entry-in-use", "{found:?}");
        let whole = registry.check_invariants(&observer).expect_err("the whole check must agree");
        assert_eq!(whole.kind, found.kind, "{whole:?}");
    }

    #[test]
    fn a_key_rewritten_in_place_is_a_chain_write_and_is_found() {
        let (sim, cx, registry, _) = two_entries();
        {
            let mut memory = registry.memory();
            let entry = memory.entries.iter().map(|(handle, _)| EntryRef(handle)).next().expect("an entry");
            // A key no other entry has, in a bucket the entry is not on (the table has two).
            let object = memory.entry_mut(&cx, entry).expect("live");
            let bucket = hash_long(object.bdev.wrapping_add(object.block), 1);
            object.block =
                (2..).find(|b| hash_long(object.bdev.wrapping_add(*b), 1) != bucket).expect("a block");
            assert!(!memory.touched.chained.is_empty());
        }
        let observer = sim.observer_cx("check", 0);
        let found = registry.check_invariants_touched(&observer).expect_err("an entry in the wrong bucket");
        assert_eq!(found.kind, "invariant:block-bucket", "{found:?}");
        let whole = registry.check_invariants(&observer).expect_err("the whole check must agree");
        assert_eq!(whole.kind, found.kind, "{whole:?}");
    }

    #[test]
    fn an_entry_the_lru_walk_meets_twice_is_found_by_the_whole_check() {
        let (sim, cx, registry, _) = two_entries();
        let head = registry.lock(&cx).guard.lru.get();
        let list::Link::To(Node::Lru(first)) = head.next else { panic!("an entry heads the lru") };
        {
            let mut memory = registry.memory();
            let memory = &mut *memory;
            // The first entry's `next` back to itself: the walk meets it again and again, each
            // time unused, hashed and in order, until the walk's limit.
            let object = memory.entries.get_mut(&cx, first.0).expect("live");
            object.lru.write(&mut memory.lru_writes).next = list::Link::To(Node::Lru(first));
        }
        let whole = registry.check_invariants(&sim.observer_cx("check", 0)).expect_err("on the lru twice");
        assert_eq!(whole.kind, "invariant:lru-twice", "{whole:?}");
    }

    /// The checks read `mb_cache_spinlock`'s state through [`Registry::look`]: an observer's
    /// look takes no lock round trip between operations (nothing held while it reads), a model
    /// context's takes the lock, and both report the same planted faults and walk the same LRU.
    #[test]
    fn an_observer_s_check_reads_without_the_lock_and_reports_what_the_locked_one_does() {
        let (sim, cx, registry, _) = two_entries();
        let observer = sim.observer_cx("check", 0);
        assert_eq!(
            registry.look(&observer, |_| observer.held_count()),
            0,
            "an observer's look holds nothing"
        );
        assert_eq!(registry.look(&cx, |_| cx.held_count()), 1, "a model context's look takes the lock");
        assert_eq!(registry.lru_serials(&observer), registry.lru_serials(&cx));
        assert_eq!(registry.cache_list(&observer), registry.cache_list(&cx));
        // A planted fault: the first entry's LRU link poisoned as `list_del` leaves it.
        let head = registry.look(&observer, |looked| looked.global.lru.get());
        let list::Link::To(Node::Lru(first)) = head.next else { panic!("an entry heads the lru") };
        {
            let mut memory = registry.memory();
            let memory = &mut *memory;
            let object = memory.entries.get_mut(&cx, first.0).expect("live");
            object.lru.write(&mut memory.lru_writes).next = list::Link::Poison1;
        }
        let looked = registry.check_invariants(&observer).expect_err("a poisoned lru link");
        assert_eq!(looked.kind, "list-poison", "{looked:?}");
        let locked = registry.check_invariants(&cx).expect_err("a poisoned lru link");
        let strip = |message: &str| message.split(" at ").next().unwrap_or("").to_string();
        assert_eq!((looked.kind, strip(&looked.message)), (locked.kind, strip(&locked.message)));
        let walked = registry.lru_serials(&observer).expect_err("the walk follows the poisoned link");
        assert_eq!(walked, registry.lru_serials(&cx).expect_err("the same walk under the lock"));
        assert_eq!(cx.held_count(), 0, "the model context's looks let the lock go");
    }

    #[test]
    #[should_panic(expected = "writes nothing")]
    fn a_write_through_a_look_panics() {
        let (sim, _cx, registry, _) = two_entries();
        let observer = sim.observer_cx("check", 0);
        registry.look(&observer, |looked| {
            let mut mem = looked.mem();
            mem.global.next_local += 1;
        });
    }

    /// The two entries' first, with its key moved to a block hashing to the other bucket (a
    /// `block-bucket` fact broken, logged as a chain write).
    fn first_in_the_wrong_bucket(cx: &Cx, registry: &Registry) -> EntryRef {
        let mut memory = registry.memory();
        let entry = memory.entries.iter().map(|(handle, _)| EntryRef(handle)).next().expect("an entry");
        let object = memory.entry_mut(cx, entry).expect("live");
        let bucket = hash_long(object.bdev.wrapping_add(object.block), 1);
        object.block = (2..).find(|b| hash_long(object.bdev.wrapping_add(*b), 1) != bucket).expect("a block");
        entry
    }

    #[test]
    fn a_bad_link_further_on_a_chain_is_reported_before_a_broken_fact() {
        let (sim, cx, registry, _) = two_entries();
        let entry = first_in_the_wrong_bucket(&cx, &registry);
        // Its `e_block_list.next` poisoned as `list_del` leaves it: the whole check's walk of
        // its chain follows it after reading the entry whose fact broke, and the walk's oops
        // comes first, as when the whole chain was walked before any fact was judged. (The
        // incremental check does not follow a poisoned link to find the chain: a corrupt chain
        // is the whole check's to report.)
        registry.memory().entry_mut(&cx, entry).expect("live").block_list.next = list::Link::Poison1;
        let whole = registry.check_invariants(&sim.observer_cx("check", 0)).expect_err("a poisoned chain");
        assert_eq!(whole.kind, "list-poison", "{whole:?}");
    }

    #[test]
    fn an_index_key_rewritten_in_place_is_found_on_its_chain() {
        let (sim, cx, registry, _) = two_entries();
        {
            let mut memory = registry.memory();
            let entry = memory.entries.iter().map(|(handle, _)| EntryRef(handle)).next().expect("an entry");
            let slot = &mut memory.indexes_mut(&cx, entry).expect("live")[0];
            let bucket = hash_long(u64::from(slot.key), 1);
            slot.key = (2..).find(|k| hash_long(u64::from(*k), 1) != bucket).expect("a key");
        }
        let observer = sim.observer_cx("check", 0);
        let found = registry.check_invariants_touched(&observer).expect_err("a key in the wrong bucket");
        assert_eq!(found.kind, "invariant:index-bucket", "{found:?}");
        let whole = registry.check_invariants(&observer).expect_err("the whole check must agree");
        assert_eq!(whole.kind, found.kind, "{whole:?}");
    }

    /// What a step left: its bad link (kind and message, without the site), or the LRU head's
    /// links, each entry's LRU links and use count, the entries the write log holds, and the LRU
    /// writes the step made (from `writes` before it).
    fn lru_after(
        stepped: Result<(), Oops>,
        mem: &Mem<'_>,
        writes: u64,
    ) -> Result<(Vec<String>, Vec<EntryRef>, u64), String> {
        stepped.map_err(|oops| {
            format!("{}: {}", oops.0.kind, oops.0.message.split(" at ").next().unwrap_or(""))
        })?;
        let mut links = vec![format!("{:?}", mem.global.lru.get())];
        links.extend(
            mem.memory.entries.iter().map(|(_, object)| format!("{:?} {}", object.lru.get(), object.used)),
        );
        Ok((links, mem.memory.touched.entries.clone(), mem.memory.lru_writes - writes))
    }

    /// What a lookup's first step leaves: every entry's LRU link and the LRU head, the write
    /// log's entries and the LRU write count, or the report of a bad link.
    fn after_lru_del_init(fused: bool, poison: bool) -> Result<(Vec<String>, Vec<EntryRef>, u64), String> {
        let (_sim, cx, registry, cache) = two_entries();
        let third = registry.alloc(&cx, cache).expect("alloc");
        registry.insert(&cx, &third, bdev_address(0), 2, &[2]).expect("insert");
        registry.release(&cx, third).expect("release");
        let mut locked_global = registry.lock(&cx);
        let mut mem = locked_global.mem();
        // The middle entry of three on the LRU: both its neighbours are entries.
        let list::Link::To(first) = mem.global.lru.get().next else { panic!("an lru") };
        let middle = list::next(&mut mem, first, "test").expect("a second entry");
        let Node::Lru(entry) = middle else { panic!("{middle:?} on the lru") };
        if poison {
            mem.memory.entries.get_mut(&cx, entry.0).expect("live").lru = LruLink::new(ListHead::POISONED);
        }
        mem.memory.touched.entries.clear();
        let writes = mem.memory.lru_writes;
        let stepped = if fused {
            mem.lru_del_init_for_use(entry).map(|object| *object.used += 1)
        } else {
            (|| {
                if !list::list_empty(&mut mem, middle)? {
                    list::list_del_init(&mut mem, middle)?;
                }
                mem.entry_use_mut(entry).map(|object| *object.used += 1)
            })()
        };
        lru_after(stepped, &mem, writes)
    }

    #[test]
    fn a_lookups_fused_lru_step_writes_and_logs_what_the_list_steps_do() {
        let fused = after_lru_del_init(true, false).expect("a well-formed lru");
        assert_eq!(fused, after_lru_del_init(false, false).expect("a well-formed lru"));
        assert_eq!(fused.1.len(), 3, "both neighbours and the entry are logged: {fused:?}");
        assert_eq!(fused.2, 3, "two neighbour links and the entry's INIT_LIST_HEAD: {fused:?}");
        let poisoned = after_lru_del_init(true, true).expect_err("a poisoned lru link");
        assert!(poisoned.starts_with("list-poison") && poisoned.contains("list_del_init"), "{poisoned}");
        assert_eq!(poisoned, after_lru_del_init(false, true).expect_err("a poisoned lru link"));
    }

    /// What a release's last step leaves for an entry held by a get (`uses` uses of it), with
    /// two entries on the LRU: as [`after_lru_del_init`], the links, log and LRU write count.
    fn after_release_use(
        fused: bool,
        uses: u32,
        poison: bool,
    ) -> Result<(Vec<String>, Vec<EntryRef>, u64), String> {
        let (_sim, cx, registry, cache) = two_entries();
        let held = registry.get(&cx, cache, bdev_address(0), 0).expect("get").expect("hit");
        let entry = held.entry;
        let mut locked_global = registry.lock(&cx);
        let mut mem = locked_global.mem();
        mem.memory.entries.get_mut(&cx, entry.0).expect("live").used = uses;
        if poison {
            mem.global.lru.write(&mut mem.memory.lru_writes).prev = list::Link::Poison2;
        }
        mem.memory.touched.entries.clear();
        let writes = mem.memory.lru_writes;
        let drop_use = |object: crate::entry::EntryUse<'_>| {
            *object.used -= 1;
            (*object.used == 0, 0, true)
        };
        let stepped = if fused {
            mem.release_use(entry, drop_use).map(drop)
        } else {
            (|| {
                let (last, _, _) = drop_use(mem.entry_use_mut(entry)?);
                if last {
                    list::list_add_tail(&mut mem, Node::Lru(entry), Node::Head(HeadId::Lru))?;
                }
                Ok(())
            })()
        };
        lru_after(stepped, &mem, writes)
    }

    #[test]
    fn a_releases_fused_lru_step_writes_and_logs_what_the_list_steps_do() {
        let last = after_release_use(true, 1, false).expect("a well-formed lru");
        assert_eq!(last, after_release_use(false, 1, false).expect("a well-formed lru"));
        assert_eq!(last.1.len(), 2, "the entry and the old tail are logged: {last:?}");
        assert_eq!(last.2, 3, "the head's prev, the entry's link, the old tail's next: {last:?}");
        let held = after_release_use(true, 2, false).expect("a use left");
        assert_eq!(held, after_release_use(false, 2, false).expect("a use left"));
        assert_eq!(held.2, 0, "no LRU write while a use is left: {held:?}");
        let poisoned = after_release_use(true, 1, true).expect_err("a poisoned lru head");
        assert!(poisoned.starts_with("list-poison") && poisoned.contains("list_add_tail"), "{poisoned}");
        assert_eq!(poisoned, after_release_use(false, 1, true).expect_err("a poisoned lru head"));
        assert!(after_release_use(true, 2, true).is_ok(), "the head is followed for a last use only");
    }
}
