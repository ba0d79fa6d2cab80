//! The one report type every runner's results are parsed into.

use serde::{Deserialize, Serialize};

/// The concrete framework a report came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Framework {
    /// `cargo test` / `cargo nextest`.
    Cargo,
    /// pytest.
    Pytest,
    /// jest.
    Jest,
    /// `go test`.
    Go,
    /// A custom command.
    Custom,
}

impl std::fmt::Display for Framework {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Cargo => "cargo",
            Self::Pytest => "pytest",
            Self::Jest => "jest",
            Self::Go => "go",
            Self::Custom => "custom",
        })
    }
}

/// Where the results in a report were read from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ResultSource {
    /// A JUnit XML file (pytest `--junitxml`, nextest, a custom command).
    JunitXml,
    /// jest's `--json` file.
    JestJson,
    /// `go test -json` events.
    GoJson,
    /// cargo test's text output.
    CargoText,
    /// nextest's console output (its JUnit file was not written).
    NextestConsole,
    /// pytest's console output (its JUnit file was not written).
    PytestConsole,
    /// Nothing could be read (see the outcome's reason).
    None,
}

/// The status of one test.
///
/// Deliberate choices: pytest `xfail` (expected failure that failed) is [`TestStatus::XFailed`],
/// not a failure; a non-strict `xpass` is reported by pytest's JUnit as a pass and stays
/// [`TestStatus::Passed`]; a strict xpass is a failure. jest `test.todo` is
/// [`TestStatus::Todo`]; `test.skip` and cargo `#[ignore]` are [`TestStatus::Skipped`].
/// Subtests (pytest's built-in `subtests`, go `t.Run`) count as tests of their own, as the
/// runners report them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TestStatus {
    /// Ran and passed.
    Passed,
    /// Ran and an assertion failed.
    Failed,
    /// Could not run to completion: a fixture/setup error, a suite that failed to load.
    Error,
    /// Skipped or ignored.
    Skipped,
    /// Expected to fail, and failed.
    #[serde(rename = "xfailed")]
    XFailed,
    /// Expected to fail, but passed (reported separately only where the runner does).
    #[serde(rename = "xpassed")]
    XPassed,
    /// Declared but not written yet (jest `test.todo`).
    Todo,
}

impl TestStatus {
    /// Failed or errored: the statuses that make a run red.
    pub fn is_failure(self) -> bool {
        matches!(self, Self::Failed | Self::Error)
    }

    /// Skipped, todo or xfailed: the test exists but did not prove anything.
    pub fn is_not_run(self) -> bool {
        matches!(self, Self::Skipped | Self::Todo | Self::XFailed)
    }
}

/// One test and what happened to it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TestCase {
    /// The id to pass back to [`crate::TestRunner::run_specific_test`]: cargo's test path,
    /// pytest's node id, `file::full name` for jest, `package::TestName` for go.
    pub id: String,
    /// The test's name as the runner prints it.
    pub name: String,
    /// The source file, relative to the project when known.
    pub file: Option<String>,
    /// The line of the failure (or of the test) when known.
    pub line: Option<u32>,
    /// What happened.
    pub status: TestStatus,
    /// Run time in milliseconds when the runner reports it.
    pub duration_ms: Option<u64>,
    /// The failure or skip message (for failures: the assertion message).
    pub message: Option<String>,
    /// Traceback and captured output of a failed test.
    pub output: Option<String>,
}

/// Counts per status. `total` is the sum of all the others.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TestCounts {
    /// Passed tests (including pytest's non-strict xpass).
    pub passed: u64,
    /// Failed tests.
    pub failed: u64,
    /// Skipped or ignored tests.
    pub skipped: u64,
    /// Tests that errored (setup errors, suites that failed to load).
    pub errors: u64,
    /// Expected failures that failed.
    pub xfailed: u64,
    /// Expected failures that passed, where the runner says so.
    pub xpassed: u64,
    /// jest `test.todo`.
    pub todo: u64,
    /// Sum of the above.
    pub total: u64,
}

