//! The operations the op-level checker generates, what each returned, and the proptest
//! strategy that generates them.

use proptest::prelude::*;
use proptest::strategy::BoxedStrategy;
use serde::{Deserialize, Serialize};
use sim_core::gen::{OpGen, OpRng};
use sim_core::Errno;

use super::TaskstatsConfig;
use crate::task::TaskState;
use crate::taskstats::{ForkKind, TASKSTATS_CPUMASK_MAXLEN};
use crate::wire::{cpumask_payload, Replies};

/// A cpumask attribute as an operation spells it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum MaskSpec {
    /// The CPUs of a bitmap, as a list ("0,2").
    Cpus(u8),
    /// A range "a-b".
    Range(u8, u8),
    /// Text that is wrong one way or another.
    Odd(u8),
}

/// Odd cpumask texts, each with its NUL (the payload [`cpumask_payload`] would make of it).
const ODD_MASKS: [&[u8]; 6] = [b"\0", b"1-0\0", b"x\0", b"999\0", b"0-\0", b"0,,1\0"];

/// A cpumask attribute's payload as [`MaskSpec::text`] spells it: in a buffer on the stack for
/// a list or a range ("0,1,2,3,4,5,6,7" and "255-255" fit), a constant for the odd texts (the
/// oversized one made once per process). The driver spells every cpumask request's mask (the
/// reference only the odd ones), so the spelling allocates nothing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum MaskText {
    /// The first `.1` bytes of the buffer.
    Inline([u8; MASK_TEXT_ROOM], u8),
    /// One of [`ODD_MASKS`], or the oversized text (made once).
    Constant(&'static [u8]),
}

/// The room of [`MaskText::Inline`]: eight one-digit CPUs, seven commas and the NUL.
const MASK_TEXT_ROOM: usize = 16;

impl MaskText {
    /// An empty inline text.
    fn inline() -> MaskText {
        MaskText::Inline([0; MASK_TEXT_ROOM], 0)
    }

    /// `byte` appended to an inline text (never called on the others).
    fn push(&mut self, byte: u8) {
        if let MaskText::Inline(buffer, len) = self {
            buffer[usize::from(*len)] = byte;
            *len += 1;
        }
    }

    /// `value` in decimal, appended (what `format!("{value}")` spells).
    fn push_decimal(&mut self, value: u8) {
        if value >= 100 {
            self.push(b'0' + value / 100);
        }
        if value >= 10 {
            self.push(b'0' + value / 10 % 10);
        }
        self.push(b'0' + value % 10);
    }
}

impl std::ops::Deref for MaskText {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        match self {
            MaskText::Inline(buffer, len) => &buffer[..usize::from(*len)],
            MaskText::Constant(text) => text,
        }
    }
}

impl MaskSpec {
    /// Whether this is the oversized odd text (longer than TASKSTATS_CPUMASK_MAXLEN; the same
    /// text whatever its index).
    pub(crate) fn is_oversized(&self) -> bool {
        matches!(self, MaskSpec::Odd(i) if usize::from(*i) >= ODD_MASKS.len())
    }

    /// The attribute's payload: the text and its NUL ([`cpumask_payload`]), built in one buffer
    /// (no text made first and copied), on the stack but for the odd texts, which are constants.
    pub(crate) fn text(&self) -> MaskText {
        match self {
            MaskSpec::Cpus(bits) => {
                // "0,2": one digit and a comma per CPU (eight at most), lowest first, the last
                // comma made the NUL; the empty list is the NUL alone.
                let (mut buffer, mut len) = ([0; MASK_TEXT_ROOM], 0);
                let mut left = *bits;
                while left != 0 {
                    buffer[len] = b'0' + left.trailing_zeros() as u8;
                    buffer[len + 1] = b',';
                    len += 2;
                    left &= left - 1;
                }
                match len {
                    0 => len = 1,
                    _ => buffer[len - 1] = 0,
                }
                MaskText::Inline(buffer, len as u8)
            }
            MaskSpec::Range(a, b) => {
                let mut text = MaskText::inline();
                text.push_decimal(*a);
                text.push(b'-');
                text.push_decimal(*b);
                text.push(0);
                text
            }
            MaskSpec::Odd(i) if usize::from(*i) < ODD_MASKS.len() => {
                MaskText::Constant(ODD_MASKS[usize::from(*i)])
            }
            // Oversized: longer than TASKSTATS_CPUMASK_MAXLEN, spelled once per process.
            MaskSpec::Odd(_) => {
                static OVERSIZED: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();
                MaskText::Constant(
                    OVERSIZED.get_or_init(|| cpumask_payload(&"0,".repeat(TASKSTATS_CPUMASK_MAXLEN / 2 + 8))),
                )
            }
        }
    }
}

