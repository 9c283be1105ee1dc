//! Kernel-named locks over the [`crate::sync`] facade, each belonging to a lockdep class:
//! `SpinLock` (`spin_lock`, `spin_lock_irqsave`, `spin_lock_bh`), `RwSem` with the kernel's writer preference,
//! `Mutex` (`mutex_lock`, `mutex_trylock`), `WaitQueue` (`wait_event`, `wake_up`), `Completion`.
//!
//! Every acquisition goes through the context's lockdep check *before* it may block, so a lock
//! order that could deadlock is reported even in a run that did not deadlock, and it appears in the
//! trace once it is held. Left out: sleeping spinlocks (PREEMPT_RT), lock subclasses, optimistic
//! spinning, and interruptible/killable sleeps (ksim delivers no signals).

use std::fmt;
use std::mem::ManuallyDrop;
use std::ops::{Deref, DerefMut};
use std::panic::Location;

use crate::chain_cache::ClassKey;
use crate::cx::{Cx, IrqFlags};
use crate::lockdep::LockMode;
use crate::sync;

// --- SpinLock ---------------------------------------------------------------------------------

/// The violation kind of a `spin_lock_irq()` taken with local irqs already off
/// ([`SpinLock::lock_irq`]): its unlock would enable them inside the caller's irq-off section.
pub const SPIN_LOCK_IRQ_WITH_IRQS_OFF: &str = "irq:spin-lock-irq-with-irqs-off";

/// Reports [`SPIN_LOCK_IRQ_WITH_IRQS_OFF`] for lock class `class` taken at `site`: a cold call,
/// so the lock's fast path stays a load and a branch.
#[cold]
#[inline(never)]
fn report_lock_irq_with_irqs_off(cx: &Cx, class: &str, site: &'static Location<'static>) {
    let message = format!(
        "WARNING: spin_lock_irq({class}) with irqs disabled at {} by {}: spin_unlock_irq() will enable \
         them inside the caller's irq-off section (spin_lock_irqsave() is the call for this context)",
        crate::lockdep::site(site),
        cx.name()
    );
    cx.sim().report(Some(cx), crate::sim::Violation::new(SPIN_LOCK_IRQ_WITH_IRQS_OFF, message));
}

/// `spinlock_t`: disables preemption while held, never sleeps.
pub struct SpinLock<T> {
    key: ClassKey,
    inner: sync::Mutex<T>,
}

impl<T: fmt::Debug> fmt::Debug for SpinLock<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SpinLock").field("class", &self.key.name).finish_non_exhaustive()
    }
}

/// A held [`SpinLock`]; releases on drop (`spin_unlock`, `spin_unlock_irqrestore`).
pub struct SpinLockGuard<'a, T> {
    /// The backend guard, released by the drop ([`sync::Release`]), which leaves `None`: kept
    /// from the drop glue, which would test the slot again after the drop's last call and so
    /// keep that call from being a jump.
    guard: ManuallyDrop<Option<sync::MutexGuard<'a, T>>>,
    cx: &'a Cx,
    key: &'a ClassKey,
    token: u64,
    restore: Restore,
}

/// What a spinlock's release gives back besides the lock, as bits: a release tests them one at
/// a time, so the compiler makes no jump table of it. An enum of the four cases was matched by a
/// table's indirect jump on every release (five instructions and an indirect branch to predict,
/// each lock site's guard its own), even with `spin_unlock`'s case tested first.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Restore(u8);

impl Restore {
    /// `spin_unlock`.
    const NOTHING: Restore = Restore(0);
    /// `spin_unlock_irqrestore` of flags saved with irqs on (and `spin_unlock_irq`); of flags
    /// saved with irqs off, with [`Restore::IRQ_WAS_DISABLED`] too ([`Restore::irq`]).
    const IRQ_ENABLED: Restore = Restore(Restore::IRQ);
    /// `spin_unlock_bh`.
    const BH: Restore = Restore(Restore::BH_BIT);

    /// The bit of a release that restores saved irq flags.
    const IRQ: u8 = 1;
    /// With [`Restore::IRQ`]: the flags were saved with irqs off.
    const IRQ_WAS_DISABLED: u8 = 2;
    /// The bit of a release that enables softirqs (`local_bh_enable()`).
    const BH_BIT: u8 = 4;

    /// The release of a lock taken after `local_irq_save()` returned `flags`.
    fn irq(flags: IrqFlags) -> Restore {
        Restore(Restore::IRQ | (u8::from(flags.was_disabled()) * Restore::IRQ_WAS_DISABLED))
    }

    /// Lockdep's release of acquisition `token` of the lock whose memo is `key`
    /// ([`Cx::lock_release_key`], inlined here), then [`Restore::apply`]: a call of its own, so
    /// that the guard's drop ends in one call, a jump, whichever release it is (the two calls
    /// written in the drop were merged into one followed by the test), and a release that
    /// restores makes no more calls than before.
    #[inline(never)]
    fn release_then_apply(self, cx: &Cx, key: &ClassKey, token: u64) {
        cx.lock_release_key_inline(key, token);
        self.apply(cx);
    }

