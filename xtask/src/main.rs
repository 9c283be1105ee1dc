//! `cargo xtask test`: the one command that runs every check ksim has, in order, and prints the
//! time each part took. `.ci/run` calls exactly this.
//!
//! Parts: format check, clippy (warnings denied), no unused dependency (cargo-machete), unit +
//! property + zoo + doc tests (the guide's commands among them), the guide (links and anchors
//! resolve, mdbook builds it), the loom suite (tests named `loom`) and the shuttle suite (tests
//! named `shuttle`), both from the test part's own build: sim-core's `threaded` feature chooses
//! loom's or shuttle's primitives at run time inside a loom model or a shuttle execution, so no
//! `--cfg loom` or `--cfg shuttle` rebuild is needed. `cargo xtask test --quick` skips loom and
//! shuttle. mdbook is installed with `cargo install --locked` when missing (a fresh CI machine has
//! only the Rust toolchain); cargo-machete is used when installed.

mod guide;

use std::path::Path;
use std::process::{Command, ExitCode};
use std::time::Instant;

/// What a part runs.
enum Action {
    /// `cargo ARGS` with RUSTFLAGS unset, so every part shares the one build.
    Cargo { args: &'static [&'static str] },
    /// cargo-machete, skipped when it is not installed.
    Machete,
    /// The guide's links, then `mdbook build`.
    Guide,
}

struct Part {
    name: &'static str,
    action: Action,
    /// Skipped by `--quick` (the loom and shuttle suites).
    slow: bool,
}

/// The cargo-machete release the dependency check runs.
const MACHETE_VERSION: &str = "0.9.2";

const fn cargo(name: &'static str, args: &'static [&'static str]) -> Part {
    Part { name, action: Action::Cargo { args }, slow: false }
}

const PARTS: &[Part] = &[
    cargo("fmt", &["fmt", "--all", "--", "--check"]),
    cargo("clippy", &["clippy", "--workspace", "--all-targets", "--locked", "--", "-D", "warnings"]),
    Part { name: "machete", action: Action::Machete, slow: false },
    // The loom and shuttle suites are built with the rest (the `threaded` feature's runtime
    // backend runs them, no `--cfg` rebuild) and run as their own parts, so their times show
    // apart.
    cargo("test", &["test", "--workspace", "--locked", "--", "--skip", "shuttle", "--skip", "loom"]),
    Part { name: "guide", action: Action::Guide, slow: false },
    Part {
        name: "loom",
        action: Action::Cargo {
            // Every test target (the runner's own unit tests too), as the test part skips them all.
            args: &["test", "--locked", "--workspace", "--tests", "--", "loom", "--test-threads=2"],
        },
        slow: true,
    },
    Part {
        name: "shuttle",
        action: Action::Cargo {
            args: &["test", "--locked", "--workspace", "--test", "main", "--", "shuttle", "--test-threads=2"],
        },
        slow: true,
    },
];

/// Runs cargo-machete over the workspace: no dependency in any Cargo.toml unused. When it is not
/// installed the part is skipped with a note, not installed: building it took 34 minutes on a
/// loaded 2-core machine, too much of CI's budget for a check a developer runs before a merge
/// (`cargo install cargo-machete --version 0.9.2 --locked`). It is run as `cargo-machete ROOT`:
/// invoked through a toolchain's own cargo (xtask's `CARGO`), it takes the word `machete` for a
/// path.
fn machete(root: &Path) -> Result<(), String> {
    let installed = Command::new("cargo-machete").arg("--version").output().is_ok_and(|o| o.status.success());
    if !installed {
        eprintln!(
            "==> xtask: machete skipped: cargo-machete is not installed \
             (cargo install cargo-machete --version {MACHETE_VERSION} --locked)"
        );
        return Ok(());
    }
    run(Command::new("cargo-machete").arg(root))
}

/// Runs a command to its end; an error line when it fails.
fn run(command: &mut Command) -> Result<(), String> {
    match command.status() {
        Ok(status) if status.success() => Ok(()),
        Ok(status) => Err(format!("{command:?} failed ({status})")),
        Err(error) => Err(format!("cannot run {command:?}: {error}")),
    }
}

/// Runs one part from the workspace root.
fn run_part(part: &Part, cargo: &str, root: &Path) -> Result<(), String> {
    match &part.action {
        Action::Cargo { args } => {
            run(Command::new(cargo).args(*args).current_dir(root).env_remove("RUSTFLAGS"))
        }
        Action::Machete => machete(root),
        Action::Guide => guide::check(root, cargo),
    }
}

fn usage() -> ExitCode {
    eprintln!(
        "usage: cargo xtask test [--quick] [PART...]   (parts: fmt clippy machete test guide loom shuttle)"
    );
    ExitCode::from(2)
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) != Some("test") {
        return usage();
    }
    let quick = args.iter().any(|a| a == "--quick");
    let chosen: Vec<&str> = args[1..].iter().filter(|a| !a.starts_with("--")).map(String::as_str).collect();
    if let Some(unknown) = chosen.iter().find(|name| !PARTS.iter().any(|p| p.name == **name)) {
        eprintln!("xtask: unknown part '{unknown}'");
        return usage();
    }
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_string());
    // xtask lives one directory below the workspace root.
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap_or(Path::new(".")).to_path_buf();
    let mut timings = Vec::new();
    let started = Instant::now();
    for part in PARTS {
        let wanted = if chosen.is_empty() { !(quick && part.slow) } else { chosen.contains(&part.name) };
        if !wanted {
            continue;
        }
        eprintln!("==> xtask: {}", part.name);
        let part_started = Instant::now();
        let result = run_part(part, &cargo, &root);
        let seconds = part_started.elapsed().as_secs_f64();
        timings.push((part.name, seconds));
        if let Err(error) = result {
            eprintln!("xtask: {} failed after {seconds:.0}s: {error}", part.name);
            return ExitCode::FAILURE;
        }
    }
    eprintln!("==> xtask: all parts passed");
    for (name, seconds) in &timings {
        eprintln!("    {name:<8} {seconds:>7.1}s");
    }
    eprintln!("    {:<8} {:>7.1}s", "total", started.elapsed().as_secs_f64());
    ExitCode::SUCCESS
}
