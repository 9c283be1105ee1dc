//! Bit spinlocks (include/linux/bit_spinlock.h): `bit_spin_lock`, `bit_spin_trylock`,
//! `bit_spin_unlock` and `bit_spin_is_locked` on one bit of a word, as `hlist_bl` heads and
//! buffer heads use them.
//!
//! The word is a facade atomic, so loom and shuttle see every test-and-set and every spin. The
//! kernel gives bit spinlocks no lockdep class; ksim names one per use (all buckets of one hash
//! table share a class, as all instances of a lock field do), so lockdep orders them, reports
//! recursion and inverse orders, and reports a sleeping call while one is held (a bit spinlock
//! disables preemption). Left out: `__bit_spin_unlock`'s non-atomic store (ksim always clears the
//! bit atomically with release ordering, which is what the kernel's version also guarantees to
//! the next owner).

use std::fmt;
use std::panic::Location;

use crate::chain_cache::ClassKey;
use crate::cx::Cx;
use crate::lockdep::LockMode;
use crate::sync::atomic::{AtomicUsize, Ordering};
use crate::sync::thread;

/// Bits in the word (`BITS_PER_LONG` on a 64-bit kernel).
pub const BITS_PER_WORD: u32 = usize::BITS;

/// A held bit spinlock; [`bit_spin_unlock`] (or dropping it) clears the bit. It keeps its
/// class's name and the name's trace hash, so the release hashes nothing, whichever way the
/// lock was taken (by name or with its owner's [`ClassKey`]).
pub struct BitSpinGuard<'a> {
    word: &'a AtomicUsize,
    mask: usize,
    cx: &'a Cx,
    name: &'static str,
    name_hash: u64,
    token: u64,
}

impl fmt::Debug for BitSpinGuard<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "BitSpinGuard({}, mask {:#x})", self.name, self.mask)
    }
}

fn mask_of(bitnum: u32) -> usize {
    assert!(bitnum < BITS_PER_WORD, "bit {bitnum} is outside a {BITS_PER_WORD}-bit word");
    1 << bitnum
}

/// `bit_spin_lock(bitnum, addr)`: disables preemption, then spins until it is the one that
/// sets the bit (`test_and_set_bit_lock`, acquire ordering). Lockdep checks the acquisition as
/// lock class `class` before the spin.
#[track_caller]
pub fn bit_spin_lock<'a>(
    cx: &'a Cx,
    class: &'static str,
    bitnum: u32,
    word: &'a AtomicUsize,
) -> BitSpinGuard<'a> {
    bit_spin_lock_key(cx, &ClassKey::new(class), bitnum, word, Location::caller())
}

/// [`bit_spin_lock`] for a lock whose class memo `key` its owner keeps (an
/// [`crate::list_bl::HlistBlTable`]'s, shared by its chains), so an acquisition finds its class
/// id and the name's trace hash without rehashing the name: the same checks, events and hash.
pub(crate) fn bit_spin_lock_key<'a>(
    cx: &'a Cx,
    key: &ClassKey,
    bitnum: u32,
    word: &'a AtomicUsize,
    site: &'static Location<'static>,
) -> BitSpinGuard<'a> {
    let mask = mask_of(bitnum);
    let token = cx.push_held(key, LockMode::BitSpin, false, site);
    // The instance a deadlock's report names: the word's address with the bit number.
    let instance = (std::ptr::from_ref(word) as usize) << 6 | bitnum as usize;
    cx.lock_wait(key.name, instance, LockMode::BitSpin, token);
    cx.preempt_disable();
    // The kernel re-enables preemption while it waits (cpu_relax on test_bit); the simulated
    // context stays atomic, which only matters to a sleep nobody can make while spinning.
    while word.fetch_or(mask, Ordering::Acquire) & mask != 0 {
        while word.load(Ordering::Relaxed) & mask != 0 {
            thread::yield_now();
        }
    }
    acquired(cx, key, word, mask, false, token)
}

/// The trace event (and the held record) of a completed acquisition, and its guard.
fn acquired<'a>(
    cx: &'a Cx,
    key: &ClassKey,
    word: &'a AtomicUsize,
    mask: usize,
    trylock: bool,
    token: u64,
) -> BitSpinGuard<'a> {
    cx.lock_acquired_instance(key, 0, LockMode::BitSpin, trylock, token);
    BitSpinGuard { word, mask, cx, name: key.name, name_hash: key.name_hash, token }
}

