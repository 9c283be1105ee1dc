//! taskstats under threaded campaigns: a campaign's finding pinned as a case (seed, operations,
//! schedulers) so the false report it found cannot come back unnoticed.

use sim_core::check::Catalog;
use sim_core::threaded::{self, SchedulerChoice, ThreadedCase, ThreadedOptions};
use taskstats_sim::TaskstatsSubject;

/// The case a `--threads 3` campaign on linux-3.8 found at seed 14586 and shrank to 9 operations
/// (artifact `taskstats-threaded-seed14586.ksim.json`): init forks two threads, then two of the
/// group's threads exit at once. Where one exit's `taskstats_tgid_alloc()` fails its allocation
/// while the other's publishes `signal->stats`, the kernel counts the first thread as a thread
/// group member (it sees the stats under siglock) and adds it; the checker's ledger once booked
/// it by a look taken later, or not at all, and reported a false `group-stats`.
const SEED_14586: &str = r#"{
  "prefix": [
    {"QueryPid": {"port": 207, "target": {"Task": 64}}},
    {"Fork": {"kind": "Thread", "parent": 220}},
    {"QueryPid": {"port": 66, "target": {"Task": 170}}},
    {"Fork": {"kind": "Thread", "parent": 208}},
    {"Run": {"task": 161}},
    {"QueryTgid": {"port": 120, "target": {"Task": 241}}}
  ],
  "threads": [[{"Exit": {"task": 49}}], [{"Run": {"task": 82}}, {"Run": {"task": 241}}], [{"Exit": {"task": 31}}]],
  "scheduler": "Random"
}"#;

/// The seed-14586 case, one execution per seed (each seed its own schedule and fault draws,
/// both schedulers): in some executions one exit's allocation fails with the group's stats still
/// unset (`group-stats-allocation-failed`: the kernel leaves that thread out) while the other
/// exit's allocation publishes them (`group-stats-allocated`), the window where a ledger that
/// looked at `signal->stats` later would book the thread the kernel left out and report a false
/// `group-stats` at the group's death or at quiescence; no execution reports anything.
#[test]
fn an_exit_that_lost_the_group_stats_allocation_race_is_booked_as_the_kernel_counts_it() {
    let config = TaskstatsSubject::config(Some("linux-3.8+tgid-alloc-data-race"), &[]).expect("preset");
    let mut case: ThreadedCase<taskstats_sim::Op> = serde_json::from_str(SEED_14586).expect("case");
    let options = ThreadedOptions { executions: 1, ..ThreadedOptions::new(3) };
    let mut window = 0;
    for seed in 0..SEEDS {
        case.scheduler =
            if seed % 2 == 0 { SchedulerChoice::Random } else { SchedulerChoice::Pct { depth: 3 } };
        let report = threaded::run_case::<TaskstatsSubject>(&config, seed, &case, &options);
        assert!(report.violation().is_none(), "seed {seed} {:?}: {:?}", case.scheduler, report.violation());
        let marks = &report.coverage;
        window += usize::from(
            marks.contains("group-stats-allocation-failed") && marks.contains("group-stats-allocated"),
        );
    }
    assert!(window > 0, "no execution of {SEEDS} reached the allocation race");
}

/// Executions (seeds) the regression case runs.
const SEEDS: u64 = 300;

