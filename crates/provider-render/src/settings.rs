//! The spec's settings for Render, as types: what `staging validate` deserializes
//! `[environments.E.settings]`, each service's merged settings and each datastore's merged
//! settings into (an unknown key is an error at its place), and what the JSON Schema in
//! `docs/` describes.
//!
//! The creation settings (`type`, `runtime`, `plan`, `region`, `repo`...) are read only
//! when the spec asks a missing resource to be created (`create = ...`); every one is
//! optional here, and what creating needs is checked offline by `RenderFactory::check`.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use staging_core::spec::DomainName;

/// `[environments.E.settings]` of a `render` environment.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RenderEnvironmentSettings {
    /// The workspace (`tea-...` or `usr-...`) to look for services and datastores in, and
    /// to create them in.
    #[serde(default)]
    pub owner_id: Option<String>,
    /// The API's read limit for this workspace, in requests a minute, when its plan allows
    /// more than the lowest plan's 100 (which is the default): waits use a quarter of it, so
    /// `400` lets five services be polled every 3 s instead of every 12 s.
    #[serde(default)]
    pub api_reads_per_minute: Option<u32>,
}

/// A service on Render: `[services.S.settings]` with `[services.S.overrides.E]` merged
/// onto it.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RenderServiceSettings {
    /// The Render service id (`srv-...`): one request, never ambiguous.
    #[serde(default)]
    pub service_id: Option<String>,
    /// The Render service's name, when no id is given (default: the spec's service name).
    #[serde(default)]
    pub service_name: Option<String>,
    /// The workspace (`tea-...` or `usr-...`) of this service, when not the environment's.
    #[serde(default)]
    pub owner_id: Option<String>,
    /// The custom domains this service must serve (`["www.example.com"]`). The smoke step
    /// checks each is added to the service and verified on Render, asks Render to check its
    /// DNS again when it is not, and fails naming the DNS record to create. With `create`,
    /// a domain missing from the service is added to it.
    #[serde(default)]
    pub custom_domains: Vec<DomainName>,

    /// Creating: the kind of service (default `web_service`, or `background_worker` for a
    /// service with `http = false`).
    #[serde(default, rename = "type")]
    pub service_type: Option<ServiceType>,
    /// Creating: the runtime (`ruby`, `node`, `python`, `docker`...). Required without
    /// `like`.
    #[serde(default)]
    pub runtime: Option<Runtime>,
    /// Creating: the instance type (`starter`, `standard`, `pro`...; a worker or private
    /// service needs a paid one).
    #[serde(default)]
    pub plan: Option<String>,
    /// Creating: the region (`oregon`, `ohio`, `virginia`, `frankfurt`, `singapore`).
    #[serde(default)]
    pub region: Option<Region>,
    /// Creating: the repository URL, without a branch (`https://github.com/acme/shop`).
    /// Required without `like`.
    #[serde(default)]
    pub repo: Option<String>,
    /// Creating: the branch to build (staging's, usually `staging`).
    #[serde(default)]
    pub branch: Option<String>,
    /// Creating: the directory of the service in a monorepo.
    #[serde(default)]
    pub root_dir: Option<String>,
    /// Creating: the build command (native runtimes; required with them, without `like`).
    #[serde(default)]
    pub build_command: Option<String>,
    /// Creating: the start command (native runtimes; required with them, without `like`).
    #[serde(default)]
    pub start_command: Option<String>,
    /// Creating: the command run before each deploy (migrations, say).
    #[serde(default)]
    pub pre_deploy_command: Option<String>,
    /// Creating: the path Render checks (web services; default the service's
    /// `health_path`).
    #[serde(default)]
    pub health_check_path: Option<String>,
    /// Creating: a persistent disk.
    #[serde(default)]
    pub disk: Option<DiskSettings>,
    /// Creating a cron job: when it runs, as a cron expression in UTC (`"0 3 * * *"`).
    /// Required for `type = "cron_job"` without `like`.
    #[serde(default)]
    pub schedule: Option<String>,
    /// Creating a static site: the directory its build leaves the site in (Render's
    /// default `public`).
    #[serde(default)]
    pub publish_path: Option<String>,
}

impl RenderServiceSettings {
    /// Whether any setting that only creating reads is written.
    pub fn says_how_to_create(&self) -> bool {
        self.service_type.is_some()
            || self.runtime.is_some()
            || self.plan.is_some()
            || self.region.is_some()
            || self.repo.is_some()
            || self.branch.is_some()
            || self.root_dir.is_some()
            || self.build_command.is_some()
            || self.start_command.is_some()
            || self.pre_deploy_command.is_some()
            || self.health_check_path.is_some()
            || self.disk.is_some()
            || self.schedule.is_some()
            || self.publish_path.is_some()
    }
}

