//! [`AwsFactory`] and the other entry points the CLI uses: everything from a spec and an
//! environment name.

use std::collections::BTreeMap;

use staging_core::spec::{LoadedSpec, SettingsTypes};
use staging_core::{DynProbe, DynProvider, ProviderFactory, Result};

use crate::context::AwsContext;
use crate::settings::{AwsEnvironmentSettings, EcsServiceConfig, EcsServiceSettings};

/// The `aws` provider factory: ECS services, configured by the spec.
#[derive(Debug, Default, Clone, Copy)]
pub struct AwsFactory;

/// The environment's and every service's settings, checked.
pub fn settings_from_spec(
    spec: &LoadedSpec,
    environment: &str,
) -> Result<(AwsEnvironmentSettings, BTreeMap<String, EcsServiceSettings>)> {
    let env = AwsEnvironmentSettings::from_spec(spec, environment)?;
    let mut services = BTreeMap::new();
    for name in spec.spec.services.keys() {
        services.insert(
            name.clone(),
            EcsServiceSettings::from_spec(spec, environment, &env, name)?,
        );
    }
    Ok((env, services))
}

/// The AWS context of an environment: its region and profile over the standard chain.
pub fn context_from_spec(spec: &LoadedSpec, environment: &str) -> Result<AwsContext> {
    let env = AwsEnvironmentSettings::from_spec(spec, environment)?;
    Ok(AwsContext::from_env(env.region, env.profile))
}

/// The readiness probes of an `aws` environment (ALB target health, SES, ACM, Route53), as
/// the environment's settings declare them. Nothing is called until a probe runs.
pub fn build_probes(spec: &LoadedSpec, environment: &str) -> Result<Vec<DynProbe>> {
    let (env, services) = settings_from_spec(spec, environment)?;
    let ctx = AwsContext::from_env(env.region.clone(), env.profile.clone());
    Ok(crate::probes::probes_from_settings(&ctx, &env, &services))
}

/// Where the secrets of `environment` are named in Secrets Manager: its `secrets_prefix`,
/// or `PROJECT/ENVIRONMENT/` when none is set (so two environments never share a name).
pub fn secrets_prefix(spec: &LoadedSpec, environment: &str, env: &AwsEnvironmentSettings) -> String {
    env.secrets_prefix
        .clone()
        .unwrap_or_else(|| format!("{}/{environment}/", spec.spec.project.name))
}

/// The environment's Secrets Manager store: the secret of variable `NAME` is
/// [`secrets_prefix`] + `NAME`. What `source = { provider = "..." }` reads and where the
/// ECS provider keeps secret variables.
#[cfg(feature = "secretsmanager")]
pub fn secret_store(spec: &LoadedSpec, environment: &str) -> Result<crate::SecretsManagerStore> {
    let env = AwsEnvironmentSettings::from_spec(spec, environment)?;
    let prefix = secrets_prefix(spec, environment, &env);
    Ok(crate::SecretsManagerStore::new(
        AwsContext::from_env(env.region, env.profile),
        prefix,
    ))
}

impl ProviderFactory for AwsFactory {
    fn name(&self) -> &'static str {
        crate::error::PROVIDER
    }

    fn settings_types(&self) -> SettingsTypes {
        SettingsTypes::of::<AwsEnvironmentSettings, EcsServiceConfig>()
    }

    fn check(&self, spec: &LoadedSpec, environment: &str) -> Result<()> {
        settings_from_spec(spec, environment).map(drop)
    }

    fn probes(&self, spec: &LoadedSpec, environment: &str) -> Result<Vec<DynProbe>> {
        build_probes(spec, environment)
    }

    /// Secrets Manager, under the environment's `secrets_prefix`, for
    /// `source = { provider = "..." }`.
    #[cfg(feature = "secretsmanager")]
    fn secret_store(
        &self,
        spec: &LoadedSpec,
        environment: &str,
    ) -> Result<Option<staging_core::DynSecretStore>> {
        Ok(Some(std::sync::Arc::new(secret_store(spec, environment)?)))
    }

    #[cfg(feature = "ecs")]
    fn build(&self, spec: &LoadedSpec, environment: &str) -> Result<DynProvider> {
        let (env, services) = settings_from_spec(spec, environment)?;
        let store = secret_store(spec, environment)?;
        let ctx = AwsContext::from_env(env.region, env.profile);
        Ok(std::sync::Arc::new(
            crate::EcsProvider::new(ctx, services)
                .with_secrets(store, spec.spec.secret_var_names()),
        ))
    }

    #[cfg(not(feature = "ecs"))]
    fn build(&self, _spec: &LoadedSpec, _environment: &str) -> Result<DynProvider> {
        Err(staging_core::Error::not_supported(
            crate::error::PROVIDER,
            "ECS services (built without the `ecs` feature)",
        ))
    }
}