/// The case a `--threads 3` campaign on linux-3.8 found at seed 535272 and shrank to 12
/// operations (artifact `taskstats-threaded-seed535272.ksim.json`), on its recorded schedule:
/// pid 2 forks thread pid 3, then both exit at once. pid 2 decrements `signal->live` first,
/// so pid 3's exit is the group's death; pid 2's taskstats_tgid_alloc() publishes
/// `signal->stats`, pid 3 fills its own (empty) delays, and pid 2 enters fill_tgid_exit()'s
/// siglock section. While pid 2 is inside it, before its delayacct_add_tsk() has added its
/// delays, pid 3's taskstats_exit() memcpy()s `signal->stats` into the TGID record with no
/// lock and finds it without them. The ledger once counted pid 2 from the start of that
/// section and reported a false `group-stats` ("0 / 0" against "4 / 47556").
const SEED_535272: &str = r#"{
  "prefix": [
    {"Exit": {"task": 116}},
    {"QueryPid": {"port": 138, "target": {"Task": 171}}},
    {"Fork": {"kind": {"Unprivileged": 91}, "parent": 49}},
    {"QueryPid": {"port": 48, "preempt": 5, "target": {"Task": 178}}},
    {"Run": {"task": 31}},
    {"OpenPort": {"task": 144}}
  ],
  "threads": [
    [{"Register": {"mask": {"Cpus": 3}, "port": 92}}],
    [{"Register": {"mask": {"Cpus": 2}, "port": 60}}, {"Exit": {"task": 136}}, {"Exit": {"task": 65}}],
    [{"Fork": {"kind": "Thread", "parent": 141}}, {"Exit": {"task": 165}}]
  ],
  "scheduler": {"Replay": {"schedule": "0000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000010111013122313322213321132113331131132231213123133132122133123231113313131133313333333133131333311323232121233132111112112223131211112331213212332321321331122331312313133333322222213322132221311221313231312123312121111332312232121231222222323232232222222233332232223322333333333333333333313333233222222232233330233233333333222333222233233222233333333333333333333333333333333333333333000"}}
}"#;

/// The seed-535272 case on its recorded schedule: the group's death copies `signal->stats`
/// while another thread's fill_tgid_exit() is between taking siglock and adding its delays
/// (`group-stats-copied-during-fill`); the record without that thread's delays passes, as the
/// kernel's unlocked memcpy() may send it.
#[test]
fn a_group_death_that_copies_the_stats_during_another_threads_fill_may_miss_its_delays() {
    let config = TaskstatsSubject::config(Some("linux-3.8+tgid-alloc-data-race"), &[]).expect("preset");
    let case: ThreadedCase<taskstats_sim::Op> = serde_json::from_str(SEED_535272).expect("case");
    let options = ThreadedOptions { executions: 1, ..ThreadedOptions::new(3) };
    let report = threaded::run_case::<TaskstatsSubject>(&config, 535_272, &case, &options);
    let replay = "replay: ksim fuzz taskstats --threads 3 --cases 1 --seed 535272 --jobs 1";
    assert!(report.violation().is_none(), "{:?}\n{replay}", report.violation());
    assert!(
        report.coverage.contains("group-stats-copied-during-fill"),
        "the window was not reached: {:?}\n{replay}",
        report.coverage
    );
}

/// The case a `--threads 3 --seconds 60` campaign on merged main (linux-3.8) stopped at, seed
/// 555, shrunk to 12 operations, with its recorded schedule: thread-0's TGID query of init's
/// group was resolved before thread-2 forked pid 2 into that group, so pid 2 was not among the
/// threads the query claimed, and thread-1 ran pid 2 and made it exit while the query ran. The
/// query took siglock after pid 2's taskstats_tgid_alloc() and before its fill_tgid_exit(): the
/// kernel's walk counts pid 2 live, once, and `signal->stats` does not have it yet. The ledger
/// once booked pid 2 as exited before its fill and expected it twice (a false `group-stats`,
/// "4 / 17502" against the right "2 / 8751").
const SEED_555: &str = r#"{
  "prefix": [
    {"Register": {"mask": {"Cpus": 1}, "port": 7}},
    {"Migrate": {"cpu": 1, "task": 5}},
    {"OpenPort": {"task": 238}},
    {"QueryPid": {"port": 133, "target": {"Task": 187}}}
  ],
  "threads": [
    [{"QueryTgid": {"port": 156, "target": {"Task": 61}}}],
    [{"OpenPort": {"task": 148}}, {"QueryPid": {"port": 72, "target": {"Task": 76}}}, {"Run": {"task": 163}},
     {"Exit": {"task": 22}}],
    [{"ClosePort": {"port": 76}}, {"OpenPort": {"task": 52}}, {"Exit": {"task": 61}},
     {"Fork": {"kind": "Thread", "parent": 184}}]
  ],
  "scheduler": {"Replay": {"schedule": "0000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000001022221011231332333233112132332222112322331313223313112113311222211112221122233131113322232123311231313232313333333111111112211111121121211111111111112222212222222112212122211221112112212121122111212112111121221212212222112222111112112111211222112112222122222222222220000"}}
}"#;

