//! One environment across providers (issue 35): a service with `provider = "..."` of its own,
//! its environment settings in `provider_settings.PROVIDER`, the narrowed spec each factory
//! reads, and the composite factory, provider, provisioner and teardown that put the
//! providers' parts together, each call dispatched by the service it is about.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Deserialize;
use staging_core::boundary::Identity;
use staging_core::cadence::ReadBudget;
use staging_core::provider::{Capability, Pacing};
use staging_core::provision::{Creation, Provisioner};
use staging_core::spec::{LoadOptions, LoadedSpec, SettingsTypes};
use staging_core::teardown::{Created, CreatedBy, DeletionTarget, Found, Teardown};
use staging_core::{
    Deploy, DeployKinds, DeployRequest, DeployStatus, DynProvider, DynProvisioner, DynTeardown,
    EnvVars, Error, LiveState, Provider, ProviderExt, ProviderFactory, ProviderRegistry, Result,
    ServiceHandle, WriteTarget, async_trait,
};

/// An environment's settings on either fake platform.
#[derive(Debug, Default, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
struct EnvSettings {
    #[serde(default)]
    account: Option<String>,
}

/// A service's settings on the `api` platform.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
struct ApiService {
    name: String,
}

/// A service's settings on the `web` platform (another type: a site).
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
struct WebService {
    site: String,
}

type Log = Arc<Mutex<Vec<String>>>;

/// The services of a narrowed spec a factory was asked with, and the environment's provider
/// there.
type Seen = (Vec<String>, String);

/// A platform in memory, named `api` or `web`.
#[derive(Debug, Clone)]
struct Fake {
    name: &'static str,
    log: Log,
    env: bool,
    pacing: Pacing,
}

impl Fake {
    fn new(name: &'static str, log: &Log) -> Self {
        Fake {
            name,
            log: log.clone(),
            env: true,
            pacing: Pacing::default(),
        }
    }
    fn note(&self, what: String) {
        self.log
            .lock()
            .unwrap()
            .push(format!("{}: {what}", self.name));
    }
}

#[async_trait]
impl Provider for Fake {
    fn name(&self) -> &str {
        self.name
    }
    fn pacing(&self) -> Pacing {
        self.pacing
    }
    fn capabilities(&self) -> staging_core::Capabilities<'_> {
        staging_core::Capabilities {
            env: self.env.then_some(self as &dyn EnvVars),
            ..Default::default()
        }
    }
    fn deploy_kinds(&self, _: &str) -> DeployKinds {
        DeployKinds::COMMIT
    }
    async fn locate(&self, environment: &str, service: &str) -> Result<ServiceHandle> {
        self.note(format!("locate {service} in {environment}"));
        Ok(ServiceHandle {
            name: service.to_owned(),
            environment: environment.to_owned(),
            id: format!("{}-{service}", self.name),
            identity: Identity::new(self.name, [("id", format!("{}-{service}", self.name))]),
        })
    }
    async fn live_state(&self, service: &ServiceHandle) -> Result<LiveState> {
        self.note(format!("live_state {}", service.name));
        Ok(LiveState {
            latest: None,
            live: None,
            url: (self.name == "api").then(|| {
                url::Url::parse(&format!(
                    "https://{}.api.example.test/",
                    service.environment
                ))
                .unwrap()
            }),
        })
    }
    async fn deploy(&self, service: &WriteTarget, _: &DeployRequest) -> Result<Deploy> {
        self.note(format!("deploy {}", service.handle().name));
        Ok(Deploy {
            id: "d1".into(),
            status: DeployStatus::Queued,
            commit: None,
            image: None,
            raw_status: "queued".into(),
        })
    }
    async fn deploy_status(&self, service: &ServiceHandle, id: &str) -> Result<Deploy> {
        self.note(format!("status {} {id}", service.name));
        Err(Error::config("not in these tests"))
    }
}

