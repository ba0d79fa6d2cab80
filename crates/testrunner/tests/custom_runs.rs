//! `framework: custom`: a shell command with a declared result format.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use agentd_testrunner::{
    CouldNotRunKind, FrameworkChoice, LocalTestRunner, Outcome, ResultFormat, ResultSource,
    RunOptions, TestRunner, TestStatus, TestTarget, TestingSettings,
};
use common::project;

fn custom(command: &str, format: ResultFormat, path: Option<&str>) -> LocalTestRunner {
    LocalTestRunner::new(TestingSettings {
        framework: FrameworkChoice::Custom,
        command: Some(command.to_owned()),
        result_format: Some(format),
        result_path: path.map(str::to_owned),
        ..TestingSettings::default()
    })
    .unwrap()
}

const JUNIT: &str = r#"<?xml version="1.0"?>
<testsuites><testsuite name="suite" tests="3">
  <testcase classname="math" name="adds" time="0.010"/>
  <testcase classname="math" name="divides" file="math/div.c" time="0.020">
    <failure message="expected 2 &lt; 1" type="assert">div.c:12: expected 2 &lt; 1</failure>
  </testcase>
  <testcase classname="math" name="later"><skipped/></testcase>
</testsuite></testsuites>
"#;

#[tokio::test]
async fn junit_file_written_by_the_command() {
    let dir = project(&[("fixture.xml", JUNIT)]);
    let runner = custom(
        "mkdir -p out && cp fixture.xml out/junit.xml && exit 1",
        ResultFormat::Junit,
        Some("out/junit.xml"),
    );
    let report = runner
        .run_tests(dir.path(), &RunOptions::default())
        .await
        .unwrap();
    assert_eq!(report.outcome, Outcome::Failed, "{}", report.output);
    assert_eq!(report.source, ResultSource::JunitXml);
    let c = report.counts;
    assert_eq!((c.passed, c.failed, c.skipped), (1, 1, 1));
    let failed = report.test("math.divides").unwrap();
    assert_eq!(failed.status, TestStatus::Failed);
    assert_eq!(failed.message.as_deref(), Some("expected 2 < 1"));
    assert_eq!(failed.file.as_deref(), Some("math/div.c"));
}

#[tokio::test]
async fn a_stale_result_file_is_never_read() {
    // The command fails before writing results; an old file from an earlier run must not count.
    let dir = project(&[("out/junit.xml", JUNIT)]);
    let runner = custom(
        "echo 'make: *** no rule' >&2; exit 2",
        ResultFormat::Junit,
        Some("out/junit.xml"),
    );
    let report = runner
        .run_tests(dir.path(), &RunOptions::default())
        .await
        .unwrap();
    let (kind, reason) = report.could_not_run().unwrap();
    assert_eq!(kind, CouldNotRunKind::RunnerError);
    assert!(reason.contains("no rule"), "{reason}");
    assert_eq!(report.counts.total, 0);
}

#[tokio::test]
async fn go_json_on_the_console_and_the_target_as_first_argument() {
    let events = r#"{"Action":"run","Package":"m","Test":"TestA"}
{"Action":"pass","Package":"m","Test":"TestA","Elapsed":0.01}
{"Action":"pass","Package":"m","Elapsed":0.02}"#;
    let dir = project(&[("events.json", events)]);
    let runner = custom(
        "test \"$1\" = m::TestA && cat events.json",
        ResultFormat::GoJson,
        None,
    );
    let report = runner
        .run_specific_test(
            dir.path(),
            &TestTarget::Id("m::TestA".into()),
            &RunOptions::default(),
        )
        .await
        .unwrap();
    assert_eq!(report.outcome, Outcome::Passed, "{}", report.output);
    assert_eq!(report.test("m::TestA").unwrap().status, TestStatus::Passed);
}

#[tokio::test]
async fn jest_json_file_written_by_the_command() {
    let json = r#"{"numRuntimeErrorTestSuites":0,"testResults":[{"name":"/x/a.test.js","status":"passed","message":"","assertionResults":[{"fullName":"a works","status":"passed","duration":2,"failureMessages":[]},{"fullName":"a later","status":"todo","failureMessages":[]}]}]}"#;
    let dir = project(&[("r.json", json)]);
    let runner = custom(
        "cp r.json results.json",
        ResultFormat::JestJson,
        Some("results.json"),
    );
    let report = runner
        .run_tests(dir.path(), &RunOptions::default())
        .await
        .unwrap();
    assert_eq!(report.outcome, Outcome::Passed, "{}", report.output);
    assert_eq!((report.counts.passed, report.counts.todo), (1, 1));
}
