//! Convention-guarded data and the lockset detector that judges it.
//!
//! Much kernel data is protected only by a comment ("protected by balloon_lock") and by
//! `lockdep_assert_held()` where someone remembered to write one; C lets any code touch the
//! field. [`Guarded`] keeps that shape: model code reads and writes the field at any time given a
//! `&Cx`, and every access is checked, so a forgotten lock is found in a run that corrupted
//! nothing, in the single-threaded op-level simulation as in loom and shuttle.
//!
//! Two checks, both reported through lockdep (so `ReportMode` and `Sim::violations` apply):
//!
//! - **Documented lock** (`lockdep_assert_held()`): a field declared with a lock class reports
//!   any access made without that class held (`lockdep:lock-not-held`); a write needs it held
//!   for writing (a `down_read` hold does not do).
//! - **Lockset** (Eraser, Savage et al. 1997): per field, a state and a candidate set of lock
//!   classes. *Virgin* until first touched, then *Exclusive* to that task, so initialisation by
//!   one task is never flagged. The first access by another task moves it to *Shared* (a read)
//!   or *Shared-Modified* (a write) with the candidates set to the locks that access holds; every
//!   later access intersects them with the locks it holds. A Shared-Modified field whose set is
//!   empty has two tasks' accesses, one a write, that no one lock orders:
//!   `lockdep:lockset-race`, naming both accesses. Tasks are `Cx` tasks, so two contexts in one
//!   thread are two tasks and the op-level simulation finds the race from two operations.
//!
//! What this does not cover: fields the kernel reads with `READ_ONCE`/`WRITE_ONCE` or publishes
//! with `smp_store_release`/`smp_load_acquire` are not guarded data; they stay facade atomics
//! with the seed's orderings, and loom judges those. Locks are compared by class, as lockdep
//! compares them, so a field guarded by one bucket's lock but touched under another bucket's lock
//! of the same class is not found. Eraser knows no happens-before: a hand-off by thread join or a
//! completion looks like a race, so checkers read model state through observer contexts, which
//! are never checked.
//!
//! The detector runs whenever lockdep does (`SimConfig::without_lockdep` turns both off); an
//! access is traced either way. The detector's shadow state is a `std` mutex (instrumentation, no interleavings); the value
//! itself is a [`sync::RaceCell`], which loom judges for real races on its own.

use std::collections::BTreeMap;
use std::fmt;
use std::panic::Location;
use std::sync::{Arc, Mutex as StdMutex};

use crate::cx::Cx;
use crate::lockdep::{site, FieldAccess, HeldLock, LockMode, LockdepReport};
use crate::sync;
use crate::trace::{Named, TaskId};

/// Eraser's per-field states.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    /// Never accessed (beyond construction).
    Virgin,
    /// Accessed by this task only: initialisation, not checked.
    Exclusive(TaskId),
    /// Read by several tasks, written by none since it left Exclusive.
    Shared,
    /// Written by some task after a second task accessed it: every access is checked.
    SharedModified,
}

/// One access as the shadow state keeps it: cheap to update, turned into a [`FieldAccess`] only
/// for a report.
#[derive(Debug)]
struct AccessRecord {
    seq: u64,
    task_name: Arc<str>,
    cpu: u32,
    write: bool,
    site: &'static Location<'static>,
    held: Vec<&'static str>,
}

impl AccessRecord {
    fn report_view(&self) -> FieldAccess {
        FieldAccess {
            write: self.write,
            task: self.task_name.to_string(),
            cpu: self.cpu,
            site: site(self.site),
            held: self.held.iter().map(|c| c.to_string()).collect(),
        }
    }
}

#[derive(Debug)]
struct Shadow {
    phase: Phase,
    /// Eraser's C(v): the lock classes held at every access since the field became shared.
    candidates: Vec<&'static str>,
    /// Each task's latest access, for the "previous access" of a report.
    last: BTreeMap<TaskId, AccessRecord>,
    seq: u64,
    race_reported: bool,
    not_held_reported: bool,
}

/// A field protected by convention. See the module documentation.
pub struct Guarded<T> {
    field: &'static str,
    /// The field name's trace hash, computed once (an access is traced by it, not its text).
    field_hash: u64,
    lock: Option<&'static str>,
    shadow: StdMutex<Shadow>,
    cell: sync::RaceCell<T>,
}

impl<T> fmt::Debug for Guarded<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Guarded")
            .field("field", &self.field)
            .field("lock", &self.lock)
            .finish_non_exhaustive()
    }
}

