//! `vcs` (gix) against the `git` program, on the two operations agents run most:
//! committing 1,000 changed files, and `status` on a 10,000-file tree.
//!
//! Criterion prints each measurement; the summary at the end prints the vcs/git time ratio of
//! this run (mean time per operation over every timed iteration, warm-up included).
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use agentd_vcs::{CommitRequest, GixVcs, Vcs, VcsSettings};
use criterion::{Criterion, criterion_group};

const COMMIT_FILES: usize = 1_000;
const STATUS_FILES: usize = 10_000;

/// (benchmark, tool) -> (total time, operations), for the ratio summary.
type Totals = BTreeMap<(&'static str, &'static str), (Duration, u64)>;

thread_local! {
    static TOTALS: RefCell<Totals> = const { RefCell::new(BTreeMap::new()) };
}

fn record(bench: &'static str, tool: &'static str, elapsed: Duration, ops: u64) {
    TOTALS.with(|totals| {
        let mut totals = totals.borrow_mut();
        let entry = totals.entry((bench, tool)).or_default();
        entry.0 += elapsed;
        entry.1 += ops;
    });
}

fn git(dir: &Path, args: &[&str]) -> String {
    let output = Command::new("git")
        .args(args)
        .current_dir(dir)
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_AUTHOR_NAME", "bench")
        .env("GIT_AUTHOR_EMAIL", "bench@example.test")
        .env("GIT_COMMITTER_NAME", "bench")
        .env("GIT_COMMITTER_EMAIL", "bench@example.test")
        .output()
        .expect("run git");
    assert!(
        output.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

/// A repository on branch `work` with `count` committed files spread over 100 directories.
fn repo_with_files(count: usize) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    git(dir.path(), &["init", "-q", "-b", "main"]);
    for i in 0..count {
        let path = dir
            .path()
            .join(format!("files/d{:02}/f{i:05}.txt", i % 100));
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, format!("file {i}\nline two\n")).unwrap();
    }
    git(dir.path(), &["add", "-A"]);
    git(dir.path(), &["commit", "-q", "-m", "seed"]);
    git(dir.path(), &["checkout", "-q", "-b", "work"]);
    dir
}

fn change_files(repo: &Path, count: usize, round: u64) {
    for i in 0..count {
        let path = repo.join(format!("files/d{:02}/f{i:05}.txt", i % 100));
        std::fs::write(path, format!("file {i}\nround {round}\n")).unwrap();
    }
}

/// Waits until the clock's second changes and refreshes the index, so no entry is "racily
/// clean" (which would force both tools to re-hash files on every run).
fn settle_index(repo: &Path) {
    let start = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    while std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        <= start
    {
        std::thread::sleep(Duration::from_millis(20));
    }
    git(repo, &["update-index", "-q", "--really-refresh"]);
    git(repo, &["status", "--porcelain"]);
}

fn bench_commit(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let vcs = GixVcs::new(VcsSettings::default());
    let mut group = c.benchmark_group("commit_1000_changed_files");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(5));

    let vcs_repo = repo_with_files(COMMIT_FILES);
    let mut round = 0;
    group.bench_function("vcs", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                round += 1;
                change_files(vcs_repo.path(), COMMIT_FILES, round);
                let request = CommitRequest {
                    message: format!("round {round}"),
                    paths: vec!["files".into()],
                    task_id: Some(format!("bench-{round}")),
                    trailers: Vec::new(),
                };
                let start = Instant::now();
                runtime
                    .block_on(vcs.commit(vcs_repo.path(), request))
                    .unwrap();
                total += start.elapsed();
            }
            record("commit 1,000 changed files", "vcs", total, iters);
            total
        });
    });

    let git_repo = repo_with_files(COMMIT_FILES);
    group.bench_function("git", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                round += 1;
                change_files(git_repo.path(), COMMIT_FILES, round);
                let message = format!("round {round}\n\nTask-Id: bench-{round}");
                let start = Instant::now();
                git(
                    git_repo.path(),
                    &["commit", "-q", "-m", &message, "--", "files"],
                );
                total += start.elapsed();
            }
            record("commit 1,000 changed files", "git", total, iters);
            total
        });
    });
    group.finish();
}

fn bench_status(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let vcs = GixVcs::new(VcsSettings::default());
    let repo = repo_with_files(STATUS_FILES);
    // A realistic, non-empty answer: a few modified and a few new files.
    change_files(repo.path(), 10, 1);
    for i in 0..10 {
        std::fs::write(repo.path().join(format!("files/new{i}.txt")), "new\n").unwrap();
    }
    settle_index(repo.path());
    let expected = git(
        repo.path(),
        &["status", "--porcelain", "--untracked-files=all"],
    )
    .lines()
    .count();
    let reported = runtime.block_on(vcs.status(repo.path())).unwrap().len();
    assert_eq!(reported, expected, "vcs and git must see the same changes");

    let mut group = c.benchmark_group("status_10000_files");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(5));
    group.bench_function("vcs", |b| {
        b.iter_custom(|iters| {
            let start = Instant::now();
            for _ in 0..iters {
                runtime.block_on(vcs.status(repo.path())).unwrap();
            }
            let total = start.elapsed();
            record("status on 10,000 files", "vcs", total, iters);
            total
        });
    });
    group.bench_function("git", |b| {
        b.iter_custom(|iters| {
            let start = Instant::now();
            for _ in 0..iters {
                git(
                    repo.path(),
                    &["status", "--porcelain", "--untracked-files=all"],
                );
            }
            let total = start.elapsed();
            record("status on 10,000 files", "git", total, iters);
            total
        });
    });
    group.finish();
}

fn print_ratios() {
    TOTALS.with(|totals| {
        let totals = totals.borrow();
        println!("\nvcs vs git (mean per operation, this run):");
        for bench in ["commit 1,000 changed files", "status on 10,000 files"] {
            let mean = |tool| {
                totals
                    .get(&(bench, tool))
                    .filter(|(_, ops)| *ops > 0)
                    .map(|(total, ops)| total.as_secs_f64() / *ops as f64)
            };
            if let (Some(vcs), Some(git)) = (mean("vcs"), mean("git")) {
                println!(
                    "  {bench}: vcs {:.1} ms, git {:.1} ms, ratio vcs/git = {:.2}",
                    vcs * 1e3,
                    git * 1e3,
                    vcs / git
                );
            }
        }
    });
}

criterion_group!(benches, bench_commit, bench_status);

fn main() {
    benches();
    Criterion::default().configure_from_args().final_summary();
    print_ratios();
}