/// How to get the seed-555 case back from a campaign.
const SEED_555_REPLAY: &str =
    "replay: ksim fuzz taskstats --threads 3 --seed 555 --cases 1, then ksim replay \
     ksim-out/taskstats-threaded-seed555.ksim.json";

/// The seed-555 operations on one pinned schedule each (the windows are narrow: of 4,000 seeds
/// under each of the random, PCT and `Bursts` schedulers, 4 put the query before the fill and 31
/// between the fill and exit_notify(); the recorded schedule of the campaign's case stopped
/// landing there once the driver's scheduling points moved): `Random` from `seed`, one execution.
fn seed_555_on_random_schedule(seed: u64) -> threaded::ThreadedReport {
    let config = TaskstatsSubject::config(Some("linux-3.8+tgid-alloc-data-race"), &[]).expect("preset");
    let mut case: ThreadedCase<taskstats_sim::Op> = serde_json::from_str(SEED_555).expect("case");
    case.scheduler = SchedulerChoice::Random;
    let options = ThreadedOptions { executions: 1, ..ThreadedOptions::new(3) };
    threaded::run_case::<TaskstatsSubject>(&config, seed, &case, &options)
}

/// The seed-555 case with its TGID query landing between pid 2's booking and its
/// fill_tgid_exit() (`tgid-query-before-exiting-fill`, random schedule 63): the reply, counting
/// pid 2 once as a live thread, passes.
#[test]
fn a_tgid_query_before_an_exiting_threads_fill_counts_it_once_as_live() {
    let report = seed_555_on_random_schedule(63);
    assert!(report.violation().is_none(), "{:?}\n{SEED_555_REPLAY}", report.violation());
    for mark in ["tgid-query", "tgid-query-before-exiting-fill"] {
        assert!(
            report.coverage.contains(mark),
            "{mark} not reached on random schedule 63: {:?}\n{SEED_555_REPLAY}",
            report.coverage
        );
    }
}

/// The seed-555 operations on fresh schedules (both schedulers, one execution per seed): no
/// execution reports anything; and random schedule 471 puts the query inside the kernel's own window, between
/// pid 2's fill_tgid_exit() and its exit_notify(), where fill_stats_for_tgid() finds pid 2 both
/// in `signal->stats` and live (`exit_state` still 0) and counts it twice; the ledger expects
/// exactly that (`tgid-query-counted-exiting-twice`).
#[test]
fn a_tgid_query_between_an_exiting_threads_fill_and_exit_notify_counts_it_twice_as_the_kernel_does() {
    let config = TaskstatsSubject::config(Some("linux-3.8+tgid-alloc-data-race"), &[]).expect("preset");
    let mut case: ThreadedCase<taskstats_sim::Op> = serde_json::from_str(SEED_555).expect("case");
    let options = ThreadedOptions { executions: 1, ..ThreadedOptions::new(3) };
    for seed in 0..SEEDS {
        case.scheduler =
            if seed % 2 == 0 { SchedulerChoice::Random } else { SchedulerChoice::Pct { depth: 3 } };
        let report = threaded::run_case::<TaskstatsSubject>(&config, seed, &case, &options);
        assert!(
            report.violation().is_none(),
            "seed {seed} {:?}: {:?}\n(the seed-555 operations under that scheduler and seed)",
            case.scheduler,
            report.violation()
        );
    }
    let twice = seed_555_on_random_schedule(471);
    assert!(twice.violation().is_none(), "{:?}\n{SEED_555_REPLAY}", twice.violation());
    assert!(
        twice.coverage.contains("tgid-query-counted-exiting-twice"),
        "random schedule 471 no longer puts the query between fill_tgid_exit and exit_notify: {:?}",
        twice.coverage
    );
}

