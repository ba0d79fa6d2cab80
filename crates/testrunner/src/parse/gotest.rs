//! `go test -json` events (one JSON object per line; other lines are ignored).

use std::collections::BTreeMap;

use serde::Deserialize;

use super::Parsed;
use crate::report::{CouldNotRunKind, TestCase, TestStatus};

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Event {
    action: String,
    #[serde(default)]
    package: String,
    #[serde(default)]
    test: Option<String>,
    #[serde(default)]
    output: Option<String>,
    #[serde(default)]
    elapsed: Option<f64>,
    #[serde(default)]
    failed_build: Option<String>,
}

/// Parses the event stream. Subtests (`TestA/case`) are tests of their own, as go reports
/// them; a package whose build failed makes the run a compile error.
pub(crate) fn parse(console: &str) -> Parsed {
    let mut outputs: BTreeMap<(String, String), String> = BTreeMap::new();
    let mut package_output: BTreeMap<String, String> = BTreeMap::new();
    let mut tests = Vec::new();
    let mut build_failed: Option<String> = None;
    let mut first_go_error: Option<&str> = None;
    for line in console.lines() {
        // Before Go 1.24 build output is plain text on stderr, not events:
        // `./calc_test.go:5:28: undefined: x` and `FAIL\tpkg [build failed]`.
        let Some(event) = line
            .starts_with('{')
            .then(|| serde_json::from_str::<Event>(line).ok())
            .flatten()
        else {
            if line.contains(".go:") && first_go_error.is_none() {
                first_go_error = Some(line.trim());
            }
            if let Some(rest) = line.strip_prefix("FAIL\t")
                && (rest.contains("[build failed]") || rest.contains("[setup failed]"))
            {
                let pkg = rest.split_whitespace().next().unwrap_or_default();
                build_failed.get_or_insert_with(|| pkg.to_owned());
            }
            continue;
        };
        if let Some(pkg) = &event.failed_build {
            build_failed.get_or_insert_with(|| pkg.clone());
        }
        let Some(test) = event.test else {
            if let Some(out) = event.output {
                package_output
                    .entry(event.package.clone())
                    .or_default()
                    .push_str(&out);
                if out.contains("[build failed]") || out.contains("[setup failed]") {
                    build_failed.get_or_insert_with(|| event.package.clone());
                }
            }
            continue;
        };
        let key = (event.package.clone(), test.clone());
        let status = match event.action.as_str() {
            "output" => {
                if let Some(out) = event.output {
                    outputs.entry(key).or_default().push_str(&out);
                }
                continue;
            }
            "pass" => TestStatus::Passed,
            "fail" => TestStatus::Failed,
            "skip" => TestStatus::Skipped,
            _ => continue,
        };
        let output = outputs.remove(&key).unwrap_or_default();
        tests.push(convert(
            &event.package,
            &test,
            status,
            event.elapsed,
            &output,
        ));
    }
    let mut parsed = Parsed::from_tests(tests);
    if let Some(pkg) = build_failed {
        let detail = package_output
            .get(&pkg)
            .and_then(|o| o.lines().find(|l| l.contains(".go:")).map(str::trim))
            .or(first_go_error)
            .map(|l| format!(": {l}"))
            .unwrap_or_default();
        parsed.problem = Some((
            CouldNotRunKind::CompileError,
            format!("go package {pkg} failed to build{detail}"),
        ));
    }
    parsed
}

fn convert(
    package: &str,
    test: &str,
    status: TestStatus,
    elapsed: Option<f64>,
    output: &str,
) -> TestCase {
    // Failure lines look like `    calc_test.go:12: got 4, want 5`.
    let location = output.lines().find_map(|l| {
        let (file, rest) = l.trim().split_once(".go:")?;
        let (line, message) = rest.split_once(": ")?;
        Some((
            format!("{file}.go"),
            line.parse::<u32>().ok()?,
            message.to_owned(),
        ))
    });
    let failed = status.is_failure();
    TestCase {
        id: format!("{package}::{test}"),
        name: test.to_owned(),
        file: location.as_ref().map(|(f, _, _)| f.clone()),
        line: location.as_ref().filter(|_| failed).map(|(_, l, _)| *l),
        status,
        duration_ms: elapsed.map(|s| (s.max(0.0) * 1000.0).round() as u64),
        message: location.filter(|_| failed).map(|(_, _, m)| m),
        output: (failed && !output.is_empty()).then(|| output.trim_end().to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EVENTS: &str = r#"{"Action":"start","Package":"example.com/calc"}
{"Action":"run","Package":"example.com/calc","Test":"TestAdd"}
{"Action":"output","Package":"example.com/calc","Test":"TestAdd","Output":"=== RUN   TestAdd\n"}
{"Action":"pass","Package":"example.com/calc","Test":"TestAdd","Elapsed":0}
{"Action":"run","Package":"example.com/calc","Test":"TestSub"}
{"Action":"output","Package":"example.com/calc","Test":"TestSub","Output":"    calc_test.go:12: got 4, want 5\n"}
{"Action":"fail","Package":"example.com/calc","Test":"TestSub","Elapsed":0.01}
{"Action":"run","Package":"example.com/calc","Test":"TestTable/one"}
{"Action":"skip","Package":"example.com/calc","Test":"TestTable/one","Elapsed":0}
{"Action":"fail","Package":"example.com/calc","Elapsed":0.02}
"#;

    #[test]
    fn events_become_tests_with_locations() {
        let parsed = parse(EVENTS);
        assert_eq!(parsed.counts.passed, 1);
        assert_eq!(parsed.counts.failed, 1);
        assert_eq!(parsed.counts.skipped, 1);
        let failed = parsed.tests.iter().find(|t| t.name == "TestSub").unwrap();
        assert_eq!(failed.id, "example.com/calc::TestSub");
        assert_eq!(failed.file.as_deref(), Some("calc_test.go"));
        assert_eq!(failed.line, Some(12));
        assert_eq!(failed.message.as_deref(), Some("got 4, want 5"));
        assert!(parsed.problem.is_none());
    }

    #[test]
    fn plain_text_build_failure_of_older_go_is_a_compile_error() {
        let console = "# example.com/calc [example.com/calc.test]\n./calc_test.go:5:28: undefined: undefinedCall\nFAIL\texample.com/calc [build failed]\n";
        let (kind, reason) = parse(console).problem.unwrap();
        assert_eq!(kind, CouldNotRunKind::CompileError);
        assert_eq!(
            reason,
            "go package example.com/calc failed to build: ./calc_test.go:5:28: undefined: undefinedCall"
        );
    }

    #[test]
    fn build_failure_is_a_compile_error() {
        let events = r#"{"ImportPath":"example.com/calc","Action":"build-output","Output":"./calc.go:3:1: syntax error\n"}
{"Action":"output","Package":"example.com/calc","Output":"FAIL\texample.com/calc [build failed]\n"}
{"Action":"fail","Package":"example.com/calc","Elapsed":0,"FailedBuild":"example.com/calc"}
"#;
        let parsed = parse(events);
        assert_eq!(parsed.problem.unwrap().0, CouldNotRunKind::CompileError);
    }
}
