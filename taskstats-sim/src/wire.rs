//! The bytes on the wire: include/uapi/linux/netlink.h (`struct nlmsghdr`, `struct nlmsgerr`),
//! include/uapi/linux/genetlink.h (`struct genlmsghdr`), lib/nlattr.c (`nla_parse`, `validate_nla`,
//! `nla_put`, nests), include/uapi/linux/taskstats.h (`struct taskstats` versions 1 and 8) and
//! include/uapi/linux/cgroupstats.h. Host byte order is little-endian (x86-64, arm64).
//! Left out: NLA types other than U32/STRING/NESTED, strict validation of later kernels.

use sim_core::Errno;

/// `NLMSG_HDRLEN`: `struct nlmsghdr` is 16 bytes.
pub const NLMSG_HDRLEN: usize = 16;
/// `GENL_HDRLEN`: `struct genlmsghdr` is 4 bytes.
pub const GENL_HDRLEN: usize = 4;
/// `NLA_HDRLEN`: `struct nlattr` is 4 bytes.
pub const NLA_HDRLEN: usize = 4;
/// `NLA_TYPE_MASK`: the type bits of `nla_type` (NLA_F_NESTED and NLA_F_NET_BYTEORDER masked off).
pub const NLA_TYPE_MASK: u16 = 0x3fff;
/// `NLMSG_ERROR`.
pub const NLMSG_ERROR: u16 = 2;
/// `NLMSG_DONE`: the end of a dump.
pub const NLMSG_DONE: u16 = 3;
/// `NLMSG_MIN_TYPE`: types below are control messages.
pub const NLMSG_MIN_TYPE: u16 = 0x10;
/// `NLM_F_REQUEST`.
pub const NLM_F_REQUEST: u16 = 0x1;
/// `NLM_F_MULTI`: one of a dump's messages (NLMSG_DONE ends them).
pub const NLM_F_MULTI: u16 = 0x2;
/// `NLM_F_ACK`.
pub const NLM_F_ACK: u16 = 0x4;
/// `NLM_F_DUMP` (`NLM_F_ROOT | NLM_F_MATCH`).
pub const NLM_F_DUMP: u16 = 0x300;
/// `GENL_ID_CTRL`: the controller family; the first generated id is the next one.
pub const GENL_ID_CTRL: u16 = 0x10;
/// `CTRL_CMD_NEWFAMILY`: the controller's reply.
pub const CTRL_CMD_NEWFAMILY: u8 = 1;
/// `CTRL_CMD_GETFAMILY`: resolve a family by name.
pub const CTRL_CMD_GETFAMILY: u8 = 3;
/// `CTRL_ATTR_FAMILY_ID` (u16).
pub const CTRL_ATTR_FAMILY_ID: u16 = 1;
/// `CTRL_ATTR_FAMILY_NAME` (string).
pub const CTRL_ATTR_FAMILY_NAME: u16 = 2;
/// `CTRL_ATTR_VERSION` (u32).
pub const CTRL_ATTR_VERSION: u16 = 3;
/// `CTRL_ATTR_HDRSIZE` (u32).
pub const CTRL_ATTR_HDRSIZE: u16 = 4;
/// `CTRL_ATTR_MAXATTR` (u32).
pub const CTRL_ATTR_MAXATTR: u16 = 5;
/// `CTRL_ATTR_OPS` (nest of nests).
pub const CTRL_ATTR_OPS: u16 = 6;
/// `CTRL_ATTR_OP_ID` (u32).
pub const CTRL_ATTR_OP_ID: u16 = 1;
/// `CTRL_ATTR_OP_FLAGS` (u32).
pub const CTRL_ATTR_OP_FLAGS: u16 = 2;
/// `CTRL_ATTR_MCAST_GROUPS` (nest of nests; since 2.6.23).
pub const CTRL_ATTR_MCAST_GROUPS: u16 = 7;
/// `CTRL_ATTR_MCAST_GRP_NAME` (string).
pub const CTRL_ATTR_MCAST_GRP_NAME: u16 = 1;
/// `CTRL_ATTR_MCAST_GRP_ID` (u32).
pub const CTRL_ATTR_MCAST_GRP_ID: u16 = 2;
/// The controller family's name.
pub const GENL_CTRL_NAME: &str = "nlctrl";
/// `GENL_ADMIN_PERM`, `GENL_CMD_CAP_DO`, `GENL_CMD_CAP_HASPOL`: op flags the controller reports.
pub const GENL_ADMIN_PERM: u32 = 0x01;
/// `GENL_CMD_CAP_DO`.
pub const GENL_CMD_CAP_DO: u32 = 0x02;
/// `GENL_CMD_CAP_DUMP`.
pub const GENL_CMD_CAP_DUMP: u32 = 0x04;
/// `GENL_CMD_CAP_HASPOL`.
pub const GENL_CMD_CAP_HASPOL: u32 = 0x08;
/// The controller family's version (`nlctrl`).
pub const GENL_CTRL_VERSION: u8 = 2;
/// The id `GENL_ID_GENERATE` hands the TASKSTATS family in the model (the first generated id).
pub const TASKSTATS_FAMILY_ID: u16 = GENL_ID_CTRL + 1;
/// `TASKSTATS_GENL_NAME`.
pub const TASKSTATS_GENL_NAME: &str = "TASKSTATS";
/// `TASKSTATS_GENL_VERSION`.
pub const TASKSTATS_GENL_VERSION: u8 = 1;

