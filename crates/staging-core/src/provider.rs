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

/// What a provider can do. An operation a provider cannot do returns
/// [`Error::NotSupported`] and is `false` here; there are no silent no-op defaults.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct Capabilities {
    /// Can deploy a source commit.
    pub deploy_commit: bool,
    /// Can deploy a prebuilt image.
    pub deploy_image: bool,
    /// Can roll back to the previous live deploy.
    pub rollback: bool,
    /// Can read the service's environment variables.
    pub read_env: bool,
    /// Can set and delete single environment variables.
    pub write_env: bool,
    /// Can show recent log lines of a service or deploy.
    pub logs: bool,
    /// Can cancel a deploy that is not live yet.
    pub cancel: bool,
}

impl Capabilities {
    /// Every capability on; convenient for providers that can do everything.
    pub fn all() -> Self {
        Capabilities {
            deploy_commit: true,
            deploy_image: true,
            rollback: true,
            read_env: true,
            write_env: true,
            logs: true,
            cancel: true,
        }
    }

    /// No capability at all.
    pub fn none() -> Self {
        Capabilities::default()
    }

    /// Builder-style setter, so providers outside core can build the non-exhaustive value.
    pub fn with(mut self, capability: Capability, on: bool) -> Self {
        match capability {
            Capability::DeployCommit => self.deploy_commit = on,
            Capability::DeployImage => self.deploy_image = on,
            Capability::Rollback => self.rollback = on,
            Capability::ReadEnv => self.read_env = on,
            Capability::WriteEnv => self.write_env = on,
            Capability::Logs => self.logs = on,
            Capability::Cancel => self.cancel = on,
        }
        self
    }

    /// Whether one capability is on.
    pub fn has(&self, capability: Capability) -> bool {
        match capability {
            Capability::DeployCommit => self.deploy_commit,
            Capability::DeployImage => self.deploy_image,
            Capability::Rollback => self.rollback,
            Capability::ReadEnv => self.read_env,
            Capability::WriteEnv => self.write_env,
            Capability::Logs => self.logs,
            Capability::Cancel => self.cancel,
        }
    }
}

/// One capability, for [`Capabilities::with`] and [`Capabilities::has`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Capability {
    /// See [`Capabilities::deploy_commit`].
    DeployCommit,
    /// See [`Capabilities::deploy_image`].
    DeployImage,
    /// See [`Capabilities::rollback`].
    Rollback,
    /// See [`Capabilities::read_env`].
    ReadEnv,
    /// See [`Capabilities::write_env`].
    WriteEnv,
    /// See [`Capabilities::logs`].
    Logs,
    /// See [`Capabilities::cancel`].
    Cancel,
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
    /// [`Provider::recent_logs`] asks.
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

/// [`Provider::recent_logs`] for a provider that implements [`Provider::logs`]: the query
/// [`LogQuery::recent`], each line shown as [`LogLine`]'s `Display` (time first when the
/// platform gives one). The one place this shaping lives, so every platform's failure output
/// reads the same.
pub async fn recent_logs_from_logs<P: Provider + ?Sized>(
    provider: &P,
    service: &ServiceHandle,
    deploy_id: Option<&str>,
    lines: usize,
) -> Result<Vec<String>> {
    Ok(provider
        .logs(service, &LogQuery::recent(deploy_id, lines))
        .await?
        .iter()
        .map(LogLine::to_string)
        .collect())
}

