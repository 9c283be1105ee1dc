//! The wire, checked from outside: a decoder written from include/uapi/linux/taskstats.h and
//! the netlink/genetlink headers (not from the model's encoder) reads the bytes the model emits
//! and compares every field; malformed requests get the kernel's errno and never a panic.

use std::collections::BTreeMap;

use proptest::prelude::*;
use sim_core::{Errno, Sim, SimConfig};
use taskstats_sim::wire::TaskstatsRecord;
use taskstats_sim::{netlink_send, task_cx, Fixes, ForkKind, Params, Taskstats};

use super::uapi::*;

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

// --- requests, as a client writes them ----------------------------------------------------

/// The family id the model's controller hands out (the first GENL_ID_GENERATE id); the nlctrl
/// test resolves it by name.
const FAMILY: u16 = 0x11;
/// NLM_F_REQUEST | NLM_F_ACK.
const REQ_ACK: u16 = NLM_F_REQUEST | NLM_F_ACK;

fn msg(kind: u16, flags: u16, cmd: u8, attrs: &[(u16, &[u8])]) -> Vec<u8> {
    request(kind, flags, 9, 0, cmd, attrs)
}

/// The errno in the last reply, if it is an NLMSG_ERROR (0: an ack).
fn ack_errno(replies: &[Vec<u8>]) -> Option<i32> {
    nlmsgerr(replies.last()?).map(|errno| -errno)
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
        let replies = netlink_send(
            &sim,
            &model,
            port,
            &msg(FAMILY, REQ_ACK, TASKSTATS_CMD_GET, &[(TASKSTATS_CMD_ATTR_PID, &leader.to_le_bytes())]),
        );
        assert_eq!(replies.len(), 2, "{preset}: a reply and an ack");
        assert_eq!(ack_errno(&replies), Some(0), "{preset}: ack with error 0");
        let d = decode(&replies[0]);
        assert_eq!(
            (d.nl_type, d.nl_seq, d.nl_pid),
            (FAMILY, 9, port),
            "{preset}: reply header echoes the request"
        );
        assert_eq!(
            (d.genl_cmd, d.genl_version),
            (TASKSTATS_CMD_NEW, 1),
            "{preset}: TASKSTATS_CMD_NEW, family version 1"
        );
        let padded = padding && preset != "linux-2.6.19";
        assert_eq!(
            d.top,
            if padded {
                vec![TASKSTATS_TYPE_NULL, TASKSTATS_TYPE_AGGR_PID]
            } else {
                vec![TASKSTATS_TYPE_AGGR_PID]
            },
            "{preset}: TASKSTATS_TYPE_NULL only where needed"
        );
        let (aggr, id_type, id, values, comm) = &d.aggregates[0];
        assert_eq!(
            (*aggr, *id_type, *id),
            (TASKSTATS_TYPE_AGGR_PID, TASKSTATS_TYPE_PID, leader),
            "{preset}: AGGR_PID holding PID {leader}"
        );
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
    let reg = netlink_send(
        &sim,
        &model,
        port,
        &msg(FAMILY, REQ_ACK, TASKSTATS_CMD_GET, &[(TASKSTATS_CMD_ATTR_REGISTER_CPUMASK, b"0-1\0")]),
    );
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
    assert_eq!(first.top, vec![TASKSTATS_TYPE_AGGR_PID], "a thread's exit: PID only");
    let mut want = expect_fields(&thread_stats);
    want.retain(|k, _| first.aggregates[0].3.contains_key(k));
    let mut got = first.aggregates[0].3.clone();
    // do_exit runs a virtual microsecond later than the snapshot: elapsed time moves on.
    assert_eq!(got.remove("ac_etime").unwrap(), want.remove("ac_etime").unwrap() + 1, "ac_etime at exit");
    assert_eq!(got, want, "thread record field for field");
    assert_eq!(
        second.top,
        vec![TASKSTATS_TYPE_AGGR_PID, TASKSTATS_TYPE_AGGR_TGID],
        "the last thread's exit adds the TGID aggregate"
    );
    let (_, id_type, tgid, group, _) = &second.aggregates[1];
    assert_eq!((*id_type, *tgid), (TASKSTATS_TYPE_TGID, leader));
    for field in
        ["cpu_count", "cpu_delay_total", "blkio_delay_total", "cpu_run_real_total", "freepages_count"]
    {
        let sum = expect_fields(&thread_stats)[field] + expect_fields(&leader_stats)[field];
        assert_eq!(group[field], sum, "group {field} is the sum of both threads'");
    }
    assert_eq!(group["read_char"], 0, "the group record aggregates delay accounting only");
    // taskstats_exit() copies signal->stats as it stands: nothing ever sets its version.
    assert_eq!(group["version"], 0, "the exit TGID record is signal->stats, version unset");
    assert_eq!(group["nvcsw"], 0, "fill_tgid_exit() adds delays only");
}

