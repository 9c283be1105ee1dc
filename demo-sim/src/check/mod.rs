//! The demo's harness: the [`Subject`] the checkers drive, and its configuration. Kept apart from
//! the kernel modules, which never name it.
//!
//! What a newcomer puts here: `<Name>Config` (its `fixes: Fixes`, plus sizes and a fault plan:
//! everything a case needs besides the seed and the operations; it is serialised into every
//! artifact), and `<Name>Subject`, which builds the model in a `Sim` (`new`), applies one
//! [`Op`] by calling the kernel entry points with the acting task's `Cx` (`apply`), checks the
//! invariants through an observer context (`check_invariants`), and tears everything down so a
//! leak is reported (`teardown`). The subject also holds the callers' side of the world (here:
//! the handles each task holds) in plain Rust collections: checker state, never a sim-core lock or
//! atomic, so lockdep, the trace, loom and shuttle see only the kernel's code.

mod catalog;
pub(crate) mod op;
mod reference;
mod scenario;
#[cfg(feature = "threaded")]
mod threaded;

use proptest::strategy::BoxedStrategy;
use serde::{Deserialize, Serialize};
use sim_core::check::Subject;
use sim_core::fault::{FaultAttr, FaultKind, FaultPlan};
use sim_core::gen::OpGen;
use sim_core::trace::CallName;
use sim_core::{Cx, Sim, Violation, ViolationKind};

use crate::cache::{DemoCache, EntryHandle};
use crate::fixes::Fixes;
pub use op::{Op, Outcome};
pub use reference::DemoModel;

/// Keys the operations choose from (few, so operations collide).
const KEYS_COUNT: u8 = 6;
/// Tasks the operations run in (one lane each in the trace).
const TASKS_COUNT: u8 = 3;

/// The demo's configuration: the fixes on, and sizes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DemoConfig {
    /// The preset (or version) the fixes came from, as `--kernel` named it.
    pub preset: String,
    /// The fixes switched on.
    pub fixes: Fixes,
    /// Keys the operations choose from.
    pub keys: u8,
    /// Tasks the operations run in.
    pub tasks: u8,
    /// Percent chance an entry allocation fails with ENOMEM (0, the CLI's default: none).
    #[serde(default)]
    pub alloc_fault_percent: u32,
}

impl DemoConfig {
    /// The default sizes, no faults, and `fixes`.
    pub fn new(preset: &str, fixes: Fixes) -> DemoConfig {
        DemoConfig {
            preset: preset.to_string(),
            fixes,
            keys: KEYS_COUNT,
            tasks: TASKS_COUNT,
            alloc_fault_percent: 0,
        }
    }
}

/// The demo cache under test, with the tasks that call it and the handles they hold.
#[derive(Debug)]
pub struct DemoSubject {
    cache: DemoCache,
    /// One context per task: operations run in `tasks[op.task % len]`.
    tasks: Vec<Cx>,
    /// Checker state: the handles each task holds, with their keys, in the order taken.
    held: Vec<Vec<(u8, EntryHandle)>>,
    /// Reads model state for the invariant check without being traced or lockdep-checked.
    observer: Cx,
}

/// The traced calls, their names hashed at compile time: a call's trace events hash integer
/// words, and their text is built only when a trace is kept.
const INSERT: CallName = CallName::new("insert");
const GET: CallName = CallName::new("get");
const PUT: CallName = CallName::new("put");
const SHRINK: CallName = CallName::new("shrink");

impl DemoSubject {
    fn task(&self, task: u8) -> usize {
        usize::from(task) % self.tasks.len()
    }

    fn insert(&mut self, task: usize, key: u8) -> Outcome {
        let cx = &self.tasks[task];
        cx.call_begin(&INSERT, [u64::from(key)], || format!("key {key}"));
        let outcome = Outcome::from(self.cache.insert(cx, key));
        cx.call_end(&INSERT, outcome.trace_words(), || format!("{outcome:?}"));
        outcome
    }

    fn get(&mut self, task: usize, key: u8) -> Outcome {
        let cx = &self.tasks[task];
        cx.call_begin(&GET, [u64::from(key)], || format!("key {key}"));
        let outcome = match self.cache.get(cx, key) {
            Ok(handle) => {
                self.held[task].push((key, handle));
                Outcome::Done
            }
            Err(errno) => Outcome::Failed(errno),
        };
        cx.call_end(&GET, outcome.trace_words(), || format!("{outcome:?}"));
        outcome
    }

