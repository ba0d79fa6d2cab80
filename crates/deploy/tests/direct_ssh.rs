#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! `direct` against a real sshd on 127.0.0.1, started by the test with its own config,
//! host key, client key and known_hosts. The "server" is a git checkout in a temp dir and
//! the "service" is an HTTP server whose health is the checkout's `status` file.

mod common;

use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use agentd_deploy::{
    DeployError, DeployRequest, Deployer, DeploymentState, DirectSettings, DirectTarget,
    FileDeploymentHistory, HealthCheck, ProcessRunner, TargetDeployer, shell_quote,
};
use axum::http::StatusCode;
use axum::routing::get;

const SSHD: &str = "/usr/sbin/sshd";
const SSHD_HINT: &str = "apt-get install -y openssh-server";

/// A running sshd, killed when dropped.
struct Sshd {
    child: Child,
    port: u16,
    log: PathBuf,
}

impl Drop for Sshd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn keygen(path: &Path) {
    let status = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", "agentd-test", "-f"])
        .arg(path)
        .stdin(Stdio::null())
        .status()
        .unwrap();
    assert!(status.success(), "ssh-keygen failed for {}", path.display());
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Starts sshd as the current user on a free loopback port and waits (by polling the
/// port, with a deadline) until it accepts connections.
fn start_sshd(dir: &Path) -> Sshd {
    keygen(&dir.join("host_key"));
    keygen(&dir.join("client_key"));
    std::fs::copy(dir.join("client_key.pub"), dir.join("authorized_keys")).unwrap();
    // sshd run as root insists on its privilege-separation directory (Debian's service
    // unit normally creates it).
    if is_root() && !Path::new("/run/sshd").exists() {
        std::fs::create_dir_all("/run/sshd").unwrap();
    }
    let user = current_user();
    for _attempt in 0..5 {
        let port = free_port();
        let config = dir.join("sshd_config");
        std::fs::write(
            &config,
            format!(
                "Port {port}\nListenAddress 127.0.0.1\nHostKey {host_key}\n\
                 AuthorizedKeysFile {authorized}\nPidFile {pid}\n\
                 StrictModes no\nUsePAM no\nPubkeyAuthentication yes\n\
                 PasswordAuthentication no\nKbdInteractiveAuthentication no\n\
                 PermitRootLogin prohibit-password\nAllowUsers {user}\n\
                 AllowAgentForwarding no\nX11Forwarding no\nPrintMotd no\nLogLevel VERBOSE\n",
                host_key = dir.join("host_key").display(),
                authorized = dir.join("authorized_keys").display(),
                pid = dir.join("sshd.pid").display(),
            ),
        )
        .unwrap();
        let log = dir.join("sshd.log");
        let mut child = Command::new(SSHD)
            .args(["-D", "-e", "-f"])
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&log).unwrap())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            if TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return Sshd { child, port, log };
            }
            if let Some(status) = child.try_wait().unwrap() {
                let text = std::fs::read_to_string(&log).unwrap_or_default();
                if text.contains("Address already in use") {
                    break; // lost the port race: try another port
                }
                panic!("sshd exited with {status}: {text}");
            }
            assert!(
                Instant::now() < deadline,
                "sshd did not listen on port {port} within 15s: {}",
                std::fs::read_to_string(&log).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(20)); // poll interval, not a wait-for-state
        }
    }
    panic!("could not find a free port for sshd");
}

fn id(flag: &str) -> String {
    let output = Command::new("id").arg(flag).output().unwrap();
    String::from_utf8_lossy(&output.stdout).trim().to_owned()
}

fn is_root() -> bool {
    id("-u") == "0"
}

/// The current user's name (USER may be unset under CI).
fn current_user() -> String {
    id("-un")
}

fn have_ssh_tools() -> bool {
    let sshd = common::require_program(SSHD, SSHD_HINT);
    let ssh = common::require_program("ssh", "apt-get install -y openssh-client");
    let keygen = common::require_program("ssh-keygen", "apt-get install -y openssh-client");
    let git = common::require_program("git", "apt-get install -y git");
    sshd.is_some() && ssh.is_some() && keygen.is_some() && git.is_some()
}

struct Fixture {
    _dir: tempfile::TempDir,
    sshd: Sshd,
    root: PathBuf,
    app: PathBuf,
    commits: Vec<String>,
    health_url: String,
}

/// An origin repository with releases ok, ok, broken; the server's checkout of it; and
/// the service: 200 on /health when the checkout's `status` file says "ok", else 503.
async fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().to_path_buf();
    let sshd = start_sshd(&root);
    let commits = common::repo_with_commits(&root.join("origin"), &["ok", "ok v2", "broken"]);
    let app = root.join("srv").join("app");
    std::fs::create_dir_all(app.parent().unwrap()).unwrap();
    common::git(
        &root,
        &[
            "clone",
            "--quiet",
            root.join("origin").to_str().unwrap(),
            app.to_str().unwrap(),
        ],
    );
    let status_file = app.join("status");
    let router = axum::Router::new().route(
        "/health",
        get(move || {
            let status_file = status_file.clone();
            async move {
                match std::fs::read_to_string(&status_file) {
                    Ok(status) if status.starts_with("ok") => StatusCode::OK,
                    _ => StatusCode::SERVICE_UNAVAILABLE,
                }
            }
        }),
    );
    let addr = common::serve(router).await;
    Fixture {
        _dir: dir,
        sshd,
        root,
        app,
        commits,
        health_url: format!("http://{addr}/health"),
    }
}

