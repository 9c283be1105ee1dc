//! Threaded campaigns on the default (fixed) preset reach the sleeping paths of the 2.6.11 kernel
//! that the op-level simulation cannot (there a lookup of a busy entry returns WouldBlock): a
//! lookup asleep on `mb_cache_queue`, a find woken to an entry freed meanwhile (`-EAGAIN`), and
//! ext2's walk restarted after it; every outcome judged by linearizability, and none undecided.

use std::sync::atomic::AtomicBool;

use mbcache_sim::MbcacheSubject;
use sim_core::check::{CampaignOptions, Catalog};
use sim_core::threaded::{self, ThreadedOptions, UNDECIDED_MARK};

#[test]
fn fixed_mbcache_threaded_reaches_the_sleeping_and_eagain_paths_and_stays_linearizable() {
    let config = MbcacheSubject::config(None, &[]).expect("default preset");
    let options = CampaignOptions { shrink_steps: 100, ..CampaignOptions::cases(100) };
    let report = threaded::campaign::<MbcacheSubject>(
        &config,
        &options,
        &ThreadedOptions::new(3),
        &AtomicBool::new(false),
        &mut |_| {},
    )
    .expect("campaign runs");
    if let Some(failure) = report.failures.first() {
        panic!(
            "mbcache threaded seed {}: {}\nreplay: ksim fuzz mbcache --threads 3 --seed {} --cases 1",
            failure.artifact.seed, failure.artifact.violation, failure.artifact.seed
        );
    }
    for mark in [
        "lookup slept on mb_cache_queue",
        "lookup waited for an entry that was freed meanwhile",
        "find returned EAGAIN for an entry freed while it waited",
        "xattr: cache_find retried after EAGAIN",
    ] {
        assert!(report.coverage.contains_key(mark), "never reached {mark:?}; reached {:?}", report.coverage);
    }
    assert!(!report.coverage.contains_key(UNDECIDED_MARK), "the linearizability search hit its bound");
}
