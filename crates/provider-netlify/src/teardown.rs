//! [`NetlifyTeardown`]: finding and undoing what [`crate::NetlifyProvisioner`] created for an
//! instance of an ephemeral environment ([`staging_core::teardown`]).
//!
//! The provisioner makes two kinds of things, and each is undone exactly:
//! - a **site** (`netlify site`): found by its recorded id (`getSite`; a 404 is gone), else
//!   by its exact name (`listSites` matches substrings; only an exact name counts), its
//!   creation time Netlify's `created_at`; deleted with `deleteSite` by the target's id (a
//!   404 is gone).
//! - a **branch deploy** (`netlify branch deploy`): not a resource of its own but one branch
//!   added to a site's `build_settings.allowed_branches`. Its ledger id is the site's id.
//!   It is found while that site still lists the branch (a site that is gone, or no longer
//!   lists it: gone), and undone by writing the list back without that one branch, every
//!   other branch kept. Refused: the site's production branch (it always builds), a list
//!   that the removal would leave empty (Netlify reads an empty list as "every branch"),
//!   and an entry whose site was never recorded (the run stopped before Netlify answered:
//!   which site it was is not known). When the site is another environment's service, the
//!   write boundary refuses the undo before any request, naming that environment.
//!
//! Netlify keeps no marking of who made a site, so the marking is `None`.

use reqwest::Method;
use serde_json::json;
use staging_core::teardown::{Created, DeletionTarget, Found, Teardown};
use staging_core::{Error, Result, async_trait};

use crate::models::{BuildSettings, Site};
use crate::provider::NetlifyProvider;
use crate::provision::{KIND_BRANCH, KIND_SITE};

/// Finds and undoes the sites and branch deploys an instance created on Netlify (see the
/// module documentation). Built by [`crate::NetlifyFactory`]'s `teardown`.
#[derive(Debug)]
pub struct NetlifyTeardown {
    provider: NetlifyProvider,
}

/// What a ledger entry is on Netlify, from its kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Site,
    Branch,
}

impl Kind {
    /// The kind of a ledger entry; any other is refused (fail closed).
    fn of(created: &Created) -> Result<Kind> {
        match created.kind.as_str() {
            KIND_SITE => Ok(Kind::Site),
            KIND_BRANCH => Ok(Kind::Branch),
            other => Err(Error::config(format!(
                "{}: `{other}` is not a kind of resource the Netlify provider creates, so it neither finds nor undoes it",
                created.describe()
            ))),
        }
    }
}

fn found_site(site: Site) -> Found {
    Found {
        created_at: site
            .created_at
            .as_deref()
            .and_then(staging_rest::epoch_seconds),
        name: site.name.unwrap_or_default(),
        id: site.id,
        marked_ours: None,
    }
}

/// The site's build settings, typed; another shape is an error (nothing is changed).
fn settings_of(site: &Site, doing: &str) -> Result<BuildSettings> {
    match &site.build_settings {
        None | Some(serde_json::Value::Null) => Ok(BuildSettings::default()),
        Some(v) => serde_json::from_value(v.clone()).map_err(|e| {
            Error::failed(format!(
                "{doing}: Netlify answered the build settings of site `{}` in a shape it does not describe ({e}); nothing was changed",
                site.id
            ))
        }),
    }
}

impl NetlifyTeardown {
    /// The teardown over `provider` (its sites are not used: the ledger's are).
    pub fn new(provider: NetlifyProvider) -> Self {
        NetlifyTeardown { provider }
    }

    /// The site of id `id`, `None` when Netlify says it does not exist.
    async fn site_by_id(&self, id: &str) -> Result<Option<Site>> {
        match self.provider.get_site(id).await {
            Ok(s) => Ok(Some(s)),
            Err(Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// The site an entry of a branch deploy was made on, while it still lists the branch.
    async fn branch_site(&self, created: &Created) -> Result<Option<(Site, BuildSettings)>> {
        let Some(site_id) = &created.id else {
            return Err(Error::config(format!(
                "{}: the run stopped before Netlify answered, so which site the branch was enabled on is not recorded; remove the branch from that site's deployed branches by hand",
                created.describe()
            )));
        };
        let Some(site) = self.site_by_id(site_id).await? else {
            return Ok(None);
        };
        let doing = format!(
            "reading whether site `{site_id}` deploys `{}`",
            created.name
        );
        let settings = settings_of(&site, &doing)?;
        let listed = settings
            .allowed_branches
            .as_deref()
            .unwrap_or_default()
            .contains(&created.name);
        Ok(listed.then_some((site, settings)))
    }
}

#[async_trait]
impl Teardown for NetlifyTeardown {
    async fn find(&self, created: &Created) -> Result<Option<Found>> {
        match Kind::of(created)? {
            Kind::Site => match &created.id {
                Some(id) => Ok(self.site_by_id(id).await?.map(found_site)),
                None => match self.provider.find_site_by_name(&created.name).await {
                    Ok(site) => Ok(Some(found_site(site))),
                    Err(Error::NotFound { .. }) => Ok(None),
                    Err(e) => Err(e),
                },
            },
            Kind::Branch => Ok(self.branch_site(created).await?.map(|(site, _)| Found {
                id: site.id,
                name: created.name.clone(),
                // A branch in a list has no creation time of its own.
                created_at: None,
                marked_ours: None,
            })),
        }
    }

    async fn delete(&self, target: &DeletionTarget) -> Result<()> {
        let created = target.created();
        match Kind::of(created)? {
            Kind::Site => {
                let req = self.provider.client.request(
                    Method::DELETE,
                    self.provider.client.endpoint(&["sites", target.id()]),
                );
                match self.provider.client.empty("deleteSite", req).await {
                    Ok(()) | Err(Error::NotFound { .. }) => Ok(()),
                    Err(e) => Err(e),
                }
            }
            Kind::Branch => {
                // Read right before the write: what the site lists now is what is kept.
                let Some((site, settings)) = self.branch_site(created).await? else {
                    return Ok(());
                };
                let branch = created.name.as_str();
                let what = format!(
                    "branch deploy `{branch}` of Netlify site `{}` ({})",
                    site.name.as_deref().unwrap_or_default(),
                    site.id
                );
                if settings.repo_branch.as_deref() == Some(branch) {
                    return Err(Error::config(format!(
                        "refused, nothing changed: {what}: `{branch}` is now the site's production branch"
                    )));
                }
                let kept: Vec<String> = settings
                    .allowed_branches
                    .unwrap_or_default()
                    .into_iter()
                    .filter(|b| b != branch)
                    .collect();
                if kept.is_empty() {
                    return Err(Error::config(format!(
                        "refused, nothing changed: {what}: it is the only branch listed, and an empty list makes Netlify deploy every branch"
                    )));
                }
                let req = self
                    .provider
                    .client
                    .request(
                        Method::PATCH,
                        self.provider.client.endpoint(&["sites", &site.id]),
                    )
                    .json(&json!({ "build_settings": { "allowed_branches": kept } }));
                let _: Site = self.provider.client.json("updateSite", req).await?;
                Ok(())
            }
        }
    }
}
