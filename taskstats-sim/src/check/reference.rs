//! The reference model: from the facts of the world before each request, the errno the seed
//! returns; the listener lists and port queues as add_del_listener() and send_cpu_listeners()
//! leave them. Plain collections, no sim-core locks: it is checker state.

use std::collections::BTreeSet;

use sim_core::check::Reference;
use sim_core::Errno;

use super::op::{Op, Outcome, RequestFacts};
use super::TaskstatsConfig;
use crate::fixes::Fixes;
use crate::taskstats::{NR_CPUS, TASKSTATS_CPUMASK_MAXLEN};
use crate::wire::*;

/// The reference model: from the facts of the world before each request, the errno the seed
/// returns; replies counted and their headers checked.
#[derive(Clone, Debug)]
pub struct TaskstatsModel {
    fixes: Fixes,
    cpus: u32,
    faults: bool,
    queue_max: usize,
    pids: BTreeSet<u32>,
    /// Per CPU, the listener list head first (ports), as add_del_listener() and the pruning
    /// leave it.
    lists: Vec<Vec<u32>>,
    /// Open ports and how many exit events wait in each queue.
    ports: std::collections::BTreeMap<u32, usize>,
}

impl TaskstatsModel {
    /// The errno the seed returns for a cpumask request, before any allocation can fail.
    fn cpumask_errno(&self, facts: &RequestFacts, text: &[u8]) -> Result<(), Errno> {
        if self.fixes.on(crate::fixes::ADMIN_PERM) && !facts.capable {
            return Err(Errno::EPERM);
        }
        if text.len() > TASKSTATS_CPUMASK_MAXLEN {
            return Err(Errno::E2BIG);
        }
        let mask = crate::taskstats::parse_cpulist(self.fixes, text)?;
        if mask.iter().any(|&cpu| cpu >= self.cpus) {
            return Err(Errno::EINVAL);
        }
        if self.fixes.on(crate::fixes::NAMESPACE_CHECKS) && !facts.init_ns {
            return Err(Errno::EINVAL);
        }
        Ok(())
    }
}

impl TaskstatsModel {
    /// Mirrors add_del_listener() on the reference lists for a request that returned 0; after a
    /// request with an injected fault, adopts the model's lists (the actual outcome decides).
    fn mirror_listeners(
        &mut self,
        op: &Op,
        port: u32,
        error: Option<i32>,
        lists_after: Option<&Vec<Vec<u32>>>,
    ) {
        if let Some(lists) = lists_after {
            self.lists = lists.clone();
            return;
        }
        let (mask, register) = match op {
            Op::Register { mask, .. } => (mask, true),
            Op::Deregister { mask, .. } => (mask, false),
            _ => return,
        };
        if error != Some(0) {
            return;
        }
        let Ok(cpus) = crate::taskstats::parse_cpulist(self.fixes, &mask.text()) else { return };
        for cpu in cpus {
            let list = &mut self.lists[cpu as usize];
            if register {
                if !(self.fixes.on(crate::fixes::DUPLICATE_LISTENER_CHECK) && list.contains(&port)) {
                    list.insert(0, port);
                }
            } else if let Some(at) = list.iter().position(|&p| p == port) {
                list.remove(at);
            }
        }
    }
}

impl Reference for TaskstatsModel {
    type Config = TaskstatsConfig;
    type Op = Op;
    type Outcome = Outcome;

    fn new(config: &TaskstatsConfig) -> Self {
        TaskstatsModel {
            fixes: config.fixes,
            cpus: config.params.cpus.clamp(1, NR_CPUS),
            faults: !config.faults.is_empty(),
            queue_max: config.params.queue_max,
            pids: [1].into_iter().collect(),
            lists: vec![Vec::new(); config.params.cpus.clamp(1, NR_CPUS) as usize],
            ports: Default::default(),
        }
    }

    fn check(&mut self, op: &Op, actual: &Outcome) -> Result<(), String> {
        match (op, actual) {
            (_, Outcome::Forked(Ok(pid))) => {
                if !self.pids.insert(*pid) {
                    return Err(format!("fork handed out pid {pid} twice"));
                }
                Ok(())
            }
            (_, Outcome::Port(Some(id))) => {
                self.ports.insert(*id, 0);
                Ok(())
            }
            (_, Outcome::Closed(Some(id))) => {
                self.ports.remove(id);
                Ok(())
            }
            (_, Outcome::Received(Some(id), n)) => {
                let queued = self.ports.insert(*id, 0).unwrap_or(0);
                if queued != *n {
                    return Err(format!("port {id} held {n} messages, the reference counted {queued}"));
                }
                Ok(())
            }
            (Op::Exit { .. }, Outcome::Exited { pid, cpu, delivered, closed, lists_after }) => {
                self.check_exit(*pid, *cpu, delivered, closed, lists_after.as_ref())
            }
            (_, Outcome::Request { facts, error, replies, port, lists_after }) => {
                self.mirror_listeners(op, *port, *error, lists_after.as_ref());
                self.check_request(op, facts, *error, replies)
            }
            _ => Ok(()),
        }
    }
}

