//! Health checks after a deploy or rollback: an HTTP status, or a command's exit code,
//! polled until it passes or its time runs out.

use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::error::DeployError;
use crate::record::StepOutput;
use crate::runner::{CommandRunner, CommandSpec};

const fn default_expected_status() -> u16 {
    200
}
const fn default_timeout_s() -> u64 {
    30
}
const fn default_interval_ms() -> u64 {
    500
}

/// How to tell that the deployed service is healthy. Polled every `interval_ms` until it
/// passes or `timeout_s` have passed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum HealthCheck {
    /// An HTTP GET that must answer `expected_status`.
    Http {
        /// The URL to GET, e.g. `http://127.0.0.1:8080/health`.
        url: String,
        /// The status code that means healthy (default 200).
        #[serde(default = "default_expected_status")]
        expected_status: u16,
        /// Seconds to keep trying before declaring the deploy unhealthy (default 30).
        #[serde(default = "default_timeout_s")]
        timeout_s: u64,
        /// Milliseconds between attempts (default 500).
        #[serde(default = "default_interval_ms")]
        interval_ms: u64,
    },
    /// A command that must exit 0: run on the server for `direct` (over ssh), inside the
    /// container for `docker` (`docker exec`), locally for `ci_cd`.
    Command {
        /// The program and its arguments (an argv array; quoted for the remote shell).
        argv: Vec<String>,
        /// Seconds to keep trying before declaring the deploy unhealthy (default 30).
        #[serde(default = "default_timeout_s")]
        timeout_s: u64,
        /// Milliseconds between attempts (default 500).
        #[serde(default = "default_interval_ms")]
        interval_ms: u64,
    },
}

impl HealthCheck {
    /// Checks `check`, appending one summarising step to `steps`. `wrap` turns the
    /// command check's argv into the argv that runs it where the service lives
    /// (e.g. inside `ssh ... --`).
    pub(crate) async fn run(
        &self,
        runner: &dyn CommandRunner,
        wrap: &(dyn Fn(&[String]) -> Vec<String> + Send + Sync),
        steps: &mut Vec<StepOutput>,
    ) -> Result<(), DeployError> {
        let started = Instant::now();
        let (argv, result) = match self {
            Self::Http {
                url,
                expected_status,
                timeout_s,
                interval_ms,
            } => (
                vec!["GET".to_owned(), url.clone()],
                poll_http(url, *expected_status, *timeout_s, *interval_ms).await,
            ),
            Self::Command {
                argv,
                timeout_s,
                interval_ms,
            } => {
                let wrapped = wrap(argv);
                let result = poll_command(runner, &wrapped, argv, *timeout_s, *interval_ms).await;
                (wrapped, result)
            }
        };
        let duration_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
        let (success, stdout, stderr) = match &result {
            Ok(summary) => (true, summary.clone(), String::new()),
            Err(e) => (false, String::new(), e.to_string()),
        };
        tracing::info!(step = "health check", ?argv, success, %stdout, %stderr, duration_ms, "deploy step finished");
        steps.push(StepOutput {
            step: "health check".to_owned(),
            argv,
            exit_code: None,
            success,
            stdout,
            stderr,
            duration_ms,
        });
        result.map(|_summary| ())
    }
}

/// The deadline loop shared by both kinds: `attempt` returns `Ok(summary)` when healthy,
/// `Err(observation)` otherwise.
async fn poll<F, Fut>(timeout_s: u64, interval_ms: u64, mut attempt: F) -> Result<String, String>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<String, String>>,
{
    let deadline = Instant::now() + Duration::from_secs(timeout_s);
    let interval = Duration::from_millis(interval_ms.max(10));
    let mut attempts = 0_u32;
    loop {
        attempts += 1;
        match attempt().await {
            Ok(summary) => return Ok(format!("{summary} (attempt {attempts})")),
            Err(observation) if Instant::now() + interval >= deadline => {
                return Err(format!(
                    "{observation} (after {attempts} attempts in {timeout_s}s)"
                ));
            }
            Err(_) => tokio::time::sleep(interval).await,
        }
    }
}

async fn poll_http(
    url: &str,
    expected_status: u16,
    timeout_s: u64,
    interval_ms: u64,
) -> Result<String, DeployError> {
    let failed = |reason: String| DeployError::HealthCheckFailed {
        check: format!("GET {url}"),
        reason,
    };
    let client = http_client(Duration::from_secs(timeout_s.clamp(1, 10)))
        .map_err(|e| failed(format!("cannot build HTTP client: {e}")))?;
    poll(timeout_s, interval_ms, || async {
        match client.get(url).send().await {
            Ok(response) if response.status().as_u16() == expected_status => {
                Ok(format!("HTTP {}", response.status().as_u16()))
            }
            Ok(response) => Err(format!(
                "HTTP {} (expected {expected_status})",
                response.status().as_u16()
            )),
            Err(e) => Err(format!("request failed: {e}")),
        }
    })
    .await
    .map_err(failed)
}

async fn poll_command(
    runner: &dyn CommandRunner,
    wrapped: &[String],
    original: &[String],
    timeout_s: u64,
    interval_ms: u64,
) -> Result<String, DeployError> {
    let spec = CommandSpec::new(
        "health check",
        wrapped.to_vec(),
        Duration::from_secs(timeout_s.max(1)),
    );
    poll(timeout_s, interval_ms, || async {
        match runner.run(&spec).await {
            Ok(output) if output.success() => Ok(format!("exit 0: {}", output.stdout.trim())),
            Ok(output) => Err(format!(
                "exit code {:?}: {}",
                output.exit_code,
                output.stderr.trim()
            )),
            Err(e) => Err(e.to_string()),
        }
    })
    .await
    .map_err(|reason| DeployError::HealthCheckFailed {
        check: original.join(" "),
        reason,
    })
}

/// An HTTP client for health checks and CI status polling. reqwest is built without a
/// bundled TLS crypto provider, so the ring provider is installed as the process default
/// when none is (an already-installed one is kept).
pub(crate) fn http_client(request_timeout: Duration) -> Result<reqwest::Client, reqwest::Error> {
    if rustls::crypto::CryptoProvider::get_default().is_none() {
        // Losing the race to another installer is fine: some provider is then installed.
        let _already = rustls::crypto::ring::default_provider().install_default();
    }
    reqwest::Client::builder()
        .timeout(request_timeout)
        .connect_timeout(request_timeout)
        .build()
}
