//! The subsystems the CLI knows: each one a [`SubsystemEntry`] of plain function pointers built by
//! [`entry`] from a type implementing [`Catalog`], so the rest of the CLI never names a subsystem
//! type and adding one is one line in [`registry`].

use std::sync::atomic::AtomicBool;

use sim_core::check::{
    self, Artifact, CampaignOptions, CampaignReport, Catalog, FixInfo, PresetInfo, Progress, ReplayReport,
    ScenarioInfo, ZooEntry,
};
use sim_core::fixes::KernelVersion;
use sim_core::loom_runner::{self, LoomCatalog, LoomOutcome};
use sim_core::threaded::{self, ThreadedOptions, ThreadedSubject};
use sim_core::zoo::{self, ZooOutcome};
use sim_core::Sim;

/// A campaign over a configuration given as JSON (the subject's `Config`, serialised).
pub(crate) type CampaignFn = fn(
    &serde_json::Value,
    &CampaignOptions,
    &AtomicBool,
    &mut dyn FnMut(&Progress),
) -> Result<CampaignReport, String>;

/// A threaded campaign (`ksim fuzz --threads N`) over a configuration given as JSON.
pub(crate) type ThreadedCampaignFn = fn(
    &serde_json::Value,
    &CampaignOptions,
    &ThreadedOptions,
    &AtomicBool,
    &mut dyn FnMut(&Progress),
) -> Result<CampaignReport, String>;

/// A zoo hunt: an entry, fresh seed ranges, an optional case budget.
pub(crate) type HuntFn = fn(&ZooEntry, u64, Option<u64>) -> Result<ZooOutcome, String>;

/// A zoo row's loom model, run with its fix off and on (`None`: the subsystem has no loom model
/// of that row).
pub(crate) type LoomHuntFn = fn(&ZooEntry) -> Result<Option<LoomOutcome>, String>;

/// One subsystem, with its type erased.
#[derive(Clone, Copy)]
pub(crate) struct SubsystemEntry {
    /// `Subject::NAME`.
    pub(crate) name: &'static str,
    pub(crate) presets: fn() -> Vec<PresetInfo>,
    pub(crate) fixes: fn() -> Vec<FixInfo>,
    pub(crate) zoo: fn() -> Vec<ZooEntry>,
    pub(crate) scenarios: fn() -> Vec<ScenarioInfo>,
    /// `Catalog::config`, serialised.
    pub(crate) config: fn(Option<&str>, &[String]) -> Result<serde_json::Value, String>,
    pub(crate) campaign: CampaignFn,
    /// Threaded campaigns, for a subsystem that declares its `ThreadedSubject`.
    pub(crate) threaded: Option<ThreadedCampaignFn>,
    /// The zoo's hunt under threaded campaigns (`sim_core::threaded::hunt`).
    pub(crate) threaded_hunt: Option<HuntFn>,
    /// The zoo's loom column, for a subsystem that names loom models per row (`LoomCatalog`).
    pub(crate) loom_hunt: Option<LoomHuntFn>,
    pub(crate) replay: fn(&Artifact) -> Result<ReplayReport, String>,
    pub(crate) run_scenario: fn(&str) -> Option<Sim>,
    /// `sim_core::zoo::hunt`: the one zoo routine.
    pub(crate) hunt: HuntFn,
    /// The fix table's modelled kernel range, oldest and newest.
    pub(crate) kernel_range: fn() -> (KernelVersion, KernelVersion),
}

impl std::fmt::Debug for SubsystemEntry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SubsystemEntry").field("name", &self.name).finish()
    }
}

fn config_json<S: Catalog>(preset: Option<&str>, fixes_off: &[String]) -> Result<serde_json::Value, String> {
    let config = S::config(preset, fixes_off)?;
    serde_json::to_value(&config).map_err(|e| format!("{}: cannot serialise the config: {e}", S::NAME))
}