    /// What the release does besides the unlock, on `cx`: nothing, restore the saved irq flags,
    /// or enable softirqs.
    #[inline]
    fn apply(self, cx: &Cx) {
        if self.0 == 0 {
            return;
        }
        if self.0 & Restore::IRQ != 0 {
            let flags =
                if self.0 & Restore::IRQ_WAS_DISABLED != 0 { IrqFlags::DISABLED } else { IrqFlags::ENABLED };
            cx.local_irq_restore(flags);
        } else {
            cx.local_bh_enable();
        }
    }
}

impl<T> SpinLock<T> {
    /// A spinlock of lock class `class` (`DEFINE_SPINLOCK`, `spin_lock_init`).
    pub fn new(class: &'static str, value: T) -> Self {
        SpinLock { key: ClassKey::new(class), inner: sync::Mutex::new(value) }
    }

    /// The lock class name.
    pub fn class(&self) -> &'static str {
        self.key.name
    }

    /// `spin_lock()`.
    #[track_caller]
    pub fn lock<'a>(&'a self, cx: &'a Cx) -> SpinLockGuard<'a, T> {
        self.acquire(cx, LockMode::Spin, Restore::NOTHING, Location::caller())
    }

    /// `spin_lock_irqsave()`: also disables local irqs until the guard drops.
    #[track_caller]
    pub fn lock_irqsave<'a>(&'a self, cx: &'a Cx) -> SpinLockGuard<'a, T> {
        let flags = cx.local_irq_save();
        self.acquire(cx, LockMode::SpinIrq, Restore::irq(flags), Location::caller())
    }

    /// `spin_lock_irq()`: disables local irqs until the guard drops, and the drop
    /// (`spin_unlock_irq()`) enables them unconditionally, saving nothing. A caller that
    /// already runs with irqs off would have them turned on under it at the unlock, inside a
    /// section it believes irq-safe; the kernel leaves that to review (lockdep notices only if
    /// an interrupt then takes a lock the outer section holds), so it is reported here at the
    /// lock: [`SPIN_LOCK_IRQ_WITH_IRQS_OFF`], once per acquisition, before the lock is taken.
    #[track_caller]
    pub fn lock_irq<'a>(&'a self, cx: &'a Cx) -> SpinLockGuard<'a, T> {
        let site = Location::caller();
        if cx.irqs_disabled() && !cx.is_observer() {
            report_lock_irq_with_irqs_off(cx, self.key.name, site);
        }
        // local_irq_disable(); the unlock's local_irq_enable() is a restore to "on", so the
        // guard's release is spin_unlock_irqrestore()'s with no new case on every unlock.
        let _ = cx.local_irq_save();
        self.acquire(cx, LockMode::SpinIrq, Restore::IRQ_ENABLED, site)
    }

    /// `spin_lock_bh()`: also disables softirqs on this CPU until the guard drops, for a lock
    /// that a softirq handler takes too.
    #[track_caller]
    pub fn lock_bh<'a>(&'a self, cx: &'a Cx) -> SpinLockGuard<'a, T> {
        cx.local_bh_disable();
        self.acquire(cx, LockMode::SpinBh, Restore::BH, Location::caller())
    }

    /// `spin_trylock()`.
    #[track_caller]
    pub fn try_lock<'a>(&'a self, cx: &'a Cx) -> Option<SpinLockGuard<'a, T>> {
        let token = cx.lock_acquire_key(&self.key, LockMode::Spin, true, Location::caller());
        match self.inner.try_lock() {
            Some(guard) => {
                cx.preempt_disable();
                cx.lock_acquired_key(&self.key, LockMode::Spin, true, token);
                Some(SpinLockGuard {
                    guard: ManuallyDrop::new(Some(guard)),
                    cx,
                    key: &self.key,
                    token,
                    restore: Restore::NOTHING,
                })
            }
            None => {
                cx.lock_acquire_failed(token);
                None
            }
        }
    }

    /// A call of its own: inlined into every caller (`#[inline(always)]`), it cut taskstats'
    /// acquisitions by about 26 instructions an operation but moved LLVM's inlining elsewhere
    /// in mbcache 2.6 (`Subject::apply` out of `run_case`), +52 an operation (callgrind).
    fn acquire<'a>(
        &'a self,
        cx: &'a Cx,
        mode: LockMode,
        restore: Restore,
        site: &'static Location<'static>,
    ) -> SpinLockGuard<'a, T> {
        let (guard, token) = cx.acquire_with(&self.key, mode, site, || {
            cx.preempt_disable();
            self.inner.lock()
        });
        SpinLockGuard { guard: ManuallyDrop::new(Some(guard)), cx, key: &self.key, token, restore }
    }

    /// A checker's read of the value through observer context `cx`, without the lock round
    /// trip where none is owed: [`crate::rwlock::RwLock::observe_read`]'s rule for a spinlock.
    /// Outside a shuttle execution or a loom model the lock itself is taken with `try_lock`,
    /// which never blocks and succeeds exactly when no task holds it: no held-stack entry,
    /// token, preemption count or trace event, none of which an observer's acquisition shows
    /// anyone. With the lock held, or inside those checkers (where an observer's acquisition is
    /// a scheduling point that pinned windows count), it is `spin_lock()`'s round trip as
    /// before. Inside `f` the context does not hold the lock ([`Cx::holds`] says so). Panics
    /// for a model context, whose acquisitions lockdep and the trace must see.
    #[track_caller]
    pub fn observe<R>(&self, cx: &Cx, f: impl FnOnce(&T) -> R) -> R {
        assert!(cx.is_observer(), "{}: observe is a checker's read, through an observer context", cx.name());
        if !cx.sim().world.threaded {
            if let Some(value) = self.inner.try_lock() {
                return f(&value);
            }
        }
        f(&self.lock(cx))
    }

    /// The value, when the lock is no longer shared.
    pub fn into_inner(self) -> T {
        self.inner.into_inner()
    }
}