#[async_trait]
impl EnvVars for Fake {
    async fn env_vars(
        &self,
        service: &ServiceHandle,
    ) -> Result<BTreeMap<String, secrecy::SecretString>> {
        self.note(format!("env_vars {}", service.name));
        Ok(BTreeMap::new())
    }
    async fn set_env_var(
        &self,
        service: &WriteTarget,
        key: &str,
        value: &secrecy::SecretString,
    ) -> Result<()> {
        use secrecy::ExposeSecret;
        self.note(format!(
            "set {key}={} on {}",
            value.expose_secret(),
            service.handle().name
        ));
        Ok(())
    }
    async fn delete_env_var(&self, service: &WriteTarget, key: &str) -> Result<()> {
        self.note(format!("delete {key} on {}", service.handle().name));
        Ok(())
    }
}

/// Creates a thing per service `create` asks for, and deletes what it is given.
#[derive(Debug)]
struct FakeProvisioner {
    fake: Fake,
    services: Vec<String>,
    datastores: Vec<String>,
}

#[async_trait]
impl Provisioner for FakeProvisioner {
    async fn missing(&self) -> Result<Vec<Creation>> {
        let creation = |owner: String, name: &str| Creation {
            kind: format!("{} thing", self.fake.name),
            name: name.to_owned(),
            owner,
            namespace: None,
            like: None,
            settings: BTreeMap::new(),
            request: serde_json::Value::Null,
        };
        Ok(self
            .datastores
            .iter()
            .map(|d| creation(format!("datastore {d}"), d))
            .chain(
                self.services
                    .iter()
                    .map(|s| creation(format!("service {s}"), s)),
            )
            .collect())
    }
    async fn create(&self, creation: &staging_core::CreationTarget) -> Result<String> {
        self.fake.note(format!("create {}", creation.owner));
        Ok(format!("{}-{}", self.fake.name, creation.name))
    }
    async fn ready(&self) -> Result<()> {
        self.fake.note("ready".into());
        Ok(())
    }
}

#[async_trait]
impl Teardown for Fake {
    async fn find(&self, created: &Created) -> Result<Option<Found>> {
        self.note(format!("find {}", created.owner));
        Ok(None)
    }
    async fn delete(&self, target: &DeletionTarget) -> Result<()> {
        self.note(format!("delete {}", target.created().owner));
        Ok(())
    }
}

/// The factory of one fake platform; it records the narrowed spec it was asked with.
#[derive(Debug, Clone)]
struct FakeFactory {
    fake: Fake,
    seen: Arc<Mutex<Vec<Seen>>>,
    step: bool,
}

impl FakeFactory {
    fn new(name: &'static str, log: &Log) -> Self {
        FakeFactory {
            fake: Fake::new(name, log),
            seen: Arc::default(),
            step: false,
        }
    }
}

#[derive(Debug)]
struct NamedStep(&'static str);

#[async_trait]
impl staging_core::pipeline::Step for NamedStep {
    fn name(&self) -> &'static str {
        self.0
    }
    async fn run(
        &self,
        _: &mut staging_core::pipeline::RunContext,
    ) -> Result<staging_core::pipeline::StepReport> {
        Ok(staging_core::pipeline::StepReport::passed(self.0, "ran"))
    }
}

