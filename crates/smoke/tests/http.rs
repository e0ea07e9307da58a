//! The http probe against an axum server on loopback.

mod common;

use common::*;
use staging_smoke::{ProbeStatus, SmokeReport};

fn base(server: &TestServer) -> Vec<(&'static str, String)> {
    vec![("BASE", server.url())]
}

fn only(report: &SmokeReport) -> &staging_smoke::ProbeReport {
    assert_eq!(report.probes.len(), 1, "{report:#?}");
    &report.probes[0]
}

#[tokio::test]
async fn http_probe_passes_on_status_json_values_and_the_commit() {
    let server = http_server().await;
    let (ctx, _dir) = context(
        r#"
[[probes]]
name = "health"
[probes.http]
url = "${BASE}/up"
[probes.http.expect]
status = 200
json = { "$.status" = "ok", "$.commit" = "${commit}", "$.count" = 3 }
headers = { "content-type" = "application/json" }
"#,
        &base(&server),
    );
    let report = smoke(&ctx).await;
    let p = only(&report);
    assert!(report.ok, "{report:#?}");
    assert_eq!(p.status, ProbeStatus::Passed);
    assert_eq!(p.kind, "http");
    assert!(
        p.detail
            .as_deref()
            .unwrap()
            .contains("$.commit == \"abc1234\""),
        "{p:#?}"
    );
}

#[tokio::test]
async fn http_probe_fails_on_a_5xx_with_expected_and_observed_status() {
    let server = http_server().await;
    let (ctx, _dir) = context(
        "[[probes]]\nname = \"down\"\nhttp = { url = \"${BASE}/status/503\" }\n",
        &base(&server),
    );
    let report = smoke(&ctx).await;
    let p = only(&report);
    assert!(!report.ok);
    assert_eq!(report.summary.failed, 1);
    assert_eq!(p.expected.as_deref(), Some("status 2xx"));
    assert_eq!(p.observed.as_deref(), Some("status 503"));
    assert!(p.evidence.iter().any(|(k, v)| k == "status" && v == "503"));
}

#[tokio::test]
async fn http_probe_shows_the_json_value_it_found_when_it_differs() {
    let server = http_server().await;
    let (ctx, _dir) = context(
        r#"
[[probes]]
name = "health"
http = { url = "${BASE}/up", expect = { json = { "$.status" = "down" } } }
"#,
        &base(&server),
    );
    let report = smoke(&ctx).await;
    let p = only(&report);
    assert_eq!(p.expected.as_deref(), Some("$.status == \"down\""));
    assert_eq!(p.observed.as_deref(), Some("$.status == \"ok\""));
}

#[tokio::test]
async fn http_probe_checks_the_body_against_a_regex() {
    let server = http_server().await;
    let (ctx, _dir) = context(
        r#"
[[probes]]
name = "matches"
http = { url = "${BASE}/text", expect = { body_regex = "smoke w.rld" } }
[[probes]]
name = "does-not-match"
http = { url = "${BASE}/text", expect = { body_regex = "^goodbye" } }
"#,
        &base(&server),
    );
    let report = smoke(&ctx).await;
    assert_eq!(report.probes[0].status, ProbeStatus::Passed, "{report:#?}");
    assert_eq!(report.probes[1].status, ProbeStatus::Failed);
    assert!(
        report.probes[1]
            .observed
            .as_deref()
            .unwrap()
            .contains("hello, smoke world")
    );
}

#[tokio::test]
async fn http_probe_fails_a_response_slower_than_its_latency_budget() {
    let server = http_server().await;
    let (ctx, _dir) = context(
        r#"
[[probes]]
name = "slow"
http = { url = "${BASE}/slow?ms=300", expect = { max_latency = "50ms" } }
"#,
        &base(&server),
    );
    let report = smoke(&ctx).await;
    let p = only(&report);
    assert_eq!(p.expected.as_deref(), Some("latency ≤ 50ms"));
    assert!(
        p.observed.as_deref().unwrap().starts_with("latency "),
        "{p:#?}"
    );
}