impl<T> Deref for SpinLockGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        self.guard.as_ref().expect("guard present until drop")
    }
}

impl<T> DerefMut for SpinLockGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        self.guard.as_mut().expect("guard present until drop")
    }
}

impl<T> Drop for SpinLockGuard<'_, T> {
    /// The unlock, then preemption enabled, then lockdep's release and trace event, then what
    /// the release restores (irqs, softirqs), which lockdep must not see the lock held across.
    /// Preemption comes back before lockdep's release (the kernel's `preempt_enable()` comes
    /// last), which no checker can tell apart (the count is bookkeeping that nothing traces or
    /// reads at a release), so that for `spin_unlock()` the release is the drop's last call, a
    /// jump, and the drop keeps nothing live across a call (with the backend guard kept from the
    /// drop glue, 23 instructions fewer a `spin_lock()` round trip, and the drop small enough to
    /// inline).
    fn drop(&mut self) {
        sync::Release::release(&mut self.guard);
        self.cx.preempt_enable();
        if self.restore != Restore::NOTHING {
            return self.restore.release_then_apply(self.cx, self.key, self.token);
        }
        self.cx.lock_release_key(self.key, self.token);
    }
}

impl<T> fmt::Debug for SpinLockGuard<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SpinLockGuard({})", self.key.name)
    }
}

// --- Mutex ------------------------------------------------------------------------------------

/// `struct mutex`: a sleeping lock.
pub struct Mutex<T> {
    key: ClassKey,
    inner: sync::Mutex<T>,
}

impl<T> fmt::Debug for Mutex<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Mutex").field("class", &self.key.name).finish_non_exhaustive()
    }
}

/// A held [`Mutex`]; `mutex_unlock` on drop.
pub struct MutexGuard<'a, T> {
    /// The backend guard, released by the drop as [`SpinLockGuard`]'s is.
    guard: ManuallyDrop<Option<sync::MutexGuard<'a, T>>>,
    cx: &'a Cx,
    key: &'a ClassKey,
    token: u64,
}

impl<T> Mutex<T> {
    /// A mutex of lock class `class` (`DEFINE_MUTEX`, `mutex_init`).
    pub fn new(class: &'static str, value: T) -> Self {
        Mutex { key: ClassKey::new(class), inner: sync::Mutex::new(value) }
    }

    /// The lock class name.
    pub fn class(&self) -> &'static str {
        self.key.name
    }

    /// `mutex_lock()`: may sleep.
    #[track_caller]
    pub fn lock<'a>(&'a self, cx: &'a Cx) -> MutexGuard<'a, T> {
        let site = Location::caller();
        cx.might_sleep("mutex_lock");
        let (guard, token) = cx.acquire_with(&self.key, LockMode::Mutex, site, || self.inner.lock());
        MutexGuard { guard: ManuallyDrop::new(Some(guard)), cx, key: &self.key, token }
    }

    /// `mutex_trylock()`: never sleeps.
    #[track_caller]
    pub fn try_lock<'a>(&'a self, cx: &'a Cx) -> Option<MutexGuard<'a, T>> {
        let token = cx.lock_acquire_key(&self.key, LockMode::Mutex, true, Location::caller());
        match self.inner.try_lock() {
            Some(guard) => {
                cx.lock_acquired_key(&self.key, LockMode::Mutex, true, token);
                Some(MutexGuard { guard: ManuallyDrop::new(Some(guard)), cx, key: &self.key, token })
            }
            None => {
                cx.lock_acquire_failed(token);
                None
            }
        }
    }

    /// A checker's read of the value through observer context `cx`, without the lock round
    /// trip where none is owed: [`SpinLock::observe`]'s rule for a mutex (an observer's
    /// `mutex_lock()` neither sleeps nor is traced, so its round trip shows nobody anything).
    /// Outside a shuttle execution or a loom model the value's own lock is taken with
    /// `try_lock`, which never blocks and succeeds exactly when no task holds the mutex; with
    /// the mutex held, or inside those checkers (where an observer's acquisition is a scheduling
    /// point), it is `mutex_lock()`'s round trip. Inside `f` the context does not hold the mutex.
    /// Panics for a model context, whose acquisitions lockdep and the trace must see.
    #[track_caller]
    pub fn observe<R>(&self, cx: &Cx, f: impl FnOnce(&T) -> R) -> R {
        assert!(cx.is_observer(), "{}: observe is a checker's read, through an observer context", cx.name());
        if !cx.sim().world.threaded {
            if let Some(value) = self.inner.try_lock() {
                return f(&value);
            }
        }
        f(&self.lock(cx))
    }

    /// The value, when the lock is no longer shared.
    pub fn into_inner(self) -> T {
        self.inner.into_inner()
    }
}

