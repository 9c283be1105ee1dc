//! Each subcommand, its happy path and its bad inputs.

use crate::support::{demo_failure_artifact, json, ksim, ksim_with_input, scratch, Run};

#[test]
fn list_names_the_demo_with_its_presets_fixes_scenarios_and_zoo() {
    let run = ksim(&scratch("list"), &["list"]);
    assert_eq!(run.status, 0, "{}", run.stderr);
    for needle in ["demo", "demo-1.0", "demo-2.0", "shrink-skips-used", "lru-lock-order", "use-after-shrink"]
    {
        assert!(run.stdout.contains(needle), "list lacks {needle}:\n{}", run.stdout);
    }
}

#[test]
fn help_and_version_print_and_exit_zero() {
    let dir = scratch("help");
    let help = ksim(&dir, &["--help"]);
    assert_eq!(help.status, 0);
    for command in ["fuzz", "replay", "zoo", "list", "trace", "merge", "taskstats"] {
        assert!(help.stdout.contains(command), "--help lists {command}: {}", help.stdout);
    }
    let fuzz = ksim(&dir, &["fuzz", "--help"]);
    assert!(fuzz.stdout.contains("--fix-off") && fuzz.stdout.contains("--shard"), "{}", fuzz.stdout);
    let version = ksim(&dir, &["--version"]);
    assert_eq!(version.status, 0);
    assert!(version.stdout.starts_with("ksim "), "{}", version.stdout);
}

#[test]
fn fuzz_of_the_fixed_demo_is_quiet_exits_zero_and_writes_a_report() {
    let dir = scratch("fuzz-quiet");
    let run = ksim(&dir, &["fuzz", "demo", "--cases", "200", "--ops", "40"]);
    assert_eq!(run.status, 0, "{}\n{}", run.stdout, run.stderr);
    assert!(run.stdout.contains("demo"), "the table names the subsystem: {}", run.stdout);
    let report = json(&dir.join("ksim-out/report.json"));
    assert_eq!(report["subsystems"][0]["cases"], 200);
    assert!(report["subsystems"][0]["ops"].as_u64().expect("ops") > 200);
    assert_eq!(report["subsystems"][0]["failures"].as_array().expect("failures").len(), 0);
}

#[test]
fn fuzz_with_a_fix_off_finds_the_bug_writes_the_artifact_first_and_exits_one() {
    let dir = scratch("fuzz-found");
    let run =
        ksim(&dir, &["fuzz", "demo", "--fix-off", "shrink-skips-used", "--cases", "300", "--jobs", "1"]);
    assert_eq!(run.status, 1, "{}\n{}", run.stdout, run.stderr);
    assert!(run.stdout.contains("VIOLATION demo seed"), "{}", run.stdout);
    let report = json(&dir.join("ksim-out/report.json"));
    let failure = &report["subsystems"][0]["failures"][0];
    assert_eq!(failure["kind"], "mismatch");
    let artifact = dir.join(failure["artifact"].as_str().expect("artifact path"));
    let artifact = json(&artifact);
    assert_eq!(artifact["subsystem"], "demo");
    assert!(artifact["ops"].as_array().expect("ops").len() <= 6, "shrunk: {}", artifact["ops"]);
}

/// Two campaigns that find different bugs at one seed, written to one `--out`: the second
/// once wrote over the first's artifact (both are `demo-seed1.ksim.json`), losing a finding
/// its report still named. Each is kept, and the first run again writes over its own file.
#[test]
fn a_second_campaign_into_the_same_out_keeps_the_first_finding() {
    let dir = scratch("fuzz-found-twice");
    let campaign = |fix: &str| {
        let run =
            ksim(&dir, &["fuzz", "demo", "--fix-off", fix, "--seed", "1", "--cases", "300", "--jobs", "1"]);
        assert_eq!(run.status, 1, "{}\n{}", run.stdout, run.stderr);
        let report = json(&dir.join("ksim-out/report.json"));
        let path = report["subsystems"][0]["failures"][0]["artifact"].as_str().expect("artifact path");
        let artifact = json(&dir.join(path));
        (path.to_string(), artifact["violation"]["kind"].as_str().expect("kind").to_string())
    };
    let (first, first_kind) = campaign("shrink-skips-used");
    let (second, second_kind) = campaign("lru-lock-order");
    assert_ne!(first_kind, second_kind, "two different bugs");
    assert_ne!(first, second, "the second finding has a file of its own");
    assert_eq!(json(&dir.join(&first))["violation"]["kind"], first_kind.as_str(), "the first is kept");
    let (again, _) = campaign("shrink-skips-used");
    assert_eq!(again, first, "the same finding again is written over its own file");
    let artifacts = std::fs::read_dir(dir.join("ksim-out")).expect("out").count();
    assert_eq!(artifacts, 3, "two artifacts and the report");
}

