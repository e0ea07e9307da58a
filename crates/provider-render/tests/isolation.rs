//! Issue 13, event 1: a misspelt Render override sent a staging deploy to the production
//! worker. Reproduced through the whole `up` pipeline (validate, isolation, deploy) against
//! the stateful fake behind `prism proxy --errors`, and refused before any write: by the
//! typed settings (the typo), by the offline isolation check (a forgotten override), and by
//! platform ids (two names, one service).

mod support;

use std::collections::BTreeMap;
use std::sync::Arc;

use staging_core::isolation::EnvValues;
use staging_core::pipeline::{
    DeployStep, IsolationStep, Pipeline, RunContext, RunReport, ValidateStep,
};
use staging_core::secrecy::SecretString;
use staging_core::spec::{LoadOptions, LoadedSpec};
use staging_core::{ProviderRegistry, Result};
use staging_provider_render::RenderFactory;
use support::{API_KEY, Kind, stand_in};

/// The credentials of the run: one Render key that reads every workspace, as a developer
/// or a CI job holding a team-wide key has.
fn lookup(name: &str) -> Option<String> {
    match name {
        "RENDER_API_KEY" => Some(API_KEY.to_owned()),
        "RENDER_API_URL" => Some(stand_in().prism.url()),
        _ => None,
    }
}

#[derive(Debug)]
struct NoValues;

#[staging_core::async_trait]
impl EnvValues for NoValues {
    async fn values(&self, _: &str) -> Result<BTreeMap<String, SecretString>> {
        Ok(BTreeMap::new())
    }
}

fn spec(text: &str) -> Result<Arc<LoadedSpec>> {
    LoadedSpec::parse(
        "staging.toml",
        text.to_owned(),
        LoadOptions::new(&["render"]),
    )
    .map(Arc::new)
}

/// `staging up --env staging`, as the CLI composes it, up to the first write (deploy).
async fn up_staging(spec: Arc<LoadedSpec>) -> RunReport {
    let registry = ProviderRegistry::new().register(RenderFactory::with_lookup(lookup));
    let pipeline = Pipeline::new()
        .step(ValidateStep::new(registry.clone()))
        .step(IsolationStep::new(registry, Arc::new(NoValues)))
        .step(DeployStep);
    let mut ctx = RunContext::new(spec, "staging", "c0ffee0123456789").unwrap();
    pipeline.run(&mut ctx).await
}

fn writes_to(id: &str) -> Vec<String> {
    stand_in()
        .fake
        .requests_for(id)
        .into_iter()
        .filter(|r| !r.starts_with("GET "))
        .collect()
}

fn step<'a>(report: &'a RunReport, name: &str) -> &'a staging_core::pipeline::StepReport {
    report
        .steps
        .iter()
        .find(|s| s.step == name)
        .unwrap_or_else(|| panic!("no step {name}"))
}

const ENVIRONMENTS: &str = r#"[project]
name = "shop"

[environments.staging]
provider = "render"
promotes_to = "production"

[environments.production]
provider = "render"
protected = true
"#;

#[tokio::test]
async fn event_1_a_misspelt_override_is_refused_before_the_production_worker_is_touched() {
    let production = stand_in()
        .fake
        .add_service("evt1-shop-worker", Kind::Worker);
    let staging = stand_in()
        .fake
        .add_service("evt1-shop-worker-staging", Kind::Worker);
    let text = format!(
        r#"{ENVIRONMENTS}
[services.worker]
settings = {{ service_name = "evt1-shop-worker" }}

[services.worker.overrides.staging]
servce_name = "evt1-shop-worker-staging"
"#
    );
    // Today's loader reads the spec (the typo is only caught by the provider's type)...
    let spec = spec(&text).expect("the spec parses");
    // ... and the run refuses it in `validate`, exit 2, at the typo, with the right name.
    let report = up_staging(spec).await;
    assert_eq!(report.exit_code(), 2, "{report:#?}");
    let validate = step(&report, "validate");
    let line = text
        .lines()
        .position(|l| l.starts_with("servce_name"))
        .unwrap()
        + 1;
    assert!(
        validate
            .summary
            .contains(&format!("staging.toml:{line}:1: "))
            && validate.summary.contains("unknown field `servce_name`")
            && validate.summary.contains("did you mean `service_name`?"),
        "{}",
        validate.summary
    );
    assert!(
        writes_to(&production).is_empty(),
        "{:?}",
        writes_to(&production)
    );
    assert!(writes_to(&staging).is_empty());
    stand_in().prism.assert_no_violations();
}

