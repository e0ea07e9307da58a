//! [`NetlifyProvisioner`]: what `staging up` creates on Netlify when the spec says `create`.
//!
//! On Netlify an environment is a deploy context of a site, so "standing staging up" is
//! mostly enabling one branch: a `branch:NAME` (or `branch-deploy` with `branch`) context
//! builds only when the site deploys that branch (`build_settings.allowed_branches`, the
//! production branch and each branch deploy; an empty list deploys every branch). The
//! provisioner adds the branch to that list, keeping every branch already there, and reads
//! the site back until Netlify shows the new list. A site named by `site_name` that does not
//! exist is created (`createSite`, or `createSiteInTeam` next to the copied site), from the
//! creation settings or, with `like`, from the other environment's site's build settings.
//! It never removes a branch, never changes a production branch, never deletes or replaces
//! a site, and never reads or copies a variable value (`build_settings.env` is not even
//! parsed).

use std::collections::BTreeMap;
use std::time::Duration;

use reqwest::Method;
use serde_json::{Map, Value, json};
use staging_core::provision::{Creation, Provisioner};
use staging_core::spec::LoadedSpec;
use staging_core::{Cadence, Error, Next, Result, async_trait, poll_until};
use url::Url;

use crate::factory::{NetlifyFactory, NetlifySettings};
use crate::models::{BuildSettings, Site};
use crate::provider::{NetlifyProvider, SiteRef, SiteTarget};

/// [`Creation::kind`] of a site.
pub(crate) const KIND_SITE: &str = "netlify site";
/// [`Creation::kind`] of a branch deploy.
pub(crate) const KIND_BRANCH: &str = "netlify branch deploy";
/// How long a creation is read back before it is reported as not confirmed.
const CONFIRM_WAIT: Duration = Duration::from_secs(60);

/// A repository as Netlify links it, from its URL.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Repo {
    provider: &'static str,
    path: String,
    url: String,
}

impl Repo {
    fn parse(raw: &str) -> std::result::Result<Repo, String> {
        let example = "write the repository's URL, e.g. `https://github.com/acme/shop`";
        let url = Url::parse(raw)
            .ok()
            .filter(|u| u.scheme() == "https")
            .ok_or_else(|| format!("`repo` `{raw}` is not an https URL; {example}"))?;
        let host = url.host_str().unwrap_or_default().to_owned();
        let provider = match host.as_str() {
            "github.com" => "github",
            "gitlab.com" => "gitlab",
            "bitbucket.org" => "bitbucket",
            _ => {
                return Err(format!(
                    "`repo` `{raw}`: Netlify links repositories on github.com, gitlab.com or bitbucket.org"
                ));
            }
        };
        let path = url.path().trim_matches('/').trim_end_matches(".git");
        if path.split('/').filter(|s| !s.is_empty()).count() < 2 {
            return Err(format!(
                "`repo` `{raw}` names no owner and repository; {example}"
            ));
        }
        Ok(Repo {
            provider,
            path: path.to_owned(),
            url: format!("https://{host}/{path}"),
        })
    }
}

/// The creation settings of one service in one environment (`repo`, `production_branch`,
/// `build_command`, `publish_dir`, `base_dir`, `functions_dir`), each checked at its place.
#[derive(Debug, Clone, Default)]
pub(crate) struct NewSite {
    repo: Option<Repo>,
    production_branch: Option<String>,
    build_command: Option<String>,
    publish_dir: Option<String>,
    base_dir: Option<String>,
    functions_dir: Option<String>,
}

type Field = fn(&NetlifySettings) -> &Option<String>;

