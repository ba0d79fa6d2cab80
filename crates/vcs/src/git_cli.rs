//! Running the `git` program for the operations gix cannot do (push, fetch with credentials,
//! switching branches over a worktree, linked worktrees).
//!
//! Every run has a timeout (on expiry the child's whole process group, hooks and credential
//! helpers included, is killed) and a scrubbed environment: only
//! `PATH`, `HOME`, `TMPDIR`, `SSH_AUTH_SOCK` and locale variables are passed through, so API keys
//! in the daemon's environment never reach git, its hooks or credential helpers.
//! `GIT_TERMINAL_PROMPT=0` makes a missing credential an error instead of a hang, and
//! `GIT_ALLOW_PROTOCOL` limits transports to file, git, http(s) and ssh (no `ext::` commands).
//! Credentials embedded in URLs (`https://user:token@host/…`) are masked in errors and logs.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use tokio::process::Command;

use crate::error::{Result, VcsError};
use crate::settings::VcsSettings;

/// Environment variables passed through to `git`; everything else is removed.
const PASSED_THROUGH: &[&str] = &["PATH", "HOME", "TMPDIR", "SSH_AUTH_SOCK"];

/// Keep error messages readable: only the end of a long stderr is kept.
const STDERR_TAIL_BYTES: usize = 2000;

/// Runs `git args…` in `dir` and returns its standard output.
pub(crate) async fn run(settings: &VcsSettings, dir: &Path, args: &[&str]) -> Result<String> {
    let mut command = Command::new("git");
    command
        .args(args)
        .current_dir(dir)
        .env_clear()
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    for name in PASSED_THROUGH {
        if let Some(value) = std::env::var_os(name) {
            command.env(name, value);
        }
    }
    command
        .env("LC_ALL", "C")
        .env("GIT_TERMINAL_PROMPT", "0")
        .env("GIT_ALLOW_PROTOCOL", "file:git:http:https:ssh")
        .env("GIT_AUTHOR_NAME", &settings.author_name)
        .env("GIT_AUTHOR_EMAIL", &settings.author_email)
        .env("GIT_COMMITTER_NAME", &settings.author_name)
        .env("GIT_COMMITTER_EMAIL", &settings.author_email);

    let joined_args = redact_credentials(&args.join(" "));
    let span = tracing::debug_span!("git", args = %joined_args, dir = %dir.display());
    let _entered = span.enter();
    #[cfg(unix)]
    command.process_group(0);
    let child = command.spawn().map_err(VcsError::io(dir))?;
    let child_id = child.id();
    let output = match tokio::time::timeout(settings.git_timeout, child.wait_with_output()).await {
        Ok(output) => output.map_err(VcsError::io(dir))?,
        // Dropping the future dropped the child, and `kill_on_drop` killed git itself.
        Err(_elapsed) => {
            kill_process_group(child_id);
            return Err(VcsError::GitTimeout {
                args: joined_args,
                dir: dir.to_path_buf(),
                timeout_s: duration_secs(settings.git_timeout),
            });
        }
    };
    if output.status.success() {
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    } else {
        let stderr = String::from_utf8_lossy(&output.stderr);
        let tail_start = stderr.len().saturating_sub(STDERR_TAIL_BYTES);
        let tail = redact_credentials(stderr.get(tail_start..).unwrap_or(stderr.as_ref()).trim());
        Err(VcsError::GitCommand {
            args: joined_args,
            dir: dir.to_path_buf(),
            status: output.status.to_string(),
            stderr: tail,
        })
    }
}

/// Kills what git started (hooks, credential helpers, ssh) in the group led by `leader`.
#[cfg(unix)]
fn kill_process_group(leader: Option<u32>) {
    use nix::sys::signal::{Signal, killpg};
    use nix::unistd::Pid;
    let Some(leader) = leader.and_then(|id| i32::try_from(id).ok()) else {
        return;
    };
    // ESRCH means the group is already gone, which is the goal.
    if let Err(err) = killpg(Pid::from_raw(leader), Signal::SIGKILL) {
        tracing::debug!(error = %err, group = leader, "killing the git process group");
    }
}

#[cfg(not(unix))]
fn kill_process_group(_leader: Option<u32>) {}

fn duration_secs(duration: Duration) -> u64 {
    duration.as_secs().max(1)
}

/// Replaces the user-info part of URLs (`https://user:token@host`) with `***`.
pub(crate) fn redact_credentials(text: &str) -> String {
    let mut redacted = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(scheme_end) = rest.find("://") {
        let (head, tail) = rest.split_at(scheme_end + 3);
        redacted.push_str(head);
        let authority_end = tail
            .find(|c: char| c == '/' || c.is_whitespace() || c == '\'' || c == '"')
            .unwrap_or(tail.len());
        let (authority, after) = tail.split_at(authority_end);
        match authority.rsplit_once('@') {
            Some((_credentials, host)) => {
                redacted.push_str("***@");
                redacted.push_str(host);
            }
            None => redacted.push_str(authority),
        }
        rest = after;
    }
    redacted.push_str(rest);
    redacted
}

#[cfg(test)]
mod tests {
    use super::redact_credentials;

    #[test]
    fn url_credentials_are_masked() {
        assert_eq!(
            redact_credentials("push -- https://bot:ghp_secret@github.com/o/r.git main"),
            "push -- https://***@github.com/o/r.git main"
        );
        assert_eq!(
            redact_credentials("fatal: 'https://tok@h/x' and ssh://git@h:22/y"),
            "fatal: 'https://***@h/x' and ssh://***@h:22/y"
        );
        assert_eq!(
            redact_credentials("push -- /srv/repo.git main"),
            "push -- /srv/repo.git main"
        );
        assert_eq!(redact_credentials("file:///tmp/a@b"), "file:///tmp/a@b");
    }
}
