//! Shared helpers of the smoke tests: a spec and run context from TOML text, and an axum
//! server on loopback with the endpoints the HTTP tests need.
#![allow(dead_code, unreachable_pub)]

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::Json;
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use secrecy::SecretString;
use staging_core::Redactor;
use staging_core::pipeline::RunContext;
use staging_core::spec::{LoadOptions, LoadedSpec};
use staging_smoke::{SmokeReport, SmokeStep};

pub const COMMIT: &str = "abc1234";
pub const PASSWORD: &str = "hunter2-canary-pw";
pub const TOKEN: &str = "tok-7f3a9c-canary-token";
pub const SESSION: &str = "sess-5d1e-canary";

/// A run context for environment `staging` of a spec made of `body` under a fixed header;
/// `${NAME}` in `body` is filled from `env` at load time. The spec lives in `dir`.
pub fn context_in(dir: &std::path::Path, body: &str, env: &[(&str, String)]) -> RunContext {
    let source = format!(
        r#"
[project]
name = "demo"

[environments.staging]
provider = "local"
promotes_to = "production"

[environments.production]
provider = "local"
protected = true

{body}
"#
    );
    let vars: BTreeMap<String, String> = env
        .iter()
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect();
    let lookup = move |name: &str| vars.get(name).cloned();
    let options = LoadOptions {
        env: &lookup,
        known_providers: &["local"],
        instance: None,
    };
    let spec =
        LoadedSpec::parse(dir.join("staging.toml"), source, options).expect("test spec loads");
    let mut ctx = RunContext::new(Arc::new(spec), "staging", COMMIT).expect("context");
    ctx.redactor = Redactor::new();
    ctx
}

/// [`context_in`] in a fresh temporary directory (kept alive by the returned guard).
pub fn context(body: &str, env: &[(&str, String)]) -> (RunContext, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("tempdir");
    (context_in(dir.path(), body, env), dir)
}

/// Run the smoke step on `ctx` and return its report.
pub async fn smoke(ctx: &RunContext) -> SmokeReport {
    SmokeStep::new()
        .run_report(ctx)
        .await
        .expect("probes build")
}

pub fn secret(s: &str) -> SecretString {
    SecretString::from(s.to_owned())
}

/// A free TCP port on loopback (bound then released).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

#[derive(Default)]
pub struct AppState {
    pub flaky_calls: AtomicUsize,
    pub in_flight: AtomicUsize,
    pub max_in_flight: AtomicUsize,
    pub held_calls: AtomicUsize,
}

/// A test HTTP server on loopback; the server runs until the test's runtime ends.
pub struct TestServer {
    pub addr: SocketAddr,
    pub state: Arc<AppState>,
}

impl TestServer {
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

pub async fn http_server() -> TestServer {
    let state = Arc::new(AppState::default());
    let app = Router::new()
        .route(
            "/up",
            get(|| async {
                Json(serde_json::json!({"status": "ok", "commit": COMMIT, "count": 3}))
            }),
        )
        .route(
            "/status/{code}",
            get(|Path(code): Path<u16>| async move {
                StatusCode::from_u16(code).unwrap_or(StatusCode::IM_A_TEAPOT)
            }),
        )
        .route("/text", get(|| async { "hello, smoke world" }))
        .route("/slow", get(slow))
        .route(
            "/redirect",
            get(|| async { (StatusCode::FOUND, [(header::LOCATION, "/up")]) }),
        )
        .route("/login", post(login))
        .route("/login-form", post(login_form))
        .route("/api/me", get(me))
        .route("/api/session", get(session))
        .route("/flaky", get(flaky))
        .route("/held", get(held))
        .with_state(state.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        axum::serve(listener, app).await.expect("serve");
    });
    TestServer { addr, state }
}

#[derive(serde::Deserialize)]
struct SlowQuery {
    ms: u64,
}

async fn slow(Query(q): Query<SlowQuery>) -> &'static str {
    tokio::time::sleep(Duration::from_millis(q.ms)).await;
    "slow but fine"
}

async fn login(Json(body): Json<serde_json::Value>) -> Response {
    if body["user"] == "alice" && body["password"] == PASSWORD {
        (
            [(
                header::SET_COOKIE,
                format!("session={SESSION}; Path=/; HttpOnly"),
            )],
            Json(serde_json::json!({"token": TOKEN})),
        )
            .into_response()
    } else {
        (
            StatusCode::UNAUTHORIZED,
            Json(serde_json::json!({"error": "bad credentials"})),
        )
            .into_response()
    }
}

async fn login_form(axum::Form(form): axum::Form<BTreeMap<String, String>>) -> Response {
    if form.get("user").map(String::as_str) == Some("alice")
        && form.get("password").map(String::as_str) == Some(PASSWORD)
    {
        Json(serde_json::json!({"token": TOKEN})).into_response()
    } else {
        StatusCode::UNAUTHORIZED.into_response()
    }
}

async fn me(headers: HeaderMap) -> Response {
    let want = format!("Bearer {TOKEN}");
    match headers.get(header::AUTHORIZATION) {
        Some(v) if v.as_bytes() == want.as_bytes() => {
            Json(serde_json::json!({"user": "alice"})).into_response()
        }
        _ => (
            StatusCode::UNAUTHORIZED,
            Json(serde_json::json!({"error": "no token"})),
        )
            .into_response(),
    }
}

async fn session(headers: HeaderMap) -> Response {
    let cookie = headers
        .get(header::COOKIE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if cookie
        .split(';')
        .any(|c| c.trim() == format!("session={SESSION}"))
    {
        Json(serde_json::json!({"user": "alice", "via": "cookie"})).into_response()
    } else {
        StatusCode::UNAUTHORIZED.into_response()
    }
}

/// 503 for the first two calls, then 200: a service that becomes healthy.
async fn flaky(State(state): State<Arc<AppState>>) -> StatusCode {
    if state.flaky_calls.fetch_add(1, Ordering::SeqCst) < 2 {
        StatusCode::SERVICE_UNAVAILABLE
    } else {
        StatusCode::OK
    }
}

/// Holds each response 50 ms and records how many were in flight at once.
async fn held(State(state): State<Arc<AppState>>) -> &'static str {
    let now = state.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
    state.max_in_flight.fetch_max(now, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(50)).await;
    state.in_flight.fetch_sub(1, Ordering::SeqCst);
    state.held_calls.fetch_add(1, Ordering::SeqCst);
    "held"
}
