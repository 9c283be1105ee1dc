//! The behavioural differences between drivers/virtio/virtio_balloon.c as of Linux 4.4 (the
//! seed) and later kernels, each a named switch, and the presets built from them.

use serde::{Deserialize, Serialize};
use sim_core::check::{FixInfo, PresetInfo};

/// Which fixes are on. `Fixes::default()` is the seed (Linux 4.4): every fix off.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fixes {
    /// "virtio_balloon: fix deadlock on OOM" (2017): fill_balloon allocates its pages before
    /// taking balloon_lock, and sleeps out of puff without it.
    pub oom_deadlock: bool,
    /// "virtio_balloon: fix increment of vb->num_pfns in fill_balloon()" (2017): the deadlock
    /// fix advanced num_pfns before writing the page's pfns. Only matters with `oom_deadlock`.
    pub fill_pfns_index: bool,
    /// "virtio_balloon: init 1st buffer in stats vq" (2017): fill the stats before priming the
    /// stats queue, so the host does not read uninitialised memory.
    pub stats_first_buffer: bool,
    /// "virtio_balloon: fix PFN format for virtio-1" (2017): PFNs go out as `__virtio32`.
    pub pfn_format_virtio1: bool,
    /// "virtio_balloon: Fix endless deflation and inflation on arm64" (2020): the target is
    /// aligned up to whole guest pages.
    pub align_target: bool,
    /// "balloon: check the number of available pages in leak balloon" (2016): leak_balloon never
    /// asks for more pages than the balloon holds, so an OOM notification on an empty balloon
    /// does not reach balloon_page_dequeue()'s BUG().
    pub leak_available_pages: bool,
    /// "virtio-balloon: fix managed page counts when migrating pages" (2020): a migration across
    /// zones moves the managed page count with it.
    pub migrate_managed_count: bool,
}

/// Every fix: switch name, upstream title, symptom.
pub const FIXES: [(&str, &str, &str); 7] = [
    (
        "oom-deadlock",
        "virtio_balloon: fix deadlock on OOM",
        "fill_balloon allocates (and direct reclaim waits for a filesystem lock) while holding balloon_lock, which the OOM notifier needs: an OOM under that filesystem lock deadlocks",
    ),
    (
        "fill-pfns-index",
        "virtio_balloon: fix increment of vb->num_pfns in fill_balloon()",
        "the host is told stale PFNs and not the last page's, and a full array is overrun",
    ),
    (
        "stats-first-buffer",
        "virtio_balloon: init 1st buffer in stats vq",
        "the first stats buffer the host reads is uninitialised memory",
    ),
    (
        "pfn-format-virtio1",
        "virtio_balloon: fix PFN format for virtio-1",
        "a big-endian guest on a VERSION_1 device sends byte-swapped PFNs",
    ),
    (
        "align-target",
        "virtio_balloon: Fix endless deflation and inflation on arm64",
        "with 64 KiB pages a target that is not a whole number of guest pages makes the balloon inflate and deflate forever",
    ),
    (
        "leak-available-pages",
        "balloon: check the number of available pages in leak balloon",
        "an OOM notification asks for oom_pages from a balloon holding fewer: balloon_page_dequeue() finds the list empty and BUG()s",
    ),
    (
        "migrate-managed-count",
        "virtio-balloon: fix managed page counts when migrating pages",
        "migrating a balloon page to another zone leaves both zones' managed page counts wrong",
    ),
];

impl Fixes {
    /// Every fix on.
    pub fn all() -> Fixes {
        Fixes {
            oom_deadlock: true,
            fill_pfns_index: true,
            stats_first_buffer: true,
            pfn_format_virtio1: true,
            align_target: true,
            leak_available_pages: true,
            migrate_managed_count: true,
        }
    }

    fn slot(&mut self, name: &str) -> Option<&mut bool> {
        Some(match name {
            "oom-deadlock" => &mut self.oom_deadlock,
            "fill-pfns-index" => &mut self.fill_pfns_index,
            "stats-first-buffer" => &mut self.stats_first_buffer,
            "pfn-format-virtio1" => &mut self.pfn_format_virtio1,
            "align-target" => &mut self.align_target,
            "leak-available-pages" => &mut self.leak_available_pages,
            "migrate-managed-count" => &mut self.migrate_managed_count,
            _ => return None,
        })
    }

    /// Switches fix `name` on or off; an unknown name is an error naming the valid ones.
    pub fn set(&mut self, name: &str, on: bool) -> Result<(), String> {
        match self.slot(name) {
            Some(slot) => {
                *slot = on;
                Ok(())
            }
            None => {
                let names: Vec<&str> = FIXES.iter().map(|f| f.0).collect();
                Err(format!("unknown balloon fix {name:?}; valid: {}", names.join(", ")))
            }
        }
    }

    /// The names of the fixes that are on.
    pub fn names_on(&self) -> Vec<&'static str> {
        let mut copy = *self;
        FIXES.iter().filter(|f| copy.slot(f.0).is_some_and(|s| *s)).map(|f| f.0).collect()
    }

    /// The fix metadata for the catalog.
    pub fn infos() -> Vec<FixInfo> {
        FIXES.iter().map(|&(name, title, symptom)| FixInfo { name, title, cve: None, symptom }).collect()
    }

    /// The fixes of preset `name`.
    pub fn preset(name: &str) -> Result<Fixes, String> {
        match name {
            "linux-4.4" => Ok(Fixes::default()),
            "fixed" => Ok(Fixes::all()),
            _ => Err(format!("unknown balloon preset {name:?}; valid: linux-4.4, fixed")),
        }
    }

    /// The presets, oldest first; the last is the default.
    pub fn presets() -> Vec<PresetInfo> {
        vec![
            PresetInfo {
                name: "linux-4.4",
                description: "seed 004: drivers/virtio/virtio_balloon.c of Linux 4.4/4.5, no later fix",
                fixes: Vec::new(),
            },
            PresetInfo {
                name: "fixed",
                description: "the 4.4 driver with every later fix ksim models",
                fixes: Fixes::all().names_on(),
            },
        ]
    }
}
