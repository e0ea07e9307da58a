//! The tcp and command probes.

mod common;

use common::*;
use staging_smoke::ProbeStatus;

#[tokio::test]
async fn tcp_probe_passes_when_something_listens_and_fails_when_nothing_does() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let open = listener.local_addr().unwrap().port();
    let closed = free_port();
    let (ctx, _dir) = context(
        r#"
[[probes]]
name = "open"
tcp = { address = "127.0.0.1:${OPEN}" }
[[probes]]
name = "closed"
tcp = { address = "127.0.0.1:${CLOSED}" }
"#,
        &[("OPEN", open.to_string()), ("CLOSED", closed.to_string())],
    );
    let report = smoke(&ctx).await;
    assert_eq!(report.probes[0].status, ProbeStatus::Passed, "{report:#?}");
    assert_eq!(report.probes[1].status, ProbeStatus::Failed);
    assert_eq!(
        report.probes[1].expected.as_deref(),
        Some(format!("a TCP connection to 127.0.0.1:{closed}").as_str())
    );
    assert!(
        report.probes[1]
            .observed
            .as_deref()
            .unwrap()
            .starts_with("connect failed")
    );
}

#[tokio::test]
async fn command_probe_checks_exit_code_and_stdout() {
    let (ctx, _dir) = context(
        r#"
[[probes]]
name = "prints-ok"
command = { run = ["sh", "-c", "echo status=ok"], stdout_regex = "status=ok" }
[[probes]]
name = "exits-3"
command = { run = ["sh", "-c", "echo oops >&2; exit 3"] }
[[probes]]
name = "expects-exit-3"
command = { run = ["sh", "-c", "exit 3"], exit_code = 3 }
[[probes]]
name = "wrong-output"
command = { run = ["echo", "status=degraded"], stdout_regex = "status=ok" }
[[probes]]
name = "no-such-program"
command = { run = ["/nonexistent/program"] }
"#,
        &[],
    );
    let report = smoke(&ctx).await;
    let by_name = |n: &str| report.probes.iter().find(|p| p.name == n).unwrap();
    assert_eq!(
        by_name("prints-ok").status,
        ProbeStatus::Passed,
        "{report:#?}"
    );
    assert_eq!(by_name("expects-exit-3").status, ProbeStatus::Passed);
    let exits = by_name("exits-3");
    assert_eq!(exits.observed.as_deref(), Some("it exited 3"));
    assert!(
        exits
            .evidence
            .iter()
            .any(|(k, v)| k == "stderr" && v == "oops")
    );
    assert_eq!(
        by_name("wrong-output").observed.as_deref(),
        Some("stdout \"status=degraded\"")
    );
    assert!(
        by_name("no-such-program")
            .observed
            .as_deref()
            .unwrap()
            .starts_with("cannot start")
    );
}

#[tokio::test]
async fn a_command_that_outlives_its_timeout_fails_as_a_timeout() {
    let (ctx, _dir) = context(
        r#"
[[probes]]
name = "sleeps"
timeout = "300ms"
command = { run = ["sleep", "30"] }
"#,
        &[],
    );
    let report = smoke(&ctx).await;
    assert_eq!(
        report.probes[0].observed.as_deref(),
        Some("no result after 300ms")
    );
}
