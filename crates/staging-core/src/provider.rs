//! The [`Provider`] trait: where a service runs and how it is deployed.

use std::collections::BTreeMap;
use std::fmt::{self, Debug};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use secrecy::SecretString;
use serde::Serialize;

use crate::boundary::{EnvironmentTarget, Identity, WriteTarget};
use crate::cadence::{Cadence, ReadBudget};
use crate::env_snapshot::{EnvRestore, EnvSnapshot};
use crate::error::{Error, Result};
use crate::retry::{Next, poll_until};

/// What a provider can do beyond the core of [`Provider`]: one entry per optional
/// capability trait, `Some` exactly when the provider implements that trait (it hands out
/// itself, `Some(self)`, which only compiles when it does). There are no flags that could
/// disagree with the code: a capability exists because an implementation exists.
///
/// Build it with struct-update syntax: `Capabilities { env: Some(self), ..Capabilities::none() }`.
#[derive(Clone, Copy, Default)]
pub struct Capabilities<'a> {
    /// Reads and writes the service's environment variables ([`EnvVars`]).
    pub env: Option<&'a dyn EnvVars>,
    /// Rolls back to an earlier deploy ([`Rollback`]).
    pub rollback: Option<&'a dyn Rollback>,
    /// Shows log lines ([`Logs`]).
    pub logs: Option<&'a dyn Logs>,
    /// Cancels a deploy that is not live yet ([`Cancel`]).
    pub cancel: Option<&'a dyn Cancel>,
    /// Creates what an environment needs before its first deploy ([`EnvironmentSetup`]).
    pub environment_setup: Option<&'a dyn EnvironmentSetup>,
}

impl<'a> Capabilities<'a> {
    /// No optional capability: the core of [`Provider`] only.
    pub fn none() -> Self {
        Capabilities::default()
    }

    /// What a decorator hands out: exactly the capabilities `inner` has (a capability the
    /// wrapped provider lacks is absent here too), each answered by `decorator`, which
    /// forwards it (logging, retrying reads).
    pub fn mirrored<D>(inner: Capabilities<'_>, decorator: &'a D) -> Capabilities<'a>
    where
        D: EnvVars + Rollback + Logs + Cancel + EnvironmentSetup,
    {
        Capabilities {
            env: inner.env.map(|_| decorator as &dyn EnvVars),
            rollback: inner.rollback.map(|_| decorator as &dyn Rollback),
            logs: inner.logs.map(|_| decorator as &dyn Logs),
            cancel: inner.cancel.map(|_| decorator as &dyn Cancel),
            environment_setup: inner
                .environment_setup
                .map(|_| decorator as &dyn EnvironmentSetup),
        }
    }

    /// Whether one capability is there.
    pub fn has(&self, capability: Capability) -> bool {
        match capability {
            Capability::Rollback => self.rollback.is_some(),
            Capability::ReadEnv | Capability::WriteEnv => self.env.is_some(),
            Capability::Logs => self.logs.is_some(),
            Capability::Cancel => self.cancel.is_some(),
            Capability::EnvironmentSetup => self.environment_setup.is_some(),
        }
    }

    /// Every capability with whether it is there, in [`Capability::ALL`] order (what reports
    /// and the conformance suite print).
    pub fn list(&self) -> Vec<(Capability, bool)> {
        Capability::ALL.iter().map(|c| (*c, self.has(*c))).collect()
    }
}

impl Debug for Capabilities<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut list = f.debug_list();
        for (capability, on) in self.list() {
            if on {
                list.entry(&capability.name());
            }
        }
        list.finish()
    }
}

/// One optional capability, for [`Capabilities::has`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Capability {
    /// See [`Capabilities::rollback`].
    Rollback,
    /// Reading variables: see [`Capabilities::env`].
    ReadEnv,
    /// Writing variables: see [`Capabilities::env`] (one trait reads and writes).
    WriteEnv,
    /// See [`Capabilities::logs`].
    Logs,
    /// See [`Capabilities::cancel`].
    Cancel,
    /// See [`Capabilities::environment_setup`].
    EnvironmentSetup,
}

