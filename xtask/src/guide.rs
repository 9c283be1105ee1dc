//! The guide's part of `cargo xtask test`: every relative link and anchor in guide/src resolves,
//! and mdbook builds the book. mdbook is installed with `cargo install mdbook --locked` when
//! missing, since a fresh CI machine has only the Rust toolchain: without its `serve` and `watch`
//! features, which pull in an HTTP server and a file watcher that a one-shot build never uses, at
//! a cheaper optimisation level than the release profile's (see [`INSTALL_PROFILE`]), and in the
//! background from xtask's start, so its build fills the cores the workspace's build leaves idle.
//! The guide's commands are run by ksim's tests (ksim/tests/cli/guide.rs), in the `test` part.

use std::collections::BTreeSet;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Instant;

/// The mdbook release the guide is built with; `cargo install` of it is what CI pays for once.
const MDBOOK_VERSION: &str = "0.5.4";

/// The release profile's settings for mdbook's one install: no optimisation (the guide is one
/// build, seconds at any level; the release profile's opt-level 3 is most of the install's
/// time) and no debug info.
const INSTALL_PROFILE: [(&str, &str); 2] =
    [("CARGO_PROFILE_RELEASE_OPT_LEVEL", "0"), ("CARGO_PROFILE_RELEASE_DEBUG", "false")];

/// The mdbook the guide part runs: found, or being installed.
#[derive(Debug)]
pub(crate) enum Mdbook {
    Found(PathBuf),
    /// `cargo install` running in the background, its output in `log`, the binary to be `bin`.
    Installing {
        child: Child,
        log: PathBuf,
        bin: PathBuf,
        started: Instant,
    },
    /// Not found and not installing (the guide part is not run), or the install has failed.
    Missing(String),
}

impl Mdbook {
    /// mdbook on PATH or in cargo's bin directory; otherwise, when `install`, its install started.
    pub(crate) fn find_or_install(cargo: &str, root: &Path, install: bool) -> Mdbook {
        let Some(cargo_home) = std::env::var_os("CARGO_HOME")
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".cargo")))
        else {
            return Mdbook::Missing("neither CARGO_HOME nor HOME is set".to_string());
        };
        let bin = cargo_home.join("bin/mdbook");
        for candidate in [PathBuf::from("mdbook"), bin.clone()] {
            if Command::new(&candidate).arg("--version").output().is_ok_and(|o| o.status.success()) {
                return Mdbook::Found(candidate);
            }
        }
        if !install {
            return Mdbook::Missing("mdbook is not installed".to_string());
        }
        match start_install(cargo, root) {
            Ok((child, log)) => Mdbook::Installing { child, log, bin, started: Instant::now() },
            Err(error) => Mdbook::Missing(error),
        }
    }

    /// The binary, waiting for its install to end if it is still running.
    fn wait(&mut self) -> Result<PathBuf, String> {
        if let Mdbook::Installing { child, log, bin, started } = self {
            let ended = child.try_wait().is_ok_and(|status| status.is_some());
            let status = child.wait().map_err(|e| format!("cannot wait for cargo install: {e}"));
            let seconds = started.elapsed().as_secs_f64();
            *self = match status {
                Ok(status) if status.success() => {
                    if ended {
                        eprintln!("==> xtask: mdbook was installed in the background");
                    } else {
                        eprintln!(
                            "==> xtask: mdbook installed in the background, {seconds:.0}s after it started"
                        );
                    }
                    Mdbook::Found(bin.clone())
                }
                Ok(status) => {
                    eprint!("{}", std::fs::read_to_string(&*log).unwrap_or_default());
                    Mdbook::Missing(format!("cargo install mdbook failed ({status}; its log above)"))
                }
                Err(error) => Mdbook::Missing(error),
            };
        }
        match self {
            Mdbook::Found(path) => Ok(path.clone()),
            Mdbook::Missing(why) => Err(why.clone()),
            Mdbook::Installing { .. } => unreachable!("the install was waited for above"),
        }
    }
}

