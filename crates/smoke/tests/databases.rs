//! The postgres and redis probes against the real servers of the test machine:
//! Postgres at postgres://postgres@127.0.0.1:5432/test, Redis at redis://127.0.0.1:6379, and
//! a second Redis started here with `allkeys-lru`.

mod common;

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::*;
use staging_smoke::ProbeStatus;

const PG_URL: &str = "postgres://postgres@127.0.0.1:5432/test";
const REDIS_URL: &str = "redis://127.0.0.1:6379";

const PG_SPEC: &str = r#"
[vars.DATABASE_URL]
secret = true

[[probes]]
name = "db"
postgres = { url_var = "DATABASE_URL", query = "SELECT 1 AS one, 'ok'::text AS status, NULL::int AS nothing", expect_rows = [["1", "ok", "NULL"]] }

[[probes]]
name = "db-wrong-rows"
postgres = { url_var = "DATABASE_URL", query = "SELECT 2", expect_rows = [["1"]], round_trip = false }
"#;

#[tokio::test]
async fn postgres_probe_compares_rows_and_round_trips_without_leaving_anything() {
    let (mut ctx, _dir) = context(PG_SPEC, &[]);
    ctx.set_var("DATABASE_URL", secret(PG_URL), true);
    let report = smoke(&ctx).await;
    let db = &report.probes[0];
    assert_eq!(db.status, ProbeStatus::Passed, "{report:#?}");
    assert!(
        db.detail
            .as_deref()
            .unwrap()
            .contains("rolled-back transaction")
    );
    let wrong = &report.probes[1];
    assert_eq!(
        wrong.expected.as_deref(),
        Some("query `SELECT 2` returns [(1)]")
    );
    assert_eq!(wrong.observed.as_deref(), Some("it returned [(2)]"));

    let client = staging_postgres::connect(&secret(PG_URL)).await.unwrap();
    let left: i64 = client
        .query_one(
            "SELECT count(*) FROM pg_class WHERE relname = 'staging_smoke_round_trip'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(left, 0, "the round trip left its table behind");
}

#[tokio::test]
async fn postgres_probe_fails_when_the_server_refuses_and_masks_the_password() {
    let (mut ctx, _dir) = context(PG_SPEC, &[]);
    let url = format!(
        "postgres://postgres:pg-canary-pass@127.0.0.1:{}/test",
        free_port()
    );
    ctx.set_var("DATABASE_URL", secret(&url), true);
    let report = smoke(&ctx).await;
    let p = &report.probes[0];
    assert_eq!(p.status, ProbeStatus::Failed);
    assert!(
        p.observed.as_deref().unwrap().starts_with("connect failed"),
        "{p:#?}"
    );
    let json = staging_smoke::render_json(&report, &ctx.redactor);
    assert!(!json.contains("pg-canary-pass"));
}

#[tokio::test]
async fn postgres_probe_reports_a_failing_query() {
    let (mut ctx, _dir) = context(
        r#"
[vars.DATABASE_URL]
secret = true
[[probes]]
name = "db"
postgres = { url_var = "DATABASE_URL", query = "SELECT * FROM no_such_table_here" }
"#,
        &[],
    );
    ctx.set_var("DATABASE_URL", secret(PG_URL), true);
    let report = smoke(&ctx).await;
    let observed = report.probes[0].observed.as_deref().unwrap();
    assert!(
        observed.starts_with("query failed") && observed.contains("no_such_table_here"),
        "{observed}"
    );
}

#[tokio::test]
async fn a_postgres_probe_without_its_url_variable_is_a_config_error() {
    let (ctx, _dir) = context(PG_SPEC, &[]);
    let err = staging_smoke::SmokeStep::new()
        .run_report(&ctx)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("DATABASE_URL"), "{err}");
}

const REDIS_SPEC: &str = r#"
[vars.REDIS_URL]
secret = true

[[probes]]
name = "cache"
redis = { url_var = "REDIS_URL", maxmemory_policy = "noeviction" }
"#;

#[tokio::test]
async fn redis_probe_passes_on_a_noeviction_server() {
    let (mut ctx, _dir) = context(REDIS_SPEC, &[]);
    ctx.set_var("REDIS_URL", secret(REDIS_URL), true);
    let report = smoke(&ctx).await;
    let p = &report.probes[0];
    assert_eq!(p.status, ProbeStatus::Passed, "{report:#?}");
    let detail = p.detail.as_deref().unwrap();
    assert!(
        detail.contains("PING → PONG") && detail.contains("SET/GET/DEL round trip"),
        "{detail}"
    );
}

/// A `redis-server` child process, killed when dropped.
struct RedisChild(Child);