impl Capability {
    /// Every capability, one per trait ([`Capability::WriteEnv`] is the same trait as
    /// [`Capability::ReadEnv`] and is not listed twice).
    pub const ALL: [Capability; 5] = [
        Capability::ReadEnv,
        Capability::Rollback,
        Capability::Logs,
        Capability::Cancel,
        Capability::EnvironmentSetup,
    ];

    /// Its short name in reports (`env`, `rollback`).
    pub fn name(self) -> &'static str {
        match self {
            Capability::Rollback => "rollback",
            Capability::ReadEnv | Capability::WriteEnv => "env",
            Capability::Logs => "logs",
            Capability::Cancel => "cancel",
            Capability::EnvironmentSetup => "environment_setup",
        }
    }
}

/// What a provider can deploy to one service: data, because it is a property of the service's
/// settings (ECS deploys a commit only to a service with an `image` template), not of code.
/// [`Provider::deploy`] answers [`Error::NotSupported`] for a kind this says no to, and the
/// conformance suite fails a provider whose deploy refuses a kind this says yes to.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct DeployKinds {
    /// Can deploy a source commit.
    pub commit: bool,
    /// Can deploy a prebuilt image.
    pub image: bool,
}

impl DeployKinds {
    /// Source commits only.
    pub const COMMIT: DeployKinds = DeployKinds {
        commit: true,
        image: false,
    };
    /// Prebuilt images only.
    pub const IMAGE: DeployKinds = DeployKinds {
        commit: false,
        image: true,
    };
    /// Commits and images.
    pub const BOTH: DeployKinds = DeployKinds {
        commit: true,
        image: true,
    };

    /// Whether `target` is of a kind this allows.
    pub fn allows(&self, target: &DeployTarget) -> bool {
        match target {
            DeployTarget::Commit(_) => self.commit,
            DeployTarget::Image(_) => self.image,
        }
    }
}

/// How often a provider's deploys are worth polling and what its platform allows: the
/// inputs of a wait's cadence ([`crate::cadence`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pacing {
    /// The shortest interval worth polling a deploy at: the cadence of a wait never polls
    /// faster, however much of the read budget is left. Default 2 s, so that "live" is
    /// noticed within about 2 s when the budget allows.
    pub poll_interval: Duration,
    /// The platform's documented limit on reads, which a wait's cadence uses at most a
    /// quarter of ([`crate::cadence::BUDGET_SHARE_PERCENT`]). The default is a conservative
    /// [`ReadBudget::UNDECLARED`] (60 a minute), which `-v` names as undeclared.
    pub read_budget: ReadBudget,
    /// Whether the services this provider deploys run inside the calling process and stop
    /// when the provider is dropped (the local provider), rather than on a platform that
    /// keeps them running after the run ends. `staging up --keep-running` waits for Ctrl-C
    /// only when this is true. Platforms keep the default, `false`.
    pub runs_services_in_process: bool,
}

impl Default for Pacing {
    fn default() -> Self {
        Pacing {
            poll_interval: Duration::from_secs(2),
            read_budget: ReadBudget::UNDECLARED,
            runs_services_in_process: false,
        }
    }
}

/// A service located in an environment: the spec's name plus the provider's own id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ServiceHandle {
    /// The service's name in the spec (`web`).
    pub name: String,
    /// The environment it belongs to (`staging`).
    pub environment: String,
    /// The provider's id for it (`srv-abc123`, an ECS service ARN, a local slot name).
    pub id: String,
    /// What the platform says it is, at the granularity its writes land on (Railway: service
    /// and environment ids): what the write boundary compares
    /// ([`crate::boundary::WriteBoundary::target`]). Filled by the provider's `locate`.
    pub identity: Identity,
}

/// Where a deploy is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DeployStatus {
    /// Accepted, not started.
    Queued,
    /// Building or rolling out.
    InProgress,
    /// Serving traffic.
    Live,
    /// Failed to build or start.
    Failed,
    /// Canceled before going live.
    Canceled,
    /// Replaced by a newer deploy or deactivated.
    Superseded,
}

impl DeployStatus {
    /// Whether the deploy will not change state any more.
    pub fn is_terminal(self) -> bool {
        !matches!(self, DeployStatus::Queued | DeployStatus::InProgress)
    }
}

/// What to deploy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DeployTarget {
    /// A source commit (full or short SHA).
    Commit(String),
    /// A prebuilt image reference.
    Image(String),
}

