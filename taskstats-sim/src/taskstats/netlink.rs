//! The slice of net/netlink/af_netlink.c (ports with bounded receive queues, netlink_unicast,
//! netlink_rcv_skb, netlink_ack), net/netlink/genetlink.c (genl_rcv_msg, policy validation) and
//! the controller's ctrl_getfamily that the TASKSTATS family needs, plus the files that own the
//! sockets.

use super::*;

std::thread_local! {
    /// A spare buffer the next ack is written into ([`netlink_ack_into`]): the op-level
    /// driver hands back the ack it read ([`spare_ack`]), so an ack costs no allocation of its
    /// own. Only its room is reused; every ack's bytes are written anew.
    static ACK_SPARE: std::cell::Cell<Vec<u8>> = const { std::cell::Cell::new(Vec::new()) };
}

/// Gives a read message's buffer back for the next ack on this thread (see `ACK_SPARE`).
pub(crate) fn spare_ack(bytes: Vec<u8>) {
    ACK_SPARE.set(bytes);
}

/// A netlink socket's identity: its port id and its owner's credentials at open.
#[derive(Debug, Clone)]
pub(crate) struct Port {
    /// The port id (`nl_pid` / `portid`).
    pub id: u32,
    /// The owning process (tgid).
    pub owner_tgid: u32,
    /// Owner credentials at open: kuid, user namespace, pid namespace, capable(CAP_NET_ADMIN).
    pub uid: u32,
    /// Owner's user namespace.
    pub user_ns: usize,
    /// Owner's pid namespace.
    pub pid_ns: usize,
    /// `capable(CAP_NET_ADMIN)` (in init_user_ns).
    pub capable: bool,
    /// Open: true for every socket in the port table (netlink_release() takes it out); a
    /// sender that held a closed socket finds [`RxQueue::dead`] instead.
    pub open: bool,
}

impl Port {
    /// A new open socket of `task`'s process at port `id`, with the owner's credentials as
    /// they are now (the kernel records them at open and checks them at each request).
    pub(super) fn of_task(id: u32, task: &Task) -> Port {
        Port {
            id,
            owner_tgid: task.tgid,
            uid: task.uid,
            user_ns: task.user_ns,
            pid_ns: task.pid_ns(),
            capable: task.cap_net_admin && task.user_ns == 0,
            open: true,
        }
    }
}

/// The lock class of every socket's receive queue lock: skb_queue_head_init() initialises
/// `sk_receive_queue.lock` with spin_lock_init(&list->lock), whose one static key per call site
/// lockdep names by the stringified argument (2.6.19 through 3.8 show "&list->lock"; the
/// raw_spinlock split of 2.6.33 prints it as "&(&list->lock)->rlock", the same class).
pub(crate) const RX_QUEUE_CLASS: &str = "&list->lock";

/// A bound netlink socket (`struct netlink_sock`): its identity, which the port table
/// (`nl_table_lock`) indexes, and its receive queue under the socket's own
/// `sk_receive_queue.lock`. The table holds it by [`Arc`]: netlink_lookup()'s sock_hold() is a
/// clone, so a sender queues after dropping `nl_table_lock`, as the kernel does.
#[derive(Debug)]
pub(crate) struct Socket {
    /// Identity and credentials, fixed at bind.
    pub port: Port,
    /// `sk_receive_queue` and what is written beside it.
    pub rx: SpinLock<RxQueue>,
    /// `nlk->cb`: a running nlctrl dump, its request's seq and how many families it has listed
    /// (`cb->args[0]`); the reader's next recvmsg() runs its next pass. Guarded by the socket's
    /// `cb_mutex`, which for generic netlink is genl_mutex, held at every access: the std mutex
    /// only lends Rust the mutability and is never contended.
    pub dump: std::sync::Mutex<Option<(u32, usize)>>,
}

/// A socket's receive side: the queue `sk_receive_queue.lock` guards, and the fields the model
/// writes beside it.
#[derive(Debug, Default)]
pub(crate) struct RxQueue {
    /// The receive queue.
    pub queue: VecDeque<Vec<u8>>,
    /// Sends that failed because the queue was full (`sk_drops`).
    pub overruns: u64,
    /// `sk_err`: ENOBUFS after an overrun (netlink_overrun()), until a recvmsg(2) reports it.
    pub sk_err: Option<Errno>,
    /// SOCK_DEAD: the socket was released (sock_orphan()); a sender that looked it up before
    /// gets ECONNREFUSED (netlink_attachskb()).
    pub dead: bool,
}

impl Socket {
    /// A new socket of `task`'s process bound at port `id`, its queue empty.
    pub(super) fn of_task(id: u32, task: &Task) -> Arc<Socket> {
        Arc::new(Socket {
            port: Port::of_task(id, task),
            rx: SpinLock::new(RX_QUEUE_CLASS, RxQueue::default()),
            dump: std::sync::Mutex::new(None),
        })
    }

    /// The rest of netlink_release() once netlink_remove() took the socket out of the table:
    /// sock_orphan() marks it dead and the receive queue is purged (skb_queue_purge(), under
    /// `sk_receive_queue.lock` taken with spin_lock_irqsave()).
    pub(super) fn release(&self, cx: &Cx) {
        let mut rx = self.rx.lock_irqsave(cx);
        rx.dead = true;
        rx.queue.clear();
    }

    /// The running dump's state (`nlk->cb`); the caller holds genl_mutex.
    fn dump(&self) -> std::sync::MutexGuard<'_, Option<(u32, usize)>> {
        self.dump.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The identity and queue length, for a checker through observer context `cx`.
    fn observed(&self, cx: &Cx) -> (Port, usize) {
        (self.port.clone(), self.rx.observe(cx, |rx| rx.queue.len()))
    }
}

/// `struct genl_info`, as far as the doits read it.
pub(super) struct Info<'a> {
    pub(super) port: u32,
    /// The requester's socket as netlink_request() found it (`NETLINK_CB(skb).sk`).
    pub(super) socket: &'a Port,
    pub(super) seq: u32,
    pub(super) msg: &'a [u8],
    pub(super) attrs: &'a AttrTable,
    /// The observer context netlink_request() reached the sender's own socket through, which
    /// the checker's audit of a reply reads the task table through (untraced, unchecked): one
    /// per request, not one per record.
    pub(super) observer: &'a Cx,
}

impl Taskstats {
    /// open(2) by `current` (the task of `cx`) in its process: a cgroup directory or a regular
    /// file. Returns the fd.
    pub fn open_file(&self, cx: &Cx, cgroup: Option<usize>) -> Option<u32> {
        let pid = cx.task();
        let mut t = self.tasks.write_lock_irq(cx);
        let tgid = t.tasks.get(&pid)?.tgid;
        let ncg = t.cgroups.len();
        let files = t.files.entry(tgid).or_default();
        if files.len() >= 16 {
            return None;
        }
        files.push(Some(cgroup.map_or(File::Regular, |c| File::CgroupDir(c % ncg))));
        Some(files.len() as u32 - 1)
    }