/// Which task a query names.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Target {
    /// A task picked by index, named by its number in the requester's pid namespace.
    Task(u8),
    /// A raw number.
    Nr(u32),
}

/// One operation.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[allow(missing_docs)]
pub enum Op {
    Fork {
        parent: u8,
        kind: ForkKind,
    },
    Run {
        task: u8,
    },
    SetState {
        task: u8,
        state: TaskState,
    },
    Migrate {
        task: u8,
        cpu: u8,
    },
    Attach {
        task: u8,
        cgroup: u8,
    },
    OpenFile {
        task: u8,
        cgroup: Option<u8>,
    },
    Exit {
        task: u8,
    },
    /// The task's ITIMER_REAL fires: it_real_fn() in softirq context.
    Timer {
        task: u8,
    },
    Reap {
        task: u8,
    },
    OpenPort {
        task: u8,
    },
    ClosePort {
        port: u8,
    },
    Recv {
        port: u8,
    },
    Register {
        port: u8,
        mask: MaskSpec,
    },
    Deregister {
        port: u8,
        mask: MaskSpec,
    },
    QueryPid {
        port: u8,
        target: Target,
        /// The requester is preempted at its first preemption point, and the task this picks
        /// (among live tasks other than init and the requester) runs do_exit() meanwhile; a
        /// query that reaches no preemption point is followed by that exit. Op-level only.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        preempt: Option<u8>,
    },
    QueryTgid {
        port: u8,
        target: Target,
    },
    CgroupStats {
        port: u8,
        fd: u8,
        /// An extra attribute of this type (2..4: past the cgroupstats policy), if any.
        #[serde(default)]
        extra: Option<u8>,
    },
    Raw {
        port: u8,
        bytes: Vec<u8>,
    },
    /// The task sets its group's SIGCHLD action (do_sigaction()): SIG_IGN (or SA_NOCLDWAIT)
    /// when `ignore`, else SIG_DFL. A leader whose parent ignores SIGCHLD is reaped at its
    /// group's death with no wait(2) (do_notify_parent()'s autoreap).
    SigactionSigchld {
        task: u8,
        ignore: bool,
    },
}

/// The world facts a request's errno depends on, gathered from the model before the request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RequestFacts {
    /// capable(CAP_NET_ADMIN).
    pub capable: bool,
    /// In the initial user and pid namespaces.
    pub init_ns: bool,
    /// The query's target exists in the requester's pid namespace.
    pub target_exists: bool,
    /// The fd: None if not open, Some(true) for a cgroup directory.
    pub fd_is_cgroup: Option<bool>,
    /// Messages already queued on the port.
    pub queued: usize,
    /// The global pid of the task a query names (the driver's choice), when it exists.
    pub target_pid: Option<u32>,
}

/// What a task did while it ran (its accounting counters' increase), as the scheduler and the
/// delay accounting would record it: the reference sums these into its own per-task figures.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[allow(missing_docs)]
pub struct Work {
    pub cpu_count: u64,
    pub cpu_delay_total: u64,
    pub blkio_count: u64,
    pub blkio_delay_total: u64,
    pub swapin_count: u64,
    pub swapin_delay_total: u64,
    pub cpu_run_real_total: u64,
    pub cpu_run_virtual_total: u64,
    pub freepages_count: u64,
    pub freepages_delay_total: u64,
    pub nvcsw: u64,
    pub nivcsw: u64,
    pub utime_ns: u64,
    pub stime_ns: u64,
}