impl<T> Deref for MutexGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        self.guard.as_ref().expect("guard present until drop")
    }
}

impl<T> DerefMut for MutexGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        self.guard.as_mut().expect("guard present until drop")
    }
}

impl<T> Drop for MutexGuard<'_, T> {
    fn drop(&mut self) {
        sync::Release::release(&mut self.guard);
        self.cx.lock_release_key(self.key, self.token);
    }
}

impl<T> fmt::Debug for MutexGuard<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "MutexGuard({})", self.key.name)
    }
}

// --- RwSem ------------------------------------------------------------------------------------

#[derive(Debug, Default)]
struct RwSemState {
    readers: u32,
    writer: bool,
    writers_waiting: u32,
}

/// `struct rw_semaphore` with the kernel's writer preference: once a writer is queued, a new
/// reader waits behind it. A reader that takes the semaphore twice can therefore deadlock against
/// a writer that queued in between, as in the kernel (and lockdep reports the recursion).
///
/// Admission follows the kernel's rules in a small state machine (a mutex and a condition
/// variable of the facade, so loom and shuttle see every wait and every ordering). The value sits
/// in a `std::sync::RwLock` that admission guarantees never blocks: readers are admitted only
/// while no writer is, a writer only once every reader has dropped its hold. It is not a facade
/// lock because it must allow one thread several read holds (the recursion above), which loom's
/// and shuttle's reader tracking does not; it adds no interleavings of its own, and it keeps this
/// safe Rust.
pub struct RwSem<T> {
    key: ClassKey,
    state: sync::Mutex<RwSemState>,
    changed: sync::Condvar,
    data: std::sync::RwLock<T>,
}

impl<T> fmt::Debug for RwSem<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RwSem").field("class", &self.key.name).finish_non_exhaustive()
    }
}

/// A read hold of a [`RwSem`]; `up_read` on drop.
pub struct RwSemReadGuard<'a, T> {
    guard: Option<std::sync::RwLockReadGuard<'a, T>>,
    sem: &'a RwSem<T>,
    cx: &'a Cx,
    token: u64,
}

/// A write hold of a [`RwSem`]; `up_write` on drop.
pub struct RwSemWriteGuard<'a, T> {
    guard: Option<std::sync::RwLockWriteGuard<'a, T>>,
    sem: &'a RwSem<T>,
    cx: &'a Cx,
    token: u64,
}

impl<T> RwSem<T> {
    /// A semaphore of lock class `class` (`DECLARE_RWSEM`, `init_rwsem`).
    pub fn new(class: &'static str, value: T) -> Self {
        RwSem {
            key: ClassKey::new(class),
            state: sync::Mutex::new(RwSemState::default()),
            changed: sync::Condvar::new(),
            data: std::sync::RwLock::new(value),
        }
    }

    /// The lock class name.
    pub fn class(&self) -> &'static str {
        self.key.name
    }

    /// `down_read()`: waits while a writer holds the semaphore or is queued for it.
    #[track_caller]
    pub fn down_read<'a>(&'a self, cx: &'a Cx) -> RwSemReadGuard<'a, T> {
        let site = Location::caller();
        cx.might_sleep("down_read");
        let (guard, token) = cx.acquire_with(&self.key, LockMode::Read, site, || {
            let mut state = self.state.lock();
            while state.writer || state.writers_waiting > 0 {
                state = self.changed.wait(state);
            }
            state.readers += 1;
            drop(state);
            self.data.read().unwrap_or_else(|poisoned| poisoned.into_inner())
        });
        RwSemReadGuard { guard: Some(guard), sem: self, cx, token }
    }

    /// `down_read_trylock()`.
    #[track_caller]
    pub fn down_read_trylock<'a>(&'a self, cx: &'a Cx) -> Option<RwSemReadGuard<'a, T>> {
        let token = cx.lock_acquire_key(&self.key, LockMode::Read, true, Location::caller());
        let mut state = self.state.lock();
        if state.writer || state.writers_waiting > 0 {
            drop(state);
            cx.lock_acquire_failed(token);
            return None;
        }
        state.readers += 1;
        drop(state);
        let guard = self.data.read().unwrap_or_else(|poisoned| poisoned.into_inner());
        cx.lock_acquired_key(&self.key, LockMode::Read, true, token);
        Some(RwSemReadGuard { guard: Some(guard), sem: self, cx, token })
    }

    /// `down_write()`: queues, which stops new readers, then waits for the holders to leave.
    #[track_caller]
    pub fn down_write<'a>(&'a self, cx: &'a Cx) -> RwSemWriteGuard<'a, T> {
        let site = Location::caller();
        cx.might_sleep("down_write");
        let (guard, token) = cx.acquire_with(&self.key, LockMode::Write, site, || {
            let mut state = self.state.lock();
            state.writers_waiting += 1;
            while state.writer || state.readers > 0 {
                state = self.changed.wait(state);
            }
            state.writers_waiting -= 1;
            state.writer = true;
            drop(state);
            self.data.write().unwrap_or_else(|poisoned| poisoned.into_inner())
        });
        RwSemWriteGuard { guard: Some(guard), sem: self, cx, token }
    }

    /// `down_write_trylock()`.
    #[track_caller]
    pub fn down_write_trylock<'a>(&'a self, cx: &'a Cx) -> Option<RwSemWriteGuard<'a, T>> {
        let token = cx.lock_acquire_key(&self.key, LockMode::Write, true, Location::caller());
        let mut state = self.state.lock();
        if state.writer || state.readers > 0 {
            drop(state);
            cx.lock_acquire_failed(token);
            return None;
        }
        state.writer = true;
        drop(state);
        let guard = self.data.write().unwrap_or_else(|poisoned| poisoned.into_inner());
        cx.lock_acquired_key(&self.key, LockMode::Write, true, token);
        Some(RwSemWriteGuard { guard: Some(guard), sem: self, cx, token })
    }

    /// A checker's read of the value through observer context `cx`, without the `down_read()`
    /// round trip where none is owed: [`crate::rwlock::RwLock::observe_read`]'s rule for a
    /// semaphore. Outside a shuttle execution or a loom model the value's own `std` lock is
    /// taken with `try_read`, which never blocks and succeeds exactly when no writer holds the
    /// semaphore (readers the model left holding it share it, as `down_read()` would): no
    /// admission count, held-stack entry, token or trace event, none of which an observer's
    /// hold shows anyone. A writer only queued in the admission state (none is, between
    /// operations of the op-level simulation) does not stop the look; once admitted it waits
    /// on the `std` lock for `f` to return, so `f` never sees a write half done. With a writer
    /// holding it, or inside those checkers (where an observer's `down_read()` is a scheduling
    /// point that pinned windows count), it is `down_read()`'s round trip as before. Inside
    /// `f` the context does not hold the semaphore ([`Cx::holds`] says so). Panics for a model
    /// context, whose acquisitions lockdep and the trace must see.
    #[track_caller]
    pub fn observe_read<R>(&self, cx: &Cx, f: impl FnOnce(&T) -> R) -> R {
        assert!(
            cx.is_observer(),
            "{}: observe_read is a checker's read, through an observer context",
            cx.name()
        );
        if !cx.sim().world.threaded {
            if let Ok(value) = self.data.try_read() {
                return f(&value);
            }
        }
        f(&self.down_read(cx))
    }

    /// The value, when the semaphore is no longer shared.
    pub fn into_inner(self) -> T {
        self.data.into_inner().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl<T> Deref for RwSemReadGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        self.guard.as_ref().expect("guard present until drop")
    }
}

