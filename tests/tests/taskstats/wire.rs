//! The wire, checked from outside: a decoder written from include/uapi/linux/taskstats.h and
//! the netlink/genetlink headers (not from the model's encoder) reads the bytes the model emits
//! and compares every field; malformed requests get the kernel's errno and never a panic.

use std::collections::BTreeMap;

use proptest::prelude::*;
use sim_core::{Errno, Sim, SimConfig};
use taskstats_sim::wire::TaskstatsRecord;
use taskstats_sim::{netlink_send, task_cx, Fixes, ForkKind, Params, Taskstats};

// --- an independent decoder ------------------------------------------------------------------

/// struct taskstats (version 8) as the uapi header declares it: (name, size, alignment), with
/// the header's explicit `__attribute__((aligned(8)))` on cpu_count, ac_sched, ac_uid, ac_etime.
const V8_FIELDS: &[(&str, usize, usize)] = &[
    ("version", 2, 2),
    ("ac_exitcode", 4, 4),
    ("ac_flag", 1, 1),
    ("ac_nice", 1, 1),
    ("cpu_count", 8, 8),
    ("cpu_delay_total", 8, 8),
    ("blkio_count", 8, 8),
    ("blkio_delay_total", 8, 8),
    ("swapin_count", 8, 8),
    ("swapin_delay_total", 8, 8),
    ("cpu_run_real_total", 8, 8),
    ("cpu_run_virtual_total", 8, 8),
    ("ac_comm", 32, 1),
    ("ac_sched", 1, 8),
    ("ac_pad", 3, 1),
    ("ac_uid", 4, 8),
    ("ac_gid", 4, 4),
    ("ac_pid", 4, 4),
    ("ac_ppid", 4, 4),
    ("ac_btime", 4, 4),
    ("ac_etime", 8, 8),
    ("ac_utime", 8, 8),
    ("ac_stime", 8, 8),
    ("ac_minflt", 8, 8),
    ("ac_majflt", 8, 8),
    ("coremem", 8, 8),
    ("virtmem", 8, 8),
    ("hiwater_rss", 8, 8),
    ("hiwater_vm", 8, 8),
    ("read_char", 8, 8),
    ("write_char", 8, 8),
    ("read_syscalls", 8, 8),
    ("write_syscalls", 8, 8),
    ("read_bytes", 8, 8),
    ("write_bytes", 8, 8),
    ("cancelled_write_bytes", 8, 8),
    ("nvcsw", 8, 8),
    ("nivcsw", 8, 8),
    ("ac_utimescaled", 8, 8),
    ("ac_stimescaled", 8, 8),
    ("cpu_scaled_run_real_total", 8, 8),
    ("freepages_count", 8, 8),
    ("freepages_delay_total", 8, 8),
];

/// Version 1 (2.6.18): version, padding[3], eight delay counters.
const V1_FIELDS: &[(&str, usize, usize)] = &[
    ("version", 2, 2),
    ("padding", 6, 2),
    ("cpu_count", 8, 8),
    ("cpu_delay_total", 8, 8),
    ("blkio_count", 8, 8),
    ("blkio_delay_total", 8, 8),
    ("swapin_count", 8, 8),
    ("swapin_delay_total", 8, 8),
    ("cpu_run_real_total", 8, 8),
    ("cpu_run_virtual_total", 8, 8),
];

