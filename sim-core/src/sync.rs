//! The one facade that swaps the synchronisation backend; no other file names the backends.
//!
//! - default: `parking_lot` locks and `std` atomics, threads and `Arc`;
//! - `--cfg loom`: loom's, so the loom checker explores every interleaving of the model;
//! - `--cfg shuttle`: shuttle's, so the shuttle checker drives random and PCT schedules.
//!
//! Every backend is presented with one API: `lock()` returns the guard directly (no poisoning:
//! a panic in a model is already a reported bug, and the kernel has nothing like a poisoned lock),
//! `Condvar::wait` takes and returns the guard as loom's and std's do. The kernel-named primitives
//! in [`crate::locks`] are built on these and are what models use.

#[cfg(not(any(loom, shuttle)))]
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

/// The loom and shuttle backends have the same shape: std's API with poisoning. One macro writes
/// both wrappers, so they cannot drift apart.
#[cfg(any(loom, shuttle))]
macro_rules! checker_backend {
    ($krate:ident) => {
        pub use $krate::sync::atomic;
        pub use $krate::sync::Arc;
        pub use $krate::thread;

        #[doc = concat!("A mutual-exclusion lock (", stringify!($krate), ").")]
        #[derive(Debug)]
        pub struct Mutex<T>($krate::sync::Mutex<T>);
        /// The guard of a [`Mutex`].
        pub type MutexGuard<'a, T> = $krate::sync::MutexGuard<'a, T>;

        impl<T> Mutex<T> {
            pub fn new(value: T) -> Self {
                Mutex($krate::sync::Mutex::new(value))
            }
            pub fn lock(&self) -> MutexGuard<'_, T> {
                self.0.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
            }
            pub fn try_lock(&self) -> Option<MutexGuard<'_, T>> {
                self.0.try_lock().ok()
            }
            pub fn into_inner(self) -> T {
                self.0.into_inner().unwrap_or_else(|poisoned| poisoned.into_inner())
            }
        }

        #[doc = concat!("A reader-writer lock (", stringify!($krate), ").")]
        #[derive(Debug)]
        pub struct RwLock<T>($krate::sync::RwLock<T>);
        /// Shared guard of a [`RwLock`].
        pub type RwLockReadGuard<'a, T> = $krate::sync::RwLockReadGuard<'a, T>;
        /// Exclusive guard of a [`RwLock`].
        pub type RwLockWriteGuard<'a, T> = $krate::sync::RwLockWriteGuard<'a, T>;

        impl<T> RwLock<T> {
            pub fn new(value: T) -> Self {
                RwLock($krate::sync::RwLock::new(value))
            }
            pub fn read(&self) -> RwLockReadGuard<'_, T> {
                self.0.read().unwrap_or_else(|poisoned| poisoned.into_inner())
            }
            pub fn write(&self) -> RwLockWriteGuard<'_, T> {
                self.0.write().unwrap_or_else(|poisoned| poisoned.into_inner())
            }
            pub fn into_inner(self) -> T {
                self.0.into_inner().unwrap_or_else(|poisoned| poisoned.into_inner())
            }
        }

        #[doc = concat!("A condition variable (", stringify!($krate), ").")]
        #[derive(Debug, Default)]
        pub struct Condvar($krate::sync::Condvar);

        impl Condvar {
            pub fn new() -> Self {
                Condvar($krate::sync::Condvar::new())
            }
            pub fn wait<'a, T>(&self, guard: MutexGuard<'a, T>) -> MutexGuard<'a, T> {
                self.0.wait(guard).unwrap_or_else(|poisoned| poisoned.into_inner())
            }
            pub fn notify_all(&self) {
                self.0.notify_all();
            }
            pub fn notify_one(&self) {
                self.0.notify_one();
            }
        }
    };
}

#[cfg(loom)]
mod imp {
    checker_backend!(loom);
}

#[cfg(all(shuttle, not(loom)))]
mod imp {
    checker_backend!(shuttle);
}

pub use imp::*;

