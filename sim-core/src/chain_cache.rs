//! Lockdep's fast path: the lock chains already validated, as the kernel's `lookup_chain_cache()`
//! keeps them, and each class name's id, so that an acquisition lockdep has seen before in the
//! same held-lock context costs a few table lookups instead of the class graph's mutex and
//! searches.
//!
//! Validating an acquisition only ever adds to the graph (an edge, a usage bit, a report), and
//! what it adds depends on the classes held and how each is held, the class taken, how it is
//! taken and the interrupt state: the chain's key. So once a chain was validated without a
//! report, validating it again adds nothing, whichever task or thread does it; the cache skips
//! it, as the kernel's lookup_chain_cache() skips validate_chain(). A cycle the graph closes
//! later through the chain's dependencies is found by the dependency that closes it (the
//! cycle search also runs for a dependency already present, `Graph::strong_path`).
//! A chain that produced a report is never cached, so a later acquisition goes the whole way.
//!
//! The cache is per thread (no atomics, no lock) and holds the chains of one [`Lockdep`] at a
//! time, the one used last on this thread: a campaign makes a `Sim` per case, and a cache that
//! outlived its validator would be a leak. It is checker bookkeeping: plain `std`, never a loom
//! or shuttle object, and it is only asked, never iterated, so it cannot change a run.

use std::cell::RefCell;
use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::lockdep::{ClassId, HeldLock, IrqState, LockMode};

/// A lock object's memo of its class (the kernel's `lockdep_map`, which caches its
/// `class_cache`): the name, the name's trace hash, and the class id the last validator that
/// checked it gave it, so a lock taken again costs neither a name lookup nor a text hash.
///
/// The cached id is tagged with the validator's identity ([`crate::lockdep::Lockdep`] ids are
/// unique in the process) and is a relaxed atomic: two threads that race to fill it write the
/// same value, since one validator gives one name one id and every thread that uses a memo
/// checks for the same validator. A lock object belongs to one world, hence one validator;
/// sim-core's classes taken by name with no lock object (`fs_reclaim`, the page lock,
/// `oom_progress`) keep a memo per thread (`thread_local!`), so worker threads running other
/// worlds never overwrite each other's (a tag from another validator would only be a miss).
#[derive(Debug)]
pub(crate) struct ClassKey {
    pub(crate) name: &'static str,
    pub(crate) name_hash: u64,
    /// `validator id << CLASS_BITS | class id`, 0 when nothing is cached.
    cached: AtomicU64,
    /// The lookup keys ([`lookup_key`]) of the last [`MEMO_CHAINS`] chains an acquisition of
    /// this lock was known clean in, the latest first, each tagged with the validator
    /// ([`chain_tag`]); 0 when none. A lock taken again in the same context (the common case),
    /// or by turns in a few (a lock taken alone, under another, with irqs off), is then known
    /// clean from its own memo, without the thread's table. Each slot holds a whole tag (a
    /// relaxed race between threads leaves some tag this validator or another remembered, at
    /// worst a miss).
    chains: [AtomicU64; MEMO_CHAINS],
}

/// Chains a lock's memo remembers. Two left about a fifth of taskstats' hottest lock's
/// acquisitions (a socket's queue lock, taken in several chains by turns) to the thread's table
/// at about 110 instructions each; four slots cost one more compare per slot on a miss and 16
/// bytes a lock.
const MEMO_CHAINS: usize = 4;

/// Bits of [`ClassKey::cached`] holding the class id; the rest hold the validator's id.
const CLASS_BITS: u32 = 24;

impl ClassKey {
    /// The memo of a lock of class `name`, with nothing cached yet. A `const fn`, so a class
    /// taken by name with no lock object to keep the memo in has one made at compile time (the
    /// name's hash too) in a `thread_local!`.
    pub(crate) const fn new(name: &'static str) -> ClassKey {
        ClassKey {
            name,
            name_hash: crate::trace::const_name_hash(name),
            cached: AtomicU64::new(0),
            chains: [const { AtomicU64::new(0) }; MEMO_CHAINS],
        }
    }

