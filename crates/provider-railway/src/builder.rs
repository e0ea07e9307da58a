//! [`RailwayBuilder`]: reads the environment, fails early on missing credentials.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use staging_core::{Error, Result};
use url::Url;

use crate::client::{Client, Credentials};
use crate::error::PROVIDER;
use crate::provider::{Inner, RailwayProvider};

/// The public GraphQL API's address.
pub const DEFAULT_API_URL: &str = "https://backboard.railway.com/graphql/v2";
/// The variable an account or workspace token is read from (`Authorization: Bearer`).
pub const API_TOKEN_VAR: &str = "RAILWAY_API_TOKEN";
/// The variable a project token is read from (the `project-access-token` header).
pub const PROJECT_TOKEN_VAR: &str = "RAILWAY_TOKEN";
/// The variable that points the provider at another address (a stand-in in tests).
pub const API_URL_VAR: &str = "RAILWAY_API_URL";

/// How a thing on Railway is found: by id, or by its exact name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ref {
    /// By Railway's id: never ambiguous.
    Id(String),
    /// By its name (exact match required).
    Name(String),
}

/// Where a missing environment is copied from, when the spec allows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreateFrom {
    /// The Railway environment to copy (the one of the spec environment this one promotes to).
    pub source: Ref,
    /// The spec environment that is copied, for messages.
    pub source_environment: String,
}

/// Builds a [`RailwayProvider`].
///
/// ```
/// use staging_provider_railway::RailwayBuilder;
/// // No token anywhere: the failure comes from `build()`, not from the first request.
/// let err = RailwayBuilder::new().build().unwrap_err();
/// assert!(err.to_string().contains("RAILWAY_API_TOKEN"));
/// ```
#[derive(Debug, Clone, Default)]
pub struct RailwayBuilder {
    credentials: Option<Credentials>,
    url: Option<String>,
    project: Option<Ref>,
    workspace_id: Option<String>,
    environment: Option<Ref>,
    protected: bool,
    create_from: Option<CreateFrom>,
    services: BTreeMap<String, Ref>,
    timeout: Option<Duration>,
    retry: Option<staging_core::RetryPolicy>,
    poll_interval: Option<Duration>,
    read_budget: Option<staging_core::ReadBudget>,
}

impl RailwayBuilder {
    /// An empty builder: no token, the public API's address.
    pub fn new() -> Self {
        Self::default()
    }