impl Drop for RedisChild {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test]
async fn redis_probe_fails_on_an_allkeys_lru_server() {
    let port = free_port();
    let child = Command::new("redis-server")
        .args([
            "--port",
            &port.to_string(),
            "--bind",
            "127.0.0.1",
            "--maxmemory-policy",
            "allkeys-lru",
        ])
        .args(["--save", "", "--appendonly", "no", "--daemonize", "no"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn();
    let child = match child {
        Ok(c) => RedisChild(c),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            eprintln!("skipping: redis-server is not installed ({e})");
            return;
        }
        Err(e) => panic!("cannot start redis-server: {e}"),
    };
    // Wait (bounded) until it accepts connections.
    let mut up = false;
    for _ in 0..100 {
        if tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_ok()
        {
            up = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(up, "redis-server on port {port} did not start");

    let (mut ctx, _dir) = context(REDIS_SPEC, &[]);
    ctx.set_var(
        "REDIS_URL",
        secret(&format!("redis://127.0.0.1:{port}")),
        true,
    );
    let report = smoke(&ctx).await;
    drop(child);
    let p = &report.probes[0];
    assert_eq!(p.status, ProbeStatus::Failed, "{report:#?}");
    assert_eq!(p.expected.as_deref(), Some("maxmemory-policy = noeviction"));
    assert_eq!(
        p.observed.as_deref(),
        Some("maxmemory-policy = allkeys-lru")
    );
}

#[tokio::test]
async fn redis_probe_fails_when_nothing_listens() {
    let (mut ctx, _dir) = context(REDIS_SPEC, &[]);
    ctx.set_var(
        "REDIS_URL",
        secret(&format!(
            "redis://:redis-canary-pw@127.0.0.1:{}",
            free_port()
        )),
        true,
    );
    let report = smoke(&ctx).await;
    let p = &report.probes[0];
    assert!(
        p.observed.as_deref().unwrap().starts_with("connect failed"),
        "{p:#?}"
    );
    assert!(!staging_smoke::render_json(&report, &ctx.redactor).contains("redis-canary-pw"));
}

/// A Postgres port that accepts and never answers: the probe fails within the connect
/// bound (the URL's `connect_timeout`), naming the host and the phase.
#[tokio::test]
async fn postgres_probe_against_a_silent_server_fails_naming_host_and_phase() {
    let peer = staging_core::testkit::SilentPeer::start();
    let (mut ctx, _dir) = context(PG_SPEC, &[]);
    let url = format!(
        "postgres://postgres:pg-canary-pass@{}/test?connect_timeout=1",
        peer.addr()
    );
    ctx.set_var("DATABASE_URL", secret(&url), true);
    let report = smoke(&ctx).await;
    let p = &report.probes[0];
    assert_eq!(p.status, ProbeStatus::Failed);
    let observed = p.observed.as_deref().unwrap();
    assert!(
        observed.contains("timed out after 1s")
            && observed.contains(&peer.addr().to_string())
            && observed.contains("never answered"),
        "{p:#?}"
    );
    assert!(peer.accepted() >= 1);
    assert!(!staging_smoke::render_json(&report, &ctx.redactor).contains("pg-canary-pass"));
}

/// A Redis port that accepts and never answers: the probe fails within its bound, naming
/// the address and the phase.
#[tokio::test]
async fn redis_probe_against_a_silent_server_fails_naming_host_and_phase() {
    let peer = staging_core::testkit::SilentPeer::start();
    let (mut ctx, _dir) = context(
        "[vars.REDIS_URL]\nsecret = true\n\n[[probes]]\nname = \"cache\"\ntimeout = \"2s\"\nredis = { url_var = \"REDIS_URL\" }\n",
        &[],
    );
    ctx.set_var(
        "REDIS_URL",
        secret(&format!("redis://:redis-canary-pw@{}", peer.addr())),
        true,
    );
    let report = smoke(&ctx).await;
    let p = &report.probes[0];
    assert_eq!(p.status, ProbeStatus::Failed);
    let observed = p.observed.as_deref().unwrap();
    assert!(
        observed.contains(&format!("no answer from {}", peer.addr())),
        "{p:#?}"
    );
    assert!(peer.accepted() >= 1);
    assert!(!staging_smoke::render_json(&report, &ctx.redactor).contains("redis-canary-pw"));
}

/// Without `connect_timeout` in the URL, the probe's own timeout bounds the connect: the
/// probe still names the host and the phase (the runner's bare "no result" never wins).
#[tokio::test]
async fn postgres_probe_timeout_bounds_a_silent_connect_and_names_host_and_phase() {
    let peer = staging_core::testkit::SilentPeer::start();
    let (mut ctx, _dir) = context(
        "[vars.DATABASE_URL]\nsecret = true\n\n[[probes]]\nname = \"db\"\ntimeout = \"2s\"\npostgres = { url_var = \"DATABASE_URL\" }\n",
        &[],
    );
    let url = format!("postgres://postgres:pg-canary-pass@{}/test", peer.addr());
    ctx.set_var("DATABASE_URL", secret(&url), true);
    let report = smoke(&ctx).await;
    let p = &report.probes[0];
    assert_eq!(p.status, ProbeStatus::Failed);
    let observed = p.observed.as_deref().unwrap();
    assert!(
        observed.contains(&peer.addr().to_string()) && observed.contains("never answered"),
        "{p:#?}"
    );
}
