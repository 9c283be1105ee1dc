//! The demo under threaded campaigns (`ksim fuzz demo --threads N`): the cache shared by the
//! threads, each thread one task holding its own handles.
//!
//! What a newcomer puts here: the [`ThreadedSubject`] declaration, nothing else. `Shared` is the
//! model plus the callers' side of the world behind std locks (locked briefly, never across a
//! model call); `apply_shared` is `Subject::apply` against it; `concurrent` says which operations
//! need a quiescent world (none here); `key` splits the linearizability search where an operation
//! touches one key only.

use std::sync::{Mutex as StdMutex, PoisonError};

use sim_core::check::Subject;
use sim_core::threaded::ThreadedSubject;
use sim_core::{Cx, Sim, Violation};

use super::{check_state, DemoConfig, DemoSubject, Op, Outcome};
use crate::cache::{DemoCache, EntryHandle};

/// The cache and the handles each task holds.
#[derive(Debug)]
pub struct DemoShared {
    cache: DemoCache,
    /// Checker state: per task, the handles it holds with their keys, in the order taken.
    held: StdMutex<Vec<Vec<(u8, EntryHandle)>>>,
    tasks: usize,
}

impl DemoShared {
    fn held(&self) -> std::sync::MutexGuard<'_, Vec<Vec<(u8, EntryHandle)>>> {
        self.held.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl ThreadedSubject for DemoSubject {
    type Shared = DemoShared;

    /// One task per thread, so a thread's handles are its own.
    fn threaded_config(config: &DemoConfig, threads: usize) -> DemoConfig {
        DemoConfig { tasks: config.tasks.max(threads as u8), ..config.clone() }
    }

    fn share(sim: &Sim, config: &DemoConfig) -> DemoShared {
        let subject = DemoSubject::new(sim, config);
        let tasks = subject.tasks.len();
        DemoShared { cache: subject.cache, held: StdMutex::new(vec![Vec::new(); tasks]), tasks }
    }

    fn on_thread(op: Op, thread: usize) -> Op {
        let task = thread as u8;
        match op {
            Op::Insert { key, .. } => Op::Insert { task, key },
            Op::Get { key, .. } => Op::Get { task, key },
            Op::Put { index, .. } => Op::Put { task, index },
            Op::Shrink { count, .. } => Op::Shrink { task, count },
        }
    }

    fn apply_shared(shared: &DemoShared, cx: &Cx, op: &Op) -> Outcome {
        let task_of = |task: u8| usize::from(task) % shared.tasks;
        match *op {
            Op::Insert { key, .. } => Outcome::from(shared.cache.insert(cx, key)),
            Op::Get { task, key } => match shared.cache.get(cx, key) {
                Ok(handle) => {
                    shared.held()[task_of(task)].push((key, handle));
                    Outcome::Done
                }
                Err(errno) => Outcome::Failed(errno),
            },
            Op::Put { task, index } => {
                let taken = {
                    let mut held = shared.held();
                    let mine = &mut held[task_of(task)];
                    (!mine.is_empty()).then(|| mine.remove(usize::from(index) % mine.len()))
                };
                match taken {
                    Some((_, handle)) => {
                        shared.cache.put(cx, handle);
                        Outcome::Done
                    }
                    None => Outcome::NoHandle,
                }
            }
            Op::Shrink { count, .. } => Outcome::Freed(shared.cache.shrink_scan(cx, u32::from(count))),
        }
    }

    /// An insert or a get touches one key; a put's key is whichever handle it drops and a shrink
    /// touches several, so a history with either is searched whole.
    fn key(op: &Op) -> Option<u64> {
        match *op {
            Op::Insert { key, .. } => Some(u64::from(key)),
            Op::Get { .. } | Op::Put { .. } | Op::Shrink { .. } => None,
        }
    }

    fn check_shared(shared: &DemoShared, sim: &Sim) -> Result<(), Violation> {
        let held: Vec<u8> = shared.held().iter().flatten().map(|&(key, _)| key).collect();
        check_state(&shared.cache.state(&sim.observer_cx("demo-check", 0)), &held)
    }

    fn teardown_shared(shared: DemoShared, sim: &Sim) -> Result<(), Violation> {
        let cx = sim.cx("teardown", 0);
        let held = shared.held.into_inner().unwrap_or_else(PoisonError::into_inner);
        for (_, handle) in held.into_iter().flatten() {
            shared.cache.put(&cx, handle);
        }
        shared.cache.destroy(&cx)
    }
}
