//! `ksim taskstats netlink`: requests built by hand from the uapi layout, replies checked field by
//! field. The family id is the model's (GENL_ID_CTRL + 1 = 0x11, the first generated id).

use std::io::Write as _;
use std::process::{Command, Stdio};

use crate::support::scratch;

/// `TASKSTATS_FAMILY_ID` in the model (the first id GENL_ID_GENERATE hands out).
const FAMILY: u16 = 0x11;
const NLMSG_ERROR: u16 = 2;
const NLM_F_REQUEST: u16 = 0x1;
const NLM_F_ACK: u16 = 0x4;
const TASKSTATS_CMD_GET: u8 = 1;
const TASKSTATS_CMD_NEW: u8 = 2;
const TASKSTATS_CMD_ATTR_PID: u16 = 1;
const TASKSTATS_TYPE_PID: u16 = 1;
const TASKSTATS_TYPE_STATS: u16 = 3;
const TASKSTATS_TYPE_AGGR_PID: u16 = 4;
/// `struct taskstats` version 8 (the default preset is linux-3.8).
const TASKSTATS_V8_SIZE: usize = 328;
/// include/uapi/linux/cgroupstats.h: the command enum starts at `__TASKSTATS_CMD_MAX` (3).
const CGROUPSTATS_CMD_GET: u8 = 4;
const CGROUPSTATS_CMD_NEW: u8 = 5;
const CGROUPSTATS_CMD_ATTR_FD: u16 = 1;
const CGROUPSTATS_TYPE_CGROUP_STATS: u16 = 1;
const EINVAL: i32 = 22;

/// One generic-netlink request: nlmsghdr, genlmsghdr, then the attributes as given.
fn request(seq: u32, port: u32, cmd: u8, attrs: &[u8]) -> Vec<u8> {
    let len = 16 + 4 + attrs.len();
    let mut out = Vec::new();
    out.extend_from_slice(&(len as u32).to_le_bytes());
    out.extend_from_slice(&FAMILY.to_le_bytes());
    out.extend_from_slice(&(NLM_F_REQUEST | NLM_F_ACK).to_le_bytes());
    out.extend_from_slice(&seq.to_le_bytes());
    out.extend_from_slice(&port.to_le_bytes());
    out.extend_from_slice(&[cmd, 1, 0, 0]);
    out.extend_from_slice(attrs);
    out
}

/// A u32 attribute.
fn nla_u32(kind: u16, value: u32) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(&8u16.to_le_bytes());
    out.extend_from_slice(&kind.to_le_bytes());
    out.extend_from_slice(&value.to_le_bytes());
    out
}