impl<T> Drop for RwSemReadGuard<'_, T> {
    fn drop(&mut self) {
        self.guard = None;
        if std::thread::panicking() {
            self.cx.lock_release_key(&self.sem.key, self.token);
            return;
        }
        let mut state = self.sem.state.lock();
        state.readers -= 1;
        let wake = state.readers == 0;
        drop(state);
        if wake {
            self.sem.changed.notify_all();
        }
        self.cx.lock_release_key(&self.sem.key, self.token);
    }
}

impl<T> Deref for RwSemWriteGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        self.guard.as_ref().expect("guard present until drop")
    }
}

impl<T> DerefMut for RwSemWriteGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        self.guard.as_mut().expect("guard present until drop")
    }
}

impl<T> Drop for RwSemWriteGuard<'_, T> {
    fn drop(&mut self) {
        self.guard = None;
        if std::thread::panicking() {
            self.cx.lock_release_key(&self.sem.key, self.token);
            return;
        }
        self.sem.state.lock().writer = false;
        self.sem.changed.notify_all();
        self.cx.lock_release_key(&self.sem.key, self.token);
    }
}

impl<T> fmt::Debug for RwSemReadGuard<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RwSemReadGuard({})", self.sem.key.name)
    }
}

impl<T> fmt::Debug for RwSemWriteGuard<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RwSemWriteGuard({})", self.sem.key.name)
    }
}

// --- WaitQueue and Completion -----------------------------------------------------------------

/// `wait_queue_head_t`: tasks sleep until a condition holds; `wake_up` makes them look again.
///
/// A wake-up bumps a generation number, and a waiter sleeps only while the generation it saw
/// before testing the condition is current, so a wake-up between the test and the sleep is never
/// lost (the role `prepare_to_wait`'s ordering plays in the kernel). The condition is evaluated
/// with no lock of the queue's held, as in the kernel, so it may take model locks.
///
/// In the single-threaded op-level simulation nobody else can make a false condition true, so
/// a model must only wait there on conditions another actor in the same thread has already met.
pub struct WaitQueue {
    name: &'static str,
    generation: sync::Mutex<u64>,
    changed: sync::Condvar,
}

impl fmt::Debug for WaitQueue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WaitQueue").field("name", &self.name).finish_non_exhaustive()
    }
}

impl WaitQueue {
    /// `init_waitqueue_head()`.
    pub fn new(name: &'static str) -> Self {
        WaitQueue { name, generation: sync::Mutex::new(0), changed: sync::Condvar::new() }
    }

    /// `wait_event()`: sleeps until `condition` returns true. A sleeping call.
    #[track_caller]
    pub fn wait_event(&self, cx: &Cx, mut condition: impl FnMut() -> bool) {
        cx.might_sleep("wait_event");
        loop {
            let seen = *self.generation.lock();
            if condition() {
                return;
            }
            let mut generation = self.generation.lock();
            while *generation == seen {
                generation = self.changed.wait(generation);
            }
        }
    }

