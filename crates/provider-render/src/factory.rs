//! [`RenderFactory`]: the spec's `provider = "render"` environments.
//!
//! Settings: [`RenderEnvironmentSettings`] (`owner_id`) and [`RenderServiceSettings`]
//! (`service_id` or `service_name`, `owner_id`, `custom_domains`), deserialized by core from the spec with
//! `deny_unknown_fields`, so a misspelt key is an error at its place. The same settings
//! name each service's [`Resource`] for the isolation check.

use std::sync::Arc;

use staging_core::spec::LoadedSpec;
use staging_core::{DynProbe, DynProvider, ProviderFactory, Result, RetryPolicy, RetryProvider};

use staging_core::isolation::Resource;
use staging_core::spec::{Settings, SettingsTypes};

use crate::builder::{RenderBuilder, ServiceRef};
use crate::domains::CustomDomainProbe;
use crate::provider::RenderProvider;
use crate::settings::{RenderEnvironmentSettings, RenderServiceSettings};

/// Builds Render providers from a spec. Registered under the name `render`.
#[derive(Debug, Clone, Default)]
pub struct RenderFactory {
    lookup: Option<fn(&str) -> Option<String>>,
}

impl RenderFactory {
    /// A factory that reads `RENDER_API_KEY` and `RENDER_API_URL` from the process.
    pub fn new() -> Self {
        Self::default()
    }

    /// A factory that reads variables through `lookup` (tests).
    pub fn with_lookup(lookup: fn(&str) -> Option<String>) -> Self {
        RenderFactory {
            lookup: Some(lookup),
        }
    }

    /// The builder for `environment` of `spec`, settings applied, before `build()`.
    pub fn builder(&self, spec: &LoadedSpec, environment: &str) -> Result<RenderBuilder> {
        self.check(spec, environment)?;
        let mut b = match self.lookup {
            Some(f) => RenderBuilder::from_lookup(f),
            None => RenderBuilder::from_env(),
        };
        let env = spec.environment_settings::<RenderEnvironmentSettings>(environment)?;
        if let Some(owner) = env.value.owner_id {
            b = b.with_owner_id(owner);
        }
        for name in spec.spec.services.keys() {
            let settings = spec
                .service_settings::<RenderServiceSettings>(name, environment)?
                .value;
            let how = match (settings.service_id, settings.service_name) {
                (Some(id), _) => ServiceRef::Id(id),
                (None, Some(n)) => ServiceRef::Name(n),
                (None, None) => ServiceRef::Name(name.clone()),
            };
            b = match settings.owner_id {
                Some(owner) => b.with_service_in(name, how, owner),
                None => b.with_service(name, how),
            };
        }
        Ok(b)
    }

    /// The Render provider itself (without the retry decorator), for what only Render does:
    /// custom domains, jobs, datastores.
    pub fn build_render(&self, spec: &LoadedSpec, environment: &str) -> Result<RenderProvider> {
        self.builder(spec, environment)?.build()
    }
}

/// A text setting that must not be blank and, for ids, must carry one of Render's prefixes.
fn check_text<T>(
    settings: &Settings<T>,
    key: &str,
    value: Option<&str>,
    id_prefixes: &[&str],
) -> Result<()> {
    let Some(text) = value else {
        return Ok(());
    };
    if text.trim().is_empty() || text.trim() != text {
        return Err(settings.error_at(
            key,
            format!("`{key}` is empty or has surrounding whitespace"),
        ));
    }
    if !id_prefixes.is_empty() && !id_prefixes.iter().any(|p| text.starts_with(p)) {
        return Err(settings.error_at(
            key,
            format!(
                "`{key}` = `{text}` does not look like a Render id (expected it to start with {})",
                id_prefixes.join(" or ")
            ),
        ));
    }
    Ok(())
}

