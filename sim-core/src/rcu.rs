//! RCU after include/linux/rcupdate.h and kernel/rcu/: read-side sections recorded in the [`Cx`]
//! (`rcu_read_lock`, `rcu_read_unlock`), RCU-protected pointers ([`RcuPointer`]:
//! `rcu_assign_pointer`, `rcu_dereference`, `rcu_dereference_protected`), grace periods
//! ([`synchronize_rcu`], [`rcu_barrier`]) and callbacks ([`call_rcu`], [`RcuPointer::kfree_rcu`]).
//!
//! What CONFIG_PROVE_RCU and KASAN would say is reported as a [`Violation`]: a sleeping call
//! inside a read-side section (`rcu:sleep-in-read-side`), a dereference outside any section and
//! without the named update lock (`rcu:dereference-outside-read-side`), an unlock without a lock
//! (`rcu:unbalanced-unlock`), a use of an object read in a section after that section ended
//! (`rcu:use-outside-read-side`, found even while the object still lives), a use of an object
//! after it was freed (`rcu:use-after-free`, naming the object, where its section began and
//! where it was freed), a second free (`rcu:double-free`) and a task that ended inside a section
//! (`rcu:leaked-read-side`). Objects live in a generation-checked table, so a use after free is a
//! report, never undefined behaviour or a panic.
//!
//! The grace-period state is the kernel's (`rcu_state`), so it is a facade mutex and condition
//! variable: under loom and shuttle `synchronize_rcu` really waits for every section that began
//! before it. In the op-level simulation nothing waits: grace periods end when the model or the
//! harness calls [`Sim::rcu_advance`], deterministically. Left out: the kernel's RCU flavours
//! (bh, sched, SRCU), expedited grace periods, CPU stall warnings, and softirq context for
//! callbacks (they run on a task of their own named "rcu"). One difference a reader of a loom
//! model must know: outermost `rcu_read_lock`/`rcu_read_unlock` take the grace-period mutex, so
//! readers are ordered with each other where the kernel's are not; a missing barrier between two
//! readers is therefore not found here.

use std::collections::VecDeque;
use std::fmt;
use std::marker::PhantomData;
use std::panic::Location;
use std::sync::Arc as StdArc;

use smallvec::SmallVec;

use crate::cx::Cx;
use crate::sim::{Sim, Violation};
use crate::sync;
use crate::sync::atomic::{AtomicU64, Ordering};
use crate::trace::{EventKind, Named};

/// A read-side section as its context records it: a number unique in the `Sim`, and where its
/// outermost `rcu_read_lock()` was called.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Section {
    id: u64,
    begun_at: &'static Location<'static>,
}

/// An RCU callback: runs on the "rcu" task once the grace period it waits for has ended.
type Callback = Box<dyn FnOnce(&Cx) + Send>;

/// How many due callbacks a grace period's batch keeps in place before it spills to the heap.
/// Four: taskstats' campaign runs about three a batch (6,279 in 2,039 batches, 300 cases), and
/// a `Vec` made for each batch was an allocation and a free per grace period.
const DUE_KEPT: usize = 4;

/// The callbacks one grace period made due, in the order they were queued.
type Due = SmallVec<[Callback; DUE_KEPT]>;

/// A reader inside a section, for the op-level check that no wait can never end.
struct Reader {
    task: StdArc<str>,
    begun_at: &'static Location<'static>,
    /// The OS thread (default backend only, where one thread runs many tasks in turn).
    thread: Option<std::thread::ThreadId>,
}

/// The grace-period state: which sections are open, and the callbacks waiting.
#[derive(Default)]
struct GpState {
    next_section: u64,
    /// The open sections by number, ascending: a section's number is the next one when it
    /// opens (under this state's mutex), so opening appends, and a queue keeps its room from one
    /// section to the next where a tree allocated a node for the first section and freed it with
    /// the last (callgrind: about 200 instructions a section).
    open: VecDeque<(u64, Reader)>,
    waiters: u32,
    /// Each callback with the first section number that began after it was queued: it is due
    /// once no section numbered below that is open.
    callbacks: VecDeque<(u64, Callback)>,
}

impl GpState {
    /// Removes the callbacks whose grace period has ended, in the order they were queued.
    fn take_due(&mut self) -> Due {
        let oldest_open = self.open.front().map_or(u64::MAX, |(id, _)| *id);
        let mut due = Due::new();
        while let Some((_, callback)) = self.callbacks.pop_front_if(|(after, _)| *after <= oldest_open) {
            due.push(callback);
        }
        due
    }

    /// Removes open section `id`: most often the only one, or the oldest or newest; otherwise
    /// found by bisection (the queue is sorted).
    fn close(&mut self, id: u64) {
        if self.open.front().is_some_and(|(open, _)| *open == id) {
            self.open.pop_front();
            return;
        }
        if self.open.back().is_some_and(|(open, _)| *open == id) {
            self.open.pop_back();
            return;
        }
        let at = self.open.partition_point(|(open, _)| *open < id);
        if self.open.get(at).is_some_and(|(open, _)| *open == id) {
            self.open.remove(at);
        }
    }
}