    /// Whether the validator whose [`validator_mix`] is `mix` found this lock clean in the
    /// chain `lookup`, by one of the last [`MEMO_CHAINS`] chains it remembered.
    #[inline]
    fn chain_known(&self, mix: u64, lookup: u64) -> bool {
        let tag = lookup ^ mix;
        self.chains.iter().any(|slot| slot.load(Ordering::Relaxed) == tag)
    }

    /// Remembers that validator `lockdep` found this lock clean in the chain `lookup`: the
    /// latest chain first, the others moved down one slot, the oldest forgotten.
    fn remember_chain(&self, lockdep: u64, lookup: u64) {
        let tag = chain_tag(lockdep, lookup);
        if self.chains[0].load(Ordering::Relaxed) == tag {
            return;
        }
        for slot in (1..MEMO_CHAINS).rev() {
            self.chains[slot].store(self.chains[slot - 1].load(Ordering::Relaxed), Ordering::Relaxed);
        }
        self.chains[0].store(tag, Ordering::Relaxed);
    }

    /// The class id validator `lockdep` gave this lock, if it is cached.
    pub(crate) fn class(&self, lockdep: u64) -> Option<ClassId> {
        // A validator's id is never 0 (`Lockdep`'s ids count from 1), so an empty memo (0)
        // matches none: no test of its own.
        debug_assert_ne!(lockdep, 0, "validator ids count from 1");
        let cached = self.cached.load(Ordering::Relaxed);
        (cached >> CLASS_BITS == lockdep).then_some((cached & ((1 << CLASS_BITS) - 1)) as ClassId)
    }

    /// Caches `class` as validator `lockdep`'s id for this lock (skipped for ids too large to pack).
    pub(crate) fn remember(&self, lockdep: u64, class: ClassId) {
        if u64::from(class) < 1 << CLASS_BITS && lockdep < 1 << (64 - CLASS_BITS) {
            self.cached.store(lockdep << CLASS_BITS | u64::from(class), Ordering::Relaxed);
        }
    }
}

/// The chain key of a held-lock stack after `class`, taken in `mode`, is pushed on a stack whose
/// key is `parent` (the kernel's `iterate_chain_key()` over `hlock_id()`): each held lock keeps
/// the key of the stack up to itself, so an acquisition's key is one mixing step, not a walk of
/// the stack. The key counts whether each lock is read-held (`hlock_id()`'s `read` bits, since
/// f611e8cf98ec "lockdep: Take read/write status in consideration when generate chainkey"): a
/// dependency made under a write hold is not what the same classes under a read hold made, so
/// the two chains must not pass for each other. It counts each lock's whole mode, which
/// implies its read state: finer than the kernel's key (a `spin_lock_irqsave()` hold and a
/// `spin_lock()` hold of one class make two chains, each validated once), so it still never
/// lets two chains the kernel tells apart pass for each other, and it costs one load, not
/// `read_state()`'s tests, on every acquisition. As in the kernel, two stacks are taken to be
/// the same chain when their 64-bit keys are equal; a collision (odds about n²/2⁶⁵ for n
/// chains) would skip one validation, never report a false one.
pub(crate) fn chain_key(parent: u64, class: ClassId, mode: LockMode) -> u64 {
    let mut hasher = FxHasher(parent ^ 0x9e37_79b9_7f4a_7c15);
    hasher.write_u64((u64::from(class) + 1) | (mode as u64) << 32);
    hasher.finish().rotate_left(17) ^ parent
}

/// A chain's lookup key as a lock's memo keeps it: mixed with the validator's id, so that one
/// validator's chain never passes for another's (class ids, hence keys, are per validator).
fn chain_tag(lockdep: u64, lookup: u64) -> u64 {
    lookup ^ validator_mix(lockdep)
}

