//! The child process sandbox: timeouts kill the whole group, dropping a run kills it,
//! secrets never reach a test, output is capped.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::path::Path;
use std::time::Duration;

use agentd_testrunner::{
    CouldNotRunKind, FrameworkChoice, LocalTestRunner, ResultFormat, RunOptions, TestRunner,
    TestingSettings,
};
use common::{process_gone, project, read_pid, wait_until};

fn custom(command: &str, timeout: u64) -> LocalTestRunner {
    LocalTestRunner::new(TestingSettings {
        framework: FrameworkChoice::Custom,
        command: Some(command.to_owned()),
        result_format: Some(ResultFormat::CargoText),
        timeout,
        kill_grace: 1,
        ..TestingSettings::default()
    })
    .unwrap()
}

#[tokio::test]
async fn timeout_kills_the_runner_and_its_children() {
    let dir = project(&[]);
    let runner = custom(
        "sleep 1000 & echo $! > grandchild.pid; echo $$ > leader.pid; wait",
        2,
    );
    let report = runner
        .run_tests(dir.path(), &RunOptions::default())
        .await
        .unwrap();
    let (kind, reason) = report.could_not_run().unwrap();
    assert_eq!(kind, CouldNotRunKind::Timeout);
    assert!(reason.contains("timed out after 2s"), "{reason}");
    assert!(report.exit.timed_out);
    for pid_file in ["grandchild.pid", "leader.pid"] {
        let pid = read_pid(&dir.path().join(pid_file));
        assert!(
            wait_until(Duration::from_secs(5), || process_gone(pid)),
            "{pid_file} {pid} survived"
        );
    }
}

#[tokio::test]
async fn children_that_ignore_sigterm_get_sigkill() {
    let dir = project(&[]);
    // Ignored signals stay ignored across exec, so `sleep` ignores SIGTERM too.
    let runner = custom(
        "trap '' TERM; sleep 1000 & echo $! > grandchild.pid; wait",
        1,
    );
    let report = runner
        .run_tests(dir.path(), &RunOptions::default())
        .await
        .unwrap();
    assert_eq!(
        report.could_not_run().map(|(k, _)| k),
        Some(CouldNotRunKind::Timeout)
    );
    let pid = read_pid(&dir.path().join("grandchild.pid"));
    assert!(
        wait_until(Duration::from_secs(5), || process_gone(pid)),
        "{pid} survived"
    );
}

