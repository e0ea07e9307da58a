//! The one place providers are registered: each behind its `providers-*` feature.

#[cfg(any(feature = "providers-neon", feature = "providers-supabase"))]
use std::sync::Arc;

use std::collections::BTreeMap;

use staging_core::isolation::Resource;
use staging_core::pipeline::Step;
use staging_core::spec::{BranchSpec, LoadedSpec, SettingsTypes};
use staging_core::{
    DynDatabaseBranch, DynProbe, DynProvider, DynProvisioner, DynSecretStore, Error, Provider,
    ProviderFactory, ProviderRegistry, Result,
};

/// Every provider this build knows (its `providers-*` features), registered once.
pub fn registry() -> ProviderRegistry {
    let registry = ProviderRegistry::new();
    #[cfg(feature = "providers-local")]
    let registry = registry.register(staging_provider_local::LocalFactory);
    #[cfg(feature = "providers-render")]
    let registry = registry.register(staging_provider_render::RenderFactory::new());
    #[cfg(feature = "providers-netlify")]
    let registry = registry.register(staging_provider_netlify::NetlifyFactory);
    #[cfg(feature = "providers-aws")]
    let registry = registry.register(staging_provider_aws::AwsFactory);
    #[cfg(feature = "providers-railway")]
    let registry = registry.register(staging_provider_railway::RailwayFactory::new());
    #[cfg(feature = "providers-vercel")]
    let registry = registry.register(staging_provider_vercel::VercelFactory::new());
    registry
}

/// The error for a branch whose provider this build was compiled without.
#[allow(dead_code)]
fn not_built(provider: &str) -> Error {
    Error::config(format!(
        "this build of `staging` has no {provider} support: enable the `providers-{provider}` feature of the `staging` crate"
    ))
}

/// The branch of a database (Neon, Supabase), built from the environment's credentials
/// (`NEON_API_KEY`, `SUPABASE_ACCESS_TOKEN`).
pub fn database_branch(b: &BranchSpec) -> Result<DynDatabaseBranch> {
    match b {
        #[cfg(feature = "providers-neon")]
        BranchSpec::Neon(n) => Ok(Arc::new(
            staging_provider_neon::NeonBuilder::from_env().build(n.clone())?,
        )),
        #[cfg(not(feature = "providers-neon"))]
        BranchSpec::Neon(_) => Err(not_built("neon")),
        #[cfg(feature = "providers-supabase")]
        BranchSpec::Supabase(s) => Ok(Arc::new(
            staging_provider_supabase::SupabaseBuilder::from_env().build(s.clone())?,
        )),
        #[cfg(not(feature = "providers-supabase"))]
        BranchSpec::Supabase(_) => Err(not_built("supabase")),
    }
}

/// The secret store a database branch offers: a Supabase branch's `anon_key`,
/// `service_role_key` and `database_url`; a Neon branch offers none.
pub fn branch_secret_store(b: &BranchSpec) -> Result<Option<DynSecretStore>> {
    match b {
        BranchSpec::Neon(_) => Ok(None),
        #[cfg(feature = "providers-supabase")]
        BranchSpec::Supabase(s) => Ok(Some(Arc::new(
            staging_provider_supabase::SupabaseSecrets::new(Arc::new(
                staging_provider_supabase::SupabaseBuilder::from_env().build(s.clone())?,
            )),
        ))),
        #[cfg(not(feature = "providers-supabase"))]
        BranchSpec::Supabase(_) => Err(not_built("supabase")),
    }
}

/// The secret sources beyond the spec's own stores for a session over `registry`: the
/// store each environment's provider offers, and the database branches of this build.
pub(crate) fn backends(registry: &ProviderRegistry) -> staging_core::SecretBackends {
    let registry = registry.clone();
    staging_core::SecretBackends {
        provider_stores: Some(std::sync::Arc::new(move |spec: &LoadedSpec, env: &str| {
            registry.secret_store(spec, env)
        })),
        database_branches: Some(std::sync::Arc::new(database_branch)),
        branch_secret_stores: Some(std::sync::Arc::new(branch_secret_store)),
    }
}

