//! [`LocalTestRunner`]: runs tests as sandboxed child processes on this machine.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use tracing::Instrument;

use crate::detect::detect_framework;
use crate::error::{Result, TestRunnerError};
use crate::parse::{self, Parsed};
use crate::plan::{self, ResultRead, Step, TestTarget};
use crate::report::{
    ChildExit, CouldNotRunKind, Framework, Outcome, ResultSource, TestCounts, TestReport,
};
use crate::sandbox::{self, ChildRun, ChildSpec, Spawned};
use crate::settings::{FrameworkChoice, TestingSettings};
use crate::{RunOptions, TestRunner};

/// Runs a project's tests in child processes: own process group, scrubbed environment,
/// resource limits, timeout (see the crate documentation).
#[derive(Debug, Clone)]
pub struct LocalTestRunner {
    settings: TestingSettings,
}

impl LocalTestRunner {
    /// A runner with these settings. Fails when `framework: custom` lacks `command`,
    /// `result_format` or (for file formats) `result_path`, or when `env_passthrough` names a
    /// secret.
    pub fn new(settings: TestingSettings) -> Result<Self> {
        if settings.framework == FrameworkChoice::Custom {
            plan::validate_custom(&settings)?;
        }
        if settings.command.is_some() && settings.framework != FrameworkChoice::Custom {
            return Err(TestRunnerError::InvalidSetting {
                key: "command".to_owned(),
                reason: "only used with framework: custom".to_owned(),
            });
        }
        if let Some(name) = settings
            .env_passthrough
            .iter()
            .find(|n| sandbox::looks_secret(n))
        {
            return Err(TestRunnerError::SecretInEnvironment { name: name.clone() });
        }
        Ok(Self { settings })
    }

    /// The settings in force.
    pub fn settings(&self) -> &TestingSettings {
        &self.settings
    }

    fn framework_for(&self, project: &Path) -> Result<Framework> {
        if !project.is_dir() {
            return Err(TestRunnerError::ProjectDirMissing {
                path: project.to_path_buf(),
            });
        }
        let chosen = match self.settings.framework {
            FrameworkChoice::Auto => None,
            FrameworkChoice::Cargo => Some(Framework::Cargo),
            FrameworkChoice::Pytest => Some(Framework::Pytest),
            FrameworkChoice::Jest => Some(Framework::Jest),
            FrameworkChoice::Go => Some(Framework::Go),
            FrameworkChoice::Custom => Some(Framework::Custom),
        };
        chosen.or_else(|| detect_framework(project)).ok_or_else(|| {
            TestRunnerError::NoFrameworkDetected {
                path: project.to_path_buf(),
            }
        })
    }

    async fn execute(
        &self,
        project: &Path,
        target: Option<&TestTarget>,
        options: &RunOptions,
    ) -> Result<TestReport> {
        let framework = self.framework_for(project)?;
        let span = tracing::info_span!(
            "test_run",
            task_id = options.task_id.as_deref().unwrap_or(""),
            %framework,
            project = %project.display(),
            target = target.map(|t| t.to_string()).unwrap_or_default(),
        );
        async move {
            let scratch = tempfile::tempdir()
                .map_err(|e| TestRunnerError::io("creating", std::env::temp_dir(), e))?;
            let steps = plan::steps(
                framework,
                project,
                target,
                &self.settings,
                scratch.path(),
                on_path("cargo-nextest"),
            )?;
            let mut env = sandbox::scrubbed_env(&self.settings.env_passthrough, &options.env)?;
            // Temporary files of the tests go to our scratch dir, removed after the run,
            // unless the caller chose a TMPDIR for this run.
            if !options.env.contains_key("TMPDIR") {
                env.insert(
                    "TMPDIR".to_owned(),
                    scratch.path().to_string_lossy().into_owned(),
                );
            }
            let mut report: Option<TestReport> = None;
            for step in steps {
                // Remove a stale result file so an old run is never read as this one's.
                if let ResultRead::Junit { path, .. } | ResultRead::Jest { path } = &step.read {
                    let _ = std::fs::remove_file(path);
                }
                let step_report = self
                    .run_step(framework, project, &step, &env, options)
                    .await?;
                let skip_rest = step_report.could_not_run().is_some();
                report = Some(match report {
                    None => step_report,
                    Some(main) => merge_reports(main, step_report, step.optional),
                });
                if skip_rest {
                    break;
                }
            }
            let report = report.ok_or_else(|| TestRunnerError::InvalidSetting {
                key: "framework".to_owned(),
                reason: format!("no command to run for {framework}"),
            })?;
            tracing::info!(
                outcome = ?report.outcome,
                passed = report.counts.passed,
                failed = report.counts.failed,
                total = report.counts.total,
                duration_ms = report.duration_ms,
                "test run finished"
            );
            Ok(report)
        }
        .instrument(span)
        .await
    }

