//! One environment across several providers: a service that says `provider = "netlify"` in
//! an environment on Render ([`crate::spec::LoadedSpec::service_provider`]).
//!
//! [`crate::ProviderRegistry::factory_for`] gives the plain factory of the environment's
//! provider when every service runs on it, and otherwise a [`CompositeFactory`]: one part
//! per provider used — the environment's own first —, each part a factory and the spec
//! narrowed for it ([`crate::spec::LoadedSpec::for_provider`]). Every factory method is
//! the parts' answers put together, each part asked with its own narrowed spec, so no
//! provider crate knows it shares an environment. What is built
//! ([`CompositeProvider`], [`CompositeProvisioner`], [`CompositeTeardown`]) dispatches by
//! the service a call is about: a handle's or target's `name`, a creation's or ledger
//! entry's `owner` (`service NAME`); anything else (a datastore, a custom domain of no
//! service, a whole environment) is the environment's own provider's.

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use secrecy::SecretString;

use crate::boundary::{CreationTarget, EnvironmentTarget, WriteTarget};
use crate::env_snapshot::{EnvRestore, EnvSnapshot};
use crate::error::{Error, Result};
use crate::isolation::Resource;
use crate::pipeline::Step;
use crate::probe::DynProbe;
use crate::provider::{
    Cancel, Capabilities, Deploy, DeployKinds, DeployRequest, DynProvider, EnvVars,
    EnvironmentSetup, LiveState, LogLine, LogQuery, Logs, Pacing, Provider, ProviderExt, Rollback,
    ServiceHandle,
};
use crate::provision::{Creation, DynProvisioner, Provisioner};
use crate::registry::{ProviderFactory, SpecWarning};
use crate::secret::DynSecretStore;
use crate::spec::{LoadedSpec, SettingsTypes};
use crate::teardown::{Created, DeletionTarget, DynTeardown, Found, Teardown};

/// One provider of a composite: its factory and the spec narrowed for it.
#[derive(Debug, Clone)]
struct Part {
    factory: Arc<dyn ProviderFactory>,
    spec: LoadedSpec,
}

impl Part {
    fn services(&self) -> Vec<String> {
        self.spec.spec.services.keys().cloned().collect()
    }
}

/// The factory of an environment whose services run on several providers (see the module
/// documentation). Made by [`crate::ProviderRegistry::factory_for`] for one spec and
/// environment.
#[derive(Debug, Clone)]
pub struct CompositeFactory {
    /// The environment's own provider first.
    parts: Vec<Part>,
}

/// The part that owns `owner` (`service NAME`), else the first (the environment's own).
fn index_of_owner(services: &BTreeMap<String, usize>, owner: &str) -> usize {
    owner
        .strip_prefix("service ")
        .and_then(|s| services.get(s))
        .copied()
        .unwrap_or(0)
}

impl CompositeFactory {
    /// The composite of `environment` of `spec` over `factories`, one per provider
    /// [`LoadedSpec::providers_used`] names, in that order (the environment's own first).
    pub fn new(
        spec: &LoadedSpec,
        environment: &str,
        factories: Vec<Arc<dyn ProviderFactory>>,
    ) -> Self {
        let parts = factories
            .into_iter()
            .map(|factory| Part {
                spec: spec.for_provider(environment, factory.name()),
                factory,
            })
            .collect();
        CompositeFactory { parts }
    }

    /// The providers of the parts, the environment's own first.
    pub fn providers(&self) -> Vec<&'static str> {
        self.parts.iter().map(|p| p.factory.name()).collect()
    }

    /// The part each service runs on.
    fn service_parts(&self) -> BTreeMap<String, usize> {
        self.parts
            .iter()
            .enumerate()
            .flat_map(|(i, p)| p.services().into_iter().map(move |s| (s, i)))
            .collect()
    }

    /// The typed check of every part with its own provider's types, then the part's own
    /// check, each on its narrowed spec (what [`crate::ProviderRegistry::check`] runs for a
    /// composite).
    pub fn check_parts(&self, environment: &str) -> Result<()> {
        for part in &self.parts {
            part.factory
                .settings_types()
                .check(&part.spec, environment)?;
            part.factory.check(&part.spec, environment)?;
        }
        Ok(())
    }

    fn concat<T>(
        &self,
        environment: &str,
        each: impl Fn(&Part, &str) -> Result<Vec<T>>,
    ) -> Result<Vec<T>> {
        let mut out = vec![];
        for part in &self.parts {
            out.extend(each(part, environment)?);
        }
        Ok(out)
    }
}

