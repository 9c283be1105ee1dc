//! `demo`: a teaching subsystem that is not a kernel file. A tiny reference-counted object cache
//! (entries in a table and an LRU list, handles taken with `get` and dropped with `put`, a shrinker
//! that frees unused entries) with two fixes that, switched off, reintroduce two classic bugs:
//!
//! - `shrink-skips-used`: the shrinker must skip entries someone holds. Off, it frees them, and the
//!   holder's next `put` is a use after free (the op-level simulation sees the shrinker free more
//!   than the reference model allows first);
//! - `lru-lock-order`: every path takes `demo_cache_lock` before `demo_lru_lock`. Off, the shrinker
//!   takes them the other way round, and lockdep reports the circular dependency.
//!
//! It stays registered so `ksim` can be learnt, and tested, without a real subsystem; it models
//! nothing upstream, so its fixes carry no commit titles or CVEs. Read it as the smallest complete
//! example of a `Subject`, a `Reference` and a `Catalog`.

use std::collections::{BTreeMap, BTreeSet};

use proptest::prelude::*;
use proptest::strategy::BoxedStrategy;
use serde::{Deserialize, Serialize};
use sim_core::check::{Catalog, Reference, ScenarioInfo, Subject, ZooEntry};
use sim_core::fixes::{Commit, Fix, FixTable, FixTableOf, Fixes, KernelVersion, NamedPreset};
use sim_core::lockdep::ReportMode;
use sim_core::mm::{Gfp, KmemCache, ObjHandle};
use sim_core::trace::TraceMode;
use sim_core::{Cx, Errno, Sim, SimConfig, SpinLock, Violation};

/// The fix that makes the shrinker skip entries in use.
pub(crate) const FIX_SHRINK_SKIPS_USED: &str = "shrink-skips-used";
/// The fix that makes the shrinker take the locks in the same order as every other path.
pub(crate) const FIX_LRU_LOCK_ORDER: &str = "lru-lock-order";
/// The oldest preset: both bugs present.
const PRESET_OLD: &str = "demo-1.0";
/// The newest preset (the default): both fixes on.
const PRESET_NEW: &str = "demo-2.0";
/// Keys the operations choose from (small, so operations collide).
const KEYS_COUNT: u8 = 6;
/// Tasks the operations run in (one lane each in the trace).
const TASKS_COUNT: u8 = 3;
/// Most entries one shrink may free.
const SHRINK_BATCH_MAX: u8 = 4;

/// The demo's configuration: a preset, the fixes on, and sizes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DemoConfig {
    /// The preset the fixes came from.
    pub preset: String,
    /// The fixes switched on.
    pub fixes: BTreeSet<String>,
    /// Keys the operations choose from.
    pub keys: u8,
    /// Tasks the operations run in.
    pub tasks: u8,
}

impl DemoConfig {
    fn has(&self, fix: &str) -> bool {
        self.fixes.contains(fix)
    }
}

/// One operation. Tasks and held handles are chosen by index modulo what exists.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum DemoOp {
    /// Inserts `key` (EEXIST when present).
    Insert { task: u8, key: u8 },
    /// Takes a handle on `key` (ENOENT when absent) and moves it to the LRU tail.
    Get { task: u8, key: u8 },
    /// Drops the task's `index`-th handle (nothing when it holds none).
    Put { task: u8, index: u8 },
    /// Frees up to `count` unused entries from the LRU head.
    Shrink { task: u8, count: u8 },
}

/// What an operation returned.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DemoOutcome {
    /// Done.
    Done,
    /// Failed with an errno.
    Failed(Errno),
    /// A shrink freed this many entries.
    Freed(u32),
    /// A put found no handle to drop.
    NoHandle,
}

/// An entry object, as the slab cache holds it.
#[derive(Debug)]
struct DemoEntry {
    key: u8,
}