/// What [`chain_tag`] mixes into a lookup key for validator `lockdep`: a validator keeps it
/// (`Lockdep`'s `chain_mix`), so the lock's memo is asked without the multiply.
pub(crate) const fn validator_mix(lockdep: u64) -> u64 {
    lockdep.wrapping_mul(0x9e37_79b9_7f4a_7c15).rotate_left(29)
}

/// What decides everything validating an acquisition adds: the chain key the acquisition will
/// carry (`new.chain`, filled in by the caller from [`chain_key`]: each held lock's class and
/// mode, outermost first, then the class taken and its mode), and the flags: the whole mode
/// again (kept though the key now has it: the kernel's key has only the read state, in which a
/// spinlock and a mutex both read 0 but differ in what they disable), trylock, the four
/// interrupt-state bits, irq tracking and the depth.
/// The chain key is hashed once per acquisition: here it is only read.
fn lookup_key(held: &[HeldLock], new: &HeldLock, irq_tracking: bool) -> u64 {
    debug_assert_eq!(new.chain, chain_key(held.last().map_or(0, |h| h.chain), new.class, new.mode));
    let taken = Taken { mode: new.mode, trylock: new.trylock, irq: new.irq, depth: held.len() };
    lookup_key_of(new.chain, lookup_flags(taken, irq_tracking))
}

/// How an acquisition is made, beside its class and the stack under it: what [`lookup_key`]
/// takes from the new held lock (`depth`: the locks held under it).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Taken {
    pub(crate) mode: LockMode,
    pub(crate) trylock: bool,
    pub(crate) irq: IrqState,
    pub(crate) depth: usize,
}

/// The flags word of [`lookup_key`]: how an acquisition is made, in one word, so that it passes
/// in a register (a [`Taken`] passed to a call goes through memory).
#[inline]
fn lookup_flags(taken: Taken, irq_tracking: impl Into<u64>) -> u64 {
    // The interrupt state's four bits (hard irq, softirq, hard irqs and softirqs enabled) at
    // bits 5 to 8.
    taken.mode as u64
        | u64::from(taken.trylock) << 4
        | u64::from(taken.irq.bits()) << 5
        | irq_tracking.into() << 9
        | (taken.depth as u64) << 16
}

/// [`lookup_key`] of an acquisition whose chain key is `chain` and flags word `flags`
/// ([`lookup_flags`]). A rotation and an xor, FxHash's step without its multiply: lookup keys
/// are only compared for equality (the lock's memo) or hashed again (the thread's table, whose
/// hasher multiplies), and a multiply by an odd constant is a bijection, so it made no two keys
/// differ that are equal without it. Without it the memo's test on every acquisition is one
/// dependent multiply shorter, and needs one register fewer.
#[inline]
fn lookup_key_of(chain: u64, flags: u64) -> u64 {
    chain.rotate_left(5) ^ flags
}

/// The class id and chain key of an acquisition of the lock whose memo is `key`, made as
/// `taken` on a stack whose innermost chain key is `parent`, when the chain was validated clean
/// before: then validating it again would add nothing, and the caller writes the entry with this
/// class and chain and checks nothing. `Err`: the whole check is owed
/// ([`crate::lockdep::Lockdep::check_acquire`]), with the lock's class id when the memo or the
/// table knows it (so the validation does not look the name up again). Asks the lock's own
/// memo first when `ask_memo` ([`known_by_memo`]; a caller that asked it already passes
/// false), then this thread's table ([`known_in_table`]), which also fills the memo with what
/// it knew.
#[inline]
pub(crate) fn known_clean(
    (lockdep, mix): (u64, u64),
    key: &ClassKey,
    parent: u64,
    taken: Taken,
    (irq_tracking, ask_memo): (u8, bool),
) -> Result<(ClassId, u64), Option<ClassId>> {
    if ask_memo {
        if let Some(known) = known_by_memo((lockdep, mix), key, parent, taken, irq_tracking) {
            return Ok(known);
        }
    }
    known_in_table(lockdep, key, parent, taken.mode, lookup_flags(taken, irq_tracking))
}

