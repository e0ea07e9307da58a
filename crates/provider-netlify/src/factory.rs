//! [`NetlifyFactory`]: the provider's settings in a spec, checked with `file:line:col`, and
//! the provider built from them.

use std::sync::Arc;

use schemars::JsonSchema;
use secrecy::SecretString;
use serde::Deserialize;
use staging_core::isolation::Resource;
use staging_core::spec::{DomainName, LoadedSpec, SettingsTypes};
use staging_core::{
    DynProbe, DynProvider, Error, ProviderFactory, Result, RetryPolicy, RetryProvider,
};
use url::Url;

use crate::context::DeployContext;
use crate::domains::NetlifyDomainProbe;
use crate::provider::{NetlifyBuilder, NetlifyProvider, SiteRef, SiteTarget};
use crate::provision::NetlifyProvisioner;

/// The settings of a `netlify` environment (`[environments.E.settings]`) and of a service
/// (`[services.S.settings]` with `overrides.E` merged onto it); a service's settings win
/// over its environment's, key by key.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NetlifySettings {
    /// The site's API id (a UUID): never ambiguous.
    #[serde(default)]
    pub site_id: Option<String>,
    /// The site's name (`storefront-web`), when no id is given.
    #[serde(default)]
    pub site_name: Option<String>,
    /// The deploy context this environment is: `production`, `deploy-preview`,
    /// `branch-deploy` or `branch:NAME`.
    #[serde(default)]
    pub context: Option<String>,
    /// The branch of a `branch-deploy` context.
    #[serde(default)]
    pub branch: Option<String>,
    /// The team whose env API holds the site's variables (default: the site's account).
    #[serde(default)]
    pub account_id: Option<String>,
    /// A build hook URL or id that starts a build of this context.
    #[serde(default)]
    pub build_hook: Option<String>,
    /// The public URL of the environment, when not the context's Netlify URL.
    #[serde(default)]
    pub url: Option<String>,
    /// The custom domains the site must serve (`["www.example.com"]`; a service's list wins
    /// over its environment's). The smoke step checks each is a domain of the site and
    /// covered by its certificate, and fails naming the DNS record to create.
    #[serde(default)]
    pub custom_domains: Vec<DomainName>,
    /// Creating the site (`create` on the service, `site_name` naming a site that does not
    /// exist yet): the repository it builds, as its URL (`https://github.com/acme/shop`;
    /// GitHub, GitLab or Bitbucket). Read only when the site is created.
    #[serde(default)]
    pub repo: Option<String>,
    /// Creating the site: its production branch (default: the copied site's with `like`).
    #[serde(default)]
    pub production_branch: Option<String>,
    /// Creating the site: its build command.
    #[serde(default)]
    pub build_command: Option<String>,
    /// Creating the site: the directory it publishes.
    #[serde(default)]
    pub publish_dir: Option<String>,
    /// Creating the site: the base directory it builds in.
    #[serde(default)]
    pub base_dir: Option<String>,
    /// Creating the site: the directory of its functions.
    #[serde(default)]
    pub functions_dir: Option<String>,
}

/// Registers the `netlify` provider with the CLI's registry.
#[derive(Debug, Clone, Copy, Default)]
pub struct NetlifyFactory;

/// Reads one setting out of [`NetlifySettings`].
type Field = fn(&NetlifySettings) -> &Option<String>;

