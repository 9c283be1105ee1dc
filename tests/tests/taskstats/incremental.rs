//! The incremental invariant check (`TaskstatsSubject::check_invariants_incremental`: the
//! listener lists of the CPUs an operation named or exited on, the groups it forked, exited or
//! reaped, and the stats objects against a count kept over those groups) against the whole
//! check: after every operation of many seeds both must find the same broken invariant, on fixed
//! kernels (none) and with the fixes off whose bugs the invariants find (the same kind at the
//! same operation).

use sim_core::check::{self, Catalog};
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
