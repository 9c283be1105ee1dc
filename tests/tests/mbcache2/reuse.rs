//! mbcache2's entries on a `SharedArena` that reuses freed slots: a churn of creates and deletes
//! (far more allocations than the quarantine holds, so most reuse a slot) reports nothing and
//! leaks nothing, and a handle kept past its entry's free is still caught as a use after free
//! once another entry lives in its slot, without touching that entry.

use mbcache_sim::{Mbcache2FixSet, Mbcache2World};
use sim_core::lockdep::ReportMode;
use sim_core::mm::SHARED_QUARANTINE;
use sim_core::{Sim, SimConfig};

fn sim() -> Sim {
    Sim::new(SimConfig::new(0).lockdep(ReportMode::Collect))
}

fn kinds(sim: &Sim) -> Vec<String> {
    sim.violations().iter().map(|v| v.kind.to_string()).collect()
}

#[test]
fn a_stale_entry_handle_is_caught_after_its_slot_holds_a_new_entry() {
    let sim = sim();
    let cx = sim.cx("ext4", 0);
    let world = Mbcache2World::new(&cx, Mbcache2FixSet::all(), 4, 1, 2);
    world.create(&cx, 7, 70, true).expect("create");
    let stale = world.get(&cx, 7, 70).expect("hashed");
    assert!(!world.put(&cx, stale), "the cache still holds the entry");
    assert!(world.delete(&cx, 7, 70), "nobody holds it: deleted and freed");
    // Fill the quarantine behind the freed slot, so that the next create reuses it.
    for key in 0..SHARED_QUARANTINE as u32 - 1 {
        world.create(&cx, 100 + key, u64::from(key), true).expect("create");
        assert!(world.delete(&cx, 100 + key, u64::from(key)), "key {key}");
    }
    world.create(&cx, 9, 90, true).expect("create in the reused slot");
    assert!(kinds(&sim).is_empty(), "{:?}", sim.violations());
    assert!(!world.put(&cx, stale), "a stale handle frees nothing");
    assert_eq!(kinds(&sim), ["use-after-free"], "replay: this test (seed 0, no randomness)");
    let held = world.get(&cx, 9, 90).expect("the new entry is intact and hashed");
    assert!(!world.put(&cx, held));
    assert!(world.delete(&cx, 9, 90), "its count was the cache's alone: the stale put took nothing");
    assert_eq!(world.entries_live(), 0);
    world.destroy(&cx).expect("no entry leaked");
}

#[test]
fn a_long_churn_recycles_entry_slots_without_a_report_or_a_leak() {
    let sim = sim();
    let cx = sim.cx("ext4", 0);
    let world = Mbcache2World::new(&cx, Mbcache2FixSet::all(), 6, 1, 2);
    for round in 0..5_000u32 {
        world.create(&cx, round, u64::from(round), true).expect("create");
        if round >= 50 {
            let old = round - 50;
            assert!(world.delete(&cx, old, u64::from(old)), "round {round}");
        }
        assert!(world.entries_live() <= 51, "round {round}: {} live", world.entries_live());
    }
    assert!(sim.violations().is_empty(), "{:?}", sim.violations());
    assert_eq!(world.entries_live(), 50);
    for old in 4_950..5_000u32 {
        assert!(world.delete(&cx, old, u64::from(old)));
    }
    world.destroy(&cx).expect("no entry leaked");
}
