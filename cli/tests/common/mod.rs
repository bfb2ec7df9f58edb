//! Runs the built `capsuledb` binary and captures what it printed.

#![allow(dead_code, reason = "each test file uses a different part")]

use std::path::{Path, PathBuf};
use std::process::Command;

/// What one run of the binary did.
pub struct Output {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

/// Runs `capsuledb` with `args`.
pub fn run<S: AsRef<std::ffi::OsStr>>(args: &[S]) -> Output {
    let out = Command::new(env!("CARGO_BIN_EXE_capsuledb"))
        .args(args)
        .output()
        .expect("run the capsuledb binary");
    Output {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8(out.stdout).expect("stdout is UTF-8"),
        stderr: String::from_utf8(out.stderr).expect("stderr is UTF-8"),
    }
}

/// Runs and expects success, returning stdout.
pub fn ok<S: AsRef<std::ffi::OsStr>>(args: &[S]) -> String {
    let out = run(args);
    assert_eq!(out.code, 0, "stderr: {}", out.stderr);
    out.stdout
}

/// Runs and expects failure with exit status `code` and one `capsuledb: ` line on
/// stderr; returns that line.
pub fn fails<S: AsRef<std::ffi::OsStr>>(args: &[S], code: i32) -> String {
    let out = run(args);
    assert_eq!(
        out.code, code,
        "stdout: {} stderr: {}",
        out.stdout, out.stderr
    );
    let lines: Vec<&str> = out.stderr.lines().collect();
    assert_eq!(lines.len(), 1, "one line expected: {:?}", out.stderr);
    let line = lines[0];
    assert!(line.starts_with("capsuledb: "), "{line}");
    line.to_string()
}

/// A temporary directory and a database path in it.
pub fn db_in(dir: &tempfile::TempDir) -> PathBuf {
    dir.path().join("test.db")
}

/// `path` as a string argument.
pub fn s(path: &Path) -> String {
    path.to_str().expect("UTF-8 temp path").to_string()
}

/// A database with table `t` holding `alice = 100` and `bob = 200`.
pub fn sample() -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = s(&db_in(&dir));
    ok(&["put", "--create", &db, "t", "alice", "100"]);
    ok(&["put", &db, "t", "bob", "200"]);
    (dir, db)
}
