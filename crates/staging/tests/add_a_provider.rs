//! The "Adding a provider" checklist of `docs/ARCHITECTURE.md`, followed by a user of the
//! library and nothing else: a tiny in-memory provider implements the `Provider` core and
//! the capabilities it has, a `ProviderFactory` names its settings types, and
//! `ProviderRegistry::register` on `staging::providers()` is the only registration. Validate,
//! schema, plan and up then work on a spec that names it, with no list anywhere else edited.
//!
//! The second half keeps the checklist itself true: every file and item it names exists.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, Mutex};

use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use staging::Staging;
use staging_core::isolation::Resource;
use staging_core::spec::{LoadedSpec, SettingsTypes};
use staging_core::{
    Capabilities, Deploy, DeployKinds, DeployRequest, DeployStatus, DeployTarget, DynProvider,
    EnvVars, Error, Identity, LiveState, Provider, ProviderFactory, Result, ServiceHandle,
    WriteTarget, async_trait,
};

// ------------------------------------------------------------ step 2: the provider

/// What the tiny platform holds: per service slot, its deploys and its variables.
#[derive(Debug, Default)]
struct Platform {
    deploys: BTreeMap<String, Vec<Deploy>>,
    vars: BTreeMap<String, BTreeMap<String, SecretString>>,
}

#[derive(Debug)]
struct TinyProvider {
    region: String,
    slots: BTreeMap<String, String>,
    platform: Arc<Mutex<Platform>>,
}

impl TinyProvider {
    fn slot(&self, service: &str) -> Result<&str> {
        self.slots
            .get(service)
            .map(String::as_str)
            .ok_or_else(|| Error::not_found(format!("service `{service}`")))
    }
}

#[async_trait]
impl Provider for TinyProvider {
    fn name(&self) -> &str {
        "tiny"
    }
    /// Env vars only: no rollback, logs, cancel or environment setup.
    fn capabilities(&self) -> Capabilities<'_> {
        Capabilities {
            env: Some(self),
            ..Capabilities::none()
        }
    }
    fn deploy_kinds(&self, _service: &str) -> DeployKinds {
        DeployKinds::COMMIT
    }
    async fn locate(&self, environment: &str, service: &str) -> Result<ServiceHandle> {
        let slot = self.slot(service)?;
        Ok(ServiceHandle {
            name: service.to_owned(),
            environment: environment.to_owned(),
            id: slot.to_owned(),
            identity: Identity::new(
                "tiny slot",
                [("region", self.region.clone()), ("slot", slot.to_owned())],
            ),
        })
    }
    async fn live_state(&self, service: &ServiceHandle) -> Result<LiveState> {
        let live = self
            .platform
            .lock()
            .unwrap()
            .deploys
            .get(&service.id)
            .and_then(|d| d.last().cloned());
        Ok(LiveState {
            latest: live.clone(),
            live,
            url: None,
        })
    }
    async fn deploy(&self, service: &WriteTarget, request: &DeployRequest) -> Result<Deploy> {
        let DeployTarget::Commit(commit) = &request.target else {
            return Err(Error::not_supported("tiny", "deploying an image"));
        };
        let mut platform = self.platform.lock().unwrap();
        let deploys = platform.deploys.entry(service.id.clone()).or_default();
        let deploy = Deploy {
            id: format!("{}-{}", service.id, deploys.len()),
            status: DeployStatus::Live,
            commit: Some(commit.clone()),
            image: None,
            raw_status: "live".into(),
        };
        deploys.push(deploy.clone());
        Ok(deploy)
    }
    async fn deploy_status(&self, service: &ServiceHandle, deploy_id: &str) -> Result<Deploy> {
        self.platform
            .lock()
            .unwrap()
            .deploys
            .get(&service.id)
            .and_then(|d| d.iter().find(|d| d.id == deploy_id).cloned())
            .ok_or_else(|| Error::not_found(format!("deploy {deploy_id}")))
    }
}

#[async_trait]
impl EnvVars for TinyProvider {
    async fn env_vars(&self, service: &ServiceHandle) -> Result<BTreeMap<String, SecretString>> {
        let platform = self.platform.lock().unwrap();
        Ok(platform.vars.get(&service.id).cloned().unwrap_or_default())
    }
    async fn set_env_var(
        &self,
        service: &WriteTarget,
        key: &str,
        value: &SecretString,
    ) -> Result<()> {
        let mut platform = self.platform.lock().unwrap();
        let vars = platform.vars.entry(service.id.clone()).or_default();
        vars.insert(key.to_owned(), value.clone());
        Ok(())
    }
    async fn delete_env_var(&self, service: &WriteTarget, key: &str) -> Result<()> {
        let mut platform = self.platform.lock().unwrap();
        if let Some(vars) = platform.vars.get_mut(&service.id) {
            vars.remove(key);
        }
        Ok(())
    }
}

// ------------------------------------------------------------ step 3: the factory

