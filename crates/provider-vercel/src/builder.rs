//! [`VercelBuilder`]: reads the environment, fails early on missing credentials.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use staging_core::{Error, Result};
use url::Url;

use crate::client::{Client, Team};
use crate::error::PROVIDER;
use crate::provider::{Inner, VercelProvider};
use crate::settings::SecretType;

/// The public REST API's address.
pub const DEFAULT_API_URL: &str = "https://api.vercel.com";
/// The variable the token is read from (`Authorization: Bearer`).
pub const TOKEN_VAR: &str = "VERCEL_TOKEN";
/// The variable that points the provider at another address (a stand-in in tests).
pub const API_URL_VAR: &str = "VERCEL_API_URL";
/// The variable that points the calls missing from Vercel's published API description (the
/// rollback) at another address than [`API_URL_VAR`]'s: the tests' hand-written double.
pub const UNLISTED_API_URL_VAR: &str = "VERCEL_UNLISTED_API_URL";

/// The reads a wait may budget with: Vercel's REST API limits each endpoint per minute
/// (deployment reads in the hundreds); a conservative 100 a minute is assumed, shared by
/// everything that uses the token. A wait uses at most a quarter of it.
pub const READ_BUDGET: staging_core::ReadBudget =
    staging_core::ReadBudget::per_minute(100, "Vercel REST API: a conservative 100 reads a minute");

/// Which Vercel environment a provider deploys to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// `production`: the project's production domains.
    Production,
    /// `preview`, deployments of a git branch.
    Preview,
    /// A custom environment, by slug (`staging`).
    Custom(String),
}

impl Target {
    /// `production`, `preview`, or a custom environment's slug.
    pub fn parse(word: &str) -> Target {
        match word {
            "production" => Target::Production,
            "preview" => Target::Preview,
            other => Target::Custom(other.to_owned()),
        }
    }
}

/// How a project is found: by id or by name (the API takes either).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProjectRef {
    /// Id (`prj_…`) or name.
    pub id_or_name: String,
    /// The GitHub repository, `org/repo`, its deployments are built from.
    pub repo: Option<String>,
}

/// Builds a [`VercelProvider`].
///
/// ```
/// use staging_provider_vercel::VercelBuilder;
/// // No token anywhere: the failure comes from `build()`, not from the first request.
/// let err = VercelBuilder::new().build().unwrap_err();
/// assert!(err.to_string().contains("VERCEL_TOKEN"));
/// ```
#[derive(Debug, Clone, Default)]
pub struct VercelBuilder {
    token: Option<SecretString>,
    url: Option<String>,
    unlisted_url: Option<String>,
    team: Option<Team>,
    target: Option<Target>,
    git_branch: Option<String>,
    secret_type: SecretType,
    staged: bool,
    projects: BTreeMap<String, ProjectRef>,
    timeout: Option<Duration>,
    retry: Option<staging_core::RetryPolicy>,
    poll_interval: Option<Duration>,
    read_budget: Option<staging_core::ReadBudget>,
}

impl VercelBuilder {
    /// An empty builder: no token, the public API's address, target `production`.
    pub fn new() -> Self {
        Self::default()
    }

