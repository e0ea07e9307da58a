//! The top of the spec: project, environments, services. Variables, databases and probes
//! have their own files.

use std::collections::BTreeMap;
use std::time::Duration;

use schemars::JsonSchema;
use serde::Deserialize;

use super::databases::Database;
use super::probes::ProbeSpec;
use super::vars::{SecretSource, Var};

/// A whole `staging.toml`.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Spec {
    /// The project.
    pub project: Project,
    /// The environments, by name (`staging`, `production`).
    pub environments: BTreeMap<String, Environment>,
    /// The services, by name (`web`, `worker`).
    #[serde(default)]
    pub services: BTreeMap<String, Service>,
    /// Environment variables given to the services, with their sources and rules.
    #[serde(default)]
    pub vars: BTreeMap<String, Var>,
    /// Databases and their migrations.
    #[serde(default)]
    pub databases: BTreeMap<String, Database>,
    /// Smoke probes, run in order of declaration where they depend on each other.
    #[serde(default)]
    pub probes: Vec<ProbeSpec>,
}

/// The `[project]` table.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Project {
    /// The project's name.
    pub name: String,
    /// Where evidence of runs is written, relative to the spec file.
    #[serde(default = "default_evidence_dir")]
    pub evidence_dir: String,
    /// How old the source environment's evidence may be for `staging promote` to accept it
    /// (`24h`, `3d`).
    #[serde(default = "default_evidence_max_age", with = "humantime_serde")]
    #[schemars(with = "String")]
    pub evidence_max_age: Duration,
    /// Keep evidence in a Postgres table instead of `evidence_dir`, for CI runners that
    /// share no disk: where the database URL is read from (`{ env =
    /// "EVIDENCE_DATABASE_URL" }`, or a dotenv file, a file, a command). The URL is a
    /// secret; it is never written into the spec.
    #[serde(default)]
    pub evidence_postgres_url: Option<SecretSource>,
    /// The table of the Postgres evidence store (`name` or `schema.name`; default
    /// `staging_evidence`). The tool creates it.
    #[serde(default)]
    pub evidence_table: Option<String>,
}

fn default_evidence_dir() -> String {
    ".staging/evidence".to_owned()
}

fn default_evidence_max_age() -> Duration {
    Duration::from_secs(24 * 60 * 60)
}

/// One environment (`[environments.staging]`).
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Environment {
    /// The provider that runs its services (`local`, `render`, `aws`, `netlify`).
    pub provider: String,
    /// A protected environment (production) is only changed through promotion.
    #[serde(default)]
    pub protected: bool,
    /// The environment this one promotes to (`staging` promotes to `production`).
    #[serde(default)]
    pub promotes_to: Option<String>,
    /// Allow `staging up` on this environment although it is protected. By default a
    /// protected environment is changed only by `staging promote`, after the environment
    /// that promotes to it passed for the same commit.
    #[serde(default)]
    pub allow_direct_up: bool,
    /// Where this environment's secrets are read from, unless a variable says otherwise.
    #[serde(default)]
    pub secrets: Option<SecretSource>,
    /// How long a deploy may take to go live.
    #[serde(default = "default_deploy_timeout", with = "humantime_serde")]
    #[schemars(with = "String")]
    pub deploy_timeout: Duration,
    /// Provider settings for the whole environment (an account, a cluster, a region).
    #[serde(default)]
    #[schemars(with = "BTreeMap<String, serde_json::Value>")]
    pub settings: toml::Table,
}

fn serves_http() -> bool {
    true
}

fn default_deploy_timeout() -> Duration {
    Duration::from_secs(600)
}

/// One service (`[services.web]`).
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Service {
    /// The path that answers 2xx when the service is healthy (`/up`, `/api/health`).
    #[serde(default)]
    pub health_path: Option<String>,
    /// `false` for a service that serves no HTTP (a queue worker, Sidekiq, Celery): it has
    /// no health path and no URL; it is live when the platform says so (a Render background
    /// worker), or on the local provider when its process has stayed up for the `settle`
    /// time (default 3s). `staging validate` lists such services.
    #[serde(default = "serves_http")]
    pub http: bool,
    /// Provider settings for this service in every environment.
    #[serde(default)]
    #[schemars(with = "BTreeMap<String, serde_json::Value>")]
    pub settings: toml::Table,
    /// Per-environment settings, merged key by key over `settings`.
    #[serde(default)]
    #[schemars(with = "BTreeMap<String, BTreeMap<String, serde_json::Value>>")]
    pub overrides: BTreeMap<String, toml::Table>,
}

impl Service {
    /// The settings of this service in `environment`: `settings` with that environment's
    /// overrides applied key by key.
    pub fn settings_for(&self, environment: &str) -> toml::Table {
        let mut merged = self.settings.clone();
        if let Some(over) = self.overrides.get(environment) {
            for (k, v) in over {
                merged.insert(k.clone(), v.clone());
            }
        }
        merged
    }

    /// Where in the spec the settings of this service (named `name`) in `environment` come
    /// from, for error locations: `services.NAME.overrides.ENV` when that environment's
    /// overrides set `field` (with no field: when they set anything), else
    /// `services.NAME.settings`.
    pub fn settings_path(&self, name: &str, environment: &str, field: Option<&str>) -> String {
        let overridden = self
            .overrides
            .get(environment)
            .is_some_and(|o| match field {
                Some(f) => o.contains_key(f),
                None => !o.is_empty(),
            });
        if overridden {
            format!("services.{name}.overrides.{environment}")
        } else {
            format!("services.{name}.settings")
        }
    }
}

impl Spec {
    /// The environment named `name`, or a config error that lists the declared ones.
    pub fn environment(&self, name: &str) -> crate::Result<&Environment> {
        self.environments.get(name).ok_or_else(|| {
            crate::Error::config(format!(
                "no environment `{name}` in the spec (declared: {})",
                self.environments
                    .keys()
                    .cloned()
                    .collect::<Vec<_>>()
                    .join(", ")
            ))
        })
    }

    /// The environment that promotes to `name`, if any.
    pub fn promoted_from(&self, name: &str) -> Option<&str> {
        self.environments
            .iter()
            .find(|(_, e)| e.promotes_to.as_deref() == Some(name))
            .map(|(n, _)| n.as_str())
    }
}