    /// `wake_up()` / `wake_up_all()`: every waiter tests its condition again.
    pub fn wake_up(&self) {
        *self.generation.lock() += 1;
        self.changed.notify_all();
    }
}

/// `struct completion`.
pub struct Completion {
    done: sync::Mutex<u32>,
    changed: sync::Condvar,
}

impl fmt::Debug for Completion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Completion").finish_non_exhaustive()
    }
}

impl Default for Completion {
    fn default() -> Self {
        Completion::new()
    }
}

/// `complete_all()` sets `done` to this, as the kernel sets UINT_MAX.
const COMPLETE_ALL: u32 = u32::MAX;

impl Completion {
    /// `init_completion()`.
    pub fn new() -> Self {
        Completion { done: sync::Mutex::new(0), changed: sync::Condvar::new() }
    }

    /// `complete()`: lets one waiter through.
    pub fn complete(&self) {
        let mut done = self.done.lock();
        if *done != COMPLETE_ALL {
            *done += 1;
        }
        drop(done);
        self.changed.notify_all();
    }

    /// `complete_all()`: lets every waiter through, now and later.
    pub fn complete_all(&self) {
        *self.done.lock() = COMPLETE_ALL;
        self.changed.notify_all();
    }

    /// `wait_for_completion()`: a sleeping call.
    #[track_caller]
    pub fn wait_for_completion(&self, cx: &Cx) {
        cx.might_sleep("wait_for_completion");
        let mut done = self.done.lock();
        while *done == 0 {
            done = self.changed.wait(done);
        }
        if *done != COMPLETE_ALL {
            *done -= 1;
        }
    }

    /// `try_wait_for_completion()`: true when it consumed a completion without waiting.
    pub fn try_wait_for_completion(&self) -> bool {
        let mut done = self.done.lock();
        if *done == 0 {
            return false;
        }
        if *done != COMPLETE_ALL {
            *done -= 1;
        }
        true
    }

    /// `completion_done()`.
    pub fn completion_done(&self) -> bool {
        *self.done.lock() != 0
    }

