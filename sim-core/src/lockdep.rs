//! Lockdep: the kernel's lock validator (kernel/locking/lockdep.c), reduced to the four reports
//! ksim needs and kept as values a test can assert on.
//!
//! - a new dependency that closes a cycle in the class-order graph ("possible circular locking
//!   dependency"), with both acquisition chains and the two-CPU unsafe-scenario table, whether or
//!   not this run deadlocked;
//! - recursive acquisition of a class the context already holds ("possible recursive locking");
//! - a sleeping call (mutex, rwsem, wait, sleeping allocation) while a spinlock is held or irqs
//!   are off ("sleeping function called from invalid context", as `might_sleep()` says);
//! - a class taken in hard-irq context and also with irqs enabled in process context
//!   ("inconsistent lock state"), and a dependency from an irq-safe to an irq-unsafe class.
//!
//! Left out: softirq states, read-recursive rwlock_t semantics, lock subclasses beyond one level,
//! chain hashing and the 48-bit class-key machinery. The bookkeeping here is instrumentation:
//! it uses `std::sync::Mutex`, never the loom or shuttle facade, so it adds no interleavings.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::fmt::{self, Write as _};
use std::panic::Location;
use std::sync::Mutex as StdMutex;

use serde::{Deserialize, Serialize};

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
}

impl LockMode {
    /// Whether a context holding a lock taken this way is atomic (may not sleep).
    pub fn is_atomic(self) -> bool {
        matches!(self, LockMode::Spin | LockMode::SpinIrq)
    }

    fn verb(self) -> &'static str {
        match self {
            LockMode::Spin | LockMode::SpinIrq => "lock",
            LockMode::Mutex => "lock",
            LockMode::Read => "down_read",
            LockMode::Write => "down_write",
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
        /// Locks held at the call.
        held: Vec<Acquisition>,
    },
    /// A class used in hard-irq context and also taken with irqs enabled.
    InconsistentIrqState {
        /// The class.
        class: String,
        /// An acquisition in irq context.
        in_irq: Acquisition,
        /// An acquisition in process context with irqs enabled.
        irqs_enabled: Acquisition,
    },
    /// A dependency from an irq-safe class to an irq-unsafe one: the irq-unsafe lock can be held
    /// by one CPU while an interrupt on another waits for it inside the irq-safe one.
    IrqSafeToUnsafe {
        /// The irq-safe class, held.
        safe: Acquisition,
        /// The irq-unsafe class, being taken.
        unsafe_: Acquisition,
        /// Where the unsafe class was taken with irqs enabled.
        unsafe_usage: Acquisition,
    },
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
            LockdepReport::InconsistentIrqState { class, .. } => vec![class.clone()],
            LockdepReport::IrqSafeToUnsafe { safe, unsafe_, .. } => {
                vec![safe.class.clone(), unsafe_.class.clone()]
            }
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
            LockdepReport::IrqSafeToUnsafe { safe, unsafe_, .. } => {
                let _ = writeln!(out, " Possible interrupt unsafe locking scenario:\n");
                let _ = writeln!(out, "       CPU0                    CPU1");
                let _ = writeln!(out, "       ----                    ----");
                let _ = writeln!(out, "  lock({});", unsafe_.class);
                let _ = writeln!(out, "                               local_irq_disable();");
                let _ = writeln!(out, "                               lock({});", safe.class);
                let _ = writeln!(out, "                               lock({});", unsafe_.class);
                let _ = writeln!(out, "  <Interrupt>");
                let _ = writeln!(out, "    lock({});", safe.class);
                let _ = writeln!(out, "\n *** DEADLOCK ***");
            }
            LockdepReport::SleepInAtomic { .. } => {}
        }
        out
    }
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
                for link in existing_chain {
                    writeln!(f, "-> {} then {}, first seen with:", link.from, link.to)?;
                    write_chain(f, &link.held)?;
                    writeln!(f, "     then {}", link.acquired)?;
                }
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
                held,
            } => {
                writeln!(f, "BUG: sleeping function called from invalid context at {site}")?;
                writeln!(
                    f,
                    "{what}: in_atomic(): {}, irqs_disabled(): {}, in_irq(): {}, task: {task}, cpu: {cpu}",
                    u32::from(*preempt_count > 0),
                    u32::from(*irqs_disabled),
                    u32::from(*in_irq)
                )?;
                writeln!(f, "preempt_count: {preempt_count}; locks held: {}", held.len())?;
                write_chain(f, held)
            }
            LockdepReport::InconsistentIrqState { class, in_irq, irqs_enabled } => {
                writeln!(f, "WARNING: inconsistent lock state")?;
                writeln!(f, "inconsistent {{IN-HARDIRQ-W}} -> {{HARDIRQ-ON-W}} usage of {class}.")?;
                writeln!(f, "{{IN-HARDIRQ-W}} state was registered at:\n  {in_irq}")?;
                writeln!(f, "{{HARDIRQ-ON-W}} state was registered at:\n  {irqs_enabled}\n")?;
                write!(f, "{}", self.scenario())
            }
            LockdepReport::IrqSafeToUnsafe { safe, unsafe_, unsafe_usage } => {
                writeln!(f, "WARNING: HARDIRQ-safe -> HARDIRQ-unsafe lock order detected")?;
                writeln!(f, "{} is trying to acquire:\n  {unsafe_}", unsafe_.task)?;
                writeln!(f, "while holding the HARDIRQ-safe lock:\n  {safe}")?;
                writeln!(f, "the HARDIRQ-unsafe lock was taken with irqs enabled at:\n  {unsafe_usage}\n")?;
                write!(f, "{}", self.scenario())
            }
        }
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
    pub(crate) in_irq: bool,
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
            in_irq: self.in_irq,
        }
    }
}

