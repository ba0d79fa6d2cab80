//! jest through the runner (skipped with a reason when jest is absent, failing in CI).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use agentd_testrunner::{
    CouldNotRunKind, FrameworkChoice, Outcome, ResultSource, RunOptions, TestRunner, TestStatus,
    TestTarget,
};
use common::{project, require, runner, view};

const SUM_TEST: &str = r#"const sum = (a, b) => a + b;
describe('sum', () => {
  test('adds', () => { expect(sum(1, 2)).toBe(3); });
  test('wrong', () => { expect(sum(2, 2)).toBe(5); });
  test.skip('skipped', () => {});
  test.todo('later');
});
"#;

// The project's own script and flags: `--testPathIgnorePatterns ignored` must stay in force.
const PACKAGE: &str = r#"{"name":"demo","version":"1.0.0","scripts":{"test":"jest --testPathIgnorePatterns ignored"}}"#;

#[tokio::test]
async fn statuses_through_the_projects_test_script() {
    if !require("jest") {
        return;
    }
    let dir = project(&[
        ("package.json", PACKAGE),
        ("sum.test.js", SUM_TEST),
        (
            "ignored/never.test.js",
            "test('never', () => { throw new Error('ran'); });\n",
        ),
    ]);
    let report = runner(FrameworkChoice::Auto)
        .run_tests(dir.path(), &RunOptions::default())
        .await
        .unwrap();
    assert_eq!(report.outcome, Outcome::Failed, "{}", report.output);
    assert_eq!(report.source, ResultSource::JestJson);
    let c = report.counts;
    assert_eq!(
        (c.passed, c.failed, c.skipped, c.todo, c.total),
        (1, 1, 1, 1, 4)
    );
    let failed = report.test("sum.test.js::sum wrong").unwrap();
    assert_eq!(failed.line, Some(4));
    assert!(
        report.command.starts_with("npm test --"),
        "{}",
        report.command
    );
    insta::assert_json_snapshot!("jest_statuses", view(&report));
}

#[tokio::test]
async fn one_test_id_round_trips() {
    if !require("jest") {
        return;
    }
    let dir = project(&[("package.json", PACKAGE), ("sum.test.js", SUM_TEST)]);
    let report = runner(FrameworkChoice::Jest)
        .run_specific_test(
            dir.path(),
            &TestTarget::Id("sum.test.js::sum adds".into()),
            &RunOptions::default(),
        )
        .await
        .unwrap();
    assert_eq!(
        report.test("sum.test.js::sum adds").unwrap().status,
        TestStatus::Passed
    );
    assert_eq!(report.counts.passed, 1, "{}", report.output);
    assert_eq!(report.counts.failed, 0);
}

#[tokio::test]
async fn a_suite_that_fails_to_load_could_not_run() {
    if !require("jest") {
        return;
    }
    let dir = project(&[
        ("package.json", PACKAGE),
        ("sum.test.js", SUM_TEST),
        ("broken.test.js", "const x = ;\n"),
    ]);
    let report = runner(FrameworkChoice::Auto)
        .run_tests(dir.path(), &RunOptions::default())
        .await
        .unwrap();
    let (kind, reason) = report.could_not_run().unwrap();
    assert_eq!(kind, CouldNotRunKind::CollectionError, "{}", report.output);
    assert!(reason.contains("broken.test.js"), "{reason}");
}

#[tokio::test]
async fn no_tests_could_not_run() {
    if !require("jest") {
        return;
    }
    let dir = project(&[(
        "package.json",
        r#"{"name":"demo","devDependencies":{"jest":"29"}}"#,
    )]);
    let report = runner(FrameworkChoice::Auto)
        .run_tests(dir.path(), &RunOptions::default())
        .await
        .unwrap();
    assert_eq!(
        report.could_not_run().map(|(k, _)| k),
        Some(CouldNotRunKind::NoTestsFound),
        "{}",
        report.output
    );
}