#[test]
fn replay_of_a_fuzz_artifact_reproduces_exactly_in_text_and_chrome() {
    let dir = scratch("replay");
    let run = ksim(&dir, &["fuzz", "demo", "--fix-off", "lru-lock-order", "--cases", "300", "--jobs", "1"]);
    assert_eq!(run.status, 1, "{}\n{}", run.stdout, run.stderr);
    let report = json(&dir.join("ksim-out/report.json"));
    let failure = &report["subsystems"][0]["failures"][0];
    assert_eq!(failure["kind"], "lockdep:circular-locking");
    let artifact = failure["artifact"].as_str().expect("artifact path").to_string();

    let text = ksim(&dir, &["replay", &artifact]);
    assert_eq!(text.status, 0, "{}\n{}", text.stdout, text.stderr);
    assert!(text.stdout.contains("reproduced exactly"), "{}", text.stdout);
    assert!(
        text.stdout.contains("possible circular locking dependency"),
        "lockdep's report: {}",
        text.stdout
    );
    assert!(text.stdout.contains("lock(demo_lru_lock)"), "the swim-lane: {}", text.stdout);

    let chrome = ksim(&dir, &["replay", &artifact, "--trace", "chrome", "--out", "trace.json"]);
    assert_eq!(chrome.status, 0, "{}", chrome.stderr);
    let trace = json(&dir.join("trace.json"));
    let events = trace["traceEvents"].as_array().expect("traceEvents");
    assert!(events.iter().any(|e| e["cat"] == "lock"), "lock slices in the Chrome trace");

    let stdout_json = ksim(&dir, &["replay", &artifact, "--trace", "chrome"]);
    assert_eq!(stdout_json.status, 0);
    let parsed: serde_json::Value = serde_json::from_str(&stdout_json.stdout).expect("stdout is pure JSON");
    assert!(parsed["traceEvents"].is_array());
}

#[test]
fn replay_of_an_edited_artifact_says_it_did_not_reproduce_and_exits_one() {
    let dir = scratch("replay-edited");
    let path = demo_failure_artifact(&dir);
    let mut artifact = json(&path);
    artifact["trace_hash"] = serde_json::json!(12345);
    std::fs::write(&path, artifact.to_string()).expect("write");
    let replay = ksim(&dir, &["replay", path.to_str().expect("utf-8")]);
    assert_eq!(replay.status, 1, "{}", replay.stdout);
    assert!(replay.stdout.contains("NOT reproduced exactly"), "{}", replay.stdout);
}

#[test]
fn replay_of_an_artifact_whose_violation_lies_past_its_operations_is_one_line_and_status_two() {
    let dir = scratch("replay-inconsistent");
    let path = demo_failure_artifact(&dir);
    let good = json(&path);
    let ops = good["ops"].as_array().expect("plain ops").len();
    let seed = good["seed"].as_u64().expect("seed");
    // Recorded after an operation the file does not have: a hand-edited or corrupt file.
    let mut late = good.clone();
    late["violation_at"] = serde_json::json!(ops + 5);
    std::fs::write(dir.join("late.json"), late.to_string()).expect("write");
    ksim(&dir, &["replay", "late.json"]).assert_one_line_error(2, "not a consistent ksim artifact");
    let mut emptied = good.clone();
    emptied["ops"] = serde_json::json!([]);
    std::fs::write(dir.join("emptied.json"), emptied.to_string()).expect("write");
    ksim(&dir, &["replay", "emptied.json"]).assert_one_line_error(2, "has 0 operations");
    // Right after the last operation is the teardown's place: a possible record, which this
    // run does not reproduce (exit 1), and the header says where it was recorded.
    let mut teardown = good;
    teardown["violation_at"] = serde_json::json!(ops);
    std::fs::write(dir.join("teardown.json"), teardown.to_string()).expect("write");
    let replay = ksim(&dir, &["replay", "teardown.json"]);
    assert_eq!(replay.status, 1, "{}\n{}", replay.stdout, replay.stderr);
    let recorded = format!("recorded: mismatch at teardown, after operation {ops}\n");
    assert!(replay.stdout.contains(&recorded), "{}", replay.stdout);
    let header = format!("artifact: demo seed {seed}, {ops} operations (shrunk from ");
    assert!(replay.stdout.starts_with(&header), "{}", replay.stdout);
}

#[test]
fn replay_of_an_artifact_whose_config_the_model_cannot_take_is_one_line_and_status_two() {
    let dir = scratch("replay-config");
    let path = demo_failure_artifact(&dir);
    let good = json(&path);
    for (field, value, says) in
        [("alloc_fault_percent", 250, "more than 100"), ("tasks", 0, "at least 1"), ("keys", 0, "at least 1")]
    {
        let mut edited = good.clone();
        edited["config"][field] = serde_json::json!(value);
        std::fs::write(dir.join("edited.json"), edited.to_string()).expect("write");
        ksim(&dir, &["replay", "edited.json"]).assert_one_line_error(2, says);
    }
}

#[test]
fn replay_of_missing_corrupt_or_foreign_files_is_one_line_and_status_two() {
    let dir = scratch("replay-bad");
    ksim(&dir, &["replay", "nope.json"]).assert_one_line_error(2, "cannot read nope.json");
    std::fs::write(dir.join("corrupt.json"), "{ not json").expect("write");
    ksim(&dir, &["replay", "corrupt.json"]).assert_one_line_error(2, "not a ksim artifact");
    std::fs::write(dir.join("empty.json"), "").expect("write");
    ksim(&dir, &["replay", "empty.json"]).assert_one_line_error(2, "not a ksim artifact");

    let path = demo_failure_artifact(&dir);
    let good = json(&path);
    let mut foreign = good.clone();
    foreign["subsystem"] = serde_json::json!("nosuch");
    std::fs::write(dir.join("foreign.json"), foreign.to_string()).expect("write");
    ksim(&dir, &["replay", "foreign.json"]).assert_one_line_error(2, "no subsystem \"nosuch\"");
    let mut future = good.clone();
    future["ksim_artifact"] = serde_json::json!(99);
    std::fs::write(dir.join("future.json"), future.to_string()).expect("write");
    ksim(&dir, &["replay", "future.json"]).assert_one_line_error(2, "version 99");
    let mut bad_ops = good;
    bad_ops["ops"] = serde_json::json!([{"Explode": {}}]);
    std::fs::write(dir.join("bad-ops.json"), bad_ops.to_string()).expect("write");
    ksim(&dir, &["replay", "bad-ops.json"]).assert_one_line_error(2, "operations do not fit demo");
}

