//! [`RenderTeardown`]: finding and deleting what [`crate::RenderProvisioner`] created for an
//! instance of an ephemeral environment ([`staging_core::teardown`]).
//!
//! A ledger entry's `kind` is the [`staging_core::Creation::kind`] the provisioner gave it,
//! and says which of Render's resources it is: a service of one of the five types
//! (`/services`), a Postgres (`/postgres`), a Key Value (`/key-value`), or a custom domain of
//! a service (`/services/{id}/custom-domains`). A kind this crate never creates is an error:
//! nothing is looked up or deleted under a kind it cannot place.
//!
//! [`Teardown::find`] reads by the recorded id when there is one (a 404 or 410: gone), else
//! by exact name in the workspace the creation was made in (its namespace, else the spec's
//! `owner_id`, else the key's only workspace); two of that name are an error naming both,
//! never a pick, and a service of another type than recorded is an error too. The creation
//! time is Render's `createdAt`; Render keeps no tags on these resources, so the marking is
//! `None`. [`Teardown::delete`] sends one `DELETE` by the target's id through the shared
//! client (an idempotent write: retried within its bounds); a 404 or 410 is success.

use std::collections::BTreeMap;

use async_trait::async_trait;
use reqwest::Method;
use serde::Deserialize;
use staging_core::spec::LoadedSpec;
use staging_core::teardown::{Created, DeletionTarget, Found, Teardown};
use staging_core::{Error, Result};

use crate::builder::ServiceRef;
use crate::client::Pace;
use crate::provider::RenderProvider;
use crate::provision::{
    CUSTOM_DOMAIN_KIND, CUSTOM_DOMAINS_OF, datastore_kind, segment, service_kind, what,
};
use crate::settings::{DatastoreKind, RenderDatastoreSettings, ServiceType};

/// Finds and deletes the services, datastores and custom domains an instance created on
/// Render (see the module documentation). Built by [`crate::RenderFactory`]'s `teardown`.
#[derive(Debug)]
pub struct RenderTeardown {
    provider: RenderProvider,
    /// The workspace the spec names for each datastore (`datastore db` → `tea-…`), where
    /// the provisioner created it.
    datastore_workspaces: BTreeMap<String, String>,
}

/// What a ledger entry is on Render, from its kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Resource {
    Service(ServiceType),
    Datastore(DatastoreKind),
    CustomDomain,
}

const SERVICE_TYPES: [ServiceType; 5] = [
    ServiceType::WebService,
    ServiceType::BackgroundWorker,
    ServiceType::PrivateService,
    ServiceType::CronJob,
    ServiceType::StaticSite,
];

impl Resource {
    /// The resource of a ledger `kind`; any other kind is refused (fail closed).
    fn of(created: &Created) -> Result<Resource> {
        let kind = created.kind.as_str();
        if let Some(t) = SERVICE_TYPES.into_iter().find(|t| service_kind(*t) == kind) {
            return Ok(Resource::Service(t));
        }
        for k in [DatastoreKind::Postgres, DatastoreKind::KeyValue] {
            if datastore_kind(k) == kind {
                return Ok(Resource::Datastore(k));
            }
        }
        if kind == CUSTOM_DOMAIN_KIND {
            return Ok(Resource::CustomDomain);
        }
        Err(Error::config(format!(
            "{}: `{kind}` is not a kind of resource the Render provider creates, so it neither finds nor deletes it",
            created.describe()
        )))
    }
}

/// A service, Postgres, Key Value or custom domain, as much as a teardown reads of it.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Described {
    id: String,
    name: String,
    #[serde(default)]
    created_at: Option<String>,
    /// A service's type (`web_service`).
    #[serde(default, rename = "type")]
    service_type: Option<String>,
}

impl Described {
    fn found(self) -> Found {
        Found {
            created_at: self
                .created_at
                .as_deref()
                .and_then(staging_rest::epoch_seconds),
            id: self.id,
            name: self.name,
            marked_ours: None,
        }
    }
}

