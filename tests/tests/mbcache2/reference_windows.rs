//! Threaded mbcache2 cases whose mismatches were the reference's, not the model's (issue #14):
//! each replays its shrunk case on its recorded schedule and must pass, having reached the kernel
//! window the reference now declares (see `mbcache-sim/src/mbcache2/check/reference.rs`). The
//! reference's unit tests there show each window is no wider than stated.

use mbcache_sim::{Mbcache2Config, Mbcache2Op as Op, Mbcache2Subject};
use sim_core::threaded::{self, ThreadedCase, ThreadedOptions, ThreadedReport};
use sim_core::trace::EventKind;

/// The configuration `ksim fuzz mbcache2 --threads 3` ran them with (the threaded adapter makes
/// it whole calls on 63 blocks, 48 prefilled).
const CONFIG: &str = r#"{"blocks": 128, "bucket_bits": 1, "filesystems": 1, "fixes": ["limit-cache-size", "reusable-flag", "e-referenced-to-tail", "dont-reclaim-used", "delete-or-get", "atomic-entry-flags", "cancel-shrink-work", "auto-delete-on-free", "create-holds-ref"], "held_max": 3, "keys": 4, "prefill": 0, "preset": "linux-7.1", "refcount_max": 3, "tasks": 3, "whole_calls": false}"#;

/// Runs `ops` (the artifact's prefix and threads) on the recorded schedule: `before` idle
/// decisions, `decisions`, `after` idle ones (the artifact's string, its runs of zeros counted).
fn replay(seed: u64, ops: &str, (before, decisions, after): (usize, &str, usize)) -> ThreadedReport {
    let config: Mbcache2Config = serde_json::from_str(CONFIG).expect("config");
    let schedule = format!("{}{decisions}{}", "0".repeat(before), "0".repeat(after));
    let mut case: serde_json::Value = serde_json::from_str(ops).expect("case");
    case["scheduler"] = serde_json::json!({"Replay": {"schedule": schedule}});
    let case: ThreadedCase<Op> = serde_json::from_value(case).expect("case");
    let options = ThreadedOptions { steps_max: 20_000, ..ThreadedOptions::new(3) };
    threaded::run_case::<Mbcache2Subject>(&config, seed, &case, &options)
}

/// Whether an operation in the kept trace returned `result` (its debug text).
fn returned(report: &ThreadedReport, result: &str) -> bool {
    let events = report.last.as_ref().map_or(&[][..], |last| last.trace_tail.as_slice());
    events.iter().any(|event| matches!(&event.kind, EventKind::OpEnd { result: r, .. } if r == result))
}

/// Case seed 8005756 (`ksim fuzz mbcache2 --threads 3 --seconds 60 --seed 8000000` on main
/// 8435303), shrunk to 9 operations (one in the set-up prefix):
/// 1. the prefill queued the shrink work; thread 2's insert of key 2 starts (a call in flight);
/// 2. thread 0's lazy unmount detaches the filesystem (thread 1's find then fails with ENODEV);
/// 3. thread 1's kworker takes the item and scans the detached cache (ordered after the unmount);
/// 4. thread 2's insert calls `schedule_work()`: the item is idle, so it is queued again, and
///    the insert hashes block 50;
/// 5. thread 2's kworker runs it again on the detached cache; then the unmount destroys it.
///
/// The insert is ordered before the unmount (it started before the detach), where the item was
/// still queued: its `schedule_work()` merged there, so the reference allowed one run of the
/// detached item and rejected the second ("the scan went on to 0:2 past its steps"). Now each
/// insert that merged into the queued item may have queued it again after the detach.
const SEED_8005756: &str = r#"{"prefix": [{"XattrRead": {"block": 82, "fs": 0, "task": 0}}], "threads": [[{"XattrNew": {"fs": 0, "key": 3, "task": 0}}, {"XattrFind": {"fs": 0, "key": 2, "task": 0}}, {"XattrNew": {"fs": 0, "key": 0, "task": 0}}, {"Umount": {"fs": 0}}], [{"XattrFind": {"fs": 0, "key": 3, "task": 1}}, "RunWork"], [{"XattrNew": {"fs": 0, "key": 2, "task": 2}}, "RunWork"]]}"#;
const SEED_8005756_SCHEDULE: (usize, &str, usize) = (
    1602,
    "1111111111111111111111111111111111111111111111111111111111111113333311112222222222222222222222222222222222222222222233333333333333333333313333333333333333333333333333333333333333333333111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111",
    4,
);