/// The kernel's `rcu_state`, one per [`Sim`].
pub(crate) struct RcuState {
    gp: sync::Mutex<GpState>,
    ended: sync::Condvar,
    /// `gp.callbacks.len()` as last stored under `gp`'s mutex, so that [`advance`] with nothing
    /// queued (after almost every operation) is a load and a compare. Checker bookkeeping: a
    /// `std` atomic, read without the mutex only in the op-level simulation, where one thread
    /// runs every task, so it is never stale there.
    queued: std::sync::atomic::AtomicUsize,
}

impl RcuState {
    fn new() -> RcuState {
        RcuState {
            gp: sync::Mutex::new(GpState::default()),
            ended: sync::Condvar::new(),
            queued: std::sync::atomic::AtomicUsize::new(0),
        }
    }

    /// Records how many callbacks `gp` holds now (under its mutex).
    fn note_queued(&self, gp: &GpState) {
        self.queued.store(gp.callbacks.len(), std::sync::atomic::Ordering::Relaxed);
    }
}

fn state(sim: &Sim) -> &RcuState {
    sim.world.rcu.get_or_init(RcuState::new)
}

fn prove_rcu(cx: &Cx) -> bool {
    !cx.is_observer() && cx.sim().lockdep().is_enabled()
}

/// The OS thread a read-side section runs on, when that names the task running it: never under
/// loom or shuttle, whose tasks take turns on shared OS threads (a threaded campaign's execution
/// and the loom runner's models under the runtime backend included), so a second task there is not "this same thread".
fn os_thread() -> Option<std::thread::ThreadId> {
    #[cfg(feature = "threaded")]
    if crate::sync::schedule::in_execution() || crate::sync::in_loom() {
        return None;
    }
    Some(std::thread::current().id())
}

/// Mirrors `rcu_read_lock()`: nesting is counted in the context; the outermost call opens a
/// section that grace periods wait for.
pub(crate) fn read_lock(cx: &Cx, site: &'static Location<'static>) {
    let depth = cx.rcu_read_depth();
    cx.set_rcu_depth(depth + 1);
    if depth > 0 {
        return;
    }
    let thread = os_thread();
    let reader = Reader { task: cx.name_shared(), begun_at: site, thread };
    let id = {
        let mut gp = state(cx.sim()).gp.lock();
        let id = gp.next_section;
        gp.next_section += 1;
        gp.open.push_back((id, reader));
        id
    };
    cx.set_rcu_section(Some(Section { id, begun_at: site }));
    cx.trace(EventKind::RcuReadSide { lock: true });
}

/// Mirrors `rcu_read_unlock()`: the outermost call closes the section and wakes grace periods
/// waiting for it.
pub(crate) fn read_unlock(cx: &Cx, site: &'static Location<'static>) {
    let depth = cx.rcu_read_depth();
    if depth == 0 {
        if !cx.is_observer() {
            let message = format!(
                "WARNING: bad unlock balance detected!\n{}/cpu{} is trying to release rcu_read_lock() at {} \
                 but there are no more locks to release!",
                cx.name(),
                cx.cpu(),
                crate::lockdep::site(site)
            );
            cx.sim().report(Some(cx), Violation::new("rcu:unbalanced-unlock", message));
        }
        return;
    }
    cx.set_rcu_depth(depth - 1);
    if depth > 1 {
        return;
    }
    let section = cx.rcu_section().expect("an outermost section is recorded while the depth is positive");
    cx.set_rcu_section(None);
    let rcu = state(cx.sim());
    let wake = {
        let mut gp = rcu.gp.lock();
        gp.close(section.id);
        gp.waiters > 0
    };
    if wake {
        rcu.ended.notify_all();
    }
    cx.trace(EventKind::RcuReadSide { lock: false });
}

/// A context dropped inside a section: reported (see `Drop for Cx`), and the section closed.
pub(crate) fn leaked_section(cx: &Cx) {
    if !cx.is_observer() {
        let begun = cx.rcu_section().map_or_else(|| "?".to_string(), |s| crate::lockdep::site(s.begun_at));
        let message = format!(
            "WARNING: lock held when returning to user space!
{}/cpu{} ended with rcu_read_lock() nesting {};              the section began at {begun}",
            cx.name(),
            cx.cpu(),
            cx.rcu_read_depth()
        );
        cx.sim().report(Some(cx), Violation::new("rcu:leaked-read-side", message));
    }
    cx.set_rcu_depth(1);
    read_unlock(cx, Location::caller());
}

/// The report `rcu_sleep_check()` makes from `might_sleep()`.
pub(crate) fn report_sleep(cx: &Cx, what: &str, site: &'static Location<'static>) {
    if !prove_rcu(cx) {
        return;
    }
    let begun = cx.rcu_section().map_or_else(|| "?".to_string(), |s| crate::lockdep::site(s.begun_at));
    let message = format!(
        "WARNING: suspicious RCU usage\n{}: Illegal context switch in RCU read-side critical section!\n\
         {what} called by {}/cpu{} with rcu_read_lock() nesting {}; the section began at {begun}",
        crate::lockdep::site(site),
        cx.name(),
        cx.cpu(),
        cx.rcu_read_depth(),
    );
    cx.sim().report(Some(cx), Violation::new("rcu:sleep-in-read-side", message));
}