    /// socket(AF_NETLINK, ..., NETLINK_GENERIC) + autobind: the process's first socket gets its
    /// tgid as port id, later ones ids counting down from 0xfffff000 (as the kernel's negative ids).
    /// Run by `current`, the task of `cx`. netlink_autobind()'s search and netlink_insert() take
    /// `nl_table_lock` for writing through netlink_table_grab(); the model does both in one hold
    /// (the kernel drops it between them and retries on EADDRINUSE, which one hold cannot meet).
    pub fn open_port(&self, cx: &Cx) -> Option<u32> {
        let task = self.current(cx)?;
        let mut ports = self.netlink_table_grab(cx);
        let id = if ports.contains_key(&task.tgid) {
            self.next_port.fetch_sub(1, Ordering::Relaxed)
        } else {
            task.tgid
        };
        ports.insert(id, Socket::of_task(id, &task));
        drop(ports);
        self.ledger().last_seq.retain(|&(port, _), _| port != id);
        Some(id)
    }

    /// bind(2) with an explicit `nl_pid`: a socket of task `pid`'s process at port `id` (the CLI
    /// binds the port a client names). EBUSY where the kernel says EADDRINUSE (the id is taken),
    /// ESRCH if the task (`current`, the task of `cx`) is not alive. netlink_insert(), under
    /// netlink_table_grab().
    pub fn bind_port(&self, cx: &Cx, id: u32) -> Result<(), Errno> {
        let task = self.current(cx).ok_or(Errno::ESRCH)?;
        let mut ports = self.netlink_table_grab(cx);
        if ports.contains_key(&id) {
            return Err(Errno::EBUSY);
        }
        ports.insert(id, Socket::of_task(id, &task));
        drop(ports);
        self.ledger().last_seq.retain(|&(port, _), _| port != id);
        Ok(())
    }

