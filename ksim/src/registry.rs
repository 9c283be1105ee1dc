//! The subsystems the CLI knows: each one a [`SubsystemEntry`] of plain function pointers built by
//! [`entry`] from a type implementing [`Catalog`], so the rest of the CLI never names a subsystem
//! type and adding one is one line in [`registry`].

use std::sync::atomic::AtomicBool;

use sim_core::check::{
    self, Artifact, CampaignOptions, CampaignReport, Catalog, FixInfo, PresetInfo, Progress, ReplayReport,
    ScenarioInfo, ZooEntry,
};
use sim_core::Sim;

/// A campaign over a configuration given as JSON (the subject's `Config`, serialised).
pub(crate) type CampaignFn = fn(
    &serde_json::Value,
    &CampaignOptions,
    &AtomicBool,
    &mut dyn FnMut(&Progress),
) -> Result<CampaignReport, String>;

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
    pub(crate) replay: fn(&Artifact) -> Result<ReplayReport, String>,
    pub(crate) run_scenario: fn(&str) -> Option<Sim>,
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
        replay: check::replay::<S>,
        run_scenario: S::run_scenario,
    }
}

/// Every subsystem, in the order `ksim list` and `ksim fuzz` show them.
pub(crate) fn registry() -> Vec<SubsystemEntry> {
    vec![
        // ---- the kernel models: one line per subsystem crate ----------------------------------
        // Registered once each crate implements `sim_core::check::Catalog` for its subject type;
        // the type names below are placeholders until the crates land.
        // entry::<taskstats_sim::Taskstats>(),
        // entry::<mbcache_sim::Mbcache>(),
        // entry::<balloon_sim::Balloon>(),
        // ---- the teaching example (not a kernel file) ----------------------------------------
        entry::<crate::demo::Demo>(),
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
