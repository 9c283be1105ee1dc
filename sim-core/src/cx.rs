//! `Cx`: the execution context a kernel function runs in: the current task, the CPU, preemption
//! and irq state, and the locks held (lockdep's per-task `held_locks`).
//!
//! Kernel code reaches these through `current`, `smp_processor_id()` and per-CPU state; ksim
//! passes them explicitly (`fn exit(&self, cx: &Cx, ...)`) so that the same model code runs
//! unchanged in one thread (the op-level simulation) or many (loom, shuttle). A `Cx` belongs to one
//! thread: it is `Send` but not `Sync`.

use std::cell::{Cell, RefCell};
use std::panic::Location;
use std::sync::{Arc, Mutex as StdMutex, PoisonError};

use crate::chain_cache::ClassKey;
use crate::lockdep::{Acquisition, ClassId, HeldLock, IrqState, LockMode, LockdepReport};
use crate::percpu::CpuId;
use crate::sim::Sim;
use crate::trace::{CallName, EventKind, LockRecord, Name, Named, TaskId};

/// The irq contexts' names in the trace, hashed at compile time.
const HARDIRQ: CallName = CallName::new("hardirq");
const SOFTIRQ: CallName = CallName::new("softirq");

/// The violation kind of a sleeping call made while the task is not TASK_RUNNING (the kernel's
/// `__might_sleep` warning "do not call blocking ops when !TASK_RUNNING").
pub const BLOCKING_OP_NOT_RUNNING: &str = "blocking-op-not-running";

/// Saved irq state, as `local_irq_save()` returns it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[must_use = "irq flags must be restored with local_irq_restore"]
pub struct IrqFlags {
    was_disabled: bool,
}

impl IrqFlags {
    /// Flags that restore irqs to on: what `spin_unlock_irq()`'s `local_irq_enable()` does
    /// whatever the state at the lock (`SpinLock::lock_irq`).
    pub(crate) const ENABLED: IrqFlags = IrqFlags { was_disabled: false };
    /// Flags that restore irqs to off.
    pub(crate) const DISABLED: IrqFlags = IrqFlags { was_disabled: true };

    /// Whether irqs were off when these flags were saved.
    pub(crate) fn was_disabled(self) -> bool {
        self.was_disabled
    }
}

/// The execution context. See the module documentation.
pub struct Cx {
    sim: Sim,
    task: TaskId,
    name: Arc<str>,
    cpu: Cell<CpuId>,
    preempt_count: Cell<u32>,
    irqs_disabled: Cell<bool>,
    hardirq_depth: Cell<u32>,
    /// Nesting of simulated softirq handlers running on this context (`in_serving_softirq()`).
    softirq_depth: Cell<u32>,
    /// `local_bh_disable()` nesting (the kernel's SOFTIRQ_DISABLE_OFFSET count).
    bh_disable_count: Cell<u32>,
    /// The interrupt state lockdep records with an acquisition, as the four fields above give
    /// it ([`Cx::irq_state`]): kept up to date by every change of them ([`Cx::irq_changed`]),
    /// so an acquisition reads one byte instead of four fields.
    irq: Cell<IrqState>,
    /// The locks held. An observer's entries carry the token, class name, mode and site alone
    /// ([`Cx::push_observer`]).
    held: RefCell<HeldStack>,
    /// `rcu_read_lock()` nesting (the kernel's `current->rcu_read_lock_nesting`).
    rcu_depth: Cell<u32>,
    /// The outermost read-side section while `rcu_depth` > 0.
    rcu_section: Cell<Option<crate::rcu::Section>>,
    /// An observer (a checker reading model state) is neither traced nor checked by lockdep.
    observer: bool,
    /// Where `set_current_state()` left the task not TASK_RUNNING (None: running). A sleeping
    /// call made meanwhile is the kernel's "do not call blocking ops when !TASK_RUNNING".
    not_running_since: Cell<Option<&'static Location<'static>>>,
    /// The next lock token: this context's serial number in its world in the high bits, with
    /// [`OBSERVER_TOKENS`] set for an observer ([`token_base`]), and the count of acquisitions
    /// made so far plus one in the low [`TOKEN_COUNT_BITS`] (a context would need 2^40 of them
    /// to carry into its serial).
    tokens: Cell<u64>,
    /// What this task holds and waits for, readable from other threads for a deadlock's report:
    /// kept only for a context made inside a shuttle execution (a threaded case).
    waits: Option<Arc<LockWaits>>,
    /// A model context that keeps no [`LockWaits`] record (`!observer && waits.is_none()`, as
    /// both are set when the context is made): an acquisition tests this once
    /// ([`Cx::acquire_with`]) instead of each of the two twice, and so does a release
    /// ([`Cx::lock_release_key`]; an observer's release pops its innermost lock in
    /// `lock_release_key_searched`).
    plain: bool,
}

/// One lock instance in a [`LockWaits`] record: its class, its address while held or awaited
/// (0 when the lock keeps no per-instance memo), and the acquisition's token and mode.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct LockInstance {
    pub(crate) class: &'static str,
    pub(crate) instance: usize,
    pub(crate) token: u64,
    pub(crate) mode: LockMode,
}

/// What one task holds and the lock it waits for, kept beside its held stack so that a deadlock
/// (every task blocked) can be reported with each task's locks from any thread. Checker state:
/// a std lock, never a `sync` object and never traced, so it adds no schedule points.
#[derive(Debug)]
#[cfg_attr(not(feature = "threaded"), allow(dead_code))]
pub(crate) struct LockWaits {
    pub(crate) task: Arc<str>,
    state: StdMutex<WaitState>,
}

/// The record [`LockWaits`] guards.
#[derive(Clone, Debug, Default)]
pub(crate) struct WaitState {
    /// Locks held, outermost first.
    pub(crate) held: Vec<LockInstance>,
    /// The acquisition the task may be blocked in (set before it may block, cleared once held).
    pub(crate) waiting: Option<LockInstance>,
}

impl LockWaits {
    /// An empty record for the task named `task`. A call of its own, made only inside a shuttle
    /// execution: inline, its allocation made every [`Cx::new`] save and restore six registers.
    #[cold]
    #[inline(never)]
    fn shared(task: &Arc<str>) -> Arc<LockWaits> {
        Arc::new(LockWaits { task: task.clone(), state: StdMutex::new(WaitState::default()) })
    }

    /// A copy of the record.
    #[cfg_attr(not(feature = "threaded"), allow(dead_code))]
    pub(crate) fn snapshot(&self) -> WaitState {
        self.state.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }

    fn update(&self, f: impl FnOnce(&mut WaitState)) {
        f(&mut self.state.lock().unwrap_or_else(PoisonError::into_inner));
    }
}

/// Whether contexts made now keep a [`LockWaits`] record: inside a shuttle execution, where a
/// deadlock is detected and reported.
fn keeps_waits() -> bool {
    #[cfg(feature = "threaded")]
    {
        crate::sync::schedule::in_execution()
    }
    #[cfg(not(feature = "threaded"))]
    {
        false
    }
}

impl std::fmt::Debug for Cx {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cx")
            .field("task", &self.task)
            .field("name", &self.name)
            .field("cpu", &self.cpu.get())
            .field("preempt_count", &self.preempt_count.get())
            .field("irqs_disabled", &self.irqs_disabled.get())
            .field("in_irq", &self.in_irq())
            .field("rcu_depth", &self.rcu_depth.get())
            .field("in_serving_softirq", &self.in_serving_softirq())
            .field("bh_disable_count", &self.bh_disable_count.get())
            .field("held", &self.held.borrow().iter().map(|h| h.name).collect::<Vec<_>>())
            .finish()
    }
}

