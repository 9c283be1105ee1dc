//! Bad input through the byte-level entry point: mutated requests (truncated headers, wrong
//! lengths, wrong attribute types, oversized and unterminated cpumasks, unknown commands and
//! families), each judged against an oracle written here from the uapi headers and the 3.x
//! sources' order of checks (netlink_rcv_skb(), genl_rcv_msg(), nla_parse() with the policy,
//! taskstats_user_cmd(), parse() and bitmap_parselist(), cgroupstats_user_cmd(),
//! ctrl_getfamily()). The oracle shares nothing with the model but the uapi numbers in `uapi`.
//! `KSIM_BAD_INPUT_CASES` raises the count (the report's 10^6 run).

use sim_core::{Sim, SimConfig};
use taskstats_sim::{netlink_send, task_cx, Fixes, ForkKind, Params, Taskstats};

use super::uapi::*;

const FAMILY: u16 = 0x11;
const EINVAL: i32 = 22;
const ENOENT: i32 = 2;
const ERANGE: i32 = 34;
const E2BIG: i32 = 7;
const ESRCH: i32 = 3;
const EOPNOTSUPP: i32 = 95;
/// `TASKSTATS_CPUMASK_MAXLEN` with the model's NR_CPUS of 64.
const CPUMASK_MAXLEN: usize = 100 + 6 * 64;

/// A small deterministic generator (xorshift64*), so the cases are the same on every run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

/// What one message should get: (a reply of this genetlink type, if any) then the NLMSG_ERROR
/// errno (None: no error message at all).
type Expect = (Option<u16>, Option<i32>);

/// The reply "type" of nlctrl's GETFAMILY dump (ctrl_dumpfamily): one skb of `NLM_F_MULTI`
/// CTRL_CMD_NEWFAMILY messages, one per registered family (nlctrl and TASKSTATS), then one
/// `NLMSG_DONE`, and never an ack (netlink_rcv_skb() skips it for a dump started).
const DUMP: u16 = 0xffff;

/// A policy check: Err(errno) for an attribute its policy rejects.
type PolicyCheck<'a> = &'a dyn Fn(u16, &[u8]) -> Result<(), i32>;

/// Attributes as nla_parse() keeps them: the last of each type up to `maxtype`, the walk ending
/// at the first one that does not fit; Err when a policy check fails.
fn parse_attrs<'a>(
    bytes: &'a [u8],
    maxtype: u16,
    check: PolicyCheck<'_>,
) -> Result<Vec<Option<&'a [u8]>>, i32> {
    let mut table = vec![None; usize::from(maxtype) + 1];
    let mut at = 0;
    while bytes.len() - at >= 4 {
        let len = le(&bytes[at..at + 2]) as usize;
        if len < 4 || len > bytes.len() - at {
            break;
        }
        let kind = le(&bytes[at + 2..at + 4]) as u16 & 0x3fff;
        let payload = &bytes[at + 4..at + len];
        if kind > 0 && kind <= maxtype {
            check(kind, payload)?;
            table[usize::from(kind)] = Some(payload);
        }
        at += nla_align(len).min(bytes.len() - at);
    }
    Ok(table)
}

