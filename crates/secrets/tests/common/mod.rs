//! Helpers shared by the integration tests: a spec in a temporary directory and a provider
//! double that keeps env vars in memory.
#![allow(dead_code, unreachable_pub)]

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, Mutex};

use secrecy::{ExposeSecret, SecretString};
use staging_core::provider::{
    Capabilities, Deploy, DeployRequest, EnvVars, LiveState, Provider, ServiceHandle,
};
use staging_core::spec::{LoadOptions, LoadedSpec};
use staging_core::{DynProvider, Error, Result, async_trait};

/// A value no output may ever contain.
pub const CANARY: &str = "canary-9f8e7d6c5b4a39281706f5e4d3c2b1a0ZZ";

pub fn secret(v: &str) -> SecretString {
    SecretString::from(v.to_owned())
}

/// Write `files` into a new temporary directory, then load `staging.toml` from it.
pub fn spec_in(files: &[(&str, &str)]) -> (tempfile::TempDir, LoadedSpec) {
    let dir = tempfile::tempdir().unwrap();
    for (name, content) in files {
        write(dir.path(), name, content);
    }
    let spec = LoadedSpec::load(
        dir.path().join("staging.toml"),
        LoadOptions::new(&["local"]),
    )
    .unwrap();
    (dir, spec)
}

pub fn write(dir: &Path, name: &str, content: &str) {
    let path = dir.join(name);
    if let Some(p) = path.parent() {
        std::fs::create_dir_all(p).unwrap();
    }
    std::fs::write(path, content).unwrap();
}

/// The head of every test spec: a staging and a protected production, both reading their
/// secrets from a dotenv file.
pub const HEAD: &str = r#"
[project]
name = "shop"

[environments.staging]
provider = "local"
promotes_to = "production"
secrets = { dotenv = ".env.staging" }

[environments.production]
provider = "local"
protected = true
secrets = { dotenv = ".env.production" }

[services.web]
[services.worker]
"#;

/// An in-memory provider: env vars per service id; records each `set_env_var`.
#[derive(Debug, Default)]
pub struct EnvProvider {
    pub vars: Mutex<BTreeMap<String, BTreeMap<String, SecretString>>>,
    pub sets: Mutex<Vec<(String, String)>>,
    pub fail_key: Option<String>,
}

impl EnvProvider {
    pub fn with(service_vars: &[(&str, &[(&str, &str)])]) -> Self {
        let p = EnvProvider::default();
        {
            let mut vars = p.vars.lock().unwrap();
            for (svc, kv) in service_vars {
                let m = vars.entry(format!("id-{svc}")).or_default();
                for (k, v) in kv.iter() {
                    m.insert(k.to_string(), secret(v));
                }
            }
        }
        p
    }

    pub fn value(&self, service: &str, key: &str) -> Option<String> {
        self.vars
            .lock()
            .unwrap()
            .get(&format!("id-{service}"))?
            .get(key)
            .map(|v| v.expose_secret().to_owned())
    }

    pub fn dyn_(self) -> (Arc<EnvProvider>, DynProvider) {
        let a = Arc::new(self);
        (a.clone(), a)
    }
}

#[async_trait]
impl Provider for EnvProvider {
    fn name(&self) -> &str {
        "double"
    }
    fn capabilities(&self) -> Capabilities<'_> {
        Capabilities {
            env: Some(self),
            ..Capabilities::none()
        }
    }
    fn deploy_kinds(&self, _service: &str) -> staging_core::DeployKinds {
        staging_core::DeployKinds::default()
    }

    async fn locate(&self, _environment: &str, service: &str) -> Result<ServiceHandle> {
        Ok(ServiceHandle {
            name: service.into(),
            environment: "staging".into(),
            id: format!("id-{service}"),
            identity: staging_core::Identity::new(
                "test service",
                [("id", format!("id-{service}"))],
            ),
        })
    }

    async fn live_state(&self, _s: &ServiceHandle) -> Result<LiveState> {
        Err(Error::not_supported("double", "live_state"))
    }

    async fn deploy(&self, _s: &staging_core::WriteTarget, _r: &DeployRequest) -> Result<Deploy> {
        Err(Error::not_supported("double", "deploy"))
    }

    async fn deploy_status(&self, _s: &ServiceHandle, _id: &str) -> Result<Deploy> {
        Err(Error::not_supported("double", "deploy_status"))
    }
}

#[async_trait]
impl EnvVars for EnvProvider {
    async fn env_vars(&self, s: &ServiceHandle) -> Result<BTreeMap<String, SecretString>> {
        Ok(self
            .vars
            .lock()
            .unwrap()
            .get(&s.id)
            .cloned()
            .unwrap_or_default())
    }

    async fn set_env_var(
        &self,
        s: &staging_core::WriteTarget,
        key: &str,
        value: &SecretString,
    ) -> Result<()> {
        if self.fail_key.as_deref() == Some(key) {
            return Err(Error::failed(format!(
                "refused to set {key} (sent {})",
                value.expose_secret()
            )));
        }
        self.sets
            .lock()
            .unwrap()
            .push((s.name.clone(), key.to_owned()));
        self.vars
            .lock()
            .unwrap()
            .entry(s.id.clone())
            .or_default()
            .insert(key.to_owned(), value.clone());
        Ok(())
    }

    async fn delete_env_var(&self, s: &staging_core::WriteTarget, key: &str) -> Result<()> {
        self.vars
            .lock()
            .unwrap()
            .entry(s.id.clone())
            .or_default()
            .remove(key);
        Ok(())
    }
}
