//! [`RailwayFactory`]: the spec's `provider = "railway"` environments.
//!
//! Settings: [`RailwayEnvironmentSettings`] (`project_id` or `project`, `environment` or
//! `environment_id`, `create_if_missing`) and [`RailwayServiceSettings`] (`service_id` or
//! `service_name`), deserialized by core with `deny_unknown_fields`, so a misspelt key is an
//! error at its place with a suggestion. The same settings name each service's
//! [`Resource`] for the isolation check.

use std::sync::Arc;

use staging_core::isolation::Resource;
use staging_core::spec::{LoadedSpec, Settings, SettingsTypes};
use staging_core::{DynProvider, ProviderFactory, Result, RetryPolicy, RetryProvider};

use crate::builder::{CreateFrom, RailwayBuilder, Ref};
use crate::provider::RailwayProvider;
use crate::settings::{RailwayEnvironmentSettings, RailwayServiceSettings};

/// Builds Railway providers from a spec. Registered under the name `railway`.
#[derive(Debug, Clone, Default)]
pub struct RailwayFactory {
    lookup: Option<fn(&str) -> Option<String>>,
}

fn by_id_or_name(id: Option<String>, name: Option<String>, default: &str) -> Ref {
    match (id, name) {
        (Some(id), _) => Ref::Id(id),
        (None, Some(n)) => Ref::Name(n),
        (None, None) => Ref::Name(default.to_owned()),
    }
}

impl RailwayFactory {
    /// A factory that reads `RAILWAY_API_TOKEN` / `RAILWAY_TOKEN` and `RAILWAY_API_URL` from
    /// the process.
    pub fn new() -> Self {
        Self::default()
    }

    /// A factory that reads variables through `lookup` (tests).
    pub fn with_lookup(lookup: fn(&str) -> Option<String>) -> Self {
        RailwayFactory {
            lookup: Some(lookup),
        }
    }

    /// The builder for `environment` of `spec`, settings applied, before `build()`.
    pub fn builder(&self, spec: &LoadedSpec, environment: &str) -> Result<RailwayBuilder> {
        self.check(spec, environment)?;
        let mut b = match self.lookup {
            Some(f) => RailwayBuilder::from_lookup(f),
            None => RailwayBuilder::from_env(),
        };
        let env = spec
            .environment_settings::<RailwayEnvironmentSettings>(environment)?
            .value;
        let spec_env = spec.spec.environment(environment)?;
        match (env.project_id, env.project) {
            (Some(id), _) => b = b.with_project(Ref::Id(id)),
            (None, Some(name)) => b = b.with_project(Ref::Name(name)),
            (None, None) => {}
        }
        if let Some(w) = env.workspace_id {
            b = b.with_workspace_id(w);
        }
        b = b
            .with_environment(by_id_or_name(
                env.environment_id,
                env.environment,
                environment,
            ))
            .protected(spec_env.protected)
            .with_read_budget(env.plan.read_budget());
        if env.create_if_missing
            && let Some(target) = spec_env.promotes_to.clone()
        {
            let source = spec
                .environment_settings::<RailwayEnvironmentSettings>(&target)
                .map(|s| s.value)
                .unwrap_or_default();
            b = b.with_create_from(CreateFrom {
                source: by_id_or_name(source.environment_id, source.environment, &target),
                source_environment: target,
            });
        }
        for name in spec.spec.services.keys() {
            let s = spec
                .service_settings::<RailwayServiceSettings>(name, environment)?
                .value;
            b = b.with_service(name, by_id_or_name(s.service_id, s.service_name, name));
        }
        Ok(b)
    }

    /// The Railway provider itself (without the retry decorator), for what only Railway
    /// does: creating the environment, the service-variables secret store.
    pub fn build_railway(&self, spec: &LoadedSpec, environment: &str) -> Result<RailwayProvider> {
        self.builder(spec, environment)?.build()
    }
}

/// A text setting that must not be blank or carry surrounding whitespace.
fn check_text<T>(settings: &Settings<T>, key: &str, value: Option<&str>) -> Result<()> {
    match value {
        Some(text) if text.trim().is_empty() || text.trim() != text => Err(settings.error_at(
            key,
            format!("`{key}` is empty or has surrounding whitespace"),
        )),
        _ => Ok(()),
    }
}