/// A request to deploy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DeployRequest {
    /// The commit or image.
    pub target: DeployTarget,
    /// The commit the deploy stands for, when deploying an image built from it.
    pub commit: Option<String>,
    /// Ask the platform to rebuild without its build cache.
    pub clear_cache: bool,
}

impl DeployRequest {
    /// Deploy a source commit.
    pub fn commit(sha: impl Into<String>) -> Self {
        let sha = sha.into();
        DeployRequest {
            target: DeployTarget::Commit(sha.clone()),
            commit: Some(sha),
            clear_cache: false,
        }
    }
}

/// One deploy as the provider reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Deploy {
    /// The provider's deploy id.
    pub id: String,
    /// Its status.
    pub status: DeployStatus,
    /// The commit it deploys, when known.
    pub commit: Option<String>,
    /// The image it deploys, when known.
    pub image: Option<String>,
    /// The provider's own word for the status (`build_failed`), for messages.
    pub raw_status: String,
}

/// The live state of a service.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LiveState {
    /// The newest deploy, live or not.
    pub latest: Option<Deploy>,
    /// The deploy serving traffic, if any.
    pub live: Option<Deploy>,
    /// The public URL of the service, if it has one.
    pub url: Option<url::Url>,
}

impl LiveState {
    /// The commit serving traffic, if known.
    pub fn live_commit(&self) -> Option<&str> {
        self.live.as_ref().and_then(|d| d.commit.as_deref())
    }
}

/// What `staging logs` asks for: the last `lines` lines of a service (of one deploy when
/// `deploy_id` is given), only those written at or after `since` when given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogQuery {
    /// One deploy's lines only.
    pub deploy_id: Option<String>,
    /// At most this many lines, the newest.
    pub lines: usize,
    /// Only lines written at or after this time.
    pub since: Option<std::time::SystemTime>,
}

impl LogQuery {
    /// The last `lines` lines of the service.
    pub fn last(lines: usize) -> Self {
        LogQuery {
            deploy_id: None,
            lines,
            since: None,
        }
    }

    /// The last `lines` lines of the service, of `deploy_id` only when given: what
    /// [`Logs::recent_logs`] asks.
    pub fn recent(deploy_id: Option<&str>, lines: usize) -> Self {
        LogQuery {
            deploy_id: deploy_id.map(str::to_owned),
            ..LogQuery::last(lines)
        }
    }
}

/// One log line, with the time the platform gives it when it gives one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LogLine {
    /// When it was written (RFC 3339), when the platform says.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub at: Option<String>,
    /// The line as the service wrote it (callers redact before showing it).
    pub text: String,
}

/// `TIME TEXT` when the platform gave the line a time, else the text alone.
impl std::fmt::Display for LogLine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.at {
            Some(at) => write!(f, "{at} {}", self.text),
            None => f.write_str(&self.text),
        }
    }
}

/// [`Logs::recent_logs`] for a provider that implements [`Logs::logs`]: the query
/// [`LogQuery::recent`], each line shown as [`LogLine`]'s `Display` (time first when the
/// platform gives one). The one place this shaping lives, so every platform's failure output
/// reads the same.
pub async fn recent_logs_from_logs<P: Logs + ?Sized>(
    provider: &P,
    service: &ServiceHandle,
    deploy_id: Option<&str>,
    lines: usize,
) -> Result<Vec<String>> {
    Ok(
        Logs::logs(provider, service, &LogQuery::recent(deploy_id, lines))
            .await?
            .iter()
            .map(LogLine::to_string)
            .collect(),
    )
}

