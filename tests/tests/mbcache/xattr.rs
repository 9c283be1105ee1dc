//! The ext2/ext3 xattr-sharing workload in the one-thread simulation: many inodes interleaved
//! step by step by the `Sim`'s RNG, few keys, walks, and blocks freed while others look them up.

use mbcache_sim::Fixes;
use mbcache_sim::{FreeOp, MbError, Registry, Waits};
use mbcache_sim::{ENTRY_HEADER_SIZE, ENTRY_INDEX_SIZE};
use sim_core::lockdep::ReportMode;
use sim_core::sync::atomic::AtomicU64;
use sim_core::{Sim, SimConfig};

use super::workload::{Fs, Stats, Task};

const INODES: usize = 64;
const STEPS_PER_INODE: u32 = 40;

fn run(fixes: Fixes, seed: u64) -> (Sim, Stats, Option<MbError>) {
    let sim = Sim::new(SimConfig::new(seed).cpus(4).lockdep(ReportMode::Collect));
    let registry = Registry::new(&sim, fixes, Waits::WouldBlock);
    let setup = sim.cx("mount", 0);
    let free_op = Some(FreeOp { fails_without_fs: true });
    let cache = registry
        .create(&setup, "ext3_xattr", free_op, ENTRY_HEADER_SIZE + ENTRY_INDEX_SIZE, 1, 3)
        .expect("create");
    let next_block = AtomicU64::new(0);
    let fs = Fs { registry: &registry, cache, next_block: &next_block };
    let cxs: Vec<_> = (0..INODES).map(|i| sim.cx(&format!("inode{i}"), (i % 4) as u32)).collect();
    let mut tasks: Vec<Task> =
        (0..INODES).map(|i| Task::new(seed ^ (i as u64 + 1), STEPS_PER_INODE)).collect();
    let mut stats = Stats::default();
    let mut steps = 0u64;
    while tasks.iter().any(Task::running) {
        let running: Vec<usize> = (0..INODES).filter(|i| tasks[*i].running()).collect();
        let at = *sim.choose(&running).expect("a task is running");
        match tasks[at].step(&fs, &cxs[at], &mut stats) {
            Ok(()) | Err(MbError::WouldBlock) => {}
            Err(found) => {
                stats.oopses += 1;
                return (sim, stats, Some(found));
            }
        }
        steps += 1;
        if steps.is_multiple_of(64) {
            registry.check_invariants(&setup).unwrap_or_else(|v| panic!("seed {seed} step {steps}: {v}"));
        }
        assert!(steps < 1_000_000, "seed {seed}: the workload does not finish (a task blocked forever?)");
    }
    registry.check_invariants(&setup).unwrap_or_else(|v| panic!("seed {seed} at the end: {v}"));
    let destroyed = registry.destroy(&setup, cache).expect("destroy");
    assert_eq!(destroyed.orphans, 0, "seed {seed}: orphans with every handle released");
    (sim, stats, None)
}

#[test]
fn fixed_mbcache_shares_xattr_blocks_among_many_inodes_without_violations() {
    let mut total = Stats::default();
    for seed in 0..4 {
        let (sim, stats, found) = run(Fixes::all(), seed);
        assert!(found.is_none(), "seed {seed}: {found:?} (replay: this test, seed {seed})");
        assert!(sim.violations().is_empty(), "seed {seed}: {:?}", sim.violations());
        total.shared += stats.shared;
        total.walked_on += stats.walked_on;
        total.created += stats.created;
        total.freed += stats.freed;
        total.blocked += stats.blocked;
    }
    assert!(total.shared > 0 && total.walked_on > 0 && total.freed > 0, "{total:?}");
    assert!(total.blocked > 0, "no lookup ever met a busy entry: {total:?}");
}

#[test]
fn seed_mbcache_oopses_when_a_block_is_freed_during_a_walk() {
    let found = (0..20).find_map(|seed| {
        let (sim, _, found) = run(Fixes::none(), seed);
        found.map(|found| (seed, found, sim.violations()))
    });
    let (seed, found, violations) = found.expect("20 seeds of the seed kernel never oopsed");
    assert!(
        matches!(found, MbError::Oops(ref v) if v.kind == "list-poison" || v.kind == "wild-pointer"),
        "seed {seed}: {found:?}"
    );
    assert_eq!(violations[0].kind, "list-poison", "seed {seed}: {violations:?}");
}