#[tokio::test]
async fn a_forgotten_override_naming_production_s_service_is_refused_offline() {
    let production = stand_in()
        .fake
        .add_service("evt1b-shop-worker", Kind::Worker);
    // No override at all: staging's effective service name is production's.
    let text = format!(
        r#"{ENVIRONMENTS}
[services.worker]
settings = {{ service_name = "evt1b-shop-worker" }}
"#
    );
    let report = up_staging(spec(&text).unwrap()).await;
    assert_eq!(report.exit_code(), 2, "{report:#?}");
    let isolation = step(&report, "isolation");
    let m = &isolation.summary;
    assert!(
        m.contains("environment `staging`")
            && m.contains("protected environment `production`")
            && m.contains("service_name=evt1b-shop-worker")
            && m.contains("before any write"),
        "{m}"
    );
    assert!(
        writes_to(&production).is_empty(),
        "{:?}",
        writes_to(&production)
    );
}

#[tokio::test]
async fn two_names_resolving_to_one_render_service_are_refused_with_shared_credentials() {
    let production = stand_in()
        .fake
        .add_service("evt1c-shop-worker", Kind::Worker);
    let text = format!(
        r#"{ENVIRONMENTS}
[services.worker]
settings = {{ service_id = "{production}" }}

[services.worker.overrides.staging]
service_id = "{production}"
"#
    );
    // Same id offline: refused at level 1 already.
    let report = up_staging(spec(&text).unwrap()).await;
    assert_eq!(report.exit_code(), 2);
    assert!(step(&report, "isolation").summary.contains(&production));

    // Production by id, staging by name: offline they cannot be compared, but the run's
    // key reads both environments, and both resolve to the same `srv-...`.
    let text = format!(
        r#"{ENVIRONMENTS}
[services.worker.overrides.staging]
service_name = "evt1c-shop-worker"

[services.worker.overrides.production]
service_id = "{production}"
"#
    );
    let report = up_staging(spec(&text).unwrap()).await;
    assert_eq!(report.exit_code(), 2, "{report:#?}");
    let m = &step(&report, "isolation").summary;
    assert!(
        m.contains(&format!("render service service={production}"))
            && m.contains("environment `staging`")
            && m.contains("environment `production`"),
        "{m}"
    );
    assert!(
        writes_to(&production).is_empty(),
        "{:?}",
        writes_to(&production)
    );
    stand_in().prism.assert_no_violations();
}

#[tokio::test]
async fn a_deploy_report_names_the_resolved_service_and_its_platform_id() {
    let staging = stand_in()
        .fake
        .add_service("evt1d-shop-worker-staging", Kind::Worker);
    stand_in()
        .fake
        .add_service("evt1d-shop-worker", Kind::Worker);
    let text = format!(
        r#"{ENVIRONMENTS}
[services.worker]
settings = {{ service_name = "evt1d-shop-worker" }}

[services.worker.overrides.staging]
service_name = "evt1d-shop-worker-staging"
"#
    );
    let report = up_staging(spec(&text).unwrap()).await;
    assert_eq!(report.exit_code(), 0, "{report:#?}");
    let deploy = step(&report, "deploy");
    let finding = &deploy.findings[0].message;
    assert!(
        finding.contains("service_name=evt1d-shop-worker-staging") && finding.contains(&staging),
        "{finding}"
    );
    // Production's service was compared by id and left alone.
    assert!(
        step(&report, "isolation")
            .summary
            .contains("platform ids compared with production"),
        "{}",
        step(&report, "isolation").summary
    );
}

#[tokio::test]
async fn a_datastore_to_create_that_names_production_s_datastore_is_refused_offline() {
    // Production's Postgres exists; staging's `create = true` forgot its own name, so
    // staging would find production's database and take it for its own.
    let text = format!(
        r#"{ENVIRONMENTS}settings = {{ owner_id = "tea-fake0001" }}

[environments.staging.settings]
owner_id = "tea-fake0001"

[datastores.db]
create = true
settings = {{ kind = "postgres", name = "iso-shop-db", plan = "basic_256mb", version = "16", region = "oregon" }}
"#
    );
    let report = up_staging(spec(&text).expect("the spec parses")).await;
    assert_eq!(report.exit_code(), 2, "{report:#?}");
    let isolation = step(&report, "isolation");
    assert!(
        isolation.summary.contains("datastore db") && isolation.summary.contains("production"),
        "{}",
        isolation.summary
    );
    // With its own name in `overrides.staging`, the same spec passes the check.
    let fixed = text.replace(
        "region = \"oregon\" }\n",
        "region = \"oregon\" }\noverrides.staging = { name = \"iso-shop-db-staging\" }\n",
    );
    let report = up_staging(spec(&fixed).expect("the spec parses")).await;
    assert_ne!(
        step(&report, "isolation").status,
        staging_core::pipeline::StepStatus::Failed,
        "{report:#?}"
    );
    assert!(
        !step(&report, "isolation").summary.contains("datastore db"),
        "{report:#?}"
    );
}
