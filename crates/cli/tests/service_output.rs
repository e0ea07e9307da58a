//! What a local service prints reaches the log tail whatever its bytes: invalid UTF-8 is
//! shown lossily (U+FFFD), and the pipe is read until the service exits, so the service is
//! never killed by a closed pipe.

use assert_cmd::Command;

/// Prints invalid UTF-8, then far more than a pipe buffer holds (2,000 lines of ~110 bytes,
/// invalid UTF-8 in each), then a last line, then records that it got there and waits
/// without ever answering on `$PORT`. Had the reader stopped at the first bad byte, the
/// service would have died on a write into the closed pipe (or blocked on a full one)
/// long before its last line.
const NOISY: &str = r#"
import sys, time
out = sys.stdout.buffer
out.write(b"bad bytes \xff\xfe\xc3( here\n")
out.flush()
for i in range(1, 2001):
    out.write(b"tick %d \x80 %s\n" % (i, b"." * 100))
    if i % 4 == 0:
        out.write(b"bad bytes \xff\xfe\xc3( here\n")
    out.flush()
out.write(b"all 2000 ticks written \xff\n")
out.flush()
with open("alive.log", "w") as f:
    f.write("written\n")
time.sleep(3600)
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
            "0123456789abcdef0123456789abcdef01234567",
            "-f",
        ])
        .arg(dir.path().join("staging.toml"))
        .current_dir(dir.path())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Still running when the wait gave up: it did not die of a closed pipe.
    assert!(stdout.contains("timed out after 3s"), "{stdout}");
    assert!(!stdout.contains("exited ("), "the service died:\n{stdout}");
    assert!(
        dir.path().join("alive.log").exists(),
        "the service never got past its writes:\n{stdout}"
    );
    assert!(
        stdout.contains("| all 2000 ticks written \u{fffd}"),
        "the last line reaches the log tail, lossily:\n{stdout}"
    );
    assert!(
        stdout.contains("| bad bytes \u{fffd}\u{fffd}\u{fffd}( here"),
        "the invalid lines are shown lossily:\n{stdout}"
    );
    assert!(stdout.contains("| tick 2000 \u{fffd} ....."), "{stdout}");
}