/// Sends `bytes` from the port of a fresh linux-3.8 world and returns the replies.
fn replies_to(bytes: &[u8]) -> Vec<Vec<u8>> {
    let (sim, model, _leader, port) = world("linux-3.8", false);
    netlink_send(&sim, &model, port, bytes)
}

/// The errno of the last reply to `bytes` (`Some(0)`: an ack).
fn errno_of(bytes: &[u8]) -> Option<i32> {
    ack_errno(&replies_to(bytes))
}

/// What [`ack_errno`] gives for a request that fails with `errno`.
fn failed(errno: Errno) -> Option<i32> {
    Some(errno.to_kernel_return())
}

/// A TASKSTATS_CMD_GET carrying one attribute.
fn get_with(kind: u16, payload: &[u8]) -> Vec<u8> {
    msg(FAMILY, REQ_ACK, TASKSTATS_CMD_GET, &[(kind, payload)])
}

#[test]
fn broken_netlink_framing_is_dropped_or_einval() {
    // Truncated netlink header: netlink_rcv_skb drops it silently.
    assert!(replies_to(&[0u8; 10]).is_empty(), "short header: nothing back");
    // nlmsg_len beyond the buffer: dropped silently.
    let mut long = get_with(TASKSTATS_CMD_ATTR_PID, &1u32.to_le_bytes());
    long[0] = 200;
    assert!(replies_to(&long).is_empty(), "nlmsg_len past the end: nothing back");
    // No genetlink header: EINVAL.
    let mut short = msg(FAMILY, REQ_ACK, TASKSTATS_CMD_GET, &[]);
    short.truncate(16);
    short[0..4].copy_from_slice(&16u32.to_le_bytes());
    assert_eq!(errno_of(&short), failed(Errno::EINVAL), "no genlmsghdr");
    // An attribute whose length overruns the message ends the walk: no attributes, EINVAL.
    let mut overrun = get_with(TASKSTATS_CMD_ATTR_PID, &1u32.to_le_bytes());
    overrun[20] = 60;
    assert_eq!(errno_of(&overrun), failed(Errno::EINVAL), "attribute length overruns");
    let mut tiny = get_with(TASKSTATS_CMD_ATTR_PID, &1u32.to_le_bytes());
    tiny[20] = 2;
    assert_eq!(errno_of(&tiny), failed(Errno::EINVAL), "attribute length below the header");
}

#[test]
fn unknown_families_commands_and_dumps_are_enoent_or_eopnotsupp() {
    assert_eq!(
        errno_of(&msg(0x99, REQ_ACK, TASKSTATS_CMD_GET, &[])),
        failed(Errno::ENOENT),
        "unknown family"
    );
    assert_eq!(errno_of(&msg(FAMILY, REQ_ACK, 9, &[])), failed(Errno::EOPNOTSUPP), "unknown command");
    let dump = msg(FAMILY, REQ_ACK | NLM_F_DUMP, TASKSTATS_CMD_GET, &[]);
    assert_eq!(errno_of(&dump), failed(Errno::EOPNOTSUPP), "dump");
    let (old_sim, old, _, old_port) = world("linux-2.6.19", false);
    let cgroupstats =
        msg(FAMILY, REQ_ACK, CGROUPSTATS_CMD_GET, &[(CGROUPSTATS_CMD_ATTR_FD, &1u32.to_le_bytes())]);
    let replies = netlink_send(&old_sim, &old, old_port, &cgroupstats);
    assert_eq!(ack_errno(&replies), failed(Errno::EOPNOTSUPP), "2.6.19 has no cgroupstats");
}

#[test]
fn attributes_the_policy_refuses_are_einval_or_erange() {
    let none = msg(FAMILY, REQ_ACK, TASKSTATS_CMD_GET, &[]);
    assert_eq!(errno_of(&none), failed(Errno::EINVAL), "no attribute");
    // A PID attribute two bytes long: the policy's NLA_U32 says ERANGE.
    assert_eq!(errno_of(&get_with(TASKSTATS_CMD_ATTR_PID, &[1, 0])), failed(Errno::ERANGE), "short u32");
    let empty = get_with(TASKSTATS_CMD_ATTR_REGISTER_CPUMASK, &[]);
    assert_eq!(errno_of(&empty), failed(Errno::ERANGE), "empty string");
    let missing = get_with(TASKSTATS_CMD_ATTR_PID, &999u32.to_le_bytes());
    assert_eq!(errno_of(&missing), failed(Errno::ESRCH), "no such pid");
}

