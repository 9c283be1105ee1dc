//! The reference in threaded cases (`MbcacheConfig::threaded`): the same state machine, stepped
//! by `sim_core::threaded`'s linearizability search one whole call at a time, with the rules the
//! threaded subject (`check/threaded.rs`) runs by:
//!
//! - an op acts as the thread that ran it ([`Outcome::task`]) and picks among that thread's own
//!   handles; a lookup first releases every handle its thread holds; an insert takes only an
//!   entry its thread allocated and has not inserted; misuse is not refused (no task of a
//!   threaded case walks an entry it unhashes but by its own choice, and the model's oops is
//!   the report);
//! - a lookup of a busy entry sleeps (`exclusive-get`): in a linearization it cannot come while
//!   another handle makes the entry busy, so the search must place it after the release. A thread
//!   also releases what it holds when its list ends, which is no operation, and a lookup releases
//!   them as a call of its own before it walks: a lookup (or shrink) that could only have
//!   proceeded after such a release shows it happened, so the reference releases the holder's
//!   handles there and refuses any later op of that thread but a lookup (whose first call that
//!   release was);
//! - the set-up prefix's handles are released before the threads start, so the reference
//!   releases them at the first thread op.
//!
//! What the kernel does not make atomic, and so is not judged: the shrinker's count (entries it
//! or a concurrent release unhashed are uncounted only in `__mb_cache_entry_forget`, after
//! `mb_cache_spinlock` is dropped, so two overlapping shrinks both count each other's victims;
//! `c_entry_count` is judged at teardown instead, which reports what is left as orphans), and
//! which entries a shrink could have taken (an entry whose free callback refused it goes back on
//! the LRU after the lock is dropped, so a concurrent scan misses it): a shrink's outcome lists
//! the entries it took, and each must have been unused and taken in LRU order, where the
//! entries an inferred release put on the LRU may stand anywhere among the LRU additions since
//! their thread's last op (that release, no op, ran at some moment between). A find returning
//! EAGAIN (the entry it waited for was unhashed meanwhile) is accepted wherever it linearizes.

use super::{Expect, HeldModel, MbcacheModel};
use crate::check::op::{pick_among, Op, OpResult, Outcome, SETUP_TASK};
use crate::fixes::{EXCLUSIVE_GET, TAKEOUT_DUP_REMOVED};
use crate::hash::hash_long;
use crate::registry::MB_CACHE_WRITER;
use sim_core::{Errno, ViolationKind};

impl MbcacheModel {
    /// What `op`, run by thread `actual.task`, must return (see the module comment); notes when
    /// the thread's last op ended, on the LRU clock (see [`MbcacheModel::infer_release`]).
    pub(super) fn expect_threaded(&mut self, op: &Op, actual: &Outcome) -> Expect {
        let task = actual.task.ok_or("a threaded outcome names its task")?;
        let expect = self.expect_threaded_op(task, op, actual)?;
        self.op_floor.insert(task, self.lru_clock);
        Ok(expect)
    }