#[test]
fn an_insert_in_flight_at_a_lazy_unmount_may_queue_the_shrink_work_again_after_a_kworker_took_it() {
    let replay_with = "replay: cargo test -p ksim-tests --test main -- mbcache2::reference_windows::an_insert_in_flight; \
                       found by ksim fuzz mbcache2 --threads 3 --seconds 60 --seed 8000000 (case seed 8005756)";
    let report = replay(8_005_756, SEED_8005756, SEED_8005756_SCHEDULE);
    assert_eq!(report.violation(), None, "{replay_with}");
    assert_eq!(report.ops_run, 9, "the case ran {} of its 9 operations; {replay_with}", report.ops_run);
    let second_run = "Scanned([ScanStep { key: 0, value: 2, evicted: true }, ScanStep { key: 1, value: 3, evicted: true }])";
    assert!(returned(&report, second_run), "the second run of the detached item is gone; {replay_with}");
}

/// Case seed 9677 (`ksim fuzz mbcache2 --threads 3 --seed 9677 --cases 1`), shrunk to 16
/// operations:
/// 1. thread 2's insert of key 3 reads `c_entry_count` past `c_max_entries` and calls
///    `schedule_work()` (nothing queued: the item is queued);
/// 2. thread 1's kworker takes that item and scans;
/// 3. thread 1's find of key 3 misses the entry (ENOENT);
/// 4. thread 2's insert hashes the entry.
///
/// The insert is ordered after the find, so the run is ordered before the insert that queued
/// its item: the reference, with nothing queued, rejected the run (or, ordering the insert
/// first, the find). Now a run with nothing queued is owed to the cache's next insert, which
/// then queues nothing; an unpaid debt fails the order at the end of the case.
const SEED_9677: &str = r#"{"prefix": [{"XattrFind": {"fs": 0, "key": 1, "task": 1}}, {"XattrNew": {"fs": 0, "key": 0, "task": 0}}], "threads": [[{"XattrRelease": {"block": 63, "fs": 0, "task": 0}}, {"XattrFind": {"fs": 0, "key": 0, "task": 0}}, {"XattrFind": {"fs": 0, "key": 2, "task": 0}}, {"XattrNew": {"fs": 0, "key": 0, "task": 0}}, {"XattrRelease": {"block": 192, "fs": 0, "task": 0}}, "RunWork", {"XattrFind": {"fs": 0, "key": 2, "task": 0}}], [{"XattrRelease": {"block": 106, "fs": 0, "task": 1}}, {"XattrNew": {"fs": 0, "key": 2, "task": 1}}, {"XattrRelease": {"block": 147, "fs": 0, "task": 1}}, "RunWork", {"XattrFind": {"fs": 0, "key": 3, "task": 1}}], ["RunWork", {"XattrNew": {"fs": 0, "key": 3, "task": 2}}]]}"#;
const SEED_9677_SCHEDULE: (usize, &str, usize) = (
    1517,
    "1222222222222222222222222222222222222222222222222222222222211111111111111111111111113333333333333333333333333333333333333333333321111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111111202333333223222222222222222222222222222222222222222222222222223333333333333333333332",
    311,
);