impl TestCounts {
    /// Counts the statuses of `tests`.
    pub fn from_tests(tests: &[TestCase]) -> Self {
        let mut counts = Self::default();
        for test in tests {
            counts.add(test.status, 1);
        }
        counts
    }

    pub(crate) fn add(&mut self, status: TestStatus, n: u64) {
        let slot = match status {
            TestStatus::Passed => &mut self.passed,
            TestStatus::Failed => &mut self.failed,
            TestStatus::Error => &mut self.errors,
            TestStatus::Skipped => &mut self.skipped,
            TestStatus::XFailed => &mut self.xfailed,
            TestStatus::XPassed => &mut self.xpassed,
            TestStatus::Todo => &mut self.todo,
        };
        *slot += n;
        self.total += n;
    }

    pub(crate) fn merge(&mut self, other: &Self) {
        self.passed += other.passed;
        self.failed += other.failed;
        self.skipped += other.skipped;
        self.errors += other.errors;
        self.xfailed += other.xfailed;
        self.xpassed += other.xpassed;
        self.todo += other.todo;
        self.total += other.total;
    }
}

/// Why a suite could not run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CouldNotRunKind {
    /// The code or the tests did not compile (cargo, go).
    CompileError,
    /// The runner could not collect or load tests (pytest collection error, a jest suite
    /// that failed to load).
    CollectionError,
    /// The runner program is not installed.
    RunnerMissing,
    /// The run hit `testing.timeout`; the process group was killed.
    Timeout,
    /// The runner or a test binary was killed by a signal it did not get from us.
    Crashed,
    /// The runner found no tests to run.
    NoTestsFound,
    /// The runner failed without results for another reason (usage error, internal error).
    RunnerError,
}

/// The outcome of a run. Only [`Outcome::Passed`] means the tests are green; a suite that
/// never ran is [`Outcome::CouldNotRun`], never "0 failed".
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum Outcome {
    /// Every test ran and none failed or errored (skips allowed).
    Passed,
    /// The tests ran and at least one failed or errored.
    Failed,
    /// The suite did not run (completely); counts are partial at best.
    CouldNotRun {
        /// The class of problem.
        kind: CouldNotRunKind,
        /// A one-line explanation drawn from the runner's output.
        reason: String,
    },
}

/// How the child process ended.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChildExit {
    /// Exit code, when it exited.
    pub code: Option<i32>,
    /// Signal number, when a signal ended it.
    pub signal: Option<i32>,
    /// Whether the timeout expired and the group was killed.
    pub timed_out: bool,
}

/// The result of one test run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TestReport {
    /// The framework that ran.
    pub framework: Framework,
    /// The command line, for humans (program and arguments joined by spaces).
    pub command: String,
    /// Passed, failed, or could not run (with the reason).
    pub outcome: Outcome,
    /// Counts per status.
    pub counts: TestCounts,
    /// Every test the runner reported.
    pub tests: Vec<TestCase>,
    /// Wall-clock time of the run in milliseconds.
    pub duration_ms: u64,
    /// Where the results were read from.
    pub source: ResultSource,
    /// How the child process ended.
    pub exit: ChildExit,
    /// The console output (stdout and stderr interleaved), cut to the configured cap by
    /// keeping its head and tail.
    pub output: String,
    /// Bytes of console output dropped from the middle.
    pub output_truncated_bytes: u64,
}

impl TestReport {
    /// True only when the suite ran and nothing failed.
    pub fn is_green(&self) -> bool {
        self.outcome == Outcome::Passed
    }

    /// The kind and reason when the suite could not run.
    pub fn could_not_run(&self) -> Option<(CouldNotRunKind, &str)> {
        match &self.outcome {
            Outcome::CouldNotRun { kind, reason } => Some((*kind, reason.as_str())),
            _ => None,
        }
    }

    /// The failed and errored tests, with their file, line, message and output.
    pub fn failures(&self) -> impl Iterator<Item = &TestCase> {
        self.tests.iter().filter(|t| t.status.is_failure())
    }

    /// The test with this id, if the run reported it.
    pub fn test(&self, id: &str) -> Option<&TestCase> {
        self.tests.iter().find(|t| t.id == id)
    }
}
