//! [`NetlifyProvider`] and its builder: sites, deploys, restore, lock.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;
use std::sync::Mutex;
use std::time::Duration;

use reqwest::Method;
use secrecy::{ExposeSecret, SecretString};
use staging_core::pipeline::commits_match;
use staging_core::{
    Cadence, Cancel, Capabilities, Deploy, DeployKinds, DeployRequest, DeployStatus, DeployTarget,
    EnvVars, Error, Identity, LiveState, LogLine, LogQuery, Logs, Next, Pacing, Provider,
    ReadBudget, Result, Rollback, ServiceHandle, WriteTarget, async_trait, poll_until,
};
use url::Url;

use crate::client::{Client, DEFAULT_API_URL};
use crate::context::DeployContext;
use crate::error::PROVIDER;
use crate::limit::RateLimits;
use crate::models::{Build, DeployJson, Site};

/// How many sites or deploys one page asks for.
const PER_PAGE: u32 = 100;
/// Deploys of one context read for the live state and for a rollback target.
const RECENT_DEPLOYS: u32 = 20;

/// Which site a service is: by id (stable) or by name (looked up, page by page).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SiteRef {
    /// The site's API id (`site_id`).
    Id(String),
    /// The site's name (`my-site` of `my-site.netlify.app`).
    Name(String),
}

/// Where one service of the spec lives on Netlify in one environment.
#[derive(Clone)]
pub struct SiteTarget {
    /// The site.
    pub site: SiteRef,
    /// The deploy context the environment maps to.
    pub context: DeployContext,
    /// The account (team) whose env API holds the site's variables; the site's own
    /// `account_id` when not given.
    pub account_id: Option<String>,
    /// A build hook (its URL or id) to trigger deploys with instead of the builds API.
    /// Anyone holding it can trigger builds, so it is kept as a secret.
    pub build_hook: Option<SecretString>,
    /// The URL probes use, when the context's derived URL is not the one to check.
    pub url: Option<Url>,
}

impl fmt::Debug for SiteTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SiteTarget")
            .field("site", &self.site)
            .field("context", &self.context)
            .field("account_id", &self.account_id)
            .field(
                "build_hook",
                &self.build_hook.as_ref().map(|_| "[REDACTED]"),
            )
            .field("url", &self.url.as_ref().map(Url::as_str))
            .finish()
    }
}

impl SiteTarget {
    /// A site by id in a context, with no account, hook or URL override.
    pub fn new(site: SiteRef, context: DeployContext) -> Self {
        SiteTarget {
            site,
            context,
            account_id: None,
            build_hook: None,
            url: None,
        }
    }
}

/// Builds a [`NetlifyProvider`]; reads `NETLIFY_AUTH_TOKEN` and `NETLIFY_API_URL` in
/// [`NetlifyBuilder::from_env`], and fails in [`NetlifyBuilder::build`] when no token is set.
#[derive(Default)]
pub struct NetlifyBuilder {
    token: Option<SecretString>,
    base_url: Option<String>,
    environment: Option<String>,
    sites: BTreeMap<String, SiteTarget>,
    poll_interval: Option<Duration>,
    rate_limits: Option<RateLimits>,
    request_timeout: Option<Duration>,
    hook_wait: Option<Duration>,
    secret_names: std::collections::BTreeSet<String>,
}

impl fmt::Debug for NetlifyBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NetlifyBuilder")
            .field("token", &self.token.as_ref().map(|_| "[REDACTED]"))
            .field("base_url", &self.base_url)
            .field("environment", &self.environment)
            .field("sites", &self.sites)
            .finish_non_exhaustive()
    }
}

impl NetlifyBuilder {
    /// An empty builder.
    pub fn new() -> Self {
        Self::default()
    }

    /// A builder with the token from `NETLIFY_AUTH_TOKEN` and the base URL from
    /// `NETLIFY_API_URL` (tests point it at Prism), when set.
    pub fn from_env() -> Self {
        let mut b = Self::new();
        if let Ok(token) = std::env::var("NETLIFY_AUTH_TOKEN") {
            b.token = Some(SecretString::from(token));
        }
        if let Ok(url) = std::env::var("NETLIFY_API_URL") {
            b.base_url = Some(url);
        }
        b
    }

    /// The personal access token.
    pub fn with_token(mut self, token: SecretString) -> Self {
        self.token = Some(token);
        self
    }

    /// The API base URL (default `https://api.netlify.com/api/v1`).
    pub fn with_base_url(mut self, url: impl Into<String>) -> Self {
        self.base_url = Some(url.into());
        self
    }

    /// The spec's environment this provider serves (`locate` refuses others).
    pub fn with_environment(mut self, environment: impl Into<String>) -> Self {
        self.environment = Some(environment.into());
        self
    }

    /// Where the spec's service `service` lives.
    pub fn with_site(mut self, service: impl Into<String>, target: SiteTarget) -> Self {
        self.sites.insert(service.into(), target);
        self
    }