#[test]
fn a_kworker_may_run_the_item_an_insert_scheduled_before_the_insert_hashes_its_entry() {
    let replay_with =
        "replay: cargo test -p ksim-tests --test main -- mbcache2::reference_windows::a_kworker_may_run; \
                       found by ksim fuzz mbcache2 --threads 3 --seed 9677 --cases 1";
    let report = replay(9_677, SEED_9677, SEED_9677_SCHEDULE);
    assert_eq!(report.violation(), None, "{replay_with}");
    assert_eq!(report.ops_run, 16, "the case ran {} of its 16 operations; {replay_with}", report.ops_run);
    assert!(returned(&report, "Failed(ENOENT)"), "no find missed the entry; {replay_with}");
}

/// Case seed 10155 (a `ksim fuzz mbcache2 --threads 3` campaign, artifact
/// `mbcache2-threaded-seed10155.ksim.json`), shrunk to 6 operations (two in the prefix):
/// 1. thread 2's kworker takes the shrink work and, `c_list_lock` held, evicts block 5's entry,
///    then meets block 6's at the LRU's head and tests `e_referenced`: clear;
/// 2. thread 1's find of key 0 holds block 6's entry, shares the block, and its
///    `mb_cache_entry_touch()` and put land now (count back to one);
/// 3. the kworker's `atomic_cmpxchg(&e_refcnt, 1, 0)` claims the entry: evicted, its bit set.
///
/// The reference allowed that race (the shrinker's test and claim are two instants) only on a
/// scan's first step; a shrink work run scans `c_max_entries / 16` entries, and the window is
/// there at every step.
const SEED_10155: &str = r#"{"prefix": [{"Shrink": {"fs": 0, "nr": 5, "task": 2}}, {"XattrRead": {"block": 238, "fs": 0, "task": 0}}], "threads": [[{"XattrNew": {"fs": 0, "key": 0, "task": 0}}], [{"XattrFind": {"fs": 0, "key": 2, "task": 1}}, {"XattrFind": {"fs": 0, "key": 0, "task": 1}}], ["RunWork"]]}"#;
const SEED_10155_SCHEDULE: (usize, &str, usize) = (
    1673,
    "11313322233221221233113223311132212322231111133112112313111133113223311222222123311131133333133113333131133333111311121123333331",
    304,
);

#[test]
fn a_share_may_touch_its_entry_between_a_later_scan_steps_test_and_claim() {
    let replay_with =
        "replay: cargo test -p ksim-tests --test main -- mbcache2::reference_windows::a_share_may_touch; \
                       case seed 10155 of ksim fuzz mbcache2 --threads 3";
    let report = replay(10_155, SEED_10155, SEED_10155_SCHEDULE);
    assert_eq!(report.violation(), None, "{replay_with}");
    assert_eq!(report.ops_run, 6, "the case ran {} of its 6 operations; {replay_with}", report.ops_run);
    let evicted = "Scanned([ScanStep { key: 1, value: 5, evicted: true }, ScanStep { key: 0, value: 6, evicted: true }])";
    assert!(
        returned(&report, "Shared { block: 6, count: 2 }"),
        "the find shared another block; {replay_with}"
    );
    assert!(returned(&report, evicted), "the run did not evict the shared entry; {replay_with}");
}