fn settings(fx: &Fixture, known_hosts: &Path) -> DirectSettings {
    let app = shell_quote(fx.app.to_str().unwrap());
    let restarted = shell_quote(fx.root.join("restarted").to_str().unwrap());
    DirectSettings {
        host: "127.0.0.1".to_owned(),
        port: fx.sshd.port,
        user: current_user(),
        key_path: fx.root.join("client_key"),
        known_hosts_path: known_hosts.to_path_buf(),
        connect_timeout_s: 10,
        step_timeout_s: 60,
        steps: vec![
            format!("git -C {app} fetch --quiet origin"),
            format!("git -C {app} checkout --quiet --detach {{revision}}"),
            format!("printf '%s\\n' {{revision}} >> {restarted}"),
        ],
        revision_command: format!("git -C {app} rev-parse HEAD"),
        health_check: Some(HealthCheck::Http {
            url: fx.health_url.clone(),
            expected_status: 200,
            timeout_s: 2,
            interval_ms: 50,
        }),
    }
}

fn write_known_hosts(fx: &Fixture, host_key_pub: &Path) -> PathBuf {
    let key = std::fs::read_to_string(host_key_pub).unwrap();
    let path = fx.root.join(format!(
        "known_hosts_{}",
        host_key_pub.file_name().unwrap().to_string_lossy()
    ));
    std::fs::write(&path, format!("[127.0.0.1]:{} {}", fx.sshd.port, key)).unwrap();
    path
}