impl NewSite {
    /// Read and check them; the service's settings win over its environment's, key by key.
    pub(crate) fn from_spec(spec: &LoadedSpec, environment: &str, service: &str) -> Result<Self> {
        let env = spec.environment_settings::<NetlifySettings>(environment)?;
        let svc = spec.service_settings::<NetlifySettings>(service, environment)?;
        let pick = |get: Field, key: &str| -> Result<Option<(String, String)>> {
            let found = match (get(&svc.value), get(&env.value)) {
                (Some(v), _) => (v.clone(), svc.location_of(key)),
                (None, Some(v)) => (v.clone(), env.location_of(key)),
                (None, None) => return Ok(None),
            };
            if found.0.trim().is_empty() {
                return Err(Error::config_at(found.1, format!("`{key}` is empty")));
            }
            Ok(Some(found))
        };
        let value = |get: Field, key: &str| Ok::<_, Error>(pick(get, key)?.map(|(v, _)| v));
        let repo = match pick(|s| &s.repo, "repo")? {
            Some((raw, at)) => Some(Repo::parse(&raw).map_err(|m| Error::config_at(at, m))?),
            None => None,
        };
        let production_branch = match pick(|s| &s.production_branch, "production_branch")? {
            Some((b, at)) if b.contains(char::is_whitespace) => {
                return Err(Error::config_at(
                    at,
                    format!("`production_branch` `{b}` is not a branch name"),
                ));
            }
            other => other.map(|(b, _)| b),
        };
        Ok(NewSite {
            repo,
            production_branch,
            build_command: value(|s| &s.build_command, "build_command")?,
            publish_dir: value(|s| &s.publish_dir, "publish_dir")?,
            base_dir: value(|s| &s.base_dir, "base_dir")?,
            functions_dir: value(|s| &s.functions_dir, "functions_dir")?,
        })
    }
}

/// One service whose `create` applies to the environment.
#[derive(Debug, Clone)]
struct Asked {
    service: String,
    target: SiteTarget,
    /// The environment whose site's build settings a created site copies, and that site.
    like: Option<(String, SiteTarget)>,
    new_site: NewSite,
}

/// Creates what a Netlify environment lacks: the branch deploy of its branch context, and
/// its site when `site_name` names one that does not exist. See the module documentation
/// for what it never does.
#[derive(Debug)]
pub struct NetlifyProvisioner {
    provider: NetlifyProvider,
    environment: String,
    asked: Vec<Asked>,
    confirm_wait: Duration,
}

impl NetlifyProvisioner {
    /// The provisioner of `environment` for the services whose `create` applies there,
    /// talking to Netlify through `provider` (its sites are not used: the spec's are).
    pub fn for_spec(
        spec: &LoadedSpec,
        environment: &str,
        provider: NetlifyProvider,
    ) -> Result<Self> {
        let targets: BTreeMap<String, SiteTarget> = NetlifyFactory::targets(spec, environment)?
            .into_iter()
            .collect();
        let mut asked = vec![];
        for (service, like) in spec.creations_asked(environment).services {
            let target = targets.get(&service).cloned().ok_or_else(|| {
                Error::config(format!(
                    "service `{service}` has no Netlify site in `{environment}`"
                ))
            })?;
            let like = match like {
                Some(like) => {
                    let source = NetlifyFactory::targets(spec, &like)?
                        .into_iter()
                        .find(|(name, _)| *name == service)
                        .map(|(_, t)| t)
                        .ok_or_else(|| {
                            Error::config(format!(
                                "service `{service}` has no Netlify site in `{like}` to copy"
                            ))
                        })?;
                    Some((like, source))
                }
                None => None,
            };
            let new_site = NewSite::from_spec(spec, environment, &service)?;
            asked.push(Asked {
                service,
                target,
                like,
                new_site,
            });
        }
        Ok(NetlifyProvisioner {
            provider,
            environment: environment.to_owned(),
            asked,
            confirm_wait: CONFIRM_WAIT,
        })
    }

    /// How long a creation is read back before it is reported as not confirmed (default
    /// 60 s).
    pub fn with_confirm_wait(mut self, wait: Duration) -> Self {
        self.confirm_wait = wait;
        self
    }

    /// The site, or `None` when a site named so does not exist. A site id that does not
    /// exist is an error: Netlify gives ids, so only a name can be created.
    async fn find(&self, site: &SiteRef) -> Result<Option<Site>> {
        match site {
            SiteRef::Id(id) => self.provider.get_site(id).await.map(Some).map_err(|e| match e {
                Error::NotFound { .. } => Error::not_found(format!(
                    "Netlify site with id `{id}` (`create` creates a site named by `site_name`; a `site_id` must name one that exists)"
                )),
                e => e,
            }),
            SiteRef::Name(name) => match self.provider.find_site_by_name(name).await {
                Ok(s) => Ok(Some(s)),
                Err(Error::NotFound { .. }) => Ok(None),
                Err(e) => Err(e),
            },
        }
    }