impl ProviderFactory for FakeFactory {
    fn name(&self) -> &'static str {
        self.fake.name
    }
    fn settings_types(&self) -> SettingsTypes {
        match self.fake.name {
            "api" => {
                SettingsTypes::of::<EnvSettings, ApiService>().with_datastores::<EnvSettings>()
            }
            _ => SettingsTypes::of::<EnvSettings, WebService>(),
        }
    }
    fn check(&self, spec: &LoadedSpec, environment: &str) -> Result<()> {
        let env = spec.environment_settings::<EnvSettings>(environment)?;
        if env.value.account.as_deref() == Some("") {
            return Err(env.error_at("account", "empty account"));
        }
        self.seen.lock().unwrap().push((
            spec.spec.services.keys().cloned().collect(),
            spec.spec.environment(environment)?.provider.clone(),
        ));
        Ok(())
    }
    fn resources(
        &self,
        spec: &LoadedSpec,
        environment: &str,
    ) -> Result<Vec<staging_core::isolation::Resource>> {
        // What a service is on the platform: its `name` (api) or `site` (web) setting, as
        // the environment's overrides leave it.
        let mut out = vec![];
        for s in spec.spec.services.keys() {
            let id = match self.fake.name {
                "api" => {
                    spec.service_settings::<ApiService>(s, environment)?
                        .value
                        .name
                }
                _ => {
                    spec.service_settings::<WebService>(s, environment)?
                        .value
                        .site
                }
            };
            out.push(staging_core::isolation::Resource::new(
                format!("{} thing", self.fake.name),
                format!("service {s}"),
                [("id", Some(id))],
            ));
        }
        Ok(out)
    }
    fn build(&self, _: &LoadedSpec, _: &str) -> Result<DynProvider> {
        Ok(Arc::new(self.fake.clone()))
    }
    fn provisioner(&self, spec: &LoadedSpec, environment: &str) -> Result<Option<DynProvisioner>> {
        let asked = spec.creations_asked(environment);
        Ok(Some(Arc::new(FakeProvisioner {
            fake: self.fake.clone(),
            services: asked.services.keys().cloned().collect(),
            datastores: asked.datastores.keys().cloned().collect(),
        })))
    }
    fn teardown(&self, _: &LoadedSpec, _: &str) -> Result<Option<DynTeardown>> {
        Ok(Some(Arc::new(self.fake.clone())))
    }
    fn run_steps(&self) -> Vec<Box<dyn staging_core::pipeline::Step>> {
        if self.step {
            vec![Box::new(NamedStep(self.fake.name))]
        } else {
            vec![]
        }
    }
}

fn load(text: &str) -> Result<LoadedSpec> {
    LoadedSpec::parse(
        "staging.toml",
        text.to_owned(),
        LoadOptions::new(&["api", "web"]),
    )
}

/// `api` runs on the environments' provider; `frontend` on `web` in every environment.
const STACK: &str = r#"[project]
name = "shop"

[environments.staging]
provider = "api"
settings = { account = "acme" }

[environments.staging.provider_settings.web]
account = "acme-web"

[environments.preview]
ephemeral = true
like = "staging"

[services.api]
settings = { name = "shop-api" }

[services.frontend]
provider = "web"
settings = { site = "shop-web" }

[datastores.db]
create = true
"#;

struct Setup {
    log: Log,
    api: FakeFactory,
    web: FakeFactory,
    registry: ProviderRegistry,
}

fn setup() -> Setup {
    let log = Log::default();
    let api = FakeFactory::new("api", &log);
    let web = FakeFactory::new("web", &log);
    let registry = ProviderRegistry::new()
        .register(api.clone())
        .register(web.clone());
    Setup {
        log,
        api,
        web,
        registry,
    }
}

fn taken(log: &Log) -> Vec<String> {
    std::mem::take(&mut *log.lock().unwrap())
}

#[test]
fn an_environment_whose_services_all_run_on_its_provider_gets_the_plain_factory() {
    let s = setup();
    let spec = load(
        "[project]\nname = \"x\"\n[environments.staging]\nprovider = \"api\"\n[services.api]\nsettings = { name = \"a\" }\n",
    )
    .unwrap();
    let plain = s.registry.factory("api").unwrap();
    let got = s.registry.factory_for(&spec, "staging").unwrap();
    assert!(Arc::ptr_eq(&plain, &got), "today's path: the very factory");
}

#[test]
fn the_narrowed_spec_holds_only_the_providers_services_and_its_settings() {
    let spec = load(STACK).unwrap();
    assert_eq!(spec.service_provider("frontend", "staging"), Some("web"));
    assert_eq!(spec.service_provider("api", "preview"), Some("api"));
    assert_eq!(spec.providers_used("staging").unwrap(), ["api", "web"]);

    let web = spec.for_provider("staging", "web");
    assert_eq!(
        web.spec.services.keys().collect::<Vec<_>>(),
        ["frontend"],
        "only the web platform's services"
    );
    assert!(
        web.spec.datastores.is_empty(),
        "datastores are the environment provider's"
    );
    assert_eq!(web.spec.environments["staging"].provider, "web");
    let settings = web.environment_settings::<EnvSettings>("staging").unwrap();
    assert_eq!(settings.value.account.as_deref(), Some("acme-web"));
    // The key's place is where `provider_settings.web` writes it.
    assert_eq!(settings.location_of("account"), "staging.toml:9:11");
    // An environment without `provider_settings.web` has none.
    let preview = web.environment_settings::<EnvSettings>("preview").unwrap();
    assert_eq!(preview.value.account, None);

    let api = spec.for_provider("staging", "api");
    assert_eq!(api.spec.services.keys().collect::<Vec<_>>(), ["api"]);
    assert_eq!(api.spec.datastores.keys().collect::<Vec<_>>(), ["db"]);
    let own = api.environment_settings::<EnvSettings>("staging").unwrap();
    assert_eq!(own.value.account.as_deref(), Some("acme"));
}