impl ProviderFactory for CompositeFactory {
    /// The environment's own provider's name.
    fn name(&self) -> &'static str {
        self.parts[0].factory.name()
    }

    /// The environment's own provider's types (each part's are checked by
    /// [`CompositeFactory::check_parts`]).
    fn settings_types(&self) -> SettingsTypes {
        self.parts[0].factory.settings_types()
    }

    fn check(&self, _spec: &LoadedSpec, environment: &str) -> Result<()> {
        self.check_parts(environment)
    }

    fn warnings(&self, _spec: &LoadedSpec, environment: &str) -> Result<Vec<SpecWarning>> {
        self.concat(environment, |p, e| p.factory.warnings(&p.spec, e))
    }

    fn resources(&self, _spec: &LoadedSpec, environment: &str) -> Result<Vec<Resource>> {
        self.concat(environment, |p, e| p.factory.resources(&p.spec, e))
    }

    fn build(&self, _spec: &LoadedSpec, environment: &str) -> Result<DynProvider> {
        let mut parts = vec![];
        for part in &self.parts {
            parts.push((
                part.factory.build(&part.spec, environment)?,
                part.services(),
            ));
        }
        Ok(Arc::new(CompositeProvider::new(parts)))
    }

    fn probes(&self, _spec: &LoadedSpec, environment: &str) -> Result<Vec<DynProbe>> {
        self.concat(environment, |p, e| p.factory.probes(&p.spec, e))
    }

    /// The environment's own provider's store.
    fn secret_store(
        &self,
        _spec: &LoadedSpec,
        environment: &str,
    ) -> Result<Option<DynSecretStore>> {
        let own = &self.parts[0];
        own.factory.secret_store(&own.spec, environment)
    }

    /// A [`CompositeProvisioner`] over the parts whose narrowed spec asks a creation; a part
    /// that is asked one but creates nothing refuses it, naming what must exist.
    fn provisioner(&self, _spec: &LoadedSpec, environment: &str) -> Result<Option<DynProvisioner>> {
        let mut parts: Vec<Option<DynProvisioner>> = vec![];
        for part in &self.parts {
            let asked = part.spec.creations_asked(environment);
            if asked.is_empty() {
                parts.push(None);
                continue;
            }
            let p = part.factory.provisioner(&part.spec, environment)?;
            if p.is_none() && !part.spec.explicit_creations(environment).is_empty() {
                return Err(Error::not_supported(
                    part.factory.name(),
                    format!(
                        "{} creates nothing: {} must already exist (create them with the platform's own tooling and remove `create` from the spec)",
                        part.factory.name(),
                        asked.describe()
                    ),
                ));
            }
            parts.push(p);
        }
        if parts.iter().all(Option::is_none) {
            return Ok(None);
        }
        Ok(Some(Arc::new(CompositeProvisioner {
            parts,
            services: self.service_parts(),
        })))
    }

    /// A [`CompositeTeardown`] over every part's teardown, or `None` when no part deletes
    /// anything.
    fn teardown(&self, _spec: &LoadedSpec, environment: &str) -> Result<Option<DynTeardown>> {
        let mut parts = vec![];
        for part in &self.parts {
            parts.push((
                part.factory.name(),
                part.factory.teardown(&part.spec, environment)?,
            ));
        }
        if parts.iter().all(|(_, t)| t.is_none()) {
            return Ok(None);
        }
        Ok(Some(Arc::new(CompositeTeardown {
            parts,
            services: self.service_parts(),
        })))
    }

    fn run_steps(&self) -> Vec<Box<dyn Step>> {
        self.parts
            .iter()
            .flat_map(|p| p.factory.run_steps())
            .collect()
    }
}

/// What creates an environment's missing resources across providers: each part's
/// provisioner, its creations in turn (the environment's own provider's first, so its
/// datastores come before everything), each creation created by the part of the service it
/// belongs to.
#[derive(Debug)]
pub struct CompositeProvisioner {
    /// Per part (the environment's own first): its provisioner, when it is asked to create.
    parts: Vec<Option<DynProvisioner>>,
    services: BTreeMap<String, usize>,
}

impl CompositeProvisioner {
    fn part_for(&self, owner: &str) -> Result<&DynProvisioner> {
        let i = index_of_owner(&self.services, owner);
        self.parts
            .get(i)
            .and_then(Option::as_ref)
            .ok_or_else(|| Error::config(format!("nothing creates what {owner} asks")))
    }
}