/// The kinds of Render service `staging` creates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ServiceType {
    /// A public web service.
    WebService,
    /// A background worker (no port).
    BackgroundWorker,
    /// A private service (reachable inside Render's network only).
    PrivateService,
    /// A cron job: built like a worker, run on its `schedule`, serving nothing.
    CronJob,
    /// A static site: built once, its `publish_path` served from Render's CDN (no runtime,
    /// no plan, no region).
    StaticSite,
}

impl ServiceType {
    /// Render's word for it.
    pub fn as_str(self) -> &'static str {
        match self {
            ServiceType::WebService => "web_service",
            ServiceType::BackgroundWorker => "background_worker",
            ServiceType::PrivateService => "private_service",
            ServiceType::CronJob => "cron_job",
            ServiceType::StaticSite => "static_site",
        }
    }

    /// From Render's word, for the types `staging` creates.
    pub fn from_render(raw: &str) -> Option<Self> {
        match raw {
            "web_service" => Some(ServiceType::WebService),
            "background_worker" => Some(ServiceType::BackgroundWorker),
            "private_service" => Some(ServiceType::PrivateService),
            "cron_job" => Some(ServiceType::CronJob),
            "static_site" => Some(ServiceType::StaticSite),
            _ => None,
        }
    }
}

/// Render's runtimes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Runtime {
    /// Built from a Dockerfile.
    Docker,
    /// Elixir.
    Elixir,
    /// Go.
    Go,
    /// Node.js.
    Node,
    /// Python.
    Python,
    /// Ruby.
    Ruby,
    /// Rust.
    Rust,
    /// A prebuilt image (not created by `staging`: it needs registry settings).
    Image,
}

impl Runtime {
    /// Render's word for it.
    pub fn as_str(self) -> &'static str {
        match self {
            Runtime::Docker => "docker",
            Runtime::Elixir => "elixir",
            Runtime::Go => "go",
            Runtime::Node => "node",
            Runtime::Python => "python",
            Runtime::Ruby => "ruby",
            Runtime::Rust => "rust",
            Runtime::Image => "image",
        }
    }

    /// From Render's word.
    pub fn from_render(raw: &str) -> Option<Self> {
        serde_json::from_value(serde_json::Value::String(raw.to_owned())).ok()
    }

    /// Whether Render builds it with a build and a start command (not Docker, not an image).
    pub fn is_native(self) -> bool {
        !matches!(self, Runtime::Docker | Runtime::Image)
    }
}

/// Render's regions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Region {
    /// Oregon (US West), Render's default.
    Oregon,
    /// Ohio (US East).
    Ohio,
    /// Virginia (US East).
    Virginia,
    /// Frankfurt (EU Central).
    Frankfurt,
    /// Singapore (Southeast Asia).
    Singapore,
}

impl Region {
    /// Render's word for it.
    pub fn as_str(self) -> &'static str {
        match self {
            Region::Oregon => "oregon",
            Region::Ohio => "ohio",
            Region::Virginia => "virginia",
            Region::Frankfurt => "frankfurt",
            Region::Singapore => "singapore",
        }
    }
}

/// A persistent disk of a service.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DiskSettings {
    /// The disk's name.
    pub name: String,
    /// Where it is mounted (`/var/data`).
    pub mount_path: String,
    /// Its size in GB (default 1).
    #[serde(default)]
    pub size_gb: Option<u32>,
}

/// The instance types of a web service.
pub(crate) const SERVICE_PLANS: &[&str] = &[
    "free",
    "starter",
    "starter_plus",
    "standard",
    "standard_plus",
    "pro",
    "pro_plus",
    "pro_max",
    "pro_ultra",
    "custom",
];
/// The instance types of a worker or a private service.
pub(crate) const PAID_SERVICE_PLANS: &[&str] = &[
    "starter",
    "standard",
    "pro",
    "pro_plus",
    "pro_max",
    "pro_ultra",
];
/// The plans of a Render Postgres.
pub(crate) const POSTGRES_PLANS: &[&str] = &[
    "free",
    "starter",
    "standard",
    "pro",
    "pro_plus",
    "custom",
    "basic_256mb",
    "basic_1gb",
    "basic_4gb",
    "pro_4gb",
    "pro_8gb",
    "pro_16gb",
    "pro_32gb",
    "pro_64gb",
    "pro_128gb",
    "pro_192gb",
    "pro_256gb",
    "pro_384gb",
    "pro_512gb",
    "accelerated_16gb",
    "accelerated_32gb",
    "accelerated_64gb",
    "accelerated_128gb",
    "accelerated_256gb",
    "accelerated_384gb",
    "accelerated_512gb",
    "accelerated_768gb",
    "accelerated_1024gb",
];
/// Whether Render offers high availability on Postgres plan `plan`: "a Pro instance type
/// or higher" (docs.render.com/postgresql-high-availability), so `pro`, `pro_plus`, every
/// `pro_*` and `accelerated_*`, and `custom`.
pub(crate) fn plan_has_high_availability(plan: &str) -> bool {
    matches!(plan, "pro" | "pro_plus" | "custom")
        || plan.starts_with("pro_")
        || plan.starts_with("accelerated_")
}

