//! Typed trace events, their hash, and two drawings: a text swim-lane for the terminal and Chrome
//! trace-event JSON that Perfetto and chrome://tracing open.
//!
//! Every event carries a sequence number (logical time: the order events happened in, which is
//! what an interleaving is) and the virtual clock in nanoseconds. The trace always keeps a running
//! hash of every event, even when it stores none, so determinism can be checked for free.
//! Events are recorded under checker-private locks (see [`Trace`]): the trace is instrumentation
//! and adds no interleavings.

use std::borrow::Cow;
use std::collections::{BTreeMap, VecDeque};
use std::fmt::Write as _;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use serde::{Deserialize, Serialize};

use crate::lockdep::LockMode;

/// A simulated task (execution context) id, unique within one [`crate::Sim`].
pub type TaskId = u32;

/// A name that is usually a `&'static str` (a lock class, a call site) but survives a round trip
/// through an artifact file.
pub type Name = Cow<'static, str>;

/// What happened.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum EventKind {
    /// A lock was acquired (after any wait). `token` pairs it with its release.
    Acquired { class: Name, mode: LockMode, trylock: bool, token: u64 },
    /// A lock was released.
    Released { class: Name, token: u64 },
    /// An operation began (a kernel entry point: a syscall, an exit, a shrink).
    OpBegin { name: Name, detail: String },
    /// The operation ended with this result.
    OpEnd { name: Name, result: String },
    /// Fault injection failed a call at this site.
    Fault { site: Name },
    /// A context slept in virtual time.
    Sleep { what: Name, ns: u64 },
    /// Free text from a model (a listener pruned, a page told to the host): a `&'static str`
    /// is kept as it is, with no copy.
    Note { text: Name },
    /// A broken invariant or another checker finding.
    Violation { kind: String, message: String },
    /// An outermost `rcu_read_lock()` (`lock`) or `rcu_read_unlock()` (not `lock`): a read-side
    /// section's bounds. Nested calls are not traced.
    RcuReadSide { lock: bool },
    /// `rcu_assign_pointer()` published `object` (0 for NULL) in the named pointer.
    RcuAssign { pointer: Name, object: u64 },
    /// A grace period ended (`synchronize_rcu()` returned or the `Sim` advanced RCU), and this
    /// many callbacks became due.
    RcuGracePeriod { callbacks: u32 },
    /// An RCU-protected object was freed: by `kfree` at once, or by a callback (`deferred`).
    RcuFree { pointer: Name, object: u64, deferred: bool },
    /// A reference-count operation on the named object and the count it left.
    Kref { object: Name, op: KrefOp, count: u32 },
    /// A simulated interrupt handler began (`enter`) or ended on this context: `"hardirq"`,
    /// `"softirq"`.
    Irq { context: Name, enter: bool },
    /// An access to a convention-guarded field ([`crate::guarded::Guarded`]).
    Access { field: Name, write: bool },
}

/// The reference-count operations a trace records.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum KrefOp {
    /// `kref_init()`.
    Init,
    /// `kref_get()`.
    Get,
    /// A successful `kref_get_unless_zero()`.
    GetUnlessZero,
    /// `kref_put()` that did not release.
    Put,
    /// The last `kref_put()`: the release ran.
    Release,
}

/// One trace event.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    /// Logical time: the position of this event in the run.
    pub seq: u64,
    /// Virtual clock, nanoseconds.
    pub time_ns: u64,
    /// CPU of the context.
    pub cpu: u32,
    /// Task of the context.
    pub task: TaskId,
    /// What happened.
    pub kind: EventKind,
}

/// A lock event for [`Trace::record_lock`]: the class, its [`name_hash`], the acquisition token
/// and, for an acquisition, its mode and trylock flag (None: a release). The class's name is
/// passed by reference (where the lock's memo keeps it), so the hashing path, which never reads
/// the text, loads nothing for it: passed by value, its two words were loaded and kept on the
/// stack for the paths that build an event, on every lock event.
#[derive(Clone, Copy, Debug)]
pub(crate) struct LockRecord<'a> {
    pub(crate) class: &'a &'static str,
    pub(crate) class_hash: u64,
    pub(crate) token: u64,
    pub(crate) acquired: Option<(LockMode, bool)>,
}

/// The fields of an event about one named thing (a guarded field, a kref'd object, an irq
/// context, an RCU pointer) other than the name: what [`Trace::record_named`] hashes beside the
/// name's precomputed hash, and what [`Trace::record`] hashes beside the name's text hashed then,
/// so both give the same value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Named {
    /// [`EventKind::RcuAssign`].
    RcuAssign { object: u64 },
    /// [`EventKind::RcuFree`].
    RcuFree { object: u64, deferred: bool },
    /// [`EventKind::Kref`].
    Kref { op: KrefOp, count: u32 },
    /// [`EventKind::Irq`].
    Irq { enter: bool },
    /// [`EventKind::Access`].
    Access { write: bool },
}

impl Named {
    /// The event's tag word (kind and flags) and its object word, if it has one.
    fn words(self) -> (u64, Option<u64>) {
        match self {
            Named::RcuAssign { object } => (10, Some(object)),
            Named::RcuFree { object, deferred } => (12 | u64::from(deferred) << 8, Some(object)),
            Named::Kref { op, count } => (13 | (op as u64) << 8 | u64::from(count) << 32, None),
            Named::Irq { enter } => (14 | u64::from(enter) << 8, None),
            Named::Access { write } => (15 | u64::from(write) << 8, None),
        }
    }

    /// The event, named `name`.
    fn kind(self, name: Name) -> EventKind {
        match self {
            Named::RcuAssign { object } => EventKind::RcuAssign { pointer: name, object },
            Named::RcuFree { object, deferred } => EventKind::RcuFree { pointer: name, object, deferred },
            Named::Kref { op, count } => EventKind::Kref { object: name, op, count },
            Named::Irq { enter } => EventKind::Irq { context: name, enter },
            Named::Access { write } => EventKind::Access { field: name, write },
        }
    }

    /// The named event `kind` split into its fields and its name, if it is one.
    fn split(kind: &EventKind) -> Option<(Named, &str)> {
        Some(match kind {
            EventKind::RcuAssign { pointer, object } => (Named::RcuAssign { object: *object }, pointer),
            EventKind::RcuFree { pointer, object, deferred } => {
                (Named::RcuFree { object: *object, deferred: *deferred }, pointer)
            }
            EventKind::Kref { object, op, count } => (Named::Kref { op: *op, count: *count }, object),
            EventKind::Irq { context, enter } => (Named::Irq { enter: *enter }, context),
            EventKind::Access { field, write } => (Named::Access { write: *write }, field),
            _ => return None,
        })
    }
}

/// How much of the trace is kept in memory. The hash always covers every event.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum TraceMode {
    /// Keep no events (campaigns at full speed); the hash still covers them all.
    HashOnly,
    /// Keep the last N events (what a failure artifact stores).
    Tail(usize),
    /// Keep every event (teaching scenarios, replays).
    Full,
}

struct TraceInner {
    events: VecDeque<Event>,
    /// Each task's name, shared with the contexts made for it ([`Trace::name_task_shared`]);
    /// every name is the thread's interned copy of its text ([`interned_name`]).
    tasks: TaskNames,
}

/// Task ids below this are a model's pids (the kernel's PID_MAX_DEFAULT is 32768), whose names
/// [`TaskNames`] keeps in a vector indexed by the id; named tasks' ids
/// ([`crate::sim::NAMED_TASKS_FIRST`] on) and any larger pid are kept in a map.
const TASK_IDS_INDEXED: TaskId = 1 << 16;

/// Each task's name by id: a pid's by index (a context made per operation for a pid looks its
/// name up with no tree search), the rest in a `BTreeMap`. Iterated in ascending id order, as one
/// map would be: every indexed id is below every mapped one.
#[derive(Default)]
struct TaskNames {
    indexed: Vec<Option<std::sync::Arc<str>>>,
    mapped: BTreeMap<TaskId, std::sync::Arc<str>>,
}

impl TaskNames {
    fn get(&self, task: TaskId) -> Option<&std::sync::Arc<str>> {
        match task < TASK_IDS_INDEXED {
            true => self.indexed.get(task as usize).and_then(Option::as_ref),
            false => self.mapped.get(&task),
        }
    }

    /// Names `task` (the name it had, if any, dropped).
    fn insert(&mut self, task: TaskId, name: std::sync::Arc<str>) {
        if task < TASK_IDS_INDEXED {
            let index = task as usize;
            if index >= self.indexed.len() {
                self.indexed.resize(index + 1, None);
            }
            self.indexed[index] = Some(name);
        } else {
            self.mapped.insert(task, name);
        }
    }

    /// Every named task, ascending by id.
    fn iter(&self) -> impl Iterator<Item = (TaskId, &std::sync::Arc<str>)> {
        let indexed = self.indexed.iter().enumerate();
        let indexed = indexed.filter_map(|(task, name)| Some((task as TaskId, name.as_ref()?)));
        indexed.chain(self.mapped.iter().map(|(&task, name)| (task, name)))
    }
}

/// `a == b` for task names, the first bytes compared before the rest: names of one length are
/// common (`sendmsg`, `do_exit`) and most differ at once, so most comparisons make no call
/// (`Trace::name_task_shared`, and `Sim::cx`'s slots).
///
/// Up to 16 bytes (every task name a model gives), without a call: the two words (or halves of
/// a word) at either end, overlapping when the text is shorter than two, which together cover
/// every byte; `memcmp` cost about 20 instructions more per name compared (callgrind).
#[inline]
pub(crate) fn same_text(a: &str, b: &str) -> bool {
    same_bytes(a.as_bytes(), b.as_bytes())
}

/// [`same_text`] for byte strings (a fault plan's remembered site names,
/// `crate::fault::SiteMasks`).
#[inline]
pub(crate) fn same_bytes(a: &[u8], b: &[u8]) -> bool {
    let n = a.len();
    if n != b.len() {
        return false;
    }
    let word = |text: &[u8], at: usize| u64::from_le_bytes(text[at..at + 8].try_into().expect("8 bytes"));
    let half = |text: &[u8], at: usize| u32::from_le_bytes(text[at..at + 4].try_into().expect("4 bytes"));
    match n {
        0 => true,
        1..=3 => a[0] == b[0] && a[n / 2] == b[n / 2] && a[n - 1] == b[n - 1],
        4..=7 => half(a, 0) == half(b, 0) && half(a, n - 4) == half(b, n - 4),
        8..=16 => word(a, 0) == word(b, 0) && word(a, n - 8) == word(b, n - 8),
        _ => a[0] == b[0] && a == b,
    }
}

/// Slots of a thread's interned task names ([`interned_name`]): a model uses a handful, and
/// a name whose slot another name holds is simply made anew (the slot keeps the later one).
const NAMES_INTERNED: usize = 64;
const _: () = assert!(NAMES_INTERNED.is_power_of_two());

std::thread_local! {
    /// The task names this thread has made, each in the slot its text hashes to, shared by
    /// every world the thread builds. Checker bookkeeping (`std` only, never seen by loom or
    /// shuttle): it decides only which allocation holds a name's text, never the text, so no
    /// run can tell.
    static NAMES_MADE: std::cell::RefCell<[Option<std::sync::Arc<str>>; NAMES_INTERNED]> =
        const { std::cell::RefCell::new([const { None }; NAMES_INTERNED]) };
}

/// Where `name` is looked for in [`NAMES_MADE`]: its length and its first and last bytes (a
/// word or half a word at either end, as [`same_text`] reads them), mixed.
fn name_slot(name: &str) -> usize {
    let bytes = name.as_bytes();
    let n = bytes.len();
    let word = |at: usize| u64::from_le_bytes(bytes[at..at + 8].try_into().expect("8 bytes"));
    let half = |at: usize| u64::from(u32::from_le_bytes(bytes[at..at + 4].try_into().expect("4 bytes")));
    let key = match n {
        0 => 0,
        1..=3 => u64::from(bytes[0]) | u64::from(bytes[n / 2]) << 8 | u64::from(bytes[n - 1]) << 16,
        4..=7 => half(0) | half(n - 4) << 32,
        _ => word(0) ^ word(n - 8).rotate_left(29),
    };
    let key = (key ^ (n as u64).rotate_right(8)).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    (key >> (u64::BITS - NAMES_INTERNED.ilog2())) as usize
}

