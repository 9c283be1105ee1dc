//! Lockdep: the kernel's lock validator (kernel/locking/lockdep.c), reduced to the four reports
//! ksim needs and kept as values a test can assert on.
//!
//! - a new dependency that closes a cycle in the class-order graph ("possible circular locking
//!   dependency"), with both acquisition chains and the two-CPU unsafe-scenario table, whether or
//!   not this run deadlocked;
//! - recursive acquisition of a class the context already holds ("possible recursive locking");
//! - a sleeping call (mutex, rwsem, wait, sleeping allocation) while a spinlock is held or irqs
//!   are off ("sleeping function called from invalid context", as `might_sleep()` says);
//! - a class taken in hard-irq (soft-irq) context and also with irqs (softirqs) enabled
//!   ("inconsistent lock state", `{IN-SOFTIRQ-W} -> {SOFTIRQ-ON-W}`), from the kernel's four
//!   usage bits per class: USED_IN_HARDIRQ, USED_IN_SOFTIRQ, ENABLED_HARDIRQ, ENABLED_SOFTIRQ;
//! - a new dependency that connects an irq-safe class (or one that leads to the held lock) to an
//!   irq-unsafe class (or one the new lock leads to): "HARDIRQ-safe -> HARDIRQ-unsafe" /
//!   "SOFTIRQ-safe -> SOFTIRQ-unsafe lock order detected", with both dependency chains, as
//!   `check_irq_usage()` finds it; and a usage bit newly set on a class that the graph already
//!   connects the other way ("possible irq lock inversion dependency", `check_usage_forwards()` /
//!   `check_usage_backwards()`), so the report does not depend on which came first;
//! - an access to a [`crate::guarded::Guarded`] field without its documented lock, or two tasks'
//!   accesses with no common lock (the lockset detector; see that module).
//!
//! Left out: the _READ usage bits and read-recursive rwlock_t semantics, lock subclasses beyond
//! one level and the 48-bit class-key machinery (chains are hashed only for the cache in
//! [`crate::chain_cache`]). The bookkeeping here is instrumentation:
//! its graph is behind a `sync::BookLock` (parking_lot), never the loom or shuttle facade, so it
//! adds no interleavings.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::{self, Write as _};
use std::panic::Location;
use std::sync::atomic::{AtomicU64, AtomicU8, AtomicUsize, Ordering};
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use smallvec::SmallVec;

use crate::chain_cache::ClassKey;

/// How an acquisition takes its lock, as lockdep distinguishes them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum LockMode {
    /// `spin_lock`: disables preemption.
    Spin,
    /// `spin_lock_irqsave` / `spin_lock_irq`: disables preemption and local irqs.
    SpinIrq,
    /// `mutex_lock`: may sleep.
    Mutex,
    /// `down_read`: may sleep, shared.
    Read,
    /// `down_write`: may sleep, exclusive.
    Write,
    /// `spin_lock_bh`: disables preemption and softirqs on this CPU.
    SpinBh,
    /// `bit_spin_lock`: a spinlock that is one bit of a word.
    BitSpin,
    /// `read_lock` of an `rwlock_t` (lockdep's recursive read, `read == 2`): spins, shared, and
    /// may nest inside another read hold of the same class.
    ReadRecursive,
}

impl LockMode {
    /// Every mode, in discriminant order (`ALL[mode as usize] == mode`).
    pub(crate) const ALL: [LockMode; 8] = [
        LockMode::Spin,
        LockMode::SpinIrq,
        LockMode::Mutex,
        LockMode::Read,
        LockMode::Write,
        LockMode::SpinBh,
        LockMode::BitSpin,
        LockMode::ReadRecursive,
    ];

    /// The mode whose discriminant (`mode as u8`) is `index`; panics on any other number.
    pub(crate) fn from_index(index: u8) -> LockMode {
        Self::ALL[usize::from(index)]
    }

    /// Whether a context holding a lock taken this way is atomic (may not sleep).
    pub fn is_atomic(self) -> bool {
        matches!(
            self,
            LockMode::Spin
                | LockMode::SpinIrq
                | LockMode::SpinBh
                | LockMode::BitSpin
                | LockMode::ReadRecursive
        )
    }

    fn verb(self) -> &'static str {
        match self {
            LockMode::Spin | LockMode::SpinIrq | LockMode::SpinBh => "lock",
            LockMode::BitSpin => "bit_spin_lock",
            LockMode::Mutex => "lock",
            LockMode::Read => "down_read",
            LockMode::Write => "down_write",
            LockMode::ReadRecursive => "read_lock",
        }
    }
}

/// One acquisition as a report shows it: which class, how, where in the source, by whom.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Acquisition {
    /// The lock class name (`"mb_cache_spinlock"`, `"listeners->sem"`).
    pub class: String,
    /// How it was taken.
    pub mode: LockMode,
    /// Whether it was a trylock (trylocks add no dependency of their own).
    pub trylock: bool,
    /// The Rust source location that took it (`file:line`), from `#[track_caller]`.
    pub site: String,
    /// The task (context) name.
    pub task: String,
    /// The CPU the context ran on.
    pub cpu: u32,
    /// Whether it was taken in simulated hard-irq context.
    pub in_irq: bool,
    /// Whether it was taken in simulated soft-irq context (`in_serving_softirq()`).
    #[serde(default)]
    pub in_softirq: bool,
    /// Whether hard irqs were enabled at the acquisition (lockdep's `HE`).
    #[serde(default)]
    pub hardirqs_enabled: bool,
    /// Whether softirqs were enabled at the acquisition (lockdep's `SE`).
    #[serde(default)]
    pub softirqs_enabled: bool,
}

impl Acquisition {
    /// The context flags as lockdep prints them after a task: `[HC0[0]:SC1[1]:HE1:SE0]`.
    pub fn irq_flags(&self) -> String {
        let (hc, sc) = (u32::from(self.in_irq), u32::from(self.in_softirq));
        format!(
            "[HC{hc}[{hc}]:SC{sc}[{sc}]:HE{}:SE{}]",
            u32::from(self.hardirqs_enabled),
            u32::from(self.softirqs_enabled)
        )
    }
}

/// The interrupt contexts lockdep tracks (the kernel's `lockdep_states.h`: HARDIRQ, SOFTIRQ).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum IrqContext {
    /// Hard interrupts (`hardirq`, a virtqueue callback).
    Hard,
    /// Soft interrupts (a timer, a tasklet, `NET_RX`).
    Soft,
}

impl IrqContext {
    /// Both, in the kernel's order.
    pub const ALL: [IrqContext; 2] = [IrqContext::Hard, IrqContext::Soft];

    /// `HARDIRQ` / `SOFTIRQ`, as the usage-state names spell it.
    pub fn state_name(self) -> &'static str {
        match self {
            IrqContext::Hard => "HARDIRQ",
            IrqContext::Soft => "SOFTIRQ",
        }
    }

    fn index(self) -> usize {
        self as usize
    }

    /// What disables this interrupt on one CPU, for the scenario table.
    fn disable_call(self) -> &'static str {
        match self {
            IrqContext::Hard => "local_irq_disable();",
            IrqContext::Soft => "local_bh_disable();",
        }
    }
}

/// A lockset finding's access, as a report shows it (see [`crate::guarded`]).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FieldAccess {
    /// `"read"` or `"write"`.
    pub write: bool,
    /// The task (context) name.
    pub task: String,
    /// Its CPU.
    pub cpu: u32,
    /// The Rust source location of the access (`file:line`).
    pub site: String,
    /// The lock classes the context held, outermost first.
    pub held: Vec<String>,
}

impl fmt::Display for FieldAccess {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} by {}/cpu{} at {} holding [{}]",
            if self.write { "write" } else { "read" },
            self.task,
            self.cpu,
            self.site,
            self.held.join(", ")
        )
    }
}

impl fmt::Display for Acquisition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}({}){} by {}/cpu{} at {}",
            self.mode.verb(),
            self.class,
            if self.trylock { " [trylock]" } else { "" },
            self.task,
            self.cpu,
            self.site
        )
    }
}

/// The chain that first created a dependency `from -> to`: the locks held and the new one.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DependencyChain {
    /// Class held first.
    pub from: String,
    /// Class taken while `from` was held.
    pub to: String,
    /// Every lock the context held at that moment, outermost first.
    pub held: Vec<Acquisition>,
    /// The acquisition that created the dependency.
    pub acquired: Acquisition,
}

/// What lockdep found. Each variant's `Display` is the report a kernel developer would recognise.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum LockdepReport {
    /// A new dependency `held -> acquiring` closes a cycle through existing dependencies.
    CircularDependency {
        /// The held lock (the target of the existing chain).
        held: Acquisition,
        /// The lock being acquired.
        acquiring: Acquisition,
        /// Every lock the acquiring context holds, outermost first.
        current_chain: Vec<Acquisition>,
        /// The existing dependencies from `acquiring` back to `held`, in order.
        existing_chain: Vec<DependencyChain>,
    },
    /// A class taken again by a context that already holds it.
    RecursiveLocking {
        /// The first acquisition, still held.
        held: Acquisition,
        /// The second acquisition.
        acquiring: Acquisition,
    },
    /// A call that may sleep made in atomic context.
    SleepInAtomic {
        /// What would sleep (`"mutex_lock"`, `"kmalloc(GFP_KERNEL)"`, `"wait_event"`).
        what: String,
        /// Where (`file:line`).
        site: String,
        /// The sleeping task.
        task: String,
        /// Its CPU.
        cpu: u32,
        /// Preemption count at the call (spinlocks held and explicit disables).
        preempt_count: u32,
        /// Whether local irqs were off.
        irqs_disabled: bool,
        /// Whether the call came from simulated hard-irq context.
        in_irq: bool,
        /// Whether the call came from simulated soft-irq context.
        #[serde(default)]
        in_softirq: bool,
        /// Locks held at the call.
        held: Vec<Acquisition>,
    },
    /// A class used in irq context and also taken with that irq enabled: the kernel's
    /// "inconsistent {IN-SOFTIRQ-W} -> {SOFTIRQ-ON-W} usage" (or the reverse order).
    InconsistentIrqState {
        /// The class.
        class: String,
        /// Which interrupt.
        #[serde(default = "hard")]
        irq: IrqContext,
        /// An acquisition in that irq context (USED_IN_*).
        in_irq: Acquisition,
        /// An acquisition with that irq enabled (ENABLED_*).
        irqs_enabled: Acquisition,
        /// Whether the in-irq use was registered first (so the report reads IN -> ON).
        #[serde(default)]
        in_irq_first: bool,
    },
    /// A new dependency `held -> acquiring` that connects an irq-safe class `safe` (from which
    /// the graph leads to `held`) to an irq-unsafe class `unsafe_class` (to which `acquiring`
    /// leads): one CPU can hold the unsafe lock when an interrupt comes that needs the safe one,
    /// while another CPU, holding the safe one, waits for the unsafe one.
    IrqSafeToUnsafe {
        /// Which interrupt.
        irq: IrqContext,
        /// The lock held (the dependency's source).
        held: Acquisition,
        /// The lock being taken.
        acquiring: Acquisition,
        /// Where the irq-safe class was taken in irq context.
        safe_usage: Acquisition,
        /// Where the irq-unsafe class was taken with the irq enabled.
        unsafe_usage: Acquisition,
        /// The dependencies from the irq-safe class to the held lock (empty when they are one).
        safe_chain: Vec<DependencyChain>,
        /// The dependencies from the lock being taken to the irq-unsafe class (empty when one).
        unsafe_chain: Vec<DependencyChain>,
    },
    /// A usage bit newly set on a class the graph already connects to a class of the opposite
    /// usage: "possible irq lock inversion dependency detected".
    IrqLockInversion {
        /// Which interrupt.
        irq: IrqContext,
        /// The acquisition that changed the class's state.
        changed: Acquisition,
        /// True when `changed` became irq-safe and leads to the irq-unsafe `other`; false when it
        /// became irq-unsafe and the irq-safe `other` leads to it.
        forwards: bool,
        /// Where the other class got its usage.
        other_usage: Acquisition,
        /// The dependencies between the two, from the irq-safe class to the irq-unsafe one.
        chain: Vec<DependencyChain>,
    },
    /// A [`crate::guarded::Guarded`] field accessed without the lock class that documents it
    /// (what `lockdep_assert_held()` would catch at that line).
    LockNotHeld {
        /// The field (`"balloon->num_pfns"`).
        field: String,
        /// The documented lock class.
        expected: String,
        /// The access.
        access: FieldAccess,
    },
    /// Eraser: two tasks accessed a field, at least one writing, with no lock held in common at
    /// every access, so nothing orders them: a data race waiting for the right schedule.
    LocksetRace {
        /// The field.
        field: String,
        /// The access that found the candidate lockset empty with the field written.
        current: FieldAccess,
        /// The latest access to the field by another task.
        previous: FieldAccess,
        /// The access after which no lock was held in common (the one that took the last
        /// candidate away, or the first shared access, holding none), when it is neither
        /// `current` nor `previous`: the access a reader looks for, which those two may both
        /// have made under a common lock.
        #[serde(default)]
        emptied: Option<FieldAccess>,
    },
}