    /// What a site is to be created with: the copied site's build settings (never its
    /// variables), then the spec's creation settings over them.
    async fn site_creation(&self, asked: &Asked, name: &str) -> Result<Creation> {
        let mut repo = Map::new();
        let mut settings = BTreeMap::new();
        let mut team = None;
        let put = |repo: &mut Map<String, Value>, key: &str, v: Option<Value>| {
            if let Some(v) = v {
                repo.insert(key.to_owned(), v);
            }
        };
        if let Some((like, source)) = &asked.like {
            let site = self.find(&source.site).await?.ok_or_else(|| {
                Error::not_found(format!(
                    "the `{like}` site of service `{}` ({}), whose build settings `like = \"{like}\"` copies",
                    asked.service,
                    site_label(&source.site)
                ))
            })?;
            let copied = build_settings(&site, &format!("copying its build settings to `{name}`"))?;
            let s = |v: &Option<String>| v.clone().filter(|v| !v.is_empty()).map(Value::from);
            put(&mut repo, "provider", s(&copied.provider));
            put(&mut repo, "repo_path", s(&copied.repo_path));
            put(&mut repo, "repo_url", s(&copied.repo_url));
            put(&mut repo, "repo_branch", s(&copied.repo_branch));
            put(&mut repo, "cmd", s(&copied.cmd));
            put(&mut repo, "dir", s(&copied.dir));
            put(&mut repo, "base", s(&copied.base));
            put(&mut repo, "functions_dir", s(&copied.functions_dir));
            put(
                &mut repo,
                "installation_id",
                copied.installation_id.map(Value::from),
            );
            put(&mut repo, "deploy_key_id", s(&copied.deploy_key_id));
            team = site.account_slug.clone().filter(|t| !t.is_empty());
            settings.insert(
                "copied from".to_owned(),
                format!("site {} ({like})", site.name.as_deref().unwrap_or(&site.id)),
            );
        }
        let own = &asked.new_site;
        if let Some(r) = &own.repo {
            put(&mut repo, "provider", Some(r.provider.into()));
            put(&mut repo, "repo_path", Some(r.path.clone().into()));
            put(&mut repo, "repo_url", Some(r.url.clone().into()));
            // Another repository than the copied one: the copied links do not apply.
            repo.remove("installation_id");
            repo.remove("deploy_key_id");
        }
        let s = |v: &Option<String>| v.clone().map(Value::from);
        put(&mut repo, "repo_branch", s(&own.production_branch));
        put(&mut repo, "cmd", s(&own.build_command));
        put(&mut repo, "dir", s(&own.publish_dir));
        put(&mut repo, "base", s(&own.base_dir));
        put(&mut repo, "functions_dir", s(&own.functions_dir));

        let branch = asked.target.context.build_branch();
        let has_repo = repo.contains_key("repo_path");
        if !has_repo && let Some(branch) = branch {
            return Err(Error::config(format!(
                "site `{name}` of service `{}` would be created without a repository, but `{}` builds branch `{branch}`: set `repo` (and `production_branch`) in the service's settings, or `create = {{ like = \"production\" }}`",
                asked.service, self.environment
            )));
        }
        if has_repo && !repo.contains_key("repo_branch") {
            return Err(Error::config(format!(
                "site `{name}` of service `{}` would be created from a repository without a production branch: set `production_branch` in the service's settings",
                asked.service
            )));
        }
        let text = |k: &str| repo.get(k).and_then(Value::as_str).map(str::to_owned);
        if let (Some(provider), Some(path)) = (text("provider"), text("repo_path")) {
            settings.insert("repo".to_owned(), format!("{provider}:{path}"));
        }
        for (shown, key) in [
            ("production_branch", "repo_branch"),
            ("build_command", "cmd"),
            ("publish_dir", "dir"),
            ("base_dir", "base"),
            ("functions_dir", "functions_dir"),
        ] {
            if let Some(v) = text(key) {
                settings.insert(shown.to_owned(), v);
            }
        }
        if let Some(t) = &team {
            settings.insert("team".to_owned(), t.clone());
        }
        let mut body = json!({ "name": name });
        if !repo.is_empty() {
            body["repo"] = Value::Object(repo);
        }
        Ok(Creation {
            kind: KIND_SITE.to_owned(),
            name: name.to_owned(),
            owner: format!("service {}", asked.service),
            // Site names are global on Netlify (`NAME.netlify.app`).
            namespace: Some("netlify".to_owned()),
            like: asked.like.as_ref().map(|(l, _)| l.clone()),
            settings,
            request: json!({ "body": body, "team": team }),
        })
    }