impl Cx {
    /// Inlined into [`Sim`]'s one maker of contexts (about 16 instructions of a call's entry and
    /// exit a context).
    #[inline]
    pub(crate) fn new(sim: Sim, task: TaskId, name: Arc<str>, cpu: CpuId, observer: bool) -> Cx {
        let tokens = token_base(&sim, observer) | 1;
        let waits = if keeps_waits() { Some(LockWaits::shared(&name)) } else { None };
        Cx {
            sim,
            task,
            name,
            cpu: Cell::new(cpu),
            preempt_count: Cell::new(0),
            irqs_disabled: Cell::new(false),
            hardirq_depth: Cell::new(0),
            softirq_depth: Cell::new(0),
            bh_disable_count: Cell::new(0),
            irq: Cell::new(IrqState::new(false, false, true, true)),
            held: RefCell::new(HeldStack::new()),
            rcu_depth: Cell::new(0),
            rcu_section: Cell::new(None),
            observer,
            not_running_since: Cell::new(None),
            tokens: Cell::new(tokens),
            plain: !observer && waits.is_none(),
            waits,
        }
    }

    /// Makes this context what a new one for the same task and name on `cpu` would be if made
    /// now ([`Sim::cx`], [`Sim::cx_for_task`] or [`Sim::observer_cx`] again), without making
    /// one: the next serial number in the world (of observers, for an observer), so its lock tokens, hence the trace and its
    /// hash, are those of the new context; the name given to the task in the trace again (a
    /// pid's context another name may have renamed); preemption, irq and sleep state as a new
    /// context starts. For a checker or a model that keeps one context per task or observer
    /// between operations instead of making one per operation, at the point where it made one.
    /// Panics when the context holds a lock or is inside an RCU read-side section: a context
    /// left so between operations is a bug of its caller. Inside a shuttle execution (where a
    /// context keeps a [`LockWaits`] record) it is made anew.
    ///
    /// Inlined where a checker renews its contexts (about 16 instructions of a call's entry and
    /// exit a renewal, callgrind); the rare cases (a busy context's panic, a pid's name given
    /// again, a shuttle context made anew) in calls of their own. Always: with the pid
    /// contexts' renewals beside it, LLVM made it a call of its own (~57 instructions a call).
    #[inline(always)]
    pub fn renew(&mut self, cpu: CpuId) {
        self.check_renewable(cpu);
        if (!self.observer && self.task < crate::sim::NAMED_TASKS_FIRST) || self.waits.is_some() {
            self.renew_rare(cpu);
            return;
        }
        self.renew_state(cpu);
    }

    /// Makes this model context what [`Sim::cx_for_task`]`(task, name, cpu)` would make now,
    /// `name` being this context's own: [`Cx::renew`] for a context a driver keeps per name
    /// ("fork", "sendmsg", "do_exit") and lends to whichever pid runs that operation next,
    /// instead of making and dropping one per operation (the world's handle cloned and
    /// dropped, the name looked up, a 700-byte context written). The task is `task` from now
    /// on; the trace names it `name` again unless it still does with this very string
    /// ([`crate::trace::Trace::rename_task_shared`]: no look-up when names are unread, a
    /// pointer compare when they are read), exactly as making a context would name it. Panics
    /// as [`Cx::renew`] does; an observer (whose task is never a pid) is refused in debug
    /// builds.
    #[inline]
    pub fn renew_for_task(&mut self, task: TaskId, cpu: CpuId) {
        self.check_renewable(cpu);
        debug_assert!(!self.observer, "{}: an observer context is not lent to a task", self.name);
        self.task = task;
        if let Some(name) = self.sim.world.trace.rename_task_shared(task, &self.name) {
            self.name = name;
        }
        if self.waits.is_some() {
            return self.made_anew(cpu);
        }
        self.renew_state(cpu);
    }

    /// What [`Cx::renew`] and [`Cx::renew_for_task`] refuse: a context holding a lock or inside
    /// an RCU read-side section, a CPU the world does not have.
    #[inline(always)]
    fn check_renewable(&mut self, cpu: CpuId) {
        if !self.held.get_mut().is_empty() || self.rcu_depth.get() != 0 {
            self.renewed_busy();
        }
        assert!(cpu < self.sim.cpus(), "cpu {cpu} out of range (the Sim has {} CPUs)", self.sim.cpus());
    }

    /// [`Cx::renew`]'s panic for a context that holds a lock or is inside an RCU read-side
    /// section.
    #[cold]
    #[inline(never)]
    fn renewed_busy(&self) -> ! {
        panic!("{}: renewed while holding a lock or inside an RCU read-side section: {:?}", self.name, self)
    }

    /// [`Cx::renew`] for a pid's context (its name given to the task in the trace again) or one
    /// that keeps a [`LockWaits`] record (made anew).
    #[inline(never)]
    fn renew_rare(&mut self, cpu: CpuId) {
        if !self.observer && self.task < crate::sim::NAMED_TASKS_FIRST {
            if let Some(name) = self.sim.world.trace.rename_task_shared(self.task, &self.name) {
                self.name = name;
            }
        }
        if self.waits.is_some() {
            return self.made_anew(cpu);
        }
        self.renew_state(cpu);
    }

    /// A renewal of a context that keeps a [`LockWaits`] record (inside a shuttle execution):
    /// a new context for its task and name, with a new record.
    #[cold]
    #[inline(never)]
    fn made_anew(&mut self, cpu: CpuId) {
        *self = Cx::new(self.sim.clone(), self.task, self.name.clone(), cpu, self.observer);
    }

    /// The state [`Cx::renew`] puts back as a new context starts: the next serial number's
    /// tokens, `cpu`, preemption, irq and sleep state.
    #[inline]
    fn renew_state(&mut self, cpu: CpuId) {
        self.tokens.set(token_base(&self.sim, self.observer) | 1);
        self.cpu.set(cpu);
        self.preempt_count.set(0);
        self.irqs_disabled.set(false);
        self.hardirq_depth.set(0);
        self.softirq_depth.set(0);
        self.bh_disable_count.set(0);
        self.irq_changed();
        self.rcu_section.set(None);
        self.not_running_since.set(None);
    }

    /// This task's held-and-awaited record, when it keeps one (made inside a shuttle execution).
    #[cfg_attr(not(feature = "threaded"), allow(dead_code))]
    pub(crate) fn lock_waits(&self) -> Option<Arc<LockWaits>> {
        self.waits.clone()
    }

    /// The world this context runs in.
    pub fn sim(&self) -> &Sim {
        &self.sim
    }

    /// The task id (`current->pid` for models that use pids as task ids).
    pub fn task(&self) -> TaskId {
        self.task
    }

    /// The task's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// `smp_processor_id()`.
    #[inline]
    pub fn cpu(&self) -> CpuId {
        self.cpu.get()
    }

    /// Moves the task to another CPU, as the scheduler may between operations. Panics when the
    /// context is atomic: a task cannot migrate with preemption off.
    pub fn migrate(&self, cpu: CpuId) {
        assert!(!self.in_atomic(), "{} cannot migrate while atomic: {:?}", self.name, self);
        assert!(cpu < self.sim.cpus(), "cpu {cpu} out of range");
        self.cpu.set(cpu);
    }

    /// `in_atomic()`: preemption disabled (a spinlock held, or an explicit disable), or in an
    /// interrupt, or with softirqs disabled (both count in the kernel's preempt_count).
    pub fn in_atomic(&self) -> bool {
        self.preempt_count.get() > 0 || self.in_interrupt() || self.bh_disable_count.get() > 0
    }

    /// `irqs_disabled()`.
    pub fn irqs_disabled(&self) -> bool {
        self.irqs_disabled.get()
    }

    /// `in_irq()`: running a simulated hard interrupt.
    pub fn in_irq(&self) -> bool {
        self.hardirq_depth.get() > 0
    }

    /// `in_serving_softirq()`: running a simulated softirq handler.
    pub fn in_serving_softirq(&self) -> bool {
        self.softirq_depth.get() > 0
    }

    /// `in_softirq()`: serving a softirq or with softirqs disabled (`local_bh_disable()`).
    pub fn in_softirq(&self) -> bool {
        self.in_serving_softirq() || self.bh_disable_count.get() > 0
    }

    /// `in_interrupt()`: in a hard or soft interrupt handler.
    pub fn in_interrupt(&self) -> bool {
        self.in_irq() || self.in_serving_softirq()
    }