/// The trace event of a checked access to field `field` (`field_hash` its name's trace hash),
/// as [`Guarded`] records every one; also for data whose shadow is made only while lockdep runs
/// (an `hlist_bl` table's chains), so both record the same event.
#[inline]
pub(crate) fn trace_access(cx: &Cx, write: bool, field: &'static str, field_hash: u64) {
    cx.trace_named(Named::Access { write }, field_hash, || field.into());
}

/// Whether a held lock protects an access: any hold for a read, a write hold for a write.
fn protects(held: &HeldLock, write: bool) -> bool {
    !(write && matches!(held.mode, LockMode::Read | LockMode::ReadRecursive))
}

impl<T> Guarded<T> {
    /// A field documented as protected by lock class `lock` (`"balloon_lock"`): the comment
    /// next to the C field, made checkable.
    pub fn new(field: &'static str, lock: &'static str, value: T) -> Self {
        Guarded::build(field, Some(lock), value)
    }

    /// A field whose protection nothing documents: the lockset detector alone judges it.
    pub fn undocumented(field: &'static str, value: T) -> Self {
        Guarded::build(field, None, value)
    }

    fn build(field: &'static str, lock: Option<&'static str>, value: T) -> Self {
        let shadow = Shadow {
            phase: Phase::Virgin,
            candidates: Vec::new(),
            last: BTreeMap::new(),
            seq: 0,
            race_reported: false,
            not_held_reported: false,
        };
        let field_hash = crate::trace::name_hash(field);
        Guarded { field, field_hash, lock, shadow: StdMutex::new(shadow), cell: sync::RaceCell::new(value) }
    }

    /// The field's name.
    pub fn field(&self) -> &'static str {
        self.field
    }

    /// The lock class that documents the field, if one does.
    pub fn lock_class(&self) -> Option<&'static str> {
        self.lock
    }

    /// Reads the field through `f` (a plain C load of it). Checked.
    #[track_caller]
    pub fn read<R>(&self, cx: &Cx, f: impl FnOnce(&T) -> R) -> R {
        self.check(cx, false, Location::caller());
        self.cell.with(f)
    }

    /// Writes the field through `f` (a plain C store, or a read-modify-write). Checked.
    #[track_caller]
    pub fn write<R>(&self, cx: &Cx, f: impl FnOnce(&mut T) -> R) -> R {
        self.check(cx, true, Location::caller());
        self.cell.with_mut(f)
    }

    /// `x = field`. Checked.
    #[track_caller]
    pub fn get(&self, cx: &Cx) -> T
    where
        T: Clone,
    {
        self.check(cx, false, Location::caller());
        self.cell.with(T::clone)
    }

    /// `field = value`. Checked.
    #[track_caller]
    pub fn set(&self, cx: &Cx, value: T) {
        self.check(cx, true, Location::caller());
        self.cell.with_mut(|slot| *slot = value);
    }

    /// An access to data this field's shadow stands for but does not hold (an `hlist_bl`
    /// table keeps its chains in its heads and their shadows apart): traced and checked as a
    /// read or a write of the field, without touching the value, so it is no schedule point.
    #[track_caller]
    pub(crate) fn check_access(&self, cx: &Cx, write: bool) {
        self.check(cx, write, Location::caller());
    }

    /// The value, when the field is no longer shared.
    pub fn into_inner(self) -> T {
        self.cell.into_inner()
    }

    fn shadow(&self) -> std::sync::MutexGuard<'_, Shadow> {
        self.shadow.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Both checks for one access, then the shadow state's update. The common path allocates
    /// nothing: the task's record is updated in place, and report text is built only for a
    /// report. Reports are delivered after the shadow lock is dropped (lockdep may panic).
    fn check(&self, cx: &Cx, write: bool, location: &'static Location<'static>) {
        if cx.is_observer() {
            return;
        }
        trace_access(cx, write, self.field, self.field_hash);
        if !cx.sim().lockdep().is_enabled() {
            return;
        }
        let task = cx.task();
        let reports = cx.with_held(|held| {
            let view = || FieldAccess {
                write,
                task: cx.name().to_string(),
                cpu: cx.cpu(),
                site: site(location),
                held: held.iter().map(|h| h.name.to_string()).collect(),
            };
            let mut shadow = self.shadow();
            let mut reports = Vec::new();
            if let Some(lock) = self.lock {
                if !shadow.not_held_reported && !held.iter().any(|h| h.name == lock && protects(h, write)) {
                    shadow.not_held_reported = true;
                    let access = view();
                    reports.push(LockdepReport::LockNotHeld {
                        field: self.field.to_string(),
                        expected: lock.to_string(),
                        access,
                    });
                }
            }
            self.refine(&mut shadow, task, held, write);
            reports.extend(self.race_report(&mut shadow, task, write, view));
            shadow.seq += 1;
            let seq = shadow.seq;
            let record = shadow.last.entry(task).or_insert_with(|| AccessRecord {
                seq,
                task_name: cx.name_shared(),
                cpu: 0,
                write,
                site: location,
                held: Vec::new(),
            });
            record.seq = seq;
            record.cpu = cx.cpu();
            record.write = write;
            record.site = location;
            record.held.clear();
            record.held.extend(held.iter().map(|h| h.name));
            reports
        });
        for report in reports {
            cx.sim().lockdep().report_external(report);
        }
    }

    /// Eraser's state transition and lockset refinement for an access by `task` holding `held`.
    fn refine(&self, shadow: &mut Shadow, task: TaskId, held: &[HeldLock], write: bool) {
        let holds = |class: &&'static str| held.iter().any(|h| h.name == *class && protects(h, write));
        match shadow.phase {
            Phase::Virgin => shadow.phase = Phase::Exclusive(task),
            Phase::Exclusive(owner) if owner == task => {}
            Phase::Exclusive(_) => {
                shadow.phase = if write { Phase::SharedModified } else { Phase::Shared };
                shadow.candidates = held.iter().filter(|h| protects(h, write)).map(|h| h.name).collect();
                shadow.candidates.dedup();
            }
            Phase::Shared | Phase::SharedModified => {
                shadow.candidates.retain(holds);
                if write {
                    shadow.phase = Phase::SharedModified;
                }
            }
        }
    }

    /// The race report, when the field is Shared-Modified with no candidate lock left: this
    /// access (`current`, built only then) against the latest conflicting access by another task
    /// (a write, if this one is a read).
    fn race_report(
        &self,
        shadow: &mut Shadow,
        task: TaskId,
        write: bool,
        current: impl FnOnce() -> FieldAccess,
    ) -> Option<LockdepReport> {
        if shadow.phase != Phase::SharedModified || !shadow.candidates.is_empty() || shadow.race_reported {
            return None;
        }
        let previous = shadow
            .last
            .iter()
            .filter(|(&other, record)| other != task && (write || record.write))
            .max_by_key(|(_, record)| record.seq)
            .map(|(_, record)| record.report_view())?;
        shadow.race_reported = true;
        Some(LockdepReport::LocksetRace { field: self.field.to_string(), current: current(), previous })
    }
}

