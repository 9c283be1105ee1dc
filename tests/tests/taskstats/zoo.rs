//! The zoo: with a fix off the op-level checker finds the historical bug (the expected violation
//! kind); with it on, the same budget stays quiet.

use sim_core::check::Catalog;
use sim_core::zoo::assert_found_and_fixed;
use taskstats_sim::TaskstatsSubject;

fn zoo_both_ways(prefix: &str) {
    let entry = TaskstatsSubject::zoo().into_iter().find(|e| e.name.starts_with(prefix)).expect("zoo entry");
    assert_found_and_fixed::<TaskstatsSubject>(entry.name);
}

#[test]
fn sig_stats_data_race_of_the_3_x_seeds_found_by_lockset_and_quiet_with_the_2019_fix() {
    zoo_both_ways("taskstats: fix data-race");
}

#[test]
fn cve_2011_2484_duplicate_listeners_found_without_the_fix_and_quiet_with_it() {
    zoo_both_ways("CVE-2011-2484");
}

#[test]
fn cve_2011_2494_unprivileged_reads_found_without_the_fix_and_quiet_with_it() {
    zoo_both_ways("CVE-2011-2494");
}

#[test]
fn namespace_leak_found_without_the_3_8_checks_and_quiet_with_them() {
    zoo_both_ways("global ids");
}

#[test]
fn group_stats_undercount_of_2_6_19_found_without_the_fix_and_quiet_with_it() {
    zoo_both_ways("2.6.19 group stats");
}

#[test]
fn tgid_free_on_a_failed_thread_fork_found_without_the_fix_and_quiet_with_it() {
    zoo_both_ways("taskstats_tgid_free");
}

#[test]
fn cgroupstats_policy_overread_found_without_the_fix_and_quiet_with_it() {
    zoo_both_ways("cgroupstats_cmd_get_policy");
}

#[test]
fn delayacct_soft_safe_to_unsafe_order_found_by_lockdep_without_the_fix_and_quiet_with_it() {
    zoo_both_ways("lockdep: siglock");
}

#[test]
fn delayacct_null_delays_dereference_found_without_the_fix_and_quiet_with_it() {
    zoo_both_ways("delayacct: NULL delays");
}

#[test]
fn bacct_unprotected_parent_dereference_found_without_the_fix_and_quiet_with_it() {
    zoo_both_ways("bacct_add_tsk");
}

#[test]
fn cve_2012_3510_xacct_mm_use_after_free_found_without_the_fix_and_quiet_with_it() {
    let outcome = {
        let entry = TaskstatsSubject::zoo()
            .into_iter()
            .find(|e| e.name.starts_with("CVE-2012-3510"))
            .expect("zoo entry");
        assert_found_and_fixed::<TaskstatsSubject>(entry.name)
    };
    // The shrunk case is the race itself: a query preempted while its target exits.
    let failure = outcome.found().next().expect("found");
    let ops = failure.artifact.ops.to_string();
    assert!(ops.contains("\"preempt\""), "the failing case has no preempted query: {ops}");
}
