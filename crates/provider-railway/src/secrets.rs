//! Railway as a source of secrets: a service's variables in the provider's environment,
//! and so the connection strings of a Railway Postgres (`DATABASE_PUBLIC_URL`,
//! `DATABASE_URL`) without copying them anywhere.

use secrecy::SecretString;
use staging_core::{EnvVars, Error, Provider, Result, SecretStore, WriteTarget, async_trait};

use crate::provider::{EnvironmentPlan, RailwayProvider};

/// The variables of one Railway service instance as a writable [`SecretStore`] (writes go
/// through `variableCollectionUpsert`, `skipDeploys`).
#[derive(Debug, Clone)]
pub struct RailwayVariableStore {
    provider: RailwayProvider,
    service: WriteTarget,
}

/// Variables of any service of the provider's environment, as a read-only [`SecretStore`]:
/// what `source = { provider = "service:Postgres" }` reads.
///
/// Keys: `service:NAME` is the database URL of service `NAME` — `DATABASE_PUBLIC_URL`
/// (reachable from CI, where migrations and probes run), else `DATABASE_URL`;
/// `service:NAME:VAR` is variable `VAR` of that service (`service:Postgres:DATABASE_URL`
/// for the private-network URL). `NAME` is the service's name on Railway.
#[derive(Debug, Clone)]
pub struct RailwayServiceVariablesStore {
    provider: RailwayProvider,
    environment: String,
}

impl RailwayProvider {
    /// The variables of `service` as a secret store.
    pub fn variable_store(&self, service: WriteTarget) -> RailwayVariableStore {
        RailwayVariableStore {
            provider: self.clone(),
            service,
        }
    }

    /// The variables of the services of `environment` (the spec's name) as a read-only
    /// secret store.
    pub fn service_variables_store(&self, environment: &str) -> RailwayServiceVariablesStore {
        RailwayServiceVariablesStore {
            provider: self.clone(),
            environment: environment.to_owned(),
        }
    }
}

#[async_trait]
impl SecretStore for RailwayVariableStore {
    fn describe(&self) -> String {
        format!("railway:variables:{}", self.service.name)
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

/// `service:NAME` or `service:NAME:VAR`.
fn parse_key(key: &str) -> Option<(&str, Option<&str>)> {
    let rest = key.strip_prefix("service:")?;
    let (name, var) = match rest.split_once(':') {
        Some((name, var)) => (name, Some(var)),
        None => (rest, None),
    };
    (!name.is_empty() && var != Some("")).then_some((name, var))
}

#[async_trait]
impl SecretStore for RailwayServiceVariablesStore {
    fn describe(&self) -> String {
        "railway:services".to_owned()
    }

    fn writable(&self) -> bool {
        false
    }

    async fn get(&self, key: &str) -> Result<Option<SecretString>> {
        let (name, var) = parse_key(key).ok_or_else(|| {
            Error::config(format!(
                "`{key}` is not a Railway key; write `service:NAME` (the database URL of service NAME) or `service:NAME:VARIABLE`"
            ))
        })?;
        // An environment that does not exist yet is an error saying so, not a missing value:
        // its services' variables exist once it is created, and the secrets step runs before
        // the deploy step that creates it.
        if let EnvironmentPlan::Create { name, from, .. } =
            self.provider.environment_plan(&self.environment).await?
        {
            return Err(Error::failed(format!(
                "`{key}`: Railway environment `{name}` does not exist yet, so its services have no variables to read; `staging up` creates it from `{from}` only after reading variables: create it once (on Railway, or with `staging up` while no variable reads `service:…`), then run again"
            )));
        }
        let service = match self.provider.locate(&self.environment, name).await {
            Ok(s) => s,
            Err(Error::NotFound { .. }) => return Ok(None),
            Err(e) => return Err(e),
        };
        let mut vars = self.provider.env_vars(&service).await?;
        Ok(match var {
            Some(var) => vars.remove(var),
            None => vars
                .remove("DATABASE_PUBLIC_URL")
                .or_else(|| vars.remove("DATABASE_URL")),
        })
    }

    async fn put(&self, _key: &str, _value: &SecretString) -> Result<()> {
        Err(Error::not_supported(
            "railway",
            "writing another service's variables through a secret source",
        ))
    }

    async fn list(&self, prefix: Option<&str>) -> Result<Vec<String>> {
        let (_, project) = self.provider.scope(&self.environment).await?;
        let mut keys: Vec<String> = project
            .services
            .iter()
            .map(|(name, _)| format!("service:{name}"))
            .collect();
        keys.sort();
        keys.retain(|k| prefix.is_none_or(|p| k.starts_with(p)));
        Ok(keys)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn service_keys_parse() {
        assert_eq!(parse_key("service:Postgres"), Some(("Postgres", None)));
        assert_eq!(
            parse_key("service:Postgres:DATABASE_URL"),
            Some(("Postgres", Some("DATABASE_URL")))
        );
        assert_eq!(parse_key("service:"), None);
        assert_eq!(parse_key("service:Postgres:"), None);
        assert_eq!(parse_key("postgres:x"), None);
    }
}
