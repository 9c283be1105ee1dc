//! The one facade that swaps the synchronisation backend; no other file names the backends.
//!
//! - default: `parking_lot` locks and `std` atomics, threads and `Arc`;
//! - cargo feature `threaded` (the ksim CLI and the tests crate turn it on; no RUSTFLAGS): a
//!   runtime backend. Each primitive is an enum of the default variant, shuttle's and loom's
//!   (those two boxed, so an object is its default variant's size and a word: a kernel object
//!   holding a dozen primitives is not kilobytes to copy into its `Arc`), chosen when the object
//!   is made: loom's when the making thread runs a model under
//!   [`crate::loom_runner`] (the zoo's loom column and every loom test), shuttle's when it is
//!   inside a shuttle execution (a threaded campaign, [`crate::threaded`], and the shuttle tests),
//!   the default otherwise. A model built inside a checker therefore runs entirely on that
//!   checker's objects, and one built outside never touches either; the price outside is one
//!   predictable match per operation (ARCHITECTURE.md). `Arc` is std's on every side, so loom
//!   does not branch on reference counts (nor report a leaked `Arc`). There is no `--cfg loom`
//!   or `--cfg shuttle` build any more: the loom and shuttle tests run on this backend from the
//!   ordinary test build.
//!
//! Every backend is presented with one API: `lock()` returns the guard directly (no poisoning:
//! a panic in a model is already a reported bug, and the kernel has nothing like a poisoned lock),
//! `Condvar::wait` takes and returns the guard as loom's and std's do. The kernel-named primitives
//! in [`crate::locks`] are built on these and are what models use.

#[cfg(not(feature = "threaded"))]
mod imp {
    pub use std::sync::atomic;
    pub use std::sync::Arc;
    pub use std::thread;

    /// A mutual-exclusion lock (parking_lot).
    #[derive(Debug, Default)]
    pub struct Mutex<T>(parking_lot::Mutex<T>);
    /// The guard of a [`Mutex`].
    pub type MutexGuard<'a, T> = parking_lot::MutexGuard<'a, T>;

    impl<T> Mutex<T> {
        pub fn new(value: T) -> Self {
            Mutex(parking_lot::Mutex::new(value))
        }
        pub fn lock(&self) -> MutexGuard<'_, T> {
            self.0.lock()
        }
        pub fn try_lock(&self) -> Option<MutexGuard<'_, T>> {
            self.0.try_lock()
        }
        pub fn into_inner(self) -> T {
            self.0.into_inner()
        }
    }

    /// A reader-writer lock (parking_lot).
    #[derive(Debug, Default)]
    pub struct RwLock<T>(parking_lot::RwLock<T>);
    /// Shared guard of a [`RwLock`].
    pub type RwLockReadGuard<'a, T> = parking_lot::RwLockReadGuard<'a, T>;
    /// Exclusive guard of a [`RwLock`].
    pub type RwLockWriteGuard<'a, T> = parking_lot::RwLockWriteGuard<'a, T>;

    impl<T> RwLock<T> {
        pub fn new(value: T) -> Self {
            RwLock(parking_lot::RwLock::new(value))
        }
        pub fn read(&self) -> RwLockReadGuard<'_, T> {
            self.0.read()
        }
        pub fn write(&self) -> RwLockWriteGuard<'_, T> {
            self.0.write()
        }
        pub fn into_inner(self) -> T {
            self.0.into_inner()
        }
    }

    /// `rwlock_t`'s admission ([`crate::RwLock`]): parking_lot's reader-writer lock whose reads
    /// are `read_recursive`, so a read waits only for a writer holding the lock, never for one
    /// waiting, and one thread may hold several reads.
    #[derive(Debug, Default)]
    pub struct RecursiveRwLock<T>(parking_lot::RwLock<T>);
    /// Shared guard of a [`RecursiveRwLock`].
    pub type RecursiveReadGuard<'a, T> = parking_lot::RwLockReadGuard<'a, T>;
    /// Exclusive guard of a [`RecursiveRwLock`].
    pub type RecursiveWriteGuard<'a, T> = parking_lot::RwLockWriteGuard<'a, T>;

    impl<T> RecursiveRwLock<T> {
        pub fn new(value: T) -> Self {
            RecursiveRwLock(parking_lot::RwLock::new(value))
        }
        #[inline]
        pub fn read(&self) -> RecursiveReadGuard<'_, T> {
            self.0.read_recursive()
        }
        #[inline]
        pub fn write(&self) -> RecursiveWriteGuard<'_, T> {
            self.0.write()
        }
        /// A read unless a writer holds the lock; never waits.
        pub fn try_read(&self) -> Option<RecursiveReadGuard<'_, T>> {
            self.0.try_read_recursive()
        }
        pub fn into_inner(self) -> T {
            self.0.into_inner()
        }
    }

    /// A condition variable (parking_lot), with loom's guard-passing `wait`.
    #[derive(Debug, Default)]
    pub struct Condvar(parking_lot::Condvar);

    impl Condvar {
        pub fn new() -> Self {
            Condvar(parking_lot::Condvar::new())
        }
        pub fn wait<'a, T>(&self, mut guard: MutexGuard<'a, T>) -> MutexGuard<'a, T> {
            self.0.wait(&mut guard);
            guard
        }
        pub fn notify_all(&self) {
            self.0.notify_all();
        }
        pub fn notify_one(&self) {
            self.0.notify_one();
        }
    }
}

#[cfg(feature = "threaded")]
mod dual {
    //! The runtime backend: every primitive is the default (parking_lot/std) one, shuttle's or
    //! loom's, fixed when it is made by [`in_loom`] and [`in_shuttle`]. Methods match on the
    //! variant; a guard carries its lock's variant, so a `Condvar` of one kind never meets a
    //! guard of another in a model made wholly inside or wholly outside a checker.
    //!
    //! Every method runs the same code on every side: [`both!`] writes the match arms once,
    //! [`made!`] the choice at construction, and the [`LockOps`]/[`RwOps`] adapters give all
    //! backends' locks one signature (shuttle's and loom's results unpoisoned).
    //!
    //! A checker's variant is boxed (made inside a shuttle execution or a loom model, where one
    //! allocation more is nothing): shuttle's and loom's objects are 50 to 200 bytes each, the
    //! default ones 1 to 16, and an enum is as large as its largest variant, so in place they made
    //! a `SpinLock<()>` 240 bytes, a taskstats `Signal` 1,696, and every `Arc::new` of a model
    //! object a memcpy of that size. The default arms are unchanged (the box is only followed on a
    //! checker's side); the sizes are pinned by the test `objects_are_their_default_side_and_a_word`.

    use std::cell::Cell;
    use std::ops::{Deref, DerefMut};

    pub use std::sync::Arc;

