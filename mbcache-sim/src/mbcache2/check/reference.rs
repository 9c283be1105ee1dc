//! The reference model: what each mbcache2 operation must return, from plain collections, as
//! the fully fixed kernel behaves (linux-7.1's fixes, 6.0's reference counting).
//!
//! Entries are numbered in creation order; a chain is a list of entry numbers, newest first
//! (`hlist_bl_add_head`); the LRU a list, head first. Reference counts are kept as the kernel
//! keeps them (hash, LRU, users), because the shrinker and `mb_cache_entry_delete_or_get()`
//! decide by them. Waiting releases are parked and woken exactly where the subject wakes them.

use std::collections::VecDeque;

use sim_core::check::Reference;
use sim_core::Errno;

use super::op::{Op, Outcome};
use super::{prefill_key, Mbcache2Config};
use crate::mbcache2::mbcache::{hash_32, SYNC_SHRINK_BATCH};
use crate::mbcache2::shrinker::ScanStep;
use crate::mbcache2::shrinker::SHRINK_DIVISOR;

/// One entry.
#[derive(Clone, Debug)]
struct Entry {
    key: u32,
    value: u64,
    refcnt: u32,
    referenced: bool,
    reusable: bool,
    hashed: bool,
    listed: bool,
}

/// One cache: its entries, chains and LRU.
#[derive(Clone, Debug)]
struct Cache {
    /// Which mount this cache belongs to (a remount is a new cache).
    generation: u64,
    chains: Vec<Vec<u64>>,
    lru: Vec<u64>,
    entries: Entries,
    max_entries: u64,
    /// Whole calls: per task, the (key, value) of the entry its last release deleted. The release
    /// claims the entry (`mb_cache_entry_delete_or_get()`'s `atomic_cmpxchg(&e_refcnt, 2, 0)`:
    /// finds pass it over from then on, which is where the reference orders the call) before it
    /// takes it off the LRU, so a scan in between meets it at the head and keeps it (its own
    /// `cmpxchg` from one fails): such a kept step is explained by this entry while no listed
    /// one has that key and value (case seed 9002599). Cleared at the task's next operation
    /// (its release ended before that began).
    claimed: Vec<(usize, u32, u64)>,
    /// A detached cache's: the entries shares in flight at the detach referenced (each task's
    /// last call before the unmount, if it was a share; a call that returned anything but
    /// ENODEV had entered the filesystem before the detach, so an earlier share had ended).
    /// Such a share's touch and put may come at any instant until the unmount's destroy (which
    /// waits for the call), so a detached scan's step may have tested the bit before the touch
    /// and claimed the count after the put: the entry is evicted with its bit set, once (see
    /// [`Cache::scan`]).
    shares_in_flight: Vec<u64>,
    /// Whole calls: the (key, block) of each reusable entry the last scan with steps (of any
    /// cache) evicted here. A scan is ordered at one instant, but `mb_cache_shrink()` runs its
    /// steps one after another, dropping `c_list_lock` between them, so calls of other tasks
    /// ordered after the scan may have run between its steps and seen the earlier ones (case
    /// seed 81361: a find that missed the entry the first step claimed). A share in flight at a
    /// later step may have taken that step's entry (`__entry_find()`'s `atomic_inc_not_zero()`)
    /// before the step's `test_bit(MBE_REFERENCED_B)`, and raised `h_refcount` under the buffer
    /// lock and touched and put the entry (`ext4_xattr_block_set()`, which since "ext4: fix
    /// race when reusing xattr blocks" no longer checks that the entry is still hashed) before
    /// the step's `atomic_cmpxchg(&e_refcnt, 1, 0)`: the step evicts the entry the share used.
    /// Such a share must be ordered after the scan when an earlier call of its task is (that
    /// call saw an earlier step), and then shares a block whose entry is gone
    /// ([`Mbcache2Model::share`]); otherwise the share ordered right before the scan explains it
    /// (`touched`). So only a task with an operation ordered since the scan
    /// (`Mbcache2Model::called_since_scan`) may use these entries, until the next scan with
    /// steps. The reference cannot see when the scan ended, so this is wider than the kernel's
    /// window (which needs the share in flight at the step), and narrower where another task's
    /// call, not the sharer's own, is what orders the share after the scan. An idle kworker on
    /// the sharer's thread orders it so too (`Mbcache2Model::idle_kworkers`).
    scan_evicted: Vec<(u32, u64)>,
}

/// One filesystem.
#[derive(Clone, Debug)]
struct Fs {
    cache: Option<Cache>,
    /// Whole calls: the cache a lazy unmount detached, kept until its `mb_cache_destroy()`. The
    /// kernel's destroy (fs/mbcache.c `mb_cache_destroy()`) first waits for the shrinker's scans
    /// in flight (unregistering the shrinker) and for a running shrink work item
    /// (`cancel_work_sync()`), and only then frees the entries: the scans and runs ordered after
    /// the unmount (`detached_work`, `detached_calls`) walk this LRU, and are judged on it. The
    /// reference cannot see when the unmount's call returned; the next mount (set-up prefix
    /// only, so the unmount is over) is where it drops it.
    detached: Option<Cache>,
    /// Each block's (allocated, h_refcount, h_hash); written through [`Fs::write_block`].
    blocks: Vec<(bool, u32, u32)>,
    /// How many of `blocks` are allocated (so picking the `index`-th allocated block walks to
    /// it, not over every block twice).
    allocated_count: usize,
}

impl Fs {
    /// `block`'s (allocated, h_refcount, h_hash) set to `state`, keeping `allocated_count`.
    fn write_block(&mut self, block: usize, state: (bool, u32, u32)) {
        let was = self.blocks[block].0;
        self.blocks[block] = state;
        self.allocated_count = self.allocated_count + usize::from(state.0) - usize::from(was);
    }
}

/// Whole calls: a `merging` item whose rerun is over (see `Mbcache2Model::late_merges`).
#[derive(Clone, Debug)]
struct LateMerge {
    item: (usize, u64),
    /// The tasks with no operation ordered since the rerun ended: a call of theirs may have
    /// been in flight across the rerun's claim of the item.
    tasks: Vec<usize>,
    /// How many more inserts it explains: one per task but the rerunning kworker's, which the
    /// reference cannot name (`RunWork` is no task's).
    left: usize,
}

/// The reference state.
#[derive(Clone, Debug)]
pub struct Mbcache2Model {
    fss: Vec<Fs>,
    bucket_bits: u32,
    refcount_max: u32,
    held_max: usize,
    next_entry: u64,
    next_generation: u64,
    /// Per task: held (fs, entry).
    held: Vec<Vec<(usize, u64)>>,
    /// Per task: a parked release (fs, block, entry).
    parked: Vec<Option<(usize, u64, u64)>>,
    /// Queued shrink work: (fs, cache generation).
    work: Vec<(usize, u64)>,
    /// `Mbcache2Config::whole_calls`.
    whole_calls: bool,
    /// Whole calls: per task, the (filesystem, block) references its inodes own.
    owned: Vec<Vec<(usize, u64)>>,
    /// Whole calls: the entry the operation ordered just before this one shared (touched), if
    /// it was a share: any step of a scan, or of either run of a `RunWork` that ran the item
    /// again, may evict it although it is referenced (see [`Cache::scan`]).
    just_touched: Option<u64>,
    /// Whole calls: per task, the entry its last call shared, if that call was a share (a lazy
    /// unmount hands them to the detached cache: `Cache::shares_in_flight`).
    last_shares: Vec<Option<u64>>,
    /// Whole calls: per task, whether an operation of it was ordered since the last scan with
    /// steps: its later shares may use the entries that scan evicted (`Cache::scan_evicted`).
    called_since_scan: Vec<bool>,
    /// Whole calls: idle `RunWork`s (nothing on the worklist) ordered since the last scan with
    /// steps, when that scan was a `RunWork`'s (`None` after a `Shrink`'s). A kworker that found
    /// the worklist empty while another ran the item dequeued after that run's
    /// `process_one_work()` took it (clearing its pending bit under `pool->lock`), so the idle
    /// `RunWork` is ordered after the run, and the calls its thread makes next are too, though
    /// they may be in flight at the run's later steps, whose `test_bit(MBE_REFERENCED_B)` and
    /// `atomic_cmpxchg(&e_refcnt, 1, 0)` a share's touch and put fall between (case seed
    /// 225129). Such a share may use an entry the scan evicted as if its task had a call
    /// ordered since the scan (`called_since_scan`), but `RunWork` is no task's: each idle
    /// `RunWork` lets one task with no call since the scan do so (its thread's task), and that
    /// task's call then counts as one. An idle `RunWork` after a `Shrink` counts for nothing:
    /// the reference does not order it after the shrinker's scan.
    idle_kworkers: Option<usize>,
    /// Whole calls: shrink work runs with nothing queued here (a rerun after another kworker
    /// handed the item over), each owed to a `schedule_work()` ordered after it, which the
    /// kernel merged into the still pending item: that one queues nothing.
    work_credits: Vec<(usize, u64)>,
    /// Whole calls: items whose credit a `schedule_work()` took (it queued the item again in the
    /// kernel, and the rerun ordered earlier claims it later, inside that `RunWork`'s window).
    /// Until the rerun claims it the item stays pending (`process_one_work()` leaves
    /// `WORK_STRUCT_PENDING` set on an item it hands to the executing kworker), so a further
    /// `schedule_work()` merges into it: one ordered here may have queued nothing.
    merging: Vec<(usize, u64)>,
    /// Whole calls: queued items a `schedule_work()` of a `merging` item queued here, which the
    /// kernel may have merged into the rerun (then a `RunWork` ordered after finds nothing).
    maybe_merged: Vec<(usize, u64)>,
    /// Whole calls: `merging` items whose rerun a `RunWork` ordered since has ended (it ran or
    /// found nothing). `mb_cache_entry_create()` calls `schedule_work()` before it hashes its
    /// entry, and the hash is where the reference orders the insert, so an insert in flight
    /// across the rerun's start may have found the item still pending there (handed to the
    /// executing kworker, `WORK_STRUCT_PENDING` set until `process_one_work()` starts the rerun)
    /// and merged into it, while its hash comes after that `RunWork` and after a find that
    /// missed its entry (case seed 23911). Such an insert's item is `maybe_merged`. Only a task
    /// with no operation ordered since the `RunWork` may have had that insert in flight: an
    /// operation ordered after it ended after it began, which (as retiring `merging` there
    /// assumes) is after the rerun started, and the task's next call began later still. So a
    /// task's claim lapses at its next operation, and at most one insert per task but the
    /// rerunning kworker's is explained.
    late_merges: Vec<LateMerge>,
    /// Whole calls: items a `RunWork` took off the queue since an insert last scheduled them.
    /// `mb_cache_entry_create()` reads `c_entry_count` and calls `schedule_work()` before it
    /// allocates and inserts the entry, and the insert is where the reference orders the call (a
    /// find sees it there), so the first insert ordered after such a take may have scheduled the
    /// work before the take, merged into the item that run claimed: its item is `maybe_merged`.
    taken: Vec<(usize, u64)>,
    /// Whole calls: shrink work items an unmount took off the queue. A lazy unmount detaches
    /// the filesystem first and destroys the cache later, and a kworker may take the item
    /// between the two (`cancel_work_sync()` then waits for its run): a run ordered after the
    /// unmount scans a cache nobody can see any more, so its steps are not judged. An item is
    /// here once for being queued, and once more for each insert that found it queued (see
    /// `merged_inserts`), up to one per other task: a run takes one, and so does each rerun of a
    /// detached item (case seed 9002097). Each run's steps are judged on the detached cache
    /// (`Fs::detached`) as a queued run's are on a mounted one.
    detached_work: Vec<(usize, u64)>,
    /// Whole calls: one element per insert ordered while its cache's item was queued here (its
    /// `schedule_work()` merged), since a `RunWork` last took the item. An insert in flight
    /// when a lazy unmount detaches its filesystem is ordered before the unmount, but its
    /// `schedule_work()` may come after the detach and after a kworker took the item (a run
    /// ordered after the unmount): it queued the item again, and a second run scans the
    /// detached cache (case seed 8005756).
    merged_inserts: Vec<(usize, u64)>,
    /// Whole calls: items a `RunWork` ran with nothing queued here, each owed to an insert not
    /// yet ordered. `mb_cache_entry_create()` calls `schedule_work()` before it hashes its
    /// entry, and a kworker may take and run the item between the two (a find then misses the
    /// entry: case seed 9677): the first insert into the cache ordered after the run scheduled
    /// it, and queues nothing. A run is owed only while the cache is past `c_max_entries` (the
    /// insert read the count that far; no debt at all when an insert ordered earlier may have
    /// read it past the limit, `stale_schedules`), at most one per other task (inserts in flight), and
    /// every debt must be paid before the filesystem is unmounted and by the end of the case
    /// ([`Reference::finish`]).
    early_runs: Vec<(usize, u64)>,
    /// Whole calls: per unmount, one filesystem number per other task (each has at most one
    /// call in flight): a call in flight when a lazy unmount detached the filesystem goes on
    /// with the detached cache, which the unmount waits for, and is ordered after the unmount
    /// when what it saw says so. A shrinker scan (`Shrink`: `do_shrink_slab()`'s
    /// `mb_cache_scan()`, which `unregister_shrinker()` waits for) that follows a detached shrink
    /// work run (case seed 11001046): its steps are judged on the detached cache
    /// (`Fs::detached`), the first at its LRU's head. A find or a release (case seed 14004653:
    /// a find that missed the entries a detached run evicted, while another task's find had
    /// already failed with ENODEV before that run): judged as on a mounted cache, on the
    /// detached one ([`Mbcache2Model::on_detached`]).
    detached_calls: Vec<usize>,
    /// Whole calls: entries the last shrink work run with steps evicted. A run is ordered at its
    /// dequeue and scans later, so an insert ordered after it may have read `c_entry_count`
    /// before those evictions (case seed 11018796).
    last_run_evicted: u64,
    /// Whole calls: items of inserts that queued nothing here, the count being under
    /// `c_max_entries` by no more than `last_run_evicted`: with the count read before that run's
    /// scan they scheduled the work, so a later run with nothing queued may be theirs, and owes
    /// nothing (see `early_runs`).
    stale_schedules: Vec<(usize, u64)>,
}