    /// Whether softirqs could run here now: the kernel's `softirq_count() == 0` outside any
    /// interrupt, which is lockdep's `softirqs_enabled`.
    pub fn softirqs_enabled(&self) -> bool {
        !self.in_softirq() && !self.in_irq()
    }

    /// `preempt_count()` as far as ksim keeps it.
    pub fn preempt_count(&self) -> u32 {
        self.preempt_count.get()
    }

    /// `preempt_disable()`.
    #[inline]
    pub fn preempt_disable(&self) {
        self.preempt_count.set(self.preempt_count.get() + 1);
    }

    /// `preempt_enable()`.
    #[inline]
    pub fn preempt_enable(&self) {
        let count = self.preempt_count.get();
        assert!(count > 0, "{}: preempt_enable without preempt_disable", self.name);
        self.preempt_count.set(count - 1);
    }

    /// `local_irq_save()`.
    pub fn local_irq_save(&self) -> IrqFlags {
        let flags = IrqFlags { was_disabled: self.irqs_disabled.get() };
        self.irqs_disabled.set(true);
        self.hardirqs_changed(false);
        flags
    }

    /// `local_irq_restore()`.
    pub fn local_irq_restore(&self, flags: IrqFlags) {
        self.irqs_disabled.set(flags.was_disabled);
        self.hardirqs_changed(!flags.was_disabled);
    }

    /// [`Cx::irq_changed`] after a change of the irq state alone (hard irqs now `enabled`): one
    /// bit of the kept state set or cleared, the softirq and bh-disable state unchanged.
    #[inline]
    fn hardirqs_changed(&self, enabled: bool) {
        self.irq.set(self.irq.get().with_hardirqs_enabled(enabled));
        debug_assert_eq!(
            self.irq.get(),
            self.irq_state_now(),
            "{}: the kept interrupt state is stale",
            self.name
        );
    }

    /// Runs `handler` as a hard interrupt on this CPU: irqs off, `in_irq()` true. Lockdep learns
    /// the classes taken inside are used in irq context.
    pub fn hardirq<R>(&self, handler: impl FnOnce(&Cx) -> R) -> R {
        let flags = self.local_irq_save();
        self.hardirq_depth.set(self.hardirq_depth.get() + 1);
        self.irq_changed();
        self.trace_irq(&HARDIRQ, true);
        let result = handler(self);
        self.trace_irq(&HARDIRQ, false);
        self.hardirq_depth.set(self.hardirq_depth.get() - 1);
        self.irq_changed();
        self.local_irq_restore(flags);
        result
    }

    /// An irq context's entry (`enter`) or exit in the trace.
    fn trace_irq(&self, context: &CallName, enter: bool) {
        self.trace_named(Named::Irq { enter }, context.hash(), move || context.name().into());
    }

    /// Runs `handler` as a softirq on this CPU (`__do_softirq()`: a timer, a tasklet): softirqs
    /// disabled and `in_serving_softirq()` true, hard irqs still on. Lockdep learns the classes
    /// taken inside are used in softirq context. Panics where a softirq cannot run on this CPU
    /// (irqs off, softirqs disabled, inside a hard irq or a softirq): a model that delivers one
    /// there has a bug, since the kernel would defer it to `local_bh_enable()` or irq exit.
    pub fn softirq<R>(&self, handler: impl FnOnce(&Cx) -> R) -> R {
        assert!(
            self.softirqs_enabled() && !self.irqs_disabled(),
            "{}: a softirq cannot run here (softirqs or irqs disabled, or in an interrupt): {:?}",
            self.name,
            self
        );
        self.softirq_depth.set(self.softirq_depth.get() + 1);
        self.irq_changed();
        self.trace_irq(&SOFTIRQ, true);
        let result = handler(self);
        self.trace_irq(&SOFTIRQ, false);
        self.softirq_depth.set(self.softirq_depth.get() - 1);
        self.irq_changed();
        result
    }

    /// `local_bh_disable()`: no softirq runs on this CPU until the matching enable.
    pub fn local_bh_disable(&self) {
        self.bh_disable_count.set(self.bh_disable_count.get() + 1);
        self.irq_changed();
    }

    /// `local_bh_enable()`.
    pub fn local_bh_enable(&self) {
        let count = self.bh_disable_count.get();
        assert!(count > 0, "{}: local_bh_enable without local_bh_disable", self.name);
        self.bh_disable_count.set(count - 1);
        self.irq_changed();
    }

    /// The interrupt state lockdep records with an acquisition: the byte every change keeps.
    #[inline]
    pub(crate) fn irq_state(&self) -> IrqState {
        let kept = self.irq.get();
        debug_assert_eq!(kept, self.irq_state_now(), "{}: the kept interrupt state is stale", self.name);
        kept
    }

    /// Brings the kept interrupt state ([`Cx::irq_state`]) up to date after a change of the
    /// irq, softirq or bh-disable state.
    #[inline]
    fn irq_changed(&self) {
        self.irq.set(self.irq_state_now());
    }

    /// The interrupt state as the context's fields give it now.
    #[inline]
    fn irq_state_now(&self) -> IrqState {
        IrqState::new(
            self.in_irq(),
            self.in_serving_softirq(),
            !self.irqs_disabled(),
            self.softirqs_enabled(),
        )
    }

    /// `might_sleep()`: reports a sleeping call made in atomic context, or inside an RCU read-side
    /// section (`rcu_sleep_check()`, which `might_sleep()` makes first). `what` names the call.
    /// Inlined: the common call (a task context, nothing held that forbids sleeping) is one test
    /// of each of the four states that could make a report; the reports are made in
    /// [`Cx::might_sleep_checked`], in the same order. Atomic context or irqs off is the
    /// preemption count or the kept interrupt state ([`Cx::irq_state`]) away from task context
    /// with everything enabled (it counts hard and soft interrupts, irqs off, and bh disables).
    #[track_caller]
    #[inline]
    pub fn might_sleep(&self, what: &str) {
        if self.observer {
            return;
        }
        let atomic = self.preempt_count.get() > 0 || !self.irq_state().is_task_enabled();
        debug_assert_eq!(
            atomic,
            self.in_atomic() || self.irqs_disabled(),
            "{}: might_sleep's atomic test",
            self.name
        );
        if self.rcu_depth.get() > 0 || self.not_running_since.get().is_some() || atomic {
            self.might_sleep_checked(what, Location::caller());
        }
    }

    /// [`Cx::might_sleep`]'s reports for a call `what` made at `location`: inside an RCU
    /// read-side section, while not TASK_RUNNING, in atomic context or with irqs off.
    #[cold]
    #[inline(never)]
    fn might_sleep_checked(&self, what: &str, location: &'static Location<'static>) {
        if self.rcu_depth.get() > 0 {
            crate::rcu::report_sleep(self, what, location);
        }
        if let Some(since) = self.not_running_since.get() {
            let message = format!(
                "WARNING: do not call blocking ops when !TASK_RUNNING; state=1 set at {}: {what} at {} by {}",
                crate::lockdep::site(since),
                crate::lockdep::site(location),
                self.name
            );
            self.sim.report(Some(self), crate::sim::Violation::new(BLOCKING_OP_NOT_RUNNING, message));
        }
        if !(self.in_atomic() || self.irqs_disabled()) {
            return;
        }
        self.sim.lockdep().check_might_sleep(|| LockdepReport::SleepInAtomic {
            what: what.to_string(),
            site: crate::lockdep::site(location),
            task: self.name.to_string(),
            cpu: self.cpu(),
            preempt_count: self.preempt_count.get(),
            irqs_disabled: self.irqs_disabled(),
            in_irq: self.in_irq(),
            in_softirq: self.in_serving_softirq(),
            held: self.held_locks(),
        });
    }

    /// `set_current_state(TASK_INTERRUPTIBLE)` (`running` false, as `prepare_to_wait` does) or
    /// `__set_current_state(TASK_RUNNING)` (`running` true). While the task is not running,
    /// [`Cx::might_sleep`] reports a sleeping call ([`BLOCKING_OP_NOT_RUNNING`]).
    #[track_caller]
    pub fn set_current_state(&self, running: bool) {
        self.not_running_since.set(if running { None } else { Some(Location::caller()) });
    }