#[test]
fn cpumasks_the_parser_refuses_are_e2big_einval_or_erange() {
    let mask = |text: &[u8]| errno_of(&get_with(TASKSTATS_CMD_ATTR_REGISTER_CPUMASK, text));
    let big = vec![b'0'; 100 + 6 * 64 + 1];
    assert_eq!(mask(&big), failed(Errno::E2BIG), "oversized cpumask");
    assert_eq!(mask(b"1-0\0"), failed(Errno::EINVAL), "backwards range");
    assert_eq!(mask(b"64\0"), failed(Errno::ERANGE), "cpu past NR_CPUS");
    assert_eq!(mask(b"5\0"), failed(Errno::EINVAL), "cpu not possible");
}

#[test]
fn cgroupstats_answers_a_cgroup_fd_and_otherwise_einval_or_a_bare_ack() {
    let fd =
        |fd: u32| msg(FAMILY, REQ_ACK, CGROUPSTATS_CMD_GET, &[(CGROUPSTATS_CMD_ATTR_FD, &fd.to_le_bytes())]);
    let none = msg(FAMILY, REQ_ACK, CGROUPSTATS_CMD_GET, &[]);
    assert_eq!(errno_of(&none), failed(Errno::EINVAL), "cgroupstats without fd");
    assert_eq!(errno_of(&fd(0)), failed(Errno::EINVAL), "fd 0 is no cgroup");
    assert_eq!(errno_of(&fd(77)), Some(0), "bad fd: 0, no reply");
    let ok = replies_to(&fd(1));
    assert_eq!((ok.len(), ack_errno(&ok)), (2, Some(0)), "cgroup fd: stats and an ack");
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
        let r = netlink_send(
            &sim,
            &model,
            4242,
            &msg(FAMILY, REQ_ACK, TASKSTATS_CMD_GET, &[(TASKSTATS_CMD_ATTR_REGISTER_CPUMASK, b"\0")]),
        );
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
    let r = netlink_send(
        &sim,
        &model,
        user_port,
        &msg(FAMILY, REQ_ACK, TASKSTATS_CMD_GET, &[(TASKSTATS_CMD_ATTR_PID, &1u32.to_le_bytes())]),
    );
    assert_eq!(ack_errno(&r), Some(Errno::EPERM.to_kernel_return()), "GENL_ADMIN_PERM");
    let inside = model.fork(&task_cx(&sim, &model, 1, "fork"), ForkKind::NewPidNs).unwrap();
    let ns_port = model.open_port(&task_cx(&sim, &model, inside, "socket")).unwrap();
    let r = netlink_send(
        &sim,
        &model,
        ns_port,
        &msg(FAMILY, REQ_ACK, TASKSTATS_CMD_GET, &[(TASKSTATS_CMD_ATTR_REGISTER_CPUMASK, b"0\0")]),
    );
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
            if let Some(errno) = nlmsgerr(&reply) {
                prop_assert!(known.contains(&errno), "unexpected errno {errno}");
            }
        }
    }
}

/// A CTRL_CMD_GETFAMILY request with the given attributes, flags NLM_F_REQUEST | NLM_F_ACK.
fn getfamily(attrs: &[(u16, &[u8])]) -> Vec<u8> {
    request(GENL_ID_CTRL, REQ_ACK, 9, 0, CTRL_CMD_GETFAMILY, attrs)
}

/// A CTRL_ATTR_OPS nest as (CTRL_ATTR_OP_ID, CTRL_ATTR_OP_FLAGS) per operation, in order.
fn family_ops(nest: &[u8]) -> Vec<(u64, u64)> {
    attrs(nest)
        .iter()
        .map(|(_, op)| {
            let op = attrs(op);
            let get =
                |kind: u16| op.iter().find(|(t, _)| *t == kind).map(|(_, p)| le(p)).expect("op attribute");
            (get(CTRL_ATTR_OP_ID), get(CTRL_ATTR_OP_FLAGS))
        })
        .collect()
}

