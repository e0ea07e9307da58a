//! What the test proxies share: a server on a thread of its own, and one request carried to
//! the upstream and its answer carried back.

use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::Request;
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::Response;

/// The largest body a proxy carries (far above any the tests exchange).
const MAX_BODY: usize = 64 * 1024 * 1024;

/// Headers that belong to one hop, never carried across.
const HOP: [&str; 4] = ["host", "content-length", "connection", "transfer-encoding"];

/// Serves `app` on a free local port, on a thread and runtime of its own (so it outlives
/// the runtime of any one test); returns `http://127.0.0.1:PORT`.
///
/// # Panics
/// When no local port can be bound or the thread cannot start.
pub(crate) fn serve(name: &str, app: axum::Router) -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind the proxy");
    listener.set_nonblocking(true).expect("nonblocking");
    let url = format!("http://{}", listener.local_addr().expect("local address"));
    std::thread::Builder::new()
        .name(name.to_owned())
        .spawn(move || {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .expect("the proxy's runtime");
            runtime.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener).expect("tokio listener");
                let _ = axum::serve(listener, app).await;
            });
        })
        .expect("spawn the proxy's thread");
    url
}

/// The client a proxy forwards with: no redirects followed, a generous bound.
pub(crate) fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(300))
        .build()
        .expect("the proxy's client")
}

/// A request as it arrived, body read.
pub(crate) struct Incoming {
    pub(crate) method: Method,
    pub(crate) path_and_query: String,
    pub(crate) headers: HeaderMap,
    pub(crate) body: Bytes,
}

impl Incoming {
    /// Reads `request` whole (an unreadable body is answered 400).
    pub(crate) async fn read(request: Request) -> Result<Incoming, Response> {
        let method = request.method().clone();
        let path_and_query = request
            .uri()
            .path_and_query()
            .map(|p| p.as_str().to_owned())
            .unwrap_or_else(|| "/".to_owned());
        let headers = request.headers().clone();
        let body = axum::body::to_bytes(request.into_body(), MAX_BODY)
            .await
            .map_err(|e| failure(StatusCode::BAD_REQUEST, format!("request body: {e}")))?;
        Ok(Incoming {
            method,
            path_and_query,
            headers,
            body,
        })
    }

    /// The value of header `name`, when it is text.
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// Sends the request on to `upstream` with `client` and reads the whole answer (an
    /// unreachable upstream is answered 502).
    pub(crate) async fn send(
        &self,
        client: &reqwest::Client,
        upstream: &str,
    ) -> Result<Answer, Response> {
        let mut outgoing = client.request(
            reqwest::Method::from_bytes(self.method.as_str().as_bytes())
                .unwrap_or(reqwest::Method::GET),
            format!("{upstream}{}", self.path_and_query),
        );
        for (name, value) in &self.headers {
            if !HOP.contains(&name.as_str()) {
                outgoing = outgoing.header(name.as_str(), value.as_bytes());
            }
        }
        let answer = outgoing
            .body(self.body.to_vec())
            .send()
            .await
            .map_err(|e| failure(StatusCode::BAD_GATEWAY, format!("upstream: {e}")))?;
        let status = answer.status().as_u16();
        let headers = answer.headers().clone();
        let body = answer
            .bytes()
            .await
            .map_err(|e| failure(StatusCode::BAD_GATEWAY, format!("upstream body: {e}")))?;
        Ok(Answer {
            status,
            headers,
            body,
        })
    }
}

/// The upstream's answer, body read.
pub(crate) struct Answer {
    pub(crate) status: u16,
    pub(crate) headers: reqwest::header::HeaderMap,
    pub(crate) body: Bytes,
}

impl Answer {
    /// The value of header `name`, when it is text.
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The answer as the proxy gives it back (hop headers left out).
    pub(crate) fn into_response(self) -> Response {
        let mut response = Response::builder().status(self.status);
        for (name, value) in &self.headers {
            if !HOP.contains(&name.as_str()) {
                response = response.header(name.as_str(), value.as_bytes());
            }
        }
        response
            .body(Body::from(self.body))
            .unwrap_or_else(|e| failure(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))
    }
}

/// An answer of the proxy itself, saying what went wrong.
pub(crate) fn failure(status: StatusCode, message: String) -> Response {
    Response::builder()
        .status(status)
        .body(Body::from(format!("test proxy: {message}")))
        .unwrap_or_default()
}