/// What an operation returned.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Nothing to judge (no such target, or a state change).
    Done,
    /// fork.
    Forked(Result<u32, Errno>),
    /// A task ran (op-level checker only): which, and what it did.
    Ran { pid: u32, work: Work },
    /// do_exit: the record's CPU, the ports that got it in order, the ports its group's death
    /// closed, the `skb_clone()` calls the fault injector saw and whether one failed, the
    /// listeners pruned, and whether the fault injector failed another call during it (an
    /// allocation: the reference then allows each way that allocation could have gone).
    Exited {
        pid: u32,
        cpu: u32,
        delivered: smallvec::SmallVec<[u32; 4]>,
        closed: Vec<u32>,
        clones: (u64, bool),
        pruned: usize,
        faulted: bool,
    },
    /// A port opened.
    Port(Option<u32>),
    /// A port closed.
    Closed(Option<u32>),
    /// Messages received from a port.
    Received(Option<u32>, usize),
    /// A request: its facts, the errno in its ack (None: no ack came back), the replies, and
    /// (when a fault was injected during it) the listener lists afterwards.
    Request {
        facts: RequestFacts,
        error: Option<i32>,
        replies: Replies,
        port: u32,
        lists_after: Option<Vec<Vec<u32>>>,
    },
    /// An operation during which another task ran (a preempted query and the exit that ran
    /// meanwhile): each part with the operation it is the outcome of, in the order they finished.
    Interleaved(Vec<(Op, Outcome)>),
}

impl Work {
    /// The increase of a task's counters between two readings.
    pub(crate) fn between(before: &crate::task::Acct, after: &crate::task::Acct) -> Work {
        Work {
            cpu_count: after.cpu_count - before.cpu_count,
            cpu_delay_total: after.cpu_delay_total - before.cpu_delay_total,
            blkio_count: after.blkio_count - before.blkio_count,
            blkio_delay_total: after.blkio_delay_total - before.blkio_delay_total,
            swapin_count: after.swapin_count - before.swapin_count,
            swapin_delay_total: after.swapin_delay_total - before.swapin_delay_total,
            cpu_run_real_total: after.cpu_run_real_total - before.cpu_run_real_total,
            cpu_run_virtual_total: after.cpu_run_virtual_total - before.cpu_run_virtual_total,
            freepages_count: after.freepages_count - before.freepages_count,
            freepages_delay_total: after.freepages_delay_total - before.freepages_delay_total,
            nvcsw: after.nvcsw - before.nvcsw,
            nivcsw: after.nivcsw - before.nivcsw,
            utime_ns: after.utime_ns - before.utime_ns,
            stime_ns: after.stime_ns - before.stime_ns,
        }
    }

    /// The `task_delay_info` part of a run's work: the increase of those counters between two
    /// readings under `delays->lock` (delayacct_end()'s before and after).
    pub(crate) fn set_delays_between(
        &mut self,
        before: &crate::task::DelayInfo,
        after: &crate::task::DelayInfo,
    ) {
        self.blkio_count = after.blkio_count - before.blkio_count;
        self.blkio_delay_total = after.blkio_delay_total - before.blkio_delay_total;
        self.swapin_count = after.swapin_count - before.swapin_count;
        self.swapin_delay_total = after.swapin_delay_total - before.swapin_delay_total;
        self.freepages_count = after.freepages_count - before.freepages_count;
        self.freepages_delay_total = after.freepages_delay_total - before.freepages_delay_total;
    }
}

/// The operation kinds' weights, in [`op_strategy`]'s order: forks, runs, exits and
/// registrations most, the operations the bugs need. The strategy and the cheap generator
/// ([`generator`]) both read them, so the two cannot drift apart.
const OP_WEIGHTS: [u32; 19] = [4, 4, 1, 1, 1, 1, 4, 1, 1, 2, 1, 2, 4, 1, 2, 2, 1, 1, 1];

/// The fork kinds' weights: thread, process, unprivileged, new pid namespace, new user namespace.
const FORK_WEIGHTS: [u32; 5] = [3, 2, 1, 1, 1];

/// The cpumask kinds' weights: a CPU list, a range, odd text.
const MASK_WEIGHTS: [u32; 3] = [6, 1, 1];

/// The query targets' weights: a task by index, a raw number.
const TARGET_WEIGHTS: [u32; 2] = [4, 1];