/// [`known_clean`]'s first half: the class id and chain key when the lock's own memo knows the
/// chain clean, else `None` (the thread's table may still know it: [`known_in_table`]).
#[inline]
pub(crate) fn known_by_memo(
    (lockdep, mix): (u64, u64),
    key: &ClassKey,
    parent: u64,
    taken: Taken,
    irq_tracking: u8,
) -> Option<(ClassId, u64)> {
    let class = key.class(lockdep)?;
    let chain = chain_key(parent, class, taken.mode);
    key.chain_known(mix, lookup_key_of(chain, lookup_flags(taken, irq_tracking))).then_some((class, chain))
}

/// [`known_clean`] past the lock's memo: the class by name and the chain from this thread's
/// table. What the table knows goes into the memo (the class, and the chain when it was
/// validated clean), so a lock whose class another lock of its class made known, or that is
/// taken in a chain another lock object's acquisition validated, asks the table once, not on
/// every acquisition. A call of its own: the memo answers most acquisitions.
#[inline(never)]
fn known_in_table(
    lockdep: u64,
    key: &ClassKey,
    parent: u64,
    mode: LockMode,
    flags: u64,
) -> Result<(ClassId, u64), Option<ClassId>> {
    CACHE.with(|cache| {
        let mut cache = cache.borrow_mut();
        cache.belong_to(lockdep);
        let class = match key.class(lockdep) {
            Some(class) => class,
            None => {
                let class = *cache.classes.get(&name_key(key.name)).ok_or(None)?;
                key.remember(lockdep, class);
                class
            }
        };
        let chain = chain_key(parent, class, mode);
        let lookup = lookup_key_of(chain, flags);
        if !cache.chains.contains(&lookup) {
            return Err(Some(class));
        }
        key.remember_chain(lockdep, lookup);
        Ok((class, chain))
    })
}

/// FxHash's mixing step: the keys are small integers made by this crate, so a keyed hash buys
/// nothing, and iteration order never matters because the tables are only asked.
#[derive(Default)]
struct FxHasher(u64);

impl Hasher for FxHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &byte in bytes {
            self.write_u64(u64::from(byte));
        }
    }

    fn write_u8(&mut self, n: u8) {
        self.write_u64(u64::from(n));
    }

    fn write_u16(&mut self, n: u16) {
        self.write_u64(u64::from(n));
    }

    fn write_u32(&mut self, n: u32) {
        self.write_u64(u64::from(n));
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = (self.0.rotate_left(5) ^ n).wrapping_mul(0x517c_c1b7_2722_0a95);
    }

    fn write_usize(&mut self, n: usize) {
        self.write_u64(n as u64);
    }
}

type Fx = BuildHasherDefault<FxHasher>;

/// One thread's cache: the validator it belongs to, class ids by name (address and length of
/// the `&'static str`; two equal names at two addresses are two entries with one id), and the
/// chains validated without a report, by [`lookup_key`].
struct Cache {
    lockdep: u64,
    classes: HashMap<(usize, usize), ClassId, Fx>,
    chains: HashSet<u64, Fx>,
}

impl Cache {
    /// Empties the cache when it belongs to another validator than `lockdep`.
    fn belong_to(&mut self, lockdep: u64) {
        if self.lockdep != lockdep {
            self.lockdep = lockdep;
            self.classes.clear();
            self.chains.clear();
        }
    }
}

thread_local! {
    static CACHE: RefCell<Cache> = const {
        RefCell::new(Cache {
            lockdep: 0,
            classes: HashMap::with_hasher(BuildHasherDefault::new()),
            chains: HashSet::with_hasher(BuildHasherDefault::new()),
        })
    };
}

