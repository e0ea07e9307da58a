//! The crate's private error and the one place where it becomes a [`staging_core::Error`].

use std::time::Duration;

use reqwest::StatusCode;
use staging_core::Error;

pub(crate) const PROVIDER: &str = "netlify";

/// What can go wrong talking to Netlify, before it is classified for the rest of the toolkit.
#[derive(Debug, thiserror::Error)]
pub(crate) enum NetlifyError {
    /// Netlify answered with a non-success status.
    #[error("{operation}: HTTP {status}: {message}")]
    Status {
        operation: &'static str,
        status: StatusCode,
        message: String,
        retry_after: Option<Duration>,
    },
    /// The request did not complete (connect, reset, timeout). The URL is stripped.
    #[error("{operation}: {phase} ({host}): {source}")]
    Transport {
        operation: &'static str,
        timed_out: bool,
        /// `host:port` asked (never the path: a build hook's carries its secret id).
        host: String,
        /// What did not happen: connecting, an answer within the bound, the whole body.
        phase: &'static str,
        #[source]
        source: reqwest::Error,
    },
    /// Netlify answered 2xx with a body we could not read.
    #[error("{operation}: unreadable response from Netlify ({message})")]
    Decode {
        operation: &'static str,
        message: String,
    },
}

impl NetlifyError {
    pub(crate) fn transport(operation: &'static str, source: reqwest::Error) -> Self {
        // Build hook URLs carry the hook's secret id: never let a URL into a message.
        let timed_out = source.is_timeout();
        let host = source
            .url()
            .map(|u| {
                format!(
                    "{}:{}",
                    u.host_str().unwrap_or_default(),
                    u.port_or_known_default().unwrap_or_default()
                )
            })
            .unwrap_or_else(|| "the Netlify API".to_owned());
        let phase = match (source.is_connect(), timed_out) {
            (true, true) => "connecting timed out",
            (true, false) => "cannot connect",
            (false, true) => "timed out waiting for the answer",
            (false, false) if source.is_body() || source.is_decode() => "reading the answer failed",
            (false, false) => "the request failed",
        };
        NetlifyError::Transport {
            operation,
            timed_out,
            host,
            phase,
            source: source.without_url(),
        }
    }
}

/// The one mapping from Netlify's answers to the toolkit's error kinds.
pub(crate) fn classify(err: NetlifyError) -> Error {
    match err {
        NetlifyError::Status {
            status,
            retry_after,
            operation,
            ref message,
        } => match status.as_u16() {
            401 => Error::Unauthenticated {
                provider: PROVIDER.into(),
                message: format!(
                    "{operation}: the token was refused (check NETLIFY_AUTH_TOKEN): {message}"
                ),
            },
            403 => Error::PermissionDenied {
                provider: PROVIDER.into(),
                message: format!("{operation}: {message}"),
            },
            404 => Error::not_found(format!("{operation}: {message}")),
            409 => Error::Conflict {
                message: format!("netlify {operation}: {message}"),
            },
            422 => Error::config(format!("netlify refused {operation} as invalid: {message}")),
            429 => Error::RateLimited {
                provider: PROVIDER.into(),
                retry_after,
            },
            s => Error::Provider {
                provider: PROVIDER.into(),
                retryable: s >= 500,
                source: Box::new(err),
            },
        },
        NetlifyError::Transport { .. } => Error::Provider {
            provider: PROVIDER.into(),
            retryable: true,
            source: Box::new(err),
        },
        NetlifyError::Decode { .. } => Error::Provider {
            provider: PROVIDER.into(),
            retryable: false,
            source: Box::new(err),
        },
    }
}