#[test]
fn list_json_gives_every_fix_its_commit_and_landed_in() {
    let dir = scratch("list-json");
    let run = ksim(&dir, &["list", "--format", "json"]);
    assert_eq!(run.status, 0, "{}", run.stderr);
    let listing: serde_json::Value = serde_json::from_str(&run.stdout).expect("list --format json is JSON");
    let subsystems = listing.as_array().expect("an array of subsystems");
    let names: Vec<&str> = subsystems.iter().filter_map(|s| s["name"].as_str()).collect();
    assert_eq!(names, ["taskstats", "mbcache", "mbcache2", "balloon", "demo"]);
    for subsystem in subsystems {
        let fixes = subsystem["fixes"].as_array().expect("fixes");
        assert!(!fixes.is_empty(), "{}", subsystem["name"]);
        for fix in fixes {
            for field in ["name", "title", "commit", "landed_in"] {
                assert!(fix[field].as_str().is_some_and(|v| !v.is_empty()), "{field} of {fix}");
            }
            assert!(fix.get("cve").is_some(), "cve of {fix}");
        }
        assert!(!subsystem["presets"].as_array().expect("presets").is_empty());
    }
    let run = ksim(&dir, &["list", "--kernel", "3.4", "--format", "json"]);
    let listing: serde_json::Value = serde_json::from_str(&run.stdout).expect("JSON");
    let taskstats = &listing[0];
    assert_eq!(taskstats["name"], "taskstats");
    let on: Vec<&str> = taskstats["kernel"]["fixes_on"]
        .as_array()
        .expect("fixes_on")
        .iter()
        .filter_map(|f| f.as_str())
        .collect();
    assert!(on.contains(&"duplicate-listener-check") && !on.contains(&"namespace-checks"), "{on:?}");
}

#[test]
fn the_default_kernel_is_named_by_list_and_by_the_campaign_table() {
    let dir = scratch("default-kernel");
    let list = ksim(&dir, &["list"]);
    assert_eq!(list.status, 0, "{}", list.stderr);
    assert!(
        list.stdout.contains("\n  default (no --kernel): linux-3.8+tgid-alloc-data-race\n"),
        "{}",
        list.stdout
    );
    assert!(list.stdout.contains("\n  default (no --kernel): demo-2.0\n"), "{}", list.stdout);
    let listed: serde_json::Value =
        serde_json::from_str(&ksim(&dir, &["list", "--format", "json"]).stdout).expect("list json");
    assert_eq!(listed[0]["default_kernel"], "linux-3.8+tgid-alloc-data-race");
    // With no --kernel the taskstats row names what ran: the seed plus the 2019 race fix, quiet.
    let run = ksim(&dir, &["fuzz", "taskstats", "--cases", "20", "--jobs", "1"]);
    assert_eq!(run.status, 0, "{}\n{}", run.stdout, run.stderr);
    let row = run.stdout.lines().find(|l| l.starts_with("taskstats ")).expect("taskstats row");
    assert!(row.contains(" linux-3.8+tgid-alloc-data-race "), "{row}");
    // The preset alone is the seed as released, race included.
    let seed = ksim(&dir, &["fuzz", "taskstats", "--kernel", "linux-3.8", "--cases", "20", "--jobs", "1"]);
    assert_eq!(seed.status, 1, "{}\n{}", seed.stdout, seed.stderr);
    assert!(seed.stdout.contains("lockdep:lockset-race"), "{}", seed.stdout);
}

#[test]
fn a_count_of_one_is_singular_in_the_campaign_report() {
    let dir = scratch("singular");
    // The ABBA is found by the first case (seed 0), so the report counts one case.
    let run = ksim(&dir, &["fuzz", "demo", "--fix-off", "lru-lock-order", "--cases", "100", "--jobs", "1"]);
    assert_eq!(run.status, 1, "{}\n{}", run.stdout, run.stderr);
    assert!(run.stdout.contains("  found after 1 case ("), "{}", run.stdout);
    let more =
        ksim(&dir, &["fuzz", "demo", "--fix-off", "shrink-skips-used", "--cases", "100", "--jobs", "1"]);
    assert!(more.stdout.contains("  found after 2 cases ("), "{}", more.stdout);
}