    async fn create_site(&self, creation: &Creation) -> Result<String> {
        let name = &creation.name;
        let doing = format!("creating Netlify site `{name}`");
        // Created by an earlier attempt whose answer was lost: nothing more to do.
        if let Some(site) = self
            .find(&SiteRef::Name(name.clone()))
            .await
            .map_err(|e| in_context(e, &doing))?
        {
            return Ok(site.id);
        }
        let body = &creation.request["body"];
        let url = match creation.request["team"].as_str() {
            Some(team) => self.provider.client.endpoint(&[team, "sites"]),
            None => self.provider.client.endpoint(&["sites"]),
        };
        let operation = if creation.request["team"].is_string() {
            "createSiteInTeam"
        } else {
            "createSite"
        };
        let site: Site = self
            .provider
            .client
            .json(
                operation,
                self.provider.client.request(Method::POST, url).json(body),
            )
            .await
            .map_err(|e| in_context(e, &doing))?;
        if site.id.is_empty() {
            return Err(Error::failed(format!(
                "{doing}: Netlify answered without the new site's id; the next run finds it by name"
            )));
        }
        tracing::info!(site = %site.id, name = %name, "netlify site created");
        poll_until(
            &Cadence::for_provider(&self.provider),
            self.confirm_wait,
            || format!("Netlify site `{name}` ({}) to read back", site.id),
            || self.provider.get_site(&site.id),
            |now, _| {
                Ok(if now.name.as_deref() == Some(name.as_str()) {
                    Next::Done(now.id)
                } else {
                    Next::Again("not readable yet".to_owned())
                })
            },
        )
        .await
        .map_err(|e| in_context(e, &doing))
    }

    /// Add the branch to the site's deployed branches, keeping every one already there, then
    /// read the site back until Netlify shows them all.
    async fn enable_branch(&self, creation: &Creation) -> Result<String> {
        let branch = creation.name.as_str();
        let site_ref = match (
            creation.request["site_id"].as_str(),
            creation.request["site_name"].as_str(),
        ) {
            (Some(id), _) => SiteRef::Id(id.to_owned()),
            (None, Some(name)) => SiteRef::Name(name.to_owned()),
            (None, None) => {
                return Err(Error::config(format!(
                    "branch deploy `{branch}` names no site"
                )));
            }
        };
        let label = site_label(&site_ref);
        let doing = format!("enabling branch deploy `{branch}` on Netlify site {label}");
        let site = self
            .find(&site_ref)
            .await
            .map_err(|e| in_context(e, &doing))?
            .ok_or_else(|| Error::not_found(format!("Netlify site {label} ({doing})")))?;
        let doing = format!(
            "enabling branch deploy `{branch}` on Netlify site `{}` ({})",
            site.name.as_deref().unwrap_or_default(),
            site.id
        );
        let now = build_settings(&site, &doing)?;
        if !now.has_repo() {
            return Err(not_linked(&site, branch));
        }
        if deploys(&now, branch) {
            return Ok(site.id);
        }
        let before = now.allowed_branches.clone().unwrap_or_default();
        let mut wanted = before.clone();
        wanted.push(branch.to_owned());
        let body = json!({ "build_settings": { "allowed_branches": wanted } });
        let req = self
            .provider
            .client
            .request(
                Method::PATCH,
                self.provider.client.endpoint(&["sites", &site.id]),
            )
            .json(&body);
        let _: Site = self
            .provider
            .client
            .json("updateSite", req)
            .await
            .map_err(|e| {
                in_context(
                    e,
                    &format!(
                        "{doing} (the request only adds the branch: nothing was removed; the next run tries again)"
                    ),
                )
            })?;
        tracing::info!(site = %site.id, branch, "netlify branch deploy enabled");
        poll_until(
            &Cadence::for_provider(&self.provider),
            self.confirm_wait,
            || format!("Netlify site `{}` to deploy branch `{branch}`", site.id),
            || self.provider.get_site(&site.id),
            |now, _| {
                let now = build_settings(&now, &doing)?;
                let list = now.allowed_branches.clone().unwrap_or_default();
                let gone: Vec<&String> = before.iter().filter(|b| !list.contains(b)).collect();
                if !list.is_empty() && !gone.is_empty() {
                    return Err(Error::failed(format!(
                        "{doing}: the site no longer deploys {} although staging only added `{branch}` (someone else changed the site's branches meanwhile?)",
                        gone.iter().map(|b| format!("`{b}`")).collect::<Vec<_>>().join(", ")
                    )));
                }
                Ok(if deploys(&now, branch) {
                    Next::Done(site.id.clone())
                } else {
                    Next::Again(format!("deploys {}", list.join(", ")))
                })
            },
        )
        .await
        .map_err(|e| in_context(e, &doing))
    }
}

