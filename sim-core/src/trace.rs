//! Typed trace events, their hash, and two drawings: a text swim-lane for the terminal and Chrome
//! trace-event JSON that Perfetto and chrome://tracing open.
//!
//! Every event carries a sequence number (logical time: the order events happened in, which is
//! what an interleaving is) and the virtual clock in nanoseconds. The trace always keeps a running
//! hash of every event, even when it stores none, so determinism can be checked for free.
//! Events are recorded under a `std` mutex: the trace is instrumentation and adds no interleavings.

use std::borrow::Cow;
use std::collections::{BTreeMap, VecDeque};
use std::fmt::Write as _;
use std::sync::Mutex as StdMutex;

use serde::{Deserialize, Serialize};

use crate::lockdep::LockMode;

/// A simulated task (execution context) id, unique within one [`crate::Sim`].
pub type TaskId = u32;

/// A name that is usually a `&'static str` (a lock class, a call site) but survives a round trip
/// through an artifact file.
pub type Name = Cow<'static, str>;

/// What happened.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum EventKind {
    /// A lock was acquired (after any wait). `token` pairs it with its release.
    Acquired { class: Name, mode: LockMode, trylock: bool, token: u64 },
    /// A lock was released.
    Released { class: Name, token: u64 },
    /// An operation began (a kernel entry point: a syscall, an exit, a shrink).
    OpBegin { name: Name, detail: String },
    /// The operation ended with this result.
    OpEnd { name: Name, result: String },
    /// Fault injection failed a call at this site.
    Fault { site: Name },
    /// A context slept in virtual time.
    Sleep { what: Name, ns: u64 },
    /// Free text from a model (a listener pruned, a page told to the host).
    Note { text: String },
    /// A broken invariant or another checker finding.
    Violation { kind: String, message: String },
    /// An outermost `rcu_read_lock()` (`lock`) or `rcu_read_unlock()` (not `lock`): a read-side
    /// section's bounds. Nested calls are not traced.
    RcuReadSide { lock: bool },
    /// `rcu_assign_pointer()` published `object` (0 for NULL) in the named pointer.
    RcuAssign { pointer: Name, object: u64 },
    /// A grace period ended (`synchronize_rcu()` returned or the `Sim` advanced RCU), and this
    /// many callbacks became due.
    RcuGracePeriod { callbacks: u32 },
    /// An RCU-protected object was freed: by `kfree` at once, or by a callback (`deferred`).
    RcuFree { pointer: Name, object: u64, deferred: bool },
    /// A reference-count operation on the named object and the count it left.
    Kref { object: Name, op: KrefOp, count: u32 },
    /// A simulated interrupt handler began (`enter`) or ended on this context: `"hardirq"`,
    /// `"softirq"`.
    Irq { context: Name, enter: bool },
    /// An access to a convention-guarded field ([`crate::guarded::Guarded`]).
    Access { field: Name, write: bool },
}

/// The reference-count operations a trace records.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum KrefOp {
    /// `kref_init()`.
    Init,
    /// `kref_get()`.
    Get,
    /// A successful `kref_get_unless_zero()`.
    GetUnlessZero,
    /// `kref_put()` that did not release.
    Put,
    /// The last `kref_put()`: the release ran.
    Release,
}

/// One trace event.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    /// Logical time: the position of this event in the run.
    pub seq: u64,
    /// Virtual clock, nanoseconds.
    pub time_ns: u64,
    /// CPU of the context.
    pub cpu: u32,
    /// Task of the context.
    pub task: TaskId,
    /// What happened.
    pub kind: EventKind,
}

/// How much of the trace is kept in memory. The hash always covers every event.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum TraceMode {
    /// Keep no events (campaigns at full speed); the hash still covers them all.
    HashOnly,
    /// Keep the last N events (what a failure artifact stores).
    Tail(usize),
    /// Keep every event (teaching scenarios, replays).
    Full,
}

struct TraceInner {
    mode: TraceMode,
    events: VecDeque<Event>,
    seq: u64,
    hash: u64,
    tasks: BTreeMap<TaskId, String>,
}

/// The event log of one [`crate::Sim`].
pub struct Trace {
    inner: StdMutex<TraceInner>,
}

