//! The RCU and kref models the loom and shuttle tests share: small reader/updater and
//! lookup/remover pairs, each written once against the sync facade.

use sim_core::rcu::{rcu_barrier, synchronize_rcu, RcuPointer};
use sim_core::sync::{thread, Arc};
use sim_core::{Kref, Sim, SpinLock};

/// How the updater disposes of the object it unpublished.
#[derive(Clone, Copy, Debug)]
pub(super) enum Free {
    /// `kfree()` at once: the historical mistake.
    Kfree,
    /// `synchronize_rcu()` then `kfree()`.
    SynchronizeThenKfree,
    /// `kfree_rcu()`.
    KfreeRcu,
}

/// A reader reads `gp` in a section; the updater, under `gp_lock`, replaces the object and frees
/// the old one as `free` says. The reader uses the object where `use_after_unlock` says.
pub(super) fn replace_and_free(sim: &Sim, free: Free, use_after_unlock: bool) {
    let gp = Arc::new(RcuPointer::new("gp"));
    let lock = SpinLock::new("gp_lock", ());
    let setup = sim.cx("setup", 0);
    gp.rcu_assign_pointer(&setup, Some(gp.alloc(1u32)));
    let reader = {
        let (gp, cx) = (gp.clone(), sim.cx("reader", 0));
        thread::spawn(move || {
            cx.rcu_read_lock();
            let seen = gp.rcu_dereference(&cx);
            if !use_after_unlock {
                seen.as_ref().map(|seen| seen.get(&cx));
            }
            cx.rcu_read_unlock();
            if use_after_unlock {
                seen.as_ref().map(|seen| seen.get(&cx));
            }
        })
    };
    let cx = sim.cx("updater", 1);
    let old = {
        let _held = lock.lock(&cx);
        let old = gp.rcu_dereference_protected(&cx, "gp_lock").map(|seen| seen.object());
        gp.rcu_assign_pointer(&cx, Some(gp.alloc(2)));
        old.expect("published at setup")
    };
    match free {
        Free::Kfree => gp.kfree(&cx, old),
        Free::SynchronizeThenKfree => {
            synchronize_rcu(&cx);
            gp.kfree(&cx, old);
        }
        Free::KfreeRcu => gp.kfree_rcu(&cx, old),
    }
    // The grace period runs while the reader may still be going, as the kernel's kthread does.
    rcu_barrier(&cx);
    reader.join().expect("reader");
    assert_eq!(gp.live(), 1, "only the new object survives");
}

/// An entry of an RCU-protected table, with its reference count.
struct Entry {
    kref: Kref,
}

/// A lookup finds the entry under RCU and takes a reference (a plain get, or get_unless_zero);
/// the remover unpublishes it and puts the table's reference, whose release frees it with
/// kfree_rcu. The lookup then uses the entry and puts its reference.
pub(super) fn lookup_races_last_put(sim: &Sim, get_unless_zero: bool) {
    let table = Arc::new(RcuPointer::new("table"));
    let setup = sim.cx("setup", 0);
    let entry = table.alloc(Entry { kref: Kref::new(&setup, "entry") });
    table.rcu_assign_pointer(&setup, Some(entry));
    let lookup = {
        let (table, cx) = (table.clone(), sim.cx("lookup", 0));
        thread::spawn(move || {
            cx.rcu_read_lock();
            let found = table.rcu_dereference(&cx).and_then(|seen| seen.get(&cx).ok());
            let held = found.filter(|found| {
                if get_unless_zero {
                    found.kref.get_unless_zero(&cx)
                } else {
                    found.kref.get(&cx);
                    true
                }
            });
            cx.rcu_read_unlock();
            if let Some(held) = held {
                let _ = held.kref.check_access(&cx);
                held.kref.put(&cx, |cx| table.kfree_rcu(cx, entry));
            }
        })
    };
    let cx = sim.cx("remover", 1);
    let lock = SpinLock::new("table_lock", ());
    let seen = {
        let _held = lock.lock(&cx);
        let seen = table.rcu_dereference_protected(&cx, "table_lock").expect("published at setup");
        table.rcu_assign_pointer(&cx, None);
        seen
    };
    let removed = seen.get(&cx).expect("the table's reference keeps it");
    removed.kref.put(&cx, |cx| table.kfree_rcu(cx, entry));
    lookup.join().expect("lookup");
    rcu_barrier(&cx);
    assert_eq!(table.live(), 0, "the entry is freed once every reference is put");
}