/// Whether Netlify builds `branch` on a site with these settings: the production branch
/// always, others when listed (or when the list is empty: every branch).
fn deploys(settings: &BuildSettings, branch: &str) -> bool {
    settings.repo_branch.as_deref() == Some(branch) || settings.deploys_branch(branch)
}

fn site_label(site: &SiteRef) -> String {
    match site {
        SiteRef::Id(id) => format!("with id `{id}`"),
        SiteRef::Name(name) => format!("`{name}`"),
    }
}

fn site_name(site: &Site) -> String {
    format!(
        "`{}` ({})",
        site.name.as_deref().unwrap_or_default(),
        site.id
    )
}

/// The site's build settings, typed; an answer of another shape is an error naming the site
/// and what was being done.
fn build_settings(site: &Site, doing: &str) -> Result<BuildSettings> {
    match &site.build_settings {
        None | Some(Value::Null) => Ok(BuildSettings::default()),
        Some(v) => serde_json::from_value(v.clone()).map_err(|e| {
            Error::failed(format!(
                "{doing}: Netlify answered build settings of site {} in a shape it does not describe ({e}); nothing was changed",
                site_name(site)
            ))
        }),
    }
}

fn not_linked(site: &Site, branch: &str) -> Error {
    Error::failed(format!(
        "Netlify site {} is linked to no repository, and Netlify builds branch deploys (`{branch}`) only from one: link the repository in the site's build settings, then run again",
        site_name(site)
    ))
}

/// `e` with what was being done in its message, keeping its kind.
fn in_context(e: Error, doing: &str) -> Error {
    match e {
        Error::NotFound { what } => Error::NotFound {
            what: format!("{what} ({doing})"),
        },
        Error::Unauthenticated { provider, message } => Error::Unauthenticated {
            provider,
            message: format!("{doing}: {message}"),
        },
        Error::PermissionDenied { provider, message } => Error::PermissionDenied {
            provider,
            message: format!("{doing}: {message}"),
        },
        Error::Conflict { message } => Error::Conflict {
            message: format!("{doing}: {message}"),
        },
        Error::Timeout { what, after } => Error::Timeout {
            what: format!("{what} ({doing})"),
            after,
        },
        Error::ConfigInvalid { location, message } => Error::ConfigInvalid {
            location,
            message: format!("{doing}: {message}"),
        },
        Error::Failed { message } => Error::Failed {
            message: if message.starts_with(doing) {
                message
            } else {
                format!("{doing}: {message}")
            },
        },
        Error::Provider {
            provider,
            source,
            retryable,
        } => Error::Provider {
            provider,
            retryable,
            source: format!("{doing}: {}", staging_core::error::error_chain(&*source)).into(),
        },
        other => other,
    }
}

