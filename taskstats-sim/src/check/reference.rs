//! The reference model: from the facts of the world before each request, the errno the seed
//! returns; the listener lists and port queues as add_del_listener() and send_cpu_listeners()
//! leave them, exits judged listener by listener whatever faults they saw; its own tasks,
//! thread groups, pid namespaces and figures, from which it judges reply payloads and ids.
//! Where an injected allocation failure hides which way the kernel went, it keeps each legal
//! world until an outcome picks one. Plain collections, no sim-core locks: it is checker state.

use sim_core::check::Reference;
use sim_core::Errno;

use super::op::{MaskSpec, Op, Outcome, RequestFacts, Work};
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
    /// Per CPU, the listener list head first (ports), as add_del_listener() and the pruning
    /// leave it.
    lists: Vec<Vec<u32>>,
    /// Open ports and how many exit events wait in each queue.
    ports: std::collections::BTreeMap<u32, usize>,
    /// The reference's own record of every task the case made (by pid, so a fork handed a pid
    /// twice is one look): its group, whether it still runs, and what it did (from the runs it
    /// saw).
    tasks: ByPid<RefTask>,
    /// The pids of the tasks in `tasks` that still run, ascending: what a fork's or a port's
    /// index picks among, in one step instead of a walk over every task the case made.
    live: Vec<u32>,
    /// Per thread group, every value `signal->stats` may hold (None: not allocated): the exited
    /// threads' delays folded by the version's rule. One value, unless an injected allocation
    /// failure hid which way an allocation went; then each way is kept until a TGID reply
    /// shows which one the kernel took.
    groups: ByPid<Ways>,
    /// Whether every run was seen with its work (the op-level checker; threaded campaigns
    /// report none, and then payload figures are not judged).
    knows_work: bool,
    /// The pid namespaces as alloc_pid() numbers in them: each one's parent and next number.
    pid_ns: Vec<(Option<usize>, u32)>,
    /// 2.6.19's forks that failed with EAGAIN since the last fork that succeeded: each took a
    /// number of init_pid_ns (do_fork()'s alloc_pid() succeeded and copy_process() then met the
    /// thread limit) or none (alloc_pid() itself failed), which the outcome does not tell, so
    /// the next pid may be up to this many above the counter.
    pid_slack: u32,
    /// Per open port, the thread group whose socket it is (the requester of its requests).
    port_owner: std::collections::BTreeMap<u32, u32>,
}

/// Values by pid in a vector, a slot per pid: the reference's tasks and groups. alloc_pid()
/// hands pids out from 1 up, one per fork, so the slots are as many as the case's forks (a
/// pid is stored only once it is the number alloc_pid() hands out next: see
/// [`TaskstatsModel::record_fork`]); a case's tasks cost no tree to build and free.
#[derive(Clone, Debug)]
struct ByPid<T>(Vec<Option<T>>);

impl<T> ByPid<T> {
    /// `value` under `pid` alone.
    fn one(pid: u32, value: T) -> ByPid<T> {
        // Room for a case's forks (a hundred operations make about a dozen).
        let mut map = ByPid(Vec::with_capacity(32));
        map.insert(pid, value);
        map
    }

    fn get(&self, pid: u32) -> Option<&T> {
        self.0.get(pid as usize).and_then(Option::as_ref)
    }

    fn get_mut(&mut self, pid: u32) -> Option<&mut T> {
        self.0.get_mut(pid as usize).and_then(Option::as_mut)
    }

    fn contains(&self, pid: u32) -> bool {
        self.get(pid).is_some()
    }

    /// The slot of `pid`, made (with the slots below it) if the vector is short.
    fn slot(&mut self, pid: u32) -> &mut Option<T> {
        let at = pid as usize;
        if self.0.len() <= at {
            self.0.resize_with(at + 1, || None);
        }
        &mut self.0[at]
    }

    fn insert(&mut self, pid: u32, value: T) {
        *self.slot(pid) = Some(value);
    }

    fn get_or_insert_with(&mut self, pid: u32, value: impl FnOnce() -> T) -> &mut T {
        self.slot(pid).get_or_insert_with(value)
    }

    /// Every (pid, value), ascending.
    fn iter(&self) -> impl Iterator<Item = (u32, &T)> {
        self.0.iter().enumerate().filter_map(|(pid, value)| Some((pid as u32, value.as_ref()?)))
    }
}

/// What one value a group's `signal->stats` may hold may become (see
/// [`TaskstatsModel::branch`]): one value, or either of two when an injected allocation failure
/// hid which way the kernel went.
#[derive(Clone, Copy, Debug)]
enum Next {
    One(Option<Work>),
    Either(Option<Work>, Option<Work>),
}

/// The reference's live pids at a case's start: init alone, with room for the dozen or so
/// tasks a case's forks make (grown from one, the vector was reallocated three times a case).
fn live_with_init() -> Vec<u32> {
    let mut live = Vec::with_capacity(16);
    live.push(1);
    live
}

/// The values a group's `signal->stats` may hold (see [`TaskstatsModel::branch`]): one, inline
/// (a group's record allocates nothing), unless an injected fault hid which way the kernel went.
type Ways = smallvec::SmallVec<[Option<Work>; 1]>;

/// A task's numbers by pid namespace, the initial namespace first.
type Numbers = smallvec::SmallVec<[(usize, u32); 2]>;

/// A task as the reference records it.
#[derive(Clone, Debug, Default)]
struct RefTask {
    tgid: u32,
    live: bool,
    work: Work,
    /// Its number in each pid namespace it is visible in, the initial namespace first (two
    /// levels inline: a fork's record allocates nothing for them).
    numbers: Numbers,
}

fn add_work(sum: &mut Work, w: &Work) {
    sum.cpu_count += w.cpu_count;
    sum.cpu_delay_total += w.cpu_delay_total;
    sum.blkio_count += w.blkio_count;
    sum.blkio_delay_total += w.blkio_delay_total;
    sum.swapin_count += w.swapin_count;
    sum.swapin_delay_total += w.swapin_delay_total;
    sum.cpu_run_real_total += w.cpu_run_real_total;
    sum.cpu_run_virtual_total += w.cpu_run_virtual_total;
    sum.freepages_count += w.freepages_count;
    sum.freepages_delay_total += w.freepages_delay_total;
    sum.nvcsw += w.nvcsw;
    sum.nivcsw += w.nivcsw;
    sum.utime_ns += w.utime_ns;
    sum.stime_ns += w.stime_ns;
}

impl TaskstatsModel {
    /// The errno the seed returns for a cpumask request, before any allocation can fail.
    /// `read` is [`Self::read_mask`] of the request's mask, made once per request by the caller.
    fn cpumask_errno(&self, facts: &RequestFacts, read: MaskRead) -> Result<(), Errno> {
        let MaskRead { oversized, parsed } = read;
        if self.fixes.on(crate::fixes::ADMIN_PERM) && !facts.capable {
            return Err(Errno::EPERM);
        }
        if oversized {
            return Err(Errno::E2BIG);
        }
        let mask = parsed?;
        if mask.iter().any(|cpu| cpu >= self.cpus) {
            return Err(Errno::EINVAL);
        }
        if self.fixes.on(crate::fixes::NAMESPACE_CHECKS) && !facts.init_ns {
            return Err(Errno::EINVAL);
        }
        Ok(())
    }
}

impl TaskstatsModel {
    /// What add_del_listener() reads of a cpumask attribute spelled as `mask` spells it
    /// ([`MaskSpec::text`]): whether the text is longer than TASKSTATS_CPUMASK_MAXLEN, and
    /// [`Self::parse`] of it. A non-empty list of CPUs or a range is read off the spec, as both
    /// parsers read its text (its CPUs; a backwards range EINVAL, one past the bitmap ERANGE;
    /// `specs_read_as_both_parsers_read_their_text` holds that for every such spec); odd text is
    /// spelled and parsed, the oversized one once per process ([`Self::oversized_parse`]). A
    /// campaign's registrations are mostly lists: spelling and parsing each was about 300
    /// instructions (callgrind).
    fn read_mask(&self, mask: &MaskSpec) -> MaskRead {
        let parsed = match *mask {
            MaskSpec::Cpus(bits) if bits != 0 => Ok(CpuBits(u64::from(bits))),
            MaskSpec::Range(a, b) if a > b => Err(Errno::EINVAL),
            MaskSpec::Range(_, b) if u32::from(b) >= NR_CPUS => Err(Errno::ERANGE),
            MaskSpec::Range(a, b) => {
                let mut cpus = CpuBits::default();
                cpus.insert_range(u32::from(a), u32::from(b), NR_CPUS);
                Ok(cpus)
            }
            MaskSpec::Odd(_) if mask.is_oversized() => {
                return MaskRead { oversized: true, parsed: self.oversized_parse() };
            }
            MaskSpec::Cpus(_) | MaskSpec::Odd(_) => {
                let text = mask.text();
                return MaskRead {
                    oversized: text.len() > TASKSTATS_CPUMASK_MAXLEN,
                    parsed: self.parse(&text),
                };
            }
        };
        // A list of eight CPUs or a range of two three-digit numbers: far below the limit.
        MaskRead { oversized: false, parsed }
    }