    /// The shortest interval between two polls of one deploy (default 2 s); the read
    /// budget (a quarter of the request limit of [`NetlifyBuilder::with_rate_limits`]) makes
    /// it longer when many sites are waited on at once.
    pub fn with_poll_interval(mut self, interval: Duration) -> Self {
        self.poll_interval = Some(interval);
        self
    }

    /// Client-side rate limits (default: Netlify's 500 requests and 3 deploys a minute).
    pub fn with_rate_limits(mut self, limits: RateLimits) -> Self {
        self.rate_limits = Some(limits);
        self
    }

    /// The bound on one HTTP request (default 30 s).
    pub fn with_request_timeout(mut self, timeout: Duration) -> Self {
        self.request_timeout = Some(timeout);
        self
    }

    /// How long to look for the deploy a build hook started (default 60 s): a hook answers
    /// without saying which deploy it started.
    pub fn with_hook_wait(mut self, wait: Duration) -> Self {
        self.hook_wait = Some(wait);
        self
    }

    /// The variables whose values are secrets (the spec's `secret = true`): created on
    /// Netlify with `is_secret`, so the UI and the API never show their values, in the
    /// scopes secret values may have (builds, functions, runtime).
    pub fn with_secret_names(mut self, names: impl IntoIterator<Item = String>) -> Self {
        self.secret_names.extend(names);
        self
    }

    /// The provider; fails when no token is set or the base URL is not an http(s) URL.
    pub fn build(self) -> Result<NetlifyProvider> {
        let token = self
            .token
            .filter(|t| !t.expose_secret().trim().is_empty())
            .ok_or_else(|| Error::Unauthenticated {
                provider: PROVIDER.into(),
                message: "no token: set NETLIFY_AUTH_TOKEN to a Netlify personal access token"
                    .into(),
            })?;
        let raw = self.base_url.unwrap_or_else(|| DEFAULT_API_URL.to_owned());
        let base = Url::parse(&raw)
            .ok()
            .filter(|u| matches!(u.scheme(), "http" | "https") && u.host().is_some())
            .ok_or_else(|| {
                Error::config(format!("NETLIFY_API_URL `{raw}` is not an http(s) URL"))
            })?;
        let limits = self.rate_limits.unwrap_or_default();
        let read_budget = ReadBudget {
            reads: limits.requests,
            per: limits.window,
            reads_per_poll: 1,
            source: if limits == RateLimits::default() {
                "Netlify API: 500 requests a minute"
            } else {
                "Netlify API: the client-side request limit this provider was built with"
            },
        };
        let client = Client::new(
            base,
            token,
            limits,
            self.request_timeout.unwrap_or(Duration::from_secs(30)),
        )?;
        Ok(NetlifyProvider {
            client,
            environment: self.environment,
            sites: self.sites,
            poll_interval: self.poll_interval.unwrap_or(Duration::from_secs(2)),
            read_budget,
            hook_wait: self.hook_wait.unwrap_or(Duration::from_secs(60)),
            located: Mutex::new(HashMap::new()),
            expected: Mutex::new(HashMap::new()),
            secret_names: self.secret_names,
        })
    }
}

/// The Netlify provider: one site per service, one deploy context per environment.
#[derive(Debug)]
pub struct NetlifyProvider {
    pub(crate) client: Client,
    environment: Option<String>,
    sites: BTreeMap<String, SiteTarget>,
    poll_interval: Duration,
    read_budget: ReadBudget,
    hook_wait: Duration,
    /// Sites found by `locate`, by id: name, account and URLs are needed on most calls.
    located: Mutex<HashMap<String, Site>>,
    /// The commit each deploy this provider started was asked to build, by deploy id.
    expected: Mutex<HashMap<String, String>>,
    /// Variables created with `is_secret`.
    pub(crate) secret_names: std::collections::BTreeSet<String>,
}

/// Netlify's deploy states, in the toolkit's words. The description types `state` as a free
/// string (no enum), so unknown words are taken as still on their way.
pub(crate) fn status_of(state: &str) -> DeployStatus {
    match state {
        "new" | "pending_review" | "accepted" | "enqueued" => DeployStatus::Queued,
        "ready" => DeployStatus::Live,
        "error" => DeployStatus::Failed,
        "rejected" | "canceled" | "cancelled" => DeployStatus::Canceled,
        // building, uploading, uploaded, preparing, prepared, processing, processed,
        // retrying, and anything newer: still on its way.
        _ => DeployStatus::InProgress,
    }
}

/// Whether an `error` deploy was canceled rather than failed. Netlify keeps a canceled build
/// as state `error` with `error_message` "Canceled build" (a cancel from the UI, from
/// `cancelSiteDeploy`, or from a build plugin's `cancelBuild`); a build a plugin failed can
/// carry the same message, and says so with `plugin_state = "failed_build"`.
fn canceled_not_failed(d: &DeployJson) -> bool {
    d.plugin_state.as_deref() != Some("failed_build")
        && d.error_message
            .as_deref()
            .is_some_and(|m| m.to_ascii_lowercase().contains("cancel"))
}

