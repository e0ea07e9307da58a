//! What the tests of many runs at once share: runs of `staging` in the background whose
//! output is collected as it comes, a Render spec whose smoke step waits for the test (the
//! gate), and waiting for a state with a hang guard. Included with `#[path]` by
//! `lease.rs`, `lease_postgres.rs`, `reverify.rs` and `stop_cleanly.rs`, next to `common`
//! and the Render stand-in.
#![allow(dead_code, unreachable_pub)]

use std::io::Read;
use std::path::Path;
use std::process::{Child, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::common::{run_staging, staging_command};
use super::render::{API_KEY, stand_in};

pub const A: &str = "aaaaaaa1111111122222223333333444444455a1";
pub const B: &str = "bbbbbbb1111111122222223333333444444455b2";
pub const OTHER: &str = "ccccccc1111111122222223333333444444455c3";

/// A bound on every wait of these tests for a state to be reached: a hang guard far above
/// anything the runs need, not a timing assertion.
pub const HANG: Duration = Duration::from_secs(240);

pub fn render_env() -> Vec<(&'static str, String)> {
    vec![
        ("RENDER_API_KEY", API_KEY.to_owned()),
        ("RENDER_API_URL", stand_in().prism.url()),
    ]
}

pub fn pg_url() -> String {
    std::env::var("STAGING_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned())
}

/// The probe that holds a run inside smoke until the test creates `go`, announcing itself
/// with `in-smoke-<commit>`.
pub const GATE: &str = r#"
[[probes]]
name = "gate"
timeout = "5m"
command = { run = ["sh", "-c", "touch in-smoke-${commit} && while [ ! -f go ]; do sleep 0.05; done"] }
"#;

/// A Render staging (and production) environment of one worker service, with the gate.
pub fn render_spec(dir: &Path, staging_id: &str, production_id: &str, project_extra: &str) {
    std::fs::write(
        dir.join("staging.toml"),
        format!(
            r#"[project]
name = "lease"
{project_extra}

[environments.staging]
provider = "render"
promotes_to = "production"
deploy_timeout = "2m"

[environments.production]
provider = "render"
protected = true
deploy_timeout = "2m"

[services.worker]
http = false
settings = {{ service_id = "{staging_id}" }}
overrides.production = {{ service_id = "{production_id}" }}

[vars.RELEASE]
value = "${{commit}}"
{GATE}"#
        ),
    )
    .unwrap();
}

/// A running `staging` whose stdout and stderr are collected as they come.
pub struct Bg {
    child: Child,
    output: Arc<Mutex<String>>,
}

impl Bg {
    pub fn start(mut cmd: std::process::Command) -> Self {
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let output = Arc::new(Mutex::new(String::new()));
        for pipe in [
            Box::new(child.stdout.take().unwrap()) as Box<dyn Read + Send>,
            Box::new(child.stderr.take().unwrap()),
        ] {
            let output = output.clone();
            std::thread::spawn(move || {
                let mut pipe = pipe;
                let mut buf = [0u8; 4096];
                while let Ok(n) = pipe.read(&mut buf) {
                    if n == 0 {
                        break;
                    }
                    output
                        .lock()
                        .unwrap()
                        .push_str(&String::from_utf8_lossy(&buf[..n]));
                }
            });
        }
        Bg { child, output }
    }

    pub fn text(&self) -> String {
        self.output.lock().unwrap().clone()
    }

    /// Wait for the exit code (a hang guard kills it after [`HANG`]).
    pub fn finish(mut self) -> (Option<i32>, String) {
        let started = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                // The readers get the last bytes once the pipes close.
                std::thread::sleep(Duration::from_millis(100));
                return (status.code(), self.text());
            }
            if started.elapsed() > HANG {
                let _ = self.child.kill();
                panic!("staging did not end: {}", self.text());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn signal(&self, sig: nix::sys::signal::Signal) {
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(self.child.id() as i32), sig).unwrap();
    }
}

/// Wait until `ready` holds, failing with `what` after [`HANG`].
pub fn wait_for(what: &str, mut ready: impl FnMut() -> bool) {
    let started = Instant::now();
    while !ready() {
        assert!(started.elapsed() < HANG, "never happened: {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

pub fn render_command(
    dir: &Path,
    args: &[&str],
    extra: &[(&str, String)],
) -> std::process::Command {
    let mut env = render_env();
    env.extend(extra.iter().map(|(k, v)| (*k, v.clone())));
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    staging_command(dir, args, &env)
}

pub fn render_run(dir: &Path, args: &[&str]) -> std::process::Output {
    let env = render_env();
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    run_staging(dir, args, &env)
}

/// The requests of `requests` that mention `text`.
pub fn mentioning(requests: &[String], text: &str) -> Vec<String> {
    requests
        .iter()
        .filter(|r| r.contains(text))
        .cloned()
        .collect()
}

/// Index of the first and last request of `requests` that mentions `text`.
pub fn span(requests: &[String], text: &str) -> Option<(usize, usize)> {
    let first = requests.iter().position(|r| r.contains(text))?;
    let last = requests.iter().rposition(|r| r.contains(text))?;
    Some((first, last))
}

/// Whether process `pid` runs (a zombie has ended: it only waits to be reaped).
pub fn running(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().next())
            .is_some_and(|state| !matches!(state, "Z" | "X")),
        Err(_) => false,
    }
}

/// Local services for the lease tests: a Python server answering its commit.
pub fn local_workspace(project_extra: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("server.py"), super::common::SERVER).unwrap();
    std::fs::write(
        dir.path().join("staging.toml"),
        format!(
            r#"[project]
name = "lease-local"
{project_extra}

[environments.staging]
provider = "local"
deploy_timeout = "60s"

[services.web]
health_path = "/up"
settings = {{ command = ["python3", "server.py"], stop_timeout = "2s" }}
{GATE}"#
        ),
    )
    .unwrap();
    dir
}