    /// Whether the calling thread runs inside a shuttle execution (a threaded campaign's case).
    #[inline]
    pub fn in_shuttle() -> bool {
        shuttle::current::try_get_current_task().is_some()
    }

    std::thread_local! {
        /// Set while this OS thread runs `loom::model` for [`crate::loom_runner`]: loom runs every
        /// model thread on the thread that called it, and offers no public way to ask whether a
        /// thread is inside a model.
        static IN_LOOM: Cell<bool> = const { Cell::new(false) };
    }

    /// Whether objects made now are loom's (the calling thread runs a loom model).
    #[inline]
    pub fn in_loom() -> bool {
        IN_LOOM.with(Cell::get)
    }

    /// [`in_loom`] true for its life, then put back as it was; made by the loom runner around
    /// `loom::model`.
    #[derive(Debug)]
    pub(crate) struct LoomScope(bool);

    impl LoomScope {
        pub(crate) fn enter() -> LoomScope {
            LoomScope(IN_LOOM.with(|flag| flag.replace(true)))
        }
    }

    impl Drop for LoomScope {
        fn drop(&mut self) {
            IN_LOOM.with(|flag| flag.set(self.0));
        }
    }

    /// The default side's types, named as [`checked`] names shuttle's, so [`made!`] can name
    /// either by one path.
    mod native {
        pub(super) use parking_lot::{Condvar, Mutex, RwLock};
        pub(super) use std::sync::atomic;
        pub(super) use std::thread;
    }

    /// Shuttle's side.
    mod checked {
        pub(super) use shuttle::sync::atomic;
        pub(super) use shuttle::sync::{Condvar, Mutex, RwLock};
        pub(super) use shuttle::thread;
    }

    /// Loom's side.
    mod loomed {
        pub(super) use loom::sync::atomic;
        pub(super) use loom::sync::{Condvar, Mutex, RwLock};
        pub(super) use loom::thread;
    }

    /// Runs the same code on whichever backend's object `value` holds:
    /// - `both!(value, Enum, x => body)`: the body's result as it is;
    /// - `both!(value, Enum => Out, x => body)`: wrapped in `Out`'s variant of the same side;
    /// - `both!(value, Enum => Option<Out>, x => body)`: an `Option` whose content is wrapped so.
    macro_rules! both {
        ($value:expr, $enum:ident, $x:ident => $body:expr) => {
            match $value {
                $enum::Native($x) => $body,
                $enum::Shuttle($x) => $body,
                $enum::Loom($x) => $body,
            }
        };
        ($value:expr, $enum:ident => Option<$out:ident>, $x:ident => $body:expr) => {
            match $value {
                $enum::Native($x) => $body.map($out::Native),
                $enum::Shuttle($x) => $body.map($out::Shuttle),
                $enum::Loom($x) => $body.map($out::Loom),
            }
        };
        ($value:expr, $enum:ident => $out:ident, $x:ident => $body:expr) => {
            match $value {
                $enum::Native($x) => $out::Native($body),
                $enum::Shuttle($x) => $out::Shuttle($body),
                $enum::Loom($x) => $out::Loom($body),
            }
        };
    }

    /// `made!(Enum, path(args))`: loom's `path` inside a loom model, shuttle's inside a shuttle
    /// execution (both boxed), the default one otherwise, in `Enum`'s variant for its side;
    /// `made!(path(args))` for a call whose result is not wrapped (a fence, a yield).
    macro_rules! made {
        ($enum:ident, $($path:ident)::+ ($($arg:expr),*)) => {
            if $crate::sync::dual::in_loom() {
                $enum::Loom(Box::new($crate::sync::dual::loomed::$($path)::+($($arg),*)))
            } else if $crate::sync::dual::in_shuttle() {
                $enum::Shuttle(Box::new($crate::sync::dual::checked::$($path)::+($($arg),*)))
            } else {
                $enum::Native($crate::sync::dual::native::$($path)::+($($arg),*))
            }
        };
        ($($path:ident)::+ ($($arg:expr),*)) => {
            if $crate::sync::dual::in_loom() {
                $crate::sync::dual::loomed::$($path)::+($($arg),*)
            } else if $crate::sync::dual::in_shuttle() {
                $crate::sync::dual::checked::$($path)::+($($arg),*)
            } else {
                $crate::sync::dual::native::$($path)::+($($arg),*)
            }
        };
    }

    /// A mutex's operations under one signature on both backends. Named apart from the
    /// backends' own methods, which would otherwise win method resolution.
    trait LockOps {
        type Value;
        type Guard<'a>
        where
            Self: 'a;
        fn acquire(&self) -> Self::Guard<'_>;
        fn try_acquire(&self) -> Option<Self::Guard<'_>>;
        fn into_value(self) -> Self::Value;
    }

