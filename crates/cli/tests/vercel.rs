//! The `vercel` provider through the binary, against the stand-in of
//! `crates/provider-vercel/tests/support` (Prism over Vercel's published API description in
//! front of a stateful fake): `promote` to production is refused by the gate while staging
//! has no evidence for the commit, and nothing is deployed; after `up` on staging passes,
//! the same `promote` deploys production; env vars land in their own target only.

#[path = "../../provider-vercel/tests/support/mod.rs"]
mod vercel;

use assert_cmd::Command;

const COMMIT: &str = "aaaaaaa1111111111111111111111111111111aa";

fn spec(evidence: &std::path::Path) -> String {
    format!(
        r#"[project]
name = "shop"
evidence_dir = {evidence:?}

[environments.staging]
provider = "vercel"
promotes_to = "production"
deploy_timeout = "60s"
settings = {{ target = "staging", team_id = "team_fake" }}

[environments.production]
provider = "vercel"
protected = true
deploy_timeout = "60s"
settings = {{ target = "production", team_id = "team_fake" }}

[services.web]
http = false
settings = {{ project = "web", repo = "acme/web" }}

[vars.EMAIL_PROVIDER]
values = {{ staging = "log", production = "postmark" }}

[[probes]]
name = "reachable"
command = {{ run = ["true"] }}
"#,
        evidence = evidence.display().to_string()
    )
}

fn staging(spec: &std::path::Path, args: &[&str]) -> (i32, String) {
    let out = Command::cargo_bin("staging")
        .unwrap()
        .arg("-f")
        .arg(spec)
        .args(args)
        .env_remove("STAGING_ENV")
        .env("VERCEL_TOKEN", vercel::TOKEN)
        .env("VERCEL_API_URL", vercel::stand_in().prism.url())
        // The rollback call is not in Vercel's published description: the fake's double.
        .env("VERCEL_UNLISTED_API_URL", vercel::stand_in().fake.url())
        .output()
        .unwrap();
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code().unwrap_or(-1), all)
}

fn deployments_created(state: &serde_json::Value) -> usize {
    state["requests"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["method"] == "POST" && r["path"] == "/v13/deployments")
        .count()
}

#[tokio::test(flavor = "multi_thread")]
async fn promote_without_staging_evidence_is_refused_then_allowed_after_staging_passes() {
    let _g = vercel::lock().await;
    vercel::reset(true).await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("staging.toml");
    std::fs::write(&path, spec(&dir.path().join("evidence"))).unwrap();

    let (code, out) = staging(
        &path,
        &["promote", "--to", "production", "--commit", COMMIT],
    );
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("no recorded run"), "{out}");
    assert_eq!(
        deployments_created(&vercel::state().await),
        0,
        "a refused promote deployed something"
    );

    let (code, out) = staging(&path, &["up", "--env", "staging", "--commit", COMMIT]);
    assert_eq!(code, 0, "{out}");
    let (code, out) = staging(
        &path,
        &["promote", "--to", "production", "--commit", COMMIT],
    );
    assert_eq!(code, 0, "{out}");

    let state = vercel::state().await;
    assert_eq!(deployments_created(&state), 2);
    let production = state["projects"]["prj_web"]["production"].as_str().unwrap();
    assert_eq!(
        state["deployments"][production]["meta"]["githubCommitSha"],
        COMMIT
    );
    // Each environment's value in its own target, none plain.
    let envs = state["envs"]["prj_web"].as_array().unwrap();
    let value_for = |want: &dyn Fn(&serde_json::Value) -> bool| {
        envs.iter()
            .find(|e| e["key"] == "EMAIL_PROVIDER" && want(e))
            .map(|e| e["value"].clone())
    };
    assert_eq!(
        value_for(&|e| e["customEnvironmentIds"] == serde_json::json!(["env_staging"])),
        Some(serde_json::json!("log")),
        "{envs:?}"
    );
    assert_eq!(
        value_for(&|e| e["target"] == serde_json::json!(["production"])),
        Some(serde_json::json!("postmark")),
        "{envs:?}"
    );
    assert!(envs.iter().all(|e| e["type"] != "plain"), "{envs:?}");
    vercel::stand_in().prism.assert_no_violations();
}

