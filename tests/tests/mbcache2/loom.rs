//! The zoo's loom column for mbcache2, from the ordinary test build: the entry-flags row's loom
//! model (ext4 clearing `e_reusable` while another task's `mb_cache_entry_touch()` sets
//! `e_referenced`), every interleaving under a preemption bound of 2, run by
//! `sim_core::loom_runner` as `ksim zoo` runs it; and `mb_cache_entry_wait_unused()` against the
//! put that makes the waiter the last user, with and without the waiter's barrier. Run with
//! `cargo test -p ksim-tests --test main -- mbcache2::loom`.

use mbcache_sim::{Mbcache2FixSet, Mbcache2Subject, Mbcache2World, ZOO_LOST_FLAG};
use sim_core::check::Catalog;
use sim_core::lockdep::ReportMode;
use sim_core::loom_runner::{self, loom_data_race, LoomCatalog};
use sim_core::sync::{thread, Arc};
use sim_core::{Sim, SimConfig, ViolationKind};

#[test]
fn the_loom_column_finds_the_shared_bitfield_word_and_passes_the_atomic_flags() {
    let row = Mbcache2Subject::zoo().into_iter().find(|row| row.name == ZOO_LOST_FLAG).expect("the row");
    let outcome =
        loom_runner::hunt::<Mbcache2Subject>(&row).expect("the row's kernel and fix").expect("a model");
    assert_eq!(outcome.preemption_bound, 2);
    let finding = outcome.buggy.finding.as_ref().expect("loom must find the racing bitfield writes");
    assert!(
        finding.kind == loom_data_race() || finding.kind == ViolationKind::lockdep("lockset-race"),
        "found as {}: {}",
        finding.kind,
        finding.message
    );
    assert!(outcome.found(), "{} is not an expected kind", finding.kind);
    println!("{outcome}");
    assert!(outcome.fixed_quiet(), "{outcome}");
    // A pass is a proof only if loom explored more than the one sequential order.
    assert!(outcome.fixed.executions > 1, "{} interleavings", outcome.fixed.executions);
}

#[test]
fn rows_without_a_loom_model_name_none() {
    let others = Mbcache2Subject::zoo().into_iter().filter(|row| row.name != ZOO_LOST_FLAG);
    for row in others {
        assert!(Mbcache2Subject::loom_scenario(&row).is_none(), "{}", row.name);
    }
}

/// `mb_cache_entry_wait_unused()` against another user's `mb_cache_entry_put()` (6.0 on: the
/// cache's reference and the two users'): the waiter puts itself on the queue's list
/// (`refcnt_waiters`), passes `set_current_state()`'s full barrier and tests `e_refcnt`; the put
/// drops the count, passes the fully ordered `atomic_dec_return()`'s barrier and reads
/// `waitqueue_active()`, waking the queue only when somebody is on it. With both barriers no
/// interleaving leaves the waiter asleep; loom reports a waiter nobody wakes as a deadlock.
/// `woken`, when given, counts the interleavings whose waiter found the entry in use once queued
/// and was woken by the put (the coverage mark `wait-unused-woken`).
fn wait_unused_against_a_put(
    wait_barrier: bool,
    woken: Option<&'static std::sync::atomic::AtomicUsize>,
) -> impl Fn() + Send + Sync + 'static {
    move || {
        let sim = Sim::new(SimConfig::new(0).cpus(2).lockdep(ReportMode::Collect));
        let setup = sim.cx("setup", 0);
        let mut world = Mbcache2World::new(&setup, Mbcache2FixSet::all(), 1, 4, 3);
        world.set_wait_barrier(wait_barrier);
        world.create(&setup, 7, 1, true).expect("the first entry fits an empty cache");
        let mine = world.get(&setup, 7, 1).expect("hashed");
        let theirs = world.get(&setup, 7, 1).expect("hashed");
        let world = Arc::new(world);
        let putter = {
            let world = world.clone();
            let cx = sim.cx("putter", 1);
            thread::spawn(move || world.put(&cx, theirs))
        };
        world.wait_unused(&sim.cx("waiter", 0), mine);
        if let Some(woken) = woken.filter(|_| sim.marks().contains("wait-unused-woken")) {
            woken.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
        assert!(!putter.join().expect("the putter does not panic"), "the cache still holds the entry");
        assert!(!world.put(&setup, mine), "the cache's reference stays");
    }
}

#[test]
fn wait_unused_never_misses_the_last_users_put_with_both_barriers() {
    static WOKEN: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let exploration = loom_runner::explore(Some(3), wait_unused_against_a_put(true, Some(&WOKEN)));
    println!("{exploration}");
    assert!(exploration.passed(), "replay: this test; {exploration}");
    assert!(exploration.executions > 1, "{} interleavings", exploration.executions);
    // The property is about the waiter that found the entry in use: some interleaving must
    // queue it before the put and have the put's wake-up end its wait.
    let woken = WOKEN.load(std::sync::atomic::Ordering::Relaxed);
    assert!(woken > 0, "replay: this test; no interleaving of {exploration} woke a queued waiter");
}

#[test]
fn without_the_waiters_barrier_loom_finds_the_lost_wake_up() {
    // No count here: loom stops at the first failing interleaving, so how many it woke before
    // that says nothing about the property.
    let exploration = loom_runner::explore(Some(3), wait_unused_against_a_put(false, None));
    println!("{exploration}");
    let failure = exploration.failure.as_deref().expect("loom must find the waiter nobody wakes");
    assert!(failure.contains("deadlock"), "replay: this test; found as: {failure}");
}
