//! [`RenderProvisioner`]: standing a Render environment up from nothing.
//!
//! What the spec asks to create (`create = ...` on a service or a `[datastores.NAME]`) is
//! looked up by name in the workspace; what is missing becomes a [`Creation`], in the order
//! it must be created: datastores (a service's variables may name their connection strings),
//! services, then the custom domains of those services.
//!
//! With `like = "production"` the definition is read from production's resource (a service:
//! type, runtime, build and start commands, plan, region, repo, branch, health check path,
//! disk; a Postgres: version, plan, region, high availability, disk size, database name and
//! user; a Key Value: plan, region, eviction policy) and the environment's own settings are
//! laid over it (its name, branch, plan...). Production's environment variables are never
//! read and no variable is ever sent: a service is created with none, and the pipeline's
//! variables step then sets the environment's own.
//!
//! Creating never deletes or replaces: a resource that exists (by name) is left as it is.

use std::collections::BTreeMap;
use std::fmt::Display;
use std::time::Duration;

use async_trait::async_trait;
use reqwest::Method;
use serde::Deserialize;
use serde_json::{Map, Value, json};
use staging_core::spec::{LoadedSpec, Settings};
use staging_core::{
    Cadence, Creation, CreationTarget, Error, Next, Provisioner, Result, poll_until,
};

use crate::builder::ServiceRef;
use crate::client::Pace;
use crate::model::{CustomDomain, CustomDomainItem, DatastoreItem};
use crate::provider::RenderProvider;
use crate::settings::{
    DatastoreKind, MaxmemoryPolicy, RenderDatastoreSettings, RenderEnvironmentSettings,
    RenderServiceSettings, Runtime, ServiceType, plan_has_high_availability,
};

/// Creates the services, datastores and custom domains a Render environment lacks (see the
/// module documentation). Built by [`crate::RenderFactory`]'s `provisioner`.
#[derive(Debug)]
pub struct RenderProvisioner {
    provider: RenderProvider,
    environment: String,
    datastores: Vec<DatastoreAsk>,
    services: Vec<ServiceAsk>,
    timeout: Duration,
}

#[derive(Debug)]
struct DatastoreAsk {
    key: String,
    settings: Settings<RenderDatastoreSettings>,
    name: String,
    owner: Option<String>,
    like: Option<Like>,
}

#[derive(Debug)]
struct ServiceAsk {
    key: String,
    settings: Settings<RenderServiceSettings>,
    name: String,
    owner: Option<String>,
    /// The spec service's `health_path` and `http`.
    health_path: Option<String>,
    http: bool,
    like: Option<Like>,
}

/// Where the resource copied with `like` is: its environment, how it is found, and in
/// which workspace.
#[derive(Debug)]
struct Like {
    environment: String,
    found_by: ServiceRef,
    owner: Option<String>,
}

/// What `create` sends, kept in [`Creation::request`].
#[derive(Debug, serde::Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
enum Request {
    Postgres {
        body: Value,
    },
    KeyValue {
        body: Value,
    },
    Service {
        body: Value,
    },
    CustomDomain {
        service: String,
        owner: Option<String>,
        domain: String,
    },
}

/// A request body and the settings `plan` shows for it, built together so that they cannot
/// disagree.
#[derive(Default)]
struct Body {
    json: Map<String, Value>,
    shown: BTreeMap<String, String>,
}

impl Body {
    /// Sets `path` (camelCase, nested) in the body and `shown` in the settings.
    fn put(&mut self, shown: &str, path: &[&str], value: impl Into<Value> + Display) {
        self.shown.insert(shown.to_owned(), value.to_string());
        let mut at = &mut self.json;
        for segment in &path[..path.len() - 1] {
            at = at
                .entry(segment.to_string())
                .or_insert_with(|| Value::Object(Map::new()))
                .as_object_mut()
                .expect("request paths are objects");
        }
        at.insert(path[path.len() - 1].to_owned(), value.into());
    }

    fn put_opt<V: Into<Value> + Display>(&mut self, shown: &str, path: &[&str], value: Option<V>) {
        if let Some(v) = value {
            self.put(shown, path, v);
        }
    }
}

/// The timeout of the creation waits when the environment says nothing else: a Render
/// Postgres is usually available within a few minutes.
const DEFAULT_CREATE_TIMEOUT: Duration = Duration::from_secs(15 * 60);