/// A hosting platform: finds services, reads their state, deploys, rolls back, and reads and
/// writes their environment variables.
///
/// Implement the required methods only; waiting and other conveniences live in
/// [`ProviderExt`].
///
/// Every method that changes the platform takes a [`WriteTarget`] (or, to prepare an
/// environment, an [`EnvironmentTarget`]): a value only the run's isolation check issues
/// ([`crate::boundary`]), after comparing the service's [`ServiceHandle::identity`] with what
/// every other environment owns. Reads take the bare [`ServiceHandle`]. Operations the platform cannot do return [`Error::NotSupported`] and are
/// declared in [`Provider::capabilities`].
#[async_trait]
pub trait Provider: Debug + Send + Sync + 'static {
    /// Short name of the provider (`local`, `render`).
    fn name(&self) -> &str;

    /// What this provider can do.
    fn capabilities(&self) -> Capabilities;

    /// The shortest interval worth polling a deploy at: the cadence of a wait
    /// ([`crate::cadence`]) never polls faster, however much of the [`Provider::read_budget`]
    /// is left. Default 2 s, so that "live" is noticed within about 2 s when the budget allows.
    fn poll_interval(&self) -> Duration {
        Duration::from_secs(2)
    }

    /// The platform's documented limit on reads, which a wait's cadence uses at most a quarter
    /// of ([`crate::cadence::BUDGET_SHARE_PERCENT`]). Providers declare theirs; the default is
    /// a conservative [`ReadBudget::UNDECLARED`] (60 a minute), which `-v` names as undeclared.
    fn read_budget(&self) -> ReadBudget {
        ReadBudget::UNDECLARED
    }

    /// Whether the services this provider deploys run inside the calling process and stop
    /// when the provider is dropped (the local provider), rather than on a platform that
    /// keeps them running after the run ends. `staging up --keep-running` waits for Ctrl-C
    /// only when this is true. Platforms keep the default, `false`.
    fn runs_services_in_process(&self) -> bool {
        false
    }

    /// Find the service named `service` of the spec in `environment`.
    async fn locate(&self, environment: &str, service: &str) -> Result<ServiceHandle>;

    /// What must be created on the platform before `environment`'s first deploy, without
    /// creating it (what `plan` shows): Railway copies a missing environment from the one it
    /// promotes to. `None` when the environment is ready, as it always is on platforms
    /// without such a step (the default).
    async fn environment_setup(&self, environment: &str) -> Result<Option<String>> {
        let _ = environment;
        Ok(None)
    }

    /// Creates what [`Provider::environment_setup`] names, and says what it did (`None`:
    /// nothing was needed). The deploy step calls it before it locates the services, so the
    /// environment's own variables are set before its first deploy.
    async fn prepare_environment(&self, environment: &EnvironmentTarget) -> Result<Option<String>> {
        let _ = environment;
        Ok(None)
    }

    /// The service's live state.
    async fn live_state(&self, service: &ServiceHandle) -> Result<LiveState>;

    /// Start a deploy; returns at once with the new deploy.
    async fn deploy(&self, service: &WriteTarget, request: &DeployRequest) -> Result<Deploy>;

    /// The current state of one deploy.
    async fn deploy_status(&self, service: &ServiceHandle, deploy_id: &str) -> Result<Deploy>;

    /// Roll back to the previous live deploy; returns the deploy now going live.
    async fn rollback(&self, service: &WriteTarget) -> Result<Deploy>;

    /// Roll back to one earlier deploy of the service, named by its id (`staging rollback
    /// --to`, and the automatic rollback after a failed promote, which returns to the deploy
    /// that was live before); returns the deploy now going live. Covered by
    /// [`Capabilities::rollback`]: a provider that cannot says [`Error::NotSupported`].
    async fn rollback_to(&self, service: &WriteTarget, deploy_id: &str) -> Result<Deploy> {
        let _ = (service, deploy_id);
        Err(Error::not_supported(
            self.name(),
            "rolling back to a named deploy",
        ))
    }

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
    /// with [`Provider::set_env_var`].
    async fn set_env_vars(
        &self,
        service: &WriteTarget,
        variables: &BTreeMap<String, SecretString>,
    ) -> Result<()> {
        for (key, value) in variables {
            self.set_env_var(service, key, value).await?;
        }
        Ok(())
    }

    /// Delete one environment variable, leaving every other untouched.
    async fn delete_env_var(&self, service: &WriteTarget, key: &str) -> Result<()>;

    /// What the variables `keys` of `service` are before a run changes them (`current` is
    /// what [`Provider::env_vars`] just returned), for [`Provider::restore_env`] after a
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

    /// The last `lines` log lines of the service (of `deploy_id` when given). A provider
    /// that implements [`Provider::logs`] answers with [`recent_logs_from_logs`].
    async fn recent_logs(
        &self,
        service: &ServiceHandle,
        deploy_id: Option<&str>,
        lines: usize,
    ) -> Result<Vec<String>>;

    /// Log lines as [`LogQuery`] asks (`staging logs`), oldest first. Providers whose
    /// platform has timestamps implement it; the default serves queries without `since`
    /// from [`Provider::recent_logs`] and says [`Error::NotSupported`] to `since`.
    async fn logs(&self, service: &ServiceHandle, query: &LogQuery) -> Result<Vec<LogLine>> {
        if query.since.is_some() {
            return Err(Error::not_supported(
                self.name(),
                "log lines since a time (the platform gives its lines no time)",
            ));
        }
        Ok(self
            .recent_logs(service, query.deploy_id.as_deref(), query.lines)
            .await?
            .into_iter()
            .map(|text| LogLine { at: None, text })
            .collect())
    }

    /// Cancel a deploy that is not live yet (`staging up --cancel-on-interrupt`). Providers
    /// that cannot say [`Error::NotSupported`] and leave [`Capabilities::cancel`] off.
    async fn cancel_deploy(&self, service: &WriteTarget, deploy_id: &str) -> Result<Deploy> {
        let _ = (service, deploy_id);
        Err(Error::not_supported(self.name(), "canceling a deploy"))
    }
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
            fn capabilities(&self) -> Capabilities {
                (**self).capabilities()
            }
            fn poll_interval(&self) -> Duration {
                (**self).poll_interval()
            }
            fn read_budget(&self) -> ReadBudget {
                (**self).read_budget()
            }
            fn runs_services_in_process(&self) -> bool {
                (**self).runs_services_in_process()
            }
            async fn locate(&self, environment: &str, service: &str) -> Result<ServiceHandle> {
                (**self).locate(environment, service).await
            }
            async fn environment_setup(&self, environment: &str) -> Result<Option<String>> {
                (**self).environment_setup(environment).await
            }
            async fn prepare_environment(
                &self,
                environment: &EnvironmentTarget,
            ) -> Result<Option<String>> {
                (**self).prepare_environment(environment).await
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
            async fn rollback(&self, service: &WriteTarget) -> Result<Deploy> {
                (**self).rollback(service).await
            }
            async fn rollback_to(&self, service: &WriteTarget, deploy_id: &str) -> Result<Deploy> {
                (**self).rollback_to(service, deploy_id).await
            }
            async fn env_vars(
                &self,
                service: &ServiceHandle,
            ) -> Result<BTreeMap<String, SecretString>> {
                (**self).env_vars(service).await
            }
            async fn set_env_var(
                &self,
                service: &WriteTarget,
                key: &str,
                value: &SecretString,
            ) -> Result<()> {
                (**self).set_env_var(service, key, value).await
            }
            async fn set_env_vars(
                &self,
                service: &WriteTarget,
                variables: &BTreeMap<String, SecretString>,
            ) -> Result<()> {
                (**self).set_env_vars(service, variables).await
            }
            async fn snapshot_env(
                &self,
                service: &ServiceHandle,
                current: &BTreeMap<String, SecretString>,
                keys: &[String],
            ) -> Result<EnvSnapshot> {
                (**self).snapshot_env(service, current, keys).await
            }
            async fn restore_env(
                &self,
                target: &WriteTarget,
                snapshot: &EnvSnapshot,
            ) -> Result<EnvRestore> {
                (**self).restore_env(target, snapshot).await
            }
            async fn delete_env_var(&self, service: &WriteTarget, key: &str) -> Result<()> {
                (**self).delete_env_var(service, key).await
            }
            async fn recent_logs(
                &self,
                service: &ServiceHandle,
                deploy_id: Option<&str>,
                lines: usize,
            ) -> Result<Vec<String>> {
                (**self).recent_logs(service, deploy_id, lines).await
            }
            async fn logs(
                &self,
                service: &ServiceHandle,
                query: &LogQuery,
            ) -> Result<Vec<LogLine>> {
                (**self).logs(service, query).await
            }
            async fn cancel_deploy(
                &self,
                service: &WriteTarget,
                deploy_id: &str,
            ) -> Result<Deploy> {
                (**self).cancel_deploy(service, deploy_id).await
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

/// Conveniences every provider gets for free.
#[async_trait]
pub trait ProviderExt: Provider {
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
            || self.deploy_status(service, deploy_id),
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
