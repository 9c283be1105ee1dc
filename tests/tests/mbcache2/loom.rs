//! Loom models of mbcache2's entry flags: ext4 clearing `e_reusable` (the block reached its
//! maximum) while another task's `mb_cache_entry_touch()` sets `e_referenced`, every
//! interleaving under a preemption bound of 2. Run with
//! `RUSTFLAGS="--cfg loom" cargo test -p ksim-tests --release --target-dir target/loom -- mbcache2::`.

use std::panic::{catch_unwind, AssertUnwindSafe};

use mbcache_sim::{Mbcache2FixSet, Mbcache2World, ATOMIC_ENTRY_FLAGS, PRESET_7_1};
use sim_core::lockdep::ReportMode;
use sim_core::sync::{thread, Arc};
use sim_core::{Sim, SimConfig};

/// The preemption bound every model here states.
const PREEMPTION_BOUND: usize = 2;

fn builder() -> loom::model::Builder {
    let mut builder = loom::model::Builder::new();
    builder.preemption_bound = Some(PREEMPTION_BOUND);
    builder
}

fn panic_text(payload: Box<dyn std::any::Any + Send>) -> String {
    payload
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_default()
}

/// A reusable entry, held by the main thread; a second thread touches it while the main thread
/// clears its reusable bit; afterwards it must be referenced and not reusable.
fn touch_races_clear_reusable(fixes: Mbcache2FixSet) {
    let sim = Sim::new(SimConfig::new(0).cpus(2).lockdep(ReportMode::Collect));
    let setup = sim.cx("setup", 0);
    let world = Arc::new(Mbcache2World::new(&setup, fixes, 1, 4, 3));
    world.create(&setup, 7, 1, true).expect("create");
    let entry = world.get(&setup, 7, 1).expect("hashed");
    let toucher = {
        let world = world.clone();
        let cx = sim.cx("reuser", 1);
        thread::spawn(move || world.touch(&cx, entry))
    };
    let ext4 = sim.cx("ext4-full", 0);
    world.set_reusable(&ext4, entry, false);
    toucher.join().expect("toucher");
    let (referenced, reusable) = world.flags(&setup, entry);
    assert!(referenced && !reusable, "lost update: referenced {referenced}, reusable {reusable}");
    world.put(&setup, entry);
}

#[test]
fn atomic_entry_flags_keep_both_updates_in_every_interleaving() {
    builder()
        .check(|| touch_races_clear_reusable(Mbcache2FixSet::parse(Some(PRESET_7_1), &[]).expect("7.1")));
}

#[test]
fn the_shared_bitfield_word_is_an_unordered_read_modify_write_loom_reports() {
    let fixes = Mbcache2FixSet::parse(Some(PRESET_7_1), &[]).expect("7.1").without(ATOMIC_ENTRY_FLAGS);
    let result =
        catch_unwind(AssertUnwindSafe(|| builder().check(move || touch_races_clear_reusable(fixes))));
    let text = panic_text(result.expect_err("loom must find the racing bitfield writes"));
    assert!(text.contains("Causality violation") || text.contains("lost update"), "{text}");
}