#[derive(Debug)]
struct TableSlot {
    handle: ObjHandle<DemoEntry>,
    used: u32,
}

/// The demo cache.
///
/// The op-level simulation runs one operation at a time, so the data sits beside the locks that
/// guard it rather than inside them: each path still takes `demo_cache_lock` and `demo_lru_lock`
/// where the cache would, so lockdep and the trace see the real order, while the invariant check
/// reads the data without taking locks (and without adding lanes to the trace).
#[derive(Debug)]
pub struct Demo {
    config: DemoConfig,
    objects: KmemCache<DemoEntry>,
    /// Guards `table`.
    cache_lock: SpinLock<()>,
    table: BTreeMap<u8, TableSlot>,
    /// Guards `lru`; nests inside `cache_lock`.
    lru_lock: SpinLock<()>,
    lru: Vec<u8>,
    tasks: Vec<Cx>,
    held: Vec<Vec<(u8, ObjHandle<DemoEntry>)>>,
    coverage: BTreeSet<&'static str>,
}

impl Demo {
    fn task(&self, task: u8) -> usize {
        usize::from(task) % self.tasks.len()
    }

    fn insert(&mut self, task: usize, key: u8) -> DemoOutcome {
        let cx = &self.tasks[task];
        cx.op_begin("insert", format!("key {key}"));
        let outcome = match self.objects.alloc(cx, Gfp::GFP_KERNEL, DemoEntry { key }) {
            Err(errno) => DemoOutcome::Failed(errno),
            Ok(handle) => {
                let cache_guard = self.cache_lock.lock(cx);
                match self.table.entry(key) {
                    std::collections::btree_map::Entry::Occupied(_) => {
                        drop(cache_guard);
                        let _ = self.objects.free(cx, handle);
                        self.coverage.insert("insert-exists");
                        DemoOutcome::Failed(Errno::EEXIST)
                    }
                    std::collections::btree_map::Entry::Vacant(vacant) => {
                        vacant.insert(TableSlot { handle, used: 0 });
                        let _lru_guard = self.lru_lock.lock(cx);
                        self.lru.push(key);
                        DemoOutcome::Done
                    }
                }
            }
        };
        cx.op_end("insert", format!("{outcome:?}"));
        outcome
    }

    fn get(&mut self, task: usize, key: u8) -> DemoOutcome {
        let cx = &self.tasks[task];
        cx.op_begin("get", format!("key {key}"));
        let cache_guard = self.cache_lock.lock(cx);
        let outcome = match self.table.get_mut(&key) {
            None => {
                self.coverage.insert("get-missing");
                DemoOutcome::Failed(Errno::ENOENT)
            }
            Some(slot) => {
                slot.used += 1;
                self.held[task].push((key, slot.handle));
                let _lru_guard = self.lru_lock.lock(cx);
                self.lru.retain(|&k| k != key);
                self.lru.push(key);
                DemoOutcome::Done
            }
        };
        drop(cache_guard);
        cx.op_end("get", format!("{outcome:?}"));
        outcome
    }

    fn put(&mut self, task: usize, index: u8) -> DemoOutcome {
        if self.held[task].is_empty() {
            return DemoOutcome::NoHandle;
        }
        let cx = &self.tasks[task];
        let position = usize::from(index) % self.held[task].len();
        let (key, handle) = self.held[task].remove(position);
        cx.op_begin("put", format!("key {key}"));
        // The holder reads its entry before dropping the reference: after a bad shrink this is the
        // use after free.
        if let Ok(entry) = self.objects.get(cx, handle) {
            let _cache_guard = self.cache_lock.lock(cx);
            if let Some(slot) = self.table.get_mut(&entry.key) {
                slot.used = slot.used.saturating_sub(1);
            }
            self.coverage.insert("put");
        }
        cx.op_end("put", "Done");
        DemoOutcome::Done
    }

