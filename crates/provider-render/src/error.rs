//! The crate's private error, and the one function that turns an HTTP answer of Render into
//! a kind of [`staging_core::Error`].

use std::time::Duration;

use reqwest::StatusCode;
use reqwest::header::HeaderMap;
use staging_core::Error;

/// The provider name used in every error.
pub(crate) const PROVIDER: &str = "render";

/// What went wrong talking to Render, before it is mapped to a kind. Never holds the API key:
/// the key travels in a header, and neither headers nor request bodies are kept here.
#[derive(Debug, thiserror::Error)]
pub(crate) enum RenderError {
    /// Render answered with a status that is not a success.
    #[error("{method} {path} answered {status}: {message}")]
    Status {
        method: String,
        path: String,
        status: u16,
        message: String,
    },
    /// The request did not get an answer (connection refused, reset, timed out).
    #[error("{method} {path}: {phase} ({host}): {source}")]
    Transport {
        method: String,
        path: String,
        /// `host:port` of the API.
        host: String,
        /// What did not happen: connecting, an answer within the bound, the whole body.
        phase: &'static str,
        #[source]
        source: reqwest::Error,
    },
    /// The answer's body is larger than the cap.
    #[error("{method} {path}: the answer is larger than {cap}")]
    TooLarge {
        method: String,
        path: String,
        cap: String,
    },
    /// Render answered 2xx with a body that is not what its API description says.
    #[error("{method} {path}: unexpected response body: {source}")]
    Decode {
        method: String,
        path: String,
        #[source]
        source: serde_json::Error,
    },
}

impl RenderError {
    pub(crate) fn into_core(self, retryable: bool) -> Error {
        Error::Provider {
            provider: PROVIDER.to_owned(),
            source: Box::new(self),
            retryable,
        }
    }
}

/// Maps a non-success answer of Render to a kind: the one place where HTTP statuses become
/// kinds, so every operation reports the same status the same way.
///
/// `what` names the thing asked for (for `NotFound`), `message` is Render's own `message`
/// field (or the body), never containing the API key.
pub(crate) fn error_for_status(
    status: StatusCode,
    headers: &HeaderMap,
    method: &str,
    path: &str,
    what: &str,
    message: &str,
) -> Error {
    let provider = PROVIDER.to_owned();
    match status.as_u16() {
        401 => Error::Unauthenticated {
            provider,
            message: format!("the API key was refused ({message}); check RENDER_API_KEY"),
        },
        403 => Error::PermissionDenied {
            provider,
            message: format!("{what}: {message}"),
        },
        404 | 410 => Error::not_found(format!("{what} on Render")),
        409 => Error::Conflict {
            message: format!("render: {what}: {message}"),
        },
        429 => Error::RateLimited {
            provider,
            retry_after: retry_after(headers),
        },
        s => RenderError::Status {
            method: method.to_owned(),
            path: path.to_owned(),
            status: s,
            message: message.to_owned(),
        }
        .into_core(status.is_server_error()),
    }
}

/// Maps a request that got no answer: always worth retrying.
pub(crate) fn error_for_transport(
    method: &str,
    host: &str,
    path: &str,
    source: reqwest::Error,
) -> Error {
    let phase = match (source.is_connect(), source.is_timeout()) {
        (true, true) => "connecting timed out",
        (true, false) => "cannot connect",
        (false, true) => "timed out waiting for the answer",
        (false, false) if source.is_body() || source.is_decode() => "reading the answer failed",
        (false, false) => "the request failed",
    };
    RenderError::Transport {
        method: method.to_owned(),
        path: path.to_owned(),
        host: host.to_owned(),
        phase,
        source: source.without_url(),
    }
    .into_core(true)
}

/// How long Render asked us to wait: `Retry-After` (seconds), else `Ratelimit-Reset`
/// (seconds until the window resets; an epoch timestamp is accepted too).
pub(crate) fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let number = |name: &str| -> Option<u64> {
        headers
            .get(name)?
            .to_str()
            .ok()?
            .trim()
            .parse::<f64>()
            .ok()
            .filter(|v| v.is_finite() && *v >= 0.0)
            .map(|v| v.ceil() as u64)
    };
    if let Some(secs) = number("retry-after") {
        return Some(Duration::from_secs(secs));
    }
    let reset = number("ratelimit-reset")?;
    // A value this large is a Unix timestamp, not a delay.
    if reset > 1_000_000_000 {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .ok()?
            .as_secs();
        return Some(Duration::from_secs(reset.saturating_sub(now)));
    }
    Some(Duration::from_secs(reset))
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, HeaderValue::from_static(v));
        }
        h
    }

    fn kind(e: &Error) -> String {
        match e {
            Error::Unauthenticated { .. } => "unauthenticated".into(),
            Error::PermissionDenied { .. } => "permission_denied".into(),
            Error::NotFound { .. } => "not_found".into(),
            Error::Conflict { .. } => "conflict".into(),
            Error::RateLimited { retry_after, .. } => format!("rate_limited:{retry_after:?}"),
            Error::Provider { retryable, .. } => format!("provider:retryable={retryable}"),
            other => format!("other:{other:?}"),
        }
    }

    #[test]
    fn http_statuses_map_to_kinds() {
        type Case = (u16, &'static [(&'static str, &'static str)], &'static str);
        let cases: &[Case] = &[
            (400, &[], "provider:retryable=false"),
            (401, &[], "unauthenticated"),
            (402, &[], "provider:retryable=false"),
            (403, &[], "permission_denied"),
            (404, &[], "not_found"),
            (406, &[], "provider:retryable=false"),
            (409, &[], "conflict"),
            (410, &[], "not_found"),
            (422, &[], "provider:retryable=false"),
            (429, &[], "rate_limited:None"),
            (429, &[("retry-after", "7")], "rate_limited:Some(7s)"),
            (429, &[("ratelimit-reset", "12")], "rate_limited:Some(12s)"),
            (
                429,
                &[("retry-after", "2"), ("ratelimit-reset", "30")],
                "rate_limited:Some(2s)",
            ),
            (429, &[("retry-after", "soon")], "rate_limited:None"),
            (500, &[], "provider:retryable=true"),
            (502, &[], "provider:retryable=true"),
            (503, &[], "provider:retryable=true"),
            (504, &[], "provider:retryable=true"),
        ];
        for (status, hs, want) in cases {
            let e = error_for_status(
                StatusCode::from_u16(*status).unwrap(),
                &headers(hs),
                "GET",
                "/services/srv-1",
                "service srv-1",
                "msg",
            );
            assert_eq!(&kind(&e), want, "status {status} with {hs:?}");
        }
    }

    #[test]
    fn rate_limit_reset_as_timestamp_is_a_delay_from_now() {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs();
        let mut h = HeaderMap::new();
        h.insert(
            "ratelimit-reset",
            HeaderValue::from_str(&(now + 30).to_string()).unwrap(),
        );
        let d = retry_after(&h).unwrap();
        // Bounds are loose on purpose: the test may run on a busy machine.
        assert!(
            d <= Duration::from_secs(30) && d >= Duration::from_secs(10),
            "{d:?}"
        );
    }
}