/// `bit_spin_trylock(bitnum, addr)`: sets the bit if it was clear, without waiting.
#[track_caller]
pub fn bit_spin_trylock<'a>(
    cx: &'a Cx,
    class: &'static str,
    bitnum: u32,
    word: &'a AtomicUsize,
) -> Option<BitSpinGuard<'a>> {
    let mask = mask_of(bitnum);
    let key = ClassKey::new(class);
    let token = cx.push_held(&key, LockMode::BitSpin, true, Location::caller());
    if word.fetch_or(mask, Ordering::Acquire) & mask != 0 {
        cx.lock_acquire_failed(token);
        return None;
    }
    cx.preempt_disable();
    Some(acquired(cx, &key, word, mask, true, token))
}

/// `bit_spin_unlock(bitnum, addr)`: clears the bit with release ordering, then re-enables
/// preemption.
pub fn bit_spin_unlock(guard: BitSpinGuard<'_>) {
    drop(guard);
}

/// `bit_spin_is_locked(bitnum, addr)`.
pub fn bit_spin_is_locked(bitnum: u32, word: &AtomicUsize) -> bool {
    word.load(Ordering::Relaxed) & mask_of(bitnum) != 0
}

impl Drop for BitSpinGuard<'_> {
    fn drop(&mut self) {
        // While a checker's failure unwinds the thread, the bit stays set (the word may be a
        // loom object whose runtime is tearing down), as the other locks leak their backend guard.
        if !std::thread::panicking() {
            self.word.fetch_and(!self.mask, Ordering::Release);
        }
        self.cx.lock_release_named(self.name, self.name_hash, self.token);
        self.cx.preempt_enable();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lockdep::{LockdepReport, ReportMode};
    use crate::trace::{EventKind, TraceMode};
    use crate::{Mutex, Sim, SimConfig};

    fn collecting() -> Sim {
        Sim::new(SimConfig::new(1).lockdep(ReportMode::Collect).trace(TraceMode::Full))
    }

    #[test]
    fn lock_sets_only_its_bit_and_unlock_clears_it() {
        let sim = collecting();
        let cx = sim.cx("t", 0);
        let word = AtomicUsize::new(0b100);
        let guard = bit_spin_lock(&cx, "bl", 0, &word);
        assert_eq!(word.load(Ordering::Relaxed), 0b101);
        assert!(bit_spin_is_locked(0, &word) && cx.in_atomic() && cx.holds("bl"));
        assert!(bit_spin_trylock(&cx, "bl", 0, &word).is_none(), "the bit is taken");
        bit_spin_unlock(guard);
        assert_eq!(word.load(Ordering::Relaxed), 0b100);
        assert!(!cx.in_atomic() && cx.held_count() == 0);
        let again = bit_spin_trylock(&cx, "bl", 0, &word).expect("free now");
        drop(again);
        let acquired =
            sim.trace().events().iter().filter(|e| matches!(e.kind, EventKind::Acquired { .. })).count();
        assert_eq!(acquired, 2, "the failed trylock is not traced as an acquisition");
        assert!(sim.lockdep().reports().is_empty());
    }

    #[test]
    fn sleeping_with_a_bit_lock_held_is_reported() {
        let sim = collecting();
        let cx = sim.cx("t", 0);
        let word = AtomicUsize::new(0);
        let mutex = Mutex::new("c_mutex", ());
        let guard = bit_spin_lock(&cx, "mb_cache->c_hash", 0, &word);
        drop(mutex.lock(&cx));
        drop(guard);
        let reports = sim.lockdep().reports();
        assert!(
            matches!(&reports[..], [LockdepReport::SleepInAtomic { held, .. }] if held[0].class == "mb_cache->c_hash"),
            "{reports:#?}"
        );
    }

    #[test]
    fn two_bit_lock_classes_in_inverse_order_are_a_circular_dependency() {
        let sim = collecting();
        let (first, second) = (sim.cx("first", 0), sim.cx("second", 1));
        let (a, b) = (AtomicUsize::new(0), AtomicUsize::new(0));
        drop((bit_spin_lock(&first, "a_bits", 0, &a), bit_spin_lock(&first, "b_bits", 3, &b)));
        drop((bit_spin_lock(&second, "b_bits", 3, &b), bit_spin_lock(&second, "a_bits", 0, &a)));
        let kinds: Vec<&str> = sim.lockdep().reports().iter().map(|r| r.kind()).collect();
        assert_eq!(kinds, ["circular-locking"]);
        assert!(sim.lockdep().reports()[0].to_string().contains("bit_spin_lock(a_bits)"));
    }

    #[test]
    #[should_panic(expected = "outside a 64-bit word")]
    fn a_bit_beyond_the_word_is_a_bug() {
        let _ = mask_of(64);
    }
}
