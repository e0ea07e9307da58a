//! `staging up` on the local provider, end to end: the example stack, a service that never
//! becomes healthy, Ctrl-C, and a canary secret that must not appear in any output.

use std::path::{Path, PathBuf};
use std::process::{Command as StdCommand, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use assert_cmd::Command;

mod common;
use common::copy_dir;

const CANARY: &str = "canary-4a7f1e9b2c8d6e3f0a5b7c9d1e2f3a4b";

const SERVER: &str = r#"
import http.server, json, os
commit = os.environ.get("STAGING_COMMIT", "")
print("booting with secret", os.environ.get("JWT_SECRET"), flush=True)
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = json.dumps({"status": "ok", "commit": commit}).encode()
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *a):
        pass
http.server.HTTPServer(("127.0.0.1", int(os.environ["PORT"])), H).serve_forever()
"#;

fn spec(command: &str, timeout: &str) -> String {
    format!(
        r#"[project]
name = "t"

[environments.staging]
provider = "local"
deploy_timeout = "{timeout}"
secrets = {{ dotenv = "staging.env" }}

[services.web]
health_path = "/up"
settings = {{ command = {command}, stop_timeout = "2s" }}

[vars.JWT_SECRET]
secret = true
"#
    )
}

fn workspace(spec_text: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("staging.toml"), spec_text).unwrap();
    std::fs::write(
        dir.path().join("staging.env"),
        format!("JWT_SECRET={CANARY}\n"),
    )
    .unwrap();
    std::fs::write(dir.path().join("server.py"), SERVER).unwrap();
    dir
}

fn all_files_text(dir: &Path) -> String {
    let mut out = String::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if p.file_name().is_some_and(|n| n != "staging.env") {
                out.push_str(&String::from_utf8_lossy(&std::fs::read(&p).unwrap()));
            }
        }
    }
    out
}

