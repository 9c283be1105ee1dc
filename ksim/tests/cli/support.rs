//! Running the binary in a scratch directory.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// One run of `ksim`.
#[derive(Debug)]
pub struct Run {
    pub status: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    /// Asserts the run failed with status `status` and one clear line on stderr containing
    /// `needle`, and no sign of a panic.
    pub fn assert_one_line_error(&self, status: i32, needle: &str) {
        assert_eq!(self.status, status, "exit status; stderr: {}", self.stderr);
        let lines: Vec<&str> = self.stderr.lines().filter(|l| !l.trim().is_empty()).collect();
        assert_eq!(lines.len(), 1, "one line on stderr, got: {:?}", self.stderr);
        assert!(lines[0].starts_with("ksim: "), "the line names ksim: {}", lines[0]);
        assert!(lines[0].contains(needle), "{:?} does not contain {needle:?}", lines[0]);
        for sign in ["panicked", "RUST_BACKTRACE", "stack backtrace"] {
            assert!(!self.stderr.contains(sign), "a panic leaked: {}", self.stderr);
        }
    }
}

/// A fresh, empty directory for one test.
pub fn scratch(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("ksim-cli").join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("scratch dir");
    dir
}

/// Runs `ksim args...` in `dir` with `stdin` as its input.
pub fn ksim_with_input(dir: &Path, args: &[&str], stdin: &[u8]) -> Run {
    use std::io::Write as _;
    let mut child = Command::new(env!("CARGO_BIN_EXE_ksim"))
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run ksim");
    // The child may exit without reading; a broken pipe is fine.
    let _ = child.stdin.take().expect("stdin").write_all(stdin);
    let output = child.wait_with_output().expect("wait for ksim");
    Run {
        status: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

/// Runs `ksim args...` in `dir`.
pub fn ksim(dir: &Path, args: &[&str]) -> Run {
    ksim_with_input(dir, args, b"")
}

/// The JSON file at `path`.
pub fn json(path: &Path) -> serde_json::Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("parse {}: {e}", path.display()))
}

/// Runs a demo campaign with `shrink-skips-used` off in `dir` and gives the path of the artifact
/// it wrote for its first failure.
pub fn demo_failure_artifact(dir: &Path) -> PathBuf {
    let run = ksim(dir, &["fuzz", "demo", "--fix-off", "shrink-skips-used", "--cases", "300", "--jobs", "1"]);
    assert_eq!(run.status, 1, "{}\n{}", run.stdout, run.stderr);
    let report = json(&dir.join("ksim-out/report.json"));
    dir.join(report["subsystems"][0]["failures"][0]["artifact"].as_str().expect("artifact path"))
}