/// 3.x bitmap_parselist() over the C string parse() copied, with 2 possible CPUs of 64 bits:
/// characters one at a time; whitespace skipped, but a non-space after a space once digits were
/// seen is EINVAL; ',' ends an entry; '-' only after digits and once; each entry's range
/// checked (backwards EINVAL, past 64 ERANGE) and set, an empty entry being 0; then the subset
/// check against the possible CPUs.
fn cpumask_errno(payload: &[u8]) -> i32 {
    // nla_strlcpy() into nla_len() bytes, then the string to its NUL, then to its newline.
    let body = payload.strip_suffix(&[0]).unwrap_or(payload);
    let copied = &body[..body.len().min(payload.len().saturating_sub(1))];
    let text = copied.split(|&c| c == 0).next().unwrap_or(&[]);
    let text = text.split(|&c| c == b'\n').next().unwrap_or(&[]);
    let space = |c: u8| matches!(c, b' ' | 9..=13 | 0xa0);
    let (mut chars, mut c, mut digits_seen, mut cpus) = (text.iter(), 0u8, false, Vec::new());
    loop {
        let (mut a, mut b, mut expect_digit, mut in_range, mut comma) = (0u32, 0u32, true, false, false);
        for &next in chars.by_ref() {
            let old = c;
            c = next;
            if space(c) {
                continue;
            }
            if digits_seen && space(old) {
                return EINVAL;
            }
            if c == b',' {
                comma = true;
                break;
            }
            match c {
                b'-' if expect_digit || in_range => return EINVAL,
                b'-' => (b, in_range, expect_digit) = (0, true, true),
                b'0'..=b'9' => {
                    b = b.wrapping_mul(10).wrapping_add(u32::from(c - b'0'));
                    if !in_range {
                        a = b;
                    }
                    expect_digit = false;
                    digits_seen = true;
                }
                _ => return EINVAL,
            }
        }
        if a > b {
            return EINVAL;
        }
        if b >= 64 {
            return ERANGE;
        }
        cpus.extend(a..=b);
        if !(comma && chars.len() > 0) {
            break;
        }
    }
    if cpus.iter().any(|&cpu| cpu >= 2) {
        return EINVAL;
    }
    0
}

/// TASKSTATS_CMD_GET's doit with the attributes parsed: the first of REGISTER, DEREGISTER, PID,
/// TGID decides.
fn taskstats_cmd(attrs: &[Option<&[u8]>], live: &[u32]) -> Expect {
    for kind in [TASKSTATS_CMD_ATTR_REGISTER_CPUMASK, TASKSTATS_CMD_ATTR_DEREGISTER_CPUMASK] {
        if let Some(mask) = attrs[usize::from(kind)] {
            if mask.len() > CPUMASK_MAXLEN {
                return (None, Some(E2BIG));
            }
            return (None, Some(cpumask_errno(mask)));
        }
    }
    for kind in [TASKSTATS_CMD_ATTR_PID, TASKSTATS_CMD_ATTR_TGID] {
        if let Some(id) = attrs[usize::from(kind)] {
            let id = le(&id[..4]) as u32;
            return if live.contains(&id) { (Some(FAMILY), Some(0)) } else { (None, Some(ESRCH)) };
        }
    }
    (None, Some(EINVAL))
}

/// nlctrl's CTRL_CMD_GETFAMILY doit: id (NLA_U16) then name (NLA_NUL_STRING, 15 + NUL), the
/// name's answer replacing the id's.
fn ctrl_cmd(body: &[u8]) -> Expect {
    let check = |kind: u16, payload: &[u8]| match kind {
        CTRL_ATTR_FAMILY_ID if payload.len() < 2 => Err(ERANGE),
        CTRL_ATTR_FAMILY_NAME if !payload[..payload.len().min(16)].contains(&0) => Err(EINVAL),
        _ => Ok(()),
    };
    let attrs = match parse_attrs(body, 10, &check) {
        Ok(attrs) => attrs,
        Err(errno) => return (None, Some(errno)),
    };
    let mut found = None;
    if let Some(id) = attrs[usize::from(CTRL_ATTR_FAMILY_ID)] {
        // nlctrl registers itself too: both ids answer.
        found = Some([FAMILY, GENL_ID_CTRL].contains(&(le(&id[..2]) as u16)));
    }
    if let Some(name) = attrs[usize::from(CTRL_ATTR_FAMILY_NAME)] {
        let name = name.split(|&c| c == 0).next();
        found = Some(name == Some(TASKSTATS_GENL_NAME) || name == Some(b"nlctrl"));
    }
    match found {
        None => (None, Some(EINVAL)),
        Some(false) => (None, Some(ENOENT)),
        Some(true) => (Some(GENL_ID_CTRL), Some(0)),
    }
}