fn hard() -> IrqContext {
    IrqContext::Hard
}

impl LockdepReport {
    /// A short kind name, for tables and artifact files.
    pub fn kind(&self) -> &'static str {
        match self {
            LockdepReport::CircularDependency { .. } => "circular-locking",
            LockdepReport::RecursiveLocking { .. } => "recursive-locking",
            LockdepReport::SleepInAtomic { .. } => "sleep-in-atomic",
            LockdepReport::InconsistentIrqState { .. } => "inconsistent-irq-state",
            LockdepReport::IrqSafeToUnsafe { .. } => "irq-safe-to-unsafe",
            LockdepReport::IrqLockInversion { .. } => "irq-lock-inversion",
            LockdepReport::LockNotHeld { .. } => "lock-not-held",
            LockdepReport::LocksetRace { .. } => "lockset-race",
        }
    }

    /// The lock classes the report is about, for assertions.
    pub fn classes(&self) -> Vec<String> {
        match self {
            LockdepReport::CircularDependency { held, acquiring, .. } => {
                vec![held.class.clone(), acquiring.class.clone()]
            }
            LockdepReport::RecursiveLocking { held, .. } => vec![held.class.clone()],
            LockdepReport::SleepInAtomic { held, .. } => held.iter().map(|a| a.class.clone()).collect(),
            LockdepReport::InconsistentIrqState { class, irq, .. } => {
                vec![class.clone(), irq.state_name().to_string()]
            }
            LockdepReport::IrqSafeToUnsafe { irq, safe_usage, unsafe_usage, .. } => {
                vec![safe_usage.class.clone(), unsafe_usage.class.clone(), irq.state_name().to_string()]
            }
            LockdepReport::IrqLockInversion { irq, changed, other_usage, .. } => {
                vec![changed.class.clone(), other_usage.class.clone(), irq.state_name().to_string()]
            }
            LockdepReport::LockNotHeld { field, expected, .. } => vec![field.clone(), expected.clone()],
            LockdepReport::LocksetRace { field, .. } => vec![field.clone()],
        }
    }

    /// The kernel's "possible unsafe locking scenario" table for this report.
    pub fn scenario(&self) -> String {
        let mut out = String::new();
        match self {
            LockdepReport::CircularDependency { held, acquiring, existing_chain, .. } => {
                // The lock taken just before `held` in the existing chain ("parent" in the
                // kernel's print_circular_lock_scenario).
                let parent = existing_chain.last().map(|c| c.from.as_str()).unwrap_or(&acquiring.class);
                if parent != acquiring.class {
                    let mut names: Vec<&str> = existing_chain.iter().map(|c| c.from.as_str()).collect();
                    names.push(&held.class);
                    let _ = writeln!(out, " Chain exists of:\n   {}\n", names.join(" --> "));
                }
                let _ = writeln!(out, " Possible unsafe locking scenario:\n");
                let _ = writeln!(out, "       CPU0                    CPU1");
                let _ = writeln!(out, "       ----                    ----");
                let _ = writeln!(out, "  lock({});", held.class);
                let _ = writeln!(out, "                               lock({parent});");
                let _ = writeln!(out, "                               lock({});", held.class);
                let _ = writeln!(out, "  lock({});", acquiring.class);
                let _ = writeln!(out, "\n *** DEADLOCK ***");
            }
            LockdepReport::RecursiveLocking { held, .. } => {
                let _ = writeln!(out, " Possible unsafe locking scenario:\n");
                let _ = writeln!(out, "       CPU0");
                let _ = writeln!(out, "       ----");
                let _ = writeln!(out, "  lock({});", held.class);
                let _ = writeln!(out, "  lock({});", held.class);
                let _ = writeln!(out, "\n *** DEADLOCK ***");
            }
            LockdepReport::InconsistentIrqState { class, .. } => {
                let _ = writeln!(out, " Possible unsafe locking scenario:\n");
                let _ = writeln!(out, "       CPU0");
                let _ = writeln!(out, "       ----");
                let _ = writeln!(out, "  lock({class});");
                let _ = writeln!(out, "  <Interrupt>");
                let _ = writeln!(out, "    lock({class});");
                let _ = writeln!(out, "\n *** DEADLOCK ***");
            }
            LockdepReport::IrqSafeToUnsafe { irq, held, safe_usage, unsafe_usage, .. } => {
                irq_scenario(&mut out, *irq, &safe_usage.class, &held.class, &unsafe_usage.class);
            }
            LockdepReport::IrqLockInversion { irq, changed, forwards, other_usage, chain } => {
                let (safe, unsafe_) = if *forwards { (changed, other_usage) } else { (other_usage, changed) };
                let middle = chain.last().map(|link| link.from.as_str()).unwrap_or(&safe.class);
                irq_scenario(&mut out, *irq, &safe.class, middle, &unsafe_.class);
            }
            LockdepReport::SleepInAtomic { .. }
            | LockdepReport::LockNotHeld { .. }
            | LockdepReport::LocksetRace { .. } => {}
        }
        out
    }
}

/// The kernel's `print_irq_lock_scenario()`: CPU0 holds the irq-unsafe lock when the interrupt
/// that wants the irq-safe one arrives; CPU1, with that interrupt off, holds the safe lock (and the
/// middle one, when the chain has one) and waits for the unsafe one.
fn irq_scenario(out: &mut String, irq: IrqContext, safe: &str, middle: &str, unsafe_: &str) {
    if middle != safe && middle != unsafe_ {
        let _ = writeln!(out, " Chain exists of:\n   {safe} --> {middle} --> {unsafe_}\n");
    }
    let _ = writeln!(out, " Possible interrupt unsafe locking scenario:\n");
    let _ = writeln!(out, "       CPU0                    CPU1");
    let _ = writeln!(out, "       ----                    ----");
    let _ = writeln!(out, "  lock({unsafe_});");
    let _ = writeln!(out, "                               {}", irq.disable_call());
    let _ = writeln!(out, "                               lock({safe});");
    if middle != safe && middle != unsafe_ {
        let _ = writeln!(out, "                               lock({middle});");
    }
    let _ = writeln!(out, "                               lock({unsafe_});");
    let _ = writeln!(out, "  <Interrupt>");
    let _ = writeln!(out, "    lock({safe});");
    let _ = writeln!(out, "\n *** DEADLOCK ***");
}

fn write_dependencies(f: &mut fmt::Formatter<'_>, chain: &[DependencyChain]) -> fmt::Result {
    for link in chain {
        writeln!(f, "-> {} then {}, first seen with:", link.from, link.to)?;
        write_chain(f, &link.held)?;
        writeln!(f, "     then {}", link.acquired)?;
    }
    Ok(())
}

fn write_chain(f: &mut fmt::Formatter<'_>, chain: &[Acquisition]) -> fmt::Result {
    for (depth, acquisition) in chain.iter().enumerate() {
        writeln!(f, "  #{depth}: {acquisition}")?;
    }
    Ok(())
}

impl fmt::Display for LockdepReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LockdepReport::CircularDependency { held, acquiring, current_chain, existing_chain } => {
                writeln!(f, "WARNING: possible circular locking dependency detected")?;
                writeln!(f, "{}/cpu{} is trying to acquire lock:", acquiring.task, acquiring.cpu)?;
                writeln!(f, "  {acquiring}")?;
                writeln!(f, "but task is already holding lock:")?;
                writeln!(f, "  {held}")?;
                writeln!(f, "which lock already depends on the new lock.\n")?;
                writeln!(f, "the existing dependency chain (in order) is:")?;
                write_dependencies(f, existing_chain)?;
                writeln!(f, "\nthe current chain is:")?;
                write_chain(f, current_chain)?;
                writeln!(f, "\nother info that might help us debug this:\n")?;
                write!(f, "{}", self.scenario())
            }
            LockdepReport::RecursiveLocking { held, acquiring } => {
                writeln!(f, "WARNING: possible recursive locking detected")?;
                writeln!(f, "{}/cpu{} is trying to acquire lock:", acquiring.task, acquiring.cpu)?;
                writeln!(f, "  {acquiring}")?;
                writeln!(f, "but task is already holding lock:")?;
                writeln!(f, "  {held}\n")?;
                write!(f, "{}", self.scenario())
            }
            LockdepReport::SleepInAtomic {
                what,
                site,
                task,
                cpu,
                preempt_count,
                irqs_disabled,
                in_irq,
                in_softirq,
                held,
            } => {
                writeln!(f, "BUG: sleeping function called from invalid context at {site}")?;
                writeln!(
                    f,
                    "{what}: in_atomic(): {}, irqs_disabled(): {}, in_irq(): {}, in_serving_softirq(): {}, \
                     task: {task}, cpu: {cpu}",
                    u32::from(*preempt_count > 0 || *in_irq || *in_softirq),
                    u32::from(*irqs_disabled),
                    u32::from(*in_irq),
                    u32::from(*in_softirq)
                )?;
                writeln!(f, "preempt_count: {preempt_count}; locks held: {}", held.len())?;
                write_chain(f, held)
            }
            LockdepReport::InconsistentIrqState { .. } => self.fmt_inconsistent(f),
            LockdepReport::IrqSafeToUnsafe { .. } => self.fmt_irq_safe_to_unsafe(f),
            LockdepReport::IrqLockInversion { .. } => self.fmt_irq_lock_inversion(f),
            LockdepReport::LockNotHeld { field, expected, access } => {
                writeln!(f, "WARNING: guarded field accessed without its lock")?;
                writeln!(f, "{field} is documented as protected by {expected}, but the {access}")?;
                writeln!(f, "(lockdep_assert_held({expected}) would fire here)")
            }
            LockdepReport::LocksetRace { .. } => self.fmt_lockset_race(f),
        }
    }
}