impl ProviderFactory for RailwayFactory {
    fn name(&self) -> &'static str {
        "railway"
    }

    fn settings_types(&self) -> SettingsTypes {
        SettingsTypes::of::<RailwayEnvironmentSettings, RailwayServiceSettings>()
    }

    fn check(&self, spec: &LoadedSpec, environment: &str) -> Result<()> {
        let env = spec.environment_settings::<RailwayEnvironmentSettings>(environment)?;
        let v = &env.value;
        for (key, value) in [
            ("project_id", v.project_id.as_deref()),
            ("project", v.project.as_deref()),
            ("workspace_id", v.workspace_id.as_deref()),
            ("environment", v.environment.as_deref()),
            ("environment_id", v.environment_id.as_deref()),
        ] {
            check_text(&env, key, value)?;
        }
        if v.project_id.is_some() && v.project.is_some() {
            return Err(env.error_at(
                "project",
                format!("environment {environment} has both `project_id` and `project`; keep one"),
            ));
        }
        if v.environment_id.is_some() && v.environment.is_some() {
            return Err(env.error_at(
                "environment",
                format!(
                    "environment {environment} has both `environment_id` and `environment`; keep one"
                ),
            ));
        }
        let spec_env = spec.spec.environment(environment)?;
        if v.create_if_missing {
            if spec_env.protected {
                return Err(env.error_at(
                    "create_if_missing",
                    format!("{environment} is protected: a protected environment is never created by `staging`"),
                ));
            }
            if spec_env.promotes_to.is_none() {
                return Err(env.error_at(
                    "create_if_missing",
                    format!("{environment} promotes to nothing: `create_if_missing` copies the environment it `promotes_to`"),
                ));
            }
            if v.environment_id.is_some() {
                return Err(env.error_at(
                    "create_if_missing",
                    "an environment to create needs a name (`environment`), not `environment_id`",
                ));
            }
        }
        for name in spec.spec.services.keys() {
            let s = spec.service_settings::<RailwayServiceSettings>(name, environment)?;
            check_text(&s, "service_id", s.value.service_id.as_deref())?;
            check_text(&s, "service_name", s.value.service_name.as_deref())?;
            if s.value.service_id.is_some() && s.value.service_name.is_some() {
                return Err(s.error_at(
                    "service_name",
                    format!("service `{name}` has both `service_id` and `service_name` for {environment}; keep one"),
                ));
            }
        }
        Ok(())
    }

    /// A service by its id, or by project + environment + name.
    fn resources(&self, spec: &LoadedSpec, environment: &str) -> Result<Vec<Resource>> {
        let env = spec
            .environment_settings::<RailwayEnvironmentSettings>(environment)?
            .value;
        let project = env.project_id.or(env.project);
        let railway_env = env
            .environment_id
            .or(env.environment)
            .unwrap_or_else(|| environment.to_owned());
        let mut out = vec![];
        for name in spec.spec.services.keys() {
            let s = spec
                .service_settings::<RailwayServiceSettings>(name, environment)?
                .value;
            // A Railway service exists in every environment of its project; what a run
            // changes is the service *instance*: service + environment.
            out.push(Resource::new(
                "railway service instance",
                format!("service {name}"),
                [
                    ("project", project.clone()),
                    ("environment", Some(railway_env.clone())),
                    (
                        "service",
                        Some(
                            s.service_id
                                .or(s.service_name)
                                .unwrap_or_else(|| name.clone()),
                        ),
                    ),
                ],
            ));
        }
        Ok(out)
    }

    fn build(&self, spec: &LoadedSpec, environment: &str) -> Result<DynProvider> {
        let provider = self.build_railway(spec, environment)?;
        Ok(Arc::new(RetryProvider::new(
            provider,
            RetryPolicy::default(),
        )))
    }

    /// The variables of the environment's services: `service:Postgres` (its
    /// `DATABASE_PUBLIC_URL`, else `DATABASE_URL`) and `service:NAME:VARIABLE`.
    fn secret_store(
        &self,
        spec: &LoadedSpec,
        environment: &str,
    ) -> Result<Option<staging_core::DynSecretStore>> {
        let provider = self.build_railway(spec, environment)?;
        Ok(Some(Arc::new(
            provider.service_variables_store(environment),
        )))
    }
}
