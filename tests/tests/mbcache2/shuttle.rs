//! Shuttle runs of mbcache2 with ext4's xattr sharing: random schedules from a fixed seed, where
//! the lost bitfield update really happens (the word's read and write are two steps) and the
//! reuse-vs-release race really frees a block under its finder. Each bug is found with its fix
//! off and absent with it on.

use std::panic::{catch_unwind, AssertUnwindSafe};

use mbcache_sim::{
    Mbcache2FixSet, Mbcache2World, ATOMIC_ENTRY_FLAGS, DELETE_OR_GET, PRESET_4_10, PRESET_6_0, PRESET_7_1,
};
use sim_core::lockdep::ReportMode;
use sim_core::sync::{thread, Arc};
use sim_core::{Sim, SimConfig};

const ITERATIONS: usize = 400;

/// The schedulers' seed: the same schedules on every run (shuttle's unseeded `check_random` and
/// `check_pct` draw a new seed each time, so a race found on one run could be missed on the next).
const SEED: u64 = 7;

fn newest() -> Mbcache2FixSet {
    Mbcache2FixSet::parse(Some(PRESET_7_1), &[]).expect("7.1")
}

/// `ITERATIONS` random schedules of `body` from `SEED`, then as many PCT schedules (depth 3, which reaches a
/// preemption inside a narrow window); Err with the panic text of the first that failed.
fn random_schedules(body: impl Fn() + Send + Sync + 'static) -> Result<(), String> {
    let body = Arc::new(body);
    catch_unwind(AssertUnwindSafe(|| {
        let random = body.clone();
        shuttle::check_random_with_seed(move || random(), SEED, ITERATIONS);
        let pct = body.clone();
        let scheduler = shuttle::scheduler::PctScheduler::new_from_seed(SEED, 3, ITERATIONS);
        shuttle::Runner::new(scheduler, shuttle::Config::default()).run(move || pct());
    }))
    .map_err(|payload| {
        payload
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_default()
    })
}

/// A toucher against ext4 clearing `e_reusable`: both updates must survive.
fn flags(fixes: Mbcache2FixSet) {
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
    world.set_reusable(&sim.cx("ext4-full", 0), entry, false);
    toucher.join().expect("toucher");
    let (referenced, reusable) = world.flags(&setup, entry);
    assert!(referenced && !reusable, "lost update: referenced {referenced}, reusable {reusable}");
}

/// One task finds and reuses a block while another drops the block's last reference.
fn reuse_vs_release(fixes: Mbcache2FixSet) {
    let sim = Sim::new(SimConfig::new(0).cpus(2).lockdep(ReportMode::Collect));
    let setup = sim.cx("setup", 0);
    let world = Arc::new(Mbcache2World::new(&setup, fixes, 1, 4, 3));
    let block = world.xattr_new(&setup, 5).expect("block");
    let reuser = {
        let world = world.clone();
        let cx = sim.cx("setxattr", 1);
        thread::spawn(move || {
            if let Some(entry) = world.find_first(&cx, 5) {
                world.xattr_reuse(&cx, entry);
            }
        })
    };
    world.xattr_release(&sim.cx("release", 0), block);
    reuser.join().expect("reuser");
    let violations = sim.violations();
    assert!(violations.is_empty(), "{violations:?}");
}

/// A new entry's create against a delete of the same key and block. No ext2 or ext4 caller races
/// these (a block's entry is deleted only by its last owner, and the task creating the entry owns
/// the block, as its allocator or its reader), so this is the mbcache API alone.
fn create_vs_delete(fixes: Mbcache2FixSet) {
    let sim = Sim::new(SimConfig::new(0).cpus(2).lockdep(ReportMode::Collect));
    let setup = sim.cx("setup", 0);
    let world = Arc::new(Mbcache2World::new(&setup, fixes, 1, 4, 3));
    let creator = {
        let world = world.clone();
        let cx = sim.cx("create", 1);
        thread::spawn(move || {
            let _ = world.create(&cx, 5, 1, true);
        })
    };
    world.delete(&sim.cx("delete", 0), 5, 1);
    creator.join().expect("creator");
    let violations: Vec<String> = sim.violations().iter().map(|v| format!("{:?}", v.kind)).collect();
    assert!(violations.is_empty(), "violations {violations:?}");
}

fn preset(name: &str) -> Mbcache2FixSet {
    Mbcache2FixSet::parse(Some(name), &[]).expect("preset")
}

#[test]
fn a_delete_inside_the_old_creates_window_frees_the_entry_under_its_creator() {
    // 4.6 to 5.19: hashed, bit lock dropped, then the LRU add: a delete in between frees it.
    let text = random_schedules(|| create_vs_delete(preset(PRESET_4_10))).expect_err("the window");
    assert!(text.contains("use-after-free"), "{text}");
    // 6.0 closes it by nesting c_list_lock under the bit lock (reported, but no use after free).
    let text = random_schedules(|| create_vs_delete(preset(PRESET_6_0))).expect_err("the nesting");
    assert!(text.contains("sleep-in-atomic") && !text.contains("use-after-free"), "{text}");
    // 6.1 on: the create's own reference keeps the entry until it is on the LRU.
    random_schedules(|| create_vs_delete(newest())).expect("no window, no nesting");
}

#[test]
fn the_lost_flag_update_happens_without_atomic_flags_and_never_with_them() {
    random_schedules(|| flags(newest())).expect("atomic bit operations lose nothing");
    let text = random_schedules(|| flags(newest().without(ATOMIC_ENTRY_FLAGS))).expect_err("a lost update");
    assert!(text.contains("lost update"), "{text}");
}

#[test]
fn a_release_waits_for_the_reuser_and_without_the_fix_frees_the_block_under_it() {
    random_schedules(|| reuse_vs_release(newest())).expect("the release waits");
    let text = random_schedules(|| reuse_vs_release(newest().without(DELETE_OR_GET))).expect_err("the race");
    assert!(text.contains("ext4-xattr-reuse-of-freed-block"), "{text}");
}
