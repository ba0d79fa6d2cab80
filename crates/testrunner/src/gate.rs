//! The tests-first gate of the TDD flow.
//!
//! QA writes new tests; the developer then changes the code. The gate checks that
//! 1. every new test **fails on the base** (the code before the change, with the new test
//!    files laid on top) — a compile or collection error of the new tests counts as failing;
//! 2. every new test **passes on the head** (after the change) and the head suite is green;
//! 3. no existing test was **dropped** (in the base report, missing from the head report),
//!    **newly skipped** (ran on the base; skipped, ignored, todo or xfail on the head), or
//!    **weakened** (a test file has fewer assertion markers on the head, or was deleted).
//!
//! It needs no version control: the caller passes two directories (the orchestrator uses
//! worktrees). The base directory is used as scratch space: the new test files are copied
//! into it from the head for step 1 and put back as they were afterwards. New tests must
//! live in files of their own (or in test files that hold no implementation), since those
//! files are copied whole.
//!
//! A shared `CARGO_TARGET_DIR` (in [`RunOptions::env`] or agentd's environment) is split into
//! `base/` and `head/` subdirectories: cargo decides freshness by file times, so one target
//! directory for two checkouts of the same crate would reuse the wrong build.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::assertions::{count_assertions_in_file, is_test_file_name};
use crate::error::{Result, TestRunnerError};
use crate::plan::TestTarget;
use crate::report::{CouldNotRunKind, Outcome, TestReport, TestStatus};
use crate::{RunOptions, TestRunner};

/// The new tests: files (relative to the project) and/or test ids.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewTests {
    /// Files that hold the new tests.
    pub files: Vec<PathBuf>,
    /// Ids of new tests (in files listed above or already present on the base).
    pub ids: Vec<String>,
}

/// What the gate found for one new test.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewTestVerdict {
    /// The test's id.
    pub id: String,
    /// Its status on the base with the new tests; `None` when it did not build or was absent.
    pub on_base: Option<TestStatus>,
    /// Why the new tests did not run on the base (compile or collection error), if so.
    pub base_build_failure: Option<String>,
    /// Its status on the head; `None` when absent.
    pub on_head: Option<TestStatus>,
    /// It failed, errored or did not build on the base (required).
    pub fails_on_base: bool,
    /// It passed on the head (required).
    pub passes_on_head: bool,
}

/// A test file whose assertions shrank or that disappeared.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WeakenedFile {
    /// Path relative to the project.
    pub file: String,
    /// Assertion markers on the base.
    pub assertions_before: usize,
    /// Assertion markers on the head; `None` when the file was deleted.
    pub assertions_after: Option<usize>,
}

/// The gate's verdict.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GateReport {
    /// True when every check passed.
    pub passed: bool,
    /// One line per reason the gate failed.
    pub problems: Vec<String>,
    /// Each new test.
    pub new_tests: Vec<NewTestVerdict>,
    /// Existing tests missing on the head.
    pub dropped_tests: Vec<String>,
    /// Existing tests that ran on the base and are skipped/ignored/todo/xfail on the head.
    pub newly_skipped: Vec<String>,
    /// Test files with fewer assertions on the head, or deleted.
    pub weakened_files: Vec<WeakenedFile>,
    /// The head suite's outcome.
    pub head_outcome: Outcome,
}