/// Slots [`interned_name`] looks at, from the name's own on: two texts with one slot share
/// the next.
const NAMES_PROBED: usize = 4;

/// The thread's shared copy of `name`, made the first time the thread sees the text: a
/// campaign builds a world per case, and each world named its tasks ("sendmsg", "do_exit")
/// and its observers with new strings, an allocation (and a free) per name per world, and a
/// pid renamed from one name to another searched the world's names for the new one.
///
/// The name's own slot is asked first, under a shared borrow, and the copy found there
/// returned (a context made per operation names its task with the text it had last time);
/// the other slots, and a first use, are a call of its own ([`interned_name_probed`]), made
/// after that borrow ends, so the common path keeps nothing live across a call and needs no
/// saved registers (it pushed and popped five, callgrind).
#[inline(never)]
pub(crate) fn interned_name(name: &str) -> std::sync::Arc<str> {
    match NAMES_MADE.with(|names| name_in_slot(&names.borrow(), name)) {
        Some(known) => known,
        None => interned_name_probed(name),
    }
}

/// The copy of `name` in its own slot of `names`, if that slot holds it.
#[inline(always)]
fn name_in_slot(
    names: &[Option<std::sync::Arc<str>>; NAMES_INTERNED],
    name: &str,
) -> Option<std::sync::Arc<str>> {
    names[name_slot(name)].as_ref().filter(|known| same_text(known, name)).cloned()
}

/// [`interned_name`] past the name's own slot: that slot and the next ones, then a new copy.
#[cold]
#[inline(never)]
fn interned_name_probed(name: &str) -> std::sync::Arc<str> {
    NAMES_MADE.with(|names| {
        let mut names = names.borrow_mut();
        let first = name_slot(name);
        for probe in 0..NAMES_PROBED {
            let slot = &mut names[(first + probe) % NAMES_INTERNED];
            match slot {
                Some(known) if same_text(known, name) => return known.clone(),
                Some(_) => {}
                None => return slot.insert(std::sync::Arc::from(name)).clone(),
            }
        }
        // Every slot probed holds another name: this one is made each time.
        std::sync::Arc::from(name)
    })
}

/// The event log of one [`crate::Sim`].
///
/// The sequence number and the hash, which every event updates, are atomics under a one-word
/// spin lock (`busy`): an acquisition is one atomic exchange and the release a plain store, half
/// what a `std` mutex costs, and every lock round trip of a model records two events. Kept events
/// and task names stay under a `std` mutex, taken inside the spin lock only when events are kept,
/// so they stay in sequence order. Neither is a loom or shuttle object: the trace adds no
/// interleavings, and those checkers never switch threads inside [`Trace::record`]. A trace
/// confined to one thread (the op-level simulation's) skips the spin lock.
pub struct Trace {
    mode: TraceMode,
    /// The thread the trace is confined to ([`Trace::confine_to_this_thread`]), 0 when any
    /// thread may record.
    owner: AtomicU64,
    /// [`Trace::owner`] when this trace only hashes (`TraceMode::HashOnly`), else 0: the one
    /// word a lock event or a call marker compares with the thread's key to know it may only
    /// hash, inline ([`Trace::only_hashes_here`]).
    hashing_owner: AtomicU64,
    /// Whether nothing reads this trace's task names: a hash-only trace its driver confined to
    /// one thread ([`Trace::confine_to_this_thread`]: an op-level campaign's hunting runs, whose
    /// case reports take names only with events). Then [`Trace::name_task_shared`] names no task.
    names_unread: AtomicBool,
    busy: AtomicBool,
    seq: AtomicU64,
    hash: AtomicU64,
    inner: crate::sync::BookLock<TraceInner>,
}

impl std::fmt::Debug for Trace {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Trace").field("mode", &self.mode).field("events", &self.len()).finish()
    }
}

/// Holds [`Trace::busy`]; releases it on drop.
struct Busy<'a>(&'a AtomicBool);

impl Busy<'_> {
    fn take(flag: &AtomicBool) -> Busy<'_> {
        let mut spins = 0u32;
        while flag.compare_exchange_weak(false, true, Ordering::Acquire, Ordering::Relaxed).is_err() {
            spins += 1;
            if spins.is_multiple_of(64) {
                std::thread::yield_now();
            } else {
                std::hint::spin_loop();
            }
        }
        Busy(flag)
    }
}

impl Drop for Busy<'_> {
    fn drop(&mut self) {
        self.0.store(false, Ordering::Release);
    }
}

/// This thread's key for [`Trace::owner`]: the address of a thread-local byte, never 0 and
/// unique among the threads alive (a thread made after another ended may reuse its address,
/// which only weakens the check of a confined trace recorded from a thread that outlived its
/// owner). A constant-initialised thread-local without a destructor, so reading the key is one
/// thread-pointer-relative address, no call and no lazy initialisation, on every event.
#[inline]
fn thread_key() -> u64 {
    thread_local! {
        static ANCHOR: u8 = const { 0 };
    }
    ANCHOR.with(|anchor| std::ptr::from_ref(anchor) as usize as u64)
}

/// The hash's starting value.
const HASH_SEED: u64 = 0xcbf2_9ce4_8422_2325;

/// A word-at-a-time hash (FxHash's mixing step) over a canonical little-endian encoding, so the
/// value is the same on every platform. Fast enough to run on every lock acquisition.
struct TraceHasher(u64);

impl TraceHasher {
    fn word(&mut self, word: u64) {
        self.0 = (self.0.rotate_left(5) ^ word).wrapping_mul(0x517c_c1b7_2722_0a95);
    }

    /// Every event's position: its clock and its CPU and task ([`lane_word`]), in one word of the
    /// hash's serial chain. The lane enters multiplied by an odd constant, off the chain, so two
    /// positions whose clocks differ in a few low bits never meet: their lanes' products would
    /// have to differ in exactly those bits. The sequence number is not hashed: every event
    /// moves the chain once, so the chain already counts them.
    fn header(&mut self, time_ns: u64, lane: u64) {
        self.word(time_ns ^ lane.wrapping_mul(0x9e37_79b9_7f4a_7c15));
    }

    /// The words of an acquisition (`acquired` has its mode and trylock flag) or a release: the
    /// class enters as its [`name_hash`], so a lock that keeps its name's hash never rehashes the
    /// text ([`Trace::record_lock`]).
    fn lock_event(&mut self, acquired: Option<(LockMode, bool)>, class_hash: u64, token: u64) {
        self.lock_event_tagged(lock_tag(acquired), class_hash, token);
    }

    /// [`TraceHasher::lock_event`] of the event whose [`lock_tag`] is `tag`: one word of the
    /// serial chain, the kind and the class (its hash rotated clear of the tag's low bits) with
    /// the token multiplied by an odd constant off the chain, so two events meet only where a
    /// product of tokens equals a difference of class hashes, as likely as any two hashes'.
    #[inline(always)]
    fn lock_event_tagged(&mut self, tag: u64, class_hash: u64, token: u64) {
        self.word(tag ^ class_hash.rotate_left(24) ^ token.wrapping_mul(0x9e37_79b9_7f4a_7c15));
    }

    /// The words of a call's begin or end ([`Trace::record_call`]): a tag with the name's hash,
    /// each argument word, then their count (so `[1, 2]` and `[1], [2]` differ).
    fn call_event(&mut self, end: bool, name: &CallName, words: impl IntoIterator<Item = u64>) {
        self.word((16 + u64::from(end)) ^ name.hash.rotate_left(24));
        let mut count = 0u64;
        for word in words {
            self.word(word);
            count += 1;
        }
        self.word(count);
    }

    /// The words of a named event: its tag with the name's [`name_hash`], then its object word
    /// if it has one, so the name's text is never hashed per event ([`Trace::record_named`]).
    fn named(&mut self, named: Named, name_hash: u64) {
        let (tag, object) = named.words();
        self.word(tag ^ name_hash.rotate_left(24));
        if let Some(object) = object {
            self.word(object);
        }
    }

    /// [`TraceHasher::text`] of the concatenation of `parts`, without making it: the same words
    /// (eight bytes at a time across the joints, the zero-padded rest, the whole length).
    fn text_parts(&mut self, parts: &[&str]) {
        let mut word = [0u8; 8];
        let mut filled = 0;
        let mut length = 0;
        for part in parts {
            for &byte in part.as_bytes() {
                word[filled] = byte;
                filled += 1;
                if filled == word.len() {
                    self.word(u64::from_le_bytes(word));
                    (word, filled) = ([0; 8], 0);
                }
            }
            length += part.len();
        }
        self.word(u64::from_le_bytes(word));
        self.word(length as u64);
    }

    fn text(&mut self, text: &str) {
        let bytes = text.as_bytes();
        let mut chunks = bytes.chunks_exact(8);
        for chunk in &mut chunks {
            self.word(u64::from_le_bytes(chunk.try_into().expect("eight bytes")));
        }
        let mut last = [0u8; 8];
        last[..chunks.remainder().len()].copy_from_slice(chunks.remainder());
        self.word(u64::from_le_bytes(last));
        self.word(bytes.len() as u64);
    }
}

/// An event's CPU and task in one word, as the hash takes them ([`TraceHasher::header`]): one
/// register where a lock event passes them on to a call of its own.
#[inline(always)]
fn lane_word(cpu: u32, task: TaskId) -> u64 {
    u64::from(cpu) << 32 | u64::from(task)
}

/// A lock event's kind in one word, as the trace hashes it: an acquisition's mode and trylock
/// flag (`acquired`), or a release (`None`). Made where the lock is taken or released, where the
/// mode is most often a constant, so the one out-of-line recording path takes a word, not the
/// mode and flag to combine ([`Trace::lock_hashed`]).
#[inline(always)]
pub(crate) fn lock_tag(acquired: Option<(LockMode, bool)>) -> u64 {
    match acquired {
        Some((mode, trylock)) => 1 | (mode as u64) << 8 | u64::from(trylock) << 16,
        None => 2,
    }
}

/// The mode and trylock flag a [`lock_tag`] was made of (`None`: a release).
pub(crate) fn lock_tag_parts(tag: u64) -> Option<(LockMode, bool)> {
    (tag & 1 == 1).then(|| (LockMode::from_index((tag >> 8) as u8), tag >> 16 & 1 == 1))
}

/// [`lane_word`]'s CPU and task.
fn lane_parts(lane: u64) -> (u32, TaskId) {
    ((lane >> 32) as u32, lane as TaskId)
}

/// A traced call's name with its hash computed at compile time, so recording the call folds in one
/// word instead of the name's text. Declare one per call site as a `static` or `const`:
/// `const GET: CallName = CallName::new("mb_cache_entry_get");`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CallName {
    name: &'static str,
    hash: u64,
}

impl CallName {
    /// The call `name`, its hash computed now (at compile time in a `const`).
    pub const fn new(name: &'static str) -> CallName {
        CallName { name, hash: const_name_hash(name) }
    }

    /// The call's name, as the kept event's text says it.
    pub const fn name(&self) -> &'static str {
        self.name
    }

    /// The name's hash, as [`Trace::record_named`] takes it.
    pub(crate) const fn hash(&self) -> u64 {
        self.hash
    }
}

/// A text argument of a traced call (a cache's name, say) as one word for
/// [`Trace::record_call`]: the same hash a lock class name gets.
pub fn text_word(text: &str) -> u64 {
    name_hash(text)
}

