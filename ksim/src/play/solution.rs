//! A won level's schedule as a file: what a teacher collects, `ksim play --check` judges and
//! `ksim replay` replays. The schedule is the list of task numbers the player stepped (1 is the
//! first task), which with the level's fixed seed replays the run exactly; the trace hash and the
//! outcome are stored so a replay can say it reproduced the same run.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::level::{self, Level, Verdict};
use super::snapshot::Snapshot;

/// The file format version.
pub(crate) const SOLUTION_VERSION: u32 = 1;

/// A level's schedule. See the module documentation.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Solution {
    /// File format version (the key that tells this file from a campaign's artifact).
    pub ksim_play: u32,
    /// The level's name.
    pub level: String,
    /// Its subsystem, kernel and fix, for a reader.
    pub subsystem: String,
    pub kernel: String,
    pub fix: String,
    pub fix_on: bool,
    /// The `Sim`'s seed (every level uses one fixed seed).
    pub seed: u64,
    /// The task stepped at each decision, 1-based.
    pub schedule: Vec<usize>,
    /// How the run ended.
    pub outcome: String,
    /// The trace hash where it ended.
    pub trace_hash: u64,
    /// How to check it.
    pub check: String,
}

impl Solution {
    /// The schedule `choices` (0-based) of `level`, which ended as `snapshot` says.
    pub(crate) fn new(level: &Level, choices: &[usize], snapshot: &Snapshot) -> Solution {
        Solution {
            ksim_play: SOLUTION_VERSION,
            level: level.name.to_string(),
            subsystem: level.subsystem.to_string(),
            kernel: level.kernel.to_string(),
            fix: level.zoo.to_string(),
            fix_on: level.fix_on,
            seed: 1,
            schedule: choices.iter().map(|c| c + 1).collect(),
            outcome: snapshot.end.as_ref().map(|e| e.line()).unwrap_or_default(),
            trace_hash: snapshot.trace_hash,
            check: format!("ksim play --check {}.json", level.name),
        }
    }

    /// Writes the file `<level>.json` into `dir` (created if missing), whole or not at all.
    pub(crate) fn write_into(&self, dir: &Path) -> std::io::Result<PathBuf> {
        std::fs::create_dir_all(dir)?;
        let path = dir.join(format!("{}.json", self.level));
        let solution = Solution { check: format!("ksim play --check {}", path.display()), ..self.clone() };
        let text = serde_json::to_string_pretty(&solution).map_err(std::io::Error::other)?;
        let temporary = path.with_extension("json.tmp");
        std::fs::write(&temporary, text + "\n")?;
        std::fs::rename(&temporary, &path)?;
        Ok(path)
    }

    /// Reads a schedule file; Ok(None) when the file is JSON of another kind (a campaign's
    /// artifact), one error line when it cannot be read or is not JSON.
    pub(crate) fn read(path: &Path) -> Result<Option<Solution>, String> {
        let text =
            std::fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        let value: serde_json::Value =
            serde_json::from_str(&text).map_err(|e| format!("{} is not JSON: {e}", path.display()))?;
        if value.get("ksim_play").is_none() {
            return Ok(None);
        }
        let solution: Solution = serde_json::from_value(value)
            .map_err(|e| format!("{} is not a ksim play schedule: {e}", path.display()))?;
        if solution.ksim_play != SOLUTION_VERSION {
            return Err(format!(
                "{} is a version {} schedule; this ksim reads version {SOLUTION_VERSION}",
                path.display(),
                solution.ksim_play
            ));
        }
        Ok(Some(solution))
    }
}

/// What checking a schedule found.
#[derive(Debug)]
pub(crate) struct Checked {
    /// The level.
    pub level: Level,
    /// The run.
    pub snapshot: Snapshot,
    /// Whether it wins.
    pub verdict: Verdict,
    /// Whether the run has the stored trace hash.
    pub same_trace: bool,
}

/// Runs `solution` against its level.
pub(crate) fn check(solution: &Solution) -> Result<Checked, String> {
    let level = level::find(&solution.level)?;
    let tasks = level.tasks.len();
    let mut choices = Vec::with_capacity(solution.schedule.len());
    for (step, &task) in solution.schedule.iter().enumerate() {
        if task == 0 || task > tasks {
            return Err(format!(
                "step {}: task {task} does not exist (the level has tasks 1-{tasks})",
                step + 1
            ));
        }
        choices.push(task - 1);
    }
    let snapshot = level.run(&choices);
    let verdict = level.verdict(&snapshot);
    let same_trace = snapshot.trace_hash == solution.trace_hash;
    Ok(Checked { level, snapshot, verdict, same_trace })
}