/// `TASKSTATS_CMD_GET`: user to kernel.
pub const TASKSTATS_CMD_GET: u8 = 1;
/// `TASKSTATS_CMD_NEW`: kernel to user.
pub const TASKSTATS_CMD_NEW: u8 = 2;
/// `CGROUPSTATS_CMD_GET`: include/uapi/linux/cgroupstats.h starts its command enum at
/// `CGROUPSTATS_CMD_UNSPEC = __TASKSTATS_CMD_MAX` (3), so GET is 4.
pub const CGROUPSTATS_CMD_GET: u8 = 4;
/// `CGROUPSTATS_CMD_NEW`.
pub const CGROUPSTATS_CMD_NEW: u8 = 5;

/// `TASKSTATS_TYPE_PID`.
pub const TASKSTATS_TYPE_PID: u16 = 1;
/// `TASKSTATS_TYPE_TGID`.
pub const TASKSTATS_TYPE_TGID: u16 = 2;
/// `TASKSTATS_TYPE_STATS`.
pub const TASKSTATS_TYPE_STATS: u16 = 3;
/// `TASKSTATS_TYPE_AGGR_PID`.
pub const TASKSTATS_TYPE_AGGR_PID: u16 = 4;
/// `TASKSTATS_TYPE_AGGR_TGID`.
pub const TASKSTATS_TYPE_AGGR_TGID: u16 = 5;
/// `TASKSTATS_TYPE_NULL`: the padding attribute.
pub const TASKSTATS_TYPE_NULL: u16 = 6;

/// `TASKSTATS_CMD_ATTR_PID`.
pub const TASKSTATS_CMD_ATTR_PID: u16 = 1;
/// `TASKSTATS_CMD_ATTR_TGID`.
pub const TASKSTATS_CMD_ATTR_TGID: u16 = 2;
/// `TASKSTATS_CMD_ATTR_REGISTER_CPUMASK`.
pub const TASKSTATS_CMD_ATTR_REGISTER_CPUMASK: u16 = 3;
/// `TASKSTATS_CMD_ATTR_DEREGISTER_CPUMASK`.
pub const TASKSTATS_CMD_ATTR_DEREGISTER_CPUMASK: u16 = 4;
/// `TASKSTATS_CMD_ATTR_MAX`: the family's maxattr.
pub const TASKSTATS_CMD_ATTR_MAX: u16 = 4;
/// `GENL_NAMSIZ`: a family name's buffer, NUL included.
pub const GENL_NAMSIZ: usize = 16;
/// `CGROUPSTATS_CMD_ATTR_FD`.
pub const CGROUPSTATS_CMD_ATTR_FD: u16 = 1;
/// `CGROUPSTATS_TYPE_CGROUP_STATS`.
pub const CGROUPSTATS_TYPE_CGROUP_STATS: u16 = 1;