/// A subsystem named twice runs once (it ran twice, two rows); a `--kernel` that selects one
/// subsystem takes that subsystem's `--fix-off` (the option was refused before the version
/// narrowed the choice: only mbcache models 2.6.10), and a preset selects its subsystem.
#[test]
fn the_subsystems_a_campaign_runs_are_each_named_once() {
    let dir = scratch("fuzz-selection");
    let twice = ksim(&dir, &["fuzz", "demo", "demo", "--cases", "5", "--jobs", "1"]);
    assert_eq!(twice.status, 0, "{}\n{}", twice.stdout, twice.stderr);
    assert_eq!(twice.stdout.lines().filter(|l| l.starts_with("demo ")).count(), 1, "{}", twice.stdout);
    let report = json(&dir.join("ksim-out/report.json"));
    assert_eq!(report["subsystems"].as_array().expect("rows").len(), 1, "{report}");
    let narrowed = ksim(
        &dir,
        &["fuzz", "--kernel", "2.6.10", "--fix-off", "exclusive-get", "--cases", "5", "--jobs", "1"],
    );
    assert!(narrowed.status <= 1, "{}\n{}", narrowed.stdout, narrowed.stderr);
    let report = json(&dir.join("ksim-out/report.json"));
    let rows = report["subsystems"].as_array().expect("rows");
    assert_eq!(rows.len(), 1, "{report}");
    assert_eq!(rows[0]["subsystem"], "mbcache", "{report}");
    // A preset with no subsystem named runs the subsystem whose preset it is (it was refused as
    // "not a kernel version"); a name that is neither is refused.
    let preset = ksim(&dir, &["fuzz", "--kernel", "demo-2.0", "--cases", "5", "--jobs", "1"]);
    assert_eq!(preset.status, 0, "{}\n{}", preset.stdout, preset.stderr);
    let report = json(&dir.join("ksim-out/report.json"));
    let rows = report["subsystems"].as_array().expect("rows");
    assert_eq!((rows.len(), &rows[0]["subsystem"]), (1, &"demo".into()), "{report}");
    ksim(&dir, &["fuzz", "--kernel", "nosuch-1.0", "--cases", "5"]).assert_one_line_error(2, "nosuch-1.0");
}

#[test]
fn fuzz_takes_a_kernel_version() {
    let dir = scratch("fuzz-kernel");
    // 3.4 as it is has the sig->stats data race (its own zoo row); this campaign must pass.
    let run = ksim(
        &dir,
        &["fuzz", "taskstats", "--kernel", "3.4+tgid-alloc-data-race", "--cases", "20", "--jobs", "1"],
    );
    assert_eq!(run.status, 0, "{}\n{}", run.stdout, run.stderr);
    assert!(run.stdout.contains("3.4"), "{}", run.stdout);
}

#[test]
fn bad_arguments_are_one_line_and_status_two() {
    let dir = scratch("bad-args");
    ksim(&dir, &["frobnicate"]).assert_one_line_error(2, "frobnicate");
    ksim(&dir, &["fuzz", "nosuch"]).assert_one_line_error(2, "no subsystem \"nosuch\"; subsystems: ");
    ksim(&dir, &["fuzz", "demo", "--fix-off", "nosuch"]).assert_one_line_error(2, "no fix named 'nosuch'");
    ksim(&dir, &["fuzz", "demo", "--preset", "linux-0.01"])
        .assert_one_line_error(2, "outside the modelled range");
    ksim(&dir, &["fuzz", "demo", "--kernel", "six"]).assert_one_line_error(2, "not a kernel version");
    ksim(&dir, &["fuzz", "taskstats", "--kernel", "1.0"])
        .assert_one_line_error(2, "kernel 1.0 is outside the modelled range");
    ksim(&dir, &["fuzz", "taskstats", "--kernel", "6.0"])
        .assert_one_line_error(2, "taskstats: kernel 6.0 is outside the modelled range 2.6.19-rc3 to 5.5");
    ksim(&dir, &["fuzz", "--kernel", "9.0"]).assert_one_line_error(2, "no subsystem models kernel 9.0");
    ksim(&dir, &["list", "--kernel", "x"]).assert_one_line_error(2, "not a kernel version");
    ksim(&dir, &["fuzz", "--shard", "2/2"]).assert_one_line_error(2, "need 0 <= I < N");
    ksim(&dir, &["fuzz", "--shard", "half"]).assert_one_line_error(2, "is not I/N");
    ksim(&dir, &["fuzz", "--cases", "lots"])
        .assert_one_line_error(2, "invalid value 'lots' for '--cases <N>'");
    ksim(&dir, &["fuzz", "--cases", "3", "--seconds", "3"]).assert_one_line_error(2, "cannot be used with");
    ksim(&dir, &["fuzz", "demo", "--cases", "3", "--jobs", "0"]).assert_one_line_error(2, "--jobs");
    // More threads than a system gives aborted the process (status 134); a shard count near
    // u64::MAX overflowed the seed arithmetic (status 70).
    ksim(&dir, &["fuzz", "demo", "--cases", "2", "--jobs", "100000"])
        .assert_one_line_error(2, "--jobs must be at most 256");
    ksim(&dir, &["fuzz", "demo", "--cases", "3", "--shard", "1/18446744073709551615"])
        .assert_one_line_error(2, "N is at most 65536");
    ksim(&dir, &["fuzz", "demo", "--cases", "3", "--ops", "0"]).assert_one_line_error(2, "--ops");
    // A case is generated whole: 2^32 operations aborted the process (status 134), 2^63 panicked
    // a job (status 3).
    for ops in ["100001", "4294967295", "9223372036854775807"] {
        ksim(&dir, &["fuzz", "demo", "--cases", "2", "--ops", ops])
            .assert_one_line_error(2, "--ops must be at most 100000");
    }
    ksim(&dir, &["trace", "nosuch"]).assert_one_line_error(2, "no scenario \"nosuch\"; scenarios: ");
    ksim(&dir, &["trace", "nosuch:x"]).assert_one_line_error(2, "no subsystem \"nosuch\"");
    ksim(&dir, &["trace", "demo:nosuch"]).assert_one_line_error(2, "no scenario \"demo:nosuch\"");
    ksim(&dir, &[]).assert_one_line_error(2, "subcommand is missing");
    ksim(&dir, &["taskstats"]).assert_one_line_error(2, "subcommand is missing");
    ksim(&dir, &["zoo", "--format", "yaml"]).assert_one_line_error(2, "yaml");
    ksim(&dir, &["zoo", "nosuch"]).assert_one_line_error(2, "no subsystem \"nosuch\"");
    ksim(&dir, &["zoo", "demo", "--runs", "0"]).assert_one_line_error(2, "--runs");
    ksim(&dir, &["merge"]).assert_one_line_error(2, "REPORTS");
    std::fs::write(dir.join("file"), "x").expect("write");
    ksim(&dir, &["fuzz", "demo", "--cases", "1", "--out", "file"])
        .assert_one_line_error(2, "cannot create file");
}