#[async_trait]
impl Provisioner for NetlifyProvisioner {
    /// For each service whose `create` applies: its site when `site_name` names none, and
    /// the branch deploy of a branch context the site does not deploy yet. A production or
    /// deploy-preview context of an existing site has nothing to create.
    async fn missing(&self) -> Result<Vec<Creation>> {
        let mut out = vec![];
        for asked in &self.asked {
            let owner = format!("service {}", asked.service);
            let branch = asked.target.context.build_branch();
            match self.find(&asked.target.site).await? {
                None => {
                    let SiteRef::Name(name) = &asked.target.site else {
                        unreachable!("a missing site id is an error of `find`")
                    };
                    let site = self.site_creation(asked, name).await?;
                    let production = site.settings.get("production_branch").cloned();
                    out.push(site);
                    if let Some(branch) = branch
                        && production.as_deref() != Some(branch)
                    {
                        let mut settings = BTreeMap::new();
                        settings.insert("site".to_owned(), name.clone());
                        settings.insert(
                            "allowed_branches".to_owned(),
                            production
                                .into_iter()
                                .chain([branch.to_owned()])
                                .collect::<Vec<_>>()
                                .join(", "),
                        );
                        out.push(Creation {
                            kind: KIND_BRANCH.to_owned(),
                            name: branch.to_owned(),
                            owner,
                            namespace: None,
                            like: None,
                            settings,
                            request: json!({ "site_name": name }),
                        });
                    }
                }
                Some(site) => {
                    let Some(branch) = branch else { continue };
                    let doing = format!("reading whether it deploys branch `{branch}`");
                    let now = build_settings(&site, &doing)?;
                    if !now.has_repo() {
                        return Err(not_linked(&site, branch));
                    }
                    if deploys(&now, branch) {
                        continue;
                    }
                    let list = now.allowed_branches.clone().unwrap_or_default();
                    let mut settings = BTreeMap::new();
                    settings.insert(
                        "site".to_owned(),
                        site.name.clone().unwrap_or_else(|| site.id.clone()),
                    );
                    settings.insert(
                        "allowed_branches".to_owned(),
                        format!("{} + {branch}", list.join(", ")),
                    );
                    out.push(Creation {
                        kind: KIND_BRANCH.to_owned(),
                        name: branch.to_owned(),
                        owner,
                        namespace: None,
                        like: None,
                        settings,
                        request: json!({ "site_id": site.id }),
                    });
                }
            }
        }
        Ok(out)
    }

    async fn create(&self, creation: &staging_core::CreationTarget) -> Result<String> {
        match creation.kind.as_str() {
            KIND_SITE => self.create_site(creation).await,
            KIND_BRANCH => self.enable_branch(creation).await,
            other => Err(Error::config(format!(
                "the Netlify provisioner creates no {other}"
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repository_urls_become_netlifys_provider_and_path() {
        assert_eq!(
            Repo::parse("https://github.com/acme/shop.git").unwrap(),
            Repo {
                provider: "github",
                path: "acme/shop".into(),
                url: "https://github.com/acme/shop".into()
            }
        );
        assert_eq!(
            Repo::parse("https://gitlab.com/acme/web/shop/")
                .unwrap()
                .path,
            "acme/web/shop"
        );
        assert!(Repo::parse("git@github.com:acme/shop").is_err());
        assert!(Repo::parse("https://example.com/acme/shop").is_err());
        assert!(Repo::parse("https://github.com/acme").is_err());
    }

    #[test]
    fn an_empty_list_deploys_every_branch_and_the_production_branch_always_builds() {
        let with = |list: Option<Vec<&str>>| BuildSettings {
            repo_branch: Some("main".into()),
            allowed_branches: list.map(|l| l.into_iter().map(Into::into).collect()),
            ..BuildSettings::default()
        };
        assert!(deploys(&with(Some(vec![])), "staging"));
        assert!(deploys(&with(None), "staging"));
        assert!(deploys(&with(Some(vec!["develop"])), "main"));
        assert!(deploys(&with(Some(vec!["main", "staging"])), "staging"));
        assert!(!deploys(&with(Some(vec!["main"])), "staging"));
    }

    #[test]
    fn errors_keep_their_kind_and_say_what_was_being_done() {
        let e = in_context(
            Error::not_found("getSite: Not Found"),
            "enabling branch deploy `staging`",
        );
        assert!(matches!(e, Error::NotFound { .. }));
        assert!(e.to_string().contains("enabling branch deploy `staging`"));
        let e = in_context(
            Error::Provider {
                provider: "netlify".into(),
                source: "updateSite: HTTP 502".into(),
                retryable: true,
            },
            "enabling branch deploy `staging` on Netlify site `shop`",
        );
        assert!(e.is_retryable());
        assert_eq!(
            e.to_string(),
            "netlify: enabling branch deploy `staging` on Netlify site `shop`: updateSite: HTTP 502"
        );
    }
}
