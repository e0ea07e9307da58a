//! A reverse proxy that answers chosen requests with a fault instead of forwarding them, and
//! counts what it forwarded: for stand-ins that cannot inject faults themselves (moto).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::response::Response;

/// One planned fault: the next `count` requests whose operation contains `operation` are
/// answered `status` with `body` instead of being forwarded.
#[derive(Debug, Clone)]
struct Planned {
    operation: String,
    count: u32,
    status: u16,
    body: String,
}

#[derive(Debug, Default)]
struct Inner {
    upstream: String,
    planned: Mutex<Vec<Planned>>,
    /// The operation of every request forwarded, in order.
    forwarded: Mutex<Vec<String>>,
    /// The operation of every request answered with a fault, in order.
    faulted: Mutex<Vec<String>>,
}

/// A running fault proxy in front of `upstream`. A request's operation is its
/// `X-Amz-Target` header when it has one (AWS JSON APIs: `…ECS….DescribeServices`), else its
/// `METHOD path`.
#[derive(Debug, Clone)]
pub struct FaultProxy {
    url: String,
    inner: Arc<Inner>,
}

impl FaultProxy {
    /// Starts the proxy on a thread of its own (it outlives any one test's runtime).
    ///
    /// # Panics
    /// When no local port can be bound or the thread cannot start.
    pub fn start(upstream: &str) -> FaultProxy {
        let inner = Arc::new(Inner {
            upstream: upstream.trim_end_matches('/').to_owned(),
            ..Inner::default()
        });
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind the proxy");
        listener.set_nonblocking(true).expect("nonblocking");
        let url = format!("http://{}", listener.local_addr().expect("local address"));
        let state = inner.clone();
        std::thread::Builder::new()
            .name("fault-proxy".to_owned())
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
        FaultProxy { url, inner }
    }

    /// `http://127.0.0.1:PORT`: where the client under test sends.
    pub fn url(&self) -> String {
        self.url.clone()
    }

    /// Answers the next `count` requests whose operation contains `operation` with `status`
    /// and `body` instead of forwarding them.
    pub fn fail_next(&self, operation: &str, count: u32, status: u16, body: &str) {
        self.inner
            .planned
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(Planned {
                operation: operation.to_owned(),
                count,
                status,
                body: body.to_owned(),
            });
    }

    /// How many requests whose operation contains `operation` reached the upstream.
    pub fn forwarded(&self, operation: &str) -> usize {
        self.inner
            .forwarded
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .filter(|o| o.contains(operation))
            .count()
    }

    /// How many requests whose operation contains `operation` were answered with a fault.
    pub fn faulted(&self, operation: &str) -> usize {
        self.inner
            .faulted
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .filter(|o| o.contains(operation))
            .count()
    }
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
    let operation = headers
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
        .unwrap_or_else(|| format!("{method} {path_and_query}"));
    let planned = {
        let mut planned = inner.planned.lock().unwrap_or_else(|p| p.into_inner());
        let hit = planned
            .iter_mut()
            .find(|p| p.count > 0 && operation.contains(&p.operation));
        hit.map(|p| {
            p.count -= 1;
            p.clone()
        })
    };
    if let Some(fault) = planned {
        inner
            .faulted
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(operation);
        return Response::builder()
            .status(fault.status)
            .header("content-type", "application/x-amz-json-1.1")
            .body(Body::from(fault.body))
            .unwrap_or_default();
    }
    let bytes = match axum::body::to_bytes(request.into_body(), 64 * 1024 * 1024).await {
        Ok(b) => b,
        Err(e) => return failure(StatusCode::BAD_REQUEST, e.to_string()),
    };
    inner
        .forwarded
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .push(operation);
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(300))
        .build()
        .expect("the proxy's client");
    let mut outgoing = client.request(
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
        Err(e) => return failure(StatusCode::BAD_GATEWAY, e.to_string()),
    };
    let mut response = Response::builder().status(answer.status().as_u16());
    for (name, value) in answer.headers() {
        if !HOP.contains(&name.as_str()) {
            response = response.header(name.as_str(), value.as_bytes());
        }
    }
    let body = answer.bytes().await.unwrap_or_default();
    response.body(Body::from(body)).unwrap_or_default()
}

fn failure(status: StatusCode, message: String) -> Response {
    Response::builder()
        .status(status)
        .body(Body::from(format!("fault proxy: {message}")))
        .unwrap_or_default()
}
