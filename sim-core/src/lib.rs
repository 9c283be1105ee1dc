//! sim-core: the kernel-flavoured runtime every ksim model is written against.
//!
//! A model is written once against these primitives and checked four ways: the op-level
//! deterministic simulation ([`check`]), random schedules (shuttle), exhaustive interleavings
//! (loom), and lockdep, which runs inside all three. The backend switch lives in one place,
//! [`sync`] (shuttle and loom chosen at run time under the `threaded` feature); everything else
//! here is backend-agnostic.
//!
//! sim-core knows no subsystem: the taskstats, mbcache and balloon crates depend on it, never
//! the reverse.

pub mod bit_spinlock;
mod chain_cache;
pub mod check;
pub mod cx;
pub mod errno;
pub mod fault;
pub mod fixes;
pub mod gen;
pub mod guarded;
pub mod hash;
pub mod kref;
pub mod list;
pub mod list_bl;
pub mod lockdep;
pub mod locks;
#[cfg(feature = "threaded")]
pub mod loom_runner;
pub mod mm;
pub mod percpu;
pub mod rcu;
pub mod rcu_hlist;
pub mod rwlock;
pub mod sim;
pub mod sync;
#[cfg(feature = "threaded")]
pub mod threaded;
pub mod trace;
pub mod violation;
pub mod zoo;

// For model authors: the names nearly every model file uses.
pub use cx::Cx;
pub use errno::Errno;
pub use guarded::Guarded;
pub use kref::Kref;
pub use locks::{Completion, Mutex, RwSem, SpinLock, WaitQueue};
pub use rcu::{RcuPointer, RcuRef};
pub use rwlock::RwLock;
pub use sim::{Draws, Sim, SimConfig};
pub use violation::{Violation, ViolationKind};
