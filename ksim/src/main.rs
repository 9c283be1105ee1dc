//! The ksim command-line tool: campaigns over the kernel models (`fuzz`, `merge`), exact replay of
//! a failure with its trace (`replay`), teaching scenarios (`trace`), the bug zoo (`zoo`), what
//! there is (`list`), and the taskstats netlink bridge.
//!
//! Exit status: see [`EXIT_STATUS_HELP`] (shown by `ksim --help`) and [`error`].

// `deny`, not `forbid`: the one `unsafe` is the global allocator's, allowed on `mod alloc` alone.
#![deny(unsafe_code)]

mod commands;
mod error;
mod fuzz;
mod play;
mod registry;
mod report;
mod zoo;

// A campaign allocates and frees a few objects per kernel operation (task structs, netlink
// buffers, trace records): mimalloc saves about a tenth of a taskstats campaign's instructions
// over glibc's malloc (callgrind, same cases).
#[global_allocator]
static GLOBAL: alloc::MiMalloc = alloc::MiMalloc;

/// mimalloc as the global allocator, through its plain calls where the alignment allows.
///
/// The `mimalloc` crate's allocator calls `mi_malloc_aligned` for every allocation, which tests the
/// alignment and the first free block's address before it takes the same small-block path that
/// `mi_malloc` takes directly. Every block mimalloc hands out is aligned to 8 bytes, and every block
/// of 16 bytes or more to 16 (`MI_MAX_ALIGN_SIZE`, its bins rounded to two words: `MI_ALIGN2W` in
/// page-queue.c), so a layout whose alignment is at most 16 and at most its size needs no aligned
/// call: the rule std's `System` allocator uses for `malloc` (`MIN_ALIGN`). Larger alignments
/// take mimalloc's aligned calls, as before.
#[allow(unsafe_code)]
mod alloc {
    use std::alloc::{GlobalAlloc, Layout};
    use std::ffi::c_void;

    use libmimalloc_sys as mi;

    /// `MI_MAX_ALIGN_SIZE` in mimalloc/types.h: what `mi_malloc` guarantees a block of that size.
    const MI_MAX_ALIGN_SIZE: usize = 16;

    /// The global allocator (see the module's comment).
    #[derive(Debug)]
    pub(crate) struct MiMalloc;

    /// True when a plain `mi_malloc(size)` is aligned enough for `align`.
    #[inline(always)]
    fn plain(align: usize, size: usize) -> bool {
        align <= MI_MAX_ALIGN_SIZE && align <= size
    }

    // SAFETY: every block comes from mimalloc and goes back to it (`mi_free` takes a block from any
    // of its allocation calls); the plain calls are used only where `plain` shows their
    // alignment suffices, and mimalloc returns null, never a smaller block, when out of memory.
    unsafe impl GlobalAlloc for MiMalloc {
        #[inline]
        unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
            // SAFETY: mimalloc's allocation calls take any size and a power-of-two alignment.
            unsafe {
                if plain(layout.align(), layout.size()) {
                    mi::mi_malloc(layout.size()).cast()
                } else {
                    mi::mi_malloc_aligned(layout.size(), layout.align()).cast()
                }
            }
        }

