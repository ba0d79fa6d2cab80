//! Running one child process the safe way: its own process group, a scrubbed environment,
//! resource limits, a parent-death signal, a timeout that kills the whole group, and console
//! output (stdout and stderr interleaved in one pipe) kept up to a cap.

use std::collections::BTreeMap;
use std::io;
use std::path::PathBuf;
use std::process::{ExitStatus, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use tokio::io::AsyncReadExt;
use tokio::sync::oneshot;

use crate::error::{Result, TestRunnerError};
use crate::report::ChildExit;
use crate::settings::ResourceLimits;

/// Variables passed through from agentd's environment. Nothing else reaches a test.
const ENV_ALLOWLIST: &[&str] = &[
    "PATH",
    "HOME",
    "USER",
    "LOGNAME",
    "SHELL",
    "LANG",
    "LANGUAGE",
    "LC_ALL",
    "LC_CTYPE",
    "TZ",
    "TMPDIR",
    "CARGO_HOME",
    "RUSTUP_HOME",
    "RUSTUP_TOOLCHAIN",
    "CARGO_TARGET_DIR",
    "GOPATH",
    "GOROOT",
    "GOCACHE",
    "GOMODCACHE",
    "GOFLAGS",
    "GOPROXY",
    "NODE_PATH",
    "NVM_DIR",
    "VIRTUAL_ENV",
    "PYENV_ROOT",
    "PYENV_VERSION",
    "XDG_CACHE_HOME",
    "XDG_CONFIG_HOME",
    "XDG_DATA_HOME",
    "SSL_CERT_FILE",
    "SSL_CERT_DIR",
];

/// Set for every run so the output is plain text the parsers can read, and runners act
/// non-interactively (`CI=true` turns off jest's watch mode and snapshot writing).
const ENV_FIXED: &[(&str, &str)] = &[
    ("CI", "true"),
    // Keeps worktrees free of __pycache__ litter that would show up as changes.
    ("PYTHONDONTWRITEBYTECODE", "1"),
    ("TERM", "dumb"),
    ("NO_COLOR", "1"),
    ("CARGO_TERM_COLOR", "never"),
    ("PY_COLORS", "0"),
    ("FORCE_COLOR", "0"),
];

/// Parts of a variable name that mark a secret; such a variable never reaches a child,
/// whatever the allowlist or the caller says.
const SECRET_MARKERS: &[&str] = &[
    "KEY",
    "TOKEN",
    "SECRET",
    "PASSWORD",
    "PASSWD",
    "CREDENTIAL",
    "AUTH",
];

/// True when `name` looks like it holds a secret (e.g. `OPENAI_API_KEY`, `GITHUB_TOKEN`).
pub(crate) fn looks_secret(name: &str) -> bool {
    let upper = name.to_ascii_uppercase();
    SECRET_MARKERS.iter().any(|m| upper.contains(m))
}

/// The child's whole environment: the allowlist and `passthrough` names copied from ours,
/// fixed plain-output variables, then the caller's explicit `set` values.
pub(crate) fn scrubbed_env(
    passthrough: &[String],
    set: &BTreeMap<String, String>,
) -> Result<BTreeMap<String, String>> {
    let mut env = BTreeMap::new();
    for name in passthrough.iter().chain(set.keys()) {
        if looks_secret(name) {
            return Err(TestRunnerError::SecretInEnvironment { name: name.clone() });
        }
    }
    let names = ENV_ALLOWLIST
        .iter()
        .copied()
        .chain(passthrough.iter().map(String::as_str));
    for name in names {
        if let Ok(value) = std::env::var(name) {
            env.insert(name.to_owned(), value);
        }
    }
    for (name, value) in ENV_FIXED {
        env.insert((*name).to_owned(), (*value).to_owned());
    }
    for (name, value) in set {
        env.insert(name.clone(), value.clone());
    }
    Ok(env)
}

/// What to run.
#[derive(Debug, Clone)]
pub(crate) struct ChildSpec {
    pub program: String,
    pub args: Vec<String>,
    pub cwd: PathBuf,
    pub env: BTreeMap<String, String>,
    pub timeout: Duration,
    pub kill_grace: Duration,
    pub limits: ResourceLimits,
    pub output_cap: usize,
}

impl ChildSpec {
    /// Program and arguments joined by spaces, for humans.
    pub fn display(&self) -> String {
        std::iter::once(self.program.as_str())
            .chain(self.args.iter().map(String::as_str))
            .collect::<Vec<_>>()
            .join(" ")
    }
}

/// How a run ended and what it printed.
#[derive(Debug, Clone)]
pub(crate) struct ChildRun {
    pub exit: ChildExit,
    pub output: String,
    pub output_truncated_bytes: u64,
    pub duration: Duration,
}

/// How a spawn attempt ended.
#[derive(Debug)]
pub(crate) enum Spawned {
    Ran(ChildRun),
    /// The program does not exist (or is not executable) on the child's PATH.
    ProgramMissing(String),
}

/// After the leader exits, how long the output pipe may stay open (held by a process that
/// left the group) before we stop reading.
const DRAIN_GRACE: Duration = Duration::from_secs(2);

/// Runs `spec` to completion or timeout. Dropping the returned future kills the whole group.
pub(crate) async fn run(spec: &ChildSpec) -> Result<Spawned> {
    let started = Instant::now();
    let (pipe_tx, pipe_rx) = tokio::net::unix::pipe::pipe().map_err(|e| spawn_err(spec, e))?;
    let mut child = {
        let out = pipe_tx.into_blocking_fd().map_err(|e| spawn_err(spec, e))?;
        let err = out.try_clone().map_err(|e| spawn_err(spec, e))?;
        let mut cmd = tokio::process::Command::new(&spec.program);
        cmd.args(&spec.args)
            .current_dir(&spec.cwd)
            .env_clear()
            .envs(&spec.env)
            .stdin(Stdio::null())
            .stdout(Stdio::from(out))
            .stderr(Stdio::from(err))
            .process_group(0)
            .kill_on_drop(true);
        install_child_setup(&mut cmd, spec.limits, nix::unistd::getpid());
        match cmd.spawn() {
            Ok(child) => child,
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::NotFound | io::ErrorKind::PermissionDenied
                ) =>
            {
                return Ok(Spawned::ProgramMissing(format!(
                    "{} could not be started: {e}",
                    spec.program
                )));
            }
            Err(e) => return Err(spawn_err(spec, e)),
        }
        // `cmd` drops here, closing our copies of the pipe's write end so EOF can arrive.
    };
    let pgid = child
        .id()
        .and_then(|id| i32::try_from(id).ok())
        .map(Pid::from_raw);
    let mut guard = GroupGuard { pgid };
    tracing::debug!(command = %spec.display(), pid = ?pgid, "test process started");

    let (exited_tx, exited_rx) = oneshot::channel();
    let supervise = async {
        let result = supervise(&mut child, pgid, spec.timeout, spec.kill_grace).await;
        // Members that outlived the leader (daemons a test started) die with the run.
        guard.kill(Signal::SIGKILL);
        guard.disarm();
        let _ = exited_tx.send(());
        result
    };
    let (status, capture) =
        tokio::join!(supervise, read_capped(pipe_rx, spec.output_cap, exited_rx));
    let (status, timed_out) = status.map_err(|e| spawn_err(spec, e))?;
    let (output, output_truncated_bytes) = capture.finish();
    Ok(Spawned::Ran(ChildRun {
        exit: child_exit(status, timed_out),
        output,
        output_truncated_bytes,
        duration: started.elapsed(),
    }))
}