/// The lines of one deploy's record, oldest first.
fn deploy_log(d: &DeployJson) -> Vec<LogLine> {
    let line = |at: &Option<String>, text: String| LogLine {
        at: at.clone().filter(|t| !t.is_empty()),
        text,
    };
    let short = |c: &str| c.chars().take(12).collect::<String>();
    let mut out = vec![line(
        &d.created_at,
        format!(
            "deploy {} created: {} {}{}",
            d.id,
            d.context.as_deref().unwrap_or("unknown context"),
            d.branch.as_deref().unwrap_or("-"),
            d.commit_ref
                .as_deref()
                .map(|c| format!("@{}", short(c)))
                .unwrap_or_default(),
        ) + &d
            .title
            .as_deref()
            .map(|t| format!(" ({t})"))
            .unwrap_or_default(),
    )];
    let state = d.state.as_deref().unwrap_or("unknown");
    out.push(line(&d.updated_at, format!("deploy {} is {state}", d.id)));
    if let Some(m) = d.error_message.as_deref().filter(|m| !m.is_empty()) {
        out.push(line(&d.updated_at, format!("deploy {}: {m}", d.id)));
    }
    if d.published_at.as_deref().is_some_and(|p| !p.is_empty()) {
        out.push(line(&d.published_at, format!("deploy {} published", d.id)));
    }
    if d.locked == Some(true) {
        out.push(line(
            &d.updated_at,
            format!("deploy {}: auto publishing is locked on it", d.id),
        ));
    }
    out
}

fn to_deploy(d: &DeployJson) -> Deploy {
    let raw = d.state.clone().unwrap_or_else(|| "unknown".into());
    let errored = status_of(&raw) == DeployStatus::Failed;
    let mut status = status_of(&raw);
    if d.skipped == Some(true) || (errored && canceled_not_failed(d)) {
        status = DeployStatus::Canceled;
    }
    // An `error` deploy, failed or canceled, is told apart by its message: keep it.
    let raw_status = match &d.error_message {
        Some(m) if errored && !m.is_empty() => format!("{raw}: {m}"),
        _ => raw,
    };
    Deploy {
        id: d.id.clone(),
        status,
        commit: d.commit_ref.clone().filter(|c| !c.is_empty()),
        image: None,
        raw_status,
    }
}

/// The answer to a cancel Netlify accepted (`201`, "Cancelled" in the description): the
/// deploy will not go live, even when the answer still shows the state it was stopped in
/// (the build is torn down after the answer). Only an answer that shows the deploy finished
/// another way (`ready`, or failed with a message of its own) is reported as that.
fn canceled_deploy(d: &DeployJson) -> Deploy {
    let mut deploy = to_deploy(d);
    if matches!(
        deploy.status,
        DeployStatus::Queued | DeployStatus::InProgress
    ) {
        deploy.status = DeployStatus::Canceled;
        deploy.raw_status = format!("{} (cancel accepted)", deploy.raw_status);
    }
    deploy
}

/// The host label Netlify gives a branch: lower case, anything but `[a-z0-9-]` as `-`.
fn branch_label(branch: &str) -> String {
    branch
        .to_ascii_lowercase()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c
            } else {
                '-'
            }
        })
        .collect()
}

impl NetlifyProvider {
    pub(crate) fn target(&self, service: &str) -> Result<&SiteTarget> {
        self.sites.get(service).ok_or_else(|| {
            Error::not_found(format!(
                "service `{service}` has no Netlify site in this environment (configured: {})",
                self.sites.keys().cloned().collect::<Vec<_>>().join(", ")
            ))
        })
    }

    /// The deploy context a service is deployed in.
    pub fn context_of(&self, service: &ServiceHandle) -> Result<&DeployContext> {
        Ok(&self.target(&service.name)?.context)
    }

    pub(crate) async fn get_site(&self, site_id: &str) -> Result<Site> {
        let site: Site = self
            .client
            .json(
                "getSite",
                self.client
                    .request(Method::GET, self.client.endpoint(&["sites", site_id])),
            )
            .await?;
        self.located
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(site.id.clone(), site.clone());
        Ok(site)
    }

    /// The site as last seen, fetched when this provider has not seen it yet.
    pub(crate) async fn site(&self, site_id: &str) -> Result<Site> {
        let cached = self
            .located
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(site_id)
            .cloned();
        match cached {
            Some(s) => Ok(s),
            None => self.get_site(site_id).await,
        }
    }

