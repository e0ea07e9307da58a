//! A project's env vars of the provider's target as a [`SecretStore`].

use secrecy::SecretString;
use staging_core::{EnvVars, Result, SecretStore, WriteTarget, async_trait};

use crate::provider::VercelProvider;

/// The env vars of one project in the provider's target, read and written one key at a
/// time (writes are `encrypted` or `sensitive`, never `plain`; other targets untouched).
#[derive(Debug, Clone)]
pub struct VercelEnvStore {
    provider: VercelProvider,
    service: WriteTarget,
}

impl VercelProvider {
    /// The env vars of `service` (a located project) as a secret store.
    pub fn env_store(&self, service: WriteTarget) -> VercelEnvStore {
        VercelEnvStore {
            provider: self.clone(),
            service,
        }
    }
}

#[async_trait]
impl SecretStore for VercelEnvStore {
    fn describe(&self) -> String {
        format!("vercel:env:{}", self.service.name)
    }

    fn writable(&self) -> bool {
        true
    }

    async fn get(&self, key: &str) -> Result<Option<SecretString>> {
        Ok(self.provider.env_vars(&self.service).await?.remove(key))
    }

    async fn put(&self, key: &str, value: &SecretString) -> Result<()> {
        self.provider.set_env_var(&self.service, key, value).await
    }

    async fn list(&self, prefix: Option<&str>) -> Result<Vec<String>> {
        let vars = self.provider.env_vars(&self.service).await?;
        Ok(vars
            .into_keys()
            .filter(|k| prefix.is_none_or(|p| k.starts_with(p)))
            .collect())
    }
}
