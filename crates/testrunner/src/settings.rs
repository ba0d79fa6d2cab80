//! The config file's `testing` section.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// The `testing` section of `agentd.yaml`.
///
/// ```yaml
/// testing:
///   framework: auto        # auto | cargo | pytest | jest | go | custom
///   auto_run: true         # run the tests after every code change
///   timeout: 600           # seconds for one whole run; the process group is killed after it
///   # only for framework: custom
///   command: "make check"  # run with `sh -c` in the project directory
///   result_format: junit   # junit | jest_json | go_json | cargo_text
///   result_path: build/junit.xml   # where `command` writes junit / jest_json results
///   limits:
///     cpu_seconds: 3600    # per process (RLIMIT_CPU); null = inherit
///     memory_bytes: null   # address space per process (RLIMIT_AS); null = inherit
///     file_size_bytes: 4294967296  # largest file a test may write (RLIMIT_FSIZE)
///     max_processes: 8192  # RLIMIT_NPROC: counts ALL of the user's processes and threads
/// ```
///
/// Every key is optional; an unknown key is an error.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TestingSettings {
    /// Which runner to use; `auto` detects it from the project's files.
    pub framework: FrameworkChoice,
    /// Whether the orchestrator runs the tests after each code change (read by the caller).
    pub auto_run: bool,
    /// Wall-clock limit for one run, in seconds.
    pub timeout: u64,
    /// Seconds between SIGTERM and SIGKILL when the timeout expires.
    pub kill_grace: u64,
    /// The shell command for `framework: custom`.
    pub command: Option<String>,
    /// How to read the results of `command`.
    pub result_format: Option<ResultFormat>,
    /// Where `command` writes its results (for `junit` and `jest_json`), relative to the project.
    pub result_path: Option<String>,
    /// How Rust projects are run: `auto` uses cargo-nextest when it is installed.
    pub cargo_runner: CargoRunner,
    /// Extra arguments appended to the runner's command line.
    pub extra_args: Vec<String>,
    /// Names of further environment variables to pass through from agentd's environment
    /// (on top of the built-in allowlist). Names that look like secrets are refused.
    pub env_passthrough: Vec<String>,
    /// Bytes of console output kept per run (the first and last halves).
    pub output_cap_bytes: usize,
    /// Resource limits applied to the test process and everything it starts.
    pub limits: ResourceLimits,
}

impl Default for TestingSettings {
    fn default() -> Self {
        Self {
            framework: FrameworkChoice::Auto,
            auto_run: true,
            timeout: 600,
            kill_grace: 5,
            command: None,
            result_format: None,
            result_path: None,
            cargo_runner: CargoRunner::Auto,
            extra_args: Vec::new(),
            env_passthrough: Vec::new(),
            output_cap_bytes: 8 * 1024 * 1024,
            limits: ResourceLimits::default(),
        }
    }
}

impl TestingSettings {
    /// The run timeout as a [`Duration`].
    pub fn timeout(&self) -> Duration {
        Duration::from_secs(self.timeout)
    }

    /// The SIGTERM → SIGKILL grace period as a [`Duration`].
    pub fn kill_grace(&self) -> Duration {
        Duration::from_secs(self.kill_grace)
    }
}

/// `testing.framework`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum FrameworkChoice {
    /// Detect from the project's files.
    #[default]
    Auto,
    /// `cargo test` (or `cargo nextest`).
    Cargo,
    /// pytest.
    Pytest,
    /// jest.
    Jest,
    /// `go test`.
    Go,
    /// `testing.command` with `testing.result_format`.
    Custom,
}

/// The result format of a custom command.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ResultFormat {
    /// A JUnit XML file at `testing.result_path`.
    Junit,
    /// A jest `--json` file at `testing.result_path`.
    JestJson,
    /// `go test -json` events on the console.
    GoJson,
    /// `cargo test`'s text output on the console.
    CargoText,
}

/// `testing.cargo_runner`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum CargoRunner {
    /// nextest when `cargo-nextest` is on the PATH, else `cargo test`.
    #[default]
    Auto,
    /// Always `cargo test --no-fail-fast` (text output).
    Test,
    /// Always `cargo nextest run` (JUnit) plus `cargo test --doc` for doctests.
    Nextest,
}

/// Per-process resource limits (setrlimit in the child before exec). `null` inherits.
///
/// The defaults are deliberately loose: they stop a runaway test, not a big build.
/// `RLIMIT_NPROC` counts every process and thread of the user, not only the test's, so it is
/// a fork-bomb brake; rustc and the JS engines start many threads, so keep it in thousands.
/// An address-space limit breaks V8 (node) and Go, which reserve large virtual ranges, so it
/// is off unless configured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ResourceLimits {
    /// CPU seconds per process (RLIMIT_CPU).
    pub cpu_seconds: Option<u64>,
    /// Address space per process in bytes (RLIMIT_AS).
    pub memory_bytes: Option<u64>,
    /// Largest file a process may write, in bytes (RLIMIT_FSIZE).
    pub file_size_bytes: Option<u64>,
    /// Processes and threads of the user (RLIMIT_NPROC).
    pub max_processes: Option<u64>,
}

impl Default for ResourceLimits {
    fn default() -> Self {
        Self {
            cpu_seconds: Some(3600),
            memory_bytes: None,
            file_size_bytes: Some(4 * 1024 * 1024 * 1024),
            max_processes: Some(8192),
        }
    }
}
