//! kref's detectors in the op-level simulation: for each report, a seeded misuse that shows it
//! and the correct use that stays quiet. (The race a lookup's plain `kref_get` loses against the
//! last put needs two threads: see `loom_rcu.rs`.)

use sim_core::lockdep::ReportMode;
use sim_core::trace::TraceMode;
use sim_core::{Kref, Sim, SimConfig};

fn sim() -> Sim {
    Sim::new(SimConfig::new(5).lockdep(ReportMode::Collect).trace(TraceMode::Full))
}

fn kinds(sim: &Sim) -> Vec<String> {
    sim.violations().into_iter().map(|violation| violation.kind.to_string()).collect()
}

/// A holder takes and drops references as a driver would: a get per user, a put per user, and
/// the owner's put last, whose release runs exactly once.
#[test]
fn balanced_gets_and_puts_release_once_and_report_nothing() {
    let sim = sim();
    let (owner, user) = (sim.cx("owner", 0), sim.cx("user", 1));
    let kref = Kref::new(&owner, "device 0");
    let released = std::cell::Cell::new(0u32);
    for _ in 0..3 {
        kref.get(&user);
        kref.check_access(&user).expect("live while referenced");
    }
    assert!(kref.get_unless_zero(&user));
    for _ in 0..4 {
        assert!(!kref.put(&user, |_| released.set(released.get() + 1)));
    }
    kref.teardown(&owner, 1).expect("back at the owner's reference");
    assert!(kref.put(&owner, |_| released.set(released.get() + 1)));
    assert_eq!(released.get(), 1);
    assert!(sim.violations().is_empty(), "{:?}", sim.violations());
}

#[test]
fn one_put_too_many_is_an_underflow() {
    let sim = sim();
    let cx = sim.cx("driver", 0);
    let kref = Kref::new(&cx, "device 0");
    kref.get(&cx);
    kref.put(&cx, |_| {});
    kref.put(&cx, |_| {});
    assert!(kinds(&sim).is_empty());
    kref.put(&cx, |_| {});
    assert_eq!(kinds(&sim), vec!["kref:underflow"]);
    let message = &sim.violations()[0].message;
    assert!(message.contains("kref_put(device 0) by driver/cpu0 at tests/tests/core/kref.rs:"), "{message}");
}

#[test]
fn get_after_the_last_put_is_reported_and_get_unless_zero_is_not() {
    let sim = sim();
    let (remover, lookup) = (sim.cx("remover", 0), sim.cx("lookup", 1));
    let kref = Kref::new(&remover, "entry 3");
    kref.put(&remover, |_| {});
    assert!(!kref.get_unless_zero(&lookup));
    assert!(kinds(&sim).is_empty());
    kref.get(&lookup);
    assert_eq!(kinds(&sim), vec!["kref:get-after-release"]);
    let message = &sim.violations()[0].message;
    assert!(message.contains("refcount_t: addition on 0; use-after-free."), "{message}");
    assert!(message.contains("its last kref_put was by remover at"), "{message}");
}

#[test]
fn use_after_the_last_put_is_reported() {
    let sim = sim();
    let cx = sim.cx("driver", 0);
    let kref = Kref::new(&cx, "entry 3");
    kref.check_access(&cx).expect("live");
    kref.put(&cx, |_| {});
    assert!(kref.check_access(&cx).is_err());
    assert_eq!(kinds(&sim), vec!["kref:use-after-release"]);
}

#[test]
fn a_reference_never_put_is_a_leak_naming_where_it_was_taken() {
    let sim = sim();
    let (owner, user) = (sim.cx("owner", 0), sim.cx("user", 1));
    let kref = Kref::new(&owner, "device 0");
    kref.get(&user);
    let taken = line!() - 1;
    kref.get(&owner);
    kref.put(&owner, |_| {});
    assert!(kref.teardown(&owner, 1).is_err());
    assert_eq!(kinds(&sim), vec!["kref:leak"]);
    let message = &sim.violations()[0].message;
    assert!(message.contains("kref device 0: count 2 at teardown, expected 1"), "{message}");
    assert!(message.contains(&format!("user at tests/tests/core/kref.rs:{taken}")), "{message}");
}

#[test]
fn the_trace_shows_each_count_change() {
    let sim = sim();
    let cx = sim.cx("driver", 0);
    let kref = Kref::new(&cx, "device 0");
    kref.get(&cx);
    kref.put(&cx, |_| {});
    kref.put(&cx, |_| {});
    let text = sim_core::trace::render_text(&sim.trace().events(), &sim.trace().task_names(), 40);
    for expect in [
        "kref_init(device 0) = 1",
        "kref_get(device 0) = 2",
        "kref_put(device 0) = 1",
        "kref_put+release(device 0) = 0",
    ] {
        assert!(text.contains(expect), "{expect} missing from:\n{text}");
    }
}