#[derive(Debug, Deserialize)]
struct ServiceItem {
    service: Described,
}

#[derive(Debug, Deserialize)]
struct DatastoreItem {
    #[serde(alias = "keyValue")]
    postgres: Described,
}

impl RenderTeardown {
    /// The teardown of `environment` of `spec` (offline: reads the spec's settings only).
    pub(crate) fn new(
        provider: RenderProvider,
        spec: &LoadedSpec,
        environment: &str,
    ) -> Result<Self> {
        let mut datastore_workspaces = BTreeMap::new();
        for key in spec.creations_asked(environment).datastores.keys() {
            let settings = spec
                .datastore_settings::<RenderDatastoreSettings>(key, environment)?
                .value;
            if let Some(owner) = settings.owner_id {
                datastore_workspaces.insert(format!("datastore {key}"), owner);
            }
        }
        Ok(RenderTeardown {
            provider,
            datastore_workspaces,
        })
    }

    /// The workspace `created` was made in: its namespace, else the spec's `owner_id` for
    /// it, else the environment's, else the key's only workspace.
    async fn workspace(&self, created: &Created) -> Result<String> {
        if let Some(ns) = &created.namespace {
            return Ok(ns.clone());
        }
        if let Some(o) = self.datastore_workspaces.get(&created.owner) {
            return Ok(o.clone());
        }
        if let Some(o) = &self.provider.inner.owner_id {
            return Ok(o.clone());
        }
        self.provider.only_workspace().await
    }

    /// The one resource named `name` among `items`, `None` when there is none; several are
    /// an error naming them.
    fn only_one(created: &Created, items: Vec<Described>) -> Result<Option<Described>> {
        let named: Vec<Described> = items
            .into_iter()
            .filter(|d| d.name == created.name)
            .collect();
        staging_core::teardown::only_one(created, named, "resources on Render", |d| &d.id)
    }

