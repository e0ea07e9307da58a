//! The crate's private error, and the one function that turns an answer of Railway (an HTTP
//! status, or a GraphQL `errors` list inside a 200) into a kind of [`staging_core::Error`].

use std::time::Duration;

use reqwest::StatusCode;
use reqwest::header::HeaderMap;
use staging_core::Error;

/// The provider name used in every error.
pub(crate) const PROVIDER: &str = "railway";

/// What went wrong talking to Railway, before it is mapped to a kind. Never holds a token:
/// tokens travel in headers, and neither headers nor request bodies are kept here.
#[derive(Debug, thiserror::Error)]
pub(crate) enum RailwayError {
    /// Railway answered with a status that is not a success, or with GraphQL errors.
    #[error("{operation} answered {status}: {message}")]
    Answer {
        operation: String,
        status: u16,
        message: String,
    },
    /// The request did not get an answer (connection refused, reset, timed out).
    #[error("{operation}: {phase} ({host}): {source}")]
    Transport {
        operation: String,
        /// `host:port` of the API.
        host: String,
        /// What did not happen: connecting, an answer within the bound, the whole body.
        phase: &'static str,
        #[source]
        source: reqwest::Error,
    },
    /// The answer's body is larger than the cap.
    #[error("{operation}: the answer is larger than {cap}")]
    TooLarge { operation: String, cap: String },
    /// Railway answered 2xx with a body that is not a GraphQL answer of this operation.
    #[error("{operation}: unexpected response body: {detail}")]
    Decode { operation: String, detail: String },
}

impl RailwayError {
    pub(crate) fn into_core(self, retryable: bool) -> Error {
        Error::Provider {
            provider: PROVIDER.to_owned(),
            source: Box::new(self),
            retryable,
        }
    }
}

/// One entry of a GraphQL `errors` list, as much of it as the mapping needs.
#[derive(Debug, Clone, Default)]
pub(crate) struct GraphqlError {
    pub(crate) message: String,
    /// `extensions.code`, when the server gives one (`GRAPHQL_VALIDATION_FAILED`).
    pub(crate) code: Option<String>,
}

/// Maps an answer that is not a success to a kind: an HTTP status that is not 2xx, or a
/// 2xx whose GraphQL `errors` say the operation failed. The one place where Railway's
/// answers become kinds, so every operation reports the same failure the same way.
///
/// `what` names the thing asked for (for `NotFound`); `errors` are the GraphQL errors of the
/// body, if it had any (their messages never contain a token).
pub(crate) fn error_for_answer(
    status: StatusCode,
    headers: &HeaderMap,
    operation: &str,
    what: &str,
    errors: &[GraphqlError],
) -> Error {
    let provider = PROVIDER.to_owned();
    let message = if errors.is_empty() {
        "no message".to_owned()
    } else {
        errors
            .iter()
            .map(|e| e.message.as_str())
            .collect::<Vec<_>>()
            .join("; ")
    };
    let message = staging_core::Redactor::global().shorten(&message, 500);
    let lower = message.to_ascii_lowercase();
    match status.as_u16() {
        401 => {
            return Error::Unauthenticated {
                provider,
                message: format!(
                    "the token was refused ({message}); check RAILWAY_API_TOKEN or RAILWAY_TOKEN"
                ),
            };
        }
        403 => {
            return Error::PermissionDenied {
                provider,
                message: format!("{what}: {message}"),
            };
        }
        404 | 410 => return Error::not_found(format!("{what} on Railway")),
        429 => {
            return Error::RateLimited {
                provider,
                retry_after: retry_after(headers),
            };
        }
        // A 400 that carries GraphQL errors is read like a 200 with errors, below.
        s if !status.is_success() && (s != 400 || errors.is_empty()) => {
            return RailwayError::Answer {
                operation: operation.to_owned(),
                status: s,
                message,
            }
            .into_core(status.is_server_error());
        }
        _ => {}
    }
    // A GraphQL error inside a 200 (or a 400 that carries GraphQL errors).
    let code = errors
        .iter()
        .find_map(|e| e.code.clone())
        .unwrap_or_default();
    if code == "GRAPHQL_VALIDATION_FAILED" || code == "GRAPHQL_PARSE_FAILED" {
        // The document itself is wrong for the schema: a bug here, never worth a retry.
        return RailwayError::Answer {
            operation: operation.to_owned(),
            status: status.as_u16(),
            message: format!("the document does not validate against Railway's schema: {message}"),
        }
        .into_core(false);
    }
    if code == "UNAUTHENTICATED"
        || lower.contains("not authorized")
        || lower.contains("unauthorized")
    {
        return Error::Unauthenticated {
            provider,
            message: format!(
                "{what}: {message}; check RAILWAY_API_TOKEN (account or workspace token) or RAILWAY_TOKEN (project token)"
            ),
        };
    }
    if code == "FORBIDDEN" {
        return Error::PermissionDenied {
            provider,
            message: format!("{what}: {message}"),
        };
    }
    if code == "NOT_FOUND" || lower.contains("not found") {
        return Error::not_found(format!("{what} on Railway"));
    }
    if code == "RATE_LIMITED" || lower.contains("rate limit") {
        return Error::RateLimited {
            provider,
            retry_after: retry_after(headers),
        };
    }
    if code == "INTERNAL_SERVER_ERROR" && lower.contains("problem processing request") {
        // Railway's word for "something went wrong on our side, try again".
        return RailwayError::Answer {
            operation: operation.to_owned(),
            status: status.as_u16(),
            message,
        }
        .into_core(true);
    }
    RailwayError::Answer {
        operation: operation.to_owned(),
        status: status.as_u16(),
        message,
    }
    .into_core(false)
}