#[tokio::test]
async fn a_timed_out_cargo_test_and_the_child_it_spawned_are_killed() {
    let lib = r#"
#[cfg(test)]
mod tests {
    #[test]
    fn hangs() {
        let child = std::process::Command::new("sleep").arg("1000").spawn().unwrap();
        let pid_file = concat!(env!("CARGO_MANIFEST_DIR"), "/grandchild.pid");
        std::fs::write(pid_file, child.id().to_string()).unwrap();
        loop {
            std::thread::park();
        }
    }
}
"#;
    let dir = common::cargo_project(lib, &[]);
    let target = tempfile::tempdir().unwrap();
    let options = common::cargo_options(target.path());
    let runner = common::runner(FrameworkChoice::Cargo);
    // Build first (a filter that matches nothing), so the timeout covers only the test.
    let build = runner
        .run_specific_test(
            dir.path(),
            &agentd_testrunner::TestTarget::Id("none".into()),
            &options,
        )
        .await
        .unwrap();
    assert_eq!(
        build.could_not_run().map(|(k, _)| k),
        Some(CouldNotRunKind::NoTestsFound),
        "{}",
        build.output
    );
    let report = runner
        .run_tests(
            dir.path(),
            &RunOptions {
                timeout: Some(Duration::from_secs(5)),
                ..options
            },
        )
        .await
        .unwrap();
    assert_eq!(
        report.could_not_run().map(|(k, _)| k),
        Some(CouldNotRunKind::Timeout),
        "{}",
        report.output
    );
    let pid = read_pid(&dir.path().join("grandchild.pid"));
    assert!(
        wait_until(Duration::from_secs(5), || process_gone(pid)),
        "{pid} survived"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_the_run_kills_the_group() {
    let dir = project(&[]);
    let runner = custom(
        "sleep 1000 & echo $! > grandchild.pid; echo $$ > leader.pid; wait",
        600,
    );
    let path = dir.path().to_path_buf();
    let run = tokio::spawn(async move { runner.run_tests(&path, &RunOptions::default()).await });
    let pid_file = dir.path().join("grandchild.pid");
    let leader_file = dir.path().join("leader.pid");
    assert!(wait_until(Duration::from_secs(10), || {
        std::fs::read_to_string(&pid_file).is_ok_and(|s| !s.trim().is_empty())
            && std::fs::read_to_string(&leader_file).is_ok_and(|s| !s.trim().is_empty())
    }));
    run.abort();
    assert!(run.await.unwrap_err().is_cancelled());
    for pid in [read_pid(&pid_file), read_pid(&leader_file)] {
        assert!(
            wait_until(Duration::from_secs(5), || process_gone(pid)),
            "{pid} survived"
        );
    }
}

#[tokio::test]
async fn leftover_background_processes_die_with_the_run() {
    let dir = project(&[]);
    // The leader exits at once; a daemon it left behind must not outlive the run.
    let runner = custom(
        "sleep 1000 > /dev/null 2>&1 & echo $! > daemon.pid; echo 'test a ... ok'",
        60,
    );
    let report = runner
        .run_tests(dir.path(), &RunOptions::default())
        .await
        .unwrap();
    assert_eq!(report.counts.passed, 1, "{}", report.output);
    let pid = read_pid(&dir.path().join("daemon.pid"));
    assert!(
        wait_until(Duration::from_secs(5), || process_gone(pid)),
        "{pid} survived"
    );
}

#[tokio::test]
async fn output_is_capped_keeping_head_and_tail() {
    let dir = project(&[]);
    let runner = LocalTestRunner::new(TestingSettings {
        framework: FrameworkChoice::Custom,
        command: Some(
            "echo FIRST; head -c 100000 /dev/zero | tr '\\0' x; echo; echo LAST".to_owned(),
        ),
        result_format: Some(ResultFormat::CargoText),
        output_cap_bytes: 1000,
        ..TestingSettings::default()
    })
    .unwrap();
    let report = runner
        .run_tests(dir.path(), &RunOptions::default())
        .await
        .unwrap();
    assert!(report.output.starts_with("FIRST"), "{}", report.output);
    assert!(report.output.trim_end().ends_with("LAST"));
    assert!(report.output_truncated_bytes > 99_000);
    assert!(report.output.len() < 1100);
    // Exit 0 with nothing that looks like a test result is "no tests", not a pass.
    assert_eq!(
        report.could_not_run().map(|(k, _)| k),
        Some(CouldNotRunKind::NoTestsFound)
    );
}

#[tokio::test]
async fn a_missing_custom_command_is_a_missing_runner() {
    let dir = project(&[]);
    let runner = custom("definitely-not-a-command-xyz", 60);
    let report = runner
        .run_tests(dir.path(), &RunOptions::default())
        .await
        .unwrap();
    assert_eq!(
        report.could_not_run().map(|(k, _)| k),
        Some(CouldNotRunKind::RunnerMissing)
    );
}

#[tokio::test]
async fn resource_limits_reach_the_child() {
    let dir = project(&[]);
    let runner = LocalTestRunner::new(TestingSettings {
        framework: FrameworkChoice::Custom,
        command: Some(
            "cat /proc/self/limits > limits.txt; head -c 2048 /dev/zero > big.bin".to_owned(),
        ),
        result_format: Some(ResultFormat::CargoText),
        limits: agentd_testrunner::ResourceLimits {
            cpu_seconds: Some(77),
            file_size_bytes: Some(1024),
            memory_bytes: Some(2 * 1024 * 1024 * 1024),
            max_processes: Some(5000),
        },
        ..TestingSettings::default()
    })
    .unwrap();
    runner
        .run_tests(dir.path(), &RunOptions::default())
        .await
        .unwrap();
    let limits = std::fs::read_to_string(dir.path().join("limits.txt")).unwrap();
    let soft = |name: &str| {
        let line = limits.lines().find(|l| l.starts_with(name)).unwrap();
        line[name.len()..]
            .split_whitespace()
            .next()
            .unwrap()
            .to_owned()
    };
    assert_eq!(soft("Max cpu time"), "77");
    assert_eq!(soft("Max file size"), "1024");
    assert_eq!(soft("Max address space"), "2147483648");
    assert_eq!(soft("Max processes"), "5000");
    let written = std::fs::metadata(dir.path().join("big.bin")).unwrap().len();
    assert_eq!(written, 1024);
}

/// Runs `secret_in_parent_env_is_invisible_to_tests_child` in a child process whose
/// environment holds a secret (setting it here would need `unsafe` `set_var`).
#[test]
fn secret_in_parent_env_is_invisible_to_tests() {
    let child = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "secret_in_parent_env_is_invisible_to_tests_child",
            "--ignored",
        ])
        .env("OPENAI_API_KEY", "sk-test-secret")
        .env("AGENTD_TEST_ENV_SCRUB", "1")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&child.stdout);
    assert!(child.status.success(), "{stdout}");
    // The child really ran the check (a filter typo would run nothing and succeed).
    assert!(stdout.contains("1 passed"), "{stdout}");
}