/// The netlink messages one queued skb holds, each as long as its `nlmsg_len` says.
fn split_messages(skb: &[u8]) -> Vec<&[u8]> {
    let mut out = Vec::new();
    let mut at = 0;
    while skb.len() - at >= NLMSG_HDRLEN {
        let len = le(&skb[at..at + 4]) as usize;
        assert!(len >= NLMSG_HDRLEN && at + len <= skb.len(), "nlmsg_len {len} at {at} of {}", skb.len());
        out.push(&skb[at..at + len]);
        at += nla_align(len);
    }
    assert_eq!(at, skb.len(), "an skb holds whole messages");
    out
}

/// `genl-ctrl-list`'s request: CTRL_CMD_GETFAMILY with NLM_F_DUMP (and NLM_F_ACK, which a started
/// dump does not answer) gets one NLM_F_MULTI CTRL_CMD_NEWFAMILY per registered family, nlctrl
/// (chain 0) before TASKSTATS (chain 1), then NLMSG_DONE; each family's message describes it as
/// a doit lookup does.
#[test]
fn a_getfamily_dump_lists_every_family_then_done() {
    for (preset, mcast) in [("linux-3.8", true), ("linux-2.6.19", false)] {
        let (sim, model, _leader, port) = world(preset, false);
        let dump = request(GENL_ID_CTRL, REQ_ACK | NLM_F_DUMP, 21, port, CTRL_CMD_GETFAMILY, &[]);
        let skbs = netlink_send(&sim, &model, port, &dump);
        let msgs: Vec<&[u8]> = skbs.iter().flat_map(|skb| split_messages(skb)).collect();
        assert_eq!(msgs.len(), 3, "{preset}: two families and NLMSG_DONE, no ack: {skbs:?}");
        for msg in &msgs {
            let (kind, flags, seq, pid) =
                (le(&msg[4..6]) as u16, le(&msg[6..8]) as u16, le(&msg[8..12]), le(&msg[12..16]));
            assert_eq!((flags, seq, pid), (NLM_F_MULTI, 21, u64::from(port)), "{preset}: type {kind}");
        }
        let done = msgs[2];
        assert_eq!((le(&done[4..6]) as u16, done.len(), le(&done[16..20])), (NLMSG_DONE, 20, 0), "{preset}");
        let mut names = Vec::new();
        for msg in &msgs[..2] {
            assert_eq!(
                (le(&msg[4..6]) as u16, msg[NLMSG_HDRLEN]),
                (GENL_ID_CTRL, CTRL_CMD_NEWFAMILY),
                "{preset}"
            );
            let top = attrs(&msg[NLMSG_HDRLEN + GENL_HDRLEN..]);
            let find = |kind: u16| top.iter().find(|(t, _)| *t == kind).map(|(_, p)| *p);
            let name = find(CTRL_ATTR_FAMILY_NAME).expect("a name");
            let id = find(CTRL_ATTR_FAMILY_ID).expect("an id");
            assert_eq!(id.len(), 2, "{preset}: CTRL_ATTR_FAMILY_ID is an NLA_U16");
            let ops = family_ops(find(CTRL_ATTR_OPS).expect("ops"));
            let groups = find(CTRL_ATTR_MCAST_GROUPS).map(|g| attrs(g).len());
            names.push((name.to_vec(), le(id), le(find(CTRL_ATTR_MAXATTR).expect("maxattr")), ops, groups));
        }
        let get = u64::from(CTRL_CMD_GETFAMILY);
        let ctrl_flags = u64::from(GENL_CMD_CAP_DO | GENL_CMD_CAP_DUMP | GENL_CMD_CAP_HASPOL);
        let (ctrl_max, groups) =
            if mcast { (CTRL_ATTR_MCAST_GROUPS, Some(1)) } else { (CTRL_ATTR_OPS, None) };
        assert_eq!(
            names[0],
            (
                b"nlctrl\0".to_vec(),
                u64::from(GENL_ID_CTRL),
                u64::from(ctrl_max),
                vec![(get, ctrl_flags)],
                groups
            ),
            "{preset}: nlctrl describes itself"
        );
        let (name, id, maxattr, ops, groups) = &names[1];
        assert_eq!((name.as_slice(), *maxattr, groups), (&b"TASKSTATS\0"[..], 4, &None), "{preset}");
        assert_eq!(ops[0].0, u64::from(TASKSTATS_CMD_GET), "{preset}");
        // The id the dump lists answers a PID query.
        let pid = 1u32.to_le_bytes();
        let query = request(
            *id as u16,
            NLM_F_REQUEST,
            22,
            port,
            TASKSTATS_CMD_GET,
            &[(TASKSTATS_CMD_ATTR_PID, &pid)],
        );
        let reply = netlink_send(&sim, &model, port, &query);
        assert_eq!(decode(&reply[0]).genl_cmd, TASKSTATS_CMD_NEW, "{preset}: the listed id is TASKSTATS's");
        model.teardown(&sim).expect("every dump skb consumed");
    }
}