/// genl_rcv_msg() for one message of the 3.8 world (root sender, fds 0 regular, 1 and 2 cgroup
/// directories), then the ack rule: an error always, a success only with NLM_F_ACK.
fn expect(msg: &[u8], live: &[u32]) -> Expect {
    let (kind, flags) = (le(&msg[4..6]) as u16, le(&msg[6..8]) as u16);
    let ack = |e: Expect| match e {
        (reply, Some(0)) => (reply, (flags & NLM_F_ACK != 0).then_some(0)),
        other => other,
    };
    if flags & NLM_F_REQUEST == 0 || kind < 0x10 {
        return ack((None, Some(0)));
    }
    if kind != FAMILY && kind != GENL_ID_CTRL {
        return (None, Some(ENOENT));
    }
    if msg.len() < NLMSG_HDRLEN + GENL_HDRLEN {
        return (None, Some(EINVAL));
    }
    let (cmd, body) = (msg[NLMSG_HDRLEN], &msg[NLMSG_HDRLEN + GENL_HDRLEN..]);
    if kind == GENL_ID_CTRL {
        if cmd != CTRL_CMD_GETFAMILY {
            return (None, Some(EOPNOTSUPP));
        }
        // genl_rcv_msg() starts the dump before any attribute is parsed.
        if flags & NLM_F_DUMP == NLM_F_DUMP {
            return (Some(DUMP), None);
        }
        return ack(ctrl_cmd(body));
    }
    if (cmd != TASKSTATS_CMD_GET && cmd != CGROUPSTATS_CMD_GET) || flags & NLM_F_DUMP == NLM_F_DUMP {
        return (None, Some(EOPNOTSUPP));
    }
    let cgroup = cmd == CGROUPSTATS_CMD_GET;
    let check = |kind: u16, payload: &[u8]| match kind {
        1 | 2 if !cgroup && payload.len() < 4 => Err(ERANGE),
        1 if cgroup && payload.len() < 4 => Err(ERANGE),
        3 | 4 if !cgroup && payload.is_empty() => Err(ERANGE),
        _ => Ok(()),
    };
    let attrs = match parse_attrs(body, TASKSTATS_CMD_ATTR_DEREGISTER_CPUMASK, &check) {
        Ok(attrs) => attrs,
        Err(errno) => return (None, Some(errno)),
    };
    if !cgroup {
        return ack(taskstats_cmd(&attrs, live));
    }
    match attrs[usize::from(CGROUPSTATS_CMD_ATTR_FD)].map(|fd| le(&fd[..4])) {
        None => (None, Some(EINVAL)),
        Some(0) => (None, Some(EINVAL)),
        Some(1 | 2) => ack((Some(FAMILY), Some(0))),
        Some(_) => ack((None, Some(0))),
    }
}

/// The messages of a sendmsg buffer as netlink_rcv_skb() walks them.
fn messages(bytes: &[u8]) -> Vec<&[u8]> {
    let mut out = Vec::new();
    let mut at = 0;
    while bytes.len() - at >= NLMSG_HDRLEN {
        let len = le(&bytes[at..at + 4]) as usize;
        if len < NLMSG_HDRLEN || len > bytes.len() - at {
            break;
        }
        out.push(&bytes[at..at + len]);
        at += nla_align(len).min(bytes.len() - at);
    }
    out
}

/// A cpumask payload: digits, commas, dashes, spaces and odd bytes, NUL-terminated or not, or
/// longer than TASKSTATS_CPUMASK_MAXLEN.
fn cpumask(rng: &mut Rng) -> Vec<u8> {
    const ALPHABET: &[u8] = b"0011223-,, \n\t\x00\xa0x9";
    let len = match rng.below(10) {
        0 => CPUMASK_MAXLEN - 2 + rng.below(6) as usize,
        _ => rng.below(8) as usize,
    };
    let mut text: Vec<u8> = (0..len).map(|_| ALPHABET[rng.below(ALPHABET.len() as u64) as usize]).collect();
    if rng.below(3) > 0 {
        text.push(0);
    }
    text
}

