//! Render as a source of secrets: a service's env vars, and the connection strings of
//! Render Postgres and Key Value instances (`DATABASE_URL` for migrations from CI).

use secrecy::SecretString;
use staging_core::{EnvVars, Error, Result, SecretStore, WriteTarget, async_trait};

use crate::model::{DatastoreItem, EnvVar, KeyValueConnectionInfo, PostgresConnectionInfo};
use crate::provider::RenderProvider;

/// The env vars of one Render service as a [`SecretStore`].
#[derive(Debug, Clone)]
pub struct RenderEnvStore {
    provider: RenderProvider,
    service: WriteTarget,
}

/// Which datastore a connection string belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Datastore {
    /// Render Postgres (`/postgres`, ids `dpg-...`).
    Postgres,
    /// Render Key Value, Redis-compatible (`/key-value`, ids `red-...`).
    KeyValue,
}

impl Datastore {
    fn segment(self) -> &'static str {
        match self {
            Datastore::Postgres => "postgres",
            Datastore::KeyValue => "key-value",
        }
    }
    fn key_prefix(self) -> &'static str {
        match self {
            Datastore::Postgres => "postgres",
            Datastore::KeyValue => "key_value",
        }
    }
    fn id_prefix(self) -> &'static str {
        match self {
            Datastore::Postgres => "dpg-",
            Datastore::KeyValue => "red-",
        }
    }
}

/// Connection strings of a datastore: the internal one (inside Render's private network)
/// and the external one (from CI or a laptop).
#[derive(Debug)]
#[non_exhaustive]
pub struct Connection {
    /// Reachable from services in the same region and workspace.
    pub internal_url: SecretString,
    /// Reachable from outside Render.
    pub external_url: SecretString,
}

impl RenderProvider {
    /// The env vars of `service` as a secret store; writable, so it takes the write target
    /// the run's isolation check issued ([`staging_core::WriteBoundary::target`]).
    pub fn env_store(&self, service: WriteTarget) -> RenderEnvStore {
        RenderEnvStore {
            provider: self.clone(),
            service,
        }
    }

    /// Render's datastores (of the configured workspace) as a read-only secret store.
    pub fn datastore_store(&self) -> RenderDatastoreStore {
        RenderDatastoreStore {
            provider: self.clone(),
        }
    }

    /// The id of a datastore given by id or by exact name.
    pub async fn datastore_id(&self, kind: Datastore, name_or_id: &str) -> Result<String> {
        if name_or_id.starts_with(kind.id_prefix()) {
            return Ok(name_or_id.to_owned());
        }
        let mut query = self.owner_query();
        query.push(("name", name_or_id.to_owned()));
        let items: Vec<DatastoreItem> = self
            .client()
            .list_all(
                &[kind.segment()],
                &query,
                &format!("{} named `{name_or_id}`", kind.segment()),
            )
            .await?;
        let ids: Vec<String> = items
            .into_iter()
            .map(|i| i.postgres)
            .filter(|n| n.name == name_or_id)
            .map(|n| n.id)
            .collect();
        match ids.as_slice() {
            [id] => Ok(id.clone()),
            [] => Err(Error::not_found(format!(
                "{} named `{name_or_id}`",
                kind.segment()
            ))),
            many => Err(Error::config(format!(
                "{} datastores are named `{name_or_id}` ({}); use the id",
                many.len(),
                many.join(", ")
            ))),
        }
    }

    /// The connection strings of a Postgres or Key Value instance, by id or name.
    pub async fn connection(&self, kind: Datastore, name_or_id: &str) -> Result<Connection> {
        let id = self.datastore_id(kind, name_or_id).await?;
        let what = format!("connection info of {} {name_or_id}", kind.segment());
        let segments = [kind.segment(), id.as_str(), "connection-info"];
        Ok(match kind {
            Datastore::Postgres => {
                let c: PostgresConnectionInfo = self.client().get(&segments, &[], &what).await?;
                Connection {
                    internal_url: c.internal_connection_string,
                    external_url: c.external_connection_string,
                }
            }
            Datastore::KeyValue => {
                let c: KeyValueConnectionInfo = self.client().get(&segments, &[], &what).await?;
                Connection {
                    internal_url: c.internal_connection_string,
                    external_url: c.external_connection_string,
                }
            }
        })
    }