    /// Sleeps `ns` of virtual time (`msleep()`, `schedule_timeout()`): a sleeping call.
    #[track_caller]
    pub fn sleep_ns(&self, what: &'static str, ns: u64) {
        self.might_sleep(what);
        self.trace(EventKind::Sleep { what: what.into(), ns });
        self.sim.advance_ns(ns);
    }

    /// The locks this context holds, outermost first. An observer keeps no lockdep record of
    /// its acquisitions: its entries give the class, mode, trylock and site taken, and the
    /// context's CPU and interrupt state now.
    pub fn held_locks(&self) -> Vec<Acquisition> {
        let held = self.held.borrow();
        match self.observer {
            false => held.iter().map(|h| h.acquisition(&self.name)).collect(),
            true => held.iter().map(|h| self.observer_acquisition(h)).collect(),
        }
    }

    /// An observer's held lock as [`Cx::held_locks`] gives it.
    fn observer_acquisition(&self, held: &HeldLock) -> Acquisition {
        HeldLock { cpu: self.cpu(), irq: self.irq_state(), ..*held }.acquisition(&self.name)
    }

    /// How many locks this context holds.
    pub fn held_count(&self) -> usize {
        self.held.borrow().len()
    }

    /// Whether this context holds a lock of `class`.
    pub fn holds(&self, class: &str) -> bool {
        self.held.borrow().iter().any(|h| h.name == class)
    }

    /// `rcu_read_lock()`: enters (or nests) an RCU read-side section. Objects read through an
    /// `RcuPointer` stay allocated until the outermost section ends. Not a lock: lockdep sees no
    /// class, and the section does not disable preemption (the kernel's PREEMPT_RCU), but a
    /// sleeping call inside it is reported.
    #[track_caller]
    pub fn rcu_read_lock(&self) {
        crate::rcu::read_lock(self, Location::caller());
    }

    /// `rcu_read_unlock()`: leaves a read-side section; the outermost unlock lets waiting grace
    /// periods end. An unlock without a lock is reported.
    #[track_caller]
    pub fn rcu_read_unlock(&self) {
        crate::rcu::read_unlock(self, Location::caller());
    }

    /// `rcu_read_lock_held()`: whether this context is inside a read-side section.
    pub fn rcu_read_lock_held(&self) -> bool {
        self.rcu_depth.get() > 0
    }

    /// `rcu_preempt_depth()`: the read-side nesting.
    pub fn rcu_read_depth(&self) -> u32 {
        self.rcu_depth.get()
    }

    pub(crate) fn set_rcu_depth(&self, depth: u32) {
        self.rcu_depth.set(depth);
    }

    pub(crate) fn rcu_section(&self) -> Option<crate::rcu::Section> {
        self.rcu_section.get()
    }

    pub(crate) fn set_rcu_section(&self, section: Option<crate::rcu::Section>) {
        self.rcu_section.set(section);
    }

    /// Runs `f` on the held-lock stack, outermost first, without copying it (for detectors).
    /// An observer's entries have no class id, CPU, interrupt state or chain key: detectors
    /// skip observers first.
    pub(crate) fn with_held<R>(&self, f: impl FnOnce(&[HeldLock]) -> R) -> R {
        debug_assert!(!self.observer, "{}: an observer keeps no lockdep record of its locks", self.name);
        f(&self.held.borrow())
    }

    /// The task name as a shared string, for checker records that outlive this context.
    pub(crate) fn name_shared(&self) -> Arc<str> {
        self.name.clone()
    }

    /// Whether this is an observer context ([`Sim::observer_cx`]).
    #[inline]
    pub fn is_observer(&self) -> bool {
        self.observer
    }

    /// Records a trace event from this context (none for an observer).
    pub fn trace(&self, kind: EventKind) {
        if self.observer {
            return;
        }
        self.sim.trace().record(self.sim.now_ns(), self.cpu(), self.task, kind);
    }

    /// Records that the fault plan failed this context's call at `site` (none for an observer),
    /// through [`Trace::record_fault`]: no text made unless the trace keeps events.
    pub(crate) fn trace_fault(&self, site: crate::fault::SiteRef<'_>) {
        if self.observer {
            return;
        }
        self.sim.trace().record_fault((self.sim.now_ns(), self.cpu(), self.task), site);
    }

    /// Records an event about a named thing (see [`Named`]) whose name's hash its owner computed
    /// once (none for an observer): `name` is asked for only when the trace keeps events.
    #[inline]
    pub(crate) fn trace_named(&self, named: Named, name_hash: u64, name: impl FnOnce() -> Name) {
        if self.observer {
            return;
        }
        self.sim.trace().record_named((self.sim.now_ns(), self.cpu(), self.task), named, name_hash, name);
    }

    /// Records free text in the trace: a `&'static str` with no copy, or a `String`.
    pub fn note(&self, text: impl Into<Name>) {
        self.trace(EventKind::Note { text: text.into() });
    }

    /// Marks the start of an operation in the trace; pair with [`Cx::op_end`].
    pub fn op_begin(&self, name: &'static str, detail: impl Into<String>) {
        self.trace(EventKind::OpBegin { name: name.into(), detail: detail.into() });
    }

    /// Marks the end of an operation in the trace.
    pub fn op_end(&self, name: &'static str, result: impl Into<String>) {
        self.trace(EventKind::OpEnd { name: name.into(), result: result.into() });
    }

    /// Marks the start of call `name` in the trace with its arguments as integer `words`;
    /// `detail` builds the text a kept trace shows and runs only when events are kept (the
    /// structured form of [`Cx::op_begin`], which builds and hashes its text on every call).
    /// Pair with [`Cx::call_end`].
    #[inline]
    pub fn call_begin(
        &self,
        name: &CallName,
        words: impl IntoIterator<Item = u64>,
        detail: impl FnOnce() -> String,
    ) {
        if !self.observer {
            self.sim.trace().record_call(
                (self.sim.now_ns(), self.cpu(), self.task),
                false,
                name,
                words,
                detail,
            );
        }
    }

    /// Marks the end of call `name` with its result as integer `words`; `result` builds the
    /// text only when events are kept.
    #[inline]
    pub fn call_end(
        &self,
        name: &CallName,
        words: impl IntoIterator<Item = u64>,
        result: impl FnOnce() -> String,
    ) {
        if !self.observer {
            self.sim.trace().record_call(
                (self.sim.now_ns(), self.cpu(), self.task),
                true,
                name,
                words,
                result,
            );
        }
    }

    // --- lock bookkeeping for crate::locks ---------------------------------------------------

    /// Lockdep's check and the held-stack push for an acquisition of the lock whose class memo
    /// is `key`, made before it may block (`lock_acquire()` → `__lock_acquire()`). Returns the
    /// token that pairs it with its release.
    /// A blocking acquisition also records the lock as the one this task waits for, until
    /// [`Cx::lock_acquired_key`] or [`Cx::lock_acquire_failed`]; the key's address names the
    /// instance (it is borrowed, so it cannot move, while the lock is awaited or held).
    #[inline(always)]
    pub(crate) fn lock_acquire_key(
        &self,
        key: &ClassKey,
        mode: LockMode,
        trylock: bool,
        site: &'static Location<'static>,
    ) -> u64 {
        let token = self.push_held(key, mode, trylock, site);
        if !trylock {
            self.lock_wait(key.name, std::ptr::from_ref(key) as usize, mode, token);
        }
        token
    }