impl ProviderFactory for RenderFactory {
    fn name(&self) -> &'static str {
        "render"
    }

    /// Datastore connection strings (`postgres:NAME`, `key_value:NAME`, `:internal` for the
    /// private URL) for `source = { provider = "..." }`.
    fn secret_store(
        &self,
        spec: &LoadedSpec,
        environment: &str,
    ) -> Result<Option<staging_core::DynSecretStore>> {
        let provider = self.build_render(spec, environment)?;
        Ok(Some(std::sync::Arc::new(provider.datastore_store())))
    }

    /// One [`CustomDomainProbe`] per custom domain a service's settings name: the smoke step
    /// checks each is added to the service and verified.
    fn probes(&self, spec: &LoadedSpec, environment: &str) -> Result<Vec<DynProbe>> {
        let mut wanted = vec![];
        for name in spec.spec.services.keys() {
            let s = spec
                .service_settings::<RenderServiceSettings>(name, environment)?
                .value;
            wanted.extend(s.custom_domains.into_iter().map(|d| (name.clone(), d)));
        }
        if wanted.is_empty() {
            return Ok(vec![]);
        }
        let provider = self.build_render(spec, environment)?;
        Ok(wanted
            .into_iter()
            .map(|(service, domain)| {
                Arc::new(CustomDomainProbe::new(
                    provider.clone(),
                    environment,
                    &service,
                    domain,
                )) as DynProbe
            })
            .collect())
    }

    fn settings_types(&self) -> SettingsTypes {
        SettingsTypes::of::<RenderEnvironmentSettings, RenderServiceSettings>()
    }

    fn check(&self, spec: &LoadedSpec, environment: &str) -> Result<()> {
        let env = spec.environment_settings::<RenderEnvironmentSettings>(environment)?;
        check_text(
            &env,
            "owner_id",
            env.value.owner_id.as_deref(),
            &["tea-", "usr-"],
        )?;
        for name in spec.spec.services.keys() {
            let s = spec.service_settings::<RenderServiceSettings>(name, environment)?;
            let v = &s.value;
            check_text(&s, "service_id", v.service_id.as_deref(), &["srv-", "crn-"])?;
            check_text(&s, "service_name", v.service_name.as_deref(), &[])?;
            check_text(&s, "owner_id", v.owner_id.as_deref(), &["tea-", "usr-"])?;
            let mut seen = std::collections::BTreeSet::new();
            for d in &v.custom_domains {
                if !seen.insert(d) {
                    return Err(s.error_at(
                        "custom_domains",
                        format!("service `{name}` names custom domain `{d}` twice"),
                    ));
                }
            }
            if v.service_id.is_some() && v.service_name.is_some() {
                return Err(s.error_at(
                    "service_name",
                    format!("service `{name}` has both `service_id` and `service_name` for {environment}; keep one"),
                ));
            }
        }
        Ok(())
    }

    /// A service by its id, or by workspace + name (the name defaults to the spec's).
    fn resources(&self, spec: &LoadedSpec, environment: &str) -> Result<Vec<Resource>> {
        let env = spec.environment_settings::<RenderEnvironmentSettings>(environment)?;
        let mut out = vec![];
        for name in spec.spec.services.keys() {
            let s = spec
                .service_settings::<RenderServiceSettings>(name, environment)?
                .value;
            let owner = format!("service {name}");
            out.push(match s.service_id {
                Some(id) => Resource::new("render service", owner, [("service_id", Some(id))]),
                None => Resource::new(
                    "render service",
                    owner,
                    [
                        (
                            "owner_id",
                            s.owner_id.or_else(|| env.value.owner_id.clone()),
                        ),
                        (
                            "service_name",
                            Some(s.service_name.unwrap_or_else(|| name.clone())),
                        ),
                    ],
                ),
            });
        }
        Ok(out)
    }

    fn build(&self, spec: &LoadedSpec, environment: &str) -> Result<DynProvider> {
        let provider = self.build_render(spec, environment)?;
        Ok(Arc::new(RetryProvider::new(
            provider,
            RetryPolicy::default(),
        )))
    }
}