/// Runs the gate. `base` holds the revision before the change (scratch: see the module
/// docs), `head` the revision after it, both with the same layout.
pub async fn tests_first_gate(
    runner: &dyn TestRunner,
    base: &Path,
    head: &Path,
    new_tests: &NewTests,
    options: &RunOptions,
) -> Result<GateReport> {
    let mut problems = Vec::new();
    let (base_options, head_options) =
        (side_options(options, "base"), side_options(options, "head"));
    let options = &base_options;
    let baseline = runner.run_tests(base, options).await?;
    let baseline_usable = match baseline.could_not_run() {
        None | Some((CouldNotRunKind::NoTestsFound, _)) => true,
        Some((kind, reason)) => {
            problems.push(format!(
                "the base suite could not run ({kind:?}: {reason}), so existing tests cannot be compared"
            ));
            false
        }
    };
    let new_files: BTreeSet<String> = new_tests
        .files
        .iter()
        .map(|f| f.to_string_lossy().into_owned())
        .collect();
    let assertions_before = count_test_file_assertions(base, &baseline, &new_files);

    let targets: Vec<TestTarget> = new_tests
        .files
        .iter()
        .cloned()
        .map(TestTarget::File)
        .chain(new_tests.ids.iter().cloned().map(TestTarget::Id))
        .collect();
    let red = {
        let overlay = Overlay::apply(base, head, &new_tests.files)?;
        let mut reports = Vec::new();
        let mut failed = None;
        for target in &targets {
            match runner.run_specific_test(base, target, options).await {
                Ok(report) => reports.push(report),
                Err(e) => {
                    failed = Some(e);
                    break;
                }
            }
        }
        overlay.restore()?;
        if let Some(e) = failed {
            return Err(e);
        }
        reports
    };
    let mut green = Vec::new();
    for target in &targets {
        green.push(
            runner
                .run_specific_test(head, target, &head_options)
                .await?,
        );
    }
    let head_report = runner.run_tests(head, &head_options).await?;
    if head_report.outcome != Outcome::Passed {
        problems.push(format!(
            "the head suite is not green: {:?}",
            head_report.outcome
        ));
    }

    let verdicts = new_test_verdicts(&red, &green, &new_tests.ids, &mut problems);
    let new_ids: BTreeSet<&str> = verdicts.iter().map(|v| v.id.as_str()).collect();

    let (mut dropped, mut newly_skipped) = (Vec::new(), Vec::new());
    let head_ran = !matches!(
        head_report.could_not_run(),
        Some((kind, _)) if kind != CouldNotRunKind::NoTestsFound
    );
    if baseline_usable && head_ran {
        for before in baseline
            .tests
            .iter()
            .filter(|t| !new_ids.contains(t.id.as_str()))
        {
            match head_report.test(&before.id) {
                None => dropped.push(before.id.clone()),
                Some(after) if after.status.is_not_run() && !before.status.is_not_run() => {
                    newly_skipped.push(before.id.clone());
                }
                Some(_) => {}
            }
        }
        if head_report.counts.total < baseline.counts.total && dropped.is_empty() {
            problems.push(format!(
                "the head reports {} tests, the base {}",
                head_report.counts.total, baseline.counts.total
            ));
        }
    }
    let weakened: Vec<WeakenedFile> = assertions_before
        .into_iter()
        .filter_map(|(file, before)| {
            let after = count_assertions_in_file(&head.join(&file));
            let weaker = after.is_none_or(|after| after < before);
            weaker.then_some(WeakenedFile {
                file,
                assertions_before: before,
                assertions_after: after,
            })
        })
        .collect();

    for v in &verdicts {
        if !v.fails_on_base {
            problems.push(format!(
                "new test {} does not fail on the base ({:?})",
                v.id, v.on_base
            ));
        }
        if !v.passes_on_head {
            problems.push(format!(
                "new test {} does not pass on the head ({:?})",
                v.id, v.on_head
            ));
        }
    }
    if verdicts.is_empty() {
        problems.push("no new tests were found".to_owned());
    }
    for id in &dropped {
        problems.push(format!("existing test {id} was dropped"));
    }
    for id in &newly_skipped {
        problems.push(format!("existing test {id} is now skipped"));
    }
    for w in &weakened {
        match w.assertions_after {
            None => problems.push(format!("test file {} was deleted", w.file)),
            Some(after) => problems.push(format!(
                "test file {} lost assertions ({} → {after})",
                w.file, w.assertions_before
            )),
        }
    }
    tracing::info!(
        passed = problems.is_empty(),
        problems = problems.len(),
        "tests-first gate"
    );
    Ok(GateReport {
        passed: problems.is_empty(),
        problems,
        new_tests: verdicts,
        dropped_tests: dropped,
        newly_skipped,
        weakened_files: weakened,
        head_outcome: head_report.outcome,
    })
}

/// `options` with a `CARGO_TARGET_DIR` of its own for one side of the gate.
fn side_options(options: &RunOptions, side: &str) -> RunOptions {
    let mut options = options.clone();
    let shared = options
        .env
        .get("CARGO_TARGET_DIR")
        .cloned()
        .or_else(|| std::env::var("CARGO_TARGET_DIR").ok());
    if let Some(dir) = shared {
        let dir = Path::new(&dir).join("agentd-gate").join(side);
        options.env.insert(
            "CARGO_TARGET_DIR".to_owned(),
            dir.to_string_lossy().into_owned(),
        );
    }
    options
}