/// Mirrors `synchronize_rcu()`: waits until every read-side section that began before the call
/// has ended, then runs the callbacks that became due. A sleeping call. Called inside a section
/// it is reported (it would wait for itself forever in the kernel); ksim then does not wait for
/// the caller's own section.
///
/// In the op-level simulation a section still open on another task of the same thread can never
/// end while this waits; that is a harness that interleaved a whole `synchronize_rcu` into a
/// reader's section, a bug in ksim's caller, and panics.
#[track_caller]
pub fn synchronize_rcu(cx: &Cx) {
    cx.might_sleep("synchronize_rcu");
    let own = cx.rcu_section().map(|section| section.id);
    let rcu = state(cx.sim());
    let mut gp = rcu.gp.lock();
    let target = gp.next_section;
    loop {
        let blocker = gp.open.iter().take_while(|(id, _)| *id < target).find(|(id, _)| Some(*id) != own);
        let blocker = blocker.map(|(_, reader)| reader);
        let Some(reader) = blocker else { break };
        if reader.thread.is_some() && reader.thread == Some(std::thread::current().id()) {
            panic!(
                "synchronize_rcu by {} would wait forever for the read-side section of {} (begun at {}), \
                 which runs on this same thread: end the section first, or use call_rcu",
                cx.name(),
                reader.task,
                crate::lockdep::site(reader.begun_at)
            );
        }
        gp.waiters += 1;
        gp = rcu.ended.wait(gp);
        gp.waiters -= 1;
    }
    let due = gp.take_due();
    rcu.note_queued(&gp);
    drop(gp);
    cx.trace(EventKind::RcuGracePeriod { callbacks: due.len() as u32 });
    if !due.is_empty() {
        run_callbacks(&cx.sim().cx("rcu", cx.cpu()), due);
    }
}

/// Mirrors `rcu_barrier()`: waits for a grace period, then for the callbacks queued before the
/// call to have run.
#[track_caller]
pub fn rcu_barrier(cx: &Cx) {
    synchronize_rcu(cx);
}

/// Mirrors `call_rcu()`: `callback` runs after a grace period, once every section open now has
/// ended (on the "rcu" task, when a grace period ends: [`synchronize_rcu`], [`rcu_barrier`] or
/// [`Sim::rcu_advance`]).
pub fn call_rcu(cx: &Cx, callback: impl FnOnce(&Cx) + Send + 'static) {
    let rcu = state(cx.sim());
    let mut gp = rcu.gp.lock();
    let after = gp.next_section;
    gp.callbacks.push_back((after, Box::new(callback)));
    rcu.note_queued(&gp);
}

/// Whether [`advance`] has nothing to do: no RCU state yet, or no callback queued outside a
/// shuttle execution or a loom model (inside one, the mutex is taken all the same, so the
/// checkers see the same schedule points as before).
#[inline]
pub(crate) fn nothing_queued(sim: &Sim) -> bool {
    match sim.world.rcu.get() {
        None => true,
        Some(rcu) => !sim.world.threaded && rcu.queued.load(std::sync::atomic::Ordering::Relaxed) == 0,
    }
}

/// [`Sim::rcu_advance`].
#[inline(never)]
pub(crate) fn advance(sim: &Sim) -> usize {
    let Some(rcu) = sim.world.rcu.get() else { return 0 };
    // Nothing queued: nothing can become due. Inside a shuttle execution or a loom model the
    // mutex is taken all the same, so the checkers see the same schedule points as before.
    if !sim.world.threaded && rcu.queued.load(std::sync::atomic::Ordering::Relaxed) == 0 {
        return 0;
    }
    let due = {
        let mut gp = rcu.gp.lock();
        let due = gp.take_due();
        rcu.note_queued(&gp);
        due
    };
    let count = due.len();
    if count > 0 {
        let mut cx = sim.cx("rcu", 0);
        cx.trace(EventKind::RcuGracePeriod { callbacks: count as u32 });
        // The callbacks run on the same task as a context of their own (their lock tokens from
        // a new serial, as `synchronize_rcu` makes it), without making a second `Cx` (renewed
        // in place: the context is not moved).
        cx.renew(0);
        run_callbacks(&cx, due);
    }
    count
}

/// [`Sim::rcu_callbacks_pending`].
pub(crate) fn callbacks_pending(sim: &Sim) -> usize {
    sim.world.rcu.get().map_or(0, |rcu| rcu.gp.lock().callbacks.len())
}

/// Runs the callbacks a grace period made due (`rcu_do_batch()`), in the order they were queued,
/// on `cx`, the "rcu" task's context.
fn run_callbacks(cx: &Cx, due: Due) {
    for callback in due {
        callback(cx);
    }
}

// --- RCU-protected pointers -------------------------------------------------------------------

/// An object an [`RcuPointer`] can publish: its slot and the generation it was allocated in.
pub struct RcuObj<T> {
    slot: u32,
    generation: u32,
    _type: PhantomData<fn() -> T>,
}