/// The sum of `weights`, at compile time: the bound [`OpRng::weighted`] draws below.
const fn weight_total(weights: &[u32]) -> usize {
    let (mut total, mut at) = (0, 0);
    while at < weights.len() {
        total += weights[at] as usize;
        at += 1;
    }
    total
}

/// The index [`OpRng::weighted`] returns for each number it may draw below the sum of
/// `weights` (`N`): `weights[0]` zeros, then `weights[1]` ones, and so on. Built at compile
/// time, so the generator's pick is the one draw and a load instead of a walk down the weights.
const fn pick_table<const N: usize>(weights: &[u32]) -> [u8; N] {
    let mut table = [0; N];
    let (mut filled, mut index) = (0, 0);
    while index < weights.len() {
        let mut n = 0;
        while n < weights[index] {
            table[filled] = index as u8;
            filled += 1;
            n += 1;
        }
        index += 1;
    }
    assert!(filled == N, "a pick table is as long as its weights' sum");
    table
}

/// [`OP_WEIGHTS`]' pick table (see [`pick_table`]).
const OP_PICKS: [u8; weight_total(&OP_WEIGHTS)] = pick_table(&OP_WEIGHTS);
/// [`FORK_WEIGHTS`]' pick table.
const FORK_PICKS: [u8; weight_total(&FORK_WEIGHTS)] = pick_table(&FORK_WEIGHTS);
/// [`MASK_WEIGHTS`]' pick table.
const MASK_PICKS: [u8; weight_total(&MASK_WEIGHTS)] = pick_table(&MASK_WEIGHTS);
/// [`TARGET_WEIGHTS`]' pick table.
const TARGET_PICKS: [u8; weight_total(&TARGET_WEIGHTS)] = pick_table(&TARGET_WEIGHTS);

/// [`OpRng::weighted`] over the weights `picks` was built from: the same draw (one number
/// below their sum), so the same index and the same stream.
fn pick_weighted(rng: &mut OpRng, picks: &[u8]) -> usize {
    usize::from(picks[rng.below(picks.len() as u64) as usize])
}

/// The proptest strategy for one operation, weighted by [`OP_WEIGHTS`].
pub(crate) fn op_strategy(config: &TaskstatsConfig) -> BoxedStrategy<Op> {
    let cpus = config.params.cpus.max(1) as u8;
    let [w_thread, w_process, w_unprivileged, w_newpid, w_newuser] = FORK_WEIGHTS;
    let kind = prop_oneof![
        w_thread => Just(ForkKind::Thread),
        w_process => Just(ForkKind::Process),
        w_unprivileged => any::<u8>().prop_map(ForkKind::Unprivileged),
        w_newpid => Just(ForkKind::NewPidNs),
        w_newuser => Just(ForkKind::NewUserNs),
    ];
    let state = prop_oneof![
        Just(TaskState::Running),
        Just(TaskState::Interruptible),
        Just(TaskState::Uninterruptible),
        Just(TaskState::Stopped)
    ];
    let [w_cpus, w_range, w_odd] = MASK_WEIGHTS;
    let mask = prop_oneof![
        w_cpus => (1u8..(1 << cpus.min(7))).prop_map(MaskSpec::Cpus),
        w_range => (0u8..4, 0u8..4).prop_map(|(a, b)| MaskSpec::Range(a, b)),
        w_odd => (0u8..7).prop_map(MaskSpec::Odd),
    ];
    let [w_task, w_nr] = TARGET_WEIGHTS;
    let target =
        prop_oneof![w_task => any::<u8>().prop_map(Target::Task), w_nr => (0u32..40).prop_map(Target::Nr)];
    let w = OP_WEIGHTS;
    prop_oneof![
            w[0] => (any::<u8>(), kind).prop_map(|(parent, kind)| Op::Fork { parent, kind }),
            w[1] => any::<u8>().prop_map(|task| Op::Run { task }),
            w[2] => (any::<u8>(), state).prop_map(|(task, state)| Op::SetState { task, state }),
            w[3] => (any::<u8>(), 0..cpus).prop_map(|(task, cpu)| Op::Migrate { task, cpu }),
            w[4] => (any::<u8>(), any::<u8>()).prop_map(|(task, cgroup)| Op::Attach { task, cgroup }),
            w[5] => (any::<u8>(), proptest::option::of(any::<u8>())).prop_map(|(task, cgroup)| Op::OpenFile { task, cgroup }),
            w[6] => any::<u8>().prop_map(|task| Op::Exit { task }),
            w[7] => any::<u8>().prop_map(|task| Op::Timer { task }),
            w[8] => any::<u8>().prop_map(|task| Op::Reap { task }),
            w[9] => any::<u8>().prop_map(|task| Op::OpenPort { task }),
            w[10] => any::<u8>().prop_map(|port| Op::ClosePort { port }),
            w[11] => any::<u8>().prop_map(|port| Op::Recv { port }),
            w[12] => (any::<u8>(), mask.clone()).prop_map(|(port, mask)| Op::Register { port, mask }),
            w[13] => (any::<u8>(), mask).prop_map(|(port, mask)| Op::Deregister { port, mask }),
            w[14] => (any::<u8>(), target.clone(), proptest::option::weighted(0.25, any::<u8>()))
                .prop_map(|(port, target, preempt)| Op::QueryPid { port, target, preempt }),
            w[15] => (any::<u8>(), target).prop_map(|(port, target)| Op::QueryTgid { port, target }),
            w[16] => (any::<u8>(), 0u8..6, proptest::option::weighted(0.2, 2u8..5))
                .prop_map(|(port, fd, extra)| Op::CgroupStats { port, fd, extra }),
            w[17] => (any::<u8>(), proptest::collection::vec(any::<u8>(), 0..48)).prop_map(|(port, bytes)| Op::Raw { port, bytes }),
            w[18] => (any::<u8>(), any::<bool>()).prop_map(|(task, ignore)| Op::SigactionSigchld { task, ignore }),
        ]
        .boxed()
}