    /// A blocking acquisition of the lock whose class memo is `key` in mode `mode`, made by
    /// `lock` (the backend lock, with what the lock kind does just before it, such as
    /// disabling preemption): [`Cx::lock_acquire_key`] before it, [`Cx::lock_acquired_key`]
    /// after, the same checks, held entry and trace event. Returns what `lock` gave and the
    /// acquisition's token. A plain model context (`plain`) tests what kind of context
    /// this is once: it is traced and checked, and keeps no [`LockWaits`] record. Any other
    /// takes [`Cx::acquire_with_general`], a call of its own.
    #[inline(always)]
    pub(crate) fn acquire_with<G>(
        &self,
        key: &ClassKey,
        mode: LockMode,
        site: &'static Location<'static>,
        lock: impl FnOnce() -> G,
    ) -> (G, u64) {
        if !self.plain {
            return self.acquire_with_general(key, mode, site, lock);
        }
        let token = self.push_model(key, mode, false, site);
        let guard = lock();
        self.record_lock(&key.name, key.name_hash, crate::trace::lock_tag(Some((mode, false))), token);
        (guard, token)
    }

    /// [`Cx::acquire_with`] for an observer or a context that keeps a [`LockWaits`] record.
    #[inline(never)]
    fn acquire_with_general<G>(
        &self,
        key: &ClassKey,
        mode: LockMode,
        site: &'static Location<'static>,
        lock: impl FnOnce() -> G,
    ) -> (G, u64) {
        let token = self.lock_acquire_key(key, mode, false, site);
        let guard = lock();
        self.lock_acquired_key(key, mode, false, token);
        (guard, token)
    }

    /// Records that this task may now block until it holds acquisition `token` of the lock
    /// `instance` (an address, 0 if unknown) of class `class`: what a deadlock's report says it
    /// waits for. Only for a context that keeps a [`LockWaits`] record.
    #[inline]
    pub(crate) fn lock_wait(&self, class: &'static str, instance: usize, mode: LockMode, token: u64) {
        if let Some(waits) = &self.waits {
            Self::waits_waiting(waits, LockInstance { class, instance, token, mode });
        }
    }

    /// [`Cx::lock_wait`]'s record, a call of its own: only a threaded case's contexts keep one.
    #[cold]
    #[inline(never)]
    fn waits_waiting(waits: &LockWaits, instance: LockInstance) {
        waits.update(|state| state.waiting = Some(instance));
    }

    /// The [`LockWaits`] record's side of a completed acquisition: no longer waiting, and held.
    #[inline]
    fn waits_acquired(&self, class: &'static str, instance: usize, mode: LockMode, token: u64) {
        if let Some(waits) = &self.waits {
            Self::waits_held(waits, LockInstance { class, instance, token, mode });
        }
    }

    /// [`Cx::waits_acquired`]'s record, a call of its own: only a threaded case's contexts keep
    /// one. `acquired.instance` is used when no wait named the instance (a trylock).
    #[cold]
    #[inline(never)]
    fn waits_held(waits: &LockWaits, acquired: LockInstance) {
        waits.update(|state| {
            let awaited = state.waiting.take_if(|w| w.token == acquired.token);
            let instance = awaited.map_or(acquired.instance, |w| w.instance);
            state.held.push(LockInstance { instance, ..acquired });
        });
    }

    /// Lockdep's check and the held-stack push for an acquisition (see
    /// [`Cx::lock_acquire_key`]), without the [`LockWaits`] record. An observer, which lockdep
    /// does not check, records the token, class and site only ([`Cx::push_observer`]).
    #[inline(always)]
    pub(crate) fn push_held(
        &self,
        key: &ClassKey,
        mode: LockMode,
        trylock: bool,
        site: &'static Location<'static>,
    ) -> u64 {
        if self.observer {
            let token = self.next_token();
            self.push_observer(token, key.name, mode, trylock, site);
            return token;
        }
        self.push_model(key, mode, trylock, site)
    }

    /// [`Cx::push_held`] for a model context: the next token and the full record, checked by
    /// lockdep when it is on. Returns the token.
    /// A call of its own, the same for every lock type: inlined into each lock's acquisition,
    /// its ten copies were the largest share of the hot code duplicated across taskstats' lock
    /// paths (ts27: 4.4 KB hot, with lockdep's memo test).
    ///
    /// Its every other path is a call it ends with (a jump), so the common one, a stack with
    /// room in its array and a chain validated clean before, calls nothing, passes nothing
    /// through memory and saves five callee-saved registers (six, and a `Taken` spilled, when a
    /// call sat in its middle: session 33's history).
    #[inline(never)]
    fn push_model(
        &self,
        key: &ClassKey,
        mode: LockMode,
        trylock: bool,
        site: &'static Location<'static>,
    ) -> u64 {
        let mut held = self.held.borrow_mut();
        let Some((parent, depth)) = held.innermost_chain_with_room() else {
            drop(held);
            return self.push_model_deep(key, mode, trylock, site);
        };
        let token = self.next_token();
        let irq = self.irq_state();
        // The entry is written first, with no class or chain key yet, so that what it holds
        // need not stay in registers through lockdep's memo test: the common acquisition, a
        // chain validated clean before (the lock's own memo or this thread's chain table knows
        // it), then writes the class and chain key lockdep's check would fill in, and checks
        // nothing. The fields are only written, never read back, so no load waits on a store.
        let entry = held.push_made(|| self.unchecked_entry(token, key, (mode, trylock), site, irq));
        let taken = crate::chain_cache::Taken { mode, trylock, irq, depth };
        match self.sim.lockdep().known_by_memo(key, parent, taken) {
            Some((class, chain)) => {
                (entry.class, entry.chain) = (class, chain);
                token
            }
            None => {
                drop(held);
                self.check_past_memo(key, false)
            }
        }
    }

    /// [`Cx::push_model`] past the lock's memo: the entry just pushed, for a chain that this
    /// thread's table may know clean ([`crate::lockdep::Lockdep::known_clean`]), else checked
    /// ([`Cx::check_pushed`]). How it was taken and the stack under it are read back from the
    /// stack, so the memo's test passes nothing on (a [`crate::chain_cache::Taken`] passed went
    /// through memory on every acquisition). Returns the entry's token.
    /// `ask_memo`: whether the lock's memo is still to be asked (the caller did not).
    #[inline(never)]
    fn check_past_memo(&self, key: &ClassKey, ask_memo: bool) -> u64 {
        let mut held = self.held.borrow_mut();
        let (entry, below) = held.split_last_mut().expect("just pushed");
        let parent = below.last().map_or(0, |h| h.chain);
        let taken = crate::chain_cache::Taken {
            mode: entry.mode,
            trylock: entry.trylock,
            irq: entry.irq,
            depth: below.len(),
        };
        match self.sim.lockdep().known_clean(key, parent, taken, ask_memo) {
            Ok((class, chain)) => {
                (entry.class, entry.chain) = (class, chain);
                entry.token
            }
            Err(class) => {
                drop(held);
                self.check_pushed(key, class)
            }
        }
    }

    /// [`Cx::push_model`] onto a stack whose array is full or that spilled into its `Vec`
    /// (balloon's deep stacks): the same entry, then the memo's and the table's test and the
    /// check ([`Cx::check_past_memo`]).
    #[inline(never)]
    fn push_model_deep(
        &self,
        key: &ClassKey,
        mode: LockMode,
        trylock: bool,
        site: &'static Location<'static>,
    ) -> u64 {
        let token = self.next_token();
        let entry = self.unchecked_entry(token, key, (mode, trylock), site, self.irq_state());
        self.held.borrow_mut().push(entry);
        self.check_past_memo(key, true)
    }

    /// A model acquisition's held entry as it is pushed, before lockdep fills in its class id
    /// and chain key (both 0 until then): acquisition `token` of the lock whose memo is `key`,
    /// taken as `(mode, trylock)` at `site` with interrupt state `irq`, on this context's CPU.
    #[inline(always)]
    fn unchecked_entry(
        &self,
        token: u64,
        key: &ClassKey,
        (mode, trylock): (LockMode, bool),
        site: &'static Location<'static>,
        irq: IrqState,
    ) -> HeldLock {
        HeldLock { token, class: 0, name: key.name, mode, trylock, site, cpu: self.cpu(), irq, chain: 0 }
    }

