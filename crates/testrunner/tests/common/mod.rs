//! Helpers shared by the integration tests: temp projects, runner skips, snapshot views.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use agentd_testrunner::{
    CargoRunner, FrameworkChoice, LocalTestRunner, RunOptions, TestReport, TestingSettings,
};

/// Writes `files` (relative path, contents) under `dir`.
pub fn write_files(dir: &Path, files: &[(&str, &str)]) {
    for (name, text) in files {
        let path = dir.join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }
}

/// A temp project with these files.
pub fn project(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    write_files(dir.path(), files);
    dir
}

/// Whether `program` is on the PATH. When it is not: skip with a printed reason, unless
/// `CI=true` or `AGENTD_REQUIRE_ALL=1`, where the test fails.
pub fn require(program: &str) -> bool {
    let found = std::env::var_os("PATH")
        .is_some_and(|paths| std::env::split_paths(&paths).any(|dir| dir.join(program).is_file()));
    if !found {
        let required = std::env::var("CI").is_ok_and(|v| v == "true")
            || std::env::var("AGENTD_REQUIRE_ALL").is_ok_and(|v| v == "1");
        assert!(
            !required,
            "{program} is required (CI=true or AGENTD_REQUIRE_ALL=1) but not on PATH"
        );
        eprintln!("SKIPPED: {program} is not installed");
    }
    found
}

/// Run options with the cargo target directory inside `target` (one per test).
pub fn cargo_options(target: &Path) -> RunOptions {
    RunOptions {
        env: BTreeMap::from([
            ("CARGO_TARGET_DIR".to_owned(), target.display().to_string()),
            ("CARGO_NET_OFFLINE".to_owned(), "true".to_owned()),
        ]),
        ..RunOptions::default()
    }
}

/// A runner for `framework` with default settings otherwise (`cargo test`, not nextest).
pub fn runner(framework: FrameworkChoice) -> LocalTestRunner {
    LocalTestRunner::new(TestingSettings {
        framework,
        cargo_runner: CargoRunner::Test,
        timeout: 300,
        ..TestingSettings::default()
    })
    .unwrap()
}

/// A tiny dependency-free crate named `demo`.
pub fn cargo_project(lib_rs: &str, extra: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = project(&[
        (
            "Cargo.toml",
            "[package]\nname = \"demo\"\nversion = \"0.1.0\"\nedition = \"2021\"\n\n[dependencies]\n",
        ),
        ("src/lib.rs", lib_rs),
    ]);
    write_files(dir.path(), extra);
    dir
}

/// The deterministic part of a report, for snapshots: outcome, counts, source, and per test
/// id, status, file, line and message.
pub fn view(report: &TestReport) -> serde_json::Value {
    let tests: Vec<serde_json::Value> = report
        .tests
        .iter()
        .map(|t| {
            serde_json::json!({
                "id": t.id,
                "status": t.status,
                "file": t.file,
                "line": t.line,
                "message": t.message,
            })
        })
        .collect();
    serde_json::json!({
        "framework": report.framework,
        "outcome": report.outcome,
        "counts": report.counts,
        "source": report.source,
        "tests": tests,
    })
}

/// Whether the process `pid` is gone (or a zombie nobody reaped yet).
pub fn process_gone(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(stat) => stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z')),
    }
}

/// Polls `cond` until it holds or `limit` passes.
pub fn wait_until(limit: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if cond() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    cond()
}

/// Reads a pid written by a test script.
pub fn read_pid(path: &PathBuf) -> u32 {
    std::fs::read_to_string(path)
        .unwrap()
        .trim()
        .parse()
        .unwrap()
}

/// Whether an optional program (never required in CI) is on the PATH; prints a skip reason.
pub fn require_optional(program: &str) -> bool {
    let found = std::env::var_os("PATH")
        .is_some_and(|paths| std::env::split_paths(&paths).any(|dir| dir.join(program).is_file()));
    if !found {
        eprintln!("SKIPPED: {program} is not installed (optional)");
    }
    found
}
