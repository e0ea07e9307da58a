//! [`NetlifyFactory`]: the provider's settings in a spec, checked with `file:line:col`, and
//! the provider built from them.

use std::sync::Arc;

use secrecy::SecretString;
use staging_core::spec::LoadedSpec;
use staging_core::{DynProvider, ProviderFactory, Result, RetryPolicy, RetryProvider};
use url::Url;

use crate::context::DeployContext;
use crate::provider::{NetlifyBuilder, NetlifyProvider, SiteRef, SiteTarget};

/// The settings this provider reads, in an environment's `settings` or a service's
/// `settings`/`overrides` (the service's win).
pub const SETTINGS: [&str; 7] = [
    "site_id",
    "site_name",
    "context",
    "branch",
    "account_id",
    "build_hook",
    "url",
];

/// Registers the `netlify` provider with the CLI's registry.
#[derive(Debug, Clone, Copy, Default)]
pub struct NetlifyFactory;

/// One setting with the key path it came from, so an error points at it.
struct Setting {
    value: toml::Value,
    at: String,
}

/// The settings of one service in one environment: the environment's, then the service's.
fn merged(
    spec: &LoadedSpec,
    environment: &str,
    service: Option<&str>,
) -> Result<Vec<(String, Setting)>> {
    let env = spec.spec.environment(environment)?;
    let mut out: Vec<(String, Setting)> = env
        .settings
        .iter()
        .map(|(k, v)| {
            (
                k.clone(),
                Setting {
                    value: v.clone(),
                    at: format!("environments.{environment}.settings.{k}"),
                },
            )
        })
        .collect();
    if let Some(name) = service {
        let svc = &spec.spec.services[name];
        for (k, v) in svc.settings_for(environment) {
            let at = format!("{}.{k}", svc.settings_path(name, environment, Some(&k)));
            out.retain(|(key, _)| *key != k);
            out.push((k, Setting { value: v, at }));
        }
    }
    Ok(out)
}

/// Parse and check the settings of one service (or of the environment alone).
fn target_from(spec: &LoadedSpec, environment: &str, service: Option<&str>) -> Result<SiteTarget> {
    let settings = merged(spec, environment, service)?;
    let mut strings = std::collections::BTreeMap::new();
    for (key, s) in &settings {
        if !SETTINGS.contains(&key.as_str()) {
            return Err(spec.error_at(
                &s.at,
                format!(
                    "unknown Netlify setting `{key}`; expected one of: {}",
                    SETTINGS.join(", ")
                ),
            ));
        }
        let Some(v) = s.value.as_str() else {
            return Err(spec.error_at(&s.at, format!("`{key}` must be a string")));
        };
        if v.trim().is_empty() {
            return Err(spec.error_at(&s.at, format!("`{key}` is empty")));
        }
        strings.insert(key.as_str(), (v.to_owned(), s.at.as_str()));
    }
    let where_ = service
        .map(|s| format!("service `{s}` in environment `{environment}`"))
        .unwrap_or_else(|| format!("environment `{environment}`"));
    let site = match (strings.get("site_id"), strings.get("site_name")) {
        (Some(_), Some((_, at))) => {
            return Err(spec.error_at(at, "give `site_id` or `site_name`, not both"));
        }
        (Some((id, _)), None) => SiteRef::Id(id.clone()),
        (None, Some((name, _))) => SiteRef::Name(name.clone()),
        (None, None) => {
            return Err(spec.error_at(
                &format!("environments.{environment}.settings"),
                format!("{where_} needs a Netlify `site_id` or `site_name`"),
            ));
        }
    };
    let context = match strings.get("context") {
        Some((c, at)) => DeployContext::parse(c, strings.get("branch").map(|(b, _)| b.as_str()))
            .map_err(|m| spec.error_at(at, m))?,
        None => {
            return Err(spec.error_at(
                &format!("environments.{environment}.settings"),
                format!("{where_} needs a deploy `context`: `production`, `deploy-preview`, `branch-deploy` or `branch:NAME`"),
            ));
        }
    };
    if let Some((_, at)) = strings.get("branch")
        && !matches!(context, DeployContext::BranchDeploy { .. })
    {
        return Err(spec.error_at(
            at,
            "`branch` goes with context `branch-deploy`; for one branch write `context = \"branch:NAME\"`",
        ));
    }
    let url = match strings.get("url") {
        Some((u, at)) => Some(
            Url::parse(u)
                .ok()
                .filter(|u| matches!(u.scheme(), "http" | "https"))
                .ok_or_else(|| spec.error_at(at, format!("`url` `{u}` is not an http(s) URL")))?,
        ),
        None => None,
    };
    if let Some((hook, at)) = strings.get("build_hook") {
        let ok = if hook.contains("://") {
            Url::parse(hook).is_ok()
        } else {
            !hook.contains(['/', ' '])
        };
        if !ok {
            return Err(spec.error_at(at, "`build_hook` must be a build hook URL or id"));
        }
    }
    if context == DeployContext::DeployPreview && strings.contains_key("build_hook") {
        return Err(spec.error_at(
            strings["build_hook"].1,
            "deploy previews are built from pull requests; a build hook cannot start one",
        ));
    }
    Ok(SiteTarget {
        site,
        context,
        account_id: strings.get("account_id").map(|(a, _)| a.clone()),
        build_hook: strings
            .get("build_hook")
            .map(|(h, _)| SecretString::from(h.clone())),
        url,
    })
}

impl NetlifyFactory {
    /// The site of every service of the spec in `environment` (the environment's own
    /// settings when the spec declares no service, under the name `site`).
    pub fn targets(spec: &LoadedSpec, environment: &str) -> Result<Vec<(String, SiteTarget)>> {
        if spec.spec.services.is_empty() {
            return Ok(vec![(
                "site".to_owned(),
                target_from(spec, environment, None)?,
            )]);
        }
        spec.spec
            .services
            .keys()
            .map(|name| Ok((name.clone(), target_from(spec, environment, Some(name))?)))
            .collect()
    }

    /// A builder for `environment`, with its sites, reading the token and base URL from the
    /// process environment. The CLI's `build` is this plus [`RetryProvider`].
    pub fn builder(spec: &LoadedSpec, environment: &str) -> Result<NetlifyBuilder> {
        let mut b = NetlifyBuilder::from_env().with_environment(environment);
        for (name, target) in Self::targets(spec, environment)? {
            b = b.with_site(name, target);
        }
        Ok(b)
    }

    /// The concrete provider, for what the `Provider` trait does not cover (lock, unlock, the
    /// env store).
    pub fn build_netlify(spec: &LoadedSpec, environment: &str) -> Result<NetlifyProvider> {
        Self::builder(spec, environment)?.build()
    }
}

impl ProviderFactory for NetlifyFactory {
    fn name(&self) -> &'static str {
        "netlify"
    }

    fn check(&self, spec: &LoadedSpec, environment: &str) -> Result<()> {
        Self::targets(spec, environment).map(drop)
    }

    fn build(&self, spec: &LoadedSpec, environment: &str) -> Result<DynProvider> {
        let provider = Self::build_netlify(spec, environment)?;
        Ok(Arc::new(RetryProvider::new(
            provider,
            RetryPolicy::default(),
        )))
    }
}