/// [`name_hash`] as a `const fn`, for [`CallName::new`] and [`crate::chain_cache::ClassKey::new`]:
/// the same words in the same order.
pub(crate) const fn const_name_hash(text: &str) -> u64 {
    const fn word(hash: u64, word: u64) -> u64 {
        (hash.rotate_left(5) ^ word).wrapping_mul(0x517c_c1b7_2722_0a95)
    }
    // Whole eight-byte chunks read as one word each (`split_first_chunk`), not byte by byte:
    // `ClassKey::new` runs this at run time too, for every lock object made.
    let mut rest = text.as_bytes();
    let mut hash = HASH_SEED;
    while let Some((chunk, tail)) = rest.split_first_chunk::<8>() {
        hash = word(hash, u64::from_le_bytes(*chunk));
        rest = tail;
    }
    let mut last = [0u8; 8];
    let mut i = 0;
    while i < rest.len() {
        last[i] = rest[i];
        i += 1;
    }
    hash = word(hash, u64::from_le_bytes(last));
    word(hash, text.len() as u64)
}

/// The hash of a name (a lock class) as lock events fold it in: computed once per lock object
/// ([`crate::chain_cache::ClassKey`]) instead of once per event.
pub(crate) fn name_hash(text: &str) -> u64 {
    let mut hasher = TraceHasher(HASH_SEED);
    hasher.text(text);
    hasher.0
}

/// Folds what an event says (after its header) into the trace hash: one flat match arm per
/// event kind, each with its own tag word, so the tags, which must stay distinct, are easy to
/// check side by side. A named event's name enters as its [`name_hash`], as
/// [`Trace::record_named`] folds it.
/// The one word an event made of a tag and a small field hashes as after its header, for the
/// events that are nothing else ([`Trace::record`]'s fast path); `None` for any other event.
#[inline]
fn fixed_word(kind: &EventKind) -> Option<u64> {
    match kind {
        EventKind::RcuReadSide { lock } => Some(9 | u64::from(*lock) << 8),
        EventKind::RcuGracePeriod { callbacks } => Some(11 | u64::from(*callbacks) << 8),
        _ => None,
    }
}

fn hash_kind(hasher: &mut TraceHasher, kind: &EventKind) {
    if let Some((named, name)) = Named::split(kind) {
        hasher.named(named, name_hash(name));
        return;
    }
    match kind {
        EventKind::Acquired { class, mode, trylock, token } => {
            hasher.lock_event(Some((*mode, *trylock)), name_hash(class), *token);
        }
        EventKind::Released { class, token } => hasher.lock_event(None, name_hash(class), *token),
        EventKind::OpBegin { name, detail } => {
            hasher.word(3);
            hasher.text(name);
            hasher.text(detail);
        }
        EventKind::OpEnd { name, result } => {
            hasher.word(4);
            hasher.text(name);
            hasher.text(result);
        }
        EventKind::Fault { site } => {
            // As `Trace::record_fault` hashes it from its parts.
            hasher.word(5);
            hasher.text(site);
        }
        EventKind::Sleep { what, ns } => {
            hasher.word(6);
            hasher.text(what);
            hasher.word(*ns);
        }
        EventKind::Note { text } => {
            hasher.word(7);
            hasher.text(text);
        }
        EventKind::Violation { kind, message } => {
            hasher.word(8);
            hasher.text(kind);
            hasher.text(message);
        }
        EventKind::RcuReadSide { .. } | EventKind::RcuGracePeriod { .. } => {
            hasher.word(fixed_word(kind).expect("a one-word event"));
        }
        EventKind::RcuAssign { .. }
        | EventKind::RcuFree { .. }
        | EventKind::Kref { .. }
        | EventKind::Irq { .. }
        | EventKind::Access { .. } => unreachable!("named events are hashed above"),
    }
}

impl Trace {
    /// An empty trace.
    pub fn new(mode: TraceMode) -> Trace {
        Trace {
            mode,
            owner: AtomicU64::new(0),
            hashing_owner: AtomicU64::new(0),
            names_unread: AtomicBool::new(false),
            busy: AtomicBool::new(false),
            seq: AtomicU64::new(0),
            hash: AtomicU64::new(HASH_SEED),
            inner: crate::sync::BookLock::new(TraceInner {
                events: VecDeque::new(),
                tasks: TaskNames::default(),
            }),
        }
    }

    /// This trace made new again in place, as [`Trace::new`]`(mode)` makes one, for a world kept
    /// between a campaign's cases: no events, no task names, the hash at its seed, the sequence
    /// at 0, confined to no thread; the event queue and the names' vector keep their room.
    /// Every field is named, so a field added to the trace does not compile here until its
    /// reset is decided.
    pub(crate) fn reset(&mut self, mode: TraceMode) {
        let Trace { mode: kept_mode, owner, hashing_owner, names_unread, busy, seq, hash, inner } = self;
        *kept_mode = mode;
        *owner.get_mut() = 0;
        *hashing_owner.get_mut() = 0;
        *names_unread.get_mut() = false;
        *busy.get_mut() = false;
        *seq.get_mut() = 0;
        *hash.get_mut() = HASH_SEED;
        let TraceInner { events, tasks: TaskNames { indexed, mapped } } = inner.get_mut();
        events.clear();
        indexed.clear();
        mapped.clear();
    }