/// A cache's entries by number, in number order: the numbers from the oldest live one on, each
/// slot empty once its entry is freed (numbers only grow, so an insert goes at the end and the
/// front is trimmed as entries go). A look-up is an index, where a chain walk compares each
/// node's key and value.
#[derive(Clone, Debug, Default)]
struct Entries {
    /// The number of `slots[0]`.
    base: u64,
    slots: VecDeque<Option<Entry>>,
}

impl Entries {
    fn at(&self, id: u64) -> Option<usize> {
        id.checked_sub(self.base).map(|at| at as usize).filter(|&at| at < self.slots.len())
    }

    fn get(&self, id: &u64) -> Option<&Entry> {
        self.slots.get(self.at(*id)?)?.as_ref()
    }

    fn get_mut(&mut self, id: &u64) -> Option<&mut Entry> {
        let at = self.at(*id)?;
        self.slots.get_mut(at)?.as_mut()
    }

    /// A new entry, numbered above every live one (the reference's numbers only grow).
    fn insert(&mut self, id: u64, entry: Entry) {
        if self.slots.is_empty() {
            self.base = id;
        }
        assert!(id >= self.base + self.slots.len() as u64, "entry {id} numbered in order");
        let end = self.base + self.slots.len() as u64;
        self.slots.extend((end..id).map(|_| None));
        self.slots.push_back(Some(entry));
    }

    fn remove(&mut self, id: &u64) -> Option<Entry> {
        let at = self.at(*id)?;
        let entry = self.slots[at].take();
        while self.slots.front().is_some_and(Option::is_none) {
            self.slots.pop_front();
            self.base += 1;
        }
        entry
    }

    fn values(&self) -> impl Iterator<Item = &Entry> {
        self.slots.iter().flatten()
    }
}

impl std::ops::Index<&u64> for Entries {
    type Output = Entry;

    fn index(&self, id: &u64) -> &Entry {
        self.get(id).expect("a live entry")
    }
}

impl Cache {
    fn new(generation: u64, bucket_bits: u32) -> Cache {
        let buckets = 1usize << bucket_bits;
        Cache {
            generation,
            chains: vec![Vec::new(); buckets],
            lru: Vec::new(),
            entries: Entries::default(),
            max_entries: (buckets as u64) << 4,
            claimed: Vec::new(),
            shares_in_flight: Vec::new(),
            scan_evicted: Vec::new(),
        }
    }

    fn chain(&mut self, key: u32, bits: u32) -> &mut Vec<u64> {
        &mut self.chains[hash_32(key, bits) as usize]
    }

    /// `mb_cache_entry_put`: true when it freed the entry.
    fn put(&mut self, id: u64) -> bool {
        let Some(entry) = self.entries.get_mut(&id) else { return false };
        entry.refcnt -= 1;
        if entry.refcnt == 0 {
            self.entries.remove(&id);
            return true;
        }
        false
    }

    /// `hlist_bl_del_init`: the hash's reference stays with the caller, as in the kernel.
    fn unhash(&mut self, id: u64, bits: u32) {
        let key = self.entries[&id].key;
        self.chain(key, bits).retain(|&e| e != id);
        self.entries.get_mut(&id).expect("hashed entry").hashed = false;
    }

    /// `list_del_init` of a listed entry: the LRU's reference stays with the caller.
    fn unlist(&mut self, id: u64) -> bool {
        self.lru.retain(|&e| e != id);
        let entry = self.entries.get_mut(&id).expect("entry");
        std::mem::replace(&mut entry.listed, false)
    }

    fn drop_ref(&mut self, id: u64) {
        self.entries.get_mut(&id).expect("entry").refcnt -= 1;
    }

    /// `mb_cache_shrink`.
    fn shrink(&mut self, mut nr: u64, bits: u32) -> u64 {
        let mut shrunk = 0;
        while nr > 0 && !self.lru.is_empty() {
            nr -= 1;
            let id = self.lru[0];
            let entry = self.entries.get_mut(&id).expect("LRU entry");
            if entry.referenced || entry.refcnt > 2 {
                entry.referenced = false;
                self.lru.rotate_left(1);
                continue;
            }
            self.unlist(id);
            if self.entries[&id].hashed {
                self.unhash(id, bits);
                self.drop_ref(id);
            }
            if self.put(id) {
                shrunk += 1;
            }
        }
        shrunk
    }

    /// Whole calls: one scan of up to `nr` steps, as the kernel reports it (`steps`, consumed
    /// from the front), judged against this LRU. The first step's entry is the LRU's head; a
    /// later step's may be any listed entry, since the scan drops `c_list_lock` between steps and
    /// an overlapping scan may take or rotate the entries before it. An entry that left the cache
    /// was not referenced (a kept one may be unreferenced: an overlapping call held it); the scan
    /// stops early only on an empty LRU. The one referenced entry a step may evict is
    /// `touched`, the one the share ordered right before this scan referenced: the kernel's
    /// shrinker (`mb_cache_shrink()`) tests `e_referenced` and claims the count
    /// (`atomic_cmpxchg` from one) in two instants at every step, and a share's
    /// `mb_cache_entry_touch()` and put between them leave the entry evicted with its bit set
    /// (harmless: the bit is a hint), which no order of whole calls explains otherwise. Any
    /// step: a shrink work run's `c_max_entries / 16` steps span the share (case seed 10155),
    /// and so does a rerun's, which `scanned` judges where the `RunWork` is ordered, at its
    /// first dequeue, though the kernel runs it after the first run ends (case seed 24501: the
    /// share's touch and put fell between the rerun's test and claim). A shrink work run (`head`
    /// false) may start anywhere on it too (see [`Mbcache2Model::scanned`]). On a detached cache, the entries of shares in flight at the
    /// detach (`shares_in_flight`) may be evicted so too, whatever was ordered in between.
    fn scan(
        &mut self,
        steps: &mut std::slice::Iter<'_, ScanStep>,
        nr: u64,
        bits: u32,
        head: bool,
        touched: Option<u64>,
    ) -> Result<(), String> {
        for at in 0..nr {
            if steps.as_slice().first().is_some_and(|step| self.claimed_unlisted(step)) {
                // An entry a release in flight claimed and has not yet taken off (`claimed`).
                steps.next();
                continue;
            }
            let Some(&first) = self.lru.first() else { return Ok(()) };
            let Some(step) = steps.next() else {
                let entry = &self.entries[&first];
                return Err(format!(
                    "the scan stopped with entry {}:{} at the LRU's head",
                    entry.key, entry.value
                ));
            };
            let met = |id: &u64| {
                let entry = &self.entries[id];
                (entry.key, entry.value) == (step.key, step.value)
            };
            let id = match at {
                0 if head => Some(first).filter(met),
                _ => self.lru.iter().copied().find(met),
            };
            let Some(id) = id else {
                return Err(format!(
                    "the scan met {}:{}, not on the LRU {:?}",
                    step.key, step.value, self.lru
                ));
            };
            let raced = touched == Some(id) || self.shares_in_flight.contains(&id);
            if step.evicted && self.entries[&id].referenced && !raced {
                return Err(format!("the scan evicted {}:{}, which is referenced", step.key, step.value));
            }
            self.lru.retain(|&e| e != id);
            self.lru.push(id);
            self.entries.get_mut(&id).expect("LRU entry").referenced = false;
            if step.evicted {
                self.shares_in_flight.retain(|&e| e != id);
                let entry = &self.entries[&id];
                if entry.reusable {
                    self.scan_evicted.push((entry.key, entry.value));
                }
                self.unlist(id);
                self.unhash(id, bits);
                self.entries.remove(&id);
            }
        }
        Ok(())
    }