/// The cheap generator ([`sim_core::gen`]): the distribution of [`op_strategy`] (the same
/// weights, the same ranges for every field) drawn from a plain random stream instead of a
/// proptest value tree, which cost a third of a campaign's time.
pub(crate) fn generator(config: &TaskstatsConfig) -> OpGen<Op> {
    let cpus = config.params.cpus.max(1) as u8;
    Box::new(move |rng: &mut OpRng| gen_op(rng, cpus))
}

/// One operation as [`op_strategy`] draws it: a kind by [`OP_WEIGHTS`], then its fields.
fn gen_op(rng: &mut OpRng, cpus: u8) -> Op {
    match pick_weighted(rng, &OP_PICKS) {
        0 => Op::Fork { parent: rng.any_u8(), kind: gen_fork_kind(rng) },
        1 => Op::Run { task: rng.any_u8() },
        2 => Op::SetState { task: rng.any_u8(), state: gen_state(rng) },
        3 => Op::Migrate { task: rng.any_u8(), cpu: rng.u8_below(cpus) },
        4 => Op::Attach { task: rng.any_u8(), cgroup: rng.any_u8() },
        5 => Op::OpenFile { task: rng.any_u8(), cgroup: rng.any_bool().then(|| rng.any_u8()) },
        6 => Op::Exit { task: rng.any_u8() },
        7 => Op::Timer { task: rng.any_u8() },
        8 => Op::Reap { task: rng.any_u8() },
        9 => Op::OpenPort { task: rng.any_u8() },
        10 => Op::ClosePort { port: rng.any_u8() },
        11 => Op::Recv { port: rng.any_u8() },
        12 => Op::Register { port: rng.any_u8(), mask: gen_mask(rng, cpus) },
        13 => Op::Deregister { port: rng.any_u8(), mask: gen_mask(rng, cpus) },
        14 => Op::QueryPid {
            port: rng.any_u8(),
            target: gen_target(rng),
            preempt: rng.chance(1, 4).then(|| rng.any_u8()),
        },
        15 => Op::QueryTgid { port: rng.any_u8(), target: gen_target(rng) },
        16 => Op::CgroupStats {
            port: rng.any_u8(),
            fd: rng.u8_below(6),
            extra: rng.chance(1, 5).then(|| rng.u8_in(2, 4)),
        },
        17 => {
            let port = rng.any_u8();
            let len = rng.below(48) as usize;
            Op::Raw { port, bytes: (0..len).map(|_| rng.any_u8()).collect() }
        }
        _ => Op::SigactionSigchld { task: rng.any_u8(), ignore: rng.any_bool() },
    }
}

