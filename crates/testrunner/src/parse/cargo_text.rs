//! cargo test's text output (libtest's JSON is nightly-only).
//!
//! Reads the interleaved console of `cargo test --no-fail-fast`: `Running <target>` and
//! `Doc-tests` headers (which give each test its file), `test NAME ... ok|FAILED|ignored`
//! lines, `---- NAME stdout ----` failure sections, `test result:` summaries, and cargo's own
//! errors (compile errors, test binaries killed by a signal).

use super::{Parsed, panic_location, panic_message};
use crate::report::{CouldNotRunKind, TestCase, TestCounts, TestStatus};

/// Parses the console of one `cargo test` run.
pub(crate) fn parse(console: &str) -> Parsed {
    let mut tests: Vec<TestCase> = Vec::new();
    let mut summary = TestCounts::default();
    let mut current_file: Option<String> = None;
    let mut failure_sections: Vec<(String, Vec<&str>)> = Vec::new();
    let mut in_section = false;
    let mut compile_error: Option<String> = None;
    let mut first_error: Option<String> = None;
    let mut crash: Option<String> = None;

    for line in console.lines() {
        let trimmed = line.trim_start();
        if let Some(name) = line
            .strip_prefix("---- ")
            .and_then(|l| l.strip_suffix(" stdout ----"))
        {
            failure_sections.push((name.to_owned(), Vec::new()));
            in_section = true;
            continue;
        }
        if in_section {
            if line == "failures:" || line.starts_with("test result: ") {
                in_section = false;
            } else if let Some((_, lines)) = failure_sections.last_mut() {
                lines.push(line);
                continue;
            }
        }
        if let Some(target) = trimmed.strip_prefix("Running ") {
            let target = target.strip_prefix("unittests ").unwrap_or(target);
            current_file = target.split(" (").next().map(str::to_owned);
        } else if trimmed.starts_with("Doc-tests ") {
            current_file = None;
        } else if let Some(rest) = line.strip_prefix("test ") {
            if let Some(case) = test_line(rest, current_file.as_deref()) {
                tests.push(case);
            }
        } else if let Some(rest) = line.strip_prefix("test result: ") {
            add_summary(&mut summary, rest);
        } else if trimmed.starts_with("error: could not compile") {
            compile_error.get_or_insert_with(|| trimmed.to_owned());
        } else if (trimmed.starts_with("error[") || trimmed.starts_with("error:"))
            && first_error.is_none()
        {
            first_error = Some(trimmed.to_owned());
        } else if trimmed.contains("process didn't exit successfully")
            && trimmed.contains("(signal: ")
        {
            crash.get_or_insert_with(|| trimmed.to_owned());
        }
    }

    for (name, lines) in failure_sections {
        let text = lines.join("\n").trim().to_owned();
        let id = test_id(&name);
        if let Some(case) = tests
            .iter_mut()
            .find(|t| t.id == id && t.status.is_failure() && t.output.is_none())
        {
            if let Some((file, line)) = panic_location(&text) {
                case.file = Some(file);
                case.line = Some(line);
            }
            case.message = panic_message(&text).or_else(|| super::first_line(&text));
            case.output = Some(text);
        }
    }

    let from_tests = TestCounts::from_tests(&tests);
    let counts = if summary.total > from_tests.total {
        summary
    } else {
        from_tests
    };
    let problem = if let Some(compile) = compile_error {
        let reason = match first_error {
            Some(first) if first != compile => format!("{first} ({compile})"),
            _ => compile,
        };
        Some((CouldNotRunKind::CompileError, reason))
    } else if let Some(crash) = crash {
        Some((CouldNotRunKind::Crashed, crash))
    } else if counts.total == 0 && summary_seen(console) {
        Some((
            CouldNotRunKind::NoTestsFound,
            "cargo test ran 0 tests".to_owned(),
        ))
    } else if counts.total == 0 {
        first_error.map(|e| (CouldNotRunKind::RunnerError, e))
    } else {
        None
    };
    Parsed {
        tests,
        counts,
        problem,
    }
}

fn summary_seen(console: &str) -> bool {
    console.lines().any(|l| l.starts_with("test result: "))
}

/// The id of a test: the name libtest prints, without the `- should panic` marker.
fn test_id(name: &str) -> String {
    name.trim_end_matches(" - should panic").to_owned()
}

/// Parses the part after `test ` of `test NAME ... RESULT`.
fn test_line(rest: &str, file: Option<&str>) -> Option<TestCase> {
    let (name, result) = rest.rsplit_once(" ... ")?;
    let (status, message) = match result.trim() {
        "ok" => (TestStatus::Passed, None),
        "FAILED" => (TestStatus::Failed, None),
        "ignored" => (TestStatus::Skipped, None),
        other => {
            let reason = other.strip_prefix("ignored, ")?;
            (TestStatus::Skipped, Some(reason.to_owned()))
        }
    };
    let id = test_id(name);
    // Doctests are named `src/lib.rs - add (line 3)`.
    let (file, line) = match id.split_once(" - ") {
        Some((doc_file, item)) if file.is_none() => (
            Some(doc_file.to_owned()),
            item.rsplit_once("(line ")
                .and_then(|(_, n)| n.trim_end_matches(')').parse().ok()),
        ),
        _ => (file.map(str::to_owned), None),
    };
    Some(TestCase {
        name: name.to_owned(),
        id,
        file,
        line,
        status,
        duration_ms: None,
        message,
        output: None,
    })
}

/// Adds `ok. 1 passed; 3 failed; 1 ignored; 0 measured; 0 filtered out; …` to `summary`.
fn add_summary(summary: &mut TestCounts, rest: &str) {
    for part in rest.split(';') {
        let mut words = part.split_whitespace().rev();
        let (Some(label), Some(n)) = (words.next(), words.next()) else {
            continue;
        };
        let Ok(n) = n.parse::<u64>() else { continue };
        match label {
            "passed" => summary.add(TestStatus::Passed, n),
            "failed" => summary.add(TestStatus::Failed, n),
            "ignored" => summary.add(TestStatus::Skipped, n),
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_line_counts() {
        let mut c = TestCounts::default();
        add_summary(
            &mut c,
            "FAILED. 1 passed; 3 failed; 1 ignored; 0 measured; 0 filtered out; finished in 0.00s",
        );
        assert_eq!((c.passed, c.failed, c.skipped, c.total), (1, 3, 1, 5));
    }

    #[test]
    fn doctest_line_gets_file_and_line() {
        let case = test_line("src/lib.rs - add (line 3) ... ok", None).unwrap();
        assert_eq!(case.file.as_deref(), Some("src/lib.rs"));
        assert_eq!(case.line, Some(3));
        let case = test_line("tests::boom - should panic ... ok", Some("src/lib.rs")).unwrap();
        assert_eq!(case.id, "tests::boom");
        let case = test_line("slow ... ignored, takes an hour", Some("tests/it.rs")).unwrap();
        assert_eq!(case.status, TestStatus::Skipped);
        assert_eq!(case.message.as_deref(), Some("takes an hour"));
    }
}