    /// [`Cx::push_model`] past lockdep's fast path: the entry just pushed checked by lockdep
    /// (when it is on) where it lives, which fills in its class and chain key. `class`: the
    /// lock's class id, when the chain cache knew it. A report that panics takes the entry off
    /// again ([`PushedOnce`]).
    /// Returns the entry's token.
    #[inline(never)]
    fn check_pushed(&self, key: &ClassKey, class: Option<ClassId>) -> u64 {
        let mut held = PushedOnce { held: self.held.borrow_mut(), checked: false };
        let lockdep = self.sim.lockdep();
        let (new, below) = held.held.split_last_mut().expect("just pushed");
        if lockdep.is_enabled() {
            lockdep.check_acquire(below, new, key, class, &self.name);
        }
        let token = new.token;
        held.checked = true;
        token
    }

    /// [`Cx::push_held`] for an observer: no lockdep check and no trace, so nothing reads its
    /// CPU, interrupt state, class id or chain key, and its entry has none (zero); what it
    /// keeps answers [`Cx::holds`], [`Cx::holds_token`], [`Cx::held_count`], a release's check
    /// and [`Cx::held_locks`].
    #[inline(never)]
    fn push_observer(
        &self,
        token: u64,
        name: &'static str,
        mode: LockMode,
        trylock: bool,
        site: &'static Location<'static>,
    ) {
        let lock =
            HeldLock { token, class: 0, name, mode, trylock, site, cpu: 0, irq: IrqState::NONE, chain: 0 };
        self.held.borrow_mut().push(lock);
    }

    /// A lock-acquisition token unique in this world: this context's serial number in the high
    /// bits, a count of its acquisitions in the low ones, so no token costs an atomic. The
    /// count is the token's own low bits, incremented whole (no mask or merge with the serial:
    /// three instructions an acquisition fewer).
    #[inline]
    fn next_token(&self) -> u64 {
        let token = self.tokens.get();
        debug_assert!(token & TOKEN_COUNT_MASK != 0, "2^40 acquisitions in one context");
        self.tokens.set(token + 1);
        token
    }

    /// Whether this context's held stack has the acquisition `token` (a lock released by
    /// another context, such as a page lock, may not be on the stack of the one releasing it).
    pub(crate) fn holds_token(&self, token: u64) -> bool {
        self.held.borrow().iter().any(|h| h.token == token)
    }

    /// Undoes [`Cx::lock_acquire`] for a trylock that failed. The failed acquisition is the
    /// innermost entry (nothing was pushed since), so outside a shuttle execution it comes off
    /// as a release's does, without the search.
    pub(crate) fn lock_acquire_failed(&self, token: u64) {
        if self.waits.is_none() && self.held.borrow_mut().pop_if_innermost(token) {
            return;
        }
        let mut held = self.held.borrow_mut();
        if let Some(index) = held.iter().rposition(|h| h.token == token) {
            remove_held(&mut held, index);
        }
        if let Some(waits) = &self.waits {
            waits.update(|state| {
                state.waiting.take_if(|w| w.token == token);
            });
        }
    }

    /// The trace event for an acquisition of the lock whose class memo is `key` that completed.
    /// Always inlined into the lock, as before [`Cx::lock_acquired_instance`] split it (left to
    /// itself the compiler made it a call of its own: 2.7 M instructions in the demo's 300 cases).
    #[inline(always)]
    pub(crate) fn lock_acquired_key(&self, key: &ClassKey, mode: LockMode, trylock: bool, token: u64) {
        self.lock_acquired_instance(key, std::ptr::from_ref(key) as usize, mode, trylock, token);
    }

    /// [`Cx::lock_acquired_key`] naming the lock instance `instance` (an address, 0 if unknown)
    /// in the [`LockWaits`] record where no wait named it before (a trylock).
    #[inline(always)]
    pub(crate) fn lock_acquired_instance(
        &self,
        key: &ClassKey,
        instance: usize,
        mode: LockMode,
        trylock: bool,
        token: u64,
    ) {
        // The key's fields are read where each is used, not passed on: read up front, they were
        // kept live across the calls in between (demo +1.2 % instructions, callgrind).
        self.waits_acquired(key.name, instance, mode, token);
        self.trace_lock(&key.name, key.name_hash, Some((mode, trylock)), token);
    }

    /// Records a lock event (an acquisition when `acquired` is set, else a release) in the
    /// trace through its fixed-size fast path (none for an observer: decided where the lock is
    /// taken or released, so a checker's lock round trip makes no call for its two events).
    #[inline(always)]
    fn trace_lock(
        &self,
        class: &&'static str,
        class_hash: u64,
        acquired: Option<(LockMode, bool)>,
        token: u64,
    ) {
        if !self.observer {
            self.record_lock(class, class_hash, crate::trace::lock_tag(acquired), token);
        }
    }

    /// [`Cx::trace_lock`] for a traced context. A call of its own, one copy for every lock
    /// and guard: inlined (where the mode, trylock flag and class were constants or already in
    /// registers) it saved a round trip's call overhead but was hot in 17 binary functions of
    /// taskstats (ts27: 5.2 KB of hot code), a tenth of the code taskstats runs out of L1i.
    /// Its path past the hashing (a trace that keeps events or that any thread may record) is
    /// one cold call taking this function's own arguments ([`Cx::record_lock_traced`]), so that
    /// it is a jump and the hashing saves one register only.
    /// The event's kind passes as its [`crate::trace::lock_tag`], made where the mode is known.
    #[inline(never)]
    fn record_lock(&self, class: &&'static str, class_hash: u64, tag: u64, token: u64) {
        let at = (self.sim.now_ns(), self.cpu(), self.task);
        if !self.sim.trace().lock_hashed(at, class_hash, token, tag) {
            self.record_lock_traced(class, class_hash, tag, token);
        }
    }

    /// [`Cx::record_lock`] for a trace that keeps events or that any thread may record
    /// ([`crate::trace::Trace::record_lock`], under its spin lock when it is shared).
    #[cold]
    #[inline(never)]
    fn record_lock_traced(&self, class: &&'static str, class_hash: u64, tag: u64, token: u64) {
        let acquired = crate::trace::lock_tag_parts(tag);
        let record = LockRecord { class, class_hash, token, acquired };
        self.sim.trace().record_lock((self.sim.now_ns(), self.cpu(), self.task), record);
    }

    /// The held-stack pop and trace event for a release of the lock whose class memo is `key`
    /// (`lock_release()`). A call of its own, one copy for every guard's drop (inlined, its pop
    /// was hot in nine of taskstats' binary functions). Both of its paths end in a call taking
    /// no more than its own arguments (the trace event's, or the rest of the release's), so
    /// that they are jumps and the pop saves no registers.
    #[inline(never)]
    pub(crate) fn lock_release_key(&self, key: &ClassKey, token: u64) {
        self.lock_release_key_inline(key, token);
    }

    /// [`Cx::lock_release_key`] inlined, for a caller that is itself one call for a kind of
    /// release and does more after it (a spinlock's release that restores irqs or softirqs).
    #[inline(always)]
    pub(crate) fn lock_release_key_inline(&self, key: &ClassKey, token: u64) {
        // A plain context (traced, no `LockWaits` record) tests its kind once, as its
        // acquisition does; an observer's release takes the searched path, which pops the
        // innermost lock as quickly and records nothing.
        if self.plain && self.held.borrow_mut().pop_if_innermost(token) {
            return self.record_lock(&key.name, key.name_hash, crate::trace::lock_tag(None), token);
        }
        self.lock_release_key_searched(key, token);
    }

    /// [`Cx::lock_release_key`] past its fast path: [`Cx::release_held_searched`], then the
    /// trace event.
    /// An observer's release comes here too, and pops its innermost lock as quickly.
    #[inline(never)]
    fn lock_release_key_searched(&self, key: &ClassKey, token: u64) {
        if self.popped_innermost(token) {
            return self.trace_lock(&key.name, key.name_hash, None, token);
        }
        self.release_held_searched(&key.name, token);
        self.trace_lock(&key.name, key.name_hash, None, token);
    }

    /// [`Cx::lock_release_key`] for a class given by its name and the name's hash.
    #[inline]
    pub(crate) fn lock_release_named(&self, name: &'static str, name_hash: u64, token: u64) {
        self.release_held(&name, token);
        self.trace_lock(&name, name_hash, None, token);
    }