/// Parse and check the settings of one service (or of the environment alone).
fn target_from(spec: &LoadedSpec, environment: &str, service: Option<&str>) -> Result<SiteTarget> {
    let env = spec.environment_settings::<NetlifySettings>(environment)?;
    let svc = service
        .map(|name| spec.service_settings::<NetlifySettings>(name, environment))
        .transpose()?;
    // Each value with where it was written: the service's settings win.
    let pick = |get: Field, key: &str| -> Option<(String, String)> {
        if let Some(s) = &svc
            && let Some(v) = get(&s.value)
        {
            return Some((v.clone(), s.location_of(key)));
        }
        get(&env.value).clone().map(|v| (v, env.location_of(key)))
    };
    let mut strings = std::collections::BTreeMap::new();
    let fields: [(&str, Field); 7] = [
        ("site_id", |s| &s.site_id),
        ("site_name", |s| &s.site_name),
        ("context", |s| &s.context),
        ("branch", |s| &s.branch),
        ("account_id", |s| &s.account_id),
        ("build_hook", |s| &s.build_hook),
        ("url", |s| &s.url),
    ];
    for (key, get) in fields {
        if let Some((v, at)) = pick(get, key) {
            if v.trim().is_empty() {
                return Err(Error::config_at(at, format!("`{key}` is empty")));
            }
            strings.insert(key, (v, at));
        }
    }
    let err = |at: &str, m: &str| Error::config_at(at.to_owned(), m.to_owned());
    let where_ = service
        .map(|s| format!("service `{s}` in environment `{environment}`"))
        .unwrap_or_else(|| format!("environment `{environment}`"));
    let site = match (strings.get("site_id"), strings.get("site_name")) {
        (Some(_), Some((_, at))) => {
            return Err(err(at, "give `site_id` or `site_name`, not both"));
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
            .map_err(|m| err(at, &m))?,
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
        return Err(err(
            at,
            "`branch` goes with context `branch-deploy`; for one branch write `context = \"branch:NAME\"`",
        ));
    }
    let url = match strings.get("url") {
        Some((u, at)) => Some(
            Url::parse(u)
                .ok()
                .filter(|u| matches!(u.scheme(), "http" | "https"))
                .ok_or_else(|| err(at, &format!("`url` `{u}` is not an http(s) URL")))?,
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
            return Err(err(at, "`build_hook` must be a build hook URL or id"));
        }
        if context == DeployContext::DeployPreview {
            return Err(err(
                at,
                "deploy previews are built from pull requests; a build hook cannot start one",
            ));
        }
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
        let mut b = NetlifyBuilder::from_env()
            .with_environment(environment)
            .with_secret_names(staging_core::secretness::secret_vars(
                &spec.spec,
                environment,
            ));
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

    fn settings_types(&self) -> SettingsTypes {
        SettingsTypes::of::<NetlifySettings, NetlifySettings>()
    }

    /// One [`NetlifyDomainProbe`] per custom domain of each service's site: the smoke step
    /// checks each is on the site and covered by its certificate.
    fn probes(&self, spec: &LoadedSpec, environment: &str) -> Result<Vec<DynProbe>> {
        let env = spec
            .environment_settings::<NetlifySettings>(environment)?
            .value;
        let mut wanted = vec![];
        for name in spec.spec.services.keys() {
            let own = spec
                .service_settings::<NetlifySettings>(name, environment)?
                .value
                .custom_domains;
            let domains = if own.is_empty() {
                env.custom_domains.clone()
            } else {
                own
            };
            wanted.extend(domains.into_iter().map(|d| (name.clone(), d)));
        }
        if wanted.is_empty() {
            return Ok(vec![]);
        }
        let provider = Arc::new(Self::build_netlify(spec, environment)?);
        Ok(wanted
            .into_iter()
            .map(|(service, domain)| {
                Arc::new(NetlifyDomainProbe::new(
                    provider.clone(),
                    environment,
                    &service,
                    domain,
                )) as DynProbe
            })
            .collect())
    }

    fn check(&self, spec: &LoadedSpec, environment: &str) -> Result<()> {
        Self::targets(spec, environment)?;
        for service in spec.spec.services.keys() {
            crate::provision::NewSite::from_spec(spec, environment, service)?;
        }
        Ok(())
    }

    /// Enables the branch deploy of a branch context, and creates a site named by
    /// `site_name` that does not exist, for the services whose `create` applies
    /// ([`NetlifyProvisioner`]).
    fn provisioner(
        &self,
        spec: &LoadedSpec,
        environment: &str,
    ) -> Result<Option<staging_core::provision::DynProvisioner>> {
        let provider = Self::build_netlify(spec, environment)?;
        Ok(Some(Arc::new(NetlifyProvisioner::for_spec(
            spec,
            environment,
            provider,
        )?)))
    }

    /// Finds and undoes the sites and branch deploys the provisioner created for an
    /// instance ([`crate::NetlifyTeardown`]).
    fn teardown(
        &self,
        spec: &LoadedSpec,
        environment: &str,
    ) -> Result<Option<staging_core::teardown::DynTeardown>> {
        let provider = Self::build_netlify(spec, environment)?;
        Ok(Some(Arc::new(crate::NetlifyTeardown::new(provider))))
    }

    /// A site (by id or name) and the deploy context whose deploys and env var values the
    /// environment writes. Two `branch-deploy` environments share that context's values,
    /// whatever their branches, so the branch is not part of it.
    fn resources(&self, spec: &LoadedSpec, environment: &str) -> Result<Vec<Resource>> {
        Ok(Self::targets(spec, environment)?
            .into_iter()
            .map(|(name, t)| {
                let site = match t.site {
                    SiteRef::Id(id) => ("site_id", Some(id)),
                    SiteRef::Name(n) => ("site_name", Some(n)),
                };
                let context = match &t.context {
                    DeployContext::BranchDeploy { .. } => "branch-deploy".to_owned(),
                    other => other.to_string(),
                };
                Resource::new(
                    "netlify site",
                    format!("service {name}"),
                    [site, ("context", Some(context.clone()))],
                )
                .within(context)
            })
            .collect())
    }

    fn build(&self, spec: &LoadedSpec, environment: &str) -> Result<DynProvider> {
        let provider = Self::build_netlify(spec, environment)?;
        Ok(Arc::new(RetryProvider::new(
            provider,
            RetryPolicy::default(),
        )))
    }
}