impl Drop for Mdbook {
    /// An install still running when xtask stops early (a part failed) is stopped with it.
    fn drop(&mut self) {
        if let Mdbook::Installing { child, .. } = self {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Starts `cargo install mdbook` with its output in target/mdbook-install.log.
fn start_install(cargo: &str, root: &Path) -> Result<(Child, PathBuf), String> {
    let args = [
        "install",
        "mdbook",
        "--version",
        MDBOOK_VERSION,
        "--locked",
        "--no-default-features",
        "--features",
        "search",
    ];
    let dir = root.join("target");
    std::fs::create_dir_all(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let log = dir.join("mdbook-install.log");
    let file = File::create(&log).map_err(|e| format!("cannot create {}: {e}", log.display()))?;
    let err = file.try_clone().map_err(|e| format!("cannot share {}: {e}", log.display()))?;
    eprintln!(
        "==> xtask: mdbook is missing: cargo {} in the background (log: {})",
        args.join(" "),
        log.display()
    );
    let child = Command::new(cargo)
        .args(args)
        .envs(INSTALL_PROFILE)
        .env_remove("RUSTFLAGS")
        .stdin(Stdio::null())
        .stdout(file)
        .stderr(err)
        .spawn()
        .map_err(|e| format!("cannot run cargo install: {e}"))?;
    Ok((child, log))
}

/// Checks the links, then builds the book into target/guide. Errors are one line each.
pub(crate) fn check(root: &Path, mdbook: &mut Mdbook) -> Result<(), String> {
    let src = root.join("guide/src");
    let broken = broken_links(&src)?;
    if !broken.is_empty() {
        for line in &broken {
            eprintln!("xtask: broken link: {line}");
        }
        return Err(format!("{} broken link(s) in guide/src", broken.len()));
    }
    let mdbook = mdbook.wait()?;
    let output = Command::new(&mdbook)
        .args(["build", "guide", "--dest-dir"])
        .arg(root.join("target/guide"))
        .current_dir(root)
        .output()
        .map_err(|e| format!("cannot run {}: {e}", mdbook.display()))?;
    let log = String::from_utf8_lossy(&output.stderr);
    eprint!("{log}");
    if !output.status.success() || log.contains("WARN") || log.contains("ERROR") {
        return Err("mdbook build guide failed or warned (above)".to_string());
    }
    Ok(())
}

/// Every relative link in guide/src/**/*.md whose file or anchor does not exist, as
/// `file:line: target`.
fn broken_links(src: &Path) -> Result<Vec<String>, String> {
    let mut broken = Vec::new();
    for file in markdown_files(src)? {
        let text = read(&file)?;
        for (line, target) in links(&text) {
            if target.contains("://") || target.starts_with("mailto:") {
                continue;
            }
            let (path, anchor) = target.split_once('#').unwrap_or((target.as_str(), ""));
            let resolved =
                if path.is_empty() { file.clone() } else { file.parent().unwrap_or(src).join(path) };
            let fine =
                resolved.is_file() && (anchor.is_empty() || anchors(&read(&resolved)?).contains(anchor));
            if !fine {
                let shown = file.strip_prefix(src).unwrap_or(&file).display().to_string();
                broken.push(format!("guide/src/{shown}:{line}: {target}"));
            }
        }
    }
    Ok(broken)
}

fn read(path: &Path) -> Result<String, String> {
    std::fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()))
}

fn markdown_files(dir: &Path) -> Result<Vec<PathBuf>, String> {
    let mut files = Vec::new();
    let entries = std::fs::read_dir(dir).map_err(|e| format!("cannot list {}: {e}", dir.display()))?;
    for entry in entries {
        let path = entry.map_err(|e| e.to_string())?.path();
        if path.is_dir() {
            files.extend(markdown_files(&path)?);
        } else if path.extension().is_some_and(|ext| ext == "md") {
            files.push(path);
        }
    }
    files.sort();
    Ok(files)
}

/// The targets of the inline links `[text](target)` outside code, with their line numbers.
pub(crate) fn links(text: &str) -> Vec<(usize, String)> {
    let mut found = Vec::new();
    let mut fenced = false;
    for (index, line) in text.lines().enumerate() {
        if line.trim_start().starts_with("```") {
            fenced = !fenced;
            continue;
        }
        if fenced {
            continue;
        }
        // Inline code spans (between backticks) are not links.
        let prose: String = line.split('`').step_by(2).collect::<Vec<_>>().join(" ");
        let mut rest = prose.as_str();
        while let Some(at) = rest.find("](") {
            let after = &rest[at + 2..];
            let Some(end) = after.find(')') else { break };
            let target = after[..end].split_whitespace().next().unwrap_or("").to_string();
            found.push((index + 1, target));
            rest = &after[end..];
        }
    }
    found
}

/// The anchors mdbook gives a page's headings: lower case, spaces to `-`, other punctuation
/// dropped, a repeated heading numbered `-1`, `-2`.
pub(crate) fn anchors(text: &str) -> BTreeSet<String> {
    let mut seen = BTreeSet::new();
    let mut fenced = false;
    for line in text.lines() {
        if line.trim_start().starts_with("```") {
            fenced = !fenced;
        }
        let Some(heading) = line.strip_prefix('#').filter(|_| !fenced) else { continue };
        let title = heading.trim_start_matches('#').trim().replace('`', "");
        let slug: String = title
            .to_lowercase()
            .chars()
            .filter_map(|c| match c {
                ' ' => Some('-'),
                c if c.is_alphanumeric() || c == '-' || c == '_' => Some(c),
                _ => None,
            })
            .collect();
        let mut unique = slug.clone();
        let mut count = 0;
        while seen.contains(&unique) {
            count += 1;
            unique = format!("{slug}-{count}");
        }
        seen.insert(unique);
    }
    seen
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_outside_code_are_found_with_their_lines() {
        let text = "see [a](a.md) and `[no](x.md)`\n```\n[no](y.md)\n```\n[b](b.md#part \"title\")\n";
        assert_eq!(links(text), vec![(1, "a.md".to_string()), (5, "b.md#part".to_string())]);
    }

    #[test]
    fn anchors_follow_mdbook_slugs() {
        let set = anchors("# Getting started\n## The `ksim` CLI: exit codes!\n## Getting started\n");
        let expected: BTreeSet<String> =
            ["getting-started", "the-ksim-cli-exit-codes", "getting-started-1"].map(String::from).into();
        assert_eq!(set, expected);
    }

    #[test]
    fn a_missing_file_or_anchor_is_reported() {
        let dir = std::env::temp_dir().join(format!("xtask-links-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        std::fs::write(dir.join("a.md"), "# Top\n[ok](b.md#here) [gone](c.md) [bad](b.md#nowhere)\n")
            .expect("write");
        std::fs::write(dir.join("b.md"), "# Here\n").expect("write");
        let broken = broken_links(&dir).expect("check");
        let _ = std::fs::remove_dir_all(&dir);
        assert_eq!(broken.len(), 2, "{broken:?}");
        assert!(broken[0].ends_with("a.md:2: c.md") && broken[1].ends_with("a.md:2: b.md#nowhere"));
    }
}
