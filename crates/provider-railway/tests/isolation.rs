//! Issue 27 on Railway, through the schema-validating stand-in. Railway's usual layout — one
//! project, environments `staging` and `production`, the same services in both — is safe:
//! the write target is the service *instance* (service id, environment id), so
//! `examples/railway/staging.toml` itself passes the isolation step and deploys, for `up`
//! (staging) and for the run `promote` makes (production), each to its own instance only.
//! Its attack: staging's settings naming production's Railway environment by id (production's
//! by name: different text, one instance) are refused before any mutation.

mod support;

use std::collections::BTreeMap;
use std::sync::{Arc, OnceLock};

use serde_json::Value;
use staging_core::isolation::EnvValues;
use staging_core::pipeline::{
    DeployStep, IsolationStep, Pipeline, RunContext, RunReport, StepStatus, ValidateStep,
};
use staging_core::secrecy::SecretString;
use staging_core::spec::{LoadOptions, LoadedSpec};
use staging_core::{ProviderRegistry, Result};
use staging_provider_railway::RailwayFactory;
use support::{StandIn, TOKEN};

const NEW: &str = "3333333aaaaaaaabbbbbbbbccccccccdddddddd3";

/// Where the factory's lookup finds the stand-in (a `fn` pointer cannot capture it).
static URL: OnceLock<String> = OnceLock::new();

fn lookup(name: &str) -> Option<String> {
    match name {
        "RAILWAY_API_TOKEN" => Some(TOKEN.to_owned()),
        "RAILWAY_API_URL" => URL.get().cloned(),
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

/// The example spec, its project id replaced by the stand-in's.
fn example(project_id: &str, edit: impl Fn(String) -> String) -> Arc<LoadedSpec> {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../examples/railway/staging.toml"
    );
    let text = std::fs::read_to_string(path).unwrap();
    let text = text.replace("4f6c1d2e-8a3b-4c5d-9e7f-0a1b2c3d4e5f", project_id);
    Arc::new(
        LoadedSpec::parse(path, edit(text), LoadOptions::new(&["railway"]))
            .unwrap_or_else(|e| panic!("the example does not load: {e}")),
    )
}

/// The run of `environment` up to its first writes: validate, isolation, deploy.
async fn run(spec: Arc<LoadedSpec>, environment: &str) -> RunReport {
    let registry = ProviderRegistry::new().register(RailwayFactory::with_lookup(lookup));
    let pipeline = Pipeline::new()
        .step(ValidateStep::new(registry.clone()))
        .step(IsolationStep::new(registry, Arc::new(NoValues)))
        .step(DeployStep);
    let mut ctx = RunContext::new(spec, environment, NEW).unwrap();
    pipeline.run(&mut ctx).await
}

/// The environment ids of the fake by name.
fn environment_id(state: &Value, name: &str) -> String {
    state["environments"]
        .as_object()
        .unwrap()
        .iter()
        .find(|(_, n)| n.as_str() == Some(name))
        .map(|(id, _)| id.clone())
        .unwrap_or_else(|| panic!("no environment {name}: {state}"))
}

/// The environment ids the deployments of commit `NEW` went to.
fn deployed_to(state: &Value) -> Vec<String> {
    state["deployments"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| d["meta"]["commitHash"] == NEW)
        .map(|d| d["environmentId"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn the_example_one_project_layout_deploys_staging_then_production_each_to_its_own_instance() {
    let mut s = StandIn::start().await;
    URL.set(s.url.clone()).unwrap();
    s.reset(&["production", "staging"], &["api", "Postgres"])
        .await;
    let state = s.state().await;
    let (staging_id, production_id) = (
        environment_id(&state, "staging"),
        environment_id(&state, "production"),
    );

    // `up --env staging`: staging's `web` is service `api`, whose id production's `web` has
    // too; the instances differ, so nothing is refused.
    let report = run(example(&s.project_id, |t| t), "staging").await;
    let step = |r: &RunReport, name: &str| {
        r.steps
            .iter()
            .find(|x| x.step == name)
            .unwrap_or_else(|| panic!("no {name} step: {r:#?}"))
            .clone()
    };
    assert_eq!(
        step(&report, "isolation").status,
        StepStatus::Passed,
        "{report:#?}"
    );
    assert_eq!(
        step(&report, "deploy").status,
        StepStatus::Passed,
        "{report:#?}"
    );
    let isolation = step(&report, "isolation");
    assert!(
        isolation.findings[0]
            .message
            .contains(&format!("environment={staging_id}")),
        "{isolation:#?}"
    );
    assert_eq!(
        deployed_to(&s.state().await),
        std::slice::from_ref(&staging_id)
    );

    // The run `promote --to production` makes (after its gate): production's own instance.
    let report = run(example(&s.project_id, |t| t), "production").await;
    assert_eq!(
        step(&report, "deploy").status,
        StepStatus::Passed,
        "{report:#?}"
    );
    assert_eq!(
        deployed_to(&s.state().await),
        [staging_id.clone(), production_id.clone()]
    );

    // The attack: staging names production's Railway environment by id. Offline the two
    // settings differ (an id, a name); on the platform they are one instance: refused, exit
    // 2, before any mutation.
    let before = s.mutations().await;
    let report = run(
        example(&s.project_id, |t| {
            t.replace(
                "environment = \"staging\", create_if_missing = true",
                &format!("environment_id = \"{production_id}\""),
            )
        }),
        "staging",
    )
    .await;
    assert_eq!(report.exit_code(), 2, "{report:#?}");
    let refused = step(&report, "isolation");
    assert!(
        refused.summary.contains("environment `staging`")
            && refused.summary.contains("environment `production`")
            && refused
                .summary
                .contains(&format!("environment={production_id}")),
        "{}",
        refused.summary
    );
    assert_eq!(s.mutations().await, before, "a refused run wrote");
    s.assert_no_rejected().await;
}