impl TaskstatsModel {
    /// An exit's deliveries against send_cpu_listeners() on the reference lists and queues;
    /// then the pruning and the closed ports.
    fn check_exit(
        &mut self,
        pid: u32,
        cpu: u32,
        delivered: &[u32],
        closed: &[u32],
        lists_after: Option<&Vec<Vec<u32>>>,
    ) -> Result<(), String> {
        if self.fixes.on(crate::fixes::DUPLICATE_LISTENER_CHECK) {
            let distinct: BTreeSet<_> = delivered.iter().collect();
            if distinct.len() != delivered.len() {
                return Err(format!("exit of {pid} delivered twice to one port: {delivered:?}"));
            }
        }
        let list = &self.lists[cpu as usize];
        if lists_after.is_none() {
            // send_cpu_listeners(): every listener, in list order, whose port is open and
            // whose queue has room.
            let mut queues = self.ports.clone();
            let mut expect = Vec::new();
            for p in list {
                if let Some(q) = queues.get_mut(p).filter(|q| **q < self.queue_max) {
                    *q += 1;
                    expect.push(*p);
                }
            }
            if delivered != expect {
                return Err(format!(
                    "exit of {pid} on cpu {cpu} reached {delivered:?}; list {list:?} says {expect:?}"
                ));
            }
        }
        for port in delivered {
            if let Some(q) = self.ports.get_mut(port) {
                *q += 1;
            }
        }
        match lists_after {
            Some(lists) => self.lists = lists.clone(),
            None => {
                // The pruning: entries of ports that refused are gone.
                let ports = &self.ports;
                self.lists[cpu as usize].retain(|p| ports.contains_key(p));
            }
        }
        for port in closed {
            self.ports.remove(port);
        }
        Ok(())
    }

    /// A request's errno and replies against what the seed returns for its facts.
    fn check_request(
        &self,
        op: &Op,
        facts: &RequestFacts,
        error: Option<i32>,
        replies: &[Vec<u8>],
    ) -> Result<(), String> {
        let (expect, fallible, replies_expect): (Result<(), Errno>, bool, usize) = match op {
            Op::Register { mask, .. } | Op::Deregister { mask, .. } => {
                (self.cpumask_errno(facts, &mask.text()), true, 0)
            }
            Op::QueryPid { .. } | Op::QueryTgid { .. } => {
                if self.fixes.on(crate::fixes::ADMIN_PERM) && !facts.capable {
                    (Err(Errno::EPERM), false, 0)
                } else if facts.target_exists {
                    (Ok(()), true, 1)
                } else {
                    (Err(Errno::ESRCH), true, 0)
                }
            }
            Op::CgroupStats { .. } => {
                if !self.fixes.on(crate::fixes::CGROUPSTATS) {
                    (Err(Errno::EOPNOTSUPP), false, 0)
                } else {
                    match facts.fd_is_cgroup {
                        None => (Ok(()), false, 0),
                        Some(false) => (Err(Errno::EINVAL), true, 0),
                        Some(true) => (Ok(()), true, 1),
                    }
                }
            }
            _ => return Ok(()),
        };
        let expect_code = expect.err().map_or(0, |e| e.to_kernel_return());
        // A full receive queue drops replies and acks; an injected fault may end in ENOMEM.
        let queue_may_fill = facts.queued + 2 > self.queue_max;
        let enomem_ok = self.faults && fallible;
        match error {
            None if queue_may_fill => Ok(()),
            None => Err(format!("no ack came back (expected {expect_code}); facts {facts:?}")),
            Some(code) if code == expect_code => {
                if replies.len() != replies_expect && !queue_may_fill {
                    return Err(format!("{} replies, expected {replies_expect}", replies.len()));
                }
                for reply in replies {
                    let hdr = NlMsgHdr::parse(reply).ok_or("short reply")?;
                    if hdr.len as usize != reply.len() || hdr.kind != TASKSTATS_FAMILY_ID || hdr.seq != 7 {
                        return Err(format!("bad reply header {hdr:?} for {} bytes", reply.len()));
                    }
                }
                Ok(())
            }
            Some(code) if code == Errno::ENOMEM.to_kernel_return() && enomem_ok => Ok(()),
            Some(code) if code == Errno::EAGAIN.to_kernel_return() && queue_may_fill => Ok(()),
            Some(code) => Err(format!("errno {code}, the seed returns {expect_code}; facts {facts:?}")),
        }
    }
}
