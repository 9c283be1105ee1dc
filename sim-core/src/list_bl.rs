//! `hlist_bl` (include/linux/list_bl.h): a hash-chain head whose bit 0 is the chain's bit
//! spinlock, as mbcache2 (fs/mbcache.c, 4.6 on) and the dentry hash use it: `hlist_bl_lock`,
//! `hlist_bl_unlock`, `hlist_bl_add_head`, `hlist_bl_del_init`, `hlist_bl_for_each_entry`,
//! `hlist_bl_empty`.
//!
//! The head word is a facade atomic: bit 0 is the lock (LIST_BL_LOCKMASK) and the other bits
//! stand for the `first` pointer (ksim keeps the chain's length there, so `hlist_bl_empty` is the
//! lockless one-word read it is in the kernel). The nodes are values in a chain documented by
//! the heads' lock class and judged as [`Guarded`] data, so a chain touched without its lock is
//! a lockdep report rather than a Rust type error; and, as the kernel's `LIST_BL_BUG_ON` in
//! `hlist_bl_set_first` does, changing a chain whose own lock bit is clear is a reported
//! violation (it catches the chain changed under another bucket's lock of the same class, which
//! class-level checks cannot).
//!
//! Layout: a hash table is an [`HlistBlTable`], whose heads are what the kernel's are, the lock
//! word and the first link (here the chain's nodes), 40 bytes each; what only the checkers read
//! is kept per table (the lock class and the field's trace name) or per chain apart from the
//! heads (each chain's lockset shadow, made by the first access while lockdep runs and read only
//! then). A lookup then reads one head, as a kernel lookup reads one `hlist_bl_head` word, and a
//! table of a million entries' chains is not mostly checker state. A chain's nodes are a `Vec`
//! of its own, made when its first node is added: the table's memory is its heads plus what
//! its chains hold. [`HlistBlHead`] is a table of one chain, for a lone head.
//! Left out: the RCU walkers (`hlist_bl_for_each_entry_rcu`) and intrusive nodes (a node is a
//! value here; `list_head` is sim-core's intrusive list).

use std::fmt;
use std::sync::OnceLock;

use crate::bit_spinlock::{bit_spin_is_locked, bit_spin_lock_key, BitSpinGuard};
use crate::chain_cache::ClassKey;
use crate::cx::Cx;
use crate::guarded::{trace_access, Guarded};
use crate::sim::Violation;
use crate::sync::atomic::{AtomicUsize, Ordering};
use crate::sync::RaceCell;

/// `LIST_BL_LOCKMASK`: the lock bit of the head word.
pub const LIST_BL_LOCKMASK: usize = 1;

/// The lock bit's number, for [`crate::bit_spinlock::bit_spin_lock`].
const LOCK_BIT: u32 = 0;

/// The chain's field name, as lockdep's and the lockset detector's reports name it.
const FIELD: &str = "hlist_bl_head->first";

/// `struct hlist_bl_head` as the hot path reads it: the lock word and the chain.
struct BlChain<T> {
    word: AtomicUsize,
    nodes: RaceCell<Vec<T>>,
}

/// A hash table of `hlist_bl` chains whose bit locks share one lock class (`"mb_cache->c_hash"`),
/// as all buckets of one table do in lockdep: the heads, and apart from them what only the
/// checkers read. See the module documentation.
pub struct HlistBlTable<T> {
    /// The memo of the class every chain's bit lock shares (its name, the name's trace hash and
    /// its class id), so a chain's lock does not hash the class name on each acquisition.
    key: ClassKey,
    /// [`FIELD`]'s trace hash, computed once: an access is traced by it.
    field_hash: u64,
    /// The nodes a chain's first node reserves room for (see [`HlistBlTable::with_chain_capacity`]).
    chain_capacity: usize,
    heads: Box<[BlChain<T>]>,
    /// Each chain's lockset shadow, documented by `class`: made, all at once, by the first
    /// access while lockdep runs, and read only then (checker state: a `std` cell, no schedule
    /// point).
    shadows: OnceLock<Box<[Guarded<()>]>>,
}

impl<T> fmt::Debug for HlistBlTable<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HlistBlTable")
            .field("class", &self.key.name)
            .field("chains", &self.heads.len())
            .finish_non_exhaustive()
    }
}

impl<T> HlistBlTable<T> {
    /// `chains` times `INIT_HLIST_BL_HEAD()`: empty chains whose bit locks are of class `class`.
    pub fn new(class: &'static str, chains: usize) -> Self {
        HlistBlTable::with_chain_capacity(class, chains, 0)
    }