impl RenderProvisioner {
    /// The provisioner of `environment`, reading the spec's settings (offline).
    pub(crate) fn new(
        provider: RenderProvider,
        spec: &LoadedSpec,
        environment: &str,
    ) -> Result<Self> {
        let asked = spec.creations_asked(environment);
        let env_owner = spec
            .environment_settings::<RenderEnvironmentSettings>(environment)?
            .value
            .owner_id;
        let mut datastores = vec![];
        for (key, like) in &asked.datastores {
            let settings = spec.datastore_settings::<RenderDatastoreSettings>(key, environment)?;
            let v = &settings.value;
            let like = match like {
                Some(like_env) => {
                    let theirs = spec
                        .datastore_settings::<RenderDatastoreSettings>(key, like_env)?
                        .value;
                    let their_env_owner = spec
                        .environment_settings::<RenderEnvironmentSettings>(like_env)?
                        .value
                        .owner_id;
                    Some(Like {
                        environment: like_env.clone(),
                        found_by: ServiceRef::Name(theirs.name.unwrap_or_else(|| key.clone())),
                        owner: theirs.owner_id.or(their_env_owner),
                    })
                }
                None => None,
            };
            datastores.push(DatastoreAsk {
                key: key.clone(),
                name: v.name.clone().unwrap_or_else(|| key.clone()),
                owner: v.owner_id.clone().or_else(|| env_owner.clone()),
                settings,
                like,
            });
        }
        let mut services = vec![];
        for (key, like) in &asked.services {
            let settings = spec.service_settings::<RenderServiceSettings>(key, environment)?;
            let v = &settings.value;
            let like = match like {
                Some(like_env) => {
                    let theirs = spec
                        .service_settings::<RenderServiceSettings>(key, like_env)?
                        .value;
                    let their_env_owner = spec
                        .environment_settings::<RenderEnvironmentSettings>(like_env)?
                        .value
                        .owner_id;
                    Some(Like {
                        environment: like_env.clone(),
                        found_by: match (theirs.service_id, theirs.service_name) {
                            (Some(id), _) => ServiceRef::Id(id),
                            (None, Some(n)) => ServiceRef::Name(n),
                            (None, None) => ServiceRef::Name(key.clone()),
                        },
                        owner: theirs.owner_id.or(their_env_owner),
                    })
                }
                None => None,
            };
            let spec_service = &spec.spec.services[key];
            services.push(ServiceAsk {
                key: key.clone(),
                name: v.service_name.clone().unwrap_or_else(|| key.clone()),
                owner: v.owner_id.clone().or_else(|| env_owner.clone()),
                health_path: spec_service.health_path.clone(),
                http: spec_service.http,
                settings,
                like,
            });
        }
        let timeout = spec
            .spec
            .environment(environment)
            .map(|e| e.deploy_timeout)
            .unwrap_or(DEFAULT_CREATE_TIMEOUT);
        Ok(RenderProvisioner {
            provider,
            environment: environment.to_owned(),
            datastores,
            services,
            timeout,
        })
    }

    /// The id of the datastore named `name` (exactly) in `owner`'s workspace, if any.
    async fn find_datastore(
        &self,
        kind: DatastoreKind,
        name: &str,
        owner: Option<&str>,
    ) -> Result<Option<String>> {
        let mut query: Vec<(&str, String)> =
            owner.iter().map(|o| ("ownerId", (*o).to_owned())).collect();
        query.push(("name", name.to_owned()));
        let items: Vec<DatastoreItem> = self
            .provider
            .client()
            .list_all(
                &[segment(kind)],
                &query,
                &format!("{} named `{name}`", what(kind)),
            )
            .await?;
        let ids: Vec<String> = items
            .into_iter()
            .map(|i| i.postgres)
            .filter(|n| n.name == name)
            .map(|n| n.id)
            .collect();
        match ids.as_slice() {
            [] => Ok(None),
            [id] => Ok(Some(id.clone())),
            many => Err(Error::config(format!(
                "{} {}s are named `{name}` ({}); give each environment's its own name",
                many.len(),
                what(kind),
                many.join(", ")
            ))),
        }
    }

