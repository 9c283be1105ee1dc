//! Shrinking finishes the job on a real bug: CVE-2011-2484's duplicate listener needs a fork, a
//! register and a second register of the same CPU mask, and the shrunk case is exactly those.

use sim_core::check::{find_failure, Catalog};
use taskstats_sim::TaskstatsSubject;

use crate::core::harness::assert_one_minimal;

#[test]
fn duplicate_listener_case_shrinks_to_three_one_minimal_operations() {
    let entry = TaskstatsSubject::zoo()
        .into_iter()
        .find(|e| e.fix == "duplicate-listener-check")
        .expect("zoo entry for the duplicate-listener check");
    let off = TaskstatsSubject::config(Some(entry.kernel), &[entry.fix.to_string()]).expect("config");
    let found = find_failure::<TaskstatsSubject>(&off, 0, entry.cases_max, entry.ops_max)
        .expect("the duplicate listener is found with the check off");
    let artifact = &found.artifact;
    let ops: Vec<<TaskstatsSubject as sim_core::check::Subject>::Op> =
        serde_json::from_value(artifact.ops.clone()).expect("ops");
    assert_eq!(ops.len(), 3, "shrunk from {} to {ops:?}", artifact.ops_unshrunk);
    assert_one_minimal::<TaskstatsSubject>(&off, artifact.seed, &ops, &artifact.violation.kind);
    assert!(found.shrink_seconds > 0.0);
}
