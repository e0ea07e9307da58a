//! The providers a run can use, by name.

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::sync::Arc;

use crate::composite::CompositeFactory;
use crate::error::Result;
use crate::isolation::Resource;
use crate::probe::DynProbe;
use crate::provider::DynProvider;
use crate::secret::DynSecretStore;
use crate::spec::{LoadedSpec, SettingsTypes};

/// Builds a provider for one environment of a spec. One factory per provider crate; the CLI
/// registers them in a [`ProviderRegistry`].
pub trait ProviderFactory: Debug + Send + Sync + 'static {
    /// The name used in `environments.*.provider`.
    fn name(&self) -> &'static str;

    /// The types of this provider's environment and service settings. Core deserializes
    /// `environments.ENV.settings` and each service's settings (with `overrides.ENV` merged
    /// onto them) into these types before [`ProviderFactory::check`] runs, so an unknown or
    /// misspelt key is an error at its place for every provider, and the JSON Schema
    /// describes them.
    fn settings_types(&self) -> SettingsTypes;

    /// What the types cannot say: ids of the right shape, keys that exclude each other,
    /// values that must agree. Runs after the typed check of
    /// [`ProviderFactory::settings_types`]; read settings with
    /// [`LoadedSpec::environment_settings`] and [`LoadedSpec::service_settings`], whose
    /// errors point at the key as written.
    fn check(&self, spec: &LoadedSpec, environment: &str) -> Result<()>;

    /// What is valid but risky in `environment`'s settings, found offline, each at its place
    /// ([`SpecWarning`]): a queue's store that evicts keys, say. `validate` prints them
    /// (`--strict` makes them errors) and every run's validate step reports them. Default:
    /// none.
    fn warnings(&self, spec: &LoadedSpec, environment: &str) -> Result<Vec<SpecWarning>> {
        let _ = (spec, environment);
        Ok(vec![])
    }

    /// What the services of `environment` are on the platform, as the effective settings
    /// name them (after `overrides.ENV`), offline: a Render service's id or owner + name, a
    /// Netlify site + deploy context, an ECS region + cluster + service, a fixed local
    /// port. Before any write, core compares these between environments and refuses a run
    /// whose services are also another environment's ([`crate::isolation`]). One
    /// [`Resource`] per service, owned by `service NAME`; a part the settings leave to the
    /// platform or the credentials is `None` (it matches any value).
    fn resources(&self, spec: &LoadedSpec, environment: &str) -> Result<Vec<Resource>>;

    /// Build the provider for `environment`.
    fn build(&self, spec: &LoadedSpec, environment: &str) -> Result<DynProvider>;

    /// The platform checks this provider runs with the spec's probes in the smoke step
    /// (load balancer target health, certificate, sender identities...), as the
    /// environment's settings declare them. Providers without such checks return none.
    fn probes(&self, spec: &LoadedSpec, environment: &str) -> Result<Vec<DynProbe>> {
        let _ = (spec, environment);
        Ok(vec![])
    }

    /// The secret store this provider offers for `environment` (what a variable's
    /// `source = { provider = "KEY" }` reads), or `None` when it offers none.
    fn secret_store(&self, spec: &LoadedSpec, environment: &str) -> Result<Option<DynSecretStore>> {
        let _ = (spec, environment);
        Ok(None)
    }

    /// What creates the services and datastores the spec asks for (`create = ...`) when
    /// they are missing from `environment` ([`crate::provision`]), or `None` when this
    /// provider creates nothing (the default; AWS, whose clusters and networks belong to
    /// Terraform or CloudFormation): then a spec that asks creation there is refused, naming
    /// what must exist.
    fn provisioner(
        &self,
        spec: &LoadedSpec,
        environment: &str,
    ) -> Result<Option<crate::provision::DynProvisioner>> {
        let _ = (spec, environment);
        Ok(None)
    }

    /// What finds and deletes the resources this provider's provisioner created for an
    /// instance of an ephemeral `environment` ([`crate::teardown`]), or `None` when the
    /// provider deletes nothing: then `staging down` refuses an instance that recorded any
    /// of its resources, naming them.
    fn teardown(
        &self,
        spec: &LoadedSpec,
        environment: &str,
    ) -> Result<Option<crate::teardown::DynTeardown>> {
        let _ = (spec, environment);
        Ok(None)
    }

    /// The steps this provider adds to the pipeline of `up` and `promote` after the run's
    /// checks passed (after reverify, before the automatic rollback and the evidence), for a
    /// spec with an environment on this provider: Vercel's staged production flow promotes
    /// the deployment here. Each such step is a no-op for environments of other providers.
    /// None by default.
    fn run_steps(&self) -> Vec<Box<dyn crate::pipeline::Step>> {
        vec![]
    }
}

/// The registered provider factories.
#[derive(Debug, Default, Clone)]
pub struct ProviderRegistry {
    factories: BTreeMap<&'static str, Arc<dyn ProviderFactory>>,
}

impl ProviderRegistry {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    /// Add a factory.
    pub fn register(mut self, factory: impl ProviderFactory) -> Self {
        self.factories.insert(factory.name(), Arc::new(factory));
        self
    }