fn campaign_json<S: Catalog>(
    config: &serde_json::Value,
    options: &CampaignOptions,
    stop: &AtomicBool,
    progress: &mut dyn FnMut(&Progress),
) -> Result<CampaignReport, String> {
    let config: S::Config = serde_json::from_value(config.clone())
        .map_err(|e| format!("the config does not fit {}: {e}", S::NAME))?;
    check::campaign::<S>(&config, options, stop, progress)
}

/// The entry for subsystem `S`.
pub(crate) fn entry<S: Catalog>() -> SubsystemEntry {
    SubsystemEntry {
        name: S::NAME,
        presets: S::presets,
        fixes: S::fixes,
        zoo: S::zoo,
        scenarios: S::scenarios,
        config: config_json::<S>,
        campaign: campaign_json::<S>,
        threaded: None,
        threaded_hunt: None,
        loom_hunt: None,
        replay: check::replay::<S>,
        run_scenario: S::run_scenario,
        hunt: zoo::hunt::<S>,
        kernel_range: || (S::fix_table().oldest, S::fix_table().newest),
    }
}

fn threaded_json<S: Catalog + ThreadedSubject>(
    config: &serde_json::Value,
    options: &CampaignOptions,
    threaded: &ThreadedOptions,
    stop: &AtomicBool,
    progress: &mut dyn FnMut(&Progress),
) -> Result<CampaignReport, String> {
    let config: S::Config = serde_json::from_value(config.clone())
        .map_err(|e| format!("the config does not fit {}: {e}", S::NAME))?;
    threaded::campaign::<S>(&config, options, threaded, stop, progress)
}

/// Replays an op-level or a threaded artifact; a threaded one as a [`ReplayReport`] whose trace
/// has one lane per thread. As for an op-level artifact, an exact reproduction finds the recorded
/// kind at the recorded index with the recorded trace hash; the replayed index is the one a
/// threaded run records, [`threaded_violation_at`], never the file's own.
fn replay_any<S: Catalog + ThreadedSubject>(artifact: &Artifact) -> Result<ReplayReport, String> {
    if !threaded::is_threaded(artifact) {
        return check::replay::<S>(artifact);
    }
    let replayed = threaded::replay::<S>(artifact)?;
    let at = threaded_violation_at(artifact)?;
    let execution = replayed.execution;
    let case = check::CaseReport {
        seed: artifact.seed,
        ops_run: execution.ops_run,
        violation: execution.violation.map(|found| (at, found)),
        trace_hash: execution.trace_hash,
        trace_tail: execution.trace_tail,
        task_names: execution.task_names,
        lockdep: execution.lockdep,
        coverage: Default::default(),
    };
    Ok(ReplayReport { case, exact: replayed.exact && at == artifact.violation_at })
}

/// Where a threaded run records its violation: after the case's last operation (set-up prefix
/// and every thread's), as `sim_core::threaded` writes `violation_at`, since an interleaving's
/// violation follows no one operation.
fn threaded_violation_at(artifact: &Artifact) -> Result<usize, String> {
    let ops: threaded::ThreadedOps<serde_json::Value> = serde_json::from_value(artifact.ops.clone())
        .map_err(|e| format!("the threaded operations cannot be read: {e}"))?;
    Ok(ops.threaded.ops_count().saturating_sub(1))
}

/// The entry for subsystem `S` with threaded campaigns.
pub(crate) fn threaded_entry<S: Catalog + ThreadedSubject>() -> SubsystemEntry {
    SubsystemEntry {
        threaded: Some(threaded_json::<S>),
        threaded_hunt: Some(threaded::hunt::<S>),
        replay: replay_any::<S>,
        ..entry::<S>()
    }
}

/// `entry` with the zoo's loom column, for a subsystem whose loom models are named per row.
pub(crate) fn with_loom<S: LoomCatalog>(entry: SubsystemEntry) -> SubsystemEntry {
    SubsystemEntry { loom_hunt: Some(loom_runner::hunt::<S>), ..entry }
}