    /// netlink_table_grab(): `nl_table_lock` for writing. 2.6.19 takes it with write_lock_bh(),
    /// 3.x with write_lock_irq(); sim-core's `RwLock` has no `_bh` variant, so every era takes
    /// it as write_lock_irq() (no model context takes the lock from softirq or irq, so lockdep
    /// sees no difference). The `nl_table_users` wait is left out: its only users,
    /// netlink_lock_table() in multicast delivery, are not modelled (TASKSTATS multicasts
    /// nothing; its listeners get unicasts).
    fn netlink_table_grab<'a>(
        &'a self,
        cx: &'a Cx,
    ) -> sim_core::rwlock::RwLockWriteGuard<'a, BTreeMap<u32, Arc<Socket>>> {
        self.ports.write_lock_irq(cx)
    }

    /// netlink_lookup(): the socket bound at `id`, found under read_lock(`nl_table_lock`) and
    /// held (sock_hold(): the `Arc`) after read_unlock().
    fn netlink_lookup(&self, cx: &Cx, id: u32) -> Option<Arc<Socket>> {
        self.ports.read_lock(cx).get(&id).cloned()
    }

    /// The socket the caller's own fd names (`sock->sk`): the kernel reaches it with no
    /// `nl_table_lock`; the model keeps sockets in the port table, so it is found through the
    /// observer context `own` (the same data, no lockdep or trace step).
    fn own_socket(&self, own: &Cx, id: u32) -> Option<Arc<Socket>> {
        self.ports.observe_read(own, |ports| ports.get(&id).cloned())
    }

    /// close(2) on a port: netlink_release(), netlink_remove() under netlink_table_grab(), then
    /// [`Socket::release`] with the table lock dropped. Later sends to it get ECONNREFUSED; its
    /// listeners stay until a send finds them, as in the kernel.
    pub fn close_port(&self, cx: &Cx, id: u32) {
        let removed = self.netlink_table_grab(cx).remove(&id);
        if let Some(socket) = removed {
            socket.release(cx);
        }
    }

    /// Open port ids, ascending (through an observer context, `nl_table_lock` is read with
    /// [`RwLock::observe_read`]).
    pub fn port_ids(&self, cx: &Cx) -> Vec<u32> {
        let ids = |ports: &BTreeMap<u32, Arc<Socket>>| ports.keys().copied().collect();
        if cx.is_observer() {
            self.ports.observe_read(cx, ids)
        } else {
            ids(&self.ports.read_lock(cx))
        }
    }

    /// The messages queued for `port`, drained without looking at `sk_err` (drivers that count
    /// deliveries themselves; a reader that must hear of drops uses [`Self::recvmsg`]). The
    /// reader's own socket, its queue under `sk_receive_queue.lock` (skb_dequeue()'s
    /// spin_lock_irqsave()).
    pub fn recv(&self, cx: &Cx, id: u32) -> Vec<Vec<u8>> {
        let own = self.observer(cx, ledger::ObserverUse::OwnSocket);
        let Some(socket) = self.own_socket(&own, id) else {
            return Vec::new();
        };
        let drained = socket.rx.lock_irqsave(cx).queue.drain(..).collect();
        drained
    }

    /// [`Self::recv`] for a driver that only counts the messages: the same lock, the queue
    /// drained, no copy of it made.
    pub fn recv_count(&self, cx: &Cx, id: u32) -> usize {
        let own = self.observer(cx, ledger::ObserverUse::OwnSocket);
        let Some(socket) = self.own_socket(&own, id) else {
            return 0;
        };
        self.recv_count_on(cx, &socket)
    }

    /// [`Self::recv_count`] on the reader's own socket as its caller holds it (the op-level
    /// driver's pick, [`Self::port_pick_socket`], nothing run since): no lookup of it again.
    pub(crate) fn recv_count_on(&self, cx: &Cx, socket: &Socket) -> usize {
        let count = socket.rx.lock_irqsave(cx).queue.drain(..).count();
        count
    }

    /// recvmsg(2) until empty, as a client reads its socket: skb_recv_datagram() first returns
    /// a pending `sk_err` (ENOBUFS after an overrun) and clears it; the next call gets the
    /// queued messages (under `sk_receive_queue.lock`, as [`Self::recv`]). EBADF for a socket
    /// that is closed.
    pub fn recvmsg(&self, cx: &Cx, id: u32) -> Result<Vec<Vec<u8>>, Errno> {
        let own = self.observer(cx, ledger::ObserverUse::OwnSocket);
        let socket = self.own_socket(&own, id).ok_or(Errno::EBADF)?;
        let mut rx = socket.rx.lock_irqsave(cx);
        if let Some(err) = rx.sk_err.take() {
            return Err(err);
        }
        Ok(rx.queue.drain(..).collect())
    }

    /// netlink_unicast() with MSG_DONTWAIT: it takes `skb` whatever the outcome (queued, or
    /// freed on an error), so the caller no longer owns it; see [`Self::queue_bytes`].
    pub(super) fn unicast(&self, cx: &Cx, id: u32, skb: SkBuff) -> Result<(), Errno> {
        let bytes = self.skbs.consume(cx, skb);
        self.queue_bytes(cx, id, bytes)
    }

    /// The queueing half of netlink_unicast(): netlink_getsockbypid()'s [`Self::netlink_lookup`]
    /// (ECONNREFUSED for no socket), then, with `nl_table_lock` dropped, netlink_attachskb()
    /// (ECONNREFUSED to a dead socket, EAGAIN when its queue is full, which netlink_overrun()
    /// also reports to the reader as ENOBUFS, `sk_err`) and netlink_sendskb()'s skb_queue_tail()
    /// under the socket's `sk_receive_queue.lock` (spin_lock_irqsave()). The model reads the
    /// queue's length (its stand-in for `sk_rmem_alloc`) in that same hold. netlink_ack()'s
    /// messages come here directly (their skbs are not booked).
    fn queue_bytes(&self, cx: &Cx, id: u32, bytes: Vec<u8>) -> Result<(), Errno> {
        let socket = self.netlink_lookup(cx, id).ok_or(Errno::ECONNREFUSED)?;
        self.queue_on(cx, &socket, bytes)
    }

    /// netlink_attachskb() and skb_queue_tail() on a socket the caller holds, `cx` taking its
    /// `sk_receive_queue.lock` (see [`Self::queue_bytes`]).
    fn queue_on(&self, cx: &Cx, socket: &Socket, bytes: Vec<u8>) -> Result<(), Errno> {
        let mut rx = socket.rx.lock_irqsave(cx);
        if rx.dead {
            return Err(Errno::ECONNREFUSED);
        }
        if rx.queue.len() >= self.params.queue_max {
            rx.overruns += 1;
            rx.sk_err = Some(Errno::ENOBUFS);
            drop(rx);
            self.mark(cx, "port-overrun");
            return Err(Errno::EAGAIN);
        }
        rx.queue.push_back(bytes);
        Ok(())
    }

    /// The owning process and queue length of port `id`. Through an observer context (the
    /// checker's) the table and the queue are read with [`RwLock::observe_read`] and
    /// [`SpinLock::observe`]: no lock round trip between operations of the op-level simulation;
    /// a model context takes `nl_table_lock` (netlink_lookup()) and then the queue's lock.
    pub fn port_owner(&self, cx: &Cx, id: u32) -> Option<(u32, usize)> {
        if cx.is_observer() {
            let socket = self.ports.observe_read(cx, |ports| ports.get(&id).cloned())?;
            return Some((socket.port.owner_tgid, socket.rx.observe(cx, |rx| rx.queue.len())));
        }
        let socket = self.netlink_lookup(cx, id)?;
        let queued = socket.rx.lock_irqsave(cx).queue.len();
        Some((socket.port.owner_tgid, queued))
    }

    /// The task that sends on port `id` for the checker and the CLI: the lowest live thread of
    /// the owning process, with its CPU (None: no such port, or its process has no live thread).
    /// `cx` is an observer context (the port table and the task table are looked at as
    /// [`Self::port`] and [`Self::with_task_table`] do: no lock round trip between operations).
    pub fn port_sender(&self, cx: &Cx, id: u32) -> Option<(u32, u32)> {
        let p = self.port(cx, id).filter(|p| p.open)?;
        self.with_task_table(cx, |t| {
            t.by_pid()
                .find(|t| t.tgid == p.owner_tgid && t.exit_state() == ExitState::None)
                .map(|t| (t.pid, t.cpu()))
        })
    }

    /// What fd `fd` of process `tgid` is: None if not open, Some(true) for a cgroup directory.
    pub fn fd_kind(&self, cx: &Cx, tgid: u32, fd: u32) -> Option<bool> {
        self.tasks.read_lock(cx).fd_is_cgroup(tgid, fd)
    }

    /// Port `id`'s identity and credentials, its receive queue left behind: the callers read
    /// only those. Every caller reads through an observer context:
    /// [`RwLock::observe_read`] of `nl_table_lock`.
    pub(super) fn port(&self, cx: &Cx, id: u32) -> Option<Port> {
        self.ports.observe_read(cx, |ports| ports.get(&id).map(|s| s.port.clone()))
    }

    /// Port `id`'s identity (see [`Self::port`]) and how many messages wait in its receive
    /// queue (for the sender's own socket, read by an observer context: see
    /// [`Self::netlink_request`]).
    // Out of line: threaded requests alone look the port up here; inlined, its code sat among
    // netlink_request_seen()'s hot instructions (session 27's count of the cache lines an op
    // fetches).
    #[inline(never)]
    fn port_and_queued(&self, cx: &Cx, id: u32) -> Option<(Port, usize)> {
        self.own_socket(cx, id).map(|socket| socket.observed(cx))
    }

    /// The byte-level entry point: `bytes` as written by `sendmsg(2)` on port `port` (one or more
    /// netlink messages), processed as netlink_rcv_skb() + genl_rcv_msg() would. Returns every
    /// message delivered to that port during the call (replies, then the ack or error), in order,
    /// without leaving them in its queue. Exit events queued earlier stay queued (see [`Self::recv`]).
    /// A port that is not open, or that is not a socket of the sender's process (`current`, the
    /// task of `cx`; see [`Self::port_sender`]), gets nothing back.
    pub fn netlink_request(&self, cx: &Cx, port: u32, bytes: &[u8]) -> Vec<Vec<u8>> {
        // netlink_sendmsg() starts from the sender's own socket (`sock->sk`, from its fd): no
        // nl_table_lock, which only netlink_lookup() takes (once per unicast, below). The model
        // keeps sockets in the port table behind that lock, so the sender's own socket is
        // reached through an observer context (Self::own_socket): the same data, no lockdep or
        // trace step. The reader's recvmsg() at the end takes its queue's lock as `cx`.
        let own = self.observer(cx, ledger::ObserverUse::OwnSocket);
        let (delivered, last) = self.netlink_request_seen(cx, &own, None, port, bytes);
        let mut delivered = delivered.into_vec();
        delivered.extend(last);
        delivered
    }

    /// The port `index` picks (as [`Self::port_pick`]), its identity and how many messages
    /// wait in its queue, in one look: the op-level driver's first read of a request, which it
    /// hands to [`Self::netlink_request_seen`] as the sender's socket. `cx` is the driver's
    /// observer: no lock round trip between operations of the op-level simulation
    /// ([`RwLock::observe_read`], [`SpinLock::observe`]).
    ///
    /// The socket itself is handed on (the sender's `sock->sk`, held as its fd holds it), not a
    /// copy of its identity: netlink_request_seen() reads its queue through it at the end.
    pub(crate) fn port_pick_socket(&self, cx: &Cx, index: u8) -> Option<(Arc<Socket>, usize)> {
        let socket = self.ports.observe_read(cx, |ports| {
            super::invariants::pick_port(ports, index).map(|(_, socket)| socket.clone())
        })?;
        let queued = socket.rx.observe(cx, |rx| rx.queue.len());
        Some((socket, queued))
    }

    /// [`Self::netlink_request`] with the sender's own socket reached through the caller's
    /// observer context `own`, and `socket`, the socket and its queue length, when the caller
    /// has just read them through it (the op-level driver, nothing run since: see
    /// [`Self::port_pick_socket`]); None reads them here. The messages come back as those
    /// before the last, in order, and the last apart: most requests get an ack alone, which
    /// then costs no vector (and a query's one reply before its ack no heap vector:
    /// [`Replies`]).
    pub(crate) fn netlink_request_seen(
        &self,
        cx: &Cx,
        own: &Cx,
        socket: Option<(&Socket, usize)>,
        port: u32,
        bytes: &[u8],
    ) -> (Replies, Option<Vec<u8>>) {
        // One look at the socket: its identity, and where this call's messages will start.
        let looked;
        let (p, queued_before) = match socket {
            Some((seen, queued)) => (&seen.port, queued),
            None => {
                let Some(found) = self.port_and_queued(own, port) else {
                    return (Replies::new(), None);
                };
                looked = found;
                (&looked.0, looked.1)
            }
        };
        if !p.open || p.id != port {
            return (Replies::new(), None);
        }
        let Some(current) = self.current(cx).filter(|t| t.tgid == p.owner_tgid) else {
            return (Replies::new(), None);
        };
        if self.genl_rcv(cx, own, &current, p, bytes) {
            self.netlink_dump_on_recvmsg(cx, own, port);
        }
        self.take_replies(cx, own, socket, port, queued_before)
    }

    /// Mirrors genl_rcv(): genl_lock() held around netlink_rcv_skb(), which walks the write's
    /// messages while a header fits, passes each request to [`Self::genl_rcv_msg`] and queues
    /// an ack when asked for one or when the message failed. True when a message started a dump
    /// (EINTR, which sends no ack): the caller runs it as its recvmsg() would.
    fn genl_rcv(&self, cx: &Cx, own: &Cx, current: &Task, p: &Port, bytes: &[u8]) -> bool {
        let _genl_lock = self.genl_mutex.lock(cx);
        let (mut at, mut dumping) = (0usize, false);
        while bytes.len() - at >= NLMSG_HDRLEN {
            let Some(hdr) = NlMsgHdr::parse(&bytes[at..]) else { break };
            let len = hdr.len as usize;
            if len < NLMSG_HDRLEN || bytes.len() - at < len {
                break;
            }
            let msg = &bytes[at..at + len];
            let err = if hdr.flags & NLM_F_REQUEST == 0 || hdr.kind < NLMSG_MIN_TYPE {
                None
            } else {
                self.genl_rcv_msg(cx, own, current, p, msg, &hdr).err()
            };
            if err == Some(Errno::EINTR) {
                dumping = true;
            } else if hdr.flags & NLM_F_ACK != 0 || err.is_some() {
                let ack = netlink_ack_into(ACK_SPARE.take(), msg, &hdr, p.id, err);
                let _ = self.queue_bytes(cx, p.id, ack);
            }
            at += align4(len).min(bytes.len() - at);
        }
        dumping
    }

    /// The reader's recvmsg() after [`Self::netlink_request_seen`]'s write: the messages queued
    /// past `queued_before` on its own socket, under sk_receive_queue.lock, the last apart. The
    /// op-level driver's `socket` is the one its fd names (nothing else ran to close it: an exit
    /// preempting a query is another task's, whose group the live requester keeps alive);
    /// without it, the socket is looked up again (a threaded close may have run).
    fn take_replies(
        &self,
        cx: &Cx,
        own: &Cx,
        socket: Option<(&Socket, usize)>,
        port: u32,
        queued_before: usize,
    ) -> (Replies, Option<Vec<u8>>) {
        let again;
        let socket = match socket {
            Some((seen, _)) => seen,
            None => match self.own_socket(own, port) {
                Some(found) => {
                    again = found;
                    &*again
                }
                None => return (Replies::new(), None),
            },
        };
        let mut rx = socket.rx.lock_irqsave(cx);
        if rx.queue.len() <= queued_before {
            return (Replies::new(), None);
        }
        let last = rx.queue.pop_back();
        let mut replies = Replies::new();
        replies.extend(rx.queue.drain(queued_before..));
        (replies, last)
    }

    /// Mirrors genl_rcv_msg() for the TASKSTATS family: family lookup (ENOENT), header length
    /// (EINVAL), command lookup (EOPNOTSUPP), GENL_ADMIN_PERM (EPERM), dump (EOPNOTSUPP; nlctrl's
    /// is [`Self::ctrl_dumpfamily`]),
    /// nlmsg_parse against the op's policy, then the doit.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn genl_rcv_msg(
        &self,
        cx: &Cx,
        observer: &Cx,
        current: &Task,
        socket: &Port,
        msg: &[u8],
        hdr: &NlMsgHdr,
    ) -> Result<(), Errno> {
        let port = socket.id;
        if hdr.kind == GENL_ID_CTRL {
            return self.ctrl_getfamily(cx, observer, port, msg, hdr);
        }
        if hdr.kind != TASKSTATS_FAMILY_ID {
            return Err(Errno::ENOENT);
        }
        if msg.len() < NLMSG_HDRLEN + GENL_HDRLEN {
            return Err(Errno::EINVAL);
        }
        let cmd = msg[NLMSG_HDRLEN];
        let is_cgroup = cmd == CGROUPSTATS_CMD_GET && self.fixes.on(crate::fixes::CGROUPSTATS);
        if cmd != TASKSTATS_CMD_GET && !is_cgroup {
            return Err(Errno::EOPNOTSUPP);
        }
        let capable = current.cap_net_admin && current.user_ns == 0;
        if cmd == TASKSTATS_CMD_GET && self.fixes.on(crate::fixes::ADMIN_PERM) && !capable {
            cx.note("genl_rcv_msg: GENL_ADMIN_PERM and no CAP_NET_ADMIN");
            self.mark(cx, "eperm");
            return Err(Errno::EPERM);
        }
        if hdr.flags & NLM_F_DUMP == NLM_F_DUMP {
            return Err(Errno::EOPNOTSUPP);
        }
        let policy = move |kind: u16| -> Option<NlaType> {
            if is_cgroup {
                (kind == CGROUPSTATS_CMD_ATTR_FD).then_some(NlaType::U32)
            } else {
                match kind {
                    TASKSTATS_CMD_ATTR_PID | TASKSTATS_CMD_ATTR_TGID => Some(NlaType::U32),
                    TASKSTATS_CMD_ATTR_REGISTER_CPUMASK | TASKSTATS_CMD_ATTR_DEREGISTER_CPUMASK => {
                        Some(NlaType::String)
                    }
                    _ => None,
                }
            }
        };
        // nlmsg_parse() into the table the doits read in place (not moved into `Info`).
        let mut attrs = AttrTable::new(TASKSTATS_CMD_ATTR_MAX);
        nla_parse_into(msg, NLMSG_HDRLEN + GENL_HDRLEN, msg.len(), &policy, &mut attrs)?;
        if is_cgroup && !self.fixes.on(crate::fixes::CGROUPSTATS_POLICY_LEN) {
            self.policy_out_of_bounds(cx, &attrs);
        }
        let info = Info { port, socket, seq: hdr.seq, msg, attrs: &attrs, observer };
        if is_cgroup {
            self.cgroupstats_user_cmd(cx, current, &info)
        } else {
            self.taskstats_user_cmd(cx, current, &info)
        }
    }

    /// Before "taskstats: fix the length of cgroupstats_cmd_get_policy": the family's maxattr
    /// is TASKSTATS_CMD_ATTR_MAX (4) but the cgroupstats policy has CGROUPSTATS_CMD_ATTR_MAX + 1
    /// (2) entries, so validate_nla() looks up `policy[type]` past the array for every attribute
    /// of type 2..4. The model treats what it read as no policy (the bytes past the array are
    /// other static data) and the checker reports the read, as KASAN would.
    pub(super) fn policy_out_of_bounds(&self, cx: &Cx, attrs: &[Option<Attr>]) {
        let Some(kind) = (2..=TASKSTATS_CMD_ATTR_MAX).find(|&t| attrs[usize::from(t)].is_some()) else {
            return;
        };
        cx.note(format!("nla_parse: cgroupstats_cmd_get_policy[{kind}] is past the array's 2 entries"));
        self.mark(cx, "cgroupstats-policy-oob");
        if self.checks(crate::fixes::CGROUPSTATS_POLICY_LEN) {
            cx.sim().report(
                Some(cx),
                Violation::new(
                    ViolationKind::finding("global-out-of-bounds"),
                    format!(
                        "CGROUPSTATS_CMD_GET with attribute type {kind}: validate_nla() reads \
                         cgroupstats_cmd_get_policy[{kind}], past its 2 entries (the family's maxattr is 4)"
                    ),
                ),
            );
        }
    }

    /// Mirrors the `nlctrl` family's ctrl_getfamily() for the one family the model registers,
    /// so a client resolves "TASKSTATS" as it would on a kernel (getdelays does this first):
    /// EOPNOTSUPP for another command; a dump goes to [`Self::ctrl_dumpfamily`] before any
    /// attribute is parsed, as genl_rcv_msg() starts it; `ctrl_policy` types `CTRL_ATTR_FAMILY_ID`
    /// as NLA_U16 and the name as a NUL-terminated string; the id lookup runs first and the name
    /// lookup after it replaces its result, so the name wins when both are given; neither is
    /// EINVAL, a miss ENOENT. The reply carries id, name, version, header size, maxattr and the ops.
    ///
    /// `own` reaches the requester's own socket (its dump state, `nlk->cb`), as
    /// [`Self::netlink_request`] does: no nl_table_lock, which only netlink_lookup() takes.
    // Out of line: only raw bytes spell an nlctrl request; inlined, its code sat among genl_rcv()'s
    // hot instructions (session 27's count of the cache lines an op fetches).
    #[inline(never)]
    pub(super) fn ctrl_getfamily(
        &self,
        cx: &Cx,
        own: &Cx,
        port: u32,
        msg: &[u8],
        hdr: &NlMsgHdr,
    ) -> Result<(), Errno> {
        if msg.len() < NLMSG_HDRLEN + GENL_HDRLEN {
            return Err(Errno::EINVAL);
        }
        if msg[NLMSG_HDRLEN] != CTRL_CMD_GETFAMILY {
            return Err(Errno::EOPNOTSUPP);
        }
        if hdr.flags & NLM_F_DUMP == NLM_F_DUMP {
            return self.ctrl_dumpfamily(cx, own, port, hdr);
        }
        let policy = |kind: u16| match kind {
            CTRL_ATTR_FAMILY_ID => Some(NlaType::U16),
            CTRL_ATTR_FAMILY_NAME => Some(NlaType::NulString(GENL_NAMSIZ - 1)),
            _ => None,
        };
        let attrs = nla_parse(msg, NLMSG_HDRLEN + GENL_HDRLEN, msg.len(), CTRL_ATTR_OPS, &policy)?;
        // genl_family_find_byid(), then genl_family_find_byname() overriding it.
        let families = self.genl_families();
        let mut found = None;
        if let Some(a) = attrs[usize::from(CTRL_ATTR_FAMILY_ID)] {
            let id = a.get_u16(msg);
            found = Some(families.iter().find(|f| f.id == id));
        }
        if let Some(a) = attrs[usize::from(CTRL_ATTR_FAMILY_NAME)] {
            let data = a.data(msg);
            let end = data.iter().position(|&c| c == 0).unwrap_or(data.len());
            found = Some(families.iter().find(|f| *f.name.as_bytes() == data[..end]));
        }
        let family = found.ok_or(Errno::EINVAL)?.ok_or(Errno::ENOENT)?;
        let reply = self.ctrl_build_family_msg(cx, family, hdr.seq, port)?;
        self.unicast(cx, port, reply)
    }

    /// The families registered with genetlink, in the order ctrl_dumpfamily() walks them
    /// (`family_ht` chain `id % GENL_FAM_TAB_SIZE`: nlctrl's 0x10 in chain 0, TASKSTATS's 0x11 in
    /// chain 1), each as ctrl_fill_info() reads its `struct genl_family` and ops.
    fn genl_families(&self) -> [GenlFamily; 2] {
        let v3 = self.fixes.on(crate::fixes::TASKSTATS_V8);
        let admin = if self.fixes.on(crate::fixes::ADMIN_PERM) { GENL_ADMIN_PERM } else { 0 };
        let mut ops = vec![(TASKSTATS_CMD_GET, admin | GENL_CMD_CAP_DO | GENL_CMD_CAP_HASPOL)];
        if self.fixes.on(crate::fixes::CGROUPSTATS) {
            ops.push((CGROUPSTATS_CMD_GET, GENL_CMD_CAP_DO | GENL_CMD_CAP_HASPOL));
        }
        // nlctrl's one op has a doit, a dumpit and ctrl_policy; its "notify" multicast group
        // (id GENL_ID_CTRL) and CTRL_ATTR_MCAST_GROUPS as CTRL_ATTR_MAX came with 2.6.23.
        let nlctrl = GenlFamily {
            id: GENL_ID_CTRL,
            name: GENL_CTRL_NAME,
            version: u32::from(GENL_CTRL_VERSION),
            maxattr: u32::from(if v3 { CTRL_ATTR_MCAST_GROUPS } else { CTRL_ATTR_OPS }),
            ops: vec![(CTRL_CMD_GETFAMILY, GENL_CMD_CAP_DO | GENL_CMD_CAP_DUMP | GENL_CMD_CAP_HASPOL)],
            mcast_groups: if v3 { vec![(u32::from(GENL_ID_CTRL), "notify")] } else { Vec::new() },
        };
        let taskstats = GenlFamily {
            id: TASKSTATS_FAMILY_ID,
            name: TASKSTATS_GENL_NAME,
            version: u32::from(TASKSTATS_GENL_VERSION),
            maxattr: u32::from(TASKSTATS_CMD_ATTR_MAX),
            ops,
            mcast_groups: Vec::new(),
        };
        [nlctrl, taskstats]
    }

    /// Mirrors netlink_dump_start() for nlctrl's ctrl_dumpfamily(): EBUSY while the socket
    /// has a dump running, else the dump is recorded on the socket (`nlk->cb`) and its first
    /// pass runs ([`Self::netlink_dump`]). Returns EINTR, which netlink_rcv_skb() takes as
    /// "started a dump": no ack. The socket's `nlk->cb` is guarded by its `cb_mutex`
    /// (genl_mutex, held), not by nl_table_lock: the model reaches it through `own`.
    fn ctrl_dumpfamily(&self, cx: &Cx, own: &Cx, port: u32, hdr: &NlMsgHdr) -> Result<(), Errno> {
        {
            let socket = self.own_socket(own, port).ok_or(Errno::ECONNREFUSED)?;
            let mut dump = socket.dump();
            if dump.is_some() {
                return Err(Errno::EBUSY);
            }
            *dump = Some((hdr.seq, 0));
        }
        self.netlink_dump(cx, own, port);
        Err(Errno::EINTR)
    }

    /// The reader's recvmsg() after a write that started a dump: netlink_dump() under the
    /// family's `cb_mutex` (genl_mutex) until the dump is over, as a client reading its socket
    /// until NLMSG_DONE makes it run.
    fn netlink_dump_on_recvmsg(&self, cx: &Cx, own: &Cx, port: u32) {
        loop {
            let genl_lock = self.genl_mutex.lock(cx);
            let running = self.netlink_dump(cx, own, port);
            drop(genl_lock);
            if !running {
                return;
            }
        }
    }

    /// Mirrors netlink_dump() with ctrl_dumpfamily() as the dumpit: an skb of NLMSG_GOODSIZE
    /// filled with one CTRL_CMD_NEWFAMILY message (NLM_F_MULTI) per family not yet listed while
    /// they fit, and queued; a pass that finds nothing left queues NLMSG_DONE (NLM_F_MULTI, the
    /// dump's return 0 as payload) and ends the dump. An skb that cannot be allocated sets
    /// `sk_err` (ENOBUFS), which the model's reader takes as the end of its reading, so the dump
    /// ends there (the kernel keeps `nlk->cb` for a later recvmsg). Returns whether the dump
    /// still runs. The socket is the reader's own (`own`, as in [`Self::netlink_request`]): the
    /// dump state is `cb_mutex`'s (held), the skb goes onto its own receive queue
    /// (__netlink_sendskb(), no netlink_lookup(); its `sk_receive_queue.lock` taken by `cx`), so no
    /// step takes nl_table_lock.
    fn netlink_dump(&self, cx: &Cx, own: &Cx, port: u32) -> bool {
        let Some((seq, mut skipped)) = self.own_socket(own, port).and_then(|s| *s.dump()) else {
            return false;
        };
        let families = self.genl_families();
        let skb = self.dump_skb(cx, own, port);
        let mut running = skb.is_some();
        if let Some(mut skb) = skb {
            for family in &families[skipped..] {
                if self.ctrl_fill_info(&mut skb, family, seq, port, NLM_F_MULTI).is_err() {
                    break;
                }
                skb.genlmsg_end();
                skipped += 1;
            }
            if skb.len() == 0 {
                running = false;
                if skb.nlmsg_put(NLMSG_DONE, seq, port, NLM_F_MULTI, 4).is_err() {
                    self.skbs.kfree_skb(cx, skb);
                    return self.dump_ended(own, port);
                }
                skb.genlmsg_end();
            }
            self.mark(cx, "ctrl-dumpfamily");
            let bytes = self.skbs.consume(cx, skb);
            // skb_queue_tail() on the reader's own socket: its queue lock, taken by the reader.
            if let Some(socket) = self.own_socket(own, port) {
                let _ = self.queue_on(cx, &socket, bytes);
            }
        }
        if !running {
            return self.dump_ended(own, port);
        }
        if let Some(socket) = self.own_socket(own, port) {
            *socket.dump() = Some((seq, skipped));
        }
        true
    }

    /// The end of a dump: the socket's `nlk->cb` released (through the reader's `own`
    /// context). Returns false (no longer running).
    fn dump_ended(&self, own: &Cx, port: u32) -> bool {
        if let Some(socket) = self.own_socket(own, port) {
            *socket.dump() = None;
        }
        false
    }

    /// netlink_dump()'s alloc_skb(NLMSG_GOODSIZE): on failure the requester's `sk_err` is ENOBUFS
    /// (its own socket's field, written through `own`).
    fn dump_skb(&self, cx: &Cx, own: &Cx, port: u32) -> Option<SkBuff> {
        let geometry = SkbGeometry::of_era(self.fixes.on(crate::fixes::TASKSTATS_V8));
        let size = geometry.nlmsg_goodsize();
        let skb = self.skbs.alloc_skb(cx, geometry, size, Gfp::GFP_KERNEL, "netlink_dump", 256).ok();
        if skb.is_none() {
            if let Some(socket) = self.own_socket(own, port) {
                socket.rx.lock(own).sk_err = Some(Errno::ENOBUFS);
            }
        }
        skb
    }

    /// Mirrors ctrl_build_family_msg() with ctrl_fill_info(): nlmsg_new(NLMSG_DEFAULT_SIZE)
    /// (ENOBUFS when it fails), then the family's description; a fill that does not fit frees
    /// the skb and is EMSGSIZE.
    fn ctrl_build_family_msg(
        &self,
        cx: &Cx,
        family: &GenlFamily,
        seq: u32,
        port: u32,
    ) -> Result<SkBuff, Errno> {
        let geometry = SkbGeometry::of_era(self.fixes.on(crate::fixes::TASKSTATS_V8));
        let size = geometry.nlmsg_goodsize();
        let Ok(mut reply) =
            self.skbs.alloc_skb(cx, geometry, size, Gfp::GFP_KERNEL, "ctrl_build_family_msg", 256)
        else {
            return Err(Errno::ENOBUFS);
        };
        match self.ctrl_fill_info(&mut reply, family, seq, port, 0) {
            Ok(()) => {
                reply.genlmsg_end();
                Ok(reply)
            }
            Err(err) => {
                self.skbs.kfree_skb(cx, reply);
                Err(err)
            }
        }
    }

    /// Mirrors ctrl_fill_info(): a CTRL_CMD_NEWFAMILY message with the name, id, version,
    /// header size and maxattr, the ops (a nest per op: id and flags) and, where the family has
    /// any, its multicast groups (a nest per group: id and name). EMSGSIZE when the skb is full
    /// (the kernel cancels the partial message; a caller here drops or frees the skb).
    fn ctrl_fill_info(
        &self,
        reply: &mut SkBuff,
        family: &GenlFamily,
        seq: u32,
        port: u32,
        flags: u16,
    ) -> Result<(), Errno> {
        reply.genlmsg_put_flags(GENL_ID_CTRL, seq, port, flags, CTRL_CMD_NEWFAMILY, GENL_CTRL_VERSION)?;
        let mut name = family.name.as_bytes().to_vec();
        name.push(0);
        reply.nla_put(CTRL_ATTR_FAMILY_NAME, &name)?;
        reply.nla_put_u16(CTRL_ATTR_FAMILY_ID, family.id)?;
        reply.nla_put_u32(CTRL_ATTR_VERSION, family.version)?;
        reply.nla_put_u32(CTRL_ATTR_HDRSIZE, 0)?;
        reply.nla_put_u32(CTRL_ATTR_MAXATTR, family.maxattr)?;
        reply.nla_nest_start(CTRL_ATTR_OPS)?;
        for (index, &(cmd, op_flags)) in family.ops.iter().enumerate() {
            reply.nla_nest_start(index as u16 + 1)?;
            reply.nla_put_u32(CTRL_ATTR_OP_ID, u32::from(cmd))?;
            reply.nla_put_u32(CTRL_ATTR_OP_FLAGS, op_flags)?;
            reply.nla_nest_end();
        }
        reply.nla_nest_end();
        if family.mcast_groups.is_empty() {
            return Ok(());
        }
        reply.nla_nest_start(CTRL_ATTR_MCAST_GROUPS)?;
        for (index, &(id, group)) in family.mcast_groups.iter().enumerate() {
            reply.nla_nest_start(index as u16 + 1)?;
            reply.nla_put_u32(CTRL_ATTR_MCAST_GRP_ID, id)?;
            let mut name = group.as_bytes().to_vec();
            name.push(0);
            reply.nla_put(CTRL_ATTR_MCAST_GRP_NAME, &name)?;
            reply.nla_nest_end();
        }
        reply.nla_nest_end();
        Ok(())
    }
}