/// Case seed 9002097 (`ksim fuzz mbcache2 --threads 3 --seconds 120 --seed 9000000`, once the
/// three windows above were declared), shrunk to 6 operations:
/// 1. thread 1's lazy unmount detaches the filesystem while thread 0's insert is in flight
///    (thread 2's insert then fails with ENODEV);
/// 2. thread 2's kworker takes the queued shrink work and scans the detached cache;
/// 3. thread 0's insert calls `schedule_work()`: queued again;
/// 4. thread 0's kworker dequeues it while thread 2's runs it, and hands it over (`Deferred`);
/// 5. thread 2's kworker runs it again (`Reran`).
///
/// The insert's second queueing was allowed (`merged_inserts`), but only to a second kworker's
/// run: the rerun of a detached item was judged as a rerun of a mounted one, owed to a later
/// insert ("the shrink work ran again, but was never queued").
const SEED_9002097: &str = r#"{"prefix": [{"XattrFind": {"fs": 0, "key": 2, "task": 1}}], "threads": [[{"XattrNew": {"fs": 0, "key": 3, "task": 0}}, "RunWork"], [{"Umount": {"fs": 0}}], [{"XattrNew": {"fs": 0, "key": 0, "task": 2}}, "RunWork"]]}"#;
const SEED_9002097_SCHEDULE: (usize, &str, usize) = (
    1469,
    "10202231123333113331333313313333133133331133333313313313113333333131131313133111313312131133222213312323333333232233332323333333333333333333333330323223333222222222222222222222222222222222222222222222222222222222222222222222222222222222222222222222222222222222222222222222222222222222222222222222222222222222222222222222222222222222222222222222222222222222222222222222222222222222222222222222222222222222222222222222222222222222222222222222222222222222222222222222222222222222222222222222222222222222222222222222222222222222222222222222222222222222222222222222222222222222222222222222222222222222222222222222222222222222222222222222222222222222222222222222222222222222222222222222222222222222222222222222",
    3,
);

#[test]
fn a_detached_shrink_work_item_queued_again_by_an_insert_in_flight_may_be_rerun() {
    let replay_with = "replay: cargo test -p ksim-tests --test main -- mbcache2::reference_windows::a_detached_shrink_work_item; \
                       found by ksim fuzz mbcache2 --threads 3 --seconds 120 --seed 9000000 (case seed 9002097)";
    let report = replay(9_002_097, SEED_9002097, SEED_9002097_SCHEDULE);
    assert_eq!(report.violation(), None, "{replay_with}");
    assert_eq!(report.ops_run, 6, "the case ran {} of its 6 operations; {replay_with}", report.ops_run);
    assert!(returned(&report, "Deferred"), "no kworker handed the detached item over; {replay_with}");
    assert!(report.coverage.contains("shrink-work-rerun"), "the detached item was not rerun; {replay_with}");
}

/// Case seed 11001046 (`ksim fuzz mbcache2 --threads 3 --seconds 120 --seed 11000000`, once the
/// three windows above were declared), shrunk to 12 operations:
/// 1. thread 0's shrinker call enters the filesystem (a call in flight) and waits to scan;
/// 2. thread 1's lazy unmount detaches it (thread 2's find then fails with ENODEV);
/// 3. thread 2's kworker runs the queued shrink work on the detached cache: blocks 0 and 1 go;
/// 4. thread 0's one-step scan evicts the new LRU head, block 2; then the unmount destroys.
///
/// The scan follows the detached run, which is ordered after the unmount; the reference had
/// no cache there to judge it by ("a scan of an unmounted filesystem"). Now a scan in flight at
/// the detach, up to one per other task, goes on unjudged, as a detached run does. The set-up
/// prefix's find yields once at `ext4_sb_bread()` (one more set-up decision than recorded).
const SEED_11001046: &str = r#"{"prefix": [{"XattrNew": {"fs": 0, "key": 3, "task": 0}}, {"XattrRead": {"block": 176, "fs": 0, "task": 1}}, {"XattrFind": {"fs": 0, "key": 1, "task": 1}}, {"XattrNew": {"fs": 0, "key": 2, "task": 2}}], "threads": [[{"Shrink": {"fs": 0, "nr": 1, "task": 0}}], [{"XattrNew": {"fs": 0, "key": 2, "task": 1}}, {"Umount": {"fs": 0}}], [{"XattrRelease": {"block": 181, "fs": 0, "task": 2}}, {"XattrNew": {"fs": 0, "key": 0, "task": 2}}, {"XattrRelease": {"block": 168, "fs": 0, "task": 2}}, {"XattrFind": {"fs": 0, "key": 0, "task": 2}}, "RunWork"]]}"#;
const SEED_11001046_SCHEDULE: (usize, &str, usize) = (
    1688,
    "13333333333333333333333333333333333333333333333333333333333333333322222222222222222222122223332222222223333333333333333333322222333333333333333333333333333333333333333331111111111111111111112122222222222222222222222222222222222222222222222222222222222222222222222222222222222222222222222222222222222222222222222222222222222222222222222222222222222222222222222222222222222222222222222222222222222222222222222222222222222222222222222222222222222222222222222222222222222222222222222222222222222222222222222222222222222222222222222222222222222222222222222222222222222222222222222222222222222222222222222222222222222222222222222222222222222222222222222222222222222222222222222222222222222222222222222222222222222222222222222222222222222222222222222222222222222222222223",
    4,
);

