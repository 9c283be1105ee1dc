//! `Sim`: the deterministic world a model runs in: the seed and its one RNG (ChaCha8, so a seed
//! means the same thing on every platform and version), the virtual clock, the CPU count, the
//! fault plan, the trace, lockdep, and the violations found so far.
//!
//! Nothing in a model reads wall time, OS randomness or thread ids: they come from here. A `Sim`
//! is a cheap handle (`Clone` shares the world), so the threaded checkers hand one to each thread.
//! The world's own bookkeeping uses `std` locks: it is instrumentation, not model state, and never
//! becomes a loom or shuttle object.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex as StdMutex};

use rand::distr::{Bernoulli, Distribution};
use rand::seq::IndexedRandom;
use rand::{Rng, RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::cx::Cx;
use crate::fault::{FaultPlan, FaultSite, SiteRef};
use crate::lockdep::{Lockdep, ReportMode};
use crate::percpu::CpuId;
use crate::trace::{EventKind, TaskId, Trace, TraceMode};

/// Most CPUs a `Sim` may have (the kernel's NR_CPUS on a big distribution config).
pub const CPUS_MAX: u32 = 4096;

/// How to build a [`Sim`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SimConfig {
    /// The seed of the one RNG.
    pub seed: u64,
    /// Possible CPUs (`nr_cpu_ids`).
    pub cpus: u32,
    /// What lockdep does with a report.
    pub lockdep: ReportMode,
    /// Whether lockdep checks at all (off only to measure its cost).
    pub lockdep_enabled: bool,
    /// How much trace to keep.
    pub trace: TraceMode,
}

impl SimConfig {
    /// Two CPUs, lockdep panicking on a report (the default for tests), the last 4096 events kept.
    pub fn new(seed: u64) -> SimConfig {
        SimConfig {
            seed,
            cpus: 2,
            lockdep: ReportMode::Panic,
            lockdep_enabled: true,
            trace: TraceMode::Tail(4096),
        }
    }

    /// Sets the CPU count.
    pub fn cpus(mut self, cpus: u32) -> SimConfig {
        self.cpus = cpus;
        self
    }

    /// Sets what lockdep does with a report.
    pub fn lockdep(mut self, mode: ReportMode) -> SimConfig {
        self.lockdep = mode;
        self
    }

    /// Turns lockdep's checks off.
    pub fn without_lockdep(mut self) -> SimConfig {
        self.lockdep_enabled = false;
        self
    }

    /// Sets how much trace is kept.
    pub fn trace(mut self, mode: TraceMode) -> SimConfig {
        self.trace = mode;
        self
    }
}

pub use crate::violation::{Violation, ViolationKind};

/// The world's random numbers and its fault plan, under one [`crate::sync::BookLock`]: a fault
/// decision ([`Sim::should_fail_planned`]) draws while it holds the plan, so one lock round trip
/// serves both (with a lock each, a call that drew took two).
struct Book {
    rng: ChaCha8Rng,
    faults: FaultPlan,
    /// The attributes each kind of call visits, and each site name met since the plan was set
    /// ([`crate::fault::kind_masks`]), set with the plan.
    kind_masks: crate::fault::KindMasks,
    /// [`percent_distributions`], fetched once per world instead of once per fault decision.
    distributions: &'static [Bernoulli; 101],
    /// The attributes [`World::fault_watch`] mirrors, one bit each by index.
    watched: u64,
}

/// The world's generator lent by [`Sim::with_draws`] for a batch of draws.
pub struct Draws<'a> {
    rng: &'a mut ChaCha8Rng,
}

impl std::fmt::Debug for Draws<'_> {
    /// The generator's state is the world's, not shown.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Draws").finish_non_exhaustive()
    }
}

impl Draws<'_> {
    /// A uniform number in `0..bound` (`bound` > 0): [`Sim::below`]'s draw.
    #[inline(always)]
    pub fn below(&mut self, bound: u64) -> u64 {
        assert!(bound > 0, "Draws::below needs a positive bound");
        self.rng.random_range(0..bound)
    }
}

pub(crate) struct World {
    pub(crate) config: SimConfig,
    /// The one RNG and the fault plan, under one lock ([`Book`]).
    book: crate::sync::BookLock<Book>,
    clock_ns: AtomicU64,
    /// The kinds of call the fault plan's attributes match ([`crate::fault::kinds_matched`]),
    /// written with the plan: a call of another kind (any call, with no plan) is decided without
    /// the plan's lock.
    fault_kinds: std::sync::atomic::AtomicU8,
    /// Failures the fault plan has injected, all attributes' (`FaultPlan::failed`), kept with
    /// the plan under the book lock and read without it ([`Sim::faults_failed`]).
    faults_failed: AtomicU64,
    /// Watched attributes' counters, read without the book lock ([`Sim::fault_counters`]).
    fault_watch: crate::fault::FaultWatch,
    pub(crate) trace: Trace,
    pub(crate) lockdep: Lockdep,
    violations: StdMutex<Vec<Violation>>,
    /// Coverage marks, one bit each by the process's mark index ([`mark_index`]): checker
    /// state, never seen by lockdep, the trace, loom or shuttle.
    marks: [AtomicU64; MARK_WORDS],
    /// Marks past the [`MARK_WORDS`] words' indexes, by text.
    marks_spilled: StdMutex<std::collections::BTreeSet<&'static str>>,
    /// Marks already in `marks`, by address and length ([`mark_key`]), direct-mapped: a mark
    /// made again (most are, every operation) costs one atomic load instead of the mutex and a
    /// string search.
    marks_seen: [AtomicU64; MARKS_SEEN],
    /// Violations reported so far: [`Sim::has_violations`] reads it without the mutex.
    violations_count: AtomicU32,
    /// Shrinkers and the reclaim plan ([`crate::mm::reclaim`]).
    pub(crate) reclaim: crate::mm::reclaim::ReclaimState,
    /// Task ids of contexts made by name ([`Sim::cx`]) past [`World::task_names`]' slots, so one
    /// name is one lane in a trace.
    named_tasks: StdMutex<std::collections::BTreeMap<String, TaskId>>,
    next_task: AtomicU32,
    /// The next model context's serial number ([`Sim::next_cx_serial`]).
    next_cx: AtomicU64,
    /// The next observer context's serial number, counted apart from the model's so that the
    /// checker contexts a case makes never move a model context's serial (its lock tokens, which
    /// the trace hashes).
    next_observer_cx: AtomicU64,
    /// The kernel's RCU state (`rcu_state`): made at first use, so a world that never uses RCU
    /// makes no loom or shuttle object for it.
    pub(crate) rcu: std::sync::OnceLock<crate::rcu::RcuState>,
    /// Whether this world was made inside a shuttle execution or a loom model, whose tasks take
    /// turns on shared OS threads (a fast path that skips a facade lock is off there, so the
    /// schedule points stay those the checkers expect).
    pub(crate) threaded: bool,
    /// Named tasks' names and ids as [`Sim::cx`] gave them, found again without a lock.
    task_names: SharedNames,
    /// Observer contexts' names, made once each and shared by every observer context of that
    /// name ([`Sim::observer_cx`]; a checker makes one per operation or more), found without a
    /// lock; its mutex only orders additions.
    observer_names: SharedNames,
    observer_names_add: StdMutex<()>,
}

impl Book {
    /// The book of a new world seeded with `seed`: no fault plan, nothing watched.
    fn new(seed: u64) -> Book {
        Book {
            rng: ChaCha8Rng::seed_from_u64(seed),
            faults: FaultPlan::none(),
            kind_masks: Some(crate::fault::SiteMasks::NONE),
            distributions: percent_distributions(),
            watched: 0,
        }
    }
}

/// Panics on a CPU count outside 1..=CPUS_MAX, which only a bug in the caller can cause.
fn assert_cpus(config: &SimConfig) {
    assert!((1..=CPUS_MAX).contains(&config.cpus), "Sim needs 1..={CPUS_MAX} CPUs, got {}", config.cpus);
}

/// The validator a world built as `config` says it has.
fn new_lockdep(config: &SimConfig) -> Lockdep {
    if config.lockdep_enabled {
        Lockdep::new(config.lockdep)
    } else {
        Lockdep::disabled()
    }
}

