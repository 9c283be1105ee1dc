//! `ksim play`: the learner is the scheduler. A level is a zoo bug's scenario, a few tasks each
//! running a kernel entry point of a model; the player picks which task runs its next step, and
//! lockdep, the detectors and the model's invariants judge every step. A won level's schedule is
//! saved as a file that `ksim play --check` judges and `ksim replay` replays.
//!
//! - `level.rs`: the `Level` type, the verdict, the catalogue; `levels/`: one file per subsystem.
//! - `runtime.rs`: the player's scheduler over the schedule runtime (the one file naming it).
//! - `snapshot.rs`: what the player sees, derived from the trace.
//! - `app.rs`: the game's state and keys; `screen.rs`: the drawing; `terminal.rs`: the real
//!   terminal loop.
//! - `solution.rs`: the schedule file.

mod app;
mod level;
mod levels;
mod runtime;
mod screen;
mod snapshot;
mod solution;
mod terminal;
#[cfg(test)]
mod tests;

use std::path::Path;

use crate::error::CliError;

pub(crate) use level::{levels as all_levels, Verdict};

/// `ksim play --list`: the levels, easiest first.
pub(crate) fn list() -> String {
    let mut out = String::from("levels (ksim play NAME), easiest first:\n");
    for level in all_levels() {
        let fix = if level.fix_on { "fix on " } else { "fix off" };
        out.push_str(&format!(
            "  {:<12} {:<10} {fix}  {}\n               goal: {}\n",
            level.name, level.subsystem, level.title, level.goal
        ));
    }
    out
}

/// `ksim play --check FILE`: whether a saved schedule wins its level. Returns the report and
/// whether it wins.
pub(crate) fn check(file: &Path) -> Result<(String, bool), CliError> {
    let Some(solution) = solution::Solution::read(file)? else {
        return Err(CliError::Usage(format!(
            "{} is not a ksim play schedule (no \"ksim_play\" key)",
            file.display()
        )));
    };
    let checked = solution::check(&solution)?;
    let mut out = format!("{}\n", checked.level.heading());
    out.push_str(&format!("schedule: {} steps\n", solution.schedule.len()));
    let wins = match &checked.verdict {
        Verdict::Won(line) => {
            out.push_str(&format!("wins: {line}\n"));
            true
        }
        Verdict::Lost(line) => {
            out.push_str(&format!("does not win: {line}\n"));
            false
        }
        Verdict::Playing => {
            out.push_str(&format!(
                "does not win: the schedule stops after {} steps with the level still going\n",
                checked.snapshot.steps
            ));
            false
        }
    };
    if wins && !checked.same_trace {
        out.push_str("note: the trace differs from the saved one (a different ksim version?)\n");
    }
    Ok((out, wins))
}

/// `ksim replay FILE` for a play schedule: None when `file` is not one; otherwise the trace of
/// the run, how it ended, and whether it reproduced the saved run exactly.
pub(crate) fn replay(file: &Path) -> Result<Option<(String, bool)>, CliError> {
    // A file that is not JSON is left to the artifact reader, whose message names artifacts.
    let is_json = std::fs::read_to_string(file)
        .ok()
        .is_some_and(|text| serde_json::from_str::<serde_json::Value>(&text).is_ok());
    if !is_json {
        return Ok(None);
    }
    let Some(solution) = solution::Solution::read(file)? else { return Ok(None) };
    let checked = solution::check(&solution)?;
    let mut out = format!("{}\nschedule: {:?}\n", checked.level.heading(), solution.schedule);
    for (owner, text) in &checked.snapshot.trace {
        let who = owner.map_or_else(|| "set-up".to_string(), |o| format!("task {}", o + 1));
        out.push_str(&format!("{who:>7} {text}\n"));
    }
    let end = checked.snapshot.end.as_ref().map(|e| e.line()).unwrap_or_else(|| "paused".into());
    let exact = checked.same_trace && end == solution.outcome;
    out.push_str(&format!(
        "ended: {end}\n{}\n",
        if exact { "reproduced exactly (same outcome, same trace hash)" } else { "NOT reproduced exactly" }
    ));
    Ok(Some((out, exact)))
}

/// `ksim play LEVEL --solve`: writes the level's stored winning schedule into `out_dir`.
pub(crate) fn solve(name: &str, out_dir: &Path) -> Result<String, CliError> {
    let level = level::find(name)?;
    let choices = level.solution_choices();
    let snapshot = level.run(&choices);
    if !matches!(level.verdict(&snapshot), Verdict::Won(_)) {
        return Err(CliError::Failed(format!("{name}: the stored solution no longer wins (a bug in ksim)")));
    }
    let path = solution::Solution::new(&level, &choices, &snapshot)
        .write_into(out_dir)
        .map_err(|e| CliError::Failed(format!("cannot write into {}: {e}", out_dir.display())))?;
    Ok(format!(
        "{}: {} steps, written to {}
",
        level.name,
        choices.len(),
        path.display()
    ))
}

/// `ksim play LEVEL`: the game in this terminal; a won level's schedule goes into `save_dir`.
pub(crate) fn play(name: &str, save_dir: &Path) -> Result<(), CliError> {
    let level = level::find(name)?;
    terminal::run(level, save_dir)
}