/// The irq reports' texts, one function each, as lockdep's print_usage_bug(),
/// print_bad_irq_dependency() and print_irq_inversion_bug() are, and the lockset race's.
impl LockdepReport {
    /// The `lockdep:lockset-race` report: the two conflicting accesses and, when neither emptied
    /// the candidate lockset, the access that did.
    fn fmt_lockset_race(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let LockdepReport::LocksetRace { field, current, previous, emptied } = self else {
            unreachable!("only called for its variant")
        };
        writeln!(f, "WARNING: data race on {field}: no lock held in common (lockset)")?;
        writeln!(f, "  {current}")?;
        writeln!(f, "and an earlier access by another task:")?;
        writeln!(f, "  {previous}")?;
        if let Some(emptied) = emptied {
            writeln!(f, "no lock was held in common from this access on:")?;
            writeln!(f, "  {emptied}")?;
        }
        writeln!(
            f,
            "the candidate lockset of {field} is now empty: no one lock protects every access, \
             and at least one of them writes"
        )
    }

    fn fmt_inconsistent(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let LockdepReport::InconsistentIrqState { class, irq, in_irq, irqs_enabled, in_irq_first } = self
        else {
            unreachable!("only called for its variant")
        };
        let used = format!("{{IN-{}-W}}", irq.state_name());
        let enabled = format!("{{{}-ON-W}}", irq.state_name());
        let (first, first_at, now, now_at) = if *in_irq_first {
            (&used, in_irq, &enabled, irqs_enabled)
        } else {
            (&enabled, irqs_enabled, &used, in_irq)
        };
        writeln!(f, "WARNING: inconsistent lock state")?;
        writeln!(f, "inconsistent {first} -> {now} usage.")?;
        writeln!(f, "{}/cpu{} {} takes:\n  {now_at}", now_at.task, now_at.cpu, now_at.irq_flags())?;
        writeln!(f, "{first} state was registered at:\n  {first_at}\n")?;
        let (context, enabled) = match irq {
            IrqContext::Hard => ("hardirq", "irqs"),
            IrqContext::Soft => ("softirq", "softirqs"),
        };
        writeln!(f, "({class} is taken in {context} context and, elsewhere, with {enabled} enabled)\n")?;
        write!(f, "{}", self.scenario())
    }

    fn fmt_irq_safe_to_unsafe(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let LockdepReport::IrqSafeToUnsafe {
            irq,
            held,
            acquiring,
            safe_usage,
            unsafe_usage,
            safe_chain,
            unsafe_chain,
        } = self
        else {
            unreachable!("only called for its variant")
        };
        let name = irq.state_name();
        writeln!(f, "WARNING: {name}-safe -> {name}-unsafe lock order detected")?;
        writeln!(
            f,
            "{}/cpu{} {} is trying to acquire:",
            acquiring.task,
            acquiring.cpu,
            acquiring.irq_flags()
        )?;
        writeln!(f, "  {acquiring}\n")?;
        writeln!(f, "and this task is already holding:\n  {held}")?;
        writeln!(f, "which would create a new lock dependency:\n  {} -> {}\n", held.class, acquiring.class)?;
        writeln!(f, "but this new dependency connects a {name}-irq-safe lock:\n  {}", safe_usage.class)?;
        writeln!(f, "... which became {name}-irq-safe at:\n  {safe_usage}\n")?;
        writeln!(f, "to a {name}-irq-unsafe lock:\n  {}", unsafe_usage.class)?;
        writeln!(f, "... which became {name}-irq-unsafe at:\n  {unsafe_usage}\n")?;
        writeln!(f, "the dependencies between {name}-irq-safe lock and the holding lock:")?;
        if safe_chain.is_empty() {
            writeln!(f, "  (they are one lock: {})", held.class)?;
        }
        write_dependencies(f, safe_chain)?;
        writeln!(f, "\nthe dependencies between the lock to be acquired and {name}-irq-unsafe lock:")?;
        if unsafe_chain.is_empty() {
            writeln!(f, "  (they are one lock: {})", acquiring.class)?;
        }
        write_dependencies(f, unsafe_chain)?;
        writeln!(f, "\nother info that might help us debug this:\n")?;
        write!(f, "{}", self.scenario())
    }

    fn fmt_irq_lock_inversion(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let LockdepReport::IrqLockInversion { irq, changed, forwards, other_usage, chain } = self else {
            unreachable!("only called for its variant")
        };
        let name = irq.state_name();
        writeln!(f, "WARNING: possible irq lock inversion dependency detected")?;
        writeln!(
            f,
            "{}/cpu{} {} just changed the state of lock:",
            changed.task,
            changed.cpu,
            changed.irq_flags()
        )?;
        writeln!(f, "  {changed}")?;
        if *forwards {
            writeln!(f, "but this lock took another, {name}-unsafe lock in the past:")?;
        } else {
            writeln!(f, "but this lock was taken by another, {name}-safe lock in the past:")?;
        }
        writeln!(f, "  {other_usage}\n")?;
        writeln!(f, "and interrupts could create inverse lock ordering between them.\n")?;
        writeln!(f, "the dependency chain (from the {name}-safe lock) is:")?;
        write_dependencies(f, chain)?;
        writeln!(f, "\nother info that might help us debug this:\n")?;
        write!(f, "{}", self.scenario())
    }
}

/// What lockdep does with a report besides keeping it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ReportMode {
    /// Keep the report and panic with it: the default in tests, so nothing goes unnoticed.
    Panic,
    /// Keep the report only: the checkers collect reports and turn them into violations.
    Collect,
}

/// A held lock as the context's lock stack records it: cheap to make, turned into an
/// [`Acquisition`] only when a report or a new dependency needs the text.
#[derive(Clone, Copy, Debug)]
pub(crate) struct HeldLock {
    pub(crate) token: u64,
    pub(crate) class: ClassId,
    pub(crate) name: &'static str,
    pub(crate) mode: LockMode,
    pub(crate) trylock: bool,
    pub(crate) site: &'static Location<'static>,
    pub(crate) cpu: u32,
    pub(crate) irq: IrqState,
    /// The chain key of the held stack up to and including this lock
    /// ([`crate::chain_cache::chain_key`]; 0 while lockdep is off).
    pub(crate) chain: u64,
}

/// The interrupt state of a context at an acquisition, as lockdep's `held_lock` and
/// `task_struct` keep it (`hardirq_context`, `softirq_context`, `hardirqs_enabled`,
/// `softirqs_enabled`): four bits of one byte, so that a held lock carries it in one byte and
/// the chain cache's lookup key ([`crate::chain_cache`]) takes it in one load.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct IrqState(u8);

impl IrqState {
    const HARDIRQ: u8 = 1;
    const SOFTIRQ: u8 = 1 << 1;
    const HARDIRQS_ENABLED: u8 = 1 << 2;
    const SOFTIRQS_ENABLED: u8 = 1 << 3;

    /// No bit set (the state of an unused held-lock slot).
    pub(crate) const NONE: IrqState = IrqState(0);

    /// The state of a context in a hard irq (`hardirq`), serving a softirq (`softirq`), with
    /// hard irqs and softirqs enabled or not.
    #[inline]
    pub(crate) fn new(
        hardirq: bool,
        softirq: bool,
        hardirqs_enabled: bool,
        softirqs_enabled: bool,
    ) -> IrqState {
        IrqState(
            (u8::from(hardirq) * Self::HARDIRQ)
                | (u8::from(softirq) * Self::SOFTIRQ)
                | (u8::from(hardirqs_enabled) * Self::HARDIRQS_ENABLED)
                | (u8::from(softirqs_enabled) * Self::SOFTIRQS_ENABLED),
        )
    }

    /// The four bits: hard irq, softirq, hard irqs enabled, softirqs enabled, lowest first.
    #[inline]
    pub(crate) fn bits(self) -> u8 {
        self.0
    }

    pub(crate) fn hardirq(self) -> bool {
        self.0 & Self::HARDIRQ != 0
    }

    pub(crate) fn softirq(self) -> bool {
        self.0 & Self::SOFTIRQ != 0
    }

    pub(crate) fn hardirqs_enabled(self) -> bool {
        self.0 & Self::HARDIRQS_ENABLED != 0
    }

    /// This state with hard irqs enabled or not (`local_irq_save()`'s and
    /// `local_irq_restore()`'s one change), the other bits as they are: a bit set or cleared
    /// where rebuilding the state read four fields of the context.
    #[inline]
    pub(crate) fn with_hardirqs_enabled(self, enabled: bool) -> IrqState {
        IrqState((self.0 & !Self::HARDIRQS_ENABLED) | (u8::from(enabled) * Self::HARDIRQS_ENABLED))
    }

    /// Whether this is the state of task context with nothing disabled: no hard irq or softirq
    /// served, hard irqs and softirqs enabled (so no softirq served and no bh disable either).
    #[inline]
    pub(crate) fn is_task_enabled(self) -> bool {
        self.0 == Self::HARDIRQS_ENABLED | Self::SOFTIRQS_ENABLED
    }

    pub(crate) fn softirqs_enabled(self) -> bool {
        self.0 & Self::SOFTIRQS_ENABLED != 0
    }

    /// Whether an acquisition in this state sets USED_IN_`irq` (`mark_irqflags()`).
    fn used_in(self, irq: IrqContext) -> bool {
        match irq {
            IrqContext::Hard => self.hardirq(),
            IrqContext::Soft => self.softirq(),
        }
    }

    /// Whether it sets ENABLED_`irq`: softirqs count as enabled only with hard irqs on too.
    fn enabled(self, irq: IrqContext) -> bool {
        match irq {
            IrqContext::Hard => self.hardirqs_enabled(),
            IrqContext::Soft => self.hardirqs_enabled() && self.softirqs_enabled(),
        }
    }
}

impl HeldLock {
    pub(crate) fn acquisition(&self, task: &str) -> Acquisition {
        Acquisition {
            class: self.name.to_string(),
            mode: self.mode,
            trylock: self.trylock,
            site: site(self.site),
            task: task.to_string(),
            cpu: self.cpu,
            in_irq: self.irq.hardirq(),
            in_softirq: self.irq.softirq(),
            hardirqs_enabled: self.irq.hardirqs_enabled(),
            softirqs_enabled: self.irq.softirqs_enabled(),
        }
    }
}

pub(crate) type ClassId = u32;

/// One acquisition as the graph keeps it until a report shows it: the held-lock record and the
/// task's shared name, so remembering it costs no text (the kernel's lock_class keeps the
/// `usage_traces` stack handles, not their text, for the same reason).
#[derive(Clone)]
struct Seen {
    lock: HeldLock,
    task: Arc<str>,
}

impl Seen {
    fn acquisition(&self) -> Acquisition {
        self.lock.acquisition(&self.task)
    }
}

/// Where an acquisition's [`Seen`] record is in [`Graph::seen`]: one record per validation that
/// keeps anything, shared by the usage bits it set and the dependencies it made, so each of
/// those keeps four bytes instead of a 72-byte copy of the record (a `memcpy` call each).
type SeenId = u32;

/// The chain that first created a dependency, as the graph keeps it: where the acquiring
/// context's whole held stack at that moment starts in [`Graph::held_log`] (written once for
/// every dependency that acquisition made), how much of it was held up to the dependency's
/// `from` lock, and the new acquisition ([`Graph::seen`]). Turned into a [`DependencyChain`]
/// only when a report shows it.
struct EdgeSeen {
    held: u32,
    upto: u32,
    acquired: SeenId,
}

impl EdgeSeen {
    fn chain(&self, graph: &Graph) -> DependencyChain {
        let acquired = &graph.seen[self.acquired as usize];
        let task = &acquired.task;
        let held = &graph.held_log[self.held as usize..][..self.upto as usize];
        DependencyChain {
            from: held[held.len() - 1].name.to_string(),
            to: acquired.lock.name.to_string(),
            held: held.iter().map(|h| h.acquisition(task)).collect(),
            acquired: acquired.acquisition(),
        }
    }
}