impl<T> Clone for RcuObj<T> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<T> Copy for RcuObj<T> {}
impl<T> PartialEq for RcuObj<T> {
    fn eq(&self, other: &Self) -> bool {
        (self.slot, self.generation) == (other.slot, other.generation)
    }
}
impl<T> Eq for RcuObj<T> {}
impl<T> fmt::Debug for RcuObj<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "obj#{}.{}", self.slot, self.generation)
    }
}

impl<T> RcuObj<T> {
    /// The pointer word: `(slot + 1) << 32 | generation`, so 0 is NULL.
    fn word(self) -> u64 {
        (u64::from(self.slot) + 1) << 32 | u64::from(self.generation)
    }

    fn from_word(word: u64) -> Option<RcuObj<T>> {
        let slot = (word >> 32).checked_sub(1)?;
        Some(RcuObj { slot: slot as u32, generation: word as u32, _type: PhantomData })
    }
}

/// Who freed an object, for the use-after-free report.
#[derive(Clone)]
struct Freed {
    generation: u32,
    task: StdArc<str>,
    site: &'static Location<'static>,
    deferred: bool,
}

struct ObjSlot<T> {
    generation: u32,
    object: Option<StdArc<T>>,
    freed: Option<Freed>,
}

/// The objects one pointer publishes. Instrumentation (behind a `sync::BookLock`), as the slab is.
struct Objects<T> {
    pointer: &'static str,
    /// The pointer name's trace hash, computed once (publications and frees are traced by it).
    pointer_hash: u64,
    /// Read (relaxed) at each access to an object and written (relaxed) at each free: the
    /// object's memory as loom sees it. The table is invisible to loom, so without this loom's
    /// partial-order reduction would never try a free between a reader's dereference and its use;
    /// relaxed accesses add no ordering of their own.
    access_point: AtomicU64,
    slots: crate::sync::BookLock<Slots<T>>,
}

/// A pointer's object slots and its free slots' numbers, with room in place for two of each: a
/// pointer publishes one object at a time and most replace it at most once (a task's
/// `real_parent`: its parent at fork, then a reaper), so a pointer's objects cost no table
/// allocation beyond their own (taskstats: 2,421 table growths in 300 cases, one a task).
type Slots<T> = (SmallVec<[ObjSlot<T>; 2]>, SmallVec<[u32; 2]>);

impl<T> Objects<T> {
    fn slots(&self) -> crate::sync::BookGuard<'_, Slots<T>> {
        self.slots.lock()
    }

    /// The object, or who freed it (`None` when the record was overwritten by a later free).
    fn lookup(&self, object: RcuObj<T>) -> Result<StdArc<T>, Option<Freed>> {
        let slots = self.slots();
        let slot = &slots.0[object.slot as usize];
        match &slot.object {
            Some(found) if slot.generation == object.generation => Ok(found.clone()),
            _ => Err(slot.freed.clone().filter(|freed| freed.generation == object.generation)),
        }
    }

    /// `kfree()` of an object: later uses are reported; a second free is reported.
    fn free(&self, cx: &Cx, object: RcuObj<T>, site: &'static Location<'static>, deferred: bool) {
        let freed = {
            let mut slots = self.slots();
            let slot = &mut slots.0[object.slot as usize];
            let live = slot.object.is_some() && slot.generation == object.generation;
            if live {
                let freed = Freed { generation: slot.generation, task: cx.name_shared(), site, deferred };
                slot.object = None;
                slot.freed = Some(freed);
                slot.generation = slot.generation.wrapping_add(1);
                slots.1.push(object.slot);
            }
            live
        };
        if freed {
            self.access_point.store(object.word(), Ordering::Relaxed);
            let named = Named::RcuFree { object: object.word(), deferred };
            cx.trace_named(named, self.pointer_hash, || self.pointer.into());
        } else {
            let message = format!(
                "double free of {} {object:?} by {}/cpu{} at {}",
                self.pointer,
                cx.name(),
                cx.cpu(),
                crate::lockdep::site(site)
            );
            cx.sim().report(Some(cx), Violation::new("rcu:double-free", message));
        }
    }
}

/// An RCU-protected pointer (`struct foo __rcu *gp`) to objects of type `T`, with the objects it
/// may publish. The pointer word is a facade atomic, so loom judges the release/acquire pairing
/// of `rcu_assign_pointer` and `rcu_dereference`; the objects are generation-checked.
pub struct RcuPointer<T> {
    word: AtomicU64,
    objects: StdArc<Objects<T>>,
}

impl<T> fmt::Debug for RcuPointer<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RcuPointer").field("name", &self.objects.pointer).finish_non_exhaustive()
    }
}

/// What kept an [`RcuRef`]'s object alive when it was read.
#[derive(Clone, Copy, Debug)]
enum Protection {
    /// A read-side section.
    Section(Section),
    /// The update-side lock of this class.
    Lock(&'static str),
    /// Nothing (a dereference already reported).
    None,
}

/// An object read through an [`RcuPointer`]: the kernel's `p = rcu_dereference(gp)`. Each
/// [`RcuRef::get`] is a checked access to the object.
pub struct RcuRef<T> {
    objects: StdArc<Objects<T>>,
    object: RcuObj<T>,
    protection: Protection,
    dereferenced_at: &'static Location<'static>,
}

impl<T> Clone for RcuRef<T> {
    fn clone(&self) -> Self {
        RcuRef { objects: self.objects.clone(), ..*self }
    }
}

impl<T> fmt::Debug for RcuRef<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RcuRef({} {:?})", self.objects.pointer, self.object)
    }
}