    impl<T> LockOps for native::Mutex<T> {
        type Value = T;
        type Guard<'a>
            = parking_lot::MutexGuard<'a, T>
        where
            T: 'a;
        #[inline]
        fn acquire(&self) -> Self::Guard<'_> {
            self.lock()
        }
        #[inline]
        fn try_acquire(&self) -> Option<Self::Guard<'_>> {
            self.try_lock()
        }
        fn into_value(self) -> T {
            self.into_inner()
        }
    }

    /// A reader-writer lock's operations under one signature on both backends.
    trait RwOps {
        type Value;
        type Read<'a>
        where
            Self: 'a;
        type Write<'a>
        where
            Self: 'a;
        fn read_now(&self) -> Self::Read<'_>;
        fn write_now(&self) -> Self::Write<'_>;
        fn into_value(self) -> Self::Value;
    }

    impl<T> RwOps for native::RwLock<T> {
        type Value = T;
        type Read<'a>
            = parking_lot::RwLockReadGuard<'a, T>
        where
            T: 'a;
        type Write<'a>
            = parking_lot::RwLockWriteGuard<'a, T>
        where
            T: 'a;
        #[inline]
        fn read_now(&self) -> Self::Read<'_> {
            self.read()
        }
        #[inline]
        fn write_now(&self) -> Self::Write<'_> {
            self.write()
        }
        fn into_value(self) -> T {
            self.into_inner()
        }
    }

    /// [`LockOps`] and [`RwOps`] for a checker backend with std's poisoning API (shuttle's,
    /// loom's): one text, so the two cannot drift apart.
    macro_rules! poisoned_ops {
        ($side:ident, $krate:ident) => {
            impl<T> LockOps for $side::Mutex<T> {
                type Value = T;
                type Guard<'a>
                    = $krate::sync::MutexGuard<'a, T>
                where
                    T: 'a;
                #[inline]
                fn acquire(&self) -> Self::Guard<'_> {
                    self.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
                }
                #[inline]
                fn try_acquire(&self) -> Option<Self::Guard<'_>> {
                    self.try_lock().ok()
                }
                fn into_value(self) -> T {
                    self.into_inner().unwrap_or_else(|poisoned| poisoned.into_inner())
                }
            }

            impl<T> RwOps for $side::RwLock<T> {
                type Value = T;
                type Read<'a>
                    = $krate::sync::RwLockReadGuard<'a, T>
                where
                    T: 'a;
                type Write<'a>
                    = $krate::sync::RwLockWriteGuard<'a, T>
                where
                    T: 'a;
                #[inline]
                fn read_now(&self) -> Self::Read<'_> {
                    self.read().unwrap_or_else(|poisoned| poisoned.into_inner())
                }
                #[inline]
                fn write_now(&self) -> Self::Write<'_> {
                    self.write().unwrap_or_else(|poisoned| poisoned.into_inner())
                }
                fn into_value(self) -> T {
                    self.into_inner().unwrap_or_else(|poisoned| poisoned.into_inner())
                }
            }
        };
    }

    poisoned_ops!(checked, shuttle);
    poisoned_ops!(loomed, loom);

    /// A mutual-exclusion lock: parking_lot's, shuttle's inside an execution, or loom's in a model.
    #[derive(Debug)]
    pub enum Mutex<T> {
        /// Made outside any shuttle execution or loom model.
        Native(parking_lot::Mutex<T>),
        /// Made inside a shuttle execution (boxed, as every checker's variant).
        Shuttle(Box<shuttle::sync::Mutex<T>>),
        /// Loom's, made inside a loom model.
        Loom(Box<loom::sync::Mutex<T>>),
    }

    /// The guard of a [`Mutex`], of its lock's variant.
    #[derive(Debug)]
    pub enum MutexGuard<'a, T> {
        /// parking_lot's guard.
        Native(parking_lot::MutexGuard<'a, T>),
        /// shuttle's guard.
        Shuttle(shuttle::sync::MutexGuard<'a, T>),
        /// loom's guard.
        Loom(loom::sync::MutexGuard<'a, T>),
    }

    impl<T: Default> Default for Mutex<T> {
        fn default() -> Self {
            Mutex::new(T::default())
        }
    }

    impl<T> Mutex<T> {
        pub fn new(value: T) -> Self {
            made!(Mutex, Mutex::new(value))
        }
        /// The default side first, inlined where it is called; a checker's lock in a call of
        /// its own ([`Mutex::lock_checker`], the same [`both!`] text): with all three arms
        /// inline the method stayed a call, about 26 instructions a lock in the campaigns.
        #[inline]
        pub fn lock(&self) -> MutexGuard<'_, T> {
            match self {
                Mutex::Native(lock) => MutexGuard::Native(lock.acquire()),
                _ => self.lock_checker(),
            }
        }
        #[inline(never)]
        fn lock_checker(&self) -> MutexGuard<'_, T> {
            both!(self, Mutex => MutexGuard, lock => lock.acquire())
        }
        /// As [`Mutex::lock`], the default side inlined.
        #[inline]
        pub fn try_lock(&self) -> Option<MutexGuard<'_, T>> {
            match self {
                Mutex::Native(lock) => lock.try_acquire().map(MutexGuard::Native),
                _ => self.try_lock_checker(),
            }
        }
        #[inline(never)]
        fn try_lock_checker(&self) -> Option<MutexGuard<'_, T>> {
            both!(self, Mutex => Option<MutexGuard>, lock => lock.try_acquire())
        }
        pub fn into_inner(self) -> T {
            both!(self, Mutex, lock => lock.into_value())
        }
    }

    impl<T> Deref for MutexGuard<'_, T> {
        type Target = T;
        #[inline]
        fn deref(&self) -> &T {
            both!(self, MutexGuard, guard => guard)
        }
    }

    impl<T> DerefMut for MutexGuard<'_, T> {
        #[inline]
        fn deref_mut(&mut self) -> &mut T {
            both!(self, MutexGuard, guard => &mut *guard)
        }
    }

    /// A reader-writer lock: parking_lot's, shuttle's inside an execution, or loom's in a model.
    #[derive(Debug)]
    pub enum RwLock<T> {
        /// Made outside any shuttle execution or loom model.
        Native(parking_lot::RwLock<T>),
        /// Made inside a shuttle execution (boxed, as every checker's variant).
        Shuttle(Box<shuttle::sync::RwLock<T>>),
        /// Loom's, made inside a loom model.
        Loom(Box<loom::sync::RwLock<T>>),
    }

    /// Shared guard of a [`RwLock`].
    #[derive(Debug)]
    pub enum RwLockReadGuard<'a, T> {
        /// parking_lot's guard.
        Native(parking_lot::RwLockReadGuard<'a, T>),
        /// shuttle's guard.
        Shuttle(shuttle::sync::RwLockReadGuard<'a, T>),
        /// loom's guard.
        Loom(loom::sync::RwLockReadGuard<'a, T>),
    }

    /// Exclusive guard of a [`RwLock`].
    #[derive(Debug)]
    pub enum RwLockWriteGuard<'a, T> {
        /// parking_lot's guard.
        Native(parking_lot::RwLockWriteGuard<'a, T>),
        /// shuttle's guard.
        Shuttle(shuttle::sync::RwLockWriteGuard<'a, T>),
        /// loom's guard.
        Loom(loom::sync::RwLockWriteGuard<'a, T>),
    }

    impl<T: Default> Default for RwLock<T> {
        fn default() -> Self {
            RwLock::new(T::default())
        }
    }

    impl<T> RwLock<T> {
        pub fn new(value: T) -> Self {
            made!(RwLock, RwLock::new(value))
        }
        /// The default side inlined, a checker's lock in a call of its own (as [`Mutex::lock`]).
        #[inline]
        pub fn read(&self) -> RwLockReadGuard<'_, T> {
            match self {
                RwLock::Native(lock) => RwLockReadGuard::Native(lock.read_now()),
                _ => self.read_checker(),
            }
        }
        #[inline(never)]
        fn read_checker(&self) -> RwLockReadGuard<'_, T> {
            both!(self, RwLock => RwLockReadGuard, lock => lock.read_now())
        }
        /// The default side inlined, a checker's lock in a call of its own (as [`Mutex::lock`]).
        #[inline]
        pub fn write(&self) -> RwLockWriteGuard<'_, T> {
            match self {
                RwLock::Native(lock) => RwLockWriteGuard::Native(lock.write_now()),
                _ => self.write_checker(),
            }
        }
        #[inline(never)]
        fn write_checker(&self) -> RwLockWriteGuard<'_, T> {
            both!(self, RwLock => RwLockWriteGuard, lock => lock.write_now())
        }
        pub fn into_inner(self) -> T {
            both!(self, RwLock, lock => lock.into_value())
        }
    }

    impl<T> Deref for RwLockReadGuard<'_, T> {
        type Target = T;
        #[inline]
        fn deref(&self) -> &T {
            both!(self, RwLockReadGuard, guard => guard)
        }
    }

    impl<T> Deref for RwLockWriteGuard<'_, T> {
        type Target = T;
        #[inline]
        fn deref(&self) -> &T {
            both!(self, RwLockWriteGuard, guard => guard)
        }
    }

    impl<T> DerefMut for RwLockWriteGuard<'_, T> {
        #[inline]
        fn deref_mut(&mut self) -> &mut T {
            both!(self, RwLockWriteGuard, guard => &mut *guard)
        }
    }

    /// A condition variable: parking_lot's, shuttle's inside an execution, or loom's in a model.
    #[derive(Debug)]
    pub enum Condvar {
        /// Made outside any shuttle execution or loom model.
        Native(parking_lot::Condvar),
        /// Made inside a shuttle execution (boxed, as every checker's variant).
        Shuttle(Box<shuttle::sync::Condvar>),
        /// Loom's, made inside a loom model.
        Loom(Box<loom::sync::Condvar>),
    }

    impl Default for Condvar {
        fn default() -> Self {
            Condvar::new()
        }
    }

    impl Condvar {
        pub fn new() -> Self {
            made!(Condvar, Condvar::new())
        }
        /// Waits, releasing `guard` meanwhile. A guard of the other variant is a ksim bug (a
        /// lock made on one side of an execution's boundary and its condvar on the other). The
        /// two sides' waits differ in shape (parking_lot's borrows the guard, shuttle's takes
        /// it), so this one method keeps its arms apart.
        pub fn wait<'a, T>(&self, guard: MutexGuard<'a, T>) -> MutexGuard<'a, T> {
            match (self, guard) {
                (Condvar::Native(condvar), MutexGuard::Native(mut guard)) => {
                    condvar.wait(&mut guard);
                    MutexGuard::Native(guard)
                }
                (Condvar::Shuttle(condvar), MutexGuard::Shuttle(guard)) => {
                    MutexGuard::Shuttle(condvar.wait(guard).unwrap_or_else(|poisoned| poisoned.into_inner()))
                }
                (Condvar::Loom(condvar), MutexGuard::Loom(guard)) => {
                    MutexGuard::Loom(condvar.wait(guard).unwrap_or_else(|poisoned| poisoned.into_inner()))
                }
                _ => panic!("a condvar and its mutex were made on different sides of a checker's boundary"),
            }
        }
        pub fn notify_all(&self) {
            both!(self, Condvar, condvar => {
                condvar.notify_all();
            })
        }
        pub fn notify_one(&self) {
            both!(self, Condvar, condvar => {
                condvar.notify_one();
            })
        }
    }

    /// `rwlock_t`'s admission ([`crate::RwLock`]): a read waits only for a writer holding the
    /// lock, never for one waiting, and one thread may hold several reads.
    ///
    /// - made outside a checker: parking_lot's reader-writer lock, its reads `read_recursive`
    ///   (one atomic operation each way, the same admission rule);
    /// - made inside a shuttle execution or a loom model: a small state machine on that
    ///   checker's mutex and condvar, so the checker sees every wait and schedules at the state
    ///   mutex, with the value in a `std` lock that admission guarantees never blocks (the
    ///   checkers' own reader-writer locks let no thread hold two reads).
    #[derive(Debug)]
    pub enum RecursiveRwLock<T> {
        /// Made outside any shuttle execution or loom model.
        Native(parking_lot::RwLock<T>),
        /// Made inside a shuttle execution or a loom model (boxed: the checkers' mutex and
        /// condvar are a few hundred bytes, the default lock one word).
        Checked(Box<Admitted<T>>),
    }

    /// A checker's [`RecursiveRwLock`]: readers and a writer admitted by a state machine.
    #[derive(Debug)]
    pub struct Admitted<T> {
        state: Mutex<Admission>,
        changed: Condvar,
        data: std::sync::RwLock<T>,
    }

    /// Who [`Admitted`] lets in: readers count, a writer excludes them.
    #[derive(Debug, Default)]
    struct Admission {
        readers: u32,
        writer: bool,
    }

    /// Shared guard of a [`RecursiveRwLock`].
    #[derive(Debug)]
    pub enum RecursiveReadGuard<'a, T> {
        /// parking_lot's guard.
        Native(parking_lot::RwLockReadGuard<'a, T>),
        /// A checker's admission and the value's `std` guard.
        Checked(AdmittedRead<'a, T>),
    }

    /// Exclusive guard of a [`RecursiveRwLock`].
    #[derive(Debug)]
    pub enum RecursiveWriteGuard<'a, T> {
        /// parking_lot's guard.
        Native(parking_lot::RwLockWriteGuard<'a, T>),
        /// A checker's admission and the value's `std` guard.
        Checked(AdmittedWrite<'a, T>),
    }

    /// A read admitted by [`Admitted`] (`lock`; `None` for a `try_read`, admitted by no one):
    /// the reader count falls, and waiters wake when it reaches zero, on drop.
    #[derive(Debug)]
    pub struct AdmittedRead<'a, T> {
        data: Option<std::sync::RwLockReadGuard<'a, T>>,
        lock: Option<&'a Admitted<T>>,
    }

    /// A write admitted by [`Admitted`]: the writer leaves, and waiters wake, on drop.
    #[derive(Debug)]
    pub struct AdmittedWrite<'a, T> {
        data: Option<std::sync::RwLockWriteGuard<'a, T>>,
        lock: &'a Admitted<T>,
    }

    impl<T> RecursiveRwLock<T> {
        pub fn new(value: T) -> Self {
            if in_loom() || in_shuttle() {
                let state = Mutex::new(Admission::default());
                let data = std::sync::RwLock::new(value);
                RecursiveRwLock::Checked(Box::new(Admitted { state, changed: Condvar::new(), data }))
            } else {
                RecursiveRwLock::Native(parking_lot::RwLock::new(value))
            }
        }
        /// Waits while a writer holds the lock.
        #[inline]
        pub fn read(&self) -> RecursiveReadGuard<'_, T> {
            match self {
                RecursiveRwLock::Native(lock) => RecursiveReadGuard::Native(lock.read_recursive()),
                RecursiveRwLock::Checked(lock) => RecursiveReadGuard::Checked(lock.read()),
            }
        }
        /// Waits while a reader or a writer holds the lock.
        #[inline]
        pub fn write(&self) -> RecursiveWriteGuard<'_, T> {
            match self {
                RecursiveRwLock::Native(lock) => RecursiveWriteGuard::Native(lock.write()),
                RecursiveRwLock::Checked(lock) => RecursiveWriteGuard::Checked(lock.write()),
            }
        }
        /// A read unless a writer holds the lock (a checker's: unless its value's `std` lock
        /// refuses one), with no admission and no wait.
        pub fn try_read(&self) -> Option<RecursiveReadGuard<'_, T>> {
            match self {
                RecursiveRwLock::Native(lock) => lock.try_read_recursive().map(RecursiveReadGuard::Native),
                RecursiveRwLock::Checked(lock) => {
                    let data = lock.data.try_read().ok()?;
                    Some(RecursiveReadGuard::Checked(AdmittedRead { data: Some(data), lock: None }))
                }
            }
        }
        pub fn into_inner(self) -> T {
            match self {
                RecursiveRwLock::Native(lock) => lock.into_inner(),
                RecursiveRwLock::Checked(lock) => {
                    lock.data.into_inner().unwrap_or_else(|poisoned| poisoned.into_inner())
                }
            }
        }
    }

    impl<T> Admitted<T> {
        fn read(&self) -> AdmittedRead<'_, T> {
            let mut state = self.state.lock();
            while state.writer {
                state = self.changed.wait(state);
            }
            state.readers += 1;
            drop(state);
            let data = self.data.read().unwrap_or_else(|poisoned| poisoned.into_inner());
            AdmittedRead { data: Some(data), lock: Some(self) }
        }

        fn write(&self) -> AdmittedWrite<'_, T> {
            let mut state = self.state.lock();
            while state.writer || state.readers > 0 {
                state = self.changed.wait(state);
            }
            state.writer = true;
            drop(state);
            let data = self.data.write().unwrap_or_else(|poisoned| poisoned.into_inner());
            AdmittedWrite { data: Some(data), lock: self }
        }
    }

    impl<T> Drop for AdmittedRead<'_, T> {
        fn drop(&mut self) {
            self.data = None;
            // A panicking thread leaves the admission as it was: the checker is failing the
            // execution anyway, and its mutex may not be taken while unwinding.
            let Some(lock) = self.lock.filter(|_| !std::thread::panicking()) else {
                return;
            };
            let mut state = lock.state.lock();
            state.readers -= 1;
            let wake = state.readers == 0;
            drop(state);
            if wake {
                lock.changed.notify_all();
            }
        }
    }

    impl<T> Drop for AdmittedWrite<'_, T> {
        fn drop(&mut self) {
            self.data = None;
            if !std::thread::panicking() {
                self.lock.state.lock().writer = false;
                self.lock.changed.notify_all();
            }
        }
    }

    impl<T> Deref for RecursiveReadGuard<'_, T> {
        type Target = T;
        #[inline]
        fn deref(&self) -> &T {
            match self {
                RecursiveReadGuard::Native(guard) => guard,
                RecursiveReadGuard::Checked(guard) => guard.data.as_ref().expect("guard present until drop"),
            }
        }
    }

    impl<T> Deref for RecursiveWriteGuard<'_, T> {
        type Target = T;
        #[inline]
        fn deref(&self) -> &T {
            match self {
                RecursiveWriteGuard::Native(guard) => guard,
                RecursiveWriteGuard::Checked(guard) => guard.data.as_ref().expect("guard present until drop"),
            }
        }
    }

    impl<T> DerefMut for RecursiveWriteGuard<'_, T> {
        #[inline]
        fn deref_mut(&mut self) -> &mut T {
            match self {
                RecursiveWriteGuard::Native(guard) => &mut *guard,
                RecursiveWriteGuard::Checked(guard) => guard.data.as_mut().expect("guard present until drop"),
            }
        }
    }

    /// Atomics: std's, shuttle's (each access a schedule point) inside an execution, or loom's in a model.
    pub mod atomic {
        pub use std::sync::atomic::Ordering;

        /// `fence`: loom's in a model, shuttle's inside an execution, std's otherwise.
        pub fn fence(order: Ordering) {
            made!(atomic::fence(order));
        }

        macro_rules! dual_atomic {
            ($name:ident, $ty:ty $(, $int:ident)?) => {
                #[doc = concat!("`", stringify!($name), "`: std's, or shuttle's inside an execution.")]
                #[derive(Debug)]
                pub enum $name {
                    /// Made outside any shuttle execution or loom model.
                    Native(std::sync::atomic::$name),
                    /// Made inside a shuttle execution (boxed, as every checker's variant).
                    Shuttle(Box<shuttle::sync::atomic::$name>),
                    /// Loom's, made inside a loom model.
                    Loom(Box<loom::sync::atomic::$name>),
                }

                impl Default for $name {
                    fn default() -> Self {
                        $name::new(<$ty>::default())
                    }
                }

                impl $name {
                    pub fn new(value: $ty) -> Self {
                        made!($name, atomic::$name::new(value))
                    }
                    #[inline]
                    pub fn load(&self, order: Ordering) -> $ty {
                        both!(self, $name, a => a.load(order))
                    }
                    #[inline]
                    pub fn store(&self, value: $ty, order: Ordering) {
                        both!(self, $name, a => a.store(value, order))
                    }
                    #[inline]
                    pub fn swap(&self, value: $ty, order: Ordering) -> $ty {
                        both!(self, $name, a => a.swap(value, order))
                    }
                    #[inline]
                    pub fn compare_exchange(
                        &self,
                        current: $ty,
                        new: $ty,
                        success: Ordering,
                        failure: Ordering,
                    ) -> Result<$ty, $ty> {
                        both!(self, $name, a => a.compare_exchange(current, new, success, failure))
                    }
                    #[inline]
                    pub fn compare_exchange_weak(
                        &self,
                        current: $ty,
                        new: $ty,
                        success: Ordering,
                        failure: Ordering,
                    ) -> Result<$ty, $ty> {
                        both!(self, $name, a => a.compare_exchange_weak(current, new, success, failure))
                    }
                    #[inline]
                    pub fn fetch_and(&self, value: $ty, order: Ordering) -> $ty {
                        both!(self, $name, a => a.fetch_and(value, order))
                    }
                    #[inline]
                    pub fn fetch_or(&self, value: $ty, order: Ordering) -> $ty {
                        both!(self, $name, a => a.fetch_or(value, order))
                    }
                    pub fn into_inner(self) -> $ty {
                        both!(self, $name, a => a.into_inner())
                    }
                }
                $(dual_atomic!(@int $name, $ty, $int);)?
            };
            (@int $name:ident, $ty:ty, $int:ident) => {
                impl $name {
                    #[inline]
                    pub fn fetch_add(&self, value: $ty, order: Ordering) -> $ty {
                        both!(self, $name, a => a.fetch_add(value, order))
                    }
                    #[inline]
                    pub fn fetch_sub(&self, value: $ty, order: Ordering) -> $ty {
                        both!(self, $name, a => a.fetch_sub(value, order))
                    }
                    #[inline]
                    pub fn fetch_max(&self, value: $ty, order: Ordering) -> $ty {
                        both!(self, $name, a => a.fetch_max(value, order))
                    }
                }
            };
        }

        dual_atomic!(AtomicBool, bool);
        dual_atomic!(AtomicU32, u32, int);
        dual_atomic!(AtomicU64, u64, int);
        dual_atomic!(AtomicUsize, usize, int);
        dual_atomic!(AtomicI32, i32, int);
    }

    /// Threads: loom's in a model, shuttle's inside an execution, std's otherwise.
    pub mod thread {
        pub use std::thread::Result;

        /// A spawned thread's handle, of the side it was spawned on.
        #[derive(Debug)]
        pub enum JoinHandle<T> {
            /// A std thread.
            Native(std::thread::JoinHandle<T>),
            /// A shuttle thread.
            Shuttle(Box<shuttle::thread::JoinHandle<T>>),
            /// Loom's, made inside a loom model.
            Loom(Box<loom::thread::JoinHandle<T>>),
        }

        impl<T> JoinHandle<T> {
            /// Waits for the thread and returns its result (Err: it panicked).
            pub fn join(self) -> Result<T> {
                both!(self, JoinHandle, handle => handle.join())
            }
        }

        /// Spawns a thread: a loom thread in a model, a shuttle task inside an execution, an OS thread otherwise.
        pub fn spawn<F, T>(f: F) -> JoinHandle<T>
        where
            F: FnOnce() -> T + Send + 'static,
            T: Send + 'static,
        {
            made!(JoinHandle, thread::spawn(f))
        }

        /// Yields: a schedule point inside a loom model or a shuttle execution.
        pub fn yield_now() {
            made!(thread::yield_now());
        }
    }

    /// The cell under [`crate::guarded::Guarded`] data: a parking_lot `RwLock`, shuttle's inside
    /// an execution (each access a schedule point; the lockset detector judges), or loom's
    /// `UnsafeCell` inside a loom model (loom judges unordered accesses itself).
    pub enum RaceCell<T> {
        /// Made outside any shuttle execution or loom model.
        Native(parking_lot::RwLock<T>),
        /// Made inside a shuttle execution (boxed, as every checker's variant).
        Shuttle(Box<shuttle::sync::RwLock<T>>),
        /// Loom's, made inside a loom model.
        Loom(Box<loom::cell::UnsafeCell<T>>),
    }

    impl<T> std::fmt::Debug for RaceCell<T> {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("RaceCell")
        }
    }

    impl<T> RaceCell<T> {
        /// A cell holding `value`.
        pub fn new(value: T) -> Self {
            if in_loom() {
                RaceCell::Loom(Box::new(loom::cell::UnsafeCell::new(value)))
            } else if in_shuttle() {
                RaceCell::Shuttle(Box::new(checked::RwLock::new(value)))
            } else {
                RaceCell::Native(native::RwLock::new(value))
            }
        }

        /// Reads the value.
        #[inline]
        pub fn with<R>(&self, f: impl FnOnce(&T) -> R) -> R {
            match self {
                RaceCell::Native(cell) => f(&cell.read_now()),
                RaceCell::Shuttle(cell) => f(&cell.read_now()),
                // SAFETY: loom records this read and panics before calling the closure if a
                // write by another thread is not ordered before it; loom runs one thread at a
                // time, so no write happens while `f` runs, and `f` does not re-enter this cell
                // (documented on the type).
                #[allow(unsafe_code)]
                RaceCell::Loom(cell) => cell.with(|pointer| f(unsafe { &*pointer })),
            }
        }

        /// Writes the value.
        #[inline]
        pub fn with_mut<R>(&self, f: impl FnOnce(&mut T) -> R) -> R {
            match self {
                RaceCell::Native(cell) => f(&mut cell.write_now()),
                RaceCell::Shuttle(cell) => f(&mut cell.write_now()),
                // SAFETY: loom records this write and panics before calling the closure if any
                // access by another thread is not ordered before it; loom runs one thread at a
                // time, so nothing else touches the value while `f` runs, and `f` does not
                // re-enter.
                #[allow(unsafe_code)]
                RaceCell::Loom(cell) => cell.with_mut(|pointer| f(unsafe { &mut *pointer })),
            }
        }

        /// The value, when the cell is no longer shared.
        pub fn into_inner(self) -> T {
            match self {
                RaceCell::Native(cell) => cell.into_value(),
                RaceCell::Shuttle(cell) => cell.into_value(),
                RaceCell::Loom(cell) => cell.into_inner(),
            }
        }
    }

    // SAFETY: the parking_lot and shuttle variants are `RwLock`s, Sync for `T: Send + Sync`. The
    // loom variant's every access goes through `with`/`with_mut`, which loom checks for unordered
    // concurrent accesses (it panics on one), and loom runs one thread at a time; a loom cell
    // touched outside its model panics in loom. Without this a struct holding a `Guarded` field
    // cannot be shared between threads at all.
    #[allow(unsafe_code)]
    unsafe impl<T: Send + Sync> Sync for RaceCell<T> {}

    #[cfg(test)]
    mod tests {
        use super::atomic::{self, Ordering};
        use super::{Condvar, Mutex, RaceCell, RecursiveRwLock, RwLock};
        use std::mem::size_of;

        /// Fails when `Dual` (a facade type) is larger than `Native` (its default side's type)
        /// rounded up to a word, plus a word for the tag: a checker's variant held in place.
        fn assert_default_side_and_a_word<Dual, Native>(name: &str) {
            let bound = size_of::<Native>().next_multiple_of(8) + 8;
            let size = size_of::<Dual>();
            assert!(size <= bound, "{name} is {size} bytes, its default side {} (at most {bound}): is a checker's variant in place again?", size_of::<Native>());
        }

        #[test]
        fn objects_are_their_default_side_and_a_word() {
            assert_default_side_and_a_word::<Mutex<()>, parking_lot::Mutex<()>>("Mutex<()>");
            assert_default_side_and_a_word::<Mutex<u64>, parking_lot::Mutex<u64>>("Mutex<u64>");
            assert_default_side_and_a_word::<Mutex<[u64; 5]>, parking_lot::Mutex<[u64; 5]>>(
                "Mutex<[u64; 5]>",
            );
            assert_default_side_and_a_word::<RwLock<()>, parking_lot::RwLock<()>>("RwLock<()>");
            assert_default_side_and_a_word::<RwLock<u64>, parking_lot::RwLock<u64>>("RwLock<u64>");
            assert_default_side_and_a_word::<RecursiveRwLock<u64>, parking_lot::RwLock<u64>>(
                "RecursiveRwLock<u64>",
            );
            assert_default_side_and_a_word::<Condvar, parking_lot::Condvar>("Condvar");
            assert_default_side_and_a_word::<RaceCell<()>, parking_lot::RwLock<()>>("RaceCell<()>");
            assert_default_side_and_a_word::<RaceCell<u64>, parking_lot::RwLock<u64>>("RaceCell<u64>");
            assert_default_side_and_a_word::<atomic::AtomicBool, std::sync::atomic::AtomicBool>("AtomicBool");
            assert_default_side_and_a_word::<atomic::AtomicU32, std::sync::atomic::AtomicU32>("AtomicU32");
            assert_default_side_and_a_word::<atomic::AtomicU64, std::sync::atomic::AtomicU64>("AtomicU64");
            assert_default_side_and_a_word::<atomic::AtomicUsize, std::sync::atomic::AtomicUsize>(
                "AtomicUsize",
            );
            assert_default_side_and_a_word::<atomic::AtomicI32, std::sync::atomic::AtomicI32>("AtomicI32");
            type Handle = super::thread::JoinHandle<u64>;
            assert_default_side_and_a_word::<Handle, std::thread::JoinHandle<u64>>("JoinHandle<u64>");
            // The sizes the kernel-named primitives are built from, as numbers (session 23 found
            // 176, 72 and 200 with the checkers' variants in place).
            assert_eq!(
                (size_of::<Mutex<()>>(), size_of::<atomic::AtomicU32>(), size_of::<RaceCell<()>>()),
                (16, 16, 16)
            );
        }

        /// Uses every boxed primitive once and says which side each was made on.
        fn use_every_kind() -> [&'static str; 5] {
            let mutex = Mutex::new(1u64);
            *mutex.lock() += 1;
            let rw = RwLock::new(2u64);
            let read = *rw.read();
            *rw.write() += read;
            let counter = atomic::AtomicU64::new(3);
            counter.fetch_add(1, Ordering::Relaxed);
            let cell = RaceCell::new(5u64);
            cell.with_mut(|value| *value += 1);
            let condvar = Condvar::new();
            condvar.notify_all();
            let side = |native: bool, shuttle: bool| match (native, shuttle) {
                (true, _) => "native",
                (false, true) => "shuttle",
                (false, false) => "loom",
            };
            let sides = [
                side(matches!(mutex, Mutex::Native(_)), matches!(mutex, Mutex::Shuttle(_))),
                side(matches!(rw, RwLock::Native(_)), matches!(rw, RwLock::Shuttle(_))),
                side(
                    matches!(counter, atomic::AtomicU64::Native(_)),
                    matches!(counter, atomic::AtomicU64::Shuttle(_)),
                ),
                side(matches!(cell, RaceCell::Native(_)), matches!(cell, RaceCell::Shuttle(_))),
                side(matches!(condvar, Condvar::Native(_)), matches!(condvar, Condvar::Shuttle(_))),
            ];
            assert_eq!(
                (mutex.into_inner(), rw.into_inner(), counter.into_inner(), cell.into_inner()),
                (2, 4, 4, 6)
            );
            sides
        }

        #[test]
        fn boxed_checker_objects_work_on_their_side() {
            assert_eq!(use_every_kind(), ["native"; 5]);
            let scheduler = crate::sync::schedule::RandomScheduler::new_from_seed(1, 2);
            crate::sync::schedule::run(scheduler, 10_000, || assert_eq!(use_every_kind(), ["shuttle"; 5]));
            crate::sync::loom_check(Some(2), || assert_eq!(use_every_kind(), ["loom"; 5]));
        }
    }
}

