//! Runs a project's tests for agentd and reports them in one typed [`TestReport`].
//!
//! - **Detection** ([`detect_framework`]): cargo, go test, jest, pytest from the project's
//!   files; `testing.framework` overrides; `custom` runs `testing.command` and reads its
//!   declared [`ResultFormat`].
//! - **Running** ([`LocalTestRunner`], behind the object-safe [`TestRunner`] trait): the
//!   runner is a child process in its own process group, with a scrubbed environment (an
//!   allowlist such as `PATH`, `HOME`, `LANG`, `CARGO_HOME`, `CARGO_TARGET_DIR`, plus
//!   `CI=true`, `NO_COLOR=1`, `TERM=dumb`, a per-run `TMPDIR`, and [`RunOptions::env`]; a name
//!   that looks like a secret never passes), resource limits ([`ResourceLimits`]), a
//!   parent-death signal, and a timeout after which the **whole group** gets SIGTERM, then
//!   SIGKILL after a grace period. Dropping the future kills the group too. Console output
//!   (stdout and stderr interleaved) is kept up to a cap, head and tail.
//! - **Parsing**: pytest `--junitxml`, jest `--json --outputFile`, `go test -json`, nextest
//!   JUnit (when `cargo-nextest` is installed; doctests then run through `cargo test --doc`),
//!   otherwise cargo test's text output with `--no-fail-fast` (every test binary and the
//!   doctests). When a machine-readable file was not written, pytest and nextest fall back to
//!   their console. The project's own test script and options stay in force (jest runs through
//!   `npm test --` when `package.json` has a `test` script; pytest's `addopts` apply).
//! - **Flaky check** ([`check_flaky`]) and the **tests-first gate** of the TDD flow
//!   ([`tests_first_gate`]).
//!
//! # Invariants
//!
//! - A suite that did not run is [`Outcome::CouldNotRun`] with a [`CouldNotRunKind`]
//!   (compile error, collection error, missing runner, timeout, crash, no tests found,
//!   runner error) and a reason — never a report with "0 failed". [`TestReport::is_green`] is
//!   true only for [`Outcome::Passed`].
//! - A [`crate::TestRunnerError`] means agentd could not do its part (bad settings, missing
//!   directory); problems of the project under test are outcomes, not errors.
//! - No process of a run outlives it: after the runner exits, what is left of its process
//!   group is killed; on timeout or when the future is dropped, the whole group is. If agentd
//!   itself is killed with SIGKILL, the parent-death signal kills the runner process; what
//!   the runner started (a test binary) is then reparented and ends on its own. A process
//!   that leaves the group (`setsid`) is out of reach.
//! - Secrets in agentd's environment never reach a test.
//!
//! Status choices (xfail, xpass, todo, subtests) are documented on [`TestStatus`].

mod assertions;
mod detect;
mod error;
mod flaky;
mod gate;
mod parse;
mod plan;
mod report;
mod runner;
mod sandbox;
mod settings;

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

pub use assertions::{count_assertions, count_assertions_in_file};
pub use detect::detect_framework;
pub use error::{Result, TestRunnerError};
pub use flaky::{FlakyCheck, FlakyTest, check_flaky};
pub use gate::{GateReport, NewTestVerdict, NewTests, WeakenedFile, tests_first_gate};
pub use plan::TestTarget;
pub use report::{
    ChildExit, CouldNotRunKind, Framework, Outcome, ResultSource, TestCase, TestCounts, TestReport,
    TestStatus,
};
pub use runner::LocalTestRunner;
pub use settings::{CargoRunner, FrameworkChoice, ResourceLimits, ResultFormat, TestingSettings};

/// Per-call options of a run.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RunOptions {
    /// Environment variables set for this run on top of the scrubbed environment (e.g.
    /// `CARGO_TARGET_DIR`). Names that look like secrets are refused.
    pub env: BTreeMap<String, String>,
    /// Overrides `testing.timeout` for this run.
    pub timeout: Option<Duration>,
    /// The task this run belongs to, for the tracing span.
    pub task_id: Option<String>,
}

/// Runs a project's tests. Object-safe: use it as `Arc<dyn TestRunner>`.
#[cfg_attr(feature = "mock", mockall::automock)]
#[async_trait::async_trait]
pub trait TestRunner: Send + Sync {
    /// The framework that would run the tests of `project` (config override or detection).
    async fn detect_framework(&self, project: &Path) -> Result<Framework>;

    /// Runs the whole suite of `project`.
    async fn run_tests(&self, project: &Path, options: &RunOptions) -> Result<TestReport>;

    /// Runs one test file or one test id of `project`.
    async fn run_specific_test(
        &self,
        project: &Path,
        target: &TestTarget,
        options: &RunOptions,
    ) -> Result<TestReport>;
}

/// Parsers over captured runner output, for callers that already have it (and for tests).
pub mod parsers {
    use std::path::Path;

    use crate::report::{TestCase, TestCounts};

    /// Tests, counts and (if the output shows one) the reason the suite did not run.
    #[derive(Debug, Clone, PartialEq)]
    pub struct ParsedResults {
        /// Every test found.
        pub tests: Vec<TestCase>,
        /// Counts per status.
        pub counts: TestCounts,
        /// Why the suite did not (completely) run, as seen in the output.
        pub problem: Option<(crate::CouldNotRunKind, String)>,
    }

    impl From<crate::parse::Parsed> for ParsedResults {
        fn from(p: crate::parse::Parsed) -> Self {
            Self {
                tests: p.tests,
                counts: p.counts,
                problem: p.problem,
            }
        }
    }

    /// cargo test's console (stdout and stderr interleaved).
    pub fn cargo_text(console: &str) -> ParsedResults {
        crate::parse::cargo_text::parse(console).into()
    }

    /// pytest's JUnit XML; `project` resolves module names to files.
    pub fn pytest_junit(xml: &str, project: &Path) -> Result<ParsedResults, String> {
        crate::parse::junit::parse(xml, crate::parse::junit::Flavor::Pytest, project)
            .map(Into::into)
    }

    /// nextest's JUnit XML.
    pub fn nextest_junit(xml: &str) -> Result<ParsedResults, String> {
        crate::parse::junit::parse(xml, crate::parse::junit::Flavor::Nextest, Path::new(""))
            .map(Into::into)
    }

    /// Any other JUnit XML.
    pub fn junit(xml: &str) -> Result<ParsedResults, String> {
        crate::parse::junit::parse(xml, crate::parse::junit::Flavor::Generic, Path::new(""))
            .map(Into::into)
    }

    /// jest's `--json` output; `project` makes suite paths relative.
    pub fn jest_json(json: &str, project: &Path) -> Result<ParsedResults, String> {
        crate::parse::jest::parse(json, project).map(Into::into)
    }

    /// `go test -json` events.
    pub fn go_json(console: &str) -> ParsedResults {
        crate::parse::gotest::parse(console).into()
    }

    /// pytest's console (the fallback when no JUnit file was written).
    pub fn pytest_console(console: &str) -> ParsedResults {
        crate::parse::pytest_console::parse(console).into()
    }

    /// nextest's console (the fallback when no JUnit file was written).
    pub fn nextest_console(console: &str) -> ParsedResults {
        crate::parse::nextest_console::parse(console).into()
    }
}