    async fn run_step(
        &self,
        framework: Framework,
        project: &Path,
        step: &Step,
        env: &BTreeMap<String, String>,
        options: &RunOptions,
    ) -> Result<TestReport> {
        let spec = ChildSpec {
            program: step.program.clone(),
            args: step.args.clone(),
            cwd: project.to_path_buf(),
            env: env.clone(),
            timeout: options.timeout.unwrap_or_else(|| self.settings.timeout()),
            kill_grace: self.settings.kill_grace(),
            limits: self.settings.limits,
            output_cap: self.settings.output_cap_bytes,
        };
        let command = spec.display();
        match sandbox::run(&spec).await? {
            Spawned::ProgramMissing(reason) => Ok(TestReport {
                framework,
                command,
                outcome: Outcome::CouldNotRun {
                    kind: CouldNotRunKind::RunnerMissing,
                    reason,
                },
                counts: TestCounts::default(),
                tests: Vec::new(),
                duration_ms: 0,
                source: ResultSource::None,
                exit: ChildExit::default(),
                output: String::new(),
                output_truncated_bytes: 0,
            }),
            Spawned::Ran(run) => {
                let (parsed, source) = read_results(step, &run, project).await;
                Ok(build_report(
                    framework,
                    command,
                    &spec.timeout,
                    step,
                    run,
                    parsed,
                    source,
                ))
            }
        }
    }
}

/// Whether `program` is an executable file in one of our PATH directories.
fn on_path(program: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|paths| std::env::split_paths(&paths).any(|dir| dir.join(program).is_file()))
}

async fn read_file(path: &Path) -> Option<String> {
    tokio::fs::read_to_string(path).await.ok()
}

/// Reads the machine-readable results, falling back to the console when they are missing.
async fn read_results(step: &Step, run: &ChildRun, project: &Path) -> (Parsed, ResultSource) {
    let console = run.output.as_str();
    match &step.read {
        ResultRead::CargoText => (parse::cargo_text::parse(console), ResultSource::CargoText),
        ResultRead::GoJson => (parse::gotest::parse(console), ResultSource::GoJson),
        ResultRead::Junit { path, flavor } => {
            let from_file = read_file(path)
                .await
                .and_then(|xml| parse::junit::parse(&xml, *flavor, project).ok());
            match (from_file, flavor) {
                (Some(mut parsed), parse::junit::Flavor::Nextest) => {
                    // nextest's JUnit leaves ignored tests out; its console counts them.
                    let skipped = parse::nextest_console::skipped_in_summary(console);
                    parsed.counts.add(crate::TestStatus::Skipped, skipped);
                    parsed.problem = cargo_build_problem(console);
                    (parsed, ResultSource::JunitXml)
                }
                (Some(mut parsed), parse::junit::Flavor::Pytest) => {
                    parse::pytest_console::reconcile(&mut parsed, console);
                    (parsed, ResultSource::JunitXml)
                }
                (Some(parsed), _) => (parsed, ResultSource::JunitXml),
                (None, parse::junit::Flavor::Pytest) => (
                    parse::pytest_console::parse(console),
                    ResultSource::PytestConsole,
                ),
                (None, parse::junit::Flavor::Nextest) => {
                    // Probably a compile error: cargo's own messages say so.
                    let mut parsed = parse::nextest_console::parse(console);
                    parsed.problem = cargo_build_problem(console);
                    (parsed, ResultSource::NextestConsole)
                }
                (None, parse::junit::Flavor::Generic) => (Parsed::default(), ResultSource::None),
            }
        }
        ResultRead::Jest { path } => match read_file(path)
            .await
            .and_then(|json| parse::jest::parse(&json, project).ok())
        {
            Some(parsed) => (parsed, ResultSource::JestJson),
            None => (Parsed::default(), ResultSource::None),
        },
    }
}

/// A compile error or crashed test binary that cargo reported around a nextest run.
fn cargo_build_problem(console: &str) -> Option<(CouldNotRunKind, String)> {
    parse::cargo_text::parse(console)
        .problem
        .filter(|(kind, _)| {
            matches!(
                kind,
                CouldNotRunKind::CompileError | CouldNotRunKind::Crashed
            )
        })
}

/// The last non-blank lines of the console, as the reason for an unexplained failure.
fn console_tail(console: &str, lines: usize) -> String {
    let tail: Vec<&str> = console
        .lines()
        .rev()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .take(lines)
        .collect();
    tail.into_iter().rev().collect::<Vec<_>>().join(" | ")
}

fn signal_name(signal: i32) -> String {
    nix::sys::signal::Signal::try_from(signal)
        .map(|s| s.as_str().to_owned())
        .unwrap_or_else(|_| format!("signal {signal}"))
}

