//! The balloon under threaded campaigns (`ksim fuzz balloon --threads N`): one guest, host and
//! driver shared by the threads, each thread a kernel actor for the operation it runs: the
//! balloon thread's fill/leak passes (`BalloonRun`), an allocating task whose allocation may
//! reach the OOM notifier (`Alloc`, `Free`: thread N is task N), compaction's isolate and
//! migrate (`Compact`), and the host's config-change and stats interrupts (`SetTarget`,
//! `StatsRequest`). The host runs each kick inside the kicking context (the op-level
//! simulation's synchronous host); the asynchronous host, where `tell_host` sleeps for the ack,
//! is the loom and shuttle models' (tests/tests/balloon/).
//!
//! The balloon thread is one kernel task: whichever thread runs `BalloonRun` runs it in the
//! kthread's own context, holding a facade mutex that stands for "the kthread is busy", so its
//! passes never overlap each other but overlap everything else.
//!
//! Freeze and restore need a quiescent world and run in the set-up prefix only: the PM core
//! calls virtballoon_freeze() after freeze_processes() and freeze_kernel_threads() have parked
//! every user task and freezable kthread (the balloon thread, kcompactd), and
//! virtballoon_restore() before thawing them. (Host interrupts during freeze, the one overlap
//! the kernel does allow, are the shuttle and loom models' and the reset-during-freeze fault's.)
//!
//! Judged by linearizability against [`BalloonModel`](super::BalloonModel): `SetTarget`,
//! `Alloc` and `Free` (each task's pages are its own, and a target is a plain store). Declared
//! relaxed, because the kernel does not make them linearizable:
//! - `BalloonRun`: update_balloon_size() reads `num_pages` without balloon_lock, so the OOM
//!   notifier's leak in an allocating task and the thread's size update may leave `actual`
//!   stale (the seed's benign race); and an OOM deflate after the thread's last
//!   towards_target() leaves the balloon below its target until the next wake-up, an outcome no
//!   order of whole operations explains (the notifier's leak and its size update are two steps).
//! - `Compact`: its result depends on who holds balloon_lock (migratepage's trylock gives
//!   `-EAGAIN`), on page locks taken by the lockless dequeue walk (`trylock_page` fails, nothing
//!   isolated from a non-empty balloon) and on pages another compactor isolated, none of which
//!   is reference state.
//! - `StatsRequest`: the reference learns the host has its stats buffer back from a `BalloonRun`
//!   outcome it accepted, which a relaxed run may not give.
//!
//! What else judges a case: lockdep, the lockset detector on the convention-guarded driver
//! fields, the world's invariants at quiescence (host PFNs, page owners, managed pages, page
//! state, `actual`), teardown's leak check and deadlock detection.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Mutex as StdMutex, PoisonError};

use sim_core::mm::Pfn;
use sim_core::threaded::ThreadedSubject;
use sim_core::{Cx, Sim, Violation, ViolationKind};

use super::{
    alloc_pages, compact, free_pages, freeze_device, restore_device, run_balloon_thread, set_target,
    BalloonConfig, BalloonSubject, Op, Outcome,
};
use crate::world::World;

/// The guest a threaded case runs: 64 pages of 4 KiB, or 4 of 64 KiB.
const THREADED_MEMORY_BYTES: u64 = 256 << 10;

/// The balloon thread: its context and whether it sleeps in its wait.
struct Kthread {
    cx: Cx,
    asleep: bool,
}

/// The machine the threads share, the balloon thread, and the pages each task holds.
pub struct BalloonShared {
    world: World,
    /// The balloon thread: a facade mutex, held across its passes (a shuttle mutex in a case,
    /// so another thread asking for a pass waits and is scheduled meanwhile).
    kthread: sim_core::sync::Mutex<Kthread>,
    /// Checker state: the pages each task holds, taken out by the task's own thread for the
    /// length of its operation (std-locked briefly, never across a model call).
    tasks: StdMutex<Vec<Vec<Pfn>>>,
    /// Whether the PM core froze the device (set only in the prefix).
    frozen: AtomicBool,
    /// Half of memory, the most one allocation asks for.
    alloc_max: u64,
    /// Twice the config changes the host made, odd while one is in flight (checker state: the
    /// balloon thread's convergence verdict holds only under a fixed target).
    target_changes: AtomicU64,
}