    async fn datastore_names(&self, kind: Datastore) -> Result<Vec<String>> {
        let items: Vec<DatastoreItem> = self
            .client()
            .list_all(
                &[kind.segment()],
                &self.owner_query(),
                &format!("{} list", kind.segment()),
            )
            .await?;
        Ok(items.into_iter().map(|i| i.postgres.name).collect())
    }
}

#[async_trait]
impl SecretStore for RenderEnvStore {
    fn describe(&self) -> String {
        format!("render:env:{}", self.service.name)
    }

    fn writable(&self) -> bool {
        true
    }

    async fn get(&self, key: &str) -> Result<Option<SecretString>> {
        let got: Result<EnvVar> = self
            .provider
            .client()
            .get(
                &["services", &self.service.id, "env-vars", key],
                &[],
                &format!("env var {key} of {}", self.service.name),
            )
            .await;
        match got {
            Ok(v) => Ok(Some(v.value)),
            Err(Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(e),
        }
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

/// Connection strings of Render Postgres and Key Value instances as a read-only
/// [`SecretStore`].
///
/// Keys: `postgres:NAME` (external URL, what migrations from CI need),
/// `postgres:NAME:internal`, `key_value:NAME`, `key_value:NAME:internal`; `NAME` is the
/// datastore's name on Render or its id.
#[derive(Debug, Clone)]
pub struct RenderDatastoreStore {
    provider: RenderProvider,
}

fn parse_key(key: &str) -> Option<(Datastore, &str, bool)> {
    let (kind, rest) = key.split_once(':')?;
    let kind = match kind {
        "postgres" => Datastore::Postgres,
        "key_value" => Datastore::KeyValue,
        _ => return None,
    };
    let (name, internal) = match rest.rsplit_once(':') {
        Some((name, "internal")) => (name, true),
        Some((name, "external")) => (name, false),
        _ => (rest, false),
    };
    (!name.is_empty()).then_some((kind, name, internal))
}

#[async_trait]
impl SecretStore for RenderDatastoreStore {
    fn describe(&self) -> String {
        "render:datastores".to_owned()
    }

    fn writable(&self) -> bool {
        false
    }

    async fn get(&self, key: &str) -> Result<Option<SecretString>> {
        let (kind, name, internal) = parse_key(key).ok_or_else(|| {
            Error::config(format!(
                "`{key}` is not a Render datastore key; write `postgres:NAME`, `key_value:NAME` (add `:internal` for the private-network URL)"
            ))
        })?;
        match self.provider.connection(kind, name).await {
            Ok(c) => Ok(Some(if internal {
                c.internal_url
            } else {
                c.external_url
            })),
            Err(Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    async fn put(&self, _key: &str, _value: &SecretString) -> Result<()> {
        Err(Error::not_supported(
            "render",
            "writing a datastore's connection string",
        ))
    }

    async fn list(&self, prefix: Option<&str>) -> Result<Vec<String>> {
        let mut keys = vec![];
        for kind in [Datastore::Postgres, Datastore::KeyValue] {
            for name in self.provider.datastore_names(kind).await? {
                keys.push(format!("{}:{name}", kind.key_prefix()));
                keys.push(format!("{}:{name}:internal", kind.key_prefix()));
            }
        }
        keys.retain(|k| prefix.is_none_or(|p| k.starts_with(p)));
        Ok(keys)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn datastore_keys_parse() {
        assert_eq!(
            parse_key("postgres:app-db"),
            Some((Datastore::Postgres, "app-db", false))
        );
        assert_eq!(
            parse_key("postgres:app-db:internal"),
            Some((Datastore::Postgres, "app-db", true))
        );
        assert_eq!(
            parse_key("key_value:cache:external"),
            Some((Datastore::KeyValue, "cache", false))
        );
        assert_eq!(parse_key("redis:cache"), None);
        assert_eq!(parse_key("postgres:"), None);
    }
}
