//! Child processes of the local provider: spawned in their own process group with their
//! output kept in a ring buffer, stopped with SIGTERM and then SIGKILL.

use std::collections::VecDeque;
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use secrecy::{ExposeSecret, SecretString};
use staging_core::{Error, Redactor, Result};
use tokio::io::AsyncRead;
use tokio::process::{Child, Command};

use crate::settings::LocalServiceSettings;
use crate::state::{self, ServiceState};

/// How many output lines are kept per process.
const KEPT_LINES: usize = 200;

/// A running service process.
#[derive(Debug)]
pub(crate) struct ServiceProcess {
    child: Child,
    pid: Option<u32>,
    stop_timeout: Duration,
    /// The state file that announces this process to other `staging` processes, once live.
    state_file: Option<PathBuf>,
}

impl ServiceProcess {
    /// Start the service's command with `env` added to the inherited environment.
    pub(crate) fn spawn(
        settings: &LocalServiceSettings,
        env: &[(String, SecretString)],
        logs: Arc<Mutex<VecDeque<String>>>,
    ) -> Result<Self> {
        let (program, args) = settings
            .command
            .split_first()
            .expect("command checked non-empty");
        let mut cmd = Command::new(program);
        cmd.args(args)
            .current_dir(&settings.workdir)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            // Its own group: a terminal's Ctrl-C reaches us, and we stop the service in order.
            .process_group(0)
            .kill_on_drop(true);
        for (k, v) in env {
            cmd.env(k, v.expose_secret());
        }
        let mut child = cmd.spawn().map_err(|e| {
            Error::io(
                format!(
                    "cannot start `{}` in {}",
                    settings.command.join(" "),
                    settings.workdir.display()
                ),
                e,
            )
        })?;
        if let Some(out) = child.stdout.take() {
            tokio::spawn(keep_lines(out, logs.clone()));
        }
        if let Some(err) = child.stderr.take() {
            tokio::spawn(keep_lines(err, logs));
        }
        let pid = child.id();
        Ok(ServiceProcess {
            child,
            pid,
            stop_timeout: settings.stop_timeout,
            state_file: None,
        })
    }

    /// The process id, while it runs.
    pub(crate) fn pid(&self) -> Option<u32> {
        self.pid
    }

    /// Write the state file at `path` that announces this process; it is removed when the
    /// process is stopped.
    pub(crate) fn publish(&mut self, path: PathBuf, service_state: &ServiceState) {
        match state::write(&path, service_state) {
            Ok(()) => self.state_file = Some(path),
            Err(e) => tracing::warn!(
                "cannot write the state file {}: {e}; other `staging` commands will not see `{}`",
                path.display(),
                service_state.service
            ),
        }
    }

    /// The exit status, if the process has ended.
    pub(crate) fn exited(&mut self) -> Option<String> {
        match self.child.try_wait() {
            Ok(Some(status)) => Some(status.to_string()),
            Ok(None) => None,
            Err(e) => Some(format!("unknown status: {e}")),
        }
    }

    /// Stop the process in the background: SIGTERM to its group, SIGKILL after the timeout.
    pub(crate) fn stop(self) {
        match tokio::runtime::Handle::try_current() {
            Ok(handle) => {
                handle.spawn_blocking(move || stop_all(vec![self]));
            }
            Err(_) => stop_all(vec![self]),
        }
    }
}

impl Drop for ServiceProcess {
    /// A process dropped without [`stop_all`] is killed (`kill_on_drop`); its file goes too.
    fn drop(&mut self) {
        // `kill_on_drop` reaches only the leader: whatever it started goes with its group.
        signal(self.pid, Signal::SIGKILL);
        if let (Some(path), Some(pid)) = (self.state_file.take(), self.pid) {
            state::remove_if_owned(&path, pid);
        }
    }
}

/// Stop processes and wait for them: SIGTERM to each group, then SIGKILL to those still
/// running after their timeout. Blocks; used when the provider is dropped.
pub(crate) fn stop_all(mut processes: Vec<ServiceProcess>) {
    // Each state file goes once its process is gone, whichever way it ends below.
    let published: Vec<(PathBuf, u32)> = processes
        .iter_mut()
        .filter_map(|p| Some((p.state_file.take()?, p.pid?)))
        .collect();
    stop_and_wait(&mut processes);
    for (path, pid) in published {
        state::remove_if_owned(&path, pid);
    }
}

fn stop_and_wait(processes: &mut Vec<ServiceProcess>) {
    let groups: Vec<Option<u32>> = processes.iter().map(|p| p.pid).collect();
    for p in processes.iter() {
        signal(p.pid, Signal::SIGTERM);
    }
    wait_or_kill(processes);
    // Whatever a service started is in its group and goes with it, even once the service
    // itself has exited (`sleep 300 &` then `exit`) or a child ignored SIGTERM.
    for pid in groups {
        signal(pid, Signal::SIGKILL);
    }
}

fn wait_or_kill(processes: &mut Vec<ServiceProcess>) {
    let started = Instant::now();
    let longest = processes
        .iter()
        .map(|p| p.stop_timeout)
        .max()
        .unwrap_or_default();
    while started.elapsed() < longest {
        processes.retain_mut(|p| p.exited().is_none());
        if processes.is_empty() {
            return;
        }
        std::thread::sleep(Duration::from_millis(25));
    }
    for mut p in processes.drain(..) {
        signal(p.pid, Signal::SIGKILL);
        let _ = p.child.start_kill();
        let _ = p.child.try_wait();
    }
}

fn signal(pid: Option<u32>, sig: Signal) {
    if let Some(pid) = pid.and_then(|p| i32::try_from(p).ok()) {
        // The group may be gone already; that is the outcome we want.
        let _ = killpg(Pid::from_raw(pid), sig);
    }
}

/// Keep the service's output lines, lossily decoded and redacted, reading the pipe until the
/// service closes it: invalid UTF-8 never stops the read (the service would die on its next
/// write into a closed pipe).
async fn keep_lines(stream: impl AsyncRead + Unpin, logs: Arc<Mutex<VecDeque<String>>>) {
    staging_core::redact::for_each_line_lossy(stream, Redactor::global(), |line| {
        tracing::debug!(target: "staging_provider_local::service", "{line}");
        let mut logs = logs.lock().unwrap_or_else(|e| e.into_inner());
        if logs.len() == KEPT_LINES {
            logs.pop_front();
        }
        logs.push_back(line);
    })
    .await;
}

/// A free loopback port, other than `avoid`.
pub(crate) fn free_port(avoid: Option<u16>) -> Result<u16> {
    for _ in 0..16 {
        let port = TcpListener::bind(("127.0.0.1", 0))
            .and_then(|l| l.local_addr())
            .map_err(|e| Error::io("cannot find a free local port", e))?
            .port();
        if Some(port) != avoid {
            return Ok(port);
        }
    }
    Err(Error::failed("cannot find a free local port"))
}
