//! `create = ...` on a service or datastore, `[datastores.NAME]`, and what the spec asks to
//! create in one environment ([`LoadedSpec::creations_asked`]).

use std::collections::BTreeMap;
use std::fmt;

use schemars::JsonSchema;
use serde::Deserialize;
use serde::de::{self, Deserializer, MapAccess, Visitor};

use super::LoadedSpec;
use crate::error::{Error, Result};

/// `create = true`, `create = false`, or `create = { like = "production" }`: whether a
/// service or datastore missing from an environment is created there by `staging up`, and
/// whether its definition is copied from another environment's resource.
///
/// With `like = "production"` the resource is created in every environment but the one it
/// copies (production's own resource must exist; it is only read); without `like`, the
/// provider settings say what to create, in every environment. A protected environment
/// creates only when it says `allow_create = true`. Nothing is ever deleted or replaced.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Create {
    /// Whether missing resources are created at all.
    pub enabled: bool,
    /// The environment whose resource is copied (its type, plan, region, build and start
    /// commands...; never its environment variable values or secrets).
    pub like: Option<String>,
}

impl Create {
    /// Whether this asks for creation in `environment`.
    pub fn applies_to(&self, environment: &str) -> bool {
        self.enabled && self.like.as_deref() != Some(environment)
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateTable {
    like: Option<String>,
}

impl<'de> Deserialize<'de> for Create {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> std::result::Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Create;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("`true`, `false` or a table `{ like = \"ENVIRONMENT\" }`")
            }
            fn visit_bool<E: de::Error>(self, enabled: bool) -> std::result::Result<Create, E> {
                Ok(Create {
                    enabled,
                    like: None,
                })
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> std::result::Result<Create, A::Error> {
                let t = CreateTable::deserialize(de::value::MapAccessDeserializer::new(map))?;
                Ok(Create {
                    enabled: true,
                    like: t.like,
                })
            }
        }
        deserializer.deserialize_any(V)
    }
}

impl JsonSchema for Create {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Create".into()
    }
    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "description": "`true`, or `{ like = \"ENVIRONMENT\" }` to copy that environment's resource (never its variable values).",
            "anyOf": [
                { "type": "boolean" },
                {
                    "type": "object",
                    "properties": { "like": { "type": "string" } },
                    "additionalProperties": false
                }
            ]
        })
    }
}

/// A datastore of the platform (`[datastores.db]`: a Render Postgres, a Render Key Value):
/// what `staging up` creates when it is missing and `create` says so. Its provider settings
/// (kind, name, plan, region, version...) are the provider's own type, read like a
/// service's ([`LoadedSpec::datastore_settings`]).
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Datastore {
    /// Whether it is created when missing, and from which environment's definition.
    #[serde(default)]
    pub create: Option<Create>,
    /// Provider settings in every environment.
    #[serde(default)]
    #[schemars(with = "BTreeMap<String, serde_json::Value>")]
    pub settings: toml::Table,
    /// Per-environment settings, merged key by key over `settings`.
    #[serde(default)]
    #[schemars(with = "BTreeMap<String, BTreeMap<String, serde_json::Value>>")]
    pub overrides: BTreeMap<String, toml::Table>,
}

/// What the spec asks a provider to create in one environment when missing.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CreationsAsked {
    /// Services with `create` for this environment, with the environment they copy.
    pub services: BTreeMap<String, Option<String>>,
    /// Datastores with `create` for this environment, with the environment they copy.
    pub datastores: BTreeMap<String, Option<String>>,
}

impl CreationsAsked {
    /// Whether nothing is asked.
    pub fn is_empty(&self) -> bool {
        self.services.is_empty() && self.datastores.is_empty()
    }