        #[inline]
        unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
            // SAFETY: as `alloc`.
            unsafe {
                if plain(layout.align(), layout.size()) {
                    mi::mi_zalloc(layout.size()).cast()
                } else {
                    mi::mi_zalloc_aligned(layout.size(), layout.align()).cast()
                }
            }
        }

        #[inline]
        unsafe fn dealloc(&self, ptr: *mut u8, _layout: Layout) {
            // SAFETY: `ptr` came from this allocator, so from mimalloc.
            unsafe { mi::mi_free(ptr.cast::<c_void>()) }
        }

        #[inline]
        unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
            // SAFETY: `ptr` came from mimalloc; `mi_realloc` allocates the new block as `mi_malloc`
            // does, so `plain` on the new size decides as it does for an allocation.
            unsafe {
                if plain(layout.align(), new_size) {
                    mi::mi_realloc(ptr.cast::<c_void>(), new_size).cast()
                } else {
                    mi::mi_realloc_aligned(ptr.cast::<c_void>(), new_size, layout.align()).cast()
                }
            }
        }
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        /// Every layout the plain calls may serve, and the aligned ones past them, comes back
        /// aligned, zeroed when asked, and keeps its bytes through a grow and a shrink.
        #[test]
        fn blocks_are_aligned_zeroed_and_kept_through_realloc() {
            for align in [1, 2, 4, 8, 16, 32, 64, 4096] {
                for size in [1, 3, 8, 12, 16, 24, 40, 48, 100, 1000, 70_000] {
                    let layout = Layout::from_size_align(size, align).unwrap();
                    // SAFETY: a non-zero size; each block is freed once, by this allocator.
                    unsafe {
                        let z = MiMalloc.alloc_zeroed(layout);
                        assert_eq!(z as usize % align, 0, "zalloc {size} {align}");
                        assert!((0..size).all(|i| *z.add(i) == 0), "zalloc {size} {align}");
                        MiMalloc.dealloc(z, layout);
                        let p = MiMalloc.alloc(layout);
                        assert_eq!(p as usize % align, 0, "alloc {size} {align}");
                        for i in 0..size {
                            *p.add(i) = i as u8;
                        }
                        let q = MiMalloc.realloc(p, layout, size * 3);
                        assert_eq!(q as usize % align, 0, "grow {size} {align}");
                        assert!((0..size).all(|i| *q.add(i) == i as u8), "grow {size} {align}");
                        let grown = Layout::from_size_align(size * 3, align).unwrap();
                        let r = MiMalloc.realloc(q, grown, size.div_ceil(2));
                        assert_eq!(r as usize % align, 0, "shrink {size} {align}");
                        let kept = size.div_ceil(2);
                        assert!((0..kept).all(|i| *r.add(i) == i as u8), "shrink {size} {align}");
                        MiMalloc.dealloc(r, Layout::from_size_align(kept, align).unwrap());
                    }
                }
            }
        }
    }
}

use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use clap::{Parser, Subcommand};

use crate::commands::{ListFormat, TraceFormat};
use crate::error::{print, CliError, EXIT_FOUND, EXIT_INTERNAL, EXIT_INTERRUPTED, EXIT_USAGE};
use crate::zoo::ZooFormat;

/// `--threads`' values: a threaded case runs 2 to 4 threads (one would interleave nothing).
const THREADS_RANGE: std::ops::RangeInclusive<i64> =
    sim_core::threaded::THREADS_MIN as i64..=sim_core::threaded::THREADS_MAX as i64;

/// The exit statuses, as `ksim --help` lists them (the README repeats this table).
const EXIT_STATUS_HELP: &str = "\
Exit status:
  0    all went well
  1    a bug was found (a campaign or merge found a violation), a zoo row is not as claimed
       (a hunt missed its bug, or a fix was not quiet), or a replay did not reproduce exactly
  2    bad input: an argument, a name, a missing or corrupt input file, an --out directory
       that cannot be made before the run starts (one line on stderr)
  3    a failure while running: an output file or stdout could not be written, a worker died
       (one line on stderr)
  70   an internal error: ksim itself panicked (a bug in ksim; please report it)
  130  Ctrl-C ended a campaign early (the report is partial)
  141  stdout was closed early (`ksim trace X | head`); nothing more is printed
";