#[cfg(feature = "threaded")]
use dual as imp;

/// Runs `f` under `loom::model` once per interleaving within `preemption_bound` preemptions (None:
/// unbounded), with every object `f` makes loom's ([`dual::in_loom`] true meanwhile), for
/// [`crate::loom_runner`]. A failing interleaving's panic unwinds out of this call (the caller
/// catches it).
#[cfg(feature = "threaded")]
pub(crate) fn loom_check(preemption_bound: Option<usize>, f: impl Fn() + Send + Sync + 'static) {
    let mut builder = loom::model::Builder::new();
    builder.preemption_bound = preemption_bound;
    let _scope = dual::LoomScope::enter();
    builder.check(f);
}

pub use imp::*;

/// A backend guard that [`crate::locks`] and [`crate::rwlock`] release where it lies, in the
/// guard's `Option` (the kernel-named guard drops its backend guard before its own
/// bookkeeping). By default the `Option` is set to `None`; with the runtime backend the default
/// side's unlock is inlined, where dropping the enum called its drop glue (about 18
/// instructions a release, one atomic exchange of them), and a checker's guard is dropped by a
/// call of its own, as before.
pub(crate) trait Release: Sized {
    /// Releases the guard in `slot`, leaving `None`.
    #[inline]
    fn release(slot: &mut Option<Self>) {
        *slot = None;
    }
}