    /// The id of the service found `how`, in `owner`'s workspace, if it exists.
    async fn find_service(&self, how: &ServiceRef, owner: Option<&str>) -> Result<Option<String>> {
        match self.provider.find_service_in(how, owner).await {
            Ok(found) => Ok(Some(found.id)),
            Err(Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    async fn datastore_creation(&self, ask: &DatastoreAsk) -> Result<Creation> {
        let mine = &ask.settings.value;
        let kind = mine.kind;
        let theirs = match &ask.like {
            Some(like) => Some(self.read_like_datastore(kind, &ask.key, like).await?),
            None => None,
        };
        let theirs = theirs.as_ref();
        let owner = match ask
            .owner
            .clone()
            .or_else(|| theirs.and_then(|t| t.owner.as_ref().map(|o| o.id.clone())))
        {
            Some(o) => o,
            None => self.only_workspace(&ask.settings).await?,
        };
        let mut b = Body::default();
        b.put("name", &["name"], ask.name.clone());
        b.put("owner_id", &["ownerId"], owner);
        let plan = mine
            .plan
            .clone()
            .or_else(|| theirs.and_then(|t| t.plan.clone()))
            .ok_or_else(|| {
                ask.settings.error_at(
                    "plan",
                    format!(
                        "datastore `{}` is to be created in `{}`: give its `plan`",
                        ask.key, self.environment
                    ),
                )
            })?;
        b.put("plan", &["plan"], plan.clone());
        b.put_opt(
            "region",
            &["region"],
            mine.region
                .map(|r| r.as_str().to_owned())
                .or_else(|| theirs.and_then(|t| t.region.clone())),
        );
        match kind {
            DatastoreKind::Postgres => {
                let version = mine
                    .version
                    .clone()
                    .or_else(|| theirs.and_then(|t| t.version.clone()))
                    .ok_or_else(|| {
                        ask.settings.error_at(
                            "version",
                            format!(
                                "Postgres `{}` is to be created in `{}`: give its `version` (\"16\", say)",
                                ask.key, self.environment
                            ),
                        )
                    })?;
                b.put("version", &["version"], version);
                b.put_opt(
                    "database_name",
                    &["databaseName"],
                    mine.database_name
                        .clone()
                        .or_else(|| theirs.and_then(|t| t.database_name.clone())),
                );
                b.put_opt(
                    "database_user",
                    &["databaseUser"],
                    mine.database_user
                        .clone()
                        .or_else(|| theirs.and_then(|t| t.database_user.clone())),
                );
                b.put_opt(
                    "disk_size_gb",
                    &["diskSizeGB"],
                    mine.disk_size_gb
                        .or_else(|| theirs.and_then(|t| t.disk_size_gb)),
                );
                // Production's standby is copied only onto a plan that can have one: `like`
                // on a small staging plan means "without high availability", not a 400.
                b.put(
                    "high_availability",
                    &["enableHighAvailability"],
                    mine.high_availability
                        .or_else(|| {
                            theirs
                                .and_then(|t| t.high_availability_enabled)
                                .filter(|_| plan_has_high_availability(&plan))
                        })
                        .unwrap_or(false),
                );
            }
            DatastoreKind::KeyValue => {
                let policy = mine
                    .maxmemory_policy
                    .or_else(|| {
                        theirs
                            .and_then(|t| t.options.as_ref())
                            .and_then(|o| o.maxmemory_policy.as_deref())
                            .and_then(MaxmemoryPolicy::from_render)
                    })
                    .unwrap_or(MaxmemoryPolicy::Noeviction);
                b.put("maxmemory_policy", &["maxmemoryPolicy"], policy.as_str());
            }
        }
        let request = match kind {
            DatastoreKind::Postgres => Request::Postgres {
                body: Value::Object(b.json),
            },
            DatastoreKind::KeyValue => Request::KeyValue {
                body: Value::Object(b.json),
            },
        };
        Ok(Creation {
            kind: datastore_kind(kind),
            name: ask.name.clone(),
            owner: format!("datastore {}", ask.key),
            namespace: None,
            like: ask.like.as_ref().map(|l| l.environment.clone()),
            settings: b.shown,
            request: to_value(&request)?,
        })
    }

    async fn read_like_datastore(
        &self,
        kind: DatastoreKind,
        key: &str,
        like: &Like,
    ) -> Result<DatastoreDefinition> {
        let ServiceRef::Name(name) = &like.found_by else {
            unreachable!("datastores are found by name");
        };
        let id = self
            .find_datastore(kind, name, like.owner.as_deref())
            .await?
            .ok_or_else(|| {
                Error::not_found(format!(
                    "{} `{name}` of `{}`, which datastore `{key}` is to be created like (`like = \"{}\"`)",
                    what(kind),
                    like.environment,
                    like.environment
                ))
            })?;
        self.read_datastore(kind, &id, name).await
    }

    async fn service_creation(&self, ask: &ServiceAsk) -> Result<Creation> {
        let mine = &ask.settings.value;
        let theirs = match &ask.like {
            Some(like) => {
                let id = self
                    .find_service(&like.found_by, like.owner.as_deref())
                    .await?
                    .ok_or_else(|| {
                        Error::not_found(format!(
                            "the service of `{}` that service `{}` is to be created like ({})",
                            like.environment,
                            ask.key,
                            match &like.found_by {
                                ServiceRef::Id(id) => format!("id {id}"),
                                ServiceRef::Name(n) => format!("named `{n}`"),
                            }
                        ))
                    })?;
                // The service itself only: its environment variables are never read.
                Some(self.read_service(&id).await?)
            }
            None => None,
        };
        let theirs = theirs.as_ref();
        let details = theirs.and_then(|t| t.service_details.as_ref());
        let env_details = details.and_then(|d| d.env_specific_details.as_ref());
        let missing = |key: &str, what: &str| {
            ask.settings.error_at(
                key,
                format!(
                    "service `{}` is to be created in `{}`: give its `{key}` ({what})",
                    ask.key, self.environment
                ),
            )
        };

        let service_type = match mine.service_type {
            Some(t) => t,
            None => match theirs {
                Some(t) => ServiceType::from_render(&t.service_type).ok_or_else(|| {
                    Error::not_supported(
                        crate::error::PROVIDER,
                        format!(
                            "creating a `{}` like `{}`'s: staging creates web services, background workers, private services, cron jobs and static sites",
                            t.service_type,
                            ask.like.as_ref().map_or("", |l| l.environment.as_str())
                        ),
                    )
                })?,
                None if ask.http => ServiceType::WebService,
                None => ServiceType::BackgroundWorker,
            },
        };
        // A static site has no runtime: Render builds it once and serves its files.
        let is_static = service_type == ServiceType::StaticSite;
        let runtime = match mine.runtime {
            _ if is_static => None,
            Some(r) => Some(r),
            None => Some(
                details
                    .and_then(|d| d.runtime.as_deref().or(d.env.as_deref()))
                    .and_then(Runtime::from_render)
                    .ok_or_else(|| missing("runtime", "ruby, node, python, docker..."))?,
            ),
        };
        if runtime == Some(Runtime::Image) {
            return Err(ask.settings.error_at(
                "runtime",
                format!(
                    "service `{}`: staging does not create services from a prebuilt image (registry credentials are the platform's); create it on Render, or build it from its repo",
                    ask.key
                ),
            ));
        }
        let owner = match ask
            .owner
            .clone()
            .or_else(|| theirs.and_then(|t| t.owner_id.clone()))
        {
            Some(o) => o,
            None => self.only_workspace(&ask.settings).await?,
        };

        let mut b = Body::default();
        b.put("type", &["type"], service_type.as_str());
        b.put("name", &["name"], ask.name.clone());
        b.put("owner_id", &["ownerId"], owner.clone());
        let repo = mine
            .repo
            .clone()
            .or_else(|| theirs.and_then(|t| t.repo.clone()))
            .ok_or_else(|| missing("repo", "the repository URL"))?;
        b.put("repo", &["repo"], repo);
        b.put_opt(
            "branch",
            &["branch"],
            mine.branch
                .clone()
                .or_else(|| theirs.and_then(|t| t.branch.clone())),
        );
        b.put_opt(
            "root_dir",
            &["rootDir"],
            mine.root_dir
                .clone()
                .or_else(|| theirs.and_then(|t| t.root_dir.clone()))
                .filter(|d| !d.is_empty()),
        );
        // Render deploys on every push when `autoDeploy` is on; `staging up` deploys the
        // commit it verified, so the copy is never deployed behind its back.
        b.put("auto_deploy", &["autoDeploy"], "no");
        let Some(runtime) = runtime else {
            return self.static_site(ask, b, details, owner);
        };
        b.put("runtime", &["serviceDetails", "runtime"], runtime.as_str());
        if service_type == ServiceType::CronJob {
            let schedule = mine
                .schedule
                .clone()
                .or_else(|| details.and_then(|d| d.schedule.clone()))
                .ok_or_else(|| missing("schedule", "a cron expression in UTC, `0 3 * * *` say"))?;
            b.put("schedule", &["serviceDetails", "schedule"], schedule);
        }
        b.put_opt(
            "plan",
            &["serviceDetails", "plan"],
            mine.plan
                .clone()
                .or_else(|| details.and_then(|d| d.plan.clone())),
        );
        b.put_opt(
            "region",
            &["serviceDetails", "region"],
            mine.region
                .map(|r| r.as_str().to_owned())
                .or_else(|| details.and_then(|d| d.region.clone())),
        );
        if service_type == ServiceType::WebService {
            b.put_opt(
                "health_check_path",
                &["serviceDetails", "healthCheckPath"],
                mine.health_check_path
                    .clone()
                    .or_else(|| ask.health_path.clone())
                    .or_else(|| details.and_then(|d| d.health_check_path.clone()))
                    .filter(|p| !p.is_empty()),
            );
        }
        if service_type != ServiceType::CronJob {
            b.put_opt(
                "pre_deploy_command",
                &["serviceDetails", "preDeployCommand"],
                mine.pre_deploy_command
                    .clone()
                    .or_else(|| env_details.and_then(|e| e.pre_deploy_command.clone()))
                    .filter(|c| !c.is_empty()),
            );
        }
        let build = mine
            .build_command
            .clone()
            .or_else(|| env_details.and_then(|e| e.build_command.clone()));
        let start = mine
            .start_command
            .clone()
            .or_else(|| env_details.and_then(|e| e.start_command.clone()));
        if runtime.is_native() {
            let build = build.ok_or_else(|| missing("build_command", "`bundle install`, say"))?;
            let start = start.ok_or_else(|| missing("start_command", "`bundle exec puma`, say"))?;
            b.put(
                "build_command",
                &["serviceDetails", "envSpecificDetails", "buildCommand"],
                build,
            );
            b.put(
                "start_command",
                &["serviceDetails", "envSpecificDetails", "startCommand"],
                start,
            );
        } else {
            b.put_opt(
                "docker_command",
                &["serviceDetails", "envSpecificDetails", "dockerCommand"],
                start.or_else(|| env_details.and_then(|e| e.docker_command.clone())),
            );
            b.put_opt(
                "docker_context",
                &["serviceDetails", "envSpecificDetails", "dockerContext"],
                env_details.and_then(|e| e.docker_context.clone()),
            );
            b.put_opt(
                "dockerfile_path",
                &["serviceDetails", "envSpecificDetails", "dockerfilePath"],
                env_details.and_then(|e| e.dockerfile_path.clone()),
            );
        }
        let disk = match &mine.disk {
            _ if service_type == ServiceType::CronJob => None,
            Some(d) => Some((d.name.clone(), d.mount_path.clone(), d.size_gb)),
            None => details
                .and_then(|d| d.disk.as_ref())
                .map(|d| (d.name.clone(), d.mount_path.clone(), d.size_gb)),
        };
        if let Some((name, mount_path, size)) = disk {
            b.put("disk.name", &["serviceDetails", "disk", "name"], name);
            b.put(
                "disk.mount_path",
                &["serviceDetails", "disk", "mountPath"],
                mount_path,
            );
            b.put_opt("disk.size_gb", &["serviceDetails", "disk", "sizeGB"], size);
        }
        service_creation_of(ask, service_type, b, owner)
    }

    /// The rest of a static site's body: its build command and publish path (Render's
    /// `staticSiteDetailsPOST`), from the spec or the site it is created like.
    fn static_site(
        &self,
        ask: &ServiceAsk,
        mut b: Body,
        details: Option<&ServiceDetailsDefinition>,
        owner: String,
    ) -> Result<Creation> {
        let mine = &ask.settings.value;
        b.put_opt(
            "build_command",
            &["serviceDetails", "buildCommand"],
            mine.build_command
                .clone()
                .or_else(|| details.and_then(|d| d.build_command.clone()))
                .filter(|c| !c.is_empty()),
        );
        b.put_opt(
            "publish_path",
            &["serviceDetails", "publishPath"],
            mine.publish_path
                .clone()
                .or_else(|| details.and_then(|d| d.publish_path.clone()))
                .filter(|p| !p.is_empty()),
        );
        service_creation_of(ask, ServiceType::StaticSite, b, owner)
    }

    /// The workspace to create in when the spec names none: the only one the key sees
    /// (`GET /owners`); several are a config error at the resource's settings.
    async fn only_workspace<T>(&self, settings: &Settings<T>) -> Result<String> {
        #[derive(Deserialize)]
        struct OwnerItem {
            owner: OwnerRef,
        }
        let owners: Vec<OwnerItem> = self
            .provider
            .client()
            .list_all(&["owners"], &[], "workspaces")
            .await?;
        match owners.as_slice() {
            [one] => Ok(one.owner.id.clone()),
            many => Err(settings.error_at(
                "owner_id",
                format!(
                    "Render creates in a workspace and the API key sees {} ({}): set `owner_id = \"tea-...\"` in [environments.{}.settings] (or here)",
                    many.len(),
                    many.iter()
                        .map(|o| o.owner.id.as_str())
                        .collect::<Vec<_>>()
                        .join(", "),
                    self.environment
                ),
            )),
        }
    }

    async fn read_datastore(
        &self,
        kind: DatastoreKind,
        id: &str,
        name: &str,
    ) -> Result<DatastoreDefinition> {
        self.provider
            .client()
            .get(
                &[segment(kind), id],
                &[],
                &format!("{} {name} ({id})", what(kind)),
            )
            .await
    }

    /// A service's definition; never its environment variables.
    async fn read_service(&self, id: &str) -> Result<ServiceDefinition> {
        self.provider
            .client()
            .get(&["services", id], &[], &format!("service {id}"))
            .await
    }

    async fn create_datastore(&self, kind: DatastoreKind, body: &Value) -> Result<String> {
        let name = body["name"].as_str().unwrap_or_default().to_owned();
        let created: DatastoreDefinition = self
            .provider
            .client()
            .write(
                Method::POST,
                &[segment(kind)],
                body,
                Pace::Write,
                &format!("{} `{name}`", what(kind)),
            )
            .await?;
        Ok(created.id)
    }

    /// Waits, bounded by the environment's timeout, until Render reports datastore `id`
    /// `available`. A Postgres or Key Value still `creating` exists (and is billed) but must
    /// not be used: the error names it, its id and its state.
    async fn wait_available(&self, kind: DatastoreKind, id: &str, name: &str) -> Result<()> {
        poll_until(
            &Cadence::for_provider(&self.provider),
            self.timeout,
            || {
                format!(
                    "{} `{name}` ({id}), which exists, to be available",
                    what(kind)
                )
            },
            || self.read_datastore(kind, id, name),
            |d, _| match d.status.as_deref() {
                Some("available") => Ok(Next::Done(())),
                Some(s @ ("suspended" | "recovery_failed")) => Err(Error::failed(format!(
                    "{} `{name}` ({}) exists but is {s}",
                    what(kind),
                    d.id
                ))),
                other => Ok(Next::Again(other.unwrap_or("unknown").to_owned())),
            },
        )
        .await
    }

    async fn create_service(&self, body: &Value) -> Result<String> {
        let name = body["name"].as_str().unwrap_or_default().to_owned();
        #[derive(Deserialize)]
        struct Created {
            service: ServiceDefinition,
        }
        let created: Created = self
            .provider
            .client()
            .write(
                Method::POST,
                &["services"],
                body,
                Pace::Write,
                &format!("service `{name}`"),
            )
            .await?;
        let id = created.service.id.clone();
        poll_until(
            &Cadence::for_provider(&self.provider),
            self.timeout,
            || format!("service `{name}` ({id}) to exist"),
            || self.read_service(&id),
            |s, _| match s.suspended.as_deref() {
                Some("suspended") => Ok(Next::Again("suspended".to_owned())),
                _ => Ok(Next::Done(())),
            },
        )
        .await?;
        Ok(id)
    }

    async fn create_custom_domain(
        &self,
        service: &str,
        owner: Option<&str>,
        domain: &str,
    ) -> Result<String> {
        let id = self
            .find_service(&ServiceRef::Name(service.to_owned()), owner)
            .await?
            .ok_or_else(|| {
                Error::not_found(format!(
                    "service named `{service}`, to add custom domain {domain} to"
                ))
            })?;
        let added: Vec<CustomDomain> = self
            .provider
            .client()
            .write(
                Method::POST,
                &["services", &id, "custom-domains"],
                &json!({ "name": domain }),
                Pace::Write,
                &format!("custom domain {domain} of {service}"),
            )
            .await?;
        if let Some(d) = added.into_iter().find(|d| d.name == domain) {
            return Ok(d.id);
        }
        // The answer did not list it: read it back by name, so that the id recorded is the
        // domain's own (a teardown deletes by it), never the service's.
        let read: CustomDomain = self
            .provider
            .client()
            .get(
                &["services", &id, "custom-domains", domain],
                &[],
                &format!("custom domain {domain} of {service}"),
            )
            .await?;
        Ok(read.id)
    }
}

#[async_trait]
impl Provisioner for RenderProvisioner {
    async fn missing(&self) -> Result<Vec<Creation>> {
        let mut out = vec![];
        for ask in &self.datastores {
            let kind = ask.settings.value.kind;
            if self
                .find_datastore(kind, &ask.name, ask.owner.as_deref())
                .await?
                .is_none()
            {
                out.push(self.datastore_creation(ask).await?);
            }
        }
        let mut domains = vec![];
        for ask in &self.services {
            let found = self
                .find_service(&ServiceRef::Name(ask.name.clone()), ask.owner.as_deref())
                .await?;
            let has: Vec<String> = match &found {
                Some(id) => {
                    let items: Vec<CustomDomainItem> = self
                        .provider
                        .client()
                        .list_all(
                            &["services", id, "custom-domains"],
                            &[],
                            &format!("custom domains of {}", ask.name),
                        )
                        .await?;
                    items.into_iter().map(|i| i.custom_domain.name).collect()
                }
                None => {
                    out.push(self.service_creation(ask).await?);
                    vec![]
                }
            };
            for domain in &ask.settings.value.custom_domains {
                if has.iter().any(|h| h == domain.as_str()) {
                    continue;
                }
                let mut shown = BTreeMap::new();
                shown.insert("service".to_owned(), ask.name.clone());
                domains.push(Creation {
                    kind: CUSTOM_DOMAIN_KIND.to_owned(),
                    name: domain.to_string(),
                    owner: format!("{CUSTOM_DOMAINS_OF}{}", ask.key),
                    namespace: None,
                    like: None,
                    settings: shown,
                    request: to_value(&Request::CustomDomain {
                        service: ask.name.clone(),
                        owner: ask.owner.clone(),
                        domain: domain.to_string(),
                    })?,
                });
            }
        }
        out.extend(domains);
        Ok(out)
    }

    /// Every datastore the spec asks for that exists is `available` — on every run: a rerun
    /// after a timeout finds the datastore still `creating` and waits for it (or fails naming
    /// it) instead of treating "exists" as "ready".
    async fn ready(&self) -> Result<()> {
        for ask in &self.datastores {
            let kind = ask.settings.value.kind;
            if let Some(id) = self
                .find_datastore(kind, &ask.name, ask.owner.as_deref())
                .await?
            {
                self.wait_available(kind, &id, &ask.name).await?;
            }
        }
        Ok(())
    }

    async fn create(&self, creation: &CreationTarget) -> Result<String> {
        let request: Request = serde_json::from_value(creation.request.clone()).map_err(|e| {
            Error::failed(format!(
                "{} was not planned by the Render provisioner: {e}",
                creation.describe()
            ))
        })?;
        match &request {
            Request::Postgres { body } => {
                self.create_datastore(DatastoreKind::Postgres, body).await
            }
            Request::KeyValue { body } => {
                self.create_datastore(DatastoreKind::KeyValue, body).await
            }
            Request::Service { body } => self.create_service(body).await,
            Request::CustomDomain {
                service,
                owner,
                domain,
            } => {
                self.create_custom_domain(service, owner.as_deref(), domain)
                    .await
            }
        }
    }
}

/// The creation of a service of `service_type` with body `b` in workspace `owner`.
fn service_creation_of(
    ask: &ServiceAsk,
    service_type: ServiceType,
    b: Body,
    owner: String,
) -> Result<Creation> {
    Ok(Creation {
        kind: service_kind(service_type),
        name: ask.name.clone(),
        owner: format!("service {}", ask.key),
        namespace: Some(owner),
        like: ask.like.as_ref().map(|l| l.environment.clone()),
        settings: b.shown,
        request: to_value(&Request::Service {
            body: Value::Object(b.json),
        })?,
    })
}

/// The [`Creation::kind`] of a service of `service_type` (`render web service`): what a
/// ledger records, and what the teardown reads back ([`crate::teardown`]).
pub(crate) fn service_kind(service_type: ServiceType) -> String {
    format!("render {}", service_type.as_str().replace('_', " "))
}

/// The [`Creation::kind`] of a datastore (`render postgres`, `render key value`).
pub(crate) fn datastore_kind(kind: DatastoreKind) -> String {
    format!("render {}", what(kind))
}

/// The [`Creation::kind`] of a custom domain.
pub(crate) const CUSTOM_DOMAIN_KIND: &str = "render custom domain";

/// How a custom domain's [`Creation::owner`] starts, before the spec service's key: the
/// teardown finds the service the domain hangs on from it.
pub(crate) const CUSTOM_DOMAINS_OF: &str = "custom_domains of service ";

fn to_value(request: &Request) -> Result<Value> {
    serde_json::to_value(request)
        .map_err(|e| Error::failed(format!("cannot encode a request to Render: {e}")))
}

pub(crate) fn segment(kind: DatastoreKind) -> &'static str {
    match kind {
        DatastoreKind::Postgres => "postgres",
        DatastoreKind::KeyValue => "key-value",
    }
}

pub(crate) fn what(kind: DatastoreKind) -> &'static str {
    match kind {
        DatastoreKind::Postgres => "postgres",
        DatastoreKind::KeyValue => "key value",
    }
}

/// A Postgres or Key Value as `GET /postgres/{id}` and `GET /key-value/{id}` describe it:
/// its shape only (connection strings are another call, never made here).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct DatastoreDefinition {
    id: String,
    #[serde(default)]
    status: Option<String>,
    #[serde(default)]
    owner: Option<OwnerRef>,
    #[serde(default)]
    plan: Option<String>,
    #[serde(default)]
    region: Option<String>,
    #[serde(default)]
    version: Option<String>,
    #[serde(default)]
    database_name: Option<String>,
    #[serde(default)]
    database_user: Option<String>,
    #[serde(default, rename = "diskSizeGB")]
    disk_size_gb: Option<u32>,
    #[serde(default)]
    high_availability_enabled: Option<bool>,
    #[serde(default)]
    options: Option<KeyValueOptions>,
}

