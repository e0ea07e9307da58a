//! [`AwsFactory`] and the other entry points the CLI uses: everything from a spec and an
//! environment name.

use std::collections::BTreeMap;

use staging_core::isolation::Resource;
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

/// Where the ECS provider writes the value of a secret variable of `environment` before
/// referencing it from a task definition's `secrets`: the environment's `secrets_prefix`,
/// or `PROJECT/ENVIRONMENT/` when none is set (so two environments never write one
/// secret); `secret_ids` names one variable's secret explicitly.
pub fn ecs_secrets_prefix(
    spec: &LoadedSpec,
    environment: &str,
    env: &AwsEnvironmentSettings,
) -> String {
    env.secrets_prefix
        .clone()
        .unwrap_or_else(|| format!("{}/{environment}/", spec.spec.project.name))
}

/// The environment's Secrets Manager store (names are `secrets_prefix` + the variable
/// name): what `source = { provider = "NAME" }` reads.
#[cfg(feature = "secretsmanager")]
pub fn secret_store(spec: &LoadedSpec, environment: &str) -> Result<crate::SecretsManagerStore> {
    let env = AwsEnvironmentSettings::from_spec(spec, environment)?;
    let prefix = env.secrets_prefix.clone().unwrap_or_default();
    Ok(crate::SecretsManagerStore::new(
        AwsContext::from_env(env.region, env.profile),
        prefix,
    ))
}

/// Where the ECS provider keeps secret variables of `environment`: [`ecs_secrets_prefix`]
/// + the name, or the variable's entry in `secret_ids`.
#[cfg(feature = "ecs")]
pub fn ecs_secret_store(
    spec: &LoadedSpec,
    environment: &str,
) -> Result<crate::SecretsManagerStore> {
    let env = AwsEnvironmentSettings::from_spec(spec, environment)?;
    let prefix = ecs_secrets_prefix(spec, environment, &env);
    Ok(
        crate::SecretsManagerStore::new(AwsContext::from_env(env.region, env.profile), prefix)
            .with_explicit_ids(env.secret_ids),
    )
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

    /// An ECS service by profile, region, cluster and name. The account is the
    /// credentials', not the spec's: two environments with different named `profile`s (an
    /// account each) and the same names are not the same offline, and are compared by
    /// platform id (the service ARN, which holds the account) where one set of credentials
    /// reads both.
    fn resources(&self, spec: &LoadedSpec, environment: &str) -> Result<Vec<Resource>> {
        let (env, services) = settings_from_spec(spec, environment)?;
        let mut out = vec![];
        if !staging_core::secretness::secret_vars(&spec.spec, environment).is_empty() {
            // Where the values of secret variables are written for task definitions.
            out.push(Resource::new(
                "secrets manager prefix",
                "the secret variables",
                [
                    ("profile", env.profile.clone()),
                    ("region", env.region.clone()),
                    ("prefix", Some(ecs_secrets_prefix(spec, environment, &env))),
                ],
            ));
        }
        out.extend(services.into_iter().map(|(name, s)| {
            Resource::new(
                "ecs service",
                format!("service {name}"),
                [
                    ("profile", env.profile.clone()),
                    ("region", env.region.clone()),
                    ("cluster", Some(s.cluster)),
                    ("service", Some(s.service)),
                ],
            )
        }));
        Ok(out)
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
        let store = ecs_secret_store(spec, environment)?;
        let ctx = AwsContext::from_env(env.region, env.profile);
        Ok(std::sync::Arc::new(
            crate::EcsProvider::new(ctx, services).with_secrets(
                store,
                staging_core::secretness::secret_vars(&spec.spec, environment),
            ),
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
