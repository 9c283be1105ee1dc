//! `cargo xtask test`: the one command that runs every check ksim has, in order, and prints the
//! time each part took. `.ci/run` calls exactly this. `cargo xtask pgo` builds the profile-guided
//! ksim campaigns run fastest on (`pgo.rs`).
//!
//! Parts: format check, clippy (warnings denied), no unused dependency (cargo-machete), unit +
//! property + zoo + doc tests (the guide's commands among them), the guide (links and anchors
//! resolve, mdbook builds it), the loom suite (tests named `loom`) and the shuttle suite (tests
//! named `shuttle`), both from the test part's own build: sim-core's `threaded` feature chooses
//! loom's or shuttle's primitives at run time inside a loom model or a shuttle execution, so no
//! `--cfg loom` or `--cfg shuttle` rebuild is needed. `cargo xtask test --quick` skips loom and
//! shuttle. mdbook is installed with `cargo install --locked` when missing (a fresh CI machine has
//! only the Rust toolchain), in the background while the build runs; cargo-machete is used when
//! installed.
//!
//! One build serves every part: the clippy part is `cargo clippy`'s own mechanism (clippy-driver
//! wrapping rustc for the workspace's crates, `CLIPPY_ARGS` its arguments) applied to the test
//! build instead of a `cargo check`, so clippy lints every crate as it is compiled and the test,
//! loom and shuttle parts find their binaries built. A checked crate's metadata is no use to a
//! build, so `cargo clippy` followed by `cargo test` compiled every dependency twice.

mod guide;
mod pgo;
mod plots;

use std::path::Path;
use std::process::{Command, ExitCode};
use std::time::Instant;

