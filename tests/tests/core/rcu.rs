//! RCU's detectors in the op-level simulation: a small RCU-protected, refcounted one-entry cache
//! driven by the campaign (a reader whose section spans operations, an updater that replaces the
//! entry and frees the old one, lookups that take references), and one scripted misuse and one
//! correct use for each report.

use std::collections::BTreeSet;
use std::sync::Arc as StdArc;

use proptest::prelude::*;
use serde::{Deserialize, Serialize};
use sim_core::check::{self, Reference, Subject};
use sim_core::lockdep::ReportMode;
use sim_core::rcu::{synchronize_rcu, RcuObj};
use sim_core::{Cx, Kref, Mutex, RcuPointer, RcuRef, Sim, SimConfig, SpinLock, Violation};

/// How the updater frees the entry it replaced, once its last reference is put.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(super) enum Free {
    /// `kfree()` at once: a reader still inside its section may hold the entry.
    Kfree,
    /// `kfree_rcu()`: after a grace period.
    KfreeRcu,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct CacheConfig {
    pub(super) free: Free,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(super) enum CacheOp {
    /// The reader enters a section and reads the entry (a section spanning operations).
    ReaderBegin,
    /// The reader uses the entry it read.
    ReaderUse,
    /// The reader leaves its section and forgets the entry.
    ReaderEnd,
    /// The updater publishes a new entry and puts the cache's reference to the old one.
    Replace(u8),
    /// A lookup under RCU takes a reference (`kref_get_unless_zero`).
    Lookup,
    /// The lookup puts its oldest reference.
    Put,
    /// The grace-period machinery runs ([`Sim::rcu_advance`]).
    GracePeriod,
}

struct Entry {
    kref: Kref,
    value: u8,
}

pub(super) struct Cache {
    slot: StdArc<RcuPointer<Entry>>,
    lock: SpinLock<()>,
    free: Free,
    reader: Cx,
    seen: Option<RcuRef<Entry>>,
    lookup: Cx,
    held: Vec<(RcuObj<Entry>, StdArc<Entry>)>,
    updater: Cx,
    marks: BTreeSet<&'static str>,
}

impl Cache {
    /// The release: frees the entry as the configuration says.
    fn put(slot: &StdArc<RcuPointer<Entry>>, free: Free, cx: &Cx, object: RcuObj<Entry>, entry: &Entry) {
        entry.kref.put(cx, |cx| match free {
            Free::Kfree => slot.kfree(cx, object),
            Free::KfreeRcu => slot.kfree_rcu(cx, object),
        });
    }

    fn replace(&mut self, value: u8) {
        let new = self.slot.alloc(Entry { kref: Kref::new(&self.updater, format!("entry {value}")), value });
        let old = {
            let _held = self.lock.lock(&self.updater);
            let old = self.slot.rcu_dereference_protected(&self.updater, "cache_lock");
            self.slot.rcu_assign_pointer(&self.updater, Some(new));
            old
        };
        if let Some(old) = old {
            let entry = old.get(&self.updater).expect("the cache's reference keeps the entry");
            Cache::put(&self.slot, self.free, &self.updater, old.object(), &entry);
        }
    }

    fn lookup(&mut self) -> Option<u8> {
        self.lookup.rcu_read_lock();
        let found = self.slot.rcu_dereference(&self.lookup).and_then(|seen| {
            let entry = seen.get(&self.lookup).ok()?;
            entry.kref.get_unless_zero(&self.lookup).then_some((seen.object(), entry))
        });
        self.lookup.rcu_read_unlock();
        let value = found.as_ref().map(|(_, entry)| entry.value);
        self.held.extend(found);
        value
    }
}

impl Subject for Cache {
    const NAME: &'static str = "rcu-cache";
    type Config = CacheConfig;
    type Op = CacheOp;
    type Outcome = Option<u8>;
    type Reference = CacheModel;

    fn new(sim: &Sim, config: &CacheConfig) -> Cache {
        Cache {
            slot: StdArc::new(RcuPointer::new("cache->entry")),
            lock: SpinLock::new("cache_lock", ()),
            free: config.free,
            reader: sim.cx("reader", 0),
            seen: None,
            lookup: sim.cx("lookup", 1),
            held: Vec::new(),
            updater: sim.cx("updater", 1),
            marks: BTreeSet::new(),
        }
    }

    fn op_strategy(_config: &CacheConfig) -> BoxedStrategy<CacheOp> {
        prop_oneof![
            Just(CacheOp::ReaderBegin),
            Just(CacheOp::ReaderUse),
            Just(CacheOp::ReaderEnd),
            any::<u8>().prop_map(CacheOp::Replace),
            Just(CacheOp::Lookup),
            Just(CacheOp::Put),
            Just(CacheOp::GracePeriod),
        ]
        .boxed()
    }

    fn apply(&mut self, sim: &Sim, op: &CacheOp) -> Option<u8> {
        match op {
            CacheOp::ReaderBegin if !self.reader.rcu_read_lock_held() => {
                self.reader.rcu_read_lock();
                self.seen = self.slot.rcu_dereference(&self.reader);
                self.seen.as_ref().map(|seen| seen.get(&self.reader).map_or(0, |entry| entry.value))
            }
            CacheOp::ReaderUse => {
                let value = self.seen.as_ref()?.get(&self.reader).ok()?.value;
                self.marks.insert("reader used an entry replaced during its section");
                Some(value)
            }
            CacheOp::ReaderEnd if self.reader.rcu_read_lock_held() => {
                self.seen = None;
                self.reader.rcu_read_unlock();
                None
            }
            CacheOp::Replace(value) => {
                self.replace(*value);
                None
            }
            CacheOp::Lookup => self.lookup(),
            CacheOp::Put if !self.held.is_empty() => {
                let (object, entry) = self.held.remove(0);
                Cache::put(&self.slot, self.free, &self.lookup, object, &entry);
                None
            }
            CacheOp::GracePeriod => {
                if sim.rcu_advance() > 0 {
                    self.marks.insert("a grace period freed an entry");
                }
                None
            }
            _ => None,
        }
    }

    fn check_invariants(&self, _sim: &Sim) -> Result<(), Violation> {
        Ok(())
    }

    fn teardown(mut self, sim: &Sim) -> Result<(), Violation> {
        if self.reader.rcu_read_lock_held() {
            self.apply(sim, &CacheOp::ReaderEnd);
        }
        while !self.held.is_empty() {
            self.apply(sim, &CacheOp::Put);
        }
        let last = {
            let _held = self.lock.lock(&self.updater);
            let last = self.slot.rcu_dereference_protected(&self.updater, "cache_lock");
            self.slot.rcu_assign_pointer(&self.updater, None);
            last
        };
        if let Some(last) = last {
            let entry = last.get(&self.updater).map_err(|e| Violation::new("invariant", e.to_string()))?;
            entry.kref.teardown(&self.updater, 1)?;
            Cache::put(&self.slot, self.free, &self.updater, last.object(), &entry);
        }
        sim.rcu_advance();
        match self.slot.live() {
            0 => Ok(()),
            live => Err(Violation::new("leak", format!("{live} cache entries never freed"))),
        }
    }

    fn coverage(&self) -> BTreeSet<&'static str> {
        self.marks.clone()
    }
}

