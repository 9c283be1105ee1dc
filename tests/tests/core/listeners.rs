//! A small per-CPU listener-list model with the shape of taskstats' exit path
//! (send_cpu_listeners() in kernel/taskstats.c): readers deliver to every listener under the read
//! side of the list's rwsem, mark those whose port is gone invalid, and after an up_read /
//! down_write gap prune the invalid ones under the write side.
//!
//! Two pruning strategies: [`Prune::Revalidate`] looks at each entry's `valid` flag again under
//! the write lock, as the kernel does; [`Prune::SnapshotIndices`] removes the positions it saw
//! under the read lock, which is wrong: in the gap another exit may prune first and shift the
//! list, and the stale positions then name valid listeners. The checkers must tell them apart.

use std::collections::BTreeSet;

use proptest::prelude::*;
use serde::{Deserialize, Serialize};
use sim_core::check::{Reference, Subject};
use sim_core::percpu::{CpuId, PerCpu};
use sim_core::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use sim_core::{Cx, RwSem, Sim, SimConfig, Violation};

/// How invalid listeners are pruned after the gap.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Prune {
    /// Re-check each entry's flag under the write lock (the kernel's way).
    Revalidate,
    /// Remove the indices noted under the read lock (broken).
    SnapshotIndices,
}

/// A netlink port: open until closed; counts what it received.
#[derive(Debug)]
pub struct Port {
    pub open: AtomicBool,
    pub received: AtomicU32,
}

impl Port {
    pub fn new() -> Port {
        Port { open: AtomicBool::new(true), received: AtomicU32::new(0) }
    }
}

/// One registration: a port and its validity flag (written under the read lock, as the kernel's
/// `s->valid = 0` is).
#[derive(Debug)]
pub struct Listener {
    pub port: usize,
    pub valid: AtomicBool,
}

/// One CPU's list (`struct listener_list`).
#[derive(Debug)]
pub struct ListenerList {
    pub sem: RwSem<Vec<Listener>>,
}

impl ListenerList {
    pub fn new() -> ListenerList {
        ListenerList { sem: RwSem::new("listeners->sem", Vec::new()) }
    }

    /// Registration under the write lock.
    pub fn register(&self, cx: &Cx, port: usize) {
        self.sem.down_write(cx).push(Listener { port, valid: AtomicBool::new(true) });
    }

    /// Delivery and pruning; returns how many listeners received the message.
    pub fn deliver(&self, cx: &Cx, ports: &[Port], prune: Prune) -> u32 {
        let mut delivered = 0;
        let mut stale = Vec::new();
        {
            let list = self.sem.down_read(cx);
            for (index, listener) in list.iter().enumerate() {
                let port = &ports[listener.port];
                if port.open.load(Ordering::Acquire) {
                    port.received.fetch_add(1, Ordering::AcqRel);
                    delivered += 1;
                } else {
                    listener.valid.store(false, Ordering::Release);
                    stale.push(index);
                }
            }
        }
        if stale.is_empty() {
            return delivered;
        }
        let mut list = self.sem.down_write(cx);
        match prune {
            Prune::Revalidate => list.retain(|l| l.valid.load(Ordering::Acquire)),
            Prune::SnapshotIndices => {
                for &index in stale.iter().rev() {
                    if index < list.len() {
                        list.remove(index);
                    }
                }
            }
        }
        cx.note(format!("pruned on cpu{}", cx.cpu()));
        delivered
    }

    /// The ports of the listeners on the list, in list order.
    pub fn ports(&self, cx: &Cx) -> Vec<usize> {
        self.sem.down_read(cx).iter().map(|l| l.port).collect()
    }
}

// --- the op-level subject ------------------------------------------------------------------------

/// Configuration of the op-level subject.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ListenersConfig {
    pub cpus: u32,
    pub ports: usize,
    pub prune: Prune,
}

/// One operation.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ListenersOp {
    Register { port: usize, cpu: CpuId },
    Close { port: usize },
    Exit { cpu: CpuId },
}

