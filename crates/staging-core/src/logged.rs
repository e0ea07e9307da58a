//! [`LoggedProvider`]: the decorator that summarises every provider call in the log, so
//! `staging -v` shows what the tool asks of the platform (and how long each answer took),
//! whatever the provider. Values of variables are never logged, only their names.

use std::collections::BTreeMap;
use std::future::Future;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use secrecy::SecretString;

use crate::boundary::WriteTarget;
use crate::error::Result;
use crate::provider::{
    Cancel, Capabilities, Deploy, DeployKinds, DeployRequest, DynProvider, EnvVars,
    EnvironmentSetup, LiveState, LogLine, LogQuery, Logs, Pacing, Provider, ProviderExt, Rollback,
    ServiceHandle,
};

/// A provider whose every call is logged at `info` (what, on which service, the outcome
/// and the time), with the error at `info` too when it fails: the caller decides whether
/// the failure matters.
#[derive(Debug, Clone)]
pub struct LoggedProvider {
    inner: DynProvider,
}

impl LoggedProvider {
    /// Wrap `inner`.
    pub fn new(inner: DynProvider) -> Self {
        LoggedProvider { inner }
    }

    /// `inner` wrapped, as a [`DynProvider`].
    pub fn wrap(inner: DynProvider) -> DynProvider {
        std::sync::Arc::new(LoggedProvider::new(inner))
    }

    async fn call<T, F>(&self, what: String, outcome: impl Fn(&T) -> String, f: F) -> Result<T>
    where
        F: Future<Output = Result<T>>,
    {
        let provider = self.inner.name().to_owned();
        tracing::debug!(provider = %provider, "{what}: calling");
        let started = Instant::now();
        let result = f.await;
        let took = humantime::format_duration(round_ms(started.elapsed()));
        match &result {
            Ok(value) => {
                tracing::info!(provider = %provider, "{what}: {} ({took})", outcome(value))
            }
            Err(e) => tracing::info!(provider = %provider, "{what}: failed: {e} ({took})"),
        }
        result
    }
}

fn round_ms(d: Duration) -> Duration {
    Duration::from_millis(d.as_millis() as u64)
}

fn deploy_outcome(d: &Deploy) -> String {
    format!(
        "deploy {} is {}{}",
        d.id,
        d.raw_status,
        d.commit
            .as_deref()
            .map(|c| format!(" at {}", &c[..c.len().min(12)]))
            .unwrap_or_default()
    )
}

fn on(service: &ServiceHandle) -> String {
    format!("`{}` ({})", service.name, service.id)
}

#[async_trait]
impl Provider for LoggedProvider {
    fn name(&self) -> &str {
        self.inner.name()
    }
    fn pacing(&self) -> Pacing {
        self.inner.pacing()
    }
    /// Exactly the inner provider's capabilities, each answered by this decorator (so its
    /// calls are logged): a capability the inner provider lacks is absent here too.
    fn capabilities(&self) -> Capabilities<'_> {
        Capabilities::mirrored(self.inner.capabilities(), self)
    }
    fn deploy_kinds(&self, service: &str) -> DeployKinds {
        self.inner.deploy_kinds(service)
    }
    async fn locate(&self, environment: &str, service: &str) -> Result<ServiceHandle> {
        self.call(
            format!("locate `{service}` in `{environment}`"),
            |h: &ServiceHandle| format!("found {}", h.id),
            self.inner.locate(environment, service),
        )
        .await
    }
    async fn live_state(&self, service: &ServiceHandle) -> Result<LiveState> {
        self.call(
            format!("live state of {}", on(service)),
            |s: &LiveState| {
                format!(
                    "live {}, latest {}, url {}",
                    s.live_commit()
                        .map(|c| &c[..c.len().min(12)])
                        .unwrap_or("none"),
                    s.latest
                        .as_ref()
                        .map(|d| d.raw_status.as_str())
                        .unwrap_or("none"),
                    s.url
                        .as_ref()
                        .map(|u| u.to_string())
                        .unwrap_or_else(|| "none".into())
                )
            },
            self.inner.live_state(service),
        )
        .await
    }
    async fn deploy(&self, service: &WriteTarget, request: &DeployRequest) -> Result<Deploy> {
        self.call(
            format!("deploy {}", on(service)),
            deploy_outcome,
            self.inner.deploy(service, request),
        )
        .await
    }
    async fn deploy_status(&self, service: &ServiceHandle, deploy_id: &str) -> Result<Deploy> {
        self.call(
            format!("status of deploy {deploy_id} of {}", on(service)),
            deploy_outcome,
            self.inner.deploy_status(service, deploy_id),
        )
        .await
    }
}

