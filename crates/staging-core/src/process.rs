//! Child processes a run starts (migration commands, `pg_dump`/`pg_restore`, a secret
//! store's command), each in a process group of its own, so that stopping one stops
//! everything it started.
//!
//! Why: a migration command is often a shell or a wrapper (`bin/rails`, `sh -c ...`) whose
//! own children do the writing. Killing only the direct child (what `kill_on_drop` does)
//! leaves them running, writing to the database after `staging` has exited and released
//! the environment's lease. A [`GroupChild`] dropped before its command ended — the run
//! was stopped by a signal, a timeout, the loss of the lease — sends SIGTERM to the whole
//! group, waits a bounded grace for the command to end, then SIGKILLs whatever is left of
//! the group. Since the drop happens where the run's future is dropped, the group is gone
//! before the caller goes on to release the lease and exit.
//!
//! Being in a group of its own also means a terminal's Ctrl-C reaches `staging` only: the
//! command is stopped in order, never half by the terminal and half by us.

use std::io;
use std::process::{ExitStatus, Output};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use tokio::io::AsyncReadExt;
use tokio::process::{Child, Command};

/// How long a stopped command has between SIGTERM and SIGKILL.
pub const STOP_GRACE: Duration = Duration::from_secs(5);

/// A child process leading a process group of its own; see the module docs.
#[derive(Debug)]
pub struct GroupChild {
    child: Child,
    pgid: Option<i32>,
    grace: Duration,
    /// The command ended and its group was cleaned up: nothing to stop on drop.
    ended: bool,
}

impl GroupChild {
    /// Spawn `cmd` as the leader of a new process group.
    pub fn spawn(cmd: &mut Command) -> io::Result<Self> {
        let child = cmd.process_group(0).kill_on_drop(true).spawn()?;
        let pgid = child.id().and_then(|p| i32::try_from(p).ok());
        Ok(GroupChild {
            child,
            pgid,
            grace: STOP_GRACE,
            ended: false,
        })
    }

    /// Another grace between SIGTERM and SIGKILL when stopped.
    pub fn with_grace(mut self, grace: Duration) -> Self {
        self.grace = grace;
        self
    }

    /// The process group id (the leader's pid), while known.
    pub fn pgid(&self) -> Option<i32> {
        self.pgid
    }

    /// The child, to take its pipes.
    pub fn child_mut(&mut self) -> &mut Child {
        &mut self.child
    }

    /// Wait until the command ends; then whatever it left behind in its group is killed.
    pub async fn wait(&mut self) -> io::Result<ExitStatus> {
        let status = self.child.wait().await?;
        self.kill_leftovers();
        Ok(status)
    }

    /// Wait until the command ends, collecting what it prints on the pipes it was given
    /// (`Stdio::piped()` for stdout and stderr; an unpiped stream reads as empty).
    pub async fn wait_with_output(mut self) -> io::Result<Output> {
        let mut stdout = self.child.stdout.take();
        let mut stderr = self.child.stderr.take();
        let read = |pipe: Option<Box<dyn tokio::io::AsyncRead + Unpin + Send>>| async move {
            let mut buf = Vec::new();
            if let Some(mut p) = pipe {
                p.read_to_end(&mut buf).await?;
            }
            Ok::<_, io::Error>(buf)
        };
        let (out, err, status) = tokio::join!(
            read(
                stdout
                    .take()
                    .map(|p| Box::new(p) as Box<dyn tokio::io::AsyncRead + Unpin + Send>)
            ),
            read(
                stderr
                    .take()
                    .map(|p| Box::new(p) as Box<dyn tokio::io::AsyncRead + Unpin + Send>)
            ),
            self.wait()
        );
        Ok(Output {
            status: status?,
            stdout: out?,
            stderr: err?,
        })
    }

    /// The command has ended: SIGKILL what it left in its group (`sleep 300 &`).
    fn kill_leftovers(&mut self) {
        self.ended = true;
        if let Some(pgid) = self.pgid.take() {
            // The group may be gone already; that is the outcome wanted.
            let _ = killpg(Pid::from_raw(pgid), Signal::SIGKILL);
        }
    }
}