impl std::fmt::Debug for BalloonShared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BalloonShared").field("world", &self.world).finish_non_exhaustive()
    }
}

impl BalloonShared {
    fn take_pages(&self, task: usize) -> Vec<Pfn> {
        std::mem::take(&mut self.tasks.lock().unwrap_or_else(PoisonError::into_inner)[task])
    }

    fn put_pages(&self, task: usize, pages: Vec<Pfn>) {
        self.tasks.lock().unwrap_or_else(PoisonError::into_inner)[task] = pages;
    }

    fn task_of(&self, task: u8) -> usize {
        usize::from(task) % self.tasks.lock().unwrap_or_else(PoisonError::into_inner).len()
    }

    fn all_task_pages(&self) -> std::collections::BTreeSet<Pfn> {
        self.tasks.lock().unwrap_or_else(PoisonError::into_inner).iter().flatten().copied().collect()
    }

    /// The balloon thread runs until it has nothing to do (Idle without a driver or frozen).
    fn run(&self) -> Outcome {
        let Some(vb) = self.world.vb.clone().filter(|_| !self.frozen.load(Ordering::SeqCst)) else {
            return Outcome::Idle;
        };
        let mut kthread = self.kthread.lock();
        let Kthread { cx, asleep } = &mut *kthread;
        run_balloon_thread(
            &self.world,
            &vb,
            cx,
            asleep,
            &|| self.target_changes.load(Ordering::SeqCst),
            false,
        )
    }

    /// Freeze (prefix only): the kthread is parked, as the PM core guarantees.
    fn freeze(&self, cx: &Cx) -> Outcome {
        let Some(vb) = self.world.vb.clone().filter(|_| !self.frozen.load(Ordering::SeqCst)) else {
            return Outcome::Idle;
        };
        self.frozen.store(true, Ordering::SeqCst);
        freeze_device(&vb, cx)
    }

    /// Restore (prefix only); the thread thaws and tests its condition afresh.
    fn restore(&self, cx: &Cx) -> Outcome {
        let Some(vb) = self.world.vb.clone().filter(|_| self.frozen.load(Ordering::SeqCst)) else {
            return Outcome::Idle;
        };
        let outcome = restore_device(&self.world, &vb, cx);
        if matches!(outcome, Outcome::Restored(Ok(()))) {
            self.frozen.store(false, Ordering::SeqCst);
            self.kthread.lock().asleep = false;
        }
        outcome
    }
}

impl ThreadedSubject for BalloonSubject {
    type Shared = BalloonShared;

    /// One allocating task per thread, so a thread's pages are its own; a guest of at most
    /// [`THREADED_MEMORY_BYTES`], so that a full fill or deflate stays well inside a case's
    /// scheduling-step bound (every page is several lock operations, each a shuttle step).
    fn threaded_config(config: &BalloonConfig, threads: usize) -> BalloonConfig {
        BalloonConfig {
            tasks: config.tasks.max(threads),
            memory_bytes: config.memory_bytes.min(THREADED_MEMORY_BYTES),
            ..config.clone()
        }
    }

    fn share(sim: &Sim, config: &BalloonConfig) -> BalloonShared {
        let subject = BalloonSubject::build(sim, config);
        let alloc_max = subject.total_pages() / 2 + 1;
        BalloonShared {
            tasks: StdMutex::new(subject.tasks),
            world: subject.world,
            kthread: sim_core::sync::Mutex::new(Kthread { cx: subject.cx, asleep: true }),
            frozen: AtomicBool::new(false),
            alloc_max,
            target_changes: AtomicU64::new(0),
        }
    }