fn spawn_err(spec: &ChildSpec, source: io::Error) -> TestRunnerError {
    TestRunnerError::Spawn {
        program: spec.program.clone(),
        source,
    }
}

fn child_exit(status: ExitStatus, timed_out: bool) -> ChildExit {
    use std::os::unix::process::ExitStatusExt;
    ChildExit {
        code: status.code(),
        signal: status.signal(),
        timed_out,
    }
}

/// Waits for the leader; on timeout sends SIGTERM to the group, then SIGKILL after `grace`.
async fn supervise(
    child: &mut tokio::process::Child,
    pgid: Option<Pid>,
    timeout: Duration,
    grace: Duration,
) -> io::Result<(ExitStatus, bool)> {
    if let Ok(status) = tokio::time::timeout(timeout, child.wait()).await {
        return Ok((status?, false));
    }
    tracing::warn!(pid = ?pgid, ?timeout, "test run timed out; terminating its process group");
    signal_group(pgid, Signal::SIGTERM);
    if let Ok(status) = tokio::time::timeout(grace, child.wait()).await {
        return Ok((status?, true));
    }
    signal_group(pgid, Signal::SIGKILL);
    Ok((child.wait().await?, true))
}

fn signal_group(pgid: Option<Pid>, signal: Signal) {
    if let Some(pgid) = pgid {
        // ESRCH (group already gone) is the expected, harmless failure.
        let _ = killpg(pgid, signal);
    }
}

/// Kills the process group when the run future is dropped before it finished.
///
/// The group id is the leader's pid. After the leader has been reaped, the kernel does not
/// hand that number out again while any member of the group is alive, so a kill reaches
/// only our processes; `disarm` is called right after the final kill for that reason.
struct GroupGuard {
    pgid: Option<Pid>,
}

impl GroupGuard {
    fn kill(&self, signal: Signal) {
        signal_group(self.pgid, signal);
    }

    fn disarm(&mut self) {
        self.pgid = None;
    }
}

impl Drop for GroupGuard {
    fn drop(&mut self) {
        self.kill(Signal::SIGKILL);
    }
}

/// Sets rlimits and the parent-death signal in the child between fork and exec.
#[allow(unsafe_code)]
fn install_child_setup(cmd: &mut tokio::process::Command, limits: ResourceLimits, parent: Pid) {
    // SAFETY: the closure runs in the forked child between fork and exec, where only
    // async-signal-safe work is allowed. `child_setup` only makes raw syscalls (getrlimit,
    // setrlimit, prctl, getppid), allocates nothing (its captures are `Copy` values moved in
    // before the fork), takes no locks, and builds its error from errno alone.
    unsafe {
        cmd.pre_exec(move || child_setup(limits, parent));
    }
}

