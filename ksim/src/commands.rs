//! `ksim replay`, `ksim trace`, `ksim list`, `ksim merge` and `ksim taskstats netlink`.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use serde::Serialize;
use sim_core::check::{Artifact, FixInfo, PresetInfo, ReplayReport, ScenarioInfo, ZooEntry};
use sim_core::fixes::KernelVersion;
use sim_core::trace::{
    render_chrome, render_text, violations_cause_first, wrap, Event, EventKind, TaskId, TEXT_WIDTH,
};

use crate::error::{print, CliError};
use crate::registry::{self, SubsystemEntry};
use crate::report::{self, FuzzReport};

/// How a trace is drawn.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum TraceFormat {
    /// A text story, 100 columns wide: each step a heading, a lane per kernel task under it.
    Text,
    /// Chrome trace-event JSON, for Perfetto or chrome://tracing.
    Chrome,
}

/// Task 0 is no task of the model's: the harness reports the reference model's and the invariant
/// checks' findings from it.
const HARNESS_LANE: &str = "ksim-check";

fn draw(events: &[Event], names: &BTreeMap<TaskId, String>, format: TraceFormat) -> String {
    let mut names = names.clone();
    names.entry(0).or_insert_with(|| HARNESS_LANE.to_string());
    let names = &names;
    match format {
        TraceFormat::Text => render_text(events, names, TEXT_WIDTH),
        TraceFormat::Chrome => {
            let mut text = serde_json::to_string_pretty(&render_chrome(events, names)).unwrap_or_default();
            text.push('\n');
            text
        }
    }
}

fn write_file(path: &Path, text: &str) -> Result<(), CliError> {
    std::fs::write(path, text).map_err(|e| CliError::Failed(format!("cannot write {}: {e}", path.display())))
}

/// What a command printed, and whether it succeeded (`false`: exit status 1).
#[derive(Debug)]
pub(crate) struct Outcome {
    pub(crate) ok: bool,
}

/// A threaded artifact's case: the set-up prefix, each thread's operations, and the schedule.
fn threaded_ops_lines(ops: &serde_json::Value) -> String {
    let Ok(ops) = serde_json::from_value::<sim_core::threaded::ThreadedOps<serde_json::Value>>(ops.clone())
    else {
        return "\noperations: (not readable)\n".to_string();
    };
    let mut text = String::new();
    let case = &ops.threaded;
    let _ = writeln!(text, "\nset-up prefix ({} operations, run alone):", case.prefix.len());
    for (index, op) in case.prefix.iter().enumerate() {
        let _ = writeln!(text, "  {:>3}. {op}", index + 1);
    }
    for (thread, list) in case.threads.iter().enumerate() {
        let _ = writeln!(text, "thread-{thread} ({} operations):", list.len());
        for (index, op) in list.iter().enumerate() {
            let _ = writeln!(text, "  {:>3}. {op}", index + 1);
        }
    }
    if let sim_core::threaded::SchedulerChoice::Replay { schedule } = &case.scheduler {
        let _ = writeln!(text, "schedule: {schedule} ({} preemptions)", ops.preemptions);
    }
    text
}

/// How many operations an artifact's case has: a plain case's list, or a threaded case's set-up
/// prefix and every thread's operations (None: the operations cannot be read).
fn artifact_ops_count(artifact: &Artifact) -> Option<usize> {
    if sim_core::threaded::is_threaded(artifact) {
        serde_json::from_value::<sim_core::threaded::ThreadedOps<serde_json::Value>>(artifact.ops.clone())
            .ok()
            .map(|ops| ops.threaded.ops_count())
    } else {
        artifact.ops.as_array().map(Vec::len)
    }
}

/// An artifact whose violation is recorded past its operations is not one ksim wrote: a run
/// records a violation after one of its operations, or after the last at teardown (index
/// `count`), never later. Such a file is bad input (exit 2), not a failed reproduction.
fn check_violation_index(file: &Path, artifact: &Artifact, count: usize) -> Result<(), CliError> {
    if artifact.violation_at > count {
        return Err(CliError::Usage(format!(
            "{} is not a consistent ksim artifact: its violation is recorded after operation {} but it has {count} \
             operation{}",
            file.display(),
            // Printed one-based; as u128, so that an index of usize::MAX does not wrap to 0.
            artifact.violation_at as u128 + 1,
            if count == 1 { "" } else { "s" }
        )));
    }
    Ok(())
}

