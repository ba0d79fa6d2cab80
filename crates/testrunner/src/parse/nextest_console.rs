//! nextest's console, the fallback when its JUnit file was not written, and the source of
//! the skipped count (nextest's JUnit leaves ignored tests out).

use super::{Parsed, panic_location, panic_message};
use crate::report::{TestCase, TestCounts, TestStatus};

/// Parses `PASS [ 0.006s] (3/4) adder tests::it_works` lines and the `Summary` line.
pub(crate) fn parse(console: &str) -> Parsed {
    let mut tests: Vec<TestCase> = Vec::new();
    let mut lines = console.lines().peekable();
    while let Some(line) = lines.next() {
        let Some((status, name)) = status_line(line) else {
            continue;
        };
        if tests.iter().any(|t| t.id == name) {
            // The summary repeats the failures.
            continue;
        }
        let mut output = Vec::new();
        while let Some(next) = lines.peek() {
            if status_line(next).is_some() || next.starts_with("────") {
                break;
            }
            output.push(next.trim());
            lines.next();
        }
        let output = output.join("\n").trim().to_owned();
        let failed = status.is_failure();
        let location = panic_location(&output);
        tests.push(TestCase {
            id: name.clone(),
            name,
            file: location.as_ref().map(|(f, _)| f.clone()),
            line: location.map(|(_, l)| l),
            status,
            duration_ms: None,
            message: failed.then(|| panic_message(&output)).flatten(),
            output: (failed && !output.is_empty()).then_some(output),
        });
    }
    let mut counts = TestCounts::from_tests(&tests);
    counts.add(TestStatus::Skipped, skipped_in_summary(console));
    Parsed {
        tests,
        counts,
        problem: None,
    }
}

/// `N skipped` from `Summary [ 0.028s] 4 tests run: 1 passed, 3 failed, 1 skipped`.
pub(crate) fn skipped_in_summary(console: &str) -> u64 {
    console
        .lines()
        .filter(|l| l.trim_start().starts_with("Summary ["))
        .find_map(|l| {
            l.split([',', ':'])
                .find_map(|part| part.trim().strip_suffix(" skipped")?.parse().ok())
        })
        .unwrap_or(0)
}

fn status_line(line: &str) -> Option<(TestStatus, String)> {
    let trimmed = line.trim_start();
    let (word, rest) = trimmed.split_once(' ')?;
    let status = match word {
        "PASS" => TestStatus::Passed,
        "FAIL" | "TIMEOUT" | "SIGSEGV" | "SIGABRT" | "SIGKILL" | "ABORT" => TestStatus::Failed,
        _ => return None,
    };
    let rest = rest.trim_start().strip_prefix('[')?;
    let (_, rest) = rest.split_once(']')?;
    let rest = rest.trim_start();
    let rest = match rest.strip_prefix('(') {
        Some(r) => r.split_once(')')?.1.trim_start(),
        None => rest,
    };
    // `binary-id test::path`
    let (_binary, name) = rest.split_once(' ')?;
    Some((status, name.trim().to_owned()))
}