#[test]
fn a_typo_in_provider_settings_is_reported_where_it_is_written() {
    let s = setup();
    let spec = load(&STACK.replace("account = \"acme-web\"", "acount = \"acme-web\"")).unwrap();
    let err = s.registry.check(&spec, "staging").unwrap_err().to_string();
    assert!(
        err.starts_with("staging.toml:9:1: ") && err.contains("did you mean `account`?"),
        "{err}"
    );
}

#[test]
fn each_service_is_checked_with_the_types_of_the_provider_it_runs_on() {
    let s = setup();
    let spec = load(STACK).unwrap();
    s.registry.check(&spec, "staging").unwrap();
    // Each factory was asked with its own narrowed spec, on itself.
    assert_eq!(
        *s.api.seen.lock().unwrap(),
        [(vec!["api".to_owned()], "api".to_owned())]
    );
    assert_eq!(
        *s.web.seen.lock().unwrap(),
        [(vec!["frontend".to_owned()], "web".to_owned())]
    );
    // `site` is the web platform's key: written on the api service it is an unknown key,
    // reported at its place with the api types.
    let spec = load(&STACK.replace(
        "settings = { name = \"shop-api\" }",
        "settings = { name = \"shop-api\", site = \"x\" }",
    ))
    .unwrap();
    let err = s.registry.check(&spec, "staging").unwrap_err().to_string();
    assert!(err.contains("unknown field `site`"), "{err}");
    assert!(err.starts_with("staging.toml:16:33: "), "{err}");
}

#[test]
fn an_unknown_service_provider_is_refused_at_its_place() {
    let err = load(&STACK.replace("provider = \"web\"", "provider = \"wbe\""))
        .unwrap_err()
        .to_string();
    assert!(
        err.starts_with("staging.toml:19:12: ") && err.contains("unknown provider `wbe`"),
        "{err}"
    );
}

#[test]
fn provider_settings_for_a_provider_no_service_runs_on_are_refused_at_their_place() {
    let text = STACK.replace(
        "[services.frontend]\nprovider = \"web\"\nsettings = { site = \"shop-web\" }\n",
        "",
    );
    let err = load(&text).unwrap_err().to_string();
    assert!(
        err.starts_with("staging.toml:8:") && err.contains("no service runs on it"),
        "{err}"
    );
    let err = load(&STACK.replace(
        "[environments.staging.provider_settings.web]",
        "[environments.staging.provider_settings.api]",
    ))
    .unwrap_err()
    .to_string();
    assert!(err.contains("is the provider of `staging` itself"), "{err}");
}

#[tokio::test]
async fn the_composite_provider_sends_every_call_to_the_provider_of_its_service() {
    let s = setup();
    let spec = load(STACK).unwrap();
    let factory = s.registry.factory_for(&spec, "staging").unwrap();
    assert_eq!(
        factory.name(),
        "api",
        "named after the environment's provider"
    );
    let provider = factory.build(&spec, "staging").unwrap();
    let api = provider.locate("staging", "api").await.unwrap();
    let frontend = provider.locate("staging", "frontend").await.unwrap();
    assert_eq!(
        (api.id.as_str(), frontend.id.as_str()),
        ("api-api", "web-frontend")
    );
    provider.live_state(&frontend).await.unwrap();
    provider
        .set_env_var(
            &staging_core::testkit::target(&frontend),
            "API_URL",
            &"https://x".to_owned().into(),
        )
        .await
        .unwrap();
    provider.env_vars(&api).await.unwrap();
    assert_eq!(
        taken(&s.log),
        [
            "api: locate api in staging",
            "web: locate frontend in staging",
            "web: live_state frontend",
            "web: set API_URL=https://x on frontend",
            "api: env_vars api",
        ]
    );
    // Offline resources: each part's, for its own services.
    let owners: Vec<String> = factory
        .resources(&spec, "staging")
        .unwrap()
        .into_iter()
        .map(|r| format!("{} {}", r.kind, r.owner))
        .collect();
    assert_eq!(
        owners,
        ["api thing service api", "web thing service frontend"]
    );
}