fn child_setup(limits: ResourceLimits, parent: Pid) -> io::Result<()> {
    use rlimit::Resource;
    let wanted = [
        (Resource::CPU, limits.cpu_seconds),
        (Resource::AS, limits.memory_bytes),
        (Resource::FSIZE, limits.file_size_bytes),
        (Resource::NPROC, limits.max_processes),
    ];
    for (resource, limit) in wanted {
        if let Some(limit) = limit {
            // Never try to raise the hard limit: that needs privileges we may not have.
            let (_, hard) = resource.get()?;
            let limit = limit.min(hard);
            resource.set(limit, limit)?;
        }
    }
    // Linux sends this when the *thread* that forked us exits; tokio forks from a runtime
    // worker thread, which lives as long as the runtime. It reaches only this process, not
    // what it starts: those are killed through the group while agentd is alive.
    nix::sys::prctl::set_pdeathsig(Signal::SIGKILL)
        .map_err(|errno| io::Error::from_raw_os_error(errno as i32))?;
    if nix::unistd::getppid() != parent {
        // The parent died before the death signal was armed.
        return Err(io::Error::from_raw_os_error(nix::libc::ESRCH));
    }
    Ok(())
}

/// Keeps the first and last `cap / 2` bytes of a stream.
struct CappedBuffer {
    half: usize,
    head: Vec<u8>,
    tail: std::collections::VecDeque<u8>,
    dropped: u64,
}

impl CappedBuffer {
    fn new(cap: usize) -> Self {
        Self {
            half: cap / 2,
            head: Vec::new(),
            tail: std::collections::VecDeque::new(),
            dropped: 0,
        }
    }

    fn push(&mut self, mut bytes: &[u8]) {
        let room = self.half.saturating_sub(self.head.len());
        let (to_head, rest) = bytes.split_at(room.min(bytes.len()));
        self.head.extend_from_slice(to_head);
        bytes = rest;
        self.tail.extend(bytes);
        let excess = self.tail.len().saturating_sub(self.half);
        if excess > 0 {
            self.tail.drain(..excess);
            self.dropped += excess as u64;
        }
    }

    fn finish(self) -> (String, u64) {
        let mut bytes = self.head;
        if self.dropped > 0 {
            bytes.extend_from_slice(
                format!("\n[... {} bytes of output omitted ...]\n", self.dropped).as_bytes(),
            );
        }
        bytes.extend(self.tail);
        (String::from_utf8_lossy(&bytes).into_owned(), self.dropped)
    }
}

/// Reads the pipe until EOF; once `exited` fires, for at most [`DRAIN_GRACE`] more.
async fn read_capped(
    mut pipe: tokio::net::unix::pipe::Receiver,
    cap: usize,
    mut exited: oneshot::Receiver<()>,
) -> CappedBuffer {
    let mut buffer = CappedBuffer::new(cap);
    let mut chunk = vec![0_u8; 64 * 1024];
    let mut drain_until: Option<tokio::time::Instant> = None;
    loop {
        let read = match drain_until {
            None => tokio::select! {
                read = pipe.read(&mut chunk) => read,
                _ = &mut exited => {
                    drain_until = Some(tokio::time::Instant::now() + DRAIN_GRACE);
                    continue;
                }
            },
            Some(deadline) => {
                match tokio::time::timeout_at(deadline, pipe.read(&mut chunk)).await {
                    Ok(read) => read,
                    Err(_) => break,
                }
            }
        };
        match read {
            Ok(0) | Err(_) => break,
            Ok(n) => buffer.push(chunk.get(..n).unwrap_or_default()),
        }
    }
    buffer
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capped_buffer_keeps_head_and_tail() {
        let mut b = CappedBuffer::new(8);
        b.push(b"abcdefghij");
        b.push(b"klmnop");
        let (text, dropped) = b.finish();
        assert_eq!(dropped, 8);
        assert_eq!(text, "abcd\n[... 8 bytes of output omitted ...]\nmnop");
    }

    #[test]
    fn secret_names_are_recognised() {
        for name in [
            "OPENAI_API_KEY",
            "github_token",
            "DB_PASSWORD",
            "AWS_SECRET_ACCESS_KEY",
        ] {
            assert!(looks_secret(name), "{name}");
        }
        for name in ["PATH", "HOME", "CARGO_TARGET_DIR", "LANG"] {
            assert!(!looks_secret(name), "{name}");
        }
    }

    #[test]
    fn scrubbed_env_refuses_secret_names() {
        let set = BTreeMap::from([("MY_API_KEY".to_owned(), "x".to_owned())]);
        assert!(matches!(
            scrubbed_env(&[], &set),
            Err(TestRunnerError::SecretInEnvironment { name }) if name == "MY_API_KEY"
        ));
    }
}