    /// Pops acquisition `token` off the held stack; panics when this context does not hold it.
    /// `class` (for the panic's text) is passed by reference, read past the fast path: passed
    /// by value, its two words were loaded on every release.
    /// The [`LockWaits`] record keeps what was held when a checker's failure (a deadlock) began
    /// unwinding the task, for the report.
    #[inline]
    fn release_held(&self, class: &&'static str, token: u64) {
        if self.popped_innermost(token) {
            return;
        }
        self.release_held_searched(class, token);
    }

    /// The release's fast path, whether `token`'s entry came off: the innermost lock is the
    /// one most often released, and it comes off without the search or the chain keys' walk,
    /// since no lock sits above it; a context that keeps a [`LockWaits`] record (inside a
    /// shuttle execution) takes the whole path.
    #[inline(always)]
    fn popped_innermost(&self, token: u64) -> bool {
        self.waits.is_none() && self.held.borrow_mut().pop_if_innermost(token)
    }

    /// [`Cx::release_held`] past its fast path: the [`LockWaits`] record, then the acquisition
    /// found on the stack wherever it is.
    #[inline(never)]
    fn release_held_searched(&self, class: &&'static str, token: u64) {
        if let Some(waits) = self.waits.as_ref().filter(|_| !std::thread::panicking()) {
            waits.update(|state| state.held.retain(|h| h.token != token));
        }
        let mut held = self.held.borrow_mut();
        if held.pop_if_innermost(token) {
            return;
        }
        match held.iter().rposition(|h| h.token == token) {
            Some(index) => remove_held(&mut held, index),
            None => {
                drop(held);
                panic!("{}: release of {class} that this context does not hold", self.name)
            }
        }
    }
}

/// The held stack with a lock just pushed, while lockdep checks it: a report that panics
/// (`ReportMode::Panic`) unwinds through this guard, which takes the entry off again, since the
/// lock was never taken. A guard rather than `catch_unwind` and `resume_unwind`, so the common
/// path runs straight through with nothing to undo.
struct PushedOnce<'a> {
    held: std::cell::RefMut<'a, HeldStack>,
    checked: bool,
}

impl Drop for PushedOnce<'_> {
    fn drop(&mut self) {
        if !self.checked {
            let top = self.held.len() - 1;
            self.held.remove(top);
        }
    }
}

/// How many low bits of a token count one context's acquisitions ([`Cx::next_token`]).
const TOKEN_COUNT_BITS: u32 = 40;
/// The low bits of a token that count one context's acquisitions.
const TOKEN_COUNT_MASK: u64 = (1 << TOKEN_COUNT_BITS) - 1;

/// A token's top bit: set in an observer's tokens, so observers' serials, counted apart from
/// the model's ([`Sim::next_cx_serial`]), never make a token a model context's token has.
const OBSERVER_TOKENS: u64 = 1 << 63;

/// Serial numbers kept in a token: the 23 bits between the count and [`OBSERVER_TOKENS`].
const TOKEN_SERIAL_MASK: u64 = (1 << 23) - 1;

/// The high bits of the tokens of a context made now: the world's next serial number among
/// model contexts or among observers, so that checker contexts never move a model context's
/// tokens (which the trace hashes) and no observer token equals a model one
/// ([`Cx::holds_token`] stays exact).
#[inline]
fn token_base(sim: &Sim, observer: bool) -> u64 {
    let serial = (sim.next_cx_serial(observer) & TOKEN_SERIAL_MASK) << TOKEN_COUNT_BITS;
    if observer {
        OBSERVER_TOKENS | serial
    } else {
        serial
    }
}

/// Held locks kept in place before a context's stack spills to the heap: as deep as taskstats,
/// mbcache 2.6, mbcache2 and the demo nest (mbcache's deepest path holds four), so their
/// contexts' locks cost no allocation; balloon's deeper paths spill (11,526 times in its 60-case
/// campaign, about 37 instructions each). Every new context writes each slot whole (safe Rust
/// has no uninitialised array), so each slot costs about ten instructions per `Cx::new`: 8 slots
/// cost taskstats 24 instructions a context more than 4 (callgrind).
const HELD_INLINE: usize = 4;

/// A context's held-lock stack, outermost first (the kernel's fixed `held_locks[]` array in
/// `task_struct`): up to [`HELD_INLINE`] locks in an array, so pushing one never allocates; a
/// deeper stack moves whole into a `Vec` until it is empty again. Read as a slice.
pub(crate) struct HeldStack {
    /// How many of `inline` are held (0 while `spill` holds the stack).
    len: usize,
    inline: [HeldLock; HELD_INLINE],
    /// The whole stack, when it outgrew `inline`.
    spill: Vec<HeldLock>,
}

impl HeldStack {
    fn new() -> HeldStack {
        let unused = HeldLock {
            token: 0,
            class: 0,
            name: "",
            mode: LockMode::Spin,
            trylock: false,
            site: Location::caller(),
            cpu: 0,
            irq: IrqState::NONE,
            chain: 0,
        };
        HeldStack { len: 0, inline: [unused; HELD_INLINE], spill: Vec::new() }
    }

    /// Pushes `held`: into the array unless the stack spilled or fills now.
    #[inline]
    fn push(&mut self, held: HeldLock) {
        self.push_made(|| held);
    }

    /// Pushes the entry `make` gives, made where it is stored: inside the test for room, so the
    /// compiler writes its fields straight into the slot (an entry made before the test was
    /// built on the stack and copied, about 20 instructions, and a store-forwarding stall).
    /// Returns the entry where it now lies.
    #[inline(always)]
    fn push_made(&mut self, make: impl FnOnce() -> HeldLock) -> &mut HeldLock {
        if self.spill.is_empty() && self.len < HELD_INLINE {
            let slot = &mut self.inline[self.len];
            *slot = make();
            self.len += 1;
            return slot;
        }
        self.push_spilled(make())
    }

    /// The innermost lock's chain key (0 for an empty stack) and how many locks are held (what
    /// an acquisition's chain key and lookup take from the stack), when the next lock pushed
    /// goes into the array (the stack did not spill and the array has room); else `None`.
    #[inline(always)]
    fn innermost_chain_with_room(&self) -> Option<(u64, usize)> {
        if !self.spill.is_empty() || self.len >= HELD_INLINE {
            return None;
        }
        Some((self.len.checked_sub(1).map_or(0, |innermost| self.inline[innermost].chain), self.len))
    }

    /// [`HeldStack::push`] onto a stack that spilled, or moves it whole into the `Vec` when the
    /// array is full.
    #[cold]
    #[inline(never)]
    fn push_spilled(&mut self, held: HeldLock) -> &mut HeldLock {
        if self.spill.is_empty() {
            self.spill.extend_from_slice(&self.inline);
            self.len = 0;
        }
        self.spill.push(held);
        self.spill.last_mut().expect("just pushed")
    }

    /// Takes the innermost lock off when it is acquisition `token`; false (and nothing changed)
    /// otherwise. No lock sits above it, so no chain key changes.
    #[inline]
    fn pop_if_innermost(&mut self, token: u64) -> bool {
        // `get` of `len - 1` wrapped tests the length and the bounds at once.
        let innermost = self.spill.is_empty()
            && self.inline.get(self.len.wrapping_sub(1)).is_some_and(|h| h.token == token);
        if innermost {
            self.len -= 1;
        }
        innermost
    }

    fn remove(&mut self, index: usize) {
        if self.spill.is_empty() {
            // The last lock taken is the one most often released: nothing above it to move
            // (an empty `copy_within` still calls `memmove`, a third of a release's cost).
            if index + 1 < self.len {
                self.inline.copy_within(index + 1..self.len, index);
            }
            self.len -= 1;
        } else {
            self.spill.remove(index);
        }
    }
}

impl std::ops::Deref for HeldStack {
    type Target = [HeldLock];
    fn deref(&self) -> &[HeldLock] {
        match self.spill.is_empty() {
            true => &self.inline[..self.len],
            false => &self.spill,
        }
    }
}

