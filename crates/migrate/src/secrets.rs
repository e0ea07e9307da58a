//! Reading database URLs from the spec's secret sources (`staging-secrets`).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use async_trait::async_trait;
use secrecy::SecretString;
use staging_core::spec::LoadedSpec;
use staging_core::{Error, Result, SecretBackends};

use crate::env::EnvMigrations;
use crate::guard::UrlLookup;

/// A [`UrlLookup`] that resolves the other environment's variables from its declared
/// sources, as `staging secrets check --env` would.
#[derive(Debug, Clone)]
pub struct SecretsUrlLookup {
    backends: SecretBackends,
    spec: Arc<LoadedSpec>,
    commit: Option<String>,
}

impl SecretsUrlLookup {
    /// Look variables up in `spec`'s sources (and `backends`: a provider's store, database
    /// branches); `commit` fills `${commit}` in values.
    pub fn new(backends: SecretBackends, spec: Arc<LoadedSpec>, commit: Option<String>) -> Self {
        SecretsUrlLookup {
            backends,
            spec,
            commit,
        }
    }
}

/// `spec` with only the variables the databases' URLs need: their `url_var`s and what
/// their values embed (`${vars.NAME}`), so reading another environment's database URLs reads
/// none of its other secrets (no production `op read` of an API key for a staging run).
pub fn database_url_vars(spec: &LoadedSpec) -> LoadedSpec {
    let mut wanted: BTreeSet<String> = spec
        .spec
        .databases
        .values()
        .map(|d| d.url_var.clone())
        .collect();
    loop {
        let before = wanted.len();
        for name in wanted.clone() {
            let Some(var) = spec.spec.vars.get(&name) else {
                continue;
            };
            for t in var.value.iter().chain(var.values.values()) {
                for n in t.names() {
                    if let Some(v) = n.strip_prefix("vars.") {
                        wanted.insert(v.to_owned());
                    }
                }
            }
        }
        if wanted.len() == before {
            break;
        }
    }
    let mut narrowed = spec.clone();
    narrowed.spec.vars.retain(|name, _| wanted.contains(name));
    narrowed
}

#[async_trait]
impl UrlLookup for SecretsUrlLookup {
    async fn values(&self, environment: &str) -> Result<BTreeMap<String, SecretString>> {
        let narrowed = database_url_vars(&self.spec);
        Ok(staging_secrets::resolve_vars(
            &self.backends,
            &narrowed,
            environment,
            self.commit.as_deref(),
        )
        .await?
        .values)
    }

    async fn lookup(&self, environment: &str, var: &str) -> Result<SecretString> {
        let mut resolved = staging_secrets::resolve_vars(
            &self.backends,
            &self.spec,
            environment,
            self.commit.as_deref(),
        )
        .await?;
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

#[async_trait]
impl staging_core::isolation::EnvValues for SecretsUrlLookup {
    async fn values(&self, environment: &str) -> Result<BTreeMap<String, SecretString>> {
        UrlLookup::values(self, environment).await
    }
}

impl EnvMigrations {
    /// The databases of `environment`, their URLs resolved from the spec's secret sources,
    /// and the source environment's URLs read the same way for the staging-before-production
    /// rule. What the CLI's `staging migrate status|apply --env ENV` builds.
    pub async fn from_secrets(
        backends: &SecretBackends,
        spec: Arc<LoadedSpec>,
        environment: &str,
        commit: Option<&str>,
    ) -> Result<Self> {
        let resolved = staging_secrets::resolve_vars(backends, &spec, environment, commit).await?;
        let lookup =
            SecretsUrlLookup::new(backends.clone(), spec.clone(), commit.map(str::to_owned));
        Ok(EnvMigrations::new(spec, environment, resolved.values)?
            .with_unreadable(resolved.errors, &resolved.unreachable)
            .with_url_lookup(Arc::new(lookup)))
    }
}
