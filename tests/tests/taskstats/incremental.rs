//! The incremental invariant check (`TaskstatsSubject::check_invariants_incremental`: the
//! listener lists of the CPUs an operation named or exited on, the groups it forked, exited or
//! reaped, and the stats objects against a count kept over those groups) against the whole
//! check: after every operation of many seeds both must find the same broken invariant, on fixed
//! kernels (none) and with the fixes off whose bugs the invariants find (the same kind at the
//! same operation).

use std::collections::{BTreeMap, BTreeSet};

use sim_core::check::{self, Catalog, Subject};
use sim_core::lockdep::ReportMode;
use sim_core::trace::TraceMode;
use sim_core::Sim;
use taskstats_sim::wire::TaskstatsRecord;
use taskstats_sim::{TaskstatsConfig, TaskstatsSubject};

/// Compares the two checks over `cases` seeds from `first_seed`; returns (operations compared,
/// cases broken).
fn agree(config: &TaskstatsConfig, first_seed: u64, cases: u64) -> (u64, u64) {
    check::incremental_agrees::<TaskstatsSubject>(config, first_seed, cases, 80)
        .inspect(|(compared, broken)| eprintln!("{} seeds: {compared} operations, {broken} broken", cases))
        .unwrap_or_else(|disagreement| panic!("{disagreement} (config {config:?})"))
}

/// A zoo kernel with fix `fix` off, as `ksim fuzz taskstats --kernel <kernel> --fix-off <fix>`.
fn fix_off(kernel: &str, fix: &str) -> TaskstatsConfig {
    <TaskstatsSubject as Catalog>::config(Some(kernel), &[fix.to_string()]).expect("config")
}

#[test]
fn incremental_and_whole_checks_agree_on_fixed_kernels() {
    for (kernel, first_seed) in [("linux-3.8+tgid-alloc-data-race", 0), ("2.6.19-rc5", 1000)] {
        let config = <TaskstatsSubject as Catalog>::config(Some(kernel), &[]).expect("config");
        let (compared, broken) = agree(&config, first_seed, 60);
        assert!(compared > 1_500, "{kernel}: only {compared} operations compared");
        assert_eq!(broken, 0, "{kernel}: the fixed kernel broke an invariant");
    }
}

/// A four-CPU world, where an operation's CPUs are a strict subset of the lists more often.
#[test]
fn incremental_and_whole_checks_agree_on_four_cpus() {
    let mut config =
        <TaskstatsSubject as Catalog>::config(Some("linux-3.4+tgid-alloc-data-race"), &[]).unwrap();
    config.params.cpus = 4;
    let (compared, broken) = agree(&config, 2000, 60);
    assert!(compared > 1_500, "only {compared} operations compared");
    assert_eq!(broken, 0, "the fixed kernel broke an invariant");
}

/// CVE-2011-2484 (a port registered twice on one CPU), the 2.6.19 group stats that miss
/// threads exiting unheard, and the failed thread fork that frees its group's stats: each
/// breaks an invariant (duplicate listeners, group stats), and both checks must find it after
/// the same operation.
#[test]
fn incremental_check_finds_the_zoos_invariant_bugs_where_the_whole_check_does() {
    for (kernel, fix, at_least) in [
        ("linux-3.4+tgid-alloc-data-race", "duplicate-listener-check", 10),
        ("2.6.19-rc5", "exit-fill-before-send", 5),
        ("2.6.19-rc5", "tgid-free-usage", 1),
    ] {
        let (_, broken) = agree(&fix_off(kernel, fix), 0, 100);
        assert!(broken >= at_least, "{kernel} without {fix}: an invariant broke in only {broken} cases");
    }
}

/// The model as the checks read it, per CPU its listener list and per task (live or zombie)
/// its group, whether it still runs, and its group's stats as the leader's siglock shows them.
struct Snapshot {
    lists: Vec<Vec<(u32, bool)>>,
    tasks: BTreeMap<u32, (u32, bool, Option<TaskstatsRecord>)>,
}

fn snapshot(sim: &Sim, subject: &TaskstatsSubject) -> Snapshot {
    let cx = sim.observer_cx("scope-test", 0);
    let model = &subject.model;
    let lists = (0..model.params().cpus).map(|cpu| model.listeners(&cx, cpu)).collect();
    let live = model.live_pids(&cx).into_iter().map(|pid| (pid, true));
    let zombies = model.zombie_pids(&cx).into_iter().map(|pid| (pid, false));
    let tasks = live
        .chain(zombies)
        .filter_map(|(pid, live)| {
            let task = model.task(&cx, pid)?;
            let stats = model.task(&cx, task.tgid).and_then(|leader| leader.signal.stats.get());
            Some((pid, (task.tgid, live, stats)))
        })
        .collect();
    Snapshot { lists, tasks }
}

