//! A reverse proxy that answers chosen requests with a fault instead of forwarding them, and
//! counts what it forwarded: for stand-ins that cannot inject faults themselves (moto).

use std::sync::{Arc, Mutex};

use axum::body::Body;
use axum::extract::{Request, State};
use axum::response::Response;

use crate::relay::{Incoming, client, serve};

/// One planned fault: the next `count` requests whose operation contains `operation` are
/// answered `status` with `body` instead of being forwarded.
#[derive(Debug, Clone)]
struct Planned {
    operation: String,
    count: u32,
    status: u16,
    body: String,
}

#[derive(Debug)]
struct Inner {
    upstream: String,
    client: reqwest::Client,
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
            client: client(),
            planned: Mutex::default(),
            forwarded: Mutex::default(),
            faulted: Mutex::default(),
        });
        let app = axum::Router::new()
            .fallback(forward)
            .with_state(inner.clone());
        let url = serve("fault-proxy", app);
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

async fn forward(State(inner): State<Arc<Inner>>, request: Request) -> Response {
    let incoming = match Incoming::read(request).await {
        Ok(i) => i,
        Err(failed) => return failed,
    };
    let operation = incoming
        .header("x-amz-target")
        .map(str::to_owned)
        .unwrap_or_else(|| format!("{} {}", incoming.method, incoming.path_and_query));
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
    inner
        .forwarded
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .push(operation);
    match incoming.send(&inner.client, &inner.upstream).await {
        Ok(answer) => answer.into_response(),
        Err(failed) => failed,
    }
}