    fn expect_threaded_op(&mut self, task: u32, op: &Op, actual: &Outcome) -> Expect {
        self.admit(task, op)?;
        let own = |h: &HeldModel| h.task == task;
        Ok(match *op {
            Op::Create { indexes, bucket_bits, undersized, free_op } => {
                self.create(indexes, bucket_bits, undersized, free_op)
            }
            Op::Destroy { cache } => self.destroy(cache),
            Op::Alloc { cache, .. } => return self.alloc(task, cache, &actual.result),
            Op::Insert { handle, device, block, keys } => {
                let fresh = self.held(|h| own(h) && h.writer && self.entries[&h.serial].fresh);
                let Some(at) = pick_among(handle, &fresh) else { return Ok(OpResult::Skipped) };
                let serial = self.handles[at].serial;
                self.entries.get_mut(&serial).expect("entry").fresh = false;
                self.insert_entry(serial, device, block, keys)
            }
            Op::Release { handle } => match pick_among(handle, &self.held(own)) {
                Some(at) => {
                    let held = self.handles.remove(at);
                    self.release(held.serial);
                    OpResult::Done
                }
                None => OpResult::Skipped,
            },
            Op::Get { cache, device, block, .. } => return self.get_threaded(task, cache, device, block),
            Op::FindFirst { cache, index, device, key, .. } => {
                return self.find_first_threaded(task, cache, index, device, key, &actual.result)
            }
            Op::FindNext { handle } => return self.find_next_threaded(task, handle, &actual.result),
            Op::Dup { handle } => self.dup_threaded(task, handle),
            Op::Takeout { handle } => self.takeout_threaded(task, handle),
            Op::Free { handle } => {
                let exclusive = self.exclusive();
                match pick_among(handle, &self.held(|h| own(h) && (h.writer || !exclusive))) {
                    Some(at) => {
                        let held = self.handles.remove(at);
                        self.unhash(held.serial);
                        self.release(held.serial);
                        OpResult::Done
                    }
                    None => OpResult::Skipped,
                }
            }
            Op::Shrink { cache, device } => {
                if self.cache_pos(cache).is_none() {
                    return Ok(OpResult::Skipped);
                }
                let device = self.device(device);
                self.take_shrunk(task, &actual.shrunk, false, |e| e.device == Some(device))?;
                OpResult::Done
            }
            Op::ShrinkFn { nr_to_scan, nofs } => {
                return self.shrink_fn_threaded(task, nr_to_scan, nofs, actual)
            }
            Op::XattrSet { .. } | Op::XattrDelete { .. } => return self.expect(op, &actual.result),
        })
    }

    /// `mb_cache_entry_dup` of one of `task`'s handles (ENOSYS once the call was removed).
    fn dup_threaded(&mut self, task: u32, handle: u8) -> OpResult {
        match pick_among(handle, &self.held(|h| h.task == task)) {
            None => OpResult::Skipped,
            Some(_) if self.config.fixes.on(TAKEOUT_DUP_REMOVED) => OpResult::Errno(Errno::ENOSYS),
            Some(at) => {
                let held = self.handles[at].clone();
                self.entries.get_mut(&held.serial).expect("entry").used += 1;
                self.handles.push(held.clone());
                OpResult::Entry(Some(held.serial))
            }
        }
    }

    /// `mb_cache_entry_takeout` of one of `task`'s handles (ENOSYS once the call was removed).
    fn takeout_threaded(&mut self, task: u32, handle: u8) -> OpResult {
        match pick_among(handle, &self.held(|h| h.task == task)) {
            None => OpResult::Skipped,
            Some(_) if self.config.fixes.on(TAKEOUT_DUP_REMOVED) => OpResult::Errno(Errno::ENOSYS),
            Some(at) => {
                self.unhash(self.handles[at].serial);
                OpResult::Done
            }
        }
    }

    /// Whether thread `task` may run `op` now: not after its inferred end, and after an inferred
    /// release only a lookup (whose first call that release was). The set-up task's handles are
    /// released at the first thread op.
    fn admit(&mut self, task: u32, op: &Op) -> Result<(), String> {
        if self.finished.contains(&task) {
            return Err(format!("thread {task} runs an op after its end was inferred"));
        }
        if let Some(at) = self.released.iter().position(|t| *t == task) {
            if !matches!(op, Op::Get { .. } | Op::FindFirst { .. }) {
                return Err(format!(
                    "thread {task} runs {op:?} after its end was inferred (only a lookup, which \
                     releases first, may follow an inferred release)"
                ));
            }
            self.released.remove(at);
        }
        if task != SETUP_TASK {
            self.finish(SETUP_TASK);
        }
        Ok(())
    }