/// A class's usage bits, each with the acquisition that first set it ([`Graph::seen`]), indexed
/// by [`IrqContext::index`]: `used_in` is USED_IN_HARDIRQ / USED_IN_SOFTIRQ, `enabled` is
/// ENABLED_HARDIRQ / ENABLED_SOFTIRQ.
#[derive(Default)]
struct ClassUsage {
    used_in: [Option<SeenId>; 2],
    enabled: [Option<SeenId>; 2],
}

/// Where a breadth-first search over the class graph came from: `UNSEEN`, or the class it was
/// reached from (the start points at itself).
const UNSEEN: ClassId = ClassId::MAX;

#[derive(Default)]
struct Graph {
    /// Class ids by name, keyed by the name's trace hash first ([`ClassKey::name_hash`]), so
    /// finding a class compares whole names only where the hashes are equal.
    ids: BTreeMap<(u64, &'static str), ClassId>,
    names: Vec<&'static str>,
    usage: Vec<ClassUsage>,
    /// The acquisitions the usage bits and the dependencies keep ([`SeenId`]), in the order
    /// made: at most one per validation, written when it first keeps something.
    seen: Vec<Seen>,
    /// The held stacks of the acquisitions that made dependencies ([`EdgeSeen::held`]), one
    /// after another: one vector for the graph, where each such acquisition allocated its
    /// stack's copy (an `Arc<[HeldLock]>`) and freed it with the graph.
    held_log: Vec<HeldLock>,
    /// The chain that first created each dependency, in the order made; [`Graph::after`] keeps
    /// each dependency's index here. Apart from the ordered maps, so that adding a dependency
    /// shifts no 100-byte record within a tree node.
    edges: Vec<EdgeSeen>,
    /// Successors of each class, ordered, so searches are deterministic, each with every kind
    /// the dependency to it was made as, one bit each ([`dep_bit`]): the kernel's
    /// `lock_list::dep`, ORed on each remake (3454a36d6a39 "lockdep: Introduce lock_list::dep").
    /// Kept beside the successor, as the kernel keeps it in the `lock_list` entry, so the cycle
    /// search reads a step's kinds where it finds the step, without a look-up in `edges`.
    /// The index of the dependency's first chain in [`Graph::edges`] sits beside its kinds.
    after: Vec<ClassMap<Dependency>>,
    /// Predecessors of each class, for the backward irq-usage search.
    before: Vec<ClassMap<()>>,
    /// Whether the graph may hold a cycle: set once any cycle search masked a route as not
    /// strong (a readers' route, whether or not it reached the held class: a conservative
    /// over-approximation of "a readers' cycle was let pass"). While it is unset no dependency
    /// already present can close a cycle, so re-making one needs no search. A search the
    /// [`Closure`] skips (no route from the new class to the held one) leaves it as it is: the
    /// dependency it lets in closes no cycle, so the graph stays acyclic while this is unset.
    cyclic: bool,
    reports: Vec<LockdepReport>,
    /// Keys of reports already made, so one problem is reported once.
    reported: BTreeSet<(String, Vec<String>)>,
    /// The searches' working vectors (where each class was reached from, and the queue), kept
    /// between searches: a new world validates each of its chains once, with up to five
    /// searches per new dependency, and two allocations each were a third of that.
    scratch: std::cell::RefCell<(Vec<ClassId>, Vec<ClassId>)>,
    /// The cycle search's working vectors ([`Graph::strong_path`], which has the graph mutably,
    /// so no cell): the states seen, two bits per class, and the queue of steps.
    cycle_scratch: (Vec<u8>, Vec<Step>),
    /// Acquisitions validated against the graph ([`Lockdep::validate`]): what the chain cache
    /// did not skip. Checker bookkeeping for the cache's tests; no report depends on it.
    validations: u64,
    /// The graph's reachability, kept while it has at most [`CLOSURE_CLASSES`] classes
    /// ([`Closure`]): a search it proves empty is not run.
    closure: Closure,
}

/// Most classes [`Closure`] answers for: one bit each in a word. A graph with more is searched
/// every time, as before.
const CLOSURE_CLASSES: usize = 64;

/// The transitive closure of the dependency graph ([`Graph::after`], every kind followed) and
/// which classes have each usage bit, one bit a class: what lets a new dependency's searches be
/// answered "nothing found" without walking. A search can find something only where a route
/// exists: the cycle search (`check_noncircular()`) only if the new lock's class already leads
/// to the held one, the irq-usage searches (`check_irq_usage()`, `check_usage_forwards()` /
/// `check_usage_backwards()`) only if a class with the wanted usage bit is among those the start
/// leads to (or is led from), itself included. Where the closure cannot rule a finding out, the
/// search runs as before and its answer, report text included, is the search's own.
/// Instrumentation, as the graph is; updated when a dependency is added (never removed).
#[derive(Default)]
struct Closure {
    /// Per class, the classes it leads to by one dependency or more.
    reach: Vec<u64>,
    /// Per class, the classes that lead to it by one dependency or more.
    reached_by: Vec<u64>,
    /// Classes with USED_IN_HARDIRQ / USED_IN_SOFTIRQ set ([`IrqContext::index`]).
    used_in: [u64; 2],
    /// Classes with ENABLED_HARDIRQ / ENABLED_SOFTIRQ set.
    enabled: [u64; 2],
    /// Off only in the test that compares every report with and without it.
    off: bool,
    /// Searches answered without walking, for that test.
    #[cfg(test)]
    skipped: std::cell::Cell<u64>,
}

/// A class's bit in [`Closure`]'s words (none past [`CLOSURE_CLASSES`], where it never answers).
fn class_bit(class: ClassId) -> u64 {
    1u64.checked_shl(class).unwrap_or(0)
}

impl Closure {
    /// A class made ([`Graph::class_id`]): it leads nowhere yet.
    fn add_class(&mut self) {
        self.reach.push(0);
        self.reached_by.push(0);
    }

    /// This closure emptied as a new graph's, its vectors keeping their room ([`Graph::reset`]).
    fn reset(&mut self) {
        let Closure {
            reach,
            reached_by,
            used_in,
            enabled,
            off,
            #[cfg(test)]
            skipped,
        } = self;
        reach.clear();
        reached_by.clear();
        *used_in = [0; 2];
        *enabled = [0; 2];
        *off = false;
        #[cfg(test)]
        skipped.set(0);
    }

    /// Whether the closure answers for a graph of `classes` classes.
    fn answers(&self, classes: usize) -> bool {
        !self.off && classes <= CLOSURE_CLASSES
    }

    /// The dependency `from -> to` was added: everything that reaches `from` (and `from`) now
    /// reaches everything `to` reaches (and `to`).
    fn add_dependency(&mut self, from: ClassId, to: ClassId, classes: usize) {
        if classes > CLOSURE_CLASSES {
            return;
        }
        let sources = self.reached_by[from as usize] | class_bit(from);
        let targets = self.reach[to as usize] | class_bit(to);
        for_each_bit(sources, |class| self.reach[class] |= targets);
        for_each_bit(targets, |class| self.reached_by[class] |= sources);
    }

    /// Whether the graph has no route from `from` to `to` (`false`: there may be one).
    fn no_route(&self, from: ClassId, to: ClassId, classes: usize) -> bool {
        let none = self.answers(classes) && self.reach[from as usize] & class_bit(to) == 0;
        self.count_skip(none)
    }

    /// `none`, counted as a search skipped when true (in tests).
    #[inline]
    fn count_skip(&self, none: bool) -> bool {
        #[cfg(test)]
        self.skipped.set(self.skipped.get() + u64::from(none));
        none
    }

    /// Whether no class among `start` and those it leads to (`forwards`), or those that lead to
    /// it, is in `wanted` (`false`: one may be).
    fn none_found(&self, start: ClassId, forwards: bool, wanted: u64, classes: usize) -> bool {
        if !self.answers(classes) {
            return false;
        }
        let linked = if forwards { self.reach[start as usize] } else { self.reached_by[start as usize] };
        self.count_skip((linked | class_bit(start)) & wanted == 0)
    }
}

/// Calls `f` with the index of each bit set in `bits`, lowest first.
fn for_each_bit(mut bits: u64, mut f: impl FnMut(usize)) {
    while bits != 0 {
        f(bits.trailing_zeros() as usize);
        bits &= bits - 1;
    }
}

/// Neighbours a [`ClassMap`] keeps in place before it spills to the heap.
const NEIGHBOURS_KEPT: usize = 4;

/// A class's successors (or predecessors) in the graph, ordered by class id: a vector searched
/// by halves, where an ordered map allocated a node for a class's first neighbour and searched
/// and inserted with more work per step for the handful a class has. The first
/// [`NEIGHBOURS_KEPT`] in place: a class's first neighbour allocated (and grew) a vector, about
/// 160 instructions, in every world's graph anew.
struct ClassMap<V>(SmallVec<[(ClassId, V); NEIGHBOURS_KEPT]>);

impl<V> Default for ClassMap<V> {
    fn default() -> ClassMap<V> {
        ClassMap(SmallVec::new())
    }
}

impl<V> ClassMap<V> {
    fn get(&self, class: ClassId) -> Option<&V> {
        self.0.binary_search_by_key(&class, |entry| entry.0).ok().map(|at| &self.0[at].1)
    }

    fn get_mut(&mut self, class: ClassId) -> Option<&mut V> {
        self.0.binary_search_by_key(&class, |entry| entry.0).ok().map(|at| &mut self.0[at].1)
    }

    /// Adds `class` (not yet present) in its place: pushed when it is the last (no `insert`,
    /// whose move of the entries after it is a `memmove` call even when there are none).
    fn insert(&mut self, class: ClassId, value: V) {
        match self.0.binary_search_by_key(&class, |entry| entry.0) {
            Ok(at) => self.0[at].1 = value,
            Err(at) if at == self.0.len() => self.0.push((class, value)),
            Err(at) => self.0.insert(at, (class, value)),
        }
    }

    /// The classes and their values, in class order.
    fn iter(&self) -> impl Iterator<Item = (ClassId, &V)> {
        self.0.iter().map(|(class, value)| (*class, value))
    }

    /// The classes, in order.
    fn keys(&self) -> impl Iterator<Item = ClassId> + '_ {
        self.0.iter().map(|entry| entry.0)
    }
}

/// One dependency as [`Graph::after`] keeps it beside its successor: the kinds it was made as
/// ([`dep_bit`], ORed on each remake) and where its first chain is in [`Graph::edges`].
#[derive(Clone, Copy)]
struct Dependency {
    kinds: u8,
    edge: u32,
}

/// The kernel's dependency kinds (`DEP_SR_BIT` .. `DEP_EN_BIT`): S or E for the `from` lock held
/// shared (`read != 0`) or exclusive, R or N for the `to` lock taken as a recursive read
/// (`read == 2`) or not. As bits of [`EdgeSeen::dep`] (EN, bit 3, is never asked alone):
const DEP_SR: u8 = 1 << 0;
const DEP_ER: u8 = 1 << 1;
const DEP_SN: u8 = 1 << 2;

/// lockdep's `held_lock::read`: 0 exclusive, 1 shared, 2 recursive read.
pub(crate) fn read_state(mode: LockMode) -> u8 {
    match mode {
        LockMode::Read => 1,
        LockMode::ReadRecursive => 2,
        _ => 0,
    }
}

/// The kind of the dependency `prev -> next` (`calc_dep()`).
fn dep_bit(prev: &HeldLock, next: &HeldLock) -> u8 {
    let exclusive = usize::from(read_state(prev.mode) == 0);
    let not_recursive = usize::from(read_state(next.mode) != 2);
    1 << (exclusive + (not_recursive << 1))
}