/// `ksim replay FILE`: runs the artifact again, says whether it reproduced exactly, and draws it.
pub(crate) fn replay(file: &Path, format: TraceFormat, out: Option<&Path>) -> Result<Outcome, CliError> {
    if let Some(out) = out {
        refuse_overwriting(file, out)?;
    }
    let artifact = Artifact::read(file)?;
    let entry = registry::find(&artifact.subsystem).map_err(|e| format!("{}: {e}", file.display()))?;
    // Replaying decodes the config and operations first: a part that does not fit says so.
    let replayed = (entry.replay)(&artifact).map_err(|e| format!("{}: {e}", file.display()))?;
    let count = artifact_ops_count(&artifact);
    if let Some(count) = count {
        check_violation_index(file, &artifact, count)?;
    }
    let ops: Vec<serde_json::Value> = artifact.ops.as_array().cloned().unwrap_or_default();
    let mut summary =
        replay_header(&artifact, &replayed, count.unwrap_or(artifact.violation_at.saturating_add(1)));
    let shown = replayed.case.violation.as_ref().map_or(&artifact.violation, |(_, found)| found);
    let _ = writeln!(summary, "\nviolation: {}: {}", shown.kind, shown.message.trim_end());
    let names = &replayed.case.task_names;
    if violations_cause_first(&replayed.case.trace_tail, names).len() > 1 {
        summary.push_str(&violation_lines(&replayed.case.trace_tail, names));
    }
    if sim_core::threaded::is_threaded(&artifact) {
        summary.push_str(&threaded_ops_lines(&artifact.ops));
    } else {
        let _ = writeln!(summary, "\noperations:");
        for (index, op) in ops.iter().enumerate() {
            let marker = if index == artifact.violation_at { "  <- violation" } else { "" };
            let _ = writeln!(summary, "  {:>3}. {op}{marker}", index + 1);
        }
    }
    for report in &replayed.case.lockdep {
        let text = report.to_string();
        if text != shown.message {
            let _ = writeln!(summary, "\nlockdep also reported:\n{}", text.trim_end());
        }
    }
    let trace = draw(&replayed.case.trace_tail, &replayed.case.task_names, format);
    emit(&summary, "\ntrace:\n", &trace, format, out)?;
    Ok(Outcome { ok: replayed.exact })
}

/// `--out` naming the artifact itself would replace the finding with its trace: refused before
/// anything runs. An `out` that does not exist yet cannot be the (existing) artifact; one that
/// does is compared by canonical path, so `./X.json` and `dir/../X.json` are caught too.
fn refuse_overwriting(file: &Path, out: &Path) -> Result<(), CliError> {
    let same = match (file.canonicalize(), out.canonicalize()) {
        (Ok(file), Ok(out)) => file == out,
        _ => false,
    };
    if same {
        return Err(CliError::Usage(format!(
            "--out {} is the artifact being replayed; name another file for the trace",
            out.display()
        )));
    }
    Ok(())
}

/// Where a violation at operation index `at` of `count` was seen: after that operation, or at
/// the teardown that follows the last one (`at == count`).
fn seen_after(at: usize, count: usize) -> String {
    if count > 0 && at == count {
        format!("at teardown, after operation {count}")
    } else {
        format!("after operation {}", at + 1)
    }
}

