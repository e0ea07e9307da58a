//! Netlify's API as the shared platform client sees it: the one place where Netlify differs
//! from the common mapping of statuses to kinds ([`staging_rest::Api::error_for_status`]).

use staging_rest::Api;

/// The provider name used in every error.
pub(crate) const PROVIDER: &str = "netlify";

/// Netlify's API: a 422 is a request Netlify refused as invalid (a configuration error, or
/// a deploy in a state it will not cancel); reads are retried on 502/503/504 and a missing
/// answer, a build or a site creation only when refused (429).
pub(crate) const API: Api = Api {
    invalid_statuses: &[422],
    ..Api::new(PROVIDER, "Netlify", "token", "NETLIFY_AUTH_TOKEN")
};

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::StatusCode;
    use reqwest::header::{HeaderMap, HeaderValue};
    use staging_rest::RateLimitHeaders;
    use std::time::Duration;

    #[test]
    fn http_statuses_map_to_error_kinds() {
        #[rustfmt::skip]
        let cases: Vec<(u16, Option<&'static str>, &str, bool)> = vec![
            (400, None,      "Provider",         false),
            (401, None,      "Unauthenticated",  false),
            (403, None,      "PermissionDenied", false),
            (404, None,      "NotFound",         false),
            (409, None,      "Conflict",         false),
            (422, None,      "ConfigInvalid",    false),
            (429, Some("7"), "RateLimited",      true),
            (429, None,      "RateLimited",      true),
            (500, None,      "Provider",         true),
            (502, None,      "Provider",         true),
            (503, None,      "Provider",         true),
            (504, None,      "Provider",         true),
        ];
        for (code, after, kind, retryable) in cases {
            let mut h = HeaderMap::new();
            if let Some(a) = after {
                h.insert("retry-after", HeaderValue::from_static(a));
            }
            let limits = RateLimitHeaders::parse(&h, std::time::SystemTime::now());
            let e = API.error_for_status(
                StatusCode::from_u16(code).unwrap(),
                &limits,
                "GET",
                "/sites/s1",
                Some("getSite"),
                "m",
            );
            let got = format!("{e:?}");
            assert!(got.starts_with(kind), "{code} -> {got}, want {kind}");
            assert_eq!(e.is_retryable(), retryable, "{code}");
            if code == 429 {
                assert_eq!(
                    e.retry_after(),
                    after.map(|a| Duration::from_secs(a.parse().unwrap())),
                    "429 keeps Retry-After"
                );
            }
            if code == 401 {
                assert!(e.to_string().contains("NETLIFY_AUTH_TOKEN"), "{e}");
            }
        }
    }
}
