//! GFP flags (include/linux/gfp.h as of Linux 4.4, whose bit values ksim uses for every era: only
//! the flags' meaning matters to the models, and it did not change for the flags used here).

use serde::{Deserialize, Serialize};
use std::fmt;

/// A set of `__GFP_*` bits.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Gfp(pub u32);

macro_rules! gfp_bits {
    ($($name:ident = $value:expr;)*) => {
        impl Gfp {
            $(
                #[doc = concat!("`", stringify!($name), "`")]
                pub const $name: Gfp = Gfp($value);
            )*
            const NAMES: &'static [(&'static str, u32)] = &[$((stringify!($name), $value)),*];
        }
    };
}

gfp_bits! {
    __GFP_DMA = 0x01;
    __GFP_HIGHMEM = 0x02;
    __GFP_DMA32 = 0x04;
    __GFP_MOVABLE = 0x08;
    __GFP_RECLAIMABLE = 0x10;
    __GFP_HIGH = 0x20;
    __GFP_IO = 0x40;
    __GFP_FS = 0x80;
    __GFP_COLD = 0x100;
    __GFP_NOWARN = 0x200;
    __GFP_REPEAT = 0x400;
    __GFP_NOFAIL = 0x800;
    __GFP_NORETRY = 0x1000;
    __GFP_MEMALLOC = 0x2000;
    __GFP_COMP = 0x4000;
    __GFP_ZERO = 0x8000;
    __GFP_NOMEMALLOC = 0x10000;
    __GFP_HARDWALL = 0x20000;
    __GFP_THISNODE = 0x40000;
    __GFP_ATOMIC = 0x80000;
    __GFP_ACCOUNT = 0x100000;
    __GFP_DIRECT_RECLAIM = 0x400000;
    __GFP_KSWAPD_RECLAIM = 0x2000000;
}

impl Gfp {
    /// `__GFP_RECLAIM`.
    pub const __GFP_RECLAIM: Gfp = Gfp(Gfp::__GFP_DIRECT_RECLAIM.0 | Gfp::__GFP_KSWAPD_RECLAIM.0);
    /// `GFP_ATOMIC`: may not sleep, may dip into reserves.
    pub const GFP_ATOMIC: Gfp = Gfp(Gfp::__GFP_HIGH.0 | Gfp::__GFP_ATOMIC.0 | Gfp::__GFP_KSWAPD_RECLAIM.0);
    /// `GFP_KERNEL`: may sleep, do I/O and call into the filesystem.
    pub const GFP_KERNEL: Gfp = Gfp(Gfp::__GFP_RECLAIM.0 | Gfp::__GFP_IO.0 | Gfp::__GFP_FS.0);
    /// `GFP_NOWAIT`: may not sleep.
    pub const GFP_NOWAIT: Gfp = Gfp::__GFP_KSWAPD_RECLAIM;
    /// `GFP_NOIO`.
    pub const GFP_NOIO: Gfp = Gfp::__GFP_RECLAIM;
    /// `GFP_NOFS`: may sleep but not call into the filesystem (mbcache's callers in ext2/ext3).
    pub const GFP_NOFS: Gfp = Gfp(Gfp::__GFP_RECLAIM.0 | Gfp::__GFP_IO.0);
    /// `GFP_USER`.
    pub const GFP_USER: Gfp = Gfp(Gfp::GFP_KERNEL.0 | Gfp::__GFP_HARDWALL.0);
    /// `GFP_HIGHUSER`.
    pub const GFP_HIGHUSER: Gfp = Gfp(Gfp::GFP_USER.0 | Gfp::__GFP_HIGHMEM.0);
    /// `GFP_HIGHUSER_MOVABLE`: what balloon pages are allocated with.
    pub const GFP_HIGHUSER_MOVABLE: Gfp = Gfp(Gfp::GFP_HIGHUSER.0 | Gfp::__GFP_MOVABLE.0);

    /// `gfpflags_allow_blocking()`: the allocation may sleep in direct reclaim.
    pub fn allows_blocking(self) -> bool {
        self.contains(Gfp::__GFP_DIRECT_RECLAIM)
    }

    /// Whether every bit of `other` is set.
    pub fn contains(self, other: Gfp) -> bool {
        self.0 & other.0 == other.0
    }
}

impl std::ops::BitOr for Gfp {
    type Output = Gfp;
    fn bitor(self, other: Gfp) -> Gfp {
        Gfp(self.0 | other.0)
    }
}

impl std::ops::BitAnd for Gfp {
    type Output = Gfp;
    fn bitand(self, other: Gfp) -> Gfp {
        Gfp(self.0 & other.0)
    }
}

impl std::ops::Not for Gfp {
    type Output = Gfp;
    fn not(self) -> Gfp {
        Gfp(!self.0)
    }
}

impl fmt::Debug for Gfp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (name, value) in [
            ("GFP_HIGHUSER_MOVABLE", Gfp::GFP_HIGHUSER_MOVABLE),
            ("GFP_KERNEL", Gfp::GFP_KERNEL),
            ("GFP_NOFS", Gfp::GFP_NOFS),
            ("GFP_ATOMIC", Gfp::GFP_ATOMIC),
            ("GFP_NOWAIT", Gfp::GFP_NOWAIT),
        ] {
            if *self == value {
                return f.write_str(name);
            }
        }
        let names: Vec<&str> =
            Gfp::NAMES.iter().filter(|(_, bit)| self.0 & bit != 0).map(|(name, _)| *name).collect();
        if names.is_empty() {
            f.write_str("0")
        } else {
            f.write_str(&names.join("|"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kernel_allocations_may_block_and_atomic_ones_may_not() {
        assert!(Gfp::GFP_KERNEL.allows_blocking());
        assert!(Gfp::GFP_NOFS.allows_blocking());
        assert!(!Gfp::GFP_ATOMIC.allows_blocking());
        assert!(!Gfp::GFP_NOWAIT.allows_blocking());
        assert!(Gfp::GFP_HIGHUSER_MOVABLE.contains(Gfp::__GFP_MOVABLE));
        assert_eq!(
            format!("{:?}", Gfp::GFP_KERNEL | Gfp::__GFP_NORETRY),
            "__GFP_IO|__GFP_FS|__GFP_NORETRY|__GFP_DIRECT_RECLAIM|__GFP_KSWAPD_RECLAIM"
        );
    }
}