    /// [`Self::parse`] of the oversized odd text, made once per process for each parser: a
    /// pure function of one constant text of about 500 bytes, which cost about 10,000
    /// instructions to spell and parse at each request that sent it (callgrind: 18 an
    /// operation of a campaign).
    fn oversized_parse(&self) -> Result<CpuBits, Errno> {
        static PARSED: [std::sync::OnceLock<Result<CpuBits, Errno>>; 2] =
            [std::sync::OnceLock::new(), std::sync::OnceLock::new()];
        let parser = usize::from(self.fixes.on(crate::fixes::CPULIST_PARSE_3));
        *PARSED[parser].get_or_init(|| self.parse(&MaskSpec::Odd(u8::MAX).text()))
    }

    /// parse() as the version has it, with the reference's own copy and parsers below.
    fn parse(&self, payload: &[u8]) -> Result<CpuBits, Errno> {
        let text = copied_text(payload);
        if self.fixes.on(crate::fixes::CPULIST_PARSE_3) {
            parselist_3x(text, NR_CPUS)
        } else {
            parselist_2_6_18(text, NR_CPUS)
        }
    }

    /// Mirrors add_del_listener() on the reference lists. After a request that saw an injected
    /// fault (or whose ack was dropped), `lists_after` are the model's lists: the port's entries
    /// in them must be those of one of the ways the request could have gone, and that way's
    /// lists, computed here, become the reference's.
    fn mirror_listeners(
        &mut self,
        op: &Op,
        port: u32,
        error: Option<i32>,
        lists_after: Option<&Vec<Vec<u32>>>,
        parsed: Option<&Result<CpuBits, Errno>>,
    ) -> Result<(), String> {
        // The mask parsed once (`parsed`, the caller's); a request without one (or with one
        // parse() refuses) leaves the lists alone whatever happened.
        let mask = self.request_cpus(op, parsed);
        let mut ways = self.listener_ways(mask, error);
        let dedup = self.fixes.on(crate::fixes::DUPLICATE_LISTENER_CHECK);
        let Some(after) = lists_after else {
            // The expected way, applied in place.
            if let (Some((cpus, register)), Some(way)) = (mask, ways.next()) {
                apply_way(&mut self.lists, cpus, register, port, dedup, way);
            }
            return Ok(());
        };
        let entries = |lists: &Vec<Vec<u32>>| -> Vec<usize> {
            lists.iter().map(|l| l.iter().filter(|&&p| p == port).count()).collect()
        };
        let seen = entries(after);
        let (cpus, register) = mask.unwrap_or_default();
        let way_lists = |way: Way| {
            let mut lists = self.lists.clone();
            apply_way(&mut lists, cpus, register, port, dedup, way);
            lists
        };
        let found = ways.map(way_lists).find(|lists| entries(lists) == seen);
        match found {
            Some(lists) => {
                self.lists = lists;
                Ok(())
            }
            None => Err(format!(
                "port {port}'s listener entries per CPU are {seen:?} after the request (errno {error:?}); \
                 no way add_del_listener() could have gone leaves them so (the reference's lists: {:?})",
                self.lists
            )),
        }
    }

    /// The CPUs of a REGISTER or DEREGISTER request's mask that have lists, in the order
    /// add_del_listener() walks them, and whether it registers; None for any other request and
    /// for a mask parse() refuses (such a request leaves the lists alone).
    fn request_cpus(&self, op: &Op, parsed: Option<&Result<CpuBits, Errno>>) -> Option<(CpuBits, bool)> {
        let register = match op {
            Op::Register { .. } => true,
            Op::Deregister { .. } => false,
            _ => return None,
        };
        let cpus = *parsed?.as_ref().ok()?;
        Some((cpus.below(self.lists.len()), register))
    }

    /// The ways a request may leave the listener lists, the expected one first: a registration
    /// or deregistration that returned 0 done; one whose listener allocation failed at the k-th
    /// CPU of its mask (ENOMEM, or 0 in the 3.x listings, whose cleanup path ends in `return 0`)
    /// undone by add_del_listener()'s cleanup loop, which removes the port's first entry from
    /// every CPU of the mask (so the CPUs before k lose the entry just added, the others an older
    /// one); one that failed before touching the lists (the mask's allocation, any other errno)
    /// untouched. A dropped ack (no errno seen) allows every way. `mask` is
    /// [`Self::request_cpus`]'s; [`apply_way`] makes a way's lists, only for the ways a caller
    /// looks at.
    fn listener_ways(&self, mask: Option<(CpuBits, bool)>, error: Option<i32>) -> impl Iterator<Item = Way> {
        use Way::{Done, Untouched};
        let enomem = Errno::ENOMEM.to_kernel_return();
        // The ways before the cleaned-up ones, and whether those follow (one per CPU of the
        // mask); made as the caller walks them, nothing allocated.
        let (first, cleaned_up) = match (mask, error) {
            (None, _) => ([Some(Untouched), None], None),
            // The 3.x listings fall through the cleanup loop to `return 0`: a registration
            // whose allocation failed also answers 0.
            (Some((cpus, true)), Some(0)) => ([Some(Done), None], Some(cpus)),
            (Some(_), Some(0)) => ([Some(Done), None], None),
            (Some((cpus, true)), Some(code)) if code == enomem => ([Some(Untouched), None], Some(cpus)),
            (Some((cpus, register)), None) => ([Some(Done), Some(Untouched)], register.then_some(cpus)),
            (Some(_), Some(_)) => ([Some(Untouched), None], None),
        };
        let cleaned_up = 0..cleaned_up.map_or(0, CpuBits::count);
        first.into_iter().flatten().chain(cleaned_up.map(Way::CleanedUp))
    }
}

/// `lists` as `way` (see [`TaskstatsModel::listener_ways`]) of a request on `port` over `cpus`
/// (a registration if `register`) leaves them; `dedup`: the version's duplicate check.
fn apply_way(lists: &mut [Vec<u32>], cpus: CpuBits, register: bool, port: u32, dedup: bool, way: Way) {
    let step = |lists: &mut [Vec<u32>], cpu: usize, add: bool| {
        let list = &mut lists[cpu];
        if add {
            if !(dedup && list.contains(&port)) {
                list.insert(0, port);
            }
        } else if let Some(at) = list.iter().position(|&p| p == port) {
            list.remove(at);
        }
    };
    let cpus = cpus.iter().map(|cpu| cpu as usize);
    match way {
        Way::Untouched => {}
        Way::Done => cpus.for_each(|cpu| step(lists, cpu, register)),
        Way::CleanedUp(k) => {
            cpus.clone().take(k).for_each(|cpu| step(lists, cpu, true));
            cpus.for_each(|cpu| step(lists, cpu, false));
        }
    }
}