fn name_key(name: &'static str) -> (usize, usize) {
    (name.as_ptr() as usize, name.len())
}

/// Records what validating `new` over `held` learned: its class id (in this thread's table and
/// the lock's memo `key`) unless `class_known` (the memo or the table gave it: nothing to
/// learn), and the chain when the validation made no report (`clean`). `new.class` and
/// `new.chain` are filled in ([`chain_key`]).
pub(crate) fn remember(
    lockdep: u64,
    held: &[HeldLock],
    new: &HeldLock,
    key: &ClassKey,
    irq_tracking: bool,
    (class_known, clean): (bool, bool),
) {
    if class_known && !clean {
        return;
    }
    let lookup = lookup_key(held, new, irq_tracking);
    if !class_known {
        key.remember(lockdep, new.class);
    }
    if clean {
        key.remember_chain(lockdep, lookup);
    }
    CACHE.with(|cache| {
        let mut cache = cache.borrow_mut();
        cache.belong_to(lockdep);
        if !class_known {
            cache.classes.insert(name_key(new.name), new.class);
        }
        if clean {
            cache.chains.insert(lookup);
        }
    })
}

#[cfg(test)]
mod tests {
    use crate::lockdep::{LockdepReport, ReportMode};
    use crate::{RwSem, Sim, SimConfig, SpinLock};

    fn collecting() -> Sim {
        Sim::new(SimConfig::new(1).lockdep(ReportMode::Collect))
    }

    /// The circular dependencies reported, as (held class, class being acquired).
    fn cycles(sim: &Sim) -> Vec<(String, String)> {
        let reports = sim.lockdep().reports();
        reports
            .iter()
            .map(|report| match report {
                LockdepReport::CircularDependency { held, acquiring, .. } => {
                    (held.class.clone(), acquiring.class.clone())
                }
                other => panic!("expected only circular dependencies: {other:#?}"),
            })
            .collect()
    }

    /// A chain key counts how each held lock is held: a lock taken under a read hold of `s` is
    /// validated again under a write hold of it (the kernel's key counts the read state since
    /// f611e8cf98ec; ksim's, the whole mode), and `s` taken for write alone is a chain of its
    /// own; the same read chain again is known clean. A key that left the held lock's mode out
    /// would let the write chain pass for the read one and fail the count.
    #[test]
    fn a_chain_under_a_read_hold_is_validated_apart_from_the_same_chain_under_a_write_hold() {
        let sim = collecting();
        let (sem, inner) = (RwSem::new("s", ()), SpinLock::new("i", ()));
        let cx = sim.cx("task", 0);
        let under_read = || {
            let _read = sem.down_read(&cx);
            drop(inner.lock(&cx));
        };
        under_read();
        let validated = sim.lockdep().validations_count();
        assert_eq!(validated, 2, "s for read, i under it");
        under_read();
        assert_eq!(sim.lockdep().validations_count(), validated, "the read chain was validated clean");
        {
            let _write = sem.down_write(&cx);
            drop(inner.lock(&cx));
        }
        assert_eq!(
            sim.lockdep().validations_count(),
            validated + 2,
            "s for write, i under it: two new chains"
        );
        under_read();
        assert_eq!(sim.lockdep().validations_count(), validated + 2);
    }

