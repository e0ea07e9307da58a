//! The verify step on Render's real answers (issue 33): a live deploy Render reports with
//! `commit: null` is named as such, not diagnosed as "a cached or older deploy is serving".

mod support;

use std::sync::Arc;

use staging_core::ProviderRegistry;
use staging_core::pipeline::{Pipeline, RunContext, ValidateStep, VerifyCommitStep};
use staging_core::spec::{LoadOptions, LoadedSpec};
use staging_provider_render::RenderFactory;
use support::{API_KEY, Kind, stand_in};

fn lookup(name: &str) -> Option<String> {
    match name {
        "RENDER_API_KEY" => Some(API_KEY.to_owned()),
        "RENDER_API_URL" => Some(stand_in().prism.url()),
        _ => None,
    }
}

async fn verify(service_id: &str, commit: &str) -> String {
    let text = format!(
        r#"[project]
name = "verify"

[environments.staging]
provider = "render"

[services.web]
http = false
settings = {{ service_id = "{service_id}" }}
"#
    );
    let spec =
        Arc::new(LoadedSpec::parse("staging.toml", text, LoadOptions::new(&["render"])).unwrap());
    let registry = ProviderRegistry::new().register(RenderFactory::with_lookup(lookup));
    let pipeline = Pipeline::new()
        .step(ValidateStep::new(registry))
        .step(VerifyCommitStep);
    let mut ctx = RunContext::new(spec, "staging", commit).unwrap();
    let report = pipeline.run(&mut ctx).await;
    assert!(!report.ok, "{report:#?}");
    let step = report.steps.iter().find(|s| s.step == "verify").unwrap();
    format!("{step:?}")
}

#[tokio::test]
async fn a_live_deploy_reported_with_commit_null_gets_its_own_message() {
    let id = stand_in()
        .fake
        .add_service("verify-null-commit", Kind::Worker);
    let deploy = stand_in().fake.add_live_deploy_without_commit(&id);
    let text = verify(&id, "c0ffee0123456789c0ffee0123456789c0ffee01").await;
    assert!(
        text.contains(&deploy) && text.contains("commit: null"),
        "{text}"
    );
    assert!(!text.contains("cached or older"), "{text}");
}

#[tokio::test]
async fn another_commit_serving_is_still_called_a_cached_or_older_deploy() {
    let id = stand_in()
        .fake
        .add_service("verify-old-commit", Kind::Worker);
    stand_in()
        .fake
        .add_live_deploy(&id, "0ld0ld0ld0ld0ld0ld0ld0ld0ld0ld0ld0ld0ld0");
    let text = verify(&id, "c0ffee0123456789c0ffee0123456789c0ffee01").await;
    assert!(text.contains("cached or older"), "{text}");
}