/// The replay's first lines: the artifact, its config, the violation recorded and the one
/// replayed, and whether the trace hash came back the same. `count`: the case's operations.
fn replay_header(artifact: &Artifact, replayed: &ReplayReport, count: usize) -> String {
    let mut summary = String::new();
    let _ = writeln!(
        summary,
        "artifact: {} seed {}, {} operations (shrunk from {})",
        artifact.subsystem, artifact.seed, count, artifact.ops_unshrunk
    );
    let _ = writeln!(summary, "config:   {}", artifact.config);
    let _ = writeln!(
        summary,
        "recorded: {} {}",
        artifact.violation.kind,
        seen_after(artifact.violation_at, count)
    );
    match &replayed.case.violation {
        Some((at, found)) => {
            let _ = writeln!(summary, "replayed: {} {}", found.kind, seen_after(*at, count));
        }
        None => {
            let _ = writeln!(summary, "replayed: no violation");
        }
    }
    if replayed.exact {
        let _ = writeln!(summary, "reproduced exactly (trace hash {:#018x})", artifact.trace_hash);
    } else if replayed.case.trace_hash == artifact.trace_hash {
        let _ = writeln!(
            summary,
            "NOT reproduced exactly: the trace hash is as recorded ({:#018x}) but the violation differs",
            artifact.trace_hash
        );
    } else {
        let _ = writeln!(
            summary,
            "NOT reproduced exactly: recorded trace hash {:#018x}, replayed {:#018x}",
            artifact.trace_hash, replayed.case.trace_hash
        );
    }
    summary
}

/// Prints `summary` then `trace` as `format` asks: to `out` when given (the summary on stdout),
/// the summary then `text_heading` and the trace for text, the summary on stderr and pure JSON on
/// stdout for Chrome.
fn emit(
    summary: &str,
    text_heading: &str,
    trace: &str,
    format: TraceFormat,
    out: Option<&Path>,
) -> Result<(), CliError> {
    match (format, out) {
        (_, Some(path)) => {
            write_file(path, trace)?;
            print(&format!("{summary}\ntrace written to {}\n", path.display()))?;
        }
        (TraceFormat::Text, None) => print(&format!("{summary}{text_heading}{trace}"))?,
        (TraceFormat::Chrome, None) => {
            eprint!("{summary}");
            print(trace)?;
        }
    }
    Ok(())
}

/// Finds scenario `name` (`SUBSYSTEM:NAME` or a name only one subsystem has).
fn find_scenario(name: &str) -> Result<(SubsystemEntry, String), String> {
    let (wanted_subsystem, wanted) = match name.split_once(':') {
        Some((subsystem, scenario)) => (Some(subsystem), scenario),
        None => (None, name),
    };
    let mut matches = Vec::new();
    let mut all = Vec::new();
    for entry in registry::registry() {
        if wanted_subsystem.is_some_and(|s| s != entry.name) {
            continue;
        }
        for scenario in (entry.scenarios)() {
            all.push(format!("{}:{}", entry.name, scenario.name));
            if scenario.name == wanted {
                matches.push((entry, scenario.description.to_string()));
            }
        }
    }
    if let Some(subsystem) = wanted_subsystem {
        registry::find(subsystem)?;
    }
    match matches.len() {
        1 => Ok(matches.remove(0)),
        0 => Err(format!("no scenario {name:?}; scenarios: {}", all.join(", "))),
        _ => {
            Err(format!("scenario {name:?} is ambiguous; name it as SUBSYSTEM:SCENARIO ({})", all.join(", ")))
        }
    }
}

/// `text` wrapped to the trace's width, every line indented by `indent`, the later ones by
/// `hang` more.
fn paragraph(text: &str, indent: &str, hang: &str) -> String {
    let mut out = String::new();
    for (index, line) in wrap(text, TEXT_WIDTH - indent.len() - hang.len()).iter().enumerate() {
        let _ = writeln!(out, "{indent}{}{line}", if index == 0 { "" } else { hang });
    }
    out
}

/// The violations in `events`, cause first (the first line is the root; the rest are its side
/// effects), one line each with the event it was recorded at.
fn violation_lines(events: &[Event], names: &BTreeMap<TaskId, String>) -> String {
    let ordered = violations_cause_first(events, names);
    if ordered.is_empty() {
        return "violations: none\n".to_string();
    }
    let mut out = String::from("violations, cause first:\n");
    for (index, event) in ordered.iter().enumerate() {
        if let EventKind::Violation { kind, message } = &event.kind {
            let role = if index == 0 { "root" } else { "then" };
            let line = format!("{role}: {kind}: {} (event {})", message.trim_end(), event.seq);
            out.push_str(&paragraph(&line, "  ", "      "));
        }
    }
    out
}

