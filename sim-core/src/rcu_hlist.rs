//! include/linux/rculist.h's hlist half: `hlist_add_head_rcu`, `hlist_del_rcu` (the deleted node
//! keeps its `next`, so a reader standing on it still reaches the rest of the chain; its `pprev`
//! is poisoned), `hlist_for_each_entry_rcu` and `hlist_empty`, over heads and nodes kept in a
//! generation-checked memory ([`RcuHlist`]), freed at once ([`RcuHlist::kfree`]) or after a
//! grace period ([`RcuHlist::kfree_rcu`], on sim-core's RCU). Left out: `hlist_add_before_rcu`,
//! `hlist_add_behind_rcu`, `hlist_replace_rcu`, the `_notrace` and `_bh` walks, and the
//! non-RCU hlist (list.rs holds the doubly linked list, list_bl.rs the bit-locked hlist).
//!
//! The kernel relies on a convention here, and the model keeps it one: writers serialise among
//! themselves with a lock the list does not name (pid_hash's `pidmap_lock`, a `struct pid`'s
//! task chains' `tasklist_lock`), readers take no lock and walk a chain that may change under
//! them. What the checkers see: every link word is a facade atomic (`rcu_assign_pointer` a
//! release store, `rcu_dereference` an acquire load), so loom and shuttle can run a writer
//! between two steps of a walk; a walk outside `rcu_read_lock()` without the walk's named lock
//! held is reported as PROVE_RCU reports it (`rcu:dereference-outside-read-side`); a step onto a
//! freed head or node is KASAN's `rcu:use-after-free`, naming who freed it and whether a grace
//! period was waited for; a second `hlist_del_rcu` of a node (its `pprev` poisoned) or one of a
//! node never added is the oops the kernel takes, `list-poison`. Writers' link updates and the
//! frees are traced (as `rcu_assign_pointer` and `kfree`/`kfree_rcu` events under the list's
//! name).

use std::fmt;
use std::ops::ControlFlow;
use std::panic::Location;
use std::sync::atomic::AtomicU64 as StdAtomicU64;
use std::sync::Arc as StdArc;

use smallvec::SmallVec;

use crate::cx::Cx;
use crate::list::Oops;
use crate::sim::Violation;
use crate::sync::atomic::{AtomicU64, Ordering};
use crate::trace::Named;

/// `LIST_POISON2`, what `hlist_del_rcu()` leaves in a node's `pprev`, as a pprev word.
const PPREV_POISON: u64 = u64::MAX;

/// A head or node: its slot and the generation it was allocated in. As a word,
/// `(slot + 1) << 32 | generation`, so 0 is NULL.
#[derive(Clone, Copy, PartialEq, Eq)]
struct Obj {
    slot: u32,
    generation: u32,
}

impl Obj {
    fn word(self) -> u64 {
        (u64::from(self.slot) + 1) << 32 | u64::from(self.generation)
    }

    fn from_word(word: u64) -> Option<Obj> {
        let slot = (word >> 32).checked_sub(1)?;
        Some(Obj { slot: slot as u32, generation: word as u32 })
    }
}

impl fmt::Debug for Obj {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "obj#{}.{}", self.slot, self.generation)
    }
}

/// A `struct hlist_head` in an [`RcuHlist`]'s memory (the memory of the object it sits in: a
/// hash table's bucket, a `struct pid`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HlistHead(Obj);

/// A `struct hlist_node` in an [`RcuHlist`]'s memory, with the entry it is embedded in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HlistNode(Obj);

/// One head or node. `link` is the head's `first` or the node's `next`; `pprev` (nodes only) is
/// the word of the object whose link points at this node (0: unhashed, [`PPREV_POISON`]:
/// deleted). `pprev` is written and read by writers alone, under their lock, so it is a plain
/// `std` atomic: instrumentation, no scheduling point.
struct Cell<T> {
    entry: Option<T>,
    link: AtomicU64,
    pprev: StdAtomicU64,
    /// Set when the object is freed (under the slots' lock), so a walker that stood on it
    /// while it was freed finds out at its next read of it without a second look-up.
    dead: std::sync::atomic::AtomicBool,
}

/// Who freed an object, for the use-after-free report.
#[derive(Clone)]
struct Freed {
    generation: u32,
    task: StdArc<str>,
    site: &'static Location<'static>,
    deferred: bool,
}

struct Slot<T> {
    generation: u32,
    cell: Option<StdArc<Cell<T>>>,
    freed: Option<Freed>,
}

/// The slots and the free list. Instrumentation behind a `sync::BookLock`, as the slab is; a
/// lookup clones the cell out and lets the lock go before any facade access.
struct Slots<T> {
    table: Vec<Slot<T>>,
    /// Freed slots' numbers, with room in place for [`FREED_KEPT`]: a world's hlists are made
    /// afresh each case, and growing this list and `spare` from empty was four or five
    /// allocations a case (taskstats: 1,324 growths in 300 cases).
    free: SmallVec<[u32; FREED_KEPT]>,
    /// Cells of freed objects no walker stood on when they were freed, their entries dropped
    /// then (as the last reference's drop did), kept for the next allocations: a cell is not
    /// tied to a slot, so any allocation takes one, and an object costs no allocation of its
    /// own once as many were freed (callgrind: about 150 instructions an allocation and its
    /// free). A cell a walker still holds is left to the walker, as before. A new memory starts
    /// with the cells the last one of its entry type left on this thread ([`kept_cells`]).
    spare: Vec<StdArc<Cell<T>>>,
}

