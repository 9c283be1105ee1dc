//! The op-level simulation of fs/mbcache.c against its reference model.

use mbcache_sim::check::MbcacheSubject;
use mbcache_sim::fixes::{Fixes, PRESET_FIXED};
use mbcache_sim::MbcacheConfig;
use sim_core::check;

#[test]
fn fixed_mbcache_matches_its_reference_under_allocation_faults() {
    let config = MbcacheConfig::new(PRESET_FIXED, Fixes::all());
    let marks = check::assert_cases_pass::<MbcacheSubject>(&config, 0, 2000, 120);
    println!("{marks:?}");
}