    /// The names of the registered providers.
    pub fn names(&self) -> Vec<&'static str> {
        self.factories.keys().copied().collect()
    }

    /// Check the provider settings of `environment`: the typed check every provider gets
    /// (unknown keys, types, missing fields, at their place, with a suggestion), then the
    /// provider's own [`ProviderFactory::check`], then that the spec asks no creation in a
    /// protected environment that does not allow it
    /// ([`LoadedSpec::check_creation_allowed`]).
    ///
    /// An environment whose services run on several providers checks each provider's part
    /// with its own types and check, on the spec narrowed for it
    /// ([`crate::composite::CompositeFactory::check_parts`]).
    pub fn check(&self, spec: &LoadedSpec, environment: &str) -> Result<()> {
        match self.resolve(spec, environment)? {
            Resolved::Plain(factory) => {
                factory.settings_types().check(spec, environment)?;
                factory.check(spec, environment)?;
            }
            Resolved::Composite(composite) => composite.check_parts(environment)?,
        }
        spec.check_creation_allowed(environment)
    }

    /// The warnings of `environment`'s provider ([`ProviderFactory::warnings`]), after its
    /// settings passed [`ProviderRegistry::check`].
    pub fn warnings(&self, spec: &LoadedSpec, environment: &str) -> Result<Vec<SpecWarning>> {
        self.factory_for(spec, environment)?
            .warnings(spec, environment)
    }

    /// The JSON Schema of the spec format, with each registered provider's settings (what
    /// `docs/staging.schema.json` holds).
    pub fn json_schema(&self) -> serde_json::Value {
        let types: Vec<(&str, SettingsTypes)> = self
            .factories
            .iter()
            .map(|(name, f)| (*name, f.settings_types()))
            .collect();
        crate::spec::json_schema_with(&types)
    }

    /// The steps the providers of `spec`'s environments and services add after the run's
    /// checks ([`ProviderFactory::run_steps`]), each provider's once, in the order of the
    /// providers' names.
    pub fn run_steps(&self, spec: &LoadedSpec) -> Vec<Box<dyn crate::pipeline::Step>> {
        let used: std::collections::BTreeSet<&str> = spec
            .spec
            .environments
            .values()
            .map(|e| e.provider.as_str())
            .chain(
                spec.spec
                    .services
                    .values()
                    .filter_map(|s| s.provider.as_deref()),
            )
            .collect();
        used.into_iter()
            .filter_map(|name| self.factories.get(name))
            .flat_map(|f| f.run_steps())
            .collect()
    }

    /// The secret store the provider of `environment` offers, if any.
    pub fn secret_store(
        &self,
        spec: &LoadedSpec,
        environment: &str,
    ) -> Result<Option<DynSecretStore>> {
        self.factory_for(spec, environment)?
            .secret_store(spec, environment)
    }

    /// The registered factory named `name` (`render`), if any.
    pub fn factory(&self, name: &str) -> Option<Arc<dyn ProviderFactory>> {
        self.factories.get(name).cloned()
    }

    /// The factory of `environment`: its provider's own when every service runs on it;
    /// otherwise a [`CompositeFactory`] over the providers its services run on, each with the
    /// spec narrowed for it ([`crate::composite`]).
    pub fn factory_for(
        &self,
        spec: &LoadedSpec,
        environment: &str,
    ) -> Result<Arc<dyn ProviderFactory>> {
        Ok(match self.resolve(spec, environment)? {
            Resolved::Plain(f) => f,
            Resolved::Composite(c) => c,
        })
    }

    fn resolve(&self, spec: &LoadedSpec, environment: &str) -> Result<Resolved> {
        let env = spec.spec.environment(environment)?;
        let known = |name: &str, at: String, whose: String| {
            self.factories.get(name).cloned().ok_or_else(|| {
                spec.error_at(
                    &at,
                    format!(
                        "unknown provider `{name}`{whose}; expected one of: {}",
                        self.names().join(", ")
                    ),
                )
            })
        };
        let own = known(
            &env.provider,
            format!("environments.{environment}.provider"),
            String::new(),
        )?;
        let used = spec.providers_used(environment)?;
        if used.len() == 1 {
            return Ok(Resolved::Plain(own));
        }
        let mut factories = vec![own];
        for name in &used[1..] {
            let service = spec
                .spec
                .services
                .iter()
                .find(|(_, s)| s.provider.as_deref() == Some(name.as_str()))
                .map(|(n, _)| n.clone())
                .unwrap_or_default();
            factories.push(known(
                name,
                format!("services.{service}.provider"),
                format!(" for service `{service}`"),
            )?);
        }
        Ok(Resolved::Composite(Arc::new(CompositeFactory::new(
            spec,
            environment,
            factories,
        ))))
    }
}

/// The factory of one environment.
enum Resolved {
    Plain(Arc<dyn ProviderFactory>),
    Composite(Arc<CompositeFactory>),
}

/// A setting that is valid but risky: where it is written (`staging.toml:12:5`) and why it
/// matters, with what to do.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct SpecWarning {
    /// `file:line:col` of the setting.
    pub at: String,
    /// What is risky, why, and what to set instead.
    pub message: String,
}

impl std::fmt::Display for SpecWarning {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.at, self.message)
    }
}