/// Freed slots [`Slots`] keeps in place before its list spills to the heap.
const FREED_KEPT: usize = 8;

struct Memory<T: 'static> {
    name: &'static str,
    name_hash: u64,
    /// The lock class the writers serialise with, by convention.
    writer_lock: &'static str,
    /// Read (relaxed) at each step onto an object and written at each free: the objects'
    /// memory as loom sees it (the slot table is invisible to it), so a free between a reader's
    /// load of a link and its step onto the object is an interleaving loom tries.
    access_point: AtomicU64,
    slots: crate::sync::BookLock<Slots<T>>,
    /// Made outside a loom model and a shuttle execution: only such a memory starts with kept
    /// cells and leaves its own when dropped (a threaded run's cells hold that run's facade
    /// atomics, which must not meet a parking_lot world's).
    keeps_cells: bool,
}

/// The heads and nodes of one kind of RCU hlist (`name` appears in every report and trace
/// event), with the entries the nodes are embedded in (`T`). Cloning shares the memory.
pub struct RcuHlist<T: 'static> {
    memory: StdArc<Memory<T>>,
}

impl<T> Drop for Memory<T> {
    /// The memory's cells no walker holds, their entries dropped in slot order (as dropping the
    /// table did), kept with its spare cells for the next memory of this entry type.
    fn drop(&mut self) {
        if !self.keeps_cells {
            return;
        }
        let slots = &mut *self.slots.lock();
        let mut cells = std::mem::take(&mut slots.spare);
        for cell in slots.table.drain(..).filter_map(|slot| slot.cell) {
            if let Some(cell) = RcuHlist::retire(cell).filter(|_| cells.len() < kept_cells::KEPT_MAX) {
                cells.push(cell);
            }
        }
        kept_cells::put(cells);
    }
}

/// Cells a dropped [`RcuHlist`] memory leaves, kept per thread by entry type for the next memory
/// of that type: a campaign builds a world, so its hlists, per case, and a world's buckets and
/// first objects were an allocation each, and a free each at the world's drop (taskstats: 25
/// a case, callgrind). A kept cell is made anew in place before use ([`RcuHlist::new_cell`]),
/// as a memory's own spare cell is, so a memory cannot tell a kept cell from a new one; nothing
/// reads a cell's address. Checker bookkeeping, `std` only; a memory made inside a loom model or
/// a shuttle execution, whose facade atomics (a cell's link) belong to it, neither takes nor
/// leaves cells ([`Memory::keeps_cells`]).
mod kept_cells {
    use std::any::{Any, TypeId};
    use std::cell::RefCell;

    /// Cells kept per entry type, at most.
    pub(super) const KEPT_MAX: usize = 64;

    thread_local! {
        static KEPT: RefCell<Vec<(TypeId, Box<dyn Any>)>> = const { RefCell::new(Vec::new()) };
    }

    /// The cells kept on this thread of type `C`, taken.
    pub(super) fn take<C: 'static>() -> Vec<C> {
        let taken = KEPT.try_with(|kept| {
            let mut kept = kept.borrow_mut();
            let found = kept.iter_mut().find(|(kind, _)| *kind == TypeId::of::<C>());
            found.and_then(|(_, cells)| cells.downcast_mut::<Vec<C>>()).map(std::mem::take)
        });
        taken.ok().flatten().unwrap_or_default()
    }

    /// Keeps `cells` for the next [`take`] of type `C`, up to [`KEPT_MAX`] (the rest dropped).
    /// Entries are dropped by the caller first: no entry's drop runs under this borrow.
    pub(super) fn put<C: 'static>(mut cells: Vec<C>) {
        if cells.is_empty() {
            return;
        }
        let _ = KEPT.try_with(|kept| {
            let mut kept = kept.borrow_mut();
            let found = kept.iter_mut().find(|(kind, _)| *kind == TypeId::of::<C>());
            match found.and_then(|(_, kept)| kept.downcast_mut::<Vec<C>>()) {
                Some(kept) if kept.is_empty() => *kept = cells,
                Some(kept) => {
                    cells.truncate(KEPT_MAX.saturating_sub(kept.len()));
                    kept.append(&mut cells);
                }
                None => kept.push((TypeId::of::<C>(), Box::new(cells))),
            }
        });
    }
}

impl<T: 'static> Clone for RcuHlist<T> {
    fn clone(&self) -> Self {
        RcuHlist { memory: self.memory.clone() }
    }
}

impl<T: 'static> fmt::Debug for RcuHlist<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RcuHlist").field("name", &self.memory.name).finish_non_exhaustive()
    }
}