    fn lock(&self) -> crate::sync::BookGuard<'_, TraceInner> {
        self.inner.lock()
    }

    /// Confines recording to the calling thread, for a world only one thread drives (the
    /// op-level simulation): recording then skips the one-word spin lock, which is half the
    /// atomic operations of a lock round trip. Recording from any other thread afterwards panics
    /// (a ksim bug: the hash would no longer be one thread's order of events).
    ///
    /// A hash-only trace so confined keeps no task names from then on ([`Trace::task_names`]
    /// gives those named before): its driver draws nothing and reports names only with events
    /// ([`crate::check::run_case`]), and naming a pid every time a context is made for it was
    /// a lock, a lookup and a reference count for nothing. A context keeps its own name either
    /// way; names are never hashed, so the trace's hash and events are the same.
    pub fn confine_to_this_thread(&self) {
        self.confine(self.mode == TraceMode::HashOnly);
    }

    /// [`Trace::confine_to_this_thread`] keeping task names, for a world that a shuttle
    /// execution or a loom model drives (its execution report names tasks, whatever the mode).
    pub(crate) fn confine_keeping_names(&self) {
        self.confine(false);
    }

    fn confine(&self, names_unread: bool) {
        self.owner.store(thread_key(), Ordering::Relaxed);
        let hashing = if self.mode == TraceMode::HashOnly { thread_key() } else { 0 };
        self.hashing_owner.store(hashing, Ordering::Relaxed);
        self.names_unread.store(names_unread, Ordering::Relaxed);
    }

    /// Whether recording is confined to one thread ([`Trace::confine_to_this_thread`]), so that
    /// it skips the spin lock.
    pub fn is_confined(&self) -> bool {
        self.owner.load(Ordering::Relaxed) != 0
    }

    /// Serializes a recording: the spin lock, or nothing when the trace is confined to this
    /// thread (then no other thread records, so nothing can interleave).
    #[inline]
    fn enter(&self) -> Option<Busy<'_>> {
        match self.owner.load(Ordering::Relaxed) {
            0 => Some(Busy::take(&self.busy)),
            owner => {
                assert_eq!(owner, thread_key(), "a trace confined to one thread was recorded from another");
                None
            }
        }
    }

    /// Records an event at the next sequence number.
    pub fn record(&self, time_ns: u64, cpu: u32, task: TaskId, kind: EventKind) {
        // An event of one word (an RCU read-side section's ends, two per section): the fixed-size
        // events' path, inline and without the text events' dispatch, with the same hash.
        if let Some(word) = fixed_word(&kind) {
            return self.record_with((time_ns, cpu, task), |hasher| hasher.word(word), || kind);
        }
        let _busy = self.enter();
        let seq = self.advance((time_ns, cpu, task), |hasher| hash_kind(hasher, &kind));
        if self.mode != TraceMode::HashOnly {
            self.keep(Event { seq, time_ns, cpu, task, kind });
        }
    }

    /// The one recording path of the fixed-size events: the next sequence number and the
    /// event's header into the hash, then `hash` folds the event's own words; when events are
    /// kept, `kind` builds the event to keep. The sequence number and the hash are updated in
    /// one [`Trace::enter`], so events hash in sequence order whichever thread records them.
    /// Building and keeping an event is a call of its own ([`Trace::keep_made`]), so the hashing
    /// path inlined into every lock round trip keeps no event's fields live.
    /// A trace confined to the recording thread records inline; any other goes through
    /// [`Trace::record_with_shared`], a call of its own ([`Trace::is_confined_here`]).
    #[inline]
    fn record_with(
        &self,
        at: (u64, u32, TaskId),
        hash: impl FnOnce(&mut TraceHasher),
        kind: impl FnOnce() -> EventKind,
    ) {
        if !self.is_confined_here() {
            return self.record_with_shared(at, hash, kind);
        }
        let seq = self.advance(at, hash);
        if self.mode != TraceMode::HashOnly {
            self.keep_made(seq, at, kind);
        }
    }

    /// [`Trace::record_with`] for a trace any thread may record (or, a ksim bug, confined to
    /// another thread, which [`Trace::enter`] reports): under the spin lock.
    #[inline(never)]
    fn record_with_shared(
        &self,
        at: (u64, u32, TaskId),
        hash: impl FnOnce(&mut TraceHasher),
        kind: impl FnOnce() -> EventKind,
    ) {
        let _busy = self.enter();
        let seq = self.advance(at, hash);
        if self.mode != TraceMode::HashOnly {
            self.keep_made(seq, at, kind);
        }
    }

    /// Whether the trace is confined to the calling thread, so that recording needs no spin
    /// lock: one load and one compare with the thread's key. Not confined, or confined to
    /// another thread, the caller takes [`Trace::enter`], which tells the two apart. Keeping
    /// the spin lock's guard off the confined path leaves the hashing inlined into every lock
    /// round trip no guard to test and drop, and its registers free. A world whose trace is so
    /// confined is used by this thread alone ([`crate::Sim::next_cx_serial`]).
    #[inline(always)]
    pub(crate) fn is_confined_here(&self) -> bool {
        self.owner.load(Ordering::Relaxed) == thread_key()
    }

    /// Whether this trace only hashes and is confined to the calling thread: an event recorded
    /// here is numbered and hashed, with no spin lock and nothing kept. One compare.
    #[inline(always)]
    fn only_hashes_here(&self) -> bool {
        self.hashing_owner.load(Ordering::Relaxed) == thread_key()
    }

    /// The next sequence number, with the event's header and `hash`'s words folded into the
    /// trace's hash; the caller holds [`Trace::enter`].
    #[inline]
    fn advance(&self, (time_ns, cpu, task): (u64, u32, TaskId), hash: impl FnOnce(&mut TraceHasher)) -> u64 {
        self.advance_lane(time_ns, lane_word(cpu, task), hash)
    }

    /// [`Trace::advance`] of an event at `time_ns` on lane `lane` ([`lane_word`]).
    #[inline(always)]
    fn advance_lane(&self, time_ns: u64, lane: u64, hash: impl FnOnce(&mut TraceHasher)) -> u64 {
        let seq = self.seq.load(Ordering::Relaxed) + 1;
        self.seq.store(seq, Ordering::Relaxed);
        let mut hasher = TraceHasher(self.hash.load(Ordering::Relaxed));
        hasher.header(time_ns, lane);
        hash(&mut hasher);
        self.hash.store(hasher.0, Ordering::Relaxed);
        seq
    }

    /// Keeps the event `kind` builds, numbered `seq`: [`Trace::record_with`]'s path for a trace
    /// that keeps events (the caller holds [`Trace::enter`], so kept events stay in order).
    #[cold]
    #[inline(never)]
    fn keep_made(
        &self,
        seq: u64,
        (time_ns, cpu, task): (u64, u32, TaskId),
        kind: impl FnOnce() -> EventKind,
    ) {
        self.keep(Event { seq, time_ns, cpu, task, kind: kind() });
    }

    /// Records a lock acquisition (`acquired` has its mode and trylock flag) or release, as
    /// [`Trace::record`] would an [`EventKind::Acquired`] or [`EventKind::Released`], with the
    /// same hash: a context's lock event in a trace any thread may record (in one confined to
    /// this thread, [`Trace::lock_hashed`] from the context's one call). It hashes fixed-size
    /// words only (the class enters as its precomputed `class_hash`) and builds an [`Event`]
    /// only when events are kept.
    ///
    /// Everything the paths past the hashing need (the spin lock's, the kept event's) passes
    /// to them as words in registers, the time and the lane ([`lane_word`]) already loaded for
    /// the hash and the class by reference: a tuple of three fields, or the class's two words,
    /// were stored on the stack before the confined test on every event (about eight
    /// instructions an event).
    #[inline(always)]
    pub(crate) fn record_lock(&self, (time_ns, cpu, task): (u64, u32, TaskId), lock: LockRecord<'_>) {
        let lane = lane_word(cpu, task);
        let LockRecord { class, class_hash, token, acquired } = lock;
        if !self.is_confined_here() {
            return self.record_lock_shared((time_ns, lane), class, class_hash, token, acquired);
        }
        self.record_lock_entered((time_ns, lane), class, class_hash, token, acquired);
    }

    /// [`Trace::record_lock`]'s hashing for a caller that is itself one call for every lock
    /// ([`crate::cx::Cx`]'s lock event): in a trace that only hashes, confined to this thread
    /// ([`Trace::only_hashes_here`]), the event numbered and hashed, and true. False, with
    /// nothing done, for any other trace: the caller then records through
    /// [`Trace::record_lock`], in a call it can make as a jump (taking no more than its own
    /// arguments), so that nothing stays live across a call and the hashing path saves no
    /// registers (nor keeps the class, which only a kept event reads).
    #[inline(always)]
    pub(crate) fn lock_hashed(
        &self,
        (time_ns, cpu, task): (u64, u32, TaskId),
        class_hash: u64,
        token: u64,
        tag: u64,
    ) -> bool {
        if !self.only_hashes_here() {
            return false;
        }
        let lane = lane_word(cpu, task);
        self.advance_lane(time_ns, lane, |hasher| hasher.lock_event_tagged(tag, class_hash, token));
        true
    }

    /// [`Trace::record_lock`] for a trace any thread may record: under the spin lock
    /// ([`Trace::enter`]), a call of its own. The record's fields pass as words in registers
    /// (a [`LockRecord`] passed whole went through memory, and the inlined path read its
    /// constant mode back from there).
    #[inline(never)]
    fn record_lock_shared(
        &self,
        (time_ns, lane): (u64, u64),
        class: &&'static str,
        class_hash: u64,
        token: u64,
        acquired: Option<(LockMode, bool)>,
    ) {
        let _busy = self.enter();
        self.record_lock_entered((time_ns, lane), class, class_hash, token, acquired);
    }

    /// [`Trace::record_lock`]'s numbering, hashing and keeping, the caller having made the
    /// recording exclusive (confined to this thread, or under the spin lock).
    #[inline(always)]
    fn record_lock_entered(
        &self,
        (time_ns, lane): (u64, u64),
        class: &&'static str,
        class_hash: u64,
        token: u64,
        acquired: Option<(LockMode, bool)>,
    ) {
        let seq = self.advance_lane(time_ns, lane, |hasher| hasher.lock_event(acquired, class_hash, token));
        if self.mode != TraceMode::HashOnly {
            self.keep_lock((seq, time_ns), lane, class, token, acquired);
        }
    }

    /// Keeps a lock event numbered `seq` at `time_ns` on lane `lane` ([`lane_word`]):
    /// [`Trace::record_lock`]'s path for a trace that keeps events. A call of its own taking
    /// its words in registers (not a record in memory), so the hashing path of every lock
    /// round trip stores nothing for it.
    #[cold]
    #[inline(never)]
    fn keep_lock(
        &self,
        (seq, time_ns): (u64, u64),
        lane: u64,
        class: &&'static str,
        token: u64,
        acquired: Option<(LockMode, bool)>,
    ) {
        let (cpu, task) = lane_parts(lane);
        let class = Cow::Borrowed(*class);
        let kind = match acquired {
            Some((mode, trylock)) => EventKind::Acquired { class, mode, trylock, token },
            None => EventKind::Released { class, token },
        };
        self.keep(Event { seq, time_ns, cpu, task, kind });
    }

    /// Records an event about a named thing ([`Named`]: a guarded field's access, a kref
    /// operation, an irq's entry or exit, an RCU publication or free) with the name's hash
    /// computed once by its owner, as [`Trace::record`] would the same event with the same hash.
    /// The name (`name`, which may clone an owned one) is asked for only when events are kept.
    ///
    /// As [`Trace::record_lock`]: the paths past the hashing (the spin lock's, the kept
    /// event's) take the event's words and `name` by value, in registers. Through
    /// [`Trace::record_with`], whose closures borrowed the event and the time, CPU and task,
    /// every named event (each guarded field's access) stored them on the stack before the
    /// confined test: about ten instructions an event (callgrind of the balloon's checks).
    #[inline(always)]
    pub(crate) fn record_named(
        &self,
        (time_ns, cpu, task): (u64, u32, TaskId),
        named: Named,
        name_hash: u64,
        name: impl FnOnce() -> Name,
    ) {
        let lane = lane_word(cpu, task);
        if !self.is_confined_here() {
            return self.record_named_shared((time_ns, lane), named, name_hash, name);
        }
        self.record_named_entered((time_ns, lane), named, name_hash, name);
    }

    /// [`Trace::record_named`] for a trace any thread may record: under the spin lock
    /// ([`Trace::enter`]), a call of its own.
    #[inline(never)]
    fn record_named_shared(
        &self,
        (time_ns, lane): (u64, u64),
        named: Named,
        name_hash: u64,
        name: impl FnOnce() -> Name,
    ) {
        let _busy = self.enter();
        self.record_named_entered((time_ns, lane), named, name_hash, name);
    }

    /// [`Trace::record_named`]'s numbering, hashing and keeping, the caller having made the
    /// recording exclusive (confined to this thread, or under the spin lock).
    #[inline(always)]
    fn record_named_entered(
        &self,
        (time_ns, lane): (u64, u64),
        named: Named,
        name_hash: u64,
        name: impl FnOnce() -> Name,
    ) {
        let seq = self.advance_lane(time_ns, lane, |hasher| hasher.named(named, name_hash));
        if self.mode != TraceMode::HashOnly {
            self.keep_named((seq, time_ns), lane, named, name);
        }
    }

    /// Keeps a named event numbered `seq` at `time_ns` on lane `lane` ([`lane_word`]), its name
    /// made now: [`Trace::record_named`]'s path for a trace that keeps events.
    #[cold]
    #[inline(never)]
    fn keep_named(&self, (seq, time_ns): (u64, u64), lane: u64, named: Named, name: impl FnOnce() -> Name) {
        let (cpu, task) = lane_parts(lane);
        self.keep(Event { seq, time_ns, cpu, task, kind: named.kind(name()) });
    }

    /// Records that the fault plan failed a call at `site` ([`EventKind::Fault`]), hashed as
    /// [`Trace::record`] hashes that event, the site's text (`slab:taskstats`) folded in from its
    /// two parts without being made; the event is built only when events are kept, so a campaign
    /// formats nothing per injected fault.
    pub(crate) fn record_fault(&self, at: (u64, u32, TaskId), site: crate::fault::SiteRef<'_>) {
        self.record_with(
            at,
            |hasher| {
                hasher.word(5);
                hasher.text_parts(&[site.prefix(), site.name]);
            },
            || EventKind::Fault { site: site.to_string().into() },
        );
    }

    /// Records the start (`end` false) or end of a call as fixed-size words: the call's
    /// precomputed name hash and `words` (its arguments, or its result, as integers). The text
    /// an [`EventKind::OpBegin`] or [`EventKind::OpEnd`] shows is built by `text` only when
    /// events are kept, so a campaign that keeps none formats nothing. The hash is the same in
    /// every mode; it differs from [`Trace::record`]'s hash of the same event built as text.
    ///
    /// Inlined, a confined hash-only trace (a campaign's) hashes the words and returns; any other
    /// trace takes [`Trace::record_call_kept`], a cold call of its own. Through
    /// [`Trace::record_with`] every marker laid out the event's parts (the name, `end`, `text`'s
    /// captures) on the stack before it knew whether it would build the event: about 15 stores
    /// a marker (callgrind of the mbcache bench's `MBCACHE_PROFILE_PAIRS`).
    #[inline]
    pub fn record_call(
        &self,
        at: (u64, u32, TaskId),
        end: bool,
        name: &CallName,
        words: impl IntoIterator<Item = u64>,
        text: impl FnOnce() -> String,
    ) {
        if self.only_hashes_here() {
            self.advance(at, |hasher| hasher.call_event(end, name, words));
            return;
        }
        self.record_call_kept(at, end, name, words, text);
    }

    /// [`Trace::record_call`] for a trace that keeps events or is not confined to this thread:
    /// [`Trace::record_with`], with the event built only when it is kept.
    #[cold]
    #[inline(never)]
    fn record_call_kept(
        &self,
        at: (u64, u32, TaskId),
        end: bool,
        name: &CallName,
        words: impl IntoIterator<Item = u64>,
        text: impl FnOnce() -> String,
    ) {
        self.record_with(
            at,
            |hasher| hasher.call_event(end, name, words),
            || {
                let name = Cow::Borrowed(name.name);
                if end {
                    EventKind::OpEnd { name, result: text() }
                } else {
                    EventKind::OpBegin { name, detail: text() }
                }
            },
        );
    }

    /// Keeps `event` as the mode says (the caller holds [`Trace::busy`], so kept events stay in
    /// sequence order).
    fn keep(&self, event: Event) {
        match self.mode {
            TraceMode::HashOnly => {}
            TraceMode::Tail(keep) => {
                let mut inner = self.lock();
                if inner.events.len() >= keep {
                    inner.events.pop_front();
                }
                if keep > 0 {
                    inner.events.push_back(event);
                }
            }
            TraceMode::Full => self.lock().events.push_back(event),
        }
    }

    /// Whether events are kept (not only hashed), so that building their text is worth it.
    pub fn keeps_events(&self) -> bool {
        self.mode != TraceMode::HashOnly
    }

    /// Names a task for the drawings.
    pub fn name_task(&self, task: TaskId, name: &str) {
        self.name_task_shared(task, name);
    }

    /// [`Trace::name_task`], returning the name as the trace keeps it, for the context made for
    /// the task to share: most contexts are made for a task already named so (one per
    /// operation), which then costs no new string; any other name is the thread's interned
    /// copy ([`interned_name`]), so a rename, or a new world's first use of a name, allocates
    /// none either.
    #[inline]
    pub(crate) fn name_task_shared(&self, task: TaskId, name: &str) -> std::sync::Arc<str> {
        if self.names_unread.load(Ordering::Relaxed) {
            return interned_name(name);
        }
        self.name_task_kept(task, name)
    }

    /// [`Trace::name_task_shared`] for a trace whose task names are read: a call of its own,
    /// so that a campaign's (names unread) is a load, a test and a tail call, with no frame
    /// (its registers saved and restored for this path: 14 instructions a context, callgrind).
    #[inline(never)]
    fn name_task_kept(&self, task: TaskId, name: &str) -> std::sync::Arc<str> {
        let mut inner = self.lock();
        if let Some(known) = inner.tasks.get(task) {
            if same_text(known, name) {
                return known.clone();
            }
        }
        let shared = interned_name(name);
        inner.tasks.insert(task, shared.clone());
        shared
    }

    /// [`Trace::name_task_shared`] for a context that keeps `name`, the name the trace gave it
    /// when it was made ([`crate::Cx::renew`]): `None` when the trace still names the task with
    /// that very string (nothing to do: no text compared, no reference counted), else the name
    /// to keep, as [`Trace::name_task_shared`] gives it (another context renamed the pid).
    ///
    /// Inlined: a campaign's names are unread, and its kept contexts are renewed once or twice
    /// an operation; the look at the trace's names a call of its own.
    #[inline]
    pub(crate) fn rename_task_shared(
        &self,
        task: TaskId,
        name: &std::sync::Arc<str>,
    ) -> Option<std::sync::Arc<str>> {
        // Names unread: the context keeps its own, as the trace would name the task again.
        if self.names_unread.load(Ordering::Relaxed) {
            return None;
        }
        self.rename_task_read(task, name)
    }

    /// [`Trace::rename_task_shared`] for a trace whose task names are read.
    #[inline(never)]
    fn rename_task_read(&self, task: TaskId, name: &std::sync::Arc<str>) -> Option<std::sync::Arc<str>> {
        let same = self.lock().tasks.get(task).is_some_and(|known| std::sync::Arc::ptr_eq(known, name));
        (!same).then(|| self.name_task_shared(task, name))
    }

    /// The task names, by id.
    pub fn task_names(&self) -> BTreeMap<TaskId, String> {
        self.lock().tasks.iter().map(|(task, name)| (task, name.to_string())).collect()
    }

    /// The hash of every event recorded so far (over a canonical little-endian encoding).
    pub fn hash(&self) -> u64 {
        let _busy = Busy::take(&self.busy);
        self.hash.load(Ordering::Relaxed)
    }

    /// How many events have been recorded (kept or not).
    pub fn len(&self) -> u64 {
        let _busy = Busy::take(&self.busy);
        self.seq.load(Ordering::Relaxed)
    }

    /// Whether nothing has been recorded.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The events kept, oldest first.
    pub fn events(&self) -> Vec<Event> {
        self.lock().events.iter().cloned().collect()
    }

    /// The last `count` events kept.
    pub fn tail(&self, count: usize) -> Vec<Event> {
        let inner = self.lock();
        let skip = inner.events.len().saturating_sub(count);
        inner.events.iter().skip(skip).cloned().collect()
    }
}