/// `[environments.NAME] settings = { region = "..." }`
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
struct TinyEnvironment {
    /// Where the slots are.
    region: String,
}

/// `[services.NAME] settings = { slot = "..." }`
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
struct TinyService {
    /// The platform's slot the service runs in.
    slot: String,
}

#[derive(Debug, Clone, Default)]
struct TinyFactory {
    platform: Arc<Mutex<Platform>>,
}

impl TinyFactory {
    fn provider(&self, spec: &LoadedSpec, environment: &str) -> Result<TinyProvider> {
        let region = spec
            .environment_settings::<TinyEnvironment>(environment)?
            .value
            .region;
        let mut slots = BTreeMap::new();
        for name in spec.spec.services.keys() {
            let s = spec.service_settings::<TinyService>(name, environment)?;
            slots.insert(name.clone(), s.value.slot);
        }
        Ok(TinyProvider {
            region,
            slots,
            platform: self.platform.clone(),
        })
    }
}

impl ProviderFactory for TinyFactory {
    fn name(&self) -> &'static str {
        "tiny"
    }
    fn settings_types(&self) -> SettingsTypes {
        SettingsTypes::of::<TinyEnvironment, TinyService>()
    }
    fn check(&self, spec: &LoadedSpec, environment: &str) -> Result<()> {
        self.provider(spec, environment).map(drop)
    }
    fn resources(&self, spec: &LoadedSpec, environment: &str) -> Result<Vec<Resource>> {
        let p = self.provider(spec, environment)?;
        Ok(p.slots
            .iter()
            .map(|(name, slot)| {
                Resource::new(
                    "tiny slot",
                    format!("service {name}"),
                    [
                        ("region", Some(p.region.clone())),
                        ("slot", Some(slot.clone())),
                    ],
                )
            })
            .collect())
    }
    fn build(&self, spec: &LoadedSpec, environment: &str) -> Result<DynProvider> {
        Ok(Arc::new(self.provider(spec, environment)?))
    }
}

// ------------------------------------------------------------ steps 4 and 6: test, register

const COMMIT: &str = "0123456789abcdef0123456789abcdef01234567";

const SPEC: &str = r#"
[project]
name = "tiny-app"

[environments.staging]
provider = "tiny"
deploy_timeout = "30s"
settings = { region = "moon-1" }

[environments.production]
provider = "tiny"
protected = true
deploy_timeout = "30s"
settings = { region = "moon-2" }

[services.web]
http = false
settings = { slot = "web-slot" }

[vars.GREETING]
value = "hello-${env}"
"#;

fn session(dir: &Path, spec: &str, factory: &TinyFactory) -> Result<Staging> {
    let file = dir.join("staging.toml");
    std::fs::write(&file, spec).unwrap();
    Staging::builder()
        .providers(staging::providers().register(factory.clone()))
        .spec_file(file)
        .build()
}

#[tokio::test]
async fn a_provider_added_by_the_checklist_alone_validates_plans_and_goes_up() {
    let dir = tempfile::tempdir().unwrap();
    let factory = TinyFactory::default();
    let staging = session(dir.path(), SPEC, &factory).expect("the spec naming `tiny` loads");

    // validate: settings typed by the factory, isolation from its resources.
    let envs = staging.validate(None).await.expect("validate");
    assert_eq!(envs, vec!["production".to_owned(), "staging".to_owned()]);

    // conformance, as step 4 asks of every provider.
    let spec = staging.spec().clone();
    let provider = factory.build(&spec, "staging").unwrap();
    let report = staging_core::testkit::run_all(&provider, "staging", "web").await;
    assert_eq!(
        report.outcome("env"),
        Some(&staging_core::testkit::Outcome::Ran)
    );
    factory.platform.lock().unwrap().deploys.clear();
    factory.platform.lock().unwrap().vars.clear();

    // plan: read from the platform, nothing written.
    let plan = staging.plan("staging", COMMIT).await.expect("plan");
    assert_eq!(plan.provider, "tiny");
    let web = &plan.services[0];
    assert_eq!(web.id.as_deref(), Some("web-slot"));
    assert!(web.changes_commit, "{web:?}");
    assert!(
        web.vars.iter().any(|v| v.name == "GREETING"),
        "{:?}",
        web.vars
    );
    assert!(factory.platform.lock().unwrap().deploys.is_empty());

    // up: the whole pipeline, evidence included.
    let outcome = staging.up("staging", COMMIT).await.expect("up");
    assert_eq!(outcome.report.exit_code(), 0, "{:?}", outcome.report);
    assert!(outcome.evidence_id.is_some());
    let platform = factory.platform.lock().unwrap();
    assert_eq!(
        platform.deploys["web-slot"]
            .last()
            .and_then(|d| d.commit.as_deref()),
        Some(COMMIT)
    );
    assert_eq!(
        platform.vars["web-slot"]["GREETING"].expose_secret(),
        "hello-staging"
    );
}