/// Lockdep's findings, which it collects beside the trace rather than in it (the trace's
/// violation lines above cannot show them), each report whole and indented.
fn lockdep_lines(sim: &sim_core::Sim) -> String {
    let reports = sim.lockdep().reports();
    if reports.is_empty() {
        return String::new();
    }
    let mut out = String::from("lockdep reported, in the order found:\n");
    for report in reports {
        let _ = writeln!(out, "  lockdep:{}:", report.kind());
        for line in report.to_string().lines() {
            let _ = writeln!(out, "      {line}");
        }
    }
    out
}

/// `ksim trace SCENARIO`: runs a teaching scenario and draws its whole trace.
pub(crate) fn trace(name: &str, format: TraceFormat, out: Option<&Path>) -> Result<Outcome, CliError> {
    let (entry, description) = find_scenario(name)?;
    let scenario = name.rsplit(':').next().unwrap_or(name);
    let sim = (entry.run_scenario)(scenario).ok_or_else(|| {
        CliError::Failed(format!("{} lists scenario {scenario:?} but cannot run it", entry.name))
    })?;
    let events = sim.trace().events();
    let trace = draw(&events, &sim.trace().task_names(), format);
    let mut summary = paragraph(&format!("scenario {}:{scenario}: {description}", entry.name), "", "    ");
    summary.push_str(&violation_lines(&events, &sim.trace().task_names()));
    summary.push_str(&lockdep_lines(&sim));
    match (format, out) {
        (_, Some(path)) => {
            write_file(path, &trace)?;
            print(&format!("{summary}trace written to {}\n", path.display()))?;
        }
        (TraceFormat::Text, None) => print(&format!("{summary}\n{trace}"))?,
        (TraceFormat::Chrome, None) => {
            eprint!("{summary}");
            print(&trace)?;
        }
    }
    Ok(Outcome { ok: true })
}

/// `ksim list`: subsystems with their presets, fixes, scenarios and zoo entries.
/// How `ksim list` prints.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum ListFormat {
    /// Indented text for a person.
    Text,
    /// One JSON array, an object per subsystem.
    Json,
}

/// One subsystem as `ksim list --format json` prints it.
#[derive(Debug, Serialize)]
struct SubsystemListing {
    name: &'static str,
    /// The oldest and newest kernel versions modelled.
    oldest: KernelVersion,
    newest: KernelVersion,
    /// With `--kernel`: the version asked for and the fixes it has on.
    #[serde(skip_serializing_if = "Option::is_none")]
    kernel: Option<KernelListing>,
    /// What runs without `--kernel`, as `--kernel` spells it (a preset, maybe `+fix`es).
    #[serde(skip_serializing_if = "Option::is_none")]
    default_kernel: Option<String>,
    presets: Vec<PresetInfo>,
    fixes: Vec<FixInfo>,
    scenarios: Vec<ScenarioInfo>,
    zoo: Vec<ZooEntry>,
}

#[derive(Debug, Serialize)]
struct KernelListing {
    version: KernelVersion,
    fixes_on: Vec<String>,
}

fn listing(entry: &SubsystemEntry, kernel: Option<KernelVersion>) -> SubsystemListing {
    let (oldest, newest) = (entry.kernel_range)();
    let fixes = (entry.fixes)();
    let kernel = kernel.map(|version| KernelListing {
        version,
        fixes_on: fixes.iter().filter(|fix| fix.landed_in <= version).map(|fix| fix.name.clone()).collect(),
    });
    SubsystemListing {
        name: entry.name,
        oldest,
        newest,
        kernel,
        default_kernel: registry::default_kernel(entry),
        presets: (entry.presets)(),
        fixes,
        scenarios: (entry.scenarios)(),
        zoo: (entry.zoo)(),
    }
}

/// `ksim list`: every subsystem's kernel range, presets, fixes, scenarios and zoo entries; with
/// `kernel`, only the subsystems that model it, each with the fixes it has.
pub(crate) fn list(format: ListFormat, kernel: Option<&str>) -> Result<String, String> {
    let (entries, version) = match kernel {
        // A version, not a preset (`registry::modelling` takes both).
        Some(kernel) => {
            let version = kernel.parse::<KernelVersion>()?;
            (registry::modelling(kernel)?, Some(version))
        }
        None => (registry::registry(), None),
    };
    let listings: Vec<SubsystemListing> = entries.iter().map(|entry| listing(entry, version)).collect();
    match format {
        ListFormat::Json => serde_json::to_string_pretty(&listings)
            .map(|json| json + "\n")
            .map_err(|e| format!("cannot write the listing as JSON: {e}")),
        ListFormat::Text => Ok(listings.iter().map(list_text).collect()),
    }
}

