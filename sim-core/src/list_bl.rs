//! `hlist_bl` (include/linux/list_bl.h): a hash-chain head whose bit 0 is the chain's bit
//! spinlock, as mbcache2 (fs/mbcache.c, 4.6 on) and the dentry hash use it: `hlist_bl_lock`,
//! `hlist_bl_unlock`, `hlist_bl_add_head`, `hlist_bl_del_init`, `hlist_bl_for_each_entry`,
//! `hlist_bl_empty`.
//!
//! The head word is a facade atomic: bit 0 is the lock (LIST_BL_LOCKMASK) and the other bits
//! stand for the `first` pointer (ksim keeps the chain's length there, so `hlist_bl_empty` is the
//! lockless one-word read it is in the kernel). The nodes are values in a [`Guarded`] chain
//! documented by the head's lock class, so a chain touched without its lock is a lockdep report
//! rather than a Rust type error; and, as the kernel's `LIST_BL_BUG_ON` in `hlist_bl_set_first`
//! does, changing a chain whose own lock bit is clear is a reported violation (it catches the
//! chain changed under another bucket's lock of the same class, which class-level checks cannot).
//! Left out: the RCU walkers (`hlist_bl_for_each_entry_rcu`) and intrusive nodes (a node is a
//! value here; `list_head` is sim-core's intrusive list).

use std::fmt;

use crate::bit_spinlock::{bit_spin_is_locked, bit_spin_lock, BitSpinGuard};
use crate::cx::Cx;
use crate::guarded::Guarded;
use crate::sim::Violation;
use crate::sync::atomic::{AtomicUsize, Ordering};

/// `LIST_BL_LOCKMASK`: the lock bit of the head word.
pub const LIST_BL_LOCKMASK: usize = 1;

/// The lock bit's number, for [`bit_spin_lock`].
const LOCK_BIT: u32 = 0;

/// `struct hlist_bl_head`: one hash chain and its bit lock.
pub struct HlistBlHead<T> {
    class: &'static str,
    word: AtomicUsize,
    chain: Guarded<Vec<T>>,
}

impl<T> fmt::Debug for HlistBlHead<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HlistBlHead").field("class", &self.class).finish_non_exhaustive()
    }
}

impl<T> HlistBlHead<T> {
    /// `INIT_HLIST_BL_HEAD()`: an empty chain whose bit lock is of class `class`; every bucket of
    /// one table passes the same class (`"mb_cache->c_hash"`), as they share one in the kernel.
    pub fn new(class: &'static str) -> Self {
        HlistBlHead {
            class,
            word: AtomicUsize::new(0),
            chain: Guarded::new("hlist_bl_head->first", class, Vec::new()),
        }
    }