#[tokio::test]
#[ignore = "run by secret_in_parent_env_is_invisible_to_tests with a secret in its environment"]
async fn secret_in_parent_env_is_invisible_to_tests_child() {
    assert_eq!(std::env::var("OPENAI_API_KEY").unwrap(), "sk-test-secret");
    let dir = project(&[]);
    let runner = custom("env > env.txt; env", 60);
    let report = runner
        .run_tests(dir.path(), &RunOptions::default())
        .await
        .unwrap();
    let env = std::fs::read_to_string(dir.path().join("env.txt")).unwrap();
    assert!(env.contains("PATH="), "{env}");
    assert!(!env.contains("sk-test-secret"), "{env}");
    assert!(!env.contains("OPENAI_API_KEY"), "{env}");
    assert!(!env.contains("AGENTD_TEST_ENV_SCRUB"), "{env}");
    assert!(!report.output.contains("sk-test-secret"));
    // Asking for it explicitly is refused too.
    let err = LocalTestRunner::new(TestingSettings {
        env_passthrough: vec!["OPENAI_API_KEY".to_owned()],
        ..TestingSettings::default()
    })
    .unwrap_err();
    assert!(!err.to_string().contains("sk-test-secret"));
}

/// Runs `runner_dies_child` (which starts a long test run) in a child process, kills that
/// process with SIGKILL, and checks that the test process it started died with it.
#[test]
fn the_runner_process_dies_with_agentd() {
    let dir = project(&[]);
    let mut agentd = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "runner_dies_child", "--ignored"])
        .env("AGENTD_TEST_PDEATHSIG_DIR", dir.path())
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let pid_file = dir.path().join("leader.pid");
    assert!(wait_until(Duration::from_secs(20), || {
        std::fs::read_to_string(&pid_file).is_ok_and(|s| s.ends_with('\n'))
    }));
    let leader = read_pid(&pid_file);
    assert!(!process_gone(leader));
    agentd.kill().unwrap();
    agentd.wait().unwrap();
    assert!(
        wait_until(Duration::from_secs(5), || process_gone(leader)),
        "{leader} survived"
    );
}

#[tokio::test]
#[ignore = "run by the_runner_process_dies_with_agentd, which kills it"]
async fn runner_dies_child() {
    let dir = std::env::var("AGENTD_TEST_PDEATHSIG_DIR").unwrap();
    // `exec` makes the group leader itself the long-running process.
    let runner = custom("echo $$ > leader.pid; exec sleep 1000", 600);
    runner
        .run_tests(Path::new(&dir), &RunOptions::default())
        .await
        .unwrap();
}