    fn put(&mut self, task: usize, index: u8) -> Outcome {
        if self.held[task].is_empty() {
            return Outcome::NoHandle;
        }
        let position = usize::from(index) % self.held[task].len();
        let (key, handle) = self.held[task].remove(position);
        let cx = &self.tasks[task];
        cx.call_begin(&PUT, [u64::from(key)], || format!("key {key}"));
        self.cache.put(cx, handle);
        cx.call_end(&PUT, Outcome::Done.trace_words(), || "Done".to_string());
        Outcome::Done
    }

    fn shrink(&mut self, task: usize, count: u8) -> Outcome {
        let cx = &self.tasks[task];
        cx.call_begin(&SHRINK, [u64::from(count)], || format!("count {count}"));
        let outcome = Outcome::Freed(self.cache.shrink_scan(cx, u32::from(count)));
        cx.call_end(&SHRINK, outcome.trace_words(), || format!("{outcome:?}"));
        outcome
    }
}

impl Subject for DemoSubject {
    const NAME: &'static str = "demo";
    type Config = DemoConfig;
    type Op = Op;
    type Outcome = Outcome;
    type Reference = DemoModel;

    fn new(sim: &Sim, config: &DemoConfig) -> DemoSubject {
        if config.alloc_fault_percent > 0 {
            sim.set_faults(FaultPlan::with(
                FaultAttr::probability(config.alloc_fault_percent).kind(FaultKind::Slab).site("demo_entry"),
            ));
        }
        let tasks_count = config.tasks.max(1);
        let tasks = (0..tasks_count)
            .map(|t| sim.cx(&format!("task-{}", char::from(b'A' + t % 26)), u32::from(t) % sim.cpus()))
            .collect();
        DemoSubject {
            cache: DemoCache::new(config.fixes),
            tasks,
            held: vec![Vec::new(); usize::from(tasks_count)],
            observer: sim.observer_cx("demo-check", 0),
        }
    }

    fn op_strategy(config: &DemoConfig) -> BoxedStrategy<Op> {
        op::strategy(config)
    }

    fn op_gen(config: &DemoConfig) -> Option<OpGen<Op>> {
        Some(op::generator(config))
    }

    fn apply(&mut self, _sim: &Sim, op: &Op) -> Outcome {
        match *op {
            Op::Insert { task, key } => self.insert(self.task(task), key),
            Op::Get { task, key } => self.get(self.task(task), key),
            Op::Put { task, index } => self.put(self.task(task), index),
            Op::Shrink { task, count } => self.shrink(self.task(task), count),
        }
    }

    /// Three invariants, each a named [`ViolationKind::invariant`]: the LRU and the table hold the
    /// same keys, each once; the slab's live objects are exactly the table's entries; an entry's
    /// use count equals the handles tasks hold on it.
    fn check_invariants(&self, _sim: &Sim) -> Result<(), Violation> {
        let held: Vec<u8> = self.held.iter().flatten().map(|&(key, _)| key).collect();
        check_state(&self.cache.state(&self.observer), &held)
    }

    /// A config from an edited artifact: at least one key and one task, and a percentage.
    fn check_config(config: &DemoConfig) -> Result<(), String> {
        if config.keys == 0 || config.tasks == 0 {
            return Err(format!("keys {} and tasks {} must be at least 1", config.keys, config.tasks));
        }
        if config.alloc_fault_percent > 100 {
            return Err(format!("alloc_fault_percent {} is more than 100", config.alloc_fault_percent));
        }
        Ok(())
    }

    /// Every task puts its handles, then the cache is destroyed: anything still live is a leak.
    fn teardown(mut self, _sim: &Sim) -> Result<(), Violation> {
        for task in 0..self.tasks.len() {
            while !self.held[task].is_empty() {
                self.put(task, 0);
            }
        }
        let DemoSubject { cache, tasks, .. } = self;
        cache.destroy(&tasks[0])
    }
}

/// Held handles up to which [`check_state`] counts each key's by a pass of its own.
const HELD_COUNTED_PER_KEY: usize = 32;