/// Decides the outcome: timeouts, problems seen in the output, signals and exit codes come
/// before counts, so a suite that never ran is never "0 failed".
fn classify(
    framework: Framework,
    step: &Step,
    exit: &ChildExit,
    timeout: &Duration,
    parsed: &Parsed,
    console: &str,
) -> Outcome {
    let could_not = |kind, reason: String| Outcome::CouldNotRun { kind, reason };
    if exit.timed_out {
        return could_not(
            CouldNotRunKind::Timeout,
            format!(
                "timed out after {}s; the process group was killed",
                timeout.as_secs()
            ),
        );
    }
    if let Some((kind, reason)) = &parsed.problem {
        return could_not(*kind, reason.clone());
    }
    if let Some(signal) = exit.signal {
        return could_not(
            CouldNotRunKind::Crashed,
            format!("{} was killed by {}", step.program, signal_name(signal)),
        );
    }
    let code = exit.code.unwrap_or_default();
    if framework == Framework::Pytest {
        match code {
            2 => {
                return could_not(
                    CouldNotRunKind::CollectionError,
                    format!("pytest was interrupted: {}", console_tail(console, 2)),
                );
            }
            3 => {
                return could_not(
                    CouldNotRunKind::RunnerError,
                    format!("pytest internal error: {}", console_tail(console, 2)),
                );
            }
            4 => {
                return could_not(
                    CouldNotRunKind::RunnerError,
                    format!("pytest usage error: {}", console_tail(console, 2)),
                );
            }
            5 => {
                return could_not(
                    CouldNotRunKind::NoTestsFound,
                    "pytest collected no tests".to_owned(),
                );
            }
            _ => {}
        }
    }
    if step.program == "sh" && code == 127 {
        return could_not(CouldNotRunKind::RunnerMissing, console_tail(console, 1));
    }
    let counts = &parsed.counts;
    if counts.total == 0 {
        return if code == 0
            || console.contains("No tests found")
            || console.contains("no tests to run")
        {
            could_not(
                CouldNotRunKind::NoTestsFound,
                format!("{framework} found no tests"),
            )
        } else {
            could_not(
                CouldNotRunKind::RunnerError,
                format!(
                    "exit code {code} and no test results: {}",
                    console_tail(console, 3)
                ),
            )
        };
    }
    if counts.failed + counts.errors > 0 {
        return Outcome::Failed;
    }
    if code != 0 {
        return could_not(
            CouldNotRunKind::RunnerError,
            format!(
                "exit code {code} although no test failed: {}",
                console_tail(console, 3)
            ),
        );
    }
    if counts.passed + counts.xpassed + counts.xfailed == 0 {
        return could_not(
            CouldNotRunKind::NoTestsFound,
            "every test was skipped or todo".to_owned(),
        );
    }
    Outcome::Passed
}

fn build_report(
    framework: Framework,
    command: String,
    timeout: &Duration,
    step: &Step,
    run: ChildRun,
    mut parsed: Parsed,
    source: ResultSource,
) -> TestReport {
    let outcome = classify(framework, step, &run.exit, timeout, &parsed, &run.output);
    parsed
        .tests
        .sort_by(|a, b| (&a.file, &a.id).cmp(&(&b.file, &b.id)));
    TestReport {
        framework,
        command,
        outcome,
        counts: parsed.counts,
        tests: parsed.tests,
        duration_ms: u64::try_from(run.duration.as_millis()).unwrap_or(u64::MAX),
        source,
        exit: run.exit,
        output: run.output,
        output_truncated_bytes: run.output_truncated_bytes,
    }
}

/// Adds a second step's results (the doctests after nextest) to the main report.
fn merge_reports(mut main: TestReport, extra: TestReport, optional: bool) -> TestReport {
    let no_library = extra.output.contains("no library targets found");
    main.command = format!("{} && {}", main.command, extra.command);
    main.duration_ms += extra.duration_ms;
    main.output = format!("{}\n{}", main.output, extra.output);
    main.output_truncated_bytes += extra.output_truncated_bytes;
    if optional
        && (no_library
            || extra
                .could_not_run()
                .is_some_and(|(k, _)| k == CouldNotRunKind::NoTestsFound))
    {
        return main;
    }
    main.counts.merge(&extra.counts);
    main.tests.extend(extra.tests);
    main.outcome = match (&main.outcome, extra.outcome) {
        (Outcome::CouldNotRun { .. }, _) => main.outcome,
        (_, bad @ Outcome::CouldNotRun { .. }) => bad,
        (Outcome::Failed, _) | (_, Outcome::Failed) => Outcome::Failed,
        _ => Outcome::Passed,
    };
    main
}

#[async_trait::async_trait]
impl TestRunner for LocalTestRunner {
    async fn detect_framework(&self, project: &Path) -> Result<Framework> {
        self.framework_for(project)
    }

    async fn run_tests(&self, project: &Path, options: &RunOptions) -> Result<TestReport> {
        self.execute(project, None, options).await
    }

    async fn run_specific_test(
        &self,
        project: &Path,
        target: &TestTarget,
        options: &RunOptions,
    ) -> Result<TestReport> {
        self.execute(project, Some(target), options).await
    }
}