    /// A read by id: `None` when Render says it does not exist (404, 410).
    async fn get_by_id(&self, segments: &[&str], what: &str) -> Result<Option<Described>> {
        match self.provider.client().get(segments, &[], what).await {
            Ok(d) => Ok(Some(d)),
            Err(Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    async fn find_service(&self, created: &Created, t: ServiceType) -> Result<Option<Described>> {
        let found = match &created.id {
            Some(id) => {
                self.get_by_id(&["services", id], &format!("service {id}"))
                    .await?
            }
            None => {
                let owner = self.workspace(created).await?;
                let items: Vec<ServiceItem> = self
                    .provider
                    .client()
                    .list_all(
                        &["services"],
                        &[("ownerId", owner), ("name", created.name.clone())],
                        &format!("services named `{}`", created.name),
                    )
                    .await?;
                Self::only_one(created, items.into_iter().map(|i| i.service).collect())?
            }
        };
        if let Some(d) = &found
            && d.service_type.as_deref() != Some(t.as_str())
        {
            return Err(Error::config(format!(
                "{}: Render's `{}` ({}) is a {}, not the {} recorded; nothing is deleted",
                created.describe(),
                d.name,
                d.id,
                d.service_type
                    .as_deref()
                    .unwrap_or("service of unknown type"),
                t.as_str()
            )));
        }
        Ok(found)
    }

    async fn find_datastore(
        &self,
        created: &Created,
        kind: DatastoreKind,
    ) -> Result<Option<Described>> {
        match &created.id {
            Some(id) => {
                self.get_by_id(&[segment(kind), id], &format!("{} {id}", what(kind)))
                    .await
            }
            None => {
                let owner = self.workspace(created).await?;
                let items: Vec<DatastoreItem> = self
                    .provider
                    .client()
                    .list_all(
                        &[segment(kind)],
                        &[("ownerId", owner), ("name", created.name.clone())],
                        &format!("{}s named `{}`", what(kind), created.name),
                    )
                    .await?;
                Self::only_one(created, items.into_iter().map(|i| i.postgres).collect())
            }
        }
    }

    /// The id of the service a custom domain hangs on, found as the spec finds the service
    /// its `owner` names; `None` when that service is gone (its domains went with it).
    async fn domain_service(&self, created: &Created) -> Result<Option<String>> {
        let key = created
            .owner
            .strip_prefix(CUSTOM_DOMAINS_OF)
            .ok_or_else(|| {
                Error::config(format!(
                    "{}: the ledger does not say which service the custom domain hangs on",
                    created.describe()
                ))
            })?;
        let inner = &self.provider.inner;
        let (how, owner) = match inner.services.get(key) {
            Some((how, owner)) => (how.clone(), owner.clone().or(inner.owner_id.clone())),
            None => (ServiceRef::Name(key.to_owned()), inner.owner_id.clone()),
        };
        match self.provider.find_service_in(&how, owner.as_deref()).await {
            Ok(s) => Ok(Some(s.id)),
            Err(Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    async fn find_domain(&self, created: &Created) -> Result<Option<Described>> {
        let Some(service) = self.domain_service(created).await? else {
            return Ok(None);
        };
        let key = created.id.as_deref().unwrap_or(&created.name);
        self.get_by_id(
            &["services", &service, "custom-domains", key],
            &format!("custom domain {} of {service}", created.name),
        )
        .await
    }

    /// `DELETE` of `segments`; gone already (404, 410) is success.
    async fn delete_at(&self, segments: &[&str], what: &str) -> Result<()> {
        match self
            .provider
            .client()
            .send(Method::DELETE, segments, &[], None, Pace::Write, what)
            .await
        {
            Ok(_) | Err(Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(e),
        }
    }
}

#[async_trait]
impl Teardown for RenderTeardown {
    async fn find(&self, created: &Created) -> Result<Option<Found>> {
        let found = match Resource::of(created)? {
            Resource::Service(t) => self.find_service(created, t).await?,
            Resource::Datastore(k) => self.find_datastore(created, k).await?,
            Resource::CustomDomain => self.find_domain(created).await?,
        };
        Ok(found.map(Described::found))
    }

    async fn delete(&self, target: &DeletionTarget) -> Result<()> {
        let created = target.created();
        let id = target.id();
        let what = format!("{} ({id})", created.describe());
        match Resource::of(created)? {
            Resource::Service(_) => self.delete_at(&["services", id], &what).await,
            Resource::Datastore(k) => self.delete_at(&[segment(k), id], &what).await,
            Resource::CustomDomain => match self.domain_service(created).await? {
                Some(service) => {
                    self.delete_at(&["services", &service, "custom-domains", id], &what)
                        .await
                }
                // The service is gone, and its domains with it.
                None => Ok(()),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use staging_core::teardown::CreatedBy;

    fn created(kind: &str) -> Created {
        Created {
            kind: kind.to_owned(),
            name: "x".into(),
            owner: "service x".into(),
            namespace: None,
            by: CreatedBy::Provider,
            id: None,
            requested_at: 0,
            deleted_at: None,
        }
    }

    #[test]
    fn every_kind_the_provisioner_records_maps_to_one_resource_and_others_are_refused() {
        for t in SERVICE_TYPES {
            assert_eq!(
                Resource::of(&created(&service_kind(t))).unwrap(),
                Resource::Service(t)
            );
        }
        assert_eq!(
            Resource::of(&created("render postgres")).unwrap(),
            Resource::Datastore(DatastoreKind::Postgres)
        );
        assert_eq!(
            Resource::of(&created("render key value")).unwrap(),
            Resource::Datastore(DatastoreKind::KeyValue)
        );
        assert_eq!(
            Resource::of(&created("render custom domain")).unwrap(),
            Resource::CustomDomain
        );
        for unknown in ["render redis", "neon branch", "", "render web_service"] {
            let e = Resource::of(&created(unknown)).unwrap_err();
            assert!(matches!(e, Error::ConfigInvalid { .. }), "{unknown}: {e:?}");
        }
    }
}
