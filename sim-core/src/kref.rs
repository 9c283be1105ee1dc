//! Reference counts after include/linux/kref.h over include/linux/refcount.h: `kref_init`,
//! `kref_get`, `kref_put` (the last put runs the release), `kref_get_unless_zero`
//! (`refcount_inc_not_zero`), `kref_read`, with refcount_t's saturation (lib/refcount.c): a count
//! that goes wrong is pinned at `REFCOUNT_SATURATED`, so the object leaks instead of being freed
//! twice.
//!
//! Reported as [`Violation`]s: a put from zero (`kref:underflow`, refcount_t's "underflow;
//! use-after-free"), a get from zero (`kref:get-after-release`, "addition on 0;
//! use-after-free"), a use of the object after its last put (`kref:use-after-release`, what
//! KASAN would find), and a count not back to its base at teardown (`kref:leak`, naming the
//! object and where each outstanding reference was taken, as the kernel's `ref_tracker` does).
//!
//! The count is a facade atomic with the kernel's orderings (relaxed increments, a release
//! decrement with an acquire on the last one), so loom and shuttle explore it as they would the
//! kernel's. Who holds which reference is checker bookkeeping behind a `sync::BookLock`, kept
//! only while lockdep is enabled. A put names no reference, so it retires the newest reference
//! its own task took, or else the oldest outstanding one: the sites a leak report lists are
//! those of references no put retired under that rule. Left out:
//! `kref_put_mutex`/`kref_put_lock`, refcount overflow (a model never takes 2^31 references).

use std::borrow::Cow;
use std::fmt;
use std::panic::Location;

use smallvec::SmallVec;

use crate::cx::Cx;
use crate::sim::Violation;
use crate::sync::atomic::{fence, AtomicU32, Ordering};
use crate::trace::{KrefOp, Name, Named, TaskId};

/// `REFCOUNT_SATURATED` (`INT_MIN / 2`): where a count that went wrong is pinned.
pub const REFCOUNT_SATURATED: u32 = 0xc000_0000;

/// Whether a count read back is in the saturated (negative as an `int`) range.
fn saturated(count: u32) -> bool {
    (count as i32) < 0
}

/// A task and the call site of a reference it took or the last put it made.
#[derive(Clone, Debug)]
struct Holder {
    task: TaskId,
    task_name: std::sync::Arc<str>,
    site: &'static Location<'static>,
}

impl fmt::Display for Holder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} at {}", self.task_name, crate::lockdep::site(self.site))
    }
}

#[derive(Default)]
struct Book {
    holders: Holders,
    released: Option<Holder>,
}

/// The outstanding references' holders, oldest first: the first in place, the second too (in
/// `rest`'s inline room), the rest spilled to the heap only for a third, so an object referenced
/// by one or two tasks at a time (most: taskstats' 6,000 krefs in 300 cases; a task's second
/// holder, a query's get, was 1,928 `Vec` allocations there) costs no allocation and free for
/// its book.
#[derive(Default)]
struct Holders {
    /// The oldest holder; `None` only when `rest` is empty too.
    first: Option<Holder>,
    rest: SmallVec<[Holder; 1]>,
}

impl Holders {
    fn push(&mut self, holder: Holder) {
        match self.first {
            None => self.first = Some(holder),
            Some(_) => self.rest.push(holder),
        }
    }

    fn is_empty(&self) -> bool {
        self.first.is_none()
    }

    fn iter(&self) -> impl Iterator<Item = &Holder> {
        self.first.iter().chain(&self.rest)
    }

    /// The index (oldest 0) of the newest holder `found` accepts.
    fn rposition(&self, found: impl Fn(&Holder) -> bool) -> Option<usize> {
        match self.rest.iter().rposition(&found) {
            Some(at) => Some(at + 1),
            None => self.first.as_ref().filter(|holder| found(holder)).map(|_| 0),
        }
    }

    /// Removes the holder at `index` (oldest 0), keeping the order of the others.
    fn remove(&mut self, index: usize) {
        match index {
            0 => self.first = (!self.rest.is_empty()).then(|| self.rest.remove(0)),
            _ => drop(self.rest.remove(index - 1)),
        }
    }
}

/// A misuse of a reference count. Each is also reported to the `Sim` as a violation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KrefError {
    /// The object was used after its last put.
    UseAfterRelease {
        /// The object's name.
        object: String,
    },
}

impl fmt::Display for KrefError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KrefError::UseAfterRelease { object } => write!(f, "use of {object} after its last kref_put"),
        }
    }
}

impl std::error::Error for KrefError {}