/// One mutated request: a valid template, then one to three mutations.
fn mutated(rng: &mut Rng) -> Vec<u8> {
    let id = [1u32, 2, 3, 4, 0, 99][rng.below(6) as usize].to_le_bytes();
    let fd = (rng.below(5) as u32).to_le_bytes();
    let mask = cpumask(rng);
    let name: &[u8] = [&b"TASKSTATS\0"[..], b"TASKSTATS", b"NOPE\0", b""][rng.below(4) as usize];
    let family_id = [FAMILY, 0x99, 0x10][rng.below(3) as usize].to_le_bytes();
    let (family, cmd, attrs): (u16, u8, Vec<(u16, &[u8])>) = match rng.below(6) {
        0 => (FAMILY, TASKSTATS_CMD_GET, vec![(TASKSTATS_CMD_ATTR_PID, &id)]),
        1 => (FAMILY, TASKSTATS_CMD_GET, vec![(TASKSTATS_CMD_ATTR_TGID, &id)]),
        2 => (FAMILY, TASKSTATS_CMD_GET, vec![(TASKSTATS_CMD_ATTR_REGISTER_CPUMASK, &mask)]),
        3 => (FAMILY, TASKSTATS_CMD_GET, vec![(TASKSTATS_CMD_ATTR_DEREGISTER_CPUMASK, &mask)]),
        4 => (FAMILY, CGROUPSTATS_CMD_GET, vec![(CGROUPSTATS_CMD_ATTR_FD, &fd)]),
        _ => (
            GENL_ID_CTRL,
            CTRL_CMD_GETFAMILY,
            vec![(CTRL_ATTR_FAMILY_NAME, name), (CTRL_ATTR_FAMILY_ID, &family_id)],
        ),
    };
    let mut bytes = request(family, NLM_F_REQUEST | NLM_F_ACK, 7, 0, cmd, &attrs);
    for _ in 0..=rng.below(3) {
        mutate(rng, &mut bytes);
    }
    bytes
}

/// One mutation of a request's bytes.
fn mutate(rng: &mut Rng, bytes: &mut Vec<u8>) {
    let at_attr = NLMSG_HDRLEN + GENL_HDRLEN;
    match rng.below(9) {
        // Truncate, leaving nlmsg_len as it was (the message then overruns the buffer) or not.
        0 => {
            bytes.truncate(rng.below(bytes.len() as u64 + 1) as usize);
            if rng.below(2) == 0 && bytes.len() >= 4 {
                let len = bytes.len() as u32;
                bytes[0..4].copy_from_slice(&len.to_le_bytes());
            }
        }
        1 if bytes.len() >= 4 => bytes[0..4].copy_from_slice(&(rng.below(64) as u32).to_le_bytes()),
        2 if bytes.len() > at_attr + 1 => bytes[at_attr] = rng.below(40) as u8,
        3 if bytes.len() > at_attr + 3 => bytes[at_attr + 2] = rng.below(8) as u8,
        4 if bytes.len() > NLMSG_HDRLEN => bytes[NLMSG_HDRLEN] = rng.below(7) as u8,
        5 if bytes.len() >= 6 => {
            let kind = [0x11u16, 0x10, 0x12, 0x03, 0x99][rng.below(5) as usize];
            bytes[4..6].copy_from_slice(&kind.to_le_bytes());
        }
        // Flags: without NLM_F_REQUEST or NLM_F_ACK, or a dump (nlctrl's dumpit lists the
        // families; TASKSTATS has none).
        6 if bytes.len() >= 8 => {
            let flags = [0u16, NLM_F_REQUEST, NLM_F_REQUEST | NLM_F_ACK, NLM_F_REQUEST | NLM_F_DUMP]
                [rng.below(4) as usize];
            bytes[6..8].copy_from_slice(&flags.to_le_bytes());
        }
        // A second message after the first.
        7 => {
            let second = request(FAMILY, NLM_F_REQUEST | NLM_F_ACK, 8, 0, 1, &[(1, &1u32.to_le_bytes())]);
            bytes.resize(nla_align(bytes.len()), 0);
            bytes.extend(second);
        }
        _ => {
            if let Some(byte) = bytes.get_mut(at_attr + rng.below(8) as usize) {
                *byte = rng.next() as u8;
            }
        }
    }
}

