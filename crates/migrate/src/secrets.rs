//! Reading database URLs from the spec's secret sources (`staging-secrets`).

use std::sync::Arc;

use async_trait::async_trait;
use secrecy::SecretString;
use staging_core::spec::LoadedSpec;
use staging_core::{Error, Result};

use crate::env::EnvMigrations;
use crate::guard::UrlLookup;

/// A [`UrlLookup`] that resolves the other environment's variables from its declared
/// sources, as `staging secrets check --env` would.
#[derive(Debug, Clone)]
pub struct SecretsUrlLookup {
    spec: Arc<LoadedSpec>,
    commit: Option<String>,
}

impl SecretsUrlLookup {
    /// Look variables up in `spec`'s sources; `commit` fills `${commit}` in values.
    pub fn new(spec: Arc<LoadedSpec>, commit: Option<String>) -> Self {
        SecretsUrlLookup { spec, commit }
    }
}

#[async_trait]
impl UrlLookup for SecretsUrlLookup {
    async fn lookup(&self, environment: &str, var: &str) -> Result<SecretString> {
        let mut resolved =
            staging_secrets::resolve_vars(&self.spec, environment, self.commit.as_deref()).await?;
        if let Some(value) = resolved.values.remove(var) {
            return Ok(value);
        }
        let why = resolved
            .errors
            .get(var)
            .cloned()
            .unwrap_or_else(|| "it has no value there".to_owned());
        Err(Error::failed(format!(
            "cannot read `{var}` of environment `{environment}` to check it was migrated first: {why}"
        )))
    }
}

impl EnvMigrations {
    /// The databases of `environment`, their URLs resolved from the spec's secret sources,
    /// and the source environment's URLs read the same way for the staging-before-production
    /// rule. What the CLI's `staging migrate status|apply --env ENV` builds.
    pub async fn from_secrets(
        spec: Arc<LoadedSpec>,
        environment: &str,
        commit: Option<&str>,
    ) -> Result<Self> {
        let resolved = staging_secrets::resolve_vars(&spec, environment, commit).await?;
        let lookup = SecretsUrlLookup::new(spec.clone(), commit.map(str::to_owned));
        Ok(EnvMigrations::new(spec, environment, resolved.values)?
            .with_url_lookup(Arc::new(lookup)))
    }
}