/// `struct kref`: the reference count of one object, named for reports.
pub struct Kref {
    object: Name,
    /// The name's trace hash, computed once (an operation is traced by it, not its text).
    object_hash: u64,
    refcount: AtomicU32,
    book: crate::sync::BookLock<Book>,
}

impl fmt::Debug for Kref {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Kref").field("object", &self.object).field("refcount", &self.read()).finish()
    }
}

impl Kref {
    /// Mirrors `kref_init()`: a count of 1, held by the caller. `object` names the object in
    /// reports and the trace ("mb_cache_entry 7").
    #[track_caller]
    pub fn new(cx: &Cx, object: impl Into<Name>) -> Kref {
        let object: Name = object.into();
        let object_hash = crate::trace::name_hash(&object);
        // The caller's reference is the book's first holder, written before the book is shared
        // (what `took` records, without its lock round trip).
        let first = Kref::tracking(cx).then(|| Kref::holder(cx, Location::caller()));
        let book = Book { holders: Holders { first, rest: SmallVec::new() }, released: None };
        let kref =
            Kref { object, object_hash, refcount: AtomicU32::new(1), book: crate::sync::BookLock::new(book) };
        kref.trace(cx, KrefOp::Init, 1);
        kref
    }

    /// The object's name.
    pub fn object(&self) -> &str {
        &self.object
    }

    /// Mirrors `kref_read()`.
    pub fn read(&self) -> u32 {
        self.refcount.load(Ordering::Relaxed)
    }

    fn tracking(cx: &Cx) -> bool {
        cx.sim().lockdep().is_enabled() && !cx.is_observer()
    }