fn request(revision: &str, key: &str) -> DeployRequest {
    DeployRequest {
        revision: revision.to_owned(),
        environment: "production".to_owned(),
        idempotency_key: key.to_owned(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deploy_then_unhealthy_release_rolls_back_over_real_ssh() {
    if !have_ssh_tools() {
        return;
    }
    let fx = fixture().await;
    let known_hosts = write_known_hosts(&fx, &fx.root.join("host_key.pub"));
    let history = Arc::new(
        FileDeploymentHistory::open(fx.root.join("deployments.json"))
            .await
            .unwrap(),
    );
    let target = DirectTarget::new(settings(&fx, &known_hosts), Arc::new(ProcessRunner)).unwrap();
    let deployer = TargetDeployer::new(Arc::new(target), history.clone());
    let head = |app: &Path| common::git(app, &["rev-parse", "HEAD"]);

    // 1. A healthy release deploys.
    let first = deployer
        .deploy(&request(&fx.commits[0], "task-1"))
        .await
        .unwrap_or_else(|e| {
            panic!(
                "{e}\nsshd log: {}",
                std::fs::read_to_string(&fx.sshd.log).unwrap_or_default()
            )
        });
    assert_eq!(first.state, DeploymentState::Succeeded);
    assert_eq!(head(&fx.app), fx.commits[0]);
    let names: Vec<&str> = first.steps.iter().map(|s| s.step.as_str()).collect();
    assert_eq!(
        names,
        [
            "remote step 1/3",
            "remote step 2/3",
            "remote step 3/3",
            "health check"
        ]
    );
    assert!(first.steps[0].argv.contains(&"BatchMode=yes".to_owned()));

    // 2. A second healthy release (abbreviated id) deploys on top.
    let short = &fx.commits[1][..12];
    deployer.deploy(&request(short, "task-2")).await.unwrap();
    assert_eq!(head(&fx.app), fx.commits[1]);

    // 3. A broken release fails its health check and is rolled back automatically.
    let error = deployer
        .deploy(&request(&fx.commits[2], "task-3"))
        .await
        .unwrap_err();
    let DeployError::Deployment { record, cause } = &error else {
        panic!("unexpected error: {error}");
    };
    assert!(
        matches!(&**cause, DeployError::HealthCheckFailed { reason, .. }
            if reason.contains("HTTP 503 (expected 200)")),
        "{cause}"
    );
    assert_eq!(record.state, DeploymentState::RolledBack);
    let rollback = record.rollback.as_ref().unwrap();
    assert_eq!(rollback.to_revision, short);
    assert!(rollback.succeeded);
    assert_eq!(
        head(&fx.app),
        fx.commits[1],
        "server is not back on the previous revision"
    );
    let restarted = std::fs::read_to_string(fx.root.join("restarted")).unwrap();
    assert_eq!(
        restarted.lines().collect::<Vec<_>>(),
        [fx.commits[0].as_str(), short, fx.commits[2].as_str(), short]
    );

    // 4. Status reads the live revision over ssh and checks health.
    let status = deployer.status("production").await.unwrap();
    assert_eq!(
        status.live_revision.as_deref(),
        Some(fx.commits[1].as_str())
    );
    assert_eq!(status.expected_revision.as_deref(), Some(short));
    assert!(status.healthy, "{:?}", status.health_error);
    assert_eq!(
        status.last_attempt.unwrap().state,
        DeploymentState::RolledBack
    );

    // 5. History: three attempts, durable across a reopen.
    let reopened = FileDeploymentHistory::open(fx.root.join("deployments.json"))
        .await
        .unwrap();
    let states: Vec<DeploymentState> =
        agentd_deploy::DeploymentHistory::list(&reopened, "production")
            .await
            .unwrap()
            .iter()
            .map(|r| r.state)
            .collect();
    assert_eq!(
        states,
        [
            DeploymentState::Succeeded,
            DeploymentState::Succeeded,
            DeploymentState::RolledBack
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_host_key_fails_the_first_step_with_exit_code_and_stderr() {
    if !have_ssh_tools() {
        return;
    }
    let fx = fixture().await;
    keygen(&fx.root.join("other_host_key"));
    let wrong_known_hosts = write_known_hosts(&fx, &fx.root.join("other_host_key.pub"));
    let target =
        DirectTarget::new(settings(&fx, &wrong_known_hosts), Arc::new(ProcessRunner)).unwrap();
    let history = FileDeploymentHistory::open(fx.root.join("h.json"))
        .await
        .unwrap();
    let deployer = TargetDeployer::new(Arc::new(target), Arc::new(history));
    let error = deployer
        .deploy(&request(&fx.commits[0], "task-1"))
        .await
        .unwrap_err();
    let DeployError::Deployment { record, cause } = &error else {
        panic!("unexpected error: {error}");
    };
    match &**cause {
        DeployError::StepFailed {
            step,
            exit_code,
            stderr_tail,
        } => {
            assert_eq!(step, "remote step 1/3");
            assert_eq!(*exit_code, Some(255));
            assert!(
                stderr_tail.contains("Host key verification failed"),
                "{stderr_tail}"
            );
        }
        other => panic!("unexpected cause: {other}"),
    }
    assert_eq!(record.state, DeploymentState::Failed);
    assert_eq!(record.steps.len(), 1);
    assert_eq!(common::git(&fx.app, &["rev-parse", "HEAD"]), fx.commits[2]);
}

/// A deploy interrupted after its steps ran (history says "started", the server already
/// runs the revision): the re-run reads the live revision over ssh and health-checks it,
/// and runs no deploy step again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crash_recovery_over_ssh_rechecks_instead_of_redeploying() {
    if !have_ssh_tools() {
        return;
    }
    let fx = fixture().await;
    let known_hosts = write_known_hosts(&fx, &fx.root.join("host_key.pub"));
    let history_path = fx.root.join("deployments.json");
    {
        let history = FileDeploymentHistory::open(&history_path).await.unwrap();
        let deployer = TargetDeployer::new(
            Arc::new(
                DirectTarget::new(settings(&fx, &known_hosts), Arc::new(ProcessRunner)).unwrap(),
            ),
            Arc::new(history.clone()),
        );
        deployer
            .deploy(&request(&fx.commits[0], "task-1"))
            .await
            .unwrap();
        // Simulate the crash: the record for task-1 goes back to "started" with no outcome.
        let mut record = agentd_deploy::DeploymentHistory::list(&history, "production")
            .await
            .unwrap()
            .remove(0);
        record.state = DeploymentState::Started;
        record.finished_at = None;
        record.steps.clear();
        agentd_deploy::DeploymentHistory::save(&history, &record)
            .await
            .unwrap();
    }
    std::fs::remove_file(fx.root.join("restarted")).unwrap();

    // This time health is a remote command (quoted for the remote shell), not HTTP.
    let mut command_checked = settings(&fx, &known_hosts);
    command_checked.health_check = Some(HealthCheck::Command {
        argv: vec![
            "grep".to_owned(),
            "-q".to_owned(),
            "^ok$".to_owned(),
            fx.app.join("status").to_str().unwrap().to_owned(),
        ],
        timeout_s: 5,
        interval_ms: 50,
    });
    let history = FileDeploymentHistory::open(&history_path).await.unwrap();
    let deployer = TargetDeployer::new(
        Arc::new(DirectTarget::new(command_checked, Arc::new(ProcessRunner)).unwrap()),
        Arc::new(history),
    );
    let record = deployer
        .deploy(&request(&fx.commits[0], "task-1"))
        .await
        .unwrap();
    assert_eq!(record.state, DeploymentState::Succeeded);
    assert!(record.recovered);
    let names: Vec<&str> = record.steps.iter().map(|s| s.step.as_str()).collect();
    assert_eq!(names, ["read live revision", "health check"]);
    assert!(
        !fx.root.join("restarted").exists(),
        "the service was restarted again"
    );
    let health = &record.steps[1];
    assert_eq!(
        health.argv.last().unwrap(),
        &format!("'grep' '-q' '^ok$' '{}'", fx.app.join("status").display())
    );
    assert!(health.success);
}