impl Drop for GroupChild {
    /// Stopped before it ended: SIGTERM to the group, up to the grace for the leader to
    /// exit, then SIGKILL to the group. Blocks for at most the grace: this runs where a run
    /// is being stopped, and what follows (releasing the lease, exiting) must not happen
    /// while the group still runs.
    fn drop(&mut self) {
        if self.ended {
            return;
        }
        let Some(pgid) = self.pgid else {
            return;
        };
        let group = Pid::from_raw(pgid);
        if killpg(group, Signal::SIGTERM).is_ok() {
            let started = Instant::now();
            while started.elapsed() < self.grace {
                if matches!(self.child.try_wait(), Ok(Some(_)) | Err(_)) {
                    break;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        let _ = killpg(group, Signal::SIGKILL);
        let _ = self.child.start_kill();
        // SIGKILL is delivered asynchronously: reap the leader (bounded) so that when the drop
        // returns it has ended, not merely been signalled.
        let killed = Instant::now();
        while killed.elapsed() < Duration::from_secs(2) {
            if matches!(self.child.try_wait(), Ok(Some(_)) | Err(_)) {
                break;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        tracing::debug!("stopped the process group {pgid}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Whether `pid` runs (a zombie has ended: it only waits to be reaped).
    fn running(pid: i32) -> bool {
        match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
            Ok(stat) => stat
                .rsplit_once(')')
                .and_then(|(_, rest)| rest.split_whitespace().next())
                .is_some_and(|state| !matches!(state, "Z" | "X")),
            Err(_) => false,
        }
    }

    #[tokio::test]
    async fn a_dropped_command_takes_what_it_started_with_it() {
        let dir = tempfile::tempdir().unwrap();
        let pids = dir.path().join("pids");
        // A shell whose own child does the work, as `sh -c`, `bin/rails` or `npx` do.
        let script = format!(
            "sleep 300 & echo $$ $! > {p}.tmp; mv {p}.tmp {p}; wait",
            p = pids.display()
        );
        let mut cmd = Command::new("sh");
        cmd.args(["-c", &script]);
        let mut child = GroupChild::spawn(&mut cmd).unwrap();
        let run = async {
            let _ = child.wait().await;
        };
        // Stop the run as a signal would: its future is dropped once the command runs.
        tokio::select! {
            _ = run => panic!("the command ended by itself"),
            _ = async {
                while !pids.exists() {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            } => {}
        }
        drop(child);
        let text = std::fs::read_to_string(&pids).unwrap();
        let ids: Vec<i32> = text
            .split_whitespace()
            .map(|p| p.parse().unwrap())
            .collect();
        assert_eq!(ids.len(), 2, "{text}");
        for pid in ids {
            assert!(!running(pid), "process {pid} still runs after the drop");
        }
    }

    #[tokio::test]
    async fn a_command_that_ignores_sigterm_is_killed_after_the_grace() {
        let dir = tempfile::tempdir().unwrap();
        let ready = dir.path().join("ready");
        let script = format!(
            "trap '' TERM; echo $$ > {r}.tmp; mv {r}.tmp {r}; while :; do sleep 0.05; done",
            r = ready.display()
        );
        let mut cmd = Command::new("sh");
        cmd.args(["-c", &script]);
        let child = GroupChild::spawn(&mut cmd)
            .unwrap()
            .with_grace(Duration::from_millis(200));
        while !ready.exists() {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let pid: i32 = std::fs::read_to_string(&ready)
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        drop(child);
        assert!(!running(pid), "process {pid} survived SIGKILL");
    }

    #[tokio::test]
    async fn a_command_that_ends_leaves_nothing_behind_and_reports_its_output() {
        let dir = tempfile::tempdir().unwrap();
        let pid_file = dir.path().join("bg");
        let script = format!("sleep 300 & echo $! > {}; echo done", pid_file.display());
        let mut cmd = Command::new("sh");
        cmd.args(["-c", &script])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        let out = GroupChild::spawn(&mut cmd)
            .unwrap()
            .wait_with_output()
            .await
            .unwrap();
        assert!(out.status.success());
        assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "done");
        let bg: i32 = std::fs::read_to_string(&pid_file)
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        // Killed when the command ended; give the kernel a moment to deliver it.
        let mut tries = 0;
        while running(bg) && tries < 100 {
            std::thread::sleep(Duration::from_millis(10));
            tries += 1;
        }
        assert!(
            !running(bg),
            "the background process {bg} outlived its command"
        );
    }
}