/// One step of the cycle search: the class reached, the index of the step it was reached from
/// (the start's own index for the start), and whether the dependency followed into it can only
/// be one that ends in a recursive read (`lock_list::only_xr`).
#[derive(Clone, Copy)]
struct Step {
    class: ClassId,
    parent: usize,
    /// The kinds of the dependency followed into `class` ([`Graph::after`]; 0 for the start).
    made_as: u8,
    only_xr: bool,
}

/// Classes a new graph has room for before its per-class vectors grow: more than a case of any
/// model uses today (taskstats about ten, the balloon's most), so a campaign's graph per case
/// allocates each vector once instead of growing it through every small size (a growth moves
/// every class's usage records: a tenth of a validation's cost).
const CLASSES_ROOM: usize = 32;

impl Graph {
    /// An empty graph with room for [`CLASSES_ROOM`] classes and twice as many dependencies.
    fn with_room() -> Graph {
        Graph {
            names: Vec::with_capacity(CLASSES_ROOM),
            usage: Vec::with_capacity(CLASSES_ROOM),
            edges: Vec::with_capacity(2 * CLASSES_ROOM),
            seen: Vec::with_capacity(2 * CLASSES_ROOM),
            held_log: Vec::with_capacity(4 * CLASSES_ROOM),
            after: Vec::with_capacity(CLASSES_ROOM),
            before: Vec::with_capacity(CLASSES_ROOM),
            closure: Closure {
                reach: Vec::with_capacity(CLASSES_ROOM),
                reached_by: Vec::with_capacity(CLASSES_ROOM),
                ..Closure::default()
            },
            ..Graph::default()
        }
    }

    /// This graph emptied as [`Graph::with_room`] makes it, its vectors keeping the room they
    /// grew to ([`Lockdep::reset`]). Every field is named, so a field added to the graph does
    /// not compile here until its reset is decided.
    fn reset(&mut self) {
        let Graph {
            ids,
            names,
            usage,
            seen,
            held_log,
            edges,
            after,
            before,
            cyclic,
            reports,
            reported,
            scratch,
            cycle_scratch,
            validations,
            closure,
        } = self;
        ids.clear();
        names.clear();
        usage.clear();
        seen.clear();
        held_log.clear();
        edges.clear();
        after.clear();
        before.clear();
        *cyclic = false;
        reports.clear();
        reported.clear();
        let (from, queue) = scratch.get_mut();
        from.clear();
        queue.clear();
        cycle_scratch.0.clear();
        cycle_scratch.1.clear();
        *validations = 0;
        closure.reset();
    }

    /// The id of the class `name`, whose trace hash is `name_hash`
    /// ([`crate::trace::const_name_hash`]), made at its first use.
    fn class_id(&mut self, name: &'static str, name_hash: u64) -> ClassId {
        if let Some(&id) = self.ids.get(&(name_hash, name)) {
            return id;
        }
        let id = self.names.len() as ClassId;
        self.ids.insert((name_hash, name), id);
        self.names.push(name);
        self.usage.push(ClassUsage::default());
        self.after.push(ClassMap::default());
        self.before.push(ClassMap::default());
        self.closure.add_class();
        id
    }

    /// Breadth-first search from `start` (included) along dependencies (`forwards`) or against
    /// them, for the nearest class that satisfies `found`; returns the classes from `start` to it.
    /// Successor sets are ordered, so the answer is deterministic.
    fn search(
        &self,
        start: ClassId,
        forwards: bool,
        found: impl Fn(ClassId) -> bool,
    ) -> Option<Vec<ClassId>> {
        // Plain vectors indexed by class (a graph has tens of classes): the same visiting order
        // as a queue and ordered sets, kept between searches (`scratch`), so a search that finds
        // nothing allocates nothing.
        let mut scratch = self.scratch.borrow_mut();
        let (parent, queue) = &mut *scratch;
        parent.clear();
        parent.resize(self.names.len(), UNSEEN);
        parent[start as usize] = start;
        queue.clear();
        queue.push(start);
        let mut next_at = 0;
        while let Some(&class) = queue.get(next_at) {
            next_at += 1;
            if found(class) {
                let mut path = vec![class];
                let mut cursor = class;
                while cursor != start {
                    cursor = parent[cursor as usize];
                    path.push(cursor);
                }
                path.reverse();
                return Some(path);
            }
            let reach = |next: ClassId| {
                if parent[next as usize] == UNSEEN {
                    parent[next as usize] = class;
                    queue.push(next);
                }
            };
            if forwards {
                self.after[class as usize].keys().for_each(reach);
            } else {
                self.before[class as usize].keys().for_each(reach);
            }
        }
        None
    }

    /// The recorded dependencies along `path`, read in the order the classes appear in it.
    fn chain(&self, path: &[ClassId]) -> Vec<DependencyChain> {
        path.windows(2)
            .map(|pair| {
                let dependency =
                    self.after[pair[0] as usize].get(pair[1]).expect("a route follows dependencies");
                self.edges[dependency.edge as usize].chain(self)
            })
            .collect()
    }

    /// `check_irq_usage()` for a new dependency `prev -> next`: some class that leads to `prev`
    /// (or `prev` itself) used in irq context, and some class `next` leads to (or `next`) taken
    /// with that irq enabled.
    fn irq_usage_of_new_dependency(
        &self,
        prev: &HeldLock,
        next: &HeldLock,
        task: &str,
    ) -> Vec<LockdepReport> {
        let mut made = Vec::new();
        let classes = self.names.len();
        for irq in IrqContext::ALL {
            let i = irq.index();
            // No irq-safe class leads to `prev`, or `next` leads to no irq-unsafe one: both
            // searches could not find their pair.
            let closure = &self.closure;
            if closure.none_found(prev.class, false, closure.used_in[i], classes)
                || closure.none_found(next.class, true, closure.enabled[i], classes)
            {
                continue;
            }
            let Some(mut back) =
                self.search(prev.class, false, |c| self.usage[c as usize].used_in[i].is_some())
            else {
                continue;
            };
            let Some(forth) = self.search(next.class, true, |c| self.usage[c as usize].enabled[i].is_some())
            else {
                continue;
            };
            back.reverse();
            let (safe, unsafe_) = (back[0], *forth.last().expect("a path has an end"));
            made.push(LockdepReport::IrqSafeToUnsafe {
                irq,
                held: prev.acquisition(task),
                acquiring: next.acquisition(task),
                safe_usage: self.seen_of(self.usage[safe as usize].used_in[i]).expect("found by it"),
                unsafe_usage: self.seen_of(self.usage[unsafe_ as usize].enabled[i]).expect("found by it"),
                safe_chain: self.chain(&back),
                unsafe_chain: self.chain(&forth),
            });
        }
        made
    }

    /// The acquisition text of the record `seen` ([`Graph::seen`]), if there is one.
    fn seen_of(&self, seen: Option<SeenId>) -> Option<Acquisition> {
        seen.map(|at| self.seen[at as usize].acquisition())
    }

    /// This validation's record of `new` by `task` in [`Graph::seen`]: written at its first
    /// use (`this` holds it from then on), so a validation keeps one record however many usage
    /// bits it sets and dependencies it makes.
    fn record_seen(&mut self, this: &mut Option<SeenId>, new: &HeldLock, task: &Arc<str>) -> SeenId {
        *this.get_or_insert_with(|| {
            self.seen.push(Seen { lock: *new, task: task.clone() });
            (self.seen.len() - 1) as SeenId
        })
    }

    /// `mark_lock()` for every usage bit `new` sets on its class: records the first acquisition
    /// that set it (this validation's record, `this`) and returns the reports it causes
    /// (`valid_state()` and the inversion checks).
    fn mark_usage(
        &mut self,
        new: &HeldLock,
        task: &Arc<str>,
        this: &mut Option<SeenId>,
    ) -> Vec<LockdepReport> {
        let mut made = Vec::new();
        let class = new.class;
        for irq in IrqContext::ALL {
            let i = irq.index();
            if new.irq.used_in(irq) && self.usage[class as usize].used_in[i].is_none() {
                self.usage[class as usize].used_in[i] = Some(self.record_seen(this, new, task));
                self.closure.used_in[i] |= class_bit(class);
                made.extend(self.usage_conflicts(class, irq, true));
            }
            if new.irq.enabled(irq) && self.usage[class as usize].enabled[i].is_none() {
                self.usage[class as usize].enabled[i] = Some(self.record_seen(this, new, task));
                self.closure.enabled[i] |= class_bit(class);
                made.extend(self.usage_conflicts(class, irq, false));
            }
        }
        made
    }

    /// What a usage bit just set on `class` conflicts with: the opposite bit on the class itself
    /// ("inconsistent lock state"), else the opposite bit on a class the graph connects it to.
    fn usage_conflicts(&self, class: ClassId, irq: IrqContext, set_used_in: bool) -> Option<LockdepReport> {
        let i = irq.index();
        let usage = &self.usage[class as usize];
        if let (Some(in_irq), Some(enabled)) = (usage.used_in[i], usage.enabled[i]) {
            return Some(LockdepReport::InconsistentIrqState {
                class: self.names[class as usize].to_string(),
                irq,
                in_irq: self.seen[in_irq as usize].acquisition(),
                irqs_enabled: self.seen[enabled as usize].acquisition(),
                in_irq_first: !set_used_in,
            });
        }
        let wanted = if set_used_in { self.closure.enabled[i] } else { self.closure.used_in[i] };
        if self.closure.none_found(class, set_used_in, wanted, self.names.len()) {
            return None;
        }
        let path = if set_used_in {
            self.search(class, true, |c| self.usage[c as usize].enabled[i].is_some())?
        } else {
            let mut path = self.search(class, false, |c| self.usage[c as usize].used_in[i].is_some())?;
            path.reverse();
            path
        };
        let other = if set_used_in { *path.last().expect("end") } else { path[0] };
        let other_usage = self.seen_of(if set_used_in {
            self.usage[other as usize].enabled[i]
        } else {
            self.usage[other as usize].used_in[i]
        })?;
        // The text of the bit just set, built only now that there is a report to show it in.
        let changed = self.seen_of(if set_used_in { usage.used_in[i] } else { usage.enabled[i] })?;
        Some(LockdepReport::IrqLockInversion {
            irq,
            changed,
            forwards: set_used_in,
            other_usage,
            chain: self.chain(&path),
        })
    }

    /// Adds the dependency from every held lock to `new` (`check_prevs_add()`), reporting one
    /// that closes a cycle and, with `irq_tracking`, one that connects irq-safe to irq-unsafe.
    fn add_dependencies(
        &mut self,
        held: &[HeldLock],
        new: &HeldLock,
        (task, this): (&Arc<str>, &mut Option<SeenId>),
        irq_tracking: bool,
    ) -> Vec<LockdepReport> {
        let mut made = Vec::new();
        let mut logged: Option<u32> = None;
        let class = new.class;
        for (index, prev) in held.iter().enumerate() {
            if prev.class == class {
                continue;
            }
            // check_prev_add(): the cycle search comes first, for a dependency already present
            // too (made before as a readers' one, it may close a writer's cycle now). Without a
            // cycle in the graph, a present dependency cannot close one: no search, and its
            // kind is ORed in at once (`entry->dep |= calc_dep(prev, next)`), one lookup. Nor
            // can any dependency when the new lock's class leads nowhere near the held one
            // ([`Closure`]): the search would find no route, strong or not.
            let route = !self.closure.no_route(class, prev.class, self.names.len());
            if !self.cyclic || !route {
                if let Some(dep) = self.after[prev.class as usize].get_mut(class) {
                    dep.kinds |= dep_bit(prev, new);
                    continue;
                }
            }
            if route {
                if let Some(path) = self.strong_path(prev, new) {
                    made.push(self.circular(held, prev, new, task, &path));
                    // The closing edge is not added: the kernel turns lockdep off after its
                    // first report, and a strong cycle in the graph would hide later findings.
                    continue;
                }
            }
            if let Some(dep) = self.after[prev.class as usize].get_mut(class) {
                // Present, and searched because the graph may hold a cycle.
                dep.kinds |= dep_bit(prev, new);
                continue;
            }
            let held_at = *logged.get_or_insert_with(|| {
                self.held_log.extend_from_slice(held);
                (self.held_log.len() - held.len()) as u32
            });
            let acquired = self.record_seen(this, new, task);
            let edge = self.edges.len() as u32;
            self.edges.push(EdgeSeen { held: held_at, upto: index as u32 + 1, acquired });
            self.after[prev.class as usize].insert(class, Dependency { kinds: dep_bit(prev, new), edge });
            self.before[class as usize].insert(prev.class, ());
            self.closure.add_dependency(prev.class, class, self.names.len());
            if irq_tracking {
                made.extend(self.irq_usage_of_new_dependency(prev, new, task));
            }
        }
        made
    }

