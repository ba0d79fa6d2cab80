//! Running external programs (`ssh`, `docker`, `git`) as logged, time-limited steps.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::process::Command;

use crate::error::DeployError;
use crate::record::StepOutput;

/// Most bytes of stdout and of stderr kept per step (the tail is kept).
pub const OUTPUT_CAP_BYTES: usize = 64 * 1024;

/// Lines of output quoted in a [`DeployError::StepFailed`].
const ERROR_TAIL_LINES: usize = 20;

/// Parent environment variables a child may see; everything else (API keys, `SSH_AUTH_SOCK`)
/// is scrubbed.
const INHERITED_ENV: &[&str] = &[
    "PATH", "HOME", "USER", "LOGNAME", "LANG", "LC_ALL", "TZ", "TMPDIR",
];

/// One program invocation, fully specified as an argv array (never a shell string).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandSpec {
    /// The step name used in logs, records and errors.
    pub step: String,
    /// The program followed by its arguments.
    pub argv: Vec<String>,
    /// Extra environment variables on top of the scrubbed allowlist.
    pub env: Vec<(String, String)>,
    /// Working directory; the current one when `None`.
    pub cwd: Option<PathBuf>,
    /// The step's total time limit; the process group is killed when it runs out.
    pub timeout: Duration,
}

impl CommandSpec {
    /// A spec with no extra environment and no working directory.
    #[must_use]
    pub fn new(step: impl Into<String>, argv: Vec<String>, timeout: Duration) -> Self {
        Self {
            step: step.into(),
            argv,
            env: Vec::new(),
            cwd: None,
            timeout,
        }
    }
}

/// What a finished program left behind.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CommandOutput {
    /// The exit code; `None` when a signal ended it.
    pub exit_code: Option<i32>,
    /// Captured stdout (tail, capped at [`OUTPUT_CAP_BYTES`]).
    pub stdout: String,
    /// Captured stderr (tail, capped at [`OUTPUT_CAP_BYTES`]).
    pub stderr: String,
}

impl CommandOutput {
    /// True when the program exited with code 0.
    #[must_use]
    pub fn success(&self) -> bool {
        self.exit_code == Some(0)
    }
}

/// Runs one command. Injectable so the docker backend's exact argv lists can be checked
/// without a Docker engine.
#[cfg_attr(feature = "mock", mockall::automock)]
#[async_trait]
pub trait CommandRunner: Send + Sync {
    /// Runs `spec` to completion or until its timeout.
    ///
    /// # Errors
    /// [`DeployError::Spawn`] when the program cannot start, [`DeployError::StepTimedOut`]
    /// when it outlives `spec.timeout`. A non-zero exit is NOT an error here.
    async fn run(&self, spec: &CommandSpec) -> Result<CommandOutput, DeployError>;
}

/// The real runner: a child process in its own process group, with a scrubbed
/// environment, stdin closed, output captured up to a cap, and the whole group killed
/// when the time limit runs out.
#[derive(Debug, Clone, Copy, Default)]
pub struct ProcessRunner;

