//! The zoo: with a fix off the op-level checker finds the historical bug (the expected violation
//! kind); with it on, the same budget stays quiet.

use sim_core::check::{find_failure, Catalog};
use taskstats_sim::TaskstatsSubject;

fn zoo_both_ways(name: &str) {
    let entry = TaskstatsSubject::zoo().into_iter().find(|e| e.name.starts_with(name)).expect("zoo entry");
    let off = TaskstatsSubject::config(Some(entry.preset), &[entry.fix.to_string()]).expect("config");
    let found =
        find_failure::<TaskstatsSubject>(&off, 0, entry.cases_max, entry.ops_max).unwrap_or_else(|| {
            panic!("{}: not found with {} off in {} cases", entry.name, entry.fix, entry.cases_max)
        });
    let artifact = &found.artifact;
    assert!(
        entry.accepts(&artifact.violation.kind),
        "{}: found {} instead; ops {}",
        entry.name,
        artifact.violation,
        artifact.ops
    );
    println!(
        "{}: found after {} cases (seed {}): {}\nshrunk ops: {}\nreplay: {}",
        entry.name, found.cases_to_find, artifact.seed, artifact.violation, artifact.ops, artifact.replay
    );
    let on = TaskstatsSubject::config(Some(entry.preset), &[]).expect("config");
    if let Some(failure) = find_failure::<TaskstatsSubject>(&on, 0, entry.cases_max, entry.ops_max) {
        panic!(
            "{}: fix on but found {} (ops {})",
            entry.name, failure.artifact.violation, failure.artifact.ops
        );
    }
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