/// The C layout rules: each field at the next multiple of its alignment; the struct's size a
/// multiple of its largest alignment.
fn layout(fields: &[(&'static str, usize, usize)]) -> (Vec<(&'static str, usize, usize)>, usize) {
    let mut at = 0usize;
    let mut max_align = 1usize;
    let mut placed = Vec::new();
    for &(name, size, align) in fields {
        at = at.div_ceil(align) * align;
        placed.push((name, at, size));
        at += size;
        max_align = max_align.max(align);
    }
    (placed, at.div_ceil(max_align) * max_align)
}

fn le(bytes: &[u8]) -> u64 {
    bytes.iter().rev().fold(0u64, |v, b| (v << 8) | u64::from(*b))
}

/// One aggregate: (aggregate type, id attribute type, id, stats fields, ac_comm).
type Aggregate = (u16, u16, u32, BTreeMap<&'static str, u64>, Vec<u8>);

#[derive(Debug)]
struct Decoded {
    nl_len: u32,
    nl_type: u16,
    nl_seq: u32,
    nl_pid: u32,
    genl_cmd: u8,
    genl_version: u8,
    /// Top-level attribute types in order.
    top: Vec<u16>,
    /// (aggregate type, id attribute type, id, stats fields, comm) per aggregate.
    aggregates: Vec<Aggregate>,
}

fn attrs(bytes: &[u8]) -> Vec<(u16, &[u8])> {
    let mut out = Vec::new();
    let mut at = 0;
    while at + 4 <= bytes.len() {
        let len = le(&bytes[at..at + 2]) as usize;
        let kind = le(&bytes[at + 2..at + 4]) as u16;
        assert!(len >= 4 && at + len <= bytes.len(), "attribute at {at} with length {len} overruns");
        out.push((kind, &bytes[at + 4..at + len]));
        at += (len + 3) & !3;
    }
    assert_eq!(at, bytes.len(), "attributes do not end on the message end");
    out
}

fn decode(msg: &[u8]) -> Decoded {
    let nl_len = le(&msg[0..4]) as u32;
    assert_eq!(nl_len as usize, msg.len(), "nlmsg_len is the message length");
    let mut decoded = Decoded {
        nl_len,
        nl_type: le(&msg[4..6]) as u16,
        nl_seq: le(&msg[8..12]) as u32,
        nl_pid: le(&msg[12..16]) as u32,
        genl_cmd: msg[16],
        genl_version: msg[17],
        top: Vec::new(),
        aggregates: Vec::new(),
    };
    for (kind, payload) in attrs(&msg[20..]) {
        decoded.top.push(kind);
        if kind != 4 && kind != 5 {
            continue;
        }
        let inner = attrs(payload);
        assert_eq!(inner.len(), 2, "an aggregate holds the id and the stats");
        let (id_type, id) = (inner[0].0, le(inner[0].1) as u32);
        let (stats_type, stats) = inner[1];
        assert_eq!(stats_type, 3, "TASKSTATS_TYPE_STATS");
        let version = le(&stats[0..2]);
        let fields = if version >= 8 { V8_FIELDS } else { V1_FIELDS };
        let (placed, size) = layout(fields);
        assert_eq!(stats.len(), size, "sizeof(struct taskstats) at version {version}");
        let mut values = BTreeMap::new();
        let mut comm = Vec::new();
        for (name, at, len) in placed {
            if name == "ac_comm" {
                comm = stats[at..at + len].to_vec();
            } else {
                values.insert(name, le(&stats[at..at + len]));
            }
        }
        decoded.aggregates.push((kind, id_type, id, values, comm));
    }
    decoded
}

fn expect_fields(record: &TaskstatsRecord) -> BTreeMap<&'static str, u64> {
    let r = record;
    [
        ("version", u64::from(r.version)),
        ("ac_exitcode", u64::from(r.ac_exitcode)),
        ("ac_flag", u64::from(r.ac_flag)),
        ("ac_nice", u64::from(r.ac_nice)),
        ("cpu_count", r.cpu_count),
        ("cpu_delay_total", r.cpu_delay_total),
        ("blkio_count", r.blkio_count),
        ("blkio_delay_total", r.blkio_delay_total),
        ("swapin_count", r.swapin_count),
        ("swapin_delay_total", r.swapin_delay_total),
        ("cpu_run_real_total", r.cpu_run_real_total),
        ("cpu_run_virtual_total", r.cpu_run_virtual_total),
        ("ac_sched", u64::from(r.ac_sched)),
        ("ac_pad", 0),
        ("ac_uid", u64::from(r.ac_uid)),
        ("ac_gid", u64::from(r.ac_gid)),
        ("ac_pid", u64::from(r.ac_pid)),
        ("ac_ppid", u64::from(r.ac_ppid)),
        ("ac_btime", u64::from(r.ac_btime)),
        ("ac_etime", r.ac_etime),
        ("ac_utime", r.ac_utime),
        ("ac_stime", r.ac_stime),
        ("ac_minflt", r.ac_minflt),
        ("ac_majflt", r.ac_majflt),
        ("coremem", r.coremem),
        ("virtmem", r.virtmem),
        ("hiwater_rss", r.hiwater_rss),
        ("hiwater_vm", r.hiwater_vm),
        ("read_char", r.read_char),
        ("write_char", r.write_char),
        ("read_syscalls", r.read_syscalls),
        ("write_syscalls", r.write_syscalls),
        ("read_bytes", r.read_bytes),
        ("write_bytes", r.write_bytes),
        ("cancelled_write_bytes", r.cancelled_write_bytes),
        ("nvcsw", r.nvcsw),
        ("nivcsw", r.nivcsw),
        ("ac_utimescaled", r.ac_utimescaled),
        ("ac_stimescaled", r.ac_stimescaled),
        ("cpu_scaled_run_real_total", r.cpu_scaled_run_real_total),
        ("freepages_count", r.freepages_count),
        ("freepages_delay_total", r.freepages_delay_total),
    ]
    .into_iter()
    .collect()
}

// --- client-side request builders, written from the headers ------------------------------------

const FAMILY: u16 = 0x11;

fn msg(kind: u16, flags: u16, cmd: u8, attrs: &[(u16, &[u8])]) -> Vec<u8> {
    let mut out = vec![0u8; 16];
    out[4..6].copy_from_slice(&kind.to_le_bytes());
    out[6..8].copy_from_slice(&flags.to_le_bytes());
    out[8..12].copy_from_slice(&9u32.to_le_bytes());
    out.extend_from_slice(&[cmd, 1, 0, 0]);
    for (t, payload) in attrs {
        out.extend_from_slice(&((4 + payload.len()) as u16).to_le_bytes());
        out.extend_from_slice(&t.to_le_bytes());
        out.extend_from_slice(payload);
        while !out.len().is_multiple_of(4) {
            out.push(0);
        }
    }
    let len = out.len() as u32;
    out[0..4].copy_from_slice(&len.to_le_bytes());
    out
}

/// The errno in an NLMSG_ERROR reply (None: no error message).
fn ack_errno(replies: &[Vec<u8>]) -> Option<i32> {
    let last = replies.last()?;
    (le(&last[4..6]) == 2).then(|| le(&last[16..20]) as u32 as i32)
}

fn world(preset: &str, padding: bool) -> (Sim, Taskstats, u32, u32) {
    let sim = Sim::new(SimConfig::new(5).cpus(2));
    let params = Params { cpus: 2, needs_padding: padding, ..Params::default() };
    let model = Taskstats::new(&sim, Fixes::preset(preset).unwrap(), params);
    let leader = model.fork(&task_cx(&sim, &model, 1, "fork"), ForkKind::Process).unwrap();
    let thread = model.fork(&task_cx(&sim, &model, leader, "fork"), ForkKind::Thread).unwrap();
    for _ in 0..5 {
        model.run(&task_cx(&sim, &model, leader, "run"));
        model.run(&task_cx(&sim, &model, thread, "run"));
    }
    assert_eq!(thread, leader + 1, "the thread's pid follows the leader's");
    let port = model.open_port(&task_cx(&sim, &model, 1, "socket")).unwrap();
    (sim, model, leader, port)
}

#[test]
fn pid_reply_decodes_field_for_field_as_fill_stats_computed_it() {
    for (preset, padding) in
        [("linux-3.8", false), ("linux-3.8", true), ("linux-3.4", false), ("linux-2.6.19", true)]
    {
        let (sim, model, leader, port) = world(preset, padding);
        let expect = model.fill_stats_for(&sim.observer_cx("fill_stats_for", 0), leader).unwrap();
        let replies = netlink_send(&sim, &model, port, &msg(FAMILY, 1 | 4, 1, &[(1, &leader.to_le_bytes())]));
        assert_eq!(replies.len(), 2, "{preset}: a reply and an ack");
        assert_eq!(ack_errno(&replies), Some(0), "{preset}: ack with error 0");
        let d = decode(&replies[0]);
        assert_eq!(
            (d.nl_type, d.nl_seq, d.nl_pid),
            (FAMILY, 9, port),
            "{preset}: reply header echoes the request"
        );
        assert_eq!((d.genl_cmd, d.genl_version), (2, 1), "{preset}: TASKSTATS_CMD_NEW, family version 1");
        let padded = padding && preset != "linux-2.6.19";
        assert_eq!(
            d.top,
            if padded { vec![6, 4] } else { vec![4] },
            "{preset}: TASKSTATS_TYPE_NULL only where needed"
        );
        let (aggr, id_type, id, values, comm) = &d.aggregates[0];
        assert_eq!((*aggr, *id_type, *id), (4, 1, leader), "{preset}: AGGR_PID holding PID {leader}");
        let mut want = expect_fields(&expect);
        want.retain(|name, _| values.contains_key(name));
        let mut got = values.clone();
        got.remove("padding");
        assert_eq!(got, want, "{preset}: every field");
        if preset != "linux-2.6.19" {
            assert_eq!(comm.as_slice(), &expect.ac_comm[..], "{preset}: ac_comm");
            assert_eq!(values["version"], 8);
            assert!(values["cpu_count"] > 0 && values["read_char"] > 0, "{preset}: activity shows");
        } else {
            assert_eq!(values["version"], 1);
            assert_eq!(d.nl_len as usize, 16 + 4 + 4 + 8 + 4 + 72, "2.6.19 record is 72 bytes");
        }
    }
}

#[test]
fn exit_event_carries_pid_and_tgid_aggregates_with_per_cpu_sequence_numbers() {
    let (sim, model, leader, port) = world("linux-3.8", false);
    let thread = leader + 1;
    let reg = netlink_send(&sim, &model, port, &msg(FAMILY, 1 | 4, 1, &[(3, b"0-1\0")]));
    assert_eq!(ack_errno(&reg), Some(0));
    let thread_stats = model.fill_stats_for(&sim.observer_cx("fill_stats_for", 0), thread).unwrap();
    model.exit(&task_cx(&sim, &model, thread, "do_exit")).unwrap();
    let leader_stats = model.fill_stats_for(&sim.observer_cx("fill_stats_for", 0), leader).unwrap();
    model.exit(&task_cx(&sim, &model, leader, "do_exit")).unwrap();
    let events = model.recv(&sim.cx("recvmsg", 0), port);
    assert_eq!(events.len(), 2, "one event per exit on cpu 0");
    let first = decode(&events[0]);
    let second = decode(&events[1]);
    assert_eq!(
        (first.nl_pid, first.nl_seq, second.nl_seq),
        (0, 0, 1),
        "events: port 0, cpu 0's seq 0 then 1"
    );
    assert_eq!(first.top, vec![4], "a thread's exit: PID only");
    let mut want = expect_fields(&thread_stats);
    want.retain(|k, _| first.aggregates[0].3.contains_key(k));
    let mut got = first.aggregates[0].3.clone();
    // do_exit runs a virtual microsecond later than the snapshot: elapsed time moves on.
    assert_eq!(got.remove("ac_etime").unwrap(), want.remove("ac_etime").unwrap() + 1, "ac_etime at exit");
    assert_eq!(got, want, "thread record field for field");
    assert_eq!(second.top, vec![4, 5], "the last thread's exit adds the TGID aggregate");
    let (_, id_type, tgid, group, _) = &second.aggregates[1];
    assert_eq!((*id_type, *tgid), (2, leader));
    for field in
        ["cpu_count", "cpu_delay_total", "blkio_delay_total", "cpu_run_real_total", "freepages_count"]
    {
        let sum = expect_fields(&thread_stats)[field] + expect_fields(&leader_stats)[field];
        assert_eq!(group[field], sum, "group {field} is the sum of both threads'");
    }
    assert_eq!(group["read_char"], 0, "the group record aggregates delay accounting only");
}

#[test]
fn malformed_requests_get_the_kernels_errno() {
    let (sim, model, _leader, port) = world("linux-3.8", false);
    let send = |bytes: &[u8]| netlink_send(&sim, &model, port, bytes);
    let e = |errno: Errno| Some(errno.to_kernel_return());
    // Truncated netlink header: netlink_rcv_skb drops it silently.
    assert!(send(&[0u8; 10]).is_empty(), "short header: nothing back");
    // nlmsg_len beyond the buffer: dropped silently.
    let mut long = msg(FAMILY, 5, 1, &[(1, &1u32.to_le_bytes())]);
    long[0] = 200;
    assert!(send(&long).is_empty(), "nlmsg_len past the end: nothing back");
    // No genetlink header: EINVAL.
    let mut short = msg(FAMILY, 5, 1, &[]);
    short.truncate(16);
    short[0..4].copy_from_slice(&16u32.to_le_bytes());
    assert_eq!(ack_errno(&send(&short)), e(Errno::EINVAL), "no genlmsghdr");
    assert_eq!(ack_errno(&send(&msg(0x99, 5, 1, &[]))), e(Errno::ENOENT), "unknown family");
    assert_eq!(ack_errno(&send(&msg(FAMILY, 5, 9, &[]))), e(Errno::EOPNOTSUPP), "unknown command");
    assert_eq!(ack_errno(&send(&msg(FAMILY, 5 | 0x300, 1, &[]))), e(Errno::EOPNOTSUPP), "dump");
    assert_eq!(ack_errno(&send(&msg(FAMILY, 5, 1, &[]))), e(Errno::EINVAL), "no attribute");
    // A PID attribute two bytes long: the policy's NLA_U32 says ERANGE.
    assert_eq!(ack_errno(&send(&msg(FAMILY, 5, 1, &[(1, &[1, 0])]))), e(Errno::ERANGE), "short u32");
    assert_eq!(ack_errno(&send(&msg(FAMILY, 5, 1, &[(3, &[])]))), e(Errno::ERANGE), "empty string");
    // An attribute whose length overruns the message ends the walk: no attributes, EINVAL.
    let mut overrun = msg(FAMILY, 5, 1, &[(1, &1u32.to_le_bytes())]);
    overrun[20] = 60;
    assert_eq!(ack_errno(&send(&overrun)), e(Errno::EINVAL), "attribute length overruns");
    let mut tiny = msg(FAMILY, 5, 1, &[(1, &1u32.to_le_bytes())]);
    tiny[20] = 2;
    assert_eq!(ack_errno(&send(&tiny)), e(Errno::EINVAL), "attribute length below the header");
    let big = vec![b'0'; 100 + 6 * 64 + 1];
    assert_eq!(ack_errno(&send(&msg(FAMILY, 5, 1, &[(3, &big)]))), e(Errno::E2BIG), "oversized cpumask");
    assert_eq!(ack_errno(&send(&msg(FAMILY, 5, 1, &[(3, b"1-0\0")]))), e(Errno::EINVAL), "backwards range");
    assert_eq!(ack_errno(&send(&msg(FAMILY, 5, 1, &[(3, b"64\0")]))), e(Errno::ERANGE), "cpu past NR_CPUS");
    assert_eq!(ack_errno(&send(&msg(FAMILY, 5, 1, &[(3, b"5\0")]))), e(Errno::EINVAL), "cpu not possible");
    assert_eq!(
        ack_errno(&send(&msg(FAMILY, 5, 1, &[(1, &999u32.to_le_bytes())]))),
        e(Errno::ESRCH),
        "no such pid"
    );
    assert_eq!(ack_errno(&send(&msg(FAMILY, 5, 3, &[]))), e(Errno::EINVAL), "cgroupstats without fd");
    assert_eq!(
        ack_errno(&send(&msg(FAMILY, 5, 3, &[(1, &0u32.to_le_bytes())]))),
        e(Errno::EINVAL),
        "fd 0 is no cgroup"
    );
    assert_eq!(
        ack_errno(&send(&msg(FAMILY, 5, 3, &[(1, &77u32.to_le_bytes())]))),
        Some(0),
        "bad fd: 0, no reply"
    );
    let ok = send(&msg(FAMILY, 5, 3, &[(1, &1u32.to_le_bytes())]));
    assert_eq!((ok.len(), ack_errno(&ok)), (2, Some(0)), "cgroup fd: stats and an ack");
    let (_sim2, old, _, old_port) = world("linux-2.6.19", false);
    let r = netlink_send(&_sim2, &old, old_port, &msg(FAMILY, 5, 3, &[(1, &1u32.to_le_bytes())]));
    assert_eq!(ack_errno(&r), e(Errno::EOPNOTSUPP), "2.6.19 has no cgroupstats");
}

#[test]
fn an_empty_cpumask_is_cpu_0_on_3_x_and_einval_on_2_6_19_and_a_bound_port_answers() {
    for (preset, expect) in [("linux-3.4", 0), ("linux-2.6.19", -22)] {
        let sim = Sim::new(SimConfig::new(1).cpus(2));
        let model = Taskstats::new(&sim, Fixes::preset(preset).unwrap(), Params::default());
        model.bind_port(&task_cx(&sim, &model, 1, "bind"), 4242).unwrap();
        assert_eq!(
            model.bind_port(&task_cx(&sim, &model, 1, "bind"), 4242),
            Err(Errno::EBUSY),
            "{preset}: port taken"
        );
        let r = netlink_send(&sim, &model, 4242, &msg(FAMILY, 5, 1, &[(3, b"\0")]));
        assert_eq!(ack_errno(&r), Some(expect), "{preset}: REGISTER \"\"");
        let cx = sim.cx("test", 0);
        assert_eq!(model.listeners(&cx, 0).len(), usize::from(expect == 0), "{preset}: cpu 0 listeners");
    }
}

#[test]
fn unprivileged_and_namespaced_requesters_get_eperm_and_einval() {
    let (sim, model, _leader, _port) = world("linux-3.8", false);
    let user = model.fork(&task_cx(&sim, &model, 1, "fork"), ForkKind::Unprivileged(1)).unwrap();
    let user_port = model.open_port(&task_cx(&sim, &model, user, "socket")).unwrap();
    let r = netlink_send(&sim, &model, user_port, &msg(FAMILY, 5, 1, &[(1, &1u32.to_le_bytes())]));
    assert_eq!(ack_errno(&r), Some(Errno::EPERM.to_kernel_return()), "GENL_ADMIN_PERM");
    let inside = model.fork(&task_cx(&sim, &model, 1, "fork"), ForkKind::NewPidNs).unwrap();
    let ns_port = model.open_port(&task_cx(&sim, &model, inside, "socket")).unwrap();
    let r = netlink_send(&sim, &model, ns_port, &msg(FAMILY, 5, 1, &[(3, b"0\0")]));
    assert_eq!(ack_errno(&r), Some(Errno::EINVAL.to_kernel_return()), "listener outside init_pid_ns");
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 600, ..ProptestConfig::default() })]

    #[test]
    fn random_request_bytes_never_panic_and_errors_are_kernel_errnos(
        body in proptest::collection::vec(any::<u8>(), 0..80),
        cmd in 0u8..5,
        flags in any::<u16>(),
        fix_len in any::<bool>(),
    ) {
        let sim = Sim::new(SimConfig::new(3).cpus(2));
        let model = Taskstats::new(&sim, Fixes::preset("linux-3.8").unwrap(), Params::default());
        let port = model.open_port(&task_cx(&sim, &model, 1, "socket")).unwrap();
        let mut bytes = msg(FAMILY, flags | 1, cmd, &[]);
        bytes.extend_from_slice(&body);
        if fix_len {
            let len = bytes.len() as u32;
            bytes[0..4].copy_from_slice(&len.to_le_bytes());
        }
        let known = [0, 1, 2, 3, 7, 11, 12, 22, 34, 95, 111];
        for reply in netlink_send(&sim, &model, port, &bytes) {
            if le(&reply[4..6]) == 2 {
                let errno = -(le(&reply[16..20]) as u32 as i32);
                prop_assert!(known.contains(&errno), "unexpected errno {errno}");
            }
        }
    }
}