/// The three invariants over the cache's state and the keys of every handle the tasks hold (the
/// op-level subject's and the threaded adapter's one check).
fn check_state(state: &crate::cache::CacheState, held: &[u8]) -> Result<(), Violation> {
    let mut lru_keys = state.lru.clone();
    lru_keys.sort_unstable();
    lru_keys.dedup();
    let table_keys = || state.used.iter().map(|(key, _)| key);
    if lru_keys.len() != state.lru.len() || !lru_keys.iter().eq(table_keys()) {
        let table: Vec<&u8> = table_keys().collect();
        return Err(Violation::new(
            ViolationKind::invariant("demo-lru-matches-table"),
            format!("the LRU {:?} and the table {table:?} hold different entries", state.lru),
        ));
    }
    if state.live != state.used.len() as u64 {
        return Err(Violation::new(
            ViolationKind::invariant("demo-live-objects-match-table"),
            format!("{} live objects for {} table entries", state.live, state.used.len()),
        ));
    }
    // A case's tasks hold a few handles: counted per key by a pass over them. A long case's
    // hold thousands: counted for every key in one pass first, so the check is not the
    // table's size times the handles.
    let per_key = (held.len() > HELD_COUNTED_PER_KEY).then(|| {
        let mut counts = [0u32; 1 << u8::BITS];
        held.iter().for_each(|&key| counts[usize::from(key)] += 1);
        counts
    });
    for &(key, used) in &state.used {
        let held = match &per_key {
            Some(counts) => counts[usize::from(key)],
            None => held.iter().filter(|&&k| k == key).count() as u32,
        };
        if used != held {
            return Err(Violation::new(
                ViolationKind::invariant("demo-used-matches-handles"),
                format!("key {key}: used {used} but {held} handles are held"),
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixes::PRESET_NEW;
    use sim_core::{Errno, SimConfig};

    /// `check_state` judges the handles the same way whether it counts each key's by a pass of
    /// its own (a few handles) or all keys' in one pass (more than [`HELD_COUNTED_PER_KEY`]):
    /// matching counts pass, and one handle too few or too many is reported on the same key.
    #[test]
    fn the_handle_counts_are_judged_alike_with_few_and_many_handles() {
        for copies in [1u32, 3, 40] {
            let used: Vec<(u8, u32)> = [(2u8, copies), (7, 2 * copies), (200, copies)].into();
            let state = |used: &Vec<(u8, u32)>| crate::cache::CacheState {
                lru: used.iter().map(|&(key, _)| key).collect(),
                used: used.clone(),
                live: used.len() as u64,
            };
            let held: Vec<u8> =
                used.iter().flat_map(|&(key, n)| std::iter::repeat_n(key, n as usize)).collect();
            let many = held.len() > HELD_COUNTED_PER_KEY;
            assert!(check_state(&state(&used), &held).is_ok(), "{} handles", held.len());
            for (at, delta) in [(0usize, 1i64), (1, -1), (2, 1)] {
                let mut off = used.clone();
                off[at].1 = (i64::from(off[at].1) + delta) as u32;
                let message = check_state(&state(&off), &held).expect_err("a count off by one").message;
                let key = off[at].0;
                assert!(message.starts_with(&format!("key {key}: used ")), "{many}: {message}");
            }
        }
    }

    #[test]
    fn a_held_entry_survives_the_fixed_shrinker_and_the_invariants_hold_throughout() {
        let sim = Sim::new(SimConfig::new(0));
        let mut demo = DemoSubject::new(&sim, &DemoConfig::new(PRESET_NEW, Fixes::all()));
        let script = [
            (Op::Insert { task: 0, key: 1 }, Outcome::Done),
            (Op::Insert { task: 1, key: 1 }, Outcome::Failed(Errno::EEXIST)),
            (Op::Get { task: 0, key: 1 }, Outcome::Done),
            (Op::Shrink { task: 1, count: 4 }, Outcome::Freed(0)),
            (Op::Put { task: 0, index: 7 }, Outcome::Done),
            (Op::Put { task: 0, index: 0 }, Outcome::NoHandle),
            (Op::Shrink { task: 2, count: 4 }, Outcome::Freed(1)),
            (Op::Get { task: 2, key: 1 }, Outcome::Failed(Errno::ENOENT)),
        ];
        for (op, expected) in script {
            assert_eq!(demo.apply(&sim, &op), expected, "{op:?}");
            demo.check_invariants(&sim).unwrap_or_else(|v| panic!("after {op:?}: {v}"));
        }
        demo.teardown(&sim).expect("nothing leaks");
        assert!(sim.violations().is_empty(), "{:?}", sim.violations());
    }
}
