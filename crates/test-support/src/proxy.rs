//! A reverse proxy that checks every JSON body it carries against a [`Contract`].

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderName, StatusCode};
use axum::response::Response;
use serde_json::Value;

use crate::contract::{Contract, Verdict};

/// The largest body the proxy carries (far above any the tests exchange).
const MAX_BODY: usize = 64 * 1024 * 1024;

struct Inner {
    contract: Contract,
    upstream: String,
    client: reqwest::Client,
    violations: Mutex<Vec<String>>,
    validated: AtomicUsize,
    without_schema: AtomicUsize,
    not_json: AtomicUsize,
}

/// A running checking proxy: tests send to [`CheckingProxy::url`]; every request goes on to
/// the upstream (Prism) and every JSON body both ways is checked against the contract.
/// It runs on a thread of its own, so it outlives the runtime of any one test.
pub struct CheckingProxy {
    url: String,
    inner: Arc<Inner>,
}

impl std::fmt::Debug for CheckingProxy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CheckingProxy")
            .field("url", &self.url)
            .field("upstream", &self.inner.upstream)
            .finish()
    }
}

/// How many bodies a proxy checked, and how many it could not.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Share {
    /// Bodies validated against their operation's schema.
    pub validated: usize,
    /// JSON bodies whose operation gives no schema for them.
    pub without_schema: usize,
    /// Bodies that were not JSON (empty, text, Prism's own problem answers).
    pub not_json: usize,
}

impl CheckingProxy {
    /// Starts a proxy in front of `upstream` (`http://127.0.0.1:PORT`), checking bodies
    /// against `contract`.
    ///
    /// # Panics
    /// When no local port can be bound or the thread cannot start.
    pub fn start(contract: Contract, upstream: &str) -> CheckingProxy {
        let inner = Arc::new(Inner {
            contract,
            upstream: upstream.trim_end_matches('/').to_owned(),
            client: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .timeout(Duration::from_secs(300))
                .build()
                .expect("the proxy's client"),
            violations: Mutex::new(vec![]),
            validated: AtomicUsize::new(0),
            without_schema: AtomicUsize::new(0),
            not_json: AtomicUsize::new(0),
        });
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind the proxy");
        listener.set_nonblocking(true).expect("nonblocking");
        let url = format!("http://{}", listener.local_addr().expect("local address"));
        let state = inner.clone();
        std::thread::Builder::new()
            .name("checking-proxy".to_owned())
            .spawn(move || {
                let runtime = tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(2)
                    .enable_all()
                    .build()
                    .expect("the proxy's runtime");
                runtime.block_on(async move {
                    let listener =
                        tokio::net::TcpListener::from_std(listener).expect("tokio listener");
                    let app = axum::Router::new().fallback(forward).with_state(state);
                    let _ = axum::serve(listener, app).await;
                });
            })
            .expect("spawn the proxy's thread");
        CheckingProxy { url, inner }
    }

    /// `http://127.0.0.1:PORT`: where the tests send.
    pub fn url(&self) -> String {
        self.url.clone()
    }

