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
            "0123456789abcdef",
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
        files.contains("\"commit\": \"0123456789abcdef\""),
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
        .args(["up", "--json", "--commit", "0123456789abcdef", "-f"])
        .arg(dir.path().join("staging.toml"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["ok"], true);
    assert_eq!(doc["commit"], "0123456789abcdef");
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
        .args(["up", "--commit", "0123456789abcdef", "-f"])
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
        .args(["up", "--commit", "0123456789abcdef", "-f"])
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

/// Start `up` on a service that never becomes healthy, send SIGINT once it runs, and check
/// that `staging` exits 130 and the service is gone. Returns what `staging` printed on stderr.
fn interrupt_up(extra: &[&str]) -> String {
    let dir = workspace(&spec(
        r#"["sh", "-c", "echo $$ > child.pid; exec sleep 300"]"#,
        "5m",
    ));
    let mut child = StdCommand::new(assert_cmd::cargo::cargo_bin("staging"))
        .args(["up", "--commit", "0123456789abcdef"])
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
            "feedc0ffee1234567890",
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