#[test]
fn a_client_resolves_the_taskstats_family_through_nlctrl_as_getdelays_does() {
    let (sim, model, _leader, port) = world("linux-3.8", false);
    let mut name = TASKSTATS_GENL_NAME.to_vec();
    name.push(0);
    let replies = netlink_send(&sim, &model, port, &getfamily(&[(CTRL_ATTR_FAMILY_NAME, &name)]));
    assert_eq!(replies.len(), 2, "a NEWFAMILY reply and the ack");
    let reply = &replies[0];
    assert_eq!(
        (le(&reply[4..6]) as u16, reply[NLMSG_HDRLEN]),
        (GENL_ID_CTRL, CTRL_CMD_NEWFAMILY),
        "from nlctrl, CTRL_CMD_NEWFAMILY"
    );
    let top = attrs(&reply[NLMSG_HDRLEN + GENL_HDRLEN..]);
    let find = |kind: u16| top.iter().find(|(t, _)| *t == kind).map(|(_, p)| *p).unwrap();
    let id = find(CTRL_ATTR_FAMILY_ID);
    assert_eq!(id.len(), 2, "CTRL_ATTR_FAMILY_ID is an NLA_U16");
    let family = le(id) as u16;
    assert_eq!(le(find(CTRL_ATTR_MAXATTR)), u64::from(TASKSTATS_CMD_ATTR_DEREGISTER_CPUMASK), "maxattr");
    let ops = family_ops(find(CTRL_ATTR_OPS));
    let ids: Vec<u64> = ops.iter().map(|op| op.0).collect();
    assert_eq!(ids, [u64::from(TASKSTATS_CMD_GET), u64::from(CGROUPSTATS_CMD_GET)], "the two doits, 1 and 4");
    assert_eq!(ops[0].1 & u64::from(GENL_ADMIN_PERM), 1, "TASKSTATS_CMD_GET needs CAP_NET_ADMIN");
    // The id it handed out answers a CGROUPSTATS_CMD_GET (4) for a cgroup directory.
    let fd = 1u32.to_le_bytes();
    let stats = request(family, REQ_ACK, 5, port, CGROUPSTATS_CMD_GET, &[(CGROUPSTATS_CMD_ATTR_FD, &fd)]);
    let replies = netlink_send(&sim, &model, port, &stats);
    assert_eq!(replies.len(), 2, "cgroupstats and an ack");
    let d = decode(&replies[0]);
    assert_eq!(
        (d.nl_type, d.genl_cmd, d.top.clone()),
        (family, CGROUPSTATS_CMD_NEW, vec![CGROUPSTATS_TYPE_CGROUP_STATS])
    );
    let counts = d.cgroupstats.expect("struct cgroupstats");
    assert!(counts["nr_running"] >= 2, "init, the process and its thread run in cgroup \"/\": {counts:?}");
    assert_eq!(nlmsgerr(&replies[1]), Some(0));
}

#[test]
fn nlctrl_types_the_id_as_u16_and_lets_the_name_win() {
    let (sim, model, _leader, port) = world("linux-3.8", false);
    let send = |attrs: &[(u16, &[u8])]| ack_errno(&netlink_send(&sim, &model, port, &getfamily(attrs)));
    let id = FAMILY.to_le_bytes();
    let other = 0x99u16.to_le_bytes();
    assert_eq!(send(&[(CTRL_ATTR_FAMILY_ID, &id)]), Some(0), "by id: a 2-byte NLA_U16 is enough");
    assert_eq!(send(&[(CTRL_ATTR_FAMILY_ID, &other)]), Some(-2), "an unknown id: ENOENT");
    assert_eq!(send(&[(CTRL_ATTR_FAMILY_ID, &[0x11])]), Some(-34), "a 1-byte id: ERANGE");
    assert_eq!(send(&[]), Some(-22), "neither id nor name: EINVAL");
    assert_eq!(
        send(&[(CTRL_ATTR_FAMILY_ID, &other), (CTRL_ATTR_FAMILY_NAME, b"TASKSTATS\0")]),
        Some(0),
        "the name wins"
    );
    assert_eq!(
        send(&[(CTRL_ATTR_FAMILY_ID, &id), (CTRL_ATTR_FAMILY_NAME, b"NOPE\0")]),
        Some(-2),
        "the name wins"
    );
    assert_eq!(send(&[(CTRL_ATTR_FAMILY_NAME, b"TASKSTATS")]), Some(-22), "NLA_NUL_STRING without its NUL");
}

