//! The behavioural differences between drivers/virtio/virtio_balloon.c as of Linux 4.4 (the seed)
//! and later kernels, as one fix table: each row a named switch with its upstream identity and
//! the kernel version it landed in, so a kernel version is a preset (`--kernel 4.9`).

//! Provenance (checked with the search tool): ids written as `Commit::Id` were seen next to their
//! titles (a patch mail, a pull request, a linux-next revlist, a blame of the file); `landed_in` is
//! the first release containing the fix, from the mail that says which -rc carried it or, where
//! only dates are known, the merge window after the commit's date.

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
/// The balloon thread waits with `wait_woken()`, so its condition (which reads config space, a
/// call that may sleep) runs in TASK_RUNNING. In seed 004 already; off: 3.x's
/// `wait_event_interruptible()` with the condition inside.
pub const WAIT_WOKEN: FixId = FixId::new(7, "wait-woken");
/// Freeze deflates the balloon and restore fills it again. In seed 004 already; off: 3.3's
/// freeze keeps the pages and restore only forgets them (they stay allocated: a leak).
pub const S4_LEAK_FILL: FixId = FixId::new(8, "s4-leak-fill");
/// With DEFLATE_ON_OOM the balloon deflates from a shrinker (reclaim) instead of the OOM
/// notifier chain. Not a bug fix of the balloon: the OOM notifier was being retired. Only
/// matters until [`DEFLATE_ON_OOM_HANDLER`] puts the notifier back.
pub const OOM_SHRINKER: FixId = FixId::new(9, "oom-shrinker");
/// DEFLATE_ON_OOM deflates from the OOM notifier again, "after other approaches to reclaim
/// memory failed, not while reclaiming": the balloon's own inflation, which reclaims, no
/// longer deflates it (the shrinker's busy no-op). Only matters with [`OOM_SHRINKER`].
pub const DEFLATE_ON_OOM_HANDLER: FixId = FixId::new(10, "deflate-on-oom-handler");
/// balloon_compaction's list interfaces: balloon_page_enqueue() goes through
/// balloon_page_enqueue_one(), which takes the page off the caller's list first. Not a fix: a
/// refactor whose double `list_del` [`AVOID_DUPLICATE_REMOVAL`] repairs.
pub const LIST_INTERFACES: FixId = FixId::new(11, "list-interfaces");
/// The `list_del` moves from balloon_page_enqueue_one() to balloon_page_list_enqueue(), so a
/// page fill_balloon() already popped (balloon_page_pop) is not deleted twice. Only matters
/// with [`LIST_INTERFACES`].
pub const AVOID_DUPLICATE_REMOVAL: FixId = FixId::new(12, "avoid-duplicate-removal");
/// balloon_page_dequeue() walks the balloon's page list under `pages_lock`, so compaction cannot
/// isolate (and `list_del`) the page the walk's cursor moves to next.
pub const DEQUEUE_WALK_LOCKED: FixId = FixId::new(13, "dequeue-walk-locked");

/// Every [`FixId`], in table order.
pub const FIX_IDS: [FixId; 14] = [
    OOM_DEADLOCK,
    FILL_PFNS_INDEX,
    STATS_FIRST_BUFFER,
    PFN_FORMAT_VIRTIO1,
    ALIGN_TARGET,
    LEAK_AVAILABLE_PAGES,
    MIGRATE_MANAGED_COUNT,
    WAIT_WOKEN,
    S4_LEAK_FILL,
    OOM_SHRINKER,
    DEFLATE_ON_OOM_HANDLER,
    LIST_INTERFACES,
    AVOID_DUPLICATE_REMOVAL,
    DEQUEUE_WALK_LOCKED,
];

const fn v(major: u16, minor: u16) -> KernelVersion {
    KernelVersion::new(major, minor, 0)
}

/// The newest kernel whose behaviour the table describes: the last fix landed in 6.6.
const NEWEST: KernelVersion = v(6, 6);

