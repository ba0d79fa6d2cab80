//! `agentd run`: time from spawn to ready (`/healthz` answers) and resident memory once
//! idle. Run with `cargo bench -p agentd --bench ready`.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const ROUNDS: usize = 10;

fn healthz(addr: &str) -> bool {
    let Ok(mut stream) = TcpStream::connect(addr) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
    if stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .is_err()
    {
        return false;
    }
    let mut response = String::new();
    stream.read_to_string(&mut response).is_ok() && response.starts_with("HTTP/1.1 200")
}

fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

fn main() {
    let cassette = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../examples/replay/cassettes/ask.jsonl"
    );
    let mut ready_ms = Vec::new();
    let mut rss = Vec::new();
    for _ in 0..ROUNDS {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("agentd.yaml"),
            format!(
                "llm:\n  provider: replay\n  model: gpt-4o-mini\n  cassette: {cassette}\nfile_system:\n  workspace_path: repo\norchestrator:\n  check_interval: 3600\n  goal: idle\n"
            ),
        )
        .unwrap();
        let started = Instant::now();
        let mut child = Command::new(env!("CARGO_BIN_EXE_agentd"))
            .current_dir(dir.path())
            .args(["run", "--metrics-addr", "127.0.0.1:0"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let addr = line
            .trim()
            .trim_start_matches("metrics: http://")
            .trim_end_matches("/metrics")
            .to_owned();
        while !healthz(&addr) {
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "not ready in 30 s"
            );
        }
        ready_ms.push(started.elapsed().as_secs_f64() * 1000.0);
        // Idle: the first planning round has come and gone; sample after it settles.
        std::thread::sleep(Duration::from_secs(2));
        rss.push(rss_kib(child.id()) as f64 / 1024.0);
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(child.id().to_string())
            .status();
        let _ = child.wait();
    }
    let stats = |values: &mut Vec<f64>| {
        values.sort_by(f64::total_cmp);
        (
            values[0],
            values[values.len() / 2],
            values[values.len() - 1],
        )
    };
    let (min, median, max) = stats(&mut ready_ms);
    println!(
        "agentd run: time to ready over {ROUNDS} starts: min {min:.1} ms, median {median:.1} ms, max {max:.1} ms"
    );
    let (min, median, max) = stats(&mut rss);
    println!("agentd run: idle RSS: min {min:.1} MiB, median {median:.1} MiB, max {max:.1} MiB");
}