#[cfg(not(feature = "threaded"))]
impl<T> Release for MutexGuard<'_, T> {}
#[cfg(not(feature = "threaded"))]
impl<T> Release for RecursiveReadGuard<'_, T> {}
#[cfg(not(feature = "threaded"))]
impl<T> Release for RecursiveWriteGuard<'_, T> {}

/// [`Release::release`] of a checker's guard: its drop glue, in a call of its own, except
/// while the thread unwinds from a checker's failure (a loom deadlock, a shuttle assertion):
/// then the backend lock is leaked, because releasing it would call into a checker runtime that
/// is itself tearing down and turn one clear failure into an abort. Nothing runs after that
/// unwinding but the report. (A parking_lot guard is released while unwinding too: its unlock
/// calls no checker, and the test stays off every model lock's release path, four instructions
/// a release.)
#[cfg(feature = "threaded")]
#[inline(never)]
fn release_checker<G>(slot: &mut Option<G>) {
    if std::thread::panicking() {
        std::mem::forget(slot.take());
    } else {
        *slot = None;
    }
}

/// Implements [`Release`] for a runtime-backend guard enum whose default side is `Native`.
#[cfg(feature = "threaded")]
macro_rules! release_native_inline {
    ($($guard:ident),*) => {$(
        impl<T> Release for dual::$guard<'_, T> {
            #[inline]
            fn release(slot: &mut Option<Self>) {
                let Some(dual::$guard::Native(guard)) = slot else {
                    return release_checker(slot);
                };
                // The parking_lot guard is unlocked where it lies and the slot then marked
                // empty, without moving the guard out first: `slot.take()` copied the slot's
                // four words to the stack, and the drop that followed tested the variant again
                // (about ten instructions a release, on every lock of every model).
                // SAFETY: `guard` is valid and dropped once, here; `ptr::write` then overwrites
                // the slot without dropping what it held, so nothing drops the guard again. A
                // parking_lot unlock does not panic, so no unwind can find the slot holding a
                // guard already dropped.
                #[allow(unsafe_code)]
                unsafe {
                    std::ptr::drop_in_place(guard);
                    std::ptr::write(slot, None);
                }
            }
        }
    )*};
}