impl<T> Guarded<T> {
    /// The field of an object made anew in memory that held a freed one (a slab's reuse of a
    /// slot, [`crate::mm::Recycle`]): `value` stored and the detector's state back to Virgin, as
    /// Eraser resets memory on allocation, so the new object's initialisation is not judged
    /// against the old one's accesses. Not an access (construction is neither traced nor
    /// checked), and for no object any task can still reach.
    pub fn reinit(&self, value: T) {
        {
            let mut shadow = self.shadow();
            shadow.phase = Phase::Virgin;
            shadow.candidates.clear();
            shadow.last.clear();
            shadow.race_reported = false;
            shadow.not_held_reported = false;
        }
        self.cell.with_mut(|slot| *slot = value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lockdep::ReportMode;
    use crate::trace::EventKind;
    use crate::{RwSem, Sim, SimConfig, SpinLock};

    fn collecting() -> Sim {
        Sim::new(SimConfig::new(1).lockdep(ReportMode::Collect))
    }

    fn kinds(sim: &Sim) -> Vec<&'static str> {
        sim.lockdep().reports().iter().map(|r| r.kind()).collect()
    }

    #[test]
    fn a_write_without_the_documented_lock_is_reported_with_the_locks_held() {
        let sim = collecting();
        let lock = SpinLock::new("balloon_lock", ());
        let other = SpinLock::new("other_lock", ());
        let field = Guarded::new("vb->num_pfns", "balloon_lock", 0u32);
        let cx = sim.cx("fill", 0);
        {
            let _held = lock.lock(&cx);
            field.set(&cx, 1);
        }
        assert!(kinds(&sim).is_empty());
        {
            let _other = other.lock(&cx);
            field.write(&cx, |n| *n += 1);
        }
        let reports = sim.lockdep().reports();
        let [LockdepReport::LockNotHeld { field: name, expected, access }] = &reports[..] else {
            panic!("{reports:#?}");
        };
        assert_eq!((name.as_str(), expected.as_str()), ("vb->num_pfns", "balloon_lock"));
        assert_eq!((access.task.as_str(), access.write), ("fill", true));
        assert_eq!(access.held, ["other_lock"]);
        assert!(access.site.contains("guarded.rs"), "the access's own line: {}", access.site);
        assert_eq!(field.get(&sim.observer_cx("check", 0)), 2);
    }

    #[test]
    fn two_ops_by_two_tasks_one_unlocked_are_a_lockset_race() {
        // Operation 1 writes under the lock; operation 2, another task, writes with none.
        // Nothing is corrupted (the run is sequential), and the race is still reported.
        let sim = collecting();
        let lock = SpinLock::new("stats_lock", ());
        let field = Guarded::undocumented("stats->count", 0u64);
        let (first, second) = (sim.cx("op1", 0), sim.cx("op2", 1));
        {
            let _held = lock.lock(&first);
            field.write(&first, |n| *n += 1);
        }
        field.write(&second, |n| *n += 1);
        let reports = sim.lockdep().reports();
        let [LockdepReport::LocksetRace { field: name, current, previous }] = &reports[..] else {
            panic!("{reports:#?}");
        };
        assert_eq!(name, "stats->count");
        assert_eq!((current.task.as_str(), current.held.len()), ("op2", 0));
        assert_eq!(
            (previous.task.as_str(), previous.held.as_slice()),
            ("op1", &["stats_lock".to_string()][..])
        );
        let text = reports[0].to_string();
        assert!(text.contains("data race on stats->count") && text.contains("op1") && text.contains("op2"));
    }

    #[test]
    fn writes_under_two_different_locks_empty_the_lockset() {
        let sim = collecting();
        let (a, b) = (SpinLock::new("a_lock", ()), SpinLock::new("b_lock", ()));
        let field = Guarded::undocumented("obj->state", 0u8);
        let (init, one, two) = (sim.cx("init", 0), sim.cx("one", 0), sim.cx("two", 1));
        field.set(&init, 1);
        drop((a.lock(&one), field.set(&one, 2)));
        assert!(kinds(&sim).is_empty(), "the candidate set is {{a_lock}} so far");
        let _b = b.lock(&two);
        field.set(&two, 3);
        assert_eq!(kinds(&sim), ["lockset-race"]);
    }

    #[test]
    fn consistent_locking_and_initialisation_by_one_task_are_quiet() {
        let sim = collecting();
        let lock = SpinLock::new("list_lock", ());
        let field = Guarded::undocumented("list->len", 0usize);
        let (init, one, two) = (sim.cx("init", 0), sim.cx("one", 0), sim.cx("two", 1));
        // Initialisation without a lock by one task: Exclusive, never checked.
        field.set(&init, 5);
        field.write(&init, |n| *n += 1);
        for cx in [&one, &two, &one, &init] {
            let _held = lock.lock(cx);
            field.write(cx, |n| *n += 1);
        }
        // Reads by many tasks with no writer since the field became shared are fine too.
        let readonly = Guarded::undocumented("config->size", 7usize);
        readonly.set(&init, 8);
        assert_eq!(readonly.get(&one) + readonly.get(&two), 16);
        assert!(kinds(&sim).is_empty(), "{:#?}", sim.lockdep().reports());
    }

    #[test]
    fn a_read_hold_does_not_protect_a_write() {
        let sim = collecting();
        let sem = RwSem::new("listeners->sem", ());
        let field = Guarded::new("listeners->count", "listeners->sem", 0u32);
        let cx = sim.cx("t", 0);
        drop((sem.down_read(&cx), field.get(&cx)));
        assert!(kinds(&sim).is_empty());
        drop((sem.down_read(&cx), field.set(&cx, 1)));
        assert_eq!(kinds(&sim), ["lock-not-held"]);
    }

    #[test]
    fn observers_and_a_disabled_detector_check_nothing() {
        let sim = collecting();
        let field = Guarded::new("x", "x_lock", 0u32);
        field.set(&sim.observer_cx("checker", 0), 1);
        assert!(kinds(&sim).is_empty());
        let off = Sim::new(SimConfig::new(1).without_lockdep());
        let (one, two) = (off.cx("one", 0), off.cx("two", 0));
        field.set(&one, 2);
        field.set(&two, 3);
        assert_eq!(off.lockdep().reports_count(), 0);
    }

    #[test]
    fn accesses_are_traced() {
        let sim = Sim::new(SimConfig::new(1).trace(crate::trace::TraceMode::Full));
        let lock = SpinLock::new("l", ());
        let field = Guarded::new("f", "l", 0u32);
        let cx = sim.cx("t", 0);
        let _held = lock.lock(&cx);
        field.set(&cx, field.get(&cx) + 1);
        let accesses: Vec<bool> = sim
            .trace()
            .events()
            .into_iter()
            .filter_map(|e| match e.kind {
                EventKind::Access { field, write } if field == "f" => Some(write),
                _ => None,
            })
            .collect();
        assert_eq!(accesses, [false, true]);
    }
}