    fn shrink(&mut self, task: usize, count: u8) -> DemoOutcome {
        let cx = &self.tasks[task];
        cx.op_begin("shrink", format!("count {count}"));
        // With the fix, the same order as every other path; without it, the LRU lock first.
        let (outer, inner) = if self.config.has(FIX_LRU_LOCK_ORDER) {
            let cache_guard = self.cache_lock.lock(cx);
            (cache_guard, self.lru_lock.lock(cx))
        } else {
            let lru_guard = self.lru_lock.lock(cx);
            (lru_guard, self.cache_lock.lock(cx))
        };
        let mut freed = 0u32;
        let mut position = 0;
        while position < self.lru.len() && freed < u32::from(count) {
            let key = self.lru[position];
            let used = self.table.get(&key).map_or(0, |slot| slot.used);
            if used > 0 && self.config.has(FIX_SHRINK_SKIPS_USED) {
                self.coverage.insert("shrink-skipped-used");
                position += 1;
                continue;
            }
            self.lru.remove(position);
            if let Some(slot) = self.table.remove(&key) {
                let _ = self.objects.free(cx, slot.handle);
                cx.note(format!("shrink frees key {key} (used {used})"));
                freed += 1;
                self.coverage.insert("shrink-freed");
            }
        }
        drop(inner);
        drop(outer);
        let outcome = DemoOutcome::Freed(freed);
        cx.op_end("shrink", format!("{outcome:?}"));
        outcome
    }
}

impl Subject for Demo {
    const NAME: &'static str = "demo";
    type Config = DemoConfig;
    type Op = DemoOp;
    type Outcome = DemoOutcome;
    type Reference = DemoModel;

    fn new(sim: &Sim, config: &DemoConfig) -> Demo {
        let tasks_count = config.tasks.max(1);
        let tasks = (0..tasks_count)
            .map(|t| sim.cx(&format!("task-{}", char::from(b'A' + t % 26)), u32::from(t) % sim.cpus()))
            .collect();
        Demo {
            config: config.clone(),
            objects: KmemCache::new("demo_entry", 32),
            cache_lock: SpinLock::new("demo_cache_lock", ()),
            table: BTreeMap::new(),
            lru_lock: SpinLock::new("demo_lru_lock", ()),
            lru: Vec::new(),
            tasks,
            held: vec![Vec::new(); usize::from(tasks_count)],
            coverage: BTreeSet::new(),
        }
    }

    fn op_strategy(config: &DemoConfig) -> BoxedStrategy<DemoOp> {
        let keys = config.keys.max(1);
        let tasks = config.tasks.max(1);
        prop_oneof![
            (0..tasks, 0..keys).prop_map(|(task, key)| DemoOp::Insert { task, key }),
            (0..tasks, 0..keys).prop_map(|(task, key)| DemoOp::Get { task, key }),
            (0..tasks, any::<u8>()).prop_map(|(task, index)| DemoOp::Put { task, index }),
            (0..tasks, 1..=SHRINK_BATCH_MAX).prop_map(|(task, count)| DemoOp::Shrink { task, count }),
        ]
        .boxed()
    }

    fn apply(&mut self, _sim: &Sim, op: &DemoOp) -> DemoOutcome {
        match *op {
            DemoOp::Insert { task, key } => self.insert(self.task(task), key),
            DemoOp::Get { task, key } => self.get(self.task(task), key),
            DemoOp::Put { task, index } => self.put(self.task(task), index),
            DemoOp::Shrink { task, count } => self.shrink(self.task(task), count),
        }
    }

