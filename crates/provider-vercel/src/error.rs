//! The crate's private error, Vercel's API as the shared platform client sees it, and
//! Vercel's one override of the common mapping of statuses (a 403).

use reqwest::StatusCode;
use staging_core::Error;
use staging_rest::Api;

/// The provider name used in every error.
pub(crate) const PROVIDER: &str = "vercel";

/// Vercel's API: 410 is "not found" like 404; a read is sent again on a 500 as well (Vercel
/// answers a passing 500 on reads).
pub(crate) const API: Api = Api {
    not_found_statuses: &[410],
    retried_read_statuses: &[500],
    ..Api::new(PROVIDER, "Vercel", "token", "VERCEL_TOKEN")
};

/// What went wrong talking to Vercel that the shared client does not already say. Never
/// holds a token or a value.
#[derive(Debug, thiserror::Error)]
pub(crate) enum VercelError {
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

/// Vercel's override of the common mapping: a 403 on a read means the token is invalid or
/// lacks the team (Vercel answers "Not authorized"), a 403 on a change means the token may
/// read but not change. `None` for every other status.
pub(crate) fn forbidden(
    status: StatusCode,
    operation: &str,
    what: &str,
    message: &str,
) -> Option<Error> {
    if status != StatusCode::FORBIDDEN {
        return None;
    }
    let provider = PROVIDER.to_owned();
    Some(if is_read(operation) {
        Error::Unauthenticated {
            provider,
            message: format!(
                "{what}: {message}; check VERCEL_TOKEN and the team (`team_id` / `team_slug`)"
            ),
        }
    } else {
        Error::PermissionDenied {
            provider,
            message: format!("the token lacks permission for {operation} on {what} ({message})"),
        }
    })
}

/// Whether an operation of Vercel's description only reads (`getProject`, `listPromoteAliases`,
/// `filterProjectEnvs`).
pub(crate) fn is_read(operation: &str) -> bool {
    ["get", "list", "filter"]
        .iter()
        .any(|p| operation.starts_with(p))
}

#[cfg(test)]
mod tests {
    use super::*;
    use staging_rest::RateLimitHeaders;
    use std::time::Duration;

    #[test]
    fn statuses_map_to_kinds() {
        let mut h = reqwest::header::HeaderMap::new();
        h.insert("retry-after", "7".parse().unwrap());
        let h = RateLimitHeaders::parse(&h, std::time::SystemTime::now());
        let kind = |s: u16| {
            let status = StatusCode::from_u16(s).unwrap();
            forbidden(status, "getProject", "project web", "m").unwrap_or_else(|| {
                API.error_for_status(
                    status,
                    &h,
                    "GET",
                    "/v9/projects/web",
                    Some("project web"),
                    "m",
                )
            })
        };
        assert!(matches!(kind(401), Error::Unauthenticated { .. }));
        assert!(kind(401).to_string().contains("VERCEL_TOKEN"));
        assert!(matches!(kind(403), Error::Unauthenticated { .. }));
        assert_eq!(kind(403).class().exit_code(), 3);
        assert!(matches!(kind(404), Error::NotFound { .. }));
        assert!(matches!(kind(410), Error::NotFound { .. }));
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
        let e = forbidden(
            StatusCode::FORBIDDEN,
            "updateProject",
            "project web",
            "Not authorized",
        )
        .unwrap();
        assert!(matches!(e, Error::PermissionDenied { .. }), "{e}");
        let text = e.to_string();
        assert!(
            text.contains("the token lacks permission for updateProject on project web"),
            "{text}"
        );
        assert!(!text.contains("authentication failed"), "{text}");
        // The attack: the same 403 on a read still says the token or team is wrong.
        let read = forbidden(StatusCode::FORBIDDEN, "getProject", "project web", "x").unwrap();
        assert!(matches!(read, Error::Unauthenticated { .. }), "{read}");
    }
}