/// What the reader and a lookup may see: the reader its section's entry, a lookup the current.
pub(super) struct CacheModel {
    current: Option<u8>,
    reading: bool,
    seen: Option<u8>,
}

impl Reference for CacheModel {
    type Config = CacheConfig;
    type Op = CacheOp;
    type Outcome = Option<u8>;

    fn new(_config: &CacheConfig) -> CacheModel {
        CacheModel { current: None, reading: false, seen: None }
    }

    fn check(&mut self, op: &CacheOp, actual: &Option<u8>) -> Result<(), String> {
        let expect = match op {
            CacheOp::ReaderBegin if !self.reading => {
                self.reading = true;
                self.seen = self.current;
                self.current
            }
            CacheOp::ReaderUse => self.seen,
            CacheOp::ReaderEnd if self.reading => {
                self.reading = false;
                self.seen = None;
                None
            }
            CacheOp::Replace(value) => {
                self.current = Some(*value);
                None
            }
            CacheOp::Lookup => self.current,
            _ => None,
        };
        if expect == *actual {
            Ok(())
        } else {
            Err(format!("expected {expect:?}"))
        }
    }
}

#[test]
fn campaign_finds_kfree_under_a_reader_as_use_after_free() {
    let config = CacheConfig { free: Free::Kfree };
    let failure = check::find_failure::<Cache>(&config, 0, 200, 12).expect("the campaign finds the free");
    let violation = &failure.artifact.violation;
    assert_eq!(violation.kind, "rcu:use-after-free", "{violation}");
    assert!(violation.message.contains("cache->entry"), "{violation}");
    assert!(violation.message.contains("without waiting for a grace period"), "{violation}");
    let ops: Vec<CacheOp> = serde_json::from_value(failure.artifact.ops.clone()).expect("ops");
    assert!(ops.len() <= 4, "shrunk to begin, replace, use: {ops:?}");
}

