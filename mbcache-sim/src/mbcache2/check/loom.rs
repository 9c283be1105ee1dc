//! mbcache2's loom models, named per zoo row for the zoo's loom column
//! ([`sim_core::loom_runner`]): the entry's flag word raced by ext4 clearing `e_reusable` (the
//! block reached its maximum) and another task's `mb_cache_entry_touch()` setting `e_referenced`.

use sim_core::check::ZooEntry;
use sim_core::lockdep::ReportMode;
use sim_core::loom_runner::{loom_data_race, LoomCatalog, LoomScenario};
use sim_core::sync::{thread, Arc};
use sim_core::{Sim, SimConfig, Violation, ViolationKind};

use super::catalog::ZOO_LOST_FLAG;
use super::world::Mbcache2World;
use super::{Mbcache2Config, Mbcache2Subject};

/// The name of [`touch_races_clear_reusable`]'s scenario.
pub(crate) const LOOM_TOUCH_VS_CLEAR_REUSABLE: &str = "touch-vs-clear-reusable";

/// A lost update of one flag: the other task's bit write came back undone.
const LOST_FLAG_UPDATE: ViolationKind = ViolationKind::invariant("mbcache2-entry-flag-update-lost");

impl LoomCatalog for Mbcache2Subject {
    fn loom_scenario(row: &ZooEntry) -> Option<LoomScenario<Mbcache2Config>> {
        (row.name == ZOO_LOST_FLAG).then(|| LoomScenario {
            name: LOOM_TOUCH_VS_CLEAR_REUSABLE,
            preemption_bound: 2,
            // loom sees the two unordered writes of the bitfield's word before the lost update
            // they cause; lockdep's lockset detector, run inside each interleaving, may report
            // them first.
            expected: vec![loom_data_race(), ViolationKind::lockdep("lockset-race"), LOST_FLAG_UPDATE],
            model: touch_races_clear_reusable,
        })
    }
}

/// The race fixed by "ext4: fix deadlock due to mbcache entry corruption": a reusable entry held
/// by the main task (ext4 in `ext4_xattr_block_set()`, whose block reached
/// `EXT4_XATTR_REFCOUNT_MAX`, clearing `e_reusable`), while a second task's
/// `mb_cache_entry_touch()` sets `e_referenced` in the same word. Afterwards the entry must be
/// referenced and not reusable; with the bitfield (the fix off) one write can undo the other.
pub(crate) fn touch_races_clear_reusable(config: &Mbcache2Config) -> Sim {
    let sim = Sim::new(SimConfig::new(0).cpus(2).lockdep(ReportMode::Collect));
    let setup = sim.cx("setup", 0);
    let world = Arc::new(Mbcache2World::new(&setup, config.fixes, 1, 4, 3));
    world.create(&setup, 7, 1, true).expect("the first entry fits an empty cache");
    let entry = world.get(&setup, 7, 1).expect("the entry just created is hashed");
    let toucher = {
        let world = world.clone();
        let cx = sim.cx("reuser", 1);
        thread::spawn(move || world.touch(&cx, entry))
    };
    let ext4 = sim.cx("ext4-full", 0);
    world.set_reusable(&ext4, entry, false);
    toucher.join().expect("the toucher does not panic");
    let (referenced, reusable) = world.flags(&setup, entry);
    if !referenced || reusable {
        let message = format!("lost update: referenced {referenced}, reusable {reusable}");
        sim.report(None, Violation::new(LOST_FLAG_UPDATE, message));
    }
    world.put(&setup, entry);
    sim
}