impl std::ops::DerefMut for HeldStack {
    fn deref_mut(&mut self) -> &mut [HeldLock] {
        match self.spill.is_empty() {
            true => &mut self.inline[..self.len],
            false => &mut self.spill,
        }
    }
}

/// Removes the held lock at `index`; the locks above it get their chain keys again without it,
/// as the kernel's `__lock_release()` re-adds the locks held above a released one.
fn remove_held(held: &mut HeldStack, index: usize) {
    held.remove(index);
    for at in index..held.len() {
        let parent = if at == 0 { 0 } else { held[at - 1].chain };
        held[at].chain = crate::chain_cache::chain_key(parent, held[at].class, held[at].mode);
    }
}

impl Drop for Cx {
    /// A task that ends inside a read-side section would hold every later grace period back
    /// forever: reported (the kernel's "lock held when returning to user space"), and the section
    /// closed so the rest of the run can go on. Skipped while unwinding from a checker's failure.
    fn drop(&mut self) {
        if self.rcu_depth.get() > 0 && !std::thread::panicking() {
            crate::rcu::leaked_section(self);
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::lockdep::ReportMode;
    use crate::{Sim, SimConfig, SpinLock};

    /// Twelve classes, nested: the stack outgrows its array, and releases out of order (inside
    /// the array and after the spill) leave exactly the locks still held, with lockdep quiet.
    #[test]
    fn a_deep_stack_spills_and_releases_out_of_order() {
        const NAMES: [&str; 12] = ["l0", "l1", "l2", "l3", "l4", "l5", "l6", "l7", "l8", "l9", "l10", "l11"];
        let sim = Sim::new(SimConfig::new(1).lockdep(ReportMode::Collect));
        let cx = sim.cx("deep", 0);
        let locks: Vec<SpinLock<()>> = NAMES.iter().map(|name| SpinLock::new(name, ())).collect();
        for round in 0..2 {
            let mut guards: Vec<Option<_>> = locks.iter().map(|lock| Some(lock.lock(&cx))).collect();
            assert_eq!(cx.held_count(), 12, "round {round}");
            guards[3] = None;
            guards[10] = None;
            assert_eq!(cx.held_count(), 10);
            assert!(!cx.holds("l3") && !cx.holds("l10") && cx.holds("l11") && cx.holds("l0"));
            guards.truncate(5);
            assert_eq!(cx.held_count(), 4, "l0, l1, l2, l4 left");
            drop(guards);
            assert_eq!(cx.held_count(), 0);
            let inner = locks[4].lock(&cx);
            assert_eq!(cx.held_count(), 1, "back in the array after the spill emptied");
            drop(inner);
        }
        assert!(sim.lockdep().reports().is_empty(), "{:?}", sim.lockdep().reports());
    }

    /// An observer keeps the light record ([`Cx::push_observer`](super::Cx::push_observer)):
    /// nested past the array and released out of order, it still answers which locks (classes
    /// and tokens) it holds and what [`Cx::held_locks`](super::Cx::held_locks) shows, and it adds
    /// nothing to the trace or to lockdep, whose record an observer never takes.
    #[test]
    fn an_observer_knows_which_locks_it_holds_without_lockdep_s_record() {
        const NAMES: [&str; 10] = ["o0", "o1", "o2", "o3", "o4", "o5", "o6", "o7", "o8", "o9"];
        let sim = Sim::new(SimConfig::new(2).lockdep(ReportMode::Collect));
        let trace_before = sim.trace_hash();
        let cx = sim.observer_cx("checker", 1);
        let locks: Vec<SpinLock<()>> = NAMES.iter().map(|name| SpinLock::new(name, ())).collect();
        let mut guards: Vec<Option<_>> = locks.iter().map(|lock| Some(lock.lock_bh(&cx))).collect();
        assert_eq!(cx.held_count(), 10);
        let held = cx.held_locks();
        assert_eq!(held.iter().map(|a| a.class.as_str()).collect::<Vec<_>>(), NAMES);
        assert!(held
            .iter()
            .all(|a| a.mode == crate::lockdep::LockMode::SpinBh && a.cpu == 1 && a.task == "checker"));
        assert!(held[0].site.contains("cx.rs"), "the site that took it: {}", held[0].site);
        guards[2] = None;
        guards[9] = None;
        assert!(!cx.holds("o2") && !cx.holds("o9") && cx.holds("o8") && cx.holds("o0"));
        assert_eq!(cx.held_count(), 8);
        drop(guards);
        assert_eq!(cx.held_count(), 0);
        assert!(!cx.in_atomic() && cx.softirqs_enabled(), "every release gave back what it took");
        let key = crate::chain_cache::ClassKey::new("o-token");
        let site = std::panic::Location::caller();
        let token = cx.push_held(&key, crate::lockdep::LockMode::Mutex, false, site);
        assert!(cx.holds_token(token) && !cx.holds_token(token + 1) && token & super::OBSERVER_TOKENS != 0);
        cx.release_held(&"o-token", token);
        assert!(!cx.holds_token(token));
        assert_eq!(sim.trace_hash(), trace_before, "an observer's locks are not traced");
        assert!(sim.lockdep().reports().is_empty(), "{:?}", sim.lockdep().reports());
    }

    /// A release of a lock an observer does not hold is caught on the light record too.
    #[test]
    #[should_panic(expected = "release of o-unheld that this context does not hold")]
    fn an_observer_s_release_of_a_lock_it_does_not_hold_panics() {
        let sim = Sim::new(SimConfig::new(1));
        let cx = sim.observer_cx("checker", 0);
        cx.release_held(&"o-unheld", super::OBSERVER_TOKENS | 12345);
    }

    /// A model context's trylock that fails comes off the stack as the innermost entry (the
    /// fast path) whether the stack is in its array or spilled, and leaves the held locks, their
    /// chain keys and the next acquisition's check as they were.
    #[test]
    fn a_failed_trylock_leaves_a_model_context_s_stack_as_it_was() {
        const NAMES: [&str; 10] = ["t0", "t1", "t2", "t3", "t4", "t5", "t6", "t7", "t8", "t9"];
        let sim = Sim::new(SimConfig::new(1).lockdep(ReportMode::Collect));
        let (model, other) = (sim.cx("model", 0), sim.cx("other", 0));
        let contended = SpinLock::new("t-contended", ());
        let locks: Vec<SpinLock<()>> = NAMES.iter().map(|name| SpinLock::new(name, ())).collect();
        let taken = contended.lock(&other);
        let mut guards = Vec::new();
        for lock in &locks {
            guards.push(lock.lock(&model));
            let before: Vec<_> = model.with_held(|held| held.iter().map(|h| (h.token, h.chain)).collect());
            assert!(contended.try_lock(&model).is_none(), "held by the other context");
            let after: Vec<_> = model.with_held(|held| held.iter().map(|h| (h.token, h.chain)).collect());
            assert_eq!(before, after, "{} held", guards.len());
        }
        drop(taken);
        let inner = contended.try_lock(&model).expect("free now");
        assert_eq!(model.held_count(), NAMES.len() + 1);
        drop((inner, guards));
        assert_eq!(model.held_count(), 0);
        assert!(sim.lockdep().reports().is_empty(), "{:?}", sim.lockdep().reports());
    }

    /// A trylock that fails leaves an observer's record as it was.
    #[test]
    fn an_observer_s_failed_trylock_leaves_no_entry() {
        let sim = Sim::new(SimConfig::new(1));
        let (model, checker) = (sim.cx("model", 0), sim.observer_cx("checker", 0));
        let lock = SpinLock::new("o-try", ());
        let held = lock.lock(&model);
        assert!(lock.try_lock(&checker).is_none());
        assert_eq!(checker.held_count(), 0);
        drop(held);
        let taken = lock.try_lock(&checker).expect("free now");
        assert!(checker.holds("o-try") && checker.held_locks()[0].trylock);
        drop(taken);
        assert_eq!(checker.held_count(), 0);
    }
}