#[tokio::test]
async fn an_attempt_longer_than_the_probe_timeout_fails_as_a_timeout() {
    let server = http_server().await;
    let (ctx, _dir) = context(
        r#"
[[probes]]
name = "hangs"
timeout = "200ms"
http = { url = "${BASE}/slow?ms=10000" }
"#,
        &base(&server),
    );
    let report = smoke(&ctx).await;
    let p = only(&report);
    // The probe gives up just before the attempt's bound, naming the host and the phase.
    let observed = p.observed.as_deref().unwrap();
    assert!(
        observed.starts_with("no answer from 127.0.0.1:")
            && observed.ends_with("to the request (no response headers) within 180ms"),
        "{p:#?}"
    );
    assert_eq!(p.status, ProbeStatus::Failed);
}

#[tokio::test]
async fn redirects_are_followed_by_default_and_checked_when_not() {
    let server = http_server().await;
    let (ctx, _dir) = context(
        r#"
[[probes]]
name = "followed"
http = { url = "${BASE}/redirect", expect = { json = { "$.status" = "ok" } } }
[[probes]]
name = "not-followed"
http = { url = "${BASE}/redirect", follow_redirects = false, expect = { status = 302, headers = { location = "/up" } } }
[[probes]]
name = "not-followed-expects-2xx"
http = { url = "${BASE}/redirect", follow_redirects = false }
"#,
        &base(&server),
    );
    let report = smoke(&ctx).await;
    assert_eq!(report.probes[0].status, ProbeStatus::Passed, "{report:#?}");
    assert_eq!(report.probes[1].status, ProbeStatus::Passed, "{report:#?}");
    assert_eq!(report.probes[2].observed.as_deref(), Some("status 302"));
}

const AUTH_FLOW: &str = r#"
[vars.APP_PASSWORD]
secret = true

[[probes]]
name = "auth-flow"

[[probes.steps]]
url = "${BASE}/login"
method = "POST"
json = { user = "alice", password = "${vars.APP_PASSWORD}" }
capture = { token = "$.token", session = "cookie:session" }

[[probes.steps]]
url = "${BASE}/api/me"
headers = { Authorization = "Bearer ${capture.token}" }
expect = { json = { "$.user" = "alice" } }

[[probes.steps]]
url = "${BASE}/api/session"
expect = { json = { "$.via" = "cookie" } }
"#;

#[tokio::test]
async fn auth_flow_logs_in_and_uses_the_captured_token_and_cookie() {
    let server = http_server().await;
    let (mut ctx, _dir) = context(AUTH_FLOW, &base(&server));
    ctx.set_var("APP_PASSWORD", secret(PASSWORD), true);
    let report = smoke(&ctx).await;
    let p = only(&report);
    assert!(report.ok, "{report:#?}");
    assert!(
        p.detail.as_deref().unwrap().contains("3 steps passed"),
        "{p:#?}"
    );
    // The captured token is now a registered secret.
    assert_eq!(
        ctx.redactor.redact(&format!("x {TOKEN} y")),
        "x [REDACTED] y"
    );
}

#[tokio::test]
async fn auth_flow_stops_at_the_step_that_failed() {
    let server = http_server().await;
    let (mut ctx, _dir) = context(AUTH_FLOW, &base(&server));
    ctx.set_var("APP_PASSWORD", secret("wrong-password"), true);
    let report = smoke(&ctx).await;
    let p = only(&report);
    assert!(!report.ok);
    let observed = p.observed.as_deref().unwrap();
    assert!(observed.starts_with("step 1 (POST "), "{observed}");
    assert!(observed.ends_with("status 401"), "{observed}");
    assert!(
        p.evidence
            .iter()
            .any(|(k, v)| k == "body" && v.contains("bad credentials"))
    );
}

#[tokio::test]
async fn a_capture_no_earlier_step_makes_is_a_config_error_before_anything_is_sent() {
    let server = http_server().await;
    let (ctx, _dir) = context(
        r#"
[[probes]]
name = "typo"
[[probes.steps]]
url = "${BASE}/login"
method = "POST"
capture = { token = "$.token" }
[[probes.steps]]
url = "${BASE}/api/me"
headers = { Authorization = "Bearer ${capture.tokn}" }
"#,
        &base(&server),
    );
    let err = staging_smoke::SmokeStep::new()
        .run_report(&ctx)
        .await
        .unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains("capture.tokn") && text.contains("staging.toml:"),
        "{text}"
    );
}

