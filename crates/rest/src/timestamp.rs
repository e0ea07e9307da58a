//! The platforms' timestamps (RFC 3339) as seconds since the Unix epoch: what a teardown
//! compares with the moment a creation was requested.

use std::time::UNIX_EPOCH;

/// `2026-01-01T12:00:00Z`, `2026-01-01T12:00:00.123456Z` or `2026-01-01T14:00:00+02:00` as
/// seconds since the Unix epoch (fractions dropped). `None` for anything else, so that a
/// timestamp that cannot be read never passes for one that can (a caller that needs the
/// time then refuses).
pub fn epoch_seconds(rfc3339: &str) -> Option<u64> {
    let text = rfc3339.trim();
    // A numeric offset (`+02:00`, `-05:00`): read the time as UTC, then take the offset off.
    let (utc, offset_secs) = match text.len().checked_sub(6).map(|i| text.split_at(i)) {
        Some((head, tail))
            if (tail.starts_with('+') || tail.starts_with('-'))
                && tail.as_bytes()[3] == b':'
                && head.contains('T') =>
        {
            let hours: i64 = tail[1..3].parse().ok()?;
            let minutes: i64 = tail[4..6].parse().ok()?;
            if hours > 23 || minutes > 59 {
                return None;
            }
            let secs = hours * 3600 + minutes * 60;
            (
                format!("{head}Z"),
                if tail.starts_with('-') { -secs } else { secs },
            )
        }
        _ => (text.to_owned(), 0),
    };
    let at = humantime::parse_rfc3339_weak(&utc).ok()?;
    let secs = i64::try_from(at.duration_since(UNIX_EPOCH).ok()?.as_secs()).ok()?;
    u64::try_from(secs - offset_secs).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn platform_timestamps_read_as_epoch_seconds() {
        let cases: &[(&str, Option<u64>)] = &[
            ("1970-01-01T00:00:00Z", Some(0)),
            ("2026-01-01T00:00:00Z", Some(1_767_225_600)),
            ("2026-01-01T00:00:00.987654Z", Some(1_767_225_600)),
            ("2026-01-01T02:00:00+02:00", Some(1_767_225_600)),
            ("2025-12-31T19:00:00-05:00", Some(1_767_225_600)),
            ("2026-01-01T00:00:00+00:00", Some(1_767_225_600)),
            ("2026-01-01", None),
            ("yesterday", None),
            ("", None),
            ("2026-01-01T00:00:00+25:00", None),
        ];
        for (text, want) in cases {
            assert_eq!(epoch_seconds(text), *want, "{text}");
        }
    }
}