/// `TS_COMM_LEN`.
pub const TS_COMM_LEN: usize = 32;
/// sizeof(struct taskstats) at version 1 (2.6.18/2.6.19: delay accounting only).
pub const TASKSTATS_V1_SIZE: usize = 72;
/// sizeof(struct taskstats) at version 8 (3.x).
pub const TASKSTATS_V8_SIZE: usize = 328;
/// sizeof(struct cgroupstats): five u64 counters.
pub const CGROUPSTATS_SIZE: usize = 40;

/// `NLMSG_ALIGN` / `NLA_ALIGN`: round up to 4 bytes.
pub const fn align4(len: usize) -> usize {
    (len + 3) & !3
}

/// `nla_total_size(payload)`.
pub const fn nla_total_size(payload: usize) -> usize {
    align4(NLA_HDRLEN + payload)
}

const _: () = assert!(TASKSTATS_V8_SIZE.is_multiple_of(8));
const _: () = assert!(nla_total_size(TASKSTATS_V8_SIZE) == 332);

/// `struct nlmsghdr`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct NlMsgHdr {
    /// `nlmsg_len`: the whole message, header included.
    pub len: u32,
    /// `nlmsg_type`: the family id.
    pub kind: u16,
    /// `nlmsg_flags`.
    pub flags: u16,
    /// `nlmsg_seq`.
    pub seq: u32,
    /// `nlmsg_pid`: the sending port.
    pub pid: u32,
}

impl NlMsgHdr {
    /// Reads a header from the first 16 bytes (None: too short).
    pub fn parse(bytes: &[u8]) -> Option<NlMsgHdr> {
        if bytes.len() < NLMSG_HDRLEN {
            return None;
        }
        Some(NlMsgHdr {
            len: u32_at(bytes, 0),
            kind: u16_at(bytes, 4),
            flags: u16_at(bytes, 6),
            seq: u32_at(bytes, 8),
            pid: u32_at(bytes, 12),
        })
    }

    /// The header's 16 bytes onto `out`, spelled on the stack and appended in one copy (one
    /// capacity check, where five appends made five).
    fn write(&self, out: &mut Vec<u8>) {
        let mut header = [0u8; NLMSG_HDRLEN];
        header[0..4].copy_from_slice(&self.len.to_le_bytes());
        header[4..6].copy_from_slice(&self.kind.to_le_bytes());
        header[6..8].copy_from_slice(&self.flags.to_le_bytes());
        header[8..12].copy_from_slice(&self.seq.to_le_bytes());
        header[12..16].copy_from_slice(&self.pid.to_le_bytes());
        out.extend_from_slice(&header);
    }
}

pub(crate) fn u16_at(bytes: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([bytes[at], bytes[at + 1]])
}

pub(crate) fn u32_at(bytes: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(bytes[at..at + 4].try_into().expect("4 bytes"))
}

/// A netlink message being built (`nlmsg_new` + `genlmsg_put` + `nla_put`...), the model's skb.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MsgBuilder {
    bytes: Vec<u8>,
    nests: Vec<usize>,
}

impl MsgBuilder {
    /// `genlmsg_put()`: the netlink and generic-netlink headers.
    pub fn genlmsg_put(kind: u16, flags: u16, seq: u32, port: u32, cmd: u8, version: u8) -> MsgBuilder {
        let bytes = Vec::with_capacity(NLMSG_HDRLEN + GENL_HDRLEN + 2 * nla_total_size(TASKSTATS_V8_SIZE));
        Self::genlmsg_put_into(bytes, (kind, flags, seq, port), cmd, version)
    }