#[test]
fn a_shrinker_scan_in_flight_at_a_lazy_unmount_may_follow_the_detached_shrink_work() {
    let replay_with = "replay: cargo test -p ksim-tests --test main -- mbcache2::reference_windows::a_shrinker_scan_in_flight; \
                       found by ksim fuzz mbcache2 --threads 3 --seconds 120 --seed 11000000 (case seed 11001046)";
    let report = replay(11_001_046, SEED_11001046, SEED_11001046_SCHEDULE);
    assert_eq!(report.violation(), None, "{replay_with}");
    assert_eq!(report.ops_run, 12, "the case ran {} of its 12 operations; {replay_with}", report.ops_run);
    let after_the_run = "Scanned([ScanStep { key: 0, value: 2, evicted: true }])";
    assert!(returned(&report, after_the_run), "the scan did not follow the detached run; {replay_with}");
}

/// Case seed 9002599 (`ksim fuzz mbcache2 --threads 3 --seconds 120 --seed 9000000`, with the
/// find's `ext4_sb_bread()` yield), shrunk to 8 operations, after a remount (blocks 49, key 0,
/// and 50, key 1, on the LRU):
/// 1. thread 2's release of block 49 (its last reference) claims the entry in
///    `mb_cache_entry_delete_or_get()` (`e_refcnt` from two to zero);
/// 2. thread 1's find of key 0 passes it over (ENOENT);
/// 3. thread 1's one-step scan meets it at the LRU's head and keeps it (its `cmpxchg` from one
///    fails);
/// 4. thread 2's release takes it off the LRU and frees it.
///
/// The find orders the release before the scan, where the reference had the entry gone ("the
/// scan met 0:49, not on the LRU [50]"). Now a kept step may meet the entry a task's release
/// claimed, until that task's next operation.
const SEED_9002599: &str = r#"{"prefix": [{"XattrNew": {"fs": 0, "key": 3, "task": 0}}, {"Umount": {"fs": 0}}, {"Mount": {"fs": 0}}, {"XattrNew": {"fs": 0, "key": 0, "task": 2}}, {"XattrNew": {"fs": 0, "key": 1, "task": 0}}], "threads": [[], [{"XattrFind": {"fs": 0, "key": 0, "task": 1}}, {"Shrink": {"fs": 0, "nr": 1, "task": 1}}], [{"XattrRelease": {"block": 44, "fs": 0, "task": 2}}]]}"#;
const SEED_9002599_SCHEDULE: (usize, &str, usize) =
    (1954, "33333333322222222222222222223333333333333333333331", 140);

#[test]
fn a_scan_may_keep_an_entry_a_release_claimed_before_the_release_unlists_it() {
    let replay_with = "replay: cargo test -p ksim-tests --test main -- mbcache2::reference_windows::a_scan_may_keep; \
                       found by ksim fuzz mbcache2 --threads 3 --seconds 120 --seed 9000000 (case seed 9002599)";
    let report = replay(9_002_599, SEED_9002599, SEED_9002599_SCHEDULE);
    assert_eq!(report.violation(), None, "{replay_with}");
    assert_eq!(report.ops_run, 8, "the case ran {} of its 8 operations; {replay_with}", report.ops_run);
    let kept = "Scanned([ScanStep { key: 0, value: 49, evicted: false }])";
    assert!(returned(&report, kept), "the scan did not meet the claimed entry; {replay_with}");
    assert!(returned(&report, "Failed(ENOENT)"), "the find did not pass the entry over; {replay_with}");
}