impl<T: 'static> RcuHlist<T> {
    /// An empty memory for hlists named `name`, whose writers hold a lock of class
    /// `writer_lock` (a convention the kernel documents and does not enforce: each change by a
    /// model context without it is reported, `lockdep:lock-not-held`, as a `Guarded` field's).
    pub fn new(name: &'static str, writer_lock: &'static str) -> RcuHlist<T> {
        let keeps_cells = !crate::sim::in_threaded_checker();
        RcuHlist {
            memory: StdArc::new(Memory {
                name,
                name_hash: crate::trace::name_hash(name),
                writer_lock,
                access_point: AtomicU64::new(0),
                slots: crate::sync::BookLock::new(Slots {
                    table: Vec::new(),
                    free: SmallVec::new(),
                    spare: if keeps_cells { kept_cells::take() } else { Vec::new() },
                }),
                keeps_cells,
            }),
        }
    }

    /// The name the reports use.
    pub fn name(&self) -> &'static str {
        self.memory.name
    }

    fn alloc(&self, entry: Option<T>) -> Obj {
        let mut slots = self.memory.slots.lock();
        let cell = Self::spare_or_new_cell(&mut slots.spare, entry);
        let slot = match slots.free.pop() {
            Some(slot) => {
                slots.table[slot as usize].cell = Some(cell);
                slot
            }
            None => {
                slots.table.push(Slot { generation: 0, cell: Some(cell), freed: None });
                (slots.table.len() - 1) as u32
            }
        };
        Obj { slot, generation: slots.table[slot as usize].generation }
    }

    /// `INIT_HLIST_HEAD()` in newly allocated memory: an empty chain.
    pub fn head_alloc(&self) -> HlistHead {
        HlistHead(self.alloc(None))
    }

    /// `count` empty chains allocated at once (a hash table's buckets, alloc_large_system_hash()
    /// and `INIT_HLIST_HEAD()` on each), with room made for `room` more objects.
    pub fn heads_alloc(&self, count: usize, room: usize) -> Vec<HlistHead> {
        let mut slots = self.memory.slots.lock();
        slots.table.reserve(count + room);
        (0..count)
            .map(|_| {
                let cell = Self::spare_or_new_cell(&mut slots.spare, None);
                slots.table.push(Slot { generation: 0, cell: Some(cell), freed: None });
                HlistHead(Obj { slot: (slots.table.len() - 1) as u32, generation: 0 })
            })
            .collect()
    }

    /// A spare cell made anew in place, else a new one.
    fn spare_or_new_cell(spare: &mut Vec<StdArc<Cell<T>>>, entry: Option<T>) -> StdArc<Cell<T>> {
        match spare.pop() {
            Some(mut cell) => {
                let owned = StdArc::get_mut(&mut cell).expect("a spare cell has no other owner");
                *owned = Self::new_cell(entry);
                cell
            }
            None => StdArc::new(Self::new_cell(entry)),
        }
    }

    /// `INIT_HLIST_NODE()`/`INIT_HLIST_HEAD()`: links NULL, live.
    fn new_cell(entry: Option<T>) -> Cell<T> {
        Cell {
            entry,
            link: AtomicU64::new(0),
            pprev: StdAtomicU64::new(0),
            dead: std::sync::atomic::AtomicBool::new(false),
        }
    }

    /// `INIT_HLIST_NODE()` in a newly allocated `entry`: unhashed (`next` and `pprev` NULL).
    pub fn node_alloc(&self, entry: T) -> HlistNode {
        HlistNode(self.alloc(Some(entry)))
    }

    /// Objects allocated and not yet freed (for a teardown check).
    pub fn live(&self) -> usize {
        self.memory.slots.lock().table.iter().filter(|slot| slot.cell.is_some()).count()
    }

    /// A step onto `obj` by `what` at `site`: its cell, or a reported use after free. Who freed
    /// it is read under the same hold of the slots' lock as the failed look-up, out of line
    /// ([`RcuHlist::freed_by`]), and reported after the lock is let go: the step that finds a
    /// live cell returns it with no more than its reference counted.
    fn reach(
        &self,
        cx: &Cx,
        obj: Obj,
        what: &str,
        site: &'static Location<'static>,
    ) -> Result<StdArc<Cell<T>>, Oops> {
        self.memory.access_point.load(Ordering::Relaxed);
        let freed = {
            let slots = self.memory.slots.lock();
            let slot = &slots.table[obj.slot as usize];
            match &slot.cell {
                Some(cell) if slot.generation == obj.generation => return Ok(cell.clone()),
                _ => Self::freed_by(slot, obj),
            }
        };
        Err(self.report_use_after_free(cx, obj, what, site, freed))
    }

    /// [`RcuHlist::reach`] for a writer's access to `obj`'s `pprev` alone (`f`), which is a
    /// `std` atomic and no scheduling point: run under the slots' lock on the cell where it
    /// lies, so the step counts no reference to let go again (two atomic read-modify-writes a
    /// step, beside the lock's). The same facade read of the memory first, the same report.
    fn reach_pprev<R>(
        &self,
        cx: &Cx,
        obj: Obj,
        what: &str,
        site: &'static Location<'static>,
        f: impl FnOnce(&StdAtomicU64) -> R,
    ) -> Result<R, Oops> {
        self.memory.access_point.load(Ordering::Relaxed);
        let freed = {
            let slots = self.memory.slots.lock();
            let slot = &slots.table[obj.slot as usize];
            match &slot.cell {
                Some(cell) if slot.generation == obj.generation => return Ok(f(&cell.pprev)),
                _ => Self::freed_by(slot, obj),
            }
        };
        Err(self.report_use_after_free(cx, obj, what, site, freed))
    }

    /// Who freed `obj`, whose slot is `slot` (`None` when the slot was freed again since).
    #[cold]
    #[inline(never)]
    fn freed_by(slot: &Slot<T>, obj: Obj) -> Option<Freed> {
        slot.freed.clone().filter(|freed| freed.generation == obj.generation)
    }

    #[cold]
    #[inline(never)]
    fn report_use_after_free(
        &self,
        cx: &Cx,
        obj: Obj,
        what: &str,
        site: &'static Location<'static>,
        freed: Option<Freed>,
    ) -> Oops {
        let how = match &freed {
            Some(freed) if freed.deferred => format!(
                "freed by an RCU callback queued by kfree_rcu() from {} at {}, after a grace period \
                 this access was not inside",
                freed.task,
                crate::lockdep::site(freed.site)
            ),
            Some(freed) => format!(
                "freed by kfree() from {} at {}, without waiting for a grace period",
                freed.task,
                crate::lockdep::site(freed.site)
            ),
            None => "freed earlier (its slot was freed again since)".to_string(),
        };
        let section = if cx.rcu_read_lock_held() { "inside" } else { "outside" };
        let message = format!(
            "BUG: KASAN: use-after-free: {}/cpu{} reached {} {obj:?} in {what} at {} ({section} a \
             read-side section); it was {how}",
            cx.name(),
            cx.cpu(),
            self.memory.name,
            crate::lockdep::site(site),
        );
        let violation = Violation::new("rcu:use-after-free", message);
        cx.sim().report(Some(cx), violation.clone());
        Oops(violation)
    }

    #[cold]
    #[inline(never)]
    fn report_oops(&self, cx: &Cx, node: Obj, found: &str, site: &'static Location<'static>) -> Oops {
        let message = format!(
            "hlist_del_rcu: BUG: unable to handle kernel paging request: {}/cpu{} at {} wrote \
             through the pprev of {} node {node:?}, which is {found}",
            cx.name(),
            cx.cpu(),
            crate::lockdep::site(site),
            self.memory.name,
        );
        let violation = Violation::new("list-poison", message);
        cx.sim().report(Some(cx), violation.clone());
        Oops(violation)
    }

    /// A change by `what` at `site`: reported when a model context makes it without the
    /// writers' lock.
    fn check_writer(&self, cx: &Cx, what: &str, site: &'static Location<'static>) {
        let writer_lock = self.memory.writer_lock;
        if cx.is_observer() || !cx.sim().lockdep().is_enabled() || cx.holds(writer_lock) {
            return;
        }
        let message = format!(
            "{what} of {} by {}/cpu{} at {} without {writer_lock} held: two writers may change \
             one chain at once",
            self.memory.name,
            cx.name(),
            cx.cpu(),
            crate::lockdep::site(site)
        );
        cx.sim().report(Some(cx), Violation::new("lockdep:lock-not-held", message));
    }

    /// Traces a writer's store of `word` into a link (`rcu_assign_pointer`/`WRITE_ONCE`).
    fn trace_store(&self, cx: &Cx, word: u64) {
        let name = self.memory.name;
        cx.trace_named(Named::RcuAssign { object: word }, self.memory.name_hash, move || name.into());
    }

    /// The cell whose link `pprev` names (a head's `first` or a node's `next`).
    fn link_at(
        &self,
        cx: &Cx,
        pprev: u64,
        site: &'static Location<'static>,
    ) -> Result<StdArc<Cell<T>>, Oops> {
        let obj = Obj::from_word(pprev).expect("a hashed node's pprev names an object");
        self.reach(cx, obj, "the predecessor's link", site)
    }
}

