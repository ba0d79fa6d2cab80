//! Helpers shared by the integration tests: external-program gating, git fixtures,
//! loopback HTTP servers.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;

/// True when a missing external program must fail the test instead of skipping it.
pub fn required_by_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true")
        || std::env::var("AGENTD_REQUIRE_ALL").is_ok_and(|v| v == "1")
}

/// Finds `program` (a bare name on PATH, or an absolute path).
pub fn find_program(program: &str) -> Option<PathBuf> {
    let candidate = Path::new(program);
    if candidate.is_absolute() {
        return candidate.is_file().then(|| candidate.to_path_buf());
    }
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|dir| dir.join(program))
        .find(|path| path.is_file())
}

/// `Some(path)` when present; `None` (after printing why the test is skipped) when absent
/// outside CI; panics when absent under CI=true or AGENTD_REQUIRE_ALL=1.
pub fn require_program(program: &str, install_hint: &str) -> Option<PathBuf> {
    if let Some(path) = find_program(program) {
        return Some(path);
    }
    assert!(
        !required_by_ci(),
        "{program} is required (CI=true or AGENTD_REQUIRE_ALL=1) but not installed; {install_hint}"
    );
    eprintln!("SKIPPED: {program} is not installed ({install_hint})");
    None
}

/// Runs git in `dir`, panicking with its stderr on failure; returns trimmed stdout.
pub fn git(dir: &Path, args: &[&str]) -> String {
    let output = Command::new("git")
        .args(args)
        .current_dir(dir)
        .env("GIT_AUTHOR_NAME", "test")
        .env("GIT_AUTHOR_EMAIL", "test@localhost")
        .env("GIT_COMMITTER_NAME", "test")
        .env("GIT_COMMITTER_EMAIL", "test@localhost")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "git {args:?} in {}: {}",
        dir.display(),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).trim().to_owned()
}

/// A repository at `dir` on branch `main` with one commit per `status` value; the file
/// `status` holds the value. Returns the commit ids in order.
pub fn repo_with_commits(dir: &Path, statuses: &[&str]) -> Vec<String> {
    std::fs::create_dir_all(dir).unwrap();
    git(dir, &["init", "--quiet", "--initial-branch=main"]);
    statuses
        .iter()
        .enumerate()
        .map(|(i, status)| {
            std::fs::write(dir.join("status"), status).unwrap();
            git(dir, &["add", "status"]);
            git(
                dir,
                &["commit", "--quiet", "-m", &format!("release {i}: {status}")],
            );
            git(dir, &["rev-parse", "HEAD"])
        })
        .collect()
}

/// Serves `router` on a random loopback port until the test's runtime ends.
pub async fn serve(router: axum::Router) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(listener, router).await.unwrap();
    });
    addr
}
