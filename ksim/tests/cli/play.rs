//! `ksim play` as a user runs it: the level list, a stored solution written, checked and
//! replayed, a losing and a broken schedule, and the game refusing to start without a terminal.

use crate::support::{json, ksim, scratch};

#[test]
fn list_names_at_least_eight_levels_across_the_three_subsystems() {
    let run = ksim(&scratch("play-list"), &["play", "--list"]);
    assert_eq!(run.status, 0, "{}", run.stderr);
    for name in ["taskstats-1", "taskstats-4", "mbcache-1", "mbcache-2", "balloon-1", "balloon-2"] {
        assert!(run.stdout.contains(name), "{name} missing:\n{}", run.stdout);
    }
    let levels = run.stdout.lines().filter(|l| l.contains("goal:")).count();
    assert!(levels >= 8, "{levels} levels:\n{}", run.stdout);
    assert!(run.stdout.contains("goal: deadlock the balloon under OOM"), "{}", run.stdout);
}

#[test]
fn every_stored_solution_is_written_checked_and_replayed_exactly() {
    let dir = scratch("play-solve");
    let list = ksim(&dir, &["play", "--list"]);
    let names: Vec<String> = list
        .stdout
        .lines()
        .filter_map(|l| l.split_whitespace().next().filter(|w| w.contains('-')).map(str::to_string))
        .collect();
    assert!(names.len() >= 8, "{names:?}");
    for name in &names {
        let solved = ksim(&dir, &["play", name, "--solve", "--out", "answers"]);
        assert_eq!(solved.status, 0, "{name}: {}", solved.stderr);
        let file = format!("answers/{name}.json");
        assert_eq!(json(&dir.join(&file))["level"], name.as_str());
        let checked = ksim(&dir, &["play", "--check", &file]);
        assert_eq!(checked.status, 0, "{name}: {}{}", checked.stdout, checked.stderr);
        assert!(checked.stdout.contains("wins: "), "{}", checked.stdout);
        let replayed = ksim(&dir, &["replay", &file]);
        assert_eq!(replayed.status, 0, "{name}: {}{}", replayed.stdout, replayed.stderr);
        assert!(replayed.stdout.contains("reproduced exactly"), "{}", replayed.stdout);
    }
}

#[test]
fn a_schedule_that_stops_early_or_names_a_missing_task_does_not_win() {
    let dir = scratch("play-lose");
    let short = r#"{"ksim_play": 1, "level": "mbcache-1", "subsystem": "mbcache", "kernel": "linux-2.6.11",
        "fix": "exclusive-get", "fix_on": false, "seed": 1, "schedule": [1], "outcome": "", "trace_hash": 0,
        "check": ""}"#;
    std::fs::write(dir.join("short.json"), short).expect("write");
    let run = ksim(&dir, &["play", "--check", "short.json"]);
    assert_eq!(run.status, 1, "{}{}", run.stdout, run.stderr);
    assert!(run.stdout.contains("does not win: the schedule stops after 1 steps"), "{}", run.stdout);
    // Task 2 of mbcache-1 has finished long before step 40: the schedule names a task that
    // cannot run there.
    let late = short.replace("[1]", &format!("[{}]", vec!["2"; 40].join(", ")));
    std::fs::write(dir.join("late.json"), late).expect("write");
    let run = ksim(&dir, &["play", "--check", "late.json"]);
    assert_eq!(run.status, 1, "{}{}", run.stdout, run.stderr);
    assert!(run.stdout.contains("task 2 cannot run there"), "{}", run.stdout);
    std::fs::write(dir.join("bad.json"), short.replace("[1]", "[1, 9]")).expect("write");
    ksim(&dir, &["play", "--check", "bad.json"]).assert_one_line_error(2, "task 9 does not exist");
}

#[test]
fn bad_input_gets_one_line_not_a_panic() {
    let dir = scratch("play-bad");
    ksim(&dir, &["play", "no-such-level"]).assert_one_line_error(2, "no level \"no-such-level\"");
    ksim(&dir, &["play", "--check", "missing.json"]).assert_one_line_error(2, "cannot read missing.json");
    std::fs::write(dir.join("other.json"), "{\"ksim_artifact\": 1}").expect("write");
    ksim(&dir, &["play", "--check", "other.json"]).assert_one_line_error(2, "not a ksim play schedule");
    // The tests run without a terminal: the game says so instead of drawing into a pipe.
    ksim(&dir, &["play", "taskstats-1"]).assert_one_line_error(2, "needs a terminal");
}