impl std::fmt::Debug for Trace {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let inner = self.lock();
        f.debug_struct("Trace").field("mode", &inner.mode).field("events", &inner.seq).finish()
    }
}

/// The hash's starting value.
const HASH_SEED: u64 = 0xcbf2_9ce4_8422_2325;

/// A word-at-a-time hash (FxHash's mixing step) over a canonical little-endian encoding, so the
/// value is the same on every platform. Fast enough to run on every lock acquisition.
struct TraceHasher(u64);

impl TraceHasher {
    fn word(&mut self, word: u64) {
        self.0 = (self.0.rotate_left(5) ^ word).wrapping_mul(0x517c_c1b7_2722_0a95);
    }

    fn text(&mut self, text: &str) {
        let bytes = text.as_bytes();
        let mut chunks = bytes.chunks_exact(8);
        for chunk in &mut chunks {
            self.word(u64::from_le_bytes(chunk.try_into().expect("eight bytes")));
        }
        let mut last = [0u8; 8];
        last[..chunks.remainder().len()].copy_from_slice(chunks.remainder());
        self.word(u64::from_le_bytes(last));
        self.word(bytes.len() as u64);
    }
}

fn hash_event(hash: &mut u64, event: &Event) {
    let mut hasher = TraceHasher(*hash);
    hasher.word(event.seq);
    hasher.word(event.time_ns);
    hasher.word(u64::from(event.cpu) << 32 | u64::from(event.task));
    match &event.kind {
        EventKind::Acquired { class, mode, trylock, token } => {
            hasher.word(1 | (*mode as u64) << 8 | u64::from(*trylock) << 16);
            hasher.text(class);
            hasher.word(*token);
        }
        EventKind::Released { class, token } => {
            hasher.word(2);
            hasher.text(class);
            hasher.word(*token);
        }
        EventKind::OpBegin { name, detail } => {
            hasher.word(3);
            hasher.text(name);
            hasher.text(detail);
        }
        EventKind::OpEnd { name, result } => {
            hasher.word(4);
            hasher.text(name);
            hasher.text(result);
        }
        EventKind::Fault { site } => {
            hasher.word(5);
            hasher.text(site);
        }
        EventKind::Sleep { what, ns } => {
            hasher.word(6);
            hasher.text(what);
            hasher.word(*ns);
        }
        EventKind::Note { text } => {
            hasher.word(7);
            hasher.text(text);
        }
        EventKind::Violation { kind, message } => {
            hasher.word(8);
            hasher.text(kind);
            hasher.text(message);
        }
        EventKind::RcuReadSide { lock } => hasher.word(9 | u64::from(*lock) << 8),
        EventKind::RcuAssign { pointer, object } => {
            hasher.word(10);
            hasher.text(pointer);
            hasher.word(*object);
        }
        EventKind::RcuGracePeriod { callbacks } => hasher.word(11 | u64::from(*callbacks) << 8),
        EventKind::RcuFree { pointer, object, deferred } => {
            hasher.word(12 | u64::from(*deferred) << 8);
            hasher.text(pointer);
            hasher.word(*object);
        }
        EventKind::Kref { object, op, count } => {
            hasher.word(13 | (*op as u64) << 8 | u64::from(*count) << 32);
            hasher.text(object);
        }
        EventKind::Irq { context, enter } => {
            hasher.word(14 | u64::from(*enter) << 8);
            hasher.text(context);
        }
        EventKind::Access { field, write } => {
            hasher.word(15 | u64::from(*write) << 8);
            hasher.text(field);
        }
    }
    *hash = hasher.0;
}

