//! Durations in the spec (`"30s"`, `"10m"`, `"1h 30m"`): one parser for every field, with
//! checked arithmetic and an upper bound, so a huge value is an error at its span rather
//! than an overflow when a deadline is computed from it (`Instant + d` panics past the
//! clock's range).
//!
//! Use as `#[serde(with = "staging_core::spec::duration")]` on a `Duration`, or
//! `duration::option` on an `Option<Duration>`.

use std::time::Duration;

use serde::{Deserialize, Deserializer, Serializer};

/// The longest duration a spec may give: 10 years (3650 days).
pub const MAX: Duration = Duration::from_secs(3650 * 24 * 60 * 60);

/// Parse a duration as the spec writes it (humantime: `500ms`, `30s`, `10m`, `2h 30m`,
/// `3d`). A bare number is seconds. Past [`MAX`], or too large to represent, is an error.
pub fn parse(text: &str) -> Result<Duration, String> {
    let s = text.trim();
    let parsed = if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) {
        s.parse::<u64>()
            .map(Duration::from_secs)
            .map_err(|_| humantime::DurationError::NumberOverflow)
    } else {
        humantime::parse_duration(s)
    };
    match parsed {
        Ok(d) if d <= MAX => Ok(d),
        Ok(_) | Err(humantime::DurationError::NumberOverflow) => Err(format!(
            "duration `{text}` is too long: at most {} (3650d)",
            humantime::format_duration(MAX)
        )),
        Err(e) => Err(format!(
            "`{text}` is not a duration like `500ms`, `30s`, `10m` or `2h 30m`: {e}"
        )),
    }
}

/// Deserialize a `Duration` with [`parse`].
pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    let s = String::deserialize(d)?;
    parse(&s).map_err(serde::de::Error::custom)
}

/// Write a `Duration` as the spec does (`10m`; the JSON Schema's defaults).
pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(&humantime::format_duration(*d))
}

/// For `Option<Duration>` fields.
pub mod option {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    /// Write an `Option<Duration>` as the spec does.
    pub fn serialize<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => super::serialize(d, s),
            None => s.serialize_none(),
        }
    }

    /// Deserialize an `Option<Duration>` with [`super::parse`].
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
        Option::<String>::deserialize(d)?
            .map(|s| super::parse(&s).map_err(serde::de::Error::custom))
            .transpose()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_usual_forms() {
        assert_eq!(parse("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse("30"), Ok(Duration::from_secs(30)));
        assert_eq!(parse("2h 30m"), Ok(Duration::from_secs(9000)));
    }

    #[test]
    fn huge_values_are_errors_not_overflows() {
        for s in [
            "307445734561825861m",
            "307445734561825860m",
            "18446744073709551616",
            "500000000000y",
            "3651d",
        ] {
            assert!(parse(s).unwrap_err().contains("too long"), "{s}");
        }
        assert!(parse("3650d").is_ok());
        assert!(parse("soon").unwrap_err().contains("not a duration"));
    }
}