/// A fork kind by [`FORK_WEIGHTS`].
fn gen_fork_kind(rng: &mut OpRng) -> ForkKind {
    match pick_weighted(rng, &FORK_PICKS) {
        0 => ForkKind::Thread,
        1 => ForkKind::Process,
        2 => ForkKind::Unprivileged(rng.any_u8()),
        3 => ForkKind::NewPidNs,
        _ => ForkKind::NewUserNs,
    }
}

/// One of the four task states, each as likely.
fn gen_state(rng: &mut OpRng) -> TaskState {
    match rng.below(4) {
        0 => TaskState::Running,
        1 => TaskState::Interruptible,
        2 => TaskState::Uninterruptible,
        _ => TaskState::Stopped,
    }
}

/// A cpumask by [`MASK_WEIGHTS`]: a non-empty bitmap of the first `cpus` CPUs (seven at most),
/// a range within 0..4, or one of the odd texts.
fn gen_mask(rng: &mut OpRng, cpus: u8) -> MaskSpec {
    match pick_weighted(rng, &MASK_PICKS) {
        0 => MaskSpec::Cpus(rng.u8_in(1, (1u8 << cpus.min(7)) - 1)),
        1 => MaskSpec::Range(rng.u8_below(4), rng.u8_below(4)),
        _ => MaskSpec::Odd(rng.u8_below(7)),
    }
}

/// A query target by [`TARGET_WEIGHTS`]: a task by index, or a raw number below 40.
fn gen_target(rng: &mut OpRng) -> Target {
    match pick_weighted(rng, &TARGET_PICKS) {
        0 => Target::Task(rng.any_u8()),
        _ => Target::Nr(rng.below(40) as u32),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The one-buffer spelling is the text `format!` spells, NUL included, for every mask.
    #[test]
    fn mask_text_spells_what_format_spells() {
        for a in 0..=u8::MAX {
            for b in [0, 1, 9, 10, 99, 100, 255, a] {
                assert_eq!(*MaskSpec::Range(a, b).text(), cpumask_payload(&format!("{a}-{b}")), "{a}-{b}");
            }
        }
        for bits in 0..=u8::MAX {
            let list: Vec<String> =
                (0..8).filter(|cpu| bits & (1 << cpu) != 0).map(|c| c.to_string()).collect();
            assert_eq!(*MaskSpec::Cpus(bits).text(), cpumask_payload(&list.join(",")), "bits {bits:#x}");
        }
        for odd in 0..=u8::MAX {
            let text = if usize::from(odd) < 6 {
                ["", "1-0", "x", "999", "0-", "0,,1"][usize::from(odd)].to_string()
            } else {
                "0,".repeat(TASKSTATS_CPUMASK_MAXLEN / 2 + 8)
            };
            assert_eq!(*MaskSpec::Odd(odd).text(), cpumask_payload(&text), "odd {odd}");
        }
    }

    /// A pick table picks what `OpRng::weighted` picks from the same stream, and leaves the
    /// stream where it leaves it, for every table the generator uses.
    #[test]
    fn pick_tables_pick_what_weighted_picks() {
        let tables: [(&[u32], &[u8]); 4] = [
            (&OP_WEIGHTS, &OP_PICKS),
            (&FORK_WEIGHTS, &FORK_PICKS),
            (&MASK_WEIGHTS, &MASK_PICKS),
            (&TARGET_WEIGHTS, &TARGET_PICKS),
        ];
        for (weights, picks) in tables {
            for seed in 0..200 {
                let (mut walked, mut looked_up) = (OpRng::for_case(seed), OpRng::for_case(seed));
                for draw in 0..50 {
                    let want = walked.weighted(weights);
                    assert_eq!(
                        pick_weighted(&mut looked_up, picks),
                        want,
                        "{weights:?} seed {seed} draw {draw}"
                    );
                }
                assert_eq!(
                    walked.next_u64(),
                    looked_up.next_u64(),
                    "{weights:?} seed {seed}: the streams part"
                );
            }
        }
    }
}