fn list_text(listing: &SubsystemListing) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{} (kernels {} to {}; ksim fuzz --kernel VERSION or a preset)",
        listing.name, listing.oldest, listing.newest
    );
    if let Some(kernel) = &listing.kernel {
        let on = if kernel.fixes_on.is_empty() { "none".to_string() } else { kernel.fixes_on.join(", ") };
        let _ = writeln!(out, "  kernel {} has: {on}", kernel.version);
    }
    let _ = writeln!(out, "  presets (oldest first):");
    for preset in &listing.presets {
        let fixes = if preset.fixes.is_empty() { "none".to_string() } else { preset.fixes.join(", ") };
        let _ = writeln!(out, "    {:<20} {} ({})", preset.name, preset.description, preset.version);
        let _ = writeln!(out, "    {:<20} fixes on: {fixes}", "");
    }
    if let Some(kernel) = &listing.default_kernel {
        let _ = writeln!(out, "  default (no --kernel): {kernel}");
    }
    let _ = writeln!(out, "  fixes (--fix-off NAME):");
    for fix in &listing.fixes {
        let cve = fix.cve.as_ref().map(|c| format!(" [{c}]")).unwrap_or_default();
        let _ = writeln!(out, "    {:<24} {}{cve}", fix.name, fix.title);
        let _ = writeln!(out, "    {:<24} commit {}, landed in {}", "", fix.commit, fix.landed_in);
        let _ = writeln!(out, "    {:<24} without it: {}", "", fix.symptom);
    }
    let _ = writeln!(out, "  scenarios (ksim trace NAME):");
    for scenario in &listing.scenarios {
        let _ = writeln!(out, "    {:<24} {}", scenario.name, scenario.description);
    }
    let _ = writeln!(out, "  zoo (ksim zoo):");
    for bug in &listing.zoo {
        let expected: Vec<String> = bug.expected.iter().map(ToString::to_string).collect();
        let _ = writeln!(
            out,
            "    {:<24} {} (kernel {}, found by {} as {})",
            bug.fix,
            bug.name,
            bug.kernel,
            bug.checker,
            expected.join(" or ")
        );
    }
    out
}

/// How many missing shards a merge names before "and N more".
const MISSING_LISTED: usize = 20;

/// `" (missing: 1,3)"`, the first [`MISSING_LISTED`] and how many more, or nothing. A report's
/// shard count is whatever its file says, so the walk stops after the names it shows.
fn missing_shards(shards: &[u64], count: u64) -> String {
    let missing = count.saturating_sub(shards.len() as u64);
    if missing == 0 {
        return String::new();
    }
    let listed: Vec<String> =
        (0..count).filter(|s| !shards.contains(s)).take(MISSING_LISTED).map(|s| s.to_string()).collect();
    let more = missing.saturating_sub(listed.len() as u64);
    let more = if more == 0 { String::new() } else { format!(" and {more} more") };
    format!(" (missing: {}{more})", listed.join(","))
}

/// `ksim merge REPORT...`: combines shard reports; the merged table, and the merged JSON in `out`.
pub(crate) fn merge(files: &[PathBuf], out: Option<&Path>) -> Result<Outcome, CliError> {
    let mut reports = Vec::new();
    for file in files {
        reports.push((file.clone(), FuzzReport::read(file)?));
    }
    let merged = report::merge(&reports)?;
    print(&format!(
        "merged {} report(s): shards {} of {}{}\n",
        files.len(),
        merged.shards.iter().map(u64::to_string).collect::<Vec<_>>().join(","),
        merged.shard_count,
        missing_shards(&merged.shards, merged.shard_count)
    ))?;
    print(&merged.render())?;
    if let Some(path) = out {
        merged.write(path).map_err(CliError::Failed)?;
        print(&format!("merged report written to {}\n", path.display()))?;
    }
    Ok(Outcome { ok: merged.failures_count() == 0 })
}