    /// The report of the cycle `prev -> new ->* prev`, `path` being the route from `new`'s
    /// class back to `prev`'s (`print_circular_bug()`).
    fn circular(
        &self,
        held: &[HeldLock],
        prev: &HeldLock,
        new: &HeldLock,
        task: &Arc<str>,
        path: &[ClassId],
    ) -> LockdepReport {
        let mut current_chain: Vec<Acquisition> = held.iter().map(|h| h.acquisition(task)).collect();
        current_chain.push(new.acquisition(task));
        LockdepReport::CircularDependency {
            held: prev.acquisition(task),
            acquiring: new.acquisition(task),
            current_chain,
            existing_chain: self.chain(path),
        }
    }

    /// `check_noncircular()`: the nearest strong route from `next`'s class back to `prev`'s, the
    /// classes on it, or `None`. A route is strong when no joint on it, the new dependency's
    /// two included, is a recursive read taken (-(*R)->) followed by a dependency made with that
    /// lock shared (-(S*)->): readers do not wait for readers. As the kernel's `__bfs()`, each
    /// step carries `only_xr` (every kind left on the way in ends in a recursive read), a
    /// dependency whose kinds are all S* is not followed after such a step, and the search
    /// starts with `only_xr` when `next` is a recursive read (`bfs_init_root()`). It ends at
    /// `prev`'s class if `prev` is held exclusive or the way in is not only -(*R)->
    /// (`hlock_conflict()`). One difference: the kernel marks a class seen when it first
    /// dequeues it, even by a route it then drops as not strong, so a strong route reaching the
    /// class later goes unseen; here a class is seen once per `only_xr` value, reached strongly,
    /// so every strong route is found (each a real deadlock).
    fn strong_path(&mut self, prev: &HeldLock, next: &HeldLock) -> Option<Vec<ClassId>> {
        let (seen, queue) = &mut self.cycle_scratch;
        seen.clear();
        seen.resize(self.names.len(), 0);
        queue.clear();
        queue.push(Step { class: next.class, parent: 0, made_as: 0, only_xr: read_state(next.mode) == 2 });
        let mut weak = false;
        let mut at = 0;
        while at < queue.len() {
            let index = at;
            at += 1;
            let mut step = queue[index];
            if index > 0 {
                let from = queue[step.parent];
                let made_as = step.made_as;
                let dep = if from.only_xr { made_as & !(DEP_SR | DEP_SN) } else { made_as };
                weak |= dep != made_as;
                if dep == 0 {
                    continue;
                }
                step.only_xr = dep & !(DEP_SR | DEP_ER) == 0;
                queue[index].only_xr = step.only_xr;
            }
            // Bit 2 is "seen with `only_xr` false", which covers a visit with it true (bit 1).
            let state = if step.only_xr { 1 } else { 2 };
            if seen[step.class as usize] & (state | 2) != 0 {
                continue;
            }
            seen[step.class as usize] |= state;
            if step.class == prev.class {
                if read_state(prev.mode) == 0 || !step.only_xr {
                    return Some(route(queue, index));
                }
                weak = true;
            }
            for (to, dep) in self.after[step.class as usize].iter() {
                queue.push(Step { class: to, parent: index, made_as: dep.kinds, only_xr: false });
            }
        }
        self.cyclic |= weak;
        None
    }

    fn report(&mut self, report: LockdepReport) -> Option<LockdepReport> {
        let mut classes = report.classes();
        if let LockdepReport::SleepInAtomic { what, .. } = &report {
            // One report per sleeping call and held set, not one per held set.
            classes.insert(0, what.clone());
        }
        let key = (report.kind().to_string(), classes);
        if !self.reported.insert(key) {
            return None;
        }
        self.reports.push(report.clone());
        Some(report)
    }
}

/// The classes from the cycle search's start to step `index`, following the steps' parents.
fn route(queue: &[Step], index: usize) -> Vec<ClassId> {
    let mut path = vec![queue[index].class];
    let mut cursor = index;
    while cursor != 0 {
        cursor = queue[cursor].parent;
        path.push(queue[cursor].class);
    }
    path.reverse();
    path
}

/// Whether `new` is a recursive read of a class this context already holds for reading (every
/// hold of its class is a recursive read).
fn nests_as_reader(held: &[HeldLock], new: &HeldLock) -> bool {
    new.mode == LockMode::ReadRecursive
        && held.iter().filter(|h| h.class == new.class).all(|h| h.mode == LockMode::ReadRecursive)
}

/// One lock validator: the class graph and the reports. A [`crate::Sim`] owns one, so tests that
/// run side by side in one process never see each other's lock orders.
pub struct Lockdep {
    graph: crate::sync::BookLock<Graph>,
    mode: ReportMode,
    enabled: bool,
    /// Whether irq usage bits are tracked (off only to measure what they cost): 1 or 0, a byte
    /// the memo's test widens with no test of its own (an `AtomicBool`'s load is one).
    irq_tracking: AtomicU8,
    /// This validator's identity for the per-thread chain cache ([`crate::chain_cache`]).
    id: u64,
    /// [`crate::chain_cache::validator_mix`] of `id`, which every acquisition's memo probe takes.
    chain_mix: u64,
    /// Reports made so far, readable without the graph's mutex (the harness asks after every
    /// operation).
    reports_made: AtomicUsize,
}

impl Lockdep {
    /// This validator's identity, as lock memos tag what they cache ([`ClassKey`]) and
    /// [`crate::Guarded`]'s shadow tags its class ids.
    pub(crate) fn id(&self) -> u64 {
        self.id
    }
}

/// The next [`Lockdep::id`]: unique in the process, so no cache entry outlives its validator.
static NEXT_LOCKDEP_ID: AtomicU64 = AtomicU64::new(1);

impl fmt::Debug for Lockdep {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Lockdep").field("mode", &self.mode).field("enabled", &self.enabled).finish()
    }
}

impl Lockdep {
    /// A validator that handles reports as `mode` says.
    pub fn new(mode: ReportMode) -> Lockdep {
        Lockdep {
            graph: crate::sync::BookLock::new(Graph::with_room()),
            mode,
            enabled: true,
            irq_tracking: AtomicU8::new(1),
            id: 0,
            chain_mix: 0,
            reports_made: AtomicUsize::new(0),
        }
        .with_next_id()
    }

    /// This validator given the next id in the process ([`Lockdep::id`]) and its mix.
    fn with_next_id(mut self) -> Lockdep {
        self.id = NEXT_LOCKDEP_ID.fetch_add(1, Ordering::Relaxed);
        self.chain_mix = crate::chain_cache::validator_mix(self.id);
        self
    }

    /// This validator made new again in place, for a world kept between a campaign's cases
    /// ([`crate::Sim`]'s reuse): a fresh id (so no lock memo or thread's chain table entry made
    /// under the old one is believed: [`crate::chain_cache`]) and its mix, the graph emptied
    /// keeping its vectors' room, no reports, reports handled as `mode` says. Behaves exactly
    /// as [`Lockdep::new`]`(mode)` (or [`Lockdep::disabled`], for a disabled one) would.
    pub(crate) fn reset(&mut self, mode: ReportMode) {
        let Lockdep { graph, mode: kept_mode, enabled, irq_tracking, id, chain_mix, reports_made } = self;
        graph.get_mut().reset();
        // A disabled validator's mode is always `Collect` ([`Lockdep::disabled`]).
        *kept_mode = if *enabled { mode } else { ReportMode::Collect };
        *irq_tracking.get_mut() = u8::from(*enabled);
        *reports_made.get_mut() = 0;
        *id = NEXT_LOCKDEP_ID.fetch_add(1, Ordering::Relaxed);
        *chain_mix = crate::chain_cache::validator_mix(*id);
    }

    /// A validator that checks nothing (for measuring the cost of the instrumentation).
    pub fn disabled() -> Lockdep {
        Lockdep {
            graph: crate::sync::BookLock::new(Graph::default()),
            mode: ReportMode::Collect,
            enabled: false,
            irq_tracking: AtomicU8::new(0),
            id: 0,
            chain_mix: 0,
            reports_made: AtomicUsize::new(0),
        }
        .with_next_id()
    }

    /// Whether checks run at all.
    pub fn is_enabled(&self) -> bool {
        self.enabled
    }

    /// Turns the irq usage bits (and the reports built on them) on or off. On by default; off
    /// only to measure their cost on a lock round trip.
    pub fn set_irq_tracking(&self, on: bool) {
        self.irq_tracking.store(u8::from(on), Ordering::Relaxed);
    }

    /// Reports `report` (a finding of a detector built on lockdep, such as the lockset detector)
    /// once per kind and subject, as lockdep's own are, and handles it as the mode says.
    pub(crate) fn report_external(&self, report: LockdepReport) {
        if !self.enabled {
            return;
        }
        let made: Vec<LockdepReport> = self.graph().report(report).into_iter().collect();
        self.deliver(made);
    }

    /// How reports are handled.
    pub fn mode(&self) -> ReportMode {
        self.mode
    }

    /// Every report made so far, in the order made.
    pub fn reports(&self) -> Vec<LockdepReport> {
        self.graph().reports.clone()
    }

    /// How many reports have been made (no copies).
    pub fn reports_count(&self) -> usize {
        self.reports_made.load(Ordering::Acquire)
    }

    /// How many distinct classes have been seen.
    pub fn classes_count(&self) -> usize {
        self.graph().names.len()
    }

    /// Turns [`Closure`]'s answers off, so every search runs: for the test that compares the
    /// reports made with and without them.
    #[cfg(test)]
    fn without_closure(self) -> Lockdep {
        self.graph().closure.off = true;
        self
    }

    /// How many acquisitions were validated against the graph (those the chain cache did not
    /// know clean), for the chain cache's tests.
    #[cfg(test)]
    pub(crate) fn validations_count(&self) -> u64 {
        self.graph().validations
    }

    /// The dependencies recorded so far, as `(from, to)` class names, ordered.
    pub fn dependencies(&self) -> Vec<(String, String)> {
        // Class by class, each one's successors in order: ordered by (from, to) ids.
        let graph = self.graph();
        let name = |class: ClassId| graph.names[class as usize].to_string();
        let pairs = graph
            .after
            .iter()
            .enumerate()
            .flat_map(|(from, successors)| successors.keys().map(move |to| (from as ClassId, to)));
        pairs.map(|(from, to)| (name(from), name(to))).collect()
    }