#[test]
fn cgroupstats_is_command_4_and_command_3_is_no_command() {
    let (sim, model, _leader, port) = world("linux-3.4", false);
    let fd = 1u32.to_le_bytes();
    let with = |cmd: u8| {
        netlink_send(&sim, &model, port, &msg(FAMILY, REQ_ACK, cmd, &[(CGROUPSTATS_CMD_ATTR_FD, &fd)]))
    };
    assert_eq!(CGROUPSTATS_CMD_GET, 4, "cgroupstats.h: CGROUPSTATS_CMD_UNSPEC = __TASKSTATS_CMD_MAX (3)");
    let replies = with(CGROUPSTATS_CMD_GET);
    assert_eq!(replies.len(), 2);
    assert_eq!(decode(&replies[0]).genl_cmd, CGROUPSTATS_CMD_NEW, "the reply is CGROUPSTATS_CMD_NEW (5)");
    assert_eq!(
        ack_errno(&with(3)),
        Some(Errno::EOPNOTSUPP.to_kernel_return()),
        "3 is CGROUPSTATS_CMD_UNSPEC"
    );
    assert_eq!(ack_errno(&with(CGROUPSTATS_CMD_NEW)), Some(Errno::EOPNOTSUPP.to_kernel_return()));
}

#[test]
fn a_cpumask_without_its_nul_loses_its_last_character_as_nla_strlcpy_copies_it() {
    let sim = Sim::new(SimConfig::new(1).cpus(2));
    let model = Taskstats::new(&sim, Fixes::preset("linux-3.4").unwrap(), Params::default());
    let port = model.open_port(&task_cx(&sim, &model, 1, "socket")).unwrap();
    let register = |mask: &[u8]| {
        let bytes = msg(FAMILY, REQ_ACK, TASKSTATS_CMD_GET, &[(TASKSTATS_CMD_ATTR_REGISTER_CPUMASK, mask)]);
        ack_errno(&netlink_send(&sim, &model, port, &bytes))
    };
    let cx = sim.cx("test", 0);
    // "1" without a NUL is copied as "": 3.x's parser reads an empty list as CPU 0.
    assert_eq!(register(b"1"), Some(0));
    assert_eq!((model.listeners(&cx, 0).len(), model.listeners(&cx, 1).len()), (1, 0), "cpu 0, not 1");
    assert_eq!(register(b"1\0"), Some(0));
    assert_eq!(model.listeners(&cx, 1).len(), 1, "with its NUL, \"1\" is cpu 1");
}

#[test]
fn an_overrun_receive_queue_is_reported_to_the_reader_as_enobufs() {
    let sim = Sim::new(SimConfig::new(2).cpus(1));
    let params = Params { cpus: 1, queue_max: 2, ..Params::default() };
    let model = Taskstats::new(&sim, Fixes::preset("linux-3.8").unwrap(), params);
    let port = model.open_port(&task_cx(&sim, &model, 1, "socket")).unwrap();
    let reg = msg(FAMILY, REQ_ACK, TASKSTATS_CMD_GET, &[(TASKSTATS_CMD_ATTR_REGISTER_CPUMASK, b"0\0")]);
    assert_eq!(ack_errno(&netlink_send(&sim, &model, port, &reg)), Some(0));
    let children: Vec<u32> =
        (0..3).map(|_| model.fork(&task_cx(&sim, &model, 1, "fork"), ForkKind::Process).unwrap()).collect();
    let delivered: Vec<usize> = children
        .iter()
        .map(|&pid| model.exit(&task_cx(&sim, &model, pid, "do_exit")).unwrap().delivered.len())
        .collect();
    assert_eq!(delivered, [1, 1, 0], "the third exit finds the queue (2 messages) full");
    let cx = sim.cx("recvmsg", 0);
    assert_eq!(model.recvmsg(&cx, port), Err(Errno::ENOBUFS), "the reader hears of the drop first");
    assert_eq!(model.recvmsg(&cx, port).map(|m| m.len()), Ok(2), "then gets what was queued");
    assert_eq!(model.recvmsg(&cx, port).map(|m| m.len()), Ok(0), "and the error was reported once");
}