    fn check_invariants(&self, _sim: &Sim) -> Result<(), Violation> {
        let lru_keys: BTreeSet<u8> = self.lru.iter().copied().collect();
        let table_keys: BTreeSet<u8> = self.table.keys().copied().collect();
        if lru_keys.len() != self.lru.len() || lru_keys != table_keys {
            return Err(Violation::new(
                "invariant",
                format!("the LRU {:?} and the table {table_keys:?} hold different entries", self.lru),
            ));
        }
        if self.objects.live() != self.table.len() as u64 {
            return Err(Violation::new(
                "invariant",
                format!("{} live objects for {} table entries", self.objects.live(), self.table.len()),
            ));
        }
        for (key, slot) in &self.table {
            let held = self.held.iter().flatten().filter(|(k, _)| k == key).count() as u32;
            if slot.used != held {
                return Err(Violation::new(
                    "invariant",
                    format!("key {key}: used {} but {held} handles are held", slot.used),
                ));
            }
        }
        Ok(())
    }

    fn teardown(mut self, _sim: &Sim) -> Result<(), Violation> {
        for task in 0..self.tasks.len() {
            while !self.held[task].is_empty() {
                self.put(task, 0);
            }
        }
        let cx = &self.tasks[0];
        self.lru.clear();
        for slot in std::mem::take(&mut self.table).into_values() {
            let _ = self.objects.free(cx, slot.handle);
        }
        self.objects.destroy(cx)
    }

    fn coverage(&self) -> BTreeSet<&'static str> {
        self.coverage.clone()
    }
}

/// The reference model: which keys exist, in LRU order, with their use counts, and which keys each
/// task holds. It always behaves as the fixed cache does.
#[derive(Debug)]
pub struct DemoModel {
    lru: Vec<(u8, u32)>,
    held: Vec<Vec<u8>>,
}

impl Reference for DemoModel {
    type Config = DemoConfig;
    type Op = DemoOp;
    type Outcome = DemoOutcome;

    fn new(config: &DemoConfig) -> DemoModel {
        DemoModel { lru: Vec::new(), held: vec![Vec::new(); usize::from(config.tasks.max(1))] }
    }

    fn check(&mut self, op: &DemoOp, actual: &DemoOutcome) -> Result<(), String> {
        let tasks = self.held.len();
        let expect = match *op {
            DemoOp::Insert { key, .. } => {
                if self.lru.iter().any(|&(k, _)| k == key) {
                    DemoOutcome::Failed(Errno::EEXIST)
                } else if matches!(actual, DemoOutcome::Failed(errno) if *errno == Errno::ENOMEM) {
                    DemoOutcome::Failed(Errno::ENOMEM)
                } else {
                    self.lru.push((key, 0));
                    DemoOutcome::Done
                }
            }
            DemoOp::Get { task, key } => match self.lru.iter().position(|&(k, _)| k == key) {
                None => DemoOutcome::Failed(Errno::ENOENT),
                Some(position) => {
                    let (k, used) = self.lru.remove(position);
                    self.lru.push((k, used + 1));
                    self.held[usize::from(task) % tasks].push(key);
                    DemoOutcome::Done
                }
            },
            DemoOp::Put { task, index } => {
                let held = &mut self.held[usize::from(task) % tasks];
                if held.is_empty() {
                    DemoOutcome::NoHandle
                } else {
                    let key = held.remove(usize::from(index) % held.len());
                    if let Some(entry) = self.lru.iter_mut().find(|(k, _)| *k == key) {
                        entry.1 = entry.1.saturating_sub(1);
                    }
                    DemoOutcome::Done
                }
            }
            DemoOp::Shrink { count, .. } => {
                let mut freed = 0u32;
                let mut position = 0;
                while position < self.lru.len() && freed < u32::from(count) {
                    if self.lru[position].1 > 0 {
                        position += 1;
                    } else {
                        self.lru.remove(position);
                        freed += 1;
                    }
                }
                DemoOutcome::Freed(freed)
            }
        };
        if *actual == expect {
            Ok(())
        } else {
            let in_use: Vec<(u8, u32)> = self.lru.iter().copied().filter(|&(_, used)| used > 0).collect();
            Err(format!("expected {expect:?} (entries in use, key and count: {in_use:?})"))
        }
    }
}