impl<T: 'static> RcuHlist<T> {
    /// Mirrors hlist_add_head_rcu(): `node` becomes the first of `head`'s chain. Its `next` and
    /// `pprev` are set before the head's `first` is published with release ordering
    /// (rcu_assign_pointer()), so a reader that finds it also finds its successor; then the
    /// old first's `pprev` is pointed at the node. The caller holds the writers' lock.
    #[track_caller]
    pub fn hlist_add_head_rcu(&self, cx: &Cx, node: HlistNode, head: HlistHead) -> Result<(), Oops> {
        let site = Location::caller();
        self.check_writer(cx, "hlist_add_head_rcu", site);
        let head_cell = self.reach(cx, head.0, "hlist_add_head_rcu (the head)", site)?;
        let node_cell = self.reach(cx, node.0, "hlist_add_head_rcu (the node)", site)?;
        let first = head_cell.link.load(Ordering::Relaxed);
        node_cell.link.store(first, Ordering::Relaxed);
        node_cell.pprev.store(head.0.word(), std::sync::atomic::Ordering::Relaxed);
        head_cell.link.store(node.0.word(), Ordering::Release);
        self.trace_store(cx, node.0.word());
        if let Some(first) = Obj::from_word(first) {
            self.reach_pprev(cx, first, "hlist_add_head_rcu (the old first)", site, |pprev| {
                pprev.store(node.0.word(), std::sync::atomic::Ordering::Relaxed);
            })?;
        }
        Ok(())
    }

    /// Mirrors hlist_del_rcu(): the node's predecessor link is pointed past it (WRITE_ONCE()),
    /// its successor's `pprev` at the predecessor, and its own `pprev` poisoned. Its `next` is
    /// kept, so a reader standing on it walks on to the rest of the chain; the node may be
    /// freed only after a grace period. A node already deleted (poisoned `pprev`) or never
    /// added (NULL) is the oops the kernel takes writing through that pointer. The caller holds
    /// the writers' lock.
    #[track_caller]
    pub fn hlist_del_rcu(&self, cx: &Cx, node: HlistNode) -> Result<(), Oops> {
        let site = Location::caller();
        self.check_writer(cx, "hlist_del_rcu", site);
        let node_cell = self.reach(cx, node.0, "hlist_del_rcu (the node)", site)?;
        let pprev = node_cell.pprev.load(std::sync::atomic::Ordering::Relaxed);
        match pprev {
            PPREV_POISON => {
                return Err(self.report_oops(cx, node.0, "LIST_POISON2 (dead000000000200)", site))
            }
            0 => return Err(self.report_oops(cx, node.0, "NULL (the node was never added)", site)),
            _ => {}
        }
        let next = node_cell.link.load(Ordering::Relaxed);
        let before = self.link_at(cx, pprev, site)?;
        before.link.store(next, Ordering::Relaxed);
        self.trace_store(cx, next);
        if let Some(next) = Obj::from_word(next) {
            self.reach_pprev(cx, next, "hlist_del_rcu (the successor)", site, |next_pprev| {
                next_pprev.store(pprev, std::sync::atomic::Ordering::Relaxed);
            })?;
        }
        node_cell.pprev.store(PPREV_POISON, std::sync::atomic::Ordering::Relaxed);
        Ok(())
    }

    /// Mirrors hlist_unhashed(): the node is on no chain (never added, or deleted). A writer's
    /// read, under the chain's writer lock.
    #[track_caller]
    pub fn hlist_unhashed(&self, cx: &Cx, node: HlistNode) -> Result<bool, Oops> {
        let pprev = self.reach_pprev(cx, node.0, "hlist_unhashed", Location::caller(), |pprev| {
            pprev.load(std::sync::atomic::Ordering::Relaxed)
        })?;
        Ok(pprev == 0 || pprev == PPREV_POISON)
    }

    /// Mirrors hlist_empty(): a plain read of the head's `first`.
    #[track_caller]
    pub fn hlist_empty(&self, cx: &Cx, head: HlistHead) -> Result<bool, Oops> {
        let cell = self.reach(cx, head.0, "hlist_empty", Location::caller())?;
        Ok(cell.link.load(Ordering::Relaxed) == 0)
    }

    /// Mirrors hlist_for_each_entry_rcu(): walks `head`'s chain from its `first`, each link read
    /// with rcu_dereference()'s acquire ordering, calling `f` on each entry until it breaks
    /// (its value returned) or the chain ends (`Ok(None)`). The walker must be inside
    /// rcu_read_lock() or hold a lock of class `cond` (rcu_dereference_check()'s condition, the
    /// writers' lock); otherwise the walk is reported. A step onto a freed object is a reported
    /// use after free and ends the walk with the report.
    #[track_caller]
    pub fn hlist_for_each_entry_rcu<R>(
        &self,
        cx: &Cx,
        head: HlistHead,
        cond: Option<&'static str>,
        mut f: impl FnMut(&T) -> ControlFlow<R>,
    ) -> Result<Option<R>, Oops> {
        let site = Location::caller();
        self.check_reader(cx, cond, site);
        let head_cell = self.reach(cx, head.0, "hlist_for_each_entry_rcu (the head)", site)?;
        let mut word = head_cell.link.load(Ordering::Acquire);
        while let Some(obj) = Obj::from_word(word) {
            let cell = self.reach(cx, obj, "hlist_for_each_entry_rcu", site)?;
            let entry = cell.entry.as_ref().expect("a chain links nodes, never a head");
            if let ControlFlow::Break(found) = f(entry) {
                return Ok(Some(found));
            }
            // The body ran: the node may have been freed under the walker since it stepped on it.
            if cell.dead.load(std::sync::atomic::Ordering::Relaxed) {
                self.reach(cx, obj, "hlist_for_each_entry_rcu (its next)", site)?;
            }
            word = cell.link.load(Ordering::Acquire);
        }
        Ok(None)
    }

    /// PROVE_RCU's check of a list walk: a model context inside a read-side section, or holding
    /// a lock of class `cond`.
    fn check_reader(&self, cx: &Cx, cond: Option<&'static str>, site: &'static Location<'static>) {
        if cx.is_observer() || !cx.sim().lockdep().is_enabled() || cx.rcu_read_lock_held() {
            return;
        }
        if cond.is_some_and(|class| cx.holds(class)) {
            return;
        }
        let held: Vec<String> = cx.held_locks().iter().map(|a| a.class.clone()).collect();
        let message = format!(
            "WARNING: suspicious RCU usage\n{}: RCU-list traversed in non-reader section!!\n\
             {} walked by {}/cpu{} outside rcu_read_lock(){} (locks held: [{}])",
            crate::lockdep::site(site),
            self.memory.name,
            cx.name(),
            cx.cpu(),
            cond.map_or(String::new(), |class| format!(" and without {class} held")),
            held.join(", ")
        );
        cx.sim().report(Some(cx), Violation::new("rcu:dereference-outside-read-side", message));
    }
}