#[test]
fn up_deploys_verifies_and_records_evidence_without_leaking_the_secret() {
    let dir = workspace(&spec(r#"["python3", "server.py"]"#, "60s"));
    let out = Command::cargo_bin("staging")
        .unwrap()
        .args([
            "up",
            "--env",
            "staging",
            "--commit",
            "0123456789abcdef0123456789abcdef01234567",
            "-v",
            "-v",
            "-f",
        ])
        .arg(dir.path().join("staging.toml"))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(0),
        "stdout:\n{stdout}\nstderr:\n{stderr}"
    );
    for step in [
        "validate", "secrets", "deploy", "wait", "verify", "evidence",
    ] {
        assert!(
            stdout.contains(&format!(" {step} ")),
            "step {step} missing from:\n{stdout}"
        );
    }
    assert!(stdout.contains("serving 0123456789ab"), "{stdout}");
    // The service printed the secret; the debug log carried it; nothing shows it.
    assert!(
        stderr.contains("booting with secret [REDACTED]"),
        "the child's output is logged, redacted:\n{stderr}"
    );
    assert!(
        !stdout.contains(CANARY) && !stderr.contains(CANARY),
        "the canary leaked"
    );
    let files = all_files_text(dir.path());
    assert!(
        files.contains("\"commit\": \"0123456789abcdef0123456789abcdef01234567\""),
        "evidence was not written"
    );
    assert!(
        !files.contains(CANARY),
        "the canary leaked into a file the run wrote"
    );
}

#[test]
fn up_json_is_one_document_without_the_secret() {
    let dir = workspace(&spec(r#"["python3", "server.py"]"#, "60s"));
    let out = Command::cargo_bin("staging")
        .unwrap()
        .args([
            "up",
            "--json",
            "--commit",
            "0123456789abcdef0123456789abcdef01234567",
            "-f",
        ])
        .arg(dir.path().join("staging.toml"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["ok"], true);
    assert_eq!(doc["commit"], "0123456789abcdef0123456789abcdef01234567");
    let status = |name: &str| {
        doc["steps"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["step"] == name)
            .map(|s| s["status"].clone())
    };
    for step in [
        "validate", "secrets", "deploy", "wait", "verify", "evidence",
    ] {
        assert_eq!(
            status(step),
            Some(serde_json::json!("passed")),
            "{step}: {doc}"
        );
    }
    // Nothing to migrate and no probe in this spec: those steps say so instead of passing.
    assert_eq!(
        status("migrate"),
        Some(serde_json::json!("skipped")),
        "{doc}"
    );
    assert_eq!(status("smoke"), Some(serde_json::json!("skipped")), "{doc}");
    assert!(!String::from_utf8_lossy(&out.stdout).contains(CANARY));
}

#[test]
fn a_service_that_never_becomes_healthy_fails_up_with_exit_1_and_its_last_lines() {
    let dir = workspace(&spec(
        r#"["sh", "-c", "echo connecting to db; echo fatal: cannot reach db >&2; sleep 60"]"#,
        "2s",
    ));
    let out = Command::cargo_bin("staging")
        .unwrap()
        .args([
            "up",
            "--commit",
            "0123456789abcdef0123456789abcdef01234567",
            "-f",
        ])
        .arg(dir.path().join("staging.toml"))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("not live within 2s"), "{stdout}");
    assert!(
        stdout.contains("| fatal: cannot reach db"),
        "the last lines are shown:\n{stdout}"
    );
    assert!(
        stdout.contains("skip verify"),
        "later steps are skipped:\n{stdout}"
    );
}

#[test]
fn a_missing_secret_fails_the_secrets_step_and_deploys_nothing() {
    let dir = workspace(&spec(r#"["python3", "server.py"]"#, "60s"));
    std::fs::write(dir.path().join("staging.env"), "OTHER=1\n").unwrap();
    let out = Command::cargo_bin("staging")
        .unwrap()
        .args([
            "up",
            "--commit",
            "0123456789abcdef0123456789abcdef01234567",
            "-f",
        ])
        .arg(dir.path().join("staging.toml"))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("JWT_SECRET"), "{stdout}");
    assert!(stdout.contains("skip deploy"), "{stdout}");
}

#[test]
fn ctrl_c_during_up_stops_the_services_it_started() {
    let stderr = interrupt_up(&[]);
    assert!(!stderr.contains("canceled"), "{stderr}");
}

#[test]
fn ctrl_c_with_cancel_on_interrupt_also_cancels_the_pending_deploy() {
    let stderr = interrupt_up(&["--cancel-on-interrupt"]);
    assert!(
        stderr.contains("web: deploy local-web-1 is canceled"),
        "{stderr}"
    );
}

#[test]
fn ctrl_c_during_a_keep_running_run_still_interrupts_it_with_130() {
    let stderr = interrupt_up(&["--keep-running"]);
    assert!(!stderr.contains("press Ctrl-C to stop"), "{stderr}");
}

/// Start `up` on a service that never becomes healthy, send SIGINT once it runs, and check
/// that `staging` exits 130 and the service is gone. Returns what `staging` printed on stderr.
fn interrupt_up(extra: &[&str]) -> String {
    let dir = workspace(&spec(
        r#"["sh", "-c", "echo $$ > child.pid; exec sleep 300"]"#,
        "5m",
    ));
    let mut child = StdCommand::new(assert_cmd::cargo::cargo_bin("staging"))
        .args(["up", "--commit", "0123456789abcdef0123456789abcdef01234567"])
        .args(extra)
        .arg("-f")
        .arg(dir.path().join("staging.toml"))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid_file = dir.path().join("child.pid");
    let started = Instant::now();
    let service_pid: i32 = loop {
        if let Some(pid) = std::fs::read_to_string(&pid_file)
            .ok()
            .and_then(|s| s.trim().parse().ok())
        {
            break pid;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the service never started"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(alive(service_pid));
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGINT,
    )
    .unwrap();
    let status = wait_with_bound(&mut child, Duration::from_secs(30));
    assert_eq!(status.code(), Some(130));
    let gone = Instant::now();
    while alive(service_pid) && gone.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(
        !alive(service_pid),
        "the service process {service_pid} survived Ctrl-C"
    );
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
    stderr
}

fn wait_with_bound(child: &mut std::process::Child, bound: Duration) -> std::process::ExitStatus {
    let started = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if started.elapsed() > bound {
            let _ = child.kill();
            panic!("staging did not exit within {bound:?} of SIGINT");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Alive and not a zombie.
fn alive(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => !stat
            .rsplit(')')
            .next()
            .is_some_and(|rest| rest.trim_start().starts_with('Z')),
        Err(_) => false,
    }
}

/// The demo service binary, built once for these tests.
fn demo_app() -> &'static PathBuf {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        let status = StdCommand::new(env!("CARGO"))
            .args(["build", "--quiet", "-p", "demo-app"])
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .status()
            .unwrap();
        assert!(status.success(), "cargo build -p demo-app failed");
        let staging = assert_cmd::cargo::cargo_bin("staging");
        staging.parent().unwrap().join("demo-app")
    })
}

#[test]
fn the_example_stack_passes_the_whole_pipeline() {
    let example = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../examples/demo");
    let dir = tempfile::tempdir().unwrap();
    copy_dir(&example, dir.path());
    let spec_path = dir.path().join("staging.toml");
    let text = std::fs::read_to_string(&spec_path).unwrap();
    let command = format!("command = [{:?}]", demo_app().display().to_string());
    let text = text.replace(
        r#"command = ["cargo", "run", "--quiet", "--package", "demo-app"]"#,
        &command,
    );
    assert!(
        text.contains(&command),
        "the example's command line changed; update this test"
    );
    std::fs::write(&spec_path, text).unwrap();
    std::fs::write(
        dir.path().join("secrets/staging.env"),
        format!("JWT_SECRET=\"{CANARY}\"\n"),
    )
    .unwrap();
    let out = Command::cargo_bin("staging")
        .unwrap()
        .args([
            "up",
            "--env",
            "staging",
            "--commit",
            "feedc0ffee1234567890feedc0ffee1234567890",
            "-f",
        ])
        .arg(&spec_path)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(0),
        "stdout:\n{stdout}\nstderr:\n{stderr}"
    );
    assert!(stdout.contains("PASSED"), "{stdout}");
    assert!(!stdout.contains(CANARY) && !stderr.contains(CANARY));
    std::fs::remove_file(dir.path().join("secrets/staging.env")).unwrap();
    assert!(
        !all_files_text(dir.path()).contains(CANARY),
        "the canary leaked into a file the run wrote"
    );
}

// --- `up --keep-running`: the stack stays up for `smoke` and `status` in other processes ---

const COMMIT: &str = "0123456789abcdef0123456789abcdef01234567";

/// The canary spec with a health probe that expects the deployed commit (or, with
/// `status = 418`, a probe that fails).
fn keep_running_workspace(probe_status: u16) -> tempfile::TempDir {
    let text = spec(r#"["python3", "server.py"]"#, "60s")
        + &format!(
            r#"
[[probes]]
name = "health"
retry_for = "10s"
http = {{ url = "${{services.web.url}}/up", expect = {{ status = {probe_status}, json = {{ "$.commit" = "${{commit}}" }} }} }}
"#
        );
    workspace(&text)
}

/// A running `staging up --keep-running`, its output read as it comes.
struct KeptRunning {
    child: std::process::Child,
    stdout: std::sync::Arc<std::sync::Mutex<String>>,
    stderr: std::sync::Arc<std::sync::Mutex<String>>,
}

impl KeptRunning {
    fn start(dir: &Path) -> Self {
        let mut child = StdCommand::new(assert_cmd::cargo::cargo_bin("staging"))
            .args(["up", "--keep-running", "--commit", COMMIT, "-f"])
            .arg(dir.join("staging.toml"))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let collect = |stream: Box<dyn std::io::Read + Send>| {
            let text = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
            let sink = text.clone();
            std::thread::spawn(move || {
                use std::io::BufRead;
                for line in std::io::BufReader::new(stream)
                    .lines()
                    .map_while(Result::ok)
                {
                    let mut t = sink.lock().unwrap();
                    t.push_str(&line);
                    t.push('\n');
                }
            });
            text
        };
        let stdout = collect(Box::new(child.stdout.take().unwrap()));
        let stderr = collect(Box::new(child.stderr.take().unwrap()));
        KeptRunning {
            child,
            stdout,
            stderr,
        }
    }

    fn stdout(&self) -> String {
        self.stdout.lock().unwrap().clone()
    }

    fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    /// Wait until the run is over and the services are held; the URL `web` answers on.
    fn wait_until_held(&self) -> String {
        let started = Instant::now();
        while !self.stdout().contains("press Ctrl-C to stop") {
            assert!(
                started.elapsed() < Duration::from_secs(90),
                "`up --keep-running` never held the services:\nstdout:\n{}\nstderr:\n{}",
                self.stdout(),
                self.stderr()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        let stdout = self.stdout();
        let line = stdout
            .lines()
            .find(|l| l.trim_start().starts_with("web: http://"))
            .unwrap_or_else(|| panic!("no URL for web in:\n{stdout}"));
        let url = line.trim_start().trim_start_matches("web: ");
        url[..url.find(' ').unwrap_or(url.len())].to_owned()
    }

    fn signal(&self, sig: nix::sys::signal::Signal) {
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(self.child.id() as i32), sig).unwrap();
    }
}

impl Drop for KeptRunning {
    fn drop(&mut self) {
        // A failed assertion must not leave the stack running.
        if self.child.try_wait().ok().flatten().is_none() {
            self.signal(nix::sys::signal::Signal::SIGTERM);
            let _ = self.child.wait();
        }
    }
}

/// GET `path` from `url` (`http://127.0.0.1:PORT/`) over a plain socket: the status line
/// and body, or `None` when nothing answers.
fn http_get(url: &str, path: &str) -> Option<String> {
    use std::io::{Read, Write};
    let addr = url
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .parse()
        .unwrap();
    let mut s = std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(2)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").ok()?;
    let mut answer = String::new();
    s.read_to_string(&mut answer).ok()?;
    Some(answer)
}

fn state_file(dir: &Path) -> PathBuf {
    dir.join(".staging/local/staging/web.json")
}

/// The pid the state file names.
fn announced_pid(dir: &Path) -> i32 {
    let doc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(state_file(dir)).unwrap()).unwrap();
    doc["pid"].as_i64().unwrap() as i32
}

fn staging(dir: &Path, args: &[&str]) -> (Option<i32>, String, String) {
    let out = Command::cargo_bin("staging")
        .unwrap()
        .args(args)
        .arg("-f")
        .arg(dir.join("staging.toml"))
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn assert_no_canary(what: &str, text: &str) {
    assert!(!text.contains(CANARY), "the canary leaked into {what}");
}

#[test]
fn up_keep_running_keeps_the_service_answering_until_sigint_then_stops_it_and_removes_its_state_file()
 {
    let dir = keep_running_workspace(200);
    let mut up = KeptRunning::start(dir.path());
    let url = up.wait_until_held();
    assert!(
        up.stdout().contains("PASSED"),
        "the report comes first:\n{}",
        up.stdout()
    );
    // Well after the pipeline ended, the service still answers with the deployed commit.
    std::thread::sleep(Duration::from_secs(2));
    let answer = http_get(&url, "/up").expect("the kept service stopped answering");
    assert!(answer.starts_with("HTTP/1.0 200"), "{answer}");
    assert!(answer.contains(COMMIT), "{answer}");
    let file = std::fs::read_to_string(state_file(dir.path())).unwrap();
    assert!(file.contains(COMMIT) && file.contains(&url), "{file}");
    assert_no_canary("the state file", &file);
    let service_pid = announced_pid(dir.path());
    assert!(alive(service_pid));

    up.signal(nix::sys::signal::Signal::SIGINT);
    let status = wait_with_bound(&mut up.child, Duration::from_secs(30));
    assert_eq!(
        status.code(),
        Some(0),
        "the run passed; Ctrl-C after it keeps its code:\n{}",
        up.stderr()
    );
    let gone = Instant::now();
    while alive(service_pid) && gone.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(!alive(service_pid), "the service survived Ctrl-C");
    assert!(http_get(&url, "/up").is_none(), "{url} still answers");
    assert!(
        !state_file(dir.path()).exists(),
        "the state file outlived the service"
    );
    std::thread::sleep(Duration::from_millis(200));
    assert!(
        up.stdout().contains("stopping the services"),
        "{}",
        up.stdout()
    );
    assert_no_canary("up's stdout", &up.stdout());
    assert_no_canary("up's stderr", &up.stderr());
    assert_no_canary("a file the run wrote", &all_files_text(dir.path()));
}

#[test]
fn smoke_in_a_second_process_passes_against_the_kept_running_stack() {
    let dir = keep_running_workspace(200);
    let up = KeptRunning::start(dir.path());
    let url = up.wait_until_held();
    let (code, stdout, stderr) = staging(dir.path(), &["smoke", "--commit", COMMIT]);
    assert_eq!(code, Some(0), "stdout:\n{stdout}\nstderr:\n{stderr}");
    assert!(stdout.contains("1 passed, 0 failed"), "{stdout}");
    assert!(
        !stderr.contains("nothing is running"),
        "smoke saw nothing running:\n{stderr}"
    );
    // The probes reached the kept process: its URL, not another one.
    assert!(http_get(&url, "/up").is_some());
    for (what, text) in [("smoke's stdout", &stdout), ("smoke's stderr", &stderr)] {
        assert_no_canary(what, text);
    }
}

#[test]
fn status_in_a_second_process_shows_the_kept_running_service_live_with_its_commit() {
    let dir = keep_running_workspace(200);
    let up = KeptRunning::start(dir.path());
    let url = up.wait_until_held();
    let (code, stdout, stderr) = staging(dir.path(), &["status"]);
    assert_eq!(code, Some(0), "stdout:\n{stdout}\nstderr:\n{stderr}");
    let row = stdout
        .lines()
        .find(|l| l.starts_with("web "))
        .unwrap_or_else(|| panic!("no row for web:\n{stdout}"));
    assert!(row.contains(" live "), "{row}");
    assert!(row.contains(&COMMIT[..12]), "{row}");
    assert!(row.contains(&url), "{row}");
    assert!(!stderr.contains("nothing is running"), "{stderr}");
    let (code, json, _) = staging(dir.path(), &["status", "--json"]);
    assert_eq!(code, Some(0));
    let doc: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(
        doc["services"][0]["state"]["live"]["commit"], COMMIT,
        "{doc}"
    );
    for (what, text) in [("status's stdout", &stdout), ("status --json", &json)] {
        assert_no_canary(what, text);
    }
}

#[test]
fn a_stale_state_file_from_a_killed_run_is_ignored_and_removed_with_a_clear_message() {
    let dir = keep_running_workspace(200);
    let mut up = KeptRunning::start(dir.path());
    up.wait_until_held();
    // Kill the run and its service outright: nothing gets to clean up.
    let service_pid = announced_pid(dir.path());
    up.signal(nix::sys::signal::Signal::SIGKILL);
    let _ = up.child.wait();
    nix::sys::signal::killpg(
        nix::unistd::Pid::from_raw(service_pid),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    let gone = Instant::now();
    while alive(service_pid) && gone.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(
        state_file(dir.path()).exists(),
        "the killed run left its file"
    );

    let (code, stdout, stderr) = staging(dir.path(), &["status"]);
    assert_eq!(code, Some(0), "stdout:\n{stdout}\nstderr:\n{stderr}");
    let row = stdout.lines().find(|l| l.starts_with("web ")).unwrap();
    assert!(row.contains("not live"), "{row}");
    assert!(
        stderr.contains("stale state file") && stderr.contains(&service_pid.to_string()),
        "the stale file is named:\n{stderr}"
    );
    assert!(
        stderr.contains("nothing is running")
            && stderr.contains("run `staging up --keep-running --env staging`"),
        "{stderr}"
    );
    assert!(
        !state_file(dir.path()).exists(),
        "the stale file was not removed"
    );

    // Smoke says the same, and does not proceed to probe a URL that has no value.
    let (code, stdout, stderr) = staging(dir.path(), &["smoke", "--commit", COMMIT]);
    assert_eq!(code, Some(3), "stdout:\n{stdout}\nstderr:\n{stderr}");
    assert!(!stdout.contains("health"), "a probe ran:\n{stdout}");
    assert!(
        stderr.contains("nothing is running for `web` of `staging`")
            && stderr.contains("staging up --keep-running"),
        "{stderr}"
    );
    for text in [&stdout, &stderr, &up.stdout(), &up.stderr()] {
        assert_no_canary("an output", text);
    }
}

#[test]
fn keep_running_holds_a_failed_run_too_and_sigterm_exits_with_the_runs_code() {
    let dir = keep_running_workspace(418);
    let mut up = KeptRunning::start(dir.path());
    let url = up.wait_until_held();
    assert!(up.stdout().contains("FAILED"), "{}", up.stdout());
    assert!(
        http_get(&url, "/up").is_some(),
        "the failed stack was not kept"
    );
    up.signal(nix::sys::signal::Signal::SIGTERM);
    let status = wait_with_bound(&mut up.child, Duration::from_secs(30));
    assert_eq!(status.code(), Some(1), "{}", up.stderr());
    assert!(!state_file(dir.path()).exists());
}

/// A service that starts a child of its own (`sleep 300 &`, its pid in `grandchild.pid`),
/// then serves; a probe that keeps failing holds the run in its smoke step, with the
/// service live and its state file written.
fn signal_workspace() -> tempfile::TempDir {
    let text = spec(
        r#"["sh", "-c", "sleep 300 & echo $! > grandchild.pid; exec python3 server.py"]"#,
        "60s",
    ) + r#"
[[probes]]
name = "never"
retry_for = "10m"
http = { url = "${services.web.url}/up", expect = { status = 418 } }
"#;
    workspace(&text)
}

/// `up` stopped by `sig` while its service runs: the documented exit code, no process of
/// the service's group left (the service and the child it started), no state file, and
/// no evidence recorded.
fn signal_during_up(sig: nix::sys::signal::Signal, code: i32) {
    let dir = signal_workspace();
    let mut child = StdCommand::new(assert_cmd::cargo::cargo_bin("staging"))
        .args(["up", "--commit", COMMIT, "-f"])
        .arg(dir.path().join("staging.toml"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let started = Instant::now();
    while !state_file(dir.path()).exists() {
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "the service never became live"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let service = announced_pid(dir.path());
    let grandchild: i32 = std::fs::read_to_string(dir.path().join("grandchild.pid"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!(alive(service) && alive(grandchild));
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(child.id() as i32), sig).unwrap();
    let status = wait_with_bound(&mut child, Duration::from_secs(60));
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
    assert_eq!(status.code(), Some(code), "{stderr}");
    assert!(
        stderr.contains(&format!("interrupted by {sig}")),
        "{stderr}"
    );
    // The group was killed before `staging` exited: nothing of it is left.
    assert!(!alive(service), "the service {service} survived {sig}");
    assert!(
        !alive(grandchild),
        "the service's child {grandchild} survived {sig}"
    );
    assert!(!state_file(dir.path()).exists(), "a state file remains");
    let evidence = dir.path().join(".staging/evidence");
    // The environment's lease was released; its guard file under `.leases/` is no evidence.
    let recorded: Vec<PathBuf> = files_in(&evidence)
        .into_iter()
        .filter(|p| !p.components().any(|c| c.as_os_str() == ".leases"))
        .collect();
    assert!(
        recorded.is_empty(),
        "evidence was recorded for a stopped run: {recorded:?}"
    );
    assert!(
        !evidence.join(".leases/t.staging.lock").exists(),
        "the lease was not released"
    );
}

fn files_in(dir: &Path) -> Vec<PathBuf> {
    let mut out = vec![];
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            if e.path().is_dir() {
                stack.push(e.path());
            } else {
                out.push(e.path());
            }
        }
    }
    out
}

#[test]
fn sigterm_during_up_stops_the_service_group_removes_state_and_exits_143() {
    signal_during_up(nix::sys::signal::Signal::SIGTERM, 143);
}

#[test]
fn sighup_during_up_stops_the_service_group_removes_state_and_exits_129() {
    signal_during_up(nix::sys::signal::Signal::SIGHUP, 129);
}

/// A service that starts `sleep 300 &` and exits at once: the run fails, and the child it
/// left behind does not outlive `staging`.
#[test]
fn a_service_that_forks_a_child_and_dies_leaves_nothing_behind() {
    let dir = workspace(&spec(
        r#"["sh", "-c", "sleep 300 & echo $! > grandchild.pid; exit 3"]"#,
        "60s",
    ));
    let (code, stdout, stderr) = staging(dir.path(), &["up", "--commit", COMMIT]);
    assert_ne!(code, Some(0), "stdout:\n{stdout}\nstderr:\n{stderr}");
    let grandchild: i32 = std::fs::read_to_string(dir.path().join("grandchild.pid"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!(
        !alive(grandchild),
        "the child {grandchild} of the dead service survived `staging`"
    );
    assert!(!state_file(dir.path()).exists());
}
