//! A client's view of the wire, written from the uapi headers alone: include/uapi/linux/netlink.h
//! (`struct nlmsghdr`, `struct nlmsgerr`, `NLMSG_ERROR`, the `NLM_F_*` flags),
//! include/uapi/linux/genetlink.h (`struct genlmsghdr`, `GENL_ID_CTRL`, the `CTRL_*` enums),
//! include/uapi/linux/taskstats.h (commands, attribute types, `struct taskstats` versions 1 and 8)
//! and include/uapi/linux/cgroupstats.h. It shares no constant, builder or parser with the model:
//! a number the model got wrong shows up here as a disagreement, not an agreement. Not every
//! constant is used: the list is the headers', so a new test finds its name here.
#![allow(dead_code)]

use std::collections::BTreeMap;

// include/uapi/linux/netlink.h
pub const NLMSG_HDRLEN: usize = 16;
pub const NLMSG_ERROR: u16 = 2;
pub const NLM_F_REQUEST: u16 = 1;
pub const NLM_F_ACK: u16 = 4;
pub const NLM_F_DUMP: u16 = 0x100 | 0x200;
pub const NLMSG_DONE: u16 = 3;
pub const NLM_F_MULTI: u16 = 2;

// include/uapi/linux/genetlink.h
pub const GENL_HDRLEN: usize = 4;
pub const GENL_ID_CTRL: u16 = 0x10;
pub const CTRL_CMD_NEWFAMILY: u8 = 1;
pub const CTRL_CMD_GETFAMILY: u8 = 3;
pub const CTRL_ATTR_FAMILY_ID: u16 = 1;
pub const CTRL_ATTR_FAMILY_NAME: u16 = 2;
pub const CTRL_ATTR_VERSION: u16 = 3;
pub const CTRL_ATTR_HDRSIZE: u16 = 4;
pub const CTRL_ATTR_MAXATTR: u16 = 5;
pub const CTRL_ATTR_OPS: u16 = 6;
pub const CTRL_ATTR_MCAST_GROUPS: u16 = 7;
pub const CTRL_ATTR_OP_ID: u16 = 1;
pub const CTRL_ATTR_OP_FLAGS: u16 = 2;
pub const CTRL_ATTR_MCAST_GRP_NAME: u16 = 1;
pub const CTRL_ATTR_MCAST_GRP_ID: u16 = 2;
pub const GENL_ADMIN_PERM: u32 = 1;
pub const GENL_CMD_CAP_DO: u32 = 2;
pub const GENL_CMD_CAP_DUMP: u32 = 4;
pub const GENL_CMD_CAP_HASPOL: u32 = 8;

// include/uapi/linux/taskstats.h: enum { TASKSTATS_CMD_UNSPEC, GET, NEW, __TASKSTATS_CMD_MAX }.
pub const TASKSTATS_CMD_GET: u8 = 1;
pub const TASKSTATS_CMD_NEW: u8 = 2;
const TASKSTATS_CMD_MAX_PLUS_ONE: u8 = 3;
pub const TASKSTATS_TYPE_PID: u16 = 1;
pub const TASKSTATS_TYPE_TGID: u16 = 2;
pub const TASKSTATS_TYPE_STATS: u16 = 3;
pub const TASKSTATS_TYPE_AGGR_PID: u16 = 4;
pub const TASKSTATS_TYPE_AGGR_TGID: u16 = 5;
pub const TASKSTATS_TYPE_NULL: u16 = 6;
pub const TASKSTATS_CMD_ATTR_PID: u16 = 1;
pub const TASKSTATS_CMD_ATTR_TGID: u16 = 2;
pub const TASKSTATS_CMD_ATTR_REGISTER_CPUMASK: u16 = 3;
pub const TASKSTATS_CMD_ATTR_DEREGISTER_CPUMASK: u16 = 4;
pub const TASKSTATS_GENL_NAME: &[u8] = b"TASKSTATS";

// include/uapi/linux/cgroupstats.h: enum { CGROUPSTATS_CMD_UNSPEC = __TASKSTATS_CMD_MAX, GET, NEW }.
pub const CGROUPSTATS_CMD_GET: u8 = TASKSTATS_CMD_MAX_PLUS_ONE + 1;
pub const CGROUPSTATS_CMD_NEW: u8 = TASKSTATS_CMD_MAX_PLUS_ONE + 2;
pub const CGROUPSTATS_TYPE_CGROUP_STATS: u16 = 1;
pub const CGROUPSTATS_CMD_ATTR_FD: u16 = 1;
/// `struct cgroupstats`: five `__u64` counters, in this order.
pub const CGROUPSTATS_FIELDS: [&str; 5] =
    ["nr_sleeping", "nr_running", "nr_stopped", "nr_uninterruptible", "nr_io_wait"];

