//! [`RenderFactory`]: the spec's `provider = "render"` environments.
//!
//! Settings read (other keys belong to other providers and are left alone):
//!
//! | where | key | meaning |
//! |---|---|---|
//! | `[environments.E.settings]` | `owner_id` | the workspace (`tea-...`/`usr-...`) to look in |
//! | `[services.S.settings]` or `[services.S.overrides.E]` | `service_id` | the Render service id (`srv-...`) |
//! | same | `service_name` | the Render service name, when no id is given (default: `S`) |
//! | same | `owner_id` | the workspace, for this service only |

use std::sync::Arc;

use staging_core::spec::LoadedSpec;
use staging_core::{DynProvider, ProviderFactory, Result, RetryPolicy, RetryProvider};

use crate::builder::{RenderBuilder, ServiceRef};
use crate::provider::RenderProvider;

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
        let env = spec.spec.environment(environment)?;
        if let Some(owner) = env.settings.get("owner_id").and_then(|v| v.as_str()) {
            b = b.with_owner_id(owner);
        }
        for (name, service) in &spec.spec.services {
            let settings = service.settings_for(environment);
            let text = |k: &str| settings.get(k).and_then(|v| v.as_str()).map(str::to_owned);
            let how = match (text("service_id"), text("service_name")) {
                (Some(id), _) => ServiceRef::Id(id),
                (None, Some(n)) => ServiceRef::Name(n),
                (None, None) => ServiceRef::Name(name.clone()),
            };
            b = match text("owner_id") {
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

fn check_text(
    spec: &LoadedSpec,
    table: &toml::Table,
    base: &str,
    key: &str,
    id_prefixes: &[&str],
) -> Result<()> {
    let Some(value) = table.get(key) else {
        return Ok(());
    };
    let at = format!("{base}.{key}");
    let Some(text) = value.as_str() else {
        return Err(spec.error_at(
            &at,
            format!("`{key}` must be a string, found {}", value.type_str()),
        ));
    };
    if text.trim().is_empty() || text.trim() != text {
        return Err(spec.error_at(
            &at,
            format!("`{key}` is empty or has surrounding whitespace"),
        ));
    }
    if !id_prefixes.is_empty() && !id_prefixes.iter().any(|p| text.starts_with(p)) {
        return Err(spec.error_at(
            &at,
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

    fn check(&self, spec: &LoadedSpec, environment: &str) -> Result<()> {
        let env = spec.spec.environment(environment)?;
        check_text(
            spec,
            &env.settings,
            &format!("environments.{environment}.settings"),
            "owner_id",
            &["tea-", "usr-"],
        )?;
        for (name, service) in &spec.spec.services {
            let settings = service.settings_for(environment);
            // Point at the override when the key comes from there.
            let base = |key: &str| service.settings_path(name, environment, Some(key));
            check_text(
                spec,
                &settings,
                &base("service_id"),
                "service_id",
                &["srv-", "crn-"],
            )?;
            check_text(spec, &settings, &base("service_name"), "service_name", &[])?;
            check_text(
                spec,
                &settings,
                &base("owner_id"),
                "owner_id",
                &["tea-", "usr-"],
            )?;
            if settings.contains_key("service_id") && settings.contains_key("service_name") {
                return Err(spec.error_at(
                    &format!("{}.service_name", base("service_name")),
                    format!("service `{name}` has both `service_id` and `service_name` for {environment}; keep one"),
                ));
            }
        }
        Ok(())
    }

    fn build(&self, spec: &LoadedSpec, environment: &str) -> Result<DynProvider> {
        let provider = self.build_render(spec, environment)?;
        Ok(Arc::new(RetryProvider::new(
            provider,
            RetryPolicy::default(),
        )))
    }
}