impl<T: 'static> RcuHlist<T> {
    /// `kfree()` of an object now: objects are freed by the callers (`HlistHead` and
    /// `HlistNode` alike, the memory they sit in). Correct only once no reader can reach it
    /// (after a grace period); a later step onto it is a reported use after free, and a second
    /// free a reported double free.
    fn free_obj(&self, cx: &Cx, obj: Obj, site: &'static Location<'static>, deferred: bool) {
        let freed = {
            let mut slots = self.memory.slots.lock();
            let slot = &mut slots.table[obj.slot as usize];
            let live = slot.cell.is_some() && slot.generation == obj.generation;
            if live {
                let cell = slot.cell.take();
                slot.freed =
                    Some(Freed { generation: slot.generation, task: cx.name_shared(), site, deferred });
                slot.generation = slot.generation.wrapping_add(1);
                slots.free.push(obj.slot);
                if let Some(cell) = cell.and_then(Self::retire) {
                    slots.spare.push(cell);
                }
            }
            live
        };
        if !freed {
            let message = format!(
                "double free of {} {obj:?} by {}/cpu{} at {}",
                self.memory.name,
                cx.name(),
                cx.cpu(),
                crate::lockdep::site(site)
            );
            cx.sim().report(Some(cx), Violation::new("rcu:double-free", message));
            return;
        }
        self.memory.access_point.store(obj.word(), Ordering::Relaxed);
        let name = self.memory.name;
        cx.trace_named(Named::RcuFree { object: obj.word(), deferred }, self.memory.name_hash, move || {
            name.into()
        });
    }

    /// A freed object's cell: marked dead for a walker standing on it (which keeps it, and the
    /// entry, until it moves on); with no walker, its entry dropped now and the cell returned
    /// for reuse.
    fn retire(mut cell: StdArc<Cell<T>>) -> Option<StdArc<Cell<T>>> {
        cell.dead.store(true, std::sync::atomic::Ordering::Relaxed);
        let owned = StdArc::get_mut(&mut cell)?;
        owned.entry = None;
        Some(cell)
    }

    /// `kfree()` now of the memory holding `heads` and `nodes` (one object: a `struct pid`'s
    /// numbers and task chains). A reader still able to reach them will report a use after free.
    #[track_caller]
    pub fn kfree(&self, cx: &Cx, heads: &[HlistHead], nodes: &[HlistNode]) {
        let site = Location::caller();
        heads.iter().for_each(|head| self.free_obj(cx, head.0, site, false));
        nodes.iter().for_each(|node| self.free_obj(cx, node.0, site, false));
    }
}