    /// [`HlistBlTable::new`], a chain's first node reserving room for `capacity` nodes: a chain
    /// then grows once, not through every small size. (Memory layout only: nothing a check
    /// judges.) Nothing is reserved for a chain no node is added to, so the table's memory is
    /// its heads plus what its chains hold.
    pub fn with_chain_capacity(class: &'static str, chains: usize, capacity: usize) -> Self {
        let head = |_| BlChain { word: AtomicUsize::new(0), nodes: RaceCell::new(Vec::new()) };
        HlistBlTable {
            key: ClassKey::new(class),
            field_hash: crate::trace::name_hash(FIELD),
            chain_capacity: capacity,
            heads: (0..chains).map(head).collect(),
            shadows: OnceLock::new(),
        }
    }

    /// The number of chains.
    pub fn len(&self) -> usize {
        self.heads.len()
    }

    /// Whether the table has no chain at all.
    pub fn is_empty(&self) -> bool {
        self.heads.is_empty()
    }

    /// The lock class of every chain's bit lock.
    pub fn class(&self) -> &'static str {
        self.key.name
    }

    /// Chain `index` (`&table[index]`); panics past the table, as only a bug can index there.
    #[inline]
    #[track_caller]
    pub fn bucket(&self, index: usize) -> HlistBl<'_, T> {
        let Some(head) = self.heads.get(index) else {
            panic!("chain {index} of a {}-chain table", self.heads.len());
        };
        HlistBl { table: self, head, index }
    }

    /// Chain `index`'s lockset shadow, the shadows made on first use.
    fn shadow(&self, index: usize) -> &Guarded<()> {
        let shadows = self
            .shadows
            .get_or_init(|| (0..self.heads.len()).map(|_| Guarded::new(FIELD, self.key.name, ())).collect());
        &shadows[index]
    }
}

/// One chain of an [`HlistBlTable`]: `struct hlist_bl_head *`.
pub struct HlistBl<'a, T> {
    table: &'a HlistBlTable<T>,
    head: &'a BlChain<T>,
    /// The chain's index, for its shadow and for messages.
    index: usize,
}

impl<T> Clone for HlistBl<'_, T> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<T> Copy for HlistBl<'_, T> {}

impl<T> fmt::Debug for HlistBl<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "HlistBl({}[{}])", self.table.key.name, self.index)
    }
}

impl<'a, T> HlistBl<'a, T> {
    /// The lock class of this head's bit lock.
    pub fn class(self) -> &'static str {
        self.table.key.name
    }

    /// `hlist_bl_lock()`: `bit_spin_lock(0, &head->first)`.
    #[track_caller]
    #[inline]
    pub fn lock(self, cx: &'a Cx) -> BitSpinGuard<'a> {
        bit_spin_lock_key(cx, &self.table.key, LOCK_BIT, &self.head.word, std::panic::Location::caller())
    }

    /// `hlist_bl_unlock()`.
    pub fn unlock(self, guard: BitSpinGuard<'_>) {
        drop(guard);
    }

    /// `hlist_bl_is_locked()`.
    pub fn is_locked(self) -> bool {
        bit_spin_is_locked(LOCK_BIT, &self.head.word)
    }

    /// `hlist_bl_empty()`: a lockless read of the head word, as in the kernel.
    pub fn is_empty(self) -> bool {
        self.head.word.load(Ordering::Relaxed) & !LIST_BL_LOCKMASK == 0
    }

    /// `hlist_bl_add_head()`: `value` becomes the chain's first node. Needs the chain's lock.
    #[track_caller]
    pub fn add_head(self, cx: &Cx, value: T) {
        self.bug_on_unlocked(cx, "hlist_bl_add_head");
        self.access(cx, true);
        let reserve = self.table.chain_capacity;
        self.head.nodes.with_mut(|chain| {
            if chain.capacity() == 0 {
                chain.reserve_exact(reserve);
            }
            chain.insert(0, value);
        });
        self.head.word.fetch_add(LIST_BL_LOCKMASK + 1, Ordering::Relaxed);
    }

    /// `hlist_bl_del_init()` of the first node that `matches`: unlinks and returns it. Needs the
    /// chain's lock.
    #[track_caller]
    pub fn del_init(self, cx: &Cx, matches: impl FnMut(&T) -> bool) -> Option<T> {
        self.bug_on_unlocked(cx, "hlist_bl_del_init");
        self.access(cx, true);
        let removed = self.head.nodes.with_mut(|chain| {
            let index = chain.iter().position(matches)?;
            Some(chain.remove(index))
        });
        if removed.is_some() {
            self.head.word.fetch_sub(LIST_BL_LOCKMASK + 1, Ordering::Relaxed);
        }
        removed
    }

    /// `hlist_bl_for_each_entry()`: `f` sees the nodes first to last. Needs the chain's lock.
    #[track_caller]
    #[inline]
    pub fn for_each_entry<R>(self, cx: &Cx, f: impl FnOnce(&[T]) -> R) -> R {
        self.access(cx, false);
        self.head.nodes.with(|chain| f(chain))
    }

    /// An access to the chain, as [`Guarded`] makes one: traced; and, while lockdep runs,
    /// checked against the documented lock and by the lockset detector, through the chain's
    /// shadow (which only then is made and read).
    #[track_caller]
    #[inline]
    fn access(self, cx: &Cx, write: bool) {
        if cx.sim().lockdep().is_enabled() {
            self.table.shadow(self.index).check_access(cx, write);
        } else {
            trace_access(cx, write, FIELD, self.table.field_hash);
        }
    }

    /// The `LIST_BL_BUG_ON(!((unsigned long)h->first & LIST_BL_LOCKMASK))` of
    /// `hlist_bl_set_first()`: reported, never a crash.
    fn bug_on_unlocked(self, cx: &Cx, what: &str) {
        if !self.is_locked() && !cx.is_observer() {
            let message = format!(
                "{what} on a {} chain whose lock bit is clear (by {} on cpu{})",
                self.table.key.name,
                cx.name(),
                cx.cpu()
            );
            cx.sim().report(Some(cx), Violation::new("hlist_bl-unlocked", message));
        }
    }
}

