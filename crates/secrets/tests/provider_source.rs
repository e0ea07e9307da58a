//! `source = { provider = "KEY" }`: a variable read from the secret store the environment's
//! provider offers (a Render datastore's connection string, an AWS Secrets Manager secret).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use secrecy::{ExposeSecret, SecretString};
use staging_core::spec::{LoadOptions, LoadedSpec};
use staging_core::{DynSecretStore, Error, Result, SecretStore, async_trait};

/// The store a provider would offer: a few keys in memory.
#[derive(Debug, Default)]
struct PlatformStore {
    values: Mutex<BTreeMap<String, String>>,
}

#[async_trait]
impl SecretStore for PlatformStore {
    fn describe(&self) -> String {
        "platform".into()
    }
    fn writable(&self) -> bool {
        false
    }
    async fn get(&self, key: &str) -> Result<Option<SecretString>> {
        Ok(self
            .values
            .lock()
            .unwrap()
            .get(key)
            .map(|v| SecretString::from(v.clone())))
    }
    async fn put(&self, _key: &str, _value: &SecretString) -> Result<()> {
        Err(Error::not_supported("platform", "writing"))
    }
    async fn list(&self, _prefix: Option<&str>) -> Result<Vec<String>> {
        Ok(self.values.lock().unwrap().keys().cloned().collect())
    }
}

const SPEC: &str = r#"
[project]
name = "shop"

[environments.staging]
provider = "render"

[environments.dev]
provider = "local"

[services.web]
settings = {}

[vars.DATABASE_URL]
secret = true
source = { provider = "postgres:shop-db-staging" }
"#;

fn spec() -> LoadedSpec {
    LoadedSpec::parse(
        "staging.toml",
        SPEC.to_owned(),
        LoadOptions::new(&["render", "local"]),
    )
    .unwrap()
}

#[tokio::test]
async fn a_provider_source_reads_the_key_from_the_environments_provider_store() {
    let store = Arc::new(PlatformStore::default());
    store.values.lock().unwrap().insert(
        "postgres:shop-db-staging".into(),
        "postgres://app:pw-7c1e@db.internal/shop".into(),
    );
    let offered: DynSecretStore = store;
    let backends = staging_core::SecretBackends {
        provider_stores: Some(Arc::new(move |spec: &LoadedSpec, env: &str| {
            Ok((spec.spec.environment(env)?.provider == "render").then(|| offered.clone()))
        })),
        ..Default::default()
    };

    let resolved = staging_secrets::resolve_vars(&backends, &spec(), "staging", None)
        .await
        .unwrap();
    assert_eq!(
        resolved.values["DATABASE_URL"].expose_secret(),
        "postgres://app:pw-7c1e@db.internal/shop"
    );
    assert_eq!(
        resolved.sources["DATABASE_URL"],
        "platform:postgres:shop-db-staging"
    );

    // The local provider offers no store: a spec error that says so, at the provider line.
    let err = staging_secrets::check(&backends, &spec(), "dev", None)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::ConfigInvalid { .. }), "{err:?}");
    let text = err.to_string();
    assert!(text.starts_with("staging.toml:9:12: "), "{text}");
    assert!(
        text.contains("`local`, which offers no secret store"),
        "{text}"
    );
}
