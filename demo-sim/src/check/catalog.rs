//! What the demo publishes to the tool: its fix table, its configuration for a kernel with some
//! fixes off, its zoo of bugs and its teaching scenarios (the `Catalog` trait).
//!
//! What a newcomer puts here: `config` (parse `--kernel` and `--fix-off` with `Fixes::parse`,
//! then the default sizes), one `ZooEntry` per historical bug (the preset it runs in, the fix to
//! switch off, the checker that finds it, every `ViolationKind` it can show as, and a budget that
//! finds it in every run), and the scenario list (names as `ksim trace` takes them). The registry
//! contract test in `ksim/src/registry.rs` then holds every name here to working.

use sim_core::check::{Catalog, ScenarioInfo, ZooEntry};
use sim_core::fixes::{FixTable, FixTableOf};
use sim_core::{Sim, ViolationKind};

use super::{scenario, DemoConfig, DemoSubject};
use crate::fixes::{DemoFixes, Fixes, LRU_LOCK_ORDER, PRESET_NEW, SHRINK_SKIPS_USED};

impl Catalog for DemoSubject {
    fn fix_table() -> &'static FixTable {
        DemoFixes::TABLE
    }

    fn config(kernel: Option<&str>, fixes_off: &[String]) -> Result<DemoConfig, String> {
        let fixes = Fixes::parse(kernel, fixes_off)?;
        Ok(DemoConfig::new(kernel.unwrap_or(PRESET_NEW), fixes))
    }

    fn zoo() -> Vec<ZooEntry> {
        vec![
            ZooEntry {
                name: "demo use after shrink",
                kernel: PRESET_NEW,
                fix: SHRINK_SKIPS_USED.name(),
                checker: "op-sim",
                // Usually the shrink itself frees more than the reference allows (a mismatch);
                // when the count hides it, the holder's put is the use after free.
                expected: vec![ViolationKind::Mismatch, ViolationKind::UseAfterFree],
                ops_max: 40,
                cases_max: 300,
            },
            ZooEntry {
                name: "demo ABBA between cache and LRU locks",
                kernel: PRESET_NEW,
                fix: LRU_LOCK_ORDER.name(),
                checker: "lockdep",
                expected: vec![ViolationKind::lockdep("circular-locking")],
                ops_max: 40,
                cases_max: 300,
            },
        ]
    }

    fn scenarios() -> Vec<ScenarioInfo> {
        vec![
            ScenarioInfo {
                name: "shrink-skips-used",
                description: "task-A holds key 1 while task-B shrinks: the shrinker skips it, then frees it after the put",
            },
            ScenarioInfo {
                name: "use-after-shrink",
                description: "the same steps with shrink-skips-used off: the shrinker frees key 1 under task-A, whose put is a use after free",
            },
            ScenarioInfo {
                name: "lru-lock-inversion",
                description: "insert takes cache then LRU lock; with lru-lock-order off, shrink takes them the other way: lockdep's circular-locking report",
            },
        ]
    }

    fn run_scenario(name: &str) -> Option<Sim> {
        scenario::run(name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn use_after_shrink_scenario_reports_the_use_after_free_and_the_fixed_one_is_clean() {
        let buggy = DemoSubject::run_scenario("use-after-shrink").expect("scenario");
        let kinds: Vec<ViolationKind> = buggy.violations().into_iter().map(|v| v.kind).collect();
        assert_eq!(kinds, [ViolationKind::UseAfterFree]);
        let fixed = DemoSubject::run_scenario("shrink-skips-used").expect("scenario");
        assert!(fixed.violations().is_empty(), "{:?}", fixed.violations());
        let inversion = DemoSubject::run_scenario("lru-lock-inversion").expect("scenario");
        assert_eq!(inversion.violations()[0].kind, ViolationKind::lockdep("circular-locking"));
        assert!(DemoSubject::run_scenario("no-such-scenario").is_none());
    }

    #[test]
    fn unknown_preset_and_fix_names_list_the_valid_ones() {
        let error = DemoSubject::config(Some("demo-9"), &[]).expect_err("unknown preset");
        assert!(error.contains("demo-1.0, demo-2.0"), "{error}");
        let error = DemoSubject::config(None, &["nope".to_string()]).expect_err("unknown fix");
        assert!(error.contains(SHRINK_SKIPS_USED.name()), "{error}");
        let old = DemoSubject::config(Some("demo-1.0"), &[]).expect("old preset");
        assert!(!old.fixes.on(SHRINK_SKIPS_USED) && !old.fixes.on(LRU_LOCK_ORDER));
    }
}