impl Trace {
    /// An empty trace.
    pub fn new(mode: TraceMode) -> Trace {
        Trace {
            inner: StdMutex::new(TraceInner {
                mode,
                events: VecDeque::new(),
                seq: 0,
                hash: HASH_SEED,
                tasks: BTreeMap::new(),
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, TraceInner> {
        self.inner.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Records an event at the next sequence number.
    pub fn record(&self, time_ns: u64, cpu: u32, task: TaskId, kind: EventKind) {
        let mut inner = self.lock();
        inner.seq += 1;
        let event = Event { seq: inner.seq, time_ns, cpu, task, kind };
        hash_event(&mut inner.hash, &event);
        match inner.mode {
            TraceMode::HashOnly => {}
            TraceMode::Tail(keep) => {
                if inner.events.len() >= keep {
                    inner.events.pop_front();
                }
                if keep > 0 {
                    inner.events.push_back(event);
                }
            }
            TraceMode::Full => inner.events.push_back(event),
        }
    }

    /// Whether events are kept (not only hashed), so that building their text is worth it.
    pub fn keeps_events(&self) -> bool {
        self.lock().mode != TraceMode::HashOnly
    }

    /// Names a task for the drawings.
    pub fn name_task(&self, task: TaskId, name: &str) {
        self.lock().tasks.insert(task, name.to_string());
    }

    /// The task names, by id.
    pub fn task_names(&self) -> BTreeMap<TaskId, String> {
        self.lock().tasks.clone()
    }

    /// The hash of every event recorded so far (over a canonical little-endian encoding).
    pub fn hash(&self) -> u64 {
        self.lock().hash
    }

    /// How many events have been recorded (kept or not).
    pub fn len(&self) -> u64 {
        self.lock().seq
    }

    /// Whether nothing has been recorded.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The events kept, oldest first.
    pub fn events(&self) -> Vec<Event> {
        self.lock().events.iter().cloned().collect()
    }

    /// The last `count` events kept.
    pub fn tail(&self, count: usize) -> Vec<Event> {
        let inner = self.lock();
        let skip = inner.events.len().saturating_sub(count);
        inner.events.iter().skip(skip).cloned().collect()
    }
}

fn describe(kind: &EventKind) -> String {
    match kind {
        EventKind::Acquired { class, mode, trylock, .. } => {
            let verb = match mode {
                LockMode::Read => "down_read",
                LockMode::Write => "down_write",
                LockMode::SpinIrq => "lock_irq",
                LockMode::SpinBh => "lock_bh",
                LockMode::BitSpin => "bit_spin_lock",
                LockMode::Spin | LockMode::Mutex => "lock",
            };
            format!("{}{verb}({class})", if *trylock { "try" } else { "" })
        }
        EventKind::Released { class, .. } => format!("unlock({class})"),
        EventKind::OpBegin { name, detail } if detail.is_empty() => format!("> {name}"),
        EventKind::OpBegin { name, detail } => format!("> {name} {detail}"),
        EventKind::OpEnd { name, result } => format!("< {name} = {result}"),
        EventKind::Fault { site } => format!("FAULT {site}"),
        EventKind::Sleep { what, ns } => format!("sleep {what} {}ms", ns / 1_000_000),
        EventKind::Note { text } => text.clone(),
        EventKind::Violation { kind, message } => format!("!! {kind}: {message}"),
        EventKind::RcuReadSide { lock: true } => "rcu_read_lock".to_string(),
        EventKind::RcuReadSide { lock: false } => "rcu_read_unlock".to_string(),
        EventKind::RcuAssign { pointer, object: 0 } => format!("rcu_assign_pointer({pointer}, NULL)"),
        EventKind::RcuAssign { pointer, object } => {
            format!("rcu_assign_pointer({pointer}, {})", object_name(*object))
        }
        EventKind::RcuGracePeriod { callbacks } => format!("grace period ({callbacks} callbacks)"),
        EventKind::RcuFree { pointer, object, deferred } => {
            let how = if *deferred { "rcu callback kfree" } else { "kfree" };
            format!("{how}({pointer} {})", object_name(*object))
        }
        EventKind::Kref { object, op, count } => {
            let verb = match op {
                KrefOp::Init => "kref_init",
                KrefOp::Get => "kref_get",
                KrefOp::GetUnlessZero => "kref_get_unless_zero",
                KrefOp::Put => "kref_put",
                KrefOp::Release => "kref_put+release",
            };
            format!("{verb}({object}) = {count}")
        }
        EventKind::Irq { context, enter: true } => format!("<{context}>"),
        EventKind::Irq { context, enter: false } => format!("</{context}>"),
        EventKind::Access { field, write: true } => format!("write {field}"),
        EventKind::Access { field, write: false } => format!("read {field}"),
    }
}

/// An RCU object's trace word (`(slot + 1) << 32 | generation`, 0 for NULL) as `obj#slot.generation`,
/// the spelling slab handles use.
fn object_name(word: u64) -> String {
    match word >> 32 {
        0 => "NULL".to_string(),
        slot => format!("obj#{}.{}", slot - 1, word as u32),
    }
}

/// Draws events as a text swim-lane: one column per task, one row per event, logical time down
/// the left. A lane shows `|` while its task holds at least one lock.
pub fn render_text(events: &[Event], names: &BTreeMap<TaskId, String>, lane_width: usize) -> String {
    let lane_width = lane_width.max(12);
    let mut tasks: Vec<TaskId> = events.iter().map(|e| e.task).collect();
    tasks.sort_unstable();
    tasks.dedup();
    let column: BTreeMap<TaskId, usize> = tasks.iter().enumerate().map(|(i, &t)| (t, i)).collect();
    let mut held: Vec<u32> = vec![0; tasks.len()];
    let mut out = String::new();
    let _ = write!(out, "{:>6} {:>12} ", "seq", "time");
    for task in &tasks {
        let name = names.get(task).cloned().unwrap_or_else(|| format!("task{task}"));
        let _ = write!(out, "| {:<width$}", truncate(&name, lane_width - 1), width = lane_width - 1);
    }
    out.push('\n');
    let _ = writeln!(out, "{}", "-".repeat(20 + tasks.len() * (lane_width + 1)));
    for event in events {
        let lane = column[&event.task];
        if let EventKind::Released { .. } = event.kind {
            held[lane] = held[lane].saturating_sub(1);
        }
        let _ = write!(out, "{:>6} {:>10}ns ", event.seq, event.time_ns);
        for (index, _) in tasks.iter().enumerate() {
            let cell = if index == lane {
                format!("{} cpu{}", describe(&event.kind), event.cpu)
            } else if held[index] > 0 {
                "|".to_string()
            } else {
                String::new()
            };
            let _ = write!(out, "| {:<width$}", truncate(&cell, lane_width - 1), width = lane_width - 1);
        }
        out.truncate(out.trim_end().len());
        out.push('\n');
        if let EventKind::Acquired { .. } = event.kind {
            held[lane] += 1;
        }
    }
    out
}

fn truncate(text: &str, width: usize) -> String {
    if text.chars().count() <= width {
        text.to_string()
    } else {
        let mut cut: String = text.chars().take(width.saturating_sub(1)).collect();
        cut.push('~');
        cut
    }
}

/// Chrome trace-event JSON (the "JSON Array/Object Format" Perfetto reads). Timestamps are the
/// logical sequence numbers, in microseconds, so an interleaving reads left to right one step per
/// event; the virtual clock is in each event's args. Lock holds are async slices keyed by their
/// acquisition token, so holds that overlap without nesting (A, B, unlock A, unlock B) still draw
/// correctly; operations are duration slices; the rest are instants.
pub fn render_chrome(events: &[Event], names: &BTreeMap<TaskId, String>) -> serde_json::Value {
    use serde_json::json;
    let mut out = Vec::new();
    let mut tasks: Vec<TaskId> = events.iter().map(|e| e.task).collect();
    tasks.sort_unstable();
    tasks.dedup();
    out.push(json!({"name": "process_name", "ph": "M", "pid": 1, "tid": 0, "args": {"name": "ksim"}}));
    for task in &tasks {
        let name = names.get(task).cloned().unwrap_or_else(|| format!("task{task}"));
        out.push(json!({"name": "thread_name", "ph": "M", "pid": 1, "tid": task, "args": {"name": name}}));
    }
    for event in events {
        let args = json!({"time_ns": event.time_ns, "cpu": event.cpu, "seq": event.seq});
        let base = |name: String, cat: &str, ph: &str| json!({"name": name, "cat": cat, "ph": ph, "ts": event.seq, "pid": 1, "tid": event.task, "args": args});
        let value = match &event.kind {
            EventKind::Acquired { class, token, .. } => {
                let mut value = base(class.to_string(), "lock", "b");
                value["id"] = json!(format!("0x{token:x}"));
                value["args"]["what"] = json!(describe(&event.kind));
                value
            }
            EventKind::Released { class, token } => {
                let mut value = base(class.to_string(), "lock", "e");
                value["id"] = json!(format!("0x{token:x}"));
                value
            }
            EventKind::OpBegin { name, detail } => {
                let mut value = base(name.to_string(), "op", "B");
                value["args"]["detail"] = json!(detail);
                value
            }
            EventKind::OpEnd { name, result } => {
                let mut value = base(name.to_string(), "op", "E");
                value["args"]["result"] = json!(result);
                value
            }
            other => {
                let cat = match other {
                    EventKind::Fault { .. } => "fault",
                    EventKind::Violation { .. } => "violation",
                    EventKind::RcuReadSide { .. }
                    | EventKind::RcuAssign { .. }
                    | EventKind::RcuGracePeriod { .. }
                    | EventKind::RcuFree { .. } => "rcu",
                    EventKind::Kref { .. } => "kref",
                    _ => "note",
                };
                let mut value = base(describe(other), cat, "i");
                value["s"] = json!("t");
                value
            }
        };
        out.push(value);
    }
    json!({"traceEvents": out, "displayTimeUnit": "ns"})
}

#[cfg(test)]
mod tests {
    use super::*;

    fn acquire(class: &'static str, token: u64) -> EventKind {
        EventKind::Acquired { class: Cow::Borrowed(class), mode: LockMode::Spin, trylock: false, token }
    }

    #[test]
    fn hash_covers_events_that_are_not_kept() {
        let kept = Trace::new(TraceMode::Full);
        let hashed = Trace::new(TraceMode::HashOnly);
        for trace in [&kept, &hashed] {
            trace.record(5, 0, 1, acquire("a", 1));
            trace.record(6, 0, 1, EventKind::Released { class: "a".into(), token: 1 });
        }
        assert_eq!(kept.hash(), hashed.hash());
        assert_eq!(kept.events().len(), 2);
        assert!(hashed.events().is_empty());
        let other = Trace::new(TraceMode::HashOnly);
        other.record(5, 0, 2, acquire("a", 1));
        assert_ne!(other.hash(), hashed.hash(), "a different task must change the hash");
    }

    #[test]
    fn tail_mode_keeps_only_the_newest_events() {
        let trace = Trace::new(TraceMode::Tail(3));
        for seq in 0..10 {
            trace.record(seq, 0, 0, EventKind::Note { text: seq.to_string() });
        }
        let kept: Vec<u64> = trace.events().iter().map(|e| e.seq).collect();
        assert_eq!(kept, vec![8, 9, 10]);
        assert_eq!(trace.len(), 10);
    }

    #[test]
    fn chrome_json_pairs_overlapping_lock_holds_by_token() {
        let trace = Trace::new(TraceMode::Full);
        trace.record(0, 0, 1, acquire("a", 1));
        trace.record(0, 0, 1, acquire("b", 2));
        trace.record(0, 0, 1, EventKind::Released { class: "a".into(), token: 1 });
        trace.record(0, 0, 1, EventKind::Released { class: "b".into(), token: 2 });
        let json = render_chrome(&trace.events(), &BTreeMap::new());
        let events = json["traceEvents"].as_array().expect("array");
        let begins: Vec<&str> =
            events.iter().filter(|e| e["ph"] == "b").map(|e| e["id"].as_str().expect("id")).collect();
        let ends: Vec<&str> =
            events.iter().filter(|e| e["ph"] == "e").map(|e| e["id"].as_str().expect("id")).collect();
        assert_eq!(begins, vec!["0x1", "0x2"]);
        assert_eq!(ends, vec!["0x1", "0x2"], "a hold ends by its own id, not by nesting order");
    }

    #[test]
    fn text_lanes_show_a_bar_while_a_task_holds_a_lock() {
        let trace = Trace::new(TraceMode::Full);
        trace.record(0, 0, 1, acquire("a", 1));
        trace.record(0, 1, 2, EventKind::Note { text: "hello".into() });
        trace.record(0, 0, 1, EventKind::Released { class: "a".into(), token: 1 });
        let text = render_text(&trace.events(), &BTreeMap::new(), 20);
        let row = text.lines().find(|l| l.contains("hello")).expect("row");
        assert!(row.contains("| |"), "task 1's lane shows it holds a lock: {row}");
        assert!(text.contains("lock(a) cpu0"));
    }
}