fn new_test_verdicts(
    red: &[TestReport],
    green: &[TestReport],
    ids: &[String],
    problems: &mut Vec<String>,
) -> Vec<NewTestVerdict> {
    let mut verdicts: Vec<NewTestVerdict> = Vec::new();
    for (red_report, green_report) in red.iter().zip(green) {
        let build_failure = match red_report.could_not_run() {
            Some((CouldNotRunKind::CompileError | CouldNotRunKind::CollectionError, reason)) => {
                Some(reason.to_owned())
            }
            Some((kind, reason)) => {
                problems.push(format!(
                    "new tests could not run on the base ({kind:?}: {reason})"
                ));
                None
            }
            None => None,
        };
        if green_report.tests.is_empty() {
            problems.push(format!(
                "new tests not found on the head: {} ({:?})",
                green_report.command, green_report.outcome
            ));
        }
        for test in &green_report.tests {
            if verdicts.iter().any(|v| v.id == test.id) {
                continue;
            }
            let on_base = red_report.test(&test.id).map(|t| t.status);
            verdicts.push(NewTestVerdict {
                id: test.id.clone(),
                on_base,
                base_build_failure: build_failure.clone(),
                on_head: Some(test.status),
                fails_on_base: build_failure.is_some()
                    || on_base.is_some_and(TestStatus::is_failure),
                passes_on_head: test.status == TestStatus::Passed,
            });
        }
    }
    for id in ids {
        if !verdicts.iter().any(|v| &v.id == id) {
            problems.push(format!("new test id {id} was not reported on the head"));
        }
    }
    verdicts
}

/// Assertion counts of the base's test files (from the report and by file name), minus the
/// new test files.
fn count_test_file_assertions(
    base: &Path,
    baseline: &TestReport,
    new_files: &BTreeSet<String>,
) -> Vec<(String, usize)> {
    let mut files: BTreeSet<String> = baseline
        .tests
        .iter()
        .filter_map(|t| t.file.clone())
        .collect();
    let mut found = Vec::new();
    walk_sources(base, Path::new(""), &mut found);
    files.extend(
        found
            .into_iter()
            .filter(|f| is_test_file_name(f))
            .map(|f| f.to_string_lossy().into_owned()),
    );
    files
        .into_iter()
        .filter(|f| !new_files.contains(f))
        .filter_map(|f| count_assertions_in_file(&base.join(&f)).map(|n| (f, n)))
        .collect()
}

/// Relative paths of the files under `root`, skipping build output, dependencies and
/// hidden directories.
fn walk_sources(root: &Path, rel: &Path, out: &mut Vec<PathBuf>) {
    const SKIP: &[&str] = &["target", "node_modules", "venv", "__pycache__", "vendor"];
    let Ok(entries) = std::fs::read_dir(root.join(rel)) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let name_str = name.to_string_lossy();
        let path = rel.join(&name);
        match entry.file_type() {
            Ok(t)
                if t.is_dir()
                    && !name_str.starts_with('.')
                    && !SKIP.contains(&name_str.as_ref()) =>
            {
                walk_sources(root, &path, out);
            }
            Ok(t) if t.is_file() => out.push(path),
            _ => {}
        }
    }
}

/// The new test files copied from head into base, and what to put back.
struct Overlay {
    restore: Vec<(PathBuf, Option<Vec<u8>>)>,
}

impl Overlay {
    fn apply(base: &Path, head: &Path, files: &[PathBuf]) -> Result<Self> {
        let mut overlay = Self {
            restore: Vec::new(),
        };
        match overlay.copy_all(base, head, files) {
            Ok(()) => Ok(overlay),
            Err(e) => {
                // Put back what was already copied; the copy error is the one to report.
                let _ = overlay.restore();
                Err(e)
            }
        }
    }

    fn copy_all(&mut self, base: &Path, head: &Path, files: &[PathBuf]) -> Result<()> {
        for file in files {
            let from = head.join(file);
            let to = base.join(file);
            let text =
                std::fs::read(&from).map_err(|e| TestRunnerError::io("reading", &from, e))?;
            let original = std::fs::read(&to).ok();
            if let Some(parent) = to.parent() {
                std::fs::create_dir_all(parent)
                    .map_err(|e| TestRunnerError::io("creating", parent, e))?;
            }
            self.restore.push((to.clone(), original));
            std::fs::write(&to, text).map_err(|e| TestRunnerError::io("writing", &to, e))?;
        }
        Ok(())
    }

    fn restore(self) -> Result<()> {
        for (path, original) in self.restore.into_iter().rev() {
            match original {
                Some(bytes) => std::fs::write(&path, bytes)
                    .map_err(|e| TestRunnerError::io("restoring", &path, e))?,
                None => std::fs::remove_file(&path)
                    .map_err(|e| TestRunnerError::io("removing", &path, e))?,
            }
        }
        Ok(())
    }
}