    /// Thread N allocates and frees as task N.
    fn on_thread(op: Op, thread: usize) -> Op {
        let task = thread as u8;
        match op {
            Op::Alloc { pages, nofs, .. } => Op::Alloc { task, pages, nofs },
            Op::Free { pages, .. } => Op::Free { task, pages },
            other => other,
        }
    }

    fn apply_shared(shared: &BalloonShared, cx: &Cx, op: &Op) -> Outcome {
        let outcome = match *op {
            Op::SetTarget { pages } => {
                // Odd while a change is in flight, so a run it spans sees it too.
                shared.target_changes.fetch_add(1, Ordering::SeqCst);
                let outcome = set_target(&shared.world, cx, pages);
                shared.target_changes.fetch_add(1, Ordering::SeqCst);
                outcome
            }
            Op::BalloonRun => shared.run(),
            Op::Alloc { task, pages, nofs } => {
                let task = shared.task_of(task);
                let mut held = shared.take_pages(task);
                let outcome = alloc_pages(
                    &shared.world,
                    cx,
                    &mut held,
                    task,
                    u64::from(pages) % shared.alloc_max,
                    nofs,
                );
                shared.put_pages(task, held);
                outcome
            }
            Op::Free { task, pages } => {
                let task = shared.task_of(task);
                let mut held = shared.take_pages(task);
                let outcome = free_pages(&shared.world, cx, &mut held, pages);
                shared.put_pages(task, held);
                outcome
            }
            Op::Compact { index, to_zone } => compact(&shared.world, cx, index, to_zone),
            Op::StatsRequest => {
                match shared.world.vb.as_ref().filter(|_| !shared.frozen.load(Ordering::SeqCst)) {
                    Some(_) => Outcome::Stats(shared.world.vdev.host_request_stats(cx)),
                    None => Outcome::Idle,
                }
            }
            Op::Freeze => shared.freeze(cx),
            Op::Restore => shared.restore(cx),
        };
        if cx.sim().faults_failed() > 0 {
            cx.sim().mark("fault");
        }
        outcome
    }

    /// Freeze and restore run with every task and freezable kthread parked.
    fn concurrent(op: &Op) -> bool {
        !matches!(op, Op::Freeze | Op::Restore)
    }

    /// See the module documentation for why each is relaxed.
    fn relaxed(op: &Op) -> bool {
        matches!(op, Op::BalloonRun | Op::Compact { .. } | Op::StatsRequest)
    }

    /// The invariants once the balloon thread's next pass has run its update_balloon_size():
    /// the OOM notifier's size update may have left `actual` stale (the seed's unlocked read of
    /// `num_pages`), which the kernel leaves to that next pass to correct.
    fn check_shared(shared: &BalloonShared, sim: &Sim) -> Result<(), Violation> {
        if let Some(vb) = shared.world.vb.as_ref().filter(|vb| vb.has_vqs()) {
            vb.update_balloon_size(&shared.kthread.lock().cx);
        }
        shared.world.check_invariants(&sim.observer_cx("check_invariants", 0), &shared.all_task_pages())
    }

    fn teardown_shared(shared: BalloonShared, sim: &Sim) -> Result<(), Violation> {
        let cx = sim.cx("vballoon", 0);
        if let Some(vb) = &shared.world.vb {
            vb.remove(&cx);
        }
        for pfn in shared.all_task_pages() {
            let _ = shared.world.pages.free_page(&cx, pfn);
        }
        let left = shared.world.pages.allocated_pages(&cx);
        if left != 0 {
            return Err(Violation::new(
                ViolationKind::Leak,
                format!("{left} pages still allocated after remove"),
            ));
        }
        let held = shared.world.host.held_count();
        if held != 0 {
            return Err(Violation::new(
                ViolationKind::Leak,
                format!("the host still holds {held} pfns after remove"),
            ));
        }
        Ok(())
    }
}