fn config_with(kernel: &str, fixes_off: &[String]) -> Result<DemoConfig, String> {
    let on = Fixes::<DemoFixes>::parse(Some(kernel), fixes_off)?;
    let fixes: BTreeSet<String> = on.names_on().into_iter().map(str::to_string).collect();
    Ok(DemoConfig { preset: kernel.to_string(), fixes, keys: KEYS_COUNT, tasks: TASKS_COUNT })
}

/// The demo's fix table, as a type.
#[derive(Debug)]
pub(crate) struct DemoFixes;

impl FixTableOf for DemoFixes {
    /// The demo pretends to be a subsystem whose two fixes landed in 6.1, so that `--kernel 6.0`
    /// and `--kernel 6.1` mean something; nothing here is upstream.
    const TABLE: &'static FixTable = &FixTable {
        subsystem: "demo",
        oldest: KernelVersion::new(6, 0, 0),
        newest: KernelVersion::new(6, 1, 0),
        fixes: &[
            Fix {
                name: FIX_SHRINK_SKIPS_USED,
                title: "demo: shrinker skips entries in use (teaching example, not an upstream commit)",
                commit: Commit::Unverified,
                landed_in: KernelVersion::new(6, 1, 0),
                cve: None,
                symptom: "the shrinker frees an entry a task still holds; its put is a use after free",
            },
            Fix {
                name: FIX_LRU_LOCK_ORDER,
                title: "demo: shrinker takes demo_cache_lock before demo_lru_lock (teaching example)",
                commit: Commit::Unverified,
                landed_in: KernelVersion::new(6, 1, 0),
                cve: None,
                symptom: "insert and shrink take the two locks in opposite orders: an ABBA deadlock",
            },
        ],
        presets: &[
            NamedPreset {
                name: PRESET_OLD,
                version: KernelVersion::new(6, 0, 0),
                description: "the demo cache before its fixes: both bugs present",
            },
            NamedPreset {
                name: PRESET_NEW,
                version: KernelVersion::new(6, 1, 0),
                description: "the demo cache with both fixes (the default)",
            },
        ],
    };
}

/// Runs `script` (task index, operation) in a fresh `Sim` that keeps its whole trace.
fn scripted(fixes_off: &[String], script: &[DemoOp]) -> Sim {
    let config = config_with(PRESET_NEW, fixes_off).expect("the demo's own fixes exist");
    let sim = Sim::new(SimConfig::new(1).lockdep(ReportMode::Collect).trace(TraceMode::Full));
    let mut demo = Demo::new(&sim, &config);
    for op in script {
        demo.apply(&sim, op);
        if !sim.violations().is_empty() {
            return sim;
        }
    }
    let _ = demo.teardown(&sim);
    sim
}