/// Every subsystem, in the order `ksim list` and `ksim fuzz` show them.
pub(crate) fn registry() -> Vec<SubsystemEntry> {
    vec![
        // ---- the kernel models: one line per subsystem crate ----------------------------------
        threaded_entry::<taskstats_sim::TaskstatsSubject>(),
        threaded_entry::<mbcache_sim::MbcacheSubject>(),
        with_loom::<mbcache_sim::Mbcache2Subject>(threaded_entry::<mbcache_sim::Mbcache2Subject>()),
        with_loom::<balloon_sim::BalloonSubject>(threaded_entry::<balloon_sim::BalloonSubject>()),
        // ---- the teaching example (not a kernel file) ----------------------------------------
        threaded_entry::<demo_sim::DemoSubject>(),
    ]
}

/// The entry named `name`, or an error line naming the known ones.
pub(crate) fn find(name: &str) -> Result<SubsystemEntry, String> {
    let all = registry();
    all.iter().find(|e| e.name == name).copied().ok_or_else(|| {
        let names: Vec<&str> = all.iter().map(|e| e.name).collect();
        format!("no subsystem {name:?}; subsystems: {}", names.join(", "))
    })
}

/// The subsystems whose modelled range includes kernel version `kernel`, or an error line giving
/// each subsystem's range; for a name that is no version, the subsystems with a preset of that
/// name (`linux-3.8`, `demo-2.0`), or the version's parse error when none has one.
pub(crate) fn modelling(kernel: &str) -> Result<Vec<SubsystemEntry>, String> {
    let version: KernelVersion = match kernel.parse() {
        Ok(version) => version,
        Err(why) => {
            let presets: Vec<SubsystemEntry> =
                registry().into_iter().filter(|entry| (entry.config)(Some(kernel), &[]).is_ok()).collect();
            return if presets.is_empty() { Err(why) } else { Ok(presets) };
        }
    };
    let all = registry();
    let within: Vec<SubsystemEntry> = all
        .iter()
        .filter(|entry| {
            let (oldest, newest) = (entry.kernel_range)();
            (oldest..=newest).contains(&version)
        })
        .copied()
        .collect();
    if within.is_empty() {
        let ranges: Vec<String> = all
            .iter()
            .map(|entry| {
                let (oldest, newest) = (entry.kernel_range)();
                format!("{} {oldest} to {newest}", entry.name)
            })
            .collect();
        return Err(format!("no subsystem models kernel {version}; modelled: {}", ranges.join(", ")));
    }
    Ok(within)
}

/// The fixes on in a configuration's JSON (`fixes`: the switches that are on), in its order.
fn fixes_on(config: &serde_json::Value) -> Vec<String> {
    let names = config.get("fixes").and_then(serde_json::Value::as_array);
    names.into_iter().flatten().filter_map(|name| name.as_str().map(str::to_string)).collect()
}

/// The kernel a subsystem runs when `--kernel` is not given, as `--kernel` would spell it: the
/// named preset its default configuration carries, plus (`+fix`) any fix the default switches on
/// beyond that preset. The taskstats default is `linux-3.8+tgid-alloc-data-race`: the seed with
/// the 2019 data-race fix, so that the main campaign is quiet while `--kernel linux-3.8` (the
/// seed as released) finds that race. None when the default names no preset, or lacks a fix its
/// preset has (which `--kernel` cannot spell).
pub(crate) fn default_kernel(entry: &SubsystemEntry) -> Option<String> {
    let default = (entry.config)(None, &[]).ok()?;
    let preset = default.get("preset")?.as_str()?.to_string();
    let named = fixes_on(&(entry.config)(Some(&preset), &[]).ok()?);
    let on = fixes_on(&default);
    if named.iter().any(|fix| !on.contains(fix)) {
        return None;
    }
    let extra: Vec<&String> = on.iter().filter(|fix| !named.contains(fix)).collect();
    Some(extra.iter().fold(preset, |kernel, fix| format!("{kernel}+{fix}")))
}