    /// `service web, datastore db`, for messages.
    pub fn describe(&self) -> String {
        self.services
            .keys()
            .map(|s| format!("service `{s}`"))
            .chain(self.datastores.keys().map(|d| format!("datastore `{d}`")))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

impl LoadedSpec {
    /// The services and datastores whose `create` applies to `environment`.
    pub fn creations_asked(&self, environment: &str) -> CreationsAsked {
        let mut out = CreationsAsked::default();
        for name in self.spec.services.keys() {
            if let Some(c) = self.service_create(name, environment) {
                out.services.insert(name.clone(), c.like.clone());
            }
        }
        for name in self.spec.datastores.keys() {
            if let Some(c) = self.datastore_create(name, environment) {
                out.datastores.insert(name.clone(), c.like.clone());
            }
        }
        out
    }

    /// What the spec's own `create` tables ask of `environment` (not what an ephemeral
    /// environment's `like` implies).
    pub fn explicit_creations(&self, environment: &str) -> CreationsAsked {
        let mut out = CreationsAsked::default();
        for (name, s) in &self.spec.services {
            if let Some(c) = s.create.as_ref().filter(|c| c.applies_to(environment)) {
                out.services.insert(name.clone(), c.like.clone());
            }
        }
        for (name, d) in &self.spec.datastores {
            if let Some(c) = d.create.as_ref().filter(|c| c.applies_to(environment)) {
                out.datastores.insert(name.clone(), c.like.clone());
            }
        }
        out
    }

    /// Refuses, offline and before any request, a run that would create resources in a
    /// protected environment whose table does not say `allow_create = true`, at the place of
    /// the first `create` that asks it.
    pub fn check_creation_allowed(&self, environment: &str) -> Result<()> {
        let env = self.spec.environment(environment)?;
        let asked = self.creations_asked(environment);
        if asked.is_empty() || !env.protected || env.allow_create {
            return Ok(());
        }
        let first = asked
            .services
            .keys()
            .map(|s| format!("services.{s}.create"))
            .chain(
                asked
                    .datastores
                    .keys()
                    .map(|d| format!("datastores.{d}.create")),
            )
            .next()
            .unwrap_or_default();
        Err(self.error_at(
            &first,
            format!(
                "environment `{environment}` is protected: `staging up` would create {} there when missing; set `allow_create = true` in [environments.{environment}] to allow it, or give `create` a `like = \"{environment}\"` so that {environment}'s resources are only read",
                asked.describe()
            ),
        ))
    }

    /// The settings of datastore `datastore` in `environment`, as for a service
    /// ([`LoadedSpec::service_settings`]): `settings` with `overrides.ENV` merged onto it.
    pub fn datastore_settings<T: serde::de::DeserializeOwned>(
        &self,
        datastore: &str,
        environment: &str,
    ) -> Result<super::Settings<T>> {
        if !self.spec.datastores.contains_key(datastore) {
            return Err(Error::config(format!(
                "no datastore `{datastore}` in the spec"
            )));
        }
        self.merged_settings("datastores", datastore, environment)
    }

    /// Checks of `create` and `[datastores]` across tables: `like` names a declared
    /// environment of the same provider.
    pub(super) fn check_creations(&self) -> Result<()> {
        // A service on a provider of its own runs on it in every environment: a definition
        // it copies is always one of that provider.
        let creates = self
            .spec
            .services
            .iter()
            .map(|(n, s)| {
                (
                    format!("services.{n}"),
                    s.create.as_ref(),
                    s.provider.is_some(),
                )
            })
            .chain(
                self.spec
                    .datastores
                    .iter()
                    .map(|(n, d)| (format!("datastores.{n}"), d.create.as_ref(), false)),
            );
        for (base, create, own_provider) in creates {
            let Some(like) = create.and_then(|c| c.like.as_deref()) else {
                continue;
            };
            let at = format!("{base}.create.like");
            let Some(source) = self.spec.environments.get(like) else {
                return Err(self.error_at(
                    &at,
                    format!(
                        "`like = \"{like}\"` names no environment (declared: {})",
                        self.spec
                            .environments
                            .keys()
                            .cloned()
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                ));
            };
            for (name, env) in &self.spec.environments {
                if !own_provider && name != like && env.provider != source.provider {
                    return Err(self.error_at(
                        &at,
                        format!(
                            "`like = \"{like}\"` copies a {} resource, but environment `{name}` is on {}: a definition is copied within one provider only",
                            source.provider, env.provider
                        ),
                    ));
                }
            }
        }
        for (d, datastore) in &self.spec.datastores {
            for env in datastore.overrides.keys() {
                if !self.spec.environments.contains_key(env) {
                    return Err(self.error_at(
                        &format!("datastores.{d}.overrides.{env}"),
                        format!("datastore `{d}` overrides names no environment `{env}`"),
                    ));
                }
            }
        }
        Ok(())
    }
}
