//! The crate's private error, and the one function that turns Vercel's answers into kinds
//! of [`staging_core::Error`].

use std::time::Duration;

use reqwest::StatusCode;
use reqwest::header::HeaderMap;
use staging_core::Error;

/// The provider name used in every error.
pub(crate) const PROVIDER: &str = "vercel";

/// What went wrong talking to Vercel, before it is mapped to a kind. Never holds a token or
/// a value: the token travels in a header, request bodies are never kept here.
#[derive(Debug, thiserror::Error)]
pub(crate) enum VercelError {
    /// Vercel answered with a status that is not a success.
    #[error("{operation} answered {status}: {message}")]
    Answer {
        operation: String,
        status: u16,
        message: String,
    },
    /// The request got no answer.
    #[error("{operation}: {phase} ({host}): {source}")]
    Transport {
        operation: String,
        host: String,
        phase: &'static str,
        #[source]
        source: reqwest::Error,
    },
    /// The answer's body is larger than the cap.
    #[error("{operation}: the answer is larger than {cap}")]
    TooLarge { operation: String, cap: String },
    /// A 2xx whose body is not what the operation answers.
    #[error("{operation}: unexpected response body: {detail}")]
    Decode { operation: String, detail: String },
}

impl VercelError {
    pub(crate) fn into_core(self, retryable: bool) -> Error {
        Error::Provider {
            provider: PROVIDER.to_owned(),
            source: Box::new(self),
            retryable,
        }
    }
}

/// Vercel's error body: `{"error": {"code", "message"}}`; only the message is kept, shortened
/// and redacted (it never holds the token, but may echo a name).
pub(crate) fn error_message(body: &[u8]) -> String {
    let parsed: Option<serde_json::Value> = serde_json::from_slice(body).ok();
    let message = parsed
        .as_ref()
        .and_then(|v| {
            v.pointer("/error/message")
                .or_else(|| v.get("message"))
                .and_then(serde_json::Value::as_str)
        })
        .unwrap_or("no message");
    staging_core::Redactor::global().shorten(message, 300)
}

/// Maps a status that is not a success to a kind. The one place where Vercel's statuses
/// become kinds; `what` names the thing asked for.
pub(crate) fn error_for_status(
    status: StatusCode,
    headers: &HeaderMap,
    operation: &str,
    what: &str,
    message: String,
) -> Error {
    let provider = PROVIDER.to_owned();
    match status.as_u16() {
        401 => Error::Unauthenticated {
            provider,
            message: format!("the token was refused ({message}); check VERCEL_TOKEN"),
        },
        // A token that reads the project but may not change it: a change of settings or
        // variables is refused with 403 while the reads before it passed.
        403 if !is_read(operation) => Error::PermissionDenied {
            provider,
            message: format!("the token lacks permission for {operation} on {what} ({message})"),
        },
        // Vercel answers 403 "Not authorized" for a token that is invalid or lacks the team.
        403 => Error::Unauthenticated {
            provider,
            message: format!(
                "{what}: {message}; check VERCEL_TOKEN and the team (`team_id` / `team_slug`)"
            ),
        },
        404 | 410 => Error::not_found(format!("{what} on Vercel")),
        409 => Error::Conflict {
            message: format!("{what}: {message}"),
        },
        429 => Error::RateLimited {
            provider,
            retry_after: retry_after(headers),
        },
        s => VercelError::Answer {
            operation: operation.to_owned(),
            status: s,
            message,
        }
        .into_core(status.is_server_error()),
    }
}

/// Whether an operation of Vercel's description only reads (`getProject`, `listPromoteAliases`,
/// `filterProjectEnvs`).
fn is_read(operation: &str) -> bool {
    ["get", "list", "filter"]
        .iter()
        .any(|p| operation.starts_with(p))
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
    VercelError::Transport {
        operation: operation.to_owned(),
        host: host.to_owned(),
        phase,
        source: source.without_url(),
    }
    .into_core(true)
}

/// `Retry-After` in seconds, else `X-RateLimit-Reset` as an epoch time.
pub(crate) fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let number =
        |name: &str| -> Option<u64> { headers.get(name)?.to_str().ok()?.trim().parse().ok() };
    if let Some(s) = number("retry-after") {
        return Some(Duration::from_secs(s));
    }
    let reset = number("x-ratelimit-reset")?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .ok()?
        .as_secs();
    Some(Duration::from_secs(reset.saturating_sub(now).min(600)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_map_to_kinds() {
        let mut h = HeaderMap::new();
        h.insert("retry-after", "7".parse().unwrap());
        let kind = |s: u16| {
            error_for_status(
                StatusCode::from_u16(s).unwrap(),
                &h,
                "getProject",
                "project web",
                "m".into(),
            )
        };
        assert!(matches!(kind(401), Error::Unauthenticated { .. }));
        assert!(matches!(kind(403), Error::Unauthenticated { .. }));
        assert_eq!(kind(403).class().exit_code(), 3);
        assert!(matches!(kind(404), Error::NotFound { .. }));
        assert!(matches!(kind(409), Error::Conflict { .. }));
        assert!(
            matches!(kind(429), Error::RateLimited { retry_after: Some(d), .. } if d == Duration::from_secs(7))
        );
        assert!(kind(500).is_retryable());
        assert!(kind(503).is_retryable());
        assert!(!kind(400).is_retryable());
    }

    #[test]
    fn a_403_on_a_settings_change_is_a_missing_permission_not_a_bad_token() {
        let h = HeaderMap::new();
        let e = error_for_status(
            StatusCode::FORBIDDEN,
            &h,
            "updateProject",
            "project web",
            "Not authorized".into(),
        );
        assert!(matches!(e, Error::PermissionDenied { .. }), "{e}");
        let text = e.to_string();
        assert!(
            text.contains("the token lacks permission for updateProject on project web"),
            "{text}"
        );
        assert!(!text.contains("authentication failed"), "{text}");
        // The attack: the same 403 on a read still says the token or team is wrong.
        let read = error_for_status(
            StatusCode::FORBIDDEN,
            &h,
            "getProject",
            "project web",
            "x".into(),
        );
        assert!(matches!(read, Error::Unauthenticated { .. }), "{read}");
    }

    #[test]
    fn the_message_comes_from_vercels_error_body() {
        assert_eq!(
            error_message(br#"{"error":{"code":"x","message":"Project not found"}}"#),
            "Project not found"
        );
        assert_eq!(error_message(b"<html>"), "no message");
    }
}