/// A registered generic netlink family as ctrl_fill_info() describes it (`struct genl_family`,
/// its ops' commands and capability flags, its multicast groups' ids and names).
struct GenlFamily {
    id: u16,
    name: &'static str,
    version: u32,
    maxattr: u32,
    ops: Vec<(u8, u32)>,
    mcast_groups: Vec<(u32, &'static str)>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::task_cx;
    use sim_core::lockdep::ReportMode;
    use sim_core::SimConfig;

    fn world(preset: &str) -> (Sim, Taskstats) {
        let sim = Sim::new(SimConfig::new(3).cpus(2).lockdep(ReportMode::Collect));
        let model = Taskstats::new(&sim, Fixes::preset(preset).unwrap(), Params::default());
        (sim, model)
    }

    fn pid_request(port: u32, pid: u32) -> Vec<u8> {
        request(
            TASKSTATS_FAMILY_ID,
            NLM_F_REQUEST,
            7,
            port,
            TASKSTATS_CMD_GET,
            &[(TASKSTATS_CMD_ATTR_PID, pid.to_le_bytes().to_vec())],
        )
    }

    /// Replies, errors, exits to several listeners and a refused port: every skb allocated is
    /// freed or consumed, and the doits ran under genl_mutex (lockdep saw it before
    /// listeners->sem). tasklist_lock comes after genl_mutex only where the version's PID query
    /// takes it: 2.6.19's fill_pid() looks the task up under read_lock(&tasklist_lock); 3.x's
    /// fill_stats_for_pid() under rcu_read_lock(), and its fill takes no tasklist_lock either.
    #[test]
    fn every_skb_is_freed_or_consumed_and_doits_nest_in_genl_mutex() {
        for preset in ["linux-2.6.19", "linux-3.8"] {
            let (sim, model) = world(preset);
            let cx = task_cx(&sim, &model, 1, "init");
            let thread = model.fork(&cx, ForkKind::Thread).unwrap();
            let ports = [model.open_port(&cx).unwrap(), model.open_port(&cx).unwrap()];
            let mask = (TASKSTATS_CMD_ATTR_REGISTER_CPUMASK, cpumask_payload("0-1"));
            for port in ports {
                let reg = request(
                    TASKSTATS_FAMILY_ID,
                    NLM_F_REQUEST | NLM_F_ACK,
                    7,
                    port,
                    TASKSTATS_CMD_GET,
                    std::slice::from_ref(&mask),
                );
                assert_eq!(model.netlink_request(&cx, port, &reg).len(), 1, "{preset}: the ack");
            }
            assert_eq!(model.netlink_request(&cx, ports[0], &pid_request(ports[0], 1)).len(), 1);
            let miss = model.netlink_request(&cx, ports[0], &pid_request(ports[0], 999));
            assert_eq!(u32_at(&miss[0], 16) as i32, Errno::ESRCH.to_kernel_return(), "{preset}");
            let tcx = task_cx(&sim, &model, thread, "thread");
            let report = model.exit(&tcx).unwrap();
            assert_eq!(report.delivered.len(), 2, "{preset}: both listeners got the exit");
            model.close_port(&cx, ports[1]);
            let tcx = task_cx(&sim, &model, 1, "init");
            let _ = model
                .fork(&tcx, ForkKind::Process)
                .map(|child| model.exit(&task_cx(&sim, &model, child, "child")));
            let (live, allocated) = model.skbs.counts();
            assert_eq!(live, 0, "{preset}: {allocated} skbs allocated, {live} still live");
            assert!(allocated >= 5, "{preset}: replies, the error path and the exit clones ({allocated})");
            let deps = sim.lockdep().dependencies();
            let after_genl = |inner: &str| deps.contains(&("genl_mutex".to_string(), inner.to_string()));
            assert!(after_genl("listeners->sem"), "{preset}: {deps:?}");
            let tasklist_in_query = preset == "linux-2.6.19";
            assert_eq!(after_genl("tasklist_lock"), tasklist_in_query, "{preset}: {deps:?}");
            model.teardown(&sim).unwrap();
        }
    }

    /// A reply sized short of what mk_reply() puts: EMSGSIZE, then the seed's error path. 3.x
    /// frees it and returns EINVAL; 2.6.19 (before "taskstats: fix sk_buff leak") returns
    /// genlmsg_cancel()'s -1 and keeps the skb, which teardown reports as a leak.
    #[test]
    fn a_mis_sized_reply_takes_the_seeds_error_path() {
        // 3.x: genlmsg_new(1) gets 192 bytes (kmalloc-512 less the shared info), short of one
        // 344-byte record; 2.6.19: nlmsg_new(1) gets a 128-byte line, which holds one 88-byte
        // version-1 record and its headers but not a second.
        let cases = [("linux-3.8", 0, Errno::EINVAL, false), ("linux-2.6.19", 1, Errno::EPERM, true)];
        for (preset, fit, errno, leaks) in cases {
            let (sim, model) = world(preset);
            let cx = sim.cx("t", 0);
            let stats = TaskstatsRecord::default();
            let mut msg = model.prepare_reply(&cx, None, TASKSTATS_CMD_NEW, 1).unwrap();
            let mut records = 0;
            let err = loop {
                match model.mk_reply(&mut msg, TASKSTATS_TYPE_PID, 1, &stats) {
                    Ok(()) => records += 1,
                    Err(err) => break err,
                }
            };
            assert_eq!((records, err), (fit, Errno::EMSGSIZE), "{preset}");
            assert_eq!(model.reply_failed(&cx, msg), errno, "{preset}");
            let torn = model.teardown(&sim);
            assert_eq!(torn.is_err(), leaks, "{preset}: {torn:?}");
        }
    }

    /// An nlctrl dump runs under genl_mutex (the socket's cb_mutex) and sends to the reader's
    /// own socket: the families and NLMSG_DONE come back, and no step of it took
    /// nl_table_lock (netlink_dump() has no netlink_lookup()), so lockdep saw no genl_mutex ->
    /// nl_table_lock order; a request with NLM_F_ACK (netlink_ack()'s unicast looks the
    /// sender up) makes that order.
    #[test]
    fn an_nlctrl_dump_takes_no_nl_table_lock() {
        for preset in ["linux-2.6.19", "linux-3.8"] {
            let (sim, model) = world(preset);
            let cx = task_cx(&sim, &model, 1, "init");
            let port = model.open_port(&cx).unwrap();
            let dump = request(GENL_ID_CTRL, NLM_F_REQUEST | NLM_F_DUMP, 3, port, CTRL_CMD_GETFAMILY, &[]);
            let replies = model.netlink_request(&cx, port, &dump);
            let done = replies.iter().filter(|r| u16_at(r, 4) == NLMSG_DONE).count();
            assert_eq!((replies.len(), done), (2, 1), "{preset}: one skb of both families, then DONE");
            let order = ("genl_mutex".to_string(), "nl_table_lock".to_string());
            assert!(!sim.lockdep().dependencies().contains(&order), "{preset}: the dump took nl_table_lock");
            let ack = request(GENL_ID_CTRL, NLM_F_REQUEST | NLM_F_ACK, 4, port, CTRL_CMD_GETFAMILY, &[]);
            assert!(!model.netlink_request(&cx, port, &ack).is_empty(), "{preset}: the error or ack");
            assert!(sim.lockdep().dependencies().contains(&order), "{preset}: netlink_ack()'s lookup");
            model.teardown(&sim).unwrap();
        }
    }

    /// The receive queue's lock is the socket's own, never taken under nl_table_lock nor
    /// around it (netlink_unicast() drops the table's read lock before skb_queue_tail()); an
    /// ack queued under genl_mutex orders genl_mutex before both; a socket held across its
    /// release is dead and empty, and a later unicast to its id is refused.
    #[test]
    fn the_receive_queue_lock_is_the_sockets_own_and_never_nests_with_nl_table_lock() {
        for preset in ["linux-2.6.19", "linux-3.8"] {
            let (sim, model) = world(preset);
            let cx = task_cx(&sim, &model, 1, "init");
            let port = model.open_port(&cx).unwrap();
            let ack = request(GENL_ID_CTRL, NLM_F_REQUEST | NLM_F_ACK, 4, port, CTRL_CMD_GETFAMILY, &[]);
            assert!(!model.netlink_request(&cx, port, &ack).is_empty(), "{preset}: the ack");
            let deps = sim.lockdep().dependencies();
            let has = |a: &str, b: &str| deps.contains(&(a.to_string(), b.to_string()));
            assert!(
                has("genl_mutex", "nl_table_lock") && has("genl_mutex", RX_QUEUE_CLASS),
                "{preset}: {deps:?}"
            );
            assert!(
                !has("nl_table_lock", RX_QUEUE_CLASS) && !has(RX_QUEUE_CLASS, "nl_table_lock"),
                "{preset}: {deps:?}"
            );
            let held = model.netlink_lookup(&cx, port).expect("bound");
            assert!(model.queue_bytes(&cx, port, vec![1]).is_ok(), "{preset}");
            model.close_port(&cx, port);
            let rx = held.rx.lock(&cx);
            assert!(rx.dead && rx.queue.is_empty(), "{preset}: released, purged: {rx:?}");
            drop(rx);
            assert_eq!(model.queue_bytes(&cx, port, vec![2]), Err(Errno::ECONNREFUSED), "{preset}");
            model.teardown(&sim).unwrap();
        }
    }

    /// nlctrl's reply comes from an skb of NLMSG_GOODSIZE and is consumed by the unicast.
    #[test]
    fn the_family_lookup_reply_is_consumed() {
        let (sim, model) = world("linux-3.4");
        let cx = task_cx(&sim, &model, 1, "init");
        let port = model.open_port(&cx).unwrap();
        let mut name = TASKSTATS_GENL_NAME.as_bytes().to_vec();
        name.push(0);
        let req = request(
            GENL_ID_CTRL,
            NLM_F_REQUEST,
            1,
            port,
            CTRL_CMD_GETFAMILY,
            &[(CTRL_ATTR_FAMILY_NAME, name)],
        );
        let replies = model.netlink_request(&cx, port, &req);
        assert_eq!(replies.len(), 1);
        assert_eq!(u16_at(&replies[0], 4), GENL_ID_CTRL);
        assert_eq!(model.skbs.counts(), (0, 1));
        model.teardown(&sim).unwrap();
    }

    /// A PID query of a task whose exit built its record (a listener on every CPU) is judged
    /// against that record: the zombie leader's reply carries the record's counters and passes
    /// (`pid-query-after-exit-record`); a reply one of whose counters reads lower than the
    /// record's (a counter gone back) is reported as `pid-stats-after-exit`.
    #[test]
    fn a_pid_reply_after_the_exit_record_reads_no_counter_lower() {
        for preset in ["linux-2.6.19", "linux-3.8"] {
            let (sim, model) = world(preset);
            let cx = task_cx(&sim, &model, 1, "init");
            let port = model.open_port(&cx).unwrap();
            let mask = (TASKSTATS_CMD_ATTR_REGISTER_CPUMASK, cpumask_payload("0-1"));
            let reg = request(TASKSTATS_FAMILY_ID, NLM_F_REQUEST, 7, port, TASKSTATS_CMD_GET, &[mask]);
            model.netlink_request(&cx, port, &reg);
            let child = model.fork(&cx, ForkKind::Process).unwrap();
            let (child_cx, reply_to) = (task_cx(&sim, &model, child, "child"), &pid_request(port, child));
            assert!(model.run(&child_cx) && model.run(&child_cx));
            model.exit(&child_cx).unwrap();
            let zombie = model.task(&sim.observer_cx("test", 0), child).expect("a zombie until reaped");
            let booked = Taskstats::booked_exit_record(&zombie).expect("the exit built its record");
            assert!(booked.cpu_count > 0, "{preset}: {booked:?}");
            model.recv_count(&cx, port);
            assert_eq!(model.netlink_request(&cx, port, reply_to).len(), 1, "{preset}: the reply");
            assert!(sim.marks().contains("pid-query-after-exit-record"), "{preset}: {:?}", sim.marks());
            assert!(sim.violations().is_empty(), "{preset}: {:?}", sim.violations());
            let mut lower = booked.clone();
            lower.cpu_count -= 1;
            model.judge_pid_reply_after_exit(&cx, child, booked, &lower);
            let found = sim.violations();
            assert_eq!(found.len(), 1, "{preset}: {found:?}");
            assert!(found[0].message.contains("cpu_count"), "{preset}: {}", found[0].message);
        }
    }
}
