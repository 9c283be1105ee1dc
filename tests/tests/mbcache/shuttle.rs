//! Shuttle runs of the xattr-sharing workload: one thread per inode task (4 and more), random
//! schedules from a printed seed; a failure prints shuttle's schedule string for `shuttle::replay`.

use std::sync::atomic::{AtomicBool, Ordering as StdOrdering};

use mbcache_sim::Fixes;
use mbcache_sim::{FreeOp, MbError, Registry, Waits};
use mbcache_sim::{ENTRY_HEADER_SIZE, ENTRY_INDEX_SIZE};
use sim_core::lockdep::ReportMode;
use sim_core::sync::atomic::AtomicU64;
use sim_core::sync::{thread, Arc};
use sim_core::{Sim, SimConfig};

use super::workload::{Fs, Stats, Task};

const THREADS: u64 = 4;
const STEPS_PER_THREAD: u32 = 12;
const SHUTTLE_SEED: u64 = 0x006d_6263_6163_6865;
const ITERATIONS: usize = 1000;

/// Runs the workload once under shuttle; returns the violations found.
fn workload(fixes: Fixes) -> Vec<sim_core::Violation> {
    let sim = Sim::new(SimConfig::new(1).cpus(4).lockdep(ReportMode::Collect));
    let registry = Arc::new(Registry::new(&sim, fixes, Waits::Sleep));
    let setup = sim.cx("mount", 0);
    let cache = registry
        .create(
            &setup,
            "ext2_xattr",
            Some(FreeOp { fails_without_fs: true }),
            ENTRY_HEADER_SIZE + ENTRY_INDEX_SIZE,
            1,
            1,
        )
        .expect("create");
    let next_block = Arc::new(AtomicU64::new(0));
    let workers: Vec<_> = (0..THREADS)
        .map(|task| {
            let registry = registry.clone();
            let next_block = next_block.clone();
            let cx = sim.cx(&format!("inode{task}"), (task % 4) as u32);
            thread::spawn(move || {
                let fs = Fs { registry: &registry, cache, next_block: &next_block };
                let mut stats = Stats::default();
                let mut inode = Task::new(task + 1, STEPS_PER_THREAD);
                while inode.running() {
                    match inode.step(&fs, &cx, &mut stats) {
                        Ok(()) => {}
                        Err(MbError::WouldBlock) => unreachable!("threads sleep instead"),
                        Err(_) => return,
                    }
                }
            })
        })
        .collect();
    for worker in workers {
        worker.join().expect("worker");
    }
    let violations = sim.violations();
    if violations.is_empty() {
        registry.check_invariants(&setup).unwrap_or_else(|v| panic!("after the threads joined: {v}"));
        let destroyed = registry.destroy(&setup, cache).expect("destroy");
        assert_eq!(destroyed.orphans, 0);
    }
    violations
}

#[test]
fn fixed_mbcache_survives_four_threads_sharing_xattr_blocks() {
    println!("shuttle seed {SHUTTLE_SEED:#x}, {ITERATIONS} iterations (replay: the printed schedule)");
    shuttle::check_random_with_seed(
        || {
            let violations = workload(Fixes::all());
            assert!(violations.is_empty(), "{violations:?}");
        },
        SHUTTLE_SEED,
        ITERATIONS,
    );
}

#[test]
fn seed_mbcache_oopses_under_four_threads_sharing_xattr_blocks() {
    println!("shuttle seed {SHUTTLE_SEED:#x}, {ITERATIONS} iterations");
    let found = std::sync::Arc::new(AtomicBool::new(false));
    let found_in = found.clone();
    shuttle::check_random_with_seed(
        move || {
            let violations = workload(Fixes::none());
            if violations.iter().any(|v| v.kind == "list-poison" || v.kind == "wild-pointer") {
                found_in.store(true, StdOrdering::Relaxed);
            }
        },
        SHUTTLE_SEED,
        ITERATIONS,
    );
    assert!(
        found.load(StdOrdering::Relaxed),
        "no schedule of the seed kernel oopsed in {ITERATIONS} iterations"
    );
}
