//! pytest's console, the fallback when the JUnit file was not written (pytest died early,
//! or the project's own options redirected it).
//!
//! Counts come from the final summary line (`1 failed, 1 passed, 1 xfailed, 1 error in
//! 0.06s`); the failed and errored tests are named by the short test summary lines.

use super::Parsed;
use crate::report::{CouldNotRunKind, TestCase, TestCounts, TestStatus};

/// Parses pytest's console output.
pub(crate) fn parse(console: &str) -> Parsed {
    let mut tests = Vec::new();
    let mut counts = TestCounts::default();
    for line in console.lines() {
        let (status, rest) = if let Some(rest) = line.strip_prefix("FAILED ") {
            (TestStatus::Failed, rest)
        } else if let Some(rest) = line.strip_prefix("ERROR ") {
            (TestStatus::Error, rest)
        } else {
            continue;
        };
        let (id, message) = rest.split_once(" - ").unwrap_or((rest, ""));
        tests.push(TestCase {
            id: id.to_owned(),
            name: id.rsplit("::").next().unwrap_or(id).to_owned(),
            file: id.split("::").next().map(str::to_owned),
            line: None,
            status,
            duration_ms: None,
            message: (!message.is_empty()).then(|| message.to_owned()),
            output: None,
        });
    }
    if let Some(summary) = console.lines().rev().find_map(summary_line) {
        counts = summary;
    }
    let problem = if console.contains("error during collection")
        || console.contains("errors during collection")
    {
        Some((CouldNotRunKind::CollectionError, collection_reason(console)))
    } else if counts.total == 0 && console.contains("no tests ran") {
        Some((
            CouldNotRunKind::NoTestsFound,
            "pytest collected no tests".to_owned(),
        ))
    } else {
        None
    };
    Parsed {
        tests,
        counts,
        problem,
    }
}

/// Brings JUnit results to pytest's own truth: tests its `XPASS` lines name (the runner
/// passes `-rfEX`) become [`TestStatus::XPassed`], and the counts become those of its
/// summary line, which also counts subtests (JUnit has one case per test function).
pub(crate) fn reconcile(parsed: &mut Parsed, console: &str) {
    for line in console.lines() {
        let Some(rest) = line.strip_prefix("XPASS ") else {
            continue;
        };
        let id = rest.split_once(" - ").map_or(rest, |(id, _)| id).trim();
        if let Some(test) = parsed.tests.iter_mut().find(|t| t.id == id) {
            test.status = TestStatus::XPassed;
        }
    }
    parsed.counts = console
        .lines()
        .rev()
        .find_map(summary_line)
        .unwrap_or_else(|| TestCounts::from_tests(&parsed.tests));
}

fn collection_reason(console: &str) -> String {
    console
        .lines()
        .find(|l| l.starts_with("ERROR ") || l.starts_with("E "))
        .map(|l| format!("pytest collection failed: {}", l.trim()))
        .unwrap_or_else(|| "pytest collection failed".to_owned())
}

/// Reads `1 failed, 1 passed, 1 skipped, 1 xfailed, 1 error in 0.06s` (maybe inside `===`).
fn summary_line(line: &str) -> Option<TestCounts> {
    let line = line.trim().trim_matches('=').trim();
    let (counts_part, time) = line.rsplit_once(" in ")?;
    if !time.ends_with('s') || counts_part.starts_with("no tests ran") {
        return None;
    }
    let mut counts = TestCounts::default();
    let mut seen = false;
    for part in counts_part.split(", ") {
        let (n, label) = part.trim().split_once(' ')?;
        let n: u64 = n.parse().ok()?;
        let status = match label {
            "passed" => TestStatus::Passed,
            "failed" => TestStatus::Failed,
            "skipped" => TestStatus::Skipped,
            "xfailed" => TestStatus::XFailed,
            "xpassed" => TestStatus::XPassed,
            "error" | "errors" => TestStatus::Error,
            // deselected, warnings, rerun, subtests passed …: not tests of this run's total
            _ => continue,
        };
        counts.add(status, n);
        seen = true;
    }
    seen.then_some(counts)
}