    fn graph(&self) -> crate::sync::BookGuard<'_, Graph> {
        self.graph.lock()
    }

    /// Counts `reports` and handles them as the mode says. Inlined for its test of an empty
    /// list (every clean validation's answer: a call of about 17 instructions each before);
    /// the rest is [`Lockdep::deliver_made`].
    #[inline]
    fn deliver(&self, reports: Vec<LockdepReport>) {
        if !reports.is_empty() {
            self.deliver_made(reports);
        }
    }

    /// [`Lockdep::deliver`] of a list with a report in it.
    #[cold]
    #[inline(never)]
    fn deliver_made(&self, reports: Vec<LockdepReport>) {
        self.reports_made.fetch_add(reports.len(), Ordering::Release);
        if self.mode == ReportMode::Panic {
            let text: Vec<String> = reports.iter().map(|r| r.to_string()).collect();
            panic!("lockdep:\n{}", text.join("\n"));
        }
    }

    /// The class id and chain key of an acquisition of the lock whose memo is `key`, when this
    /// validator is on and the chain was validated clean before, as the lock's memo or this
    /// thread's table knows ([`crate::chain_cache::known_clean`]): what
    /// [`Lockdep::check_acquire`] would fill in, with nothing to check. `Err`: the whole check
    /// is owed, with the class id when the memo or the table knew it.
    #[inline]
    /// `ask_memo`: whether to ask the lock's memo first (false for a caller that asked it
    /// already, [`Lockdep::known_by_memo`]: then this thread's table alone).
    pub(crate) fn known_clean(
        &self,
        key: &ClassKey,
        parent: u64,
        taken: crate::chain_cache::Taken,
        ask_memo: bool,
    ) -> Result<(ClassId, u64), Option<ClassId>> {
        if !self.enabled {
            return Err(None);
        }
        let irq_tracking = self.irq_tracking.load(Ordering::Relaxed);
        crate::chain_cache::known_clean(
            (self.id, self.chain_mix),
            key,
            parent,
            taken,
            (irq_tracking, ask_memo),
        )
    }

    /// [`Lockdep::known_clean`] from the lock's own memo alone (no call): `None` when this
    /// validator is off or the memo does not know the chain, which
    /// [`Lockdep::known_clean`] may then still find in this thread's table.
    #[inline]
    pub(crate) fn known_by_memo(
        &self,
        key: &ClassKey,
        parent: u64,
        taken: crate::chain_cache::Taken,
    ) -> Option<(ClassId, u64)> {
        if !self.enabled {
            return None;
        }
        let irq_tracking = self.irq_tracking.load(Ordering::Relaxed);
        crate::chain_cache::known_by_memo((self.id, self.chain_mix), key, parent, taken, irq_tracking)
    }

    /// Checks an acquisition `new` by context `task` holding `held`, before it blocks, and fills
    /// in its class id and chain key. `new.irq` is the interrupt state at the acquisition. `key`
    /// is the lock object's memo of its class; `class` its class id when [`Lockdep::known_clean`]
    /// knew it. For an acquisition that [`Lockdep::known_clean`] did not know clean: the chain
    /// cache was asked there, so this validates at once.
    pub(crate) fn check_acquire(
        &self,
        held: &[HeldLock],
        new: &mut HeldLock,
        key: &ClassKey,
        class: Option<ClassId>,
        task: &Arc<str>,
    ) {
        if !self.enabled {
            return;
        }
        let irq_tracking = self.irq_tracking.load(Ordering::Relaxed) != 0;
        debug_assert!(std::ptr::eq(key.name, new.name), "an acquisition's memo is its class's");
        let made = self.validate(held, new, (class, key.name_hash), task, irq_tracking);
        new.chain = crate::chain_cache::chain_key(held.last().map_or(0, |h| h.chain), new.class, new.mode);
        let clean = made.is_empty();
        crate::chain_cache::remember(self.id, held, new, key, irq_tracking, (class.is_some(), clean));
        self.deliver(made);
    }

    /// The whole check of [`Lockdep::check_acquire`], under the graph's mutex: the reports made.
    /// A chain validated without one is remembered by the chain cache and not validated again,
    /// as the kernel's lookup_chain_cache() skips validate_chain(): the chain's key records each
    /// held lock's class and mode (so its read state), and a dependency the chain let pass (a
    /// readers' cycle) is in the graph, where a later writer's dependency meets it.
    fn validate(
        &self,
        held: &[HeldLock],
        new: &mut HeldLock,
        (class, name_hash): (Option<ClassId>, u64),
        task: &Arc<str>,
        irq_tracking: bool,
    ) -> Vec<LockdepReport> {
        let mut made = Vec::new();
        let mut graph = self.graph();
        graph.validations += 1;
        // A class id the chain cache knew is this graph's: it was given here.
        new.class = class.unwrap_or_else(|| graph.class_id(new.name, name_hash));
        let new = &*new;
        let class = new.class;
        // Recursion: the same class already held by this context. A trylock cannot deadlock
        // on itself, so lockdep lets it pass, as the kernel does.
        // A recursive read may nest inside a read hold of its class (lockdep's
        // check_deadlock() returning 2 for read == 2 over a reader).
        if !new.trylock && !nests_as_reader(held, new) {
            if let Some(first) = held.iter().find(|h| h.class == class) {
                let report = LockdepReport::RecursiveLocking {
                    held: first.acquisition(task),
                    acquiring: new.acquisition(task),
                };
                made.extend(graph.report(report));
            }
        }
        // Irq usage states of this class (the kernel's mark_irqflags()).
        // This validation's record, shared by what it keeps ([`Graph::record_seen`]).
        let mut this = None;
        if irq_tracking {
            for report in graph.mark_usage(new, task, &mut this) {
                made.extend(graph.report(report));
            }
        }
        // Dependencies from every held lock to this one. Trylocks add none of their own.
        if !new.trylock {
            for report in graph.add_dependencies(held, new, (task, &mut this), irq_tracking) {
                made.extend(graph.report(report));
            }
        }
        made
    }

    /// Checks a call that may sleep (`might_sleep()` and its callers).
    pub(crate) fn check_might_sleep(&self, report: impl FnOnce() -> LockdepReport) {
        if self.enabled {
            self.report_external(report());
        }
    }
}