    /// [`Self::genlmsg_put`] into `bytes`, emptied first and its room kept: a sender that
    /// builds one message after another in one buffer (the driver's sendmsg(2) buffer).
    pub fn genlmsg_put_into(
        mut bytes: Vec<u8>,
        (kind, flags, seq, port): (u16, u16, u32, u32),
        cmd: u8,
        version: u8,
    ) -> MsgBuilder {
        bytes.clear();
        NlMsgHdr { len: 0, kind, flags, seq, pid: port }.write(&mut bytes);
        bytes.extend_from_slice(&[cmd, version, 0, 0]);
        MsgBuilder { bytes, nests: Vec::new() }
    }

    /// `nla_put()`: one attribute, padded to 4 bytes.
    pub fn nla_put(&mut self, kind: u16, payload: &[u8]) {
        let len = (NLA_HDRLEN + payload.len()) as u16;
        let [l0, l1] = len.to_le_bytes();
        let [k0, k1] = kind.to_le_bytes();
        // Room for the header, payload and padding made once, then the header in one append.
        self.bytes.reserve(align4(usize::from(len)));
        self.bytes.extend_from_slice(&[l0, l1, k0, k1]);
        self.bytes.extend_from_slice(payload);
        self.bytes.resize(align4(self.bytes.len()), 0);
    }

    /// `nla_put_u16()`.
    pub fn nla_put_u16(&mut self, kind: u16, value: u16) {
        self.nla_put(kind, &value.to_le_bytes());
    }

    /// `nla_put_u32()`.
    pub fn nla_put_u32(&mut self, kind: u16, value: u32) {
        self.nla_put(kind, &value.to_le_bytes());
    }

    /// `nla_nest_start()`.
    pub fn nest_start(&mut self, kind: u16) {
        self.nests.push(self.bytes.len());
        self.bytes.extend_from_slice(&[0, 0]);
        self.bytes.extend_from_slice(&kind.to_le_bytes());
    }

    /// `nla_nest_end()`: writes the nest's length.
    pub fn nest_end(&mut self) {
        let start = self.nests.pop().expect("nest_end without nest_start");
        let len = (self.bytes.len() - start) as u16;
        self.bytes[start..start + 2].copy_from_slice(&len.to_le_bytes());
    }

    /// `genlmsg_end()`: writes `nlmsg_len` and hands the bytes out.
    pub fn finish(mut self) -> Vec<u8> {
        let len = self.bytes.len() as u32;
        self.bytes[0..4].copy_from_slice(&len.to_le_bytes());
        self.bytes
    }
}

/// The messages a request got back before its last one (its replies, most often one): inline
/// up to one, so a PID or TGID query's reply costs no vector of its own.
pub type Replies = smallvec::SmallVec<[Vec<u8>; 1]>;

/// `netlink_ack()`: an `NLMSG_ERROR` message carrying `error` (0 for an ack) and the request's
/// header; on an error the whole request is echoed, as kernels before NETLINK_CAP_ACK did. Its
/// header names the sending socket's port (`NETLINK_CB(in_skb).portid`), whatever the request's
/// own `nlmsg_pid` said.
pub fn netlink_ack(request: &[u8], hdr: &NlMsgHdr, port: u32, error: Option<Errno>) -> Vec<u8> {
    netlink_ack_into(Vec::new(), request, hdr, port, error)
}

/// [`netlink_ack`] written into `out`, a spare buffer whose bytes are dropped first (its room
/// is reused: the request path hands back the ack it read, see `ACK_SPARE`).
pub fn netlink_ack_into(
    mut out: Vec<u8>,
    request: &[u8],
    hdr: &NlMsgHdr,
    port: u32,
    error: Option<Errno>,
) -> Vec<u8> {
    let echoed = match error {
        Some(_) => &request[..(hdr.len as usize).min(request.len())],
        None => &request[..NLMSG_HDRLEN],
    };
    out.clear();
    out.reserve(NLMSG_HDRLEN + 4 + echoed.len());
    let len = (NLMSG_HDRLEN + 4 + echoed.len()) as u32;
    NlMsgHdr { len, kind: NLMSG_ERROR, flags: 0, seq: hdr.seq, pid: port }.write(&mut out);
    out.extend_from_slice(&error.map_or(0, |e| e.to_kernel_return()).to_le_bytes());
    out.extend_from_slice(echoed);
    out.resize(align4(out.len()), 0);
    out
}