/// A cell for convention-guarded data ([`crate::guarded::Guarded`]): the model may touch it at
/// any time, as C can, and each backend judges the accesses its own way.
///
/// - loom: loom's `UnsafeCell`, which records every access and fails the model on two that no
///   happens-before relation orders (at least one a write): loom itself judges real races, as it
///   does for the atomics, and the cell adds no interleavings (a cell access is not a schedule
///   point).
/// - shuttle: a shuttle `RwLock`, so every access is a schedule point where shuttle may switch
///   threads; shuttle has no race detector of its own, so the lockset detector is the judge.
/// - default: a parking_lot `RwLock`, so an unlocked access from two real threads is still safe
///   Rust (it waits) and the lockset detector reports it.
///
/// The closures must not touch the same cell again (a nested write would wait on itself).
pub struct RaceCell<T> {
    #[cfg(loom)]
    inner: loom::cell::UnsafeCell<T>,
    #[cfg(all(shuttle, not(loom)))]
    inner: shuttle::sync::RwLock<T>,
    #[cfg(not(any(loom, shuttle)))]
    inner: parking_lot::RwLock<T>,
}

impl<T> std::fmt::Debug for RaceCell<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RaceCell")
    }
}

impl<T> RaceCell<T> {
    /// A cell holding `value`.
    pub fn new(value: T) -> Self {
        #[cfg(loom)]
        let inner = loom::cell::UnsafeCell::new(value);
        #[cfg(all(shuttle, not(loom)))]
        let inner = shuttle::sync::RwLock::new(value);
        #[cfg(not(any(loom, shuttle)))]
        let inner = parking_lot::RwLock::new(value);
        RaceCell { inner }
    }

    /// Reads the value.
    pub fn with<R>(&self, f: impl FnOnce(&T) -> R) -> R {
        #[cfg(loom)]
        {
            // SAFETY: loom records this read and panics before calling the closure if a write by
            // another thread is not ordered before it; loom runs one thread at a time, so no
            // write happens while `f` runs, and `f` does not re-enter this cell (documented).
            #[allow(unsafe_code)]
            self.inner.with(|pointer| f(unsafe { &*pointer }))
        }
        #[cfg(all(shuttle, not(loom)))]
        {
            f(&self.inner.read().unwrap_or_else(|poisoned| poisoned.into_inner()))
        }
        #[cfg(not(any(loom, shuttle)))]
        {
            f(&self.inner.read())
        }
    }

    /// Writes the value.
    pub fn with_mut<R>(&self, f: impl FnOnce(&mut T) -> R) -> R {
        #[cfg(loom)]
        {
            // SAFETY: loom records this write and panics before calling the closure if any
            // access by another thread is not ordered before it; loom runs one thread at a time,
            // so nothing else touches the value while `f` runs, and `f` does not re-enter.
            #[allow(unsafe_code)]
            self.inner.with_mut(|pointer| f(unsafe { &mut *pointer }))
        }
        #[cfg(all(shuttle, not(loom)))]
        {
            f(&mut self.inner.write().unwrap_or_else(|poisoned| poisoned.into_inner()))
        }
        #[cfg(not(any(loom, shuttle)))]
        {
            f(&mut self.inner.write())
        }
    }

    /// The value, when the cell is no longer shared.
    pub fn into_inner(self) -> T {
        #[cfg(loom)]
        {
            self.inner.into_inner()
        }
        #[cfg(all(shuttle, not(loom)))]
        {
            self.inner.into_inner().unwrap_or_else(|poisoned| poisoned.into_inner())
        }
        #[cfg(not(any(loom, shuttle)))]
        {
            self.inner.into_inner()
        }
    }
}

// SAFETY: under loom every access goes through `with`/`with_mut`, which loom checks for
// unordered concurrent accesses (it panics on one); loom runs one thread at a time. The other
// backends are locks and Sync already. Without this a struct holding a `Guarded` field cannot
// be shared between loom threads.
#[cfg(loom)]
#[allow(unsafe_code)]
unsafe impl<T: Send> Sync for RaceCell<T> {}

/// Which backend this build uses, for reports and artifacts.
pub const BACKEND: &str = if cfg!(loom) {
    "loom"
} else if cfg!(shuttle) {
    "shuttle"
} else {
    "parking_lot"
};
