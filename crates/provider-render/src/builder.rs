//! [`RenderBuilder`]: reads the environment, fails early on a missing key.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use staging_core::{Error, ReadBudget, Result, RetryPolicy};
use url::Url;

use crate::client::{Client, RateLimits};
use crate::error::PROVIDER;
use crate::provider::{Inner, RenderProvider};

/// The public API's address.
pub const DEFAULT_BASE_URL: &str = "https://api.render.com/v1";
/// The variable the API key is read from.
pub const API_KEY_VAR: &str = "RENDER_API_KEY";
/// The variable that points the provider at another address (a stand-in in tests).
pub const API_URL_VAR: &str = "RENDER_API_URL";

/// The reads a wait may budget with: Render's API allows a workspace a few hundred `GET`
/// requests a minute, depending on the plan; the lowest figure, 100 a minute, is assumed,
/// shared by everything that uses the key. A wait uses at most a quarter of it: one service
/// is polled every 2.4 s, five every 12 s, twenty every 48 s (see `crates/staging-core/src/cadence.rs`).
pub const READ_BUDGET: ReadBudget = ReadBudget::per_minute(
    100,
    "Render API: 100 reads a minute, the lowest plan's limit",
);

/// How a service of the spec is found on Render.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServiceRef {
    /// By Render's id (`srv-...`): one request, no ambiguity.
    Id(String),
    /// By its name on Render (listed with a name filter, exact match required).
    Name(String),
}

/// Builds a [`RenderProvider`].
///
/// ```
/// use staging_provider_render::RenderBuilder;
/// // No key anywhere: the failure comes from `build()`, not from the first request.
/// let err = RenderBuilder::new().build().unwrap_err();
/// assert!(err.to_string().contains("RENDER_API_KEY"));
/// ```
#[derive(Clone, Default)]
pub struct RenderBuilder {
    api_key: Option<SecretString>,
    base_url: Option<String>,
    owner_id: Option<String>,
    services: BTreeMap<String, (ServiceRef, Option<String>)>,
    timeout: Option<Duration>,
    poll_interval: Option<Duration>,
    read_budget: Option<ReadBudget>,
    rate_limits: Option<RateLimits>,
    retry: Option<RetryPolicy>,
}

impl fmt::Debug for RenderBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RenderBuilder")
            .field("api_key", &self.api_key.as_ref().map(|_| "[REDACTED]"))
            .field("base_url", &self.base_url)
            .field("owner_id", &self.owner_id)
            .field("services", &self.services)
            .field("timeout", &self.timeout)
            .field("poll_interval", &self.poll_interval)
            .field("read_budget", &self.read_budget)
            .field("rate_limits", &self.rate_limits)
            .field("retry", &self.retry)
            .finish()
    }
}

impl RenderBuilder {
    /// An empty builder: no key, the public API's address.
    pub fn new() -> Self {
        Self::default()
    }