pub(crate) type ClassId = u32;

#[derive(Default)]
struct ClassUsage {
    in_irq: Option<Acquisition>,
    irqs_enabled: Option<Acquisition>,
}

#[derive(Default)]
struct Graph {
    ids: BTreeMap<&'static str, ClassId>,
    names: Vec<&'static str>,
    usage: Vec<ClassUsage>,
    /// Dependencies `from -> to`, each with the chain that first created it.
    edges: BTreeMap<(ClassId, ClassId), DependencyChain>,
    /// Successors of each class, ordered, so searches are deterministic.
    after: Vec<BTreeSet<ClassId>>,
    reports: Vec<LockdepReport>,
    /// Keys of reports already made, so one problem is reported once.
    reported: BTreeSet<(String, Vec<String>)>,
}

impl Graph {
    fn class_id(&mut self, name: &'static str) -> ClassId {
        if let Some(&id) = self.ids.get(name) {
            return id;
        }
        let id = self.names.len() as ClassId;
        self.ids.insert(name, id);
        self.names.push(name);
        self.usage.push(ClassUsage::default());
        self.after.push(BTreeSet::new());
        id
    }

    /// Breadth-first search for a path `from ->* to`; returns the classes on it, both ends included.
    fn path(&self, from: ClassId, to: ClassId) -> Option<Vec<ClassId>> {
        let mut parent: BTreeMap<ClassId, ClassId> = BTreeMap::new();
        let mut queue = VecDeque::from([from]);
        let mut seen = BTreeSet::from([from]);
        while let Some(class) = queue.pop_front() {
            if class == to {
                let mut path = vec![to];
                let mut cursor = to;
                while cursor != from {
                    cursor = parent[&cursor];
                    path.push(cursor);
                }
                path.reverse();
                return Some(path);
            }
            for &next in &self.after[class as usize] {
                if seen.insert(next) {
                    parent.insert(next, class);
                    queue.push_back(next);
                }
            }
        }
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

/// One lock validator: the class graph and the reports. A [`crate::Sim`] owns one, so tests that
/// run side by side in one process never see each other's lock orders.
pub struct Lockdep {
    graph: StdMutex<Graph>,
    mode: ReportMode,
    enabled: bool,
}

impl fmt::Debug for Lockdep {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Lockdep").field("mode", &self.mode).field("enabled", &self.enabled).finish()
    }
}

impl Lockdep {
    /// A validator that handles reports as `mode` says.
    pub fn new(mode: ReportMode) -> Lockdep {
        Lockdep { graph: StdMutex::new(Graph::default()), mode, enabled: true }
    }

    /// A validator that checks nothing (for measuring the cost of the instrumentation).
    pub fn disabled() -> Lockdep {
        Lockdep { graph: StdMutex::new(Graph::default()), mode: ReportMode::Collect, enabled: false }
    }

    /// Whether checks run at all.
    pub fn is_enabled(&self) -> bool {
        self.enabled
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
        self.graph().reports.len()
    }

    /// How many distinct classes have been seen.
    pub fn classes_count(&self) -> usize {
        self.graph().names.len()
    }

    /// The dependencies recorded so far, as `(from, to)` class names, ordered.
    pub fn dependencies(&self) -> Vec<(String, String)> {
        let graph = self.graph();
        graph
            .edges
            .keys()
            .map(|&(from, to)| (graph.names[from as usize].to_string(), graph.names[to as usize].to_string()))
            .collect()
    }

