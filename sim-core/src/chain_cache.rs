//! Lockdep's fast path: the lock chains already validated, as the kernel's `lookup_chain_cache()`
//! keeps them, and each class name's id, so that an acquisition lockdep has seen before in the
//! same held-lock context costs a few table lookups instead of the class graph's mutex and
//! searches.
//!
//! Validating an acquisition only ever adds to the graph (an edge, a usage bit, a report), and
//! what it adds depends on the classes held, the class taken, how it is taken and the interrupt
//! state: the [`ChainKey`]. So once a chain was validated without a report, validating it again
//! changes nothing and reports nothing, whichever task or thread does it; the cache skips it.
//! A chain that produced a report is never cached, so a later acquisition goes the whole way.
//!
//! The cache is per thread (no atomics, no lock) and holds the chains of one [`Lockdep`] at a
//! time, the one used last on this thread: a campaign makes a `Sim` per case, and a cache that
//! outlived its validator would be a leak. It is checker bookkeeping: plain `std`, never a loom
//! or shuttle object, and it is only asked, never iterated, so it cannot change a run.

use std::cell::RefCell;
use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasherDefault, Hasher};

use crate::lockdep::{ClassId, HeldLock};

/// Most held locks a cached chain has; a deeper stack takes the whole path every time.
const HELD_MAX: usize = 8;

/// What decides everything validating an acquisition adds: the classes held, outermost first,
/// the class taken, and the flags (mode, trylock, the four interrupt-state bits, irq tracking).
#[derive(Clone, Copy, PartialEq, Eq)]
struct ChainKey {
    held: [ClassId; HELD_MAX],
    len: u8,
    class: ClassId,
    flags: u16,
}

impl ChainKey {
    /// The key of acquiring `new` over `held`, or None when the stack is too deep to cache.
    fn of(held: &[HeldLock], new: &HeldLock, irq_tracking: bool) -> Option<ChainKey> {
        if held.len() > HELD_MAX {
            return None;
        }
        let mut classes = [0; HELD_MAX];
        for (slot, lock) in classes.iter_mut().zip(held) {
            *slot = lock.class;
        }
        let irq = new.irq;
        let flags = new.mode as u16
            | u16::from(new.trylock) << 4
            | u16::from(irq.hardirq) << 5
            | u16::from(irq.softirq) << 6
            | u16::from(irq.hardirqs_enabled) << 7
            | u16::from(irq.softirqs_enabled) << 8
            | u16::from(irq_tracking) << 9;
        Some(ChainKey { held: classes, len: held.len() as u8, class: new.class, flags })
    }
}

impl std::hash::Hash for ChainKey {
    /// Two classes to a word: the derived hash would feed the array byte by byte.
    fn hash<H: Hasher>(&self, state: &mut H) {
        for pair in self.held[..usize::from(self.len)].chunks(2) {
            state.write_u64(u64::from(pair[0]) | u64::from(pair.get(1).copied().unwrap_or(u32::MAX)) << 32);
        }
        state.write_u64(u64::from(self.class) | u64::from(self.flags) << 32 | u64::from(self.len) << 48);
    }
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
/// chains validated without a report.
struct Cache {
    lockdep: u64,
    classes: HashMap<(usize, usize), ClassId, Fx>,
    chains: HashSet<ChainKey, Fx>,
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

/// Fills in `new.class` from the cache and says whether the chain `held` + `new` was validated
/// before without a report (then there is nothing left to check). False when the class or the
/// chain is not cached yet.
pub(crate) fn validated(lockdep: u64, held: &[HeldLock], new: &mut HeldLock, irq_tracking: bool) -> bool {
    CACHE.with(|cache| {
        let mut cache = cache.borrow_mut();
        cache.belong_to(lockdep);
        let Some(&class) = cache.classes.get(&name_key(new.name)) else {
            return false;
        };
        new.class = class;
        ChainKey::of(held, new, irq_tracking).is_some_and(|key| cache.chains.contains(&key))
    })
}

/// Records what validating `new` over `held` learned: its class id, and the chain when the
/// validation made no report.
pub(crate) fn remember(lockdep: u64, held: &[HeldLock], new: &HeldLock, irq_tracking: bool, clean: bool) {
    CACHE.with(|cache| {
        let mut cache = cache.borrow_mut();
        cache.belong_to(lockdep);
        cache.classes.insert(name_key(new.name), new.class);
        if let Some(key) = ChainKey::of(held, new, irq_tracking).filter(|_| clean) {
            cache.chains.insert(key);
        }
    })
}