/// A use of an RCU-protected object that was already freed. Also reported as a violation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UseAfterFree {
    /// The pointer's name.
    pub pointer: &'static str,
    /// The object, as `obj#slot.generation`.
    pub object: String,
}

impl fmt::Display for UseAfterFree {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "use after free of {} {}", self.pointer, self.object)
    }
}

impl std::error::Error for UseAfterFree {}

impl<T> RcuPointer<T> {
    /// A NULL pointer named `name` (`RCU_INITIALIZER(NULL)`); the name appears in every report.
    pub fn new(name: &'static str) -> RcuPointer<T> {
        RcuPointer {
            word: AtomicU64::new(0),
            objects: StdArc::new(Objects {
                pointer: name,
                pointer_hash: crate::trace::name_hash(name),
                access_point: AtomicU64::new(0),
                slots: crate::sync::BookLock::new((SmallVec::new(), SmallVec::new())),
            }),
        }
    }

    /// The pointer's name.
    pub fn name(&self) -> &'static str {
        self.objects.pointer
    }

    /// `kmalloc()` of an object this pointer may publish. Unpublished until
    /// [`RcuPointer::rcu_assign_pointer`].
    pub fn alloc(&self, value: T) -> RcuObj<T> {
        let mut slots = self.objects.slots();
        let (table, free) = &mut *slots;
        let object = Some(StdArc::new(value));
        let slot = match free.pop() {
            Some(slot) => {
                table[slot as usize].object = object;
                slot
            }
            None => {
                table.push(ObjSlot { generation: 0, object, freed: None });
                (table.len() - 1) as u32
            }
        };
        RcuObj { slot, generation: table[slot as usize].generation, _type: PhantomData }
    }

    /// Objects allocated and not yet freed (for a teardown check).
    pub fn live(&self) -> usize {
        self.objects.slots().0.iter().filter(|slot| slot.object.is_some()).count()
    }

    /// Mirrors `rcu_assign_pointer()`: publishes `object` (or NULL) with release ordering, so a
    /// reader that sees it also sees its initialisation.
    pub fn rcu_assign_pointer(&self, cx: &Cx, object: Option<RcuObj<T>>) {
        let word = object.map_or(0, RcuObj::word);
        self.word.store(word, Ordering::Release);
        let pointer = self.objects.pointer;
        cx.trace_named(Named::RcuAssign { object: word }, self.objects.pointer_hash, move || pointer.into());
    }

    /// Mirrors `rcu_access_pointer()`: the pointer's value, for a NULL test or a comparison,
    /// never for a dereference; legal anywhere.
    pub fn rcu_access_pointer(&self) -> Option<RcuObj<T>> {
        RcuObj::from_word(self.word.load(Ordering::Relaxed))
    }

    /// Mirrors `rcu_dereference()`: reads the pointer with acquire ordering (the kernel's
    /// dependency ordering). Outside a read-side section it is reported, as PROVE_RCU's
    /// "suspicious rcu_dereference_check() usage".
    #[track_caller]
    pub fn rcu_dereference(&self, cx: &Cx) -> Option<RcuRef<T>> {
        let site = Location::caller();
        let protection = match cx.rcu_section() {
            Some(section) => Protection::Section(section),
            None => {
                self.report_suspicious(cx, site, "rcu_dereference() outside a read-side section");
                Protection::None
            }
        };
        let word = self.word.load(Ordering::Acquire);
        self.reference(word, protection, site)
    }

    /// Mirrors `rcu_dereference_protected(p, lockdep_is_held(class))`: the update side's read,
    /// legal only with a lock of `class` held (reported otherwise); no ordering, as the lock
    /// orders it.
    #[track_caller]
    pub fn rcu_dereference_protected(&self, cx: &Cx, class: &'static str) -> Option<RcuRef<T>> {
        let site = Location::caller();
        if !cx.holds(class) {
            let what = format!("rcu_dereference_protected() without {class} held");
            self.report_suspicious(cx, site, &what);
        }
        let word = self.word.load(Ordering::Relaxed);
        self.reference(word, Protection::Lock(class), site)
    }

    /// Mirrors `rcu_dereference_check(p, lockdep_is_held(class))`: legal inside a read-side
    /// section or with a lock of `class` held.
    #[track_caller]
    pub fn rcu_dereference_check(&self, cx: &Cx, class: &'static str) -> Option<RcuRef<T>> {
        let site = Location::caller();
        let protection = match cx.rcu_section() {
            Some(section) => Protection::Section(section),
            None if cx.holds(class) => Protection::Lock(class),
            None => {
                let what =
                    format!("rcu_dereference_check() outside a read-side section and without {class} held");
                self.report_suspicious(cx, site, &what);
                Protection::None
            }
        };
        let word = self.word.load(Ordering::Acquire);
        self.reference(word, protection, site)
    }

    fn reference(
        &self,
        word: u64,
        protection: Protection,
        site: &'static Location<'static>,
    ) -> Option<RcuRef<T>> {
        let object = RcuObj::from_word(word)?;
        Some(RcuRef { objects: self.objects.clone(), object, protection, dereferenced_at: site })
    }

    fn report_suspicious(&self, cx: &Cx, site: &'static Location<'static>, what: &str) {
        if !prove_rcu(cx) {
            return;
        }
        let held: Vec<String> = cx.held_locks().iter().map(|a| a.class.clone()).collect();
        let message = format!(
            "WARNING: suspicious RCU usage\n{}: suspicious rcu_dereference_check() usage!\n\
             {what}: {} read by {}/cpu{} (rcu_read_lock() nesting {}, locks held: [{}])",
            crate::lockdep::site(site),
            self.objects.pointer,
            cx.name(),
            cx.cpu(),
            cx.rcu_read_depth(),
            held.join(", ")
        );
        cx.sim().report(Some(cx), Violation::new("rcu:dereference-outside-read-side", message));
    }

    /// `kfree()` at once: correct only when no reader can still hold the object (after
    /// [`synchronize_rcu`]); a reader that uses it later is a reported use after free.
    #[track_caller]
    pub fn kfree(&self, cx: &Cx, object: RcuObj<T>) {
        self.objects.free(cx, object, Location::caller(), false);
    }
}