/// A hosting platform: finds services, reads their state, deploys and waits. This is the
/// required core; everything else is an optional capability trait ([`EnvVars`],
/// [`Rollback`], [`Logs`], [`Cancel`], [`EnvironmentSetup`]) that a provider implements and
/// hands out through [`Provider::capabilities`].
///
/// Callers use [`ProviderExt`], which offers every operation by name (`env_vars`,
/// `rollback`, ...) through the accessor and answers [`Error::NotSupported`], naming the
/// provider and the operation, when the capability is absent.
///
/// Every method that changes the platform takes a [`WriteTarget`] (or, to prepare an
/// environment, an [`EnvironmentTarget`]): a value only the run's isolation check issues
/// ([`crate::boundary`]), after comparing the service's [`ServiceHandle::identity`] with what
/// every other environment owns. Reads take the bare [`ServiceHandle`].
#[async_trait]
pub trait Provider: Debug + Send + Sync + 'static {
    /// Short name of the provider (`local`, `render`).
    fn name(&self) -> &str;

    /// How often to poll and the platform's read budget ([`Pacing`]); default
    /// [`Pacing::default`].
    fn pacing(&self) -> Pacing {
        Pacing::default()
    }

    /// The optional capabilities this provider implements ([`Capabilities`]). Default: none.
    fn capabilities(&self) -> Capabilities<'_> {
        Capabilities::none()
    }

    /// What [`Provider::deploy`] can deploy to the spec's service `service` ([`DeployKinds`]).
    /// Required: a provider says what it deploys, and the conformance suite holds it to it.
    fn deploy_kinds(&self, service: &str) -> DeployKinds;

    /// Find the service named `service` of the spec in `environment`.
    async fn locate(&self, environment: &str, service: &str) -> Result<ServiceHandle>;

    /// The service's live state.
    async fn live_state(&self, service: &ServiceHandle) -> Result<LiveState>;

    /// Start a deploy; returns at once with the new deploy. A target of a kind
    /// [`Provider::deploy_kinds`] says no to answers [`Error::NotSupported`].
    async fn deploy(&self, service: &WriteTarget, request: &DeployRequest) -> Result<Deploy>;

    /// The current state of one deploy.
    async fn deploy_status(&self, service: &ServiceHandle, deploy_id: &str) -> Result<Deploy>;
}

/// Reads and writes a service's environment variables (capability [`Capabilities::env`]).
#[async_trait]
pub trait EnvVars: Provider {
    /// All environment variables of the service.
    async fn env_vars(&self, service: &ServiceHandle) -> Result<BTreeMap<String, SecretString>>;

    /// Set one environment variable, leaving every other untouched.
    async fn set_env_var(
        &self,
        service: &WriteTarget,
        key: &str,
        value: &SecretString,
    ) -> Result<()>;

    /// Set several environment variables, leaving every other untouched. Platforms that
    /// write a set in one request override it (Railway's `variableCollectionUpsert`, one
    /// write instead of one deployment per variable); the default sets them one at a time
    /// with [`EnvVars::set_env_var`].
    async fn set_env_vars(
        &self,
        service: &WriteTarget,
        variables: &BTreeMap<String, SecretString>,
    ) -> Result<()> {
        for (key, value) in variables {
            EnvVars::set_env_var(self, service, key, value).await?;
        }
        Ok(())
    }

    /// Delete one environment variable, leaving every other untouched.
    async fn delete_env_var(&self, service: &WriteTarget, key: &str) -> Result<()>;

    /// What the variables `keys` of `service` are before a run changes them (`current` is
    /// what [`EnvVars::env_vars`] just returned), for [`EnvVars::restore_env`] after a
    /// failed promote. The default sends nothing and marks a key `current` lacks as
    /// unreadable (it may be a secret whose value the platform never returns); a platform
    /// that lists every variable says absent instead, and one with records of its own keeps
    /// them for an exact restore.
    async fn snapshot_env(
        &self,
        service: &ServiceHandle,
        current: &BTreeMap<String, SecretString>,
        keys: &[String],
    ) -> Result<EnvSnapshot> {
        Ok(EnvSnapshot::from_read(service, current, keys, false))
    }

    /// Put the variables of a snapshot back as they were: old values set again, variables
    /// that were absent deleted, what cannot be put back reported
    /// ([`crate::env_snapshot::restore_by_values`] unless the platform restores exactly),
    /// through `target`, the write boundary's target for the snapshot's service.
    async fn restore_env(
        &self,
        target: &WriteTarget,
        snapshot: &EnvSnapshot,
    ) -> Result<EnvRestore> {
        crate::env_snapshot::restore_by_values(self, target, snapshot).await
    }
}

/// Rolls a service back to an earlier deploy (capability [`Capabilities::rollback`]).
#[async_trait]
pub trait Rollback: Provider {
    /// Roll back to the previous live deploy; returns the deploy now going live.
    async fn rollback(&self, service: &WriteTarget) -> Result<Deploy>;