/// Generated threaded cases on linux-3.8, one execution each: requests, forks and socket calls
/// are judged by linearizability now (exits and recvmsg(2) stay relaxed), none is refused and
/// no search is given up at its bound; registrations and queries ran beside exits. A wrong errno or reply from a request fails here
/// with the seed to replay.
#[test]
fn generated_threaded_cases_judge_requests_by_linearizability_and_pass() {
    let config = TaskstatsSubject::config(Some("linux-3.8+tgid-alloc-data-race"), &[]).expect("preset");
    let options = ThreadedOptions { executions: 1, ..ThreadedOptions::new(3) };
    let mut coverage = std::collections::BTreeSet::new();
    let mut undecided = 0;
    for seed in 0..THREADED_SEEDS {
        let case = threaded::generate::<TaskstatsSubject>(&config, seed, &options);
        let report = threaded::run_case::<TaskstatsSubject>(&config, seed, &case, &options);
        assert!(
            report.violation().is_none(),
            "seed {seed}: {:?}\nreplay: ksim fuzz taskstats --threads 3 --seed {seed} --cases 1",
            report.violation()
        );
        coverage.extend(report.coverage.iter().map(|m| m.to_string()));
        undecided += report.undecided;
    }
    assert_eq!(undecided, 0, "the linearizability search hit its bound in {undecided} executions");
    for mark in ["registered", "pid-query", "tgid-query", "exit-delivered"] {
        assert!(coverage.contains(mark), "{mark} never reached: {coverage:?}");
    }
}

/// Generated threaded cases the linearizability test runs.
const THREADED_SEEDS: u64 = 60;

/// CVE-2012-3510 under a threaded campaign with no scenario: linux-3.4 (plus the 2019 sig->stats
/// data-race fix, so that race is not found first) with `xacct-get-task-mm` off, the generated
/// case of seed 44 (the first a `--threads 3` campaign from seed 0 found; seed 227 before session
/// 10 weighted PID queries and namespace forks up in `threaded_ops`): a
/// PID query's target exits, and frees its mm, while the query sits at xacct_add_tsk()'s
/// preemption point between loading `p->mm` and reading it. It needs the query's live target
/// left unclaimed (it may exit meanwhile) and the scheduler keeping the yielding query off.
#[test]
fn a_threaded_case_finds_cve_2012_3510_without_a_scenario() {
    let config =
        TaskstatsSubject::config(Some("linux-3.4+tgid-alloc-data-race"), &["xacct-get-task-mm".to_string()])
            .expect("preset");
    let options = ThreadedOptions::new(3);
    let case = threaded::generate::<TaskstatsSubject>(&config, 44, &options);
    let report = threaded::run_case::<TaskstatsSubject>(&config, 44, &case, &options);
    let found = report.violation().expect(
        "seed 44 finds the use after free; replay: ksim fuzz taskstats --kernel \
         linux-3.4+tgid-alloc-data-race --fix-off xacct-get-task-mm --threads 3 --seed 44 --cases 1",
    );
    assert_eq!(found.kind, sim_core::ViolationKind::detector("kref", "use-after-release"), "{found}");
    assert!(found.message.contains("mm_struct"), "{found}");
}

/// Re-pins the two seed-555 schedules when a change moves scheduling points (a lock taken or
/// not): prints the first random schedules, with no violation, whose coverage has each window's
/// marks (the predicates of the two tests above, unchanged). Run with
/// `cargo test -p ksim-tests --test main -- --ignored taskstats::threaded::search_seed_555_windows --nocapture`.
#[test]
#[ignore = "a search: run it to re-pin the seed-555 schedules"]
fn search_seed_555_windows() {
    let windows: [(&str, &[&str]); 2] = [
        ("before the fill", &["tgid-query", "tgid-query-before-exiting-fill"]),
        ("between the fill and exit_notify", &["tgid-query-counted-exiting-twice"]),
    ];
    let mut found = [None; 2];
    for seed in 0..20_000 {
        let report = seed_555_on_random_schedule(seed);
        if report.violation().is_some() {
            continue;
        }
        for (at, (_, marks)) in windows.iter().enumerate() {
            if found[at].is_none() && marks.iter().all(|m| report.coverage.contains(*m)) {
                found[at] = Some(seed);
            }
        }
        if found.iter().all(Option::is_some) {
            break;
        }
    }
    for ((name, _), seed) in windows.iter().zip(found) {
        println!("{name}: random schedule {seed:?}");
    }
    assert!(found.iter().all(Option::is_some), "a window no schedule reached: {found:?}");
}
