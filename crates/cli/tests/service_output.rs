//! What a local service prints reaches the log tail whatever its bytes: invalid UTF-8 is
//! shown lossily (U+FFFD), and the pipe is read until the service exits, so the service is
//! never killed by a closed pipe.

use assert_cmd::Command;

/// Prints invalid UTF-8, then a numbered line (and invalid UTF-8 again) every 100ms, and never answers on `$PORT`.
/// Each line is also appended to `alive.log`, so the test can tell the service kept
/// running (a write into a closed pipe would have killed it with EPIPE).
const NOISY: &str = r#"
import sys, time
out = sys.stdout.buffer
out.write(b"bad bytes \xff\xfe\xc3( here\n")
out.flush()
for i in range(1, 1000):
    out.write(b"tick %d \x80\n" % i)
    if i % 4 == 0:
        out.write(b"bad bytes \xff\xfe\xc3( here\n")
    out.flush()
    with open("alive.log", "a") as f:
        f.write("%d\n" % i)
    time.sleep(0.1)
"#;

#[test]
fn a_service_printing_invalid_utf8_keeps_running_and_its_lines_appear_lossily() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("staging.toml"),
        r#"[project]
name = "noisy"

[environments.staging]
provider = "local"
deploy_timeout = "3s"

[services.web]
health_path = "/up"
settings = { command = ["python3", "noisy.py"], stop_timeout = "2s" }
"#,
    )
    .unwrap();
    std::fs::write(dir.path().join("noisy.py"), NOISY).unwrap();
    let out = Command::cargo_bin("staging")
        .unwrap()
        .args([
            "up",
            "--env",
            "staging",
            "--commit",
            "0123456789abcdef",
            "-f",
        ])
        .arg(dir.path().join("staging.toml"))
        .current_dir(dir.path())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains("| bad bytes \u{fffd}\u{fffd}\u{fffd}( here"),
        "the invalid line is shown lossily:\n{stdout}"
    );
    let ticks: Vec<u32> = stdout
        .lines()
        .filter_map(|l| l.trim_start().strip_prefix("| tick "))
        .filter_map(|l| l.split(' ').next()?.parse().ok())
        .collect();
    assert!(
        ticks.iter().any(|t| *t >= 10),
        "the lines printed after the bad bytes reach the tail until the end:\n{stdout}"
    );
    assert!(stdout.contains("tick 2 \u{fffd}"), "{stdout}");
    let alive = std::fs::read_to_string(dir.path().join("alive.log")).unwrap();
    assert!(
        alive.lines().count() >= 10,
        "the service died early (after {} lines)",
        alive.lines().count()
    );
}