#[cfg(test)]
mod tests {
    //! The contract every registered subsystem keeps with the tool, checked for each entry so a
    //! newly registered crate is held to it without new tests.

    use super::registry;

    #[test]
    fn every_preset_fix_zoo_entry_and_scenario_a_subsystem_lists_is_usable() {
        for entry in registry() {
            let presets = (entry.presets)();
            assert!(!presets.is_empty(), "{} lists no preset", entry.name);
            let fixes = (entry.fixes)();
            for preset in &presets {
                (entry.config)(Some(&preset.name), &[])
                    .unwrap_or_else(|e| panic!("{} preset {}: {e}", entry.name, preset.name));
                for fix in &preset.fixes {
                    assert!(
                        fixes.iter().any(|f| f.name == *fix),
                        "{}: preset {} names unknown fix {fix}",
                        entry.name,
                        preset.name
                    );
                }
            }
            for fix in &fixes {
                (entry.config)(None, std::slice::from_ref(&fix.name))
                    .unwrap_or_else(|e| panic!("{} --fix-off {}: {e}", entry.name, fix.name));
            }
            assert!(
                (entry.config)(Some("no-such-preset"), &[]).is_err(),
                "{}: unknown preset accepted",
                entry.name
            );
            assert!(
                (entry.config)(None, &["no-such-fix".to_string()]).is_err(),
                "{}: unknown fix accepted",
                entry.name
            );
            for bug in (entry.zoo)() {
                assert!(
                    fixes.iter().any(|f| f.name == bug.fix),
                    "{}: zoo entry {} names unknown fix",
                    entry.name,
                    bug.name
                );
                assert!(
                    (entry.config)(Some(bug.kernel), &[]).is_ok(),
                    "{}: zoo entry {} names an unknown kernel {}",
                    entry.name,
                    bug.name,
                    bug.kernel
                );
            }
            for scenario in (entry.scenarios)() {
                let sim = (entry.run_scenario)(scenario.name).unwrap_or_else(|| {
                    panic!("{} lists scenario {} but does not run it", entry.name, scenario.name)
                });
                assert!(!sim.trace().is_empty(), "{} scenario {} traced nothing", entry.name, scenario.name);
            }
            assert!((entry.run_scenario)("no-such-scenario").is_none());
        }
    }

    #[test]
    fn each_default_kernel_names_a_preset_and_configures_what_no_kernel_does() {
        for entry in registry() {
            let kernel = super::default_kernel(&entry)
                .unwrap_or_else(|| panic!("{}: the default is no preset plus fixes", entry.name));
            let preset = kernel.split('+').next().unwrap_or_default();
            assert!((entry.presets)().iter().any(|p| p.name == preset), "{}: {kernel}", entry.name);
            let spelled = (entry.config)(Some(&kernel), &[]).expect("the default kernel parses");
            let default = (entry.config)(None, &[]).expect("default config");
            assert_eq!(super::fixes_on(&spelled), super::fixes_on(&default), "{}: {kernel}", entry.name);
        }
        let taskstats = super::find("taskstats").expect("taskstats");
        assert_eq!(super::default_kernel(&taskstats).as_deref(), Some("linux-3.8+tgid-alloc-data-race"));
    }

    #[test]
    fn every_zoo_bug_found_replays_exactly_from_its_artifact() {
        for entry in registry() {
            for bug in (entry.zoo)() {
                let outcome = (entry.hunt)(&bug, 1, None).expect("hunt");
                assert!(outcome.ok(), "{}", outcome.explain());
                let Some(failure) = outcome.found().next() else {
                    panic!("{}", outcome.explain());
                };
                let replayed = (entry.replay)(&failure.artifact).expect("replay");
                assert!(
                    replayed.exact,
                    "{}: zoo bug {} seed {} did not replay exactly",
                    entry.name, bug.name, failure.artifact.seed
                );
            }
        }
    }
}
