//! `ksim fuzz --threads N`: threaded campaigns from the ordinary build, their artifacts and
//! `ksim replay` of them (one lane per thread).

use crate::support::{json, ksim, scratch};

#[test]
fn threaded_fuzz_of_the_fixed_demo_is_quiet_over_jobs_and_shards() {
    let dir = scratch("threaded-quiet");
    let run =
        ksim(&dir, &["fuzz", "demo", "--threads", "3", "--cases", "60", "--jobs", "2", "--shard", "1/2"]);
    assert_eq!(run.status, 0, "{}\n{}", run.stdout, run.stderr);
    let report = json(&dir.join("ksim-out/report-1-of-2.json"));
    assert_eq!(report["subsystems"][0]["cases"], 60);
    assert!(report["subsystems"][0]["ops"].as_u64().expect("ops") > 60 * 3, "{report}");
    assert_eq!(report["subsystems"][0]["failures"].as_array().expect("failures").len(), 0);
}

/// Runs the threaded campaign that finds the demo's ABBA in `dir` (status 1) and returns its report.
fn find_the_abba(dir: &std::path::Path) -> serde_json::Value {
    let run = ksim(
        dir,
        &["fuzz", "demo", "--threads", "2", "--fix-off", "lru-lock-order", "--cases", "100", "--jobs", "1"],
    );
    assert_eq!(run.status, 1, "{}\n{}", run.stdout, run.stderr);
    json(&dir.join("ksim-out/report.json"))
}

#[test]
fn threaded_fuzz_finds_the_abba_writes_a_threaded_artifact_and_replay_reproduces_it() {
    let dir = scratch("threaded-found");
    let report = find_the_abba(&dir);
    let failure = &report["subsystems"][0]["failures"][0];
    assert_eq!(failure["kind"], "lockdep:circular-locking");
    let artifact = failure["artifact"].as_str().expect("artifact path").to_string();
    let recorded = json(&dir.join(&artifact));
    assert!(recorded["ops"]["threaded"]["threads"].is_array(), "{}", recorded["ops"]);
    assert!(recorded["ops"]["threaded"]["scheduler"]["Replay"]["schedule"].is_string());

    let replay = ksim(&dir, &["replay", &artifact]);
    assert_eq!(replay.status, 0, "{}\n{}", replay.stdout, replay.stderr);
    assert!(replay.stdout.contains("reproduced exactly"), "{}", replay.stdout);
    assert!(replay.stdout.contains("thread-0 ("), "per-thread operations: {}", replay.stdout);
    assert!(replay.stdout.contains("schedule: "), "{}", replay.stdout);
    // The header counts the set-up prefix and every thread's operations.
    let case = &recorded["ops"]["threaded"];
    let count = case["prefix"].as_array().expect("prefix").len()
        + case["threads"]
            .as_array()
            .expect("threads")
            .iter()
            .map(|t| t.as_array().expect("ops").len())
            .sum::<usize>();
    let header = format!(", {count} operations (shrunk from ");
    assert!(replay.stdout.lines().next().is_some_and(|l| l.contains(&header)), "{}", replay.stdout);
}

#[test]
fn threaded_replay_of_an_edited_violation_index_does_not_reproduce_exactly() {
    let dir = scratch("threaded-edited-index");
    let report = find_the_abba(&dir);
    let path = dir.join(report["subsystems"][0]["failures"][0]["artifact"].as_str().expect("artifact path"));
    let mut artifact = json(&path);
    let recorded_at = artifact["violation_at"].as_u64().expect("violation_at");
    assert!(recorded_at > 0, "the case has operations after its first: {}", artifact["ops"]);
    artifact["violation_at"] = serde_json::json!(0);
    std::fs::write(dir.join("edited.json"), artifact.to_string()).expect("write");
    let replay = ksim(&dir, &["replay", "edited.json"]);
    assert_eq!(replay.status, 1, "{}\n{}", replay.stdout, replay.stderr);
    assert!(
        replay.stdout.contains("recorded: lockdep:circular-locking after operation 1\n"),
        "{}",
        replay.stdout
    );
    // What ran is said: the violation where a threaded run records it, not the file's index.
    let replayed = format!("replayed: lockdep:circular-locking after operation {}\n", recorded_at + 1);
    assert!(replay.stdout.contains(&replayed), "{}", replay.stdout);
    assert!(replay.stdout.contains("NOT reproduced exactly"), "{}", replay.stdout);
}

/// One thread interleaves nothing (and shuttle's PCT refuses such a run: the campaign once
/// stopped at seed 2 of every subsystem, "the pinned threaded case no longer fails").
#[test]
fn threads_outside_two_to_four_is_a_usage_error() {
    let dir = scratch("threaded-usage");
    for threads in ["9", "1", "0"] {
        let run = ksim(&dir, &["fuzz", "demo", "--threads", threads, "--cases", "1"]);
        run.assert_one_line_error(2, "--threads");
    }
}