/// The Postgres plans [`plan_has_high_availability`] allows, for messages.
pub(crate) fn high_availability_plans() -> Vec<&'static str> {
    POSTGRES_PLANS
        .iter()
        .copied()
        .filter(|p| plan_has_high_availability(p))
        .collect()
}

/// The plans of a Render Key Value.
pub(crate) const KEY_VALUE_PLANS: &[&str] =
    &["free", "starter", "standard", "pro", "pro_plus", "custom"];
/// The Postgres versions Render offers.
pub(crate) const POSTGRES_VERSIONS: &[&str] = &["11", "12", "13", "14", "15", "16", "17", "18"];

/// `[datastores.NAME]` on Render: a Render Postgres or Key Value, `settings` with
/// `overrides.ENV` merged onto it. What `staging up` creates when it is missing and the
/// datastore's `create` says so; found by its name in the workspace.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RenderDatastoreSettings {
    /// `postgres` or `key_value`.
    pub kind: DatastoreKind,
    /// Its name on Render (default: the datastore's name in the spec). Give each
    /// environment its own (`overrides.staging = { name = "shop-db-staging" }`).
    #[serde(default)]
    pub name: Option<String>,
    /// The workspace (`tea-...` or `usr-...`), when not the environment's.
    #[serde(default)]
    pub owner_id: Option<String>,
    /// The plan (Postgres: `basic_256mb`, `basic_1gb`, `pro_4gb`...; Key Value: `free`,
    /// `starter`, `standard`...). Required without `like`.
    #[serde(default)]
    pub plan: Option<String>,
    /// The region (default Render's, `oregon`).
    #[serde(default)]
    pub region: Option<Region>,
    /// Postgres: the major version (`"16"`). Required without `like`.
    #[serde(default)]
    pub version: Option<String>,
    /// Postgres: the database's name (default Render's random one).
    #[serde(default)]
    pub database_name: Option<String>,
    /// Postgres: the database user (default Render's random one).
    #[serde(default)]
    pub database_user: Option<String>,
    /// Postgres: the disk size in GB.
    #[serde(default)]
    pub disk_size_gb: Option<u32>,
    /// Postgres: a standby for high availability (a pro plan only).
    #[serde(default)]
    pub high_availability: Option<bool>,
    /// Key Value: the eviction policy (default `noeviction` when creating: a queue or a
    /// session store must not lose keys silently).
    #[serde(default)]
    pub maxmemory_policy: Option<MaxmemoryPolicy>,
}

/// What a Render datastore is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum DatastoreKind {
    /// A Render Postgres (`dpg-...`).
    Postgres,
    /// A Render Key Value, Redis-compatible (`red-...`).
    KeyValue,
}

/// A Key Value's eviction policy (Redis `maxmemory-policy`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum MaxmemoryPolicy {
    /// Refuse writes when full (never lose a key).
    Noeviction,
    /// Evict the least frequently used keys.
    AllkeysLfu,
    /// Evict the least recently used keys.
    AllkeysLru,
    /// Evict random keys.
    AllkeysRandom,
    /// Evict the least frequently used keys that have a TTL.
    VolatileLfu,
    /// Evict the least recently used keys that have a TTL.
    VolatileLru,
    /// Evict random keys that have a TTL.
    VolatileRandom,
    /// Evict the keys nearest to expiry.
    VolatileTtl,
}

impl MaxmemoryPolicy {
    /// Render's word for it (`allkeys_lru`).
    pub fn as_str(self) -> &'static str {
        match self {
            MaxmemoryPolicy::Noeviction => "noeviction",
            MaxmemoryPolicy::AllkeysLfu => "allkeys_lfu",
            MaxmemoryPolicy::AllkeysLru => "allkeys_lru",
            MaxmemoryPolicy::AllkeysRandom => "allkeys_random",
            MaxmemoryPolicy::VolatileLfu => "volatile_lfu",
            MaxmemoryPolicy::VolatileLru => "volatile_lru",
            MaxmemoryPolicy::VolatileRandom => "volatile_random",
            MaxmemoryPolicy::VolatileTtl => "volatile_ttl",
        }
    }

    /// From Render's word, or Redis's (`allkeys-lru`).
    pub fn from_render(raw: &str) -> Option<Self> {
        serde_json::from_value(serde_json::Value::String(raw.replace('-', "_"))).ok()
    }
}