    /// Find a site by name: `listSites` with `name` matches substrings, so page through the
    /// answers until an exact match or a short page.
    pub(crate) async fn find_site_by_name(&self, name: &str) -> Result<Site> {
        for page in 1u32.. {
            let req = self
                .client
                .request(Method::GET, self.client.endpoint(&["sites"]))
                .query(&[
                    ("name", name.to_owned()),
                    ("filter", "all".to_owned()),
                    ("page", page.to_string()),
                    ("per_page", PER_PAGE.to_string()),
                ]);
            let sites: Vec<Site> = self.client.json("listSites", req).await?;
            let count = sites.len();
            if let Some(site) = sites.into_iter().find(|s| s.name.as_deref() == Some(name)) {
                self.located
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .insert(site.id.clone(), site.clone());
                return Ok(site);
            }
            if count < PER_PAGE as usize {
                break;
            }
        }
        Err(Error::not_found(format!(
            "Netlify site named `{name}` (is the token's account a member of its team?)"
        )))
    }

    async fn list_deploys(
        &self,
        site_id: &str,
        context: &DeployContext,
        per_page: u32,
    ) -> Result<Vec<DeployJson>> {
        let mut query = context.deploy_filter();
        query.push(("page", "1".into()));
        query.push(("per_page", per_page.to_string()));
        let req = self
            .client
            .request(
                Method::GET,
                self.client.endpoint(&["sites", site_id, "deploys"]),
            )
            .query(&query);
        self.client.json("listSiteDeploys", req).await
    }

    fn remember_expected(&self, deploy_id: &str, commit: &str) {
        self.expected
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(deploy_id.to_owned(), commit.to_owned());
    }

    fn expected_commit(&self, deploy_id: &str) -> Option<String> {
        self.expected
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(deploy_id)
            .cloned()
    }

    /// The URL a context serves at: the site's for production, the branch subdomain for a
    /// branch, the deploy's own for a preview; the `url` setting wins.
    fn url_for(&self, target: &SiteTarget, site: &Site, live: Option<&DeployJson>) -> Option<Url> {
        if let Some(u) = &target.url {
            return Some(u.clone());
        }
        let parse = |s: &str| Url::parse(s).ok();
        match &target.context {
            DeployContext::Production => site
                .ssl_url
                .as_deref()
                .and_then(parse)
                .or_else(|| site.url.as_deref().and_then(parse)),
            DeployContext::DeployPreview => live
                .and_then(|d| d.deploy_ssl_url.as_deref())
                .and_then(parse),
            DeployContext::BranchDeploy { branch } | DeployContext::Branch(branch) => {
                let label = branch_label(branch);
                match site
                    .branch_deploy_custom_domain
                    .as_deref()
                    .filter(|d| !d.is_empty())
                {
                    Some(domain) => parse(&format!("https://{label}.{domain}")),
                    None => site
                        .name
                        .as_deref()
                        .and_then(|n| parse(&format!("https://{label}--{n}.netlify.app"))),
                }
            }
        }
    }

    /// Start a build of the context's branch through the builds API.
    async fn trigger_build(
        &self,
        site_id: &str,
        branch: Option<&str>,
        commit: &str,
        clear_cache: bool,
    ) -> Result<String> {
        let mut query = vec![("title", format!("staging: deploy {commit}"))];
        if let Some(b) = branch {
            query.push(("branch", b.to_owned()));
        }
        if clear_cache {
            query.push(("clear_cache", "true".to_owned()));
        }
        let req = self
            .client
            .request(
                Method::POST,
                self.client.endpoint(&["sites", site_id, "builds"]),
            )
            .query(&query);
        let build: Build = self.client.json("createSiteBuild", req).await?;
        build.deploy_id.filter(|d| !d.is_empty()).ok_or_else(|| {
            Error::failed(format!(
                "Netlify started build {} but named no deploy for it",
                build.id.unwrap_or_default()
            ))
        })
    }

    /// Start a build through a build hook, then find the deploy it started: the hook's answer
    /// does not name it, so look for a deploy of the context that was not there before.
    async fn trigger_hook(
        &self,
        site_id: &str,
        target: &SiteTarget,
        hook: &SecretString,
        commit: &str,
        clear_cache: bool,
    ) -> Result<String> {
        let before: BTreeSet<String> = self
            .list_deploys(site_id, &target.context, RECENT_DEPLOYS)
            .await?
            .into_iter()
            .map(|d| d.id)
            .collect();
        let hook = hook.expose_secret();
        let url = if hook.starts_with("http://") || hook.starts_with("https://") {
            Url::parse(hook).map_err(|_| Error::config("the build hook is not a valid URL"))?
        } else {
            self.client.build_hook_endpoint(hook)
        };
        let mut query = vec![("trigger_title", format!("staging: deploy {commit}"))];
        if clear_cache {
            query.push(("clear_cache", "true".to_owned()));
        }
        self.client
            .empty(
                "build hook",
                self.client.anonymous(Method::POST, url).query(&query),
            )
            .await?;

        // The hook answers without naming the deploy it started: look for a new one, at the
        // cadence of the read budget.
        poll_until(
            &Cadence::for_provider(self),
            self.hook_wait,
            || format!("the deploy started by the build hook of site {site_id} to appear"),
            || self.list_deploys(site_id, &target.context, RECENT_DEPLOYS),
            |now, _| {
                Ok(match now.into_iter().find(|d| !before.contains(&d.id)) {
                    Some(new) => Next::Done(new.id),
                    None => Next::Again("no new deploy yet".to_owned()),
                })
            },
        )
        .await
    }

