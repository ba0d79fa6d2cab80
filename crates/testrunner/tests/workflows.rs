//! The flaky check and the tests-first gate, on real cargo crates.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use agentd_testrunner::{
    FrameworkChoice, NewTests, Outcome, TestRunner, TestStatus, check_flaky, tests_first_gate,
};
use common::{cargo_options, cargo_project, runner};

#[tokio::test]
async fn flaky_tests_are_the_ones_that_flip() {
    let lib = r#"
#[cfg(test)]
mod tests {
    #[test]
    fn fails_first_time_only() {
        let marker = concat!(env!("CARGO_MANIFEST_DIR"), "/ran-once");
        if std::fs::metadata(marker).is_err() {
            std::fs::write(marker, "").unwrap();
            panic!("first run fails");
        }
    }

    #[test]
    fn always_fails() {
        assert_eq!(1, 2);
    }

    #[test]
    fn passes() {}
}
"#;
    let project = cargo_project(lib, &[]);
    let target = tempfile::tempdir().unwrap();
    let options = cargo_options(target.path());
    let runner = runner(FrameworkChoice::Cargo);
    let report = runner.run_tests(project.path(), &options).await.unwrap();
    assert_eq!(report.counts.failed, 2, "{}", report.output);
    let check = check_flaky(&runner, project.path(), &report, 2, &options)
        .await
        .unwrap();
    assert_eq!(
        check.flaky_ids().collect::<Vec<_>>(),
        ["tests::fails_first_time_only"]
    );
    let steady = check
        .tests
        .iter()
        .find(|t| t.id == "tests::always_fails")
        .unwrap();
    assert_eq!(
        steady.reruns,
        [Some(TestStatus::Failed), Some(TestStatus::Failed)]
    );
    assert!(!steady.flaky);
}

const BASE_LIB: &str = "pub fn add(a: i32, b: i32) -> i32 {\n    a + b\n}\n";
const HEAD_LIB: &str = "pub fn add(a: i32, b: i32) -> i32 {\n    a + b\n}\n\npub fn mul(a: i32, b: i32) -> i32 {\n    a * b\n}\n";
const EXISTING: &str = r#"
#[test]
fn adds() {
    assert_eq!(demo::add(1, 2), 3);
    assert_eq!(demo::add(0, 0), 0);
}

#[test]
fn adds_negative() {
    assert_eq!(demo::add(-1, -2), -3);
}
"#;
const NEW: &str = r#"
#[test]
fn multiplies() {
    assert_eq!(demo::mul(3, 4), 12);
}
"#;

#[tokio::test]
async fn gate_passes_when_new_tests_go_red_to_green_and_nothing_is_weakened() {
    let base = cargo_project(BASE_LIB, &[("tests/existing.rs", EXISTING)]);
    let head = cargo_project(
        HEAD_LIB,
        &[("tests/existing.rs", EXISTING), ("tests/new.rs", NEW)],
    );
    let target = tempfile::tempdir().unwrap();
    let new_tests = NewTests {
        files: vec!["tests/new.rs".into()],
        ids: Vec::new(),
    };
    let report = tests_first_gate(
        &runner(FrameworkChoice::Cargo),
        base.path(),
        head.path(),
        &new_tests,
        &cargo_options(target.path()),
    )
    .await
    .unwrap();
    assert!(report.passed, "{:#?}", report.problems);
    assert_eq!(report.new_tests.len(), 1);
    let verdict = &report.new_tests[0];
    assert_eq!(verdict.id, "multiplies");
    // On the base the new test does not even compile: that counts as failing.
    assert!(
        verdict
            .base_build_failure
            .as_deref()
            .unwrap()
            .contains("mul"),
        "{verdict:?}"
    );
    assert_eq!(verdict.on_head, Some(TestStatus::Passed));
    assert_eq!(report.head_outcome, Outcome::Passed);
    // The base was put back as it was.
    assert!(!base.path().join("tests/new.rs").exists());
}

#[tokio::test]
async fn gate_fails_on_dropped_skipped_and_weakened_tests_and_on_a_new_test_that_already_passes() {
    let base = cargo_project(BASE_LIB, &[("tests/existing.rs", EXISTING)]);
    let weakened = r#"
#[test]
#[ignore]
fn adds() {
    assert_eq!(demo::add(1, 2), 3);
}
"#;
    let already_passing =
        "#[test]\nfn add_still_works() {\n    assert_eq!(demo::add(2, 2), 4);\n}\n";
    let head = cargo_project(
        HEAD_LIB,
        &[
            ("tests/existing.rs", weakened),
            ("tests/new.rs", already_passing),
        ],
    );
    let target = tempfile::tempdir().unwrap();
    let new_tests = NewTests {
        files: vec!["tests/new.rs".into()],
        ids: Vec::new(),
    };
    let report = tests_first_gate(
        &runner(FrameworkChoice::Cargo),
        base.path(),
        head.path(),
        &new_tests,
        &cargo_options(target.path()),
    )
    .await
    .unwrap();
    assert!(!report.passed);
    assert_eq!(report.dropped_tests, ["adds_negative"]);
    assert_eq!(report.newly_skipped, ["adds"]);
    assert_eq!(report.weakened_files.len(), 1);
    assert_eq!(report.weakened_files[0].file, "tests/existing.rs");
    assert_eq!(
        (
            report.weakened_files[0].assertions_before,
            report.weakened_files[0].assertions_after
        ),
        (3, Some(1))
    );
    let verdict = &report.new_tests[0];
    assert_eq!(verdict.on_base, Some(TestStatus::Passed));
    assert!(!verdict.fails_on_base);
    insta::assert_json_snapshot!("gate_failures", report.problems);
}

#[test]
fn new_test_files_must_exist_on_the_head() {
    let base = cargo_project(BASE_LIB, &[]);
    let head = cargo_project(HEAD_LIB, &[]);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let target = tempfile::tempdir().unwrap();
    let new_tests = NewTests {
        files: vec!["tests/missing.rs".into()],
        ids: Vec::new(),
    };
    let err = rt
        .block_on(tests_first_gate(
            &runner(FrameworkChoice::Cargo),
            base.path(),
            head.path(),
            &new_tests,
            &cargo_options(target.path()),
        ))
        .unwrap_err();
    assert!(err.to_string().contains("tests/missing.rs"), "{err}");
}