    /// Task `task`'s end (the set-up task's, at the first thread op): it releases every handle
    /// it holds, in the order it got them, and runs no further op.
    fn finish(&mut self, task: u32) {
        if self.finished.contains(&task) {
            return;
        }
        self.release_mine(task);
        self.finished.push(task);
    }

    /// Another task's lookup or shrink could only have proceeded after `holder` released its
    /// handles, which no op of `holder` did: its thread ended, or its next op is a lookup that
    /// released them first (`expect_threaded` allows nothing else after this).
    ///
    /// That release (`__mb_cache_entry_release_unlock`'s `list_add_tail` per handle) ran at some
    /// moment after `holder`'s last op ended, not necessarily just before the op that showed it:
    /// another thread's release may have put its entry on the LRU after it, and
    /// `mb_cache_shrink_fn` then takes the two from the head in that order (seed 7032685 of
    /// `ksim fuzz mbcache --threads 3`, issue #11). The entries it put on the LRU are `loose`
    /// between those two clocks; [`MbcacheModel::lru_order_fits`] judges them so.
    fn infer_release(&mut self, holder: u32) {
        if self.finished.contains(&holder) || self.released.contains(&holder) {
            return;
        }
        let window = (self.op_floor.get(&holder).copied().unwrap_or(0), self.lru_clock);
        let before = self.lru_clock;
        self.release_mine(holder);
        self.released.push(holder);
        let added: Vec<u64> =
            self.lru_added.iter().filter(|(_, clock)| **clock > before).map(|(serial, _)| *serial).collect();
        for serial in added {
            self.loose.insert(serial, window);
        }
    }

    /// Whether `taken` could be unused LRU entries in LRU order: each on the LRU, and no later
    /// one certainly ahead of an earlier one (pairwise suffices: "certainly ahead" is an
    /// interval order, entries placed by the clock of their release).
    fn lru_order_fits(&self, taken: &[u64]) -> bool {
        let position = |serial: &u64| self.lru.iter().position(|s| s == serial);
        let Some(at) = taken.iter().map(position).collect::<Option<Vec<usize>>>() else { return false };
        let added = |serial: &u64| self.lru_added.get(serial).copied().unwrap_or(0);
        // Whether entry `ahead` (list position `pa`) is certainly ahead of `behind` (`pb`).
        let ahead_of = |ahead: &u64, pa: usize, behind: &u64, pb: usize| match (
            self.loose.get(ahead),
            self.loose.get(behind),
        ) {
            (Some(wa), Some(wb)) if wa == wb => pa < pb,
            (Some(&(_, until)), Some(&(since, _))) => until < since,
            (Some(&(_, until)), None) => until < added(behind),
            (None, Some(&(since, _))) => added(ahead) <= since,
            (None, None) => pa < pb,
        };
        (0..taken.len()).all(|i| (i + 1..taken.len()).all(|j| !ahead_of(&taken[j], at[j], &taken[i], at[i])))
    }

    /// Releases every handle `task` holds, in the order it got them (a lookup does this first).
    fn release_mine(&mut self, task: u32) {
        let (mine, kept) = std::mem::take(&mut self.handles).into_iter().partition(|h| h.task == task);
        self.handles = kept;
        for held in mine {
            self.release(held.serial);
        }
    }

    /// Takes a use of `serial` for `task`, sleeping while it is busy: the holders (other tasks)
    /// must have released it, which without a release op means they finished.
    fn take_use_sleeping(&mut self, task: u32, serial: u64, writer: bool) -> Result<(), String> {
        let busy = |used: u32| if writer { used > 0 } else { used >= MB_CACHE_WRITER };
        if self.config.fixes.on(EXCLUSIVE_GET) && busy(self.entries[&serial].used) {
            let mut holders: Vec<u32> = self
                .handles
                .iter()
                .filter(|h| h.serial == serial && h.task != task)
                .map(|h| h.task)
                .collect();
            holders.dedup();
            for holder in holders {
                self.infer_release(holder);
            }
        }
        self.take_use(serial, writer)
            .ok_or_else(|| format!("entry {serial} is busy: the lookup still sleeps"))
    }