/// A lone `struct hlist_bl_head` and its bit lock: a table of one chain, used through
/// [`HlistBlHead::head`].
pub struct HlistBlHead<T>(HlistBlTable<T>);

impl<T> fmt::Debug for HlistBlHead<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HlistBlHead").field("class", &self.0.key.name).finish_non_exhaustive()
    }
}

impl<T> HlistBlHead<T> {
    /// `INIT_HLIST_BL_HEAD()`: an empty chain whose bit lock is of class `class`.
    pub fn new(class: &'static str) -> Self {
        HlistBlHead(HlistBlTable::new(class, 1))
    }

    /// The chain, with the methods of a head (`hlist_bl_lock(head)` is `.head().lock(cx)`).
    pub fn head(&self) -> HlistBl<'_, T> {
        self.0.bucket(0)
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
        let lone = HlistBlHead::new("mb_cache->c_hash");
        let head = lone.head();
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

    /// A chain's lock is a `bit_spin_lock` of the table's class as the trace and lockdep see it
    /// (the same events, hence the same hash; recursion on the class reported the same), and
    /// its class comes from the table's memo, filled by the first acquisition: no acquisition
    /// hashes the class name or asks the thread's class table.
    #[test]
    fn a_chains_lock_is_a_bit_spin_lock_of_the_tables_remembered_class() {
        use crate::bit_spinlock::bit_spin_lock;
        use crate::trace::TraceMode;
        let run = |through_table: bool| {
            let sim = Sim::new(SimConfig::new(1).lockdep(ReportMode::Collect).trace(TraceMode::Full));
            let cx = sim.cx("t", 0);
            let table: HlistBlTable<u32> = HlistBlTable::new("mb_cache->c_hash", 2);
            let words = [AtomicUsize::new(0), AtomicUsize::new(0)];
            let lock = |i: usize| match through_table {
                true => table.bucket(i).lock(&cx),
                false => bit_spin_lock(&cx, "mb_cache->c_hash", LOCK_BIT, &words[i]),
            };
            drop(lock(0));
            let outer = lock(0);
            drop(lock(1));
            drop(outer);
            let remembered = table.key.class(sim.lockdep().id()).is_some();
            (sim.trace_hash(), sim.trace().len(), sim.lockdep().reports().len(), remembered)
        };
        let (keyed, named) = (run(true), run(false));
        assert_eq!((keyed.0, keyed.1, keyed.2), (named.0, named.1, named.2));
        assert_eq!((keyed.1, keyed.2), (6, 1), "three round trips, one recursive-locking report");
        assert!(keyed.3, "the table's memo holds the class after its first acquisition");
    }