/// The system under test.
pub struct Listeners {
    lists: PerCpu<ListenerList>,
    ports: Vec<Port>,
    prune: Prune,
    cx: Cx,
    coverage: BTreeSet<&'static str>,
}

impl Subject for Listeners {
    const NAME: &'static str = "listeners";
    type Config = ListenersConfig;
    type Op = ListenersOp;
    type Outcome = u32;
    type Reference = ListenersModel;

    fn sim_config(config: &ListenersConfig, seed: u64) -> SimConfig {
        SimConfig::new(seed).cpus(config.cpus)
    }

    fn new(sim: &Sim, config: &ListenersConfig) -> Listeners {
        Listeners {
            lists: PerCpu::new(config.cpus, |_| ListenerList::new()),
            ports: (0..config.ports).map(|_| Port::new()).collect(),
            prune: config.prune,
            cx: sim.cx("exit", 0),
            coverage: BTreeSet::new(),
        }
    }

    fn op_strategy(config: &ListenersConfig) -> BoxedStrategy<ListenersOp> {
        let (ports, cpus) = (config.ports, config.cpus);
        prop_oneof![
            1 => (0..ports, 0..cpus).prop_map(|(port, cpu)| ListenersOp::Register { port, cpu }),
            1 => (0..ports).prop_map(|port| ListenersOp::Close { port }),
            3 => (0..cpus).prop_map(|cpu| ListenersOp::Exit { cpu }),
        ]
        .boxed()
    }

    fn apply(&mut self, _sim: &Sim, op: &ListenersOp) -> u32 {
        match *op {
            ListenersOp::Register { port, cpu } => {
                if !self.ports[port].open.load(Ordering::Acquire) {
                    return 0;
                }
                self.cx.migrate(cpu);
                self.lists.get(cpu).register(&self.cx, port);
                0
            }
            ListenersOp::Close { port } => {
                self.ports[port].open.store(false, Ordering::Release);
                0
            }
            ListenersOp::Exit { cpu } => {
                self.cx.migrate(cpu);
                let before = self.lists.get(cpu).ports(&self.cx).len();
                let delivered = self.lists.get(cpu).deliver(&self.cx, &self.ports, self.prune);
                if self.lists.get(cpu).ports(&self.cx).len() < before {
                    self.coverage.insert("listener pruned");
                }
                if delivered > 1 {
                    self.coverage.insert("delivered to several listeners");
                }
                delivered
            }
        }
    }

    fn check_invariants(&self, _sim: &Sim) -> Result<(), Violation> {
        Ok(())
    }

    fn teardown(self, _sim: &Sim) -> Result<(), Violation> {
        Ok(())
    }

    fn coverage(&self) -> BTreeSet<&'static str> {
        self.coverage.clone()
    }
}

/// The reference: which ports are open and, per CPU, the ports registered there, in order.
#[derive(Debug)]
pub struct ListenersModel {
    open: Vec<bool>,
    lists: Vec<Vec<usize>>,
}

impl Reference for ListenersModel {
    type Config = ListenersConfig;
    type Op = ListenersOp;
    type Outcome = u32;

    fn new(config: &ListenersConfig) -> ListenersModel {
        ListenersModel { open: vec![true; config.ports], lists: vec![Vec::new(); config.cpus as usize] }
    }

    fn check(&mut self, op: &ListenersOp, actual: &u32) -> Result<(), String> {
        match *op {
            ListenersOp::Register { port, cpu } => {
                if self.open[port] {
                    self.lists[cpu as usize].push(port);
                }
                Ok(())
            }
            ListenersOp::Close { port } => {
                self.open[port] = false;
                Ok(())
            }
            ListenersOp::Exit { cpu } => {
                let list = &mut self.lists[cpu as usize];
                let expect = list.iter().filter(|&&port| self.open[port]).count() as u32;
                list.retain(|&port| self.open[port]);
                if *actual == expect {
                    Ok(())
                } else {
                    Err(format!("expected delivery to {expect} open listeners on cpu{cpu}"))
                }
            }
        }
    }
}