/// How a policy entry types an attribute (`struct nla_policy`), for the types taskstats and
/// nlctrl use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NlaType {
    /// `NLA_U16`: at least 2 bytes (nlctrl's `CTRL_ATTR_FAMILY_ID`).
    U16,
    /// `NLA_U32`: at least 4 bytes.
    U32,
    /// `NLA_STRING`: at least 1 byte.
    String,
    /// `NLA_NUL_STRING` with `.len`: a NUL within the first `len + 1` bytes, else EINVAL
    /// (nlctrl's `CTRL_ATTR_FAMILY_NAME`, `.len = GENL_NAMSIZ - 1`).
    NulString(usize),
}

/// One parsed attribute: its (masked) type and payload range in the message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Attr {
    /// Type, `NLA_TYPE_MASK` applied.
    pub kind: u16,
    /// Payload offset.
    pub at: usize,
    /// Payload length (`nla_len()`).
    pub len: usize,
}

impl Attr {
    /// `nla_get_u16()`.
    pub fn get_u16(&self, bytes: &[u8]) -> u16 {
        u16_at(bytes, self.at)
    }

    /// `nla_get_u32()`.
    pub fn get_u32(&self, bytes: &[u8]) -> u32 {
        u32_at(bytes, self.at)
    }

    /// The payload.
    pub fn data<'a>(&self, bytes: &'a [u8]) -> &'a [u8] {
        &bytes[self.at..self.at + self.len]
    }
}

/// Most attribute types one [`nla_parse`] table holds (`maxtype + 1`): the families' largest
/// maxtype is nlctrl's CTRL_ATTR_MCAST_GROUPS (7).
pub const ATTR_TABLE_MAX: usize = 8;

/// [`nla_parse`]'s table (`struct nlattr *tb[maxtype + 1]`): the last attribute of each type
/// `0..=maxtype`, on the stack as the kernel's is (a request's parse allocates nothing).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AttrTable {
    entries: [Option<Attr>; ATTR_TABLE_MAX],
    len: usize,
}

impl AttrTable {
    /// An empty table for types `0..=maxtype` (panics past [`ATTR_TABLE_MAX`]: a family whose
    /// maxtype outgrew the constant).
    pub(crate) fn new(maxtype: u16) -> AttrTable {
        let len = usize::from(maxtype) + 1;
        assert!(len <= ATTR_TABLE_MAX, "maxtype {maxtype} needs a larger ATTR_TABLE_MAX");
        AttrTable { entries: [None; ATTR_TABLE_MAX], len }
    }
}

impl std::ops::Deref for AttrTable {
    type Target = [Option<Attr>];

    fn deref(&self) -> &[Option<Attr>] {
        &self.entries[..self.len]
    }
}

impl std::ops::DerefMut for AttrTable {
    fn deref_mut(&mut self) -> &mut [Option<Attr>] {
        &mut self.entries[..self.len]
    }
}

/// `nla_parse()` with `validate_nla()`: walks attributes while `nla_ok()`, validates those with a
/// policy entry (`-ERANGE` when too short), keeps the last of each type up to `maxtype`, and
/// ignores leftover bytes (the kernel only warns about them).
pub fn nla_parse(
    bytes: &[u8],
    start: usize,
    end: usize,
    maxtype: u16,
    policy: &dyn Fn(u16) -> Option<NlaType>,
) -> Result<AttrTable, Errno> {
    let mut table = AttrTable::new(maxtype);
    nla_parse_into(bytes, start, end, policy, &mut table)?;
    Ok(table)
}