/// Runs `cases` mutated requests through `netlink_request` on a 3.8 world and checks each
/// message's reply and errno against the oracle; returns how many messages were judged.
pub(crate) fn run(cases: u64, seed: u64) -> u64 {
    let sim = Sim::new(SimConfig::new(seed).cpus(2));
    let model = Taskstats::new(&sim, Fixes::preset("linux-3.8").unwrap(), Params::default());
    let leader = model.fork(&task_cx(&sim, &model, 1, "fork"), ForkKind::Process).unwrap();
    let thread = model.fork(&task_cx(&sim, &model, leader, "fork"), ForkKind::Thread).unwrap();
    let live = [1, leader, thread];
    let port = model.open_port(&task_cx(&sim, &model, 1, "socket")).unwrap();
    let mut rng = Rng(seed | 1);
    let (mut judged, mut dumps) = (0, 0);
    for case in 0..cases {
        let bytes = mutated(&mut rng);
        let got = netlink_send(&sim, &model, port, &bytes);
        let msgs = messages(&bytes);
        let want: Vec<Expect> = msgs.iter().map(|m| expect(m, &live)).collect();
        let mut got = got.iter();
        for (index, (reply, errno)) in want.iter().enumerate() {
            let context = || format!("case {case} (seed {seed}), message {index}: {bytes:02x?}");
            if *reply == Some(DUMP) {
                // The first pass now; NLMSG_DONE at the reader's recvmsg, after the write.
                dumps += 1;
                check_dump(got.next().map(Vec::as_slice), &context);
            } else if let Some(kind) = reply {
                let msg = got.next().unwrap_or_else(|| panic!("{}: no reply", context()));
                assert_eq!(le(&msg[4..6]) as u16, *kind, "{}: reply type", context());
            }
            if let Some(errno) = errno {
                let msg = got.next().unwrap_or_else(|| panic!("{}: no ack, wanted {errno}", context()));
                assert_eq!(nlmsgerr(msg), Some(*errno), "{}: errno", context());
            }
            judged += 1;
        }
        if want.iter().any(|(reply, _)| *reply == Some(DUMP)) {
            let done = got.next().unwrap_or_else(|| panic!("case {case}: no NLMSG_DONE: {bytes:02x?}"));
            assert_eq!(le(&done[4..6]) as u16, NLMSG_DONE, "case {case}: the dump's end: {bytes:02x?}");
        }
        assert!(got.next().is_none(), "case {case}: more messages than the oracle expects: {bytes:02x?}");
    }
    assert!(cases < 1000 || dumps > 0, "no nlctrl dump among {cases} cases");
    judged
}

/// A GETFAMILY dump's first pass: an skb holding exactly two `NLM_F_MULTI` nlctrl messages
/// (CTRL_CMD_NEWFAMILY for nlctrl, then for TASKSTATS).
fn check_dump(families: Option<&[u8]>, context: &dyn Fn() -> String) {
    let families = families.unwrap_or_else(|| panic!("{}: no dump", context()));
    let listed = messages(families);
    assert_eq!(listed.len(), 2, "{}: one message per family", context());
    for msg in &listed {
        assert_eq!(le(&msg[4..6]) as u16, GENL_ID_CTRL, "{}: dump message type", context());
        assert_ne!(le(&msg[6..8]) as u16 & NLM_F_MULTI, 0, "{}: NLM_F_MULTI", context());
        assert_eq!(msg[NLMSG_HDRLEN], CTRL_CMD_NEWFAMILY, "{}: dump command", context());
    }
}

#[test]
fn ten_thousand_mutated_requests_get_the_seeds_errno_and_none_panics() {
    let cases = std::env::var("KSIM_BAD_INPUT_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(10_000);
    let judged = run(cases, 12_345);
    assert!(judged >= cases / 2, "most cases hold a whole message: {judged} of {cases}");
}