    /// `mb_cache_entry_get` by `task`, after it released its handles.
    fn get_threaded(&mut self, task: u32, cache: u8, device: u8, block: u16) -> Expect {
        let Some(at) = self.cache_pos(cache) else { return Ok(OpResult::Skipped) };
        let id = self.caches[at].id;
        self.release_mine(task);
        let Some(serial) = self.block_entry(id, self.device(device), self.block(block)) else {
            return Ok(OpResult::Entry(None));
        };
        self.take_use_sleeping(task, serial, true)?;
        self.handles.push(HeldModel { task, serial, writer: true, walk: None });
        Ok(OpResult::Entry(Some(serial)))
    }

    /// The find's match among `candidates` taken as a reader, held as `walk`; EAGAIN (the match
    /// was unhashed while the find slept) wherever the subject returned it, with `exclusive-get`.
    fn found_threaded(
        &mut self,
        task: u32,
        candidates: &[u64],
        walk: (u32, u32, u32),
        actual: &OpResult,
    ) -> Expect {
        if *actual == OpResult::Errno(Errno::EAGAIN) && self.exclusive() {
            return Ok(actual.clone());
        }
        let (index, device, key) = walk;
        let found = self.first_match(candidates, index, device, key);
        if let Some(serial) = found {
            self.take_use_sleeping(task, serial, false)?;
        }
        Ok(self.hold_found(task, found, walk))
    }

    /// `mb_cache_entry_find_first` by `task`, after it released its handles.
    fn find_first_threaded(
        &mut self,
        task: u32,
        cache: u8,
        index: u8,
        device: u8,
        key: u8,
        actual: &OpResult,
    ) -> Expect {
        let Some(at) = self.cache_pos(cache) else { return Ok(OpResult::Skipped) };
        let (id, indexes, bits) = (self.caches[at].id, self.caches[at].indexes, self.caches[at].bucket_bits);
        if indexes == 0 {
            return Ok(OpResult::Skipped);
        }
        self.release_mine(task);
        let walk = (u32::from(index) % indexes, self.device(device), u32::from(key) % self.config.keys);
        let chain = self.chain(id, walk.0, hash_long(u64::from(walk.2), bits));
        self.found_threaded(task, &chain, walk, actual)
    }

    /// `mb_cache_entry_find_next` by `task` on one of its walking handles (its other handles
    /// released first); the previous entry is released after the walk, whatever it found.
    fn find_next_threaded(&mut self, task: u32, handle: u8, actual: &OpResult) -> Expect {
        let walking = self.held(|h| h.task == task && h.walk.is_some());
        let Some(at) = pick_among(handle, &walking) else { return Ok(OpResult::Skipped) };
        let held = self.handles.remove(at);
        self.release_mine(task);
        let walk @ (index, _, key) = held.walk.expect("a walking handle");
        let prev = self.entries[&held.serial].clone();
        if !prev.hashed {
            return Ok(OpResult::Oops(ViolationKind::ListPoison));
        }
        let bits = self.cache_by_id(prev.cache).bucket_bits;
        let prev_bucket = hash_long(u64::from(prev.keys[index as usize]), bits);
        let chain = self.chain(prev.cache, index, prev_bucket);
        let after_prev: Vec<u64> = chain.iter().copied().skip_while(|s| *s != held.serial).skip(1).collect();
        let found = self.found_threaded(task, &after_prev, walk, actual)?;
        if found == OpResult::Entry(None) && prev_bucket != hash_long(u64::from(key), bits) {
            return Ok(OpResult::Oops(ViolationKind::finding("wild-pointer")));
        }
        self.release(held.serial);
        Ok(found)
    }

