//! Standing up from nothing, in core: how the spec asks for creation (`create`,
//! `[datastores]`, `allow_create`), and what the provision step does with a provider's
//! [`Provisioner`] — in order, idempotent, refused on a protected environment before any
//! request, never deleting, and clear when the provider creates nothing.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use serde::Deserialize;
use staging_core::pipeline::{RunContext, Step, StepStatus};
use staging_core::provision::{self, Creation, ProvisionStep, Provisioner};
use staging_core::spec::{LoadOptions, LoadedSpec, SettingsTypes};
use staging_core::{
    DynProvider, DynProvisioner, Error, ErrorClass, ProviderFactory, ProviderRegistry, Result,
    async_trait,
};

fn load(text: &str) -> Result<LoadedSpec> {
    LoadedSpec::parse(
        "staging.toml",
        text.to_owned(),
        LoadOptions::new(&["fake", "nocreate"]),
    )
}

fn spec(body: &str) -> Arc<LoadedSpec> {
    Arc::new(load(&format!("{HEAD}{body}")).expect("spec loads"))
}

const HEAD: &str = r#"[project]
name = "shop"

[environments.staging]
provider = "fake"
promotes_to = "production"

[environments.production]
provider = "fake"
protected = true
"#;

/// Settings of the fake provider's datastores.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
struct FakeDatastore {
    kind: String,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    plan: Option<String>,
}

#[derive(Debug, Default, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
struct Empty {}

/// A platform in memory: what exists, every request it got.
#[derive(Debug, Default)]
struct Platform {
    existing: Vec<String>,
    requests: Vec<String>,
    fail_on: Option<String>,
}

#[derive(Debug, Clone, Default)]
struct FakeFactory {
    platform: Arc<Mutex<Platform>>,
    creates: bool,
}

#[derive(Debug)]
struct FakeProvisioner {
    platform: Arc<Mutex<Platform>>,
    wanted: Vec<(String, String)>,
}

#[async_trait]
impl Provisioner for FakeProvisioner {
    async fn missing(&self) -> Result<Vec<Creation>> {
        let mut p = self.platform.lock().unwrap();
        p.requests.push("list".into());
        Ok(self
            .wanted
            .iter()
            .filter(|(_, name)| !p.existing.contains(name))
            .map(|(owner, name)| Creation {
                kind: "fake thing".into(),
                name: name.clone(),
                owner: owner.clone(),
                namespace: None,
                like: None,
                settings: BTreeMap::from([("plan".to_owned(), "small".to_owned())]),
                request: serde_json::json!({ "name": name }),
            })
            .collect())
    }

    async fn create(&self, creation: &staging_core::CreationTarget) -> Result<String> {
        let mut p = self.platform.lock().unwrap();
        p.requests.push(format!("create {}", creation.name));
        if p.fail_on.as_deref() == Some(creation.name.as_str()) {
            return Err(Error::Provider {
                provider: "fake".into(),
                source: "quota exceeded".into(),
                retryable: false,
            });
        }
        p.existing.push(creation.name.clone());
        Ok(format!("id-{}", creation.name))
    }
}

impl ProviderFactory for FakeFactory {
    fn name(&self) -> &'static str {
        if self.creates { "fake" } else { "nocreate" }
    }
    fn settings_types(&self) -> SettingsTypes {
        let t = SettingsTypes::of::<Empty, Empty>();
        if self.creates {
            t.with_datastores::<FakeDatastore>()
        } else {
            t
        }
    }
    fn check(&self, _: &LoadedSpec, _: &str) -> Result<()> {
        Ok(())
    }
    fn resources(&self, _: &LoadedSpec, _: &str) -> Result<Vec<staging_core::isolation::Resource>> {
        Ok(vec![])
    }
    fn build(&self, _: &LoadedSpec, _: &str) -> Result<DynProvider> {
        Err(Error::config("not built in these tests"))
    }
    fn provisioner(&self, spec: &LoadedSpec, environment: &str) -> Result<Option<DynProvisioner>> {
        if !self.creates {
            return Ok(None);
        }
        let asked = spec.creations_asked(environment);
        let mut wanted = vec![];
        for d in asked.datastores.keys() {
            let s = spec
                .datastore_settings::<FakeDatastore>(d, environment)?
                .value;
            wanted.push((
                format!("datastore {d}"),
                s.name.unwrap_or_else(|| d.clone()),
            ));
        }
        for s in asked.services.keys() {
            wanted.push((format!("service {s}"), format!("{s}-{environment}")));
        }
        Ok(Some(Arc::new(FakeProvisioner {
            platform: self.platform.clone(),
            wanted,
        })))
    }
}

fn registry(factory: &FakeFactory) -> ProviderRegistry {
    ProviderRegistry::new().register(factory.clone())
}