/// The registry a session runs on: `registry` with the factory of each provider `spec`'s
/// environments name wrapped in a [`SharedFactory`], so that every build of an
/// environment's provider in the session — preflight, the run's steps, the isolation
/// check, `status`, `logs`, `rollback` — is one provider while any of them holds it.
///
/// Wrapped by provider, for every provider an environment or a service runs on: an
/// environment whose services run on several providers gets its composite from the shared
/// registry's `factory_for`, over these shared parts, so each part is built once per
/// environment too (and the composite only dispatches).
pub(crate) fn shared(registry: ProviderRegistry, spec: &LoadedSpec) -> Result<ProviderRegistry> {
    let mut wrapped = std::collections::BTreeSet::new();
    let mut shared = registry.clone();
    for env in spec.spec.environments.keys() {
        registry.factory_for(spec, env)?;
        for name in spec.providers_used(env)? {
            if let Some(factory) = registry.factory(&name)
                && wrapped.insert(factory.name())
            {
                shared = shared.register(SharedFactory::new(factory));
            }
        }
    }
    Ok(shared)
}

/// A provider factory whose [`ProviderFactory::build`] gives the provider already built for
/// the same spec and environment while anything (a run's context, a `status`, the
/// preflight of the run about to start) still holds it, and builds it (once, under a lock)
/// only when nothing does. Held weakly: dropping the last holder drops the provider, which
/// stops the services a local provider runs in this process, exactly as before.
#[derive(Debug)]
pub(crate) struct SharedFactory {
    inner: std::sync::Arc<dyn ProviderFactory>,
    /// Per (effective spec hash, environment): the provider built last, if still held (an
    /// instance's spec differs from the template's by its effective hash).
    built: std::sync::Mutex<BTreeMap<(String, String), std::sync::Weak<dyn Provider>>>,
}

impl SharedFactory {
    fn new(inner: std::sync::Arc<dyn ProviderFactory>) -> Self {
        SharedFactory {
            inner,
            built: std::sync::Mutex::new(BTreeMap::new()),
        }
    }
}

impl ProviderFactory for SharedFactory {
    fn name(&self) -> &'static str {
        self.inner.name()
    }

    fn settings_types(&self) -> SettingsTypes {
        self.inner.settings_types()
    }

    fn check(&self, spec: &LoadedSpec, environment: &str) -> Result<()> {
        self.inner.check(spec, environment)
    }

    fn warnings(
        &self,
        spec: &LoadedSpec,
        environment: &str,
    ) -> Result<Vec<staging_core::SpecWarning>> {
        self.inner.warnings(spec, environment)
    }

    fn resources(&self, spec: &LoadedSpec, environment: &str) -> Result<Vec<Resource>> {
        self.inner.resources(spec, environment)
    }

    fn build(&self, spec: &LoadedSpec, environment: &str) -> Result<DynProvider> {
        let key = (spec.effective_hash.clone(), environment.to_owned());
        // Held across the build: two steps asking at once get one provider.
        let mut built = self
            .built
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(provider) = built.get(&key).and_then(std::sync::Weak::upgrade) {
            return Ok(provider);
        }
        let provider = self.inner.build(spec, environment)?;
        built.insert(key, std::sync::Arc::downgrade(&provider));
        Ok(provider)
    }

    fn probes(&self, spec: &LoadedSpec, environment: &str) -> Result<Vec<DynProbe>> {
        self.inner.probes(spec, environment)
    }

    fn secret_store(&self, spec: &LoadedSpec, environment: &str) -> Result<Option<DynSecretStore>> {
        self.inner.secret_store(spec, environment)
    }

    fn provisioner(&self, spec: &LoadedSpec, environment: &str) -> Result<Option<DynProvisioner>> {
        self.inner.provisioner(spec, environment)
    }

    fn teardown(
        &self,
        spec: &LoadedSpec,
        environment: &str,
    ) -> Result<Option<staging_core::DynTeardown>> {
        self.inner.teardown(spec, environment)
    }

    fn run_steps(&self) -> Vec<Box<dyn Step>> {
        self.inner.run_steps()
    }
}
