#![doc = include_str!("../README.md")]
#![deny(missing_docs)]

mod budget;
mod client;
mod ratelimit;
mod timestamp;
mod window;

use reqwest::StatusCode;
use serde_json::Value;
use staging_core::{Error, Redactor};

pub use budget::{RateBudget, SILENCE_MEMORY};
pub use client::{
    API_TIMEOUT_VAR, Answer, Auth, Call, Client, Inspect, MAX_BODY_CEILING, RATE_LIMIT_FALLBACK,
    Safety, Settings,
};
pub use ratelimit::RateLimitHeaders;
pub use timestamp::epoch_seconds;
pub use window::Window;

/// How much of an error body a message shows.
pub const ERROR_BODY_CHARS: usize = 300;

/// The phase of a request whose connection was refused: it never reached the platform.
pub(crate) const CANNOT_CONNECT: &str = "cannot connect";

/// What one platform's API is, for messages, the mapping of statuses and retries. What
/// differs between platforms is data here, not code.
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
    /// Statuses besides 404 that mean the thing asked for does not exist (Render: 410).
    pub not_found_statuses: &'static [u16],
    /// Statuses besides 502/503/504 on which a read is sent again (Vercel: 500).
    pub retried_read_statuses: &'static [u16],
    /// Statuses that say the request itself is invalid, as the spec wrote it: a
    /// configuration error, not a platform failure (Netlify: 422).
    pub invalid_statuses: &'static [u16],
}

impl Api {
    /// An API with no overrides: 404 alone is "not found", 429 alone refuses, reads retry
    /// on 502/503/504.
    pub const fn new(
        provider: &'static str,
        platform: &'static str,
        credential: &'static str,
        credential_var: &'static str,
    ) -> Self {
        Api {
            provider,
            platform,
            credential,
            credential_var,
            refused_statuses: &[],
            not_found_statuses: &[],
            retried_read_statuses: &[],
            invalid_statuses: &[],
        }
    }
}