#[async_trait]
impl EnvVars for LoggedProvider {
    async fn env_vars(&self, service: &ServiceHandle) -> Result<BTreeMap<String, SecretString>> {
        self.call(
            format!("read the variables of {}", on(service)),
            |vars: &BTreeMap<String, SecretString>| format!("{} variable(s)", vars.len()),
            self.inner.env_vars(service),
        )
        .await
    }
    async fn set_env_var(
        &self,
        service: &WriteTarget,
        key: &str,
        value: &SecretString,
    ) -> Result<()> {
        self.call(
            format!("set {key} on {}", on(service)),
            |_: &()| "done".to_owned(),
            self.inner.set_env_var(service, key, value),
        )
        .await
    }
    async fn set_env_vars(
        &self,
        service: &WriteTarget,
        variables: &BTreeMap<String, SecretString>,
    ) -> Result<()> {
        let keys: Vec<&str> = variables.keys().map(String::as_str).collect();
        self.call(
            format!("set {} on {}", keys.join(", "), on(service)),
            |_: &()| "done".to_owned(),
            self.inner.set_env_vars(service, variables),
        )
        .await
    }
    async fn delete_env_var(&self, service: &WriteTarget, key: &str) -> Result<()> {
        self.call(
            format!("delete {key} on {}", on(service)),
            |_: &()| "done".to_owned(),
            self.inner.delete_env_var(service, key),
        )
        .await
    }
    async fn snapshot_env(
        &self,
        service: &ServiceHandle,
        current: &BTreeMap<String, SecretString>,
        keys: &[String],
    ) -> Result<crate::env_snapshot::EnvSnapshot> {
        self.call(
            format!("snapshot {} on {}", keys.join(", "), on(service)),
            |_: &crate::env_snapshot::EnvSnapshot| "done".to_owned(),
            self.inner.snapshot_env(service, current, keys),
        )
        .await
    }
    async fn restore_env(
        &self,
        target: &WriteTarget,
        snapshot: &crate::env_snapshot::EnvSnapshot,
    ) -> Result<crate::env_snapshot::EnvRestore> {
        self.call(
            format!("restore variables of {}", on(&snapshot.service)),
            |r: &crate::env_snapshot::EnvRestore| r.describe(),
            self.inner.restore_env(target, snapshot),
        )
        .await
    }
}

#[async_trait]
impl Rollback for LoggedProvider {
    async fn rollback(&self, service: &WriteTarget) -> Result<Deploy> {
        self.call(
            format!("roll back {}", on(service)),
            deploy_outcome,
            self.inner.rollback(service),
        )
        .await
    }
    // Forwarded explicitly: the trait's default would answer "not supported" for every
    // provider behind this decorator (the automatic rollback after a failed promote uses it).
    async fn rollback_to(&self, service: &WriteTarget, deploy_id: &str) -> Result<Deploy> {
        self.call(
            format!("roll back {} to deploy {deploy_id}", on(service)),
            deploy_outcome,
            self.inner.rollback_to(service, deploy_id),
        )
        .await
    }
}

#[async_trait]
impl Logs for LoggedProvider {
    async fn recent_logs(
        &self,
        service: &ServiceHandle,
        deploy_id: Option<&str>,
        lines: usize,
    ) -> Result<Vec<String>> {
        self.call(
            format!("read the last {lines} log lines of {}", on(service)),
            |l: &Vec<String>| format!("{} line(s)", l.len()),
            self.inner.recent_logs(service, deploy_id, lines),
        )
        .await
    }
    // Forwarded explicitly: the default would lose the platform's times and `since`.
    async fn logs(&self, service: &ServiceHandle, query: &LogQuery) -> Result<Vec<LogLine>> {
        self.call(
            format!("read up to {} log lines of {}", query.lines, on(service)),
            |l: &Vec<LogLine>| format!("{} line(s)", l.len()),
            self.inner.logs(service, query),
        )
        .await
    }
}

#[async_trait]
impl Cancel for LoggedProvider {
    async fn cancel_deploy(&self, service: &WriteTarget, deploy_id: &str) -> Result<Deploy> {
        self.call(
            format!("cancel deploy {deploy_id} of {}", on(service)),
            deploy_outcome,
            self.inner.cancel_deploy(service, deploy_id),
        )
        .await
    }
}

#[async_trait]
impl EnvironmentSetup for LoggedProvider {
    async fn environment_setup(&self, environment: &str) -> Result<Option<String>> {
        self.call(
            format!("check whether `{environment}` needs setting up"),
            |done: &Option<String>| done.clone().unwrap_or_else(|| "ready".to_owned()),
            self.inner.environment_setup(environment),
        )
        .await
    }
    async fn prepare_environment(
        &self,
        environment: &crate::boundary::EnvironmentTarget,
    ) -> Result<Option<String>> {
        self.call(
            format!("prepare `{}`", environment.environment()),
            |done: &Option<String>| done.clone().unwrap_or_else(|| "nothing to do".to_owned()),
            self.inner.prepare_environment(environment),
        )
        .await
    }
}