/// The value in `mutex`, poisoned or not, the poison cleared: a world being reset has no other
/// handle, so a case that panicked while holding one of its mutexes left nothing half-done that
/// a later case could see (every field is reset), and a new world's mutexes are not poisoned.
fn cleared<T>(mutex: &mut StdMutex<T>) -> &mut T {
    mutex.clear_poison();
    mutex.get_mut().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl World {
    fn new(config: SimConfig) -> World {
        assert_cpus(&config);
        World {
            book: crate::sync::BookLock::new(Book::new(config.seed)),
            clock_ns: AtomicU64::new(0),
            fault_kinds: std::sync::atomic::AtomicU8::new(0),
            faults_failed: AtomicU64::new(0),
            fault_watch: Default::default(),
            trace: Trace::new(config.trace),
            lockdep: new_lockdep(&config),
            violations: StdMutex::new(Vec::new()),
            marks: std::array::from_fn(|_| AtomicU64::new(0)),
            marks_spilled: StdMutex::new(std::collections::BTreeSet::new()),
            marks_seen: std::array::from_fn(|_| AtomicU64::new(0)),
            violations_count: AtomicU32::new(0),
            reclaim: Default::default(),
            named_tasks: StdMutex::new(std::collections::BTreeMap::new()),
            next_task: AtomicU32::new(NAMED_TASKS_FIRST),
            next_cx: AtomicU64::new(0),
            next_observer_cx: AtomicU64::new(0),
            rcu: std::sync::OnceLock::new(),
            threaded: in_threaded_checker(),
            task_names: SharedNames::new(),
            observer_names: SharedNames::new(),
            observer_names_add: StdMutex::new(()),
            config,
        }
    }

    /// This world made as [`World::new`]`(config)` makes one, in place ([`Sim::renew`]): the
    /// book reseeded with no plan, the clock at 0, no violations, marks, names or ids given,
    /// no RCU state (made again at first use), no reclaim plan or shrinkers; the trace and
    /// lockdep reset ([`Trace::reset`], [`Lockdep::reset`]: a new validator id), keeping
    /// their tables' room. Every field is named, so a field added to the world does not compile
    /// here until its reset is decided; `tests::a_reset_world_is_a_new_one` compares the two.
    fn reset(&mut self, config: SimConfig) {
        assert_cpus(&config);
        let World {
            config: kept_config,
            book,
            clock_ns,
            fault_kinds,
            faults_failed,
            fault_watch,
            trace,
            lockdep,
            violations,
            marks,
            marks_spilled,
            marks_seen,
            violations_count,
            reclaim,
            named_tasks,
            next_task,
            next_cx,
            next_observer_cx,
            rcu,
            threaded,
            task_names,
            observer_names,
            observer_names_add,
        } = self;
        *book.get_mut() = Book::new(config.seed);
        *clock_ns.get_mut() = 0;
        *fault_kinds.get_mut() = 0;
        *faults_failed.get_mut() = 0;
        *fault_watch = Default::default();
        trace.reset(config.trace);
        match lockdep.is_enabled() == config.lockdep_enabled {
            true => lockdep.reset(config.lockdep),
            false => *lockdep = new_lockdep(&config),
        }
        cleared(violations).clear();
        marks.iter_mut().chain(marks_seen.iter_mut()).for_each(|word| *word.get_mut() = 0);
        cleared(marks_spilled).clear();
        *violations_count.get_mut() = 0;
        *reclaim = Default::default();
        cleared(named_tasks).clear();
        *next_task.get_mut() = NAMED_TASKS_FIRST;
        *next_cx.get_mut() = 0;
        *next_observer_cx.get_mut() = 0;
        drop(rcu.take());
        *threaded = in_threaded_checker();
        task_names.reset();
        observer_names.reset();
        cleared(observer_names_add);
        *kept_config = config;
    }
}

/// Names shared by the contexts made with them, each with its task id, in slots filled once and
/// in order, so a lookup is a few loads and short string compares, with no lock: a context made
/// per operation (or several) costs no mutex and no map search. Additions are serialized by the
/// caller's mutex; a name past the last slot is simply not remembered (its caller takes the slow
/// path each time). Few slots, in place: a campaign makes a world per case, and building,
/// moving and dropping more (or a boxed table) cost the demo more per case than the lookups
/// saved it (callgrind: about 3,000 instructions a case for 32 boxed slots a table).
/// Checker bookkeeping: `std` only, never seen by loom or shuttle.
struct SharedNames {
    slots: [std::sync::OnceLock<(Arc<str>, TaskId)>; NAME_SLOTS],
    /// Slots filled; slot `i < filled` is set.
    filled: std::sync::atomic::AtomicUsize,
}

/// Names [`SharedNames`] keeps: the contexts a driver makes per operation are a handful of named
/// tasks and observers (taskstats' six observers, its "sched", "close", "recvmsg" and
/// "release_task"); a driver that names more keeps its contexts for the case (mbcache2's 26).
const NAME_SLOTS: usize = 8;

impl SharedNames {
    fn new() -> SharedNames {
        SharedNames { slots: std::array::from_fn(|_| std::sync::OnceLock::new()), filled: Default::default() }
    }

    /// These slots emptied, as [`SharedNames::new`] makes them ([`World::reset`]).
    fn reset(&mut self) {
        let SharedNames { slots, filled } = self;
        slots.iter_mut().for_each(|slot| drop(slot.take()));
        *filled.get_mut() = 0;
    }

    /// The shared name equal to `name` and its task, if remembered.
    #[inline]
    fn find(&self, name: &str) -> Option<&(Arc<str>, TaskId)> {
        let filled = self.filled.load(Ordering::Acquire);
        let mut slots = self.slots[..filled].iter().filter_map(std::sync::OnceLock::get);
        slots.find(|(known, _)| crate::trace::same_text(known, name))
    }

    /// The shared name equal to `name` and its task: from the slots without a lock, else made by
    /// `make` under `adding` (the mutex that serializes additions, with what the caller keeps
    /// behind it) and remembered when a slot is free. The slots are looked at again under the
    /// mutex, for a name another thread added meanwhile (a lookup meanwhile sees the slots
    /// filled before). `make` is told whether the name will have a slot: then no name past the
    /// slots was ever made (slots fill first, one addition at a time), so what the caller keeps
    /// for those need not be asked or told.
    fn find_or_add<T>(
        &self,
        name: &str,
        adding: &StdMutex<T>,
        make: impl FnOnce(&mut T, bool) -> (Arc<str>, TaskId),
    ) -> (Arc<str>, TaskId) {
        if let Some(found) = self.find(name) {
            return found.clone();
        }
        let mut kept = lock(adding);
        if let Some(found) = self.find(name) {
            return found.clone();
        }
        let filled = self.filled.load(Ordering::Relaxed);
        let (shared, task) = make(&mut kept, filled < NAME_SLOTS);
        if filled < NAME_SLOTS && self.slots[filled].set((shared.clone(), task)).is_ok() {
            self.filled.store(filled + 1, Ordering::Release);
        }
        (shared, task)
    }
}

/// The first task id [`Sim::cx`] gives out: above any pid a model chooses for
/// [`Sim::cx_for_task`] (the kernel's PID_MAX_LIMIT is 4194304), so the two never collide.
pub const NAMED_TASKS_FIRST: TaskId = 1 << 24;

/// Slots of the marks-seen cache ([`World::marks_seen`]).
const MARKS_SEEN: usize = 64;

/// A mark's identity for the marks-seen cache: its address with its length in the top 16 bits
/// (a user-space address fits in 48), never 0; `None` for a name too long to pack. Two marks
/// with equal text at different addresses get different keys: each is inserted once, and the
/// set keeps one. The key only decides whether to skip the insert, never what is recorded, so
/// address layout cannot change a run.
fn mark_key(name: &'static str) -> Option<u64> {
    let address = name.as_ptr() as u64;
    let length = name.len() as u64;
    (address >> 48 == 0 && length < 1 << 16 && address != 0).then_some(address | length << 48)
}

/// Words of a world's mark bits ([`World::marks`]): room for the distinct marks of every model
/// in one process (a few hundred); a mark indexed past them is kept by text instead.
const MARK_WORDS: usize = 16;

/// Every mark text the process has seen, each given an index the first time (text-equal marks
/// at other addresses share it), so a world records a mark as one bit instead of a string in a
/// set: a campaign makes a world per case, so each case's first use of each mark was a set
/// insert with string compares (about 150 instructions, most of a mark's cost). Checker
/// bookkeeping: `std` only, shared by the process's worlds; it never changes what a world
/// records, only how.
struct MarkNames {
    /// Indexes by address and length ([`mark_key`], or the text's own address and length for a
    /// name it cannot pack).
    by_address: MarkIndexes,
    /// Indexes by text.
    by_text: std::collections::BTreeMap<&'static str, u32>,
    /// Each index's text, as first seen.
    texts: Vec<&'static str>,
    /// Each index's place among the texts in order, so a world's marks sort by number.
    ranks: Vec<u32>,
    /// The texts in order: `sorted[ranks[i]]` is index `i`'s text.
    sorted: Vec<&'static str>,
}

/// A hasher for (address, length) keys: one multiply a word, as the keys are distinct addresses
/// (the marks here, the campaign's counts of them in [`crate::check`]).
#[derive(Default)]
pub(crate) struct AddressHasher(u64);

impl std::hash::Hasher for AddressHasher {
    fn write(&mut self, bytes: &[u8]) {
        bytes.iter().for_each(|&byte| self.write_u64(u64::from(byte)));
    }

    fn write_usize(&mut self, word: usize) {
        self.write_u64(word as u64);
    }

    fn write_u64(&mut self, word: u64) {
        self.0 = (self.0.rotate_left(29) ^ word).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    }

    fn finish(&self) -> u64 {
        self.0 ^ self.0 >> 31
    }
}

fn mark_names() -> std::sync::MutexGuard<'static, MarkNames> {
    static NAMES: std::sync::OnceLock<StdMutex<MarkNames>> = std::sync::OnceLock::new();
    lock(NAMES.get_or_init(|| {
        StdMutex::new(MarkNames {
            by_address: Default::default(),
            by_text: Default::default(),
            texts: Vec::new(),
            ranks: Vec::new(),
            sorted: Vec::new(),
        })
    }))
}