/// One way a cpumask request may have gone (see [`TaskstatsModel::listener_ways`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Way {
    /// Every CPU of the mask registered or deregistered.
    Done,
    /// The lists as they were.
    Untouched,
    /// The listener allocation failed at the k-th CPU of the mask, then the cleanup loop.
    CleanedUp(usize),
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
            lists: vec![Vec::new(); config.params.cpus.clamp(1, NR_CPUS) as usize],
            ports: Default::default(),
            tasks: ByPid::one(
                1,
                RefTask { tgid: 1, live: true, work: Work::default(), numbers: smallvec::smallvec![(0, 1)] },
            ),
            live: live_with_init(),
            groups: ByPid::one(1, smallvec::smallvec![None]),
            knows_work: false,
            pid_ns: vec![(None, 2)],
            pid_slack: 0,
            port_owner: Default::default(),
        }
    }

    fn check(&mut self, op: &Op, actual: &Outcome) -> Result<(), String> {
        match (op, actual) {
            (_, Outcome::Interleaved(parts)) => parts.iter().try_for_each(|(op, part)| self.check(op, part)),
            (_, Outcome::Forked(Ok(pid))) => {
                if self.tasks.contains(*pid) {
                    return Err(format!("fork handed out pid {pid} twice"));
                }
                self.record_fork(op, *pid)
            }
            (_, Outcome::Forked(Err(errno))) => {
                self.record_failed_fork(op, *errno);
                Ok(())
            }
            (_, Outcome::Ran { pid, work }) => {
                match self.tasks.get_mut(*pid) {
                    Some(task) => {
                        add_work(&mut task.work, work);
                        self.knows_work = true;
                    }
                    None => self.knows_work = false,
                }
                Ok(())
            }
            (_, Outcome::Port(Some(id))) => {
                self.ports.insert(*id, 0);
                if let Op::OpenPort { task } = op {
                    let owner = self.fork_parent(*task).and_then(|p| self.tasks.get(p)).map(|t| t.tgid);
                    self.port_owner.insert(*id, owner.unwrap_or(0));
                }
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
            (Op::Exit { .. }, Outcome::Exited { pid, cpu, delivered, closed, clones, pruned, faulted }) => {
                let walk = ExitWalk { pid: *pid, cpu: *cpu, delivered, clones: *clones, pruned: *pruned };
                self.record_exit(*pid, *cpu, *faulted);
                self.check_exit(&walk, closed, *faulted)
            }
            (_, Outcome::Request { facts, error, replies, port, lists_after }) => {
                // What parse() reads of a cpumask request's text, once for both judgements.
                let mask = match op {
                    Op::Register { mask, .. } | Op::Deregister { mask, .. } => Some(self.read_mask(mask)),
                    _ => None,
                };
                let parsed = mask.map(|read| read.parsed);
                self.mirror_listeners(op, *port, *error, lists_after.as_ref(), parsed.as_ref())?;
                self.check_request(op, facts, *error, replies, mask)?;
                if *error == Some(0) && replies.len() == 1 {
                    self.judge_payload(op, facts, *port, &replies[0])?;
                }
                Ok(())
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
    /// whose port is gone are pruned, the others stay. When another allocation failed during
    /// the exit (the record's skb, 2.6.19's record buffer) the record may not have been built:
    /// then nothing at all is cloned, delivered or pruned. Then the ports the group's death closed.
    fn check_exit(&mut self, walk: &ExitWalk<'_>, closed: &[u32], faulted: bool) -> Result<(), String> {
        let (pid, delivered) = (walk.pid, walk.delivered);
        if self.fixes.on(crate::fixes::DUPLICATE_LISTENER_CHECK) {
            // A port twice in the (short) list: an earlier entry equal to a later one.
            let repeated = delivered.iter().enumerate().any(|(i, port)| delivered[..i].contains(port));
            if repeated {
                return Err(format!("exit of {pid} delivered twice to one port: {delivered:?}"));
            }
        }
        // Only an exit that saw another fault may be taken back (a failed judgement otherwise
        // ends the case), so only then is the state before it kept.
        let before = faulted.then(|| (self.lists.clone(), self.ports.clone()));
        if let Err(sent) = self.judge_walk(walk) {
            let nothing_sent = delivered.is_empty() && walk.clones == (0, false) && walk.pruned == 0;
            match before {
                Some(before) if nothing_sent => (self.lists, self.ports) = before,
                _ => return Err(sent),
            }
        }
        for port in closed {
            self.ports.remove(port);
        }
        Ok(())
    }

    /// send_cpu_listeners() on the reference state, for an exit with no fault but clones'.
    fn judge_walk(&mut self, walk: &ExitWalk<'_>) -> Result<(), String> {
        let (pid, cpu) = (walk.pid, walk.cpu);
        let list = &self.lists[cpu as usize];
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
        mask: Option<MaskRead>,
    ) -> Result<(), String> {
        let (expect, fallible, replies_expect): (Result<(), Errno>, bool, usize) = match (op, mask) {
            (Op::Register { .. } | Op::Deregister { .. }, Some(read)) => {
                (self.cpumask_errno(facts, read), true, 0)
            }
            (Op::QueryPid { .. } | Op::QueryTgid { .. }, _) => {
                if self.fixes.on(crate::fixes::ADMIN_PERM) && !facts.capable {
                    (Err(Errno::EPERM), false, 0)
                } else if facts.target_exists {
                    (Ok(()), true, 1)
                } else {
                    (Err(Errno::ESRCH), true, 0)
                }
            }
            (Op::CgroupStats { .. }, _) => {
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

// --- the reference's own cpulist parsers, from lib/bitmap.c's rules ----------------------------

/// The C string parse()'s copy of the attribute holds (`strlcpy_payload` then [`c_string`]),
/// read in place: the copy keeps at most the payload's length less one byte (so a payload
/// without a NUL loses its last byte, one with a trailing NUL keeps the rest), up to the first
/// NUL. No buffer is made: every cpumask request is parsed here.
fn copied_text(payload: &[u8]) -> &[u8] {
    c_string(&payload[..payload.len().saturating_sub(1)])
}

/// parse()'s copy of the attribute: a buffer of the payload's length holding the payload less
/// one trailing NUL, cut to one byte short of the buffer (so a payload without a NUL loses its
/// last byte), then NUL-filled. The reference reads it in place ([`copied_text`]); this spells
/// the copy out, for the test that the two agree.
#[cfg(test)]
fn strlcpy_payload(payload: &[u8]) -> Vec<u8> {
    let mut src = payload;
    if let Some((&0, rest)) = src.split_last() {
        src = rest;
    }
    let mut buf = vec![0u8; payload.len()];
    let n = src.len().min(payload.len().saturating_sub(1));
    buf[..n].copy_from_slice(&src[..n]);
    buf
}

/// The bytes of a C string: up to its first NUL.
fn c_string(buf: &[u8]) -> &[u8] {
    &buf[..buf.iter().position(|&c| c == 0).unwrap_or(buf.len())]
}

/// The kernel's isspace() (lib/ctype.c): the six ASCII spaces and Latin-1's no-break space.
fn kernel_isspace(c: u8) -> bool {
    matches!(c, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r' | 0xa0)
}

/// 3.x bitmap_parselist(): the string up to its first newline, read as comma-separated numbers
/// and "a-b" ranges; whitespace is skipped except between two digits' worth of input; an empty
/// entry before a comma, or an empty list, is 0 (so "" and ",1" select CPU 0); a backwards range or a misplaced '-' is EINVAL, a
/// bit past `nbits` ERANGE. Numbers wrap as the kernel's unsigned int does.
fn parselist_3x(text: &[u8], nbits: u32) -> Result<CpuBits, Errno> {
    let text = &text[..text.iter().position(|&c| c == b'\n').unwrap_or(text.len())];
    let mut mask = CpuBits::default();
    let (mut at, mut c, mut totaldigits) = (0usize, 0u8, 0u32);
    loop {
        let (mut a, mut b, mut exp_digit, mut in_range) = (0u32, 0u32, true, false);
        while at < text.len() {
            let old_c = c;
            c = text[at];
            at += 1;
            if kernel_isspace(c) {
                continue;
            }
            if totaldigits > 0 && c != 0 && kernel_isspace(old_c) {
                return Err(Errno::EINVAL);
            }
            if c == b',' {
                break;
            }
            if c == b'-' {
                if exp_digit || in_range {
                    return Err(Errno::EINVAL);
                }
                (b, in_range, exp_digit) = (0, true, true);
                continue;
            }
            if !c.is_ascii_digit() {
                return Err(Errno::EINVAL);
            }
            b = b.wrapping_mul(10).wrapping_add(u32::from(c - b'0'));
            if !in_range {
                a = b;
            }
            exp_digit = false;
            totaldigits += 1;
        }
        if a > b {
            return Err(Errno::EINVAL);
        }
        if b >= nbits {
            return Err(Errno::ERANGE);
        }
        mask.insert_range(a, b, nbits);
        if !(at < text.len() && c == b',') {
            return Ok(mask);
        }
    }
}

/// What parse() reads of a cpumask attribute ([`TaskstatsModel::read_mask`]).
#[derive(Clone, Copy, Debug)]
struct MaskRead {
    /// The text is longer than TASKSTATS_CPUMASK_MAXLEN (E2BIG before any parse).
    oversized: bool,
    /// parse() of the text.
    parsed: Result<CpuBits, Errno>,
}

/// A set of CPUs below [`NR_CPUS`] as one word, a bit per CPU: what the parsers build (a set
/// of numbers, ascending, each once, as the BTreeSet it replaced, without a node per CPU).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct CpuBits(u64);

const _: () = assert!(NR_CPUS <= u64::BITS, "CpuBits holds a bit per CPU");

impl CpuBits {
    /// CPUs `a..=b`; the parsers checked `a <= b < nbits` first (`nbits` ≤ 64).
    fn insert_range(&mut self, a: u32, b: u32, nbits: u32) {
        assert!(a <= b && b < nbits && nbits <= u64::BITS, "range {a}-{b} of {nbits} bits");
        let width = b - a + 1;
        let ones = if width == u64::BITS { u64::MAX } else { (1u64 << width) - 1 };
        self.0 |= ones << a;
    }

    /// The CPUs, ascending (a step per CPU in the set, lowest bit first).
    fn iter(self) -> impl Iterator<Item = u32> + Clone {
        let mut left = self.0;
        std::iter::from_fn(move || {
            let cpu = (left != 0).then(|| left.trailing_zeros())?;
            left &= left - 1;
            Some(cpu)
        })
    }

    /// How many CPUs.
    fn count(self) -> usize {
        self.0.count_ones() as usize
    }

    /// The CPUs below `n` (the CPUs that have lists).
    fn below(self, n: usize) -> CpuBits {
        CpuBits(if n >= 64 { self.0 } else { self.0 & ((1u64 << n) - 1) })
    }
}

/// simple_strtoul(s, &end, 10) as far as the parser needs it: the digits at `at`, the value
/// truncated to the parser's unsigned int, and where they end.
fn strtoul(text: &[u8], mut at: usize) -> (u32, usize) {
    let mut value = 0u64;
    while at < text.len() && text[at].is_ascii_digit() {
        value = value.wrapping_mul(10).wrapping_add(u64::from(text[at] - b'0'));
        at += 1;
    }
    (value as u32, at)
}

/// 2.6.18 bitmap_parselist(): each entry must start with a digit, "a" or "a-b" with digits
/// after the '-', one optional ',' after it; the list ends at NUL or newline; no whitespace.
fn parselist_2_6_18(text: &[u8], nbits: u32) -> Result<CpuBits, Errno> {
    let byte = |at: usize| text.get(at).copied().unwrap_or(0);
    let mut mask = CpuBits::default();
    let mut at = 0usize;
    loop {
        if !byte(at).is_ascii_digit() {
            return Err(Errno::EINVAL);
        }
        let (a, next) = strtoul(text, at);
        let mut b = a;
        at = next;
        if byte(at) == b'-' {
            at += 1;
            if !byte(at).is_ascii_digit() {
                return Err(Errno::EINVAL);
            }
            (b, at) = strtoul(text, at);
        }
        if a > b {
            return Err(Errno::EINVAL);
        }
        if b >= nbits {
            return Err(Errno::ERANGE);
        }
        mask.insert_range(a, b, nbits);
        if byte(at) == b',' {
            at += 1;
        }
        if byte(at) == 0 || byte(at) == b'\n' {
            return Ok(mask);
        }
    }
}

// --- the reference's own tasks, groups and figures ------------------------------------------

impl TaskstatsModel {
    /// The live task a fork operation's index picks (ascending pids, as the driver picks).
    fn fork_parent(&self, parent: u8) -> Option<u32> {
        let count = self.live.len();
        (count > 0).then(|| self.live[usize::from(parent) % count])
    }

    /// Replaces each value a group's `signal->stats` may hold by the values `step` says it may
    /// become, keeping each once. A group with one value that stays one is updated in place
    /// (every exit and thread fork branches its group; faults rarely leave two values).
    fn branch(&mut self, tgid: u32, step: impl Fn(Option<Work>) -> Next) {
        let ways = self.groups.get_or_insert_with(tgid, || smallvec::smallvec![None]);
        if let [only] = ways.as_mut_slice() {
            match step(*only) {
                Next::One(value) => *only = value,
                Next::Either(value, other) => {
                    *only = value;
                    if other != value {
                        ways.push(other);
                    }
                }
            }
            return;
        }
        let mut next = Ways::with_capacity(ways.len() * 2);
        for way in ways.drain(..) {
            let (value, other) = match step(way) {
                Next::One(value) => (value, None),
                Next::Either(value, other) => (value, Some(other)),
            };
            for value in [Some(value), other].into_iter().flatten() {
                if !next.contains(&value) {
                    next.push(value);
                }
            }
        }
        *ways = next;
    }

    /// 2.6.19's fork-time taskstats_tgid_alloc() on one value of the group's stats: allocated
    /// if unset, unless the allocation may have failed (it is tolerated silently).
    fn alloc_at_fork(faults: bool, stats: Option<Work>) -> Next {
        match stats {
            None if faults => Next::Either(None, Some(Work::default())),
            None => Next::One(Some(Work::default())),
            set => Next::One(set),
        }
    }

    /// A fork the op-level checker made: its parent is the live task the operation's index
    /// picks, a CLONE_THREAD child joins its group. Before "taskstats: cleanup ->signal->stats
    /// allocation" the thread fork allocates the group's stats.
    fn record_fork(&mut self, op: &Op, pid: u32) -> Result<(), String> {
        let Op::Fork { parent, kind } = op else { return Ok(()) };
        let Some(parent) = self.fork_parent(*parent) else { return Ok(()) };
        let tgid = match kind {
            crate::taskstats::ForkKind::Thread => self.tasks.get(parent).map_or(pid, |t| t.tgid),
            _ => pid,
        };
        let slack = std::mem::take(&mut self.pid_slack);
        if slack > 0 {
            // Only 2.6.19 leaves slack, with init_pid_ns alone: the numbers the failed forks
            // took end just below `pid`, if it is within reach.
            let next = self.pid_ns[0].1;
            if (next..=next + slack).contains(&pid) {
                self.pid_ns[0].1 = pid;
            }
        }
        let numbers = self.alloc_numbers(parent, *kind);
        if numbers.first().is_some_and(|&(_, global)| global != pid) {
            return Err(format!("fork returned pid {pid}; alloc_pid() hands out {numbers:?} next"));
        }
        self.tasks.insert(pid, RefTask { tgid, live: true, work: Work::default(), numbers });
        if let Err(at) = self.live.binary_search(&pid) {
            self.live.insert(at, pid);
        }
        self.groups.get_or_insert_with(tgid, || smallvec::smallvec![None]);
        if tgid != pid && !self.fixes.on(crate::fixes::TGID_ALLOC_AT_EXIT) {
            let faults = self.faults;
            self.branch(tgid, |stats| Self::alloc_at_fork(faults, stats));
        }
        Ok(())
    }

    /// alloc_pid() for a child of `parent`: a number in its pid namespace and in each one
    /// above it (initial namespace first); a CLONE_NEWPID child (with pid namespaces) starts a
    /// namespace of its own, in which it is 1.
    fn alloc_numbers(&mut self, parent: u32, kind: crate::taskstats::ForkKind) -> Numbers {
        let mut ns = self.tasks.get(parent).and_then(|t| t.numbers.last()).map_or(0, |&(ns, _)| ns);
        if kind == crate::taskstats::ForkKind::NewPidNs && self.fixes.on(crate::fixes::PID_NAMESPACES) {
            self.pid_ns.push((Some(ns), 1));
            ns = self.pid_ns.len() - 1;
        }
        // From `ns` up to the initial namespace, then reversed: the initial namespace first.
        let mut numbers = Numbers::new();
        let mut at = Some(ns);
        while let Some(n) = at {
            numbers.push((n, self.pid_ns[n].1));
            self.pid_ns[n].1 += 1;
            at = self.pid_ns[n].0;
        }
        numbers.reverse();
        numbers
    }

    /// The number task `pid` has in pid namespace `ns` (0: not visible there).
    fn nr_in(&self, pid: u32, ns: usize) -> u32 {
        let numbers = self.tasks.get(pid).map(|t| t.numbers.as_slice()).unwrap_or_default();
        numbers.iter().find(|&&(n, _)| n == ns).map_or(0, |&(_, nr)| nr)
    }

    /// The pid namespace of the process that owns port `port` (its tasks' innermost one).
    fn requester_ns(&self, port: u32) -> usize {
        let owner = self.port_owner.get(&port).copied().unwrap_or(0);
        self.tasks.get(owner).and_then(|t| t.numbers.last()).map_or(0, |&(ns, _)| ns)
    }

    /// A fork that failed. 2.6.19 (no pid namespaces): EAGAIN came from do_fork()'s alloc_pid()
    /// (no number taken) or from copy_process()'s thread limit after it (a number taken and
    /// freed), so the next pid gets slack; ENOMEM from a step after copy_signal(), after the
    /// pid was numbered. From 2.6.24 copy_process() checks the limit before, and allocates the
    /// pid after, every step that can fail, so a failed fork takes no number; its ENOMEM (a step
    /// or alloc_pid() itself) comes after copy_signal() and, for a CLONE_NEWPID child, after
    /// copy_namespaces() made the namespace. For a CLONE_THREAD child, copy_signal() had run
    /// taskstats_tgid_alloc() in 2.6.19's way, and before "taskstats_tgid_free: fix usage" the
    /// error path frees the group's stats, the exited threads' figures with them.
    fn record_failed_fork(&mut self, op: &Op, errno: Errno) {
        let Op::Fork { parent, kind } = op else { return };
        let Some(parent) = self.fork_parent(*parent) else { return };
        let pid_namespaces = self.fixes.on(crate::fixes::PID_NAMESPACES);
        match errno {
            Errno::EAGAIN if !pid_namespaces => self.pid_slack += 1,
            Errno::ENOMEM if !pid_namespaces => {
                self.alloc_numbers(parent, *kind);
            }
            Errno::ENOMEM if *kind == crate::taskstats::ForkKind::NewPidNs => {
                let ns = self.tasks.get(parent).and_then(|t| t.numbers.last()).map_or(0, |&(ns, _)| ns);
                self.pid_ns.push((Some(ns), 1));
            }
            _ => {}
        }
        if errno != Errno::ENOMEM || *kind != crate::taskstats::ForkKind::Thread {
            return;
        }
        let Some(tgid) = self.tasks.get(parent).map(|t| t.tgid) else { return };
        if self.fixes.on(crate::fixes::TGID_ALLOC_AT_EXIT) {
            return;
        }
        let (faults, freed) = (self.faults, !self.fixes.on(crate::fixes::TGID_FREE_USAGE));
        self.branch(tgid, |stats| if freed { Next::One(None) } else { Self::alloc_at_fork(faults, stats) });
    }

    /// An exit, folded into its group's stats by the version's rule, each thread once, at its
    /// exit. 3.x's taskstats_exit() folds when the stats exist or when the group still has
    /// another thread (taskstats_tgid_alloc()'s test: the zombie leader counts, it stays until
    /// the group is dead). 2.6.19's taskstats_exit_send() folds into existing stats only when
    /// its CPU had listeners (its record buffer exists) and the reply was allocated, or always
    /// after "fill_tgid_exit() before the record-buffer check". An allocation failure during the
    /// exit (`faulted`) makes both ways of a fold that needed an allocation possible.
    fn record_exit(&mut self, pid: u32, cpu: u32, faulted: bool) {
        // The task's group and figures (no copy of its numbers).
        let Some((tgid, work)) = self.tasks.get(pid).map(|t| (t.tgid, t.work)) else { return };
        // Whether the group has another member than one: its live threads (the exiting one
        // still among them) and its leader while the reference holds it, live or not. Counted
        // over the live pids, not every task the case made, and only to the second.
        let two_members = || {
            let dead_leader = usize::from(self.tasks.get(tgid).is_some_and(|t| !t.live));
            let in_group = |p: &&u32| self.tasks.get(**p).is_some_and(|t| t.tgid == tgid);
            dead_leader + self.live.iter().filter(in_group).take(2).count() > 1
        };
        let single_pass = self.fixes.on(crate::fixes::EXIT_SINGLE_PASS);
        // The group's members counted only for the versions whose rule asks.
        let alloc_at_exit = single_pass && self.fixes.on(crate::fixes::TGID_ALLOC_AT_EXIT) && two_members();
        let fill_first = single_pass || self.fixes.on(crate::fixes::EXIT_FILL_BEFORE_SEND);
        let sends = self.lists.get(cpu as usize).is_some_and(|l| !l.is_empty());
        let fold = |stats: Work| {
            let mut sum = stats;
            add_work(&mut sum, &work);
            Some(sum)
        };
        self.branch(tgid, |stats| match stats {
            Some(w) if fill_first => Next::One(fold(w)),
            Some(w) if !sends => Next::One(Some(w)),
            Some(w) if faulted => Next::Either(Some(w), fold(w)),
            Some(w) => Next::One(fold(w)),
            None if alloc_at_exit && faulted => Next::Either(None, fold(Work::default())),
            None if alloc_at_exit => Next::One(fold(Work::default())),
            None => Next::One(None),
        });
        if let Some(t) = self.tasks.get_mut(pid) {
            t.live = false;
        }
        if let Ok(at) = self.live.binary_search(&pid) {
            self.live.remove(at);
        }
    }

    /// The figures a PID reply must carry, or each set a TGID reply may carry (one per value
    /// its group's stats may hold, in that order), from the reference's own records, as the
    /// first set (None for a group with no value left) and the others (empty, so nothing
    /// allocated, unless a fault left a group more than one value); None when it cannot know
    /// them (threaded campaigns).
    fn expected_figures(&self, tgid_query: bool, target: u32) -> Option<(Option<Work>, Vec<Work>)> {
        if !self.knows_work {
            return None;
        }
        let task = self.tasks.get(target)?;
        if !tgid_query {
            return Some((Some(task.work), Vec::new()));
        }
        let ways = self.groups.get(task.tgid)?;
        let (first, others) = ways.split_first().map_or((None, &[][..]), |(f, o)| (Some(f), o));
        let sum = |stats: &Option<Work>| {
            let mut sum = stats.unwrap_or_default();
            // Exited threads contribute delays only; context switches come from the live ones.
            sum.nvcsw = 0;
            sum.nivcsw = 0;
            for (_, t) in self.tasks.iter().filter(|(_, t)| t.tgid == task.tgid && t.live) {
                add_work(&mut sum, &t.work);
            }
            sum
        };
        Some((first.map(sum), others.iter().map(sum).collect()))
    }

    /// A PID or TGID reply's record against the reference's figures: the version, the eight
    /// delay counters, and from version 8 the freepages delays, the context switches, and for a
    /// PID reply the CPU times and `ac_pid` as the requester's namespace numbers it. A TGID
    /// reply must match one value its group's stats may hold; the others are dropped.
    fn judge_payload(
        &mut self,
        op: &Op,
        facts: &RequestFacts,
        port: u32,
        reply: &[u8],
    ) -> Result<(), String> {
        let tgid_query = match op {
            Op::QueryPid { .. } => false,
            Op::QueryTgid { .. } => true,
            _ => return Ok(()),
        };
        let Some(target) = facts.target_pid else { return Ok(()) };
        let Some((first, others)) = self.expected_figures(tgid_query, target) else { return Ok(()) };
        let v8 = self.fixes.on(crate::fixes::TASKSTATS_V8);
        let rec = stats_payload(reply).ok_or_else(|| format!("reply without a stats record: {reply:?}"))?;
        let (version, size) = if v8 { (8, TASKSTATS_V8_SIZE) } else { (1, TASKSTATS_V1_SIZE) };
        if rec.len() != size || u16_le(rec, 0) != version {
            return Err(format!(
                "stats record of {} bytes, version {}; expected {size}, {version}",
                rec.len(),
                u16_le(rec, 0)
            ));
        }
        // The first value's verdict with its reason, the others' as flags (none for the one
        // value a group holds unless a fault hid a way: then nothing is allocated).
        let Some(first) = first else { return Ok(()) };
        let wants = 1 + others.len();
        let first = compare_figures(rec, &first, tgid_query, v8);
        let others: Vec<bool> =
            others.iter().map(|want| compare_figures(rec, want, tgid_query, v8).is_ok()).collect();
        if let (Err(why), false) = (&first, others.contains(&true)) {
            let what = if tgid_query { "TGID" } else { "PID" };
            let others = match wants {
                1 => String::new(),
                n => format!(" (nor any of the {n} values injected faults left possible)"),
            };
            return Err(format!("{what} reply for task {target}: {why}{others}"));
        }
        if tgid_query && wants > 1 {
            let tgid = self.tasks.get(target).map_or(target, |t| t.tgid);
            if let Some(ways) = self.groups.get_mut(tgid) {
                let mut verdict = std::iter::once(first.is_ok()).chain(others);
                ways.retain(|_| verdict.next().unwrap_or(false));
            }
        }
        self.judge_ids(tgid_query, target, port, rec, reply)
    }

    /// The ids a reply carries: the aggregate's id (the number the request named, in the
    /// requester's pid namespace where there are pid namespaces) and from version 8 a PID
    /// record's `ac_pid` (task_pid_nr_ns() in the requester's namespace after the 3.8 checks,
    /// the global pid before).
    fn judge_ids(
        &self,
        tgid_query: bool,
        target: u32,
        port: u32,
        rec: &[u8],
        reply: &[u8],
    ) -> Result<(), String> {
        let ns = self.requester_ns(port);
        let lookup_ns = if self.fixes.on(crate::fixes::PID_NAMESPACES) { ns } else { 0 };
        let what = if tgid_query { "TGID" } else { "PID" };
        let want_id = self.nr_in(target, lookup_ns);
        match aggregate_id(reply) {
            Some(id) if id == want_id => {}
            id => {
                return Err(format!(
                    "{what} reply for task {target}: id {id:?}, the requester names it {want_id}"
                ))
            }
        }
        if tgid_query || !self.fixes.on(crate::fixes::TASKSTATS_V8) {
            return Ok(());
        }
        let want_pid =
            if self.fixes.on(crate::fixes::NAMESPACE_CHECKS) { self.nr_in(target, ns) } else { target };
        let ac_pid = u32::from_le_bytes(rec[128..132].try_into().expect("4 bytes"));
        if ac_pid != want_pid {
            return Err(format!(
                "PID reply for task {target}: ac_pid is {ac_pid}, the requester sees {want_pid}"
            ));
        }
        Ok(())
    }
}

/// A record's figures against one expected set: the eight delay counters, and from version 8
/// the freepages delays, the context switches and (PID replies) the CPU times, in that order
/// (the first that differs is the reason). Compared one by one where they lie, no table of
/// them built per reply (a table of fifteen names, offsets and values was about half of a
/// comparison's 200 instructions, callgrind).
fn compare_figures(rec: &[u8], want: &Work, tgid_query: bool, v8: bool) -> Result<(), String> {
    let field = |at: usize| u64::from_le_bytes(rec[at..at + 8].try_into().expect("8 bytes"));
    let judge = |name: &'static str, at: usize, value: u64| match field(at) {
        got if got == value => Ok(()),
        got => Err(figure_differs(name, got, value)),
    };
    // Version 1 puts the delays right after its header, version 8 eight bytes later.
    let base = if v8 { 16 } else { 8 };
    judge("cpu_count", base, want.cpu_count)?;
    judge("cpu_delay_total", base + 8, want.cpu_delay_total)?;
    judge("blkio_count", base + 16, want.blkio_count)?;
    judge("blkio_delay_total", base + 24, want.blkio_delay_total)?;
    judge("swapin_count", base + 32, want.swapin_count)?;
    judge("swapin_delay_total", base + 40, want.swapin_delay_total)?;
    judge("cpu_run_real_total", base + 48, want.cpu_run_real_total)?;
    judge("cpu_run_virtual_total", base + 56, want.cpu_run_virtual_total)?;
    if !v8 {
        return Ok(());
    }
    judge("nvcsw", 272, want.nvcsw)?;
    judge("nivcsw", 280, want.nivcsw)?;
    judge("cpu_scaled_run_real_total", 304, want.cpu_run_real_total)?;
    judge("freepages_count", 312, want.freepages_count)?;
    judge("freepages_delay_total", 320, want.freepages_delay_total)?;
    if tgid_query {
        return Ok(());
    }
    judge("ac_utime", 152, want.utime_ns / 1000)?;
    judge("ac_stime", 160, want.stime_ns / 1000)
}

/// [`compare_figures`]' reason: field `name` is `got` where the reference says `value`.
#[cold]
fn figure_differs(name: &str, got: u64, value: u64) -> String {
    format!("{name} is {got}, the reference's record says {value}")
}

fn u16_le(bytes: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([bytes[at], bytes[at + 1]])
}

/// The TASKSTATS_TYPE_STATS payload of a reply: past the netlink and genetlink headers, an
/// optional TASKSTATS_TYPE_NULL, the aggregate nest, and inside it the id and the record.
fn stats_payload(reply: &[u8]) -> Option<&[u8]> {
    // The first attribute between `at` and `end` whose type `wanted` accepts, walking while
    // the lengths hold (a bad one ends the walk): its payload's bounds.
    let find = |mut at: usize, end: usize, wanted: &dyn Fn(u16) -> bool| {
        while at + 4 <= end {
            let len = usize::from(u16_le(reply, at));
            if len < 4 || at + len > end {
                return None;
            }
            if wanted(u16_le(reply, at + 2) & NLA_TYPE_MASK) {
                return Some((at + 4, at + len));
            }
            at += (len + 3) & !3;
        }
        None
    };
    let aggregate = |kind| kind == TASKSTATS_TYPE_AGGR_PID || kind == TASKSTATS_TYPE_AGGR_TGID;
    let (start, end) = find(NLMSG_HDRLEN + GENL_HDRLEN, reply.len(), &aggregate)?;
    let (from, to) = find(start, end, &|kind| kind == TASKSTATS_TYPE_STATS)?;
    Some(&reply[from..to])
}

/// The id attribute (TASKSTATS_TYPE_PID or _TGID) inside a reply's aggregate nest.
fn aggregate_id(reply: &[u8]) -> Option<u32> {
    let nest = nested(reply, &[TASKSTATS_TYPE_AGGR_PID, TASKSTATS_TYPE_AGGR_TGID])?;
    let (start, end) = nest;
    let mut at = start;
    while at + 8 <= end {
        let len = usize::from(u16_le(reply, at));
        let kind = u16_le(reply, at + 2) & NLA_TYPE_MASK;
        if len < 4 {
            return None;
        }
        if (kind == TASKSTATS_TYPE_PID || kind == TASKSTATS_TYPE_TGID) && len == 8 {
            return Some(u32::from_le_bytes(reply[at + 4..at + 8].try_into().expect("4 bytes")));
        }
        at += (len + 3) & !3;
    }
    None
}

/// The payload bounds of the first top-level attribute of one of `kinds`.
fn nested(reply: &[u8], kinds: &[u16]) -> Option<(usize, usize)> {
    let mut at = NLMSG_HDRLEN + GENL_HDRLEN;
    while at + 4 <= reply.len() {
        let len = usize::from(u16_le(reply, at));
        if len < 4 || at + len > reply.len() {
            return None;
        }
        if kinds.contains(&(u16_le(reply, at + 2) & NLA_TYPE_MASK)) {
            return Some((at + 4, at + len));
        }
        at += (len + 3) & !3;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::{MaskSpec, Target, TaskstatsConfig};
    use crate::taskstats::ForkKind;

    /// A TGID reply as the family builds it, with `record` as its stats.
    fn tgid_reply(tgid: u32, record: &TaskstatsRecord) -> Vec<u8> {
        let mut msg = MsgBuilder::genlmsg_put(TASKSTATS_FAMILY_ID, 0, 7, 100, TASKSTATS_CMD_NEW, 1);
        msg.nest_start(TASKSTATS_TYPE_AGGR_TGID);
        msg.nla_put_u32(TASKSTATS_TYPE_TGID, tgid);
        msg.nla_put(TASKSTATS_TYPE_STATS, &record.to_bytes(8));
        msg.nest_end();
        msg.finish()
    }

    /// A fork's pid is judged against alloc_pid()'s next number before the reference stores
    /// anything under it (its tasks are a vector by pid): the next pid passes, the same pid
    /// again is a pid handed out twice, and one past the next (or a wild one) is refused with
    /// no slot made for it.
    #[test]
    fn a_forks_pid_must_be_the_one_alloc_pid_hands_out_next() {
        let config = TaskstatsConfig::contract("linux-3.8");
        let fork = Op::Fork { parent: 0, kind: ForkKind::Process };
        let mut reference = TaskstatsModel::new(&config);
        reference.check(&fork, &Outcome::Forked(Ok(2))).expect("pid 2 is next");
        let twice = reference.clone().check(&fork, &Outcome::Forked(Ok(2))).expect_err("pid 2 again");
        assert!(twice.contains("twice"), "{twice}");
        for wild in [4, 1 << 20, u32::MAX] {
            let mut judged = reference.clone();
            let refused = judged.check(&fork, &Outcome::Forked(Ok(wild))).expect_err("not next");
            assert!(refused.contains("hands out"), "pid {wild}: {refused}");
            assert!(judged.tasks.0.len() <= 3, "pid {wild}: {} slots made", judged.tasks.0.len());
        }
        reference.check(&fork, &Outcome::Forked(Ok(3))).expect("pid 3 is next");
    }

    /// A failed fork and the next pid, per era. 3.x: no failure takes a number (EAGAIN before,
    /// ENOMEM at or before alloc_pid()), so pid 2 stays next and 3 is refused. 2.6.19: an EAGAIN
    /// may have taken one (the thread limit after do_fork()'s alloc_pid()) or not (alloc_pid()
    /// failed), so after two, pids 2 to 4 pass and 5 is refused; an ENOMEM (a step after
    /// copy_signal()) took one for sure, so 2 is refused after it.
    #[test]
    fn a_failed_fork_takes_a_number_only_where_the_era_numbered_it() {
        let fork = Op::Fork { parent: 0, kind: ForkKind::Thread };
        let failed = |reference: &mut TaskstatsModel, errno| {
            reference.check(&fork, &Outcome::Forked(Err(errno))).expect("a failed fork is judged later");
        };
        let mut modern = TaskstatsModel::new(&TaskstatsConfig::contract("linux-3.8"));
        failed(&mut modern, Errno::ENOMEM);
        failed(&mut modern, Errno::EAGAIN);
        modern.clone().check(&fork, &Outcome::Forked(Ok(3))).expect_err("3.x: no number taken");
        modern.check(&fork, &Outcome::Forked(Ok(2))).expect("3.x: pid 2 is next");
        let mut old = TaskstatsModel::new(&TaskstatsConfig::contract("linux-2.6.19"));
        failed(&mut old, Errno::EAGAIN);
        failed(&mut old, Errno::EAGAIN);
        for pid in 2..=4 {
            old.clone().check(&fork, &Outcome::Forked(Ok(pid))).expect("2.6.19: within the slack");
        }
        old.clone().check(&fork, &Outcome::Forked(Ok(5))).expect_err("2.6.19: past the slack");
        old.check(&fork, &Outcome::Forked(Ok(4))).expect("2.6.19: both took a number");
        failed(&mut old, Errno::ENOMEM);
        old.clone().check(&fork, &Outcome::Forked(Ok(5))).expect_err("2.6.19: the ENOMEM took 5");
        old.check(&fork, &Outcome::Forked(Ok(6))).expect("2.6.19: pid 6 is next");
    }

    /// The reference folds an exited thread into its group once and adds the live threads'
    /// figures itself: a reply with the right sums passes, one that counts a thread twice or
    /// reports the wrong field does not.
    #[test]
    fn tgid_figures_come_from_the_references_own_record_of_the_group() {
        let config = TaskstatsConfig::contract("linux-3.8");
        let mut reference = TaskstatsModel::new(&config);
        let work = |n: u64| Work { cpu_count: n, cpu_delay_total: 10 * n, nvcsw: n, ..Work::default() };
        let fork = Op::Fork { parent: 0, kind: ForkKind::Thread };
        for pid in [2, 3] {
            reference.check(&fork, &Outcome::Forked(Ok(pid))).unwrap();
            reference.check(&Op::Run { task: 0 }, &Outcome::Ran { pid, work: work(u64::from(pid)) }).unwrap();
        }
        let exited = Outcome::Exited {
            pid: 3,
            cpu: 0,
            delivered: Default::default(),
            closed: vec![],
            clones: (0, false),
            pruned: 0,
            faulted: false,
        };
        reference.check(&Op::Exit { task: 0 }, &exited).unwrap();
        let facts = RequestFacts {
            capable: true,
            init_ns: true,
            target_exists: true,
            fd_is_cgroup: None,
            queued: 0,
            target_pid: Some(1),
        };
        let query = Op::QueryTgid { port: 0, target: Target::Task(0) };
        let answer = |record: &TaskstatsRecord| Outcome::Request {
            facts: facts.clone(),
            error: Some(0),
            replies: Replies::from_vec(vec![tgid_reply(1, record)]),
            port: 100,
            lists_after: None,
        };
        // Thread 3 exited (folded: its group had three threads); 1 and 2 live.
        let right =
            TaskstatsRecord { version: 8, cpu_count: 5, cpu_delay_total: 50, nvcsw: 2, ..Default::default() };
        reference.check(&query, &answer(&right)).unwrap();
        let twice = TaskstatsRecord { cpu_count: 7, cpu_delay_total: 70, ..right.clone() };
        let err = reference.check(&query, &answer(&twice)).unwrap_err();
        assert!(err.contains("cpu_count is 7, the reference's record says 5"), "{err}");
        let swapped = TaskstatsRecord { nvcsw: 0, nivcsw: 2, ..right };
        assert!(reference.check(&query, &answer(&swapped)).unwrap_err().contains("nvcsw"));
    }

    /// An allocation that failed during an exit leaves two legal worlds: the thread folded into
    /// a newly allocated group stats, or not. Both TGID figures pass until one reply picks one;
    /// then only that one does, and figures matching neither fail.
    #[test]
    fn an_exit_that_saw_an_allocation_fail_keeps_both_group_figures_until_a_reply_picks_one() {
        let mut reference = TaskstatsModel::new(&TaskstatsConfig::contract("linux-3.8"));
        let work = |n: u64| Work { cpu_count: n, ..Work::default() };
        reference.check(&Op::Fork { parent: 0, kind: ForkKind::Thread }, &Outcome::Forked(Ok(2))).unwrap();
        for pid in [1, 2] {
            reference.check(&Op::Run { task: 0 }, &Outcome::Ran { pid, work: work(u64::from(pid)) }).unwrap();
        }
        let exited = Outcome::Exited {
            pid: 2,
            cpu: 0,
            delivered: Default::default(),
            closed: vec![],
            clones: (0, false),
            pruned: 0,
            faulted: true,
        };
        reference.check(&Op::Exit { task: 1 }, &exited).unwrap();
        let facts = RequestFacts {
            capable: true,
            init_ns: true,
            target_exists: true,
            fd_is_cgroup: None,
            queued: 0,
            target_pid: Some(1),
        };
        let query = Op::QueryTgid { port: 0, target: Target::Task(0) };
        let answer = |cpu_count: u64| Outcome::Request {
            facts: facts.clone(),
            error: Some(0),
            replies: Replies::from_vec(vec![tgid_reply(
                1,
                &TaskstatsRecord { version: 8, cpu_count, ..Default::default() },
            )]),
            port: 100,
            lists_after: None,
        };
        let err = reference.clone().check(&query, &answer(5)).unwrap_err();
        assert!(err.contains("nor any of the 2 values"), "{err}");
        reference.clone().check(&query, &answer(3)).unwrap();
        reference.check(&query, &answer(1)).unwrap();
        assert!(reference.check(&query, &answer(3)).is_err(), "the unfolded world was picked");
    }

    /// After an allocation failure the exit may have sent nothing at all; without one, a
    /// listener left out is wrong; and a record that reached a listener is judged as sent.
    #[test]
    fn an_exit_that_saw_an_allocation_fail_may_send_nothing_but_nothing_else() {
        let mut reference = TaskstatsModel::new(&TaskstatsConfig::contract("linux-3.8"));
        reference.check(&Op::Fork { parent: 0, kind: ForkKind::Process }, &Outcome::Forked(Ok(2))).unwrap();
        reference.ports.extend([(100, 0), (101, 0)]);
        reference.lists[0] = vec![101, 100];
        let exit = |delivered: Vec<u32>, clones: (u64, bool), faulted| Outcome::Exited {
            pid: 2,
            cpu: 0,
            delivered: delivered.into(),
            closed: vec![],
            clones,
            pruned: 0,
            faulted,
        };
        reference.clone().check(&Op::Exit { task: 1 }, &exit(vec![], (0, false), true)).unwrap();
        assert!(reference.clone().check(&Op::Exit { task: 1 }, &exit(vec![], (0, false), false)).is_err());
        assert!(reference.clone().check(&Op::Exit { task: 1 }, &exit(vec![101], (1, false), true)).is_err());
        reference.check(&Op::Exit { task: 1 }, &exit(vec![101, 100], (1, false), true)).unwrap();
        assert_eq!(reference.ports.values().sum::<usize>(), 2);
    }

    /// A requester inside a child pid namespace names tasks by their numbers there: the
    /// reference numbers forks as alloc_pid() does and wants the reply's id and `ac_pid` in the
    /// requester's namespace (3.8), not the global pid.
    #[test]
    fn ids_in_a_reply_are_judged_in_the_requesters_pid_namespace() {
        let mut reference = TaskstatsModel::new(&TaskstatsConfig::contract("linux-3.8"));
        let fork = Op::Fork { parent: 0, kind: ForkKind::NewPidNs };
        assert!(reference.check(&fork, &Outcome::Forked(Ok(3))).is_err(), "alloc_pid() hands out 2 next");
        let mut reference = TaskstatsModel::new(&TaskstatsConfig::contract("linux-3.8"));
        reference.check(&fork, &Outcome::Forked(Ok(2))).unwrap();
        reference.check(&Op::OpenPort { task: 1 }, &Outcome::Port(Some(100))).unwrap();
        reference.check(&Op::Run { task: 1 }, &Outcome::Ran { pid: 2, work: Work::default() }).unwrap();
        let facts = RequestFacts {
            capable: true,
            init_ns: false,
            target_exists: true,
            fd_is_cgroup: None,
            queued: 0,
            target_pid: Some(2),
        };
        let answer = |id: u32, ac_pid: u32| {
            let mut msg = MsgBuilder::genlmsg_put(TASKSTATS_FAMILY_ID, 0, 7, 100, TASKSTATS_CMD_NEW, 1);
            msg.nest_start(TASKSTATS_TYPE_AGGR_PID);
            msg.nla_put_u32(TASKSTATS_TYPE_PID, id);
            msg.nla_put(
                TASKSTATS_TYPE_STATS,
                &TaskstatsRecord { version: 8, ac_pid, ..Default::default() }.to_bytes(8),
            );
            msg.nest_end();
            Outcome::Request {
                facts: facts.clone(),
                error: Some(0),
                replies: Replies::from_vec(vec![msg.finish()]),
                port: 100,
                lists_after: None,
            }
        };
        let query = Op::QueryPid { port: 0, target: Target::Task(1), preempt: None };
        reference.check(&query, &answer(1, 1)).unwrap();
        let err = reference.check(&query, &answer(1, 2)).unwrap_err();
        assert!(err.contains("ac_pid is 2, the requester sees 1"), "{err}");
        assert!(reference.check(&query, &answer(2, 1)).unwrap_err().contains("id Some(2)"));
    }

    /// A registration whose listener allocation failed is undone by add_del_listener()'s
    /// cleanup loop, which also drops an older entry of the port: the port's entries after it
    /// must be those of some CPU the allocation could have failed at, never a completed
    /// registration's.
    #[test]
    fn a_registration_that_failed_part_way_must_leave_what_the_cleanup_loop_leaves() {
        let mut reference = TaskstatsModel::new(&TaskstatsConfig::contract("linux-3.8"));
        reference.ports.insert(100, 0);
        reference.lists = vec![vec![100], vec![]];
        let facts = RequestFacts {
            capable: true,
            init_ns: true,
            target_exists: false,
            fd_is_cgroup: None,
            queued: 0,
            target_pid: None,
        };
        let register = Op::Register { port: 0, mask: MaskSpec::Cpus(0b11) };
        let failed = |lists: Vec<Vec<u32>>| Outcome::Request {
            facts: facts.clone(),
            error: Some(Errno::ENOMEM.to_kernel_return()),
            replies: Replies::new(),
            port: 100,
            lists_after: Some(lists),
        };
        let err = reference.clone().check(&register, &failed(vec![vec![100, 100], vec![100]])).unwrap_err();
        assert!(err.contains("no way add_del_listener() could have gone"), "{err}");
        reference.clone().check(&register, &failed(vec![vec![100], vec![]])).unwrap();
        reference.check(&register, &failed(vec![vec![], vec![]])).unwrap();
        assert_eq!(reference.lists, vec![Vec::<u32>::new(), vec![]], "the first CPU's allocation failed");
    }

    fn p3(text: &str) -> Result<Vec<u32>, Errno> {
        parselist_3x(text.as_bytes(), 64).map(|m| m.iter().collect())
    }

    fn p2(text: &str) -> Result<Vec<u32>, Errno> {
        parselist_2_6_18(text.as_bytes(), 64).map(|m| m.iter().collect())
    }

    #[test]
    fn the_3_x_rules_read_lists_ranges_spaces_and_empty_entries() {
        assert_eq!(p3("0-2,5"), Ok(vec![0, 1, 2, 5]));
        assert_eq!(p3(""), Ok(vec![0]), "an empty list is CPU 0");
        assert_eq!(p3(" 1 "), Ok(vec![1]), "leading and trailing whitespace is skipped");
        assert_eq!(p3("1 2"), Err(Errno::EINVAL), "embedded whitespace");
        assert_eq!(p3("0-"), Ok(vec![0]), "an unfinished range is 0-0");
        assert_eq!(p3(",1"), Ok(vec![0, 1]), "an empty entry is 0");
        assert_eq!(p3("1,"), Ok(vec![1]), "a trailing comma ends the list");
        assert_eq!(p3("1 ,2"), Err(Errno::EINVAL), "a space before a comma");
        assert_eq!(p3("-1"), Err(Errno::EINVAL));
        assert_eq!(p3("2-1"), Err(Errno::EINVAL));
        assert_eq!(p3("64"), Err(Errno::ERANGE));
        assert_eq!(p3("0-63"), Ok((0..64).collect()), "every bit of the word");
        assert_eq!(p3("63,0-1,1"), Ok(vec![0, 1, 63]), "ascending, each once");
        assert_eq!(p3("1\n2"), Ok(vec![1]), "the list ends at a newline");
        assert_eq!(p3("x"), Err(Errno::EINVAL));
    }

    #[test]
    fn the_2_6_18_rules_want_a_digit_first_and_no_spaces() {
        assert_eq!(p2("0-2,5"), Ok(vec![0, 1, 2, 5]));
        assert_eq!(p2(""), Err(Errno::EINVAL));
        assert_eq!(p2(" 1"), Err(Errno::EINVAL));
        assert_eq!(p2("1,"), Ok(vec![1]), "a trailing comma ends the list");
        assert_eq!(p2("0-"), Err(Errno::EINVAL));
        assert_eq!(p2("64"), Err(Errno::ERANGE));
        assert_eq!(p2("1x"), Err(Errno::EINVAL));
    }

    #[test]
    fn the_copy_loses_the_last_byte_of_a_payload_without_its_nul() {
        assert_eq!(c_string(&strlcpy_payload(b"12\0")), b"12");
        assert_eq!(c_string(&strlcpy_payload(b"12")), b"1");
        assert_eq!(c_string(&strlcpy_payload(b"1\x002")), b"1");
    }

    /// The bit walk names the CPUs a bit-by-bit scan names, in its order; `below` keeps those
    /// under its bound.
    #[test]
    fn cpu_bits_walk_the_set_bits_ascending() {
        let words = [0, 1, 0b1011, 1 << 63, u64::MAX, 0x8000_0000_0000_0001, 0xdead_beef_0f0f_1234];
        for word in words {
            let scan: Vec<u32> = (0..64).filter(|&cpu| word & (1 << cpu) != 0).collect();
            assert_eq!(CpuBits(word).iter().collect::<Vec<_>>(), scan, "{word:#x}");
            assert_eq!(CpuBits(word).count(), scan.len());
            for n in [0, 1, 3, 63, 64, 65] {
                let kept: Vec<u32> = scan.iter().copied().filter(|&cpu| (cpu as usize) < n).collect();
                assert_eq!(CpuBits(word).below(n).iter().collect::<Vec<_>>(), kept, "{word:#x} below {n}");
            }
        }
    }

    /// A mask read off its spec is what each version's parser makes of the text the driver
    /// sends for it: every list of CPUs (the empty one included) and every range, under both
    /// parsers; and the odd texts, which are spelled and parsed, are the oversized ones only
    /// past the sixth.
    #[test]
    fn specs_read_as_both_parsers_read_their_text() {
        let mut specs: Vec<MaskSpec> = (0..=u8::MAX).map(MaskSpec::Cpus).collect();
        specs.extend((0..=u8::MAX).flat_map(|a| (0..=u8::MAX).map(move |b| MaskSpec::Range(a, b))));
        specs.extend((0..=u8::MAX).map(MaskSpec::Odd));
        let parsers = ["linux-2.6.19", "linux-3.8"].map(|preset| {
            let reference = TaskstatsModel::new(&TaskstatsConfig::contract(preset));
            (preset, reference)
        });
        let [(_, old), (_, new)] = &parsers;
        assert!(!old.fixes.on(crate::fixes::CPULIST_PARSE_3) && new.fixes.on(crate::fixes::CPULIST_PARSE_3));
        for (preset, reference) in &parsers {
            for spec in &specs {
                let text = spec.text();
                let read = reference.read_mask(spec);
                assert_eq!(read.parsed, reference.parse(&text), "{preset}: {spec:?} spelled {text:?}");
                assert_eq!(read.oversized, text.len() > TASKSTATS_CPUMASK_MAXLEN, "{preset}: {spec:?}");
            }
        }
    }

    /// The text read in place is the copy's C string, for every payload of up to four bytes
    /// over an alphabet with NULs and digits.
    #[test]
    fn the_text_read_in_place_is_the_copys_c_string() {
        let alphabet = [0u8, b'0', b'1', b','];
        for len in 0..=4u32 {
            for code in 0..4usize.pow(len) {
                let payload: Vec<u8> = (0..len).map(|i| alphabet[code / 4usize.pow(i) % 4]).collect();
                assert_eq!(copied_text(&payload), c_string(&strlcpy_payload(&payload)), "{payload:?}");
            }
        }
    }
}