#[test]
fn a_client_resolves_the_taskstats_family_through_nlctrl_as_getdelays_does() {
    let (sim, model, _leader, port) = world("linux-3.8", false);
    // CTRL_CMD_GETFAMILY (3) on GENL_ID_CTRL (0x10) with CTRL_ATTR_FAMILY_NAME (2) "TASKSTATS".
    let replies = netlink_send(&sim, &model, port, &msg(0x10, 1, 3, &[(2, b"TASKSTATS\0")]));
    assert_eq!(replies.len(), 1, "a NEWFAMILY reply, no ack asked");
    let reply = &replies[0];
    assert_eq!((le(&reply[4..6]), reply[16]), (0x10, 1), "from nlctrl, CTRL_CMD_NEWFAMILY");
    let top = attrs(&reply[20..]);
    let id = top.iter().find(|(t, _)| *t == 1).map(|(_, p)| le(p)).unwrap();
    assert_eq!(id, u64::from(FAMILY), "CTRL_ATTR_FAMILY_ID");
    let maxattr = top.iter().find(|(t, _)| *t == 5).map(|(_, p)| le(p)).unwrap();
    assert_eq!(maxattr, 4, "CTRL_ATTR_MAXATTR");
    let ops = top.iter().find(|(t, _)| *t == 6).map(|(_, p)| attrs(p)).unwrap();
    let first = attrs(ops[0].1);
    assert_eq!((le(first[0].1), le(first[1].1) & 1), (1, 1), "TASKSTATS_CMD_GET with GENL_ADMIN_PERM");
    assert_eq!(ops.len(), 2, "and CGROUPSTATS_CMD_GET");
    let unknown = netlink_send(&sim, &model, port, &msg(0x10, 1, 3, &[(2, b"NOPE\0")]));
    assert_eq!(ack_errno(&unknown), Some(Errno::ENOENT.to_kernel_return()));
}
