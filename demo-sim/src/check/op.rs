//! The demo's operations, what they return, and the proptest strategy that generates them.
//!
//! What a newcomer puts here: one [`Op`] variant per whole kernel operation a user or another
//! subsystem can make (a syscall, a netlink request, a guest action), each naming the task that
//! makes it and picking its targets by index modulo what exists, so any operation applies in any
//! state and a shrunk list is always valid; one [`Outcome`] variant per kind of result the
//! reference model judges; and the strategy, sized from the config so operations collide.

use proptest::prelude::*;
use proptest::strategy::BoxedStrategy;
use serde::{Deserialize, Serialize};
use sim_core::gen::{OpGen, OpRng};
use sim_core::Errno;

use super::DemoConfig;

/// Most entries one shrink may free.
const SHRINK_BATCH_MAX: u8 = 4;

/// One operation. Tasks and held handles are chosen by index modulo what exists.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Op {
    /// Inserts `key` (EEXIST when present).
    Insert {
        /// The task that inserts.
        task: u8,
        /// The key.
        key: u8,
    },
    /// Takes a handle on `key` (ENOENT when absent) and moves it to the LRU tail.
    Get {
        /// The task that takes the handle (and holds it until a `Put`).
        task: u8,
        /// The key.
        key: u8,
    },
    /// Drops the task's `index`-th handle (nothing when it holds none).
    Put {
        /// The task whose handle is dropped.
        task: u8,
        /// Which of its handles, modulo how many it holds.
        index: u8,
    },
    /// Frees up to `count` unused entries from the LRU head.
    Shrink {
        /// The task the shrinker runs in.
        task: u8,
        /// The most entries to free.
        count: u8,
    },
}

/// What an operation returned.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Done.
    Done,
    /// Failed with an errno.
    Failed(Errno),
    /// A shrink freed this many entries.
    Freed(u32),
    /// A put found no handle to drop.
    NoHandle,
}

impl Outcome {
    /// The outcome as the trace hashes it: a tag and its value, two words, no text.
    pub(crate) fn trace_words(&self) -> [u64; 2] {
        match self {
            Outcome::Done => [0, 0],
            Outcome::Failed(errno) => [1, errno.number() as u64],
            Outcome::Freed(count) => [2, u64::from(*count)],
            Outcome::NoHandle => [3, 0],
        }
    }
}

impl From<Result<(), Errno>> for Outcome {
    fn from(result: Result<(), Errno>) -> Outcome {
        result.map_or_else(Outcome::Failed, |()| Outcome::Done)
    }
}

/// Operations over the config's keys and tasks, all four kinds equally likely.
pub(crate) fn strategy(config: &DemoConfig) -> BoxedStrategy<Op> {
    let keys = config.keys.max(1);
    let tasks = config.tasks.max(1);
    prop_oneof![
        (0..tasks, 0..keys).prop_map(|(task, key)| Op::Insert { task, key }),
        (0..tasks, 0..keys).prop_map(|(task, key)| Op::Get { task, key }),
        (0..tasks, any::<u8>()).prop_map(|(task, index)| Op::Put { task, index }),
        (0..tasks, 1..=SHRINK_BATCH_MAX).prop_map(|(task, count)| Op::Shrink { task, count }),
    ]
    .boxed()
}

/// The cheap generator ([`sim_core::gen`]): the same distribution as [`strategy`] (four kinds
/// equally likely, the same ranges), drawn from a plain random stream instead of a proptest value
/// tree, so a campaign spends its time on the model rather than on generation.
pub(crate) fn generator(config: &DemoConfig) -> OpGen<Op> {
    let keys = config.keys.max(1);
    let tasks = config.tasks.max(1);
    Box::new(move |rng: &mut OpRng| {
        let kind = rng.below(4);
        let task = rng.u8_below(tasks);
        match kind {
            0 => Op::Insert { task, key: rng.u8_below(keys) },
            1 => Op::Get { task, key: rng.u8_below(keys) },
            2 => Op::Put { task, index: rng.any_u8() },
            _ => Op::Shrink { task, count: rng.u8_in(1, SHRINK_BATCH_MAX) },
        }
    })
}
