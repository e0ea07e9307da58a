//! A small HTTP double for the one SESv2 call moto lacks: `GetAccount`
//! (`GET /v2/email/account`). Every other request is passed through to moto, so one SES
//! client sees moto's identities and sends, and the double's account.

use std::net::SocketAddr;

use axum::Router;
use axum::body::{Body, to_bytes};
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;

#[derive(Clone)]
struct Double {
    account: serde_json::Value,
    moto: String,
    http: reqwest::Client,
}

/// The `GetAccount` answer of an account in the sandbox (or not), shaped as the SESv2 API
/// reference documents it.
pub(crate) fn account_json(production_access: bool, sending_enabled: bool) -> serde_json::Value {
    serde_json::json!({
        "DedicatedIpAutoWarmupEnabled": false,
        "EnforcementStatus": "HEALTHY",
        "ProductionAccessEnabled": production_access,
        "SendingEnabled": sending_enabled,
        "SendQuota": {
            "Max24HourSend": if production_access { 50000.0 } else { 200.0 },
            "MaxSendRate": if production_access { 14.0 } else { 1.0 },
            "SentLast24Hours": 3.0
        }
    })
}

async fn get_account(State(d): State<Double>) -> Response {
    (
        [("content-type", "application/json")],
        d.account.to_string(),
    )
        .into_response()
}

async fn pass_through(State(d): State<Double>, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let body = to_bytes(body, 16 << 20).await.unwrap_or_default();
    let url = format!(
        "{}{}",
        d.moto,
        parts
            .uri
            .path_and_query()
            .map(|p| p.as_str())
            .unwrap_or("/")
    );
    let method = reqwest::Method::from_bytes(parts.method.as_str().as_bytes()).unwrap();
    let mut out = d.http.request(method, url).body(body.to_vec());
    for (k, v) in &parts.headers {
        if k != "host" && k != "content-length" {
            out = out.header(k.as_str(), v.as_bytes());
        }
    }
    let res = match out.send().await {
        Ok(r) => r,
        Err(e) => return (StatusCode::BAD_GATEWAY, e.to_string()).into_response(),
    };
    let mut builder = Response::builder().status(res.status().as_u16());
    for (k, v) in res.headers() {
        if k != "content-length" && k != "transfer-encoding" && k != "connection" {
            builder = builder.header(k.as_str(), v.as_bytes());
        }
    }
    builder
        .body(Body::from(res.bytes().await.unwrap_or_default()))
        .unwrap()
}

/// Serve the double on a free loopback port for the life of the current runtime; returns
/// its URL.
pub(crate) async fn start(moto: &str, account: serde_json::Value) -> String {
    let double = Double {
        account,
        moto: moto.to_owned(),
        http: reqwest::Client::new(),
    };
    let app = Router::new()
        .route("/v2/email/account", get(get_account))
        .fallback(pass_through)
        .with_state(double);
    let listener = tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0)))
        .await
        .unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{addr}")
}