#[test]
fn trace_draws_a_scenario_as_lanes_and_as_chrome_json() {
    let dir = scratch("trace");
    let run = ksim(&dir, &["trace", "use-after-shrink"]);
    assert_eq!(run.status, 0, "{}", run.stderr);
    assert!(run.stdout.contains("root: use-after-free"), "{}", run.stdout);
    assert!(
        run.stdout.contains("task-A") && run.stdout.contains("task-B"),
        "one lane per task: {}",
        run.stdout
    );
    let fixed = ksim(&dir, &["trace", "demo:shrink-skips-used"]);
    assert!(fixed.stdout.contains("violations: none"), "{}", fixed.stdout);
    let lockdep = ksim(&dir, &["trace", "lru-lock-inversion"]);
    assert!(
        lockdep.stdout.contains("lockdep:circular-locking:")
            && lockdep.stdout.contains("possible circular locking dependency"),
        "lockdep's report, collected beside the trace, is printed: {}",
        lockdep.stdout
    );
    let chrome = ksim(&dir, &["trace", "lru-lock-inversion", "--format", "chrome"]);
    assert_eq!(chrome.status, 0);
    let parsed: serde_json::Value = serde_json::from_str(&chrome.stdout).expect("pure JSON on stdout");
    assert!(parsed["traceEvents"].as_array().expect("events").iter().any(|e| e["cat"] == "lock"));
}

#[test]
fn a_failure_while_running_is_status_three_and_a_closed_pipe_is_quiet_141() {
    use std::process::{Command, Stdio};
    let dir = scratch("run-failures");
    // Bad input and a failure while running are told apart by status, not by reading stderr.
    ksim(&dir, &["trace", "cve-2011-2484", "--out", "/dev/full"])
        .assert_one_line_error(3, "cannot write /dev/full");
    let full = std::fs::OpenOptions::new().write(true).open("/dev/full").expect("/dev/full");
    let list = Command::new(env!("CARGO_BIN_EXE_ksim"))
        .arg("list")
        .stdout(full)
        .stderr(Stdio::piped())
        .output()
        .expect("run ksim");
    assert_eq!(list.status.code(), Some(3), "stdout on a full disk: {:?}", list);
    let stderr = String::from_utf8_lossy(&list.stderr);
    assert!(
        stderr.starts_with("ksim: failed: cannot write stdout") && stderr.lines().count() == 1,
        "{stderr}"
    );
    // A closed stdout (status 141) is tested in netlink.rs, where the reply waits for stdin.
}

#[test]
fn help_lists_every_exit_status() {
    let run = ksim(&scratch("help-status"), &["--help"]);
    assert_eq!(run.status, 0);
    for status in ["0 ", "1 ", "2 ", "3 ", "70 ", "130 ", "141 "] {
        assert!(
            run.stdout.lines().any(|l| l.trim_start().starts_with(status)),
            "status {status}: {}",
            run.stdout
        );
    }
}

#[test]
fn trace_of_cve_2011_2484_is_a_story_in_100_columns_with_the_root_violation_first() {
    let dir = scratch("trace-story");
    let run = ksim(&dir, &["trace", "cve-2011-2484"]);
    assert_eq!(run.status, 0, "{}", run.stderr);
    for line in run.stdout.lines() {
        assert!(line.chars().count() <= 100, "{} columns: {line}", line.chars().count());
    }
    assert!(!run.stdout.contains('~'), "no event is cut short:\n{}", run.stdout);
    for checker in ["ksim:ledger", "ksim-op", "ksim-check"] {
        assert!(!run.stdout.contains(checker), "{checker} is not the kernel's:\n{}", run.stdout);
    }
    let root = run.stdout.lines().find(|l| l.trim_start().starts_with("root:")).expect("a root line");
    assert!(root.contains("duplicate-listener"), "the duplicate listener is the root: {root}");
    let side = run.stdout.find("then: seq-order").expect("the seq-order side effect is listed");
    assert!(run.stdout.find("root:").expect("root") < side, "root first, side effects after");
    assert!(run.stdout.contains("== 2. a task exits on cpu 0"), "steps are headings:\n{}", run.stdout);
}