    /// The deploy published at the site's URL (production), fetched fresh.
    async fn published(&self, site_id: &str) -> Result<DeployJson> {
        self.get_site(site_id)
            .await?
            .published_deploy
            .filter(|d| !d.id.is_empty())
            .ok_or_else(|| Error::not_found(format!("a published deploy of site {site_id}")))
    }

    /// Publish `deploy_id` again (`restoreSiteDeploy`). The lock is kept as it was: when
    /// auto publishing was locked on the deploy published before (`current`), the restored
    /// deploy is locked too, so a freeze survives the rollback; an unlocked site stays
    /// unlocked, so the next production deploy publishes as usual.
    async fn restore(
        &self,
        service: &WriteTarget,
        current: &DeployJson,
        deploy_id: &str,
    ) -> Result<Deploy> {
        let d: DeployJson = self
            .client
            .json(
                "restoreSiteDeploy",
                self.client.request(
                    Method::POST,
                    self.client
                        .endpoint(&["sites", &service.id, "deploys", deploy_id, "restore"]),
                ),
            )
            .await?;
        tracing::info!(site = %service.id, deploy = %d.id, "netlify deploy restored");
        if current.locked == Some(true) && d.locked != Some(true) && current.id != d.id {
            let locked: DeployJson = self
                .client
                .json(
                    "lockDeploy",
                    self.client.request(
                        Method::POST,
                        self.client.endpoint(&["deploys", &d.id, "lock"]),
                    ),
                )
                .await?;
            return Ok(to_deploy(&locked));
        }
        Ok(to_deploy(&d))
    }

    /// Lock the published deploy: Netlify stops auto-publishing new production deploys until
    /// it is unlocked (a freeze, or keeping a restored deploy live).
    pub async fn lock_published_deploy(&self, service: &WriteTarget) -> Result<Deploy> {
        self.production_only(service, "lock the published deploy")?;
        let published = self.published(&service.id).await?;
        let d: DeployJson = self
            .client
            .json(
                "lockDeploy",
                self.client.request(
                    Method::POST,
                    self.client.endpoint(&["deploys", &published.id, "lock"]),
                ),
            )
            .await?;
        Ok(to_deploy(&d))
    }

    /// Unlock the published deploy: new production deploys are published again.
    pub async fn unlock_published_deploy(&self, service: &WriteTarget) -> Result<Deploy> {
        self.production_only(service, "unlock the published deploy")?;
        let published = self.published(&service.id).await?;
        let d: DeployJson = self
            .client
            .json(
                "unlockDeploy",
                self.client.request(
                    Method::POST,
                    self.client.endpoint(&["deploys", &published.id, "unlock"]),
                ),
            )
            .await?;
        Ok(to_deploy(&d))
    }

    fn production_only(&self, service: &ServiceHandle, operation: &str) -> Result<()> {
        match self.context_of(service)? {
            DeployContext::Production => Ok(()),
            other => Err(Error::not_supported(
                PROVIDER,
                format!(
                    "{operation} in the {other} context (only production deploys are published)"
                ),
            )),
        }
    }
}

#[async_trait]
impl Provider for NetlifyProvider {
    fn name(&self) -> &str {
        PROVIDER
    }

    fn pacing(&self) -> Pacing {
        Pacing {
            poll_interval: self.poll_interval,
            read_budget: self.read_budget,
            ..Pacing::default()
        }
    }

