//! [`RenderFactory`]: the spec's `provider = "render"` environments.
//!
//! Settings: [`RenderEnvironmentSettings`] (`owner_id`) and [`RenderServiceSettings`]
//! (`service_id` or `service_name`, `owner_id`, `custom_domains`), deserialized by core from the spec with
//! `deny_unknown_fields`, so a misspelt key is an error at its place. The same settings
//! name each service's [`Resource`] for the isolation check.

use std::sync::Arc;

use staging_core::spec::LoadedSpec;
use staging_core::{
    DynProbe, DynProvider, ProviderFactory, Result, RetryPolicy, RetryProvider, SpecWarning,
};

use staging_core::isolation::Resource;
use staging_core::spec::{Settings, SettingsTypes};

use crate::builder::{RenderBuilder, ServiceRef};
use crate::domains::CustomDomainProbe;
use crate::provider::RenderProvider;
use crate::provision::RenderProvisioner;
use crate::settings::{
    DatastoreKind, KEY_VALUE_PLANS, MaxmemoryPolicy, PAID_SERVICE_PLANS, POSTGRES_PLANS,
    POSTGRES_VERSIONS, RenderDatastoreSettings, RenderEnvironmentSettings, RenderServiceSettings,
    Runtime, SERVICE_PLANS, ServiceType, high_availability_plans, plan_has_high_availability,
};
use crate::teardown::RenderTeardown;

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
        if let Some(reads) = env.value.api_reads_per_minute {
            b = b.with_read_budget(staging_core::ReadBudget::per_minute(
                reads,
                "Render API: the workspace's read limit, from the spec's `api_reads_per_minute`",
            ));
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

/// `value` must be one of `allowed` (Render's words), else an error at `key` listing them.
fn check_one_of<T>(
    settings: &Settings<T>,
    key: &str,
    value: Option<&str>,
    allowed: &[&str],
    what: &str,
) -> Result<()> {
    match value {
        Some(v) if !allowed.contains(&v) => Err(settings.error_at(
            key,
            format!(
                "`{key}` = `{v}` is not {what} (one of: {})",
                allowed.join(", ")
            ),
        )),
        _ => Ok(()),
    }
}

/// The creation settings of service `name`: well-formed always, and complete where its
/// `create` applies to `environment` without `like` (what Render needs to create it).
fn check_service_creation(
    spec: &LoadedSpec,
    name: &str,
    environment: &str,
    s: &Settings<RenderServiceSettings>,
) -> Result<()> {
    let v = &s.value;
    for (key, text) in [
        ("repo", &v.repo),
        ("branch", &v.branch),
        ("root_dir", &v.root_dir),
        ("build_command", &v.build_command),
        ("start_command", &v.start_command),
        ("pre_deploy_command", &v.pre_deploy_command),
    ] {
        check_text(s, key, text.as_deref(), &[])?;
    }
    if let Some(repo) = &v.repo
        && !(repo.starts_with("https://") || repo.starts_with("git@"))
    {
        return Err(s.error_at(
            "repo",
            format!("`repo` = `{repo}` is not a repository URL (https://github.com/OWNER/REPO)"),
        ));
    }
    if let Some(path) = &v.health_check_path
        && !path.starts_with('/')
    {
        return Err(s.error_at(
            "health_check_path",
            format!("`health_check_path` = `{path}` must start with `/`"),
        ));
    }
    if let Some(disk) = &v.disk {
        check_text(s, "disk.name", Some(&disk.name), &[])?;
        if !disk.mount_path.starts_with('/') {
            return Err(s.error_at(
                "disk.mount_path",
                format!(
                    "`mount_path` = `{}` must be an absolute path",
                    disk.mount_path
                ),
            ));
        }
        if disk.size_gb == Some(0) {
            return Err(s.error_at("disk.size_gb", "`size_gb` must be at least 1"));
        }
    }
    check_kind_settings(s, v)?;
    let paid = matches!(
        v.service_type,
        Some(ServiceType::BackgroundWorker | ServiceType::PrivateService | ServiceType::CronJob)
    );
    if paid {
        check_one_of(
            s,
            "plan",
            v.plan.as_deref(),
            PAID_SERVICE_PLANS,
            "an instance type of a worker or private service",
        )?;
    } else {
        check_one_of(
            s,
            "plan",
            v.plan.as_deref(),
            SERVICE_PLANS,
            "a Render instance type",
        )?;
    }
    let Some(create) = spec.service_create(name, environment) else {
        return Ok(());
    };
    if v.service_id.is_some() {
        return Err(s.error_at(
            "service_id",
            format!(
                "service `{name}` is to be created in `{environment}` when missing, so it is found by its name: give `service_name` instead of `service_id`"
            ),
        ));
    }
    if let Some(like) = &create.like {
        // The copy must not be found as the original: one name, one workspace.
        let theirs = spec
            .service_settings::<RenderServiceSettings>(name, like)?
            .value;
        let mine_name = v.service_name.clone().unwrap_or_else(|| name.to_owned());
        let theirs_name = match (&theirs.service_id, theirs.service_name) {
            (Some(_), _) => None,
            (None, n) => Some(n.unwrap_or_else(|| name.to_owned())),
        };
        if theirs_name.as_deref() == Some(mine_name.as_str())
            && owner_of(spec, environment, v.owner_id.as_deref())
                == owner_of(spec, like, theirs.owner_id.as_deref())
        {
            return Err(s.error_at(
                "service_name",
                format!(
                    "service `{name}` is created in `{environment}` like `{like}`'s, but both are named `{mine_name}`: `{environment}` would find `{like}`'s; set `overrides.{environment}.service_name`"
                ),
            ));
        }
        return Ok(());
    }
    let missing = |key: &str, what: &str| {
        Err(s.error_at(
            key,
            format!(
                "service `{name}` is to be created in `{environment}` (`create = true`): give its `{key}` ({what}), or create it `like` another environment's"
            ),
        ))
    };
    if v.service_type == Some(ServiceType::StaticSite) {
        // Render builds a static site from its repo; the build command may be none (plain
        // files) and the publish path defaults to `public`.
        if v.repo.is_none() {
            return missing("repo", "the repository URL");
        }
        return Ok(());
    }
    if v.service_type == Some(ServiceType::CronJob) && v.schedule.is_none() {
        return missing("schedule", "a cron expression in UTC, `0 3 * * *` say");
    }
    let Some(runtime) = v.runtime else {
        return missing("runtime", "ruby, node, python, docker...");
    };
    if runtime == Runtime::Image {
        return Err(s.error_at(
            "runtime",
            format!("service `{name}`: staging does not create services from a prebuilt image"),
        ));
    }
    if v.repo.is_none() {
        return missing("repo", "the repository URL");
    }
    if runtime.is_native() {
        if v.build_command.is_none() {
            return missing("build_command", "`bundle install`, say");
        }
        if v.start_command.is_none() {
            return missing("start_command", "`bundle exec puma`, say");
        }
    }
    Ok(())
}

/// Settings that belong to one kind of service only: a static site has no runtime, plan,
/// region, start command, pre-deploy command, health check or disk (Render serves it from its
/// CDN); `schedule` is a cron job's, `publish_path` a static site's. A schedule is a
/// five-field cron expression, as Render takes it.
fn check_kind_settings(
    s: &Settings<RenderServiceSettings>,
    v: &RenderServiceSettings,
) -> Result<()> {
    let kind = v.service_type;
    if kind == Some(ServiceType::StaticSite) {
        for (key, given) in [
            ("runtime", v.runtime.is_some()),
            ("plan", v.plan.is_some()),
            ("region", v.region.is_some()),
            ("start_command", v.start_command.is_some()),
            ("pre_deploy_command", v.pre_deploy_command.is_some()),
            ("health_check_path", v.health_check_path.is_some()),
            ("disk", v.disk.is_some()),
        ] {
            if given {
                return Err(s.error_at(
                    key,
                    format!(
                        "a static site has no `{key}` on Render (it is built once and served from Render's CDN): remove it, or set `type` to a service that runs"
                    ),
                ));
            }
        }
    } else if v.publish_path.is_some() {
        return Err(s.error_at(
            "publish_path",
            "`publish_path` is a static site's setting: set `type = \"static_site\"` or remove it",
        ));
    }
    match (&v.schedule, kind) {
        (Some(_), k) if k != Some(ServiceType::CronJob) => Err(s.error_at(
            "schedule",
            "`schedule` is a cron job's setting: set `type = \"cron_job\"` or remove it",
        )),
        (Some(schedule), _) if schedule.split_whitespace().count() != 5 => Err(s.error_at(
            "schedule",
            format!(
                "`schedule` = `{schedule}` is not a cron expression of five fields (minute hour day month weekday), `0 3 * * *` say"
            ),
        )),
        _ => {
            check_text(s, "publish_path", v.publish_path.as_deref(), &[])?;
            Ok(())
        }
    }
}

/// High availability where Render offers it: a Pro plan or higher, Postgres 13 or later,
/// a team workspace (docs.render.com/postgresql-high-availability). Render refuses the
/// rest with a 400 at creation; here it is refused at `validate`, at its place.
fn check_high_availability(
    d: &Settings<RenderDatastoreSettings>,
    name: &str,
    environment: &str,
    v: &RenderDatastoreSettings,
) -> Result<()> {
    if let Some(plan) = v.plan.as_deref()
        && !plan_has_high_availability(plan)
    {
        return Err(d.error_at(
                "high_availability",
                format!(
                    "datastore `{name}` in `{environment}`: Render offers high availability only on a Pro plan or higher, not on `{plan}` (plans that allow it: {}); set `overrides.{environment}.high_availability = false` or one of those plans",
                    high_availability_plans().join(", ")
                ),
            ));
    }
    if let Some(version) = v.version.as_deref()
        && version.parse::<u32>().is_ok_and(|major| major < 13)
    {
        return Err(d.error_at(
                "high_availability",
                format!(
                    "datastore `{name}` in `{environment}`: Render offers high availability from Postgres 13, not on version {version}"
                ),
            ));
    }
    if v.owner_id.as_deref().is_some_and(|o| o.starts_with("usr-")) {
        return Err(d.error_at(
            "high_availability",
            format!(
                "datastore `{name}` in `{environment}`: Render offers high availability to team workspaces (`tea-...`), not to a personal one"
            ),
        ));
    }
    Ok(())
}

/// The workspace of a resource: its own `owner_id`, else its environment's.
fn owner_of(spec: &LoadedSpec, environment: &str, own: Option<&str>) -> Option<String> {
    own.map(str::to_owned).or_else(|| {
        spec.environment_settings::<RenderEnvironmentSettings>(environment)
            .ok()
            .and_then(|e| e.value.owner_id)
    })
}

/// A datastore's settings: well-formed for its kind always, and complete where its
/// `create` applies to `environment` without `like`.
fn check_datastore(
    spec: &LoadedSpec,
    name: &str,
    environment: &str,
    d: &Settings<RenderDatastoreSettings>,
) -> Result<()> {
    let v = &d.value;
    check_text(d, "name", v.name.as_deref(), &[])?;
    check_text(d, "owner_id", v.owner_id.as_deref(), &["tea-", "usr-"])?;
    check_text(d, "database_name", v.database_name.as_deref(), &[])?;
    check_text(d, "database_user", v.database_user.as_deref(), &[])?;
    match v.kind {
        DatastoreKind::Postgres => {
            check_one_of(
                d,
                "plan",
                v.plan.as_deref(),
                POSTGRES_PLANS,
                "a Render Postgres plan",
            )?;
            check_one_of(
                d,
                "version",
                v.version.as_deref(),
                POSTGRES_VERSIONS,
                "a Postgres version Render offers",
            )?;
            if v.maxmemory_policy.is_some() {
                return Err(d.error_at(
                    "maxmemory_policy",
                    format!("datastore `{name}` is a Postgres: `maxmemory_policy` is a Key Value setting"),
                ));
            }
            if v.disk_size_gb == Some(0) {
                return Err(d.error_at("disk_size_gb", "`disk_size_gb` must be at least 1"));
            }
            if v.high_availability == Some(true) {
                check_high_availability(d, name, environment, v)?;
            }
        }
        DatastoreKind::KeyValue => {
            check_one_of(
                d,
                "plan",
                v.plan.as_deref(),
                KEY_VALUE_PLANS,
                "a Render Key Value plan",
            )?;
            for (key, set) in [
                ("version", v.version.is_some()),
                ("database_name", v.database_name.is_some()),
                ("database_user", v.database_user.is_some()),
                ("disk_size_gb", v.disk_size_gb.is_some()),
                ("high_availability", v.high_availability.is_some()),
            ] {
                if set {
                    return Err(d.error_at(
                        key,
                        format!("datastore `{name}` is a Key Value: `{key}` is a Postgres setting"),
                    ));
                }
            }
        }
    }
    let Some(create) = spec.datastore_create(name, environment) else {
        return Ok(());
    };
    if let Some(like) = &create.like {
        let theirs = spec
            .datastore_settings::<RenderDatastoreSettings>(name, like)?
            .value;
        if theirs.kind != v.kind {
            return Err(d.error_at(
                "kind",
                format!("datastore `{name}` is created like `{like}`'s, which is another kind"),
            ));
        }
        let mine_name = v.name.clone().unwrap_or_else(|| name.to_owned());
        if theirs.name.unwrap_or_else(|| name.to_owned()) == mine_name
            && owner_of(spec, environment, v.owner_id.as_deref())
                == owner_of(spec, like, theirs.owner_id.as_deref())
        {
            return Err(d.error_at(
                "name",
                format!(
                    "datastore `{name}` is created in `{environment}` like `{like}`'s, but both are named `{mine_name}`: `{environment}` would find `{like}`'s; set `overrides.{environment}.name`"
                ),
            ));
        }
        return Ok(());
    }
    let missing = |key: &str, what: &str| {
        Err(d.error_at(
            key,
            format!(
                "datastore `{name}` is to be created in `{environment}` (`create = true`): give its `{key}` ({what}), or create it `like` another environment's"
            ),
        ))
    };
    if v.plan.is_none() {
        return missing("plan", "basic_256mb, starter...");
    }
    if v.kind == DatastoreKind::Postgres && v.version.is_none() {
        return missing("version", "\"16\", say");
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
            .with_datastores::<RenderDatastoreSettings>()
    }

    /// A [`RenderProvisioner`]: creates the services, Postgres, Key Value and custom domains
    /// the spec asks for (`create = ...`) when they are missing from `environment`.
    fn provisioner(
        &self,
        spec: &LoadedSpec,
        environment: &str,
    ) -> Result<Option<staging_core::DynProvisioner>> {
        let provider = self.build_render(spec, environment)?;
        Ok(Some(Arc::new(RenderProvisioner::new(
            provider,
            spec,
            environment,
        )?)))
    }

    fn teardown(
        &self,
        spec: &LoadedSpec,
        environment: &str,
    ) -> Result<Option<staging_core::teardown::DynTeardown>> {
        let provider = self.build_render(spec, environment)?;
        Ok(Some(Arc::new(RenderTeardown::new(
            provider,
            spec,
            environment,
        )?)))
    }

    fn check(&self, spec: &LoadedSpec, environment: &str) -> Result<()> {
        let env = spec.environment_settings::<RenderEnvironmentSettings>(environment)?;
        check_text(
            &env,
            "owner_id",
            env.value.owner_id.as_deref(),
            &["tea-", "usr-"],
        )?;
        if let Some(reads) = env.value.api_reads_per_minute
            && !(1..=100_000).contains(&reads)
        {
            return Err(env.error_at(
                "api_reads_per_minute",
                format!("`api_reads_per_minute` = {reads} is not a read limit Render has: give the workspace's requests a minute (100 on the lowest plan)"),
            ));
        }
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
            check_service_creation(spec, name, environment, &s)?;
        }
        for name in spec.spec.datastores.keys() {
            let d = spec.datastore_settings::<RenderDatastoreSettings>(name, environment)?;
            check_datastore(spec, name, environment, &d)?;
        }
        Ok(())
    }

    /// A Key Value that evicts keys (`maxmemory_policy` other than `noeviction`) while a
    /// worker (`http = false`) receives its connection string: a job queue (Sidekiq, Celery,
    /// BullMQ) loses jobs when Redis evicts them.
    fn warnings(&self, spec: &LoadedSpec, environment: &str) -> Result<Vec<SpecWarning>> {
        let mut out = vec![];
        for name in spec.spec.datastores.keys() {
            let d = spec.datastore_settings::<RenderDatastoreSettings>(name, environment)?;
            let v = &d.value;
            let Some(policy) = v.maxmemory_policy else {
                continue;
            };
            if v.kind != DatastoreKind::KeyValue || policy == MaxmemoryPolicy::Noeviction {
                continue;
            }
            let render_name = v.name.clone().unwrap_or_else(|| name.clone());
            let workers = workers_using(spec, environment, &render_name);
            if workers.is_empty() {
                continue;
            }
            let policy = serde_json::to_value(policy)
                .ok()
                .and_then(|p| p.as_str().map(str::to_owned))
                .unwrap_or_default();
            out.push(SpecWarning {
                at: d.location_of("maxmemory_policy"),
                message: format!(
                    "Key Value `{render_name}` (datastore `{name}`) evicts keys (`maxmemory_policy = \"{policy}\"`) and is a worker's store ({}): a job queue (Sidekiq, Celery, BullMQ) silently loses jobs when keys are evicted; set `maxmemory_policy = \"noeviction\"`, or give the queue a store of its own",
                    workers.join(", ")
                ),
            });
        }
        Ok(out)
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
        // Every datastore by workspace + name, so that two environments naming the same
        // Render Postgres or Key Value (a forgotten `overrides.ENV` name) are refused before
        // staging would find production's and take it for its own.
        let created = spec.creations_asked(environment).datastores;
        for name in spec.spec.datastores.keys() {
            let d = spec
                .datastore_settings::<RenderDatastoreSettings>(name, environment)?
                .value;
            let kind = match d.kind {
                crate::settings::DatastoreKind::Postgres => "render postgres",
                crate::settings::DatastoreKind::KeyValue => "render key value",
            };
            let mut r = Resource::new(
                kind,
                format!("datastore {name}"),
                [
                    (
                        "owner_id",
                        d.owner_id.or_else(|| env.value.owner_id.clone()),
                    ),
                    ("name", Some(d.name.unwrap_or_else(|| name.clone()))),
                ],
            );
            r.written = created.contains_key(name);
            out.push(r);
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

/// The workers (`http = false`) of `environment` that receive a variable read from the Key
/// Value named `render_name` (`provider = "key_value:NAME"`, or `:internal`), as
/// "worker `w` gets it as `REDIS_URL`" phrases.
fn workers_using(spec: &LoadedSpec, environment: &str, render_name: &str) -> Vec<String> {
    let mut out = vec![];
    for (key, var) in &spec.spec.vars {
        let source = var.sources.get(environment).or(var.source.as_ref());
        let Some(staging_core::spec::SecretSource::Provider(reference)) = source else {
            continue;
        };
        let store = reference
            .strip_prefix("key_value:")
            .map(|r| r.strip_suffix(":internal").unwrap_or(r));
        if store != Some(render_name) {
            continue;
        }
        for (service, s) in &spec.spec.services {
            let receives = var
                .services
                .as_ref()
                .is_none_or(|list| list.iter().any(|n| n == service));
            if !s.http && receives {
                out.push(format!("worker `{service}` gets it as `{key}`"));
            }
        }
    }
    out
}
