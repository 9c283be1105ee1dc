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
/// case of seed 227 (the first a `--threads 3` campaign from seed 0 found): a
/// PID query's target exits, and frees its mm, while the query sits at xacct_add_tsk()'s
/// preemption point between loading `p->mm` and reading it. It needs the query's live target
/// left unclaimed (it may exit meanwhile) and the scheduler keeping the yielding query off.
#[test]
fn a_threaded_case_finds_cve_2012_3510_without_a_scenario() {
    let config =
        TaskstatsSubject::config(Some("linux-3.4+tgid-alloc-data-race"), &["xacct-get-task-mm".to_string()])
            .expect("preset");
    let options = ThreadedOptions::new(3);
    let case = threaded::generate::<TaskstatsSubject>(&config, 227, &options);
    let report = threaded::run_case::<TaskstatsSubject>(&config, 227, &case, &options);
    let found = report.violation().expect(
        "seed 227 finds the use after free; replay: ksim fuzz taskstats --kernel \
         linux-3.4+tgid-alloc-data-race --fix-off xacct-get-task-mm --threads 3 --seed 227 --cases 1",
    );
    assert_eq!(found.kind, sim_core::ViolationKind::detector("kref", "use-after-release"), "{found}");
    assert!(found.message.contains("mm_struct"), "{found}");
}
