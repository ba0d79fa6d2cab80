//! `agentd test [PATH] [--json]`: run a project's tests through the testrunner crate, the
//! same way the agents' runs are judged, and print the report.

use std::io::Write;
use std::path::PathBuf;

use agentd_testrunner::{
    LocalTestRunner, Outcome, RunOptions, TestReport, TestRunner, TestStatus, TestTarget,
    TestingSettings,
};

/// Arguments of `agentd test`.
#[derive(Debug, Clone, clap::Args)]
pub struct TestArgs {
    /// The project directory (default: `file_system.workspace_path` of the config, or `.`).
    pub path: Option<PathBuf>,
    /// Run only this test file (relative to the project).
    #[arg(long, value_name = "FILE", conflicts_with = "test")]
    pub file: Option<PathBuf>,
    /// Run only the test with this id, as the report names it.
    #[arg(long, value_name = "ID")]
    pub test: Option<String>,
    /// Print the whole report as JSON.
    #[arg(long)]
    pub json: bool,
}

/// Runs the suite and prints the report; returns whether it is green.
pub async fn run(
    settings: TestingSettings,
    default_path: PathBuf,
    args: &TestArgs,
    out: &mut dyn Write,
) -> anyhow::Result<bool> {
    let project = args.path.clone().unwrap_or(default_path);
    let runner = LocalTestRunner::new(settings)?;
    let options = RunOptions::default();
    let target = match (&args.file, &args.test) {
        (Some(file), _) => Some(TestTarget::File(file.clone())),
        (None, Some(id)) => Some(TestTarget::Id(id.clone())),
        (None, None) => None,
    };
    let report = match &target {
        Some(target) => runner.run_specific_test(&project, target, &options).await?,
        None => runner.run_tests(&project, &options).await?,
    };
    if args.json {
        writeln!(out, "{}", serde_json::to_string_pretty(&report)?)?;
    } else {
        out.write_all(render(&report).as_bytes())?;
    }
    Ok(report.is_green())
}

/// The report as a person reads it: a summary line, then each failure with its place and
/// message, then the reason when the suite could not run.
pub fn render(report: &TestReport) -> String {
    let counts = &report.counts;
    let mut parts = vec![
        format!("{} passed", counts.passed),
        format!("{} failed", counts.failed),
    ];
    for (n, label) in [
        (counts.errors, "errors"),
        (counts.skipped, "skipped"),
        (counts.xfailed, "xfailed"),
        (counts.xpassed, "xpassed"),
        (counts.todo, "todo"),
    ] {
        if n > 0 {
            parts.push(format!("{n} {label}"));
        }
    }
    let verdict = match &report.outcome {
        Outcome::Passed => "PASSED".to_owned(),
        Outcome::Failed => "FAILED".to_owned(),
        Outcome::CouldNotRun { kind, .. } => format!("COULD NOT RUN ({})", kind_name(*kind)),
    };
    let mut text = format!(
        "{}: {} ({} total) in {:.1}s: {verdict}\n  command: {}\n",
        report.framework,
        parts.join(", "),
        counts.total,
        report.duration_ms as f64 / 1000.0,
        report.command,
    );
    for case in report.failures() {
        let place = match (&case.file, case.line) {
            (Some(file), Some(line)) => format!(" ({file}:{line})"),
            (Some(file), None) => format!(" ({file})"),
            _ => String::new(),
        };
        let mark = if case.status == TestStatus::Error {
            "ERROR"
        } else {
            "FAIL "
        };
        let message = case
            .message
            .as_deref()
            .unwrap_or("")
            .lines()
            .next()
            .unwrap_or("");
        text.push_str(&format!("  {mark} {}{place}: {message}\n", case.name));
    }
    if let Some((_, reason)) = report.could_not_run() {
        text.push_str(&format!("  reason: {reason}\n"));
    }
    text
}

fn kind_name(kind: agentd_testrunner::CouldNotRunKind) -> String {
    serde_json::to_value(kind)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_else(|| format!("{kind:?}"))
}

#[cfg(test)]
mod tests {
    use agentd_testrunner::{ChildExit, Framework, ResultSource, parsers};

    use super::*;

    fn report_from_fixture() -> TestReport {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/fixtures");
        let stdout = std::fs::read_to_string(format!("{dir}/cargo_test_failures.stdout")).unwrap();
        let stderr = std::fs::read_to_string(format!("{dir}/cargo_test_failures.stderr")).unwrap();
        let parsed = parsers::cargo_text(&format!("{stderr}\n{stdout}"));
        TestReport {
            framework: Framework::Cargo,
            command: "cargo test --no-fail-fast".into(),
            outcome: Outcome::Failed,
            counts: parsed.counts,
            tests: parsed.tests,
            duration_ms: 1234,
            source: ResultSource::CargoText,
            exit: ChildExit {
                code: Some(101),
                signal: None,
                timed_out: false,
            },
            output: String::new(),
            output_truncated_bytes: 0,
        }
    }

    #[test]
    fn renders_the_cargo_fixture() {
        insta::assert_snapshot!(render(&report_from_fixture()));
    }

    #[test]
    fn renders_could_not_run_with_its_reason() {
        let mut report = report_from_fixture();
        report.tests.clear();
        report.counts = Default::default();
        report.outcome = Outcome::CouldNotRun {
            kind: agentd_testrunner::CouldNotRunKind::CompileError,
            reason: "error[E0425]: cannot find value `x` in this scope".into(),
        };
        insta::assert_snapshot!(render(&report));
    }
}
