//! The sim-core 2 detectors in the op-level simulation: one thread, each operation a task of its
//! own, nothing ever running at the same time, and the misuse still found.

use sim_core::list_bl::HlistBlHead;
use sim_core::lockdep::{LockdepReport, ReportMode};
use sim_core::{Guarded, Sim, SimConfig, SpinLock};

/// A tiny device: `count` is documented as protected by `dev->lock`.
struct Device {
    lock: SpinLock<()>,
    count: Guarded<u64>,
}

impl Device {
    fn new() -> Device {
        Device { lock: SpinLock::new("dev->lock", ()), count: Guarded::new("dev->count", "dev->lock", 0) }
    }

    /// Operation 1: the path that follows the convention.
    fn add(&self, cx: &sim_core::Cx) {
        let _held = self.lock.lock(cx);
        self.count.write(cx, |n| *n += 1);
    }

    /// Operation 2: the path that forgot it (`fixed` takes the lock).
    fn reset(&self, cx: &sim_core::Cx, fixed: bool) {
        let _held = fixed.then(|| self.lock.lock(cx));
        self.count.set(cx, 0);
    }
}

fn two_ops(fixed: bool) -> Sim {
    let sim = Sim::new(SimConfig::new(7).lockdep(ReportMode::Collect));
    let device = Device::new();
    device.add(&sim.cx("op1-add", 0));
    device.reset(&sim.cx("op2-reset", 1), fixed);
    sim
}

#[test]
fn a_field_written_without_its_lock_is_found_from_two_ops_in_one_thread() {
    let sim = two_ops(false);
    let kinds: Vec<String> = sim.violations().into_iter().map(|v| v.kind.to_string()).collect();
    assert_eq!(kinds, ["lockdep:lock-not-held", "lockdep:lockset-race"]);
    let reports = sim.lockdep().reports();
    let LockdepReport::LocksetRace { current, previous, .. } = &reports[1] else { panic!("{reports:#?}") };
    assert_eq!((current.task.as_str(), previous.task.as_str()), ("op2-reset", "op1-add"));
    assert_eq!(previous.held, ["dev->lock"]);
    assert!(current.site.contains("detectors.rs") && previous.site.contains("detectors.rs"));
}

#[test]
fn the_same_two_ops_with_the_lock_are_quiet() {
    assert!(two_ops(true).violations().is_empty());
}

#[test]
fn a_report_panics_by_default_with_its_text() {
    let result = std::panic::catch_unwind(|| {
        let sim = Sim::with_seed(1);
        let field = Guarded::new("dev->count", "dev->lock", 0u8);
        field.set(&sim.cx("t", 0), 1);
    });
    let payload = result.expect_err("lockdep's default mode panics");
    let text = payload.downcast_ref::<String>().cloned().unwrap_or_default();
    assert!(text.contains("dev->count is documented as protected by dev->lock"), "{text}");
}

#[test]
fn buckets_of_one_class_nest_as_recursion_as_in_the_kernel() {
    // Taking two buckets of one table at once is what lockdep calls recursive locking of the
    // class (the kernel would need a subclass annotation).
    let sim = Sim::new(SimConfig::new(1).lockdep(ReportMode::Collect));
    let buckets: Vec<HlistBlHead<u32>> = (0..2).map(|_| HlistBlHead::new("mb_cache->c_hash")).collect();
    let cx = sim.cx("t", 0);
    let first = buckets[0].head().lock(&cx);
    let second = buckets[1].head().lock(&cx);
    drop((second, first));
    let kinds: Vec<&str> = sim.lockdep().reports().iter().map(|r| r.kind()).collect();
    assert_eq!(kinds, ["recursive-locking"]);
}
