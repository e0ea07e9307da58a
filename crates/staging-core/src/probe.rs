//! The [`Probe`] trait: one check with evidence.

use std::fmt::Debug;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use serde::Serialize;

use crate::error::Result;

/// What one probe run found. `observed` and `expected` are human-readable and already
/// redacted by the probe; the runner redacts them again before any output.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ProbeOutcome {
    /// Whether the check passed.
    pub ok: bool,
    /// What was expected, e.g. `status 200` or `maxmemory-policy = noeviction`.
    pub expected: String,
    /// What was seen.
    pub observed: String,
    /// How long the check took.
    #[serde(rename = "duration_ms", serialize_with = "as_millis")]
    pub duration: Duration,
    /// Extra facts worth keeping as evidence (certificate subject, resolved addresses...).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub evidence: Vec<(String, String)>,
}

impl ProbeOutcome {
    /// A passing outcome.
    pub fn pass(
        expected: impl Into<String>,
        observed: impl Into<String>,
        duration: Duration,
    ) -> Self {
        ProbeOutcome {
            ok: true,
            expected: expected.into(),
            observed: observed.into(),
            duration,
            evidence: vec![],
        }
    }

    /// A failing outcome.
    pub fn fail(
        expected: impl Into<String>,
        observed: impl Into<String>,
        duration: Duration,
    ) -> Self {
        ProbeOutcome {
            ok: false,
            expected: expected.into(),
            observed: observed.into(),
            duration,
            evidence: vec![],
        }
    }

    /// Add one fact of evidence.
    pub fn with_evidence(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.evidence.push((key.into(), value.into()));
        self
    }
}

fn as_millis<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_u64(d.as_millis() as u64)
}

/// One smoke check: an HTTP request, a TLS handshake, a DNS lookup, a database round trip.
///
/// A probe that could run but found a problem returns `Ok` with `ok: false`; `Err` is for a
/// probe that could not be set up at all (an invalid URL, a missing secret).
#[async_trait]
pub trait Probe: Debug + Send + Sync + 'static {
    /// The probe's name as the spec gives it.
    fn name(&self) -> &str;

    /// The probe's kind (`http`, `tls`...).
    fn kind(&self) -> &str;

    /// Run the check once.
    async fn run(&self) -> Result<ProbeOutcome>;
}

/// A probe behind a pointer.
pub type DynProbe = Arc<dyn Probe>;

macro_rules! forward_probe {
    ($ty:ty) => {
        #[async_trait]
        impl<T: Probe + ?Sized> Probe for $ty {
            fn name(&self) -> &str {
                (**self).name()
            }
            fn kind(&self) -> &str {
                (**self).kind()
            }
            async fn run(&self) -> Result<ProbeOutcome> {
                (**self).run().await
            }
        }
    };
}

forward_probe!(Arc<T>);
forward_probe!(Box<T>);