/// [`nla_parse`] into the caller's empty table (`maxtype` is its length less one), as the
/// kernel's callers pass their own `tb[]`: the table is filled where it lives, not returned
/// and moved (a request's doit reads it there).
pub(crate) fn nla_parse_into(
    bytes: &[u8],
    start: usize,
    end: usize,
    policy: &dyn Fn(u16) -> Option<NlaType>,
    table: &mut AttrTable,
) -> Result<(), Errno> {
    let maxtype = (table.len - 1) as u16;
    let mut at = start;
    while end.saturating_sub(at) >= NLA_HDRLEN {
        let nla_len = usize::from(u16_at(bytes, at));
        // nla_ok(): a header that fits and a length within what remains.
        if nla_len < NLA_HDRLEN || nla_len > end - at {
            break;
        }
        let kind = u16_at(bytes, at + 2) & NLA_TYPE_MASK;
        let attr = Attr { kind, at: at + NLA_HDRLEN, len: nla_len - NLA_HDRLEN };
        if kind > 0 && kind <= maxtype {
            match policy(kind) {
                Some(NlaType::U16) if attr.len < 2 => return Err(Errno::ERANGE),
                Some(NlaType::U32) if attr.len < 4 => return Err(Errno::ERANGE),
                Some(NlaType::String) if attr.len < 1 => return Err(Errno::ERANGE),
                Some(NlaType::NulString(max)) => {
                    let window = &bytes[attr.at..attr.at + attr.len.min(max + 1)];
                    if window.is_empty() || !window.contains(&0) {
                        return Err(Errno::EINVAL);
                    }
                }
                _ => {}
            }
            table[usize::from(kind)] = Some(attr);
        }
        at += align4(nla_len);
    }
    Ok(())
}

/// `struct taskstats` as the model fills it, every field of version 8; version 1 uses the
/// first eight counters only.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[allow(missing_docs)]
pub struct TaskstatsRecord {
    pub version: u16,
    pub ac_exitcode: u32,
    pub ac_flag: u8,
    pub ac_nice: u8,
    pub cpu_count: u64,
    pub cpu_delay_total: u64,
    pub blkio_count: u64,
    pub blkio_delay_total: u64,
    pub swapin_count: u64,
    pub swapin_delay_total: u64,
    pub cpu_run_real_total: u64,
    pub cpu_run_virtual_total: u64,
    pub ac_comm: [u8; TS_COMM_LEN],
    pub ac_sched: u8,
    pub ac_uid: u32,
    pub ac_gid: u32,
    pub ac_pid: u32,
    pub ac_ppid: u32,
    pub ac_btime: u32,
    pub ac_etime: u64,
    pub ac_utime: u64,
    pub ac_stime: u64,
    pub ac_minflt: u64,
    pub ac_majflt: u64,
    pub coremem: u64,
    pub virtmem: u64,
    pub hiwater_rss: u64,
    pub hiwater_vm: u64,
    pub read_char: u64,
    pub write_char: u64,
    pub read_syscalls: u64,
    pub write_syscalls: u64,
    pub read_bytes: u64,
    pub write_bytes: u64,
    pub cancelled_write_bytes: u64,
    pub nvcsw: u64,
    pub nivcsw: u64,
    pub ac_utimescaled: u64,
    pub ac_stimescaled: u64,
    pub cpu_scaled_run_real_total: u64,
    pub freepages_count: u64,
    pub freepages_delay_total: u64,
}

impl TaskstatsRecord {
    /// `sizeof(struct taskstats)` at `version` (1 or 8).
    pub fn size_of(version: u16) -> usize {
        if version >= 8 {
            TASKSTATS_V8_SIZE
        } else {
            TASKSTATS_V1_SIZE
        }
    }

    /// The C layout of `version` (1 or 8): `sizeof(struct taskstats)` bytes, padding zeroed.
    pub fn to_bytes(&self, version: u16) -> Vec<u8> {
        let mut b = vec![0u8; Self::size_of(version)];
        self.write_to(version, &mut b);
        b
    }

