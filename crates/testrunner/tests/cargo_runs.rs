//! `cargo test` through the runner, on tiny dependency-free crates built in temp dirs.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use agentd_testrunner::{
    CouldNotRunKind, FrameworkChoice, Outcome, ResultSource, TestRunner, TestStatus, TestTarget,
};
use common::{cargo_options, cargo_project, runner, view};

const MIXED_LIB: &str = r#"
/// Adds two numbers.
///
/// ```
/// assert_eq!(demo::add(1, 2), 3);
/// ```
pub fn add(a: i32, b: i32) -> i32 {
    a + b
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn adds() {
        assert_eq!(add(2, 2), 4);
    }

    #[test]
    fn wrong_sum() {
        assert_eq!(add(2, 2), 5);
    }

    #[test]
    #[ignore = "slow"]
    fn slow() {}

    #[test]
    #[should_panic(expected = "boom")]
    fn panics_as_expected() {
        panic!("boom");
    }
}
"#;

const INTEGRATION: &str = r#"
#[test]
fn integration_fails() {
    let v: Result<(), &str> = Err("bad");
    v.unwrap();
}

#[test]
fn integration_passes() {}
"#;

#[tokio::test]
async fn every_binary_and_the_doctests_are_counted() {
    let project = cargo_project(MIXED_LIB, &[("tests/it.rs", INTEGRATION)]);
    let target = tempfile::tempdir().unwrap();
    let report = runner(FrameworkChoice::Auto)
        .run_tests(project.path(), &cargo_options(target.path()))
        .await
        .unwrap();
    assert_eq!(report.outcome, Outcome::Failed, "{}", report.output);
    assert_eq!(report.source, ResultSource::CargoText);
    // 4 unit tests + 2 integration tests + 1 doctest: the failing unit binary did not stop
    // cargo (--no-fail-fast).
    assert_eq!(report.counts.total, 7);
    assert_eq!(report.counts.passed, 4);
    assert_eq!(report.counts.failed, 2);
    assert_eq!(report.counts.skipped, 1);
    let failure = report.test("tests::wrong_sum").unwrap();
    assert_eq!(failure.file.as_deref(), Some("src/lib.rs"));
    assert!(failure.output.as_deref().unwrap().contains("left: 4"));
    insta::assert_json_snapshot!("cargo_mixed", view(&report));
}

#[tokio::test]
async fn one_test_id_and_one_file() {
    let project = cargo_project(MIXED_LIB, &[("tests/it.rs", INTEGRATION)]);
    let target = tempfile::tempdir().unwrap();
    let options = cargo_options(target.path());
    let runner = runner(FrameworkChoice::Cargo);
    let one = runner
        .run_specific_test(
            project.path(),
            &TestTarget::Id("tests::adds".into()),
            &options,
        )
        .await
        .unwrap();
    assert_eq!(one.outcome, Outcome::Passed, "{}", one.output);
    assert_eq!(one.counts.total, 1);
    let file = runner
        .run_specific_test(
            project.path(),
            &TestTarget::File("tests/it.rs".into()),
            &options,
        )
        .await
        .unwrap();
    assert_eq!(file.outcome, Outcome::Failed);
    assert_eq!(file.counts.total, 2);
    assert!(
        file.tests
            .iter()
            .all(|t| t.file.as_deref() == Some("tests/it.rs"))
    );
}

#[tokio::test]
async fn compile_error_could_not_run() {
    let project = cargo_project("pub fn f() -> i32 { missing_function() }\n", &[]);
    let target = tempfile::tempdir().unwrap();
    let report = runner(FrameworkChoice::Auto)
        .run_tests(project.path(), &cargo_options(target.path()))
        .await
        .unwrap();
    let (kind, reason) = report.could_not_run().unwrap();
    assert_eq!(kind, CouldNotRunKind::CompileError, "{}", report.output);
    assert!(reason.contains("missing_function"), "{reason}");
    assert!(!report.is_green());
}

