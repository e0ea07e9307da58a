//! Helpers shared by the tests: specs in temporary directories and evidence made to order.
#![allow(dead_code, unreachable_pub)]

use std::path::Path;
use std::sync::Arc;
use std::time::SystemTime;

use staging_core::pipeline::{Evidence, Finding, StepReport};
use staging_core::spec::{LoadOptions, LoadedSpec};

/// A two-environment local stack: `staging` promotes to protected `production`.
pub const SPEC: &str = r#"
[project]
name = "shop"

[environments.staging]
provider = "local"
promotes_to = "production"

[environments.production]
provider = "local"
protected = true

[services.web]
health_path = "/up"
settings = { command = ["./web"] }
"#;

/// Write `source` as `staging.toml` in `dir` and load it.
pub fn load(dir: &Path, source: &str) -> Arc<LoadedSpec> {
    let path = dir.join("staging.toml");
    std::fs::write(&path, source).unwrap();
    Arc::new(LoadedSpec::load(&path, LoadOptions::new(&["local"])).unwrap())
}

/// A step report as JSON, the way evidence holds it.
pub fn step_json(report: &StepReport) -> serde_json::Value {
    serde_json::to_value(report).unwrap()
}

/// Evidence of a run of `commit` on `env` under `spec_hash`, recorded at `at`; when
/// `failed_step` is given, that step failed.
pub fn evidence(
    env: &str,
    commit: &str,
    spec_hash: &str,
    failed_step: Option<&str>,
    at: SystemTime,
) -> Evidence {
    let mut steps = vec![step_json(&StepReport::passed("validate", "spec is valid"))];
    match failed_step {
        Some(step) => steps.push(step_json(&StepReport::from_findings(
            step,
            "1 passed, 1 failed",
            vec![
                Finding::ok("health", "200 in 12ms"),
                Finding::failed("login-flow", "http probe failed")
                    .with_evidence("status 200", "status 500"),
            ],
        ))),
        None => steps.push(step_json(&StepReport::from_findings(
            "smoke",
            "2 passed, 0 failed",
            vec![
                Finding::ok("health", "200 in 12ms"),
                Finding::ok("login-flow", "passed"),
            ],
        ))),
    }
    let mut e = evidence_of_steps(env, commit, spec_hash, steps, at);
    e.ok = failed_step.is_none();
    e.content_hash = e.compute_hash();
    e
}

/// Evidence of a run of `commit` on `env` under `spec_hash` made of `steps` (reports as
/// JSON), recorded at `at`; it passed when no step failed, as the pipeline judges it.
pub fn evidence_of_steps(
    env: &str,
    commit: &str,
    spec_hash: &str,
    steps: Vec<serde_json::Value>,
    at: SystemTime,
) -> Evidence {
    let ok = steps
        .iter()
        .all(|s| matches!(s["status"].as_str(), Some("passed" | "skipped")));
    let mut e = Evidence {
        project: "shop".to_owned(),
        environment: env.to_owned(),
        commit: commit.to_owned(),
        spec_hash: spec_hash.to_owned(),
        effective_spec_hash: Some(spec_hash.to_owned()),
        tool_version: "0.1.0".to_owned(),
        recorded_at: humantime::format_rfc3339_millis(at).to_string(),
        ok,
        steps,
        promoted_from: None,
        deploys: Default::default(),
        content_hash: String::new(),
    };
    e.content_hash = e.compute_hash();
    e
}

/// A full-length commit id made of `c`.
pub fn sha(c: char) -> String {
    std::iter::repeat_n(c, 40).collect()
}