/// Mark indexes by address and length: the process's ([`MarkNames::by_address`]) and each
/// thread's copy of those it asked for ([`MARK_INDEXES`]).
type MarkIndexes =
    std::collections::HashMap<(usize, usize), u32, std::hash::BuildHasherDefault<AddressHasher>>;

thread_local! {
    /// The mark indexes this thread has asked the process's table for ([`mark_index`]): an index
    /// never changes once given, so a thread keeps what it learnt and takes the process's mutex
    /// only for an address it has not asked about. Asked on every case's first use of each mark
    /// (a campaign's world is new per case), the mutex was shared by the campaign's worker
    /// threads, and its line moved between their cores at each use.
    static MARK_INDEXES: std::cell::RefCell<MarkIndexes> = std::cell::RefCell::default();
}

/// `name`'s index in the process ([`MarkNames`]): the index of the first mark seen with its text,
/// from this thread's copy of what it learnt ([`MARK_INDEXES`]) when it asked before.
fn mark_index(name: &'static str) -> u32 {
    let address = (name.as_ptr() as usize, name.len());
    if let Some(index) = MARK_INDEXES.with(|known| known.borrow().get(&address).copied()) {
        return index;
    }
    let index = mark_index_shared(name, address);
    MARK_INDEXES.with(|known| known.borrow_mut().insert(address, index));
    index
}

/// [`mark_index`] from the process's table, under its mutex; `address` is `name`'s address and
/// length.
#[cold]
fn mark_index_shared(name: &'static str, address: (usize, usize)) -> u32 {
    let mut names = mark_names();
    if let Some(&index) = names.by_address.get(&address) {
        return index;
    }
    let index = match names.by_text.get(name) {
        Some(&index) => index,
        None => {
            let index = names.texts.len() as u32;
            names.texts.push(name);
            names.by_text.insert(name, index);
            let MarkNames { by_text, ranks, sorted, .. } = &mut *names;
            ranks.resize(by_text.len(), 0);
            by_text.values().enumerate().for_each(|(rank, &at)| ranks[at as usize] = rank as u32);
            *sorted = by_text.keys().copied().collect();
            index
        }
    };
    names.by_address.insert(address, index);
    index
}

/// The text of mark index `index` ([`mark_index`]), as first seen.
pub(crate) fn mark_text(index: usize) -> &'static str {
    mark_names().texts[index]
}

/// The mark index of `text`, if some mark had it.
pub(crate) fn mark_index_of_text(text: &str) -> Option<usize> {
    mark_names().by_text.get(text).map(|&index| index as usize)
}

/// A world's mark bits by the process's mark indexes ([`Sim::mark_bits`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct MarkBits([u64; MARK_WORDS]);

impl MarkBits {
    /// Whether mark index `index` is set.
    pub(crate) fn has(&self, index: usize) -> bool {
        self.0.get(index / 64).is_some_and(|word| word & 1 << (index % 64) != 0)
    }

    /// Calls `f` with each mark index set, lowest first.
    pub(crate) fn for_each(&self, mut f: impl FnMut(usize)) {
        for (at, &word) in self.0.iter().enumerate() {
            for_each_bit(word, |bit| f(at * 64 + bit));
        }
    }
}

/// Calls `f` with the index of each bit set in `bits`, lowest first.
fn for_each_bit(mut bits: u64, mut f: impl FnMut(usize)) {
    while bits != 0 {
        f(bits.trailing_zeros() as usize);
        bits &= bits - 1;
    }
}

/// `Bernoulli::from_ratio(p, 100)` for every `p` in `0..=100`, made at first use: what
/// [`Sim::percent_chance`] samples (rand's own distributions, so a draw is the one
/// `random_ratio(p, 100)` makes).
fn percent_distributions() -> &'static [Bernoulli; 101] {
    static MADE: std::sync::OnceLock<[Bernoulli; 101]> = std::sync::OnceLock::new();
    MADE.get_or_init(|| std::array::from_fn(|p| Bernoulli::from_ratio(p as u32, 100).expect("p <= 100")))
}

/// [`Cx::trace_fault`] for [`Sim::should_fail_planned`]'s failures (a few in a hundred calls),
/// out of its frame.
#[cold]
#[inline(never)]
fn trace_fault_cold(cx: &Cx, site: SiteRef<'_>) {
    cx.trace_fault(site);
}

/// Whether the calling thread runs a shuttle execution or a loom model.
pub(crate) fn in_threaded_checker() -> bool {
    #[cfg(feature = "threaded")]
    {
        crate::sync::schedule::in_execution() || crate::sync::in_loom()
    }
    #[cfg(not(feature = "threaded"))]
    {
        false
    }
}

fn lock<T>(mutex: &StdMutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The deterministic world. See the module documentation.
#[derive(Clone)]
pub struct Sim {
    pub(crate) world: Arc<World>,
}

impl std::fmt::Debug for Sim {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sim")
            .field("seed", &self.world.config.seed)
            .field("cpus", &self.world.config.cpus)
            .field("now_ns", &self.now_ns())
            .finish()
    }
}

impl Sim {
    /// A world from `config`. Panics on a CPU count outside 1..=CPUS_MAX, which only a bug in the
    /// caller can cause (the CLI validates user input first).
    pub fn new(config: SimConfig) -> Sim {
        Sim { world: Arc::new(World::new(config)) }.confine_if_single_threaded()
    }

    /// [`Sim::new`]`(config)`, in `kept`'s world made new again when no other handle shares it
    /// (a campaign's previous case, whose model, contexts and locks are gone): the same world a
    /// new `Sim` would be ([`World::reset`]), without allocating and freeing its tables and
    /// lockdep's graph each case. A world still shared (a handle kept somewhere) is left to its
    /// holders and a new one made.
    pub(crate) fn renew(kept: Option<Sim>, config: SimConfig) -> Sim {
        match kept {
            Some(mut sim) => match Arc::get_mut(&mut sim.world) {
                Some(world) => {
                    world.reset(config);
                    sim.confine_if_single_threaded()
                }
                None => Sim::new(config),
            },
            None => Sim::new(config),
        }
    }

    /// A world made inside a shuttle execution or a loom model confines its trace to this OS
    /// thread ([`crate::trace::Trace::confine_to_this_thread`]): every task of those runs on the
    /// thread that runs the execution, so recording skips the trace's spin lock.
    fn confine_if_single_threaded(self) -> Sim {
        if self.world.threaded {
            self.world.trace.confine_keeping_names();
        }
        self
    }

