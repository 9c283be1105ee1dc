//! Loom models of the balloon's lock protocol: fill_balloon, the OOM notifier's leak_balloon
//! and compaction's migratepage racing on balloon_lock, pages_lock and the page locks, with the
//! real driver; most with a synchronous host (every ack already there), one with the host as a
//! thread of its own, so tell_host really waits for the ack. Preemption bound 2 (1 for the
//! freeze/restore model). From the ordinary test build:
//! `cargo test --workspace --test main -- balloon::loom`.

use std::collections::BTreeSet;

use balloon_sim::Endian;
use balloon_sim::Fixes;
use balloon_sim::HOST_FEATURES_ALL;
use balloon_sim::{compact_one, CompactResult};
use balloon_sim::{BalloonConfig, World};
use sim_core::mm::PAGE_SIZE_4K;
use sim_core::sync::atomic::{AtomicBool, Ordering};
use sim_core::sync::{thread, Arc};
use sim_core::{Sim, SimConfig};

use crate::core::loom_support::passes;

fn world(sim: &Sim, balloon_pages: usize) -> Arc<World> {
    let mut config = BalloonConfig::preset("fixed").expect("preset");
    config.fixes = Fixes::all();
    config.memory_bytes = 8 * PAGE_SIZE_4K;
    config.queue_size = 2;
    let cx = sim.cx("probe", 0);
    let world = Arc::new(World::new(&cx, &config, PAGE_SIZE_4K, HOST_FEATURES_ALL, Endian::Little, true));
    let vb = world.vb.clone().expect("probe");
    if balloon_pages > 0 {
        vb.fill_balloon(&cx, balloon_pages);
        vb.update_balloon_size(&cx);
    }
    world
}

/// Interleavings in which the OOM notifier's and the thread's update_balloon_size() left
/// `actual` behind `num_pages`.
static STALE_ACTUAL: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// The preemption bound every model here states, but the freeze/restore one.
const PREEMPTION_BOUND: Option<usize> = Some(2);