#[async_trait]
impl CommandRunner for ProcessRunner {
    async fn run(&self, spec: &CommandSpec) -> Result<CommandOutput, DeployError> {
        let Some((program, args)) = spec.argv.split_first() else {
            return Err(DeployError::Spawn {
                step: spec.step.clone(),
                program: String::new(),
                source: std::io::Error::new(std::io::ErrorKind::InvalidInput, "empty argv"),
            });
        };
        let mut command = Command::new(program);
        command
            .args(args)
            .env_clear()
            .envs(
                INHERITED_ENV
                    .iter()
                    .filter_map(|name| std::env::var_os(name).map(|value| (*name, value))),
            )
            .envs(spec.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0)
            .kill_on_drop(true);
        if let Some(cwd) = &spec.cwd {
            command.current_dir(cwd);
        }
        let mut child = command.spawn().map_err(|source| DeployError::Spawn {
            step: spec.step.clone(),
            program: program.clone(),
            source,
        })?;
        let stdout = tokio::spawn(read_capped(child.stdout.take()));
        let stderr = tokio::spawn(read_capped(child.stderr.take()));

        let status = match tokio::time::timeout(spec.timeout, child.wait()).await {
            Ok(status) => status.map_err(|source| DeployError::Spawn {
                step: spec.step.clone(),
                program: program.clone(),
                source,
            })?,
            Err(_elapsed) => {
                kill_group(child.id());
                // Reap the leader; its group is gone, so the pipes close.
                let _reaped = child.wait().await;
                return Err(DeployError::StepTimedOut {
                    step: spec.step.clone(),
                    timeout: spec.timeout,
                });
            }
        };
        // A grandchild that left the group could hold the pipes open: bound the wait.
        let collect = |handle: tokio::task::JoinHandle<Vec<u8>>| async move {
            match tokio::time::timeout(Duration::from_secs(5), handle).await {
                Ok(Ok(bytes)) => String::from_utf8_lossy(&bytes).into_owned(),
                _ => String::new(),
            }
        };
        Ok(CommandOutput {
            exit_code: status.code(),
            stdout: collect(stdout).await,
            stderr: collect(stderr).await,
        })
    }
}

fn kill_group(pid: Option<u32>) {
    let Some(pid) = pid.and_then(|pid| i32::try_from(pid).ok()) else {
        return;
    };
    // The group may already be gone; nothing useful to do about an error then.
    let _ignored = nix::sys::signal::killpg(
        nix::unistd::Pid::from_raw(pid),
        nix::sys::signal::Signal::SIGKILL,
    );
}

async fn read_capped<R: AsyncRead + Unpin>(reader: Option<R>) -> Vec<u8> {
    let Some(mut reader) = reader else {
        return Vec::new();
    };
    let mut kept = Vec::new();
    let mut chunk = [0_u8; 8192];
    loop {
        match reader.read(&mut chunk).await {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                kept.extend_from_slice(chunk.get(..n).unwrap_or_default());
                if kept.len() > 2 * OUTPUT_CAP_BYTES {
                    kept.drain(..kept.len() - OUTPUT_CAP_BYTES);
                }
            }
        }
    }
    if kept.len() > OUTPUT_CAP_BYTES {
        kept.drain(..kept.len() - OUTPUT_CAP_BYTES);
    }
    kept
}

/// The last [`ERROR_TAIL_LINES`] lines of stderr, or of stdout when stderr is empty.
fn error_tail(output: &CommandOutput) -> String {
    let text = if output.stderr.trim().is_empty() {
        &output.stdout
    } else {
        &output.stderr
    };
    let lines: Vec<&str> = text.trim_end().lines().collect();
    let start = lines.len().saturating_sub(ERROR_TAIL_LINES);
    lines.get(start..).unwrap_or_default().join("\n")
}