#[test]
fn a_capability_is_handed_out_only_when_every_part_has_it_and_pacing_is_the_most_conservative() {
    let log = Log::default();
    let mut api = FakeFactory::new("api", &log);
    api.fake.pacing = Pacing {
        poll_interval: Duration::from_secs(2),
        read_budget: ReadBudget::per_minute(100, "api"),
        runs_services_in_process: false,
    };
    let mut web = FakeFactory::new("web", &log);
    web.fake.pacing = Pacing {
        poll_interval: Duration::from_secs(5),
        read_budget: ReadBudget::per_minute(50, "web"),
        runs_services_in_process: false,
    };
    let spec = load(STACK).unwrap();
    let registry = ProviderRegistry::new()
        .register(api.clone())
        .register(web.clone());
    let provider = registry
        .factory_for(&spec, "staging")
        .unwrap()
        .build(&spec, "staging")
        .unwrap();
    let pacing = provider.pacing();
    assert_eq!(pacing.poll_interval, Duration::from_secs(5));
    assert_eq!(pacing.read_budget.source, "web");
    assert!(provider.capabilities().has(Capability::WriteEnv));

    web.fake.env = false;
    let registry = ProviderRegistry::new().register(api).register(web);
    let provider = registry
        .factory_for(&spec, "staging")
        .unwrap()
        .build(&spec, "staging")
        .unwrap();
    assert!(!provider.capabilities().has(Capability::WriteEnv));
}

#[tokio::test]
async fn the_composite_provisioner_lists_the_environments_provider_first_and_creates_by_owner() {
    let s = setup();
    let spec = load(&STACK.replace(
        "[services.frontend]\n",
        "[services.frontend]\ncreate = true\n",
    ))
    .unwrap();
    let factory = s.registry.factory_for(&spec, "staging").unwrap();
    let provisioner = factory.provisioner(&spec, "staging").unwrap().unwrap();
    let missing = provisioner.missing().await.unwrap();
    let owners: Vec<&str> = missing.iter().map(|c| c.owner.as_str()).collect();
    assert_eq!(owners, ["datastore db", "service frontend"]);
    for c in &missing {
        provisioner
            .create(&staging_core::testkit::creation_target(c))
            .await
            .unwrap();
    }
    provisioner.ready().await.unwrap();
    assert_eq!(
        taken(&s.log),
        [
            "api: create datastore db",
            "web: create service frontend",
            "api: ready",
            "web: ready"
        ]
    );
}

#[tokio::test]
async fn the_composite_teardown_finds_and_deletes_by_the_owner_of_the_entry() {
    let s = setup();
    let spec = load(STACK).unwrap();
    let teardown = s
        .registry
        .factory_for(&spec, "staging")
        .unwrap()
        .teardown(&spec, "staging")
        .unwrap()
        .unwrap();
    let entry = |owner: &str| Created {
        kind: "thing".into(),
        name: "n".into(),
        owner: owner.into(),
        namespace: None,
        by: CreatedBy::Provider,
        id: Some("i".into()),
        requested_at: 0,
        deleted_at: None,
    };
    let found = Found {
        id: "i".into(),
        name: "n".into(),
        created_at: None,
        marked_ours: None,
    };
    for owner in ["service frontend", "service api", "datastore db"] {
        teardown.find(&entry(owner)).await.unwrap();
        teardown
            .delete(&DeletionTarget::unchecked_for_tests(
                entry(owner),
                found.clone(),
            ))
            .await
            .unwrap();
    }
    assert_eq!(
        taken(&s.log),
        [
            "web: find service frontend",
            "web: delete service frontend",
            "api: find service api",
            "api: delete service api",
            "api: find datastore db",
            "api: delete datastore db",
        ]
    );
}

