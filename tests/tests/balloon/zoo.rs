//! The balloon zoo, both ways: with each fix off the checkers find the historical bug (the
//! violation kind the catalog names); with it on, the same budget is quiet.

use balloon_sim::BalloonSubject;
use balloon_sim::Fixes;
use sim_core::check::Catalog;
use sim_core::zoo::assert_found_and_fixed;

fn found_with_fix_off_and_quiet_with_it_on(name: &str) {
    assert_found_and_fixed::<BalloonSubject>(name);
}

/// Regression: "virtio_balloon: fix deadlock on OOM" (upstream 2017, c7cdff0e8647), on 4.4's
/// allocator (which calls no OOM killer for an allocation without `__GFP_FS`).
///
/// 1. The balloon thread, in fill_balloon(), takes balloon_lock and allocates a page
///    (GFP_HIGHUSER_MOVABLE | __GFP_NOMEMALLOC | __GFP_NORETRY); memory is short, so direct
///    reclaim in __GFP_FS context waits for a filesystem lock.
/// 2. A task holding that filesystem lock allocates with GFP_NOFS: nothing is free, and 4.4
///    keeps looping, taking oom_lock each round and bailing out before the OOM killer.
/// 3. Another task's allocation, which may enter the filesystem, takes oom_lock and runs the
///    OOM notifier chain; virtballoon_oom_notify() calls leak_balloon(), which waits for
///    balloon_lock.
///
/// Symptom: an OOM lockup; lockdep reports balloon_lock -> fs_lock -> oom_lock ->
/// oom_notify_list.rwsem -> balloon_lock. Fix: allocate balloon pages before taking
/// balloon_lock, and sleep out of puff without it.
#[test]
fn oom_deadlock_is_found_by_lockdep_with_the_seeds_fill_balloon_and_quiet_when_fixed() {
    found_with_fix_off_and_quiet_with_it_on("oom-deadlock");
}

#[test]
fn oom_deadlock_scenario_reports_circular_locking_only_without_the_fix() {
    let sim = BalloonSubject::run_scenario("oom-deadlock").expect("scenario");
    let kinds: Vec<&str> = sim.lockdep().reports().iter().map(|r| r.kind()).collect();
    assert!(
        !kinds.is_empty() && kinds.iter().all(|k| *k == "circular-locking"),
        "{kinds:?}: {}",
        sim.lockdep().reports().iter().map(|r| r.to_string()).collect::<Vec<_>>().join("\n")
    );
    let classes = sim.lockdep().reports()[0].to_string();
    assert!(classes.contains("&vb->balloon_lock") && classes.contains("fs_lock"), "{classes}");
    let fixed = balloon_sim::oom_deadlock_scenario(Fixes::all());
    assert!(fixed.lockdep().reports().is_empty(), "{:?}", fixed.lockdep().reports());
}

/// Regression: "virtio_balloon: fix increment of vb->num_pfns in fill_balloon()" (2017).
///
/// 1. With the deadlock fix, fill_balloon() enqueues each allocated page under balloon_lock.
/// 2. It advances num_pfns before set_page_pfns(), so the page's pfns land one slot late.
/// 3. tell_host() sends pfns[0..num_pfns]: a stale first slot, and not the last page.
///
/// Symptom: the host holds PFNs of pages the guest uses, and not those of a balloon page (and a
/// full array is overrun). Fix: advance num_pfns after writing.
#[test]
fn fill_pfns_index_regression_is_found_and_quiet_when_fixed() {
    found_with_fix_off_and_quiet_with_it_on("fill-pfns-index");
}

/// Regression: "virtio_balloon: init 1st buffer in stats vq" (2017).
///
/// 1. init_vqs() primes the stats queue with vb->stats, which kmalloc left uninitialised.
/// 2. The host reads the buffer at once and takes it as the guest's statistics.
///
/// Symptom: the host records garbage tags and values. Fix: update_balloon_stats() first.
#[test]
fn stats_first_buffer_is_found_and_quiet_when_fixed() {
    found_with_fix_off_and_quiet_with_it_on("stats-first-buffer");
}

/// Regression: "virtio_balloon: fix PFN format for virtio-1" (2017, 87c9403b0d1d).
///
/// 1. A big-endian guest negotiates VIRTIO_F_VERSION_1, so the device reads little-endian.
/// 2. fill_balloon() writes pfns[] in CPU order and tell_host() sends them as they are.
///
/// Symptom: the host sees byte-swapped PFNs (outside guest memory). Fix: cpu_to_virtio32().
#[test]
fn pfn_format_for_virtio1_is_found_and_quiet_when_fixed() {
    found_with_fix_off_and_quiet_with_it_on("pfn-format-virtio1");
}

/// Regression: "virtio_balloon: Fix endless deflation and inflation on arm64" (2020).
///
/// 1. 64 KiB guest pages: one guest page is 16 balloon pages.
/// 2. The host asks for a target that is not a multiple of 16: fill_balloon() overshoots by a
///    whole guest page, towards_target() turns negative, leak_balloon() undershoots, and so on.
///
/// Symptom: the balloon inflates and deflates for ever. Fix: align the target up.
#[test]
fn endless_inflate_deflate_with_64k_pages_is_found_and_quiet_when_fixed() {
    found_with_fix_off_and_quiet_with_it_on("endless-inflate-deflate-64k");
}

/// Regression: "balloon: check the number of available pages in leak balloon" (2016).
///
/// 1. DEFLATE_ON_OOM: the OOM notifier asks leak_balloon() for oom_pages (256) pages.
/// 2. The balloon holds fewer (or none): leak_balloon() keeps calling balloon_page_dequeue().
/// 3. The list is empty and no page is isolated: balloon_page_dequeue() BUG()s.
///
/// Symptom: a kernel BUG on OOM in a guest whose balloon is (nearly) deflated. Fix: never ask
/// for more pages than the balloon holds.
#[test]
fn leak_more_than_the_balloon_holds_is_found_and_quiet_when_fixed() {
    found_with_fix_off_and_quiet_with_it_on("leak-available-pages");
}