    /// A builder with the token from `RAILWAY_API_TOKEN` (else `RAILWAY_TOKEN`) and the
    /// address from `RAILWAY_API_URL`, when they are set.
    pub fn from_env() -> Self {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Like [`RailwayBuilder::from_env`], reading variables through `lookup`.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Self {
        let mut b = Self::new();
        let set = |v: Option<String>| v.filter(|t| !t.trim().is_empty());
        if let Some(token) = set(lookup(API_TOKEN_VAR)) {
            b.credentials = Some(Credentials::Account(SecretString::from(token)));
        } else if let Some(token) = set(lookup(PROJECT_TOKEN_VAR)) {
            b.credentials = Some(Credentials::Project(SecretString::from(token)));
        }
        if let Some(url) = set(lookup(API_URL_VAR)) {
            b.url = Some(url);
        }
        b
    }

    /// Use this account or workspace token (`Authorization: Bearer`).
    pub fn with_api_token(mut self, token: impl Into<SecretString>) -> Self {
        self.credentials = Some(Credentials::Account(token.into()));
        self
    }

    /// Use this project token (`project-access-token`).
    pub fn with_project_token(mut self, token: impl Into<SecretString>) -> Self {
        self.credentials = Some(Credentials::Project(token.into()));
        self
    }

    /// Talk to this address instead of `https://backboard.railway.com/graphql/v2`.
    pub fn with_url(mut self, url: impl Into<String>) -> Self {
        self.url = Some(url.into());
        self
    }

    /// The Railway project.
    pub fn with_project(mut self, project: Ref) -> Self {
        self.project = Some(project);
        self
    }

    /// The workspace to find a project by name in.
    pub fn with_workspace_id(mut self, id: impl Into<String>) -> Self {
        self.workspace_id = Some(id.into());
        self
    }

    /// The Railway environment the provider works in.
    pub fn with_environment(mut self, environment: Ref) -> Self {
        self.environment = Some(environment);
        self
    }

    /// The environment is protected: it is never created by the provider.
    pub fn protected(mut self, protected: bool) -> Self {
        self.protected = protected;
        self
    }

    /// When the environment does not exist, it may be created as a copy of this one.
    pub fn with_create_from(mut self, from: CreateFrom) -> Self {
        self.create_from = Some(from);
        self
    }

    /// Find the spec's service `name` this way (default: a Railway service of the same name).
    pub fn with_service(mut self, name: impl Into<String>, service: Ref) -> Self {
        self.services.insert(name.into(), service);
        self
    }

    /// Bound on one HTTP request (default 30 s).
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// Retries of transient failures inside the client, and the deadline of one request
    /// with its retries and rate-limit waits (default [`staging_core::RetryPolicy::default`]).
    pub fn with_retry(mut self, retry: staging_core::RetryPolicy) -> Self {
        self.retry = Some(retry);
        self
    }

    /// How often to poll a deployment (default 5 s).
    pub fn with_poll_interval(mut self, interval: Duration) -> Self {
        self.poll_interval = Some(interval);
        self
    }

    /// The read budget waits pace themselves against (default: the Hobby plan's, 1,000
    /// requests an hour; the spec's `plan` setting names another plan's).
    pub fn with_read_budget(mut self, budget: staging_core::ReadBudget) -> Self {
        self.read_budget = Some(budget);
        self
    }

    /// The provider; fails when no token was given, or the address is not http(s).
    pub fn build(self) -> Result<RailwayProvider> {
        let credentials = self.credentials.ok_or_else(|| Error::Unauthenticated {
            provider: PROVIDER.to_owned(),
            message: format!(
                "no token: set {API_TOKEN_VAR} (an account or workspace token) or {PROJECT_TOKEN_VAR} (a project token; Railway dashboard, project settings, Tokens)"
            ),
        })?;
        // A token pasted with a trailing newline is a classic; the header would be refused.
        let credentials = match credentials {
            Credentials::Account(t) => {
                Credentials::Account(SecretString::from(t.expose_secret().trim().to_owned()))
            }
            Credentials::Project(t) => {
                Credentials::Project(SecretString::from(t.expose_secret().trim().to_owned()))
            }
        };
        let raw = self.url.unwrap_or_else(|| DEFAULT_API_URL.to_owned());
        let url = Url::parse(raw.trim())
            .map_err(|e| Error::config(format!("{API_URL_VAR}: `{raw}` is not a URL: {e}")))?;
        if !matches!(url.scheme(), "http" | "https") || url.cannot_be_a_base() {
            return Err(Error::config(format!(
                "{API_URL_VAR}: `{raw}` is not an http(s) URL"
            )));
        }
        let client = Client::new(
            url,
            credentials,
            staging_rest::Settings {
                timeout: self
                    .timeout
                    .unwrap_or(staging_core::limits::DEFAULT_REQUEST_TIMEOUT),
                retry: self.retry.unwrap_or_default(),
                ..staging_rest::Settings::default()
            },
        )?;
        if self.project.is_none() && !client.is_project_token() {
            return Err(Error::config(
                "the Railway project is not named: set `project_id` (or `project`) in the environment's settings, or use a project token (RAILWAY_TOKEN)",
            ));
        }
        Ok(RailwayProvider {
            inner: Arc::new(Inner {
                client,
                project: self.project,
                workspace_id: self.workspace_id,
                environment: self.environment,
                protected: self.protected,
                create_from: self.create_from,
                services: self.services,
                poll_interval: self.poll_interval.unwrap_or(Duration::from_secs(5)),
                read_budget: self
                    .read_budget
                    .unwrap_or_else(|| crate::RailwayPlan::default().read_budget()),
                resolved: tokio::sync::Mutex::new(None),
            }),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_credentials_fail_in_build() {
        let err = RailwayBuilder::from_lookup(|_| None).build().unwrap_err();
        assert!(matches!(err, Error::Unauthenticated { .. }), "{err:?}");
        assert_eq!(err.class().exit_code(), 3, "{err}");
    }

    #[test]
    fn the_account_token_wins_over_the_project_token() {
        let b = RailwayBuilder::from_lookup(|n| match n {
            API_TOKEN_VAR => Some("rw_canary_account\n".to_owned()),
            PROJECT_TOKEN_VAR => Some("rw_canary_project".to_owned()),
            _ => None,
        });
        let shown = format!("{b:?}");
        assert!(shown.contains("Account"), "{shown}");
        assert!(!shown.contains("rw_canary"), "{shown}");
    }

    #[test]
    fn a_project_token_alone_names_the_project() {
        let p = RailwayBuilder::from_lookup(|n| match n {
            PROJECT_TOKEN_VAR => Some("rw_canary_project".to_owned()),
            API_URL_VAR => Some("http://127.0.0.1:9/graphql/v2".to_owned()),
            _ => None,
        })
        .build()
        .unwrap();
        let shown = format!("{p:?}");
        assert!(shown.contains("127.0.0.1:9"), "{shown}");
        assert!(!shown.contains("rw_canary"), "{shown}");
    }

    #[test]
    fn an_account_token_needs_a_project() {
        let err = RailwayBuilder::new()
            .with_api_token(SecretString::from("t".to_owned()))
            .build()
            .unwrap_err();
        assert!(matches!(err, Error::ConfigInvalid { .. }), "{err:?}");
    }

    #[test]
    fn a_non_http_address_is_refused() {
        let err = RailwayBuilder::new()
            .with_api_token(SecretString::from("k".to_owned()))
            .with_project(Ref::Id("p".into()))
            .with_url("ftp://x")
            .build()
            .unwrap_err();
        assert!(matches!(err, Error::ConfigInvalid { .. }), "{err:?}");
    }
}