    /// A builder with the key from `RENDER_API_KEY` and the address from `RENDER_API_URL`,
    /// when they are set.
    pub fn from_env() -> Self {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Like [`RenderBuilder::from_env`], reading variables through `lookup`.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Self {
        let mut b = Self::new();
        if let Some(key) = lookup(API_KEY_VAR) {
            b.api_key = Some(SecretString::from(key));
        }
        if let Some(url) = lookup(API_URL_VAR).filter(|u| !u.trim().is_empty()) {
            b.base_url = Some(url);
        }
        b
    }

    /// Use this API key.
    pub fn with_api_key(mut self, key: impl Into<SecretString>) -> Self {
        self.api_key = Some(key.into());
        self
    }

    /// Talk to this address instead of `https://api.render.com/v1`.
    pub fn with_base_url(mut self, url: impl Into<String>) -> Self {
        self.base_url = Some(url.into());
        self
    }

    /// Only look for services and datastores of this workspace (`tea-...` or `usr-...`).
    pub fn with_owner_id(mut self, owner: impl Into<String>) -> Self {
        self.owner_id = Some(owner.into());
        self
    }

    /// Find the spec's service `name` this way (default: a Render service of the same name).
    pub fn with_service(mut self, name: impl Into<String>, service: ServiceRef) -> Self {
        self.services.insert(name.into(), (service, None));
        self
    }

    /// Like [`RenderBuilder::with_service`], looking in workspace `owner` for this service.
    pub fn with_service_in(
        mut self,
        name: impl Into<String>,
        service: ServiceRef,
        owner: impl Into<String>,
    ) -> Self {
        self.services
            .insert(name.into(), (service, Some(owner.into())));
        self
    }

    /// Bound on one HTTP request (default 30 s).
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// The shortest interval between two polls of one deploy or job (default 2 s); the
    /// read budget makes it longer when several services are waited on at once.
    pub fn with_poll_interval(mut self, interval: Duration) -> Self {
        self.poll_interval = Some(interval);
        self
    }

    /// The read budget waits pace themselves against (default [`READ_BUDGET`]: 100 reads a
    /// minute). A workspace with a higher limit can say so; tests give their fake a large one.
    pub fn with_read_budget(mut self, budget: ReadBudget) -> Self {
        self.read_budget = Some(budget);
        self
    }

    /// Client-side pacing of writes (default: Render's documented limits).
    pub fn with_rate_limits(mut self, limits: RateLimits) -> Self {
        self.rate_limits = Some(limits);
        self
    }

    /// Retries of transient failures inside the client, and the deadline of one request
    /// with its retries and rate-limit waits (default [`RetryPolicy::default`]).
    pub fn with_retry(mut self, retry: RetryPolicy) -> Self {
        self.retry = Some(retry);
        self
    }

    /// The provider; fails when no API key was given or the address is not http(s).
    pub fn build(self) -> Result<RenderProvider> {
        let key = self.api_key.ok_or_else(|| Error::Unauthenticated {
            provider: PROVIDER.to_owned(),
            message: format!(
                "no API key: set {API_KEY_VAR} (Render dashboard, Account settings, API keys)"
            ),
        })?;
        // A key pasted with a trailing newline is a classic; the header would be refused.
        let trimmed = key.expose_secret().trim();
        if trimmed.is_empty() {
            return Err(Error::Unauthenticated {
                provider: PROVIDER.to_owned(),
                message: format!("{API_KEY_VAR} is empty"),
            });
        }
        let key = SecretString::from(trimmed.to_owned());
        let raw = self.base_url.unwrap_or_else(|| DEFAULT_BASE_URL.to_owned());
        let base = Url::parse(raw.trim())
            .map_err(|e| Error::config(format!("{API_URL_VAR}: `{raw}` is not a URL: {e}")))?;
        if !matches!(base.scheme(), "http" | "https") || base.cannot_be_a_base() {
            return Err(Error::config(format!(
                "{API_URL_VAR}: `{raw}` is not an http(s) URL"
            )));
        }
        let client = Client::new(
            base,
            key,
            staging_rest::Settings {
                timeout: self.timeout.unwrap_or(Duration::from_secs(30)),
                retry: self.retry.unwrap_or_default(),
                ..staging_rest::Settings::default()
            },
            self.rate_limits.unwrap_or_default(),
        )?;
        Ok(RenderProvider {
            inner: Arc::new(Inner {
                client,
                owner_id: self.owner_id,
                services: self.services,
                poll_interval: self.poll_interval.unwrap_or(Duration::from_secs(2)),
                read_budget: self.read_budget.unwrap_or(READ_BUDGET),
                only_workspace: tokio::sync::Mutex::new(None),
            }),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_key_fails_in_build() {
        let err = RenderBuilder::from_lookup(|_| None).build().unwrap_err();
        assert!(matches!(err, Error::Unauthenticated { .. }), "{err:?}");
    }

    #[test]
    fn a_blank_key_fails_in_build() {
        let err = RenderBuilder::new()
            .with_api_key(SecretString::from(" \n".to_owned()))
            .build()
            .unwrap_err();
        assert!(matches!(err, Error::Unauthenticated { .. }), "{err:?}");
    }

    #[test]
    fn the_environment_gives_key_and_address() {
        let p = RenderBuilder::from_lookup(|n| match n {
            API_KEY_VAR => Some("rnd_canary_key\n".to_owned()),
            API_URL_VAR => Some("http://127.0.0.1:9/".to_owned()),
            _ => None,
        })
        .build()
        .unwrap();
        let shown = format!("{p:?}");
        assert!(shown.contains("127.0.0.1:9"), "{shown}");
        assert!(!shown.contains("rnd_canary_key"), "{shown}");
    }

    #[test]
    fn a_non_http_address_is_refused() {
        let err = RenderBuilder::new()
            .with_api_key(SecretString::from("k".to_owned()))
            .with_base_url("ftp://x")
            .build()
            .unwrap_err();
        assert!(matches!(err, Error::ConfigInvalid { .. }), "{err:?}");
    }

    #[test]
    fn builder_debug_redacts_the_key() {
        let b = RenderBuilder::new().with_api_key(SecretString::from("rnd_canary_key".to_owned()));
        assert!(!format!("{b:?}").contains("rnd_canary_key"));
    }
}
