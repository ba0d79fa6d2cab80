//! `go test` through the runner, when Go is installed (optional everywhere, CI included).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use agentd_testrunner::{CouldNotRunKind, FrameworkChoice, Outcome, RunOptions, TestRunner};
use common::{project, require_optional, runner};

const CALC_TEST: &str = r#"package calc

import (
	"fmt"
	"testing"
)

func TestAdd(t *testing.T) {
	if 1+2 != 3 {
		t.Fatal("math")
	}
}

func TestWrong(t *testing.T) {
	if got := 2 + 2; got != 5 {
		t.Errorf("got %d, want 5", got)
	}
}

func TestSkipped(t *testing.T) {
	t.Skip("later")
}

func TestTable(t *testing.T) {
	for _, n := range []int{1, 2} {
		t.Run(fmt.Sprintf("n%d", n), func(t *testing.T) {
			if n == 2 {
				t.Errorf("n is %d", n)
			}
		})
	}
}
"#;

#[tokio::test]
async fn statuses_from_go_test_json() {
    if !require_optional("go") {
        return;
    }
    let dir = project(&[
        ("go.mod", "module example.com/calc\n\ngo 1.21\n"),
        ("calc_test.go", CALC_TEST),
    ]);
    let report = runner(FrameworkChoice::Auto)
        .run_tests(dir.path(), &RunOptions::default())
        .await
        .unwrap();
    assert_eq!(report.outcome, Outcome::Failed, "{}", report.output);
    let c = report.counts;
    // Subtests count as tests, as go reports them: TestTable (failed), n1, n2.
    assert_eq!(
        (c.passed, c.failed, c.skipped),
        (2, 3, 1),
        "{}",
        report.output
    );
    let failed = report.test("example.com/calc::TestWrong").unwrap();
    assert_eq!(failed.message.as_deref(), Some("got 4, want 5"));
    assert_eq!(
        report
            .test("example.com/calc::TestTable/n2")
            .unwrap()
            .status,
        agentd_testrunner::TestStatus::Failed
    );

    let one = runner(FrameworkChoice::Go)
        .run_specific_test(
            dir.path(),
            &agentd_testrunner::TestTarget::Id("example.com/calc::TestTable/n1".into()),
            &RunOptions::default(),
        )
        .await
        .unwrap();
    assert_eq!(one.outcome, Outcome::Passed, "{}", one.output);
    assert!(one.test("example.com/calc::TestTable/n1").is_some());
    assert!(one.test("example.com/calc::TestTable/n2").is_none());
}

#[tokio::test]
async fn build_failure_could_not_run() {
    if !require_optional("go") {
        return;
    }
    let dir = project(&[
        ("go.mod", "module example.com/calc\n\ngo 1.21\n"),
        (
            "calc_test.go",
            "package calc\n\nimport \"testing\"\n\nfunc TestX(t *testing.T) { undefinedCall() }\n",
        ),
    ]);
    let report = runner(FrameworkChoice::Auto)
        .run_tests(dir.path(), &RunOptions::default())
        .await
        .unwrap();
    assert_eq!(
        report.could_not_run().map(|(k, _)| k),
        Some(CouldNotRunKind::CompileError),
        "{}",
        report.output
    );
}