#[test]
fn shards_partition_the_seeds_and_rerun_identically() {
    let dir = scratch("shards");
    let whole = ksim(&dir, &["fuzz", "demo", "--cases", "120", "--ops", "30", "--out", "whole"]);
    assert_eq!(whole.status, 0, "{}", whole.stderr);
    for shard in ["0/2", "1/2"] {
        let run = ksim(
            &dir,
            &["fuzz", "demo", "--cases", "60", "--ops", "30", "--shard", shard, "--out", "shards"],
        );
        assert_eq!(run.status, 0, "{}", run.stderr);
    }
    let again =
        ksim(&dir, &["fuzz", "demo", "--cases", "60", "--ops", "30", "--shard", "1/2", "--out", "again"]);
    assert_eq!(again.status, 0);
    let ops = |path: &str| json(&dir.join(path))["subsystems"][0]["ops"].as_u64().expect("ops");
    assert_eq!(
        ops("shards/report-1-of-2.json"),
        ops("again/report-1-of-2.json"),
        "a shard reruns identically"
    );
    assert_eq!(
        ops("shards/report-0-of-2.json") + ops("shards/report-1-of-2.json"),
        ops("whole/report.json"),
        "two half shards run exactly the whole campaign's seeds"
    );

    let merged = ksim(
        &dir,
        &["merge", "shards/report-0-of-2.json", "shards/report-1-of-2.json", "--out", "merged.json"],
    );
    assert_eq!(merged.status, 0, "{}", merged.stderr);
    assert!(merged.stdout.contains("shards 0,1 of 2"), "{}", merged.stdout);
    let merged = json(&dir.join("merged.json"));
    assert_eq!(merged["subsystems"][0]["cases"], 120);
    assert_eq!(merged["subsystems"][0]["ops"].as_u64(), Some(ops("whole/report.json")));

    let partial = ksim(&dir, &["merge", "shards/report-1-of-2.json"]);
    assert!(partial.stdout.contains("missing: 0"), "{}", partial.stdout);
    ksim(&dir, &["merge", "shards/report-1-of-2.json", "again/report-1-of-2.json"])
        .assert_one_line_error(2, "appears twice");
    ksim(&dir, &["merge", "shards/report-0-of-2.json", "whole/report.json"])
        .assert_one_line_error(2, "shard count");
    std::fs::write(dir.join("junk.json"), "[1,2]").expect("write");
    ksim(&dir, &["merge", "junk.json"]).assert_one_line_error(2, "not a ksim fuzz report");
}

#[test]
fn merge_of_shards_with_a_violation_exits_one() {
    let dir = scratch("merge-found");
    for shard in ["0/2", "1/2"] {
        let run = ksim(
            &dir,
            &[
                "fuzz",
                "demo",
                "--fix-off",
                "shrink-skips-used",
                "--cases",
                "200",
                "--shard",
                shard,
                "--jobs",
                "1",
            ],
        );
        assert_eq!(run.status, 1, "{}", run.stdout);
    }
    let merged = ksim(&dir, &["merge", "ksim-out/report-0-of-2.json", "ksim-out/report-1-of-2.json"]);
    assert_eq!(merged.status, 1, "{}", merged.stdout);
    assert_eq!(merged.stdout.matches("VIOLATION demo").count(), 2, "{}", merged.stdout);
    // A report claiming a huge shard count: the merge names the first missing shards, not all.
    let mut report = json(&dir.join("ksim-out/report-0-of-2.json"));
    report["shard_count"] = serde_json::json!(1u64 << 40);
    std::fs::write(dir.join("huge.json"), report.to_string()).expect("write");
    let huge = ksim(&dir, &["merge", "huge.json"]);
    assert_eq!(huge.status, 1, "{}\n{}", huge.stdout, huge.stderr);
    let first = huge.stdout.lines().next().unwrap_or_default();
    let expected = format!(
        "(missing: 1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20 and {} more)",
        (1u64 << 40) - 21
    );
    assert!(first.ends_with(&expected), "{first}");
}

#[test]
fn jobs_run_the_same_seeds_as_one_job() {
    let dir = scratch("jobs");
    let mut ops = Vec::new();
    for jobs in ["1", "2", "3"] {
        let out = format!("jobs{jobs}");
        let run =
            ksim(&dir, &["fuzz", "demo", "--cases", "150", "--ops", "30", "--jobs", jobs, "--out", &out]);
        assert_eq!(run.status, 0, "{}", run.stderr);
        let report = json(&dir.join(out).join("report.json"));
        assert_eq!(report["subsystems"][0]["cases"], 150);
        ops.push(report["subsystems"][0]["ops"].as_u64().expect("ops"));
    }
    assert!(ops.windows(2).all(|w| w[0] == w[1]), "same seeds, same operations: {ops:?}");
}

#[test]
fn zoo_finds_every_demo_bug_and_the_fixes_stay_quiet() {
    let dir = scratch("zoo");
    let run = ksim(&dir, &["zoo", "demo", "--format", "json", "--runs", "2"]);
    assert_eq!(run.status, 0, "{}\n{}", run.stdout, run.stderr);
    let rows: serde_json::Value = serde_json::from_str(&run.stdout).expect("JSON");
    let rows = rows.as_array().expect("rows");
    assert_eq!(rows.len(), 2);
    for row in rows {
        assert_eq!(row["ok"], true, "{row}");
        assert_eq!(row["runs_found"], 2, "{row}");
        assert_eq!(row["fixed_quiet"], true, "{row}");
    }
    let markdown = ksim(&dir, &["zoo", "demo", "--runs", "1", "--cases", "100"]);
    assert_eq!(markdown.status, 0, "{}", markdown.stdout);
    assert!(markdown.stdout.starts_with("| subsystem | bug |"), "{}", markdown.stdout);
    assert!(markdown.stdout.contains("`lru-lock-order`"));
    // A zoo with no budget could only report every bug as not found.
    ksim(&dir, &["zoo", "demo", "--cases", "0"]).assert_one_line_error(2, "--cases must be at least 1");
    ksim(&dir, &["zoo", "demo", "--runs", "0"]).assert_one_line_error(2, "--runs must be at least 1");
}