    /// Every body that broke the contract (or could not be checked) so far.
    pub fn violations(&self) -> Vec<String> {
        self.inner
            .violations
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Fails the test when any body broke the contract or went unchecked for want of a
    /// compilable schema.
    ///
    /// # Panics
    /// On any violation, listing them.
    pub fn assert_no_violations(&self) {
        let v = self.violations();
        assert!(
            v.is_empty(),
            "bodies that break the published description (checked in-process):\n{}",
            v.join("\n")
        );
    }

    /// How many bodies were validated, and how many could not be.
    pub fn share(&self) -> Share {
        Share {
            validated: self.inner.validated.load(Ordering::Relaxed),
            without_schema: self.inner.without_schema.load(Ordering::Relaxed),
            not_json: self.inner.not_json.load(Ordering::Relaxed),
        }
    }
}

impl Inner {
    fn record(&self, verdict: Verdict) {
        match verdict {
            Verdict::Valid => {
                self.validated.fetch_add(1, Ordering::Relaxed);
            }
            Verdict::NoSchema => {
                self.without_schema.fetch_add(1, Ordering::Relaxed);
            }
            Verdict::Violations(v) => self
                .violations
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .extend(v),
        }
    }
}

/// A JSON body, when the content type says JSON (not Prism's own `problem+json`) and the
/// bytes parse.
fn json_body(content_type: Option<&str>, bytes: &[u8]) -> Option<Value> {
    let ct = content_type?;
    if !ct.contains("json") || ct.contains("problem+json") || bytes.is_empty() {
        return None;
    }
    serde_json::from_slice(bytes).ok()
}

const HOP: [&str; 4] = ["host", "content-length", "connection", "transfer-encoding"];

async fn forward(State(inner): State<Arc<Inner>>, request: Request) -> Response {
    let method = request.method().clone();
    let path_and_query = request
        .uri()
        .path_and_query()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_else(|| "/".to_owned());
    let headers = request.headers().clone();
    let bytes = match axum::body::to_bytes(request.into_body(), MAX_BODY).await {
        Ok(b) => b,
        Err(e) => return failure(StatusCode::BAD_REQUEST, format!("request body: {e}")),
    };
    let content_type = headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    match json_body(content_type.as_deref(), &bytes) {
        Some(body) => inner.record(inner.contract.check_request(
            method.as_str(),
            &path_and_query,
            &body,
        )),
        None => {
            inner.not_json.fetch_add(1, Ordering::Relaxed);
        }
    }

    let mut outgoing = inner.client.request(
        reqwest::Method::from_bytes(method.as_str().as_bytes()).unwrap_or(reqwest::Method::GET),
        format!("{}{}", inner.upstream, path_and_query),
    );
    for (name, value) in &headers {
        if !HOP.contains(&name.as_str()) {
            outgoing = outgoing.header(name.as_str(), value.as_bytes());
        }
    }
    let answer = match outgoing.body(bytes.to_vec()).send().await {
        Ok(a) => a,
        Err(e) => return failure(StatusCode::BAD_GATEWAY, format!("upstream: {e}")),
    };
    let status = answer.status().as_u16();
    let answer_headers = answer.headers().clone();
    let answer_bytes = match answer.bytes().await {
        Ok(b) => b,
        Err(e) => return failure(StatusCode::BAD_GATEWAY, format!("upstream body: {e}")),
    };
    let answer_type = answer_headers
        .get("content-type")
        .and_then(|v| v.to_str().ok());
    match json_body(answer_type, &answer_bytes) {
        Some(body) => inner.record(inner.contract.check_response(
            method.as_str(),
            &path_and_query,
            status,
            &body,
        )),
        None => {
            inner.not_json.fetch_add(1, Ordering::Relaxed);
        }
    }

    let mut response = Response::builder().status(status);
    for (name, value) in &answer_headers {
        if !HOP.contains(&name.as_str())
            && let Ok(name) = HeaderName::from_bytes(name.as_str().as_bytes())
        {
            response = response.header(name, value.as_bytes());
        }
    }
    response
        .body(Body::from(answer_bytes))
        .unwrap_or_else(|e| failure(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))
}

fn failure(status: StatusCode, message: String) -> Response {
    Response::builder()
        .status(status)
        .body(Body::from(format!("checking proxy: {message}")))
        .unwrap_or_default()
}

/// A Prism and the checking proxy in front of it, as the stand-ins hold them: tests send to
/// [`Checked::url`] (the proxy), and [`Checked::assert_no_violations`] fails on what either
/// saw. `P` is the Prism runner, or a provider's wrapper of it.
#[derive(Debug)]
pub struct Checked<P> {
    /// The Prism the proxy forwards to.
    pub prism: P,
    /// The in-process check in front of it.
    pub checker: CheckingProxy,
}

impl<P: std::borrow::Borrow<staging_core::stand_in::Prism>> Checked<P> {
    /// Puts a checking proxy for `contract` (the description Prism serves) in front of
    /// `prism`.
    pub fn new(prism: P, contract: &std::path::Path) -> Checked<P> {
        let checker = CheckingProxy::start(Contract::load(contract), &prism.borrow().url());
        Checked { prism, checker }
    }

    /// The checking proxy's address: where the tests send.
    pub fn url(&self) -> String {
        self.checker.url()
    }

    /// Fails the test on a violation Prism or the in-process check saw.
    ///
    /// # Panics
    /// On any violation of either.
    pub fn assert_no_violations(&self) {
        self.prism.borrow().assert_no_violations();
        self.checker.assert_no_violations();
    }
}
