//! demo levels: the teaching cache's ABBA between `demo_cache_lock` and `demo_lru_lock` (fix
//! `lru-lock-order` off: the shrinker takes them in the opposite order to insert). The first
//! level a learner meets: two tasks, two locks, one cycle. The tasks run the demo's operations
//! through its threaded-campaign adapter, the same entry points a threaded campaign runs.

use std::sync::Arc;

use demo_sim::{DemoSubject, Op};
use sim_core::check::Catalog;
use sim_core::threaded::ThreadedSubject;

use super::super::level::{Level, TaskInfo, Win};
use super::super::runtime::{spawn_tasks, Control, TaskBody};
use super::taskstats::level_sim;

/// The demo levels, easiest first.
pub(crate) fn levels() -> Vec<Level> {
    let abba = Level {
        name: "demo-1",
        subsystem: "demo",
        title: "two locks, two orders",
        zoo: "lru-lock-order",
        fix_on: false,
        kernel: "demo-2.0",
        goal: "deadlock the insert against the shrinker",
        invariant:
            "every path takes demo_cache_lock before demo_lru_lock, so no two tasks wait for each other",
        hint: "let the insert take demo_cache_lock, then let the shrinker take demo_lru_lock; now each \
               wants the lock the other holds",
        tasks: &TASKS,
        win: Win::Deadlock,
        setup: abba,
        solution: &[(0, "lock(demo_cache_lock)"), (1, "lock(demo_lru_lock)"), (0, ""), (1, "")],
    };
    vec![
        abba,
        Level {
            name: "demo-2",
            title: "convince yourself: one lock order",
            fix_on: true,
            goal: "try to deadlock the insert against the shrinker: every schedule keeps the invariant",
            hint: "the shrinker now takes demo_cache_lock first, as insert does: whoever has it gets both",
            win: Win::Holds,
            solution: &[(0, "lock(demo_cache_lock)"), (1, ""), (0, ""), (1, "")],
            ..abba
        },
    ]
}

const TASKS: [TaskInfo; 2] = [
    TaskInfo { name: "insert key 2", entry: "demo insert" },
    TaskInfo { name: "shrinker", entry: "demo shrink_scan" },
];

/// Key 1 cached; one task inserts key 2 while the shrinker scans.
fn abba(control: &Arc<Control>, fix_on: bool) {
    let prefix = [Op::Insert { task: 0, key: 1 }];
    let threads = vec![vec![Op::Insert { task: 0, key: 2 }], vec![Op::Shrink { task: 1, count: 1 }]];
    ops_level::<DemoSubject>(control, "demo-2.0", "lru-lock-order", fix_on, &prefix, threads);
}

/// A level whose tasks each run a list of the subsystem's operations through its threaded
/// adapter (`ThreadedSubject::apply_shared`), after `prefix` run by the set-up; the invariants
/// are checked and the model torn down when every task has returned.
fn ops_level<S>(
    control: &Arc<Control>,
    kernel: &str,
    fix: &str,
    fix_on: bool,
    prefix: &[S::Op],
    threads: Vec<Vec<S::Op>>,
) where
    S: ThreadedSubject + Catalog,
    S::Op: Send + 'static,
{
    let sim = level_sim(2);
    control.publish(&sim);
    let off = if fix_on { vec![] } else { vec![fix.to_string()] };
    let config = S::config(Some(kernel), &off).expect("the level's kernel is a preset");
    let config = S::threaded_config(&config, threads.len());
    let shared = Arc::new(S::share(&sim, &config));
    let setup = sim.cx("set-up", 0);
    for op in prefix {
        S::apply_shared(&shared, &setup, op);
    }
    let tasks = threads
        .into_iter()
        .enumerate()
        .map(|(thread, ops)| {
            let (shared, sim) = (shared.clone(), sim.clone());
            let body = move || {
                let cx = sim.cx(&format!("task{}", thread + 1), thread as u32 % 2);
                for op in ops {
                    S::apply_shared(&shared, &cx, &S::on_thread(op, thread));
                }
            };
            TaskBody { daemon: false, body: Box::new(body) }
        })
        .collect();
    spawn_tasks(control, tasks, || {});
    if let Err(violation) = S::check_shared(&shared, &sim) {
        sim.report(None, violation);
    }
    if let Ok(shared) = Arc::try_unwrap(shared) {
        if let Err(violation) = S::teardown_shared(shared, &sim) {
            sim.report(None, violation);
        }
    }
}