impl Catalog for Demo {
    fn fix_table() -> &'static FixTable {
        DemoFixes::TABLE
    }

    fn config(preset: Option<&str>, fixes_off: &[String]) -> Result<DemoConfig, String> {
        config_with(preset.unwrap_or(PRESET_NEW), fixes_off)
    }

    fn zoo() -> Vec<ZooEntry> {
        vec![
            ZooEntry {
                name: "demo use after shrink",
                kernel: PRESET_NEW,
                fix: FIX_SHRINK_SKIPS_USED,
                checker: "op-sim",
                expected: vec!["mismatch".into()],
                ops_max: 40,
                cases_max: 300,
            },
            ZooEntry {
                name: "demo ABBA between cache and LRU locks",
                kernel: PRESET_NEW,
                fix: FIX_LRU_LOCK_ORDER,
                checker: "lockdep",
                expected: vec!["lockdep:circular-locking".into()],
                ops_max: 40,
                cases_max: 300,
            },
        ]
    }

    fn scenarios() -> Vec<ScenarioInfo> {
        vec![
            ScenarioInfo {
                name: "shrink-skips-used",
                description: "task-A holds key 1 while task-B shrinks: the shrinker skips it, then frees it after the put",
            },
            ScenarioInfo {
                name: "use-after-shrink",
                description: "the same steps with shrink-skips-used off: the shrinker frees key 1 under task-A, whose put is a use after free",
            },
            ScenarioInfo {
                name: "lru-lock-inversion",
                description: "insert takes cache then LRU lock; with lru-lock-order off, shrink takes them the other way: lockdep's circular-locking report",
            },
        ]
    }

    fn run_scenario(name: &str) -> Option<Sim> {
        let hold_and_shrink = [
            DemoOp::Insert { task: 0, key: 1 },
            DemoOp::Insert { task: 0, key: 2 },
            DemoOp::Get { task: 0, key: 1 },
            DemoOp::Shrink { task: 1, count: 2 },
            DemoOp::Put { task: 0, index: 0 },
            DemoOp::Shrink { task: 1, count: 2 },
        ];
        match name {
            "shrink-skips-used" => Some(scripted(&[], &hold_and_shrink)),
            "use-after-shrink" => Some(scripted(&[FIX_SHRINK_SKIPS_USED.to_string()], &hold_and_shrink)),
            "lru-lock-inversion" => Some(scripted(
                &[FIX_LRU_LOCK_ORDER.to_string()],
                &[DemoOp::Insert { task: 0, key: 1 }, DemoOp::Shrink { task: 1, count: 1 }],
            )),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sim_core::check::{assert_cases_pass, find_failure};

    fn config(fixes_off: &[&str]) -> DemoConfig {
        let off: Vec<String> = fixes_off.iter().map(|f| f.to_string()).collect();
        Demo::config(None, &off).expect("demo config")
    }

    #[test]
    fn fixed_demo_passes_and_reaches_its_interesting_states() {
        let marks = assert_cases_pass::<Demo>(&config(&[]), 0, 200, 40);
        for mark in ["shrink-freed", "shrink-skipped-used", "insert-exists", "get-missing", "put"] {
            assert!(marks.contains(mark), "coverage mark {mark} never reached: {marks:?}");
        }
    }

    #[test]
    fn every_zoo_bug_is_found_with_its_kind_and_the_fix_keeps_it_quiet() {
        for entry in Demo::zoo() {
            let failure = find_failure::<Demo>(&config(&[entry.fix]), 0, entry.cases_max, entry.ops_max)
                .unwrap_or_else(|| panic!("{} not found in {} cases", entry.name, entry.cases_max));
            assert!(entry.accepts(&failure.artifact.violation.kind), "{}", entry.name);
            assert!(find_failure::<Demo>(&config(&[]), 0, entry.cases_max, entry.ops_max).is_none());
        }
    }

    #[test]
    fn use_after_shrink_scenario_reports_the_use_after_free_and_the_fixed_one_is_clean() {
        let buggy = Demo::run_scenario("use-after-shrink").expect("scenario");
        let kinds: Vec<String> = buggy.violations().into_iter().map(|v| v.kind.to_string()).collect();
        assert_eq!(kinds, vec!["use-after-free".to_string()]);
        let fixed = Demo::run_scenario("shrink-skips-used").expect("scenario");
        assert!(fixed.violations().is_empty(), "{:?}", fixed.violations());
        let inversion = Demo::run_scenario("lru-lock-inversion").expect("scenario");
        assert_eq!(inversion.violations()[0].kind, "lockdep:circular-locking");
    }

    #[test]
    fn unknown_preset_and_fix_names_list_the_valid_ones() {
        let error = Demo::config(Some("demo-9"), &[]).expect_err("unknown preset");
        assert!(error.contains("demo-1.0, demo-2.0"), "{error}");
        let error = Demo::config(None, &["nope".to_string()]).expect_err("unknown fix");
        assert!(error.contains(FIX_SHRINK_SKIPS_USED), "{error}");
    }
}
