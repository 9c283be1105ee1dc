//! The demo's fix table: every behavioural difference between the "versions" of the demo cache,
//! one row each, so a version is a preset (`--kernel demo-1.0`, `--kernel 6.0`).
//!
//! What a newcomer puts here for their subsystem: one [`Fix`] row per difference the seed listings
//! (or a documented later upstream change) show, with the upstream commit title as upstream spells
//! it, the commit id as `Commit::Id("<12 hex>")` only when you saw the id next to that title
//! (otherwise `Commit::Unverified`), the first release that has it (`landed_in`), the symptom
//! without it and its CVE. Then one [`FixId`] constant per row, in table order, listed in
//! [`FIX_IDS`], and one [`NamedPreset`] per seed listing, oldest first (the last is the default).
//! The unit test at the bottom calls [`FixTable::validate`], which checks the constants against
//! the rows. The model asks `fixes.on(SHRINK_SKIPS_USED)`: one bit test, cheap on hot paths.
//!
//! The demo pretends its two fixes landed in 6.1 so that `--kernel 6.0` and `--kernel 6.1` mean
//! something; nothing here is upstream, so both rows are `Commit::Unverified` with no CVE.

use sim_core::fixes::{Commit, Fix, FixId, FixTable, FixTableOf, KernelVersion, NamedPreset};

/// The demo's fix table, as a type: [`Fixes`] is a set of its rows, and cannot be mixed up with
/// another subsystem's.
#[derive(Debug)]
pub struct DemoFixes;

/// Which demo fixes are on (the config holds one; the model asks it).
pub type Fixes = sim_core::fixes::Fixes<DemoFixes>;

/// The shrinker skips entries someone holds (`used > 0`). Off, it frees them, and the holder's
/// next `put` is a use after free.
pub const SHRINK_SKIPS_USED: FixId = FixId::new(0, "shrink-skips-used");
/// The shrinker takes `demo_cache_lock` before `demo_lru_lock`, as every other path does. Off, it
/// takes them the other way round: an ABBA deadlock with `insert`, which lockdep reports.
pub const LRU_LOCK_ORDER: FixId = FixId::new(1, "lru-lock-order");

/// Every [`FixId`], in table order (the validate test checks each against its row).
pub const FIX_IDS: [FixId; 2] = [SHRINK_SKIPS_USED, LRU_LOCK_ORDER];

/// The oldest preset: both bugs present.
pub const PRESET_OLD: &str = "demo-1.0";
/// The newest preset (the default): both fixes on.
pub const PRESET_NEW: &str = "demo-2.0";

impl FixTableOf for DemoFixes {
    const TABLE: &'static FixTable = &FixTable {
        subsystem: "demo",
        oldest: KernelVersion::new(6, 0, 0),
        newest: KernelVersion::new(6, 1, 0),
        fixes: &[
            Fix {
                name: SHRINK_SKIPS_USED.name(),
                title: "demo: shrinker skips entries in use (teaching example, not an upstream commit)",
                commit: Commit::Unverified,
                landed_in: KernelVersion::new(6, 1, 0),
                cve: None,
                symptom: "the shrinker frees an entry a task still holds; its put is a use after free",
            },
            Fix {
                name: LRU_LOCK_ORDER.name(),
                title: "demo: shrinker takes demo_cache_lock before demo_lru_lock (teaching example)",
                commit: Commit::Unverified,
                landed_in: KernelVersion::new(6, 1, 0),
                cve: None,
                symptom: "insert and shrink take the two locks in opposite orders: an ABBA deadlock",
            },
        ],
        presets: &[
            NamedPreset {
                name: PRESET_OLD,
                version: KernelVersion::new(6, 0, 0),
                description: "the demo cache before its fixes: both bugs present",
            },
            NamedPreset {
                name: PRESET_NEW,
                version: KernelVersion::new(6, 1, 0),
                description: "the demo cache with both fixes (the default)",
            },
        ],
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fix_table_is_consistent_and_each_fix_id_names_its_row() {
        DemoFixes::TABLE.validate(&FIX_IDS).expect("the demo fix table");
    }

    #[test]
    fn the_presets_are_versions_old_without_fixes_new_with_both() {
        let old = Fixes::parse(Some(PRESET_OLD), &[]).expect("old preset");
        assert!(!old.on(SHRINK_SKIPS_USED) && !old.on(LRU_LOCK_ORDER));
        let new = Fixes::parse(Some("6.1"), &[]).expect("a version in range");
        assert_eq!(new, Fixes::all());
        assert!(Fixes::parse(Some("5.0"), &[]).is_err(), "5.0 is outside the modelled range");
    }
}