/// Runs `spec`, appends its [`StepOutput`] to `steps`, traces it, and turns a non-zero
/// exit into [`DeployError::StepFailed`].
pub(crate) async fn run_step(
    runner: &dyn CommandRunner,
    spec: &CommandSpec,
    steps: &mut Vec<StepOutput>,
) -> Result<CommandOutput, DeployError> {
    let started = Instant::now();
    let result = runner.run(spec).await;
    let duration_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
    let (output, error) = match result {
        Ok(output) if output.success() => (output, None),
        Ok(output) => {
            let error = DeployError::StepFailed {
                step: spec.step.clone(),
                exit_code: output.exit_code,
                stderr_tail: error_tail(&output),
            };
            (output, Some(error))
        }
        Err(error) => (
            CommandOutput {
                exit_code: None,
                stdout: String::new(),
                stderr: error.to_string(),
            },
            Some(error),
        ),
    };
    tracing::info!(
        step = %spec.step,
        argv = ?spec.argv,
        exit_code = ?output.exit_code,
        duration_ms,
        stdout = %output.stdout,
        stderr = %output.stderr,
        "deploy step finished"
    );
    steps.push(StepOutput {
        step: spec.step.clone(),
        argv: spec.argv.clone(),
        exit_code: output.exit_code,
        success: error.is_none(),
        stdout: output.stdout.clone(),
        stderr: output.stderr.clone(),
        duration_ms,
    });
    match error {
        None => Ok(output),
        Some(error) => Err(error),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sh(script: &str, timeout: Duration) -> CommandSpec {
        CommandSpec::new(
            "test step",
            vec!["sh".into(), "-c".into(), script.into()],
            timeout,
        )
    }

    #[tokio::test]
    async fn failure_names_step_exit_code_and_stderr_tail() {
        let mut steps = Vec::new();
        let error = run_step(
            &ProcessRunner,
            &sh("echo out; echo boom >&2; exit 3", Duration::from_secs(10)),
            &mut steps,
        )
        .await
        .unwrap_err();
        assert!(matches!(
            &error,
            DeployError::StepFailed { step, exit_code: Some(3), stderr_tail }
                if step == "test step" && stderr_tail == "boom"
        ));
        assert_eq!(steps.len(), 1);
        assert_eq!(steps[0].stdout, "out\n");
        assert!(!steps[0].success);
    }

    /// True once `pid` is gone or a zombie (dead, waiting to be reaped by its new parent).
    fn is_dead(pid: &str) -> bool {
        std::fs::read_to_string(format!("/proc/{pid}/stat")).map_or(true, |stat| {
            stat.rsplit_once(") ")
                .is_some_and(|(_, rest)| rest.starts_with('Z'))
        })
    }

    #[tokio::test]
    async fn timeout_kills_the_whole_group() {
        let dir = tempfile::tempdir().unwrap();
        let pid_file = dir.path().join("grandchild.pid");
        let script = format!("sleep 30 & echo $! > {}; wait", pid_file.display());
        let mut steps = Vec::new();
        let error = run_step(
            &ProcessRunner,
            &sh(&script, Duration::from_millis(500)),
            &mut steps,
        )
        .await
        .unwrap_err();
        assert!(matches!(error, DeployError::StepTimedOut { .. }), "{error}");
        let grandchild = std::fs::read_to_string(&pid_file).unwrap();
        let grandchild = grandchild.trim();
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while !is_dead(grandchild) {
            assert!(
                std::time::Instant::now() < deadline,
                "grandchild {grandchild} survived the group kill"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    #[tokio::test]
    async fn environment_is_scrubbed() {
        // cargo sets CARGO_PKG_NAME in the test process's environment: a stand-in for a secret.
        assert!(std::env::var_os("CARGO_PKG_NAME").is_some());
        let spec = CommandSpec {
            env: vec![("ALLOWED_EXTRA".into(), "yes".into())],
            ..sh(
                "echo ${CARGO_PKG_NAME:-absent} ${ALLOWED_EXTRA} ${PATH:+has-path}",
                Duration::from_secs(10),
            )
        };
        let output = ProcessRunner.run(&spec).await.unwrap();
        assert_eq!(output.stdout, "absent yes has-path\n");
    }

    #[tokio::test]
    async fn output_over_the_cap_keeps_its_tail() {
        let script = format!(
            "head -c {} /dev/zero | tr '\\0' a; printf END",
            3 * OUTPUT_CAP_BYTES
        );
        let output = ProcessRunner
            .run(&sh(&script, Duration::from_secs(10)))
            .await
            .unwrap();
        assert_eq!(output.stdout.len(), OUTPUT_CAP_BYTES);
        assert!(output.stdout.ends_with("aaaEND"));
    }

    #[test]
    fn tail_keeps_last_lines() {
        let output = CommandOutput {
            exit_code: Some(1),
            stdout: String::new(),
            stderr: (1..=30).map(|i| format!("l{i}\n")).collect(),
        };
        let tail = error_tail(&output);
        assert!(tail.starts_with("l11\n"));
        assert!(tail.ends_with("l30"));
    }
}