#[test]
fn the_schema_of_a_registry_with_the_added_provider_types_its_settings() {
    let schema = staging::providers()
        .register(TinyFactory::default())
        .json_schema()
        .to_string();
    assert!(schema.contains("\"tiny\""), "the provider is not named");
    assert!(
        schema.contains("Where the slots are."),
        "the environment settings type is not in the schema"
    );
    assert!(
        schema.contains("The platform's slot the service runs in."),
        "the service settings type is not in the schema"
    );
}

#[test]
fn a_typo_in_the_added_providers_settings_is_an_error_at_its_key() {
    let dir = tempfile::tempdir().unwrap();
    let typo = SPEC.replace("slot = \"web-slot\"", "slott = \"web-slot\"");
    let err = session(dir.path(), &typo, &TinyFactory::default())
        .and_then(|s| {
            s.spec().spec.environment("staging")?;
            staging::providers()
                .register(TinyFactory::default())
                .check(s.spec(), "staging")
        })
        .expect_err("an unknown settings key was accepted");
    assert!(err.to_string().contains("slott"), "{err}");
}

#[test]
fn a_spec_naming_an_unregistered_provider_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("staging.toml"), SPEC).unwrap();
    let err = Staging::builder()
        .spec_file(dir.path().join("staging.toml"))
        .build()
        .expect_err("`tiny` is not registered here");
    assert!(err.to_string().contains("unknown provider `tiny`"), "{err}");
}

// ------------------------------------------------------------ the checklist stays true

fn workspace() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .and_then(Path::parent)
        .unwrap()
}

fn checklist() -> String {
    let doc = std::fs::read_to_string(workspace().join("docs/ARCHITECTURE.md")).unwrap();
    let start = doc
        .find("## Adding a provider")
        .expect("ARCHITECTURE.md has an \"Adding a provider\" section");
    let rest = &doc[start + 1..];
    let end = rest.find("\n## ").map(|e| e + 1).unwrap_or(rest.len());
    doc[start..start + end].to_owned()
}

/// Every `` `path/file.rs` `` the checklist names (with or without `::item`) exists, and the
/// item named after `::` is in it.
#[test]
fn every_file_and_function_the_checklist_names_exists() {
    let text = checklist();
    let mut named = 0;
    for span in text.split('`').skip(1).step_by(2) {
        let (path, item) = match span.split_once("::") {
            Some((p, i)) if p.ends_with(".rs") => (p, Some(i.trim_end_matches("()"))),
            _ => (span, None),
        };
        if !(path.ends_with(".rs") || path.ends_with(".md")) || path.contains(' ') {
            continue;
        }
        named += 1;
        let file = workspace().join(path);
        let source = std::fs::read_to_string(&file)
            .unwrap_or_else(|e| panic!("the checklist names `{path}`: {e}"));
        if let Some(item) = item {
            assert!(
                source.contains(&format!("fn {item}")),
                "the checklist names `{path}::{item}`, which is not there"
            );
        }
    }
    assert!(named >= 3, "the checklist names no files: {text}");
}

/// Every trait and method the checklist says to implement is public in `staging_core`.
#[test]
fn every_trait_the_checklist_names_is_what_staging_core_exports() {
    let text = checklist();
    let lib = std::fs::read_to_string(workspace().join("crates/staging-core/src/lib.rs")).unwrap();
    for name in [
        "Provider",
        "EnvVars",
        "Rollback",
        "Logs",
        "Cancel",
        "EnvironmentSetup",
        "ProviderFactory",
        "ProviderRegistry::register",
        "testkit::run_all",
    ] {
        assert!(
            text.contains(&format!("`{name}`")),
            "the checklist does not name `{name}`"
        );
    }
    for exported in [
        "EnvVars",
        "Rollback",
        "Logs",
        "Cancel",
        "EnvironmentSetup",
        "Capabilities",
        "DeployKinds",
    ] {
        assert!(
            lib.contains(&format!(" {exported},")) || lib.contains(&format!(" {exported}\n")),
            "staging_core does not export `{exported}`"
        );
    }
}

/// Every factory `crates/staging/src/providers.rs` registers is a provider of this build, and
/// every provider of this build is registered there (the one place).
#[test]
fn every_provider_of_the_build_is_registered_in_providers_rs() {
    let source =
        std::fs::read_to_string(workspace().join("crates/staging/src/providers.rs")).unwrap();
    // The registration lines (`let registry = registry.register(..)`), not the session's
    // wrapping of every registered factory.
    let registered = source.matches("let registry = registry.register(").count();
    assert_eq!(
        registered,
        staging::providers().names().len(),
        "providers.rs registers {registered}, the registry has {:?}",
        staging::providers().names()
    );
    for name in staging::providers().names() {
        assert!(
            source.contains(&format!("feature = \"providers-{name}\"")),
            "`{name}` is not registered behind `providers-{name}` in providers.rs"
        );
    }
}