#[async_trait]
impl Provisioner for CompositeProvisioner {
    async fn missing(&self) -> Result<Vec<Creation>> {
        let mut out = vec![];
        for p in self.parts.iter().flatten() {
            out.extend(p.missing().await?);
        }
        Ok(out)
    }

    async fn create(&self, creation: &CreationTarget) -> Result<String> {
        self.part_for(&creation.owner)?.create(creation).await
    }

    async fn ready(&self) -> Result<()> {
        for p in self.parts.iter().flatten() {
            p.ready().await?;
        }
        Ok(())
    }
}

/// Finds and deletes what an instance created across providers: each ledger entry by the
/// part of the service that owns it (`service NAME`), anything else by the environment's
/// own provider's teardown.
#[derive(Debug)]
pub struct CompositeTeardown {
    parts: Vec<(&'static str, Option<DynTeardown>)>,
    services: BTreeMap<String, usize>,
}

impl CompositeTeardown {
    fn part_for(&self, created: &Created) -> Result<&DynTeardown> {
        let (name, teardown) = &self.parts[index_of_owner(&self.services, &created.owner)];
        teardown.as_ref().ok_or_else(|| {
            Error::config(format!(
                "{}: provider `{name}` deletes nothing, so it must be deleted by hand",
                created.describe()
            ))
        })
    }
}

#[async_trait]
impl Teardown for CompositeTeardown {
    async fn find(&self, created: &Created) -> Result<Option<Found>> {
        self.part_for(created)?.find(created).await
    }

    async fn delete(&self, target: &DeletionTarget) -> Result<()> {
        self.part_for(target.created())?.delete(target).await
    }
}

/// The provider of an environment whose services run on several providers: every call
/// about a service goes to the provider it runs on (see the module documentation).
#[derive(Debug)]
pub struct CompositeProvider {
    /// The environment's own provider first.
    parts: Vec<DynProvider>,
    services: BTreeMap<String, usize>,
}

impl CompositeProvider {
    /// A composite of `parts` (the environment's own provider first), each with the
    /// services it runs.
    pub fn new(parts: Vec<(DynProvider, Vec<String>)>) -> Self {
        let mut services = BTreeMap::new();
        let mut providers = vec![];
        for (i, (provider, names)) in parts.into_iter().enumerate() {
            for n in names {
                services.insert(n, i);
            }
            providers.push(provider);
        }
        CompositeProvider {
            parts: providers,
            services,
        }
    }

    /// The provider `service` runs on (the environment's own for a name it does not know).
    fn part(&self, service: &str) -> &DynProvider {
        &self.parts[self.services.get(service).copied().unwrap_or(0)]
    }

    /// Whether every part has the capability `has` says.
    fn all(&self, has: impl Fn(&Capabilities<'_>) -> bool) -> bool {
        self.parts.iter().all(|p| has(&p.capabilities()))
    }
}

/// The rate at which a budget lets one service be polled (polls a second).
fn polls_per_second(b: &crate::cadence::ReadBudget) -> f64 {
    f64::from(b.reads)
        / b.per.as_secs_f64().max(f64::MIN_POSITIVE)
        / f64::from(b.reads_per_poll.max(1))
}

#[async_trait]
impl Provider for CompositeProvider {
    /// The environment's own provider's name.
    fn name(&self) -> &str {
        self.parts[0].name()
    }

    /// The most conservative of the parts: the longest poll interval, the smallest read
    /// budget; services in this process only when every part runs them so.
    fn pacing(&self) -> Pacing {
        let all: Vec<Pacing> = self.parts.iter().map(|p| p.pacing()).collect();
        let mut out = all[0];
        for p in &all[1..] {
            out.poll_interval = out.poll_interval.max(p.poll_interval);
            if polls_per_second(&p.read_budget) < polls_per_second(&out.read_budget) {
                out.read_budget = p.read_budget;
            }
            out.runs_services_in_process &= p.runs_services_in_process;
        }
        out
    }

    /// A capability only when every part has it (a call is answered by the part of its
    /// service); `environment_setup` when any part has it (each part that has it prepares
    /// the environment on its platform; the others have nothing to prepare).
    fn capabilities(&self) -> Capabilities<'_> {
        Capabilities {
            env: self
                .all(|c| c.env.is_some())
                .then_some(self as &dyn EnvVars),
            rollback: self
                .all(|c| c.rollback.is_some())
                .then_some(self as &dyn Rollback),
            logs: self.all(|c| c.logs.is_some()).then_some(self as &dyn Logs),
            cancel: self
                .all(|c| c.cancel.is_some())
                .then_some(self as &dyn Cancel),
            environment_setup: self
                .parts
                .iter()
                .any(|p| p.capabilities().environment_setup.is_some())
                .then_some(self as &dyn EnvironmentSetup),
        }
    }