#[derive(Debug, Deserialize)]
struct OwnerRef {
    id: String,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct KeyValueOptions {
    #[serde(default)]
    maxmemory_policy: Option<String>,
}

/// A service's definition as `GET /services/{id}` describes it.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ServiceDefinition {
    id: String,
    #[serde(rename = "type", default)]
    service_type: String,
    #[serde(default)]
    owner_id: Option<String>,
    #[serde(default)]
    repo: Option<String>,
    #[serde(default)]
    branch: Option<String>,
    #[serde(default)]
    root_dir: Option<String>,
    #[serde(default)]
    suspended: Option<String>,
    #[serde(default)]
    service_details: Option<ServiceDetailsDefinition>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ServiceDetailsDefinition {
    #[serde(default)]
    runtime: Option<String>,
    #[serde(default)]
    env: Option<String>,
    #[serde(default)]
    plan: Option<String>,
    #[serde(default)]
    region: Option<String>,
    #[serde(default)]
    health_check_path: Option<String>,
    #[serde(default)]
    disk: Option<DiskDefinition>,
    /// A cron job's.
    #[serde(default)]
    schedule: Option<String>,
    /// A static site's.
    #[serde(default)]
    build_command: Option<String>,
    /// A static site's.
    #[serde(default)]
    publish_path: Option<String>,
    #[serde(default)]
    env_specific_details: Option<EnvSpecificDefinition>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct DiskDefinition {
    name: String,
    mount_path: String,
    #[serde(default, rename = "sizeGB")]
    size_gb: Option<u32>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct EnvSpecificDefinition {
    #[serde(default)]
    build_command: Option<String>,
    #[serde(default)]
    start_command: Option<String>,
    #[serde(default)]
    pre_deploy_command: Option<String>,
    #[serde(default)]
    docker_command: Option<String>,
    #[serde(default)]
    docker_context: Option<String>,
    #[serde(default)]
    dockerfile_path: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_body_and_its_shown_settings_are_built_together() {
        let mut b = Body::default();
        b.put("plan", &["serviceDetails", "plan"], "starter");
        b.put("name", &["name"], "web-staging");
        b.put_opt::<String>("region", &["serviceDetails", "region"], None);
        assert_eq!(
            Value::Object(b.json),
            json!({ "name": "web-staging", "serviceDetails": { "plan": "starter" } })
        );
        assert_eq!(b.shown.len(), 2);
        assert_eq!(b.shown["plan"], "starter");
    }
}