    /// A world with [`SimConfig::new`]`(seed)`.
    pub fn with_seed(seed: u64) -> Sim {
        Sim::new(SimConfig::new(seed))
    }

    /// The configuration this world was built from.
    pub fn config(&self) -> &SimConfig {
        &self.world.config
    }

    /// The seed.
    pub fn seed(&self) -> u64 {
        self.world.config.seed
    }

    /// Possible CPUs.
    pub fn cpus(&self) -> u32 {
        self.world.config.cpus
    }

    /// An execution context for the task named `name`, running on `cpu`. Every context made
    /// with one name belongs to one task (one lane in a trace); the first use of a name gives it
    /// the next id from [`NAMED_TASKS_FIRST`] on, so ids follow the order names first appear.
    pub fn cx(&self, name: &str, cpu: CpuId) -> Cx {
        self.make_cx(cpu, false, || {
            // A name in the slots: the trace already names its task so, and a named task's id
            // is its name's alone ([`NAMED_TASKS_FIRST`]), so no other context renames it.
            self.world.task_names.find_or_add(name, &self.world.named_tasks, |named, slotted| {
                // First used: the next id, kept in a slot while one is free (a name is in the
                // slots or in the map, never both), else in the map, under its mutex, which
                // gives a name past the slots its task again.
                let next = || self.world.next_task.fetch_add(1, Ordering::Relaxed);
                let task = if slotted { next() } else { *named.entry(name.to_string()).or_insert_with(next) };
                (self.world.trace.name_task_shared(task, name), task)
            })
        })
    }

    /// The one way [`Sim::cx`], [`Sim::cx_for_task`] and [`Sim::observer_cx`] make a context:
    /// `cpu` checked, then `named` gives the task's shared name and id (checked first, so a bad
    /// CPU names no task in the trace).
    fn make_cx(&self, cpu: CpuId, observer: bool, named: impl FnOnce() -> (Arc<str>, TaskId)) -> Cx {
        assert!(cpu < self.cpus(), "cpu {cpu} out of range (the Sim has {} CPUs)", self.cpus());
        let (name, task) = named();
        Cx::new(self.clone(), task, name, cpu, observer)
    }

    /// A context for a checker reading model state (invariant checks, a reference model's facts,
    /// coverage): it takes the model's locks like any context, but nothing it does is traced or
    /// checked by lockdep, because it is not kernel code: its lock orders are not the kernel's,
    /// and its reads would bury the interleaving a learner is meant to see. Its task id is 0,
    /// which no traced context uses for a name.
    pub fn observer_cx(&self, name: &str, cpu: CpuId) -> Cx {
        self.make_cx(cpu, true, || {
            self.world.observer_names.find_or_add(name, &self.world.observer_names_add, |(), _| {
                (crate::trace::interned_name(name), 0)
            })
        })
    }

    /// The next context's serial number in this world (the high bits of its lock tokens):
    /// observers ([`Sim::observer_cx`]) and model contexts count apart, so a model context's
    /// serial depends on the model contexts made before it alone, however many checker contexts
    /// a case makes (its check interval, an observer made only when something is due).
    ///
    /// A world whose trace is confined to the calling thread (the op-level campaign's, and a
    /// shuttle execution's or loom model's, whose tasks take turns on that thread and never
    /// between two plain instructions) is used by that thread alone: its serial is a load and a
    /// store, not an atomic read-modify-write (about 20 cycles here, one or two an operation).
    /// Any other world, which several threads may share, takes `fetch_add`.
    #[inline]
    pub(crate) fn next_cx_serial(&self, observer: bool) -> u64 {
        let counter = if observer { &self.world.next_observer_cx } else { &self.world.next_cx };
        if self.world.trace.is_confined_here() {
            let serial = counter.load(Ordering::Relaxed);
            counter.store(serial + 1, Ordering::Relaxed);
            return serial;
        }
        counter.fetch_add(1, Ordering::Relaxed)
    }

    /// An execution context for a task id the model chose (a pid, say).
    pub fn cx_for_task(&self, task: TaskId, name: &str, cpu: CpuId) -> Cx {
        self.make_cx(cpu, false, || (self.world.trace.name_task_shared(task, name), task))
    }

    // --- randomness -------------------------------------------------------------------------

    /// The next 64 random bits.
    pub fn random_u64(&self) -> u64 {
        self.world.book.lock().rng.next_u64()
    }

    /// A uniform number in `0..bound` (`bound` > 0), without modulo bias (rand's uniform range
    /// sampling, which is portable: a seed draws the same numbers on every platform).
    ///
    /// Inlined where a model draws: as a call of its own, saving and restoring the registers
    /// its block refill needs cost 19 instructions of its 58 (taskstats draws two an operation).
    #[inline(always)]
    pub fn below(&self, bound: u64) -> u64 {
        assert!(bound > 0, "Sim::below needs a positive bound");
        self.world.book.lock().rng.random_range(0..bound)
    }