/// The groups whose tasks or stats differ between two snapshots.
fn groups_changed(before: &Snapshot, after: &Snapshot) -> BTreeSet<u32> {
    let pids: BTreeSet<u32> = before.tasks.keys().chain(after.tasks.keys()).copied().collect();
    pids.into_iter()
        .filter(|pid| before.tasks.get(pid) != after.tasks.get(pid))
        .flat_map(|pid| [before.tasks.get(&pid), after.tasks.get(&pid)].into_iter().flatten().map(|t| t.0))
        .collect()
}

/// Runs `cases` seeds of `config` and, after every operation, asserts that every listener
/// list and every group the operation changed is in what the incremental check reads
/// ([`TaskstatsSubject::incremental_scope`]): a list or group left out there is a fact the
/// incremental check would miss however the invariants are written. Returns the lists and
/// groups seen changing and the coverage marks the runs made (so the test shows what it
/// reached).
fn scope_covers_changes(
    config: &TaskstatsConfig,
    first_seed: u64,
    cases: u64,
) -> (usize, usize, BTreeSet<&'static str>) {
    let (mut lists_changed, mut groups_seen, mut marks) = (0, 0, BTreeSet::new());
    for seed in first_seed..first_seed + cases {
        let ops = check::generate::<TaskstatsSubject>(config, seed, 80);
        let sim = Sim::new(
            TaskstatsSubject::sim_config(config, seed)
                .lockdep(ReportMode::Collect)
                .trace(TraceMode::HashOnly),
        );
        let mut subject = <TaskstatsSubject as Subject>::new(&sim, config);
        for (index, op) in ops.iter().enumerate() {
            let before = snapshot(&sim, &subject);
            subject.apply(&sim, op);
            let after = snapshot(&sim, &subject);
            let (cpus, tgids) = subject.incremental_scope(op);
            let replay = format!("seed {seed} operation {} ({op:?}); config {config:?}", index + 1);
            for (cpu, (was, is)) in before.lists.iter().zip(&after.lists).enumerate() {
                if was != is {
                    lists_changed += 1;
                    assert!(
                        cpus & (1 << cpu) != 0,
                        "cpu {cpu}'s list changed {was:?} -> {is:?}, unread: {replay}"
                    );
                }
            }
            for tgid in groups_changed(&before, &after) {
                groups_seen += 1;
                assert!(tgids.contains(&tgid), "group {tgid} changed, not in {tgids:?}: {replay}");
            }
            if subject.check_invariants_incremental(&sim, op).is_err() || sim.has_violations() {
                break;
            }
        }
        marks.extend(sim.marks());
    }
    (lists_changed, groups_seen, marks)
}

/// Every list and group an operation changes is one the incremental check reads, on a fixed
/// kernel (two and four CPUs) and on 2.6.19 with its group-stats bugs in.
#[test]
fn incremental_check_reads_every_list_and_group_an_operation_changes() {
    let mut four =
        <TaskstatsSubject as Catalog>::config(Some("linux-3.4+tgid-alloc-data-race"), &[]).unwrap();
    four.params.cpus = 4;
    let configs = [
        (<TaskstatsSubject as Catalog>::config(Some("linux-3.8+tgid-alloc-data-race"), &[]).unwrap(), 0),
        (four, 500),
        // Seeds 1120..1160 reach a failed clone and a failed thread fork's free (1080..1120 did
        // until session 22's `SigactionSigchld` operation moved every generated case).
        (fix_off("2.6.19-rc5", "tgid-free-usage"), 1120),
    ];
    for (config, first_seed) in configs {
        let (lists, groups, marks) = scope_covers_changes(&config, first_seed, 40);
        eprintln!("{}: {lists} list changes, {groups} group changes, all in scope", config.preset);
        // The changes that matter most were among them: exits that prune a list or deliver,
        // deregistrations, reaps, and (2.6.19) a failed thread fork freeing its group's stats.
        let mut wanted = vec!["listener-pruned", "exit-delivered", "deregistered", "reaped"];
        if config.preset == "2.6.19-rc5" {
            wanted.extend(["clone-failed", "tgid-freed-by-failed-fork"]);
        }
        for mark in wanted {
            assert!(marks.contains(mark), "{}: never reached {mark}; reached {marks:?}", config.preset);
        }
        assert!(
            lists > 50 && groups > 200,
            "{}: only {lists} list and {groups} group changes seen",
            config.preset
        );
    }
}