    /// Rollback is offered when every site deploys to production (Netlify restores a
    /// production deploy; a branch or preview deploy has nothing to restore).
    fn capabilities(&self) -> Capabilities<'_> {
        let production = !self.sites.is_empty()
            && self
                .sites
                .values()
                .all(|t| t.context == DeployContext::Production);
        Capabilities {
            env: Some(self),
            rollback: production.then_some(self as &dyn Rollback),
            logs: Some(self),
            cancel: Some(self),
            ..Capabilities::none()
        }
    }

    /// Commits, except to a site whose context is deploy previews.
    fn deploy_kinds(&self, service: &str) -> DeployKinds {
        match self.sites.get(service) {
            Some(t) if t.context != DeployContext::DeployPreview => DeployKinds::COMMIT,
            _ => DeployKinds::default(),
        }
    }

    async fn locate(&self, environment: &str, service: &str) -> Result<ServiceHandle> {
        if let Some(own) = &self.environment
            && own != environment
        {
            return Err(Error::config(format!(
                "this Netlify provider was built for environment `{own}`, not `{environment}`"
            )));
        }
        let target = self.target(service)?;
        let site = match &target.site {
            SiteRef::Id(id) => self.get_site(id).await?,
            SiteRef::Name(name) => self.find_site_by_name(name).await?,
        };
        // One site, several environments: deploys and variable values are per deploy
        // context, so the write target is the site's context. Site names are global.
        let identity = Identity::new(
            "netlify site context",
            [
                ("site", site.id.clone()),
                ("context", target.context.to_string()),
            ],
        );
        let identity = match &site.name {
            Some(n) => identity.named(Some("netlify".to_owned()), n.clone()),
            None => identity,
        };
        Ok(ServiceHandle {
            name: service.to_owned(),
            environment: environment.to_owned(),
            id: site.id,
            identity,
        })
    }

    async fn live_state(&self, service: &ServiceHandle) -> Result<LiveState> {
        let target = self.target(&service.name)?;
        let deploys = self
            .list_deploys(&service.id, &target.context, RECENT_DEPLOYS)
            .await?;
        let (site, live) = match target.context {
            DeployContext::Production => {
                let site = self.get_site(&service.id).await?;
                let live = site.published_deploy.clone().filter(|d| !d.id.is_empty());
                (site, live)
            }
            _ => (
                self.site(&service.id).await?,
                deploys
                    .iter()
                    .find(|d| d.state.as_deref() == Some("ready"))
                    .cloned(),
            ),
        };
        let url = self.url_for(target, &site, live.as_ref());
        Ok(LiveState {
            latest: deploys.first().map(to_deploy),
            live: live.as_ref().map(to_deploy),
            url,
        })
    }

    async fn deploy(&self, service: &WriteTarget, request: &DeployRequest) -> Result<Deploy> {
        let target = self.target(&service.name)?;
        let DeployTarget::Commit(commit) = &request.target else {
            return Err(Error::not_supported(
                PROVIDER,
                "deploy an image (Netlify builds from the site's repository)",
            ));
        };
        if target.context == DeployContext::DeployPreview {
            return Err(Error::not_supported(
                PROVIDER,
                "deploy to the deploy-preview context (previews are built from pull requests)",
            ));
        }
        self.client.deploy_slot().await;
        let id = match &target.build_hook {
            Some(hook) => {
                self.trigger_hook(&service.id, target, hook, commit, request.clear_cache)
                    .await?
            }
            None => {
                self.trigger_build(
                    &service.id,
                    target.context.build_branch(),
                    commit,
                    request.clear_cache,
                )
                .await?
            }
        };
        self.remember_expected(&id, request.commit.as_deref().unwrap_or(commit));
        tracing::info!(site = %service.id, deploy = %id, context = %target.context, "netlify build started");
        Ok(Deploy {
            id,
            status: DeployStatus::Queued,
            commit: None,
            image: None,
            raw_status: "new".into(),
        })
    }

    async fn deploy_status(&self, service: &ServiceHandle, deploy_id: &str) -> Result<Deploy> {
        let target = self.target(&service.name)?;
        let d: DeployJson = self
            .client
            .json(
                "getSiteDeploy",
                self.client.request(
                    Method::GET,
                    self.client
                        .endpoint(&["sites", &service.id, "deploys", deploy_id]),
                ),
            )
            .await?;
        let mut deploy = to_deploy(&d);
        if deploy.status != DeployStatus::Live {
            return Ok(deploy);
        }
        // Ready is not yet live when it built another commit than the one asked for (the
        // branch head moved, or was never pushed), or when production did not publish it.
        if let (Some(want), Some(got)) = (self.expected_commit(deploy_id), deploy.commit.clone())
            && !commits_match(&want, &got)
        {
            let branch = target
                .context
                .build_branch()
                .unwrap_or("the production branch");
            deploy.status = DeployStatus::Failed;
            deploy.raw_status = format!(
                "ready, but it built commit {got}, not {want}: push {want} to {branch} first"
            );
            return Ok(deploy);
        }
        if target.context == DeployContext::Production {
            let published = self.published(&service.id).await?;
            if published.id != deploy.id {
                if published.locked == Some(true) {
                    deploy.status = DeployStatus::Failed;
                    deploy.raw_status = format!(
                        "ready, but not published: auto publishing is locked on deploy {} (unlock it)",
                        published.id
                    );
                } else {
                    deploy.status = DeployStatus::Superseded;
                    deploy.raw_status = format!("ready, but deploy {} is published", published.id);
                }
            }
        }
        Ok(deploy)
    }
}

#[async_trait]
impl Rollback for NetlifyProvider {
    async fn rollback(&self, service: &WriteTarget) -> Result<Deploy> {
        self.production_only(service, "rollback")?;
        let target = self.target(&service.name)?;
        let current = self.published(&service.id).await?;
        let deploys = self
            .list_deploys(&service.id, &target.context, RECENT_DEPLOYS)
            .await?;
        let position = deploys.iter().position(|d| d.id == current.id);
        let previous = deploys
            .iter()
            .skip(position.map_or(0, |p| p + 1))
            .find(|d| {
                d.id != current.id
                    && d.state.as_deref() == Some("ready")
                    && !matches!((&d.commit_ref, &current.commit_ref), (Some(a), Some(b)) if commits_match(a, b))
            })
            .ok_or_else(|| Error::not_found(format!("an earlier ready production deploy of site {} to restore", service.id)))?;
        self.restore(service, &current, &previous.id).await
    }