    /// Lends `f` the world's generator for a batch of [`Draws::below`] draws under one hold of
    /// the book: the numbers are the ones [`Sim::below`] would give call by call, without a lock
    /// round trip each. `f` must not reach this world's randomness or fault decisions any other
    /// way while it runs (the book is held); a model's batch of draws is plain arithmetic.
    #[inline(always)]
    pub fn with_draws<R>(&self, f: impl FnOnce(&mut Draws<'_>) -> R) -> R {
        let mut book = self.world.book.lock();
        f(&mut Draws { rng: &mut book.rng })
    }

    /// True with probability `numerator / denominator` (`numerator <= denominator`, both as
    /// `u32`: rand's exact-ratio Bernoulli draw).
    pub fn chance(&self, numerator: u32, denominator: u32) -> bool {
        self.world.book.lock().rng.random_ratio(numerator, denominator)
    }

    /// [`Sim::chance`]`(percent, 100)` (`percent` <= 100) with the distribution made once per
    /// process ([`percent_distributions`]): the same draw from the same stream, without
    /// `Bernoulli::from_ratio`'s division per call (a fault decision draws one per matching
    /// attribute).
    pub(crate) fn percent_chance(&self, percent: u32) -> bool {
        let distribution = percent_distributions()[percent as usize];
        distribution.sample(&mut self.world.book.lock().rng)
    }

    /// One element of `items` chosen uniformly (None when it is empty).
    pub fn choose<'a, T>(&self, items: &'a [T]) -> Option<&'a T> {
        items.choose(&mut self.world.book.lock().rng)
    }

    // --- virtual time -----------------------------------------------------------------------

    /// The virtual clock, nanoseconds since the world began.
    #[inline]
    pub fn now_ns(&self) -> u64 {
        self.world.clock_ns.load(Ordering::Relaxed)
    }

    /// Moves the virtual clock forward.
    pub fn advance_ns(&self, ns: u64) {
        self.world.clock_ns.fetch_add(ns, Ordering::Relaxed);
    }

    // --- faults -----------------------------------------------------------------------------

    /// Replaces the fault plan.
    pub fn set_faults(&self, plan: FaultPlan) {
        let mut book = self.world.book.lock();
        self.world.fault_kinds.store(crate::fault::kinds_matched(&plan), Ordering::Release);
        book.kind_masks = crate::fault::kind_masks(&plan);
        self.world.faults_failed.store(plan.failed(), Ordering::Release);
        self.world.fault_watch.clear(&mut book.watched);
        book.faults = plan;
    }

    /// Failures the fault plan has injected so far: `with_faults(FaultPlan::failed)` as one
    /// load, without the book lock (what a checker reads around an operation to learn whether
    /// a fault struck in it). Kept with the plan under its lock; read from another thread while
    /// a call is decided there, it is the count before or after that call.
    #[inline]
    pub fn faults_failed(&self) -> u64 {
        self.world.faults_failed.load(Ordering::Acquire)
    }

    /// Attribute `attr`'s counters, (`count`, `failed`): calls it matched and failures it
    /// injected so far, (0, 0) when the plan has no such attribute. The first read of an
    /// attribute (below [`crate::fault::WATCHED_MAX`]) takes the book lock and has the fault path
    /// keep a copy of its counters from then on (until the next [`Sim::set_faults`]); later
    /// reads are two loads. Read from another thread while a call is decided there, the two may
    /// be from either side of it.
    #[inline]
    pub fn fault_counters(&self, attr: usize) -> (u64, u64) {
        match self.world.fault_watch.read(attr) {
            Some(counters) => counters,
            None => self.fault_counters_watched(attr),
        }
    }

    /// [`Sim::fault_counters`] the first time (and every time past the mirrored attributes):
    /// read under the book lock, the attribute watched from then on.
    #[cold]
    #[inline(never)]
    fn fault_counters_watched(&self, attr: usize) -> (u64, u64) {
        let mut book = self.world.book.lock();
        let Book { faults, watched, .. } = &mut *book;
        self.world.fault_watch.watch(faults, watched, attr);
        faults.attrs.get(attr).map_or((0, 0), |a| (a.count, a.failed))
    }

    /// The fault plan with its counters as they stand.
    pub fn faults(&self) -> FaultPlan {
        self.world.book.lock().faults.clone()
    }

    /// Runs `f` on the fault plan as it stands, without copying it: what a checker that reads a
    /// counter or two per operation should use ([`Sim::faults`] clones every attribute and its
    /// site name). `f` must not call back into the `Sim`'s fault plan or draw from its RNG (the
    /// two share a lock).
    pub fn with_faults<R>(&self, f: impl FnOnce(&FaultPlan) -> R) -> R {
        f(&self.world.book.lock().faults)
    }

    /// Whether the fault plan fails this call (`should_fail()` in lib/fault-inject.c). A failed
    /// call is recorded in the trace.
    #[inline]
    pub fn should_fail(&self, cx: &Cx, site: &FaultSite, size: u64) -> bool {
        self.should_fail_at(cx, site.as_ref(), size)
    }

    /// [`Sim::should_fail`] for a site given by kind and name (no `FaultSite` made per call).
    /// A call of a kind no attribute matches (every call, with no plan) counts nothing and
    /// draws nothing: answered from [`World::fault_kinds`] without the plan's lock.
    #[inline]
    pub(crate) fn should_fail_at(&self, cx: &Cx, site: SiteRef<'_>, size: u64) -> bool {
        let kinds = self.world.fault_kinds.load(Ordering::Acquire);
        if kinds & crate::fault::kind_bit(site.kind) == 0 {
            return false;
        }
        self.should_fail_planned(cx, site, size)
    }

    /// The rest of [`Sim::should_fail_at`], for a call of a kind some attribute matches: a call
    /// of its own, so the test before it inlines where a model asks. The plan and the RNG are
    /// one lock's ([`Book`]): the draws are [`Sim::percent_chance`]'s, from the same stream in
    /// the same order, without a lock round trip each. Only the attributes the call's kind
    /// admits and whose site filter the name passes are visited ([`crate::fault::SiteMasks`],
    /// made with the plan, which remembers a name's matches). A failure's trace is out of line.
    #[inline(never)]
    fn should_fail_planned(&self, cx: &Cx, site: SiteRef<'_>, size: u64) -> bool {
        let fail = {
            let mut book = self.world.book.lock();
            let Book { rng, faults, kind_masks, distributions, watched } = &mut *book;
            let draw = |percent: u32| distributions[percent as usize].sample(rng);
            let (fail, visited) = match kind_masks {
                Some(masks) => {
                    let matching = masks.matching(faults, site);
                    (faults.should_fail_masked(matching, masks.plain(), size, draw), matching)
                }
                None => (faults.should_fail_at(site, size, draw), u64::MAX),
            };
            if visited & *watched != 0 {
                self.world.fault_watch.mirror(faults, visited & *watched);
            }
            if fail {
                // Summed again (a call may fail in several attributes), only when one failed.
                self.world.faults_failed.store(faults.failed(), Ordering::Release);
            }
            fail
        };
        if fail {
            trace_fault_cold(cx, site);
        }
        fail
    }

    // --- RCU ----------------------------------------------------------------------------------

    /// Ends every grace period that can end now and runs the RCU callbacks that became due, in
    /// the order queued, on the "rcu" task: the op-level simulation's deterministic stand-in for
    /// the grace-period kthread. Never waits. Returns how many callbacks ran.
    ///
    /// The test for nothing queued is inlined where the harness calls it after each operation
    /// (most operations queue nothing); the rest is a call.
    #[inline]
    pub fn rcu_advance(&self) -> usize {
        if crate::rcu::nothing_queued(self) {
            return 0;
        }
        crate::rcu::advance(self)
    }

    /// RCU callbacks queued and not yet run.
    pub fn rcu_callbacks_pending(&self) -> usize {
        crate::rcu::callbacks_pending(self)
    }

    // --- findings ---------------------------------------------------------------------------

    /// The trace.
    #[inline]
    pub fn trace(&self) -> &Trace {
        &self.world.trace
    }

    /// The hash of every event so far: equal for equal seeds, byte for byte.
    pub fn trace_hash(&self) -> u64 {
        self.world.trace.hash()
    }

    /// Lockdep.
    #[inline]
    pub fn lockdep(&self) -> &Lockdep {
        &self.world.lockdep
    }

    /// Records a violation (and a trace event for it).
    pub fn report(&self, cx: Option<&Cx>, violation: Violation) {
        let kind =
            EventKind::Violation { kind: violation.kind.to_string(), message: violation.message.clone() };
        match cx {
            Some(cx) => cx.trace(kind),
            None => self.world.trace.record(self.now_ns(), 0, 0, kind),
        }
        lock(&self.world.violations).push(violation);
        self.world.violations_count.fetch_add(1, Ordering::Release);
    }

    /// Records that the run reached an interesting state (`"listener-pruned"`), for the
    /// "sometimes" checks of property tests and a campaign's coverage table. A mark is checker
    /// state: it takes no model lock, emits no trace event and is no loom or shuttle object.
    ///
    /// A mark made before (most are, every operation) is one load and compare inlined where the
    /// model marks; the first of each in a world is a call ([`Sim::mark_first`]).
    #[inline]
    pub fn mark(&self, name: &'static str) {
        if let Some(key) = mark_key(name) {
            if self.marks_seen_slot(key).load(Ordering::Acquire) == key {
                return;
            }
        }
        self.mark_first(name);
    }

    /// `key`'s slot in [`World::marks_seen`].
    #[inline]
    fn marks_seen_slot(&self, key: u64) -> &AtomicU64 {
        let mixed = key.wrapping_mul(0x9e37_79b9_7f4a_7c15);
        &self.world.marks_seen[(mixed >> 58) as usize % MARKS_SEEN]
    }

    /// [`Sim::mark`] for a mark not found in the marks-seen cache: its bit set (or its text
    /// kept, past the bits) and the cache told.
    #[inline(never)]
    fn mark_first(&self, name: &'static str) {
        let key = mark_key(name);
        let slot = key.map(|key| self.marks_seen_slot(key));
        let index = mark_index(name) as usize;
        match self.world.marks.get(index / 64) {
            Some(word) => drop(word.fetch_or(1 << (index % 64), Ordering::AcqRel)),
            None => drop(lock(&self.world.marks_spilled).insert(name)),
        }
        if let (Some(key), Some(slot)) = (key, slot) {
            slot.store(key, Ordering::Release);
        }
    }

    /// The marks recorded so far, sorted.
    pub fn marks(&self) -> std::collections::BTreeSet<&'static str> {
        // The marks' ranks as bits, read back in order: the texts come sorted, so the set's
        // own sort moves nothing.
        let mut sorted = Vec::new();
        {
            let names = mark_names();
            let mut ranks = vec![0u64; names.texts.len().div_ceil(64)];
            for (at, word) in self.world.marks.iter().enumerate() {
                for_each_bit(word.load(Ordering::Acquire), |bit| {
                    let rank = names.ranks[at * 64 + bit] as usize;
                    ranks[rank / 64] |= 1 << (rank % 64);
                });
            }
            sorted.reserve(ranks.iter().map(|word| word.count_ones() as usize).sum());
            for (at, &word) in ranks.iter().enumerate() {
                for_each_bit(word, |bit| sorted.push(names.sorted[at * 64 + bit]));
            }
        }
        let mut set: std::collections::BTreeSet<&'static str> = sorted.into_iter().collect();
        set.extend(lock(&self.world.marks_spilled).iter().copied());
        set
    }

    /// The marks recorded so far as bits by mark index: [`Sim::marks`] without building the set
    /// of texts, for a campaign that only counts them (with [`Sim::marks_spilled`]).
    pub(crate) fn mark_bits(&self) -> MarkBits {
        MarkBits(std::array::from_fn(|at| self.world.marks[at].load(Ordering::Acquire)))
    }

    /// The marks recorded past [`Sim::mark_bits`]' indexes, by text.
    pub(crate) fn marks_spilled(&self) -> std::collections::BTreeSet<&'static str> {
        lock(&self.world.marks_spilled).clone()
    }

    /// Whether anything has been reported, lockdep included: the cheap test the harness makes
    /// after every operation, before building [`Sim::violations`].
    pub fn has_violations(&self) -> bool {
        self.world.violations_count.load(Ordering::Acquire) > 0 || self.lockdep().reports_count() > 0
    }

    /// Every violation reported so far, lockdep's included, in the order found.
    pub fn violations(&self) -> Vec<Violation> {
        let mut found = lock(&self.world.violations).clone();
        found.extend(
            self.lockdep()
                .reports()
                .into_iter()
                .map(|report| Violation::new(ViolationKind::lockdep(report.kind()), report.to_string())),
        );
        found
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every kind of draw, interleaved as a case interleaves them (a bounded number, a ratio, a
    /// choice, raw bits, a fault decision's percentage from the table, a lent batch of two), gives what the same calls on a bare ChaCha8 stream
    /// of the seed give, in a world confined to this thread and in one that is not: the lock
    /// around the generator may change, the sequence may not.
    #[test]
    fn draws_are_the_bare_generators_whatever_the_lock() {
        let items = [10u8, 20, 30, 40, 50];
        for confined in [false, true] {
            let sim = Sim::with_seed(11);
            if confined {
                sim.trace().confine_to_this_thread();
            }
            let mut bare = ChaCha8Rng::seed_from_u64(11);
            for step in 0..1000u64 {
                // A fault decision's percent draw at every percentage, 0 and 100 (no draw) too.
                let percent = (step * 7 % 101) as u32;
                let (got, want) = match step % 6 {
                    0 => (sim.below(step + 1), bare.random_range(0..step + 1)),
                    5 => (
                        sim.with_draws(|draws| draws.below(step + 1) ^ draws.below(3) << 40),
                        bare.random_range(0..step + 1) ^ bare.random_range(0..3u64) << 40,
                    ),
                    4 => (u64::from(sim.percent_chance(percent)), u64::from(bare.random_ratio(percent, 100))),
                    1 => (u64::from(sim.chance(4, 100)), u64::from(bare.random_ratio(4, 100))),
                    2 => (
                        u64::from(*sim.choose(&items).unwrap()),
                        u64::from(*items.choose(&mut bare).unwrap()),
                    ),
                    _ => (sim.random_u64(), bare.next_u64()),
                };
                assert_eq!(got, want, "seed 11, step {step}, confined {confined}");
            }
        }
    }

    #[test]
    fn same_seed_same_random_stream_and_other_seed_differs() {
        let a = Sim::with_seed(7);
        let b = Sim::with_seed(7);
        let c = Sim::with_seed(8);
        let draw = |sim: &Sim| (0..16).map(|_| sim.below(1000)).collect::<Vec<_>>();
        let stream = draw(&a);
        assert_eq!(stream, draw(&b));
        assert_ne!(stream, draw(&c));
        assert!(stream.iter().all(|&n| n < 1000));
    }

    #[test]
    fn chance_extremes_are_exact() {
        let sim = Sim::with_seed(1);
        assert!((0..100).all(|_| sim.chance(1, 1)));
        assert!((0..100).all(|_| !sim.chance(0, 1)));
    }

    #[test]
    fn marks_made_again_are_kept_once_and_every_distinct_mark_is_kept() {
        let sim = Sim::with_seed(1);
        let names: Vec<&'static str> =
            (0..200).map(|i| &*Box::leak(format!("mark-{i}").into_boxed_str())).collect();
        for _ in 0..3 {
            names.iter().for_each(|name| sim.mark(name));
        }
        let marks = sim.marks();
        assert_eq!(marks.len(), names.len());
        assert!(names.iter().all(|name| marks.contains(name)));
        assert!(!sim.has_violations());
        sim.report(None, Violation::new("invariant", "x"));
        assert!(sim.has_violations());
    }

    /// Marks past the words' room are kept by text, a text marked from another address is one
    /// mark, and a world keeps only its own marks, sorted.
    #[test]
    fn marks_past_the_bits_and_copies_of_a_text_are_kept_once_each() {
        let leak = |text: String| -> &'static str { Box::leak(text.into_boxed_str()) };
        let sim = Sim::with_seed(1);
        let names: Vec<&'static str> =
            (0..MARK_WORDS * 64 + 50).map(|i| leak(format!("spill-{i:04}"))).collect();
        names.iter().rev().for_each(|name| sim.mark(name));
        let copy = leak("spill-0007".to_string());
        sim.mark(copy);
        let marks: Vec<&str> = sim.marks().into_iter().collect();
        assert_eq!(marks, names, "every mark once, in text order");
        let other = Sim::with_seed(2);
        other.mark(copy);
        other.mark(names[3]);
        assert_eq!(other.marks().into_iter().collect::<Vec<_>>(), ["spill-0003", "spill-0007"]);
    }

    /// A thread's copy of the mark indexes it learnt agrees with the process's table: marks
    /// first seen on another thread (and a copy of one's text there) come back with the same
    /// indexes, so worlds on both threads name the same marks by the same bits.
    #[test]
    fn marks_seen_first_on_another_thread_keep_their_indexes() {
        let leak = |text: String| -> &'static str { Box::leak(text.into_boxed_str()) };
        let names: Vec<&'static str> = (0..40).map(|i| leak(format!("thread-mark-{i:02}"))).collect();
        let copy = leak("thread-mark-05".to_string());
        let there = std::thread::spawn({
            let names = names.clone();
            move || names.iter().map(|name| mark_index(name)).collect::<Vec<u32>>()
        })
        .join()
        .expect("the other thread");
        let here: Vec<u32> = names.iter().map(|name| mark_index(name)).collect();
        assert_eq!(here, there);
        assert_eq!(mark_index(copy), here[5], "a copy of a text is that text's mark");
        // Worlds on both threads record the same marks alike, as bits (or by text, when another
        // test's marks filled the bits first).
        let sim = Sim::with_seed(4);
        sim.mark(names[9]);
        sim.mark(copy);
        let (bits, marks) = std::thread::spawn(move || {
            let sim = Sim::with_seed(4);
            sim.mark(copy);
            sim.mark(names[9]);
            (sim.mark_bits(), sim.marks())
        })
        .join()
        .expect("the other thread");
        assert_eq!(sim.mark_bits(), bits);
        assert_eq!(sim.marks(), marks);
        assert_eq!(marks.into_iter().collect::<Vec<_>>(), ["thread-mark-05", "thread-mark-09"]);
    }

    /// `with_faults` reads the same counters `faults` copies, as the plan's calls move them.
    #[test]
    fn with_faults_reads_the_counters_faults_copies() {
        use crate::fault::{FaultAttr, FaultKind};
        let sim = Sim::with_seed(3);
        sim.set_faults(FaultPlan::with(FaultAttr::nth(2).kind(FaultKind::Call)));
        let cx = sim.cx("t", 0);
        let site = FaultSite::call("x");
        let fails: Vec<bool> = (0..3).map(|_| sim.should_fail(&cx, &site, 0)).collect();
        assert_eq!(fails, [false, true, false]);
        let read = sim.with_faults(|plan| (plan.failed(), plan.attrs[0].count));
        assert_eq!(read, (1, 3));
        assert_eq!(read, (sim.faults().failed(), sim.faults().attrs[0].count));
    }

    /// `faults_failed` and `fault_counters` read, without the book lock, what `with_faults`
    /// reads under it, after every call of a run that fails calls by chance, by count and at one
    /// site: attributes watched from the start, from the middle of the run and never, one past
    /// the mirrored ones, one the plan does not have; then again after a new plan, and with a
    /// plan of more attributes than the kind masks take (every call visits them all).
    #[test]
    fn fault_counters_read_what_the_plan_holds() {
        use crate::fault::{FaultAttr, FaultKind, WATCHED_MAX};
        let plans = [
            FaultPlan::with(FaultAttr::probability(30).kind(FaultKind::Slab))
                .and(FaultAttr::nth(3).kind(FaultKind::Call))
                .and(FaultAttr::probability(50).site("clone").times(4)),
            FaultPlan { attrs: (0..70).map(|at| FaultAttr::probability(at % 7)).collect() },
        ];
        let sim = Sim::with_seed(5);
        let cx = sim.cx("t", 0);
        let sites = [FaultSite::slab("kmalloc"), FaultSite::call("skb_clone"), FaultSite::slab("clone_slab")];
        for (round, plan) in plans.into_iter().enumerate() {
            sim.set_faults(plan);
            let attrs = sim.with_faults(|plan| plan.attrs.len());
            let read_all = |sim: &Sim| {
                (sim.faults_failed(), (0..attrs + 1).map(|at| sim.fault_counters(at)).collect::<Vec<_>>())
            };
            let locked = |sim: &Sim| {
                sim.with_faults(|plan| {
                    let counters = plan.attrs.iter().map(|a| (a.count, a.failed)).chain([(0, 0)]);
                    (plan.failed(), counters.collect::<Vec<_>>())
                })
            };
            sim.fault_counters(0);
            for step in 0..300 {
                sim.should_fail(&cx, &sites[step % 3], 64);
                if step == 150 {
                    assert_eq!(read_all(&sim), locked(&sim), "round {round}, step {step}");
                }
                assert_eq!(sim.faults_failed(), locked(&sim).0, "round {round}, step {step}");
                assert_eq!(sim.fault_counters(0), locked(&sim).1[0], "round {round}, step {step}");
            }
            assert_eq!(read_all(&sim), locked(&sim), "round {round}, the end");
            assert!(sim.faults_failed() > 0, "round {round}: nothing failed");
            assert!(attrs < WATCHED_MAX || sim.fault_counters(WATCHED_MAX).0 > 0, "round {round}");
        }
        sim.set_faults(FaultPlan::none());
        assert_eq!((sim.faults_failed(), sim.fault_counters(0)), (0, (0, 0)), "a new plan, new counters");
    }

    /// The three context makers share one path ([`Sim::make_cx`]): each refuses a CPU out of
    /// range before it names a task, and each names its task as the trace shows it.
    #[test]
    fn every_context_maker_checks_the_cpu_and_names_its_task() {
        let sim = Sim::new(SimConfig::new(1).cpus(2).trace(crate::trace::TraceMode::Full));
        let makers: [(&str, &dyn Fn(CpuId) -> Cx); 3] = [
            ("cx", &|cpu| sim.cx("named", cpu)),
            ("cx_for_task", &|cpu| sim.cx_for_task(42, "pid42", cpu)),
            ("observer_cx", &|cpu| sim.observer_cx("checker", cpu)),
        ];
        for (maker, make) in makers {
            let refused = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| drop(make(2))));
            assert!(refused.is_err(), "{maker} accepted cpu 2 of 2");
            let cx = make(1);
            assert_eq!(cx.cpu(), 1, "{maker}");
        }
        let names = sim.trace().task_names();
        assert_eq!(names.get(&42).map(String::as_str), Some("pid42"));
        assert_eq!(names.get(&NAMED_TASKS_FIRST).map(String::as_str), Some("named"));
        assert_eq!(names.len(), 2, "a refused CPU named no task, an observer none: {names:?}");
        assert_eq!(sim.observer_cx("checker", 0).name(), "checker");
    }

    /// A model context kept and lent to pid after pid ([`Cx::renew_for_task`]) is the context
    /// [`Sim::cx_for_task`] would make at that point: the same task, name and CPU, the same
    /// serials (the trace hash over lock tokens) and the same names in the trace, whether the
    /// trace reads names (a pid another context renamed is named again) or not (a confined
    /// hash-only trace, whose serials are a load and a store).
    #[test]
    fn a_context_lent_to_pids_is_what_a_new_context_would_be() {
        use crate::trace::TraceMode;
        for (mode, confined) in
            [(TraceMode::Full, false), (TraceMode::HashOnly, true), (TraceMode::Full, true)]
        {
            let world = || {
                let sim = Sim::new(SimConfig::new(2).cpus(2).trace(mode));
                if confined {
                    sim.trace().confine_to_this_thread();
                }
                (sim, crate::SpinLock::new("l", ()))
            };
            let ((fresh, fresh_lock), (lent, lent_lock)) = (world(), world());
            let mut kept: Option<Cx> = None;
            for (round, pid) in [7, 9, 7, 7, 12, 9].into_iter().enumerate() {
                let cpu = round as CpuId % 2;
                let made = fresh.cx_for_task(pid, "sendmsg", cpu);
                match &mut kept {
                    Some(cx) => cx.renew_for_task(pid, cpu),
                    None => kept = Some(lent.cx_for_task(pid, "sendmsg", cpu)),
                }
                let cx = kept.as_ref().expect("made or renewed");
                assert_eq!((cx.task(), cx.name(), cx.cpu()), (made.task(), made.name(), made.cpu()));
                drop((fresh_lock.lock(&made), lent_lock.lock(cx)));
                // The pid under another name in between, as taskstats' driver names it.
                for sim in [&fresh, &lent] {
                    drop(sim.cx_for_task(pid, if round % 3 == 1 { "do_exit" } else { "sendmsg" }, 0));
                    drop(sim.observer_cx("op", 0));
                }
                let (ours, theirs) = (lent.trace(), fresh.trace());
                assert_eq!(ours.task_names(), theirs.task_names(), "{mode:?} round {round}");
                assert_eq!(
                    (ours.hash(), ours.len()),
                    (theirs.hash(), theirs.len()),
                    "{mode:?} round {round}"
                );
            }
            assert!(!fresh.trace().is_empty(), "locks were traced");
        }
    }

    /// Context serials count model contexts and observers apart, from 0, in a confined world
    /// (a load and a store) and in a shared one (`fetch_add`): four threads taking serials from
    /// one world at once get each number once.
    #[test]
    fn context_serials_are_counted_once_each_confined_or_shared() {
        let confined = Sim::with_seed(1);
        confined.trace().confine_to_this_thread();
        let taken: Vec<u64> = [false, true, false, false, true].map(|o| confined.next_cx_serial(o)).into();
        assert_eq!(taken, [0, 0, 1, 2, 1]);
        let shared = Sim::with_seed(1);
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let sim = shared.clone();
                std::thread::spawn(move || (0..2_000).map(|_| sim.next_cx_serial(false)).collect::<Vec<_>>())
            })
            .collect();
        let mut all: Vec<u64> = threads.into_iter().flat_map(|t| t.join().expect("no panic")).collect();
        all.sort_unstable();
        assert!(all.iter().copied().eq(0..8_000), "a serial lost or taken twice");
        assert_eq!(shared.next_cx_serial(false), 8_000);
    }

    /// Named tasks get ids in the order their names first appear, and keep them, whether the
    /// name sits in a slot or, past the slots, only in the map: twenty names (more than
    /// [`NAME_SLOTS`]), each asked for twice in two orders, three times from another thread.
    #[test]
    fn a_named_task_keeps_its_first_id_in_the_slots_and_past_them() {
        let sim = Sim::new(SimConfig::new(1).trace(crate::trace::TraceMode::Full));
        let names: Vec<String> = (0..20).map(|at| format!("task{at}")).collect();
        assert!(names.len() > NAME_SLOTS);
        let ids: Vec<TaskId> = names.iter().map(|name| sim.cx(name, 0).task()).collect();
        let expect: Vec<TaskId> = (0..20).map(|at| NAMED_TASKS_FIRST + at).collect();
        assert_eq!(ids, expect);
        for (name, &id) in names.iter().zip(&ids).rev() {
            assert_eq!(sim.cx(name, 0).task(), id, "{name} again, last first");
        }
        let there = sim.clone();
        let from_thread = std::thread::spawn(move || {
            (0..20).map(|at| there.cx(&format!("task{at}"), 0).task()).collect::<Vec<_>>()
        });
        assert_eq!(from_thread.join().expect("no panic"), expect);
        assert_eq!(sim.cx("task20", 0).task(), NAMED_TASKS_FIRST + 20, "a new name after them");
        let traced = sim.trace().task_names();
        assert!(names.iter().zip(&ids).all(|(name, id)| traced.get(id) == Some(name)), "{traced:?}");
    }

    #[test]
    fn violations_include_lockdep_reports() {
        let sim = Sim::new(SimConfig::new(1).lockdep(ReportMode::Collect));
        sim.report(None, Violation::new("invariant", "x"));
        assert_eq!(sim.violations().len(), 1);
        assert_eq!(sim.violations()[0].kind, "invariant");
    }

    /// Everything a world holds, as text: every field named (a field added to the world does
    /// not compile here until the test reads it), the trace and lockdep by what they answer.
    fn world_state(sim: &Sim) -> String {
        let World {
            config,
            book,
            clock_ns,
            fault_kinds,
            faults_failed,
            fault_watch,
            trace,
            lockdep,
            violations,
            marks,
            marks_spilled,
            marks_seen,
            violations_count,
            reclaim,
            named_tasks,
            next_task,
            next_cx,
            next_observer_cx,
            rcu,
            threaded,
            task_names,
            observer_names,
            observer_names_add,
        } = &*sim.world;
        // The reclaim plan is private to its module: what it holds shows in reclaim's answers.
        let _ = reclaim;
        let reclaim = (sim.shrinkers(), sim.reclaim_runs(), sim.rcu_callbacks_pending());
        let book = {
            let Book { rng, faults, kind_masks, distributions, watched } = &*book.lock();
            let rng = (rng.get_seed(), rng.get_stream(), rng.get_word_pos());
            format!("{rng:?} {faults:?} {kind_masks:?} {:p} {watched}", *distributions)
        };
        let watch: Vec<_> = (0..crate::fault::WATCHED_MAX).map(|attr| fault_watch.read(attr)).collect();
        let trace =
            (trace.hash(), trace.len(), trace.events(), trace.task_names(), trace.is_confined(), trace);
        let lockdep = (
            lockdep.reports(),
            lockdep.dependencies(),
            lockdep.classes_count(),
            lockdep.reports_count(),
            lockdep.validations_count(),
            lockdep.mode(),
            lockdep.is_enabled(),
        );
        let load =
            |words: &[AtomicU64]| words.iter().map(|word| word.load(Ordering::Relaxed)).collect::<Vec<_>>();
        let names = |names: &SharedNames| {
            let slots: Vec<_> = names.slots.iter().map(|slot| slot.get().cloned()).collect();
            (names.filled.load(Ordering::Relaxed), slots)
        };
        let counters = [next_cx, next_observer_cx].map(|counter| counter.load(Ordering::Relaxed));
        format!(
            "{config:?}\n{book}\n{clock_ns:?} {fault_kinds:?} {faults_failed:?} {watch:?}\n{trace:?}\n{lockdep:?}\n\
             {violations:?} {:?} {marks_spilled:?} {:?} {violations_count:?}\n{named_tasks:?} {next_task:?} \
             {counters:?} {:?} {threaded}\n{:?}\n{:?}\n{} {reclaim:?}",
            load(marks),
            load(marks_seen),
            rcu.get().map(|_| "rcu state"),
            names(task_names),
            names(observer_names),
            observer_names_add.is_poisoned(),
        )
    }

    /// Uses `sim` as a case would, in every part of its world: draws, the clock, a fault plan
    /// and its watched counters, locks (an inversion lockdep reports), RCU callbacks, reclaim
    /// (a plan, a shrinker, runs), marks past the mark bits, named tasks past the name slots,
    /// pids, observers, violations, and a mutex of the world left poisoned.
    fn use_world(sim: &Sim, round: u64) {
        use crate::fault::{FaultAttr, FaultKind};
        sim.advance_ns(round * 1000 + sim.below(1000));
        sim.set_faults(FaultPlan::with(FaultAttr::probability(40).kind(FaultKind::Slab)));
        sim.set_reclaim_plan(FaultPlan::with(FaultAttr::probability(50)));
        sim.register_shrinker("shrinker", Arc::new(|_: &Cx, _: &crate::mm::reclaim::ShrinkControl| 1));
        let (a, b) = (crate::SpinLock::new("reset-a", ()), crate::SpinLock::new("reset-b", ()));
        let named: Vec<Cx> =
            (0..NAME_SLOTS as u64 + 3).map(|at| sim.cx(&format!("task {}", at + round), 0)).collect();
        for (at, cx) in named.iter().enumerate() {
            sim.should_fail(cx, &FaultSite::slab("reset_slab"), 64);
            sim.fault_counters(0);
            let (first, second) = if at % 2 == 0 { (&a, &b) } else { (&b, &a) };
            let _first = first.lock(cx);
            drop(second.lock(cx));
            crate::rcu::call_rcu(cx, |_| ());
            sim.observer_cx(&format!("observer {}", at % 10), 0);
            sim.cx_for_task(at as TaskId + 1, "pid", 0);
            sim.mark(["reset one", "reset two"][at % 2]);
        }
        crate::mm::reclaim::direct_reclaim(&named[0], crate::mm::Gfp::GFP_KERNEL);
        sim.rcu_advance();
        crate::rcu::call_rcu(&named[1], |_| ());
        // Past the mark bits, the same texts at the same addresses in every world (the cache of
        // marks seen is by address).
        static TEXTS: std::sync::OnceLock<Vec<&'static str>> = std::sync::OnceLock::new();
        let texts = TEXTS.get_or_init(|| {
            (0..MARK_WORDS * 64 + 10)
                .map(|at| &*Box::leak(format!("reset mark {at}").into_boxed_str()))
                .collect()
        });
        texts.iter().for_each(|text| sim.mark(text));
        sim.report(Some(&named[2]), Violation::new("invariant", format!("round {round}")));
        let poison = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let _held = lock(&sim.world.observer_names_add);
            panic!("poisoned");
        }));
        assert!(poison.is_err() && sim.world.observer_names_add.is_poisoned());
    }

    /// A world used and then reset (`World::reset`, as `Sim::renew` does for a campaign's next
    /// case) is the world a new `Sim` of the same configuration is: equal in every field before
    /// and after both are used alike, whatever the configuration used before (other seeds, CPUs,
    /// trace modes, lockdep on or off); and only a world no other handle shares is reused.
    #[test]
    fn a_reset_world_is_a_new_one() {
        let configs = [
            SimConfig::new(3).lockdep(ReportMode::Collect).trace(TraceMode::HashOnly),
            SimConfig::new(4).cpus(3).lockdep(ReportMode::Collect).trace(TraceMode::Tail(20)),
            SimConfig::new(5).lockdep(ReportMode::Collect).without_lockdep().trace(TraceMode::Full),
        ];
        for (used, config) in configs.iter().flat_map(|used| configs.iter().map(move |config| (used, config)))
        {
            let mut kept = Sim::new(used.clone());
            use_world(&kept, 1);
            let id = kept.lockdep().id();
            let world = Arc::as_ptr(&kept.world);
            let shared = kept.clone();
            let renewed = Sim::renew(Some(shared), config.clone());
            assert!(!std::ptr::eq(Arc::as_ptr(&renewed.world), world), "a shared world is not reused");
            drop(renewed);
            kept = Sim::renew(Some(kept), config.clone());
            assert!(std::ptr::eq(Arc::as_ptr(&kept.world), world), "an unshared world is reused");
            assert!(kept.lockdep().id() > id, "a reset validator has a new id");
            let new = Sim::new(config.clone());
            let context = format!("{used:?} reset to {config:?}");
            assert_eq!(world_state(&kept), world_state(&new), "{context}");
            for sim in [&kept, &new] {
                sim.trace().confine_to_this_thread();
                use_world(sim, 2);
            }
            assert_eq!(world_state(&kept), world_state(&new), "{context}, used");
            assert_eq!(kept.violations(), new.violations(), "{context}");
            assert_eq!(kept.marks(), new.marks(), "{context}");
            assert_eq!(
                (kept.shrinkers(), kept.reclaim_runs(), kept.rcu_callbacks_pending()),
                (new.shrinkers(), new.reclaim_runs(), new.rcu_callbacks_pending()),
                "{context}"
            );
        }
    }
}
