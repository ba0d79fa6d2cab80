//! The `testing` config section, and the mock for callers' unit tests.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;

use agentd_testrunner::{
    ChildExit, FrameworkChoice, LocalTestRunner, MockTestRunner, Outcome, ResultFormat,
    ResultSource, TestCase, TestCounts, TestReport, TestRunnerError, TestStatus, TestingSettings,
    check_flaky,
};

#[test]
fn testing_section_from_yaml() {
    let yaml = r#"
framework: custom
auto_run: false
timeout: 120
command: "make check"
result_format: junit
result_path: build/junit.xml
limits:
  cpu_seconds: 60
  memory_bytes: null
  max_processes: 4096
"#;
    let settings: TestingSettings = serde_norway::from_str(yaml).unwrap();
    assert_eq!(settings.framework, FrameworkChoice::Custom);
    assert_eq!(settings.result_format, Some(ResultFormat::Junit));
    assert_eq!(settings.limits.cpu_seconds, Some(60));
    assert_eq!(settings.limits.memory_bytes, None);
    // Unset keys keep their defaults.
    assert_eq!(
        settings.limits.file_size_bytes,
        Some(4 * 1024 * 1024 * 1024)
    );
    assert!(LocalTestRunner::new(settings).is_ok());
}

#[test]
fn unknown_keys_are_errors_that_name_the_key() {
    let err =
        serde_norway::from_str::<TestingSettings>("framework: auto\ntimout: 5\n").unwrap_err();
    assert!(err.to_string().contains("timout"), "{err}");
    let err = serde_norway::from_str::<TestingSettings>("limits:\n  cpu: 5\n").unwrap_err();
    assert!(err.to_string().contains("cpu"), "{err}");
    let err = serde_norway::from_str::<TestingSettings>("framework: mocha\n").unwrap_err();
    assert!(err.to_string().contains("mocha"), "{err}");
}

#[test]
fn defaults_snapshot() {
    insta::assert_yaml_snapshot!("testing_defaults", TestingSettings::default());
}

#[test]
fn custom_without_its_keys_is_refused_at_construction() {
    let err = LocalTestRunner::new(TestingSettings {
        framework: FrameworkChoice::Custom,
        ..TestingSettings::default()
    })
    .unwrap_err();
    assert!(matches!(err, TestRunnerError::InvalidSetting { ref key, .. } if key == "command"));
    let err = LocalTestRunner::new(TestingSettings {
        command: Some("make".into()),
        ..TestingSettings::default()
    })
    .unwrap_err();
    assert!(matches!(err, TestRunnerError::InvalidSetting { ref key, .. } if key == "command"));
}

fn report_with(status: TestStatus) -> TestReport {
    let tests = vec![TestCase {
        id: "t".into(),
        name: "t".into(),
        file: None,
        line: None,
        status,
        duration_ms: None,
        message: None,
        output: None,
    }];
    TestReport {
        framework: agentd_testrunner::Framework::Cargo,
        command: "cargo test".into(),
        outcome: if status == TestStatus::Passed {
            Outcome::Passed
        } else {
            Outcome::Failed
        },
        counts: TestCounts::from_tests(&tests),
        tests,
        duration_ms: 1,
        source: ResultSource::CargoText,
        exit: ChildExit::default(),
        output: String::new(),
        output_truncated_bytes: 0,
    }
}

#[tokio::test]
async fn flaky_check_against_the_mock() {
    let mut mock = MockTestRunner::new();
    let mut calls = 0;
    mock.expect_run_specific_test()
        .times(3)
        .returning(move |_, _, _| {
            calls += 1;
            Ok(report_with(if calls == 2 {
                TestStatus::Passed
            } else {
                TestStatus::Failed
            }))
        });
    let first = report_with(TestStatus::Failed);
    let check = check_flaky(&mock, Path::new("/p"), &first, 3, &Default::default())
        .await
        .unwrap();
    assert_eq!(
        check.tests[0].reruns,
        [
            Some(TestStatus::Failed),
            Some(TestStatus::Passed),
            Some(TestStatus::Failed)
        ]
    );
    assert!(check.tests[0].flaky);
}

#[tokio::test]
async fn missing_directory_and_unknown_project_are_errors() {
    use agentd_testrunner::TestRunner;
    let runner = LocalTestRunner::new(TestingSettings::default()).unwrap();
    let missing = Path::new("/nonexistent/agentd/project");
    let err = runner
        .run_tests(missing, &Default::default())
        .await
        .unwrap_err();
    assert!(matches!(err, TestRunnerError::ProjectDirMissing { .. }));
    assert!(err.to_string().contains("/nonexistent/agentd/project"));
    let empty = tempfile::tempdir().unwrap();
    let err = runner.detect_framework(empty.path()).await.unwrap_err();
    assert!(matches!(err, TestRunnerError::NoFrameworkDetected { .. }));
}

#[tokio::test]
async fn flaky_check_skips_tests_that_cannot_run_alone() {
    let mut mock = MockTestRunner::new();
    mock.expect_run_specific_test()
        .times(2)
        .returning(|_, target, _| {
            Err(TestRunnerError::UnsupportedTarget {
                target: target.to_string(),
                framework: "jest".into(),
                reason: "not a test id".into(),
            })
        });
    let first = report_with(TestStatus::Error);
    let check = check_flaky(&mock, Path::new("/p"), &first, 2, &Default::default())
        .await
        .unwrap();
    assert_eq!(check.tests[0].reruns, [None, None]);
    assert!(!check.tests[0].flaky);
}