#[tokio::test]
async fn retry_for_waits_until_the_service_becomes_healthy() {
    let server = http_server().await;
    let (ctx, _dir) = context(
        r#"
[[probes]]
name = "becomes-healthy"
retry_for = "20s"
http = { url = "${BASE}/flaky" }
"#,
        &base(&server),
    );
    let options = staging_smoke::RunnerOptions {
        initial_backoff: std::time::Duration::from_millis(10),
        ..Default::default()
    };
    let report = staging_smoke::SmokeStep::with_options(options)
        .run_report(&ctx)
        .await
        .unwrap();
    let p = only(&report);
    assert!(report.ok, "{report:#?}");
    assert_eq!(p.attempts, 3);
}

#[tokio::test]
async fn without_retry_for_a_failing_probe_is_tried_once() {
    let server = http_server().await;
    let (ctx, _dir) = context(
        "[[probes]]\nname = \"once\"\nhttp = { url = \"${BASE}/flaky\" }\n",
        &base(&server),
    );
    let report = smoke(&ctx).await;
    assert_eq!(only(&report).attempts, 1);
    assert_eq!(only(&report).observed.as_deref(), Some("status 503"));
}

#[tokio::test]
async fn a_refused_connection_fails_with_the_reason() {
    let port = free_port();
    let (ctx, _dir) = context(
        "[[probes]]\nname = \"nobody\"\nhttp = { url = \"http://127.0.0.1:${PORT}/up\" }\n",
        &[("PORT", port.to_string())],
    );
    let report = smoke(&ctx).await;
    let p = only(&report);
    assert!(
        p.observed
            .as_deref()
            .unwrap()
            .to_lowercase()
            .contains("refused"),
        "{p:#?}"
    );
}

#[tokio::test]
async fn secret_headers_are_filled_in_only_when_sent() {
    let server = http_server().await;
    let (mut ctx, _dir) = context(
        r#"
[vars.API_TOKEN]
secret = true
[[probes]]
name = "me"
http = { url = "${BASE}/api/me", headers = { Authorization = "Bearer ${vars.API_TOKEN}" } }
"#,
        &base(&server),
    );
    ctx.set_var("API_TOKEN", secret(TOKEN), true);
    let report = smoke(&ctx).await;
    assert!(report.ok, "{report:#?}");
}

#[tokio::test]
async fn form_login_sends_the_secret_filled_in_and_captures_the_token() {
    let server = http_server().await;
    let (mut ctx, _dir) = context(
        r#"
[vars.APP_PASSWORD]
secret = true
[[probes]]
name = "form-login"
[[probes.steps]]
url = "${BASE}/login-form"
method = "post"
form = { user = "alice", password = "${vars.APP_PASSWORD}" }
capture = { token = "$.token" }
[[probes.steps]]
url = "${BASE}/api/me"
headers = { Authorization = "Bearer ${capture.token}" }
"#,
        &base(&server),
    );
    ctx.set_var("APP_PASSWORD", secret(PASSWORD), true);
    let report = smoke(&ctx).await;
    assert!(report.ok, "{report:#?}");
}

/// An HTTP server that accepts and never answers: the probe fails within its bound, naming
/// the host and the phase (no response headers).
#[tokio::test]
async fn http_probe_against_a_silent_server_fails_naming_host_and_phase() {
    let peer = staging_core::testkit::SilentPeer::start();
    let (ctx, _dir) = context(
        &format!(
            "[[probes]]\nname = \"silent\"\ntimeout = \"2s\"\nhttp = {{ url = \"http://{}/up\" }}\n",
            peer.addr()
        ),
        &[],
    );
    let report = smoke(&ctx).await;
    let p = only(&report);
    assert_eq!(p.status, ProbeStatus::Failed);
    let observed = p.observed.as_deref().unwrap();
    assert!(
        observed.contains(&format!("no answer from {}", peer.addr()))
            && observed.contains("no response headers"),
        "{p:#?}"
    );
    assert!(peer.accepted() >= 1);
}
