//! Parsers on real runner outputs: the shared fixtures (`shared/fixtures/`, beside the
//! repository) and this crate's own captures (`tests/fixtures/`).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};

use agentd_testrunner::parsers::{self, ParsedResults};
use agentd_testrunner::{CouldNotRunKind, TestStatus};

fn shared(name: &str) -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/fixtures")
        .join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn own(name: &str) -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn view(parsed: &ParsedResults) -> serde_json::Value {
    serde_json::json!({
        "counts": parsed.counts,
        "problem": parsed.problem,
        "tests": parsed.tests,
    })
}

#[test]
fn pytest_junit_fixture() {
    let parsed =
        parsers::pytest_junit(&shared("pytest_junit.xml"), Path::new("/home/dev/pydemo")).unwrap();
    let c = parsed.counts;
    // pytest's own line: 1 failed, 1 passed, 1 skipped, 1 xfailed, 1 error
    assert_eq!(
        (c.failed, c.passed, c.skipped, c.xfailed, c.errors, c.total),
        (1, 1, 1, 1, 1, 5)
    );
    let failed = parsed
        .tests
        .iter()
        .find(|t| t.status == TestStatus::Failed)
        .unwrap();
    assert_eq!(failed.id, "test_calc.py::test_add_fails");
    assert_eq!(
        (failed.file.as_deref(), failed.line),
        (Some("test_calc.py"), Some(10))
    );
    assert!(
        failed
            .output
            .as_deref()
            .unwrap()
            .contains(">       assert add(2, 2) == 5")
    );
    insta::assert_json_snapshot!("pytest_junit_fixture", view(&parsed));
}

#[test]
fn pytest_console_fixture() {
    let parsed = parsers::pytest_console(&shared("pytest_console.txt"));
    let c = parsed.counts;
    assert_eq!(
        (c.failed, c.passed, c.skipped, c.xfailed, c.errors),
        (1, 1, 1, 1, 1)
    );
    insta::assert_json_snapshot!("pytest_console_fixture", view(&parsed));
}

#[test]
fn pytest_subtests_xfail_xpass_capture() {
    let parsed =
        parsers::pytest_junit(&own("pytest_more_junit.xml"), Path::new("/tmp/cap/py")).unwrap();
    let class_test = parsed.tests.iter().find(|t| t.name == "test_bad").unwrap();
    assert_eq!(class_test.id, "test_more.py::TestMath::test_bad");
    let strict = parsed
        .tests
        .iter()
        .find(|t| t.name == "test_xpass_strict")
        .unwrap();
    assert_eq!(strict.status, TestStatus::Failed);
    let subtests = parsed
        .tests
        .iter()
        .find(|t| t.name == "test_subtests")
        .unwrap();
    assert_eq!(subtests.message.as_deref(), Some("assert 1 != 1"));
    insta::assert_json_snapshot!("pytest_more_junit", view(&parsed));
    // The console of the same run is pytest's truth; it counts the failed subtest and the xpass.
    let console = parsers::pytest_console(&own("pytest_more_console.txt"));
    let c = console.counts;
    assert_eq!(
        (c.failed, c.passed, c.skipped, c.xfailed, c.xpassed),
        (4, 1, 1, 1, 1)
    );
}

#[test]
fn pytest_collection_error_capture() {
    let parsed = parsers::pytest_junit(
        &own("pytest_collection_junit.xml"),
        Path::new("/tmp/cap/pycoll"),
    )
    .unwrap();
    let (kind, reason) = parsed.problem.clone().unwrap();
    assert_eq!(kind, CouldNotRunKind::CollectionError);
    assert_eq!(
        reason,
        "pytest could not collect test_broken.py: ModuleNotFoundError: No module named 'nonexistent_module'"
    );
    let console = parsers::pytest_console(&own("pytest_collection_console.txt"));
    assert_eq!(console.problem.unwrap().0, CouldNotRunKind::CollectionError);
}

#[test]
fn jest_json_fixture() {
    let parsed = parsers::jest_json(
        &shared("jest_results.json"),
        Path::new("/home/dev/jestdemo"),
    )
    .unwrap();
    let c = parsed.counts;
    assert_eq!(
        (c.passed, c.failed, c.skipped, c.todo, c.total),
        (1, 1, 1, 1, 4)
    );
    let failed = parsed
        .tests
        .iter()
        .find(|t| t.status == TestStatus::Failed)
        .unwrap();
    assert_eq!(failed.id, "sum.test.js::sum adds 2 + 2 to equal 5");
    assert_eq!(failed.line, Some(4));
    assert!(parsed.problem.is_none());
    insta::assert_json_snapshot!("jest_json_fixture", view(&parsed));
}

#[test]
fn jest_suite_that_failed_to_run_capture() {
    let parsed = parsers::jest_json(&own("jest_broken.json"), Path::new("/tmp/cap/js")).unwrap();
    let (kind, reason) = parsed.problem.clone().unwrap();
    assert_eq!(kind, CouldNotRunKind::CollectionError);
    assert_eq!(reason, "jest could not run test suite broken.test.js");
    insta::assert_json_snapshot!("jest_broken", view(&parsed));
}

#[test]
fn cargo_text_fixture() {
    // The runner reads stdout and stderr through one pipe; the fixture has them apart.
    let console = format!(
        "{}\n{}",
        shared("cargo_test_failures.stderr"),
        shared("cargo_test_failures.stdout")
    );
    let parsed = parsers::cargo_text(&console);
    let c = parsed.counts;
    // libtest's own line: 1 passed; 3 failed; 1 ignored
    assert_eq!((c.passed, c.failed, c.skipped, c.total), (1, 3, 1, 5));
    let unwrap_failure = parsed
        .tests
        .iter()
        .find(|t| t.id == "tests::prints_then_fails")
        .unwrap();
    assert_eq!(unwrap_failure.line, Some(32));
    assert!(
        unwrap_failure
            .output
            .as_deref()
            .unwrap()
            .starts_with("stdout from test")
    );
    insta::assert_json_snapshot!("cargo_text_fixture", view(&parsed));
}

#[test]
fn nextest_junit_fixture() {
    let parsed = parsers::nextest_junit(&shared("nextest_junit.xml")).unwrap();
    let c = parsed.counts;
    assert_eq!((c.passed, c.failed, c.total), (1, 3, 4));
    let failed = parsed
        .tests
        .iter()
        .find(|t| t.id == "tests::it_fails")
        .unwrap();
    assert_eq!(
        (failed.file.as_deref(), failed.line),
        (Some("src/lib.rs"), Some(16))
    );
    assert_eq!(
        failed.message.as_deref(),
        Some("assertion `left == right` failed\n  left: 4\n right: 5")
    );
    // Entity references (&apos;) survive in the traceback.
    assert!(
        failed
            .output
            .as_deref()
            .unwrap()
            .contains("thread 'tests::it_fails'")
    );
    insta::assert_json_snapshot!("nextest_junit_fixture", view(&parsed));
}

#[test]
fn nextest_console_fixture() {
    let parsed = parsers::nextest_console(&shared("nextest_console.txt"));
    let c = parsed.counts;
    // nextest's own line: 4 tests run: 1 passed, 3 failed, 1 skipped
    assert_eq!((c.passed, c.failed, c.skipped, c.total), (1, 3, 1, 5));
    assert_eq!(parsed.tests.len(), 4);
    insta::assert_json_snapshot!("nextest_console_fixture", view(&parsed));
}

#[test]
fn junit_is_rejected_when_malformed() {
    assert!(parsers::junit("<testsuites><testcase name='a'></testsuites>").is_err());
}