/// `ksim taskstats netlink --port P [FILE]`: raw netlink request bytes in, raw reply bytes out.
///
/// The world is the taskstats model's default preset (the newest kernel) in a fresh `Sim` (seed
/// 0): init (pid 1, root, CAP_NET_ADMIN) forks one process (pid 2), whose socket is bound to port
/// `port` as `bind(2)` with an explicit `nl_pid` would. The input is split into netlink messages
/// by `nlmsg_len`, as netlink_rcv_skb() walks them, and each is sent as its own `sendmsg(2)`
/// followed by `recvmsg(2)` until the port is empty, as a client reading its replies does: every
/// reply, ack, error and event is written out, in order, and none waits in a queue that could
/// overrun. Should the port's queue overrun all the same, the reader gets what the kernel gives
/// it, ENOBUFS from recvmsg(2): the command says so on stderr and fails (exit 3) after writing
/// everything it did receive. Trailing bytes too short to be a message, or a message whose
/// `nlmsg_len` overruns the input, end the walk, as the kernel drops them. The family id is the
/// model's `TASKSTATS_FAMILY_ID` (0x11), which CTRL_CMD_GETFAMILY also resolves by name.
pub(crate) fn taskstats_netlink(
    port: u32,
    input: &mut dyn Read,
    output: &mut dyn Write,
) -> Result<(), CliError> {
    use sim_core::{Sim, SimConfig};
    use taskstats_sim::{sender_cx, task_cx, ForkKind, Params, Taskstats};
    if port == 0 {
        return Err(CliError::Usage("port 0 is the kernel's; name a user port id (1 or more)".to_string()));
    }
    let mut bytes = Vec::new();
    input.read_to_end(&mut bytes).map_err(|e| format!("cannot read the request bytes: {e}"))?;
    let fixes = taskstats_sim::Fixes::parse(None, &[])?;
    let sim = Sim::new(SimConfig::new(0));
    let model = Taskstats::new(&sim, fixes, Params::default());
    let client = model
        .fork(&task_cx(&sim, &model, 1, "fork"), ForkKind::Process)
        .map_err(|e| CliError::Failed(format!("cannot fork a client: {e:?}")))?;
    model
        .bind_port(&task_cx(&sim, &model, client, "bind"), port)
        .map_err(|e| CliError::Failed(format!("cannot bind port {port}: {e:?}")))?;
    let mut overruns = 0usize;
    for message in netlink_messages(&bytes) {
        let sender = sender_cx(&sim, &model, port)
            .ok_or_else(|| CliError::Failed(format!("port {port} has no live sender")))?;
        let mut received = model.netlink_request(&sender, port, message);
        // recvmsg(2) until the queue is empty: an ENOBUFS first, then what is left.
        loop {
            match model.recvmsg(&sender, port) {
                Ok(rest) if rest.is_empty() => break,
                Ok(rest) => received.extend(rest),
                Err(sim_core::Errno::ENOBUFS) => overruns += 1,
                Err(_) => break,
            }
        }
        for reply in received {
            output.write_all(&reply).map_err(crate::error::stdout_error)?;
        }
    }
    if overruns > 0 {
        return Err(CliError::Failed(format!(
            "recvmsg on port {port}: ENOBUFS ({overruns} times): its receive queue overran and messages were dropped"
        )));
    }
    Ok(())
}

/// The messages of a `sendmsg(2)` buffer as netlink_rcv_skb() walks it: while a header fits and
/// its `nlmsg_len` is at least a header and within the buffer, one message, then the next at
/// `NLMSG_ALIGN(nlmsg_len)`.
fn netlink_messages(bytes: &[u8]) -> Vec<&[u8]> {
    const NLMSG_HDRLEN: usize = 16;
    let mut out = Vec::new();
    let mut at = 0usize;
    while bytes.len() - at >= NLMSG_HDRLEN {
        let len = u32::from_le_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]]) as usize;
        if len < NLMSG_HDRLEN || len > bytes.len() - at {
            break;
        }
        out.push(&bytes[at..at + len]);
        at += ((len + 3) & !3).min(bytes.len() - at);
    }
    out
}