    fn deploy_kinds(&self, service: &str) -> DeployKinds {
        self.part(service).deploy_kinds(service)
    }

    async fn locate(&self, environment: &str, service: &str) -> Result<ServiceHandle> {
        self.part(service).locate(environment, service).await
    }

    async fn live_state(&self, service: &ServiceHandle) -> Result<LiveState> {
        self.part(&service.name).live_state(service).await
    }

    async fn deploy(&self, service: &WriteTarget, request: &DeployRequest) -> Result<Deploy> {
        self.part(&service.handle().name)
            .deploy(service, request)
            .await
    }

    async fn deploy_status(&self, service: &ServiceHandle, deploy_id: &str) -> Result<Deploy> {
        self.part(&service.name)
            .deploy_status(service, deploy_id)
            .await
    }
}

#[async_trait]
impl EnvVars for CompositeProvider {
    async fn env_vars(&self, service: &ServiceHandle) -> Result<BTreeMap<String, SecretString>> {
        ProviderExt::env_vars(&**self.part(&service.name), service).await
    }

    async fn set_env_var(
        &self,
        service: &WriteTarget,
        key: &str,
        value: &SecretString,
    ) -> Result<()> {
        ProviderExt::set_env_var(&**self.part(&service.handle().name), service, key, value).await
    }

    async fn set_env_vars(
        &self,
        service: &WriteTarget,
        variables: &BTreeMap<String, SecretString>,
    ) -> Result<()> {
        ProviderExt::set_env_vars(&**self.part(&service.handle().name), service, variables).await
    }

    async fn delete_env_var(&self, service: &WriteTarget, key: &str) -> Result<()> {
        ProviderExt::delete_env_var(&**self.part(&service.handle().name), service, key).await
    }

    async fn snapshot_env(
        &self,
        service: &ServiceHandle,
        current: &BTreeMap<String, SecretString>,
        keys: &[String],
    ) -> Result<EnvSnapshot> {
        ProviderExt::snapshot_env(&**self.part(&service.name), service, current, keys).await
    }

    async fn restore_env(
        &self,
        target: &WriteTarget,
        snapshot: &EnvSnapshot,
    ) -> Result<EnvRestore> {
        ProviderExt::restore_env(&**self.part(&target.handle().name), target, snapshot).await
    }
}

#[async_trait]
impl Rollback for CompositeProvider {
    async fn rollback(&self, service: &WriteTarget) -> Result<Deploy> {
        ProviderExt::rollback(&**self.part(&service.handle().name), service).await
    }

    async fn rollback_to(&self, service: &WriteTarget, deploy_id: &str) -> Result<Deploy> {
        ProviderExt::rollback_to(&**self.part(&service.handle().name), service, deploy_id).await
    }
}

#[async_trait]
impl Logs for CompositeProvider {
    async fn recent_logs(
        &self,
        service: &ServiceHandle,
        deploy_id: Option<&str>,
        lines: usize,
    ) -> Result<Vec<String>> {
        ProviderExt::recent_logs(&**self.part(&service.name), service, deploy_id, lines).await
    }

    async fn logs(&self, service: &ServiceHandle, query: &LogQuery) -> Result<Vec<LogLine>> {
        ProviderExt::logs(&**self.part(&service.name), service, query).await
    }
}

#[async_trait]
impl Cancel for CompositeProvider {
    async fn cancel_deploy(&self, service: &WriteTarget, deploy_id: &str) -> Result<Deploy> {
        ProviderExt::cancel_deploy(&**self.part(&service.handle().name), service, deploy_id).await
    }
}

#[async_trait]
impl EnvironmentSetup for CompositeProvider {
    /// What each part that sets environments up would do, joined; `None` when none would.
    async fn environment_setup(&self, environment: &str) -> Result<Option<String>> {
        let mut done = vec![];
        for p in &self.parts {
            if let Some(d) = ProviderExt::environment_setup(&**p, environment).await? {
                done.push(d);
            }
        }
        Ok((!done.is_empty()).then(|| done.join("; ")))
    }

    async fn prepare_environment(&self, environment: &EnvironmentTarget) -> Result<Option<String>> {
        let mut done = vec![];
        for p in &self.parts {
            if let Some(d) = ProviderExt::prepare_environment(&**p, environment).await? {
                done.push(d);
            }
        }
        Ok((!done.is_empty()).then(|| done.join("; ")))
    }
}