/// struct taskstats (version 8) as the uapi header declares it: (name, size, alignment), with
/// the header's explicit `__attribute__((aligned(8)))` on cpu_count, ac_sched, ac_uid, ac_etime.
pub const V8_FIELDS: &[(&str, usize, usize)] = &[
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
pub const V1_FIELDS: &[(&str, usize, usize)] = &[
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
pub fn layout(fields: &[(&'static str, usize, usize)]) -> (Vec<(&'static str, usize, usize)>, usize) {
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

/// A little-endian unsigned number (the hosts modelled are little-endian).
pub fn le(bytes: &[u8]) -> u64 {
    bytes.iter().rev().fold(0u64, |v, b| (v << 8) | u64::from(*b))
}

/// `NLA_ALIGN`.
pub fn nla_align(len: usize) -> usize {
    (len + 3) & !3
}

/// Walks a run of `struct nlattr`, asserting each is well formed and the run ends exactly:
/// (type with NLA_F_NESTED/NLA_F_NET_BYTEORDER cleared, payload).
pub fn attrs(bytes: &[u8]) -> Vec<(u16, &[u8])> {
    let mut out = Vec::new();
    let mut at = 0;
    while at + 4 <= bytes.len() {
        let len = le(&bytes[at..at + 2]) as usize;
        let kind = le(&bytes[at + 2..at + 4]) as u16 & 0x3fff;
        assert!(len >= 4 && at + len <= bytes.len(), "attribute at {at} with length {len} overruns");
        out.push((kind, &bytes[at + 4..at + len]));
        at += nla_align(len);
    }
    assert_eq!(at, bytes.len(), "attributes do not end on the message end");
    out
}

/// One aggregate: (aggregate type, id attribute type, id, stats fields, ac_comm).
pub type Aggregate = (u16, u16, u32, BTreeMap<&'static str, u64>, Vec<u8>);

/// A decoded generic-netlink message from the TASKSTATS family.
#[derive(Debug)]
pub struct Decoded {
    pub nl_len: u32,
    pub nl_type: u16,
    pub nl_seq: u32,
    pub nl_pid: u32,
    pub genl_cmd: u8,
    pub genl_version: u8,
    /// Top-level attribute types in order.
    pub top: Vec<u16>,
    /// Per TASKSTATS_TYPE_AGGR_PID/_TGID nest.
    pub aggregates: Vec<Aggregate>,
    /// The `struct cgroupstats` of a CGROUPSTATS_CMD_NEW, by field name.
    pub cgroupstats: Option<BTreeMap<&'static str, u64>>,
}

/// Decodes `struct taskstats` by its own version field's layout.
pub fn decode_taskstats(stats: &[u8]) -> (BTreeMap<&'static str, u64>, Vec<u8>) {
    let version = le(&stats[0..2]);
    // Exit-time TGID records are a copy of signal->stats, whose version the kernel never sets:
    // the layout is the one of the record's size.
    let fields = if version >= 8 || stats.len() > 72 { V8_FIELDS } else { V1_FIELDS };
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
    (values, comm)
}

/// Decodes one TASKSTATS-family message: headers, top-level attributes, the aggregates and a
/// cgroupstats payload.
pub fn decode(msg: &[u8]) -> Decoded {
    let nl_len = le(&msg[0..4]) as u32;
    assert_eq!(nl_len as usize, msg.len(), "nlmsg_len is the message length");
    let mut decoded = Decoded {
        nl_len,
        nl_type: le(&msg[4..6]) as u16,
        nl_seq: le(&msg[8..12]) as u32,
        nl_pid: le(&msg[12..16]) as u32,
        genl_cmd: msg[NLMSG_HDRLEN],
        genl_version: msg[NLMSG_HDRLEN + 1],
        top: Vec::new(),
        aggregates: Vec::new(),
        cgroupstats: None,
    };
    for (kind, payload) in attrs(&msg[NLMSG_HDRLEN + GENL_HDRLEN..]) {
        decoded.top.push(kind);
        if decoded.genl_cmd == CGROUPSTATS_CMD_NEW && kind == CGROUPSTATS_TYPE_CGROUP_STATS {
            assert_eq!(payload.len(), 8 * CGROUPSTATS_FIELDS.len(), "sizeof(struct cgroupstats)");
            let fields = CGROUPSTATS_FIELDS
                .iter()
                .enumerate()
                .map(|(i, name)| (*name, le(&payload[8 * i..8 * i + 8])));
            decoded.cgroupstats = Some(fields.collect());
            continue;
        }
        if kind != TASKSTATS_TYPE_AGGR_PID && kind != TASKSTATS_TYPE_AGGR_TGID {
            continue;
        }
        let inner = attrs(payload);
        assert_eq!(inner.len(), 2, "an aggregate holds the id and the stats");
        let (id_type, id) = (inner[0].0, le(inner[0].1) as u32);
        assert_eq!(inner[1].0, TASKSTATS_TYPE_STATS, "the aggregate's second attribute is the stats");
        let (values, comm) = decode_taskstats(inner[1].1);
        decoded.aggregates.push((kind, id_type, id, values, comm));
    }
    decoded
}

/// The errno in a `struct nlmsgerr` reply (None: not an NLMSG_ERROR message); 0 is an ack.
pub fn nlmsgerr(msg: &[u8]) -> Option<i32> {
    (le(&msg[4..6]) as u16 == NLMSG_ERROR).then(|| -(le(&msg[16..20]) as u32 as i32))
}

/// A request as a client writes it: nlmsghdr (seq, the sender's port), genlmsghdr (version 1),
/// then each attribute padded to 4 bytes.
pub fn request(family: u16, flags: u16, seq: u32, port: u32, cmd: u8, attrs: &[(u16, &[u8])]) -> Vec<u8> {
    let mut out = vec![0u8; NLMSG_HDRLEN];
    out[4..6].copy_from_slice(&family.to_le_bytes());
    out[6..8].copy_from_slice(&flags.to_le_bytes());
    out[8..12].copy_from_slice(&seq.to_le_bytes());
    out[12..16].copy_from_slice(&port.to_le_bytes());
    out.extend_from_slice(&[cmd, 1, 0, 0]);
    for (t, payload) in attrs {
        out.extend_from_slice(&((4 + payload.len()) as u16).to_le_bytes());
        out.extend_from_slice(&t.to_le_bytes());
        out.extend_from_slice(payload);
        out.resize(nla_align(out.len()), 0);
    }
    let len = out.len() as u32;
    out[0..4].copy_from_slice(&len.to_le_bytes());
    out
}