    fn book(&self) -> crate::sync::BookGuard<'_, Book> {
        self.book.lock()
    }

    fn trace(&self, cx: &Cx, op: KrefOp, count: u32) {
        cx.trace_named(Named::Kref { op, count }, self.object_hash, || match &self.object {
            Cow::Borrowed(name) => Cow::Borrowed(*name),
            Cow::Owned(name) => Cow::Owned(name.clone()),
        });
    }

    fn holder(cx: &Cx, site: &'static Location<'static>) -> Holder {
        Holder { task: cx.task(), task_name: cx.name_shared(), site }
    }

    fn took(&self, cx: &Cx, site: &'static Location<'static>) {
        if Kref::tracking(cx) {
            self.book().holders.push(Kref::holder(cx, site));
        }
    }

    /// Retires one reference for a put by `cx` (see the module documentation); records the
    /// last put.
    fn dropped(&self, cx: &Cx, site: &'static Location<'static>, last: bool) {
        if !Kref::tracking(cx) {
            return;
        }
        let mut book = self.book();
        let own = book.holders.rposition(|holder| holder.task == cx.task());
        if let Some(index) = own.or(if book.holders.is_empty() { None } else { Some(0) }) {
            book.holders.remove(index);
        }
        if last {
            book.released = Some(Kref::holder(cx, site));
        }
    }

    fn released_by(&self) -> String {
        match &self.book().released {
            Some(holder) => format!("its last kref_put was by {holder}"),
            None => "its last put is not recorded".to_string(),
        }
    }

    fn report(&self, cx: &Cx, kind: &str, headline: &str, site: &'static Location<'static>, verb: &str) {
        let message = format!(
            "{headline}\n{verb}({}) by {}/cpu{} at {}; {}",
            self.object,
            cx.name(),
            cx.cpu(),
            crate::lockdep::site(site),
            self.released_by()
        );
        cx.sim().report(Some(cx), Violation::new(kind, message));
    }

    /// Mirrors `kref_get()` (`refcount_inc()`): a relaxed increment. From zero it is a get after
    /// the release: reported, and the count saturates.
    #[track_caller]
    pub fn get(&self, cx: &Cx) {
        let site = Location::caller();
        let old = self.refcount.fetch_add(1, Ordering::Relaxed);
        if old == 0 {
            self.refcount.store(REFCOUNT_SATURATED, Ordering::Relaxed);
            let headline = "refcount_t: addition on 0; use-after-free.";
            self.report(cx, "kref:get-after-release", headline, site, "kref_get");
        } else if saturated(old) {
            self.refcount.store(REFCOUNT_SATURATED, Ordering::Relaxed);
        } else {
            self.took(cx, site);
            self.trace(cx, KrefOp::Get, old + 1);
        }
    }

    /// Mirrors `kref_get_unless_zero()` (`refcount_inc_not_zero()`): takes a reference unless the
    /// count has reached zero (the object is being released); relaxed, as the caller's lookup
    /// structure (RCU, a lock) keeps the memory valid.
    #[track_caller]
    pub fn get_unless_zero(&self, cx: &Cx) -> bool {
        let mut old = self.refcount.load(Ordering::Relaxed);
        loop {
            if old == 0 {
                return false;
            }
            if saturated(old) {
                return true;
            }
            match self.refcount.compare_exchange_weak(old, old + 1, Ordering::Relaxed, Ordering::Relaxed) {
                Ok(_) => break,
                Err(actual) => old = actual,
            }
        }
        self.took(cx, Location::caller());
        self.trace(cx, KrefOp::GetUnlessZero, old + 1);
        true
    }

    /// Mirrors `kref_put()` (`refcount_dec_and_test()`): a release decrement; the last put
    /// acquires and runs `release`, and returns true. A put from zero is an underflow: reported,
    /// and the count saturates.
    #[track_caller]
    pub fn put(&self, cx: &Cx, release: impl FnOnce(&Cx)) -> bool {
        let site = Location::caller();
        let old = self.refcount.fetch_sub(1, Ordering::Release);
        if old == 1 {
            fence(Ordering::Acquire);
            self.dropped(cx, site, true);
            self.trace(cx, KrefOp::Release, 0);
            release(cx);
            return true;
        }
        if old == 0 {
            self.refcount.store(REFCOUNT_SATURATED, Ordering::Relaxed);
            let headline = "refcount_t: underflow; use-after-free.";
            self.report(cx, "kref:underflow", headline, site, "kref_put");
        } else if saturated(old) {
            self.refcount.store(REFCOUNT_SATURATED, Ordering::Relaxed);
        } else {
            self.dropped(cx, site, false);
            self.trace(cx, KrefOp::Put, old - 1);
        }
        false
    }

    /// A use of the object this count keeps alive (a field read, a call on it). After the last
    /// put the memory is the release's to free: the use is reported, as KASAN would report it
    /// once the memory was reused, and is an error.
    #[track_caller]
    pub fn check_access(&self, cx: &Cx) -> Result<(), KrefError> {
        let count = self.read();
        let released = count == 0 || (Kref::tracking(cx) && self.book().released.is_some());
        if !released {
            return Ok(());
        }
        let headline = "BUG: KASAN: use-after-free (the object's last reference was put)";
        self.report(cx, "kref:use-after-release", headline, Location::caller(), "access");
        Err(KrefError::UseAfterRelease { object: self.object.to_string() })
    }

    /// The teardown check: the count must be back at `base` (the references the object's owner
    /// keeps; 0 once released). Otherwise a leak is reported with the outstanding references and
    /// where each was taken.
    #[track_caller]
    pub fn teardown(&self, cx: &Cx, base: u32) -> Result<(), Violation> {
        let count = self.read();
        if count == base {
            return Ok(());
        }
        let holders: Vec<String> = self.book().holders.iter().map(|holder| format!("\n  {holder}")).collect();
        let message = format!(
            "kref {}: count {count} at teardown, expected {base}; {} references outstanding, taken by:{}",
            self.object,
            holders.len(),
            holders.concat()
        );
        let violation = Violation::new("kref:leak", message);
        cx.sim().report(Some(cx), violation.clone());
        Err(violation)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lockdep::ReportMode;
    use crate::sim::{Sim, SimConfig};
    use crate::trace::EventKind;

    /// The holder list (the first in place, the rest in a `Vec`) answers as a plain `Vec` does
    /// through a long run of pushes, searches and removals at every position, emptied and
    /// refilled.
    #[test]
    fn holders_behave_as_a_vec() {
        let site = Location::caller();
        let holder = |task| Holder { task, task_name: "t".into(), site };
        let (mut holders, mut plain) = (Holders::default(), Vec::<Holder>::new());
        let (mut state, mut emptied) = (7u64, 0);
        for step in 0..2000u32 {
            state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            let draw = (state >> 33) as usize;
            if draw.is_multiple_of(2) || plain.is_empty() {
                holders.push(holder(draw as u32 % 4));
                plain.push(holder(draw as u32 % 4));
            } else {
                let task = (draw / 5) as u32 % 4;
                let want = plain.iter().rposition(|h| h.task == task);
                assert_eq!(holders.rposition(|h| h.task == task), want, "step {step}");
                let index = want.unwrap_or(draw % plain.len());
                holders.remove(index);
                plain.remove(index);
            }
            let tasks = |list: Vec<&Holder>| list.iter().map(|h| h.task).collect::<Vec<_>>();
            assert_eq!(tasks(holders.iter().collect()), tasks(plain.iter().collect()), "step {step}");
            assert_eq!(holders.is_empty(), plain.is_empty());
            emptied += u32::from(plain.is_empty());
        }
        assert!(emptied > 10, "the run empties the list now and then: {emptied}");
    }

    fn sim() -> Sim {
        Sim::new(SimConfig::new(1).lockdep(ReportMode::Collect))
    }

    fn kinds(sim: &Sim) -> Vec<String> {
        sim.violations().into_iter().map(|v| v.kind.to_string()).collect()
    }

    #[test]
    fn last_put_runs_the_release_once() {
        let sim = sim();
        let cx = sim.cx("t", 0);
        let kref = Kref::new(&cx, "obj");
        kref.get(&cx);
        let released = std::cell::Cell::new(0);
        assert!(!kref.put(&cx, |_| released.set(released.get() + 1)));
        assert!(kref.check_access(&cx).is_ok());
        assert!(kref.put(&cx, |_| released.set(released.get() + 1)));
        assert_eq!((released.get(), kref.read()), (1, 0));
        assert!(kref.teardown(&cx, 0).is_ok());
        assert!(sim.violations().is_empty());
    }

    #[test]
    fn get_after_release_is_reported_and_saturates() {
        let sim = sim();
        let (cx, other) = (sim.cx("t", 0), sim.cx("other", 1));
        let kref = Kref::new(&cx, "obj");
        assert!(kref.put(&cx, |_| {}));
        let put_line = line!() - 1;
        assert!(!kref.get_unless_zero(&other), "get_unless_zero refuses a released object");
        assert!(sim.violations().is_empty());
        kref.get(&other);
        assert_eq!(kref.read(), REFCOUNT_SATURATED);
        let found = sim.violations();
        assert_eq!(kinds(&sim), vec!["kref:get-after-release"]);
        assert!(found[0].message.contains("addition on 0"));
        assert!(found[0]
            .message
            .contains(&format!("last kref_put was by t at sim-core/src/kref.rs:{put_line}")));
        assert!(!kref.put(&other, |_| panic!("a saturated count never releases")));
    }

    #[test]
    fn put_from_zero_is_an_underflow() {
        let sim = sim();
        let cx = sim.cx("t", 0);
        let kref = Kref::new(&cx, "obj");
        assert!(kref.put(&cx, |_| {}));
        assert!(!kref.put(&cx, |_| {}));
        assert_eq!(kinds(&sim), vec!["kref:underflow"]);
        assert!(sim.violations()[0].message.contains("refcount_t: underflow"));
    }

    #[test]
    fn use_after_the_last_put_is_reported() {
        let sim = sim();
        let cx = sim.cx("t", 0);
        let kref = Kref::new(&cx, String::from("entry 7"));
        assert!(kref.check_access(&cx).is_ok());
        kref.put(&cx, |_| {});
        assert_eq!(kref.check_access(&cx), Err(KrefError::UseAfterRelease { object: "entry 7".into() }));
        assert_eq!(kinds(&sim), vec!["kref:use-after-release"]);
    }

    #[test]
    fn leak_names_where_the_outstanding_references_were_taken() {
        let sim = sim();
        let (owner, user) = (sim.cx("owner", 0), sim.cx("user", 1));
        let kref = Kref::new(&owner, "obj");
        kref.get(&user);
        let first = line!() - 1;
        assert!(kref.get_unless_zero(&user));
        let second = line!() - 1;
        kref.put(&user, |_| {});
        assert!(kref.teardown(&owner, 1).is_err());
        let message = &sim.violations()[0].message;
        assert!(message.contains("count 2 at teardown, expected 1"), "{message}");
        assert!(message.contains(&format!("user at sim-core/src/kref.rs:{first}")), "{message}");
        assert!(!message.contains(&format!("kref.rs:{second}")), "the put retired the newest: {message}");
        assert_eq!(kinds(&sim), vec!["kref:leak"]);
    }

    #[test]
    fn gets_and_puts_are_traced_with_the_count() {
        let sim = sim();
        let cx = sim.cx("t", 0);
        let kref = Kref::new(&cx, "obj");
        kref.get(&cx);
        kref.put(&cx, |_| {});
        kref.put(&cx, |_| {});
        let ops: Vec<(KrefOp, u32)> = sim
            .trace()
            .events()
            .into_iter()
            .filter_map(|e| match e.kind {
                EventKind::Kref { op, count, .. } => Some((op, count)),
                _ => None,
            })
            .collect();
        assert_eq!(ops, vec![(KrefOp::Init, 1), (KrefOp::Get, 2), (KrefOp::Put, 1), (KrefOp::Release, 0)]);
    }
}
