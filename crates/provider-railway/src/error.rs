//! The crate's private error, Railway's API as the shared platform client sees it, and the
//! one function that turns a GraphQL `errors` list (inside a 200, or a 400) into a kind of
//! [`staging_core::Error`]; HTTP statuses are the shared client's common mapping.

use reqwest::StatusCode;
use reqwest::header::HeaderMap;
use staging_core::Error;
use staging_rest::{Api, RateLimitHeaders};

/// The provider name used in every error.
pub(crate) const PROVIDER: &str = "railway";

/// Railway's API: a 410 is "not found" like a 404.
pub(crate) const API: Api = Api {
    not_found_statuses: &[410],
    ..Api::new(
        PROVIDER,
        "Railway",
        "token",
        "RAILWAY_API_TOKEN (account or workspace token) or RAILWAY_TOKEN (project token)",
    )
};

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

/// Maps an answer whose GraphQL `errors` say the operation failed (a 200 or a 400 that
/// carries them) to a kind: the one place where Railway's GraphQL failures become kinds, so
/// every operation reports the same failure the same way.
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
            retry_after: RateLimitHeaders::parse(headers, std::time::SystemTime::now())
                .refusal_wait(),
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
            let status = StatusCode::from_u16(*status).unwrap();
            // As the client does: GraphQL errors are Railway's, the rest the common mapping.
            let e = if errors.is_empty() {
                API.error_for_status(
                    status,
                    &RateLimitHeaders::parse(&h, std::time::SystemTime::now()),
                    "POST",
                    "/graphql/v2",
                    Some("deployment d-1"),
                    "no message",
                )
            } else {
                error_for_answer(status, &h, "Deployment", "deployment d-1", &errors)
            };
            assert_eq!(&kind(&e), want, "{status} {message} {code:?}");
        }
    }
}
