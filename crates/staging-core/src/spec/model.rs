//! The top of the spec: project, environments, services. Variables, databases and probes
//! have their own files.

use std::collections::BTreeMap;
use std::time::Duration;

use schemars::JsonSchema;
use serde::Deserialize;

use super::create::{Create, Datastore};
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
    /// The platform's datastores (a Render Postgres, a Render Key Value), by name: what
    /// `staging up` creates when missing and `create` says so.
    #[serde(default)]
    pub datastores: BTreeMap<String, Datastore>,
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
    #[serde(default = "default_evidence_max_age", with = "super::duration")]
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
    /// The provider that runs its services (`local`, `render`, `aws`, `netlify`). May be left
    /// out when `like` names an environment: then it is that environment's.
    #[serde(default)]
    pub provider: String,
    /// A template of short-lived instances (a preview per pull request): run only with an
    /// instance (`staging up --env preview --instance pr-42`), whose name `${instance}`
    /// fills in the names of what it creates; every resource an instance creates is
    /// recorded in its ledger, and `staging down` deletes exactly those. Never protected,
    /// never promoted to or from.
    #[serde(default)]
    pub ephemeral: bool,
    /// The environment an ephemeral one mirrors (`staging`): its provider when this one
    /// names none, its variables' values and sources where this one gives none, and the
    /// definition of every service and datastore that an instance creates (as `create = {
    /// like = "staging" }`), with this environment's `overrides` on top. Only on an
    /// ephemeral environment.
    #[serde(default)]
    pub like: Option<String>,
    /// How long an instance lives after its last `up` (`72h`): `staging gc` tears down the
    /// instances older than that. Only on an ephemeral environment.
    #[serde(default, with = "super::duration::option")]
    #[schemars(with = "Option<String>")]
    pub ttl: Option<Duration>,
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
    /// Allow `staging up` and `promote` to create the missing services and datastores that
    /// `create` asks for in this environment although it is protected. Without it, a run
    /// that would create anything here is refused before any request.
    #[serde(default)]
    pub allow_create: bool,
    /// Where this environment's secrets are read from, unless a variable says otherwise.
    #[serde(default)]
    pub secrets: Option<SecretSource>,
    /// How long a deploy may take to go live.
    #[serde(default = "default_deploy_timeout", with = "super::duration")]
    #[schemars(with = "String")]
    pub deploy_timeout: Duration,
    /// Provider settings for the whole environment (an account, a cluster, a region). The
    /// provider's own type reads them, with errors at their place:
    /// [`super::LoadedSpec::environment_settings`].
    #[serde(default)]
    #[schemars(with = "BTreeMap<String, serde_json::Value>")]
    pub settings: toml::Table,
    /// Settings of the other providers this environment's services run on
    /// (`[environments.ENV.provider_settings.netlify]` when a service says `provider =
    /// "netlify"`): for each such provider what `settings` is for the environment's own. Only
    /// for a provider some service names.
    #[serde(default)]
    #[schemars(with = "BTreeMap<String, BTreeMap<String, serde_json::Value>>")]
    pub provider_settings: BTreeMap<String, toml::Table>,
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
    /// The provider this service runs on in every environment (`netlify` for a frontend of
    /// an API on Render), when it is not the environment's own: its settings for an
    /// environment are `[environments.ENV.provider_settings.PROVIDER]`. Default: the
    /// environment's provider.
    #[serde(default)]
    pub provider: Option<String>,
    /// The path that answers 2xx when the service is healthy (`/up`, `/api/health`).
    #[serde(default)]
    pub health_path: Option<String>,
    /// `false` for a service that serves no HTTP (a queue worker, Sidekiq, Celery): it has
    /// no health path and no URL; it is live when the platform says so (a Render background
    /// worker), or on the local provider when its process has stayed up for the `settle`
    /// time (default 3s). `staging validate` lists such services.
    #[serde(default = "serves_http")]
    pub http: bool,
    /// Provider settings for this service in every environment. The provider's own type
    /// reads them merged with the environment's `overrides`:
    /// [`super::LoadedSpec::service_settings`].
    #[serde(default)]
    #[schemars(with = "BTreeMap<String, serde_json::Value>")]
    pub settings: toml::Table,
    /// Per-environment settings, merged key by key over `settings` (tables recursively).
    #[serde(default)]
    #[schemars(with = "BTreeMap<String, BTreeMap<String, serde_json::Value>>")]
    pub overrides: BTreeMap<String, toml::Table>,
    /// The environments this service is deliberately shared with (`["production"]`): the
    /// same platform service in both. Without it, two environments whose settings name the
    /// same service are refused before any write; with it, every write to the service is
    /// a write to those environments too, and is refused from an environment that is not
    /// protected when one of them is.
    #[serde(default)]
    pub shared_with: Vec<String>,
    /// Create the service when it is missing from an environment: `true` (from the
    /// provider settings), or `{ like = "production" }` (production's definition, with this
    /// environment's settings as overrides; never production's variable values).
    #[serde(default)]
    pub create: Option<Create>,
}

impl Spec {
    /// Provider settings are free-form tables the providers type themselves; a string there
    /// that holds a pipeline reference (AWS `image = "repo/app:${commit}"`) is handed on as
    /// spec text (`Template::to_source`), which the provider reads as a template.
    pub(crate) fn settings_templates_to_source(&mut self) {
        let tables = self
            .environments
            .values_mut()
            .flat_map(|e| std::iter::once(&mut e.settings).chain(e.provider_settings.values_mut()))
            .chain(
                self.services
                    .values_mut()
                    .flat_map(|s| std::iter::once(&mut s.settings).chain(s.overrides.values_mut())),
            );
        for t in tables {
            for (_, v) in t.iter_mut() {
                templates_to_source(v);
            }
        }
    }

    /// The environment named `name`, or a config error that lists the declared ones.
    pub fn environment(&self, name: &str) -> crate::Result<&Environment> {
        self.environments.get(name).ok_or_else(|| {
            let hint = super::settings::closest(name, self.environments.keys().map(String::as_str))
                .map(|c| format!("; did you mean `{c}`?"))
                .unwrap_or_default();
            crate::Error::config(format!(
                "no environment `{name}` in the spec{hint} (declared: {})",
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

fn templates_to_source(v: &mut toml::Value) {
    if let Some(t) = super::Template::from_toml(v) {
        if !v.is_str() {
            *v = toml::Value::String(t.to_source());
        }
        return;
    }
    match v {
        toml::Value::Array(a) => a.iter_mut().for_each(templates_to_source),
        toml::Value::Table(t) => t.iter_mut().for_each(|(_, v)| templates_to_source(v)),
        _ => {}
    }
}