/// What went wrong talking to the platform, before it is mapped to a kind. Never holds the
/// credential: it travels in a header, and neither headers nor request bodies are kept.
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
    #[error("{method} {path}: {phase} ({host}): {source}")]
    Transport {
        /// The request's method.
        method: String,
        /// The request's path.
        path: String,
        /// `host:port` of the API.
        host: String,
        /// What did not happen: connecting, an answer within the bound, the whole body.
        phase: &'static str,
        /// What the transport said.
        #[source]
        source: reqwest::Error,
    },
    /// The API has not answered for the whole silence bound earlier in this run (the
    /// credential's [`RateBudget::silence_left`]): the request is not sent.
    #[error(
        "{method} {path}: {host} did not answer within {bound} ({phase}); not asked again in this run"
    )]
    Silent {
        /// The request's method.
        method: String,
        /// The request's path.
        path: String,
        /// `host:port` of the API.
        host: String,
        /// The bound, for people.
        bound: String,
        /// How the silence showed.
        phase: &'static str,
    },
    /// The answer's body is larger than the cap.
    #[error("{method} {path} ({host}): the answer is larger than {cap} (the cap on an API answer)")]
    TooLarge {
        /// The request's method.
        method: String,
        /// The request's path.
        path: String,
        /// `host:port` of the API.
        host: String,
        /// The cap, for people.
        cap: String,
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
    /// Maps a non-success answer to a kind, the one place where statuses become kinds: 401
    /// unauthenticated (naming the credential's variable), 403 permission, 404 (and
    /// [`Api::not_found_statuses`]) not found of `what` (the path when `None`), 409
    /// conflict, [`Api::invalid_statuses`] a configuration error, 429 a rate limit with
    /// the wait its headers give; 5xx and
    /// [`Api::refused_statuses`] are retryable provider errors, anything else is not.
    pub fn error_for_status(
        &self,
        status: StatusCode,
        limits: &RateLimitHeaders,
        method: &str,
        path: &str,
        what: Option<&str>,
        message: &str,
    ) -> Error {
        let provider = self.provider.to_owned();
        let what = what.map_or_else(|| format!("{method} {path}"), str::to_owned);
        let s = status.as_u16();
        match s {
            401 => Error::Unauthenticated {
                provider,
                message: format!(
                    "the {} was refused ({message}); check {}",
                    self.credential, self.credential_var
                ),
            },
            403 => Error::PermissionDenied {
                provider,
                message: format!("{what}: {message}"),
            },
            404 => Error::not_found(format!("{what} on {}", self.platform)),
            s if self.not_found_statuses.contains(&s) => {
                Error::not_found(format!("{what} on {}", self.platform))
            }
            409 => Error::Conflict {
                message: format!("{}: {what}: {message}", self.provider),
            },
            429 => Error::RateLimited {
                provider,
                retry_after: limits.refusal_wait(),
            },
            s if self.invalid_statuses.contains(&s) => Error::config(format!(
                "{} refused {what} as invalid ({s}): {message}",
                self.platform
            )),
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

/// Whether a failed write may nevertheless have been done: the request was sent and no
/// clear answer came back (a timeout, a lost connection, a 5xx that is not a refusal, a
/// body that could not be read). The provider must read back whether it happened before it
/// sends the write again.
pub fn ambiguous(e: &Error) -> bool {
    match e {
        Error::Provider { source, .. } => match source.downcast_ref::<RestError>() {
            Some(RestError::Transport { phase, .. }) => *phase != CANNOT_CONNECT,
            Some(RestError::Status {
                status, refused, ..
            }) => !refused && *status >= 500,
            Some(RestError::TooLarge { .. } | RestError::Decode { .. }) => true,
            Some(RestError::Silent { .. }) | None => false,
        },
        Error::Timeout { .. } => true,
        _ => false,
    }
}

/// Whether a request was sent and no answer came back at all (a timeout, a lost
/// connection): the platform may still be working on it.
pub fn unanswered(e: &Error) -> bool {
    match e {
        Error::Provider { source, .. } => matches!(
            source.downcast_ref::<RestError>(),
            Some(RestError::Transport { phase, .. }) if *phase != CANNOT_CONNECT
        ),
        _ => false,
    }
}

/// The platform's message in an error body: its JSON `message` (or `detail`, `title`,
/// `error`, `error.message`) when it has one, else the text; redacted, then shortened to
/// [`ERROR_BODY_CHARS`].
pub fn error_message(body: &[u8]) -> String {
    let json = serde_json::from_slice::<Value>(body).ok();
    let from_json = json.as_ref().and_then(|v| {
        ["/message", "/detail", "/title", "/error/message", "/error"]
            .iter()
            .find_map(|p| v.pointer(p).and_then(Value::as_str))
            .map(str::to_owned)
    });
    let text = from_json.unwrap_or_else(|| String::from_utf8_lossy(body).into_owned());
    let text = text.trim();
    if text.is_empty() {
        return "no message".to_owned();
    }
    Redactor::global().shorten(text, ERROR_BODY_CHARS)
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderMap;
    use secrecy::SecretString;
    use staging_core::RetryPolicy;
    use std::time::Duration;

    const NEON: Api = Api {
        refused_statuses: &[423],
        ..Api::new("neon", "Neon", "API key", "NEON_API_KEY")
    };

    #[test]
    fn statuses_map_to_kinds_and_only_refusals_make_a_write_safe_to_resend() {
        let mut h = HeaderMap::new();
        h.insert("retry-after", "7".parse().unwrap());
        let h = RateLimitHeaders::parse(&h, std::time::SystemTime::now());
        let kind = |s: u16| {
            NEON.error_for_status(StatusCode::from_u16(s).unwrap(), &h, "GET", "/x", None, "m")
        };
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
        let e = supabase.error_for_status(StatusCode::LOCKED, &h, "GET", "/x", None, "m");
        assert!(!e.is_retryable());
        assert!(matches!(kind(410), Error::Provider { .. }));
        let render = Api {
            not_found_statuses: &[410],
            ..NEON
        };
        let e =
            render.error_for_status(StatusCode::GONE, &h, "GET", "/x", Some("service web"), "m");
        assert!(e.to_string().contains("service web on Neon"), "{e}");
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
        assert!(
            shown.contains(&format!("127.0.0.1:{port}")),
            "names the host: {shown}"
        );
        assert!(
            shown.contains("timed out waiting for the answer"),
            "names the phase: {shown}"
        );
        // A write that got no answer may have been done: it is not sent again, and the
        // provider is told to read back whether it happened.
        assert!(!refused(&err));
        assert!(ambiguous(&err));
    }

    #[test]
    fn a_max_body_above_the_ceiling_is_refused_naming_both() {
        let settings = Settings {
            max_body: 4 * 1024 * 1024 * 1024,
            ..Settings::default()
        };
        let err = Client::with_settings(
            NEON,
            url::Url::parse("http://127.0.0.1:9").unwrap(),
            SecretString::from("t".to_owned()),
            Auth::Bearer,
            settings,
        )
        .unwrap_err();
        let shown = err.to_string();
        assert!(
            shown.contains("4 GiB") && shown.contains("64 MiB"),
            "{shown}"
        );
        assert!(shown.contains("max_body"), "{shown}");
    }
}
