#![doc = include_str!("../README.md")]
#![deny(missing_docs)]

use std::fmt;
use std::time::Duration;

use reqwest::header::HeaderMap;
use reqwest::{Method, StatusCode};
use secrecy::{ExposeSecret, SecretString};
use serde_json::Value;
use staging_core::{Error, Redactor, Result, RetryPolicy};

/// How much of an error body a message shows.
pub const ERROR_BODY_CHARS: usize = 300;

/// What one platform's API is, for messages and retries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Api {
    /// The provider's name in errors (`neon`).
    pub provider: &'static str,
    /// The platform's name in messages (`Neon`).
    pub platform: &'static str,
    /// What its credential is called (`API key`, `access token`).
    pub credential: &'static str,
    /// The variable the credential is read from (`NEON_API_KEY`).
    pub credential_var: &'static str,
    /// Statuses besides 429 that refuse a request without doing it, so that it is safe to
    /// send again, also a write (Neon: 423, the project is locked by a running operation).
    pub refused_statuses: &'static [u16],
}

/// What went wrong talking to the platform, before it is mapped to a kind. Never holds the
/// credential.
#[derive(Debug, thiserror::Error)]
pub enum RestError {
    /// A non-success status.
    #[error("{method} {path} answered {status}: {message}")]
    Status {
        /// The request's method.
        method: String,
        /// The request's path.
        path: String,
        /// The status.
        status: u16,
        /// The platform's message, redacted and shortened.
        message: String,
        /// Whether the status refused the request without doing it
        /// ([`Api::refused_statuses`]).
        refused: bool,
    },
    /// No answer (connect, TLS, timeout, body read).
    #[error("{method} {path}: no answer: {source}")]
    Transport {
        /// The request's method.
        method: String,
        /// The request's path.
        path: String,
        /// What the transport said.
        #[source]
        source: reqwest::Error,
    },
    /// A success whose body is not the JSON expected.
    #[error("{method} {path}: unexpected response body: {source}")]
    Decode {
        /// The request's method.
        method: String,
        /// The request's path.
        path: String,
        /// What the parser said.
        #[source]
        source: serde_json::Error,
    },
}

impl Api {
    /// Maps a non-success answer to a kind: 401 unauthenticated (naming the credential's
    /// variable), 403 permission, 404 not found, 409 conflict, 429 a rate limit with its
    /// `Retry-After`; 5xx and [`Api::refused_statuses`] are retryable provider errors.
    pub fn error_for_status(
        &self,
        status: StatusCode,
        headers: &HeaderMap,
        method: &str,
        path: &str,
        message: &str,
    ) -> Error {
        let provider = self.provider.to_owned();
        match status.as_u16() {
            401 => Error::Unauthenticated {
                provider,
                message: format!(
                    "the {} was refused ({message}); check {}",
                    self.credential, self.credential_var
                ),
            },
            403 => Error::PermissionDenied {
                provider,
                message: format!("{method} {path}: {message}"),
            },
            404 => Error::not_found(format!("{path} on {}", self.platform)),
            409 => Error::Conflict {
                message: format!("{}: {method} {path}: {message}", self.provider),
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
                source: Box::new(RestError::Status {
                    method: method.to_owned(),
                    path: path.to_owned(),
                    status: s,
                    message: message.to_owned(),
                    refused: self.refused_statuses.contains(&s),
                }),
                retryable: self.refused_statuses.contains(&s) || status.is_server_error(),
            },
        }
    }
}

/// Whether a request was refused without being done (a rate limit, or one of the API's
/// [`Api::refused_statuses`]), so that sending a write again cannot do it twice.
pub fn refused(e: &Error) -> bool {
    match e {
        Error::RateLimited { .. } => true,
        Error::Provider { source, .. } => matches!(
            source.downcast_ref::<RestError>(),
            Some(RestError::Status { refused: true, .. })
        ),
        _ => false,
    }
}