#[test]
fn campaign_with_kfree_rcu_stays_quiet_and_frees_entries() {
    let config = CacheConfig { free: Free::KfreeRcu };
    let marks = check::assert_cases_pass::<Cache>(&config, 0, 200, 24);
    assert!(marks.contains("a grace period freed an entry"), "{marks:?}");
    assert!(marks.contains("reader used an entry replaced during its section"), "{marks:?}");
}

// --- scripted: each report on a misuse, and silence on the correct use -------------------------

fn sim() -> Sim {
    Sim::new(SimConfig::new(3).lockdep(ReportMode::Collect))
}

fn kinds(sim: &Sim) -> Vec<String> {
    sim.violations().into_iter().map(|violation| violation.kind.to_string()).collect()
}

#[test]
fn sleeping_in_a_read_side_section_is_reported_and_sleeping_after_it_is_not() {
    let sim = sim();
    let cx = sim.cx("reader", 0);
    let mutex = Mutex::new("config_mutex", ());
    cx.rcu_read_lock();
    cx.rcu_read_unlock();
    drop(mutex.lock(&cx));
    cx.sleep_ns("msleep", 1_000);
    assert!(kinds(&sim).is_empty());
    cx.rcu_read_lock();
    cx.sleep_ns("msleep", 1_000);
    cx.rcu_read_unlock();
    assert_eq!(kinds(&sim), vec!["rcu:sleep-in-read-side"]);
    let message = &sim.violations()[0].message;
    assert!(message.contains("msleep called by reader/cpu0"), "{message}");
    assert!(message.contains("tests/tests/core/rcu.rs:"), "names where the section began: {message}");
}

#[test]
fn dereference_without_section_or_update_lock_is_reported() {
    let sim = sim();
    let cx = sim.cx("updater", 0);
    let gp = RcuPointer::new("gp");
    let lock = SpinLock::new("gp_lock", ());
    gp.rcu_assign_pointer(&cx, Some(gp.alloc(1u8)));
    {
        let _held = lock.lock(&cx);
        assert!(gp.rcu_dereference_protected(&cx, "gp_lock").is_some());
    }
    cx.rcu_read_lock();
    assert!(gp.rcu_dereference(&cx).is_some());
    cx.rcu_read_unlock();
    assert!(kinds(&sim).is_empty());
    assert!(gp.rcu_dereference(&cx).is_some());
    assert_eq!(kinds(&sim), vec!["rcu:dereference-outside-read-side"]);
    assert!(sim.violations()[0].message.contains("gp read by updater/cpu0"));
}

#[test]
fn synchronize_rcu_then_kfree_is_quiet_and_kfree_first_is_not() {
    for synchronize in [true, false] {
        let sim = sim();
        let (reader, updater) = (sim.cx("reader", 0), sim.cx("updater", 1));
        let gp = RcuPointer::new("gp");
        let old = gp.alloc(1u32);
        gp.rcu_assign_pointer(&updater, Some(old));
        reader.rcu_read_lock();
        let seen = gp.rcu_dereference(&reader).expect("published");
        let value = seen.get(&reader).map(|v| *v);
        gp.rcu_assign_pointer(&updater, None);
        if !synchronize {
            gp.kfree(&updater, old);
        }
        let again = seen.get(&reader).map(|v| *v);
        reader.rcu_read_unlock();
        if synchronize {
            synchronize_rcu(&updater);
            gp.kfree(&updater, old);
        }
        assert_eq!(value, Ok(1));
        assert_eq!(again.is_ok(), synchronize);
        let expect: Vec<String> = if synchronize { vec![] } else { vec!["rcu:use-after-free".into()] };
        assert_eq!(kinds(&sim), expect);
    }
}

#[test]
fn unbalanced_unlock_and_double_free_are_reported() {
    let sim = sim();
    let cx = sim.cx("t", 0);
    let gp = RcuPointer::new("gp");
    let object = gp.alloc(0u8);
    cx.rcu_read_lock();
    cx.rcu_read_unlock();
    gp.kfree(&cx, object);
    assert!(kinds(&sim).is_empty());
    cx.rcu_read_unlock();
    gp.kfree(&cx, object);
    assert_eq!(kinds(&sim), vec!["rcu:unbalanced-unlock", "rcu:double-free"]);
}