async fn run(
    factory: &FakeFactory,
    spec: &Arc<LoadedSpec>,
    env: &str,
) -> staging_core::pipeline::StepReport {
    let mut ctx = RunContext::new(
        spec.clone(),
        env,
        "0123456789abcdef0123456789abcdef01234567",
    )
    .unwrap();
    staging_core::testkit::assume_isolated(&mut ctx);
    match ProvisionStep::new(registry(factory)).run(&mut ctx).await {
        Ok(r) => r,
        Err(e) => staging_core::pipeline::StepReport::error("provision", &e),
    }
}

const STACK: &str = r#"
[services.web]
create = { like = "production" }

[services.worker]
create = true

[datastores.db]
create = { like = "production" }
settings = { kind = "postgres", name = "shop-db" }
overrides.staging = { name = "shop-db-staging", plan = "basic_256mb" }
"#;

#[tokio::test]
async fn the_provision_step_creates_what_is_missing_in_order_and_a_second_run_creates_nothing() {
    let factory = FakeFactory {
        creates: true,
        ..Default::default()
    };
    let spec = spec(STACK);
    let first = run(&factory, &spec, "staging").await;
    assert_eq!(first.status, StepStatus::Passed, "{first:?}");
    let created: Vec<&str> = first.findings.iter().map(|f| f.name.as_str()).collect();
    assert_eq!(
        created,
        ["shop-db-staging", "web-staging", "worker-staging"]
    );
    assert!(first.summary.contains("created 3"), "{}", first.summary);

    let second = run(&factory, &spec, "staging").await;
    assert_eq!(second.status, StepStatus::Passed);
    assert!(
        second.summary.contains("nothing to create"),
        "{}",
        second.summary
    );
    let requests = factory.platform.lock().unwrap().requests.clone();
    assert_eq!(
        requests.iter().filter(|r| r.starts_with("create")).count(),
        3,
        "the second run created again: {requests:?}"
    );
}

#[tokio::test]
async fn plan_lists_exactly_what_up_then_creates_and_changes_nothing() {
    let factory = FakeFactory {
        creates: true,
        ..Default::default()
    };
    let spec = spec(STACK);
    let plan = provision::plan(&registry(&factory), &spec, "staging")
        .await
        .unwrap();
    let planned: Vec<String> = plan.create.iter().map(|c| c.name.clone()).collect();
    assert!(
        factory.platform.lock().unwrap().existing.is_empty(),
        "plan created something"
    );
    let report = run(&factory, &spec, "staging").await;
    let created: Vec<String> = report.findings.iter().map(|f| f.name.clone()).collect();
    assert_eq!(planned, created);
    assert_eq!(plan.create[0].settings["plan"], "small");
}

#[tokio::test]
async fn creation_on_a_protected_environment_without_allow_create_is_refused_before_any_request() {
    let factory = FakeFactory {
        creates: true,
        ..Default::default()
    };
    // `create = true` applies to production too; production does not allow creation.
    let spec = spec("[services.worker]\ncreate = true\n");
    let report = run(&factory, &spec, "production").await;
    assert_eq!(report.status, StepStatus::Error);
    assert_eq!(report.error_class, Some(ErrorClass::Usage));
    assert!(
        report.summary.contains("allow_create = true"),
        "{}",
        report.summary
    );
    assert!(
        report.summary.contains("staging.toml:"),
        "no place: {}",
        report.summary
    );
    assert!(
        factory.platform.lock().unwrap().requests.is_empty(),
        "a request was made"
    );
    let err = provision::plan(&registry(&factory), &spec, "production")
        .await
        .unwrap_err();
    assert!(err.to_string().contains("allow_create"), "{err}");
    assert!(factory.platform.lock().unwrap().requests.is_empty());
}

#[tokio::test]
async fn a_protected_environment_with_allow_create_creates_and_like_never_creates_its_source() {
    let factory = FakeFactory {
        creates: true,
        ..Default::default()
    };
    let text = format!("{HEAD}[services.worker]\ncreate = true\n").replace(
        "protected = true\n",
        "protected = true\nallow_create = true\n",
    );
    let spec_allowed = Arc::new(load(&text).unwrap());
    let report = run(&factory, &spec_allowed, "production").await;
    assert_eq!(report.status, StepStatus::Passed, "{report:?}");
    assert_eq!(report.findings[0].name, "worker-production");

    // `like = "production"` only reads production: nothing asked there, nothing refused.
    let like = spec("[services.web]\ncreate = { like = \"production\" }\n");
    assert!(like.creations_asked("production").is_empty());
    let report = run(&factory, &like, "production").await;
    assert_eq!(report.status, StepStatus::Skipped, "{report:?}");
}