    /// A builder with the token from `VERCEL_TOKEN` and the address from `VERCEL_API_URL`.
    pub fn from_env() -> Self {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Like [`VercelBuilder::from_env`], reading variables through `lookup`.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Self {
        let mut b = Self::new();
        let set = |v: Option<String>| v.filter(|t| !t.trim().is_empty());
        if let Some(token) = set(lookup(TOKEN_VAR)) {
            b.token = Some(SecretString::from(token));
        }
        if let Some(url) = set(lookup(API_URL_VAR)) {
            b.url = Some(url);
        }
        if let Some(url) = set(lookup(UNLISTED_API_URL_VAR)) {
            b.unlisted_url = Some(url);
        }
        b
    }

    /// Use this token.
    pub fn with_token(mut self, token: impl Into<SecretString>) -> Self {
        self.token = Some(token.into());
        self
    }

    /// Talk to this address instead of `https://api.vercel.com`.
    pub fn with_url(mut self, url: impl Into<String>) -> Self {
        self.url = Some(url.into());
        self
    }

    /// Send the calls missing from Vercel's published contract (the rollback) here instead
    /// of the API's address: tests point it at their hand-written double.
    pub fn with_unlisted_url(mut self, url: impl Into<String>) -> Self {
        self.unlisted_url = Some(url.into());
        self
    }

    /// Act for this team, by id (`teamId`).
    pub fn with_team_id(mut self, id: impl Into<String>) -> Self {
        self.team = Some(Team::Id(id.into()));
        self
    }

    /// Act for this team, by slug (`slug`).
    pub fn with_team_slug(mut self, slug: impl Into<String>) -> Self {
        self.team = Some(Team::Slug(slug.into()));
        self
    }

    /// Deploy to this Vercel environment.
    pub fn with_target(mut self, target: Target) -> Self {
        self.target = Some(target);
        self
    }

    /// Build deployments from this branch (default `main`).
    pub fn with_git_branch(mut self, branch: impl Into<String>) -> Self {
        self.git_branch = Some(branch.into());
        self
    }

    /// Write secret env vars as this type.
    pub fn with_secret_type(mut self, t: SecretType) -> Self {
        self.secret_type = t;
        self
    }

    /// Production deploys hold the domains back until promoted (the staged flow).
    pub fn staged(mut self, staged: bool) -> Self {
        self.staged = staged;
        self
    }

    /// The spec's service `name` is this project.
    pub fn with_project(mut self, name: impl Into<String>, project: ProjectRef) -> Self {
        self.projects.insert(name.into(), project);
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

    /// How often to poll a deployment at the most (default 5 s).
    pub fn with_poll_interval(mut self, interval: Duration) -> Self {
        self.poll_interval = Some(interval);
        self
    }

    /// The read budget waits pace themselves against (default [`READ_BUDGET`]); a stand-in
    /// can lift it with [`staging_core::ReadBudget::unlimited`].
    pub fn with_read_budget(mut self, budget: staging_core::ReadBudget) -> Self {
        self.read_budget = Some(budget);
        self
    }

    fn parse_url(var: &str, raw: &str) -> Result<Url> {
        let mut url = Url::parse(raw.trim())
            .map_err(|e| Error::config(format!("{var}: `{raw}` is not a URL: {e}")))?;
        if !matches!(url.scheme(), "http" | "https") || url.cannot_be_a_base() {
            return Err(Error::config(format!(
                "{var}: `{raw}` is not an http(s) URL"
            )));
        }
        if !url.path().ends_with('/') {
            let path = format!("{}/", url.path());
            url.set_path(&path);
        }
        Ok(url)
    }

    /// The provider; fails when no token was given or the address is not http(s).
    pub fn build(self) -> Result<VercelProvider> {
        let token = self.token.ok_or_else(|| Error::Unauthenticated {
            provider: PROVIDER.to_owned(),
            message: format!(
                "no token: set {TOKEN_VAR} (Vercel dashboard, Account Settings, Tokens; scoped to the team)"
            ),
        })?;
        // A token pasted with a trailing newline would be refused in the header.
        let token = SecretString::from(token.expose_secret().trim().to_owned());
        let raw = self.url.unwrap_or_else(|| DEFAULT_API_URL.to_owned());
        let base = Self::parse_url(API_URL_VAR, &raw)?;
        let unlisted = match self.unlisted_url {
            Some(u) => Self::parse_url(UNLISTED_API_URL_VAR, &u)?,
            None => base.clone(),
        };
        let client = Client::new(
            base,
            unlisted,
            token,
            self.team,
            staging_rest::Settings {
                timeout: self
                    .timeout
                    .unwrap_or(staging_core::limits::DEFAULT_REQUEST_TIMEOUT),
                retry: self.retry.unwrap_or_default(),
                ..staging_rest::Settings::default()
            },
        )?;
        Ok(VercelProvider {
            inner: Arc::new(Inner {
                client,
                target: self.target.unwrap_or(Target::Production),
                git_branch: self.git_branch.unwrap_or_else(|| "main".to_owned()),
                secret_type: self.secret_type,
                staged: self.staged,
                pending: std::sync::Mutex::new(BTreeMap::new()),
                projects: self.projects,
                poll_interval: self.poll_interval.unwrap_or(Duration::from_secs(5)),
                read_budget: self.read_budget.unwrap_or(READ_BUDGET),
                custom_environment_ids: tokio::sync::Mutex::new(BTreeMap::new()),
            }),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_token_fails_in_build_with_exit_3() {
        let err = VercelBuilder::from_lookup(|_| None).build().unwrap_err();
        assert!(matches!(err, Error::Unauthenticated { .. }), "{err:?}");
        assert_eq!(err.class().exit_code(), 3, "{err}");
    }

    #[test]
    fn debug_never_shows_the_token() {
        let p = VercelBuilder::from_lookup(|n| match n {
            TOKEN_VAR => Some("vc_canary_token_77\n".to_owned()),
            API_URL_VAR => Some("http://127.0.0.1:9".to_owned()),
            _ => None,
        })
        .build()
        .unwrap();
        let shown = format!("{p:?}");
        assert!(shown.contains("127.0.0.1:9"), "{shown}");
        assert!(!shown.contains("vc_canary"), "{shown}");
    }

    #[test]
    fn a_non_http_address_is_refused() {
        let err = VercelBuilder::new()
            .with_token(SecretString::from("k".to_owned()))
            .with_url("ftp://x")
            .build()
            .unwrap_err();
        assert!(matches!(err, Error::ConfigInvalid { .. }), "{err:?}");
    }
}