/// The staged production flow through `promote`: the deployment is built with the
/// production domains held back, verified and smoked at its own URL while production still
/// serves the earlier commit, then promoted; `autoAssignCustomDomains` ends as it began.
#[tokio::test(flavor = "multi_thread")]
async fn staged_promote_holds_the_domains_back_until_smoke_passed_then_promotes() {
    let _g = vercel::lock().await;
    vercel::reset(true).await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("staging.toml");
    let text = spec(&dir.path().join("evidence")).replace(
        r#"settings = { target = "production", team_id = "team_fake" }"#,
        r#"settings = { target = "production", team_id = "team_fake", staged = true }"#,
    );
    // The smoke probe records which commit production served while it ran.
    let seen = dir.path().join("seen");
    let text = text.replace(
        r#"command = { run = ["true"] }"#,
        &format!(
            r#"command = {{ run = ["sh", "-c", "echo ${{services.web.url}} >> {}"] }}"#,
            seen.display()
        ),
    );
    std::fs::write(&path, text).unwrap();
    let (code, out) = staging(&path, &["up", "--env", "staging", "--commit", COMMIT]);
    assert_eq!(code, 0, "{out}");
    let (code, out) = staging(
        &path,
        &["promote", "--to", "production", "--commit", COMMIT],
    );
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("promoted: the production domains point at it"),
        "{out}"
    );
    let urls = std::fs::read_to_string(&seen).unwrap();
    let production_smoke = urls.lines().last().unwrap();
    assert!(
        production_smoke.ends_with(".vercel.app"),
        "production was smoked at {production_smoke}, not the deployment's own URL"
    );
    let state = vercel::state().await;
    let production = state["projects"]["prj_web"]["production"].as_str().unwrap();
    assert_eq!(
        state["deployments"][production]["meta"]["githubCommitSha"],
        COMMIT
    );
    assert_eq!(
        state["projects"]["prj_web"]["autoAssignCustomDomains"],
        true
    );
    let reqs = state["requests"].as_array().unwrap();
    let off = reqs
        .iter()
        .position(|r| r["method"] == "PATCH" && r["body"]["autoAssignCustomDomains"] == false)
        .expect("domains held back");
    let promote = reqs
        .iter()
        .position(|r| r["path"].as_str().unwrap().contains("/promote/"))
        .expect("promoted");
    assert!(off < promote);
    vercel::stand_in().prism.assert_no_violations();
}

/// A staged promote whose smoke fails promotes nothing and sets `autoAssignCustomDomains`
/// back.
#[tokio::test(flavor = "multi_thread")]
async fn a_staged_promote_whose_smoke_fails_promotes_nothing_and_restores_auto_assign() {
    let _g = vercel::lock().await;
    vercel::reset(true).await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("staging.toml");
    let text = spec(&dir.path().join("evidence")).replace(
        r#"settings = { target = "production", team_id = "team_fake" }"#,
        r#"settings = { target = "production", team_id = "team_fake", staged = true }"#,
    );
    let flag = dir.path().join("break-production");
    let text = text.replace(
        r#"command = { run = ["true"] }"#,
        &format!(
            r#"command = {{ run = ["sh", "-c", "test ! -e {}"] }}"#,
            flag.display()
        ),
    );
    std::fs::write(&path, text).unwrap();
    let (code, out) = staging(&path, &["up", "--env", "staging", "--commit", COMMIT]);
    assert_eq!(code, 0, "{out}");
    std::fs::write(&flag, "").unwrap();
    let (code, out) = staging(
        &path,
        &["promote", "--to", "production", "--commit", COMMIT],
    );
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("not promoted"), "{out}");
    let state = vercel::state().await;
    assert!(
        state["projects"]["prj_web"]["production"].is_null(),
        "{}",
        state["projects"]
    );
    assert_eq!(
        state["projects"]["prj_web"]["autoAssignCustomDomains"],
        true
    );
    assert!(
        !state["requests"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["path"].as_str().unwrap().contains("/promote/")),
        "promoted after a failed smoke"
    );
}