#[test]
fn taskstats_netlink_refuses_a_missing_file_port_zero_and_a_missing_port() {
    let dir = scratch("netlink");
    ksim(&dir, &["taskstats", "netlink", "--port", "7", "missing.bin"])
        .assert_one_line_error(2, "cannot read");
    ksim_with_input(&dir, &["taskstats", "netlink", "--port", "0"], b"").assert_one_line_error(2, "port 0");
    ksim(&dir, &["taskstats", "netlink"]).assert_one_line_error(2, "--port");
}

#[cfg(unix)]
#[test]
fn ctrl_c_ends_a_campaign_with_the_partial_report_and_status_130() {
    use std::process::{Command, Stdio};
    let dir = scratch("ctrl-c");
    let child = Command::new(env!("CARGO_BIN_EXE_ksim"))
        .args(["fuzz", "demo", "--seconds", "60"])
        .current_dir(&dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run ksim");
    // Let it install its handler and run some cases, then interrupt it as a terminal would.
    std::thread::sleep(std::time::Duration::from_millis(1500));
    let sent = Command::new("kill").args(["-INT", &child.id().to_string()]).status().expect("kill");
    assert!(sent.success());
    let started = std::time::Instant::now();
    let output = child.wait_with_output().expect("wait");
    assert!(started.elapsed().as_secs() < 20, "ksim stopped promptly after Ctrl-C");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(130), "{stdout}");
    assert!(stdout.contains("interrupted"), "{stdout}");
    let report = json(&dir.join("ksim-out/report.json"));
    assert_eq!(report["subsystems"][0]["interrupted"], true);
    assert!(report["subsystems"][0]["cases"].as_u64().expect("cases") > 0, "the partial work is reported");
}

#[test]
fn a_time_budget_over_every_subsystem_runs_cases_and_stays_near_its_budget() {
    let dir = scratch("seconds");
    let started = std::time::Instant::now();
    let run = ksim(&dir, &["fuzz", "--seconds", "2", "--ops", "30"]);
    let elapsed = started.elapsed().as_secs_f64();
    assert_eq!(run.status, 0, "{}\n{}", run.stdout, run.stderr);
    let report = json(&dir.join("ksim-out/report.json"));
    assert_eq!(report["budget"], "seconds 2");
    let subsystems = report["subsystems"].as_array().expect("subsystems");
    assert!(subsystems.iter().any(|s| s["subsystem"] == "demo"), "every subsystem runs: {subsystems:?}");
    assert!(subsystems.iter().all(|s| s["cases"].as_u64().expect("cases") > 0));
    assert!(elapsed < 30.0, "a 2 s budget took {elapsed:.1} s");
}

/// Two shards of a small demo campaign in `dir` (`D0/report-0-of-2.json`, `D1/report-1-of-2.json`),
/// as JSON to edit before a merge.
fn two_shards(dir: &std::path::Path) -> (serde_json::Value, serde_json::Value) {
    for (shard, out) in [("0/2", "D0"), ("1/2", "D1")] {
        let run =
            ksim(dir, &["fuzz", "demo", "--cases", "20", "--jobs", "1", "--shard", shard, "--out", out]);
        assert_eq!(run.status, 0, "{}\n{}", run.stdout, run.stderr);
    }
    (json(&dir.join("D0/report-0-of-2.json")), json(&dir.join("D1/report-1-of-2.json")))
}

/// Writes `first` and `second` as a.json and b.json in `dir` and merges them.
fn merge_edited(dir: &std::path::Path, first: &serde_json::Value, second: &serde_json::Value) -> Run {
    std::fs::write(dir.join("a.json"), first.to_string()).expect("write");
    std::fs::write(dir.join("b.json"), second.to_string()).expect("write");
    ksim(dir, &["merge", "a.json", "b.json"])
}

#[test]
fn merge_refuses_shards_run_with_different_threads() {
    let dir = scratch("merge-threads");
    let (op_level, other) = two_shards(&dir);
    let mut threaded = other.clone();
    threaded["subsystems"][0]["threads"] = serde_json::json!(2);
    merge_edited(&dir, &op_level, &threaded).assert_one_line_error(2, "demo threads none (op-level) vs 2");
    let mut three = other;
    three["subsystems"][0]["threads"] = serde_json::json!(3);
    let mut two = op_level;
    two["subsystems"][0]["threads"] = serde_json::json!(2);
    merge_edited(&dir, &two, &three).assert_one_line_error(2, "demo threads 2 vs 3");
    // The same threads merge as before.
    three["subsystems"][0]["threads"] = serde_json::json!(2);
    assert_eq!(merge_edited(&dir, &two, &three).status, 0);
}

