//! The one reader of a platform's rate-limit headers: `Retry-After` (seconds or an
//! HTTP-date), `RateLimit-Limit|Remaining|Reset` (Render, the IETF draft) and
//! `X-RateLimit-Limit|Remaining|Reset` (Netlify, Vercel, Railway, GitHub style).

use std::time::{Duration, SystemTime};

use reqwest::header::HeaderMap;

/// A `*-Reset` value this large is a Unix timestamp, not a delay.
const EPOCH_THRESHOLD: u64 = 1_000_000_000;

/// What one answer said about the credential's rate budget. Every field is optional: a
/// platform sends some, all or none of them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RateLimitHeaders {
    /// `Retry-After`: how long to wait before the next request, as a delay from now.
    pub retry_after: Option<Duration>,
    /// `RateLimit-Limit` / `X-RateLimit-Limit`: requests allowed in the window.
    pub limit: Option<u64>,
    /// `RateLimit-Remaining` / `X-RateLimit-Remaining`: requests left in the window.
    pub remaining: Option<u64>,
    /// `RateLimit-Reset` / `X-RateLimit-Reset`: how long until the window resets, as a
    /// delay from now, already made safe against whole-second rounding down (see
    /// [`RateLimitHeaders::parse`]).
    pub reset: Option<Duration>,
}

impl RateLimitHeaders {
    /// Reads the headers of one answer, at `now` (wall clock, for HTTP-dates and epoch
    /// timestamps).
    ///
    /// A `*-Reset` in whole seconds is treated as rounded down (Render's are: its answers
    /// are always 0–59 and the window ends up to a second after): the delay is the value plus
    /// one second, so a wait never ends before the window does. An epoch timestamp is a
    /// delay from `now`, plus the same second. A `Retry-After` is honoured as given.
    pub fn parse(headers: &HeaderMap, now: SystemTime) -> Self {
        let text = |name: &str| {
            headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::trim)
        };
        let number = |name: &str| -> Option<f64> {
            text(name)?
                .parse::<f64>()
                .ok()
                .filter(|v| v.is_finite() && *v >= 0.0)
        };
        let either = |a: &str, b: &str| number(a).or_else(|| number(b));
        let retry_after = text("retry-after").and_then(|v| retry_after_value(v, now));
        let reset = either("ratelimit-reset", "x-ratelimit-reset").map(|v| reset_delay(v, now));
        RateLimitHeaders {
            retry_after,
            limit: either("ratelimit-limit", "x-ratelimit-limit").map(|v| v as u64),
            remaining: either("ratelimit-remaining", "x-ratelimit-remaining").map(|v| v as u64),
            reset,
        }
    }

    /// How long a refused request (429) must wait: `Retry-After`, else the reset.
    pub fn refusal_wait(&self) -> Option<Duration> {
        self.retry_after.or(self.reset)
    }

    /// When the window is spent (`Remaining: 0` with a reset), how long until it renews.
    pub fn exhausted_for(&self) -> Option<Duration> {
        match (self.remaining, self.reset) {
            (Some(0), Some(reset)) => Some(reset),
            _ => None,
        }
    }
}

/// `Retry-After` is either delay-seconds or an HTTP-date (RFC 9110 §10.2.3).
fn retry_after_value(v: &str, now: SystemTime) -> Option<Duration> {
    if let Ok(secs) = v.parse::<f64>() {
        return (secs.is_finite() && secs >= 0.0).then(|| Duration::from_secs_f64(secs));
    }
    let at = httpdate::parse_http_date(v).ok()?;
    // An HTTP-date has whole seconds: wait until the second after it has begun.
    Some(
        at.duration_since(now)
            .unwrap_or_default()
            .saturating_add(Duration::from_secs(1)),
    )
}

/// A reset value: seconds (rounded down by the platform) or an epoch timestamp.
fn reset_delay(v: f64, now: SystemTime) -> Duration {
    let secs = if v >= EPOCH_THRESHOLD as f64 {
        let at = SystemTime::UNIX_EPOCH + Duration::from_secs_f64(v);
        at.duration_since(now).unwrap_or_default().as_secs_f64()
    } else {
        v
    };
    Duration::from_secs_f64(secs.floor()) + Duration::from_secs(1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    fn headers(pairs: &[(&'static str, String)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn retry_after_is_read_as_seconds_or_as_an_http_date() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        let h = headers(&[("retry-after", "7".into())]);
        assert_eq!(
            RateLimitHeaders::parse(&h, now).retry_after,
            Some(Duration::from_secs(7))
        );
        let date = httpdate::fmt_http_date(now + Duration::from_secs(30));
        let h = headers(&[("retry-after", date)]);
        assert_eq!(
            RateLimitHeaders::parse(&h, now).retry_after,
            Some(Duration::from_secs(31))
        );
        // A date in the past, or garbage: no wait beyond the next second / none at all.
        let h = headers(&[(
            "retry-after",
            httpdate::fmt_http_date(now - Duration::from_secs(5)),
        )]);
        assert_eq!(
            RateLimitHeaders::parse(&h, now).retry_after,
            Some(Duration::from_secs(1))
        );
        for bad in ["soon", "-3", "NaN", "inf"] {
            let h = headers(&[("retry-after", bad.into())]);
            assert_eq!(RateLimitHeaders::parse(&h, now).retry_after, None, "{bad}");
        }
    }

    #[test]
    fn a_whole_second_reset_rounded_down_is_waited_one_second_longer() {
        let now = SystemTime::now();
        // Render: `Ratelimit-Reset: 0` means "less than a second"; waiting 0 s arrives early.
        for (name, v, want) in [
            ("ratelimit-reset", "0", 1),
            ("ratelimit-reset", "59", 60),
            ("x-ratelimit-reset", "12", 13),
        ] {
            let h = headers(&[(name, v.into())]);
            assert_eq!(
                RateLimitHeaders::parse(&h, now).reset,
                Some(Duration::from_secs(want)),
                "{name}: {v}"
            );
        }
        let epoch = now
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap()
            .as_secs()
            + 30;
        let h = headers(&[("x-ratelimit-reset", epoch.to_string())]);
        let d = RateLimitHeaders::parse(&h, now).reset.unwrap();
        assert!(
            d >= Duration::from_secs(30) && d <= Duration::from_secs(32),
            "{d:?}"
        );
    }

    #[test]
    fn limit_remaining_and_reset_are_read_from_either_family() {
        let now = SystemTime::now();
        let h = headers(&[
            ("ratelimit-limit", "400".into()),
            ("ratelimit-remaining", "0".into()),
            ("ratelimit-reset", "9".into()),
        ]);
        let r = RateLimitHeaders::parse(&h, now);
        assert_eq!((r.limit, r.remaining), (Some(400), Some(0)));
        assert_eq!(r.exhausted_for(), Some(Duration::from_secs(10)));
        assert_eq!(r.refusal_wait(), Some(Duration::from_secs(10)));
        let h = headers(&[
            ("x-ratelimit-limit", "500".into()),
            ("x-ratelimit-remaining", "3".into()),
            ("retry-after", "2".into()),
            ("x-ratelimit-reset", "30".into()),
        ]);
        let r = RateLimitHeaders::parse(&h, now);
        assert_eq!((r.limit, r.remaining), (Some(500), Some(3)));
        assert_eq!(r.exhausted_for(), None);
        // Retry-After wins over the reset for a refused request.
        assert_eq!(r.refusal_wait(), Some(Duration::from_secs(2)));
        assert_eq!(
            RateLimitHeaders::parse(&HeaderMap::new(), now),
            RateLimitHeaders::default()
        );
    }
}