    /// Roll back to one earlier deploy of the service, named by its id (`staging rollback
    /// --to`, and the automatic rollback after a failed promote, which returns to the deploy
    /// that was live before); returns the deploy now going live.
    async fn rollback_to(&self, service: &WriteTarget, deploy_id: &str) -> Result<Deploy>;
}

/// Shows a service's log lines (capability [`Capabilities::logs`]).
#[async_trait]
pub trait Logs: Provider {
    /// The last `lines` log lines of the service (of `deploy_id` when given). A provider
    /// that implements [`Logs::logs`] answers with [`recent_logs_from_logs`].
    async fn recent_logs(
        &self,
        service: &ServiceHandle,
        deploy_id: Option<&str>,
        lines: usize,
    ) -> Result<Vec<String>>;

    /// Log lines as [`LogQuery`] asks (`staging logs`), oldest first. Providers whose
    /// platform has timestamps implement it; the default serves queries without `since`
    /// from [`Logs::recent_logs`] and says [`Error::NotSupported`] to `since`.
    async fn logs(&self, service: &ServiceHandle, query: &LogQuery) -> Result<Vec<LogLine>> {
        if query.since.is_some() {
            return Err(Error::not_supported(
                self.name(),
                "log lines since a time (the platform gives its lines no time)",
            ));
        }
        Ok(
            Logs::recent_logs(self, service, query.deploy_id.as_deref(), query.lines)
                .await?
                .into_iter()
                .map(|text| LogLine { at: None, text })
                .collect(),
        )
    }
}

/// Cancels a deploy that is not live yet (capability [`Capabilities::cancel`];
/// `staging up --cancel-on-interrupt`).
#[async_trait]
pub trait Cancel: Provider {
    /// Cancel the deploy; returns it as it is now.
    async fn cancel_deploy(&self, service: &WriteTarget, deploy_id: &str) -> Result<Deploy>;
}

/// Creates what an environment needs on the platform before its first deploy (capability
/// [`Capabilities::environment_setup`]): Railway copies a missing environment from the one it
/// promotes to. Platforms without such a step do not implement it, and every environment is
/// ready on them.
#[async_trait]
pub trait EnvironmentSetup: Provider {
    /// What must be created before `environment`'s first deploy, without creating it (what
    /// `plan` shows); `None` when the environment is ready.
    async fn environment_setup(&self, environment: &str) -> Result<Option<String>>;

    /// Creates what [`EnvironmentSetup::environment_setup`] names, and says what it did
    /// (`None`: nothing was needed). The deploy step calls it before it locates the
    /// services, so the environment's own variables are set before its first deploy.
    async fn prepare_environment(&self, environment: &EnvironmentTarget) -> Result<Option<String>>;
}

/// A provider behind a pointer, as the pipeline holds them.
pub type DynProvider = Arc<dyn Provider>;

macro_rules! forward_provider {
    ($ty:ty) => {
        #[async_trait]
        impl<T: Provider + ?Sized> Provider for $ty {
            fn name(&self) -> &str {
                (**self).name()
            }
            fn pacing(&self) -> Pacing {
                (**self).pacing()
            }
            fn capabilities(&self) -> Capabilities<'_> {
                (**self).capabilities()
            }
            fn deploy_kinds(&self, service: &str) -> DeployKinds {
                (**self).deploy_kinds(service)
            }
            async fn locate(&self, environment: &str, service: &str) -> Result<ServiceHandle> {
                (**self).locate(environment, service).await
            }
            async fn live_state(&self, service: &ServiceHandle) -> Result<LiveState> {
                (**self).live_state(service).await
            }
            async fn deploy(
                &self,
                service: &WriteTarget,
                request: &DeployRequest,
            ) -> Result<Deploy> {
                (**self).deploy(service, request).await
            }
            async fn deploy_status(
                &self,
                service: &ServiceHandle,
                deploy_id: &str,
            ) -> Result<Deploy> {
                (**self).deploy_status(service, deploy_id).await
            }
        }
    };
}

forward_provider!(Arc<T>);
forward_provider!(Box<T>);