    #[test]
    fn a_chain_changed_without_its_lock_is_reported_twice_over() {
        let sim = collecting();
        let cx = sim.cx("t", 0);
        let head = HlistBlHead::new("mb_cache->c_hash");
        head.head().add_head(&cx, 7);
        let kinds: Vec<String> = sim.violations().into_iter().map(|v| v.kind.to_string()).collect();
        assert_eq!(kinds, ["hlist_bl-unlocked", "lockdep:lock-not-held"]);
    }

    #[test]
    fn each_chain_of_a_table_has_its_own_lockset_shadow() {
        // Two tasks each change a different chain with no lock: two unlocked changes, and no
        // lockset race, since no chain was touched by both (a shadow shared by the table would
        // have seen two tasks' unordered writes of one field).
        let sim = collecting();
        let (one, two) = (sim.cx("one", 0), sim.cx("two", 1));
        let table: HlistBlTable<u32> = HlistBlTable::new("mb_cache->c_hash", 2);
        table.bucket(0).add_head(&one, 1);
        table.bucket(1).add_head(&two, 2);
        let guard = table.bucket(1).lock(&two);
        assert_eq!(table.bucket(1).for_each_entry(&two, <[u32]>::to_vec), [2]);
        drop(guard);
        let mut kinds: Vec<String> = sim.violations().into_iter().map(|v| v.kind.to_string()).collect();
        kinds.sort();
        assert_eq!(kinds, ["hlist_bl-unlocked", "hlist_bl-unlocked", "lockdep:lock-not-held"]);
        assert!(!table.bucket(0).is_empty() && !table.bucket(1).is_empty());
        // The same two writes on one chain are the race.
        let sim = collecting();
        let (one, two) = (sim.cx("one", 0), sim.cx("two", 1));
        let table: HlistBlTable<u32> = HlistBlTable::new("mb_cache->c_hash", 2);
        table.bucket(0).add_head(&one, 1);
        table.bucket(0).add_head(&two, 2);
        let kinds: Vec<String> = sim.violations().into_iter().map(|v| v.kind.to_string()).collect();
        assert!(kinds.contains(&"lockdep:lockset-race".to_string()), "{kinds:?}");
    }

    #[test]
    fn a_table_holds_memory_only_for_the_chains_in_use() {
        // No node room for an empty chain, the chain's share on its first node, and no lockset
        // shadow until an access while lockdep runs.
        let capacity = |table: &HlistBlTable<u32>, i: usize| table.heads[i].nodes.with(Vec::capacity);
        let sim = Sim::new(SimConfig::new(1).without_lockdep());
        let cx = sim.cx("t", 0);
        let table: HlistBlTable<u32> = HlistBlTable::with_chain_capacity("mb_cache->c_hash", 1 << 12, 16);
        assert!((0..table.len()).all(|i| capacity(&table, i) == 0));
        let guard = table.bucket(5).lock(&cx);
        table.bucket(5).add_head(&cx, 1);
        drop(guard);
        assert_eq!(capacity(&table, 5), 16);
        assert_eq!((0..table.len()).filter(|&i| capacity(&table, i) > 0).count(), 1);
        assert!(table.shadows.get().is_none(), "a shadow made with lockdep off");
        let sim = collecting();
        let cx = sim.cx("t", 0);
        let guard = table.bucket(5).lock(&cx);
        table.bucket(5).add_head(&cx, 2);
        drop(guard);
        assert_eq!(table.shadows.get().map(|shadows| shadows.len()), Some(table.len()));
        assert!(sim.violations().is_empty(), "{:#?}", sim.violations());
    }

    #[test]
    #[cfg(not(feature = "threaded"))]
    fn a_head_is_its_lock_word_and_its_chain() {
        // The hot line a lookup reads: no class, no shadow (those are per table and apart).
        assert!(std::mem::size_of::<BlChain<u64>>() <= 40, "{}", std::mem::size_of::<BlChain<u64>>());
    }

    #[test]
    fn another_buckets_lock_of_the_same_class_does_not_do() {
        // Class-level lockdep is satisfied (the class is held); the head's own bit is not set.
        let sim = collecting();
        let cx = sim.cx("t", 0);
        let buckets: Vec<HlistBlHead<u32>> = (0..2).map(|_| HlistBlHead::new("mb_cache->c_hash")).collect();
        let guard = buckets[0].head().lock(&cx);
        buckets[1].head().add_head(&cx, 5);
        drop(guard);
        let kinds: Vec<String> = sim.violations().into_iter().map(|v| v.kind.to_string()).collect();
        assert_eq!(kinds, ["hlist_bl-unlocked"]);
    }
}
