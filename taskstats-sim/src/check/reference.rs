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
#[derive(Debug)]
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
            (Op::Exit { .. }, Outcome::Exited { pid, cpu, delivered, closed, clones, pruned, lists_after }) => {
                let walk = ExitWalk { pid: *pid, cpu: *cpu, delivered, clones: *clones, pruned: *pruned };
                self.check_exit(&walk, closed, lists_after.as_ref())
            }
            (_, Outcome::Request { facts, error, replies, port, lists_after }) => {
                self.mirror_listeners(op, *port, *error, lists_after.as_ref());
                self.check_request(op, facts, *error, replies)
            }
            _ => Ok(()),
        }
    }
}

/// What an exit did, as the checker saw it.
struct ExitWalk<'a> {
    pid: u32,
    cpu: u32,
    delivered: &'a [u32],
    clones: (u64, bool),
    pruned: usize,
}

impl TaskstatsModel {
    /// An exit's deliveries against send_cpu_listeners() on the reference lists and queues:
    /// the walk clones the record for every listener but the last; a failed clone (the fault
    /// injector says which call) ends the walk before that listener; the listeners walked
    /// whose port is gone are pruned, the others stay. Then the ports the group's death closed.
    fn check_exit(
        &mut self,
        walk: &ExitWalk<'_>,
        closed: &[u32],
        lists_after: Option<&Vec<Vec<u32>>>,
    ) -> Result<(), String> {
        let (pid, delivered) = (walk.pid, walk.delivered);
        if self.fixes.on(crate::fixes::DUPLICATE_LISTENER_CHECK) {
            let distinct: BTreeSet<_> = delivered.iter().collect();
            if distinct.len() != delivered.len() {
                return Err(format!("exit of {pid} delivered twice to one port: {delivered:?}"));
            }
        }
        match lists_after {
            Some(lists) => {
                for port in delivered {
                    if let Some(q) = self.ports.get_mut(port) {
                        *q += 1;
                    }
                }
                self.lists = lists.clone();
            }
            None => self.judge_walk(walk)?,
        }
        for port in closed {
            self.ports.remove(port);
        }
        Ok(())
    }

    /// send_cpu_listeners() on the reference state, for an exit with no fault but clones'.
    fn judge_walk(&mut self, walk: &ExitWalk<'_>) -> Result<(), String> {
        let (pid, cpu) = (walk.pid, walk.cpu);
        let list = self.lists[cpu as usize].clone();
        let n = list.len();
        let (attempts, failed) = walk.clones;
        // Listeners reached: all of them, or those before the listener whose clone failed.
        let walked = match (n, failed) {
            (0, _) if attempts == 0 => 0,
            (_, false) if attempts as usize == n.saturating_sub(1) => n,
            (_, true) if attempts >= 1 && (attempts as usize) < n => attempts as usize - 1,
            _ => {
                return Err(format!(
                    "exit of {pid} on cpu {cpu}: {attempts} skb_clone calls (one failed: {failed}) for {n} listeners; \
                     send_cpu_listeners() clones once per listener but the last and stops at a failed clone"
                ))
            }
        };
        let mut expect = Vec::new();
        let mut refused = 0;
        for p in &list[..walked] {
            match self.ports.get_mut(p) {
                Some(q) if *q < self.queue_max => {
                    *q += 1;
                    expect.push(*p);
                }
                Some(_) => {}
                None => refused += 1,
            }
        }
        if walk.delivered != expect {
            return Err(format!(
                "exit of {pid} on cpu {cpu} reached {:?}; list {list:?} walked to {walked} says {expect:?}",
                walk.delivered
            ));
        }
        if walk.pruned != refused {
            return Err(format!(
                "exit of {pid} on cpu {cpu} pruned {} listeners; {refused} of those walked had closed ports",
                walk.pruned
            ));
        }
        // The pruning: walked entries of ports that refused are gone; unwalked ones stay.
        let ports = &self.ports;
        let mut index = 0;
        self.lists[cpu as usize].retain(|p| {
            index += 1;
            index > walked || ports.contains_key(p)
        });
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