    /// The lock class of this head's bit lock.
    pub fn class(&self) -> &'static str {
        self.class
    }

    /// `hlist_bl_lock()`: `bit_spin_lock(0, &head->first)`.
    #[track_caller]
    pub fn lock<'a>(&'a self, cx: &'a Cx) -> BitSpinGuard<'a> {
        bit_spin_lock(cx, self.class, LOCK_BIT, &self.word)
    }

    /// `hlist_bl_unlock()`.
    pub fn unlock(&self, guard: BitSpinGuard<'_>) {
        drop(guard);
    }

    /// `hlist_bl_is_locked()`.
    pub fn is_locked(&self) -> bool {
        bit_spin_is_locked(LOCK_BIT, &self.word)
    }

    /// `hlist_bl_empty()`: a lockless read of the head word, as in the kernel.
    pub fn is_empty(&self) -> bool {
        self.word.load(Ordering::Relaxed) & !LIST_BL_LOCKMASK == 0
    }

    /// `hlist_bl_add_head()`: `value` becomes the chain's first node. Needs the chain's lock.
    #[track_caller]
    pub fn add_head(&self, cx: &Cx, value: T) {
        self.bug_on_unlocked(cx, "hlist_bl_add_head");
        self.chain.write(cx, |chain| chain.insert(0, value));
        self.word.fetch_add(LIST_BL_LOCKMASK + 1, Ordering::Relaxed);
    }

    /// `hlist_bl_del_init()` of the first node that `matches`: unlinks and returns it. Needs the
    /// chain's lock.
    #[track_caller]
    pub fn del_init(&self, cx: &Cx, matches: impl FnMut(&T) -> bool) -> Option<T> {
        self.bug_on_unlocked(cx, "hlist_bl_del_init");
        let removed = self.chain.write(cx, |chain| {
            let index = chain.iter().position(matches)?;
            Some(chain.remove(index))
        });
        if removed.is_some() {
            self.word.fetch_sub(LIST_BL_LOCKMASK + 1, Ordering::Relaxed);
        }
        removed
    }

    /// `hlist_bl_for_each_entry()`: `f` sees the nodes first to last. Needs the chain's lock.
    #[track_caller]
    pub fn for_each_entry<R>(&self, cx: &Cx, f: impl FnOnce(&[T]) -> R) -> R {
        self.chain.read(cx, |chain| f(chain))
    }

    /// The `LIST_BL_BUG_ON(!((unsigned long)h->first & LIST_BL_LOCKMASK))` of
    /// `hlist_bl_set_first()`: reported, never a crash.
    fn bug_on_unlocked(&self, cx: &Cx, what: &str) {
        if !self.is_locked() && !cx.is_observer() {
            let message = format!(
                "{what} on a {} chain whose lock bit is clear (by {} on cpu{})",
                self.class,
                cx.name(),
                cx.cpu()
            );
            cx.sim().report(Some(cx), Violation::new("hlist_bl-unlocked", message));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lockdep::ReportMode;
    use crate::{Sim, SimConfig};

    fn collecting() -> Sim {
        Sim::new(SimConfig::new(1).lockdep(ReportMode::Collect))
    }

    #[test]
    fn add_del_and_iterate_under_the_lock() {
        let sim = collecting();
        let cx = sim.cx("t", 0);
        let head = HlistBlHead::new("mb_cache->c_hash");
        assert!(head.is_empty());
        let guard = head.lock(&cx);
        assert!(head.is_locked());
        for key in [1, 2, 3] {
            head.add_head(&cx, key);
        }
        assert_eq!(head.for_each_entry(&cx, |chain| chain.to_vec()), [3, 2, 1], "add_head puts first");
        assert_eq!(head.del_init(&cx, |&k| k == 2), Some(2));
        assert_eq!(head.del_init(&cx, |&k| k == 9), None);
        head.unlock(guard);
        assert!(!head.is_empty() && !head.is_locked());
        assert!(sim.violations().is_empty(), "{:#?}", sim.violations());
    }

    #[test]
    fn a_chain_changed_without_its_lock_is_reported_twice_over() {
        let sim = collecting();
        let cx = sim.cx("t", 0);
        let head = HlistBlHead::new("mb_cache->c_hash");
        head.add_head(&cx, 7);
        let kinds: Vec<String> = sim.violations().into_iter().map(|v| v.kind.to_string()).collect();
        assert_eq!(kinds, ["hlist_bl-unlocked", "lockdep:lock-not-held"]);
    }

    #[test]
    fn another_buckets_lock_of_the_same_class_does_not_do() {
        // Class-level lockdep is satisfied (the class is held); the head's own bit is not set.
        let sim = collecting();
        let cx = sim.cx("t", 0);
        let buckets: Vec<HlistBlHead<u32>> = (0..2).map(|_| HlistBlHead::new("mb_cache->c_hash")).collect();
        let guard = buckets[0].lock(&cx);
        buckets[1].add_head(&cx, 5);
        drop(guard);
        let kinds: Vec<String> = sim.violations().into_iter().map(|v| v.kind.to_string()).collect();
        assert_eq!(kinds, ["hlist_bl-unlocked"]);
    }
}
