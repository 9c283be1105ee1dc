//! Every command the guide shows, run, so the guide cannot rot.
//!
//! The convention (guide/src/*.md): a fenced block whose info string starts with `console` holds
//! commands, each on a line starting with `$ `, and what they print (illustrative, not compared).
//! `console` expects every command in the block to exit 0; `console,exit=N` expects status N.
//! Every command must be `ksim ...`: it runs against the built binary in a scratch directory shared
//! by the chapter's blocks in order (so a chapter can fuzz, then replay what fuzz wrote). A block
//! marked `console,norun` is shown but not run (the README's one-minute campaign, the cargo
//! commands of loom and shuttle); the test lists how many there are and insists they stay few.

use std::path::{Path, PathBuf};

use crate::support::{ksim, scratch};

/// Shown but not run: at most this many blocks in the whole guide.
const NORUN_BLOCKS_MAX: usize = 4;

#[derive(Debug)]
struct Block {
    file: PathBuf,
    line: usize,
    exit: i32,
    norun: bool,
    commands: Vec<String>,
}

fn blocks_in(file: &Path) -> Vec<Block> {
    let text = std::fs::read_to_string(file).unwrap_or_else(|e| panic!("read {}: {e}", file.display()));
    let mut blocks = Vec::new();
    let mut current: Option<Block> = None;
    let mut in_other_fence = false;
    for (index, line) in text.lines().enumerate() {
        let trimmed = line.trim_start();
        if let Some(info) = trimmed.strip_prefix("```") {
            if let Some(block) = current.take() {
                blocks.push(block);
                continue;
            }
            if in_other_fence {
                in_other_fence = false;
                continue;
            }
            let mut parts = info.split(',').map(str::trim);
            if parts.next() == Some("console") {
                let mut block = Block {
                    file: file.to_path_buf(),
                    line: index + 1,
                    exit: 0,
                    norun: false,
                    commands: Vec::new(),
                };
                for attribute in parts {
                    match attribute.split_once('=') {
                        Some(("exit", status)) => {
                            block.exit = status.parse().unwrap_or_else(|_| {
                                panic!("{}:{}: bad exit marker {attribute:?}", file.display(), index + 1)
                            })
                        }
                        None if attribute == "norun" => block.norun = true,
                        _ => panic!(
                            "{}:{}: unknown console attribute {attribute:?}",
                            file.display(),
                            index + 1
                        ),
                    }
                }
                current = Some(block);
            } else {
                in_other_fence = true;
            }
            continue;
        }
        if let Some(block) = current.as_mut() {
            if let Some(command) = trimmed.strip_prefix("$ ") {
                block.commands.push(command.trim().to_string());
            }
        } else if trimmed.starts_with("$ ") {
            panic!("{}:{}: a command outside a console block: {trimmed}", file.display(), index + 1);
        }
    }
    assert!(current.is_none(), "{}: an unclosed console block", file.display());
    blocks
}

fn guide_files() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../guide/src");
    let mut files = Vec::new();
    let mut pending = vec![root];
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("read {}: {e}", dir.display())) {
            let path = entry.expect("dir entry").path();
            if path.is_dir() {
                pending.push(path);
            } else if path.extension().is_some_and(|e| e == "md") {
                files.push(path);
            }
        }
    }
    files.sort();
    files
}

#[test]
fn every_command_the_guide_shows_runs_with_the_status_it_claims() {
    let mut ran = 0;
    let mut norun = 0;
    for file in guide_files() {
        let blocks = blocks_in(&file);
        let name = file.file_stem().expect("stem").to_string_lossy().into_owned();
        let dir = scratch(&format!("guide-{name}"));
        for block in blocks {
            assert!(
                !block.commands.is_empty(),
                "{}:{}: a console block with no command",
                block.file.display(),
                block.line
            );
            if block.norun {
                norun += 1;
                continue;
            }
            for command in &block.commands {
                assert!(
                    !command.contains(['"', '\'', '|', '>', '<', '*', '$', '&', ';']),
                    "{}:{}: keep guide commands to plain words: {command}",
                    block.file.display(),
                    block.line
                );
                let words: Vec<&str> = command.split_whitespace().collect();
                assert_eq!(
                    words[0],
                    "ksim",
                    "{}:{}: only ksim commands run: {command}",
                    block.file.display(),
                    block.line
                );
                let run = ksim(&dir, &words[1..]);
                assert_eq!(
                    run.status,
                    block.exit,
                    "{}:{}: `{command}` exited {} (the guide says {})\nstdout:\n{}\nstderr:\n{}",
                    block.file.display(),
                    block.line,
                    run.status,
                    block.exit,
                    run.stdout,
                    run.stderr
                );
                ran += 1;
            }
        }
    }
    assert!(ran >= 10, "the guide shows at least ten commands; ran {ran}");
    assert!(
        norun <= NORUN_BLOCKS_MAX,
        "{norun} blocks are shown but not run; keep them to {NORUN_BLOCKS_MAX}"
    );
}

#[test]
fn the_guide_parser_reads_exit_markers_and_rejects_stray_commands() {
    let dir = scratch("guide-parser");
    let file = dir.join("sample.md");
    std::fs::write(&file, "text\n```console,exit=1\n$ ksim fuzz\noutput\n```\n```rust\nlet x = 1;\n```\n")
        .expect("write");
    let blocks = blocks_in(&file);
    assert_eq!(blocks.len(), 1);
    assert_eq!(blocks[0].exit, 1);
    assert_eq!(blocks[0].commands, vec!["ksim fuzz".to_string()]);
    std::fs::write(&file, "```sh\n$ cargo run\n```\n").expect("write");
    let stray = std::panic::catch_unwind(|| blocks_in(&file));
    assert!(stray.is_err(), "a command outside a console block is refused");
}

#[test]
fn every_chapter_the_summary_links_exists_and_every_chapter_is_linked() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../guide/src");
    let summary = std::fs::read_to_string(root.join("SUMMARY.md")).expect("SUMMARY.md");
    let mut linked = Vec::new();
    for piece in summary.split("](").skip(1) {
        let target = piece.split(')').next().expect("link target");
        assert!(root.join(target).is_file(), "SUMMARY.md links {target}, which does not exist");
        linked.push(root.join(target).canonicalize().expect("canonical"));
    }
    for file in guide_files() {
        if file.file_name().is_some_and(|n| n == "SUMMARY.md") {
            continue;
        }
        let file = file.canonicalize().expect("canonical");
        assert!(linked.contains(&file), "{} is not in SUMMARY.md", file.display());
    }
}
