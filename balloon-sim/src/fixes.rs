//! The behavioural differences between drivers/virtio/virtio_balloon.c as of Linux 4.4 (the seed)
//! and later kernels, as one fix table: each row a named switch with its upstream identity and
//! the kernel version it landed in, so a kernel version is a preset (`--kernel 4.9`).

use sim_core::fixes::{Commit, Fix, FixId, FixTable, FixTableOf, KernelVersion, NamedPreset};

/// The balloon fix table, as a type ([`Fixes`] is a set of its rows).
#[derive(Debug)]
pub struct BalloonFixes;

/// Which balloon fixes are on.
pub type Fixes = sim_core::fixes::Fixes<BalloonFixes>;

/// fill_balloon allocates its pages before taking balloon_lock, and sleeps out of puff without it.
pub const OOM_DEADLOCK: FixId = FixId::new(0, "oom-deadlock");
/// The deadlock fix advanced num_pfns before writing the page's pfns; this puts it back. Only
/// matters with [`OOM_DEADLOCK`].
pub const FILL_PFNS_INDEX: FixId = FixId::new(1, "fill-pfns-index");
/// Fill the stats before priming the stats queue, so the host does not read uninitialised memory.
pub const STATS_FIRST_BUFFER: FixId = FixId::new(2, "stats-first-buffer");
/// PFNs go out as `__virtio32`.
pub const PFN_FORMAT_VIRTIO1: FixId = FixId::new(3, "pfn-format-virtio1");
/// The target is aligned up to whole guest pages.
pub const ALIGN_TARGET: FixId = FixId::new(4, "align-target");
/// leak_balloon never asks for more pages than the balloon holds, so an OOM notification on an
/// empty balloon does not reach balloon_page_dequeue()'s BUG().
pub const LEAK_AVAILABLE_PAGES: FixId = FixId::new(5, "leak-available-pages");
/// A migration across zones moves the managed page count with it.
pub const MIGRATE_MANAGED_COUNT: FixId = FixId::new(6, "migrate-managed-count");

/// Every [`FixId`], in table order.
pub const FIX_IDS: [FixId; 7] = [
    OOM_DEADLOCK,
    FILL_PFNS_INDEX,
    STATS_FIRST_BUFFER,
    PFN_FORMAT_VIRTIO1,
    ALIGN_TARGET,
    LEAK_AVAILABLE_PAGES,
    MIGRATE_MANAGED_COUNT,
];

const fn v(major: u16, minor: u16) -> KernelVersion {
    KernelVersion::new(major, minor, 0)
}

impl FixTableOf for BalloonFixes {
    const TABLE: &'static FixTable = &FixTable {
        subsystem: "balloon",
        oldest: v(4, 4),
        newest: v(5, 8),
        fixes: &[
            Fix {
                name: "oom-deadlock",
                title: "virtio_balloon: fix deadlock on OOM",
                commit: Commit::Id("c7cdff0e8647"),
                landed_in: v(4, 15),
                cve: None,
                symptom: "fill_balloon allocates (and direct reclaim waits for a filesystem lock) while \
                          holding balloon_lock, which the OOM notifier needs: an OOM under that filesystem \
                          lock deadlocks",
            },
            Fix {
                name: "fill-pfns-index",
                title: "virtio_balloon: fix increment of vb->num_pfns in fill_balloon()",
                commit: Commit::Unverified,
                landed_in: v(4, 15),
                cve: None,
                symptom: "the host is told stale PFNs and not the last page's, and a full array is overrun",
            },
            Fix {
                name: "stats-first-buffer",
                title: "virtio_balloon: init 1st buffer in stats vq",
                commit: Commit::Unverified,
                landed_in: v(4, 12),
                cve: None,
                symptom: "the first stats buffer the host reads is uninitialised memory",
            },
            Fix {
                name: "pfn-format-virtio1",
                title: "virtio_balloon: fix PFN format for virtio-1",
                commit: Commit::Id("87c9403b0d1d"),
                landed_in: v(4, 13),
                cve: None,
                symptom: "a big-endian guest on a VERSION_1 device sends byte-swapped PFNs",
            },
            Fix {
                name: "align-target",
                title: "virtio_balloon: Fix endless deflation and inflation on arm64",
                commit: Commit::Unverified,
                landed_in: v(5, 8),
                cve: None,
                symptom: "with 64 KiB pages a target that is not a whole number of guest pages makes the \
                          balloon inflate and deflate forever",
            },
            Fix {
                name: "leak-available-pages",
                title: "balloon: check the number of available pages in leak balloon",
                commit: Commit::Unverified,
                landed_in: v(4, 6),
                cve: None,
                symptom: "an OOM notification asks for oom_pages from a balloon holding fewer: \
                          balloon_page_dequeue() finds the list empty and BUG()s",
            },
            Fix {
                name: "migrate-managed-count",
                title: "virtio-balloon: fix managed page counts when migrating pages between zones",
                commit: Commit::Id("63341ab03706"),
                landed_in: v(5, 8),
                cve: None,
                symptom: "migrating a balloon page to another zone leaves both zones' managed page counts \
                          wrong",
            },
        ],
        presets: &[
            NamedPreset {
                name: "linux-4.4",
                version: v(4, 4),
                description: "seed 004: drivers/virtio/virtio_balloon.c of Linux 4.4/4.5, no later fix",
            },
            NamedPreset {
                name: "fixed",
                version: v(5, 8),
                description: "the 4.4 driver with every later fix ksim models",
            },
        ],
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fix_table_is_consistent_with_its_ids() {
        BalloonFixes::TABLE.validate(&FIX_IDS).unwrap();
    }
}