/// ksim: Linux kernel subsystems as deterministic Rust models, and the checkers that find their
/// historical bugs.
#[derive(Debug, Parser)]
#[command(name = "ksim", version, about, max_term_width = 100, after_help = EXIT_STATUS_HELP)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Runs a campaign: random operation lists against each model and its reference, every
    /// failure shrunk and written as an artifact before it is reported.
    Fuzz {
        /// Subsystems to run (default: all).
        subsystems: Vec<String>,
        /// The kernel: a version (`3.4`, `2.6.19-rc3`: every fix landed by then) or a named preset
        /// (see `ksim list`); default: each subsystem's default preset. With no subsystem named,
        /// a version selects the subsystems that model it, a preset the subsystem it belongs to.
        #[arg(long, alias = "preset", value_name = "VERSION")]
        kernel: Option<String>,
        /// Switches a fix off (repeatable).
        #[arg(long = "fix-off", value_name = "NAME")]
        fix_off: Vec<String>,
        /// Wall-time budget for the whole campaign, split evenly over the subsystems
        /// (default: 60 when no budget is given).
        #[arg(long, value_name = "N", conflicts_with = "cases")]
        seconds: Option<u64>,
        /// Cases per subsystem.
        #[arg(long, value_name = "N")]
        cases: Option<u64>,
        /// First seed.
        #[arg(long, default_value_t = 0)]
        seed: u64,
        /// Runs shard I of N (0 <= I < N): case k uses seed SEED + k*N + I.
        #[arg(long, value_name = "I/N", value_parser = parse_shard, default_value = "0/1")]
        shard: (u64, u64),
        /// Worker threads over disjoint seeds (default: 2).
        #[arg(long, value_name = "J")]
        jobs: Option<u64>,
        /// Where artifacts and the JSON report are written.
        #[arg(long, value_name = "DIR", default_value = "ksim-out")]
        out: PathBuf,
        /// Longest operation list per case (1 to 100000).
        #[arg(long = "ops", value_name = "N", default_value_t = 200)]
        ops_max: usize,
        /// Runs threaded cases: N threads (2 to 4), each its own operations (at most 8, or
        /// --ops) after a set-up prefix, under shuttle's random and PCT schedulers, judged by
        /// linearizability against the reference model as well.
        #[arg(long, value_name = "N", value_parser = clap::value_parser!(u8).range(THREADS_RANGE))]
        threads: Option<u8>,
    },
    /// Replays an artifact: checks it reproduces exactly and draws the trace.
    Replay {
        /// The artifact file (`ksim fuzz` writes them to its --out directory).
        file: PathBuf,
        /// How to draw the trace.
        #[arg(long, value_enum, default_value_t = TraceFormat::Text)]
        trace: TraceFormat,
        /// Writes the trace to this file instead of stdout.
        #[arg(long, value_name = "F")]
        out: Option<PathBuf>,
    },
    /// Hunts every historical bug from fresh seeds with its fix off, and checks the fix keeps
    /// the same budget quiet.
    Zoo {
        /// Subsystems whose bugs to hunt (default: all).
        subsystems: Vec<String>,
        /// Output format.
        #[arg(long, value_enum, default_value_t = ZooFormat::Markdown)]
        format: ZooFormat,
        /// Cases per hunt (default: each bug's own budget).
        #[arg(long, value_name = "N")]
        cases: Option<u64>,
        /// Fresh seed ranges per bug (the times and case counts are their medians).
        #[arg(long, value_name = "R", default_value_t = 3)]
        runs: u64,
        /// Only the bugs kernel VERSION (a version such as 3.4, not a preset) still has (their
        /// fix landed after it); each is hunted in its zoo kernel with the fix off, as usual.
        #[arg(long, value_name = "VERSION")]
        kernel: Option<String>,
    },
    /// Lists subsystems, presets, fixes, scenarios and zoo entries.
    List {
        /// Output format.
        #[arg(long, value_enum, default_value_t = ListFormat::Text)]
        format: ListFormat,
        /// Shows which fixes kernel VERSION (a version such as 3.4, not a preset) has, per
        /// subsystem that models it.
        #[arg(long, value_name = "VERSION")]
        kernel: Option<String>,
    },
    /// Runs a named teaching scenario (SCENARIO or SUBSYSTEM:SCENARIO) and draws its trace.
    Trace {
        /// The scenario (see `ksim list`).
        scenario: String,
        /// How to draw the trace.
        #[arg(long, value_enum, default_value_t = TraceFormat::Text)]
        format: TraceFormat,
        /// Writes the trace to this file instead of stdout.
        #[arg(long, value_name = "F")]
        out: Option<PathBuf>,
    },
    /// Combines the JSON reports of a campaign's shards.
    Merge {
        /// The shards' report files.
        #[arg(required = true)]
        reports: Vec<PathBuf>,
        /// Writes the merged report here.
        #[arg(long, value_name = "F")]
        out: Option<PathBuf>,
    },
    /// Plays a level: you are the scheduler of a zoo bug's tasks (keyboard only; see `--list`).
    Play {
        /// The level (see `--list`).
        #[arg(required_unless_present_any = ["list", "check"])]
        level: Option<String>,
        /// Lists the levels, easiest first.
        #[arg(long, conflicts_with_all = ["level", "check"])]
        list: bool,
        /// Says whether a saved schedule wins its level (exit 1 when it does not).
        #[arg(long, value_name = "FILE", conflicts_with = "level")]
        check: Option<PathBuf>,
        /// Writes the level's stored winning schedule into --out instead of playing (a
        /// teacher's answer key).
        #[arg(long, requires = "level")]
        solve: bool,
        /// Where a won level's schedule is saved.
        #[arg(long, value_name = "DIR", default_value = "ksim-play")]
        out: PathBuf,
    },
    /// taskstats tools.
    Taskstats {
        #[command(subcommand)]
        command: TaskstatsCommand,
    },
}

