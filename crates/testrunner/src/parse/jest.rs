//! jest's `--json` results file.

use std::path::Path;

use serde::Deserialize;

use super::{Parsed, file_line_prefix};
use crate::report::{CouldNotRunKind, TestCase, TestStatus};

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Results {
    #[serde(default)]
    test_results: Vec<SuiteResult>,
    #[serde(default)]
    num_runtime_error_test_suites: u64,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct SuiteResult {
    name: String,
    #[serde(default)]
    status: String,
    #[serde(default)]
    message: String,
    #[serde(default)]
    assertion_results: Vec<Assertion>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Assertion {
    full_name: String,
    status: String,
    #[serde(default)]
    duration: Option<f64>,
    #[serde(default)]
    failure_messages: Vec<String>,
    #[serde(default)]
    location: Option<Location>,
}

#[derive(Deserialize)]
struct Location {
    line: u32,
}

/// Parses jest's JSON. A suite that failed to load (syntax error, missing module) becomes an
/// `Error` case named after its file, and the run a collection error.
pub(crate) fn parse(json: &str, project: &Path) -> Result<Parsed, String> {
    let results: Results = serde_json::from_str(json).map_err(|e| e.to_string())?;
    let mut tests = Vec::new();
    let mut broken_suite = None;
    for suite in &results.test_results {
        let file = Path::new(&suite.name)
            .strip_prefix(project)
            .map(|p| p.to_string_lossy().into_owned())
            .unwrap_or_else(|_| suite.name.clone());
        if suite.assertion_results.is_empty() && suite.status == "failed" {
            broken_suite.get_or_insert_with(|| file.clone());
            tests.push(TestCase {
                id: file.clone(),
                name: format!("{file} (suite failed to run)"),
                file: Some(file.clone()),
                line: None,
                status: TestStatus::Error,
                duration_ms: None,
                message: super::first_line(&suite.message),
                output: Some(suite.message.trim().to_owned()),
            });
            continue;
        }
        for a in &suite.assertion_results {
            tests.push(convert(a, &file));
        }
    }
    let mut parsed = Parsed::from_tests(tests);
    if results.num_runtime_error_test_suites > 0 || broken_suite.is_some() {
        let which = broken_suite.unwrap_or_default();
        parsed.problem = Some((
            CouldNotRunKind::CollectionError,
            format!("jest could not run test suite {which}"),
        ));
    }
    Ok(parsed)
}

fn convert(a: &Assertion, file: &str) -> TestCase {
    let status = match a.status.as_str() {
        "passed" => TestStatus::Passed,
        "failed" => TestStatus::Failed,
        "todo" => TestStatus::Todo,
        // "pending", "skipped", "disabled", "focused"-excluded
        _ => TestStatus::Skipped,
    };
    let output = a.failure_messages.join("\n\n");
    let message = (!output.is_empty()).then(|| {
        output
            .lines()
            .take_while(|l| !l.trim_start().starts_with("at "))
            .collect::<Vec<_>>()
            .join("\n")
            .trim()
            .to_owned()
    });
    let line = a
        .location
        .as_ref()
        .map(|l| l.line)
        .or_else(|| stack_line(&output, file));
    TestCase {
        id: format!("{file}::{}", a.full_name),
        name: a.full_name.clone(),
        file: Some(file.to_owned()),
        line,
        status,
        duration_ms: a.duration.map(|d| d.max(0.0).round() as u64),
        message,
        output: (!output.is_empty()).then_some(output),
    }
}

/// The line of the first stack frame in the test file: `at Object.toBe (/p/sum.test.js:4:59)`.
fn stack_line(stack: &str, file: &str) -> Option<u32> {
    stack.lines().find_map(|l| {
        let inner = l.trim().strip_prefix("at ")?;
        let inner = inner.rsplit_once('(').map_or(inner, |(_, loc)| loc);
        let inner = inner.trim_end_matches(')');
        if !inner.contains(file) {
            return None;
        }
        let (path, _column) = inner.rsplit_once(':')?;
        file_line_prefix(path).map(|(_, line)| line)
    })
}
