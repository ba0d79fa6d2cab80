//! Re-running failed tests to find the flaky ones.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::{Result, TestRunnerError};
use crate::plan::TestTarget;
use crate::report::{TestReport, TestStatus};
use crate::{RunOptions, TestRunner};

/// One failed test and its re-runs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FlakyTest {
    /// The test's id.
    pub id: String,
    /// Its status in the report that was checked.
    pub first_status: TestStatus,
    /// Its status in each re-run; `None` when a re-run could not run, did not report it, or
    /// the test cannot be run alone.
    pub reruns: Vec<Option<TestStatus>>,
    /// True when at least one re-run passed: the test flips.
    pub flaky: bool,
}

/// The result of [`check_flaky`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FlakyCheck {
    /// Every failed or errored test of the report, with its re-runs.
    pub tests: Vec<FlakyTest>,
}

impl FlakyCheck {
    /// Ids of the tests that flipped.
    pub fn flaky_ids(&self) -> impl Iterator<Item = &str> {
        self.tests.iter().filter(|t| t.flaky).map(|t| t.id.as_str())
    }
}

/// Re-runs each failed or errored test of `report` `reruns` times, one at a time, and marks
/// those that pass at least once as flaky.
pub async fn check_flaky(
    runner: &dyn TestRunner,
    project: &Path,
    report: &TestReport,
    reruns: u32,
    options: &RunOptions,
) -> Result<FlakyCheck> {
    let mut tests = Vec::new();
    for failed in report.failures() {
        let mut statuses = Vec::new();
        for _ in 0..reruns {
            let rerun = runner
                .run_specific_test(project, &TestTarget::Id(failed.id.clone()), options)
                .await;
            let status = match rerun {
                // E.g. a jest suite that failed to load has no test id to run alone.
                Err(TestRunnerError::UnsupportedTarget { .. }) => None,
                Err(e) => return Err(e),
                Ok(rerun) if rerun.could_not_run().is_some() => None,
                Ok(rerun) => rerun.test(&failed.id).map(|t| t.status),
            };
            statuses.push(status);
        }
        tracing::debug!(test = %failed.id, ?statuses, "re-ran failed test");
        tests.push(FlakyTest {
            id: failed.id.clone(),
            first_status: failed.status,
            flaky: statuses.contains(&Some(TestStatus::Passed)),
            reruns: statuses,
        });
    }
    Ok(FlakyCheck { tests })
}