#[tokio::test]
async fn a_failed_creation_reports_what_was_created_and_what_not_and_the_rerun_creates_the_rest() {
    let factory = FakeFactory {
        creates: true,
        ..Default::default()
    };
    factory.platform.lock().unwrap().fail_on = Some("web-staging".into());
    let spec = spec(STACK);
    let report = run(&factory, &spec, "staging").await;
    assert_ne!(report.status, StepStatus::Passed);
    assert!(
        report.summary.contains("created 1 of 3"),
        "{}",
        report.summary
    );
    assert!(
        report.summary.contains("not attempted"),
        "{}",
        report.summary
    );
    assert!(
        report.summary.contains("nothing was deleted"),
        "{}",
        report.summary
    );
    assert!(report.findings[1].message.contains("quota exceeded"));

    factory.platform.lock().unwrap().fail_on = None;
    let rerun = run(&factory, &spec, "staging").await;
    let created: Vec<&str> = rerun.findings.iter().map(|f| f.name.as_str()).collect();
    assert_eq!(created, ["web-staging", "worker-staging"]);
    let existing = factory.platform.lock().unwrap().existing.clone();
    assert_eq!(
        existing,
        ["shop-db-staging", "web-staging", "worker-staging"]
    );
}

#[tokio::test]
async fn a_provider_that_creates_nothing_is_named_with_what_must_exist() {
    let factory = FakeFactory {
        creates: false,
        ..Default::default()
    };
    let text = format!("{HEAD}[services.api]\ncreate = true\n")
        .replace("provider = \"fake\"", "provider = \"nocreate\"")
        .replace(
            "protected = true\n",
            "protected = true\nallow_create = true\n",
        );
    let spec = Arc::new(load(&text).unwrap());
    let report = run(&factory, &spec, "staging").await;
    assert_eq!(report.status, StepStatus::Error);
    assert_eq!(report.error_class, Some(ErrorClass::CannotProceed));
    assert!(
        report.summary.contains("service `api` must already exist"),
        "{}",
        report.summary
    );
    let plan = provision::plan(&registry(&factory), &spec, "staging")
        .await
        .unwrap();
    assert!(plan.create.is_empty());
    assert!(plan.not_supported.unwrap().contains("Terraform"));
}

#[test]
fn create_takes_a_flag_or_a_like_table_and_a_typo_is_an_error_at_its_place() {
    let s = spec("[services.web]\ncreate = { like = \"production\" }\n");
    let c = s.spec.services["web"].create.clone().unwrap();
    assert!(c.enabled && c.like.as_deref() == Some("production"));
    assert!(c.applies_to("staging") && !c.applies_to("production"));
    let off = spec("[services.web]\ncreate = false\n");
    assert!(off.creations_asked("staging").is_empty());

    let err = load(&format!(
        "{HEAD}[services.web]\ncreate = {{ lik = \"production\" }}\n"
    ))
    .unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains("staging.toml:12:"), "{msg}");
    assert!(msg.contains("lik"), "{msg}");
    let err = load(&format!("{HEAD}[services.web]\ncreate = \"yes\"\n")).unwrap_err();
    assert!(
        err.to_string().contains("`true`, `false` or a table"),
        "{err}"
    );
}

#[test]
fn like_must_name_a_declared_environment_on_the_same_provider() {
    let err = load(&format!(
        "{HEAD}[services.web]\ncreate = {{ like = \"prod\" }}\n"
    ))
    .unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains("names no environment") && msg.contains("staging.toml:12:"),
        "{msg}"
    );
    let mixed = format!("{HEAD}[services.web]\ncreate = {{ like = \"production\" }}\n").replacen(
        "provider = \"fake\"",
        "provider = \"nocreate\"",
        1,
    );
    let err = load(&mixed).unwrap_err();
    assert!(err.to_string().contains("within one provider"), "{err}");
}

#[test]
fn datastore_settings_are_typed_with_overrides_merged_and_a_misspelt_key_is_placed() {
    let factory = FakeFactory {
        creates: true,
        ..Default::default()
    };
    let s = spec(STACK);
    registry(&factory).check(&s, "staging").unwrap();
    let d = s
        .datastore_settings::<FakeDatastore>("db", "staging")
        .unwrap()
        .value;
    assert_eq!(
        (d.kind.as_str(), d.name.as_deref(), d.plan.as_deref()),
        ("postgres", Some("shop-db-staging"), Some("basic_256mb"))
    );
    let typo =
        spec("[datastores.db]\ncreate = true\nsettings = { kind = \"postgres\", plna = \"x\" }\n");
    let err = registry(&factory)
        .check(&typo, "staging")
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("staging.toml:13:") && err.contains("did you mean `plan`"),
        "{err}"
    );
    // A provider without datastores refuses one to create, at its `create`.
    let none = FakeFactory::default();
    let text = format!("{HEAD}[datastores.db]\ncreate = true\n")
        .replace("provider = \"fake\"", "provider = \"nocreate\"");
    let s = Arc::new(load(&text).unwrap());
    let err = registry(&none)
        .check(&s, "staging")
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("creates no datastores") && err.contains("staging.toml:12:"),
        "{err}"
    );
}