    /// A shrink work run (`mb_cache_shrink_worker()`: `c_max_entries / 16` steps, from anywhere
    /// on the LRU) tried on a copy of this cache, so a run whose steps do not fit changes
    /// nothing: the scanned copy and the steps left when the run used them all, None when it
    /// went on past them, or why the steps do not fit.
    fn try_work_run<'s>(
        &self,
        steps: &std::slice::Iter<'s, ScanStep>,
        bits: u32,
        touched: Option<u64>,
    ) -> Result<Option<(Cache, std::slice::Iter<'s, ScanStep>)>, String> {
        let (mut tried, mut left) = (self.clone(), steps.clone());
        tried.scan(&mut left, self.max_entries / SHRINK_DIVISOR, bits, false, touched)?;
        Ok(left.as_slice().is_empty().then_some((tried, left)))
    }

    /// A kept step whose entry a release in flight claimed (see `claimed`), none listed matching.
    fn claimed_unlisted(&self, step: &ScanStep) -> bool {
        let listed = self
            .lru
            .iter()
            .any(|id| (self.entries[id].key, self.entries[id].value) == (step.key, step.value));
        !step.evicted
            && !listed
            && self.claimed.iter().any(|&(_, key, value)| (key, value) == (step.key, step.value))
    }

    fn find_in_chain(&mut self, key: u32, value: u64, bits: u32) -> Option<u64> {
        let entries = &self.entries;
        self.chains[hash_32(key, bits) as usize].iter().copied().find(|id| {
            let entry = &entries[id];
            entry.key == key && entry.value == value
        })
    }
}

impl Mbcache2Model {
    fn cache(&mut self, fs: usize) -> Option<&mut Cache> {
        self.fss[fs].cache.as_mut()
    }

    /// `mb_cache_entry_create`, by a task that may have called `schedule_work()` before the
    /// reruns of the `late` items started (see `late_merges`).
    fn create(&mut self, fs: usize, key: u32, value: u64, reusable: bool, late: &[(usize, u64)]) -> Outcome {
        let bits = self.bucket_bits;
        let id = self.next_entry;
        self.next_entry += 1;
        let Some(cache) = self.fss[fs].cache.as_mut() else { return Outcome::Failed(Errno::ENODEV) };
        let count = cache.lru.len() as u64;
        let item = (fs, cache.generation);
        if let Some(at) = self.early_runs.iter().position(|&owed| owed == item) {
            // The insert whose `schedule_work()` a kworker ran before this (see `early_runs`).
            self.early_runs.remove(at);
        } else if count >= cache.max_entries && self.work.contains(&item) {
            self.merged_inserts.push(item);
        } else if count < cache.max_entries {
            if count + self.last_run_evicted >= cache.max_entries && !self.work.contains(&item) {
                self.stale_schedules.push(item);
            }
        } else {
            match self.work_credits.iter().position(|&owed| owed == item) {
                Some(at) => {
                    self.work_credits.remove(at);
                    self.merging.push(item);
                }
                None => {
                    let taken = self.taken.iter().position(|&t| t == item).map(|at| self.taken.remove(at));
                    if self.merging.contains(&item)
                        || (self.whole_calls && taken.is_some())
                        || merged_late(&mut self.late_merges, item, late)
                    {
                        self.maybe_merged.push(item);
                    }
                    self.work.push(item);
                }
            }
        }
        if count >= 2 * cache.max_entries {
            cache.shrink(SYNC_SHRINK_BATCH, bits);
        }
        if cache.find_in_chain(key, value, bits).is_some() {
            return Outcome::Failed(Errno::EBUSY);
        }
        cache.chain(key, bits).insert(0, id);
        cache.lru.push(id);
        let entry = Entry { key, value, refcnt: 2, referenced: false, reusable, hashed: true, listed: true };
        cache.entries.insert(id, entry);
        Outcome::Done
    }

    /// `__entry_find` from after `old` (or the chain's head).
    fn find(&mut self, fs: usize, old: Option<u64>, key: u32) -> Option<u64> {
        let bits = self.bucket_bits;
        let cache = self.fss[fs].cache.as_mut()?;
        let chain = &cache.chains[hash_32(key, bits) as usize];
        let start = match old {
            Some(old) if cache.entries.get(&old).is_some_and(|e| e.hashed) => {
                chain.iter().position(|&e| e == old).map_or(0, |at| at + 1)
            }
            _ => 0,
        };
        let found = chain[start..].iter().copied().find(|id| {
            let entry = &cache.entries[id];
            entry.key == key && entry.reusable
        });
        if let Some(id) = found {
            cache.entries.get_mut(&id).expect("found").refcnt += 1;
        }
        if let Some(old) = old {
            cache.put(old);
        }
        found
    }

    /// `mb_cache_entry_delete_or_get`.
    fn delete_or_get(&mut self, fs: usize, key: u32, value: u64) -> Option<u64> {
        let bits = self.bucket_bits;
        let cache = self.fss[fs].cache.as_mut()?;
        let id = cache.find_in_chain(key, value, bits)?;
        let entry = cache.entries.get_mut(&id).expect("hashed");
        if entry.refcnt > 2 {
            entry.refcnt += 1;
            return Some(id);
        }
        cache.unhash(id, bits);
        if cache.unlist(id) {
            cache.drop_ref(id);
        }
        cache.put(id);
        None
    }

    fn xattr_new(&mut self, fs: usize, key: u32) -> Outcome {
        let lowest = self.fss[fs].blocks.iter().position(|b| !b.0);
        self.xattr_new_at(fs, key, lowest, &[])
    }

    /// A new block `block` (None: every block is allocated) with content `key`, inserted by a
    /// task that may have merged into the reruns of the `late` items (see `late_merges`).
    fn xattr_new_at(&mut self, fs: usize, key: u32, block: Option<usize>, late: &[(usize, u64)]) -> Outcome {
        if self.fss[fs].cache.is_none() {
            return Outcome::Failed(Errno::ENODEV);
        }
        let Some(block) = block else { return Outcome::Failed(Errno::ENOSPC) };
        self.fss[fs].write_block(block, (true, 1, key));
        let reusable = self.refcount_max > 1;
        let _ = self.create(fs, key, block as u64, reusable, late);
        Outcome::Block(block as u64)
    }

    fn hold(&mut self, task: usize, fs: usize, found: Option<u64>) -> Outcome {
        let Some(id) = found else { return Outcome::Failed(Errno::ENOENT) };
        self.held[task].push((fs, id));
        let value = self.fss[fs].cache.as_ref().map_or(u64::MAX, |cache| cache.entries[&id].value);
        Outcome::Block(value)
    }

    fn take(&mut self, task: usize, index: u8) -> Option<(usize, u64)> {
        let held = &mut self.held[task];
        (!held.is_empty()).then(|| held.remove(usize::from(index) % held.len()))
    }

    fn reuse(&mut self, task: usize, index: u8) -> Outcome {
        let Some((fs, id)) = self.take(task, index) else { return Outcome::Nothing };
        let max = self.refcount_max;
        let Fs { cache, blocks, .. } = &mut self.fss[fs];
        let Some(cache) = cache.as_mut() else { return Outcome::Failed(Errno::ENODEV) };
        let entry = cache.entries[&id].clone();
        let block = &mut blocks[entry.value as usize];
        if !entry.hashed || !entry.reusable || block.1 + 1 > max {
            cache.put(id);
            return Outcome::Undone;
        }
        block.1 += 1;
        let count = block.1;
        let entry = cache.entries.get_mut(&id).expect("held");
        if count == max {
            entry.reusable = false;
        }
        entry.referenced = true;
        cache.put(id);
        Outcome::Reused(count)
    }

    /// `ext4_xattr_release_block` up to a wait: the entry to wait for, if any.
    fn release(&mut self, fs: usize, block: u64) -> Option<u64> {
        let (allocated, count, hash) = self.fss[fs].blocks[block as usize];
        if !allocated {
            return None;
        }
        if count == 1 {
            if let Some(oe) = self.delete_or_get(fs, hash, block) {
                return Some(oe);
            }
            self.fss[fs].write_block(block as usize, (false, 0, 0));
            return None;
        }
        self.fss[fs].blocks[block as usize].1 -= 1;
        if count - 1 == self.refcount_max - 1 {
            let bits = self.bucket_bits;
            let cache = self.cache(fs)?;
            if let Some(id) = cache.find_in_chain(hash, block, bits) {
                cache.entries.get_mut(&id).expect("hashed").reusable = true;
            }
        }
        None
    }

    /// The subject's `wake_waiters`, step for step.
    fn wake_waiters(&mut self) {
        loop {
            let ready = (0..self.parked.len()).find(|&task| {
                self.parked[task].is_some_and(|(fs, _, oe)| {
                    self.fss[fs]
                        .cache
                        .as_ref()
                        .is_none_or(|cache| cache.entries.get(&oe).is_none_or(|e| e.refcnt <= 3))
                })
            });
            let Some(task) = ready else { return };
            let Some((fs, block, oe)) = self.parked[task].take() else { return };
            if let Some(cache) = self.cache(fs) {
                cache.put(oe);
            }
            if let Some(oe) = self.release(fs, block) {
                self.parked[task] = Some((fs, block, oe));
            }
        }
    }

    /// The `index`-th allocated block, modulo how many are (as the harness picks it).
    fn allocated_block(&self, fs: usize, index: u8) -> Option<u64> {
        let Fs { blocks, allocated_count, .. } = &self.fss[fs];
        debug_assert_eq!(*allocated_count, blocks.iter().filter(|b| b.0).count(), "fs {fs}'s count");
        let allocated = blocks.iter().map(|b| b.0);
        crate::mbcache2::xattr::nth_allocated_of(allocated, *allocated_count, index)
    }