/// `rollback` returns production to the deployment before (the rollback call answered by
/// the hand-written double), and `logs` prints the deployment's build events.
#[tokio::test(flavor = "multi_thread")]
async fn rollback_and_logs_reach_vercel_through_the_commands() {
    let _g = vercel::lock().await;
    vercel::reset(true).await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("staging.toml");
    std::fs::write(&path, spec(&dir.path().join("evidence"))).unwrap();
    const B: &str = "bbbbbbb2222222222222222222222222222222bb";
    for commit in [COMMIT, B] {
        let (code, out) = staging(&path, &["up", "--env", "staging", "--commit", commit]);
        assert_eq!(code, 0, "{out}");
        let (code, out) = staging(
            &path,
            &["promote", "--to", "production", "--commit", commit],
        );
        assert_eq!(code, 0, "{out}");
    }
    let (code, out) = staging(&path, &["logs", "--env", "production"]);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("Build Completed") && out.contains("bbbbbbb"),
        "{out}"
    );
    let (code, out) = staging(&path, &["rollback", "--env", "production"]);
    assert_eq!(code, 0, "{out}");
    let state = vercel::state().await;
    let production = state["projects"]["prj_web"]["production"].as_str().unwrap();
    assert_eq!(
        state["deployments"][production]["meta"]["githubCommitSha"],
        COMMIT
    );
    assert!(
        state["requests"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["path"].as_str().unwrap().contains("/rollback/")),
        "the rollback did not reach the double"
    );
}

/// A staged promote whose smoke fails leaves production as it was: its env records
/// byte-equal to before (the record shared with preview was split for the staged deployment
/// and is whole again, with its id; the record the run changed has its old value; the
/// record the run added is gone), no promote and no rollback sent — the deployment
/// production served before never stopped serving.
#[tokio::test(flavor = "multi_thread")]
async fn a_staged_promote_whose_smoke_fails_leaves_productions_env_records_byte_equal_and_sends_no_rollback()
 {
    let _g = vercel::lock().await;
    vercel::reset(true).await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("staging.toml");
    let text = spec(&dir.path().join("evidence"))
        .replace(
            r#"settings = { target = "production", team_id = "team_fake" }"#,
            r#"settings = { target = "production", team_id = "team_fake", staged = true }"#,
        )
        .replace(
            "[[probes]]",
            "[vars.SHARED]\nvalue = \"staged-value\"\n\n[vars.FEATURE_FLAG]\nvalues = { staging = \"off\", production = \"on\" }\n\n[[probes]]",
        );
    let flag = dir.path().join("break-production");
    let text = text.replace(
        r#"command = { run = ["true"] }"#,
        &format!(
            r#"command = {{ run = ["sh", "-c", "test ! -e {}"] }}"#,
            flag.display()
        ),
    );
    std::fs::write(&path, text).unwrap();
    // Production serves an earlier deployment, with its own records: one shared with
    // preview (as the dashboard makes them) and one of its own.
    let p = vercel::provider(staging_provider_vercel::Target::Production);
    use staging_core::{DeployRequest, Provider, ProviderExt};
    let svc = p.locate("production", "web").await.unwrap();
    let old = p
        .deploy(
            &staging_core::testkit::target(&svc),
            &DeployRequest::commit("0000000aaaaaaaabbbbbbbbccccccccdddddddd0"),
        )
        .await
        .unwrap();
    p.wait_until_live(
        &svc,
        &old.id,
        std::time::Duration::from_secs(30),
        &mut |_| {},
    )
    .await
    .unwrap();
    let http = reqwest::Client::new();
    for body in [
        serde_json::json!({"key": "SHARED", "value": "both", "type": "encrypted", "target": ["production", "preview"]}),
        serde_json::json!({"key": "EMAIL_PROVIDER", "value": "sendgrid", "type": "encrypted", "target": ["production"]}),
    ] {
        let r = http
            .post(format!(
                "{}/v10/projects/prj_web/env",
                vercel::stand_in().prism.url()
            ))
            .bearer_auth(vercel::TOKEN)
            .json(&body)
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success(), "{}", r.status());
    }
    let (code, out) = staging(&path, &["up", "--env", "staging", "--commit", COMMIT]);
    assert_eq!(code, 0, "{out}");
    let before = vercel::state().await;
    let records_before = before["envs"]["prj_web"].clone();
    let requests_before = before["requests"].as_array().unwrap().len();

    std::fs::write(&flag, "").unwrap();
    let (code, out) = staging(
        &path,
        &["promote", "--to", "production", "--commit", COMMIT],
    );
    assert_eq!(code, 1, "{out}");
    let after = vercel::state().await;
    assert_eq!(
        after["envs"]["prj_web"], records_before,
        "production's env records changed: {out}"
    );
    let during: Vec<&serde_json::Value> = after["requests"].as_array().unwrap()[requests_before..]
        .iter()
        .collect();
    // The run did change the records (so the restore is what put them back) ...
    assert!(
        during
            .iter()
            .any(|r| r["method"] == "PATCH" && r["path"].as_str().unwrap().contains("/env/")),
        "the shared record was never split: {during:?}"
    );
    // ... and sent neither a promote nor a rollback.
    for word in ["/promote/", "/rollback/"] {
        assert!(
            !during
                .iter()
                .any(|r| r["path"].as_str().unwrap().contains(word)),
            "{word} sent after a failed smoke: {out}"
        );
    }
    assert_eq!(after["projects"]["prj_web"]["production"], old.id.as_str());
    assert_eq!(
        after["projects"]["prj_web"]["autoAssignCustomDomains"],
        true
    );
    assert!(out.contains("still serving"), "{out}");
    assert!(!out.contains("the rollback did not complete"), "{out}");
}