    /// `restoreSiteDeploy` of the named production deploy (see `NetlifyProvider::restore`).
    async fn rollback_to(&self, service: &WriteTarget, deploy_id: &str) -> Result<Deploy> {
        self.production_only(service, "rollback")?;
        let current = self.published(&service.id).await?;
        self.restore(service, &current, deploy_id).await
    }
}

#[async_trait]
impl EnvVars for NetlifyProvider {
    async fn env_vars(&self, service: &ServiceHandle) -> Result<BTreeMap<String, SecretString>> {
        self.read_env(service).await
    }

    async fn set_env_var(
        &self,
        service: &WriteTarget,
        key: &str,
        value: &SecretString,
    ) -> Result<()> {
        self.write_env(service, key, value).await
    }

    async fn delete_env_var(&self, service: &WriteTarget, key: &str) -> Result<()> {
        self.remove_env(service, key).await
    }

    /// A key the read did not return is absent unless Netlify holds it as a secret (whose
    /// value it never returns) or with a value for this context: then it is unreadable, and
    /// a restore leaves it rather than delete production's secret.
    async fn snapshot_env(
        &self,
        service: &ServiceHandle,
        current: &BTreeMap<String, SecretString>,
        keys: &[String],
    ) -> Result<staging_core::EnvSnapshot> {
        let mut snapshot = staging_core::EnvSnapshot::from_read(service, current, keys, false);
        let context = self.context_of(service)?.clone();
        let mut account = None;
        for (key, before) in snapshot.vars.iter_mut() {
            if !matches!(before, staging_core::VarBefore::Unreadable) {
                continue;
            }
            let account = match &account {
                Some(a) => a,
                None => account.insert(self.account_of(service).await?),
            };
            let exists = match self.env_var(service, account, key).await? {
                None => false,
                Some(var) => var.is_secret || context.resolve(&var.values).is_some(),
            };
            if !exists {
                *before = staging_core::VarBefore::Absent;
            }
        }
        Ok(snapshot)
    }
}

#[async_trait]
impl Logs for NetlifyProvider {
    async fn recent_logs(
        &self,
        service: &ServiceHandle,
        deploy_id: Option<&str>,
        lines: usize,
    ) -> Result<Vec<String>> {
        staging_core::recent_logs_from_logs(self, service, deploy_id, lines).await
    }

    /// The deploy log as Netlify's REST API has it: each deploy's record (created, its
    /// state and error, published, locked) of the named deploy, or of the context's recent
    /// deploys. The build's own output is streamed outside the REST API and is not here.
    async fn logs(&self, service: &ServiceHandle, query: &LogQuery) -> Result<Vec<LogLine>> {
        let target = self.target(&service.name)?;
        let deploys = match &query.deploy_id {
            Some(id) => vec![
                self.client
                    .json::<DeployJson>(
                        "getSiteDeploy",
                        self.client.request(
                            Method::GET,
                            self.client.endpoint(&["sites", &service.id, "deploys", id]),
                        ),
                    )
                    .await?,
            ],
            None => {
                self.list_deploys(&service.id, &target.context, RECENT_DEPLOYS)
                    .await?
            }
        };
        let since = query.since;
        let mut out: Vec<LogLine> = deploys.iter().rev().flat_map(deploy_log).collect();
        out.retain(|l| match (since, l.at.as_deref()) {
            (Some(since), Some(at)) => humantime::parse_rfc3339_weak(at).is_ok_and(|t| t >= since),
            (Some(_), None) => false,
            (None, _) => true,
        });
        let skip = out.len().saturating_sub(query.lines);
        Ok(out.split_off(skip))
    }
}