/// Maps a request that got no answer: always worth retrying.
pub(crate) fn error_for_transport(operation: &str, host: &str, source: reqwest::Error) -> Error {
    let phase = match (source.is_connect(), source.is_timeout()) {
        (true, true) => "connecting timed out",
        (true, false) => "cannot connect",
        (false, true) => "timed out waiting for the answer",
        (false, false) if source.is_body() || source.is_decode() => "reading the answer failed",
        (false, false) => "the request failed",
    };
    RailwayError::Transport {
        operation: operation.to_owned(),
        host: host.to_owned(),
        phase,
        source: source.without_url(),
    }
    .into_core(true)
}

/// How long Railway asked us to wait: `Retry-After` (seconds), else `X-RateLimit-Reset`
/// (an epoch timestamp or seconds).
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
    let reset = number("x-ratelimit-reset")?;
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

    fn kind(e: &Error) -> String {
        match e {
            Error::Unauthenticated { .. } => "unauthenticated".into(),
            Error::PermissionDenied { .. } => "permission_denied".into(),
            Error::NotFound { .. } => "not_found".into(),
            Error::RateLimited { retry_after, .. } => format!("rate_limited:{retry_after:?}"),
            Error::Provider { retryable, .. } => format!("provider:retryable={retryable}"),
            other => format!("other:{other:?}"),
        }
    }

    #[test]
    fn answers_map_to_kinds() {
        type Case = (
            u16,
            Option<&'static str>,
            &'static str,
            Option<&'static str>,
            &'static str,
        );
        let cases: &[Case] = &[
            (401, None, "", None, "unauthenticated"),
            (403, None, "", None, "permission_denied"),
            (404, None, "", None, "not_found"),
            (429, None, "", None, "rate_limited:None"),
            (429, Some("7"), "", None, "rate_limited:Some(7s)"),
            (500, None, "", None, "provider:retryable=true"),
            (502, None, "", None, "provider:retryable=true"),
            (503, None, "", None, "provider:retryable=true"),
            (422, None, "", None, "provider:retryable=false"),
            (200, None, "Not Authorized", None, "unauthenticated"),
            (200, None, "Project not found", None, "not_found"),
            (200, None, "x", Some("FORBIDDEN"), "permission_denied"),
            (
                200,
                None,
                "x",
                Some("GRAPHQL_VALIDATION_FAILED"),
                "provider:retryable=false",
            ),
            (
                400,
                None,
                "Cannot query field",
                Some("GRAPHQL_VALIDATION_FAILED"),
                "provider:retryable=false",
            ),
            (
                200,
                None,
                "You have hit the rate limit",
                None,
                "rate_limited:None",
            ),
            (
                200,
                None,
                "Problem processing request",
                Some("INTERNAL_SERVER_ERROR"),
                "provider:retryable=true",
            ),
            (
                200,
                None,
                "Invalid commit",
                None,
                "provider:retryable=false",
            ),
        ];
        for (status, after, message, code, want) in cases {
            let mut h = HeaderMap::new();
            if let Some(a) = after {
                h.insert("retry-after", HeaderValue::from_static(a));
            }
            let errors: Vec<GraphqlError> = if message.is_empty() && code.is_none() {
                vec![]
            } else {
                vec![GraphqlError {
                    message: (*message).to_owned(),
                    code: code.map(str::to_owned),
                }]
            };
            let e = error_for_answer(
                StatusCode::from_u16(*status).unwrap(),
                &h,
                "Deployment",
                "deployment d-1",
                &errors,
            );
            assert_eq!(&kind(&e), want, "{status} {message} {code:?}");
        }
    }
}
