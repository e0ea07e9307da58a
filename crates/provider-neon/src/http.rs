//! The HTTP side: bearer auth, JSON, bounded requests, and the one function that maps a
//! non-success answer of Neon to a kind of [`staging_core::Error`].

use std::fmt;
use std::time::Duration;

use reqwest::header::HeaderMap;
use reqwest::{Method, StatusCode};
use secrecy::{ExposeSecret, SecretString};
use serde_json::Value;
use staging_core::{Error, Result, RetryPolicy};

pub(crate) const PROVIDER: &str = "neon";

/// What went wrong talking to Neon, before it is mapped to a kind. Never holds the API key.
#[derive(Debug, thiserror::Error)]
pub(crate) enum NeonError {
    #[error("{method} {path} answered {status}: {message}")]
    Status {
        method: String,
        path: String,
        status: u16,
        message: String,
    },
    #[error("{method} {path}: no answer: {source}")]
    Transport {
        method: String,
        path: String,
        #[source]
        source: reqwest::Error,
    },
    #[error("{method} {path}: unexpected response body: {source}")]
    Decode {
        method: String,
        path: String,
        #[source]
        source: serde_json::Error,
    },
}

/// Maps a non-success answer to a kind. 423 (the project is locked by a running operation)
/// and 5xx are retryable; 429 is a rate limit with its `Retry-After`.
pub(crate) fn error_for_status(
    status: StatusCode,
    headers: &HeaderMap,
    method: &str,
    path: &str,
    message: &str,
) -> Error {
    let provider = PROVIDER.to_owned();
    match status.as_u16() {
        401 => Error::Unauthenticated {
            provider,
            message: format!("the API key was refused ({message}); check NEON_API_KEY"),
        },
        403 => Error::PermissionDenied {
            provider,
            message: format!("{method} {path}: {message}"),
        },
        404 => Error::not_found(format!("{path} on Neon")),
        409 => Error::Conflict {
            message: format!("neon: {method} {path}: {message}"),
        },
        429 => Error::RateLimited {
            provider,
            retry_after: headers
                .get("retry-after")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<u64>().ok())
                .map(Duration::from_secs),
        },
        s => Error::Provider {
            provider,
            source: Box::new(NeonError::Status {
                method: method.to_owned(),
                path: path.to_owned(),
                status: s,
                message: message.to_owned(),
            }),
            retryable: s == 423 || status.is_server_error(),
        },
    }
}

/// Whether a write was refused without being done (rate limit, project locked), so sending
/// it again cannot do it twice.
pub(crate) fn refused(e: &Error) -> bool {
    match e {
        Error::RateLimited { .. } => true,
        Error::Provider { source, .. } => matches!(
            source.downcast_ref::<NeonError>(),
            Some(NeonError::Status { status: 423, .. })
        ),
        _ => false,
    }
}

pub(crate) struct Client {
    http: reqwest::Client,
    base: String,
    key: SecretString,
    retry: RetryPolicy,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("base", &self.base)
            .field("key", &"[REDACTED]")
            .finish()
    }
}

impl Client {
    pub(crate) fn new(
        base: String,
        key: SecretString,
        timeout: Duration,
        retry: RetryPolicy,
    ) -> Result<Self> {
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10).min(timeout))
            .timeout(timeout)
            .build()
            .map_err(|e| Error::config(format!("neon: cannot build the HTTP client: {e}")))?;
        Ok(Client {
            http,
            base: base.trim_end_matches('/').to_owned(),
            key,
            retry,
        })
    }

    /// A read: retried on every retryable failure.
    pub(crate) async fn get(&self, path: &str, query: &[(&str, &str)]) -> Result<Value> {
        self.retry
            .run(|| self.send(Method::GET, path, query, None))
            .await
    }

    /// A write: retried only when it was refused without being done (429, 423).
    pub(crate) async fn post(&self, path: &str, body: Value) -> Result<Value> {
        self.retry
            .run_when(|| self.send(Method::POST, path, &[], Some(&body)), refused)
            .await
    }

    async fn send(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, &str)],
        body: Option<&Value>,
    ) -> Result<Value> {
        let mut req = self
            .http
            .request(method.clone(), format!("{}{path}", self.base))
            .bearer_auth(self.key.expose_secret())
            .header("accept", "application/json")
            .query(query);
        if let Some(b) = body {
            req = req.json(b);
        }
        let transport = |source| Error::Provider {
            provider: PROVIDER.to_owned(),
            source: Box::new(NeonError::Transport {
                method: method.to_string(),
                path: path.to_owned(),
                source,
            }),
            retryable: true,
        };
        let resp = req.send().await.map_err(transport)?;
        let status = resp.status();
        let headers = resp.headers().clone();
        let bytes = resp.bytes().await.map_err(transport)?;
        if !status.is_success() {
            let message = serde_json::from_slice::<Value>(&bytes)
                .ok()
                .and_then(|v| v.get("message").and_then(Value::as_str).map(str::to_owned))
                .unwrap_or_else(|| String::from_utf8_lossy(&bytes).chars().take(300).collect());
            return Err(error_for_status(
                status,
                &headers,
                method.as_str(),
                path,
                &message,
            ));
        }
        serde_json::from_slice(&bytes).map_err(|source| Error::Provider {
            provider: PROVIDER.to_owned(),
            source: Box::new(NeonError::Decode {
                method: method.to_string(),
                path: path.to_owned(),
                source,
            }),
            retryable: false,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_map_to_kinds() {
        let mut h = HeaderMap::new();
        h.insert("retry-after", "7".parse().unwrap());
        let kind =
            |s: u16| error_for_status(StatusCode::from_u16(s).unwrap(), &h, "GET", "/x", "m");
        assert!(matches!(kind(401), Error::Unauthenticated { .. }));
        assert!(matches!(kind(403), Error::PermissionDenied { .. }));
        assert!(matches!(kind(404), Error::NotFound { .. }));
        assert!(matches!(kind(409), Error::Conflict { .. }));
        assert_eq!(kind(429).retry_after(), Some(Duration::from_secs(7)));
        assert!(kind(423).is_retryable() && refused(&kind(423)));
        assert!(kind(503).is_retryable() && !refused(&kind(503)));
        assert!(!kind(400).is_retryable());
    }
}