    fn umount(&mut self, fs: usize) -> Outcome {
        let busy = self.held.iter().flatten().any(|&(f, _)| f == fs)
            || self.parked.iter().flatten().any(|p| p.0 == fs);
        if busy {
            return Outcome::Failed(Errno::EBUSY);
        }
        let Some(cache) = self.fss[fs].cache.take() else { return Outcome::Failed(Errno::EINVAL) };
        let detached = |&(f, generation): &(usize, u64)| f == fs && generation == cache.generation;
        if self.whole_calls {
            let queued: Vec<(usize, u64)> = self.work.iter().copied().filter(detached).collect();
            let merged = self.merged_inserts.iter().filter(|item| detached(item)).count();
            let again = merged.min(self.owned.len().saturating_sub(1));
            for item in queued {
                self.detached_work.extend(std::iter::repeat_n(item, 1 + again));
            }
        }
        self.merged_inserts.retain(|item| !detached(item));
        if self.whole_calls {
            self.detached_calls.extend(std::iter::repeat_n(fs, self.owned.len().saturating_sub(1)));
        }
        self.work.retain(|item| !detached(item));
        self.work_credits.retain(|&(f, generation)| !(f == fs && generation == cache.generation));
        self.merging.retain(|item| !detached(item));
        self.late_merges.retain(|late| !detached(&late.item));
        self.maybe_merged.retain(|item| !detached(item));
        self.taken.retain(|item| !detached(item));
        if self.whole_calls {
            let mut cache = cache;
            cache.shares_in_flight = self.last_shares.iter().flatten().copied().collect();
            self.fss[fs].detached = Some(cache);
        }
        Outcome::Done
    }

    fn run_work(&mut self) -> Outcome {
        let bits = self.bucket_bits;
        let mut freed = 0;
        self.merged_inserts.clear();
        for (fs, generation) in std::mem::take(&mut self.work) {
            if let Some(cache) = self.fss[fs].cache.as_mut().filter(|c| c.generation == generation) {
                let nr = cache.max_entries / SHRINK_DIVISOR;
                freed += cache.shrink(nr, bits);
            }
        }
        Outcome::Freed(freed)
    }

    fn mount(&mut self, fs: usize) -> Outcome {
        if self.fss[fs].cache.is_some() {
            return Outcome::Failed(Errno::EBUSY);
        }
        self.next_generation += 1;
        self.fss[fs].cache = Some(Cache::new(self.next_generation, self.bucket_bits));
        // The last unmount is over (a mount needs a quiescent world): its `mb_cache_destroy()`
        // cancelled what was still queued and freed the detached cache.
        self.fss[fs].detached = None;
        self.detached_work.retain(|&(f, _)| f != fs);
        self.detached_calls.retain(|&f| f != fs);
        Outcome::Done
    }

    /// `XattrFind` as one call (`whole_calls`): ext4 shares any reusable block with the content,
    /// and which one (the kernel's chain order, which overlapping inserts reorder) is no part of
    /// the contract, so the reference accepts the block the call names if it was shareable, and
    /// ENOENT only when none was.
    /// `may_use_evicted`: whether the task had an operation ordered since the last scan with
    /// steps (or an idle kworker stands for one, `idle_kworkers`), so the share may use an entry
    /// that scan evicted (see `Cache::scan_evicted`). Whether it did.
    fn share(
        &mut self,
        fs: usize,
        key: u32,
        actual: &Outcome,
        may_use_evicted: bool,
    ) -> Result<bool, String> {
        let max = self.refcount_max;
        let Fs { cache, blocks, .. } = &mut self.fss[fs];
        let Some(cache) = cache.as_mut() else {
            return match actual {
                Outcome::Failed(Errno::ENODEV) => Ok(false),
                _ => Err("expected Failed(ENODEV): the filesystem is not mounted".to_string()),
            };
        };
        let shareable: Vec<u64> = (cache.entries.values())
            .filter(|e| e.key == key && e.hashed && e.reusable && blocks[e.value as usize].0)
            .filter(|e| blocks[e.value as usize].1 < max)
            .map(|e| e.value)
            .collect();
        // Blocks whose entries the last scan evicted, which a share in flight at that scan's
        // step may have used (see `Cache::scan_evicted`); they never explain an ENOENT.
        let evicted: Vec<u64> = (cache.scan_evicted.iter())
            .filter(|&&(k, block)| may_use_evicted && k == key && !shareable.contains(&block))
            .map(|&(_, block)| block)
            .filter(|&block| matches!(blocks[block as usize], (true, count, k) if k == key && count < max))
            .collect();
        match *actual {
            Outcome::Failed(Errno::ENOENT) if shareable.is_empty() => Ok(false),
            Outcome::Shared { block, count } if shareable.contains(&block) || evicted.contains(&block) => {
                let bits = self.bucket_bits;
                let counted = &mut blocks[block as usize].1;
                *counted += 1;
                if *counted != count {
                    return Err(format!("block {block} shared with h_refcount {count}, expected {counted}"));
                }
                if evicted.contains(&block) {
                    // Touched and put before the scan's step claimed it: nothing left to touch.
                    return Ok(true);
                }
                let id = cache.find_in_chain(key, block, bits).expect("shareable entries are hashed");
                let entry = cache.entries.get_mut(&id).expect("hashed");
                entry.referenced = true;
                entry.reusable = count < max;
                self.just_touched = Some(id);
                Ok(false)
            }
            _ if evicted.is_empty() => {
                Err(format!("expected a share of one of blocks {shareable:?} (none: Failed(ENOENT))"))
            }
            _ => Err(format!(
                "expected a share of one of blocks {shareable:?} (none: Failed(ENOENT)), or of {evicted:?}, \
                 whose entries the last scan evicted"
            )),
        }
    }

    /// `XattrNew` as one call (`whole_calls`): the allocator hands out a free block, and which
    /// one is no part of the contract (ext4 frees a released block after dropping the buffer lock,
    /// so an overlapping allocation may see it still in use after the cache entry is gone), so
    /// the reference accepts any block free here, and ENOSPC only when none is. `late`: the
    /// items whose rerun the call may have been in flight across (see `late_merges`).
    fn new_block(
        &mut self,
        task: usize,
        fs: usize,
        key: u32,
        actual: &Outcome,
        late: &[(usize, u64)],
    ) -> Result<(), String> {
        let blocks = &self.fss[fs].blocks;
        let chosen = match *actual {
            Outcome::Block(block) if blocks.get(block as usize).is_some_and(|b| !b.0) => Some(block as usize),
            _ => None,
        };
        let lowest = blocks.iter().position(|b| !b.0);
        let expect = self.xattr_new_at(fs, key, chosen.or(lowest), late);
        if expect != *actual {
            return Err(format!("expected {expect:?} (or any other free block)"));
        }
        if let Outcome::Block(block) = expect {
            self.owned[task].push((fs, block));
        }
        Ok(())
    }

    /// Whole calls: `Shrink` and `RunWork` (a kworker runs the first queued item) judged by their
    /// scans' steps (see [`Cache::scan`]). A `RunWork` is ordered where it took the item off the
    /// queue (an idle kworker after it finds nothing), and scans later, after calls ordered
    /// behind it (a shrink evicting the head) may have run: its first step may be anywhere on
    /// the LRU too. A `RunWork` that ran the item again (another kworker
    /// handed it over) takes a second queued item for the rerun if one is queued here, but need
    /// not: the kernel cleared the item's pending bit when the first run started, and the
    /// `schedule_work()` that queued it again may be ordered before this call, where the
    /// reference still had it queued. One that left the item to the kworker running it changes
    /// nothing.
    fn scanned(&mut self, op: &Op, actual: &Outcome) -> Result<(), String> {
        let runs: Vec<&[ScanStep]> = match (op, actual) {
            (Op::RunWork, Outcome::Deferred) => return Ok(()),
            (Op::RunWork, Outcome::Reran(runs)) => runs.iter().map(Vec::as_slice).collect(),
            (_, Outcome::Scanned(steps)) => vec![steps.as_slice()],
            (Op::Shrink { fs, .. }, Outcome::Failed(Errno::ENODEV))
                if self.fss[usize::from(*fs) % self.fss.len()].cache.is_none() =>
            {
                return Ok(())
            }
            _ => return Err("expected a scan's steps".to_string()),
        };
        if runs.iter().any(|steps| !steps.is_empty()) {
            self.open_scan_window(matches!(op, Op::RunWork));
        }
        if let Op::RunWork = op {
            if self.merged_away(&runs) {
                self.idle_kworkers = self.idle_kworkers.map(|idle| idle + 1);
                return Ok(());
            }
            // The kworker ran or found nothing: a rerun that claimed a merging item is over.
            self.retire_merging();
            let evicted = runs.iter().flat_map(|steps| steps.iter()).filter(|step| step.evicted).count();
            if evicted > 0 {
                self.last_run_evicted = evicted as u64;
            }
        }
        let (mut item, touched) = (None, self.just_touched.take());
        for (run, steps) in runs.into_iter().enumerate() {
            let mut steps = steps.iter();
            match *op {
                Op::Shrink { fs, nr, .. } => self.shrink_scan(usize::from(fs), nr, &mut steps, touched)?,
                _ if self.work.is_empty() && run == 0 => {
                    if steps.as_slice().is_empty() {
                        // An idle kworker: its thread's next calls may overlap the last run's
                        // steps (`idle_kworkers`).
                        self.idle_kworkers = self.idle_kworkers.map(|idle| idle + 1);
                    } else if !self.detached_work.is_empty() {
                        // A run of an item a lazy unmount detached (see `detached_work`).
                        item = Some(self.detached_run(&mut steps, touched)?);
                    } else {
                        // A run of the item an insert not yet ordered scheduled (`early_runs`).
                        item = Some(self.early_run(&mut steps, touched)?);
                    }
                }
                _ if item
                    .is_some_and(|(fs, g)| self.fss[fs].cache.as_ref().is_none_or(|c| c.generation != g)) =>
                {
                    // A rerun of a detached item: an insert in flight at the unmount queued it again
                    // while it ran (`detached_work`); no later insert can.
                    let at = self.detached_work.iter().position(|&queued| Some(queued) == item);
                    self.detached_work.remove(at.ok_or(
                        "the shrink work ran again on a detached cache, but was never queued again",
                    )?);
                    let item = item.expect("a rerun follows its first run");
                    self.detached_scan(item, &mut steps, None, touched)?;
                }
                // A rerun's steps race the share ordered right before this call as the first
                // run's do (`touched`): it is the same `mb_cache_shrink()` loop, later in the
                // same call (case seed 24501).
                _ => self.queued_run(&mut steps, &mut item, touched)?,
            }
            if let Some(step) = steps.next() {
                return Err(format!("the scan went on to {}:{} past its steps", step.key, step.value));
            }
        }
        Ok(())
    }

