//! A reverse proxy that checks every JSON body it carries against a [`Contract`].

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use axum::extract::{Request, State};
use axum::response::Response;
use serde_json::Value;

use crate::contract::{Contract, Verdict};
use crate::relay::{Incoming, client, serve};

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
            client: client(),
            violations: Mutex::new(vec![]),
            validated: AtomicUsize::new(0),
            without_schema: AtomicUsize::new(0),
            not_json: AtomicUsize::new(0),
        });
        let app = axum::Router::new()
            .fallback(forward)
            .with_state(inner.clone());
        let url = serve("checking-proxy", app);
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

async fn forward(State(inner): State<Arc<Inner>>, request: Request) -> Response {
    let incoming = match Incoming::read(request).await {
        Ok(i) => i,
        Err(failed) => return failed,
    };
    let (method, path) = (incoming.method.as_str(), incoming.path_and_query.as_str());
    match json_body(incoming.header("content-type"), &incoming.body) {
        Some(body) => inner.record(inner.contract.check_request(method, path, &body)),
        None => {
            inner.not_json.fetch_add(1, Ordering::Relaxed);
        }
    }
    let answer = match incoming.send(&inner.client, &inner.upstream).await {
        Ok(a) => a,
        Err(failed) => return failed,
    };
    match json_body(answer.header("content-type"), &answer.body) {
        Some(body) => inner.record(inner.contract.check_response(
            method,
            path,
            answer.status,
            &body,
        )),
        None => {
            inner.not_json.fetch_add(1, Ordering::Relaxed);
        }
    }
    answer.into_response()
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
