//! The reference model: what each demo operation must return, from plain collections.
//!
//! What a newcomer puts here: `<Name>Model`, the subsystem's state as plain `Vec`s and `BTreeMap`s
//! (no sim-core locks, no `Cx`, no trace), one function per operation returning the expected
//! [`Outcome`], and [`Reference::check`] comparing it with what the model returned. It always
//! behaves as the fully fixed kernel does, so switching a fix off makes the model disagree with it
//! (or trips a sim-core checker first). Where injected faults make several outcomes legal, the
//! actual one decides the new state.

use sim_core::check::Reference;
use sim_core::Errno;

use super::op::{Op, Outcome};
use super::DemoConfig;

/// Which keys exist, in LRU order, with their use counts, and which keys each task holds.
#[derive(Clone, Debug)]
pub struct DemoModel {
    lru: Vec<(u8, u32)>,
    held: Vec<Vec<u8>>,
    /// Allocation faults are injected, so an insert may fail with ENOMEM.
    faults: bool,
}

impl DemoModel {
    /// The cache allocates the entry before it looks the key up, so under faults ENOMEM is legal
    /// whether or not the key exists.
    fn insert(&mut self, key: u8, actual: &Outcome) -> Outcome {
        if self.faults && *actual == Outcome::Failed(Errno::ENOMEM) {
            Outcome::Failed(Errno::ENOMEM)
        } else if self.lru.iter().any(|&(k, _)| k == key) {
            Outcome::Failed(Errno::EEXIST)
        } else {
            self.lru.push((key, 0));
            Outcome::Done
        }
    }

    fn get(&mut self, task: usize, key: u8) -> Outcome {
        let Some(position) = self.lru.iter().position(|&(k, _)| k == key) else {
            return Outcome::Failed(Errno::ENOENT);
        };
        let (key, used) = self.lru.remove(position);
        self.lru.push((key, used + 1));
        self.held[task].push(key);
        Outcome::Done
    }

    fn put(&mut self, task: usize, index: u8) -> Outcome {
        let held = &mut self.held[task];
        if held.is_empty() {
            return Outcome::NoHandle;
        }
        let key = held.remove(usize::from(index) % held.len());
        if let Some(entry) = self.lru.iter_mut().find(|(k, _)| *k == key) {
            entry.1 = entry.1.saturating_sub(1);
        }
        Outcome::Done
    }

    /// The fixed shrinker: unused entries from the head, skipping those in use.
    fn shrink(&mut self, count: u8) -> Outcome {
        let mut freed = 0u32;
        let mut position = 0;
        while position < self.lru.len() && freed < u32::from(count) {
            if self.lru[position].1 > 0 {
                position += 1;
            } else {
                self.lru.remove(position);
                freed += 1;
            }
        }
        Outcome::Freed(freed)
    }
}

impl Reference for DemoModel {
    type Config = DemoConfig;
    type Op = Op;
    type Outcome = Outcome;

    fn new(config: &DemoConfig) -> DemoModel {
        DemoModel {
            lru: Vec::new(),
            held: vec![Vec::new(); usize::from(config.tasks.max(1))],
            faults: config.alloc_fault_percent > 0,
        }
    }

    fn check(&mut self, op: &Op, actual: &Outcome) -> Result<(), String> {
        let tasks = self.held.len();
        let expect = match *op {
            Op::Insert { key, .. } => self.insert(key, actual),
            Op::Get { task, key } => self.get(usize::from(task) % tasks, key),
            Op::Put { task, index } => self.put(usize::from(task) % tasks, index),
            Op::Shrink { count, .. } => self.shrink(count),
        };
        if *actual == expect {
            return Ok(());
        }
        let in_use: Vec<(u8, u32)> = self.lru.iter().copied().filter(|&(_, used)| used > 0).collect();
        Err(format!("expected {expect:?} (entries in use, key and count: {in_use:?})"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixes::{Fixes, PRESET_NEW};

    #[test]
    fn the_reference_shrinker_skips_entries_in_use_and_a_put_releases_them() {
        let mut model = DemoModel::new(&DemoConfig::new(PRESET_NEW, Fixes::all()));
        for op in
            [Op::Insert { task: 0, key: 1 }, Op::Insert { task: 0, key: 2 }, Op::Get { task: 0, key: 1 }]
        {
            model.check(&op, &Outcome::Done).expect("in step");
        }
        model.check(&Op::Shrink { task: 1, count: 2 }, &Outcome::Freed(1)).expect("key 2 only");
        assert!(model.check(&Op::Shrink { task: 1, count: 2 }, &Outcome::Freed(1)).is_err(), "key 1 is held");
        model.check(&Op::Put { task: 0, index: 0 }, &Outcome::Done).expect("put");
        model.check(&Op::Shrink { task: 1, count: 2 }, &Outcome::Freed(1)).expect("key 1, released");
    }

    #[test]
    fn enomem_is_legal_only_when_faults_are_injected() {
        let config = DemoConfig::new(PRESET_NEW, Fixes::all());
        let enomem = Outcome::Failed(Errno::ENOMEM);
        assert!(DemoModel::new(&config).check(&Op::Insert { task: 0, key: 1 }, &enomem).is_err());
        let faulty = DemoConfig { alloc_fault_percent: 10, ..config };
        assert!(DemoModel::new(&faulty).check(&Op::Insert { task: 0, key: 1 }, &enomem).is_ok());
    }
}