    /// Whole calls: a scan with steps starts anew the calls that may use an entry it evicts:
    /// only a share that overlapped this scan may (see `Cache::scan_evicted`), so no task has
    /// had a call since, and no idle kworker has run since (counted only after a `RunWork`'s
    /// scan: `idle_kworkers`).
    fn open_scan_window(&mut self, run_work: bool) {
        self.called_since_scan.fill(false);
        self.idle_kworkers = run_work.then_some(0);
        for fs in &mut self.fss {
            for cache in fs.cache.iter_mut().chain(fs.detached.iter_mut()) {
                cache.scan_evicted.clear();
            }
        }
    }

    /// Whole calls: a find or a release that returned what a mounted cache explains, on a
    /// filesystem a lazy unmount detached: a call in flight at the detach, ordered after the
    /// unmount (`detached_calls`), judged on the detached cache as on a mounted one (it is made
    /// the filesystem's cache for the call). None: not such a call (judged as usual).
    fn on_detached(&mut self, op: &Op, actual: &Outcome) -> Option<Result<(), String>> {
        let fs = match *op {
            Op::XattrFind { fs, .. } => usize::from(fs) % self.fss.len(),
            Op::XattrRelease { task, block, .. } => {
                let owned = &self.owned[usize::from(task) % self.owned.len()];
                owned.get(usize::from(block) % owned.len().max(1))?.0
            }
            _ => return None,
        };
        let detached = self.fss[fs].cache.is_none() && self.fss[fs].detached.is_some();
        if !self.whole_calls || !detached || *actual == Outcome::Failed(Errno::ENODEV) {
            return None;
        }
        let at = self.detached_calls.iter().position(|&f| f == fs)?;
        self.detached_calls.remove(at);
        self.fss[fs].cache = self.fss[fs].detached.take();
        let judged = self.check(op, actual);
        self.fss[fs].detached = self.fss[fs].cache.take();
        Some(judged)
    }

    /// Whole calls: a `Shrink`'s one scan of `fs`, or of its detached cache when the scan was in
    /// flight at a lazy unmount (`detached_calls`): `mb_cache_scan()` walks the detached LRU
    /// from its head, as on a mounted cache, since the unmount's `mb_cache_destroy()` waits for
    /// it before it frees an entry.
    fn shrink_scan(
        &mut self,
        fs: usize,
        nr: u8,
        steps: &mut std::slice::Iter<'_, ScanStep>,
        touched: Option<u64>,
    ) -> Result<(), String> {
        let (fs, bits) = (fs % self.fss.len(), self.bucket_bits);
        match self.fss[fs].cache.as_mut() {
            Some(cache) => cache.scan(steps, u64::from(nr), bits, true, touched),
            None => {
                let at = self.detached_calls.iter().position(|&f| f == fs);
                self.detached_calls.remove(at.ok_or("a scan of an unmounted filesystem")?);
                let generation = self.fss[fs].detached.as_ref().map_or(u64::MAX, |cache| cache.generation);
                self.detached_scan((fs, generation), steps, Some(u64::from(nr)), touched)
            }
        }
    }

    /// Whole calls: a run of one of the items a lazy unmount detached (`detached_work`), judged
    /// on its detached cache (`Fs::detached`): `mb_cache_shrink_worker()` reaches the cache
    /// through the work item, and `mb_cache_destroy()`'s `cancel_work_sync()` waits for the run
    /// before it frees an entry. The run is ordered at its dequeue, after the unmount, and scans
    /// later, so its first step may be anywhere on the LRU, as a mounted run's may. The first
    /// detached item whose cache the steps fit is the one run. Each try scans a copy of that
    /// detached cache alone (a scan changes nothing else), kept when the steps fit.
    fn detached_run(
        &mut self,
        steps: &mut std::slice::Iter<'_, ScanStep>,
        touched: Option<u64>,
    ) -> Result<(usize, u64), String> {
        let mut why = String::new();
        let mut items = self.detached_work.clone();
        items.dedup();
        for item in items {
            let bits = self.bucket_bits;
            let cache = match self.detached_cache(item) {
                Ok(cache) => cache,
                Err(err) => {
                    why = err.to_string();
                    continue;
                }
            };
            match cache.try_work_run(steps, bits, touched).map_err(on_detached) {
                Ok(Some((tried, left))) => {
                    *cache = tried;
                    *steps = left;
                    let at = self.detached_work.iter().position(|&queued| queued == item);
                    self.detached_work.remove(at.expect("a detached item"));
                    return Ok(item);
                }
                Ok(None) => why = "the shrink work's run went on past its steps".to_string(),
                Err(err) => why = err,
            }
        }
        Err(why)
    }

    /// Whole calls: one scan of the cache a lazy unmount detached as `item` (`Fs::detached`): a
    /// shrinker's `mb_cache_scan()` of `shrink_nr` steps from its LRU's head, or (None) a shrink
    /// work run's `mb_cache_shrink_worker()`, `c_max_entries / 16` steps from anywhere on it.
    fn detached_scan(
        &mut self,
        item: (usize, u64),
        steps: &mut std::slice::Iter<'_, ScanStep>,
        shrink_nr: Option<u64>,
        touched: Option<u64>,
    ) -> Result<(), String> {
        let bits = self.bucket_bits;
        let cache = self.detached_cache(item)?;
        let nr = shrink_nr.unwrap_or(cache.max_entries / SHRINK_DIVISOR);
        cache.scan(steps, nr, bits, shrink_nr.is_some(), touched).map_err(on_detached)
    }