/// Heads, and nodes, an [`RcuHlist::kfree_rcu`] callback keeps without an allocation of its own:
/// a `struct pid` frees one head, or its upids (one a pid-namespace level; two levels inline).
const FREED_INLINE: usize = 2;

impl<T: Send + Sync + 'static> RcuHlist<T> {
    /// Mirrors `kfree_rcu()`/`call_rcu()` of a free: the heads and nodes are freed after a grace
    /// period, once every read-side section open now has ended. The callback keeps up to
    /// [`FREED_INLINE`] of each inline (a `struct pid`'s head or its upids): queueing one makes
    /// no allocation but the callback's own.
    #[track_caller]
    pub fn kfree_rcu(&self, cx: &Cx, heads: &[HlistHead], nodes: &[HlistNode]) {
        let (list, site) = (self.clone(), Location::caller());
        let heads = SmallVec::<[HlistHead; FREED_INLINE]>::from_slice(heads);
        let nodes = SmallVec::<[HlistNode; FREED_INLINE]>::from_slice(nodes);
        crate::rcu::call_rcu(cx, move |rcu_cx| {
            heads.iter().for_each(|head| list.free_obj(rcu_cx, head.0, site, true));
            nodes.iter().for_each(|node| list.free_obj(rcu_cx, node.0, site, true));
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lockdep::ReportMode;
    use crate::locks::SpinLock;
    use crate::sim::{Sim, SimConfig};

    fn sim() -> Sim {
        Sim::new(SimConfig::new(1).lockdep(ReportMode::Collect))
    }

    /// The writers' lock of every test list.
    const WRITER_LOCK: &str = "chain_lock";

    fn list() -> (RcuHlist<u32>, SpinLock<()>) {
        (RcuHlist::new("chain", WRITER_LOCK), SpinLock::new(WRITER_LOCK, ()))
    }

    fn kinds(sim: &Sim) -> Vec<String> {
        sim.violations().into_iter().map(|v| v.kind.to_string()).collect()
    }

    /// A chain of `entries` added head first (so the walk meets them in reverse), with its nodes.
    fn chain(
        cx: &Cx,
        (list, lock): &(RcuHlist<u32>, SpinLock<()>),
        entries: &[u32],
    ) -> (HlistHead, Vec<HlistNode>) {
        let head = list.head_alloc();
        let nodes: Vec<HlistNode> = entries.iter().map(|&entry| list.node_alloc(entry)).collect();
        let _writer = lock.lock(cx);
        for &node in &nodes {
            list.hlist_add_head_rcu(cx, node, head).expect("live");
        }
        (head, nodes)
    }

    fn del(cx: &Cx, (list, lock): &(RcuHlist<u32>, SpinLock<()>), node: HlistNode) -> Result<(), Oops> {
        let _writer = lock.lock(cx);
        list.hlist_del_rcu(cx, node)
    }

    fn walk(cx: &Cx, list: &RcuHlist<u32>, head: HlistHead) -> Vec<u32> {
        let mut seen = Vec::new();
        let found = list.hlist_for_each_entry_rcu(cx, head, None, |&entry| {
            seen.push(entry);
            ControlFlow::<()>::Continue(())
        });
        assert_eq!(found, Ok(None));
        seen
    }

    /// A dropped memory's cells (its buckets, its objects, its spare cells) start the thread's
    /// next memory of the same entry type, made anew: its chains, walks, frees and trace are
    /// those of a memory on a fresh thread, which finds no cells kept; the cells are taken, not
    /// shared (a second memory made meanwhile finds none).
    #[test]
    fn a_memory_on_kept_cells_is_a_new_memory() {
        let run = || {
            let sim = sim();
            let cx = sim.cx("writer", 0);
            let both = list();
            let spare_at_start = both.0.memory.slots.lock().spare.len();
            let buckets = both.0.heads_alloc(4, 4);
            let (head, nodes) = chain(&cx, &both, &[7, 8, 9]);
            del(&cx, &both, nodes[1]).expect("hashed");
            both.0.kfree(&cx, &[], &[nodes[1]]);
            cx.rcu_read_lock();
            let buckets: Vec<_> = buckets.iter().map(|&bucket| walk(&cx, &both.0, bucket)).collect();
            let walked = (walk(&cx, &both.0, head), buckets);
            cx.rcu_read_unlock();
            let node = both.0.node_alloc(10);
            assert_eq!(both.0.hlist_unhashed(&cx, node), Ok(true), "a node made on a kept cell is unhashed");
            let _writer = both.1.lock(&cx);
            both.0.hlist_add_head_rcu(&cx, node, head).expect("live");
            (spare_at_start, walked, kinds(&sim), sim.trace_hash())
        };
        std::thread::spawn(move || {
            let fresh = run();
            assert_eq!(fresh.0, 0, "a fresh thread keeps no cells");
            let again = run();
            assert!(again.0 >= 8, "the first memory's eight cells were kept: {} taken", again.0);
            assert_eq!(
                (&again.1, &again.2, again.3),
                (&fresh.1, &fresh.2, fresh.3),
                "the same walks, reports, trace"
            );
            let (first, second) = (list(), list());
            let spare = |both: &(RcuHlist<u32>, SpinLock<()>)| both.0.memory.slots.lock().spare.len();
            assert_eq!((spare(&first) > 0, spare(&second)), (true, 0), "taken by one memory");
        })
        .join()
        .expect("the test's thread");
    }

    #[test]
    fn add_head_puts_the_node_first_and_del_unlinks_it_from_any_place() {
        let sim = sim();
        let cx = sim.cx("writer", 0);
        let both = list();
        let list = &both.0;
        let (head, nodes) = chain(&cx, &both, &[1, 2, 3, 4]);
        cx.rcu_read_lock();
        assert_eq!(walk(&cx, list, head), vec![4, 3, 2, 1]);
        for (node, expect) in [(nodes[2], vec![4, 2, 1]), (nodes[3], vec![2, 1]), (nodes[0], vec![2])] {
            del(&cx, &both, node).expect("hashed");
            assert!(list.hlist_unhashed(&cx, node).expect("live"));
            assert_eq!(walk(&cx, list, head), expect);
        }
        assert_eq!(list.hlist_empty(&cx, head), Ok(false));
        del(&cx, &both, nodes[1]).expect("hashed");
        assert_eq!(list.hlist_empty(&cx, head), Ok(true));
        cx.rcu_read_unlock();
        assert!(sim.violations().is_empty(), "{:?}", sim.violations());
        assert_eq!(list.live(), 5);
    }

    /// A reader standing on a node while a writer deletes it (and queues its free) walks on
    /// from it to the rest of the chain; the free waits for the reader's section; a reader
    /// that starts after the delete no longer meets the node.
    #[test]
    fn a_reader_on_a_deleted_node_still_reaches_the_rest_of_the_chain() {
        let sim = sim();
        let (reader, writer) = (sim.cx("reader", 0), sim.cx("writer", 1));
        let both = list();
        let list = &both.0;
        let (head, nodes) = chain(&writer, &both, &[1, 2, 3]);
        reader.rcu_read_lock();
        let mut seen = Vec::new();
        let walked = list.hlist_for_each_entry_rcu(&reader, head, None, |&entry| {
            seen.push(entry);
            if entry == 2 {
                del(&writer, &both, nodes[1]).expect("hashed");
                list.kfree_rcu(&writer, &[], &[nodes[1]]);
                writer.rcu_read_lock();
                assert_eq!(walk(&writer, list, head), vec![3, 1], "a later walk skips it");
                writer.rcu_read_unlock();
            }
            ControlFlow::<()>::Continue(())
        });
        assert_eq!(walked, Ok(None));
        assert_eq!(seen, vec![3, 2, 1], "the deleted node's next still leads on");
        assert_eq!(sim.rcu_advance(), 0, "the reader holds the free back");
        reader.rcu_read_unlock();
        assert_eq!(sim.rcu_advance(), 1);
        assert_eq!(list.live(), 3, "the head and two nodes");
        assert!(sim.violations().is_empty(), "{:?}", sim.violations());
    }

    /// A node freed with kfree() right after hlist_del_rcu(), while a reader stands on it: the
    /// reader's step to its next is a use after free naming the free site.
    #[test]
    fn a_node_freed_without_a_grace_period_is_reported_when_the_reader_moves_on() {
        let sim = sim();
        let (reader, writer) = (sim.cx("reader", 0), sim.cx("writer", 1));
        let both = list();
        let list = &both.0;
        let (head, nodes) = chain(&writer, &both, &[1, 2, 3]);
        reader.rcu_read_lock();
        let mut freed_at = 0;
        let walked = list.hlist_for_each_entry_rcu(&reader, head, None, |&entry| {
            if entry == 2 {
                del(&writer, &both, nodes[1]).expect("hashed");
                list.kfree(&writer, &[], &[nodes[1]]);
                freed_at = line!() - 1;
            }
            ControlFlow::<()>::Continue(())
        });
        reader.rcu_read_unlock();
        assert!(walked.is_err(), "the walk ends at the freed node");
        assert_eq!(kinds(&sim), vec!["rcu:use-after-free"]);
        let message = &sim.violations()[0].message;
        assert!(message.contains("chain obj#2.0"), "{message}");
        assert!(message.contains(&format!("writer at sim-core/src/rcu_hlist.rs:{freed_at}")), "{message}");
        assert!(message.contains("without waiting for a grace period"), "{message}");
    }

    /// A reader that kept a chain's head past the grace period that freed it (the head's
    /// memory, a whole object freed with kfree_rcu()) reports the use after free.
    #[test]
    fn a_head_reached_after_its_grace_period_is_a_use_after_free() {
        let sim = sim();
        let (reader, writer) = (sim.cx("reader", 0), sim.cx("writer", 1));
        let both = list();
        let list = &both.0;
        let (head, nodes) = chain(&writer, &both, &[7]);
        del(&writer, &both, nodes[0]).expect("hashed");
        list.kfree_rcu(&writer, &[head], &nodes);
        assert_eq!(sim.rcu_advance(), 1);
        reader.rcu_read_lock();
        assert!(list.hlist_for_each_entry_rcu(&reader, head, None, |_| ControlFlow::Break(())).is_err());
        reader.rcu_read_unlock();
        assert_eq!(kinds(&sim), vec!["rcu:use-after-free"]);
        assert!(sim.violations()[0].message.contains("kfree_rcu()"), "{}", sim.violations()[0].message);
        list.kfree(&writer, &[head], &[]);
        assert_eq!(kinds(&sim)[1], "rcu:double-free");
    }

    /// A walk needs rcu_read_lock() or the named lock; without either it is reported.
    #[test]
    fn a_walk_outside_a_section_without_the_named_lock_is_reported() {
        let sim = sim();
        let cx = sim.cx("t", 0);
        let both = list();
        let (list, lock) = (&both.0, &both.1);
        let (head, _) = chain(&cx, &both, &[1, 2]);
        let first =
            |cx: &Cx| list.hlist_for_each_entry_rcu(cx, head, Some(WRITER_LOCK), |&e| ControlFlow::Break(e));
        {
            let _held = lock.lock(&cx);
            assert_eq!(first(&cx), Ok(Some(2)));
        }
        assert!(sim.violations().is_empty(), "{:?}", sim.violations());
        assert_eq!(first(&cx), Ok(Some(2)));
        assert_eq!(kinds(&sim), vec!["rcu:dereference-outside-read-side"]);
        let message = &sim.violations()[0].message;
        assert!(message.contains("RCU-list traversed in non-reader section"), "{message}");
        assert!(message.contains("without chain_lock held"), "{message}");
    }

    /// A change without the writers' lock is reported; hlist_del_rcu() twice writes through the
    /// poisoned pprev, and of a node never added through NULL: both oops.
    #[test]
    fn an_unlocked_change_a_second_delete_and_a_delete_of_an_unhashed_node_are_reported() {
        let sim = sim();
        let cx = sim.cx("t", 0);
        let both = list();
        let list = &both.0;
        let (_, nodes) = chain(&cx, &both, &[1]);
        list.hlist_del_rcu(&cx, nodes[0]).expect("hashed");
        assert_eq!(kinds(&sim), vec!["lockdep:lock-not-held"]);
        assert!(sim.violations()[0].message.contains("without chain_lock held"));
        assert!(del(&cx, &both, nodes[0]).is_err());
        assert!(del(&cx, &both, list.node_alloc(2)).is_err());
        assert_eq!(kinds(&sim)[1..], ["list-poison", "list-poison"]);
        assert!(sim.violations()[1].message.contains("LIST_POISON2"));
        assert!(sim.violations()[2].message.contains("never added"));
    }
}