#[tokio::test]
async fn no_tests_is_not_green() {
    let project = cargo_project("pub fn f() -> i32 { 1 }\n", &[]);
    let target = tempfile::tempdir().unwrap();
    let report = runner(FrameworkChoice::Auto)
        .run_tests(project.path(), &cargo_options(target.path()))
        .await
        .unwrap();
    assert_eq!(
        report.could_not_run().map(|(k, _)| k),
        Some(CouldNotRunKind::NoTestsFound),
        "{}",
        report.output
    );
}

#[tokio::test]
async fn a_crashing_test_binary_is_a_crash() {
    let lib = r#"
#[cfg(test)]
mod tests {
    #[test]
    fn aborts() {
        std::process::abort();
    }
}
"#;
    let project = cargo_project(lib, &[]);
    let target = tempfile::tempdir().unwrap();
    let report = runner(FrameworkChoice::Auto)
        .run_tests(project.path(), &cargo_options(target.path()))
        .await
        .unwrap();
    let (kind, reason) = report.could_not_run().unwrap();
    assert_eq!(kind, CouldNotRunKind::Crashed, "{}", report.output);
    assert!(reason.contains("SIGABRT"), "{reason}");
}

#[tokio::test]
async fn missing_runner_could_not_run() {
    let project = cargo_project("pub fn f() {}\n", &[]);
    let empty_path = tempfile::tempdir().unwrap();
    let mut options = cargo_options(empty_path.path());
    options
        .env
        .insert("PATH".to_owned(), empty_path.path().display().to_string());
    let report = runner(FrameworkChoice::Auto)
        .run_tests(project.path(), &options)
        .await
        .unwrap();
    assert_eq!(
        report.could_not_run().map(|(k, _)| k),
        Some(CouldNotRunKind::RunnerMissing)
    );
}

#[tokio::test]
async fn nextest_junit_plus_doctests_when_installed() {
    if !common::require_optional("cargo-nextest") {
        return;
    }
    let project = cargo_project(MIXED_LIB, &[("tests/it.rs", INTEGRATION)]);
    let target = tempfile::tempdir().unwrap();
    let runner = agentd_testrunner::LocalTestRunner::new(agentd_testrunner::TestingSettings {
        cargo_runner: agentd_testrunner::CargoRunner::Nextest,
        ..agentd_testrunner::TestingSettings::default()
    })
    .unwrap();
    let report = runner
        .run_tests(project.path(), &cargo_options(target.path()))
        .await
        .unwrap();
    assert_eq!(report.outcome, Outcome::Failed, "{}", report.output);
    assert_eq!(report.source, ResultSource::JunitXml);
    // The same truth as `cargo test`: nextest's 6 (one ignored, counted from its summary)
    // plus the doctest.
    assert_eq!(report.counts.total, 7, "{:?}", report.counts);
    assert_eq!(report.counts.failed, 2);
    assert_eq!(report.counts.skipped, 1);
    let doctest = report
        .tests
        .iter()
        .find(|t| t.id.contains("(line "))
        .unwrap();
    assert_eq!(doctest.status, TestStatus::Passed);
    let failure = report.test("integration_fails").unwrap();
    assert_eq!(failure.file.as_deref(), Some("tests/it.rs"));
}

#[tokio::test]
async fn nextest_compile_error_could_not_run() {
    if !common::require_optional("cargo-nextest") {
        return;
    }
    let project = cargo_project("pub fn f() -> i32 { missing_function() }\n", &[]);
    let target = tempfile::tempdir().unwrap();
    let runner = agentd_testrunner::LocalTestRunner::new(agentd_testrunner::TestingSettings {
        cargo_runner: agentd_testrunner::CargoRunner::Nextest,
        ..agentd_testrunner::TestingSettings::default()
    })
    .unwrap();
    let report = runner
        .run_tests(project.path(), &cargo_options(target.path()))
        .await
        .unwrap();
    assert_eq!(
        report.could_not_run().map(|(k, _)| k),
        Some(CouldNotRunKind::CompileError),
        "{}",
        report.output
    );
}