#[async_trait]
impl Cancel for NetlifyProvider {
    /// `cancelSiteDeploy`. When Netlify refuses (the deploy finished first: ready, failed, or
    /// canceled already), the deploy's own state is the answer, so a cancel that arrives a
    /// moment too late reports the deploy live rather than an error; a refusal of a deploy
    /// still on its way stays an error ([`Error::Conflict`]).
    async fn cancel_deploy(&self, service: &WriteTarget, deploy_id: &str) -> Result<Deploy> {
        self.target(&service.name)?;
        let req = self.client.request(
            Method::POST,
            self.client.endpoint(&["deploys", deploy_id, "cancel"]),
        );
        let refused = match self
            .client
            .json::<DeployJson>("cancelSiteDeploy", req)
            .await
        {
            Ok(d) => {
                tracing::info!(site = %service.id, deploy = %d.id, state = ?d.state, "netlify deploy canceled");
                return Ok(canceled_deploy(&d));
            }
            Err(
                e @ (Error::Conflict { .. }
                | Error::ConfigInvalid { .. }
                | Error::Provider {
                    retryable: false, ..
                }),
            ) => e,
            Err(e) => return Err(e),
        };
        match self.deploy_status(service, deploy_id).await {
            Ok(now) if now.status.is_terminal() => Ok(now),
            _ => Err(match refused {
                // A 422 is not a problem of the spec here: the deploy is in a state Netlify
                // will not cancel.
                Error::ConfigInvalid { message, .. } => Error::Conflict { message },
                other => other,
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn netlify_states_map_to_deploy_statuses() {
        let cases = [
            ("new", DeployStatus::Queued),
            ("enqueued", DeployStatus::Queued),
            ("building", DeployStatus::InProgress),
            ("uploading", DeployStatus::InProgress),
            ("processing", DeployStatus::InProgress),
            ("retrying", DeployStatus::InProgress),
            ("ready", DeployStatus::Live),
            ("error", DeployStatus::Failed),
            ("rejected", DeployStatus::Canceled),
            ("canceled", DeployStatus::Canceled),
            ("cancelled", DeployStatus::Canceled),
        ];
        for (state, want) in cases {
            assert_eq!(status_of(state), want, "{state}");
        }
    }

    fn deploy(state: &str, error_message: &str, plugin_state: Option<&str>) -> DeployJson {
        DeployJson {
            id: "d1".into(),
            state: Some(state.into()),
            error_message: Some(error_message.into()),
            plugin_state: plugin_state.map(str::to_owned),
            ..DeployJson::default()
        }
    }

    #[test]
    fn an_error_deploy_is_canceled_when_its_message_says_so_and_failed_otherwise() {
        #[rustfmt::skip]
        let cases = [
            (deploy("error", "Canceled build", None),                      DeployStatus::Canceled, "error: Canceled build"),
            (deploy("error", "Build was cancelled by a user", None),       DeployStatus::Canceled, "error: Build was cancelled by a user"),
            (deploy("error", "Canceled build", Some("failed_build")),      DeployStatus::Failed,   "error: Canceled build"),
            (deploy("error", "Build script returned non-zero exit code: 2", None), DeployStatus::Failed, "error: Build script returned non-zero exit code: 2"),
            (deploy("error", "", None),                                    DeployStatus::Failed,   "error"),
            (deploy("canceled", "", None),                                 DeployStatus::Canceled, "canceled"),
        ];
        for (d, status, raw) in cases {
            let got = to_deploy(&d);
            assert_eq!(
                (got.status, got.raw_status.as_str()),
                (status, raw),
                "{d:?}"
            );
        }
    }

    #[test]
    fn an_accepted_cancel_is_canceled_unless_the_answer_shows_another_end() {
        #[rustfmt::skip]
        let cases = [
            (deploy("error", "Canceled build", None),  DeployStatus::Canceled, "error: Canceled build"),
            (deploy("building", "", None),             DeployStatus::Canceled, "building (cancel accepted)"),
            (deploy("new", "", None),                  DeployStatus::Canceled, "new (cancel accepted)"),
            (deploy("ready", "", None),                DeployStatus::Live,     "ready"),
            (deploy("error", "Build script returned non-zero exit code: 2", None), DeployStatus::Failed, "error: Build script returned non-zero exit code: 2"),
        ];
        for (d, status, raw) in cases {
            let got = canceled_deploy(&d);
            assert_eq!(
                (got.status, got.raw_status.as_str()),
                (status, raw),
                "{d:?}"
            );
        }
    }

    #[test]
    fn only_the_same_sha_matches_never_a_prefix() {
        assert!(commits_match("abc1234def", "ABC1234DEF"));
        assert!(!commits_match("abc1234", "ABC1234def"));
        assert!(!commits_match("abc1234", "abd1234"));
        assert!(!commits_match("", "abc"));
    }

    #[test]
    fn branch_urls_follow_netlifys_subdomain_rules() {
        assert_eq!(branch_label("feature/Login_2"), "feature-login-2");
    }

    #[test]
    fn building_without_a_token_fails_in_build() {
        let err = NetlifyBuilder::new().build().unwrap_err();
        assert!(matches!(err, Error::Unauthenticated { .. }), "{err:?}");
        assert!(err.to_string().contains("NETLIFY_AUTH_TOKEN"));
        let err = NetlifyBuilder::new()
            .with_token("t".to_owned().into())
            .with_base_url("ftp://x")
            .build()
            .unwrap_err();
        assert!(matches!(err, Error::ConfigInvalid { .. }), "{err:?}");
    }

    #[test]
    fn debug_output_redacts_token_and_build_hook() {
        let mut target = SiteTarget::new(SiteRef::Name("s".into()), DeployContext::Production);
        target.build_hook = Some("hook-canary-77".to_owned().into());
        let b = NetlifyBuilder::new()
            .with_token("tok-canary-55".to_owned().into())
            .with_site("web", target);
        let shown = format!("{b:?}");
        assert!(
            !shown.contains("hook-canary-77") && !shown.contains("tok-canary-55"),
            "{shown}"
        );
        let p = b.build().unwrap();
        let shown = format!("{p:?}");
        assert!(
            !shown.contains("hook-canary-77") && !shown.contains("tok-canary-55"),
            "{shown}"
        );
    }
}