    /// `reinit_completion()`.
    pub fn reinit(&self) {
        *self.done.lock() = 0;
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::{Mutex, RwSem};
    use crate::lockdep::ReportMode;
    use crate::{Cx, Sim, SimConfig, SpinLock};

    /// Between operations an observer's [`SpinLock::observe`] reads the value the model left,
    /// with no held-stack entry or preemption count while `f` runs (a path that still took the
    /// lock would show both), nothing traced, and the lock free again afterwards.
    #[test]
    fn an_observer_s_look_between_operations_takes_no_round_trip() {
        let write: Write<SpinLock<u32>> = |lock, cx, value| *lock.lock(cx) = value;
        let look: Look<SpinLock<u32>> = |lock, cx, f| lock.observe(cx, f);
        an_observer_s_look_takes_no_round_trip(
            SpinLock::new("mb_cache_spinlock", 0),
            ("insert", write),
            look,
        );
    }

    /// `spin_lock_irq()` turns irqs off and its unlock turns them on again, saving nothing: a
    /// section entered with irqs on leaves them on and reports nothing; one entered inside a
    /// `spin_lock_irqsave()` section is reported ([`super::SPIN_LOCK_IRQ_WITH_IRQS_OFF`], naming
    /// the class) and its unlock leaves irqs on under the outer section, as the kernel's does.
    /// A `lock_irq` that saved and restored, or checked nothing, fails one of the asserts.
    #[test]
    fn lock_irq_enables_irqs_at_unlock_and_reports_a_caller_with_them_off() {
        let sim = Sim::new(SimConfig::new(1).lockdep(ReportMode::Collect));
        let cx = sim.cx("task", 0);
        let (outer, inner) = (SpinLock::new("outer_lock", 0u32), SpinLock::new("sighand->siglock", 0u32));
        {
            let mut guard = inner.lock_irq(&cx);
            *guard += 1;
            assert!(cx.irqs_disabled(), "spin_lock_irq() disables irqs");
        }
        assert!(!cx.irqs_disabled(), "spin_unlock_irq() enables them");
        assert!(sim.violations().is_empty(), "irqs were on at the lock: {:?}", sim.violations());
        let saved = outer.lock_irqsave(&cx);
        drop(inner.lock_irq(&cx));
        assert!(!cx.irqs_disabled(), "the unlock enabled irqs under the irqsave section");
        drop(saved);
        assert!(!cx.irqs_disabled(), "the outer restore finds them as they were at its lock");
        let violations = sim.violations();
        assert_eq!(violations.len(), 1, "{violations:?}");
        assert_eq!(violations[0].kind, crate::ViolationKind::from(super::SPIN_LOCK_IRQ_WITH_IRQS_OFF));
        assert!(violations[0].message.contains("sighand->siglock"), "{}", violations[0].message);
    }

    /// Each spinlock release gives back what its lock took, whatever sat around it: a
    /// `spin_unlock_irqrestore()` of flags saved with irqs on turns them on, one of flags saved
    /// with irqs off leaves them off, `spin_unlock_bh()` enables softirqs again, and
    /// `spin_unlock()` touches neither. A release that read its restore bits wrongly (the
    /// saved-off bit ignored, the bh bit taken for an irq restore) fails one of the asserts.
    #[test]
    fn each_spinlock_release_restores_what_its_lock_saved() {
        let sim = Sim::new(SimConfig::new(1).lockdep(ReportMode::Collect));
        let cx = sim.cx("task", 0);
        let (outer, inner, bh) =
            (SpinLock::new("outer_lock", ()), SpinLock::new("inner_lock", ()), SpinLock::new("bh_lock", ()));
        let outer_guard = outer.lock_irqsave(&cx);
        let inner_guard = inner.lock_irqsave(&cx);
        drop(inner_guard);
        assert!(cx.irqs_disabled(), "the inner restore of flags saved with irqs off leaves them off");
        drop(outer_guard);
        assert!(!cx.irqs_disabled(), "the outer restore of flags saved with irqs on turns them on");
        let bh_guard = bh.lock_bh(&cx);
        assert!(!cx.softirqs_enabled(), "spin_lock_bh() disables softirqs");
        let plain = inner.lock(&cx);
        drop(plain);
        assert!(!cx.softirqs_enabled() && !cx.irqs_disabled(), "spin_unlock() restores nothing");
        drop(bh_guard);
        assert!(cx.softirqs_enabled() && !cx.irqs_disabled(), "spin_unlock_bh() enables softirqs, not irqs");
        assert!(sim.violations().is_empty(), "{:?}", sim.violations());
    }

    /// A model's section that writes the value.
    pub(crate) type Write<L> = fn(&L, &Cx, u32);
    /// An observer's read of the value, running the function on it.
    pub(crate) type Look<L> = fn(&L, &Cx, &mut dyn FnMut(&u32) -> u32) -> u32;

    /// Task `writer` writes 5 through `write`; the observer's `look` must then read it with no
    /// held-stack entry and no preemption count while its function runs (a path that still took
    /// the lock would show them), trace nothing, and leave the lock free: the model's next write
    /// (which would wait forever on an admission state left counting a reader) is read back. The
    /// shared shape of the observer reads' tests (`SpinLock`, `RwSem`, `RwLock`).
    pub(crate) fn an_observer_s_look_takes_no_round_trip<L>(
        lock: L,
        (writer, write): (&'static str, Write<L>),
        look: Look<L>,
    ) {
        let sim = Sim::new(SimConfig::new(1).lockdep(ReportMode::Collect));
        let model = sim.cx(writer, 0);
        write(&lock, &model, 5);
        let trace_before = sim.trace_hash();
        let observer = sim.observer_cx("check", 0);
        let seen = look(&lock, &observer, &mut |value| {
            assert_eq!(observer.held_count(), 0, "no lock entry: the look took no round trip");
            assert!(!observer.in_atomic(), "no preemption count either");
            *value
        });
        assert_eq!(seen, 5);
        assert_eq!(sim.trace_hash(), trace_before, "an observer's look is not traced");
        write(&lock, &model, 6);
        assert_eq!(look(&lock, &observer, &mut |value| *value), 6, "the model's next write is seen");
        assert!(sim.lockdep().reports().is_empty(), "{:#?}", sim.lockdep().reports());
    }

    /// With a task holding the lock on another thread, the look waits for the release and sees
    /// what the holder wrote last.
    #[test]
    fn an_observer_s_look_waits_for_the_holder() {
        let hold = |lock: &SpinLock<u32>, cx: &Cx, meanwhile: &dyn Fn()| {
            let mut held = lock.lock(cx);
            *held = 1;
            meanwhile();
            *held = 2;
        };
        an_observer_waits_for_the_holder(
            SpinLock::new("mb_cache_spinlock", 0),
            ("shrink", hold),
            |lock, cx| lock.observe(cx, |value| *value),
        );
    }

    /// A model task's section: takes the lock and runs the callback while it holds it.
    pub(crate) type Hold<L> = fn(&L, &Cx, &dyn Fn());

    /// Runs `hold` in task `holder` on another thread (it takes `lock`, writes 1, calls
    /// `meanwhile`, writes 2 and releases); `meanwhile` lets the checker start and pauses, so the
    /// checker's `observe` runs while the lock is held: it must wait for the release and return
    /// 2. The shared shape of the observer reads' tests (`SpinLock`, `RwSem`, `RwLock`).
    pub(crate) fn an_observer_waits_for_the_holder<L: Send + Sync + 'static>(
        lock: L,
        (holder, hold): (&'static str, Hold<L>),
        observe: impl FnOnce(&L, &Cx) -> u32,
    ) {
        let sim = Sim::new(SimConfig::new(1).lockdep(ReportMode::Collect));
        let lock = std::sync::Arc::new(lock);
        let holding = std::sync::Arc::new(std::sync::Barrier::new(2));
        let thread = {
            let (lock, holding, cx) = (lock.clone(), holding.clone(), sim.cx(holder, 0));
            std::thread::spawn(move || {
                let meanwhile = || {
                    holding.wait();
                    std::thread::sleep(std::time::Duration::from_millis(50));
                };
                hold(&lock, &cx, &meanwhile);
            })
        };
        holding.wait();
        assert_eq!(observe(&lock, &sim.observer_cx("check", 1)), 2, "read only after the release");
        thread.join().expect("holder");
    }

    /// Between operations an observer's [`RwSem::observe_read`] reads the value the last writer
    /// left with no held-stack entry while `f` runs (a path that still took the semaphore would
    /// show one), nothing traced or reported, and the semaphore free for the model afterwards (a
    /// look that left the admission state counting a reader would make the next `down_write()`
    /// wait forever; the write below completes).
    #[test]
    fn an_observer_s_semaphore_read_between_operations_takes_no_round_trip() {
        let write: Write<RwSem<u32>> = |sem, cx, value| *sem.down_write(cx) = value;
        let look: Look<RwSem<u32>> = |sem, cx, f| sem.observe_read(cx, f);
        an_observer_s_look_takes_no_round_trip(RwSem::new("listeners->sem", 0), ("register", write), look);
    }

    /// A reader the model left holding the semaphore does not stop an observer's read: readers
    /// share it, as `down_read()` would have let the observer in.
    #[test]
    fn an_observer_s_semaphore_read_enters_beside_a_model_reader() {
        let read: Hold<RwSem<u32>> = |sem, cx, meanwhile| {
            let _held = sem.down_read(cx);
            meanwhile();
        };
        let look: Look<RwSem<u32>> = |sem, cx, f| sem.observe_read(cx, f);
        an_observer_enters_beside_a_model_reader(
            RwSem::new("listeners->sem", 5),
            ("send_cpu_listeners", read),
            look,
        );
    }

    /// Task `reader` holds the lock for reading (`read`) while the observer's `look` reads the
    /// value (5): it must enter and return it. The shared shape of `RwSem`'s and `RwLock`'s tests.
    pub(crate) fn an_observer_enters_beside_a_model_reader<L>(
        lock: L,
        (reader, read): (&'static str, Hold<L>),
        look: Look<L>,
    ) {
        let sim = Sim::new(SimConfig::new(1).lockdep(ReportMode::Collect));
        let observer = sim.observer_cx("check", 0);
        let meanwhile = || assert_eq!(look(&lock, &observer, &mut |value| *value), 5, "beside the reader");
        read(&lock, &sim.cx(reader, 0), &meanwhile);
        assert!(sim.lockdep().reports().is_empty(), "{:#?}", sim.lockdep().reports());
    }

    /// With a writer holding the semaphore on another thread, the observer's read waits for the
    /// write to end and sees what it wrote: the fast path only reads a value no writer holds.
    #[test]
    fn an_observer_s_semaphore_read_waits_for_a_writer_that_holds_it() {
        let hold = |sem: &RwSem<u32>, cx: &Cx, meanwhile: &dyn Fn()| {
            let mut write = sem.down_write(cx);
            *write = 1;
            meanwhile();
            *write = 2;
        };
        an_observer_waits_for_the_holder(RwSem::new("listeners->sem", 0), ("deregister", hold), |sem, cx| {
            sem.observe_read(cx, |value| *value)
        });
    }

    /// A model context's `down_read()` is kernel code: never this path.
    #[test]
    #[should_panic(expected = "observe_read is a checker's read")]
    fn a_model_context_may_not_observe_a_semaphore() {
        let sim = Sim::new(SimConfig::new(1));
        RwSem::new("listeners->sem", 0u32).observe_read(&sim.cx("register", 0), |value| *value);
    }

    /// [`Mutex::observe`] between operations: the value the model left, no round trip (no
    /// held-stack entry while `f` runs), nothing traced, the mutex free for the model after.
    #[test]
    fn an_observer_s_mutex_look_between_operations_takes_no_round_trip() {
        let write: Write<Mutex<u32>> = |mutex, cx, value| *mutex.lock(cx) = value;
        let look: Look<Mutex<u32>> = |mutex, cx, f| mutex.observe(cx, f);
        an_observer_s_look_takes_no_round_trip(Mutex::new("bh->b_lock", 0), ("setxattr", write), look);
    }

    /// With a task holding the mutex on another thread, [`Mutex::observe`] waits for the release
    /// and sees what the holder wrote last: the fast path only reads a value nobody holds.
    #[test]
    fn an_observer_s_mutex_look_waits_for_the_holder() {
        let hold = |mutex: &Mutex<u32>, cx: &Cx, meanwhile: &dyn Fn()| {
            let mut held = mutex.lock(cx);
            *held = 1;
            meanwhile();
            *held = 2;
        };
        an_observer_waits_for_the_holder(
            Mutex::new("bh->b_lock", 0),
            ("release_block", hold),
            |mutex, cx| mutex.observe(cx, |value| *value),
        );
    }

    /// A model context's `mutex_lock()` is kernel code: never this path.
    #[test]
    #[should_panic(expected = "observe is a checker's read")]
    fn a_model_context_may_not_observe_a_mutex() {
        let sim = Sim::new(SimConfig::new(1));
        Mutex::new("bh->b_lock", 0u32).observe(&sim.cx("setxattr", 0), |value| *value);
    }

    /// A model context's acquisition is kernel code: never this path.
    #[test]
    #[should_panic(expected = "observe is a checker's read")]
    fn a_model_context_may_not_look() {
        let sim = Sim::new(SimConfig::new(1));
        SpinLock::new("mb_cache_spinlock", 0u32).observe(&sim.cx("insert", 0), |value| *value);
    }
}