fn describe(kind: &EventKind) -> String {
    match kind {
        EventKind::Acquired { class, mode, trylock, .. } => {
            let verb = match mode {
                LockMode::Read => "down_read",
                LockMode::Write => "down_write",
                LockMode::SpinIrq => "lock_irq",
                LockMode::SpinBh => "lock_bh",
                LockMode::BitSpin => "bit_spin_lock",
                LockMode::Spin | LockMode::Mutex => "lock",
                LockMode::ReadRecursive => "read_lock",
            };
            format!("{}{verb}({class})", if *trylock { "try" } else { "" })
        }
        EventKind::Released { class, .. } => format!("unlock({class})"),
        EventKind::OpBegin { name, detail } if detail.is_empty() => format!("> {name}"),
        EventKind::OpBegin { name, detail } => format!("> {name} {detail}"),
        EventKind::OpEnd { name, result } => format!("< {name} = {result}"),
        EventKind::Fault { site } => format!("FAULT {site}"),
        EventKind::Sleep { what, ns } => format!("sleep {what} {}ms", ns / 1_000_000),
        EventKind::Note { text } => text.to_string(),
        EventKind::Violation { kind, message } => format!("!! {kind}: {message}"),
        EventKind::RcuReadSide { lock: true } => "rcu_read_lock".to_string(),
        EventKind::RcuReadSide { lock: false } => "rcu_read_unlock".to_string(),
        EventKind::RcuAssign { pointer, object: 0 } => format!("rcu_assign_pointer({pointer}, NULL)"),
        EventKind::RcuAssign { pointer, object } => {
            format!("rcu_assign_pointer({pointer}, {})", object_name(*object))
        }
        EventKind::RcuGracePeriod { callbacks } => format!("grace period ({callbacks} callbacks)"),
        EventKind::RcuFree { pointer, object, deferred } => {
            let how = if *deferred { "rcu callback kfree" } else { "kfree" };
            format!("{how}({pointer} {})", object_name(*object))
        }
        EventKind::Kref { object, op, count } => {
            let verb = match op {
                KrefOp::Init => "kref_init",
                KrefOp::Get => "kref_get",
                KrefOp::GetUnlessZero => "kref_get_unless_zero",
                KrefOp::Put => "kref_put",
                KrefOp::Release => "kref_put+release",
            };
            format!("{verb}({object}) = {count}")
        }
        EventKind::Irq { context, enter: true } => format!("<{context}>"),
        EventKind::Irq { context, enter: false } => format!("</{context}>"),
        EventKind::Access { field, write: true } => format!("write {field}"),
        EventKind::Access { field, write: false } => format!("read {field}"),
    }
}

/// An RCU object's trace word (`(slot + 1) << 32 | generation`, 0 for NULL) as `obj#slot.generation`,
/// the spelling slab handles use.
fn object_name(word: u64) -> String {
    match word >> 32 {
        0 => "NULL".to_string(),
        slot => format!("obj#{}.{}", slot - 1, word as u32),
    }
}

/// Lanes that narrate a run rather than run kernel code: the harness's operation markers
/// ([`crate::check::OP_LANE`]) and a teaching scenario's step notes ([`SCENARIO_LANE`]). The text
/// drawing makes their events step headings, never lanes.
pub const STEP_LANES: [&str; 2] = [crate::check::OP_LANE, SCENARIO_LANE];

/// The lane a teaching scenario writes its step notes on (`sim.cx(SCENARIO_LANE, 0).note(..)`).
pub const SCENARIO_LANE: &str = "scenario";

/// Lock classes whose names start with this are the checkers' own (a ledger, say), not the
/// kernel's: the text drawing leaves them out.
pub const CHECKER_LOCK_PREFIX: &str = "ksim:";

/// The text drawing's default width, in columns.
pub const TEXT_WIDTH: usize = 100;
/// Narrowest text drawing: below this, nothing is readable.
const TEXT_WIDTH_MIN: usize = 40;
/// The left margin of every row: the sequence number and a space.
const SEQ_COLUMN: usize = 6;
/// What separates two lanes.
const LANE_GAP: &str = " | ";
/// Narrowest lane: with more lanes than fit at this width, a step is drawn as a list.
const LANE_WIDTH_MIN: usize = 16;

/// One step of a run: what the narration said it was, and the events until the next step (the
/// step's own end marker among them, drawn where it happened).
struct Step<'a> {
    title: String,
    events: Vec<&'a Event>,
}

/// Whether `task` runs kernel code: not task 0 (the checkers' context), not a narrating lane,
/// not a lane whose name marks it as ksim's own.
fn is_kernel_task(task: TaskId, names: &BTreeMap<TaskId, String>) -> bool {
    let name = names.get(&task).map_or("", String::as_str);
    task != 0 && !STEP_LANES.contains(&name) && !name.starts_with("ksim")
}

/// Whether `event` is the checkers' bookkeeping (a `ksim:` lock), not the kernel's.
fn is_checker_event(event: &Event) -> bool {
    match &event.kind {
        EventKind::Acquired { class, .. } | EventKind::Released { class, .. } => {
            class.starts_with(CHECKER_LOCK_PREFIX)
        }
        _ => false,
    }
}

/// The title a narrating lane's event gives a new step (None: the event is no step marker).
fn step_title(kind: &EventKind) -> Option<String> {
    match kind {
        EventKind::OpBegin { name, detail } if detail.is_empty() => Some(name.to_string()),
        EventKind::OpBegin { detail, .. } => Some(detail.clone()),
        EventKind::Note { text } => Some(text.to_string()),
        _ => None,
    }
}

/// Splits the events into steps at each operation marker or scenario note; events before the
/// first marker are the "setup" step.
fn split_steps<'a>(events: &'a [Event], names: &BTreeMap<TaskId, String>) -> Vec<Step<'a>> {
    let mut steps = vec![Step { title: "setup".to_string(), events: Vec::new() }];
    for event in events {
        let narrating = STEP_LANES.contains(&names.get(&event.task).map_or("", String::as_str));
        if let Some(title) = step_title(&event.kind).filter(|_| narrating) {
            steps.push(Step { title, events: Vec::new() });
            continue;
        }
        if !is_checker_event(event) {
            steps.last_mut().expect("a step").events.push(event);
        }
    }
    if steps.len() > 1 && steps[0].events.is_empty() {
        steps.remove(0);
    }
    steps
}

/// Breaks `text` into lines of at most `width` characters, at spaces where it can, so nothing is
/// ever cut off.
pub fn wrap(text: &str, width: usize) -> Vec<String> {
    let width = width.max(1);
    let mut lines = Vec::new();
    let mut line = String::new();
    for word in text.split(' ') {
        let mut word: Vec<char> = word.chars().collect();
        let used = line.chars().count();
        if used > 0 && used + 1 + word.len() <= width {
            line.push(' ');
            line.extend(&word);
            continue;
        }
        if used > 0 {
            lines.push(std::mem::take(&mut line));
        }
        while word.len() > width {
            lines.push(word.drain(..width).collect());
        }
        line.extend(&word);
    }
    lines.push(line);
    lines
}

/// Draws events as a story, at most `width` columns wide (at least 40): each step of the run (an
/// operation of a case, a step of a scenario) is a heading; under it, one lane per kernel task
/// that takes part in the step, each event whole (wrapped, never cut) under the task that ran it,
/// and a lane shows `|` while its task holds a lock. A violation is drawn where it was recorded:
/// in the lane of the task that tripped it, or across the width when the checkers found it
/// between operations. The checkers' own contexts and locks are not drawn.
pub fn render_text(events: &[Event], names: &BTreeMap<TaskId, String>, width: usize) -> String {
    let width = width.max(TEXT_WIDTH_MIN);
    let mut held: BTreeMap<TaskId, u32> = BTreeMap::new();
    let mut out = String::new();
    let mut clock = 0;
    for step in split_steps(events, names) {
        for (index, line) in wrap(&step.title, width - 3).into_iter().enumerate() {
            let _ = writeln!(out, "{} {line}", if index == 0 { "==" } else { "  " });
        }
        let lanes = step_lanes(&step, names, width);
        if !lanes.is_empty() {
            draw_lane_header(&mut out, &lanes, names, width);
        }
        for event in &step.events {
            if event.time_ns != clock {
                clock = event.time_ns;
                let _ = writeln!(out, "{:>w$}clock {}ns", "", clock, w = SEQ_COLUMN);
            }
            draw_event(&mut out, event, &lanes, names, width, &mut held);
        }
        out.push('\n');
    }
    out
}

/// A lane of one step: a kernel task, and the CPU of its first event there (named once, in the
/// lane's title; an event on another CPU says so).
#[derive(Clone, Copy)]
struct Lane {
    task: TaskId,
    cpu: u32,
}

/// The kernel tasks that take part in `step`, in order of their first event, if they fit side by
/// side in `width`; none (every event drawn across the width, lane named) if they do not.
fn step_lanes(step: &Step<'_>, names: &BTreeMap<TaskId, String>, width: usize) -> Vec<Lane> {
    let mut lanes: Vec<Lane> = Vec::new();
    for event in &step.events {
        if is_kernel_task(event.task, names) && !lanes.iter().any(|lane| lane.task == event.task) {
            lanes.push(Lane { task: event.task, cpu: event.cpu });
        }
    }
    let fits = SEQ_COLUMN + lanes.len() * (LANE_WIDTH_MIN + LANE_GAP.len()) <= width;
    if fits {
        lanes
    } else {
        Vec::new()
    }
}

/// Each lane's width when `count` lanes share `width` columns.
fn lane_width(count: usize, width: usize) -> usize {
    (width - SEQ_COLUMN + LANE_GAP.len()) / count.max(1) - LANE_GAP.len()
}