impl<T: Send + Sync + 'static> RcuPointer<T> {
    /// Mirrors `kfree_rcu()`: frees the object from an RCU callback, after a grace period.
    #[track_caller]
    pub fn kfree_rcu(&self, cx: &Cx, object: RcuObj<T>) {
        let (objects, site) = (self.objects.clone(), Location::caller());
        call_rcu(cx, move |rcu_cx| objects.free(rcu_cx, object, site, true));
    }
}

impl<T> RcuRef<T> {
    /// The object this reference names (to unpublish or free it).
    pub fn object(&self) -> RcuObj<T> {
        self.object
    }

    /// An access to the object. A freed object is a reported use after free (naming the object,
    /// the section or lock it was read under, and where it was freed) and an error. A live object
    /// read in a section that has since ended is reported too: nothing keeps it alive any more.
    #[track_caller]
    pub fn get(&self, cx: &Cx) -> Result<StdArc<T>, UseAfterFree> {
        let site = Location::caller();
        self.objects.access_point.load(Ordering::Relaxed);
        match self.objects.lookup(self.object) {
            Ok(object) => {
                if let Protection::Section(section) = self.protection {
                    let open = cx.rcu_section().is_some_and(|current| current.id == section.id);
                    if !open && prove_rcu(cx) {
                        self.report_outside(cx, site);
                    }
                }
                Ok(object)
            }
            Err(freed) => {
                self.report_use_after_free(cx, site, freed);
                Err(UseAfterFree { pointer: self.objects.pointer, object: format!("{:?}", self.object) })
            }
        }
    }

    fn read_under(&self) -> String {
        let at = crate::lockdep::site(self.dereferenced_at);
        match self.protection {
            Protection::Section(section) => format!(
                "read at {at} in the read-side section begun at {}",
                crate::lockdep::site(section.begun_at)
            ),
            Protection::Lock(class) => format!("read at {at} under {class}"),
            Protection::None => format!("read at {at} outside any read-side section"),
        }
    }

    fn report_outside(&self, cx: &Cx, site: &'static Location<'static>) {
        let message = format!(
            "{}/cpu{} used {} {:?} at {} after the read-side section it was read in had ended \
             ({}): a grace period may free it at any moment",
            cx.name(),
            cx.cpu(),
            self.objects.pointer,
            self.object,
            crate::lockdep::site(site),
            self.read_under(),
        );
        cx.sim().report(Some(cx), Violation::new("rcu:use-outside-read-side", message));
    }