    /// A second lock object of a class the table knows (`a2`, as a second cache's lock or a new
    /// task's) learns its class and its clean chain from the thread's table on its first
    /// acquisition ([`super::known_in_table`]): taken alone again it is not validated again.
    /// Taken in a chain nobody validated (under `b`, after `a1 -> b`), it must still be
    /// validated and the cycle reported: a table path that answered from the class alone, or
    /// the memo filled with a chain the table did not know, fails here.
    #[test]
    fn a_lock_whose_class_the_table_knows_is_still_validated_in_a_new_chain() {
        let sim = collecting();
        let (a1, a2, b) = (SpinLock::new("a", ()), SpinLock::new("a", ()), SpinLock::new("b", ()));
        let cx = sim.cx("task", 0);
        {
            let _a1 = a1.lock(&cx);
            drop(b.lock(&cx));
        }
        let validated = sim.lockdep().validations_count();
        assert_eq!(validated, 2, "a alone, b under a");
        for _ in 0..3 {
            drop(a2.lock(&cx));
        }
        assert_eq!(sim.lockdep().validations_count(), validated, "a alone was validated clean before");
        assert!(cycles(&sim).is_empty());
        {
            let _b = b.lock(&cx);
            drop(a2.lock(&cx));
        }
        assert_eq!(cycles(&sim), [("b".to_string(), "a".to_string())]);
    }

    /// A lock taken alternately in two chains (alone, and under `y`) is known clean in both from
    /// its own memo's slots after one validation of each; a third chain it was never
    /// validated in (under `w`, after `x -> w`) is validated and its cycle reported: a memo
    /// that matched on the class, or on any one remembered chain, fails here.
    #[test]
    fn a_lock_taken_in_two_chains_by_turns_is_validated_once_in_each_and_again_in_a_third() {
        let sim = collecting();
        let (x, y, w) = (SpinLock::new("x", ()), SpinLock::new("y", ()), SpinLock::new("w", ()));
        let cx = sim.cx("task", 0);
        {
            let _x = x.lock(&cx);
            drop(w.lock(&cx));
        }
        let mut validated = Vec::new();
        for _ in 0..4 {
            drop(x.lock(&cx));
            let _y = y.lock(&cx);
            drop(x.lock(&cx));
            drop(_y);
            validated.push(sim.lockdep().validations_count());
        }
        assert_eq!(validated, [4, 4, 4, 4], "x, w under x; then y and x under y once each");
        assert!(cycles(&sim).is_empty());
        {
            let _w = w.lock(&cx);
            drop(x.lock(&cx));
        }
        assert_eq!(cycles(&sim), [("w".to_string(), "x".to_string())]);
    }

    /// A lock whose memo knows its class but not the chain it is taken in (one of more chains
    /// than the memo keeps, or a chain another lock object of its class was validated in) is
    /// known clean from the thread's table ([`super::known_in_table`]), not validated again; a
    /// chain nobody validated is still validated and its cycle reported. A table path that always owed the check fails the
    /// count; one that answered from the class alone fails the cycle.
    #[test]
    fn a_lock_whose_memo_knows_its_class_takes_a_forgotten_chain_from_the_table() {
        let sim = collecting();
        let outer = ["l0", "l1", "l2", "l3", "l4", "l5"].map(|name| SpinLock::new(name, ()));
        let (x1, x2, w) = (SpinLock::new("x", ()), SpinLock::new("x", ()), SpinLock::new("w", ()));
        let cx = sim.cx("task", 0);
        for lock in &outer {
            let _outer = lock.lock(&cx);
            drop(x1.lock(&cx));
        }
        let validated = sim.lockdep().validations_count();
        assert_eq!(validated, 12, "each outer lock alone, x under each");
        for _ in 0..2 {
            for lock in &outer {
                let _outer = lock.lock(&cx);
                drop(x1.lock(&cx));
                drop(x2.lock(&cx));
            }
        }
        assert_eq!(sim.lockdep().validations_count(), validated, "six chains, each validated clean before");
        {
            let _x = x1.lock(&cx);
            drop(w.lock(&cx));
        }
        assert_eq!(sim.lockdep().validations_count(), validated + 2, "x alone, w under x");
        assert!(cycles(&sim).is_empty());
        {
            let _w = w.lock(&cx);
            drop(x2.lock(&cx));
        }
        assert_eq!(cycles(&sim), [("w".to_string(), "x".to_string())]);
    }
}