/// Regression: "virtio-balloon: fix managed page counts when migrating pages" (2020).
///
/// 1. Without DEFLATE_ON_OOM, inflating a page takes it off its zone's managed count.
/// 2. Migration (compaction, offlining) moves a balloon page to a page in another zone.
/// 3. virtballoon_migratepage() adjusts nothing.
///
/// Symptom: one zone's managed count is too high and the other's too low. Fix: move the
/// managed count with the page when the zones differ.
#[test]
fn migrate_managed_count_is_found_and_quiet_when_fixed() {
    found_with_fix_off_and_quiet_with_it_on("migrate-managed-count");
}

/// Regression: "virtio_balloon: do not call blocking ops when !TASK_RUNNING" (2015, before the
/// seed, which has the fix).
///
/// 1. 3.x's balloon thread sleeps in `wait_event_interruptible(vb->config_change, cond)`.
/// 2. A config change wakes it; wait_event tests `cond` again after prepare_to_wait() has set
///    TASK_INTERRUPTIBLE.
/// 3. `cond` calls towards_target(), whose virtio_cread() may sleep.
///
/// Symptom: "WARNING: do not call blocking ops when !TASK_RUNNING" (and a lost wake-up if the
/// read does sleep). Fix: wait with wait_woken(), testing the condition in TASK_RUNNING.
#[test]
fn blocking_config_read_in_the_wait_condition_is_found_and_quiet_when_fixed() {
    found_with_fix_off_and_quiet_with_it_on("blocking-config-read-in-wait");
}

/// Regression: "virtio: balloon: leak / fill balloon across S4" (2012, 4eb05d562ea1; before the
/// seed, which has the fix).
///
/// 1. The balloon holds pages the host took; the guest hibernates: 3.3's freeze keeps them.
/// 2. The machine powers off; the host that comes back holds nothing.
/// 3. 3.3's restore takes the pages off the balloon's list and resets num_pages, but never
///    frees them.
///
/// Symptom: the ballooned memory is lost to the guest after every hibernation. Fix: deflate on
/// freeze and fill again on restore.
#[test]
fn s4_balloon_leak_is_found_and_quiet_when_fixed() {
    found_with_fix_off_and_quiet_with_it_on("s4-balloon-leak");
}

#[test]
fn catalog_configs_reject_unknown_names_with_the_valid_ones() {
    let err = BalloonSubject::config(Some("linux-9.9"), &[]).expect_err("unknown preset");
    assert!(err.contains("linux-4.4"), "{err}");
    let err = BalloonSubject::config(None, &["nope".to_string()]).expect_err("unknown fix");
    assert!(err.contains("oom-deadlock"), "{err}");
    assert_eq!(BalloonSubject::presets().last().map(|p| p.name.clone()).as_deref(), Some("fixed"));
    // Every fix has its zoo row but the two refactors whose regressions are rows of their own,
    // and the dequeue walk's race, which only a threaded run can overlap with compaction (the
    // zoo's op-level hunt cannot find it; `balloon::threaded` replays it).
    let refactors = ["oom-shrinker", "list-interfaces", "dequeue-walk-locked"];
    let fixes: Vec<String> = BalloonSubject::fixes()
        .iter()
        .map(|f| f.name.to_string())
        .filter(|f| !refactors.contains(&f.as_str()))
        .collect();
    let zoo: Vec<String> = BalloonSubject::zoo().iter().map(|z| z.fix.to_string()).collect();
    assert_eq!(fixes, zoo);
}

/// Regression: "virtio_balloon: replace oom notifier with shrinker" (4.19, 71994620bb25),
/// repaired by "virtio-balloon: Switch back to OOM handler for VIRTIO_BALLOON_F_DEFLATE_ON_OOM"
/// (5.7, da10329cb057).
///
/// 1. The host's target is above the balloon and the guest's memory is full.
/// 2. fill_balloon() allocates; nothing is free, so direct reclaim runs the shrinkers,
///    among them the balloon's, which deflates up to 128 pages (tells the host, frees them).
/// 3. The allocation takes one freed page and the round goes on taking the rest: the balloon
///    inflates what it just deflated, and the next round does it again.
///
/// Symptom: "a busy no-op": inflation never reaches the target; balloon_inflate and
/// balloon_deflate grow together. Fix: deflate only from the OOM notifier, after reclaim
/// failed (fill_balloon's `__GFP_NORETRY` allocations never reach it).
#[test]
fn deflate_on_oom_reinflated_is_found_and_quiet_when_fixed() {
    found_with_fix_off_and_quiet_with_it_on("deflate-on-oom-reinflated");
}

/// Regression: "mm/balloon_compaction: List interfaces" (5.3-rc1, 418a3ab1e778), repaired by
/// "mm/balloon_compaction: avoid duplicate page removal" (5.3-rc3).
///
/// 1. fill_balloon() allocates its pages onto a local list (balloon_page_push).
/// 2. Under balloon_lock it takes each off with balloon_page_pop(): `list_del`, so the page's
///    `lru` holds LIST_POISON1/2.
/// 3. balloon_page_enqueue() now calls balloon_page_enqueue_one(), which does `list_del` again.
///
/// Symptom: a #GP in the guest on the first inflation. Fix: only the list variant deletes.
#[test]
fn list_del_twice_is_found_and_quiet_when_fixed() {
    found_with_fix_off_and_quiet_with_it_on("list-del-twice");
}