#[cfg(feature = "threaded")]
release_native_inline!(MutexGuard, RecursiveReadGuard, RecursiveWriteGuard);

/// A lock for the world's own bookkeeping on the hot path (its random numbers, its fault plan,
/// the trace's task names), never a model's: always parking_lot's, whichever backend the models
/// run on, so it is no schedule point for shuttle or loom and adds no object to their models, as
/// the `std` mutexes it replaces were; and unpoisoned, so a round trip is one atomic exchange
/// each way with no panic-count reads (a poisoned world is already a reported bug).
pub(crate) type BookLock<T> = parking_lot::Mutex<T>;
/// The guard of a [`BookLock`].
pub(crate) type BookGuard<'a, T> = parking_lot::MutexGuard<'a, T>;

/// A cell for convention-guarded data ([`crate::guarded::Guarded`]): the model may touch it at
/// any time, as C can, and each backend judges the accesses its own way.
///
/// - default: a parking_lot `RwLock`, so an unlocked access from two real threads is still safe
///   Rust (it waits) and the lockset detector reports it.
/// - feature `threaded`: one of those, a shuttle `RwLock` (every access a schedule point where
///   shuttle may switch threads; shuttle has no race detector of its own, so the lockset detector
///   is the judge), or loom's `UnsafeCell` inside a loom model (loom records every access and
///   fails the model on two that no happens-before relation orders, at least one a write; a cell
///   access is not a schedule point), chosen when the cell is made, as every primitive here is.
///
/// The closures must not touch the same cell again (a nested write would wait on itself).
#[cfg(not(feature = "threaded"))]
pub struct RaceCell<T> {
    inner: parking_lot::RwLock<T>,
}