/// Progress of a wait, handed to the caller's callback on every poll.
#[derive(Debug, Clone)]
pub struct WaitProgress<'a> {
    /// The deploy as last seen.
    pub deploy: &'a Deploy,
    /// Time spent waiting so far.
    pub elapsed: Duration,
    /// The bound of the wait.
    pub timeout: Duration,
}

/// Every operation by name, for any provider: the optional ones go through
/// [`Provider::capabilities`] and answer [`Error::NotSupported`] (naming the provider and the
/// operation) when the capability is absent; waiting and pacing are derived from the core.
#[async_trait]
pub trait ProviderExt: Provider {
    /// [`Pacing::poll_interval`].
    fn poll_interval(&self) -> Duration {
        self.pacing().poll_interval
    }

    /// [`Pacing::read_budget`].
    fn read_budget(&self) -> ReadBudget {
        self.pacing().read_budget
    }

    /// [`Pacing::runs_services_in_process`].
    fn runs_services_in_process(&self) -> bool {
        self.pacing().runs_services_in_process
    }

    /// [`EnvVars::env_vars`], or [`Error::NotSupported`].
    async fn env_vars(&self, service: &ServiceHandle) -> Result<BTreeMap<String, SecretString>> {
        EnvVars::env_vars(
            self.env_capability("reading environment variables")?,
            service,
        )
        .await
    }

    /// [`EnvVars::set_env_var`], or [`Error::NotSupported`].
    async fn set_env_var(
        &self,
        service: &WriteTarget,
        key: &str,
        value: &SecretString,
    ) -> Result<()> {
        let env = self.env_capability("setting environment variables")?;
        EnvVars::set_env_var(env, service, key, value).await
    }

    /// [`EnvVars::set_env_vars`], or [`Error::NotSupported`].
    async fn set_env_vars(
        &self,
        service: &WriteTarget,
        variables: &BTreeMap<String, SecretString>,
    ) -> Result<()> {
        let env = self.env_capability("setting environment variables")?;
        EnvVars::set_env_vars(env, service, variables).await
    }

    /// [`EnvVars::delete_env_var`], or [`Error::NotSupported`].
    async fn delete_env_var(&self, service: &WriteTarget, key: &str) -> Result<()> {
        let env = self.env_capability("deleting environment variables")?;
        EnvVars::delete_env_var(env, service, key).await
    }

    /// [`EnvVars::snapshot_env`], or [`Error::NotSupported`].
    async fn snapshot_env(
        &self,
        service: &ServiceHandle,
        current: &BTreeMap<String, SecretString>,
        keys: &[String],
    ) -> Result<EnvSnapshot> {
        let env = self.env_capability("reading environment variables")?;
        EnvVars::snapshot_env(env, service, current, keys).await
    }

    /// [`EnvVars::restore_env`], or [`Error::NotSupported`].
    async fn restore_env(
        &self,
        target: &WriteTarget,
        snapshot: &EnvSnapshot,
    ) -> Result<EnvRestore> {
        let env = self.env_capability("restoring environment variables")?;
        EnvVars::restore_env(env, target, snapshot).await
    }

    /// [`Rollback::rollback`], or [`Error::NotSupported`].
    async fn rollback(&self, service: &WriteTarget) -> Result<Deploy> {
        let rollback = self
            .capabilities()
            .rollback
            .ok_or_else(|| self.lacks("rolling back"))?;
        Rollback::rollback(rollback, service).await
    }

    /// [`Rollback::rollback_to`], or [`Error::NotSupported`].
    async fn rollback_to(&self, service: &WriteTarget, deploy_id: &str) -> Result<Deploy> {
        let rollback = self
            .capabilities()
            .rollback
            .ok_or_else(|| self.lacks("rolling back to a named deploy"))?;
        Rollback::rollback_to(rollback, service, deploy_id).await
    }

    /// [`Logs::recent_logs`], or [`Error::NotSupported`].
    async fn recent_logs(
        &self,
        service: &ServiceHandle,
        deploy_id: Option<&str>,
        lines: usize,
    ) -> Result<Vec<String>> {
        let logs = self
            .capabilities()
            .logs
            .ok_or_else(|| self.lacks("showing logs"))?;
        Logs::recent_logs(logs, service, deploy_id, lines).await
    }