    /// The cache a lazy unmount detached as `(fs, generation)`, unless it was destroyed since.
    fn detached_cache(&mut self, (fs, generation): (usize, u64)) -> Result<&mut Cache, &'static str> {
        let cache = self.fss[fs].detached.as_mut().filter(|cache| cache.generation == generation);
        cache.ok_or("a scan of a destroyed cache")
    }

    /// Whole calls: a shrink work run of the first item queued here (`item` becomes it), or a
    /// rerun of `item` with nothing queued here, owed to a later `schedule_work()` (see
    /// `work_credits`).
    fn queued_run(
        &mut self,
        steps: &mut std::slice::Iter<'_, ScanStep>,
        item: &mut Option<(usize, u64)>,
        touched: Option<u64>,
    ) -> Result<(), String> {
        if self.work.is_empty() {
            self.work_credits.extend(*item);
        } else {
            let took = self.work.remove(0);
            self.merged_inserts.retain(|&merged| merged != took);
            if !self.taken.contains(&took) {
                self.taken.push(took);
            }
            *item = Some(took);
            if let Some(at) = self.maybe_merged.iter().position(|&m| m == took) {
                self.maybe_merged.remove(at);
            }
        }
        let (fs, generation) = item.ok_or("the shrink work ran again, but was never queued")?;
        let bits = self.bucket_bits;
        match self.fss[fs].cache.as_mut().filter(|c| c.generation == generation) {
            Some(cache) => {
                let nr = cache.max_entries / SHRINK_DIVISOR;
                cache.scan(steps, nr, bits, false, touched)
            }
            // The item's filesystem was unmounted: the run scans its detached cache.
            None => self.detached_scan((fs, generation), steps, None, touched),
        }
    }

    /// Whole calls: an idle `RunWork` (no steps) where everything queued here is
    /// `maybe_merged`: those `schedule_work()`s found the item pending, their merge went into the
    /// rerun (`__queue_work()` is not reached when `test_and_set_bit(WORK_STRUCT_PENDING_BIT)`
    /// finds it set, `queue_work_on()`), so the kworker found an empty worklist. Drops them.
    fn merged_away(&mut self, runs: &[&[ScanStep]]) -> bool {
        let idle = matches!(runs, [steps] if steps.is_empty());
        let all_merged = self.work.iter().all(|item| self.maybe_merged.contains(item));
        if !idle || self.work.is_empty() || !all_merged {
            return false;
        }
        self.work.clear();
        self.maybe_merged.clear();
        self.retire_merging();
        self.merged_inserts.clear();
        true
    }

    /// Whole calls: the `merging` items' reruns are over; each task may still have had an insert
    /// in flight across one's start (see `late_merges`).
    fn retire_merging(&mut self) {
        let tasks = self.owned.len();
        for item in std::mem::take(&mut self.merging) {
            self.late_merges.retain(|late| late.item != item);
            if tasks > 1 {
                self.late_merges.push(LateMerge { item, tasks: (0..tasks).collect(), left: tasks - 1 });
            }
        }
    }

    /// Whole calls: `task`'s operation is ordered here: its calls from now on began after every
    /// rerun in `late_merges` started. The items whose rerun its operation may have been in
    /// flight across, for an insert's `schedule_work()`.
    fn lapse_late_merges(&mut self, task: usize) -> Vec<(usize, u64)> {
        let mut items = Vec::new();
        for late in &mut self.late_merges {
            if let Some(at) = late.tasks.iter().position(|&t| t == task) {
                late.tasks.remove(at);
                items.push(late.item);
            }
        }
        self.late_merges.retain(|late| !late.tasks.is_empty());
        items
    }

    /// Whole calls: a `RunWork` with steps and nothing queued here ran the item an insert not
    /// yet ordered scheduled before hashing its entry (see `early_runs`): the first mounted
    /// cache past `c_max_entries` its steps fit, a debt of that cache's next insert.
    fn early_run(
        &mut self,
        steps: &mut std::slice::Iter<'_, ScanStep>,
        touched: Option<u64>,
    ) -> Result<(usize, u64), String> {
        if self.early_runs.len() + 1 >= self.owned.len() {
            return Err(format!(
                "the shrink work ran, but was never queued (runs owed: {:?})",
                self.early_runs
            ));
        }
        let bits = self.bucket_bits;
        let mut why = "the shrink work ran, but was never queued".to_string();
        for fs in 0..self.fss.len() {
            let Some(cache) = self.fss[fs].cache.as_ref() else { continue };
            // An insert ordered earlier may have read the count past the limit (`stale_schedules`).
            let stale = self.stale_schedules.contains(&(fs, cache.generation));
            if (cache.lru.len() as u64) < cache.max_entries && !stale {
                why = format!(
                    "the shrink work ran, but was never queued (and no insert queues it with {} of {} entries)",
                    cache.lru.len(),
                    cache.max_entries
                );
                continue;
            }
            match cache.try_work_run(steps, bits, touched) {
                Ok(Some((tried, left))) => {
                    let item = (fs, tried.generation);
                    self.fss[fs].cache = Some(tried);
                    *steps = left;
                    match self.stale_schedules.iter().position(|&stale| stale == item) {
                        Some(at) => drop(self.stale_schedules.remove(at)),
                        None => self.early_runs.push(item),
                    }
                    if !self.taken.contains(&item) {
                        self.taken.push(item);
                    }
                    return Ok(item);
                }
                Ok(None) => why = "the shrink work ran, but was never queued".to_string(),
                Err(err) => why = err,
            }
        }
        Err(why)
    }

    /// What a whole call does differently (`whole_calls`); None for the other operations. A
    /// task owns a reference to each block it made or shared, and a release drops one of its own.
    fn expect_whole(&mut self, op: &Op) -> Option<Outcome> {
        let tasks = self.owned.len();
        let (task, fs) = match *op {
            Op::XattrFindNext { .. } | Op::XattrReuse { .. } | Op::Put { .. } => {
                return Some(Outcome::Nothing)
            }
            Op::Get { task, fs, .. } => (usize::from(task) % tasks, usize::from(fs) % self.fss.len()),
            Op::XattrRelease { task, block, .. } => {
                let task = usize::from(task) % tasks;
                let owned = &self.owned[task];
                if owned.is_empty() {
                    return Some(Outcome::Nothing);
                }
                (task, owned[usize::from(block) % owned.len()].0)
            }
            _ => return None,
        };
        if self.fss[fs].cache.is_none() {
            return Some(Outcome::Failed(Errno::ENODEV));
        }
        Some(match *op {
            Op::XattrRelease { block, .. } => {
                let at = usize::from(block) % self.owned[task].len();
                let (_, block) = self.owned[task].remove(at);
                let key = self.fss[fs].blocks[block as usize].2;
                let _ = self.release(fs, block);
                let freed = !self.fss[fs].blocks[block as usize].0;
                if let (true, Some(cache)) = (freed, self.cache(fs)) {
                    cache.claimed.push((task, key, block));
                }
                Outcome::Done
            }
            Op::Get { block, .. } => {
                let Some(block) = self.allocated_block(fs, block) else { return Some(Outcome::Nothing) };
                let (key, bits) = (self.fss[fs].blocks[block as usize].2, self.bucket_bits);
                match self.cache(fs).and_then(|cache| cache.find_in_chain(key, block, bits)) {
                    Some(_) => Outcome::Block(block),
                    None => Outcome::Failed(Errno::ENOENT),
                }
            }
            _ => return None,
        })
    }

    /// The expected outcome of `op` by an unparked task: one short arm per operation, so the
    /// function is as long as the operation list.
    fn expect(&mut self, op: &Op) -> Outcome {
        if self.whole_calls {
            if let Some(outcome) = self.expect_whole(op) {
                return outcome;
            }
        }
        let tasks = self.held.len();
        let fss = self.fss.len();
        let (t, f) = (|t: u8| usize::from(t) % tasks, |f: u8| usize::from(f) % fss);
        match *op {
            Op::Mount { fs } => self.mount(f(fs)),
            Op::Umount { fs } => self.umount(f(fs)),
            Op::XattrNew { fs, key, .. } => self.xattr_new(f(fs), u32::from(key)),
            Op::XattrFind { task, fs, key } => self.xattr_find(t(task), f(fs), u32::from(key)),
            Op::XattrFindNext { task, index } => {
                let task = t(task);
                let Some((fs, id)) = self.take(task, index) else { return Outcome::Nothing };
                let key = self.fss[fs].cache.as_ref().map_or(0, |cache| cache.entries[&id].key);
                let found = self.find(fs, Some(id), key);
                self.hold(task, fs, found)
            }
            Op::XattrReuse { task, index } => self.reuse(t(task), index),
            Op::XattrRelease { task, fs, block } => self.xattr_release(t(task), f(fs), block),
            Op::Get { task, fs, block } => self.get(t(task), f(fs), block),
            Op::XattrRead { fs, block, .. } => self.xattr_read(f(fs), block),
            Op::Put { task, index } => {
                let Some((fs, id)) = self.take(t(task), index) else { return Outcome::Nothing };
                if let Some(cache) = self.cache(fs) {
                    cache.put(id);
                }
                Outcome::Done
            }
            Op::Shrink { fs, nr, .. } => {
                let bits = self.bucket_bits;
                match self.cache(f(fs)) {
                    Some(cache) => Outcome::Freed(cache.shrink(u64::from(nr), bits)),
                    None => Outcome::Failed(Errno::ENODEV),
                }
            }
            Op::RunWork => self.run_work(),
        }
    }

    /// A find of `key` by `task` on `fs`: nothing when the task holds all it may, ENODEV on an
    /// unmounted filesystem, else the share the find makes.
    fn xattr_find(&mut self, task: usize, fs: usize, key: u32) -> Outcome {
        if self.held[task].len() >= self.held_max {
            return Outcome::Nothing;
        }
        if self.fss[fs].cache.is_none() {
            return Outcome::Failed(Errno::ENODEV);
        }
        let found = self.find(fs, None, key);
        self.hold(task, fs, found)
    }

    /// A release of `block` by `task` on `fs` (`ext4_xattr_release_block`): a release that must
    /// wait for the entry's users is parked with the entry it waits for.
    fn xattr_release(&mut self, task: usize, fs: usize, block: u8) -> Outcome {
        if self.fss[fs].cache.is_none() {
            return Outcome::Failed(Errno::ENODEV);
        }
        let Some(block) = self.allocated_block(fs, block) else { return Outcome::Nothing };
        let releasing = self.parked.iter().flatten().any(|&(f, b, _)| f == fs && b == block);
        if !self.held[task].is_empty() || releasing {
            return Outcome::Nothing;
        }
        if let Some(oe) = self.release(fs, block) {
            self.parked[task] = Some((fs, block, oe));
        }
        Outcome::Done
    }

    /// A read of `block` on `fs`: its entry is created, reusable while under the refcount limit.
    fn xattr_read(&mut self, fs: usize, block: u8) -> Outcome {
        if self.fss[fs].cache.is_none() {
            return Outcome::Failed(Errno::ENODEV);
        }
        let Some(block) = self.allocated_block(fs, block) else { return Outcome::Nothing };
        let (_, count, key) = self.fss[fs].blocks[block as usize];
        let reusable = count < self.refcount_max;
        self.create(fs, key, block, reusable, &[])
    }

    fn get(&mut self, task: usize, fs: usize, block: u8) -> Outcome {
        if self.held[task].len() >= self.held_max {
            return Outcome::Nothing;
        }
        if self.fss[fs].cache.is_none() {
            return Outcome::Failed(Errno::ENODEV);
        }
        let Some(block) = self.allocated_block(fs, block) else { return Outcome::Nothing };
        let key = self.fss[fs].blocks[block as usize].2;
        let bits = self.bucket_bits;
        let cache = self.cache(fs).expect("mounted");
        let found = cache.find_in_chain(key, block, bits);
        if let Some(id) = found {
            cache.entries.get_mut(&id).expect("hashed").refcnt += 1;
        }
        self.hold(task, fs, found)
    }

    fn op_task(&self, op: &Op) -> Option<usize> {
        let tasks = self.held.len();
        match *op {
            Op::XattrNew { task, .. }
            | Op::XattrFind { task, .. }
            | Op::XattrFindNext { task, .. }
            | Op::XattrReuse { task, .. }
            | Op::XattrRelease { task, .. }
            | Op::Get { task, .. }
            | Op::XattrRead { task, .. }
            | Op::Put { task, .. }
            | Op::Shrink { task, .. } => Some(usize::from(task) % tasks),
            Op::Mount { .. } | Op::Umount { .. } | Op::RunWork => None,
        }
    }
}

impl Reference for Mbcache2Model {
    type Config = Mbcache2Config;
    type Op = Op;
    type Outcome = Outcome;

    fn new(config: &Mbcache2Config) -> Mbcache2Model {
        let tasks = usize::from(config.tasks.max(1));
        let bucket_bits = config.cache_bucket_bits();
        let mut model = Mbcache2Model {
            fss: (0..config.filesystems.max(1))
                .map(|_| Fs {
                    cache: None,
                    detached: None,
                    blocks: vec![(false, 0, 0); usize::from(config.blocks.max(1))],
                    allocated_count: 0,
                })
                .collect(),
            bucket_bits,
            refcount_max: config.refcount_max.max(2),
            held_max: usize::from(config.held_max.max(1)),
            next_entry: 0,
            next_generation: 0,
            held: vec![Vec::new(); tasks],
            parked: vec![None; tasks],
            work: Vec::new(),
            whole_calls: config.whole_calls,
            owned: vec![Vec::new(); tasks],
            just_touched: None,
            last_shares: vec![None; tasks],
            called_since_scan: vec![false; tasks],
            idle_kworkers: None,
            work_credits: Vec::new(),
            merging: Vec::new(),
            maybe_merged: Vec::new(),
            late_merges: Vec::new(),
            taken: Vec::new(),
            detached_work: Vec::new(),
            merged_inserts: Vec::new(),
            early_runs: Vec::new(),
            detached_calls: Vec::new(),
            last_run_evicted: 0,
            stale_schedules: Vec::new(),
        };
        for fs in 0..model.fss.len() {
            model.mount(fs);
            for index in 0..config.prefill {
                let _ = model.xattr_new(fs, prefill_key(index, bucket_bits));
            }
        }
        // The mount's inserts ran alone: none is in flight at an unmount.
        model.merged_inserts.clear();
        model
    }

