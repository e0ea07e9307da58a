//! The one place providers are registered: each behind its `providers-*` feature.

#[cfg(any(feature = "providers-neon", feature = "providers-supabase"))]
use std::sync::Arc;

use staging_core::spec::{BranchSpec, LoadedSpec};
use staging_core::{DynDatabaseBranch, DynSecretStore, Error, ProviderRegistry, Result};

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
