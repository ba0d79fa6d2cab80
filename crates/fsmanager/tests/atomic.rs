#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Atomic writes under a writer that is SIGKILLed mid-write: a real child process (this
//! test binary, re-invoked with an environment variable) rewrites a large file in a loop.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use agentd_fsmanager::{FileSystemSettings, Workspace};

const CHILD_ENV: &str = "AGENTD_FSM_KILLED_WRITER_ROOT";
const SIZE: usize = 24 << 20;

fn settings(root: &Path) -> FileSystemSettings {
    FileSystemSettings {
        max_write_bytes: 64 << 20,
        max_read_bytes: 64 << 20,
        backup_count: 0,
        ..FileSystemSettings::new(root)
    }
}

fn temp_files(root: &Path) -> Vec<String> {
    std::fs::read_dir(root)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(".agentd-tmp."))
        .collect()
}

/// Entry point of the child process; does nothing in a normal test run.
#[test]
fn killed_writer_child_entry_point() {
    let Ok(root) = std::env::var(CHILD_ENV) else {
        return;
    };
    let ws = Workspace::open(settings(Path::new(&root))).unwrap();
    let new = "B".repeat(SIZE);
    println!("ready");
    loop {
        ws.write("big.txt", &new).unwrap();
    }
}

fn spawn_writer(root: &Path) -> std::process::Child {
    Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "killed_writer_child_entry_point",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_ENV, root)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

#[test]
fn killed_writer_leaves_old_or_new_content_and_recover_cleans_up() {
    for round in 0..3 {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        let ws = Workspace::open(settings(root)).unwrap();
        let old = "A".repeat(SIZE);
        ws.write("big.txt", &old).unwrap();

        let mut child = spawn_writer(root);
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        while !line.contains("ready") {
            line.clear();
            assert!(
                stdout.read_line(&mut line).unwrap() > 0,
                "child exited before writing"
            );
        }
        // Kill while a temp file exists and has been partly written: mid-write.
        let deadline = Instant::now() + Duration::from_secs(30);
        let min_partial = (round as u64 + 1) * (SIZE as u64 / 4);
        loop {
            let partial = temp_files(root)
                .iter()
                .filter_map(|n| std::fs::metadata(root.join(n)).ok())
                .any(|m| m.len() >= min_partial.min(SIZE as u64 - 1) && m.len() < SIZE as u64);
            if partial {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "never observed a partial temp file"
            );
            std::thread::yield_now();
        }
        child.kill().unwrap();
        let status = child.wait().unwrap();
        assert!(!status.success(), "child was killed");

        let content = std::fs::read(root.join("big.txt")).unwrap();
        assert_eq!(content.len(), SIZE, "round {round}: truncated target");
        let first = content[0];
        assert!(first == b'A' || first == b'B');
        assert!(
            content.iter().all(|&b| b == first),
            "round {round}: mixed content"
        );

        let leftover = temp_files(root);
        assert!(!leftover.is_empty(), "the killed writer left its temp file");
        let report = ws.recover().unwrap();
        assert_eq!(
            report.removed_temp_files.len(),
            leftover.len(),
            "{report:?}"
        );
        assert!(temp_files(root).is_empty());
        // The workspace keeps working after the crash.
        ws.write("big.txt", "small").unwrap();
        assert_eq!(ws.read("big.txt").unwrap(), "small");
    }
}

#[test]
fn recover_leaves_temp_files_of_live_processes() {
    let dir = tempfile::tempdir().unwrap();
    let ws = Workspace::open(FileSystemSettings::new(dir.path())).unwrap();
    let own = format!(".agentd-tmp.{}.0.1", std::process::id());
    std::fs::write(dir.path().join(&own), "in flight").unwrap();
    // pid 1 is always alive.
    std::fs::write(dir.path().join(".agentd-tmp.1.0.1"), "in flight").unwrap();
    std::fs::create_dir(dir.path().join("sub")).unwrap();
    // No live process has this pid (above the kernel's pid_max limit).
    std::fs::write(dir.path().join("sub/.agentd-tmp.4294967294.3.9"), "dead").unwrap();
    let report = ws.recover().unwrap();
    assert_eq!(
        report.removed_temp_files,
        vec!["sub/.agentd-tmp.4294967294.3.9".to_owned()]
    );
    assert!(dir.path().join(own).exists());
}
