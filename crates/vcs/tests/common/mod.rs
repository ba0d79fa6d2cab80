//! Helpers shared by the integration tests.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::Command;

use agentd_vcs::{GixVcs, VcsSettings};

pub const AUTHOR_NAME: &str = "Agent Smith";
pub const AUTHOR_EMAIL: &str = "agent@example.test";

/// Whether the `git` program can run. Without it the tests skip with a printed reason, unless
/// `CI=true` or `AGENTD_REQUIRE_ALL=1` demands every test to run.
pub fn git_available() -> bool {
    let found = Command::new("git")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !found {
        let required = std::env::var("CI").is_ok_and(|v| v == "true")
            || std::env::var("AGENTD_REQUIRE_ALL").is_ok_and(|v| v == "1");
        assert!(
            !required,
            "the `git` program is required (CI=true or AGENTD_REQUIRE_ALL=1)"
        );
        eprintln!("skipping: the `git` program is not installed");
    }
    found
}

pub fn settings() -> VcsSettings {
    VcsSettings {
        author_name: AUTHOR_NAME.to_owned(),
        author_email: AUTHOR_EMAIL.to_owned(),
        ..VcsSettings::default()
    }
}

pub fn vcs() -> GixVcs {
    GixVcs::new(settings())
}

fn git_command(dir: &Path, args: &[&str]) -> Command {
    let mut command = Command::new("git");
    command
        .args(args)
        .current_dir(dir)
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_AUTHOR_NAME", "Git Person")
        .env("GIT_AUTHOR_EMAIL", "git@example.test")
        .env("GIT_COMMITTER_NAME", "Git Person")
        .env("GIT_COMMITTER_EMAIL", "git@example.test")
        .env("LC_ALL", "C");
    command
}

/// Runs `git args…` in `dir`, asserting success; returns stdout.
pub fn git(dir: &Path, args: &[&str]) -> String {
    let output = git_command(dir, args).output().expect("run git");
    assert!(
        output.status.success(),
        "git {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).expect("utf-8 git output")
}

/// Runs `git args…` in `dir` and returns whether it succeeded (stderr is discarded).
pub fn git_ok(dir: &Path, args: &[&str]) -> bool {
    git_command(dir, args)
        .output()
        .expect("run git")
        .status
        .success()
}

/// `git fsck --strict` passes without complaints.
pub fn assert_fsck(dir: &Path) {
    let output = git_command(dir, &["fsck", "--strict", "--no-dangling"])
        .output()
        .expect("run git fsck");
    assert!(
        output.status.success() && output.stderr.is_empty(),
        "git fsck --strict failed: {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

pub fn write(dir: &Path, relative: &str, content: &str) {
    let path = dir.join(relative);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, content).unwrap();
}

pub fn read(dir: &Path, relative: &str) -> String {
    std::fs::read_to_string(dir.join(relative)).unwrap()
}

/// A repository made by the `git` program with one commit on `main`.
pub fn git_repo_with_commit(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    git(dir.path(), &["init", "-q", "-b", "main"]);
    for (path, content) in files {
        write(dir.path(), path, content);
    }
    git(dir.path(), &["add", "-A"]);
    git(dir.path(), &["commit", "-q", "-m", "seed"]);
    dir
}

/// `git status --porcelain` in the form vcs reports it: (code, path) sorted by path.
pub fn git_porcelain(dir: &Path) -> Vec<(String, String)> {
    let out = git(
        dir,
        &[
            "status",
            "--porcelain=v1",
            "-z",
            "--untracked-files=all",
            "--no-renames",
        ],
    );
    let mut entries: Vec<(String, String)> = out
        .split('\0')
        .filter(|entry| entry.len() > 3)
        .map(|entry| (entry[..2].to_owned(), entry[3..].to_owned()))
        .collect();
    entries.sort_by(|a, b| a.1.cmp(&b.1));
    entries
}

/// Everything a failed merge must leave untouched.
#[derive(Debug, PartialEq, Eq)]
pub struct RepoSnapshot {
    pub status: String,
    pub index: Vec<u8>,
    pub head: String,
    pub refs: String,
    pub files: Vec<(PathBuf, Vec<u8>)>,
}

pub fn snapshot(dir: &Path) -> RepoSnapshot {
    let mut files = Vec::new();
    collect_files(dir, dir, &mut files);
    files.sort();
    RepoSnapshot {
        status: git(dir, &["status", "--porcelain=v1", "--untracked-files=all"]),
        index: std::fs::read(dir.join(".git/index")).unwrap_or_default(),
        head: std::fs::read_to_string(dir.join(".git/HEAD")).unwrap(),
        refs: git(dir, &["for-each-ref", "--format=%(refname) %(objectname)"]),
        files,
    }
}

fn collect_files(root: &Path, dir: &Path, out: &mut Vec<(PathBuf, Vec<u8>)>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let entry = entry.unwrap();
        let path = entry.path();
        if path.file_name().is_some_and(|name| name == ".git") {
            continue;
        }
        if path.is_dir() {
            collect_files(root, &path, out);
        } else {
            out.push((
                path.strip_prefix(root).unwrap().to_path_buf(),
                std::fs::read(&path).unwrap(),
            ));
        }
    }
}
