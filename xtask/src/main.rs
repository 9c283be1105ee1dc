//! `cargo xtask test`: the one command that runs every check ksim has, in order, and prints the
//! time each part took. `.ci/run` calls exactly this.
//!
//! Parts: format check, clippy (warnings denied), unit + property + zoo + doc tests, the loom
//! suite (`--cfg loom`, release, its own target directory), the shuttle suite (`--cfg shuttle`,
//! release, its own target directory). `cargo xtask test --quick` skips loom and shuttle.

use std::process::{Command, ExitCode};
use std::time::Instant;

struct Part {
    name: &'static str,
    args: &'static [&'static str],
    rustflags: Option<&'static str>,
}

const PARTS: &[Part] = &[
    Part { name: "fmt", args: &["fmt", "--all", "--", "--check"], rustflags: None },
    Part {
        name: "clippy",
        args: &["clippy", "--workspace", "--all-targets", "--locked", "--", "-D", "warnings"],
        rustflags: None,
    },
    Part { name: "test", args: &["test", "--workspace", "--locked"], rustflags: None },
    Part {
        name: "loom",
        args: &[
            "test",
            "--locked",
            "--release",
            "-p",
            "ksim-tests",
            "--target-dir",
            "target/loom",
            "--",
            "--test-threads=2",
        ],
        rustflags: Some("--cfg loom"),
    },
    Part {
        name: "shuttle",
        args: &[
            "test",
            "--locked",
            "--release",
            "-p",
            "ksim-tests",
            "--target-dir",
            "target/shuttle",
            "--",
            "--test-threads=2",
        ],
        rustflags: Some("--cfg shuttle"),
    },
];

fn usage() -> ExitCode {
    eprintln!("usage: cargo xtask test [--quick] [PART...]   (parts: fmt clippy test loom shuttle)");
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
    let mut timings = Vec::new();
    let started = Instant::now();
    for part in PARTS {
        let wanted = if chosen.is_empty() {
            !(quick && part.rustflags.is_some())
        } else {
            chosen.contains(&part.name)
        };
        if !wanted {
            continue;
        }
        eprintln!("==> xtask: {} (cargo {})", part.name, part.args.join(" "));
        let part_started = Instant::now();
        let mut command = Command::new(&cargo);
        command.args(part.args);
        match part.rustflags {
            Some(flags) => command.env("RUSTFLAGS", flags),
            None => command.env_remove("RUSTFLAGS"),
        };
        let status = command.status();
        let seconds = part_started.elapsed().as_secs_f64();
        timings.push((part.name, seconds));
        match status {
            Ok(status) if status.success() => {}
            Ok(status) => {
                eprintln!("xtask: {} failed ({status}) after {seconds:.0}s", part.name);
                return ExitCode::FAILURE;
            }
            Err(error) => {
                eprintln!("xtask: cannot run cargo: {error}");
                return ExitCode::FAILURE;
            }
        }
    }
    eprintln!("==> xtask: all parts passed");
    for (name, seconds) in &timings {
        eprintln!("    {name:<8} {seconds:>7.1}s");
    }
    eprintln!("    {:<8} {:>7.1}s", "total", started.elapsed().as_secs_f64());
    ExitCode::SUCCESS
}