/// A lane's title: the task's name, with its pid when two lanes of the step share a name (a
/// context made by name has no pid: it is the one called `ctx`), and the CPU it runs on.
fn lane_title(task: TaskId, cpu: u32, lanes: &[TaskId], names: &BTreeMap<TaskId, String>) -> String {
    let name = names.get(&task).cloned().unwrap_or_else(|| format!("task{task}"));
    let shared = lanes.iter().filter(|&&other| names.get(&other) == names.get(&task)).count() > 1;
    match (shared, task >= crate::sim::NAMED_TASKS_FIRST) {
        (false, _) => format!("{name} (cpu{cpu})"),
        (true, false) => format!("{name} pid {task} (cpu{cpu})"),
        (true, true) => format!("{name} ctx (cpu{cpu})"),
    }
}

fn draw_lane_header(out: &mut String, lanes: &[Lane], names: &BTreeMap<TaskId, String>, width: usize) {
    let lane = lane_width(lanes.len(), width);
    let tasks: Vec<TaskId> = lanes.iter().map(|lane| lane.task).collect();
    let titles: Vec<Vec<String>> =
        lanes.iter().map(|l| wrap(&lane_title(l.task, l.cpu, &tasks, names), lane)).collect();
    draw_cells(out, "seq", &titles, lane);
    let rule: Vec<String> = lanes.iter().map(|_| "-".repeat(lane)).collect();
    let _ = writeln!(out, "{:>w$}{}", "", rule.join(LANE_GAP), w = SEQ_COLUMN);
}

/// Writes one row of lanes, each cell's lines under one another; `margin` goes in the sequence
/// column of the first line.
fn draw_cells(out: &mut String, margin: &str, cells: &[Vec<String>], lane: usize) {
    let rows = cells.iter().map(Vec::len).max().unwrap_or(1);
    for row in 0..rows {
        let mut line = format!("{:>w$} ", if row == 0 { margin } else { "" }, w = SEQ_COLUMN - 1);
        for (index, cell) in cells.iter().enumerate() {
            if index > 0 {
                line.push_str(LANE_GAP);
            }
            let text = cell.get(row).map_or("", String::as_str);
            let _ = write!(line, "{text:<lane$}");
        }
        let _ = writeln!(out, "{}", line.trim_end());
    }
}

/// Writes `text` across the width, wrapped, with `seq` in the margin.
fn draw_wide(out: &mut String, seq: Option<u64>, text: &str, width: usize) {
    let margin = seq.map_or(String::new(), |seq| seq.to_string());
    for (index, line) in wrap(text, width - SEQ_COLUMN).into_iter().enumerate() {
        let margin = if index == 0 { margin.as_str() } else { "" };
        let _ = writeln!(out, "{margin:>w$} {line}", w = SEQ_COLUMN - 1);
    }
}

/// Draws one event in its task's lane (or across the width when its task has no lane in this
/// step) and keeps each task's count of locks held, for the `|` bars.
fn draw_event(
    out: &mut String,
    event: &Event,
    lanes: &[Lane],
    names: &BTreeMap<TaskId, String>,
    width: usize,
    held: &mut BTreeMap<TaskId, u32>,
) {
    if let EventKind::Released { .. } = event.kind {
        let count = held.entry(event.task).or_default();
        *count = count.saturating_sub(1);
    }
    match lanes.iter().position(|lane| lane.task == event.task) {
        Some(at) => {
            let mut text = describe(&event.kind);
            if event.cpu != lanes[at].cpu {
                let _ = write!(text, " on cpu{}", event.cpu);
            }
            let lane = lane_width(lanes.len(), width);
            let cells: Vec<Vec<String>> = lanes
                .iter()
                .enumerate()
                .map(|(index, other)| {
                    if index == at {
                        wrap(&text, lane)
                    } else if held.get(&other.task).is_some_and(|&count| count > 0) {
                        vec!["|".to_string()]
                    } else {
                        Vec::new()
                    }
                })
                .collect();
            draw_cells(out, &event.seq.to_string(), &cells, lane);
        }
        None if is_kernel_task(event.task, names) => {
            let name = names.get(&event.task).cloned().unwrap_or_else(|| format!("task{}", event.task));
            let text = format!("[{name} cpu{}] {}", event.cpu, describe(&event.kind));
            draw_wide(out, Some(event.seq), &text, width);
        }
        None => {
            let text = match &event.kind {
                EventKind::OpEnd { result, .. } => format!("=> {result}"),
                other => describe(other),
            };
            draw_wide(out, Some(event.seq), &text, width);
        }
    }
    if let EventKind::Acquired { .. } = event.kind {
        *held.entry(event.task).or_default() += 1;
    }
}

/// The violations among `events`, cause first. The state checks (the invariants, run by the
/// checkers between operations) describe a state that was already broken before any event
/// tripped over it, so the first such finding names the root cause; without one, the first
/// violation recorded does. Every violation of the root's kind follows it; the rest are side
/// effects, in the order they were recorded.
pub fn violations_cause_first<'a>(events: &'a [Event], names: &BTreeMap<TaskId, String>) -> Vec<&'a Event> {
    let kind_of = |event: &Event| match &event.kind {
        EventKind::Violation { kind, .. } => Some(kind.clone()),
        _ => None,
    };
    let found: Vec<&Event> = events.iter().filter(|e| kind_of(e).is_some()).collect();
    let Some(root) = found.iter().find(|e| !is_kernel_task(e.task, names)).or(found.first()).copied() else {
        return found;
    };
    let root_kind = kind_of(root);
    let mut ordered = vec![root];
    ordered.extend(found.iter().copied().filter(|e| e.seq != root.seq && kind_of(e) == root_kind));
    ordered.extend(found.iter().copied().filter(|e| kind_of(e) != root_kind));
    ordered
}