    /// [`Self::to_bytes`] written in place into `b` (zeroed, [`Self::size_of`] bytes), as
    /// mk_reply() fills the attribute nla_reserve() made, without a buffer of its own.
    pub fn write_to(&self, version: u16, b: &mut [u8]) {
        let mut put = |at: usize, v: &[u8]| b[at..at + v.len()].copy_from_slice(v);
        put(0, &self.version.to_le_bytes());
        // The eight delay counters, in the order both layouts keep them.
        let delays = [
            self.cpu_count,
            self.cpu_delay_total,
            self.blkio_count,
            self.blkio_delay_total,
            self.swapin_count,
            self.swapin_delay_total,
            self.cpu_run_real_total,
            self.cpu_run_virtual_total,
        ];
        // Version 1: version, padding[3], then the delays from offset 8. Version 8 puts
        // ac_exitcode, ac_flag and ac_nice first and the delays from offset 16.
        let delays_at = if version < 8 { 8 } else { 16 };
        for (i, v) in delays.iter().enumerate() {
            put(delays_at + 8 * i, &v.to_le_bytes());
        }
        if version < 8 {
            return;
        }
        put(4, &self.ac_exitcode.to_le_bytes());
        put(8, &[self.ac_flag, self.ac_nice]);
        put(80, &self.ac_comm);
        put(112, &[self.ac_sched]);
        let ids = [self.ac_uid, self.ac_gid, self.ac_pid, self.ac_ppid, self.ac_btime];
        for (i, v) in ids.iter().enumerate() {
            put(120 + 4 * i, &v.to_le_bytes());
        }
        let tail = [
            self.ac_etime,
            self.ac_utime,
            self.ac_stime,
            self.ac_minflt,
            self.ac_majflt,
            self.coremem,
            self.virtmem,
            self.hiwater_rss,
            self.hiwater_vm,
            self.read_char,
            self.write_char,
            self.read_syscalls,
            self.write_syscalls,
            self.read_bytes,
            self.write_bytes,
            self.cancelled_write_bytes,
            self.nvcsw,
            self.nivcsw,
            self.ac_utimescaled,
            self.ac_stimescaled,
            self.cpu_scaled_run_real_total,
            self.freepages_count,
            self.freepages_delay_total,
        ];
        for (i, v) in tail.iter().enumerate() {
            put(144 + 8 * i, &v.to_le_bytes());
        }
    }
}

/// `struct cgroupstats`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CgroupStats {
    /// `nr_sleeping`.
    pub nr_sleeping: u64,
    /// `nr_running`.
    pub nr_running: u64,
    /// `nr_stopped`.
    pub nr_stopped: u64,
    /// `nr_uninterruptible`.
    pub nr_uninterruptible: u64,
    /// `nr_io_wait`.
    pub nr_io_wait: u64,
}

impl CgroupStats {
    /// The C layout.
    pub fn to_bytes(&self) -> Vec<u8> {
        [self.nr_sleeping, self.nr_running, self.nr_stopped, self.nr_uninterruptible, self.nr_io_wait]
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect()
    }
}

/// Builds a request as a client (libnl, getdelays) would: headers and `attrs` of (type, payload).
pub fn request(kind: u16, flags: u16, seq: u32, port: u32, cmd: u8, attrs: &[(u16, Vec<u8>)]) -> Vec<u8> {
    let mut msg = MsgBuilder::genlmsg_put(kind, flags, seq, port, cmd, TASKSTATS_GENL_VERSION);
    for (attr, payload) in attrs {
        msg.nla_put(*attr, payload);
    }
    msg.finish()
}

/// `nla_strlcpy(dst, nla, dstsize)` (lib/nlattr.c): the payload less one trailing NUL, cut to
/// `dstsize - 1` bytes, into a zeroed buffer of `dstsize` bytes. With `dstsize` the payload's own
/// length (as parse() calls it), a payload without a NUL loses its last byte.
pub fn nla_strlcpy(payload: &[u8], dstsize: usize) -> Vec<u8> {
    let mut dst = vec![0u8; dstsize];
    nla_strlcpy_into(payload, &mut dst);
    dst
}

