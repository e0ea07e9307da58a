//! The bundled example service: what a small web app on a staging platform looks like to
//! `staging`.
//!
//! - `GET /up` answers `{"status":"ok","version":...,"commit":...,"env":...}`, the health
//!   endpoint the runbooks check for the deployed commit;
//! - `POST /api/login` with `{"user": "..."}` returns a session token, and `GET /api/me`
//!   with `Authorization: Bearer <token>` returns the user: the auth flow a smoke probe
//!   chains;
//! - it refuses to start without `JWT_SECRET` (at least 32 characters), as frameworks that
//!   would otherwise generate a fresh key on every restart should.
//!
//! It listens on `127.0.0.1:$PORT` and reads its commit from `STAGING_COMMIT`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{Value, json};

#[derive(Clone)]
struct App {
    commit: String,
    env: String,
    sessions: Arc<Mutex<HashMap<String, String>>>,
    key_fingerprint: u64,
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let secret = match std::env::var("JWT_SECRET") {
        Ok(s) if s.len() >= 32 => s,
        Ok(_) => {
            fail("JWT_SECRET is shorter than 32 characters; refusing to sign sessions with it")
        }
        Err(_) => fail(
            "JWT_SECRET is not set; refusing to start with a random key that logs everyone out on restart",
        ),
    };
    let port: u16 = std::env::var("PORT")
        .ok()
        .and_then(|p| p.parse().ok())
        .unwrap_or(8080);
    let app = App {
        commit: std::env::var("STAGING_COMMIT").unwrap_or_else(|_| "unknown".into()),
        env: std::env::var("STAGING_ENV").unwrap_or_else(|_| "dev".into()),
        sessions: Arc::default(),
        key_fingerprint: fnv1a(secret.as_bytes()),
    };
    println!(
        "demo-app {} (commit {}) listening on 127.0.0.1:{port}",
        env!("CARGO_PKG_VERSION"),
        app.commit
    );
    let router = Router::new()
        .route("/up", get(up))
        .route("/api/login", post(login))
        .route("/api/me", get(me))
        .with_state(app);
    let listener = match tokio::net::TcpListener::bind(("127.0.0.1", port)).await {
        Ok(l) => l,
        Err(e) => fail(&format!("cannot listen on 127.0.0.1:{port}: {e}")),
    };
    if let Err(e) = axum::serve(listener, router)
        .with_graceful_shutdown(shutdown())
        .await
    {
        fail(&format!("server error: {e}"));
    }
}

fn fail(message: &str) -> ! {
    eprintln!("demo-app: {message}");
    std::process::exit(1)
}

async fn shutdown() {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("SIGTERM handler");
    tokio::select! {
        _ = term.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
    println!("demo-app: shutting down");
}

async fn up(State(app): State<App>) -> Json<Value> {
    Json(json!({
        "status": "ok",
        "version": env!("CARGO_PKG_VERSION"),
        "commit": app.commit,
        "env": app.env,
    }))
}

async fn login(State(app): State<App>, Json(body): Json<Value>) -> Result<Json<Value>, StatusCode> {
    let user = body
        .get("user")
        .and_then(Value::as_str)
        .filter(|u| !u.is_empty())
        .ok_or(StatusCode::BAD_REQUEST)?;
    let mut sessions = app
        .sessions
        .lock()
        .map_err(|_| StatusCode::INTERNAL_SERVER_ERROR)?;
    let token = format!(
        "{:016x}{:08x}",
        fnv1a(format!("{user}:{}", sessions.len()).as_bytes()) ^ app.key_fingerprint,
        sessions.len()
    );
    sessions.insert(token.clone(), user.to_owned());
    Ok(Json(json!({ "token": token })))
}

async fn me(State(app): State<App>, headers: HeaderMap) -> Result<Json<Value>, StatusCode> {
    let token = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .ok_or(StatusCode::UNAUTHORIZED)?;
    let sessions = app
        .sessions
        .lock()
        .map_err(|_| StatusCode::INTERNAL_SERVER_ERROR)?;
    let user = sessions.get(token).ok_or(StatusCode::UNAUTHORIZED)?;
    Ok(Json(json!({ "user": user })))
}

/// A small non-cryptographic hash: tokens here only need to be distinct within one process.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf29ce484222325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x100000001b3)
    })
}