/// Chrome trace-event JSON (the "JSON Array/Object Format" Perfetto reads). Timestamps are the
/// logical sequence numbers, in microseconds, so an interleaving reads left to right one step per
/// event; the virtual clock is in each event's args. Lock holds are async slices keyed by their
/// acquisition token, so holds that overlap without nesting (A, B, unlock A, unlock B) still draw
/// correctly; operations are duration slices; the rest are instants.
pub fn render_chrome(events: &[Event], names: &BTreeMap<TaskId, String>) -> serde_json::Value {
    use serde_json::json;
    let mut out = Vec::new();
    let mut tasks: Vec<TaskId> = events.iter().map(|e| e.task).collect();
    tasks.sort_unstable();
    tasks.dedup();
    out.push(json!({"name": "process_name", "ph": "M", "pid": 1, "tid": 0, "args": {"name": "ksim"}}));
    for task in &tasks {
        let name = names.get(task).cloned().unwrap_or_else(|| format!("task{task}"));
        out.push(json!({"name": "thread_name", "ph": "M", "pid": 1, "tid": task, "args": {"name": name}}));
    }
    for event in events {
        let args = json!({"time_ns": event.time_ns, "cpu": event.cpu, "seq": event.seq});
        let base = |name: String, cat: &str, ph: &str| json!({"name": name, "cat": cat, "ph": ph, "ts": event.seq, "pid": 1, "tid": event.task, "args": args});
        let value = match &event.kind {
            EventKind::Acquired { class, token, .. } => {
                let mut value = base(class.to_string(), "lock", "b");
                value["id"] = json!(format!("0x{token:x}"));
                value["args"]["what"] = json!(describe(&event.kind));
                value
            }
            EventKind::Released { class, token } => {
                let mut value = base(class.to_string(), "lock", "e");
                value["id"] = json!(format!("0x{token:x}"));
                value
            }
            EventKind::OpBegin { name, detail } => {
                let mut value = base(name.to_string(), "op", "B");
                value["args"]["detail"] = json!(detail);
                value
            }
            EventKind::OpEnd { name, result } => {
                let mut value = base(name.to_string(), "op", "E");
                value["args"]["result"] = json!(result);
                value
            }
            other => {
                let cat = match other {
                    EventKind::Fault { .. } => "fault",
                    EventKind::Violation { .. } => "violation",
                    EventKind::RcuReadSide { .. }
                    | EventKind::RcuAssign { .. }
                    | EventKind::RcuGracePeriod { .. }
                    | EventKind::RcuFree { .. } => "rcu",
                    EventKind::Kref { .. } => "kref",
                    _ => "note",
                };
                let mut value = base(describe(other), cat, "i");
                value["s"] = json!("t");
                value
            }
        };
        out.push(value);
    }
    json!({"traceEvents": out, "displayTimeUnit": "ns"})
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The word compare answers as `==` for texts of every length from 0 to 20 that differ in
    /// any one byte (the first, the last, each in the middle) or not at all, and past ASCII.
    #[test]
    fn same_text_answers_as_equality_does() {
        let base: Vec<u8> = (0..20u8).map(|i| b'a' + i).collect();
        for len in 0..=20 {
            let text = std::str::from_utf8(&base[..len]).unwrap();
            // The same text in another allocation (the compare reads bytes, not addresses).
            let copy: String = text.chars().collect();
            assert!(same_text(text, text) && same_text(text, &copy), "{text:?}");
            for at in 0..len {
                let mut other = base[..len].to_vec();
                other[at] = b'Z';
                let other = std::str::from_utf8(&other).unwrap();
                assert!(!same_text(text, other) && !same_text(other, text), "{text:?} vs {other:?}");
            }
            assert!(!same_text(text, &base_str(&base, len + 1)), "{len}: lengths differ");
        }
        for (a, b) in [("bäume", "bäume"), ("bäume", "täume"), ("ä", "ö"), ("sendmsg", "do_exit")] {
            assert_eq!(same_text(a, b), a == b, "{a:?} {b:?}");
        }
    }

    fn base_str(base: &[u8], len: usize) -> String {
        base.iter().cycle().take(len).map(|&b| char::from(b)).collect()
    }

    /// A fault recorded from its site's parts ([`Trace::record_fault`]) hashes as the event
    /// built as text does ([`Trace::record`]), and is kept with the same text, for names across
    /// the eight-byte joints (the prefix is five bytes) and every kind: a hash of the parts that
    /// chunked at the joint, dropped the length or the padding, fails here.
    #[test]
    fn a_fault_recorded_from_its_parts_hashes_as_its_text_does() {
        use crate::fault::{FaultKind, SiteRef};
        let name = "abcdefghijklmnopqrstu";
        for kind in [FaultKind::Slab, FaultKind::Page, FaultKind::Call] {
            for length in 0..=name.len() {
                let site = SiteRef { kind, name: &name[..length] };
                let (parts, text) = (Trace::new(TraceMode::Full), Trace::new(TraceMode::Full));
                parts.record_fault((3, 1, 7), site);
                text.record(3, 1, 7, EventKind::Fault { site: site.to_string().into() });
                assert_eq!(parts.hash(), text.hash(), "{site}: the hashes differ");
                assert_eq!(format!("{:?}", parts.events()), format!("{:?}", text.events()), "{site}");
            }
        }
    }

    /// Pids (kept by index) and named tasks and large pids (kept in the map) come back by id,
    /// ascending, with their latest names, and a rename back to an earlier name shares it.
    #[test]
    fn task_names_come_back_ascending_with_their_latest_names() {
        let trace = Trace::new(TraceMode::HashOnly);
        let named = crate::sim::NAMED_TASKS_FIRST;
        for (task, name) in
            [(named + 1, "rcu"), (7, "fork"), (TASK_IDS_INDEXED, "big"), (3, "init"), (named, "sched")]
        {
            trace.name_task(task, name);
        }
        let first = trace.name_task_shared(7, "sendmsg");
        trace.name_task(7, "do_exit");
        let again = trace.name_task_shared(7, "sendmsg");
        assert!(std::sync::Arc::ptr_eq(&first, &again), "a rename back shares the earlier name");
        let names: Vec<(TaskId, String)> = trace.task_names().into_iter().collect();
        let expected =
            [(3, "init"), (7, "sendmsg"), (TASK_IDS_INDEXED, "big"), (named, "sched"), (named + 1, "rcu")];
        assert_eq!(names, expected.map(|(task, name)| (task, name.to_string())));
        assert!(trace.lock().tasks.get(5).is_none() && trace.lock().tasks.get(named + 2).is_none());
    }

    /// Renames back and forth among a few names (pids by index and in the map): each call gives
    /// the name asked for, equal to what `task_names` says, one shared string per text (the
    /// thread's interned copy), so a fast path that kept a stale name or made a second copy
    /// fails here.
    #[test]
    fn renames_give_the_name_asked_and_share_one_string_per_text() {
        let trace = Trace::new(TraceMode::HashOnly);
        let names = ["sendmsg", "do_exit", "fork", "sendmsg", "sched", "do_exit", "fork", "fork"];
        let mut seen: Vec<std::sync::Arc<str>> = Vec::new();
        for (step, name) in names.iter().cycle().take(64).enumerate() {
            let task = [3, 9, TASK_IDS_INDEXED + 5][step % 3];
            let got = trace.name_task_shared(task, name);
            assert_eq!(&*got, *name, "step {step}: task {task}");
            assert_eq!(trace.task_names()[&task], *name, "step {step}: task {task}");
            match seen.iter().find(|known| ***known == **name) {
                Some(known) if step >= 12 => {
                    assert!(std::sync::Arc::ptr_eq(known, &got), "step {step}: {name} shared")
                }
                Some(_) => {}
                None => seen.push(got),
            }
        }
        let interned: Vec<std::sync::Arc<str>> =
            NAMES_MADE.with(|names| names.borrow().iter().flatten().cloned().collect());
        let mut texts: Vec<&str> = interned.iter().map(|name| &**name).collect();
        texts.sort_unstable();
        texts.dedup();
        assert_eq!(texts.len(), interned.len(), "each name interned once: {interned:?}");
    }

    fn acquire(class: &'static str, token: u64) -> EventKind {
        EventKind::Acquired { class: Cow::Borrowed(class), mode: LockMode::Spin, trylock: false, token }
    }

    /// A hash-only trace confined by its driver names no task from then on (it gives the name
    /// asked, and renames nothing), one confined keeping names (a shuttle or loom world's) and
    /// a kept trace confined name every task, and all hash the same events alike.
    #[test]
    fn a_confined_hash_only_trace_keeps_no_names_and_hashes_alike() {
        let traces = [
            Trace::new(TraceMode::HashOnly),
            Trace::new(TraceMode::HashOnly),
            Trace::new(TraceMode::Tail(8)),
            Trace::new(TraceMode::HashOnly),
        ];
        traces.iter().for_each(|trace| trace.name_task(3, "init"));
        traces[0].confine_to_this_thread();
        traces[1].confine_keeping_names();
        traces[2].confine_to_this_thread();
        for trace in &traces {
            for (step, name) in ["fork", "sendmsg", "do_exit"].iter().enumerate() {
                let got = trace.name_task_shared(3 + step as TaskId, name);
                assert_eq!(&*got, *name);
                let kept = trace.name_task_shared(3 + step as TaskId, name);
                assert_eq!(trace.rename_task_shared(3 + step as TaskId, &kept), None, "{name}: named so");
                trace.record(step as u64, 0, 3, EventKind::Note { text: Cow::Borrowed("step") });
            }
        }
        let names = |trace: &Trace| trace.task_names().into_values().collect::<Vec<_>>();
        assert_eq!(names(&traces[0]), ["init"], "named before the confinement only");
        for trace in &traces[1..] {
            assert_eq!(names(trace), ["fork", "sendmsg", "do_exit"], "{trace:?}");
        }
        assert!(traces.iter().all(|trace| trace.hash() == traces[3].hash()), "names are never hashed");
    }

    #[test]
    fn hash_covers_events_that_are_not_kept() {
        let kept = Trace::new(TraceMode::Full);
        let hashed = Trace::new(TraceMode::HashOnly);
        for trace in [&kept, &hashed] {
            trace.record(5, 0, 1, acquire("a", 1));
            trace.record(6, 0, 1, EventKind::Released { class: "a".into(), token: 1 });
        }
        assert_eq!(kept.hash(), hashed.hash());
        assert_eq!(kept.events().len(), 2);
        assert!(hashed.events().is_empty());
        let other = Trace::new(TraceMode::HashOnly);
        other.record(5, 0, 2, acquire("a", 1));
        assert_ne!(other.hash(), hashed.hash(), "a different task must change the hash");
    }

    /// A lock event's hash tells apart events that differ in one field, or in two fields whose
    /// small differences could cancel if they were combined by a plain xor: every event of a
    /// grid over the clock (0..32), the CPU (0..4), the task (0..32), the token (0..8) and its
    /// kind (acquired, trylock, released) gives its own hash from one starting hash. The
    /// event's place and its lock words are folded with odd multipliers so that they do
    /// (`TraceHasher::header`, `TraceHasher::lock_event_tagged`); an event hash that xored the
    /// lane into the clock, or the token into the class, fails here.
    #[test]
    fn a_lock_event_hash_tells_apart_events_that_differ_in_small_fields() {
        let mut seen = std::collections::HashSet::new();
        let kinds = [Some((LockMode::Spin, false)), Some((LockMode::Spin, true)), None];
        let mut events = 0;
        for time in 0..32u64 {
            for cpu in 0..4u32 {
                for task in 0..32 {
                    for token in 0..8u64 {
                        for acquired in kinds {
                            let mut hasher = TraceHasher(HASH_SEED);
                            hasher.header(time, lane_word(cpu, task));
                            hasher.lock_event(acquired, name_hash("a"), token);
                            seen.insert(hasher.0);
                            events += 1;
                        }
                    }
                }
            }
        }
        assert_eq!(seen.len(), events, "two of {events} lock events hashed alike");
    }

    /// Records one of each fixed-size event (a lock's acquisition and release, a call's begin
    /// and end, a named event) into `trace`.
    fn record_each_fixed_size_event(trace: &Trace) {
        const CALL: CallName = CallName::new("call");
        let acquired = LockRecord {
            class: &"a",
            class_hash: name_hash("a"),
            token: 9,
            acquired: Some((LockMode::SpinIrq, true)),
        };
        trace.record_lock((5, 1, 2), acquired);
        trace.record_call((6, 1, 2), false, &CALL, [3, 4], || "args".to_string());
        trace.record_named((7, 1, 2), Named::Access { write: true }, name_hash("field"), || "field".into());
        trace.record_call((8, 1, 2), true, &CALL, [0], || "Ok".to_string());
        trace.record_lock((9, 1, 2), LockRecord { acquired: None, ..acquired });
    }

    /// A lock event recorded as [`crate::cx::Cx`] records it, its kind as a [`lock_tag`] word
    /// ([`Trace::lock_hashed`] where the trace only hashes here, else [`Trace::record_lock`] of
    /// the tag's parts), hashes and keeps what [`Trace::record`] does for the same event, for
    /// every mode, trylock flag and release, confined or not; and the tag gives back the mode
    /// and flag it was made of.
    #[test]
    fn a_lock_event_recorded_by_its_tag_is_the_event_recorded_whole() {
        let modes = (0..8).map(LockMode::from_index);
        let kinds: Vec<_> =
            modes.flat_map(|mode| [Some((mode, false)), Some((mode, true))]).chain([None]).collect();
        for (trace_mode, confined) in
            [TraceMode::HashOnly, TraceMode::Full].into_iter().flat_map(|m| [(m, true), (m, false)])
        {
            let (tagged, whole) = (Trace::new(trace_mode), Trace::new(trace_mode));
            if confined {
                tagged.confine_to_this_thread();
            }
            for (step, &acquired) in kinds.iter().enumerate() {
                let token = 7 + step as u64;
                let tag = lock_tag(acquired);
                assert_eq!(lock_tag_parts(tag), acquired);
                let hashed = tagged.lock_hashed((5, 1, 2), name_hash("a"), token, tag);
                assert_eq!(hashed, confined && trace_mode == TraceMode::HashOnly, "{trace_mode:?}");
                if !hashed {
                    let record = LockRecord {
                        class: &"a",
                        class_hash: name_hash("a"),
                        token,
                        acquired: lock_tag_parts(tag),
                    };
                    tagged.record_lock((5, 1, 2), record);
                }
                let kind = match acquired {
                    Some((mode, trylock)) => EventKind::Acquired { class: "a".into(), mode, trylock, token },
                    None => EventKind::Released { class: "a".into(), token },
                };
                whole.record(5, 1, 2, kind);
                assert_eq!(
                    (tagged.hash(), tagged.len()),
                    (whole.hash(), whole.len()),
                    "{acquired:?} {trace_mode:?}"
                );
                assert_eq!(format!("{:?}", tagged.events()), format!("{:?}", whole.events()), "{acquired:?}");
            }
        }
    }

    /// A trace confined to its thread records inline, one any thread may record goes through
    /// the spin lock (`record_lock_shared`, `record_with_shared`): the same events give the same
    /// hash, count and kept events either way, in every mode.
    #[test]
    fn a_confined_trace_records_what_a_shared_one_does() {
        for mode in [TraceMode::HashOnly, TraceMode::Full] {
            let (confined, shared) = (Trace::new(mode), Trace::new(mode));
            confined.confine_to_this_thread();
            record_each_fixed_size_event(&confined);
            record_each_fixed_size_event(&shared);
            assert!(confined.is_confined() && !shared.is_confined());
            assert_eq!((confined.hash(), confined.len()), (shared.hash(), shared.len()), "{mode:?}");
            assert_eq!(confined.events(), shared.events(), "{mode:?}");
        }
    }

    /// A used trace reset (`Trace::reset`) behaves exactly as a new one of the mode asked:
    /// every mode to every mode, confined or not before, with pids and named tasks named, the
    /// same events then give the same hash, count, kept events and names, and it is confined to
    /// no thread until its driver confines it again.
    #[test]
    fn a_reset_trace_records_what_a_new_one_does() {
        let modes = [TraceMode::HashOnly, TraceMode::Tail(3), TraceMode::Full];
        let story = |trace: &Trace, round: TaskId| {
            trace.name_task(3, "init");
            trace.name_task_shared(crate::sim::NAMED_TASKS_FIRST + round, "sched");
            trace.name_task_shared(TASK_IDS_INDEXED + 2 * round, "big");
            record_each_fixed_size_event(trace);
            trace.record(
                u64::from(round),
                0,
                3,
                EventKind::Note { text: Cow::Owned(format!("round {round}")) },
            );
        };
        let seen = |trace: &Trace| {
            (trace.hash(), trace.len(), trace.events(), trace.task_names(), trace.is_confined())
        };
        for (used, confine) in modes.into_iter().flat_map(|mode| [(mode, false), (mode, true)]) {
            for mode in modes {
                let mut trace = Trace::new(used);
                if confine {
                    trace.confine_to_this_thread();
                }
                story(&trace, 1);
                trace.reset(mode);
                let new = Trace::new(mode);
                assert_eq!(
                    seen(&trace),
                    seen(&new),
                    "{used:?} (confined {confine}) reset to {mode:?}, unused"
                );
                story(&trace, 2);
                story(&new, 2);
                assert_eq!(seen(&trace), seen(&new), "{used:?} (confined {confine}) reset to {mode:?}");
                assert_eq!(format!("{trace:?}"), format!("{new:?}"));
                trace.confine_to_this_thread();
                new.confine_to_this_thread();
                story(&trace, 3);
                story(&new, 3);
                assert_eq!(
                    seen(&trace),
                    seen(&new),
                    "{used:?} (confined {confine}) reset to {mode:?}, confined"
                );
            }
        }
    }

    /// A trace confined to one thread and recorded from another is a ksim bug, caught on each
    /// recording path (a lock event's and the other fixed-size events').
    #[test]
    fn a_confined_trace_recorded_from_another_thread_panics() {
        let trace = Trace::new(TraceMode::HashOnly);
        trace.confine_to_this_thread();
        std::thread::scope(|scope| {
            let lock = scope.spawn(|| {
                let record = LockRecord { class: &"a", class_hash: name_hash("a"), token: 1, acquired: None };
                trace.record_lock((1, 0, 1), record);
            });
            let call =
                scope.spawn(|| trace.record_call((1, 0, 1), false, &CallName::new("c"), [1], String::new));
            for (what, recorded) in [("lock", lock.join()), ("call", call.join())] {
                let message = recorded.expect_err(what);
                let message = message.downcast_ref::<String>().expect("a formatted panic");
                assert!(
                    message.contains("a trace confined to one thread was recorded from another"),
                    "{what}: {message}"
                );
            }
        });
        assert_eq!(trace.len(), 0, "nothing recorded from the other threads");
    }

    #[test]
    fn call_names_hash_at_compile_time_as_text_does() {
        const GET: CallName = CallName::new("mb_cache_entry_get");
        assert_eq!(GET.hash, name_hash("mb_cache_entry_get"));
        assert_eq!(CallName::new("").hash, name_hash(""));
        assert_eq!(CallName::new("12345678").hash, name_hash("12345678"));
        assert_ne!(CallName::new("get").hash, CallName::new("put").hash);
        // At run time too (`ClassKey::new`), for every length around the chunk size.
        let text = "abcdefghijklmnopqrstuvwxyz";
        for len in 0..=text.len() {
            assert_eq!(const_name_hash(&text[..len]), name_hash(&text[..len]), "length {len}");
        }
    }

    #[test]
    fn call_words_hash_alike_in_every_mode_and_text_is_built_only_when_kept() {
        const GET: CallName = CallName::new("get");
        let kept = Trace::new(TraceMode::Full);
        let hashed = Trace::new(TraceMode::HashOnly);
        let built = std::cell::Cell::new(0);
        for trace in [&kept, &hashed] {
            trace.record_call((1, 0, 1), false, &GET, [7, 9], || {
                built.set(built.get() + 1);
                "key 7".to_string()
            });
            trace.record_call((2, 0, 1), true, &GET, [0], || "Ok".to_string());
        }
        assert_eq!(built.get(), 1, "text is built for the kept trace only");
        assert_eq!(kept.hash(), hashed.hash());
        assert_eq!(kept.events()[0].kind, EventKind::OpBegin { name: "get".into(), detail: "key 7".into() });
        let other = Trace::new(TraceMode::HashOnly);
        other.record_call((1, 0, 1), false, &GET, [7, 8], String::new);
        other.record_call((2, 0, 1), true, &GET, [0], String::new);
        assert_ne!(other.hash(), hashed.hash(), "an argument word must change the hash");
        let split = Trace::new(TraceMode::HashOnly);
        split.record_call((1, 0, 1), false, &GET, [7], String::new);
        split.record_call((2, 0, 1), true, &GET, [9, 0], String::new);
        assert_ne!(split.hash(), hashed.hash(), "words moved between begin and end must change it");
    }

    #[test]
    fn named_events_hash_by_the_names_hash_as_their_text_does() {
        let kinds = [
            Named::RcuAssign { object: 7 },
            Named::RcuFree { object: 7, deferred: true },
            Named::Kref { op: KrefOp::Get, count: 2 },
            Named::Irq { enter: true },
            Named::Access { write: false },
        ];
        let fast = Trace::new(TraceMode::HashOnly);
        let kept = Trace::new(TraceMode::Full);
        let text = Trace::new(TraceMode::HashOnly);
        let asked = std::cell::Cell::new(0);
        for named in kinds {
            for trace in [&fast, &kept] {
                trace.record_named((3, 1, 2), named, name_hash("entry 7"), || {
                    asked.set(asked.get() + 1);
                    "entry 7".into()
                });
            }
            text.record(3, 1, 2, named.kind("entry 7".into()));
        }
        assert_eq!(fast.hash(), text.hash(), "the fast path must hash as the event's text does");
        assert_eq!(kept.hash(), text.hash());
        assert_eq!(asked.get(), kinds.len(), "the name is asked for by the kept trace only");
        assert_eq!(
            kept.events()[2].kind,
            EventKind::Kref { object: "entry 7".into(), op: KrefOp::Get, count: 2 }
        );
        let other = Trace::new(TraceMode::HashOnly);
        for named in kinds {
            other.record_named((3, 1, 2), named, name_hash("entry 8"), || "entry 8".into());
        }
        assert_ne!(other.hash(), fast.hash(), "another name must change the hash");
        for (a, b) in kinds.iter().zip(kinds.iter().skip(1)) {
            assert_ne!(a.words().0, b.words().0, "each kind has its own tag: {a:?} {b:?}");
        }
    }

    #[test]
    fn tail_mode_keeps_only_the_newest_events() {
        let trace = Trace::new(TraceMode::Tail(3));
        for seq in 0..10 {
            trace.record(seq, 0, 0, EventKind::Note { text: seq.to_string().into() });
        }
        let kept: Vec<u64> = trace.events().iter().map(|e| e.seq).collect();
        assert_eq!(kept, vec![8, 9, 10]);
        assert_eq!(trace.len(), 10);
    }

    #[test]
    fn chrome_json_pairs_overlapping_lock_holds_by_token() {
        let trace = Trace::new(TraceMode::Full);
        trace.record(0, 0, 1, acquire("a", 1));
        trace.record(0, 0, 1, acquire("b", 2));
        trace.record(0, 0, 1, EventKind::Released { class: "a".into(), token: 1 });
        trace.record(0, 0, 1, EventKind::Released { class: "b".into(), token: 2 });
        let json = render_chrome(&trace.events(), &BTreeMap::new());
        let events = json["traceEvents"].as_array().expect("array");
        let begins: Vec<&str> =
            events.iter().filter(|e| e["ph"] == "b").map(|e| e["id"].as_str().expect("id")).collect();
        let ends: Vec<&str> =
            events.iter().filter(|e| e["ph"] == "e").map(|e| e["id"].as_str().expect("id")).collect();
        assert_eq!(begins, vec!["0x1", "0x2"]);
        assert_eq!(ends, vec!["0x1", "0x2"], "a hold ends by its own id, not by nesting order");
    }

    #[test]
    fn text_lanes_show_a_bar_while_a_task_holds_a_lock() {
        let trace = Trace::new(TraceMode::Full);
        trace.record(0, 0, 1, acquire("a", 1));
        trace.record(0, 1, 2, EventKind::Note { text: "hello".into() });
        trace.record(0, 0, 1, EventKind::Released { class: "a".into(), token: 1 });
        let text = render_text(&trace.events(), &BTreeMap::new(), 100);
        let row = text.lines().find(|l| l.contains("hello")).expect("row");
        assert!(row.trim_start().starts_with("2 |  "), "task 1's lane shows it holds a lock: {row}");
        assert!(row.ends_with(" | hello"), "task 2's lane has the note: {row}");
        assert!(text.contains("lock(a)"));
    }

    /// A run as the harness records it: operation markers, a checker lock, two kernel tasks, a
    /// long event, a violation in a lane and one found by the state checks.
    fn story() -> (Vec<Event>, BTreeMap<TaskId, String>) {
        let trace = Trace::new(TraceMode::Full);
        let names: BTreeMap<TaskId, String> =
            [(0, "ksim-check"), (7, OP_LANE_NAME), (1, "fork"), (2, "do_exit")]
                .into_iter()
                .map(|(task, name)| (task, name.to_string()))
                .collect();
        let begin = |detail: &str| EventKind::OpBegin { name: "op".into(), detail: detail.into() };
        trace.record(0, 0, 7, begin("#1 Register { cpu: 0, port: 1 }"));
        trace.record(0, 0, 1, acquire("nl_table_lock", 1));
        trace.record(0, 0, 1, acquire("ksim:ledger", 2));
        trace.record(0, 0, 1, EventKind::Released { class: "ksim:ledger".into(), token: 2 });
        trace.record(0, 0, 1, EventKind::Released { class: "nl_table_lock".into(), token: 1 });
        trace.record(0, 0, 7, EventKind::OpEnd { name: "op".into(), result: "Ok(())".into() });
        trace.record(5, 0, 7, begin("#2 Exit { pid: 2 }"));
        let long =
            "a note long enough that no lane of any sensible width could hold all of it on one line: END";
        trace.record(5, 1, 2, EventKind::Note { text: long.into() });
        let violation =
            |kind: &str, message: &str| EventKind::Violation { kind: kind.into(), message: message.into() };
        trace.record(5, 1, 2, violation("seq-order", "port 1 got seq 0 after 0"));
        trace.record(5, 1, 1, acquire("tasklist_lock", 3));
        trace.record(5, 1, 2, violation("duplicate-listener", "the exit was delivered 3 times"));
        trace.record(5, 0, 0, violation("duplicate-listener", "cpu 0 has three listeners for port 1"));
        (trace.events(), names)
    }

    const OP_LANE_NAME: &str = crate::check::OP_LANE;

    #[test]
    fn text_story_fits_100_columns_and_cuts_nothing() {
        let (events, names) = story();
        let text = render_text(&events, &names, TEXT_WIDTH);
        for line in text.lines() {
            assert!(line.chars().count() <= 100, "{} columns: {line}", line.chars().count());
        }
        assert!(!text.contains('~'), "no truncation marker:\n{text}");
        let words: Vec<&str> = text.split_whitespace().collect();
        assert!(words.windows(2).any(|w| w == ["line:", "END"]), "the long note is whole:\n{text}");
        // Even 8 lanes at once fit: the step is drawn as a list instead.
        let crowd: Vec<Event> = (1..=8)
            .map(|task| Event {
                seq: u64::from(task),
                time_ns: 0,
                cpu: 0,
                task,
                kind: acquire("lock_with_a_long_name", 1),
            })
            .collect();
        assert!(render_text(&crowd, &BTreeMap::new(), TEXT_WIDTH).lines().all(|l| l.chars().count() <= 100));
    }

    #[test]
    fn text_story_heads_steps_and_draws_only_kernel_lanes() {
        let (events, names) = story();
        let text = render_text(&events, &names, TEXT_WIDTH);
        assert!(text.starts_with("== #1 Register { cpu: 0, port: 1 }\n"), "{text}");
        let headers: Vec<&str> = text.lines().filter(|l| l.trim_start().starts_with("seq")).collect();
        assert_eq!(headers.len(), 2, "one lane header per step:\n{text}");
        assert!(headers[1].contains("do_exit") && headers[1].contains("fork"), "{}", headers[1]);
        for lane in ["ksim-op", "ksim-check", "scenario"] {
            assert!(!headers.iter().any(|h| h.contains(lane)), "{lane} is no lane:\n{text}");
        }
        assert!(!text.contains("ksim:ledger"), "checker locks are not drawn:\n{text}");
        assert!(text.contains("=> Ok(())"), "the operation's result closes its step:\n{text}");
        let exit = text.find("== #2 Exit").expect("second step");
        let violation = text.find("!! duplicate-listener: the exit").expect("violation drawn");
        assert!(exit < violation, "the violation is drawn in the step that caused it");
    }

    #[test]
    fn violations_are_ordered_cause_first() {
        let (events, names) = story();
        let ordered: Vec<String> =
            violations_cause_first(&events, &names).into_iter().map(|e| describe(&e.kind)).collect();
        assert_eq!(
            ordered,
            [
                "!! duplicate-listener: cpu 0 has three listeners for port 1",
                "!! duplicate-listener: the exit was delivered 3 times",
                "!! seq-order: port 1 got seq 0 after 0",
            ]
        );
        let no_state_check: Vec<Event> = events.into_iter().filter(|e| e.task != 0).collect();
        let first = violations_cause_first(&no_state_check, &names)[0];
        assert!(
            describe(&first.kind).contains("seq-order"),
            "without a state finding, the first recorded leads"
        );
    }
}
