//! The one zoo routine: hunt a historical bug with its fix switched off, from several fresh seed
//! ranges, and run the fixed kernel for the same budget. `ksim zoo`, the registry contract test
//! and every subsystem's zoo tests call [`hunt`]; "found with the fix off, quiet with it on" is
//! decided in [`ZooOutcome::ok`] and nowhere else.

use std::fmt::Write as _;
use std::sync::atomic::AtomicBool;

use crate::check::{campaign, CampaignOptions, Catalog, Failure, ZooEntry};

/// Fresh seed ranges start this far apart: run `r` starts at seed `r * ZOO_SEED_STRIDE`.
pub const ZOO_SEED_STRIDE: u64 = 1 << 32;

/// What hunting one zoo bug found.
#[derive(Clone, Debug)]
pub struct ZooOutcome {
    /// The bug hunted.
    pub entry: ZooEntry,
    /// Cases tried per run at most.
    pub budget_cases: u64,
    /// Per fresh seed range, the first failure with the fix off (None: none within the budget).
    pub runs: Vec<Option<Failure>>,
    /// The first failure with the fix on, from seed 0 and the same budget (there must be none).
    pub fixed_failure: Option<Failure>,
}

impl ZooOutcome {
    /// Every run found the bug, as one of the kinds the entry lists.
    pub fn found_in_every_run(&self) -> bool {
        self.runs
            .iter()
            .all(|run| run.as_ref().is_some_and(|f| self.entry.accepts(&f.artifact.violation.kind)))
    }

    /// The fixed kernel found nothing within the budget.
    pub fn fixed_quiet(&self) -> bool {
        self.fixed_failure.is_none()
    }

    /// Found in every run with an expected kind, and quiet when fixed.
    pub fn ok(&self) -> bool {
        self.found_in_every_run() && self.fixed_quiet()
    }

    /// The failures found with the fix off.
    pub fn found(&self) -> impl Iterator<Item = &Failure> {
        self.runs.iter().flatten()
    }

    /// What went as claimed and what did not, with the command that replays each failure.
    pub fn explain(&self) -> String {
        let entry = &self.entry;
        let expected: Vec<String> = entry.expected.iter().map(ToString::to_string).collect();
        let mut out = format!(
            "zoo {:?} (kernel {}, fix {} off, expecting {}):\n",
            entry.name,
            entry.kernel,
            entry.fix,
            expected.join(" or ")
        );
        for (index, run) in self.runs.iter().enumerate() {
            let _ = match run {
                None => writeln!(
                    out,
                    "  run {index}: nothing in {} cases of {} ops",
                    self.budget_cases, entry.ops_max
                ),
                Some(failure) => writeln!(out, "  run {index}: {}", describe(failure)),
            };
        }
        let _ = match &self.fixed_failure {
            None => writeln!(out, "  fixed: quiet for {} cases", self.budget_cases),
            Some(failure) => writeln!(out, "  fixed: NOT quiet: {}", describe(failure)),
        };
        out
    }
}

fn describe(failure: &Failure) -> String {
    let artifact = &failure.artifact;
    let ops = artifact.ops.as_array().map_or(0, Vec::len);
    format!(
        "{} after {} cases, seed {}, {ops} ops (shrunk from {}); replay: {}",
        artifact.violation, failure.cases_to_find, artifact.seed, artifact.ops_unshrunk, artifact.replay
    )
}

/// Hunts `entry` from `runs` fresh seed ranges with its fix off, `cases` cases each (None: the
/// entry's own budget), then runs the fixed kernel from seed 0 for the same budget.
pub fn hunt<S: Catalog>(entry: &ZooEntry, runs: u64, cases: Option<u64>) -> Result<ZooOutcome, String> {
    if runs == 0 {
        return Err("a zoo hunt needs at least one run".into());
    }
    let context = |error: String| format!("{} zoo entry {:?}: {error}", S::NAME, entry.name);
    let broken = S::config(Some(entry.kernel), &[entry.fix.to_string()]).map_err(context)?;
    let fixed = S::config(Some(entry.kernel), &[]).map_err(context)?;
    let budget_cases = cases.unwrap_or(entry.cases_max);
    let first_failure = |config: &S::Config, seed: u64| -> Result<Option<Failure>, String> {
        let options =
            CampaignOptions { seed, ops_max: entry.ops_max, ..CampaignOptions::cases(budget_cases) };
        let report =
            campaign::<S>(config, &options, &AtomicBool::new(false), &mut |_| {}).map_err(context)?;
        Ok(report.failures.into_iter().next())
    };
    let runs =
        (0..runs).map(|run| first_failure(&broken, run * ZOO_SEED_STRIDE)).collect::<Result<_, _>>()?;
    let fixed_failure = first_failure(&fixed, 0)?;
    Ok(ZooOutcome { entry: entry.clone(), budget_cases, runs, fixed_failure })
}

/// For zoo tests: hunts the entry named `name` once and panics, with [`ZooOutcome::explain`],
/// unless it is found with its fix off and quiet with it on. Returns the outcome for further
/// assertions (the shrunk length, say).
pub fn assert_found_and_fixed<S: Catalog>(name: &str) -> ZooOutcome {
    let entry = S::zoo().into_iter().find(|entry| entry.name == name).unwrap_or_else(|| {
        let names: Vec<&str> = S::zoo().iter().map(|entry| entry.name).collect();
        panic!("{}: no zoo entry {name:?}; entries: {}", S::NAME, names.join(", "))
    });
    let outcome = hunt::<S>(&entry, 1, None).unwrap_or_else(|error| panic!("{error}"));
    println!("{}", outcome.explain());
    assert!(outcome.ok(), "{}", outcome.explain());
    outcome
}
