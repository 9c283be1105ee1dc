//! kernel/taskstats.c's per-CPU listener lists: `struct listener`, `struct listener_list`
//! (`listener_array`), add_del_listener() and the pruning half of send_cpu_listeners().
//! Left out: NUMA placement (kmalloc_node's node only picks memory).

use sim_core::mm::{Gfp, KmemCache, ObjHandle};
use sim_core::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use sim_core::{Cx, Errno, RwSem};

/// A set of CPUs, ascending: a parsed cpumask as add_del_listener() walks it (`cpumask_var_t`,
/// the parser's own type, so parse() hands it over without building another set).
pub type CpuSet = sim_core::percpu::CpuMask;

/// `struct listener`: one port registered for one CPU's exits.
#[derive(Debug)]
pub struct Listener {
    /// `pid`: the netlink port.
    pub pid: u32,
    /// `valid`: cleared (under the read lock) when a send finds the port gone.
    pub valid: AtomicBool,
    /// The `kmalloc_node` object, for leak accounting.
    pub handle: ObjHandle<()>,
}

/// `struct listener_list`: the list and its rwsem. `len` lets exit read `list_empty()` without
/// the semaphore, as taskstats_exit() does.
#[derive(Debug)]
pub struct ListenerList {
    /// `sem` and `list` (head first).
    pub sem: RwSem<Vec<Listener>>,
    /// `list_empty()` without the lock.
    pub len: AtomicUsize,
}

impl ListenerList {
    /// `INIT_LIST_HEAD` + `init_rwsem`.
    pub fn new() -> ListenerList {
        ListenerList { sem: RwSem::new("listeners->sem", Vec::new()), len: AtomicUsize::new(0) }
    }

    /// Unlocked `list_empty()`.
    pub fn is_empty_unlocked(&self) -> bool {
        self.len.load(Ordering::Relaxed) == 0
    }
}

impl Default for ListenerList {
    fn default() -> Self {
        ListenerList::new()
    }
}

/// REGISTER or DEREGISTER.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// TASKSTATS_CMD_ATTR_REGISTER_CPUMASK.
    Register,
    /// TASKSTATS_CMD_ATTR_DEREGISTER_CPUMASK.
    Deregister,
}

/// CPUs a request touched, ascending: a mask names a few, so they stay in place (a request
/// makes no heap list for its report).
pub(crate) type CpuList = smallvec::SmallVec<[u32; 8]>;

/// What add_del_listener() did, for the checker's ledger.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AddDelReport {
    /// CPUs where an entry was added.
    pub added: CpuList,
    /// CPUs skipped because the port already had a valid entry (the duplicate check).
    pub existed: CpuList,
    /// Whether an allocation failed part-way and the cleanup ran.
    pub failed_part_way: bool,
    /// CPUs where the cleanup/deregister loop removed an entry.
    pub removed: CpuList,
}

/// Mirrors add_del_listener() after the cpumask and namespace checks: REGISTER allocates one
/// entry per CPU (the duplicate check, where the version has it, skips CPUs the port already
/// listens on); an allocation failure jumps to the cleanup loop, which removes the first entry for
/// the port on every CPU of the mask (including entries that predate this request) and returns 0,
/// as both listings do. DEREGISTER is that same loop.
pub fn add_del_listener(
    cx: &Cx,
    lists: &[ListenerList],
    cache: &KmemCache<()>,
    pid: u32,
    mask: &CpuSet,
    action: Action,
    duplicate_check: bool,
) -> Result<AddDelReport, Errno> {
    let mut report = AddDelReport::default();
    if action == Action::Register {
        let mut failed = false;
        for cpu in mask {
            let Ok(handle) = cache.alloc(cx, Gfp::GFP_KERNEL, ()) else {
                cx.note(format!("add_del_listener: kmalloc_node for cpu {cpu} failed, cleanup"));
                failed = true;
                break;
            };
            let listeners = &lists[cpu as usize];
            let mut list = listeners.sem.down_write(cx);
            let exists =
                duplicate_check && list.iter().any(|s| s.pid == pid && s.valid.load(Ordering::Relaxed));
            if exists {
                drop(list);
                let _ = cache.free(cx, handle);
                report.existed.push(cpu);
                continue;
            }
            list.insert(0, Listener { pid, valid: AtomicBool::new(true), handle });
            listeners.len.store(list.len(), Ordering::Relaxed);
            report.added.push(cpu);
        }
        if !failed {
            return Ok(report);
        }
        report.failed_part_way = true;
    }
    // The deregister (or cleanup) loop.
    for cpu in mask {
        let listeners = &lists[cpu as usize];
        let mut list = listeners.sem.down_write(cx);
        if let Some(at) = list.iter().position(|s| s.pid == pid) {
            let entry = list.remove(at);
            let _ = cache.free(cx, entry.handle);
            report.removed.push(cpu);
        }
        listeners.len.store(list.len(), Ordering::Relaxed);
    }
    Ok(report)
}

/// The first half of send_cpu_listeners(): under the read lock, for each listener in list order,
/// a clone of the current message unless it is the last (`skb_clone(current, remaining)`; None,
/// a failed clone, ends the walk), then the unicast, which takes the current message; a listener
/// whose port refused (ECONNREFUSED) is marked invalid. Returns how many were marked, and the
/// message no unicast took (an empty list's, or the one whose clone failed), for the caller to
/// free as the kernel's `if (skb_cur) nlmsg_free(skb_cur)` does.
pub fn deliver_to_listeners<T>(
    cx: &Cx,
    listeners: &ListenerList,
    skb: T,
    mut skb_clone: impl FnMut(&T, usize) -> Option<T>,
    mut unicast: impl FnMut(u32, T) -> Result<(), Errno>,
) -> (usize, Option<T>) {
    let mut delcount = 0;
    let mut skb_cur = Some(skb);
    let list = listeners.sem.down_read(cx);
    let n = list.len();
    for (i, s) in list.iter().enumerate() {
        let Some(cur) = skb_cur.take() else { break };
        let mut skb_next = None;
        if i + 1 < n {
            skb_next = skb_clone(&cur, n - i);
            if skb_next.is_none() {
                skb_cur = Some(cur);
                break;
            }
        }
        if unicast(s.pid, cur) == Err(Errno::ECONNREFUSED) {
            s.valid.store(false, Ordering::Relaxed);
            delcount += 1;
        }
        skb_cur = skb_next;
    }
    drop(list);
    (delcount, skb_cur)
}

/// The second half of send_cpu_listeners(): under the write lock, unlink and free every entry
/// a send marked invalid. Returns how many went.
pub fn prune_invalid(cx: &Cx, listeners: &ListenerList, cache: &KmemCache<()>) -> usize {
    let mut list = listeners.sem.down_write(cx);
    let before = list.len();
    let mut kept = Vec::with_capacity(before);
    for entry in list.drain(..) {
        if entry.valid.load(Ordering::Relaxed) {
            kept.push(entry);
        } else {
            let _ = cache.free(cx, entry.handle);
        }
    }
    *list = kept;
    listeners.len.store(list.len(), Ordering::Relaxed);
    before - list.len()
}