    fn report_use_after_free(&self, cx: &Cx, site: &'static Location<'static>, freed: Option<Freed>) {
        let how = match &freed {
            Some(freed) if freed.deferred => format!(
                "freed by an RCU callback queued by kfree_rcu() from {} at {}, after a grace period that \
                 this use was not inside",
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
        let message = format!(
            "BUG: KASAN: use-after-free: {}/cpu{} used {} {:?} at {}; it was {}; it was {how}",
            cx.name(),
            cx.cpu(),
            self.objects.pointer,
            self.object,
            crate::lockdep::site(site),
            self.read_under(),
        );
        cx.sim().report(Some(cx), Violation::new("rcu:use-after-free", message));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lockdep::ReportMode;
    use crate::locks::{Mutex, SpinLock};
    use crate::sim::SimConfig;

    fn sim() -> Sim {
        Sim::new(SimConfig::new(1).lockdep(ReportMode::Collect))
    }

    fn kinds(sim: &Sim) -> Vec<String> {
        sim.violations().into_iter().map(|v| v.kind.to_string()).collect()
    }

    #[test]
    fn sleeping_inside_a_read_side_section_is_reported_with_where_it_began() {
        let sim = sim();
        let cx = sim.cx("reader", 0);
        let mutex = Mutex::new("m", ());
        drop(mutex.lock(&cx));
        assert!(kinds(&sim).is_empty(), "a mutex outside a section is fine");
        cx.rcu_read_lock();
        let begun = line!() - 1;
        drop(mutex.lock(&cx));
        cx.rcu_read_unlock();
        let found = sim.violations();
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].kind, "rcu:sleep-in-read-side");
        assert!(found[0].message.contains("Illegal context switch in RCU read-side critical section"));
        assert!(found[0].message.contains(&format!("rcu.rs:{begun}")), "{}", found[0].message);
        assert!(found[0].message.contains("mutex_lock"));
    }

    #[test]
    fn nested_sections_end_at_the_outermost_unlock() {
        let sim = sim();
        let cx = sim.cx("reader", 0);
        cx.rcu_read_lock();
        cx.rcu_read_lock();
        cx.rcu_read_unlock();
        assert!(cx.rcu_read_lock_held());
        assert_eq!(cx.rcu_read_depth(), 1);
        cx.rcu_read_unlock();
        assert!(!cx.rcu_read_lock_held());
        cx.rcu_read_unlock();
        assert_eq!(kinds(&sim), vec!["rcu:unbalanced-unlock"]);
    }

    #[test]
    fn dereference_needs_a_section_or_the_named_lock() {
        let sim = sim();
        let cx = sim.cx("t", 0);
        let gp = RcuPointer::new("gp");
        let lock = SpinLock::new("gp_lock", ());
        gp.rcu_assign_pointer(&cx, Some(gp.alloc(5u32)));
        cx.rcu_read_lock();
        assert_eq!(*gp.rcu_dereference(&cx).expect("published").get(&cx).expect("live"), 5);
        cx.rcu_read_unlock();
        {
            let _held = lock.lock(&cx);
            assert!(gp.rcu_dereference_protected(&cx, "gp_lock").is_some());
            assert!(gp.rcu_dereference_check(&cx, "gp_lock").is_some());
        }
        assert!(kinds(&sim).is_empty(), "{:?}", sim.violations());
        assert!(gp.rcu_dereference(&cx).is_some());
        assert!(gp.rcu_dereference_protected(&cx, "gp_lock").is_some());
        let found = sim.violations();
        assert_eq!(kinds(&sim), vec!["rcu:dereference-outside-read-side"; 2]);
        assert!(found[0].message.contains("suspicious rcu_dereference_check() usage"));
        assert!(found[1].message.contains("without gp_lock held"), "{}", found[1].message);
    }

    #[test]
    fn prove_rcu_checks_are_off_with_lockdep() {
        let sim = Sim::new(SimConfig::new(1).without_lockdep());
        let cx = sim.cx("t", 0);
        let gp = RcuPointer::new("gp");
        gp.rcu_assign_pointer(&cx, Some(gp.alloc(1u8)));
        assert!(gp.rcu_dereference(&cx).is_some());
        assert!(sim.violations().is_empty());
    }

    #[test]
    fn kfree_without_a_grace_period_is_a_use_after_free_naming_section_and_free_site() {
        let sim = sim();
        let (reader, updater) = (sim.cx("reader", 0), sim.cx("updater", 1));
        let gp = RcuPointer::new("gp");
        let old = gp.alloc(1u32);
        gp.rcu_assign_pointer(&updater, Some(old));
        reader.rcu_read_lock();
        let begun = line!() - 1;
        let seen = gp.rcu_dereference(&reader).expect("published");
        gp.rcu_assign_pointer(&updater, Some(gp.alloc(2)));
        gp.kfree(&updater, old);
        let freed = line!() - 1;
        assert!(seen.get(&reader).is_err());
        reader.rcu_read_unlock();
        let found = sim.violations();
        assert_eq!(kinds(&sim), vec!["rcu:use-after-free"]);
        let message = &found[0].message;
        assert!(message.contains("gp obj#0.0"), "{message}");
        assert!(message.contains(&format!("rcu.rs:{begun}")), "{message}");
        assert!(message.contains(&format!("updater at sim-core/src/rcu.rs:{freed}")), "{message}");
        assert!(message.contains("without waiting for a grace period"), "{message}");
    }

    #[test]
    fn kfree_rcu_waits_for_the_readers_that_were_inside() {
        let sim = sim();
        let (reader, updater) = (sim.cx("reader", 0), sim.cx("updater", 1));
        let gp = RcuPointer::new("gp");
        let old = gp.alloc(1u32);
        gp.rcu_assign_pointer(&updater, Some(old));
        reader.rcu_read_lock();
        let seen = gp.rcu_dereference(&reader).expect("published");
        gp.rcu_assign_pointer(&updater, Some(gp.alloc(2)));
        gp.kfree_rcu(&updater, old);
        assert_eq!(sim.rcu_advance(), 0, "the reader still holds the grace period back");
        assert_eq!(*seen.get(&reader).expect("still live"), 1);
        reader.rcu_read_unlock();
        assert_eq!(sim.rcu_advance(), 1);
        assert_eq!(gp.live(), 1, "only the new object remains");
        assert!(sim.violations().is_empty(), "{:?}", sim.violations());
    }

    #[test]
    fn a_reader_keeping_its_pointer_past_the_section_is_reported_before_and_after_the_free() {
        let sim = sim();
        let (reader, updater) = (sim.cx("reader", 0), sim.cx("updater", 1));
        let gp = RcuPointer::new("gp");
        let old = gp.alloc(1u32);
        gp.rcu_assign_pointer(&updater, Some(old));
        reader.rcu_read_lock();
        let kept = gp.rcu_dereference(&reader).expect("published");
        reader.rcu_read_unlock();
        assert!(kept.get(&reader).is_ok(), "still allocated");
        assert_eq!(kinds(&sim), vec!["rcu:use-outside-read-side"]);
        gp.rcu_assign_pointer(&updater, None);
        gp.kfree_rcu(&updater, old);
        assert_eq!(sim.rcu_advance(), 1);
        assert!(kept.get(&reader).is_err());
        let found = sim.violations();
        assert_eq!(found[1].kind, "rcu:use-after-free");
        assert!(found[1].message.contains("kfree_rcu()"), "{}", found[1].message);
    }

    #[test]
    fn synchronize_rcu_runs_due_callbacks_and_inside_a_section_is_reported() {
        let sim = sim();
        let cx = sim.cx("updater", 0);
        let gp = RcuPointer::new("gp");
        let old = gp.alloc(1u32);
        gp.kfree_rcu(&cx, old);
        assert_eq!(sim.rcu_callbacks_pending(), 1);
        synchronize_rcu(&cx);
        assert_eq!((sim.rcu_callbacks_pending(), gp.live()), (0, 0));
        assert!(sim.violations().is_empty());
        cx.rcu_read_lock();
        synchronize_rcu(&cx);
        cx.rcu_read_unlock();
        assert_eq!(kinds(&sim), vec!["rcu:sleep-in-read-side"]);
        gp.kfree(&cx, old);
        assert_eq!(kinds(&sim)[1], "rcu:double-free");
    }

    #[test]
    #[should_panic(expected = "would wait forever")]
    fn synchronize_rcu_behind_a_reader_on_the_same_thread_is_a_harness_bug() {
        let sim = sim();
        let (reader, updater) = (sim.cx("reader", 0), sim.cx("updater", 1));
        reader.rcu_read_lock();
        synchronize_rcu(&updater);
    }

    #[test]
    fn synchronize_rcu_waits_for_a_reader_on_another_thread() {
        let sim = sim();
        let gp = std::sync::Arc::new(RcuPointer::new("gp"));
        let updater = sim.cx("updater", 0);
        let old = gp.alloc(7u32);
        gp.rcu_assign_pointer(&updater, Some(old));
        let (entered_tx, entered_rx) = std::sync::mpsc::channel();
        let reader = {
            let (gp, cx) = (gp.clone(), sim.cx("reader", 1));
            std::thread::spawn(move || {
                cx.rcu_read_lock();
                let seen = gp.rcu_dereference(&cx).expect("published");
                entered_tx.send(()).expect("send");
                std::thread::sleep(std::time::Duration::from_millis(20));
                let value = *seen.get(&cx).expect("the updater waits for this section");
                cx.rcu_read_unlock();
                value
            })
        };
        entered_rx.recv().expect("reader entered");
        gp.rcu_assign_pointer(&updater, None);
        synchronize_rcu(&updater);
        gp.kfree(&updater, old);
        assert_eq!(reader.join().expect("reader"), 7);
        assert!(sim.violations().is_empty(), "{:?}", sim.violations());
    }

    #[test]
    fn a_task_ending_inside_a_section_is_reported_and_does_not_block_grace_periods() {
        let sim = sim();
        let updater = sim.cx("updater", 0);
        {
            let reader = sim.cx("reader", 1);
            reader.rcu_read_lock();
            reader.rcu_read_lock();
        }
        assert_eq!(kinds(&sim), vec!["rcu:leaked-read-side"]);
        assert!(sim.violations()[0].message.contains("nesting 2"));
        synchronize_rcu(&updater);
        let quiet = sim.cx("quiet", 1);
        quiet.rcu_read_lock();
        quiet.rcu_read_unlock();
        drop(quiet);
        assert_eq!(sim.violations().len(), 1);
    }

    #[test]
    fn same_script_same_trace_hash() {
        let run = || {
            let sim = sim();
            let cx = sim.cx("t", 0);
            let gp = RcuPointer::new("gp");
            let old = gp.alloc(1u32);
            gp.rcu_assign_pointer(&cx, Some(old));
            cx.rcu_read_lock();
            let _ = gp.rcu_dereference(&cx);
            cx.rcu_read_unlock();
            gp.kfree_rcu(&cx, old);
            sim.rcu_advance();
            (sim.trace_hash(), sim.trace().len())
        };
        let (hash, events) = run();
        assert_eq!(run(), (hash, events));
        assert_eq!(events, 5, "lock, unlock, assign, grace period, free");
    }
}