#[cfg(not(feature = "threaded"))]
impl<T> std::fmt::Debug for RaceCell<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RaceCell")
    }
}

#[cfg(not(feature = "threaded"))]
impl<T> RaceCell<T> {
    /// A cell holding `value`.
    pub fn new(value: T) -> Self {
        RaceCell { inner: parking_lot::RwLock::new(value) }
    }

    /// Reads the value.
    pub fn with<R>(&self, f: impl FnOnce(&T) -> R) -> R {
        f(&self.inner.read())
    }

    /// Writes the value.
    pub fn with_mut<R>(&self, f: impl FnOnce(&mut T) -> R) -> R {
        f(&mut self.inner.write())
    }

    /// The value, when the cell is no longer shared.
    pub fn into_inner(self) -> T {
        self.inner.into_inner()
    }
}

/// Which backend this build uses, for reports and artifacts.
pub const BACKEND: &str = if cfg!(feature = "threaded") { "parking_lot+shuttle+loom" } else { "parking_lot" };

/// Shuttle's execution machinery, for [`crate::threaded`]'s runner and anyone driving model threads
/// under a scheduler of their own (`ksim play`): the scheduler trait and shuttle's random and PCT
/// schedulers, and [`schedule::run`], which runs a closure once per execution the scheduler grants.
#[cfg(feature = "threaded")]
pub mod schedule {
    pub use shuttle::scheduler::{PctScheduler, RandomScheduler, Schedule, Scheduler, Task, TaskId};