    /// [`Logs::logs`], or [`Error::NotSupported`].
    async fn logs(&self, service: &ServiceHandle, query: &LogQuery) -> Result<Vec<LogLine>> {
        let logs = self
            .capabilities()
            .logs
            .ok_or_else(|| self.lacks("showing logs"))?;
        Logs::logs(logs, service, query).await
    }

    /// [`Cancel::cancel_deploy`], or [`Error::NotSupported`].
    async fn cancel_deploy(&self, service: &WriteTarget, deploy_id: &str) -> Result<Deploy> {
        let cancel = self
            .capabilities()
            .cancel
            .ok_or_else(|| self.lacks("canceling a deploy"))?;
        Cancel::cancel_deploy(cancel, service, deploy_id).await
    }

    /// [`EnvironmentSetup::environment_setup`]; `None` (ready) on a provider without the
    /// capability, whose environments need no setting up.
    async fn environment_setup(&self, environment: &str) -> Result<Option<String>> {
        match self.capabilities().environment_setup {
            Some(setup) => EnvironmentSetup::environment_setup(setup, environment).await,
            None => Ok(None),
        }
    }

    /// [`EnvironmentSetup::prepare_environment`]; `None` (nothing done) on a provider
    /// without the capability.
    async fn prepare_environment(&self, environment: &EnvironmentTarget) -> Result<Option<String>> {
        match self.capabilities().environment_setup {
            Some(setup) => EnvironmentSetup::prepare_environment(setup, environment).await,
            None => Ok(None),
        }
    }

    /// The [`EnvVars`] capability, or [`Error::NotSupported`] for `operation`.
    fn env_capability(&self, operation: &str) -> Result<&dyn EnvVars> {
        self.capabilities().env.ok_or_else(|| self.lacks(operation))
    }

    /// [`Error::NotSupported`] naming this provider and `operation`.
    fn lacks(&self, operation: &str) -> Error {
        Error::not_supported(self.name(), operation)
    }

    /// Poll a deploy until it is live or has failed, at the cadence the provider's read
    /// budget allows for one service ([`crate::cadence`]), honouring `Retry-After` on rate
    /// limits, and giving up after `timeout`.
    ///
    /// Returns the deploy when it is live; [`Error::Failed`] when it reached another terminal
    /// status; [`Error::Timeout`] when the bound ran out.
    async fn wait_until_live(
        &self,
        service: &ServiceHandle,
        deploy_id: &str,
        timeout: Duration,
        on_progress: &mut (dyn for<'a> FnMut(WaitProgress<'a>) + Send),
    ) -> Result<Deploy> {
        let cadence = Cadence::for_provider(self);
        tracing::info!("{}", cadence.explain(1));
        self.wait_until_live_paced(service, deploy_id, timeout, &cadence, on_progress)
            .await
    }

    /// [`ProviderExt::wait_until_live`] as one of several waits sharing `cadence`: every
    /// service's loop polls at the interval the budget allows for the services still waiting.
    async fn wait_until_live_paced(
        &self,
        service: &ServiceHandle,
        deploy_id: &str,
        timeout: Duration,
        cadence: &Cadence,
        on_progress: &mut (dyn for<'a> FnMut(WaitProgress<'a>) + Send),
    ) -> Result<Deploy> {
        poll_until(
            cadence,
            timeout,
            || format!("deploy {deploy_id} of {} to go live", service.name),
            || Provider::deploy_status(self, service, deploy_id),
            |deploy, elapsed| {
                on_progress(WaitProgress {
                    deploy: &deploy,
                    elapsed,
                    timeout,
                });
                match deploy.status {
                    DeployStatus::Live => Ok(Next::Done(deploy)),
                    status if status.is_terminal() => Err(Error::failed(format!(
                        "deploy {} of {} ended as {status} ({})",
                        deploy.id, service.name, deploy.raw_status
                    ))),
                    _ => Ok(Next::Again(deploy.raw_status)),
                }
            },
        )
        .await
    }
}

impl<T: Provider + ?Sized> ProviderExt for T {}

impl fmt::Display for DeployStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = match self {
            DeployStatus::Queued => "queued",
            DeployStatus::InProgress => "in progress",
            DeployStatus::Live => "live",
            DeployStatus::Failed => "failed",
            DeployStatus::Canceled => "canceled",
            DeployStatus::Superseded => "superseded",
        };
        f.write_str(s)
    }
}