/// [`nla_strlcpy`] into the caller's buffer `dst` (`dstsize` is its length), which it
/// NUL-fills past the copy: for a caller with a buffer on its stack, as the kernel's is.
pub fn nla_strlcpy_into(payload: &[u8], dst: &mut [u8]) {
    let mut srclen = payload.len();
    if srclen > 0 && payload[srclen - 1] == 0 {
        srclen -= 1;
    }
    let dstsize = dst.len();
    if dstsize > 0 {
        let len = if srclen >= dstsize { dstsize - 1 } else { srclen };
        dst[..len].copy_from_slice(&payload[..len]);
        dst[len..].fill(0);
    }
}

/// A cpumask attribute payload: the text and its NUL, as getdelays sends it.
pub fn cpumask_payload(text: &str) -> Vec<u8> {
    let mut payload = text.as_bytes().to_vec();
    payload.push(0);
    payload
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An ack written into a spare buffer (a longer message's, a shorter one's) is the bytes a
    /// fresh ack has, for an ack and for an error that echoes the request.
    #[test]
    fn an_ack_into_a_spare_buffer_is_a_fresh_ack() {
        let mut request =
            MsgBuilder::genlmsg_put_into(Vec::new(), (TASKSTATS_FAMILY_ID, NLM_F_REQUEST, 9, 77), 1, 1);
        request.nla_put(TASKSTATS_CMD_ATTR_PID, &5u32.to_le_bytes());
        let request = request.finish();
        let hdr = NlMsgHdr::parse(&request).expect("a header");
        for error in [None, Some(Errno::ESRCH)] {
            let fresh = netlink_ack(&request, &hdr, 77, error);
            for spare in [vec![0xaa; 200], vec![0x55; 3], Vec::new()] {
                assert_eq!(
                    netlink_ack_into(spare.clone(), &request, &hdr, 77, error),
                    fresh,
                    "{error:?}, {spare:?}"
                );
            }
        }
    }

    #[test]
    fn records_have_the_uapi_sizes_and_offsets() {
        let record = TaskstatsRecord {
            version: 8,
            ac_uid: 0x1122_3344,
            freepages_delay_total: 7,
            ..Default::default()
        };
        let bytes = record.to_bytes(8);
        assert_eq!(bytes.len(), TASKSTATS_V8_SIZE);
        assert_eq!(u32_at(&bytes, 120), 0x1122_3344, "ac_uid at 120");
        assert_eq!(bytes[320], 7, "freepages_delay_total is the last field, at 320");
        assert_eq!(TaskstatsRecord::default().to_bytes(1).len(), TASKSTATS_V1_SIZE);
    }

    #[test]
    fn nla_parse_stops_at_a_bad_length_and_validates_u32() {
        let policy = |kind: u16| (kind == 1).then_some(NlaType::U32);
        let mut msg = MsgBuilder::genlmsg_put(TASKSTATS_FAMILY_ID, 0, 0, 0, 1, 1);
        msg.nla_put_u32(1, 5);
        let bytes = msg.finish();
        let table = nla_parse(&bytes, 20, bytes.len(), 4, &policy).unwrap();
        assert_eq!(table[1].map(|a| a.get_u32(&bytes)), Some(5));
        let mut short = MsgBuilder::genlmsg_put(TASKSTATS_FAMILY_ID, 0, 0, 0, 1, 1);
        short.nla_put(1, &[1, 2]);
        let short = short.finish();
        assert_eq!(nla_parse(&short, 20, short.len(), 4, &policy), Err(Errno::ERANGE));
        let mut bad = bytes.clone();
        bad[20] = 200;
        assert!(nla_parse(&bad, 20, bad.len(), 4, &policy).unwrap().iter().all(Option::is_none));
    }
}