#[test]
fn fill_and_oom_notify_on_balloon_lock_leave_host_and_guest_agreeing() {
    let run = passes(PREEMPTION_BOUND, || {
        let sim = Sim::new(SimConfig::new(1).cpus(2));
        let world = world(&sim, 1);
        let vb = world.vb.clone().expect("probe");
        let filler = {
            let (vb, sim) = (vb.clone(), sim.clone());
            thread::spawn(move || {
                let cx = sim.cx("vballoon", 0);
                vb.fill_balloon(&cx, 1);
                vb.update_balloon_size(&cx);
            })
        };
        let freed = vb.oom_notify(&sim.cx("oom", 1));
        filler.join().expect("fill");
        // update_balloon_size() reads num_pages without balloon_lock, so the last of the two
        // updates may carry a count the other changed since: `actual` is then stale, one of
        // the values num_pages held (0, 1 or 2), until the thread's next pass.
        let observer = sim.observer_cx("check", 0);
        let (actual, num_pages) = (world.host.actual(), vb.num_pages(&observer));
        assert!(actual <= 2, "actual {actual} is a value num_pages never held");
        if actual != num_pages {
            STALE_ACTUAL.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
        let cx = sim.cx("vballoon", 0);
        vb.update_balloon_size(&cx);
        assert!(freed >= 1, "the notifier found the first page or the second: freed {freed}");
        world
            .check_invariants(&sim.observer_cx("check", 0), &BTreeSet::new())
            .unwrap_or_else(|v| panic!("{v}"));
        assert!(sim.violations().is_empty(), "{:?}", sim.violations());
        // virtballoon_remove() unregisters the OOM notifier, which owns a reference to vb.
        vb.remove(&cx);
    });
    assert!(run.executions > 10, "loom explored {} interleavings", run.executions);
    assert!(
        STALE_ACTUAL.load(std::sync::atomic::Ordering::Relaxed) > 0,
        "some interleaving left a stale actual (the seed's unlocked read of num_pages)"
    );
}

#[test]
fn migratepage_racing_leak_either_migrates_or_backs_off_and_loses_no_page() {
    let run = passes(PREEMPTION_BOUND, || {
        let sim = Sim::new(SimConfig::new(1).cpus(2));
        let world = world(&sim, 2);
        let vb = world.vb.clone().expect("probe");
        let compaction = {
            let (world, vb, sim) = (world.clone(), vb.clone(), sim.clone());
            thread::spawn(move || {
                let cx = sim.cx("kcompactd", 0);
                compact_one(&cx, &vb.vb_dev_info, &world.pages, 0, 1, |cx, new, old| {
                    vb.migratepage(cx, new, old)
                })
            })
        };
        let thread_cx = sim.cx("vballoon", 1);
        let leaked = vb.leak_balloon(&thread_cx, 1);
        vb.update_balloon_size(&thread_cx);
        let result = compaction.join().expect("compaction");
        assert_eq!(leaked, 1, "the other page is always on the list for leak");
        assert!(
            matches!(result, CompactResult::Migrated(..) | CompactResult::Again | CompactResult::Nothing),
            "{result:?}"
        );
        let cx = sim.cx("check", 0);
        let observer = sim.observer_cx("check", 0);
        assert_eq!(vb.num_pages(&observer), 1);
        world.check_invariants(&observer, &BTreeSet::new()).unwrap_or_else(|v| panic!("{v}"));
        assert!(sim.violations().is_empty(), "{:?}", sim.violations());
        // virtballoon_remove() unregisters the OOM notifier, which owns a reference to vb.
        vb.remove(&cx);
    });
    assert!(run.executions > 10, "loom explored {} interleavings", run.executions);
}

// "virtio_balloon: fix deadlock on OOM" (2017), fill_balloon() against the OOM notifier under
// the filesystem lock, is the `oom-deadlock` zoo row's loom model: balloon-sim's
// `check/loom.rs`, run from the ordinary build by `ksim zoo` and `core::loom_zoo`.

/// tell_host() against an asynchronous host: the driver adds the buffer, kicks and sleeps on
/// `vb->acked`; the host thread consumes the ring and interrupts; balloon_ack() wakes the
/// driver. In every interleaving the wait ends, and host and guest agree, for a fill and for the
/// leak remove_common() does.
#[test]
fn tell_host_waits_for_an_asynchronous_hosts_ack_in_every_interleaving() {
    passes(PREEMPTION_BOUND, || {
        let sim = Sim::new(SimConfig::new(1).cpus(2));
        let mut config = BalloonConfig::preset("fixed").expect("preset");
        config.memory_bytes = 8 * PAGE_SIZE_4K;
        config.queue_size = 2;
        // No stats queue: its primed buffer would be a second, unrelated kick.
        let features = HOST_FEATURES_ALL & !(1 << 1);
        let cx = sim.cx("vballoon", 0);
        let world = Arc::new(World::new(&cx, &config, PAGE_SIZE_4K, features, Endian::Little, false));
        let vb = world.vb.clone().expect("probe");
        let stop = Arc::new(AtomicBool::new(false));
        let host = {
            let (world, sim, stop) = (world.clone(), sim.clone(), stop.clone());
            thread::spawn(move || world.host_actor(&sim.cx("host", 1), &stop))
        };
        vb.fill_balloon(&cx, 1);
        vb.update_balloon_size(&cx);
        let observer = sim.observer_cx("check", 0);
        assert_eq!(world.host.held_count(), 1, "the host took the page before the ack");
        world.check_invariants(&observer, &BTreeSet::new()).unwrap_or_else(|v| panic!("{v}"));
        vb.remove(&cx);
        assert_eq!(world.host.held_count(), 0, "remove's leak was acked too");
        stop.store(true, Ordering::SeqCst);
        world.host.kicks.wake_up();
        host.join().expect("host");
        assert!(sim.violations().is_empty(), "{:?}", sim.violations());
    });
}

/// Hibernation against the balloon thread, a config interrupt and an asynchronous host, then
/// virtballoon_remove(): the PM core freezes the thread (freeze_kernel_threads()), freezes the
/// device (seed 004's freeze deflates through the host and resets it), the power cycle makes the
/// host forget what it held, restore brings the queues back and fills towards the target, the
/// thread thaws; meanwhile the host raises the target to one page. In every interleaving each
/// `tell_host` gets its ack, the thread converges or is stopped, and remove gives every page
/// back with host and guest agreeing.
#[test]
fn freeze_restore_and_remove_against_the_thread_a_config_interrupt_and_an_asynchronous_host() {
    let run = passes(Some(1), || {
        let sim = Sim::new(SimConfig::new(1).cpus(2));
        let mut config = BalloonConfig::preset("fixed").expect("preset");
        config.memory_bytes = 4 * PAGE_SIZE_4K;
        config.queue_size = 2;
        // No stats queue: its primed buffer would be a second, unrelated kick.
        let features = HOST_FEATURES_ALL & !(1 << 1);
        let pm = sim.cx("pm", 0);
        let world = Arc::new(World::new(&pm, &config, PAGE_SIZE_4K, features, Endian::Little, false));
        let vb = world.vb.clone().expect("probe");
        let stop = Arc::new(AtomicBool::new(false));
        let host = {
            let (world, sim, stop) = (world.clone(), sim.clone(), stop.clone());
            thread::spawn(move || world.host_actor(&sim.cx("host", 1), &stop))
        };
        let kthread = {
            let (vb, sim) = (vb.clone(), sim.clone());
            thread::spawn(move || vb.balloon_thread(&sim.cx("vballoon", 1)))
        };
        let irq = {
            let (world, sim) = (world.clone(), sim.clone());
            thread::spawn(move || {
                world.host.set_num_pages(1);
                world.vdev.config_changed(&sim.cx("host-config", 0));
            })
        };
        vb.freeze_thread(&pm);
        vb.freeze(&pm);
        world.host.forget_held();
        vb.restore(&pm).expect("restore without faults");
        vb.thaw_thread();
        irq.join().expect("irq");
        // virtballoon_remove(): kthread_stop() waits for the thread to exit, then remove_common.
        vb.shared.should_stop.store(true, Ordering::SeqCst);
        vb.shared.config_change.wake_up();
        kthread.join().expect("balloon thread");
        // Read only now: before the join the thread may be writing num_pages (loom reports the
        // checker's read racing it).
        let observer = sim.observer_cx("check", 0);
        assert!(vb.num_pages(&observer) <= 1, "never above the target");
        vb.remove(&pm);
        stop.store(true, Ordering::SeqCst);
        world.host.kicks.wake_up();
        host.join().expect("host");
        assert_eq!(world.pages.allocated_pages(&observer), 0, "remove gives every page back");
        assert_eq!(world.host.held_count(), 0, "the host holds nothing after remove");
        assert!(sim.violations().is_empty(), "{:?}", sim.violations());
    });
    assert!(run.executions > 10, "loom explored {} interleavings", run.executions);
}
