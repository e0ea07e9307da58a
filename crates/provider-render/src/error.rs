//! Render's API as the shared platform client sees it: the one place where Render differs
//! from the common mapping of statuses to kinds ([`staging_rest::Api::error_for_status`]).

use staging_rest::Api;

/// The provider name used in every error.
pub(crate) const PROVIDER: &str = "render";

/// Render's API: a 410 (a deleted service or deploy) is "not found" like a 404; reads are
/// retried on 502/503/504 and a missing answer, a deploy only when refused (429).
pub(crate) const API: Api = Api {
    not_found_statuses: &[410],
    ..Api::new(PROVIDER, "Render", "API key", "RENDER_API_KEY")
};

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::StatusCode;
    use reqwest::header::{HeaderMap, HeaderValue};
    use staging_core::Error;
    use staging_rest::RateLimitHeaders;

    fn headers(pairs: &[(&'static str, &'static str)]) -> RateLimitHeaders {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, HeaderValue::from_static(v));
        }
        RateLimitHeaders::parse(&h, std::time::SystemTime::now())
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
            // Whole seconds rounded down: one more second, never early.
            (429, &[("ratelimit-reset", "12")], "rate_limited:Some(13s)"),
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
            let e = API.error_for_status(
                StatusCode::from_u16(*status).unwrap(),
                &headers(hs),
                "GET",
                "/services/srv-1",
                Some("service srv-1"),
                "msg",
            );
            assert_eq!(&kind(&e), want, "status {status} with {hs:?}");
        }
        let e = API.error_for_status(
            StatusCode::UNAUTHORIZED,
            &headers(&[]),
            "GET",
            "/x",
            None,
            "m",
        );
        assert!(e.to_string().contains("RENDER_API_KEY"), "{e}");
    }
}
