//! `Subject::check_config` for taskstats: an edited artifact's parameters that the model cannot
//! represent are refused with one line naming the field, before a model is built; what the
//! catalog makes, and the bounds themselves, pass.

use sim_core::check::Subject;
use sim_core::fixes::FixTableOf;
use taskstats_sim::fixes::TaskstatsFixes;
use taskstats_sim::{TaskstatsConfig, TaskstatsSubject, NR_CPUS, PID_MAX_DEFAULT};

/// One edit of a config, named by the text its refusal must contain.
type Edit = (&'static str, fn(&mut TaskstatsConfig));

fn contract() -> TaskstatsConfig {
    TaskstatsConfig::contract("linux-3.8")
}

/// Every preset's contract, every fix switched off for audit, and the bounds' edges pass.
#[test]
fn configs_the_catalog_makes_and_the_bounds_themselves_pass() {
    assert!(!TaskstatsFixes::TABLE.presets.is_empty(), "the fix table names its presets");
    for preset in TaskstatsFixes::TABLE.presets {
        let config = TaskstatsConfig::contract(preset.name);
        assert_eq!(TaskstatsSubject::check_config(&config), Ok(()), "{}", preset.name);
    }
    for fix in TaskstatsFixes::TABLE.fixes {
        let config = contract().fix_off(fix.name);
        assert_eq!(TaskstatsSubject::check_config(&config), Ok(()), "audit {}", fix.name);
    }
    let mut edges = contract();
    for (cpus, tasks_max) in [(1, 1), (NR_CPUS, PID_MAX_DEFAULT)] {
        (edges.params.cpus, edges.params.tasks_max) = (cpus, tasks_max);
        assert_eq!(TaskstatsSubject::check_config(&edges), Ok(()), "cpus {cpus}, tasks_max {tasks_max}");
    }
}

/// Past each bound the config is refused, with one line that names the field and its value.
#[test]
fn a_config_the_model_cannot_represent_is_refused_with_one_line_naming_the_field() {
    let cases: [Edit; 6] = [
        ("cpus 0", |c| c.params.cpus = 0),
        ("cpus 65", |c| c.params.cpus = NR_CPUS + 1),
        ("cpus 4294967295", |c| c.params.cpus = u32::MAX),
        ("tasks_max 0", |c| c.params.tasks_max = 0),
        ("tasks_max 32769", |c| c.params.tasks_max = PID_MAX_DEFAULT + 1),
        ("\"no-such-fix\"", |c| c.params.audit.push("no-such-fix".to_string())),
    ];
    for (says, edit) in cases {
        let mut config = contract();
        edit(&mut config);
        let refused = TaskstatsSubject::check_config(&config).expect_err(says);
        assert!(refused.contains(says), "expected {says:?} in: {refused}");
        assert!(!refused.contains('\n'), "one line: {refused}");
    }
}