fn files_under(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = vec![];
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(files_under(&path));
        } else {
            out.push(path);
        }
    }
    out
}

/// Instant rollback finishes in the background on Vercel: the 201 comes at once, the job
/// stays `pending` for 2 s. `rollback` waits for it, verifies after, exits 0 and records
/// passing evidence; a job Vercel fails exits 1 with Vercel's reason.
#[tokio::test(flavor = "multi_thread")]
async fn rollback_waits_for_vercels_background_job_and_records_passing_evidence() {
    let _g = vercel::lock().await;
    vercel::reset(true).await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("staging.toml");
    let evidence = dir.path().join("evidence");
    std::fs::write(&path, spec(&evidence)).unwrap();
    const B: &str = "bbbbbbb2222222222222222222222222222222bb";
    const C: &str = "ccccccc3333333333333333333333333333333cc";
    for commit in [COMMIT, B, C] {
        let (code, out) = staging(&path, &["up", "--env", "staging", "--commit", commit]);
        assert_eq!(code, 0, "{out}");
        let (code, out) = staging(
            &path,
            &["promote", "--to", "production", "--commit", commit],
        );
        assert_eq!(code, 0, "{out}");
    }
    vercel::alias_job(2.0, "succeeded", &[]).await;
    let (code, out) = staging(&path, &["rollback", "--env", "production", "--json"]);
    assert_eq!(code, 0, "{out}");
    let doc: serde_json::Value = serde_json::from_str(
        out.lines()
            .find(|l| l.trim_start().starts_with('{'))
            .unwrap_or("{}"),
    )
    .unwrap_or(serde_json::Value::Null);
    let recorded: Vec<String> = files_under(&evidence)
        .into_iter()
        .filter_map(|p| std::fs::read_to_string(p).ok())
        .filter(|t| t.contains("rollback") && t.contains(B))
        .collect();
    assert!(!recorded.is_empty(), "no evidence of the rollback: {out}");
    assert!(
        recorded.iter().all(|t| !t.contains("\"failed\"")),
        "the rollback's evidence records a failure: {recorded:?} {doc}"
    );
    let state = vercel::state().await;
    let production = state["projects"]["prj_web"]["production"].as_str().unwrap();
    assert_eq!(
        state["deployments"][production]["meta"]["githubCommitSha"],
        B
    );

    // The attack: the job fails on Vercel; the command says so with Vercel's reason.
    vercel::alias_job(0.5, "failed", &[("shop.example.com", "failed")]).await;
    let (code, out) = staging(&path, &["rollback", "--env", "production"]);
    assert_eq!(code, 1, "{out} {}", vercel::state().await["projects"]);
    assert!(out.contains("rollback job"), "{out}");
    assert!(out.contains("shop.example.com (failed)"), "{out}");
}