#[test]
fn the_steps_of_a_provider_that_only_a_service_runs_on_are_in_the_pipeline() {
    let log = Log::default();
    let mut web = FakeFactory::new("web", &log);
    web.step = true;
    let registry = ProviderRegistry::new()
        .register(FakeFactory::new("api", &log))
        .register(web);
    let spec = load(STACK).unwrap();
    let names: Vec<&str> = registry.run_steps(&spec).iter().map(|s| s.name()).collect();
    assert_eq!(names, ["web"]);
}

#[tokio::test]
async fn a_frontend_whose_variable_names_the_apis_url_is_located_after_the_api_and_gets_that_url() {
    use staging_core::pipeline::{DeployStep, RunContext, Step};
    let s = setup();
    let spec = Arc::new(
        load(&format!(
            "{STACK}[vars.API_URL]\nvalue = \"${{services.api.url}}/v1\"\nservices = [\"frontend\"]\n"
        ))
        .unwrap(),
    );
    let mut ctx = RunContext::new(
        spec.clone(),
        "staging",
        "0123456789abcdef0123456789abcdef01234567",
    )
    .unwrap();
    staging_core::testkit::assume_isolated(&mut ctx);
    ctx.provider = Some(
        s.registry
            .factory_for(&spec, "staging")
            .unwrap()
            .build(&spec, "staging")
            .unwrap(),
    );
    // What the secrets step leaves: the value in spec syntax, and what it waits for.
    ctx.vars
        .insert("API_URL".into(), "${services.api.url}/v1".to_owned().into());
    ctx.deferred
        .insert("API_URL".into(), vec!["services.api.url".into()]);
    let report = DeployStep.run(&mut ctx).await.unwrap();
    assert_eq!(
        report.status,
        staging_core::pipeline::StepStatus::Passed,
        "{report:?}"
    );
    let log = taken(&s.log);
    let at = |line: &str| {
        log.iter()
            .position(|l| l == line)
            .unwrap_or_else(|| panic!("{line}: {log:?}"))
    };
    assert!(
        at("api: live_state api") < at("web: locate frontend in staging"),
        "{log:?}"
    );
    at("web: set API_URL=https://staging.api.example.test/v1 on frontend");
}

/// No database URLs: the isolation check compares services only.
#[derive(Debug)]
struct NoValues;

#[async_trait]
impl staging_core::isolation::EnvValues for NoValues {
    async fn values(&self, _: &str) -> Result<BTreeMap<String, secrecy::SecretString>> {
        Ok(BTreeMap::new())
    }
}

#[tokio::test]
async fn a_preview_frontend_naming_stagings_site_on_the_other_provider_is_refused() {
    use staging_core::isolation::{Writes, check_offline_before_write};
    let s = setup();
    let own_api = "[services.api.overrides.preview]\nname = \"shop-api-${instance}\"\n";
    let load_for = |text: String| {
        LoadedSpec::parse(
            "staging.toml",
            text,
            LoadOptions::new(&["api", "web"]).with_instance(Some("pr-7")),
        )
        .unwrap()
    };
    // The frontend's site is `shop-web` in every environment: the preview's is staging's.
    let spec = load_for(format!("{STACK}{own_api}"));
    let err = check_offline_before_write(&s.registry, &spec, "preview", Writes::Run, &NoValues)
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("frontend") && err.contains("staging"), "{err}");
    assert!(err.contains("shop-web"), "{err}");
    // Its own site per instance: nothing is shared.
    let spec = load_for(format!(
        "{STACK}{own_api}[services.frontend.overrides.preview]\nsite = \"shop-web-${{instance}}\"\n"
    ));
    let mine = check_offline_before_write(&s.registry, &spec, "preview", Writes::Run, &NoValues)
        .await
        .unwrap();
    let ids: Vec<String> = mine.iter().map(|r| r.to_string()).collect();
    assert!(ids.iter().any(|r| r.contains("shop-web-pr-7")), "{ids:?}");
}