    fn check(&mut self, op: &Op, actual: &Outcome) -> Result<(), String> {
        if !matches!(op, Op::Shrink { .. } | Op::RunWork) {
            self.just_touched = None;
        }
        let mut late = Vec::new();
        if let Some(task) = self.op_task(op) {
            late = self.lapse_late_merges(task);
            self.last_shares[task] = None;
            for cache in self.fss.iter_mut().flat_map(|fs| fs.cache.iter_mut().chain(fs.detached.iter_mut()))
            {
                cache.claimed.retain(|&(claimer, ..)| claimer != task);
            }
        }
        if let Some(judged) = self.on_detached(op, actual) {
            return judged;
        }
        // After `on_detached`, which judges the call again on the detached cache.
        let called_since_scan =
            self.op_task(op).is_some_and(|task| std::mem::replace(&mut self.called_since_scan[task], true));
        if let (true, Op::XattrNew { task, fs, key }) = (self.whole_calls, op) {
            let (task, fs) = (usize::from(*task) % self.owned.len(), usize::from(*fs) % self.fss.len());
            return self.new_block(task, fs, u32::from(*key), actual, &late);
        }
        if let (true, Op::Shrink { .. } | Op::RunWork) = (self.whole_calls, op) {
            return self.scanned(op, actual);
        }
        if let Op::Umount { fs } = op {
            let fs = usize::from(*fs) % self.fss.len();
            let generation = self.fss[fs].cache.as_ref().map(|cache| cache.generation);
            if self.early_runs.iter().any(|&(f, g)| f == fs && Some(g) == generation) {
                // The insert a run is owed to started before the detach: ordered before this.
                return Err(
                    "unmounted before the insert a shrink work run is owed to (`early_runs`)".to_string()
                );
            }
        }
        if let (true, Op::XattrFind { task, fs, key }) = (self.whole_calls, op) {
            let (task, fs) = (usize::from(*task) % self.owned.len(), usize::from(*fs) % self.fss.len());
            // A task with no call since the scan may be an idle kworker's thread's.
            let idle_kworker = !called_since_scan && self.idle_kworkers.is_some_and(|idle| idle > 0);
            if self.share(fs, u32::from(*key), actual, called_since_scan || idle_kworker)? && idle_kworker {
                self.idle_kworkers = self.idle_kworkers.map(|idle| idle - 1);
            }
            if let Outcome::Shared { block, .. } = *actual {
                self.owned[task].push((fs, block));
                self.last_shares[task] = self.just_touched;
            }
            return Ok(());
        }
        let expect = if self.op_task(op).is_some_and(|task| self.parked[task].is_some()) {
            Outcome::Blocked
        } else {
            let expect = self.expect(op);
            self.wake_waiters();
            expect
        };
        if *actual == expect {
            return Ok(());
        }
        let waiting: Vec<usize> = (0..self.parked.len()).filter(|&t| self.parked[t].is_some()).collect();
        Err(format!("expected {expect:?} (tasks waiting for an unused entry: {waiting:?})"))
    }

    /// Every shrink work run allowed on credit (`early_runs`) was paid by the insert that
    /// scheduled it.
    fn finish(&self) -> Result<(), String> {
        match self.early_runs.as_slice() {
            [] => Ok(()),
            owed => Err(format!(
                "the shrink work ran with nothing queued, and no insert ordered after scheduled it (items {owed:?})"
            )),
        }
    }
}

/// Whole calls: whether an insert ordered after `item`'s rerun ended, by a task whose call may
/// have been in flight across its start (`late`), merged into it: counted against the item's
/// `LateMerge` in `late_merges` (see `Mbcache2Model::late_merges`).
fn merged_late(late_merges: &mut Vec<LateMerge>, item: (usize, u64), late: &[(usize, u64)]) -> bool {
    let Some(at) = late_merges.iter().position(|merge| merge.item == item && late.contains(&item)) else {
        return false;
    };
    late_merges[at].left -= 1;
    if late_merges[at].left == 0 {
        late_merges.remove(at);
    }
    true
}