/// Formats a `#[track_caller]` location as `file:line`.
pub(crate) fn site(location: &'static Location<'static>) -> String {
    format!("{}:{}", location.file(), location.line())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Sim, SimConfig, SpinLock};

    fn collecting() -> Sim {
        Sim::new(SimConfig::new(1).lockdep(ReportMode::Collect))
    }

    /// A tiny model of KERNEL_FACTS T12 (2.6.19-rc): a timer softirq takes `siglock`
    /// (it_real_fn -> lock_task_sighand); delayacct_end() takes `delays->lock` with plain
    /// spin_lock in process context; the exit path holds siglock while taking delays->lock.
    fn t12(sim: &Sim, delays_irqsave: bool) {
        let siglock = SpinLock::new("sighand->siglock", ());
        let delays = SpinLock::new("delays->lock", 0u64);
        let (timer, task, exit) = (sim.cx("timer", 0), sim.cx("task", 1), sim.cx("exit", 1));
        timer.softirq(|cx| drop(siglock.lock_irqsave(cx)));
        if delays_irqsave {
            *delays.lock_irqsave(&task) += 1;
        } else {
            *delays.lock(&task) += 1;
        }
        let _siglock = siglock.lock_irqsave(&exit);
        *delays.lock_irqsave(&exit) += 1;
    }

    #[test]
    fn siglock_then_delays_lock_is_a_soft_safe_to_soft_unsafe_order() {
        let sim = collecting();
        t12(&sim, false);
        let reports = sim.lockdep().reports();
        assert_eq!(reports.len(), 1, "{reports:#?}");
        let LockdepReport::IrqSafeToUnsafe { irq, held, acquiring, safe_usage, unsafe_usage, .. } =
            &reports[0]
        else {
            panic!("expected soft-safe -> soft-unsafe, got {:#?}", reports[0]);
        };
        assert_eq!(*irq, IrqContext::Soft);
        assert_eq!((held.class.as_str(), acquiring.class.as_str()), ("sighand->siglock", "delays->lock"));
        assert_eq!((safe_usage.task.as_str(), safe_usage.in_softirq), ("timer", true));
        assert_eq!((unsafe_usage.task.as_str(), unsafe_usage.softirqs_enabled), ("task", true));
        let text = reports[0].to_string();
        assert!(text.contains("SOFTIRQ-safe -> SOFTIRQ-unsafe lock order detected"), "{text}");
        assert!(text.contains("local_bh_disable();") && text.contains("<Interrupt>"), "{text}");
    }

    #[test]
    fn the_fix_taking_delays_lock_irqsave_is_quiet() {
        // "lockdep: fix delayacct locking bug": every delays->lock acquisition is irqsave.
        let sim = collecting();
        t12(&sim, true);
        assert!(sim.lockdep().reports().is_empty(), "{:#?}", sim.lockdep().reports());
    }

    #[test]
    fn the_order_found_before_the_usage_is_an_irq_lock_inversion() {
        // The dependency first, then delays->lock taken with softirqs on: the same bug, found
        // when the usage bit is set (check_usage_backwards).
        let sim = collecting();
        let siglock = SpinLock::new("sighand->siglock", ());
        let delays = SpinLock::new("delays->lock", ());
        let (timer, task) = (sim.cx("timer", 0), sim.cx("task", 1));
        timer.softirq(|cx| drop(siglock.lock_irqsave(cx)));
        {
            let _s = siglock.lock_irqsave(&task);
            drop(delays.lock_irqsave(&task));
        }
        assert!(sim.lockdep().reports().is_empty());
        drop(delays.lock(&task));
        let reports = sim.lockdep().reports();
        assert_eq!(reports.len(), 1, "{reports:#?}");
        assert!(
            matches!(&reports[0], LockdepReport::IrqLockInversion { irq: IrqContext::Soft, forwards: false, chain, .. }
                if chain.len() == 1 && chain[0].from == "sighand->siglock"),
            "{reports:#?}"
        );
        assert!(reports[0].to_string().contains("SOFTIRQ-safe lock in the past"), "{}", reports[0]);
    }

    #[test]
    fn a_class_taken_in_softirq_and_with_softirqs_on_is_inconsistent() {
        let sim = collecting();
        let lock = SpinLock::new("timer_lock", ());
        let cx = sim.cx("t", 0);
        drop(lock.lock(&cx));
        drop(lock.lock_bh(&cx));
        assert!(sim.lockdep().reports().is_empty(), "process use alone is fine");
        cx.softirq(|cx| drop(lock.lock(cx)));
        let reports = sim.lockdep().reports();
        assert_eq!(reports.len(), 1, "{reports:#?}");
        let text = reports[0].to_string();
        assert!(text.contains("inconsistent {SOFTIRQ-ON-W} -> {IN-SOFTIRQ-W} usage."), "{text}");
        assert!(text.contains("[HC0[0]:SC1[1]:HE1:SE0]"), "the softirq context's flags: {text}");
    }

    #[test]
    fn spin_lock_bh_in_process_and_a_softirq_user_are_consistent() {
        let sim = collecting();
        let lock = SpinLock::new("timer_lock", ());
        let cx = sim.cx("t", 0);
        cx.softirq(|cx| drop(lock.lock(cx)));
        {
            let _held = lock.lock_bh(&cx);
            assert!(cx.in_softirq() && !cx.in_serving_softirq());
        }
        assert!(cx.softirqs_enabled());
        assert!(sim.lockdep().reports().is_empty(), "{:#?}", sim.lockdep().reports());
    }

    #[test]
    fn a_chain_through_a_middle_lock_names_both_dependency_chains() {
        // safe (hardirq) -> middle -> next -> unsafe: the new dependency middle -> next connects
        // them, and the report prints safe -> middle and next -> unsafe.
        let sim = collecting();
        let [safe, middle, next, unsafe_] =
            ["safe", "middle", "next", "unsafe"].map(|c| SpinLock::new(c, ()));
        let cx = sim.cx("t", 0);
        cx.hardirq(|cx| drop(safe.lock(cx)));
        drop(unsafe_.lock(&cx));
        let flags = cx.local_irq_save();
        {
            let (_s, _m) = (safe.lock(&cx), middle.lock(&cx));
        }
        {
            let (_n, _u) = (next.lock(&cx), unsafe_.lock(&cx));
        }
        assert!(sim.lockdep().reports().is_empty(), "{:#?}", sim.lockdep().reports());
        {
            let (_m, _n) = (middle.lock(&cx), next.lock(&cx));
        }
        cx.local_irq_restore(flags);
        let reports = sim.lockdep().reports();
        let [LockdepReport::IrqSafeToUnsafe { irq: IrqContext::Hard, safe_chain, unsafe_chain, .. }] =
            &reports[..]
        else {
            panic!("{reports:#?}");
        };
        assert_eq!((safe_chain[0].from.as_str(), safe_chain[0].to.as_str()), ("safe", "middle"));
        assert_eq!((unsafe_chain[0].from.as_str(), unsafe_chain[0].to.as_str()), ("next", "unsafe"));
        assert!(reports[0].to_string().contains("HARDIRQ-safe -> HARDIRQ-unsafe"));
    }

    /// Eight modes, as [`closure_answers_change_no_report`] draws them.
    const MODES: [LockMode; 8] = LockMode::ALL;

    /// Validates `steps` random acquisitions against `lockdep`, straight through
    /// [`Lockdep::validate`] (no chain cache: every one is validated): two tasks, each holding a
    /// stack of up to four locks of `names`' classes, each taken in a random mode, sometimes as
    /// a trylock, in a random interrupt state; a step takes a lock or releases a random held
    /// one. Returns the class id each acquisition was given.
    fn random_validations(
        lockdep: &Lockdep,
        seed: u64,
        names: &[&'static str],
        steps: usize,
    ) -> Vec<ClassId> {
        let mut rng = crate::gen::OpRng::for_case(seed);
        let mut next = move |bound: u64| rng.below(bound);
        let tasks: [Arc<str>; 2] = [Arc::from("a"), Arc::from("b")];
        let mut held: [Vec<HeldLock>; 2] = [Vec::new(), Vec::new()];
        let mut classes = Vec::new();
        for _ in 0..steps {
            let t = next(2) as usize;
            if !held[t].is_empty() && (held[t].len() == 4 || next(3) == 0) {
                let at = next(held[t].len() as u64) as usize;
                held[t].remove(at);
                continue;
            }
            let bits = next(16);
            let mut new = HeldLock {
                token: 0,
                class: 0,
                name: names[next(names.len() as u64) as usize],
                mode: MODES[next(MODES.len() as u64) as usize],
                trylock: next(8) == 0,
                site: Location::caller(),
                cpu: t as u32,
                irq: IrqState::new(bits & 1 != 0, bits & 2 != 0, bits & 4 != 0, bits & 8 != 0),
                chain: 0,
            };
            let name_hash = crate::trace::const_name_hash(new.name);
            lockdep.validate(&held[t], &mut new, (None, name_hash), &tasks[t], true);
            classes.push(new.class);
            held[t].push(new);
        }
        classes
    }

    /// The closure's answers change no report: over many random lock sequences (every mode,
    /// read-recursive ones included, trylocks, every interrupt state), a validator that skips
    /// the searches the closure rules out and one that runs every search give the same class
    /// ids, the same dependencies and the same reports, text included; graphs past
    /// [`CLOSURE_CLASSES`] classes too, where the closure never answers. The run reaches the
    /// interesting reports (cycles, irq-safe -> irq-unsafe orders, inversions) and skips
    /// searches.
    #[test]
    fn closure_answers_change_no_report() {
        let few: Vec<&'static str> = ["a", "b", "c", "d", "e", "f"].to_vec();
        let many: Vec<&'static str> =
            (0..CLOSURE_CLASSES + 6).map(|i| &*Box::leak(format!("class-{i}").into_boxed_str())).collect();
        let mut kinds = BTreeSet::new();
        let mut skipped = 0;
        for seed in 0..400u64 {
            let names = if seed % 20 == 19 { &many } else { &few };
            let steps = if names.len() > CLOSURE_CLASSES { 600 } else { 60 };
            let fast = Lockdep::new(ReportMode::Collect);
            let walked = Lockdep::new(ReportMode::Collect).without_closure();
            let classes_fast = random_validations(&fast, seed, names, steps);
            let classes_walked = random_validations(&walked, seed, names, steps);
            assert_eq!(classes_fast, classes_walked, "seed {seed}: class ids");
            assert_eq!(fast.dependencies(), walked.dependencies(), "seed {seed}: dependencies");
            let (reports_fast, reports_walked) = (fast.reports(), walked.reports());
            assert_eq!(reports_fast, reports_walked, "seed {seed}: reports");
            let text =
                |reports: &[LockdepReport]| reports.iter().map(ToString::to_string).collect::<Vec<_>>();
            assert_eq!(text(&reports_fast), text(&reports_walked), "seed {seed}: report text");
            kinds.extend(reports_fast.iter().map(LockdepReport::kind));
            skipped += fast.graph().closure.skipped.get();
            assert_eq!(walked.graph().closure.skipped.get(), 0, "seed {seed}: the walked validator skipped");
        }
        for kind in ["circular-locking", "irq-safe-to-unsafe", "irq-lock-inversion", "inconsistent-irq-state"]
        {
            assert!(kinds.contains(kind), "no {kind} report in the runs: {kinds:?}");
        }
        assert!(skipped > 1000, "the closure answered only {skipped} searches");
    }

    /// A used validator reset (`Lockdep::reset`) validates as a new one: over random lock
    /// sequences (the closure's test's, past [`CLOSURE_CLASSES`] classes too), one validator
    /// used for another sequence first (with its closure off and irq tracking off, which the
    /// reset turns back on) and then reset gives the class ids, dependencies, reports (text
    /// included), counts and validations a new validator gives, under a new id each time.
    #[test]
    fn a_reset_validator_validates_as_a_new_one() {
        let few: Vec<&'static str> = ["a", "b", "c", "d", "e", "f"].to_vec();
        let many: Vec<&'static str> =
            (0..CLOSURE_CLASSES + 6).map(|i| &*Box::leak(format!("class-{i}").into_boxed_str())).collect();
        let mut kept = Lockdep::new(ReportMode::Collect);
        let mut reports_seen = 0;
        for seed in 0..200u64 {
            let names = if seed % 20 == 19 { &many } else { &few };
            let steps = if names.len() > CLOSURE_CLASSES { 600 } else { 60 };
            kept.graph().closure.off = seed % 3 == 0;
            kept.set_irq_tracking(seed % 5 != 0);
            random_validations(&kept, seed + 1000, names, steps);
            let id = kept.id();
            kept.reset(ReportMode::Collect);
            assert!(kept.id() > id, "seed {seed}: the reset validator's id is new");
            assert_eq!(kept.chain_mix, crate::chain_cache::validator_mix(kept.id()));
            let new = Lockdep::new(ReportMode::Collect);
            let summary = |lockdep: &Lockdep, classes: Vec<ClassId>| {
                let reports = lockdep.reports();
                let text: Vec<String> = reports.iter().map(ToString::to_string).collect();
                let counts = (lockdep.classes_count(), lockdep.reports_count(), lockdep.validations_count());
                (classes, lockdep.dependencies(), reports, text, counts, lockdep.graph().cyclic)
            };
            let classes_kept = random_validations(&kept, seed, names, steps);
            let classes_new = random_validations(&new, seed, names, steps);
            let (kept_seen, new_seen) = (summary(&kept, classes_kept), summary(&new, classes_new));
            assert_eq!(kept_seen, new_seen, "seed {seed}");
            assert_eq!(kept.graph().closure.skipped.get(), new.graph().closure.skipped.get(), "seed {seed}");
            reports_seen += new_seen.2.len();
        }
        assert!(reports_seen > 100, "the runs made only {reports_seen} reports");
    }

    /// A world's validator reset under locks that keep their memos (a lock's class and chain,
    /// the thread's chain table) finds what a new world's finds: T12's report and every
    /// validation again, as the reset gave it a new id.
    #[test]
    fn a_reset_validator_believes_no_memo_of_the_old_one() {
        let siglock = SpinLock::new("sighand->siglock", ());
        let delays = SpinLock::new("delays->lock", 0u64);
        let run = |sim: &Sim| {
            let (timer, task, exit) = (sim.cx("timer", 0), sim.cx("task", 1), sim.cx("exit", 1));
            timer.softirq(|cx| drop(siglock.lock_irqsave(cx)));
            *delays.lock(&task) += 1;
            let _siglock = siglock.lock_irqsave(&exit);
            *delays.lock_irqsave(&exit) += 1;
        };
        let seen = |sim: &Sim| {
            let lockdep = sim.lockdep();
            (lockdep.reports(), lockdep.dependencies(), lockdep.validations_count())
        };
        let first = collecting();
        run(&first);
        let mut kept = collecting();
        run(&kept);
        assert_eq!(seen(&kept), seen(&first));
        for _ in 0..3 {
            std::sync::Arc::get_mut(&mut kept.world)
                .expect("no context left")
                .lockdep
                .reset(ReportMode::Collect);
            run(&kept);
            assert_eq!(seen(&kept), seen(&first));
        }
        assert_eq!(seen(&first).0.len(), 1, "T12's report: {:#?}", seen(&first).0);
    }

    #[test]
    fn without_irq_tracking_the_witness_goes_unreported() {
        // The switch the benchmark uses; also proves the reports above come from the tracking.
        let sim = collecting();
        sim.lockdep().set_irq_tracking(false);
        t12(&sim, false);
        assert!(sim.lockdep().reports().is_empty());
    }

    #[test]
    fn interrupt_handlers_are_traced_as_they_enter_and_leave() {
        let sim = Sim::new(SimConfig::new(1).trace(crate::trace::TraceMode::Full));
        let lock = SpinLock::new("timer_lock", ());
        let cx = sim.cx("t", 0);
        cx.softirq(|cx| cx.hardirq(|cx| drop(lock.lock_irqsave(cx))));
        let text = crate::trace::render_text(&sim.trace().events(), &sim.trace().task_names(), 60);
        let expected = [
            "<softirq>",
            "<hardirq>",
            "lock_irq(timer_lock)",
            "unlock(timer_lock)",
            "</hardirq>",
            "</softirq>",
        ];
        let mut rest = text.as_str();
        for event in expected {
            let at = rest.find(event).unwrap_or_else(|| panic!("{event} missing or out of order in\n{text}"));
            rest = &rest[at + event.len()..];
        }
    }

    #[test]
    #[should_panic(expected = "a softirq cannot run here")]
    fn a_softirq_cannot_be_delivered_with_softirqs_disabled() {
        let sim = collecting();
        let cx = sim.cx("t", 0);
        cx.local_bh_disable();
        cx.softirq(|_| ());
    }

    #[test]
    fn sleeping_in_a_softirq_is_reported() {
        let sim = collecting();
        let cx = sim.cx("t", 0);
        cx.softirq(|cx| cx.might_sleep("msleep"));
        let reports = sim.lockdep().reports();
        assert!(
            matches!(&reports[..], [LockdepReport::SleepInAtomic { in_softirq: true, .. }]),
            "{reports:#?}"
        );
    }
}