/// What a part runs.
enum Action {
    /// `cargo ARGS` for each ARGS in turn, with RUSTFLAGS unset and clippy-driver wrapping rustc
    /// for the workspace's crates ([`lint_env`]), so every part shares the one build.
    Cargo { runs: &'static [&'static [&'static str]] },
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

/// What `cargo clippy -- ARGS` would pass clippy-driver: the lints run with warnings denied.
const CLIPPY_ARGS: &[&str] = &["-D", "warnings"];

const fn cargo(name: &'static str, runs: &'static [&'static [&'static str]]) -> Part {
    Part { name, action: Action::Cargo { runs }, slow: false }
}

const PARTS: &[Part] = &[
    cargo("fmt", &[&["fmt", "--all", "--", "--check"]]),
    // Every target `cargo clippy --workspace --all-targets` checks, compiled under clippy-driver:
    // libraries, binaries, integration tests and benches in test mode (the test part's build,
    // plus the benches), then binaries and examples as built (xtask's own binary in its non-test
    // mode; the rest are already built).
    cargo(
        "clippy",
        &[
            &["test", "--workspace", "--locked", "--no-run", "--lib", "--bins", "--tests", "--benches"],
            &["build", "--workspace", "--locked", "--bins", "--examples"],
        ],
    ),
    Part { name: "machete", action: Action::Machete, slow: false },
    // The loom and shuttle suites are built with the rest (the `threaded` feature's runtime
    // backend runs them, no `--cfg` rebuild) and run as their own parts, so their times show
    // apart.
    cargo("test", &[&["test", "--workspace", "--locked", "--", "--skip", "shuttle", "--skip", "loom"]]),
    Part { name: "guide", action: Action::Guide, slow: false },
    Part {
        name: "loom",
        action: Action::Cargo {
            // Every test target (the runner's own unit tests too), as the test part skips them all.
            runs: &[&["test", "--locked", "--workspace", "--tests", "--", "loom", "--test-threads=2"]],
        },
        slow: true,
    },
    Part {
        name: "shuttle",
        action: Action::Cargo {
            runs: &[&[
                "test",
                "--locked",
                "--workspace",
                "--test",
                "main",
                "--",
                "shuttle",
                "--test-threads=2",
            ]],
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
pub(crate) fn run(command: &mut Command) -> Result<(), String> {
    match command.status() {
        Ok(status) if status.success() => Ok(()),
        Ok(status) => Err(format!("{command:?} failed ({status})")),
        Err(error) => Err(format!("cannot run {command:?}: {error}")),
    }
}

/// The environment `cargo clippy` gives cargo: clippy-driver as the workspace's rustc wrapper
/// (the one beside the cargo running xtask, so the same toolchain's) and its arguments, each
/// followed by the separator clippy-driver splits them on.
fn lint_env(cargo: &str) -> Result<[(&'static str, String); 2], String> {
    let beside = Path::new(cargo).with_file_name("clippy-driver");
    let driver = if beside.is_file() { beside.display().to_string() } else { "clippy-driver".to_string() };
    let found = Command::new(&driver).arg("--version").output().is_ok_and(|o| o.status.success());
    if !found {
        return Err(format!("cannot run {driver} (rustup component add clippy)"));
    }
    let args: String = CLIPPY_ARGS.iter().map(|arg| format!("{arg}__CLIPPY_HACKERY__")).collect();
    Ok([("RUSTC_WORKSPACE_WRAPPER", driver), ("CLIPPY_ARGS", args)])
}

/// Runs one part from the workspace root.
fn run_part(part: &Part, cargo: &str, root: &Path, mdbook: &mut guide::Mdbook) -> Result<(), String> {
    match &part.action {
        Action::Cargo { runs } => {
            let lint = lint_env(cargo)?;
            for args in *runs {
                run(Command::new(cargo)
                    .args(*args)
                    .current_dir(root)
                    .env_remove("RUSTFLAGS")
                    .envs(lint.clone()))?;
            }
            Ok(())
        }
        Action::Machete => machete(root),
        Action::Guide => guide::check(root, mdbook),
    }
}

/// The usage lines; exit status 0 when help was asked for, 2 after a usage error.
fn usage(asked: bool) -> ExitCode {
    eprintln!(
        "usage: cargo xtask test [--quick] [PART...]   (parts: fmt clippy machete test guide loom shuttle)\n       \
         cargo xtask pgo [-- KSIM FUZZ ARGS...]      (a profile-guided ksim at target/pgo/ksim, trained on\n       \
         {:44} ksim fuzz ARGS; default --cases 2000 --seed 1)\n       \
         cargo xtask plots [--no-run]                (the size-swept benches, short runs, drawn into\n       \
         {:44} {}/)",
        "",
        "",
        plots::PLOTS_DIR
    );
    ExitCode::from(if asked { 0 } else { 2 })
}

/// Whether an argument asks for help.
fn is_help(arg: &str) -> bool {
    matches!(arg, "--help" | "-h" | "help")
}

/// `cargo xtask pgo`'s arguments: none, or `--` and the training's `ksim fuzz` arguments. Anything
/// else is an error line (so `--help` or a typo never becomes a training campaign).
fn pgo_fuzz_args(args: &[String]) -> Result<&[String], String> {
    match args.split_first() {
        None => Ok(args),
        Some((first, rest)) if first == "--" => Ok(rest),
        Some((first, _)) => {
            Err(format!("xtask pgo: unexpected '{first}' (the training's ksim fuzz arguments go after --)"))
        }
    }
}

/// `cargo xtask test`'s options: `--quick`, or an error line for any other.
fn test_option(args: &[String]) -> Result<bool, String> {
    match args.iter().find(|a| a.starts_with('-') && *a != "--quick") {
        Some(unknown) => Err(format!("xtask test: unknown option '{unknown}'")),
        None => Ok(args.iter().any(|a| a == "--quick")),
    }
}

/// `cargo xtask plots [--no-run]`: the guide's cost-growth pictures, from a short run of the
/// size-swept benches or (`--no-run`) from the results criterion already keeps.
fn plots_main(args: &[String], cargo: &str, root: &Path) -> ExitCode {
    if args.iter().any(|a| is_help(a)) {
        return usage(true);
    }
    if let Some(unknown) = args.iter().find(|a| *a != "--no-run") {
        eprintln!("xtask plots: unexpected '{unknown}'");
        return usage(false);
    }
    match plots::plots(cargo, root, args.is_empty()) {
        Ok(written) => {
            for path in written {
                eprintln!("==> xtask plots: wrote {}", path.display());
            }
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("xtask plots: {error}");
            ExitCode::FAILURE
        }
    }
}

/// `cargo xtask pgo [-- ARGS]`: the profile-guided build, trained on `ksim fuzz ARGS`.
fn pgo_main(args: &[String], cargo: &str, root: &Path) -> ExitCode {
    if args.iter().take_while(|a| *a != "--").any(|a| is_help(a)) {
        return usage(true);
    }
    let fuzz_args = match pgo_fuzz_args(args) {
        Ok(fuzz_args) => fuzz_args,
        Err(error) => {
            eprintln!("{error}");
            return usage(false);
        }
    };
    let started = Instant::now();
    match pgo::build(cargo, root, fuzz_args) {
        Ok(binary) => {
            let seconds = started.elapsed().as_secs_f64();
            eprintln!(
                "==> xtask pgo: built {} in {seconds:.0}s; run it as `{} fuzz`",
                binary.display(),
                binary.display()
            );
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("xtask pgo: {error}");
            ExitCode::FAILURE
        }
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_string());
    // xtask lives one directory below the workspace root.
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap_or(Path::new(".")).to_path_buf();
    match args.first().map(String::as_str) {
        Some("test") if !args[1..].iter().any(|a| is_help(a)) => {}
        Some("pgo") => return pgo_main(&args[1..], &cargo, &root),
        Some("plots") => return plots_main(&args[1..], &cargo, &root),
        Some(first) => return usage(is_help(first) || first == "test"),
        None => return usage(false),
    }
    let quick = match test_option(&args[1..]) {
        Ok(quick) => quick,
        Err(error) => {
            eprintln!("{error}");
            return usage(false);
        }
    };
    let chosen: Vec<&str> = args[1..].iter().filter(|a| !a.starts_with('-')).map(String::as_str).collect();
    if let Some(unknown) = chosen.iter().find(|name| !PARTS.iter().any(|p| p.name == **name)) {
        eprintln!("xtask: unknown part '{unknown}'");
        return usage(false);
    }
    let wanted =
        |part: &Part| if chosen.is_empty() { !(quick && part.slow) } else { chosen.contains(&part.name) };
    let mut timings = Vec::new();
    let started = Instant::now();
    // mdbook's install, when it is missing, runs beside the parts before the guide's.
    let mut mdbook =
        guide::Mdbook::find_or_install(&cargo, &root, PARTS.iter().any(|p| p.name == "guide" && wanted(p)));
    for part in PARTS {
        if !wanted(part) {
            continue;
        }
        eprintln!("==> xtask: {}", part.name);
        let part_started = Instant::now();
        let result = run_part(part, &cargo, &root, &mut mdbook);
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

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(args: &[&str]) -> Vec<String> {
        args.iter().map(|a| a.to_string()).collect()
    }

    #[test]
    fn pgo_takes_fuzz_arguments_only_after_the_separator() {
        assert_eq!(pgo_fuzz_args(&[]), Ok(&[][..]));
        let given = strings(&["--", "taskstats", "--help"]);
        assert_eq!(pgo_fuzz_args(&given), Ok(&given[1..]));
        assert!(pgo_fuzz_args(&strings(&["taskstats"])).is_err());
        assert!(pgo_fuzz_args(&strings(&["--cases", "9"])).is_err());
    }

    #[test]
    fn test_takes_quick_and_refuses_other_options() {
        assert_eq!(test_option(&strings(&["loom"])), Ok(false));
        assert_eq!(test_option(&strings(&["--quick", "test"])), Ok(true));
        assert!(test_option(&strings(&["--quik"])).is_err());
        assert!(test_option(&strings(&["-q"])).is_err());
        assert!(is_help("--help") && is_help("-h") && is_help("help") && !is_help("--quick"));
    }
}