/// `Retry-After` in seconds or as an HTTP date is what RFC 9110 allows; Netlify sends seconds,
/// and `X-RateLimit-Reset` (epoch seconds) when it sends no `Retry-After`.
pub(crate) fn retry_after(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .ok()?
        .as_secs();
    if let Some(v) = headers
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        && let Ok(secs) = v.trim().parse::<u64>()
    {
        return Some(Duration::from_secs(secs));
    }
    let reset = headers
        .get("x-ratelimit-reset")
        .and_then(|v| v.to_str().ok())?
        .trim()
        .parse::<u64>()
        .ok()?;
    Some(Duration::from_secs(reset.saturating_sub(now).max(1)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(code: u16, retry_after: Option<Duration>) -> NetlifyError {
        NetlifyError::Status {
            operation: "getSite",
            status: StatusCode::from_u16(code).unwrap(),
            message: "m".into(),
            retry_after,
        }
    }

    #[test]
    fn http_statuses_map_to_error_kinds() {
        let secs = |s| Some(Duration::from_secs(s));
        #[rustfmt::skip]
        let cases: Vec<(u16, Option<Duration>, &str, bool)> = vec![
            (400, None,    "Provider",         false),
            (401, None,    "Unauthenticated",  false),
            (403, None,    "PermissionDenied", false),
            (404, None,    "NotFound",         false),
            (409, None,    "Conflict",         false),
            (422, None,    "ConfigInvalid",    false),
            (429, secs(7), "RateLimited",      true),
            (429, None,    "RateLimited",      true),
            (500, None,    "Provider",         true),
            (502, None,    "Provider",         true),
            (503, None,    "Provider",         true),
            (504, None,    "Provider",         true),
        ];
        for (code, after, kind, retryable) in cases {
            let e = classify(status(code, after));
            let got = format!("{e:?}");
            assert!(got.starts_with(kind), "{code} -> {got}, want {kind}");
            assert_eq!(e.is_retryable(), retryable, "{code}");
            if code == 429 {
                assert_eq!(e.retry_after(), after, "429 keeps Retry-After");
            }
        }
    }

    #[tokio::test]
    async fn timeouts_and_decode_failures_map_to_provider_errors() {
        // A real reqwest timeout: a listener that accepts and never answers.
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let _keep = tokio::spawn(async move {
            let mut held = vec![];
            while let Ok((s, _)) = listener.accept().await {
                held.push(s);
            }
        });
        let client = reqwest::Client::builder()
            .timeout(Duration::from_millis(200))
            .build()
            .unwrap();
        let err = client
            .get(format!("http://{addr}/build_hooks/secret-hook-id"))
            .send()
            .await
            .unwrap_err();
        let mapped = classify(NetlifyError::transport("buildHook", err));
        assert!(
            mapped.is_retryable(),
            "a timeout is worth retrying: {mapped:?}"
        );
        assert!(
            mapped
                .to_string()
                .contains(&format!("timed out waiting for the answer ({addr})")),
            "the host and the phase are named: {mapped}"
        );
        assert!(
            !mapped.to_string().contains("secret-hook-id"),
            "the URL leaked: {mapped}"
        );

        let decode = classify(NetlifyError::Decode {
            operation: "getDeploy",
            message: "expected value".into(),
        });
        assert!(
            matches!(
                decode,
                Error::Provider {
                    retryable: false,
                    ..
                }
            ),
            "{decode:?}"
        );
    }

    #[test]
    fn retry_after_reads_seconds_and_the_reset_header() {
        let mut h = reqwest::header::HeaderMap::new();
        h.insert("retry-after", "12".parse().unwrap());
        assert_eq!(retry_after(&h), Some(Duration::from_secs(12)));
        let mut h = reqwest::header::HeaderMap::new();
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs();
        h.insert("x-ratelimit-reset", (now + 30).to_string().parse().unwrap());
        let d = retry_after(&h).unwrap();
        assert!(
            d <= Duration::from_secs(30) && d >= Duration::from_secs(28),
            "{d:?}"
        );
        assert_eq!(retry_after(&reqwest::header::HeaderMap::new()), None);
    }
}