#[derive(Debug, Subcommand)]
enum TaskstatsCommand {
    /// Feeds raw netlink request bytes (FILE or stdin) to the taskstats model as netlink port P
    /// and writes the raw bytes delivered to that port to stdout.
    Netlink {
        /// The netlink port id the requests come from.
        #[arg(long, value_name = "P")]
        port: u32,
        /// The request bytes (default: stdin).
        file: Option<PathBuf>,
    },
}

/// The most shards a campaign splits into: seeds are `SEED + k*N*J + ...` in u64, and a merge
/// names the missing shards, so N stays far from overflow and from an endless list.
const SHARDS_MAX: u64 = 1 << 16;

/// The most worker threads (`--jobs`): each is an OS thread; asking for more than the system
/// gives would abort the process instead of failing with a line.
const JOBS_MAX: u64 = 256;

fn parse_shard(text: &str) -> Result<(u64, u64), String> {
    let (index, count) = text.split_once('/').ok_or_else(|| format!("{text:?} is not I/N"))?;
    let index: u64 = index.trim().parse().map_err(|_| format!("{text:?} is not I/N"))?;
    let count: u64 = count.trim().parse().map_err(|_| format!("{text:?} is not I/N"))?;
    if count == 0 || index >= count {
        return Err(format!("{text:?}: need 0 <= I < N"));
    }
    if count > SHARDS_MAX {
        return Err(format!("{text:?}: N is at most {SHARDS_MAX}"));
    }
    Ok((index, count))
}

/// Exit status 0 when all went well, 1 when a bug was found (or a replay or a play missed).
fn status(ok: bool) -> ExitCode {
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(EXIT_FOUND)
    }
}