impl FixTableOf for BalloonFixes {
    const TABLE: &'static FixTable = &FixTable {
        subsystem: "balloon",
        // Two rows are older than the seed (which has them): 3.3 is the kernel before both.
        oldest: v(3, 3),
        newest: NEWEST,
        fixes: &[
            Fix {
                name: "oom-deadlock",
                title: "virtio_balloon: fix deadlock on OOM",
                commit: Commit::Id("c7cdff0e8647"),
                // The powerpc report of its regression reverts it "on v4.15-rc1".
                landed_in: KernelVersion::rc(4, 15, 0, 1),
                cve: None,
                symptom: "fill_balloon allocates (and direct reclaim waits for a filesystem lock) while \
                          holding balloon_lock, which the OOM notifier needs: an OOM under that filesystem \
                          lock deadlocks",
            },
            Fix {
                name: "fill-pfns-index",
                title: "virtio_balloon: fix increment of vb->num_pfns in fill_balloon()",
                // Posted on 1 Dec 2017 against the 4.15-rc1 regression; no id seen with the title.
                // S10: find_string for the title finds two linux-mm mails (mst's "A fix was just
                // posted" and Michael Ellerman's Tested-by), no id; code/pages search: no commit page.
                commit: Commit::Unverified,
                landed_in: v(4, 15),
                cve: None,
                symptom: "the host is told stale PFNs and not the last page's, and a full array is overrun",
            },
            Fix {
                name: "stats-first-buffer",
                title: "virtio_balloon: init 1st buffer in stats vq",
                // Only stable backports' ids seen (3.10.107, among 4.11-rc fixes). S10: find_string
                // for the title finds only "f2f6739" (7 digits) in two vendor changelog lists.
                commit: Commit::Unverified,
                landed_in: v(4, 11),
                cve: None,
                symptom: "the first stats buffer the host reads is uninitialised memory",
            },
            Fix {
                name: "pfn-format-virtio1",
                title: "virtio_balloon: fix PFN format for virtio-1",
                commit: Commit::Id("87c9403b0d1d"),
                // Dated 17 May 2016, in the 4.7 merge window.
                landed_in: v(4, 7),
                cve: None,
                symptom: "a big-endian guest on a VERSION_1 device sends byte-swapped PFNs",
            },
            Fix {
                name: "align-target",
                title: "virtio_balloon: Fix endless deflation and inflation on arm64",
                commit: Commit::Id("07622bd41563"),
                // Merged with mst's for_linus after 6.6-rc7 (linux-next revlist of 23 Oct 2023).
                landed_in: v(6, 6),
                cve: None,
                symptom: "with 64 KiB pages a target that is not a whole number of guest pages makes the \
                          balloon inflate and deflate forever",
            },
            Fix {
                name: "leak-available-pages",
                title: "balloon: check the number of available pages in leak balloon",
                // The blame shows its code as 37cf99e08c6f (11 Jul 2016), but not next to this
                // title; stable took it in 3.10.104. First release after that date: 4.8. S10: pages
                // search on the title and its message: no commit page.
                commit: Commit::Unverified,
                landed_in: v(4, 8),
                cve: None,
                symptom: "an OOM notification asks for oom_pages from a balloon holding fewer: \
                          balloon_page_dequeue() finds the list empty and BUG()s",
            },
            Fix {
                name: "migrate-managed-count",
                title: "virtio-balloon: fix managed page counts when migrating pages between zones",
                commit: Commit::Id("63341ab03706"),
                // In mst's pull of 13 Dec 2019, based on 5.5-rc1.
                landed_in: v(5, 5),
                cve: None,
                symptom: "migrating a balloon page to another zone leaves both zones' managed page counts \
                          wrong",
            },
            Fix {
                name: "wait-woken",
                title: "virtio_balloon: do not call blocking ops when !TASK_RUNNING",
                // The title as KERNEL_FACTS gives it (B9); no id seen next to it. Seed 004 has the
                // wait_woken() form; 4.0 is the first release after the 2015 patch. S10:
                // find_string for the title finds only other drivers' fixes of that warning.
                commit: Commit::Unverified,
                landed_in: v(4, 0),
                cve: None,
                symptom: "the balloon thread's wait_event condition reads config space (which may sleep) \
                          with the task not TASK_RUNNING: \"do not call blocking ops when !TASK_RUNNING\"",
            },
            Fix {
                name: "s4-leak-fill",
                title: "virtio: balloon: leak / fill balloon across S4",
                // Seen with its title and date (29 Feb 2012) in the file's history.
                commit: Commit::Id("4eb05d562ea1"),
                landed_in: v(3, 4),
                cve: None,
                symptom: "after hibernation the pages handed to the host stay allocated: the balloon's \
                          memory is leaked",
            },
            Fix {
                name: "oom-shrinker",
                title: "virtio_balloon: replace oom notifier with shrinker",
                // Seen with its title in the Fixes: tags of later patches; v3 posted 3 Aug 2018,
                // and a stable reviewer names it as in 4.19.
                commit: Commit::Id("71994620bb25"),
                landed_in: v(4, 19),
                cve: None,
                symptom: "off (with the OOM handler off too): the balloon deflates only from the OOM \
                          notifier chain, which the mm maintainers were retiring",
            },
            Fix {
                name: "deflate-on-oom-handler",
                title: "virtio-balloon: Switch back to OOM handler for VIRTIO_BALLOON_F_DEFLATE_ON_OOM",
                // Seen with its title in a later mail quoting it; queued in akpm's tree after
                // mst's revert of 7 Apr 2020 (5.7 merge window).
                commit: Commit::Id("da10329cb057"),
                landed_in: v(5, 7),
                cve: None,
                symptom: "the balloon's own inflation reclaims, reclaim runs the balloon's shrinker, \
                          and the pages it deflates are inflated again: a busy no-op that never \
                          reaches the host's target",
            },
            Fix {
                name: "list-interfaces",
                title: "mm/balloon_compaction: List interfaces",
                // Seen with its title in the Fixes: tags of the two 5.3-rc fixes; "new since
                // 5.3-rc1" (the duplicate-removal patch's note).
                commit: Commit::Id("418a3ab1e778"),
                landed_in: KernelVersion::rc(5, 3, 0, 1),
                cve: None,
                symptom: "off: the pre-5.3 interface (balloon_page_enqueue inserts the page it is given)",
            },
            Fix {
                name: "avoid-duplicate-removal",
                title: "mm/balloon_compaction: avoid duplicate page removal",
                // Pulled in mst's for_linus on top of 5.3-rc1 (26 Jul 2019); no id seen next to
                // the title. S10: Linus's "Linux 5.3-rc3" announcement lists it in its shortlog
                // ("Wei Wang (1): mm/balloon_compaction: avoid duplicate page removal", read in
                // the linux-kernel archive), so 5.3-rc3, not rc2; find_string for the title finds
                // the v1-v5 patch mails and that shortlog, no id; pages search: no commit page.
                commit: Commit::Unverified,
                landed_in: KernelVersion::rc(5, 3, 0, 3),
                cve: None,
                symptom: "fill_balloon pops each page off its local list (list_del) and \
                          balloon_page_enqueue_one deletes it again: a #GP on LIST_POISON",
            },
            Fix {
                name: "dequeue-walk-locked",
                title: "virtio_balloon: fix race between migration and ballooning",
                // Minchan Kim's patch 2/2 of 28 Dec 2015 (Cc stable), seen with its title, diff and
                // a 4.4-rc5 oops in balloon_page_dequeue on linux-mm; no id seen next to the title.
                // Its patch 1/2, f68b992bbb47 "virtio_balloon: fix race by fill and leak", is in
                // seed 004. 4.5 is inferred (the merge window after the post); if the pair reached
                // 4.4 itself, the linux-4.4 preset should have this on. S10: find_string for the
                // title also finds mst's "[PATCH RFC] balloon: fix page list locking" of 1 Jan 2016
                // (linux-mm), posted "as an alternative to" this patch; which of the two was merged
                // was not seen, so this title may not be upstream's.
                commit: Commit::Unverified,
                landed_in: v(4, 5),
                cve: None,
                symptom: "balloon_page_dequeue walks the page list without pages_lock; compaction \
                          isolates the page its cursor moves to next and the walk follows LIST_POISON",
            },
        ],
        presets: &[
            NamedPreset {
                name: "linux-4.4",
                version: v(4, 4),
                description: "seed 004: drivers/virtio/virtio_balloon.c of Linux 4.4/4.5, no later fix",
            },
            NamedPreset {
                name: "linux-4.19",
                version: v(4, 19),
                description: "the shrinker era: DEFLATE_ON_OOM deflates from reclaim (4.19 to 5.6)",
            },
            NamedPreset {
                name: "fixed",
                version: NEWEST,
                description: "the 4.4 driver with every later fix ksim models (as of 6.6)",
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

    #[test]
    fn kernel_4_9_is_the_seed_with_the_fixes_landed_by_4_9() {
        let fixes = Fixes::parse(Some("4.9"), &[]).unwrap();
        let on: Vec<&str> = FIX_IDS.iter().filter(|id| fixes.on(**id)).map(|id| id.name()).collect();
        assert_eq!(
            on,
            [
                "pfn-format-virtio1",
                "leak-available-pages",
                "wait-woken",
                "s4-leak-fill",
                "dequeue-walk-locked"
            ]
        );
        let seed = Fixes::parse(Some("linux-4.4"), &[]).unwrap();
        let on: Vec<&str> = FIX_IDS.iter().filter(|id| seed.on(**id)).map(|id| id.name()).collect();
        assert_eq!(on, ["wait-woken", "s4-leak-fill"], "the seed has the two fixes older than 4.4");
        let old = Fixes::parse(Some("3.3"), &[]).unwrap();
        assert_eq!(old, Fixes::none());
        assert_eq!(Fixes::parse(Some("fixed"), &[]).unwrap(), Fixes::all());
        let rc1 = Fixes::parse(Some("4.15-rc1"), &[]).unwrap();
        assert!(rc1.on(OOM_DEADLOCK) && !rc1.on(FILL_PFNS_INDEX), "4.15-rc1 had the regression");
    }
}
