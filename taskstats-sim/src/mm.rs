//! The `mm_struct` lifetime as taskstats meets it: kernel/fork.c (`copy_mm()`: a CLONE_VM
//! child takes a reference on its parent's mm, any other child gets a new one from `dup_mm()`;
//! `get_task_mm()`; `mmput()`) and kernel/exit.c (`exit_mm()`), with `tsk->mm` the plain pointer
//! field the kernel has: written under `task_lock(tsk)` (`alloc_lock`) by the task itself, read
//! by the task itself without a lock, and read by other tasks under `task_lock()` with a counted
//! reference (`get_task_mm()`) or, before CVE-2012-3510's fix, with neither.
//!
//! `mm_users` is a sim-core [`Kref`]: the last `mmput()` frees the mm, and a read of a freed mm is
//! reported as `kref:use-after-release` (KASAN's use-after-free). Left out: `mm_count` (lazy-TLB
//! borrowers: no kernel thread borrows an mm here, so the last `mmput()` also frees the
//! structure), exec, `mmap_sem`, page tables; `dup_mm()` cannot fail (a fault site on `mm_cachep`
//! would move every random stream of the checkers for a failure no taskstats path sees).

use std::fmt;

use sim_core::sync::atomic::{AtomicU64, Ordering};
use sim_core::sync::{Arc, RaceCell};
use sim_core::trace::{text_word, CallName};
use sim_core::{Cx, Kref, SpinLock};

use crate::task::trace_point;

/// exit_mm(), as the trace shows a task letting go of its mm.
const EXIT_MM: CallName = CallName::new("exit_mm");

/// __mmput(), as the trace shows an mm's last user going.
const MMPUT_LAST: CallName = CallName::new("__mmput");

/// `struct mm_struct` as far as taskstats reads it: `mm_users` and the high-water marks
/// xacct_add_tsk() reports.
pub(crate) struct MmStruct {
    /// `mm_users`.
    users: Kref,
    /// `hiwater_rss`, in pages: plain words in the kernel, updated by the mm's own threads and
    /// read racily by get_mm_hiwater_rss(); relaxed atomics here.
    hiwater_rss: AtomicU64,
    /// `hiwater_vm`, in pages.
    hiwater_vm: AtomicU64,
}

impl fmt::Debug for MmStruct {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MmStruct").field("users", &self.users).finish_non_exhaustive()
    }
}

impl MmStruct {
    /// Mirrors dup_mm()/mm_init(): a new mm with one user, the task that gets it, named after
    /// that task (`owner`) in reports.
    #[track_caller]
    pub(crate) fn new(cx: &Cx, owner: u32) -> Arc<MmStruct> {
        Arc::new(MmStruct {
            users: Kref::new(cx, crate::task::object_name(crate::task::NamedObject::MmStruct, owner)),
            hiwater_rss: AtomicU64::new(0),
            hiwater_vm: AtomicU64::new(0),
        })
    }

    /// Mirrors copy_mm()'s CLONE_VM branch (`atomic_inc(&oldmm->mm_users)`): the parent, which
    /// owns its mm, lends it to the child.
    #[track_caller]
    pub(crate) fn mmget(&self, cx: &Cx) {
        self.users.get(cx);
    }

    /// Mirrors mmput(): drops a user; the last one tears the mm down (__mmput(): exit_mmap(),
    /// mmdrop()). May sleep.
    #[track_caller]
    pub(crate) fn mmput(&self, cx: &Cx) -> bool {
        cx.might_sleep("mmput");
        self.users.put(cx, |cx| {
            trace_point(cx, &MMPUT_LAST, [text_word(self.name())], || {
                format!("__mmput: the last user is gone; exit_mmap() and mmdrop() free the {}", self.name())
            });
            cx.sim().mark("mm-freed");
        })
    }

    /// A read through a pointer to this mm: after its last mmput() it is a reported use after
    /// free (and false); the values read are then whatever the freed memory held.
    #[track_caller]
    pub(crate) fn access(&self, cx: &Cx) -> bool {
        self.users.check_access(cx).is_ok()
    }

    /// The mm's name in reports and the trace.
    pub(crate) fn name(&self) -> &str {
        self.users.object()
    }

    /// update_hiwater_rss()/update_hiwater_vm(): the marks rise to the current sizes.
    pub(crate) fn update_hiwater(&self, rss_pages: u64, vm_pages: u64) {
        self.hiwater_rss.fetch_max(rss_pages, Ordering::Relaxed);
        self.hiwater_vm.fetch_max(vm_pages, Ordering::Relaxed);
    }

    /// get_mm_hiwater_rss()/get_mm_hiwater_vm(), in pages.
    pub(crate) fn hiwater(&self) -> (u64, u64) {
        (self.hiwater_rss.load(Ordering::Relaxed), self.hiwater_vm.load(Ordering::Relaxed))
    }

    /// The mm's user count, for teardown's leak check.
    pub(crate) fn teardown(&self, cx: &Cx, users: u32) -> Result<(), sim_core::Violation> {
        self.users.teardown(cx, users)
    }
}

/// `tsk->mm` with the lock that guards its changes, `tsk->alloc_lock` (task_lock()). Shared by
/// every version of a task (see [`crate::task::Task`]).
pub(crate) struct TaskMm {
    /// `tsk->alloc_lock`.
    alloc_lock: SpinLock<()>,
    /// `tsk->mm`: a pointer word, loaded and stored whole (so a sim_core `RaceCell`: each access a
    /// schedule point for shuttle, and loom judges unordered ones).
    mm: RaceCell<Option<Arc<MmStruct>>>,
}

impl fmt::Debug for TaskMm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TaskMm")
    }
}

impl TaskMm {
    /// A task's `mm` field as copy_mm() leaves it.
    pub(crate) fn new(mm: Option<Arc<MmStruct>>) -> TaskMm {
        TaskMm { alloc_lock: SpinLock::new("&p->alloc_lock", ()), mm: RaceCell::new(mm) }
    }

    /// A plain load of `tsk->mm` with no lock: what the task itself does (`current->mm`: only it
    /// changes the field), and what xacct_add_tsk() did for any task before CVE-2012-3510's fix.
    pub(crate) fn load(&self) -> Option<Arc<MmStruct>> {
        self.mm.with(Clone::clone)
    }

    /// Mirrors get_task_mm(): under task_lock(), the mm with a user reference taken, or None for
    /// a task that has none (exited, or a kernel thread).
    #[track_caller]
    pub(crate) fn get_task_mm(&self, cx: &Cx) -> Option<Arc<MmStruct>> {
        let guard = self.alloc_lock.lock(cx);
        let mm = self.load();
        if let Some(mm) = &mm {
            mm.mmget(cx);
        }
        drop(guard);
        mm
    }

    /// Mirrors exit_mm(): the task clears its `mm` under task_lock() and then drops its user
    /// reference (the last one frees the mm). Also copy_process()'s `bad_fork_cleanup_mm`.
    #[track_caller]
    pub(crate) fn exit_mm(&self, cx: &Cx) {
        let guard = self.alloc_lock.lock(cx);
        let mm = self.mm.with_mut(Option::take);
        drop(guard);
        if let Some(mm) = mm {
            trace_point(cx, &EXIT_MM, [text_word(mm.name())], || {
                format!("exit_mm: tsk->mm = NULL under task_lock, then mmput({})", mm.name())
            });
            mm.mmput(cx);
        }
    }
}