#[test]
fn merge_refuses_a_shard_outside_its_count_and_a_count_of_zero() {
    let dir = scratch("merge-bounds");
    let (first, second) = two_shards(&dir);
    let mut seventh = second.clone();
    seventh["shards"] = serde_json::json!([7]);
    merge_edited(&dir, &first, &seventh).assert_one_line_error(2, "b.json: shard 7 of 2");
    // The first report is held to it too, and so is a merge of one.
    merge_edited(&dir, &seventh, &first).assert_one_line_error(2, "a.json: shard 7 of 2");
    ksim(&dir, &["merge", "a.json"]).assert_one_line_error(2, "a.json: shard 7 of 2");
    let (mut none_first, mut none_second) = (first, second);
    none_first["shard_count"] = serde_json::json!(0);
    none_second["shard_count"] = serde_json::json!(0);
    merge_edited(&dir, &none_first, &none_second).assert_one_line_error(2, "a.json: shard count 0");
}

#[test]
fn merge_refuses_counts_that_overflow_instead_of_wrapping() {
    let dir = scratch("merge-overflow");
    let (first, second) = two_shards(&dir);
    for field in ["cases", "ops"] {
        let mut huge = second.clone();
        huge["subsystems"][0][field] = serde_json::json!(u64::MAX);
        merge_edited(&dir, &first, &huge)
            .assert_one_line_error(2, &format!("b.json: demo {field} overflows"));
    }
    let mark = first["subsystems"][0]["coverage"]
        .as_object()
        .and_then(|marks| marks.keys().next().cloned())
        .expect("the demo reaches a coverage mark in 10 cases");
    let mut huge = second;
    huge["subsystems"][0]["coverage"][&mark] = serde_json::json!(u64::MAX);
    merge_edited(&dir, &first, &huge).assert_one_line_error(2, &format!("coverage count {mark} overflows"));
}

#[test]
fn zoo_hunts_a_subsystem_named_twice_once() {
    let dir = scratch("zoo-twice");
    let run = ksim(&dir, &["zoo", "demo", "demo", "--format", "json", "--runs", "1", "--cases", "100"]);
    assert_eq!(run.status, 0, "{}\n{}", run.stdout, run.stderr);
    let rows: serde_json::Value = serde_json::from_str(&run.stdout).expect("JSON");
    let bugs: Vec<&str> = rows.as_array().expect("rows").iter().filter_map(|r| r["bug"].as_str()).collect();
    assert_eq!(bugs.len(), 2, "demo's two bugs, once each: {bugs:?}");
}

#[test]
fn help_says_exit_one_is_also_a_zoo_hunt_that_missed_its_bug() {
    let dir = scratch("zoo-missed");
    // One case cannot find the demo's use-after-shrink: the row is not as claimed.
    let zoo = ksim(&dir, &["zoo", "demo", "--cases", "1", "--runs", "1"]);
    assert_eq!(zoo.status, 1, "{}\n{}", zoo.stdout, zoo.stderr);
    let help = ksim(&dir, &["--help"]);
    let status_one: String = help
        .stdout
        .lines()
        .skip_while(|l| !l.trim_start().starts_with("1 "))
        .take_while(|l| !l.trim_start().starts_with("2 "))
        .collect();
    assert!(status_one.contains("a hunt missed its bug"), "{status_one}");
    assert!(!status_one.contains("zoo found a violation"), "{status_one}");
}

#[test]
fn list_and_zoo_take_versions_only_and_list_says_presets_are_for_fuzz() {
    let dir = scratch("kernel-presets");
    for command in ["list", "zoo"] {
        let help = ksim(&dir, &[command, "--help"]);
        assert!(help.stdout.contains("not a preset"), "{command} --help: {}", help.stdout);
    }
    ksim(&dir, &["list", "--kernel", "demo-2.0"]).assert_one_line_error(2, "not a kernel version");
    ksim(&dir, &["zoo", "demo", "--kernel", "demo-2.0"]).assert_one_line_error(2, "not a kernel version");
    let list = ksim(&dir, &["list"]);
    assert!(
        list.stdout.contains("demo (kernels 6.0 to 6.1; ksim fuzz --kernel VERSION or a preset)\n"),
        "{}",
        list.stdout
    );
}

#[test]
fn replay_names_a_violation_recorded_at_the_largest_index_without_wrapping() {
    let dir = scratch("replay-max-index");
    let mut artifact = json(&demo_failure_artifact(&dir));
    artifact["violation_at"] = serde_json::json!(u64::MAX);
    std::fs::write(dir.join("max.json"), artifact.to_string()).expect("write");
    ksim(&dir, &["replay", "max.json"])
        .assert_one_line_error(2, "recorded after operation 18446744073709551616 but it has");
}

#[test]
fn replay_refuses_an_out_that_is_the_artifact_itself_and_leaves_it_whole() {
    let dir = scratch("replay-out-self");
    let path = demo_failure_artifact(&dir);
    let before = std::fs::read(&path).expect("read");
    let file = path.to_str().expect("utf-8");
    ksim(&dir, &["replay", file, "--out", file]).assert_one_line_error(2, "is the artifact being replayed");
    // Another spelling of the same file is the same file.
    let name = path.file_name().and_then(|n| n.to_str()).expect("name");
    let roundabout = format!("ksim-out/../ksim-out/{name}");
    ksim(&dir, &["replay", file, "--trace", "chrome", "--out", &roundabout])
        .assert_one_line_error(2, "is the artifact being replayed");
    assert_eq!(std::fs::read(&path).expect("read"), before, "the artifact is untouched");
    let elsewhere = ksim(&dir, &["replay", file, "--out", "trace.txt"]);
    assert_eq!(elsewhere.status, 0, "{}", elsewhere.stderr);
}