    /// Runs `f` once per execution `scheduler` grants, each a shuttle execution whose threads are
    /// [`super::thread::spawn`]ed inside `f`; an execution longer than `steps_max` scheduling
    /// steps fails (a livelock). Shuttle prints nothing: failures are ksim's to report. A
    /// deadlock or a panic that escapes `f` unwinds out of this call (the caller catches it).
    pub fn run<S: Scheduler + 'static>(
        scheduler: S,
        steps_max: usize,
        f: impl Fn() + Send + Sync + 'static,
    ) -> usize {
        keep_panic_hook();
        let _quiet = Quiet::enter();
        let mut config = shuttle::Config::new();
        config.failure_persistence = shuttle::FailurePersistence::None;
        config.silence_warnings = true;
        config.max_steps = shuttle::MaxSteps::FailAfter(steps_max);
        shuttle::Runner::new(scheduler, config).run(f)
    }

    /// Shuttle installs a panic hook at its first execution that prints a schedule for every
    /// panic, even one a checker catches and reports as a violation. Let it install it once over
    /// a throwaway hook, then put the process's own hook back, wrapped so that shuttle's own
    /// failures inside [`run`] (a deadlock, the step bound) are not printed: the caller reports
    /// them as violations, with each task's locks.
    fn keep_panic_hook() {
        static ONCE: std::sync::Once = std::sync::Once::new();
        ONCE.call_once(|| {
            let hook = std::panic::take_hook();
            let mut config = shuttle::Config::new();
            config.silence_warnings = true;
            shuttle::Runner::new(RandomScheduler::new_from_seed(0, 1), config).run(|| {});
            std::panic::set_hook(Box::new(move |info| {
                if !(QUIET.with(std::cell::Cell::get) && is_shuttle_failure(info.payload())) {
                    hook(info);
                }
            }));
        });
    }

    std::thread_local! {
        /// Whether this thread runs [`run`] (shuttle's tasks share the thread that runs them).
        static QUIET: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
    }

    /// [`QUIET`] set for the life of one [`run`], then put back as it was.
    struct Quiet(bool);

    impl Quiet {
        fn enter() -> Quiet {
            Quiet(QUIET.with(|quiet| quiet.replace(true)))
        }
    }

    impl Drop for Quiet {
        fn drop(&mut self) {
            QUIET.with(|quiet| quiet.set(self.0));
        }
    }

    /// Whether a panic's payload is shuttle's report of a failed execution that is no bug in
    /// the code it ran: every task blocked, or the step bound exceeded.
    fn is_shuttle_failure(payload: &(dyn std::any::Any + Send)) -> bool {
        let text =
            payload.downcast_ref::<String>().map(String::as_str).or(payload.downcast_ref::<&str>().copied());
        text.is_some_and(|text| text.starts_with("deadlock!") || text.starts_with("exceeded max_steps bound"))
    }

    /// A task id as a number (shuttle numbers tasks 0, 1, ... in spawn order; 0 is the main one).
    pub fn task_index(task: TaskId) -> usize {
        usize::from(task)
    }

    /// Whether the calling thread runs inside a shuttle execution.
    pub fn in_execution() -> bool {
        shuttle::current::try_get_current_task().is_some()
    }
}