    /// `mb_cache_shrink_fn` by `task`: the entries it took (judged), its count (not judged; see
    /// the module comment).
    fn shrink_fn_threaded(&mut self, task: u32, nr_to_scan: u8, nofs: bool, actual: &Outcome) -> Expect {
        let nr_to_scan = usize::from(nr_to_scan % 5);
        if actual.shrunk.len() > nr_to_scan {
            return Err(format!("the shrinker took {} entries, asked for {nr_to_scan}", actual.shrunk.len()));
        }
        self.take_shrunk(task, &actual.shrunk, nofs, |_| true)?;
        match actual.result {
            OpResult::Count(_) => Ok(actual.result.clone()),
            ref other => Err(format!("the shrinker returns a count, got {other:?}")),
        }
    }

    /// Checks that a shrink by `task` could take `taken` (each on the LRU, after its holders
    /// finished if another task held it, `eligible`, in LRU order), then unhashes and forgets
    /// them (`nofs`: a free callback refuses, putting the entry back at the LRU head).
    fn take_shrunk(
        &mut self,
        task: u32,
        taken: &[u64],
        nofs: bool,
        eligible: impl Fn(&super::EntryModel) -> bool,
    ) -> Result<(), String> {
        for serial in taken {
            let Some(entry) = self.entries.get(serial) else {
                return Err(format!("a shrink took entry {serial}, which no longer exists"));
            };
            if !eligible(entry) {
                return Err(format!("a shrink took entry {serial}, which it does not shrink"));
            }
            if !self.lru.contains(serial) {
                let holders: Vec<u32> = self
                    .handles
                    .iter()
                    .filter(|h| h.serial == *serial && h.task != task)
                    .map(|h| h.task)
                    .collect();
                for holder in holders {
                    self.infer_release(holder);
                }
            }
        }
        if !self.lru_order_fits(taken) {
            return Err(format!("a shrink took {taken:?}, not unused entries in LRU order {:?}", self.lru));
        }
        self.lru.retain(|s| !taken.contains(s));
        for serial in taken {
            self.unhash(*serial);
            self.forget(*serial, nofs);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::MbcacheConfig;
    use crate::fixes::{Fixes, PRESET_FIXED};
    use sim_core::check::Reference;

    fn outcome(task: u32, result: OpResult) -> Outcome {
        Outcome {
            result,
            lru: Default::default(),
            counts: Default::default(),
            task: Some(task),
            shrunk: Vec::new(),
        }
    }

    /// Thread 0 makes and hashes entry 1 and keeps its exclusive handle.
    fn world() -> MbcacheModel {
        let config = MbcacheConfig { threaded: true, ..MbcacheConfig::new(PRESET_FIXED, Fixes::all()) };
        let mut model = MbcacheModel::new(&config);
        let create = Op::Create { indexes: 1, bucket_bits: 0, undersized: false, free_op: false };
        model.check(&create, &outcome(SETUP_TASK, OpResult::Created)).expect("create");
        model.check(&Op::Alloc { task: 0, cache: 0 }, &outcome(0, OpResult::Entry(Some(1)))).expect("alloc");
        let insert = Op::Insert { handle: 0, device: 0, block: 3, keys: [0, 0] };
        model.check(&insert, &outcome(0, OpResult::Done)).expect("insert");
        model
    }

    #[test]
    fn a_get_past_a_held_entry_shows_the_holder_finished_and_a_wrong_result_is_refused() {
        let get = Op::Get { task: 1, cache: 0, device: 0, block: 3 };
        // Thread 1 got the entry thread 0 holds exclusively: thread 0 must have ended.
        let mut model = world();
        model.check(&get, &outcome(1, OpResult::Entry(Some(1)))).expect("get after thread 0's end");
        let more = model.check(&Op::Release { handle: 0 }, &outcome(0, OpResult::Done));
        assert!(more.is_err_and(|why| why.contains("after its end")));
        // The entry is hashed: a get cannot return NULL, whatever the order.
        let wrong = world().check(&get, &outcome(1, OpResult::Entry(None)));
        assert!(wrong.is_err_and(|why| why.contains("expected Entry(Some(1))")));
    }

    #[test]
    fn a_shrink_between_a_lookups_release_and_its_walk_is_explained_by_that_lookup() {
        // Thread 0 holds entry 1; thread 1's shrink took it, so thread 0 released it without a
        // release op: its next op may only be a lookup, which releases first (found at seed
        // 11868 of `ksim fuzz mbcache --threads 3`).
        let mut model = world();
        let shrink = Op::ShrinkFn { nr_to_scan: 1, nofs: false };
        let mut took = outcome(1, OpResult::Count(1));
        took.shrunk = vec![1];
        model.check(&shrink, &took).expect("thread 0 released entry 1 before the shrink");
        let get = Op::Get { task: 0, cache: 0, device: 0, block: 3 };
        model
            .clone()
            .check(&get, &outcome(0, OpResult::Entry(None)))
            .expect("its get released, then found nothing");
        let more = model.check(&Op::Release { handle: 0 }, &outcome(0, OpResult::Done));
        assert!(more.is_err_and(|why| why.contains("after its end")), "a release op cannot follow");
    }

    /// `world()`, then thread 1 makes entry 2 and its get (of nothing) releases it: LRU [2].
    fn world_with_a_later_release() -> MbcacheModel {
        let mut model = world();
        model.check(&Op::Alloc { task: 1, cache: 0 }, &outcome(1, OpResult::Entry(Some(2)))).expect("alloc");
        let insert = Op::Insert { handle: 0, device: 0, block: 4, keys: [1, 1] };
        model.check(&insert, &outcome(1, OpResult::Done)).expect("insert");
        let get = Op::Get { task: 1, cache: 0, device: 0, block: 5 };
        model.check(&get, &outcome(1, OpResult::Entry(None))).expect("get releases entry 2");
        model
    }

    #[test]
    fn an_inferred_release_may_have_run_before_a_later_ops_release() {
        // Thread 0's end released entry 1 at some moment after its insert: possibly before
        // thread 1's get released entry 2, so a shrink may take [1, 2] (issue #11, seed 7032685).
        let mut took = outcome(2, OpResult::Count(0));
        let shrink = Op::ShrinkFn { nr_to_scan: 3, nofs: false };
        for order in [vec![1, 2], vec![2, 1]] {
            took.shrunk = order;
            world_with_a_later_release().check(&shrink, &took).expect("either order");
        }
        // Once thread 0 ran an op after entry 2 went on the LRU, its release came later still.
        let mut model = world_with_a_later_release();
        let dup = Op::Dup { handle: 0 };
        model.check(&dup, &outcome(0, OpResult::Errno(Errno::ENOSYS))).expect("dup is gone");
        took.shrunk = vec![1, 2];
        let refused = model.clone().check(&shrink, &took);
        assert!(refused.is_err_and(|why| why.contains("LRU order")), "entry 2 was ahead of entry 1");
        took.shrunk = vec![2, 1];
        model.check(&shrink, &took).expect("entry 2, then entry 1");
    }

    #[test]
    fn a_shrink_may_take_only_unused_entries_in_lru_order() {
        let mut model = world();
        model.check(&Op::Release { handle: 0 }, &outcome(0, OpResult::Done)).expect("release");
        let shrink = Op::ShrinkFn { nr_to_scan: 1, nofs: false };
        let mut took = outcome(1, OpResult::Count(1));
        took.shrunk = vec![2];
        assert!(model.clone().check(&shrink, &took).is_err(), "entry 2 does not exist");
        took.shrunk = vec![1];
        model.check(&shrink, &took).expect("entry 1 was unused at the LRU head");
        let get = Op::Get { task: 1, cache: 0, device: 0, block: 3 };
        model.check(&get, &outcome(1, OpResult::Entry(None))).expect("the shrinker unhashed it");
    }
}