/// The platform's message in an error body: its JSON `message` when it has one, else the
/// text; redacted, then shortened to [`ERROR_BODY_CHARS`].
pub fn error_message(body: &[u8]) -> String {
    let text = serde_json::from_slice::<Value>(body)
        .ok()
        .and_then(|v| v.get("message").and_then(Value::as_str).map(str::to_owned))
        .unwrap_or_else(|| String::from_utf8_lossy(body).into_owned());
    Redactor::global().shorten(text.trim(), ERROR_BODY_CHARS)
}

/// A bearer-token client of one platform's REST API. Reads are retried on every retryable
/// failure, writes only when they were refused without being done ([`refused`]).
pub struct Client {
    api: Api,
    http: reqwest::Client,
    base: String,
    token: SecretString,
    retry: RetryPolicy,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("provider", &self.api.provider)
            .field("base", &self.base)
            .field("token", &"[REDACTED]")
            .finish()
    }
}

impl Client {
    /// A client of `api` at `base`, each request bounded by `timeout` (connecting by 10 s at
    /// most), retried by `retry`.
    pub fn new(
        api: Api,
        base: String,
        token: SecretString,
        timeout: Duration,
        retry: RetryPolicy,
    ) -> Result<Self> {
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10).min(timeout))
            .timeout(timeout)
            .build()
            .map_err(|e| {
                Error::config(format!(
                    "{}: cannot build the HTTP client: {e}",
                    api.provider
                ))
            })?;
        Ok(Client {
            api,
            http,
            base: base.trim_end_matches('/').to_owned(),
            token,
            retry,
        })
    }

    /// A JSON read.
    pub async fn get(&self, path: &str, query: &[(&str, &str)]) -> Result<Value> {
        self.retry
            .run(|| async {
                let body = self.send(Method::GET, path, query, None, true).await?;
                self.decode("GET", path, &body)
            })
            .await
    }

    /// A text read (logs).
    pub async fn get_text(&self, path: &str) -> Result<String> {
        self.retry
            .run(|| async {
                let body = self.send(Method::GET, path, &[], None, false).await?;
                Ok(String::from_utf8_lossy(&body).into_owned())
            })
            .await
    }

    /// A JSON write, sent again only when it was refused without being done.
    pub async fn post(&self, path: &str, body: Value) -> Result<Value> {
        self.retry
            .run_when(
                || async {
                    let b = self
                        .send(Method::POST, path, &[], Some(&body), true)
                        .await?;
                    self.decode("POST", path, &b)
                },
                refused,
            )
            .await
    }

    async fn send(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, &str)],
        body: Option<&Value>,
        json: bool,
    ) -> Result<Vec<u8>> {
        let mut req = self
            .http
            .request(method.clone(), format!("{}{path}", self.base))
            .bearer_auth(self.token.expose_secret())
            .query(query);
        if json {
            req = req.header("accept", "application/json");
        }
        if let Some(b) = body {
            req = req.json(b);
        }
        let transport = |source| Error::Provider {
            provider: self.api.provider.to_owned(),
            source: Box::new(RestError::Transport {
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
            return Err(self.api.error_for_status(
                status,
                &headers,
                method.as_str(),
                path,
                &error_message(&bytes),
            ));
        }
        Ok(bytes.to_vec())
    }

    fn decode(&self, method: &str, path: &str, body: &[u8]) -> Result<Value> {
        serde_json::from_slice(body).map_err(|source| Error::Provider {
            provider: self.api.provider.to_owned(),
            source: Box::new(RestError::Decode {
                method: method.to_owned(),
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

    const NEON: Api = Api {
        provider: "neon",
        platform: "Neon",
        credential: "API key",
        credential_var: "NEON_API_KEY",
        refused_statuses: &[423],
    };

    #[test]
    fn statuses_map_to_kinds_and_only_refusals_make_a_write_safe_to_resend() {
        let mut h = HeaderMap::new();
        h.insert("retry-after", "7".parse().unwrap());
        let kind =
            |s: u16| NEON.error_for_status(StatusCode::from_u16(s).unwrap(), &h, "GET", "/x", "m");
        assert!(matches!(kind(401), Error::Unauthenticated { .. }));
        assert!(kind(401).to_string().contains("NEON_API_KEY"));
        assert!(matches!(kind(403), Error::PermissionDenied { .. }));
        assert!(matches!(kind(404), Error::NotFound { .. }));
        assert!(matches!(kind(409), Error::Conflict { .. }));
        assert_eq!(kind(429).retry_after(), Some(Duration::from_secs(7)));
        assert!(refused(&kind(429)));
        assert!(kind(423).is_retryable() && refused(&kind(423)));
        assert!(kind(503).is_retryable() && !refused(&kind(503)));
        assert!(!kind(400).is_retryable() && !refused(&kind(400)));
        let supabase = Api {
            refused_statuses: &[],
            ..NEON
        };
        let e = supabase.error_for_status(StatusCode::LOCKED, &h, "GET", "/x", "m");
        assert!(!e.is_retryable());
    }

    #[test]
    fn an_error_body_is_redacted_before_it_is_cut_so_no_secret_is_left_half_visible() {
        let secret = "sk_canary_0123456789abcdefghijklmnopqrstuvwxyz";
        Redactor::global().register(&SecretString::from(secret.to_owned()));
        // The secret starts before the cut and goes on past it, as a platform echoing a
        // rejected value back would place it.
        let body = format!("{}{secret} and more", "x".repeat(ERROR_BODY_CHARS - 10));
        let shown = error_message(body.as_bytes());
        assert!(!shown.contains("sk_canary"), "{shown}");
        assert!(!shown.contains(&secret[..10]), "{shown}");
        let json = serde_json::json!({ "message": format!("bad value {secret}") }).to_string();
        let shown = error_message(json.as_bytes());
        assert!(
            shown.starts_with("bad value ") && !shown.contains(secret),
            "{shown}"
        );
    }

    #[test]
    fn the_token_never_appears_in_debug() {
        let c = Client::new(
            NEON,
            "http://127.0.0.1:9/".into(),
            SecretString::from("napi_canary_token".to_owned()),
            Duration::from_secs(1),
            RetryPolicy::default(),
        )
        .unwrap();
        let shown = format!("{c:?}");
        assert!(
            !shown.contains("napi_canary") && shown.contains("[REDACTED]"),
            "{shown}"
        );
    }

    #[tokio::test]
    async fn a_silent_peer_is_a_bounded_retryable_error_naming_the_request() {
        // Accepts connections and never answers.
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        std::thread::spawn(move || {
            let mut held = vec![];
            for c in listener.incoming() {
                held.push(c);
            }
        });
        let c = Client::new(
            NEON,
            format!("http://127.0.0.1:{port}"),
            SecretString::from("napi_canary_token".to_owned()),
            Duration::from_millis(300),
            RetryPolicy {
                initial: Duration::from_millis(10),
                max_delay: Duration::from_millis(10),
                deadline: Duration::from_secs(5),
                max_attempts: 2,
            },
        )
        .unwrap();
        // The guard only turns a hang into a failure; nothing here is timed.
        let result = tokio::time::timeout(
            Duration::from_secs(60),
            c.post("/projects/p/branches", serde_json::json!({})),
        )
        .await
        .expect("the request is bounded");
        let err = result.unwrap_err();
        assert!(err.is_retryable(), "{err}");
        let shown = format!("{err} {err:?}");
        assert!(shown.contains("POST /projects/p/branches"), "{shown}");
        assert!(!shown.contains("napi_canary"), "{shown}");
        // A write that got no answer may have been done: it is not sent again.
        assert!(!refused(&err));
    }
}