/// Case seed 11018796 (`ksim fuzz mbcache2 --threads 3 --seconds 120 --seed 11000000`, once the
/// early-run debt was checked at the end), shrunk to 6 operations, the prefix's scans leaving
/// 34 entries (`c_max_entries` 32):
/// 1. thread 1's kworker takes the queued shrink work (ordered here) and has yet to scan;
/// 2. thread 0's one-step scan evicts an entry (33 left);
/// 3. thread 0's insert reads 33 and queues the work again; thread 1's kworker evicts two;
/// 4. thread 0's kworker runs the item the insert queued.
///
/// In the reference the first run's evictions come at its dequeue, so the insert read 31 and
/// queued nothing, and the last run was a debt no later insert paid. Now an insert under the
/// limit by no more than the last run's evictions may have scheduled the work.
const SEED_11018796: &str = r#"{"prefix": [{"Shrink": {"fs": 0, "nr": 7, "task": 0}}, {"Shrink": {"fs": 0, "nr": 7, "task": 2}}], "threads": [[{"Shrink": {"fs": 0, "nr": 1, "task": 0}}, {"XattrNew": {"fs": 0, "key": 1, "task": 0}}, "RunWork"], ["RunWork"]]}"#;
const SEED_11018796_SCHEDULE: (usize, &str, usize) = (
    1657,
    "1211121111111112221121211122222212211121221122122111222111212111122212211121122212211112121222121111111111111111111111111111111111111111111",
    255,
);

#[test]
fn an_insert_may_read_the_entry_count_before_the_scan_of_a_run_ordered_before_it() {
    let replay_with = "replay: cargo test -p ksim-tests --test main -- mbcache2::reference_windows::an_insert_may_read; \
                       found by ksim fuzz mbcache2 --threads 3 --seconds 120 --seed 11000000 (case seed 11018796)";
    let report = replay(11_018_796, SEED_11018796, SEED_11018796_SCHEDULE);
    assert_eq!(report.violation(), None, "{replay_with}");
    assert_eq!(report.ops_run, 6, "the case ran {} of its 6 operations; {replay_with}", report.ops_run);
    assert!(returned(&report, "Block(48)"), "the insert did not run; {replay_with}");
}

/// The same case seed shrunk another way (7 operations) once the window above was declared:
/// an extra eviction ordered before the last run leaves 31 entries there, so the run with
/// nothing queued must be allowed by the insert's earlier read past the limit, not by the count
/// at the run.
const SEED_11018796_AGAIN: &str = r#"{"prefix": [{"Shrink": {"fs": 0, "nr": 7, "task": 0}}, {"Shrink": {"fs": 0, "nr": 7, "task": 2}}], "threads": [[{"Shrink": {"fs": 0, "nr": 1, "task": 0}}, {"XattrNew": {"fs": 0, "key": 1, "task": 0}}, {"XattrRelease": {"block": 182, "fs": 0, "task": 0}}, "RunWork"], ["RunWork"]]}"#;
const SEED_11018796_AGAIN_SCHEDULE: (usize, &str, usize) = (
    1657,
    "111111211121111111211222212222221111111111111221211212221212222221122221222111122222122222111111111111111111111111111111111111111111111111111111111111111111111111111111",
    251,
);

#[test]
fn a_run_owed_to_an_insert_that_read_the_count_early_needs_no_count_past_the_limit_at_the_run() {
    let replay_with = "replay: cargo test -p ksim-tests --test main -- mbcache2::reference_windows::a_run_owed_to; \
                       found by ksim fuzz mbcache2 --threads 3 --seconds 120 --seed 11000000 (case seed 11018796)";
    let report = replay(11_018_796, SEED_11018796_AGAIN, SEED_11018796_AGAIN_SCHEDULE);
    assert_eq!(report.violation(), None, "{replay_with}");
    assert_eq!(report.ops_run, 7, "the case ran {} of its 7 operations; {replay_with}", report.ops_run);
}