    fn graph(&self) -> std::sync::MutexGuard<'_, Graph> {
        self.graph.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn deliver(&self, reports: Vec<LockdepReport>) {
        if reports.is_empty() {
            return;
        }
        if self.mode == ReportMode::Panic {
            let text: Vec<String> = reports.iter().map(|r| r.to_string()).collect();
            panic!("lockdep:\n{}", text.join("\n"));
        }
    }

    /// Checks an acquisition `new` by context `task` holding `held`, before it blocks, and fills
    /// in its class id. `irqs_enabled` is the irq state at the acquisition.
    pub(crate) fn check_acquire(
        &self,
        held: &[HeldLock],
        new: &mut HeldLock,
        task: &str,
        irqs_enabled: bool,
    ) {
        if !self.enabled {
            return;
        }
        let chain_of =
            |upto: usize| -> Vec<Acquisition> { held[..upto].iter().map(|h| h.acquisition(task)).collect() };
        let mut made = Vec::new();
        {
            let mut graph = self.graph();
            new.class = graph.class_id(new.name);
            let new = &*new;
            let class = new.class;
            // Recursion: the same class already held by this context. A trylock cannot deadlock
            // on itself, so lockdep lets it pass, as the kernel does.
            if !new.trylock {
                if let Some(first) = held.iter().find(|h| h.class == class) {
                    let report = LockdepReport::RecursiveLocking {
                        held: first.acquisition(task),
                        acquiring: new.acquisition(task),
                    };
                    made.extend(graph.report(report));
                }
            }
            // Irq usage states of this class.
            let usage = &mut graph.usage[class as usize];
            let mut changed = false;
            if new.in_irq && usage.in_irq.is_none() {
                usage.in_irq = Some(new.acquisition(task));
                changed = true;
            }
            if !new.in_irq && irqs_enabled && usage.irqs_enabled.is_none() {
                usage.irqs_enabled = Some(new.acquisition(task));
                changed = true;
            }
            if changed {
                if let (Some(in_irq), Some(enabled)) = (&usage.in_irq, &usage.irqs_enabled) {
                    let report = LockdepReport::InconsistentIrqState {
                        class: new.name.to_string(),
                        in_irq: in_irq.clone(),
                        irqs_enabled: enabled.clone(),
                    };
                    made.extend(graph.report(report));
                }
            }
            // Dependencies from every held lock to this one. Trylocks add none of their own.
            if !new.trylock {
                for (index, prev) in held.iter().enumerate() {
                    if prev.class == class {
                        continue;
                    }
                    let edge = (prev.class, class);
                    if graph.edges.contains_key(&edge) {
                        continue;
                    }
                    if let Some(path) = graph.path(class, prev.class) {
                        let existing_chain =
                            path.windows(2).map(|pair| graph.edges[&(pair[0], pair[1])].clone()).collect();
                        let mut current_chain = chain_of(held.len());
                        current_chain.push(new.acquisition(task));
                        let report = LockdepReport::CircularDependency {
                            held: prev.acquisition(task),
                            acquiring: new.acquisition(task),
                            current_chain,
                            existing_chain,
                        };
                        made.extend(graph.report(report));
                        // The closing edge is not added: the kernel turns lockdep off after its
                        // first report, and a cycle in the graph would hide later findings.
                        continue;
                    }
                    let chain = DependencyChain {
                        from: prev.name.to_string(),
                        to: new.name.to_string(),
                        held: chain_of(index + 1),
                        acquired: new.acquisition(task),
                    };
                    graph.edges.insert(edge, chain);
                    graph.after[prev.class as usize].insert(class);
                    // An irq-safe lock held while taking one that is ever taken with irqs on.
                    let prev_usage = &graph.usage[prev.class as usize];
                    let next_usage = &graph.usage[class as usize];
                    if let (Some(_), Some(unsafe_usage)) = (&prev_usage.in_irq, &next_usage.irqs_enabled) {
                        let report = LockdepReport::IrqSafeToUnsafe {
                            safe: prev.acquisition(task),
                            unsafe_: new.acquisition(task),
                            unsafe_usage: unsafe_usage.clone(),
                        };
                        made.extend(graph.report(report));
                    }
                }
            }
        }
        self.deliver(made);
    }

    /// Checks a call that may sleep (`might_sleep()` and its callers).
    pub(crate) fn check_might_sleep(&self, report: impl FnOnce() -> LockdepReport) {
        if !self.enabled {
            return;
        }
        let made: Vec<LockdepReport> = self.graph().report(report()).into_iter().collect();
        self.deliver(made);
    }
}

/// Formats a `#[track_caller]` location as `file:line`.
pub(crate) fn site(location: &'static Location<'static>) -> String {
    format!("{}:{}", location.file(), location.line())
}