/// `secrets check` of `examples/vercel/staging.toml` with the example's stated variables:
/// its staging-only variable is `required = false`, so production (which has none) passes.
fn check_example(text: &str, env: &str) -> (i32, String) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("staging.toml");
    std::fs::write(&path, text).unwrap();
    let out = Command::cargo_bin("staging")
        .unwrap()
        .arg("-f")
        .arg(&path)
        .args(["secrets", "check", "--env", env])
        .env_remove("STAGING_ENV")
        .env(
            "STAGING_STRIPE_SECRET_KEY",
            "sk_test_staging_canary_0123456789ab",
        )
        .env(
            "STAGING_POSTMARK_API_TOKEN",
            "pm_staging_canary_0123456789abcdef",
        )
        .env(
            "PRODUCTION_STRIPE_SECRET_KEY",
            "sk_live_production_canary_0123456789",
        )
        .env(
            "PRODUCTION_POSTMARK_API_TOKEN",
            "pm_production_canary_0123456789abcd",
        )
        .output()
        .unwrap();
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code().unwrap_or(-1), all)
}

#[test]
fn the_vercel_example_passes_secrets_check_for_staging_and_production() {
    let example = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../examples/vercel/staging.toml");
    let text = std::fs::read_to_string(example).unwrap();
    for env in ["staging", "production"] {
        let (code, out) = check_example(&text, env);
        assert_eq!(code, 0, "{env}: {out}");
        assert!(
            !out.contains("canary"),
            "a secret value in the output: {out}"
        );
    }
    // The attack: the staging-only variable without `required = false` fails production.
    let required = text.replace(
        "values = { staging = \"optout.staging.storefront.example\" }\nrequired = false\n",
        "values = { staging = \"optout.staging.storefront.example\" }\n",
    );
    assert_ne!(required, text, "the example changed; update this test");
    let (code, out) = check_example(&required, "production");
    assert_ne!(code, 0, "{out}");
    assert!(out.contains("OUTBOUND_OPT_OUT_HOST"), "{out}");
}

/// The drift step reads production's platform before staging is deployed. When Vercel is
/// reached but production cannot be read there (here: an unknown custom environment), the
/// rules against production were not checked: the step fails and nothing is deployed.
#[tokio::test(flavor = "multi_thread")]
async fn the_drift_step_fails_when_production_cannot_be_read_on_vercel() {
    let _g = vercel::lock().await;
    vercel::reset(true).await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("staging.toml");
    let with_rule = spec(&dir.path().join("evidence")).replace(
        "[[probes]]",
        "[vars.API_KEY]\nvalues = { staging = \"staging-key-0001\", production = \"production-key-01\" }\nrules = { differs_from = \"production\" }\n\n[[probes]]",
    );
    // Production readable: the step passes.
    std::fs::write(&path, &with_rule).unwrap();
    let (code, out) = staging(&path, &["up", "--env", "staging", "--commit", COMMIT]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("drift"), "{out}");
    let before = deployments_created(&vercel::state().await);
    // The attack: production names a target Vercel does not know.
    let unknown = with_rule.replace(
        "settings = { target = \"production\", team_id = \"team_fake\" }",
        "settings = { target = \"prod-typo\", team_id = \"team_fake\" }",
    );
    assert_ne!(unknown, with_rule, "the spec changed; update this test");
    std::fs::write(&path, &unknown).unwrap();
    let (code, out) = staging(&path, &["up", "--env", "staging", "--commit", COMMIT]);
    assert_eq!(code, 1, "{out}");
    let line = out
        .lines()
        .find(|l| l.contains("drift"))
        .unwrap_or_else(|| panic!("no drift step: {out}"));
    assert!(line.starts_with("FAIL"), "{out}");
    assert!(out.contains("could not read production"), "{out}");
    assert_eq!(
        deployments_created(&vercel::state().await),
        before,
        "deployed although production's rules were unchecked"
    );
}