fn run(cli: Cli) -> Result<ExitCode, CliError> {
    match cli.command {
        Command::Fuzz {
            subsystems,
            kernel,
            fix_off,
            seconds,
            cases,
            seed,
            shard,
            jobs,
            out,
            ops_max,
            threads,
        } => {
            let args = fuzz::FuzzArgs {
                subsystems,
                kernel,
                fixes_off: fix_off,
                seconds,
                cases,
                seed,
                shard,
                jobs,
                out,
                ops_max,
                threads: threads.map(usize::from),
            };
            run_fuzz(&args)
        }
        Command::Replay { file, trace, out } => {
            if let Some((text, exact)) = play::replay(&file)? {
                print(&text)?;
                return Ok(status(exact));
            }
            Ok(status(commands::replay(&file, trace, out.as_deref())?.ok))
        }
        Command::Zoo { subsystems, format, cases, runs, kernel } => {
            let rows = zoo::zoo(&subsystems, cases, runs, kernel.as_deref())?;
            let text = match format {
                ZooFormat::Markdown => zoo::markdown(&rows),
                ZooFormat::Json => {
                    serde_json::to_string_pretty(&rows).map_err(|e| CliError::Failed(e.to_string()))? + "\n"
                }
            };
            print(&text)?;
            Ok(status(zoo::all_ok(&rows)))
        }
        Command::List { format, kernel } => {
            print(&commands::list(format, kernel.as_deref())?)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Trace { scenario, format, out } => {
            Ok(status(commands::trace(&scenario, format, out.as_deref())?.ok))
        }
        Command::Merge { reports, out } => Ok(status(commands::merge(&reports, out.as_deref())?.ok)),
        Command::Play { level, list, check, solve, out } => run_play(level, list, check, solve, &out),
        Command::Taskstats { command: TaskstatsCommand::Netlink { port, file } } => {
            run_taskstats_netlink(port, file.as_deref())
        }
    }
}

/// `ksim fuzz`: runs the campaign, prints its report; Ctrl-C stops it with a partial report.
fn run_fuzz(args: &fuzz::FuzzArgs) -> Result<ExitCode, CliError> {
    if args.jobs.is_some_and(|jobs| jobs > JOBS_MAX) {
        return Err(CliError::Usage(format!("--jobs must be at most {JOBS_MAX} (one thread each)")));
    }
    let interrupt = Arc::new(AtomicBool::new(false));
    {
        let interrupt = interrupt.clone();
        // A second handler cannot be installed (tests call in once per process); ignore.
        let _ = ctrlc::set_handler(move || interrupt.store(true, Ordering::Relaxed));
    }
    let report = fuzz::fuzz(args, interrupt.clone())?;
    print(&report.render())?;
    print(&format!("report: {}\n", args.out.join(fuzz::report_name(args.shard)).display()))?;
    if report.failures_count() > 0 {
        Ok(ExitCode::from(EXIT_FOUND))
    } else if interrupt.load(Ordering::Relaxed) {
        print("interrupted: the report above is partial\n")?;
        Ok(ExitCode::from(EXIT_INTERRUPTED))
    } else {
        Ok(ExitCode::SUCCESS)
    }
}

/// `ksim play`: lists the levels, checks a solution, prints one, or starts a level.
fn run_play(
    level: Option<String>,
    list: bool,
    check: Option<PathBuf>,
    solve: bool,
    out: &std::path::Path,
) -> Result<ExitCode, CliError> {
    if list {
        print(&play::list())?;
        return Ok(ExitCode::SUCCESS);
    }
    if let Some(file) = check {
        let (text, wins) = play::check(&file)?;
        print(&text)?;
        return Ok(status(wins));
    }
    let level = level.as_deref().unwrap_or_default();
    if solve {
        print(&play::solve(level, out)?)?;
        return Ok(ExitCode::SUCCESS);
    }
    play::play(level, out)?;
    Ok(ExitCode::SUCCESS)
}

/// `ksim taskstats netlink`: raw request bytes in (FILE or stdin), raw reply bytes out.
fn run_taskstats_netlink(port: u32, file: Option<&std::path::Path>) -> Result<ExitCode, CliError> {
    let mut input: Box<dyn std::io::Read> = match file {
        Some(path) => {
            Box::new(std::fs::File::open(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?)
        }
        None => Box::new(std::io::stdin().lock()),
    };
    let mut stdout = std::io::stdout().lock();
    commands::taskstats_netlink(port, &mut input, &mut stdout)?;
    stdout.flush().map_err(error::stdout_error)?;
    Ok(ExitCode::SUCCESS)
}

fn main() -> ExitCode {
    // Models that panic are caught by the checkers and reported as violations; the default hook
    // would also print each one (with a backtrace hint) over the progress bar. Keep quiet and let
    // the report say it; a panic in ksim itself is caught below and becomes one line.
    std::panic::set_hook(Box::new(|_| {}));
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(error) => {
            use clap::error::ErrorKind;
            if matches!(error.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion) {
                let _ = error.print();
                return ExitCode::SUCCESS;
            }
            if error.kind() == ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand {
                eprintln!("ksim: a subcommand is missing (see ksim --help, or ksim COMMAND --help)");
                return ExitCode::from(EXIT_USAGE);
            }
            let rendered = error.render().to_string();
            // clap's first paragraph, joined into one line; its usage and tips are left out.
            let paragraph: Vec<&str> = rendered
                .lines()
                .skip_while(|l| l.trim().is_empty())
                .take_while(|l| !l.trim().is_empty())
                .map(str::trim)
                .collect();
            let line = paragraph.join(" ");
            let line = line.trim_start_matches("error: ");
            eprintln!("ksim: {line} (see ksim --help)");
            return ExitCode::from(EXIT_USAGE);
        }
    };
    // Every write to stdout goes through error::print, so a closed pipe or a full disk is an
    // error value with its own status, never a panic; a panic that reaches here is ksim's bug.
    match std::panic::catch_unwind(|| run(cli)) {
        Ok(Ok(code)) => code,
        Ok(Err(error)) => {
            if let Some(line) = error.line() {
                eprintln!("{line}");
            }
            ExitCode::from(error.status())
        }
        Err(payload) => {
            let message = payload
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "a panic".to_string());
            eprintln!("ksim: internal error (a bug in ksim, please report it): {message}");
            ExitCode::from(EXIT_INTERNAL)
        }
    }
}