fn u16_at(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

/// Runs `ksim taskstats netlink --port PORT` with `stdin`; returns status and raw stdout.
fn netlink(name: &str, port: u32, stdin: &[u8]) -> (i32, Vec<u8>, String) {
    let dir = scratch(name);
    let mut child = Command::new(env!("CARGO_BIN_EXE_ksim"))
        .args(["taskstats", "netlink", "--port", &port.to_string()])
        .current_dir(&dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run ksim");
    let _ = child.stdin.take().expect("stdin").write_all(stdin);
    let output = child.wait_with_output().expect("wait for ksim");
    (output.status.code().unwrap_or(-1), output.stdout, String::from_utf8_lossy(&output.stderr).into_owned())
}

/// Splits a byte stream into netlink messages by nlmsg_len (each 4-aligned).
fn messages(bytes: &[u8]) -> Vec<&[u8]> {
    let mut out = Vec::new();
    let mut at = 0;
    while at + 16 <= bytes.len() {
        let len = u32_at(bytes, at) as usize;
        assert!(len >= 16 && at + len <= bytes.len(), "a message overruns the stream at {at}: len {len}");
        out.push(&bytes[at..at + len]);
        at += (len + 3) & !3;
    }
    assert_eq!(at, bytes.len(), "the stream ends on a message boundary");
    out
}

/// Checks an NLMSG_ERROR message: its seq and errno (0 for an ack); returns the echoed header.
fn assert_error(msg: &[u8], seq: u32, errno: i32) {
    assert_eq!(u16_at(msg, 4), NLMSG_ERROR, "nlmsg_type is NLMSG_ERROR");
    assert_eq!(u32_at(msg, 8), seq, "the error echoes the request's seq");
    assert_eq!(u32_at(msg, 16) as i32, -errno, "the error carries -errno");
    assert_eq!(u16_at(msg, 20 + 4), FAMILY, "the echoed request header names the family");
    assert_eq!(u32_at(msg, 20 + 8), seq, "the echoed request header carries its seq");
}

#[test]
fn taskstats_cmd_get_by_pid_gets_a_taskstats_new_reply_and_an_ack() {
    let port = 4242;
    let req = request(7, port, TASKSTATS_CMD_GET, &nla_u32(TASKSTATS_CMD_ATTR_PID, 1));
    let (status, out, stderr) = netlink("netlink-get", port, &req);
    assert_eq!(status, 0, "{stderr}");
    let msgs = messages(&out);
    assert_eq!(msgs.len(), 2, "a reply then the ack (NLM_F_ACK)");

    let reply = msgs[0];
    let stats_attr_len = 4 + TASKSTATS_V8_SIZE;
    let nest_len = 4 + 8 + stats_attr_len;
    assert_eq!(reply.len(), 16 + 4 + nest_len, "nlmsghdr + genlmsghdr + the AGGR_PID nest");
    assert_eq!(u16_at(reply, 4), FAMILY, "nlmsg_type is the family");
    assert_eq!(u32_at(reply, 8), 7, "the reply echoes the request's seq");
    assert_eq!(u32_at(reply, 12), port, "the reply is addressed to the requesting port");
    assert_eq!(reply[16], TASKSTATS_CMD_NEW, "genlmsghdr.cmd is TASKSTATS_CMD_NEW");
    assert_eq!(reply[17], 1, "genlmsghdr.version is TASKSTATS_GENL_VERSION");
    // TASKSTATS_TYPE_AGGR_PID { TASKSTATS_TYPE_PID = 1, TASKSTATS_TYPE_STATS = struct taskstats }
    assert_eq!(u16_at(reply, 20) as usize, nest_len);
    assert_eq!(u16_at(reply, 22), TASKSTATS_TYPE_AGGR_PID);
    assert_eq!(u16_at(reply, 24), 8);
    assert_eq!(u16_at(reply, 26), TASKSTATS_TYPE_PID);
    assert_eq!(u32_at(reply, 28), 1, "the pid asked about");
    assert_eq!(u16_at(reply, 32) as usize, stats_attr_len);
    assert_eq!(u16_at(reply, 34), TASKSTATS_TYPE_STATS);
    let stats = &reply[36..];
    assert_eq!(u16_at(stats, 0), 8, "struct taskstats.version is TASKSTATS_VERSION 8");
    assert_eq!(&stats[80..85], b"task1", "ac_comm names init (offset 80 in struct taskstats)");

    assert_error(msgs[1], 7, 0);
    assert_eq!(msgs[1].len(), 16 + 4 + 16, "an ack echoes only the request header");
}

#[test]
fn a_stream_of_two_requests_is_answered_one_message_at_a_time_in_order() {
    let port = 9;
    let mut stream = request(1, port, TASKSTATS_CMD_GET, &nla_u32(TASKSTATS_CMD_ATTR_PID, 1));
    stream.extend(request(2, port, TASKSTATS_CMD_GET, &nla_u32(TASKSTATS_CMD_ATTR_PID, 2)));
    let (status, out, stderr) = netlink("netlink-stream", port, &stream);
    assert_eq!(status, 0, "{stderr}");
    let msgs = messages(&out);
    let kinds: Vec<(u16, u32)> = msgs.iter().map(|m| (u16_at(m, 4), u32_at(m, 8))).collect();
    assert_eq!(kinds, vec![(FAMILY, 1), (NLMSG_ERROR, 1), (FAMILY, 2), (NLMSG_ERROR, 2)]);
    assert_eq!(u32_at(msgs[2], 28), 2, "the second reply is about pid 2 (the client itself)");
}

#[test]
fn an_attribute_overrunning_its_message_gets_einval_with_the_request_echoed() {
    let port = 5;
    // TASKSTATS_CMD_ATTR_PID claiming 12 bytes in a message that holds 8 of it.
    let mut attr = nla_u32(TASKSTATS_CMD_ATTR_PID, 1);
    attr[0] = 12;
    let req = request(3, port, TASKSTATS_CMD_GET, &attr);
    let (status, out, stderr) = netlink("netlink-bad-attr", port, &req);
    assert_eq!(status, 0, "{stderr}");
    let msgs = messages(&out);
    assert_eq!(msgs.len(), 1, "only the error");
    assert_error(msgs[0], 3, EINVAL);
    assert_eq!(&msgs[0][20..], &req[..], "an error echoes the whole request");
}

#[test]
fn a_reader_that_went_away_ends_ksim_quietly_with_status_141() {
    // A shell's `| head`: stdout's reader is gone before ksim writes. ksim reads all of stdin
    // before it answers, so closing the reader first and only then sending the request makes
    // the write fail with EPIPE every time, however the processes are scheduled.
    let mut child = Command::new(env!("CARGO_BIN_EXE_ksim"))
        .args(["taskstats", "netlink", "--port", "6"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run ksim");
    drop(child.stdout.take());
    let mut stdin = child.stdin.take().expect("stdin");
    stdin.write_all(&request(4, 6, TASKSTATS_CMD_GET, &[])).expect("send the request");
    drop(stdin);
    let output = child.wait_with_output().expect("wait");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(141), "{stderr}");
    assert!(stderr.is_empty(), "nothing on stderr: {stderr}");
}

#[test]
fn a_request_without_pid_or_tgid_gets_einval() {
    let port = 6;
    let req = request(4, port, TASKSTATS_CMD_GET, &[]);
    let (status, out, stderr) = netlink("netlink-no-attr", port, &req);
    assert_eq!(status, 0, "{stderr}");
    let msgs = messages(&out);
    assert_eq!(msgs.len(), 1);
    assert_error(msgs[0], 4, EINVAL);
}

#[test]
fn truncated_and_short_streams_are_dropped_silently_as_netlink_rcv_skb_does() {
    let port = 8;
    let whole = request(5, port, TASKSTATS_CMD_GET, &nla_u32(TASKSTATS_CMD_ATTR_PID, 1));
    // nlmsg_len beyond the bytes sent; a stream shorter than a header; nlmsg_len below a header.
    let mut short_len = whole.clone();
    short_len[0] = 4;
    for (name, bytes) in
        [("cut", &whole[..whole.len() - 3]), ("tiny", &whole[..10]), ("len4", &short_len[..])]
    {
        let (status, out, stderr) = netlink(&format!("netlink-{name}"), port, bytes);
        assert_eq!(status, 0, "{name}: {stderr}");
        assert!(out.is_empty(), "{name}: nothing is delivered, got {} bytes", out.len());
        assert!(!stderr.contains("panicked"), "{name}: {stderr}");
    }
}

#[test]
fn a_message_too_short_for_its_genl_header_gets_einval() {
    let port = 10;
    // nlmsghdr (len 18) + two bytes of a genlmsghdr, padded to 20 bytes in the stream.
    let mut req = request(6, port, TASKSTATS_CMD_GET, &[]);
    req[0] = 18;
    let (status, out, stderr) = netlink("netlink-short-genl", port, &req);
    assert_eq!(status, 0, "{stderr}");
    let msgs = messages(&out);
    assert_eq!(msgs.len(), 1);
    assert_error(msgs[0], 6, EINVAL);
}

#[test]
fn the_request_can_come_from_a_file() {
    let dir = scratch("netlink-file");
    let port = 77;
    let req = request(8, port, TASKSTATS_CMD_GET, &nla_u32(TASKSTATS_CMD_ATTR_PID, 2));
    std::fs::write(dir.join("get.bin"), &req).expect("write request");
    let output = Command::new(env!("CARGO_BIN_EXE_ksim"))
        .args(["taskstats", "netlink", "--port", &port.to_string(), "get.bin"])
        .current_dir(&dir)
        .output()
        .expect("run ksim");
    assert_eq!(output.status.code(), Some(0), "{}", String::from_utf8_lossy(&output.stderr));
    let msgs = messages(&output.stdout);
    assert_eq!(msgs.len(), 2);
    assert_eq!(u32_at(msgs[0], 12), port);
    assert_eq!(u32_at(msgs[0], 28), 2, "the reply is about pid 2");
}

#[test]
fn a_cgroupstats_request_with_command_4_gets_its_cgroupstats_reply() {
    let port = 31;
    // fd 1 of the client (inherited from init) is the cgroup directory "/".
    let req = request(12, port, CGROUPSTATS_CMD_GET, &nla_u32(CGROUPSTATS_CMD_ATTR_FD, 1));
    let (status, out, stderr) = netlink("netlink-cgroupstats", port, &req);
    assert_eq!(status, 0, "{stderr}");
    let msgs = messages(&out);
    assert_eq!(msgs.len(), 2, "the cgroupstats reply, then the ack");
    let reply = msgs[0];
    assert_eq!((u16_at(reply, 4), u32_at(reply, 8), u32_at(reply, 12)), (FAMILY, 12, port));
    assert_eq!(reply[16], CGROUPSTATS_CMD_NEW, "genlmsghdr.cmd is CGROUPSTATS_CMD_NEW");
    assert_eq!(u16_at(reply, 20) as usize, 4 + 5 * 8, "one attribute holding struct cgroupstats");
    assert_eq!(u16_at(reply, 22), CGROUPSTATS_TYPE_CGROUP_STATS);
    let nr_running = u64::from(u32_at(reply, 24 + 8)) | (u64::from(u32_at(reply, 24 + 12)) << 32);
    assert_eq!(nr_running, 2, "init and the client run in \"/\"");
    assert_error(msgs[1], 12, 0);
}

#[test]
fn a_thousand_requests_in_one_file_get_a_thousand_answers_in_order() {
    let port = 1000;
    let mut stream = Vec::new();
    for seq in 0..1000u32 {
        // Alternate init and the client, and ask for an ack on every other request.
        let mut req = request(seq, port, TASKSTATS_CMD_GET, &nla_u32(TASKSTATS_CMD_ATTR_PID, 1 + seq % 2));
        if seq % 2 == 1 {
            req[6] &= !(NLM_F_ACK as u8);
        }
        stream.extend(req);
    }
    let (status, out, stderr) = netlink("netlink-thousand", port, &stream);
    assert_eq!(status, 0, "{stderr}");
    let msgs = messages(&out);
    let replies: Vec<&[u8]> = msgs.iter().copied().filter(|m| u16_at(m, 4) == FAMILY).collect();
    let acks = msgs.iter().filter(|m| u16_at(m, 4) == NLMSG_ERROR).count();
    assert_eq!(replies.len(), 1000, "one TASKSTATS_CMD_NEW per request");
    assert_eq!(acks, 500, "an ack for each request that asked for one");
    for (seq, reply) in replies.iter().enumerate() {
        assert_eq!(u32_at(reply, 8), seq as u32, "replies come in request order");
        assert_eq!(u32_at(reply, 28), 1 + seq as u32 % 2, "reply {seq} is about the pid it asked for");
    }
}