/// A scan's disagreement, said of a detached cache.
fn on_detached(err: String) -> String {
    format!("on the detached cache, {err}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn step(key: u32, value: u64, evicted: bool) -> ScanStep {
        ScanStep { key, value, evicted }
    }

    /// Whole calls on a cache prefilled with blocks 0 (key 0), 1 (key 1), 2 (key 0).
    fn model() -> Mbcache2Model {
        let config = Mbcache2Config { whole_calls: true, prefill: 3, ..Mbcache2Config::fixed() };
        Mbcache2Model::new(&config)
    }

    #[test]
    fn a_scan_starts_at_the_lru_head_and_never_evicts_a_referenced_entry() {
        let shrink = |nr| Op::Shrink { task: 0, fs: 0, nr };
        let scanned = |steps: Vec<ScanStep>| Outcome::Scanned(steps);
        let mut model = model();
        assert!(model.clone().check(&shrink(1), &scanned(vec![step(1, 1, true)])).is_err(), "not the head");
        assert!(model.clone().check(&shrink(1), &scanned(vec![])).is_err(), "stopped early");
        let share = Op::XattrFind { task: 0, fs: 0, key: 0 };
        model.check(&share, &Outcome::Shared { block: 0, count: 2 }).expect("block 0 is shareable");
        // Right after the share, its touch and put may fall between the shrinker's test of the
        // bit and its claim of the count; after another call, not.
        assert!(model.clone().check(&shrink(1), &scanned(vec![step(0, 0, true)])).is_ok(), "raced");
        let other = Op::XattrFind { task: 1, fs: 0, key: 3 };
        model.check(&other, &Outcome::Failed(Errno::ENOENT)).expect("no block with key 3");
        assert!(model.clone().check(&shrink(1), &scanned(vec![step(0, 0, true)])).is_err(), "referenced");
        assert!(model.clone().check(&Op::RunWork, &Outcome::Deferred).is_ok(), "left to its kworker");
        // Kept (its second chance), then a later step may meet any listed entry: an overlapping
        // scan may have taken the ones before it.
        model.check(&shrink(2), &scanned(vec![step(0, 0, false), step(0, 2, true)])).expect("second chance");
        let find = Op::XattrFind { task: 1, fs: 0, key: 0 };
        assert!(model.clone().check(&find, &Outcome::Shared { block: 2, count: 2 }).is_err(), "evicted");
        model.check(&shrink(1), &scanned(vec![step(1, 1, true)])).expect("block 1's entry heads the LRU");
        assert!(model.check(&Op::RunWork, &scanned(vec![step(0, 0, true)])).is_err(), "no work is queued");
    }

    #[test]
    fn a_share_may_use_an_entry_the_last_scan_evicted_only_after_another_call_of_its_task() {
        let shrink = |nr| Op::Shrink { task: 2, fs: 0, nr };
        let find = |key| Op::XattrFind { task: 1, fs: 0, key };
        let missed = Outcome::Failed(Errno::ENOENT);
        let shared_0 = Outcome::Shared { block: 0, count: 2 };
        let mut model = model();
        model.check(&find(3), &missed).expect("no block with key 3");
        model.check(&shrink(1), &Outcome::Scanned(vec![step(0, 0, true)])).expect("block 0 heads the LRU");
        // Task 1's first call since the scan could have been ordered right before it instead.
        assert!(model.clone().check(&find(0), &shared_0).is_err(), "no call of task 1 since the scan");
        // Its earlier call since the scan ran between the scan's steps: this one may have too.
        model.check(&find(3), &missed).expect("no block with key 3");
        assert!(model.clone().check(&find(0), &missed).is_err(), "block 2 is shareable");
        model.clone().check(&find(0), &shared_0).expect("taken before the step claimed block 0's entry");
        // Not past the next scan with steps.
        model.check(&shrink(1), &Outcome::Scanned(vec![step(1, 1, true)])).expect("block 1 heads the LRU");
        model.check(&find(3), &missed).expect("no block with key 3");
        assert!(model.check(&find(0), &shared_0).is_err(), "evicted by an earlier scan");
    }

    /// Whole calls on a cache of 48 prefilled blocks, past `c_max_entries` (32): the shrink work
    /// is queued.
    fn full() -> Mbcache2Model {
        let config = Mbcache2Config { whole_calls: true, prefill: 48, ..Mbcache2Config::fixed() };
        Mbcache2Model::new(&config)
    }

    /// A shrink work run evicting prefilled blocks `from` and `from + 1` (two steps: 32 / 16).
    fn run(from: u16) -> Outcome {
        let evicted = |block: u16| step(prefill_key(block, 1), u64::from(block), true);
        Outcome::Scanned(vec![evicted(from), evicted(from + 1)])
    }

    #[test]
    fn an_idle_kworker_after_a_run_lets_one_task_share_an_entry_the_run_evicted() {
        // The run evicts block 0 (key 0) and block 1 (key 1); blocks 2 and 3 still have them.
        let find = |task, key| Op::XattrFind { task, fs: 0, key };
        let shared = |block| Outcome::Shared { block, count: 2 };
        let idle = Outcome::Scanned(vec![]);
        let mut model = full();
        model.check(&Op::RunWork, &run(0)).expect("the prefill queued the work");
        assert!(model.clone().check(&find(1, 0), &shared(0)).is_err(), "no call of task 1 since the run");
        model.check(&Op::RunWork, &idle).expect("the run took the item");
        // The idle kworker's thread: its find may have overlapped the run's second step.
        model.check(&find(1, 0), &shared(0)).expect("taken before the step claimed block 0's entry");
        assert!(model.clone().check(&find(2, 1), &shared(1)).is_err(), "one idle kworker, one thread");
        model.check(&find(1, 1), &shared(1)).expect("task 1 has a call since the run");
        // A shrinker's scan orders no idle kworker after it.
        let mut shrunk = full();
        shrunk.check(&Op::RunWork, &run(0)).expect("the prefill queued the work");
        let head = Op::Shrink { task: 0, fs: 0, nr: 1 };
        shrunk.check(&head, &Outcome::Scanned(vec![step(0, 2, true)])).expect("block 2 heads the LRU");
        shrunk.check(&Op::RunWork, &idle).expect("nothing queued");
        assert!(shrunk.check(&find(1, 0), &shared(2)).is_err(), "the idle kworker may precede the shrink");
    }

    #[test]
    fn a_run_with_nothing_queued_is_owed_to_the_next_insert_which_must_come_before_unmount_and_end() {
        let mut model = full();
        model.check(&Op::RunWork, &run(0)).expect("the prefill queued the work");
        assert!(model.finish().is_ok(), "nothing owed");
        model.check(&Op::RunWork, &run(2)).expect("an insert in flight scheduled it before hashing");
        assert_eq!(model.finish().map_err(|_| ()), Err(()), "no insert paid for the run");
        let umount = Op::Umount { fs: 0 };
        assert!(
            model.clone().check(&umount, &Outcome::Done).is_err(),
            "the insert started before the detach"
        );
        model.check(&Op::RunWork, &run(4)).expect("a second insert in flight (three tasks)");
        assert!(model.clone().check(&Op::RunWork, &run(6)).is_err(), "a third: only two other tasks");
        let insert = |task| Op::XattrNew { task, fs: 0, key: 3 };
        model.check(&insert(1), &Outcome::Block(48)).expect("pays one run");
        assert!(model.finish().is_err(), "one run still owed");
        model.check(&insert(2), &Outcome::Block(49)).expect("pays the other");
        assert!(model.finish().is_ok(), "both paid");
        model.check(&umount, &Outcome::Done).expect("nothing owed at the unmount");
    }

    #[test]
    fn a_lazy_unmount_lets_each_insert_that_merged_into_the_queued_work_queue_it_once_more() {
        let umount = Op::Umount { fs: 0 };
        let mut alone = full();
        alone.check(&umount, &Outcome::Done).expect("no call in flight");
        alone.check(&Op::RunWork, &run(0)).expect("the queued item runs on the detached cache");
        assert!(alone.check(&Op::RunWork, &run(2)).is_err(), "no insert could have queued it again");
        let mut merged = full();
        let insert = Op::XattrNew { task: 0, fs: 0, key: 3 };
        merged.check(&insert, &Outcome::Block(48)).expect("merges into the queued work");
        merged.check(&umount, &Outcome::Done).expect("the insert is ordered before the detach");
        merged.check(&Op::RunWork, &run(0)).expect("the queued item");
        merged.check(&Op::RunWork, &run(2)).expect("queued again by the insert in flight");
        assert!(merged.check(&Op::RunWork, &run(4)).is_err(), "one insert queues it once");
    }

    #[test]
    fn after_a_lazy_unmount_a_rerun_needs_an_insert_in_flight_and_each_other_task_one_scan() {
        let (umount, insert) = (Op::Umount { fs: 0 }, Op::XattrNew { task: 0, fs: 0, key: 3 });
        let reran = || {
            let Outcome::Scanned(first) = run(0) else { unreachable!() };
            let Outcome::Scanned(second) = run(2) else { unreachable!() };
            Outcome::Reran(vec![first, second])
        };
        let mut alone = full();
        alone.check(&umount, &Outcome::Done).expect("no call in flight");
        assert!(alone.clone().check(&Op::RunWork, &reran()).is_err(), "nothing queued it again");
        let shrink = Op::Shrink { task: 1, fs: 0, nr: 1 };
        let scanned =
            |block: u16| Outcome::Scanned(vec![step(prefill_key(block, 1), u64::from(block), true)]);
        alone.check(&shrink, &scanned(0)).expect("a scan in flight at the detach");
        alone.check(&shrink, &scanned(1)).expect("another task's");
        assert!(alone.check(&shrink, &scanned(2)).is_err(), "three tasks: two other than the unmount's");
        let mut merged = full();
        merged.check(&insert, &Outcome::Block(48)).expect("merges into the queued work");
        merged.check(&umount, &Outcome::Done).expect("the insert is ordered before the detach");
        merged.check(&Op::RunWork, &reran()).expect("queued again during the run, by the insert in flight");
    }

    #[test]
    fn a_detached_run_and_a_scan_in_flight_at_the_detach_are_judged_on_the_detached_cache() {
        let (umount, shrink) = (Op::Umount { fs: 0 }, Op::Shrink { task: 1, fs: 0, nr: 1 });
        let scanned =
            |block: u16| Outcome::Scanned(vec![step(prefill_key(block, 1), u64::from(block), true)]);
        let mut model = full();
        model.check(&umount, &Outcome::Done).expect("no call in flight");
        assert!(model.clone().check(&shrink, &scanned(1)).is_err(), "block 0's entry heads the detached LRU");
        model.check(&Op::RunWork, &run(0)).expect("the queued item runs on the detached cache");
        assert!(
            model.clone().check(&shrink, &scanned(0)).is_err(),
            "the detached run evicted block 0's entry"
        );
        model.check(&shrink, &scanned(2)).expect("the detached LRU's head after the run");
        let mut remounted = full();
        remounted.check(&umount, &Outcome::Done).expect("no call in flight");
        remounted.check(&Op::Mount { fs: 0 }, &Outcome::Done).expect("set-up prefix: the unmount is over");
        assert!(remounted.check(&Op::RunWork, &run(0)).is_err(), "the destroy cancelled the detached item");
    }

    #[test]
    fn a_detached_run_may_evict_the_entry_only_a_share_in_flight_across_the_detach_referenced() {
        let (umount, share) = (Op::Umount { fs: 0 }, Op::XattrFind { task: 2, fs: 0, key: 0 });
        // Block 6 is the newest prefilled block with key 0: the share's. A run evicting it and
        // block 0's entry meets it second (a run may start anywhere on the LRU).
        let evicts_shared = Outcome::Scanned(vec![step(0, 6, true), step(0, 0, true)]);
        let mut raced = full();
        raced.check(&share, &Outcome::Shared { block: 6, count: 2 }).expect("block 6 is shareable");
        raced.check(&umount, &Outcome::Done).expect("the share is ordered before the detach");
        let late = Op::XattrFind { task: 1, fs: 0, key: 3 };
        raced.check(&late, &Outcome::Failed(Errno::ENODEV)).expect("a find that started after the detach");
        raced.check(&Op::RunWork, &evicts_shared).expect("the touch between the step's test and claim");
        let mut settled = full();
        settled.check(&share, &Outcome::Shared { block: 6, count: 2 }).expect("block 6 is shareable");
        settled
            .check(&Op::XattrFind { task: 2, fs: 0, key: 3 }, &Outcome::Failed(Errno::ENOENT))
            .expect("the share's task moved on");
        settled.check(&umount, &Outcome::Done).expect("no call in flight");
        assert!(settled.check(&Op::RunWork, &evicts_shared).is_err(), "block 6's entry is referenced");
    }

    #[test]
    fn a_find_in_flight_at_a_lazy_unmount_is_judged_on_the_detached_cache_one_per_other_task() {
        let mut model = full();
        model.check(&Op::Umount { fs: 0 }, &Outcome::Done).expect("no call in flight");
        let find = |task| Op::XattrFind { task, fs: 0, key: 1 };
        let missed = Outcome::Failed(Errno::ENOENT);
        assert!(model.clone().check(&find(1), &missed).is_err(), "key 1's blocks are shareable there");
        model.check(&find(1), &Outcome::Shared { block: 7, count: 2 }).expect("in flight at the detach");
        model.check(&find(2), &Outcome::Shared { block: 7, count: 3 }).expect("another task's");
        let third = Outcome::Shared { block: 5, count: 2 };
        assert!(model.clone().check(&find(0), &third).is_err(), "three tasks: two other than the unmount's");
        model.check(&find(0), &Outcome::Failed(Errno::ENODEV)).expect("a call that started after the detach");
    }

    #[test]
    fn a_rerun_step_may_evict_the_entry_only_the_share_ordered_right_before_its_run_work_referenced() {
        // Block 6 is the newest prefilled block with key 0: the share's. The rerun evicts it.
        let evicted = |block: u16| step(prefill_key(block, 1), u64::from(block), true);
        let reran = || {
            let Outcome::Scanned(first) = run(0) else { unreachable!() };
            Outcome::Reran(vec![first, vec![evicted(6), evicted(7)]])
        };
        let share = Op::XattrFind { task: 2, fs: 0, key: 0 };
        let insert = Op::XattrNew { task: 1, fs: 0, key: 3 };
        let mut raced = full();
        raced.check(&share, &Outcome::Shared { block: 6, count: 2 }).expect("block 6 is shareable");
        raced.check(&Op::RunWork, &reran()).expect("the touch between the rerun step's test and claim");
        raced.check(&insert, &Outcome::Block(48)).expect("queued the rerun again");
        assert!(raced.finish().is_ok(), "the insert paid the rerun");
        let mut settled = full();
        settled.check(&share, &Outcome::Shared { block: 6, count: 2 }).expect("block 6 is shareable");
        settled
            .check(&Op::XattrFind { task: 2, fs: 0, key: 3 }, &Outcome::Failed(Errno::ENOENT))
            .expect("the share's task moved on");
        assert!(settled.check(&Op::RunWork, &reran()).is_err(), "block 6's entry is referenced");
    }

    #[test]
    fn an_insert_in_flight_when_a_rerun_started_may_have_merged_into_it_once_per_other_task() {
        let reran = || {
            let Outcome::Scanned(first) = run(0) else { unreachable!() };
            let Outcome::Scanned(second) = run(2) else { unreachable!() };
            Outcome::Reran(vec![first, second])
        };
        let (idle, insert) = (Outcome::Scanned(Vec::new()), |task| Op::XattrNew { task, fs: 0, key: 3 });
        let mut model = full();
        model.check(&Op::RunWork, &reran()).expect("the prefill's item, rerun on credit");
        model.check(&insert(0), &Outcome::Block(48)).expect("queued it again during the first run");
        model.check(&insert(1), &Outcome::Block(49)).expect("merged: the item waits for its rerun");
        model.check(&Op::RunWork, &idle).expect("the rerun ran the merged item: nothing queued");
        // Task 2's insert was in flight when the rerun started: its `schedule_work()` may have
        // merged into it, though its hash comes after the idle kworker.
        let mut moved_on = model.clone();
        model.check(&insert(2), &Outcome::Block(50)).expect("a new block");
        model.check(&Op::RunWork, &idle).expect("task 2's schedule_work() merged into the rerun");
        // Task 0 too (its last call was ordered before the rerun ended); then the budget, one per
        // task but the kworker's, is spent.
        model.check(&insert(0), &Outcome::Block(51)).expect("a new block");
        model.check(&Op::RunWork, &idle).expect("task 0's schedule_work() merged into the rerun");
        model.check(&insert(1), &Outcome::Block(52)).expect("a new block");
        assert!(model.check(&Op::RunWork, &idle).is_err(), "three tasks: two besides the kworker's");
        // A task with a call ordered after the idle kworker began its next call after the rerun
        // started: its insert queued the work.
        let find = Op::XattrFind { task: 2, fs: 0, key: 2 };
        moved_on.check(&find, &Outcome::Failed(Errno::ENOENT)).expect("no key 2");
        moved_on.check(&insert(2), &Outcome::Block(50)).expect("a new block");
        assert!(moved_on.check(&Op::RunWork, &idle).is_err(), "the insert's work is queued");
    }

    #[test]
    fn a_scan_may_keep_the_entry_a_release_claimed_until_the_releasing_task_moves_on() {
        let mut model = full();
        model.check(&Op::XattrNew { task: 0, fs: 0, key: 3 }, &Outcome::Block(48)).expect("a new block");
        model
            .check(&Op::XattrRelease { task: 0, fs: 0, block: 0 }, &Outcome::Done)
            .expect("its last reference");
        let shrink = Op::Shrink { task: 1, fs: 0, nr: 1 };
        let met = |evicted| Outcome::Scanned(vec![step(3, 48, evicted)]);
        assert!(model.clone().check(&shrink, &met(false)).is_ok(), "kept: the release claimed it");
        assert!(model.clone().check(&shrink, &met(true)).is_err(), "the shrinker cannot claim it too");
        model
            .check(&Op::XattrFind { task: 0, fs: 0, key: 2 }, &Outcome::Failed(Errno::ENOENT))
            .expect("no key 2");
        assert!(model.check(&shrink, &met(false)).is_err(), "the release ended before the task's next call");
    }
}
