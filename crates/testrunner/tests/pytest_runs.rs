//! pytest through the runner (skipped with a reason when pytest is absent, failing in CI).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use agentd_testrunner::{
    CouldNotRunKind, FrameworkChoice, Outcome, ResultSource, RunOptions, TestRunner, TestStatus,
    TestTarget,
};
use common::{project, require, runner, view};

const TESTS: &str = r#"
import pytest

def add(a, b):
    return a + b

def test_passes():
    assert add(1, 2) == 3

def test_fails():
    assert add(2, 2) == 5

@pytest.fixture
def broken():
    raise RuntimeError("fixture setup failed")

def test_errors(broken):
    pass

@pytest.mark.skip(reason="not yet")
def test_skipped():
    pass

@pytest.mark.xfail(reason="known bug")
def test_xfail():
    assert add(1, 1) == 3

@pytest.mark.xfail(reason="fixed")
def test_xpass():
    assert add(1, 1) == 2

@pytest.mark.slow
def test_deselected_by_addopts():
    assert False
"#;

// The project's own options: `-m "not slow"` must stay in force.
const INI: &str = "[pytest]\naddopts = -m \"not slow\"\nmarkers =\n    slow: slow tests\n";

#[tokio::test]
async fn statuses_and_the_projects_addopts() {
    if !require("pytest") {
        return;
    }
    let dir = project(&[("pytest.ini", INI), ("tests/test_calc.py", TESTS)]);
    let report = runner(FrameworkChoice::Auto)
        .run_tests(dir.path(), &RunOptions::default())
        .await
        .unwrap();
    assert_eq!(report.outcome, Outcome::Failed, "{}", report.output);
    assert_eq!(report.source, ResultSource::JunitXml);
    let c = report.counts;
    assert_eq!(
        (
            c.passed, c.failed, c.errors, c.skipped, c.xfailed, c.xpassed, c.total
        ),
        (1, 1, 1, 1, 1, 1, 6),
        "{}",
        report.output
    );
    assert!(
        report
            .test("tests/test_calc.py::test_deselected_by_addopts")
            .is_none()
    );
    let failed = report.test("tests/test_calc.py::test_fails").unwrap();
    assert_eq!(failed.file.as_deref(), Some("tests/test_calc.py"));
    assert_eq!(failed.line, Some(11));
    insta::assert_json_snapshot!("pytest_statuses", view(&report));
}

#[tokio::test]
async fn one_test_id_round_trips() {
    if !require("pytest") {
        return;
    }
    let dir = project(&[("pytest.ini", INI), ("tests/test_calc.py", TESTS)]);
    let runner = runner(FrameworkChoice::Pytest);
    let id = "tests/test_calc.py::test_passes";
    let report = runner
        .run_specific_test(
            dir.path(),
            &TestTarget::Id(id.into()),
            &RunOptions::default(),
        )
        .await
        .unwrap();
    assert_eq!(report.outcome, Outcome::Passed, "{}", report.output);
    assert_eq!(report.tests.len(), 1);
    assert_eq!(report.test(id).unwrap().status, TestStatus::Passed);
}

#[tokio::test]
async fn collection_error_could_not_run() {
    if !require("pytest") {
        return;
    }
    let dir = project(&[
        ("test_ok.py", "def test_ok():\n    pass\n"),
        ("test_broken.py", "import no_such_module_xyz\n"),
    ]);
    let report = runner(FrameworkChoice::Auto)
        .run_tests(dir.path(), &RunOptions::default())
        .await
        .unwrap();
    let (kind, reason) = report.could_not_run().unwrap();
    assert_eq!(kind, CouldNotRunKind::CollectionError, "{}", report.output);
    assert!(reason.contains("no_such_module_xyz"), "{reason}");
}

#[tokio::test]
async fn no_tests_could_not_run() {
    if !require("pytest") {
        return;
    }
    let dir = project(&[("pytest.ini", "[pytest]\n"), ("test_empty.py", "x = 1\n")]);
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

#[tokio::test]
async fn console_fallback_when_the_junit_file_is_not_written() {
    if !require("pytest") {
        return;
    }
    // A conftest that kills the session before pytest writes its JUnit file.
    let conftest = "import os\nimport pytest\n\n@pytest.hookimpl(tryfirst=True)\ndef pytest_sessionfinish(session, exitstatus):\n    os._exit(1)\n";
    let dir = project(&[
        ("conftest.py", conftest),
        (
            "test_a.py",
            "def test_a():\n    assert 1 == 2\n\ndef test_b():\n    pass\n",
        ),
    ]);
    let report = runner(FrameworkChoice::Auto)
        .run_tests(dir.path(), &RunOptions::default())
        .await
        .unwrap();
    assert_eq!(
        report.source,
        ResultSource::PytestConsole,
        "{}",
        report.output
    );
    assert_eq!(
        report.could_not_run().map(|(k, _)| k),
        Some(CouldNotRunKind::RunnerError),
        "{}",
        report.output
    );
}

#[tokio::test]
async fn tests_first_gate_on_a_python_project() {
    if !require("pytest") {
        return;
    }
    let calc = "def add(a, b):\n    return a + b\n";
    let existing = "from calc import add\n\ndef test_add():\n    assert add(1, 2) == 3\n";
    let base = project(&[
        ("pytest.ini", "[pytest]\n"),
        ("calc.py", calc),
        ("test_calc.py", existing),
    ]);
    let head = project(&[
        ("pytest.ini", "[pytest]\n"),
        (
            "calc.py",
            "def add(a, b):\n    return a + b\n\ndef mul(a, b):\n    return a * b\n",
        ),
        ("test_calc.py", existing),
        (
            "test_mul.py",
            "from calc import mul\n\ndef test_mul():\n    assert mul(3, 4) == 12\n",
        ),
    ]);
    let new_tests = agentd_testrunner::NewTests {
        files: vec!["test_mul.py".into()],
        ids: Vec::new(),
    };
    let report = agentd_testrunner::tests_first_gate(
        &runner(FrameworkChoice::Pytest),
        base.path(),
        head.path(),
        &new_tests,
        &RunOptions::default(),
    )
    .await
    .unwrap();
    assert!(report.passed, "{:#?}", report.problems);
    let verdict = &report.new_tests[0];
    assert_eq!(verdict.id, "test_mul.py::test_mul");
    // `from calc import mul` fails on the base: a collection error, which counts as red.
    assert!(
        verdict
            .base_build_failure
            .as_deref()
            .unwrap()
            .contains("mul"),
        "{verdict:?}"
    );
}
